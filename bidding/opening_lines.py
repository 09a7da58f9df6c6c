"""The lines of the signed opening record (`bidding.opening_record`): one per envelope standing at the
deadline, with its public header, who opened it, its result and, for an envelope that went to custody, the
custodians' releases with their proofs and its outcome. On a tender of two envelopes (双信封) the technical
envelopes have lines of their own, with the releases of their own stanzas."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from bidding import custodians, envelope, records
from bidding.models import Custodian, Envelope, ShareRelease, TechnicalEnvelope
from trading.models import Bid


async def lines(
    session: AsyncSession,
    bids: Sequence[Bid],
    rows: Mapping[uuid.UUID, Envelope | TechnicalEnvelope],
    lots: Mapping[uuid.UUID, int],
    roster: Mapping[int, Custodian],
    kind: str,
) -> list[dict[str, Any]]:
    """One line per bid of `bids` that has an envelope of `kind` in `rows`, in the order of `bids`; the
    technical lines state no price (the technical envelope declares none)."""
    releases = await custodians.releases_of(session, [b.id for b in bids if b.id in rows], kind)
    out = []
    for bid in bids:
        row = rows.get(bid.id)
        if row is None:
            continue
        org = await accounts.get_organisation(session, bid.organisation_id)
        line: dict[str, Any] = {
            "bid": str(bid.id),
            "lot": lots[bid.lot_id],
            "bidder": org.name,
            "credit_code": org.credit_code,
            "envelope_sha256": row.sha256 if isinstance(row, TechnicalEnvelope) else bid.sha256,
            "header": row.header,
            "header_sha256": envelope.header_sha256(records.header_of(row)),
            "bid_status": bid.status,
            "opened_by": row.opened_by,
            "result": row.result or row.status,
            "custody": _held(row, [r for r in releases if r.bid_id == bid.id], roster),
        }
        if kind == "commercial":
            line["declared_price_fen"] = bid.declared_price_fen
        out.append(line)
    return out


def _held(
    row: Envelope | TechnicalEnvelope, releases: Sequence[ShareRelease], roster: Mapping[int, Custodian]
) -> dict[str, Any] | None:
    if row.custody_outcome is None:
        return None
    return {
        "releases": [
            {
                "position": r.position,
                "organisation_id": str(roster[r.position].organisation_id),
                "release": r.release,
                "valid": r.status == "valid",
                "error": r.error,
            }
            for r in releases
            if r.release is not None
        ],
        "outcome": row.custody_outcome,
    }
