"""Background jobs: the registry, the queues that run them, the outbox dispatcher and the periodic driver.

A use case never runs an effect itself: it writes an outbox row in its own transaction
(`storage.outbox.enqueue`). After commit, the `OutboxDispatcher` moves due rows to a `JobQueue`, passing the
row id as the job id, so a row that is dispatched again after a crash still runs at most once per queue.

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
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.cron import CronJob
from arq.cron import cron as arq_cron
from arq.worker import Function, Retry
from arq.worker import func as arq_func
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.clock import Clock
from storage.outbox import OutboxMessage

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


@dataclass
class JobContext:
    """What every job receives besides its payload; built once per process by the composition root."""

    sessionmaker: async_sessionmaker[AsyncSession]
    clock: Clock
    extras: dict[str, Any] = field(default_factory=dict)


class JobQueue(Protocol):
    """Somewhere to hand a job to; `job_id` makes enqueueing idempotent."""

    async def start(self) -> None: ...

    async def enqueue(self, name: str, payload: dict[str, Any], job_id: str) -> None: ...

    async def close(self) -> None: ...


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): base × 2^(attempt−1), capped."""
    return min(cap, base * 2.0 ** (attempt - 1))


class InlineJobQueue:
    """Runs jobs in-process, each in its own asyncio task, retrying failures with exponential backoff.

    The embedded default: nothing survives a restart, which is acceptable because the outbox row was
    written before and the effect is only lost if the process dies mid-job.
    """

    backoff_cap_seconds = 2.0
    concurrency = 10
    """At most this many jobs run at once, so a burst of dispatched rows cannot drain the database pool."""
    remembered_ids = 100_000
    """How many recent job ids are kept to refuse duplicates; bounded so a long-lived server does not grow."""

    def __init__(self, ctx: JobContext, *, max_attempts: int = 5, backoff_seconds: float = 0.05) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._ctx = ctx
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.concurrency)
        self._closed = False

    async def start(self) -> None:
        """Nothing to connect to; present for the `JobQueue` protocol."""
        self._closed = False

    async def enqueue(self, name: str, payload: dict[str, Any], job_id: str) -> None:
        """Start the job in a task unless a job with this id was already enqueued."""
        if self._closed:
            raise RuntimeError("the inline job queue is closed")
        if job_id in self._seen:
            logger.debug("job %s (%s) already enqueued; ignored", name, job_id)
            return
        self._remember(job_id)
        fn = JOBS.get(name)
        if fn is None:
            logger.error("unknown job %r (%s) dropped", name, job_id)
            return
        # A deep copy stands in for the serialisation boundary of a real queue: the job cannot share
        # mutable state with whoever enqueued it.
        task = asyncio.create_task(self._run(name, fn, copy.deepcopy(payload), job_id), name=f"job:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every enqueued job (including ones enqueued meanwhile) has finished or given up."""
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

    async def _run(self, name: str, fn: JobFn, payload: dict[str, Any], job_id: str) -> None:
        for attempt in range(1, self._max_attempts + 1):
            try:
                async with self._slots:
                    await fn(self._ctx, payload)
            except Exception as exc:
                if attempt == self._max_attempts:
                    logger.error(
                        "job %s (%s) failed after %d attempts; giving up",
                        name,
                        job_id,
                        attempt,
                        exc_info=True,
                    )
                    return
                delay = backoff_delay(attempt, self._backoff, self.backoff_cap_seconds)
                logger.warning(
                    "job %s (%s) failed on attempt %d/%d (%s); retrying in %.2fs",
                    name,
                    job_id,
                    attempt,
                    self._max_attempts,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
            else:
                return


class SequentialJobQueue(InlineJobQueue):
    """Runs jobs one after another in the task that drains the queue, in the order they were enqueued
    (with the same retries): for jobs that share one database connection, as seeding's single transaction
    does, where concurrent jobs would interleave their savepoints."""

    def __init__(self, ctx: JobContext, *, max_attempts: int = 5, backoff_seconds: float = 0.05) -> None:
        super().__init__(ctx, max_attempts=max_attempts, backoff_seconds=backoff_seconds)
        self._pending: list[tuple[str, JobFn, dict[str, Any], str]] = []

    async def enqueue(self, name: str, payload: dict[str, Any], job_id: str) -> None:
        """Queue the job for the next `drain()` unless a job with this id was already enqueued."""
        if self._closed:
            raise RuntimeError("the job queue is closed")
        if job_id in self._seen:
            return
        self._remember(job_id)
        fn = JOBS.get(name)
        if fn is None:
            logger.error("unknown job %r (%s) dropped", name, job_id)
            return
        self._pending.append((name, fn, copy.deepcopy(payload), job_id))

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

    async def enqueue(self, name: str, payload: dict[str, Any], job_id: str) -> None:
        """Put the job on the queue unless arq already knows this job id."""
        if self._pool is None:
            raise RuntimeError("ArqJobQueue.start() must be awaited before enqueueing")
        queued = await self._pool.enqueue_job(name, _RedactedPayload(payload), _job_id=job_id)
        if queued is None:
            logger.debug("job %s (%s) already known to arq; ignored", name, job_id)

    async def close(self) -> None:
        """Disconnect from Redis."""
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


class OutboxDispatcher:
    """Moves committed, due outbox rows to the job queue, oldest first."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        queue: JobQueue,
        clock: Clock,
        *,
        batch: int = 100,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._queue = queue
        self._clock = clock
        self._batch = batch
        self._wake = asyncio.Event()

    def kick(self) -> None:
        """Wake the dispatch loop now; call after a commit that wrote outbox rows."""
        self._wake.set()

    async def dispatch_once(self) -> int:
        """Dispatch up to one batch of due, undispatched rows in one transaction; return how many went out.

        Rows are locked with SKIP LOCKED on PostgreSQL so concurrent dispatchers share the work without
        sending a row twice; SQLite serialises writers (BEGIN IMMEDIATE) and ignores the clause. A row the
        queue refuses keeps `dispatched_at` empty, counts the attempt and is tried again next round.
        """
        dispatched = 0
        async with self._sessionmaker() as session, session.begin():
            now = self._clock.now()
            rows = await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.dispatched_at.is_(None), OutboxMessage.available_at <= now)
                .order_by(OutboxMessage.created_at, OutboxMessage.id)
                .limit(self._batch)
                .with_for_update(skip_locked=True)
            )
            for row in rows.all():
                try:
                    await self._queue.enqueue(row.job, row.payload, str(row.id))
                except Exception as exc:
                    row.attempts += 1
                    row.last_error = f"{type(exc).__name__}: {exc}"[:500]
                    logger.warning(
                        "outbox row %s (job %s) not dispatched, attempt %d: %s",
                        row.id,
                        row.job,
                        row.attempts,
                        type(exc).__name__,
                    )
                    continue
                row.dispatched_at = now
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
    max_attempts: int = 5,
    backoff_seconds: float = 1.0,
) -> dict[str, Any]:
    """Keyword arguments for `arq.Worker` running every registered job and the given cron entries.

    The `JobContext` is built once in `on_startup`; `on_shutdown` disposes the engine behind its
    sessionmaker. A failing job is retried by arq with exponential backoff up to `max_attempts`, like the
    inline queue. Each cron entry `(name, fn, every_seconds)` becomes an arq cron job named `cron:<name>`,
    unique across workers; `every_seconds` must divide a minute, an hour or a day evenly.
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
        "functions": [
            _arq_function(name, fn, max_attempts, backoff_seconds) for name, fn in sorted(JOBS.items())
        ],
        "cron_jobs": [_arq_cron(name, fn, every) for name, fn, every in cron],
        "redis_settings": RedisSettings.from_dsn(redis_url),
        "queue_name": queue_name,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "max_tries": max_attempts,
    }


def _arq_function(name: str, fn: JobFn, max_attempts: int, backoff_seconds: float) -> Function:
    async def run(ctx: dict[Any, Any], payload: dict[str, Any]) -> None:
        attempt: int = ctx.get("job_try", 1)
        job_id = ctx.get("job_id")
        try:
            await fn(ctx[ARQ_CONTEXT_KEY], dict(payload))
        except Exception as exc:
            if attempt >= max_attempts:
                logger.error(
                    "job %s (%s) failed after %d attempts; giving up", name, job_id, attempt, exc_info=True
                )
                raise
            delay = backoff_delay(attempt, backoff_seconds, 300.0)
            logger.warning(
                "job %s (%s) failed on attempt %d/%d (%s); retrying in %.2fs",
                name,
                job_id,
                attempt,
                max_attempts,
                type(exc).__name__,
                delay,
            )
            raise Retry(defer=delay) from exc

    run.__qualname__ = f"job:{name}"
    return arq_func(run, name=name, max_tries=max_attempts)


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
