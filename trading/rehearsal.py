"""HTTP routes of the clock: what time the platform runs on (everyone), and, in a rehearsal deployment
(演练模式, GGZY_REHEARSAL), the centre setting that time forward or its pace, so a whole trade runs in an
afternoon instead of waiting weeks for W-01 and the other periods."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import msgspec
from litestar import Controller, get, put
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.guards import public, requires
from accounts.security import Principal
from storage import rehearsal
from storage.clock import Clock, RehearsalClock
from storage.problems import Conflict
from storage.settings import Settings

CENTRE = requires("centre")


class ClockRead(msgspec.Struct):
    """The platform's time. In a rehearsal `rehearsal` is true, `now` runs `rate` times as fast as
    `real_now` and `offset_seconds` says how far ahead it is."""

    rehearsal: bool
    now: datetime
    real_now: datetime
    rate: float
    offset_seconds: float


MAX_ADVANCE_SECONDS = int(rehearsal.MAX_JUMP.total_seconds())


class ClockChange(msgspec.Struct, forbid_unknown_fields=True):
    """Move the rehearsal time to `at` or ahead by `advance_seconds` (never back), and/or set `rate`."""

    at: datetime | None = None
    # gt=-1, not ge=0: the OpenAPI schema would leave a zero minimum out
    advance_seconds: Annotated[int, msgspec.Meta(gt=-1, le=MAX_ADVANCE_SECONDS)] | None = None
    rate: float | None = None


def clock_read(settings: Settings, clock: Clock) -> ClockRead:
    """What `GET /api/v1/clock` answers."""
    if isinstance(clock, RehearsalClock):
        real_now = clock.real_now()
        pace = clock.pace
        now = pace.at(real_now)
        return ClockRead(settings.rehearsal, now, real_now, pace.rate, (now - real_now).total_seconds())
    now = clock.now()
    return ClockRead(settings.rehearsal, now, now, 1.0, 0.0)


class NotRehearsal(Conflict):
    """This deployment runs on real time."""


class ClockController(Controller):
    path = "/api/v1"
    tags = ["clock"]

    @get("/clock", operation_id="get_clock", guards=[public])
    async def get_clock(self, settings: Settings, clock: Clock) -> ClockRead:
        """The platform's time now, and whether it is a rehearsal's."""
        return clock_read(settings, clock)

    @put("/rehearsal/clock", operation_id="set_rehearsal_clock", guards=[CENTRE])
    async def set_rehearsal_clock(
        self, data: ClockChange, session: AsyncSession, settings: Settings, clock: Clock, principal: Principal
    ) -> ClockRead:
        """The centre moves the rehearsal time forward and/or sets its pace (rehearsal deployments only)."""
        if not settings.rehearsal or not isinstance(clock, RehearsalClock):
            raise NotRehearsal(
                "This deployment runs on real time; only a rehearsal (GGZY_REHEARSAL) has a clock to set."
            )
        real_now = clock.real_now()
        advance = timedelta(seconds=data.advance_seconds) if data.advance_seconds is not None else None
        before, after = await rehearsal.change_pace(
            session, real_now, to=data.at, advance=advance, rate=data.rate, changed_by=principal.user_id
        )
        await accounts.record(
            session,
            principal,
            "rehearsal.clock",
            "rehearsal_clock",
            rehearsal.ROW_ID,
            after.at(real_now),
            before=before.at(real_now).isoformat(),
            rate_before=f"{before.rate:g}",
            after=after.at(real_now).isoformat(),
            rate=f"{after.rate:g}",
        )
        clock.adopt(after)
        return clock_read(settings, clock)
