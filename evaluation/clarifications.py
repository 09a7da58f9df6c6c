"""Clarifications (澄清): the chair asks a bidder about an obvious ambiguity in its bid, and the bidder, who
never learns who asked, answers once before the deadline.

Services flush but never commit: the request or job that calls them owns the transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import accounts.service as accounts
from accounts.security import Principal
from evaluation import reviews, rooms
from evaluation.models import Clarification, Room
from storage.problems import (
    Conflict,
    NotFound,
    RuleViolation,
    ValidationProblem,
    field_error,
    requested_instant,
)
from trading import tenders


async def ask(
    session: AsyncSession,
    actor: Principal,
    room_id: uuid.UUID,
    bid_id: uuid.UUID,
    question: str,
    respond_by: datetime,
    now: datetime,
) -> Clarification:
    """The chair asks a bidder to clarify (澄清) an obvious ambiguity; the bidder is not told who asks."""
    room, _member = await rooms.chair_for(session, actor, room_id, now)
    if room.phase == "signing":
        raise Conflict("The report is drawn up; a clarification now would not be in it.")
    bids = {b.id: b for lot in (await reviews.evaluable(session, room)).values() for b in lot}
    bid = bids.get(bid_id)
    if bid is None:
        raise ValidationProblem(
            "Not a bid under evaluation here.", errors=[field_error("bid_id", "not a bid of the tender")]
        )
    if bid.rejection_rule is not None:
        # 条例 52: a clarification may not change a bid's substance; it cannot supply a missing deposit
        raise RuleViolation(
            bid.rejection_rule,
            "The platform rejected this bid (no deposit at the bid deadline, or a price above the ceiling or "
            "the budget); a clarification cannot cure it.",
            errors=[field_error("bid_id", f"rejected by the platform ({bid.rejection_rule})")],
        )
    if requested_instant("respond_by", respond_by) <= now or respond_by > room.closes_at:
        raise ValidationProblem(
            "The answer must be due after now and before the room's time box ends.",
            errors=[field_error("respond_by", "outside the room's time")],
        )
    row = Clarification(
        room_id=room.id,
        bid_id=bid.id,
        organisation_id=bid.organisation_id,
        question=question,
        asked_at=now,
        respond_by=respond_by,
    )
    session.add(row)
    await session.flush()
    await tenders.notify(
        session,
        bid.organisation_id,
        room.tender_id,
        "evaluation.clarification",
        "The evaluation committee asks you to clarify your bid.",
        now,
    )
    await rooms.log_event(session, room, "clarification.asked", now, clarification_id=str(row.id))
    await accounts.record(session, actor, "room.ask", "clarification", row.id, now)
    return row


async def my_clarifications(session: AsyncSession, actor: Principal) -> list[Clarification]:
    """The clarifications asked of the caller's organisation (a bidder)."""
    rows = await session.scalars(
        select(Clarification)
        .where(Clarification.organisation_id == actor.organisation_id)
        .order_by(Clarification.asked_at)
    )
    return list(rows)


async def answer_clarification(
    session: AsyncSession, actor: Principal, clarification_id: uuid.UUID, answer: str, now: datetime
) -> Clarification:
    """The bidder answers once, before the deadline; the answer may not change the bid's substance."""
    row = await session.get(Clarification, clarification_id)
    if row is None or row.organisation_id != actor.organisation_id:
        raise NotFound("No such clarification.")
    if row.answer is not None:
        raise Conflict("This clarification is already answered.")
    if now > row.respond_by:
        raise Conflict("The time to answer has passed.")
    row.answer = answer
    row.answered_at = now
    room = await session.get(Room, row.room_id)
    assert room is not None
    await rooms.log_event(session, room, "clarification.answered", now, clarification_id=str(row.id))
    await accounts.record(session, actor, "clarification.answer", "clarification", row.id, now)
    return row


async def clarifications_of(session: AsyncSession, room: Room) -> list[Clarification]:
    """The room's clarifications, oldest first."""
    rows = await session.scalars(
        select(Clarification).where(Clarification.room_id == room.id).order_by(Clarification.asked_at)
    )
    return list(rows)
