"""The rehearsal clock's pace, kept in the database so every API process and worker of a rehearsal
deployment (演练模式) runs on the same time.

One row (`rehearsal_clock`, id 1) holds the pace: the real instant it was set, the rehearsal instant at
that moment and the rate. No row means real time. Each process adopts the stored pace before it answers
a request, before each chronograph tick and every second in between, so a change the centre makes
through one process reaches all of them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CheckConstraint, Float, Integer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from storage.clock import REAL_TIME, Clock, Pace, RehearsalClock, SystemClock, ensure_utc
from storage.db import Base, transaction
from storage.problems import ValidationProblem, field_error
from storage.settings import Settings

log = logging.getLogger("ggzy.rehearsal")
ROW_ID = 1
MAX_RATE = 10_000.0  # close to three hours a second: W-01's twenty days in three minutes
MAX_JUMP = timedelta(days=3660)  # ten years ahead at most, so no instant leaves the calendar
REFRESH_SECONDS = 1.0


class RehearsalPace(Base):
    """The rehearsal clock's pace (a single row)."""

    __tablename__ = "rehearsal_clock"
    __table_args__ = (CheckConstraint("rate >= 0", name="rate_not_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    real_anchor: Mapped[datetime]
    rehearsal_anchor: Mapped[datetime]
    rate: Mapped[float] = mapped_column(Float)
    changed_by: Mapped[uuid.UUID | None]


async def load_pace(session: AsyncSession) -> Pace:
    """The stored pace, or real time when none was ever set."""
    row = await session.get(RehearsalPace, ROW_ID)
    if row is None:
        return REAL_TIME
    return Pace(row.real_anchor, row.rehearsal_anchor, row.rate)


async def save_pace(session: AsyncSession, pace: Pace, changed_by: uuid.UUID | None) -> None:
    """Store `pace` for every process (in the caller's transaction)."""
    row = await session.get(RehearsalPace, ROW_ID, with_for_update=True)
    if row is None:
        row = RehearsalPace(id=ROW_ID)
        session.add(row)
    row.real_anchor, row.rehearsal_anchor, row.rate = pace.real, pace.rehearsal, pace.rate
    row.changed_by = changed_by
    await session.flush()


async def refresh(clock: Clock, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Adopt the stored pace, when `clock` is a rehearsal clock."""
    if isinstance(clock, RehearsalClock):
        async with transaction(sessionmaker, read_only=True) as session:
            clock.adopt(await load_pace(session))


async def keep_fresh(
    clock: Clock, sessionmaker: async_sessionmaker[AsyncSession], stop: asyncio.Event
) -> None:
    """Adopt the stored pace every REFRESH_SECONDS until `stop` is set (a failed read is logged)."""
    while not stop.is_set():
        try:
            await refresh(clock, sessionmaker)
        except Exception:
            log.exception("could not read the rehearsal clock's pace")
        try:
            await asyncio.wait_for(stop.wait(), REFRESH_SECONDS)
        except TimeoutError:
            pass


def build_clock(settings: Settings) -> Clock:
    """The deployment's clock: a rehearsal clock under GGZY_REHEARSAL, the real one otherwise."""
    return RehearsalClock() if settings.rehearsal else SystemClock()


async def current_clock(settings: Settings, engine: AsyncEngine) -> Clock:
    """The deployment's clock with the stored pace adopted (for commands that run once, like seeding)."""
    clock = build_clock(settings)
    if isinstance(clock, RehearsalClock):
        async with engine.connect() as connection, AsyncSession(bind=connection) as session:
            clock.adopt(await load_pace(session))
    return clock


HEADER = b"x-ggzy-rehearsal"


class RehearsalMarker:
    """ASGI wrapper of a rehearsal deployment's app: adopts the stored pace before each request (so the
    request, its sign-in and its answer all read the clock the centre set) and marks every answer,
    errors and unknown paths included, `X-GGZY-Rehearsal: 1`."""

    def __init__(self, app: Any, clock: Clock, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.app = app
        self.clock = clock
        self.sessionmaker = sessionmaker

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            await refresh(self.clock, self.sessionmaker)
        except Exception:  # the last pace stands; the request itself will meet the database's trouble
            log.exception("could not read the rehearsal clock's pace")

        async def marked(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, b"1")]}
            await send(message)

        await self.app(scope, receive, marked)


class ChangeRefused(ValidationProblem):
    """The rehearsal clock cannot be set so."""


async def change_pace(
    session: AsyncSession,
    real_now: datetime,
    *,
    to: datetime | None = None,
    advance: timedelta | None = None,
    rate: float | None = None,
    changed_by: uuid.UUID | None = None,
) -> tuple[Pace, Pace]:
    """Set the rehearsal time `to` an instant or `advance` it, and/or its `rate`; return the pace before
    and after. Rehearsal time only moves forward: deadlines that passed stay passed."""
    if to is not None and advance is not None:
        raise ChangeRefused(
            "Give the instant to move to or how far to advance, not both.",
            errors=[field_error("advance_seconds", "not with `at`")],
        )
    if rate is not None and not (math.isfinite(rate) and 0 <= rate <= MAX_RATE):
        raise ChangeRefused(
            f"The rate is how many times faster than real time: from 0 (stand still) to {MAX_RATE:g}.",
            errors=[field_error("rate", f"must be between 0 and {MAX_RATE:g}")],
        )
    if advance is not None and not timedelta(0) <= advance <= MAX_JUMP:
        raise ChangeRefused(
            "The rehearsal clock only moves forward, by ten years at most.",
            errors=[field_error("advance_seconds", f"must be from 0 to {int(MAX_JUMP.total_seconds())}")],
        )
    if to is not None and (to.tzinfo is None or to.utcoffset() is None):
        raise ChangeRefused(
            "An instant needs its time zone (e.g. 2027-03-01T09:00:00+08:00).",
            errors=[field_error("at", "no time zone")],
        )
    await session.get(RehearsalPace, ROW_ID, with_for_update=True)
    before = await load_pace(session)
    now = before.at(real_now)
    if to is not None and ensure_utc(to) < now:
        raise ChangeRefused(
            f"The rehearsal clock only moves forward; it is {now.isoformat()} now.",
            errors=[field_error("at", "before the rehearsal clock's present instant")],
        )
    if to is not None and ensure_utc(to) > now + MAX_JUMP:
        raise ChangeRefused(
            "The rehearsal clock moves ten years ahead at most.",
            errors=[field_error("at", "more than ten years ahead")],
        )
    target = to if to is not None else (now + advance if advance is not None else None)
    after = before.changed(real_now, to=target, rate=rate)
    await save_pace(session, after, changed_by)
    return before, after
