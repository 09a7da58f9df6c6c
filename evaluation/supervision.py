"""What supervisors and auditors watch over the committees: aborts and their pattern (by month, requester,
agency and tender), and the tender's W-18 collusion signals, shown to its committee too once the opening
has closed (W-20).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

import accounts.service as accounts
from accounts.security import Principal
from bidding import signals
from evaluation.models import Draw, DrawAbortRequest, Member, Room
from rules.calendar import SHANGHAI
from storage.problems import Forbidden, NotFound, ValidationProblem, field_error
from trading import tenders
from trading.lifecycle import TenderStatus


def _month(instant: datetime) -> str:
    return instant.astimezone(SHANGHAI).strftime("%Y-%m")


async def abort_statistics(session: AsyncSession, since: date | None, until: date | None) -> dict[str, Any]:
    """Aborts for supervisors and auditors, so a pattern shows: draws asked for and abort requests in the
    period (Asia/Shanghai days, both ends included), by month, by who asked (the centre itself among
    them), by agency and by tender, how many came after the names were drawn, and every request with its
    reason and decision."""
    if since is not None and until is not None and until < since:
        raise ValidationProblem("until comes before since.", errors=[field_error("until", "before since")])
    start = datetime.combine(since, datetime.min.time(), SHANGHAI) if since else None
    end = datetime.combine(until + timedelta(days=1), datetime.min.time(), SHANGHAI) if until else None

    def within(column: Any) -> list[Any]:
        return [
            c for c in (column >= start if start else None, column < end if end else None) if c is not None
        ]

    draws = (
        await session.execute(
            select(Draw.id, Draw.tender_id, Draw.created_at).where(*within(Draw.created_at))
        )
    ).all()
    requests = list(
        await session.scalars(
            select(DrawAbortRequest)
            .where(*within(DrawAbortRequest.requested_at))
            .order_by(DrawAbortRequest.requested_at, DrawAbortRequest.id)
        )
    )
    by_id = {
        t: await tenders.tender_by_id(session, t)
        for t in {d.tender_id for d in draws} | {r.tender_id for r in requests}
    }
    names: dict[uuid.UUID, Any] = {}

    async def organisation(org_id: uuid.UUID) -> Any:
        if org_id not in names:
            names[org_id] = await accounts.get_organisation(session, org_id)
        return names[org_id]

    def tally() -> dict[str, int]:
        return {"draws": 0, "requests": 0, "approved": 0, "refused": 0, "pending": 0}

    months: dict[str, dict[str, int]] = defaultdict(tally)
    agencies: dict[uuid.UUID, dict[str, int]] = defaultdict(tally)
    by_tender: dict[uuid.UUID, dict[str, int]] = defaultdict(tally)
    requesters: dict[uuid.UUID, dict[str, int]] = defaultdict(tally)
    for d in draws:
        agency = by_id[d.tender_id].agency_organisation_id
        for bucket in (months[_month(d.created_at)], agencies[agency], by_tender[d.tender_id]):
            bucket["draws"] += 1
    for r in requests:
        agency = by_id[r.tender_id].agency_organisation_id
        for bucket in (
            months[_month(r.requested_at)],
            agencies[agency],
            by_tender[r.tender_id],
            requesters[r.requester_organisation_id],
        ):
            bucket["requests"] += 1
            bucket[r.status] += 1
    totals = tally()
    totals["draws"] = len(draws)
    for r in requests:
        totals["requests"] += 1
        totals[r.status] += 1
    return {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "totals": totals,
        "approved_after_names_were_drawn": sum(
            1 for r in requests if r.status == "approved" and r.stage in ("inviting", "short")
        ),
        "by_month": [{"month": m, **counts} for m, counts in sorted(months.items())],
        "by_requester": [
            {
                "organisation_id": str(org_id),
                "name": (org := await organisation(org_id)).name,
                "kind": org.kind,
                **counts,
            }
            for org_id, counts in sorted(requesters.items(), key=lambda kv: (-kv[1]["requests"], str(kv[0])))
        ],
        "by_agency": [
            {"organisation_id": str(org_id), "name": (await organisation(org_id)).name, **counts}
            for org_id, counts in sorted(agencies.items(), key=lambda kv: (-kv[1]["requests"], str(kv[0])))
        ],
        "by_tender": [
            {"tender_id": str(t), "code": by_id[t].code, **counts}
            for t, counts in sorted(by_tender.items(), key=lambda kv: (-kv[1]["requests"], by_id[kv[0]].code))
        ],
        "requests": [
            {
                "id": str(r.id),
                "draw_id": str(r.draw_id),
                "tender_code": by_id[r.tender_id].code,
                "requester_role": r.requester_role,
                "requester": (await organisation(r.requester_organisation_id)).name,
                "stage": r.stage,
                "reason": r.reason,
                "status": r.status,
                "requested_at": r.requested_at.isoformat(),
                "decided_at": r.decided_at.isoformat() if r.decided_at else None,
                "decision_note": r.decision_note,
            }
            for r in requests
        ],
    }


SIGNAL_WATCHERS = ("supervisor", "auditor")
BEFORE_THE_OPENING_CLOSED = (
    TenderStatus.DRAFT,
    TenderStatus.PUBLISHED,
    TenderStatus.TENDERING,
    TenderStatus.OPENING,
)


async def _seated(session: AsyncSession, actor: Principal, tender_id: uuid.UUID) -> bool:
    """True when the caller is a drawn expert who accepted and declared no conflict in one of the tender's
    rooms that was not cancelled, and has not recused."""
    seat = await session.scalar(
        select(Member.id)
        .join(Room, Room.id == Member.room_id)
        .where(
            Room.tender_id == tender_id,
            Room.status != "cancelled",
            Member.user_id == actor.user_id,
            Member.kind == "expert",
            Member.declared_at.is_not(None),
            or_(Member.outcome.is_(None), Member.outcome != "recused"),
        )
        .limit(1)
    )
    return seat is not None


async def collusion_signals(session: AsyncSession, actor: Principal, tender_id: uuid.UUID) -> list[Any]:
    """The tender's W-18 signals (identical files or metadata, one device or address, one signing key, one
    paying account) for the experts of its committee, supervisors and auditors, once the opening has closed.

    Before that they would say who obtained the documents or bid (W-20), so nobody sees them, not even those
    who will; an expert of no committee of this tender is told the signals do not exist (404)."""
    tender = await tenders.tender_by_id(session, tender_id)
    if not actor.has(*SIGNAL_WATCHERS) and not await _seated(session, actor, tender.id):
        raise NotFound("No such tender's signals.")
    if tender.opened_at is None or tender.status in BEFORE_THE_OPENING_CLOSED:
        raise Forbidden(
            "Collusion signals name bidders, so they are shown only once the opening has closed (W-20).",
            rule="W-20",
        )
    return await signals.signals_of(session, tender.id)
