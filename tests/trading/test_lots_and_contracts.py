"""Lots (分包): a supplier wins no more lots than the documents allow; a contract keeps the awarded price."""

from __future__ import annotations

from typing import Any

from tests.helpers import AFTER_WINDOW, DEADLINE, Api
from tests.trading.test_procurement_open import YUAN, procurement

LOT_BUDGET_FEN = 4_000_000 * YUAN


def _lot(title: str) -> dict[str, Any]:
    return {"title": title, "estimated_price_fen": LOT_BUDGET_FEN, "deposit_fen": LOT_BUDGET_FEN // 50}


async def test_a_supplier_wins_at_most_the_lots_the_documents_allow(api: Api) -> None:
    agency = await api.organisation("agency")
    body = procurement(lots=[_lot("第一包 服务器"), _lot("第二包 存储")], max_lots_per_supplier=1)
    tender = await api.published(agency, **body)
    assert tender["max_lots_per_supplier"] == 1
    bidders = [await api.organisation("bidder") for _ in range(3)]
    bids = {
        (n, lot): await api.bid(bidder, tender, LOT_BUDGET_FEN - (3 - n) * 1000 * YUAN, lot=lot)
        for n, bidder in enumerate(bidders)
        for lot in (0, 1)
    }
    await api.at(DEADLINE)
    for bid in bids.values():
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    await api.evaluate(agency, tender["id"])
    # bidder 0 is the lowest on both lots; the documents allow one lot each
    both = {"lots": [{"lot_id": bids[0, lot].lot_id, "bid_id": bids[0, lot].bid_id} for lot in (0, 1)]}
    r = await api.post(f"/api/v1/tenders/{tender['id']}/award", agency, json=both)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "lots[1].bid_id"
    assert r.json()["max_lots_per_supplier"] == 1
    split = {
        "lots": [
            {"lot_id": bids[0, 0].lot_id, "bid_id": bids[0, 0].bid_id},
            {"lot_id": bids[1, 1].lot_id, "bid_id": bids[1, 1].bid_id},
        ]
    }
    r = await api.post(f"/api/v1/tenders/{tender['id']}/award", agency, json=split)
    assert r.status_code == 201, r.text
    awards = r.json()
    # a contract at another price than the award's is refused, naming the field
    changed = await api.contract(agency, tender["id"], awards[0]["id"], awards[0]["price_fen"] - 1)
    assert changed.status_code == 422, changed.text
    assert changed.json()["errors"][0]["field"] == "price_fen"
    same = await api.contract(agency, tender["id"], awards[0]["id"], awards[0]["price_fen"])
    assert same.status_code == 201, same.text
