"""HTTP routes of the deposits: bidders' sub-accounts and guarantees; the centre's bank intake, suspense,
bank line conflicts, rates, refund batches and results; supervisors' forfeiture decisions and lights;
auditors' read-only views and exports; the bank's signed notifications; and the ledger's signed heads,
published beside the transparency log's (sizes and hashes only)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar

from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import public, requires
from accounts.security import Principal
from escrow import (
    audit,
    batches,
    conflicts,
    forfeiture,
    intake,
    journal,
    ledger,
    published,
    refunds,
    responses,
    schemas,
    subaccounts,
)
from escrow.heads import PublishedLedgerHead, PublishedLedgerHeads
from escrow.models import Deposit, Guarantee
from escrow.schemas import ObligationRow, StatementLineRow, TrialBalanceLine
from rules.calendar import local_date
from rules.schedule import working_calendar
from storage.bounds import MAX_FILTER_LENGTH
from storage.clock import Clock
from storage.objects import ObjectStore
from storage.problems import Forbidden, NotFound, Unauthenticated, ValidationProblem, field_error
from storage.settings import Settings
from storage.signing import LogSigner

READERS = requires("auditor", "centre", "supervisor")
LIGHTS = requires("auditor", "centre", "supervisor", "regulator")  # S-01: regulators see the lights too


async def bank_signed(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """A guard for the bank's machine-to-machine calls: they carry no user token but a signature
    (`X-Bank-Signature: t=<unix>,v1=<hex>`), which the handler checks against the body with the shared
    secret before it reads anything else. No signature at all is refused here, before the body is read."""
    header = connection.headers.get("x-bank-signature", "")
    if "t=" not in header or "v1=" not in header:
        raise Unauthenticated("This route takes the bank's signature (X-Bank-Signature).")


CENTRE = requires("centre")
BIDDER = requires("bidder")
SUPERVISOR = requires("supervisor")
AGENCY_OR_CENTRE = requires("agency", "centre")
STATEMENT_MAX_BYTES = 20 * 1024 * 1024


Format = Literal["json", "csv", "xlsx"]
Row = TypeVar("Row", bound=Mapping[str, object])
Answer = TypeVar("Answer")


@dataclass(frozen=True)
class Embargo:
    """What a reader of the escrow views who is not one of the centre's escrow officers must not see
    before a tender's deadline (W-20): the deposits of tenders whose bids are still sealed, their
    sub-accounts, bank lines, guarantees, refunds. The officers hold these facts because they must match
    and refund the money; supervisors, auditors and the regulator see them once the deadline has passed."""

    tenders: frozenset[uuid.UUID] = frozenset()
    deposits: frozenset[uuid.UUID] = frozenset()
    accounts: frozenset[str] = frozenset()

    def hides(self, deposit_id: Any) -> bool:
        """True for a deposit (an id or its string) of a sealed tender."""
        return deposit_id is not None and uuid.UUID(str(deposit_id)) in self.deposits

    def _hidden(self, row: Mapping[str, object], key: str) -> bool:
        return self.hides(row.get(key)) or row.get("account") in self.accounts

    def rows(self, rows: list[Row], key: str = "deposit_id") -> list[Row]:
        """`rows` without those tied to a hidden deposit (by `key`) or sub-account (by `account`)."""
        return [r for r in rows if not self._hidden(r, key)]

    def lights(self, rows: list[ObligationRow]) -> list[ObligationRow]:
        """Refund obligations with the sub-account and deposit of a sealed tender's taken out: a refund due
        before the deadline (W-05) keeps its S-01 light for those who supervise it, but not whose it is."""
        return [
            {**r, "account": SEALED_ACCOUNT, "deposit_id": None} if self._hidden(r, "deposit_id") else r
            for r in rows
        ]


class TenderManager(Protocol):
    """The app's `tender_manager` dependency: whether the principal's agency manages the tender. Tenders
    live above escrow, so the app answers it from their package."""

    async def __call__(self, session: AsyncSession, principal: Principal, tender_id: uuid.UUID) -> bool:
        """True when the principal's agency runs the tender; False for any other tender."""
        ...


SEALED_ACCOUNT = "sealed until the tender's deadline (W-20)"


async def embargo_for(session: AsyncSession, principal: Principal, sealed: frozenset[uuid.UUID]) -> Embargo:
    """Nothing is hidden from the centre's escrow officers; from every other reader, what W-20 seals
    (`sealed`: the tenders whose bids are still sealed, the app's `sealed_tenders` dependency)."""
    if principal.has("centre"):
        return Embargo()
    keys = await subaccounts.deposit_keys_of_tenders(session, sealed)
    return Embargo(sealed, frozenset(k for k, _ in keys), frozenset(code for _, code in keys))


def _sealed_refusal(what: str) -> Forbidden:
    return Forbidden(
        f"{what} names bidders of a tender whose bids are still sealed; it is shown after the deadline (W-20).",
        rule="W-20",
    )


def _checks(checks: list[ledger.Check], embargo: Embargo | None = None) -> responses.LedgerVerification:
    return {
        "ok": all(c.ok for c in checks),
        "offender_limit": ledger.OFFENDER_LIMIT,
        "checks": [_check(c, embargo) for c in checks],
    }


def _check(check: ledger.Check, embargo: Embargo | None) -> responses.LedgerCheck:
    """A check as the reader may see it. Outside the centre, a passing check says no more than that it
    passed: its counts (deposits, accounts, entries, lines) grow as bidders obtain documents and pay, and
    would count them for a tender whose bids are sealed (W-20). A failing check names its offenders, unless
    one of them belongs to such a tender."""
    name, ok = check.name, check.ok
    if embargo is not None:
        if ok:
            return {"name": name, "ok": ok, "detail": None, "offenders": [], "total": 0}
        named = " ".join([str(check.detail), *map(str, check.offenders)])
        if any(code in named for code in embargo.accounts) or any(str(d) in named for d in embargo.deposits):
            withheld = "withheld until the deadline of a tender it concerns (W-20); the centre sees it"
            return {"name": name, "ok": ok, "detail": withheld, "offenders": [], "total": None}
    return {
        "name": name,
        "ok": ok,
        "detail": check.detail,
        "offenders": list(check.offenders),
        "total": check.total,
    }


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValidationProblem(
            f"`{name}` must carry a time zone (e.g. 2026-03-23T10:00:00+08:00).",
            errors=[field_error(name, "naive instant")],
        )
    return value


def _file(content: bytes, media_type: str, filename: str) -> Response[bytes]:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _json_or_file(
    fmt: str,
    name: str,
    sheets: list[tuple[str, tuple[Any, ...], Sequence[Mapping[str, object]]]],
    body: Answer,
) -> Answer | Response[bytes]:
    if fmt == "json":
        return body
    content, media = await asyncio.to_thread(audit.export, fmt, sheets)  # workbooks are CPU work
    return _file(content, media, f"{name}.{fmt}")


def _fold_sealed(rows: list[TrialBalanceLine], embargo: Embargo) -> list[TrialBalanceLine]:
    """The trial balance with the sub-accounts of sealed tenders summed into one line, so the totals still
    balance and nobody learns which bidders hold money for which open tender, or how many."""
    sealed = [r for r in rows if r["account"] in embargo.accounts]
    if not sealed:
        return rows
    folded: TrialBalanceLine = {
        "account": "deposits of tenders before their deadline (W-20)",
        "kind": sealed[0]["kind"],
        "debit_fen": sum(r["debit_fen"] for r in sealed),
        "credit_fen": sum(r["credit_fen"] for r in sealed),
    }
    return [*(r for r in rows if r["account"] not in embargo.accounts), folded]


class LedgerController(Controller):
    """The ledger's invariants and trial balance, checked from the stored rows."""

    path = "/api/v1/escrow"
    tags = ["escrow"]

    @get("/verify", operation_id="verify_ledger", guards=[READERS])
    async def verify(
        self,
        session: AsyncSession,
        principal: Principal,
        sealed_tenders: frozenset[uuid.UUID],
        clock: Clock,
        signer: LogSigner,
    ) -> responses.LedgerVerification:
        """Check every ledger and deposit invariant and the signed heads (the same program as
        `ggzy verify ledger`); each check names every offender up to `offender_limit`, with the total. The
        centre sees every check's detail; other readers see which checks pass, and the details and offenders
        of failing ones unless they concern a tender whose bids are still sealed (W-20)."""
        cal = await working_calendar(session)
        embargo = None if principal.has("centre") else await embargo_for(session, principal, sealed_tenders)
        return _checks(await audit.verify(session, cal, clock.now(), signer.public_raw), embargo)

    @get(
        "/trial-balance",
        operation_id="trial_balance",
        guards=[READERS],
        operation_class=responses.ExportOperation,
    )
    async def trial_balance(
        self,
        session: AsyncSession,
        principal: Principal,
        sealed_tenders: frozenset[uuid.UUID],
        at: Annotated[datetime | None, Parameter(query="at")] = None,
        fmt: Annotated[Format, Parameter(query="format")] = "json",
    ) -> responses.TrialBalance | Response[bytes]:
        """Every account's posted balance at an instant (now by default); debits and credits total alike.
        Outside the centre, the sub-accounts of tenders whose bids are sealed are shown as one line (W-20)."""
        rows = _fold_sealed(
            await journal.trial_balance(session, _aware("at", at)),
            await embargo_for(session, principal, sealed_tenders),
        )
        body: responses.TrialBalance = {
            "at": at.isoformat() if at else None,
            "accounts": rows,
            "debit_fen": sum(r["debit_fen"] for r in rows),
            "credit_fen": sum(r["credit_fen"] for r in rows),
        }
        return await _json_or_file(fmt, "trial-balance", [("Trial balance", audit.TRIAL_COLUMNS, rows)], body)


class DepositController(Controller):
    """Bidders' deposit sub-accounts and guarantees; forfeiture proposals; approved payee changes."""

    path = "/api/v1/escrow/deposits"
    tags = ["escrow"]

    @get("/", operation_id="my_deposits", guards=[BIDDER])
    async def mine(self, session: AsyncSession, principal: Principal) -> list[responses.DepositRead]:
        """The caller's deposit sub-accounts: the virtual number to pay into, what is required, held, owed."""
        return [
            responses.deposit(d, await subaccounts.held_fen(session, d))
            for d in await subaccounts.my_deposits(session, principal)
        ]

    @get(
        "/{deposit_id:uuid}",
        operation_id="deposit_life",
        guards=[requires("bidder", "auditor", "centre", "supervisor")],
    )
    async def life(
        self,
        session: AsyncSession,
        principal: Principal,
        sealed_tenders: frozenset[uuid.UUID],
        deposit_id: uuid.UUID,
        clock: Clock,
    ) -> responses.DepositLife:
        """A deposit from arrival to refund (the bidder's own, or any for the centre, auditors, supervisors)."""
        deposit = await subaccounts.get_deposit(session, deposit_id)
        own = deposit.organisation_id == principal.organisation_id and principal.has("bidder")
        if not own and (
            not principal.has("auditor", "centre", "supervisor")
            or (await embargo_for(session, principal, sealed_tenders)).hides(deposit.id)
        ):
            raise NotFound("No such deposit.")
        life = await subaccounts.deposit_life(session, deposit.id)
        cal = await working_calendar(session)
        today = local_date(clock.now())
        return {
            "deposit": responses.deposit(deposit, life["held_fen"]),
            "lines": [responses.bank_line(x) for x in life["lines"]],
            "guarantees": [responses.guarantee(g) for g in life["guarantees"]],
            "eligibility": [responses.eligibility(e) for e in life["eligibility"]],
            "obligations": await audit.obligation_rows(session, life["obligations"], cal, today),
            "instructions": [responses.instruction(i) for i in life["instructions"]],
            "forfeitures": [responses.forfeiture(f) for f in life["forfeitures"]],
            "entries": [responses.entry(e) for e in life["entries"]],
        }

    @post("/{deposit_id:uuid}/guarantees", operation_id="lodge_guarantee", guards=[BIDDER])
    async def lodge(
        self,
        session: AsyncSession,
        principal: Principal,
        deposit_id: uuid.UUID,
        data: schemas.GuaranteeIn,
        clock: Clock,
    ) -> responses.GuaranteeRead:
        """Lodge a bank guarantee or guarantee insurance for the deposit; it counts once verified."""
        row = await subaccounts.submit_guarantee(
            session,
            principal,
            deposit_id,
            kind=data.kind,
            issuer=data.issuer,
            number=data.number,
            amount_fen=data.amount_fen,
            valid_from=data.valid_from,
            valid_until=data.valid_until,
            now=clock.now(),
        )
        return responses.guarantee(row)

    @post("/{deposit_id:uuid}/forfeitures", operation_id="propose_forfeiture", guards=[AGENCY_OR_CENTRE])
    async def propose(
        self,
        session: AsyncSession,
        principal: Principal,
        deposit_id: uuid.UUID,
        data: schemas.ForfeitureIn,
        clock: Clock,
        tender_manager: TenderManager,
    ) -> responses.ForfeitureRead:
        """Propose keeping the deposit (W-06, W-16) with the legal reason; a supervisor decides."""
        deposit = await subaccounts.get_deposit(session, deposit_id)
        # not this agency's tender: for it, the deposit does not exist
        manages = principal.has("centre") or await tender_manager(session, principal, deposit.tender_id)
        row = await forfeiture.propose_for_lot(
            session, principal, deposit_id, data.rule, data.reason, clock.now(), manages=manages
        )
        return responses.forfeiture(row)

    @post("/{deposit_id:uuid}/payee", operation_id="change_payee", guards=[CENTRE])
    async def payee(
        self,
        session: AsyncSession,
        principal: Principal,
        deposit_id: uuid.UUID,
        data: schemas.PayeeIn,
        clock: Clock,
        signer: LogSigner,
    ) -> responses.PayeeChangeRead:
        """Record an approved change of the refund account, with the approval it rests on (hashed into the
        journal; refunds are paid to, and checked against, that entry)."""
        row = await forfeiture.record_payee_change(
            session,
            principal,
            deposit_id,
            payee_name=data.payee_name,
            payee_account=data.payee_account,
            payee_bank=data.payee_bank,
            reason=data.reason,
            approval=data.approval,
            now=clock.now(),
            signer=signer,
        )
        return responses.payee_change(row)


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
        return await _json_or_file(
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
            raise _sealed_refusal("This payment file")
        content = await batches.batch_file(session, batch_id, fmt, settings)
        media = "application/xml" if fmt == "xml" else "text/csv; charset=utf-8"
        return _file(content, media, f"{batch.number}.{fmt}")

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
            raise _sealed_refusal("This bank line conflict")
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
            raise _sealed_refusal("The refunds of this tender")
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
        return await _json_or_file(
            fmt, "obligations", [("Obligations", audit.OBLIGATION_COLUMNS, rows)], rows
        )

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
        return await _json_or_file(
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
            raise _sealed_refusal("The deposits of this tender")
        deposits = await subaccounts.deposits_of_tender(session, tender_id)
        cal = await working_calendar(session)
        drows = await audit.deposit_rows(session, deposits)
        orows = await audit.obligation_rows(
            session,
            await refunds.obligations_list(session, tender_id=tender_id),
            cal,
            local_date(clock.now()),
        )
        return await _json_or_file(
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
        return await _json_or_file(
            fmt,
            f"bidder-{organisation_id}",
            [("Deposits", audit.DEPOSIT_COLUMNS, drows), ("Obligations", audit.OBLIGATION_COLUMNS, orows)],
            responses.DepositsAndObligations(deposits=drows, obligations=orows),
        )


class LedgerHeadController(Controller):
    """The ledger's signed heads, beside the transparency log's: public, sizes and hashes only. Pin the key
    from `GET /api/v1/transparency/key`, keep a head, and check it later with
    `ggzy verify ledger --head HEAD.json`."""

    path = "/api/v1/transparency/ledger"
    tags = ["transparency"]

    @get("/head", operation_id="ledger_head", guards=[public])
    async def head(self, session: AsyncSession) -> PublishedLedgerHead:
        """The newest signed head of the deposit ledger."""
        return (await published.latest(session)).to_json()

    @get("/heads/{sequence:int}", operation_id="ledger_head_at", guards=[public])
    async def head_at(
        self, session: AsyncSession, sequence: Annotated[int, Parameter(ge=1, le=2**62)]
    ) -> PublishedLedgerHead:
        """Signed head number `sequence`, exactly as signed, to check offline with the platform's key."""
        return (await published.head_at(session, sequence)).to_json()

    @get("/heads", operation_id="ledger_heads", guards=[public])
    async def heads(
        self,
        session: AsyncSession,
        after: Annotated[int, Parameter(query="after", ge=0, le=2**62)] = 0,
        limit: Annotated[int, Parameter(query="limit", ge=1, le=published.MAX_PAGE)] = 100,
    ) -> PublishedLedgerHeads:
        """Signed heads numbered after `after`, oldest first, at most `limit`; `next` is the `after` of the
        next page (null at the end)."""
        page = await published.page(session, after, limit)
        return {
            "heads": [h.to_json() for h in page],
            "next": page[-1].sequence if len(page) == limit else None,
        }
