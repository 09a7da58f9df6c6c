"""Use cases of refund obligations: what a trade's events (a withdrawal, a bid, a settled lot, a revoked bid)
owe each bidder back, with its legal due date, and the S-01 lights of the obligations and their overdue flags.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from escrow import obligations
from escrow.models import (
    Deposit,
    Forfeiture,
    Obligation,
    RefundInstruction,
)
from escrow.subaccounts import deposit_of, deposits_of_lot, guarantees_of, held_fen
from rules.calendar import WorkingCalendar, local_date

OPEN_OBLIGATION = ("due", "instructed")


# ---------------------------------------------------------------- obligations (trade events)


async def open_obligation(session: AsyncSession, deposit: Deposit) -> Obligation | None:
    """The deposit's open refund obligation, if any (`Obligation.open_key` allows one at a time)."""
    return await session.scalar(select(Obligation).where(Obligation.open_key == f"deposit:{deposit.id}"))


async def _release_guarantees(session: AsyncSession, deposit: Deposit, rule: str, now: datetime) -> int:
    released = 0
    for g in await guarantees_of(session, deposit.id):
        if g.status in ("submitted", "verified"):
            g.status, g.released_at, g.release_rule = "released", now, rule
            released += 1
    return released


async def oblige(
    session: AsyncSession,
    deposit: Deposit,
    rule: str,
    event: str,
    event_on: date,
    cal: WorkingCalendar,
    now: datetime,
    *,
    actor: str = "job:trade",
) -> Obligation | None:
    """A trade event owes the bidder its deposit back: guarantees are released at once, and cash held
    gets one refund obligation with its legal due date (an obligation already open stands)."""
    await _release_guarantees(session, deposit, rule, now)
    existing = await open_obligation(session, deposit)
    if existing is not None:
        return existing
    if deposit.status in ("forfeited", "refunded", "refunding"):
        return None
    if await held_fen(session, deposit) <= 0:
        deposit.hold_reason = f"nothing held; {event} ({rule})"
        return None
    spec = obligations.RULES[rule]
    row = Obligation(
        deposit_id=deposit.id,
        open_key=f"deposit:{deposit.id}",
        rule=rule,
        event=event,
        event_on=event_on,
        due_on=obligations.due_date(rule, event_on, cal),
        interest_rule=spec.interest,
        created_at=now,
        created_by=actor,
    )
    session.add(row)
    deposit.status = "refunding"
    deposit.hold_reason = f"refund due by {row.due_on.isoformat()} ({rule})"
    await session.flush()
    if row.due_on < local_date(now):  # owed late from the start (e.g. after a rejected forfeiture)
        await _flag(session, row, now)
    return row


async def on_withdrawal(
    session: AsyncSession,
    lot_id: uuid.UUID,
    organisation_id: uuid.UUID,
    rule: str,
    event_on: date,
    cal: WorkingCalendar,
    now: datetime,
) -> Obligation | None:
    """A bid withdrawn before the deadline (W-05), or treated as withdrawn for the platform's fault (E-03)."""
    deposit = await deposit_of(session, lot_id, organisation_id)
    if deposit is None:
        return None
    return await oblige(session, deposit, rule, "bid_withdrawn", event_on, cal, now)


async def on_bid(session: AsyncSession, lot_id: uuid.UUID, organisation_id: uuid.UUID, now: datetime) -> None:
    """A bid submitted (again): a withdrawal refund not yet instructed is no longer owed, since the deposit
    backs the new bid; one already instructed stands, and the bidder pays the deposit again."""
    deposit = await deposit_of(session, lot_id, organisation_id)
    if deposit is None:
        return
    open_one = await open_obligation(session, deposit)
    if open_one is not None and open_one.status == "due" and open_one.rule == "W-05":
        open_one.status, open_one.open_key, open_one.closed_at = "superseded", None, now
        open_one.note = "the bidder bid again before the refund was instructed"
        deposit.status = "held" if deposit.received_fen >= deposit.required_fen else "awaiting"
    if deposit.status == "held":
        deposit.hold_reason = "backs a submitted bid; held until the contract (W-14) or another refund event"


async def on_lot_settled(
    session: AsyncSession,
    lot_id: uuid.UUID,
    rule: str,
    event: str,
    event_on: date,
    cal: WorkingCalendar,
    now: datetime,
) -> list[Obligation]:
    """The lot's contract is signed (W-14, G-04-winner), or the lot or tender failed or was terminated
    (T-END, G-04-end): every deposit still held is owed back (a forfeiture proposed stays pending its
    decision)."""
    return await _owe_back(session, await deposits_of_lot(session, lot_id), rule, event, event_on, cal, now)


async def _owe_back(
    session: AsyncSession,
    deposits: Iterable[Deposit],
    rule: str,
    event: str,
    event_on: date,
    cal: WorkingCalendar,
    now: datetime,
) -> list[Obligation]:
    """Oblige the refund of each of `deposits` under `rule`; one with a forfeiture proposed waits for it."""
    out = []
    for deposit in deposits:
        proposal = await session.scalar(
            select(Forfeiture).where(Forfeiture.deposit_id == deposit.id, Forfeiture.status == "proposed")
        )
        if proposal is not None:
            # the supervisor decides first; a rejection owes the deposit back under this event's rule
            proposal.deferred_rule, proposal.deferred_event, proposal.deferred_on = rule, event, event_on
            continue
        row = await oblige(session, deposit, rule, event, event_on, cal, now)
        if row is not None:
            out.append(row)
    return out


async def on_award_notice(
    session: AsyncSession,
    lot_id: uuid.UUID,
    winner_id: uuid.UUID,
    rule: str,
    event_on: date,
    cal: WorkingCalendar,
    now: datetime,
) -> list[Obligation]:
    """The award notice of a procurement lot is out (G-04-loser): every deposit of the lot but the
    winner's is owed back; the winner's waits for the contract (G-04-winner)."""
    losers = [d for d in await deposits_of_lot(session, lot_id) if d.organisation_id != winner_id]
    return await _owe_back(session, losers, rule, "award_notice", event_on, cal, now)


async def on_new_winner(
    session: AsyncSession, lot_id: uuid.UUID, organisation_id: uuid.UUID, now: datetime
) -> int | None:
    """A supplier wins a procurement lot after an earlier award notice owed it its deposit back as an
    unsuccessful supplier (G-04-loser): a re-evaluation ranked it first, or an award was passed on. Its
    deposit now waits for the contract (G-04-winner): a refund still due is superseded (kept on record with
    the reason, never paid) and the deposit is held again. A refund already with the bank or paid stands;
    answers its fen, so that the award shows it and the contract refunds nothing twice. None otherwise."""
    deposit = await deposit_of(session, lot_id, organisation_id)
    if deposit is None:
        return None
    open_one = await open_obligation(session, deposit)
    if open_one is not None and open_one.status == "due" and open_one.event == "award_notice":
        open_one.status, open_one.open_key, open_one.closed_at = "superseded", None, now
        open_one.note = "the supplier became the lot's winner: its deposit is refunded at the contract"
        deposit.status = "held" if deposit.received_fen >= deposit.required_fen else "awaiting"
        deposit.hold_reason = "the winner's deposit: held until the contract (G-04-winner)"
        return None
    refunded = await session.scalar(
        select(func.sum(RefundInstruction.amount_fen))
        .join(Obligation, Obligation.id == RefundInstruction.obligation_id)
        .where(
            Obligation.deposit_id == deposit.id,
            Obligation.event == "award_notice",
            RefundInstruction.status.in_(("sent", "paid")),
        )
    )
    return int(refunded) if refunded else None


async def on_revoked(session: AsyncSession, lot_id: uuid.UUID, organisation_id: uuid.UUID) -> None:
    """A bid revoked at the opening for the bidder's own fault (E-03): the deposit may be kept (W-06) if a
    supervisor approves a forfeiture; until then it is held and refunded with the others."""
    deposit = await deposit_of(session, lot_id, organisation_id)
    if deposit is not None and deposit.status == "held":
        deposit.hold_reason = (
            "bid revoked at the opening (E-03); may be kept (W-06) on a supervisor's approval"
        )


# ---------------------------------------------------------------- supervision lights (S-01)


async def obligations_list(
    session: AsyncSession,
    *,
    tender_id: uuid.UUID | None = None,
    organisation_id: uuid.UUID | None = None,
    status: Iterable[str] | None = None,
) -> list[Obligation]:
    """Obligations, by due date (optionally one tender's, one bidder's, or in some statuses)."""
    query = select(Obligation).order_by(Obligation.due_on, Obligation.created_at)
    if tender_id is not None or organisation_id is not None:
        query = query.join(Deposit, Deposit.id == Obligation.deposit_id)
        if tender_id is not None:
            query = query.where(Deposit.tender_id == tender_id)
        if organisation_id is not None:
            query = query.where(Deposit.organisation_id == organisation_id)
    if status is not None:
        query = query.where(Obligation.status.in_(list(status)))
    return list(await session.scalars(query))


def light_of(obligation: Obligation, cal: WorkingCalendar, today: date) -> str:
    """S-01: green, yellow one working day before it is due, red once overdue and not paid. A refund paid
    late stays red in the record (it was late)."""
    settled = obligation.status in ("paid", "superseded", "forfeited")
    if settled:
        late = obligation.paid_on is not None and obligation.paid_on > obligation.due_on
        return "red" if late else "green"
    return str(obligations.light(obligation.due_on, today, cal, False))


async def flag_overdue(session: AsyncSession, cal: WorkingCalendar, now: datetime) -> int:
    """Mark every open obligation that has gone red (S-01) and tell the audit trail, once each."""
    today = local_date(now)
    flagged = 0
    for row in await session.scalars(
        select(Obligation).where(
            Obligation.status.in_(OPEN_OBLIGATION), Obligation.flagged_at.is_(None), Obligation.due_on < today
        )
    ):
        await _flag(session, row, now)
        flagged += 1
    return flagged


async def _flag(session: AsyncSession, row: Obligation, now: datetime) -> None:
    row.flagged_at = now
    await accounts.record(
        session,
        None,
        "escrow.overdue",
        "refund_obligation",
        row.id,
        now,
        rule="S-01",
        due_on=row.due_on.isoformat(),
        refund_rule=row.rule,
    )
