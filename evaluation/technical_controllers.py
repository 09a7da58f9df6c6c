"""HTTP routes of the technical evaluation of a tender of two envelopes (双信封) in the committee's room:
the technical envelopes the committee reads, and the result its chair records."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from litestar import Controller, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.security import Principal
from bidding import opened_files
from bidding import schemas as bid_schemas
from bidding.bidfile import MAX_FILES
from evaluation import technical
from evaluation.room_controllers import MEMBERS, ROOM_PEOPLE
from storage.clock import Clock
from storage.objects import ObjectStore


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

    @get(
        "/{room_id:uuid}/bids/{bid_id:uuid}/file",
        operation_id="room_bid_file",
        guards=[ROOM_PEOPLE],
        # The answer's own content type is the file's; the document can only name the generic one.
        responses={
            200: ResponseSpec(
                data_container=bytes,
                media_type="application/octet-stream",
                description="The file's bytes, as an attachment, in its media type, with X-Content-SHA256",
                generate_examples=False,
            )
        },
    )
    async def bid_file(
        self,
        room_id: uuid.UUID,
        bid_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        clock: Clock,
        number: Annotated[int, Parameter(ge=1, le=MAX_FILES)] = 1,
        kind: opened_files.Kind = "technical",
    ) -> Stream:
        """One opened file of a standing bid (`kind` technical, the default, or commercial; `number` from 1,
        the first by default, in the order the room lists them), streamed from the store with its SHA-256 (`X-Content-SHA256`)
        and its media type. A commercial file only after the commercial opening (409 naming `kind`)."""
        found = await technical.bid_file(session, principal, room_id, bid_id, kind, number, clock.now())
        return Stream(
            object_store.iter_chunks(found.object_key),
            media_type=found.content_type,
            headers={
                "X-Content-SHA256": found.sha256,
                "Content-Length": str(found.size),
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(found.name, safe='')}",
            },
        )

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
