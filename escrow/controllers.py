"""Shared HTTP plumbing of the deposit routes (guards, the W-20 embargo on what non-centre readers see,
file answers) and the auditors' ledger views: verification, the trial balance, and the ledger's signed heads,
published beside the transparency log's (sizes and hashes only). The other routes live by stage in
`deposit_controllers.py`, `bank_controllers.py` and `supervision_controllers.py`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from litestar import Controller, Response, get
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import public, requires
from accounts.security import Principal
from escrow import audit, journal, ledger, published, responses, subaccounts
from escrow.heads import PublishedLedgerHead, PublishedLedgerHeads
from escrow.schemas import ObligationRow, TrialBalanceLine
from rules.schedule import working_calendar
from storage.clock import Clock
from storage.problems import Forbidden, Unauthenticated, ValidationProblem, field_error
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


SEALED_ACCOUNT = "sealed until the tender's deadline (W-20)"


async def embargo_for(session: AsyncSession, principal: Principal, sealed: frozenset[uuid.UUID]) -> Embargo:
    """Nothing is hidden from the centre's escrow officers; from every other reader, what W-20 seals
    (`sealed`: the tenders whose bids are still sealed, the app's `sealed_tenders` dependency)."""
    if principal.has("centre"):
        return Embargo()
    keys = await subaccounts.deposit_keys_of_tenders(session, sealed)
    return Embargo(sealed, frozenset(k for k, _ in keys), frozenset(code for _, code in keys))


def sealed_refusal(what: str) -> Forbidden:
    """The 403 for a view that would name a bidder of a tender whose bids are still sealed (W-20)."""
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


def file_answer(content: bytes, media_type: str, filename: str) -> Response[bytes]:
    """`content` as a file to download under `filename`."""
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def json_or_file(
    fmt: str,
    name: str,
    sheets: list[tuple[str, tuple[Any, ...], Sequence[Mapping[str, object]]]],
    body: Answer,
) -> Answer | Response[bytes]:
    """`body` as JSON, or its rows as `sheets` of a CSV or XLSX export named `name`."""
    if fmt == "json":
        return body
    content, media = await asyncio.to_thread(audit.export, fmt, sheets)  # workbooks are CPU work
    return file_answer(content, media, f"{name}.{fmt}")


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
        return await json_or_file(fmt, "trial-balance", [("Trial balance", audit.TRIAL_COLUMNS, rows)], body)


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
