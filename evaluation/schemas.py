"""Request and response bodies of the draw and the evaluation room (msgspec Structs). The pool's are in
`evaluation.pool_schemas`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

Reason = Annotated[str, msgspec.Meta(min_length=10, max_length=2000)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for request bodies: an unknown field is an error."""


class QuotaIn(Strict):
    specialty: Annotated[str, msgspec.Meta(pattern=r"^[A-Z][0-9A-Z]{0,19}$")]
    seats: Annotated[int, msgspec.Meta(ge=1, le=50)]


class DrawCreate(Strict):
    """The committee the agency asks for (W-10, G-07): quotas per specialty, its representative's seat if any,
    when and for how long the room sits, how long an expert has to answer, and the avoidance settings."""

    evaluation_at: datetime
    quotas: Annotated[list[QuotaIn], msgspec.Meta(min_length=1, max_length=10)]
    representative_user_id: uuid.UUID | None = None
    room_hours: Annotated[int, msgspec.Meta(ge=1, le=72)] = 8
    invitation_minutes: Annotated[int, msgspec.Meta(ge=10, le=2880)] = 120
    employer_limit: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    min_credit_score: Annotated[int, msgspec.Meta(ge=0, le=100)] = 60
    max_services_for_tenderer: Annotated[int, msgspec.Meta(ge=1, le=50)] = 3


class DrawRun(Strict):
    """Entropy a supervisor contributes after the commitment is published (may be empty)."""

    witness: Annotated[str, msgspec.Meta(max_length=200)] = ""


class DrawAbort(Strict):
    reason: Reason


class InvitationAnswer(Strict):
    accept: bool
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class Declaration(Strict):
    """The no-conflict declaration (G-08); `no_conflict: false` recuses, with the statement why."""

    no_conflict: bool
    statement: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class ChairVote(Strict):
    seat: Annotated[int, msgspec.Meta(ge=1, le=60)]


class VoteIn(Strict):
    bid_id: uuid.UUID
    criterion: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    passed: bool
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class ReviewIn(Strict):
    lot_id: uuid.UUID
    votes: Annotated[list[VoteIn], msgspec.Meta(max_length=5000)]


class ClarificationIn(Strict):
    bid_id: uuid.UUID
    question: Text
    respond_by: datetime


class ClarificationAnswer(Strict):
    answer: Text


class SheetIn(Strict):
    lot_id: uuid.UUID
    scores: dict[str, dict[str, int]]


class ReopenIn(Strict):
    lot_id: uuid.UUID
    seat: Annotated[int, msgspec.Meta(ge=1, le=60)]
    reason: Reason


class JustifyIn(Strict):
    lot_id: uuid.UUID
    bid_id: uuid.UUID
    justification: Reason


class SignIn(Strict):
    """A signature (base64 Ed25519 over `ggzy-evaluation-report-v1\\n<hash>`) or a written dissent (W-11)."""

    report_hash: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
    signature: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    dissent: Annotated[str, msgspec.Meta(min_length=10, max_length=5000)] | None = None


class ExtendIn(Strict):
    hours: Annotated[int, msgspec.Meta(ge=1, le=48)]
    reason: Reason


class DrawRead(msgspec.Struct):
    id: uuid.UUID
    tender_id: uuid.UUID
    status: str
    evaluation_at: datetime
    committee_size: int
    quotas: list[Any]
    employer_limit: int
    rules: dict[str, Any]
    commitment: str
    pool_digest: str
    pool_size: int
    excluded: dict[str, Any]
    created_at: datetime
    drawn_at: datetime | None
    confirmed_at: datetime | None
    witness: str | None
    seed: str | None
    invitations: list[dict[str, Any]]
