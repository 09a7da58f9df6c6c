"""Bank lines the bank reports again under a known reference but otherwise (对账差异): another amount, payer,
date, credited account or direction. Such a line is not "already known": both versions are kept in full
with the import that brought the later one (its file stays in the object store), it is listed for the
centre and the auditors, the deposit checks fail while it is open, and it is never dropped.

A centre officer resolves it with a recorded decision and its grounds:

- "known": the version on record stands (the later one was the bank's error); nothing moves.
- "incoming": the bank's later version is right. The line on record takes its amount, dates and payer
  (a change of credited account or direction is a different payment, not a correction: resolve it as
  "known" and settle it with the bank). A different amount moves the difference between the escrow bank
  account and the account that took the line in by a `line_corrected` entry; a different payer alone is a
  `payer_corrected` memo; both carry the corrected payer inside the hashed text, so refunds go to it. Once
  the line's money has moved on (refunded, returned, forfeited, with the bank), only "known" is possible.

Currencies cannot differ: the bank file parsers refuse any line that is not CNY.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from escrow import bankfiles, journal, ledger, published
from escrow.models import BankLine, BankLineConflict, Deposit
from storage.db import upsert_ignore
from storage.problems import Conflict, NotFound, ValidationProblem, field_error
from storage.signing import LogSigner

# The fields compared; those every version carries differ whenever they differ, the others only when both
# versions give them (a notification may name fewer than the day's statement).
COMPARED: Final = (
    "direction",
    "kind",
    "amount_fen",
    "booked_on",
    "value_on",
    "payer_name",
    "payer_account",
    "payer_bank",
    "credited_account",
    "end_to_end_id",
)
ALWAYS: Final = frozenset({"direction", "kind", "amount_fen", "booked_on"})
TAKEN: Final = frozenset({"amount_fen", "booked_on", "value_on", "payer_name", "payer_account", "payer_bank"})
PAYER: Final = ("payer_name", "payer_account", "payer_bank")
DECISIONS: Final = frozenset({"known", "incoming"})
ARRIVALS: Final = ("deposit_received", "suspense_matched")  # the entries that credit a deposit with a line
CORRECTIONS: Final = ("line_corrected", "payer_corrected")  # a line's payer corrected from the bank's version
TAKEN_IN: Final = frozenset({"matched", "suspense", "interest"})  # line statuses whose money is still here


def _json_value(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


def row_version(line: BankLine) -> dict[str, Any]:
    """The version of a line on record, JSON-ready."""
    fields = {name: _json_value(getattr(line, name)) for name in COMPARED}
    return {"reference": line.reference, **fields, "remittance": line.remittance}


def file_version(raw: bankfiles.StatementLine) -> dict[str, Any]:
    """The version a statement or notification brings, JSON-ready, absent texts as None (as stored)."""
    fields: dict[str, Any] = {}
    for name in COMPARED:
        value = getattr(raw, name)
        if name in ("direction", "kind"):
            value = str(value)
        elif isinstance(value, str):
            value = value or None
        fields[name] = _json_value(value)
    return {"reference": raw.reference, **fields, "remittance": raw.remittance or None}


def differences(known: dict[str, Any], incoming: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each compared field on which the two versions disagree: {field: {"known": …, "incoming": …}}."""
    out: dict[str, dict[str, Any]] = {}
    for name in COMPARED:
        mine, theirs = known.get(name), incoming.get(name)
        if mine == theirs or (name not in ALWAYS and (mine is None or theirs is None)):
            continue
        out[name] = {"known": mine, "incoming": theirs}
    return out


def describe(reference: str, diff: dict[str, dict[str, Any]]) -> str:
    """One line for the import's answer: "R1: the bank now says amount_fen 600000, not 500000"."""
    said = "; ".join(f"{name} {d['incoming']}, not {d['known']}" for name, d in diff.items())
    return f"{reference}: the bank now says {said}"


async def record(
    session: AsyncSession,
    line: BankLine,
    raw: bankfiles.StatementLine,
    statement_id: uuid.UUID,
    now: datetime,
) -> str | None:
    """Compare a line seen again with the one on record; when they disagree, keep the later version as a
    conflict (once per distinct version) and answer what differs. None when it is the same line."""
    known, incoming = row_version(line), file_version(raw)
    diff = differences(known, incoming)
    if not diff:
        return None
    digest = hashlib.sha256(json.dumps(incoming, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    await session.execute(
        upsert_ignore(
            session,
            BankLineConflict,
            {
                "id": uuid.uuid4(),
                "line_id": line.id,
                "reference": line.reference,
                "statement_id": statement_id,
                "digest": digest,
                "known": known,
                "incoming": incoming,
                "differences": diff,
                "status": "open",
                "detected_at": now,
            },
        )
    )
    return describe(line.reference, diff)


async def listed(session: AsyncSession, status: str | None = None) -> list[BankLineConflict]:
    """Conflicts, oldest first (optionally only open or only resolved ones)."""
    query = select(BankLineConflict).order_by(BankLineConflict.detected_at, BankLineConflict.reference)
    if status is not None:
        query = query.where(BankLineConflict.status == status)
    return list(await session.scalars(query))


async def get(session: AsyncSession, conflict_id: uuid.UUID) -> BankLineConflict:
    """One conflict."""
    row = await session.get(BankLineConflict, conflict_id)
    if row is None:
        raise NotFound("No such bank line conflict.")
    return row


async def deposits_of(session: AsyncSession, rows: list[BankLineConflict]) -> dict[uuid.UUID, uuid.UUID]:
    """The deposit each conflict's line was taken into (conflict id → deposit id), where it was."""
    if not rows:
        return {}
    by_line = {row.line_id: row.id for row in rows}
    found = await session.execute(
        select(BankLine.id, BankLine.deposit_id).where(
            BankLine.id.in_(list(by_line)), BankLine.deposit_id.is_not(None)
        )
    )
    return {by_line[line_id]: deposit_id for line_id, deposit_id in found if deposit_id is not None}


def _actor(principal: Principal | None) -> str:
    return f"user:{principal.user_id}" if principal is not None else "job:escrow"


async def resolve(
    session: AsyncSession,
    actor: Principal,
    conflict_id: uuid.UUID,
    decision: str,
    note: str,
    signer: LogSigner,
    now: datetime,
) -> BankLineConflict:
    """A centre officer records which version is right, with the grounds; see the module's docstring."""
    if decision not in DECISIONS:
        raise ValidationProblem(
            "decision is known (the line on record stands) or incoming (the bank's later version is right).",
            errors=[field_error("decision", "known or incoming")],
        )
    if not note.strip():
        raise ValidationProblem(
            "Record the grounds of the decision.", errors=[field_error("note", "required")]
        )
    row = await session.scalar(
        select(BankLineConflict)
        .where(BankLineConflict.id == conflict_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFound("No such bank line conflict.")
    if row.status != "open":
        raise Conflict(
            f"This conflict was already resolved ({row.decision}).",
            errors=[field_error("decision", "resolved")],
        )
    if decision == "incoming":
        row.entry_sequence = await _take_incoming(session, row, _actor(actor), now)
    row.status, row.decision, row.note = "resolved", decision, note.strip()
    row.resolved_by, row.resolved_at = _actor(actor), now
    await session.flush()
    await published.seal(session, signer, now, "conflict")
    await accounts.record(
        session, actor, "escrow.conflict.resolve", "bank_line_conflict", row.id, now, decision=decision
    )
    return row


async def _take_incoming(session: AsyncSession, row: BankLineConflict, who: str, now: datetime) -> int | None:
    """Make the line on record the bank's later version; answers the correcting entry, if money moved or
    the payer changed."""
    untakeable = sorted(set(row.differences) - TAKEN)
    if untakeable:
        raise Conflict(
            f"The bank's later version changes {', '.join(untakeable)}: that is another payment, not a "
            "correction. Resolve it as 'known' and settle the payment with the bank.",
            errors=[field_error("decision", "not a correction")],
        )
    line = await session.scalar(
        select(BankLine)
        .where(BankLine.id == row.line_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert line is not None
    if line.direction != "credit" or line.status not in TAKEN_IN:
        raise Conflict(
            f"The line is {line.status}; its money has moved on, so the record cannot take the bank's later "
            "version. Resolve it as 'known' and settle the difference with the bank.",
            errors=[field_error("decision", f"line {line.status}")],
        )
    deposit = None
    if line.status == "matched" and line.deposit_id is not None:
        deposit = await session.scalar(
            select(Deposit)
            .where(Deposit.id == line.deposit_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert deposit is not None
        if deposit.status not in ("awaiting", "held"):
            raise Conflict(
                f"The deposit is {deposit.status}; its money has moved on. Resolve the conflict as 'known' and "
                "settle the difference with the bank.",
                errors=[field_error("decision", f"deposit {deposit.status}")],
            )
    incoming = row.incoming
    delta = int(incoming["amount_fen"]) - line.amount_fen
    payer_changed = any(name in row.differences for name in PAYER)
    # the deposit's payer on record is its first arrival's: it follows a correction of that line only
    first = (
        await journal.first_entry(session, deposit.account_code, ARRIVALS) if deposit is not None else None
    )
    first_payer = first is not None and first.context.get("bank_line") == str(line.id)
    for name in TAKEN:
        if name in row.differences:
            value = incoming[name]
            setattr(line, name, date.fromisoformat(value) if name.endswith("_on") and value else value)
    party = ledger.Party("payer", line.payer_account or "", line.payer_name or "", line.payer_bank or "")
    context = {"bank_line": str(line.id), "reference": line.reference, "conflict": str(row.id)}
    if deposit is not None:
        context.update(
            deposit=str(deposit.id),
            tender=str(deposit.tender_id),
            lot=str(deposit.lot_id),
            bidder=str(deposit.organisation_id),
        )
    sequence = None
    if delta:
        account = deposit.account_code if deposit is not None else _account_of(line)
        draft = ledger.EntryDraft(
            "line_corrected",
            (ledger.Posting(journal.BANK, delta), ledger.Posting(account, -delta)),
            f"correct:{row.id}",
            context,
            who,
            party,
        )
        sequence = (await journal.post(session, draft, now)).entry.sequence
    elif payer_changed:
        draft = ledger.EntryDraft("payer_corrected", (), f"payer:{row.id}", context, who, party)
        sequence = (await journal.post(session, draft, now)).entry.sequence
    if deposit is not None:
        deposit.received_fen += delta
        if first_payer and payer_changed:
            deposit.payer_name, deposit.payer_account = line.payer_name, line.payer_account
            deposit.payer_bank = line.payer_bank
        if deposit.received_fen >= deposit.required_fen and deposit.status == "awaiting":
            deposit.status = "held"
            deposit.hold_reason = "held for the tender until a refund or forfeiture event"
        elif deposit.received_fen < deposit.required_fen and deposit.status == "held":
            deposit.status = "awaiting"
            deposit.hold_reason = (
                f"the bank corrected line {line.reference} to {line.amount_fen} fen; "
                f"{deposit.required_fen - deposit.received_fen} fen still due"
            )
    line.note = f"corrected from the bank's later version (conflict {row.id})"
    return sequence


def _account_of(line: BankLine) -> str:
    """The account a line not matched to a deposit was taken into."""
    return journal.INTEREST_INCOME if line.status == "interest" else journal.SUSPENSE
