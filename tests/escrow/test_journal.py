"""The deposit ledger on the database (SQLite and PostgreSQL): posting, idempotency, overdraft, two-phase
entries, reversals, the trial balance and the invariant checker, including tampering found by it."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from escrow import journal, ledger, published
from escrow.journal import BANK
from storage.db import transaction
from storage.problems import Conflict, ValidationProblem
from tests.conftest import Database

DEPOSIT = "deposit:T1:L1:bidder-a"
OTHER = "deposit:T1:L1:bidder-b"
TRANSIT = "refunds_in_transit"
AMOUNT = 80_000_000


async def open_accounts(sm: Any, now: Any) -> None:
    async with transaction(sm) as session:
        await journal.ensure_account(session, BANK, "bank", now)
        await journal.ensure_account(session, DEPOSIT, "deposit", now, virtual_number="6222000000000001")
        await journal.ensure_account(session, OTHER, "deposit", now, virtual_number="6222000000000002")
        await journal.ensure_account(session, TRANSIT, "refunds_in_transit", now)


def received(key: str, account: str = DEPOSIT, amount: int = AMOUNT) -> ledger.EntryDraft:
    return ledger.EntryDraft(
        "deposit_received",
        (ledger.Posting(BANK, amount), ledger.Posting(account, -amount)),
        key,
        {"tender": "T1", "lot": "1", "bidder": account},
        "job:statement-import",
        ledger.Party("payer", "6222020100000001", "乙公司", "中国工商银行南京分行"),
    )


def refund(key: str, account: str = DEPOSIT, amount: int = AMOUNT) -> ledger.EntryDraft:
    return ledger.EntryDraft(
        "refund_instructed",
        (ledger.Posting(account, amount), ledger.Posting(BANK, -amount)),
        key,
        {"tender": "T1", "lot": "1", "bidder": account},
        "job:refund-batch",
        ledger.Party("payee", "6222020100000001", "乙公司", "中国工商银行南京分行"),
    )


async def verified(sm: Any) -> dict[str, bool]:
    async with transaction(sm, read_only=True) as session:
        return {c.name: c.ok for c in await journal.verify(session)}


async def test_a_deposit_moves_money_and_the_ledger_verifies(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        posted = await journal.post(session, received("stmt-1:line-1"), now)
    assert posted.entry.sequence == 1 and not posted.replay
    async with transaction(sm) as session:
        assert await journal.balance(session, BANK) == ledger.Balance(AMOUNT, 0)
        assert await journal.balance(session, DEPOSIT) == ledger.Balance(-AMOUNT, 0)
    assert all((await verified(sm)).values())


async def test_the_same_key_replays_and_another_request_under_it_conflicts(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        first = await journal.post(session, received("stmt-1:line-1"), now)
    async with transaction(sm) as session:
        again = await journal.post(session, received("stmt-1:line-1"), now)
    assert again.replay and again.entry.sequence == first.entry.sequence
    with pytest.raises(Conflict):
        async with transaction(sm) as session:
            await journal.post(session, received("stmt-1:line-1", amount=AMOUNT + 1), now)
    async with transaction(sm) as session:
        assert await journal.balance(session, BANK) == ledger.Balance(AMOUNT, 0)


async def test_an_unbalanced_entry_is_refused_and_changes_nothing(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    bad = dataclasses.replace(
        received("bad-entry-1"), postings=(ledger.Posting(BANK, 5), ledger.Posting(DEPOSIT, -4))
    )
    with pytest.raises(ValidationProblem) as refused:
        async with transaction(sm) as session:
            await journal.post(session, bad, now)
    assert refused.value.errors == [{"field": "postings", "message": "entry.unbalanced"}]
    assert all((await verified(sm)).values())


async def test_a_refund_larger_than_the_deposit_is_an_overdraft(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        await journal.post(session, received("deposit-in-1"), now)
    with pytest.raises(Conflict) as refused:
        async with transaction(sm) as session:
            await journal.post(session, refund("refund-out-1", amount=AMOUNT + 1), now)
    assert refused.value.errors == [{"field": "postings", "message": "overdraft"}]


async def test_a_pending_refund_reserves_the_money_and_is_resolved_once(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        await journal.post(session, received("deposit-in-1"), now)
        pending = await journal.post(session, refund("refund-out-1"), now, phase=ledger.Phase.PENDING)
    # the reservation counts: a second refund of the same money is an overdraft
    with pytest.raises(Conflict):
        async with transaction(sm) as session:
            await journal.post(session, refund("refund-out-2"), now, phase=ledger.Phase.PENDING)
    async with transaction(sm) as session:
        failed = await journal.resolve(
            session,
            pending.entry.sequence,
            "voided",
            key="bank-result-1",
            reason="refund_failed",
            actor="job:x",
            now=now,
        )
    assert failed.entry.resolves == pending.entry.sequence
    with pytest.raises(Conflict):
        async with transaction(sm) as session:
            await journal.resolve(
                session,
                pending.entry.sequence,
                "posted",
                key="bank-result-2",
                reason="refund_confirmed",
                actor="job:x",
                now=now,
            )
    async with transaction(sm) as session:
        retry = await journal.post(session, refund("refund-out-3"), now, phase=ledger.Phase.PENDING)
        await journal.resolve(
            session,
            retry.entry.sequence,
            "posted",
            key="bank-result-3",
            reason="refund_confirmed",
            actor="job:x",
            now=now,
        )
        assert await journal.balance(session, DEPOSIT) == ledger.Balance(0, 0)
        assert await journal.balance(session, BANK) == ledger.Balance(0, 0)
    assert all((await verified(sm)).values())


async def test_a_reversal_corrects_without_editing(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        wrong = await journal.post(session, received("deposit-in-1", account=OTHER), now)
        back = await journal.reverse(
            session, wrong.entry.sequence, key="reversal-fix-1", actor="user:officer", now=now
        )
        await journal.post(session, received("deposit-in-2"), now)
        assert back.entry.reason == "reversal" and back.entry.context["reverses"] == str(wrong.entry.sequence)
        assert await journal.balance(session, OTHER) == ledger.Balance(0, 0)
    assert all((await verified(sm)).values())


async def test_the_trial_balance_at_a_past_instant(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        await journal.post(session, received("deposit-in-1"), now)
        await journal.post(session, received("deposit-in-2", account=OTHER), now + timedelta(days=1))
    async with transaction(sm, read_only=True) as session:
        before = {r["account"]: r for r in await journal.trial_balance(session, now + timedelta(hours=1))}
        after = await journal.trial_balance(session)
    assert before[BANK]["debit_fen"] == AMOUNT and before[OTHER]["credit_fen"] == 0
    assert sum(r["debit_fen"] for r in after) == sum(r["credit_fen"] for r in after) == 2 * AMOUNT


@pytest.mark.parametrize(
    ("tamper", "broken"),
    [
        (
            "UPDATE postings SET amount_fen = amount_fen + 1 WHERE sequence = 1 AND leg = 0",
            "every entry balances",
        ),
        ("UPDATE account_balances SET posted = posted + 1", "balances equal the sum of postings"),
        ("UPDATE journal_entries SET reason = 'forfeiture' WHERE sequence = 1", "hash chain intact"),
    ],
)
async def test_tampering_with_stored_rows_is_found(runtime: Any, tamper: str, broken: str) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        await journal.post(session, received("deposit-in-1"), now)
        await journal.post(session, received("deposit-in-2", account=OTHER), now)
    async with transaction(sm) as session:
        if session.get_bind().dialect.name == "postgresql":  # the owner switches the append-only triggers off
            await session.execute(text("SET LOCAL session_replication_role = replica"))
        await session.execute(text(tamper))
    results = await verified(sm)
    assert results[broken] is False, results


async def test_concurrent_postings_keep_the_sequence_gapless(runtime: Any, database: Database) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)

    async def one(i: int) -> None:
        async with transaction(sm) as session:
            await journal.post(session, received(f"deposit-in-{i:04d}", amount=1_000 + i), now)

    await asyncio.gather(*(one(i) for i in range(20)))
    async with transaction(sm, read_only=True) as session:
        sequences = [
            r[0] for r in (await session.execute(text("SELECT sequence FROM journal_entries ORDER BY 1")))
        ]
    assert sequences == list(range(1, 21))
    assert all((await verified(sm)).values())


async def test_auditors_verify_the_ledger_and_read_the_trial_balance_over_http(api: Any) -> None:
    sm, now = api.runtime.sessionmaker, api.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        await journal.post(session, received("deposit-in-1"), now)
        await published.seal(session, api.runtime.signer, now, "test")
    auditor = await api.organisation("auditor")
    r = await api.get("/api/v1/escrow/verify", auditor)
    assert r.status_code == 200 and r.json()["ok"] is True
    assert {c["name"] for c in r.json()["checks"]} >= {"hash chain intact", "every entry balances"}
    r = await api.get("/api/v1/escrow/trial-balance", auditor)
    assert r.json()["debit_fen"] == r.json()["credit_fen"] == AMOUNT
    r = await api.get("/api/v1/escrow/trial-balance", auditor, params={"at": "2020-01-01T00:00:00"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "at"
    bidder = await api.organisation("bidder")
    assert (await api.get("/api/v1/escrow/verify", bidder)).status_code == 403


def test_verify_ledger_on_the_command_line_passes_on_an_empty_ledger(tmp_path: Any, monkeypatch: Any) -> None:
    from click.testing import CliRunner

    from ggzy import cli as ggzy_cli
    from storage.migrate import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    upgrade(url)
    monkeypatch.setenv("GGZY_DATABASE_URL", url)
    monkeypatch.setenv("GGZY_VAR_DIR", str(tmp_path))
    result = CliRunner().invoke(ggzy_cli, ["verify", "ledger"])
    assert result.exit_code == 0, result.output
    assert "ok   hash chain intact" in result.output


async def test_an_entry_is_reversed_at_most_once(runtime: Any) -> None:
    sm, now = runtime.sessionmaker, runtime.clock.now()
    await open_accounts(sm, now)
    async with transaction(sm) as session:
        wrong = await journal.post(session, received("deposit-in-1"), now)
        back = await journal.reverse(
            session, wrong.entry.sequence, key="reversal-fix-1", actor="user:a", now=now
        )
    with pytest.raises(Conflict):
        async with transaction(sm) as session:
            await journal.reverse(
                session, wrong.entry.sequence, key="reversal-fix-2", actor="user:b", now=now
            )
    with pytest.raises(Conflict):
        async with transaction(sm) as session:
            await journal.reverse(session, back.entry.sequence, key="reversal-fix-3", actor="user:b", now=now)
    async with transaction(sm) as session:  # the same request again is a replay, not a second reversal
        again = await journal.reverse(
            session, wrong.entry.sequence, key="reversal-fix-1", actor="user:a", now=now
        )
    assert again.replay and again.entry.sequence == back.entry.sequence
    assert all((await verified(sm)).values())
