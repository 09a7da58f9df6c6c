"""`ggzy demo`: a whole works tender through the HTTP API, and the idempotent seeding `make run` relies on."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from minio import Minio
from rich.console import Console
from sqlalchemy import func, select, text

from bidding import agekeys
from demo.common import (
    BIDDERS,
    CENTRE,
    CUSTODIANS,
    KEYS_DIR,
    PASSWORD,
    SEED_HISTORY,
)
from demo.evaluation import EXPERTS
from demo.private import ServerParts, run_demo
from demo.works import DEMO_STEPS
from storage.clock import SystemClock
from storage.db import create_engine
from storage.models import metadata
from tests.conftest import PG_URL, _drop_postgres_database, _postgres_database, unavailable
from tests.storage.seaweed import SeaweedFS

# isort: split
from app import build_runtime, create_app, demo

SERVER = ServerParts(build_runtime, create_app)

SEED_USERS = {
    *(f"expert{n}" for n in range(1, 12)),
    "centre",
    "agency",
    "bidder1",
    "bidder2",
    "bidder3",
    "bidder4",
    "bidder5",
    "bidder6",
    "supervisor",
    "notary",
    "auditor",
}


async def test_the_demo_runs_a_complete_trade_with_every_step_checked(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None, highlight=False)

    assert await run_demo(console, SERVER, keep=tmp_path / "kept") is True

    shown = out.getvalue()
    # what it tells the reader to verify is kept, and verifies
    command = shown.split("replay the draw with\n", 1)[1].split()
    assert command[:3] == ["ggzy", "verify", "draw"]
    assert await asyncio.to_thread(Path(command[3]).is_file)
    from ggzy import cli

    replayed = await asyncio.to_thread(CliRunner().invoke, cli, command[1:])
    assert replayed.exit_code == 0, replayed.output
    assert "✗" not in shown
    assert shown.count("✓") == len(DEMO_STEPS)
    for fact in (
        "→ 422 rule W-01, earliest legal day 2026-03-23",
        "is tendering",
        "custodians centre, supervisor, notary, t = 2 besides the platform (policy custodians)",
        "the platform's share (Shamir T = 3) open one after the deadline; the platform with one custodian never can",
        "1 X25519 + 3 ggzy-share",
        "(Idempotent-Replayed: true)",
        "deposit refund due 2026-03-10, W-05",
        "custody view → 422 rule E-01; its release of bidder2's stanza → 422 rule E-01",
        "one share alone: shares.insufficient",
        "8 receipts verified against the closing head",
        "bidder5's withdrawn envelope is not in the closing set, as expected",
        "→ 422 rule W-07",
        "4 envelopes opened by their bidders' keys and read out; bidder4 has not revealed its key, nor has bidder6",
        "bidder4's key → 422 rule E-03; chronograph → custody, 2 envelopes (bidder4's, bidder6's) in custody",
        "centre, supervisor, notary each released their stanza of both envelopes with a proof: bidder4's envelope "
        "opened by the custodians, 47,600,000.00 yuan",
        "bidder6: the 3 shares released with valid proofs combine but do not open the header → bid revoked (E-03 "
        "撤销); W-06 forfeiture of its 800,000.00 yuan deposit proposed by the platform, approved by the supervisor",
        "custody_opened",
        "custody_outcome",
        "custody.bidder_fault",
        "20 checks pass with the pinned key: 6 custodians' proofs, 6 headers as signed at the deadline, 2 custody "
        "causes; the record with bidder6's cause changed → record_signature, contents fail",
        "hall_closed",
        "bidder1 and bidder3 paid their deposits from one bank account, and their bid letters name the same author",
        "1 to suspense (mistyped sub-account) matched by the centre",
        "the same file again → replay, nothing changed",
        "no interest under W-05",
        "a forged signature → 401",
        "changed nothing",
        "6 deposits in place at the deadline",
        "5 W-14 refunds due",
        "refused by the bank (AC06, blocked) → voided, re-queued, paid next day",
        "the agency → 403",
        "11 experts imported from CSV (again: 0 new)",
        "the centre → 403, the witness → 403; aborted on the supervisor's approval",
        "revealed at once, the five invitations cancelled; the auditor's replay: ok",
        "(8 eligible, 3 avoided under G-08)",
        "then the platform's signed commitment",
        "the agency sees seats, not names; a bidder → 403",
        "(round 1, same quota); all five accepted and the seed",
        "from seed and witness: ok; a changed witness fails, a dropped exclusion fails",
        "a supervisor's action → 403 S-04",
        "→ the report refused (G-10) until seat 3 justified it",
        "signed by all five; a signature over another hash → 422",
        "→ 422 rule W-12",
        "4,760,000.01 → 422 rule W-15, 4,760,000.00 (10%) recorded",
        "completed at",
        "6 public notices",
        "checks pass; trial balance",
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


def test_keep_refuses_a_folder_that_holds_files(tmp_path: Path) -> None:
    from ggzy import cli

    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["demo", "--keep", str(tmp_path)])
    assert result.exit_code == 2 and "not empty" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


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
        "bid_closing",
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
    # The past trade's bids were sealed envelopes: opened by their bidders or the custodians, the
    # saboteur's attributed to it, none left in custody.
    envelopes = _query(database_url, "SELECT status, opened_by, result FROM envelopes")
    assert sorted((status, by or "-", result or "-") for status, by, result in envelopes) == [
        ("failed", "-", "custody.bidder_fault"),
        *[("opened", "bidder", "opened")] * 4,
        ("opened", "custodians", "opened"),
        ("sealed", "-", "-"),  # the one withdrawn before the deadline: never opened
    ]


def test_seed_only_leaves_the_private_keys_of_the_registered_public_keys(
    database_url: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(demo, ["--seed-only"])

    assert result.exit_code == 0, result.output
    folder = tmp_path / KEYS_DIR
    registered = {
        (username, purpose, key)
        for username, purpose, key in _query(
            database_url,
            "SELECT u.username, k.purpose, k.public_key FROM public_keys k "
            "JOIN users u ON u.organisation_id = k.organisation_id",
        )
    }
    expected = set()
    for party in (*CUSTODIANS, *BIDDERS):
        path = folder / f"{party.username}.key"
        assert path.stat().st_mode & 0o777 == 0o600
        keys = agekeys.parse_identity_file(path.read_text())
        raw = agekeys.x25519_public_raw(keys)
        expected.add((party.username, "encryption", base64.b64encode(raw).decode()))
        if keys.signing is not None:
            expected.add(
                (party.username, "signing", base64.b64encode(agekeys.ed25519_public_raw(keys)).decode())
            )
        assert (party in BIDDERS) == (keys.signing is not None)
    for party in EXPERTS:  # an expert registers only the key that signs evaluation reports
        keys = agekeys.parse_identity_file((folder / f"{party.username}.key").read_text())
        assert keys.signing is not None
        expected.add((party.username, "signing", base64.b64encode(agekeys.ed25519_public_raw(keys)).decode()))
    assert registered == expected
    # The open tender's roster holds the seeded custodians' keys: a newcomer can seal to it at once.
    roster = _query(
        database_url,
        "SELECT c.public_key FROM custodians c JOIN tenders t ON t.id = c.tender_id "
        "WHERE t.status = 'tendering' ORDER BY c.position",
    )
    assert [key for (key,) in roster] == [
        base64.b64encode(
            agekeys.x25519_public_raw(agekeys.parse_identity_file((folder / f"{p.username}.key").read_text()))
        ).decode()
        for p in CUSTODIANS
    ]


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
    envelopes = [key for key in keys if "/bids/" in key]
    documents = [key for key in keys if "/documents/" in key]
    statements = [key for key in keys if key.startswith("escrow/statements/")]
    notices = [key for key in keys if key.startswith("escrow/notifications/")]
    evaluation = [key for key in keys if "/evaluation/" in key]
    archives = [key for key in keys if key.startswith("archives/")]
    opened = sorted(
        set(keys)
        - set(envelopes)
        - set(documents)
        - set(statements)
        - set(notices)
        - set(evaluation)
        - set(archives)
    )
    # Two sets of tender documents and a contract; seven sealed envelopes (one withdrawn and replaced); the
    # two files of each of the five envelopes opened, kept for the evaluation; for each of the two draws
    # (one aborted) the pool before avoidance, the exclusions and the eligible pool; the report as drawn up
    # and as signed, each in HTML and PDF.
    assert len(documents) == 3
    assert sorted(key.rsplit("/", 1)[-1] for key in evaluation if "/draw-" in key) == [
        "candidates.jsonl",
        "candidates.jsonl",
        "exclusions.txt",
        "exclusions.txt",
        "pool.txt",
        "pool.txt",
    ]
    assert sorted(key.rsplit(".", 1)[-1] for key in evaluation if "/draw-" not in key) == [
        "html",
        "html",
        "pdf",
        "pdf",
    ]
    assert len(envelopes) == 7
    assert len(opened) == 10 and all(key.endswith(("bid-letter.pdf", "priced-bill.pdf")) for key in opened)
    # the bank's statements, each kept under its SHA-256: deposits, the evening repeat, the interest credit
    assert len(statements) == 3
    assert len(notices) == 1  # the bank's signed arrival notice, kept as the bank sent it
    # the completed trade's signed archive (G-09), in the bucket like every other record
    assert len(archives) == 1 and archives[0].endswith("/1.json")
    assert not (tmp_path / "objects").exists()


# ---------------------------------------------------------------- --url: a running rehearsal server

ROOT = Path(__file__).resolve().parents[2]
CENTRE_PASSWORD = "tangerine-harbour-lantern-42"
BANK_SECRET = "rehearsal-bank-notify-secret"


def _ggzy(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ggzy", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _server(var_dir: Path, *, rehearsal: bool) -> Iterator[str]:
    """`ggzy serve` in a process of its own, on SQLite in `var_dir`, its chronograph ticking every 0.2 s; the
    centre bootstrapped from the command line as a deployment does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_") or k.startswith("GGZY_ARGON2_")}
    port = _free_port()
    env.update(
        GGZY_VAR_DIR=str(var_dir),
        GGZY_SECRET_KEY=secrets.token_urlsafe(32),
        GGZY_BANK_NOTIFY_SECRET=BANK_SECRET,
        GGZY_TICK_SECONDS="0.2",
        GGZY_PORT=str(port),
        **({"GGZY_REHEARSAL": "1"} if rehearsal else {}),
    )
    assert _ggzy("db", "upgrade", env=env).returncode == 0
    made = _ggzy(
        "accounts", "bootstrap", "--credit-code", CENTRE.credit_code, "--username", "centre-admin",
        "--password", CENTRE_PASSWORD, env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    log = (var_dir / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "ggzy", "serve"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # the server imports and starts: a bounded wait, never the test's outcome
            assert server.poll() is None, (var_dir / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _demo_against(url: str, *extra: str) -> Result:
    from ggzy import cli

    env = {"GGZY_PASSWORD": CENTRE_PASSWORD, "GGZY_BANK_NOTIFY_SECRET": BANK_SECRET, "GGZY_URL": ""}
    return CliRunner().invoke(cli, ["demo", "--url", url, "--username", "centre-admin", *extra], env=env)


def test_the_demo_drives_a_running_rehearsal_server_to_the_end_twice(tmp_path: Path) -> None:
    with _server(tmp_path / "server", rehearsal=True) as url:
        began = httpx.get(f"{url}/api/v1/clock").json()

        first = _demo_against(url, "--keep", str(tmp_path / "kept"))
        second = _demo_against(url)

        after = httpx.get(f"{url}/api/v1/clock").json()
    runs = []
    for result in (first, second):
        assert result.exit_code == 0, result.output
        assert "✗" not in result.output
        assert result.output.count("✓") == len(DEMO_STEPS)
        assert "demo complete: every step did what it should" in result.output
        runs.append(result.output.split(", run ", 1)[1].split(" ", 1)[0])
        # the server's own chronograph and worker did what the private demo does by hand
        for fact in (
            "chronograph → custody, 2 envelopes",
            "4 envelopes opened by their bidders' keys and read out",
            "(8 eligible, 3 avoided under G-08)",
            "6 public notices",
        ):
            assert fact in result.output, fact
    assert runs[0] != runs[1]  # each run its own organisations and users
    assert "administrator 'centre-admin' signed in" in first.output
    # the draw record the first run kept replays offline
    command = first.output.split("replay the draw with\n", 1)[1].split()
    assert command[:3] == ["ggzy", "verify", "draw"]
    from ggzy import cli

    assert CliRunner().invoke(cli, command[1:]).exit_code == 0
    # rehearsal time moved on by both trades (each past W-01's twenty days and more), and runs at its rate again
    moved = datetime.fromisoformat(after["now"]) - datetime.fromisoformat(began["now"])
    assert moved > timedelta(days=2 * 30)
    assert "running ×1 again" in second.output
    assert (after["rehearsal"], after["rate"]) == (True, began["rate"])


def test_the_demo_refuses_a_server_that_is_not_a_rehearsal(tmp_path: Path) -> None:
    with _server(tmp_path / "server", rehearsal=False) as url:
        before = httpx.get(f"{url}/api/v1/clock").json()

        result = _demo_against(url)

        after = httpx.get(f"{url}/api/v1/clock").json()
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "is not a rehearsal server" in lines[0], result.output
    assert "GGZY_REHEARSAL=1" in lines[0]
    assert (before["rehearsal"], after["rehearsal"]) == (False, False)
