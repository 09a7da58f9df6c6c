"""Awards (定标, 中标通知书): the committee's report taken from the evaluation room, the candidates' publicity
(W-12) or the purchaser's decision (procurement), the award and its result notice, and the award of a lot
again to the next candidate. A winner who declines or an annulled award is in `trading.award_changes`; the
signed contracts in `trading.contracts`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from escrow import refunds
from rules.calendar import (
    SHANGHAI,
    end_of_day,
    local_date,
)
from rules.profiles import (
    ProcedureProfile,
    committee_ok,
    profile_for,
)
from rules.schedule import working_calendar
from storage.problems import (
    Conflict,
    RuleViolation,
    ValidationProblem,
    field_error,
    refusal,
)
from trading import schemas
from trading.lifecycle import (
    Action,
    TenderStatus,
)
from trading.models import (
    Award,
    Bid,
    Document,
    Lot,
    Report,
    Tender,
)
from trading.notices import notify_holders, publish_notice
from trading.objections import pending_objections
from trading.tenders import (
    budget_of,
    load_tender,
    lots_of,
    move,
    refuse_if_suspended,
    tender_for_agency,
)


@dataclass(frozen=True)
class StoredFile:
    """A file another package already put in the object store, to be kept as a document of the trade."""

    filename: str
    object_key: str
    sha256: str
    size: int
    uploaded_by: uuid.UUID


async def record_report(
    session: AsyncSession,
    actor: Principal | None,
    tender_id: uuid.UUID,
    committee: list[dict[str, Any]],
    candidates: list[tuple[uuid.UUID, list[uuid.UUID]]],
    file: StoredFile,
    report_hash: str,
    now: datetime,
) -> Report:
    """Take the committee's signed report from the evaluation room (W-10, W-11; G-07) and publish the
    candidates for publicity (W-12), or, in procurement, put the ranking before the purchaser, who names the
    winner (87号令 68). A lot without candidates fails; a tender whose every lot failed fails. A report
    after a re-evaluation (重新评审) is the next round's: the earlier ones stay on record."""
    tender = await load_tender(session, tender_id, lock=True)
    if tender.status != TenderStatus.EVALUATION:
        raise Conflict(f"The report comes after the opening; the tender is {tender.status}.")
    profile = profile_for(tender.sector, tender.method)
    lots = {lot.id: lot for lot in await lots_of(session, tender.id)}
    experts = sum(1 for m in committee if m["kind"] == "expert")
    why = committee_ok(profile, len(committee), experts, budget_of(lots.values()))
    if why:
        raise RuleViolation(
            profile.rule("committee_min_size") or "W-10", f"The evaluation committee is not lawful: {why}."
        )
    dissents = [m["name"] for m in committee if m.get("dissent")]
    deemed = [m["name"] for m in committee if m.get("deemed_agreed")]
    open_lots = {lid for lid, lot in lots.items() if lot.status == "open"}
    if {lot_id for lot_id, _ in candidates} != open_lots:
        raise Conflict("The report must rank candidates for every open lot.")
    for _lot_id, ranking in candidates:
        if len(ranking) > profile.max_candidates:
            raise refusal(
                profile.rule("max_candidates"),
                f"At most {profile.max_candidates} ranked candidates per lot.",
                "candidates",
                f"at most {profile.max_candidates}",
            )
    await _refuse_rejected(session, [bid_id for _lot_id, ranking in candidates for bid_id in ranking])
    document = Document(
        tender_id=tender.id,
        kind="evaluation_report",
        filename=file.filename,
        object_key=file.object_key,
        sha256=file.sha256,
        size=file.size,
        uploaded_by=file.uploaded_by,
        uploaded_at=now,
    )
    session.add(document)
    await session.flush()
    for lot_id, ranking in candidates:
        if not ranking:
            lots[lot_id].status = "failed"
            lots[lot_id].outcome_reason = "the committee found no acceptable bid"
    rounds = await session.scalar(select(func.max(Report.round)).where(Report.tender_id == tender.id))
    report = Report(
        tender_id=tender.id,
        round=(rounds or 0) + 1,
        document_id=document.id,
        committee=committee,
        candidates=[
            {"lot_id": str(lot_id), "ranking": [str(b) for b in ranking]} for lot_id, ranking in candidates
        ],
        received_at=now,
    )
    session.add(report)
    await session.flush()
    await accounts.record(
        session,
        actor,
        "report.submit",
        "report",
        report.id,
        now,
        deemed_agreed=deemed,
        dissents=dissents,
        report_hash=report_hash,
        round=report.round,
    )
    if all(lot.status == "failed" for lot in lots.values()):
        tender.outcome_reason = "the committee rejected every bid"
        tender.closed_at = now
        await move(session, tender, Action.FAIL, actor, now)
        await publish_notice(
            session, tender, "failure", f"{tender.title} 流标公告", {"reason": tender.outcome_reason}, now
        )
        return report
    cal = await working_calendar(session)
    tender.report_at = now
    if not profile.has_publicity:
        # procurement: no candidates' publicity; the purchaser decides on the ranking and the result is
        # announced with the award (G-11)
        await move(session, tender, Action.SUBMIT_REPORT, actor, now)
        await notify_holders(
            session,
            tender,
            "tender.report",
            f"{tender.code}: the evaluation report is in; the result is announced with the award.",
            now,
        )
        return report
    tender.publicity_days = max(tender.publicity_days, profile.publicity_min_days)
    tender.publicity_ends = end_of_day(cal.period_end(local_date(now), tender.publicity_days))
    await move(session, tender, Action.SUBMIT_REPORT, actor, now)
    body = []
    for lot_id, ranking in candidates:
        ranked = []
        for rank, bid_id in enumerate(ranking, start=1):
            bid = await session.get(Bid, bid_id)
            assert bid is not None
            org = await accounts.get_organisation(session, bid.organisation_id)
            ranked.append(
                {
                    "rank": rank,
                    "bidder": org.name,
                    "credit_code": org.credit_code,
                    "declared_price_fen": bid.declared_price_fen,
                }
            )
        body.append({"lot": lots[lot_id].number, "candidates": ranked})
    await publish_notice(
        session,
        tender,
        "candidates",
        f"{tender.title} 中标候选人公示",
        {
            "lots": body,
            "publicity_ends": tender.publicity_ends.isoformat(),
            "rule": "W-12",
            "committee": [m["name"] for m in committee],
            "report_sha256": report_hash,
        },
        now,
    )
    return report


async def award(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: schemas.AwardCreate, now: datetime
) -> list[Award]:
    """Issue the award (定标, 中标通知书) after publicity, once every objection is answered, or in procurement
    on the purchaser's decision; the winner of each lot must be one of its candidates. The result notice is
    published with it (G-11: within 2 working days of the decision) and the contract is due within 30 days
    (W-13, G-11); in procurement the unsuccessful suppliers' deposits fall due at once (G-04)."""
    tender = await tender_for_agency(session, actor, tender_id)
    profile = profile_for(tender.sector, tender.method)
    if profile.framework_term_max_days is not None:
        raise Conflict(
            "A framework agreement admits several suppliers per lot: POST its admissions instead.",
            rule="G-01",
        )
    refuse_if_suspended(tender, "award")
    if tender.status == TenderStatus.AWARDED:
        return await _reaward(session, actor, tender, data, now)
    if tender.status not in (TenderStatus.PUBLICITY, TenderStatus.DECISION):
        waits_for = "the candidates' publicity" if profile.has_publicity else "the evaluation report"
        raise Conflict(f"Awards follow {waits_for}; the tender is {tender.status}.")
    if tender.status == TenderStatus.PUBLICITY:
        assert tender.publicity_ends is not None
        if now < tender.publicity_ends:
            raise RuleViolation(
                "W-12",
                f"The candidates are in publicity until {tender.publicity_ends.astimezone(SHANGHAI).isoformat()}.",
                publicity_ends=tender.publicity_ends.isoformat(),
            )
        if await pending_objections(session, tender, "candidates"):
            raise RuleViolation("W-12", "Objections to the candidates must be answered before the award.")
    ranking = await report_ranking(session, tender)
    open_lots = {lot.id: lot for lot in await lots_of(session, tender.id) if lot.status == "open"}
    chosen = {a.lot_id: a.bid_id for a in data.lots}
    if set(chosen) != set(open_lots) or len(chosen) != len(data.lots):
        raise ValidationProblem(
            "Name one winning bid for every open lot.",
            errors=[field_error("lots", "missing or repeated lots")],
        )
    awards, results = await _make_awards(session, tender, chosen, ranking, open_lots, set(), now)
    tender.awarded_at = now
    await move(session, tender, Action.AWARD, actor, now)
    await publish_notice(
        session, tender, "result", f"{tender.title} 中标结果公告", _result_body(profile, results), now
    )
    await _refund_losers(session, profile, awards, now)
    await notify_holders(
        session, tender, "tender.awarded", f"{tender.code}: the award has been published.", now
    )
    return awards


def _result_body(profile: ProcedureProfile, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The result notice's body: the winners, and in procurement the rule that times it (G-11) and each lot's
    budget, award and saving to the fen."""
    if profile.result_notice_working_days is None:
        return {"lots": results}
    return {"lots": results, "rule": profile.rule("result_notice_working_days"), "procedure": profile.title}


async def _refund_losers(
    session: AsyncSession, profile: ProcedureProfile, awards: list[Award], now: datetime
) -> None:
    """Procurement: the unsuccessful suppliers' deposits fall due within 5 working days of the award
    notice (G-04-loser); the winner's waits for the contract. Works refund everyone at the contract (W-14)."""
    if profile.losers_refund_rule is None:
        return
    cal = await working_calendar(session)
    for row in awards:
        await refunds.on_award_notice(
            session, row.lot_id, row.organisation_id, profile.losers_refund_rule, local_date(now), cal, now
        )


async def _make_awards(
    session: AsyncSession,
    tender: Tender,
    chosen: dict[uuid.UUID, uuid.UUID],
    ranking: dict[uuid.UUID, list[uuid.UUID]],
    lots: dict[uuid.UUID, Lot],
    excluded: set[uuid.UUID],
    now: datetime,
) -> tuple[list[Award], list[dict[str, Any]]]:
    """Create one active award per chosen lot, each winner a candidate of its lot not in `excluded`."""
    profile = profile_for(tender.sector, tender.method)
    cal = await working_calendar(session)
    awards = []
    results = []
    await _check_lots_per_supplier(session, tender, chosen)
    for i, (lot_id, bid_id) in enumerate(chosen.items()):
        if bid_id not in ranking.get(lot_id, []) or bid_id in excluded:
            raise ValidationProblem(
                "The winner must be one of the lot's candidates.",
                errors=[field_error(f"lots[{i}].bid_id", "not a candidate")],
            )
        await _refuse_rejected(session, [bid_id], field=f"lots[{i}].bid_id")
        bid = await session.get(Bid, bid_id)
        assert bid is not None and bid.declared_price_fen is not None
        row = Award(
            tender_id=tender.id,
            lot_id=lot_id,
            bid_id=bid_id,
            organisation_id=bid.organisation_id,
            price_fen=bid.declared_price_fen,
            awarded_at=now,
            contract_due=cal.period_end(local_date(now), profile.contract_within_days),
            deposit_refunded_fen=await refunds.on_new_winner(session, lot_id, bid.organisation_id, now),
        )
        session.add(row)
        lots[lot_id].status = "awarded"
        awards.append(row)
        org = await accounts.get_organisation(session, bid.organisation_id)
        result = {
            "lot": lots[lot_id].number,
            "winner": org.name,
            "credit_code": org.credit_code,
            "price_fen": bid.declared_price_fen,
        }
        if profile.sector == "procurement":
            budget = lots[lot_id].estimated_price_fen
            result |= {"budget_fen": budget, "saving_fen": budget - bid.declared_price_fen}
        results.append(result)
    await session.flush()
    return awards, results


async def _check_lots_per_supplier(
    session: AsyncSession, tender: Tender, chosen: dict[uuid.UUID, uuid.UUID]
) -> None:
    """分包: where the documents limit the lots one supplier may win, no supplier wins more, counting the
    lots it already holds (an award declined under W-16 no longer counts)."""
    limit = tender.max_lots_per_supplier
    if limit is None:
        return
    held: dict[uuid.UUID, int] = {}
    for holder in await session.scalars(
        select(Award.organisation_id).where(Award.tender_id == tender.id, Award.status == "active")
    ):
        held[holder] = held.get(holder, 0) + 1
    for i, bid_id in enumerate(chosen.values()):
        org = await session.scalar(select(Bid.organisation_id).where(Bid.id == bid_id))
        if org is None:
            continue  # not a bid of this tender: `_make_awards` refuses it as no candidate
        held[org] = held.get(org, 0) + 1
        if held[org] > limit:
            raise ValidationProblem(
                f"The documents let one supplier win at most {limit} lot(s); this award would give a "
                "supplier more. Name the next candidate for this lot.",
                errors=[field_error(f"lots[{i}].bid_id", f"the supplier already wins {limit} lot(s)")],
                max_lots_per_supplier=limit,
            )


async def _refuse_rejected(
    session: AsyncSession, bid_ids: Sequence[uuid.UUID], field: str = "candidates"
) -> None:
    """No bid the platform rejected (W-19: no deposit at the deadline, a price above the ceiling or the
    budget) becomes a candidate or wins."""
    if not bid_ids:
        return
    rejected = (
        await session.execute(
            select(Bid.id, Bid.rejection_rule).where(Bid.id.in_(bid_ids), Bid.rejection_rule.is_not(None))
        )
    ).first()
    if rejected is not None:
        raise RuleViolation(
            rejected.rejection_rule,
            "A bid the platform rejected cannot be a candidate or win: its deposit was not in place at the "
            "bid deadline, or its price exceeds the ceiling or the budget.",
            errors=[field_error(field, f"bid {rejected.id} is rejected ({rejected.rejection_rule})")],
        )


async def report_ranking(session: AsyncSession, tender: Tender) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Each lot's ranked candidates in the latest evaluation round's report, which decides; an earlier
    round's report stays on record only."""
    report = await session.scalar(
        select(Report).where(Report.tender_id == tender.id).order_by(Report.round.desc()).limit(1)
    )
    assert report is not None
    return {uuid.UUID(c["lot_id"]): [uuid.UUID(b) for b in c["ranking"]] for c in report.candidates}


async def passed_over(session: AsyncSession, tender: Tender) -> set[uuid.UUID]:
    """The bids whose award was declined (W-16) or annulled on a complaint: never awarded again."""
    return set(
        await session.scalars(
            select(Award.bid_id).where(
                Award.tender_id == tender.id, Award.status.in_(("declined", "annulled"))
            )
        )
    )


async def _reaward(
    session: AsyncSession, actor: Principal, tender: Tender, data: schemas.AwardCreate, now: datetime
) -> list[Award]:
    """Award a lot whose winner declined, or whose award was annulled, to the next candidate in the
    committee's order (条例 55; 94号令 32)."""
    lots = {lot.id: lot for lot in await lots_of(session, tender.id) if lot.status == "reawarding"}
    chosen = {a.lot_id: a.bid_id for a in data.lots}
    if not lots:
        raise Conflict("Every lot is awarded; nothing to award again.")
    if set(chosen) != set(lots) or len(chosen) != len(data.lots):
        raise ValidationProblem(
            "Name one winning bid for every lot whose winner declined.",
            errors=[field_error("lots", "missing or repeated lots")],
        )
    ranking = await report_ranking(session, tender)
    declined = await passed_over(session, tender)
    for i, (lot_id, bid_id) in enumerate(chosen.items()):
        remaining = [b for b in ranking.get(lot_id, []) if b not in declined]
        if not remaining or remaining[0] != bid_id:
            raise ValidationProblem(
                "After a winner declines, the lot goes to the next candidate in the committee's order.",
                errors=[field_error(f"lots[{i}].bid_id", "not the next-ranked candidate")],
            )
    awards, results = await _make_awards(session, tender, chosen, ranking, lots, declined, now)
    await accounts.record(session, actor, "tender.reaward", "tender", tender.id, now, lots=len(awards))
    profile = profile_for(tender.sector, tender.method)
    await publish_notice(
        session,
        tender,
        "result",
        f"{tender.title} 中标结果公告 (重新确定)",
        _result_body(profile, results),
        now,
    )
    return awards


async def list_awards(session: AsyncSession, tender_id: uuid.UUID) -> list[Award]:
    """Awards of a tender."""
    return list(await session.scalars(select(Award).where(Award.tender_id == tender_id)))
