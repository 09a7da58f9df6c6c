"""Publishing a tender notice (招标公告): every check publishing must pass — its project accepted (项目受理),
the tenderer's credit code (G-08), the timeline against the profile's period (W-01, G-02), the documents,
the custodians, the invited suppliers (G-13), a single source's announcement (G-14) — and the publication
itself at the instant the centre approves the notice (`trading.reviews`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.security import Principal
from rules.calendar import SHANGHAI, local_date
from rules.profiles import ProcedureProfile, profile_for
from rules.schedule import working_calendar
from storage.problems import Conflict, RuleViolation, ValidationProblem, field_error
from trading import engine, participation, projects, venues
from trading.lifecycle import Action, TenderStatus
from trading.models import Document, Tender
from trading.notices import publish_notice
from trading.tenders import bid_valid_through, earliest_deadline_day, issue_documents, lots_of, move, notify


@dataclass(frozen=True)
class Publication:
    """What publishing a tender at an instant would do, once every check has passed: the procedure, the
    day documents are first issued, the custodians, the invited suppliers and the announcement's last day."""

    profile: ProcedureProfile
    documents_from: datetime
    custodians: list[uuid.UUID]
    invited: list[uuid.UUID]
    announced_until: date | None


async def check_publishable(session: AsyncSession, tender: Tender, now: datetime) -> Publication:
    """Every check publishing the draft at `now` must pass, changing nothing: its project accepted, the
    tenderer's credit code (G-08), the timeline against the profile's period (W-01, G-02), the documents
    uploaded, the custodians named, the invited suppliers (G-13) and a single source's announcement (G-14).
    The agency's submission runs them, and the centre's approval again at its own instant."""
    if tender.status != TenderStatus.DRAFT:
        raise Conflict(f"The tender is {tender.status}; only a draft can be published.")
    await projects.require_accepted(session, tender)
    if not tender.tenderer_credit_code:
        raise RuleViolation(
            "G-08",
            "Name the tenderer's unified social credit code before publishing: the committee draw avoids the "
            "tenderer's staff by it.",
            errors=[field_error("tenderer_credit_code", "required to publish")],
        )
    profile = profile_for(tender.sector, tender.method, tender.envelopes)
    cal = await working_calendar(session)
    documents_from = max(tender.documents_from, now)
    earliest = earliest_deadline_day(cal, profile, documents_from)
    if local_date(tender.bid_deadline) < earliest:
        raise RuleViolation(
            profile.rule("documents_to_deadline_days") or "W-01",
            f"Bids may not close before {earliest.isoformat()}: at least {profile.documents_to_deadline_days} "
            f"{'working days' if profile.deadline_in_working_days else 'days'} "
            f"must pass after the documents are first issued on {local_date(documents_from).isoformat()}.",
            earliest_deadline_day=earliest.isoformat(),
            errors=[field_error("bid_deadline", f"earliest legal day is {earliest.isoformat()}")],
        )
    documents = await session.scalar(
        select(func.count())
        .select_from(Document)
        .where(Document.tender_id == tender.id, Document.kind == "tender_documents")
    )
    if not documents:
        raise Conflict(
            "Upload the tender documents before publishing.",
            errors=[field_error("documents", "none uploaded")],
        )
    orgs = [uuid.UUID(str(org)) for org in tender.custodian_organisations]
    if not orgs:
        raise ValidationProblem(
            "Name the opening custodians before publishing.", errors=[field_error("custodians", "none named")]
        )
    await engine.bids().check_custodians(session, tender, orgs)
    invited = await participation.check_invited(session, profile, tender)
    announced_until = participation.check_announcement(cal, profile, tender, now)
    return Publication(profile, documents_from, orgs, invited, announced_until)


async def publish(session: AsyncSession, tender: Tender, actor: Principal, now: datetime) -> Tender:
    """Publish the tender notice at `now`, the instant the centre approves it (公告审核), every check of
    `check_publishable` passed again at that instant: the custodians are appointed, the opening hall is
    booked at the deadline (W-08), the invited suppliers are told and the notice goes to the public board."""
    checked = await check_publishable(session, tender, now)
    profile, invited, announced_until = checked.profile, checked.invited, checked.announced_until
    tender.documents_from = checked.documents_from
    custodians = await engine.bids().appoint_custodians(session, tender, checked.custodians, now)
    await venues.book_opening(session, tender, actor, now)
    tender.published_at = now
    await move(session, tender, Action.PUBLISH, actor, now)
    for org_id in invited:
        await notify(
            session,
            org_id,
            tender.id,
            "tender.invited",
            f"{tender.code}: you are invited to {profile.title}: «{tender.title}», bids close "
            f"{tender.bid_deadline.astimezone(SHANGHAI).isoformat()}.",
            now,
        )
    lots = await lots_of(session, tender.id)
    await publish_notice(
        session,
        tender,
        "tender_notice",
        f"{tender.title} 招标公告",
        {
            "procedure": profile.title,
            **({"method_approval": tender.method_approval} if tender.method_approval else {}),
            "tenderer": tender.tenderer_name,
            "qualification": tender.qualification,
            "evaluation_method": tender.evaluation_method,
            "documents_from": tender.documents_from.isoformat(),
            "bid_deadline": tender.bid_deadline.isoformat(),
            "bid_validity_days": tender.bid_validity_days,
            "bid_valid_through": bid_valid_through(tender).isoformat(),
            "max_lots_per_supplier": tender.max_lots_per_supplier,
            "evaluation_rooms": tender.evaluation_rooms,
            "opening": "online opening hall at the bid deadline (W-08)",
            "sealing": {
                "format": "age v1 (age-encryption.org/v1) with ggzy-share custody stanzas",
                "custody_threshold": tender.custody_threshold,
                "shamir_threshold": tender.custody_shamir_threshold,
                "opening_policy": tender.opening_policy,
                "envelopes": tender.envelopes,
                "custodians": custodians,
            },
            "lots": [
                {
                    "number": lot.number,
                    "title": lot.title,
                    "estimated_price_fen": lot.estimated_price_fen,
                    "deposit_fen": lot.deposit_fen,
                }
                | ({"budget_fen": lot.estimated_price_fen} if profile.sector == "procurement" else {})
                | ({"ceiling_price_fen": lot.ceiling_price_fen} if lot.ceiling_price_fen is not None else {})
                for lot in lots
            ],
        }
        | await participation.announcement(session, tender, invited, announced_until),
        now,
    )
    if tender.documents_from <= now:
        await issue_documents(session, tender, None, now)
    return tender
