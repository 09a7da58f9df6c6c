"""HTTP routes of negotiated procurement (竞争性谈判/磋商): the agency records rounds, amendments and
exclusions and calls for final quotes; suppliers seal and then open their final quotes."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import authenticated, requires
from accounts.security import Principal
from storage.clock import Clock
from trading import negotiation, schemas
from trading.lifecycle import TenderStatus
from trading.models import FinalQuote, NegotiationNote
from trading.tenders import oversees, tender_read, visible_tender

AGENCY = requires("agency")
BIDDER = requires("bidder")


def note_read(n: NegotiationNote) -> schemas.NegotiationNoteRead:
    return schemas.NegotiationNoteRead(
        id=n.id,
        tender_id=n.tender_id,
        kind=n.kind,
        organisation_id=n.organisation_id,
        round=n.round,
        text=n.text,
        recorded_at=n.recorded_at,
    )


def quote_read(q: FinalQuote, *, priced: bool) -> schemas.FinalQuoteRead:
    return schemas.FinalQuoteRead(
        id=q.id,
        lot_id=q.lot_id,
        organisation_id=q.organisation_id,
        commitment=q.commitment,
        committed_at=q.committed_at,
        price_fen=q.price_fen if priced else None,
        revealed_at=q.revealed_at if priced else None,
    )


class NegotiationController(Controller):
    """Rounds, amendments, exclusions and sealed final quotes of a negotiated procurement."""

    path = "/api/v1/tenders/{tender_id:uuid}/negotiation"
    tags = ["negotiation"]

    @post("/rounds", operation_id="record_negotiation_round", guards=[AGENCY])
    async def record_round(
        self,
        tender_id: uuid.UUID,
        data: schemas.NegotiationRound,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.NegotiationNoteRead:
        """Record the minutes of a round with one supplier; only that supplier and those who watch see them."""
        return note_read(await negotiation.record_round(session, principal, tender_id, data, clock.now()))

    @post("/amendments", operation_id="amend_negotiation", guards=[AGENCY])
    async def amend(
        self,
        tender_id: uuid.UUID,
        data: schemas.NegotiationAmendment,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.NegotiationNoteRead:
        """Amend the requirements; every remaining supplier is told."""
        return note_read(await negotiation.amend(session, principal, tender_id, data, clock.now()))

    @post("/exclusions", operation_id="exclude_from_negotiation", guards=[AGENCY])
    async def exclude(
        self,
        tender_id: uuid.UUID,
        data: schemas.NegotiationExclusion,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.NegotiationNoteRead:
        """A supplier's response leaves the negotiation, with the reason."""
        return note_read(await negotiation.exclude(session, principal, tender_id, data, clock.now()))

    @get("/notes", operation_id="list_negotiation_notes", guards=[authenticated])
    async def notes(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> list[schemas.NegotiationNoteRead]:
        """The negotiation's records; a supplier sees the amendments and its own rounds only."""
        return [note_read(n) for n in await negotiation.notes(session, principal, tender_id)]

    @post("/final-call", operation_id="call_final_quotes", guards=[AGENCY], status_code=200)
    async def final_call(
        self,
        tender_id: uuid.UUID,
        data: schemas.FinalQuoteCall,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.TenderRead:
        """End the rounds: the remaining suppliers seal their final quotes by the deadline (G-13)."""
        tender = await negotiation.call_final_quotes(session, principal, tender_id, data, clock.now())
        return await tender_read(session, tender, principal, clock.now())

    @post("/final-quotes", operation_id="seal_final_quote", guards=[BIDDER])
    async def seal(
        self,
        tender_id: uuid.UUID,
        data: schemas.FinalQuoteSeal,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.FinalQuoteRead:
        """Seal a final quote on a lot before the deadline: only its commitment reaches the platform."""
        quote = await negotiation.seal_final_quote(session, principal, tender_id, data, clock.now())
        return quote_read(quote, priced=True)

    @post("/final-quotes/open", operation_id="open_final_quote", guards=[BIDDER], status_code=200)
    async def open_quote(
        self,
        tender_id: uuid.UUID,
        data: schemas.FinalQuoteOpen,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.FinalQuoteRead:
        """Open a sealed final quote with its price and nonce, after the deadline and within the window."""
        quote = await negotiation.open_final_quote(session, principal, tender_id, data, clock.now())
        return quote_read(quote, priced=True)

    @get("/final-quotes", operation_id="list_final_quotes", guards=[authenticated])
    async def quotes(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> list[schemas.FinalQuoteRead]:
        """The sealed final quotes: a supplier its own; the agency and those who watch every one, their
        prices only once all are opened together."""
        tender = await visible_tender(session, principal, tender_id)
        query = select(FinalQuote).where(FinalQuote.tender_id == tender.id)
        watcher = oversees(principal, tender)
        if not watcher:
            query = query.where(FinalQuote.organisation_id == principal.organisation_id)
        opened = tender.status not in (TenderStatus.NEGOTIATION, TenderStatus.FINAL_QUOTES)
        return [
            quote_read(q, priced=opened or q.organisation_id == principal.organisation_id)
            for q in await session.scalars(query.order_by(FinalQuote.committed_at))
        ]
