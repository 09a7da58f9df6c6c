"""Framework agreements (框架协议采购, 110号令; G-01): a closed framework on the procedure engine.

The first stage is an open call for suppliers walked as open tendering (G-02: 20 days to the deadline;
opening, the panel, the purchaser's decision). Where an ordinary procurement names one winner per lot, the
purchaser's decision here admits several suppliers per lot (入围), each at its own capped price (入围价格):
its evaluated bid price, the most it may charge in an order, which it may lower and never raise. The
decision fixes the agreement's term and the other organisations it names as purchasers, and the admitted
suppliers are published in the result notice.

The second stage, the orders while the agreement is in force, is in framework_orders.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from escrow import refunds
from rules.calendar import local_date
from rules.profiles import ProcedureProfile, profile_for
from rules.schedule import working_calendar
from storage.problems import (
    Conflict,
    NotFound,
    RuleViolation,
    ValidationProblem,
    field_error,
    refusal,
)
from trading import framework_schemas as fs
from trading.lifecycle import Action, TenderStatus
from trading.models import (
    Bid,
    FrameworkAdmission,
    FrameworkAgreement,
    Lot,
    Report,
    Tender,
)
from trading.notices import notify_holders, publish_notice
from trading.tenders import (
    can_manage,
    load_tender,
    lots_of,
    move,
    refuse_if_suspended,
    tender_for_agency,
    visible_tender,
)

RULE = "G-01"


def is_framework(profile: ProcedureProfile) -> bool:
    """Whether the procedure makes a framework agreement (its profile bounds the agreement's term)."""
    return profile.framework_term_max_days is not None


def refuse_unless_framework(tender: Tender) -> ProcedureProfile:
    profile = profile_for(tender.sector, tender.method)
    if not is_framework(profile):
        raise Conflict(
            f"{tender.code} is a {profile.title}, not a framework agreement: it has no admitted suppliers and "
            "no orders; its lots are awarded and contracted.",
            rule=RULE,
        )
    return profile


async def agreement_of(session: AsyncSession, tender_id: uuid.UUID) -> FrameworkAgreement | None:
    """The framework agreement made on the tender, if its suppliers are admitted."""
    return await session.scalar(select(FrameworkAgreement).where(FrameworkAgreement.tender_id == tender_id))


async def admissions_of(session: AsyncSession, tender_id: uuid.UUID) -> list[FrameworkAdmission]:
    """The admitted suppliers of a framework tender, by lot and then cap."""
    return list(
        await session.scalars(
            select(FrameworkAdmission)
            .where(FrameworkAdmission.tender_id == tender_id)
            .order_by(FrameworkAdmission.lot_id, FrameworkAdmission.cap_fen, FrameworkAdmission.admitted_at)
        )
    )


def is_purchaser(actor: Principal, tender: Tender, agreement: FrameworkAgreement | None) -> bool:
    """Whether `actor` may order under the agreement: the agency that runs it, or an agency of an
    organisation the agreement names as a purchaser."""
    if can_manage(actor, tender):
        return True
    return (
        agreement is not None and actor.has("agency") and str(actor.organisation_id) in agreement.purchasers
    )


# ---------------------------------------------------------------- first stage: the admission


async def admit(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: fs.AdmissionCreate, now: datetime
) -> FrameworkAgreement:
    """The purchaser's decision on a framework tender (G-01): on every open lot, the suppliers it admits
    from the committee's candidates, each capped at its evaluated bid price; the agreement's term, at most
    the profile's from today; the other organisations it names as purchasers. The result notice lists the
    admitted suppliers and their caps. The agreement, made with the admission, is the admitted suppliers'
    contract: every deposit of the lot falls due (G-04)."""
    tender = await tender_for_agency(session, actor, tender_id)
    profile = refuse_unless_framework(tender)
    refuse_if_suspended(tender, "admit suppliers")
    if tender.status != TenderStatus.DECISION:
        raise Conflict(f"Suppliers are admitted on the evaluation report; the tender is {tender.status}.")
    today = local_date(now)
    await check_term_and_purchasers(session, profile, data.valid_until, data.purchasers, today)
    lots = {lot.id: lot for lot in await lots_of(session, tender.id) if lot.status == "open"}
    chosen = {entry.lot_id: entry.bid_ids for entry in data.lots}
    if set(chosen) != set(lots) or len(chosen) != len(data.lots):
        raise ValidationProblem(
            "Name the admitted suppliers of every open lot, each lot once.",
            errors=[field_error("lots", "missing or repeated lots")],
        )
    ranking = await _report_ranking(session, tender)
    results = []
    for i, (lot_id, bid_ids) in enumerate(chosen.items()):
        results.append(
            await _admit_lot(session, tender, lots[lot_id], bid_ids, ranking.get(lot_id, []), i, now)
        )
    agreement = FrameworkAgreement(
        tender_id=tender.id,
        valid_until=data.valid_until,
        purchasers=sorted({str(p) for p in data.purchasers}),
        made_at=now,
        kind="closed",
        allocation=data.allocation,
    )
    session.add(agreement)
    await session.flush()
    tender.awarded_at = now
    await move(session, tender, Action.AWARD, actor, now, valid_until=data.valid_until.isoformat())
    await publish_notice(
        session,
        tender,
        "result",
        f"{tender.title} 入围结果公告",
        {
            "lots": results,
            "valid_until": data.valid_until.isoformat(),
            "allocation": data.allocation,
            "rule": RULE,
            "procedure": profile.title,
        },
        now,
    )
    cal = await working_calendar(session)
    for lot_id in chosen:
        await refunds.on_lot_settled(
            session, lot_id, profile.contract_refund_rule, "contract_signed", today, cal, now
        )
    await notify_holders(
        session, tender, "tender.awarded", f"{tender.code}: the admitted suppliers have been published.", now
    )
    return agreement


async def check_term_and_purchasers(
    session: AsyncSession,
    profile: ProcedureProfile,
    valid_until: date,
    purchasers: Sequence[uuid.UUID],
    today: date,
) -> None:
    """The agreement's term runs from tomorrow to at most the profile's days (G-01); every purchaser it names
    is an organisation of the platform."""
    term = profile.framework_term_max_days
    assert term is not None
    if not today < valid_until or (valid_until - today).days > term:
        raise refusal(
            profile.rule("framework_term_max_days"),
            f"The agreement's term runs from tomorrow to at most {term} days from today, {today.isoformat()}.",
            "valid_until",
            f"after {today.isoformat()}, at most {term} days on",
        )
    for i, org_id in enumerate(purchasers):
        try:
            await accounts.get_organisation(session, org_id)
        except NotFound:
            raise ValidationProblem(
                "A purchaser the agreement names must be an organisation of the platform.",
                errors=[field_error(f"purchasers[{i}]", "unknown organisation")],
            ) from None


async def _admit_lot(
    session: AsyncSession,
    tender: Tender,
    lot: Lot,
    bid_ids: Sequence[uuid.UUID],
    candidates: Sequence[uuid.UUID],
    i: int,
    now: datetime,
) -> dict[str, object]:
    """Admit the bids of one lot, each a distinct candidate of the committee's report, at its price."""
    if len(set(bid_ids)) != len(bid_ids):
        raise ValidationProblem(
            "Each bid is admitted once.", errors=[field_error(f"lots[{i}].bid_ids", "repeated bid")]
        )
    admitted = []
    for j, bid_id in enumerate(bid_ids):
        bid = await session.get(Bid, bid_id)
        if bid_id not in candidates or bid is None or bid.declared_price_fen is None:
            raise ValidationProblem(
                "An admitted supplier must be one of the lot's candidates in the committee's report.",
                errors=[field_error(f"lots[{i}].bid_ids[{j}]", "not a candidate")],
            )
        session.add(
            FrameworkAdmission(
                tender_id=tender.id,
                lot_id=lot.id,
                bid_id=bid.id,
                organisation_id=bid.organisation_id,
                cap_fen=bid.declared_price_fen,
                admitted_at=now,
            )
        )
        org = await accounts.get_organisation(session, bid.organisation_id)
        admitted.append(
            {"supplier": org.name, "credit_code": org.credit_code, "cap_fen": bid.declared_price_fen}
        )
    lot.status = "awarded"
    await session.flush()
    return {"lot": lot.number, "budget_fen": lot.estimated_price_fen, "admitted": admitted}


async def _report_ranking(session: AsyncSession, tender: Tender) -> dict[uuid.UUID, list[uuid.UUID]]:
    report = await session.scalar(select(Report).where(Report.tender_id == tender.id))
    if report is None:
        raise Conflict("The committee's report is not in.")
    return {uuid.UUID(c["lot_id"]): [uuid.UUID(b) for b in c["ranking"]] for c in report.candidates}


async def lower_cap(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    admission_id: uuid.UUID,
    data: fs.CapLowering,
    now: datetime,
) -> FrameworkAdmission:
    """An admitted supplier lowers its own cap while the agreement is in force; a cap is never raised
    (G-01), so no order can ever cost more than the price it was admitted at. The lower cap is published."""
    tender = await load_tender(session, tender_id, lock=True)
    row = await session.get(FrameworkAdmission, admission_id, with_for_update=True)
    if row is None or row.tender_id != tender.id or row.organisation_id != actor.organisation_id:
        raise NotFound("No such admission of yours.")
    await accounts.require_active(session, actor)
    if data.cap_fen >= row.cap_fen:
        raise refusal(
            RULE,
            f"A cap may only be lowered, never raised or kept: yours is {row.cap_fen} fen.",
            "cap_fen",
            f"below {row.cap_fen}",
            cap_fen=row.cap_fen,
        )
    await in_force(session, tender, now)
    before, row.cap_fen = row.cap_fen, data.cap_fen
    await accounts.record(
        session, actor, "framework.lower_cap", "tender", tender.id, now, before=before, after=data.cap_fen
    )
    lot = await session.get(Lot, row.lot_id)
    org = await accounts.get_organisation(session, row.organisation_id)
    assert lot is not None
    await publish_notice(
        session,
        tender,
        "framework_cap",
        f"{tender.title} 入围价格调整公告 (标段 {lot.number})",
        {"lot": lot.number, "supplier": org.name, "credit_code": org.credit_code, "cap_fen": data.cap_fen},
        now,
    )
    return row


async def in_force(session: AsyncSession, tender: Tender, now: datetime) -> FrameworkAgreement:
    """The agreement of a framework tender, refused unless it is in force at `now` (G-01)."""
    refuse_unless_framework(tender)
    agreement = await agreement_of(session, tender.id)
    if agreement is None or tender.status != TenderStatus.AWARDED:
        raise Conflict(
            f"Orders follow the admission of suppliers while the agreement is in force; the tender is "
            f"{tender.status}.",
            rule=RULE,
        )
    if local_date(now) > agreement.valid_until:
        raise RuleViolation(
            RULE,
            f"The agreement's term ended on {agreement.valid_until.isoformat()}: no order, quote or price "
            "change under it any more.",
            valid_until=agreement.valid_until.isoformat(),
        )
    return agreement


# ---------------------------------------------------------------- reading


async def visible_agreement(
    session: AsyncSession, actor: Principal | None, tender_id: uuid.UUID
) -> tuple[FrameworkAgreement, list[FrameworkAdmission]]:
    """The agreement and its admitted suppliers, public once the result notice is out (S-03)."""
    tender = await visible_tender(session, actor, tender_id)
    agreement = await agreement_of(session, tender.id)
    if agreement is None:
        raise NotFound("No framework agreement on this tender.")
    return agreement, await admissions_of(session, tender.id)
