"""Where the sign-in throttle keeps its counts: in Redis when `GGZY_REDIS_URL` is set (shared by every API
process), in the process otherwise (the embedded default runs one).

The arithmetic is `accounts.throttle`; a store only applies a pure update to one key atomically: Redis with
WATCH/MULTI (the update is retried if another process changed the key meanwhile), the process store under
a lock. Instants come from the platform's injected clock and are stored in the value; Redis' own expiry
only collects keys nobody has touched for longer than any policy remembers.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from redis import asyncio as aioredis
from redis.exceptions import RedisError, WatchError

from accounts.throttle import Policy, State, after_failure, retry_after
from storage.problems import ServiceUnavailable
from storage.settings import Settings

Update = Callable[[State], State]
PREFIX = "ggzy:signin:"


class ThrottleStore(Protocol):
    """Per-key throttling state with an atomic read-modify-write."""

    async def update(self, key: str, change: Update, keep_seconds: float) -> tuple[State, State]:
        """Apply `change` to the key's state atomically; answer (before, after)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryThrottleStore:
    """The counts of one process (the embedded default)."""

    def __init__(self) -> None:
        self._states: dict[str, State] = {}
        self._lock = asyncio.Lock()

    async def update(self, key: str, change: Update, keep_seconds: float) -> tuple[State, State]:
        async with self._lock:
            before = self._states.get(key, State())
            after = change(before)
            if after == State():
                self._states.pop(key, None)
            else:
                self._states[key] = after
            return before, after

    async def close(self) -> None:
        self._states.clear()


class RedisThrottleStore:
    """The counts in Redis, shared by every API process. A key is a hash of three fields (failures, last
    failure, end of lockout); an update WATCHes it and writes in MULTI, retrying when another process won."""

    def __init__(self, url: str, *, prefix: str = PREFIX) -> None:
        self._redis: aioredis.Redis = aioredis.Redis.from_url(url, decode_responses=True)
        self._prefix = prefix

    async def update(self, key: str, change: Update, keep_seconds: float) -> tuple[State, State]:
        try:
            return await self._update(key, change, keep_seconds)
        except (RedisError, OSError) as exc:
            # Fail closed: without the shared counts nobody is let through to guess.
            raise ServiceUnavailable(
                "Sign-in is unavailable for a moment (its guard cannot be reached); try again shortly.",
                headers={"Retry-After": "5"},
            ) from exc

    async def _update(self, key: str, change: Update, keep_seconds: float) -> tuple[State, State]:
        name = self._prefix + key
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(name)
                    raw = await pipe.hgetall(name)  # type: ignore[misc]
                    before = _decode(raw)
                    after = change(before)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    if after == State():
                        pipe.delete(name)
                    else:
                        pipe.hset(
                            name,
                            mapping={
                                "failures": after.failures,
                                "last_failure": repr(after.last_failure),
                                "locked_until": repr(after.locked_until),
                            },
                        )
                        pipe.expire(name, max(1, math.ceil(keep_seconds)))
                    await pipe.execute()
                    return before, after
                except WatchError:
                    continue

    async def close(self) -> None:
        await self._redis.aclose()


def _decode(raw: dict[str, str]) -> State:
    if not raw:
        return State()
    return State(int(raw["failures"]), float(raw["last_failure"]), float(raw["locked_until"]))


@dataclass(frozen=True)
class Verdict:
    """The throttle's answer before a password is checked: 0 to go ahead, or the seconds to wait."""

    retry_after: int


class SignInThrottle:
    """Counts failed password checks per account (the username as typed, whether or not it exists, so a
    lockout says nothing about existence) and per client address, and refuses while either is locked."""

    def __init__(self, store: ThrottleStore, *, account: Policy, address: Policy) -> None:
        self.store = store
        self.account_policy = account
        self.address_policy = address

    @staticmethod
    def account_key(username: str) -> str:
        """The account's key: a digest of the case-folded username (no name is written to Redis)."""
        return "account:" + hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:40]

    @staticmethod
    def address_key(address: str | None) -> str:
        return "address:" + (address or "unknown")

    def _keep(self, policy: Policy) -> float:
        return policy.forget + policy.cap

    async def attempt(self, username: str, address: str | None, now: datetime) -> Verdict:
        """Charge one attempt to the account and the address before the password is checked, atomically per
        key; refused (nothing charged) while either is locked. Charging first means parallel attempts cannot
        all slip through before the first failure is counted; a success or a pending answer gives the charge
        back (`succeeded`, `refund`)."""
        at = now.timestamp()
        charged: list[tuple[str, Policy]] = []
        waits = []
        for key, policy in (
            (self.account_key(username), self.account_policy),
            (self.address_key(address), self.address_policy),
        ):
            before, _after = await self.store.update(key, _charge(policy, at), self._keep(policy))
            wait = retry_after(before.current(policy, at), at)
            if wait:
                waits.append(wait)
            else:
                charged.append((key, policy))
        if waits:
            for key, policy in charged:
                await self.store.update(key, _give_back(policy, at), self._keep(policy))
            return Verdict(max(waits))
        return Verdict(0)

    async def succeeded(self, username: str, address: str | None, now: datetime) -> None:
        """The password was right: the account starts again from zero; the address gets its charge back."""
        await self.store.update(
            self.account_key(username), lambda _s: State(), self._keep(self.account_policy)
        )
        at = now.timestamp()
        policy = self.address_policy
        await self.store.update(self.address_key(address), _give_back(policy, at), self._keep(policy))

    async def refund(self, username: str, address: str | None, now: datetime) -> None:
        """Give back the charge of an attempt that was no guess (the right password of an account that may
        not act yet): nothing is reset, so such answers never clear the way for guesses."""
        at = now.timestamp()
        for key, policy in (
            (self.account_key(username), self.account_policy),
            (self.address_key(address), self.address_policy),
        ):
            await self.store.update(key, _give_back(policy, at), self._keep(policy))

    async def close(self) -> None:
        await self.store.close()


def _charge(policy: Policy, at: float) -> Update:
    def change(state: State) -> State:
        current = state.current(policy, at)
        if retry_after(current, at):
            return state
        return after_failure(current, policy, at)

    return change


def _give_back(policy: Policy, at: float) -> Update:
    def change(state: State) -> State:
        current = state.current(policy, at)
        if current.failures == 0:
            return current
        failures = current.failures - 1
        if failures == 0:
            return State()
        locked = current.locked_until if policy.lockout(failures) else 0.0
        return State(failures, current.last_failure, locked)

    return change


def build_throttle(settings: Settings, store: ThrottleStore | None = None) -> SignInThrottle:
    """The throttle the settings describe, on Redis when `GGZY_REDIS_URL` is set (or on `store`)."""
    if store is None:
        store = RedisThrottleStore(settings.redis_url) if settings.redis_url else MemoryThrottleStore()
    base, cap, forget = (
        float(settings.signin_lockout_seconds),
        float(settings.signin_max_lockout_seconds),
        float(settings.signin_forget_seconds),
    )
    return SignInThrottle(
        store,
        account=Policy(settings.signin_free_attempts, base, cap, forget),
        address=Policy(settings.signin_address_free_attempts, base, cap, forget),
    )
