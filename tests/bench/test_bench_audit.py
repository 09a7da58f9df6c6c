"""`ggzy bench audit` end to end at a tiny scale on PostgreSQL: the lines' shape, that every transaction
committed its events in every case and that the grown trail verifies — never speed."""

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

ROOT = Path(__file__).resolve().parents[2]
RUN = "from accounts.bench import audit_command; audit_command()"
ARGS = ["--writers", "4", "--transactions", "5", "--events", "2", "--work-ms", "1", "--verify-events", "3000"]
WRITE_KEYS = {
    "bench",
    "case",
    "database",
    "server_version",
    "writers",
    "transactions",
    "events_per_transaction",
    "work_ms",
    "events",
    "seconds",
    "transactions_per_s",
    "p50_ms",
    "p99_ms",
    "ratio_to_plain",
    "errors",
}
VERIFY_KEYS = {
    "bench",
    "case",
    "database",
    "server_version",
    "events",
    "seconds",
    "events_per_s",
    "seconds_min",
    "seconds_max",
    "repeats",
    "scan_seconds",
    "scan_seconds_min",
    "scan_seconds_max",
    "ratio_to_scan",
    "checks",
    "failed",
    "ok",
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


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
    return subprocess.run(
        [sys.executable, "-c", RUN, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def test_audit_bench_commits_every_event_in_every_case_and_the_trail_verifies(database_url: str) -> None:
    run = bench(*ARGS, "--database-url", database_url)

    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert [line["case"] for line in lines] == ["plain", "chain_at_commit", "lock_whole_request", "verify"]
    assert all(line["bench"] == "audit" and line["database"] == "postgresql" for line in lines)
    for line in lines[:3]:
        assert set(line) == WRITE_KEYS
        assert (line["writers"], line["transactions"], line["events_per_transaction"]) == (4, 20, 2)
        assert (line["events"], line["errors"]) == (40, 0)
        for key in ("seconds", "transactions_per_s", "p50_ms", "p99_ms", "ratio_to_plain"):
            assert is_number(line[key]), key
    assert lines[0]["ratio_to_plain"] == 1.0
    verify = lines[3]
    assert set(verify) == VERIFY_KEYS
    assert (verify["events"], verify["checks"], verify["failed"], verify["ok"]) == (3000, 6, [], True)
    assert is_number(verify["ratio_to_scan"])
    assert verify["repeats"] == 3
    assert verify["seconds_min"] <= verify["seconds"] <= verify["seconds_max"]
    assert verify["scan_seconds_min"] <= verify["scan_seconds"] <= verify["scan_seconds_max"]


def test_audit_bench_refuses_a_database_that_is_not_empty(database_url: str) -> None:
    args = ["--writers", "1", "--transactions", "1", "--verify-events", "10", "--database-url", database_url]
    assert bench(*args).returncode == 0
    again = bench(*args)
    assert again.returncode == 2, again.stderr[-3000:]
    assert "not empty" in again.stderr
    assert again.stdout == ""
