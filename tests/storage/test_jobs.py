"""Jobs: the outbox dispatcher and the inline queue on every database, arq on the real Redis, the periodic
driver. Jobs record what they saw in `JobContext.extras`; nothing of ours is mocked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import arq
import pytest
import redis.asyncio as aioredis
from arq.cron import CronJob
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.clock import Clock, SettableClock
from storage.db import transaction
from storage.jobs import (
    JOBS,
    ArqJobQueue,
    InlineJobQueue,
    JobContext,
    OutboxDispatcher,
    Periodic,
    SequentialJobQueue,
    backoff_delay,
    cron_schedule,
    job,
    worker_settings,
)
from storage.outbox import OutboxMessage, enqueue

MARK = "test.jobs.mark"
FLAKY = "test.jobs.flaky"
CAPTURE = "test.jobs.capture"
SECRET = "身份证 110101199003071234"


@job(MARK)
async def mark(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Append `payload["value"]` to the marks, then signal whoever waits for it."""
    ctx.extras["marks"].append(payload["value"])
    marked: asyncio.Event | None = ctx.extras.get("marked")
    if marked is not None:
        marked.set()


@job(FLAKY)
async def flaky(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Fail the first `payload["fail_times"]` attempts for `payload["key"]`, then mark it."""
    tries: dict[str, int] = ctx.extras["tries"]
    key = payload["key"]
    tries[key] = tries.get(key, 0) + 1
    if tries[key] <= payload["fail_times"]:
        raise RuntimeError(f"attempt {tries[key]} failed")
    ctx.extras["marks"].append(key)


@job(CAPTURE)
async def capture(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Keep the payload exactly as the job received it."""
    ctx.extras["payloads"].append(payload)


def job_context(
    sessionmaker: async_sessionmaker[AsyncSession] | None = None, clock: Clock | None = None
) -> JobContext:
    """A context whose extras collect what the test jobs saw; queue-only tests need no database."""
    return JobContext(
        sessionmaker=sessionmaker or async_sessionmaker(),
        clock=clock or SettableClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC)),
        extras={"marks": [], "tries": {}, "payloads": []},
    )


def new_job_id() -> str:
    return str(uuid.uuid4())


async def write_outbox(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    *values: str,
    available_at: datetime | None = None,
) -> None:
    """Commit one MARK row per value, in one transaction."""
    async with transaction(sessionmaker) as session:
        for value in values:
            enqueue(session, MARK, {"value": value}, clock.now(), available_at=available_at)


async def outbox_rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)))


# --- the outbox dispatcher, on every database ---------------------------------------------------------


class Abort(Exception):
    """Raised inside a use case to make its transaction roll back."""


async def test_rolled_back_outbox_row_is_never_dispatched(
    sessionmaker: async_sessionmaker[AsyncSession], clock: SettableClock
) -> None:
    ctx = job_context(sessionmaker, clock)
    queue = InlineJobQueue(ctx)
    with pytest.raises(Abort):
        async with transaction(sessionmaker) as session:
            enqueue(session, MARK, {"value": "ghost"}, clock.now())
            await session.flush()
            raise Abort

    assert await OutboxDispatcher(sessionmaker, queue, clock).dispatch_once() == 0
    await queue.drain()

    assert ctx.extras["marks"] == []
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


async def test_committed_row_is_dispatched_once_and_runs_once(
    sessionmaker: async_sessionmaker[AsyncSession], clock: SettableClock
) -> None:
    ctx = job_context(sessionmaker, clock)
    queue = InlineJobQueue(ctx)
    dispatcher = OutboxDispatcher(sessionmaker, queue, clock)
    await write_outbox(sessionmaker, clock, "a")
    clock.advance(timedelta(seconds=5))

    assert await dispatcher.dispatch_once() == 1
    await queue.drain()
    assert await dispatcher.dispatch_once() == 0
    await queue.drain()

    assert ctx.extras["marks"] == ["a"]
    [row] = await outbox_rows(sessionmaker)
    assert row.dispatched_at == clock.now()
    assert (row.attempts, row.last_error) == (0, None)


async def test_row_waits_until_the_clock_passes_available_at(
    sessionmaker: async_sessionmaker[AsyncSession], clock: SettableClock
) -> None:
    ctx = job_context(sessionmaker, clock)
    queue = InlineJobQueue(ctx)
    dispatcher = OutboxDispatcher(sessionmaker, queue, clock)
    await write_outbox(sessionmaker, clock, "later", available_at=clock.now() + timedelta(hours=1))

    assert await dispatcher.dispatch_once() == 0
    clock.advance(timedelta(minutes=59, seconds=59))
    assert await dispatcher.dispatch_once() == 0
    clock.advance(timedelta(seconds=1))
    assert await dispatcher.dispatch_once() == 1
    await queue.drain()

    assert ctx.extras["marks"] == ["later"]


async def test_rows_go_out_oldest_first_in_batches(
    sessionmaker: async_sessionmaker[AsyncSession], clock: SettableClock
) -> None:
    ctx = job_context(sessionmaker, clock)
    queue = InlineJobQueue(ctx)
    dispatcher = OutboxDispatcher(sessionmaker, queue, clock, batch=2)
    for value in ("first", "second", "third"):
        await write_outbox(sessionmaker, clock, value)
        clock.advance(timedelta(seconds=1))

    assert await dispatcher.dispatch_once() == 2
    await queue.drain()
    assert ctx.extras["marks"] == ["first", "second"]
    assert await dispatcher.dispatch_once() == 1
    await queue.drain()
    assert ctx.extras["marks"] == ["first", "second", "third"]


async def test_concurrent_dispatchers_send_each_row_once(
    sessionmaker: async_sessionmaker[AsyncSession], clock: SettableClock
) -> None:
    ctx = job_context(sessionmaker, clock)
    values = [f"row-{n:02d}" for n in range(30)]
    await write_outbox(sessionmaker, clock, *values)
    # Each dispatcher has its own queue, so neither queue's job-id dedup can hide a double dispatch.
    queues = [InlineJobQueue(ctx), InlineJobQueue(ctx)]
    dispatchers = [OutboxDispatcher(sessionmaker, q, clock, batch=7) for q in queues]

    async def until_empty(dispatcher: OutboxDispatcher) -> int:
        total = 0
        while count := await dispatcher.dispatch_once():
            total += count
        return total

    counts = await asyncio.gather(*(until_empty(d) for d in dispatchers))
    for q in queues:
        await q.drain()

    assert sum(counts) == 30
    assert sorted(ctx.extras["marks"]) == values
    assert all(row.dispatched_at is not None for row in await outbox_rows(sessionmaker))


async def test_queue_refusal_is_recorded_and_the_row_retried_next_round(
    sessionmaker: async_sessionmaker[AsyncSession], clock: SettableClock
) -> None:
    ctx = job_context(sessionmaker, clock)
    closed = InlineJobQueue(ctx)
    await closed.close()
    await write_outbox(sessionmaker, clock, "patient")

    assert await OutboxDispatcher(sessionmaker, closed, clock).dispatch_once() == 0
    [row] = await outbox_rows(sessionmaker)
    assert (row.dispatched_at, row.attempts) == (None, 1)
    assert row.last_error == "RuntimeError: the inline job queue is closed"

    queue = InlineJobQueue(ctx)
    assert await OutboxDispatcher(sessionmaker, queue, clock).dispatch_once() == 1
    await queue.drain()
    assert ctx.extras["marks"] == ["patient"]


async def test_kick_wakes_the_dispatch_loop(
    sessionmaker: async_sessionmaker[AsyncSession], clock: SettableClock
) -> None:
    ctx = job_context(sessionmaker, clock)
    queue = InlineJobQueue(ctx)
    dispatcher = OutboxDispatcher(sessionmaker, queue, clock)
    stop = asyncio.Event()
    # An hour of idle time: only a kick can bring the second row out while the test waits.
    runner = asyncio.create_task(dispatcher.run(stop, idle_seconds=3600))

    for value in ("first", "second"):
        marked = ctx.extras["marked"] = asyncio.Event()
        await write_outbox(sessionmaker, clock, value)
        dispatcher.kick()
        await asyncio.wait_for(marked.wait(), timeout=30)

    stop.set()
    await asyncio.wait_for(runner, timeout=30)
    await queue.close()
    assert ctx.extras["marks"] == ["first", "second"]


# --- the inline queue ---------------------------------------------------------------------------------


async def test_failing_job_is_retried_and_succeeds_on_the_third_attempt() -> None:
    ctx = job_context()
    queue = InlineJobQueue(ctx, max_attempts=5)

    await queue.enqueue(FLAKY, {"key": "k", "fail_times": 2}, new_job_id())
    await queue.drain()

    assert ctx.extras["tries"] == {"k": 3}
    assert ctx.extras["marks"] == ["k"]


async def test_job_failing_forever_stops_after_max_attempts_without_logging_the_payload(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx = job_context()
    queue = InlineJobQueue(ctx, max_attempts=3)
    job_id = new_job_id()

    await queue.enqueue(FLAKY, {"key": "k", "fail_times": 99, "holder": SECRET}, job_id)
    await queue.drain()

    assert ctx.extras["tries"] == {"k": 3}
    assert ctx.extras["marks"] == []
    errors = [r for r in caplog.records if r.name == "ggzy.jobs" and r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [f"job {FLAKY} ({job_id}) failed after 3 attempts; giving up"]
    assert SECRET not in caplog.text


async def test_unknown_job_is_dropped_and_the_queue_keeps_running(caplog: pytest.LogCaptureFixture) -> None:
    ctx = job_context()
    queue = InlineJobQueue(ctx)
    job_id = new_job_id()

    await queue.enqueue("test.jobs.no-such-job", {"value": "lost"}, job_id)
    await queue.enqueue(MARK, {"value": "after"}, new_job_id())
    await queue.drain()

    assert ctx.extras["marks"] == ["after"]
    assert f"unknown job 'test.jobs.no-such-job' ({job_id}) dropped" in [
        r.getMessage() for r in caplog.records if r.levelno == logging.ERROR
    ]


async def test_same_job_id_runs_once_on_the_inline_queue() -> None:
    ctx = job_context()
    queue = InlineJobQueue(ctx)
    job_id = new_job_id()

    await queue.enqueue(MARK, {"value": "once"}, job_id)
    await queue.enqueue(MARK, {"value": "twice"}, job_id)
    await queue.drain()
    await queue.enqueue(MARK, {"value": "thrice"}, job_id)
    await queue.drain()

    assert ctx.extras["marks"] == ["once"]


def test_a_job_name_is_registered_only_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        job(MARK)(mark)
    assert JOBS[MARK] is mark


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, 0.05, 0.3) for n in range(1, 6)] == [0.05, 0.1, 0.2, 0.3, 0.3]


# --- arq on Redis -------------------------------------------------------------------------------------


@dataclass
class ArqKeys:
    """A queue of our own on the shared Redis, and the job ids to clean up after the test."""

    queue: str
    job_ids: list[str] = field(default_factory=list)

    def new_job_id(self) -> str:
        job_id = new_job_id()
        self.job_ids.append(job_id)
        return job_id


@pytest.fixture
async def arq_keys(redis_url: str) -> AsyncIterator[ArqKeys]:
    keys = ArqKeys(queue=f"ggzy:test:{uuid.uuid4().hex}")
    yield keys
    client = aioredis.Redis.from_url(redis_url)
    try:
        names = [keys.queue, f"{keys.queue}:health-check"] + [
            f"arq:{kind}:{job_id}"
            for job_id in keys.job_ids
            for kind in ("job", "result", "retry", "in-progress")
        ]
        await client.delete(*names)
    finally:
        await client.aclose()


async def arq_enqueue(redis_url: str, queue_name: str, *jobs: tuple[str, dict[str, Any], str]) -> None:
    queue = ArqJobQueue(redis_url, queue_name=queue_name)
    await queue.start()
    try:
        for name, payload, job_id in jobs:
            await queue.enqueue(name, payload, job_id)
    finally:
        await queue.close()


async def run_worker_burst(ctx: JobContext, redis_url: str, queue_name: str, **options: Any) -> arq.Worker:
    """Run an in-process arq worker until the queue is empty."""

    async def ctx_factory() -> JobContext:
        return ctx

    worker = arq.Worker(
        **worker_settings(ctx_factory, redis_url, queue_name=queue_name, **options),
        burst=True,
        handle_signals=False,
        poll_delay=0.01,
    )
    try:
        await worker.async_run()
    finally:
        await worker.close()
    return worker


async def test_arq_worker_runs_the_job_with_its_payload_and_keeps_it_out_of_the_log(
    redis_url: str, arq_keys: ArqKeys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="arq")
    ctx = job_context()
    payload = {"holder": SECRET, "amount_fen": 12_345, "lots": [1, 2]}

    await arq_enqueue(redis_url, arq_keys.queue, (CAPTURE, payload, arq_keys.new_job_id()))
    worker = await run_worker_burst(ctx, redis_url, arq_keys.queue)

    assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)
    [received] = ctx.extras["payloads"]
    assert type(received) is dict
    assert received == payload
    assert SECRET not in caplog.text


async def test_arq_same_job_id_runs_once(redis_url: str, arq_keys: ArqKeys) -> None:
    ctx = job_context()
    job_id = arq_keys.new_job_id()

    await arq_enqueue(
        redis_url, arq_keys.queue, (MARK, {"value": "once"}, job_id), (MARK, {"value": "twice"}, job_id)
    )
    await run_worker_burst(ctx, redis_url, arq_keys.queue)
    await arq_enqueue(redis_url, arq_keys.queue, (MARK, {"value": "thrice"}, job_id))
    await run_worker_burst(ctx, redis_url, arq_keys.queue)

    assert ctx.extras["marks"] == ["once"]


async def test_arq_failing_job_is_retried_and_succeeds_on_the_third_attempt(
    redis_url: str, arq_keys: ArqKeys
) -> None:
    ctx = job_context()

    await arq_enqueue(
        redis_url, arq_keys.queue, (FLAKY, {"key": "k", "fail_times": 2}, arq_keys.new_job_id())
    )
    worker = await run_worker_burst(ctx, redis_url, arq_keys.queue, backoff_seconds=0.01)

    assert ctx.extras["tries"] == {"k": 3}
    assert ctx.extras["marks"] == ["k"]
    assert (worker.jobs_complete, worker.jobs_retried, worker.jobs_failed) == (1, 2, 0)


async def test_worker_settings_register_every_job_and_the_cron_entries() -> None:
    ctx = job_context()
    ticks: list[JobContext] = []

    async def ctx_factory() -> JobContext:
        return ctx

    async def chronograph(job_ctx: JobContext) -> None:
        ticks.append(job_ctx)

    settings = worker_settings(
        ctx_factory, "redis://127.0.0.1:6379/0", cron=[("chronograph", chronograph, 15)], queue_name="q"
    )

    assert [f.name for f in settings["functions"]] == sorted(JOBS)
    assert settings["queue_name"] == "q"
    [entry] = settings["cron_jobs"]
    assert isinstance(entry, CronJob)
    assert (entry.name, entry.second, entry.minute, entry.unique) == (
        "cron:chronograph",
        {0, 15, 30, 45},
        None,
        True,
    )
    # The cron entry runs with the JobContext that on_startup built.
    arq_ctx: dict[Any, Any] = {}
    await settings["on_startup"](arq_ctx)
    await entry.coroutine(arq_ctx)
    assert ticks == [ctx]


@pytest.mark.parametrize(
    ("every", "schedule"),
    [
        (1, {"second": set(range(60))}),
        (60, {"minute": set(range(60)), "second": 0}),
        (300, {"minute": {0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55}, "second": 0}),
        (21600, {"hour": {0, 6, 12, 18}, "minute": 0, "second": 0}),
    ],
)
def test_cron_schedule_fires_every_n_seconds(every: int, schedule: dict[str, Any]) -> None:
    assert cron_schedule(every) == schedule


@pytest.mark.parametrize("every", [0, 45, 90, 7200 * 5])
def test_cron_schedule_refuses_intervals_that_do_not_divide_evenly(every: int) -> None:
    with pytest.raises(ValueError):
        cron_schedule(every)


# --- the periodic driver ------------------------------------------------------------------------------


async def test_periodic_calls_fn_until_stopped() -> None:
    stop = asyncio.Event()
    calls = 0

    async def tick() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            stop.set()

    await asyncio.wait_for(Periodic(tick, every_seconds=0.001).run(stop), timeout=30)

    assert calls == 3


async def test_periodic_survives_an_exception_in_fn(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    calls = 0

    async def tick() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first tick fails")
        if calls == 3:
            stop.set()

    await asyncio.wait_for(Periodic(tick, every_seconds=0.001).run(stop), timeout=30)

    assert calls == 3
    [failure] = [r for r in caplog.records if r.name == "ggzy.jobs" and r.levelno == logging.ERROR]
    assert failure.getMessage().startswith("periodic ")
    assert failure.exc_info is not None and str(failure.exc_info[1]) == "first tick fails"


async def test_a_sequential_queue_runs_nothing_until_drained_then_each_job_in_turn_with_retries() -> None:
    ctx = job_context()
    queue = SequentialJobQueue(ctx, backoff_seconds=0.0)
    await queue.start()
    await queue.enqueue(MARK, {"value": "first"}, "job-1")
    await queue.enqueue(FLAKY, {"key": "second", "fail_times": 2}, "job-2")
    await queue.enqueue(MARK, {"value": "third"}, "job-3")
    await queue.enqueue(MARK, {"value": "first again"}, "job-1")  # a duplicate id is ignored

    assert ctx.extras["marks"] == []
    await queue.drain()

    assert ctx.extras["marks"] == ["first", "second", "third"]
    assert ctx.extras["tries"] == {"second": 3}
    await queue.close()
    with pytest.raises(RuntimeError, match="closed"):
        await queue.enqueue(MARK, {"value": "late"}, "job-4")


async def test_one_transaction_keeps_every_session_or_none(database: Any) -> None:
    from sqlalchemy import text

    from storage.db import create_sessionmaker, one_transaction

    async def count(sessionmaker: Any) -> int:
        async with transaction(sessionmaker, read_only=True) as session:
            return int(await session.scalar(text("SELECT count(*) FROM outbox")) or 0)

    now = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    before = await count(create_sessionmaker(database.engine))
    with pytest.raises(RuntimeError):
        async with one_transaction(database.engine) as sessionmaker:
            async with transaction(sessionmaker) as session:
                enqueue(session, MARK, {"value": 1}, now)
            with contextlib.suppress(ValueError):
                async with transaction(sessionmaker) as session:  # a use case that fails undoes only itself
                    enqueue(session, MARK, {"value": 2}, now)
                    await session.flush()
                    raise ValueError("refused")
            assert await count(sessionmaker) == before + 1
            raise RuntimeError("the seed stops")
    assert await count(create_sessionmaker(database.engine)) == before

    async with one_transaction(database.engine) as sessionmaker:
        async with transaction(sessionmaker) as session:
            enqueue(session, MARK, {"value": 3}, now)
    assert await count(create_sessionmaker(database.engine)) == 1
