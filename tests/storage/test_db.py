"""Units of work: a single read on PostgreSQL skips BEGIN and COMMIT; the pool keeps what it is told to."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import create_engine, transaction
from storage.settings import Settings
from tests.conftest import Database


async def _in_driver_transaction(session: AsyncSession) -> bool:
    """Whether the driver's connection is inside a transaction block right now (after one SELECT)."""
    await session.execute(text("SELECT 1"))
    raw: Any = (await (await session.connection()).get_raw_connection()).driver_connection
    if hasattr(raw, "is_in_transaction"):  # asyncpg
        return bool(raw.is_in_transaction())
    return bool(raw.in_transaction)  # aiosqlite


async def test_a_single_read_runs_outside_a_transaction_block_on_postgresql_only(database: Database) -> None:
    async with transaction(database.sessionmaker, single_read=True) as session:
        inside = await _in_driver_transaction(session)

    assert inside is (database.backend != "postgresql")


async def test_the_connection_of_a_single_read_goes_back_to_transactions_for_the_next_unit(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    for _ in range(3):  # the pool hands the same connection back
        async with transaction(sessionmaker, single_read=True) as session:
            await session.execute(text("SELECT 1"))
        async with transaction(sessionmaker, read_only=True) as session:
            assert await _in_driver_transaction(session)
        async with transaction(sessionmaker) as session:
            assert await _in_driver_transaction(session)


async def test_a_single_read_decodes_json_columns(database: Database) -> None:
    async with transaction(database.sessionmaker, single_read=True) as session:
        value = await session.scalar(text("SELECT CAST('{\"金额\": 123456789012345678901}' AS JSON)"))

    if database.backend == "postgresql":  # SQLite hands JSON back as text without a typed column
        assert value == {"金额": 123456789012345678901}


async def test_the_pool_keeps_as_many_connections_as_configured(database: Database) -> None:
    engine = create_engine(database.url, pool_size=7)
    try:
        assert engine.pool.size() == 7  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


def test_pool_size_is_read_from_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("GGZY_DB_POOL_SIZE", "32")
    monkeypatch.setenv("GGZY_SECRET_KEY", "x" * 64)

    assert Settings.from_env().db_pool_size == 32
    assert Settings().db_pool_size == 20
