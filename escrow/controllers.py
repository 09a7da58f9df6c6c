"""HTTP routes of the deposit ledger for the centre, auditors and supervisors (read-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import requires
from escrow import journal
from storage.problems import ValidationProblem, field_error

READERS = requires("auditor", "centre", "supervisor")


class LedgerController(Controller):
    """The ledger's invariants and trial balance, checked from the stored rows."""

    path = "/api/v1/escrow"
    tags = ["escrow"]

    @get("/verify", operation_id="verify_ledger", guards=[READERS])
    async def verify(self, session: AsyncSession) -> dict[str, Any]:
        """Check every ledger invariant (the same program as `ggzy verify ledger`)."""
        checks = await journal.verify(session)
        return {
            "ok": all(c.ok for c in checks),
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
        }

    @get("/trial-balance", operation_id="trial_balance", guards=[READERS])
    async def trial_balance(
        self,
        session: AsyncSession,
        at: Annotated[datetime | None, Parameter(query="at")] = None,
    ) -> dict[str, Any]:
        """Every account's posted balance at an instant (now by default); debits and credits total alike."""
        if at is not None and at.tzinfo is None:
            raise ValidationProblem(
                "`at` must carry a time zone (e.g. 2026-03-23T10:00:00+08:00).",
                errors=[field_error("at", "naive instant")],
            )
        rows = await journal.trial_balance(session, at)
        return {
            "at": at.isoformat() if at else None,
            "accounts": rows,
            "debit_fen": sum(r["debit_fen"] for r in rows),
            "credit_fen": sum(r["credit_fen"] for r in rows),
        }
