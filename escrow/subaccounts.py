"""Use cases of a deposit's holding (保证金): the fixed accounts of the escrow, the virtual sub-accounts (虚拟子账号)
opened at registration, guarantees lodged instead of cash (保函 / 保证保险), eligibility at the bid deadline
(L-05), and what bidders and auditors read of a deposit.

Every movement of money is a journal entry (`escrow/journal.py`), keyed so that repeating the request —
a re-imported statement, a retried job, a second click — answers the first entry and moves nothing.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from escrow import bankfiles, eligibility, journal, ledger
from escrow.journal import BANK
from escrow.models import (
    BankLine,
    Deposit,
    Eligibility,
    Forfeiture,
    Guarantee,
    JournalEntry,
    Obligation,
    Posting,
    RefundInstruction,
)
from escrow.schemas import AccountEntry
from rules.calendar import local_date
from storage.db import upsert_ignore
from storage.problems import (
    Conflict,
    NotFound,
    ValidationProblem,
    field_error,
)

_Decided = TypeVar("_Decided", Guarantee, Forfeiture)

SUSPENSE = journal.SUSPENSE
INTEREST_EXPENSE = "interest:expense"
INTEREST_INCOME = journal.INTEREST_INCOME
FORFEITED = "forfeited"
_FIXED_ACCOUNTS = (
    (BANK, "bank"),
    (SUSPENSE, "suspense"),
    (INTEREST_EXPENSE, "interest_expense"),
    (INTEREST_INCOME, "interest_income"),
    (FORFEITED, "forfeited"),
)

GUARANTEE_KINDS = frozenset({"bank_guarantee", "guarantee_insurance"})


def actor_of(principal: Principal | None, job: str = "") -> str:
    """Who a journal entry names as its author: the signed-in user, or the job that acted."""
    return f"user:{principal.user_id}" if principal is not None else f"job:{job or 'escrow'}"


async def ensure_fixed_accounts(session: AsyncSession, now: datetime) -> None:
    """The escrow bank account, suspense, interest and forfeited accounts (opened once)."""
    for code, kind in _FIXED_ACCOUNTS:
        await journal.ensure_account(session, code, kind, now)


# ---------------------------------------------------------------- sub-accounts (虚拟子账号)


def _luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def virtual_number(prefix: str) -> str:
    """A fresh virtual sub-account number: the escrow account's prefix, 12 random digits and a Luhn check
    digit, so a mistyped number is caught before the bank's line reaches suspense."""
    body = prefix + "".join(secrets.choice("0123456789") for _ in range(12))
    return body + _luhn_digit(body)


def valid_virtual_number(number: str) -> bool:
    """Whether `number` carries a correct check digit."""
    return number.isdigit() and len(number) > 1 and _luhn_digit(number[:-1]) == number[-1]


@dataclass(frozen=True)
class LotDeposit:
    """What the trade tells escrow about a lot when a bidder registers for it."""

    lot_id: uuid.UUID
    label: str  # tender code / lot number / bidder credit code, readable in account codes
    required_fen: int


async def open_deposits(
    session: AsyncSession,
    tender_id: uuid.UUID,
    organisation_id: uuid.UUID,
    lots: Sequence[LotDeposit],
    virtual_prefix: str,
    now: datetime,
) -> list[Deposit]:
    """Open (once) the bidder's deposit sub-account for each lot, each with its own virtual number."""
    await ensure_fixed_accounts(session, now)
    out = []
    for lot in lots:
        existing = await session.scalar(
            select(Deposit).where(Deposit.lot_id == lot.lot_id, Deposit.organisation_id == organisation_id)
        )
        if existing is not None:
            out.append(existing)
            continue
        code = f"deposit:{lot.label}"
        for _attempt in range(5):
            number = virtual_number(virtual_prefix)
            taken = await session.scalar(select(Deposit.id).where(Deposit.virtual_number == number))
            if taken is None:
                break
        await journal.ensure_account(
            session,
            code,
            "deposit",
            now,
            tender_id=tender_id,
            lot_id=lot.lot_id,
            organisation_id=organisation_id,
            virtual_number=number,
        )
        row = {
            "id": uuid.uuid4(),
            "account_code": code,
            "virtual_number": number,
            "tender_id": tender_id,
            "lot_id": lot.lot_id,
            "organisation_id": organisation_id,
            "required_fen": lot.required_fen,
            "opened_at": now,
            "received_fen": 0,
            "status": "awaiting" if lot.required_fen > 0 else "waived",
            "hold_reason": "awaiting the deposit" if lot.required_fen > 0 else "no deposit required (M-05)",
        }
        await session.execute(upsert_ignore(session, Deposit, row))
        deposit = await session.scalar(
            select(Deposit).where(Deposit.lot_id == lot.lot_id, Deposit.organisation_id == organisation_id)
        )
        assert deposit is not None
        out.append(deposit)
    return out


async def deposit_of(session: AsyncSession, lot_id: uuid.UUID, organisation_id: uuid.UUID) -> Deposit | None:
    """The bidder's deposit position for a lot, if it registered."""
    return await session.scalar(
        select(Deposit).where(Deposit.lot_id == lot_id, Deposit.organisation_id == organisation_id)
    )


async def get_deposit(session: AsyncSession, deposit_id: uuid.UUID, *, lock: bool = False) -> Deposit:
    """One deposit position."""
    query = select(Deposit).where(Deposit.id == deposit_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = await session.scalar(query)
    if row is None:
        raise NotFound("No such deposit.")
    return row


async def held_fen(session: AsyncSession, deposit: Deposit) -> int:
    """What the centre owes the bidder on this deposit now (posted, in the account's own sense)."""
    bal = await journal.balance(session, deposit.account_code)
    return -bal.posted


async def available_fen(session: AsyncSession, deposit: Deposit) -> int:
    """What backs a bid: held, less any refund already instructed to the bank (pending)."""
    bal = await journal.balance(session, deposit.account_code)
    return -(bal.posted + bal.pending)


def bank_problem(exc: bankfiles.BankFileError) -> ValidationProblem:
    """A bank file refused, as the problem the centre sees: where in the file, and what is wrong."""
    where = exc.field or "file"
    if exc.line:
        where = f"line {exc.line}: {where}"
    return ValidationProblem(
        f"The bank file was refused: {exc.message}",
        errors=[field_error(exc.field or "file", exc.message)],
        code=exc.code,
        line=exc.line,
        where=where,
    )


# ---------------------------------------------------------------- guarantees (保函 / 保证保险)


async def submit_guarantee(
    session: AsyncSession,
    actor: Principal,
    deposit_id: uuid.UUID,
    *,
    kind: str,
    issuer: str,
    number: str,
    amount_fen: int,
    valid_from: date,
    valid_until: date,
    now: datetime,
) -> Guarantee:
    """A bidder lodges a guarantee for its deposit; it counts once a centre officer has verified it."""
    deposit = await get_deposit(session, deposit_id)
    if deposit.organisation_id != actor.organisation_id:
        raise NotFound("No such deposit.")
    errors = []
    if kind not in GUARANTEE_KINDS:
        errors.append(field_error("kind", "bank_guarantee or guarantee_insurance"))
    if not issuer.strip():
        errors.append(field_error("issuer", "required"))
    if not number.strip():
        errors.append(field_error("number", "required"))
    if amount_fen <= 0:
        errors.append(field_error("amount_fen", "must be positive"))
    if valid_until < valid_from:
        errors.append(field_error("valid_until", "before valid_from"))
    if errors:
        raise ValidationProblem("The guarantee is incomplete.", errors=errors)
    if deposit.status not in ("awaiting", "held", "waived"):
        raise Conflict(f"The deposit is {deposit.status}; no guarantee can be lodged now.")
    clash = await session.scalar(
        select(Guarantee.id).where(Guarantee.issuer == issuer.strip(), Guarantee.number == number.strip())
    )
    if clash is not None:
        raise Conflict(
            "A guarantee with this issuer and number is already lodged.",
            errors=[field_error("number", "already lodged")],
        )
    row = Guarantee(
        deposit_id=deposit.id,
        kind=kind,
        issuer=issuer.strip(),
        number=number.strip(),
        amount_fen=amount_fen,
        valid_from=valid_from,
        valid_until=valid_until,
        submitted_at=now,
        submitted_by=actor.user_id,
    )
    session.add(row)
    await session.flush()
    await accounts.record(
        session, actor, "escrow.guarantee.submit", "guarantee", row.id, now, sealed_tender=deposit.tender_id
    )
    return row


async def awaiting_decision(
    session: AsyncSession, model: type[_Decided], row_id: uuid.UUID, waiting: str, note: str, ask: str
) -> _Decided:
    """The row to decide, locked: it exists, still waits in `waiting`, and the decision has its grounds."""
    row = await session.get(model, row_id, with_for_update=True)
    noun = model.__tablename__.rstrip("s").replace("_", " ")
    if row is None:
        raise NotFound(f"No such {noun}.")
    if row.status != waiting:
        raise Conflict(f"This {noun} is already {row.status}.")
    if not note.strip():
        raise ValidationProblem(ask, errors=[field_error("note", "required")])
    return row


async def decide_guarantee(
    session: AsyncSession, actor: Principal, guarantee_id: uuid.UUID, verified: bool, note: str, now: datetime
) -> Guarantee:
    """A centre officer records the issuer's confirmation (verified) or its refusal (rejected)."""
    row = await awaiting_decision(
        session,
        Guarantee,
        guarantee_id,
        "submitted",
        note,
        "Record how the guarantee was checked with its issuer.",
    )
    row.status = "verified" if verified else "rejected"
    row.decided_by, row.decided_at, row.decision_note = actor.user_id, now, note.strip()
    deposit = await get_deposit(session, row.deposit_id)
    await accounts.record(
        session,
        actor,
        f"escrow.guarantee.{row.status}",
        "guarantee",
        row.id,
        now,
        sealed_tender=deposit.tender_id,
    )
    return row


async def guarantees_of(session: AsyncSession, deposit_id: uuid.UUID) -> list[Guarantee]:
    """The guarantees lodged for a deposit."""
    return list(
        await session.scalars(
            select(Guarantee).where(Guarantee.deposit_id == deposit_id).order_by(Guarantee.submitted_at)
        )
    )


# ---------------------------------------------------------------- eligibility (at the deadline, L-05)


async def check_eligibility(
    session: AsyncSession,
    lot_id: uuid.UUID,
    organisation_id: uuid.UUID,
    moment: str,
    now: datetime,
    *,
    as_of: datetime | None = None,
    cover_through: date | None = None,
) -> Eligibility | None:
    """Whether the bidder's deposit for this lot (cash held, or verified guarantees in force through
    `cover_through`) covered what the lot requires at the instant `as_of` (now by default), recorded with
    the time it was asked and the evidence escrow found (`escrow.eligibility`); the first answer for a
    moment stands. The answer is computed from the journal as it stood at `as_of`, so a late caller gets
    the same answer an early one would have."""
    deposit = await deposit_of(session, lot_id, organisation_id)
    if deposit is None:
        return None
    earlier = await session.scalar(
        select(Eligibility).where(Eligibility.deposit_id == deposit.id, Eligibility.moment == moment)
    )
    if earlier is not None:
        return earlier
    instant = as_of or now
    day = local_date(instant)
    found = eligibility.answer(
        await _position_at(session, deposit, instant),
        deadline=instant,
        deadline_day=day,
        cover_through=cover_through or day,
    )
    row = Eligibility(
        deposit_id=deposit.id,
        moment=moment,
        checked_at=now,
        eligible=found.eligible,
        cash_fen=found.cash_fen,
        guarantee_fen=found.guarantee_fen,
        required_fen=deposit.required_fen,
        detail=found.detail,
        as_of=instant,
        cover_through=found.cover_through,
        evidence=eligibility.evidence(found),
    )
    session.add(row)
    await session.flush()
    return row


async def _position_at(session: AsyncSession, deposit: Deposit, instant: datetime) -> eligibility.Position:
    """What the deposit's sub-account held at `instant` (from the journal entries before it), every line
    credited to it, and its guarantees."""
    rows = await session.execute(
        select(Posting.amount_fen, JournalEntry.phase, JournalEntry.resolves)
        .join(JournalEntry, JournalEntry.sequence == Posting.sequence)
        .where(Posting.account_code == deposit.account_code, JournalEntry.at < instant)
    )
    posted = pending = 0
    for amount, phase, resolves in rows:
        effect = ledger.effect(phase, resolves is not None) or (0, 0)
        posted += amount * effect[0]
        pending += amount * effect[1]
    lines = [line for line in await lines_of(session, deposit.id) if line.resolved_at is not None]
    return eligibility.Position(
        required_fen=deposit.required_fen,
        # a deposit account is credit-normal: what is held is minus its signed balance; a refund pending
        # to the bank debits it, so it is what is on its way back
        held_fen=-posted,
        returning_fen=pending,
        payments=tuple(
            eligibility.Payment(line.reference, line.amount_fen, line.resolved_at)
            for line in sorted(lines, key=lambda x: (x.resolved_at, x.reference))
            if line.resolved_at is not None
        ),
        guarantees=tuple(
            eligibility.GuaranteeFact(
                number=g.number,
                issuer=g.issuer,
                kind=g.kind,
                amount_fen=g.amount_fen,
                valid_from=g.valid_from,
                valid_until=g.valid_until,
                status=g.status,
                decided_at=g.decided_at,
                released_at=g.released_at,
                verified=g.decided_at is not None and g.status != "rejected",
            )
            for g in await guarantees_of(session, deposit.id)
        ),
    )


async def deadline_answer(session: AsyncSession, deposit: Deposit) -> Eligibility | None:
    """The answer escrow gave the trade at the bid deadline for this deposit, once it was asked."""
    return await session.scalar(
        select(Eligibility).where(Eligibility.deposit_id == deposit.id, Eligibility.moment == "bid_deadline")
    )


# ---------------------------------------------------------------- bank lines


async def lines_of(session: AsyncSession, deposit_id: uuid.UUID) -> list[BankLine]:
    """The bank lines credited to a deposit, in the order the bank booked them."""
    return list(
        await session.scalars(
            select(BankLine)
            .where(BankLine.deposit_id == deposit_id)
            .order_by(BankLine.booked_on, BankLine.reference)
        )
    )


# ---------------------------------------------------------------- reading (bidders, auditors)


async def my_deposits(session: AsyncSession, actor: Principal) -> list[Deposit]:
    """The caller's organisation's deposit positions."""
    return list(
        await session.scalars(
            select(Deposit)
            .where(Deposit.organisation_id == actor.organisation_id)
            .order_by(Deposit.opened_at)
        )
    )


async def entries_of_account(session: AsyncSession, code: str) -> list[AccountEntry]:
    """Every journal entry that posts to an account, with that account's leg, in sequence order."""
    rows = await session.execute(
        select(
            JournalEntry.sequence,
            JournalEntry.reason,
            JournalEntry.phase,
            JournalEntry.resolves,
            JournalEntry.at,
            JournalEntry.actor,
            JournalEntry.hash,
            Posting.amount_fen,
        )
        .join(Posting, Posting.sequence == JournalEntry.sequence)
        .where(Posting.account_code == code)
        .order_by(JournalEntry.sequence)
    )
    return [
        {
            "sequence": seq,
            "reason": reason,
            "phase": phase,
            "resolves": resolves,
            "at": at,
            "actor": actor,
            "hash": link,
            "amount_fen": amount,
        }
        for seq, reason, phase, resolves, at, actor, link, amount in rows
    ]


async def deposit_life(session: AsyncSession, deposit_id: uuid.UUID) -> dict[str, Any]:
    """A deposit from arrival to refund: bank lines, guarantees, eligibility, obligations, instructions,
    forfeitures and every journal entry on its account, in order."""
    deposit = await get_deposit(session, deposit_id)
    entries = await entries_of_account(session, deposit.account_code)
    obligations_rows = list(
        await session.scalars(
            select(Obligation).where(Obligation.deposit_id == deposit.id).order_by(Obligation.created_at)
        )
    )
    instructions = (
        list(
            await session.scalars(
                select(RefundInstruction)
                .where(RefundInstruction.obligation_id.in_([o.id for o in obligations_rows]))
                .order_by(RefundInstruction.pending_sequence)
            )
        )
        if obligations_rows
        else []
    )
    return {
        "deposit": deposit,
        "lines": await lines_of(session, deposit.id),
        "guarantees": await guarantees_of(session, deposit.id),
        "eligibility": list(
            await session.scalars(select(Eligibility).where(Eligibility.deposit_id == deposit.id))
        ),
        "obligations": obligations_rows,
        "instructions": instructions,
        "forfeitures": list(
            await session.scalars(select(Forfeiture).where(Forfeiture.deposit_id == deposit.id))
        ),
        "entries": entries,
        "held_fen": await held_fen(session, deposit),
    }


async def deposits_of_lot(session: AsyncSession, lot_id: uuid.UUID) -> list[Deposit]:
    """Every deposit position of a lot."""
    return list(
        await session.scalars(select(Deposit).where(Deposit.lot_id == lot_id).order_by(Deposit.opened_at))
    )


async def deposit_keys_of_tenders(
    session: AsyncSession, tender_ids: Iterable[uuid.UUID]
) -> list[tuple[uuid.UUID, str]]:
    """(id, sub-account code) of every deposit of the given tenders."""
    ids = list(tender_ids)
    if not ids:
        return []
    rows = await session.execute(select(Deposit.id, Deposit.account_code).where(Deposit.tender_id.in_(ids)))
    return [(row[0], row[1]) for row in rows]


async def deposits_of_tender(session: AsyncSession, tender_id: uuid.UUID) -> list[Deposit]:
    """Every deposit position of a tender."""
    return list(
        await session.scalars(
            select(Deposit).where(Deposit.tender_id == tender_id).order_by(Deposit.opened_at)
        )
    )
