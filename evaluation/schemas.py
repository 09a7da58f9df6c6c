"""Request and response bodies of the draw and the evaluation room (msgspec Structs). The pool's are in
`evaluation.pool_schemas`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

Reason = Annotated[str, msgspec.Meta(min_length=10, max_length=2000)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]
Hex32 = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[0-9a-f]{64}$")]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for request bodies: an unknown field is an error."""


class QuotaIn(Strict):
    specialty: Annotated[str, msgspec.Meta(max_length=20, pattern=r"^[A-Z][0-9A-Z]{0,19}$")]
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


class WitnessCommit(Strict):
    """A supervisor's or notary's commitment to its witness, made before the platform's seed exists: the
    hex SHA-256 of "ggzy-draw-witness-v2" LF, 32 random witness bytes and 32 random nonce bytes, which it
    keeps (`ggzy draw witness` makes and keeps them)."""

    witness_commitment: Hex32


class DrawRun(Strict):
    """The witness revealed by the supervisor who committed to it: the witness and the nonce, 32 bytes each
    as 64 lowercase hexadecimal characters. The draw runs at once."""

    witness: Hex32
    nonce: Hex32


class DrawAbort(Strict):
    """A request to abort a draw, with the reason (the agency of the tender or the centre)."""

    reason: Reason


class AbortApproval(Strict):
    """A supervisor approves the pending abort request it names (a note is optional)."""

    request_id: uuid.UUID
    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class AbortRefusal(Strict):
    """A supervisor refuses the pending abort request it names, saying why."""

    request_id: uuid.UUID
    note: Reason


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

    report_hash: Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[0-9a-f]{64}$")]
    signature: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    dissent: Annotated[str, msgspec.Meta(min_length=10, max_length=5000)] | None = None


class ExtendIn(Strict):
    hours: Annotated[int, msgspec.Meta(ge=1, le=48)]
    reason: Reason


class AbortRequestRead(msgspec.Struct):
    """An abort request and its decision (the requester by role and organisation, never by name)."""

    id: uuid.UUID
    draw_id: uuid.UUID
    status: str
    reason: str
    stage: str
    requester_role: str
    requester_organisation_id: uuid.UUID
    requested_at: datetime
    decided_at: datetime | None
    decision_note: str | None


class DrawRead(msgspec.Struct):
    """A draw: what was fixed when it was asked for (the digests of the pool before avoidance, of the
    exclusions and of the eligible pool, the context), the witness's commitment and the platform's signed
    commitment, the revealed witness and seed when they are, the seats, and the abort requests."""

    id: uuid.UUID
    tender_id: uuid.UUID
    status: str
    evaluation_at: datetime
    committee_size: int
    quotas: list[Any]
    employer_limit: int
    rules: dict[str, Any]
    candidates_digest: str | None
    exclusions_digest: str | None
    pool_digest: str
    pool_size: int
    excluded: dict[str, Any]
    context: dict[str, Any] | None
    witness_commitment: str | None
    witness_organisation_id: uuid.UUID | None
    commitment: str | None
    commitment_signature: str | None
    signing_key_id: str | None
    created_at: datetime
    drawn_at: datetime | None
    confirmed_at: datetime | None
    aborted_at: datetime | None
    witness: str | None
    nonce: str | None
    seed: str | None
    invitations: list[dict[str, Any]]
    abort_requests: list[AbortRequestRead]
