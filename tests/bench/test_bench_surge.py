"""`ggzy bench surge` end to end at a tiny scale: the output's shape and that nothing is lost, never speed.

In a deadline race how many finalizes beat the closing depends on timing, so those tests check only what
must hold whatever the split: each bid acknowledged or refused under W-07, every acknowledged one in the
closing head, the store holding exactly those envelopes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG_URL, _drop_postgres_database, _postgres_database, unavailable
from tests.storage.seaweed import SeaweedFS

ROOT = Path(__file__).resolve().parents[2]
RUN = "from bidding.bench_surge import surge_command; surge_command()"
ROUNDS = 3  # the fewest a median needs; each round is a fresh tender, so the counts below are per run
LATENCY_KEYS = {
    "bench",
    "case",
    "bidders",
    "size_mib",
    "concurrency",
    "requests",
    "p50_ms",
    "p99_ms",
    "wall_s",
    "p50_ms_min",
    "p50_ms_max",
    "wall_s_min",
    "wall_s_max",
    "repeats",
    "rounds",
}
CLOSING_KEYS = {
    "bench",
    "case",
    "acknowledged",
    "refused_w07",
    "lost",
    "other",
    "in_closing_head",
    "in_flight_at_deadline",
    "store_objects",
    "within_60s",
}


@pytest.fixture
def database_url() -> Iterator[str]:
    """An empty PostgreSQL database for the bench, dropped after."""
    if not PG_URL:
        unavailable("PostgreSQL", "GGZY_TEST_DATABASE_URL is not set")
    url, name = asyncio.run(_postgres_database())
    try:
        yield url
    finally:
        asyncio.run(_drop_postgres_database(name))


def test_surge_bench_acknowledges_every_bid_and_loses_none(database_url: str, seaweedfs: SeaweedFS) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
    env |= {"AWS_ACCESS_KEY_ID": seaweedfs.access_key, "AWS_SECRET_ACCESS_KEY": seaweedfs.secret_key}
    args = ["--bidders", "4", "--size-mib", "1", "--concurrency", "2", "--repeat", str(ROUNDS)]
    args += ["--database-url", database_url, "--s3-endpoint", seaweedfs.endpoint]
    run = subprocess.run(
        [sys.executable, "-c", RUN, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )

    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert [line["case"] for line in lines] == ["finalize", "s3_put_baseline", "closing"]
    assert all(line["bench"] == "surge" for line in lines)
    for line in lines[:2]:
        assert LATENCY_KEYS <= set(line), LATENCY_KEYS - set(line)
        assert (line["bidders"], line["size_mib"], line["concurrency"]) == (4, 1, 2)
        assert (line["rounds"], line["repeats"]) == (ROUNDS, ROUNDS)
        assert line["requests"] == 4 * ROUNDS
        assert line["errors"] == 0
        assert line["envelope_bytes"] > 1024 * 1024
        assert isinstance(line["p50_ms"], float | int)
        assert isinstance(line["p99_ms"], float | int)
        assert line["p50_ms_min"] <= line["p50_ms"] <= line["p50_ms_max"]
    assert lines[0]["server_peak_rss_mib"] >= lines[0]["server_started_rss_mib"] > 0
    assert isinstance(lines[0]["ratio_p50_to_baseline"], float)
    closing = lines[2]
    assert CLOSING_KEYS <= set(closing), CLOSING_KEYS - set(closing)
    bids = 4 * ROUNDS
    assert closing["acknowledged"] == closing["in_closing_head"] == closing["closing_envelopes"] == bids
    assert closing["receipts_verified"] == closing["closing_tree_size"] == bids
    assert (closing["lost"], closing["other"], closing["refused_w07"]) == (0, 0, 0)
    assert closing["unacknowledged_in_head"] == 0
    assert (closing["store_objects"], closing["store_stray"], closing["store_missing"]) == (bids, 0, 0)
    assert isinstance(closing["within_60s"], bool)


def test_surge_bench_runs_on_the_embedded_default() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
    args = ["--embedded", "--bidders", "4", "--size-mib", "1", "--concurrency", "4", "--repeat", str(ROUNDS)]
    run = subprocess.run(
        [sys.executable, "-c", RUN, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )

    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert [line["case"] for line in lines] == ["finalize", "s3_put_baseline", "closing"]
    assert (lines[0]["backend"], lines[0]["requests"], lines[0]["errors"]) == ("embedded", 4 * ROUNDS, 0)
    closing = lines[2]
    assert closing["acknowledged"] == closing["in_closing_head"] == closing["receipts_verified"] == 4 * ROUNDS
    assert (closing["lost"], closing["unacknowledged_in_head"], closing["other"]) == (0, 0, 0)


def race_verdict(run: subprocess.CompletedProcess[str], bidders: int) -> dict[str, Any]:
    """The closing line of a deadline race, after checking what must hold however the race went."""
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert [line["case"] for line in lines] == ["finalize", "s3_put_baseline", "closing"]
    closing = lines[2]
    assert CLOSING_KEYS <= set(closing), CLOSING_KEYS - set(closing)
    assert closing["deadline_race"] == 0.5
    assert closing["closing_after_sent"] == bidders // 2
    assert closing["rounds"] == ROUNDS
    assert closing["closing_s_min"] <= closing["closing_s"] <= closing["closing_s_max"]
    assert closing["acknowledged"] + closing["refused_w07"] == bidders * ROUNDS
    assert (closing["lost"], closing["other"], closing["unacknowledged_in_head"]) == (0, 0, 0)
    assert closing["acknowledged"] == closing["in_closing_head"] == closing["closing_envelopes"]
    assert closing["receipts_verified"] == closing["acknowledged"]
    assert closing["store_objects"] == closing["acknowledged"]
    assert (closing["store_stray"], closing["store_missing"], closing["pending_copies"]) == (0, 0, 0)
    assert isinstance(closing["in_flight_at_deadline"], int)
    return dict(closing)


def test_surge_bench_with_the_deadline_passing_mid_surge_on_the_embedded_default() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
    args = ["--embedded", "--bidders", "8", "--size-mib", "1", "--concurrency", "4", "--deadline-race", "0.5"]
    args += ["--repeat", str(ROUNDS)]
    run = subprocess.run(
        [sys.executable, "-c", RUN, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )

    race_verdict(run, 8)


def test_surge_bench_with_the_deadline_passing_mid_surge_on_postgresql(
    database_url: str, seaweedfs: SeaweedFS
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
    env |= {"AWS_ACCESS_KEY_ID": seaweedfs.access_key, "AWS_SECRET_ACCESS_KEY": seaweedfs.secret_key}
    args = ["--bidders", "8", "--size-mib", "1", "--concurrency", "4", "--deadline-race", "0.5"]
    args += ["--repeat", str(ROUNDS), "--database-url", database_url, "--s3-endpoint", seaweedfs.endpoint]
    run = subprocess.run(
        [sys.executable, "-c", RUN, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )

    race_verdict(run, 8)
