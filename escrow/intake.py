"""Use cases of the bank intake: statements and notifications (camt.053, camt.054, the CSV layout) taken in
exactly once, each credit matched to a deposit's virtual sub-account or put in suspense, suspense matched
by hand or returned to the payer, and a returned refund settled against its instruction.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from escrow import bankfiles, conflicts, journal, ledger, obligations, published
from escrow.batches import settle_instruction
from escrow.journal import BANK
from escrow.models import (
    BankLine,
    BankStatement,
    Deposit,
    Eligibility,
    Obligation,
    RefundInstruction,
)
from escrow.schemas import StatementSummary
from escrow.subaccounts import (
    INTEREST_INCOME,
    SUSPENSE,
    actor_of,
    bank_problem,
    deadline_answer,
    ensure_fixed_accounts,
    get_deposit,
    held_fen,
    valid_virtual_number,
)
from rules.calendar import WorkingCalendar, local_date
from storage import outbox
from storage.db import upsert_ignore
from storage.objects import ObjectStore
from storage.problems import (
    Conflict,
    NotFound,
    Unauthenticated,
    ValidationProblem,
    field_error,
)
from storage.settings import Settings
from storage.signing import LogSigner

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
        raise bank_problem(exc) from exc
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
        raise bank_problem(exc) from exc
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
                "imported_by": actor_of(actor, "bank-notification"),
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
    who = actor_of(actor, "bank-notification")
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
            await settle_instruction(session, instruction, True, "", line.reference, line.booked_on, who, now)
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
    deadline = await deadline_answer(session, deposit) if deposit is not None else None
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
    """W-18: deposits of different bidders in one tender paid from the same account. The bidding package
    keeps the signal: it is asked through the outbox, after this transaction commits."""
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
            outbox.enqueue(
                session,
                "bidding.record_signal",
                {
                    "tender_id": str(tender_id),
                    "kind": "deposit_same_payer",
                    "bidders": sorted(codes),
                    "evidence": f"deposits of {len(orgs)} bidders were paid from bank account {payer}",
                    "value": payer,
                    "found_at": now.isoformat(),
                },
                now,
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
    await _credit_deposit(session, deposit, line, "suspense_matched", SUSPENSE, actor_of(actor), now)
    line.resolved_by, line.note = actor_of(actor), note.strip()
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
    line.status, line.resolved_by, line.resolved_at, line.note = (
        "returning",
        actor_of(actor),
        now,
        note.strip(),
    )
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
        created_by=actor_of(actor),
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
