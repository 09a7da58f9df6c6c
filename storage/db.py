"""Database engine, sessions and the declarative base shared by every package's tables.

One engine per process; one transaction per use case. The request (or the job) owns the transaction:
services flush but never commit. SQLite runs every transaction as `BEGIN IMMEDIATE`, so writers are
serialised up front instead of failing on a lock upgrade; PostgreSQL uses row locks where it matters.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

import msgspec
from sqlalchemy import JSON, BigInteger, DateTime, MetaData, TypeDecorator, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import NullPool

READ_ONLY = "ggzy_read_only"
# A route handler's `opt` key: its request reads with one SELECT and writes nothing (see `transaction`).
SINGLE_READ = "ggzy_single_read"
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC instant (`timestamptz` on PostgreSQL); naive values are refused on the way in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")
Fen = BigInteger


class Base(DeclarativeBase):
    """Declarative base for every table in ggzy."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}


def new_id() -> uuid.UUID:
    """A fresh random identifier for a row."""
    return uuid.uuid4()


class IdMixin:
    """A UUID primary key."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


def create_engine(
    url: str, *, pool: bool = True, foreign_keys: bool = True, pool_size: int | None = None
) -> AsyncEngine:
    """Create the async engine for `url`, with SQLite configured for safe concurrent writers.
    `foreign_keys=False` is for migrations only: SQLite rebuilds a table to alter it (copy, drop, rename),
    and dropping a table other rows refer to fails while foreign keys are enforced; the migration checks
    them all once it is done (storage/migrations/env.py).

    `pool_size` connections are kept open between requests. A server must keep as many as it serves
    requests at once: a connection beyond the pool is opened for one request and closed after it, and on
    PostgreSQL opening one (a TCP connection, TLS negotiation, authentication) costs more than the
    request's own query."""
    # JSON columns (a notice's body, a manifest) are decoded on every read of them: msgspec does it
    # several times faster than the standard library, into the same dicts, lists, numbers and strings.
    kwargs: dict[str, Any] = {"json_deserializer": msgspec.json.decode}
    if not pool:
        kwargs["poolclass"] = NullPool
    elif pool_size is not None:
        kwargs["pool_size"] = pool_size
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, foreign_keys)
    return engine


def _configure_sqlite(engine: AsyncEngine, foreign_keys: bool) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN IMMEDIATE can be issued below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Readers take no lock up front, so they never queue behind writers (WAL keeps their snapshot).
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


@asynccontextmanager
async def one_transaction(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions that are savepoints of one database transaction, committed when the block ends and
    rolled back if it raises (or never committed if the process dies): all of it, or none of it.

    Each session's commit releases its savepoint and its rollback undoes only its own work, so use cases
    written for a transaction each run unchanged. Until the end nothing is visible to other connections
    (a chronograph elsewhere cannot move what is being written), and rows they would lock wait for it.
    Savepoints nest but cannot interleave: the sessions must run one after another (or one inside
    another), never side by side in concurrent tasks; run jobs with a `SequentialJobQueue`.
    """
    async with engine.connect() as connection, connection.begin():
        yield async_sessionmaker(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False, autoflush=True
        )


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession], *, read_only: bool = False, single_read: bool = False
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any exception. A `read_only` one takes no write
    lock on SQLite; it must not write. A read unit says so in `session.info[READ_ONLY]`, for readers that
    may answer from a cache (a unit that writes must see its own rows).

    A `single_read` unit runs one SELECT and nothing else. On PostgreSQL it runs without BEGIN and COMMIT:
    one statement is atomic by itself, and at READ COMMITTED a transaction would give it no other
    snapshot, so the two round trips would be pure cost (on the public board, a fifth of a request). It
    takes its connection only when it first reads, so a request answered from a cache takes none. A
    session bound to a connection already in a transaction (`one_transaction`) reads inside it."""
    bind = sessionmaker.kw.get("bind")
    if single_read and isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql":
        async with sessionmaker(bind=_autocommit(sessionmaker, bind)) as session, session.begin():
            session.info[READ_ONLY] = True
            yield session
        return
    async with sessionmaker() as session, session.begin():
        if read_only or single_read:
            session.info[READ_ONLY] = True
            await session.connection(execution_options={READ_ONLY: True})
        yield session


# Each sessionmaker's engine in AUTOCOMMIT, made once: making one registers an event listener on it, and
# doing that per request cost more than the request's query.
_AUTOCOMMIT: WeakKeyDictionary[async_sessionmaker[AsyncSession], AsyncEngine] = WeakKeyDictionary()


def _autocommit(sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine) -> AsyncEngine:
    autocommit = _AUTOCOMMIT.get(sessionmaker)
    if autocommit is None:
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT", **{READ_ONLY: True})
        _AUTOCOMMIT[sessionmaker] = autocommit
    return autocommit


def upsert_ignore(session: AsyncSession | Session, table: Any, values: dict[str, Any]) -> Any:
    """`INSERT … ON CONFLICT DO NOTHING` for the session's dialect (PostgreSQL or SQLite)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).values(**values).on_conflict_do_nothing()


@asynccontextmanager
async def scratch_database(
    admin_url: str, prefix: str, on_created: Callable[[str], object] | None = None
) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database beside `admin_url` (for benchmarks), dropped afterwards;
    `on_created` hears its name."""
    import secrets

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, pool=False)
    try:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        if on_created is not None:
            on_created(name)
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
