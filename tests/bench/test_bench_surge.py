"""`ggzy bench surge` end to end at a tiny scale: the output's shape and that nothing is lost, never speed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_URL, _drop_postgres_database, _postgres_database, unavailable
from tests.storage.seaweed import SeaweedFS

ROOT = Path(__file__).resolve().parents[2]
RUN = "from bidding.bench_surge import surge_command; surge_command()"
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
}
CLOSING_KEYS = {"bench", "case", "acknowledged", "in_closing_head", "lost", "within_60s"}


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
    args = ["--bidders", "4", "--size-mib", "1", "--concurrency", "2"]
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
        assert line["requests"] == 4
        assert line["errors"] == 0
        assert line["envelope_bytes"] > 1024 * 1024
        assert isinstance(line["p50_ms"], float | int)
        assert isinstance(line["p99_ms"], float | int)
    closing = lines[2]
    assert CLOSING_KEYS <= set(closing), CLOSING_KEYS - set(closing)
    assert closing["acknowledged"] == closing["in_closing_head"] == closing["closing_envelopes"] == 4
    assert closing["receipts_verified"] == closing["closing_tree_size"] == 4
    assert closing["lost"] == 0
    assert closing["unacknowledged_in_head"] == 0
    assert isinstance(closing["within_60s"], bool)


def test_surge_bench_runs_on_the_embedded_default() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
    args = ["--embedded", "--bidders", "4", "--size-mib", "1", "--concurrency", "4"]
    run = subprocess.run(
        [sys.executable, "-c", RUN, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )

    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert [line["case"] for line in lines] == ["finalize", "s3_put_baseline", "closing"]
    assert (lines[0]["backend"], lines[0]["requests"], lines[0]["errors"]) == ("embedded", 4, 0)
    closing = lines[2]
    assert closing["acknowledged"] == closing["in_closing_head"] == closing["receipts_verified"] == 4
    assert (closing["lost"], closing["unacknowledged_in_head"]) == (0, 0)
