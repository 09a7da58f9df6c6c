"""The bid stage of the procedure engine: what trading asks of bidding at the deadline, at the end of the
decryption window and when a tender is published. Importing this module plugs it in (`trading.engine`);
the composition root imports it."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bidding import agekeys, custodians, hall, hall_log, opening, opening_record
from storage.signing import LogSigner
from trading import engine, schemas
from trading.models import Tender


class Bids:
    """`trading.engine.BidStage`, answered by this package's opening and custody modules."""

    async def appoint_custodians(
        self, session: AsyncSession, tender: Tender, organisations: Sequence[uuid.UUID], now: datetime
    ) -> list[dict[str, Any]]:
        appointed = await custodians.set_roster(
            session, tender.id, list(organisations), tender.custody_threshold, now
        )
        tender.custody_shamir_threshold = custodians.shamir_threshold(appointed, tender.custody_threshold)
        return [
            {
                "position": c.position,
                "recipient": agekeys.recipient(base64.b64decode(c.public_key)),
                "platform": c.platform,
            }
            for c in appointed
        ]

    async def check_custodians(
        self, session: AsyncSession, tender: Tender, organisations: Sequence[uuid.UUID]
    ) -> None:
        await custodians.check_roster(session, list(organisations), tender.custody_threshold)

    async def custodians(self, session: AsyncSession, tender: Tender) -> list[schemas.CustodianRead]:
        return [
            schemas.CustodianRead(
                c.position,
                c.organisation_id,
                c.public_key,
                agekeys.recipient(base64.b64decode(c.public_key)),
                c.platform,
                opening_record.fingerprint(base64.b64decode(c.public_key)),
            )
            for c in await custodians.roster(session, tender.id)
        ]

    async def opening_event(
        self, session: AsyncSession, tender_id: uuid.UUID, kind: str, detail: dict[str, Any], now: datetime
    ) -> None:
        await hall_log.opening_event(session, tender_id, kind, detail, now)

    async def close_bidding(
        self, session: AsyncSession, tender: Tender, signer: LogSigner, now: datetime
    ) -> str:
        return await opening.close_bidding(session, tender, signer, now)

    async def decryption_done(self, session: AsyncSession, tender: Tender, now: datetime) -> bool:
        return await hall.end_decryption_window(session, tender, now)

    async def close_opening(self, session: AsyncSession, tender: Tender, now: datetime) -> None:
        await hall.close_opening(session, None, tender.id, now, tender=tender)


engine.plug_bids(Bids())
