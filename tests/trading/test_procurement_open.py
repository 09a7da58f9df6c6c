"""Government procurement by open tendering (政府采购公开招标) on the procedure engine: the G rules of its
profile, from the notice to the contract, each broken once.

G-02 (20 days to the deadline), G-03 (deposit at most 2 % of the budget, no absolute cap), G-07 (7 members
from a budget of 10 million yuan), G-13 (fewer than 3 suppliers: the procurement fails), G-11 (the result
with the award, no candidates' publicity; the contract published within 2 working days of signing), G-04
(the unsuccessful suppliers' deposits due within 5 working days of the award notice, the winner's after
the contract) and the saving (budget − award) to the fen.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from escrow.models import Deposit, Obligation
from storage.db import transaction
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api, SealedBid

YUAN = 100
BUDGET_FEN = 12_000_000 * YUAN  # at least 10 million yuan: a committee of 7 (G-07)
DEPOSIT_FEN = 240_000 * YUAN  # 2 % of the budget, above nothing in procurement (G-03)


def procurement(**overrides: Any) -> dict[str, Any]:
    """Overrides of the test tender body that make it a procurement of one lot with BUDGET_FEN."""
    body: dict[str, Any] = {
        "sector": "procurement",
        "title": "市第一人民医院医学影像设备采购",
        "tenderer_name": "南京市第一人民医院",
        "qualification": "具有独立承担民事责任的能力；医疗器械经营许可",
        "lots": [{"title": "第一包 CT 设备", "estimated_price_fen": BUDGET_FEN, "deposit_fen": DEPOSIT_FEN}],
    }
    body.update(overrides)
    return body


async def _obligations(api: Api, lot_id: str) -> dict[str, tuple[str, date]]:
    """The open refund obligations of a lot's deposits by organisation: (rule, due day)."""
    async with transaction(api.runtime.sessionmaker) as session:
        rows = await session.execute(
            select(Deposit.organisation_id, Obligation.rule, Obligation.due_on)
            .join(Obligation, Obligation.deposit_id == Deposit.id)
            .where(Deposit.lot_id == uuid.UUID(lot_id))
        )
        return {str(org): (rule, due) for org, rule, due in rows}


async def test_publishing_before_the_twentieth_day_is_refused_by_g02(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.draft(agency, **procurement(bid_deadline="2026-03-20T10:00:00+08:00"))
    assert tender["sector"] == "procurement"
    await api.document(agency, tender["id"], b"%PDF-1.7 procurement documents")
    r = await api.post(f"/api/v1/tenders/{tender['id']}/publish", agency)
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "G-02"
    assert r.json()["earliest_deadline_day"] == "2026-03-23"


async def test_a_deposit_above_two_percent_of_the_budget_is_refused_by_g03_and_no_works_cap_applies(
    api: Api,
) -> None:
    agency = await api.organisation("agency")
    lot = {"title": "第一包", "estimated_price_fen": 100_000_000 * YUAN, "deposit_fen": 2_000_000 * YUAN + 1}
    r = await api.post("/api/v1/tenders", agency, json=api.tender_body(**procurement(lots=[lot])))
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "G-03"
    assert r.json()["errors"][0]["field"] == "lots[0].deposit_fen"
    # exactly 2 %: 2,000,000 yuan, which the works cap of 800,000 yuan (W-04) would refuse
    lot["deposit_fen"] = 2_000_000 * YUAN
    r = await api.post("/api/v1/tenders", agency, json=api.tender_body(**procurement(lots=[lot])))
    assert r.status_code == 201, r.text
    works = await api.post("/api/v1/tenders", agency, json=api.tender_body(lots=[lot]))
    assert works.status_code == 422 and works.json()["rule"] == "W-04"


async def test_fewer_than_three_suppliers_fail_the_procurement_by_g13_and_refund_by_g04(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency, **procurement())
    bids = [await api.bid(await api.organisation("bidder"), tender, BUDGET_FEN - i) for i in range(2)]
    await api.at(DEADLINE)
    read = (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()
    assert read["status"] == "unsuccessful"
    assert read["outcome_reason"].startswith("G-13")
    owed = await _obligations(api, bids[0].lot_id)
    assert {rule for rule, _due in owed.values()} == {"G-04-end"}
    # 5 working days from Mon 2026-03-23: Mon 2026-03-30
    assert {due for _rule, due in owed.values()} == {date(2026, 3, 30)}


async def _evaluated(api: Api) -> tuple[Actor, dict[str, Any], list[SealedBid]]:
    """A procurement with three bids below the budget, opened, evaluated by 7 (G-07) with equal scores so the
    lowest price ranks first; the report is in."""
    agency = await api.organisation("agency")
    tender = await api.published(agency, **procurement())
    prices = [11_000_000 * YUAN + 17, 10_500_000 * YUAN + 3, 11_800_000 * YUAN]
    bids = [await api.bid(await api.organisation("bidder"), tender, price) for price in prices]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    await api.evaluate(agency, tender["id"], experts=7)
    return agency, tender, bids


async def test_a_committee_of_five_is_refused_from_ten_million_yuan_by_g07(api: Api) -> None:
    agency = await api.organisation("agency")
    # a budget of 50 million yuan, above the helper's bids (a bid above the budget is rejected, 87号令 63(4))
    lots = [{"title": "第一包 CT 设备", "estimated_price_fen": 50_000_000 * YUAN, "deposit_fen": DEPOSIT_FEN}]
    tender, _bids = await api.in_evaluation(agency, **procurement(lots=lots))
    await api.seed_specialties()
    r = await api.post(
        f"/api/v1/evaluation/tenders/{tender['id']}/draws",
        agency,
        json={
            "evaluation_at": (api.clock.now() + timedelta(hours=2)).isoformat(),
            "quotas": [{"specialty": "A02", "seats": 5}],
        },
    )
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "G-07"
    assert "at least 7" in r.json()["detail"]


async def test_the_purchaser_awards_on_the_report_and_the_result_is_announced_with_the_saving(
    api: Api,
) -> None:
    agency, tender, bids = await _evaluated(api)
    tid = tender["id"]
    read = (await api.get(f"/api/v1/tenders/{tid}", agency)).json()
    assert read["status"] == "decision"
    assert "award" in read["allowed_actions"]
    notices = (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    kinds = {n["kind"] for n in notices}
    assert "candidates" not in kinds  # procurement announces the result, not candidates
    # a bidder cannot name the winner
    winner = min(bids, key=lambda b: b.price_fen)
    body = {"lots": [{"lot_id": winner.lot_id, "bid_id": winner.bid_id}]}
    refused = await api.post(f"/api/v1/tenders/{tid}/award", bids[0].bidder, json=body)
    assert refused.status_code in (403, 404)
    # no publicity to wait for: the award the same day
    r = await api.post(f"/api/v1/tenders/{tid}/award", agency, json=body)
    assert r.status_code == 201, r.text
    award = r.json()[0]
    assert award["price_fen"] == winner.price_fen
    notices = (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    [result] = [n for n in notices if n["kind"] == "result"]
    [lot] = result["body"]["lots"]
    assert result["body"]["rule"] == "G-11"
    assert lot["budget_fen"] == BUDGET_FEN
    assert lot["saving_fen"] == BUDGET_FEN - winner.price_fen == 1_500_000 * YUAN - 3
    # G-04: the two unsuccessful suppliers' deposits are due within 5 working days of the award notice
    owed = await _obligations(api, winner.lot_id)
    losers = {b.bidder.organisation_id for b in bids if b is not winner}
    assert set(owed) == losers
    assert {rule for rule, _due in owed.values()} == {"G-04-loser"}
    award_day = api.clock.now().date()
    assert all(due > award_day + timedelta(days=4) for _rule, due in owed.values())


async def test_a_contract_published_late_needs_a_reason_under_g11(api: Api) -> None:
    agency, tender, bids = await _evaluated(api)
    tid = tender["id"]
    winner = min(bids, key=lambda b: b.price_fen)
    r = await api.post(
        f"/api/v1/tenders/{tid}/award",
        agency,
        json={"lots": [{"lot_id": winner.lot_id, "bid_id": winner.bid_id}]},
    )
    assert r.status_code == 201, r.text
    award = r.json()[0]
    signed_on = api.clock.now().date()
    # a week later: past the second working day after the signing
    api.clock.set(api.clock.now() + timedelta(days=7))
    document = await api.document(agency, tid, b"%PDF contract", kind="contract", filename="contract.pdf")
    body = {
        "award_id": award["id"],
        "object_key": document["object_key"],
        "filename": "contract.pdf",
        "price_fen": winner.price_fen,
        "performance_security_fen": winner.price_fen // 10 + 1,
        "signed_on": signed_on.isoformat(),
    }
    late = await api.post(f"/api/v1/tenders/{tid}/contracts", agency, json=body)
    assert late.status_code == 422, late.text
    assert late.json()["rule"] == "G-11"
    assert "publish_by" in late.json()
    body["late_reason"] = "采购人法定代表人出差，合同用印延迟"
    # the performance security is capped at 10 % (实施条例 48): refused naming the field
    over = await api.post(f"/api/v1/tenders/{tid}/contracts", agency, json=body)
    assert over.status_code == 422, over.text
    assert over.json()["errors"][0]["field"] == "performance_security_fen"
    body["performance_security_fen"] = winner.price_fen // 10
    r = await api.post(f"/api/v1/tenders/{tid}/contracts", agency, json=body)
    assert r.status_code == 201, r.text
    read = (await api.get(f"/api/v1/tenders/{tid}", agency)).json()
    assert read["status"] == "contracted"
    owed = await _obligations(api, winner.lot_id)
    assert owed[winner.bidder.organisation_id][0] == "G-04-winner"


async def test_a_procurement_completes_once_every_contracts_performance_is_accepted(api: Api) -> None:
    agency, tender, bids = await _evaluated(api)
    tid = tender["id"]
    winner = min(bids, key=lambda b: b.price_fen)
    r = await api.post(
        f"/api/v1/tenders/{tid}/award",
        agency,
        json={"lots": [{"lot_id": winner.lot_id, "bid_id": winner.bid_id}]},
    )
    assert r.status_code == 201, r.text
    contract = await api.contract(agency, tid, r.json()[0]["id"], winner.price_fen)
    assert contract.status_code == 201, contract.text
    cid = contract.json()["id"]
    refused = await api.post(f"/api/v1/tenders/{tid}/complete", agency)
    assert refused.status_code == 409 and "履约验收" in refused.json()["detail"]
    path = f"/api/v1/tenders/{tid}/contracts/{cid}/acceptance"
    signed_on = date.fromisoformat(contract.json()["signed_on"])
    early = {"result": "passed", "accepted_on": (signed_on - timedelta(days=1)).isoformat(), "report": "x"}
    r = await api.post(path, agency, json=early)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "accepted_on"
    assert (
        await api.post(path, winner.bidder, json={**early, "accepted_on": signed_on.isoformat()})
    ).status_code == 403
    api.clock.set(api.clock.now() + timedelta(days=60))
    body = {
        "result": "passed",
        "accepted_on": (signed_on + timedelta(days=45)).isoformat(),
        "report": "设备安装调试完毕，验收合格",
    }
    accepted = await api.post(path, agency, json=body)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["acceptance_result"] == "passed"
    assert (await api.post(path, agency, json=body)).status_code == 409
    notices = (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    assert any(n["kind"] == "acceptance" for n in notices)
    done = await api.post(f"/api/v1/tenders/{tid}/complete", agency)
    assert done.status_code == 200 and done.json()["status"] == "completed"
