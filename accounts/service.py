"""Use cases of the accounts package: registration, approval, login, tokens, keys, the audit trail.

Services flush but never commit: the request or job that calls them owns the transaction.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts import audit, passwords, schemas, security, uscc
from accounts.models import ApiToken, AuditEvent, Organisation, PublicKey, RegistrationCollision, User
from accounts.security import Principal
from accounts.signin import SignInThrottle
from storage.db import transaction
from storage.pagination import check_limit, decode_cursor, page_after
from storage.problems import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    ValidationProblem,
    field_error,
)

log = logging.getLogger(__name__)

KIND_ROLES: dict[str, frozenset[str]] = {
    "centre": frozenset({"centre"}),
    "agency": frozenset({"agency"}),
    "bidder": frozenset({"bidder"}),
    "employer": frozenset({"expert"}),
    "supervisor": frozenset({"supervisor"}),
    "auditor": frozenset({"auditor"}),
    "regulator": frozenset({"regulator"}),
}


async def record(
    session: AsyncSession,
    actor: Principal | None,
    action: str,
    object_type: str,
    object_id: object,
    now: datetime,
    *,
    outcome: str = "ok",
    sealed_tender: uuid.UUID | str | None = None,
    **detail: Any,
) -> None:
    """Append one event to the audit trail, in the caller's transaction (E-04): who in which roles, what,
    on which object, when, how it ended. It is numbered and chained as the transaction commits
    (accounts/audit.py) and written only if it does; details are JSON values without floats.

    `sealed_tender` marks an event that shows a bidder taking part in that tender (obtaining its documents,
    bidding, paying a deposit …): the trail hides it from everyone while the tender's bids are sealed, and
    shows it, with the mark, once they are not (W-20). The mark is inside the chained details."""
    if sealed_tender is not None:
        detail["sealed_tender"] = str(sealed_tender)
    audit.stage(
        session,
        at=now,
        actor_user_id=actor.user_id if actor else None,
        actor_organisation_id=actor.organisation_id if actor else None,
        actor_roles=sorted(actor.roles) if actor else [],
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        outcome=outcome,
        detail=detail,
    )


@dataclass(frozen=True)
class Refusal:
    """A refused action to keep in the audit trail, although the request's transaction rolls back."""

    actor: Principal | None
    action: str
    object_type: str
    object_id: str
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


class LoginRefused(Unauthenticated):
    """A refused sign-in. The same answer for every reason, so a caller cannot probe for usernames; the
    reason goes to the audit trail only."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__("Wrong username or password.")
        self.refusal = refusal


class SignInThrottled(TooManyRequests):
    """Too many wrong passwords for this account or from this address: try again after `Retry-After`. The
    same answer whether or not the account exists; the attempt goes to the audit trail."""

    def __init__(self, refusal: Refusal, retry_after: int) -> None:
        super().__init__(
            f"Too many failed sign-ins; try again in {retry_after} seconds.", retry_after=retry_after
        )
        self.refusal = refusal


class WrongPassword(Forbidden):
    """The current password given to change it is wrong (counted by the sign-in throttle)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(
            "The current password is wrong.", errors=[field_error("current_password", "wrong password")]
        )
        self.refusal = refusal


class PendingApproval(Forbidden):
    """The organisation is registered but not approved yet: until the centre approves it, its users can do
    nothing but wait (sign-in answers this instead of a token)."""

    slug = "pending-approval"
    title = "Awaiting approval"

    def __init__(self, refusal: Refusal | None = None) -> None:
        super().__init__(
            "Your organisation's registration awaits the centre's approval; nothing can be done for it "
            "until then. The centre checks the papers and contacts you at the address you registered.",
            organisation_status="pending",
        )
        self.refusal = refusal


async def record_refusal(sessionmaker: async_sessionmaker[AsyncSession], refusal: Refusal) -> None:
    """Write a refused action to the audit trail in a short transaction of its own (E-04).

    Called once the refused request's own transaction has rolled back. A failure here is logged, never
    raised: the refusal has already been decided and must still reach the caller.
    """
    try:
        async with transaction(sessionmaker) as session:
            await record(
                session,
                refusal.actor,
                refusal.action,
                refusal.object_type,
                refusal.object_id,
                refusal.at,
                outcome="refused",
                **refusal.detail,
            )
    except SQLAlchemyError:
        log.exception("could not audit the refused %s on %s", refusal.action, refusal.object_id)


def _credit_code(code: str) -> str:
    try:
        return uscc.validate_uscc(code)
    except uscc.InvalidUSCC as exc:
        raise ValidationProblem(str(exc), errors=[field_error("credit_code", str(exc))]) from exc


async def _unique_org(session: AsyncSession, credit_code: str) -> None:
    exists = await session.scalar(select(Organisation.id).where(Organisation.credit_code == credit_code))
    if exists:
        raise Conflict(
            "An organisation with this unified social credit code is already registered.",
            errors=[field_error("credit_code", "already registered")],
        )


async def _unique_username(session: AsyncSession, username: str) -> None:
    exists = await session.scalar(select(User.id).where(User.username == username))
    if exists:
        raise Conflict("This username is taken.", errors=[field_error("username", "already taken")])


def check_password(
    password: str,
    *,
    field: str = "password",
    username: str | None = None,
    display_name: str | None = None,
    organisation_name: str | None = None,
    credit_code: str | None = None,
) -> None:
    """Refuse a password the policy calls weak (`accounts.passwords`) with a 422 naming `field` and every
    reason."""
    found = passwords.weaknesses(
        password,
        names={
            "username": username,
            "display_name": display_name,
            "organisation_name": organisation_name,
            "credit_code": credit_code,
        },
    )
    if found:
        raise ValidationProblem(
            "The password is too easy to guess: " + "; ".join(w.message for w in found) + ".",
            errors=[field_error(field, w.message) for w in found],
            reasons=[w.code for w in found],
        )


async def _taken(session: AsyncSession, credit_code: str, username: str) -> list[str]:
    """Which of the applicant's names already exist (for the centre's eyes only)."""
    taken = []
    if await session.scalar(select(Organisation.id).where(Organisation.credit_code == credit_code)):
        taken.append("credit_code")
    if await session.scalar(select(User.id).where(User.username == username)):
        taken.append("username")
    if (
        await session.scalar(
            select(RegistrationCollision.id).where(
                RegistrationCollision.username == username, RegistrationCollision.status == "open"
            )
        )
        and "username" not in taken
    ):
        taken.append("username")
    return taken


async def register(
    session: AsyncSession, data: schemas.RegistrationCreate, now: datetime
) -> Organisation | None:
    """Self-registration of a bidder or agency (主体注册): the organisation waits for the centre's approval.

    The answer is the same whether or not the username or the credit code is already taken, and so is the
    work (the password is hashed either way): a taken name is recorded as a collision for the centre, which
    contacts the applicant, instead of being told to whoever asks. Answers the pending organisation, or
    None for a collision (for the caller's own bookkeeping, never for the applicant)."""
    code = _credit_code(data.credit_code)
    check_password(
        data.password,
        username=data.username,
        display_name=data.display_name,
        organisation_name=data.organisation_name,
        credit_code=code,
    )
    password_hash = await security.hash_password(data.password)
    taken = await _taken(session, code, data.username)
    if not taken:
        try:
            async with session.begin_nested():
                org = Organisation(
                    name=data.organisation_name,
                    credit_code=code,
                    kind=data.kind,
                    status="pending",
                    contact_email=data.contact_email,
                    created_at=now,
                )
                session.add(org)
                await session.flush()
                user = User(
                    organisation_id=org.id,
                    username=data.username,
                    display_name=data.display_name,
                    password_hash=password_hash,
                    roles=sorted(KIND_ROLES[data.kind]),
                    created_at=now,
                )
                session.add(user)
                await session.flush()
        except IntegrityError:  # the same name registered at the same moment: a collision all the same
            taken = await _taken(session, code, data.username) or ["credit_code", "username"]
        else:
            await record(session, None, "organisation.register", "organisation", org.id, now, kind=data.kind)
            return org
    collision = RegistrationCollision(
        submitted_at=now,
        kind=data.kind,
        organisation_name=data.organisation_name,
        credit_code=code,
        username=data.username,
        display_name=data.display_name,
        contact_email=data.contact_email,
        collides_on=sorted(taken),
        password_hash=password_hash,
        status="open",
    )
    session.add(collision)
    await session.flush()
    await record(
        session,
        None,
        "registration.collision",
        "registration_collision",
        collision.id,
        now,
        outcome="refused",
        collides_on=sorted(taken),
    )
    return None


async def list_collisions(session: AsyncSession, status: str | None) -> list[RegistrationCollision]:
    """Registrations whose names were taken, newest first, for the centre to follow up."""
    query = select(RegistrationCollision).order_by(
        RegistrationCollision.submitted_at.desc(), RegistrationCollision.id
    )
    if status:
        query = query.where(RegistrationCollision.status == status)
    return list(await session.scalars(query))


async def close_collision(
    session: AsyncSession, actor: Principal, collision_id: uuid.UUID, note: str, now: datetime
) -> RegistrationCollision:
    """The centre has dealt with a collision (contacted the applicant): it is closed with a note and the
    applicant's password hash is forgotten."""
    row = await session.get(RegistrationCollision, collision_id, with_for_update=True)
    if row is None:
        raise NotFound("No such registration collision.")
    if row.status != "open":
        raise Conflict("This registration collision is already closed.")
    row.status = "closed"
    row.closed_at = now
    row.closed_by = actor.user_id
    row.note = note
    row.password_hash = None
    await record(session, actor, "registration.collision.close", "registration_collision", row.id, now)
    return row


async def _flush_unique(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("This organisation or username was registered at the same moment.") from exc


async def create_organisation(
    session: AsyncSession, actor: Principal, data: schemas.OrganisationCreate, now: datetime
) -> Organisation:
    """Centre staff add an organisation of any kind; it is approved at once."""
    code = _credit_code(data.credit_code)
    await _unique_org(session, code)
    org = Organisation(
        name=data.name,
        credit_code=code,
        kind=data.kind,
        status="active",
        contact_email=data.contact_email,
        created_at=now,
        approved_at=now,
    )
    session.add(org)
    await _flush_unique(session)
    await record(session, actor, "organisation.create", "organisation", org.id, now, kind=data.kind)
    return org


async def approve_organisation(
    session: AsyncSession, actor: Principal, organisation_id: uuid.UUID, now: datetime
) -> Organisation:
    """The centre approves a registered organisation after checking its papers."""
    org = await get_organisation(session, organisation_id)
    if org.status != "pending":
        raise Conflict(f"The organisation is {org.status}, not pending approval.")
    org.status = "active"
    org.approved_at = now
    await record(session, actor, "organisation.approve", "organisation", org.id, now)
    return org


async def get_organisation(session: AsyncSession, organisation_id: uuid.UUID) -> Organisation:
    """The organisation, or 404."""
    org = await session.get(Organisation, organisation_id)
    if org is None:
        raise NotFound("No such organisation.")
    return org


async def list_organisations(
    session: AsyncSession, *, kind: str | None, status: str | None
) -> list[Organisation]:
    """Organisations, optionally by kind and status, by name."""
    query = select(Organisation).order_by(Organisation.name)
    if kind:
        query = query.where(Organisation.kind == kind)
    if status:
        query = query.where(Organisation.status == status)
    return list(await session.scalars(query))


async def require_active(session: AsyncSession, principal: Principal) -> Organisation:
    """The caller's organisation, refusing while it is not approved."""
    org = await get_organisation(session, principal.organisation_id)
    if org.status != "active":
        raise PendingApproval()
    return org


async def create_user(
    session: AsyncSession, actor: Principal, data: schemas.UserCreate, now: datetime
) -> User:
    """Centre staff add a user; the roles must suit the organisation's kind."""
    org = await get_organisation(session, data.organisation_id)
    allowed = KIND_ROLES[org.kind]
    wrong = sorted(set(data.roles) - allowed)
    if wrong:
        raise ValidationProblem(
            f"A {org.kind} organisation's users cannot hold the roles {', '.join(wrong)}.",
            errors=[field_error("roles", f"not allowed for {org.kind}: {', '.join(wrong)}")],
        )
    check_password(
        data.password,
        username=data.username,
        display_name=data.display_name,
        organisation_name=org.name,
        credit_code=org.credit_code,
    )
    await _unique_username(session, data.username)
    user = User(
        organisation_id=org.id,
        username=data.username,
        display_name=data.display_name,
        password_hash=await security.hash_password(data.password),
        roles=sorted(set(data.roles)),
        created_at=now,
    )
    session.add(user)
    await _flush_unique(session)
    await record(session, actor, "user.create", "user", user.id, now, roles=user.roles)
    return user


async def deactivate_user(session: AsyncSession, actor: Principal, user_id: uuid.UUID, now: datetime) -> User:
    """Centre staff switch a user off: sign-in, its bearer tokens and its API tokens stop working at once."""
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("No such user.")
    if user.id == actor.user_id:
        raise Conflict("You cannot deactivate your own account; another member of the centre staff can.")
    if not user.active:
        raise Conflict("This user is already inactive.")
    user.active = False
    await record(session, actor, "user.deactivate", "user", user.id, now)
    return user


async def current_principal(session: AsyncSession, principal: Principal) -> Principal | None:
    """`principal` as its user stands now: None when the user is gone or inactive or has changed its
    password since the token was issued, and never with a role the user no longer holds (a bearer token
    outlives changes made after it was issued). A user of an organisation that is not approved is refused
    with `PendingApproval`, whatever credential it holds."""
    user = await session.get(User, principal.user_id)
    if user is None or not user.active or user.organisation_id != principal.organisation_id:
        return None
    if (
        user.password_changed_at is not None
        and principal.issued_at is not None
        and principal.issued_at < int(user.password_changed_at.timestamp())
    ):
        return None
    await _approved(session, user)
    return principal_of(user, principal.roles & frozenset(user.roles), via=principal.via)


async def _approved(session: AsyncSession, user: User) -> Organisation:
    org = await get_organisation(session, user.organisation_id)
    if org.status != "active":
        raise PendingApproval()
    return org


async def bootstrap_centre(
    session: AsyncSession, *, name: str, credit_code: str, username: str, password: str, now: datetime
) -> tuple[Organisation, User, bool]:
    """Create the centre and its first administrator once; later calls return the existing ones."""
    existing = await session.scalar(select(Organisation).where(Organisation.kind == "centre"))
    if existing is not None:
        user = await session.scalar(select(User).where(User.organisation_id == existing.id))
        if user is None:
            raise Conflict("The centre exists but has no user.")
        return existing, user, False
    check_password(password, username=username, organisation_name=name, credit_code=credit_code)
    org = Organisation(
        name=name,
        credit_code=uscc.validate_uscc(credit_code),
        kind="centre",
        status="active",
        created_at=now,
        approved_at=now,
    )
    session.add(org)
    await session.flush()
    user = User(
        organisation_id=org.id,
        username=username,
        display_name=name,
        password_hash=await security.hash_password(password),
        roles=["centre"],
        created_at=now,
    )
    session.add(user)
    await session.flush()
    await record(session, None, "centre.bootstrap", "organisation", org.id, now)
    return org, user, True


def principal_of(user: User, roles: frozenset[str] | None = None, via: str = "jwt") -> Principal:
    """The principal a user acts as."""
    return Principal(
        user_id=user.id,
        organisation_id=user.organisation_id,
        roles=frozenset(roles if roles is not None else user.roles),
        username=user.username,
        via=via,
    )


async def login(
    session: AsyncSession,
    username: str,
    password: str,
    *,
    throttle: SignInThrottle,
    address: str | None,
    secret: str,
    ttl: timedelta,
    now: datetime,
) -> tuple[str, datetime, User]:
    """Check a password and issue an access token; every failure looks the same to the caller.

    The throttle is asked first (per account and per address, `Retry-After` while locked, the same for an
    unknown username). A user whose organisation awaits approval gets no token but `PendingApproval`, and so
    does an applicant whose registration collided with a taken name and who signs in with the password it
    registered: either way the answer tells nothing about which names exist."""
    verdict = await throttle.attempt(username, address, now)
    if verdict.retry_after:
        detail = {"reason": "throttled", "retry_after": verdict.retry_after, "address": address}
        raise SignInThrottled(
            Refusal(None, "auth.login", "user", username[:64], now, detail), verdict.retry_after
        )
    user = await session.scalar(select(User).where(User.username == username))
    ok = await security.verify_password(user.password_hash if user else None, password)
    if user is not None and ok and user.active:
        org = await get_organisation(session, user.organisation_id)
        if org.status != "active":
            await throttle.refund(username, address, now)
            raise PendingApproval(
                Refusal(None, "auth.login", "user", username[:64], now, {"reason": "pending"})
            )
        await throttle.succeeded(username, address, now)
        token, expires = security.issue_access_token(principal_of(user), secret, now, ttl)
        await record(session, principal_of(user), "auth.login", "user", user.id, now)
        return token, expires, user
    if await _collided_applicant(session, username, password):
        await throttle.refund(username, address, now)
        raise PendingApproval(Refusal(None, "auth.login", "user", username[:64], now, {"reason": "pending"}))
    reason = "unknown user" if user is None else "wrong password" if not ok else "inactive user"
    raise LoginRefused(Refusal(None, "auth.login", "user", username[:64], now, {"reason": reason}))


async def _collided_applicant(session: AsyncSession, username: str, password: str) -> bool:
    """True when `password` is the one an open registration collision under `username` was made with."""
    hashes = await session.scalars(
        select(RegistrationCollision.password_hash).where(
            RegistrationCollision.username == username,
            RegistrationCollision.status == "open",
            RegistrationCollision.password_hash.is_not(None),
        )
    )
    for stored in hashes:
        if await security.verify_password(stored, password):
            return True
    return False


async def change_password(
    session: AsyncSession,
    actor: Principal,
    current: str,
    new: str,
    *,
    throttle: SignInThrottle,
    address: str | None,
    now: datetime,
) -> User:
    """A signed-in person changes its own password: the current one is checked under the same throttle as
    sign-in, the new one against the policy; every bearer token issued before now stops working."""
    if actor.via != "jwt":
        raise Forbidden("A password is changed by the person signed in, not by an API token.")
    user = await session.get(User, actor.user_id, with_for_update=True)
    if user is None:
        raise NotFound("No such user.")
    org = await _approved(session, user)
    check_password(
        new,
        field="new_password",
        username=user.username,
        display_name=user.display_name,
        organisation_name=org.name,
        credit_code=org.credit_code,
    )
    verdict = await throttle.attempt(user.username, address, now)
    if verdict.retry_after:
        detail = {"reason": "throttled", "retry_after": verdict.retry_after, "address": address}
        raise SignInThrottled(
            Refusal(actor, "auth.password.change", "user", str(user.id), now, detail), verdict.retry_after
        )
    if not await security.verify_password(user.password_hash, current):
        raise WrongPassword(
            Refusal(actor, "auth.password.change", "user", str(user.id), now, {"reason": "wrong password"})
        )
    await throttle.succeeded(user.username, address, now)
    user.password_hash = await security.hash_password(new)
    user.password_changed_at = now
    await record(session, actor, "auth.password.change", "user", user.id, now)
    return user


async def issue_api_token(
    session: AsyncSession, actor: Principal, data: schemas.ApiTokenCreate, now: datetime
) -> tuple[str, ApiToken]:
    """A new API token for the caller's own user, with at most the caller's roles."""
    if actor.via != "jwt":
        raise Forbidden("API tokens are issued to people signed in, not to other tokens.")
    await require_active(session, actor)
    extra = sorted(set(data.roles) - actor.roles)
    if extra:
        raise Forbidden(f"You cannot grant roles you do not hold: {', '.join(extra)}.")
    if data.expires_at is not None and _instant("expires_at", data.expires_at) <= now:
        raise ValidationProblem(
            "expires_at is in the past.", errors=[field_error("expires_at", "in the past")]
        )
    token, digest = security.new_api_token()
    row = ApiToken(
        user_id=actor.user_id,
        name=data.name,
        token_hash=digest,
        prefix=token[:12],
        roles=sorted(set(data.roles)),
        created_at=now,
        expires_at=data.expires_at,
    )
    session.add(row)
    await session.flush()
    await record(session, actor, "api_token.issue", "api_token", row.id, now, roles=row.roles)
    return token, row


def _instant(name: str, value: datetime) -> datetime:
    """`value` if it is an aware instant within the years 2000-2099, otherwise a 422 naming `name`."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationProblem(
            f"{name} must carry a time zone (e.g. +08:00 or Z).",
            errors=[field_error(name, "naive datetime")],
        )
    if not 2000 <= value.year <= 2099:
        raise ValidationProblem(
            f"{name} must fall within the years 2000 to 2099.", errors=[field_error(name, "out of range")]
        )
    return value


async def list_api_tokens(session: AsyncSession, actor: Principal) -> list[ApiToken]:
    """The caller's own API tokens (never the tokens themselves)."""
    rows = await session.scalars(
        select(ApiToken).where(ApiToken.user_id == actor.user_id).order_by(ApiToken.created_at)
    )
    return list(rows)


async def revoke_api_token(
    session: AsyncSession, actor: Principal, token_id: uuid.UUID, now: datetime
) -> ApiToken:
    """Revoke one of the caller's API tokens; another user's is invisible (404)."""
    row = await session.get(ApiToken, token_id)
    if row is None or row.user_id != actor.user_id:
        raise NotFound("No such API token.")
    if row.revoked_at is None:
        row.revoked_at = now
        await record(session, actor, "api_token.revoke", "api_token", row.id, now)
    return row


async def resolve_api_token(session: AsyncSession, token: str, now: datetime) -> Principal | None:
    """The principal behind an API token, or None if unknown, revoked, expired or its user is gone."""
    row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == security.api_token_hash(token)))
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    user = await session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    await _approved(session, user)
    roles = frozenset(row.roles) & frozenset(user.roles)
    row.last_used_at = now
    return principal_of(user, roles, via="api_token")


def _parse_key(purpose: str, encoded: str) -> tuple[str, bytes]:
    try:
        raw = base64.b64decode(encoded, validate=True)
        if purpose == "signing":
            Ed25519PublicKey.from_public_bytes(raw)
            return "ed25519", raw
        X25519PublicKey.from_public_bytes(raw)
        return "x25519", raw
    except ValueError as exc:
        raise ValidationProblem(
            "public_key must be the base64 of a 32-byte "
            + ("Ed25519" if purpose == "signing" else "X25519")
            + " public key.",
            errors=[field_error("public_key", "not a 32-byte public key in base64")],
        ) from exc


async def register_key(
    session: AsyncSession, actor: Principal, data: schemas.PublicKeyCreate, now: datetime
) -> PublicKey:
    """Register a signing or encryption public key for the caller's organisation (the private key stays
    with the bidder)."""
    await require_active(session, actor)
    algorithm, raw = _parse_key(data.purpose, data.public_key)
    fingerprint = hashlib.sha256(raw).hexdigest()
    duplicate = await session.scalar(
        select(PublicKey.id).where(
            PublicKey.organisation_id == actor.organisation_id,
            PublicKey.purpose == data.purpose,
            PublicKey.fingerprint == fingerprint,
        )
    )
    if duplicate:
        raise Conflict("This key is already registered.", errors=[field_error("public_key", "duplicate")])
    key = PublicKey(
        organisation_id=actor.organisation_id,
        user_id=actor.user_id,
        purpose=data.purpose,
        algorithm=algorithm,
        public_key=base64.b64encode(raw).decode(),
        fingerprint=fingerprint,
        created_at=now,
    )
    session.add(key)
    try:
        await session.flush()
    except IntegrityError as exc:  # the same key registered at the same moment
        raise Conflict(
            "This key is already registered.", errors=[field_error("public_key", "duplicate")]
        ) from exc
    await record(session, actor, "key.register", "public_key", key.id, now, purpose=data.purpose)
    return key


async def list_keys(session: AsyncSession, organisation_id: uuid.UUID) -> list[PublicKey]:
    """An organisation's registered public keys, oldest first."""
    rows = await session.scalars(
        select(PublicKey).where(PublicKey.organisation_id == organisation_id).order_by(PublicKey.created_at)
    )
    return list(rows)


async def list_audit(
    session: AsyncSession,
    *,
    object_type: str | None,
    object_id: str | None,
    actor_organisation_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
    sealed: Collection[uuid.UUID] = (),
) -> tuple[list[AuditEvent], str | None]:
    """Audit events, newest first, filtered, one page at a time; events marked with a tender in `sealed`
    (whose bids are still sealed) are left out (W-20)."""
    limit = check_limit(limit)
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit + 1)
    if sealed:
        mark = AuditEvent.detail["sealed_tender"].as_string()
        query = query.where(or_(mark.is_(None), mark.not_in(sorted(str(t) for t in sealed))))
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    if actor_organisation_id:
        query = query.where(AuditEvent.actor_organisation_id == actor_organisation_id)
    if cursor:
        at, row_id = decode_cursor(cursor)
        query = query.where((AuditEvent.at < at) | ((AuditEvent.at == at) & (AuditEvent.id < row_id)))
    rows = list(await session.scalars(query))
    return page_after(rows, limit, "at")


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """A user by id, or None."""
    return await session.get(User, user_id)


async def signing_keys_of(session: AsyncSession, user_id: uuid.UUID) -> list[PublicKey]:
    """The user's own Ed25519 signing keys that are not revoked (an evaluation report is signed by a person)."""
    rows = await session.scalars(
        select(PublicKey).where(
            PublicKey.user_id == user_id, PublicKey.purpose == "signing", PublicKey.revoked_at.is_(None)
        )
    )
    return list(rows)
