"""The transactional outbox: effects (jobs, notifications) are written in the use case's transaction
and dispatched only after it commits, so a crash can neither lose nor invent an effect.

A row is the durable record of its job until the job is done: `pending` (waiting for `available_at`, or
handed to a queue until the lease in `available_at` runs out), `done`, or `dead` (it kept failing for the
whole retry horizon and waits in the dead-letter list for someone to retry it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import Index, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, IdMixin

PENDING: Final = "pending"
DONE: Final = "done"
DEAD: Final = "dead"


class OutboxMessage(IdMixin, Base):
    """A job to run once the transaction that wrote it has committed, and what became of it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "available_at"),)

    job: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    available_at: Mapped[datetime]
    """When the row is next due: first run, next retry, or the end of the current delivery's lease."""
    dispatched_at: Mapped[datetime | None]
    """When the current delivery was handed to a queue; empty while the row waits to be handed over."""
    attempts: Mapped[int] = mapped_column(default=0)
    """Failed deliveries so far (refused by the queue, failed, or no outcome within the lease)."""
    last_error: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(10), default=PENDING, server_default=PENDING)
    failing_since: Mapped[datetime | None]
    """The first failure of the current run of failures; the retry horizon counts from it."""
    completed_at: Mapped[datetime | None]
    dead_at: Mapped[datetime | None]


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
        job=job,
        payload=payload,
        created_at=now,
        available_at=available_at or now,
        dispatched_at=None,
        status=PENDING,
    )
    session.add(message)
    return message
