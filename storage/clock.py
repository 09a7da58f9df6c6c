"""The injected clock: the only place in ggzy that reads the wall clock.

Domain code receives a `Clock` and asks it for `now()`, an aware UTC instant. Tests and the demo use a
`SettableClock` so deadlines can be crossed without sleeping.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Something that tells the current instant as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current instant in UTC."""
        return datetime.now(UTC)


class SettableClock:
    """A clock that stands still until told to move; thread-safe."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the instant the clock was last set to."""
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> None:
        """Move the clock to `instant` (forward or back)."""
        with self._lock:
            self._now = ensure_utc(instant)

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by `delta` and return the new instant."""
        with self._lock:
            self._now = self._now + delta
            return self._now


def ensure_utc(instant: datetime) -> datetime:
    """Return `instant` in UTC; naive datetimes are refused because their zone is unknown."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("naive datetime: instants must carry a time zone")
    return instant.astimezone(UTC)
