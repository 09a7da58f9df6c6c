"""`ggzy bench ledger`: the deposit ledger's write path and its auditors' check, each next to a baseline
measured in the same run on the same PostgreSQL server.

Setup (not timed): an empty PostgreSQL database (a scratch one created beside `--admin-url` and dropped
after, unless `--database-url` names an empty one), migrated to head; the escrow bank account and
`--bidders` deposit sub-accounts opened through `escrow.journal.ensure_account`.

Cases, in this order:

- `post`: `--entries` entries through `escrow.journal.post_many` in batches of up to `--post-batch`
  entries, one transaction each, as the product posts a bank statement's lines, a refund batch or the
  bank's results, from `--concurrency` async workers (every batch takes the one ledger-head lock). Each
  worker owns a share of the deposit accounts and walks each through a realistic life: a deposit received
  (sometimes a second statement line tops it up), a refund instructed to the bank (a pending entry
  reserving the money), then the bank's result resolving it — confirmed (posted), or about one in ten
  failed (voided, the deposit held again and refunded later). A result waits for the next batch when its
  instruction is in the current one (it must name the instruction's sequence number), and so does the
  rest of that account's life. Entries/s over the wall time of all workers, and p50/p99 of one batch's
  transaction. For reference the line also carries `one_per_transaction`: after `plain_insert`, another
  `--single-entries` entries of the same lives through `escrow.journal.post` / `escrow.journal.resolve`,
  each in its own transaction.
- `plain_insert`: the very rows the batched `post` wrote (read back, not timed) inserted again with plain
  batched INSERTs (executemany, `--batch` entries and their postings per transaction, one connection) into tables
  of the same shape in a scratch schema (`CREATE TABLE … (LIKE … INCLUDING ALL)` plus the same foreign
  keys), with no checks, locks or hashing: the floor the write path is compared with (target: post at
  least 0.3× of it). The scratch schema is dropped afterwards.
- `sum_scan`: the journal is grown to `--postings` postings with valid entries — chained with
  `escrow.ledger.entry_hash` and `request_hash`, balances kept with `escrow.ledger.apply` and stored, the
  head moved — by plain batched inserts (filling is not measured), vacuumed and analysed; then one SQL
  scan that sums the postings per account (after one warm-up, the median of three runs).
- `sql_rehash`: one SQL pass recomputing every entry's request and chain hashes
  (`escrow.journal.rehash_sql`, PostgreSQL's own parallel plan): the work no verifier can skip.
- `verify`: `escrow.journal.verify` over the whole journal, as `ggzy verify ledger` runs it (on PostgreSQL:
  the set-based checks over as many connections as the rehash's parallel plan has processes), next to the
  rehash (target: at most 2×) and the scan. Every check must pass. Verify, rehash, scan and
  verify from a head run interleaved, `--repeat` rounds.
- `verify_from_head`: the head signed after `post` (before the fill) checked as
  `ggzy verify ledger --head HEAD.json --quick` checks it — the journal still holds it and every entry since
  chains on it and recomputes — in seconds per 10,000 entries added since the head (target: about 1 s).

One JSON line per measurement on stdout; nothing passes or fails on time. The exit status is 1 only if
something is wrong: an entry refused, a row count off, the postings not summing to zero, or a verification
check failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import click
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import Column, MetaData, Table, bindparam, func, insert, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from escrow import heads, journal, ledger, published
from escrow.models import AccountBalance, JournalEntry, LedgerAccount, LedgerHead
from escrow.models import Posting as PostingRow
from storage.benchmark import (
    MIN_REPEATS,
    emit,
    interleave_async,
    percentile_ms,
    postgres_database,
    ratio,
    repeat_option,
)
from storage.clock import Clock, SystemClock
from storage.db import Base, create_sessionmaker, transaction
from storage.signing import LogSigner

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
PLAIN_SCHEMA = "ledger_plain"
SCAN_SQL = "SELECT account_code, sum(amount_fen) FROM postings GROUP BY account_code"
TARGET_POST_RATIO = 0.3  # post at least this fraction of the plain insert's entries/s
TARGET_VERIFY_RATIO = 2.0  # verify at most this many times the SQL rehash of the same entries
TARGET_HEAD_SECONDS_PER_10000 = 1.0  # verify from a kept head: at most about this per 10,000 new entries
BENCH_SIGNER = LogSigner.from_secret("ggzy bench ledger")  # a throwaway key: the bench's heads prove nothing
BIDDERS_PER_TENDER = 20
TOP_UP_SHARE = 0.25  # a held deposit gets a second statement line instead of being refunded
FAIL_SHARE = 0.1  # a refund instructed to the bank comes back failed (voided, refunded again later)
DEPOSIT_FEN = (10_000 * 100, 800_000 * 100)  # 10,000 to 800,000 yuan (the W-04 cap)
IMPORT_ACTOR = "job:statement-import"
REFUND_ACTOR = "job:refund-batch"
RESULT_ACTOR = "job:bank-result"


def _line(case: str, **fields: Any) -> None:
    emit("ledger", case, **fields)


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


# ---------------------------------------------------------------- the script every account follows

State = Literal["empty", "held", "instructed"]
Kind = Literal["deposit", "instruct", "confirm", "fail"]


@dataclass
class Account:
    """A bidder's deposit sub-account for one tender's lot, and where it stands in the script."""

    code: str
    tender: str
    bidder: str
    state: State = "empty"
    held: int = 0  # fen the centre holds for the bidder: what a refund returns

    @property
    def context(self) -> dict[str, str]:
        return {"tender": self.tender, "lot": "1", "bidder": self.bidder}

    def party(self, role: str) -> ledger.Party:
        """The bidder's own bank account: where its deposits come from and its refunds go back to."""
        return ledger.Party(
            role, f"6222{zlib.crc32(self.bidder.encode()):012d}", f"投标人 {self.bidder}", "中国工商银行"
        )


@dataclass(frozen=True)
class Step:
    """One entry to post: a deposit or a refund instruction (with its draft), or the bank's result for
    the account's outstanding instruction (confirmed or failed; the resolution is built from it)."""

    kind: Kind
    account: Account
    key: str
    draft: ledger.EntryDraft | None = None

    @property
    def reason(self) -> str:
        return "refund_confirmed" if self.kind == "confirm" else "refund_failed"

    @property
    def target(self) -> str:
        return ledger.Phase.POSTED if self.kind == "confirm" else ledger.Phase.VOIDED


def script(accounts: Sequence[Account], budget: int, rng: random.Random, prefix: str) -> Iterator[Step]:
    """Exactly `budget` steps over `accounts`, round robin, each account moving empty → held (deposit,
    perhaps topped up) → instructed (pending refund) → empty (confirmed) or held again (failed). No refund
    is left outstanding at the end: an instruction is only scheduled while the budget has room for it and
    for every result still owed. States advance as steps are handed out (the caller posts them in order)."""
    if not accounts:
        return
    remaining, outstanding, turn, n = budget, 0, 0, 0
    while remaining > 0:
        account = accounts[turn % len(accounts)]
        turn += 1
        if remaining == outstanding and account.state != "instructed":
            continue  # only the results still owed fit in what is left
        key = f"{prefix}:{n:09d}"
        if account.state == "instructed":
            failed = rng.random() < FAIL_SHARE
            step = Step("fail" if failed else "confirm", account, key)
            account.state = "held" if failed else "empty"
            account.held = account.held if failed else 0
            outstanding -= 1
        elif account.state == "held" and remaining - outstanding >= 2 and rng.random() >= TOP_UP_SHARE:
            draft = ledger.EntryDraft(
                "refund_instructed",
                (ledger.Posting(account.code, account.held), ledger.Posting(journal.BANK, -account.held)),
                key,
                account.context,
                REFUND_ACTOR,
                account.party("payee"),
            )
            step = Step("instruct", account, key, draft)
            account.state = "instructed"
            outstanding += 1
        else:
            amount = rng.randrange(*DEPOSIT_FEN)
            draft = ledger.EntryDraft(
                "deposit_received",
                (ledger.Posting(journal.BANK, amount), ledger.Posting(account.code, -amount)),
                key,
                {**account.context, "statement_line": key},
                IMPORT_ACTOR,
                account.party("payer"),
            )
            step = Step("deposit", account, key, draft)
            account.state = "held"
            account.held += amount
        remaining -= 1
        n += 1
        yield step


# ---------------------------------------------------------------- the database


async def _count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def _require_empty(engine: AsyncEngine) -> None:
    for table in (LedgerAccount, JournalEntry):
        existing = await _count(engine, table)
        if existing:
            raise click.UsageError(
                f"the database already holds {existing} {table.__tablename__} rows; benchmark on an empty one"
            )


async def open_accounts(engine: AsyncEngine, bidders: int, clock: Clock) -> list[Account]:
    """The escrow bank account and one deposit sub-account per bidder, through the service."""
    accounts = []
    for i in range(bidders):
        tender = f"BENCH-{i // BIDDERS_PER_TENDER:05d}"
        bidder = f"bidder-{i:06d}"
        accounts.append(Account(f"deposit:{tender}:L1:{bidder}", tender, bidder))
    now = clock.now()
    async with transaction(create_sessionmaker(engine)) as session:
        await journal.ensure_account(session, journal.BANK, "bank", now)
        for i, account in enumerate(accounts):
            await journal.ensure_account(
                session, account.code, "deposit", now, virtual_number=f"6222{i:012d}"
            )
    return accounts


# ---------------------------------------------------------------- case 1: post through the service


@dataclass
class Posted:
    entries: int = 0
    batches: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # one per transaction
    kinds: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def count(self, steps: Sequence[Step], started: float) -> None:
        self.latencies.append(time.perf_counter() - started)
        self.entries += len(steps)
        self.batches += 1
        for step in steps:
            self.kinds[step.kind] = self.kinds.get(step.kind, 0) + 1


async def _post_worker(
    sm: async_sessionmaker[Any], steps: Iterator[Step], clock: Clock, result: Posted, tick: Any
) -> None:
    """One entry per transaction through `journal.post` and `journal.resolve`."""
    pending: dict[str, int] = {}  # account → its outstanding refund instruction's sequence
    for step in steps:
        started = time.perf_counter()
        try:
            async with transaction(sm) as session:
                if step.draft is not None:
                    phase = ledger.Phase.PENDING if step.kind == "instruct" else ledger.Phase.POSTED
                    done = await journal.post(session, step.draft, clock.now(), phase=phase)
                else:
                    done = await journal.resolve(
                        session,
                        pending.pop(step.account.code),
                        step.target,
                        key=step.key,
                        reason=step.reason,
                        actor=RESULT_ACTOR,
                        now=clock.now(),
                    )
        except Exception as exc:
            # this worker's accounts are now out of step with the script: stop it, report, exit 1 later
            result.errors.append(f"{step.kind} {step.key}: {type(exc).__name__}: {exc}")
            return
        if done.replay:
            result.errors.append(f"{step.kind} {step.key}: answered as a replay")
            return
        if step.kind == "instruct":
            pending[step.account.code] = done.entry.sequence
        result.count([step], started)
        tick(1)


def _next_batch(steps: Iterator[Step], waiting: list[Step], size: int) -> tuple[list[Step], list[Step]]:
    """Up to `size` steps, the waiting ones first: a bank result whose instruction is in this batch waits
    for the next (it names the instruction's sequence number), and so does the rest of that account's
    life, so every account's steps stay in order. Answers the batch and the steps left waiting."""
    batch: list[Step] = []
    later: list[Step] = []
    held: set[str] = set()
    instructed: set[str] = set()

    def take(step: Step) -> None:
        code = step.account.code
        if len(batch) >= size or code in held or (step.draft is None and code in instructed):
            held.add(code)
            later.append(step)
            return
        batch.append(step)
        if step.kind == "instruct":
            instructed.add(code)

    for step in waiting:
        take(step)
    while len(batch) < size:
        fresh = next(steps, None)
        if fresh is None:
            break
        take(fresh)
    return batch, later


async def _batch_worker(
    sm: async_sessionmaker[Any], steps: Iterator[Step], clock: Clock, result: Posted, tick: Any, size: int
) -> None:
    """Batches of up to `size` entries through `journal.post_many`, one transaction each."""
    pending: dict[str, tuple[int, ledger.EntryDraft]] = {}  # account → its outstanding instruction
    waiting: list[Step] = []
    while True:
        batch, waiting = _next_batch(steps, waiting, size)
        if not batch:
            return
        requests = []
        for step in batch:
            if step.draft is not None:
                phase = ledger.Phase.PENDING if step.kind == "instruct" else ledger.Phase.POSTED
                requests.append(journal.Request(step.draft, phase))
                continue
            # what `journal.resolve` records: the pending entry's legs, its context naming it
            sequence, original = pending.pop(step.account.code)
            context = {**original.context, "resolves": str(sequence)}
            draft = ledger.EntryDraft(step.reason, original.postings, step.key, context, RESULT_ACTOR)
            requests.append(journal.Request(draft, step.target, sequence))
        started = time.perf_counter()
        try:
            async with transaction(sm) as session:
                done = await journal.post_many(session, requests, clock.now())
        except Exception as exc:
            # this worker's accounts are now out of step with the script: stop it, report, exit 1 later
            result.errors.append(f"batch from {batch[0].key}: {type(exc).__name__}: {exc}")
            return
        for step, posted in zip(batch, done, strict=True):
            if posted.replay:
                result.errors.append(f"{step.kind} {step.key}: answered as a replay")
                return
            if step.kind == "instruct" and step.draft is not None:
                pending[step.account.code] = (posted.entry.sequence, step.draft)
        result.count(batch, started)
        tick(len(batch))


async def measure_post(
    engine: AsyncEngine,
    accounts: Sequence[Account],
    entries: int,
    workers: int,
    seed: int,
    err: Console,
    *,
    batch: int | None,
    prefix: str = "bench-post",
) -> Posted:
    """`entries` entries through the service from `workers` workers, each owning every workers-th account:
    in batches of up to `batch` through `journal.post_many`, or (None) one per transaction."""
    sm = create_sessionmaker(engine)
    clock = SystemClock()
    result = Posted()
    before = await _count(engine, JournalEntry)
    scripts = [
        script(
            accounts[w::workers],
            entries // workers + (w < entries % workers),
            random.Random(seed * 1000 + w),
            f"{prefix}-{w:02d}",
        )
        for w in range(workers)
    ]
    how = f"in batches of up to {batch}" if batch else "one per transaction"
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"posting {entries} entries {how}, {workers} at a time", total=entries)

        def tick(n: int) -> None:
            progress.advance(task, n)

        started = time.perf_counter()
        if batch:
            await asyncio.gather(*(_batch_worker(sm, s, clock, result, tick, batch) for s in scripts))
        else:
            await asyncio.gather(*(_post_worker(sm, s, clock, result, tick) for s in scripts))
        result.seconds = time.perf_counter() - started
    stored = await _count(engine, JournalEntry) - before
    if stored != result.entries:
        result.errors.append(f"{result.entries} entries posted but {stored} stored")
    return result


async def _stored_balances(engine: AsyncEngine) -> dict[str, ledger.Balance]:
    async with engine.connect() as conn:
        return {
            code: ledger.Balance(posted, pending)
            for code, posted, pending in await conn.execute(
                select(AccountBalance.account_code, AccountBalance.posted, AccountBalance.pending)
            )
        }


# ---------------------------------------------------------------- case 2: the same rows, plain inserts


def _plain_tables() -> tuple[Table, Table]:
    """Insert targets for the scratch schema's copies of journal_entries and postings (same columns and
    types, so the same bind processing; the DDL below gives them the same keys, indexes and references)."""
    meta = MetaData()

    def copy(table: Table) -> Table:
        columns = [Column(c.name, c.type, primary_key=c.primary_key) for c in table.columns]
        return Table(table.name, meta, *columns, schema=PLAIN_SCHEMA)

    return copy(Base.metadata.tables[JournalEntry.__tablename__]), copy(
        Base.metadata.tables[PostingRow.__tablename__]
    )


PLAIN_DDL = (
    f"DROP SCHEMA IF EXISTS {PLAIN_SCHEMA} CASCADE",
    f"CREATE SCHEMA {PLAIN_SCHEMA}",
    f"CREATE TABLE {PLAIN_SCHEMA}.journal_entries (LIKE public.journal_entries INCLUDING ALL)",
    f"CREATE TABLE {PLAIN_SCHEMA}.postings (LIKE public.postings INCLUDING ALL)",
    f"ALTER TABLE {PLAIN_SCHEMA}.postings ADD FOREIGN KEY (sequence) "
    f"REFERENCES {PLAIN_SCHEMA}.journal_entries (sequence)",
    f"ALTER TABLE {PLAIN_SCHEMA}.postings ADD FOREIGN KEY (account_code) REFERENCES public.ledger_accounts (code)",
)


@dataclass
class Plain:
    entries: int = 0
    postings: int = 0
    batches: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


async def measure_plain(engine: AsyncEngine, batch: int, err: Console) -> Plain:
    """The journal `post` wrote, inserted again into same-shaped scratch tables, `batch` entries a time."""
    entry_table, posting_table = _plain_tables()
    async with engine.connect() as conn:
        entries = [
            dict(r)
            for r in (
                await conn.execute(select(JournalEntry.__table__).order_by(JournalEntry.sequence))
            ).mappings()
        ]
        postings = [
            dict(r)
            for r in (
                await conn.execute(select(PostingRow.__table__).order_by(PostingRow.sequence, PostingRow.leg))
            ).mappings()
        ]
    batches: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []
    p = 0
    for start in range(0, len(entries), batch):
        chunk = entries[start : start + batch]
        last, legs = chunk[-1]["sequence"], []
        while p < len(postings) and postings[p]["sequence"] <= last:
            legs.append(postings[p])
            p += 1
        batches.append((chunk, legs))
    async with engine.begin() as conn:
        for statement in PLAIN_DDL:
            await conn.execute(text(statement))
    result = Plain(len(entries), len(postings), len(batches))
    try:
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task(f"plain insert of {len(entries)} entries", total=len(entries))
            started = time.perf_counter()
            for chunk, legs in batches:
                async with engine.begin() as conn:
                    await conn.execute(insert(entry_table), chunk)
                    await conn.execute(insert(posting_table), legs)
                progress.advance(task, len(chunk))
            result.seconds = time.perf_counter() - started
        for table, expected in ((entry_table, result.entries), (posting_table, result.postings)):
            stored = await _count(engine, table)
            if stored != expected:
                result.errors.append(f"plain insert: {stored} rows in {table.name}, expected {expected}")
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {PLAIN_SCHEMA} CASCADE"))
    return result


# ---------------------------------------------------------------- case 3: a journal of --postings, verified


@dataclass
class Filled:
    entries: int = 0
    postings: int = 0
    added_entries: int = 0
    seconds: float = 0.0


def _resume(
    accounts: Sequence[Account], stored: dict[str, ledger.Balance]
) -> tuple[list[Account], list[str]]:
    """The accounts as the stored balances leave them (held or empty); one with a refund still pending
    (a `post` worker stopped early) sits the fill out, since its reservation is not scripted."""
    ready, skipped = [], []
    for a in accounts:
        balance = stored.get(a.code, ledger.Balance())
        if balance.pending:
            skipped.append(a.code)
            continue
        held = -balance.posted  # a deposit account is credit-normal
        ready.append(Account(a.code, a.tender, a.bidder, "held" if held > 0 else "empty", held))
    return ready, skipped


async def fill(
    engine: AsyncEngine, accounts: Sequence[Account], postings: int, batch: int, seed: int, err: Console
) -> Filled:
    """Grow the journal to at least `postings` postings with valid entries, chained after the stored head,
    balances carried forward and stored, the head moved; plain batched inserts, then VACUUM ANALYZE."""
    started = time.perf_counter()
    async with engine.connect() as conn:
        head = (
            await conn.execute(select(LedgerHead.sequence, LedgerHead.hash).where(LedgerHead.id == 1))
        ).first()
        existing = int(await conn.scalar(select(func.count()).select_from(PostingRow)) or 0)
        specs = {
            code: ledger.AccountSpec(code, kind, negative)
            for code, kind, negative in await conn.execute(
                select(LedgerAccount.code, LedgerAccount.kind, LedgerAccount.may_go_negative)
            )
        }
        balances = {
            code: ledger.Balance(posted, pending)
            for code, posted, pending in await conn.execute(
                select(AccountBalance.account_code, AccountBalance.posted, AccountBalance.pending)
            )
        }
    sequence, previous = (int(head[0]), str(head[1])) if head is not None else (0, ledger.GENESIS)
    ready, skipped = _resume(accounts, balances)
    if skipped:
        err.print(f"[yellow]{len(skipped)} accounts with a pending refund sit the fill out[/]")
    to_add = math.ceil(max(0, postings - existing) / 2)  # every scripted entry has two legs
    at = SystemClock().now()
    changed: set[str] = set()
    opened: dict[str, tuple[int, ledger.EntryDraft]] = {}  # account → its pending refund
    entry_rows: list[dict[str, Any]] = []
    posting_rows: list[dict[str, Any]] = []

    async def flush() -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(JournalEntry), entry_rows)
            await conn.execute(insert(PostingRow), posting_rows)
        entry_rows.clear()
        posting_rows.clear()

    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"filling the journal: {to_add} entries", total=to_add)
        for step in script(ready, to_add, random.Random(seed), "bench-fill"):
            sequence += 1
            resolves: int | None = None
            if step.draft is not None:
                draft = step.draft
                phase: str = ledger.Phase.PENDING if step.kind == "instruct" else ledger.Phase.POSTED
                moved = ledger.apply(balances, specs, draft.postings, phase=phase)
            else:
                # what `journal.resolve` records: the pending entry's legs, its context naming it
                resolves, original = opened.pop(step.account.code)
                context = {**original.context, "resolves": str(resolves)}
                draft = ledger.EntryDraft(step.reason, original.postings, step.key, context, RESULT_ACTOR)
                phase = step.target
                resolve = ledger.post_pending if phase == ledger.Phase.POSTED else ledger.void_pending
                moved = resolve(balances, specs, draft.postings)
            balances.update(moved)
            changed.update(moved)
            if step.kind == "instruct":
                opened[step.account.code] = (sequence, draft)
            when = at + timedelta(microseconds=sequence)
            digest = ledger.entry_hash(previous, sequence, draft, phase, when)
            entry_rows.append(
                {
                    "sequence": sequence,
                    "idempotency_key": draft.idempotency_key,
                    "request_hash": ledger.request_hash(draft),
                    "reason": draft.reason,
                    "phase": str(phase),
                    "resolves": resolves,
                    "at": when,
                    "actor": draft.actor,
                    "context": dict(draft.context),
                    "previous_hash": previous,
                    "hash": digest,
                    "scheme": draft.scheme,
                    "party_role": draft.party.role,
                    "party_account": draft.party.account,
                    "party_name": draft.party.name,
                    "party_bank": draft.party.bank,
                }
            )
            posting_rows.extend(
                {"sequence": sequence, "leg": leg, "account_code": p.account, "amount_fen": p.amount_fen}
                for leg, p in enumerate(draft.postings)
            )
            previous = digest
            if len(entry_rows) >= batch:
                progress.advance(task, len(entry_rows))
                await flush()
        if entry_rows:
            progress.advance(task, len(entry_rows))
            await flush()
    assert not opened, "the script leaves no refund outstanding"
    async with engine.begin() as conn:
        if changed:
            await conn.execute(
                update(AccountBalance)
                .where(AccountBalance.account_code == bindparam("code"))
                .values(posted=bindparam("posted_fen"), pending=bindparam("pending_fen")),
                [
                    {"code": c, "posted_fen": balances[c].posted, "pending_fen": balances[c].pending}
                    for c in sorted(changed)
                ],
            )
        upsert = postgresql.insert(LedgerHead).values(id=1, sequence=sequence, hash=previous)
        await conn.execute(
            upsert.on_conflict_do_update(
                index_elements=["id"],
                set_={"sequence": upsert.excluded.sequence, "hash": upsert.excluded.hash},
            )
        )
    err.print("vacuuming and analysing the journal")
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(
            text("VACUUM ANALYZE journal_entries, postings, account_balances, ledger_accounts")
        )
    return Filled(
        await _count(engine, JournalEntry),
        await _count(engine, PostingRow),
        to_add,
        time.perf_counter() - started,
    )


async def measure_scan(engine: AsyncEngine) -> tuple[float, list[Any]]:
    """One SQL scan summing the postings per account: seconds and the sums."""
    async with engine.connect() as conn:
        started = time.perf_counter()
        rows = list((await conn.execute(text(SCAN_SQL))).all())
        return time.perf_counter() - started, rows


async def measure_rehash(engine: AsyncEngine) -> tuple[float, tuple[int, int]]:
    """`escrow.journal.rehash_sql`: every entry's two hashes recomputed in one SQL pass; seconds, and how
    many entries it read and found mismatched (none, on a sound journal)."""
    async with engine.connect() as conn:
        started = time.perf_counter()
        row = (await conn.execute(text(journal.rehash_sql()))).one()
        return time.perf_counter() - started, (int(row.entries), int(row.mismatched))


async def sign_head(engine: AsyncEngine) -> heads.SignedHead:
    """Sign the journal's head as a batch would (not timed): the head an auditor keeps."""
    async with transaction(create_sessionmaker(engine)) as session:
        head = await published.seal(session, BENCH_SIGNER, SystemClock().now(), "bench", always=True)
    assert head is not None
    return head


async def measure_from_head(engine: AsyncEngine, kept: heads.SignedHead) -> tuple[float, list[ledger.Check]]:
    """`ggzy verify ledger --head HEAD.json --quick`: the kept head against the journal, and every entry
    since it chained on and recomputing."""
    started = time.perf_counter()
    async with transaction(create_sessionmaker(engine), read_only=True) as session:
        checks = await published.check_kept(session, kept, BENCH_SIGNER.public_raw)
    return time.perf_counter() - started, checks


async def measure_verify(engine: AsyncEngine) -> tuple[float, list[ledger.Check]]:
    """`escrow.journal.verify` in a read-only transaction, exactly as `ggzy verify ledger` runs it."""
    started = time.perf_counter()
    async with transaction(create_sessionmaker(engine), read_only=True) as session:
        checks = list(await journal.verify(session))
    return time.perf_counter() - started, checks


# ---------------------------------------------------------------- the command


@dataclass(frozen=True)
class Plan:
    entries: int
    postings: int
    bidders: int
    concurrency: int
    batch: int
    seed: int
    database_url: str | None
    admin_url: str
    post_batch: int = 1000
    single_entries: int | None = None  # default: a tenth of --entries, at most 2000
    repeat: int = MIN_REPEATS

    @property
    def singles(self) -> int:
        return min(self.entries // 10, 2000) if self.single_entries is None else self.single_entries


async def run_ledger(plan: Plan, err: Console) -> int:
    """Set up, run the four cases, print their lines. Answers the number of problems found."""
    problems: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        url = await postgres_database(stack, plan.database_url, plan.admin_url, "ggzy_ledger", err.print)
        workers = min(plan.concurrency, plan.bidders)
        # the posting workers, or a verify's own connection and those it shares its snapshot with
        connections = max(workers, journal.MAX_VERIFY_CONNECTIONS) + 1
        engine = create_async_engine(url, pool_size=connections, max_overflow=0)
        stack.push_async_callback(engine.dispose)
        await _require_empty(engine)
        async with engine.connect() as conn:
            server = str(await conn.scalar(text("SHOW server_version")))
        err.print(f"opening the bank account and {plan.bidders} deposit accounts")
        accounts = await open_accounts(engine, plan.bidders, SystemClock())
        common = {"database": "postgresql", "server_version": server}

        posted = await measure_post(
            engine, accounts, plan.entries, workers, plan.seed, err, batch=plan.post_batch
        )
        problems += posted.errors
        plain = await measure_plain(engine, plan.batch, err)
        problems += plain.errors
        post_rate, plain_rate = _rate(posted.entries, posted.seconds), _rate(plain.entries, plain.seconds)
        post_ratio = round(post_rate / plain_rate, 3) if plain_rate else None
        single = Posted()
        if plan.singles:
            resumed, skipped = _resume(accounts, await _stored_balances(engine))
            if skipped:
                problems.append(f"{len(skipped)} accounts were left with a refund pending")
            single = await measure_post(
                engine, resumed, plan.singles, workers, plan.seed + 1, err, batch=None, prefix="bench-single"
            )
            problems += single.errors
        single_rate = _rate(single.entries, single.seconds)
        _line(
            "post",
            entries=posted.entries,
            postings=plain.postings,
            kinds=dict(sorted(posted.kinds.items())),
            accounts=len(accounts),
            concurrency=workers,
            batch=plan.post_batch,
            batches=posted.batches,
            seconds=round(posted.seconds, 3),
            entries_per_s=post_rate,
            p50_ms=percentile_ms(posted.latencies, 50),
            p99_ms=percentile_ms(posted.latencies, 99),
            errors=len(posted.errors),
            ratio_to_plain=post_ratio,
            target_min_ratio=TARGET_POST_RATIO,
            one_per_transaction={
                "entries": single.entries,
                "kinds": dict(sorted(single.kinds.items())),
                "seconds": round(single.seconds, 3),
                "entries_per_s": single_rate,
                "p50_ms": percentile_ms(single.latencies, 50),
                "p99_ms": percentile_ms(single.latencies, 99),
                "errors": len(single.errors),
                "ratio_to_plain": round(single_rate / plain_rate, 3) if plain_rate else None,
            },
            **common,
        )
        _line(
            "plain_insert",
            entries=plain.entries,
            postings=plain.postings,
            batch=plan.batch,
            batches=plain.batches,
            concurrency=1,
            seconds=round(plain.seconds, 3),
            entries_per_s=plain_rate,
            errors=len(plain.errors),
            **common,
        )

        kept = await sign_head(engine)
        filled = await fill(engine, accounts, plan.postings, plan.batch, plan.seed, err)
        err.print(f"journal: {filled.entries} entries, {filled.postings} postings; measuring")
        found: dict[str, Any] = {}

        async def verify() -> float:
            seconds, found["verify"] = await measure_verify(engine)
            return seconds

        async def rehash() -> float:
            seconds, found["rehash"] = await measure_rehash(engine)
            return seconds

        async def scan() -> float:
            seconds, found["scan"] = await measure_scan(engine)
            return seconds

        async def from_head() -> float:
            seconds, found["from_head"] = await measure_from_head(engine, kept)
            return seconds

        err.print(
            f"{plan.repeat} interleaved rounds of verify, the SQL rehash, the sum scan and verify from a head"
        )
        spreads = await interleave_async(
            {"verify": verify, "rehash": rehash, "scan": scan, "from_head": from_head}, plan.repeat
        )
        rows = found["scan"]
        total_fen = sum(int(r[1]) for r in rows)
        if total_fen != 0:
            problems.append(f"the postings sum to {total_fen} fen, not zero")
        _line(
            "sum_scan",
            sql=SCAN_SQL,
            postings=filled.postings,
            accounts=len(rows),
            **spreads["scan"].fields("seconds"),
            postings_sum_to_zero=total_fen == 0,
            **common,
        )
        rehashed_entries, mismatched = found["rehash"]
        if mismatched:
            problems.append(f"the SQL rehash found {mismatched} entries whose hashes differ")
        _line(
            "sql_rehash",
            sql="escrow.journal.rehash_sql()",
            entries=rehashed_entries,
            mismatched=mismatched,
            **spreads["rehash"].fields("seconds"),
            **common,
        )
        checks = found["verify"]
        failed = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
        problems += failed
        verify_s = spreads["verify"]
        _line(
            "verify",
            entries=filled.entries,
            postings=filled.postings,
            fill_seconds=round(filled.seconds, 1),
            **verify_s.fields("seconds", 3),
            postings_per_s=_rate(filled.postings, verify_s.median),
            rehash_seconds=round(spreads["rehash"].median, 4),
            ratio_to_rehash=ratio(verify_s.median, spreads["rehash"].median, 2),
            target_max_ratio=TARGET_VERIFY_RATIO,
            scan_seconds=round(spreads["scan"].median, 4),
            ratio_to_scan=ratio(verify_s.median, spreads["scan"].median, 2),
            checks=len(checks),
            passed=len(checks) - len(failed),
            failed=failed,
            ok=not failed,
            **common,
        )
        checks = found["from_head"]
        failed = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
        problems += failed
        new = filled.entries - kept.entries
        head_s = spreads["from_head"]
        _line(
            "verify_from_head",
            head_entries=kept.entries,
            new_entries=new,
            **head_s.fields("seconds", 3),
            seconds_per_10000_new=round(head_s.median * 10_000 / new, 3) if new else None,
            target_max_seconds_per_10000=TARGET_HEAD_SECONDS_PER_10000,
            checks=len(checks),
            failed=failed,
            ok=not failed,
            **common,
        )
    for problem in problems[:20]:
        err.print(f"[red]{problem}[/]", markup=True, highlight=False)
    return len(problems)


@click.command("ledger")
@click.option(
    "--entries",
    type=click.IntRange(1, 100_000_000),
    default=100_000,
    show_default=True,
    help="Entries to post through escrow.journal.post_many (and to insert plainly).",
)
@click.option(
    "--postings",
    type=click.IntRange(2, 1_000_000_000),
    default=1_000_000,
    show_default=True,
    help="Postings in the journal that `verify` checks (the posted entries' count towards it).",
)
@click.option(
    "--bidders",
    type=click.IntRange(1, 1_000_000),
    default=2000,
    show_default=True,
    help="Deposit sub-accounts the entries go to.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=4,
    show_default=True,
    help="Async workers posting at once, each batch (or entry) its own transaction: statement imports, "
    "refund batches and bank results, a few at a time, all taking the one ledger-head lock.",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Entries per plain INSERT transaction (plain_insert and the fill).",
)
@click.option(
    "--post-batch",
    type=click.IntRange(1, 10_000),
    default=1000,
    show_default=True,
    help="Entries per escrow.journal.post_many transaction (post).",
)
@click.option(
    "--single-entries",
    type=click.IntRange(0, 100_000_000),
    default=None,
    help="Entries posted one per transaction for reference [default: a tenth of --entries, at most 2000].",
)
@click.option("--seed", type=int, default=2026, show_default=True, help="Seed of the scratch data.")
@repeat_option(help="Interleaved rounds of verify and its baselines.")
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
def ledger_command(
    entries: int,
    postings: int,
    bidders: int,
    concurrency: int,
    batch: int,
    post_batch: int,
    single_entries: int | None,
    seed: int,
    repeat: int,
    database_url: str | None,
    admin_url: str,
) -> None:
    """The deposit ledger: posting and verifying, each next to a plain SQL baseline.

    Entries/s through escrow.journal.post_many (and, for reference, one entry per transaction)
    next to a plain batched insert of the same rows, and `ggzy verify ledger` on a journal of --postings
    postings next to one SQL pass recomputing its hashes, interleaved round after round."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    plan = Plan(
        entries,
        postings,
        bidders,
        concurrency,
        batch,
        seed,
        database_url,
        admin_url,
        post_batch,
        single_entries,
        repeat,
    )
    problems = asyncio.run(run_ledger(plan, err))
    if problems:
        err.print(f"[red]{problems} problem(s): refused entries, wrong counts or failed checks[/]")
        raise SystemExit(1)
