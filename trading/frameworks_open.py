"""Open framework agreements (开放式框架协议, 财政部令第110号; G-01).

Where a closed framework admits its suppliers from a competitive first stage, an open one has none: the
purchaser publishes the fixed price (the cap of every order) and the terms of each lot, the agreement's
term and how its orders are allocated; the call passes the centre's notice review like any notice, and the
agreement is in force from the approval. During the term any
supplier may apply to join a lot; the purchaser — the agency that runs the framework, never the applicant —
admits it at the lot's fixed price, published, or refuses it with its reasons. An admitted supplier may
leave the framework; no order goes to it after. Joining a closed framework, joining after the term, and an
application decided by anyone but the purchaser are refused.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from rules.calendar import local_date
from storage.problems import Conflict, NotFound, RuleViolation, ValidationProblem, field_error
from trading import framework_schemas as fs
from trading import projects
from trading.frameworks import (
    RULE,
    agreement_of,
    check_term_and_purchasers,
    in_force,
    refuse_unless_framework,
)
from trading.lifecycle import Action, TenderStatus
from trading.models import FrameworkAdmission, FrameworkAgreement, FrameworkApplication, Lot, Tender
from trading.notices import publish_notice
from trading.tenders import can_manage, last_review, load_tender, lots_of, move, notify, tender_for_agency


async def draft_call(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: fs.OpenFrameworkCreate, now: datetime
) -> FrameworkAgreement:
    """Write an open framework's call on a framework tender still a draft of an accepted project (G-01): the
    fixed price, at most the lot's budget, and the terms of every lot; the term; the purchasers; the
    allocation. The call reaches the public board only through the centre's review (公告审核), like any
    notice: the agreement is in force, with no supplier yet, from the approval. A refused call is
    rewritten the same way and submitted again."""
    tender = await tender_for_agency(session, actor, tender_id)
    refuse_unless_framework(tender)
    if tender.status != TenderStatus.DRAFT:
        raise Conflict(
            f"An open framework is made from its draft, with no first stage; the tender is {tender.status}.",
            rule=RULE,
        )
    review = await last_review(session, tender.id)
    if review is not None and review.status == "pending":
        raise Conflict("The draft's notice awaits the centre's review: it is published by that, or refused.")
    agreement = await agreement_of(session, tender.id)
    if agreement is None:
        agreement = FrameworkAgreement(tender_id=tender.id, made_at=now, kind="open")
        session.add(agreement)
    agreement.valid_until = data.valid_until
    agreement.purchasers = sorted({str(p) for p in data.purchasers})
    agreement.allocation = data.allocation
    agreement.terms = {str(e.lot_id): {"price_fen": e.price_fen, "terms": e.terms} for e in data.lots}
    agreement.made_at = now
    await check_call(session, tender, agreement, now, lot_order=[e.lot_id for e in data.lots])
    await session.flush()
    return agreement


async def draft_call_of(session: AsyncSession, tender: Tender) -> FrameworkAgreement | None:
    """The open framework's call written on this draft and not yet published, if there is one."""
    if tender.status != TenderStatus.DRAFT:
        return None
    agreement = await agreement_of(session, tender.id)
    return agreement if agreement is not None and agreement.kind == "open" else None


async def check_call(
    session: AsyncSession,
    tender: Tender,
    agreement: FrameworkAgreement,
    now: datetime,
    lot_order: list[uuid.UUID] | None = None,
) -> None:
    """Every check an open framework's call must pass at `now`: an accepted project, the term and the
    purchasers (G-01), and a fixed price, at most its budget, for every open lot once."""
    profile = refuse_unless_framework(tender)
    await projects.require_accepted(session, tender)
    purchasers = [uuid.UUID(p) for p in agreement.purchasers]
    await check_term_and_purchasers(session, profile, agreement.valid_until, purchasers, local_date(now))
    lots = {lot.id: lot for lot in await lots_of(session, tender.id) if lot.status == "open"}
    terms = agreement.terms or {}
    given = lot_order if lot_order is not None else [uuid.UUID(k) for k in terms]
    if set(given) != set(lots) or len(given) != len(lots):
        raise ValidationProblem(
            "Give the fixed price and terms of every open lot, each lot once.",
            errors=[field_error("lots", "missing or repeated lots")],
        )
    for i, lot_id in enumerate(given):
        budget = lots[lot_id].estimated_price_fen
        price = terms[str(lot_id)]["price_fen"]
        if budget is not None and price > budget:
            raise ValidationProblem(
                f"A lot's fixed price is at most its budget, {budget} fen.",
                errors=[field_error(f"lots[{i}].price_fen", f"at most {budget}")],
            )


async def put_in_force(
    session: AsyncSession, tender: Tender, agreement: FrameworkAgreement, actor: Principal, now: datetime
) -> None:
    """The centre approved the call: every check runs again at this instant, the call (征集公告) is
    published and the agreement is in force from now, with no supplier yet."""
    await check_call(session, tender, agreement, now)
    lots = {lot.id: lot for lot in await lots_of(session, tender.id)}
    terms = agreement.terms or {}
    agreement.made_at = now
    tender.awarded_at = now
    await move(
        session, tender, Action.AWARD, actor, now, valid_until=agreement.valid_until.isoformat(), kind="open"
    )
    await publish_notice(
        session,
        tender,
        "framework_call",
        f"{tender.title} 开放式框架协议征集公告",
        {
            "lots": sorted(
                (
                    {"lot": lots[uuid.UUID(k)].number, "price_fen": v["price_fen"], "terms": v["terms"]}
                    for k, v in terms.items()
                ),
                key=lambda entry: entry["lot"],
            ),
            "valid_until": agreement.valid_until.isoformat(),
            "allocation": agreement.allocation,
            "rule": RULE,
        },
        now,
    )


async def _open_in_force(session: AsyncSession, tender: Tender, now: datetime) -> FrameworkAgreement:
    agreement = await in_force(session, tender, now)
    if agreement.kind != "open":
        raise RuleViolation(
            RULE,
            "A closed framework admits its suppliers from its first stage only: nobody joins it later.",
            kind=agreement.kind,
        )
    return agreement


async def apply(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: fs.ApplicationCreate, now: datetime
) -> FrameworkApplication:
    """A supplier applies to join a lot of an open framework during its term (G-01), once while pending and
    not while admitted."""
    tender = await load_tender(session, tender_id, lock=True)
    refuse_unless_framework(tender)
    await _open_in_force(session, tender, now)
    await accounts.require_active(session, actor)
    lot = await session.get(Lot, data.lot_id)
    if lot is None or lot.tender_id != tender.id:
        raise ValidationProblem("No such lot in this framework.", errors=[field_error("lot_id", "unknown")])
    if await session.scalar(
        select(FrameworkAdmission.id).where(
            FrameworkAdmission.lot_id == lot.id, FrameworkAdmission.organisation_id == actor.organisation_id
        )
    ):
        raise Conflict("You are admitted on this lot already, or left it: one admission per lot.", rule=RULE)
    if await session.scalar(
        select(FrameworkApplication.id).where(
            FrameworkApplication.lot_id == lot.id,
            FrameworkApplication.organisation_id == actor.organisation_id,
            FrameworkApplication.status == "pending",
        )
    ):
        raise Conflict("Your application to this lot awaits the purchaser's decision.")
    row = FrameworkApplication(
        tender_id=tender.id,
        lot_id=lot.id,
        organisation_id=actor.organisation_id,
        status="pending",
        applied_at=now,
    )
    session.add(row)
    await session.flush()
    await accounts.record(
        session, actor, "framework.apply", "tender", tender.id, now, application=str(row.id)
    )
    await notify(
        session,
        tender.agency_organisation_id,
        tender.id,
        "framework.application",
        f"{tender.code}: a supplier applies to join lot {lot.number}.",
        now,
    )
    return row


async def decide(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    application_id: uuid.UUID,
    data: fs.ApplicationDecision,
    now: datetime,
) -> FrameworkApplication:
    """The purchaser admits an applicant at the lot's fixed price, published (入围公告), or refuses it with
    the reasons, told to the applicant; only the agency that runs the framework decides (G-01)."""
    tender = await tender_for_agency(session, actor, tender_id)
    agreement = await _open_in_force(session, tender, now)
    row = await session.get(FrameworkApplication, application_id, with_for_update=True)
    if row is None or row.tender_id != tender.id:
        raise NotFound("No such application.")
    if row.status != "pending":
        raise Conflict(f"The application was already {row.status}.", status_now=row.status)
    if data.decision == "refused" and not data.reasons:
        raise ValidationProblem(
            "A refusal gives the applicant its reasons.", errors=[field_error("reasons", "required")]
        )
    row.status, row.reasons, row.decided_at = data.decision, data.reasons, now
    lot = await session.get(Lot, row.lot_id)
    assert lot is not None and agreement.terms is not None
    org = await accounts.get_organisation(session, row.organisation_id)
    await accounts.record(
        session,
        actor,
        f"framework.application.{data.decision}",
        "tender",
        tender.id,
        now,
        application=str(row.id),
    )
    if data.decision == "refused":
        await notify(
            session,
            row.organisation_id,
            tender.id,
            "framework.refused",
            f"{tender.code}: your application to lot {lot.number} is refused: {data.reasons}",
            now,
        )
        return row
    price = int(agreement.terms[str(lot.id)]["price_fen"])
    session.add(
        FrameworkAdmission(
            tender_id=tender.id, lot_id=lot.id, bid_id=None, organisation_id=row.organisation_id, cap_fen=price,
            admitted_at=now,
        )
    )  # fmt: skip
    await session.flush()
    await publish_notice(
        session,
        tender,
        "framework_admission",
        f"{tender.title} 开放式框架协议入围公告 (标段 {lot.number})",
        {
            "lot": lot.number,
            "supplier": org.name,
            "credit_code": org.credit_code,
            "cap_fen": price,
            "rule": RULE,
        },
        now,
    )
    await notify(
        session,
        row.organisation_id,
        tender.id,
        "framework.admitted",
        f"{tender.code}: you are admitted.",
        now,
    )
    return row


async def leave(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, admission_id: uuid.UUID, now: datetime
) -> FrameworkAdmission:
    """An admitted supplier leaves an open framework (G-01): no order goes to it after; its leaving is
    published. A closed framework's suppliers stay bound for the term."""
    tender = await load_tender(session, tender_id, lock=True)
    row = await session.get(FrameworkAdmission, admission_id, with_for_update=True)
    if row is None or row.tender_id != tender.id or row.organisation_id != actor.organisation_id:
        raise NotFound("No such admission of yours.")
    await accounts.require_active(session, actor)
    await _open_in_force(session, tender, now)
    if row.left_at is not None:
        raise Conflict("You left this framework already.")
    row.left_at = now
    await accounts.record(session, actor, "framework.leave", "tender", tender.id, now, admission=str(row.id))
    lot = await session.get(Lot, row.lot_id)
    org = await accounts.get_organisation(session, row.organisation_id)
    assert lot is not None
    await publish_notice(
        session,
        tender,
        "framework_admission",
        f"{tender.title} 开放式框架协议供应商退出公告 (标段 {lot.number})",
        {"lot": lot.number, "supplier": org.name, "credit_code": org.credit_code, "left": True, "rule": RULE},
        now,
    )
    return row


async def applications(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID
) -> list[FrameworkApplication]:
    """The applications to an open framework: all of them for the agency that runs it, a supplier's own
    for the supplier; nobody else's (an applicant refused is not named in public)."""
    tender = await load_tender(session, tender_id)
    agreement = await agreement_of(session, tender.id)
    if agreement is None or agreement.kind != "open":
        raise NotFound("No open framework on this tender.")
    query = (
        select(FrameworkApplication)
        .where(FrameworkApplication.tender_id == tender.id)
        .order_by(FrameworkApplication.applied_at, FrameworkApplication.id)
    )
    if not can_manage(actor, tender):
        query = query.where(FrameworkApplication.organisation_id == actor.organisation_id)
    return list(await session.scalars(query))
