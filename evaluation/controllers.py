"""HTTP routes of the evaluation package: the tender's scheme, the committee draw and its invitations, the
evaluation room and its report. The pool's routes are in `evaluation.pool_controllers`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from typing import Annotated, Any, cast

from litestar import Controller, Response, get, post, put
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import accounts.service as accounts
from accounts.guards import authenticated, requires
from accounts.security import Principal
from bidding import hall_log, opening, signals, submission
from evaluation import draw, responses, schemas, scoring, service
from evaluation.models import Draw, DrawAbortRequest, Expert, Invitation, Member, Room, ScoreSheet
from evaluation.pool_controllers import ExpertPoolController
from rules.calendar import SHANGHAI
from storage.bounds import LastEventId, StreamAfter
from storage.clock import Clock
from storage.db import transaction
from storage.http import poll_events
from storage.objects import ObjectStore
from storage.problems import NotFound, ValidationProblem, field_error
from storage.settings import Settings
from storage.signing import LogSigner
from trading import documents, tenders
from trading.models import Tender

AGENCY = requires("agency")
EXPERT = requires("expert")
BIDDER = requires("bidder")
CENTRE = requires("centre")
SUPERVISOR = requires("supervisor")
WITNESS = requires(*service.WITNESSES)  # never the centre, never the agency
ABORT_REQUESTERS = requires(*service.ABORT_REQUESTERS)
ABORT_WATCHERS = requires("supervisor", "auditor")
READERS = requires(*service.READERS)
DRAW_VIEWERS = requires("agency", *service.READERS)
ROOM_PEOPLE = requires("expert", "agency", *service.READERS)  # the agency's representative may hold a seat
# The room's actions admit the watchers too, so that the service refuses them by S-04 rather than by role.
MEMBERS = ROOM_PEOPLE


def abort_request_read(request: DrawAbortRequest) -> schemas.AbortRequestRead:
    """An abort request as the API shows it."""
    return schemas.AbortRequestRead(
        id=request.id,
        draw_id=request.draw_id,
        status=request.status,
        reason=request.reason,
        stage=request.stage,
        requester_role=request.requester_role,
        requester_organisation_id=request.requester_organisation_id,
        requested_at=request.requested_at,
        decided_at=request.decided_at,
        decision_note=request.decision_note,
    )


async def draw_read(session: AsyncSession, actor: Principal, row: Draw) -> schemas.DrawRead:
    """The draw as the caller may see it: who was drawn only for the centre, supervisors and auditors until
    the result is published; to the agency, the seats and their states without names (条例 46)."""
    invitations = (
        await session.scalars(
            select(Invitation).where(Invitation.draw_id == row.id).order_by(Invitation.position)
        )
    ).all()
    named = actor.has(*service.READERS) or service.names_public(row)
    rows = []
    for i in invitations:
        item: responses.DrawInvitation = {
            "id": str(i.id),
            "position": i.position,
            "quota_index": i.quota_index,
            "round": i.round,
            "status": i.status,
            "respond_by": i.respond_by.isoformat(),
        }
        if named:
            expert = await session.get(Expert, i.expert_id)
            item["expert_id"] = str(i.expert_id)
            item["expert_name"] = expert.name if expert else None
            item["replaces"] = str(i.replaces) if i.replaces else None
            item["reason"] = i.reason
        rows.append(item)
    contribution = await service.witness_of(session, row)
    return schemas.DrawRead(
        id=row.id,
        tender_id=row.tender_id,
        status=row.status,
        evaluation_at=row.evaluation_at,
        committee_size=row.committee_size,
        quotas=row.quotas,
        employer_limit=row.employer_limit,
        rules=row.rules,
        candidates_digest=row.candidates_digest,
        exclusions_digest=row.exclusions_digest,
        pool_digest=row.pool_digest,
        pool_size=row.pool_size,
        excluded=row.excluded,
        context=cast(responses.DrawContext | None, row.avoidance_context),
        witness_commitment=contribution.commitment if contribution else None,
        witness_organisation_id=contribution.organisation_id if contribution else None,
        commitment=row.commitment or None,
        commitment_signature=row.commitment_signature,
        signing_key_id=row.signing_key_id,
        created_at=row.created_at,
        drawn_at=row.drawn_at,
        confirmed_at=row.confirmed_at,
        aborted_at=row.aborted_at,
        witness=contribution.witness if contribution else row.witness,
        nonce=contribution.nonce if contribution else None,
        seed=row.seed_hex,
        invitations=rows,
        abort_requests=[abort_request_read(r) for r in await service.abort_requests_of(session, row)],
    )


class DrawController(Controller):
    """The evaluation scheme and the committee draw (抽取)."""

    path = "/api/v1/evaluation"
    tags = ["evaluation"]

    @put("/tenders/{tender_id:uuid}/scheme", operation_id="set_evaluation_scheme", guards=[AGENCY])
    async def set_scheme(
        self,
        tender_id: uuid.UUID,
        data: dict[str, Any],
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> responses.EvaluationScheme:
        """Fix the evaluation scheme (criteria, weights, qualification) with the documents."""
        scheme = await service.set_scheme(session, principal, tender_id, data, clock.now())
        return cast(responses.EvaluationScheme, scoring.scheme_to_json(scheme))

    @get("/tenders/{tender_id:uuid}/scheme", operation_id="get_evaluation_scheme", guards=[authenticated])
    async def get_scheme(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> responses.EvaluationScheme:
        """The evaluation scheme published with the documents."""
        return cast(responses.EvaluationScheme, await service.read_scheme(session, principal, tender_id))

    @post("/tenders/{tender_id:uuid}/draws", operation_id="request_draw", guards=[AGENCY])
    async def request(
        self,
        tender_id: uuid.UUID,
        data: schemas.DrawCreate,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        clock: Clock,
    ) -> schemas.DrawRead:
        """Ask for a committee: the platform fixes and publishes the digests of the pool before avoidance, the
        exclusions and the eligible pool. A supervisor or notary then commits to a witness."""
        row = await service.request_draw(session, principal, tender_id, data, object_store, clock.now())
        return await draw_read(session, principal, row)

    @get("/draws/{draw_id:uuid}", operation_id="get_draw", guards=[DRAW_VIEWERS])
    async def read_draw(
        self, draw_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> schemas.DrawRead:
        """A draw: commitment, pool size, exclusions by reason, seats and their answers."""
        row = await service.draw_for(session, principal, draw_id)
        return await draw_read(session, principal, row)

    @get("/tenders/{tender_id:uuid}/draws", operation_id="list_tender_draws", guards=[DRAW_VIEWERS])
    async def of_tender(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> list[schemas.DrawRead]:
        """The draws of a tender, newest first."""
        if not principal.has(*service.READERS):
            await tenders.tender_for_agency(session, principal, tender_id)
        rows = (
            await session.scalars(
                select(Draw).where(Draw.tender_id == tender_id).order_by(Draw.created_at.desc())
            )
        ).all()
        return [await draw_read(session, principal, r) for r in rows]

    @post(
        "/draws/{draw_id:uuid}/witness",
        operation_id="commit_draw_witness",
        guards=[WITNESS],
        status_code=200,
    )
    async def commit_witness(
        self,
        draw_id: uuid.UUID,
        data: schemas.WitnessCommit,
        principal: Principal,
        session: AsyncSession,
        settings: Settings,
        signer: LogSigner,
        clock: Clock,
    ) -> schemas.DrawRead:
        """A supervisor or notary commits to its witness; the platform then draws its seed and publishes its
        signed commitment. Nothing is selected yet."""
        row = await service.commit_witness(
            session, principal, draw_id, data.witness_commitment, settings.secret_key, signer, clock.now()
        )
        return await draw_read(session, principal, row)

    @post("/draws/{draw_id:uuid}/run", operation_id="run_draw", guards=[WITNESS], status_code=200)
    async def run(
        self,
        draw_id: uuid.UUID,
        data: schemas.DrawRun,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        settings: Settings,
        clock: Clock,
    ) -> schemas.DrawRead:
        """The witness reveals its witness and nonce; the committee is selected and invited at once."""
        row = await service.run_draw(
            session,
            principal,
            draw_id,
            data.witness,
            data.nonce,
            settings.secret_key,
            object_store,
            clock.now(),
        )
        return await draw_read(session, principal, row)

    @post(
        "/draws/{draw_id:uuid}/abort",
        operation_id="request_draw_abort",
        guards=[ABORT_REQUESTERS],
        status_code=201,
    )
    async def abort(
        self,
        draw_id: uuid.UUID,
        data: schemas.DrawAbort,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.AbortRequestRead:
        """Ask, with a reason, to abort a draw; a supervisor approves or refuses."""
        request = await service.request_abort(session, principal, draw_id, data.reason, clock.now())
        return abort_request_read(request)

    @post(
        "/draws/{draw_id:uuid}/abort/approve",
        operation_id="approve_draw_abort",
        guards=[SUPERVISOR],
        status_code=200,
    )
    async def approve_abort(
        self,
        draw_id: uuid.UUID,
        data: schemas.AbortApproval,
        principal: Principal,
        session: AsyncSession,
        settings: Settings,
        clock: Clock,
    ) -> schemas.DrawRead:
        """Approve the pending abort: the draw is aborted and its seed revealed at once."""
        row, _request = await service.decide_abort(
            session,
            principal,
            draw_id,
            data.request_id,
            True,
            data.note.strip() or None,
            settings.secret_key,
            clock.now(),
        )
        return await draw_read(session, principal, row)

    @post(
        "/draws/{draw_id:uuid}/abort/refuse",
        operation_id="refuse_draw_abort",
        guards=[SUPERVISOR],
        status_code=200,
    )
    async def refuse_abort(
        self,
        draw_id: uuid.UUID,
        data: schemas.AbortRefusal,
        principal: Principal,
        session: AsyncSession,
        settings: Settings,
        clock: Clock,
    ) -> schemas.AbortRequestRead:
        """Refuse the pending abort, saying why; the draw goes on."""
        _row, request = await service.decide_abort(
            session, principal, draw_id, data.request_id, False, data.note, settings.secret_key, clock.now()
        )
        return abort_request_read(request)

    @get("/draw-aborts", operation_id="draw_abort_statistics", guards=[ABORT_WATCHERS])
    async def abort_statistics(
        self,
        session: AsyncSession,
        since: Annotated[date | None, Parameter(query="since")] = None,
        until: Annotated[date | None, Parameter(query="until")] = None,
    ) -> responses.AbortStatistics:
        """Aborts by month, by who asked (the centre among them), by agency and by tender, with reasons."""
        return cast(responses.AbortStatistics, await service.abort_statistics(session, since, until))

    @get("/draws/{draw_id:uuid}/record", operation_id="draw_record", guards=[READERS])
    async def record(
        self, draw_id: uuid.UUID, principal: Principal, session: AsyncSession, object_store: ObjectStore
    ) -> responses.DrawRecordJson:
        """Everything needed to replay the draw offline (`ggzy verify draw FILE`), once the seed is revealed
        or the draw aborted: the pool before avoidance, every exclusion, both commitments and the seed."""
        row = await service.draw_for(session, principal, draw_id)
        return cast(
            responses.DrawRecordJson,
            draw.record_to_json(await service.draw_record(session, object_store, row)),
        )

    @get("/draws/{draw_id:uuid}/verify", operation_id="verify_draw", guards=[READERS])
    async def verify(
        self,
        draw_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        signer: LogSigner,
    ) -> responses.DrawVerification:
        """Replay the draw: avoidance, the witness, the signed commitment and every invitation."""
        row = await service.draw_for(session, principal, draw_id)
        record = await service.draw_record(session, object_store, row)
        problems = await asyncio.to_thread(draw.verify, record, signer.public_raw)
        return {
            "draw_id": str(row.id),
            "status": row.status,
            "ok": not problems,
            "problems": problems,
            "invitations": len(record.invitations),
        }

    @get("/invitations", operation_id="my_invitations", guards=[EXPERT])
    async def invitations(self, principal: Principal, session: AsyncSession) -> list[responses.MyInvitation]:
        """The caller's invitations to committees."""
        out: list[responses.MyInvitation] = []
        for invitation, row, tender in await service.my_invitations(session, principal):
            out.append(
                {
                    "id": str(invitation.id),
                    "status": invitation.status,
                    "respond_by": invitation.respond_by.isoformat(),
                    "tender": {"id": str(tender.id), "code": tender.code, "title": tender.title},
                    "evaluation_at": row.evaluation_at.astimezone(SHANGHAI).isoformat(),
                    "room_hours": row.room_hours,
                }
            )
        return out

    @post(
        "/invitations/{invitation_id:uuid}/answer",
        operation_id="answer_invitation",
        guards=[EXPERT],
        status_code=200,
    )
    async def answer(
        self,
        invitation_id: uuid.UUID,
        data: schemas.InvitationAnswer,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        settings: Settings,
        clock: Clock,
    ) -> responses.InvitationAnswered:
        """Accept or decline; a decline is replaced at once."""
        row = await service.answer_invitation(
            session,
            principal,
            invitation_id,
            data.accept,
            data.reason,
            settings.secret_key,
            object_store,
            clock.now(),
        )
        return {"id": str(row.id), "status": row.status}

    @post(
        "/invitations/{invitation_id:uuid}/phone-answer",
        operation_id="record_phone_answer",
        guards=[CENTRE],
        status_code=200,
    )
    async def phone_answer(
        self,
        invitation_id: uuid.UUID,
        data: schemas.InvitationAnswer,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        settings: Settings,
        clock: Clock,
    ) -> responses.InvitationAnswered:
        """The centre records an answer the expert gave by telephone (the reason says who took the call)."""
        if not (data.reason or "").strip():
            raise ValidationProblem(
                "Say who took the call and when.",
                errors=[field_error("reason", "required for a phone answer")],
            )
        row = await service.answer_invitation(
            session,
            principal,
            invitation_id,
            data.accept,
            data.reason,
            settings.secret_key,
            object_store,
            clock.now(),
            on_behalf=True,
        )
        return {"id": str(row.id), "status": row.status}


def _iso(value: datetime | None) -> str | None:
    return _local(value) if value is not None else None


def _local(value: datetime) -> str:
    """An instant as ISO 8601 in Asia/Shanghai (+08:00), as the room and its people read it."""
    return value.astimezone(SHANGHAI).isoformat()


async def room_view(
    session: AsyncSession, actor: Principal, room: Room, member: Member | None
) -> responses.RoomView:
    """What the room shows: before the declaration only the tender and the bidders (to check for conflicts);
    after it the documents, the opened bids, the opening record, collusion signals and the progress."""
    tender = await tenders.tender_by_id(session, room.tender_id)
    members = await service.members_of(session, room)
    bids = await submission.evaluable_bids(session, room.tender_id)
    orgs = {b.organisation_id: await accounts.get_organisation(session, b.organisation_id) for b in bids}
    view: responses.RoomView = {
        "id": str(room.id),
        "tender": {
            "id": str(tender.id),
            "code": tender.code,
            "title": tender.title,
            "tenderer": tender.tenderer_name,
        },
        "status": room.status,
        "phase": room.phase,
        "opens_at": _local(room.opens_at),
        "closes_at": _local(room.closes_at),
        "extensions": room.extensions,
        "my_seat": member.seat if member else None,
        "declared": member.declared_at is not None if member else None,
        "declaration": service.DECLARATION,
        "bidders": sorted({o.name for o in orgs.values()}),
        "report_hash": room.report_hash,
    }
    if member is not None and member.declared_at is None:
        return view
    chair = room.chair_member_id
    view["members"] = [
        {
            "seat": m.seat,
            "name": m.name,
            "kind": m.kind,
            "specialty": m.specialty,
            "declared": m.declared_at is not None,
            "chair": m.id == chair,
            "outcome": m.outcome,
        }
        for m in members
    ]
    view["scheme"] = cast(
        responses.EvaluationScheme, scoring.scheme_to_json(await service.scheme_of(session, tender))
    )
    lots = await tenders.lots_of(session, tender.id)
    view["lots"] = [
        {
            "id": str(lot.id),
            "number": lot.number,
            "title": lot.title,
            "status": lot.status,
            "bids": [
                {
                    "bid_id": str(b.id),
                    "bidder": orgs[b.organisation_id].name,
                    "credit_code": orgs[b.organisation_id].credit_code,
                    "price_fen": b.declared_price_fen,
                    "duration_days": b.duration_days,
                    "envelope_sha256": b.sha256,
                    # established by the platform (W-19: no deposit at the deadline): not for review
                    "rejected": cast(responses.BidRejectionLine | None, opening.rejection_line(b)),
                }
                for b in bids
                if b.lot_id == lot.id
            ],
        }
        for lot in lots
    ]
    view["documents"] = [
        {"id": str(d.id), "kind": d.kind, "filename": d.filename, "sha256": d.sha256}
        for d in await documents.list_documents(session, tender.id, documents.PUBLIC_DOCUMENT_KINDS)
    ]
    view["opening_record"] = [
        cast(responses.OpeningLineJson, {"seq": e.seq, "kind": e.kind, "at": _local(e.at), **e.payload})
        for e in await hall_log.opening_events(session, tender.id, 0)
    ]
    view["signals"] = [{"kind": s.kind, "rule": s.rule} for s in await signals.signals_of(session, tender.id)]
    qualification = await service.qualification(session, room)
    view["qualification"] = {
        str(lot_id): {
            str(bid_id): [
                cast(responses.QualificationRejection, service.rejection_json(r, with_members=False))
                for r in rej
            ]
            for bid_id, rej in bids_.items()
        }
        for lot_id, bids_ in qualification.items()
    }
    view["clarifications"] = [
        {
            "id": str(c.id),
            "bid_id": str(c.bid_id),
            "question": c.question,
            "respond_by": _local(c.respond_by),
            "answer": c.answer,
            "answered_at": _iso(c.answered_at),
        }
        for c in await service.clarifications_of(session, room)
    ]
    return view


class RoomController(Controller):
    """The evaluation room (评标室): members act, watchers read (S-04), every access is in the audit trail."""

    path = "/api/v1/evaluation/rooms"
    tags = ["evaluation"]

    @get("/", operation_id="list_rooms", guards=[ROOM_PEOPLE])
    async def rooms(self, principal: Principal, session: AsyncSession) -> list[responses.RoomSummary]:
        """The caller's rooms: those it has a seat in (a member), the rooms of its own tenders (an agency: their
        status and times, not what is said inside), or every room (the centre, supervisors, auditors)."""
        if principal.has(*service.READERS):
            rows = (await session.scalars(select(Room).order_by(Room.opens_at.desc()))).all()
        else:
            seated = select(Member.room_id).where(
                Member.user_id == principal.user_id, Member.outcome.is_distinct_from("recused")
            )
            mine = or_(Room.id.in_(seated))
            if principal.has("agency"):
                own = select(Tender.id).where(Tender.agency_organisation_id == principal.organisation_id)
                mine = or_(Room.id.in_(seated), Room.tender_id.in_(own))
            rows = (await session.scalars(select(Room).where(mine).order_by(Room.opens_at.desc()))).all()
        return [
            {
                "id": str(r.id),
                "tender_id": str(r.tender_id),
                "status": r.status,
                "phase": r.phase,
                "opens_at": _local(r.opens_at),
                "closes_at": _local(r.closes_at),
            }
            for r in rows
        ]

    @get("/{room_id:uuid}", operation_id="get_room", guards=[ROOM_PEOPLE])
    async def room(
        self,
        room_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
    ) -> responses.RoomView:
        """Enter or watch the room (each look is in the audit trail)."""
        room, member = await service.room_for(session, principal, room_id)
        view = await room_view(session, principal, room, member)
        # The request reads in a read-only transaction; the look is recorded in a short one of its own.
        async with transaction(sessionmaker) as audit:
            await accounts.record(
                audit,
                principal,
                "room.view",
                "room",
                room.id,
                clock.now(),
                seat=member.seat if member else None,
            )
        return view

    @post(
        "/{room_id:uuid}/declaration", operation_id="declare_no_conflict", guards=[MEMBERS], status_code=200
    )
    async def declare(
        self,
        room_id: uuid.UUID,
        data: schemas.Declaration,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        settings: Settings,
        clock: Clock,
    ) -> responses.DeclarationResult:
        """Sign the no-conflict declaration and enter, or recuse (the seat is redrawn)."""
        member = await service.declare(
            session,
            principal,
            room_id,
            data.no_conflict,
            data.statement,
            settings.secret_key,
            object_store,
            clock.now(),
        )
        return {"seat": member.seat, "declared": member.declared_at is not None, "outcome": member.outcome}

    @post("/{room_id:uuid}/chair", operation_id="vote_chair", guards=[MEMBERS], status_code=200)
    async def chair(
        self,
        room_id: uuid.UUID,
        data: schemas.ChairVote,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> responses.ChairResult:
        """Vote for the chair; a majority elects."""
        room = await service.vote_chair(session, principal, room_id, data.seat, clock.now())
        members = await service.members_of(session, room)
        chair = next((m.seat for m in members if m.id == room.chair_member_id), None)
        return {"chair_seat": chair}

    @post("/{room_id:uuid}/reviews", operation_id="submit_review", guards=[MEMBERS])
    async def review(
        self,
        room_id: uuid.UUID,
        data: schemas.ReviewIn,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> responses.ReviewResult:
        """The member's qualification and compliance review of one lot."""
        row = await service.review(session, principal, room_id, data.lot_id, data.votes, clock.now())
        room = await session.get(Room, room_id)
        assert room is not None
        return {"id": str(row.id), "lot_id": str(row.lot_id), "phase": room.phase}

    @post("/{room_id:uuid}/clarifications", operation_id="ask_clarification", guards=[MEMBERS])
    async def ask(
        self,
        room_id: uuid.UUID,
        data: schemas.ClarificationIn,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> responses.ClarificationAsked:
        """The chair asks a bidder to clarify, with a deadline inside the room's time."""
        row = await service.ask(
            session, principal, room_id, data.bid_id, data.question, data.respond_by, clock.now()
        )
        return {"id": str(row.id), "respond_by": _local(row.respond_by)}

    @post("/{room_id:uuid}/sheets", operation_id="submit_sheet", guards=[MEMBERS])
    async def sheet(
        self,
        room_id: uuid.UUID,
        data: schemas.SheetIn,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> responses.SheetSubmitted:
        """The member's scores of one lot, submitted once."""
        row = await service.submit_sheet(session, principal, room_id, data.lot_id, data.scores, clock.now())
        room = await session.get(Room, room_id)
        assert room is not None
        return {"id": str(row.id), "submissions": row.submissions, "phase": room.phase}

    @get("/{room_id:uuid}/sheets", operation_id="list_sheets", guards=[ROOM_PEOPLE])
    async def sheets(
        self,
        room_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        lot_id: Annotated[uuid.UUID, Parameter(query="lot_id")],
    ) -> list[responses.SheetView]:
        """The sheets the caller may see: the others' only after submitting one's own."""
        room, member = await service.room_for(session, principal, room_id)
        return [
            {
                "seat": m.seat,
                "submitted": s.submitted_at is not None,
                "submissions": s.submissions,
                "scores": s.scores,
                "justifications": s.justifications,
            }
            for m, s in await service.sheets_visible(session, room, member, lot_id)
        ]

    @post("/{room_id:uuid}/sheets/reopen", operation_id="reopen_sheet", guards=[MEMBERS], status_code=200)
    async def reopen(
        self,
        room_id: uuid.UUID,
        data: schemas.ReopenIn,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> responses.SheetReopened:
        """The chair reopens a member's sheet, with a reason."""
        row = await service.reopen_sheet(
            session, principal, room_id, data.lot_id, data.seat, data.reason, clock.now()
        )
        return {"id": str(row.id), "submitted": row.submitted_at is not None}

    @get("/{room_id:uuid}/abnormal", operation_id="abnormal_scores", guards=[ROOM_PEOPLE])
    async def abnormal(
        self,
        room_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        lot_id: Annotated[uuid.UUID, Parameter(query="lot_id")],
    ) -> list[responses.AbnormalScore]:
        """Abnormal scores of a lot (G-10) and whether each is justified."""
        room, member = await service.room_for(session, principal, room_id)
        if member is not None:
            mine = await session.scalar(
                select(ScoreSheet).where(ScoreSheet.member_id == member.id, ScoreSheet.lot_id == lot_id)
            )
            if mine is None or mine.submitted_at is None:
                return []
        return cast(list[responses.AbnormalScore], await service.abnormal(session, room, lot_id))

    @post("/{room_id:uuid}/justifications", operation_id="justify_score", guards=[MEMBERS], status_code=200)
    async def justify(
        self,
        room_id: uuid.UUID,
        data: schemas.JustifyIn,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> responses.Justified:
        """Keep an abnormal score with a written justification (G-10)."""
        row = await service.justify(
            session, principal, room_id, data.lot_id, str(data.bid_id), data.justification, clock.now()
        )
        return {"id": str(row.id), "justified": sorted(row.justifications)}

    @post("/{room_id:uuid}/report", operation_id="make_report", guards=[MEMBERS], status_code=200)
    async def make_report(
        self,
        room_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        clock: Clock,
    ) -> responses.ReportDrawnUp:
        """The chair has the report drawn up; members then sign its hash."""
        room = await service.make_report(session, principal, room_id, object_store, clock.now())
        assert room.report_hash is not None and room.report is not None
        return {"report_hash": room.report_hash, "report": room.report}

    @get("/{room_id:uuid}/report", operation_id="get_report", guards=[ROOM_PEOPLE])
    async def report(
        self, room_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> responses.ReportView:
        """The report, its hash and where each seat stands on signing."""
        room, _member = await service.room_for(session, principal, room_id)
        if room.report is None:
            raise NotFound("The report is not drawn up yet.")
        members = service.active(await service.members_of(session, room))
        return {
            "report_hash": room.report_hash,
            "report": room.report,
            "signatures": cast(list[responses.ReportSignature], service.signatures_of(members)),
            "status": room.status,
        }

    @get(
        "/{room_id:uuid}/report.pdf",
        operation_id="get_report_pdf",
        guards=[ROOM_PEOPLE],
        media_type="application/pdf",
    )
    async def report_pdf(
        self, room_id: uuid.UUID, principal: Principal, session: AsyncSession, object_store: ObjectStore
    ) -> Response[bytes]:
        """The report as PDF (with the signatures once it is final)."""
        return await _report_file(session, principal, room_id, object_store, "pdf")

    @get(
        "/{room_id:uuid}/report.html",
        operation_id="get_report_html",
        guards=[ROOM_PEOPLE],
        media_type="text/html",
    )
    async def report_html(
        self, room_id: uuid.UUID, principal: Principal, session: AsyncSession, object_store: ObjectStore
    ) -> Response[bytes]:
        """The report as HTML (with the signatures once it is final)."""
        return await _report_file(session, principal, room_id, object_store, "html")

    @post("/{room_id:uuid}/signatures", operation_id="sign_report", guards=[MEMBERS], status_code=200)
    async def sign(
        self,
        room_id: uuid.UUID,
        data: schemas.SignIn,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        clock: Clock,
    ) -> responses.SignatureResult:
        """Sign the report's hash, or refuse with a written dissent (W-11)."""
        if (data.signature is None) == (data.dissent is None):
            raise ValidationProblem(
                "Give either a signature or a written dissent.",
                errors=[field_error("signature", "exactly one of signature and dissent")],
            )
        member = await service.sign(
            session,
            principal,
            room_id,
            data.report_hash,
            data.signature,
            data.dissent,
            object_store,
            clock.now(),
        )
        room = await session.get(Room, room_id)
        assert room is not None
        return {"seat": member.seat, "outcome": member.outcome, "room_status": room.status}

    @post("/{room_id:uuid}/extend", operation_id="extend_room", guards=[CENTRE], status_code=200)
    async def extend(
        self,
        room_id: uuid.UUID,
        data: schemas.ExtendIn,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> responses.RoomExtended:
        """Extend the room's time box, with a written reason."""
        room = await service.extend(session, principal, room_id, data.hours, data.reason, clock.now())
        return {"status": room.status, "closes_at": _local(room.closes_at)}

    @get(
        "/{room_id:uuid}/events",
        operation_id="room_events",
        guards=[ROOM_PEOPLE],
        media_type="text/event-stream",
    )
    async def events(
        self,
        room_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
        last_event_id: LastEventId = None,
        after: StreamAfter = 0,
        follow: Annotated[bool, Parameter(query="follow")] = True,
    ) -> ServerSentEvent:
        """The room's live progress as server-sent events (resumable with Last-Event-ID); ends when the room
        closes. `follow=false` answers what is recorded so far."""
        start = last_event_id if last_event_id is not None else after
        await service.room_events(session, principal, room_id, start)  # authorise before streaming
        return ServerSentEvent(_room_stream(sessionmaker, principal, room_id, start, follow))


async def _report_file(
    session: AsyncSession, principal: Principal, room_id: uuid.UUID, store: ObjectStore, kind: str
) -> Response[bytes]:
    room, _member = await service.room_for(session, principal, room_id)
    key = room.report_pdf_key if kind == "pdf" else room.report_html_key
    if key is None:
        raise NotFound("The report is not drawn up yet.")
    data = b"".join([chunk async for chunk in store.iter_chunks(key)])
    media = "application/pdf" if kind == "pdf" else "text/html; charset=utf-8"
    return Response(content=data, media_type=media, headers={"X-Report-SHA256": room.report_hash or ""})


async def _room_stream(
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    room_id: uuid.UUID,
    after: int,
    follow: bool,
) -> AsyncIterator[ServerSentEventMessage]:
    """The room's new progress lines, once each, until it closes."""

    async def read(since: int) -> tuple[Sequence[Any], bool]:
        async with transaction(sessionmaker, read_only=True) as session:
            return await service.room_events(session, principal, room_id, since), True

    async for message in poll_events(read, after, follow, "room.closed", _room_event_body):
        yield message


def _room_event_body(event: Any) -> dict[str, Any]:
    return {"seq": event.seq, "at": event.at.isoformat(), **event.payload}


class ClarificationController(Controller):
    """Clarifications the committee asked of a bidder (the bidder never learns who asked)."""

    path = "/api/v1/evaluation/clarifications"
    tags = ["evaluation"]

    @get("/", operation_id="my_clarifications", guards=[BIDDER])
    async def mine(self, principal: Principal, session: AsyncSession) -> list[responses.MyClarification]:
        """Questions to the caller's organisation."""
        return [
            {
                "id": str(c.id),
                "bid_id": str(c.bid_id),
                "question": c.question,
                "respond_by": _local(c.respond_by),
                "answer": c.answer,
                "answered_at": _iso(c.answered_at),
            }
            for c in await service.my_clarifications(session, principal)
        ]

    @post(
        "/{clarification_id:uuid}/answer",
        operation_id="answer_clarification",
        guards=[BIDDER],
        status_code=200,
    )
    async def answer(
        self,
        clarification_id: uuid.UUID,
        data: schemas.ClarificationAnswer,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> responses.ClarificationAnswered:
        """Answer once, before the deadline."""
        row = await service.answer_clarification(
            session, principal, clarification_id, data.answer, clock.now()
        )
        return {"id": str(row.id), "answered_at": _iso(row.answered_at)}


class SignalController(Controller):
    """W-18 signals found at the opening (and deposits from one account), for the committee to weigh."""

    path = "/api/v1/tenders/{tender_id:uuid}"
    tags = ["opening"]

    @get(
        "/collusion-signals",
        operation_id="collusion_signals",
        guards=[requires("expert", "supervisor", "auditor")],
    )
    async def signals(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> list[responses.CollusionSignalRead]:
        """W-18 signals computed at the opening: identical files or document metadata across bidders, the
        same device or network address at submission, manifests signed by the same key, deposits paid from
        the same account. For the tender's committee, supervisors and auditors, after the opening (W-20)."""
        return [
            {
                "kind": s.kind,
                "rule": s.rule,
                "bidders": s.bidders,
                "bids": s.bids,
                "evidence": s.evidence,
                "value": s.value,
                "found_at": s.found_at.isoformat(),
            }
            for s in await service.collusion_signals(session, principal, tender_id)
        ]


EVALUATION_CONTROLLERS = [
    ExpertPoolController,
    DrawController,
    RoomController,
    ClarificationController,
    SignalController,
]
