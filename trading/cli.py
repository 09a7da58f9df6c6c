"""`ggzy calendar`: the trading package's sub-commands, on the working-day calendar."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path
from typing import Any

import click
import msgspec

import storage.models  # noqa: F401 - every table, so the mapper resolves foreign keys across packages
from rules.calendar import ScheduleDict
from rules.schedule import working_calendar
from storage.clock import SystemClock
from storage.db import create_engine, create_sessionmaker, transaction
from storage.problems import Problem
from storage.settings import Settings
from trading import schemas, tenders


@click.group("calendar")
def calendar_group() -> None:
    """The working-day calendar: official holidays and make-up working days (调休)."""


async def _with_session(fn: Any) -> Any:
    settings = Settings.from_env()
    engine = create_engine(settings.effective_database_url)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            return await fn(session)
    finally:
        await engine.dispose()


@calendar_group.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def calendar_load(path: Path) -> None:
    """Load a year's official schedule from a JSON file:
    {"year": 2027, "holidays": ["2027-01-01", …], "makeup_workdays": ["2027-02-07", …]}."""
    try:
        data = msgspec.json.decode(path.read_bytes(), type=schemas.ScheduleIn)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise click.ClickException(f"{path}: {exc}") from exc

    async def load(session: Any) -> ScheduleDict:
        return (await tenders.load_schedule(session, None, data, SystemClock().now())).to_dict()

    try:
        loaded = asyncio.run(_with_session(load))
    except Problem as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(
        f"loaded {loaded['year']}: {len(loaded['holidays'])} holidays, "
        f"{len(loaded['makeup_workdays'])} make-up working days"
    )


@calendar_group.command("show")
@click.argument("year", type=int)
def calendar_show(year: int) -> None:
    """Print the year's rest days and make-up working days as the platform counts them (JSON)."""

    async def show(session: Any) -> dict[str, Any]:
        cal = await working_calendar(session)
        schedule: dict[str, Any] = dict(cal.schedule(year).to_dict())
        schedule["source"] = "loaded" if year in cal.loaded_years else "holidays package"
        schedule["working_days"] = sum(
            1
            for n in range((date(year + 1, 1, 1) - date(year, 1, 1)).days)
            if cal.is_working_day(date.fromordinal(date(year, 1, 1).toordinal() + n))
        )
        return schedule

    click.echo(json.dumps(asyncio.run(_with_session(show)), ensure_ascii=False, indent=2))
