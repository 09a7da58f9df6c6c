"""HTTP routes of the expert pool (专家库): the specialty tree, experts, their relationships, availability
and credit record.

Readers of the pool are the centre, supervisors and auditors; experts see their own profile through
`/me`. Phone and email are personal data: only the centre and the expert themself see them.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.params import Body
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import authenticated, requires
from accounts.security import Principal
from evaluation import pool
from evaluation import pool_schemas as schemas
from evaluation.models import CreditEvent, Expert, ExpertRelationship, ExpertUnavailability, Specialty
from rules.calendar import local_date
from storage import http
from storage.bounds import Cursor, Filter, IfMatch, Limit
from storage.clock import Clock
from storage.problems import Problem, ValidationProblem, field_error

CENTRE = requires("centre")
READERS = requires("auditor", "centre", "supervisor")
EXPERT = requires("expert")


class UnsupportedMediaType(Problem):
    """The body is not in a format this route reads."""

    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


def _specialty(s: Specialty) -> schemas.SpecialtyRead:
    return schemas.SpecialtyRead(code=s.code, parent_code=s.parent_code, name=s.name, active=s.active)


def expert_read(expert: Expert, codes: list[str], *, personal: bool) -> schemas.ExpertRead:
    """An expert as `ExpertRead`; without `personal`, phone and email (also proposed ones) are null."""
    changes, proposed_at = pool.proposal_of(expert)
    if changes is not None and not personal:
        changes = {k: (None if k in pool.PERSONAL_FIELDS else v) for k, v in changes.items()}
    rejection = pool.rejection_of(expert)
    return schemas.ExpertRead(
        id=expert.id,
        number=expert.number,
        user_id=expert.user_id,
        name=expert.name,
        employer_credit_code=expert.employer_credit_code,
        employer_name=expert.employer_name,
        region_code=expert.region_code,
        title=expert.title,
        specialties=codes,
        status=expert.status,
        term_start=expert.term_start,
        term_end=expert.term_end,
        phone=expert.phone if personal else None,
        email=expert.email if personal else None,
        created_at=expert.created_at,
        approved_at=expert.approved_at,
        version=expert.version,
        pending_changes=changes,
        proposed_at=proposed_at,
        rejection=(
            schemas.RejectionRead(reason=rejection["reason"], at=datetime.fromisoformat(rejection["at"]))
            if rejection
            else None
        ),
    )


def _relationship(r: ExpertRelationship) -> schemas.RelationshipRead:
    return schemas.RelationshipRead(
        id=r.id,
        kind=r.kind,
        credit_code=r.credit_code,
        organisation_name=r.organisation_name,
        relation=r.relation,
        start_on=r.start_on,
        end_on=r.end_on,
        declared_at=r.declared_at,
    )


def _unavailability(u: ExpertUnavailability) -> schemas.UnavailabilityRead:
    return schemas.UnavailabilityRead(
        id=u.id, start_on=u.start_on, end_on=u.end_on, reason=u.reason, declared_at=u.declared_at
    )


async def _detail(
    session: AsyncSession, expert: Expert, *, personal: bool, status_code: int = 200
) -> Response[schemas.ExpertDetail]:
    """The expert with relationships and unavailability; the ETag is the version for If-Match."""
    codes = (await pool.specialties_of(session, [expert.id])).get(expert.id, [])
    read = expert_read(expert, codes, personal=personal)
    detail = schemas.ExpertDetail(
        **{f: getattr(read, f) for f in read.__struct_fields__},
        relationships=[_relationship(r) for r in await pool.relationships_of(session, expert.id)],
        unavailability=[_unavailability(u) for u in await pool.unavailability_of(session, expert.id)],
    )
    return Response(detail, status_code=status_code, headers={"ETag": http.etag(expert.version)})


async def _credit_record(session: AsyncSession, expert: Expert, on: date) -> schemas.CreditRecord:
    start, end = pool.credit_window(on)

    def event(e: CreditEvent) -> schemas.CreditEventRead:
        return schemas.CreditEventRead(
            id=e.id,
            kind=e.kind,
            points=e.points,
            tender_id=e.tender_id,
            at=e.at,
            note=e.note,
            recorded_by=e.recorded_by,
            counted=start <= e.at < end,
        )

    return schemas.CreditRecord(
        expert_id=expert.id,
        on=on,
        score=await pool.credit_score(session, expert.id, on),
        events=[event(e) for e in await pool.credit_events(session, expert.id)],
    )


def _media_type(request: Request[Any, Any, Any]) -> str:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in pool.CSV_TYPES and media != pool.XLSX_TYPE:
        raise UnsupportedMediaType(
            f"Send the file as text/csv or as {pool.XLSX_TYPE} (an .xlsx workbook), not {media or 'nothing'}."
        )
    return media


class ExpertPoolController(Controller):
    path = "/api/v1/evaluation"
    tags = ["evaluation"]

    # ------------------------------------------------------------ the specialty tree

    @get("/specialties", operation_id="list_specialties", guards=[authenticated])
    async def specialties(self, session: AsyncSession) -> list[schemas.SpecialtyRead]:
        """The specialty code tree, in code order."""
        return [_specialty(s) for s in await pool.specialty_tree(session)]

    @put("/specialties", operation_id="replace_specialties", guards=[CENTRE])
    async def replace_specialties(
        self,
        data: Annotated[list[schemas.SpecialtyIn], Body(max_items=5000)],
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> list[schemas.SpecialtyRead]:
        """Replace the specialty tree with the list given; a code experts hold may be deactivated
        (`active: false`) but not left out."""
        if len(data) > 5000:
            raise ValidationProblem("At most 5,000 codes.", errors=[field_error("body", "more than 5,000")])
        rows = await pool.replace_specialties(session, principal, data, clock.now())
        return [_specialty(s) for s in rows]

    # ------------------------------------------------------------ experts (the centre and readers)

    @post(
        "/experts/import",
        operation_id="import_experts",
        guards=[CENTRE],
        request_max_body_size=pool.MAX_IMPORT_BYTES,
        status_code=200,
    )
    async def import_experts(
        self, request: Request[Any, Any, Any], principal: Principal, session: AsyncSession, clock: Clock
    ) -> schemas.ImportResult:
        """Create and update experts from a CSV file or an .xlsx workbook sent as the body, all or nothing;
        the same file again changes nothing. Columns: number, name, username, employer_credit_code,
        employer_name, region_code, title, specialties (codes separated by ";"), status, term_start,
        term_end, phone, email."""
        media = _media_type(request)
        return await pool.import_experts(session, principal, await request.body(), media, clock.now())

    @get("/experts", operation_id="list_experts", guards=[READERS])
    async def list_experts(
        self,
        session: AsyncSession,
        principal: Principal,
        status: Filter = None,
        specialty: Filter = None,
        employer_credit_code: Filter = None,
        q: Filter = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> schemas.ExpertPage:
        """Experts by number, filtered by status, specialty prefix, employer and part of the name."""
        rows, next_cursor = await pool.list_experts(
            session,
            status=status,
            specialty=specialty,
            employer_credit_code=employer_credit_code,
            q=q,
            cursor=cursor,
            limit=limit,
        )
        codes = await pool.specialties_of(session, [e.id for e in rows])
        personal = principal.has("centre")
        return schemas.ExpertPage(
            items=[expert_read(e, codes.get(e.id, []), personal=personal) for e in rows],
            next_cursor=next_cursor,
        )

    @get("/experts/{expert_id:uuid}", operation_id="get_expert", guards=[READERS])
    async def get_expert(
        self, expert_id: uuid.UUID, session: AsyncSession, principal: Principal
    ) -> Response[schemas.ExpertDetail]:
        """One expert with relationships and unavailable days; the ETag is the version for If-Match."""
        expert = await pool.get_expert(session, expert_id)
        return await _detail(session, expert, personal=principal.has("centre"))

    @patch("/experts/{expert_id:uuid}", operation_id="update_expert", guards=[CENTRE])
    async def update_expert(
        self,
        expert_id: uuid.UUID,
        data: schemas.ExpertUpdate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
        if_match: IfMatch = None,
    ) -> Response[schemas.ExpertDetail]:
        """Suspend, reinstate, retire or reappoint an expert, or change their term (If-Match required)."""
        version = http.if_match(if_match, required=True)
        assert version is not None
        expert = await pool.update_expert(session, principal, expert_id, data, version, clock.now())
        return await _detail(session, expert, personal=True)

    @post(
        "/experts/{expert_id:uuid}/approve", operation_id="approve_expert", guards=[CENTRE], status_code=200
    )
    async def approve(
        self,
        expert_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
        if_match: IfMatch = None,
    ) -> Response[schemas.ExpertDetail]:
        """Approve an enrolment (the expert becomes active) and the profile changes awaiting approval."""
        expert = await pool.approve(
            session, principal, expert_id, http.if_match(if_match, required=False), clock.now()
        )
        return await _detail(session, expert, personal=True)

    @post("/experts/{expert_id:uuid}/reject", operation_id="reject_expert", guards=[CENTRE], status_code=200)
    async def reject(
        self,
        expert_id: uuid.UUID,
        data: schemas.RejectionIn,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
        if_match: IfMatch = None,
    ) -> Response[schemas.ExpertDetail]:
        """Turn down an enrolment or the proposed changes, with the reason the expert will read."""
        expert = await pool.reject(
            session, principal, expert_id, data.reason, http.if_match(if_match, required=False), clock.now()
        )
        return await _detail(session, expert, personal=True)

    @post("/experts/{expert_id:uuid}/credit", operation_id="record_expert_credit", guards=[CENTRE])
    async def record_credit(
        self,
        expert_id: uuid.UUID,
        data: schemas.CreditIn,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.CreditRecord:
        """Add a line to an expert's credit record (an upheld complaint, lateness, absence, or other with
        the points given); answers the record with the new score."""
        now = clock.now()
        await pool.record_credit(
            session, principal, expert_id, data.kind, data.tender_id, data.note, now, points=data.points
        )
        return await _credit_record(session, await pool.get_expert(session, expert_id), local_date(now))

    @get("/experts/{expert_id:uuid}/credit", operation_id="expert_credit", guards=[READERS])
    async def credit(self, expert_id: uuid.UUID, session: AsyncSession, clock: Clock) -> schemas.CreditRecord:
        """An expert's credit record and today's score."""
        expert = await pool.get_expert(session, expert_id)
        return await _credit_record(session, expert, local_date(clock.now()))

    # ------------------------------------------------------------ the expert's own profile

    @post("/me/enrol", operation_id="enrol_expert", guards=[EXPERT])
    async def enrol(
        self, data: schemas.Enrolment, principal: Principal, session: AsyncSession, clock: Clock
    ) -> Response[schemas.ExpertDetail]:
        """Apply to join the expert pool; the centre approves or rejects the application."""
        expert = await pool.enrol(session, principal, data, clock.now())
        return await _detail(session, expert, personal=True, status_code=201)

    @get("/me", operation_id="my_expert_profile", guards=[EXPERT])
    async def me(self, principal: Principal, session: AsyncSession) -> Response[schemas.ExpertDetail]:
        """The caller's own expert profile, with the changes awaiting approval."""
        return await _detail(session, await pool.my_expert(session, principal), personal=True)

    @patch("/me", operation_id="propose_expert_changes", guards=[EXPERT])
    async def propose(
        self,
        data: schemas.ProfileChange,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
        if_match: IfMatch = None,
    ) -> Response[schemas.ExpertDetail]:
        """Propose changes to one's profile; they apply when the centre approves them (If-Match optional)."""
        expert = await pool.propose_changes(
            session, principal, data, http.if_match(if_match, required=False), clock.now()
        )
        return await _detail(session, expert, personal=True)

    @post("/me/relationships", operation_id="declare_relationship", guards=[EXPERT])
    async def declare_relationship(
        self, data: schemas.RelationshipIn, principal: Principal, session: AsyncSession, clock: Clock
    ) -> schemas.RelationshipRead:
        """Declare a former employer or an organisation where a close relative works; effective at once."""
        return _relationship(await pool.declare_relationship(session, principal, data, clock.now()))

    @post("/me/unavailability", operation_id="declare_unavailability", guards=[EXPERT])
    async def declare_unavailability(
        self, data: schemas.UnavailabilityIn, principal: Principal, session: AsyncSession, clock: Clock
    ) -> schemas.UnavailabilityRead:
        """Declare days (inclusive, from today, at most 366) one cannot evaluate."""
        return _unavailability(await pool.declare_unavailability(session, principal, data, clock.now()))

    @delete(
        "/me/unavailability/{unavailability_id:uuid}", operation_id="withdraw_unavailability", guards=[EXPERT]
    )
    async def withdraw_unavailability(
        self, unavailability_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> None:
        """Withdraw one's own unavailable period that has not ended."""
        await pool.withdraw_unavailability(session, principal, unavailability_id, clock.now())

    @get("/me/credit", operation_id="my_credit", guards=[EXPERT])
    async def my_credit(
        self, principal: Principal, session: AsyncSession, clock: Clock
    ) -> schemas.CreditRecord:
        """The caller's own credit record and today's score."""
        expert = await pool.my_expert(session, principal)
        return await _credit_record(session, expert, local_date(clock.now()))
