"""What an auditor checks and reads about the deposits, without trusting the service that wrote them.

`verify` runs the ledger's own invariants (`escrow/journal.py`), the signed heads against the journal
(`escrow/published.py`), and then the deposit invariants below, each recomputed from the stored rows and
naming every offender: every deposit received is refunded, forfeited with a reason, or held for a stated
reason; no refund exceeds the deposit plus its interest; refunds went to the paying account (or to an
approved change), and each deposit's payer is the one its arrival names — both judged against the payers
and payees inside the hashed entries, never against columns anyone with the database could edit; each
bank line was taken into the ledger at most once; interest recomputes exactly from the rate tables; no
obligation was paid twice; every overdue refund is flagged (S-01); no bank line conflict is left open.
The read models (per tender, per bidder, per statement, overdue and late-paid) feed the auditor's pages
and their CSV/XLSX exports.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from escrow import batches, conflicts, journal, ledger, published, refunds, subaccounts
from escrow.models import (
    BankLine,
    BankLineConflict,
    Deposit,
    Forfeiture,
    JournalEntry,
    Obligation,
    PayeeChange,
    Posting,
    RefundBatch,
    RefundInstruction,
)
from escrow.schemas import AuditDepositRow, ObligationRow, StatementLineRow
from rules.calendar import WorkingCalendar, local_date
from storage import tables

HELD: Final = "every deposit refunded, forfeited with a reason, or held for a stated reason"
NOT_EXCEEDED: Final = "no refund exceeds deposit plus interest"
PAYEE: Final = "refunds went to the paying account"
PAYER: Final = "each deposit's payer is the one its hashed arrival names"
LINES_ONCE: Final = "each bank line taken into the ledger at most once"
INTEREST: Final = "interest recomputes exactly"
PAID_ONCE: Final = "no obligation paid twice"
FLAGGED: Final = "every overdue refund is flagged"
CONFLICTS: Final = "no bank line conflict left open"

DEPOSIT_CHECKS: Final = (
    HELD,
    NOT_EXCEEDED,
    PAYEE,
    PAYER,
    LINES_ONCE,
    INTEREST,
    PAID_ONCE,
    FLAGGED,
    CONFLICTS,
)

# the reasons that bring a bank line into the ledger (each line at most once)
_ARRIVALS: Final = frozenset({"deposit_received", "suspense_received", "interest_received"})
# the entries whose hashed text names a party
_NAMING: Final = tuple(sorted(ledger.PARTY_ROLES))


@dataclass(frozen=True)
class _Named:
    """A hashed entry that names a party (scheme 3), or a scheme 2 refund (its context's payee account)."""

    sequence: int
    reason: str
    scheme: int
    context: dict[str, Any]
    party: ledger.Party

    def shown(self) -> str:
        return f"{self.party.account} ({self.party.name})"


def _triple(account: str | None, name: str | None, bank: str | None) -> tuple[str, str, str]:
    return (account or "", name or "", bank or "")


def _of(party: ledger.Party) -> tuple[str, str, str]:
    return (party.account, party.name, party.bank)


async def _named_entries(session: AsyncSession) -> list[_Named]:
    """Every entry whose hashed text names a payer or payee, in sequence order."""
    rows = await session.execute(
        select(
            JournalEntry.sequence,
            JournalEntry.reason,
            JournalEntry.scheme,
            JournalEntry.context,
            JournalEntry.party_role,
            JournalEntry.party_account,
            JournalEntry.party_name,
            JournalEntry.party_bank,
        )
        .where(JournalEntry.reason.in_(_NAMING))
        .order_by(JournalEntry.sequence)
    )
    return [
        _Named(
            sequence,
            reason,
            scheme,
            dict(context),
            ledger.Party(role or "", account or "", name or "", bank or ""),
        )
        for sequence, reason, scheme, context, role, account, name, bank in rows
    ]


def _payer_entry(named: list[_Named], deposit_id: str) -> _Named | None:
    """The hashed entry naming a deposit's payer: its first arrival, as corrected since (the same rule
    `forfeiture.payee_of` pays by)."""
    arrival = next(
        (n for n in named if n.reason in conflicts.ARRIVALS and n.context.get("deposit") == deposit_id), None
    )
    if arrival is None or arrival.scheme != 3:
        return None
    line = arrival.context.get("bank_line")
    corrections = [
        n
        for n in named
        if n.reason in conflicts.CORRECTIONS and n.scheme == 3 and n.context.get("bank_line") == line
    ]
    return corrections[-1] if corrections and line else arrival


async def _account_flows(session: AsyncSession) -> dict[str, dict[str, int]]:
    """Per deposit account: fen in (received, matched and corrected), interest accrued, refunded (posted),
    forfeited."""
    rows = await session.execute(
        select(Posting.account_code, JournalEntry.reason, JournalEntry.phase, Posting.amount_fen)
        .join(JournalEntry, JournalEntry.sequence == Posting.sequence)
        .where(Posting.account_code.like("deposit:%"))
    )
    flows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for code, reason, phase, amount in rows:
        if reason in ("deposit_received", "suspense_matched", "line_corrected"):
            flows[code]["in"] += -amount
        elif reason == "interest_accrued":
            flows[code]["interest"] += -amount
        elif reason == "refund_confirmed" and phase == ledger.Phase.POSTED:
            flows[code]["refunded"] += amount
        elif reason == "forfeiture":
            flows[code]["forfeited"] += amount
        elif reason == "reversal":
            flows[code]["reversed"] += amount
    return flows


async def verify_deposits(
    session: AsyncSession, cal: WorkingCalendar, now: datetime, *, limit: int = ledger.OFFENDER_LIMIT
) -> list[ledger.Check]:
    """The deposit invariants, each naming every offender (up to `limit`, all counted) or what it covered.
    Payers and payees are checked against the hashed entries, never against editable columns."""
    f = ledger.Offenders(limit)
    today = local_date(now)
    deposits = list(await session.scalars(select(Deposit)))
    flows = await _account_flows(session)
    approved = {
        row.deposit_id
        for row in await session.scalars(select(Forfeiture).where(Forfeiture.status == "approved"))
        if row.reason.strip()
    }
    open_obligations = {
        row.deposit_id
        for row in await session.scalars(
            select(Obligation).where(Obligation.status.in_(refunds.OPEN_OBLIGATION))
        )
    }
    instructions = list(
        await session.scalars(select(RefundInstruction).order_by(RefundInstruction.pending_sequence))
    )
    at_the_bank = {i.account_code for i in instructions if i.status == "sent"}
    for d in deposits:
        flow = flows.get(d.account_code, {})
        held = (
            flow.get("in", 0)
            + flow.get("interest", 0)
            - flow.get("refunded", 0)
            - flow.get("forfeited", 0)
            - flow.get("reversed", 0)
        )
        pending_refund = d.account_code in at_the_bank
        if d.status == "forfeited":
            if d.id not in approved:
                f.add(HELD, f"{d.account_code} is forfeited without an approved forfeiture with a reason")
        elif d.status == "refunded":
            if held != 0:
                f.add(HELD, f"{d.account_code} is marked refunded but {held} fen are still held")
        elif held > 0 or pending_refund:
            if d.id not in open_obligations and not d.hold_reason.strip():
                f.add(HELD, f"{d.account_code} holds {held} fen with no obligation and no stated reason")
        refunded = flow.get("refunded", 0)
        if refunded > flow.get("in", 0) + flow.get("interest", 0):
            f.add(
                NOT_EXCEEDED,
                f"{d.account_code}: refunded {refunded} fen of {flow.get('in', 0)} received "
                f"+ {flow.get('interest', 0)} interest",
            )

    # payers and payees, against the hashed entries; at most one paid instruction per obligation
    named = await _named_entries(session)
    instructed = {n.sequence: n for n in named if n.reason == "refund_instructed"}
    deposits_by_id = {d.id: d for d in deposits}
    payers = {d.id: _payer_entry(named, str(d.id)) for d in deposits}
    hashed_payers = 0
    for d in deposits:
        entry = payers[d.id]
        if entry is None:
            continue  # nothing received yet, or only through scheme 2 entries, which name no payer
        hashed_payers += 1
        if _triple(d.payer_account, d.payer_name, d.payer_bank) != _of(entry.party):
            kind = "arrival" if entry.reason in conflicts.ARRIVALS else "correction"
            f.add(
                PAYER,
                f"{d.account_code} is on record as paid from {d.payer_account} ({d.payer_name}), but its "
                f"hashed {kind} entry {entry.sequence} names {entry.shown()}",
            )
    changes: dict[uuid.UUID, list[PayeeChange]] = defaultdict(list)
    for change in await session.scalars(select(PayeeChange)):
        changes[change.deposit_id].append(change)
    paid_per_obligation: dict[uuid.UUID, int] = defaultdict(int)
    batch_by_id = {b.id: b for b in await session.scalars(select(RefundBatch))}
    obligations = {o.id: o for o in await session.scalars(select(Obligation))}
    lines_by_id = {line.id: line for line in await session.scalars(select(BankLine))}
    for ins in instructions:
        if ins.status == "paid":
            paid_per_obligation[ins.obligation_id] += 1
        obligation = obligations.get(ins.obligation_id)
        if obligation is None:
            f.add(PAYEE, f"instruction {ins.end_to_end_id} names no obligation")
            continue
        refund = instructed.get(ins.pending_sequence)
        if refund is None:
            f.add(
                PAYEE,
                f"instruction {ins.end_to_end_id} names entry {ins.pending_sequence}, not its refund entry",
            )
            continue
        problem = _payee_problem(
            ins, refund, obligation, named, deposits_by_id, lines_by_id, changes, batch_by_id
        )
        if problem is not None:
            f.add(PAYEE, problem)
    for obligation_id, n in paid_per_obligation.items():
        if n > 1:
            f.add(PAID_ONCE, f"obligation {obligation_id} has {n} paid instructions")

    # bank lines: each taken in at most once, and the line names the entry that took it
    seen: dict[str, list[int]] = defaultdict(list)
    rows = await session.execute(
        select(JournalEntry.sequence, JournalEntry.reason, JournalEntry.context)
        .where(JournalEntry.reason.in_(sorted(_ARRIVALS | {"suspense_matched"})))
        .order_by(JournalEntry.sequence)
    )
    for sequence, reason, context in rows:
        line_named = str(context.get("bank_line", ""))
        if line_named:
            seen[f"{'match' if reason == 'suspense_matched' else 'in'}:{line_named}"].append(sequence)
    for key, sequences in seen.items():
        if len(sequences) > 1:
            f.add(LINES_ONCE, f"bank line {key.split(':', 1)[1]} entered the ledger by entries {sequences}")
    lines = sorted(lines_by_id.values(), key=lambda x: x.reference)
    for line in lines:
        if line.status in ("matched", "suspense", "interest", "returning", "returned"):
            taken = seen.get(f"in:{line.id}", [])
            if not taken:
                f.add(LINES_ONCE, f"bank line {line.reference} is {line.status} but no entry took it in")

    # interest: the fen on each obligation recompute from the rate tables and the lines
    rates = await batches.rate_table(session, "deposit")
    lpr = await batches.rate_table(session, "lpr")
    accrued: dict[str, int] = defaultdict(int)
    for context, amount in (
        await session.execute(
            select(JournalEntry.context, Posting.amount_fen)
            .join(Posting, Posting.sequence == JournalEntry.sequence)
            .where(
                JournalEntry.reason == "interest_accrued",
                Posting.account_code == subaccounts.INTEREST_EXPENSE,
            )
        )
    ).all():
        accrued[str(context.get("obligation", ""))] += amount
    last_batch: dict[uuid.UUID, tuple[date, int]] = {}
    for ins in instructions:
        last_batch[ins.obligation_id] = (batch_by_id[ins.batch_id].execution_on, ins.pending_sequence)
    checked = 0
    for obligation in sorted(obligations.values(), key=lambda o: (o.created_at, str(o.id))):
        latest = last_batch.get(obligation.id)
        if latest is None:
            if accrued.get(str(obligation.id)):
                f.add(INTEREST, f"obligation {obligation.id} has interest but was never instructed")
            continue
        through, pending = latest
        try:
            expected = await batches.interest_through(
                session, obligation, through, rates, lpr, before=pending
            )
        except (LookupError, ValueError) as exc:
            f.add(INTEREST, f"obligation {obligation.id}: {exc}")
            continue
        checked += 1
        if expected != obligation.interest_fen or expected != accrued.get(str(obligation.id), 0):
            f.add(
                INTEREST,
                f"obligation {obligation.id}: recomputed {expected} fen, recorded {obligation.interest_fen}, "
                f"posted {accrued.get(str(obligation.id), 0)}",
            )

    # S-01: every overdue obligation carries its flag
    overdue = 0
    for obligation in sorted(obligations.values(), key=lambda o: (o.due_on, str(o.id))):
        late_open = obligation.status in refunds.OPEN_OBLIGATION and obligation.due_on < today
        if late_open:
            overdue += 1
            if obligation.flagged_at is None:
                f.add(FLAGGED, f"obligation {obligation.id} was due {obligation.due_on} and is not flagged")
    del cal  # lights are derived from the calendar; the flag is what this check covers

    # conflicting bank lines: none left open
    resolved = 0
    for conflict in await conflict_rows(session):
        if conflict.status == "open":
            f.add(
                CONFLICTS,
                f"bank line {conflicts.describe(conflict.reference, conflict.differences)} "
                f"(conflict {conflict.id}, open since {conflict.detected_at.isoformat()})",
            )
        else:
            resolved += 1

    covered = {
        HELD: f"{len(deposits)} deposits",
        NOT_EXCEEDED: f"{len(deposits)} deposits",
        PAYEE: f"{len(instructions)} instructions against their hashed refund entries",
        PAYER: f"{hashed_payers} deposits' payers against their hashed arrivals",
        LINES_ONCE: f"{len(lines)} bank lines",
        INTEREST: f"{checked} obligations recomputed",
        PAID_ONCE: f"{len(paid_per_obligation)} obligations paid",
        FLAGGED: f"{overdue} overdue, all flagged",
        CONFLICTS: f"{resolved} resolved, none open",
    }
    return [f.check(name, covered[name]) for name in DEPOSIT_CHECKS]


def _payee_problem(
    ins: RefundInstruction,
    refund: _Named,
    obligation: Obligation,
    named: list[_Named],
    deposits_by_id: dict[uuid.UUID, Deposit],
    lines_by_id: dict[uuid.UUID, BankLine],
    changes: dict[uuid.UUID, list[PayeeChange]],
    batch_by_id: dict[uuid.UUID, RefundBatch],
) -> str | None:
    """What is wrong with where one instruction pays, if anything: its columns against its hashed refund
    entry (what the bank file is rendered from must be what was hashed), then that hashed payee against the
    hashed payers and approved changes before it."""
    columns = _triple(ins.payee_account, ins.payee_name, ins.payee_bank)
    if refund.scheme == 2:  # the older scheme hashed the payee's account in the context only
        account = refund.context.get("payee_account")
        if ins.payee_account != account:
            return f"instruction {ins.end_to_end_id} pays {ins.payee_account}, but its hashed entry {refund.sequence} names {account}"
        legacy = _legacy_payees(ins, obligation, deposits_by_id, lines_by_id, changes, batch_by_id)
        if account not in legacy:
            return f"instruction {ins.end_to_end_id} pays {account}, not the paying account"
        return None
    if columns != _of(refund.party):
        return (
            f"instruction {ins.end_to_end_id} pays {ins.payee_account} ({ins.payee_name}), but its hashed "
            f"entry {refund.sequence} names {refund.shown()}"
        )
    before = [n for n in named if n.sequence < refund.sequence and n.scheme == 3]
    allowed: set[tuple[str, str, str]]
    if obligation.deposit_id is not None:
        deposit_id = str(obligation.deposit_id)
        allowed = {
            _of(n.party)
            for n in before
            if n.context.get("deposit") == deposit_id and n.reason != "refund_instructed"
        }
        whose = (
            deposits_by_id[obligation.deposit_id].account_code
            if obligation.deposit_id in deposits_by_id
            else deposit_id
        )
    else:
        line_id = str(obligation.line_id)
        allowed = {
            _of(n.party) for n in before if n.context.get("bank_line") == line_id and n.party.role == "payer"
        }
        whose = f"bank line {line_id}"
    if _of(refund.party) not in allowed:
        return (
            f"instruction {ins.end_to_end_id}: its hashed entry {refund.sequence} pays {refund.shown()}, which no "
            f"hashed arrival or approved change of {whose} names"
        )
    return None


def _legacy_payees(
    ins: RefundInstruction,
    obligation: Obligation,
    deposits_by_id: dict[uuid.UUID, Deposit],
    lines_by_id: dict[uuid.UUID, BankLine],
    changes: dict[uuid.UUID, list[PayeeChange]],
    batch_by_id: dict[uuid.UUID, RefundBatch],
) -> set[str | None]:
    """Where a scheme 2 refund could go: the payer or an approved change on record (the older scheme did
    not hash them)."""
    if obligation.deposit_id is not None:
        deposit = deposits_by_id[obligation.deposit_id]
        return {deposit.payer_account} | {
            c.payee_account
            for c in changes.get(deposit.id, [])
            if c.recorded_at <= batch_by_id[ins.batch_id].created_at
        }
    line = lines_by_id.get(obligation.line_id) if obligation.line_id else None
    return {line.payer_account if line else None}


async def conflict_rows(session: AsyncSession) -> list[BankLineConflict]:
    """Every bank line conflict, oldest first."""
    return await conflicts.listed(session)


async def verify(
    session: AsyncSession,
    cal: WorkingCalendar,
    now: datetime,
    public_raw: bytes,
    *,
    limit: int = ledger.OFFENDER_LIMIT,
) -> list[ledger.Check]:
    """The ledger's invariants, the signed heads against the journal (with the platform's public key),
    then the deposits'. Each check names every offender, up to `limit`."""
    return [
        *await journal.verify(session, limit=limit),
        await published.check_signed(session, public_raw, limit=limit),
        *await verify_deposits(session, cal, now, limit=limit),
    ]


# ---------------------------------------------------------------- read models and exports

DEPOSIT_COLUMNS: Final = (
    tables.Column("account", "Sub-account 子账户", "text"),
    tables.Column("virtual_number", "Virtual number 虚拟子账号", "text"),
    tables.Column("status", "Status 状态", "text"),
    tables.Column("required_fen", "Required 应缴 (yuan)", "fen"),
    tables.Column("received_fen", "Received 已缴 (yuan)", "fen"),
    tables.Column("held_fen", "Held now 现存 (yuan)", "fen"),
    tables.Column("first_arrived_on", "Arrived 到账日", "date"),
    tables.Column("payer_account", "Paid from 付款账户", "text"),
    tables.Column("hold_reason", "Why held 留存原因", "text"),
)

OBLIGATION_COLUMNS: Final = (
    tables.Column("account", "Sub-account 子账户", "text"),
    tables.Column("rule", "Rule 依据", "text"),
    tables.Column("event", "Event 事件", "text"),
    tables.Column("event_on", "Event day 事件日", "date"),
    tables.Column("due_on", "Due 应退日", "date"),
    tables.Column("status", "Status 状态", "text"),
    tables.Column("light", "Light 灯", "text"),
    tables.Column("interest_fen", "Interest 利息 (yuan)", "fen"),
    tables.Column("paid_on", "Paid 实退日", "date"),
    tables.Column("attempts", "Attempts 次数", "int"),
    tables.Column("flagged_at", "Flagged 标红 (UTC+8)", "datetime"),
)

LINE_COLUMNS: Final = (
    tables.Column("reference", "Bank reference 流水号", "text"),
    tables.Column("booked_on", "Booked 记账日", "date"),
    tables.Column("direction", "Direction 借贷", "text"),
    tables.Column("amount_fen", "Amount 金额 (yuan)", "fen"),
    tables.Column("payer_name", "Payer 付款人", "text"),
    tables.Column("payer_account", "Payer account 付款账户", "text"),
    tables.Column("credited_account", "Credited 收款子账号", "text"),
    tables.Column("status", "Status 状态", "text"),
    tables.Column("entry_sequence", "Journal entry 分录", "int"),
    tables.Column("note", "Note 说明", "text"),
)

TRIAL_COLUMNS: Final = (
    tables.Column("account", "Account 科目", "text"),
    tables.Column("kind", "Kind 类别", "text"),
    tables.Column("debit_fen", "Debit 借方 (yuan)", "fen"),
    tables.Column("credit_fen", "Credit 贷方 (yuan)", "fen"),
)


async def deposit_rows(session: AsyncSession, deposits: list[Deposit]) -> list[AuditDepositRow]:
    """Deposits as table rows."""
    out: list[AuditDepositRow] = []
    for d in deposits:
        out.append(
            {
                "id": str(d.id),
                "account": d.account_code,
                "virtual_number": d.virtual_number,
                "tender_id": str(d.tender_id),
                "lot_id": str(d.lot_id),
                "organisation_id": str(d.organisation_id),
                "status": d.status,
                "required_fen": d.required_fen,
                "received_fen": d.received_fen,
                "held_fen": await subaccounts.held_fen(session, d),
                "first_arrived_on": d.first_arrived_on,
                "payer_name": d.payer_name,
                "payer_account": d.payer_account,
                "hold_reason": d.hold_reason,
            }
        )
    return out


async def obligation_rows(
    session: AsyncSession, rows: list[Obligation], cal: WorkingCalendar, today: date
) -> list[ObligationRow]:
    """Obligations as table rows, each with its S-01 light."""
    accounts_by_deposit = {
        d.id: d.account_code
        for d in await session.scalars(
            select(Deposit).where(Deposit.id.in_([o.deposit_id for o in rows if o.deposit_id]))
        )
    }
    return [
        {
            "id": str(o.id),
            "account": accounts_by_deposit.get(o.deposit_id, "suspense") if o.deposit_id else "suspense",
            "deposit_id": str(o.deposit_id) if o.deposit_id else None,
            "rule": o.rule,
            "event": o.event,
            "event_on": o.event_on,
            "due_on": o.due_on,
            "status": o.status,
            "light": refunds.light_of(o, cal, today),
            "interest_fen": o.interest_fen,
            "paid_on": o.paid_on,
            "attempts": o.attempts,
            "flagged_at": o.flagged_at,
            "note": o.note,
        }
        for o in rows
    ]


def line_rows(lines: list[BankLine]) -> list[StatementLineRow]:
    """Bank lines as table rows."""
    return [
        {
            "id": str(x.id),
            "reference": x.reference,
            "booked_on": x.booked_on,
            "direction": x.direction,
            "kind": x.kind,
            "amount_fen": x.amount_fen,
            "payer_name": x.payer_name,
            "payer_account": x.payer_account,
            "credited_account": x.credited_account,
            "end_to_end_id": x.end_to_end_id,
            "status": x.status,
            "entry_sequence": x.entry_sequence,
            "deposit_id": str(x.deposit_id) if x.deposit_id else None,
            "note": x.note,
        }
        for x in lines
    ]


async def overdue_rows(session: AsyncSession, cal: WorkingCalendar, today: date) -> list[ObligationRow]:
    """Obligations overdue now, and those paid after their due day."""
    rows = [
        o
        for o in await refunds.obligations_list(session)
        if (o.status in refunds.OPEN_OBLIGATION and o.due_on < today)
        or (o.paid_on is not None and o.paid_on > o.due_on)
    ]
    return await obligation_rows(session, rows, cal, today)


def export(
    fmt: str, sheets: Sequence[tuple[str, Sequence[tables.Column], Sequence[Mapping[str, object]]]]
) -> tuple[bytes, str]:
    """The rows as CSV (first sheet) or XLSX (every sheet), with the media type."""
    if fmt == "csv":
        _title, columns, rows = sheets[0]
        return tables.csv_bytes(columns, rows), "text/csv; charset=utf-8"
    return (
        tables.xlsx_bytes([tables.Sheet(title, columns, rows) for title, columns, rows in sheets]),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
