"""Inputs and outputs of the expert pool API (专家库; msgspec Structs, request bodies refuse unknown fields)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

CODE_PATTERN = r"^[A-Z][0-9A-Z]{0,19}$"
Code = Annotated[str, msgspec.Meta(max_length=20, pattern=CODE_PATTERN, description="A specialty code")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
LongName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
RegionCode = Annotated[str, msgspec.Meta(max_length=6, pattern=r"^[0-9]{6}$")]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
Phone = Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9][0-9 ()-]{2,29}$", max_length=30)]
Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=200)]
CreditCode = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
Reason = Annotated[str, msgspec.Meta(min_length=5, max_length=2000)]
Note = Annotated[str, msgspec.Meta(min_length=10, max_length=2000)]
Codes = Annotated[list[Code], msgspec.Meta(min_length=1, max_length=20)]

ExpertStatus = Literal["active", "suspended", "retired"]
RelationshipKind = Literal["former_employer", "relative"]
CentreCreditKind = Literal["complaint_upheld", "late", "absent", "other"]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for request bodies: an unknown field is an error."""


# ---------------------------------------------------------------- in


class SpecialtyIn(Strict):
    """One node of the specialty tree; a parent must be in the same tree and a prefix of the code."""

    code: Code
    name: LongName
    parent_code: Code | None = None
    active: bool = True


class ExpertUpdate(Strict):
    """The centre's change to an expert: status and term; fields left out stay as they are."""

    status: ExpertStatus | msgspec.UnsetType = msgspec.UNSET
    term_start: date | msgspec.UnsetType | None = msgspec.UNSET
    term_end: date | msgspec.UnsetType | None = msgspec.UNSET


class Enrolment(Strict):
    """A user with the expert role applies to join the pool; the employer is the caller's organisation."""

    name: Name
    region_code: RegionCode
    title: Title
    specialties: Codes
    phone: Phone | None = None
    email: Email | None = None
    term_start: date | None = None
    term_end: date | None = None


class ProfileChange(Strict):
    """Changes an expert proposes to their own profile; they apply when the centre approves them."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    region_code: RegionCode | msgspec.UnsetType = msgspec.UNSET
    title: Title | msgspec.UnsetType = msgspec.UNSET
    specialties: Codes | msgspec.UnsetType = msgspec.UNSET
    phone: Phone | msgspec.UnsetType | None = msgspec.UNSET
    email: Email | msgspec.UnsetType | None = msgspec.UNSET
    term_start: date | msgspec.UnsetType | None = msgspec.UNSET
    term_end: date | msgspec.UnsetType | None = msgspec.UNSET


class RejectionIn(Strict):
    """The centre turns down an enrolment or proposed changes, saying why."""

    reason: Reason


class RelationshipIn(Strict):
    """A relationship that may call for avoidance (回避, G-08): a former employer, or an organisation
    where a close relative works."""

    kind: RelationshipKind
    credit_code: CreditCode
    organisation_name: LongName
    relation: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    start_on: date | None = None
    end_on: date | None = None


class UnavailabilityIn(Strict):
    """Days (inclusive) the expert cannot evaluate."""

    start_on: date
    end_on: date
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class CreditIn(Strict):
    """A line the centre adds to an expert's credit record. `points` only for `other` (1 to 20)."""

    kind: CentreCreditKind
    note: Note
    points: Annotated[int, msgspec.Meta(ge=1, le=20)] | None = None
    tender_id: uuid.UUID | None = None


# ---------------------------------------------------------------- out


class SpecialtyRead(msgspec.Struct, kw_only=True):
    """One node of the specialty tree (专业分类): its code, its parent's code (null at the root), its name,
    and whether it can still be drawn for."""

    code: str
    parent_code: str | None
    name: str
    active: bool


class ImportResult(msgspec.Struct, kw_only=True):
    """What an import did: rows that made a new expert, changed one, or matched one exactly."""

    created: int
    updated: int
    unchanged: int


class RejectionRead(msgspec.Struct, kw_only=True):
    """The centre's last refusal of an enrolment or of proposed changes: the reason and when (ISO 8601)."""

    reason: str
    at: datetime


class ExpertRead(msgspec.Struct, kw_only=True):
    """An expert as the pool holds them (approved values). `phone` and `email` are personal data: only
    the centre and the expert themself see them; for anyone else they are null."""

    id: uuid.UUID
    number: str
    user_id: uuid.UUID | None
    name: str
    employer_credit_code: str
    employer_name: str
    region_code: str
    title: str
    specialties: list[str]
    status: str
    term_start: date | None
    term_end: date | None
    phone: str | None
    email: str | None
    created_at: datetime
    approved_at: datetime | None
    version: int
    pending_changes: (
        Annotated[
            dict[str, Any],
            msgspec.Meta(
                description=(
                    "The changes awaiting the centre's approval: the `ProfileChange` fields proposed, by name "
                    "(phone and email null for anyone but the centre and the expert)."
                )
            ),
        ]
        | None
    )
    proposed_at: datetime | None
    rejection: RejectionRead | None


class RelationshipRead(msgspec.Struct, kw_only=True):
    """A relationship the expert declared (G-08 avoidance): a former employer or an organisation where a
    close relative works, by credit code, with the days it started and ended (null when open)."""

    id: uuid.UUID
    kind: str
    credit_code: str
    organisation_name: str
    relation: str | None
    start_on: date | None
    end_on: date | None
    declared_at: datetime


class UnavailabilityRead(msgspec.Struct, kw_only=True):
    """Days (inclusive, YYYY-MM-DD) the expert declared they cannot evaluate, and when they declared it."""

    id: uuid.UUID
    start_on: date
    end_on: date
    reason: str | None
    declared_at: datetime


class ExpertDetail(ExpertRead, kw_only=True):
    """An expert with their declared relationships and unavailable days."""

    relationships: list[RelationshipRead]
    unavailability: list[UnavailabilityRead]


class ExpertPage(msgspec.Struct, kw_only=True):
    """One page of experts by number; pass `next_cursor` as `cursor` for the next (null on the last)."""

    items: list[ExpertRead]
    next_cursor: str | None


class CreditEventRead(msgspec.Struct, kw_only=True):
    """One line of an expert's credit record: its kind, the points it takes off, the tender it concerns,
    when (ISO 8601), the note, who recorded it, and whether it counts toward today's score."""

    id: uuid.UUID
    kind: str
    points: int
    tender_id: uuid.UUID | None
    at: datetime
    note: str | None
    recorded_by: str
    counted: bool  # within the two years the score looks back on


class CreditRecord(msgspec.Struct, kw_only=True):
    """An expert's credit record on a day: the score (100 less the points of the last two years, never
    below 0) and every event, newest first."""

    expert_id: uuid.UUID
    on: date
    score: int
    events: list[CreditEventRead]
