"""`journal.post_many` on both databases: a bank statement's lines or a refund batch appended in one
transaction — in order, gapless, chained, idempotent per entry, all or nothing, with the problem naming
the entry that refused the batch."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any

import pytest
from sqlalchemy import func, select

from escrow import journal, ledger
from escrow.journal import BANK, Request
from escrow.models import AccountBalance, JournalEntry
from storage.db import transaction
from storage.problems import Conflict, NotFound, ValidationProblem

BIDDERS = tuple(f"deposit:T1:L1:bidder-{c}" for c in "abcd")
AMOUNT = 80_000_000


async def open_accounts(sm: Any, now: Any) -> None:
    async with transaction(sm) as session:
        await journal.ensure_account(session, BANK, "bank", now)
        for bidder in BIDDERS:
            await journal.ensure_account(session, bidder, "deposit", now)


def received(key: str, bidder: str = BIDDERS[0], amount: int = AMOUNT) -> ledger.EntryDraft:
    return ledger.EntryDraft(
        "deposit_received",
        (ledger.Posting(BANK, amount), ledger.Posting(bidder, -amount)),
        key,
        {"tender": "T1", "lot": "1", "bidder": bidder, "statement_line": key},
        "job:statement-import",
        ledger.Party("payer", "6222020100000001", "乙公司", "中国工商银行南京分行"),
    )


def refund(key: str, bidder: str = BIDDERS[0], amount: int = AMOUNT) -> ledger.EntryDraft:
    return ledger.EntryDraft(
        "refund_instructed",
        (ledger.Posting(bidder, amount), ledger.Posting(BANK, -amount)),
        key,
        {"tender": "T1", "lot": "1", "bidder": bidder},
        "job:refund-batch",
        ledger.Party("payee", "6222020100000001", "乙公司", "中国工商银行南京分行"),
    )


def statement(n: int, prefix: str = "stmt-1:line") -> list[Request]:
    return [Request(received(f"{prefix}-{i:04d}", BIDDERS[i % 4], 1_000 + i)) for i in range(n)]


async def count(sm: Any) -> int:
    async with transaction(sm, read_only=True) as session:
        return int(await session.scalar(select(func.count()).select_from(JournalEntry)) or 0)


async def verified(sm: Any) -> set[str]:
    async with transaction(sm, read_only=True) as session:
        return {c.name for c in await journal.verify(session) if not c.ok}


async def test_a_statement_is_appended_in_order_chained_and_balanced(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        first = await journal.post(session, received("stmt-0:line-0001"), now)
        posted = await journal.post_many(session, statement(300), now)
    assert [p.entry.sequence for p in posted] == list(range(2, 302))
    assert not any(p.replay for p in posted)
    assert posted[0].entry.previous_hash == first.entry.hash
    assert all(a.entry.hash == b.entry.previous_hash for a, b in itertools.pairwise(posted))
    async with transaction(sm, read_only=True) as session:
        assert await journal.balance(session, BANK) == ledger.Balance(
            AMOUNT + sum(1_000 + i for i in range(300)), 0
        )
        assert await journal.balance(session, BIDDERS[1]) == ledger.Balance(
            -sum(1_000 + i for i in range(1, 300, 4)), 0
        )
        stored = await journal.entry(session, 301)
        assert (stored.hash, stored.context["statement_line"]) == (posted[-1].entry.hash, "stmt-1:line-0299")
    assert await verified(sm) == set()


async def test_the_same_statement_again_replays_every_line_and_a_longer_one_adds_only_the_new(
    runtime: Any,
) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        first = await journal.post_many(session, statement(5), now)
    async with transaction(sm) as session:
        again = await journal.post_many(session, statement(5), now)
    assert [p.replay for p in again] == [True] * 5
    assert [p.entry.sequence for p in again] == [p.entry.sequence for p in first]
    assert [p.postings for p in again] == [p.postings for p in first]
    async with transaction(sm) as session:
        longer = await journal.post_many(session, statement(8), now)
    assert [p.replay for p in longer] == [True] * 5 + [False] * 3
    assert [p.entry.sequence for p in longer] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert await count(sm) == 8


async def test_a_line_repeated_in_one_batch_is_a_replay_of_its_first(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    requests = statement(3)
    async with transaction(sm) as session:
        posted = await journal.post_many(session, [*requests, requests[1]], now)
    assert [p.entry.sequence for p in posted] == [1, 2, 3, 2]
    assert [p.replay for p in posted] == [False, False, False, True]
    async with transaction(sm, read_only=True) as session:
        assert await journal.balance(session, BIDDERS[1]) == ledger.Balance(-1_001, 0)


async def test_a_key_reused_for_another_request_refuses_the_batch_and_names_the_entry(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        await journal.post(session, received("stmt-1:line-0001"), now)
    requests = [*statement(2, "stmt-2:line"), Request(received("stmt-1:line-0001", amount=AMOUNT + 1))]
    with pytest.raises(Conflict) as refused:
        async with transaction(sm) as session:
            await journal.post_many(session, requests, now)
    assert refused.value.errors == [{"field": "idempotency_key", "message": "reused with another request"}]
    assert refused.value.extra == {"entry": 2}
    assert refused.value.detail.startswith("Entry 3 of 3 (stmt-1:line-0001): ")
    assert await count(sm) == 1
    inside = [*statement(2, "stmt-3:line"), Request(received("stmt-3:line-0000", amount=7))]
    with pytest.raises(Conflict) as refused:
        async with transaction(sm) as session:
            await journal.post_many(session, inside, now)
    assert refused.value.extra == {"entry": 2}


async def test_an_overdraft_anywhere_refuses_the_whole_batch(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        await journal.post(session, received("stmt-1:line-0001"), now)
    batch = [
        Request(refund("refund-0001", amount=AMOUNT // 2), ledger.Phase.PENDING),
        Request(received("stmt-2:line-0001", BIDDERS[1])),
        Request(
            refund("refund-0002", amount=AMOUNT // 2 + 1), ledger.Phase.PENDING
        ),  # the rest, and one fen more
    ]
    with pytest.raises(Conflict) as refused:
        async with transaction(sm) as session:
            await journal.post_many(session, batch, now)
    assert refused.value.errors == [{"field": "postings", "message": "overdraft"}]
    assert refused.value.extra == {"entry": 2}
    assert "refund-0002" in refused.value.detail and BIDDERS[0] in refused.value.detail
    assert await count(sm) == 1
    async with transaction(sm, read_only=True) as session:
        assert await journal.balance(session, BIDDERS[0]) == ledger.Balance(-AMOUNT, 0)


async def test_a_malformed_entry_or_an_unknown_account_is_named(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    bad = dataclasses.replace(
        received("bad-line-1"), postings=(ledger.Posting(BANK, 5), ledger.Posting(BIDDERS[0], -4))
    )
    with pytest.raises(ValidationProblem) as refused:
        async with transaction(sm) as session:
            await journal.post_many(session, [*statement(2), Request(bad)], now)
    assert (refused.value.errors, refused.value.extra["entry"]) == (
        [{"field": "postings", "message": "entry.unbalanced"}],
        2,
    )
    stranger = received("stmt-9:line-0001", "deposit:T9:L1:nobody")
    with pytest.raises(ValidationProblem) as refused:
        async with transaction(sm) as session:
            await journal.post_many(session, [*statement(2), Request(stranger)], now)
    assert refused.value.errors == [{"field": "postings", "message": "account.unknown"}]
    assert refused.value.extra["entry"] == 2
    with pytest.raises(ValidationProblem) as refused:
        async with transaction(sm) as session:
            await journal.post_many(session, [Request(received("stmt-9:line-0002"), "voided")], now)
    assert refused.value.errors == [{"field": "postings", "message": "phase.unknown"}]
    assert await count(sm) == 0


async def test_a_batch_of_bank_results_resolves_each_reservation_once(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        await journal.post_many(
            session, [Request(received(f"stmt-1:line-{i}", b)) for i, b in enumerate(BIDDERS)], now
        )
        instructed = await journal.post_many(
            session,
            [Request(refund(f"refund-{i:04d}", b), ledger.Phase.PENDING) for i, b in enumerate(BIDDERS)],
            now,
        )

    def result(p: journal.Posted, ok: bool, key: str) -> Request:
        original = p.entry
        d = ledger.EntryDraft(
            "refund_confirmed" if ok else "refund_failed",
            p.postings,
            key,
            {**original.context, "resolves": str(original.sequence)},
            "job:bank-result",
        )
        return Request(d, ledger.Phase.POSTED if ok else ledger.Phase.VOIDED, original.sequence)

    results = [result(p, i != 2, f"result-{i:04d}") for i, p in enumerate(instructed)]
    async with transaction(sm) as session:
        done = await journal.post_many(session, results, now)
    assert [p.entry.resolves for p in done] == [p.entry.sequence for p in instructed]
    async with transaction(sm, read_only=True) as session:
        assert await journal.balance(session, BIDDERS[0]) == ledger.Balance(0, 0)
        assert await journal.balance(session, BIDDERS[2]) == ledger.Balance(-AMOUNT, 0)  # failed: held again
    with pytest.raises(Conflict) as refused:
        async with transaction(sm) as session:
            await journal.post_many(session, [result(instructed[0], True, "result-again")], now)
    assert (
        refused.value.detail
        == f"Entry {instructed[0].entry.sequence} was already resolved by entry {done[0].entry.sequence}."
    )
    async with transaction(sm) as session:
        again = await journal.post_many(session, results, now)  # the bank's file read twice
    assert all(p.replay for p in again)
    assert await verified(sm) == set()


async def test_a_resolution_is_refused_twice_in_one_batch_or_with_other_postings(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        await journal.post(session, received("stmt-1:line-0001"), now)
        pending = await journal.post(session, refund("refund-0001"), now, phase=ledger.Phase.PENDING)
    n = pending.entry.sequence
    context = {**pending.entry.context, "resolves": str(n)}
    posted = ledger.EntryDraft("refund_confirmed", pending.postings, "result-0001", context, "job:bank")
    voided = ledger.EntryDraft("refund_failed", pending.postings, "result-0002", context, "job:bank")
    with pytest.raises(Conflict) as refused:
        async with transaction(sm) as session:
            await journal.post_many(
                session, [Request(posted, "posted", n), Request(voided, "voided", n)], now
            )
    assert (
        refused.value.detail
        == f"Entry 2 of 2 (result-0002): Entry {n} was already resolved by entry 1 of this batch."
    )
    other = ledger.EntryDraft(
        "refund_confirmed", refund("x", amount=1).postings, "result-0003", context, "job:bank"
    )
    with pytest.raises(ValidationProblem) as invalid:
        async with transaction(sm) as session:
            await journal.post_many(session, [Request(other, "posted", n)], now)
    assert invalid.value.errors == [{"field": "postings", "message": "resolution.postings"}]
    unnamed = ledger.EntryDraft("refund_confirmed", pending.postings, "result-0004", {}, "job:bank")
    with pytest.raises(ValidationProblem) as invalid:
        async with transaction(sm) as session:
            await journal.post_many(session, [Request(unnamed, "posted", n)], now)
    assert invalid.value.errors == [{"field": "context", "message": "resolution.context"}]
    with pytest.raises(NotFound):
        async with transaction(sm) as session:
            await journal.post_many(session, [Request(posted, "posted", 99)], now)
    with pytest.raises(Conflict):
        async with transaction(sm) as session:
            await journal.post_many(session, [Request(posted, "posted", 1)], now)  # a posted entry
    assert await count(sm) == 2


async def test_balances_the_session_already_read_are_current_after_a_batch(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        assert await journal.balance(session, BANK) == ledger.Balance(0, 0)
        await journal.post_many(session, statement(4), now)
        assert await journal.balance(session, BANK) == ledger.Balance(sum(1_000 + i for i in range(4)), 0)
        entry = await journal.entry(session, 4)
        assert entry.context["statement_line"] == "stmt-1:line-0003"


async def test_concurrent_batches_keep_the_sequence_gapless_and_the_chain_whole(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)

    async def one(i: int) -> None:
        async with transaction(sm) as session:
            await journal.post_many(session, statement(25, f"stmt-{i}:line"), now)

    await asyncio.gather(*(one(i) for i in range(6)))
    assert await count(sm) == 150
    assert await verified(sm) == set()


async def test_an_empty_batch_answers_nothing_and_writes_nothing(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    async with transaction(sm) as session:
        assert await journal.post_many(session, [], now) == []
    assert await count(sm) == 0


async def test_an_account_code_on_two_lines_is_refused(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    with pytest.raises(ValidationProblem):
        async with transaction(sm) as session:
            await journal.ensure_account(session, "deposit:T1\nL1", "deposit", now)


async def test_a_batch_in_a_savepoint_rolled_back_leaves_no_figures_in_the_session(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        assert await journal.balance(session, BANK) == ledger.Balance(0, 0)  # the row is now in the session
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                await journal.post_many(session, statement(3), now)
                assert await journal.balance(session, BANK) == ledger.Balance(3_003, 0)
                raise RuntimeError("a later step of the same use case fails")
        assert await journal.balance(session, BANK) == ledger.Balance(0, 0)
        held = {row.account_code: row.posted for row in await session.scalars(select(AccountBalance))}
        assert set(held.values()) == {0}
        posted = await journal.post(session, received("stmt-2:line-0001"), now)
        assert posted.entry.sequence == 1
    assert await verified(sm) == set()
