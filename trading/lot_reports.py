"""The reports of a trade evaluated in one room per lot (分包评标, `Tender.evaluation_rooms` "per_lot"): each
lot's room signs a report of that lot alone, and the trade goes on (to the candidates' publicity or the
purchaser's decision) once every lot's room of the round has its report. Each lot's candidates come from
its own room's report: a ranking that names a bid of another lot is refused, so a report of one lot never
decides another lot's award.

Every lot's signed report is kept as a document of the trade; the round's `Report` states each lot's
ranking with the SHA-256 of the lot's report, and is otherwise taken as `awards.record_report` takes a
single room's report (a lot without candidates fails alone; a trade whose every lot failed fails).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from storage.problems import ValidationProblem, field_error
from trading import awards
from trading.models import Bid, Document, Report


@dataclass(frozen=True)
class LotReport:
    """One lot room's signed report as trading takes it: the lot, its ranked bids, the committee as it
    signed that report, the signed PDF and the report's hash."""

    lot_id: uuid.UUID
    ranking: list[uuid.UUID]
    committee: list[dict[str, Any]]
    file: awards.StoredFile
    report_hash: str


def round_hash(parts: Sequence[LotReport]) -> str:
    """The round's report hash: the SHA-256 of the lots' report hashes, one a line in the order given (lot
    order), so anyone holding the lots' reports can recompute it."""
    return hashlib.sha256("".join(f"{p.report_hash}\n" for p in parts).encode()).hexdigest()


def merged_committee(parts: Sequence[LotReport]) -> list[dict[str, Any]]:
    """The committee as it sits last: that of the lot room with the latest seat (a member recused and
    replaced after an earlier lot's room closed counts once), each member with what it said on every lot's
    report it was on: signed only if it signed each, its dissents named by lot report, deemed to agree if
    it was on any."""
    latest = max(parts, key=lambda p: max((m["seat"] for m in p.committee), default=0))
    seats = {
        (m["seat"], m["name"]): {**m, "signed": True, "dissent": None, "deemed_agreed": False}
        for m in latest.committee
    }
    for n, part in enumerate(parts, start=1):
        for m in part.committee:
            seat = seats.get((m["seat"], m["name"]))
            if seat is None:
                continue
            seat["signed"] = seat["signed"] and m["signed"]
            seat["deemed_agreed"] = seat["deemed_agreed"] or m["deemed_agreed"]
            if m.get("dissent"):
                seat["dissent"] = "; ".join(
                    filter(None, [seat["dissent"], f"lot report {n}: {m['dissent']}"])
                )
    return [seats[k] for k in sorted(seats)]


async def _check_lots(session: AsyncSession, tender_id: uuid.UUID, parts: Sequence[LotReport]) -> None:
    seen: set[uuid.UUID] = set()
    for i, part in enumerate(parts):
        if part.lot_id in seen:
            raise ValidationProblem(
                "Each lot has one report in a round.",
                errors=[field_error(f"reports[{i}].lot_id", "a second report of the lot")],
            )
        seen.add(part.lot_id)
        for bid_id in part.ranking:
            bid = await session.get(Bid, bid_id)
            if bid is None or bid.tender_id != tender_id or bid.lot_id != part.lot_id:
                raise ValidationProblem(
                    "A lot's candidates come from its own room's report: that bid is not of the lot.",
                    errors=[field_error(f"reports[{i}].candidates", f"bid {bid_id} is not a bid of the lot")],
                )


async def record_lot_reports(
    session: AsyncSession,
    actor: Principal | None,
    tender_id: uuid.UUID,
    parts: Sequence[LotReport],
    now: datetime,
) -> Report:
    """Take every lot room's signed report of the round (see the module) and let the trade go on."""
    await _check_lots(session, tender_id, parts)
    *earlier, last = parts
    for part in earlier:
        session.add(
            Document(
                tender_id=tender_id,
                kind="evaluation_report",
                filename=part.file.filename,
                object_key=part.file.object_key,
                sha256=part.file.sha256,
                size=part.file.size,
                uploaded_by=part.file.uploaded_by,
                uploaded_at=now,
            )
        )
    await session.flush()
    digest = round_hash(parts)
    report = await awards.record_report(
        session,
        actor,
        tender_id,
        merged_committee(parts),
        [(p.lot_id, p.ranking) for p in parts],
        last.file,
        digest,
        now,
    )
    report.candidates = [
        {"lot_id": str(p.lot_id), "ranking": [str(b) for b in p.ranking], "report_sha256": p.report_hash}
        for p in parts
    ]
    await session.flush()
    await accounts.record(
        session,
        actor,
        "report.lots",
        "report",
        report.id,
        now,
        round_hash=digest,
        lots={str(p.lot_id): p.report_hash for p in parts},
    )
    return report
