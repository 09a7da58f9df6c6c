"""The archive stage of the chronograph tick: every tender that has ended and has no archive gets one (G-09),
each in a transaction of its own, so one that fails is retried with backoff and holds up no other."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from archive import assemble
from storage.jobs import JobContext, tick_stage
from trading import chronograph

log = logging.getLogger("ggzy.chronograph")


@tick_stage("archive", order=35)
async def archive_stage(ctx: JobContext) -> None:
    store = ctx.extras["store"]
    signer = ctx.extras["signer"]
    now = ctx.clock.now()

    async def due(session: AsyncSession) -> list[chronograph.Due]:
        return [chronograph.Due(t, t, status) for t, status in await assemble.unarchived(session)]

    made = await chronograph.run_stage(
        ctx.sessionmaker,
        "archive",
        due,
        lambda session, tender_id: assemble.archive_tender(session, store, signer, tender_id, now),
        now,
    )
    if made:
        log.info("archive: %d tender(s) archived", made)
