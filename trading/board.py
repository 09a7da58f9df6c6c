"""The public notice board's answers, kept in each API process and served only while they are still true.

A board page (one query: filters, search, cursor and limit) is read from the database once and kept,
keyed by the query. Before a request is answered from it, the request reads the board's version token
(`NoticeBoardVersion`), which database triggers change in the very transaction that writes a notice
(migration 0018). If the token is the one the page was read under, no notice has been published,
corrected or removed since, in this process or in any other, and the page is what the database holds now.
The token read starts after the request arrived, so a notice whose transaction committed before the
request is never missed: the board shows a notice from the instant its publication commits, never before
(an open or rolled-back transaction changes no token and no page), and never after the commit that
supersedes or removes it.

Why a read per request and not LISTEN/NOTIFY or Redis: a notification arrives some time after the commit
and is lost with its connection, and a key set in Redis after the commit is lost with a process that dies
between the two. In either gap another process would serve a board without a notice that is legally
published, or with one that is withdrawn. A publication's instant starts legal periods (S-03), so the board
must be exact, and exactness needs one read that starts after the request. On PostgreSQL concurrent
requests share it: a read serves every request that arrived before it started (`TokenReader`), so under
load the board makes about one token read per database round trip, not one per request, and a page in the
cache costs no query. SQLite reads in-process, so there each request reads the token in its own snapshot.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import Pool

from storage.db import READ_ONLY

MAX_PAGES = 512  # pages kept per process (a page of 20 notices is some 15 KB), least recently used dropped
PARALLEL_READS = 4  # token reads under way at once, each serving every request that arrived before it
VERSION_QUERY = "SELECT token FROM notice_board_version WHERE id = 1"


class TokenReader:
    """Reads the board's version token for many concurrent requests with few queries.

    `read()` answers the token as of an instant after it was called: it joins the read that has not
    started yet, which gathers everyone who arrives until it starts. It starts at once while fewer than
    `parallel` reads are under way, else when one of them ends; so the board waits on the database's
    latency (a busy machine's scheduler) only `parallel` reads at a time, and never more than that many
    connections are used for tokens.
    """

    def __init__(self, parallel: int = PARALLEL_READS) -> None:
        self._parallel = parallel
        self._pending: asyncio.Future[str | None] | None = None
        self._running = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def read(self, engine: AsyncEngine) -> str | None:
        """The token now (None if the row is missing: then nothing may be served from or kept in the cache)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # what an ended event loop left behind can never finish
            self._loop, self._pending, self._running = loop, None, 0
        future = self._pending
        if future is None:
            future = self._pending = loop.create_future()
            future.add_done_callback(_consume)
            if self._running < self._parallel:
                self._start(engine)
        # shielded: a caller that goes away does not cancel the read the others wait for
        return await asyncio.shield(future)

    def _start(self, engine: AsyncEngine) -> None:
        future, self._pending = self._pending, None
        assert future is not None
        self._running += 1
        task = asyncio.get_running_loop().create_task(self._read_into(engine, future))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_into(self, engine: AsyncEngine, future: asyncio.Future[str | None]) -> None:
        try:
            token = await read_token(engine)
        except Exception as exc:  # every waiter sees the failure; the next read starts afresh
            future.set_exception(exc)
        else:
            future.set_result(token)
        finally:
            self._running -= 1
            if self._pending is not None:
                self._start(engine)


def _consume(future: asyncio.Future[str | None]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so a failure nobody waited for is not reported as lost


async def read_token(engine: AsyncEngine) -> str | None:
    """One read of the token, outside any transaction (AUTOCOMMIT on PostgreSQL, a read-only one on SQLite)."""
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "AUTOCOMMIT"
    async with engine.connect() as connection:
        if any(engine.get_execution_options().get(name) != value for name, value in options.items()):
            await connection.execution_options(**options)
        if engine.dialect.name == "postgresql":
            # straight to asyncpg: SQLAlchemy's statement and result handling took as long as the round trip
            raw = await connection.get_raw_connection()
            token: str | None = await raw.driver_connection.fetchval(VERSION_QUERY)  # type: ignore[union-attr]
            return token
        token = (await connection.exec_driver_sql(VERSION_QUERY)).scalar()
        return token


class BoardCache:
    """The pages of one database's board kept in this process, each with the token it was read under."""

    def __init__(self, max_pages: int = MAX_PAGES) -> None:
        self.reader = TokenReader()
        self._pages: OrderedDict[Hashable, tuple[str, Any]] = OrderedDict()
        self._max_pages = max_pages

    async def token(self, session: AsyncSession, engine: AsyncEngine) -> str | None:
        """The token now, for a read unit. One that holds no connection (a single read on PostgreSQL takes
        one only when it reads) shares a read with its neighbours. One that holds a connection reads it
        through that connection, in the snapshot its page will be read in: waiting for another connection
        while holding one could use up the pool with requests that all wait."""
        if engine.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return await self.reader.read(engine)
        token: str | None = (await session.execute(text(VERSION_QUERY))).scalar()
        return token

    def get(self, key: Hashable, token: str) -> Any | None:
        """The page kept for `key` if it was read under `token`, else None."""
        kept = self._pages.get(key)
        if kept is None or kept[0] != token:
            return None
        self._pages.move_to_end(key)
        return kept[1]

    def keep(self, key: Hashable, token: str, page: Any) -> None:
        """Keep `page`, read after `token` was read, for requests that find the token unchanged."""
        self._pages[key] = (token, page)
        self._pages.move_to_end(key)
        while len(self._pages) > self._max_pages:
            self._pages.popitem(last=False)

    def __len__(self) -> int:
        return len(self._pages)


# One cache per connection pool: every engine on a pool (e.g. its AUTOCOMMIT variant) reads the same database.
_CACHES: WeakKeyDictionary[Pool, BoardCache] = WeakKeyDictionary()


def board_cache(session: AsyncSession) -> tuple[AsyncEngine, BoardCache] | None:
    """The cache for the session's database, or None when the session must read for itself: a unit that
    writes (or one bound to a connection, which may be inside such a unit) must see its own rows."""
    bind = session.bind
    if not isinstance(bind, AsyncEngine) or not session.info.get(READ_ONLY):
        return None
    pool = bind.sync_engine.pool
    cache = _CACHES.get(pool)
    if cache is None:
        cache = _CACHES[pool] = BoardCache()
    return bind, cache
