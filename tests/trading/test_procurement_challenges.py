"""Challenges (质疑) and complaints (投诉) in government procurement (G-12): within 7 working days of knowing,
answered within 7 working days, by a supplier with standing; a challenge to the result holds the contract
back until it is answered; a complaint follows a challenge, within 15 working days of its answer."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api, SealedBid, shanghai
from tests.trading.test_procurement_open import BUDGET_FEN, YUAN, procurement


async def _awarded(api: Api) -> tuple[Actor, dict[str, Any], list[SealedBid], dict[str, Any]]:
    """A procurement awarded to the lowest of three bids on Thu 2026-03-26 (the report that day)."""
    agency = await api.organisation("agency")
    tender = await api.published(agency, **procurement())
    bids = [await api.bid(await api.organisation("bidder"), tender, BUDGET_FEN - i * YUAN) for i in range(3)]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    await api.evaluate(agency, tender["id"], experts=7)
    await api.at(shanghai(2026, 3, 26, 9))
    winner = min(bids, key=lambda b: b.price_fen)
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/award",
        agency,
        json={"lots": [{"lot_id": winner.lot_id, "bid_id": winner.bid_id}]},
    )
    assert r.status_code == 201, r.text
    return agency, tender, bids, r.json()[0]


async def _challenge(api: Api, actor: Actor, tid: str, subject: str) -> Any:
    return await api.post(
        f"/api/v1/tenders/{tid}/objections", actor, json={"subject": subject, "text": "评审因素设置不合理"}
    )


async def test_a_result_challenge_holds_the_contract_until_the_purchaser_answers(api: Api) -> None:
    agency, tender, bids, award = await _awarded(api)
    tid = tender["id"]
    loser = max(bids, key=lambda b: b.price_fen)
    r = await _challenge(api, loser.bidder, tid, "result")
    assert r.status_code == 201, r.text
    challenge = r.json()
    # answered within 7 working days of Thu 2026-03-26: Tue 2026-04-07 (Qingming, Sat 04-04 to Mon 04-06)
    assert challenge["answer_due"].startswith("2026-04-07")
    winner = min(bids, key=lambda b: b.price_fen)
    held = await api.contract(agency, tid, award["id"], winner.price_fen)
    assert held.status_code == 422, held.text
    assert held.json()["rule"] == "G-12"
    answer = await api.post(
        f"/api/v1/tenders/{tid}/objections/{challenge['id']}/answer",
        agency,
        json={"answer": "经复核，评审程序合法，维持采购结果"},
    )
    assert answer.status_code == 200, answer.text
    assert (await api.contract(agency, tid, award["id"], winner.price_fen)).status_code == 201


async def test_a_challenge_after_seven_working_days_is_refused_by_g12(api: Api) -> None:
    _agency, tender, bids, _award = await _awarded(api)
    # 7 working days after Thu 2026-03-26 is Tue 2026-04-07; Wed 04-08 is too late
    await api.at(shanghai(2026, 4, 8, 9))
    r = await _challenge(api, bids[1].bidder, tender["id"], "result")
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "G-12"
    assert r.json()["last_day"] == "2026-04-07"


async def test_only_a_supplier_that_bid_may_challenge_the_result(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency, **procurement())
    holder = await api.organisation("bidder")
    assert (await api.post(f"/api/v1/tenders/{tender['id']}/documents/obtain", holder)).status_code == 200
    bids = [await api.bid(await api.organisation("bidder"), tender, BUDGET_FEN - i * YUAN) for i in range(3)]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    # the holder of the documents took no part in the opening: no standing to challenge it
    r = await _challenge(api, holder, tender["id"], "opening")
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "G-12"
    assert r.json()["errors"][0]["field"] == "subject"
    # nobody who did not even obtain the documents may challenge at all
    stranger = await api.organisation("bidder")
    assert (await _challenge(api, stranger, tender["id"], "documents")).status_code == 403
    # a bidder may challenge the opening; there is no result to challenge yet
    assert (await _challenge(api, bids[0].bidder, tender["id"], "opening")).status_code == 201
    assert (await _challenge(api, bids[0].bidder, tender["id"], "result")).status_code == 409


async def test_a_documents_challenge_counts_from_the_day_the_documents_were_obtained(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency, **procurement())
    bidder = await api.organisation("bidder")
    assert (await api.post(f"/api/v1/tenders/{tender['id']}/documents/obtain", bidder)).status_code == 200
    obtained = api.clock.now()
    await api.at(obtained + timedelta(days=14))
    late = await _challenge(api, bidder, tender["id"], "documents")
    assert late.status_code == 422 and late.json()["rule"] == "G-12"
    assert date.fromisoformat(late.json()["last_day"]) < (obtained + timedelta(days=14)).date()
    # a supplier that obtains the documents later has its own seven working days
    later = await api.organisation("bidder")
    assert (await api.post(f"/api/v1/tenders/{tender['id']}/documents/obtain", later)).status_code == 200
    assert (await _challenge(api, later, tender["id"], "documents")).status_code == 201


async def test_procurement_has_no_candidates_to_object_to_and_works_no_result_challenge(api: Api) -> None:
    works_agency = await api.organisation("agency")
    works = await api.published(works_agency)
    holder = await api.organisation("bidder")
    assert (await api.post(f"/api/v1/tenders/{works['id']}/documents/obtain", holder)).status_code == 200
    r = await _challenge(api, holder, works["id"], "result")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "subject"
    _agency, tender, bids, _award = await _awarded(api)
    r = await _challenge(api, bids[1].bidder, tender["id"], "candidates")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "subject"


async def test_a_complaint_follows_an_answered_challenge_within_fifteen_working_days(api: Api) -> None:
    agency, tender, bids, _award = await _awarded(api)
    tid = tender["id"]
    winner = min(bids, key=lambda b: b.price_fen)
    early, late = [b.bidder for b in bids if b is not winner]
    complaint = {"subject": "award", "known_on": "2026-03-26", "text": "评标委员会未按评审因素评分"}
    path = f"/api/v1/tenders/{tid}/complaints"
    # no challenge yet: the complaint is refused
    first = await api.post(path, early, json=complaint)
    assert first.status_code == 422 and first.json()["rule"] == "G-12"
    challenges = [(await _challenge(api, who, tid, "result")).json() for who in (early, late)]
    # the challenge awaits its answer (not yet due): still refused
    pending = await api.post(path, early, json=complaint)
    assert pending.status_code == 422 and pending.json()["rule"] == "G-12"
    assert "answer_due" in pending.json()
    await api.at(shanghai(2026, 3, 30, 9))
    for challenge in challenges:
        answer = await api.post(
            f"/api/v1/tenders/{tid}/objections/{challenge['id']}/answer", agency, json={"answer": "维持"}
        )
        assert answer.status_code == 200
    # 15 working days after Mon 2026-03-30 (Qingming Sat 04-04 to Mon 04-06 off) is Tue 2026-04-21
    await api.at(shanghai(2026, 4, 21, 16))
    filed = await api.post(path, early, json=complaint)
    assert filed.status_code == 201, filed.text
    await api.at(shanghai(2026, 4, 22, 9))
    refused = await api.post(path, late, json=complaint)
    assert refused.status_code == 422 and refused.json()["rule"] == "G-12"
    assert refused.json()["last_day"] == "2026-04-21"
