"""The public board answers from a cache in each API process (trading/board.py), and is still exactly what
the database holds when the request arrives: a notice shows from the commit of its publication in any
process, never before it and never after the commit that withdraws it, and nothing of an unfinished or
rolled-back transaction ever shows."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import delete, event, insert, update

from storage.db import create_engine, transaction
from tests.conftest import Database
from tests.helpers import Api
from trading import board, notices
from trading.models import Notice

BOARD = "/api/v1/notices"


@asynccontextmanager
async def other_process(api: Api, database: Database) -> AsyncIterator[Api]:
    """A second API process on the same database: its own engine, pool and board cache, the same secret
    (so sign-ins carry over), clock and object store."""
    from app import build_runtime, create_app

    engine = create_engine(database.url)
    runtime = build_runtime(
        dataclasses.replace(api.runtime.settings), clock=api.clock, engine=engine, store=api.runtime.store
    )
    runtime.run_chronograph = False
    app = create_app(runtime, manage_runtime=False)
    try:
        transport = httpx.ASGITransport(app=cast(Any, app))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, runtime, api.centre, api._n + 1000, api.keys, api.custodian_actors)
    finally:
        await runtime.queue.close()
        await engine.dispose()


async def _board(api: Api, **params: str) -> dict[str, Any]:
    r = await api.get(BOARD, params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _ids(api: Api, **params: str) -> list[str]:
    return [n["id"] for n in (await _board(api, **params))["items"]]


async def _warm(api: Api, **params: str) -> list[str]:
    """Read a page twice, so the second answer comes from the cache."""
    first = await _ids(api, **params)
    assert await _ids(api, **params) == first
    found = board._CACHES.get(api.runtime.engine.sync_engine.pool)
    assert found is not None and len(found) > 0
    return first


def _correction(tender: dict[str, Any], api: Api, title: str = "更正公告") -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "tender_id": uuid.UUID(tender["id"]),
        "kind": "correction",
        "sector": "works",
        "region_code": tender["region_code"],
        "tender_code": tender["code"],
        "title": f"{tender['title']} {title}",
        "body": {"amended": True},
        "published_at": api.clock.now() + timedelta(seconds=1),
        "supersedes_id": None,
        "superseded_by_id": None,
    }


async def _truth(api: Api, **params: Any) -> list[str]:
    """The board's page read by a unit that writes, which never answers from the cache."""
    limit = params.pop("limit", 20)
    query = {
        "kind": None,
        "sector": None,
        "region_code": None,
        "tender_code": None,
        "q": None,
        "cursor": None,
    }
    query |= params
    async with transaction(api.runtime.sessionmaker) as session:
        found, _cursor = await notices.list_notices(session, limit=limit, **query)
    return [str(n.id) for n in found]


async def test_a_notice_published_in_another_process_is_on_the_board_at_once(
    api: Api, database: Database
) -> None:
    agency = await api.organisation("agency")
    await api.published(agency)
    before = await _warm(api)

    async with other_process(api, database) as other:
        tender = await other.published(agency)

    after = await _ids(api)
    codes = [n["tender_code"] for n in (await _board(api))["items"]]
    assert tender["code"] in codes and set(before) < set(after)
    assert after == await _truth(api)


async def test_a_publication_not_yet_committed_is_not_on_the_board_until_its_commit(
    api: Api, database: Database
) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    before = await _warm(api)
    row = _correction(tender, api)
    engine = create_engine(database.url)
    try:
        async with engine.connect() as conn:
            transaction_ = await conn.begin()
            await conn.execute(insert(Notice).values(**row))
            assert await _ids(api) == before  # written, not committed: not published
            assert await _ids(api, tender_code=tender["code"]) == [before[0]]
            await transaction_.commit()
    finally:
        await engine.dispose()

    assert await _ids(api) == [str(row["id"]), *before]
    assert await _ids(api, tender_code=tender["code"]) == [str(row["id"]), before[0]]


async def test_a_publication_rolled_back_never_reaches_the_board(api: Api, database: Database) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    before = await _warm(api)
    row = _correction(tender, api)
    engine = create_engine(database.url)
    try:
        async with engine.connect() as conn:
            transaction_ = await conn.begin()
            await conn.execute(insert(Notice).values(**row))
            assert await _ids(api, kind="correction") == []  # a page read and kept while it is open
            await transaction_.rollback()
    finally:
        await engine.dispose()

    assert await _ids(api, kind="correction") == []
    assert await _ids(api) == before == await _truth(api)


async def test_a_superseded_or_removed_notice_changes_on_the_board_at_once(
    api: Api, database: Database
) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    row = _correction(tender, api)
    engine = create_engine(database.url)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(Notice).values(**row))
        first, original = await _warm(api)
        assert first == str(row["id"])

        async with engine.begin() as conn:  # the correction supersedes the notice
            await conn.execute(
                update(Notice).where(Notice.id == uuid.UUID(original)).values(superseded_by_id=row["id"])
            )
        items = (await _board(api))["items"]
        assert items[1]["id"] == original and items[1]["superseded_by_id"] == str(row["id"])

        async with engine.begin() as conn:  # and is withdrawn from the board
            await conn.execute(
                update(Notice).where(Notice.id == uuid.UUID(original)).values(superseded_by_id=None)
            )
            await conn.execute(delete(Notice).where(Notice.id == row["id"]))
    finally:
        await engine.dispose()

    assert await _ids(api) == [original] == await _truth(api)


async def test_a_draft_tender_is_not_on_the_board_until_it_is_published(api: Api) -> None:
    agency = await api.organisation("agency")
    draft = await api.draft(agency)
    await api.document(agency, draft["id"], b"%PDF-1.7 tender documents, not yet published")
    assert await _warm(api, tender_code=draft["code"]) == []
    assert await _ids(api, q=draft["code"]) == []

    r = await api.publish(agency, draft["id"])
    assert r.status_code == 200, r.text

    assert [n["kind"] for n in (await _board(api, tender_code=draft["code"]))["items"]] == ["tender_notice"]


async def test_a_unit_that_writes_reads_its_own_notices_and_the_board_does_not(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    before = await _warm(api)
    row = _correction(tender, api)

    async with api.runtime.sessionmaker() as session, session.begin():
        session.add(Notice(**row))
        await session.flush()
        found, _cursor = await notices.list_notices(
            session, kind=None, sector=None, region_code=None, tender_code=None, q=None, cursor=None, limit=20
        )
        assert [str(n.id) for n in found] == [str(row["id"]), *before]
        assert await _ids(api) == before
        await session.rollback()

    assert await _ids(api) == before


async def test_each_query_is_answered_with_its_own_page(api: Api) -> None:
    agency = await api.organisation("agency")
    tenders = [await api.published(agency, title=f"第{n}号污水处理厂提标改造工程") for n in range(3)]
    queries: list[dict[str, str]] = [
        {},
        {"kind": "tender_notice"},
        {"kind": "correction"},
        {"tender_code": tenders[1]["code"]},
        {"q": "第2号"},
        {"q": "污水处理"},
        {"limit": "1"},
    ]
    for query in queries:  # twice each, interleaved, so every second answer is a cached one
        await _ids(api, **query)
    for query in queries:
        params: dict[str, Any] = dict(query)
        if "limit" in params:
            params["limit"] = int(params["limit"])
        assert await _ids(api, **query) == await _truth(api, **params), query

    page = await _board(api, limit="1")
    second = await _ids(api, limit="1", cursor=page["next_cursor"])
    assert second == (await _truth(api))[1:2]


async def test_concurrent_requests_share_the_token_reads(api: Api, database: Database) -> None:
    if database.backend != "postgresql":
        pytest.skip("SQLite reads the token in each request's own snapshot")
    agency = await api.organisation("agency")
    await api.published(agency)
    expected = await _warm(api)
    reads: list[str] = []

    def count(*_args: Any) -> None:  # pages in the cache take no connection: each checkout is a token read
        reads.append("read")

    pool = api.runtime.engine.sync_engine.pool
    event.listen(pool, "checkout", count)
    try:
        answers = await asyncio.gather(*(_ids(api) for _ in range(20)))
    finally:
        event.remove(pool, "checkout", count)

    assert all(answer == expected for answer in answers)
    assert 1 <= len(reads) < 20


async def test_a_request_arriving_during_a_token_read_waits_for_a_read_that_starts_after_it(
    api: Api,
) -> None:
    await api.published(await api.organisation("agency"))  # a notice written, so there is a token
    reader = board.TokenReader()
    engine = api.runtime.engine
    events: list[str] = []
    late: list[asyncio.Task[str | None]] = []

    async def arrive_late() -> str | None:
        events.append("late request")
        token = await reader.read(engine)
        events.append("late answer")
        return token

    def on_read(*_args: Any) -> None:  # the reader takes a connection for each read
        events.append("read")
        if not late:  # a request arrives while the first read is on its way to the database
            late.append(asyncio.get_running_loop().create_task(arrive_late()))

    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", on_read)
    try:
        first = await reader.read(engine)
        second = await late[0]
    finally:
        event.remove(pool, "checkout", on_read)

    assert events == ["read", "late request", "read", "late answer"]
    assert first == second is not None
