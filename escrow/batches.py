"""Use cases of refund batches: the instructions to the bank for the obligations due, the payment file, the
bank's results (pain.002) settling or failing each instruction, interest (W-14, M-01) and the centre's rate
tables (M-02, M-03).

A refund is two-phase: pending when the instruction is made, posted on the bank's confirmation, voided on
its failure; an obligation has at most one live instruction (`RefundInstruction.live_key` is unique), so
it cannot be paid twice whatever crashes in between.

Interest runs from the day each payment arrived to the day before the batch's requested execution date
(the day the bank is asked to pay); rates come from the centre's dated tables.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from escrow import bankfiles, interest, journal, ledger, obligations, published
from escrow.forfeiture import Payee, payee_of
from escrow.journal import BANK
from escrow.models import (
    BankLine,
    Forfeiture,
    InterestRate,
    JournalEntry,
    Obligation,
    RefundBatch,
    RefundInstruction,
)
from escrow.subaccounts import (
    INTEREST_EXPENSE,
    SUSPENSE,
    actor_of,
    bank_problem,
    ensure_fixed_accounts,
    get_deposit,
    held_fen,
    lines_of,
)
from rules.calendar import local_date
from storage.faults import crash_point
from storage.problems import (
    Conflict,
    NotFound,
    RuleViolation,
    ValidationProblem,
    field_error,
)
from storage.settings import Settings
from storage.signing import LogSigner

RATE_KINDS = frozenset({"deposit", "lpr"})
# pain.002 statuses that accept a payment without settling it: a later report still may reject it
NOT_FINAL = frozenset({"ACSP", "ACCP", "ACWC"})


# ---------------------------------------------------------------- rates and interest (M-01, M-02, M-03)


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
    for line in await lines_of(session, obligation.deposit_id):
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
        created_by=actor_of(actor, "refunds"),
        execution_on=execution_on,
        count=0,
        total_fen=0,
    )
    session.add(batch)
    await session.flush()
    who = actor_of(actor, "refunds")
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
        raise bank_problem(exc) from exc
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
        raise bank_problem(exc) from exc
    out = ResultsImport()
    who = actor_of(actor, "bank-results")
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
        await settle_instruction(
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


async def settle_instruction(
    session: AsyncSession,
    instruction: RefundInstruction,
    paid: bool,
    reason: str,
    bank_reference: str | None,
    paid_on: date | None,
    who: str,
    now: datetime,
) -> None:
    """The bank's answer on one instruction (a pain.002 result, or a refund returned on a statement):
    the pending refund entry posted when paid, voided and the obligation due again when not."""
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
