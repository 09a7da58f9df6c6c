"""One opened bid file, as the evaluation committee reads it: which file of which envelope may be handed
over, and where the store keeps it.

Opening an envelope (`envelopes.open_stored`) keeps each of its plaintext files in the object store and
lists them on the envelope's row with their names, sizes and SHA-256. A file is handed over only from a
bid still standing (submitted, not rejected, on a live lot) and only from an envelope that is opened: on a
tender of two envelopes (双信封) the technical envelope after the technical opening, the commercial one
only once the commercial opening has opened it, so no price reaches the committee before then.
"""

from __future__ import annotations

import mimetypes
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from bidding import envelopes
from bidding.models import Envelope, TechnicalEnvelope
from storage.problems import Conflict, NotFound, field_error
from trading.lifecycle import TenderStatus
from trading.models import Bid, Lot, Tender

Kind = Literal["technical", "commercial"]
# Before these, the commercial envelopes of a tender of two envelopes are still sealed.
_COMMERCIAL_SEALED = (TenderStatus.OPENING, TenderStatus.TECHNICAL_EVALUATION)


@dataclass(frozen=True)
class OpenedFile:
    """One plaintext file of an opened envelope: its name, size, SHA-256, media type and object key."""

    bid_id: uuid.UUID
    kind: Kind
    number: int
    name: str
    size: int
    sha256: str
    content_type: str
    object_key: str


async def opened_file(
    session: AsyncSession,
    tender: Tender,
    bid_id: uuid.UUID,
    kind: Kind,
    number: int,
    lot_id: uuid.UUID | None = None,
) -> OpenedFile:
    """File `number` (from 1, in the envelope's order) of the `kind` envelope of a standing bid on `tender`.
    404 for a bid not on the tender, withdrawn or rejected, or on a failed lot, and for a file it does not
    have; 409 naming `kind` for an envelope not opened (a commercial one before the commercial opening).
    With `lot_id` (a lot's own evaluation room) a bid of another lot is not there either."""
    bid = await session.get(Bid, bid_id)
    if bid is None or bid.tender_id != tender.id or bid.status != "submitted" or bid.rejection_rule:
        raise NotFound("No such standing bid on this tender.")
    if lot_id is not None and bid.lot_id != lot_id:
        raise NotFound(
            "No such standing bid on this room's lot.", errors=[field_error("bid_id", "another lot")]
        )
    lot = await session.get(Lot, bid.lot_id)
    if lot is None or lot.status == "failed":
        raise NotFound("No such standing bid on this tender.")
    row: Envelope | TechnicalEnvelope | None
    if kind == "technical":
        if tender.envelopes != 2:
            raise NotFound(
                "Bids on this tender are one envelope: it has no technical envelope.",
                errors=[field_error("kind", "no technical envelope on this tender")],
            )
        row = await envelopes.technical_of(session, bid.id)
    else:
        if tender.envelopes == 2 and tender.status in _COMMERCIAL_SEALED:
            raise Conflict(
                "Commercial envelopes are read only after the commercial opening; the tender is "
                f"{tender.status}.",
                errors=[field_error("kind", "the commercial envelopes are still sealed")],
            )
        row = await envelopes.envelope_of(session, bid.id)
    if row is None or row.status != "opened":
        raise Conflict(
            f"This bid's {kind} envelope is not opened.",
            errors=[field_error("kind", f"the {kind} envelope is {row.status if row else 'missing'}")],
        )
    files: list[dict[str, Any]] = row.files or []
    if not 1 <= number <= len(files):
        raise NotFound(
            f"The {kind} envelope has {len(files)} file(s).",
            errors=[field_error("number", f"between 1 and {len(files)}")],
        )
    entry = files[number - 1]
    media = mimetypes.guess_type(entry["name"], strict=False)[0] or "application/octet-stream"
    return OpenedFile(
        bid.id, kind, number, entry["name"], entry["size"], entry["sha256"], media, entry["object_key"]
    )
