"""Running Alembic migrations from code (`ggzy db upgrade`, the tests, the demo)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def include_for(dialect: str) -> Callable[..., bool]:
    """An Alembic `include_object` that leaves out what the models create only on another dialect
    (`Index(...).ddl_if(dialect=…)`), which autogenerate does not know to skip by itself."""

    def include(obj: Any, _name: str | None, type_: str, reflected: bool, _compare_to: Any) -> bool:
        condition = getattr(obj, "_ddl_if", None)
        if type_ == "index" and not reflected and condition is not None and condition.dialect:
            return bool(condition.dialect == dialect)
        return True

    return include


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and `url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (blocking; call from a thread inside a loop)."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """`upgrade` without blocking the event loop."""
    await asyncio.to_thread(upgrade, url, revision)


def revision(url: str, message: str) -> None:
    """Autogenerate a new revision from the models against the database at `url`."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
