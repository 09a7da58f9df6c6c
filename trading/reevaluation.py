"""Re-evaluation (重新评审) ordered on an upheld challenge to the result or an upheld complaint, lot by lot:
a lot whose contract is signed keeps it; the awards not yet contracted are annulled, the trade goes back to
evaluation and the committee scores again in a new evaluation round — the original members (87号令 64;
实施条例: a challenge found valid whose error the committee can correct), or a freshly drawn committee when
the supervising authority orders it. The earlier round's report stays on record; the new round's report is
what the purchaser's decision (procurement) or the candidates' publicity (works) goes on from."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from rules.profiles import profile_for
from storage.problems import Conflict, NotFound, RuleViolation, ValidationProblem, field_error
from trading import award_changes, engine, schemas
from trading.lifecycle import Action, TenderStatus, allowed_actions
from trading.models import Contract, Objection, Tender
from trading.notices import notify_holders
from trading.objections import answer_objection
from trading.tenders import load_tender, lots_of, move, tender_for_agency

# The lots a re-evaluation decides afresh: those the committee ranked and that await or hold an award.
REDECIDED = frozenset({"open", "awarded", "reawarding"})


async def order_reevaluation(
    session: AsyncSession,
    actor: Principal,
    tender: Tender,
    rule: str,
    reason: str,
    now: datetime,
    *,
    fresh: bool = False,
) -> int:
    """Send the trade (locked by the caller) back to its committee, lot by lot: a lot whose contract is
    signed keeps it (the result is settled there), the others are decided afresh; refused when every lot
    the result concerns is contracted, and in a state no report precedes. The awards not yet contracted are
    annulled and their lots wait for the new round's report. Answers the new round."""
    profile = profile_for(tender.sector, tender.method)
    lots = await lots_of(session, tender.id)
    redecided = [lot for lot in lots if lot.status in REDECIDED]
    contracted = [lot for lot in lots if lot.status == "contracted"]
    if contracted and not redecided:
        signed = await session.scalar(select(Contract.id).where(Contract.tender_id == tender.id).limit(1))
        raise RuleViolation(
            rule,
            "Every lot of this result has its contract signed: a re-evaluation is ordered only for lots not "
            "yet contracted (87号令 64); decide what the authority orders otherwise.",
            contract_id=str(signed),
            contracted_lots=[lot.number for lot in contracted],
        )
    if Action.REEVALUATE not in allowed_actions(profile, TenderStatus(tender.status)):
        raise Conflict(
            f"A {tender.status} trade cannot be re-evaluated: a re-evaluation follows the committee's report "
            "and comes before the contracts.",
            rule=rule,
            status_now=tender.status,
        )
    if tender.status == TenderStatus.AWARDED:
        await award_changes.annul_awards(session, actor, tender, rule, reason, now, pass_on=False)
    for lot in redecided:
        lot.status = "open"
        lot.outcome_reason = None
    tender.publicity_ends = None
    await move(session, tender, Action.REEVALUATE, actor, now, rule=rule, fresh_committee=fresh)
    round_ = await engine.evaluation().reconvene(session, tender, fresh, now)
    await accounts.record(
        session,
        actor,
        "tender.reevaluate",
        "tender",
        tender.id,
        now,
        rule=rule,
        round=round_,
        fresh=fresh,
        lots=[lot.number for lot in redecided],
        kept_contracted=[lot.number for lot in contracted],
    )
    committee = "a newly drawn committee" if fresh else "the original committee"
    await notify_holders(
        session,
        tender,
        "tender.reevaluation",
        f"{tender.code}: re-evaluation (重新评审) by {committee}, round {round_}: {reason[:200]}",
        now,
    )
    return round_


async def answer_challenge(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    objection_id: uuid.UUID,
    data: schemas.ObjectionAnswer,
    now: datetime,
) -> Objection:
    """The agency answers an objection or challenge (`trading.objections.answer_objection`); upholding a
    procurement challenge to the result whose error the committee can correct, it may order a
    re-evaluation by the original committee (`outcome` "reevaluate", 87号令 64; G-12)."""
    if data.outcome == "reevaluate":
        tender = await tender_for_agency(session, actor, tender_id)
        profile = profile_for(tender.sector, tender.method)
        objection = await session.get(Objection, objection_id)
        if objection is None or objection.tender_id != tender.id:
            raise NotFound("No such objection.")
        if profile.challenge_within_working_days is None or objection.subject != "result":
            raise ValidationProblem(
                "Only the answer to a procurement challenge (质疑) to the result orders a re-evaluation; the "
                "supervising authority may order one on a complaint.",
                errors=[field_error("outcome", "not a challenge to the result")],
            )
    answered = await answer_objection(session, actor, tender_id, objection_id, data, now)
    if data.outcome == "reevaluate":
        tender = await load_tender(session, answered.tender_id, lock=True)
        rule = profile_for(tender.sector, tender.method).rule("challenge_answer_working_days") or "G-12"
        await order_reevaluation(
            session, actor, tender, rule, f"a challenge to the result was upheld: {data.answer[:200]}", now
        )
        answered.outcome = data.outcome
    return answered
