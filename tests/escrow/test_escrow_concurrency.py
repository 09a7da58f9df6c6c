"""Two workers at once on PostgreSQL: each in its own transaction on its own connection, released together
by a barrier (or, where one interleaving matters, driven into it by waiting until one of them is blocked
on the other's lock). Refund batches made at once instruct every due refund exactly once, and each is paid
once when the bank's results come; the same results imported at once post each refund once; the same
statement imported at once matches each line once and the balances are right. `verify` passes after each.

SQLite serialises writers at BEGIN IMMEDIATE, so these races exist only on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from escrow import batches, intake, journal, ledger, refunds, sandbox, subaccounts
from escrow.models import Deposit, Obligation, RefundInstruction
from rules.calendar import WorkingCalendar, local_date
from storage.clock import SettableClock
from storage.db import transaction
from storage.objects import LocalObjectStore
from tests.conftest import PG_URL, Database
from tests.escrow.fixtures_escrow import (
    SIGNER,
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

pytestmark = [
    pytest.mark.skipif(
        not PG_URL, reason="the races need PostgreSQL's row locks: set GGZY_TEST_DATABASE_URL to run them"
    ),
    pytest.mark.parametrize("database", ["postgresql"], indirect=True),
]

T = TypeVar("T")
DEPOSIT = 2_000_000
BIDDERS = 8
ROUNDS = 5
CAL = WorkingCalendar()


async def both(work: Callable[[AsyncSession], Awaitable[T]], sm: async_sessionmaker[AsyncSession]) -> list[T]:
    """`work` twice at once, each in its own transaction on its own connection, let go together; both must
    succeed."""
    barrier = asyncio.Barrier(2)

    async def worker() -> T:
        async with transaction(sm) as session:
            await session.execute(text("SELECT 1"))  # the transaction and its connection are open
            await barrier.wait()
            return await work(session)

    out = await asyncio.gather(worker(), worker(), return_exceptions=True)
    failed = [o for o in out if isinstance(o, BaseException)]
    if failed:
        raise BaseExceptionGroup("a worker failed", failed)
    return [o for o in out if not isinstance(o, BaseException)]


async def books_are_sound(sm: async_sessionmaker[AsyncSession], clock: SettableClock) -> None:
    async with transaction(sm, read_only=True) as s:
        assert await failing_checks(s, CAL, clock.now()) == {}
        assert await half_written(s) == []
        assert max((await paid_per_obligation(s)).values(), default=0) <= 1
        assert max((await refunds_per_account(s)).values(), default=0) <= 1


async def paid_in(
    sm: async_sessionmaker[AsyncSession], store: LocalObjectStore, clock: SettableClock, name: str
) -> Trade:
    """A lot whose bidders have all paid their deposit."""
    async with transaction(sm) as s:
        trade = await open_trade(s, clock.now(), [DEPOSIT], BIDDERS)
    credits = [
        payment(f"{name}-{n}", d.virtual_number, DEPOSIT, trade.payer(d), local_date(clock.now()))
        for n, d in enumerate(trade.deposits)
    ]
    async with transaction(sm) as s:
        out = await intake.import_statement(
            s, store, None, statement(name, clock.now(), credits), "camt053", clock.now(), signer=SIGNER
        )
        assert out.matched == BIDDERS
    return trade


async def withdrawn(
    sm: async_sessionmaker[AsyncSession], store: LocalObjectStore, clock: SettableClock, name: str
) -> Trade:
    """… and have all withdrawn (W-05): a refund due for each."""
    trade = await paid_in(sm, store, clock, name)
    async with transaction(sm) as s:
        for d in trade.deposits:
            await refunds.on_withdrawal(
                s, d.lot_id, d.organisation_id, "W-05", local_date(clock.now()), CAL, clock.now()
            )
    return trade


async def pay_all(sm: async_sessionmaker[AsyncSession], clock: SettableClock, e2e: list[str]) -> None:
    content = sandbox.results("R", clock.now(), e2e)
    async with transaction(sm) as s:
        assert (
            await batches.import_results(s, None, content, "pain002", clock.now(), signer=SIGNER)
        ).paid == len(e2e)


async def test_two_workers_batching_at_once_instruct_each_refund_once(
    database: Database, clock: SettableClock, tmp_path: Path
) -> None:
    sm, store = database.sessionmaker, local_store(tmp_path, clock.now)
    for n in range(ROUNDS):
        await withdrawn(sm, store, clock, f"S{n}")
        made = await both(lambda s: batches.create_batch(s, None, clock.now(), signer=SIGNER), sm)
        async with transaction(sm, read_only=True) as s:
            due = set(await s.scalars(select(Obligation.id).where(Obligation.status == "due")))
            live = Counter(await s.scalars(select(RefundInstruction.obligation_id)))
        assert due == set() and set(live.values()) == {1} and len(live) == BIDDERS * (n + 1)
        assert sum(len(m.instructions) for m in made) == BIDDERS
        await books_are_sound(sm, clock)
        await pay_all(sm, clock, [i.end_to_end_id for m in made for i in m.instructions])
    await books_are_sound(sm, clock)
    async with transaction(sm, read_only=True) as s:
        assert set((await paid_per_obligation(s)).values()) == {1}


async def test_a_worker_batching_the_refunds_another_left_gets_its_own_batch(
    database: Database, clock: SettableClock, tmp_path: Path
) -> None:
    sm = database.sessionmaker
    trade = await withdrawn(sm, local_store(tmp_path, clock.now), clock, "S1")

    async def batch(limit: int) -> batches.BatchResult:
        async with transaction(sm) as s:
            return await batches.create_batch(s, None, clock.now(), limit=limit, signer=SIGNER)

    # the test holds the deposits, so the first worker stops after opening its batch, before posting
    async with database.engine.connect() as held:
        ids = [d.id for d in trade.deposits]
        await held.execute(select(Deposit.id).where(Deposit.id.in_(ids)).with_for_update())
        first = asyncio.create_task(batch(BIDDERS // 2))
        await lock_waiter(database.url, lambda: not first.done())
        second = asyncio.create_task(batch(BIDDERS))
        await lock_waiter(database.url, lambda: not second.done(), waiting=2)
        await held.rollback()
    early, late = await first, await second
    assert early.batch is not None and late.batch is not None
    assert (len(early.instructions), len(late.instructions)) == (BIDDERS // 2, BIDDERS // 2)
    assert early.batch.number != late.batch.number
    await books_are_sound(sm, clock)


async def test_two_workers_importing_the_same_results_post_each_refund_once(
    database: Database, clock: SettableClock, tmp_path: Path
) -> None:
    sm = database.sessionmaker
    await withdrawn(sm, local_store(tmp_path, clock.now), clock, "S1")
    async with transaction(sm) as s:
        made = await batches.create_batch(s, None, clock.now(), signer=SIGNER)
    e2e = [i.end_to_end_id for i in made.instructions]
    refused = e2e[0]
    content = sandbox.results("R1", clock.now(), e2e, {refused: "AC04"})
    out = await both(
        lambda s: batches.import_results(s, None, content, "pain002", clock.now(), signer=SIGNER), sm
    )
    assert sorted((o.paid, o.failed, o.unchanged, o.problems) for o in out) == [
        (0, 0, BIDDERS, []),
        (BIDDERS - 1, 1, 0, []),
    ]
    async with transaction(sm, read_only=True) as s:
        statuses = dict(
            (await s.execute(select(RefundInstruction.end_to_end_id, RefundInstruction.status))).all()
        )
        assert statuses == {e: "failed" if e == refused else "paid" for e in e2e}
        refunds = await refunds_per_account(s)
        assert sorted(refunds.values()) == [1] * (BIDDERS - 1)
        assert (await journal.balance(s, journal.BANK)).pending == 0
    await books_are_sound(sm, clock)


async def test_two_workers_importing_the_same_statement_match_each_line_once(
    database: Database, clock: SettableClock, tmp_path: Path
) -> None:
    sm, store = database.sessionmaker, local_store(tmp_path, clock.now)
    async with transaction(sm) as s:
        trade = await open_trade(s, clock.now(), [DEPOSIT], BIDDERS)
    day = local_date(clock.now())
    credits = [
        payment(f"P{n}", d.virtual_number, DEPOSIT, trade.payer(d), day) for n, d in enumerate(trade.deposits)
    ]
    credits.append(
        payment("P-short", trade.deposits[0].virtual_number, DEPOSIT - 100, "6228000000000001", day)
    )
    content = statement("STMT-1", clock.now(), credits)
    out = await both(
        lambda s: intake.import_statement(s, store, None, content, "camt053", clock.now(), signer=SIGNER), sm
    )
    assert sorted((o.replay, o.new_lines, o.matched, o.suspense) for o in out) == [
        (False, BIDDERS + 1, BIDDERS, 1),
        (True, 0, 0, 0),
    ]
    await _balances_after_one_intake(sm, trade)
    await books_are_sound(sm, clock)


async def test_two_workers_importing_the_same_lines_in_two_files_match_each_line_once(
    database: Database, clock: SettableClock, tmp_path: Path
) -> None:
    """The day's statement and a re-sent one (another file, the same bank references) at once."""
    sm, store = database.sessionmaker, local_store(tmp_path, clock.now)
    async with transaction(sm) as s:
        trade = await open_trade(s, clock.now(), [DEPOSIT], BIDDERS)
    day = local_date(clock.now())
    credits = [
        payment(f"P{n}", d.virtual_number, DEPOSIT, trade.payer(d), day) for n, d in enumerate(trade.deposits)
    ]
    credits.append(
        payment("P-short", trade.deposits[0].virtual_number, DEPOSIT - 100, "6228000000000001", day)
    )
    files = iter(
        [statement("STMT-1", clock.now(), credits), statement("STMT-1-resent", clock.now(), credits)]
    )

    async def take(s: AsyncSession) -> intake.ImportResult:
        return await intake.import_statement(
            s, store, None, next(files), "camt053", clock.now(), signer=SIGNER
        )

    out = await both(take, sm)
    assert sorted((o.replay, o.new_lines, o.already_known, o.matched, o.suspense) for o in out) == [
        (False, 0, BIDDERS + 1, 0, 0),
        (False, BIDDERS + 1, 0, BIDDERS, 1),
    ]
    await _balances_after_one_intake(sm, trade)
    await books_are_sound(sm, clock)


async def _balances_after_one_intake(sm: async_sessionmaker[AsyncSession], trade: Trade) -> None:
    async with transaction(sm, read_only=True) as s:
        for d in trade.deposits:
            assert await journal.balance(s, d.account_code) == ledger.Balance(-DEPOSIT, 0)
        assert await journal.balance(s, subaccounts.SUSPENSE) == ledger.Balance(-(DEPOSIT - 100), 0)
        assert await journal.balance(s, journal.BANK) == ledger.Balance(BIDDERS * DEPOSIT + DEPOSIT - 100, 0)


async def test_a_statement_confirming_a_refund_while_its_results_are_imported_is_taken_in(
    database: Database, clock: SettableClock, tmp_path: Path
) -> None:
    sm, store = database.sessionmaker, local_store(tmp_path, clock.now)
    await withdrawn(sm, store, clock, "S1")
    async with transaction(sm) as s:
        made = await batches.create_batch(s, None, clock.now(), signer=SIGNER)
    ins = made.instructions[0]
    day: date = local_date(clock.now())
    debit = statement("STMT-2", clock.now(), [refund_debit("D1", ins.end_to_end_id, ins.amount_fen, day)])
    results = sandbox.results("R1", clock.now(), [ins.end_to_end_id])
    # the test holds the ledger's head: the results stop before posting, the statement behind them
    async with database.engine.connect() as held:
        await held.execute(text("SELECT sequence FROM ledger_head WHERE id = 1 FOR UPDATE"))

        async def confirm() -> batches.ResultsImport:
            async with transaction(sm) as s:
                return await batches.import_results(s, None, results, "pain002", clock.now(), signer=SIGNER)

        async def show() -> intake.ImportResult:
            async with transaction(sm) as s:
                return await intake.import_statement(
                    s, store, None, debit, "camt053", clock.now(), signer=SIGNER
                )

        first = asyncio.create_task(confirm())
        await lock_waiter(database.url, lambda: not first.done())
        late = asyncio.create_task(show())
        await lock_waiter(database.url, lambda: not late.done(), waiting=2)
        await held.rollback()
    assert (await first).paid == 1
    out = await late
    assert (out.new_lines, out.refunds_confirmed, out.conflicts) == (1, 0, [])
    await books_are_sound(sm, clock)
