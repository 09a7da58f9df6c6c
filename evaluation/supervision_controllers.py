"""HTTP routes of what supervisors and auditors watch over the committees: aborts and their pattern, and
the tender's W-18 collusion signals (for its committee too, once the opening has closed)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, cast

from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import requires
from accounts.security import Principal
from evaluation import responses, supervision

ABORT_WATCHERS = requires("supervisor", "auditor")


class AbortStatisticsController(Controller):
    """Aborts of committee draws, for supervisors and auditors."""

    path = "/api/v1/evaluation"
    tags = ["evaluation"]

    @get("/draw-aborts", operation_id="draw_abort_statistics", guards=[ABORT_WATCHERS])
    async def abort_statistics(
        self,
        session: AsyncSession,
        since: Annotated[date | None, Parameter(query="since")] = None,
        until: Annotated[date | None, Parameter(query="until")] = None,
    ) -> responses.AbortStatistics:
        """Aborts by month, by who asked (the centre among them), by agency and by tender, with reasons."""
        return cast(responses.AbortStatistics, await supervision.abort_statistics(session, since, until))


class SignalController(Controller):
    """W-18 signals found at the opening (and deposits from one account), for the committee to weigh."""

    path = "/api/v1/tenders/{tender_id:uuid}"
    tags = ["opening"]

    @get(
        "/collusion-signals",
        operation_id="collusion_signals",
        guards=[requires("expert", "supervisor", "auditor")],
    )
    async def signals(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> list[responses.CollusionSignalRead]:
        """W-18 signals computed at the opening: identical files or document metadata across bidders, the
        same device or network address at submission, manifests signed by the same key, deposits paid from
        the same account. For the tender's committee, supervisors and auditors, after the opening (W-20)."""
        return [
            {
                "kind": s.kind,
                "rule": s.rule,
                "bidders": s.bidders,
                "bids": s.bids,
                "evidence": s.evidence,
                "value": s.value,
                "found_at": s.found_at.isoformat(),
            }
            for s in await supervision.collusion_signals(session, principal, tender_id)
        ]
