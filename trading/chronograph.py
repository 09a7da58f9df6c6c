"""The chronograph (定时器): every tender transition that is due runs in a transaction of its own.

Deadlines cluster (09:30 is every agency's favourite), so a tick never caps how many tenders it handles:
it lists every tender due at `now` in one short read, then claims each with a row lock taken with
SKIP LOCKED and a fresh check that it is still due, runs its transition and commits. A second worker (or
a second tick of the same one) skips a row another holds and finds a committed one no longer due, so each
tender moves exactly once; on SQLite, where writers queue behind one another, the fresh check alone does
it. Each transaction is short, so SQLite's single writer lock is shared with everyone else's requests
between two tenders instead of being held through the whole cluster.

A transition that raises is rolled back alone: the tender is written to `transition_failures` with the
attempt count and the error's kind, and is not tried again before `retry_at`, which backs off
exponentially on the injected clock (one minute, doubled each time, at most an hour). The others go on.
The centre and the supervisors list what is failing (`GET /api/v1/chronograph/failures`); a success
removes the tender from the list.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import transaction
from storage.jobs import backoff_delay
from storage.problems import Problem
from storage.signing import LogSigner
from trading import service
from trading.models import Tender, TransitionFailure

log = logging.getLogger("ggzy.chronograph")

RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)


@dataclass(frozen=True)
class Failure:
    """A tender whose due transition failed, as the centre and supervisors see it."""

    tender_id: uuid.UUID
    tender_code: str
    status: str
    attempts: int
    error: str
    first_failed_at: datetime
    last_failed_at: datetime
    retry_at: datetime


def retry_after(attempts: int) -> timedelta:
    """How long a tender whose transition failed `attempts` times waits before the next try."""
    seconds = backoff_delay(attempts, RETRY_BASE.total_seconds(), RETRY_CAP.total_seconds())
    return timedelta(seconds=seconds)


def describe(exc: BaseException) -> str:
    """What the failure list says about an error: its kind and the rule it cites, never its message,
    which may quote a bid, a bidder or a statement parameter."""
    kind = type(exc).__name__
    rule = exc.rule if isinstance(exc, Problem) else None
    return f"{kind} ({rule})" if rule else kind


async def due(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    """Every tender due at `now`, earliest first, leaving out failed ones still waiting for their retry."""
    rows = await session.scalars(
        select(Tender.id)
        .outerjoin(TransitionFailure, TransitionFailure.tender_id == Tender.id)
        .where(Tender.next_check.is_not(None), Tender.next_check <= now)
        .where((TransitionFailure.retry_at.is_(None)) | (TransitionFailure.retry_at <= now))
        .order_by(Tender.next_check, Tender.id)
    )
    return list(rows)


async def claim(session: AsyncSession, tender_id: uuid.UUID, now: datetime) -> Tender | None:
    """Lock the tender if it is still due, not waiting for a retry, and nobody else holds it; None means
    leave it. (A failure recorded by another worker meanwhile is seen here, so its retry waits.)"""
    claimed = await _claim(session, tender_id, now)
    return claimed[0] if claimed is not None else None


async def _claim(session: AsyncSession, tender_id: uuid.UUID, now: datetime) -> tuple[Tender, bool] | None:
    row = (
        await session.execute(
            select(Tender, TransitionFailure.tender_id)
            .outerjoin(TransitionFailure, TransitionFailure.tender_id == Tender.id)
            .where(Tender.id == tender_id, Tender.next_check.is_not(None), Tender.next_check <= now)
            .where((TransitionFailure.retry_at.is_(None)) | (TransitionFailure.retry_at <= now))
            .with_for_update(of=Tender, skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).first()
    return (row[0], row[1] is not None) if row is not None else None


async def run_one(
    sessionmaker: async_sessionmaker[AsyncSession], tender_id: uuid.UUID, now: datetime, signer: LogSigner
) -> tuple[str, str] | None:
    """Claim one tender and run its due transition in a transaction of its own; on failure roll it back,
    record the failure and answer None, so the caller goes on with the next tender."""
    try:
        async with transaction(sessionmaker) as session:
            claimed = await _claim(session, tender_id, now)
            if claimed is None:
                return None
            tender, failed_before = claimed
            code = tender.code
            outcome = await service.advance(session, tender, now, signer)
            if failed_before:
                await session.execute(
                    delete(TransitionFailure).where(TransitionFailure.tender_id == tender_id)
                )
    except Exception as exc:
        await _record_failure(sessionmaker, tender_id, exc, now)
        return None
    return (code, outcome) if outcome is not None else None


async def _record_failure(
    sessionmaker: async_sessionmaker[AsyncSession], tender_id: uuid.UUID, exc: Exception, now: datetime
) -> None:
    error = describe(exc)
    try:
        async with transaction(sessionmaker) as session:
            tender = await session.scalar(select(Tender).where(Tender.id == tender_id).with_for_update())
            if tender is None:
                return
            row = await session.get(TransitionFailure, tender_id, populate_existing=True)
            if row is None:
                row = TransitionFailure(
                    tender_id=tender_id,
                    status=tender.status,
                    attempts=0,
                    error=error,
                    first_failed_at=now,
                    last_failed_at=now,
                    retry_at=now,
                )
                session.add(row)
            row.attempts += 1
            row.status = tender.status
            row.error = error[:300]
            row.last_failed_at = now
            row.retry_at = now + retry_after(row.attempts)
            attempts, retry_at, code = row.attempts, row.retry_at, tender.code
    except Exception:
        log.exception("the failure of tender %s's transition could not be recorded", tender_id)
        return
    log.error(
        "tender %s: transition failed (attempt %d, %s); retried from %s",
        code,
        attempts,
        error,
        retry_at.isoformat(),
        exc_info=exc,
    )


async def tick(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime, signer: LogSigner, *, concurrency: int = 1
) -> list[tuple[str, str]]:
    """Run every transition due at `now`, each tender in its own transaction, `concurrency` at a time;
    answer (code, what it became) for each tender that moved. Safe to run from several workers at once."""
    async with transaction(sessionmaker, read_only=True) as session:
        todo = await due(session, now)
    done: list[tuple[str, str]] = []
    queue: Iterator[uuid.UUID] = iter(todo)

    async def worker() -> None:
        # One shared iterator: each tender id is taken by exactly one of this tick's workers.
        for tender_id in queue:
            moved = await run_one(sessionmaker, tender_id, now, signer)
            if moved is not None:
                done.append(moved)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(todo))))))
    return done


async def failures(session: AsyncSession) -> list[Failure]:
    """Tenders whose due transition is failing, the longest-failing first. A tender someone has since
    moved by hand so that nothing is due on it any more (cancelled, say) is no longer listed."""
    rows = await session.execute(
        select(TransitionFailure, Tender.code)
        .join(Tender, Tender.id == TransitionFailure.tender_id)
        .where(Tender.next_check.is_not(None))
        .order_by(TransitionFailure.first_failed_at, Tender.code)
    )
    return [
        Failure(
            f.tender_id, code, f.status, f.attempts, f.error, f.first_failed_at, f.last_failed_at, f.retry_at
        )
        for f, code in rows.all()
    ]
