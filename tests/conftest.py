"""Shared fixtures: the database on every available backend, the clock, the object store, the app.

Locally the suite runs on SQLite and, when `GGZY_TEST_DATABASE_URL` / `GGZY_TEST_REDIS_URL` are set, on
PostgreSQL and Redis too. With `CI=true` those two variables are required and an unreachable service fails
the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import pytest
from hypothesis import settings
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.clock import SettableClock
from storage.db import create_engine, create_sessionmaker
from storage.migrate import upgrade_async
from storage.models import metadata

pytest_plugins = ["tests.storage.seaweed"]

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("GGZY_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("GGZY_TEST_REDIS_URL", "")
BACKENDS = ["sqlite", "postgresql"]


def examples(full: int) -> int:
    """How many examples a property test generates: its full count in CI, a third of it (at least 10)
    locally, where the suite runs on every change."""
    return full if IN_CI else min(full, max(10, full // 3))


# No test passes or fails on wall-clock time: property tests run without hypothesis's per-example deadline,
# which a loaded machine overruns.
settings.register_profile("ggzy", deadline=None)
settings.load_profile("ggzy")

# Every runtime the suite builds, the demo's and the benchmark server's included, hashes passwords at a
# test cost: argon2 at its production cost takes a quarter of a second per sign-in.
for _name, _value in (("TIME_COST", "1"), ("MEMORY_KIB", "1024"), ("PARALLELISM", "1")):
    os.environ.setdefault(f"GGZY_ARGON2_{_name}", _value)


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI:
        missing = [
            n for n, v in (("GGZY_TEST_DATABASE_URL", PG_URL), ("GGZY_TEST_REDIS_URL", REDIS_URL)) if not v
        ]
        if missing:
            raise pytest.UsageError(
                f"CI=true but {', '.join(missing)} is not set: the production stack is required"
            )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every property test collected (a parametrized one once) runs `examples(count)` of its count: its
    own, or hypothesis's 100."""
    scaled: set[int] = set()
    for item in items:
        test = getattr(item, "obj", None)
        test = getattr(test, "__func__", test)
        cls = getattr(item, "cls", None)
        own = getattr(test, "_hypothesis_internal_use_settings", None)
        if getattr(test, "is_hypothesis_test", False) and own is not None and id(test) not in scaled:
            scaled.add(id(test))
            test._hypothesis_internal_use_settings = settings(own, max_examples=examples(own.max_examples))  # type: ignore[union-attr]
        elif (
            isinstance(getattr(cls, "settings", None), settings)
            and hasattr(cls, "runTest")
            and id(cls) not in scaled
        ):
            scaled.add(id(cls))  # a rule-based state machine's TestCase
            cls.settings = settings(cls.settings, max_examples=examples(cls.settings.max_examples))  # type: ignore[union-attr]


def unavailable(what: str, why: str) -> None:
    """Skip locally, fail in CI: a missing production service is never silently skipped there."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI but {why}", pytrace=False)
    pytest.skip(f"{what} not available: {why}")


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ggzy")


async def _postgres_database(template: str | None = None) -> tuple[str, str]:
    """Create a throw-away database beside the configured one (a copy of `template` if given); return its URL
    and its name."""
    admin = create_engine(PG_URL, pool=False)
    name = f"ggzy_t_{secrets.token_hex(4)}"
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
            # a throw-away database need not wait for the disk at each commit (a server crash is no concern)
            await conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    finally:
        await admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False), name


async def _drop_postgres_database(name: str) -> None:
    admin = create_engine(PG_URL, pool=False)
    try:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


class Database:
    """A migrated database of one backend, emptied between tests."""

    def __init__(self, backend: str, url: str, engine: AsyncEngine) -> None:
        self.backend = backend
        self.url = url
        self.engine = engine
        self.sessionmaker = create_sessionmaker(engine)

    async def empty(self) -> None:
        """Delete every row. On PostgreSQL as a replica session: its triggers (the append-only journal and
        audit tables, foreign keys) do not fire, and DELETE on a test's few rows takes milliseconds where
        TRUNCATE of every table takes a second or more."""
        deletes = [f'DELETE FROM "{t.name}"' for t in reversed(metadata.sorted_tables)]  # noqa: S608 - our own table names
        if self.backend == "sqlite":
            # one call into the driver's thread, not one per table: the same deletes in one transaction
            async with self.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                script = ";".join(["BEGIN IMMEDIATE", *deletes, "COMMIT"])
                await raw.driver_connection.executescript(script)  # type: ignore[union-attr]
            return
        async with self.engine.begin() as conn:
            raw = await conn.get_raw_connection()
            # one round trip: asyncpg runs a script without parameters as one simple query
            script = ";".join(["SET LOCAL session_replication_role = replica", *deletes])
            await raw.driver_connection.execute(script)  # type: ignore[union-attr]


_databases: dict[str, Database] = {}
_drop: list[str] = []


async def _database(backend: str, tmp_root: Path) -> Database:
    if backend in _databases:
        return _databases[backend]
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_root / 'test.db'}"
    else:
        if not PG_URL:
            unavailable("PostgreSQL", "GGZY_TEST_DATABASE_URL is not set")
        try:
            url, name = await _postgres_database()
        except (OSError, Exception) as exc:
            unavailable("PostgreSQL", f"cannot create a test database: {exc}")
            raise
        _drop.append(name)
    await upgrade_async(url)
    engine = create_engine(url)
    if backend == "sqlite":
        _no_fsync(engine)
    database = Database(backend, url, engine)
    _databases[backend] = database
    return database


def _no_fsync(engine: AsyncEngine) -> None:
    """The test file need not reach the disk at each commit: what the suite checks is the transactions."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()


@pytest.fixture(scope="session", autouse=True)
async def _dispose_databases() -> AsyncIterator[None]:
    yield
    for world in _worlds.values():
        await world.runtime.queue.close()
        await world.database.engine.dispose()
    for database in _databases.values():
        await database.engine.dispose()
    await asyncio.gather(*(_drop_postgres_database(name) for name in _drop))


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_root: Path) -> AsyncIterator[Database]:
    """A migrated, empty database, once per backend."""
    db = await _database(request.param, tmp_root)
    await db.empty()
    yield db


@pytest.fixture
def sessionmaker(database: Database) -> async_sessionmaker[AsyncSession]:
    return database.sessionmaker


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session in an open transaction, rolled back after the test."""
    async with sessionmaker() as s, s.begin():
        yield s
        await s.rollback()


@pytest.fixture
def clock() -> SettableClock:
    """A clock standing at Mon 2026-03-02 09:00 Shanghai (01:00 UTC)."""
    return SettableClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not REDIS_URL:
        unavailable("Redis", "GGZY_TEST_REDIS_URL is not set")
    return REDIS_URL


# ---------------------------------------------------------------- the application


BANK_SECRET = "sandbox-bank-notification-secret"


def _runtime(
    database: Database, clock: SettableClock, var_dir: Path, store: Any = None, queue: Any = None
) -> Any:
    """The real runtime on the test database, the given (or a local) object store and in-process jobs.

    The chronograph and the dispatcher do not run on their own: tests call `api.tick()` after moving
    the clock, so nothing depends on wall time.
    """
    from app import build_runtime
    from storage.settings import Settings

    # Tokens outlive the months a test trade spans on the settable clock; expiry has its own tests.
    settings = Settings(
        var_dir=var_dir,
        secret_key=secrets.token_urlsafe(32),
        public_url="http://testserver",
        token_ttl_minutes=60 * 24 * 365,
        bank_notify_secret=BANK_SECRET,
        # argon2 at its production cost takes a quarter of a second per sign-in; tests sign in thousands of times.
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )
    rt = build_runtime(settings, clock=clock, engine=database.engine, store=store, queue=queue)
    rt.run_chronograph = False
    return rt


@pytest.fixture
async def runtime(database: Database, clock: SettableClock, tmp_path: Path) -> AsyncIterator[Any]:
    rt = _runtime(database, clock, tmp_path)
    await rt.store.ensure_ready()
    yield rt
    await rt.queue.close()


class _TheTestsRuntime:
    """Stands for the runtime of the test now running, in the app every test of a worker shares: each
    attribute read goes to that runtime. `create_app` reads the runtime only inside its dependencies and
    request hooks (and `app.state`, set per test), so one app serves test after test."""

    def __init__(self) -> None:
        self.runtime: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["runtime"], name)


class _SharedApp:
    """The app built once per worker: building it (every route's signature model, the OpenAPI plumbing)
    takes longer than most tests. A test that needs a second app at the same time gets a fresh one."""

    def __init__(self) -> None:
        self.app: Any = None
        self.settings: tuple[int, bool] | None = None
        self.stand_in = _TheTestsRuntime()
        self.in_use = False

    def take(self, rt: Any) -> Any:
        from app import create_app

        # what `create_app` reads from the settings when it builds the app (a rehearsal wraps it)
        settings = (rt.settings.max_body_bytes, rt.settings.rehearsal)
        if self.in_use or rt.settings.rehearsal or (self.app is not None and settings != self.settings):
            return None
        if self.app is None:
            self.stand_in.runtime = rt
            self.app = create_app(cast(Any, self.stand_in), manage_runtime=False)
            self.settings = settings
        self.stand_in.runtime = rt
        state = self.app.state
        state.runtime, state.clock, state.sessionmaker, state.settings = (
            rt,
            rt.clock,
            rt.sessionmaker,
            rt.settings,
        )
        self.in_use = True
        return self.app

    def give_back(self) -> None:
        self.stand_in.runtime = None
        self.in_use = False


_shared_app = _SharedApp()


@asynccontextmanager
async def _client(rt: Any) -> AsyncIterator[httpx.AsyncClient]:
    from app import create_app
    from tests.openapi_check import conformance_hook

    # httpx's ASGI transport runs the app on the test's own event loop (Litestar's test client would run it
    # on another thread's loop, where the shared asyncpg pool cannot follow). Every 2xx JSON answer is
    # checked against the schema the OpenAPI document gives its operation.
    shared = _shared_app.take(rt)
    app = shared if shared is not None else create_app(rt, manage_runtime=False)
    transport = httpx.ASGITransport(app=cast(Any, app))
    try:
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://testserver",
            event_hooks={"response": [conformance_hook(app)]},
        ) as client:
            yield client
    finally:
        if shared is not None:
            _shared_app.give_back()


async def _api(rt: Any) -> AsyncIterator[Any]:
    from tests.helpers import Api

    async with _client(rt) as client:
        yield Api(client, rt)


@pytest.fixture
async def api(runtime: Any) -> AsyncIterator[Any]:
    """An HTTP client on the app, with helpers to sign in and drive the clock-bound jobs."""
    async for client in _api(runtime):
        yield client


@pytest.fixture
async def s3_api(
    database: Database, clock: SettableClock, tmp_path: Path, s3_store: Any
) -> AsyncIterator[Any]:
    """The same, with objects on the test SeaweedFS through its S3 API (presigned URLs point there)."""
    rt = _runtime(database, clock, tmp_path, store=s3_store)
    async for client in _api(rt):
        yield client
    await rt.queue.close()


# ---------------------------------------------------------------- worlds that tests only read

T = TypeVar("T")


class World:
    """A state built once per worker and backend (a trade at some stage, say), in a database and runtime of its
    own, for the tests that only read it: each of them ends by checking that nothing of it changed."""

    def __init__(self, key: str, database: Database, api: Any, value: Any, var_dir: Path) -> None:
        self.key = key
        self.database = database
        self.api = api
        self.runtime = api.runtime
        self.value = value
        self.var_dir = var_dir
        self.digest = ""

    async def fingerprint(self) -> str:
        """A digest of every row of every table, of the clock and of the files the runtime keeps."""
        digest = hashlib.sha256()
        async with self.database.engine.connect() as conn:
            for table in metadata.sorted_tables:
                rows = sorted(repr(tuple(row)) for row in await conn.execute(select(table)))
                digest.update(repr((table.name, rows)).encode())
        digest.update(self.runtime.clock.now().isoformat().encode())
        for path in sorted(self.var_dir.rglob("*")):
            if path.is_file():
                digest.update(f"{path.relative_to(self.var_dir)}:{path.read_bytes().hex()}".encode())
        return digest.hexdigest()


_worlds: dict[tuple[str, str], World] = {}
_templates: dict[str, str] = {}


async def _world_database(backend: str, tmp_root: Path) -> Database:
    """A migrated database of its own: a copy of a template migrated once per worker."""
    n = len(_worlds)
    if backend == "sqlite":
        template = tmp_root / "template.db"
        if not template.exists():
            await upgrade_async(f"sqlite+aiosqlite:///{template}")
        path = tmp_root / f"world-{n}.db"
        shutil.copyfile(template, path)
        url = f"sqlite+aiosqlite:///{path}"
    else:
        if backend not in _templates:
            template_url, name = await _postgres_database()
            _drop.append(name)
            await upgrade_async(template_url)  # without a pool: nobody stays connected to the template
            _templates[backend] = name
        url, name = await _postgres_database(template=_templates[backend])
        _drop.append(name)
    engine = create_engine(url)
    if backend == "sqlite":
        _no_fsync(engine)
    return Database(backend, url, engine)


class ReadOnly:
    """The worlds a test reads (`world`), built on the test's backend the first time a test asks for them."""

    def __init__(self, backend: str, tmp_root: Path, clients: AsyncExitStack) -> None:
        self.backend = backend
        self.tmp_root = tmp_root
        self.clients = clients
        self.used: list[World] = []

    async def world(self, key: str, build: Callable[[Any], Awaitable[T]]) -> tuple[Any, T]:
        """The world `key`, built by `build(api)` once per worker and backend: answers its `Api` (a client of
        its own for this test) and what `build` answered."""
        world = _worlds.get((self.backend, key))
        if world is None:
            world = await self._build(key, build)
        if world not in self.used:
            world.api.client = await self.clients.enter_async_context(_client(world.runtime))
            self.used.append(world)
        return world.api, world.value

    async def _build(self, key: str, build: Callable[[Any], Awaitable[Any]]) -> World:
        from tests.helpers import Api

        database = await _world_database(self.backend, self.tmp_root)
        var_dir = self.tmp_root / f"world-{len(_worlds)}"
        var_dir.mkdir()
        clock = SettableClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))  # where the `clock` fixture stands
        rt = _runtime(database, clock, var_dir)
        await rt.store.ensure_ready()
        async with _client(rt) as client:
            api = Api(client, rt)
            value = await build(api)
        world = World(key, database, api, value, var_dir)
        world.digest = await world.fingerprint()
        _worlds[(self.backend, key)] = world
        return world


@pytest.fixture(params=BACKENDS)
async def read_only(request: pytest.FixtureRequest, tmp_root: Path) -> AsyncIterator[ReadOnly]:
    """Worlds built once per worker and backend, for a test that only reads them; after the test, each world
    it read must be exactly as it was built (every row, the clock, the stored files)."""
    if request.param == "postgresql" and not PG_URL:
        unavailable("PostgreSQL", "GGZY_TEST_DATABASE_URL is not set")
    async with AsyncExitStack() as clients:
        read_only = ReadOnly(request.param, tmp_root, clients)
        yield read_only
    for world in read_only.used:
        assert await world.fingerprint() == world.digest, f"a test that only reads {world.key!r} changed it"
