"""`ggzy bench notices` end to end on a small data set: the output's shape, never its speed."""

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
KEYS = {
    "bench",
    "case",
    "requests",
    "concurrency",
    "seconds",
    "rps",
    "p50_ms",
    "p99_ms",
    "errors",
    "tenders",
    "database",
    "baseline_rps",
    "ratio_to_health",
}
CASES = ["health", "notices_first_page", "notices_page_5", "notices_search", "notices_kind_region"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """The bench's own scratch SQLite file, or an empty PostgreSQL database given by --database-url."""
    if request.param == "sqlite":
        yield []
        return
    if not PG_URL:
        unavailable("PostgreSQL", "GGZY_TEST_DATABASE_URL is not set")
    url, name = asyncio.run(_postgres_database())
    try:
        yield ["--database-url", url]
    finally:
        asyncio.run(_drop_postgres_database(name))


def test_notices_bench_prints_one_complete_json_line_per_case(database: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
    args = ["bench", "notices", "--tenders", "200", "--requests", "50", "--concurrency", "4", *database]
    run = subprocess.run(
        [sys.executable, "-m", "ggzy", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )

    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert [line["case"] for line in lines] == CASES
    health = lines[0]
    for line in lines:
        assert KEYS <= set(line), KEYS - set(line)
        assert line["bench"] == "notices"
        assert line["errors"] == 0
        assert (line["requests"], line["concurrency"], line["tenders"]) == (50, 4, 200)
        assert line["database"] == ("postgresql" if database else "sqlite")
        assert line["baseline_rps"] == health["rps"]
    assert health["ratio_to_health"] == 1.0
