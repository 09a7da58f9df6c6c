"""`ggzy bench audit`: what chaining the audit trail costs the requests that write it, and what checking
it costs, each next to a baseline measured in the same run on the same PostgreSQL server.

Setup (not timed): an empty PostgreSQL database (a scratch one created beside `--admin-url` and dropped
after, unless `--database-url` names an empty one), migrated to head, with a scratch table standing for a
request's own writes (`bench_work`) and a copy of `audit_events` without constraints (`bench_plain_audit`).

Every write case runs `--writers` async writers, each with its own connection, each running
`--transactions` transactions shaped like a request: insert one row of its own work, record `--events`
audit events, spend `--work-ms` in the database (`pg_sleep`, the rest of the request's work, with its
transaction open), commit. Transactions per second over the wall time of all writers, and p50/p99 of one
transaction.

- `chain_at_commit`: the product as it is: events go through `accounts.service.record` and are chained by
  the commit hook, which holds the chain row's lock only for their INSERT and the COMMIT.
- `lock_whole_request`: the alternative it avoids: the same, but each transaction takes the chain row's
  lock (`SELECT … FOR UPDATE`) before its work, as a writer chaining at record time would.
- `plain`: the same transactions inserting the same event rows into `bench_plain_audit` with no chain,
  no lock and no hashing: the floor.
- `verify`: the trail grown to `--verify-events` events (chained with `accounts.auditchain`, inserted in
  bulk; not timed), then `accounts.audit.verify` as `ggzy verify audit` runs it, next to a plain read of
  the same rows in the same batches (`scan`). Every check must pass.

One JSON line per measurement on stdout; nothing passes or fails on time. The exit status is 1 only if
something is wrong: a transaction failed, a count is off, or a check failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import click
from rich.console import Console
from sqlalchemy import Table, column, insert, select, table, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from accounts import audit, auditchain
from accounts import service as accounts
from accounts.models import AuditChain, AuditEvent
from storage.benchmark import MIN_REPEATS, emit, interleave_async, percentile_ms, postgres_database
from storage.db import create_sessionmaker, transaction
from storage.signing import LogSigner

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
WRITE_CASES = ("plain", "chain_at_commit", "lock_whole_request")
SCAN_RUNS = MIN_REPEATS  # interleaved rounds of verify and the plain read
_EVENTS = cast(Table, AuditEvent.__table__)
_CHAIN = cast(Table, AuditChain.__table__)
# the same columns and types as audit_events, for the plain inserts
_PLAIN = table("bench_plain_audit", *(column(c.name, c.type) for c in _EVENTS.columns))
_T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
_SCRATCH = """
CREATE TABLE bench_work (id uuid PRIMARY KEY, writer int NOT NULL, payload text NOT NULL);
CREATE TABLE bench_plain_audit (LIKE audit_events INCLUDING DEFAULTS);
"""


def _line(case: str, **fields: Any) -> None:
    emit("audit", case, **fields)


@dataclass(frozen=True)
class Plan:
    writers: int
    transactions: int
    events: int
    work_ms: float
    verify_events: int
    database_url: str | None
    admin_url: str


@dataclass
class Written:
    seconds: float
    durations: list[float]
    errors: list[str]


def _plain_rows(writer: int, n: int, events: int) -> list[dict[str, Any]]:
    return [
        {
            "id": uuid.uuid4(),
            "sequence": 0,
            "at": _T0,
            "actor_user_id": None,
            "actor_organisation_id": None,
            "actor_roles": ["centre"],
            "action": "bench.write",
            "object_type": "writer",
            "object_id": str(writer),
            "outcome": "ok",
            "detail": {"transaction": n, "i": i},
            "previous_hash": auditchain.GENESIS,
            "hash": auditchain.GENESIS,
        }
        for i in range(events)
    ]


async def _transaction(
    sessionmaker: async_sessionmaker[AsyncSession], case: str, writer: int, n: int, plan: Plan
) -> None:
    async with transaction(sessionmaker) as session:
        if case == "lock_whole_request":
            await session.execute(select(_CHAIN.c.sequence).where(_CHAIN.c.id == 1).with_for_update())
        await session.execute(
            text("INSERT INTO bench_work (id, writer, payload) VALUES (:id, :w, :p)"),
            {"id": uuid.uuid4(), "w": writer, "p": "x" * 200},
        )
        if case == "plain":
            await session.execute(insert(_PLAIN), _plain_rows(writer, n, plan.events))
        else:
            for i in range(plan.events):
                await accounts.record(session, None, "bench.write", "writer", writer, _T0, transaction=n, i=i)
        if plan.work_ms:
            await session.execute(text("SELECT pg_sleep(:s)"), {"s": plan.work_ms / 1000})


async def measure_write(engine: AsyncEngine, case: str, plan: Plan) -> Written:
    """`plan.writers` writers running `plan.transactions` request-shaped transactions each."""
    sessionmaker = create_sessionmaker(engine)
    durations: list[float] = []
    errors: list[str] = []

    async def writer(w: int) -> None:
        for n in range(plan.transactions):
            started = time.perf_counter()
            try:
                await _transaction(sessionmaker, case, w, n, plan)
            except Exception as exc:
                errors.append(f"{case} writer {w} transaction {n}: {type(exc).__name__}: {exc}")
            durations.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(plan.writers)))
    return Written(time.perf_counter() - started, durations, errors)


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608 - our own names


async def _reset(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("TRUNCATE audit_events, audit_chain, audit_heads, bench_work, bench_plain_audit")
        )
        await conn.execute(insert(_CHAIN).values(id=1, sequence=0, hash=auditchain.GENESIS))


async def grow(engine: AsyncEngine, total: int, err: Console) -> None:
    """Extend the trail to `total` valid events by bulk inserts (not measured)."""
    sequence, previous = 0, auditchain.GENESIS
    err.print(f"growing the trail from {sequence} to {total} events")
    while sequence < total:
        rows = []
        for _ in range(min(5000, total - sequence)):
            sequence += 1
            detail = {"n": sequence, "reason": "bench"}
            event = auditchain.Event(
                sequence,
                previous,
                str(uuid.uuid4()),
                _T0 + timedelta(milliseconds=sequence),
                str(uuid.UUID(int=sequence % 997)),
                str(uuid.UUID(int=sequence % 89)),
                ("bidder",),
                "bid.submit",
                "bid",
                str(sequence),
                "ok",
                auditchain.detail_hash(detail),
            )
            previous = auditchain.link_hash(event)
            rows.append(
                {
                    "id": uuid.UUID(event.event_id),
                    "sequence": sequence,
                    "at": event.at,
                    "actor_user_id": uuid.UUID(str(event.actor_user_id)),
                    "actor_organisation_id": uuid.UUID(str(event.actor_organisation_id)),
                    "actor_roles": list(event.actor_roles),
                    "action": event.action,
                    "object_type": event.object_type,
                    "object_id": event.object_id,
                    "outcome": event.outcome,
                    "detail": detail,
                    "previous_hash": event.previous_hash,
                    "hash": previous,
                }
            )
        async with engine.begin() as conn:
            await conn.execute(insert(_EVENTS), rows)
            await conn.execute(
                update(_CHAIN).where(_CHAIN.c.id == 1).values(sequence=sequence, hash=previous)
            )
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE audit_events"))


async def measure_scan(engine: AsyncEngine) -> float:
    """The plain read of every event in the verifier's batches: its seconds."""
    sessionmaker = create_sessionmaker(engine)
    started = time.perf_counter()
    async with audit.snapshot(sessionmaker) as session:
        after = 0
        while True:
            rows = (
                await session.execute(
                    select(_EVENTS)
                    .where(_EVENTS.c.sequence > after)
                    .order_by(_EVENTS.c.sequence)
                    .limit(audit.BATCH)
                )
            ).all()
            if not rows:
                break
            after = int(rows[-1].sequence)
    return time.perf_counter() - started


async def measure_verify(engine: AsyncEngine) -> tuple[float, audit.Report]:
    sessionmaker = create_sessionmaker(engine)
    started = time.perf_counter()
    async with audit.snapshot(sessionmaker) as session:
        report = await audit.verify(session, LogSigner.from_secret("bench").public_raw)
    return time.perf_counter() - started, report


async def run_audit(plan: Plan, err: Console) -> int:
    """Set up, run the cases, print their lines. Answers the number of problems found."""
    problems: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        url = await postgres_database(stack, plan.database_url, plan.admin_url, "ggzy_audit", err.print)
        engine = create_async_engine(url, pool_size=plan.writers + 1, max_overflow=0)
        stack.push_async_callback(engine.dispose)
        if await _count(engine, "audit_events"):
            raise click.UsageError(
                "the database is not empty: give an empty one (or none, for a scratch one)"
            )
        async with engine.begin() as conn:
            for statement in _SCRATCH.strip().split(";\n"):
                await conn.execute(text(statement))
        async with engine.connect() as conn:
            server = str(await conn.scalar(text("SHOW server_version")))
        common = {"database": "postgresql", "server_version": server}
        shape = {
            "writers": plan.writers,
            "transactions": plan.writers * plan.transactions,
            "events_per_transaction": plan.events,
            "work_ms": plan.work_ms,
        }
        rates: dict[str, float] = {}
        for case in WRITE_CASES:
            await _reset(engine)
            err.print(f"{case}: {plan.writers} writers × {plan.transactions} transactions")
            written = await measure_write(engine, case, plan)
            problems += written.errors
            stored = await _count(engine, "bench_plain_audit" if case == "plain" else "audit_events")
            expected = plan.writers * plan.transactions * plan.events
            if stored != expected:
                problems.append(f"{case}: {stored} events stored, {expected} expected")
            rate = len(written.durations) / written.seconds if written.seconds else 0.0
            rates[case] = rate
            _line(
                case,
                **common,
                **shape,
                events=stored,
                seconds=round(written.seconds, 3),
                transactions_per_s=round(rate, 1),
                p50_ms=percentile_ms(written.durations, 50),
                p99_ms=percentile_ms(written.durations, 99),
                ratio_to_plain=round(rate / rates["plain"], 3) if rates["plain"] else None,
                errors=len(written.errors),
            )
        if plan.verify_events:
            await _reset(engine)
            await grow(engine, plan.verify_events, err)
            err.print("scanning and verifying")
            reports: list[audit.Report] = []

            async def verify() -> float:
                seconds, report = await measure_verify(engine)
                reports.append(report)
                return seconds

            await measure_scan(engine)  # warm the cache for both sides
            spreads = await interleave_async(
                {"verify": verify, "scan": lambda: measure_scan(engine)}, SCAN_RUNS
            )
            seconds, scan, report = spreads["verify"].median, spreads["scan"].median, reports[-1]
            failed = [c.name for c in report.checks if not c.ok]
            problems += [f"verify: {name} failed" for name in failed]
            if report.events != plan.verify_events:
                problems.append(f"verify: {report.events} events checked, {plan.verify_events} stored")
            _line(
                "verify",
                **common,
                events=report.events,
                **spreads["verify"].fields("seconds", 3),
                events_per_s=round(report.events / seconds, 1) if seconds else None,
                scan_seconds=round(scan, 3),
                scan_seconds_min=round(spreads["scan"].min, 3),
                scan_seconds_max=round(spreads["scan"].max, 3),
                ratio_to_scan=round(seconds / scan, 2) if scan else None,
                checks=len(report.checks),
                failed=failed,
                ok=report.ok,
            )
    for problem in problems[:20]:
        err.print(f"[red]{problem}[/]")
    return len(problems)


@click.command("audit")
@click.option(
    "--writers", type=click.IntRange(1, 256), default=16, show_default=True, help="Concurrent writers."
)
@click.option(
    "--transactions", type=click.IntRange(1, 1_000_000), default=50, show_default=True, help="Per writer."
)
@click.option("--events", type=click.IntRange(1, 1000), default=3, show_default=True, help="Per transaction.")
@click.option(
    "--work-ms",
    type=click.FloatRange(0, 10_000),
    default=5.0,
    show_default=True,
    help="The rest of a request's work, spent inside its transaction (pg_sleep).",
)
@click.option(
    "--verify-events",
    type=click.IntRange(0, 100_000_000),
    default=200_000,
    show_default=True,
    help="Events in the trail for the verify case (0: skip it).",
)
@click.option(
    "--database-url",
    default=None,
    help="An EMPTY PostgreSQL database (postgresql+asyncpg://…); default: a scratch one beside --admin-url.",
)
@click.option(
    "--admin-url",
    default=DEFAULT_ADMIN_URL,
    show_default=True,
    help="Where the scratch database is created (and dropped after) when no --database-url is given.",
)
def audit_command(
    writers: int,
    transactions: int,
    events: int,
    work_ms: float,
    verify_events: int,
    database_url: str | None,
    admin_url: str,
) -> None:
    """What chaining the audit trail costs its writers, and what checking it costs.

    Request-shaped transactions per second with the chain taken at commit, with a lock
    held for the whole request instead, and with no chain at all; `ggzy verify audit` next to a plain read
    of the same events."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    plan = Plan(writers, transactions, events, work_ms, verify_events, database_url, admin_url)
    problems = asyncio.run(run_audit(plan, err))
    if problems:
        err.print(f"[red]{problems} problem(s): failed transactions, wrong counts or failed checks[/]")
        raise SystemExit(1)
