"""Use cases of forfeiture (W-06, W-16) and of the payee: a proposal to keep a deposit, a supervisor's decision,
and where a refund goes (back to the paying account, hashed in the journal) with the centre's recorded changes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from escrow import conflicts, journal, ledger, published
from escrow.models import (
    BankLine,
    BankLineConflict,
    Deposit,
    Forfeiture,
    JournalEntry,
    Obligation,
    PayeeChange,
)
from escrow.refunds import oblige, open_obligation
from escrow.subaccounts import (
    FORFEITED,
    actor_of,
    awaiting_decision,
    deposit_of,
    get_deposit,
    guarantees_of,
    held_fen,
)
from rules.calendar import WorkingCalendar
from storage.problems import (
    Conflict,
    NotFound,
    ValidationProblem,
    field_error,
)
from storage.signing import LogSigner

# ---------------------------------------------------------------- forfeiture (W-06, W-16)

FORFEITURE_RULES = frozenset({"W-06", "W-16"})


async def on_proven_fault(
    session: AsyncSession, lot_id: uuid.UUID, organisation_id: uuid.UUID, reason: str, now: datetime
) -> Forfeiture | None:
    """A bid revoked because its custody opening proved the bidder's fault (E-03 撤销): the deposit may
    be kept under W-06, so the platform proposes its forfeiture with the proof's summary as the reason; a
    supervisor decides, as for every forfeiture. None when there is no deposit (or nothing left to keep)."""
    deposit = await deposit_of(session, lot_id, organisation_id)
    if deposit is None or deposit.status in ("forfeited", "refunded", "waived"):
        return None
    open_one = await open_obligation(session, deposit)
    if open_one is not None and open_one.status == "instructed":
        return None  # the refund is already with the bank; nothing can be stopped here
    return await propose_forfeiture(session, deposit, "W-06", reason, "job:custody", now)


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
    open_one = await open_obligation(session, deposit)
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
    row = await propose_forfeiture(session, deposit, rule, reason, actor_of(actor), now)
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
    row = await awaiting_decision(
        session, Forfeiture, forfeiture_id, "proposed", note, "Record the grounds of the decision."
    )
    deposit = await get_deposit(session, row.deposit_id, lock=True)
    row.decided_by, row.decided_at, row.decision_note, row.open_key = actor.user_id, now, note.strip(), None
    open_one = await open_obligation(session, deposit)
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
                    actor_of(actor),
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
                actor=actor_of(actor),
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
        .where(BankLineConflict.line_id == line_id, JournalEntry.reason.in_(conflicts.CORRECTIONS))
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
    open_one = await open_obligation(session, deposit)
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
            actor_of(actor),
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
