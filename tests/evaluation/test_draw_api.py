"""The committee draw through the API: the commitment before the selection, who may see the names, the
witness, invitations, declines, timeouts and their replacements, avoidance, the employer limit, W-10, and
the replay of a confirmed draw online, offline and with `ggzy verify draw`."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from evaluation import draw, selection
from evaluation.cli import verify_draw
from evaluation.models import CreditEvent, Draw, Expert, ExpertRelationship, ExpertUnavailability
from storage.db import transaction
from tests.helpers import Actor, Api, SealedBid

BASE = "/api/v1/evaluation"
SEAT_FIELDS = {"id", "position", "quota_index", "round", "status", "respond_by"}


# ---------------------------------------------------------------- set-up


async def expert_id(api: Api, actor: Actor) -> str:
    """The pool id of the expert signed in as `actor`."""
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


async def change_expert(api: Api, expert: str, **values: Any) -> None:
    async with transaction(api.runtime.sessionmaker) as session:
        row = await session.get(Expert, uuid.UUID(expert))
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)


def body(at: datetime, seats: int = 5, **extra: Any) -> dict[str, Any]:
    return {"evaluation_at": at.isoformat(), "quotas": [{"specialty": "A02", "seats": seats}], **extra}


async def request(api: Api, agency: Actor, tender: dict[str, Any], **extra: Any) -> dict[str, Any]:
    seats = extra.pop("seats", 5)
    r = await api.post(
        f"{BASE}/tenders/{tender['id']}/draws",
        agency,
        json=body(api.clock.now() + timedelta(days=1), seats, **extra),
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def run(api: Api, draw_id: str) -> dict[str, Any]:
    """A supervisor commits to a witness and reveals it: the draw runs."""
    return await api.witnessed(draw_id)


async def read(api: Api, draw_id: str) -> dict[str, Any]:
    r = await api.get(f"{BASE}/draws/{draw_id}", await api.bootstrap_centre())
    assert r.status_code == 200, r.text
    return dict(r.json())


async def my_invitation(api: Api, actor: Actor) -> dict[str, Any] | None:
    """The expert's open invitation, if any."""
    mine = [i for i in (await api.get(f"{BASE}/invitations", actor)).json() if i["status"] == "invited"]
    assert len(mine) <= 1
    return dict(mine[0]) if mine else None


async def answer(api: Api, actor: Actor, accept: bool, reason: str | None = None) -> None:
    invitation = await my_invitation(api, actor)
    assert invitation is not None
    r = await api.post(
        f"{BASE}/invitations/{invitation['id']}/answer", actor, json={"accept": accept, "reason": reason}
    )
    assert r.status_code == 200, r.text


def standing(view: dict[str, Any]) -> list[str]:
    return [i["expert_id"] for i in view["invitations"] if i["status"] == "invited"]


async def drawn(api: Api, n: int = 7) -> tuple[Actor, dict[str, Any], list[SealedBid], dict[str, Actor], str]:
    """A tender under evaluation, a pool of `n` experts and a committee of five drawn and invited."""
    agency = await api.organisation("agency")
    tender, bids = await api.in_evaluation(agency)
    experts = await pool(api, n)
    draw_id = (await request(api, agency, tender))["id"]
    await run(api, draw_id)
    return agency, tender, bids, experts, draw_id


async def confirmed(api: Api) -> tuple[str, dict[str, Actor]]:
    """A draw whose five invited experts all accepted."""
    _agency, _tender, _bids, experts, draw_id = await drawn(api)
    for expert in standing(await read(api, draw_id)):
        await answer(api, experts[expert], True)
    return draw_id, experts


async def credit_kinds(api: Api, expert: str) -> list[str]:
    async with api.runtime.sessionmaker() as session:
        rows = await session.scalars(
            select(CreditEvent.kind).where(CreditEvent.expert_id == uuid.UUID(expert))
        )
        return sorted(rows)


# ---------------------------------------------------------------- the request


async def test_a_request_publishes_the_digests_pool_size_and_exclusions_before_any_seed_exists(
    api: Api,
) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    await pool(api, 7)
    made = await request(api, agency, tender)
    assert made["status"] == "awaiting_witness" and made["commitment"] is None
    assert all(len(made[d]) == 64 for d in ("candidates_digest", "exclusions_digest", "pool_digest"))
    assert made["pool_size"] == 7
    assert made["excluded"] == {"by_reason": {}, "count": 0}
    assert made["invitations"] == [] and made["seed"] is None and made["drawn_at"] is None
    assert made["context"]["on"] == "2026-03-24" and len(made["context"]["bidders"]) == 3
    assert made["committee_size"] == 5 and made["quotas"] == [{"specialty": "A02", "seats": 5}]


async def test_a_request_before_the_bid_deadline_is_a_conflict(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    await pool(api, 7)
    r = await api.post(
        f"{BASE}/tenders/{tender['id']}/draws", agency, json=body(api.clock.now() + timedelta(days=30))
    )
    assert r.status_code == 409, r.text


async def test_a_second_draw_for_the_same_tender_is_a_conflict(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    await pool(api, 7)
    first = await request(api, agency, tender)
    r = await api.post(
        f"{BASE}/tenders/{tender['id']}/draws", agency, json=body(api.clock.now() + timedelta(days=1))
    )
    assert r.status_code == 409, r.text
    assert r.json()["draw_id"] == first["id"]


@pytest.mark.parametrize("seats", [4, 6, 3])
async def test_quotas_making_an_even_or_smaller_than_five_committee_are_refused_by_w10(
    api: Api, seats: int
) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    await pool(api, 7)
    r = await api.post(
        f"{BASE}/tenders/{tender['id']}/draws", agency, json=body(api.clock.now() + timedelta(days=1), seats)
    )
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "W-10"
    assert [e["field"] for e in r.json()["errors"]] == ["quotas"]


async def test_four_experts_and_the_agencys_representative_make_a_lawful_committee_of_five(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    await pool(api, 7)
    me = (await api.get("/api/v1/auth/me", agency)).json()
    made = await request(api, agency, tender, seats=4, representative_user_id=me["user_id"])
    assert made["committee_size"] == 5


async def test_a_representative_who_is_not_a_user_of_the_agency_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, bids = await api.in_evaluation(agency)
    await pool(api, 7)
    outsider = (await api.get("/api/v1/auth/me", bids[0].bidder)).json()["user_id"]
    r = await api.post(
        f"{BASE}/tenders/{tender['id']}/draws",
        agency,
        json=body(api.clock.now() + timedelta(days=1), 4, representative_user_id=outsider),
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["representative_user_id"]


@pytest.mark.parametrize(
    ("at", "message"),
    [("2026-03-25T09:00:00", "naive datetime"), ("9999-12-31T20:00:00+00:00", "out of range")],
)
async def test_an_evaluation_time_without_a_zone_or_beyond_2099_is_refused(
    api: Api, at: str, message: str
) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    await pool(api, 7)
    r = await api.post(
        f"{BASE}/tenders/{tender['id']}/draws",
        agency,
        json={"evaluation_at": at, "quotas": [{"specialty": "A02", "seats": 5}]},
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"field": "evaluation_at", "message": message}]


# ---------------------------------------------------------------- who sees the names


async def test_the_agency_sees_the_seats_but_not_who_was_drawn_before_publication(api: Api) -> None:
    agency, tender, _bids, _experts, draw_id = await drawn(api)
    view = (await api.get(f"{BASE}/draws/{draw_id}", agency)).json()
    assert len(view["invitations"]) == 5
    assert all(set(i) == SEAT_FIELDS for i in view["invitations"])
    listed = (await api.get(f"{BASE}/tenders/{tender['id']}/draws", agency)).json()
    assert [set(i) for i in listed[0]["invitations"]] == [SEAT_FIELDS] * 5


async def test_a_bidder_cannot_read_the_draw(api: Api) -> None:
    _agency, tender, bids, _experts, draw_id = await drawn(api)
    assert (await api.get(f"{BASE}/draws/{draw_id}", bids[0].bidder)).status_code == 403
    assert (await api.get(f"{BASE}/tenders/{tender['id']}/draws", bids[0].bidder)).status_code == 403


@pytest.mark.parametrize("kind", ["centre", "supervisor", "auditor"])
async def test_the_centre_supervisors_and_auditors_see_who_was_drawn(api: Api, kind: str) -> None:
    _agency, _tender, _bids, experts, draw_id = await drawn(api)
    reader = await api.bootstrap_centre() if kind == "centre" else await api.organisation(kind)
    view = (await api.get(f"{BASE}/draws/{draw_id}", reader)).json()
    assert {i["expert_id"] for i in view["invitations"]} <= set(experts)
    assert all(i["expert_name"].startswith("专家") for i in view["invitations"])


# ---------------------------------------------------------------- invitations


async def test_the_witness_reveal_invites_exactly_the_quota(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    experts = await pool(api, 7)
    draw_id = (await request(api, agency, tender))["id"]
    supervisor = await api.organisation("supervisor")
    view = await api.witnessed(draw_id, supervisor)
    assert view["status"] == "inviting" and len(view["witness"]) == 64 and view["seed"] is None
    assert view["witness_organisation_id"] == supervisor.organisation_id
    assert [(i["position"], i["quota_index"], i["round"], i["status"]) for i in view["invitations"]] == [
        (n, 0, 0, "invited") for n in range(5)
    ]
    invited = [e for e, actor in experts.items() if await my_invitation(api, actor) is not None]
    assert sorted(invited) == sorted(i["expert_id"] for i in view["invitations"])
    again = await api.post(
        f"{BASE}/draws/{draw_id}/witness", supervisor, json={"witness_commitment": "ab" * 32}
    )
    assert again.status_code == 409


async def test_a_decline_is_replaced_from_the_same_quota_and_recorded_on_the_credit_record(api: Api) -> None:
    _agency, _tender, _bids, experts, draw_id = await drawn(api)
    decliner = standing(await read(api, draw_id))[2]
    await answer(api, experts[decliner], False, "出差 (away on business)")
    view = await read(api, draw_id)
    assert len(view["invitations"]) == 6
    declined = next(i for i in view["invitations"] if i["expert_id"] == decliner)
    assert declined["status"] == "declined" and declined["reason"] == "出差 (away on business)"
    replacement = view["invitations"][5]
    assert (replacement["quota_index"], replacement["round"], replacement["replaces"]) == (0, 1, decliner)
    assert replacement["status"] == "invited"
    assert await my_invitation(api, experts[replacement["expert_id"]]) is not None
    assert await credit_kinds(api, decliner) == ["declined"]


async def test_an_unanswered_invitation_times_out_at_its_deadline_and_is_replaced(api: Api) -> None:
    _agency, _tender, _bids, experts, draw_id = await drawn(api)
    view = await read(api, draw_id)
    silent = view["invitations"][0]["expert_id"]
    for expert in standing(view)[1:]:
        await answer(api, experts[expert], True)
    deadline = datetime.fromisoformat(view["invitations"][0]["respond_by"])
    await api.at(deadline - timedelta(seconds=1))
    assert (await read(api, draw_id))["invitations"][0]["status"] == "invited"
    await api.at(deadline)
    view = await read(api, draw_id)
    assert view["invitations"][0]["status"] == "timed_out"
    assert len(view["invitations"]) == 6
    assert (view["invitations"][5]["round"], view["invitations"][5]["replaces"]) == (1, silent)
    assert await credit_kinds(api, silent) == ["no_response"]
    late = (await api.get(f"{BASE}/invitations", experts[silent])).json()[0]
    r = await api.post(f"{BASE}/invitations/{late['id']}/answer", experts[silent], json={"accept": True})
    assert r.status_code == 409


async def test_after_an_abort_an_outstanding_invitation_can_no_longer_be_accepted(api: Api) -> None:
    agency, tender, _bids, experts, draw_id = await drawn(api)
    invited = standing(await read(api, draw_id))
    await answer(api, experts[invited[0]], True)
    asked = await api.post(
        f"{BASE}/draws/{draw_id}/abort",
        await api.bootstrap_centre(),
        json={"reason": "专业设置有误，重新申请"},
    )
    assert asked.status_code == 201, asked.text
    r = await api.post(
        f"{BASE}/draws/{draw_id}/abort/approve",
        await api.organisation("supervisor"),
        json={"request_id": asked.json()["id"]},
    )
    assert r.status_code == 200 and r.json()["status"] == "aborted"
    for expert in invited[1:]:
        [invitation] = (await api.get(f"{BASE}/invitations", experts[expert])).json()
        assert invitation["status"] == "cancelled"
        r = await api.post(
            f"{BASE}/invitations/{invitation['id']}/answer", experts[expert], json={"accept": True}
        )
        assert r.status_code == 409
    assert (await read(api, draw_id))["status"] == "aborted"
    assert (await api.get(f"{BASE}/rooms", experts[invited[0]])).json() == []
    again = await api.post(
        f"{BASE}/tenders/{tender['id']}/draws", agency, json=body(api.clock.now() + timedelta(days=1))
    )
    assert again.status_code == 201


async def test_when_every_seat_accepts_the_draw_is_confirmed_the_seed_revealed_and_it_replays(
    api: Api,
) -> None:
    draw_id, _experts = await confirmed(api)
    view = await read(api, draw_id)
    assert view["status"] == "confirmed" and view["confirmed_at"] is not None
    assert view["seed"] is not None and len(view["seed"]) == 64
    centre = await api.bootstrap_centre()
    check = (await api.get(f"{BASE}/draws/{draw_id}/verify", centre)).json()
    assert check == {"draw_id": draw_id, "status": "confirmed", "ok": True, "problems": [], "invitations": 5}
    record = (await api.get(f"{BASE}/draws/{draw_id}/record", centre)).json()
    assert draw.verify(draw.record_from_json(record)) == []
    assert record["seed_hex"] == view["seed"] and record["commitment"] == view["commitment"]


async def test_the_record_is_not_published_before_the_seed_is_revealed(api: Api) -> None:
    _agency, _tender, _bids, _experts, draw_id = await drawn(api)
    r = await api.get(f"{BASE}/draws/{draw_id}/record", await api.bootstrap_centre())
    assert r.status_code == 409


async def test_a_record_with_one_invitation_changed_fails_verification(api: Api) -> None:
    draw_id, experts = await confirmed(api)
    record = (await api.get(f"{BASE}/draws/{draw_id}/record", await api.bootstrap_centre())).json()
    outsider = next(e for e in experts if e not in {i["expert_id"] for i in record["invitations"]})
    record["invitations"][3]["expert_id"] = outsider
    problems = draw.verify(draw.record_from_json(record))
    assert len(problems) == 1 and problems[0].startswith("invitations: invitation 3 differs")


async def test_ggzy_verify_draw_accepts_a_downloaded_record_and_refuses_a_tampered_one(
    api: Api, tmp_path: Path
) -> None:
    draw_id, experts = await confirmed(api)
    record = (await api.get(f"{BASE}/draws/{draw_id}/record", await api.bootstrap_centre())).json()
    good = tmp_path / "draw.json"
    good.write_text(json.dumps(record), encoding="utf-8")
    result = CliRunner().invoke(verify_draw, [str(good)])
    assert result.exit_code == 0, result.output
    assert "avoidance and the committee reproduce from the published seed" in result.output
    outsider = next(e for e in experts if e not in {i["expert_id"] for i in record["invitations"]})
    record["invitations"][0]["expert_id"] = outsider
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(record), encoding="utf-8")
    result = CliRunner().invoke(verify_draw, [str(bad)])
    assert result.exit_code == 1
    assert "FAIL invitations: invitation 0 differs" in result.output


# ---------------------------------------------------------------- avoidance and the employer limit


async def test_experts_with_a_conflict_unavailable_or_suspended_are_never_invited(api: Api) -> None:
    agency = await api.organisation("agency")
    tender, bids = await api.in_evaluation(agency)
    evaluation_at = api.clock.now() + timedelta(days=1)
    day = evaluation_at.date()
    clean = await pool(api, 5)
    conflicted = await pool(api, 5)
    employed, former, relative, away, suspended = conflicted
    await change_expert(api, employed, employer_credit_code=bids[0].bidder.credit_code)
    await change_expert(api, suspended, status="suspended")
    async with transaction(api.runtime.sessionmaker) as session:
        now = api.clock.now()
        session.add(
            ExpertRelationship(
                expert_id=uuid.UUID(former),
                kind="former_employer",
                credit_code=bids[1].bidder.credit_code,
                organisation_name="bidder",
                start_on=date(2015, 1, 1),
                end_on=day.replace(year=day.year - 2),
                declared_at=now,
            )
        )
        session.add(
            ExpertRelationship(
                expert_id=uuid.UUID(relative),
                kind="relative",
                credit_code=bids[2].bidder.credit_code,
                organisation_name="bidder",
                relation="配偶 (spouse)",
                declared_at=now,
            )
        )
        session.add(
            ExpertUnavailability(expert_id=uuid.UUID(away), start_on=day, end_on=day, declared_at=now)
        )
    r = await api.post(f"{BASE}/tenders/{tender['id']}/draws", agency, json=body(evaluation_at))
    assert r.status_code == 201, r.text
    assert r.json()["pool_size"] == 5
    assert r.json()["excluded"] == {
        "by_reason": {
            "employer_is_bidder": 1,
            "former_employer_bidder": 1,
            "not_active": 1,
            "relative_at_bidder": 1,
            "unavailable": 1,
        },
        "count": 5,
    }
    view = await run(api, r.json()["id"])
    assert sorted(i["expert_id"] for i in view["invitations"]) == sorted(clean)
    for actor in conflicted.values():
        assert (await api.get(f"{BASE}/invitations", actor)).json() == []


async def test_with_an_employer_limit_of_one_two_experts_of_one_employer_are_never_both_seated(
    api: Api,
) -> None:
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    experts = await pool(api, 5)
    same = list(experts)[:2]
    code = experts[same[0]].credit_code
    await change_expert(api, same[1], employer_credit_code=code)
    made = await request(api, agency, tender)
    assert made["employer_limit"] == 1 and made["pool_size"] == 5
    view = await run(api, made["id"])
    invited = [i["expert_id"] for i in view["invitations"]]
    assert view["status"] == "short" and len(invited) == 4
    assert len(set(invited) & set(same)) == 1


# ---------------------------------------------------------------- first-version draws


async def test_a_first_version_draw_still_selects_confirms_and_replays_as_it_did(api: Api) -> None:
    """A draw made before witness commitments (ggzy-draw-v1: the seed sealed when the agency asked, any
    witness text) keeps its rules: its invitations are replaced as before, its record is the v1 record and
    it verifies; no witness can commit to it now."""
    agency = await api.organisation("agency")
    tender, _bids = await api.in_evaluation(agency)
    experts = await pool(api, 7)
    draw_id = (await request(api, agency, tender))["id"]
    seed = bytes(range(32))
    async with transaction(api.runtime.sessionmaker) as session:
        row = await session.get(Draw, uuid.UUID(draw_id))
        assert row is not None
        row.rules = {**row.rules, "version": draw.LEGACY_VERSION}
        quotas = [draw.Quota(q["specialty"], q["seats"]) for q in row.quotas]
        row.commitment = draw.commitment_v1(seed, row.pool_digest, quotas, row.employer_limit)
        row.sealed_seed = selection.seal_seed(api.runtime.settings.secret_key, row.id, seed)
        row.witness, row.status, row.drawn_at = "监督人现场见证", "inviting", api.clock.now()
        await selection.apply_selection(
            session, row, api.runtime.settings.secret_key, api.runtime.store, api.clock.now()
        )
    supervisor = await api.organisation("supervisor")
    late = await api.post(
        f"{BASE}/draws/{draw_id}/witness", supervisor, json={"witness_commitment": "ab" * 32}
    )
    assert late.status_code == 409, late.text
    first = standing(await read(api, draw_id))[0]
    await answer(api, experts[first], False, "出差")
    for expert in standing(await read(api, draw_id)):
        await answer(api, experts[expert], True)
    view = await read(api, draw_id)
    assert (
        view["status"] == "confirmed" and view["seed"] == seed.hex() and view["witness"] == "监督人现场见证"
    )
    record = (await api.get(f"{BASE}/draws/{draw_id}/record", supervisor)).json()
    assert record["version"] == draw.LEGACY_VERSION and len(record["invitations"]) == 6
    assert draw.verify(draw.record_from_json(record)) == []
    check = (await api.get(f"{BASE}/draws/{draw_id}/verify", supervisor)).json()
    assert (check["ok"], check["invitations"]) == (True, 6)
