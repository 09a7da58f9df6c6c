"""`ggzy demo --seed-only` on every configuration: all or nothing, rerunnable, beside a running chronograph
or with a queue no worker serves, and into a GGZY_VAR_DIR that does not exist yet."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from demo import works as demo_works
from demo.common import KEYS_DIR, PASSWORD, Step, StepFailed, Trade
from storage.migrate import upgrade_async
from storage.settings import Settings
from tests.demo.test_demo import _query, _rows, database_url  # noqa: F401 - the fixture

# isort: split
from app import demo


def _seeded(url: str) -> None:
    """The seed is all there: two tenders (the past one completed), the demo users, the keys' files."""
    statuses = [status for (status,) in _query(url, "SELECT status FROM tenders ORDER BY created_at")]
    assert statuses == ["completed", "tendering"]
    assert ("agency",) in _query(url, "SELECT username FROM users")


def _failing_at(index: int, error: Exception) -> tuple[Step, ...]:
    """The demo's trade steps with one more after the first `index` that fails with `error`."""

    async def fail(_t: Trade) -> str:
        raise error

    steps = demo_works.TRADE_STEPS
    return (*steps[:index], Step("A step that fails", fail), *steps[index:])


@pytest.mark.parametrize(
    "error",
    [StepFailed("what the step expected", "something else"), RuntimeError("the process is going down")],
    ids=["step-failed", "crash"],
)
def test_a_seed_that_stops_midway_leaves_nothing_and_a_rerun_seeds_everything(
    database_url: str,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    asyncio.run(upgrade_async(database_url))
    empty = _rows(database_url)
    # after the bids, the withdrawal and its refund through the bank: the ledger, the audit trail, receipts
    # and the outbox all hold rows of the trade by then
    steps = demo_works.TRADE_STEPS
    monkeypatch.setattr(demo_works, "TRADE_STEPS", _failing_at(8, error))

    stopped = CliRunner().invoke(demo, ["--seed-only"])

    assert stopped.exit_code != 0
    if isinstance(error, StepFailed):
        assert "nothing was kept" in stopped.output
    assert _rows(database_url) == empty
    monkeypatch.setattr(demo_works, "TRADE_STEPS", steps)

    again = CliRunner().invoke(demo, ["--seed-only"])

    assert again.exit_code == 0, again.output
    assert "already there" not in again.output
    _seeded(database_url)


def test_seed_only_with_a_job_queue_on_redis_and_no_worker_seeds_everything(
    database_url: str,  # noqa: F811 - the fixture
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GGZY_REDIS_URL", redis_url)

    result = CliRunner().invoke(demo, ["--seed-only"])

    assert result.exit_code == 0, result.output
    assert "✗" not in result.output
    _seeded(database_url)
    # every job of the seed ran here: nothing is left for a worker
    assert _query(database_url, "SELECT count(*) FROM outbox WHERE dispatched_at IS NULL") == [(0,)]


@dataclass
class Ticks:
    """What a running chronograph did: how many ticks it began and what each finished one did."""

    began: int = 0
    finished: list[Any] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)


@pytest.fixture
def running_chronograph(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ticks]:  # noqa: F811
    """A server's runtime on the same database, its chronograph ticking on real time every 0.2 s (as
    `ggzy serve` runs it, or a worker's cron) in a thread of its own."""
    from app import build_runtime
    from trading import jobs as trading_jobs

    asyncio.run(upgrade_async(database_url))
    monkeypatch.setenv("GGZY_TICK_SECONDS", "0.2")
    monkeypatch.setenv("GGZY_SECRET_KEY", secrets.token_urlsafe(32))
    settings = Settings.from_env()
    ticks = Ticks()
    stop = threading.Event()
    started = threading.Event()

    async def serve() -> None:
        runtime = build_runtime(settings)
        tick = trading_jobs.chronograph_tick

        async def counted(ctx: Any) -> Any:
            ours = ctx.sessionmaker is runtime.sessionmaker  # not the seed's own ticks on its clock
            if ours:
                with ticks.changed:
                    ticks.began += 1
            done = await tick(ctx)
            if ours:
                with ticks.changed:
                    ticks.finished.append(done)
                    ticks.changed.notify_all()
            return done

        monkeypatch.setattr(trading_jobs, "chronograph_tick", counted)
        await runtime.start()
        started.set()
        try:
            await asyncio.to_thread(stop.wait)
        finally:
            await runtime.stop()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(30)
    try:
        yield ticks
    finally:
        stop.set()
        thread.join(60)


def test_seed_only_beside_a_running_chronograph_seeds_the_past_trade_it_cannot_move(
    database_url: str,  # noqa: F811 - the fixture
    running_chronograph: Ticks,
) -> None:
    result = CliRunner().invoke(demo, ["--seed-only"])

    assert result.exit_code == 0, result.output
    assert "✗" not in result.output
    # It ticked while the seed ran (on SQLite it waited for the seed's write lock) and goes on once the
    # seed is in: the trade completed in the past stays completed, the open tender stays open.
    with running_chronograph.changed:
        seen = len(running_chronograph.finished)
        assert running_chronograph.changed.wait_for(lambda: len(running_chronograph.finished) > seen + 1, 60)
    assert running_chronograph.began >= 2
    assert all(done == [] for done in running_chronograph.finished)
    _seeded(database_url)


def test_seed_only_creates_a_var_dir_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GGZY_DATABASE_URL", "GGZY_REDIS_URL", "GGZY_S3_ENDPOINT", "GGZY_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    var = tmp_path / "not" / "there" / "var"
    monkeypatch.setenv("GGZY_VAR_DIR", str(var))
    monkeypatch.setenv("GGZY_SECRET_KEY", secrets.token_urlsafe(32))  # so nothing else creates it first

    result = CliRunner().invoke(demo, ["--seed-only"])

    assert result.exit_code == 0, result.output
    assert PASSWORD in result.output
    _seeded(f"sqlite+aiosqlite:///{var / 'ggzy.db'}")
    assert (var / KEYS_DIR / "bidder1.key").exists()
