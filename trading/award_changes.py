"""Changes to an award before its contract (中标结果变更): a winner who refuses to sign or to give the
performance security loses the award and its deposit (W-16); the supervising authority annuls the awards
not yet contracted on an upheld complaint (94号令 32) or for a re-evaluation. A lot left without candidates
fails."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from escrow import forfeiture, refunds, subaccounts
from rules.calendar import local_date
from rules.profiles import profile_for
from rules.schedule import working_calendar
from storage.problems import Conflict, NotFound
from trading import awards, schemas
from trading.lifecycle import Action, TenderStatus
from trading.models import Award, Contract, Lot, Tender
from trading.notices import publish_notice
from trading.tenders import fail_tender, lots_of, move, tender_for_agency


async def decline_award(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    award_id: uuid.UUID,
    data: schemas.AwardDecline,
    now: datetime,
) -> Award:
    """The winner refused to sign the contract or to give the performance security: it loses the award and
    its deposit (W-16), and the lot may go to the next-ranked candidate."""
    tender = await tender_for_agency(session, actor, tender_id)
    if tender.status != TenderStatus.AWARDED:
        raise Conflict(f"Only an award not yet contracted can be lost; the tender is {tender.status}.")
    row = await session.get(Award, award_id)
    if row is None or row.tender_id != tender.id:
        raise NotFound("No such award.")
    if row.status != "active" or await session.scalar(select(Contract.id).where(Contract.award_id == row.id)):
        raise Conflict("This award is already declined or contracted.")
    row.status = "declined"
    row.declined_at = now
    row.decline_reason = data.reason
    lot = await session.get(Lot, row.lot_id)
    assert lot is not None
    lot.status = "reawarding"
    deposit = await subaccounts.deposit_of(session, lot.id, row.organisation_id)
    # a deposit already refunded to it as an unsuccessful supplier (G-04-loser) is no longer there to keep
    forfeitable = deposit is not None and row.deposit_refunded_fen is None
    if deposit is not None and row.deposit_refunded_fen is None:
        # W-16: proposed here, with the reason; the money moves only on a supervisor's approval
        await forfeiture.propose_forfeiture(
            session,
            deposit,
            "W-16",
            f"the winner declined the award: {data.reason}",
            f"user:{actor.user_id}",
            now,
        )
    await accounts.record(
        session,
        actor,
        "award.decline",
        "award",
        row.id,
        now,
        rule="W-16",
        deposit_forfeited=forfeitable,
        organisation=row.organisation_id,
    )
    await publish_notice(
        session,
        tender,
        "award_change",
        f"{tender.title} 中标结果变更公告 (标段 {lot.number})",
        {"lot": lot.number, "reason": data.reason, "rule": "W-16"},
        now,
    )
    await session.flush()
    declined = await awards.passed_over(session, tender)
    if not [b for b in (await awards.report_ranking(session, tender)).get(lot.id, []) if b not in declined]:
        await _lot_without_candidates(
            session, actor, tender, lot, "W-16", "every candidate declined the award", now
        )
    return row


async def annul_awards(
    session: AsyncSession,
    actor: Principal,
    tender: Tender,
    rule: str,
    reason: str,
    now: datetime,
    *,
    pass_on: bool = True,
) -> list[Award]:
    """The supervising authority upheld a complaint against the result: every award not yet contracted is
    annulled, and each lot goes to its next candidate in the committee's order (94号令 32), or fails when
    none is left. Without `pass_on` (a re-evaluation decides the lots afresh) the lots wait for it."""
    if tender.status != TenderStatus.AWARDED:
        raise Conflict(
            f"Only awards not yet contracted can be annulled; the trade is {tender.status}.", rule=rule
        )
    annulled = []
    for row in await session.scalars(
        select(Award).where(Award.tender_id == tender.id, Award.status == "active")
    ):
        if await session.scalar(select(Contract.id).where(Contract.award_id == row.id)):
            continue
        row.status = "annulled"
        row.declined_at = now
        row.decline_reason = reason
        lot = await session.get(Lot, row.lot_id)
        assert lot is not None
        lot.status = "reawarding"
        annulled.append(row)
        await accounts.record(session, actor, "award.annul", "award", row.id, now, rule=rule)
        await publish_notice(
            session,
            tender,
            "award_change",
            f"{tender.title} 中标结果变更公告 (标段 {lot.number})",
            {"lot": lot.number, "reason": reason, "rule": rule},
            now,
        )
    if not pass_on:
        await session.flush()
        return annulled
    if not annulled:
        raise Conflict("Every award already has its contract; there is nothing to annul.", rule=rule)
    await session.flush()
    passed = await awards.passed_over(session, tender)
    ranking = await awards.report_ranking(session, tender)
    for row in annulled:
        lot = await session.get(Lot, row.lot_id)
        assert lot is not None
        if not [b for b in ranking.get(lot.id, []) if b not in passed]:
            await _lot_without_candidates(
                session, actor, tender, lot, rule, "no candidate is left after the annulment", now
            )
    return annulled


async def _lot_without_candidates(
    session: AsyncSession, actor: Principal, tender: Tender, lot: Lot, rule: str, why: str, now: datetime
) -> None:
    """No candidate of the lot is left (every one declined, W-16, or was annulled): the lot fails; the
    tender fails when no lot is left, and is contracted when the other lots all have their contracts."""
    lot.status = "failed"
    lot.outcome_reason = f"{rule}: {why}"
    rule = profile_for(tender.sector, tender.method).end_refund_rule
    await refunds.on_lot_settled(
        session, lot.id, rule, "lot_failed", local_date(now), await working_calendar(session), now
    )
    statuses = {other.status for other in await lots_of(session, tender.id)}
    if statuses & {"awarded", "reawarding"}:
        return
    if "contracted" in statuses:
        await move(session, tender, Action.SIGN_CONTRACTS, actor, now)
        return
    await fail_tender(session, tender, actor, rule, f"{why} ({rule}); the tender is to be re-run", now)
