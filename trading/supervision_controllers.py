"""HTTP routes of the trade's supervision lights (S-01): every open step of every trade for the centre,
supervisors, auditors and regulators, and one trade's steps for its agency too."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import authenticated, requires
from accounts.security import Principal
from rules.calendar import local_date
from rules.lights import Light
from rules.schedule import working_calendar
from storage.clock import Clock
from storage.problems import NotFound
from trading import deadlines, schemas
from trading.tenders import load_tender, oversees

WATCHERS = ("auditor", "centre", "supervisor", "regulator")
LIGHTS = requires(*WATCHERS)  # S-01: regulators see the lights too


def deadline_read(d: deadlines.Deadline) -> schemas.DeadlineRead:
    t = d.tender
    return schemas.DeadlineRead(
        tender_id=t.id,
        tender_code=t.code,
        title=t.title,
        sector=t.sector,
        method=t.method,
        status=t.status,
        step=d.step,
        subject_id=d.subject_id,
        what=d.what,
        by=d.by,
        due=d.due,
        rule=d.rule,
        light=d.light.value,
    )


class DeadlineController(Controller):
    """The due days and lights of the trades' open steps."""

    path = "/api/v1"
    tags = ["supervision"]

    @get("/supervision/deadlines", operation_id="list_trade_deadlines", guards=[LIGHTS])
    async def all_deadlines(
        self,
        session: AsyncSession,
        clock: Clock,
        light: Annotated[Literal["green", "yellow", "red"] | None, Parameter(query="light")] = None,
    ) -> list[schemas.DeadlineRead]:
        """Every open step of every trade (decisions, contracts, answers, complaint decisions) with its due
        day, rule and light, red first; `light` keeps one colour."""
        cal = await working_calendar(session)
        wanted = Light(light) if light else None
        found = await deadlines.live_deadlines(session, cal, local_date(clock.now()), wanted)
        return [deadline_read(d) for d in found]

    @get("/tenders/{tender_id:uuid}/deadlines", operation_id="list_tender_deadlines", guards=[authenticated])
    async def tender_deadlines(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> list[schemas.DeadlineRead]:
        """One trade's open steps with their due days and lights, for its agency and those who watch."""
        tender = await load_tender(session, tender_id)
        if not (oversees(principal, tender) or principal.has("regulator")):
            raise NotFound("No such tender.")
        cal = await working_calendar(session)
        found = await deadlines.trade_deadlines(session, tender, cal, local_date(clock.now()))
        return [deadline_read(d) for d in found]
