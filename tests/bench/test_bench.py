"""`ggzy bench notices` end to end on a small data set: the output's shape, never its speed."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_URL, _drop_postgres_database, _postgres_database, unavailable
from trading.bench import parse_wrk

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "bench",
    "case",
    "load_generator",
    "requests",
    "concurrency",
    "rps",
    "rps_min",
    "rps_max",
    "repeats",
    "p50_ms",
    "p99_ms",
    "errors",
    "tenders",
    "database",
    "baseline_rps",
    "ratio_to_health",
    "ratio_to_health_min",
    "ratio_to_health_max",
    "target_min_ratio",
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
    if shutil.which("wrk") is None:
        unavailable("wrk", "the C load generator is not installed (apt-get install wrk)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
    args = [
        "bench",
        "notices",
        "--tenders",
        "200",
        "--seconds",
        "1",
        "--repeat",
        "3",
        "--concurrency",
        "4",
        *database,
    ]
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
        assert line["requests"] > 0
        assert (line["repeats"], line["concurrency"], line["tenders"]) == (3, 4, 200)
        assert line["load_generator"].startswith("wrk ")
        assert line["rps_min"] <= line["rps"] <= line["rps_max"]
        assert line["database"] == ("postgresql" if database else "sqlite")
        assert line["baseline_rps"] == health["rps"]
    assert health["ratio_to_health"] == 1.0
    assert health["target_min_ratio"] is None
    assert {line["target_min_ratio"] for line in lines[1:]} == {0.3}


WRK_REPORT = """Running 1s test @ http://127.0.0.1:8000/api/v1/notices?limit=20
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.10ms    1.02ms  12.00ms   90.00%
    Req/Sec     1.30k   100.00     1.40k    70.00%
  Latency Distribution
     50%  850.00us
     75%    3.20ms
     90%    4.00ms
     99%    1.20s
  1300 requests in 1.00s, 2.00MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:   1299.50
Transfer/sec:      2.00MB
"""


def test_wrk_report_is_read_into_rate_latency_and_errors() -> None:
    found = parse_wrk(WRK_REPORT)

    assert (found.requests, found.seconds, found.rps) == (1300, 1.0, 1299.5)
    assert (found.p50_ms, found.p99_ms) == (0.85, 1200.0)
    assert found.errors == 6
