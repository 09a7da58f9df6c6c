"""The harness every `ggzy bench …` shares: interleaved rounds, repeats, JSON lines, peak memory.

A figure is only worth its baseline. So a benchmark here runs its candidate and its baseline in the same
rounds, one after the other (`interleave`), at least `MIN_REPEATS` times, and prints the median with the
minimum and maximum beside it (`Spread`): a machine busy with other work slows both sides of a round alike
instead of whichever ran first. Every result is one JSON line on stdout (`emit`).

Peak memory is measured in a fresh interpreter (`peak_memory`) that reads its own high-water mark
(`VmHWM` of /proc/self/status) before and after the work. `ru_maxrss` cannot do this: a child that was
forked from a large parent carries the parent's peak across `exec`, so it never shows what the work
itself took.

Nothing here decides pass or fail on time: a ratio is printed next to its target and read by a person.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

MIN_REPEATS = 3
ROOT = Path(__file__).resolve().parents[1]


def emit(bench: str, case: str, **fields: Any) -> None:
    """Print one measurement as one JSON line on stdout."""
    click.echo(json.dumps({"bench": bench, "case": case, **fields}, ensure_ascii=False))


def percentile_ms(samples: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of durations in seconds, in milliseconds (None for no samples)."""
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000, 2)


def ratio(candidate: float | None, baseline: float | None, digits: int = 3) -> float | None:
    """candidate / baseline, rounded; None when either is missing or the baseline is zero."""
    if candidate is None or baseline is None or baseline == 0:
        return None
    return round(candidate / baseline, digits)


@dataclass(frozen=True)
class Spread:
    """The repeats of one measured quantity: the median is the figure, min and max say how far to trust it."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def fields(self, name: str, digits: int = 4) -> dict[str, Any]:
        """`name` (the median), `name_min`, `name_max` and `repeats`, for a JSON line."""
        return {
            name: round(self.median, digits),
            f"{name}_min": round(self.min, digits),
            f"{name}_max": round(self.max, digits),
            "repeats": len(self.samples),
        }

    def rate(self, amount: float) -> Spread:
        """amount / each sample: a spread of seconds becomes a spread of rates (min and max swap roles)."""
        return Spread(tuple(amount / s if s > 0 else 0.0 for s in self.samples))


def _check_repeats(repeats: int) -> None:
    if repeats < MIN_REPEATS:
        raise click.BadParameter(
            f"at least {MIN_REPEATS} repeats are needed for a median", param_hint="--repeat"
        )


def repeat_option(
    *,
    default: int = MIN_REPEATS,
    most: int = 100,
    help: str = "Interleaved rounds; each line gives the median with min and max.",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Every bench's `--repeat`: how many rounds it runs, never fewer than a median needs."""
    return click.option(
        "--repeat", type=click.IntRange(MIN_REPEATS, most), default=default, show_default=True, help=help
    )


async def postgres_database(
    stack: contextlib.AsyncExitStack,
    given: str | None,
    admin_url: str,
    prefix: str,
    say: Callable[[str], object],
) -> str:
    """The migrated PostgreSQL database a bench runs on: `given`, or a scratch one named after `prefix` under
    `admin_url`, dropped when `stack` closes. Refuses any other database (the bench measures PostgreSQL)."""
    from sqlalchemy import make_url

    from storage.db import scratch_database
    from storage.migrate import upgrade_async

    if given is None:
        url = await stack.enter_async_context(
            scratch_database(admin_url, prefix, lambda name: say(f"created scratch database {name}"))
        )
    else:
        url = given
    if make_url(url).get_backend_name() != "postgresql":
        raise click.UsageError(
            f"the {prefix.removeprefix('ggzy_')} bench runs on PostgreSQL (--database-url postgresql+asyncpg://…)"
        )
    say("migrating the database")
    await upgrade_async(url)
    return url


def interleave(cases: Mapping[str, Callable[[], float]], repeats: int) -> dict[str, Spread]:
    """Run every case once per round, in the given order, for `repeats` rounds.

    Each case returns its own measured value (usually seconds, timed around the work alone, so set-up
    such as deleting the previous output is not counted). The order inside a round alternates, so no case
    is always the first after a pause.
    """
    _check_repeats(repeats)
    names = list(cases)
    runs: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else reversed(names):
            runs[name].append(cases[name]())
    return {name: Spread(tuple(values)) for name, values in runs.items()}


async def interleave_async(
    cases: Mapping[str, Callable[[], Awaitable[float]]], repeats: int
) -> dict[str, Spread]:
    """`interleave` for coroutines: each case is awaited alone, round after round."""
    _check_repeats(repeats)
    names = list(cases)
    runs: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else reversed(names):
            runs[name].append(await cases[name]())
    return {name: Spread(tuple(values)) for name, values in runs.items()}


def timed(work: Callable[[], object]) -> float:
    """Seconds that `work()` took (a duration, not a time of day: the injected clock is not involved)."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


async def timed_async(work: Awaitable[object]) -> float:
    """Seconds that awaiting `work` took."""
    started = time.perf_counter()
    await work
    return time.perf_counter() - started


# ---------------------------------------------------------------- peak memory in a fresh process

# The child imports the function, notes its own high-water mark, runs it, and notes the mark again.
_PROBE = """
import importlib, json, sys, time
def hwm():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None
module, _, name = sys.argv[1].partition(":")
work = getattr(importlib.import_module(module), name)
before = hwm()
started = time.perf_counter()
result = work(*sys.argv[2:])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "hwm_before_kib": before, "hwm_after_kib": hwm(), "result": result}))
"""


@dataclass(frozen=True)
class Peak:
    """What a fresh process running one function reached: its peak RSS after imports and after the work."""

    seconds: float
    before_mib: float | None
    peak_mib: float | None
    result: Any

    @property
    def growth_mib(self) -> float | None:
        """How much the work raised the peak above what the imports had already taken."""
        if self.before_mib is None or self.peak_mib is None:
            return None
        return round(self.peak_mib - self.before_mib, 1)

    def fields(self) -> dict[str, Any]:
        return {
            "peak_rss_mib": self.peak_mib,
            "imports_rss_mib": self.before_mib,
            "growth_mib": self.growth_mib,
            "memory_seconds": round(self.seconds, 4),
            "memory_measured_in": "a fresh interpreter, VmHWM of /proc/self/status",
        }


def peak_memory(function: str, *args: str, timeout: float = 3600) -> Peak:
    """Run `module:function(*args)` (string arguments) in a fresh interpreter and return its peak RSS.

    The function must be importable from this installation and return something JSON can carry.
    """
    module, _, name = function.partition(":")
    if not module or not name:
        raise ValueError(f"expected module:function, got {function!r}")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    # our own interpreter and code, argv as a list: no shell, nothing from outside
    run = subprocess.run(  # noqa: S603
        [sys.executable, "-c", _PROBE, function, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if run.returncode != 0:
        raise click.ClickException(f"the memory probe {function} failed: {run.stderr[-2000:]}")
    found: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])

    def mib(kib: int | None) -> float | None:
        return None if kib is None else round(kib / 1024, 1)

    return Peak(
        float(found["seconds"]), mib(found["hwm_before_kib"]), mib(found["hwm_after_kib"]), found["result"]
    )
