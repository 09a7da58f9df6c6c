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

The later stages of the tick step other things the same way (`run_stage`): each evaluation room that is
due to open or close, and each draw whose invitations time out, is re-read, locked and stepped in a
transaction of its own; one that raises is recorded in `stage_failures` with the same backoff and listed
with the tenders, and the others go on.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import transaction
from storage.jobs import backoff_delay
from storage.problems import Problem
from storage.signing import LogSigner
from trading import engine, negotiation
from trading.lifecycle import TenderStatus
from trading.models import StageFailure, Tender, TransitionFailure
from trading.objections import pending_objections
from trading.tenders import final_quotes_close, issue_documents, next_check_of

log = logging.getLogger("ggzy.chronograph")

# What fails: a tender's own transition, an evaluation room's opening or closing, a draw's invitations,
# the assembly of an ended tender's archive.
Stage = Literal["tender", "room", "invitations", "archive"]

RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)


@dataclass(frozen=True)
class Failure:
    """A tender whose due transition failed, or a room or draw of it whose due step did (`stage` and
    `subject_id` say which), as the centre and supervisors see it."""

    tender_id: uuid.UUID
    tender_code: str
    status: str
    attempts: int
    error: str
    first_failed_at: datetime
    last_failed_at: datetime
    retry_at: datetime
    stage: Stage
    subject_id: uuid.UUID


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


def _failed_again(
    row: TransitionFailure | StageFailure, status: str, error: str, now: datetime
) -> tuple[int, datetime]:
    """Count one more failure on a failure record, due again after the backoff; answer (attempts, retry_at)."""
    row.attempts += 1
    row.status = status
    row.error = error[:300]
    row.last_failed_at = now
    row.retry_at = now + retry_after(row.attempts)
    return row.attempts, row.retry_at


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
            outcome = await advance(session, tender, now, signer)
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
                row = TransitionFailure(tender_id=tender_id, attempts=0, first_failed_at=now)
                session.add(row)
            attempts, retry_at = _failed_again(row, tender.status, error, now)
            code = tender.code
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
    """Tenders whose due transition is failing, and rooms and draws whose due step is, the longest-failing
    first. A tender someone has since moved by hand so that nothing is due on it any more (cancelled, say)
    is no longer listed; nor is a room or draw that is no longer due once its retry has come."""
    rows = await session.execute(
        select(TransitionFailure, Tender.code)
        .join(Tender, Tender.id == TransitionFailure.tender_id)
        .where(Tender.next_check.is_not(None))
    )
    out = [
        Failure(
            f.tender_id,
            code,
            f.status,
            f.attempts,
            f.error,
            f.first_failed_at,
            f.last_failed_at,
            f.retry_at,
            "tender",
            f.tender_id,
        )
        for f, code in rows.all()
    ]
    stages = await session.execute(
        select(StageFailure, Tender.code).join(Tender, Tender.id == StageFailure.tender_id)
    )
    out += [
        Failure(
            f.tender_id,
            code,
            f.status,
            f.attempts,
            f.error,
            f.first_failed_at,
            f.last_failed_at,
            f.retry_at,
            cast(Stage, f.stage),
            f.subject_id,
        )
        for f, code in stages.all()
    ]
    return sorted(out, key=lambda f: (f.first_failed_at, f.tender_code, f.stage, str(f.subject_id)))


# ---------------------------------------------------------------- the later stages: rooms and draws


@dataclass(frozen=True)
class Due:
    """One thing a later stage of the tick has to step: its id, its tender and its status when listed."""

    subject_id: uuid.UUID
    tender_id: uuid.UUID
    status: str


# A step re-reads and locks its subject, does nothing (answers 0) if it is no longer due or another worker
# holds it, and otherwise answers how many things it changed.
Step = Callable[[AsyncSession, uuid.UUID], Awaitable[int]]


async def run_stage(
    sessionmaker: async_sessionmaker[AsyncSession],
    stage: Stage,
    listing: Callable[[AsyncSession], Awaitable[list[Due]]],
    step: Step,
    now: datetime,
) -> int:
    """List what is due in `stage` in one short read, then step each in a transaction of its own, leaving
    out those whose retry has not come; a step that raises is rolled back alone and recorded with its
    backoff. Answers how many things the steps changed. Safe to run from several workers at once: a step
    claims its subject itself."""
    async with transaction(sessionmaker, read_only=True) as session:
        todo = await listing(session)
        rows = await session.execute(
            select(StageFailure.subject_id, StageFailure.retry_at).where(StageFailure.stage == stage)
        )
        failing = {subject_id: retry_at for subject_id, retry_at in rows.all()}
    # A failing subject no longer due (a room the centre cancelled, say) leaves the list once its retry
    # has come; one still waiting is left alone, as its failure may be newer than this listing.
    listed = {d.subject_id for d in todo}
    stale = [subject for subject, retry_at in failing.items() if subject not in listed and retry_at <= now]
    if stale:
        async with transaction(sessionmaker) as session:
            await session.execute(
                delete(StageFailure).where(
                    StageFailure.stage == stage,
                    StageFailure.subject_id.in_(stale),
                    StageFailure.retry_at <= now,
                )
            )
    changed = 0
    for due_one in todo:
        retry_at = failing.get(due_one.subject_id)
        if retry_at is None or retry_at <= now:
            changed += await _step_one(sessionmaker, stage, due_one, step, now)
    return changed


async def _step_one(
    sessionmaker: async_sessionmaker[AsyncSession], stage: Stage, due_one: Due, step: Step, now: datetime
) -> int:
    try:
        async with transaction(sessionmaker) as session:
            failed = await session.get(StageFailure, (stage, due_one.subject_id), populate_existing=True)
            if failed is not None and failed.retry_at > now:
                return 0  # another worker recorded a failure since this one listed the subject
            changed = await step(session, due_one.subject_id)
            if failed is not None and changed:
                await session.delete(failed)
    except Exception as exc:
        await _record_stage_failure(sessionmaker, stage, due_one, exc, now)
        return 0
    return changed


async def _record_stage_failure(
    sessionmaker: async_sessionmaker[AsyncSession], stage: Stage, due_one: Due, exc: Exception, now: datetime
) -> None:
    error = describe(exc)[:300]
    try:
        async with transaction(sessionmaker) as session:
            row = await session.scalar(
                select(StageFailure)
                .where(StageFailure.stage == stage, StageFailure.subject_id == due_one.subject_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            if row is None:
                row = StageFailure(
                    stage=stage,
                    subject_id=due_one.subject_id,
                    tender_id=due_one.tender_id,
                    attempts=0,
                    first_failed_at=now,
                )
                session.add(row)
            attempts, retry_at = _failed_again(row, due_one.status, error, now)
    except Exception:
        log.exception("the failure of %s %s could not be recorded", stage, due_one.subject_id)
        return
    log.error(
        "%s %s: due step failed (attempt %d, %s); retried from %s",
        stage,
        due_one.subject_id,
        attempts,
        error,
        retry_at.isoformat(),
        exc_info=exc,
    )


async def advance(session: AsyncSession, tender: Tender, now: datetime, signer: LogSigner) -> str | None:
    """Run the transition due on one tender at `now` (the caller holds its row and owns the transaction):
    documents issued, bidding closed, the opening hall closed; answer what it became, or None when nothing
    moved but its next check."""
    status = TenderStatus(tender.status)
    if tender.suspended_reason is not None:
        tender.next_check = None  # resumes when the supervising authority decides the complaint
        return "suspended"
    if status == TenderStatus.PUBLISHED and now >= tender.documents_from:
        if tender.paused_reason:
            tender.next_check = None  # resumes when the objection to the single source is answered
            return "paused"
        await issue_documents(session, tender, None, now)
        return "tendering"
    if status == TenderStatus.TENDERING and now >= tender.bid_deadline:
        if tender.paused_reason:
            tender.next_check = None  # resumes when the objection is answered
            return "paused"
        return await engine.bids().close_bidding(session, tender, signer, now)
    if status in (TenderStatus.OPENING, TenderStatus.COMMERCIAL_OPENING):
        if not await engine.bids().decryption_done(session, tender, now):
            # A decryption job is still running, or the custodians' window has just begun.
            later = tender.custody_until if tender.custody_until and tender.custody_until > now else None
            tender.next_check = later or now + timedelta(minutes=1)
            return "custody" if later else "decrypting"
        if await pending_objections(session, tender, "opening"):
            tender.next_check = now + timedelta(minutes=5)
            return None
        await engine.bids().close_opening(session, tender, now)
        return tender.status
    if status == TenderStatus.FINAL_QUOTES:
        closes = final_quotes_close(tender)
        if closes is not None and now >= closes:
            return await negotiation.close_final_quotes(session, tender, now)
    tender.next_check = next_check_of(tender)
    return None
