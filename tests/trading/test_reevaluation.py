"""Re-evaluation (重新评审, 87号令 64; G-12): an upheld challenge to the result, or an upheld complaint, sends
the procurement back to its committee before any contract is signed. The awards not yet contracted are
annulled, the same experts score again in a room of the next evaluation round, their second report is
signed, and the purchaser decides on it; the first round's report stays readable. Refused after a contract,
by the wrong party, and in a state no report precedes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from evaluation.models import Expert, ExpertUnavailability, Member
from rules.calendar import SHANGHAI
from storage.db import transaction
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api, SealedBid, _subjective_leaves, shanghai
from tests.trading.test_procurement_open import BUDGET_FEN, YUAN, procurement
from trading.models import Report

T = "/api/v1/tenders"
ROOM = "/api/v1/evaluation/rooms"


class Trade:
    """An awarded procurement with the committee that evaluated it."""

    def __init__(
        self, agency: Actor, tender: dict[str, Any], bids: list[SealedBid], committee: dict[str, Any]
    ) -> None:
        self.agency, self.tender, self.bids, self.committee = agency, tender, bids, committee
        self.id = tender["id"]
        self.winner = min(bids, key=lambda b: b.price_fen)  # equal scores: the lowest price ranks first
        self.loser = max(bids, key=lambda b: b.price_fen)
        self.award: dict[str, Any] = {}


async def _awarded(api: Api) -> Trade:
    """A procurement of three bids, evaluated by seven experts with equal scores and awarded to the lowest
    price on Thu 2026-03-26."""
    agency = await api.organisation("agency")
    tender = await api.published(agency, **procurement())
    bids = [await api.bid(await api.organisation("bidder"), tender, BUDGET_FEN - i * YUAN) for i in range(3)]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    committee = await api.evaluate(agency, tender["id"], experts=7)
    trade = Trade(agency, tender, bids, committee)
    await api.at(shanghai(2026, 3, 26, 9))
    body = {"lots": [{"lot_id": trade.winner.lot_id, "bid_id": trade.winner.bid_id}]}
    r = await api.post(f"{T}/{trade.id}/award", agency, json=body)
    assert r.status_code == 201, r.text
    trade.award = r.json()[0]
    return trade


async def _challenge(api: Api, trade: Trade) -> dict[str, Any]:
    r = await api.post(
        f"{T}/{trade.id}/objections",
        trade.loser.bidder,
        json={"subject": "result", "text": "评审委员会对技术部分评分错误"},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _answer(api: Api, trade: Trade, challenge: dict[str, Any], actor: Actor, **extra: Any) -> Any:
    return await api.post(
        f"{T}/{trade.id}/objections/{challenge['id']}/answer",
        actor,
        json={"answer": "经复核，质疑成立，评分存在错误，由原评标委员会重新评审", **extra},
    )


async def _complaint(api: Api, trade: Trade) -> dict[str, Any]:
    """The loser's challenge answered without an order, then its complaint to the authority."""
    challenge = await _challenge(api, trade)
    plain = await api.post(
        f"{T}/{trade.id}/objections/{challenge['id']}/answer", trade.agency, json={"answer": "维持"}
    )
    assert plain.status_code == 200, plain.text
    r = await api.post(
        f"{T}/{trade.id}/complaints",
        trade.loser.bidder,
        json={"subject": "award", "known_on": "2026-03-26", "text": "评审委员会未按评审因素评分"},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _decide(api: Api, complaint: dict[str, Any], actor: Actor, **extra: Any) -> Any:
    return await api.post(
        f"/api/v1/complaints/{complaint['id']}/decision",
        actor,
        json={"decision": "upheld", "text": "评分错误，责令重新评审", "outcome": "reevaluate", **extra},
    )


async def _round_room(api: Api, trade: Trade, round_: int) -> dict[str, Any]:
    """The room of the given evaluation round, as its first seat lists it."""
    listed = (await api.get(f"{ROOM}/", trade.committee["members"][1])).json()
    [room] = [r for r in listed if r["tender_id"] == trade.id and r["round"] == round_]
    return dict(room)


def _favouring(room_view: dict[str, Any], favoured: str) -> Any:
    """Scores that put `favoured` first: full marks for it, half for the others."""
    maxima = dict(_subjective_leaves(room_view["scheme"]))
    return lambda _seat, bid_id, code: maxima[code] if bid_id == favoured else maxima[code] // 2


async def _rescore(api: Api, trade: Trade, favoured: SealedBid) -> dict[str, Any]:
    """The same committee scores again in round 2, putting `favoured` first, and signs the report."""
    room = await _round_room(api, trade, 2)
    members = trade.committee["members"]
    view = (await api.get(f"{ROOM}/{room['id']}", members[1])).json()
    assert (view["round"], view["status"], view["phase"]) == (2, "open", "qualification")
    return await api.deliberate(
        {"room_id": room["id"], "members": members}, scores=_favouring(view, favoured.bid_id)
    )


async def _reports(api: Api, trade: Trade) -> list[tuple[int, list[Any]]]:
    async with transaction(api.runtime.sessionmaker) as session:
        rows = await session.scalars(
            select(Report).where(Report.tender_id == uuid.UUID(trade.id)).order_by(Report.round)
        )
        return [(r.round, r.candidates) for r in rows]


async def test_an_upheld_result_challenge_sends_the_procurement_back_to_the_same_committee(api: Api) -> None:
    trade = await _awarded(api)
    first_room, first_hash = trade.committee["room_id"], trade.committee["report_hash"]
    challenge = await _challenge(api, trade)
    r = await _answer(api, trade, challenge, trade.agency, outcome="reevaluate")
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "reevaluate"
    read = (await api.get(f"{T}/{trade.id}", trade.agency)).json()
    assert read["status"] == "evaluation"
    assert [lot["status"] for lot in read["lots"]] == ["open"]
    awards = (await api.get(f"{T}/{trade.id}/awards", trade.agency)).json()
    assert [a["status"] for a in awards] == ["annulled"]
    refused = await api.contract(trade.agency, trade.id, trade.award["id"], trade.award["price_fen"])
    assert refused.status_code == 409

    done = await _rescore(api, trade, trade.loser)
    assert done["report_hash"] != first_hash
    read = (await api.get(f"{T}/{trade.id}", trade.agency)).json()
    assert read["status"] == "decision"
    # the decision goes on from the second report: the new first takes the lot
    [(r1, c1), (r2, c2)] = await _reports(api, trade)
    assert (r1, r2) == (1, 2)
    assert c1[0]["ranking"][0] == trade.winner.bid_id and c2[0]["ranking"][0] == trade.loser.bid_id
    body = {"lots": [{"lot_id": trade.loser.lot_id, "bid_id": trade.loser.bid_id}]}
    awarded = await api.post(f"{T}/{trade.id}/award", trade.agency, json=body)
    assert awarded.status_code == 201, awarded.text
    assert awarded.json()[0]["bid_id"] == trade.loser.bid_id
    # the first round's report is still there, unchanged, beside the second
    first = await api.get(f"{ROOM}/{first_room}/report", trade.committee["members"][1])
    assert first.status_code == 200, first.text
    assert first.json()["report_hash"] == first_hash
    [lot] = first.json()["report"]["lots"]
    assert lot["candidates"][0]["bid_id"] == trade.winner.bid_id
    second = await api.get(f"{ROOM}/{done['room_id']}/report", trade.committee["members"][1])
    assert (first.json()["report"]["round"], second.json()["report"]["round"]) == (1, 2)
    assert second.json()["report_hash"] == done["report_hash"]


async def test_only_the_committee_scores_the_new_round_and_suppliers_cannot_look_in(api: Api) -> None:
    trade = await _awarded(api)
    challenge = await _challenge(api, trade)
    assert (await _answer(api, trade, challenge, trade.agency, outcome="reevaluate")).status_code == 200
    room = await _round_room(api, trade, 2)
    members = trade.committee["members"]
    # the same seats, the same people
    view = (await api.get(f"{ROOM}/{room['id']}", members[1])).json()
    assert view["my_seat"] == 1 and len(view["members"]) == 7
    stranger = await api.expert()
    lot_id = trade.tender["lots"][0]["id"]
    votes = [{"bid_id": b.bid_id, "criterion": "Q1", "passed": True} for b in trade.bids]
    r = await api.post(f"{ROOM}/{room['id']}/reviews", stranger, json={"lot_id": lot_id, "votes": votes})
    assert r.status_code in (403, 404), r.text
    assert (await api.get(f"{ROOM}/{room['id']}", stranger)).status_code in (403, 404)
    for bid in trade.bids:
        assert (await api.get(f"{ROOM}/{room['id']}", bid.bidder)).status_code in (403, 404)
        assert (await api.get(f"{ROOM}/{room['id']}/report", bid.bidder)).status_code in (403, 404)


async def test_an_upheld_complaint_orders_a_re_evaluation_by_the_same_committee(api: Api) -> None:
    trade = await _awarded(api)
    complaint = await _complaint(api, trade)
    supervisor = await api.organisation("supervisor")
    r = await _decide(api, complaint, supervisor)
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "reevaluate"
    assert (await api.get(f"{T}/{trade.id}", trade.agency)).json()["status"] == "evaluation"
    await _rescore(api, trade, trade.loser)
    assert (await api.get(f"{T}/{trade.id}", trade.agency)).json()["status"] == "decision"
    body = {"lots": [{"lot_id": trade.loser.lot_id, "bid_id": trade.loser.bid_id}]}
    assert (await api.post(f"{T}/{trade.id}/award", trade.agency, json=body)).status_code == 201
    assert [rnd for rnd, _c in await _reports(api, trade)] == [1, 2]


async def test_an_upheld_complaint_may_order_a_fresh_committee_drawn_for_the_new_round(api: Api) -> None:
    trade = await _awarded(api)
    complaint = await _complaint(api, trade)
    r = await _decide(api, complaint, await api.organisation("supervisor"), committee="fresh")
    assert r.status_code == 200, r.text
    assert (await api.get(f"{T}/{trade.id}", trade.agency)).json()["status"] == "evaluation"
    listed = (await api.get(f"{ROOM}/", trade.committee["members"][1])).json()
    assert [room["round"] for room in listed if room["tender_id"] == trade.id] == [1]
    # every expert of the first pool is away this time; a new committee is drawn from new experts
    today = api.clock.now().astimezone(SHANGHAI).date()
    async with transaction(api.runtime.sessionmaker) as session:
        for expert_id in await session.scalars(select(Expert.id)):
            session.add(
                ExpertUnavailability(
                    expert_id=expert_id,
                    start_on=today,
                    end_on=today + timedelta(days=1),
                    declared_at=api.clock.now(),
                )
            )
    fresh = await api.evaluate(trade.agency, trade.id, experts=7)
    original = {m.username for m in trade.committee["members"].values()}
    assert not {m.username for m in fresh["members"].values()} & original
    view = (await api.get(f"{ROOM}/{fresh['room_id']}", fresh["members"][1])).json()
    assert view["round"] == 2
    assert (await api.get(f"{T}/{trade.id}", trade.agency)).json()["status"] == "decision"
    assert [rnd for rnd, _c in await _reports(api, trade)] == [1, 2]


async def test_no_re_evaluation_once_the_contract_is_signed(api: Api) -> None:
    trade = await _awarded(api)
    complaint = await _complaint(api, trade)
    signed = await api.contract(trade.agency, trade.id, trade.award["id"], trade.award["price_fen"])
    assert signed.status_code == 201, signed.text
    r = await _decide(api, complaint, await api.organisation("supervisor"))
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "G-12"
    assert "contract" in r.json()["detail"]
    assert (await api.get(f"{T}/{trade.id}", trade.agency)).json()["status"] == "contracted"


async def test_only_the_purchaser_answering_a_result_challenge_orders_a_re_evaluation(api: Api) -> None:
    trade = await _awarded(api)
    challenge = await _challenge(api, trade)
    other_agency = await api.organisation("agency")
    for who in (trade.loser.bidder, other_agency):
        r = await _answer(api, trade, challenge, who, outcome="reevaluate")
        assert r.status_code in (403, 404), r.text
    assert (await api.get(f"{T}/{trade.id}", trade.agency)).json()["status"] == "awarded"


async def test_only_the_supervising_authority_decides_a_complaint_with_a_re_evaluation(api: Api) -> None:
    trade = await _awarded(api)
    complaint = await _complaint(api, trade)
    for who in (trade.loser.bidder, trade.agency):
        assert (await _decide(api, complaint, who)).status_code == 403
    assert (await api.get(f"{T}/{trade.id}", trade.agency)).json()["status"] == "awarded"


async def test_a_challenge_to_the_documents_or_a_dismissal_orders_no_re_evaluation(api: Api) -> None:
    trade = await _awarded(api)
    opening = await api.post(
        f"{T}/{trade.id}/objections", trade.loser.bidder, json={"subject": "opening", "text": "唱标有误"}
    )
    assert opening.status_code == 201, opening.text
    r = await _answer(api, trade, opening.json(), trade.agency, outcome="reevaluate")
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "outcome"
    complaint = await _complaint(api, trade)
    supervisor = await api.organisation("supervisor")
    dismissed = await _decide(api, complaint, supervisor, decision="dismissed")
    assert dismissed.status_code == 422 and dismissed.json()["errors"][0]["field"] == "outcome"
    assert (await api.get(f"{T}/{trade.id}", trade.agency)).json()["status"] == "awarded"


async def test_a_trade_under_re_evaluation_cannot_be_sent_back_again(api: Api) -> None:
    trade = await _awarded(api)
    complaint = await _complaint(api, trade)
    supervisor = await api.organisation("supervisor")
    challenge = await _challenge(api, trade)
    assert (await _answer(api, trade, challenge, trade.agency, outcome="reevaluate")).status_code == 200
    # the trade is in evaluation now: nothing to re-evaluate until the next report
    r = await _decide(api, complaint, supervisor)
    assert r.status_code == 409, r.text
    assert r.json()["rule"] == "G-12"
    assert r.json()["status_now"] == "evaluation"


async def test_a_works_complaint_upheld_with_a_re_evaluation_publishes_the_new_candidates(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bids = [await api.bid(await api.organisation("bidder"), tender, 4_000_000_000 - i) for i in range(3)]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    committee = await api.evaluate(agency, tender["id"])
    trade = Trade(agency, tender, bids, committee)
    api.clock.set(api.clock.now() + timedelta(days=5))  # after the candidates' publicity (W-12)
    body = {"lots": [{"lot_id": trade.winner.lot_id, "bid_id": trade.winner.bid_id}]}
    assert (await api.post(f"{T}/{trade.id}/award", agency, json=body)).status_code == 201
    today = api.clock.now().astimezone(SHANGHAI).date()
    filed = await api.post(
        f"{T}/{trade.id}/complaints",
        trade.loser.bidder,
        json={"subject": "evaluation", "known_on": today.isoformat(), "text": "评标委员会评分错误"},
    )
    assert filed.status_code == 201, filed.text
    r = await _decide(api, filed.json(), await api.organisation("supervisor"))
    assert r.status_code == 200, r.text
    assert (await api.get(f"{T}/{trade.id}", agency)).json()["status"] == "evaluation"
    await _rescore(api, trade, trade.loser)
    read = (await api.get(f"{T}/{trade.id}", agency)).json()
    assert read["status"] == "publicity"
    notices = (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    candidates = [n for n in notices if n["kind"] == "candidates"]
    assert len(candidates) == 2
    firsts = {n["body"]["lots"][0]["candidates"][0]["credit_code"] for n in candidates}
    assert firsts == {trade.winner.bidder.credit_code, trade.loser.bidder.credit_code}
    assert [rnd for rnd, _c in await _reports(api, trade)] == [1, 2]


async def _two_lots_one_contracted(api: Api) -> tuple[Trade, dict[str, Any], dict[str, Any]]:
    """A procurement of two lots, three bids on each, awarded lot by lot to the lowest; lot 1's contract is
    signed, lot 2's is not. Answers the trade (its bids those of lot 2) and the two awards."""
    agency = await api.organisation("agency")
    lot = {"estimated_price_fen": BUDGET_FEN // 2, "deposit_fen": BUDGET_FEN // 100}
    tender = await api.published(
        agency, **procurement(lots=[{"title": "第一包 CT", **lot}, {"title": "第二包 MRI", **lot}])
    )
    bidders = [await api.organisation("bidder") for _ in range(3)]
    bids = {
        (n, i): await api.bid(bidder, tender, BUDGET_FEN // 2 - n * YUAN, lot=i)
        for n, bidder in enumerate(bidders)
        for i in (0, 1)
    }
    await api.at(DEADLINE)
    for bid in bids.values():
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    committee = await api.evaluate(agency, tender["id"], experts=7)
    trade = Trade(agency, tender, [bids[n, 1] for n in range(3)], committee)
    await api.at(shanghai(2026, 3, 26, 9))
    body = {"lots": [{"lot_id": bids[2, i].lot_id, "bid_id": bids[2, i].bid_id} for i in (0, 1)]}
    r = await api.post(f"{T}/{trade.id}/award", agency, json=body)
    assert r.status_code == 201, r.text
    first, second = sorted(r.json(), key=lambda a: a["lot_id"] != bids[2, 0].lot_id)
    signed = await api.contract(agency, trade.id, first["id"], first["price_fen"])
    assert signed.status_code == 201, signed.text
    return trade, first, second


async def test_a_re_evaluation_keeps_a_contracted_lot_and_decides_the_other_lot_afresh(api: Api) -> None:
    trade, first, second = await _two_lots_one_contracted(api)
    challenge = await _challenge(api, trade)
    r = await _answer(api, trade, challenge, trade.agency, outcome="reevaluate")
    assert r.status_code == 200, r.text
    read = (await api.get(f"{T}/{trade.id}", trade.agency)).json()
    assert read["status"] == "evaluation"
    assert [lot["status"] for lot in read["lots"]] == ["contracted", "open"]
    awards = {a["id"]: a["status"] for a in (await api.get(f"{T}/{trade.id}/awards", trade.agency)).json()}
    assert awards == {first["id"]: "active", second["id"]: "annulled"}
    # the new round ranks lot 2 only; lot 2 goes to its new first, and its contract completes the trade
    await _rescore(api, trade, trade.loser)
    [(_r1, _c1), (r2, c2)] = await _reports(api, trade)
    assert r2 == 2 and [c["lot_id"] for c in c2] == [trade.loser.lot_id]
    assert c2[0]["ranking"][0] == trade.loser.bid_id
    body = {"lots": [{"lot_id": trade.loser.lot_id, "bid_id": trade.loser.bid_id}]}
    again = await api.post(f"{T}/{trade.id}/award", trade.agency, json=body)
    assert again.status_code == 201, again.text
    # the contracted lot cannot be awarded again
    stolen = {"lots": [{"lot_id": first["lot_id"], "bid_id": trade.loser.bid_id}]}
    assert (await api.post(f"{T}/{trade.id}/award", trade.agency, json=stolen)).status_code in (409, 422)
    [new] = again.json()
    signed = await api.contract(trade.agency, trade.id, new["id"], new["price_fen"])
    assert signed.status_code == 201, signed.text
    read = (await api.get(f"{T}/{trade.id}", trade.agency)).json()
    assert read["status"] == "contracted"
    assert [lot["status"] for lot in read["lots"]] == ["contracted", "contracted"]


async def test_no_re_evaluation_when_every_lot_of_the_result_is_contracted(api: Api) -> None:
    trade, _first, second = await _two_lots_one_contracted(api)
    complaint = await _complaint(api, trade)
    signed = await api.contract(trade.agency, trade.id, second["id"], second["price_fen"])
    assert signed.status_code == 201, signed.text
    r = await _decide(api, complaint, await api.organisation("supervisor"))
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "G-12"
    assert r.json()["contracted_lots"] == [1, 2]
    awards = (await api.get(f"{T}/{trade.id}/awards", trade.agency)).json()
    assert [a["status"] for a in awards] == ["active", "active"]


async def _first_committee(api: Api, trade: Trade) -> set[str]:
    async with transaction(api.runtime.sessionmaker) as session:
        rows = await session.scalars(
            select(Member.expert_id).where(Member.room_id == uuid.UUID(trade.committee["room_id"]))
        )
        return {str(e) for e in rows}


async def test_a_fresh_committee_draws_none_of_the_first_and_the_draw_record_shows_it(api: Api) -> None:
    trade = await _awarded(api)  # seven of a pool of nine sat in round 1
    first = await _first_committee(api, trade)
    assert len(first) == 7
    complaint = await _complaint(api, trade)
    r = await _decide(api, complaint, await api.organisation("supervisor"), committee="fresh")
    assert r.status_code == 200, r.text
    # the two of round 1's pool who did not sit are away: only round 1's committee is left to draw from
    today = api.clock.now().astimezone(SHANGHAI).date()
    async with transaction(api.runtime.sessionmaker) as session:
        for expert_id in await session.scalars(select(Expert.id)):
            if str(expert_id) not in first:
                session.add(
                    ExpertUnavailability(
                        expert_id=expert_id, start_on=today, end_on=today, declared_at=api.clock.now()
                    )
                )
    draws = f"/api/v1/evaluation/tenders/{trade.id}/draws"
    body = {
        "evaluation_at": (api.clock.now() + timedelta(hours=2)).isoformat(),
        "quotas": [{"specialty": "A02", "seats": 7}],
    }
    short = await api.post(draws, trade.agency, json=body)
    assert short.status_code == 422, short.text
    assert short.json()["rule"] == "G-12"
    assert short.json()["earlier_committee_excluded"] == 7
    assert short.json()["errors"][0]["field"] == "quotas[0].seats"
    assert "only 0 eligible" in short.json()["errors"][0]["message"]
    # seven new experts: exactly seven eligible for seven seats, all of them drawn, none of round 1
    pool = [await api.expert() for _ in range(7)]
    made = await api.post(draws, trade.agency, json=body)
    assert made.status_code == 201, made.text
    assert made.json()["excluded"]["by_reason"]["earlier_committee"] == 7
    await api.witnessed(made.json()["id"])
    for actor in pool:
        for inv in (await api.get("/api/v1/evaluation/invitations", actor)).json():
            a = await api.post(
                f"/api/v1/evaluation/invitations/{inv['id']}/answer", actor, json={"accept": True}
            )
            assert a.status_code == 200, a.text
    supervisor = await api.organisation("supervisor")
    record = (await api.get(f"/api/v1/evaluation/draws/{made.json()['id']}/record", supervisor)).json()
    assert sorted(record["context"]["earlier_committee"]) == sorted(first)
    assert {e["expert_id"] for e in record["exclusions"] if "earlier_committee" in e["reasons"]} == first
    invited = {seat["expert_id"] for seat in record["invitations"]}
    assert len(invited) == 7 and not invited & first
    verified = (await api.get(f"/api/v1/evaluation/draws/{made.json()['id']}/verify", supervisor)).json()
    assert verified["ok"], verified["problems"]
