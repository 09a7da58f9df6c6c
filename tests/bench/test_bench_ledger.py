"""`ggzy bench ledger` end to end at a tiny scale on PostgreSQL: the lines' shape, that every entry was
posted without error and that the grown journal verifies — never speed."""

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
RUN = "from escrow.bench import ledger_command; ledger_command()"
ARGS = ["--entries", "200", "--postings", "2000", "--bidders", "40", "--concurrency", "4", "--batch", "64"]
COMMON = {"bench", "case", "database", "server_version"}
POST_KEYS = COMMON | {
    "entries",
    "postings",
    "kinds",
    "accounts",
    "concurrency",
    "seconds",
    "entries_per_s",
    "p50_ms",
    "p99_ms",
    "errors",
    "ratio_to_plain",
    "target_min_ratio",
}
PLAIN_KEYS = COMMON | {"entries", "postings", "batch", "batches", "concurrency", "seconds", "entries_per_s"}
SPREAD = {"seconds", "seconds_min", "seconds_max", "repeats"}
SCAN_KEYS = COMMON | SPREAD | {"sql", "postings", "accounts", "postings_sum_to_zero"}
REHASH_KEYS = COMMON | SPREAD | {"sql", "entries", "mismatched"}
VERIFY_KEYS = (
    COMMON
    | SPREAD
    | {
        "entries",
        "postings",
        "rehash_seconds",
        "ratio_to_rehash",
        "scan_seconds",
        "ratio_to_scan",
        "target_max_ratio",
        "checks",
        "passed",
        "failed",
        "ok",
    }
)
FROM_HEAD_KEYS = (
    COMMON
    | SPREAD
    | {
        "head_entries",
        "new_entries",
        "seconds_per_10000_new",
        "target_max_seconds_per_10000",
        "checks",
        "failed",
        "ok",
    }
)


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


def test_ledger_bench_posts_every_entry_and_the_journal_verifies(database_url: str) -> None:
    run = bench(*ARGS, "--database-url", database_url)

    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert [line["case"] for line in lines] == [
        "post",
        "plain_insert",
        "sum_scan",
        "sql_rehash",
        "verify",
        "verify_from_head",
    ]
    assert all(line["bench"] == "ledger" and line["database"] == "postgresql" for line in lines)
    post, plain, scan, rehash, verify, from_head = lines
    for line, keys in (
        (post, POST_KEYS),
        (plain, PLAIN_KEYS),
        (scan, SCAN_KEYS),
        (rehash, REHASH_KEYS),
        (verify, VERIFY_KEYS),
        (from_head, FROM_HEAD_KEYS),
    ):
        assert keys <= set(line), keys - set(line)

    # every entry through the service, a mix of deposits and refunds resolved, none refused
    assert post["entries"] == 200 and post["errors"] == 0
    assert (post["accounts"], post["concurrency"]) == (40, 4)
    assert sum(post["kinds"].values()) == 200
    assert post["kinds"]["deposit"] > 0 and post["kinds"]["instruct"] > 0
    # every instruction is resolved (confirmed or failed), none left outstanding
    assert post["kinds"]["instruct"] == post["kinds"].get("confirm", 0) + post["kinds"].get("fail", 0)
    assert post["postings"] == 400
    for key in ("seconds", "entries_per_s", "p50_ms", "p99_ms", "ratio_to_plain"):
        assert is_number(post[key]), key
    assert post["target_min_ratio"] == 0.3

    # the same rows, plainly
    assert (plain["entries"], plain["postings"]) == (200, 400)
    assert (plain["batch"], plain["batches"], plain["errors"]) == (64, 4, 0)
    assert is_number(plain["entries_per_s"])

    # the journal grown to the asked size, balanced, and verified in full
    assert scan["postings"] == verify["postings"] == 2000
    assert scan["postings_sum_to_zero"] is True
    assert scan["accounts"] == 41  # the bank and every deposit account
    for line in (scan, rehash, verify, from_head):
        assert line["repeats"] == 3
        assert line["seconds_min"] <= line["seconds"] <= line["seconds_max"]
    # the baseline recomputes both hashes of every entry, in SQL, and finds them all as stored
    assert (rehash["entries"], rehash["mismatched"]) == (1000, 0)
    assert verify["entries"] == 1000
    assert verify["ok"] is True and verify["failed"] == []
    assert verify["passed"] == verify["checks"] > 0
    assert is_number(verify["ratio_to_rehash"]) and is_number(verify["ratio_to_scan"])
    assert verify["target_max_ratio"] == 2.0

    # the head signed before the journal grew: still held, and every entry since chains on it
    assert from_head["head_entries"] == 220  # the posted entries and the one-per-transaction ones
    assert from_head["new_entries"] == 1000 - 220
    assert from_head["ok"] is True and from_head["failed"] == [] and from_head["checks"] == 3
    assert is_number(from_head["seconds_per_10000_new"]) and from_head["target_max_seconds_per_10000"] == 1.0


def test_ledger_bench_refuses_a_database_that_is_not_empty(database_url: str) -> None:
    args = ["--entries", "10", "--postings", "20", "--bidders", "4", "--database-url", database_url]
    assert bench(*args).returncode == 0
    again = bench(*args)
    assert again.returncode == 2, again.stderr[-3000:]
    assert "empty" in again.stderr
    assert again.stdout == ""
