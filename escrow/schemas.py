"""Inputs of the escrow API (msgspec Structs; unknown fields are refused), and the shapes of the rows the
escrow services build for its answers and exports (`TypedDict`s: the services build plain dicts, these say
exactly which keys they hold). The answers the controllers shape are in `escrow/responses.py`.

Money is integer fen (分, 1/100 yuan) in fields named `*_fen`; instants are UTC in ISO 8601 / RFC 3339;
days are ISO dates in the trading centre's zone (Asia/Shanghai); ids are UUIDs as text."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal, TypedDict

import msgspec

PositiveFen = Annotated[int, msgspec.Meta(ge=1, le=10**15)]
Note = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
AccountNumber = Annotated[str, msgspec.Meta(min_length=4, max_length=60, pattern=r"^[0-9A-Za-z-]+$")]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for request bodies: an unknown field is an error."""


class GuaranteeIn(Strict):
    """A bank guarantee or guarantee insurance (保函 / 保证保险) lodged for a deposit: who issued it under which
    number, the amount it guarantees in integer fen (1/100 yuan), and the days (ISO dates) it is in force.
    It counts toward the deposit once the centre records the issuer's confirmation, and only if it stays in
    force through the bid validity period."""

    kind: Literal["bank_guarantee", "guarantee_insurance"]
    issuer: Name
    number: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    amount_fen: PositiveFen
    valid_from: date
    valid_until: date


class Decision(Strict):
    """A decision with its grounds: a centre officer recording an issuer's answer on a guarantee, or a
    supervisor deciding a forfeiture (`approve` true keeps the deposit, false refunds it)."""

    approve: bool
    note: Note


class MatchIn(Strict):
    """Match a suspense line to a deposit (its id), with the officer's note: the line's whole amount is
    credited to that deposit's sub-account by a journal entry."""

    deposit_id: uuid.UUID
    note: Note


class ReturnIn(Strict):
    """Return a suspense line to the account it came from, with the officer's note; the next refund batch
    pays it."""

    note: Note


class RateIn(Strict):
    """A rate taking effect from a day (M-02, M-03): `deposit` (the escrow bank's demand-deposit rate) or
    `lpr` (the one-year loan prime rate), from `effective_from` (ISO date) until the next of its kind; the
    yearly percentage is exact decimal text, e.g. "0.35" for 0.35 %, never a float; `source` cites where it
    was published."""

    kind: Literal["deposit", "lpr"]
    effective_from: date
    annual_percent: Annotated[str, msgspec.Meta(max_length=9, pattern=r"^[0-9]{1,2}(\.[0-9]{1,6})?$")]
    source: Note


class PayeeIn(Strict):
    """An approved change of the account a deposit is refunded to (e.g. the paying account was closed):
    the new payee's name, account number (4 to 60 letters, digits or hyphens) and bank, why, and the
    approval it rests on. All of it is hashed into the journal, and refunds are paid to that entry's payee."""

    payee_name: Name
    payee_account: AccountNumber
    payee_bank: Name
    reason: Note
    approval: Note


class ConflictDecision(Strict):
    """A centre officer's decision on a bank line conflict, with its grounds: `known` (the line on record
    stands) or `incoming` (the bank's later version is right; a correcting entry moves any difference)."""

    decision: Literal["known", "incoming"]
    note: Note


class ForfeitureIn(Strict):
    """A proposal to keep a deposit under W-06 or W-16, with the facts it rests on; a supervisor decides,
    and no money moves before."""

    rule: Literal["W-06", "W-16"]
    reason: Note


# ---------------------------------------------------------------- rows the services build


class StatementSummary(TypedDict):
    """What one import of a bank statement or notification did, in lines: how many the file held
    (`lines`), how many the bank had not reported before (`new_lines`) and how many it had
    (`already_known`), how many known references it now reports otherwise (`conflicting`, each listed in
    `conflicts` as one readable sentence and kept under /api/v1/escrow/conflicts), and where the new lines
    went: `matched` to a deposit, `suspense`, bank `interest`, `refunds_confirmed` (debits of our own
    refunds) and `unexplained` (debits nobody instructed). Stored with the statement as it was answered."""

    lines: int
    new_lines: int
    already_known: int
    conflicting: int
    matched: int
    suspense: int
    interest: int
    refunds_confirmed: int
    unexplained: int
    conflicts: list[str]


class EvidencePayment(TypedDict):
    """A bank line credited to the deposit, as the eligibility evidence lists it: its bank `reference`, the
    amount in fen, when escrow took it in (`credited_at`, a UTC instant in ISO 8601) and whether that was
    before the deadline (`counted`)."""

    reference: str
    amount_fen: int
    credited_at: str
    counted: bool


class EvidenceGuarantee(TypedDict):
    """A guarantee as the eligibility evidence lists it (amount in fen, validity days as ISO dates), whether
    it backed the bid at the deadline (`counted`) and, when not, why (`why_not`, e.g. "not verified with
    its issuer before the deadline"; null when it counted)."""

    kind: str
    issuer: str
    number: str
    amount_fen: int
    valid_from: str
    valid_until: str
    counted: bool
    why_not: str | None


class EligibilityEvidence(TypedDict):
    """What escrow found for a lot when it answered W-19 (`escrow.eligibility.evidence`), as the bid's
    rejection and the evaluation report quote it, all amounts in fen: the cash held at the `deadline`
    (a UTC instant in ISO 8601), cash on its way back to the payer (`returning_fen`), verified guarantees
    in force through `cover_through` (ISO date: the last day of the bid validity period), money that
    arrived after the deadline and does not count (`late_fen`), each payment and guarantee, and a one-line
    `detail` for people to read."""

    eligible: bool
    required_fen: int
    cash_fen: int
    returning_fen: int
    guarantee_fen: int
    late_fen: int
    deadline: str
    cover_through: str
    payments: list[EvidencePayment]
    guarantees: list[EvidenceGuarantee]
    detail: str


class AccountEntry(TypedDict):
    """A journal entry that posts to one account, with that account's leg (`amount_fen`, signed: debit
    positive, credit negative) and the entry's chain hash (hex SHA-256 of `escrow.ledger.entry_text`);
    answered as `escrow.responses.EntryRead`, which says what the hash covers."""

    sequence: int
    reason: str
    phase: str
    resolves: int | None
    at: datetime
    actor: str
    hash: str
    amount_fen: int


class TrialBalanceLine(TypedDict):
    """One account of the trial balance: its ledger code and kind (`bank`, `deposit`, `suspense`,
    `interest_payable`, `interest_expense`, `interest_income`, `forfeited`, `refunds_in_transit`), and its
    posted balance as a debit or a credit in fen (the other column is 0)."""

    account: str
    kind: str
    debit_fen: int
    credit_fen: int


class ObligationRow(TypedDict):
    """A duty to refund a deposit (or return a suspense line, `account` "suspense"), with its legal due day
    and supervision light (S-01): `rule` is the refund rule of `escrow.obligations.RULES` (W-05, W-09,
    W-14, G-04-loser, G-04-winner, G-04-end, L-06, T-END, SUSPENSE) and `event` the trade event that created it on
    `event_on`; `status` is `due`, `instructed`, `paid`, `superseded` or `forfeited`; `light` is `green`,
    `yellow` (from the working day before the due day through it) or `red` (overdue, or paid late);
    `interest_fen` is the interest owed with it in fen; `attempts` counts instructions sent; `flagged_at`
    is when it was flagged overdue (UTC). Outside the centre, the obligations of a tender whose bids are
    still sealed show `account` as a fixed sentence and `deposit_id` as null (W-20)."""

    id: str
    account: str
    deposit_id: str | None
    rule: str
    event: str
    event_on: date
    due_on: date
    status: str
    light: str
    interest_fen: int
    paid_on: date | None
    attempts: int
    flagged_at: datetime | None
    note: str | None


class AuditDepositRow(TypedDict):
    """A deposit as the auditors' views list it: its sub-account code (`account`), virtual number, status,
    what is required, has been received and is held now (fen), the day money first arrived, who paid it,
    and why money is still held."""

    id: str
    account: str
    virtual_number: str
    tender_id: str
    lot_id: str
    organisation_id: str
    status: str
    required_fen: int
    received_fen: int
    held_fen: int
    first_arrived_on: date | None
    payer_name: str | None
    payer_account: str | None
    hold_reason: str


class StatementLineRow(TypedDict):
    """A line a statement brought, as the auditors' view of the statement lists it: the bank's reference,
    booking day, `direction` (credit or debit), `kind` (transfer or interest), amount in fen, payer, the
    virtual account credited, the refund it answers (`end_to_end_id`), where it went (`status`, see
    BankLineRead), the journal entry that took it in and the deposit it was matched to."""

    id: str
    reference: str
    booked_on: date
    direction: str
    kind: str
    amount_fen: int
    payer_name: str | None
    payer_account: str | None
    credited_account: str | None
    end_to_end_id: str | None
    status: str
    entry_sequence: int | None
    deposit_id: str | None
    note: str | None
