"""Bad input is refused with an exact problem naming the field, never a 500, and changes nothing."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from httpx import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from evaluation import draw, pool
from storage.models import metadata
from tests.conftest import ReadOnly
from tests.evaluation.pool_fixtures import (
    XLSX,
    enrol_expert,
    enrolment,
    expert_user,
    import_file,
    seed_specialties,
)
from tests.helpers import DEADLINE, PASSWORD, Actor, Api, credit_code

PROBLEM_JSON = "application/problem+json"
MALFORMED = "tag:ggzy,2026:problem/malformed-request"


# ---------------------------------------------------------------- helpers


async def snapshot(api: Api) -> dict[str, int]:
    """Row counts of every table: equal before and after a refused request."""
    async with api.runtime.sessionmaker() as session:
        return {
            table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in metadata.sorted_tables
        }


def problem(r: Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    body = dict(r.json())
    assert body["status"] == status
    return body


def fields(r: Response, status: int) -> list[str]:
    """The `errors[].field` of a problem with `status`."""
    return [e["field"] for e in problem(r, status)["errors"]]


@dataclass
class Target:
    """A route that takes a JSON body, who calls it, and a body it accepts."""

    method: str
    url: str
    actor: Actor | None
    body: dict[str, Any]
    text_field: str  # a string field of the body
    read_back: str | None = None  # a URL whose answer must not change after a refusal

    async def send(self, api: Api, *, json: Any = None, content: bytes | None = None) -> Response:
        headers = dict(self.actor.headers) if self.actor else {}
        if self.method == "PATCH":
            current = await api.get(self.read_back or "", self.actor)
            headers["If-Match"] = current.headers["etag"]
        if content is not None:
            headers["content-type"] = "application/json"
            return await api.client.request(self.method, self.url, content=content, headers=headers)
        return await api.client.request(self.method, self.url, json=json, headers=headers)


TARGETS = [
    "create_tender",
    "update_tender",
    "register_organisation",
    "register_public_key",
    "enrol_expert",
    "update_expert",
    "commit_draw_witness",
    "run_draw",
    "request_draw_abort",
    "approve_draw_abort",
    "refuse_draw_abort",
    "ask_clarification",
    "answer_clarification",
    "resolve_conflict",
    "change_password",
    "close_registration_collision",
]


async def target(api: Api, name: str) -> Target:
    if name == "create_tender":
        return Target("POST", "/api/v1/tenders", await api.organisation("agency"), api.tender_body(), "title")
    if name == "update_tender":
        agency = await api.organisation("agency")
        draft = await api.draft(agency)
        url = f"/api/v1/tenders/{draft['id']}"
        return Target("PATCH", url, agency, {"title": "城北污水处理厂扩建工程"}, "title", read_back=url)
    if name == "register_organisation":
        body = {
            "organisation_name": "江苏恒通建设集团有限公司",
            "credit_code": credit_code(),
            "kind": "bidder",
            "username": "hengtong",
            "password": PASSWORD,
            "display_name": "张伟",
            "contact_email": "tender@hengtong.example",
        }
        return Target("POST", "/api/v1/registrations", None, body, "organisation_name")
    if name == "enrol_expert":
        await seed_specialties(api)
        return Target("POST", "/api/v1/evaluation/me/enrol", await expert_user(api), enrolment(), "name")
    if name == "update_expert":
        _user, expert_id = await enrol_expert(api)
        url = f"/api/v1/evaluation/experts/{expert_id}"
        centre = await api.bootstrap_centre()
        return Target("PATCH", url, centre, {"status": "suspended"}, "status", read_back=url)
    if name in DRAW_TARGETS or name in ("ask_clarification", "answer_clarification"):
        return await evaluation_target(api, name)
    if name == "resolve_conflict":
        centre, conflict = await bank_line_conflict(api)
        url = f"/api/v1/escrow/conflicts/{conflict}"
        body = {"decision": "known", "note": "银行来函：以原对账单为准"}
        return Target("POST", f"{url}/resolution", centre, body, "note", read_back=url)
    if name == "change_password":
        body = {"current_password": PASSWORD, "new_password": "a brand new passphrase 7"}
        return Target("POST", "/api/v1/auth/password", await api.organisation("agency"), body, "new_password")
    if name == "close_registration_collision":
        taken = await api.organisation("agency")
        registration = {
            "organisation_name": "江苏恒通建设集团有限公司",
            "credit_code": taken.credit_code,
            "kind": "bidder",
            "username": "hengtong",
            "password": "an applicant's own passphrase",
            "display_name": "张伟",
            "contact_email": "tender@hengtong.example",
        }
        assert (await api.post("/api/v1/registrations", json=registration)).status_code == 202
        centre = await api.bootstrap_centre()
        listed = "/api/v1/registrations/collisions"
        [row] = (await api.get(listed, centre)).json()
        url = f"{listed}/{row['id']}/close"
        return Target("POST", url, centre, {"note": "电话联系申请人"}, "note", read_back=listed)
    assert name == "register_public_key"
    key = base64.b64encode(b"\x01" * 32).decode()
    return Target(
        "POST",
        "/api/v1/keys",
        await api.organisation("bidder"),
        {"purpose": "encryption", "public_key": key},
        "public_key",
    )


def draw_body(api: Api) -> dict[str, Any]:
    return {
        "evaluation_at": (api.clock.now() + timedelta(hours=2)).isoformat(),
        "quotas": [{"specialty": "A02", "seats": 5}],
    }


DRAW_TARGETS = (
    "commit_draw_witness",
    "run_draw",
    "request_draw_abort",
    "approve_draw_abort",
    "refuse_draw_abort",
)


async def draw_target(api: Api, name: str, agency: Actor, tender: dict[str, Any]) -> Target:
    """The body-taking routes of the draw: a supervisor commits to a witness and reveals it; the agency asks
    for an abort; a supervisor approves or refuses it."""
    await api.seed_specialties()
    r = await api.post(f"/api/v1/evaluation/tenders/{tender['id']}/draws", agency, json=draw_body(api))
    assert r.status_code == 201, r.text
    url = f"/api/v1/evaluation/draws/{r.json()['id']}"
    supervisor = await api.organisation("supervisor")
    witness, nonce = bytes(range(32)), bytes(range(32, 64))
    commitment = {"witness_commitment": draw.witness_commitment(witness, nonce)}
    if name == "commit_draw_witness":
        return Target("POST", f"{url}/witness", supervisor, commitment, "witness_commitment", read_back=url)
    if name == "run_draw":
        assert (await api.post(f"{url}/witness", supervisor, json=commitment)).status_code == 200
        body = {"witness": witness.hex(), "nonce": nonce.hex()}
        return Target("POST", f"{url}/run", supervisor, body, "witness", read_back=url)
    reason = {"reason": "评标时间与开标异议处理冲突，需改期"}
    if name == "request_draw_abort":
        return Target("POST", f"{url}/abort", agency, reason, "reason", read_back=url)
    asked = await api.post(f"{url}/abort", agency, json=reason)
    assert asked.status_code == 201, asked.text
    if name == "approve_draw_abort":
        body = {"request_id": asked.json()["id"], "note": "同意终止，理由属实"}
        return Target("POST", f"{url}/abort/approve", supervisor, body, "note", read_back=url)
    assert name == "refuse_draw_abort"
    body = {"request_id": asked.json()["id"], "note": "理由不成立，驳回本次终止申请"}
    return Target("POST", f"{url}/abort/refuse", supervisor, body, "note", read_back=url)


async def bank_line_conflict(api: Api) -> tuple[Actor, str]:
    """The centre imports a line to suspense, then a statement that says its amount was another: one open
    conflict (its id)."""
    from datetime import date

    from escrow import sandbox

    centre = await api.bootstrap_centre()
    for statement_id, amount in (("S1", 500_000), ("S2", 5_000)):
        line = sandbox.Credit(
            reference="R1",
            amount_fen=amount,
            booked_on=date(2026, 3, 2),
            payer_name="某某公司",
            payer_account="6228480000000001",
            payer_bank="中国农业银行",
            credited_account="95580000000000000",
        )
        r = await api.client.post(
            "/api/v1/escrow/statements",
            params={"format": "camt053"},
            content=sandbox.statement("31050161393600000888", statement_id, api.clock.now(), [line]),
            headers={**centre.headers, "Content-Type": "application/xml"},
        )
        assert r.status_code == 200, r.text
    (conflict,) = (await api.get("/api/v1/escrow/conflicts", centre)).json()
    return centre, str(conflict["id"])


async def evaluation_target(api: Api, name: str) -> Target:
    """The body-taking routes of the draw (`draw_target`) and the room: the chair of an open room asks a
    bidder to clarify; the bidder answers."""
    agency = await api.organisation("agency")
    tender, bids = await api.in_evaluation(agency)
    if name in DRAW_TARGETS:
        return await draw_target(api, name, agency, tender)
    committee = await api.convene(agency, tender["id"])
    question = {
        "bid_id": bids[0].bid_id,
        "question": "请澄清第3.2节工期安排",
        "respond_by": (api.clock.now() + timedelta(hours=1)).isoformat(),
    }
    ask = f"/api/v1/evaluation/rooms/{committee['room_id']}/clarifications"
    chair = committee["members"][1]
    if name == "ask_clarification":
        return Target("POST", ask, chair, question, "question")
    assert name == "answer_clarification"
    asked = await api.post(ask, chair, json=question)
    assert asked.status_code == 201, asked.text
    url = f"/api/v1/evaluation/clarifications/{asked.json()['id']}/answer"
    return Target("POST", url, bids[0].bidder, {"answer": "工期按第3.2节执行"}, "answer")


# Each target's refusals run on one worker (`make test` runs `--dist loadgroup`), which builds it once.
BUILT = [pytest.param(name, marks=pytest.mark.xdist_group(f"bad-input-{name}")) for name in TARGETS]


async def built(read_only: ReadOnly, name: str) -> tuple[Api, Target]:
    """The target `name`, built once per worker and backend: a refused request only reads it."""
    return await read_only.world(f"bad input: {name}", lambda api: target(api, name))


async def unchanged(api: Api, t: Target, before: dict[str, int], before_read: Any) -> None:
    assert await snapshot(api) == before
    if t.read_back is not None:
        assert (await api.get(t.read_back, t.actor)).json() == before_read


async def state(api: Api, t: Target) -> tuple[dict[str, int], Any]:
    read = (await api.get(t.read_back, t.actor)).json() if t.read_back else None
    return await snapshot(api), read


# ---------------------------------------------------------------- the same refusals on every body-taking route
# The accepted body changes the state; every refusal after it reads a target built once (`built`).


@pytest.mark.parametrize("name", TARGETS)
async def test_the_valid_body_is_accepted(api: Api, name: str) -> None:
    t = await target(api, name)
    r = await t.send(api, json=t.body)
    assert r.status_code in (200, 201, 202, 204), r.text


@pytest.mark.parametrize("name", BUILT)
async def test_malformed_json_is_refused_with_400(read_only: ReadOnly, name: str) -> None:
    api, t = await built(read_only, name)
    before = await state(api, t)
    body = problem(await t.send(api, content=b'{"title": "unterminated'), 400)
    assert (body["type"], body["detail"]) == (MALFORMED, "The request body is not valid JSON.")
    assert [e["field"] for e in body["errors"]] == ["body"]
    await unchanged(api, t, *before)


@pytest.mark.parametrize("name", BUILT)
async def test_an_empty_body_is_refused_with_400(read_only: ReadOnly, name: str) -> None:
    api, t = await built(read_only, name)
    before = await state(api, t)
    assert fields(await t.send(api, content=b""), 400) == ["body"]
    await unchanged(api, t, *before)


@pytest.mark.parametrize("name", BUILT)
async def test_a_body_that_is_not_an_object_is_refused_with_400(read_only: ReadOnly, name: str) -> None:
    api, t = await built(read_only, name)
    before = await state(api, t)
    r = await t.send(api, json=[t.body])
    assert problem(r, 400)["errors"] == [{"field": "body", "message": "Expected `object`, got `array`"}]
    await unchanged(api, t, *before)


@pytest.mark.parametrize("name", BUILT)
async def test_a_wrong_type_is_refused_naming_the_field(read_only: ReadOnly, name: str) -> None:
    api, t = await built(read_only, name)
    before = await state(api, t)
    r = await t.send(api, json={**t.body, t.text_field: 12345})
    assert problem(r, 400)["errors"] == [{"field": t.text_field, "message": "Expected `str`, got `int`"}]
    await unchanged(api, t, *before)


@pytest.mark.parametrize("name", BUILT)
async def test_an_unknown_field_is_refused_naming_it(read_only: ReadOnly, name: str) -> None:
    api, t = await built(read_only, name)
    before = await state(api, t)
    r = await t.send(api, json={**t.body, "is_admin": True})
    assert problem(r, 400)["errors"] == [
        {"field": "is_admin", "message": "Object contains unknown field `is_admin`"}
    ]
    await unchanged(api, t, *before)


@pytest.mark.parametrize("name", BUILT)
async def test_an_oversized_body_is_refused_with_413(read_only: ReadOnly, name: str) -> None:
    api, t = await built(read_only, name)
    before = await state(api, t)
    padding = " " * api.runtime.settings.max_body_bytes
    problem(await t.send(api, content=f'{{"{t.text_field}": "x"}}{padding}'.encode()), 413)
    await unchanged(api, t, *before)


@pytest.mark.parametrize("name", BUILT)
async def test_a_nul_character_is_refused_naming_the_field(read_only: ReadOnly, name: str) -> None:
    api, t = await built(read_only, name)
    before = await state(api, t)
    r = await t.send(api, json={**t.body, t.text_field: "城北\x00工程" + "A" * 44})
    assert problem(r, 400)["errors"] == [{"field": t.text_field, "message": "contains a NUL character"}]
    await unchanged(api, t, *before)


@pytest.mark.parametrize("name", BUILT)
async def test_a_deeply_nested_body_is_refused_with_400(read_only: ReadOnly, name: str) -> None:
    api, t = await built(read_only, name)
    before = await state(api, t)
    assert fields(await t.send(api, content=b"[" * 200_000 + b"]" * 200_000), 400) == ["body"]
    await unchanged(api, t, *before)


@pytest.mark.parametrize(
    "name",
    [
        p
        for p in BUILT
        if p.values[0] in ("create_tender", "update_tender", "register_organisation", "enrol_expert")
    ],
)
async def test_a_10000_character_name_is_refused_naming_the_field(read_only: ReadOnly, name: str) -> None:
    api, t = await built(read_only, name)
    before = await state(api, t)
    r = await t.send(api, json={**t.body, t.text_field: "工" * 10_000})
    assert fields(r, 400) == [t.text_field]
    await unchanged(api, t, *before)


# ---------------------------------------------------------------- fields with their own rules


@pytest.mark.parametrize(
    ("lot", "field"),
    [
        ({"estimated_price_fen": 10**30}, "lots[0].estimated_price_fen"),
        ({"estimated_price_fen": 2**63}, "lots[0].estimated_price_fen"),
        ({"deposit_fen": 10**16}, "lots[0].deposit_fen"),
    ],
    ids=["10^30", "2^63", "10^16"],
)
async def test_a_huge_amount_is_refused_naming_the_field(api: Api, lot: dict[str, Any], field: str) -> None:
    agency = await api.organisation("agency")
    before = await snapshot(api)
    lots = [{"title": "第一标段", "estimated_price_fen": 5_000_000_000, "deposit_fen": 80_000_000, **lot}]
    r = await api.post("/api/v1/tenders", agency, json=api.tender_body(lots=lots))
    assert fields(r, 400) == [field]
    assert await snapshot(api) == before


@pytest.mark.parametrize(
    ("lot", "field"),
    [
        ({"estimated_price_fen": -5_000_000_000}, "lots[0].estimated_price_fen"),
        ({"deposit_fen": -1}, "lots[0].deposit_fen"),
        ({"estimated_price_fen": 0}, "lots[0].estimated_price_fen"),
    ],
    ids=["negative-price", "negative-deposit", "zero-price"],
)
async def test_a_negative_amount_is_refused_naming_the_field(
    api: Api, lot: dict[str, Any], field: str
) -> None:
    agency = await api.organisation("agency")
    before = await snapshot(api)
    lots = [{"title": "第一标段", "estimated_price_fen": 5_000_000_000, "deposit_fen": 80_000_000, **lot}]
    r = await api.post("/api/v1/tenders", agency, json=api.tender_body(lots=lots))
    assert fields(r, 400) == [field]
    assert await snapshot(api) == before


async def test_a_fractional_amount_is_refused_naming_the_field(api: Api) -> None:
    agency = await api.organisation("agency")
    lots = [{"title": "第一标段", "estimated_price_fen": 5_000_000_000.5, "deposit_fen": 80_000_000}]
    r = await api.post("/api/v1/tenders", agency, json=api.tender_body(lots=lots))
    assert fields(r, 400) == ["lots[0].estimated_price_fen"]


async def test_a_malformed_file_key_is_refused_naming_it(api: Api) -> None:
    tender = await api.published(await api.organisation("agency"))
    bid = await api.bid(await api.organisation("bidder"), tender, price_fen=4_000_000_000)
    before = await snapshot(api)
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/bids/{bid.bid_id}/decrypt", bid.bidder, json={"file_key": 12345}
    )
    assert fields(r, 400) == ["file_key"]
    assert await snapshot(api) == before


@pytest.mark.parametrize(
    ("value", "status"),
    [(29, 422), (0, 400), (366, 400), ([90], 400), (90.5, 400), (None, None)],
    ids=["below-the-profile", "zero", "over-a-year", "a-list", "fraction", "null-means-the-default"],
)
async def test_a_bad_bid_validity_period_is_refused_naming_it(
    api: Api, value: Any, status: int | None
) -> None:
    agency = await api.organisation("agency")
    before = await snapshot(api)
    r = await api.post("/api/v1/tenders", agency, json=api.tender_body(bid_validity_days=value))
    if status is None:  # left out or null: the profile's default
        assert r.status_code == 201 and r.json()["bid_validity_days"] == 90, r.text
        return
    assert fields(r, status) == ["bid_validity_days"]
    assert await snapshot(api) == before


@pytest.mark.parametrize("field", ["bid_deadline", "documents_from"])
async def test_a_naive_instant_is_refused_naming_it(api: Api, field: str) -> None:
    agency = await api.organisation("agency")
    before = await snapshot(api)
    r = await api.post("/api/v1/tenders", agency, json=api.tender_body(**{field: "2026-03-23T10:00:00"}))
    assert problem(r, 422)["errors"] == [{"field": field, "message": "naive datetime"}]
    assert await snapshot(api) == before


async def test_a_naive_bid_deadline_is_refused_when_editing_a_draft(api: Api) -> None:
    agency = await api.organisation("agency")
    url = f"/api/v1/tenders/{(await api.draft(agency))['id']}"
    before = (await api.get(url, agency)).json()
    r = await api.patch(
        url, agency, json={"bid_deadline": "2026-03-30T10:00:00"}, headers={"If-Match": '"1"'}
    )
    assert problem(r, 422)["errors"] == [{"field": "bid_deadline", "message": "naive datetime"}]
    assert (await api.get(url, agency)).json() == before


@pytest.mark.parametrize(
    "instant", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2100-01-01T00:00:00Z"]
)
async def test_an_instant_outside_the_supported_years_is_refused_naming_it(api: Api, instant: str) -> None:
    agency = await api.organisation("agency")
    before = await snapshot(api)
    r = await api.post("/api/v1/tenders", agency, json=api.tender_body(documents_from=instant))
    assert problem(r, 422)["errors"] == [{"field": "documents_from", "message": "out of range"}]
    assert await snapshot(api) == before


@pytest.mark.parametrize(
    ("code", "status"),
    [("91320100MA0000001C", 422), ("91320100MA000000IB", 422), ("9132", 400), (18 * "9", 422)],
    ids=["check character", "letter I", "too short", "all nines"],
)
async def test_a_malformed_tenderer_credit_code_is_refused_naming_it(
    api: Api, code: str, status: int
) -> None:
    agency = await api.organisation("agency")
    url = f"/api/v1/tenders/{(await api.draft(agency))['id']}"
    before, read = await snapshot(api), (await api.get(url, agency)).json()
    r = await api.post("/api/v1/tenders", agency, json=api.tender_body(tenderer_credit_code=code))
    assert fields(r, status) == ["tenderer_credit_code"]
    r = await api.patch(url, agency, json={"tenderer_credit_code": code}, headers={"If-Match": '"1"'})
    assert fields(r, status) == ["tenderer_credit_code"]
    assert await snapshot(api) == before
    assert (await api.get(url, agency)).json() == read


async def test_a_nul_character_in_a_login_is_refused_naming_the_field(api: Api) -> None:
    r = await api.post("/api/v1/auth/login", json={"username": "centre\x00", "password": PASSWORD})
    assert problem(r, 400)["errors"] == [{"field": "username", "message": "contains a NUL character"}]


async def test_a_nul_character_deep_in_a_body_is_refused_naming_its_path(api: Api) -> None:
    agency = await api.organisation("agency")
    lots = [{"title": "第一标段\x00", "estimated_price_fen": 5_000_000_000, "deposit_fen": 80_000_000}]
    r = await api.post("/api/v1/tenders", agency, json=api.tender_body(lots=lots))
    assert problem(r, 400)["errors"] == [{"field": "lots[0].title", "message": "contains a NUL character"}]


async def test_a_nul_character_in_a_field_name_is_refused_naming_it(api: Api) -> None:
    agency = await api.organisation("agency")
    r = await api.post("/api/v1/tenders", agency, json={**api.tender_body(), "ti\x00tle": "x"})
    assert problem(r, 400)["errors"] == [{"field": "ti\x00tle", "message": "contains a NUL character"}]


# ---------------------------------------------------------------- path and query parameters


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/tenders/not-a-uuid", 404),
        ("POST", "/api/v1/tenders/not-a-uuid/publish", 404),
        ("GET", "/api/v1/tenders/00000000-0000-0000-0000-00000000000g/bids", 404),
        ("POST", "/api/v1/organisations/1234/approve", 404),
        ("POST", "/api/v1/users/..%2F..%2Fetc/deactivate", 404),
        ("PUT", "/api/v1/calendar/twenty-six", 404),
        ("PUT", "/api/v1/calendar/99999999999999999999999", 400),
        ("POST", "/api/v1/jobs/not-a-uuid/retry", 404),
        ("GET", "/api/v1/jobs/dead?limit=0", 400),
        ("GET", "/api/v1/jobs/dead?limit=many", 400),
    ],
)
async def test_a_malformed_path_parameter_is_a_client_error(
    api: Api, method: str, path: str, status: int
) -> None:
    centre = await api.bootstrap_centre()
    r = await api.client.request(method, path, json={}, headers=centre.headers)
    problem(r, status)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "maybe", "note": "x"}, "decision"),
        ({"decision": "known", "note": ""}, "note"),
        ({"decision": "known"}, "note"),
        ({"note": "x"}, "decision"),
    ],
)
async def test_a_conflict_resolution_without_a_decision_or_grounds_is_refused_naming_it(
    api: Api, body: dict[str, Any], field: str
) -> None:
    centre, conflict = await bank_line_conflict(api)
    before = await snapshot(api)
    r = await api.post(f"/api/v1/escrow/conflicts/{conflict}/resolution", centre, json=body)
    assert fields(r, 400) == [field]
    assert await snapshot(api) == before


async def test_a_conflict_is_resolved_once_and_the_second_decision_changes_nothing(api: Api) -> None:
    centre, conflict = await bank_line_conflict(api)
    url = f"/api/v1/escrow/conflicts/{conflict}"
    assert (
        await api.post(f"{url}/resolution", centre, json={"decision": "known", "note": "银行确认"})
    ).status_code == 200
    before, first = await snapshot(api), (await api.get(url, centre)).json()
    r = await api.post(f"{url}/resolution", centre, json={"decision": "incoming", "note": "改判"})
    assert problem(r, 409)["errors"] == [{"field": "decision", "message": "resolved"}]
    after = await snapshot(api)
    # nothing changed but the refused attempt itself, which the audit trail keeps (a 409 is one)
    assert {t: after[t] - before[t] for t in after if after[t] != before[t]} == {"audit_events": 1}
    assert (await api.get(url, centre)).json() == first


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/transparency/ledger/heads/0", {}, 400),
        ("/api/v1/transparency/ledger/heads/-3", {}, 400),
        ("/api/v1/transparency/ledger/heads/99999999999999999999999", {}, 400),
        ("/api/v1/transparency/ledger/heads/7", {}, 404),
        ("/api/v1/transparency/ledger/heads", {"limit": "0"}, 400),
        ("/api/v1/transparency/ledger/heads", {"limit": "1001"}, 400),
        ("/api/v1/transparency/ledger/heads", {"after": "-1"}, 400),
        ("/api/v1/transparency/ledger/heads", {"after": "x"}, 400),
        ("/api/v1/escrow/conflicts", {"status": "closed"}, 400),
    ],
)
async def test_malformed_ledger_head_and_conflict_queries_are_client_errors(
    api: Api, path: str, params: dict[str, str], status: int
) -> None:
    auditor = await api.organisation("auditor")
    problem(await api.get(path, auditor, params=params), status)


async def test_a_nul_character_in_a_query_parameter_is_refused_naming_it(api: Api) -> None:
    r = await api.get("/api/v1/notices", params={"q": "污水\x00处理"})
    assert problem(r, 400)["errors"] == [{"field": "q", "message": "contains a NUL character"}]


async def test_a_non_integer_limit_is_refused_naming_limit(api: Api) -> None:
    r = await api.get("/api/v1/notices", params={"limit": "ten"})
    assert problem(r, 400)["errors"] == [{"field": "limit", "message": "Expected `int`, got `str`"}]


async def test_a_malformed_uuid_filter_is_refused_naming_it(api: Api) -> None:
    centre = await api.bootstrap_centre()
    r = await api.get("/api/v1/audit", centre, params={"actor_organisation_id": "not-a-uuid"})
    assert fields(r, 400) == ["actor_organisation_id"]


@pytest.mark.parametrize("path", ["/api/v1/tenders", "/api/v1/notices"])
async def test_a_malformed_cursor_on_a_public_list_is_refused_naming_cursor(api: Api, path: str) -> None:
    r = await api.get(
        path, params={"cursor": base64.urlsafe_b64encode(b'["2026-01-01T00:00:00Z", 7]').decode()}
    )
    assert problem(r, 422)["errors"] == [{"field": "cursor", "message": "malformed cursor"}]


# ---------------------------------------------------------------- the audit trail's check and heads


async def kept_head(api: Api) -> tuple[Actor, dict[str, Any]]:
    auditor = await api.organisation("auditor")
    await api.tick()
    r = await api.get("/api/v1/transparency/audit/head")
    assert r.status_code == 200, r.text
    return auditor, dict(r.json())


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"sequence": 0}, "head.sequence", "must be a whole number from 1 to 9223372036854775807"),
        ({"sequence": 2**63}, "head.sequence", "must be a whole number from 1 to 9223372036854775807"),
        ({"events": -1}, "head.events", "must be a whole number from 0 to 9223372036854775807"),
        ({"chain_hash": "00"}, "head.chain_hash", "must be 64 lowercase hexadecimal digits"),
        ({"signed_at": "yesterday"}, "head.signed_at", "must read like 2026-03-02T01:00:00.000000Z"),
        ({"signature": "AAAA"}, "head.signature", "must be the base64 of 64 bytes"),
        (
            {"version": "ggzy-ledger-head-v1"},
            "head.version",
            "must be 'ggzy-audit-head-v1' (this is not a head of the audit trail)",
        ),
        ({"root_hash": "AAAA"}, "head.root_hash", "unknown field"),
    ],
)
async def test_a_kept_head_that_is_not_a_head_is_refused_naming_its_field(
    api: Api, change: dict[str, Any], field: str, message: str
) -> None:
    auditor, head = await kept_head(api)
    before = await snapshot(api)
    r = await api.post("/api/v1/audit/verify", auditor, json={"head": {**head, **change}})
    assert problem(r, 422)["errors"] == [{"field": field, "message": message}]
    assert await snapshot(api) == before


async def test_a_transparency_tree_head_is_refused_as_a_kept_audit_head(api: Api) -> None:
    auditor, _head = await kept_head(api)
    tree_head = {
        "log_id": "ggzy/bids/v1",
        "tree_size": 1,
        "root_hash": "AAAA",
        "timestamp": "x",
        "kind": "head",
    }
    r = await api.post("/api/v1/audit/verify", auditor, json={"head": tree_head})
    assert problem(r, 422)["errors"] == [{"field": "head.version", "message": "missing"}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"head": 5}, "head"),
        ({}, "head"),
        ({"head": {}, "limit": 0}, "limit"),
        ({"head": {}, "limit": "all"}, "limit"),
    ],
)
async def test_a_malformed_check_request_is_refused_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    auditor = await api.organisation("auditor")
    assert fields(await api.post("/api/v1/audit/verify", auditor, json=body), 400) == [field]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/transparency/audit/heads/0", {}, "path:sequence"),
        ("/api/v1/transparency/audit/heads/-1", {}, "path:sequence"),
        (f"/api/v1/transparency/audit/heads/{2**63}", {}, "path:sequence"),
        ("/api/v1/transparency/audit/heads", {"after": "-1"}, "after"),
        ("/api/v1/transparency/audit/heads", {"after": "seven"}, "after"),
        ("/api/v1/transparency/audit/heads", {"limit": "0"}, "limit"),
        ("/api/v1/transparency/audit/heads", {"limit": "201"}, "limit"),
        ("/api/v1/audit/verify", {"limit": "0"}, "limit"),
        ("/api/v1/audit/verify", {"limit": "10001"}, "limit"),
    ],
)
async def test_an_audit_head_or_check_query_out_of_range_is_refused_naming_it(
    api: Api, path: str, params: dict[str, str], field: str
) -> None:
    auditor = await api.organisation("auditor")
    assert fields(await api.get(path, auditor, params=params), 400) == [field]


@pytest.mark.parametrize("number", ["2", "seven", "1.5"])
async def test_a_head_the_trail_has_not_reached_or_not_a_number_is_not_found(api: Api, number: str) -> None:
    await kept_head(api)
    r = await api.get(f"/api/v1/transparency/audit/heads/{number}")
    problem(r, 404)


# ---------------------------------------------------------------- fuzzing: never a 500

_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
instants = st.datetimes(timezones=st.none() | st.just(UTC) | _offsets).map(datetime.isoformat)
_ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T")


def mostly(typed: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Three times in four a value of the expected kind, otherwise any JSON value."""
    return st.integers(0, 3).flatmap(lambda pick: typed if pick else json_values)


def variants(valid: Any) -> st.SearchStrategy[Any]:
    """Values of the same kind as `valid` at and beyond its limits, or any JSON value at all."""
    if isinstance(valid, dict):
        return mostly(mutations(valid))
    if isinstance(valid, list) and valid:
        return mostly(st.lists(variants(valid[0]), max_size=3))
    if isinstance(valid, bool):
        return mostly(st.booleans())
    if isinstance(valid, int):
        return mostly(st.integers(-(2**70), 2**70) | st.integers(-10, 10**16))
    if isinstance(valid, str) and _ISO_INSTANT.match(valid):
        return mostly(instants)
    if isinstance(valid, str):
        return mostly(st.text(max_size=400))
    return json_values


def mutations(valid: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """`valid` with one or two fields given odd values, now and then one left out or an unknown one added,
    so most examples get past the shape check into the use case."""

    @st.composite
    def mutated(draw: st.DrawFn) -> dict[str, Any]:
        body = dict(valid)
        for name in draw(st.lists(st.sampled_from(sorted(valid)), min_size=1, max_size=2, unique=True)):
            body[name] = draw(variants(valid[name]))
        if draw(st.integers(0, 9)) == 0:
            body.pop(draw(st.sampled_from(sorted(body))), None)
        if draw(st.integers(0, 9)) == 0:
            body["unknown"] = draw(json_values)
        return body

    return mutated()


async def never_a_server_error(
    strategy: st.SearchStrategy[Any],
    send: Callable[[Any], Coroutine[Any, Any, Response]],
    examples: int = 50,
) -> None:
    """Run hypothesis in a worker thread, sending each example through the app on this test's event loop."""
    loop = asyncio.get_running_loop()

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def probe(value: Any) -> None:
        r: Response = asyncio.run_coroutine_threadsafe(send(value), loop).result(timeout=120)
        assert r.status_code < 500, f"{value!r} -> {r.status_code} {r.text}"
        if r.status_code >= 400:
            assert r.headers["content-type"] == PROBLEM_JSON

    await asyncio.to_thread(probe)


async def test_fuzzed_tender_bodies_never_cause_a_server_error(api: Api) -> None:
    agency = await api.organisation("agency")
    await never_a_server_error(
        mostly(mutations(api.tender_body())),
        lambda body: api.post("/api/v1/tenders", agency, json=body),
    )


async def test_fuzzed_well_formed_timelines_and_amounts_never_cause_a_server_error(api: Api) -> None:
    """Bodies that pass the shape check, so every example reaches the use case's own rules."""
    agency = await api.organisation("agency")
    aware = st.datetimes(
        min_value=datetime(1999, 12, 31), max_value=datetime(2100, 1, 1), timezones=st.just(UTC) | _offsets
    ).map(datetime.isoformat)
    fen = st.integers(0, 10**15)
    lot = st.fixed_dictionaries(
        {"title": st.just("第一标段"), "estimated_price_fen": fen.filter(bool), "deposit_fen": fen}
    )
    bodies = st.builds(
        lambda documents_from, bid_deadline, lots: api.tender_body(
            documents_from=documents_from, bid_deadline=bid_deadline, lots=lots
        ),
        aware,
        aware,
        st.lists(lot, min_size=1, max_size=3),
    )
    await never_a_server_error(bodies, lambda body: api.post("/api/v1/tenders", agency, json=body))


async def test_fuzzed_draft_edits_never_cause_a_server_error(api: Api) -> None:
    agency = await api.organisation("agency")
    draft = await api.draft(agency)
    url = f"/api/v1/tenders/{draft['id']}"
    editable = {
        k: draft[k] for k in ("title", "qualification", "documents_from", "bid_deadline", "publicity_days")
    }

    async def edit(body: Any) -> Response:
        etag = (await api.get(url, agency)).headers["etag"]
        return await api.patch(url, agency, json=body, headers={"If-Match": etag})

    await never_a_server_error(mostly(mutations(editable)), edit)


async def test_fuzzed_registrations_never_cause_a_server_error(api: Api) -> None:
    valid = {
        "organisation_name": "江苏恒通建设集团有限公司",
        "credit_code": credit_code(),
        "kind": "bidder",
        "username": "hengtong",
        "password": PASSWORD,
        "display_name": "张伟",
        "contact_email": "tender@hengtong.example",
    }
    await never_a_server_error(
        mostly(mutations(valid)), lambda body: api.post("/api/v1/registrations", json=body), examples=30
    )


async def test_fuzzed_logins_never_cause_a_server_error(api: Api) -> None:
    await api.bootstrap_centre()
    valid = {"username": "centre", "password": PASSWORD}
    await never_a_server_error(
        mostly(mutations(valid)), lambda body: api.post("/api/v1/auth/login", json=body), examples=30
    )


async def test_fuzzed_password_changes_never_cause_a_server_error(api: Api) -> None:
    agency = await api.organisation("agency")
    valid = {"current_password": "not the password at all", "new_password": "a brand new passphrase 7"}
    await never_a_server_error(
        mostly(mutations(valid)),
        lambda body: api.post("/api/v1/auth/password", agency, json=body),
        examples=30,
    )


async def test_fuzzed_api_token_requests_never_cause_a_server_error(api: Api) -> None:
    agency = await api.organisation("agency")
    valid = {"name": "agency ERP", "roles": ["agency"], "expires_at": "2027-01-01T00:00:00+08:00"}
    await never_a_server_error(
        mostly(mutations(valid)), lambda body: api.post("/api/v1/auth/tokens", agency, json=body)
    )


async def test_fuzzed_list_queries_never_cause_a_server_error(api: Api) -> None:
    centre = await api.bootstrap_centre()
    names = [
        "cursor",
        "limit",
        "q",
        "kind",
        "status",
        "mine",
        "object_type",
        "object_id",
        "actor_organisation_id",
    ]
    params = st.dictionaries(
        st.sampled_from(names), st.text(max_size=60) | st.integers().map(str), max_size=4
    )
    paths = st.sampled_from(["/api/v1/notices", "/api/v1/tenders", "/api/v1/audit", "/api/v1/organisations"])
    await never_a_server_error(
        st.tuples(paths, params), lambda case: api.get(case[0], centre, params=case[1]), examples=60
    )


async def test_fuzzed_expert_enrolments_never_cause_a_server_error(api: Api) -> None:
    await seed_specialties(api)
    user = await expert_user(api)
    await never_a_server_error(
        mostly(mutations(enrolment())),
        lambda body: api.post("/api/v1/evaluation/me/enrol", user, json=body),
        examples=30,
    )


async def test_fuzzed_expert_import_files_never_cause_a_server_error(api: Api) -> None:
    """Files with the real header and odd cells, and bytes that claim to be a workbook."""
    await seed_specialties(api)
    cell = st.text(st.characters(codec="utf-8"), max_size=24) | st.sampled_from(
        ["E000001", "A0101;B01", "A0101;A0101", "active", "2026-02-30", "320100", credit_code(), "centre"]
    )

    def as_csv(rows: list[list[str]]) -> bytes:
        out = io.StringIO(newline="")
        writer = csv.writer(out)
        writer.writerow(pool.IMPORT_COLUMNS)
        writer.writerows(rows)
        return out.getvalue().encode()

    files = st.lists(st.lists(cell, max_size=14), max_size=4).map(lambda rows: (as_csv(rows), "text/csv")) | (
        st.binary(max_size=200).map(lambda data: (b"PK\x03\x04" + data, XLSX))
    )
    await never_a_server_error(files, lambda case: import_file(api, case[0], case[1]), examples=40)


async def test_fuzzed_draw_requests_never_cause_a_server_error(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    await api.seed_specialties()
    for _ in range(3):
        await api.expert()
    valid = {
        **draw_body(api),
        "representative_user_id": (await api.get("/api/v1/auth/me", agency)).json()["user_id"],
    }
    url = f"/api/v1/evaluation/tenders/{tender['id']}/draws"
    supervisor = await api.organisation("supervisor")

    async def request(body: Any) -> Response:
        r = await api.post(url, agency, json=body)
        if r.status_code == 201:  # a tender has one live draw: abort it, so the next example gets as far
            draw_url = f"/api/v1/evaluation/draws/{r.json()['id']}"
            asked = await api.post(f"{draw_url}/abort", agency, json={"reason": "fuzzing the draw request"})
            assert asked.status_code == 201, asked.text
            approval = {"request_id": asked.json()["id"]}
            aborted = await api.post(f"{draw_url}/abort/approve", supervisor, json=approval)
            assert aborted.status_code == 200, aborted.text
        return r

    await never_a_server_error(mostly(mutations(valid)), request)


async def test_fuzzed_reviews_never_cause_a_server_error(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, bids = await api.in_evaluation(agency)
    committee = await api.convene(agency, tender["id"])
    # one vote short of a whole review, so no example is accepted and each one reaches the same checks
    base = {
        "lot_id": tender["lots"][0]["id"],
        "votes": [{"bid_id": bids[0].bid_id, "criterion": "Q1", "passed": False, "reason": "营业执照已过期"}],
    }
    url = f"/api/v1/evaluation/rooms/{committee['room_id']}/reviews"
    member = committee["members"][2]
    await never_a_server_error(mostly(mutations(base)), lambda body: api.post(url, member, json=body))


# ---------------------------------------------------------------- custody releases


async def custody_release(api: Api) -> tuple[str, Actor, str, dict[str, Any]]:
    """A tender with one envelope in custody: (its releases URL, a custodian, the envelope's bid id, that
    custodian's valid release of it)."""
    from bidding import custody, envelope
    from tests.helpers import AFTER_WINDOW, DEADLINE

    tender = await api.published(await api.organisation("agency"))
    bids = [await api.bid(await api.organisation("bidder"), tender, 4_000_000_000 - i) for i in range(4)]
    await api.at(DEADLINE)
    for bid in bids[:3]:
        await api.reveal(tender["id"], bid)
    await api.at(AFTER_WINDOW)
    custodian = (await api.custodians())[1]
    view = (await api.get(f"/api/v1/tenders/{tender['id']}/custody", custodian)).json()
    header = envelope.parse_header(base64.b64decode(view["envelopes"][0]["header"]))
    identity = api.keys[custodian.organisation_id].encryption.private_bytes_raw()
    release = custody.make_release(identity, header, context=view["tender_code"], x=view["position"])
    return f"/api/v1/tenders/{tender['id']}/custody/releases", custodian, bids[3].bid_id, release.to_json()


@pytest.mark.parametrize(
    "change",
    [
        lambda r: {**r, "v": 2},
        lambda r: {**r, "scheme": "ggzy/v0/custody"},
        lambda r: {k: v for k, v in r.items() if k != "proof"},
        lambda r: {**r, "x": -1},
        lambda r: {**r, "x": "2"},
        lambda r: {**r, "shared_secret": "not base64"},
        lambda r: {**r, "proof": {**r["proof"], "s": base64.b64encode(bytes(31)).decode()}},
        lambda r: {**r, "header_sha256": "ABC"},
        lambda r: {**r, "is_admin": True},
    ],
    ids=[
        "version",
        "scheme",
        "no-proof",
        "negative-x",
        "string-x",
        "secret",
        "short-scalar",
        "hash",
        "extra",
    ],
)
async def test_a_release_that_is_not_one_is_refused_naming_it_and_changes_nothing(
    api: Api, change: Any
) -> None:
    url, custodian, bid_id, release = await custody_release(api)
    before = await snapshot(api)
    r = await api.post(url, custodian, json={"bid_id": bid_id, "release": change(release)})
    body = problem(r, 422)
    assert (body["errors"], body["release_error"]) == (
        [{"field": "release", "message": "release.encoding"}],
        "release.encoding",
    )
    assert await snapshot(api) == before


async def test_a_release_of_an_unknown_envelope_is_refused_naming_bid_id(api: Api) -> None:
    url, custodian, _bid_id, release = await custody_release(api)
    before = await snapshot(api)
    for bid_id, status in (("00000000-0000-0000-0000-000000000001", 422), ("not-a-uuid", 400)):
        r = await api.post(url, custodian, json={"bid_id": bid_id, "release": release})
        assert fields(r, status) == ["bid_id"]
    assert fields(await api.post(url, custodian, json={"bid_id": _bid_id, "release": "x"}), 400) == [
        "release"
    ]
    assert await snapshot(api) == before


async def test_an_invalid_proof_is_the_one_refusal_kept_on_record_as_evidence(api: Api) -> None:
    url, custodian, bid_id, release = await custody_release(api)
    forged = {**release, "shared_secret": base64.b64encode(b"\x09" + bytes(31)).decode()}
    before = await snapshot(api)
    r = await api.post(url, custodian, json={"bid_id": bid_id, "release": forged})
    assert problem(r, 422)["release_error"] == "release.secret"
    after = await snapshot(api)
    # the custodian's fault is evidence: the release and its audit line are kept, nothing else changes
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == {
        "custody_shares": 1,
        "audit_events": 1,
    }


async def test_fuzzed_releases_never_cause_a_server_error(api: Api) -> None:
    url, custodian, bid_id, release = await custody_release(api)
    # a valid release would be accepted; each example mutates it, so it reaches the same checks
    await never_a_server_error(
        mostly(mutations({"bid_id": bid_id, "release": release})),
        lambda body: api.post(url, custodian, json=body),
    )


async def test_fuzzed_kept_heads_never_cause_a_server_error(api: Api) -> None:
    auditor, head = await kept_head(api)
    await never_a_server_error(
        mostly(mutations({"head": head, "limit": 5})),
        lambda body: api.post("/api/v1/audit/verify", auditor, json=body),
    )


# ---------------------------------------------------------------- integers past the database's range

INT32_PAST = str(2**31)
INT64_PAST = str(2**63)


@pytest.mark.parametrize("value", [INT64_PAST, "-1", "0"])
async def test_a_tree_size_past_its_bounds_is_refused_naming_it(api: Api, value: str) -> None:
    r = await api.get("/api/v1/transparency/head", params={"tree_size": value})
    assert fields(r, 400) == ["tree_size"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/transparency/inclusion", {"leaf_index": INT64_PAST, "tree_size": "1"}),
        ("/api/v1/transparency/inclusion", {"leaf_index": "0", "tree_size": INT64_PAST}),
        ("/api/v1/transparency/consistency", {"first": INT64_PAST, "second": "1"}),
        ("/api/v1/transparency/consistency", {"first": "1", "second": INT64_PAST}),
    ],
    ids=["leaf_index", "inclusion-tree_size", "first", "second"],
)
async def test_a_transparency_proof_past_the_range_is_refused_naming_it(
    api: Api, path: str, params: dict[str, str]
) -> None:
    [name] = [k for k, v in params.items() if v == INT64_PAST]
    assert fields(await api.get(path, params=params), 400) == [name]


async def test_an_opening_record_or_stream_position_past_the_range_is_refused_naming_it(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    await api.at(DEADLINE)
    base = f"/api/v1/tenders/{tender['id']}/opening"
    for value in (INT32_PAST, INT64_PAST):
        assert fields(await api.get(f"{base}/record", agency, params={"after": value}), 400) == ["after"]
        r = await api.get(f"{base}/events", agency, params={"after": value, "follow": "false"})
        assert fields(r, 400) == ["after"]
        headers = {**agency.headers, "Last-Event-ID": value}
        r = await api.client.get(f"{base}/events", params={"follow": "false"}, headers=headers)
        assert fields(r, 400) == ["header:Last-Event-ID"]


async def test_a_room_stream_position_past_the_range_is_refused_naming_it(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    committee = await api.convene(agency, tender["id"])
    chair = committee["members"][1]
    url = f"/api/v1/evaluation/rooms/{committee['room_id']}/events"
    for value in (INT32_PAST, INT64_PAST):
        r = await api.get(url, chair, params={"after": value, "follow": "false"})
        assert fields(r, 400) == ["after"]
        headers = {**chair.headers, "Last-Event-ID": value}
        r = await api.client.get(url, params={"follow": "false"}, headers=headers)
        assert fields(r, 400) == ["header:Last-Event-ID"]


@pytest.mark.parametrize("path", ["/api/v1/tenders", "/api/v1/notices"])
@pytest.mark.parametrize("value", [INT64_PAST, "-1", "0", "201"])
async def test_a_limit_out_of_range_is_refused_naming_it(api: Api, path: str, value: str) -> None:
    assert fields(await api.get(path, params={"limit": value}), 400) == ["limit"]


@pytest.mark.parametrize("year", [str(2**63), "99999", "0"])
async def test_a_calendar_year_out_of_range_is_refused(api: Api, year: str) -> None:
    centre = await api.bootstrap_centre()
    r = await api.client.put(
        f"/api/v1/calendar/{year}", json={"year": 2027, "holidays": []}, headers=centre.headers
    )
    assert r.status_code in (400, 404), r.text
    assert r.headers["content-type"] == PROBLEM_JSON


# ---------------------------------------------------------------- every bound is stated in the schema


def _unbounded(
    schema: dict[str, Any], where: str, components: dict[str, Any], seen: tuple[str, ...]
) -> list[str]:
    """The integers without a minimum and a maximum, strings without a maximum length (or a closed set of
    values) and lists without a maximum of items, anywhere in `schema`."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return [] if name in seen else _unbounded(components[name], where, components, (*seen, name))
    combined = [k for k in ("oneOf", "anyOf", "allOf") if k in schema]
    if combined:
        # Litestar states the bounds of an optional field beside its alternatives.
        outer = {k: v for k, v in schema.items() if k not in combined}
        return [
            gap
            for key in combined
            for alternative in schema[key]
            for gap in _unbounded(
                alternative if "$ref" in alternative else {**outer, **alternative}, where, components, seen
            )
        ]
    gaps = []
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    lower = {"minimum", "exclusiveMinimum"} & schema.keys()
    upper = {"maximum", "exclusiveMaximum"} & schema.keys()
    if "integer" in kinds and not (lower and upper):
        gaps.append(f"{where}: integer")
    closed = {"enum", "const", "maxLength"} & schema.keys() or schema.get("format") in (
        "uuid",
        "date-time",
        "date",
    )
    if "string" in kinds and not closed:
        gaps.append(f"{where}: string")
    if "array" in kinds:
        if "maxItems" not in schema:
            gaps.append(f"{where}: array")
        gaps += _unbounded(schema.get("items", {}), f"{where}[]", components, seen)
    for name, child in schema.get("properties", {}).items():
        gaps += _unbounded(child, f"{where}.{name}", components, seen)
    return gaps


def test_every_parameter_and_body_field_states_its_bounds() -> None:
    spec = openapi_spec()
    components = spec.get("components", {}).get("schemas", {})
    gaps = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                name = f"{where} {parameter['in']}:{parameter['name']}"
                gaps += _unbounded(parameter.get("schema", {}), name, components, ())
            for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
                gaps += _unbounded(content.get("schema", {}), f"{where} body({media_type})", components, ())
    assert gaps == [
        # Litestar leaves the bounds of a list's items out of the schema; msgspec enforces the code's pattern
        "POST /api/v1/projects body(application/json).documents[]: string",
        "POST /api/v1/evaluation/me/enrol body(application/json).specialties[]: string",
        "PATCH /api/v1/evaluation/me body(application/json).specialties[]: string",
    ]


def openapi_spec() -> dict[str, Any]:
    """The application's OpenAPI document, built without a database."""
    import secrets
    import tempfile
    from pathlib import Path

    from app import build_runtime, create_app
    from storage.settings import Settings

    settings = Settings(var_dir=Path(tempfile.mkdtemp()), secret_key=secrets.token_urlsafe(32))
    app = create_app(build_runtime(settings), manage_runtime=False)
    return dict(app.openapi_schema.to_schema())


# ---------------------------------------------------------------- JSON only as JSON, and only one of each key


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_a_json_body_sent_as_another_type_is_refused_with_415(api: Api, content_type: str) -> None:
    t = await target(api, "create_tender")
    before = await state(api, t)
    headers = {**(t.actor.headers if t.actor else {}), "content-type": content_type}
    r = await api.client.post(t.url, content=json_bytes(t.body), headers=headers)
    assert fields(r, 415) == ["header:Content-Type"]
    await unchanged(api, t, *before)


async def test_a_json_body_without_a_content_type_is_refused_with_415(api: Api) -> None:
    t = await target(api, "register_public_key")
    before = await state(api, t)
    assert t.actor is not None
    request = api.client.build_request("POST", t.url, content=json_bytes(t.body), headers=t.actor.headers)
    request.headers.pop("content-type", None)
    assert fields(await api.client.send(request), 415) == ["header:Content-Type"]
    await unchanged(api, t, *before)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json"])
async def test_json_content_types_are_accepted(api: Api, content_type: str) -> None:
    t = await target(api, "create_tender")
    headers = {**(t.actor.headers if t.actor else {}), "content-type": content_type}
    r = await api.client.post(t.url, content=json_bytes(t.body), headers=headers)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("name", ["create_tender", "register_organisation", "change_password"])
async def test_a_duplicate_key_is_refused_naming_it(api: Api, name: str) -> None:
    t = await target(api, name)
    before = await state(api, t)
    raw = json_bytes(t.body)
    duplicate = raw[:-1] + b", " + json_bytes({t.text_field: t.body[t.text_field]})[1:]
    r = await t.send(api, content=duplicate)
    assert problem(r, 400)["errors"] == [{"field": t.text_field, "message": "duplicate key"}]
    await unchanged(api, t, *before)


async def test_a_duplicate_key_deep_in_a_body_is_refused_naming_its_path(api: Api) -> None:
    agency = await api.organisation("agency")
    before = await snapshot(api)
    body = json_bytes(api.tender_body())
    lot = b'"lots": [{"title": "A", "title": "B", '
    r = await api.client.post(
        "/api/v1/tenders",
        content=body.replace(b'"lots": [{', lot, 1).replace(b'"lots":[{', lot, 1),
        headers={**agency.headers, "content-type": "application/json"},
    )
    assert problem(r, 400)["errors"] == [{"field": "lots[0].title", "message": "duplicate key"}]
    assert await snapshot(api) == before


def json_bytes(value: Any) -> bytes:
    import json

    return json.dumps(value, ensure_ascii=False).encode()


# ---------------------------------------------------------------- every rule refusal carries its rule

RULE_ID = re.compile(r"\b[A-Z]-\d{2}\b")
PROBLEM_CLASSES = frozenset(
    {
        "Problem",
        "ValidationProblem",
        "Forbidden",
        "NotFound",
        "Conflict",
        "PreconditionFailed",
        "PreconditionRequired",
        "TooManyRequests",
        "ServiceUnavailable",
        "MalformedRequest",
        "ImportRefused",
        "ChainBroken",
    }
)


def test_every_refusal_that_cites_a_rule_carries_it_as_its_rule() -> None:
    """A refusal whose text cites a rule id (W-02) names it in `rule` too, unless it names the fields."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    prose_only = []
    for package in ("accounts", "archive", "bidding", "escrow", "evaluation", "storage", "trading"):
        for source in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(source.read_text())):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                text = " ".join(
                    n.value
                    for n in ast.walk(node.args[0])
                    if isinstance(n, ast.Constant) and isinstance(n.value, str)
                )
                keywords = {k.arg for k in node.keywords}
                if name in PROBLEM_CLASSES and RULE_ID.search(text) and not keywords & {"rule", "errors"}:
                    prose_only.append(f"{source.relative_to(root)}:{node.lineno}")
    assert prose_only == []


async def test_editing_a_published_tender_is_refused_citing_w02(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    url = f"/api/v1/tenders/{tender['id']}"
    etag = (await api.get(url, agency)).headers["etag"]
    r = await api.client.patch(
        url, json={"title": "城北污水处理厂扩建工程二期"}, headers={**agency.headers, "If-Match": etag}
    )
    body = problem(r, 409)
    assert body["rule"] == "W-02" and body["type"] == "tag:ggzy,2026:rule/W-02"


async def test_terminating_a_tender_after_its_deadline_is_refused_citing_w08(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    api.clock.set(DEADLINE)  # the deadline has passed; the chronograph has yet to close the bidding
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/cancel", agency, json={"reason": "项目资金未落实，终止招标"}
    )
    assert problem(r, 409)["rule"] == "W-08"


# ---------------------------------------------------------------- OPTIONS answers every method of a path


async def test_options_lists_every_method_of_each_path(api: Api) -> None:
    spec = openapi_spec()
    wrong = {}
    for path, item in spec["paths"].items():
        methods = {m.upper() for m in item if m in ("get", "put", "post", "patch", "delete")}
        url = path.replace("{year}", "2027").replace("{sequence}", "1")
        url = re.sub(r"\{[^}]*\}", "00000000-0000-4000-8000-000000000000", url)
        r = await api.client.request("OPTIONS", url)
        allow = {m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()}
        if r.status_code != 204 or allow != methods | {"OPTIONS"} | ({"HEAD"} if "HEAD" in allow else set()):
            wrong[path] = (r.status_code, sorted(allow), sorted(methods))
    assert wrong == {}
