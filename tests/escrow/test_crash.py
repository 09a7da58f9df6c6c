"""Crashes in the middle of moving money, through the real `ggzy` CLI in a subprocess, on a scratch SQLite file
and (when GGZY_TEST_DATABASE_URL is set) a scratch PostgreSQL database.

Each crash point of the code (`storage.faults.crash_point`: batch.after_instruction, batch.after_pending,
results.after_settle) kills `ggzy escrow batch` or `ggzy escrow results` with status 137 halfway through
its transaction. After each crash `ggzy verify ledger` passes, nothing is half-written (no pending refund
entry without its instruction, no obligation instructed without one, no batch without its rows), nothing
of the dead run is left at all, and running the command again completes. Whatever crashed, and however
often the bank's results and statements are imported, every refund obligation is paid exactly once.

On PostgreSQL a run is also killed with SIGKILL while it waits, mid-transaction, for the ledger's head row
that the test holds locked: deterministic, since the run cannot get past that lock until the test lets go.

The CLI reads the wall clock (it takes no injected clock), so the deposits are set up at the wall clock's
instant too; W-05 refunds carry no interest and fall due five days later, so nothing asserted depends on
the date the test runs.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from escrow import intake, refunds, sandbox
from escrow.models import BankStatement, JournalEntry, Obligation, RefundBatch, RefundInstruction
from rules.calendar import WorkingCalendar, local_date
from storage.clock import SystemClock
from storage.db import create_engine, create_sessionmaker, scratch_database, transaction
from storage.faults import EXIT_STATUS
from storage.signing import LogSigner
from tests.conftest import PG_URL, unavailable
from tests.escrow.fixtures_escrow import (
    Trade,
    failing_checks,
    half_written,
    local_store,
    lock_waiter,
    open_trade,
    paid_per_obligation,
    payment,
    refund_debit,
    refunds_per_account,
    statement,
)

GGZY = Path(sys.executable).with_name("ggzy")
DEPOSIT = 5_000_000  # 50,000.00 yuan
BIDDERS = 3
STRANGER = "6228480000000001"  # pays into no sub-account: suspense, returned to it
CAL = WorkingCalendar()
CRASH_SECRET = "crash-test-secret-key-0123456789abcdef"
CRASH_SIGNER = LogSigner.from_secret(CRASH_SECRET)  # the key `ggzy` derives from GGZY_SECRET_KEY


@dataclass(frozen=True)
class Run:
    """A finished `ggzy` process."""

    status: int
    out: str
    err: str

    def json(self) -> dict[str, object]:
        assert self.status == 0, (self.status, self.err[-2000:])
        return dict(json.loads(self.out))


@dataclass
class Scratch:
    """A migrated scratch database and the var directory the CLI runs in."""

    url: str
    var: Path
    trade: Trade | None = None

    def env(self, crash: str | None) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("GGZY_") or k.startswith("GGZY_ARGON2")
        }
        env.update(
            GGZY_DATABASE_URL=self.url,
            GGZY_VAR_DIR=str(self.var),
            GGZY_SECRET_KEY=CRASH_SECRET,
        )
        if crash:
            env["GGZY_CRASH_AT"] = crash
        return env

    async def start(self, *args: str, crash: str | None = None) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            GGZY,
            *args,
            env=self.env(crash),
            cwd=self.var,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def ggzy(self, *args: str, crash: str | None = None) -> Run:
        proc = await self.start(*args, crash=crash)
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return Run(proc.returncode, out.decode(), err.decode())

    async def verify_ledger(self) -> None:
        run = await self.ggzy("verify", "ledger")
        assert run.status == 0 and "FAIL" not in run.out, run.out + run.err


@pytest.fixture(scope="module")
def sqlite_schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite file brought to the schema by `ggzy db upgrade`, once; each test gets a copy."""
    path = tmp_path_factory.mktemp("schema") / "ggzy.db"
    db = Scratch(f"sqlite+aiosqlite:///{path}", path.parent)
    done = subprocess.run(
        [GGZY, "db", "upgrade"], env=db.env(None), cwd=db.var, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
async def scratch(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Scratch]:
    """An empty database brought to the schema by `ggzy db upgrade`."""
    if request.param == "sqlite":
        schema = request.getfixturevalue("sqlite_schema")
        shutil.copyfile(schema, tmp_path / "ggzy.db")
        yield Scratch(f"sqlite+aiosqlite:///{tmp_path / 'ggzy.db'}", tmp_path)
        return
    if not PG_URL:
        unavailable("PostgreSQL", "GGZY_TEST_DATABASE_URL is not set")
    async with scratch_database(PG_URL, "ggzy_crash") as url:
        db = Scratch(url, tmp_path)
        assert (await db.ggzy("db", "upgrade")).status == 0
        yield db


# ---------------------------------------------------------------- the state before the command runs


def bidder_payments(trade: Trade, day: datetime) -> list[sandbox.Credit]:
    """Every bidder's deposit, and one transfer into no sub-account (suspense)."""
    credits = [
        payment(f"PAY{n}", d.virtual_number, DEPOSIT, trade.payer(d), local_date(day))
        for n, d in enumerate(trade.deposits)
    ]
    return [*credits, payment("PAY-X", "9558000000000000", 1_234_500, STRANGER, local_date(day))]


async def prepare(db: Scratch, *, paid: bool) -> None:
    """In-process, on the same database: a lot with three registered bidders and the bank's interest on
    the escrow account; when `paid`, their deposits are in, each has withdrawn (W-05) and the stray
    transfer is being returned: four refunds due."""
    engine = create_engine(db.url)
    sm = create_sessionmaker(engine)
    now = SystemClock().now()
    store = local_store(db.var / "objects", SystemClock().now)
    interest = statement("STMT-0", now, [sandbox.Credit("INT-0", 12_345, local_date(now), interest=True)])
    try:
        async with transaction(sm) as s:
            db.trade = await open_trade(s, now, [DEPOSIT], BIDDERS, rate=False)
            assert (
                await intake.import_statement(s, store, None, interest, "camt053", now, signer=CRASH_SIGNER)
            ).interest == 1
        if not paid:
            return
        content = statement("STMT-1", now, bidder_payments(db.trade, now))
        async with transaction(sm) as s:
            out = await intake.import_statement(s, store, None, content, "camt053", now, signer=CRASH_SIGNER)
            assert (out.matched, out.suspense) == (BIDDERS, 1)
        async with transaction(sm) as s:
            for d in db.trade.deposits:
                await refunds.on_withdrawal(s, d.lot_id, d.organisation_id, "W-05", local_date(now), CAL, now)
            stray = next(x for x in await intake.suspense_lines(s) if x.payer_account == STRANGER)
            await intake.return_suspense(s, db.trade.officer, stray.id, "无法识别，原路退回", CAL, now)
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- reading the books


@dataclass(frozen=True)
class Books:
    """What is in the database, as far as these tests care."""

    head: int  # the last journal entry
    statements: int
    batches: int
    instructions: dict[str, str]  # end-to-end id → sent, paid or failed
    obligations: dict[uuid.UUID, str]
    paid: dict[uuid.UUID, int]  # paid instructions per obligation
    refunds: dict[str, int]  # posted refunds per deposit account
    half_written: list[str]
    failing: dict[str, str]


async def books(db: Scratch) -> Books:
    engine = create_engine(db.url, pool=False)
    try:
        async with transaction(create_sessionmaker(engine), read_only=True) as s:
            return Books(
                head=int(await s.scalar(select(func.coalesce(func.max(JournalEntry.sequence), 0))) or 0),
                statements=int(await s.scalar(select(func.count()).select_from(BankStatement)) or 0),
                batches=int(await s.scalar(select(func.count()).select_from(RefundBatch)) or 0),
                instructions=dict(
                    (await s.execute(select(RefundInstruction.end_to_end_id, RefundInstruction.status))).all()
                ),
                obligations=dict((await s.execute(select(Obligation.id, Obligation.status))).all()),
                paid=await paid_per_obligation(s),
                refunds=await refunds_per_account(s),
                half_written=await half_written(s),
                failing=await failing_checks(s, CAL, SystemClock().now(), CRASH_SIGNER),
            )
    finally:
        await engine.dispose()


async def after_a_crash(db: Scratch, before: Books) -> Books:
    """The dead run left the books exactly as they were, and they verify."""
    await db.verify_ledger()
    now = await books(db)
    assert now.half_written == [] and now.failing == {}
    assert now == before
    return now


async def all_paid_once(db: Scratch) -> None:
    final = await books(db)  # verify runs in `books`, as `ggzy verify ledger` runs it
    assert final.half_written == [] and final.failing == {}
    assert len(final.obligations) == BIDDERS + 1
    assert set(final.obligations.values()) == {"paid"}
    assert set(final.paid.values()) == {1}
    assert db.trade is not None
    assert final.refunds == {d.account_code: 1 for d in db.trade.deposits}


# ---------------------------------------------------------------- the bank's side


def payments_file(db: Scratch, number: str) -> list[tuple[str, int]]:
    """The batch's CSV as the bank receives it: (end-to-end id, amount in fen) per instruction."""
    rows = list(csv.reader(io.StringIO((db.var / "out" / f"{number}.csv").read_text("utf-8"))))
    return [(row[1], int(Decimal(row[3]) * 100)) for row in rows[1:]]


def bank_results(db: Scratch, name: str, e2e: list[str], rejected: dict[str, str] | None = None) -> str:
    path = db.var / f"{name}.xml"
    path.write_bytes(sandbox.results(name, SystemClock().now(), e2e, rejected))
    return str(path)


async def batch(db: Scratch, crash: str | None = None) -> Run:
    return await db.ggzy("escrow", "batch", "--out", str(db.var / "out"), crash=crash)


# ---------------------------------------------------------------- the crash points


@pytest.mark.parametrize("point", ["batch.after_instruction", "batch.after_pending"])
async def test_a_batch_killed_midway_leaves_nothing_and_every_refund_is_paid_once(
    scratch: Scratch, point: str
) -> None:
    db = scratch
    await prepare(db, paid=True)
    before = await books(db)
    assert set(before.obligations.values()) == {"due"} and before.half_written == []

    crashed = await batch(db, crash=point)
    assert (crashed.status, crashed.out) == (EXIT_STATUS, "")
    assert not (db.var / "out").exists()  # the files are written only after the commit
    await after_a_crash(db, before)

    made = (await batch(db)).json()
    assert made["count"] == BIDDERS + 1
    number = str(made["batch"])
    sent = payments_file(db, number)
    assert sorted(amount for _, amount in sent) == [1_234_500] + [DEPOSIT] * BIDDERS
    assert all(e2e.encode() in (db.var / "out" / f"{number}.xml").read_bytes() for e2e, _ in sent)

    # the bank's statement shows two of the refunds paid; then its results report all four
    debits = [
        refund_debit(f"DEBIT{n}", e2e, amount, local_date(SystemClock().now()))
        for n, (e2e, amount) in enumerate(sent[:2])
    ]
    (db.var / "debits.xml").write_bytes(statement("STMT-2", SystemClock().now(), debits))
    assert (await db.ggzy("escrow", "import", str(db.var / "debits.xml"))).json()["refunds_confirmed"] == 2
    results = bank_results(db, "R1", [e2e for e2e, _ in sent])
    assert (await db.ggzy("escrow", "results", results)).json() == {
        "paid": 2,
        "failed": 0,
        "unchanged": 2,
        "pending": 0,
        "problems": [],
    }
    assert (await db.ggzy("escrow", "results", results)).json()["unchanged"] == BIDDERS + 1
    assert (await batch(db)).json() == {"batch": None}
    await all_paid_once(db)


async def test_results_killed_midway_settle_nothing_and_a_refused_refund_is_paid_once_on_retry(
    scratch: Scratch,
) -> None:
    db = scratch
    await prepare(db, paid=True)
    number = str((await batch(db)).json()["batch"])
    sent = [e2e for e2e, _ in payments_file(db, number)]
    refused = sent[1]
    first = bank_results(db, "R1", sent, {refused: "AC04"})
    before = await books(db)
    assert set(before.instructions.values()) == {"sent"}

    crashed = await db.ggzy("escrow", "results", first, crash="results.after_settle")
    assert (crashed.status, crashed.out) == (EXIT_STATUS, "")
    await after_a_crash(db, before)

    out = (await db.ggzy("escrow", "results", first)).json()
    assert (out["paid"], out["failed"], out["unchanged"]) == (BIDDERS, 1, 0)

    # the refused refund is instructed again: first a crash, then the real run
    before = await books(db)
    assert list(before.obligations.values()).count("due") == 1
    crashed = await batch(db, crash="batch.after_pending")
    assert crashed.status == EXIT_STATUS
    await after_a_crash(db, before)
    retry = (await batch(db)).json()
    assert retry["count"] == 1
    again = [e2e for e2e, _ in payments_file(db, str(retry["batch"]))]
    assert again != [refused]

    second = bank_results(db, "R2", again)
    before = await books(db)
    assert (await db.ggzy("escrow", "results", second, crash="results.after_settle")).status == EXIT_STATUS
    await after_a_crash(db, before)
    assert (await db.ggzy("escrow", "results", second)).json()["paid"] == 1
    # both result files again, the refusal now stale: nothing moves, nothing is paid twice
    for path, known in ((first, BIDDERS + 1), (second, 1)):
        out = (await db.ggzy("escrow", "results", path)).json()
        assert (out["paid"], out["failed"], out["unchanged"], out["problems"]) == (0, 0, known, [])
    final = await books(db)
    assert final.instructions[refused] == "failed" and final.instructions[again[0]] == "paid"
    await all_paid_once(db)


# ---------------------------------------------------------------- SIGKILL while waiting for the ledger


# PostgreSQL only: SQLite takes its write lock at BEGIN IMMEDIATE, so no run can be held mid-transaction
# from outside; the crash points above cover SQLite.
@pytest.mark.parametrize("scratch", ["postgresql"], indirect=True)
@pytest.mark.parametrize("command", ["import", "batch", "results"])
async def test_a_run_killed_while_it_waits_for_the_ledger_leaves_nothing(
    scratch: Scratch, command: str
) -> None:
    db = scratch
    await prepare(db, paid=command != "import")
    assert db.trade is not None
    args: list[str]
    if command == "import":
        path = db.var / "payments.xml"
        path.write_bytes(
            statement("STMT-1", SystemClock().now(), bidder_payments(db.trade, SystemClock().now()))
        )
        args = ["escrow", "import", str(path)]
    elif command == "batch":
        args = ["escrow", "batch", "--out", str(db.var / "out")]
    else:
        number = str((await batch(db)).json()["batch"])
        args = ["escrow", "results", bank_results(db, "R1", [e2e for e2e, _ in payments_file(db, number)])]
    before = await books(db)

    holder = create_engine(db.url, pool=False)
    try:
        async with holder.connect() as conn:
            await conn.execute(text("SELECT sequence FROM ledger_head WHERE id = 1 FOR UPDATE"))
            proc = await db.start(*args)
            await lock_waiter(db.url, lambda: proc.returncode is None)
            proc.send_signal(signal.SIGKILL)
            assert await proc.wait() == -signal.SIGKILL
            await conn.rollback()
    finally:
        await holder.dispose()
    await after_a_crash(db, before)

    again = (await db.ggzy(*args)).json()
    if command == "import":
        assert (again["matched"], again["suspense"]) == (BIDDERS, 1)
        assert (await db.ggzy(*args)).json()["replay"] is True
        return
    if command == "batch":
        assert again["count"] == BIDDERS + 1
        results = bank_results(db, "R1", [e2e for e2e, _ in payments_file(db, str(again["batch"]))])
        assert (await db.ggzy("escrow", "results", results)).json()["paid"] == BIDDERS + 1
    else:
        assert again["paid"] == BIDDERS + 1
    assert (await db.ggzy(*args)).status == 0  # the same command once more changes nothing
    await all_paid_once(db)
