"""HTTP routes of the evaluation room (评标室) as a place: the rooms a caller may see, what a room shows,
the no-conflict declaration, the chair's election, the time box's extension and the live progress. The
committee's review and scores are in `evaluation.review_controllers`, the report in
`evaluation.report_controllers`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Annotated, Any, cast

from litestar import Controller, get, post
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import accounts.service as accounts
from accounts.guards import requires
from accounts.security import Principal
from bidding import hall_log, opening, signals, submission
from evaluation import clarifications, invitations, responses, reviews, rooms, schemas, schemes, scoring
from evaluation.models import Member, Room
from rules.calendar import SHANGHAI
from storage.bounds import LastEventId, StreamAfter
from storage.clock import Clock
from storage.db import transaction
from storage.http import poll_events
from storage.objects import ObjectStore
from storage.settings import Settings
from trading import documents, tenders
from trading.models import Tender

CENTRE = requires("centre")
ROOM_PEOPLE = requires("expert", "agency", *rooms.READERS)  # the agency's representative may hold a seat
# The room's actions admit the watchers too, so that the service refuses them by S-04 rather than by role.
MEMBERS = ROOM_PEOPLE


def local_iso_or_none(value: datetime | None) -> str | None:
    """`local_iso` of an instant that may not have happened yet."""
    return local_iso(value) if value is not None else None


def local_iso(value: datetime) -> str:
    """An instant as ISO 8601 in Asia/Shanghai (+08:00), as the room and its people read it."""
    return value.astimezone(SHANGHAI).isoformat()


async def room_view(
    session: AsyncSession, actor: Principal, room: Room, member: Member | None
) -> responses.RoomView:
    """What the room shows: before the declaration only the tender and the bidders (to check for conflicts);
    after it the documents, the opened bids, the opening record, collusion signals and the progress."""
    tender = await tenders.tender_by_id(session, room.tender_id)
    members = await rooms.members_of(session, room)
    bids = await submission.evaluable_bids(session, room.tender_id)
    if room.lot_id is not None:  # a lot's own room shows that lot's bids alone
        bids = [b for b in bids if b.lot_id == room.lot_id]
    orgs = {b.organisation_id: await accounts.get_organisation(session, b.organisation_id) for b in bids}
    view: responses.RoomView = {
        "id": str(room.id),
        "tender": {
            "id": str(tender.id),
            "code": tender.code,
            "title": tender.title,
            "tenderer": tender.tenderer_name,
        },
        "round": room.round,
        "lot_id": str(room.lot_id) if room.lot_id else None,
        "status": room.status,
        "phase": room.phase,
        "opens_at": local_iso(room.opens_at),
        "closes_at": local_iso(room.closes_at),
        "extensions": room.extensions,
        "my_seat": member.seat if member else None,
        "declared": member.declared_at is not None if member else None,
        "declaration": invitations.DECLARATION,
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
        responses.EvaluationScheme, scoring.scheme_to_json(await schemes.scheme_of(session, tender))
    )
    lots = [lot for lot in await tenders.lots_of(session, tender.id) if room.lot_id in (None, lot.id)]
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
        cast(responses.OpeningLineJson, {"seq": e.seq, "kind": e.kind, "at": local_iso(e.at), **e.payload})
        for e in await hall_log.opening_events(session, tender.id, 0)
    ]
    view["signals"] = [{"kind": s.kind, "rule": s.rule} for s in await signals.signals_of(session, tender.id)]
    qualification = await reviews.qualification(session, room)
    view["qualification"] = {
        str(lot_id): {
            str(bid_id): [
                cast(responses.QualificationRejection, reviews.rejection_json(r, with_members=False))
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
            "respond_by": local_iso(c.respond_by),
            "answer": c.answer,
            "answered_at": local_iso_or_none(c.answered_at),
        }
        for c in await clarifications.clarifications_of(session, room)
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
        if principal.has(*rooms.READERS):
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
                "round": r.round,
                "lot_id": str(r.lot_id) if r.lot_id else None,
                "status": r.status,
                "phase": r.phase,
                "opens_at": local_iso(r.opens_at),
                "closes_at": local_iso(r.closes_at),
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
        room, member = await rooms.room_for(session, principal, room_id)
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
        member = await invitations.declare(
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
        room = await rooms.vote_chair(session, principal, room_id, data.seat, clock.now())
        members = await rooms.members_of(session, room)
        chair = next((m.seat for m in members if m.id == room.chair_member_id), None)
        return {"chair_seat": chair}

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
        room = await rooms.extend(session, principal, room_id, data.hours, data.reason, clock.now())
        return {"status": room.status, "closes_at": local_iso(room.closes_at)}

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
        await rooms.room_events(session, principal, room_id, start)  # authorise before streaming
        return ServerSentEvent(_room_stream(sessionmaker, principal, room_id, start, follow))


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
            return await rooms.room_events(session, principal, room_id, since), True

    async for message in poll_events(read, after, follow, "room.closed", _room_event_body):
        yield message


def _room_event_body(event: Any) -> dict[str, Any]:
    return {"seq": event.seq, "at": event.at.isoformat(), **event.payload}
