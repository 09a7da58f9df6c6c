"""Inputs and outputs of the accounts API (msgspec Structs; unknown fields are refused)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

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
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class PasswordChange(Strict):
    current_password: Annotated[str, msgspec.Meta(max_length=256)]
    new_password: Password


class OrganisationCreate(Strict):
    """Centre staff create an organisation of any kind (already approved)."""

    name: Name
    credit_code: Annotated[str, msgspec.Meta(min_length=18, max_length=18)]
    kind: OrgKind
    contact_email: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class OrganisationRead(msgspec.Struct):
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
    id: uuid.UUID
    organisation_id: uuid.UUID
    username: str
    display_name: str
    roles: list[str]
    active: bool


class LoginRequest(Strict):
    username: Annotated[str, msgspec.Meta(max_length=64)]
    password: Annotated[str, msgspec.Meta(max_length=256)]


class AccessToken(msgspec.Struct):
    access_token: str
    token_type: str
    expires_at: datetime
    user: UserRead


class ApiTokenCreate(Strict):
    name: Name
    roles: Annotated[list[Role], msgspec.Meta(min_length=1, max_length=7)]
    expires_at: datetime | None = None


class ApiTokenRead(msgspec.Struct):
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
    purpose: Literal["signing", "encryption"]
    public_key: Annotated[str, msgspec.Meta(min_length=40, max_length=100)]


class PublicKeyRead(msgspec.Struct):
    id: uuid.UUID
    organisation_id: uuid.UUID
    purpose: str
    algorithm: str
    public_key: str
    fingerprint: str
    created_at: datetime
    revoked_at: datetime | None


class AuditEventRead(msgspec.Struct):
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
    detail: dict[str, object]
    previous_hash: str
    hash: str


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

    head: dict[str, object]
    limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100
