"""HTTP routes of a trade: tenders, documents and clarifications, objections, awards and contracts, complaints,
notices and the inbox, the calendar and the chronograph's failures: parse, authorise, call the service, shape
the answer. The bids' routes, from upload to opening, are in bidding/controllers.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get, patch, post, put
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.guards import authenticated, public, requires
from accounts.security import Principal
from rules.calendar import ScheduleDict
from storage import http
from storage.bounds import Cursor, Filter, IfMatch, Limit
from storage.clock import Clock
from storage.db import SINGLE_READ, transaction
from storage.objects import ObjectStore
from storage.problems import ValidationProblem, field_error
from storage.settings import Settings
from trading import (
    award_changes,
    awards,
    chronograph,
    complaints,
    contracts,
    documents,
    framework_orders,
    notices,
    objections,
    reevaluation,
    reruns,
    responses,
    reviews,
    schemas,
    tenders,
)
from trading.centre_controllers import CENTRE_CONTROLLERS
from trading.framework_controllers import FrameworkController
from trading.models import Award, Clarification, Complaint, Contract, Notice, Notification, Objection
from trading.negotiation_controllers import NegotiationController
from trading.supervision_controllers import DeadlineController

AGENCY = requires("agency")
BIDDER = requires("bidder")


async def tender_response(
    session: AsyncSession,
    tender: Any,
    status_code: int = 200,
    *,
    caller: Principal | None,
    now: datetime,
    rehearsal: bool = False,
) -> Response[schemas.TenderRead]:
    read = await tenders.tender_read(session, tender, caller, now)
    if rehearsal:  # its deadlines are a rehearsal's, on the rehearsal clock
        read = msgspec.structs.replace(read, rehearsal=True)
    return Response(read, status_code=status_code, headers={"ETag": http.etag(tender.version)})


def notice_read(n: Notice | Any) -> schemas.NoticeRead:
    """A notice, or a row of its columns, as the API shows it."""
    return schemas.NoticeRead(
        n.id,
        n.tender_id,
        n.tender_code,
        n.kind,
        n.sector,
        n.region_code,
        n.title,
        n.body,
        n.published_at,
        n.supersedes_id,
        n.superseded_by_id,
    )


def objection_read(o: Objection, objector_shown: bool = True) -> schemas.ObjectionRead:
    return schemas.ObjectionRead(
        o.id,
        o.tender_id,
        o.organisation_id if objector_shown else None,
        o.subject,
        o.text,
        o.filed_at,
        o.answer_due,
        o.answer,
        o.answered_at,
        o.outcome,
    )


def clarification_read(c: Clarification) -> schemas.ClarificationRead:
    return schemas.ClarificationRead(
        c.id,
        c.number,
        c.text,
        c.affects_bids,
        c.issued_at,
        c.deadline_before,
        c.deadline_after,
        c.deadline_before != c.deadline_after,
    )


def award_read(a: Award) -> schemas.AwardRead:
    return schemas.AwardRead(
        a.id,
        a.lot_id,
        a.bid_id,
        a.organisation_id,
        a.price_fen,
        a.awarded_at,
        a.contract_due,
        a.status,
        a.declined_at,
        a.decline_reason,
        a.deposit_refunded_fen,
    )


def complaint_read(c: Complaint) -> schemas.ComplaintRead:
    return schemas.ComplaintRead(
        c.id,
        c.tender_id,
        c.organisation_id,
        c.subject,
        c.known_on,
        c.text,
        c.filed_at,
        c.decision_due,
        c.decision,
        c.decision_text,
        c.decided_at,
        c.outcome,
    )


def contract_read(c: Contract) -> schemas.ContractRead:
    return schemas.ContractRead(
        c.id,
        c.award_id,
        c.price_fen,
        c.performance_security_fen,
        c.signed_on,
        c.late_reason,
        c.recorded_at,
        c.acceptance_result,
        c.accepted_on,
    )


class TenderController(Controller):
    """Tenders: drafting, publishing, the timeline, terminating and re-running."""

    path = "/api/v1/tenders"
    tags = ["trading"]

    @post("/", operation_id="create_tender", guards=[AGENCY])
    async def create(
        self, data: schemas.TenderCreate, principal: Principal, session: AsyncSession, clock: Clock
    ) -> Response[schemas.TenderRead]:
        """Save a new works tender as a draft."""
        tender = await tenders.create_tender(session, principal, data, clock.now())
        return await tender_response(session, tender, 201, caller=principal, now=clock.now())

    @get("/", operation_id="list_tenders", guards=[public])
    async def list_tenders(
        self,
        session: AsyncSession,
        settings: Settings,
        clock: Clock,
        request_principal: Principal | None = None,
        status: Filter = None,
        mine: bool = False,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> responses.TenderPage:
        """Published tenders (and, with `mine=true`, the caller agency's own drafts), newest first."""
        rows, next_cursor = await tenders.list_tenders(
            session, request_principal, status=status, mine=mine, cursor=cursor, limit=limit
        )
        page: responses.TenderPage = {
            "items": [await tenders.tender_read(session, t, request_principal, clock.now()) for t in rows],
            "next_cursor": next_cursor,
        }
        if settings.rehearsal:
            page["rehearsal"] = True
        return page

    @get("/{tender_id:uuid}", operation_id="get_tender", guards=[public])
    async def get_one(
        self,
        tender_id: uuid.UUID,
        session: AsyncSession,
        settings: Settings,
        clock: Clock,
        request_principal: Principal | None = None,
    ) -> Response[schemas.TenderRead]:
        """One tender; drafts only for their agency. The ETag is the version to send back in If-Match;
        `allowed_actions` lists what the caller can ask of it now."""
        return await tender_response(
            session,
            await tenders.visible_tender(session, request_principal, tender_id),
            caller=request_principal,
            now=clock.now(),
            rehearsal=settings.rehearsal,
        )

    @patch("/{tender_id:uuid}", operation_id="update_tender", guards=[AGENCY])
    async def update(
        self,
        tender_id: uuid.UUID,
        data: schemas.TenderUpdate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
        if_match: IfMatch = None,
    ) -> Response[schemas.TenderRead]:
        """Edit a draft (If-Match required)."""
        version = http.if_match(if_match, required=True)
        assert version is not None
        tender = await tenders.update_tender(session, principal, tender_id, data, version, clock.now())
        return await tender_response(session, tender, caller=principal, now=clock.now())

    @post("/{tender_id:uuid}/publish", operation_id="publish_tender", guards=[AGENCY], status_code=200)
    async def publish(
        self,
        tender_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
        if_match: IfMatch = None,
    ) -> Response[schemas.TenderRead]:
        """Submit the tender notice for the centre's review (公告审核), once every publishing check passes
        (the timeline against W-01, the documents, the project accepted); the centre's approval publishes it.
        The tender stays a draft until then."""
        tender = await reviews.submit(
            session, principal, tender_id, http.if_match(if_match, required=False), clock.now()
        )
        return await tender_response(session, tender, caller=principal, now=clock.now())

    @post("/{tender_id:uuid}/cancel", operation_id="cancel_tender", guards=[AGENCY], status_code=200)
    async def cancel(
        self,
        tender_id: uuid.UUID,
        data: schemas.CancelRequest,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> Response[schemas.TenderRead]:
        """Terminate the tender before the deadline (终止招标)."""
        return await tender_response(
            session,
            await tenders.cancel(session, principal, tender_id, data.reason, clock.now()),
            caller=principal,
            now=clock.now(),
        )

    @post("/{tender_id:uuid}/retender", operation_id="retender", guards=[AGENCY])
    async def retender(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> Response[schemas.TenderRead]:
        """Create a new draft from a failed or terminated tender (重新招标, W-09)."""
        return await tender_response(
            session,
            await reruns.retender(session, principal, tender_id, clock.now()),
            201,
            caller=principal,
            now=clock.now(),
        )

    @post("/{tender_id:uuid}/switch-method", operation_id="switch_method", guards=[AGENCY])
    async def switch_method(
        self,
        tender_id: uuid.UUID,
        data: schemas.MethodSwitch,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> Response[schemas.TenderRead]:
        """Re-run a procurement that failed for too few suppliers by another method, with the approving
        body's consent (变更采购方式, G-13): a new draft recording the approval."""
        return await tender_response(
            session,
            await reruns.switch_method(session, principal, tender_id, data, clock.now()),
            201,
            caller=principal,
            now=clock.now(),
        )

    @post("/{tender_id:uuid}/complete", operation_id="complete_tender", guards=[AGENCY], status_code=200)
    async def complete(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> Response[schemas.TenderRead]:
        """Close a contracted tender: the trade is complete and its record final (the agency, after the contract);
        a framework's open mini-competitions end unawarded."""
        tender = await contracts.complete(session, principal, tender_id, clock.now())
        await framework_orders.end_competitions(session, principal, tender, clock.now())
        return await tender_response(session, tender, caller=principal, now=clock.now())


class DocumentController(Controller):
    """Tender documents, clarifications and objections."""

    path = "/api/v1/tenders/{tender_id:uuid}"
    tags = ["trading"]

    @post("/uploads", operation_id="request_document_upload", guards=[AGENCY])
    async def upload(
        self,
        tender_id: uuid.UUID,
        data: schemas.UploadRequest,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        clock: Clock,
        settings: Settings,
    ) -> schemas.UploadGrant:
        """A presigned upload of a document of the tender (documents, report, contract), capped at its size."""
        return await documents.document_upload(
            session, principal, tender_id, data, object_store, clock.now(), settings.upload_quota_bytes
        )

    @post("/documents", operation_id="register_document", guards=[AGENCY])
    async def register(
        self,
        tender_id: uuid.UUID,
        data: schemas.DocumentRegister,
        principal: Principal,
        sessionmaker: async_sessionmaker[AsyncSession],
        object_store: ObjectStore,
        clock: Clock,
    ) -> schemas.DocumentRead:
        """Record an uploaded file as a tender document; the server hashes it.

        The file is copied and hashed outside any transaction, then recorded in one short write transaction;
        a copy that is not recorded (a refusal, a duplicate) is removed."""
        now = clock.now()
        taken = await documents.take_document(
            sessionmaker, object_store, principal, tender_id, data.object_key, now
        )
        try:
            async with transaction(sessionmaker) as session:
                d = await documents.register_document(session, principal, tender_id, data, taken, now)
                return schemas.DocumentRead(d.id, d.kind, d.filename, d.sha256, d.size, d.uploaded_at)
        except BaseException:
            await documents.drop_document(sessionmaker, object_store, taken)
            raise

    @get("/documents", operation_id="list_documents", guards=[public])
    async def list_documents(
        self, tender_id: uuid.UUID, session: AsyncSession, request_principal: Principal | None = None
    ) -> list[schemas.DocumentRead]:
        """The tender's documents with their hashes (contents are obtained by bidders, below)."""
        tender = await tenders.visible_tender(session, request_principal, tender_id)
        return [
            schemas.DocumentRead(d.id, d.kind, d.filename, d.sha256, d.size, d.uploaded_at)
            for d in await documents.list_documents(session, tender.id, documents.PUBLIC_DOCUMENT_KINDS)
        ]

    @post("/documents/obtain", operation_id="obtain_documents", guards=[BIDDER], status_code=200)
    async def obtain(
        self,
        tender_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        clock: Clock,
        settings: Settings,
    ) -> list[schemas.DocumentRead]:
        """Obtain the tender documents: the bidder is registered as a holder, gets download links, and a
        deposit sub-account per lot (see `GET /api/v1/escrow/deposits`)."""
        return await documents.obtain_documents(
            session,
            principal,
            tender_id,
            object_store,
            clock.now(),
            virtual_prefix=settings.escrow_virtual_prefix,
        )

    @post("/clarifications", operation_id="issue_clarification", guards=[AGENCY])
    async def clarify(
        self,
        tender_id: uuid.UUID,
        data: schemas.ClarificationCreate,
        principal: Principal,
        sessionmaker: async_sessionmaker[AsyncSession],
        object_store: ObjectStore,
        clock: Clock,
    ) -> schemas.ClarificationRead:
        """Issue a clarification or amendment, with amended documents if any (W-02 moves the deadline).
        Amended documents are copied and hashed outside any transaction, as for `register_document`."""
        now = clock.now()
        amended = None
        if data.amended_documents is not None:
            key = data.amended_documents.object_key
            amended = await documents.take_document(
                sessionmaker, object_store, principal, tender_id, key, now
            )
        try:
            async with transaction(sessionmaker) as session:
                # How many hold the documents stays secret until the deadline, from the agency too (W-20).
                c, _holders = await documents.clarify(session, principal, tender_id, data, now, amended)
                return clarification_read(c)
        except BaseException:
            await documents.drop_document(sessionmaker, object_store, amended)
            raise

    @post("/objections", operation_id="file_objection", guards=[BIDDER])
    async def object_to(
        self,
        tender_id: uuid.UUID,
        data: schemas.ObjectionCreate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.ObjectionRead:
        """File an objection (异议) to the documents (W-03), the opening, or the candidates (W-12); in
        procurement a challenge (质疑, G-12) to the documents, the opening or the result."""
        return objection_read(
            await objections.file_objection(session, principal, tender_id, data, clock.now())
        )

    @get("/objections", operation_id="list_objections", guards=[authenticated])
    async def objections(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> list[schemas.ObjectionRead]:
        """Objections on the tender (a bidder sees its own); before the deadline only the objector is named."""
        return [
            objection_read(o, shown)
            for o, shown in await objections.list_objections(session, principal, tender_id)
        ]

    @post(
        "/objections/{objection_id:uuid}/answer",
        operation_id="answer_objection",
        guards=[AGENCY],
        status_code=200,
    )
    async def answer(
        self,
        tender_id: uuid.UUID,
        objection_id: uuid.UUID,
        data: schemas.ObjectionAnswer,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.ObjectionRead:
        """Answer an objection; a paused step resumes. An upheld procurement challenge to the result may
        order a re-evaluation (`outcome` "reevaluate", 重新评审)."""
        return objection_read(
            await reevaluation.answer_challenge(
                session, principal, tender_id, objection_id, data, clock.now()
            )
        )


class AwardController(Controller):
    """Evaluation report, award and contracts."""

    path = "/api/v1/tenders/{tender_id:uuid}"
    tags = ["trading"]

    @post("/award", operation_id="award_tender", guards=[AGENCY])
    async def award(
        self,
        tender_id: uuid.UUID,
        data: schemas.AwardCreate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> list[schemas.AwardRead]:
        """Issue the award after publicity (W-12); contracts are due within 30 days (W-13)."""
        return [award_read(a) for a in await awards.award(session, principal, tender_id, data, clock.now())]

    @get("/awards", operation_id="list_awards", guards=[public])
    async def awards(
        self, tender_id: uuid.UUID, session: AsyncSession, request_principal: Principal | None = None
    ) -> list[schemas.AwardRead]:
        """The tender's awards (public once made, S-03)."""
        tender = await tenders.visible_tender(session, request_principal, tender_id)
        return [award_read(a) for a in await awards.list_awards(session, tender.id)]

    @post("/awards/{award_id:uuid}/decline", operation_id="decline_award", guards=[AGENCY], status_code=200)
    async def decline(
        self,
        tender_id: uuid.UUID,
        award_id: uuid.UUID,
        data: schemas.AwardDecline,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.AwardRead:
        """Record that the winner refused to sign or to give the security: it loses the award (W-16)."""
        return award_read(
            await award_changes.decline_award(session, principal, tender_id, award_id, data, clock.now())
        )

    @post(
        "/contracts/{contract_id:uuid}/acceptance",
        operation_id="accept_contract_performance",
        guards=[AGENCY],
        status_code=200,
    )
    async def accept(
        self,
        tender_id: uuid.UUID,
        contract_id: uuid.UUID,
        data: schemas.ContractAcceptance,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.ContractRead:
        """Record the acceptance of a contract's performance (履约验收), once; the result is published."""
        return contract_read(
            await contracts.accept_performance(session, principal, tender_id, contract_id, data, clock.now())
        )

    @post("/contracts", operation_id="record_contract", guards=[AGENCY])
    async def contract(
        self,
        tender_id: uuid.UUID,
        data: schemas.ContractCreate,
        principal: Principal,
        sessionmaker: async_sessionmaker[AsyncSession],
        object_store: ObjectStore,
        clock: Clock,
    ) -> schemas.ContractRead:
        """Record a signed contract (W-13, W-15). Its file is copied and hashed outside any transaction, as
        for `register_document`."""
        now = clock.now()
        taken = await documents.take_document(
            sessionmaker, object_store, principal, tender_id, data.object_key, now
        )
        try:
            async with transaction(sessionmaker) as session:
                return contract_read(
                    await contracts.record_contract(session, principal, tender_id, data, taken, now)
                )
        except BaseException:
            await documents.drop_document(sessionmaker, object_store, taken)
            raise


class ComplaintController(Controller):
    """Complaints (投诉) to the supervising authority (W-17)."""

    path = "/api/v1"
    tags = ["oversight"]

    @post("/tenders/{tender_id:uuid}/complaints", operation_id="file_complaint", guards=[BIDDER])
    async def file(
        self,
        tender_id: uuid.UUID,
        data: schemas.ComplaintCreate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.ComplaintRead:
        """File a complaint within 10 days of knowing (W-17)."""
        return complaint_read(
            await objections.file_complaint(session, principal, tender_id, data, clock.now())
        )

    @get("/tenders/{tender_id:uuid}/complaints", operation_id="list_complaints", guards=[authenticated])
    async def list_for_tender(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> list[schemas.ComplaintRead]:
        """Complaints on a tender (a bidder sees its own)."""
        return [complaint_read(c) for c in await objections.list_complaints(session, principal, tender_id)]

    @post(
        "/complaints/{complaint_id:uuid}/decision",
        operation_id="decide_complaint",
        guards=[requires("supervisor")],
        status_code=200,
    )
    async def decide(
        self,
        complaint_id: uuid.UUID,
        data: schemas.ComplaintDecision,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.ComplaintRead:
        """The supervising authority decides a complaint (within 30 working days, W-17)."""
        return complaint_read(
            await complaints.decide_complaint(session, principal, complaint_id, data, clock.now())
        )

    @post(
        "/complaints/{complaint_id:uuid}/suspension",
        operation_id="suspend_for_complaint",
        guards=[requires("supervisor")],
        status_code=200,
    )
    async def suspend(
        self,
        complaint_id: uuid.UUID,
        data: schemas.Suspension,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.ComplaintRead:
        """Suspend the trade while the complaint is decided (暂停采购活动); the decision lifts it."""
        return complaint_read(
            await complaints.suspend_for_complaint(session, principal, complaint_id, data, clock.now())
        )


class NoticeController(Controller):
    """The public notice board (S-03): no sign-in needed."""

    path = "/api/v1/notices"
    tags = ["notices"]

    @get("/", operation_id="list_notices", guards=[public], opt={SINGLE_READ: True})
    async def list_notices(
        self,
        session: AsyncSession,
        kind: Filter = None,
        sector: Filter = None,
        region_code: Filter = None,
        tender_code: Filter = None,
        q: Filter = None,
        cursor: Cursor = None,
        limit: Limit = 20,
    ) -> responses.NoticePage:
        """Published notices, newest first; filter by kind, sector, region or tender code, search with `q`."""
        found, next_cursor = await notices.list_notices(
            session,
            kind=kind,
            sector=sector,
            region_code=region_code,
            tender_code=tender_code,
            q=q,
            cursor=cursor,
            limit=limit,
        )
        return {"items": found, "next_cursor": next_cursor}

    @get("/{notice_id:uuid}", operation_id="get_notice", guards=[public])
    async def get_notice(self, notice_id: uuid.UUID, session: AsyncSession) -> schemas.NoticeRead:
        """One published notice of the public board, with its text and attachments; no sign-in needed."""
        return notice_read(await notices.get_notice(session, notice_id))


class InboxController(Controller):
    """Notifications to the caller's organisation, and the calendar the centre maintains."""

    path = "/api/v1"
    tags = ["accounts"]

    @get("/notifications", operation_id="list_notifications", guards=[authenticated])
    async def notifications(
        self, principal: Principal, session: AsyncSession
    ) -> list[schemas.NotificationRead]:
        """The caller organisation's notifications, newest first."""
        rows: list[Notification] = await notices.list_notifications(session, principal)
        return [
            schemas.NotificationRead(n.id, n.tender_id, n.kind, n.message, n.created_at, n.read_at)
            for n in rows
        ]

    @put("/calendar/{year:int}", operation_id="load_calendar_year", guards=[requires("centre")])
    async def load_year(
        self,
        year: Annotated[int, Parameter(ge=2000, le=2100)],
        data: schemas.ScheduleIn,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> ScheduleDict:
        """Load the year's official holidays and make-up working days (国务院办公厅 notice)."""
        if data.year != year:
            raise ValidationProblem(
                "The body's year differs from the path's.", errors=[field_error("year", "mismatch")]
            )
        return (await tenders.load_schedule(session, principal, data, clock.now())).to_dict()


class ChronographController(Controller):
    """What the chronograph could not do: tenders whose due transition fails, rooms and draws whose due step
    fails, for the centre and supervisors."""

    path = "/api/v1/chronograph"
    tags = ["chronograph"]

    @get("/failures", operation_id="list_transition_failures", guards=[requires("centre", "supervisor")])
    async def failures(self, session: AsyncSession) -> list[schemas.TransitionFailureRead]:
        """Tenders whose due transition is failing, and evaluation rooms and draws whose due step is, the
        longest-failing first, with attempts and next retry."""
        return [
            schemas.TransitionFailureRead(
                f.tender_id,
                f.tender_code,
                f.status,
                f.attempts,
                f.error,
                f.first_failed_at,
                f.last_failed_at,
                f.retry_at,
                f.stage,
                f.subject_id,
            )
            for f in await chronograph.failures(session)
        ]


TRADING_CONTROLLERS = [
    TenderController,
    DocumentController,
    AwardController,
    NoticeController,
    InboxController,
    ComplaintController,
    ChronographController,
    DeadlineController,
    NegotiationController,
    FrameworkController,
    *CENTRE_CONTROLLERS,
]
