"""The injected clock: the only place in ggzy that reads the wall clock.

Domain code receives a `Clock` and asks it for `now()`, an aware UTC instant. Tests and the demo use a
`SettableClock` so deadlines can be crossed without sleeping. A rehearsal deployment (GGZY_REHEARSAL)
runs on a `RehearsalClock`: real time, offset and accelerated by a `Pace` the centre controls.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Pace:
    """How a rehearsal's time (演练时间) runs against real time: from the instant `real` on, rehearsal time
    starts at `rehearsal` and moves `rate` times as fast (0 stands still, 1 keeps pace, 60 runs an hour a
    minute). Changing the pace re-anchors it at the moment of change, so rehearsal time never jumps back."""

    real: datetime
    rehearsal: datetime
    rate: float = 1.0

    def at(self, real: datetime) -> datetime:
        """The rehearsal instant at the real instant `real`."""
        return self.rehearsal + (ensure_utc(real) - self.real) * self.rate

    def changed(self, real_now: datetime, *, to: datetime | None = None, rate: float | None = None) -> Pace:
        """The pace from `real_now` on: rehearsal time set to `to` (or carried on) at `rate` (or as before)."""
        return Pace(
            real=ensure_utc(real_now),
            rehearsal=ensure_utc(to) if to is not None else self.at(real_now),
            rate=self.rate if rate is None else rate,
        )


REAL_TIME = Pace(datetime(2000, 1, 1, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC), 1.0)


class RehearsalClock:
    """The clock of a rehearsal deployment: real time offset and sped up by a `Pace` that the centre sets
    and every process reads from the database (`storage.rehearsal.refresh`). Thread-safe."""

    def __init__(self, pace: Pace = REAL_TIME, real: Clock | None = None) -> None:
        self._real = real or SystemClock()
        self._pace = pace
        self._lock = threading.Lock()

    @property
    def pace(self) -> Pace:
        with self._lock:
            return self._pace

    def real_now(self) -> datetime:
        """The real instant (what the pace is anchored to)."""
        return self._real.now()

    def now(self) -> datetime:
        """The rehearsal instant now."""
        with self._lock:
            pace = self._pace
        return pace.at(self._real.now())

    def adopt(self, pace: Pace) -> None:
        """Run at `pace` from now on (as stored by whichever process changed it)."""
        with self._lock:
            self._pace = pace
