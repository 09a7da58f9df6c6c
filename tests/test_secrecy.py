"""W-20 (招标投标法 22): before the deadline nobody may learn who obtained the documents or bid, nor how many.

The walk takes every route of the app from its route table (a new route fails `test_every_route_is_walked_or
_set_aside_with_a_reason` until it is classified), calls every reading route as every kind of caller on an
open tender with bidders, deposits, a guarantee, a withdrawal and its refund, an objection and a W-18 signal,
and proves two things: nobody outside the law's list sees a bidder's participation (the bidder sees its own;
the centre's escrow officers see the deposit facts they must hold, in the escrow views only), and nobody's
answers change when one more bidder obtains the documents, pays its deposit and bids (so no count leaks).

Also here: collusion signals are shown only after the opening, to the tender's committee, supervisors and
auditors.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from httpx import Response
from litestar import Litestar

from app import create_app
from escrow import sandbox
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api, SealedBid, shanghai

T = "/api/v1/tenders"
ESCROW = "31050161393600000888"
DEPOSIT = 80_000_000
SAME_PAYER = "6222020000000000001"


# ---------------------------------------------------------------- helpers


async def rates(api: Api) -> Actor:
    centre = await api.bootstrap_centre()
    for kind, pct, since in (("deposit", "0.35", "2015-10-24"), ("lpr", "3.0", "2025-05-20")):
        body = {"kind": kind, "effective_from": since, "annual_percent": pct, "source": "PBoC / bank notice"}
        r = await api.post("/api/v1/escrow/rates", centre, json=body)
        assert r.status_code == 201, r.text
    return centre


async def deposit_of(api: Api, bidder: Actor) -> dict[str, Any]:
    r = await api.get("/api/v1/escrow/deposits", bidder)
    assert r.status_code == 200, r.text
    [row] = r.json()
    return dict(row)


async def pay(api: Api, centre: Actor, paid: list[tuple[Actor, str]], statement_id: str) -> str:
    """The bank's statement crediting each bidder's deposit from the given payer account."""
    lines = []
    for i, (bidder, payer) in enumerate(paid):
        d = await deposit_of(api, bidder)
        lines.append(
            sandbox.Credit(
                reference=f"{statement_id}-{i}",
                amount_fen=DEPOSIT,
                booked_on=date(2026, 3, 5),
                payer_name=f"付款人{payer[-4:]}",
                payer_account=payer,
                payer_bank="中国工商银行南京分行",
                credited_account=d["virtual_number"],
                remittance="投标保证金",
            )
        )
    content = sandbox.statement(ESCROW, statement_id, api.clock.now(), lines)
    r = await api.client.post(
        "/api/v1/escrow/statements",
        params={"format": "camt053"},
        content=content,
        headers={**centre.headers, "Content-Type": "application/xml"},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["statement_id"])


def signals_url(tender: dict[str, Any]) -> str:
    return f"{T}/{tender['id']}/collusion-signals"


# ---------------------------------------------------------------- collusion signals


async def test_an_expert_on_no_committee_cannot_read_an_open_tenders_collusion_signals(api: Api) -> None:
    centre = await rates(api)
    tender = await api.published(await api.organisation("agency"))
    api.clock.set(shanghai(2026, 3, 5, 10))
    bidders = [await api.organisation("bidder") for _ in range(2)]
    for b in bidders:
        assert (await api.post(f"{T}/{tender['id']}/documents/obtain", b)).status_code == 200
    await pay(api, centre, [(b, SAME_PAYER) for b in bidders], "STMT-SIGNALS")
    expert = await api.organisation("employer")
    r = await api.get(signals_url(tender), expert)
    assert r.status_code == 404, r.text
    assert not any(b.credit_code in r.text for b in bidders) and SAME_PAYER not in r.text


@pytest.mark.parametrize("kind", ["supervisor", "auditor"])
async def test_before_the_opening_supervisors_and_auditors_are_refused_by_w20(api: Api, kind: str) -> None:
    centre = await rates(api)
    tender = await api.published(await api.organisation("agency"))
    bidders = [await api.organisation("bidder") for _ in range(2)]
    for b in bidders:
        await api.post(f"{T}/{tender['id']}/documents/obtain", b)
    await pay(api, centre, [(b, SAME_PAYER) for b in bidders], "STMT-W20")
    r = await api.get(signals_url(tender), await api.organisation(kind))
    assert r.status_code == 403, r.text
    assert r.json()["rule"] == "W-20"
    assert SAME_PAYER not in r.text


@dataclass
class Evaluated:
    tender: dict[str, Any]
    bids: list[SealedBid]
    members: dict[int, Actor]


async def evaluated(api: Api) -> Evaluated:
    """A tender whose opening closed, with two deposits paid from one account and its committee seated."""
    centre = await rates(api)
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidders = [await api.organisation("bidder") for _ in range(3)]
    for b in bidders:
        assert (await api.post(f"{T}/{tender['id']}/documents/obtain", b)).status_code == 200
    await pay(
        api,
        centre,
        [(bidders[0], SAME_PAYER), (bidders[1], SAME_PAYER), (bidders[2], "6222020000000000777")],
        "STMT-E",
    )
    bids = [await api.bid(b, tender, 4_000_000_000 - i, obtain=False) for i, b in enumerate(bidders)]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    committee = await api.convene(agency, tender["id"])
    return Evaluated(tender, bids, committee["members"])


async def test_after_the_opening_the_committee_supervisors_and_auditors_read_the_signals(api: Api) -> None:
    done = await evaluated(api)
    readers = [
        *done.members.values(),
        await api.organisation("supervisor"),
        await api.organisation("auditor"),
    ]
    for reader in readers:
        r = await api.get(signals_url(done.tender), reader)
        assert r.status_code == 200, r.text
        [same_payer] = [s for s in r.json() if s["kind"] == "deposit_same_payer"]
        assert same_payer["bidders"] == sorted(b.bidder.credit_code for b in done.bids[:2])
        assert same_payer["value"] == SAME_PAYER


async def test_after_the_opening_an_expert_on_another_committee_or_none_is_told_nothing(api: Api) -> None:
    done = await evaluated(api)
    outsider = await api.expert()  # in the pool, not drawn for this tender
    r = await api.get(signals_url(done.tender), outsider)
    assert r.status_code == 404, r.text
    assert SAME_PAYER not in r.text


@pytest.mark.parametrize("kind", ["centre", "agency", "bidder", "regulator"])
async def test_after_the_opening_other_roles_are_refused(api: Api, kind: str) -> None:
    done = await evaluated(api)
    actor = await api.bootstrap_centre() if kind == "centre" else await api.organisation(kind)
    r = await api.get(signals_url(done.tender), actor)
    assert r.status_code == 403, r.text
    assert SAME_PAYER not in r.text


async def test_a_member_who_has_not_declared_no_conflict_is_not_shown_the_signals(api: Api) -> None:
    from sqlalchemy import update

    from evaluation.models import Member

    done = await evaluated(api)
    member = done.members[2]
    async with api.runtime.sessionmaker() as session, session.begin():
        await session.execute(update(Member).where(Member.seat == 2).values(declared_at=None))
    r = await api.get(signals_url(done.tender), member)
    assert r.status_code == 404, r.text


async def test_an_unknown_tender_has_no_signals(api: Api) -> None:
    supervisor = await api.organisation("supervisor")
    r = await api.get(f"{T}/{uuid.uuid4()}/collusion-signals", supervisor)
    assert r.status_code == 404, r.text


# ---------------------------------------------------------------- a clarification does not count holders


async def test_a_clarification_does_not_tell_the_agency_how_many_obtained_the_documents(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    answers = []
    for n in range(2):
        bidder = await api.organisation("bidder")
        await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
        r = await api.post(
            f"{T}/{tender['id']}/clarifications",
            agency,
            json={"text": f"第{n + 1}号澄清：图纸比例更正", "affects_bids": False},
        )
        assert r.status_code == 201, r.text
        answers.append({k: v for k, v in r.json().items() if k not in ("id", "number", "text")})
    assert answers[0] == answers[1]
    assert "notified" not in answers[0]


# ---------------------------------------------------------------- the walk


# Routes that read, and so are walked: every GET of the app. Query variants call a route again with
# parameters that point it at the tender or a bidder. Event streams are read with follow=false (what is
# recorded so far), or they would not end. The whole audit trail is read one page of 200; the walk's own
# refused reads are audited (as every refusal is), so that page changes between the snapshots and is checked
# for identities only (UNCOMPARED); the trail of each kind of object a bidder's participation touches is
# compared in full.
BASE_QUERY: dict[str, dict[str, str]] = {
    "opening_events": {"follow": "false"},
    "room_events": {"follow": "false"},
    "list_audit_events": {"limit": "200"},
    "venue_calendar": {"from": "2026-03-01T00:00:00+08:00", "to": "2026-04-01T00:00:00+08:00"},
}
# The trail's own check counts every event of the platform, the walk's refused reads too.
UNCOMPARED = {
    ("list_audit_events", json.dumps({"limit": "200"}, sort_keys=True)),
    ("verify_audit_trail", json.dumps(None)),
}
AUDITED_OBJECTS = ("tender", "bid", "guarantee", "deposit", "bank_line", "objection", "complaint", "user")
QUERY_VARIANTS: dict[str, list[dict[str, str]]] = {
    "list_audit_events": [
        {"object_type": "tender", "object_id": "{tender_id}", "limit": "200"},
        *({"object_type": kind, "limit": "200"} for kind in AUDITED_OBJECTS),
    ],
    "list_obligations": [{"tender_id": "{tender_id}"}],
    "list_tenders": [{"status": "tendering"}],
    "statement_lines": [{"format": "csv"}],
    "audit_tender": [{"format": "csv"}],
    "trial_balance": [{"format": "csv"}],
}

# Routes not walked, each with the reason. The walk reads; these act, and act only on what the caller is
# entitled to (their answers about other bidders are refused by the same services the walk reads through),
# or they are covered elsewhere.
NOT_WALKED: dict[str, str] = {
    # covered by the transparency tests (another part of the issue redesigns the public log)
    "transparency_key": "covered by the transparency tests",
    "transparency_head": "covered by the transparency tests",
    "transparency_consistency": "covered by the transparency tests",
    "transparency_inclusion": "covered by the transparency tests",
    # the caller's own session, keys and tokens
    "login": "answers only about the account signing in",
    "change_password": "the caller's own password",
    "issue_api_token": "the caller's own token",
    "revoke_api_token": "the caller's own token",
    "register_public_key": "the caller's own key",
    "register_organisation": "answers the same for every registration (tests/accounts/test_signin.py)",
    "close_registration_collision": "the centre's follow-up of a registration, no tender",
    # the centre and supervisors administering the platform, no bidder's tender data in the answer
    "create_organisation": "administration",
    "approve_organisation": "administration",
    "create_user": "administration",
    "deactivate_user": "administration",
    "load_calendar_year": "administration",
    "sign_audit_head": "signs the whole trail's head: a hash and a count, no tender",
    "verify_audit_trail_against_head": "the same report as verify_audit_trail, which the walk reads",
    "set_rate": "administration",
    "set_rehearsal_clock": "administration of a rehearsal's clock: an instant and a rate, no tender",
    "retry_dead_job": "administration: the centre's dead-letter list, which answers no job's payload",
    "replace_specialties": "administration",
    # the agency's own tender: refused or answered without holders (the clarification has its own test)
    "create_tender": "the agency's own draft",
    "update_tender": "the agency's own draft",
    "publish_tender": "the agency's own tender",
    "cancel_tender": "the agency's own tender",
    "retender": "the agency's own tender",
    "switch_method": "after the deadline: the agency's own failed procurement",
    "suspend_for_complaint": "a supervisor's decision on a complaint, after the complainant is known",
    # negotiated procurement: every step comes after the first responses were opened
    "record_negotiation_round": "after the opening: the agency's own negotiation",
    "amend_negotiation": "after the opening: sent to every remaining supplier",
    "exclude_from_negotiation": "after the opening: the agency's own negotiation",
    "call_final_quotes": "after the opening: the agency's own negotiation",
    "seal_final_quote": "after the opening; test_a_negotiation_runs_rounds_and_final_quotes_to_the_lowest",
    "open_final_quote": "after the final quotes' deadline",
    # framework agreements: every step comes after the purchaser's decision on the report
    "admit_framework_suppliers": "after the deadline: the agency's own decision",
    "lower_framework_cap": "after the admission: the supplier's own cap",
    "place_framework_order": "after the admission: published with the order",
    "open_framework_competition": "after the admission: sent to the lot's admitted suppliers",
    "quote_framework_competition": "after the admission; test_nobody_reads_another_suppliers_quote_before_the_close",
    "close_framework_competition": "after the admission: published with the order",
    "open_framework": "the agency's own draft: its call is published",
    "apply_to_framework": "after the call: the supplier's own application, seen by it and the agency only",
    "decide_framework_application": "after the call: the agency's decision, published when it admits",
    "leave_framework": "after the admission: the supplier's own admission, published",
    "place_framework_rotation_order": "after the admission: published with the order and the queue",
    "accept_contract_performance": "after the contract: the agency's own trade",
    "close_opening": "after the deadline",
    "open_commercial": "after the technical opening; tests/bidding/test_two_envelopes.py",
    "record_technical_result": "after the technical opening: the committee's own room",
    # the centre's steps before a trade starts: a project has no bidder, and a notice under review or a room's
    # booking is the agency's own tender before anyone takes part
    "register_project": "the agency's own project, before any tender",
    "decide_project": "the centre's decision on a project, before any tender",
    "decide_review": "the centre's decision on the agency's own draft",
    "add_venue": "administration",
    "set_venue_capacity": "administration",
    "book_evaluation_room": "the agency's own tender: a room and a time, no bidder",
    "complete_tender": "after the deadline",
    "request_document_upload": "the agency's own upload",
    "register_document": "the agency's own document",
    "issue_clarification": "test_a_clarification_does_not_tell_the_agency_how_many_obtained_the_documents",
    "answer_objection": "answers the objection, not who filed it",
    "award_tender": "after the deadline",
    "decline_award": "after the deadline",
    "record_contract": "after the deadline",
    # a bidder's own participation
    "obtain_documents": "the bidder's own documents and deposit",
    "file_objection": "the bidder's own objection",
    "request_bid_upload": "the bidder's own upload",
    "submit_bid": "the bidder's own bid",
    "withdraw_bid": "the bidder's own bid",
    "decrypt_bid": "after the deadline",
    "opening_check_in": "after the deadline",
    "release_custody": "after the deadline",
    "file_complaint": "the bidder's own complaint",
    "decide_complaint": "the supervising authority answers the complaint filed to it",
    "lodge_guarantee": "the bidder's own deposit",
    "answer_clarification": "the bidder's own answer, after the deadline",
    # the centre's escrow officers at work: they hold the deposit facts (DESIGN-signin.md)
    "import_statement": "escrow officers",
    "match_line": "escrow officers",
    "return_line": "escrow officers",
    "decide_guarantee": "escrow officers",
    "create_refund_batch": "escrow officers",
    "import_refund_results": "escrow officers",
    "change_payee": "escrow officers",
    "bank_notification": "the bank's signed machine call",
    "resolve_bank_line_conflict": "escrow officers",
    "propose_forfeiture": "after the deadline (W-06, W-16)",
    "decide_forfeiture": "after the deadline (W-06, W-16)",
    # evaluation: after the deadline, or the expert's own profile
    "request_draw": "after the deadline",
    "run_draw": "after the deadline",
    "commit_draw_witness": "after the deadline",
    "request_draw_abort": "after the deadline",
    "approve_draw_abort": "after the deadline",
    "refuse_draw_abort": "after the deadline",
    "answer_invitation": "after the deadline",
    "record_phone_answer": "after the deadline",
    "set_evaluation_scheme": "the agency's own scheme, no bidders",
    "declare_no_conflict": "after the deadline",
    "vote_chair": "after the deadline",
    "submit_review": "after the deadline",
    "submit_sheet": "after the deadline",
    "reopen_sheet": "after the deadline",
    "justify_score": "after the deadline",
    "ask_clarification": "after the deadline",
    "make_report": "after the deadline",
    "sign_report": "after the deadline",
    "extend_room": "after the deadline",
    "enrol_expert": "the expert's own profile",
    "propose_expert_changes": "the expert's own profile",
    "declare_relationship": "the expert's own profile",
    "declare_unavailability": "the expert's own profile",
    "withdraw_unavailability": "the expert's own profile",
    "import_experts": "administration",
    "update_expert": "administration",
    "approve_expert": "administration",
    "reject_expert": "administration",
    "record_expert_credit": "administration",
}

# Who may see a bidder's participation before the deadline, beyond the bidder itself: the centre's escrow
# officers, in the escrow views (deposits, lines, guarantees, refunds). Nobody else, anywhere.
ESCROW_VIEWS = re.compile(r"^/api/v1/escrow/")


def allowed(viewer: str, path: str) -> bool:
    return viewer == "centre" and bool(ESCROW_VIEWS.match(path))


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    operation_id: str


def routes(app: Litestar) -> Iterator[Route]:
    for route in app.routes:
        if route.path.startswith("/schema"):
            continue
        for handler in getattr(route, "route_handlers", []):
            if handler.opt.get("auth") == "grant":
                continue  # presigned grants: the token in the path is the capability (tests/storage)
            for method in sorted(set(handler.http_methods) - {"OPTIONS"}):
                yield Route(method, route.path, handler.operation_id or handler.handler_name)


@dataclass
class Party:
    """A bidder's traces: what identifies it, and what exists only because it takes part in the tender."""

    actor: Actor
    name: str
    identity: set[str] = field(default_factory=set)
    participation: set[str] = field(default_factory=set)


@dataclass
class World:
    api: Api
    tender: dict[str, Any]
    viewers: dict[str, Actor | None]
    parties: dict[str, Party]
    params: dict[str, str]
    late: Party | None = None


async def traces(api: Api, party: Party, tender: dict[str, Any]) -> None:
    """Collect what identifies the party and what its participation left, from its own views."""
    me = (await api.get("/api/v1/auth/me", party.actor)).json()
    party.identity |= {party.actor.organisation_id, party.actor.credit_code, party.name, me["user_id"]}
    party.identity.add(party.actor.username)
    for d in (await api.get("/api/v1/escrow/deposits", party.actor)).json():
        party.participation |= {d["id"], d["virtual_number"], d["account_code"]}
        if d["payer_account"]:
            party.participation.add(d["payer_account"])
        life = (await api.get(f"/api/v1/escrow/deposits/{d['id']}", party.actor)).json()
        party.participation |= {g["number"] for g in life["guarantees"]}
        party.participation |= {line["reference"] for line in life["lines"]}
    for b in (await api.get(f"{T}/{tender['id']}/bids", party.actor)).json():
        party.participation |= {b["id"], b["sha256"]}


async def world(api: Api) -> World:
    """An open tender on Thu 2026-03-05 (deadline Mon 2026-03-23): four bidders obtained the documents,
    three bid and paid their deposits (two from one account: a W-18 signal), one withdrew (W-05 refund,
    instructed in a bank batch), one objected to the documents, the agency clarified; a fifth bidder has an
    account and keys but has not yet taken part."""
    centre = await rates(api)
    agency = await api.organisation("agency", name="南京公共工程招标代理有限公司")
    tender = await api.published(agency)
    api.clock.set(shanghai(2026, 3, 5, 10))
    names = ["恒通建设甲", "华东路桥乙", "金陵市政丙", "江宁水务丁", "秦淮安装戊"]
    parties = {}
    for key, name in zip(("b1", "b2", "b3", "b4", "late"), names, strict=True):
        actor = await api.organisation("bidder", name=name)
        await api.register_keys(actor)
        parties[key] = Party(actor, name)
    b1, b2, b3, b4 = (parties[k].actor for k in ("b1", "b2", "b3", "b4"))
    for bidder in (b1, b2, b3, b4):
        assert (await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)).status_code == 200
    statement_id = await pay(
        api, centre, [(b1, SAME_PAYER), (b2, SAME_PAYER), (b4, "6222020000000000444")], "STMT-0305"
    )
    for bidder, price in ((b1, 4_100_000_000), (b2, 4_000_000_000), (b4, 3_900_000_000)):
        await api.bid(bidder, tender, price, obtain=False)
    [b4_bid] = (await api.get(f"{T}/{tender['id']}/bids", b4)).json()
    r = await api.post(f"{T}/{tender['id']}/bids/{b4_bid['id']}/withdraw", b4)
    assert r.status_code == 200, r.text
    batch = await api.post("/api/v1/escrow/batches", centre)
    assert batch.status_code == 201, batch.text
    r = await api.post(
        f"{T}/{tender['id']}/objections", b1, json={"subject": "documents", "text": "第三章评分标准含糊"}
    )
    assert r.status_code == 201, r.text
    r = await api.post(
        f"{T}/{tender['id']}/clarifications",
        agency,
        json={"text": "第1号澄清：第三章评分标准", "affects_bids": False, "objection_id": r.json()["id"]},
    )
    assert r.status_code == 201, r.text
    await api.run_jobs()
    viewers: dict[str, Actor | None] = {
        "public": None,
        "stranger": await api.organisation("bidder", name="外地建工己"),
        "b1": b1,
        "agency": agency,
        "other_agency": await api.organisation("agency"),
        "expert": await api.organisation("employer"),
        "centre": centre,
        "supervisor": await api.organisation("supervisor"),
        "auditor": await api.organisation("auditor"),
        "regulator": await api.organisation("regulator"),
    }
    for key in ("b1", "b2", "b3", "b4"):
        await traces(api, parties[key], tender)
    d1 = await deposit_of(api, b1)
    [b1_bid] = (await api.get(f"{T}/{tender['id']}/bids", b1)).json()
    params = {
        "tender_id": tender["id"],
        "deposit_id": d1["id"],
        "bid_id": b1_bid["id"],
        "organisation_id": b1.organisation_id,
        "statement_id": statement_id,
        "batch_id": batch.json()["batch"]["id"],
        "year": "2026",
        "upload_id": "no-such-upload",
        "sequence": "1",
    }
    return World(api, tender, viewers, parties, params)


# Other path parameters get a fixed random UUID, the same in both snapshots.
FIXED = {
    name: str(uuid.UUID(int=secrets.randbits(128)))
    for name in (
        "line_id",
        "guarantee_id",
        "forfeiture_id",
        "objection_id",
        "award_id",
        "complaint_id",
        "token_id",
        "draw_id",
        "room_id",
        "invitation_id",
        "clarification_id",
        "expert_id",
        "unavailability_id",
        "user_id",
        "notice_id",
        "collision_id",
        "conflict_id",
        "order_id",
        "admission_id",
        "project_id",
    )
}


def url(path: str, params: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return params.get(name) or FIXED[name]

    return re.sub(r"\{(\w+):\w+\}", fill, path)


async def read(w: World, route: Route, viewer: Actor | None, query: dict[str, str] | None) -> Response:
    q = {k: v.format(**w.params) for k, v in (query or {}).items()}
    return await w.api.client.get(
        url(route.path, w.params), params=q, headers=viewer.headers if viewer else {}
    )


def body_of(r: Response) -> Any:
    """The answer's body; a problem without its `instance` (the path asked, which the caller chose)."""
    if r.headers.get("content-type", "").startswith("application/problem+json"):
        return {k: v for k, v in r.json().items() if k != "instance"}
    if r.headers.get("content-type", "").startswith("application/json"):
        return r.json()
    return r.text


Snapshot = dict[tuple[str, str, str], tuple[int, Any]]


async def snapshot(w: World, walked: list[Route]) -> Snapshot:
    out: Snapshot = {}
    for route in walked:
        for query in [BASE_QUERY.get(route.operation_id), *QUERY_VARIANTS.get(route.operation_id, [])]:
            for name, viewer in w.viewers.items():
                r = await read(w, route, viewer, query)
                assert r.status_code < 500, f"{route.path} as {name}: {r.status_code} {r.text}"
                answer = body_of(r)
                if route.operation_id == "list_audit_events" and r.status_code == 200:
                    answer = {**answer, "items": [e for e in answer["items"] if not walked_here(e)]}
                out[(name, route.path, json.dumps(query, sort_keys=True))] = (r.status_code, answer)
    return out


def walked_here(event: dict[str, Any]) -> bool:
    """One of the walk's own refused reads: audited (as every refusal is) with the path the walk asked, ids
    it chose included; not what the trail shows of the bidders."""
    return bool(event["outcome"] == "refused" and event["detail"].get("method") == "GET")


def tender_links(w: World) -> set[str]:
    links = {w.tender["id"], w.tender["code"], *(lot["id"] for lot in w.tender["lots"])}
    return links


def leaks(answer: Any, party: Party, links: set[str], tender_scoped: bool) -> list[str]:
    """Where `answer` shows the party taking part: any trace of its participation, or something that
    identifies it next to the tender (in a route about the tender, or in one object with a tender link)."""
    text = json.dumps(answer, ensure_ascii=False) if not isinstance(answer, str) else answer
    found = [
        f"participation {t!r} in …{text[max(0, text.find(t) - 300) : text.find(t) + 60]}…"
        for t in party.participation
        if t in text
    ]
    if tender_scoped:
        found += [f"identity {t!r}" for t in party.identity if t in text]
        return found
    for node in _objects(answer):
        flat = json.dumps(
            {k: v for k, v in node.items() if not isinstance(v, dict | list)}, ensure_ascii=False
        )
        if any(link in flat for link in links):
            found += [
                f"identity {t!r} beside the tender in {flat[:200]}" for t in party.identity if t in flat
            ]
    if isinstance(answer, str):  # CSV and other files: one line is one object
        for line in answer.splitlines():
            if any(link in line for link in links):
                found += [f"identity {t!r} beside the tender in a line" for t in party.identity if t in line]
    return found


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _objects(v)
    elif isinstance(value, list):
        for v in value:
            yield from _objects(v)


def walked_routes(app: Litestar) -> list[Route]:
    return [r for r in routes(app) if r.method == "GET" and r.operation_id not in NOT_WALKED]


@pytest.fixture
def app(runtime: Any) -> Litestar:
    return create_app(runtime, manage_runtime=False)


def test_every_route_is_walked_or_set_aside_with_a_reason(app: Litestar) -> None:
    every = list(routes(app))
    ops = {r.operation_id for r in every}
    unclassified = sorted(
        f"{r.method} {r.path} ({r.operation_id})"
        for r in every
        if r.method != "GET" and r.operation_id not in NOT_WALKED
    )
    assert unclassified == [], "classify each new route: walk it (a GET) or say in NOT_WALKED why not"
    assert sorted(set(NOT_WALKED) - ops) == [], "NOT_WALKED names routes the app no longer has"
    assert sorted((set(QUERY_VARIANTS) | set(BASE_QUERY)) - ops) == []
    assert len(walked_routes(app)) > 50


async def test_before_the_deadline_nobody_outside_the_law_sees_who_takes_part_or_how_many(
    api: Api, app: Litestar
) -> None:
    w = await world(api)
    walked = walked_routes(app)
    links = tender_links(w)
    before = await snapshot(w, walked)

    # one more bidder obtains the documents, lodges a guarantee the centre verifies, and bids
    late = w.parties["late"]
    tid = w.tender["id"]
    assert (await api.post(f"{T}/{tid}/documents/obtain", late.actor)).status_code == 200
    d = await deposit_of(api, late.actor)
    g = await api.post(
        f"/api/v1/escrow/deposits/{d['id']}/guarantees",
        late.actor,
        json={
            "kind": "bank_guarantee",
            "issuer": "中国银行江苏省分行",
            "number": f"BG-{secrets.token_hex(4)}",
            "amount_fen": DEPOSIT,
            "valid_from": "2026-03-05",
            "valid_until": "2026-09-30",
        },
    )
    assert g.status_code == 201, g.text
    r = await api.post(
        f"/api/v1/escrow/guarantees/{g.json()['id']}/decision",
        w.viewers["centre"],
        json={"approve": True, "note": "开函行电话核实"},
    )
    assert r.status_code == 200, r.text
    await api.bid(late.actor, w.tender, 3_800_000_000, obtain=False, deposit=False)
    await traces(api, late, w.tender)
    after = await snapshot(w, walked)

    # the late bidder's own ids, in the routes that take them
    w.params.update(deposit_id=d["id"], organisation_id=late.actor.organisation_id)
    by_id = {}
    for route in walked:
        if "{deposit_id" in route.path or "{organisation_id" in route.path:
            for name, actor in w.viewers.items():
                r = await read(w, route, actor, BASE_QUERY.get(route.operation_id))
                by_id[(name, route.path)] = body_of(r)

    found: list[str] = []
    for snap in (before, after):
        for (viewer, path, query), (_status, answer) in snap.items():
            for key, party in w.parties.items():
                if key == viewer or allowed(viewer, path):
                    continue
                if viewer in w.parties:  # what the viewer shares with the party is its own (one payer)
                    mine = w.parties[viewer]
                    party = Party(
                        party.actor,
                        party.name,
                        party.identity - mine.identity,
                        party.participation - mine.participation,
                    )
                for leak in leaks(answer, party, links, "{tender_id" in path):
                    found.append(f"{viewer} sees {key} in GET {path} {query}: {leak}")
    for (viewer, path), answer in by_id.items():
        if not allowed(viewer, path):
            leaked = leaks(answer, late, links, "{tender_id" in path)
            found += [f"{viewer} sees late in GET {path}: {x}" for x in leaked]
    uncompared = {(r.path, q) for r in walked for op, q in UNCOMPARED if r.operation_id == op}
    changed = sorted(
        f"{viewer}: GET {path} {query}"
        for (viewer, path, query), answer in before.items()
        if not allowed(viewer, path)
        and (path, query) not in uncompared
        and after[(viewer, path, query)] != answer
    )
    print("\n".join(sorted(set(found)) + [f"changed: {c}" for c in changed]))  # shown when the test fails
    assert sorted(set(found)) == []
    assert changed == [], "an answer changed when one more bidder took part: a count leaks"


async def test_the_walk_would_see_a_leak(api: Api, app: Litestar) -> None:
    """The walk's own check: the bidder's own view of its deposit is caught as a leak when shown to another."""
    w = await world(api)
    b1 = w.parties["b1"]
    own = (await api.get(f"/api/v1/escrow/deposits/{w.params['deposit_id']}", b1.actor)).json()
    assert leaks(own, b1, tender_links(w), False)
    assert leaks(
        {"object_id": w.tender["id"], "actor_organisation_id": b1.actor.organisation_id},
        b1,
        tender_links(w),
        False,
    )
