"""HTTP routes of framework agreements (框架协议采购, G-01): the purchaser admits suppliers with their caps and
places orders, directly or by mini-competition; admitted suppliers quote and lower their caps; the
agreement and the published orders are public (S-03)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from litestar import Controller, get, post
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.guards import authenticated, public, requires
from accounts.security import Principal
from storage.clock import Clock
from trading import framework_orders, frameworks, frameworks_open, reviews
from trading import framework_schemas as fs
from trading.models import (
    FrameworkAdmission,
    FrameworkAgreement,
    FrameworkApplication,
    FrameworkOrder,
    FrameworkQuote,
    Lot,
)

AGENCY = requires("agency")
BIDDER = requires("bidder")


async def _names(session: AsyncSession, organisations: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    out = {}
    for org_id in {o for o in organisations if o is not None}:
        out[org_id] = (await accounts.get_organisation(session, org_id)).name
    return out


async def framework_read(
    session: AsyncSession, agreement: FrameworkAgreement, admissions: list[FrameworkAdmission]
) -> fs.FrameworkRead:
    names = await _names(session, (a.organisation_id for a in admissions))
    return fs.FrameworkRead(
        tender_id=agreement.tender_id,
        valid_until=agreement.valid_until,
        purchasers=[uuid.UUID(p) for p in agreement.purchasers],
        made_at=agreement.made_at,
        admissions=[admission_read(a, names[a.organisation_id]) for a in admissions],
        kind=agreement.kind,
        allocation=agreement.allocation,
        terms=agreement.terms,
    )


def admission_read(a: FrameworkAdmission, supplier: str) -> fs.AdmissionRead:
    return fs.AdmissionRead(
        id=a.id,
        lot_id=a.lot_id,
        bid_id=a.bid_id,
        organisation_id=a.organisation_id,
        supplier=supplier,
        cap_fen=a.cap_fen,
        admitted_at=a.admitted_at,
        left_at=a.left_at,
    )


def application_read(a: FrameworkApplication) -> fs.ApplicationRead:
    return fs.ApplicationRead(
        id=a.id,
        tender_id=a.tender_id,
        lot_id=a.lot_id,
        organisation_id=a.organisation_id,
        status=a.status,
        reasons=a.reasons,
        applied_at=a.applied_at,
        decided_at=a.decided_at,
    )


async def orders_read(session: AsyncSession, orders: list[FrameworkOrder]) -> list[fs.OrderRead]:
    names = await _names(session, (o.organisation_id for o in orders))
    numbers = {
        lot.id: lot.number
        for lot in await session.scalars(select(Lot).where(Lot.id.in_({o.lot_id for o in orders})))
    }
    return [
        fs.OrderRead(
            id=o.id,
            tender_id=o.tender_id,
            lot_id=o.lot_id,
            lot=numbers[o.lot_id],
            kind=o.kind,
            status=o.status,
            subject=o.subject,
            purchaser_organisation_id=o.purchaser_organisation_id,
            organisation_id=o.organisation_id,
            supplier=names.get(o.organisation_id) if o.organisation_id else None,
            price_fen=o.price_fen,
            created_at=o.created_at,
            closes_at=o.closes_at,
            placed_at=o.placed_at,
        )
        for o in orders
    ]


def quote_read(q: FrameworkQuote) -> fs.QuoteRead:
    return fs.QuoteRead(
        id=q.id,
        order_id=q.order_id,
        organisation_id=q.organisation_id,
        price_fen=q.price_fen,
        quoted_at=q.quoted_at,
    )


class FrameworkController(Controller):
    """A framework agreement: its admitted suppliers and their caps, its orders and mini-competitions."""

    path = "/api/v1/tenders/{tender_id:uuid}/framework"
    tags = ["framework"]

    @post("/admissions", operation_id="admit_framework_suppliers", guards=[AGENCY])
    async def admit(
        self,
        tender_id: uuid.UUID,
        data: fs.AdmissionCreate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> fs.FrameworkRead:
        """Admit several suppliers per lot, each capped at its evaluated price, for the agreement's term (G-01)."""
        agreement = await frameworks.admit(session, principal, tender_id, data, clock.now())
        return await framework_read(session, agreement, await frameworks.admissions_of(session, tender_id))

    @get("", operation_id="get_framework", guards=[public])
    async def agreement(
        self, tender_id: uuid.UUID, session: AsyncSession, request_principal: Principal | None = None
    ) -> fs.FrameworkRead:
        """The framework agreement: its term, purchasers and admitted suppliers with their caps (public, S-03)."""
        agreement, admissions = await frameworks.visible_agreement(session, request_principal, tender_id)
        return await framework_read(session, agreement, admissions)

    @post(
        "/admissions/{admission_id:uuid}/cap",
        operation_id="lower_framework_cap",
        guards=[BIDDER],
        status_code=200,
    )
    async def lower_cap(
        self,
        tender_id: uuid.UUID,
        admission_id: uuid.UUID,
        data: fs.CapLowering,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> fs.AdmissionRead:
        """An admitted supplier lowers its own cap; a cap is never raised (G-01)."""
        row = await frameworks.lower_cap(session, principal, tender_id, admission_id, data, clock.now())
        names = await _names(session, [row.organisation_id])
        return admission_read(row, names[row.organisation_id])

    @post("/orders", operation_id="place_framework_order", guards=[AGENCY])
    async def order(
        self,
        tender_id: uuid.UUID,
        data: fs.DirectOrderCreate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> fs.OrderRead:
        """A direct order to one admitted supplier at no more than its cap (G-01); published."""
        row = await framework_orders.direct_order(session, principal, tender_id, data, clock.now())
        return (await orders_read(session, [row]))[0]

    @get("/orders", operation_id="list_framework_orders", guards=[public])
    async def orders(
        self, tender_id: uuid.UUID, session: AsyncSession, request_principal: Principal | None = None
    ) -> list[fs.OrderRead]:
        """The orders: the published records for everyone; open competitions for the purchasers, those who
        watch and the lot's admitted suppliers."""
        return await orders_read(
            session, await framework_orders.visible_orders(session, request_principal, tender_id)
        )

    @post("/competitions", operation_id="open_framework_competition", guards=[AGENCY])
    async def competition(
        self,
        tender_id: uuid.UUID,
        data: fs.CompetitionCreate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> fs.OrderRead:
        """Open a mini-competition among the lot's admitted suppliers, taking quotes until its close (G-01)."""
        row = await framework_orders.open_competition(session, principal, tender_id, data, clock.now())
        return (await orders_read(session, [row]))[0]

    @post("/competitions/{order_id:uuid}/quotes", operation_id="quote_framework_competition", guards=[BIDDER])
    async def quote(
        self,
        tender_id: uuid.UUID,
        order_id: uuid.UUID,
        data: fs.QuoteCreate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> fs.QuoteRead:
        """Quote once, at no more than the cap, before the close; nobody else sees it until then (W-20)."""
        return quote_read(
            await framework_orders.quote(session, principal, tender_id, order_id, data, clock.now())
        )

    @get("/competitions/{order_id:uuid}/quotes", operation_id="list_framework_quotes", guards=[authenticated])
    async def quotes(
        self, tender_id: uuid.UUID, order_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> list[fs.QuoteRead]:
        """The quotes: before the close each supplier its own only; after it every quote for the purchasers,
        those who watch and the lot's admitted suppliers."""
        return [
            quote_read(q)
            for q in await framework_orders.visible_quotes(session, principal, tender_id, order_id)
        ]

    @post(
        "/competitions/{order_id:uuid}/close",
        operation_id="close_framework_competition",
        guards=[AGENCY],
        status_code=200,
    )
    async def close(
        self,
        tender_id: uuid.UUID,
        order_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> fs.OrderRead:
        """Close a mini-competition at or after its time: the lowest quote wins, the earliest of equals (G-01)."""
        row = await framework_orders.close_competition(session, principal, tender_id, order_id, clock.now())
        return (await orders_read(session, [row]))[0]

    @post("/open", operation_id="open_framework", guards=[AGENCY])
    async def open_framework(
        self,
        tender_id: uuid.UUID,
        data: fs.OpenFrameworkCreate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> fs.FrameworkRead:
        """Write an open framework's call on the draft, fixed prices and terms per lot, and submit it to the
        centre's review; from the approval it is published and suppliers apply to join (G-01)."""
        agreement = await frameworks_open.draft_call(session, principal, tender_id, data, clock.now())
        await reviews.submit(session, principal, tender_id, None, clock.now())
        return await framework_read(session, agreement, [])

    @post("/applications", operation_id="apply_to_framework", guards=[BIDDER])
    async def apply(
        self,
        tender_id: uuid.UUID,
        data: fs.ApplicationCreate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> fs.ApplicationRead:
        """Apply to join a lot of an open framework during its term (G-01)."""
        return application_read(await frameworks_open.apply(session, principal, tender_id, data, clock.now()))

    @get("/applications", operation_id="list_framework_applications", guards=[authenticated])
    async def applications(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> list[fs.ApplicationRead]:
        """The applications: all for the agency that runs the framework, a supplier's own for the supplier."""
        return [
            application_read(a) for a in await frameworks_open.applications(session, principal, tender_id)
        ]

    @post(
        "/applications/{application_id:uuid}/decision",
        operation_id="decide_framework_application",
        guards=[AGENCY],
        status_code=200,
    )
    async def decide(
        self,
        tender_id: uuid.UUID,
        application_id: uuid.UUID,
        data: fs.ApplicationDecision,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> fs.ApplicationRead:
        """Admit the applicant at the lot's fixed price (published), or refuse it with the reasons (G-01)."""
        row = await frameworks_open.decide(session, principal, tender_id, application_id, data, clock.now())
        return application_read(row)

    @post(
        "/admissions/{admission_id:uuid}/leave",
        operation_id="leave_framework",
        guards=[BIDDER],
        status_code=200,
    )
    async def leave(
        self,
        tender_id: uuid.UUID,
        admission_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> fs.AdmissionRead:
        """Leave an open framework: no order goes to you after (published)."""
        row = await frameworks_open.leave(session, principal, tender_id, admission_id, clock.now())
        names = await _names(session, [row.organisation_id])
        return admission_read(row, names[row.organisation_id])

    @post("/rotations", operation_id="place_framework_rotation_order", guards=[AGENCY])
    async def rotation(
        self,
        tender_id: uuid.UUID,
        data: fs.RotationOrderCreate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> fs.OrderRead:
        """An order by rotation (顺序轮候): the next supplier in the lot's turn, at its cap (G-01); published."""
        row = await framework_orders.rotation_order(session, principal, tender_id, data, clock.now())
        return (await orders_read(session, [row]))[0]
