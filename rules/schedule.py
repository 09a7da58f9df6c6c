"""The working calendar as the centre loaded it: the official schedules in the database over the
`holidays` package, read once per change of any schedule."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rules.calendar import OfficialSchedule, WorkingCalendar
from rules.models import CalendarYear
from storage.db import upsert_ignore

_calendar_cache: dict[tuple[tuple[int, str], ...], WorkingCalendar] = {}


async def working_calendar(session: AsyncSession) -> WorkingCalendar:
    """The calendar with every official schedule the centre has loaded."""
    rows = list(await session.scalars(select(CalendarYear).order_by(CalendarYear.year)))
    key = tuple((r.year, r.loaded_at.isoformat()) for r in rows)
    cal = _calendar_cache.get(key)
    if cal is None:
        cal = WorkingCalendar([OfficialSchedule.from_dict(r.schedule) for r in rows])
        _calendar_cache.clear()
        _calendar_cache[key] = cal
    return cal


async def store_schedule(session: AsyncSession, schedule: OfficialSchedule, now: datetime) -> None:
    """Load (or replace) one year's schedule; the caller has checked it and records who loaded it."""
    await session.execute(
        upsert_ignore(
            session, CalendarYear, {"year": schedule.year, "schedule": schedule.to_dict(), "loaded_at": now}
        )
    )
    row = await session.get(CalendarYear, schedule.year, with_for_update=True, populate_existing=True)
    assert row is not None
    row.schedule = dict(schedule.to_dict())
    row.loaded_at = now
