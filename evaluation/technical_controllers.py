"""HTTP routes of the technical evaluation of a tender of two envelopes (双信封) in the committee's room:
the technical envelopes the committee reads, and the result its chair records."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.security import Principal
from bidding import schemas as bid_schemas
from evaluation import technical
from evaluation.room_controllers import MEMBERS, ROOM_PEOPLE
from storage.clock import Clock


class TechnicalController(Controller):
    """The technical evaluation in the room: members read and the chair records; watchers read (S-04)."""

    path = "/api/v1/evaluation/rooms"
    tags = ["evaluation"]

    @get("/{room_id:uuid}/technical", operation_id="room_technical_envelopes", guards=[ROOM_PEOPLE])
    async def technical_envelopes(
        self, room_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> bid_schemas.TechnicalView:
        """The opened technical envelopes of the room's tender (their files, no price) and the verdicts."""
        return await technical.technical_view(session, principal, room_id, clock.now())

    @post(
        "/{room_id:uuid}/technical-result",
        operation_id="record_technical_result",
        guards=[MEMBERS],
        status_code=200,
    )
    async def technical_result(
        self,
        room_id: uuid.UUID,
        data: bid_schemas.TechnicalResult,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> bid_schemas.TechnicalResultRead:
        """The chair records the technical result: a verdict with its reason for every standing bid, once.
        The bids that did not pass are rejected under W-19 and their commercial envelopes stay sealed; the
        agency then opens the others (`POST /tenders/{id}/commercial-opening`)."""
        return await technical.record_result(session, principal, room_id, data, clock.now())
