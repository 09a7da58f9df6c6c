"""The second stage of a framework agreement (框架协议采购, 110号令; G-01): the orders while it is in force.

Each order is recorded and published: a direct order (直接选定) to one admitted supplier at no more than its
cap, or a mini-competition (二次竞价) among every admitted supplier of the lot, each quoting once, at no more
than its cap, before the close; nobody but the quoting supplier sees a quote before the close (W-20), and
the purchaser's close, at or after the closing time, gives the order to the lowest quote, the earliest of
equal quotes. Completing the framework ends every mini-competition still open, without an award and with
its quotes unread.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from rules import rotation
from rules.calendar import SHANGHAI, local_date
from storage.problems import (
    Conflict,
    Forbidden,
    NotFound,
    RuleViolation,
    ValidationProblem,
    field_error,
    refusal,
    requested_instant,
)
from trading import framework_schemas as fs
from trading.frameworks import RULE, agreement_of, in_force, is_purchaser, refuse_unless_framework
from trading.models import FrameworkAdmission, FrameworkAgreement, FrameworkOrder, FrameworkQuote, Lot, Tender
from trading.notices import publish_notice
from trading.tenders import load_tender, notify, oversees, refuse_if_suspended, visible_tender

# ---------------------------------------------------------------- second stage: the orders


async def _for_purchaser(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID
) -> tuple[Tender, FrameworkAgreement | None]:
    """The tender (locked) if `actor` may order under it: its agency, or an organisation the agreement
    names as a purchaser; 404 otherwise."""
    tender = await load_tender(session, tender_id, lock=True)
    agreement = await agreement_of(session, tender.id)
    if not is_purchaser(actor, tender, agreement):
        raise NotFound("No such tender.")
    await accounts.require_active(session, actor)
    refuse_if_suspended(tender, "order")
    return tender, agreement


async def _lot_of(session: AsyncSession, tender: Tender, lot_id: uuid.UUID) -> Lot:
    lot = await session.get(Lot, lot_id)
    if lot is None or lot.tender_id != tender.id:
        raise ValidationProblem("No such lot in this tender.", errors=[field_error("lot_id", "unknown")])
    return lot


async def _admission(
    session: AsyncSession, lot_id: uuid.UUID, organisation_id: uuid.UUID
) -> FrameworkAdmission | None:
    return await session.scalar(
        select(FrameworkAdmission).where(
            FrameworkAdmission.lot_id == lot_id,
            FrameworkAdmission.organisation_id == organisation_id,
            FrameworkAdmission.left_at.is_(None),
        )
    )


def _refuse_unless_allocated(agreement: FrameworkAgreement, allocation: str) -> None:
    if agreement.allocation != allocation:
        way = (
            "by rotation (顺序轮候): POST …/framework/rotations"
            if agreement.allocation == "rotation"
            else ("by the purchaser's choice: a direct order or a mini-competition")
        )
        raise RuleViolation(
            RULE, f"The agreement allocates its orders {way}.", allocation=agreement.allocation
        )


def _refuse_above_cap(price_fen: int, admission: FrameworkAdmission) -> None:
    if price_fen > admission.cap_fen:
        raise refusal(
            RULE,
            f"An order under the agreement costs at most the supplier's cap (入围价格), {admission.cap_fen} fen.",
            "price_fen",
            f"at most {admission.cap_fen}",
            cap_fen=admission.cap_fen,
        )


async def direct_order(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: fs.DirectOrderCreate, now: datetime
) -> FrameworkOrder:
    """A direct order (直接选定) to one admitted supplier of a lot at no more than its cap, while the
    agreement is in force (G-01); recorded and published."""
    tender, _agreement = await _for_purchaser(session, actor, tender_id)
    _refuse_unless_allocated(await in_force(session, tender, now), "choice")
    lot = await _lot_of(session, tender, data.lot_id)
    admission = await _admission(session, lot.id, data.organisation_id)
    if admission is None:
        raise refusal(
            RULE,
            "Orders under the agreement go only to the suppliers admitted on the lot.",
            "organisation_id",
            "not admitted on this lot",
        )
    _refuse_above_cap(data.price_fen, admission)
    order = await _new_order(session, actor, tender, lot, "direct", data.subject, now)
    await _place(session, actor, tender, lot, order, admission.organisation_id, data.price_fen, now)
    return order


async def _new_order(
    session: AsyncSession, actor: Principal, tender: Tender, lot: Lot, kind: str, subject: str, now: datetime
) -> FrameworkOrder:
    """A new order of `kind` on the lot, by the purchaser, before its supplier is named."""
    order = FrameworkOrder(
        tender_id=tender.id,
        lot_id=lot.id,
        kind=kind,
        status="open",
        subject=subject,
        purchaser_organisation_id=actor.organisation_id,
        created_at=now,
    )
    session.add(order)
    await session.flush()
    return order


async def rotation_order(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: fs.RotationOrderCreate, now: datetime
) -> FrameworkOrder:
    """An order allocated by rotation (顺序轮候, G-01) where the agreement says so: the platform, not the
    purchaser, names the supplier — the lot's suppliers admitted and not left take turns in the order they were
    admitted (`rules/rotation.py`, replayed by the archive's check) — at its cap. The queue as it stood is published with the order."""
    tender, _agreement = await _for_purchaser(session, actor, tender_id)
    _refuse_unless_allocated(await in_force(session, tender, now), "rotation")
    lot = await _lot_of(session, tender, data.lot_id)
    admissions = list(
        await session.scalars(
            select(FrameworkAdmission).where(
                FrameworkAdmission.lot_id == lot.id, FrameworkAdmission.left_at.is_(None)
            )
        )
    )
    last = await session.scalar(
        select(FrameworkAdmission)
        .join(
            FrameworkOrder,
            (FrameworkOrder.lot_id == FrameworkAdmission.lot_id)
            & (FrameworkOrder.organisation_id == FrameworkAdmission.organisation_id),
        )
        .where(FrameworkOrder.lot_id == lot.id, FrameworkOrder.kind == "rotation")
        .order_by(FrameworkOrder.created_at.desc(), FrameworkOrder.id.desc())
        .limit(1)
    )
    queue = rotation.queue([_member(a) for a in admissions], _member(last) if last else None)
    if not queue:
        raise RuleViolation(RULE, "No supplier is admitted on the lot: nobody to take the order.")
    chosen = next(a for a in admissions if str(a.organisation_id) == queue[0])
    order = await _new_order(session, actor, tender, lot, "rotation", data.subject, now)
    await _place(session, actor, tender, lot, order, chosen.organisation_id, chosen.cap_fen, now, queue=queue)
    return order


def _member(a: FrameworkAdmission) -> rotation.Member:
    return rotation.Member(a.admitted_at, str(a.id), str(a.organisation_id))


async def _place(
    session: AsyncSession,
    actor: Principal,
    tender: Tender,
    lot: Lot,
    order: FrameworkOrder,
    organisation_id: uuid.UUID,
    price_fen: int,
    now: datetime,
    queue: list[str] | None = None,
) -> None:
    """Make the order to the supplier at the price, log it and publish its record (S-03)."""
    order.status, order.organisation_id, order.price_fen, order.placed_at = (
        "placed",
        organisation_id,
        price_fen,
        now,
    )
    await accounts.record(
        session, actor, f"framework.order.{order.kind}", "tender", tender.id, now, order=str(order.id)
    )
    org = await accounts.get_organisation(session, organisation_id)
    await publish_notice(
        session,
        tender,
        "framework_order",
        f"{tender.title} 框架协议采购成交结果公告 (标段 {lot.number})",
        {
            "lot": lot.number,
            "order": str(order.id),
            "kind": order.kind,
            "subject": order.subject,
            "supplier": org.name,
            "credit_code": org.credit_code,
            "price_fen": price_fen,
            "placed_on": local_date(now).isoformat(),
            "rule": RULE,
        }
        | ({"rotation_queue": queue} if queue is not None else {}),
        now,
    )
    await notify(
        session,
        organisation_id,
        tender.id,
        "framework.order",
        f"{tender.code}: an order is placed with you.",
        now,
    )


async def open_competition(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: fs.CompetitionCreate, now: datetime
) -> FrameworkOrder:
    """A mini-competition (二次竞价) on a lot: every admitted supplier is invited to quote once until
    `closes_at`, a future instant within the agreement's term (G-01)."""
    tender, _agreement = await _for_purchaser(session, actor, tender_id)
    agreement = await in_force(session, tender, now)
    _refuse_unless_allocated(agreement, "choice")
    lot = await _lot_of(session, tender, data.lot_id)
    closes_at = requested_instant("closes_at", data.closes_at)
    if closes_at <= now:
        raise ValidationProblem(
            "A mini-competition closes in the future.", errors=[field_error("closes_at", "not in the future")]
        )
    if local_date(closes_at) > agreement.valid_until:
        raise refusal(
            RULE,
            f"A mini-competition closes within the agreement's term, by {agreement.valid_until.isoformat()}.",
            "closes_at",
            f"on or before {agreement.valid_until.isoformat()}",
        )
    order = FrameworkOrder(
        tender_id=tender.id,
        lot_id=lot.id,
        kind="competition",
        status="open",
        subject=data.subject,
        purchaser_organisation_id=actor.organisation_id,
        created_at=now,
        closes_at=closes_at,
    )
    session.add(order)
    await session.flush()
    await accounts.record(
        session, actor, "framework.competition.open", "tender", tender.id, now, order=str(order.id)
    )
    closing = closes_at.astimezone(SHANGHAI).isoformat()
    for admission in await session.scalars(
        select(FrameworkAdmission).where(
            FrameworkAdmission.lot_id == lot.id, FrameworkAdmission.left_at.is_(None)
        )
    ):
        await notify(
            session,
            admission.organisation_id,
            tender.id,
            "framework.competition",
            f"{tender.code}: a mini-competition on lot {lot.number} takes one quote each until {closing}.",
            now,
        )
    return order


async def _competition(session: AsyncSession, tender: Tender, order_id: uuid.UUID) -> FrameworkOrder:
    order = await session.get(FrameworkOrder, order_id, with_for_update=True)
    if order is None or order.tender_id != tender.id or order.kind != "competition":
        raise NotFound("No such mini-competition.")
    return order


async def quote(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    order_id: uuid.UUID,
    data: fs.QuoteCreate,
    now: datetime,
) -> FrameworkQuote:
    """An admitted supplier's one quote in a mini-competition, at no more than its cap, before the close
    (G-01); nobody else sees it until the close (W-20)."""
    tender = await load_tender(session, tender_id, lock=True)
    refuse_unless_framework(tender)
    order = await _competition(session, tender, order_id)
    admission = await _admission(session, order.lot_id, actor.organisation_id)
    if admission is None:
        raise Forbidden("Only the suppliers admitted on the lot quote in its mini-competition.", rule=RULE)
    await accounts.require_active(session, actor)
    assert order.closes_at is not None
    if order.status != "open" or now >= order.closes_at:
        raise RuleViolation(
            RULE,
            f"The mini-competition closed at {order.closes_at.astimezone(SHANGHAI).isoformat()}: no quote after it.",
            closes_at=order.closes_at.isoformat(),
        )
    await in_force(session, tender, now)
    if await session.scalar(
        select(FrameworkQuote.id).where(
            FrameworkQuote.order_id == order.id, FrameworkQuote.organisation_id == actor.organisation_id
        )
    ):
        raise Conflict("Each admitted supplier quotes once in a mini-competition.", rule=RULE)
    _refuse_above_cap(data.price_fen, admission)
    row = FrameworkQuote(
        order_id=order.id, organisation_id=actor.organisation_id, price_fen=data.price_fen, quoted_at=now
    )
    session.add(row)
    await session.flush()
    # the price stays out of the audit trail until the close: the trail is read by those who watch (W-20)
    await accounts.record(session, actor, "framework.quote", "tender", tender.id, now, order=str(order.id))
    return row


async def close_competition(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, order_id: uuid.UUID, now: datetime
) -> FrameworkOrder:
    """Close a mini-competition at or after its closing time (G-01): the lowest quote wins, the earliest of
    equal quotes; the order is recorded and published. Without a quote the competition fails."""
    tender, _agreement = await _for_purchaser(session, actor, tender_id)
    refuse_unless_framework(tender)
    order = await _competition(session, tender, order_id)
    if order.status != "open":
        raise Conflict(f"The mini-competition is already closed ({order.status}).")
    assert order.closes_at is not None
    if now < order.closes_at:
        raise RuleViolation(
            RULE,
            f"The mini-competition takes quotes until {order.closes_at.astimezone(SHANGHAI).isoformat()}; "
            "it is closed at or after that time.",
            closes_at=order.closes_at.isoformat(),
        )
    best = await session.scalar(
        select(FrameworkQuote)
        .where(FrameworkQuote.order_id == order.id)
        .order_by(FrameworkQuote.price_fen, FrameworkQuote.quoted_at, FrameworkQuote.id)
        .limit(1)
    )
    lot = await session.get(Lot, order.lot_id)
    assert lot is not None
    if best is None:
        order.status = "failed"
        await accounts.record(
            session, actor, "framework.competition.fail", "tender", tender.id, now, order=str(order.id)
        )
        await publish_notice(
            session,
            tender,
            "framework_order",
            f"{tender.title} 框架协议二次竞价失败公告 (标段 {lot.number})",
            {
                "lot": lot.number,
                "order": str(order.id),
                "kind": order.kind,
                "subject": order.subject,
                "reason": "no admitted supplier quoted",
                "rule": RULE,
            },
            now,
        )
        return order
    await _place(session, actor, tender, lot, order, best.organisation_id, best.price_fen, now)
    return order


async def visible_orders(
    session: AsyncSession, actor: Principal | None, tender_id: uuid.UUID
) -> list[FrameworkOrder]:
    """The orders under a framework agreement: every one for its purchasers and those who watch; for an
    admitted supplier the published ones, its own and the open competitions of its lots; for everyone
    else the published records."""
    tender = await visible_tender(session, actor, tender_id)
    agreement = await agreement_of(session, tender.id)
    query = (
        select(FrameworkOrder)
        .where(FrameworkOrder.tender_id == tender.id)
        .order_by(FrameworkOrder.created_at)
    )
    orders = list(await session.scalars(query))
    if actor is not None and (oversees(actor, tender) or is_purchaser(actor, tender, agreement)):
        return orders
    lots: set[uuid.UUID] = set()
    if actor is not None:
        lots = set(
            await session.scalars(
                select(FrameworkAdmission.lot_id).where(
                    FrameworkAdmission.tender_id == tender.id,
                    FrameworkAdmission.organisation_id == actor.organisation_id,
                )
            )
        )
    return [o for o in orders if o.status != "open" or o.lot_id in lots]


async def visible_quotes(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, order_id: uuid.UUID
) -> list[FrameworkQuote]:
    """A mini-competition's quotes: before the close each supplier its own and nobody anyone else's
    (W-20), not even the purchaser, and so for ever when the competition was ended unawarded; after it, every quote for the purchasers, those who watch and the lot's
    admitted suppliers."""
    tender = await visible_tender(session, actor, tender_id)
    order = await session.get(FrameworkOrder, order_id)
    if order is None or order.tender_id != tender.id or order.kind != "competition":
        raise NotFound("No such mini-competition.")
    query = (
        select(FrameworkQuote).where(FrameworkQuote.order_id == order.id).order_by(FrameworkQuote.quoted_at)
    )
    entitled = (
        oversees(actor, tender)
        or is_purchaser(actor, tender, await agreement_of(session, tender.id))
        or await _admission(session, order.lot_id, actor.organisation_id) is not None
    )
    if order.status in ("open", "closed") or not entitled:
        query = query.where(FrameworkQuote.organisation_id == actor.organisation_id)
    return list(await session.scalars(query))


async def end_competitions(session: AsyncSession, actor: Principal, tender: Tender, now: datetime) -> None:
    """Completing the framework ends it (G-01): every mini-competition still open is closed without an
    award, its quotes left unread — nobody but each quoting supplier ever sees them (W-20) — and the closure
    recorded and published with no price in it."""
    orders = await session.scalars(
        select(FrameworkOrder)
        .where(FrameworkOrder.tender_id == tender.id, FrameworkOrder.status == "open")
        .order_by(FrameworkOrder.created_at, FrameworkOrder.id)
        .with_for_update()
    )
    for order in orders:
        order.status = "closed"
        await accounts.record(
            session, actor, "framework.competition.end", "tender", tender.id, now, order=str(order.id)
        )
        lot = await session.get(Lot, order.lot_id)
        assert lot is not None
        await publish_notice(
            session,
            tender,
            "framework_order",
            f"{tender.title} 框架协议二次竞价终止公告 (标段 {lot.number})",
            {
                "lot": lot.number,
                "order": str(order.id),
                "kind": order.kind,
                "subject": order.subject,
                "reason": "the framework agreement was completed before the competition closed; no award",
                "rule": RULE,
            },
            now,
        )
