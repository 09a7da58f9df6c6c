"""Faults during the opening: an object store or a database gone for a second, a minute or longer while
the platform decrypts revealed envelopes, on the inline queue and on arq. Outages are spans on the
injected clock; nothing waits on wall time."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from storage.clock import SettableClock
from storage.faults import FlakyStore, Outage, database_outage
from storage.jobs import ArqJobQueue, InlineJobQueue, JobContext, OutboxDispatcher
from storage.outbox import OutboxMessage
from tests.conftest import Database, _api, _runtime
from tests.helpers import AFTER_WINDOW, DEADLINE, Api, SealedBid
from tests.storage.test_jobs import run_worker_burst

T = "/api/v1/tenders"
PRICE = 4_800_000_000
GRACE = timedelta(minutes=15)  # bidding.hall.DECRYPTION_GRACE


@dataclass
class Hall:
    """An opening hall whose jobs see the object store through an outage, on one kind of queue."""

    api: Api
    outage: Outage
    ctx: JobContext
    redis_url: str | None
    queue_name: str

    @property
    def clock(self) -> SettableClock:
        return self.api.runtime.clock  # type: ignore[no-any-return]

    async def run_jobs(self) -> None:
        """Hand what is due to the queue and run it (the inline queue at once, arq by a worker burst)."""
        await self.api.runtime.dispatcher.dispatch_once()
        if self.redis_url is None:
            await self.api.runtime.queue.drain()
        else:
            await run_worker_burst(self.ctx, self.redis_url, self.queue_name)

    async def next_due(self) -> datetime | None:
        async with self.api.runtime.sessionmaker() as session:
            rows = list(await session.scalars(select(OutboxMessage)))
        due = [r.available_at for r in rows if getattr(r, "status", "pending") == "pending"]
        return min(due) if due else None


@pytest.fixture(params=["inline", "arq"])
async def hall(
    request: pytest.FixtureRequest, database: Database, clock: SettableClock, tmp_path: Path
) -> AsyncIterator[Hall]:
    rt = _runtime(database, clock, tmp_path)
    await rt.store.ensure_ready()
    outage = Outage(clock)
    ctx = rt.job_context
    ctx.extras["store"] = FlakyStore(rt.store, outage)  # the jobs' store fails; the API's is untouched
    queue_name = f"ggzy:test:{uuid.uuid4().hex}"
    redis_url: str | None = None
    if request.param == "inline":
        rt.queue = InlineJobQueue(ctx)
    else:
        redis_url = request.getfixturevalue("redis_url")
        rt.queue = ArqJobQueue(redis_url, queue_name=queue_name)
    await rt.queue.start()
    rt.dispatcher = OutboxDispatcher(rt.sessionmaker, rt.queue, clock)
    async for api in _api(rt):
        yield Hall(api, outage, ctx, redis_url, queue_name)
    await rt.queue.close()
    if redis_url is not None:
        async with rt.sessionmaker() as session:
            ids = [str(i) for i in await session.scalars(select(OutboxMessage.id))]
        client: Any = aioredis.Redis.from_url(redis_url)
        try:
            keys = [k async for k in client.scan_iter(match=f"{queue_name}*")]
            for job_id in ids:
                keys += [k async for k in client.scan_iter(match=f"arq:*{job_id}*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


async def revealed_in_the_hall(hall: Hall) -> tuple[dict[str, Any], list[SealedBid]]:
    """Three bids; at the deadline each bidder reveals its file key, and nothing is decrypted yet."""
    api = hall.api
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bids = [await api.bid(await api.organisation("bidder"), tender, PRICE - i) for i in range(3)]
    await api.at(DEADLINE)
    for bid in bids:
        r = await api.reveal(tender["id"], bid, run=False)
        assert r.status_code == 202, r.text
    return tender, bids


async def lines(api: Api, tender: dict[str, Any], bids: list[SealedBid]) -> list[tuple[str, str | None, Any]]:
    out = []
    for bid in bids:
        [mine] = (await api.get(f"{T}/{tender['id']}/bids", bid.bidder)).json()
        out.append((mine["status"], mine["envelope_status"], mine["declared_price_fen"]))
    return out


async def ride_out(hall: Hall, until: datetime) -> int:
    """Run the jobs at each instant one is due, up to `until`; how many rounds it took."""
    rounds = 0
    while (due := await hall.next_due()) is not None and due <= until:
        hall.clock.set(max(due, hall.clock.now()))
        await hall.run_jobs()
        rounds += 1
        assert rounds < 100
    return rounds


async def attempts(hall: Hall) -> dict[str, int]:
    async with hall.api.runtime.sessionmaker() as session:
        rows = list(
            await session.scalars(select(OutboxMessage).where(OutboxMessage.job == "trading.open_envelope"))
        )
    return {str(r.payload["bid_id"]): r.attempts for r in rows}


def opened(bids: list[SealedBid]) -> list[tuple[str, str, int]]:
    return [("submitted", "opened", bid.price_fen) for bid in bids]


@pytest.mark.parametrize("seconds", [1, 60])
async def test_a_store_outage_during_decryption_changes_no_outcome(hall: Hall, seconds: int) -> None:
    tender, bids = await revealed_in_the_hall(hall)
    start = hall.clock.now()
    hall.outage.set(start, start + timedelta(seconds=seconds))

    await hall.run_jobs()
    assert [line[1] for line in await lines(hall.api, tender, bids)] == ["opening"] * 3
    await ride_out(hall, start + timedelta(minutes=10))

    assert await lines(hall.api, tender, bids) == opened(bids)
    # failures at +0, +1, +3, +7, +15, +31 s for a minute's outage (backoff 1 s doubling); one for a second's
    assert set((await attempts(hall)).values()) == {1 if seconds == 1 else 6}
    record = (
        await hall.api.get(f"{T}/{tender['id']}/opening/record", await hall.api.bootstrap_centre())
    ).json()
    assert [e["kind"] for e in record].count("bid_opened") == 3
    assert "bid_failed" not in [e["kind"] for e in record]


async def test_revealing_again_while_the_platform_decrypts_is_accepted_and_changes_nothing(
    hall: Hall,
) -> None:
    tender, bids = await revealed_in_the_hall(hall)
    start = hall.clock.now()
    hall.outage.set(start, start + timedelta(seconds=60))
    await hall.run_jobs()

    again = await hall.api.reveal(tender["id"], bids[0], run=False)
    assert again.status_code == 202, again.text
    await ride_out(hall, start + timedelta(minutes=10))

    assert await lines(hall.api, tender, bids) == opened(bids)
    record = (
        await hall.api.get(f"{T}/{tender['id']}/opening/record", await hall.api.bootstrap_centre())
    ).json()
    assert [e["kind"] for e in record].count("key_revealed") == 3


async def test_a_store_outage_that_outlasts_the_window_is_the_platforms_fault(hall: Hall) -> None:
    tender, bids = await revealed_in_the_hall(hall)
    start = hall.clock.now()
    hall.outage.set(start, start + timedelta(days=7))
    await hall.run_jobs()
    await ride_out(hall, AFTER_WINDOW)
    await hall.api.at(AFTER_WINDOW)
    assert [line[1] for line in await lines(hall.api, tender, bids)] == ["opening"] * 3  # still trying

    await ride_out(hall, AFTER_WINDOW + GRACE)
    await hall.api.at(AFTER_WINDOW + GRACE)

    assert [line[:2] for line in await lines(hall.api, tender, bids)] == [("withdrawn", "failed")] * 3
    centre = await hall.api.bootstrap_centre()
    r = await hall.api.get("/api/v1/escrow/obligations", centre, params={"tender_id": tender["id"]})
    refunds = [o for o in r.json() if o["rule"] == "E-03"]
    assert len(refunds) == 3 and {o["status"] for o in refunds} == {"due"}
    record = (await hall.api.get(f"{T}/{tender['id']}/opening/record", centre)).json()
    failed = [e for e in record if e["kind"] == "bid_failed"]
    assert [e["result"] for e in failed] == ["platform.decryption"] * 3


@pytest.mark.parametrize("seconds", [1, 60])
async def test_a_database_outage_during_decryption_changes_no_outcome(
    hall: Hall, database: Database, seconds: int
) -> None:
    tender, bids = await revealed_in_the_hall(hall)
    start = hall.clock.now()
    outage = Outage(hall.clock)
    with database_outage(database.engine, outage):
        await hall.api.runtime.dispatcher.dispatch_once()  # handed over while the database is up
        outage.set(start, start + timedelta(seconds=seconds))
        # the jobs cannot read, write or even record their failure; the outbox rows stay pending
        if hall.redis_url is None:
            await hall.api.runtime.queue.drain()
        else:
            await run_worker_burst(hall.ctx, hall.redis_url, hall.queue_name)
        hall.clock.set(start + timedelta(seconds=seconds))
        await ride_out(hall, start + timedelta(minutes=10))  # the leases (5 minutes) bring them back

    assert await lines(hall.api, tender, bids) == opened(bids)
    assert set((await attempts(hall)).values()) == {1}
