"""HTTP routes of the centre's bank side: statements and the bank's signed notifications taken in, suspense
matched or returned, guarantees decided, interest rates, refund batches with their payment files and the
bank's results, and bank line conflicts."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import requires
from accounts.security import Principal
from escrow import audit, batches, conflicts, intake, responses, schemas, subaccounts
from escrow.controllers import (
    CENTRE,
    READERS,
    STATEMENT_MAX_BYTES,
    Format,
    bank_signed,
    embargo_for,
    file_answer,
    json_or_file,
    sealed_refusal,
)
from escrow.models import Guarantee
from escrow.schemas import StatementLineRow
from rules.schedule import working_calendar
from storage.clock import Clock
from storage.objects import ObjectStore
from storage.settings import Settings
from storage.signing import LogSigner


class BankController(Controller):
    """The centre's bank intake: statements, suspense, guarantees' verification, rates, batches, results."""

    path = "/api/v1/escrow"
    tags = ["escrow"]

    @post(
        "/statements",
        operation_id="import_statement",
        guards=[CENTRE],
        request_max_body_size=STATEMENT_MAX_BYTES,
        status_code=200,
    )
    async def import_statement(
        self,
        request: Request[Any, Any, Any],
        session: AsyncSession,
        principal: Principal,
        object_store: ObjectStore,
        clock: Clock,
        signer: LogSigner,
        fmt: Annotated[Literal["camt053", "csv"], Parameter(query="format")] = "camt053",
    ) -> responses.StatementImported:
        """Import a bank statement (camt.053 XML or the CSV layout) sent as the request body; importing
        the same file again changes nothing; a known reference the bank now reports otherwise is a
        conflict (`conflicting`, listed under /conflicts)."""
        result = await intake.import_statement(
            session, object_store, principal, await request.body(), fmt, clock.now(), signer=signer
        )
        return {"statement_id": str(result.statement_id), "replay": result.replay, **result.summary()}

    @get("/statements", operation_id="list_statements", guards=[READERS])
    async def statements(self, session: AsyncSession) -> list[responses.StatementRead]:
        """Every statement and notification imported, newest first."""
        return [responses.statement(s) for s in await intake.statements(session)]

    @get(
        "/statements/{statement_id:uuid}",
        operation_id="statement_lines",
        guards=[READERS],
        operation_class=responses.ExportOperation,
    )
    async def statement(
        self,
        session: AsyncSession,
        principal: Principal,
        sealed_tenders: frozenset[uuid.UUID],
        statement_id: uuid.UUID,
        fmt: Annotated[Format, Parameter(query="format")] = "json",
    ) -> list[StatementLineRow] | Response[bytes]:
        """The lines a statement brought, and where each went (outside the centre, without the lines paid
        into the deposits of tenders whose bids are sealed, W-20)."""
        lines = await intake.statement_lines(session, statement_id)
        rows = (await embargo_for(session, principal, sealed_tenders)).rows(audit.line_rows(lines))
        return await json_or_file(
            fmt, f"statement-{statement_id}", [("Lines", audit.LINE_COLUMNS, rows)], rows
        )

    @get("/suspense", operation_id="list_suspense", guards=[READERS])
    async def suspense(self, session: AsyncSession) -> list[responses.BankLineRead]:
        """Lines waiting for an officer: unmatched or wrong-amount credits, and debits nobody instructed."""
        return [responses.bank_line(x) for x in await intake.suspense_lines(session)]

    @post("/lines/{line_id:uuid}/match", operation_id="match_line", guards=[CENTRE], status_code=200)
    async def match(
        self,
        session: AsyncSession,
        principal: Principal,
        line_id: uuid.UUID,
        data: schemas.MatchIn,
        clock: Clock,
        signer: LogSigner,
    ) -> responses.BankLineRead:
        """Match a suspense line to a deposit sub-account."""
        line = await intake.match_suspense(
            session, principal, line_id, data.deposit_id, data.note, clock.now(), signer=signer
        )
        return responses.bank_line(line)

    @post("/lines/{line_id:uuid}/return", operation_id="return_line", guards=[CENTRE], status_code=200)
    async def give_back(
        self,
        session: AsyncSession,
        principal: Principal,
        line_id: uuid.UUID,
        data: schemas.ReturnIn,
        clock: Clock,
    ) -> responses.SuspenseReturnRead:
        """Return a suspense line to its paying account through the next refund batch."""
        cal = await working_calendar(session)
        row = await intake.return_suspense(session, principal, line_id, data.note, cal, clock.now())
        return responses.suspense_return(row)

    @post(
        "/guarantees/{guarantee_id:uuid}/decision",
        operation_id="decide_guarantee",
        guards=[CENTRE],
        status_code=200,
    )
    async def decide_guarantee(
        self,
        session: AsyncSession,
        principal: Principal,
        guarantee_id: uuid.UUID,
        data: schemas.Decision,
        clock: Clock,
    ) -> responses.GuaranteeRead:
        """Record the issuer's confirmation (approve) or refusal of a guarantee."""
        row = await subaccounts.decide_guarantee(
            session, principal, guarantee_id, data.approve, data.note, clock.now()
        )
        return responses.guarantee(row)

    @get("/guarantees", operation_id="list_guarantees", guards=[READERS])
    async def guarantees(
        self, session: AsyncSession, principal: Principal, sealed_tenders: frozenset[uuid.UUID]
    ) -> list[responses.GuaranteeRead]:
        """Every guarantee lodged, newest first (outside the centre, not those of sealed tenders, W-20)."""
        rows = await session.scalars(select(Guarantee).order_by(Guarantee.submitted_at.desc()))
        embargo = await embargo_for(session, principal, sealed_tenders)
        return [responses.guarantee(g) for g in rows if not embargo.hides(g.deposit_id)]

    @post("/rates", operation_id="set_rate", guards=[CENTRE])
    async def set_rate(
        self, session: AsyncSession, principal: Principal, data: schemas.RateIn, clock: Clock
    ) -> responses.RateRead:
        """Add a rate to the dated tables (deposit: the escrow bank's demand rate; lpr: the one-year LPR)."""
        row = await batches.set_rate(
            session, principal, data.kind, data.effective_from, data.annual_percent, data.source, clock.now()
        )
        return responses.rate(row)

    @get("/rates", operation_id="list_rates", guards=[READERS])
    async def rates(self, session: AsyncSession) -> list[responses.RateRead]:
        """The dated interest rate tables (deposit and LPR) that refunds with interest are computed from."""
        return [responses.rate(r) for r in await batches.list_rates(session)]

    @post("/batches", operation_id="create_refund_batch", guards=[CENTRE])
    async def create_batch(
        self, session: AsyncSession, principal: Principal, clock: Clock, signer: LogSigner
    ) -> responses.RefundBatchMade:
        """Instruct the bank to pay every refund that is due (interest accrued, pending entries made)."""
        made = await batches.create_batch(session, principal, clock.now(), signer=signer)
        return {
            "batch": responses.batch(made.batch) if made.batch else None,
            "instructions": [responses.instruction(i) for i in made.instructions],
            "skipped": made.skipped,
        }

    @get("/batches", operation_id="list_refund_batches", guards=[READERS])
    async def batches(self, session: AsyncSession) -> list[responses.RefundBatchRead]:
        """Every refund batch, newest first."""
        return [responses.batch(b) for b in await batches.list_batches(session)]

    @get("/batches/{batch_id:uuid}", operation_id="get_refund_batch", guards=[READERS])
    async def batch(
        self,
        session: AsyncSession,
        principal: Principal,
        sealed_tenders: frozenset[uuid.UUID],
        batch_id: uuid.UUID,
    ) -> responses.RefundBatchDetail:
        """A batch and its instructions with their results (outside the centre, without the refunds of
        tenders whose bids are sealed, W-20)."""
        batch, rows = await batches.batch_of(session, batch_id)
        embargo = await embargo_for(session, principal, sealed_tenders)
        return {
            "batch": responses.batch(batch),
            "instructions": [
                responses.instruction(i) for i in rows if i.account_code not in embargo.accounts
            ],
        }

    @get(
        "/batches/{batch_id:uuid}/file",
        operation_id="refund_batch_file",
        guards=[requires("centre", "auditor")],
        operation_class=responses.PaymentFileOperation,
    )
    async def batch_file(
        self,
        session: AsyncSession,
        principal: Principal,
        sealed_tenders: frozenset[uuid.UUID],
        settings: Settings,
        batch_id: uuid.UUID,
        fmt: Annotated[Literal["csv", "xml"], Parameter(query="format")] = "xml",
    ) -> Response[bytes]:
        """The payment file for the bank (pain.001 XML or CSV), the same bytes every time. An auditor gets
        it once no refund in it belongs to a tender whose bids are sealed (W-20): the file is the bank's
        and is never redacted."""
        batch, rows = await batches.batch_of(session, batch_id)
        embargo = await embargo_for(session, principal, sealed_tenders)
        if any(i.account_code in embargo.accounts for i in rows):
            raise sealed_refusal("This payment file")
        content = await batches.batch_file(session, batch_id, fmt, settings)
        media = "application/xml" if fmt == "xml" else "text/csv; charset=utf-8"
        return file_answer(content, media, f"{batch.number}.{fmt}")

    @post(
        "/results",
        operation_id="import_refund_results",
        guards=[CENTRE],
        request_max_body_size=STATEMENT_MAX_BYTES,
        status_code=200,
    )
    async def results(
        self,
        request: Request[Any, Any, Any],
        session: AsyncSession,
        principal: Principal,
        clock: Clock,
        signer: LogSigner,
        fmt: Annotated[Literal["pain002", "csv"], Parameter(query="format")] = "pain002",
    ) -> responses.RefundResults:
        """Import the bank's results: paid refunds posted, failed ones voided and queued again."""
        out = await batches.import_results(
            session, principal, await request.body(), fmt, clock.now(), signer=signer
        )
        return {
            "paid": out.paid,
            "failed": out.failed,
            "unchanged": out.unchanged,
            "pending": out.pending,
            "problems": out.problems,
        }

    @get("/conflicts", operation_id="list_bank_line_conflicts", guards=[READERS])
    async def conflicts(
        self,
        session: AsyncSession,
        principal: Principal,
        sealed_tenders: frozenset[uuid.UUID],
        status: Annotated[Literal["open", "resolved"] | None, Parameter(query="status")] = None,
    ) -> list[responses.BankLineConflictRead]:
        """Bank lines the bank reported again under a known reference but otherwise: both versions, the
        differences, and the centre's decision once taken (oldest first). A line taken into the deposit of
        a tender whose bids are still sealed is the escrow officers' alone until the deadline (W-20)."""
        rows = await conflicts.listed(session, status)
        embargo = await embargo_for(session, principal, sealed_tenders)
        if embargo.deposits:
            deposits = await conflicts.deposits_of(session, rows)
            rows = [row for row in rows if not embargo.hides(deposits.get(row.id))]
        return [responses.conflict(row) for row in rows]

    @get("/conflicts/{conflict_id:uuid}", operation_id="get_bank_line_conflict", guards=[READERS])
    async def conflict(
        self,
        session: AsyncSession,
        principal: Principal,
        sealed_tenders: frozenset[uuid.UUID],
        conflict_id: uuid.UUID,
    ) -> responses.BankLineConflictRead:
        """One bank line conflict (403 W-20 for a sealed tender's deposit, but to the escrow officers)."""
        row = await conflicts.get(session, conflict_id)
        embargo = await embargo_for(session, principal, sealed_tenders)
        if embargo.deposits and embargo.hides((await conflicts.deposits_of(session, [row])).get(row.id)):
            raise sealed_refusal("This bank line conflict")
        return responses.conflict(row)

    @post(
        "/conflicts/{conflict_id:uuid}/resolution",
        operation_id="resolve_bank_line_conflict",
        guards=[CENTRE],
        status_code=200,
    )
    async def resolve_conflict(
        self,
        session: AsyncSession,
        principal: Principal,
        conflict_id: uuid.UUID,
        data: schemas.ConflictDecision,
        clock: Clock,
        signer: LogSigner,
    ) -> responses.BankLineConflictRead:
        """Record which version is right, with the grounds: `known` (the line on record stands) or
        `incoming` (the bank's later version; a correcting entry moves any difference)."""
        row = await conflicts.resolve(
            session, principal, conflict_id, data.decision, data.note, signer, clock.now()
        )
        return responses.conflict(row)

    @post("/bank/notifications", operation_id="bank_notification", guards=[bank_signed], status_code=200)
    async def notification(
        self,
        request: Request[Any, Any, Any],
        session: AsyncSession,
        settings: Settings,
        clock: Clock,
        object_store: ObjectStore,
        signer: LogSigner,
    ) -> responses.NotificationTaken:
        """The bank's signed real-time notification of one credit (到账通知); the signature is the guard
        (HMAC-SHA256 in `X-Bank-Signature`, `t=<unix>,v1=<hex>`), checked before anything is read."""
        result = await intake.notify(
            session,
            object_store,
            await request.body(),
            request.headers.get("x-bank-signature", ""),
            settings,
            clock.now(),
            signer=signer,
        )
        return {"replay": result.replay, **result.summary()}
