"""An invited expert's answer, and every way a seat is given up and redrawn from the same quota: a decline,
no answer by the deadline (the chronograph: `draws_due`, `expire_invitations`), or a conflict declared at
the room's no-conflict declaration (G-08), which a member signs before entering.

Services flush but never commit: the request or job that calls them owns the transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

import accounts.service as accounts
from accounts.security import Principal
from evaluation import lot_rooms, pool, rooms, selection
from evaluation.models import Draw, Expert, Invitation, Member, Room
from storage.objects import ObjectStore
from storage.problems import Conflict, NotFound
from trading import tenders
from trading.models import Tender

DECLARATION = (
    "本人与本项目投标人、招标人及招标代理机构不存在利害关系，不存在法律法规规定的回避情形。"
    " (I have no interest in any bidder, the tenderer or the agency of this tender and no ground for avoidance.)"
)


async def my_invitations(session: AsyncSession, actor: Principal) -> list[tuple[Invitation, Draw, Tender]]:
    """The caller's invitations (an expert), newest first."""
    expert = await _expert_of(session, actor)
    rows = await session.execute(
        select(Invitation, Draw)
        .join(Draw, Draw.id == Invitation.draw_id)
        .where(Invitation.expert_id == expert.id)
        .order_by(Invitation.invited_at.desc())
    )
    out = []
    for invitation, row in rows.all():
        out.append((invitation, row, await tenders.tender_by_id(session, row.tender_id)))
    return out


async def _expert_of(session: AsyncSession, actor: Principal) -> Expert:
    expert = await session.scalar(select(Expert).where(Expert.user_id == actor.user_id))
    if expert is None:
        raise NotFound("You have no expert profile.")
    return expert


async def answer_invitation(
    session: AsyncSession,
    actor: Principal,
    invitation_id: uuid.UUID,
    accept: bool,
    reason: str | None,
    secret: str,
    store: ObjectStore,
    now: datetime,
    *,
    on_behalf: bool = False,
) -> Invitation:
    """The expert accepts or declines (the centre may record an answer given by telephone). A decline is
    replaced at once by the next expert of the same quota in the draw's order."""
    invitation = await session.get(Invitation, invitation_id)
    if invitation is None:
        raise NotFound("No such invitation.")
    if not on_behalf:
        expert = await _expert_of(session, actor)
        if expert.id != invitation.expert_id:
            raise NotFound("No such invitation.")
    row = await session.get(Draw, invitation.draw_id, with_for_update=True)
    assert row is not None
    if row.status == "aborted":
        raise Conflict("The draw was aborted; this invitation no longer stands.")
    if invitation.status != "invited":
        if invitation.status == ("accepted" if accept else "declined"):
            return invitation  # the same answer again changes nothing
        raise Conflict(f"This invitation was already answered: {invitation.status}.")
    if now > invitation.respond_by:
        raise Conflict("The time to answer has passed; the seat went to another expert.")
    invitation.answered_at = now
    invitation.reason = reason
    if accept:
        invitation.status = "accepted"
        await accounts.record(
            session, actor, "invitation.accept", "invitation", invitation.id, now, on_behalf=on_behalf
        )
    else:
        invitation.status = "declined"
        await _remove(session, row, invitation, "declined", reason, now)
        await accounts.record(
            session,
            actor,
            "invitation.decline",
            "invitation",
            invitation.id,
            now,
            on_behalf=on_behalf,
            reason=reason,
        )
    await session.flush()
    await selection.apply_selection(session, row, secret, store, now)
    return invitation


async def _remove(
    session: AsyncSession,
    row: Draw,
    invitation: Invitation,
    credit_kind: str | None,
    reason: str | None,
    now: datetime,
) -> None:
    seq = await session.scalar(
        select(func.coalesce(func.max(Invitation.removed_seq), 0)).where(Invitation.draw_id == row.id)
    )
    invitation.removed_seq = int(seq or 0) + 1
    if credit_kind is not None:
        await pool.record_credit(session, None, invitation.expert_id, credit_kind, row.tender_id, reason, now)


def _inviting_due(now: datetime) -> Any:
    return and_(Draw.next_deadline.is_not(None), Draw.next_deadline <= now, Draw.status == "inviting")


async def draws_due(session: AsyncSession, now: datetime) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    """The chronograph: each draw with an invitation unanswered by its deadline, as (draw, tender, status),
    earliest deadline first."""
    rows = await session.execute(
        select(Draw.id, Draw.tender_id, Draw.status)
        .where(_inviting_due(now))
        .order_by(Draw.next_deadline, Draw.id)
    )
    return [(r.id, r.tender_id, r.status) for r in rows]


async def expire_invitations(
    session: AsyncSession, secret: str, store: ObjectStore, draw_id: uuid.UUID, now: datetime
) -> int:
    """The chronograph: the draw's invitations unanswered by their deadline time out and are replaced.
    The draw is locked and checked afresh, so of two workers only one times them out (the other answers 0)."""
    row = await session.scalar(
        select(Draw)
        .where(Draw.id == draw_id, _inviting_due(now))
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if row is None:
        return 0
    stale = (
        await session.scalars(
            select(Invitation)
            .where(Invitation.draw_id == row.id, Invitation.status == "invited", Invitation.respond_by <= now)
            .order_by(Invitation.position)
        )
    ).all()
    for invitation in stale:
        invitation.status = "timed_out"
        await _remove(session, row, invitation, "no_response", "no answer before the deadline", now)
        await accounts.record(session, None, "invitation.timeout", "invitation", invitation.id, now)
    await session.flush()
    await selection.apply_selection(session, row, secret, store, now)
    return len(stale)


async def declare(
    session: AsyncSession,
    actor: Principal,
    room_id: uuid.UUID,
    no_conflict: bool,
    statement: str | None,
    secret: str,
    store: ObjectStore,
    now: datetime,
) -> Member:
    """The no-conflict declaration (G-08) a member signs before entering. A member who declares a conflict
    recuses: the seat is redrawn from the same quota, and the replacement is invited."""
    room, member = await rooms.seat_for(session, actor, room_id, now, declared=False)
    if member.declared_at is not None:
        return member
    if no_conflict:
        member.declared_at = now
        member.declaration = DECLARATION
        await rooms.log_event(session, room, "member.entered", now, seat=member.seat)
        await accounts.record(session, actor, "room.enter", "room", room.id, now, seat=member.seat)
        return member
    member.outcome = "recused"
    member.dissent = statement
    await rooms.log_event(session, room, "member.recused", now, seat=member.seat)
    await accounts.record(
        session, actor, "room.recuse", "room", room.id, now, seat=member.seat, statement=statement
    )
    await _recuse_in_lot_rooms(session, room, member, statement, now)
    if member.expert_id is not None:
        row = await session.get(Draw, room.draw_id, with_for_update=True)
        assert row is not None
        invitation = await session.scalar(
            select(Invitation).where(Invitation.draw_id == row.id, Invitation.expert_id == member.expert_id)
        )
        assert invitation is not None
        invitation.status = "recused"
        await _remove(session, row, invitation, None, statement, now)
        row.status = "inviting"
        await session.flush()
        await selection.apply_selection(session, row, secret, store, now)
    return member


async def _recuse_in_lot_rooms(
    session: AsyncSession, room: Room, member: Member, statement: str | None, now: datetime
) -> None:
    """One committee sits in every lot's room (分包评标): a member who recuses in one leaves each of them,
    and the replacement is seated in each."""
    if room.lot_id is None:
        return
    for other in await lot_rooms.rooms_of_round(session, room.draw_id, room.round):
        seat = await session.scalar(
            select(Member).where(Member.room_id == other.id, Member.user_id == member.user_id)
        )
        if other.id == room.id or seat is None or seat.outcome == "recused" or other.status == "closed":
            continue
        seat.outcome = "recused"
        seat.dissent = statement
        await rooms.log_event(session, other, "member.recused", now, seat=seat.seat)
