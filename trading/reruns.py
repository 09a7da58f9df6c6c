"""Re-running a trade: a new draft from a failed or terminated one (重新招标), and a procurement that failed
for too few suppliers re-run by another method with the approving body's consent (G-13)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from rules.calendar import local_date
from rules.profiles import profile_for
from storage.problems import Conflict, RuleViolation, ValidationProblem, field_error
from trading import participation, schemas
from trading.lifecycle import Action, TenderStatus
from trading.models import Tender
from trading.tenders import lots_of, move, new_draft, tender_for_agency


async def switch_method(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: schemas.MethodSwitch, now: datetime
) -> Tender:
    """Re-run a procurement that failed for too few suppliers by another method, with the approving body's
    consent recorded on the new draft and its notice (G-13, 87号令 43)."""
    old = await tender_for_agency(session, actor, tender_id)
    profile = profile_for(old.sector, old.method)
    too_few = profile.rule("min_bids_to_open")
    if old.sector != "procurement" or old.status != TenderStatus.UNSUCCESSFUL:
        raise Conflict(
            "Only a procurement that failed may change its method; this trade is "
            f"{old.sector}, {old.status}.",
            rule="G-13",
        )
    if not (too_few and (old.outcome_reason or "").startswith(too_few)):
        raise RuleViolation(
            "G-13",
            "A procurement changes its method only after it failed for too few suppliers; it failed because "
            f"{old.outcome_reason}.",
        )
    if data.method == old.method:
        raise ValidationProblem(
            "Name another method; to run the same one again, re-run the procurement.",
            errors=[field_error("method", f"already {old.method}")],
        )
    if data.approval.approved_on > local_date(now):
        raise ValidationProblem(
            "The approval cannot be dated in the future.",
            errors=[field_error("approval.approved_on", "in the future")],
        )
    target = participation.procedure(old.sector, data.method)
    evaluation_method = old.evaluation_method
    if target.evaluation_methods and evaluation_method not in target.evaluation_methods:
        evaluation_method = target.evaluation_methods[0]
    participation.check_terms(target, evaluation_method, data.invited)
    new = await retender(session, actor, tender_id, now)
    new.method = data.method
    new.evaluation_method = evaluation_method
    new.envelopes = old.envelopes if old.envelopes in target.envelope_counts else 1
    new.invited_organisations = [str(org) for org in dict.fromkeys(data.invited)]
    new.method_approval = {
        "from_method": old.method,
        "body": data.approval.body,
        "number": data.approval.number,
        "approved_on": data.approval.approved_on.isoformat(),
        "rule": "G-13",
    }
    await accounts.record(
        session,
        actor,
        "tender.switch_method",
        "tender",
        new.id,
        now,
        rule="G-13",
        from_method=old.method,
        to_method=data.method,
        approval=data.approval.number,
    )
    return new


async def retender(session: AsyncSession, actor: Principal, tender_id: uuid.UUID, now: datetime) -> Tender:
    """Start a new tender from a failed or terminated one (重新招标): a draft copying its terms and lots."""
    old = await tender_for_agency(session, actor, tender_id)
    await move(session, old, Action.RETENDER, actor, now)
    lots = [
        schemas.LotIn(
            title=lot.title,
            estimated_price_fen=lot.estimated_price_fen,
            deposit_fen=lot.deposit_fen,
            ceiling_price_fen=lot.ceiling_price_fen,
        )
        for lot in await lots_of(session, old.id)
    ]
    # The same period from documents to deadline as before, counted again from today.
    deadline = now + (old.bid_deadline - old.documents_from)
    new = await new_draft(
        session,
        old,
        old.agency_organisation_id,
        now,
        deadline,
        lots,
        now,
        validity=old.bid_validity_days,
        parent_id=old.id,
    )
    await accounts.record(
        session, actor, "tender.create", "tender", new.id, now, code=new.code, parent=old.code
    )
    return new
