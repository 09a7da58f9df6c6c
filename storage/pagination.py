"""Keyset (cursor) pagination: stable under inserts, no OFFSET scans."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from storage.problems import ValidationProblem, field_error

MAX_LIMIT = 200
# A cursor this server issues is about 90 characters; anything far longer is not one of ours.
MAX_CURSOR_LENGTH = 256


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    """An opaque cursor pointing just past the row (`at`, `row_id`) in descending order."""
    raw = json.dumps([at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (instant, id) a cursor points past; a malformed cursor is a 422 naming `cursor`."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        at, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(at, str) or not isinstance(row_id, str):
            raise TypeError("not a pair of strings")
        instant = datetime.fromisoformat(at)
        if instant.tzinfo is None:
            raise ValueError("naive")
        return instant.astimezone(UTC), uuid.UUID(row_id)
    except (ValueError, TypeError, OverflowError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationProblem(
            "The cursor is not one this server issued.", errors=[field_error("cursor", "malformed cursor")]
        ) from exc


def check_limit(limit: int) -> int:
    """`limit` if it is between 1 and MAX_LIMIT, otherwise a 422 naming `limit`."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationProblem(
            f"limit must be between 1 and {MAX_LIMIT}.",
            errors=[field_error("limit", f"must be between 1 and {MAX_LIMIT}")],
        )
    return limit


def page_after(rows: list[Any], limit: int, at_attr: str) -> tuple[list[Any], str | None]:
    """Split `limit + 1` fetched rows into the page and the cursor for the next page."""
    if len(rows) > limit:
        last = rows[limit - 1]
        return rows[:limit], encode_cursor(getattr(last, at_attr), last.id)
    return rows, None
