"""Request and response bodies of the draw and the evaluation room (msgspec Structs). The pool's are in
`evaluation.pool_schemas`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from evaluation.responses import DrawContext, DrawInvitation, DrawQuota

Reason = Annotated[str, msgspec.Meta(min_length=10, max_length=2000)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]
Hex32 = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[0-9a-f]{64}$")]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for request bodies: an unknown field is an error."""


class QuotaIn(Strict):
    """One quota of the committee: experts whose specialty code starts with `specialty`, and how many
    seats they fill."""

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
    """An expert's answer to an invitation: accept, or decline with a reason. When the centre records an
    answer given by telephone, `reason` is required and says who took the call and when."""

    accept: bool
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class Declaration(Strict):
    """The no-conflict declaration (G-08); `no_conflict: false` recuses, with the statement why."""

    no_conflict: bool
    statement: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class ChairVote(Strict):
    """A member's vote for the chair (评标委员会主任), by seat number."""

    seat: Annotated[int, msgspec.Meta(ge=1, le=60)]


class VoteIn(Strict):
    """A member's vote on one qualification criterion (by its code) for one bid: pass, or fail with the
    reason the report will carry."""

    bid_id: uuid.UUID
    criterion: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    passed: bool
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class ReviewIn(Strict):
    """A member's qualification and compliance review of one lot: one vote per bid and criterion."""

    lot_id: uuid.UUID
    votes: Annotated[list[VoteIn], msgspec.Meta(max_length=5000)]


class ClarificationIn(Strict):
    """The chair asks the bidder of a bid to clarify, by an instant (ISO 8601 with its offset) within the
    room's time box."""

    bid_id: uuid.UUID
    question: Text
    respond_by: datetime


class ClarificationAnswer(Strict):
    """The bidder's answer to a clarification, given once before its deadline."""

    answer: Text


class SheetIn(Strict):
    """A member's score sheet of one lot: `scores` maps each bid id to each subjective criterion's code and
    its score in hundredths of a point (cp: 0 to the criterion's `max_cp`). The price leaf is computed."""

    lot_id: uuid.UUID
    scores: dict[str, dict[str, int]]


class ReopenIn(Strict):
    """The chair reopens the submitted sheet of the member in `seat` for one lot, with the reason."""

    lot_id: uuid.UUID
    seat: Annotated[int, msgspec.Meta(ge=1, le=60)]
    reason: Reason


class JustifyIn(Strict):
    """A member keeps an abnormal score (G-10) of one bid in one lot, with the written justification."""

    lot_id: uuid.UUID
    bid_id: uuid.UUID
    justification: Reason


class SignIn(Strict):
    """A member's answer to the report (W-11): exactly one of a signature or a written dissent.

    `report_hash` is the report's `report_hash` as `GET …/report` gives it: 64 lowercase hex digits, the
    SHA-256 of the report's canonical bytes. The signature is Ed25519 (RFC 8032, pure, no pre-hash) with
    a signing key the member registered (`register_public_key`, purpose "signing"), over exactly these
    bytes: the ASCII text "ggzy-evaluation-report-v1", one line feed (0x0A), then the 64 hex digits of
    `report_hash` in ASCII (90 bytes, no final line feed; `evaluation.report.signing_message` builds
    them). Send the 64-byte signature in standard base64 (RFC 4648 section 4, with padding: 88
    characters)."""

    report_hash: Annotated[
        str,
        msgspec.Meta(
            max_length=64,
            pattern=r"^[0-9a-f]{64}$",
            description="The report's SHA-256 as 64 lowercase hex digits, as the report answer gives it.",
        ),
    ]
    signature: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=200,
                description=(
                    'Standard base64 of the Ed25519 signature over "ggzy-evaluation-report-v1" LF and the '
                    "report_hash's 64 hex digits (ASCII)."
                ),
            ),
        ]
        | None
    ) = None
    dissent: (
        Annotated[str, msgspec.Meta(min_length=10, max_length=5000, description="A written dissent instead.")]
        | None
    ) = None


class ExtendIn(Strict):
    """The centre extends the room's time box by whole hours, with a written reason."""

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
    commitment, the revealed witness and seed when they are, the seats, and the abort requests.

    Digests, commitments, the witness, the nonce and the seed are lowercase hex (the witness of a
    first-version draw is free text). `commitment_signature` is the standard base64 of the platform's
    Ed25519 signature over the UTF-8 bytes "ggzy-draw-commitment-v2" LF, the draw id, LF,
    `witness_commitment`, LF, `commitment`, LF (`evaluation.draw.commitment_statement`), made with the log
    key whose id (the first 16 hex digits of the SHA-256 of its raw public key) is `signing_key_id`."""

    id: uuid.UUID
    tender_id: uuid.UUID
    status: str
    evaluation_at: datetime
    committee_size: int
    quotas: list[DrawQuota]
    employer_limit: int
    rules: Annotated[
        dict[str, Any],
        msgspec.Meta(
            description=(
                "The avoidance thresholds the draw applies and the draw format's version (`version`, "
                '"ggzy-draw-v2"; `min_credit_score`, `max_services_for_tenderer`, `former_employer_years`).'
            )
        ),
    ]
    candidates_digest: str | None
    exclusions_digest: str | None
    pool_digest: str
    pool_size: int
    excluded: Annotated[
        dict[str, Any],
        msgspec.Meta(
            description=(
                "The exclusions in figures: `count` of experts kept out and `by_reason`, reason code → count."
            )
        ),
    ]
    context: DrawContext | None
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
    invitations: list[DrawInvitation]
    abort_requests: list[AbortRequestRead]
