"""Background jobs: the registry, the queues that run them, the outbox dispatcher and the periodic driver.

A use case never runs an effect itself: it writes an outbox row in its own transaction
(`storage.outbox.enqueue`). After commit, the `OutboxDispatcher` hands due rows to a `JobQueue`. The row,
not the queue, is the durable record of the job: each hand-over (a `Delivery`) carries the row's id and
attempt number, and the job's outcome is written back to the row. A failure schedules the next attempt
with exponential backoff on the injected clock (`RetryPolicy`), a delivery that reports nothing within its
lease (the process died, the queue lost it) is handed over again, and a job that keeps failing for the whole
retry horizon is parked as `dead` in the dead-letter list until someone retries it (`retry_dead`). So a job
is never silently lost, across restarts too, and both queues retry alike. Jobs must be idempotent: a
delivery whose outcome could not be recorded runs again.

Two queues implement the same protocol: `InlineJobQueue` runs jobs in asyncio tasks inside `ggzy serve`
(the embedded default), `ArqJobQueue` hands them to arq workers on Redis (`ggzy worker`, built from
`worker_settings`). The chronograph runs through `Periodic` in-process or as arq cron entries.

Payloads may hold personal data: nothing here logs them, and arq sees them wrapped so its own log lines
show a placeholder instead.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.cron import CronJob
from arq.cron import cron as arq_cron
from arq.worker import Function
from arq.worker import func as arq_func
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.clock import Clock
from storage.db import transaction
from storage.outbox import DEAD, DONE, PENDING, OutboxMessage

if TYPE_CHECKING:
    from storage.settings import Settings

logger = logging.getLogger("ggzy.jobs")

JobFn = Callable[["JobContext", dict[str, Any]], Awaitable[None]]

JOBS: dict[str, JobFn] = {}
"""Every job the platform knows, by name; filled at import time by `@job`."""

DEFAULT_QUEUE = "ggzy:queue"
ARQ_CONTEXT_KEY = "ggzy"
"""Where `worker_settings` keeps the `JobContext` in arq's per-worker context dict."""


def job(name: str) -> Callable[[JobFn], JobFn]:
    """Register the decorated coroutine as the job called `name`; a name can be registered only once."""

    def register(fn: JobFn) -> JobFn:
        if name in JOBS:
            raise ValueError(f"job {name!r} is already registered (by {JOBS[name].__qualname__})")
        JOBS[name] = fn
        return fn

    return register


TickFn = Callable[["JobContext"], Awaitable[object]]

TICK_STAGES: dict[str, tuple[int, TickFn]] = {}
"""The chronograph's periodic stages after the tenders' transitions (deposit refunds, the ledger head,
evaluation rooms, ended tenders' archives, the audit head, the storage sweep), by name, with the place each
runs in; filled at import time by `@tick_stage` in the package that owns the stage."""


def tick_stage(name: str, order: int) -> Callable[[TickFn], TickFn]:
    """Register the decorated coroutine as a stage of every chronograph tick, run in ascending `order`."""

    def register(fn: TickFn) -> TickFn:
        if name in TICK_STAGES:
            raise ValueError(f"tick stage {name!r} is already registered")
        TICK_STAGES[name] = (order, fn)
        return fn

    return register


def tick_stages() -> list[tuple[str, TickFn]]:
    """The registered tick stages in the order they run."""
    return [
        (name, fn) for name, (_order, fn) in sorted(TICK_STAGES.items(), key=lambda kv: (kv[1][0], kv[0]))
    ]


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): base × 2^(attempt−1), capped."""
    return min(cap, base * 2.0 ** min(attempt - 1, 62))


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often a failing job is tried again, measured on the injected clock.

    After the n-th failure the next attempt is due `backoff_seconds` × 2^(n−1) later, at most
    `backoff_cap_seconds`; a job still failing `horizon` after its first failure is parked as dead. A
    delivery that reports no outcome within `lease` counts as failed and is handed over again.
    """

    backoff_seconds: float = 1.0
    backoff_cap_seconds: float = 600.0
    horizon: timedelta = timedelta(hours=48)
    lease: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if self.backoff_seconds <= 0 or self.backoff_cap_seconds < self.backoff_seconds:
            raise ValueError("the job backoff must be positive and its cap at least the backoff")
        if self.horizon <= timedelta(0) or self.lease <= timedelta(0):
            raise ValueError("the job retry horizon and lease must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy the `GGZY_JOB_*` settings describe."""
        return cls(
            backoff_seconds=settings.job_backoff_seconds,
            backoff_cap_seconds=settings.job_backoff_cap_seconds,
            horizon=timedelta(hours=settings.job_retry_hours),
            lease=timedelta(seconds=settings.job_lease_seconds),
        )

    def delay(self, attempt: int) -> timedelta:
        """How long to wait after failed attempt number `attempt` (1-based)."""
        return timedelta(seconds=backoff_delay(attempt, self.backoff_seconds, self.backoff_cap_seconds))


@dataclass
class JobContext:
    """What every job receives besides its payload; built once per process by the composition root."""

    sessionmaker: async_sessionmaker[AsyncSession]
    clock: Clock
    extras: dict[str, Any] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class Delivery:
    """One hand-over of an outbox row to a queue: the row, and how many deliveries of it failed before.

    Its `job_id` is unique per attempt, so a queue refuses the same delivery twice (a row dispatched
    again after a crash) but takes the next attempt.
    """

    outbox_id: str
    attempt: int

    @property
    def job_id(self) -> str:
        return f"{self.outbox_id}:{self.attempt}"


class JobQueue(Protocol):
    """Somewhere to hand a job to; `job_id` makes enqueueing idempotent. A `delivery` makes the queue
    write the job's outcome back to its outbox row instead of retrying it itself."""

    async def start(self) -> None: ...

    async def enqueue(
        self, name: str, payload: dict[str, Any], job_id: str, delivery: Delivery | None = None
    ) -> None: ...

    async def close(self) -> None: ...


class UnknownJob(Exception):
    """An outbox row names a job no module registered (its code is missing from this process)."""


async def perform(ctx: JobContext, name: str, payload: dict[str, Any], delivery: Delivery | None) -> None:
    """Run one job and, for a delivery, record its outcome on the outbox row.

    A delivery that a newer one has replaced, or whose row is no longer pending, is skipped. A failing job
    is recorded as failed (next attempt scheduled, or dead past the horizon); this raises only when the
    outcome itself cannot be recorded, and then the lease brings the job back. Without a delivery the
    job's own exception propagates.
    """
    fn = JOBS.get(name)
    if delivery is None:
        if fn is None:
            logger.error("unknown job %r dropped", name)
            return
        await fn(ctx, payload)
        return
    if not await _still_due(ctx, delivery):
        logger.debug("job %s (%s) is no longer due; skipped", name, delivery.job_id)
        return
    try:
        if fn is None:
            raise UnknownJob(f"no job is registered as {name!r}")
        await fn(ctx, payload)
    except Exception as exc:
        await _record_failure(ctx, name, delivery, f"{type(exc).__name__}: {exc}")
        return
    await _record_done(ctx, delivery)


async def _still_due(ctx: JobContext, delivery: Delivery) -> bool:
    async with transaction(ctx.sessionmaker, read_only=True) as session:
        row = await session.get(OutboxMessage, uuid.UUID(delivery.outbox_id))
        # A lower attempt count means the dispatcher that made this delivery has not committed yet.
        return row is not None and row.status == PENDING and row.attempts <= delivery.attempt


async def _locked_row(session: AsyncSession, delivery: Delivery) -> OutboxMessage | None:
    return await session.scalar(
        select(OutboxMessage).where(OutboxMessage.id == uuid.UUID(delivery.outbox_id)).with_for_update()
    )


async def _record_done(ctx: JobContext, delivery: Delivery) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        row = await _locked_row(session, delivery)
        if row is not None and row.status == PENDING:
            row.status = DONE
            row.completed_at = ctx.clock.now()


async def _record_failure(ctx: JobContext, name: str, delivery: Delivery, error: str) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        row = await _locked_row(session, delivery)
        if row is None or row.status != PENDING or row.attempts != delivery.attempt:
            return
        record_failure(row, ctx.clock.now(), error, ctx.retry)


def record_failure(row: OutboxMessage, now: datetime, error: str, policy: RetryPolicy) -> None:
    """Count a failed delivery of `row`: schedule the next attempt by the backoff, or park the row as dead
    once it has been failing for the policy's horizon."""
    row.attempts += 1
    row.last_error = error[:500]
    row.dispatched_at = None
    if row.failing_since is None:
        row.failing_since = now
    if now - row.failing_since >= policy.horizon:
        row.status = DEAD
        row.dead_at = now
        logger.error(
            "job %s (%s) failed %d times since %s; parked in the dead-letter list",
            row.job,
            row.id,
            row.attempts,
            row.failing_since.isoformat(),
        )
        return
    row.available_at = now + policy.delay(row.attempts)
    logger.warning(
        "job %s (%s) failed on attempt %d (%s); next attempt at %s",
        row.job,
        row.id,
        row.attempts,
        error.split(":", 1)[0],
        row.available_at.isoformat(),
    )


class InlineJobQueue:
    """Runs jobs in-process, each in its own asyncio task; a delivery's outcome goes back to its outbox row.

    The embedded default: nothing here survives a restart, and nothing needs to, since the outbox row
    stays pending until its job reports done and its lease brings it back otherwise.
    """

    concurrency = 10
    """At most this many jobs run at once, so a burst of dispatched rows cannot drain the database pool."""
    remembered_ids = 100_000
    """How many recent job ids are kept to refuse duplicates; bounded so a long-lived server does not grow."""

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.concurrency)
        self._closed = False

    async def start(self) -> None:
        """Nothing to connect to; present for the `JobQueue` protocol."""
        self._closed = False

    async def enqueue(
        self, name: str, payload: dict[str, Any], job_id: str, delivery: Delivery | None = None
    ) -> None:
        """Start the job in a task unless a job with this id was already enqueued."""
        if self._closed:
            raise RuntimeError("the inline job queue is closed")
        if job_id in self._seen:
            logger.debug("job %s (%s) already enqueued; ignored", name, job_id)
            return
        self._remember(job_id)
        # A deep copy stands in for the serialisation boundary of a real queue: the job cannot share
        # mutable state with whoever enqueued it.
        task = asyncio.create_task(
            self._run(name, copy.deepcopy(payload), job_id, delivery), name=f"job:{name}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every enqueued job (including ones enqueued meanwhile) has finished."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Refuse new jobs and wait for the running ones."""
        self._closed = True
        await self.drain()

    def _remember(self, job_id: str) -> None:
        self._seen[job_id] = None
        while len(self._seen) > self.remembered_ids:
            self._seen.popitem(last=False)

    async def _run(self, name: str, payload: dict[str, Any], job_id: str, delivery: Delivery | None) -> None:
        try:
            async with self._slots:
                await perform(self._ctx, name, payload, delivery)
        except Exception:
            if delivery is None:
                logger.error("job %s (%s) failed", name, job_id, exc_info=True)
            else:
                logger.error(
                    "job %s (%s) ran but its outcome could not be recorded; it runs again after its lease",
                    name,
                    job_id,
                    exc_info=True,
                )


class SequentialJobQueue(InlineJobQueue):
    """Runs jobs one after another in the task that drains the queue, in the order they were enqueued: for
    jobs that share one database connection, as seeding's single transaction does, where concurrent jobs
    would interleave their savepoints. A delivery's outcome goes back to its outbox row as on the inline
    queue, so a failed job is tried again by the dispatcher after its backoff."""

    def __init__(self, ctx: JobContext) -> None:
        super().__init__(ctx)
        self._pending: list[tuple[str, dict[str, Any], str, Delivery | None]] = []

    async def enqueue(
        self, name: str, payload: dict[str, Any], job_id: str, delivery: Delivery | None = None
    ) -> None:
        """Queue the job for the next `drain()` unless a job with this id was already enqueued."""
        if self._closed:
            raise RuntimeError("the job queue is closed")
        if job_id in self._seen:
            return
        self._remember(job_id)
        self._pending.append((name, copy.deepcopy(payload), job_id, delivery))

    async def drain(self) -> None:
        """Run every queued job (including ones queued meanwhile), one at a time, here."""
        while self._pending:
            await self._run(*self._pending.pop(0))


class _RedactedPayload(dict[str, Any]):
    """A payload whose repr hides its content, because arq logs the repr of every job's arguments."""

    def __repr__(self) -> str:
        return "<payload>"


class ArqJobQueue:
    """Hands jobs to arq workers through Redis; `job_id` becomes arq's `_job_id`, so a job is enqueued
    at most once while it is queued, running or its result is kept."""

    def __init__(self, redis_url: str, *, queue_name: str = DEFAULT_QUEUE) -> None:
        self._settings = RedisSettings.from_dsn(redis_url)
        self._queue_name = queue_name
        self._pool: ArqRedis | None = None

    async def start(self) -> None:
        """Connect to Redis."""
        if self._pool is None:
            self._pool = await create_pool(self._settings, default_queue_name=self._queue_name)

    async def enqueue(
        self, name: str, payload: dict[str, Any], job_id: str, delivery: Delivery | None = None
    ) -> None:
        """Put the job on the queue unless arq already knows this job id."""
        if self._pool is None:
            raise RuntimeError("ArqJobQueue.start() must be awaited before enqueueing")
        tracking = None if delivery is None else [delivery.outbox_id, delivery.attempt]
        queued = await self._pool.enqueue_job(name, _RedactedPayload(payload), tracking, _job_id=job_id)
        if queued is None:
            logger.debug("job %s (%s) already known to arq; ignored", name, job_id)

    async def close(self) -> None:
        """Disconnect from Redis."""
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


class OutboxDispatcher:
    """Hands committed, due outbox rows to the job queue, oldest first."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        queue: JobQueue,
        clock: Clock,
        *,
        batch: int = 100,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._queue = queue
        self._clock = clock
        self._batch = batch
        self._retry = retry or RetryPolicy()
        self._wake = asyncio.Event()

    def kick(self) -> None:
        """Wake the dispatch loop now; call after a commit that wrote outbox rows."""
        self._wake.set()

    async def dispatch_once(self) -> int:
        """Hand up to one batch of due, pending rows to the queue in one transaction; return how many went.

        A due row is one whose first run or next retry has come, or whose last delivery's lease ran out
        without an outcome (that delivery counts as failed). Rows are locked with SKIP LOCKED on PostgreSQL
        so concurrent dispatchers share the work without sending a row twice; SQLite serialises writers
        (BEGIN IMMEDIATE) and ignores the clause. A row the queue refuses counts a failed attempt and
        waits for its backoff.
        """
        dispatched = 0
        async with self._sessionmaker() as session, session.begin():
            now = self._clock.now()
            rows = await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.status == PENDING, OutboxMessage.available_at <= now)
                .order_by(OutboxMessage.available_at, OutboxMessage.created_at, OutboxMessage.id)
                .limit(self._batch)
                .with_for_update(skip_locked=True)
            )
            for row in rows.all():
                if row.dispatched_at is not None:
                    record_failure(row, now, "LeaseExpired: no outcome within the lease", self._retry)
                    if row.status == DEAD:
                        continue
                delivery = Delivery(str(row.id), row.attempts)
                try:
                    await self._queue.enqueue(row.job, row.payload, delivery.job_id, delivery)
                except Exception as exc:
                    record_failure(row, now, f"{type(exc).__name__}: {exc}", self._retry)
                    continue
                row.dispatched_at = now
                row.available_at = now + self._retry.lease
                dispatched += 1
        return dispatched

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        """Dispatch until `stop` is set: straight on while full batches come back, otherwise wait for a
        `kick()`, `stop` or `idle_seconds`, whichever comes first."""
        while not stop.is_set():
            # Cleared before dispatching, so a kick that lands during the round is not lost.
            self._wake.clear()
            try:
                count = await self.dispatch_once()
            except Exception:
                logger.exception("outbox dispatch round failed")
                count = 0
            if count < self._batch:
                await _wait_any((self._wake, stop), idle_seconds)


# ---------------------------------------------------------------- the dead-letter list


async def dead_letters(session: AsyncSession, *, limit: int = 100) -> list[OutboxMessage]:
    """The jobs parked as dead, most recently parked first."""
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.status == DEAD)
        .order_by(OutboxMessage.dead_at.desc(), OutboxMessage.id)
        .limit(limit)
    )
    return list(rows.all())


async def retry_dead(
    session: AsyncSession, outbox_id: uuid.UUID, now: datetime
) -> tuple[OutboxMessage, bool] | None:
    """Put a dead job back in the queue, due now, with a fresh retry horizon; None for an unknown id.

    Idempotent: a job that is not dead (already retried, pending or done) is left as it is, and the
    second value says whether this call changed anything.
    """
    row = await session.scalar(select(OutboxMessage).where(OutboxMessage.id == outbox_id).with_for_update())
    if row is None:
        return None
    if row.status != DEAD:
        return row, False
    row.status = PENDING
    row.available_at = now
    row.dispatched_at = None
    row.failing_since = None
    row.dead_at = None
    return row, True


class Periodic:
    """Calls `fn` every `every_seconds` (start to start, no catch-up after an overrun) until stopped;
    the first call is immediate, so deadlines missed while the process was down are handled at once."""

    def __init__(self, fn: Callable[[], Awaitable[Any]], every_seconds: float) -> None:
        if every_seconds <= 0:
            raise ValueError("every_seconds must be positive")
        self._fn = fn
        self._every = every_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; an exception in `fn` is logged and the next call happens on time."""
        loop = asyncio.get_running_loop()
        name = getattr(self._fn, "__qualname__", repr(self._fn))
        while not stop.is_set():
            started = loop.time()
            try:
                await self._fn()
            except Exception:
                logger.exception("periodic %s failed", name)
            await _wait_any((stop,), max(0.0, started + self._every - loop.time()))


async def _wait_any(events: Sequence[asyncio.Event], seconds: float) -> None:
    """Return when any of `events` is set or `seconds` have passed."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def worker_settings(
    ctx_factory: Callable[[], Awaitable[JobContext]],
    redis_url: str,
    *,
    cron: Sequence[tuple[str, Callable[[JobContext], Awaitable[Any]], int]] = (),
    queue_name: str = DEFAULT_QUEUE,
) -> dict[str, Any]:
    """Keyword arguments for `arq.Worker` running every registered job and the given cron entries.

    The `JobContext` is built once in `on_startup`; `on_shutdown` disposes the engine behind its
    sessionmaker. A job's failure is written back to its outbox row, whose backoff and horizon decide the
    next attempt (as on the inline queue); arq itself only runs a job again when a worker died under it.
    Each cron entry `(name, fn, every_seconds)` becomes an arq cron job named `cron:<name>`, unique across
    workers; `every_seconds` must divide a minute, an hour or a day evenly.
    """

    async def on_startup(ctx: dict[Any, Any]) -> None:
        ctx[ARQ_CONTEXT_KEY] = await ctx_factory()

    async def on_shutdown(ctx: dict[Any, Any]) -> None:
        job_ctx = ctx.pop(ARQ_CONTEXT_KEY, None)
        if job_ctx is not None:
            bind = job_ctx.sessionmaker.kw.get("bind")
            if isinstance(bind, AsyncEngine):
                await bind.dispose()

    return {
        "functions": [_arq_function(name) for name in sorted(JOBS)],
        "cron_jobs": [_arq_cron(name, fn, every) for name, fn, every in cron],
        "redis_settings": RedisSettings.from_dsn(redis_url),
        "queue_name": queue_name,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "max_tries": ARQ_MAX_TRIES,
    }


ARQ_MAX_TRIES = 3
"""arq runs a job again only when a worker died while running it; this many times, then the lease decides."""


def _arq_function(name: str) -> Function:
    async def run(ctx: dict[Any, Any], payload: dict[str, Any], tracking: list[Any] | None = None) -> None:
        delivery = None if tracking is None else Delivery(str(tracking[0]), int(tracking[1]))
        await perform(ctx[ARQ_CONTEXT_KEY], name, dict(payload), delivery)

    run.__qualname__ = f"job:{name}"
    return arq_func(run, name=name, max_tries=ARQ_MAX_TRIES)


def _arq_cron(name: str, fn: Callable[[JobContext], Awaitable[Any]], every_seconds: int) -> CronJob:
    async def run(ctx: dict[Any, Any]) -> None:
        # The result is dropped so arq neither logs nor stores it.
        await fn(ctx[ARQ_CONTEXT_KEY])

    run.__qualname__ = f"cron:{name}"
    return arq_cron(run, name=f"cron:{name}", unique=True, **cron_schedule(every_seconds))


def cron_schedule(every_seconds: int) -> dict[str, Any]:
    """The arq cron fields that fire every `every_seconds`, aligned to the minute, hour or day."""
    if every_seconds <= 0:
        raise ValueError("every_seconds must be positive")
    if every_seconds < 60 and 60 % every_seconds == 0:
        return {"second": set(range(0, 60, every_seconds))}
    if every_seconds % 60 == 0 and every_seconds < 3600 and 3600 % every_seconds == 0:
        return {"minute": set(range(0, 60, every_seconds // 60)), "second": 0}
    if every_seconds % 3600 == 0 and 86400 % every_seconds == 0:
        return {"hour": set(range(0, 24, every_seconds // 3600)), "minute": 0, "second": 0}
    raise ValueError(
        f"a cron interval of {every_seconds}s cannot be expressed as a cron schedule: "
        "use a divisor of 60 seconds, of 60 minutes or of 24 hours"
    )
