"""The audit trail's stage of the chronograph tick: its head is signed when due (E-04)."""

from __future__ import annotations

import logging
from datetime import timedelta

from accounts import audit
from storage.db import transaction
from storage.jobs import JobContext, tick_stage

log = logging.getLogger("ggzy.chronograph")


@tick_stage("audit head", order=40)
async def sign_audit_head(ctx: JobContext) -> None:
    """E-04: sign the audit trail's head whenever it has moved and the newest head is
    GGZY_AUDIT_HEAD_MINUTES old. A trail that no longer extends its last signed head is not signed over;
    that is logged as an error on every tick until someone looks (GET /api/v1/audit/verify)."""
    interval = timedelta(minutes=ctx.extras["settings"].audit_head_minutes)
    try:
        async with transaction(ctx.sessionmaker) as session:
            signed = await audit.sign_if_due(session, ctx.extras["signer"], ctx.clock.now(), interval)
    except audit.ChainBroken as exc:
        log.error(
            "the audit trail does not extend its last signed head: %s", "; ".join(exc.extra["offenders"])
        )
        return
    if signed is not None:
        log.info("audit trail head signed at %d: %s", signed.head.sequence, signed.head.chain_hash)
