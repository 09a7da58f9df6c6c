"""HTTP routes of the committee's work in the room: the qualification review, clarifications asked of a
bidder (and the bidder's answers), the score sheets, their reopening and abnormal scores."""

from __future__ import annotations

import uuid
from typing import Annotated, cast

from litestar import Controller, get, post
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import requires
from accounts.security import Principal
from evaluation import clarifications, responses, reviews, rooms, schemas
from evaluation.models import Room, ScoreSheet
from evaluation.room_controllers import MEMBERS, ROOM_PEOPLE, local_iso, local_iso_or_none
from storage.clock import Clock

BIDDER = requires("bidder")


class ReviewController(Controller):
    """The committee's review, clarifications and scores in the room: members act, watchers read (S-04)."""

    path = "/api/v1/evaluation/rooms"
    tags = ["evaluation"]

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
        row = await reviews.review(session, principal, room_id, data.lot_id, data.votes, clock.now())
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
        row = await clarifications.ask(
            session, principal, room_id, data.bid_id, data.question, data.respond_by, clock.now()
        )
        return {"id": str(row.id), "respond_by": local_iso(row.respond_by)}

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
        row = await reviews.submit_sheet(session, principal, room_id, data.lot_id, data.scores, clock.now())
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
        room, member = await rooms.room_for(session, principal, room_id)
        return [
            {
                "seat": m.seat,
                "submitted": s.submitted_at is not None,
                "submissions": s.submissions,
                "scores": s.scores,
                "justifications": s.justifications,
            }
            for m, s in await reviews.sheets_visible(session, room, member, lot_id)
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
        row = await reviews.reopen_sheet(
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
        room, member = await rooms.room_for(session, principal, room_id)
        if member is not None:
            mine = await session.scalar(
                select(ScoreSheet).where(ScoreSheet.member_id == member.id, ScoreSheet.lot_id == lot_id)
            )
            if mine is None or mine.submitted_at is None:
                return []
        return cast(list[responses.AbnormalScore], await reviews.abnormal(session, room, lot_id))

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
        row = await reviews.justify(
            session, principal, room_id, data.lot_id, str(data.bid_id), data.justification, clock.now()
        )
        return {"id": str(row.id), "justified": sorted(row.justifications)}


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
                "respond_by": local_iso(c.respond_by),
                "answer": c.answer,
                "answered_at": local_iso_or_none(c.answered_at),
            }
            for c in await clarifications.my_clarifications(session, principal)
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
        row = await clarifications.answer_clarification(
            session, principal, clarification_id, data.answer, clock.now()
        )
        return {"id": str(row.id), "answered_at": local_iso_or_none(row.answered_at)}
