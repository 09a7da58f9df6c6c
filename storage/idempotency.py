"""Idempotency keys: the same key with the same body returns the first answer; another body is a 409.

The stored answer is written in the same transaction as the effect it answers for, so the two either
both exist or neither does.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, IdMixin
from storage.problems import Conflict, ValidationProblem, field_error

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")


class IdempotencyRecord(IdMixin, Base):
    """The first answer given for a (caller, operation, key)."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    scope: Mapped[str] = mapped_column(String(160))
    key: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    body: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


@dataclass(frozen=True)
class StoredAnswer:
    """An answer to replay."""

    status_code: int
    body: dict[str, Any]


def fingerprint(payload: Any) -> str:
    """A digest of the request that a key is bound to."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def check_key(key: str | None) -> str:
    """The key, or a 422 naming the `Idempotency-Key` header."""
    if key is None or not KEY_PATTERN.match(key):
        raise ValidationProblem(
            "An Idempotency-Key header of 8 to 128 characters [A-Za-z0-9_.:-] is required.",
            errors=[field_error("header:Idempotency-Key", "missing or malformed")],
        )
    return key


async def replay(session: AsyncSession, scope: str, key: str, digest: str) -> StoredAnswer | None:
    """The stored answer for this key, None if it is new, or a 409 when it was used for another body."""
    row = await session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
    )
    if row is None:
        return None
    if row.fingerprint != digest:
        raise Conflict(
            "This Idempotency-Key was already used with a different request body.",
            errors=[field_error("header:Idempotency-Key", "reused with another body")],
        )
    return StoredAnswer(row.status_code, row.body)


async def remember(
    session: AsyncSession,
    scope: str,
    key: str,
    digest: str,
    status_code: int,
    body: dict[str, Any],
    now: datetime,
) -> None:
    """Store the answer; a concurrent request with the same key loses with a 409 and changes nothing."""
    session.add(
        IdempotencyRecord(
            scope=scope, key=key, fingerprint=digest, status_code=status_code, body=body, created_at=now
        )
    )
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("A request with this Idempotency-Key is being processed; retry it.") from exc
