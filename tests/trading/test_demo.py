"""`ggzy demo`: a whole works tender through the HTTP API, and the idempotent seeding `make run` relies on."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from minio import Minio
from rich.console import Console
from sqlalchemy import func, select, text

from storage.clock import SystemClock
from storage.db import create_engine
from storage.models import metadata
from tests.conftest import PG_URL, _drop_postgres_database, _postgres_database, unavailable
from tests.storage.seaweed import SeaweedFS
from trading.demo import DEMO_STEPS, PASSWORD, SEED_HISTORY, demo, run_demo

SEED_USERS = {
    "centre",
    "agency",
    "bidder1",
    "bidder2",
    "bidder3",
    "bidder4",
    "bidder5",
    "supervisor",
    "auditor",
}


async def test_the_demo_runs_a_complete_trade_with_every_step_checked() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None, highlight=False)

    assert await run_demo(console) is True

    shown = out.getvalue()
    assert "✗" not in shown
    assert shown.count("✓") == len(DEMO_STEPS)
    for fact in (
        "→ 422 rule W-01, earliest legal day 2026-03-23",
        "is tendering",
        "(Idempotent-Replayed: true)",
        "deposit refund due 2026-03-10, W-05",
        "→ 422 rule W-07",
        "4 commitments opened",
        "→ 422 rule E-03; chronograph → evaluation, the bid is revoked",
        "revoked (E-03)",
        "→ 422 rule W-12",
        "4,795,000.01 → 422 rule W-15, 4,795,000.00 (10%) recorded",
        "completed at",
        "5 public notices",
        "demo complete: every step did what it should",
    ):
        assert fact in shown, fact


# ---------------------------------------------------------------- --seed-only


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The configured database of `ggzy demo --seed-only`: var/ggzy.db by default, or a fresh PostgreSQL one."""
    for name in (
        "GGZY_DATABASE_URL",
        "GGZY_REDIS_URL",
        "GGZY_S3_ENDPOINT",
        "GGZY_SECRET_KEY",
        "GGZY_PUBLIC_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GGZY_VAR_DIR", str(tmp_path))
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'ggzy.db'}"
        return
    if not PG_URL:
        unavailable("PostgreSQL", "GGZY_TEST_DATABASE_URL is not set")
    url, name = asyncio.run(_postgres_database())
    monkeypatch.setenv("GGZY_DATABASE_URL", url)
    try:
        yield url
    finally:
        asyncio.run(_drop_postgres_database(name))


def _rows(url: str) -> dict[str, int]:
    async def count() -> dict[str, int]:
        engine = create_engine(url, pool=False)
        try:
            async with engine.connect() as conn:
                return {
                    t.name: int(await conn.scalar(select(func.count()).select_from(t)) or 0)
                    for t in metadata.sorted_tables
                }
        finally:
            await engine.dispose()

    return asyncio.run(count())


def _instant(value: object) -> datetime:
    """A timestamp column as an aware UTC instant (SQLite hands back naive text, PostgreSQL aware values)."""
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(instant, datetime)
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def _query(url: str, sql: str) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        engine = create_engine(url, pool=False)
        try:
            async with engine.connect() as conn:
                return [tuple(row) for row in await conn.execute(text(sql))]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_seed_only_creates_the_demo_users_a_past_trade_and_an_open_tender(database_url: str) -> None:
    result = CliRunner().invoke(demo, ["--seed-only"])

    assert result.exit_code == 0, result.output
    assert "✗" not in result.output
    assert PASSWORD in result.output
    assert {row[0] for row in _query(database_url, "SELECT username FROM users")} == SEED_USERS
    statuses = _query(database_url, "SELECT status, published_at FROM tenders ORDER BY created_at")
    assert [status for status, _ in statuses] == ["completed", "tendering"]
    kinds = _query(database_url, "SELECT kind, published_at FROM notices ORDER BY published_at")
    assert [kind for kind, _ in kinds] == [
        "tender_notice",
        "opening_record",
        "candidates",
        "result",
        "contract",
        "tender_notice",
    ]
    # The past trade ran on a clock from 70 days ago and was over weeks ago; the open tender is dated now.
    published = [_instant(at) for _, at in kinds]
    now = SystemClock().now()
    began = now - SEED_HISTORY - timedelta(minutes=10)  # the seed read the wall clock a little earlier
    assert all(began <= at < now - timedelta(days=14) for at in published[:-1])
    assert now - published[-1] < timedelta(hours=1)


def test_seed_only_a_second_time_changes_nothing(database_url: str) -> None:
    runner = CliRunner()
    first = runner.invoke(demo, ["--seed-only"])
    assert first.exit_code == 0, first.output
    before = _rows(database_url)

    second = runner.invoke(demo, ["--seed-only"])

    assert second.exit_code == 0, second.output
    assert "already there; nothing changed" in second.output
    assert "agency" in second.output and PASSWORD in second.output
    assert _rows(database_url) == before
    assert before["tenders"] == 2


def test_seed_only_on_s3_keeps_every_file_of_the_trades_in_the_bucket(
    seaweedfs: SeaweedFS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"ggzy-seed-{uuid.uuid4().hex[:12]}"
    for name in ("GGZY_DATABASE_URL", "GGZY_REDIS_URL", "GGZY_SECRET_KEY", "GGZY_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GGZY_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("GGZY_S3_ENDPOINT", seaweedfs.endpoint)
    monkeypatch.setenv("GGZY_S3_ACCESS_KEY", seaweedfs.access_key)
    monkeypatch.setenv("GGZY_S3_SECRET_KEY", seaweedfs.secret_key)
    monkeypatch.setenv("GGZY_S3_BUCKET", bucket)

    result = CliRunner().invoke(demo, ["--seed-only"])

    assert result.exit_code == 0, result.output
    client = Minio(seaweedfs.endpoint, seaweedfs.access_key, seaweedfs.secret_key, secure=False)
    keys = [o.object_name or "" for o in client.list_objects(bucket, recursive=True)]
    areas = sorted(key.split("/")[2] for key in keys)
    # Two sets of tender documents, a report and a contract; six bid files (one withdrawn and replaced).
    assert areas == ["bids"] * 6 + ["documents"] * 4
    assert not (tmp_path / "objects").exists()
