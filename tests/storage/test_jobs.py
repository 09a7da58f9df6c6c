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
    RetryPolicy,
    SequentialJobQueue,
    backoff_delay,
    cron_schedule,
    dead_letters,
    job,
    retry_dead,
    worker_settings,
)
from storage.outbox import DEAD, DONE, PENDING, OutboxMessage, enqueue

MARK = "test.jobs.mark"
FLAKY = "test.jobs.flaky"
CAPTURE = "test.jobs.capture"
HANG = "test.jobs.hang"
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


@job(HANG)
async def hang(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Wait for the context's gate (forever, in a process that is about to die), then mark."""
    gate: asyncio.Event | None = ctx.extras.get("gate")
    if gate is not None:
        ctx.extras["entered"].set()
        await gate.wait()
    ctx.extras["marks"].append(payload["value"])


def job_context(
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    clock: Clock | None = None,
    retry: RetryPolicy | None = None,
) -> JobContext:
    """A context whose extras collect what the test jobs saw; queue-only tests need no database."""
    return JobContext(
        sessionmaker=sessionmaker or async_sessionmaker(),
        clock=clock or SettableClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC)),
        extras={"marks": [], "tries": {}, "payloads": []},
        retry=retry or RetryPolicy(),
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
    assert (row.status, row.completed_at, row.attempts, row.last_error) == (DONE, clock.now(), 0, None)


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
    assert sorted(ctx.extras["marks"]) == ["first", "second"]  # the batch's jobs run side by side
    assert await dispatcher.dispatch_once() == 1
    await queue.drain()
    assert ctx.extras["marks"][2:] == ["third"]


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
    assert (row.dispatched_at, row.attempts, row.status) == (None, 1, PENDING)
    assert row.last_error == "RuntimeError: the inline job queue is closed"
    assert row.available_at == clock.now() + timedelta(seconds=1)

    queue = InlineJobQueue(ctx)
    assert await OutboxDispatcher(sessionmaker, queue, clock).dispatch_once() == 0  # backing off
    clock.advance(timedelta(seconds=1))
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


# --- retries on the clock, the dead-letter list, leases: on both queues ---------------------------------


@dataclass
class Jobs:
    """An outbox, a dispatcher and a queue (inline, or arq with a worker burst per round) on one clock."""

    sessionmaker: async_sessionmaker[AsyncSession]
    clock: SettableClock
    ctx: JobContext
    dispatcher: OutboxDispatcher
    queue: Any
    redis_url: str | None = None
    queue_name: str = ""
    arq_failures: int = 0

    async def write(self, name: str, payload: dict[str, Any]) -> uuid.UUID:
        async with transaction(self.sessionmaker) as session:
            row = enqueue(session, name, payload, self.clock.now())
            await session.flush()
            return row.id

    async def row(self, row_id: uuid.UUID) -> OutboxMessage:
        async with self.sessionmaker() as session:
            row = await session.get(OutboxMessage, row_id)
            assert row is not None
            return row

    async def round(self) -> int:
        """Dispatch what is due and run it to its outcome."""
        count = await self.dispatcher.dispatch_once()
        if self.redis_url is None:
            await self.queue.drain()
        else:
            worker = await run_worker_burst(self.ctx, self.redis_url, self.queue_name)
            self.arq_failures += worker.jobs_failed
        return count

    async def until_settled(self, row_id: uuid.UUID, rounds: int = 100) -> list[float]:
        """Run at every instant the row is due until it is done or dead; the offsets of the rounds (s)."""
        start = self.clock.now()
        offsets: list[float] = []
        for _ in range(rounds):
            row = await self.row(row_id)
            if row.status != PENDING:
                return offsets
            self.clock.set(max(row.available_at, self.clock.now()))
            offsets.append((self.clock.now() - start).total_seconds())
            await self.round()
        raise AssertionError("the job neither finished nor died")


HOUR = RetryPolicy(backoff_seconds=1, backoff_cap_seconds=600, horizon=timedelta(hours=1))


@pytest.fixture(params=["inline", "arq"])
async def jobs(
    request: pytest.FixtureRequest, sessionmaker: async_sessionmaker[AsyncSession], clock: SettableClock
) -> AsyncIterator[Jobs]:
    ctx = job_context(sessionmaker, clock, HOUR)
    if request.param == "inline":
        queue: Any = InlineJobQueue(ctx)
        yield Jobs(sessionmaker, clock, ctx, OutboxDispatcher(sessionmaker, queue, clock, retry=HOUR), queue)
        await queue.close()
        return
    redis_url: str = request.getfixturevalue("redis_url")
    name = f"ggzy:test:{uuid.uuid4().hex}"
    queue = ArqJobQueue(redis_url, queue_name=name)
    await queue.start()
    dispatcher = OutboxDispatcher(sessionmaker, queue, clock, retry=HOUR)
    yield Jobs(sessionmaker, clock, ctx, dispatcher, queue, redis_url, name)
    await queue.close()
    ids = [str(row.id) for row in await outbox_rows(sessionmaker)]
    client: Any = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{name}*")]
        for job_id in ids:
            keys += [k async for k in client.scan_iter(match=f"arq:*{job_id}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_a_failing_job_is_retried_with_backoff_on_the_clock_until_it_succeeds(jobs: Jobs) -> None:
    start = jobs.clock.now()
    row_id = await jobs.write(FLAKY, {"key": "k", "fail_times": 3})

    assert await jobs.until_settled(row_id) == [0, 1, 3, 7]

    assert jobs.ctx.extras["tries"] == {"k": 4} and jobs.ctx.extras["marks"] == ["k"]
    assert jobs.arq_failures == 0  # a job's failure is the outbox's to count, not arq's
    row = await jobs.row(row_id)
    assert (row.status, row.attempts, row.failing_since) == (DONE, 3, start)
    assert row.completed_at == start + timedelta(seconds=7)
    assert row.last_error == "RuntimeError: attempt 3 failed"


async def test_a_row_is_not_handed_over_again_before_its_backoff_ends(jobs: Jobs) -> None:
    row_id = await jobs.write(FLAKY, {"key": "k", "fail_times": 2})
    assert await jobs.round() == 1
    assert await jobs.round() == 0
    jobs.clock.advance(timedelta(milliseconds=999))
    assert await jobs.round() == 0
    jobs.clock.advance(timedelta(milliseconds=1))
    assert await jobs.round() == 1
    assert (await jobs.row(row_id)).attempts == 2


async def test_a_job_failing_for_the_whole_horizon_is_parked_dead_and_listed(
    jobs: Jobs, caplog: pytest.LogCaptureFixture
) -> None:
    start = jobs.clock.now()
    row_id = await jobs.write(FLAKY, {"key": "k", "fail_times": 10_000, "holder": SECRET})

    offsets = await jobs.until_settled(row_id)

    # 1 s doubling to the 600 s cap, until an hour after the first failure
    assert offsets[:11] == [0, 1, 3, 7, 15, 31, 63, 127, 255, 511, 1023]
    assert offsets[-1] >= 3600 > offsets[-2]
    row = await jobs.row(row_id)
    assert (row.status, row.dead_at, row.failing_since) == (
        DEAD,
        start + timedelta(seconds=offsets[-1]),
        start,
    )
    assert row.attempts == len(offsets)
    async with jobs.sessionmaker() as session:
        assert [r.id for r in await dead_letters(session)] == [row_id]
    dead = [r.getMessage() for r in caplog.records if r.name == "ggzy.jobs" and r.levelno == logging.ERROR]
    assert dead == [
        f"job {FLAKY} ({row_id}) failed {row.attempts} times since {start.isoformat()}; "
        "parked in the dead-letter list"
    ]
    assert SECRET not in caplog.text
    jobs.clock.advance(timedelta(days=30))
    assert await jobs.round() == 0  # dead rows wait for someone


async def test_retrying_a_dead_job_is_idempotent_and_runs_it_with_a_fresh_horizon(
    jobs: Jobs, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    # failures at 0, 1, 3, 7, …, 1023, then every 600 s past the hour (4023 s): 16 in all
    row_id = await jobs.write(FLAKY, {"key": "k", "fail_times": 16})
    await jobs.until_settled(row_id)
    assert ((await jobs.row(row_id)).status, jobs.ctx.extras["tries"]) == (DEAD, {"k": 16})
    jobs.clock.advance(timedelta(days=2))

    async with transaction(sessionmaker) as session:
        first = await retry_dead(session, row_id, jobs.clock.now())
    async with transaction(sessionmaker) as session:
        second = await retry_dead(session, row_id, jobs.clock.now())
        unknown = await retry_dead(session, uuid.uuid4(), jobs.clock.now())

    assert first is not None and first[1] is True
    assert second is not None and second[1] is False
    assert unknown is None
    assert await jobs.round() == 1
    row = await jobs.row(row_id)
    assert (row.status, row.failing_since, row.dead_at) == (DONE, None, None)
    assert jobs.ctx.extras["marks"] == ["k"]
    async with transaction(sessionmaker) as session:
        done = await retry_dead(session, row_id, jobs.clock.now())
    assert done is not None and (done[0].status, done[1]) == (DONE, False)


async def test_a_row_naming_an_unknown_job_ends_in_the_dead_letter_list(jobs: Jobs) -> None:
    row_id = await jobs.write("test.jobs.no-such-job", {"value": "lost"})
    await jobs.until_settled(row_id)
    row = await jobs.row(row_id)
    assert row.status == DEAD
    if jobs.redis_url is None:
        assert row.last_error == "UnknownJob: no job is registered as 'test.jobs.no-such-job'"
    else:  # arq's worker refuses a function it does not know; the lease brings the row back each time
        assert row.last_error == "LeaseExpired: no outcome within the lease"


async def test_a_delivery_lost_with_its_process_runs_again_after_the_lease(
    sessionmaker: async_sessionmaker[AsyncSession], clock: SettableClock
) -> None:
    policy = RetryPolicy(lease=timedelta(minutes=5))
    dying = job_context(sessionmaker, clock, policy)
    dying.extras["gate"], dying.extras["entered"] = asyncio.Event(), asyncio.Event()
    old_queue = InlineJobQueue(dying)
    await write_outbox_job(sessionmaker, clock, HANG, {"value": "survives"})
    assert await OutboxDispatcher(sessionmaker, old_queue, clock, retry=policy).dispatch_once() == 1
    await asyncio.wait_for(dying.extras["entered"].wait(), timeout=30)
    for task in list(old_queue._tasks):  # the process dies in the middle of the job
        task.cancel()
    await old_queue.drain()

    ctx = job_context(sessionmaker, clock, policy)
    queue = InlineJobQueue(ctx)  # the restarted process
    dispatcher = OutboxDispatcher(sessionmaker, queue, clock, retry=policy)
    assert await dispatcher.dispatch_once() == 0
    clock.advance(timedelta(minutes=5) - timedelta(seconds=1))
    assert await dispatcher.dispatch_once() == 0
    clock.advance(timedelta(seconds=1))
    assert await dispatcher.dispatch_once() == 1
    await queue.drain()

    assert ctx.extras["marks"] == ["survives"] and dying.extras["marks"] == []
    [row] = await outbox_rows(sessionmaker)
    assert (row.status, row.attempts) == (DONE, 1)
    assert row.last_error == "LeaseExpired: no outcome within the lease"


async def test_a_job_handed_to_arq_whose_redis_lost_it_runs_again_after_the_lease(
    sessionmaker: async_sessionmaker[AsyncSession], clock: SettableClock, redis_url: str, arq_keys: ArqKeys
) -> None:
    policy = RetryPolicy(lease=timedelta(minutes=5))
    ctx = job_context(sessionmaker, clock, policy)
    queue = ArqJobQueue(redis_url, queue_name=arq_keys.queue)
    await queue.start()
    dispatcher = OutboxDispatcher(sessionmaker, queue, clock, retry=policy)
    try:
        await write_outbox_job(sessionmaker, clock, MARK, {"value": "kept"})
        assert await dispatcher.dispatch_once() == 1
        [row] = await outbox_rows(sessionmaker)
        arq_keys.job_ids += [f"{row.id}:0", f"{row.id}:1"]
        client: Any = aioredis.Redis.from_url(redis_url)
        try:
            await client.delete(arq_keys.queue, f"arq:job:{row.id}:0")  # Redis lost the queue
        finally:
            await client.aclose()
        await run_worker_burst(ctx, redis_url, arq_keys.queue)
        assert ctx.extras["marks"] == []

        clock.advance(timedelta(minutes=5))
        assert await dispatcher.dispatch_once() == 1
        await run_worker_burst(ctx, redis_url, arq_keys.queue)
    finally:
        await queue.close()

    assert ctx.extras["marks"] == ["kept"]
    [row] = await outbox_rows(sessionmaker)
    assert (row.status, row.attempts) == (DONE, 1)


async def write_outbox_job(
    sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, name: str, payload: dict[str, Any]
) -> None:
    async with transaction(sessionmaker) as session:
        enqueue(session, name, payload, clock.now())


def test_the_retry_policy_refuses_a_backoff_or_horizon_that_cannot_work() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(backoff_seconds=0)
    with pytest.raises(ValueError):
        RetryPolicy(backoff_seconds=10, backoff_cap_seconds=5)
    with pytest.raises(ValueError):
        RetryPolicy(horizon=timedelta(0))
    assert RetryPolicy().delay(100) == timedelta(seconds=600)


# --- the inline queue ---------------------------------------------------------------------------------


async def test_a_job_enqueued_without_an_outbox_row_runs_once_and_its_failure_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx = job_context()
    queue = InlineJobQueue(ctx)
    job_id = new_job_id()

    await queue.enqueue(FLAKY, {"key": "k", "fail_times": 1, "holder": SECRET}, job_id)
    await queue.drain()

    assert ctx.extras["tries"] == {"k": 1}
    errors = [r for r in caplog.records if r.name == "ggzy.jobs" and r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [f"job {FLAKY} ({job_id}) failed"]
    assert SECRET not in caplog.text


async def test_unknown_job_is_dropped_and_the_queue_keeps_running(caplog: pytest.LogCaptureFixture) -> None:
    ctx = job_context()
    queue = InlineJobQueue(ctx)
    job_id = new_job_id()

    await queue.enqueue("test.jobs.no-such-job", {"value": "lost"}, job_id)
    await queue.enqueue(MARK, {"value": "after"}, new_job_id())
    await queue.drain()

    assert ctx.extras["marks"] == ["after"]
    assert "unknown job 'test.jobs.no-such-job' dropped" in [
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


async def test_a_sequential_queue_runs_nothing_until_drained_then_each_job_in_turn() -> None:
    ctx = job_context()
    queue = SequentialJobQueue(ctx)
    await queue.start()
    await queue.enqueue(MARK, {"value": "first"}, "job-1")
    await queue.enqueue(FLAKY, {"key": "second", "fail_times": 1}, "job-2")
    await queue.enqueue(MARK, {"value": "third"}, "job-3")
    await queue.enqueue(MARK, {"value": "first again"}, "job-1")  # a duplicate id is ignored

    assert ctx.extras["marks"] == []
    await queue.drain()

    # the failing job is tried once here (its outbox row, had it one, would bring it back) and stops nothing
    assert ctx.extras["marks"] == ["first", "third"]
    assert ctx.extras["tries"] == {"second": 1}
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
