"""Tables of the accounts package: organisations, users, API tokens, public keys, the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, IdMixin


class Organisation(IdMixin, Base):
    """A legal entity on the platform (主体), identified by its unified social credit code."""

    __tablename__ = "organisations"

    name: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    contact_email: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    approved_at: Mapped[datetime | None]


class User(IdMixin, Base):
    """A person who signs in; belongs to one organisation and holds one or more roles."""

    __tablename__ = "users"

    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[Any]]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    # Bearer tokens issued before this instant are refused: a new password signs every session out.
    password_changed_at: Mapped[datetime | None]


class ApiToken(IdMixin, Base):
    """A credential for a system (an agency's software, the regulator's feed); only its hash is kept."""

    __tablename__ = "api_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    roles: Mapped[list[Any]]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class PublicKey(IdMixin, Base):
    """A registered public key: Ed25519 for signing bid manifests, X25519 for receiving sealed bids."""

    __tablename__ = "public_keys"
    __table_args__ = (UniqueConstraint("organisation_id", "purpose", "fingerprint"),)

    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    purpose: Mapped[str] = mapped_column(String(20))
    algorithm: Mapped[str] = mapped_column(String(20))
    public_key: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AuditEvent(IdMixin, Base):
    """One line of the audit trail: who (in which roles) did what to which object, when, and how it ended;
    numbered in commit order and chained to the line before it (accounts.auditchain). Append-only: on
    PostgreSQL a trigger refuses UPDATE and DELETE."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_object", "object_type", "object_id"),)

    sequence: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor_user_id: Mapped[uuid.UUID | None]
    actor_organisation_id: Mapped[uuid.UUID | None]
    actor_roles: Mapped[list[Any]]
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20), default="ok")
    detail: Mapped[dict[str, Any]]
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChain(Base):
    """The one row every commit that writes audit events locks: the chain's last sequence and hash."""

    __tablename__ = "audit_chain"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    sequence: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """Signed head number `sequence` of the audit trail: the trail had `events` events, the last one
    hashing to `chain_hash` (signed with the platform's log key at `signed_at`). Published; append-only
    like the events."""

    __tablename__ = "audit_heads"

    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    events: Mapped[int] = mapped_column(BigInteger, unique=True)
    chain_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(100))


class RegistrationCollision(IdMixin, Base):
    """A self-registration whose username or credit code was already taken. The applicant is answered
    exactly as any other applicant (so registration tells nobody which names exist); the centre reads the
    collision here and contacts the applicant. The password hash is kept only while the collision is open,
    so that the applicant's sign-in answers "awaiting approval" like any other applicant's."""

    __tablename__ = "registration_collisions"

    submitted_at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(20))
    organisation_name: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str] = mapped_column(String(18))
    username: Mapped[str] = mapped_column(String(64), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str] = mapped_column(String(200))
    collides_on: Mapped[list[Any]]
    password_hash: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="open")
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(String(2000))
