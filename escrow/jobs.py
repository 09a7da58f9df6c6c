"""The deposit ledger's stages of the chronograph tick: refunds past due are flagged, the ledger head is
signed."""

from __future__ import annotations

import logging

from escrow import published, refunds
from rules.schedule import working_calendar
from storage.db import transaction
from storage.jobs import JobContext, tick_stage

log = logging.getLogger("ggzy.chronograph")


@tick_stage("deposit refunds", order=10)
async def flag_overdue(ctx: JobContext) -> None:
    async with transaction(ctx.sessionmaker) as session:
        # S-01: refunds past their due day are flagged red (once each) for the supervisors
        flagged = await refunds.flag_overdue(session, await working_calendar(session), ctx.clock.now())
    if flagged:
        log.warning("%d deposit refund(s) went overdue (S-01)", flagged)


@tick_stage("ledger head", order=20)
async def seal_ledger_head(ctx: JobContext) -> None:
    async with transaction(ctx.sessionmaker) as session:
        # the deposit ledger's head is signed at least hourly, so its age proves the platform is live
        sealed = await published.seal_hourly(session, ctx.extras["signer"], ctx.clock.now())
    if sealed is not None:
        log.info("ledger head %d signed at entry %d", sealed.sequence, sealed.entries)
