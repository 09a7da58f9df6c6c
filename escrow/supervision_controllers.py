"""HTTP routes of supervision: forfeiture proposals and supervisors' decisions, refund obligations with
their S-01 lights (regulators see those too), and what auditors read of a tender's or a bidder's deposits."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from litestar import Controller, Response, get, post
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.security import Principal
from escrow import audit, forfeiture, refunds, responses, schemas, subaccounts
from escrow.controllers import LIGHTS, READERS, SUPERVISOR, Format, embargo_for, json_or_file, sealed_refusal
from escrow.models import Deposit
from escrow.schemas import ObligationRow
from rules.calendar import local_date
from rules.schedule import working_calendar
from storage.bounds import MAX_FILTER_LENGTH
from storage.clock import Clock
from storage.signing import LogSigner


class SupervisionController(Controller):
    """Forfeiture decisions, refund obligations with their lights, and the auditors' views and exports."""

    path = "/api/v1/escrow"
    tags = ["escrow"]

    @get("/forfeitures", operation_id="list_forfeitures", guards=[READERS])
    async def forfeitures(
        self,
        session: AsyncSession,
        principal: Principal,
        sealed_tenders: frozenset[uuid.UUID],
        status: Annotated[str | None, Parameter(query="status", max_length=MAX_FILTER_LENGTH)] = None,
    ) -> list[responses.ForfeitureRead]:
        """Deposit forfeitures (W-06), newest first: proposed, decided or refused, with their grounds."""
        embargo = await embargo_for(session, principal, sealed_tenders)
        return [
            responses.forfeiture(f)
            for f in await forfeiture.forfeitures(session, status)
            if not embargo.hides(f.deposit_id)
        ]

    @post(
        "/forfeitures/{forfeiture_id:uuid}/decision",
        operation_id="decide_forfeiture",
        guards=[SUPERVISOR],
        status_code=200,
    )
    async def decide(
        self,
        session: AsyncSession,
        principal: Principal,
        forfeiture_id: uuid.UUID,
        data: schemas.Decision,
        clock: Clock,
        signer: LogSigner,
    ) -> responses.ForfeitureRead:
        """Approve (the deposit is kept) or reject (it is refunded) a proposed forfeiture."""
        cal = await working_calendar(session)
        row = await forfeiture.decide_forfeiture(
            session, principal, forfeiture_id, data.approve, data.note, cal, clock.now(), signer=signer
        )
        return responses.forfeiture(row)

    @get(
        "/obligations",
        operation_id="list_obligations",
        guards=[LIGHTS],
        operation_class=responses.ExportOperation,
    )
    async def obligations(
        self,
        session: AsyncSession,
        principal: Principal,
        sealed_tenders: frozenset[uuid.UUID],
        clock: Clock,
        tender_id: Annotated[uuid.UUID | None, Parameter(query="tender_id")] = None,
        light: Annotated[Literal["green", "yellow", "red"] | None, Parameter(query="light")] = None,
        fmt: Annotated[Format, Parameter(query="format")] = "json",
    ) -> list[ObligationRow] | Response[bytes]:
        """Refund obligations with their due dates and supervision lights (S-01). Outside the centre, those
        of tenders whose bids are sealed keep their lights but not whose they are, and one such tender's
        cannot be asked for (W-20)."""
        cal = await working_calendar(session)
        embargo = await embargo_for(session, principal, sealed_tenders)
        if tender_id in embargo.tenders:
            raise sealed_refusal("The refunds of this tender")
        rows = embargo.lights(
            await audit.obligation_rows(
                session,
                await refunds.obligations_list(session, tender_id=tender_id),
                cal,
                local_date(clock.now()),
            )
        )
        if light:
            rows = [r for r in rows if r["light"] == light]
        return await json_or_file(fmt, "obligations", [("Obligations", audit.OBLIGATION_COLUMNS, rows)], rows)

    @get(
        "/audit/overdue",
        operation_id="audit_overdue",
        guards=[LIGHTS],
        operation_class=responses.ExportOperation,
    )
    async def overdue(
        self,
        session: AsyncSession,
        principal: Principal,
        sealed_tenders: frozenset[uuid.UUID],
        clock: Clock,
        fmt: Annotated[Format, Parameter(query="format")] = "json",
    ) -> list[ObligationRow] | Response[bytes]:
        """Refunds overdue now, and those paid after their due day."""
        cal = await working_calendar(session)
        rows = (await embargo_for(session, principal, sealed_tenders)).lights(
            await audit.overdue_rows(session, cal, local_date(clock.now()))
        )
        return await json_or_file(
            fmt, "overdue", [("Overdue and late", audit.OBLIGATION_COLUMNS, rows)], rows
        )

    @get(
        "/audit/tenders/{tender_id:uuid}",
        operation_id="audit_tender",
        guards=[READERS],
        operation_class=responses.ExportOperation,
    )
    async def tender(
        self,
        session: AsyncSession,
        principal: Principal,
        sealed_tenders: frozenset[uuid.UUID],
        clock: Clock,
        tender_id: uuid.UUID,
        fmt: Annotated[Format, Parameter(query="format")] = "json",
    ) -> responses.DepositsAndObligations | Response[bytes]:
        """One tender's deposits and refund obligations (outside the centre, after its deadline, W-20)."""
        if tender_id in (await embargo_for(session, principal, sealed_tenders)).tenders:
            raise sealed_refusal("The deposits of this tender")
        deposits = await subaccounts.deposits_of_tender(session, tender_id)
        cal = await working_calendar(session)
        drows = await audit.deposit_rows(session, deposits)
        orows = await audit.obligation_rows(
            session,
            await refunds.obligations_list(session, tender_id=tender_id),
            cal,
            local_date(clock.now()),
        )
        return await json_or_file(
            fmt,
            f"tender-{tender_id}",
            [("Deposits", audit.DEPOSIT_COLUMNS, drows), ("Obligations", audit.OBLIGATION_COLUMNS, orows)],
            responses.DepositsAndObligations(deposits=drows, obligations=orows),
        )

    @get(
        "/audit/bidders/{organisation_id:uuid}",
        operation_id="audit_bidder",
        guards=[READERS],
        operation_class=responses.ExportOperation,
    )
    async def bidder(
        self,
        session: AsyncSession,
        principal: Principal,
        sealed_tenders: frozenset[uuid.UUID],
        clock: Clock,
        organisation_id: uuid.UUID,
        fmt: Annotated[Format, Parameter(query="format")] = "json",
    ) -> responses.DepositsAndObligations | Response[bytes]:
        """One bidder's deposits across tenders, and its refund obligations (outside the centre, not those
        of tenders whose bids are sealed, W-20)."""
        embargo = await embargo_for(session, principal, sealed_tenders)
        deposits = [
            d
            for d in await session.scalars(
                select(Deposit).where(Deposit.organisation_id == organisation_id).order_by(Deposit.opened_at)
            )
            if not embargo.hides(d.id)
        ]
        cal = await working_calendar(session)
        drows = await audit.deposit_rows(session, deposits)
        orows = embargo.rows(
            await audit.obligation_rows(
                session,
                await refunds.obligations_list(session, organisation_id=organisation_id),
                cal,
                local_date(clock.now()),
            )
        )
        return await json_or_file(
            fmt,
            f"bidder-{organisation_id}",
            [("Deposits", audit.DEPOSIT_COLUMNS, drows), ("Obligations", audit.OBLIGATION_COLUMNS, orows)],
            responses.DepositsAndObligations(deposits=drows, obligations=orows),
        )
