"""What a complaint's decision does to the trade (G-12, W-17): the supervising authority may suspend the
trade while it decides — no award, no contract, no step of the chronograph — and an upheld complaint may
order the trade re-run: it fails, its deposits are owed back, and the agency re-runs it."""

from __future__ import annotations

from typing import Any

from tests.helpers import Actor, Api
from tests.trading.test_procurement_challenges import _awarded, _challenge


async def _complaint(api: Api) -> tuple[Actor, dict[str, Any], Any, dict[str, Any], Actor]:
    """An awarded procurement, a loser's answered challenge to the result, and its complaint."""
    agency, tender, bids, award = await _awarded(api)
    loser = max(bids, key=lambda b: b.price_fen)
    challenge = (await _challenge(api, loser.bidder, tender["id"], "result")).json()
    answered = await api.post(
        f"/api/v1/tenders/{tender['id']}/objections/{challenge['id']}/answer", agency, json={"answer": "维持"}
    )
    assert answered.status_code == 200
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/complaints",
        loser.bidder,
        json={"subject": "award", "known_on": "2026-03-26", "text": "评审委员会未按评审因素评分"},
    )
    assert r.status_code == 201, r.text
    supervisor = await api.organisation("supervisor")
    return agency, tender, award, r.json(), supervisor


async def test_a_suspended_trade_takes_no_contract_until_the_complaint_is_decided(api: Api) -> None:
    agency, tender, award, complaint, supervisor = await _complaint(api)
    path = f"/api/v1/complaints/{complaint['id']}/suspension"
    assert (await api.post(path, agency, json={"reason": "x"})).status_code == 403
    r = await api.post(path, supervisor, json={"reason": "投诉处理期间暂停采购活动"})
    assert r.status_code == 200, r.text
    assert (await api.post(path, supervisor, json={"reason": "again"})).status_code == 409
    read = (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()
    assert read["suspended_reason"] == "投诉处理期间暂停采购活动"
    held = await api.contract(agency, tender["id"], award["id"], award["price_fen"])
    assert held.status_code == 409 and held.json()["rule"] == "G-12"
    decided = await api.post(
        f"/api/v1/complaints/{complaint['id']}/decision",
        supervisor,
        json={"decision": "dismissed", "text": "评审程序合法，驳回投诉"},
    )
    assert decided.status_code == 200, decided.text
    assert (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()["suspended_reason"] is None
    assert (await api.contract(agency, tender["id"], award["id"], award["price_fen"])).status_code == 201


async def test_an_upheld_complaint_orders_the_procurement_re_run(api: Api) -> None:
    agency, tender, _award, complaint, supervisor = await _complaint(api)
    path = f"/api/v1/complaints/{complaint['id']}/decision"
    dismissed_with_order = await api.post(
        path, supervisor, json={"decision": "dismissed", "text": "x", "outcome": "rerun"}
    )
    assert dismissed_with_order.status_code == 422
    assert dismissed_with_order.json()["errors"][0]["field"] == "outcome"
    r = await api.post(
        path,
        supervisor,
        json={"decision": "upheld", "text": "评分标准设置违法，责令重新开展采购活动", "outcome": "rerun"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "rerun"
    read = (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()
    assert read["status"] == "unsuccessful" and read["outcome_reason"].startswith("G-12")
    rerun = await api.post(f"/api/v1/tenders/{tender['id']}/retender", agency)
    assert rerun.status_code == 201 and rerun.json()["status"] == "draft"


async def test_an_upheld_complaint_annuls_the_award_and_the_next_candidate_takes_the_lot(api: Api) -> None:
    agency, tender, award, complaint, supervisor = await _complaint(api)
    r = await api.post(
        f"/api/v1/complaints/{complaint['id']}/decision",
        supervisor,
        json={"decision": "upheld", "text": "中标供应商业绩造假，中标结果无效", "outcome": "reaward"},
    )
    assert r.status_code == 200, r.text
    awards = (await api.get(f"/api/v1/tenders/{tender['id']}/awards", agency)).json()
    assert [a["status"] for a in awards] == ["annulled"]
    # the annulled winner cannot be named again, and its contract is refused
    again = {"lots": [{"lot_id": award["lot_id"], "bid_id": award["bid_id"]}]}
    assert (await api.post(f"/api/v1/tenders/{tender['id']}/award", agency, json=again)).status_code == 422
    assert (await api.contract(agency, tender["id"], award["id"], award["price_fen"])).status_code == 409
    notices = (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    assert any(n["kind"] == "award_change" and n["body"]["rule"] == "G-12" for n in notices)
