"""The ledger's heads as the platform signs and publishes them (`escrow/heads.py` is the pure half).

What counts as a batch: one use case that moved money in one transaction — a bank statement or a signed
notification taken in, a suspense line matched, a refund batch instructed, the bank's results applied, a
forfeiture approved, an approved change of payee, a bank line conflict resolved. Each ends with `seal`
in its own transaction, under the ledger's head lock, so the signed head and the entries it covers commit
or vanish together, and a head's `entries` is exactly what the journal held when that batch ended. The
chronograph calls `seal_hourly`, so the newest head is never much more than an hour old even when nothing
moves (its age proves the platform is alive and publishing), and it also covers any entry written by a
path that did not seal (there should be none: "signed heads match the journal" names such entries).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from escrow import heads, journal, ledger
from escrow.models import JournalEntry, LedgerHead, SignedLedgerHead
from storage.problems import NotFound
from storage.signing import LogSigner

HOURLY: Final = timedelta(hours=1)
MAX_PAGE: Final = 1000


def _head(row: SignedLedgerHead) -> heads.SignedHead:
    return heads.SignedHead(
        row.sequence, row.entries, row.chain_hash, row.signed_at, row.key_id, base64.b64decode(row.signature)
    )


async def _newest(session: AsyncSession) -> SignedLedgerHead | None:
    return await session.scalar(select(SignedLedgerHead).order_by(SignedLedgerHead.sequence.desc()).limit(1))


async def seal(
    session: AsyncSession, signer: LogSigner, now: datetime, cause: str, *, always: bool = False
) -> heads.SignedHead | None:
    """Sign the journal's head in the caller's transaction, under the ledger's head lock, if the journal
    moved since the newest signed head (or `always`, for the hourly head). Answers the new head, or None
    when there was nothing to sign. A batch that moved nothing does not wait for the lock: the head it
    reads is committed, or its own."""
    if not always:
        current = await session.scalar(select(LedgerHead.sequence).where(LedgerHead.id == 1))
        newest = await _newest(session)
        if (newest.entries if newest is not None else 0) == (current or 0):
            return None
    entries, chain_hash = await journal.lock_head(session)
    newest = await _newest(session)
    if newest is not None and newest.entries == entries and not always:
        return None
    head = heads.sign(signer, (newest.sequence if newest else 0) + 1, entries, chain_hash, now)
    session.add(
        SignedLedgerHead(
            sequence=head.sequence,
            entries=head.entries,
            chain_hash=head.chain_hash,
            signed_at=head.signed_at,
            key_id=head.key_id,
            signature=base64.b64encode(head.signature).decode("ascii"),
            cause=cause,
        )
    )
    await session.flush()
    return head


async def seal_hourly(
    session: AsyncSession, signer: LogSigner, now: datetime, every: timedelta = HOURLY
) -> heads.SignedHead | None:
    """The chronograph's head: signed when the newest is `every` old (or there is none), or when the
    journal has moved past it. Safe to run from two workers at once (the head lock orders them)."""
    newest = await _newest(session)
    entries = await session.scalar(
        select(JournalEntry.sequence).order_by(JournalEntry.sequence.desc()).limit(1)
    )
    if newest is not None and newest.signed_at + every > now and newest.entries == (entries or 0):
        return None
    await journal.lock_head(session)
    newest = await _newest(session)  # another worker may have signed while this one waited
    if newest is not None and newest.signed_at + every > now:
        return await seal(session, signer, now, "hourly")
    return await seal(session, signer, now, "hourly", always=True)


async def latest(session: AsyncSession) -> heads.SignedHead:
    """The newest signed head; NotFound before the first."""
    row = await _newest(session)
    if row is None:
        raise NotFound("No ledger head has been signed yet.")
    return _head(row)


async def head_at(session: AsyncSession, sequence: int) -> heads.SignedHead:
    """Signed head number `sequence`, exactly as signed, to check offline with the platform's key."""
    row = await session.get(SignedLedgerHead, sequence)
    if row is None:
        raise NotFound(f"No ledger head {sequence}.")
    return _head(row)


async def page(session: AsyncSession, after: int, limit: int) -> list[heads.SignedHead]:
    """Up to `limit` signed heads numbered after `after`, oldest first."""
    rows = await session.scalars(
        select(SignedLedgerHead)
        .where(SignedLedgerHead.sequence > after)
        .order_by(SignedLedgerHead.sequence)
        .limit(min(limit, MAX_PAGE))
    )
    return [_head(row) for row in rows]


async def _all(session: AsyncSession) -> list[heads.SignedHead]:
    rows = await session.scalars(select(SignedLedgerHead).order_by(SignedLedgerHead.sequence))
    return [_head(row) for row in rows]


async def _hashes(session: AsyncSession, named: Sequence[heads.SignedHead]) -> tuple[dict[int, str], int]:
    """The stored hash of each entry the heads name, and the journal's last entry."""
    wanted = sorted({h.entries for h in named if h.entries > 0})
    found: dict[int, str] = {}
    for start in range(0, len(wanted), 10_000):
        part = wanted[start : start + 10_000]
        rows = await session.execute(
            select(JournalEntry.sequence, JournalEntry.hash).where(JournalEntry.sequence.in_(part))
        )
        found.update({int(sequence): str(link) for sequence, link in rows})
    last = await session.scalar(select(JournalEntry.sequence).order_by(JournalEntry.sequence.desc()).limit(1))
    return found, int(last or 0)


async def check_signed(
    session: AsyncSession, public_raw: bytes, *, limit: int = ledger.OFFENDER_LIMIT
) -> ledger.Check:
    """ "signed heads match the journal": every stored head against the journal, with the platform key."""
    stored = await _all(session)
    hashes, last = await _hashes(session, stored)
    return heads.judge_signed(stored, hashes, last, public_raw, limit=limit)


async def _held(session: AsyncSession, kept: heads.SignedHead) -> str | None:
    """The stored hash of the kept head's entry, if that entry's own link recomputes from its stored
    fields (GENESIS for an empty head); None when it is missing or does not recompute."""
    if kept.entries == 0:
        return ledger.GENESIS
    async for batch in journal.entries_from(session, kept.entries, batch=1):
        entry = batch[0]
        if entry.sequence != kept.entries:
            return None
        problems = ledger.entry_problems(entry, entry.sequence - 1, entry.previous_hash, {})
        return entry.hash if ledger.REQUESTS not in problems and ledger.CHAIN not in problems else None
    return None


async def _extension(
    session: AsyncSession, kept: heads.SignedHead, limit: int, reference: bool
) -> ledger.Check:
    bind = session.bind
    if not reference and bind is not None and bind.dialect.name == "postgresql":
        entries, named, total = await journal.chain_after(session, kept.entries, limit=limit)
        return ledger.judged(heads.KEPT_EXTENDED, named, total, heads.extended(kept, entries), limit)
    extension = heads.Extension(kept, limit)
    async for batch in journal.entries_from(session, kept.entries + 1):
        for entry in batch:
            extension.feed(entry)
    return extension.finish()


async def check_kept(
    session: AsyncSession,
    kept: heads.SignedHead,
    public_raw: bytes,
    *,
    limit: int = ledger.OFFENDER_LIMIT,
    reference: bool = False,
) -> list[ledger.Check]:
    """The checks of a head an auditor kept: signed by the pinned key, still held by the journal (the entry
    it names recomputes to its hash), and extended by every entry since (each chained on the one before
    and recomputing). Reads the entries after the head only (on PostgreSQL set-based, with the queries of
    `journal.verify`; elsewhere, or with `reference`, streamed through `heads.Extension`), plus the stored
    heads to locate a rewrite."""
    stored = await _all(session)
    hashes, last = await _hashes(session, [*stored, kept])
    signed, still = heads.judge_kept(kept, public_raw, await _held(session, kept), last, stored, hashes)
    if not still.ok:
        # a journal that no longer holds the head cannot extend it; say so rather than list every link
        return [
            signed,
            still,
            ledger.failed(heads.KEPT_EXTENDED, ["the journal no longer holds the kept head"], 1),
        ]
    return [signed, still, await _extension(session, kept, limit, reference)]
