"""The migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from storage.migrate import include_for
from storage.models import metadata
from tests.conftest import Database


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": include_for(connection.dialect.name)}
    )
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_models(database: Database) -> None:
    async with database.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []
