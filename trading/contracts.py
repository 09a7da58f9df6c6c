"""Contracts (合同): the signed contract of an awarded lot (W-13, W-15; G-11), which settles the lot's
deposits, the acceptance of its performance (履约验收) and the completion of the trade."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from escrow import refunds
from rules.calendar import WorkingCalendar, local_date
from rules.profiles import ProcedureProfile, performance_security_cap, profile_for
from rules.schedule import working_calendar
from storage.problems import Conflict, NotFound, RuleViolation, ValidationProblem, field_error, refusal
from trading import schemas
from trading.documents import TakenFile, record_document
from trading.lifecycle import Action, TenderStatus
from trading.models import Award, Contract, Lot, Tender
from trading.notices import publish_notice
from trading.objections import pending_objections
from trading.tenders import move, refuse_if_suspended, tender_for_agency


async def record_contract(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.ContractCreate,
    taken: TakenFile,
    now: datetime,
) -> Contract:
    """Record the signed contract of an awarded lot, its file taken by `take_document`: signed within 30 days
    of the award (W-13), performance security at most 10% of the price (W-15). When every awarded lot has
    its contract, the tender is contracted."""
    tender = await tender_for_agency(session, actor, tender_id)
    refuse_if_suspended(tender, "record a contract")
    if tender.status != TenderStatus.AWARDED:
        raise Conflict(f"Contracts follow the award; the tender is {tender.status}.")
    row = await session.get(Award, data.award_id)
    if row is None or row.tender_id != tender.id:
        raise ValidationProblem("No such award in this tender.", errors=[field_error("award_id", "unknown")])
    if row.status != "active":
        raise Conflict("This award was declined (W-16); record the contract of the new award.", rule="W-16")
    if await session.scalar(select(Contract.id).where(Contract.award_id == row.id)):
        raise Conflict("This award already has its contract.")
    profile = profile_for(tender.sector, tender.method)
    if profile.challenge_within_working_days is not None and await pending_objections(
        session, tender, "result"
    ):
        raise RuleViolation(
            profile.rule("challenge_answer_working_days") or "G-12",
            "A challenge to the result awaits the purchaser's answer; the contract waits for it (实施条例 54).",
        )
    if data.signed_on > local_date(now):
        raise ValidationProblem(
            "signed_on is in the future.", errors=[field_error("signed_on", "in the future")]
        )
    if data.signed_on < local_date(row.awarded_at):
        raise ValidationProblem(
            "signed_on is before the award.", errors=[field_error("signed_on", "before the award")]
        )
    if data.price_fen != row.price_fen:
        raise ValidationProblem(
            f"The contract's price must be the awarded price, {row.price_fen} fen: a contract may not depart "
            "from the documents and the winning bid (招标投标法 46; 政府采购法 46).",
            errors=[field_error("price_fen", f"the award is {row.price_fen}")],
        )
    contract_rule = profile.rule("contract_within_days") or "W-13"
    if data.signed_on > row.contract_due and not data.late_reason:
        raise RuleViolation(
            contract_rule,
            f"The contract was due by {row.contract_due.isoformat()} ({profile.contract_within_days} days from "
            "the award notice); record it with a late_reason, which is reported to the supervisor.",
            contract_due=row.contract_due.isoformat(),
        )
    cal = await working_calendar(session)
    publish_by = _publish_by(profile, cal, data.signed_on)
    if publish_by is not None and local_date(now) > publish_by and not data.late_reason:
        raise RuleViolation(
            profile.rule("contract_publish_working_days") or contract_rule,
            f"A contract signed on {data.signed_on.isoformat()} is published by {publish_by.isoformat()} "
            f"({profile.contract_publish_working_days} working days); record it with a late_reason, which is "
            "reported to the supervisor.",
            publish_by=publish_by.isoformat(),
        )
    cap = performance_security_cap(profile, data.price_fen)
    if data.performance_security_fen > cap:
        raise refusal(
            profile.rule("performance_security_max_permille"),
            f"The performance security may be at most {profile.performance_security_max_permille / 10:g}% of "
            f"the contract price: {cap} fen.",
            "performance_security_fen",
            f"at most {cap}",
        )
    document = await record_document(session, actor, tender, "contract", data.filename, taken, now)
    contract = Contract(
        tender_id=tender.id,
        award_id=row.id,
        document_id=document.id,
        price_fen=data.price_fen,
        performance_security_fen=data.performance_security_fen,
        signed_on=data.signed_on,
        late_reason=data.late_reason,
        recorded_at=now,
    )
    session.add(contract)
    await session.flush()
    await accounts.record(
        session,
        actor,
        "contract.record",
        "contract",
        contract.id,
        now,
        late=data.signed_on > row.contract_due,
    )
    lot = await session.get(Lot, row.lot_id)
    assert lot is not None
    lot.status = "contracted"
    # W-14: every deposit of the lot, the winner's and the others', back within 5 days with interest;
    # G-04-winner: the winner's within 5 working days (the others' fell due at the award notice)
    await refunds.on_lot_settled(
        session, lot.id, profile.contract_refund_rule, "contract_signed", data.signed_on, cal, now
    )
    await publish_notice(
        session,
        tender,
        "contract",
        f"{tender.title} 合同公告 (标段 {lot.number})",
        {
            "lot": lot.number,
            "price_fen": data.price_fen,
            "signed_on": data.signed_on.isoformat(),
            "performance_security_fen": data.performance_security_fen,
            "sha256": document.sha256,
        }
        | (
            {"publish_by": publish_by.isoformat(), "rule": profile.rule("contract_publish_working_days")}
            if publish_by
            else {}
        ),
        now,
    )
    remaining = await session.scalar(
        select(func.count())
        .select_from(Lot)
        .where(Lot.tender_id == tender.id, Lot.status.in_(("awarded", "reawarding")))
    )
    if not remaining:
        await move(session, tender, Action.SIGN_CONTRACTS, actor, now)
    return contract


def _publish_by(profile: ProcedureProfile, cal: WorkingCalendar, signed_on: date) -> date | None:
    """The last day a contract signed on `signed_on` may be published (G-11), where the procedure sets one."""
    if profile.contract_publish_working_days is None:
        return None
    return cal.add_working_days(signed_on, profile.contract_publish_working_days)


async def accept_performance(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    contract_id: uuid.UUID,
    data: schemas.ContractAcceptance,
    now: datetime,
) -> Contract:
    """The purchaser records the acceptance of a contract's performance (履约验收), once, on a day between the
    signing and today; the result is published."""
    tender = await tender_for_agency(session, actor, tender_id)
    contract = await session.get(Contract, contract_id, with_for_update=True)
    if contract is None or contract.tender_id != tender.id:
        raise NotFound("No such contract.")
    if contract.acceptance_result is not None:
        raise Conflict("The acceptance of this contract is already on record.")
    if not contract.signed_on <= data.accepted_on <= local_date(now):
        raise ValidationProblem(
            "The acceptance falls between the contract's signing and today.",
            errors=[field_error("accepted_on", f"from {contract.signed_on.isoformat()} to today")],
        )
    contract.acceptance_result = data.result
    contract.accepted_on = data.accepted_on
    contract.acceptance_text = data.report
    contract.acceptance_recorded_at = now
    award = await session.get(Award, contract.award_id)
    assert award is not None
    lot = await session.get(Lot, award.lot_id)
    assert lot is not None
    await accounts.record(session, actor, "contract.accept", "contract", contract.id, now, result=data.result)
    await publish_notice(
        session,
        tender,
        "acceptance",
        f"{tender.title} 履约验收结果公告 (标段 {lot.number})",
        {
            "lot": lot.number,
            "result": data.result,
            "accepted_on": data.accepted_on.isoformat(),
            "report": data.report,
        },
        now,
    )
    return contract


async def complete(session: AsyncSession, actor: Principal, tender_id: uuid.UUID, now: datetime) -> Tender:
    """Close a contracted tender: the trade is complete. A procurement completes once the performance of
    every contract has been accepted (履约验收)."""
    tender = await tender_for_agency(session, actor, tender_id)
    if tender.sector == "procurement" and tender.status == TenderStatus.CONTRACTED:
        unaccepted = await session.scalar(
            select(func.count())
            .select_from(Contract)
            .where(Contract.tender_id == tender.id, Contract.acceptance_result.is_(None))
        )
        if unaccepted:
            raise Conflict(
                f"{unaccepted} contract(s) await the acceptance of their performance (履约验收); record it "
                "before completing the procurement."
            )
    tender.closed_at = now
    await move(session, tender, Action.COMPLETE, actor, now)
    return tender
