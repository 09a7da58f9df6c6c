"""One evaluation room per lot (分包评标), where the tender's documents ask for it (`Tender.evaluation_rooms`
"per_lot"). The drawn committee sits in one room per open lot of the round (`Room.lot_id`): each room shows
and scores only its lot's bids and has its own phases, time box, chair, outcome and signed report. A room
closing on its signed report waits for the other lots' rooms of its round; when the last one closes,
every lot's report goes to trading together (`trading.lot_reports`), each lot's candidates from its own
room's report. Without the setting one room (`lot_id` None) evaluates every lot, as before.

Nothing here imports `evaluation.rooms`: the room's life calls in here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.security import Principal
from evaluation.models import Member, Room
from storage.objects import ObjectStore
from trading import awards, lot_reports, tenders
from trading.models import Lot


async def lots_to_seat(session: AsyncSession, tender_id: uuid.UUID) -> list[uuid.UUID | None]:
    """The rooms a new round of the tender needs, by lot: `[None]` (one room for every lot) unless the
    documents ask for one room per lot, then each lot still open, in lot order."""
    tender = await tenders.tender_by_id(session, tender_id)
    if tender.evaluation_rooms != "per_lot":
        return [None]
    return [lot.id for lot in await tenders.lots_of(session, tender_id) if lot.status == "open"]


async def rooms_of_round(session: AsyncSession, draw_id: uuid.UUID, round_: int | None = None) -> list[Room]:
    """The draw's rooms of `round_` (by default its latest), in lot order: one, or one per lot."""
    if round_ is None:
        round_ = await session.scalar(select(func.max(Room.round)).where(Room.draw_id == draw_id))
    rows = await session.scalars(
        select(Room)
        .outerjoin(Lot, Lot.id == Room.lot_id)
        .where(Room.draw_id == draw_id, Room.round == round_)
        .order_by(Lot.number, Room.id)
    )
    return list(rows)


def committee_of(members: list[Member]) -> list[dict[str, Any]]:
    """The committee as trading takes it with a signed report: each seat that counts, how it answered."""
    return [
        {
            "name": m.name,
            "kind": "expert" if m.kind == "expert" else "representative",
            "signed": m.outcome == "signed",
            "dissent": m.dissent if m.outcome == "dissent" else None,
            "seat": m.seat,
            "deemed_agreed": m.outcome == "deemed_agreed",
        }
        for m in members
    ]


async def _lot_report(session: AsyncSession, room: Room, store: ObjectStore) -> lot_reports.LotReport:
    assert room.lot_id is not None and room.report is not None and room.report_hash is not None
    assert room.report_pdf_key is not None
    members = list(
        await session.scalars(
            select(Member)
            .where(Member.room_id == room.id, Member.outcome.is_distinct_from("recused"))
            .order_by(Member.seat)
        )
    )
    chair = next((m for m in members if m.id == room.chair_member_id), members[0])
    lot = next(x for x in room.report["lots"] if x["lot_id"] == str(room.lot_id))
    tender = await tenders.tender_by_id(session, room.tender_id)
    info = await store.hash_object(room.report_pdf_key)
    assert info.sha256 is not None
    return lot_reports.LotReport(
        lot_id=room.lot_id,
        ranking=[uuid.UUID(c["bid_id"]) for c in lot["candidates"]],
        committee=committee_of(members),
        file=awards.StoredFile(
            filename=f"{tender.code}-lot-{lot['number']}-evaluation-report.pdf",
            object_key=room.report_pdf_key,
            sha256=info.sha256,
            size=info.size,
            uploaded_by=chair.user_id,
        ),
        report_hash=room.report_hash,
    )


async def hand_over(
    session: AsyncSession, actor: Principal | None, room: Room, store: ObjectStore, now: datetime
) -> bool:
    """A lot's room closed on its signed report: once every lot's room of its round has one (a cancelled
    room does not count), take them all to trading. Answers whether the round's reports went."""
    siblings = [r for r in await rooms_of_round(session, room.draw_id, room.round) if r.status != "cancelled"]
    if any(r.outcome != "report_signed" for r in siblings):
        return False
    parts = [await _lot_report(session, r, store) for r in siblings]
    await lot_reports.record_lot_reports(session, actor, room.tender_id, parts, now)
    return True
