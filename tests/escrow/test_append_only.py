"""On PostgreSQL the ledger's append-only tables refuse UPDATE and DELETE by trigger (migration 0011):
journal entries, postings, signed heads, approved payee changes and the dated rate tables. Nothing in the
product edits them (the whole suite runs on PostgreSQL with the triggers on); a correction is a new row."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from escrow import forfeiture, journal, ledger, published
from escrow.models import JournalEntry, PayeeChange, SignedLedgerHead
from storage.db import transaction
from tests.conftest import Database
from tests.escrow.fixtures_escrow import SIGNER, open_trade

APPEND_ONLY = {
    "journal_entries": "sequence",
    "postings": "sequence",
    "ledger_signed_heads": "sequence",
    "payee_changes": "id",
    "interest_rates": "id",
}


async def _one_of_each(database: Database) -> None:
    """A deposit's arrival (entry and postings), an approved change of payee (a memo, its row, a signed
    head) and a rate."""
    from datetime import UTC, datetime

    now = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    async with transaction(database.sessionmaker) as session:
        trade = await open_trade(session, now, [1_000_000], 1)
        deposit = trade.deposits[0]
        await journal.post(
            session,
            ledger.EntryDraft(
                "deposit_received",
                (ledger.Posting(journal.BANK, 1_000_000), ledger.Posting(deposit.account_code, -1_000_000)),
                "append-only:line-1",
                {"deposit": str(deposit.id)},
                "job:test",
                ledger.Party("payer", "6222020100000001", "乙公司", "中国工商银行"),
            ),
            now,
        )
        await forfeiture.record_payee_change(
            session,
            trade.officer,
            deposit.id,
            payee_name="乙公司",
            payee_account="6222020100000002",
            payee_bank="中国银行",
            reason="原账户销户",
            approval="审批单 1",
            now=now,
            signer=SIGNER,
        )
    async with transaction(database.sessionmaker, read_only=True) as session:
        assert await session.scalar(select(func.count()).select_from(JournalEntry)) == 2
        assert await session.scalar(select(func.count()).select_from(PayeeChange)) == 1
        assert await session.scalar(select(func.count()).select_from(SignedLedgerHead)) == 1


@pytest.mark.parametrize("table", sorted(APPEND_ONLY))
@pytest.mark.parametrize("statement", ["UPDATE {table} SET {column} = {column}", "DELETE FROM {table}"])
async def test_the_append_only_tables_refuse_updates_and_deletes_on_postgresql(
    database: Database, table: str, statement: str
) -> None:
    if database.backend != "postgresql":
        pytest.skip("SQLite, the single-user embedded default, carries no triggers")
    await _one_of_each(database)
    sql = statement.format(table=table, column=APPEND_ONLY[table])
    with pytest.raises(DBAPIError, match=f"ggzy: {table} is append-only"):
        async with transaction(database.sessionmaker) as session:
            await session.execute(text(sql))
    async with transaction(database.sessionmaker, read_only=True) as session:
        assert await session.scalar(text(f"SELECT count(*) FROM {table}")) >= 1  # noqa: S608 - fixed names


async def test_the_ledger_still_appends_and_verifies_under_the_triggers(database: Database) -> None:
    await _one_of_each(database)
    async with transaction(database.sessionmaker, read_only=True) as session:
        checks = await journal.verify(session)
        signed = await published.check_signed(session, SIGNER.public_raw)
    assert [c.name for c in checks if not c.ok] == []
    # the arrival was written around the service (no head of its own); the payee change's head covers it
    assert signed.ok, signed.detail
