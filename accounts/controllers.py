"""HTTP routes of the accounts package: parse, authorise, call the service, shape the answer."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts import audit, auditchain, schemas, service
from accounts.guards import authenticated, public, requires
from accounts.models import ApiToken, AuditEvent, Organisation, PublicKey, RegistrationCollision, User
from accounts.security import Principal
from accounts.signin import SignInThrottle
from storage import jobs
from storage.bounds import Cursor, Filter, Limit
from storage.clock import Clock
from storage.outbox import OutboxMessage
from storage.problems import NotFound, ValidationProblem, field_error
from storage.settings import Settings
from storage.signing import LogSigner


def org_read(org: Organisation) -> schemas.OrganisationRead:
    return schemas.OrganisationRead(
        id=org.id,
        name=org.name,
        credit_code=org.credit_code,
        kind=org.kind,
        status=org.status,
        created_at=org.created_at,
        approved_at=org.approved_at,
    )


def user_read(user: User) -> schemas.UserRead:
    return schemas.UserRead(
        id=user.id,
        organisation_id=user.organisation_id,
        username=user.username,
        display_name=user.display_name,
        roles=list(user.roles),
        active=user.active,
    )


def token_read(row: ApiToken) -> schemas.ApiTokenRead:
    return schemas.ApiTokenRead(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        roles=list(row.roles),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def key_read(key: PublicKey) -> schemas.PublicKeyRead:
    return schemas.PublicKeyRead(
        id=key.id,
        organisation_id=key.organisation_id,
        purpose=key.purpose,
        algorithm=key.algorithm,
        public_key=key.public_key,
        fingerprint=key.fingerprint,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


def job_read(row: OutboxMessage) -> schemas.JobRead:
    return schemas.JobRead(
        id=row.id,
        job=row.job,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        failing_since=row.failing_since,
        dead_at=row.dead_at,
        completed_at=row.completed_at,
        available_at=row.available_at,
    )


def audit_read(event: AuditEvent) -> schemas.AuditEventRead:
    return schemas.AuditEventRead(
        id=event.id,
        sequence=event.sequence,
        at=event.at,
        actor_user_id=event.actor_user_id,
        actor_organisation_id=event.actor_organisation_id,
        actor_roles=list(event.actor_roles),
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        outcome=event.outcome,
        detail=event.detail,
        previous_hash=event.previous_hash,
        hash=event.hash,
    )


REGISTRATION_RECEIVED = schemas.RegistrationReceived(
    status="received",
    detail=(
        "The registration is received. The centre checks it and your organisation's papers and contacts "
        "you at the e-mail address you gave; you can sign in and act once it has approved your organisation."
    ),
)


def client_address(request: Request[Any, Any, Any]) -> str | None:
    """The address a request came from, as the server saw it (behind a proxy, run the server so that it
    takes the proxy's X-Forwarded-For, e.g. uvicorn's --proxy-headers with --forwarded-allow-ips)."""
    return request.client.host if request.client else None


def collision_read(row: RegistrationCollision) -> schemas.RegistrationCollisionRead:
    return schemas.RegistrationCollisionRead(
        id=row.id,
        submitted_at=row.submitted_at,
        kind=row.kind,
        organisation_name=row.organisation_name,
        credit_code=row.credit_code,
        username=row.username,
        display_name=row.display_name,
        contact_email=row.contact_email,
        collides_on=list(row.collides_on),
        status=row.status,
        closed_at=row.closed_at,
        note=row.note,
    )


class AuthController(Controller):
    """Sign-in and API tokens."""

    path = "/api/v1/auth"
    tags = ["accounts"]

    @post("/login", operation_id="login", guards=[public], status_code=200)
    async def login(
        self,
        data: schemas.LoginRequest,
        request: Request[Any, Any, Any],
        session: AsyncSession,
        clock: Clock,
        settings: Settings,
        throttle: SignInThrottle,
    ) -> schemas.AccessToken:
        """Exchange a username and password for a bearer token. Throttled per account and per address: a
        429 with `Retry-After` while either is locked out (the same for a username that does not exist)."""
        token, expires, user = await service.login(
            session,
            data.username,
            data.password,
            throttle=throttle,
            address=client_address(request),
            secret=settings.secret_key,
            ttl=timedelta(minutes=settings.token_ttl_minutes),
            now=clock.now(),
        )
        return schemas.AccessToken(token, "Bearer", expires, user_read(user))

    @post("/password", operation_id="change_password", guards=[authenticated], status_code=204)
    async def change_password(
        self,
        data: schemas.PasswordChange,
        request: Request[Any, Any, Any],
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
        throttle: SignInThrottle,
    ) -> None:
        """Change the caller's own password (the current one is checked under the sign-in throttle, the new
        one against the password policy); bearer tokens issued before now stop working."""
        await service.change_password(
            session,
            principal,
            data.current_password,
            data.new_password,
            throttle=throttle,
            address=client_address(request),
            now=clock.now(),
        )

    @get("/me", operation_id="whoami", guards=[authenticated])
    async def me(self, principal: Principal, session: AsyncSession) -> schemas.CallerRead:
        """The caller, its organisation and the roles it acts in."""
        org = await service.get_organisation(session, principal.organisation_id)
        return schemas.CallerRead(
            user_id=principal.user_id,
            username=principal.username,
            roles=sorted(principal.roles),
            via=principal.via,
            organisation=org_read(org),
        )

    @post("/tokens", operation_id="issue_api_token", guards=[authenticated])
    async def issue_token(
        self, data: schemas.ApiTokenCreate, principal: Principal, session: AsyncSession, clock: Clock
    ) -> schemas.ApiTokenIssued:
        """Issue an API token for a system acting for the caller; the token is shown only now."""
        token, row = await service.issue_api_token(session, principal, data, clock.now())
        return schemas.ApiTokenIssued(token, token_read(row))

    @get("/tokens", operation_id="list_api_tokens", guards=[authenticated])
    async def list_tokens(self, principal: Principal, session: AsyncSession) -> list[schemas.ApiTokenRead]:
        """The caller's own API tokens: name, scopes, when issued, last used and revoked; never the token itself."""
        return [token_read(r) for r in await service.list_api_tokens(session, principal)]

    @post(
        "/tokens/{token_id:uuid}/revoke",
        operation_id="revoke_api_token",
        guards=[authenticated],
        status_code=200,
    )
    async def revoke_token(
        self, token_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> schemas.ApiTokenRead:
        """Revoke one of the caller's API tokens."""
        return token_read(await service.revoke_api_token(session, principal, token_id, clock.now()))


class OrganisationController(Controller):
    """Registration, organisations, users and public keys."""

    path = "/api/v1"
    tags = ["accounts"]

    @post("/registrations", operation_id="register_organisation", guards=[public], status_code=202)
    async def register(
        self, data: schemas.RegistrationCreate, session: AsyncSession, clock: Clock
    ) -> schemas.RegistrationReceived:
        """A bidder or agency registers; it acts once the centre approves it. The answer is the same whether
        or not the username or the credit code is taken (a taken one goes to the centre, which contacts
        the applicant)."""
        await service.register(session, data, clock.now())
        return REGISTRATION_RECEIVED

    @get(
        "/registrations/collisions",
        operation_id="list_registration_collisions",
        guards=[requires("centre")],
    )
    async def collisions(
        self, session: AsyncSession, status: Literal["open", "closed"] | None = None
    ) -> list[schemas.RegistrationCollisionRead]:
        """Registrations whose username or credit code was taken, for the centre to contact the applicant."""
        return [collision_read(c) for c in await service.list_collisions(session, status)]

    @post(
        "/registrations/collisions/{collision_id:uuid}/close",
        operation_id="close_registration_collision",
        guards=[requires("centre")],
        status_code=200,
    )
    async def close_collision(
        self,
        collision_id: uuid.UUID,
        data: schemas.CollisionClose,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.RegistrationCollisionRead:
        """Close a collision once the applicant has been contacted; its password hash is forgotten."""
        return collision_read(
            await service.close_collision(session, principal, collision_id, data.note, clock.now())
        )

    @post("/organisations", operation_id="create_organisation", guards=[requires("centre")])
    async def create(
        self, data: schemas.OrganisationCreate, principal: Principal, session: AsyncSession, clock: Clock
    ) -> schemas.OrganisationRead:
        """Centre staff add an organisation (approved at once)."""
        return org_read(await service.create_organisation(session, principal, data, clock.now()))

    @get(
        "/organisations",
        operation_id="list_organisations",
        guards=[requires("centre", "supervisor", "auditor")],
    )
    async def list_all(
        self,
        session: AsyncSession,
        kind: Filter = None,
        status: Filter = None,
    ) -> list[schemas.OrganisationRead]:
        """All organisations, for the centre and those who watch it."""
        return [org_read(o) for o in await service.list_organisations(session, kind=kind, status=status)]

    @post(
        "/organisations/{organisation_id:uuid}/approve",
        operation_id="approve_organisation",
        guards=[requires("centre")],
        status_code=200,
    )
    async def approve(
        self, organisation_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> schemas.OrganisationRead:
        """Approve a registered organisation after checking its papers: its users may then sign in and act."""
        return org_read(await service.approve_organisation(session, principal, organisation_id, clock.now()))

    @post("/users", operation_id="create_user", guards=[requires("centre")])
    async def create_user(
        self, data: schemas.UserCreate, principal: Principal, session: AsyncSession, clock: Clock
    ) -> schemas.UserRead:
        """Centre staff add a user to an organisation."""
        return user_read(await service.create_user(session, principal, data, clock.now()))

    @post(
        "/users/{user_id:uuid}/deactivate",
        operation_id="deactivate_user",
        guards=[requires("centre")],
        status_code=200,
    )
    async def deactivate_user(
        self, user_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> schemas.UserRead:
        """Deactivate a user: it can no longer sign in, and its tokens stop working at once."""
        return user_read(await service.deactivate_user(session, principal, user_id, clock.now()))

    @post(
        "/keys",
        operation_id="register_public_key",
        guards=[requires("bidder", "centre", "supervisor", "agency", "expert")],
    )
    async def register_key(
        self, data: schemas.PublicKeyCreate, principal: Principal, session: AsyncSession, clock: Clock
    ) -> schemas.PublicKeyRead:
        """Register a signing (Ed25519) or encryption (X25519) public key for the caller's organisation."""
        return key_read(await service.register_key(session, principal, data, clock.now()))

    @get("/keys", operation_id="list_own_public_keys", guards=[authenticated])
    async def own_keys(self, principal: Principal, session: AsyncSession) -> list[schemas.PublicKeyRead]:
        """The caller's organisation's public keys."""
        return [key_read(k) for k in await service.list_keys(session, principal.organisation_id)]

    @get(
        "/organisations/{organisation_id:uuid}/keys", operation_id="list_public_keys", guards=[authenticated]
    )
    async def org_keys(
        self, organisation_id: uuid.UUID, session: AsyncSession
    ) -> list[schemas.PublicKeyRead]:
        """Another organisation's public keys (public keys are meant to be shared)."""
        await service.get_organisation(session, organisation_id)
        return [key_read(k) for k in await service.list_keys(session, organisation_id)]


class AuditController(Controller):
    """The audit trail, read by those who supervise and audit."""

    path = "/api/v1/audit"
    tags = ["oversight"]

    @get("/", operation_id="list_audit_events", guards=[requires("centre", "supervisor", "auditor")])
    async def list_events(
        self,
        session: AsyncSession,
        sealed_tenders: frozenset[uuid.UUID],
        object_type: Filter = None,
        object_id: Filter = None,
        actor_organisation_id: uuid.UUID | None = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> schemas.AuditPage:
        """Audit events, newest first. An event that shows a bidder taking part in a tender whose bids are
        still sealed is left out until the deadline (W-20), for every reader."""
        rows, next_cursor = await service.list_audit(
            session,
            object_type=object_type,
            object_id=object_id,
            actor_organisation_id=actor_organisation_id,
            cursor=cursor,
            limit=limit,
            sealed=sealed_tenders,
        )
        return schemas.AuditPage([audit_read(e) for e in rows], next_cursor)

    @get("/verify", operation_id="verify_audit_trail", guards=[requires("centre", "supervisor", "auditor")])
    async def verify(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        signer: LogSigner,
        limit: Annotated[
            int, Parameter(query="limit", ge=1, le=auditchain.MAX_LIMIT)
        ] = auditchain.DEFAULT_LIMIT,
    ) -> schemas.AuditReport:
        """Re-check the whole audit trail from the stored rows, as `ggzy verify audit` does: the sequence,
        every event's hash and link, the chain row and every signed head; each check names every offender
        up to `limit`."""
        async with audit.snapshot(sessionmaker) as session:
            return audit.report_json(await audit.verify(session, signer.public_raw, limit=limit))

    @post(
        "/verify",
        operation_id="verify_audit_trail_against_head",
        guards=[requires("centre", "supervisor", "auditor")],
        status_code=200,
    )
    async def verify_kept(
        self,
        data: schemas.AuditVerifyRequest,
        sessionmaker: async_sessionmaker[AsyncSession],
        signer: LogSigner,
    ) -> schemas.AuditReport:
        """The same check, and that the trail still extends `head`, a signed head the caller kept."""
        try:
            kept = auditchain.head_from_json(data.head, "head.")
        except ValueError as exc:
            field, _, message = str(exc).partition(": ")
            raise ValidationProblem(
                f"That is not a signed head of the audit trail: {exc}.", errors=[field_error(field, message)]
            ) from exc
        async with audit.snapshot(sessionmaker) as session:
            return audit.report_json(
                await audit.verify(session, signer.public_raw, kept=kept, limit=data.limit)
            )

    @post(
        "/heads",
        operation_id="sign_audit_head",
        guards=[requires("centre", "supervisor", "auditor")],
        responses={
            200: ResponseSpec(
                data_container=auditchain.PublishedAuditHead,
                description="The trail has not moved since the newest head: that head, as signed then",
                generate_examples=False,
            )
        },
    )
    async def sign_head(
        self, principal: Principal, session: AsyncSession, signer: LogSigner, clock: Clock
    ) -> Response[auditchain.PublishedAuditHead]:
        """Sign the trail's head now (201), after checking the events since the last signed head extend
        it (409 if not); the newest head (200) when the trail has not moved since. Keep it to check later
        that nothing before it changed (`POST /api/v1/audit/verify`, `ggzy verify audit --head`)."""
        now = clock.now()
        signed, new = await audit.sign(session, signer, now)
        if signed is None:
            raise NotFound("The audit trail is empty; there is no head to sign.")
        if new:
            await service.record(
                session,
                principal,
                "audit.sign_head",
                "audit_head",
                signed.head.sequence,
                now,
                events=signed.head.events,
                chain_hash=signed.head.chain_hash,
            )
        return Response(auditchain.head_to_json(signed), status_code=201 if new else 200)


class AuditHeadController(Controller):
    """The audit trail's signed heads, published beside the transparency log's and the ledger's: public,
    sizes and hashes only. Pin the key from `GET /api/v1/transparency/key`, keep a head, and check it
    later with `ggzy verify audit --head HEAD.json` (or `POST /api/v1/audit/verify`)."""

    path = "/api/v1/transparency/audit"
    tags = ["transparency"]

    @get("/head", operation_id="audit_head", guards=[public])
    async def head(self, session: AsyncSession) -> auditchain.PublishedAuditHead:
        """The newest signed head of the audit trail."""
        newest = await audit.newest_head(session)
        if newest is None:
            raise NotFound("No head of the audit trail has been signed yet.")
        return auditchain.head_to_json(newest)

    @get("/heads/{sequence:int}", operation_id="audit_head_at", guards=[public])
    async def head_at(
        self, session: AsyncSession, sequence: Annotated[int, Parameter(ge=1, le=auditchain.MAX_SEQUENCE)]
    ) -> auditchain.PublishedAuditHead:
        """Signed head number `sequence`, exactly as signed, to check offline with the platform's key."""
        return auditchain.head_to_json(await audit.head_at(session, sequence))

    @get("/heads", operation_id="audit_heads", guards=[public])
    async def heads(
        self,
        session: AsyncSession,
        after: Annotated[int, Parameter(query="after", ge=0, le=auditchain.MAX_SEQUENCE)] = 0,
        limit: Annotated[int, Parameter(query="limit", ge=1, le=200)] = 100,
    ) -> schemas.AuditHeadPage:
        """Signed heads numbered after `after`, oldest first, at most `limit`; `next` is the `after` of the
        next page (null at the end)."""
        heads, next_after = await audit.list_heads(session, after=after, limit=limit)
        return {"heads": [auditchain.head_to_json(h) for h in heads], "next": next_after}


class JobsController(Controller):
    """The dead-letter list: background jobs that kept failing for the whole retry horizon, for the centre
    to look into and retry once the cause is fixed."""

    path = "/api/v1/jobs"
    tags = ["operations"]

    @get("/dead", operation_id="list_dead_jobs", guards=[requires("centre")])
    async def list_dead(
        self, session: AsyncSession, limit: Annotated[int, Parameter(query="limit", ge=1, le=500)] = 100
    ) -> list[schemas.JobRead]:
        """Jobs parked as dead, most recently parked first."""
        return [job_read(row) for row in await jobs.dead_letters(session, limit=limit)]

    @post("/{job_id:uuid}/retry", operation_id="retry_dead_job", guards=[requires("centre")], status_code=200)
    async def retry(
        self, session: AsyncSession, principal: Principal, clock: Clock, job_id: uuid.UUID
    ) -> schemas.JobRetried:
        """Put a dead job back in the queue, due now, with a fresh retry horizon. Idempotent: a job that is
        not dead is answered as it is, with `retried` false."""
        now = clock.now()
        outcome = await jobs.retry_dead(session, job_id, now)
        if outcome is None:
            raise NotFound("No such job.")
        row, retried = outcome
        if retried:
            await service.record(session, principal, "job.retry", "job", row.id, now, job=row.job)
        return schemas.JobRetried(job_read(row), retried)
