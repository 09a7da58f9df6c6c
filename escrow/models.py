"""Tables of the escrow package: the ledger (accounts, journal entries, postings, balances, signed heads)
and the deposits it holds (sub-accounts, bank statements, lines and their conflicts, guarantees,
eligibility, rates, refund obligations, batches and instructions, payee changes, forfeitures).

On PostgreSQL the append-only tables (journal entries, postings, signed heads, payee changes, rates)
refuse UPDATE and DELETE by trigger (migration 0011): a correction is a new row, never an edit."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint
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
    resolved at most once by a later entry of phase posted or voided whose `resolves` names it.
    `scheme`: the hash scheme (`escrow.ledger`): 3 hashes the party (`party_*`: the payer of money taken
    in, the payee of a refund or of an approved change); 2, the older one, names none (the party columns
    are NULL)."""

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
    scheme: Mapped[int] = mapped_column(SmallInteger)
    party_role: Mapped[str | None] = mapped_column(String(10))
    party_account: Mapped[str | None] = mapped_column(String(60))
    party_name: Mapped[str | None] = mapped_column(String(200))
    party_bank: Mapped[str | None] = mapped_column(String(200))


class SignedLedgerHead(Base):
    """A head of the journal signed with the platform's log key (`escrow/heads.py`): after every batch
    that moved money, in the same transaction, and at least hourly. `cause` says which (statement,
    refund batch, results, …, hourly); it is not signed and not published."""

    __tablename__ = "ledger_signed_heads"

    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entries: Mapped[int] = mapped_column(BigInteger)
    chain_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(index=True)
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(88))
    cause: Mapped[str] = mapped_column(String(30))


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


# ---------------------------------------------------------------- deposits and the bank


class Deposit(IdMixin, Base):
    """One bidder's deposit position for one lot (投标保证金): its ledger sub-account and the virtual
    account number (虚拟子账号) it is paid into, the account it was paid from (refunds go back there), and
    why the money is still held."""

    __tablename__ = "deposits"
    __table_args__ = (UniqueConstraint("lot_id", "organisation_id"),)

    account_code: Mapped[str] = mapped_column(String(120), ForeignKey("ledger_accounts.code"), unique=True)
    virtual_number: Mapped[str] = mapped_column(String(40), unique=True)
    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lots.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    required_fen: Mapped[int] = mapped_column(BigInteger)
    opened_at: Mapped[datetime]
    received_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    first_arrived_on: Mapped[date | None]
    payer_name: Mapped[str | None] = mapped_column(String(200))
    payer_account: Mapped[str | None] = mapped_column(String(60), index=True)
    payer_bank: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="awaiting")
    hold_reason: Mapped[str] = mapped_column(Text, default="")


class BankStatement(IdMixin, Base):
    """One statement file (camt.053 or CSV) or one signed notification, as imported; the raw file is kept
    in the object store under its SHA-256, and importing the same file again changes nothing."""

    __tablename__ = "bank_statements"

    fmt: Mapped[str] = mapped_column(String(20))
    bank_statement_id: Mapped[str | None] = mapped_column(String(120))
    account: Mapped[str | None] = mapped_column(String(60))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    object_key: Mapped[str | None] = mapped_column(String(300))
    imported_at: Mapped[datetime]
    imported_by: Mapped[str] = mapped_column(String(80))
    lines: Mapped[int] = mapped_column(default=0)
    new_lines: Mapped[int] = mapped_column(default=0)
    summary: Mapped[dict[str, Any]]


class BankLine(IdMixin, Base):
    """One bank line, known by the bank's own reference: whichever statement or notification brings it
    first records it, and every later sighting changes nothing (each line is matched at most once)."""

    __tablename__ = "bank_lines"

    reference: Mapped[str] = mapped_column(String(120), unique=True)
    statement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bank_statements.id"), index=True)
    direction: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(20))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    booked_on: Mapped[date]
    value_on: Mapped[date | None]
    payer_name: Mapped[str | None] = mapped_column(String(200))
    payer_account: Mapped[str | None] = mapped_column(String(60))
    payer_bank: Mapped[str | None] = mapped_column(String(200))
    credited_account: Mapped[str | None] = mapped_column(String(60), index=True)
    remittance: Mapped[str | None] = mapped_column(Text)
    end_to_end_id: Mapped[str | None] = mapped_column(String(60), index=True)
    status: Mapped[str] = mapped_column(String(20))
    deposit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("deposits.id"), index=True)
    entry_sequence: Mapped[int | None] = mapped_column(BigInteger)
    resolved_by: Mapped[str | None] = mapped_column(String(80))
    resolved_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)


class BankLineConflict(IdMixin, Base):
    """A line the bank reported again under a known reference but with another amount, payer, date or
    account (对账差异): both versions kept in full, with the import that brought the later one (its file
    is in the object store), until a centre officer records which is right. Never dropped."""

    __tablename__ = "bank_line_conflicts"
    __table_args__ = (UniqueConstraint("line_id", "digest", name="uq_bank_line_conflicts_line_id_digest"),)

    line_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bank_lines.id"), index=True)
    reference: Mapped[str] = mapped_column(String(120))
    statement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bank_statements.id"))
    digest: Mapped[str] = mapped_column(String(64))  # of the later version: seen again, not a new conflict
    known: Mapped[dict[str, Any]]
    incoming: Mapped[dict[str, Any]]
    differences: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(10), default="open", index=True)
    detected_at: Mapped[datetime]
    decision: Mapped[str | None] = mapped_column(String(10))
    note: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(String(80))
    resolved_at: Mapped[datetime | None]
    entry_sequence: Mapped[int | None] = mapped_column(BigInteger)


class Guarantee(IdMixin, Base):
    """A non-cash deposit (保函 / 保证保险): counts toward eligibility once verified, moves no money, and is
    released (not refunded) at the moments a cash deposit would be refunded."""

    __tablename__ = "guarantees"
    __table_args__ = (UniqueConstraint("issuer", "number"),)

    deposit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deposits.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    issuer: Mapped[str] = mapped_column(String(200))
    number: Mapped[str] = mapped_column(String(80))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    valid_from: Mapped[date]
    valid_until: Mapped[date]
    status: Mapped[str] = mapped_column(String(20), default="submitted")
    submitted_at: Mapped[datetime]
    submitted_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    released_at: Mapped[datetime | None]
    release_rule: Mapped[str | None] = mapped_column(String(20))


class Eligibility(IdMixin, Base):
    """The answer escrow gave the trade at the deadline (or before a quote, L-05): was the deposit or a
    guarantee in place, when was that asked, as of which instant (`as_of`: the deadline, whenever the
    question ran), through which day a guarantee had to stay in force (the bid validity period), and the
    evidence escrow found (`escrow.eligibility.evidence`)."""

    __tablename__ = "deposit_eligibility"
    __table_args__ = (UniqueConstraint("deposit_id", "moment"),)

    deposit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deposits.id"))
    moment: Mapped[str] = mapped_column(String(20))
    checked_at: Mapped[datetime]
    eligible: Mapped[bool]
    cash_fen: Mapped[int] = mapped_column(BigInteger)
    guarantee_fen: Mapped[int] = mapped_column(BigInteger)
    required_fen: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(Text)
    as_of: Mapped[datetime | None]
    cover_through: Mapped[date | None]
    evidence: Mapped[dict[str, Any] | None]


class InterestRate(IdMixin, Base):
    """A row of the dated rate tables the centre maintains (M-02, M-03): the escrow bank's demand-deposit
    rate and the one-year LPR, each in force from its date until the next."""

    __tablename__ = "interest_rates"
    __table_args__ = (UniqueConstraint("kind", "effective_from"),)

    kind: Mapped[str] = mapped_column(String(20))
    effective_from: Mapped[date]
    annual_percent: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(Text)
    set_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    set_at: Mapped[datetime]


class Obligation(IdMixin, Base):
    """A duty to refund a deposit (or return a suspense line), created by a trade event with its legal due
    date and rule. `open_key` is set while the obligation is open, so a deposit has at most one open."""

    __tablename__ = "refund_obligations"

    deposit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("deposits.id"), index=True)
    line_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bank_lines.id"))
    open_key: Mapped[str | None] = mapped_column(String(60), unique=True)
    rule: Mapped[str] = mapped_column(String(20))
    event: Mapped[str] = mapped_column(String(40))
    event_on: Mapped[date]
    due_on: Mapped[date]
    interest_rule: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default="due")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(80))
    attempts: Mapped[int] = mapped_column(default=0)
    interest_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_on: Mapped[date | None]
    flagged_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)


class RefundBatch(IdMixin, Base):
    """One file of payment instructions for the bank; the file is rendered from the rows, so it can be
    exported again at any time and always reads the same."""

    __tablename__ = "refund_batches"

    number: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(80))
    execution_on: Mapped[date]
    count: Mapped[int]
    total_fen: Mapped[int] = mapped_column(BigInteger)


class RefundInstruction(IdMixin, Base):
    """One payment the bank is asked to make. `live_key` (the obligation) is set while the instruction is
    sent or paid, so an obligation never has two live payments: it cannot be paid twice."""

    __tablename__ = "refund_instructions"

    end_to_end_id: Mapped[str] = mapped_column(String(35), unique=True)
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("refund_batches.id"), index=True)
    obligation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("refund_obligations.id"), index=True)
    live_key: Mapped[uuid.UUID | None] = mapped_column(unique=True)
    account_code: Mapped[str] = mapped_column(String(120))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    interest_fen: Mapped[int] = mapped_column(BigInteger)
    payee_name: Mapped[str] = mapped_column(String(200))
    payee_account: Mapped[str] = mapped_column(String(60))
    payee_bank: Mapped[str] = mapped_column(String(200))
    payee_basis: Mapped[str] = mapped_column(String(120))
    pending_sequence: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default="sent")
    result_sequence: Mapped[int | None] = mapped_column(BigInteger)
    result_at: Mapped[datetime | None]
    paid_on: Mapped[date | None]
    failure_reason: Mapped[str | None] = mapped_column(Text)
    bank_reference: Mapped[str | None] = mapped_column(String(120))


class PayeeChange(IdMixin, Base):
    """An approved change of the account a deposit is refunded to (e.g. the payer's account was closed),
    recorded by a centre officer with the approval it rests on, and hashed into the journal as a
    `payee_changed` entry (`entry_sequence`), which is what a refund's payee is checked against."""

    __tablename__ = "payee_changes"

    deposit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deposits.id"), index=True)
    payee_name: Mapped[str] = mapped_column(String(200))
    payee_account: Mapped[str] = mapped_column(String(60))
    payee_bank: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    approval: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime]
    entry_sequence: Mapped[int | None] = mapped_column(BigInteger)


class Forfeiture(IdMixin, Base):
    """A proposal to keep a deposit (W-06, W-16), with its legal reason; money moves only once a
    supervisor approves it."""

    __tablename__ = "forfeitures"

    deposit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deposits.id"), index=True)
    open_key: Mapped[uuid.UUID | None] = mapped_column(unique=True)
    rule: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text)
    proposed_by: Mapped[str] = mapped_column(String(80))
    proposed_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default="proposed")
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    entry_sequence: Mapped[int | None] = mapped_column(BigInteger)
    # a refund event that came while the proposal was pending, applied if the proposal is rejected
    deferred_rule: Mapped[str | None] = mapped_column(String(20))
    deferred_event: Mapped[str | None] = mapped_column(String(40))
    deferred_on: Mapped[date | None]
