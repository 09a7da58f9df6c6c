"""The evaluation stage of the procedure engine: what trading asks of evaluation when an upheld challenge or
complaint sends a trade back to its committee (重新评审, 87号令 64). Importing this module plugs it in
(`trading.engine`); the composition root imports it.

The committee of the last signed report sits again in a room of the next evaluation round: the same
members in the same seats, their no-conflict declarations and their chair carried over, every review,
score and signature to be given afresh. The earlier round's room, with its report, sheets and signatures,
stays closed and on record. Where each lot has its own room (分包评标), each lot the re-evaluation decides
afresh gets its room of the next round, with the seats and chair of its earlier room. When the authority
orders a fresh committee, no room is made here: the agency asks for a new draw, whose room is the next
round's (`evaluation.selection`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import accounts.service as accounts
from evaluation import lot_rooms, rooms
from evaluation.models import Draw, Member, Room
from storage.problems import Conflict
from trading import engine
from trading.models import Tender


async def reconvene(session: AsyncSession, tender: Tender, fresh: bool, now: datetime) -> int:
    """Open the next evaluation round of `tender` (see the module): answers its number."""
    signed = await session.scalar(
        select(Room)
        .where(Room.tender_id == tender.id, Room.outcome == "report_signed")
        .order_by(Room.round.desc(), Room.report_at.desc())
        .limit(1)
    )
    if signed is None:
        raise Conflict("The trade has no signed evaluation report to re-evaluate.")
    round_ = await rooms.next_round(session, tender.id)
    if fresh:
        await accounts.record(
            session, None, "room.redraw_ordered", "room", signed.id, now, round=round_, tender=str(tender.id)
        )
        return round_
    row = await session.get(Draw, signed.draw_id)
    assert row is not None
    earlier = {r.lot_id: r for r in await lot_rooms.rooms_of_round(session, row.id, signed.round)}
    for lot_id in await lot_rooms.lots_to_seat(session, tender.id):
        # one room per lot: only the lots the re-evaluation decides afresh sit again, each with its room's chair
        await _reseat(session, tender, row, earlier.get(lot_id, signed), lot_id, round_, now)
    return round_


async def _reseat(
    session: AsyncSession,
    tender: Tender,
    row: Draw,
    signed: Room,
    lot_id: uuid.UUID | None,
    round_: int,
    now: datetime,
) -> Room:
    room = Room(
        id=uuid.uuid4(),
        tender_id=tender.id,
        draw_id=signed.draw_id,
        round=round_,
        lot_id=lot_id,
        status="open",
        phase="qualification",
        opens_at=now,
        opened_at=now,
        closes_at=now + timedelta(hours=row.room_hours),
        extensions=[],
        event_seq=0,
    )
    session.add(room)
    await session.flush()
    chair_seat = None
    for m in rooms.active(await rooms.members_of(session, signed)):
        seat = Member(
            id=uuid.uuid4(),
            room_id=room.id,
            seat=m.seat,
            kind=m.kind,
            expert_id=m.expert_id,
            user_id=m.user_id,
            name=m.name,
            specialty=m.specialty,
            declared_at=m.declared_at,
            declaration=m.declaration,
        )
        session.add(seat)
        if m.id == signed.chair_member_id:
            chair_seat = seat.id
    room.chair_member_id = chair_seat
    await session.flush()
    await rooms.log_event(session, room, "room.opened", now, round=round_, reevaluation=True)
    await accounts.record(
        session, None, "room.reconvene", "room", room.id, now, round=round_, earlier_room=str(signed.id)
    )
    return room


class Evaluation:
    """`trading.engine.EvaluationStage`, answered by this package's rooms."""

    async def reconvene(self, session: AsyncSession, tender: Tender, fresh: bool, now: datetime) -> int:
        return await reconvene(session, tender, fresh, now)


engine.plug_evaluation(Evaluation())
