"""Sign-in throttling arithmetic: how many failed password checks a key (an account, a client address) may
have before it is locked, and for how long. Pure: no web framework, no database, no clock of its own.

A key's state is its count of failures and the instant its lockout ends. The first `free` failures cost
nothing; the failure that reaches `free` locks the key for `base`, and each further failure doubles the
lockout, up to `cap` (60 s, 120 s, 240 s … 15 min with the defaults). A key that has not failed for
`forget` starts again from zero. Attempts refused while locked are not checked and do not count, so a
lockout cannot be stretched forever by hammering, and a success resets the account (never the address:
one good account behind an address must not clear the way for guesses at others).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    """The limits of one kind of key. Durations in seconds."""

    free: int
    base: float
    cap: float
    forget: float

    def __post_init__(self) -> None:
        if self.free < 1 or self.base <= 0 or self.cap < self.base or self.forget <= 0:
            raise ValueError(f"an unusable throttling policy: {self}")

    def lockout(self, failures: int) -> float:
        """How long a key with `failures` failures is locked for (0: not locked)."""
        if failures < self.free:
            return 0.0
        return float(min(self.cap, self.base * 2.0 ** min(failures - self.free, 62)))


@dataclass(frozen=True)
class State:
    """What is kept per key: failures so far, the last one's instant and the end of the lockout (Unix
    seconds on the platform's clock)."""

    failures: int = 0
    last_failure: float = 0.0
    locked_until: float = 0.0

    def current(self, policy: Policy, now: float) -> State:
        """The state as it stands at `now`: forgotten once `forget` has passed since the last failure."""
        if self.failures and now - self.last_failure >= policy.forget and now >= self.locked_until:
            return State()
        return self


def retry_after(state: State, now: float) -> int:
    """Whole seconds until the key may try again (0: it may now)."""
    return max(0, math.ceil(state.locked_until - now)) if state.locked_until > now else 0


def after_failure(state: State, policy: Policy, now: float) -> State:
    """The state after one more failed password check at `now` (made while not locked)."""
    failures = state.current(policy, now).failures + 1
    lockout = policy.lockout(failures)
    return State(failures, now, now + lockout if lockout else 0.0)
