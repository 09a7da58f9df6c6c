"""Negotiated procurement (竞争性谈判 / 竞争性磋商): rounds with each supplier separately, amended requirements
sent to every supplier that remains, exclusions with their reasons, then sealed final quotes (最后报价)
opened together.

A final quote is sealed by a commitment: before the deadline the supplier sends only the hex SHA-256 of
`storage.commitments.final_quote_message` (the tender, lot and supplier it binds, the price, a 32-byte
random nonce), computed on its own machine (`ggzy bid final-quote seal`), so nobody — the platform
included — learns a price before every quote is in; after the deadline it sends the price and nonce, the
platform checks them against the commitment, and when the reveal window ends every price is published at
once and becomes the bid's price for the evaluation. A supplier that seals nothing, or does not open its
seal in the window, is out; a lot left with fewer than the procedure's minimum fails (G-13).
"""

from __future__ import annotations

import hmac
import re
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from escrow import refunds
from rules.calendar import local_date
from rules.profiles import ProcedureProfile, profile_for
from rules.schedule import working_calendar
from storage.commitments import final_quote_commitment
from storage.db import upsert_ignore
from storage.problems import (
    Conflict,
    NotFound,
    RuleViolation,
    ValidationProblem,
    field_error,
    requested_instant,
)
from trading import schemas
from trading.lifecycle import Action, TenderStatus
from trading.models import Bid, FinalQuote, Lot, NegotiationNote, Tender
from trading.notices import publish_notice
from trading.tenders import (
    fail_tender,
    final_quotes_close,
    load_tender,
    lots_of,
    move,
    notify,
    oversees,
    price_cap,
    tender_for_agency,
    visible_tender,
)

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _negotiated(tender: Tender) -> ProcedureProfile:
    profile = profile_for(tender.sector, tender.method)
    if profile.final_quote_reveal_minutes is None:
        raise Conflict(f"{profile.title} has no negotiation.")
    return profile


def _in_negotiation(tender: Tender) -> ProcedureProfile:
    profile = _negotiated(tender)
    if tender.status != TenderStatus.NEGOTIATION:
        raise Conflict(
            f"Negotiation runs after the opening, before the final quotes; the trade is {tender.status}."
        )
    return profile


async def remaining_bids(session: AsyncSession, tender_id: uuid.UUID) -> list[Bid]:
    """The opened bids still in the negotiation (not excluded, not rejected by the platform)."""
    rows = await session.scalars(
        select(Bid).where(
            Bid.tender_id == tender_id,
            Bid.status == "submitted",
            Bid.revealed_at.is_not(None),
            Bid.rejection_rule.is_(None),
        )
    )
    return list(rows)


async def _remaining_supplier(session: AsyncSession, tender: Tender, organisation_id: uuid.UUID) -> None:
    if not any(b.organisation_id == organisation_id for b in await remaining_bids(session, tender.id)):
        raise ValidationProblem(
            "That supplier has no response left in this negotiation.",
            errors=[field_error("organisation_id", "not a remaining supplier")],
        )


async def _note(
    session: AsyncSession,
    actor: Principal,
    tender: Tender,
    kind: str,
    organisation_id: uuid.UUID | None,
    round_number: int | None,
    text: str,
    now: datetime,
) -> NegotiationNote:
    note = NegotiationNote(
        tender_id=tender.id,
        kind=kind,
        organisation_id=organisation_id,
        round=round_number,
        text=text,
        recorded_at=now,
        recorded_by=actor.user_id,
    )
    session.add(note)
    await session.flush()
    await accounts.record(session, actor, f"negotiation.{kind}", "negotiation_note", note.id, now)
    return note


async def record_round(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.NegotiationRound,
    now: datetime,
) -> NegotiationNote:
    """The minutes of one round with one supplier, negotiated separately (分别谈判); the supplier is told."""
    tender = await tender_for_agency(session, actor, tender_id)
    _in_negotiation(tender)
    await _remaining_supplier(session, tender, data.organisation_id)
    note = await _note(session, actor, tender, "round", data.organisation_id, data.round, data.minutes, now)
    await notify(
        session,
        data.organisation_id,
        tender.id,
        "negotiation.round",
        f"{tender.code}: the minutes of negotiation round {data.round} with you are on record.",
        now,
    )
    return note


async def amend(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.NegotiationAmendment,
    now: datetime,
) -> NegotiationNote:
    """An amendment of the requirements during negotiation, sent to every supplier that remains (74号令)."""
    tender = await tender_for_agency(session, actor, tender_id)
    _in_negotiation(tender)
    note = await _note(session, actor, tender, "amendment", None, None, data.text, now)
    for org in {b.organisation_id for b in await remaining_bids(session, tender.id)}:
        await notify(
            session,
            org,
            tender.id,
            "negotiation.amendment",
            f"{tender.code}: the requirements were amended during negotiation: {data.text[:200]}",
            now,
        )
    return note


async def exclude(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.NegotiationExclusion,
    now: datetime,
) -> NegotiationNote:
    """A supplier leaves the negotiation (its response does not meet the requirements), with the reason."""
    tender = await tender_for_agency(session, actor, tender_id)
    _in_negotiation(tender)
    await _remaining_supplier(session, tender, data.organisation_id)
    for bid in await remaining_bids(session, tender.id):
        if bid.organisation_id == data.organisation_id:
            bid.status = "excluded"
    note = await _note(session, actor, tender, "exclusion", data.organisation_id, None, data.reason, now)
    await notify(
        session,
        data.organisation_id,
        tender.id,
        "negotiation.exclusion",
        f"{tender.code}: your response leaves the negotiation: {data.reason[:200]}",
        now,
    )
    return note


async def notes(session: AsyncSession, actor: Principal, tender_id: uuid.UUID) -> list[NegotiationNote]:
    """The negotiation's records: all of them for the agency and those who watch; for a supplier, the
    amendments and its own rounds and exclusion, never another supplier's."""
    tender = await visible_tender(session, actor, tender_id)
    query = select(NegotiationNote).where(NegotiationNote.tender_id == tender.id)
    if not oversees(actor, tender):
        query = query.where(
            (NegotiationNote.kind == "amendment") | (NegotiationNote.organisation_id == actor.organisation_id)
        )
    return list(await session.scalars(query.order_by(NegotiationNote.recorded_at)))


async def call_final_quotes(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: schemas.FinalQuoteCall, now: datetime
) -> Tender:
    """End the rounds and ask the remaining suppliers for sealed final quotes by `deadline`; at least the
    procedure's minimum must remain on some lot (G-13)."""
    tender = await tender_for_agency(session, actor, tender_id)
    profile = _in_negotiation(tender)
    deadline = requested_instant("deadline", data.deadline)
    if deadline <= now:
        raise ValidationProblem(
            "The final quotes' deadline must be in the future.",
            errors=[field_error("deadline", "in the past")],
        )
    remaining = await remaining_bids(session, tender.id)
    per_lot: dict[uuid.UUID, int] = {}
    for bid in remaining:
        per_lot[bid.lot_id] = per_lot.get(bid.lot_id, 0) + 1
    if not per_lot or max(per_lot.values()) < profile.min_bids_to_open:
        raise RuleViolation(
            profile.rule("min_bids_to_open") or "G-13",
            f"At least {profile.min_bids_to_open} suppliers must remain to give final quotes.",
        )
    tender.final_quote_deadline = deadline
    await move(session, tender, Action.CALL_FINAL_QUOTES, actor, now)
    tender.next_check = final_quotes_close(tender)
    for org in {b.organisation_id for b in remaining}:
        await notify(
            session,
            org,
            tender.id,
            "negotiation.final_call",
            f"{tender.code}: seal your final quote by {deadline.isoformat()}; open it within "
            f"{profile.final_quote_reveal_minutes} minutes after.",
            now,
        )
    return tender


async def _own_remaining_bid(
    session: AsyncSession, tender: Tender, actor: Principal, lot_id: uuid.UUID
) -> Bid:
    for bid in await remaining_bids(session, tender.id):
        if bid.organisation_id == actor.organisation_id and bid.lot_id == lot_id:
            return bid
    raise ValidationProblem(
        "You have no response left in the negotiation of this lot.",
        errors=[field_error("lot_id", "no remaining response of yours")],
    )


async def seal_final_quote(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: schemas.FinalQuoteSeal, now: datetime
) -> FinalQuote:
    """A remaining supplier seals its final quote on a lot before the deadline (a later seal replaces it)."""
    await accounts.require_active(session, actor)
    tender = await load_tender(session, tender_id, lock=True)
    if tender.status == TenderStatus.DRAFT:
        raise NotFound("No such tender.")
    _negotiated(tender)
    if tender.status != TenderStatus.FINAL_QUOTES or tender.final_quote_deadline is None:
        raise Conflict(
            f"Final quotes are sealed once the agency calls for them; the trade is {tender.status}."
        )
    if now >= tender.final_quote_deadline:
        raise RuleViolation(
            "G-13",
            "The final quotes' deadline has passed; open your sealed quote instead.",
            final_quote_deadline=tender.final_quote_deadline.isoformat(),
        )
    if not HEX64.match(data.commitment):
        raise ValidationProblem(
            "The commitment is the lowercase hex SHA-256 of the final quote's message.",
            errors=[field_error("commitment", "64 lowercase hex digits")],
        )
    await _own_remaining_bid(session, tender, actor, data.lot_id)
    row = {
        "id": uuid.uuid4(),
        "tender_id": tender.id,
        "lot_id": data.lot_id,
        "organisation_id": actor.organisation_id,
        "commitment": data.commitment,
        "committed_at": now,
    }
    await session.execute(upsert_ignore(session, FinalQuote, row))
    quote = await session.scalar(
        select(FinalQuote).where(
            FinalQuote.lot_id == data.lot_id, FinalQuote.organisation_id == actor.organisation_id
        )
    )
    assert quote is not None
    quote.commitment, quote.committed_at = data.commitment, now
    await accounts.record(session, actor, "final_quote.seal", "final_quote", quote.id, now)
    return quote


async def open_final_quote(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: schemas.FinalQuoteOpen, now: datetime
) -> FinalQuote:
    """After the deadline, within the reveal window, a supplier opens its sealed final quote with the price
    and nonce; the platform checks them against the commitment."""
    await accounts.require_active(session, actor)
    tender = await load_tender(session, tender_id, lock=True)
    if tender.status == TenderStatus.DRAFT:
        raise NotFound("No such tender.")
    _negotiated(tender)
    closes = final_quotes_close(tender)
    if tender.status != TenderStatus.FINAL_QUOTES or tender.final_quote_deadline is None or closes is None:
        raise Conflict(f"There are no sealed final quotes to open; the trade is {tender.status}.")
    if not tender.final_quote_deadline <= now < closes:
        raise RuleViolation(
            "G-13",
            "Final quotes are opened after their deadline, within the window: "
            f"{tender.final_quote_deadline.isoformat()} to {closes.isoformat()}.",
        )
    quote = await session.scalar(
        select(FinalQuote).where(
            FinalQuote.lot_id == data.lot_id, FinalQuote.organisation_id == actor.organisation_id
        )
    )
    if quote is None or quote.tender_id != tender.id:
        raise ValidationProblem(
            "You sealed no final quote on this lot.", errors=[field_error("lot_id", "nothing sealed")]
        )
    if quote.revealed_at is not None:
        return quote
    expected = final_quote_commitment(
        tender.id, data.lot_id, actor.organisation_id, data.price_fen, data.nonce
    )
    if not hmac.compare_digest(expected, quote.commitment):
        raise ValidationProblem(
            "The price and nonce do not open the sealed final quote.",
            errors=[field_error("nonce", "does not match the commitment")],
        )
    quote.price_fen, quote.nonce, quote.revealed_at = data.price_fen, data.nonce, now
    await accounts.record(session, actor, "final_quote.open", "final_quote", quote.id, now)
    return quote


async def close_final_quotes(session: AsyncSession, tender: Tender, now: datetime) -> str:
    """The reveal window has ended: every opened final quote becomes its bid's price and all are published
    together; a supplier with none leaves; a lot with fewer than the minimum fails (G-13), and a trade with
    no lot left fails."""
    profile = _negotiated(tender)
    rule = profile.rule("min_bids_to_open") or "G-13"
    quotes = {
        (q.lot_id, q.organisation_id): q
        for q in await session.scalars(select(FinalQuote).where(FinalQuote.tender_id == tender.id))
    }
    lots = {lot.id: lot for lot in await lots_of(session, tender.id)}
    per_lot: dict[uuid.UUID, list[Bid]] = {}
    rejected: list[Bid] = []
    for bid in await remaining_bids(session, tender.id):
        quote = quotes.get((bid.lot_id, bid.organisation_id))
        if quote is None or quote.price_fen is None:
            bid.status = "excluded"
            continue
        bid.first_price_fen = (
            bid.first_price_fen if bid.first_price_fen is not None else bid.declared_price_fen
        )
        bid.declared_price_fen = quote.price_fen
        if await _reject_above_cap(session, tender, lots[bid.lot_id], bid, now):
            rejected.append(bid)
            continue
        per_lot.setdefault(bid.lot_id, []).append(bid)
    cal = await working_calendar(session)
    published = []
    for lot in lots.values():
        if lot.status != "open":
            continue
        kept = per_lot.get(lot.id, [])
        if len(kept) < profile.min_bids_to_open:
            lot.status = "failed"
            lot.outcome_reason = (
                f"{rule}: {len(kept)} final quote(s); at least {profile.min_bids_to_open} are needed"
            )
            await refunds.on_lot_settled(
                session, lot.id, profile.too_few_refund_rule, "lot_failed", local_date(now), cal, now
            )
        for bid in kept:
            org = await accounts.get_organisation(session, bid.organisation_id)
            published.append(
                {
                    "lot": lot.number,
                    "supplier": org.name,
                    "credit_code": org.credit_code,
                    "price_fen": bid.declared_price_fen,
                }
            )
    for bid in rejected:
        org = await accounts.get_organisation(session, bid.organisation_id)
        published.append(
            {
                "lot": lots[bid.lot_id].number,
                "supplier": org.name,
                "credit_code": org.credit_code,
                "price_fen": bid.declared_price_fen,
                "rejected": "W-19",
            }
        )
    await publish_notice(
        session,
        tender,
        "final_quotes",
        f"{tender.title} 最后报价",
        {"final_quotes": published, "opened_at": now.isoformat()},
        now,
    )
    if all(lot.status == "failed" for lot in await lots_of(session, tender.id)):
        await fail_tender(
            session,
            tender,
            None,
            rule,
            f"{rule}: too few final quotes on every lot; the trade is to be re-run",
            now,
        )
        return tender.status
    await move(session, tender, Action.CLOSE_FINAL_QUOTES, None, now)
    return tender.status


async def _reject_above_cap(session: AsyncSession, tender: Tender, lot: Lot, bid: Bid, now: datetime) -> bool:
    """A final quote above the lot's ceiling price or its budget does not respond to the documents (87号令
    63(4)): opened with the others, the platform rejects its bid under W-19 naming `price_fen`, as it
    rejects a bid above the cap at the opening, and the bid no longer counts towards the lot's minimum.
    Answers whether it was rejected."""
    cap = price_cap(tender.sector, lot)
    if cap is None or bid.declared_price_fen is None or bid.declared_price_fen <= cap[1]:
        return False
    field, limit = cap
    named = "budget" if field == "estimated_price_fen" else "ceiling price"
    detail = (
        f"the final quote's price_fen {bid.declared_price_fen} exceeds the lot's {named} ({field}) of {limit} "
        "fen (87号令 63(4))"
    )
    bid.rejection_rule = "W-19"
    bid.rejected_at = now
    bid.rejection = {
        "rule": "W-19",
        "reason": "price_fen",
        "field": "price_fen",
        "detail": detail,
        "limit": field,
        "limit_fen": limit,
        "declared_price_fen": bid.declared_price_fen,
        "evidence": {"detail": detail, field: limit, "price_fen": bid.declared_price_fen},
    }
    await accounts.record(
        session, None, "bid.reject", "bid", bid.id, now, rule="W-19", reason="price_fen", lot=lot.number
    )
    await notify(
        session,
        bid.organisation_id,
        tender.id,
        "bid.rejected",
        f"{tender.code} lot {lot.number}: your final quote is rejected — {detail}.",
        now,
    )
    return True
