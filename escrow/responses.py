"""What the escrow API answers: one `TypedDict` per JSON answer and per nested part (the rows the services
build are in `escrow/schemas.py`), and for each answer made from one stored row the function that builds
it, so the OpenAPI document describes exactly what is sent and mypy checks that it is.

Conventions for every type here: money is integer fen (分, 1/100 yuan) in fields named `*_fen`, never a
float; instants are UTC in ISO 8601 / RFC 3339 (`2026-03-23T02:00:00+00:00` or `…Z`); days are ISO dates
(`2026-03-23`) in the trading centre's zone (Asia/Shanghai); ids are UUIDs as text; `null` stands for a
value not (yet) known. A deposit sub-account is named by its ledger code,
`deposit:<tender code>/<lot number>/<bidder's credit code>`; a journal entry by its gapless sequence number.

Answers that may also be exported as files (`?format=csv|xlsx`) are documented with those media types
too (`ExportOperation`); the bank's payment file is XML or CSV (`PaymentFileOperation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Final, TypedDict, cast

from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Schema,
)
from litestar.params import KwargDefinition

from escrow.models import (
    BankLine,
    BankLineConflict,
    BankStatement,
    Deposit,
    Eligibility,
    Forfeiture,
    Guarantee,
    InterestRate,
    Obligation,
    PayeeChange,
    RefundBatch,
    RefundInstruction,
)
from escrow.schemas import (
    AccountEntry,
    AuditDepositRow,
    EligibilityEvidence,
    ObligationRow,
    StatementSummary,
    TrialBalanceLine,
)

# sent as text, documented with their OpenAPI format
Id = Annotated[str, KwargDefinition(format=OpenAPIFormat.UUID)]
Instant = Annotated[str, KwargDefinition(format=OpenAPIFormat.DATE_TIME)]
Day = Annotated[str, KwargDefinition(format=OpenAPIFormat.DATE)]


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _id(value: object | None) -> str | None:
    return str(value) if value is not None else None


# ---------------------------------------------------------------- deposits and what hangs on them


class DepositRead(TypedDict):
    """One bidder's deposit sub-account for one lot (投标保证金): the virtual account number (虚拟子账号) to
    pay into, what the lot requires, what has arrived and what is held now (fen), the account it was first
    paid from (refunds go back there unless a payee change is approved), and its status: `awaiting`
    (less than required has arrived), `waived` (nothing is required), `held`, `refunding`, `refunded` or
    `forfeited`. `hold_reason` says why money is still held (empty when nothing needs saying);
    `first_arrived_on` is the value day (else the booking day) of the first line credited to it (null
    before any); `opened_at` is when the sub-account was opened."""

    id: Id
    account_code: str
    virtual_number: str
    tender_id: Id
    lot_id: Id
    organisation_id: Id
    required_fen: int
    received_fen: int
    first_arrived_on: Day | None
    payer_name: str | None
    payer_account: str | None
    payer_bank: str | None
    status: str
    hold_reason: str
    opened_at: Instant
    held_fen: int


def deposit(row: Deposit, held_fen: int) -> DepositRead:
    """The deposit as answered, with what its sub-account holds now."""
    return {
        "id": str(row.id),
        "account_code": row.account_code,
        "virtual_number": row.virtual_number,
        "tender_id": str(row.tender_id),
        "lot_id": str(row.lot_id),
        "organisation_id": str(row.organisation_id),
        "required_fen": row.required_fen,
        "received_fen": row.received_fen,
        "first_arrived_on": _day(row.first_arrived_on),
        "payer_name": row.payer_name,
        "payer_account": row.payer_account,
        "payer_bank": row.payer_bank,
        "status": row.status,
        "hold_reason": row.hold_reason,
        "opened_at": row.opened_at.isoformat(),
        "held_fen": held_fen,
    }


class BankLineRead(TypedDict):
    """One line of the escrow account's bank statement, known by the bank's own `reference`, as first
    reported (`statement_id`: the statement or notification that brought it), its amount in fen, and where
    it went.

    `direction` is `credit` (money in) or `debit` (money out); `kind` is `transfer` or `interest`.
    `status`: `matched` (taken into `deposit_id`), `suspense` (waiting for an officer), `interest`,
    `refund` (one of our refunds leaving), `unexplained` (a debit nobody instructed), `returning` or
    `returned` (sent back to the payer). `entry_sequence` is the journal entry that last took the line in
    (into suspense, then into the deposit it is matched to; null while none has). `resolved_at` is when it
    was credited to a deposit or sent back; `resolved_by` the officer who matched or returned it (null when
    it matched by its virtual account number); `note` why it waits, or the officer's note."""

    id: Id
    reference: str
    statement_id: Id
    direction: str
    kind: str
    amount_fen: int
    booked_on: Day
    value_on: Day | None
    payer_name: str | None
    payer_account: str | None
    payer_bank: str | None
    credited_account: str | None
    remittance: str | None
    end_to_end_id: str | None
    status: str
    deposit_id: Id | None
    entry_sequence: int | None
    resolved_by: str | None
    resolved_at: Instant | None
    note: str | None


def bank_line(row: BankLine) -> BankLineRead:
    """The bank line as answered."""
    return {
        "id": str(row.id),
        "reference": row.reference,
        "statement_id": str(row.statement_id),
        "direction": row.direction,
        "kind": row.kind,
        "amount_fen": row.amount_fen,
        "booked_on": row.booked_on.isoformat(),
        "value_on": _day(row.value_on),
        "payer_name": row.payer_name,
        "payer_account": row.payer_account,
        "payer_bank": row.payer_bank,
        "credited_account": row.credited_account,
        "remittance": row.remittance,
        "end_to_end_id": row.end_to_end_id,
        "status": row.status,
        "deposit_id": _id(row.deposit_id),
        "entry_sequence": row.entry_sequence,
        "resolved_by": row.resolved_by,
        "resolved_at": _instant(row.resolved_at),
        "note": row.note,
    }


class GuaranteeRead(TypedDict):
    """A bank guarantee or guarantee insurance (保函 / 保证保险) lodged for a deposit: it moves no money and
    counts toward the deposit once its issuer confirmed it. `kind`: `bank_guarantee` or
    `guarantee_insurance`; `amount_fen` in fen; `valid_from` / `valid_until` are days. `status`:
    `submitted`, `verified`, `rejected`, `released` (at a moment a cash deposit would be refunded,
    `release_rule` naming the rule) or `claimed` (kept under a forfeiture, `release_rule` naming it)."""

    id: Id
    deposit_id: Id
    kind: str
    issuer: str
    number: str
    amount_fen: int
    valid_from: Day
    valid_until: Day
    status: str
    submitted_at: Instant
    decided_at: Instant | None
    decision_note: str | None
    released_at: Instant | None
    release_rule: str | None


def guarantee(row: Guarantee) -> GuaranteeRead:
    """The guarantee as answered."""
    return {
        "id": str(row.id),
        "deposit_id": str(row.deposit_id),
        "kind": row.kind,
        "issuer": row.issuer,
        "number": row.number,
        "amount_fen": row.amount_fen,
        "valid_from": row.valid_from.isoformat(),
        "valid_until": row.valid_until.isoformat(),
        "status": row.status,
        "submitted_at": row.submitted_at.isoformat(),
        "decided_at": _instant(row.decided_at),
        "decision_note": row.decision_note,
        "released_at": _instant(row.released_at),
        "release_rule": row.release_rule,
    }


class ForfeitureRead(TypedDict):
    """A proposal to keep a deposit (没收保证金) under `rule` (W-06 or W-16) with its legal `reason`, and the
    supervisor's decision: `status` is `proposed`, `approved` (the money moved to the forfeited account by
    journal entry `entry_sequence`) or `rejected` (the deposit is refunded). `proposed_by` names the
    proposer (`user:<id>`, or `job:…` for the platform's own proposals)."""

    id: Id
    deposit_id: Id
    rule: str
    reason: str
    proposed_by: str
    proposed_at: Instant
    status: str
    decided_at: Instant | None
    decision_note: str | None
    entry_sequence: int | None


def forfeiture(row: Forfeiture) -> ForfeitureRead:
    """The forfeiture as answered."""
    return {
        "id": str(row.id),
        "deposit_id": str(row.deposit_id),
        "rule": row.rule,
        "reason": row.reason,
        "proposed_by": row.proposed_by,
        "proposed_at": row.proposed_at.isoformat(),
        "status": row.status,
        "decided_at": _instant(row.decided_at),
        "decision_note": row.decision_note,
        "entry_sequence": row.entry_sequence,
    }


class PayeeChangeRead(TypedDict):
    """An approved change of the account a deposit is refunded to, with the approval it rests on. It is
    hashed into the journal as the `payee_changed` entry `entry_sequence` (payee inside the entry's hashed
    request text, `escrow/ledger.py` scheme 3), and refunds are paid to, and audited against, that entry."""

    id: Id
    deposit_id: Id
    payee_name: str
    payee_account: str
    payee_bank: str
    reason: str
    approval: str
    recorded_at: Instant
    entry_sequence: int | None


def payee_change(row: PayeeChange) -> PayeeChangeRead:
    """The payee change as answered."""
    return {
        "id": str(row.id),
        "deposit_id": str(row.deposit_id),
        "payee_name": row.payee_name,
        "payee_account": row.payee_account,
        "payee_bank": row.payee_bank,
        "reason": row.reason,
        "approval": row.approval,
        "recorded_at": row.recorded_at.isoformat(),
        "entry_sequence": row.entry_sequence,
    }


class EligibilityRead(TypedDict):
    """Escrow's recorded answer to the trade whether the deposit stood (W-19): at `moment` (`bid_deadline`),
    asked at `checked_at`, judged as of the instant `as_of` (the deadline, whenever the question ran), with
    guarantees required in force through `cover_through`; cover found in fen, and the `evidence` (null on
    answers recorded before the evidence was kept)."""

    moment: str
    checked_at: Instant
    eligible: bool
    cash_fen: int
    guarantee_fen: int
    required_fen: int
    detail: str
    as_of: Instant | None
    cover_through: Day | None
    evidence: EligibilityEvidence | None


def eligibility(row: Eligibility) -> EligibilityRead:
    """The eligibility answer as answered; its evidence is the JSON `escrow.eligibility.evidence` stored."""
    evidence = cast(EligibilityEvidence | None, row.evidence)  # the JSON `evidence` built and stored
    return {
        "moment": row.moment,
        "checked_at": row.checked_at.isoformat(),
        "eligible": row.eligible,
        "cash_fen": row.cash_fen,
        "guarantee_fen": row.guarantee_fen,
        "required_fen": row.required_fen,
        "detail": row.detail,
        "as_of": _instant(row.as_of),
        "cover_through": _day(row.cover_through),
        "evidence": evidence,
    }


class EntryRead(TypedDict):
    """A journal entry that posts to the deposit's sub-account, with that account's leg: `amount_fen` is
    signed, debit positive and credit negative, so money arriving on a deposit is negative and a refund
    positive. `reason` says what the entry did (`deposit_received`, `suspense_matched`, `interest_accrued`,
    `refund_instructed`, `refund_confirmed`, `refund_failed`, `forfeiture`, `reversal`, …); `phase` is
    `posted` (final), `pending` (a refund with the bank) or `voided` (a refund that failed); `resolves`
    names the pending entry a posted or voided one settles. `actor` is `user:<id>` or `job:<name>`; `at`
    is when the entry was written (UTC).

    `hash` is the entry's link in the journal's hash chain, lowercase hex SHA-256 of the UTF-8 text
    `escrow.ledger.entry_text`: the lines "ggzy.escrow.entry.<scheme>", the previous entry's hash (64 zeros
    before the first), the sequence, the idempotency key, the request hash (hex SHA-256 of
    `escrow.ledger.request_text`: reason, actor, context, the payer or payee, and every posting), the phase,
    and `at` as whole microseconds since 1970-01-01T00:00:00Z, joined by line feeds. A signed ledger head
    (/api/v1/transparency/ledger/head) covers the chain up to its sequence."""

    sequence: int
    reason: str
    phase: str
    resolves: int | None
    at: Instant
    actor: str
    hash: str
    amount_fen: int


def entry(row: AccountEntry) -> EntryRead:
    """A journal entry on an account as answered (its instant as text)."""
    return {**row, "at": row["at"].isoformat()}


class RefundInstructionRead(TypedDict):
    """One payment the bank is asked to make (退付指令): its `end_to_end_id` (the id the bank echoes in its
    results and debit lines), the obligation it pays, the sub-account it comes from, the deposit
    `amount_fen` and the interest with it (`interest_fen`, included in the amount), the payee and on what
    basis it was chosen (`payee_basis`: `payer` (the deposit's hashed payer), `change:<payee change id>` or
    `line:<bank line id>` for a returned suspense line), the pending journal entry that reserved the money
    (`pending_sequence`), and the bank's result: `status` `sent`, `paid` or `failed`, the entry that posted
    or voided it (`result_sequence`), when (`result_at`), the day it was paid, why it failed, and the
    bank's reference."""

    id: Id
    end_to_end_id: str
    obligation_id: Id
    account_code: str
    amount_fen: int
    interest_fen: int
    payee_name: str
    payee_account: str
    payee_bank: str
    payee_basis: str
    pending_sequence: int
    status: str
    result_sequence: int | None
    result_at: Instant | None
    paid_on: Day | None
    failure_reason: str | None
    bank_reference: str | None


def instruction(row: RefundInstruction) -> RefundInstructionRead:
    """The refund instruction as answered."""
    return {
        "id": str(row.id),
        "end_to_end_id": row.end_to_end_id,
        "obligation_id": str(row.obligation_id),
        "account_code": row.account_code,
        "amount_fen": row.amount_fen,
        "interest_fen": row.interest_fen,
        "payee_name": row.payee_name,
        "payee_account": row.payee_account,
        "payee_bank": row.payee_bank,
        "payee_basis": row.payee_basis,
        "pending_sequence": row.pending_sequence,
        "status": row.status,
        "result_sequence": row.result_sequence,
        "result_at": _instant(row.result_at),
        "paid_on": _day(row.paid_on),
        "failure_reason": row.failure_reason,
        "bank_reference": row.bank_reference,
    }


class DepositLife(TypedDict):
    """A deposit from arrival to refund: the deposit, every bank line taken into it, its guarantees, the
    eligibility answers escrow gave the trade (W-19), its refund obligations with their lights (S-01), the
    refund instructions sent for them, forfeiture proposals, and every journal entry on its sub-account in
    sequence order."""

    deposit: DepositRead
    lines: list[BankLineRead]
    guarantees: list[GuaranteeRead]
    eligibility: list[EligibilityRead]
    obligations: list[ObligationRow]
    instructions: list[RefundInstructionRead]
    forfeitures: list[ForfeitureRead]
    entries: list[EntryRead]


# ---------------------------------------------------------------- the centre's bank intake


class StatementImported(StatementSummary):
    """What importing a bank statement did: the statement's id, whether this exact file (by SHA-256) was
    imported before (`replay`: then nothing changed and the counts are those of the first import, with
    every line `already_known` but the `conflicting` ones), and the counts of `StatementSummary`."""

    statement_id: Id
    replay: bool


class NotificationTaken(StatementSummary):
    """What the bank's signed credit notification (到账通知) did: whether this exact body (by SHA-256) was
    taken before (`replay`: then nothing changed), and the counts of `StatementSummary` for its one line."""

    replay: bool


class StatementRead(TypedDict):
    """A bank statement or notification as imported: `fmt` is `camt053`, `csv` or `notification`; the
    bank's own statement id and the escrow account it covers (null for a notification); `sha256` is the
    lowercase hex SHA-256 of the file's bytes exactly as received (the raw file is kept in the object
    store under it, and the same file imported again changes nothing); who imported it and when
    (`imported_by`: `user:<id>`, or `job:bank-notification`), its line counts, and the `summary` of
    what the import did."""

    id: Id
    fmt: str
    bank_statement_id: str | None
    account: str | None
    sha256: str
    imported_at: Instant
    imported_by: str
    lines: int
    new_lines: int
    summary: StatementSummary


def statement(row: BankStatement) -> StatementRead:
    """The statement as answered, with the summary stored at its import."""
    return {
        "id": str(row.id),
        "fmt": row.fmt,
        "bank_statement_id": row.bank_statement_id,
        "account": row.account,
        "sha256": row.sha256,
        "imported_at": row.imported_at.isoformat(),
        "imported_by": row.imported_by,
        "lines": row.lines,
        "new_lines": row.new_lines,
        "summary": cast(StatementSummary, row.summary),  # `ImportResult.summary()` as stored
    }


class SuspenseReturnRead(TypedDict):
    """The obligation to send a suspense line back to the account it came from: the line, the rule that
    sets its due day (`due_on`), and its `status` (`due` until the next refund batch instructs it)."""

    id: Id
    line_id: Id | None
    rule: str
    due_on: Day
    status: str


def suspense_return(row: Obligation) -> SuspenseReturnRead:
    """The return obligation as answered."""
    return {
        "id": str(row.id),
        "line_id": _id(row.line_id),
        "rule": row.rule,
        "due_on": row.due_on.isoformat(),
        "status": row.status,
    }


class RateRead(TypedDict):
    """A row of the dated rate tables (M-02, M-03): `kind` `deposit` (the escrow bank's demand-deposit
    rate) or `lpr` (the one-year loan prime rate), in force from `effective_from` until the next row of
    its kind; `annual_percent` is exact decimal text (e.g. "0.35" for 0.35 % a year), with its `source`."""

    id: Id
    kind: str
    effective_from: Day
    annual_percent: str
    source: str
    set_at: Instant


def rate(row: InterestRate) -> RateRead:
    """The rate as answered."""
    return {
        "id": str(row.id),
        "kind": row.kind,
        "effective_from": row.effective_from.isoformat(),
        "annual_percent": row.annual_percent,
        "source": row.source,
        "set_at": row.set_at.isoformat(),
    }


class RefundBatchRead(TypedDict):
    """One file of payment instructions for the bank: its `number` (`RB<yyyymmdd>-<nnnn>`), who made it and
    when, the day the bank is asked to execute it, how many payments and their total in fen (interest
    included)."""

    id: Id
    number: str
    created_at: Instant
    created_by: str
    execution_on: Day
    count: int
    total_fen: int


def batch(row: RefundBatch) -> RefundBatchRead:
    """The refund batch as answered."""
    return {
        "id": str(row.id),
        "number": row.number,
        "created_at": row.created_at.isoformat(),
        "created_by": row.created_by,
        "execution_on": row.execution_on.isoformat(),
        "count": row.count,
        "total_fen": row.total_fen,
    }


class RefundBatchMade(TypedDict):
    """What a refund run did: the batch made (null when nothing could be paid), its instructions, and each
    due obligation left for a later run with why (`skipped`: "<obligation id>: <reason>", e.g. a
    forfeiture proposed, no paying account on record, the escrow account would be overdrawn)."""

    batch: RefundBatchRead | None
    instructions: list[RefundInstructionRead]
    skipped: list[str]


class RefundBatchDetail(TypedDict):
    """A refund batch and its instructions with the bank's results (outside the centre, without the refunds
    of tenders whose bids are still sealed, W-20)."""

    batch: RefundBatchRead
    instructions: list[RefundInstructionRead]


class RefundResults(TypedDict):
    """What importing the bank's results did: refunds `paid` (their pending entries posted), `failed`
    (voided, the obligation due again), results already applied (`unchanged`), payments the bank accepted
    but has not settled (`pending`), and one readable sentence per result that changed nothing because it
    names no instruction or contradicts one already settled (`problems`)."""

    paid: int
    failed: int
    unchanged: int
    pending: int
    problems: list[str]


class BankLineVersion(TypedDict):
    """One version of a bank line as the bank reported it (absent texts as null; days as ISO dates; amount
    in fen): the line on record (`known`) or the later report under the same reference (`incoming`)."""

    reference: str
    direction: str
    kind: str
    amount_fen: int
    booked_on: Day
    value_on: Day | None
    payer_name: str | None
    payer_account: str | None
    payer_bank: str | None
    credited_account: str | None
    end_to_end_id: str | None
    remittance: str | None


class FieldDifference(TypedDict):
    """One field on which the two versions of a bank line disagree: its value on record and the bank's
    later value (text, an amount in fen, or an ISO date, as in `BankLineVersion`)."""

    known: str | int | None
    incoming: str | int | None


class BankLineConflictRead(TypedDict):
    """A bank line the bank reported again under a known reference but otherwise (对账差异): both versions
    in full, the `differences` keyed by field name (`amount_fen`, `booked_on`, `payer_account`, …), the
    statement that brought the later version, and the centre's decision once taken (`status` `open` or
    `resolved`; `decision` `known`, the line on record stands, or `incoming`, the bank's later version,
    with the correcting journal entry `entry_sequence` when money or the payer changed)."""

    id: Id
    line_id: Id
    reference: str
    statement_id: Id
    status: str
    differences: dict[str, FieldDifference]
    known: BankLineVersion
    incoming: BankLineVersion
    detected_at: Instant
    decision: str | None
    note: str | None
    resolved_by: str | None
    resolved_at: Instant | None
    entry_sequence: int | None


def conflict(row: BankLineConflict) -> BankLineConflictRead:
    """The conflict as answered; its versions and differences are the JSON `escrow.conflicts` stored."""
    return {
        "id": str(row.id),
        "line_id": str(row.line_id),
        "reference": row.reference,
        "statement_id": str(row.statement_id),
        "status": row.status,
        "differences": cast(dict[str, FieldDifference], row.differences),
        "known": cast(BankLineVersion, row.known),
        "incoming": cast(BankLineVersion, row.incoming),
        "detected_at": row.detected_at.isoformat(),
        "decision": row.decision,
        "note": row.note,
        "resolved_by": row.resolved_by,
        "resolved_at": _instant(row.resolved_at),
        "entry_sequence": row.entry_sequence,
    }


# ---------------------------------------------------------------- the ledger, audited


class LedgerCheck(TypedDict):
    """One invariant of the ledger or the deposits (the same checks as `ggzy verify ledger`): its `name`,
    whether it holds, and `detail` (what it covered when it holds, else the first offender and how many
    more). `offenders` names every offender up to the verification's `offender_limit`; `total` counts them
    all. Outside the centre a passing check shows `detail` null, no offenders and `total` 0, and a failing
    one that concerns a tender whose bids are still sealed shows why it is withheld, no offenders and
    `total` null (W-20)."""

    name: str
    ok: bool
    detail: str | None
    offenders: list[str]
    total: int | None


class LedgerVerification(TypedDict):
    """Every ledger and deposit invariant checked from the stored rows, with the signed heads against the
    journal: `ok` when all hold; each check names at most `offender_limit` offenders."""

    ok: bool
    offender_limit: int
    checks: list[LedgerCheck]


class TrialBalance(TypedDict):
    """Every account's posted balance at the instant `at` (as asked, with its offset; null for now), and
    the debit and credit totals in fen, which are always equal. Outside the centre, the sub-accounts of
    tenders whose bids are sealed are summed into one line (W-20)."""

    at: Instant | None
    accounts: list[TrialBalanceLine]
    debit_fen: int
    credit_fen: int


class DepositsAndObligations(TypedDict):
    """One tender's or one bidder's deposits and refund obligations, as the auditors read them."""

    deposits: list[AuditDepositRow]
    obligations: list[ObligationRow]


# ---------------------------------------------------------------- answers that are also files

CSV: Final = "text/csv; charset=utf-8"
XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XML: Final = "application/xml"


def _file() -> OpenAPIMediaType:
    return OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY))


def _success(operation: Operation) -> OpenAPIResponse | None:
    for status, response in (operation.responses or {}).items():
        if status.startswith("2") and isinstance(response, OpenAPIResponse):
            return response
    return None


@dataclass
class ExportOperation(Operation):
    """An operation that answers JSON, or with `?format=csv|xlsx` the same rows as a file: its JSON type
    is the handler's answer but the `Response[bytes]` that carries the file, which is documented under the
    file's media types instead."""

    def __post_init__(self) -> None:
        ok = _success(self)
        if ok is None or not ok.content:
            return
        json_type = ok.content.get("application/json")
        if json_type is not None and isinstance(json_type.schema, Schema) and json_type.schema.one_of:
            typed = [s for s in json_type.schema.one_of if s != Schema()]
            json_type.schema = typed[0] if len(typed) == 1 else Schema(one_of=typed)
        ok.content[CSV] = _file()
        ok.content[XLSX] = _file()


@dataclass
class PaymentFileOperation(Operation):
    """The bank's payment file: pain.001 XML by default, or CSV with `?format=csv`; never JSON."""

    def __post_init__(self) -> None:
        ok = _success(self)
        if ok is not None:
            ok.content = {XML: _file(), CSV: _file()}
