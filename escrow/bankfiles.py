"""The escrow bank's files (托管银行文件): statements and arrival notices in, refund instructions out, and
the bank's results of those refunds in.

Bidders pay deposits (保证金) into virtual sub-accounts (虚拟子账号) of the centre's escrow account. The
bank tells the centre what arrived, in a daily statement and in real-time signed arrival notices (到账通知);
the centre tells the bank what to refund, and the bank answers with the outcome of each refund. This
module turns those files into values and back. Pure logic: bytes in, values out (or values in, bytes
out); no database, no web framework, no clock (the caller passes `now`).

Every refusal is a `BankFileError` with a stable `code` (listed in `ERROR_CODES`), a `message` saying what
was wrong and what to do, and where known the `line` (CSV line, JSON or XML parse position) and `field`
(CSV column, JSON key, or the XML path such as `Stmt/Ntry[3]/NtryDtls/TxDtls[2]/Amt`). Whatever bytes
arrive, no other exception escapes the parsers: the files come from outside and are hostile input.

Formats are named as in `FORMATS` ("camt053", "pain001", "pain002", "csv", "json"); the ISO spelling
with a dot ("camt.053") is accepted too.

Money is integer fen. Amounts are read as exact decimals of yuan with at most 2 decimals (a third decimal,
even a zero, is refused: CNY has two minor units), in CNY only, and written back exactly ("1234.50").

Statements (`parse_statement`)
------------------------------
"camt053": ISO 20022 BankToCustomerStatement, versions camt.053.001.02 to camt.053.001.08, UTF-8.
Elements are matched on local names, so the namespace prefix does not matter. One `Stmt` per file (the
centre has one escrow account per bank and asks for one statement per file). Each booked `Ntry` is one
line; an entry that batches several transactions (several `NtryDtls/TxDtls`) gives one line per `TxDtls`,
each of which must then carry its own amount and its own `Refs/AcctSvcrRef`, and whose amounts must add up
to the entry's. Entries whose status is not BOOK (pending or information only) are not money yet and are
left out. When the opening (OPBD, else PRCD) and closing (CLBD) booked balances are both given, the lines
must carry the one to the other.

Per line: `reference` = `TxDtls/Refs/AcctSvcrRef`, else the entry's `AcctSvcrRef`, else its `NtryRef`
(the bank's unique id of the line, by which a re-imported line, or one that came first as a notice, is
recognised); `direction` from `CdtDbtInd`; `booked_on` / `value_on` from `BookgDt` / `ValDt` (`Dt`, or the
date of `DtTm` as written); payer from `RltdPties/Dbtr/Nm` (or `Dbtr/Pty/Nm`, from version 07),
`RltdPties/DbtrAcct/Id/Othr/Id` or `IBAN`, `RltdAgts/DbtrAgt/FinInstnId/Nm` (else `BICFI`, `BIC` or the
CNAPS member id); `credited_account` = `RltdPties/CdtrAcct/Id/Othr/Id` (or `IBAN`), the virtual
sub-account; `remittance` = the `RmtInf/Ustrd` texts joined by a space (else `AddtlTxInf`, else the
entry's `AddtlNtryInf`); `end_to_end_id` = `Refs/EndToEndId` ("NOTPROVIDED" reads as empty), by which the
centre recognises its own refunds coming back as debit lines; `kind` is "interest" when the bank
transaction code (`BkTxCd/Domn/Fmly/SubFmlyCd`, of the transaction, else of the entry) is INTR, else
"transfer".

"csv": the centre's statement layout. UTF-8, with or without a byte-order mark; comma-separated, fields
quoted as in RFC 4180; the first row names the columns, in any order:

    column            required  content
    reference         yes       the bank's unique id of the line
    booked_on         yes       YYYY-MM-DD
    value_on          no        YYYY-MM-DD, may be empty
    direction         yes       C or D, or credit or debit (any case)
    amount            yes       yuan, digits with at most 2 decimals, no sign or separators: 1234.50
    currency          yes       CNY
    payer_name        no        who paid, may be empty (also the other columns marked no)
    payer_account     no        the payer's account number
    payer_bank        no        the payer's bank
    credited_account  no        the virtual sub-account credited
    remittance        no        the payer's remittance text (附言)
    end_to_end_id     no        the end-to-end id the payer gave (the centre's instruction id for refunds)
    kind              no        transfer (the default) or interest

An unknown column, a column named twice, or a missing required column is refused, naming it; a bad
value is refused naming its line and column. Blank lines are skipped. The statement id of a CSV file is
"sha256:" and the hex SHA-256 of its bytes, so the same file re-imported has the same id; it names no
account and no balances.

Arrival notices (`verify_notification`)
---------------------------------------
The body is one JSON object (UTF-8), one statement line, with the CSV columns as keys except that
`amount_fen` (an integer of fen) replaces `amount`; optional keys may be absent or null. The header
`X-Bank-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>` authenticates it; during a
secret rotation the bank sends one v1 per secret, and one match is enough. Other schemes (v0…) are
ignored.

Refund instructions (`payment_xml`, `payment_csv`)
--------------------------------------------------
"pain001": ISO 20022 CustomerCreditTransferInitiation pain.001.001.03, one `PmtInf` debiting the escrow
account, one `CdtTrfTxInf` per instruction with `EndToEndId` = the centre's instruction id. `CreDtTm` is
the batch's creation time in China Standard Time (UTC+8) to the second, and `ReqdExctnDt` its date there:
the only times in the file, so the same batch always gives the same bytes.

"csv": UTF-8 without a byte-order mark, CRLF line ends, columns
`batch_id,end_to_end_id,debtor_account,amount,currency,payee_name,payee_account,payee_bank,remittance`.

Ids are ISO Max35Text of `A–Z a–z 0–9 _ . : / -` (a UUID's 32-digit hex form fits; its hyphenated form
does not); names are at most 140 characters (ISO Max140Text) without control or format characters, and
do not begin with = + - @ (finance staff open the CSV in a spreadsheet before uploading it, and a leading
= would be run as a formula). `PaymentInstruction` and `PaymentBatch` refuse bad values when built.

Refund results (`parse_results`)
--------------------------------
"pain002": ISO 20022 CustomerPaymentStatusReport, pain.002.001.03 to pain.002.001.12. One result per
`TxInfAndSts`, found by `OrgnlEndToEndId`; its `TxSts` (else its payment information's `PmtInfSts`, else
the group's `GrpSts`, as ISO 20022 inherits them) ACSC, ACCC, ACSP or ACCP is paid, RJCT or CANC failed,
with `StsRsnInf/Rsn/Cd` and `AddtlInf` as the reason; interim statuses (RCVD, ACTC, PDNG, ACWC, …) are
not a result yet and are left out. A report with only a group or payment-information status names no
instruction and is refused: ask the bank for per-transaction statuses.

"csv": the same conventions as the statement CSV, columns `end_to_end_id` and `status` (paid or failed)
required, `reason`, `bank_reference` and `paid_on` (YYYY-MM-DD, only for paid lines) optional.

Limits: a file is at most 20 MiB and 100,000 lines; XML at most 64 elements deep and 2,000,000 elements,
and without DOCTYPE (so no entities) and without XInclude; a notice body at most 64 KiB.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from escrow.ledger import MAX_AMOUNT_FEN

FORMATS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "statement": ("camt053", "csv"),  # parse_statement
        "notification": ("json",),  # verify_notification
        "payment": ("pain001", "csv"),  # payment_xml, payment_csv
        "results": ("pain002", "csv"),  # parse_results
    }
)

_FORMAT_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {"camt.053": "camt053", "pain.001": "pain001", "pain.002": "pain002"}
)

CURRENCY: Final = "CNY"
CHINA_TIME: Final = timezone(timedelta(hours=8), "CST")  # the bank's business day; China has no DST
MAX_FILE_BYTES: Final = 20 * 1024 * 1024
MAX_LINES: Final = 100_000
MAX_XML_DEPTH: Final = 64  # a camt.053 is about 12 deep; anything far deeper is an attack, not a statement
MAX_XML_ELEMENTS: Final = 2_000_000
MAX_NOTIFICATION_BYTES: Final = 64 * 1024
MAX_PAYMENTS: Final = 10_000
MAX_IDENTIFIER: Final = 256  # inbound ids and account numbers
MAX_TEXT: Final = 2048  # inbound names and remittance text
ISO_ID_MAX: Final = 35  # ISO 20022 Max35Text
ISO_NAME_MAX: Final = 140  # ISO 20022 Max140Text
ISO_ACCOUNT_MAX: Final = 34  # ISO 20022 Max34Text (Othr/Id and IBAN)

ERROR_CODES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "format.unknown": "the format named is not one this function reads or writes",
        "file.empty": "the file has no content",
        "file.too_large": "the file is larger than MAX_FILE_BYTES",
        "file.encoding": "the file is not UTF-8",
        "file.too_many_lines": "the file has more than MAX_LINES lines",
        "xml.malformed": "the XML is not well formed",
        "xml.forbidden": "the XML has a DOCTYPE, an entity declaration or XInclude",
        "xml.too_deep": "the XML nests deeper than MAX_XML_DEPTH",
        "xml.too_many_elements": "the XML has more than MAX_XML_ELEMENTS elements",
        "xml.unsupported_message": "the XML is not the ISO 20022 message (or version) expected",
        "csv.malformed": "the CSV cannot be split into fields (quoting)",
        "csv.missing_column": "a required column is not in the header",
        "csv.unknown_column": "the header names a column the layout does not have",
        "csv.duplicate_column": "the header names a column twice",
        "csv.field_count": "a line has more or fewer fields than the header",
        "field.missing": "a required value is absent or empty",
        "field.invalid": "a value has the wrong type or shape",
        "field.too_long": "a value is longer than allowed",
        "field.control_character": "a value holds a control or format character",
        "field.formula_prefix": "an outgoing text begins with = + - or @",
        "amount.invalid": "an amount is not a positive number of yuan (or fen)",
        "amount.precision": "an amount has more than 2 decimals",
        "amount.too_large": "an amount does not fit the ledger's 64-bit fen",
        "amount.currency": "a currency other than CNY",
        "date.invalid": "a date is not a valid YYYY-MM-DD (or ISO date-time)",
        "direction.invalid": "a direction is not credit or debit",
        "kind.invalid": "a line kind is not transfer or interest",
        "time.naive": "a datetime passed in has no time zone",
        "statement.missing": "the camt.053 has no statement",
        "statement.multiple": "the camt.053 has more than one statement",
        "statement.duplicate_reference": "two lines of one file have the same reference",
        "statement.batch_reference": "a transaction of a batched entry has no reference of its own",
        "statement.batch_amount": "the transactions of a batched entry do not add up to it",
        "statement.balance_mismatch": "opening balance plus lines is not the closing balance",
        "notification.header": "the signature header is malformed",
        "notification.signature": "no signature in the header matches the body",
        "notification.stale": "the notice was signed too long ago or too far ahead",
        "notification.body": "the notice body is not one JSON object within the size limit",
        "notification.unknown_field": "the notice body has a key the layout does not have",
        "notification.config": "the secret is empty or the tolerance negative",
        "payment.empty": "a batch has no instructions",
        "payment.too_many": "a batch has more than MAX_PAYMENTS instructions",
        "payment.duplicate_end_to_end_id": "two instructions of a batch have the same id",
        "results.status": "a payment status is not one this module knows",
        "results.group_status_only": "a pain.002 gives no per-transaction status",
        "results.empty": "a pain.002 gives no status at all",
        "results.duplicate_end_to_end_id": "two results of one file are for the same instruction",
    }
)


class BankFileError(ValueError):
    """A refused bank file or value: a stable `code` (see ERROR_CODES), a `message` for the operator, and
    where known the `line` and the `field` (CSV column, JSON key or XML path)."""

    def __init__(self, code: str, message: str, *, line: int | None = None, field: str | None = None) -> None:
        where = ", ".join(
            part for part in (f"line {line}" if line is not None else "", f"{field}" if field else "") if part
        )
        super().__init__(f"{message} ({where})" if where else message)
        self.code = code
        self.message = message
        self.line = line
        self.field = field

    def __repr__(self) -> str:
        return f"BankFileError({self.code!r}, {self.message!r}, line={self.line!r}, field={self.field!r})"


# ---------------------------------------------------------------- values


class Direction(StrEnum):
    """Money into the escrow account (credit) or out of it (debit), as the bank books it."""

    CREDIT = "credit"
    DEBIT = "debit"


class LineKind(StrEnum):
    """A transfer from or to someone, or interest the bank credits on the escrow account."""

    TRANSFER = "transfer"
    INTEREST = "interest"


@dataclass(frozen=True)
class StatementLine:
    """One movement on the escrow account as the bank reports it. Absent texts are ""; `value_on` is None
    when the bank gave no value date; `amount_fen` is always positive (the direction says which way)."""

    reference: str
    direction: Direction
    amount_fen: int
    booked_on: date
    value_on: date | None
    payer_name: str
    payer_account: str
    payer_bank: str
    credited_account: str  # the virtual sub-account number for a deposit
    remittance: str
    end_to_end_id: str
    kind: LineKind


@dataclass(frozen=True)
class Statement:
    """One statement of the escrow account. Balances are signed fen (negative is an overdraft), None when
    the file does not give them."""

    statement_id: str
    account: str
    currency: str
    opening_balance_fen: int | None
    closing_balance_fen: int | None
    lines: tuple[StatementLine, ...]


@dataclass(frozen=True)
class PaymentResult:
    """The bank's outcome of one refund instruction. `status` is the bank's own word (ACSC, RJCT, … or
    paid / failed from CSV), kept for the audit trail; `paid_on` is None when failed or not given."""

    end_to_end_id: str
    paid: bool
    reason: str
    bank_reference: str
    paid_on: date | None
    status: str = ""


@dataclass(frozen=True)
class PaymentInstruction:
    """One refund to instruct: `end_to_end_id` is the centre's instruction id (ISO Max35Text), which the
    bank echoes in its results and statement lines. Refuses bad values when built (BankFileError)."""

    end_to_end_id: str
    amount_fen: int
    payee_name: str
    payee_account: str
    payee_bank: str
    remittance: str = ""

    def __post_init__(self) -> None:
        _check_iso_id(self.end_to_end_id, "end_to_end_id")
        _check_amount_fen(self.amount_fen, "amount_fen")
        _check_name(self.payee_name, "payee_name", required=True)
        _check_account(self.payee_account, "payee_account")
        _check_name(self.payee_bank, "payee_bank", required=True)
        _check_name(self.remittance, "remittance", required=False)


@dataclass(frozen=True)
class PaymentBatch:
    """A batch of refunds debiting the escrow account (the debtor), made at `created_at` (aware). Refuses
    bad values when built (BankFileError); `instructions` is stored as a tuple."""

    batch_id: str
    created_at: datetime
    debtor_name: str
    debtor_account: str
    debtor_bank: str
    instructions: tuple[PaymentInstruction, ...]

    def __post_init__(self) -> None:
        _check_iso_id(self.batch_id, "batch_id")
        if not isinstance(self.created_at, datetime) or self.created_at.utcoffset() is None:
            raise BankFileError("time.naive", "The batch's creation time must be a timezone-aware datetime.")
        _check_name(self.debtor_name, "debtor_name", required=True)
        _check_account(self.debtor_account, "debtor_account")
        _check_name(self.debtor_bank, "debtor_bank", required=True)
        instructions = tuple(self.instructions)
        object.__setattr__(self, "instructions", instructions)
        if not instructions:
            raise BankFileError("payment.empty", "A payment batch needs at least one instruction.")
        if len(instructions) > MAX_PAYMENTS:
            raise BankFileError(
                "payment.too_many",
                f"A payment batch holds at most {MAX_PAYMENTS} instructions, not {len(instructions)}; "
                "split it.",
            )
        seen: set[str] = set()
        for n, item in enumerate(instructions, 1):
            if not isinstance(item, PaymentInstruction):
                raise BankFileError(
                    "field.invalid", f"Instruction {n} is not a PaymentInstruction.", field="instructions"
                )
            if item.end_to_end_id in seen:
                raise BankFileError(
                    "payment.duplicate_end_to_end_id",
                    f"Instruction id {item.end_to_end_id} appears twice in the batch; the bank would "
                    "report both under one id.",
                    field=f"instructions[{n}].end_to_end_id",
                )
            seen.add(item.end_to_end_id)
        if self.total_fen > MAX_AMOUNT_FEN:
            raise BankFileError("amount.too_large", "The batch total does not fit 64-bit fen.", field="total")

    @property
    def total_fen(self) -> int:
        """The sum of the instructions, in fen (the file's control sum)."""
        return sum(item.amount_fen for item in self.instructions)


# ---------------------------------------------------------------- amounts

_AMOUNT_RE: Final = re.compile(r"([0-9]{1,20})(?:\.([0-9]{1,20}))?")


def _amount(text: str, line: int | None, field: str, *, allow_zero: bool = False) -> int:
    value = text.strip()
    if not value:
        raise BankFileError("field.missing", "The amount is missing.", line=line, field=field)
    match = _AMOUNT_RE.fullmatch(value)
    if match is None:
        raise BankFileError(
            "amount.invalid",
            f"The amount {_show(value)} is not a number of yuan such as 1234.50 (digits, at most 2 "
            "decimals, no sign, no thousands separators).",
            line=line,
            field=field,
        )
    if match.group(2) is not None and len(match.group(2)) > 2:
        raise BankFileError(
            "amount.precision",
            f"The amount {value} has more than 2 decimals; CNY amounts are exact to the fen.",
            line=line,
            field=field,
        )
    fen = int(Decimal(value).scaleb(2))  # at most 22 digits: exact in the default 28-digit context
    if fen > MAX_AMOUNT_FEN:
        raise BankFileError(
            "amount.too_large", f"The amount {value} is beyond any deposit.", line=line, field=field
        )
    if fen == 0 and not allow_zero:
        raise BankFileError(
            "amount.invalid", "The amount is zero; a line moves money.", line=line, field=field
        )
    return fen


def parse_amount(text: str) -> int:
    """Fen from a text of yuan such as "1234.50" or "7": exact, digits with at most 2 decimals, no sign.
    Refuses with "field.missing", "amount.invalid" (also for zero), "amount.precision" or
    "amount.too_large"."""
    return _amount(text, None, "amount")


def format_amount(amount_fen: int) -> str:
    """Yuan with exactly 2 decimals from non-negative fen: 123450 → "1234.50"."""
    if type(amount_fen) is not int or amount_fen < 0:
        raise BankFileError("amount.invalid", f"{amount_fen!r} is not a non-negative whole number of fen.")
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def _check_currency(value: str | None, line: int | None, field: str) -> None:
    text = (value or "").strip()
    if not text:
        raise BankFileError("field.missing", "The currency is missing; write CNY.", line=line, field=field)
    if text != CURRENCY:
        raise BankFileError(
            "amount.currency",
            f"The currency is {_show(text)}; the escrow account holds only CNY (write CNY, not RMB or ¥).",
            line=line,
            field=field,
        )


# ---------------------------------------------------------------- text, ids, dates

_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME_RE: Final = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?"
)
_WHITESPACE_CC: Final = frozenset("\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85")


def _show(value: str, width: int = 40) -> str:
    """A value quoted for a message, cut short: errors must not echo a whole hostile file."""
    return repr(value if len(value) <= width else value[:width] + "…")


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"


def _identifier(value: str | None, line: int | None, field: str, *, required: bool) -> str:
    """An inbound id or account number: trimmed; control characters and overlong values refused."""
    text = (value or "").strip()
    if not text:
        if required:
            raise BankFileError("field.missing", f"The {field} is missing.", line=line, field=field)
        return ""
    if any(_is_control(c) for c in text):
        raise BankFileError(
            "field.control_character",
            f"The {field} holds a control character; ids are compared exactly and cannot hold one.",
            line=line,
            field=field,
        )
    if len(text) > MAX_IDENTIFIER:
        raise BankFileError(
            "field.too_long",
            f"The {field} is {len(text)} characters long; at most {MAX_IDENTIFIER}.",
            line=line,
            field=field,
        )
    return text


def _free_text(value: str | None, line: int | None, field: str) -> str:
    """An inbound name or remittance text: control characters read as spaces, runs of spaces collapsed
    (banks wrap long names and remittances; the line breaks carry no meaning)."""
    text = " ".join("".join(" " if _is_control(c) else c for c in (value or "")).split())
    if len(text) > MAX_TEXT:
        raise BankFileError(
            "field.too_long", f"The {field} is longer than {MAX_TEXT} characters.", line=line, field=field
        )
    return text


def _end_to_end(value: str | None, line: int | None, field: str) -> str:
    text = _identifier(value, line, field, required=False)
    # ISO 20022's placeholder for "the payer gave none"; it must not look like an id shared by many lines
    return "" if text.upper() == "NOTPROVIDED" else text


def _date(value: str | None, line: int | None, field: str) -> date | None:
    """An optional YYYY-MM-DD date: None when empty."""
    text = (value or "").strip()
    if not text:
        return None
    problem = f"The {field} {_show(text)} is not a date written YYYY-MM-DD."
    if _DATE_RE.fullmatch(text) is None:
        raise BankFileError("date.invalid", problem, line=line, field=field)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BankFileError("date.invalid", problem, line=line, field=field) from None


def _required_date(value: str | None, line: int | None, field: str) -> date:
    day = _date(value, line, field)
    if day is None:
        raise BankFileError("field.missing", f"The {field} date is missing.", line=line, field=field)
    return day


def _date_of_datetime(value: str, line: int | None, field: str) -> date:
    """The calendar date of an ISO date-time as written (the bank's own business day, not converted)."""
    text = value.strip()
    match = _DATETIME_RE.fullmatch(text)
    if match is None:
        raise BankFileError(
            "date.invalid", f"{_show(text)} is not an ISO 8601 date-time.", line=line, field=field
        )
    return _required_date(match.group(1), line, field)


def _direction(value: str | None, line: int | None, field: str) -> Direction:
    text = (value or "").strip().upper()
    if text in ("C", "CREDIT", "CRDT"):
        return Direction.CREDIT
    if text in ("D", "DEBIT", "DBIT"):
        return Direction.DEBIT
    if not text:
        raise BankFileError("field.missing", "The direction is missing.", line=line, field=field)
    raise BankFileError(
        "direction.invalid",
        f"The direction {_show(text)} is neither credit (C, CRDT) nor debit (D, DBIT).",
        line=line,
        field=field,
    )


def _kind(value: str | None, line: int | None, field: str) -> LineKind:
    text = (value or "").strip().lower()
    if not text:
        return LineKind.TRANSFER
    try:
        return LineKind(text)
    except ValueError:
        raise BankFileError(
            "kind.invalid",
            f"The kind {_show(text)} is neither transfer nor interest.",
            line=line,
            field=field,
        ) from None


# ---------------------------------------------------------------- outgoing values

_ISO_ID_RE: Final = re.compile(r"[A-Za-z0-9_.:/-]{1,35}")
_ACCOUNT_RE: Final = re.compile(r"[A-Za-z0-9-]{1,34}")
_FORMULA_START: Final = ("=", "+", "-", "@")
_NONCHARACTERS: Final = frozenset("\ufffe\uffff")


def _check_iso_id(value: object, field: str) -> None:
    if not isinstance(value, str) or _ISO_ID_RE.fullmatch(value) is None:
        raise BankFileError(
            "field.invalid",
            f"The {field} must be 1–{ISO_ID_MAX} characters of A–Z, a–z, 0–9, '_', '.', ':', '/' and '-' "
            "(ISO 20022 Max35Text).",
            field=field,
        )


def _check_amount_fen(value: object, field: str) -> None:
    # bool is an int in Python; True fen is never what anyone meant
    if type(value) is not int or value <= 0:
        raise BankFileError(
            "amount.invalid", f"The {field} must be a positive whole number of fen.", field=field
        )
    if value > MAX_AMOUNT_FEN:
        raise BankFileError("amount.too_large", f"The {field} does not fit 64-bit fen.", field=field)


def _check_account(value: object, field: str) -> None:
    if not isinstance(value, str) or _ACCOUNT_RE.fullmatch(value) is None:
        raise BankFileError(
            "field.invalid",
            f"The {field} must be 1–{ISO_ACCOUNT_MAX} letters, digits or '-', without spaces.",
            field=field,
        )


def _check_name(value: object, field: str, *, required: bool) -> None:
    if not isinstance(value, str):
        raise BankFileError("field.invalid", f"The {field} must be text.", field=field)
    if not value.strip():
        if required:
            raise BankFileError("field.missing", f"The {field} is empty.", field=field)
        return
    # format characters (Cf) include the bidirectional overrides that make a name read otherwise than
    # the bank matches it; surrogates and U+FFFE/U+FFFF cannot be written as UTF-8 XML at all
    if any(c in _NONCHARACTERS or unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in value):
        raise BankFileError(
            "field.control_character",
            f"The {field} holds a control or format character (line break, tab, direction override…).",
            field=field,
        )
    if len(value) > ISO_NAME_MAX:
        raise BankFileError(
            "field.too_long",
            f"The {field} is {len(value)} characters; ISO 20022 allows {ISO_NAME_MAX}.",
            field=field,
        )
    if value.startswith(_FORMULA_START):
        raise BankFileError(
            "field.formula_prefix",
            f"The {field} begins with {value[0]!r}, which a spreadsheet would run as a formula.",
            field=field,
        )


# ---------------------------------------------------------------- reading bytes safely


def _format(fmt: str, kind: str) -> str:
    """The format's name in FORMATS; the ISO spelling with a dot ("camt.053") is read as the name."""
    name = _FORMAT_ALIASES.get(fmt, fmt) if isinstance(fmt, str) else fmt
    if name not in FORMATS[kind]:
        raise BankFileError(
            "format.unknown",
            f"{_show(str(fmt))} is not a {kind} format; use one of {', '.join(FORMATS[kind])}.",
            field="fmt",
        )
    return name


def _decode(data: bytes) -> str:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise BankFileError("field.invalid", "The file must be given as bytes.")
    if len(data) > MAX_FILE_BYTES:
        raise BankFileError(
            "file.too_large", f"The file is {len(data):,} bytes; at most {MAX_FILE_BYTES:,} are read."
        )
    raw = bytes(data)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise BankFileError(
            "file.encoding",
            f"The file is not UTF-8 (byte {error.start}); ask the bank for UTF-8, not GBK or GB18030.",
            line=line,
        ) from None
    if not text.strip():
        raise BankFileError("file.empty", "The file is empty.")
    return text


_XML_REFUSED: Final = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_XINCLUDE: Final = "http://www.w3.org/2001/XInclude"
_XML_CHUNK: Final = 1 << 16


def _xml_document(data: bytes, namespace: re.Pattern[str], message: str) -> ET.Element:
    """The ISO 20022 `Document` element of a file, tags reduced to their local names.

    Without a DOCTYPE there are no entities to expand (no billion laughs, no external entities), and
    XInclude is never processed (refused all the same, so no one believes it was). The text is decoded
    first and handed to the parser as a str, so the bytes checked are the bytes parsed whatever encoding a
    declaration claims. It is fed in chunks so depth and element count are bounded while parsing."""
    text = _decode(data)
    if _XML_REFUSED.search(text):
        raise BankFileError(
            "xml.forbidden", "The XML declares a DOCTYPE or an entity; bank files need neither."
        )
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    depth = count = 0
    document: ET.Element | None = None
    document_ns = ""

    def drain() -> None:
        nonlocal depth, count, document, document_ns
        for item in parser.read_events():
            event, element = item[0], item[-1]
            if not isinstance(element, ET.Element):
                continue  # only start and end were asked for; this keeps the type checker sure of it
            if event == "end":
                depth -= 1
                continue
            depth += 1
            count += 1
            if depth > MAX_XML_DEPTH:
                raise BankFileError("xml.too_deep", f"The XML nests deeper than {MAX_XML_DEPTH} elements.")
            if count > MAX_XML_ELEMENTS:
                raise BankFileError(
                    "xml.too_many_elements", f"The XML has over {MAX_XML_ELEMENTS:,} elements."
                )
            tag = element.tag
            ns, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
            if ns == _XINCLUDE:
                raise BankFileError(
                    "xml.forbidden", "The XML uses XInclude; bank files must be one document."
                )
            if local == "Document" and document is None:
                document, document_ns = element, ns
            element.tag = local

    try:
        for start in range(0, len(text), _XML_CHUNK):
            parser.feed(text[start : start + _XML_CHUNK])
            drain()
        parser.close()
        drain()
    except ET.ParseError as error:
        line = error.position[0] if error.position else None
        raise BankFileError("xml.malformed", f"The XML is not well formed: {error.msg}.", line=line) from None
    if document is None or namespace.fullmatch(document_ns) is None:
        found = f"namespace {_show(document_ns, 80)}" if document is not None else "no ISO 20022 Document"
        raise BankFileError(
            "xml.unsupported_message", f"Expected an ISO 20022 {message} Document, found {found}."
        )
    return document


def _csv_rows(
    data: bytes, columns: Sequence[str], required: frozenset[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, values by column, "" for absent optional columns) for each non-blank line."""
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise BankFileError("csv.malformed", f"The header cannot be read: {error}.", line=1) from None
    names = [name.strip().lower() for name in header or []]
    known = set(columns)
    for name in names:
        if name not in known:
            raise BankFileError(
                "csv.unknown_column",
                f"The header names an unknown column {_show(name)}; the columns are {', '.join(columns)}.",
                line=1,
                field=name[:64],
            )
        if names.count(name) > 1:
            raise BankFileError("csv.duplicate_column", f"The header names {name} twice.", line=1, field=name)
    for name in columns:
        if name in required and name not in names:
            raise BankFileError(
                "csv.missing_column", f"The header lacks the required column {name}.", line=1, field=name
            )
    rows = 0
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader, None)
        except csv.Error as error:
            raise BankFileError(
                "csv.malformed", f"The line cannot be split into fields: {error}.", line=line
            ) from None
        if row is None:
            return
        if not any(value.strip() for value in row):
            continue
        rows += 1
        if rows > MAX_LINES:
            raise BankFileError("file.too_many_lines", f"The file has over {MAX_LINES:,} lines.", line=line)
        if len(row) != len(names):
            raise BankFileError(
                "csv.field_count",
                f"The line has {len(row)} fields; the header names {len(names)}.",
                line=line,
            )
        values = dict.fromkeys(columns, "")
        values.update(zip(names, row, strict=True))
        yield line, values


# ---------------------------------------------------------------- statements


def parse_statement(data: bytes, fmt: str) -> Statement:
    """The statement in `data`, a camt.053 ("camt053") or the centre's CSV layout ("csv"); see the
    module docstring for both. Refuses with a BankFileError (codes in ERROR_CODES), never anything else."""
    if _format(fmt, "statement") == "camt053":
        return _camt053(data)
    return _statement_csv(data)


_STATEMENT_COLUMNS: Final = (
    "reference",
    "booked_on",
    "value_on",
    "direction",
    "amount",
    "currency",
    "payer_name",
    "payer_account",
    "payer_bank",
    "credited_account",
    "remittance",
    "end_to_end_id",
    "kind",
)
_STATEMENT_REQUIRED: Final = frozenset({"reference", "booked_on", "direction", "amount", "currency"})


def _line_from_values(values: Mapping[str, str | None], amount_fen: int, line: int | None) -> StatementLine:
    """A statement line from the flat layout shared by the CSV and the notice body."""
    _check_currency(values.get("currency"), line, "currency")
    booked_on = _required_date(values.get("booked_on"), line, "booked_on")
    return StatementLine(
        reference=_identifier(values.get("reference"), line, "reference", required=True),
        direction=_direction(values.get("direction"), line, "direction"),
        amount_fen=amount_fen,
        booked_on=booked_on,
        value_on=_date(values.get("value_on"), line, "value_on"),
        payer_name=_free_text(values.get("payer_name"), line, "payer_name"),
        payer_account=_identifier(values.get("payer_account"), line, "payer_account", required=False),
        payer_bank=_free_text(values.get("payer_bank"), line, "payer_bank"),
        credited_account=_identifier(
            values.get("credited_account"), line, "credited_account", required=False
        ),
        remittance=_free_text(values.get("remittance"), line, "remittance"),
        end_to_end_id=_end_to_end(values.get("end_to_end_id"), line, "end_to_end_id"),
        kind=_kind(values.get("kind"), line, "kind"),
    )


def _check_unique_references(lines: Sequence[tuple[StatementLine, int | None, str | None]]) -> None:
    first: dict[str, int | str | None] = {}
    for item, line, where in lines:
        if item.reference in first:
            seen = first[item.reference]
            earlier = f"line {seen}" if isinstance(seen, int) else (seen or "an earlier line")
            raise BankFileError(
                "statement.duplicate_reference",
                f"The reference {_show(item.reference)} appears twice (first at {earlier}); each line "
                "needs the bank's unique reference.",
                line=line,
                field=where or "reference",
            )
        first[item.reference] = line if line is not None else where


def _statement_csv(data: bytes) -> Statement:
    lines: list[tuple[StatementLine, int | None, str | None]] = []
    for line, values in _csv_rows(data, _STATEMENT_COLUMNS, _STATEMENT_REQUIRED):
        amount_fen = _amount(values["amount"], line, "amount")
        lines.append((_line_from_values(values, amount_fen, line), line, None))
    _check_unique_references(lines)
    return Statement(
        statement_id="sha256:" + hashlib.sha256(data).hexdigest(),
        account="",
        currency=CURRENCY,
        opening_balance_fen=None,
        closing_balance_fen=None,
        lines=tuple(item for item, _, _ in lines),
    )


_CAMT053_NS: Final = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.0[2-8]")


def _text(element: ET.Element | None, *paths: str) -> str:
    """The trimmed text of the first of `paths` under `element` that has any, else ""."""
    if element is None:
        return ""
    for path in paths:
        found = element.find(path)
        if found is not None and found.text is not None and found.text.strip():
            return found.text.strip()
    return ""


def _account_id(element: ET.Element | None) -> str:
    return _text(element, "Id/Othr/Id", "Id/IBAN")


def _xml_amount(element: ET.Element | None, where: str, *, allow_zero: bool = False) -> int:
    if element is None:
        raise BankFileError("field.missing", "The amount is missing.", field=where)
    _check_currency(element.get("Ccy"), None, f"{where}/@Ccy")
    return _amount(element.text or "", None, where, allow_zero=allow_zero)


def _xml_date(element: ET.Element | None, where: str) -> date | None:
    """A `Dt` or `DtTm` choice (booking and value dates); None when neither is given."""
    day = _text(element, "Dt")
    if day:
        return _required_date(day, None, f"{where}/Dt")
    moment = _text(element, "DtTm")
    if moment:
        return _date_of_datetime(moment, None, f"{where}/DtTm")
    return None


def _signed_direction(element: ET.Element, where: str) -> Direction:
    return _direction(_text(element, "CdtDbtInd") or None, None, f"{where}/CdtDbtInd")


def _balances(stmt: ET.Element) -> tuple[int | None, int | None]:
    found: dict[str, int] = {}
    for n, balance in enumerate(stmt.findall("Bal"), 1):
        code = _text(balance, "Tp/CdOrPrtry/Cd").upper()
        if code not in ("OPBD", "PRCD", "CLBD") or code in found:
            continue
        where = f"Stmt/Bal[{n}]"
        amount = _xml_amount(balance.find("Amt"), f"{where}/Amt", allow_zero=True)
        sign = 1 if _signed_direction(balance, where) is Direction.CREDIT else -1
        found[code] = sign * amount
    opening = found.get("OPBD", found.get("PRCD"))
    return opening, found.get("CLBD")


def _camt053(data: bytes) -> Statement:
    document = _xml_document(data, _CAMT053_NS, "camt.053 (versions 001.02 to 001.08)")
    statements = document.findall("BkToCstmrStmt/Stmt")
    if not statements:
        raise BankFileError("statement.missing", "The camt.053 holds no statement (BkToCstmrStmt/Stmt).")
    if len(statements) > 1:
        raise BankFileError(
            "statement.multiple",
            f"The camt.053 holds {len(statements)} statements; ask the bank for one statement per file.",
        )
    stmt = statements[0]
    statement_id = _identifier(_text(stmt, "Id"), None, "Stmt/Id", required=True)
    account = _identifier(_account_id(stmt.find("Acct")), None, "Stmt/Acct/Id", required=True)
    currency = _text(stmt, "Acct/Ccy") or CURRENCY
    _check_currency(currency, None, "Stmt/Acct/Ccy")
    opening, closing = _balances(stmt)
    lines: list[tuple[StatementLine, int | None, str | None]] = []
    for n, entry in enumerate(stmt.findall("Ntry"), 1):
        for item, where in _entry_lines(entry, f"Stmt/Ntry[{n}]"):
            lines.append((item, None, where))
            if len(lines) > MAX_LINES:
                raise BankFileError("file.too_many_lines", f"The statement has over {MAX_LINES:,} lines.")
    _check_unique_references(lines)
    if opening is not None and closing is not None:
        moved = sum(
            item.amount_fen if item.direction is Direction.CREDIT else -item.amount_fen
            for item, _, _ in lines
        )
        if opening + moved != closing:
            raise BankFileError(
                "statement.balance_mismatch",
                f"Opening balance {opening} fen plus the lines' {moved:+} fen is {opening + moved} fen, not "
                f"the closing balance {closing} fen: a line is missing or doubled. Ask the bank to resend.",
                field="Stmt/Bal",
            )
    return Statement(
        statement_id=statement_id,
        account=account,
        currency=currency,
        opening_balance_fen=opening,
        closing_balance_fen=closing,
        lines=tuple(item for item, _, _ in lines),
    )


def _entry_lines(entry: ET.Element, where: str) -> list[tuple[StatementLine, str]]:
    """The lines of one `Ntry`: itself, or each of its transactions when it batches several."""
    status = _text(entry, "Sts", "Sts/Cd").upper()
    if status and status != "BOOK":
        return []  # pending or information only: not money on the account yet
    amount = _xml_amount(entry.find("Amt"), f"{where}/Amt")
    direction = _signed_direction(entry, where)
    booked_on = _xml_date(entry.find("BookgDt"), f"{where}/BookgDt")
    if booked_on is None:
        raise BankFileError("field.missing", "The booking date is missing.", field=f"{where}/BookgDt")
    value_on = _xml_date(entry.find("ValDt"), f"{where}/ValDt")
    details = [tx for block in entry.findall("NtryDtls") for tx in block.findall("TxDtls")]
    if len(details) <= 1:
        tx = details[0] if details else None
        tx_where = f"{where}/NtryDtls/TxDtls[1]" if details else where
        reference = _text(tx, "Refs/AcctSvcrRef") or _text(entry, "AcctSvcrRef", "NtryRef")
        line = _camt_line(entry, tx, tx_where, reference, direction, amount, booked_on, value_on)
        return [(line, tx_where)]
    lines: list[tuple[StatementLine, str]] = []
    total = 0
    for k, tx in enumerate(details, 1):
        tx_where = f"{where}/NtryDtls/TxDtls[{k}]"
        reference = _text(tx, "Refs/AcctSvcrRef")
        if not reference:
            raise BankFileError(
                "statement.batch_reference",
                f"The entry batches {len(details)} transactions and transaction {k} has no AcctSvcrRef of its "
                "own; each needs one to be recognised when it comes again.",
                field=f"{tx_where}/Refs/AcctSvcrRef",
            )
        amount_element = tx.find("Amt")
        if amount_element is None:
            amount_element = tx.find("AmtDtls/TxAmt/Amt")
        if amount_element is None:
            raise BankFileError(
                "statement.batch_amount",
                f"The entry batches {len(details)} transactions and transaction {k} gives no amount.",
                field=f"{tx_where}/Amt",
            )
        tx_amount = _xml_amount(amount_element, f"{tx_where}/Amt")
        tx_direction = _signed_direction(tx, tx_where) if _text(tx, "CdtDbtInd") else direction
        total += tx_amount if tx_direction is direction else -tx_amount
        lines.append(
            (
                _camt_line(entry, tx, tx_where, reference, tx_direction, tx_amount, booked_on, value_on),
                tx_where,
            )
        )
    if total != amount:
        raise BankFileError(
            "statement.batch_amount",
            f"The entry's {len(details)} transactions add up to {total} fen, not the entry's {amount} fen.",
            field=f"{where}/Amt",
        )
    return lines


def _camt_line(
    entry: ET.Element,
    tx: ET.Element | None,
    where: str,
    reference: str,
    direction: Direction,
    amount_fen: int,
    booked_on: date,
    value_on: date | None,
) -> StatementLine:
    family = _text(tx, "BkTxCd/Domn/Fmly/SubFmlyCd") or _text(entry, "BkTxCd/Domn/Fmly/SubFmlyCd")
    remittance = " ".join(
        text
        for u in (tx.findall("RmtInf/Ustrd") if tx is not None else [])
        if (text := (u.text or "").strip())
    )
    agent = tx.find("RltdAgts/DbtrAgt/FinInstnId") if tx is not None else None
    return StatementLine(
        reference=_identifier(reference, None, f"{where}/Refs/AcctSvcrRef", required=True),
        direction=direction,
        amount_fen=amount_fen,
        booked_on=booked_on,
        value_on=value_on,
        payer_name=_free_text(
            _text(tx, "RltdPties/Dbtr/Nm", "RltdPties/Dbtr/Pty/Nm"), None, f"{where}/RltdPties/Dbtr"
        ),
        payer_account=_identifier(
            _account_id(tx.find("RltdPties/DbtrAcct") if tx is not None else None),
            None,
            f"{where}/RltdPties/DbtrAcct",
            required=False,
        ),
        payer_bank=_free_text(
            _text(agent, "Nm", "BICFI", "BIC", "ClrSysMmbId/MmbId"), None, f"{where}/RltdAgts"
        ),
        credited_account=_identifier(
            _account_id(tx.find("RltdPties/CdtrAcct") if tx is not None else None),
            None,
            f"{where}/RltdPties/CdtrAcct",
            required=False,
        ),
        remittance=_free_text(
            remittance or _text(tx, "AddtlTxInf") or _text(entry, "AddtlNtryInf"), None, f"{where}/RmtInf"
        ),
        end_to_end_id=_end_to_end(_text(tx, "Refs/EndToEndId"), None, f"{where}/Refs/EndToEndId"),
        kind=LineKind.INTEREST if family.upper() == "INTR" else LineKind.TRANSFER,
    )


# ---------------------------------------------------------------- signed arrival notices

_SIGNATURE_HEX_RE: Final = re.compile(r"[0-9a-fA-F]{64}")
_TIMESTAMP_RE: Final = re.compile(r"[0-9]{1,12}")
_NOTIFICATION_KEYS: Final = frozenset(_STATEMENT_COLUMNS) - {"amount"} | {"amount_fen"}
_NOTIFICATION_REQUIRED: Final = ("reference", "booked_on", "direction", "amount_fen", "currency")


def _check_aware(now: datetime) -> None:
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise BankFileError("time.naive", "`now` must be a timezone-aware datetime from the clock.")


def _signature(body: bytes, timestamp: int, secret: bytes) -> bytes:
    return hmac.new(secret, f"{timestamp}.".encode("ascii") + body, hashlib.sha256).digest()


def sign_notification(body: bytes, secret: bytes, now: datetime) -> str:
    """The signature header for `body` at `now`, as the bank sends it: "t=<unix seconds>,v1=<hex>" with
    the HMAC-SHA256 under `secret` of "<t>." followed by the body (for the bank simulator and tests)."""
    _check_aware(now)
    if not secret:
        raise BankFileError("notification.config", "The signing secret is empty.")
    timestamp = int(now.timestamp())
    return f"t={timestamp},v1={_signature(bytes(body), timestamp, secret).hex()}"


def _parse_signature_header(header: str) -> tuple[int, list[bytes]]:
    def malformed(why: str) -> BankFileError:
        return BankFileError(
            "notification.header",
            f"The signature header is malformed ({why}); expected t=<unix seconds>,v1=<64 hex digits>.",
            field="signature",
        )

    if not isinstance(header, str) or len(header) > 4096:
        raise malformed("not text, or too long")
    timestamp: int | None = None
    signatures: list[bytes] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            raise malformed(f"{_show(part.strip(), 20)} is not key=value")
        if key == "t":
            if timestamp is not None or _TIMESTAMP_RE.fullmatch(value) is None:
                raise malformed("t must appear once, as whole seconds")
            timestamp = int(value)
        elif key == "v1":
            if _SIGNATURE_HEX_RE.fullmatch(value) is None:
                raise malformed("v1 must be 64 hex digits")
            signatures.append(bytes.fromhex(value))
        # other schemes are ignored, so the bank can add one before the centre reads it
    if timestamp is None:
        raise malformed("no t")
    if not signatures:
        raise malformed("no v1")
    return timestamp, signatures


def verify_notification(
    body: bytes,
    signature_header: str,
    secret: bytes,
    now: datetime,
    tolerance: timedelta = timedelta(minutes=5),
) -> StatementLine:
    """The statement line in a signed arrival notice, once the signature and the time are verified.

    Refuses with "notification.header" (malformed header), "notification.signature" (no v1 matches, in
    constant time), "notification.stale" (signed more than `tolerance` before or after `now`: a replay or
    a wrong clock), "notification.body" / "notification.unknown_field" (not the layout), and the field
    codes of the CSV layout. Only an authentic body is parsed."""
    _check_aware(now)
    if not secret or tolerance < timedelta(0):
        raise BankFileError("notification.config", "The secret is empty or the tolerance negative.")
    if not isinstance(body, bytes | bytearray) or len(body) > MAX_NOTIFICATION_BYTES:
        raise BankFileError(
            "notification.body", f"The notice body must be bytes, at most {MAX_NOTIFICATION_BYTES:,}."
        )
    raw = bytes(body)
    timestamp, signatures = _parse_signature_header(signature_header)
    expected = _signature(raw, timestamp, secret)
    matched = False
    for candidate in signatures:
        # every candidate is compared, so the time taken says nothing about which one matched
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise BankFileError(
            "notification.signature",
            "The notice's signature does not match its body under the current secret; it is refused.",
            field="signature",
        )
    skew = now.timestamp() - timestamp
    if abs(skew) > tolerance.total_seconds():
        raise BankFileError(
            "notification.stale",
            f"The notice was signed {abs(skew):.0f} seconds {'before' if skew > 0 else 'after'} now; more "
            f"than {tolerance.total_seconds():.0f} apart is refused as a replay or a wrong clock.",
            field="t",
        )
    return _notification_line(raw)


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise BankFileError("notification.body", f"The key {_show(key)} appears twice.", field=key[:64])
        result[key] = value
    return result


def _refuse_constant(name: str) -> object:
    raise BankFileError("notification.body", f"{name} is not a JSON number.")


def _notification_line(body: bytes) -> StatementLine:
    try:
        obj = json.loads(
            body.decode("utf-8"), object_pairs_hook=_no_duplicate_keys, parse_constant=_refuse_constant
        )
    except BankFileError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise BankFileError("notification.body", f"The notice body is not UTF-8 JSON: {error}.") from None
    if not isinstance(obj, dict):
        raise BankFileError("notification.body", "The notice body must be one JSON object.")
    for key in obj:
        if key not in _NOTIFICATION_KEYS:
            raise BankFileError(
                "notification.unknown_field",
                f"The notice names an unknown key {_show(key)}; the keys are {', '.join(sorted(_NOTIFICATION_KEYS))}.",
                field=key[:64],
            )
    for key in _NOTIFICATION_REQUIRED:
        if obj.get(key) is None:
            raise BankFileError("field.missing", f"The notice lacks {key}.", field=key)
    amount_fen = obj["amount_fen"]
    if type(amount_fen) is not int or amount_fen <= 0:
        raise BankFileError(
            "amount.invalid", "amount_fen must be a positive whole number of fen.", field="amount_fen"
        )
    if amount_fen > MAX_AMOUNT_FEN:
        raise BankFileError("amount.too_large", "amount_fen does not fit 64-bit fen.", field="amount_fen")
    values: dict[str, str | None] = {}
    for key, value in obj.items():
        if key == "amount_fen":
            continue
        if value is None or isinstance(value, str):
            values[key] = value
        else:
            raise BankFileError("field.invalid", f"{key} must be a string or null.", field=key)
    return _line_from_values(values, amount_fen, None)


# ---------------------------------------------------------------- refund instructions out

_PAIN001_NS: Final = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"
_PAYMENT_COLUMNS: Final = (
    "batch_id",
    "end_to_end_id",
    "debtor_account",
    "amount",
    "currency",
    "payee_name",
    "payee_account",
    "payee_bank",
    "remittance",
)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def _account_element(parent: ET.Element, tag: str, number: str, *, currency: bool = False) -> None:
    account = _sub(parent, tag)
    _sub(_sub(_sub(account, "Id"), "Othr"), "Id", number)
    if currency:
        _sub(account, "Ccy", CURRENCY)


def _agent_element(parent: ET.Element, tag: str, name: str) -> None:
    _sub(_sub(_sub(parent, tag), "FinInstnId"), "Nm", name)


def payment_xml(batch: PaymentBatch) -> bytes:
    """The batch as an ISO 20022 pain.001.001.03 file (UTF-8): a group header with the batch id, its
    creation time, the number of instructions and their sum; one payment information block debiting the
    escrow account; one credit transfer per instruction. The same batch always gives the same bytes."""
    created = batch.created_at.astimezone(CHINA_TIME)
    count, total = str(len(batch.instructions)), format_amount(batch.total_fen)
    root = ET.Element("Document", {"xmlns": _PAIN001_NS})
    initiation = _sub(root, "CstmrCdtTrfInitn")
    header = _sub(initiation, "GrpHdr")
    _sub(header, "MsgId", batch.batch_id)
    _sub(header, "CreDtTm", created.isoformat(timespec="seconds"))
    _sub(header, "NbOfTxs", count)
    _sub(header, "CtrlSum", total)
    _sub(_sub(header, "InitgPty"), "Nm", batch.debtor_name)
    block = _sub(initiation, "PmtInf")
    _sub(block, "PmtInfId", batch.batch_id)
    _sub(block, "PmtMtd", "TRF")
    _sub(block, "NbOfTxs", count)
    _sub(block, "CtrlSum", total)
    _sub(block, "ReqdExctnDt", created.date().isoformat())
    _sub(_sub(block, "Dbtr"), "Nm", batch.debtor_name)
    _account_element(block, "DbtrAcct", batch.debtor_account, currency=True)
    _agent_element(block, "DbtrAgt", batch.debtor_bank)
    for item in batch.instructions:
        transfer = _sub(block, "CdtTrfTxInf")
        _sub(_sub(transfer, "PmtId"), "EndToEndId", item.end_to_end_id)
        _sub(_sub(transfer, "Amt"), "InstdAmt", format_amount(item.amount_fen), Ccy=CURRENCY)
        _agent_element(transfer, "CdtrAgt", item.payee_bank)
        _sub(_sub(transfer, "Cdtr"), "Nm", item.payee_name)
        _account_element(transfer, "CdtrAcct", item.payee_account)
        if item.remittance.strip():
            _sub(_sub(transfer, "RmtInf"), "Ustrd", item.remittance)
    ET.indent(root)
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode").encode() + b"\n"
    )


def payment_csv(batch: PaymentBatch) -> bytes:
    """The batch in the centre's payment CSV layout (see the module docstring): one line per instruction,
    UTF-8, CRLF. The same batch always gives the same bytes."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_PAYMENT_COLUMNS)
    for item in batch.instructions:
        writer.writerow(
            (
                batch.batch_id,
                item.end_to_end_id,
                batch.debtor_account,
                format_amount(item.amount_fen),
                CURRENCY,
                item.payee_name,
                item.payee_account,
                item.payee_bank,
                item.remittance,
            )
        )
    return out.getvalue().encode("utf-8")


# ---------------------------------------------------------------- refund results in

_PAIN002_NS: Final = re.compile(r"urn:iso:std:iso:20022:tech:xsd:pain\.002\.001\.(?:0[3-9]|1[0-2])")
# ACSP and ACCP say the bank accepted the payment, not that it reached the payee. They count as paid
# because the centre's intake specifies it; `PaymentResult.status` keeps the bank's word, so a later RJCT
# for the same id can be recognised (against a posted refund it calls for a reversal, not a void).
_PAID: Final = frozenset({"ACSC", "ACCC", "ACSP", "ACCP"})
_FAILED: Final = frozenset({"RJCT", "CANC"})
_INTERIM: Final = frozenset(
    {"RCVD", "ACTC", "PDNG", "ACWC", "ACFC", "ACIS", "ACPD", "ACWP", "BLCK", "PATC", "PART"}
)
_RESULT_COLUMNS: Final = ("end_to_end_id", "status", "reason", "bank_reference", "paid_on")
_RESULT_REQUIRED: Final = frozenset({"end_to_end_id", "status"})


def parse_results(data: bytes, fmt: str) -> list[PaymentResult]:
    """The bank's results of refund instructions, from a pain.002 ("pain002") or the centre's CSV layout
    ("csv"); see the module docstring for both. One result per instruction, in the file's order; an
    instruction named twice is refused ("results.duplicate_end_to_end_id")."""
    if _format(fmt, "results") == "pain002":
        return _pain002(data)
    return _results_csv(data)


def _check_unique_results(results: Sequence[tuple[str, int | None, str | None]]) -> None:
    seen: set[str] = set()
    for end_to_end_id, line, where in results:
        if end_to_end_id in seen:
            raise BankFileError(
                "results.duplicate_end_to_end_id",
                f"Instruction {_show(end_to_end_id)} has two results in one file; which one holds?",
                line=line,
                field=where or "end_to_end_id",
            )
        seen.add(end_to_end_id)


def _results_csv(data: bytes) -> list[PaymentResult]:
    results: list[PaymentResult] = []
    where: list[tuple[str, int | None, str | None]] = []
    for line, values in _csv_rows(data, _RESULT_COLUMNS, _RESULT_REQUIRED):
        end_to_end_id = _identifier(values["end_to_end_id"], line, "end_to_end_id", required=True)
        status = values["status"].strip().lower()
        if status not in ("paid", "failed"):
            raise BankFileError(
                "results.status" if status else "field.missing",
                f"The status {_show(status)} is neither paid nor failed.",
                line=line,
                field="status",
            )
        paid = status == "paid"
        paid_on = _date(values["paid_on"], line, "paid_on")
        if not paid and paid_on is not None:
            raise BankFileError(
                "field.invalid",
                "A failed payment has no paid_on date; is the status right?",
                line=line,
                field="paid_on",
            )
        results.append(
            PaymentResult(
                end_to_end_id=end_to_end_id,
                paid=paid,
                reason=_free_text(values["reason"], line, "reason"),
                bank_reference=_identifier(values["bank_reference"], line, "bank_reference", required=False),
                paid_on=paid_on,
                status=status,
            )
        )
        where.append((end_to_end_id, line, None))
    _check_unique_results(where)
    return results


def _reason(tx: ET.Element, where: str) -> str:
    parts: list[str] = []
    for info in tx.findall("StsRsnInf"):
        code = _text(info, "Rsn/Cd", "Rsn/Prtry")
        extra = " ".join(t for element in info.findall("AddtlInf") if (t := (element.text or "").strip()))
        parts.append(": ".join(part for part in (code, extra) if part))
    return _free_text("; ".join(part for part in parts if part), None, f"{where}/StsRsnInf")


def _pain002(data: bytes) -> list[PaymentResult]:
    document = _xml_document(data, _PAIN002_NS, "pain.002 (versions 001.03 to 001.12)")
    report = document.find("CstmrPmtStsRpt")
    if report is None:
        raise BankFileError("field.missing", "The pain.002 has no CstmrPmtStsRpt.", field="CstmrPmtStsRpt")
    group_status = _text(report, "OrgnlGrpInfAndSts/GrpSts")
    found: list[tuple[ET.Element, str, str]] = []
    block_statuses: list[str] = []
    for p, block in enumerate(report.findall("OrgnlPmtInfAndSts"), 1):
        block_status = _text(block, "PmtInfSts")
        block_statuses.append(block_status)
        for k, tx in enumerate(block.findall("TxInfAndSts"), 1):
            found.append((tx, block_status or group_status, f"OrgnlPmtInfAndSts[{p}]/TxInfAndSts[{k}]"))
            if len(found) > MAX_LINES:
                raise BankFileError("file.too_many_lines", f"The report has over {MAX_LINES:,} results.")
    if not found:
        shown = group_status or next((s for s in block_statuses if s), "")
        if shown:
            raise BankFileError(
                "results.group_status_only",
                f"The report gives only a group status ({_show(shown)}) and no per-transaction status; ask "
                "the bank for a report with TxInfAndSts for every instruction.",
                field="OrgnlGrpInfAndSts/GrpSts",
            )
        raise BankFileError("results.empty", "The report gives no payment status at all.")
    results: list[PaymentResult] = []
    seen: list[tuple[str, int | None, str | None]] = []
    for tx, inherited, where in found:
        end_to_end_id = _identifier(
            _text(tx, "OrgnlEndToEndId"), None, f"{where}/OrgnlEndToEndId", required=True
        )
        seen.append((end_to_end_id, None, f"{where}/OrgnlEndToEndId"))
        status = (_text(tx, "TxSts") or inherited).upper()
        if not status:
            raise BankFileError("field.missing", "The transaction has no status.", field=f"{where}/TxSts")
        if status in _INTERIM:
            continue  # the bank will report again when it knows
        if status not in _PAID and status not in _FAILED:
            raise BankFileError(
                "results.status",
                f"The status {_show(status)} is not one the centre knows (paid: {', '.join(sorted(_PAID))}; "
                f"failed: {', '.join(sorted(_FAILED))}).",
                field=f"{where}/TxSts",
            )
        paid = status in _PAID
        paid_on: date | None = None
        if paid:
            # the settlement date where the bank gives one (later versions), else the acceptance date
            paid_on = _xml_date(tx.find("FctvIntrBkSttlmDt"), f"{where}/FctvIntrBkSttlmDt")
            accepted = _text(tx, "AccptncDtTm")
            if paid_on is None and accepted:
                paid_on = _date_of_datetime(accepted, None, f"{where}/AccptncDtTm")
        results.append(
            PaymentResult(
                end_to_end_id=end_to_end_id,
                paid=paid,
                reason=_reason(tx, where),
                bank_reference=_identifier(
                    _text(tx, "AcctSvcrRef"), None, f"{where}/AcctSvcrRef", required=False
                ),
                paid_on=paid_on,
                status=status,
            )
        )
    _check_unique_results(seen)
    return results
