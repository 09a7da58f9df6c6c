"""`ggzy bench draw` at a tiny size: the lines' shape and that the committee is drawn, never speed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from evaluation.bench import draw_command
from tests.conftest import PG_URL, _drop_postgres_database, _postgres_database, unavailable

ARGS = ["--experts", "300", "--relationships", "30", "--repeat", "3"]
COMMITTEE_KEYS = {
    "bench",
    "case",
    "database",
    "experts",
    "relationships",
    "committee",
    "invited",
    "status",
    "candidates",
    "pool",
    "excluded",
    "draw_median_s",
    "draw_min_s",
    "request_median_s",
    "run_median_s",
    "candidates_median_s",
    "eligible_pool_median_s",
    "select_median_s",
    "sql",
    "sql_count",
    "sql_count_median_s",
    "baseline",
    "rows_read",
    "baseline_median_s",
    "baseline_min_s",
    "baseline_max_s",
    "draw_max_s",
    "ratio",
    "target_max_ratio",
    "ratio_to_count",
}
SCORING_KEYS = {
    "bench",
    "case",
    "members",
    "criteria",
    "bids",
    "scores",
    "aggregate_median_s",
    "abnormal_median_s",
    "plain_sum_median_s",
    "ratio",
    "candidates",
    "abnormal_flagged",
}


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


def is_duration(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def test_draw_bench_seats_the_committee_and_prints_both_cases(database: list[str]) -> None:
    result = CliRunner().invoke(draw_command, [*ARGS, *database])

    assert result.exit_code == 0, result.output[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(line["bench"], line["case"]) for line in lines] == [
        ("draw", "committee"),
        ("draw", "score_aggregation"),
    ]
    committee, scoring = lines
    assert COMMITTEE_KEYS <= set(committee), COMMITTEE_KEYS - set(committee)
    assert committee["database"] == ("postgresql" if database else "sqlite")
    assert (committee["experts"], committee["relationships"]) == (300, 30)
    assert committee["committee"] == committee["invited"] == 7
    assert committee["status"] == "inviting"
    assert 7 <= committee["pool"] < committee["candidates"] <= 300
    assert committee["excluded"]["count"] == committee["candidates"] - committee["pool"]
    assert committee["excluded"]["by_reason"]["employer_is_bidder"] > 0
    assert 0 < committee["sql_count"] <= committee["candidates"]
    # the baseline reads at least one row per candidate (the expert) and one per specialty
    assert committee["rows_read"] >= 2 * committee["candidates"]
    assert committee["baseline_min_s"] <= committee["baseline_median_s"] <= committee["baseline_max_s"]
    assert committee["draw_min_s"] <= committee["draw_median_s"] <= committee["draw_max_s"]
    assert committee["target_max_ratio"] == 2.0
    for key in COMMITTEE_KEYS:
        if key.endswith("_s"):
            assert is_duration(committee[key]), key
    assert SCORING_KEYS <= set(scoring), SCORING_KEYS - set(scoring)
    assert (scoring["members"], scoring["criteria"], scoring["bids"], scoring["scores"]) == (
        9,
        40,
        30,
        10_800,
    )
    assert scoring["candidates"] == 3
    assert scoring["abnormal_flagged"] > 0
    for key in ("aggregate_median_s", "abnormal_median_s", "plain_sum_median_s"):
        assert is_duration(scoring[key]), key
