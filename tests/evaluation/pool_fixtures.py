"""Set-up for tests that need the expert pool (专家库): the default specialty tree, experts enrolled and
approved through the API, and import files (CSV and .xlsx) built from plain rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from httpx import Response
from openpyxl import Workbook

from evaluation import pool
from storage.db import transaction
from tests.helpers import PASSWORD, Actor, Api, credit_code

BASE = "/api/v1/evaluation"
CSV = "text/csv"
XLSX = pool.XLSX_TYPE
_serial = 0


def _next() -> int:
    global _serial
    _serial += 1
    return _serial


async def seed_specialties(api: Api) -> int:
    """Load the default specialty tree (idempotent); answers how many codes were added."""
    async with transaction(api.runtime.sessionmaker) as session:
        return await pool.seed_specialties(session, api.clock.now())


async def expert_user(api: Api, employer: Actor | None = None) -> Actor:
    """A signed-in user with the expert role: of a new employer organisation, or of `employer`'s."""
    if employer is None:
        return await api.organisation("employer")
    username = f"expert{_next()}"
    r = await api.post(
        "/api/v1/users",
        await api.bootstrap_centre(),
        json={
            "organisation_id": employer.organisation_id,
            "username": username,
            "password": PASSWORD,
            "display_name": username,
            "roles": ["expert"],
        },
    )
    assert r.status_code == 201, r.text
    return Actor(username, await api.login(username), employer.organisation_id, employer.credit_code)


def enrolment(**overrides: Any) -> dict[str, Any]:
    """A complete enrolment body."""
    body: dict[str, Any] = {
        "name": "王建国",
        "region_code": "320100",
        "title": "高级工程师",
        "specialties": ["A0101"],
        "phone": "13800138000",
        "email": "wang.jianguo@example.cn",
        "term_start": "2026-01-01",
        "term_end": "2028-12-31",
    }
    body.update(overrides)
    return body


async def enrol_expert(
    api: Api,
    specialties: Sequence[str] = ("A0101",),
    employer: Actor | None = None,
    *,
    approve: bool = True,
    **fields: Any,
) -> tuple[Actor, str]:
    """A user with the expert role who enrolled (and, unless `approve=False`, was approved by the centre):
    the user and the expert's id. `employer` is an employer organisation's user to share the employer."""
    await seed_specialties(api)
    user = await expert_user(api, employer)
    r = await api.post(f"{BASE}/me/enrol", user, json=enrolment(specialties=list(specialties), **fields))
    assert r.status_code == 201, r.text
    expert_id = str(r.json()["id"])
    if approve:
        r = await api.post(f"{BASE}/experts/{expert_id}/approve", await api.bootstrap_centre())
        assert r.status_code == 200, r.text
    return user, expert_id


def expert_row(**overrides: Any) -> dict[str, Any]:
    """One row of an import file, a new expert each call (own name and employer)."""
    n = _next()
    row: dict[str, Any] = {
        "name": f"专家{n:04d}",
        "employer_credit_code": credit_code(),
        "employer_name": f"江苏省建筑设计研究院{n}",
        "region_code": "320100",
        "title": "高级工程师",
        "specialties": "A0101;D01",
        "status": "active",
        "term_start": "2026-01-01",
        "term_end": "2028-12-31",
        "phone": f"1390000{n:04d}",
        "email": f"expert{n}@example.cn",
    }
    row.update(overrides)
    return row


def _columns(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    return [c for c in pool.IMPORT_COLUMNS if any(c in row for row in rows)]


def csv_file(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> bytes:
    """The rows as a UTF-8 CSV with a header; a value missing from a row is an empty cell."""
    names = _columns(rows, columns)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in names])
    return out.getvalue().encode("utf-8")


def xlsx_file(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> bytes:
    """The rows as the first sheet of an .xlsx workbook; values keep their Python types (numbers, dates)."""
    names = _columns(rows, columns)
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(names)
    for row in rows:
        sheet.append([row.get(c) for c in names])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def import_file(api: Api, content: bytes, media_type: str = CSV) -> Response:
    """POST an import file as the centre."""
    centre = await api.bootstrap_centre()
    return await api.client.post(
        f"{BASE}/experts/import", content=content, headers={**centre.headers, "content-type": media_type}
    )


async def import_experts(api: Api, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Import the rows as a CSV (seeding the default tree first); answers the counts."""
    await seed_specialties(api)
    r = await import_file(api, csv_file(rows))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def expert_by_number(api: Api, number: str) -> dict[str, Any]:
    """The centre's view of the expert with `number` (from the list)."""
    r = await api.get(f"{BASE}/experts", await api.bootstrap_centre(), params={"limit": 200})
    assert r.status_code == 200, r.text
    [found] = [e for e in r.json()["items"] if e["number"] == number]
    return dict(found)
