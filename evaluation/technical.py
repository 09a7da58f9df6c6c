"""The technical evaluation of a tender of two envelopes (双信封) in the committee's room.

After the technical opening the evaluation committee (the drawn experts and the tenderer's representative
seated in the room) reads the opened technical envelopes, and only those: the commercial envelopes are
still sealed, so no price or commercial content can reach the room before the commercial opening. Its
chair records the result once, a verdict with its reason for every bid standing, and `bidding.technical`
applies it (a bid that did not pass is rejected under W-19, its commercial envelope never opened). The
agency runs the commercial opening after it; it does not judge.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from bidding import opened_files, technical
from bidding import schemas as bid_schemas
from evaluation import rooms
from storage.problems import Forbidden
from trading import tenders


async def technical_view(
    session: AsyncSession, actor: Principal, room_id: uuid.UUID, now: datetime
) -> bid_schemas.TechnicalView:
    """The technical envelopes the committee reads: for a member who signed the no-conflict declaration
    (G-08) and for the room's watchers; the agency and the bidders are told the room does not exist."""
    room, member = await rooms.room_for(session, actor, room_id)
    if member is not None and member.declared_at is None:
        raise Forbidden("Sign the no-conflict declaration before entering the room (G-08).", rule="G-08")
    tender = await tenders.tender_by_id(session, room.tender_id)
    await accounts.record(session, actor, "room.technical_read", "room", room.id, now)
    return bid_schemas.TechnicalView(
        room.id,
        tender.id,
        tender.status,
        await technical.technical_files(session, tender) if tender.envelopes == 2 else [],
    )


async def bid_file(
    session: AsyncSession,
    actor: Principal,
    room_id: uuid.UUID,
    bid_id: uuid.UUID,
    kind: opened_files.Kind,
    number: int,
    now: datetime,
) -> opened_files.OpenedFile:
    """One opened file of a standing bid of the room's tender, for whoever may read the room's technical
    envelopes (a declared member, a watcher): a technical one after the technical opening, a commercial one
    only once the commercial opening has opened it (409 naming `kind` before). The agency and the bidders
    are told the room does not exist; a withdrawn or rejected bid's files are not there (404)."""
    room, member = await rooms.room_for(session, actor, room_id)
    if member is not None and member.declared_at is None:
        raise Forbidden("Sign the no-conflict declaration before entering the room (G-08).", rule="G-08")
    tender = await tenders.tender_by_id(session, room.tender_id)
    found = await opened_files.opened_file(session, tender, bid_id, kind, number, lot_id=room.lot_id)
    await accounts.record(
        session,
        actor,
        "room.bid_file_read",
        "bid",
        bid_id,
        now,
        kind=kind,
        number=number,
        sha256=found.sha256,
    )
    return found


async def record_result(
    session: AsyncSession,
    actor: Principal,
    room_id: uuid.UUID,
    data: bid_schemas.TechnicalResult,
    now: datetime,
) -> bid_schemas.TechnicalResultRead:
    """The committee's chair records the technical result in the open room (only the chair: 403 for
    another member, S-04 for a watcher, 404 for anyone without a seat), once; the room's line says so."""
    room, member = await rooms.chair_for(session, actor, room_id, now)
    tender = await tenders.tender_by_id(session, room.tender_id)
    result = await technical.record_result(session, actor, tender, data, now, room_id=room.id)
    await rooms.log_event(
        session,
        room,
        "technical.result",
        now,
        seat=member.seat,
        passed=len(result.passed),
        not_passed=len(result.not_passed),
    )
    return result
