"""Deposits on a re-evaluation (重新评审): when the new round makes an unsuccessful supplier the winner, the
refund it was owed at the first award notice (G-04-loser) is superseded if still due, its deposit held for
the contract (G-04-winner); if the bank already paid it, the award shows the fen refunded and the contract
refunds nothing twice. The annulled former winner is owed its deposit under the loser rule. Balances are
checked on the ledger to the fen."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from escrow import journal, sandbox
from escrow.models import Deposit, Obligation
from storage.db import transaction
from tests.helpers import Api, SealedBid
from tests.trading.test_deposit_rejection import rates
from tests.trading.test_procurement_open import DEPOSIT_FEN
from tests.trading.test_reevaluation import T, Trade, _answer, _awarded, _challenge, _rescore


async def _deposit(api: Api, bid: SealedBid) -> tuple[str, int, list[tuple[str, str, str]]]:
    """The bid's deposit: its status, what the centre holds for the bidder on the ledger (posted, fen),
    and its refund obligations in order as (rule, event, status)."""
    async with transaction(api.runtime.sessionmaker) as session:
        deposit = await session.scalar(
            select(Deposit).where(
                Deposit.lot_id == uuid.UUID(bid.lot_id),
                Deposit.organisation_id == uuid.UUID(bid.bidder.organisation_id),
            )
        )
        assert deposit is not None
        held = -(await journal.balance(session, deposit.account_code)).posted
        rows = await session.scalars(
            select(Obligation).where(Obligation.deposit_id == deposit.id).order_by(Obligation.created_at)
        )
        return deposit.status, held, [(o.rule, o.event, o.status) for o in rows]


async def _bank_round(api: Api) -> list[dict[str, Any]]:
    """The centre batches the refunds due and the bank pays every one; answers the instructions."""
    centre = await api.bootstrap_centre()
    batch = await api.post("/api/v1/escrow/batches", centre)
    assert batch.status_code == 201, batch.text
    instructions: list[dict[str, Any]] = batch.json()["instructions"]
    if not instructions:
        return instructions
    e2e = [i["end_to_end_id"] for i in instructions]
    report = sandbox.results(batch.json()["batch"]["number"], api.clock.now(), e2e)
    r = await api.post(
        "/api/v1/escrow/results",
        centre,
        params={"format": "pain002"},
        content=report,
        headers={"Content-Type": "application/xml"},
    )
    assert r.status_code == 200 and r.json()["paid"] == len(e2e), r.text
    return instructions


async def _reevaluated_to_the_loser(api: Api, trade: Trade) -> dict[str, Any]:
    """The loser's challenge upheld with a re-evaluation; round 2 ranks it first and it is awarded."""
    challenge = await _challenge(api, trade)
    assert (await _answer(api, trade, challenge, trade.agency, outcome="reevaluate")).status_code == 200
    await _rescore(api, trade, trade.loser)
    body = {"lots": [{"lot_id": trade.loser.lot_id, "bid_id": trade.loser.bid_id}]}
    r = await api.post(f"{T}/{trade.id}/award", trade.agency, json=body)
    assert r.status_code == 201, r.text
    [award] = r.json()
    return dict(award)


def _middle(trade: Trade) -> SealedBid:
    [middle] = [b for b in trade.bids if b not in (trade.winner, trade.loser)]
    return middle


async def test_a_refund_still_due_to_the_new_winner_is_superseded_and_the_former_winner_is_owed_its_own(
    api: Api,
) -> None:
    trade = await _awarded(api)
    assert await _deposit(api, trade.loser) == (
        "refunding",
        DEPOSIT_FEN,
        [("G-04-loser", "award_notice", "due")],
    )
    award = await _reevaluated_to_the_loser(api, trade)
    assert award["deposit_refunded_fen"] is None
    # the new winner's refund is kept on record, never paid; its deposit is held for the contract
    assert await _deposit(api, trade.loser) == (
        "held",
        DEPOSIT_FEN,
        [("G-04-loser", "award_notice", "superseded")],
    )
    # the former winner is now an unsuccessful supplier, owed back under the loser rule
    assert await _deposit(api, trade.winner) == (
        "refunding",
        DEPOSIT_FEN,
        [("G-04-loser", "award_notice", "due")],
    )
    assert (await _deposit(api, _middle(trade)))[2] == [("G-04-loser", "award_notice", "due")]
    # the bank pays the former winner and the middle supplier, not the new winner
    await rates(api)
    paid = await _bank_round(api)
    assert sorted(i["amount_fen"] for i in paid) == [DEPOSIT_FEN, DEPOSIT_FEN]
    assert (await _deposit(api, trade.winner))[:2] == ("refunded", 0)
    assert (await _deposit(api, _middle(trade)))[:2] == ("refunded", 0)
    assert (await _deposit(api, trade.loser))[:2] == ("held", DEPOSIT_FEN)
    # the contract owes the new winner its deposit under the winner rule, once
    signed = await api.contract(trade.agency, trade.id, award["id"], award["price_fen"])
    assert signed.status_code == 201, signed.text
    assert (await _deposit(api, trade.loser))[2] == [
        ("G-04-loser", "award_notice", "superseded"),
        ("G-04-winner", "contract_signed", "due"),
    ]
    [last] = await _bank_round(api)
    assert last["amount_fen"] == DEPOSIT_FEN
    assert (await _deposit(api, trade.loser))[:2] == ("refunded", 0)


async def test_a_refund_already_paid_to_the_new_winner_shows_on_the_award_and_is_not_paid_twice(
    api: Api,
) -> None:
    trade = await _awarded(api)
    await rates(api)
    paid = await _bank_round(api)
    assert sorted(i["amount_fen"] for i in paid) == [DEPOSIT_FEN, DEPOSIT_FEN]
    award = await _reevaluated_to_the_loser(api, trade)
    assert award["deposit_refunded_fen"] == DEPOSIT_FEN
    listed = (await api.get(f"{T}/{trade.id}/awards", trade.agency)).json()
    assert {a["status"]: a["deposit_refunded_fen"] for a in listed} == {
        "annulled": None,
        "active": DEPOSIT_FEN,
    }
    assert await _deposit(api, trade.loser) == ("refunded", 0, [("G-04-loser", "award_notice", "paid")])
    assert await _deposit(api, trade.winner) == (
        "refunding",
        DEPOSIT_FEN,
        [("G-04-loser", "award_notice", "due")],
    )
    signed = await api.contract(trade.agency, trade.id, award["id"], award["price_fen"])
    assert signed.status_code == 201, signed.text
    # only the former winner is paid; the new winner's contract owes nothing more
    [only] = await _bank_round(api)
    assert only["amount_fen"] == DEPOSIT_FEN
    assert await _deposit(api, trade.winner) == ("refunded", 0, [("G-04-loser", "award_notice", "paid")])
    assert await _deposit(api, trade.loser) == ("refunded", 0, [("G-04-loser", "award_notice", "paid")])
    assert await _bank_round(api) == []
