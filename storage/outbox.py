"""The transactional outbox: effects (jobs, notifications) are written in the use case's transaction
and dispatched only after it commits, so a crash can neither lose nor invent an effect."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, IdMixin


class OutboxMessage(IdMixin, Base):
    """A job to run once the transaction that wrote it has committed."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "dispatched_at", "available_at"),)

    job: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    available_at: Mapped[datetime]
    dispatched_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))


def enqueue(
    session: AsyncSession,
    job: str,
    payload: dict[str, Any],
    now: datetime,
    *,
    available_at: datetime | None = None,
) -> OutboxMessage:
    """Write a job into the outbox in the caller's transaction; it runs after commit."""
    message = OutboxMessage(
        job=job, payload=payload, created_at=now, available_at=available_at or now, dispatched_at=None
    )
    session.add(message)
    return message
