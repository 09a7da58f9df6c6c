"""A bid above the lot's ceiling price (最高投标限价, 条例 51(5)), or in procurement above the budget or the
ceiling (87号令 63(4)), is rejected by the platform at the opening, the same way as a bid without its deposit
(W-19): the reason names the field it exceeds, no member of the committee can pass it, and the report shows
it. A bid at exactly the ceiling stands."""

from __future__ import annotations

from typing import Any

from tests.helpers import AFTER_WINDOW, DEADLINE, Api, SealedBid
from tests.trading.test_procurement_open import BUDGET_FEN, DEPOSIT_FEN, YUAN, procurement

T = "/api/v1/tenders"
ROOM = "/api/v1/evaluation/rooms"
ESTIMATE = 5_000_000_000
CEILING = 4_000_000_000


def works_with_ceiling(ceiling: int = CEILING) -> dict[str, Any]:
    return {
        "lots": [
            {
                "title": "第一标段",
                "estimated_price_fen": ESTIMATE,
                "deposit_fen": 80_000_000,
                "ceiling_price_fen": ceiling,
            }
        ]
    }


async def _opened(api: Api, tender: dict[str, Any], prices: list[int]) -> list[SealedBid]:
    bids = [await api.bid(await api.organisation("bidder"), tender, price) for price in prices]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    return bids


def _rejection(lot: dict[str, Any], bid: SealedBid) -> Any:
    [line] = [b for b in lot["bids"] if b["bid_id"] == bid.bid_id]
    return line


async def test_a_bid_above_the_ceiling_is_rejected_and_no_expert_can_pass_it(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency, **works_with_ceiling())
    assert tender["lots"][0]["ceiling_price_fen"] == CEILING
    [notice] = (
        await api.get("/api/v1/notices", params={"tender_code": tender["code"], "kind": "tender_notice"})
    ).json()["items"]
    assert notice["body"]["lots"][0]["ceiling_price_fen"] == CEILING
    # one bid exactly at the ceiling, two below, one a fen above
    at, below1, below2, above = await _opened(api, tender, [CEILING, CEILING - 1, CEILING - 2, CEILING + 1])
    assert (await api.get(f"{T}/{tender['id']}")).json()["status"] == "evaluation"
    committee = await api.convene(agency, tender["id"])
    room_id, members = committee["room_id"], committee["members"]
    room = (await api.get(f"{ROOM}/{room_id}", members[1])).json()
    [lot] = room["lots"]
    shown = _rejection(lot, above)["rejected"]
    assert (shown["rule"], shown["reason"]) == ("W-19", "ceiling_price_fen")
    assert "ceiling_price_fen" in shown["detail"]
    assert _rejection(lot, at).get("rejected") is None
    # an expert trying to pass the bid above the ceiling is refused
    votes = [
        {"bid_id": b.bid_id, "criterion": q["code"], "passed": True}
        for b in (at, below1, below2, above)
        for q in room["scheme"]["qualification"]
    ]
    r = await api.post(f"{ROOM}/{room_id}/reviews", members[1], json={"lot_id": lot["id"], "votes": votes})
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "W-19"
    assert any("rejected by the platform" in e["message"] for e in r.json()["errors"])

    done = await api.deliberate(committee)
    body = (await api.get(f"{ROOM}/{done['room_id']}/report", members[1])).json()
    [reported] = body["report"]["lots"]
    line = _rejection(reported, above)
    assert (line["qualified"], line["rank"]) == (False, None)
    [why] = line["rejections"]
    assert (why["criterion"], why["rule"], why["by"]) == ("ceiling_price_fen", "W-19", "platform")
    assert "ceiling_price_fen" in why["reasons"][0]
    assert _rejection(reported, at)["qualified"] is True
    assert above.bid_id not in [c["bid_id"] for c in reported["candidates"]]
    assert at.bid_id in [c["bid_id"] for c in reported["candidates"]]


async def test_a_procurement_bid_above_the_budget_is_rejected(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency, **procurement())
    prices = [BUDGET_FEN, BUDGET_FEN - YUAN, BUDGET_FEN - 2 * YUAN, BUDGET_FEN + 1]
    bids = await _opened(api, tender, prices)
    committee = await api.convene(agency, tender["id"], experts=7)
    room = (await api.get(f"{ROOM}/{committee['room_id']}", committee["members"][1])).json()
    [lot] = room["lots"]
    shown = _rejection(lot, bids[3])["rejected"]
    assert (shown["rule"], shown["reason"]) == ("W-19", "estimated_price_fen")
    assert _rejection(lot, bids[0]).get("rejected") is None
    # the bidder reads its own rejection with the reason
    mine = [b for b in (await api.get(f"{T}/{tender['id']}/bids/", bids[3].bidder)).json()]
    assert mine[0]["rejection"]["reason"] == "estimated_price_fen"


async def test_a_procurement_ceiling_above_the_budget_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    lot = {
        "title": "第一包",
        "estimated_price_fen": BUDGET_FEN,
        "deposit_fen": DEPOSIT_FEN,
        "ceiling_price_fen": BUDGET_FEN + 1,
    }
    r = await api.post(f"{T}", agency, json=api.tender_body(**procurement(lots=[lot])))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "lots[0].ceiling_price_fen"


async def test_a_procurement_bid_above_its_ceiling_but_within_the_budget_is_rejected(api: Api) -> None:
    agency = await api.organisation("agency")
    ceiling = BUDGET_FEN - 10 * YUAN
    lot = {
        "title": "第一包",
        "estimated_price_fen": BUDGET_FEN,
        "deposit_fen": DEPOSIT_FEN,
        "ceiling_price_fen": ceiling,
    }
    tender = await api.published(agency, **procurement(lots=[lot]))
    bids = await _opened(api, tender, [ceiling, ceiling - 1, ceiling - 2, ceiling + 1])
    committee = await api.convene(agency, tender["id"], experts=7)
    room = (await api.get(f"{ROOM}/{committee['room_id']}", committee["members"][1])).json()
    [shown] = room["lots"]
    assert _rejection(shown, bids[3])["rejected"]["reason"] == "ceiling_price_fen"
    assert _rejection(shown, bids[0]).get("rejected") is None
