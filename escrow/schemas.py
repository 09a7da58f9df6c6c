"""Inputs and outputs of the escrow API (msgspec Structs; unknown fields are refused)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

PositiveFen = Annotated[int, msgspec.Meta(ge=1, le=10**15)]
Note = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
AccountNumber = Annotated[str, msgspec.Meta(min_length=4, max_length=60, pattern=r"^[0-9A-Za-z-]+$")]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for request bodies: an unknown field is an error."""


class GuaranteeIn(Strict):
    """A bank guarantee or guarantee insurance (保函 / 保证保险) lodged for a deposit."""

    kind: Literal["bank_guarantee", "guarantee_insurance"]
    issuer: Name
    number: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    amount_fen: PositiveFen
    valid_from: date
    valid_until: date


class Decision(Strict):
    """A centre officer's or supervisor's decision, with its grounds."""

    approve: bool
    note: Note


class MatchIn(Strict):
    """Match a suspense line to a deposit sub-account."""

    deposit_id: uuid.UUID
    note: Note


class ReturnIn(Strict):
    """Return a suspense line to the account it came from."""

    note: Note


class RateIn(Strict):
    """A rate taking effect from a day (M-02, M-03); the percentage is decimal text, e.g. "0.35"."""

    kind: Literal["deposit", "lpr"]
    effective_from: date
    annual_percent: Annotated[str, msgspec.Meta(max_length=9, pattern=r"^[0-9]{1,2}(\.[0-9]{1,6})?$")]
    source: Note


class PayeeIn(Strict):
    """An approved change of the refund account."""

    payee_name: Name
    payee_account: AccountNumber
    payee_bank: Name
    reason: Note
    approval: Note


class ConflictDecision(Strict):
    """A centre officer's decision on a bank line conflict, with its grounds."""

    decision: Literal["known", "incoming"]
    note: Note


class ForfeitureIn(Strict):
    """A proposal to keep a deposit, with its legal reason."""

    rule: Literal["W-06", "W-16"]
    reason: Note


class Check(msgspec.Struct):
    name: str
    ok: bool
    detail: str
    offenders: list[str]
    total: int


class VerifyOut(msgspec.Struct):
    ok: bool
    offender_limit: int
    checks: list[Check]


def plain(row: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """A row's named attributes as JSON-ready values (UUIDs and instants as text)."""
    out: dict[str, Any] = {}
    for name in fields:
        value = getattr(row, name)
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif isinstance(value, datetime | date):
            value = value.isoformat()
        out[name] = value
    return out
