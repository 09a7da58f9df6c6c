"""`ggzy bench chronograph` at a tiny size: the line's shape and that every tender closed exactly once,
never its speed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_URL, _drop_postgres_database, _postgres_database

ROOT = Path(__file__).resolve().parents[2]
RUN = "from bidding.bench_chronograph import chronograph_command; chronograph_command()"
KEYS = {
    "bench",
    "backend",
    "tenders",
    "bids_per_tender",
    "rounds",
    "workers",
    "concurrency",
    "deadline_to_last_closing_head_s",
    "plain_update_s",
    "ratio_vs_plain_update",
    "per_tender_ms",
    "target_s",
    "within_target",
    "moved",
    "closing_heads",
    "audited_moves",
    "closed_exactly_once",
}


@pytest.fixture
def postgres_url() -> Iterator[str | None]:
    """An empty PostgreSQL database for the bench, dropped after; None when PostgreSQL is not configured."""
    if not PG_URL:
        yield None
        return
    url, name = asyncio.run(_postgres_database())
    try:
        yield url
    finally:
        asyncio.run(_drop_postgres_database(name))


def test_chronograph_bench_closes_every_tender_once_on_each_backend(postgres_url: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
    args = ["--tenders", "4", "--bids", "3", "--rounds", "3", "--workers", "2", "--concurrency", "2"]
    backends = ["sqlite"] + (["postgresql"] if postgres_url else [])
    for backend in backends:
        args += ["--backend", backend]
    if postgres_url:
        args += ["--database-url", postgres_url]
    run = subprocess.run(
        [sys.executable, "-c", RUN, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )

    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert [line["backend"] for line in lines] == backends
    for line in lines:
        assert KEYS <= set(line), KEYS - set(line)
        assert (line["bench"], line["tenders"], line["rounds"], line["workers"]) == ("chronograph", 4, 3, 2)
        assert line["moved"] == line["closing_heads"] == line["audited_moves"] == 12
        assert line["closed_exactly_once"] is True
        for figure in ("deadline_to_last_closing_head_s", "plain_update_s"):
            spread = line[figure]
            assert spread["min"] <= spread["median"] <= spread["max"]
        assert isinstance(line["within_target"], bool) == (line["backend"] == "postgresql")
