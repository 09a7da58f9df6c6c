"""HTTP routes of the evaluation report (评标报告): drawn up at the chair's request, read as data, PDF or
HTML, and signed or refused with a dissent by each member (W-11)."""

from __future__ import annotations

import uuid
from typing import cast

from litestar import Controller, Response, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.security import Principal
from evaluation import reporting, responses, rooms, schemas
from evaluation.models import Room
from evaluation.room_controllers import MEMBERS, ROOM_PEOPLE
from storage.clock import Clock
from storage.objects import ObjectStore
from storage.problems import NotFound, ValidationProblem, field_error


class ReportController(Controller):
    """The room's report and its signatures."""

    path = "/api/v1/evaluation/rooms"
    tags = ["evaluation"]

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
        room = await reporting.make_report(session, principal, room_id, object_store, clock.now())
        assert room.report_hash is not None and room.report is not None
        return {"report_hash": room.report_hash, "report": room.report}

    @get("/{room_id:uuid}/report", operation_id="get_report", guards=[ROOM_PEOPLE])
    async def report(
        self, room_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> responses.ReportView:
        """The report, its hash and where each seat stands on signing."""
        room, _member = await rooms.room_for(session, principal, room_id)
        if room.report is None:
            raise NotFound("The report is not drawn up yet.")
        members = rooms.active(await rooms.members_of(session, room))
        return {
            "report_hash": room.report_hash,
            "report": room.report,
            "signatures": cast(list[responses.ReportSignature], rooms.signatures_of(members)),
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
        member = await reporting.sign(
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


async def _report_file(
    session: AsyncSession, principal: Principal, room_id: uuid.UUID, store: ObjectStore, kind: str
) -> Response[bytes]:
    room, _member = await rooms.room_for(session, principal, room_id)
    key = room.report_pdf_key if kind == "pdf" else room.report_html_key
    if key is None:
        raise NotFound("The report is not drawn up yet.")
    data = b"".join([chunk async for chunk in store.iter_chunks(key)])
    media = "application/pdf" if kind == "pdf" else "text/html; charset=utf-8"
    return Response(content=data, media_type=media, headers={"X-Report-SHA256": room.report_hash or ""})
