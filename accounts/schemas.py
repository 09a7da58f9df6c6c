"""Inputs and outputs of the accounts API (msgspec Structs; unknown fields are refused), and the shapes
of the audit trail's answers (TypedDicts: the audit module builds them as plain JSON values).

Instants are UTC, written in ISO 8601; ids are UUIDs as text.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal, TypedDict

import msgspec

from accounts.auditchain import PublishedAuditHead

OrgKind = Literal["centre", "agency", "bidder", "employer", "supervisor", "auditor", "regulator"]
Role = Literal["centre", "agency", "bidder", "expert", "supervisor", "auditor", "regulator"]
Username = Annotated[str, msgspec.Meta(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
# Any length is parsed; the password policy (accounts.passwords) answers a short one with its reason.
Password = Annotated[str, msgspec.Meta(max_length=256)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for request bodies: an unknown field is an error, not silently dropped."""


class RegistrationCreate(Strict):
    """A bidder or agency registers its organisation and first user (主体注册); the centre approves it."""

    organisation_name: Name
    credit_code: Annotated[str, msgspec.Meta(min_length=18, max_length=18)]
    kind: Literal["agency", "bidder"]
    username: Username
    password: Password
    display_name: Name
    # Required: the centre contacts the applicant here (about its papers, or when a name was taken).
    contact_email: Annotated[str, msgspec.Meta(max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")]


class RegistrationReceived(msgspec.Struct):
    """The one answer every registration gets, whether or not a name it gives was taken."""

    status: str
    detail: str


class RegistrationCollisionRead(msgspec.Struct):
    """A registration whose username or credit code was taken, for the centre (never the password)."""

    id: uuid.UUID
    submitted_at: datetime
    kind: str
    organisation_name: str
    credit_code: str
    username: str
    display_name: str
    contact_email: str
    collides_on: list[str]
    status: str
    closed_at: datetime | None
    note: str | None


class CollisionClose(Strict):
    """The centre closes a registration collision, saying how the applicant was contacted."""

    note: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class PasswordChange(Strict):
    """The caller's current password (checked under the sign-in throttle) and the new one (checked against
    the password policy)."""

    current_password: Annotated[str, msgspec.Meta(max_length=256)]
    new_password: Password


class OrganisationCreate(Strict):
    """Centre staff create an organisation of any kind (already approved)."""

    name: Name
    credit_code: Annotated[str, msgspec.Meta(min_length=18, max_length=18)]
    kind: OrgKind
    contact_email: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class OrganisationRead(msgspec.Struct):
    """An organisation: its unified social credit code (统一社会信用代码), kind, and `status` ("pending"
    until the centre approves it, then "active"); `approved_at` is null while pending."""

    id: uuid.UUID
    name: str
    credit_code: str
    kind: str
    status: str
    created_at: datetime
    approved_at: datetime | None


class UserCreate(Strict):
    """A further user in an organisation, created by centre staff."""

    organisation_id: uuid.UUID
    username: Username
    password: Password
    display_name: Name
    roles: Annotated[list[Role], msgspec.Meta(min_length=1, max_length=7)]


class UserRead(msgspec.Struct):
    """A user of an organisation, with the roles it may act in; `active` is false once deactivated."""

    id: uuid.UUID
    organisation_id: uuid.UUID
    username: str
    display_name: str
    roles: list[str]
    active: bool


class LoginRequest(Strict):
    """A username and password to exchange for a bearer token."""

    username: Annotated[str, msgspec.Meta(max_length=64)]
    password: Annotated[str, msgspec.Meta(max_length=256)]


class AccessToken(msgspec.Struct):
    """A bearer token (`token_type` "Bearer") for `Authorization: Bearer …`, valid until `expires_at`, and
    the user it signs in."""

    access_token: str
    token_type: str
    expires_at: datetime
    user: UserRead


class ApiTokenCreate(Strict):
    """An API token for a system acting for the caller: its name, the roles it may use (a subset of the
    caller's) and, optionally, when it expires."""

    name: Name
    roles: Annotated[list[Role], msgspec.Meta(min_length=1, max_length=7)]
    expires_at: datetime | None = None


class ApiTokenRead(msgspec.Struct):
    """An API token as listed: its name, `prefix` (the first 12 characters of the token, to recognise it)
    and roles, when issued, when it expires and when it was revoked (null while valid); never the token."""

    id: uuid.UUID
    name: str
    prefix: str
    roles: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiTokenIssued(msgspec.Struct):
    """The one and only time the token itself is shown."""

    token: str
    api_token: ApiTokenRead


class PublicKeyCreate(Strict):
    """A public key to register: `purpose` "signing" takes the base64 of a raw 32-byte Ed25519 public key,
    "encryption" the base64 of a raw 32-byte X25519 public key."""

    purpose: Literal["signing", "encryption"]
    public_key: Annotated[str, msgspec.Meta(min_length=40, max_length=100)]


class PublicKeyRead(msgspec.Struct):
    """A registered public key: `algorithm` "ed25519" (signing) or "x25519" (encryption), `public_key` the
    base64 of its 32 raw bytes, `fingerprint` the lowercase hex SHA-256 of those bytes; `revoked_at` is
    null while it is in use."""

    id: uuid.UUID
    organisation_id: uuid.UUID
    purpose: str
    algorithm: str
    public_key: str
    fingerprint: str
    created_at: datetime
    revoked_at: datetime | None


class AuditEventRead(msgspec.Struct):
    """One event of the audit trail (E-04): who (user, organisation, roles; null for the platform itself)
    did what (`action`) to which object, when, with what `outcome`, and the event's place in the hash
    chain: `hash` is the lowercase hex SHA-256 link over every column and the hash of `detail`, and
    `previous_hash` the link of the event before it (`accounts/auditchain.py` gives the encoding)."""

    id: uuid.UUID
    sequence: int
    at: datetime
    actor_user_id: uuid.UUID | None
    actor_organisation_id: uuid.UUID | None
    actor_roles: list[str]
    action: str
    object_type: str
    object_id: str
    outcome: str
    detail: Annotated[
        dict[str, object],
        msgspec.Meta(
            description=(
                "What the action carried, as a JSON object whose keys depend on the action (amounts in "
                "integer fen, instants in ISO 8601, ids as text); hashed into the event by its canonical "
                "JSON (RFC 8785)."
            )
        ),
    ]
    previous_hash: str
    hash: str


class AuditPage(msgspec.Struct):
    """One page of the audit trail, newest first; `next_cursor` is the `cursor` of the next page (null on
    the last)."""

    items: list[AuditEventRead]
    next_cursor: str | None


class CallerRead(msgspec.Struct):
    """The caller: its user id and username, the roles it acts in now, how it signed in (`via` "jwt" for a
    bearer token from sign-in, "api_token" for an API token) and its organisation."""

    user_id: uuid.UUID
    username: str
    roles: list[str]
    via: str
    organisation: OrganisationRead


class JobRead(msgspec.Struct):
    """A background job as its outbox row records it; the payload stays out (it may hold personal data)."""

    id: uuid.UUID
    job: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    failing_since: datetime | None
    dead_at: datetime | None
    completed_at: datetime | None
    available_at: datetime


class JobRetried(msgspec.Struct):
    """The job after a retry, and whether this request changed it (a job not dead is left as it is)."""

    job: JobRead
    retried: bool


class AuditVerifyRequest(Strict):
    """Check the audit trail and that it still extends `head`, a signed head an auditor kept
    (`GET /api/v1/transparency/audit/head`)."""

    head: Annotated[
        dict[str, object],
        msgspec.Meta(
            description=(
                "A signed head of the audit trail exactly as published (the `PublishedAuditHead` object: version "
                "ggzy-audit-head-v1, sequence, events, chain_hash, signed_at, key_id, signature); checked "
                "field by field, an error names the field."
            )
        ),
    ]
    limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100


class AuditHeadPage(TypedDict):
    """Signed heads of the audit trail, oldest first; `next` is the `after` of the next page (null at the
    end)."""

    heads: list[PublishedAuditHead]
    next: int | None


class AuditChainEnd(TypedDict):
    """Where the stored chain ends: the last event's sequence number (0 when empty) and its link hash
    (lowercase hex; 64 zeros when empty)."""

    sequence: int
    chain_hash: str


class AuditOffender(TypedDict):
    """One thing a check found wrong: the event or head at `sequence` (null when the fault has no place in
    the sequence), the event's id when there is one, and what is wrong with it."""

    sequence: int | None
    event_id: str | None
    detail: str


class AuditCheck(TypedDict):
    """One invariant of the audit trail: its `name`, whether it holds, a sentence on what was covered or
    how much failed, the offenders named (at most the report's `limit`) and how many there are in all."""

    name: str
    ok: bool
    detail: str
    offenders: list[AuditOffender]
    offenders_total: int


class AuditReport(TypedDict):
    """The audit trail re-checked from the stored rows, as `ggzy verify audit` does: `ok` when every check
    holds, how many events were read, where the chain ends, the id of the key the heads were checked with
    (16 lowercase hex digits), the offender limit, and every check."""

    ok: bool
    events: int
    chain: AuditChainEnd
    key_id: str
    limit: int
    checks: list[AuditCheck]
