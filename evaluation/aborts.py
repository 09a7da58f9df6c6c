"""Aborting a draw: the agency or the centre asks with a reason, a supervisor other than the draw's witness
approves or refuses; on approval the seed is revealed and open invitations, and a room that cannot be
completed, are cancelled. Their pattern is counted in `evaluation.supervision`.

Services flush but never commit: the request or job that calls them owns the transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import accounts.service as accounts
from accounts.security import Principal
from evaluation import lot_rooms, rooms, selection
from evaluation.models import Draw, DrawAbortRequest, Invitation, Room
from storage.problems import Conflict, Forbidden, NotFound
from trading import tenders


async def _check_abortable(session: AsyncSession, row: Draw) -> list[Room]:
    """Whether the draw may still be aborted, and the rooms an abort would cancel (one, or one per lot)."""
    if row.status == "aborted":
        raise Conflict("The draw is already aborted.")
    if row.status == "confirmed":
        raise Conflict("The committee is confirmed; its room decides from here.")
    seated = await lot_rooms.rooms_of_round(session, row.id)
    if seated and row.status != "short":
        # A recused seat is still being redrawn; the committee may yet be completed.
        raise Conflict("The committee already sits in its room; only the recused seat is being redrawn.")
    return seated


async def _pending_abort(session: AsyncSession, row: Draw) -> DrawAbortRequest | None:
    return await session.scalar(
        select(DrawAbortRequest).where(
            DrawAbortRequest.draw_id == row.id, DrawAbortRequest.status == "pending"
        )
    )


async def request_abort(
    session: AsyncSession, actor: Principal, draw_id: uuid.UUID, reason: str, now: datetime
) -> DrawAbortRequest:
    """The tender's agency or the centre asks, with a reason, to abort a draw that should not go on (the
    evaluation must move, a quota the pool cannot fill, a recused member nobody can replace). Nothing
    changes until a supervisor approves; one request waits at a time."""
    row = await session.get(Draw, draw_id, with_for_update=True)
    if row is None:
        raise NotFound("No such draw.")
    if actor.has("centre"):
        role = "centre"
    elif actor.has("agency"):
        await tenders.tender_for_agency(session, actor, row.tender_id)
        role = "agency"
    else:
        raise Forbidden("An abort is asked for by the tender's agency or the centre.")
    await _check_abortable(session, row)
    pending = await _pending_abort(session, row)
    if pending is not None:
        raise Conflict(
            "An abort of this draw already awaits a supervisor's decision.", request_id=str(pending.id)
        )
    request = DrawAbortRequest(
        draw_id=row.id,
        tender_id=row.tender_id,
        reason=reason,
        stage=row.status,
        requested_by=actor.user_id,
        requester_organisation_id=actor.organisation_id,
        requester_role=role,
        requested_at=now,
        status="pending",
    )
    session.add(request)
    await session.flush()
    await accounts.record(
        session, actor, "draw.abort_request", "draw", row.id, now, request_id=str(request.id), reason=reason
    )
    return request


async def decide_abort(
    session: AsyncSession,
    actor: Principal,
    draw_id: uuid.UUID,
    request_id: uuid.UUID,
    approve: bool,
    note: str | None,
    secret: str,
    now: datetime,
) -> tuple[Draw, DrawAbortRequest]:
    """A supervisor approves or refuses an abort request. The draw's own witness may not decide (it could
    otherwise withhold its reveal and end the draw alone). On approval the draw is aborted at once: its
    seed, if one was drawn, is revealed; invitations still open are cancelled; a room whose recused seat
    cannot be filled is cancelled with it; the agency may then ask for a new committee. The same decision
    again changes nothing."""
    if not actor.has("supervisor") or actor.has(*selection.ABORT_REQUESTERS):
        raise Forbidden("Only a supervisor decides on an abort.")
    row = await session.get(Draw, draw_id, with_for_update=True)
    if row is None:
        raise NotFound("No such draw.")
    request = await session.get(DrawAbortRequest, request_id)
    if request is None or request.draw_id != row.id:
        raise NotFound("No such abort request for this draw.")
    contribution = await selection.witness_of(session, row)
    if contribution is not None and contribution.committed_by == actor.user_id:
        raise Forbidden("The draw's witness cannot decide on its abort; another supervisor does.")
    decided = "approved" if approve else "refused"
    if request.status != "pending":
        if request.status == decided and request.decided_by == actor.user_id:
            return row, request
        raise Conflict(f"This abort request was already {request.status}.")
    request.status = decided
    request.decided_by = actor.user_id
    request.decided_at = now
    request.decision_note = note
    if approve:
        await _abort(session, row, request, secret, now)
    await session.flush()
    await accounts.record(
        session,
        actor,
        f"draw.abort_{decided}",
        "draw",
        row.id,
        now,
        request_id=str(request.id),
        note=note,
        seed=row.seed_hex if approve else None,
    )
    return row, request


async def _abort(
    session: AsyncSession, row: Draw, request: DrawAbortRequest, secret: str, now: datetime
) -> None:
    for room in await _check_abortable(session, row):
        # The pool cannot replace a recused member: the room cannot lawfully sit (W-10), so it is cancelled
        # with its draw, and the agency asks for a new committee.
        if room.status == "closed":
            continue
        room.status = "cancelled"
        room.phase = "closed"
        room.closed_at = now
        room.outcome = "committee incomplete"
        await rooms.log_event(session, room, "room.cancelled", now, reason=request.reason)
    for invitation in await session.scalars(
        select(Invitation).where(Invitation.draw_id == row.id, Invitation.status == "invited")
    ):
        invitation.status = "cancelled"
    row.status = "aborted"
    row.aborted_at = now
    row.next_deadline = None
    if row.sealed_seed:
        # Revealed at once: whoever could read the sealed seed gains nothing by aborting, and anyone can
        # check the aborted draw (and what it had drawn) against its commitment.
        row.seed_hex = selection.unseal_seed(secret, row).hex()


async def abort_requests_of(session: AsyncSession, row: Draw) -> list[DrawAbortRequest]:
    """The draw's abort requests, oldest first."""
    return list(
        await session.scalars(
            select(DrawAbortRequest)
            .where(DrawAbortRequest.draw_id == row.id)
            .order_by(DrawAbortRequest.requested_at, DrawAbortRequest.id)
        )
    )
