"""Who may call what: every route's guard, the role matrix, and the relationship checks behind the guards.

The matrix is built from the app's own routes, so a route added later is checked without touching this file.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from httpx import Response
from litestar import Litestar, get
from litestar.handlers import HTTPRouteHandler

from accounts.guards import authenticated, public
from app import check_guards, create_app
from escrow.controllers import bank_signed
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api

PROBLEM_JSON = "application/problem+json"
AUDIT_HEAD = "/api/v1/transparency/audit/head"
PROBLEM_BASE = "tag:ggzy,2026:problem/"

# Each kind of organisation Api.organisation makes, and the role its users hold.
ROLE_OF_KIND = {
    "centre": "centre",
    "agency": "agency",
    "bidder": "bidder",
    "supervisor": "supervisor",
    "auditor": "auditor",
    "employer": "expert",
    "regulator": "regulator",
}

# Published information (S-03), sign-in and registration, health: the only routes open to everyone.
PUBLIC_OPERATIONS = {
    "health",
    "readiness",
    "login",
    "register_organisation",
    "list_tenders",
    "get_tender",
    "list_documents",
    "list_awards",
    "get_framework",
    "list_framework_orders",
    "list_notices",
    "get_notice",
    "get_closing_head",
    "signed_opening_record",
    "transparency_key",
    "transparency_head",
    "transparency_consistency",
    "transparency_inclusion",
    "ledger_head",
    "ledger_head_at",
    "ledger_heads",
    "audit_head",
    "audit_head_at",
    "audit_heads",
    "get_clock",
}


@dataclass(frozen=True)
class Endpoint:
    """One method of one route, with the guards it resolves to."""

    method: str
    path: str
    operation_id: str
    guards: tuple[Callable[..., Any], ...]

    @property
    def roles(self) -> frozenset[str] | None:
        """The roles the route's `requires(...)` guards admit (all must pass), or None if it has none."""
        sets = [g.roles for g in self.guards if hasattr(g, "roles")]
        return frozenset.intersection(*sets) if sets else None

    @property
    def is_public(self) -> bool:
        return all(g is public for g in self.guards)

    def url(self) -> str:
        """The path with each parameter filled: a fresh UUID, or a year."""

        def fill(match: re.Match[str]) -> str:
            return "2026" if match.group(2) == "int" else str(uuid.uuid4())

        return re.sub(r"\{(\w+):(\w+)\}", fill, self.path)


def _guards(handler: HTTPRouteHandler) -> tuple[Callable[..., Any], ...]:
    # Litestar wraps sync guards; the original function (and its `roles`) is on `.func`.
    return tuple(getattr(g, "func", g) for g in handler.resolve_guards())


def endpoints(app: Litestar) -> Iterator[Endpoint]:
    """Every route method of the app except the OpenAPI schema, automatic OPTIONS and presigned-grant routes."""
    for route in app.routes:
        if route.path.startswith("/schema"):
            continue
        for handler in getattr(route, "route_handlers", []):
            if handler.opt.get("auth") == "grant":
                continue
            for method in sorted(set(handler.http_methods) - {"OPTIONS"}):
                yield Endpoint(
                    method, route.path, handler.operation_id or handler.handler_name, _guards(handler)
                )


async def call(api: Api, endpoint: Endpoint, actor: Actor | None) -> Response:
    """Call the endpoint with filled path parameters and, where a body is taken, an empty JSON object."""
    body: dict[str, Any] | None = {} if endpoint.method in ("POST", "PUT", "PATCH") else None
    headers = actor.headers if actor else {}
    return await api.client.request(endpoint.method, endpoint.url(), json=body, headers=headers)


async def caller(api: Api, kind: str) -> Actor:
    return await api.bootstrap_centre() if kind == "centre" else await api.organisation(kind)


@pytest.fixture
def app(runtime: Any) -> Litestar:
    return create_app(runtime, manage_runtime=False)


def problem(r: Response, status: int, slug: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    body = dict(r.json())
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    if slug is not None:
        assert body["type"] == PROBLEM_BASE + slug
    return body


# ---------------------------------------------------------------- every route has a guard


def test_the_app_passes_its_own_guard_check(app: Litestar) -> None:
    check_guards(app)


def test_every_route_has_a_guard(app: Litestar) -> None:
    found = list(endpoints(app))
    assert len(found) > 40
    assert [f"{e.method} {e.path}" for e in found if not e.guards] == []


def test_every_guard_is_public_authenticated_a_role_requirement_or_the_banks_signature(app: Litestar) -> None:
    odd = [
        f"{e.method} {e.path}: {g}"
        for e in endpoints(app)
        for g in e.guards
        if g is not public and g is not authenticated and g is not bank_signed and not hasattr(g, "roles")
    ]
    assert odd == []


def test_only_published_information_sign_in_and_health_are_public(app: Litestar) -> None:
    assert {e.operation_id for e in endpoints(app) if e.is_public} == PUBLIC_OPERATIONS


def test_presigned_object_routes_are_the_only_ones_exempt_from_guards(app: Litestar) -> None:
    exempt = sorted(
        (route.path, sorted(handler.http_methods))
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if handler.opt.get("auth") == "grant"
    )
    assert exempt == [("/api/v1/objects/{token:str}", ["GET"]), ("/api/v1/objects/{token:str}", ["PUT"])]


def test_the_guard_check_refuses_an_app_with_an_unguarded_route() -> None:
    @get("/api/v1/open-door", operation_id="open_door")
    async def open_door() -> None:
        """A route someone forgot to guard."""

    with pytest.raises(RuntimeError, match=r"/api/v1/open-door \['GET'\]"):
        check_guards(Litestar(route_handlers=[open_door]))


# ---------------------------------------------------------------- the role matrix


async def test_an_anonymous_caller_gets_401_on_every_route_that_is_not_public(
    api: Api, app: Litestar
) -> None:
    wrong = []
    for endpoint in endpoints(app):
        if endpoint.is_public:
            continue
        r = await call(api, endpoint, None)
        if r.status_code != 401 or r.json().get("type") != PROBLEM_BASE + "unauthenticated":
            wrong.append(f"{endpoint.method} {endpoint.path} -> {r.status_code}")
    assert wrong == []


async def test_an_anonymous_caller_is_let_through_every_public_route(api: Api, app: Litestar) -> None:
    answers = {e.operation_id: (await call(api, e, None)).status_code for e in endpoints(app) if e.is_public}
    assert {op: status for op, status in answers.items() if status in (401, 403) or status >= 500} == {}


@pytest.mark.parametrize("kind", sorted(ROLE_OF_KIND))
async def test_a_caller_without_the_role_a_route_requires_gets_403(
    api: Api, app: Litestar, kind: str
) -> None:
    actor = await caller(api, kind)
    role = ROLE_OF_KIND[kind]
    refused = [e for e in endpoints(app) if e.roles is not None and role not in e.roles]
    assert refused, f"no route refuses a {role}"
    wrong = []
    for endpoint in refused:
        r = await call(api, endpoint, actor)
        if r.status_code != 403 or r.json().get("type") != PROBLEM_BASE + "forbidden":
            wrong.append(f"{endpoint.method} {endpoint.path} -> {r.status_code} {r.text[:120]}")
    assert wrong == []


@pytest.mark.parametrize("kind", sorted(ROLE_OF_KIND))
async def test_a_caller_with_the_role_a_route_requires_gets_past_the_guard(
    api: Api, app: Litestar, kind: str
) -> None:
    actor = await caller(api, kind)
    role = ROLE_OF_KIND[kind]
    admitted = [e for e in endpoints(app) if e.roles is not None and role in e.roles]
    wrong = []
    for endpoint in admitted:
        r = await call(api, endpoint, actor)
        refused_by_guard = r.status_code == 403 and r.json()["detail"].startswith(
            "This needs one of the roles"
        )
        if r.status_code == 401 or refused_by_guard or r.status_code >= 500:
            wrong.append(f"{endpoint.method} {endpoint.path} -> {r.status_code} {r.text[:120]}")
    assert wrong == []


async def test_a_forbidden_caller_is_refused_before_its_body_is_read(api: Api) -> None:
    bidder = await api.organisation("bidder")
    r = await api.client.post(
        "/api/v1/tenders",
        content=b"{definitely not json",
        headers={**bidder.headers, "content-type": "application/json"},
    )
    problem(r, 403, "forbidden")


async def test_an_anonymous_caller_is_refused_before_its_body_is_read(api: Api) -> None:
    r = await api.client.post(
        "/api/v1/tenders", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    problem(r, 401, "unauthenticated")


# ---------------------------------------------------------------- relationships behind the guards


async def test_an_agency_cannot_see_another_agencys_draft(api: Api) -> None:
    owner, other = await api.organisation("agency"), await api.organisation("agency")
    draft = await api.draft(owner)
    problem(await api.get(f"/api/v1/tenders/{draft['id']}", other), 404, "not-found")
    assert [
        t["id"] for t in (await api.get("/api/v1/tenders", other, params={"mine": "true"})).json()["items"]
    ] == []


async def test_an_agency_cannot_change_another_agencys_draft(api: Api) -> None:
    owner, other = await api.organisation("agency"), await api.organisation("agency")
    draft = await api.draft(owner)
    r = await api.patch(
        f"/api/v1/tenders/{draft['id']}", other, json={"title": "被篡改的标题"}, headers={"If-Match": '"1"'}
    )
    problem(r, 404, "not-found")
    after = (await api.get(f"/api/v1/tenders/{draft['id']}", owner)).json()
    assert (after["title"], after["version"]) == (draft["title"], draft["version"])


async def test_an_agency_cannot_publish_another_agencys_draft(api: Api) -> None:
    owner, other = await api.organisation("agency"), await api.organisation("agency")
    draft = await api.draft(owner)
    problem(await api.post(f"/api/v1/tenders/{draft['id']}/publish", other), 404, "not-found")
    assert (await api.get(f"/api/v1/tenders/{draft['id']}", owner)).json()["status"] == "draft"


async def test_an_agency_cannot_cancel_another_agencys_tender(api: Api) -> None:
    owner, other = await api.organisation("agency"), await api.organisation("agency")
    tender = await api.published(owner)
    r = await api.post(f"/api/v1/tenders/{tender['id']}/cancel", other, json={"reason": "不是我的招标项目"})
    problem(r, 404, "not-found")
    assert (await api.get(f"/api/v1/tenders/{tender['id']}")).json()["status"] == "tendering"


async def test_an_anonymous_caller_cannot_see_a_draft(api: Api) -> None:
    draft = await api.draft(await api.organisation("agency"))
    problem(await api.get(f"/api/v1/tenders/{draft['id']}"), 404, "not-found")


async def test_a_bidder_cannot_read_another_bidders_receipt(api: Api) -> None:
    tender = await api.published(await api.organisation("agency"))
    owner, other = await api.organisation("bidder"), await api.organisation("bidder")
    bid = await api.bid(owner, tender, price_fen=4_000_000_000)
    problem(
        await api.get(f"/api/v1/tenders/{tender['id']}/bids/{bid.bid_id}/receipt", other), 404, "not-found"
    )


async def test_a_bidder_cannot_withdraw_another_bidders_bid(api: Api) -> None:
    tender = await api.published(await api.organisation("agency"))
    owner, other = await api.organisation("bidder"), await api.organisation("bidder")
    bid = await api.bid(owner, tender, price_fen=4_000_000_000)
    problem(
        await api.post(f"/api/v1/tenders/{tender['id']}/bids/{bid.bid_id}/withdraw", other), 404, "not-found"
    )
    [mine] = (await api.get(f"/api/v1/tenders/{tender['id']}/bids", owner)).json()
    assert (mine["id"], mine["status"]) == (bid.bid_id, "submitted")


async def test_a_bidder_cannot_reveal_another_bidders_file_key(api: Api) -> None:
    tender = await api.published(await api.organisation("agency"))
    owner, other = await api.organisation("bidder"), await api.organisation("bidder")
    bid = await api.bid(owner, tender, price_fen=4_000_000_000)
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/bids/{bid.bid_id}/decrypt",
        other,
        json={"file_key": base64.b64encode(bid.file_key).decode()},
    )
    problem(r, 404, "not-found")


async def test_only_a_custodian_of_the_tender_sees_its_custody_or_releases(api: Api) -> None:
    tender = await api.published(await api.organisation("agency"))
    bids = [await api.bid(await api.organisation("bidder"), tender, 4_000_000_000 - i) for i in range(4)]
    await api.at(DEADLINE)
    for bid in bids[:3]:
        await api.reveal(tender["id"], bid)
    await api.at(AFTER_WINDOW)  # the fourth envelope is in custody
    [answer] = await api.release(tender["id"], (await api.custodians())[1])
    release = answer.request.content  # a valid release, replayed by others below
    outsider = await api.organisation("supervisor")  # a supervisor, but not on this tender's roster
    agency = await api.organisation("agency")
    for actor in (outsider, bids[3].bidder, bids[0].bidder, agency):
        problem(await api.get(f"/api/v1/tenders/{tender['id']}/custody", actor), 404, "not-found")
        r = await api.client.post(
            f"/api/v1/tenders/{tender['id']}/custody/releases",
            content=release,
            headers={**actor.headers, "content-type": "application/json"},
        )
        problem(r, 404, "not-found")
    r = await api.client.post(
        f"/api/v1/tenders/{tender['id']}/custody/releases",
        content=release,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 401
    view = (await api.get(f"/api/v1/tenders/{tender['id']}/custody", (await api.custodians())[1])).json()
    assert [e["valid_releases"] for e in view["envelopes"]] == [1]


async def test_the_signed_opening_record_is_public_only_after_the_opening(api: Api) -> None:
    tender = await api.published(await api.organisation("agency"))
    bids = [await api.bid(await api.organisation("bidder"), tender, 4_000_000_000 - i) for i in range(3)]
    url = f"/api/v1/tenders/{tender['id']}/opening/record/signed"
    for actor in (None, bids[0].bidder, await api.organisation("supervisor")):
        problem(await api.get(url, actor), 404, "not-found")  # bidding: nothing is disclosed (W-20)
    await api.at(DEADLINE)
    for bid in bids:
        await api.reveal(tender["id"], bid)
    problem(await api.get(url), 404, "not-found")  # the hall is still open
    await api.at(AFTER_WINDOW)
    assert (await api.get(url)).status_code == 200
    draft = await api.draft(await api.organisation("agency"))
    problem(await api.get(f"/api/v1/tenders/{draft['id']}/opening/record/signed"), 404, "not-found")


async def test_the_opening_record_is_for_participants_only(api: Api) -> None:
    tender = await api.published(await api.organisation("agency"))
    stranger = await api.organisation("bidder")  # obtained nothing, bid nothing
    problem(await api.get(f"/api/v1/tenders/{tender['id']}/opening/record", stranger), 404, "not-found")
    r = await api.get(f"/api/v1/tenders/{tender['id']}/opening/events?follow=false", stranger)
    problem(r, 404, "not-found")


async def test_collusion_signals_are_not_shown_to_bidders_or_agencies(api: Api) -> None:
    tender = await api.published(agency := await api.organisation("agency"))
    for actor in (agency, await api.organisation("bidder")):
        problem(await api.get(f"/api/v1/tenders/{tender['id']}/collusion-signals", actor), 403, "forbidden")


async def test_before_the_opening_a_bidder_lists_only_its_own_bids(api: Api) -> None:
    tender = await api.published(await api.organisation("agency"))
    first, second = await api.organisation("bidder"), await api.organisation("bidder")
    own = await api.bid(first, tender, price_fen=4_000_000_000)
    await api.bid(second, tender, price_fen=3_900_000_000)
    listed = (await api.get(f"/api/v1/tenders/{tender['id']}/bids", first)).json()
    assert [(b["id"], b["organisation_id"]) for b in listed] == [(own.bid_id, first.organisation_id)]


async def test_before_the_opening_the_agency_and_supervisors_see_no_bids(api: Api) -> None:
    agency = await api.organisation("agency")
    supervisor = await api.organisation("supervisor")
    tender = await api.published(agency)
    await api.bid(await api.organisation("bidder"), tender, price_fen=4_000_000_000)
    assert (await api.get(f"/api/v1/tenders/{tender['id']}/bids", agency)).json() == []
    assert (await api.get(f"/api/v1/tenders/{tender['id']}/bids", supervisor)).json() == []


async def test_a_w19_rejection_is_shown_only_to_its_bidder_and_to_those_who_see_every_bid(api: Api) -> None:
    from tests.helpers import DEADLINE

    agency = await api.organisation("agency")
    tender = await api.published(agency)
    tid = tender["id"]
    paid = [await api.bid(await api.organisation("bidder"), tender, 4_000_000_000 + i) for i in range(3)]
    unpaid = await api.bid(await api.organisation("bidder"), tender, 3_500_000_000, deposit=False)
    await api.at(DEADLINE)

    def rejections(r: Response) -> dict[str, Any]:
        assert r.status_code == 200, r.text
        return {b["id"]: b["rejection"] and b["rejection"]["rule"] for b in r.json()}

    assert rejections(await api.get(f"/api/v1/tenders/{tid}/bids", unpaid.bidder)) == {unpaid.bid_id: "W-19"}
    assert rejections(await api.get(f"/api/v1/tenders/{tid}/bids", paid[0].bidder)) == {paid[0].bid_id: None}
    for watcher in (agency, await api.organisation("supervisor"), await api.organisation("auditor")):
        assert rejections(await api.get(f"/api/v1/tenders/{tid}/bids", watcher))[unpaid.bid_id] == "W-19"
    for outsider in (await api.organisation("agency"), await api.organisation("employer")):
        assert rejections(await api.get(f"/api/v1/tenders/{tid}/bids", outsider)) == {}
    problem(await api.get(f"/api/v1/tenders/{tid}/bids"), 401)
    # the deposit's answer and its evidence: its bidder, the centre, supervisors and auditors only
    deposit = await api.deposit_of(unpaid.bidder, unpaid.lot_id)
    path = f"/api/v1/escrow/deposits/{deposit['id']}"
    problem(await api.get(path, paid[0].bidder), 404, "not-found")
    problem(await api.get(path, agency), 403, "forbidden")
    assert (await api.get(path, unpaid.bidder)).json()["eligibility"][0]["eligible"] is False


async def test_a_supervisor_reads_a_tender_its_bids_and_objections(api: Api) -> None:
    supervisor = await api.organisation("supervisor")
    tender = await api.published(await api.organisation("agency"))
    tid = tender["id"]
    assert (await api.get(f"/api/v1/tenders/{tid}", supervisor)).status_code == 200
    assert (await api.get(f"/api/v1/tenders/{tid}/bids", supervisor)).status_code == 200
    assert (await api.get(f"/api/v1/tenders/{tid}/objections", supervisor)).status_code == 200
    assert (await api.get("/api/v1/audit", supervisor)).status_code == 200


async def test_a_supervisor_cannot_change_a_tender_or_a_bid(api: Api) -> None:
    supervisor = await api.organisation("supervisor")
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    tid = tender["id"]
    bid = await api.bid(await api.organisation("bidder"), tender, price_fen=4_000_000_000)
    attempts = [
        await api.patch(
            f"/api/v1/tenders/{tid}", supervisor, json={"title": "监督改标题"}, headers={"If-Match": '"2"'}
        ),
        await api.post(f"/api/v1/tenders/{tid}/cancel", supervisor, json={"reason": "监督叫停"}),
        await api.post(
            f"/api/v1/tenders/{tid}/clarifications", supervisor, json={"text": "澄清", "affects_bids": False}
        ),
        await api.post(f"/api/v1/tenders/{tid}/bids/{bid.bid_id}/withdraw", supervisor),
        await api.post(f"/api/v1/tenders/{tid}/close-opening", supervisor),
        await api.post(f"/api/v1/tenders/{tid}/commercial-opening", supervisor),
    ]
    assert [r.status_code for r in attempts] == [403] * len(attempts)
    after = (await api.get(f"/api/v1/tenders/{tid}", agency)).json()
    assert (after["status"], after["version"]) == (tender["status"], tender["version"])


# ---------------------------------------------------------------- the audit trail's check and heads


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("centre", 200),
        ("supervisor", 200),
        ("auditor", 200),
        ("agency", 403),
        ("bidder", 403),
        ("employer", 403),
        ("regulator", 403),
    ],
)
async def test_the_audit_trail_is_checked_and_its_head_signed_by_centre_supervisors_and_auditors_only(
    api: Api, kind: str, status: int
) -> None:
    actor = await caller(api, kind)
    assert (await api.get("/api/v1/audit/verify", actor)).status_code == status
    signed = await api.post("/api/v1/audit/heads", actor)
    assert signed.status_code == (201 if status == 200 else 403)
    kept = await api.post("/api/v1/audit/verify", actor, json={"head": (await api.get(AUDIT_HEAD)).json()})
    assert kept.status_code == status


async def test_the_public_sees_the_audit_trails_heads_but_neither_its_events_nor_its_check(api: Api) -> None:
    await api.organisation("agency")
    await api.tick()
    head = await api.get(AUDIT_HEAD)
    assert head.status_code == 200
    assert set(head.json()) == {
        "version",
        "sequence",
        "events",
        "chain_hash",
        "signed_at",
        "key_id",
        "signature",
    }
    assert (await api.get("/api/v1/transparency/audit/heads")).json()["heads"] == [head.json()]
    assert (await api.get("/api/v1/transparency/audit/heads/1")).json() == head.json()
    for path in ("/api/v1/audit", "/api/v1/audit/verify"):
        assert (await api.get(path)).status_code == 401
    assert (await api.post("/api/v1/audit/heads")).status_code == 401
    assert (await api.post("/api/v1/audit/verify", json={"head": head.json()})).status_code == 401


# ---------------------------------------------------------------- the committee draw and the evaluation room


def draw_body(api: Api, seats: int = 5) -> dict[str, Any]:
    return {
        "evaluation_at": (api.clock.now() + timedelta(hours=2)).isoformat(),
        "quotas": [{"specialty": "A02", "seats": seats}],
    }


async def test_an_agency_cannot_ask_for_or_see_a_draw_of_another_agencys_tender(api: Api) -> None:
    owner = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(owner)
    other = await api.organisation("agency")
    await api.seed_specialties()
    draws = f"/api/v1/evaluation/tenders/{tender['id']}/draws"
    problem(await api.post(draws, other, json=draw_body(api)), 404, "not-found")
    r = await api.post(draws, owner, json=draw_body(api))
    assert r.status_code == 201, r.text
    problem(await api.get(f"/api/v1/evaluation/draws/{r.json()['id']}", other), 404, "not-found")
    problem(await api.get(draws, other), 404, "not-found")
    assert [d["id"] for d in (await api.get(draws, owner)).json()] == [r.json()["id"]]


async def test_an_agency_cannot_ask_to_abort_another_agencys_draw_nor_read_the_abort_statistics(
    api: Api,
) -> None:
    owner = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(owner)
    other = await api.organisation("agency")
    await api.seed_specialties()
    r = await api.post(f"/api/v1/evaluation/tenders/{tender['id']}/draws", owner, json=draw_body(api))
    assert r.status_code == 201, r.text
    url = f"/api/v1/evaluation/draws/{r.json()['id']}"
    problem(
        await api.post(f"{url}/abort", other, json={"reason": "不是我的项目，却想终止抽取"}), 404, "not-found"
    )
    problem(await api.get("/api/v1/evaluation/draw-aborts", owner), 403, "forbidden")
    asked = await api.post(f"{url}/abort", owner, json={"reason": "评标时间需调整，申请终止抽取"})
    assert asked.status_code == 201, asked.text
    # a supervisor who is also the draw's witness, the centre and the agency itself cannot approve it
    witness = await api.organisation("supervisor")
    commitment = {"witness_commitment": "ab" * 32}
    assert (await api.post(f"{url}/witness", witness, json=commitment)).status_code == 200
    approval = {"request_id": asked.json()["id"]}
    problem(await api.post(f"{url}/abort/approve", witness, json=approval), 403, "forbidden")
    for actor in (owner, await api.bootstrap_centre()):
        problem(await api.post(f"{url}/abort/approve", actor, json=approval), 403, "forbidden")
    assert (await api.get(url, owner)).json()["status"] == "committed"


async def test_an_expert_cannot_answer_another_experts_invitation(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    pool = [await api.expert() for _ in range(5)]
    stranger = await api.expert(specialties=("B01",))  # not in the A02 pool the draw picks from
    r = await api.post(f"/api/v1/evaluation/tenders/{tender['id']}/draws", agency, json=draw_body(api))
    assert r.status_code == 201, r.text
    await api.witnessed(r.json()["id"])
    [invitation] = (await api.get("/api/v1/evaluation/invitations", pool[0])).json()
    assert (await api.get("/api/v1/evaluation/invitations", stranger)).json() == []
    answer = f"/api/v1/evaluation/invitations/{invitation['id']}/answer"
    problem(await api.post(answer, stranger, json={"accept": False, "reason": "冒名拒绝"}), 404, "not-found")
    problem(await api.post(answer, pool[1], json={"accept": False, "reason": "冒名拒绝"}), 404, "not-found")
    [after] = (await api.get("/api/v1/evaluation/invitations", pool[0])).json()
    assert after["status"] == "invited"


async def test_only_the_committee_and_its_watchers_enter_the_room(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    committee = await api.convene(agency, tender["id"])
    room = f"/api/v1/evaluation/rooms/{committee['room_id']}"
    lot_id = tender["lots"][0]["id"]
    outsider = await api.expert()  # an expert of the pool who is not on this committee
    other_agency = await api.organisation("agency")
    # the agency finds its own trade's room in its list (status and times), but does not enter it
    [listed] = (await api.get("/api/v1/evaluation/rooms", agency)).json()
    assert listed["id"] == committee["room_id"] and listed["tender_id"] == tender["id"]
    assert set(listed) == {"id", "tender_id", "round", "lot_id", "status", "phase", "opens_at", "closes_at"}
    for actor in (agency, outsider, other_agency):
        if actor is not agency:
            assert (await api.get("/api/v1/evaluation/rooms", actor)).json() == []
        problem(await api.get(room, actor), 404, "not-found")
        problem(await api.get(f"{room}/sheets", actor, params={"lot_id": lot_id}), 404, "not-found")
        problem(await api.get(f"{room}/events", actor, params={"follow": "false"}), 404, "not-found")
        problem(
            await api.post(f"{room}/reviews", actor, json={"lot_id": lot_id, "votes": []}), 404, "not-found"
        )
    supervisor = await api.organisation("supervisor")
    view = await api.get(room, supervisor)
    assert view.status_code == 200 and view.json()["my_seat"] is None
    for path, body in (("chair", {"seat": 1}), ("reviews", {"lot_id": lot_id, "votes": []})):
        r = await api.post(f"{room}/{path}", supervisor, json=body)  # a watcher reads, never acts (S-04)
        assert problem(r, 403)["detail"] in (
            "This needs one of the roles: agency, expert.",
            "Only a member of the committee acts in the room; watchers see it read-only (S-04).",
        )


async def test_a_bidder_sees_and_answers_only_the_clarifications_asked_of_it(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, bids = await api.in_evaluation(agency)
    committee = await api.convene(agency, tender["id"])
    r = await api.post(
        f"/api/v1/evaluation/rooms/{committee['room_id']}/clarifications",
        committee["members"][1],
        json={
            "bid_id": bids[0].bid_id,
            "question": "请澄清第3.2节工期安排",
            "respond_by": (api.clock.now() + timedelta(hours=1)).isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    asked, other = bids[0].bidder, bids[1].bidder
    assert (await api.get("/api/v1/evaluation/clarifications", other)).json() == []
    answer = f"/api/v1/evaluation/clarifications/{r.json()['id']}/answer"
    problem(await api.post(answer, other, json={"answer": "替别人回答"}), 404, "not-found")
    [mine] = (await api.get("/api/v1/evaluation/clarifications", asked)).json()
    assert (mine["id"], mine["question"], mine["answer"]) == (r.json()["id"], "请澄清第3.2节工期安排", None)
    assert (await api.post(answer, asked, json={"answer": "工期按第3.2节执行"})).status_code == 200


# ---------------------------------------------------------------- every refusal is a problem document


async def test_bank_line_conflicts_are_for_the_centre_auditors_and_supervisors_and_only_the_centre_decides(
    api: Api,
) -> None:
    from tests.test_bad_input import bank_line_conflict

    centre, conflict = await bank_line_conflict(api)
    listed, one = "/api/v1/escrow/conflicts", f"/api/v1/escrow/conflicts/{conflict}"
    decide = {"decision": "known", "note": "银行确认"}
    for kind in ("auditor", "supervisor"):
        reader = await api.organisation(kind)
        assert [c["id"] for c in (await api.get(listed, reader)).json()] == [conflict]
        assert (await api.get(one, reader)).status_code == 200
        problem(await api.post(f"{one}/resolution", reader, json=decide), 403, "forbidden")
    for kind in ("bidder", "agency", "regulator", "employer"):
        outsider = await api.organisation(kind)
        problem(await api.get(listed, outsider), 403, "forbidden")
        problem(await api.get(one, outsider), 403, "forbidden")
        problem(await api.post(f"{one}/resolution", outsider, json=decide), 403, "forbidden")
    problem(await api.get(listed), 401, "unauthenticated")
    assert (await api.get(one, centre)).json()["status"] == "open"
    assert (await api.post(f"{one}/resolution", centre, json=decide)).status_code == 200


async def test_the_ledgers_signed_heads_are_public_and_carry_no_amounts_or_names(api: Api) -> None:
    from tests.test_bad_input import bank_line_conflict

    await bank_line_conflict(api)
    head = (await api.get("/api/v1/transparency/ledger/head")).json()
    assert set(head) == {"version", "sequence", "entries", "chain_hash", "signed_at", "key_id", "signature"}
    assert (await api.get("/api/v1/transparency/ledger/heads/1")).status_code == 200
    listed = (await api.get("/api/v1/transparency/ledger/heads")).json()
    assert [h["sequence"] for h in listed["heads"]] == [1] and listed["next"] is None
    assert "500000" not in str(listed) and "6228480000000001" not in str(listed)


PROBLEM_CASES = [
    "malformed-json",
    "wrong-shape",
    "anonymous",
    "invalid-token",
    "forbidden",
    "unknown-route",
    "unknown-object",
    "method-not-allowed",
    "conflict",
    "too-large",
    "unprocessable",
    "precondition-required",
]


async def provoke(api: Api, case: str) -> tuple[Response, int]:
    """Make the app refuse a request in the way `case` names; return the response and the expected status."""
    agency = await api.organisation("agency")
    json_headers = {**agency.headers, "content-type": "application/json"}
    if case == "malformed-json":
        return await api.client.post("/api/v1/tenders", content=b"{", headers=json_headers), 400
    if case == "wrong-shape":
        return await api.post("/api/v1/tenders", agency, json={"title": 1}), 400
    if case == "anonymous":
        return await api.post("/api/v1/tenders", json=api.tender_body()), 401
    if case == "invalid-token":
        return await api.client.get("/api/v1/auth/me", headers={"Authorization": "Bearer nonsense"}), 401
    if case == "forbidden":
        return await api.get("/api/v1/audit", agency), 403
    if case == "unknown-route":
        return await api.get("/api/v1/no-such-thing", agency), 404
    if case == "unknown-object":
        return await api.get(f"/api/v1/tenders/{uuid.uuid4()}", agency), 404
    if case == "method-not-allowed":
        return await api.client.delete("/api/v1/tenders", headers=agency.headers), 405
    if case == "conflict":
        body = {"name": "重复", "credit_code": agency.credit_code, "kind": "agency"}
        return await api.post("/api/v1/organisations", await api.bootstrap_centre(), json=body), 409
    if case == "too-large":
        return await api.client.post(
            "/api/v1/tenders", content=b" " * (1024 * 1024 + 1), headers=json_headers
        ), 413
    if case == "unprocessable":
        return await api.post(
            "/api/v1/tenders", agency, json=api.tender_body(bid_deadline="2026-03-23T10:00:00")
        ), 422
    assert case == "precondition-required"
    draft = await api.draft(agency)
    return await api.patch(f"/api/v1/tenders/{draft['id']}", agency, json={"title": "新的标题"}), 428


@pytest.mark.parametrize("case", PROBLEM_CASES)
async def test_a_refusal_is_an_rfc9457_problem_document(api: Api, case: str) -> None:
    r, status = await provoke(api, case)
    body = problem(r, status)
    assert body["type"].startswith(PROBLEM_BASE)
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in r.text


async def test_a_401_names_the_bearer_scheme(api: Api) -> None:
    r = await api.get("/api/v1/auth/me")
    problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"] == 'Bearer realm="ggzy"'
