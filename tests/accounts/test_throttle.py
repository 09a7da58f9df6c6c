"""The sign-in throttle: its arithmetic (pure, with properties), its stores (in the process and in Redis,
shared by every API process) and two API processes counting one account's failures together."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.signin import MemoryThrottleStore, RedisThrottleStore, SignInThrottle, build_throttle
from accounts.throttle import Policy, State, after_failure, retry_after
from app import create_app
from storage.clock import SettableClock
from tests.conftest import Database, _runtime
from tests.helpers import PASSWORD, Api

POLICY = Policy(free=5, base=60, cap=900, forget=3600)
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def failures(n: int, *, policy: Policy = POLICY, start: float = 0.0, step: float = 0.0) -> State:
    state = State()
    for i in range(n):
        state = after_failure(state, policy, start + i * step)
    return state


# ---------------------------------------------------------------- the arithmetic


def test_the_first_free_failures_lock_nothing() -> None:
    assert retry_after(failures(4), 0.0) == 0
    assert retry_after(failures(5), 0.0) == 60


def test_lockouts_double_up_to_the_cap() -> None:
    assert [POLICY.lockout(n) for n in range(4, 12)] == [0, 60, 120, 240, 480, 900, 900, 900]


def test_a_key_is_forgotten_an_hour_after_its_last_failure_once_unlocked() -> None:
    state = failures(5)
    assert state.current(POLICY, 3599.0).failures == 5
    assert state.current(POLICY, 3600.0) == State()


def test_a_long_lockout_is_not_forgotten_before_it_ends() -> None:
    policy = Policy(free=1, base=60, cap=7200, forget=60)
    state = failures(7, policy=policy)  # locked for 64 minutes
    assert state.current(policy, 3000.0) == state
    assert retry_after(state, 3000.0) == 3840 - 3000


def test_retry_after_is_rounded_up_to_whole_seconds() -> None:
    assert retry_after(State(5, 0.0, 60.0), 59.1) == 1
    assert retry_after(State(5, 0.0, 60.0), 60.0) == 0


@pytest.mark.parametrize("bad", [dict(free=0), dict(base=0), dict(cap=10), dict(forget=0)])
def test_an_unusable_policy_is_refused(bad: dict[str, float]) -> None:
    values: dict[str, Any] = {"free": 5, "base": 60.0, "cap": 900.0, "forget": 3600.0, **bad}
    with pytest.raises(ValueError, match="unusable"):
        Policy(**values)


@given(st.lists(st.floats(min_value=0, max_value=10_000), min_size=1, max_size=40))
def test_the_lockout_never_exceeds_the_cap_nor_shrinks_while_failures_grow(gaps: list[float]) -> None:
    state, at, previous = State(), 0.0, 0.0
    for gap in gaps:
        at += gap
        current = state.current(POLICY, at)
        state = after_failure(current, POLICY, at)
        # the lockout the state was given, not `locked_until - at`, whose float rounding is the test's own
        lock = POLICY.lockout(state.failures)
        assert state.locked_until == (at + lock if lock else 0.0)
        assert 0.0 <= lock <= POLICY.cap
        if current.failures:  # not forgotten: one more failure never locks for less
            assert lock >= previous
        previous = lock


# ---------------------------------------------------------------- the stores


async def _charge_many(throttle: SignInThrottle, n: int) -> list[int]:
    answers = await asyncio.gather(*(throttle.attempt("someone", "203.0.113.9", NOW) for _ in range(n)))
    return [a.retry_after for a in answers]


async def test_parallel_attempts_cannot_all_slip_through_before_a_failure_is_counted() -> None:
    throttle = SignInThrottle(MemoryThrottleStore(), account=POLICY, address=Policy(100, 60, 900, 3600))
    answers = await _charge_many(throttle, 20)
    assert answers.count(0) == 5  # five charged and let through, the rest refused
    assert sorted(set(answers)) == [0, 60]


async def test_redis_counts_are_shared_and_charged_atomically_by_two_stores(redis_url: str) -> None:
    prefix = f"ggzy:test:{secrets.token_hex(6)}:"
    stores = [RedisThrottleStore(redis_url, prefix=prefix) for _ in range(2)]
    throttles = [SignInThrottle(s, account=POLICY, address=Policy(100, 60, 900, 3600)) for s in stores]
    try:
        answers = await asyncio.gather(*(_charge_many(t, 10) for t in throttles))
        flat = answers[0] + answers[1]
        assert flat.count(0) == 5 and flat.count(60) == 15
        await throttles[1].succeeded("someone", "203.0.113.9", NOW)
        assert (await throttles[0].attempt("someone", "203.0.113.9", NOW)).retry_after == 0
    finally:
        for store in stores:
            await store._redis.delete(*[k async for k in store._redis.scan_iter(prefix + "*")] or ["-"])
            await store.close()


async def test_redis_keeps_no_username(redis_url: str) -> None:
    prefix = f"ggzy:test:{secrets.token_hex(6)}:"
    store = RedisThrottleStore(redis_url, prefix=prefix)
    throttle = SignInThrottle(store, account=POLICY, address=POLICY)
    try:
        await throttle.attempt("zhang.wei@hengtong", "203.0.113.9", NOW)
        keys = [k async for k in store._redis.scan_iter(prefix + "*")]
        assert len(keys) == 2 and not any("zhang" in k for k in keys)
        ttls = [await store._redis.ttl(k) for k in keys]
        assert all(0 < ttl <= 3600 + 900 for ttl in ttls)
    finally:
        await store._redis.delete(*[k async for k in store._redis.scan_iter(prefix + "*")] or ["-"])
        await store.close()


# ---------------------------------------------------------------- two API processes on one Redis


async def test_two_api_processes_lock_an_account_together(
    database: Database, clock: SettableClock, tmp_path: Path, redis_url: str
) -> None:
    prefix = f"ggzy:test:{secrets.token_hex(6)}:"
    runtimes = []
    for i in range(2):  # two processes: each its own runtime, app and Redis connection, one database
        rt = _runtime(database, clock, tmp_path / f"p{i}")
        rt.throttle = build_throttle(rt.settings, RedisThrottleStore(redis_url, prefix=prefix))
        await rt.store.ensure_ready()
        runtimes.append(rt)
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=cast(Any, create_app(rt, manage_runtime=False))),
            base_url="http://testserver",
        )
        for rt in runtimes
    ]
    one, two = Api(clients[0], runtimes[0]), Api(clients[1], runtimes[1])
    try:
        agency = await one.organisation("agency")
        for i in range(5):
            r = await (one if i % 2 else two).post(
                "/api/v1/auth/login", json={"username": agency.username, "password": "wrong, wrong, wrong"}
            )
            assert r.status_code == 401, r.text
        r = await one.post("/api/v1/auth/login", json={"username": agency.username, "password": PASSWORD})
        assert r.status_code == 429 and r.headers["retry-after"] == "60"
        clock.advance(timedelta(seconds=60))
        r = await two.post("/api/v1/auth/login", json={"username": agency.username, "password": PASSWORD})
        assert r.status_code == 200, r.text
    finally:
        for client in clients:
            await client.aclose()
        redis = runtimes[0].throttle.store._redis
        await redis.delete(*[k async for k in redis.scan_iter(prefix + "*")] or ["-"])
        for rt in runtimes:
            await rt.throttle.close()
            await rt.queue.close()


async def test_sign_in_fails_closed_when_redis_is_out_of_reach(api: Api) -> None:
    agency = await api.organisation("agency")
    api.runtime.throttle = build_throttle(
        api.runtime.settings, RedisThrottleStore("redis://127.0.0.1:9/0", prefix="ggzy:test:down:")
    )
    try:
        r = await api.post("/api/v1/auth/login", json={"username": agency.username, "password": PASSWORD})
        assert r.status_code == 503, r.text
        assert r.json()["type"] == "tag:ggzy,2026:problem/unavailable"
        assert r.headers["retry-after"] == "5"
        assert "access_token" not in r.json()
    finally:
        await api.runtime.throttle.close()
