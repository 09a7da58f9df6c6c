"""The shared benchmark harness: interleaving, spreads, JSON lines and peak memory in a fresh process."""

from __future__ import annotations

import asyncio
import json
import resource

import click
import pytest

from storage import benchmark

# Grown in the test process before the probe starts: a child that inherited this peak would report it.
_BALLAST_MIB = 200


def hold_bytes(mib: str) -> int:
    """Probe target: allocate and touch `mib` MiB, return how many bytes it held."""
    held = bytearray(int(mib) * 1024 * 1024)
    for offset in range(0, len(held), 4096):
        held[offset] = 1
    return len(held)


def test_interleave_alternates_the_order_of_cases_round_after_round() -> None:
    order: list[str] = []

    def case(name: str) -> float:
        order.append(name)
        return float(len(order))

    spreads = benchmark.interleave({"candidate": lambda: case("c"), "baseline": lambda: case("b")}, 3)

    assert order == ["c", "b", "b", "c", "c", "b"]
    assert spreads["candidate"].samples == (1.0, 4.0, 5.0)
    assert spreads["baseline"].samples == (2.0, 3.0, 6.0)


def test_interleave_async_runs_the_same_rounds_as_interleave() -> None:
    order: list[str] = []

    async def case(name: str) -> float:
        order.append(name)
        return 1.0

    asyncio.run(benchmark.interleave_async({"a": lambda: case("a"), "b": lambda: case("b")}, 4))

    assert order == ["a", "b", "b", "a", "a", "b", "b", "a"]


def test_fewer_than_three_repeats_are_refused() -> None:
    with pytest.raises(click.BadParameter):
        benchmark.interleave({"a": lambda: 1.0}, 2)


def test_spread_prints_median_min_max_and_repeats() -> None:
    spread = benchmark.Spread((3.0, 1.0, 2.0))

    assert spread.fields("seconds") == {"seconds": 2.0, "seconds_min": 1.0, "seconds_max": 3.0, "repeats": 3}
    assert spread.rate(6.0).samples == (2.0, 6.0, 3.0)


def test_emit_prints_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    benchmark.emit("seal", "ggzy_seal", ratio=benchmark.ratio(3.0, 2.0), note="封装")

    assert json.loads(capsys.readouterr().out) == {
        "bench": "seal",
        "case": "ggzy_seal",
        "ratio": 1.5,
        "note": "封装",
    }


def test_ratio_and_percentile_handle_missing_figures() -> None:
    assert benchmark.ratio(None, 1.0) is None
    assert benchmark.ratio(1.0, 0.0) is None
    assert benchmark.percentile_ms([], 50) is None
    assert benchmark.percentile_ms([0.001, 0.002, 0.003, 0.004], 50) == 2.0


def test_peak_memory_is_the_fresh_process_own_not_the_parent_peak() -> None:
    ballast = bytearray(_BALLAST_MIB * 1024 * 1024)
    for offset in range(0, len(ballast), 4096):
        ballast[offset] = 1
    parent_peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert parent_peak_mib > _BALLAST_MIB

    small = benchmark.peak_memory("tests.storage.test_benchmark:hold_bytes", "8")
    large = benchmark.peak_memory("tests.storage.test_benchmark:hold_bytes", "64")

    assert (small.result, large.result) == (8 * 1024 * 1024, 64 * 1024 * 1024)
    assert small.peak_mib is not None and large.peak_mib is not None
    assert small.peak_mib < _BALLAST_MIB  # what the parent had reached is not charged to the child
    assert large.growth_mib is not None and large.growth_mib >= 60
    assert small.growth_mib is not None and small.growth_mib < 20
    del ballast
