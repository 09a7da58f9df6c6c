"""HTTP routes of the trading centre's own steps before a trade starts: project acceptance (项目受理), the
review of tender notices (公告审核), and the booking of its rooms (场地预约) — the opening hall, booked as a
notice is published, and the evaluation rooms, booked by the agency; the centre sees the calendar."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from litestar import Controller, Response, get, patch, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import authenticated, requires
from accounts.security import Principal
from storage import http
from storage.bounds import Cursor, Filter, Limit
from storage.clock import Clock
from storage.objects import ObjectStore
from storage.problems import requested_instant
from trading import projects, reviews, schemas, venues
from trading.models import Venue
from trading.tenders import review_read, tender_for_agency, tender_read

AGENCY = requires("agency")
CENTRE = requires("centre")
OVERSIGHT = requires("centre", "supervisor", "auditor")


class ProjectController(Controller):
    """Projects registered with the centre and its acceptance (项目受理)."""

    path = "/api/v1/projects"
    tags = ["centre"]

    @post("/", operation_id="register_project", guards=[AGENCY])
    async def register(
        self,
        data: schemas.ProjectCreate,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        clock: Clock,
    ) -> schemas.ProjectRead:
        """Register a project with its approval documents, pending the centre's acceptance."""
        return projects.project_read(
            await projects.register(session, principal, data, object_store, clock.now())
        )

    @get("/", operation_id="list_projects", guards=[authenticated])
    async def list_projects(
        self,
        principal: Principal,
        session: AsyncSession,
        status: Filter = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> schemas.ProjectPage:
        """Projects, newest first: an agency's own; all of them for the centre, supervisors and auditors."""
        rows, next_cursor = await projects.list_projects(
            session, principal, status=status, cursor=cursor, limit=limit
        )
        return schemas.ProjectPage([projects.project_read(p) for p in rows], next_cursor)

    @get("/{project_id:uuid}", operation_id="get_project", guards=[authenticated])
    async def get_one(
        self, project_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> schemas.ProjectRead:
        """One project, for its agency and those who oversee the centre."""
        return projects.project_read(await projects.visible_project(session, principal, project_id))

    @post("/{project_id:uuid}/decision", operation_id="decide_project", guards=[CENTRE], status_code=200)
    async def decide(
        self,
        project_id: uuid.UUID,
        data: schemas.ProjectDecision,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.ProjectRead:
        """The centre accepts the project, or refuses it with reasons."""
        return projects.project_read(await projects.decide(session, principal, project_id, data, clock.now()))


class ReviewController(Controller):
    """The centre's review of tender notices (公告审核)."""

    path = "/api/v1"
    tags = ["centre"]

    @get("/reviews", operation_id="list_pending_reviews", guards=[OVERSIGHT])
    async def pending(self, session: AsyncSession) -> list[schemas.NoticeReviewRead]:
        """The notices awaiting the centre's review, the longest waiting first."""
        return [review_read(r) for r in await reviews.pending(session)]

    @post("/tenders/{tender_id:uuid}/review", operation_id="decide_review", guards=[CENTRE], status_code=200)
    async def decide(
        self,
        tender_id: uuid.UUID,
        data: schemas.ReviewDecision,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> Response[schemas.TenderRead]:
        """Approve the submitted notice — the tender is published now — or refuse it with reasons."""
        tender = await reviews.decide(session, principal, tender_id, data, clock.now())
        read = await tender_read(session, tender, principal, clock.now())
        return Response(read, headers={"ETag": http.etag(tender.version)})


class VenueController(Controller):
    """The centre's rooms, their bookings and its calendar (场地预约)."""

    path = "/api/v1"
    tags = ["centre"]

    @get("/venues", operation_id="list_venues", guards=[CENTRE])
    async def list_venues(self, session: AsyncSession) -> list[schemas.VenueRead]:
        """The centre's opening hall and evaluation rooms with their capacities; a default room of a kind is
        listed once a booking first needs one and none was added."""
        return [venues.venue_read(v) for v in await venues.list_venues(session)]

    @post("/venues", operation_id="add_venue", guards=[CENTRE])
    async def add(
        self, data: schemas.VenueCreate, principal: Principal, session: AsyncSession, clock: Clock
    ) -> schemas.VenueRead:
        """Add a room of the centre."""
        return venues.venue_read(await venues.add_venue(session, principal, data, clock.now()))

    @patch("/venues/{venue_id:uuid}", operation_id="set_venue_capacity", guards=[CENTRE])
    async def set_capacity(
        self,
        venue_id: uuid.UUID,
        data: schemas.VenueUpdate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.VenueRead:
        """Change how many sessions a room holds at once."""
        venue: Venue = await venues.set_capacity(session, principal, venue_id, data, clock.now())
        return venues.venue_read(venue)

    @get("/venues/calendar", operation_id="venue_calendar", guards=[CENTRE])
    async def calendar(
        self,
        session: AsyncSession,
        start: Annotated[datetime, Parameter(query="from")],
        end: Annotated[datetime, Parameter(query="to")],
    ) -> list[schemas.BookingRead]:
        """Every booking of the centre's rooms between `from` and `to` (at most 366 days), by time."""
        return await venues.calendar(session, requested_instant("from", start), requested_instant("to", end))

    @post("/tenders/{tender_id:uuid}/bookings", operation_id="book_evaluation_room", guards=[AGENCY])
    async def book(
        self,
        tender_id: uuid.UUID,
        data: schemas.BookingCreate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.BookingRead:
        """Book an evaluation room for the tender's evaluation, from its bid deadline on."""
        tender = await tender_for_agency(session, principal, tender_id)
        booking = await venues.book_evaluation(session, tender, principal, data, clock.now())
        venue = await session.get(Venue, booking.venue_id)
        assert venue is not None
        return venues.booking_read(booking, venue.name, tender.code)


CENTRE_CONTROLLERS = [ProjectController, ReviewController, VenueController]
