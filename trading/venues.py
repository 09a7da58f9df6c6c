"""Venue booking (场地预约): the centre's rooms — the online opening hall (网上开标大厅), where a tender's
bids are opened at its deadline (W-08), and its evaluation rooms (评标室) — each holding a number of
sessions at once. Publishing a tender books its opening at the deadline; the agency books its evaluation;
the centre sees the calendar of both.

A room is full at an instant when as many sessions as its capacity run then; a booking is refused when the
room is full at any instant of it. The rooms are locked (in id order) while a booking is counted, so two
bookings cannot both take the last place."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from storage.db import upsert_ignore
from storage.problems import Conflict, NotFound, ValidationProblem, field_error, requested_instant
from trading import schemas
from trading.lifecycle import TenderStatus
from trading.models import Tender, Venue, VenueBooking

# The rooms a centre starts with, so that trading works before the centre lists its own: (name, kind,
# capacity). Each is added the first time a room of its kind is needed and none is listed.
DEFAULT_VENUES = (("网上开标大厅", "opening", 50), ("评标室", "evaluation", 4))
# Bookings of trades that ended before their time hold no place.
RELEASED = (TenderStatus.CANCELLED.value, TenderStatus.RETENDER.value)
LONGEST_EVALUATION = timedelta(days=7)
LONGEST_CALENDAR = timedelta(days=366)


async def rooms(session: AsyncSession, kind: str, now: datetime, *, lock: bool = False) -> list[Venue]:
    """The centre's rooms of `kind`, in id order (locked when asked); the default room when none is listed."""
    query = select(Venue).where(Venue.kind == kind).order_by(Venue.id)
    found = list(await session.scalars(query))
    if not found:
        for name, room_kind, capacity in DEFAULT_VENUES:
            if room_kind == kind:
                values = {
                    "id": uuid.uuid4(),
                    "name": name,
                    "kind": kind,
                    "capacity": capacity,
                    "created_at": now,
                }
                await session.execute(upsert_ignore(session, Venue, values))
    if lock or not found:
        query = query.with_for_update().execution_options(populate_existing=True)
        found = list(await session.scalars(query))
    return found


async def _sessions(
    session: AsyncSession, venue: Venue, start: datetime, end: datetime
) -> list[VenueBooking]:
    """The live bookings of `venue` overlapping [start, end)."""
    return list(
        await session.scalars(
            select(VenueBooking)
            .join(Tender, Tender.id == VenueBooking.tender_id)
            .where(
                VenueBooking.venue_id == venue.id,
                VenueBooking.starts_at < end,
                VenueBooking.ends_at > start,
                Tender.status.not_in(RELEASED),
            )
        )
    )


def peak(bookings: Sequence[VenueBooking], start: datetime, end: datetime) -> int:
    """The most of `bookings` running at one instant of [start, end): the count can only rise where one
    starts, so it is enough to look at `start` and at each start inside the interval."""
    instants = [start, *(b.starts_at for b in bookings if start < b.starts_at < end)]
    return max(sum(1 for b in bookings if b.starts_at <= t < b.ends_at) for t in instants)


async def _room_with_space(
    session: AsyncSession, candidates: Sequence[Venue], start: datetime, end: datetime
) -> Venue | None:
    for venue in candidates:
        if peak(await _sessions(session, venue, start, end), start, end) < venue.capacity:
            return venue
    return None


def opening_slot(tender: Tender) -> tuple[datetime, datetime]:
    """The opening's time in the hall: from the bid deadline to the end of the decryption window (W-08, E-02)."""
    return tender.bid_deadline, tender.bid_deadline + timedelta(minutes=tender.opening_window_minutes)


async def book_opening(session: AsyncSession, tender: Tender, actor: Principal | None, now: datetime) -> None:
    """Book the tender's opening in the online opening hall at its deadline, as it is published; refused
    when every hall is full then."""
    start, end = opening_slot(tender)
    venue = await _room_with_space(session, await rooms(session, "opening", now, lock=True), start, end)
    if venue is None:
        raise Conflict(
            "The online opening hall is fully booked at this bid deadline; choose another deadline.",
            errors=[field_error("bid_deadline", "opening hall full at this time")],
        )
    session.add(
        VenueBooking(
            venue_id=venue.id,
            tender_id=tender.id,
            kind="opening",
            starts_at=start,
            ends_at=end,
            booked_by=actor.user_id if actor is not None else None,
            booked_at=now,
        )
    )


async def move_opening(session: AsyncSession, tender: Tender) -> None:
    """The deadline moved out by law (W-02): the opening moves with it. The law is not refused for want of
    a place; the centre sees the calendar and makes room."""
    start, end = opening_slot(tender)
    for booking in await session.scalars(
        select(VenueBooking).where(VenueBooking.tender_id == tender.id, VenueBooking.kind == "opening")
    ):
        booking.starts_at, booking.ends_at = start, end


async def book_evaluation(
    session: AsyncSession, tender: Tender, actor: Principal, data: schemas.BookingCreate, now: datetime
) -> VenueBooking:
    """Book an evaluation session for the agency's published tender, after its bid deadline; refused when
    the room asked for (or every evaluation room) is full at some instant of it."""
    if tender.status in (TenderStatus.DRAFT, *RELEASED) or tender.status in (
        TenderStatus.COMPLETED,
        TenderStatus.UNSUCCESSFUL,
    ):
        raise Conflict(
            f"The tender is {tender.status}; an evaluation is booked for a published trade.",
            status_now=tender.status,
        )
    start = requested_instant("starts_at", data.starts_at)
    end = requested_instant("ends_at", data.ends_at)
    if start < tender.bid_deadline:
        raise ValidationProblem(
            "The evaluation follows the opening: book it from the bid deadline on.",
            errors=[field_error("starts_at", "before the bid deadline")],
        )
    if not start < end <= start + LONGEST_EVALUATION:
        raise ValidationProblem(
            "An evaluation session ends after it starts, within 7 days.",
            errors=[field_error("ends_at", "after starts_at, within 7 days")],
        )
    candidates = await rooms(session, "evaluation", now, lock=True)
    if data.venue_id is not None:
        candidates = [v for v in candidates if v.id == data.venue_id]
        if not candidates:
            raise ValidationProblem(
                "No such evaluation room.", errors=[field_error("venue_id", "no such evaluation room")]
            )
    venue = await _room_with_space(session, candidates, start, end)
    if venue is None:
        raise Conflict(
            "The evaluation room is fully booked at that time; choose another time or room.",
            errors=[field_error("starts_at", "evaluation room full at this time")],
        )
    booking = VenueBooking(
        venue_id=venue.id,
        tender_id=tender.id,
        kind="evaluation",
        starts_at=start,
        ends_at=end,
        booked_by=actor.user_id,
        booked_at=now,
    )
    session.add(booking)
    await session.flush()
    await accounts.record(
        session, actor, "venue.book", "tender", tender.id, now, venue=venue.name, starts_at=start.isoformat()
    )
    return booking


async def calendar(session: AsyncSession, start: datetime, end: datetime) -> list[schemas.BookingRead]:
    """Every live booking overlapping [start, end), by time then room."""
    if not start < end <= start + LONGEST_CALENDAR:
        raise ValidationProblem(
            "Ask for a calendar of at most 366 days, `to` after `from`.",
            errors=[field_error("to", "after from, within 366 days")],
        )
    rows = await session.execute(
        select(VenueBooking, Venue.name, Tender.code)
        .join(Venue, Venue.id == VenueBooking.venue_id)
        .join(Tender, Tender.id == VenueBooking.tender_id)
        .where(VenueBooking.starts_at < end, VenueBooking.ends_at > start, Tender.status.not_in(RELEASED))
        .order_by(VenueBooking.starts_at, Venue.name, VenueBooking.id)
    )
    return [booking_read(b, name, code) for b, name, code in rows]


def booking_read(b: VenueBooking, venue_name: str, tender_code: str) -> schemas.BookingRead:
    return schemas.BookingRead(
        id=b.id,
        venue_id=b.venue_id,
        venue_name=venue_name,
        tender_id=b.tender_id,
        tender_code=tender_code,
        kind=b.kind,
        starts_at=b.starts_at,
        ends_at=b.ends_at,
    )


def venue_read(v: Venue) -> schemas.VenueRead:
    return schemas.VenueRead(id=v.id, name=v.name, kind=v.kind, capacity=v.capacity)


async def list_venues(session: AsyncSession) -> list[Venue]:
    """The centre's rooms listed so far (a default room is listed once first needed)."""
    return list(await session.scalars(select(Venue).order_by(Venue.kind, Venue.name)))


async def add_venue(
    session: AsyncSession, actor: Principal, data: schemas.VenueCreate, now: datetime
) -> Venue:
    """Add a room of the centre; names are unique."""
    taken = await session.scalar(select(Venue.id).where(Venue.name == data.name))
    if taken is not None:
        raise Conflict("A room of that name is listed already.", errors=[field_error("name", "taken")])
    venue = Venue(name=data.name, kind=data.kind, capacity=data.capacity, created_at=now)
    session.add(venue)
    await session.flush()
    await accounts.record(session, actor, "venue.add", "venue", venue.id, now, capacity=data.capacity)
    return venue


async def set_capacity(
    session: AsyncSession, actor: Principal, venue_id: uuid.UUID, data: schemas.VenueUpdate, now: datetime
) -> Venue:
    """Change how many sessions a room holds at once; bookings already made stand."""
    venue = await session.get(Venue, venue_id, with_for_update=True)
    if venue is None:
        raise NotFound("No such room.")
    before = venue.capacity
    venue.capacity = data.capacity
    await accounts.record(
        session, actor, "venue.capacity", "venue", venue.id, now, before=before, after=data.capacity
    )
    return venue
