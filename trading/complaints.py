"""The supervising authority's side of a complaint (投诉): suspending the trade while it decides, and the
decision with what it orders — nothing more, the awards annulled and passed to the next candidates, the
trade re-run, or a re-evaluation by the committee (W-17, G-12; 94号令 32; 87号令 64)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from rules.calendar import local_date
from rules.profiles import profile_for
from storage.problems import Conflict, NotFound, ValidationProblem, field_error
from trading import award_changes, reevaluation, schemas
from trading.lifecycle import TERMINAL, Action, TenderStatus, allowed_actions
from trading.models import Complaint
from trading.notices import notify_holders
from trading.tenders import fail_tender, load_tender, next_check_of


async def decide_complaint(
    session: AsyncSession,
    actor: Principal,
    complaint_id: uuid.UUID,
    data: schemas.ComplaintDecision,
    now: datetime,
) -> Complaint:
    """The supervising authority decides a complaint (due within 30 working days, W-17, G-12). The decision
    lifts a suspension it caused; an upheld complaint may annul the awards not yet contracted, each lot
    going to its next candidate (`reaward`), order the trade re-run: it fails (deposits owed back) and
    the agency may re-run it (`rerun`), or, before any contract is signed, order a re-evaluation by the
    original committee or a newly drawn one (`reevaluate`, `trading.reevaluation`)."""
    complaint = await session.get(Complaint, complaint_id, with_for_update=True)
    if complaint is None:
        raise NotFound("No such complaint.")
    if complaint.decided_at is not None:
        raise Conflict("This complaint is already decided.")
    if data.outcome != "none" and data.decision != "upheld":
        raise ValidationProblem(
            "Only an upheld complaint orders anything.",
            errors=[field_error("outcome", "the complaint is dismissed")],
        )
    tender = await load_tender(session, complaint.tender_id, lock=True)
    complaint.decision = data.decision
    complaint.decision_text = data.text
    complaint.decided_at = now
    complaint.decided_by = actor.user_id
    complaint.outcome = data.outcome
    if tender.suspended_by_complaint_id == complaint.id:
        tender.suspended_reason = None
        tender.suspended_by_complaint_id = None
        tender.next_check = next_check_of(tender)
    profile = profile_for(tender.sector, tender.method, tender.envelopes)
    rule = profile.rule("complaint_decision_working_days") or "W-17"
    if data.outcome == "reaward":
        await award_changes.annul_awards(
            session,
            actor,
            tender,
            rule,
            f"the supervising authority upheld a complaint: {data.text[:200]}",
            now,
        )
    if data.outcome == "reevaluate":
        await reevaluation.order_reevaluation(
            session,
            actor,
            tender,
            rule,
            f"the supervising authority upheld a complaint and ordered a re-evaluation: {data.text[:200]}",
            now,
            fresh=data.committee == "fresh",
        )
    if data.outcome == "rerun":
        if Action.FAIL not in allowed_actions(profile, TenderStatus(tender.status)):
            raise Conflict(
                f"A {tender.status} trade cannot be ordered re-run; decide the complaint without an outcome and "
                "record what the authority ordered.",
                rule=rule,
            )
        await fail_tender(
            session,
            tender,
            actor,
            rule,
            f"{rule}: the supervising authority upheld a complaint and ordered "
            f"the trade re-run: {data.text[:200]}",
            now,
        )
    await accounts.record(
        session,
        actor,
        "complaint.decide",
        "complaint",
        complaint.id,
        now,
        decision=data.decision,
        late=local_date(now) > complaint.decision_due,
    )
    return complaint


async def suspend_for_complaint(
    session: AsyncSession,
    actor: Principal,
    complaint_id: uuid.UUID,
    data: schemas.Suspension,
    now: datetime,
) -> Complaint:
    """The supervising authority suspends the trade while it decides the complaint: no step moves, no award
    or contract is recorded, the chronograph leaves it be, until the decision."""
    complaint = await session.get(Complaint, complaint_id, with_for_update=True)
    if complaint is None:
        raise NotFound("No such complaint.")
    if complaint.decided_at is not None:
        raise Conflict("This complaint is already decided; there is nothing to suspend for.")
    tender = await load_tender(session, complaint.tender_id, lock=True)
    if TenderStatus(tender.status) in TERMINAL | {TenderStatus.UNSUCCESSFUL, TenderStatus.CANCELLED}:
        raise Conflict(f"The trade is {tender.status}; there is nothing to suspend.")
    if tender.suspended_reason is not None:
        raise Conflict("The trade is already suspended.", suspended_reason=tender.suspended_reason)
    tender.suspended_reason = data.reason
    tender.suspended_by_complaint_id = complaint.id
    tender.next_check = None
    await accounts.record(
        session, actor, "tender.suspend", "tender", tender.id, now, complaint=str(complaint.id)
    )
    await notify_holders(
        session,
        tender,
        "tender.suspended",
        f"{tender.code}: suspended by the supervising authority over a complaint: {data.reason[:200]}",
        now,
    )
    return complaint
