"""The evaluation room (评标室) as a place: its event line (the live progress, no scores, no names), its
seats and who may see it, the time box the chronograph keeps (`rooms_due`, `tick_room`: it opens at its time
and, at the end, closes on the report or expires until the centre extends it), the chair's election, and
the closing on the signed report, which goes back to trading for the candidates' publicity.

The no-conflict declaration, which may give a seat up, is in `evaluation.invitations` with the other
replacements; the review and the scores in `evaluation.reviews`; the report and its signing in
`evaluation.reporting`. Services flush but never commit: the request or job that calls them owns the
transaction. Each transition checks the state, makes the change, writes the audit trail and the room's
event line, in that order.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

import accounts.service as accounts
from accounts.security import Principal
from evaluation import lot_rooms, pool, report
from evaluation.models import Draw, Member, Room, RoomEvent
from rules.calendar import SHANGHAI
from storage.objects import ObjectStore
from storage.problems import Conflict, Forbidden, NotFound, ValidationProblem, field_error
from trading import awards, tenders

READERS = ("centre", "supervisor", "auditor")


async def log_event(session: AsyncSession, room: Room, kind: str, now: datetime, **payload: Any) -> None:
    """One line of the room's live progress (no scores, no names)."""
    room.event_seq += 1
    session.add(RoomEvent(room_id=room.id, seq=room.event_seq, at=now, kind=kind, payload=payload))
    await session.flush()


async def room_events(
    session: AsyncSession, actor: Principal, room_id: uuid.UUID, after: int
) -> list[RoomEvent]:
    """The room's progress after `after`, for its members and its watchers."""
    await room_for(session, actor, room_id)
    rows = await session.scalars(
        select(RoomEvent).where(RoomEvent.room_id == room_id, RoomEvent.seq > after).order_by(RoomEvent.seq)
    )
    return list(rows)


async def next_round(session: AsyncSession, tender_id: uuid.UUID) -> int:
    """The evaluation round a new room of the tender belongs to: the first, or after a re-evaluation is
    ordered (重新评审) the one after the last round whose report was signed."""
    signed = await session.scalar(
        select(func.max(Room.round)).where(Room.tender_id == tender_id, Room.outcome == "report_signed")
    )
    return (signed or 0) + 1


def active(members: list[Member]) -> list[Member]:
    """The seats that count: every member except one who recused."""
    return [m for m in members if m.outcome != "recused"]


async def members_of(session: AsyncSession, room: Room) -> list[Member]:
    """Every seat of the room in seat order, a recused member's included (see `active`)."""
    return list(await session.scalars(select(Member).where(Member.room_id == room.id).order_by(Member.seat)))


async def room_for(session: AsyncSession, actor: Principal, room_id: uuid.UUID) -> tuple[Room, Member | None]:
    """The room and the caller's seat in it (None for a watcher: the centre, a supervisor or an auditor).
    Anyone else, the agency and the bidders included, is told the room does not exist."""
    room = await session.get(Room, room_id)
    if room is None:
        raise NotFound("No such evaluation room.")
    member = await session.scalar(
        select(Member).where(Member.room_id == room.id, Member.user_id == actor.user_id)
    )
    if member is not None and member.outcome != "recused":
        return room, member
    if actor.has(*READERS):
        return room, None
    raise NotFound("No such evaluation room.")


async def seat_for(
    session: AsyncSession, actor: Principal, room_id: uuid.UUID, now: datetime, *, declared: bool = True
) -> tuple[Room, Member]:
    """The caller's seat in an open room, for an action that changes something (S-04: watchers cannot)."""
    room, member = await room_for(session, actor, room_id)
    if member is None:
        raise Forbidden(
            "Only a member of the committee acts in the room; watchers see it read-only (S-04).", rule="S-04"
        )
    if room.status == "scheduled":
        raise Conflict(f"The room opens at {room.opens_at.astimezone(SHANGHAI).isoformat()}.")
    if room.status != "open":
        raise Conflict(f"The room is {room.status}; nothing more can be done in it.")
    if now >= room.closes_at:
        # The chronograph may not have run yet; the time box ends at its instant all the same (W-11).
        raise Conflict(
            f"The room's time ended at {room.closes_at.astimezone(SHANGHAI).isoformat()}; the centre may extend it."
        )
    if declared and member.declared_at is None:
        raise Forbidden("Sign the no-conflict declaration before entering the room (G-08).", rule="G-08")
    return room, member


async def chair_for(
    session: AsyncSession, actor: Principal, room_id: uuid.UUID, now: datetime
) -> tuple[Room, Member]:
    """The caller's seat in an open room, for what only the committee's chair does."""
    room, member = await seat_for(session, actor, room_id, now)
    if room.chair_member_id != member.id:
        raise Forbidden("Only the committee's chair does this.")
    return room, member


def _room_due(now: datetime) -> Any:
    return or_(
        and_(Room.status == "scheduled", Room.opens_at <= now),
        and_(Room.status == "open", Room.closes_at <= now),
    )


async def rooms_due(session: AsyncSession, now: datetime) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    """The chronograph: each room due to open or to close at `now`, as (room, tender, status)."""
    rows = await session.execute(
        select(Room.id, Room.tender_id, Room.status).where(_room_due(now)).order_by(Room.opens_at, Room.id)
    )
    return [(r.id, r.tender_id, r.status) for r in rows]


async def tick_room(session: AsyncSession, store: ObjectStore, room_id: uuid.UUID, now: datetime) -> int:
    """The chronograph: open the room at its time; at the end of the time box a room awaiting signatures is
    finalised (a member who neither signed nor wrote a dissent is deemed to agree, W-11), any other room
    expires until the centre extends it. The room is locked and checked afresh, so of two workers only one
    moves it (the other answers 0); answers how many steps it took."""
    room = await session.scalar(
        select(Room)
        .where(Room.id == room_id, _room_due(now))
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if room is None:
        return 0
    changed = 0
    if room.status == "scheduled":
        room.status = "open"
        room.opened_at = now
        await log_event(session, room, "room.opened", now)
        await accounts.record(session, None, "room.open", "room", room.id, now)
        changed += 1
    if room.closes_at <= now:
        if room.phase == "signing":
            await finalise(session, None, room, store, now)
        else:
            room.status = "expired"
            await log_event(session, room, "room.expired", now, phase=room.phase)
            await accounts.record(session, None, "room.expire", "room", room.id, now, phase=room.phase)
        changed += 1
    return changed


async def extend(
    session: AsyncSession, actor: Principal, room_id: uuid.UUID, hours: int, reason: str, now: datetime
) -> Room:
    """The centre extends the time box with a written reason (reopening an expired room)."""
    room = await session.get(Room, room_id)
    if room is None:
        raise NotFound("No such evaluation room.")
    if room.status not in ("open", "expired", "scheduled"):
        raise Conflict(f"The room is {room.status}.")
    base = max(room.closes_at, now)
    room.closes_at = base + timedelta(hours=hours)
    room.extensions = [*room.extensions, {"at": now.isoformat(), "hours": hours, "reason": reason}]
    if room.status == "expired":
        room.status = "open"
    await log_event(session, room, "room.extended", now, closes_at=room.closes_at.isoformat(), reason=reason)
    await accounts.record(session, actor, "room.extend", "room", room.id, now, hours=hours, reason=reason)
    return room


async def vote_chair(
    session: AsyncSession, actor: Principal, room_id: uuid.UUID, seat: int, now: datetime
) -> Room:
    """Each member votes for a chair (组长); a majority of the seats elects."""
    room, member = await seat_for(session, actor, room_id, now)
    if room.chair_member_id is not None:
        raise Conflict("The committee has already elected its chair.")
    members = active(await members_of(session, room))
    chosen = next((m for m in members if m.seat == seat), None)
    if chosen is None:
        raise ValidationProblem(
            "No such seat in this committee.", errors=[field_error("seat", "not a member")]
        )
    member.chair_vote = chosen.id
    votes = Counter(m.chair_vote for m in members if m.chair_vote is not None)
    await log_event(session, room, "chair.vote", now, seat=member.seat)
    leader, count = votes.most_common(1)[0]
    if count * 2 > len(members):
        room.chair_member_id = leader
        elected = next(m for m in members if m.id == leader)
        await log_event(session, room, "chair.elected", now, seat=elected.seat)
        await accounts.record(session, actor, "room.chair", "room", room.id, now, seat=elected.seat)
    return room


def signatures_of(members: list[Member]) -> list[dict[str, Any]]:
    """Where each seat stands on signing the report, as the report view and the final document show it."""
    return [
        {
            "seat": m.seat,
            "name": m.name,
            "outcome": m.outcome or "pending",
            "at": m.signed_at.astimezone(SHANGHAI).isoformat() if m.signed_at else None,
            "key_fingerprint": m.key_fingerprint,
            "dissent": m.dissent,
        }
        for m in members
    ]


async def finalise(
    session: AsyncSession, actor: Principal | None, room: Room, store: ObjectStore, now: datetime
) -> None:
    """Close the room on the signed report: members who neither signed nor dissented by the end of the time
    box are deemed to agree (W-11). The final document carries the signatures; trading publishes the
    candidates."""
    assert room.report is not None and room.report_hash is not None
    members = active(await members_of(session, room))
    for m in members:
        if m.outcome is None:
            m.outcome = "deemed_agreed"
    signatures = signatures_of(members)
    html = await asyncio.to_thread(report.render_html, room.report, signatures)
    pdf = await asyncio.to_thread(report.render_pdf, room.report, signatures)
    tender = await tenders.tender_by_id(session, room.tender_id)
    base = f"records/{tender.code}/evaluation/report-{room.report_hash[:16]}-signed"
    await store.put_bytes(f"{base}.html", html.encode(), content_type="text/html; charset=utf-8")
    info = await store.put_bytes(f"{base}.pdf", pdf, content_type="application/pdf")
    room.report_html_key = f"{base}.html"
    room.report_pdf_key = f"{base}.pdf"
    room.status = "closed"
    room.phase = "closed"
    room.closed_at = now
    room.outcome = "report_signed"
    if room.lot_id is None:
        await _report_to_trading(
            session, actor, room, members, info.sha256 or hashlib.sha256(pdf).hexdigest(), len(pdf), now
        )
        published = True
    else:
        # one room per lot: the trade goes on once every lot's room of the round has its report
        published = await lot_rooms.hand_over(session, actor, room, store, now)
    for m in members if room.lot_id is None or published else []:  # attended once, however many lot rooms
        if m.expert_id is not None:
            await pool.record_credit(session, None, m.expert_id, "attended", room.tender_id, None, now)
    for lot in room.report["lots"]:
        for a in lot["abnormal"]:
            m = next(x for x in members if x.seat == a["seat"])
            if m.expert_id is not None and not a["revised"]:
                await pool.record_credit(
                    session, None, m.expert_id, "abnormal_score", room.tender_id, a["justification"], now
                )
    row = await session.get(Draw, room.draw_id)
    assert row is not None
    if published:
        row.published_at = now
    await log_event(session, room, "room.closed", now, outcome=room.outcome)
    await accounts.record(session, actor, "room.close", "room", room.id, now, report_hash=room.report_hash)


async def _report_to_trading(
    session: AsyncSession,
    actor: Principal | None,
    room: Room,
    members: list[Member],
    sha256: str,
    size: int,
    now: datetime,
) -> None:
    """The single room's signed report goes to trading for the candidates of every lot."""
    assert room.report is not None and room.report_hash is not None and room.report_pdf_key is not None
    tender = await tenders.tender_by_id(session, room.tender_id)
    chair = next((m for m in members if m.id == room.chair_member_id), members[0])
    candidates = [
        (uuid.UUID(lot["lot_id"]), [uuid.UUID(c["bid_id"]) for c in lot["candidates"]])
        for lot in room.report["lots"]
    ]
    await awards.record_report(
        session,
        actor,
        room.tender_id,
        lot_rooms.committee_of(members),
        candidates,
        awards.StoredFile(
            filename=f"{tender.code}-evaluation-report.pdf",
            object_key=room.report_pdf_key,
            sha256=sha256,
            size=size,
            uploaded_by=chair.user_id,
        ),
        room.report_hash,
        now,
    )


def names_public(row: Draw) -> bool:
    """Whether the committee's names may be shown to the agency and the bidders: only once the result is
    published with the candidates."""
    return row.published_at is not None
