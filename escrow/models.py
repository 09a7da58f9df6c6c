"""Tables of the escrow package: ledger accounts, the journal (entries and postings), and balances."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, IdMixin


class LedgerAccount(IdMixin, Base):
    """An account of the deposit ledger: the escrow bank account, a bidder's deposit sub-account for one
    tender/lot (with its virtual account number, 虚拟子账号), suspense, interest, forfeited, refunds in transit."""

    __tablename__ = "ledger_accounts"

    code: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    may_go_negative: Mapped[bool] = mapped_column(default=False)
    tender_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenders.id"), index=True)
    lot_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("lots.id"))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    virtual_number: Mapped[str | None] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime]


class LedgerHead(Base):
    """The one row every posting locks: the journal's last sequence number and hash."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class JournalEntry(Base):
    """One journal entry, numbered without gaps and chained by hash; never edited or deleted.

    `phase`: posted, or pending (a reservation, e.g. a refund instructed to the bank). A pending entry is
    resolved at most once by a later entry of phase posted or voided whose `resolves` names it."""

    __tablename__ = "journal_entries"
    __table_args__ = (Index("ix_journal_entries_at", "at"),)

    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(40))
    phase: Mapped[str] = mapped_column(String(10))
    resolves: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(80))
    context: Mapped[dict[str, Any]]
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Posting(Base):
    """One leg of an entry: a signed amount in fen on one account (debit positive, credit negative)."""

    __tablename__ = "postings"
    __table_args__ = (Index("ix_postings_account", "account_code", "sequence"),)

    sequence: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("journal_entries.sequence"), primary_key=True, autoincrement=False
    )
    leg: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    account_code: Mapped[str] = mapped_column(String(120), ForeignKey("ledger_accounts.code"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)


class AccountBalance(Base):
    """An account's balance, updated in the same transaction as its postings (signed debit − credit)."""

    __tablename__ = "account_balances"

    account_code: Mapped[str] = mapped_column(
        String(120), ForeignKey("ledger_accounts.code"), primary_key=True
    )
    posted: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
