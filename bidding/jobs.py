"""Background work of the bidding package: decrypting an envelope whose file key was revealed, and keeping
a W-18 signal that a package below bidding found (deposits of different bidders paid from one account).

The envelope job keeps the name it was first queued under, so outbox rows written before it moved here
still run."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from bidding import envelopes, opening, signals, technical
from storage.db import transaction
from storage.jobs import JobContext, job
from storage.objects import ObjectStore

log = logging.getLogger("ggzy.bidding")


@job("trading.open_envelope")
async def open_envelope(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Decrypt an envelope whose file key was revealed (by its bidder or t custodians) and record it; a
    technical envelope (`kind` "technical", 双信封) likewise."""
    store: ObjectStore = ctx.extras["store"]
    bid_id = uuid.UUID(payload["bid_id"])
    if payload.get("kind") == "technical":
        await _open_technical(ctx, store, bid_id)
        return
    # Decrypting a large envelope takes a while: it runs between two short transactions, so no lock
    # (SQLite's writer lock included) is held meanwhile.
    async with transaction(ctx.sessionmaker, read_only=True) as session:
        todo = await opening.envelope_to_open(session, bid_id)
    if todo is None:
        return
    opened = await envelopes.open_job(store, todo)
    async with transaction(ctx.sessionmaker) as session:
        outcome = await opening.record_opening(session, bid_id, opened, ctx.clock.now())
    log.info("envelope of bid %s → %s", payload["bid_id"], outcome)


async def _open_technical(ctx: JobContext, store: ObjectStore, bid_id: uuid.UUID) -> None:
    """The technical envelope of a bid of two (双信封), decrypted and recorded the same way."""
    async with transaction(ctx.sessionmaker, read_only=True) as session:
        todo = await technical.technical_to_open(session, bid_id)
    if todo is None:
        return
    opened = await envelopes.open_job(store, todo)
    async with transaction(ctx.sessionmaker) as session:
        outcome = await technical.record_technical(session, bid_id, opened, ctx.clock.now())
    log.info("technical envelope of bid %s → %s", bid_id, outcome)


@job("bidding.record_signal")
async def record_signal(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Keep a W-18 signal found outside the opening (escrow's deposits paid from one account), once."""
    async with transaction(ctx.sessionmaker) as session:
        await signals.record_signal(
            session,
            uuid.UUID(payload["tender_id"]),
            kind=payload["kind"],
            bidders=payload["bidders"],
            evidence=payload["evidence"],
            value=payload["value"],
            now=datetime.fromisoformat(payload["found_at"]),
        )
