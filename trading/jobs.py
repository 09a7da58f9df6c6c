"""Background work of the trading package: the chronograph tick and notifications."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

import escrow.service as escrow
import evaluation.service as evaluation
from accounts import audit
from rules.schedule import working_calendar
from storage import uploads
from storage.db import transaction
from storage.jobs import JobContext, job
from storage.objects import ObjectStore
from trading import chronograph, notices

log = logging.getLogger("ggzy.chronograph")


async def chronograph_tick(ctx: JobContext) -> list[tuple[str, str]]:
    """Run every tender transition that is due now (deadline → opening, window end → evaluation, …), each in
    its own transaction, then the deposit, ledger, evaluation and audit stages. A stage that fails is logged
    and the next one runs all the same: one bad record stalls neither its neighbours nor the stages after."""
    now = ctx.clock.now()
    done = await chronograph.tick(
        ctx.sessionmaker, now, ctx.extras["signer"], concurrency=ctx.extras["settings"].tick_concurrency
    )
    for code, outcome in done:
        log.info("tender %s → %s", code, outcome)
    await _stage("deposit refunds", _flag_overdue, ctx)
    await _stage("ledger head", _seal_ledger_head, ctx)
    await _stage("evaluation", _evaluation, ctx)
    await sign_audit_head(ctx)
    await _stage("storage sweep", uploads.sweep_job, ctx)
    return done


async def _stage(name: str, fn: Callable[[JobContext], Awaitable[object]], ctx: JobContext) -> None:
    try:
        await fn(ctx)
    except Exception:
        log.exception("chronograph stage %s failed; the next tick runs it again", name)


async def _flag_overdue(ctx: JobContext) -> None:
    async with transaction(ctx.sessionmaker) as session:
        # S-01: refunds past their due day are flagged red (once each) for the supervisors
        flagged = await escrow.flag_overdue(session, await working_calendar(session), ctx.clock.now())
    if flagged:
        log.warning("%d deposit refund(s) went overdue (S-01)", flagged)


async def _seal_ledger_head(ctx: JobContext) -> None:
    async with transaction(ctx.sessionmaker) as session:
        # the deposit ledger's head is signed at least hourly, so its age proves the platform is live
        sealed = await escrow.seal_ledger_head(session, ctx.extras["signer"], ctx.clock.now())
    if sealed is not None:
        log.info("ledger head %d signed at entry %d", sealed.sequence, sealed.entries)


async def _evaluation(ctx: JobContext) -> None:
    # unanswered invitations are replaced; rooms open at their time and close at the end of the time box;
    # each draw and each room in a transaction of its own, so a failing one holds up no other
    store = ctx.extras["store"]
    secret = ctx.extras["settings"].secret_key
    now = ctx.clock.now()

    async def draws(session: AsyncSession) -> list[chronograph.Due]:
        return [chronograph.Due(*d) for d in await evaluation.draws_due(session, now)]

    async def rooms(session: AsyncSession) -> list[chronograph.Due]:
        return [chronograph.Due(*r) for r in await evaluation.rooms_due(session, now)]

    expired = await chronograph.run_stage(
        ctx.sessionmaker,
        "invitations",
        draws,
        lambda session, draw_id: evaluation.expire_invitations(session, secret, store, draw_id, now),
        now,
    )
    changed = await chronograph.run_stage(
        ctx.sessionmaker,
        "room",
        rooms,
        lambda session, room_id: evaluation.tick_room(session, store, room_id, now),
        now,
    )
    if expired or changed:
        log.info("evaluation: %d invitation(s) timed out, %d room step(s)", expired, changed)


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
