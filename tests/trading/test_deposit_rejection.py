"""W-19: a bid whose deposit the documents require and which lacks it at the bid deadline is rejected — a fact
the platform establishes from escrow's answer as of the deadline, shows in the opening record and the room,
and that no member can overturn; such a bid never is scored, ranked or awarded.

Every bidder here pays its deposit through the bank's signed notification (the helper's default) except the
one under test, `subject`, which bids the lowest price."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api, SealedBid, shanghai
from trading import awards

T = "/api/v1/tenders"
ROOM = "/api/v1/evaluation/rooms"
PRICE = 4_000_000_000
LOWEST = 3_500_000_000
DEPOSIT = 80_000_000  # the helper tender's lot deposit
VALID_THROUGH = "2026-06-21"  # deadline Mon 2026-03-23 + 90 days (the default bid validity period)
GUARANTEE = {
    "kind": "bank_guarantee",
    "issuer": "中国建设银行南京分行",
    "amount_fen": DEPOSIT,
    "valid_from": "2026-03-01",
    "valid_until": VALID_THROUGH,
}


# ---------------------------------------------------------------- set-up


async def others(api: Api, tender: dict[str, Any], n: int = 3) -> list[SealedBid]:
    """`n` bidders that pay their deposits and bid above the subject's price."""
    return [await api.bid(await api.organisation("bidder"), tender, PRICE + i) for i in range(n)]


async def lodge(api: Api, bidder: Actor, lot_id: str, number: str, **overrides: Any) -> dict[str, Any]:
    mine = await api.deposit_of(bidder, lot_id)
    r = await api.post(
        f"/api/v1/escrow/deposits/{mine['id']}/guarantees",
        bidder,
        json={**GUARANTEE, "number": number, **overrides},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def verify(api: Api, guarantee: dict[str, Any]) -> None:
    r = await api.post(
        f"/api/v1/escrow/guarantees/{guarantee['id']}/decision",
        await api.bootstrap_centre(),
        json={"approve": True, "note": "已通过开函银行系统核验"},
    )
    assert r.status_code == 200, r.text


async def rates(api: Api) -> None:
    centre = await api.bootstrap_centre()
    for kind, pct, since in (("deposit", "0.35", "2015-10-24"), ("lpr", "3.0", "2025-05-20")):
        r = await api.post(
            "/api/v1/escrow/rates",
            centre,
            json={"kind": kind, "effective_from": since, "annual_percent": pct, "source": "PBoC"},
        )
        assert r.status_code == 201, r.text


async def my_bid(api: Api, bid: SealedBid, tender: dict[str, Any]) -> dict[str, Any]:
    r = await api.get(f"{T}/{tender['id']}/bids/", bid.bidder)
    assert r.status_code == 200, r.text
    [mine] = [b for b in r.json() if b["id"] == bid.bid_id]
    return dict(mine)


async def record(api: Api, tender: dict[str, Any], actor: Actor) -> list[dict[str, Any]]:
    r = await api.get(f"{T}/{tender['id']}/opening/record", actor)
    assert r.status_code == 200, r.text
    return list(r.json())


def lines_of(events: list[dict[str, Any]], bid: SealedBid) -> list[dict[str, Any]]:
    return [e for e in events if e.get("bid") == bid.bid_id and e["kind"] in ("bid_opened", "bid_failed")]


# ---------------------------------------------------------------- the finding: such a bid could win


async def test_w19_a_bid_without_its_deposit_is_rejected_and_cannot_win_even_at_the_lowest_price(
    api: Api,
) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    paid = await others(api, tender)
    subject = await api.bid(await api.organisation("bidder"), tender, LOWEST, deposit=False)
    await api.at(DEADLINE)
    for bid in [*paid, subject]:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    assert (await api.get(f"{T}/{tender['id']}")).json()["status"] == "evaluation"

    done = await api.evaluate(agency, tender["id"])

    body = (await api.get(f"{ROOM}/{done['room_id']}/report", done["members"][1])).json()
    [lot] = body["report"]["lots"]
    rejected = next(b for b in lot["bids"] if b["bid_id"] == subject.bid_id)
    assert (rejected["qualified"], rejected["rank"], rejected["total_cp"]) == (False, None, None)
    [why] = rejected["rejections"]
    assert (why["criterion"], why["rule"], why["by"]) == ("W-19", "W-19", "platform")
    assert why["reasons"] == [
        f"no deposit at the deadline: cash 0 fen held for this lot, verified guarantees valid through "
        f"{VALID_THROUGH} 0 fen; {DEPOSIT} fen required"
    ]
    assert (why["evidence"]["cash_fen"], why["evidence"]["required_fen"]) == (0, DEPOSIT)
    assert why["evidence"]["deadline"] == DEADLINE.isoformat()
    assert [c["bid_id"] for c in lot["candidates"]] == [b.bid_id for b in paid]
    [notice] = (await api.get("/api/v1/notices", params={"kind": "candidates"})).json()["items"]
    codes = [c["credit_code"] for c in notice["body"]["lots"][0]["candidates"]]
    assert codes == [b.bidder.credit_code for b in paid] and subject.bidder.credit_code not in codes


# ---------------------------------------------------------------- what counts as "no deposit"


async def no_cash(api: Api, tender: dict[str, Any], bidder: Actor) -> SealedBid:
    return await api.bid(bidder, tender, LOWEST, deposit=False)


async def guarantee_expiring_before_the_validity_period_ends(
    api: Api, tender: dict[str, Any], bidder: Actor
) -> SealedBid:
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    await verify(api, await lodge(api, bidder, tender["lots"][0]["id"], "BG-EARLY", valid_until="2026-06-20"))
    return await api.bid(bidder, tender, LOWEST, obtain=False, deposit=False)


async def guarantee_unverified_at_the_deadline(api: Api, tender: dict[str, Any], bidder: Actor) -> SealedBid:
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    await lodge(api, bidder, tender["lots"][0]["id"], "BG-UNVERIFIED")
    return await api.bid(bidder, tender, LOWEST, obtain=False, deposit=False)


async def guarantee_verified_after_the_deadline(api: Api, tender: dict[str, Any], bidder: Actor) -> SealedBid:
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    guarantee = await lodge(api, bidder, tender["lots"][0]["id"], "BG-LATE")
    bid = await api.bid(bidder, tender, LOWEST, obtain=False, deposit=False)
    api.clock.set(DEADLINE + timedelta(minutes=3))  # the chronograph has not run yet
    await verify(api, guarantee)
    return bid


async def cash_paid_for_another_lot(api: Api, tender: dict[str, Any], bidder: Actor) -> SealedBid:
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    await api.pay_deposit(bidder, tender["lots"][1]["id"])
    return await api.bid(bidder, tender, LOWEST, obtain=False, deposit=False)


async def cash_arriving_after_the_deadline(api: Api, tender: dict[str, Any], bidder: Actor) -> SealedBid:
    bid = await api.bid(bidder, tender, LOWEST, deposit=False)
    api.clock.set(DEADLINE + timedelta(minutes=3))  # paid after the deadline, before the chronograph ran
    assert (await api.pay_deposit(bidder, tender["lots"][0]["id"]))["matched"] == 1
    return bid


async def cash_on_its_way_back(api: Api, tender: dict[str, Any], bidder: Actor) -> SealedBid:
    first = await api.bid(bidder, tender, LOWEST)  # pays, bids
    api.clock.set(shanghai(2026, 3, 12, 15))
    r = await api.post(f"{T}/{tender['id']}/bids/{first.bid_id}/withdraw", bidder)
    assert r.status_code == 200, r.text
    await rates(api)
    batch = await api.post("/api/v1/escrow/batches", await api.bootstrap_centre())
    assert batch.status_code == 201 and len(batch.json()["instructions"]) == 1, batch.text
    # the refund is instructed to the bank (pending); the bidder bids again without paying again
    return await api.bid(bidder, tender, LOWEST, obtain=False, deposit=False)


Scenario = Callable[[Api, dict[str, Any], Actor], Awaitable[SealedBid]]
SCENARIOS: dict[str, tuple[Scenario, dict[str, Any]]] = {
    "no cash, no guarantee": (no_cash, {"cash_fen": 0, "guarantee_fen": 0, "guarantees": []}),
    "a guarantee expiring before the bid validity period ends": (
        guarantee_expiring_before_the_validity_period_ends,
        {
            "guarantee_fen": 0,
            "why_not": [f"expires 2026-06-20, before the bid validity period ends {VALID_THROUGH}"],
        },
    ),
    "a guarantee still unverified at the deadline": (
        guarantee_unverified_at_the_deadline,
        {"guarantee_fen": 0, "why_not": ["not verified with its issuer"]},
    ),
    "a guarantee verified only after the deadline": (
        guarantee_verified_after_the_deadline,
        {"guarantee_fen": 0, "why_not": ["not verified with its issuer before the deadline"]},
    ),
    "cash paid for another lot of the tender": (cash_paid_for_another_lot, {"cash_fen": 0, "payments": []}),
    "cash that arrived after the deadline": (
        cash_arriving_after_the_deadline,
        {"cash_fen": 0, "late_fen": DEPOSIT, "counted": [False]},
    ),
    "cash already on its way back (W-05 refund instructed)": (
        cash_on_its_way_back,
        {"cash_fen": 0, "returning_fen": DEPOSIT, "counted": [True]},
    ),
}


@pytest.mark.parametrize("case", list(SCENARIOS))
async def test_w19_each_of_these_is_no_deposit_at_the_deadline(api: Api, case: str) -> None:
    scenario, expected = SCENARIOS[case]
    agency = await api.organisation("agency")
    lots = [
        {"title": "第一标段", "estimated_price_fen": 5_000_000_000, "deposit_fen": DEPOSIT},
        {"title": "第二标段", "estimated_price_fen": 5_000_000_000, "deposit_fen": DEPOSIT},
    ]
    tender = await api.published(agency, lots=lots)
    paid = await others(api, tender)
    subject = await scenario(api, tender, await api.organisation("bidder"))
    api.clock.set(max(api.clock.now(), DEADLINE))  # the chronograph runs at the deadline or a little after
    await api.tick()

    mine = await my_bid(api, subject, tender)
    assert mine["status"] == "submitted"
    rejection = mine["rejection"]
    assert (rejection["rule"], rejection["reason"]) == ("W-19", "no deposit")
    evidence = rejection["evidence"]
    assert evidence["eligible"] is False and evidence["required_fen"] == DEPOSIT
    assert evidence["deadline"] == DEADLINE.isoformat() and evidence["cover_through"] == VALID_THROUGH
    assert rejection["detail"] == evidence["detail"] and evidence["detail"].startswith(
        "no deposit at the deadline"
    )
    for key in ("cash_fen", "guarantee_fen", "late_fen", "returning_fen", "guarantees", "payments"):
        if key in expected:
            assert evidence[key] == expected[key], (key, evidence)
    if "why_not" in expected:
        assert [g["why_not"] for g in evidence["guarantees"]] == expected["why_not"]
    if "counted" in expected:
        assert [p["counted"] for p in evidence["payments"]] == expected["counted"]
    for bid in paid:
        assert (await my_bid(api, bid, tender))["rejection"] is None


@pytest.mark.parametrize(
    "how", ["cash held", "a verified guarantee in force through the validity period", "the deposit waived"]
)
async def test_a_deposit_in_place_at_the_deadline_rejects_nothing(api: Api, how: str) -> None:
    agency = await api.organisation("agency")
    deposit = 0 if how == "the deposit waived" else DEPOSIT
    lots = [{"title": "第一标段", "estimated_price_fen": 5_000_000_000, "deposit_fen": deposit}]
    tender = await api.published(agency, lots=lots)
    paid = await others(api, tender)
    bidder = await api.organisation("bidder")
    if how.startswith("a verified guarantee"):
        await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
        await verify(api, await lodge(api, bidder, tender["lots"][0]["id"], "BG-GOOD"))
    subject = await api.bid(bidder, tender, LOWEST, deposit=how == "cash held")
    await api.at(DEADLINE)
    for bid in [*paid, subject]:
        assert (await my_bid(api, bid, tender))["rejection"] is None
    life = (
        await api.get(
            f"/api/v1/escrow/deposits/{(await api.deposit_of(bidder, subject.lot_id))['id']}", bidder
        )
    ).json()
    [answer] = life["eligibility"]
    assert answer["eligible"] is True
    assert (
        answer["detail"]
        == {
            "cash held": f"deposit in place: cash {DEPOSIT} fen held for this lot, verified guarantees valid "
            f"through {VALID_THROUGH} 0 fen; {DEPOSIT} fen required",
            "a verified guarantee in force through the validity period": "deposit in place: cash 0 fen held for "
            f"this lot, verified guarantees valid through {VALID_THROUGH} {DEPOSIT} fen; {DEPOSIT} fen required",
            "the deposit waived": "no deposit required (M-05)",
        }[how]
    )


async def test_a_lot_whose_deposit_is_waived_evaluates_every_bid_without_any_deposit(api: Api) -> None:
    agency = await api.organisation("agency")
    lots = [{"title": "第一标段", "estimated_price_fen": 5_000_000_000, "deposit_fen": 0}]
    tender = await api.published(agency, lots=lots)
    bids = [
        await api.bid(await api.organisation("bidder"), tender, PRICE - i, deposit=False) for i in range(3)
    ]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    done = await api.evaluate(agency, tender["id"])
    [lot] = (await api.get(f"{ROOM}/{done['room_id']}/report", done["members"][1])).json()["report"]["lots"]
    assert all(b["qualified"] and b["rejections"] == [] for b in lot["bids"])
    assert [c["bid_id"] for c in lot["candidates"]] == [b.bid_id for b in reversed(bids)]


# ---------------------------------------------------------------- W-09, the opening record, the count


async def test_w19_bids_count_toward_the_three_to_open_and_are_read_out_rejected(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    paid = await others(api, tender, 2)
    subject = await api.bid(await api.organisation("bidder"), tender, LOWEST, deposit=False)
    # 条例 44 counts the bids submitted: three stand, so the hall opens (W-08), the W-19 bid among them
    assert await api.at(DEADLINE) == [(tender["code"], "opening")]
    for bid in [*paid, subject]:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    [line] = lines_of(await record(api, tender, agency), subject)
    assert line["kind"] == "bid_opened" and line["declared_price_fen"] == LOWEST
    assert line["rejected"]["rule"] == "W-19" and line["rejected"]["reason"] == "no deposit"
    for bid in paid:
        assert "rejected" not in lines_of(await record(api, tender, agency), bid)[0]

    # two valid bids remain: today's rule for too few valid bids fails the lot at the close of the opening
    assert await api.at(AFTER_WINDOW) == [(tender["code"], "unsuccessful")]
    got = (await api.get(f"{T}/{tender['id']}")).json()
    assert got["lots"][0]["outcome_reason"] == "W-09: 2 valid bid(s) opened; at least 3 are needed"
    [notice] = (await api.get("/api/v1/notices", params={"kind": "opening_record"})).json()["items"]
    by_bid = {b["bid"]: b for b in notice["body"]["bids"]}
    assert set(by_bid) == {b.bid_id for b in [*paid, subject]}
    assert by_bid[subject.bid_id]["rejected"]["rule"] == "W-19"
    assert all("rejected" not in by_bid[b.bid_id] for b in paid)


async def test_a_w19_bid_never_opened_by_its_bidder_is_read_out_revoked_and_rejected(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency, opening_policy="revoke")
    paid = await others(api, tender)
    subject = await api.bid(await api.organisation("bidder"), tender, LOWEST, deposit=False)
    await api.at(DEADLINE)
    for bid in paid:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    assert await api.at(AFTER_WINDOW) == [(tender["code"], "evaluation")]
    [line] = lines_of(await record(api, tender, agency), subject)
    assert (line["kind"], line["result"], line["rejected"]["rule"]) == ("bid_failed", "not_opened", "W-19")


# ---------------------------------------------------------------- the room: no member can pass it


async def test_no_member_can_pass_score_or_clarify_a_bid_the_platform_rejected(api: Api) -> None:
    from tests.test_bad_input import snapshot

    agency = await api.organisation("agency")
    tender = await api.published(agency)
    paid = await others(api, tender)
    subject = await api.bid(await api.organisation("bidder"), tender, LOWEST, deposit=False)
    await api.at(DEADLINE)
    for bid in [*paid, subject]:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    committee = await api.convene(agency, tender["id"])
    url, members = f"{ROOM}/{committee['room_id']}", committee["members"]
    view = (await api.get(url, members[2])).json()
    lot_id = tender["lots"][0]["id"]
    shown = {b["bid_id"]: b for b in view["lots"][0]["bids"]}
    assert shown[subject.bid_id]["rejected"]["rule"] == "W-19"
    assert all(shown[b.bid_id]["rejected"] is None for b in paid)
    [fail] = view["qualification"][lot_id][subject.bid_id]
    assert (fail["criterion"], fail["rule"], fail["by"], fail["fail_votes"]) == (
        "W-19",
        "W-19",
        "platform",
        5,
    )
    assert fail["evidence"]["required_fen"] == DEPOSIT and fail["evidence"]["cash_fen"] == 0
    codes = [q["code"] for q in view["scheme"]["qualification"]]

    def votes(bids: list[SealedBid]) -> list[dict[str, Any]]:
        return [{"bid_id": b.bid_id, "criterion": q, "passed": True} for b in bids for q in codes]

    async def refused_and_audited(before: dict[str, int]) -> dict[str, int]:
        """Nothing changed but the refusal's own line in the audit trail (E-04)."""
        after = await snapshot(api)
        assert after == {**before, "audit_events": before["audit_events"] + 1}
        return after

    before = await snapshot(api)
    r = await api.post(
        f"{url}/reviews", members[2], json={"lot_id": lot_id, "votes": votes([*paid, subject])}
    )
    assert r.status_code == 422 and r.json()["rule"] == "W-19", r.text
    assert [e["field"] for e in r.json()["errors"]] == [f"votes[{3 * len(codes)}].bid_id"]
    before = await refused_and_audited(before)
    r = await api.post(
        f"{url}/clarifications",
        members[1],
        json={
            "bid_id": subject.bid_id,
            "question": "请补充投标保证金缴纳凭证",
            "respond_by": (api.clock.now() + timedelta(hours=1)).isoformat(),
        },
    )
    assert r.status_code == 422 and r.json()["rule"] == "W-19", r.text
    await refused_and_audited(before)
    for seat, member in members.items():
        r = await api.post(f"{url}/reviews", member, json={"lot_id": lot_id, "votes": votes(paid)})
        assert r.status_code == 201, (seat, r.text)
    sheet = {subject.bid_id: {"T1": 100}}
    r = await api.post(f"{url}/sheets", members[1], json={"lot_id": lot_id, "scores": sheet})
    assert r.status_code == 422 and r.json()["rule"] == "W-19", r.text
    assert [e["field"] for e in r.json()["errors"]] == [f"scores[{subject.bid_id}]"]


async def test_the_trade_refuses_a_report_that_names_a_rejected_bid_a_candidate(api: Api) -> None:
    # Defence in depth: even a report that ranked it (the room never does) cannot make it a candidate.
    import uuid

    from sqlalchemy import func, select

    from storage.problems import RuleViolation
    from trading.models import Document, Report

    agency = await api.organisation("agency")
    tender = await api.published(agency)
    paid = await others(api, tender)
    subject = await api.bid(await api.organisation("bidder"), tender, LOWEST, deposit=False)
    await api.at(DEADLINE)
    for bid in [*paid, subject]:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    committee = [{"name": f"专家{i}", "kind": "expert", "seat": i} for i in range(1, 6)]
    ranking = [uuid.UUID(subject.bid_id), uuid.UUID(paid[0].bid_id)]
    stored = awards.StoredFile("report.pdf", "records/x/report.pdf", "0" * 64, 1, uuid.uuid4())
    async with api.runtime.sessionmaker() as session:
        with pytest.raises(RuleViolation) as refused:
            await awards.record_report(
                session,
                None,
                uuid.UUID(tender["id"]),
                committee,
                [(uuid.UUID(subject.lot_id), ranking)],
                stored,
                "0" * 64,
                api.clock.now(),
            )
        await session.rollback()
        assert await session.scalar(select(func.count()).select_from(Report)) == 0
        assert (
            await session.scalar(
                select(func.count()).select_from(Document).where(Document.kind == "evaluation_report")
            )
            == 0
        )
    assert refused.value.to_dict()["rule"] == "W-19"
    assert refused.value.to_dict()["errors"] == [
        {"field": "candidates", "message": f"bid {subject.bid_id} is rejected (W-19)"}
    ]
    assert (await api.get(f"{T}/{tender['id']}")).json()["status"] == "evaluation"


# ---------------------------------------------------------------- who sees the rejection, and when


async def test_the_rejection_is_shown_to_its_bidder_the_agency_and_watchers_but_not_to_other_bidders(
    api: Api,
) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    paid = await others(api, tender)
    subject = await api.bid(await api.organisation("bidder"), tender, LOWEST, deposit=False)
    # before the deadline there is nothing to show, and the agency sees no bid at all (W-20)
    assert (await my_bid(api, subject, tender))["rejection"] is None
    assert (await api.get(f"{T}/{tender['id']}/bids/", agency)).json() == []
    await api.at(DEADLINE)

    # the bidder concerned: its own bid's state, and a notification
    assert (await my_bid(api, subject, tender))["rejection"]["rule"] == "W-19"
    notes = (await api.get("/api/v1/notifications", subject.bidder)).json()
    assert [n["kind"] for n in notes if n["kind"] == "bid.rejected"] == ["bid.rejected"]
    # the agency, supervisors and auditors after the opening
    for role in ("agency", "supervisor", "auditor"):
        actor = agency if role == "agency" else await api.organisation(role)
        seen = {b["id"]: b["rejection"] for b in (await api.get(f"{T}/{tender['id']}/bids/", actor)).json()}
        assert seen[subject.bid_id]["rule"] == "W-19", role
        assert [seen[b.bid_id] for b in paid] == [None, None, None], role
    # another bidder: only its own bid, and nothing in the hall before the subject's line is read out
    other = paid[0].bidder
    assert [b["id"] for b in (await api.get(f"{T}/{tender['id']}/bids/", other)).json()] == [paid[0].bid_id]
    hall = json.dumps(await record(api, tender, other), ensure_ascii=False)
    assert "W-19" not in hall and subject.bid_id not in hall
    # an expert on no committee and the public see nothing
    expert = await api.expert()
    assert (await api.get(f"{T}/{tender['id']}/bids/", expert)).json() == []
    assert (await api.get(f"{T}/{tender['id']}/opening/record", expert)).status_code == 404
    assert (await api.get(f"{T}/{tender['id']}/opening/record")).status_code == 401
    assert (await api.get("/api/v1/notices", params={"kind": "opening_record"})).json()["items"] == []

    # once the line is read out in the hall, the bidders in it hear it (唱标), as the opening record says
    assert (await api.reveal(tender["id"], subject)).status_code == 202
    [line] = lines_of(await record(api, tender, other), subject)
    assert line["rejected"] == {
        "rule": "W-19",
        "reason": "no deposit",
        "detail": f"no deposit at the deadline: cash 0 fen held for this lot, verified guarantees valid "
        f"through {VALID_THROUGH} 0 fen; {DEPOSIT} fen required",
        "at": DEADLINE.isoformat(),
    }
    assert "evidence" not in line["rejected"]


async def test_the_deposit_answer_and_its_evidence_are_recorded_with_the_deadline(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    await others(api, tender)
    subject = await api.bid(await api.organisation("bidder"), tender, LOWEST, deposit=False)
    await api.at(
        DEADLINE + timedelta(minutes=7)
    )  # the chronograph ran late: the answer is as of the deadline
    mine = await api.deposit_of(subject.bidder, subject.lot_id)
    auditor = await api.organisation("auditor")
    life = (await api.get(f"/api/v1/escrow/deposits/{mine['id']}", auditor)).json()
    [answer] = life["eligibility"]
    assert (answer["moment"], answer["eligible"], answer["as_of"]) == (
        "bid_deadline",
        False,
        DEADLINE.isoformat(),
    )
    assert answer["checked_at"] == (DEADLINE + timedelta(minutes=7)).isoformat()
    assert answer["cover_through"] == VALID_THROUGH and answer["evidence"]["cash_fen"] == 0
    trail = (
        await api.get(
            "/api/v1/audit",
            await api.bootstrap_centre(),
            params={"object_type": "bid", "object_id": subject.bid_id, "limit": 50},
        )
    ).json()["items"]
    [event] = [e for e in trail if e["action"] == "bid.reject"]
    assert event["detail"]["rule"] == "W-19" and event["detail"]["reason"] == "no deposit"


# ---------------------------------------------------------------- the command line


async def test_ggzy_bid_list_shows_the_bidder_its_rejection_and_the_agency_every_bid(api: Api) -> None:
    import asyncio
    import socket

    from click.testing import CliRunner

    from app import create_app
    from bidding.client import GgzyClient
    from demo.common import serving
    from ggzy import cli
    from tests.helpers import PASSWORD

    agency = await api.organisation("agency")
    tender = await api.published(agency)
    paid = await others(api, tender)
    subject = await api.bid(await api.organisation("bidder"), tender, LOWEST, deposit=False)
    await api.at(DEADLINE)
    async with GgzyClient("http://testserver", subject.bidder.token, transport=api.client._transport) as c:
        [mine] = await c.bids(tender["id"])
    assert (mine["id"], mine["rejection"]["rule"]) == (subject.bid_id, "W-19")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with serving(create_app(api.runtime, manage_runtime=False), sock):

            def run(username: str, *extra: str) -> str:
                args = ["bid", "list", "--tender", tender["id"], "--url", url, "--username", username, *extra]
                result = CliRunner().invoke(cli, args, env={"GGZY_PASSWORD": PASSWORD})
                assert result.exit_code == 0, result.output
                return result.output

            own = await asyncio.to_thread(run, subject.bidder.username)
            other = await asyncio.to_thread(run, paid[0].bidder.username)
            everyone = await asyncio.to_thread(run, agency.username, "--json")
    [line] = own.splitlines()
    assert line.startswith(subject.bid_id) and "\tsubmitted\t" in line
    assert line.endswith(
        f"rejected: W-19, no deposit at the deadline: cash 0 fen held for this lot, verified guarantees "
        f"valid through {VALID_THROUGH} 0 fen; {DEPOSIT} fen required"
    )
    assert other.count("\n") == 1 and "W-19" not in other and subject.bid_id not in other
    shown = {b["id"]: b["rejection"] for b in json.loads(everyone)}
    assert shown[subject.bid_id]["rule"] == "W-19" and shown[subject.bid_id]["evidence"]["cash_fen"] == 0
    assert [shown[b.bid_id] for b in paid] == [None, None, None]
