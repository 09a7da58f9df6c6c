"""Use cases of the deposits the centre holds (保证金): sub-accounts opened at registration, bank statements
and notifications matched to them exactly once, suspense, guarantees, eligibility at the deadline, refund
obligations created by trade events with their legal due dates, refund batches and the bank's results,
forfeiture with a supervisor's approval, and the checks an auditor runs.

Every movement of money is a journal entry (`escrow/journal.py`), keyed so that repeating the request —
a re-imported statement, a retried job, a second click — answers the first entry and moves nothing.
A refund is two-phase: pending when the instruction is made, posted on the bank's confirmation, voided on
its failure; an obligation has at most one live instruction (`RefundInstruction.live_key` is unique), so
it cannot be paid twice whatever crashes in between.

Interest (W-14, M-01) runs from the day each payment arrived to the day before the batch's requested
execution date (the day the bank is asked to pay); rates come from the centre's dated tables (M-02).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from bidding import signals
from escrow import bankfiles, conflicts, eligibility, heads, interest, journal, ledger, obligations, published
from escrow.journal import BANK
from escrow.models import (
    BankLine,
    BankLineConflict,
    BankStatement,
    Deposit,
    Eligibility,
    Forfeiture,
    Guarantee,
    InterestRate,
    JournalEntry,
    Obligation,
    PayeeChange,
    Posting,
    RefundBatch,
    RefundInstruction,
)
from escrow.schemas import AccountEntry, StatementSummary
from rules.calendar import WorkingCalendar, local_date
from storage.db import upsert_ignore
from storage.faults import crash_point
from storage.objects import ObjectStore
from storage.problems import (
    Conflict,
    NotFound,
    RuleViolation,
    Unauthenticated,
    ValidationProblem,
    field_error,
)
from storage.settings import Settings
from storage.signing import LogSigner

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
OPEN_OBLIGATION = ("due", "instructed")
RATE_KINDS = frozenset({"deposit", "lpr"})
# pain.002 statuses that accept a payment without settling it: a later report still may reject it
NOT_FINAL = frozenset({"ACSP", "ACCP", "ACWC"})


def _actor(principal: Principal | None, job: str = "") -> str:
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


# ---------------------------------------------------------------- rates (M-02, M-03)


async def rate_table(session: AsyncSession, kind: str) -> interest.RateTable:
    """The dated table of one kind of rate, as the centre maintains it."""
    rows = await session.scalars(select(InterestRate).where(InterestRate.kind == kind))
    return interest.RateTable(interest.Rate(r.effective_from, Decimal(r.annual_percent)) for r in rows)


async def set_rate(
    session: AsyncSession,
    actor: Principal | None,
    kind: str,
    effective_from: date,
    annual_percent: str,
    source: str,
    now: datetime,
) -> InterestRate:
    """Add a rate to a dated table; a rate already in force for that day is never rewritten (a change is
    a new row from a later date), so past interest always recomputes to the same fen."""
    if kind not in RATE_KINDS:
        raise ValidationProblem(
            f"Unknown rate kind {kind!r}.", errors=[field_error("kind", "deposit or lpr")]
        )
    try:
        value = Decimal(annual_percent)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or value > 100 or value.as_tuple().exponent < -6:  # type: ignore[operator]
        raise ValidationProblem(
            "annual_percent must be a decimal percentage between 0 and 100 (e.g. 0.35).",
            errors=[field_error("annual_percent", "not a percentage")],
        )
    if not source.strip():
        raise ValidationProblem("Name the source of the rate.", errors=[field_error("source", "required")])
    existing = await session.scalar(
        select(InterestRate).where(InterestRate.kind == kind, InterestRate.effective_from == effective_from)
    )
    if existing is not None:
        if Decimal(existing.annual_percent) == value:
            return existing
        raise Conflict(
            f"A {kind} rate from {effective_from} is already recorded ({existing.annual_percent}%); "
            "add a new rate from a later date instead.",
            errors=[field_error("effective_from", "already has a rate")],
        )
    row = InterestRate(
        kind=kind,
        effective_from=effective_from,
        annual_percent=str(value),
        source=source.strip(),
        set_by=actor.user_id if actor else None,
        set_at=now,
    )
    session.add(row)
    await session.flush()
    await accounts.record(session, actor, "escrow.rate", "interest_rate", row.id, now, kind=kind)
    return row


async def list_rates(session: AsyncSession) -> list[InterestRate]:
    """Every rate, by kind and date."""
    return list(
        await session.scalars(select(InterestRate).order_by(InterestRate.kind, InterestRate.effective_from))
    )


# ---------------------------------------------------------------- bank intake


@dataclass
class ImportResult:
    """What one import did: lines new and already known, and where each new line went."""

    statement_id: uuid.UUID
    replay: bool
    lines: int
    new_lines: int = 0
    already_known: int = 0
    conflicting: int = 0  # known references the bank now reports otherwise: each kept as a conflict
    matched: int = 0
    suspense: int = 0
    interest: int = 0
    refunds_confirmed: int = 0
    unexplained: int = 0
    conflicts: list[str] = field(default_factory=list)

    def summary(self) -> StatementSummary:
        """The counts, as stored with the statement and answered to the caller."""
        return {
            "lines": self.lines,
            "new_lines": self.new_lines,
            "already_known": self.already_known,
            "conflicting": self.conflicting,
            "matched": self.matched,
            "suspense": self.suspense,
            "interest": self.interest,
            "refunds_confirmed": self.refunds_confirmed,
            "unexplained": self.unexplained,
            "conflicts": self.conflicts,
        }


def _bank_problem(exc: bankfiles.BankFileError) -> ValidationProblem:
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


async def import_statement(
    session: AsyncSession,
    store: ObjectStore,
    actor: Principal | None,
    data: bytes,
    fmt: str,
    now: datetime,
    *,
    signer: LogSigner,
    progress: Callable[[int, int], object] | None = None,
) -> ImportResult:
    """Import a statement file: each line the bank has not told us of before is matched to its
    sub-account (exact amount), or goes to suspense; interest credited by the bank and our own refunds
    coming back as debits are recognised; a known reference the bank now reports otherwise is a conflict
    (`escrow/conflicts.py`). Importing the same file again changes nothing. The ledger's head is signed
    when the batch moved money. `progress` is told (lines taken, lines) after each line."""
    try:
        # parsing a statement of many thousand lines is CPU work: off the event loop
        statement = await asyncio.to_thread(bankfiles.parse_statement, data, fmt)
    except bankfiles.BankFileError as exc:
        raise _bank_problem(exc) from exc
    digest = hashlib.sha256(data).hexdigest()
    earlier = await session.scalar(select(BankStatement).where(BankStatement.sha256 == digest))
    if earlier is not None:
        return _replayed(earlier)
    key = f"escrow/statements/{digest}.{'xml' if fmt == 'camt053' else fmt}"
    await store.put_bytes(key, data)
    return await _take_lines(
        session,
        actor,
        fmt,
        digest,
        key,
        statement.lines,
        now,
        signer,
        bank_statement_id=statement.statement_id,
        account=statement.account,
        progress=progress,
    )


def _replayed(row: BankStatement) -> ImportResult:
    s = row.summary
    return ImportResult(
        statement_id=row.id,
        replay=True,
        lines=row.lines,
        new_lines=0,
        already_known=row.lines - int(s.get("conflicting", 0)),
        conflicting=int(s.get("conflicting", 0)),
        conflicts=list(s.get("conflicts", [])),
    )


async def notify(
    session: AsyncSession,
    store: ObjectStore,
    body: bytes,
    signature: str,
    settings: Settings,
    now: datetime,
    *,
    signer: LogSigner,
) -> ImportResult:
    """One line from the bank's signed real-time notification (到账通知), kept in the object store as the
    bank sent it; the same line arriving later in the day's statement is recognised by its reference and
    changes nothing (or, if the bank then says otherwise, is a conflict)."""
    if not settings.bank_notify_secret:
        raise NotFound("Bank notifications are not configured (GGZY_BANK_NOTIFY_SECRET).")
    try:
        line = bankfiles.verify_notification(body, signature, settings.bank_notify_secret.encode(), now)
    except bankfiles.BankFileError as exc:
        if exc.code in ("notification.header", "notification.signature", "notification.stale"):
            raise Unauthenticated(f"The bank's signature was refused: {exc.message}", code=exc.code) from exc
        raise _bank_problem(exc) from exc
    digest = hashlib.sha256(body).hexdigest()
    earlier = await session.scalar(select(BankStatement).where(BankStatement.sha256 == digest))
    if earlier is not None:
        return _replayed(earlier)
    key = f"escrow/notifications/{digest}.json"
    await store.put_bytes(key, body)
    return await _take_lines(session, None, "notification", digest, key, [line], now, signer)


async def _take_lines(
    session: AsyncSession,
    actor: Principal | None,
    fmt: str,
    digest: str,
    object_key: str | None,
    lines: Sequence[bankfiles.StatementLine],
    now: datetime,
    signer: LogSigner,
    *,
    bank_statement_id: str | None = None,
    account: str | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> ImportResult:
    await ensure_fixed_accounts(session, now)
    statement_id = uuid.uuid4()
    inserted = await session.execute(
        upsert_ignore(
            session,
            BankStatement,
            {
                "id": statement_id,
                "fmt": fmt,
                "bank_statement_id": bank_statement_id,
                "account": account,
                "sha256": digest,
                "object_key": object_key,
                "imported_at": now,
                "imported_by": _actor(actor, "bank-notification"),
                "lines": len(lines),
                "new_lines": 0,
                "summary": {},
            },
        )
    )
    if getattr(inserted, "rowcount", 1) == 0:  # a concurrent import of the same file won
        earlier = await session.scalar(select(BankStatement).where(BankStatement.sha256 == digest))
        assert earlier is not None
        return _replayed(earlier)
    result = ImportResult(statement_id=statement_id, replay=False, lines=len(lines))
    who = _actor(actor, "bank-notification")
    touched_tenders: set[uuid.UUID] = set()
    for taken, raw in enumerate(lines, 1):
        if progress is not None:
            progress(taken - 1, len(lines))
        line_id = uuid.uuid4()
        fresh = await session.execute(
            upsert_ignore(
                session,
                BankLine,
                {
                    "id": line_id,
                    "reference": raw.reference,
                    "statement_id": statement_id,
                    "direction": str(raw.direction),
                    "kind": str(raw.kind),
                    "amount_fen": raw.amount_fen,
                    "booked_on": raw.booked_on,
                    "value_on": raw.value_on,
                    "payer_name": raw.payer_name or None,
                    "payer_account": raw.payer_account or None,
                    "payer_bank": raw.payer_bank or None,
                    "credited_account": raw.credited_account or None,
                    "remittance": raw.remittance or None,
                    "end_to_end_id": raw.end_to_end_id or None,
                    "status": "new",
                },
            )
        )
        if getattr(fresh, "rowcount", 1) == 0:
            known = await session.scalar(select(BankLine).where(BankLine.reference == raw.reference))
            assert known is not None
            differs = await conflicts.record(session, known, raw, statement_id, now)
            if differs is None:
                result.already_known += 1
            else:
                result.conflicting += 1
                result.conflicts.append(differs)
            continue
        line = await session.get(BankLine, line_id)
        assert line is not None
        result.new_lines += 1
        tender = await _place_line(session, line, who, now, result)
        if tender is not None:
            touched_tenders.add(tender)
    statement = await session.get(BankStatement, statement_id)
    assert statement is not None
    statement.new_lines = result.new_lines
    statement.summary = dict(result.summary())
    for tender_id in touched_tenders:
        await _same_payer_signals(session, tender_id, now)
    await published.seal(session, signer, now, fmt if fmt == "notification" else "statement")
    await accounts.record(
        session, actor, "escrow.import", "bank_statement", statement_id, now, fmt=fmt, **result.summary()
    )
    return result


def payer_of(line: BankLine) -> ledger.Party:
    """The bank line's payer as the hashed entries that take it in name it."""
    return ledger.Party("payer", line.payer_account or "", line.payer_name or "", line.payer_bank or "")


async def _place_line(
    session: AsyncSession, line: BankLine, who: str, now: datetime, result: ImportResult
) -> uuid.UUID | None:
    """Post one new bank line where it belongs; answers the tender whose deposit it matched, if any."""
    context = {"bank_line": str(line.id), "reference": line.reference}
    if line.direction == "debit":
        instruction = (
            await session.scalar(
                select(RefundInstruction)
                .where(RefundInstruction.end_to_end_id == line.end_to_end_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            if line.end_to_end_id
            else None
        )
        if instruction is None:
            line.status = "unexplained"
            line.note = "a debit the centre did not instruct; reconcile with the bank"
            result.unexplained += 1
            return None
        line.status = "refund"
        if instruction.status == "sent":
            await _settle_instruction(
                session, instruction, True, "", line.reference, line.booked_on, who, now
            )
            result.refunds_confirmed += 1
        elif instruction.status == "failed":
            result.conflicts.append(
                f"{line.reference}: the bank debited {instruction.end_to_end_id}, which it had reported failed"
            )
            line.note = "debit for an instruction reported failed: investigate before any retry is paid"
        return None
    if line.kind == "interest":
        posted = await journal.post(
            session,
            ledger.EntryDraft(
                "interest_received",
                (ledger.Posting(BANK, line.amount_fen), ledger.Posting(INTEREST_INCOME, -line.amount_fen)),
                f"line:{line.id}",
                context,
                who,
            ),
            now,
        )
        line.status, line.entry_sequence = "interest", posted.entry.sequence
        result.interest += 1
        return None
    deposit = (
        await session.scalar(
            select(Deposit).where(Deposit.virtual_number == line.credited_account).with_for_update()
        )
        if line.credited_account
        else None
    )
    # a deposit is expected while nothing is held: before the first payment, or again after a refund
    # (a bidder that withdrew, was refunded, and bids anew pays again) — but never once the trade asked at
    # the bid deadline: money arriving after it backs no bid (W-19) and goes back to its payer
    deadline = await _deadline_answer(session, deposit) if deposit is not None else None
    expected = (
        deposit is not None
        and deadline is None
        and deposit.status in ("awaiting", "refunded")
        and line.amount_fen == deposit.required_fen
        and await held_fen(session, deposit) == 0
    )
    if deposit is None or not expected:
        why = _why_suspense(line, deposit, deadline)
        posted = await journal.post(
            session,
            ledger.EntryDraft(
                "suspense_received",
                (ledger.Posting(BANK, line.amount_fen), ledger.Posting(SUSPENSE, -line.amount_fen)),
                f"line:{line.id}",
                context,
                who,
                payer_of(line),
            ),
            now,
        )
        line.status, line.entry_sequence, line.note = "suspense", posted.entry.sequence, why
        result.suspense += 1
        return None
    await _credit_deposit(session, deposit, line, "deposit_received", BANK, who, now)
    result.matched += 1
    return deposit.tender_id


def _why_suspense(line: BankLine, deposit: Deposit | None, deadline: Eligibility | None) -> str:
    """Why a credit line is not taken in as a deposit, for the officer who matches or returns it."""
    if deposit is None:
        if line.credited_account and not valid_virtual_number(line.credited_account):
            return "no sub-account has this number; its check digit fails (mistyped?)"
        return "no sub-account has this number"
    if deadline is not None:
        rejected = (
            "" if deadline.eligible else " (the bid is rejected under W-19: no deposit at the deadline)"
        )
        return f"arrived after the bid deadline{rejected}; it backs no bid: return it to the payer"
    if line.amount_fen != deposit.required_fen:
        return f"{line.amount_fen} fen received where {deposit.required_fen} fen are due"
    return f"the deposit is already {deposit.status}; a second payment is not expected"


async def _credit_deposit(
    session: AsyncSession,
    deposit: Deposit,
    line: BankLine,
    reason: str,
    source: str,
    who: str,
    now: datetime,
) -> None:
    posted = await journal.post(
        session,
        ledger.EntryDraft(
            reason,
            (ledger.Posting(source, line.amount_fen), ledger.Posting(deposit.account_code, -line.amount_fen)),
            f"{'line' if reason == 'deposit_received' else 'match'}:{line.id}",
            {
                "bank_line": str(line.id),
                "reference": line.reference,
                "deposit": str(deposit.id),
                "tender": str(deposit.tender_id),
                "lot": str(deposit.lot_id),
                "bidder": str(deposit.organisation_id),
            },
            who,
            payer_of(line),
        ),
        now,
    )
    line.status, line.deposit_id = "matched", deposit.id
    line.entry_sequence = posted.entry.sequence
    line.resolved_at = now
    deposit.received_fen += line.amount_fen
    if deposit.first_arrived_on is None:
        deposit.first_arrived_on = line.value_on or line.booked_on
    if deposit.payer_account is None:
        deposit.payer_name, deposit.payer_account = line.payer_name, line.payer_account
        deposit.payer_bank = line.payer_bank
    if deposit.status in ("awaiting", "refunded") and deposit.received_fen >= deposit.required_fen:
        deposit.status = "held"
        deposit.hold_reason = "held for the tender until a refund or forfeiture event"


async def _same_payer_signals(session: AsyncSession, tender_id: uuid.UUID, now: datetime) -> None:
    """W-18: deposits of different bidders in one tender paid from the same account."""

    rows = (
        await session.execute(
            select(Deposit.payer_account, Deposit.organisation_id).where(
                Deposit.tender_id == tender_id, Deposit.payer_account.is_not(None)
            )
        )
    ).all()
    by_payer: dict[str, set[uuid.UUID]] = {}
    for payer, org in rows:
        if payer:
            by_payer.setdefault(payer, set()).add(org)
    for payer, orgs in sorted(by_payer.items()):
        if len(orgs) > 1:
            # named by credit code, as every W-18 signal names its bidders
            codes = [(await accounts.get_organisation(session, org)).credit_code for org in orgs]
            await signals.record_signal(
                session,
                tender_id,
                kind="deposit_same_payer",
                bidders=sorted(codes),
                evidence=f"deposits of {len(orgs)} bidders were paid from bank account {payer}",
                value=payer,
                now=now,
            )


async def match_suspense(
    session: AsyncSession,
    actor: Principal,
    line_id: uuid.UUID,
    deposit_id: uuid.UUID,
    note: str,
    now: datetime,
    *,
    signer: LogSigner,
) -> BankLine:
    """A centre officer matches a suspense line to a deposit sub-account (any amount: eligibility compares
    what is held with what is required)."""
    line = await _suspense_line(session, line_id)
    deposit = await get_deposit(session, deposit_id, lock=True)
    if deposit.status in ("forfeited", "waived"):
        raise Conflict(f"The deposit is {deposit.status}; a line can no longer be matched to it.")
    if not note.strip():
        raise ValidationProblem(
            "Say why the line belongs to this deposit.", errors=[field_error("note", "required")]
        )
    await _credit_deposit(session, deposit, line, "suspense_matched", SUSPENSE, _actor(actor), now)
    line.resolved_by, line.note = _actor(actor), note.strip()
    await published.seal(session, signer, now, "suspense_match")
    await accounts.record(
        session,
        actor,
        "escrow.suspense.match",
        "bank_line",
        line.id,
        now,
        deposit=deposit.id,
        sealed_tender=deposit.tender_id,
    )
    await _same_payer_signals(session, deposit.tender_id, now)
    return line


async def return_suspense(
    session: AsyncSession,
    actor: Principal,
    line_id: uuid.UUID,
    note: str,
    cal: WorkingCalendar,
    now: datetime,
) -> Obligation:
    """A centre officer sends a suspense line back to the account it came from: an obligation paid by the
    next refund batch like any refund."""
    line = await _suspense_line(session, line_id)
    if not line.payer_account:
        raise Conflict("The bank line names no paying account to return the money to.")
    if not note.strip():
        raise ValidationProblem("Say why the line is returned.", errors=[field_error("note", "required")])
    line.status, line.resolved_by, line.resolved_at, line.note = "returning", _actor(actor), now, note.strip()
    today = local_date(now)
    row = Obligation(
        line_id=line.id,
        open_key=f"line:{line.id}",
        rule="SUSPENSE",
        event="suspense_return",
        event_on=today,
        due_on=obligations.due_date("SUSPENSE", today, cal),
        interest_rule="none",
        created_at=now,
        created_by=_actor(actor),
    )
    session.add(row)
    await session.flush()
    await accounts.record(session, actor, "escrow.suspense.return", "bank_line", line.id, now)
    return row


async def _suspense_line(session: AsyncSession, line_id: uuid.UUID) -> BankLine:
    line = await session.scalar(
        select(BankLine)
        .where(BankLine.id == line_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if line is None:
        raise NotFound("No such bank line.")
    if line.status != "suspense":
        raise Conflict(f"This line is {line.status}, not in suspense.")
    return line


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


async def _awaiting_decision(
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
    row = await _awaiting_decision(
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
    lines = [line for line in await _lines_of(session, deposit.id) if line.resolved_at is not None]
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


async def _deadline_answer(session: AsyncSession, deposit: Deposit) -> Eligibility | None:
    """The answer escrow gave the trade at the bid deadline for this deposit, once it was asked."""
    return await session.scalar(
        select(Eligibility).where(Eligibility.deposit_id == deposit.id, Eligibility.moment == "bid_deadline")
    )


# ---------------------------------------------------------------- obligations (trade events)


async def _open_obligation(session: AsyncSession, deposit: Deposit) -> Obligation | None:
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
    existing = await _open_obligation(session, deposit)
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
    open_one = await _open_obligation(session, deposit)
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
    """The lot's contract is signed (W-14), or the lot or tender failed or was terminated (T-END): every
    deposit still held is owed back (a forfeiture proposed stays pending its decision)."""
    out = []
    for deposit in await deposits_of_lot(session, lot_id):
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


async def on_revoked(session: AsyncSession, lot_id: uuid.UUID, organisation_id: uuid.UUID) -> None:
    """A bid revoked at the opening for the bidder's own fault (E-03): the deposit may be kept (W-06) if a
    supervisor approves a forfeiture; until then it is held and refunded with the others."""
    deposit = await deposit_of(session, lot_id, organisation_id)
    if deposit is not None and deposit.status == "held":
        deposit.hold_reason = (
            "bid revoked at the opening (E-03); may be kept (W-06) on a supervisor's approval"
        )


async def on_proven_fault(
    session: AsyncSession, lot_id: uuid.UUID, organisation_id: uuid.UUID, reason: str, now: datetime
) -> Forfeiture | None:
    """A bid revoked because its custody opening proved the bidder's fault (E-03 撤销): the deposit may
    be kept under W-06, so the platform proposes its forfeiture with the proof's summary as the reason; a
    supervisor decides, as for every forfeiture. None when there is no deposit (or nothing left to keep)."""
    deposit = await deposit_of(session, lot_id, organisation_id)
    if deposit is None or deposit.status in ("forfeited", "refunded", "waived"):
        return None
    open_one = await _open_obligation(session, deposit)
    if open_one is not None and open_one.status == "instructed":
        return None  # the refund is already with the bank; nothing can be stopped here
    return await propose_forfeiture(session, deposit, "W-06", reason, "job:custody", now)


# ---------------------------------------------------------------- forfeiture (W-06, W-16)

FORFEITURE_RULES = frozenset({"W-06", "W-16"})


async def propose_forfeiture(
    session: AsyncSession,
    deposit: Deposit,
    rule: str,
    reason: str,
    proposer: str,
    now: datetime,
) -> Forfeiture:
    """Propose keeping a deposit for a legal reason; nothing moves until a supervisor approves."""
    if rule not in FORFEITURE_RULES:
        raise ValidationProblem(
            "A deposit is kept only under W-06 or W-16.", errors=[field_error("rule", "W-06 or W-16")]
        )
    if not reason.strip():
        raise ValidationProblem("State the legal reason.", errors=[field_error("reason", "required")])
    if deposit.status in ("forfeited", "refunded"):
        raise Conflict(f"The deposit is already {deposit.status}.")
    existing = await session.scalar(select(Forfeiture).where(Forfeiture.open_key == deposit.id))
    if existing is not None:
        return existing
    open_one = await _open_obligation(session, deposit)
    if open_one is not None and open_one.status == "instructed":
        raise Conflict("The refund is already with the bank; it can no longer be stopped here.")
    row = Forfeiture(
        deposit_id=deposit.id,
        open_key=deposit.id,
        rule=rule,
        reason=reason.strip(),
        proposed_by=proposer,
        proposed_at=now,
    )
    session.add(row)
    deposit.hold_reason = f"forfeiture proposed ({rule}): {reason.strip()}; awaiting a supervisor"
    await session.flush()
    return row


async def propose_for_lot(
    session: AsyncSession,
    actor: Principal,
    deposit_id: uuid.UUID,
    rule: str,
    reason: str,
    now: datetime,
    *,
    manages: bool,
) -> Forfeiture:
    """The agency (of the deposit's tender) or the centre proposes a forfeiture."""
    deposit = await get_deposit(session, deposit_id, lock=True)
    if not manages:
        raise NotFound("No such deposit.")
    row = await propose_forfeiture(session, deposit, rule, reason, _actor(actor), now)
    await accounts.record(session, actor, "escrow.forfeiture.propose", "forfeiture", row.id, now, rule=rule)
    return row


async def decide_forfeiture(
    session: AsyncSession,
    actor: Principal,
    forfeiture_id: uuid.UUID,
    approve: bool,
    note: str,
    cal: WorkingCalendar,
    now: datetime,
    *,
    signer: LogSigner,
) -> Forfeiture:
    """A supervisor approves (the deposit moves to forfeited, a guarantee is claimed, an open refund
    obligation is closed) or rejects (the deposit is refunded under the trade's rule)."""
    row = await _awaiting_decision(
        session, Forfeiture, forfeiture_id, "proposed", note, "Record the grounds of the decision."
    )
    deposit = await get_deposit(session, row.deposit_id, lock=True)
    row.decided_by, row.decided_at, row.decision_note, row.open_key = actor.user_id, now, note.strip(), None
    open_one = await _open_obligation(session, deposit)
    if approve:
        if open_one is not None and open_one.status == "instructed":
            raise Conflict("The refund is already with the bank; wait for its result.")
        if deposit.status == "refunded":
            raise Conflict("The bank has already refunded this deposit; there is nothing left to keep.")
        row.status = "approved"
        amount = await held_fen(session, deposit)
        if amount > 0:
            posted = await journal.post(
                session,
                ledger.EntryDraft(
                    "forfeiture",
                    (ledger.Posting(deposit.account_code, amount), ledger.Posting(FORFEITED, -amount)),
                    f"forfeit:{row.id}",
                    {
                        "deposit": str(deposit.id),
                        "tender": str(deposit.tender_id),
                        "lot": str(deposit.lot_id),
                        "bidder": str(deposit.organisation_id),
                        "rule": row.rule,
                        "forfeiture": str(row.id),
                    },
                    _actor(actor),
                ),
                now,
            )
            row.entry_sequence = posted.entry.sequence
            await published.seal(session, signer, now, "forfeiture")
        for g in await guarantees_of(session, deposit.id):
            if g.status in ("verified", "released"):
                g.status, g.release_rule = "claimed", row.rule
        if open_one is not None:
            open_one.status, open_one.open_key, open_one.closed_at = "forfeited", None, now
        deposit.status = "forfeited"
        deposit.hold_reason = f"forfeited ({row.rule}): {row.reason}"
    else:
        row.status = "rejected"
        deposit.hold_reason = "forfeiture rejected; held until the lot's refund event"
        if row.deferred_rule and row.deferred_event and row.deferred_on:
            # the lot's refund event came while the proposal was pending: owed back now, under its rule
            await oblige(
                session,
                deposit,
                row.deferred_rule,
                row.deferred_event,
                row.deferred_on,
                cal,
                now,
                actor=_actor(actor),
            )
    await accounts.record(
        session, actor, f"escrow.forfeiture.{row.status}", "forfeiture", row.id, now, rule=row.rule
    )
    return row


async def forfeitures(session: AsyncSession, status: str | None = None) -> list[Forfeiture]:
    """Forfeitures, newest first (optionally only those in one status)."""
    query = select(Forfeiture).order_by(Forfeiture.proposed_at.desc())
    if status:
        query = query.where(Forfeiture.status == status)
    return list(await session.scalars(query))


# ---------------------------------------------------------------- payee (refunds go back where they came from)


@dataclass(frozen=True)
class Payee:
    """Where a refund goes, and why there."""

    name: str
    account: str
    bank: str
    basis: str

    @property
    def party(self) -> ledger.Party:
        """The payee as a refund entry hashes it."""
        return ledger.Party("payee", self.account, self.name, self.bank)


ARRIVALS = conflicts.ARRIVALS
CORRECTIONS = conflicts.CORRECTIONS


def _hashed(entry: JournalEntry, basis: str) -> Payee:
    return Payee(entry.party_name or "", entry.party_account or "", entry.party_bank or "", basis)


async def _line_payer(
    session: AsyncSession, line_id: uuid.UUID, arrival: JournalEntry | None
) -> JournalEntry | None:
    """The hashed entry naming a line's payer: its latest correction (a conflict resolved with the bank's
    later version), else the entry that took the line in."""
    corrected = await session.scalars(
        select(JournalEntry)
        .join(BankLineConflict, BankLineConflict.entry_sequence == JournalEntry.sequence)
        .where(BankLineConflict.line_id == line_id, JournalEntry.reason.in_(CORRECTIONS))
        .order_by(JournalEntry.sequence.desc())
    )
    for entry in corrected:
        if entry.scheme == 3 and entry.context.get("bank_line") == str(line_id):
            return entry
    return arrival


async def first_arrival(session: AsyncSession, deposit: Deposit) -> JournalEntry | None:
    """The entry that first credited the deposit with a bank line (its payer is the deposit's payer)."""
    return await journal.first_entry(session, deposit.account_code, conflicts.ARRIVALS)


async def hashed_payer(session: AsyncSession, deposit: Deposit) -> JournalEntry | None:
    """The hashed entry naming the deposit's payer: the first arrival's, as corrected since. None when the
    deposit has received nothing, or only through scheme 2 entries (which name no party)."""
    arrival = await first_arrival(session, deposit)
    if arrival is None or arrival.scheme != 3:
        return None
    try:
        line_id = uuid.UUID(str(arrival.context.get("bank_line")))
    except ValueError:
        return arrival  # taken in without a bank line (never by this service)
    return await _line_payer(session, line_id, arrival)


async def payee_of(session: AsyncSession, obligation: Obligation) -> Payee:
    """Where the refund goes, read from the hashed journal, never from editable columns: the latest
    approved change of payee recorded for the deposit (a `payee_changed` entry naming it), else the payer
    of its first arrival (as corrected since); a returned suspense line goes back to its own payer. A
    deposit taken in only by scheme 2 entries falls back to the columns on record."""
    if obligation.line_id is not None:
        line = await session.get(BankLine, obligation.line_id)
        assert line is not None
        # the entry that took the line in is found by its idempotency key, which its hash covers
        arrival = await session.scalar(
            select(JournalEntry).where(JournalEntry.idempotency_key == f"line:{line.id}")
        )
        if arrival is not None and arrival.context.get("bank_line") != str(line.id):
            arrival = None
        named = await _line_payer(session, line.id, arrival)
        if named is not None and named.scheme == 3:
            return _hashed(named, f"line:{line.id}")
        return Payee(
            line.payer_name or "", line.payer_account or "", line.payer_bank or "", f"line:{line.id}"
        )
    assert obligation.deposit_id is not None
    deposit = await get_deposit(session, obligation.deposit_id)
    changes = await session.execute(
        select(PayeeChange.id, JournalEntry)
        .join(JournalEntry, JournalEntry.sequence == PayeeChange.entry_sequence)
        .where(PayeeChange.deposit_id == deposit.id)
        .order_by(JournalEntry.sequence.desc())
    )
    for change_id, entry in changes:
        if entry.reason == "payee_changed" and entry.context.get("deposit") == str(deposit.id):
            return _hashed(entry, f"change:{change_id}")
    named = await hashed_payer(session, deposit)
    if named is not None:
        return _hashed(named, "payer")
    if not deposit.payer_account:
        raise Conflict(f"Deposit {deposit.account_code} has no paying account on record.")
    return Payee(deposit.payer_name or "", deposit.payer_account, deposit.payer_bank or "", "payer")


async def record_payee_change(
    session: AsyncSession,
    actor: Principal,
    deposit_id: uuid.UUID,
    *,
    payee_name: str,
    payee_account: str,
    payee_bank: str,
    reason: str,
    approval: str,
    now: datetime,
    signer: LogSigner,
) -> PayeeChange:
    """A centre officer records an approved change of the refund account, with the approval it rests on;
    the change is hashed into the journal (a `payee_changed` memo naming the new payee, the reason and the
    approval), and that entry is what refunds are paid to and checked against."""
    deposit = await get_deposit(session, deposit_id)
    errors = [
        field_error(name, "required")
        for name, value in (
            ("payee_name", payee_name),
            ("payee_account", payee_account),
            ("payee_bank", payee_bank),
            ("reason", reason),
            ("approval", approval),
        )
        if not value.strip()
    ]
    if errors:
        raise ValidationProblem("The change of payee is incomplete.", errors=errors)
    open_one = await _open_obligation(session, deposit)
    if open_one is not None and open_one.status == "instructed":
        raise Conflict("A refund is with the bank now; record the change once its result is in.")
    change_id = uuid.uuid4()
    payee = ledger.Party("payee", payee_account.strip(), payee_name.strip(), payee_bank.strip())
    memo = await journal.post(
        session,
        ledger.EntryDraft(
            "payee_changed",
            (),
            f"payee:{change_id}",
            {
                "deposit": str(deposit.id),
                "tender": str(deposit.tender_id),
                "lot": str(deposit.lot_id),
                "bidder": str(deposit.organisation_id),
                "change": str(change_id),
                "reason": reason.strip(),
                "approval": approval.strip(),
            },
            _actor(actor),
            payee,
        ),
        now,
    )
    row = PayeeChange(
        id=change_id,
        deposit_id=deposit.id,
        payee_name=payee.name,
        payee_account=payee.account,
        payee_bank=payee.bank,
        reason=reason.strip(),
        approval=approval.strip(),
        recorded_by=actor.user_id,
        recorded_at=now,
        entry_sequence=memo.entry.sequence,
    )
    session.add(row)
    await session.flush()
    await published.seal(session, signer, now, "payee_change")
    await accounts.record(
        session, actor, "escrow.payee.change", "deposit", deposit.id, now, sealed_tender=deposit.tender_id
    )
    return row


# ---------------------------------------------------------------- interest


async def _lines_of(session: AsyncSession, deposit_id: uuid.UUID) -> list[BankLine]:
    return list(
        await session.scalars(
            select(BankLine)
            .where(BankLine.deposit_id == deposit_id)
            .order_by(BankLine.booked_on, BankLine.reference)
        )
    )


async def interest_through(
    session: AsyncSession,
    obligation: Obligation,
    pay_on: date,
    rates: interest.RateTable,
    lpr: interest.RateTable,
    *,
    before: int | None = None,
) -> int:
    """The interest owed on an obligation if the bank pays on `pay_on` (in fen, rounded once per line).

    The principal is the money taken in after the deposit's previous paid refund was instructed (a bidder
    may withdraw, be refunded, and pay again; money matched while that refund was at the bank stays and
    earns interest here) and, when `before` names this obligation's own refund entry, before it."""
    if obligation.interest_rule == "none" or obligation.deposit_id is None:
        return 0
    previous = (
        select(func.max(RefundInstruction.pending_sequence))
        .join(Obligation, Obligation.id == RefundInstruction.obligation_id)
        .where(
            Obligation.deposit_id == obligation.deposit_id,
            Obligation.id != obligation.id,
            RefundInstruction.status == "paid",
        )
    )
    if before is not None:
        previous = previous.where(RefundInstruction.pending_sequence < before)
    after = await session.scalar(previous)
    total = 0
    for line in await _lines_of(session, obligation.deposit_id):
        taken = line.entry_sequence or 0
        if (after is not None and taken < after) or (before is not None and taken > before):
            continue
        arrived = line.value_on or line.booked_on
        if arrived >= pay_on:
            continue  # arrived on or after the payment day: no day of holding to pay for
        total += obligations.interest_due(
            obligation.rule, line.amount_fen, arrived, obligation.due_on, pay_on, rates, lpr
        ).amount_fen
    return total


# ---------------------------------------------------------------- refund batches


@dataclass(frozen=True)
class BatchResult:
    """A batch made (or None when nothing was due), and the obligations left for later with why."""

    batch: RefundBatch | None
    instructions: list[RefundInstruction]
    skipped: list[str]


async def create_batch(
    session: AsyncSession, actor: Principal | None, now: datetime, *, signer: LogSigner, limit: int = 500
) -> BatchResult:
    """Instruct the bank to pay every due obligation: interest accrued to the execution day, a pending
    refund entry naming the payee inside its hashed text, and one instruction each, in one transaction,
    which ends by signing the ledger's head. Obligations another worker is batching are skipped (locked),
    and an obligation never has two live instructions."""
    await ensure_fixed_accounts(session, now)
    execution_on = local_date(now)
    due = list(
        await session.scalars(
            select(Obligation)
            .where(Obligation.status == "due")
            .order_by(Obligation.due_on, Obligation.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not due:
        return BatchResult(None, [], [])
    rates = await rate_table(session, "deposit")
    lpr = await rate_table(session, "lpr")
    await journal.lock_head(session)  # batches are numbered one at a time, per day
    day_count = await session.scalar(
        select(func.count()).select_from(RefundBatch).where(RefundBatch.execution_on == execution_on)
    )
    batch = RefundBatch(
        number=f"RB{execution_on:%Y%m%d}-{(day_count or 0) + 1:04d}",
        created_at=now,
        created_by=_actor(actor, "refunds"),
        execution_on=execution_on,
        count=0,
        total_fen=0,
    )
    session.add(batch)
    await session.flush()
    who = _actor(actor, "refunds")
    made: list[RefundInstruction] = []
    skipped: list[str] = []
    for obligation in due:
        if obligation.deposit_id is not None and await session.scalar(
            select(Forfeiture.id).where(
                Forfeiture.deposit_id == obligation.deposit_id, Forfeiture.status == "proposed"
            )
        ):
            skipped.append(f"{obligation.id}: a forfeiture is proposed; the supervisor decides first")
            continue
        try:
            payee = await payee_of(session, obligation)
        except Conflict as exc:
            skipped.append(f"{obligation.id}: {exc.detail}")
            continue
        try:
            owed = await interest_through(session, obligation, execution_on, rates, lpr)
        except LookupError as exc:
            raise RuleViolation(
                "M-02",
                f"No rate is in force for the whole holding period: {exc}. The centre adds it to the rate table.",
            ) from exc
        obligation_id = obligation.id  # the savepoint's rollback expires the row; keep what the note needs
        try:
            # one savepoint per refund: one that cannot be paid (the escrow account would be overdrawn,
            # e.g. the bank's interest credit has not arrived yet) is left due, the others go ahead
            async with session.begin_nested():
                instruction = await _instruct(session, batch, obligation, payee, owed, who, now)
        except Conflict as exc:
            skipped.append(f"{obligation_id}: {exc.detail}")
            continue
        made.append(instruction)
        crash_point("batch.after_instruction")
    batch.count = len(made)
    batch.total_fen = sum(i.amount_fen for i in made)
    if not made:
        await session.delete(batch)
        return BatchResult(None, [], skipped)
    await published.seal(session, signer, now, "refund_batch")
    await accounts.record(
        session,
        None if actor is None else actor,
        "escrow.batch",
        "refund_batch",
        batch.id,
        now,
        count=batch.count,
        total_fen=batch.total_fen,
    )
    return BatchResult(batch, made, skipped)


async def _instruct(
    session: AsyncSession,
    batch: RefundBatch,
    obligation: Obligation,
    payee: Payee,
    owed_interest: int,
    who: str,
    now: datetime,
) -> RefundInstruction:
    context: dict[str, str] = {"obligation": str(obligation.id), "rule": obligation.rule}
    if obligation.deposit_id is not None:
        deposit = await get_deposit(session, obligation.deposit_id, lock=True)
        context.update(
            deposit=str(deposit.id),
            tender=str(deposit.tender_id),
            lot=str(deposit.lot_id),
            bidder=str(deposit.organisation_id),
        )
        account = deposit.account_code
        extra = owed_interest - obligation.interest_fen
        if extra > 0:
            await journal.post(
                session,
                ledger.EntryDraft(
                    "interest_accrued",
                    (ledger.Posting(INTEREST_EXPENSE, extra), ledger.Posting(account, -extra)),
                    f"interest:{obligation.id}:{obligation.attempts}",
                    {**context, "through": batch.execution_on.isoformat()},
                    who,
                ),
                now,
            )
            obligation.interest_fen = owed_interest
        amount = await held_fen(session, deposit)
    else:
        line = await session.get(BankLine, obligation.line_id)
        assert line is not None
        context.update(bank_line=str(line.id))
        account, amount = SUSPENSE, line.amount_fen
    end_to_end = f"GGZY{secrets.token_hex(8).upper()}"
    try:  # the bank's own rules on names and account numbers, checked before anything is posted
        bankfiles.PaymentInstruction(end_to_end, amount, payee.name, payee.account, payee.bank)
    except bankfiles.BankFileError as exc:
        raise Conflict(f"The payee cannot be instructed to the bank: {exc.message}") from exc
    pending = await journal.post(
        session,
        ledger.EntryDraft(
            "refund_instructed",
            (ledger.Posting(account, amount), ledger.Posting(BANK, -amount)),
            f"refund:{end_to_end}",
            {**context, "end_to_end_id": end_to_end, "payee_basis": payee.basis},
            who,
            payee.party,
        ),
        now,
        phase=ledger.Phase.PENDING,
    )
    crash_point("batch.after_pending")
    instruction = RefundInstruction(
        end_to_end_id=end_to_end,
        batch_id=batch.id,
        obligation_id=obligation.id,
        live_key=obligation.id,
        account_code=account,
        amount_fen=amount,
        interest_fen=obligation.interest_fen,
        payee_name=payee.name,
        payee_account=payee.account,
        payee_bank=payee.bank,
        payee_basis=payee.basis,
        pending_sequence=pending.entry.sequence,
    )
    session.add(instruction)
    obligation.status = "instructed"
    obligation.attempts += 1
    await session.flush()  # the unique live_key refuses a second live instruction here
    return instruction


async def batch_of(session: AsyncSession, batch_id: uuid.UUID) -> tuple[RefundBatch, list[RefundInstruction]]:
    """A batch and its instructions."""
    batch = await session.get(RefundBatch, batch_id)
    if batch is None:
        raise NotFound("No such refund batch.")
    rows = list(
        await session.scalars(
            select(RefundInstruction)
            .where(RefundInstruction.batch_id == batch.id)
            .order_by(RefundInstruction.end_to_end_id)
        )
    )
    return batch, rows


async def list_batches(session: AsyncSession) -> list[RefundBatch]:
    """Every refund batch, newest first."""
    return list(await session.scalars(select(RefundBatch).order_by(RefundBatch.created_at.desc())))


async def tampered_payees(session: AsyncSession, rows: Sequence[RefundInstruction]) -> list[str]:
    """The instructions whose payee columns differ from the payee their hashed refund entry names."""
    entries = {
        e.sequence: e
        for e in await session.scalars(
            select(JournalEntry).where(JournalEntry.sequence.in_([r.pending_sequence for r in rows]))
        )
    }
    out = []
    for row in rows:
        entry = entries.get(row.pending_sequence)
        if entry is None or entry.reason != "refund_instructed":
            out.append(
                f"instruction {row.end_to_end_id} names entry {row.pending_sequence}, not its refund entry"
            )
        elif entry.scheme == 3 and (row.payee_account, row.payee_name, row.payee_bank) != (
            entry.party_account,
            entry.party_name,
            entry.party_bank,
        ):
            out.append(
                f"instruction {row.end_to_end_id} pays {row.payee_account} ({row.payee_name}), but its hashed "
                f"entry {entry.sequence} names {entry.party_account} ({entry.party_name})"
            )
        elif entry.scheme == 2 and entry.context.get("payee_account") != row.payee_account:
            out.append(
                f"instruction {row.end_to_end_id} pays {row.payee_account}, but its hashed entry "
                f"{entry.sequence} names {entry.context.get('payee_account')}"
            )
    return out


async def batch_file(session: AsyncSession, batch_id: uuid.UUID, fmt: str, settings: Settings) -> bytes:
    """The batch's payment file for the bank (CSV or pain.001 XML), rendered from the rows: exporting it
    again gives the same bytes, and the bank refuses an end-to-end id it has already paid. A row whose
    payee is not the one its hashed refund entry names is never sent: the file is refused, naming it."""
    batch, rows = await batch_of(session, batch_id)
    tampered = await tampered_payees(session, rows)
    if tampered:
        raise Conflict(
            "The batch's payees differ from its hashed refund entries; nothing is sent to the bank: "
            + "; ".join(tampered),
            errors=[field_error("payee_account", "differs from the hashed entry")],
        )
    try:
        payments = _payments(batch, rows, settings)
    except bankfiles.BankFileError as exc:
        raise _bank_problem(exc) from exc
    if fmt == "csv":
        return bankfiles.payment_csv(payments)
    if fmt == "xml":
        return bankfiles.payment_xml(payments)
    raise ValidationProblem("fmt must be csv or xml.", errors=[field_error("fmt", "csv or xml")])


def _payments(
    batch: RefundBatch, rows: Sequence[RefundInstruction], settings: Settings
) -> bankfiles.PaymentBatch:
    return bankfiles.PaymentBatch(
        batch_id=batch.number,
        created_at=batch.created_at,
        debtor_name=settings.escrow_account_name,
        debtor_account=settings.escrow_account,
        debtor_bank=settings.escrow_bank,
        instructions=tuple(
            bankfiles.PaymentInstruction(
                end_to_end_id=r.end_to_end_id,
                amount_fen=r.amount_fen,
                payee_name=r.payee_name,
                payee_account=r.payee_account,
                payee_bank=r.payee_bank,
                remittance=f"保证金退还 {r.account_code}"[:140],
            )
            for r in rows
        ),
    )


@dataclass
class ResultsImport:
    """What importing the bank's results did, line by line."""

    paid: int = 0
    failed: int = 0
    unchanged: int = 0
    pending: int = 0
    problems: list[str] = field(default_factory=list)


async def import_results(
    session: AsyncSession, actor: Principal | None, data: bytes, fmt: str, now: datetime, *, signer: LogSigner
) -> ResultsImport:
    """The bank's results: a paid instruction's pending entry is posted, a failed one's voided and its
    obligation queued again. A result already applied changes nothing; one that contradicts it is
    reported and changes nothing. The ledger's head is signed when the results moved money."""
    try:
        results = await asyncio.to_thread(bankfiles.parse_results, data, fmt)
    except bankfiles.BankFileError as exc:
        raise _bank_problem(exc) from exc
    out = ResultsImport()
    who = _actor(actor, "bank-results")
    for result in results:
        instruction = await session.scalar(
            select(RefundInstruction)
            .where(RefundInstruction.end_to_end_id == result.end_to_end_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if instruction is None:
            out.problems.append(f"{result.end_to_end_id}: no such instruction")
            continue
        if result.paid and result.status in NOT_FINAL:
            out.pending += 1  # accepted by the bank, not yet settled: the refund stays pending
            continue
        if instruction.status != "sent":
            if (instruction.status == "paid") == result.paid:
                out.unchanged += 1
            else:
                out.problems.append(
                    f"{result.end_to_end_id}: already {instruction.status}; the bank now says "
                    f"{'paid' if result.paid else 'failed'} — investigate"
                )
            continue
        await _settle_instruction(
            session,
            instruction,
            result.paid,
            result.reason or "",
            result.bank_reference,
            result.paid_on,
            who,
            now,
        )
        crash_point("results.after_settle")
        if result.paid:
            out.paid += 1
        else:
            out.failed += 1
    await published.seal(session, signer, now, "results")
    await accounts.record(
        session,
        actor,
        "escrow.results",
        "refund_results",
        hashlib.sha256(data).hexdigest()[:16],
        now,
        paid=out.paid,
        failed=out.failed,
        unchanged=out.unchanged,
        problems=len(out.problems),
    )
    return out


async def _settle_instruction(
    session: AsyncSession,
    instruction: RefundInstruction,
    paid: bool,
    reason: str,
    bank_reference: str | None,
    paid_on: date | None,
    who: str,
    now: datetime,
) -> None:
    target = ledger.Phase.POSTED if paid else ledger.Phase.VOIDED
    done = await journal.resolve(
        session,
        instruction.pending_sequence,
        str(target),
        key=f"refund-{'ok' if paid else 'fail'}:{instruction.end_to_end_id}",
        reason="refund_confirmed" if paid else "refund_failed",
        actor=who,
        now=now,
    )
    obligation = await session.get(Obligation, instruction.obligation_id, with_for_update=True)
    assert obligation is not None
    instruction.result_sequence, instruction.result_at = done.entry.sequence, now
    instruction.bank_reference = bank_reference
    if paid:
        instruction.status, instruction.paid_on = "paid", paid_on or local_date(now)
        obligation.status, obligation.open_key = "paid", None
        obligation.paid_on, obligation.closed_at = instruction.paid_on, now
        if obligation.deposit_id is not None:
            deposit = await get_deposit(session, obligation.deposit_id, lock=True)
            if await held_fen(session, deposit) == 0:
                deposit.status = "refunded"
                deposit.hold_reason = f"refunded on {instruction.paid_on.isoformat()} ({obligation.rule})"
            else:  # paid again (matched from suspense) while the refund was with the bank
                deposit.status = "held"
                deposit.hold_reason = "paid again after a refund; held for the tender"
        elif obligation.line_id is not None:
            line = await session.get(BankLine, obligation.line_id)
            assert line is not None
            line.status = "returned"
    else:
        instruction.status, instruction.live_key = "failed", None
        instruction.failure_reason = reason or "refused by the bank"
        obligation.status = "due"  # queued again for the next batch, to the same account unless changed
        obligation.note = f"transfer {instruction.end_to_end_id} failed: {instruction.failure_reason}"


# ---------------------------------------------------------------- the ledger's signed head


async def seal_ledger_head(
    session: AsyncSession, signer: LogSigner, now: datetime
) -> heads.SignedHead | None:
    """The chronograph's hourly head of the deposit ledger (`escrow/published.py`); None when the newest
    is less than an hour old and covers the journal."""
    return await published.seal_hourly(session, signer, now)


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


async def statements(session: AsyncSession) -> list[BankStatement]:
    """Every import, newest first."""
    return list(await session.scalars(select(BankStatement).order_by(BankStatement.imported_at.desc())))


async def statement_lines(session: AsyncSession, statement_id: uuid.UUID) -> list[BankLine]:
    """The lines a statement brought first."""
    if await session.get(BankStatement, statement_id) is None:
        raise NotFound("No such statement.")
    return list(
        await session.scalars(
            select(BankLine).where(BankLine.statement_id == statement_id).order_by(BankLine.reference)
        )
    )


async def suspense_lines(session: AsyncSession) -> list[BankLine]:
    """Lines waiting for an officer (suspense) and debits nobody instructed (unexplained)."""
    return list(
        await session.scalars(
            select(BankLine)
            .where(or_(BankLine.status == "suspense", BankLine.status == "unexplained"))
            .order_by(BankLine.booked_on, BankLine.reference)
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
        "lines": await _lines_of(session, deposit.id),
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
