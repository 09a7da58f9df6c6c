"""The money of bidders rejected under W-19 (no deposit at the deadline): nothing to refund where nothing
was held; a partial deposit goes back with the others' at the contract (W-14); a payment that arrives
after the deadline waits in suspense and goes back to its payer; a refund already on its way back is paid
once. Every fen is accounted for and nothing is paid twice (`verify` passes)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from escrow import sandbox
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api, SealedBid, shanghai
from tests.trading.test_deposit_rejection import DEPOSIT, rates

T = "/api/v1/tenders"
PRICE = 4_000_000_000
SHORT = DEPOSIT - 10_000  # 100 yuan short: the bank's fee taken from the transfer
ESCROW = "31050161393600000888"


async def _batch(api: Api, centre: Actor) -> dict[str, Any]:
    r = await api.post("/api/v1/escrow/batches", centre)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _paid(api: Api, centre: Actor, batch: dict[str, Any]) -> dict[str, Any]:
    e2e = [i["end_to_end_id"] for i in batch["instructions"]]
    content = sandbox.results(batch["batch"]["number"], api.clock.now(), e2e, None)
    r = await api.client.post(
        "/api/v1/escrow/results",
        params={"format": "pain002"},
        content=content,
        headers={**centre.headers, "Content-Type": "application/xml"},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _life(api: Api, centre: Actor, bidder: Actor, bid: SealedBid) -> dict[str, Any]:
    mine = await api.deposit_of(bidder, bid.lot_id)
    r = await api.get(f"/api/v1/escrow/deposits/{mine['id']}", centre)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_rejected_bidders_money_goes_back_once_and_nothing_is_lost(api: Api) -> None:
    centre = await api.bootstrap_centre()
    await rates(api)
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    lot_id = tender["lots"][0]["id"]
    valid = [await api.bid(await api.organisation("bidder"), tender, PRICE + i) for i in range(3)]

    # partial: 100 yuan short, the line goes to suspense and an officer matches it to the deposit in time
    partial = await api.organisation("bidder")
    await api.post(f"{T}/{tender['id']}/documents/obtain", partial)
    assert (await api.pay_deposit(partial, lot_id, amount_fen=SHORT))["suspense"] == 1
    [line] = (await api.get("/api/v1/escrow/suspense", centre)).json()
    r = await api.post(
        f"/api/v1/escrow/lines/{line['id']}/match",
        centre,
        json={"deposit_id": (await api.deposit_of(partial, lot_id))["id"], "note": "付款人确认，手续费扣减"},
    )
    assert r.status_code == 200, r.text
    short_bid = await api.bid(partial, tender, PRICE - 3, obtain=False, deposit=False)
    # late: pays only after the deadline
    late = await api.organisation("bidder")
    late_bid = await api.bid(late, tender, PRICE - 2, deposit=False)
    # returning: paid, withdrew, its W-05 refund instructed to the bank, then bid again without paying
    back = await api.organisation("bidder")
    first = await api.bid(back, tender, PRICE - 1)
    api.clock.set(shanghai(2026, 3, 12, 15))
    assert (await api.post(f"{T}/{tender['id']}/bids/{first.bid_id}/withdraw", back)).status_code == 200
    w05 = await _batch(api, centre)
    assert len(w05["instructions"]) == 1
    back_bid = await api.bid(back, tender, PRICE - 1, obtain=False, deposit=False)

    await api.at(DEADLINE)
    rejected = [short_bid, late_bid, back_bid]
    for bid in [*valid, *rejected]:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    for bid in rejected:
        mine = (await api.get(f"{T}/{tender['id']}/bids/", bid.bidder)).json()
        assert [b["rejection"]["rule"] for b in mine if b["id"] == bid.bid_id] == ["W-19"]
    # after the deadline: the late payment waits in suspense; the bank confirms the W-05 refund
    api.clock.set(DEADLINE + timedelta(hours=1))
    assert (await api.pay_deposit(late, lot_id, reference="LATE-0001"))["suspense"] == 1
    [waiting] = (await api.get("/api/v1/escrow/suspense", centre)).json()
    assert waiting["reference"] == "LATE-0001"
    assert waiting["note"] == (
        "arrived after the bid deadline (the bid is rejected under W-19: no deposit at the deadline); "
        "it backs no bid: return it to the payer"
    )
    assert (await _paid(api, centre, w05))["paid"] == 1
    assert (await api.deposit_of(late, lot_id))["held_fen"] == 0

    assert await api.at(AFTER_WINDOW) == [(tender["code"], "evaluation")]
    await api.evaluate(agency, tender["id"])
    api.clock.set(api.clock.now() + timedelta(days=5))
    r = await api.post(
        f"{T}/{tender['id']}/award", agency, json={"lots": [{"lot_id": lot_id, "bid_id": valid[0].bid_id}]}
    )
    assert r.status_code == 201, r.text
    assert (await api.contract(agency, tender["id"], r.json()[0]["id"], PRICE)).status_code == 201
    r = await api.post(
        f"/api/v1/escrow/lines/{waiting['id']}/return", centre, json={"note": "截止后到账，原路退回"}
    )
    assert r.status_code == 200, r.text

    # the bank's quarterly interest on the escrow account (结息), which funds the interest paid to bidders
    interest_line = sandbox.Credit("INT-2026Q1", 250_000, api.clock.now().date(), interest=True)
    statement = sandbox.statement(ESCROW, "S-INT", api.clock.now(), [interest_line])
    r = await api.client.post(
        "/api/v1/escrow/statements",
        params={"format": "camt053"},
        content=statement,
        headers={**centre.headers, "Content-Type": "application/xml"},
    )
    assert r.status_code == 200 and r.json()["interest"] == 1, r.text

    obligations = (await api.get("/api/v1/escrow/obligations", centre)).json()
    by_account = {o["account"]: o for o in obligations if o["rule"] != "W-05"}
    accounts = {
        b.bidder.username: (await api.deposit_of(b.bidder, lot_id))["account_code"]
        for b in [*valid, *rejected]
    }
    assert sorted(o["rule"] for o in by_account.values()) == ["SUSPENSE"] + ["W-14"] * 4
    assert {accounts[b.bidder.username] for b in [*valid, short_bid]} | {"suspense"} == set(by_account)
    batch = await _batch(api, centre)
    amounts = {i["account_code"]: (i["amount_fen"], i["interest_fen"]) for i in batch["instructions"]}
    assert len(batch["instructions"]) == 5, batch["skipped"]
    principal, interest = (
        amounts[accounts[short_bid.bidder.username]][0],
        amounts[accounts[short_bid.bidder.username]][1],
    )
    assert principal - interest == SHORT and interest > 0  # W-14: with bank interest, like the others
    assert [
        amounts[accounts[b.bidder.username]][0] - amounts[accounts[b.bidder.username]][1] for b in valid
    ] == [DEPOSIT] * 3
    assert amounts["suspense"] == (DEPOSIT, 0)  # the late payment, back to its payer, no interest
    assert (await _paid(api, centre, batch))["paid"] == 5
    assert (await _batch(api, centre))["batch"] is None  # nothing left, nothing twice

    for bidder, bid in ((partial, short_bid), (late, late_bid), (back, back_bid)):
        life = await _life(api, centre, bidder, bid)
        assert life["deposit"]["held_fen"] == 0, bidder.username
        assert [e["eligible"] for e in life["eligibility"]] == [False]
    assert [o["rule"] for o in (await _life(api, centre, back, back_bid))["obligations"]] == ["W-05"]
    assert (await _life(api, centre, late, late_bid))["obligations"] == []
    auditor = await api.organisation("auditor")
    checks = (await api.get("/api/v1/escrow/verify", auditor)).json()
    assert checks["ok"] is True, checks
    trial = (await api.get("/api/v1/escrow/trial-balance", auditor)).json()
    held = {a["account"]: a["credit_fen"] - a["debit_fen"] for a in trial["accounts"]}
    assert all(held[code] == 0 for code in accounts.values()) and held["suspense"] == 0
