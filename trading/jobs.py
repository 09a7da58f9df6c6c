"""Background work of the trading package: the chronograph tick and notifications."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from storage.db import transaction
from storage.jobs import JobContext, job, tick_stages
from storage.objects import ObjectStore
from trading import chronograph, notices

log = logging.getLogger("ggzy.chronograph")


async def chronograph_tick(ctx: JobContext) -> list[tuple[str, str]]:
    """Run every tender transition that is due now (deadline → opening, window end → evaluation, …), each in
    its own transaction, then each stage the other packages registered (`storage.jobs.tick_stage`: deposit
    refunds, the ledger head, evaluation, the audit head, the storage sweep). A stage that fails is logged
    and the next one runs all the same: one bad record stalls neither its neighbours nor the stages after."""
    now = ctx.clock.now()
    done = await chronograph.tick(
        ctx.sessionmaker, now, ctx.extras["signer"], concurrency=ctx.extras["settings"].tick_concurrency
    )
    for code, outcome in done:
        log.info("tender %s → %s", code, outcome)
    for name, stage in tick_stages():
        await _stage(name, stage, ctx)
    return done


async def _stage(name: str, fn: Callable[[JobContext], Awaitable[object]], ctx: JobContext) -> None:
    try:
        await fn(ctx)
    except Exception:
        log.exception("chronograph stage %s failed; the next tick runs it again", name)


@job("trading.notify")
async def notify(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Deliver a notification to every organisation named in the payload."""
    async with transaction(ctx.sessionmaker) as session:
        await notices.deliver_notifications(session, payload, ctx.clock.now())


@job("trading.discard_upload")
async def discard_upload(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Delete an upload once its copy on record is committed, or once nothing will take it (deleting a
    missing object is no error); an open multipart upload of it is aborted."""
    store: ObjectStore = ctx.extras["store"]
    if payload.get("upload_id"):
        await store.abort_multipart(payload["key"], payload["upload_id"])
    await store.delete(payload["key"])
