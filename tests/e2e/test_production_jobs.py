"""The production job path: outbox → arq on Redis → worker → database, for a trade's notification."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from storage.clock import SettableClock
from storage.jobs import ArqJobQueue
from storage.outbox import OutboxMessage
from tests.conftest import Database, _api, _runtime
from tests.helpers import Api
from tests.storage.test_jobs import run_worker_burst


@pytest.fixture
async def arq_api(
    database: Database, clock: SettableClock, tmp_path: Path, redis_url: str
) -> AsyncIterator[tuple[Api, str]]:
    queue_name = f"ggzy:test:{uuid.uuid4().hex}"
    rt = _runtime(database, clock, tmp_path, queue=ArqJobQueue(redis_url, queue_name=queue_name))
    await rt.store.ensure_ready()
    await rt.queue.start()
    async for api in _api(rt):
        yield api, queue_name
    await rt.queue.close()
    async with rt.sessionmaker() as session:
        job_ids = [str(i) for i in await session.scalars(select(OutboxMessage.id))]
    client: Any = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{queue_name}*")]
        for job_id in job_ids:  # only this test's jobs: the Redis may be shared
            keys += [k async for k in client.scan_iter(match=f"arq:*{job_id}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_a_clarification_reaches_document_holders_through_arq(
    arq_api: tuple[Api, str], redis_url: str
) -> None:
    api, queue_name = arq_api
    agency = await api.organisation("agency")
    bidder = await api.organisation("bidder")
    tender = await api.published(agency)
    await run_worker_burst(api.runtime.job_context, redis_url, queue_name)  # publication's own jobs
    assert (await api.post(f"/api/v1/tenders/{tender['id']}/documents/obtain", bidder)).status_code == 200
    api.clock.set(api.clock.now().replace(day=16))
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/clarifications",
        agency,
        json={"text": "第3.2条工程量清单更正", "affects_bids": True},
    )
    assert r.status_code == 201 and r.json()["deadline_moved"] is True

    assert await api.runtime.dispatcher.dispatch_once() == 1
    assert (await api.get("/api/v1/notifications", bidder)).json() == []  # queued, not yet run
    await run_worker_burst(api.runtime.job_context, redis_url, queue_name)

    notes = (await api.get("/api/v1/notifications", bidder)).json()
    assert [n["kind"] for n in notes] == ["tender.clarified"]
    assert "(W-02)" in notes[0]["message"]
