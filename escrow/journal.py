"""The journal of the deposit ledger on the database: accounts, posting entries (idempotent, gapless,
hash-chained, balances checked in the same transaction), two-phase entries, reversals, the trial balance
and the program that checks every invariant.

Entries are appended under one lock (the ledger head row), so the sequence has no gaps and each entry's
hash chains to the one before. Balance rows are locked in account-code order, the same order everywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from escrow import ledger
from escrow.models import AccountBalance, JournalEntry, LedgerAccount, LedgerHead, Posting
from storage.db import upsert_ignore
from storage.problems import Conflict, NotFound, ValidationProblem, field_error

BANK = "bank:escrow"


@dataclass(frozen=True)
class Posted:
    """An entry as recorded, and whether this call only replayed an earlier identical request."""

    entry: JournalEntry
    postings: tuple[ledger.Posting, ...]
    replay: bool


def _problem(exc: ledger.LedgerError) -> ValidationProblem:
    return ValidationProblem(exc.message, errors=[field_error("postings", exc.code)], ledger_error=exc.code)


# ---------------------------------------------------------------- accounts


async def ensure_account(
    session: AsyncSession,
    code: str,
    kind: str,
    now: datetime,
    *,
    tender_id: uuid.UUID | None = None,
    lot_id: uuid.UUID | None = None,
    organisation_id: uuid.UUID | None = None,
    virtual_number: str | None = None,
    may_go_negative: bool = False,
) -> LedgerAccount:
    """The account with this code, opened (with a zero balance) if it does not exist yet."""
    ledger.AccountSpec(code, kind, may_go_negative).normal  # noqa: B018 - refuses an unknown kind
    await session.execute(
        upsert_ignore(
            session,
            LedgerAccount,
            {
                "id": uuid.uuid4(),
                "code": code,
                "kind": kind,
                "may_go_negative": may_go_negative,
                "tender_id": tender_id,
                "lot_id": lot_id,
                "organisation_id": organisation_id,
                "virtual_number": virtual_number,
                "created_at": now,
            },
        )
    )
    await session.execute(
        upsert_ignore(session, AccountBalance, {"account_code": code, "posted": 0, "pending": 0})
    )
    account = await session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    assert account is not None
    if account.kind != kind:
        raise Conflict(f"Account {code} exists with kind {account.kind}, not {kind}.")
    return account


async def _specs(session: AsyncSession, codes: Sequence[str]) -> dict[str, ledger.AccountSpec]:
    rows = await session.scalars(select(LedgerAccount).where(LedgerAccount.code.in_(codes)))
    specs = {a.code: ledger.AccountSpec(a.code, a.kind, a.may_go_negative) for a in rows}
    missing = sorted(set(codes) - specs.keys())
    if missing:
        raise ValidationProblem(
            f"Unknown ledger account {missing[0]}.", errors=[field_error("postings", "account.unknown")]
        )
    return specs


async def _lock_balances(session: AsyncSession, codes: Sequence[str]) -> dict[str, AccountBalance]:
    rows = await session.scalars(
        select(AccountBalance)
        .where(AccountBalance.account_code.in_(sorted(set(codes))))
        .order_by(AccountBalance.account_code)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {row.account_code: row for row in rows}


async def _lock_head(session: AsyncSession) -> LedgerHead:
    await session.execute(
        upsert_ignore(session, LedgerHead, {"id": 1, "sequence": 0, "hash": ledger.GENESIS})
    )
    head = await session.scalar(
        select(LedgerHead)
        .where(LedgerHead.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert head is not None
    return head


# ---------------------------------------------------------------- posting


async def _replay(session: AsyncSession, draft: ledger.EntryDraft) -> Posted | None:
    existing = await session.scalar(
        select(JournalEntry).where(JournalEntry.idempotency_key == draft.idempotency_key)
    )
    if existing is None:
        return None
    if existing.request_hash != ledger.request_hash(draft):
        raise Conflict(
            "This idempotency key was already used for another entry.",
            errors=[field_error("idempotency_key", "reused with another request")],
        )
    return Posted(existing, await postings_of(session, existing.sequence), True)


async def post(
    session: AsyncSession,
    draft: ledger.EntryDraft,
    now: datetime,
    *,
    phase: str = ledger.Phase.POSTED,
    resolves: int | None = None,
) -> Posted:
    """Append one entry: checked, idempotent (the same key and request answer the first entry; the same
    key with another request is a conflict), balances updated with the no-overdraft check, chained."""
    try:
        ledger.check_entry(draft)
    except ledger.LedgerError as exc:
        raise _problem(exc) from exc
    replayed = await _replay(session, draft)
    if replayed is not None:
        return replayed
    head = await _lock_head(session)
    replayed = await _replay(session, draft)  # a concurrent twin may have committed while we waited
    if replayed is not None:
        return replayed
    codes = [p.account for p in draft.postings]
    specs = await _specs(session, codes)
    rows = await _lock_balances(session, codes)
    current = {code: ledger.Balance(row.posted, row.pending) for code, row in rows.items()}
    try:
        if resolves is None:
            changed = ledger.apply(current, specs, draft.postings, phase=phase)
        elif phase == ledger.Phase.POSTED:
            changed = ledger.post_pending(current, specs, draft.postings)
        else:
            changed = ledger.void_pending(current, specs, draft.postings)
    except ledger.LedgerError as exc:
        if exc.code == "overdraft":
            raise Conflict(
                f"Account {exc.detail.get('account')} would be overdrawn: {exc.message}",
                errors=[field_error("postings", "overdraft")],
            ) from exc
        raise _problem(exc) from exc
    for code, balance in changed.items():
        rows[code].posted, rows[code].pending = balance.posted, balance.pending
    sequence = head.sequence + 1
    entry = JournalEntry(
        sequence=sequence,
        idempotency_key=draft.idempotency_key,
        request_hash=ledger.request_hash(draft),
        reason=draft.reason,
        phase=str(phase),
        resolves=resolves,
        at=now,
        actor=draft.actor,
        context=dict(draft.context),
        previous_hash=head.hash,
        hash=ledger.entry_hash(head.hash, sequence, draft, str(phase), now),
    )
    session.add(entry)
    await session.flush()
    for leg, p in enumerate(draft.postings):
        session.add(Posting(sequence=sequence, leg=leg, account_code=p.account, amount_fen=p.amount_fen))
    head.sequence, head.hash = sequence, entry.hash
    await session.flush()
    return Posted(entry, draft.postings, False)


async def postings_of(session: AsyncSession, sequence: int) -> tuple[ledger.Posting, ...]:
    """An entry's postings in leg order."""
    rows = await session.scalars(select(Posting).where(Posting.sequence == sequence).order_by(Posting.leg))
    return tuple(ledger.Posting(r.account_code, r.amount_fen) for r in rows)


async def entry(session: AsyncSession, sequence: int) -> JournalEntry:
    """One journal entry."""
    row = await session.get(JournalEntry, sequence)
    if row is None:
        raise NotFound(f"No journal entry {sequence}.")
    return row


async def resolve(
    session: AsyncSession, pending: int, target: str, *, key: str, reason: str, actor: str, now: datetime
) -> Posted:
    """Post or void a pending entry, at most once: the resolution is an entry of its own, with the same
    postings, that names the pending one (a second resolution is refused)."""
    original = await entry(session, pending)
    try:
        ledger.transition(original.phase, target)
    except ledger.LedgerError as exc:
        raise Conflict(exc.message, errors=[field_error("phase", exc.code)]) from exc
    legs = await postings_of(session, pending)
    draft = ledger.EntryDraft(reason, legs, key, {**original.context, "resolves": str(pending)}, actor)
    replayed = await _replay(session, draft)
    if replayed is not None:
        return replayed
    done = await session.scalar(select(JournalEntry.sequence).where(JournalEntry.resolves == pending))
    if done is not None:
        raise Conflict(
            f"Entry {pending} was already resolved by entry {done}.",
            errors=[field_error("phase", "phase.transition")],
        )
    return await post(session, draft, now, phase=target, resolves=pending)


async def reverse(session: AsyncSession, sequence: int, *, key: str, actor: str, now: datetime) -> Posted:
    """Correct a posted entry by a reversing entry, at most once (nothing is edited or deleted)."""
    original = await entry(session, sequence)
    if original.phase != ledger.Phase.POSTED:
        raise Conflict(f"Entry {sequence} is {original.phase}; only a posted entry is reversed.")
    if original.reason == "reversal":
        raise Conflict(f"Entry {sequence} is itself a reversal; post the correct entry instead.")
    draft = ledger.reversal(
        ledger.EntryDraft(
            original.reason,
            await postings_of(session, sequence),
            original.idempotency_key,
            {str(k): str(v) for k, v in original.context.items()},
            original.actor,
        ),
        key=key,
        actor=actor,
        original_sequence=sequence,
    )
    replayed = await _replay(session, draft)
    if replayed is not None:
        return replayed
    await _lock_head(session)  # serialises reversals, so two cannot both pass the check below
    earlier = await session.scalar(
        select(JournalEntry.sequence).where(
            JournalEntry.reason == "reversal", JournalEntry.context["reverses"].as_string() == str(sequence)
        )
    )
    if earlier is not None:
        raise Conflict(
            f"Entry {sequence} was already reversed by entry {earlier}.",
            errors=[field_error("sequence", "already reversed")],
        )
    return await post(session, draft, now)


# ---------------------------------------------------------------- reading


async def balance(session: AsyncSession, code: str) -> ledger.Balance:
    """An account's balance now (signed debit − credit, posted and pending)."""
    row = await session.get(AccountBalance, code)
    if row is None:
        raise NotFound(f"No ledger account {code}.")
    return ledger.Balance(row.posted, row.pending)


async def trial_balance(session: AsyncSession, at: datetime | None = None) -> list[dict[str, Any]]:
    """Every account's posted balance at an instant (now by default), recomputed from the postings; the
    debit and credit columns of a trial balance always total the same."""
    effective = select(JournalEntry.sequence).where(JournalEntry.phase == ledger.Phase.POSTED)
    if at is not None:
        effective = effective.where(JournalEntry.at <= at)
    sums = await session.execute(
        select(Posting.account_code, func.coalesce(func.sum(Posting.amount_fen), 0))
        .where(Posting.sequence.in_(effective))
        .group_by(Posting.account_code)
    )
    totals = dict(sums.all())
    accounts = await session.scalars(select(LedgerAccount).order_by(LedgerAccount.code))
    out = []
    for account in accounts:
        signed = int(totals.get(account.code, 0))
        out.append(
            {
                "account": account.code,
                "kind": account.kind,
                "debit_fen": signed if signed > 0 else 0,
                "credit_fen": -signed if signed < 0 else 0,
            }
        )
    return out


_ENTRY_COLUMNS = (
    JournalEntry.sequence,
    JournalEntry.idempotency_key,
    JournalEntry.request_hash,
    JournalEntry.reason,
    JournalEntry.phase,
    JournalEntry.at,
    JournalEntry.previous_hash,
    JournalEntry.hash,
    JournalEntry.context,
    JournalEntry.actor,
    JournalEntry.resolves,
)


async def _stored_entries(session: AsyncSession, batch: int = 5000) -> AsyncIterator[ledger.StoredEntry]:
    """Every entry with its postings, in sequence order, a batch at a time (constant memory). Plain rows,
    not ORM objects: the verifier reads a million postings and identity-mapped objects cost more than
    the checks."""
    after = 0
    while True:
        entries = (
            await session.execute(
                select(*_ENTRY_COLUMNS)
                .where(JournalEntry.sequence > after)
                .order_by(JournalEntry.sequence)
                .limit(batch)
            )
        ).all()
        if not entries:
            return
        last = entries[-1][0]
        legs: dict[int, list[ledger.Posting]] = {}
        rows = await session.execute(
            select(Posting.sequence, Posting.account_code, Posting.amount_fen)
            .where(Posting.sequence > after, Posting.sequence <= last)
            .order_by(Posting.sequence, Posting.leg)
        )
        for sequence, account, amount in rows:
            legs.setdefault(sequence, []).append(ledger.Posting(account, amount))
        for sequence, key, request, reason, phase, at, previous, link, context, actor, resolves in entries:
            yield ledger.StoredEntry(
                sequence=sequence,
                idempotency_key=key,
                request_hash=request,
                reason=reason,
                phase=phase,
                at=at,
                previous_hash=previous,
                hash=link,
                postings=tuple(legs.get(sequence, ())),
                context={str(k): str(v) for k, v in context.items()},
                actor=actor,
                resolves=resolves,
            )
        after = last


async def verify(session: AsyncSession) -> list[ledger.Check]:
    """Check every ledger invariant from the stored rows, streaming the journal once."""
    specs = {
        a.code: ledger.AccountSpec(a.code, a.kind, a.may_go_negative)
        for a in await session.scalars(select(LedgerAccount))
    }
    checker = ledger.Verifier(specs)
    async for stored in _stored_entries(session):
        checker.feed(stored)
    balances = {
        b.account_code: ledger.Balance(b.posted, b.pending)
        for b in await session.scalars(select(AccountBalance))
    }
    head = await session.get(LedgerHead, 1)
    checks = checker.finish(balances)
    last_hash = checker.last_hash
    checks.append(
        ledger.Check(
            "the head names the last entry",
            (head is None and last_hash == ledger.GENESIS) or (head is not None and head.hash == last_hash),
            f"head at {head.sequence if head else 0}, chain ends {last_hash[:16]}…",
        )
    )
    return checks
