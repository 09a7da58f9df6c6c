"""The evaluation stage of the chronograph tick: unanswered invitations are replaced, rooms open at their
time and close at the end of their time box."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from evaluation import invitations, rooms
from storage.jobs import JobContext, tick_stage
from trading import chronograph

log = logging.getLogger("ggzy.chronograph")


@tick_stage("evaluation", order=30)
async def evaluation_stage(ctx: JobContext) -> None:
    # unanswered invitations are replaced; rooms open at their time and close at the end of the time box;
    # each draw and each room in a transaction of its own, so a failing one holds up no other
    store = ctx.extras["store"]
    secret = ctx.extras["settings"].secret_key
    now = ctx.clock.now()

    async def draws_due(session: AsyncSession) -> list[chronograph.Due]:
        return [chronograph.Due(*d) for d in await invitations.draws_due(session, now)]

    async def rooms_due(session: AsyncSession) -> list[chronograph.Due]:
        return [chronograph.Due(*r) for r in await rooms.rooms_due(session, now)]

    expired = await chronograph.run_stage(
        ctx.sessionmaker,
        "invitations",
        draws_due,
        lambda session, draw_id: invitations.expire_invitations(session, secret, store, draw_id, now),
        now,
    )
    changed = await chronograph.run_stage(
        ctx.sessionmaker,
        "room",
        rooms_due,
        lambda session, room_id: rooms.tick_room(session, store, room_id, now),
        now,
    )
    if expired or changed:
        log.info("evaluation: %d invitation(s) timed out, %d room step(s)", expired, changed)
