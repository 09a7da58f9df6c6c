"""Nobody steers the committee draw: the centre cannot run, re-run or abort it; the witness comes from a
supervisor or notary, committed before the platform's seed exists and revealed by the same person; an
abort needs a reason and a supervisor's approval, reveals its seed at once and stays in the record and in
the statistics; the tenderer's staff are avoided (G-08); the published record carries the pool before
avoidance and every exclusion, and `ggzy verify draw` replays it all and names what was tampered with."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bidding.client import GgzyClient
from evaluation import draw, selection, witness
from evaluation.cli import verify_draw
from evaluation.models import Draw, Expert
from ggzy import cli as ggzy_cli
from tests.helpers import Actor, Api

BASE = "/api/v1/evaluation"


# ---------------------------------------------------------------- set-up


async def expert_id(api: Api, actor: Actor) -> str:
    me = (await api.get("/api/v1/auth/me", actor)).json()
    async with api.runtime.sessionmaker() as session:
        found = await session.scalar(select(Expert.id).where(Expert.user_id == uuid.UUID(me["user_id"])))
    assert found is not None
    return str(found)


async def pool(api: Api, n: int) -> dict[str, Actor]:
    """`n` fresh experts of specialty A0201, each with an employer of their own, by expert id."""
    out: dict[str, Actor] = {}
    for _ in range(n):
        actor = await api.expert()
        out[await expert_id(api, actor)] = actor
    return out


async def pool_with_phones(api: Api, n: int) -> dict[str, Actor]:
    """`pool`, each expert with a telephone number on file (personal data the record must not carry)."""
    experts = await pool(api, n)
    async with api.runtime.sessionmaker() as session, session.begin():
        for number, expert in enumerate(experts):
            row = await session.get(Expert, uuid.UUID(expert))
            assert row is not None
            row.phone = f"1380013{number:04d}"
    return experts


async def employ(api: Api, expert: str, credit_code: str) -> None:
    async with api.runtime.sessionmaker() as session, session.begin():
        row = await session.get(Expert, uuid.UUID(expert))
        assert row is not None
        row.employer_credit_code = credit_code


def draw_body(api: Api) -> dict[str, Any]:
    return {
        "evaluation_at": (api.clock.now() + timedelta(days=1)).isoformat(),
        "quotas": [{"specialty": "A02", "seats": 5}],
    }


async def request(api: Api, agency: Actor, tender: dict[str, Any]) -> dict[str, Any]:
    r = await api.post(f"{BASE}/tenders/{tender['id']}/draws", agency, json=draw_body(api))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def read(api: Api, draw_id: str, actor: Actor | None = None) -> dict[str, Any]:
    r = await api.get(f"{BASE}/draws/{draw_id}", actor or await api.bootstrap_centre())
    assert r.status_code == 200, r.text
    return dict(r.json())


class Witness:
    """A supervisor's witness: 32 random bytes and a nonce, and its commitment."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.witness, self.nonce = secrets.token_bytes(32), secrets.token_bytes(32)
        self.commitment = draw.witness_commitment(self.witness, self.nonce)

    @property
    def reveal_body(self) -> dict[str, str]:
        return {"witness": self.witness.hex(), "nonce": self.nonce.hex()}

    async def commit(self, api: Api, draw_id: str) -> dict[str, Any]:
        r = await api.post(
            f"{BASE}/draws/{draw_id}/witness", self.actor, json={"witness_commitment": self.commitment}
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def reveal(self, api: Api, draw_id: str) -> dict[str, Any]:
        r = await api.post(f"{BASE}/draws/{draw_id}/run", self.actor, json=self.reveal_body)
        assert r.status_code == 200, r.text
        return dict(r.json())


async def new_witness(api: Api) -> Witness:
    return Witness(await api.organisation("supervisor"))


async def drawn(api: Api, n: int = 7) -> tuple[Actor, dict[str, Any], dict[str, Actor], str, Witness]:
    """A tender under evaluation, a pool of `n` experts, a committee of five drawn by a supervisor's
    witness and invited."""
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    experts = await pool(api, n)
    made = await request(api, agency, tender)
    w = await new_witness(api)
    await w.commit(api, made["id"])
    await w.reveal(api, made["id"])
    return agency, tender, experts, made["id"], w


async def accept_all(api: Api, experts: dict[str, Actor]) -> None:
    for actor in experts.values():
        for invitation in (await api.get(f"{BASE}/invitations", actor)).json():
            if invitation["status"] == "invited":
                r = await api.post(
                    f"{BASE}/invitations/{invitation['id']}/answer", actor, json={"accept": True}
                )
                assert r.status_code == 200, r.text


async def ask_abort(
    api: Api, actor: Actor, draw_id: str, reason: str = "评标时间与开标异议处理冲突，需改期"
) -> str:
    r = await api.post(f"{BASE}/draws/{draw_id}/abort", actor, json={"reason": reason})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending"
    return str(r.json()["id"])


async def approve(api: Api, supervisor: Actor, draw_id: str, request_id: str) -> dict[str, Any]:
    r = await api.post(f"{BASE}/draws/{draw_id}/abort/approve", supervisor, json={"request_id": request_id})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def record_of(api: Api, draw_id: str) -> dict[str, Any]:
    r = await api.get(f"{BASE}/draws/{draw_id}/record", await api.organisation("auditor"))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def platform_key(api: Api) -> bytes:
    return base64.b64decode((await api.get("/api/v1/transparency/key")).json()["public_key"])


def problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return dict(r.json())


# ---------------------------------------------------------------- Found: the centre ran the draw


async def test_the_centre_cannot_run_a_draw(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    await pool(api, 7)
    made = await request(api, agency, tender)
    r = await api.post(
        f"{BASE}/draws/{made['id']}/run", await api.bootstrap_centre(), json={"witness": "a" * 64}
    )
    problem(r, 403)
    assert (await read(api, made["id"]))["invitations"] == []


async def test_the_centre_and_the_agency_cannot_commit_a_witness(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    await pool(api, 7)
    made = await request(api, agency, tender)
    body = {"witness_commitment": draw.witness_commitment(bytes(32), bytes(32))}
    for actor in (await api.bootstrap_centre(), agency, await api.organisation("bidder"), await api.expert()):
        problem(await api.post(f"{BASE}/draws/{made['id']}/witness", actor, json=body), 403)
    view = await read(api, made["id"])
    assert (view["status"], view["witness_commitment"], view["commitment"]) == (
        "awaiting_witness",
        None,
        None,
    )


# ---------------------------------------------------------------- Found: the witness could be empty


async def test_an_empty_witness_is_refused_naming_the_field(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    await pool(api, 7)
    made = await request(api, agency, tender)
    supervisor = await api.organisation("supervisor")
    r = await api.post(f"{BASE}/draws/{made['id']}/run", supervisor, json={"witness": ""})
    assert [e["field"] for e in problem(r, 400)["errors"]] == ["witness"]
    r = await api.post(f"{BASE}/draws/{made['id']}/witness", supervisor, json={"witness_commitment": ""})
    assert [e["field"] for e in problem(r, 400)["errors"]] == ["witness_commitment"]
    assert (await read(api, made["id"]))["status"] == "awaiting_witness"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"witness": "ab" * 31, "nonce": "00" * 32}, "witness"),
        ({"witness": "AB" * 32, "nonce": "00" * 32}, "witness"),
        ({"witness": "00" * 32, "nonce": "00" * 33}, "nonce"),
        ({"witness": "00" * 32}, "nonce"),
    ],
    ids=["short", "upper case", "long nonce", "no nonce"],
)
async def test_a_witness_or_nonce_that_is_not_32_bytes_of_hex_is_refused(
    api: Api, body: dict[str, str], field: str
) -> None:
    _agency, _tender, _experts, draw_id, w = await drawn(api)
    assert [
        e["field"]
        for e in problem(await api.post(f"{BASE}/draws/{draw_id}/run", w.actor, json=body), 400)["errors"]
    ] == [field]


# ---------------------------------------------------------------- Found: grinding the witness


async def test_the_witness_is_committed_before_the_platforms_seed_exists(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    await pool(api, 7)
    made = await request(api, agency, tender)
    assert (made["status"], made["commitment"], made["witness_commitment"]) == (
        "awaiting_witness",
        None,
        None,
    )
    async with api.runtime.sessionmaker() as session:
        row = await session.get(Draw, uuid.UUID(made["id"]))
        assert row is not None and row.sealed_seed == ""  # no seed exists yet
    w = await new_witness(api)
    committed = await w.commit(api, made["id"])
    assert committed["status"] == "committed" and committed["witness_commitment"] == w.commitment
    assert committed["invitations"] == [] and committed["seed"] is None
    # the platform's commitment covers the witness commitment, so it was made after it
    async with api.runtime.sessionmaker() as session:
        row = await session.get(Draw, uuid.UUID(made["id"]))
        assert row is not None
        seed = selection.unseal_seed(api.runtime.settings.secret_key, row)
        inputs = selection._inputs(row)
    assert committed["commitment"] == draw.commitment(seed, w.commitment, inputs)
    statement = draw.commitment_statement(made["id"], w.commitment, committed["commitment"])
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    Ed25519PublicKey.from_public_bytes(await platform_key(api)).verify(
        base64.b64decode(committed["commitment_signature"]), statement
    )


async def test_an_operator_who_can_unseal_the_seed_cannot_pick_a_witness_that_seats_its_expert(
    api: Api,
) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    experts = await pool(api, 9)
    made = await request(api, agency, tender)
    w = await new_witness(api)
    await w.commit(api, made["id"])
    # Whoever holds the server's secret can read the seed now that it exists ...
    async with api.runtime.sessionmaker() as session:
        row = await session.get(Draw, uuid.UUID(made["id"]))
        assert row is not None
        seed = selection.unseal_seed(api.runtime.settings.secret_key, row)
    entries = [draw.PoolEntry(e, ("A0201",), "") for e in experts]
    quotas = [draw.Quota("A02", 5)]
    honest = {
        s.expert_id for s in draw.select(entries, quotas, draw.final_seed(seed, w.witness), 1).committee
    }
    target = next(e for e in experts if e not in honest)
    # ... and find a witness that would seat its expert ...
    chosen = next(
        c
        for c in (n.to_bytes(32, "big") for n in range(10_000))
        if target
        in {s.expert_id for s in draw.select(entries, quotas, draw.final_seed(seed, c), 1).committee}
    )
    nonce = bytes(32)
    attack = {"witness": chosen.hex(), "nonce": nonce.hex()}
    # ... but cannot give it: the centre may not reveal, and the witness is bound by its commitment.
    problem(await api.post(f"{BASE}/draws/{made['id']}/run", await api.bootstrap_centre(), json=attack), 403)
    problem(
        await api.post(f"{BASE}/draws/{made['id']}/run", await api.organisation("supervisor"), json=attack),
        403,
    )
    r = problem(await api.post(f"{BASE}/draws/{made['id']}/run", w.actor, json=attack), 422)
    assert r["errors"] == [{"field": "witness", "message": "does not match the witness commitment"}]
    second = Witness(await api.organisation("supervisor"))
    problem(
        await api.post(
            f"{BASE}/draws/{made['id']}/witness", second.actor, json={"witness_commitment": second.commitment}
        ),
        409,
    )
    view = await w.reveal(api, made["id"])
    invited = {i["expert_id"] for i in view["invitations"]}
    assert invited == honest and target not in invited


async def test_only_the_supervisor_who_committed_reveals_and_the_reveal_runs_the_draw_once(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    experts = await pool(api, 7)
    made = await request(api, agency, tender)
    w = await new_witness(api)
    problem(
        await api.post(f"{BASE}/draws/{made['id']}/run", w.actor, json=w.reveal_body), 409
    )  # no commitment
    await w.commit(api, made["id"])
    assert (await w.commit(api, made["id"]))["status"] == "committed"  # the same commitment again: no change
    colleague = await api.organisation("supervisor")
    problem(await api.post(f"{BASE}/draws/{made['id']}/run", colleague, json=w.reveal_body), 403)
    ran = await w.reveal(api, made["id"])
    assert ran["status"] == "inviting" and len(ran["invitations"]) == 5
    assert (ran["witness"], ran["nonce"], ran["seed"]) == (w.witness.hex(), w.nonce.hex(), None)
    again = await w.reveal(api, made["id"])
    assert [i["id"] for i in again["invitations"]] == [i["id"] for i in ran["invitations"]]
    other = {**w.reveal_body, "nonce": "11" * 32}
    problem(await api.post(f"{BASE}/draws/{made['id']}/run", w.actor, json=other), 409)
    invited = [a for a in experts.values() if (await api.get(f"{BASE}/invitations", a)).json()]
    assert len(invited) == 5


# ---------------------------------------------------------------- Found: the centre aborted and drew again


async def test_the_centre_cannot_abort_a_draw_once_it_has_seen_the_names_and_draw_again(api: Api) -> None:
    agency, tender, _experts, draw_id, _w = await drawn(api)
    centre = await api.bootstrap_centre()
    assert all(i["expert_name"] for i in (await read(api, draw_id, centre))["invitations"])
    await api.post(f"{BASE}/draws/{draw_id}/abort", centre, json={"reason": "重新抽取，换一批专家"})
    assert (await read(api, draw_id))["status"] == "inviting"
    problem(await api.post(f"{BASE}/tenders/{tender['id']}/draws", centre, json=draw_body(api)), 403)
    problem(await api.post(f"{BASE}/tenders/{tender['id']}/draws", agency, json=draw_body(api)), 409)


async def test_an_abort_takes_effect_only_on_a_supervisors_approval(api: Api) -> None:
    agency, _tender, _experts, draw_id, w = await drawn(api)
    centre = await api.bootstrap_centre()
    request_id = await ask_abort(api, centre, draw_id, "专家库专业设置有误，需重新申请")
    problem(
        await api.post(
            f"{BASE}/draws/{draw_id}/abort", agency, json={"reason": "第二次申请终止本次专家抽取"}
        ),
        409,
    )
    for actor in (centre, agency, await api.organisation("auditor"), await api.expert()):
        r = await api.post(f"{BASE}/draws/{draw_id}/abort/approve", actor, json={"request_id": request_id})
        problem(r, 403)
    # the draw's own witness may not end the draw it could otherwise stall
    problem(
        await api.post(f"{BASE}/draws/{draw_id}/abort/approve", w.actor, json={"request_id": request_id}), 403
    )
    view = await read(api, draw_id)
    assert view["status"] == "inviting" and view["seed"] is None
    assert [(a["status"], a["requester_role"], a["stage"]) for a in view["abort_requests"]] == [
        ("pending", "centre", "inviting")
    ]


async def test_a_supervisor_may_refuse_an_abort_with_a_reason_and_the_draw_goes_on(api: Api) -> None:
    agency, _tender, _experts, draw_id, _w = await drawn(api)
    request_id = await ask_abort(api, agency, draw_id)
    supervisor = await api.organisation("supervisor")
    r = await api.post(
        f"{BASE}/draws/{draw_id}/abort/refuse",
        supervisor,
        json={"request_id": request_id, "note": "理由不成立，抽取继续"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["decision_note"]) == ("refused", "理由不成立，抽取继续")
    late = await api.post(
        f"{BASE}/draws/{draw_id}/abort/approve", supervisor, json={"request_id": request_id}
    )
    problem(late, 409)
    assert (await read(api, draw_id))["status"] == "inviting"


# ---------------------------------------------------------------- Found: aborted seeds never revealed


async def test_an_approved_abort_reveals_the_seed_at_once_and_the_aborted_record_replays(api: Api) -> None:
    agency, tender, experts, draw_id, w = await drawn(api)
    invited = (await read(api, draw_id))["invitations"]
    request_id = await ask_abort(api, agency, draw_id)
    supervisor = await api.organisation("supervisor")
    view = await approve(api, supervisor, draw_id, request_id)
    assert view["status"] == "aborted" and view["aborted_at"] is not None
    assert view["seed"] is not None and len(view["seed"]) == 64
    assert [i["status"] for i in view["invitations"]] == ["cancelled"] * 5
    assert view["abort_requests"][0]["status"] == "approved"
    # an expert can no longer accept
    actor = experts[invited[0]["expert_id"]]
    [mine] = (await api.get(f"{BASE}/invitations", actor)).json()
    assert mine["status"] == "cancelled"
    problem(await api.post(f"{BASE}/invitations/{mine['id']}/answer", actor, json={"accept": True}), 409)
    # the aborted draw stays among the tender's draws and its record replays what it had drawn
    record = await record_of(api, draw_id)
    assert (record["status"], record["seed_hex"], record["witness"]) == (
        "aborted",
        view["seed"],
        w.witness.hex(),
    )
    assert record["abort"]["reason"] == "评标时间与开标异议处理冲突，需改期"
    assert record["abort"]["requested_by"] == "agency" and record["abort"]["stage"] == "inviting"
    assert [s["expert_id"] for s in record["invitations"]] == [i["expert_id"] for i in invited]
    assert draw.verify(draw.record_from_json(record), await platform_key(api)) == []
    check = (await api.get(f"{BASE}/draws/{draw_id}/verify", supervisor)).json()
    assert check == {"draw_id": draw_id, "status": "aborted", "ok": True, "problems": [], "invitations": 5}
    api.clock.advance(timedelta(minutes=5))
    again = await request(api, agency, tender)
    listed = (await api.get(f"{BASE}/tenders/{tender['id']}/draws", await api.organisation("auditor"))).json()
    assert [d["id"] for d in listed] == [again["id"], draw_id]
    assert [d["status"] for d in listed] == ["awaiting_witness", "aborted"]


async def test_an_abort_between_the_commitments_and_the_reveal_reveals_the_seed_and_replays(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    await pool(api, 7)
    made = await request(api, agency, tender)
    w = await new_witness(api)
    await w.commit(api, made["id"])
    view = await approve(
        api, await api.organisation("supervisor"), made["id"], await ask_abort(api, agency, made["id"])
    )
    assert view["seed"] is not None and view["witness"] is None
    record = await record_of(api, made["id"])
    assert (record["witness"], record["nonce"], record["invitations"]) == (None, None, [])
    assert draw.verify(draw.record_from_json(record), await platform_key(api)) == []
    problem(await api.post(f"{BASE}/draws/{made['id']}/run", w.actor, json=w.reveal_body), 409)


async def test_an_abort_before_any_witness_publishes_the_avoidance_and_no_seed(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    await pool(api, 7)
    made = await request(api, agency, tender)
    view = await approve(
        api, await api.organisation("supervisor"), made["id"], await ask_abort(api, agency, made["id"])
    )
    assert (view["status"], view["seed"], view["commitment"]) == ("aborted", None, None)
    record = await record_of(api, made["id"])
    assert (record["witness_commitment"], record["commitment"], record["seed_hex"]) == (None, None, None)
    assert len(record["candidates"]) == 7
    assert draw.verify(draw.record_from_json(record)) == []


async def test_aborts_are_counted_by_month_requester_agency_and_tender_for_supervisors_and_auditors(
    api: Api,
) -> None:
    agency, tender, _experts, draw_id, _w = await drawn(api)
    supervisor = await api.organisation("supervisor")
    centre = await api.bootstrap_centre()
    first = await ask_abort(api, centre, draw_id, "重新抽取，换一批专家 (after the names)")
    await api.post(
        f"{BASE}/draws/{draw_id}/abort/refuse",
        supervisor,
        json={"request_id": first, "note": "理由不成立，驳回本次终止申请"},
    )
    api.clock.advance(timedelta(minutes=5))
    await approve(api, supervisor, draw_id, await ask_abort(api, agency, draw_id))
    await request(api, agency, tender)
    for reader in (supervisor, await api.organisation("auditor")):
        r = await api.get(
            f"{BASE}/draw-aborts", reader, params={"since": "2026-03-01", "until": "2026-03-31"}
        )
        assert r.status_code == 200, r.text
        stats = r.json()
        assert stats["totals"] == {"draws": 2, "requests": 2, "approved": 1, "refused": 1, "pending": 0}
        assert stats["approved_after_names_were_drawn"] == 1
        assert stats["by_month"] == [
            {"month": "2026-03", "draws": 2, "requests": 2, "approved": 1, "refused": 1, "pending": 0}
        ]
        by_kind = {
            row["kind"]: (row["requests"], row["approved"], row["refused"]) for row in stats["by_requester"]
        }
        assert by_kind == {"centre": (1, 0, 1), "agency": (1, 1, 0)}
        assert [(row["organisation_id"], row["draws"], row["requests"]) for row in stats["by_agency"]] == [
            (agency.organisation_id, 2, 2)
        ]
        assert [(row["code"], row["approved"]) for row in stats["by_tender"]] == [(tender["code"], 1)]
        assert [(x["requester_role"], x["stage"], x["status"]) for x in stats["requests"]] == [
            ("centre", "inviting", "refused"),
            ("agency", "inviting", "approved"),
        ]
    empty = (await api.get(f"{BASE}/draw-aborts", supervisor, params={"since": "2026-04-01"})).json()
    assert empty["totals"] == {"draws": 0, "requests": 0, "approved": 0, "refused": 0, "pending": 0}
    for actor in (centre, agency, await api.organisation("bidder"), await api.expert()):
        problem(await api.get(f"{BASE}/draw-aborts", actor), 403)
    r = await api.get(
        f"{BASE}/draw-aborts", supervisor, params={"since": "2026-04-01", "until": "2026-03-01"}
    )
    assert [e["field"] for e in problem(r, 422)["errors"]] == ["until"]


# ---------------------------------------------------------------- Found: the tenderer's staff


async def test_the_tender_carries_the_tenderers_credit_code_and_its_staff_are_avoided_under_g08(
    api: Api,
) -> None:
    agency = await api.organisation("agency")
    tenderer = await api.organisation("employer", name="南京市城南水务有限公司")
    tender, _bids = await api.in_evaluation(agency, tenderer_credit_code=tenderer.credit_code)
    assert tender["tenderer_credit_code"] == tenderer.credit_code
    await pool(api, 6)
    staff = await api.expert()
    staff_id = await expert_id(api, staff)
    await employ(api, staff_id, tenderer.credit_code)
    made = await request(api, agency, tender)
    assert made["excluded"] == {"by_reason": {"employer_is_party": 1}, "count": 1}
    assert tenderer.credit_code in made["context"]["parties"]
    view = await api.witnessed(made["id"])
    assert len(view["invitations"]) == 5
    assert (await api.get(f"{BASE}/invitations", staff)).json() == []


# ---------------------------------------------------------------- Found: the record lacked the pool before avoidance


async def confirmed_with_exclusions(api: Api) -> tuple[str, dict[str, Actor], str, str]:
    """A confirmed draw from 7 clean experts, with one expert working for a bidder and one employed by the
    tenderer avoided: answers the draw id, the experts, the bidder's and the tenderer's employees' ids."""
    agency = await api.organisation("agency")
    tender, bids = await api.in_evaluation(agency)
    experts = await pool_with_phones(api, 9)
    at_bidder, at_tenderer = list(experts)[:2]
    await employ(api, at_bidder, bids[0].bidder.credit_code)
    await employ(api, at_tenderer, tender["tenderer_credit_code"])
    made = await request(api, agency, tender)
    await api.witnessed(made["id"])
    await accept_all(api, experts)
    assert (await read(api, made["id"]))["status"] == "confirmed"
    return made["id"], experts, at_bidder, at_tenderer


async def test_the_published_record_holds_the_pool_before_avoidance_and_every_exclusion(api: Api) -> None:
    draw_id, experts, at_bidder, at_tenderer = await confirmed_with_exclusions(api)
    record = await record_of(api, draw_id)
    assert sorted(c["expert_id"] for c in record["candidates"]) == sorted(experts)
    expected = {at_bidder: ["employer_is_bidder"], at_tenderer: ["employer_is_party"]}
    assert record["exclusions"] == [{"expert_id": e, "reasons": expected[e]} for e in sorted(expected)]
    assert set(record["candidates"][0]) == {
        "expert_id",
        "specialties",
        "employer",
        "status",
        "term_start",
        "term_end",
        "former_employers",
        "relatives_at",
        "unavailable",
        "credit_score",
        "services_for_tenderer",
        "has_account",
    }
    text = json.dumps(record, ensure_ascii=False)
    async with api.runtime.sessionmaker() as session:
        named = list(await session.scalars(select(Expert)))
    assert len(named) == 9 and all(e.phone for e in named)
    assert [e.name for e in named if e.name in text] == []
    assert [e.phone for e in named if e.phone and e.phone in text] == []
    assert draw.verify(draw.record_from_json(record), await platform_key(api)) == []


def tamper(record: dict[str, Any], change: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(record))
    if change == "an exclusion removed":
        data["exclusions"] = data["exclusions"][1:]
    elif change == "a pool entry changed":  # an eligible expert now works for a bidder
        excluded = {e["expert_id"] for e in data["exclusions"]}
        entry = next(c for c in data["candidates"] if c["expert_id"] not in excluded)
        entry["employer"] = data["context"]["bidders"][0]
    elif change == "a witness changed":
        data["witness"] = "00" * 32
    elif change == "a seed changed":
        data["seed_hex"] = "11" * 32
    elif change == "an invitation changed":
        data["invitations"][0]["expert_id"] = data["exclusions"][0]["expert_id"]
    elif change == "the signature changed":
        data["signature"] = base64.b64encode(bytes(64)).decode()
    return data


@pytest.mark.parametrize(
    ("change", "failed"),
    [
        ("an exclusion removed", ["exclusions", "commitment", "invitations"]),
        ("a pool entry changed", ["exclusions", "commitment"]),
        ("a witness changed", ["witness", "invitations"]),
        ("a seed changed", ["commitment", "invitations"]),
        ("an invitation changed", ["invitations"]),
        ("the signature changed", ["signature"]),
    ],
)
async def test_ggzy_verify_draw_names_what_was_tampered_with(
    api: Api, tmp_path: Path, change: str, failed: list[str]
) -> None:
    draw_id, _experts, _at_bidder, _at_tenderer = await confirmed_with_exclusions(api)
    record = await record_of(api, draw_id)
    key = base64.b64encode(await platform_key(api)).decode()
    good = tmp_path / "draw.json"
    good.write_text(json.dumps(record), encoding="utf-8")
    result = CliRunner().invoke(verify_draw, [str(good), "--key", key])
    assert result.exit_code == 0, result.output
    assert "9 before avoidance; excluded 2: employer_is_bidder 1, employer_is_party 1" in result.output
    assert "ok   avoidance and the committee reproduce" in result.output
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tamper(record, change)), encoding="utf-8")
    result = CliRunner().invoke(verify_draw, [str(bad), "--key", key])
    assert result.exit_code == 1
    named = [line.split()[1].rstrip(":") for line in result.output.splitlines() if line.startswith("FAIL")]
    if change == "an exclusion removed":
        assert named[:2] == failed[:2] and set(named) <= set(failed)
    else:
        assert named == failed


async def test_ggzy_verify_draw_replays_an_aborted_draw(api: Api, tmp_path: Path) -> None:
    agency, _tender, _experts, draw_id, _w = await drawn(api)
    await approve(api, await api.organisation("supervisor"), draw_id, await ask_abort(api, agency, draw_id))
    record = await record_of(api, draw_id)
    path = tmp_path / "aborted.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    result = CliRunner().invoke(verify_draw, [str(path)])
    assert result.exit_code == 0, result.output
    assert f"draw       {draw_id}, aborted" in result.output
    assert "abort      asked by the agency while inviting" in result.output


async def test_ggzy_verify_draw_replays_a_draw_by_its_id_from_the_configured_database_and_store(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    agency, _tender, _experts, draw_id, _w = await drawn(api)
    await approve(api, await api.organisation("supervisor"), draw_id, await ask_abort(api, agency, draw_id))
    settings = api.runtime.settings
    for name in ("GGZY_S3_ENDPOINT", "GGZY_LOG_SIGNING_KEY", "GGZY_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GGZY_DATABASE_URL", api.runtime.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("GGZY_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("GGZY_SECRET_KEY", settings.secret_key)  # the platform key checks the signature
    # the command runs its own event loop, so it runs beside the test's
    result = await asyncio.to_thread(CliRunner().invoke, verify_draw, [draw_id])
    assert result.exit_code == 0, result.output
    assert f"draw       {draw_id}, aborted" in result.output
    assert "signed by key" in result.output and "FAIL" not in result.output
    unknown = await asyncio.to_thread(CliRunner().invoke, verify_draw, [str(uuid.uuid4())])
    assert unknown.exit_code == 1 and "no draw" in unknown.output


# ---------------------------------------------------------------- the witness's client and CLI


def client_for(api: Api, token: str) -> GgzyClient:
    return GgzyClient("http://testserver", token, transport=api.client._transport)


async def test_the_witness_client_commits_checks_the_signed_commitment_and_reveals(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    await pool(api, 7)
    made = await request(api, agency, tender)
    supervisor = await api.organisation("supervisor")
    async with client_for(api, supervisor.token) as client:
        kept = await witness.commit(client, made["id"])
        assert witness.Witness.from_json(kept.to_json()) == kept
        view = await read(api, made["id"])
        assert (view["witness_commitment"], view["commitment"]) == (kept.witness_commitment, kept.commitment)
        # a platform that changed its commitment after signing is caught before the witness is given away
        forged = witness.Witness(**{**kept.__dict__, "commitment": "00" * 32})
        with pytest.raises(witness.WitnessError, match="commitment changed"):
            await witness.reveal(client, forged)
        assert (await read(api, made["id"]))["status"] == "committed"
        ran = await witness.reveal(client, kept)
    assert ran["status"] == "inviting" and len(ran["invitations"]) == 5
    with pytest.raises(witness.WitnessError, match="signature"):
        witness.check_signature(base64.b64encode(bytes(32)).decode(), kept)


def test_a_witness_file_whose_witness_does_not_match_its_commitment_is_refused(tmp_path: Path) -> None:
    kept = witness.Witness.fresh(str(uuid.uuid4()))
    data = json.loads(kept.to_json())
    data["witness"] = "00" * 32
    path = tmp_path / "w.json"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(ggzy_cli, ["draw", "reveal", str(path)], env={"GGZY_TOKEN": "x"})
    assert result.exit_code != 0 and "do not match its commitment" in result.output
