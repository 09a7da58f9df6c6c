"""HTTP routes of an expert's invitations to a committee and the answers (the centre records one given by
telephone); a decline is replaced at once."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import requires
from accounts.security import Principal
from evaluation import invitations, responses, schemas
from rules.calendar import SHANGHAI
from storage.clock import Clock
from storage.objects import ObjectStore
from storage.problems import ValidationProblem, field_error
from storage.settings import Settings

EXPERT = requires("expert")
CENTRE = requires("centre")


class InvitationController(Controller):
    """An expert's invitations to committees and the answers to them."""

    path = "/api/v1/evaluation"
    tags = ["evaluation"]

    @get("/invitations", operation_id="my_invitations", guards=[EXPERT])
    async def invitations(self, principal: Principal, session: AsyncSession) -> list[responses.MyInvitation]:
        """The caller's invitations to committees."""
        out: list[responses.MyInvitation] = []
        for invitation, row, tender in await invitations.my_invitations(session, principal):
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
        row = await invitations.answer_invitation(
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
        row = await invitations.answer_invitation(
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
