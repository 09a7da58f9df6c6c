"""Collusion signals (W-18): found at the opening from the opened bids, or outside it (deposits paid from one account), kept for the evaluators and supervisors."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding import collusion
from bidding.models import (
    CollusionSignal,
)
from trading.tenders import load_tender


async def record_signals(
    session: AsyncSession, tender_id: uuid.UUID, evidence: Sequence[collusion.BidEvidence], now: datetime
) -> list[CollusionSignal]:
    """Compute the W-18 signals of the opened bids and keep them for evaluators and supervisors."""
    rows = []
    for signal in collusion.signals(evidence):
        row = CollusionSignal(
            tender_id=tender_id,
            kind=signal.kind,
            rule=signal.rule,
            bidders=list(signal.bidders),
            bids=list(signal.bids),
            evidence=signal.evidence,
            value=signal.value[:300],
            found_at=now,
        )
        session.add(row)
        rows.append(row)
    await session.flush()
    return rows


async def record_signal(
    session: AsyncSession,
    tender_id: uuid.UUID,
    *,
    kind: str,
    bidders: Sequence[str],
    evidence: str,
    value: str,
    now: datetime,
) -> CollusionSignal:
    """Keep one W-18 signal found outside the opening (e.g. deposits paid from one account), once: the
    same kind, value and bidders are not recorded twice. The tender's row is locked first, so two jobs
    finding the same signal at once record it once."""
    await load_tender(session, tender_id, lock=True)
    bidders = sorted(bidders)
    for row in await session.scalars(
        select(CollusionSignal).where(
            CollusionSignal.tender_id == tender_id,
            CollusionSignal.kind == kind,
            CollusionSignal.value == value[:300],
        )
    ):
        if sorted(row.bidders) == bidders:
            return row
    row = CollusionSignal(
        tender_id=tender_id,
        kind=kind,
        rule="W-18",
        bidders=bidders,
        bids=[],
        evidence=evidence,
        value=value[:300],
        found_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def signals_of(session: AsyncSession, tender_id: uuid.UUID) -> list[CollusionSignal]:
    """A tender's W-18 signals, as found at the opening."""
    return list(
        await session.scalars(
            select(CollusionSignal)
            .where(CollusionSignal.tender_id == tender_id)
            .order_by(CollusionSignal.kind, CollusionSignal.value)
        )
    )
