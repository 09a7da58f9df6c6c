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

from evaluation import pool
from storage.models import metadata
from tests.evaluation.pool_fixtures import (
    XLSX,
    enrol_expert,
    enrolment,
    expert_user,
    import_file,
    seed_specialties,
)
from tests.helpers import PASSWORD, Actor, Api, credit_code

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
    "run_draw",
    "ask_clarification",
    "answer_clarification",
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
    if name in ("run_draw", "ask_clarification", "answer_clarification"):
        return await evaluation_target(api, name)
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


async def evaluation_target(api: Api, name: str) -> Target:
    """The body-taking routes of the draw and the room: the centre runs a committed draw; the chair of an open
    room asks a bidder to clarify; the bidder answers."""
    agency = await api.organisation("agency")
    tender, bids = await api.in_evaluation(agency)
    if name == "run_draw":
        await api.seed_specialties()
        r = await api.post(f"/api/v1/evaluation/tenders/{tender['id']}/draws", agency, json=draw_body(api))
        assert r.status_code == 201, r.text
        url = f"/api/v1/evaluation/draws/{r.json()['id']}"
        body = {"witness": "监督人现场见证 7f3a"}
        return Target("POST", f"{url}/run", await api.bootstrap_centre(), body, "witness", read_back=url)
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


async def unchanged(api: Api, t: Target, before: dict[str, int], before_read: Any) -> None:
    assert await snapshot(api) == before
    if t.read_back is not None:
        assert (await api.get(t.read_back, t.actor)).json() == before_read


async def state(api: Api, t: Target) -> tuple[dict[str, int], Any]:
    read = (await api.get(t.read_back, t.actor)).json() if t.read_back else None
    return await snapshot(api), read


# ---------------------------------------------------------------- the same refusals on every body-taking route


@pytest.mark.parametrize("name", TARGETS)
async def test_the_valid_body_is_accepted(api: Api, name: str) -> None:
    t = await target(api, name)
    r = await t.send(api, json=t.body)
    assert r.status_code in (200, 201, 202, 204), r.text


@pytest.mark.parametrize("name", TARGETS)
async def test_malformed_json_is_refused_with_400(api: Api, name: str) -> None:
    t = await target(api, name)
    before = await state(api, t)
    body = problem(await t.send(api, content=b'{"title": "unterminated'), 400)
    assert (body["type"], body["detail"]) == (MALFORMED, "The request body is not valid JSON.")
    assert [e["field"] for e in body["errors"]] == ["body"]
    await unchanged(api, t, *before)


@pytest.mark.parametrize("name", TARGETS)
async def test_an_empty_body_is_refused_with_400(api: Api, name: str) -> None:
    t = await target(api, name)
    before = await state(api, t)
    assert fields(await t.send(api, content=b""), 400) == ["body"]
    await unchanged(api, t, *before)


@pytest.mark.parametrize("name", TARGETS)
async def test_a_body_that_is_not_an_object_is_refused_with_400(api: Api, name: str) -> None:
    t = await target(api, name)
    before = await state(api, t)
    r = await t.send(api, json=[t.body])
    assert problem(r, 400)["errors"] == [{"field": "body", "message": "Expected `object`, got `array`"}]
    await unchanged(api, t, *before)


@pytest.mark.parametrize("name", TARGETS)
async def test_a_wrong_type_is_refused_naming_the_field(api: Api, name: str) -> None:
    t = await target(api, name)
    before = await state(api, t)
    r = await t.send(api, json={**t.body, t.text_field: 12345})
    assert problem(r, 400)["errors"] == [{"field": t.text_field, "message": "Expected `str`, got `int`"}]
    await unchanged(api, t, *before)


@pytest.mark.parametrize("name", TARGETS)
async def test_an_unknown_field_is_refused_naming_it(api: Api, name: str) -> None:
    t = await target(api, name)
    before = await state(api, t)
    r = await t.send(api, json={**t.body, "is_admin": True})
    assert problem(r, 400)["errors"] == [
        {"field": "is_admin", "message": "Object contains unknown field `is_admin`"}
    ]
    await unchanged(api, t, *before)


@pytest.mark.parametrize("name", TARGETS)
async def test_an_oversized_body_is_refused_with_413(api: Api, name: str) -> None:
    t = await target(api, name)
    before = await state(api, t)
    padding = " " * api.runtime.settings.max_body_bytes
    problem(await t.send(api, content=f'{{"{t.text_field}": "x"}}{padding}'.encode()), 413)
    await unchanged(api, t, *before)


@pytest.mark.parametrize("name", TARGETS)
async def test_a_nul_character_is_refused_naming_the_field(api: Api, name: str) -> None:
    t = await target(api, name)
    before = await state(api, t)
    r = await t.send(api, json={**t.body, t.text_field: "城北\x00工程" + "A" * 44})
    assert problem(r, 400)["errors"] == [{"field": t.text_field, "message": "contains a NUL character"}]
    await unchanged(api, t, *before)


@pytest.mark.parametrize("name", TARGETS)
async def test_a_deeply_nested_body_is_refused_with_400(api: Api, name: str) -> None:
    t = await target(api, name)
    before = await state(api, t)
    assert fields(await t.send(api, content=b"[" * 200_000 + b"]" * 200_000), 400) == ["body"]
    await unchanged(api, t, *before)


@pytest.mark.parametrize("name", ["create_tender", "update_tender", "register_organisation", "enrol_expert"])
async def test_a_10000_character_name_is_refused_naming_the_field(api: Api, name: str) -> None:
    t = await target(api, name)
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
    ],
)
async def test_a_malformed_path_parameter_is_a_client_error(
    api: Api, method: str, path: str, status: int
) -> None:
    centre = await api.bootstrap_centre()
    r = await api.client.request(method, path, json={}, headers=centre.headers)
    problem(r, status)


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
    centre = await api.bootstrap_centre()

    async def request(body: Any) -> Response:
        r = await api.post(url, agency, json=body)
        if r.status_code == 201:  # a tender has one live draw: abort it, so the next example gets as far
            reason = {"reason": "fuzzing the draw request"}
            aborted = await api.post(f"/api/v1/evaluation/draws/{r.json()['id']}/abort", centre, json=reason)
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
