"""The live opening record: the numbered lines of the online opening hall, in order."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bidding.models import (
    OpeningEvent,
)


async def opening_event(
    session: AsyncSession, tender_id: uuid.UUID, kind: str, payload: dict[str, Any], now: datetime
) -> OpeningEvent:
    """Append a line to the tender's live opening record (the caller holds the tender's lock)."""
    seq = (
        await session.scalar(
            select(func.coalesce(func.max(OpeningEvent.seq), 0)).where(OpeningEvent.tender_id == tender_id)
        )
        or 0
    ) + 1
    event = OpeningEvent(tender_id=tender_id, seq=seq, at=now, kind=kind, payload=payload)
    session.add(event)
    await session.flush()
    return event


async def opening_events(session: AsyncSession, tender_id: uuid.UUID, after: int) -> list[OpeningEvent]:
    """The lines of the opening record after number `after`."""
    return list(
        await session.scalars(
            select(OpeningEvent)
            .where(OpeningEvent.tender_id == tender_id, OpeningEvent.seq > after)
            .order_by(OpeningEvent.seq)
            .limit(500)
        )
    )
