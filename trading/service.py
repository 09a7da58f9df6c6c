"""Use cases of a works tender, from draft to completed contract.

Each function is one business transition, in the same order every time: load and check the state,
make the change, write the audit entry, write the outbox entry; the caller commits. Refusals are
`Problem`s naming the rule from RULES.md.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import msgspec
from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import flag_modified

import bidding.service as bidding
import escrow.service as escrow
from accounts import service as accounts
from accounts.security import Principal
from accounts.uscc import InvalidUSCC, validate_uscc
from bidding import agekeys, collusion, custody, envelope, opening_record
from bidding.models import BidEvent
from escrow.eligibility import NO_DEPOSIT
from rules.calendar import (
    SHANGHAI,
    OfficialSchedule,
    ScheduleError,
    WorkingCalendar,
    end_of_day,
    local_date,
)
from rules.profiles import (
    ProcedureProfile,
    bid_validity_problem,
    committee_ok,
    deposit_cap,
    performance_security_cap,
    profile_for,
)
from rules.schedule import store_schedule, working_calendar
from storage import outbox, uploads
from storage.db import transaction, upsert_ignore
from storage.objects import (
    InvalidObjectKey,
    InvalidUpload,
    ObjectNotFound,
    ObjectStore,
    UploadNotFound,
)
from storage.pagination import check_limit, decode_cursor, page_after
from storage.problems import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    RuleViolation,
    ValidationProblem,
    field_error,
)
from storage.signing import LogSigner
from trading import board, schemas
from trading.lifecycle import (
    CALLER_ACTIONS,
    Action,
    IllegalTransition,
    TenderStatus,
    allowed_actions,
    next_status,
)
from trading.models import (
    Award,
    Bid,
    Clarification,
    CodeCounter,
    Complaint,
    Contract,
    Document,
    DocumentAccess,
    Lot,
    Notice,
    Notification,
    Objection,
    Report,
    Tender,
)

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
# What one organisation may hold in uploads on one tender (GGZY_UPLOAD_QUOTA_BYTES): open grants at their
# cap, copies on record and in flight. Eight envelopes or documents of the largest size.
UPLOAD_QUOTA_BYTES = 8 * MAX_UPLOAD_BYTES
UPLOAD_GRANT_TTL = timedelta(hours=2)
DOWNLOAD_GRANT_TTL = timedelta(minutes=30)
DECRYPTION_GRACE = timedelta(minutes=15)
# Envelopes from this size go up in parts of PART_SIZE (each ≥ the S3 minimum but the last), resumable.
MULTIPART_FROM = 64 * 1024 * 1024
PART_SIZE = 16 * 1024 * 1024
SECTOR_LETTER = {"works": "W", "procurement": "G", "land": "L", "assets": "A"}

log = logging.getLogger("ggzy.trading")


# ---------------------------------------------------------------- calendar


async def load_schedule(
    session: AsyncSession, actor: Principal | None, data: schemas.ScheduleIn, now: datetime
) -> OfficialSchedule:
    """Load (or replace) a year's official holidays and make-up working days."""
    raw = {
        "year": data.year,
        "holidays": [d.isoformat() for d in data.holidays],
        "makeup_workdays": [d.isoformat() for d in data.makeup_workdays],
    }
    try:
        schedule = OfficialSchedule.from_dict(raw)
    except ScheduleError as exc:
        raise ValidationProblem(str(exc), errors=[field_error("holidays", str(exc))]) from exc
    await store_schedule(session, schedule, now)
    await accounts.record(session, actor, "calendar.load", "calendar_year", data.year, now)
    return schedule


# ---------------------------------------------------------------- reading and visibility


async def _tender(session: AsyncSession, tender_id: uuid.UUID, *, lock: bool = False) -> Tender:
    query = select(Tender).where(Tender.id == tender_id)
    if lock:
        # Locking reads the row afresh: what this transaction saw before the lock may be stale.
        query = query.with_for_update().execution_options(populate_existing=True)
    tender = await session.scalar(query)
    if tender is None:
        raise NotFound("No such tender.")
    return tender


def _can_manage(actor: Principal, tender: Tender) -> bool:
    return actor.has("agency") and actor.organisation_id == tender.agency_organisation_id


async def tender_for_agency(session: AsyncSession, actor: Principal, tender_id: uuid.UUID) -> Tender:
    """The tender if the caller's agency runs it (locked for update); 404 otherwise."""
    tender = await _tender(session, tender_id, lock=True)
    if not _can_manage(actor, tender):
        raise NotFound("No such tender.")
    await accounts.require_active(session, actor)
    return tender


async def visible_tender(session: AsyncSession, actor: Principal | None, tender_id: uuid.UUID) -> Tender:
    """The tender as `actor` may see it: drafts only by their agency and the centre."""
    tender = await _tender(session, tender_id)
    if tender.status == TenderStatus.DRAFT and not (
        actor is not None and (_can_manage(actor, tender) or actor.has("centre", "supervisor"))
    ):
        raise NotFound("No such tender.")
    return tender


SEALED_STATUSES = (TenderStatus.PUBLISHED, TenderStatus.TENDERING)


async def sealed_tender_ids(session: AsyncSession) -> frozenset[uuid.UUID]:
    """The tenders whose bids are still sealed: published or tendering, so the deadline has not come. Who
    obtained their documents or bid, and how many, is disclosed to nobody (W-20)."""
    return frozenset(await session.scalars(select(Tender.id).where(Tender.status.in_(SEALED_STATUSES))))


async def tender_by_id(session: AsyncSession, tender_id: uuid.UUID) -> Tender:
    """A tender by id, for another package that has already checked the caller's right to it."""
    return await _tender(session, tender_id)


async def bidder_organisations(session: AsyncSession, tender_id: uuid.UUID) -> list[uuid.UUID]:
    """The organisations with a bid standing in the tender (submitted, not withdrawn)."""
    rows = await session.scalars(
        select(Bid.organisation_id).where(Bid.tender_id == tender_id, Bid.status == "submitted").distinct()
    )
    return list(rows)


def _arrival() -> Any:
    """A bid's place in its tender's arrival order: the tender-log sequence of its submission (bids logged
    before tenders had logs of their own fall back to their submission instant, then their id), so bids
    submitted in the same instant still read out in the order the platform received them."""
    return select(func.min(BidEvent.seq)).where(BidEvent.bid_id == Bid.id).correlate(Bid).scalar_subquery()


def in_arrival_order(query: Any) -> Any:
    """`query` over Bid, ordered as the bids arrived (the opening record's and the evaluation's order)."""
    return query.order_by(Bid.submitted_at, _arrival().nulls_first(), Bid.id)


async def evaluable_bids(session: AsyncSession, tender_id: uuid.UUID) -> list[Bid]:
    """The opened, valid bids of the tender, in the order they were submitted."""
    rows = await session.scalars(
        in_arrival_order(
            select(Bid).where(
                Bid.tender_id == tender_id, Bid.status == "submitted", Bid.revealed_at.is_not(None)
            )
        )
    )
    return list(rows)


async def same_tenderer(session: AsyncSession, tender: Tender) -> list[uuid.UUID]:
    """The other tenders of the same tenderer (by credit code when known, else by name)."""
    match = (
        Tender.tenderer_credit_code == tender.tenderer_credit_code
        if tender.tenderer_credit_code
        else Tender.tenderer_name == tender.tenderer_name
    )
    return list(await session.scalars(select(Tender.id).where(match, Tender.id != tender.id)))


async def notify(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    tender_id: uuid.UUID | None,
    kind: str,
    message: str,
    now: datetime,
) -> None:
    """A message to one organisation, delivered after commit through the outbox."""
    outbox.enqueue(
        session,
        "trading.notify",
        {
            "tender_id": str(tender_id),
            "organisations": [str(organisation_id)],
            "kind": kind,
            "message": message,
        },
        now,
    )


async def lots_of(session: AsyncSession, tender_id: uuid.UUID) -> list[Lot]:
    """The tender's lots, by number."""
    return list(await session.scalars(select(Lot).where(Lot.tender_id == tender_id).order_by(Lot.number)))


def caller_actions(tender: Tender, actor: Principal | None, now: datetime | None) -> list[str]:
    """What `actor` can ask of the tender now: only its agency acts on it, and only where the rules allow it
    at `now` (no termination after the deadline, W-08; no award during the candidates' publicity, W-12)."""
    if actor is None or now is None or not _can_manage(actor, tender):
        return []
    status = TenderStatus(tender.status)
    out = []
    for action in allowed_actions(status):
        if action not in CALLER_ACTIONS:
            continue
        if action is Action.CANCEL and status is TenderStatus.TENDERING and now >= tender.bid_deadline:
            continue
        if action is Action.AWARD and (tender.publicity_ends is None or now < tender.publicity_ends):
            continue
        out.append(action.value)
    return out


async def tender_read(
    session: AsyncSession, tender: Tender, actor: Principal | None = None, now: datetime | None = None
) -> schemas.TenderRead:
    """The API view of a tender with its lots, and what `actor` can ask of it at `now` (`allowed_actions`:
    nothing unless both are given)."""
    lots = await lots_of(session, tender.id)
    return schemas.TenderRead(
        id=tender.id,
        code=tender.code,
        title=tender.title,
        sector=tender.sector,
        method=tender.method,
        status=tender.status,
        agency_organisation_id=tender.agency_organisation_id,
        tenderer_name=tender.tenderer_name,
        tenderer_credit_code=tender.tenderer_credit_code,
        region_code=tender.region_code,
        qualification=tender.qualification,
        evaluation_method=tender.evaluation_method,
        documents_from=tender.documents_from,
        bid_deadline=tender.bid_deadline,
        opening_window_minutes=tender.opening_window_minutes,
        publicity_days=tender.publicity_days,
        lots=[
            schemas.LotRead(
                lot.id,
                lot.number,
                lot.title,
                lot.estimated_price_fen,
                lot.deposit_fen,
                lot.status,
                lot.outcome_reason,
            )
            for lot in lots
        ],
        created_at=tender.created_at,
        published_at=tender.published_at,
        opened_at=tender.opened_at,
        publicity_ends=tender.publicity_ends,
        awarded_at=tender.awarded_at,
        paused_reason=tender.paused_reason,
        outcome_reason=tender.outcome_reason,
        parent_id=tender.parent_id,
        next_check=tender.next_check,
        allowed_actions=caller_actions(tender, actor, now),
        version=tender.version,
        custody_threshold=tender.custody_threshold,
        opening_policy=tender.opening_policy,
        custodian_organisations=[uuid.UUID(str(o)) for o in tender.custodian_organisations],
        custodians=[
            schemas.CustodianRead(
                c.position,
                c.organisation_id,
                c.public_key,
                agekeys.recipient(base64.b64decode(c.public_key)),
                c.platform,
                opening_record.fingerprint(base64.b64decode(c.public_key)),
            )
            for c in await bidding.roster(session, tender.id)
        ],
        custody_until=tender.custody_until,
        bid_validity_days=tender.bid_validity_days,
        shamir_threshold=tender.custody_shamir_threshold,
    )


async def list_tenders(
    session: AsyncSession,
    actor: Principal | None,
    *,
    status: str | None,
    mine: bool,
    cursor: str | None,
    limit: int,
) -> tuple[list[Tender], str | None]:
    """Tenders the caller may see, newest first; `mine` keeps the caller agency's own, drafts included."""
    limit = check_limit(limit)
    query = select(Tender).order_by(Tender.created_at.desc(), Tender.id.desc()).limit(limit + 1)
    if mine:
        if actor is None or not actor.has("agency"):
            raise Forbidden("Only an agency has tenders of its own.")
        query = query.where(Tender.agency_organisation_id == actor.organisation_id)
    elif not (actor is not None and actor.has("centre", "supervisor")):
        query = query.where(Tender.status != TenderStatus.DRAFT)
    if status:
        query = query.where(Tender.status == status)
    if cursor:
        at, row_id = decode_cursor(cursor)
        query = query.where((Tender.created_at < at) | ((Tender.created_at == at) & (Tender.id < row_id)))
    return page_after(list(await session.scalars(query)), limit, "created_at")


# ---------------------------------------------------------------- transitions


async def _move(
    session: AsyncSession,
    tender: Tender,
    action: Action,
    actor: Principal | None,
    now: datetime,
    **detail: Any,
) -> None:
    """Apply one transition of the state machine and log it; the only place `status` is written."""
    try:
        target = next_status(TenderStatus(tender.status), action)
    except IllegalTransition as exc:
        raise Conflict(str(exc), status_now=tender.status) from exc
    before = tender.status
    tender.status = target.value
    tender.next_check = _next_check(tender)
    await accounts.record(
        session,
        actor,
        f"tender.{action.value}",
        "tender",
        tender.id,
        now,
        before=before,
        after=target.value,
        **detail,
    )


def _next_check(tender: Tender) -> datetime | None:
    """When the chronograph must look at this tender next."""
    status = TenderStatus(tender.status)
    if status == TenderStatus.PUBLISHED:
        return tender.documents_from
    if status == TenderStatus.TENDERING:
        return tender.bid_deadline
    if status == TenderStatus.OPENING:
        return tender.custody_until or _window_end(tender)
    return None


def _window_end(tender: Tender) -> datetime:
    """The end of the decryption window (E-02): it runs from when the opening hall opened, which is the
    deadline itself unless an objection (W-03) paused the trade past it."""
    return (tender.opened_at or tender.bid_deadline) + timedelta(minutes=tender.opening_window_minutes)


async def _next_code(session: AsyncSession, region: str, sector: str, year: int) -> str:
    """A readable transaction code (交易编码): GGZY-<region>-<year>-<sector letter><6-digit sequence>."""
    scope = f"{region}-{year}-{sector}"
    # Two first tenders of a year may race to create the counter: insert-if-missing, then lock and bump.
    await session.execute(upsert_ignore(session, CodeCounter, {"scope": scope, "value": 0}))
    counter = await session.scalar(
        select(CodeCounter)
        .where(CodeCounter.scope == scope)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert counter is not None
    counter.value += 1
    return f"GGZY-{region}-{year}-{SECTOR_LETTER[sector]}{counter.value:06d}"


def _check_deposits(profile: ProcedureProfile, lots: Sequence[schemas.LotIn]) -> None:
    errors = []
    for i, lot in enumerate(lots):
        cap = deposit_cap(profile, lot.estimated_price_fen)
        if lot.deposit_fen > cap:
            errors.append(
                field_error(f"lots[{i}].deposit_fen", f"at most {cap} fen for this estimated price")
            )
    if errors:
        raise RuleViolation(
            "W-04",
            "A bid deposit may be at most 2% of the lot's estimated price, and at most 800,000 yuan for works.",
            errors=errors,
        )


def _check_bid_validity(profile: ProcedureProfile, days: int) -> int:
    """The bid validity period (投标有效期) the documents state, checked against the profile."""
    why = bid_validity_problem(profile, days)
    if why is not None:
        raise ValidationProblem(
            f"The bid validity period must be {why}: bids, and the guarantees given as their deposits, "
            "must stay valid through evaluation, publicity and the contract.",
            errors=[field_error("bid_validity_days", why)],
        )
    return days


def _aware(field: str, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValidationProblem(
            f"{field} must carry a time zone (e.g. +08:00 or Z).",
            errors=[field_error(field, "naive datetime")],
        )
    if not 2000 <= value.year <= 2099:  # far instants overflow on conversion to UTC (a 500, not a 422)
        raise ValidationProblem(
            f"{field} must fall within the years 2000 to 2099.", errors=[field_error(field, "out of range")]
        )
    return value


def _tenderer_credit_code(code: str | None) -> str | None:
    """The tenderer's credit code normalised (full-width folded, upper case), or a problem naming the field."""
    if code is None:
        return None
    try:
        return validate_uscc(code)
    except InvalidUSCC as exc:
        raise ValidationProblem(
            f"tenderer_credit_code is not a unified social credit code: {exc}.",
            errors=[field_error("tenderer_credit_code", str(exc))],
        ) from exc


async def create_tender(
    session: AsyncSession, actor: Principal, data: schemas.TenderCreate, now: datetime
) -> Tender:
    """Save a new tender as a draft of the caller's agency."""
    await accounts.require_active(session, actor)
    data = msgspec.structs.replace(
        data, tenderer_credit_code=_tenderer_credit_code(data.tenderer_credit_code)
    )
    profile = profile_for(data.sector, data.method)
    _check_deposits(profile, data.lots)
    validity = _check_bid_validity(profile, data.bid_validity_days or profile.bid_validity_days)
    documents_from = _aware("documents_from", data.documents_from)
    bid_deadline = _aware("bid_deadline", data.bid_deadline)
    if bid_deadline <= documents_from:
        raise ValidationProblem(
            "bid_deadline must come after documents_from.",
            errors=[field_error("bid_deadline", "before documents_from")],
        )
    tender = await _new_draft(
        session, data, actor.organisation_id, documents_from, bid_deadline, data.lots, now, validity=validity
    )
    await accounts.record(session, actor, "tender.create", "tender", tender.id, now, code=tender.code)
    return tender


DRAFT_TERMS = (
    "title",
    "sector",
    "method",
    "tenderer_name",
    "tenderer_credit_code",
    "region_code",
    "qualification",
    "evaluation_method",
    "opening_window_minutes",
    "publicity_days",
    "custody_threshold",
    "opening_policy",
)


async def _new_draft(
    session: AsyncSession,
    terms: schemas.TenderCreate | Tender,
    agency_id: uuid.UUID,
    documents_from: datetime,
    bid_deadline: datetime,
    lots: Sequence[schemas.LotIn],
    now: datetime,
    *,
    validity: int,
    parent_id: uuid.UUID | None = None,
) -> Tender:
    """A new draft with the `terms` of a request or of an earlier tender, its own code and its lots."""
    tender = Tender(
        code=await _next_code(session, terms.region_code, terms.sector, local_date(now).year),
        status=TenderStatus.DRAFT.value,
        agency_organisation_id=agency_id,
        documents_from=documents_from,
        bid_deadline=bid_deadline,
        created_at=now,
        parent_id=parent_id,
        bid_validity_days=validity,
        custodian_organisations=(
            list(terms.custodian_organisations)
            if isinstance(terms, Tender)
            else [str(org) for org in terms.custodians]
        ),
        **{name: getattr(terms, name) for name in DRAFT_TERMS},
    )
    session.add(tender)
    await session.flush()
    _add_lots(session, tender, lots)
    await session.flush()
    return tender


def _add_lots(session: AsyncSession, tender: Tender, lots: Sequence[schemas.LotIn]) -> None:
    for number, lot in enumerate(lots, start=1):
        session.add(
            Lot(
                tender_id=tender.id,
                number=number,
                title=lot.title,
                estimated_price_fen=lot.estimated_price_fen,
                deposit_fen=lot.deposit_fen,
                status="open",
            )
        )


def _check_version(tender: Tender, if_match: int | None) -> None:
    if if_match is not None and if_match != tender.version:
        raise PreconditionFailed(
            f"The tender is at version {tender.version}, not {if_match}; reload it and try again.",
            current_version=tender.version,
        )


async def update_tender(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.TenderUpdate,
    if_match: int,
    now: datetime,
) -> Tender:
    """Edit a draft; the caller must name the version it read (If-Match)."""
    tender = await tender_for_agency(session, actor, tender_id)
    _check_version(tender, if_match)
    if tender.status != TenderStatus.DRAFT:
        raise Conflict(
            "Only a draft can be edited; a published tender changes by clarification (W-02).", rule="W-02"
        )
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    touched = sorted(changes)
    if "tenderer_credit_code" in changes:
        changes["tenderer_credit_code"] = _tenderer_credit_code(changes["tenderer_credit_code"])
    if "lots" in changes:
        _check_deposits(profile_for(tender.sector, tender.method), data.lots)  # type: ignore[arg-type]
        for lot in await lots_of(session, tender.id):
            await session.delete(lot)
        await session.flush()
        _add_lots(session, tender, data.lots)  # type: ignore[arg-type]
        changes.pop("lots")
        # The lots are part of the tender's representation: its version (the ETag) must move with them.
        flag_modified(tender, "title")
    if "custodians" in changes:
        tender.custodian_organisations = [str(org) for org in changes.pop("custodians")]
    if "bid_validity_days" in changes:
        _check_bid_validity(profile_for(tender.sector, tender.method), changes["bid_validity_days"])
    for name, value in changes.items():
        if isinstance(value, datetime):
            _aware(name, value)
        setattr(tender, name, value)
    if tender.bid_deadline <= tender.documents_from:
        raise ValidationProblem(
            "bid_deadline must come after documents_from.",
            errors=[field_error("bid_deadline", "before documents_from")],
        )
    await session.flush()
    await accounts.record(session, actor, "tender.update", "tender", tender.id, now, fields=touched)
    return tender


def earliest_deadline_day(cal: WorkingCalendar, profile: ProcedureProfile, documents_from: datetime) -> date:
    """The first day a bid deadline may fall on when documents are first issued at `documents_from` (W-01)."""
    return cal.earliest_after(local_date(documents_from), profile.documents_to_deadline_days)


async def publish(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, if_match: int | None, now: datetime
) -> Tender:
    """Publish the tender notice; the timeline must respect W-01 and the documents must be uploaded."""
    tender = await tender_for_agency(session, actor, tender_id)
    _check_version(tender, if_match)
    if tender.status != TenderStatus.DRAFT:
        raise Conflict(f"The tender is {tender.status}; only a draft can be published.")
    if not tender.tenderer_credit_code:
        raise RuleViolation(
            "G-08",
            "Name the tenderer's unified social credit code before publishing: the committee draw avoids the "
            "tenderer's staff by it.",
            errors=[field_error("tenderer_credit_code", "required to publish")],
        )
    profile = profile_for(tender.sector, tender.method)
    cal = await working_calendar(session)
    if tender.documents_from < now:
        tender.documents_from = now
    earliest = earliest_deadline_day(cal, profile, tender.documents_from)
    if local_date(tender.bid_deadline) < earliest:
        raise RuleViolation(
            "W-01",
            f"Bids may not close before {earliest.isoformat()}: at least {profile.documents_to_deadline_days} days "
            f"must pass after the documents are first issued on {local_date(tender.documents_from).isoformat()}.",
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
    custodians = await bidding.set_roster(session, tender.id, orgs, tender.custody_threshold, now)
    tender.custody_shamir_threshold = bidding.shamir_threshold(custodians, tender.custody_threshold)
    tender.published_at = now
    await _move(session, tender, Action.PUBLISH, actor, now)
    lots = await lots_of(session, tender.id)
    await _publish_notice(
        session,
        tender,
        "tender_notice",
        f"{tender.title} 招标公告",
        {
            "tenderer": tender.tenderer_name,
            "qualification": tender.qualification,
            "evaluation_method": tender.evaluation_method,
            "documents_from": tender.documents_from.isoformat(),
            "bid_deadline": tender.bid_deadline.isoformat(),
            "bid_validity_days": tender.bid_validity_days,
            "bid_valid_through": bid_valid_through(tender).isoformat(),
            "opening": "online opening hall at the bid deadline (W-08)",
            "sealing": {
                "format": "age v1 (age-encryption.org/v1) with ggzy-share custody stanzas",
                "custody_threshold": tender.custody_threshold,
                "shamir_threshold": tender.custody_shamir_threshold,
                "opening_policy": tender.opening_policy,
                "custodians": [
                    {
                        "position": c.position,
                        "recipient": agekeys.recipient(base64.b64decode(c.public_key)),
                        "platform": c.platform,
                    }
                    for c in custodians
                ],
            },
            "lots": [
                {
                    "number": lot.number,
                    "title": lot.title,
                    "estimated_price_fen": lot.estimated_price_fen,
                    "deposit_fen": lot.deposit_fen,
                }
                for lot in lots
            ],
        },
        now,
    )
    if tender.documents_from <= now:
        await _issue_documents(session, tender, None, now)
    return tender


async def _issue_documents(
    session: AsyncSession, tender: Tender, actor: Principal | None, now: datetime
) -> None:
    tender.documents_issued_at = now
    await _move(session, tender, Action.ISSUE_DOCUMENTS, actor, now)


async def cancel(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, reason: str, now: datetime
) -> Tender:
    """Terminate the tender before the deadline (终止招标), with a public notice when it was published."""
    tender = await tender_for_agency(session, actor, tender_id)
    if tender.status == TenderStatus.TENDERING and now >= tender.bid_deadline:
        raise Conflict(
            "The bid deadline has passed: the bids are opened (W-08), the tender can no longer be terminated.",
            rule="W-08",
        )
    was_public = tender.status != TenderStatus.DRAFT
    tender.outcome_reason = reason
    tender.closed_at = now
    await _move(session, tender, Action.CANCEL, actor, now, reason=reason)
    await _settle_all_lots(session, tender, "tender_terminated", now)
    if was_public:
        await _publish_notice(
            session, tender, "termination", f"{tender.title} 终止公告", {"reason": reason}, now
        )
        await _notify_holders(
            session, tender, "tender.cancelled", f"{tender.code} was terminated: {reason}", now
        )
    return tender


async def retender(session: AsyncSession, actor: Principal, tender_id: uuid.UUID, now: datetime) -> Tender:
    """Start a new tender from a failed or terminated one (重新招标): a draft copying its terms and lots."""
    old = await tender_for_agency(session, actor, tender_id)
    await _move(session, old, Action.RETENDER, actor, now)
    lots = [
        schemas.LotIn(
            title=lot.title, estimated_price_fen=lot.estimated_price_fen, deposit_fen=lot.deposit_fen
        )
        for lot in await lots_of(session, old.id)
    ]
    # The same period from documents to deadline as before, counted again from today.
    deadline = now + (old.bid_deadline - old.documents_from)
    new = await _new_draft(
        session,
        old,
        old.agency_organisation_id,
        now,
        deadline,
        lots,
        now,
        validity=old.bid_validity_days,
        parent_id=old.id,
    )
    await accounts.record(
        session, actor, "tender.create", "tender", new.id, now, code=new.code, parent=old.code
    )
    return new


# ---------------------------------------------------------------- notices and notifications


async def _publish_notice(
    session: AsyncSession,
    tender: Tender,
    kind: str,
    title: str,
    body: dict[str, Any],
    now: datetime,
    *,
    supersedes: Notice | None = None,
) -> Notice:
    notice = Notice(
        tender_id=tender.id,
        kind=kind,
        sector=tender.sector,
        region_code=tender.region_code,
        tender_code=tender.code,
        title=title,
        body=body,
        published_at=now,
        supersedes_id=supersedes.id if supersedes else None,
    )
    session.add(notice)
    await session.flush()
    if supersedes is not None:
        supersedes.superseded_by_id = notice.id
    await accounts.record(
        session, None, "notice.publish", "notice", notice.id, now, kind=kind, tender=tender.code
    )
    return notice


# In the order of the board's read model, so a row becomes one by position: reading a row's columns by name
# cost more than the query.
NOTICE_COLUMNS = tuple(Notice.__table__.c[name] for name in schemas.NoticeRead.__struct_fields__)


async def list_notices(
    session: AsyncSession,
    *,
    kind: str | None,
    sector: str | None,
    region_code: str | None,
    tender_code: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[schemas.NoticeRead], str | None]:
    """Published notices, newest first, filtered and searched (title or tender code), as the board shows
    them. They are read as plain columns, not ORM objects: building and tracking objects was a tenth of
    the board's time.

    A read unit answers from this process's board cache while the board's version token is unchanged
    (trading/board.py): exactly what the query would read now, without the query."""
    limit = check_limit(limit)
    if q and len(q) > 100:
        raise ValidationProblem("q is at most 100 characters.", errors=[field_error("q", "too long")])
    found = board.board_cache(session)
    if found is None:
        return await _read_notices(session, kind, sector, region_code, tender_code, q, cursor, limit)
    engine, cache = found
    key = (kind, sector, region_code, tender_code, q, cursor, limit)
    token = await cache.token(session, engine)  # read before the page, so the page is at least as new
    if token is not None and (page := cache.get(key, token)) is not None:
        cached: tuple[Sequence[schemas.NoticeRead], str | None] = page
        return cached
    notices, next_cursor = await _read_notices(
        session, kind, sector, region_code, tender_code, q, cursor, limit
    )
    if token is not None:
        cache.keep(key, token, (tuple(notices), next_cursor))
    return notices, next_cursor


async def _read_notices(
    session: AsyncSession,
    kind: str | None,
    sector: str | None,
    region_code: str | None,
    tender_code: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[schemas.NoticeRead], str | None]:
    query = select(*NOTICE_COLUMNS).order_by(Notice.published_at.desc(), Notice.id.desc()).limit(limit + 1)
    if kind:
        query = query.where(Notice.kind == kind)
    if sector:
        query = query.where(Notice.sector == sector)
    if region_code:
        query = query.where(Notice.region_code == region_code)
    if tender_code:
        query = query.where(Notice.tender_code == tender_code)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # The pattern is rendered into the statement (quoted), not bound, so PostgreSQL plans for it: the order
        # index for a common word, the trigram index for a rare one. Backslash is PostgreSQL's default LIKE
        # escape, and an explicit ESCAPE clause would keep the trigram index out; SQLite needs one.
        term: Any = bindparam("q", pattern, literal_execute=True)
        escape = None if _dialect(session) == "postgresql" else "\\"
        query = query.where(
            or_(Notice.title.ilike(term, escape=escape), Notice.tender_code.ilike(term, escape=escape))
        )
    if cursor:
        at, row_id = decode_cursor(cursor)
        query = query.where((Notice.published_at < at) | ((Notice.published_at == at) & (Notice.id < row_id)))
    notices = [schemas.NoticeRead(*row) for row in await session.execute(query)]
    return page_after(notices, limit, "published_at")


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else ""


async def get_notice(session: AsyncSession, notice_id: uuid.UUID) -> Notice:
    """One published notice."""
    notice = await session.get(Notice, notice_id)
    if notice is None:
        raise NotFound("No such notice.")
    return notice


async def _notify_holders(
    session: AsyncSession, tender: Tender, kind: str, message: str, now: datetime
) -> int:
    """Tell every organisation that obtained the documents, through the outbox (after commit)."""
    holders = list(
        await session.scalars(
            select(DocumentAccess.organisation_id).where(DocumentAccess.tender_id == tender.id)
        )
    )
    if holders:
        outbox.enqueue(
            session,
            "trading.notify",
            {
                "tender_id": str(tender.id),
                "organisations": [str(h) for h in holders],
                "kind": kind,
                "message": message,
            },
            now,
        )
    return len(holders)


async def deliver_notifications(session: AsyncSession, payload: dict[str, Any], now: datetime) -> int:
    """The job behind `_notify_holders`: one notification row per organisation (idempotent per message)."""
    tender_id = uuid.UUID(payload["tender_id"])
    delivered = 0
    for org in payload["organisations"]:
        org_id = uuid.UUID(org)
        exists = await session.scalar(
            select(Notification.id).where(
                Notification.organisation_id == org_id,
                Notification.tender_id == tender_id,
                Notification.kind == payload["kind"],
                Notification.message == payload["message"],
            )
        )
        if exists is None:
            session.add(
                Notification(
                    organisation_id=org_id,
                    tender_id=tender_id,
                    kind=payload["kind"],
                    message=payload["message"],
                    created_at=now,
                )
            )
            delivered += 1
    return delivered


async def list_notifications(session: AsyncSession, actor: Principal) -> list[Notification]:
    """The caller organisation's notifications, newest first."""
    rows = await session.scalars(
        select(Notification)
        .where(Notification.organisation_id == actor.organisation_id)
        .order_by(Notification.created_at.desc())
        .limit(200)
    )
    return list(rows)


# ---------------------------------------------------------------- documents


def _object_key(tender: Tender, area: str, org: uuid.UUID, filename: str) -> str:
    safe = (
        "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in filename)[-80:] or "file"
    )
    return f"tenders/{tender.code}/{area}/{org}/{uuid.uuid4().hex}-{safe}"


def _check_upload_size(size: int) -> None:
    if size > MAX_UPLOAD_BYTES:
        raise ValidationProblem(
            f"Files may be at most {MAX_UPLOAD_BYTES} bytes.", errors=[field_error("size", "too large")]
        )


async def upload_grant(
    session: AsyncSession,
    store: ObjectStore,
    key: str,
    size: int,
    now: datetime,
    *,
    owner_id: uuid.UUID,
    tender_id: uuid.UUID,
    quota: int = UPLOAD_QUOTA_BYTES,
) -> schemas.UploadGrant:
    """A presigned upload of one file, which the store itself caps at the declared size (a POST policy
    on S3, a signed grant on the local store); claimed against the owner's quota on the tender."""
    _check_upload_size(size)
    await _check_quota(session, owner_id, tender_id, size, now, quota)
    form = await store.presigned_upload(key, UPLOAD_GRANT_TTL, max_bytes=size)
    uploads.claim_upload(
        session,
        key=key,
        owner_id=owner_id,
        scope_id=tender_id,
        max_bytes=size,
        now=now,
        expires_at=now + UPLOAD_GRANT_TTL,
    )
    return schemas.UploadGrant(
        key, form.url, form.method, now + UPLOAD_GRANT_TTL, size, fields=form.fields or None
    )


async def _check_quota(
    session: AsyncSession, owner_id: uuid.UUID, tender_id: uuid.UUID, size: int, now: datetime, quota: int
) -> None:
    """Refuse an upload that would take the organisation past its storage quota on this tender (open
    grants at their cap, and every copy it has on record or in flight)."""
    used = await uploads.used_bytes(session, owner_id, tender_id, now)
    if used + size > quota:
        raise ValidationProblem(
            f"This organisation may hold at most {quota} bytes of uploads on this tender; it holds {used} "
            f"and asks for {size} more. Let unused upload grants expire, or ask the centre.",
            errors=[field_error("size", "quota")],
            quota_bytes=quota,
            used_bytes=used,
        )


async def document_upload(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.UploadRequest,
    store: ObjectStore,
    now: datetime,
    quota: int = UPLOAD_QUOTA_BYTES,
) -> schemas.UploadGrant:
    """Where the agency may upload a document of its tender."""
    tender = await tender_for_agency(session, actor, tender_id)
    return await upload_grant(
        session,
        store,
        _object_key(tender, "documents", actor.organisation_id, data.filename),
        data.size,
        now,
        owner_id=actor.organisation_id,
        tender_id=tender.id,
        quota=quota,
    )


class _TooLarge(Exception):
    pass


async def _capped(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise _TooLarge
        yield chunk


def _check_prefix(key: str, prefix: str) -> None:
    if not key.startswith(prefix):
        raise ValidationProblem(
            "This object key was not issued for this upload.",
            errors=[field_error("object_key", "foreign key")],
        )


async def _copy_upload(store: ObjectStore, key: str, kept: str) -> tuple[str, int]:
    """Copy an upload to `kept`, hashing as it streams; (SHA-256, size). Refusals are 422s naming the
    upload; an empty upload leaves no copy."""
    try:
        info = await store.put_stream(kept, _capped(store.iter_chunks(key), MAX_UPLOAD_BYTES))
    except (ObjectNotFound, InvalidObjectKey) as exc:
        raise ValidationProblem(
            "Nothing was uploaded under this object key.",
            errors=[field_error("object_key", "no such object")],
        ) from exc
    except _TooLarge as exc:
        raise ValidationProblem(
            f"The uploaded file is larger than {MAX_UPLOAD_BYTES} bytes.",
            errors=[field_error("object_key", "too large")],
        ) from exc
    if info.size == 0:
        await store.delete(kept)
        raise ValidationProblem(
            "The uploaded file is empty.", errors=[field_error("object_key", "zero-length")]
        )
    assert info.sha256 is not None
    return info.sha256, info.size


@dataclass(frozen=True)
class TakenFile:
    """An uploaded document copied into the record's key space and hashed, not yet recorded."""

    upload_key: str
    kept: str
    sha256: str
    size: int


async def take_document(
    sessionmaker: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    actor: Principal,
    tender_id: uuid.UUID,
    key: str,
    now: datetime,
) -> TakenFile:
    """Take an uploaded document into the record: copy it, hashing as it streams, to a key no upload grant
    names, so the file on record can never be overwritten through the grant it came by. The copy runs
    outside any database transaction, so a large file holds up no other writer (on SQLite every write
    transaction excludes every other), and is claimed first, in a transaction of its own, so that if it is
    never recorded the sweeper removes it. The key must be one granted to the caller's agency for this
    tender. The caller records it (`register_document`, `clarify`, `record_contract`) in its own
    transaction and drops it (`drop_document`) if that does not commit."""
    async with transaction(sessionmaker, read_only=True) as session:
        tender = await _tender(session, tender_id)
        if not _can_manage(actor, tender):
            raise NotFound("No such tender.")
        code = tender.code
    _check_prefix(key, f"tenders/{code}/documents/{actor.organisation_id}/")
    try:
        uploaded = await store.stat(key)
    except InvalidObjectKey as exc:
        raise ValidationProblem(
            "Nothing was uploaded under this object key.",
            errors=[field_error("object_key", "no such object")],
        ) from exc
    kept = f"records/{code}/documents/{uuid.uuid4().hex}"
    await uploads.claim_copy(
        sessionmaker,
        key=kept,
        owner_id=actor.organisation_id,
        scope_id=tender_id,
        max_bytes=min(uploaded.size, MAX_UPLOAD_BYTES) if uploaded is not None else MAX_UPLOAD_BYTES,
        now=now,
    )
    try:
        sha256, size = await _copy_upload(store, key, kept)
    except BaseException:
        await uploads.drop_copy(sessionmaker, store, kept)
        raise
    return TakenFile(key, kept, sha256, size)


async def drop_document(
    sessionmaker: async_sessionmaker[AsyncSession], store: ObjectStore, taken: TakenFile | None
) -> None:
    """Remove a taken document that will not be recorded (refused, a duplicate, or lost a race)."""
    if taken is not None:
        await uploads.drop_copy(sessionmaker, store, taken.kept)


async def register_document(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.DocumentRegister,
    taken: TakenFile,
    now: datetime,
    *,
    kind: str | None = None,
) -> Document:
    """Record an uploaded file, taken by `take_document`, as a document of the tender, with the hash the
    server computed."""
    tender = await tender_for_agency(session, actor, tender_id)
    kind = kind or data.kind
    if kind in PUBLIC_DOCUMENT_KINDS and tender.status != TenderStatus.DRAFT:
        raise Conflict(
            "Tender documents are fixed at publication; amend them with a clarification, which carries "
            "the amended file, publishes a correction notice and tells every holder (W-02).",
            rule="W-02",
        )
    return await _record_document(session, actor, tender, kind, data.filename, taken, now)


async def _record_document(
    session: AsyncSession,
    actor: Principal,
    tender: Tender,
    kind: str,
    filename: str,
    taken: TakenFile,
    now: datetime,
) -> Document:
    """Record a taken document: its copy turns kept and its upload is closed and discarded after commit.
    An upload is recorded once: a second registration of it (a retry, a concurrent duplicate) is refused,
    and the caller drops the copy it took."""
    _check_prefix(taken.upload_key, f"tenders/{tender.code}/documents/{actor.organisation_id}/")
    if await uploads.open_upload(session, taken.upload_key, actor.organisation_id) is None:
        raise Conflict("This upload is already registered.", errors=[field_error("object_key", "registered")])
    if not await uploads.keep_copy(session, taken.kept, taken.size):
        raise Conflict(
            "The uploaded file was removed before it could be recorded; upload it again.",
            errors=[field_error("object_key", "expired")],
        )
    await discard_upload(session, taken.upload_key, now)
    return await _add_document(
        session, actor, tender, kind, filename, taken.kept, taken.sha256, taken.size, now
    )


async def _add_document(
    session: AsyncSession,
    actor: Principal,
    tender: Tender,
    kind: str,
    filename: str,
    kept: str,
    sha256: str,
    size: int,
    now: datetime,
) -> Document:
    document = Document(
        tender_id=tender.id,
        kind=kind,
        filename=filename,
        object_key=kept,
        sha256=sha256,
        size=size,
        uploaded_by=actor.user_id,
        uploaded_at=now,
    )
    session.add(document)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "This upload is already registered.", errors=[field_error("object_key", "registered")]
        ) from exc
    await accounts.record(
        session, actor, "document.register", "document", document.id, now, sha256=sha256, kind=kind
    )
    return document


async def list_documents(session: AsyncSession, tender_id: uuid.UUID, kinds: Sequence[str]) -> list[Document]:
    """Documents of a tender of the given kinds, oldest first."""
    rows = await session.scalars(
        select(Document)
        .where(Document.tender_id == tender_id, Document.kind.in_(kinds))
        .order_by(Document.uploaded_at)
    )
    return list(rows)


PUBLIC_DOCUMENT_KINDS = ("tender_documents", "amendment", "drawings", "bill_of_quantities")


async def obtain_documents(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    store: ObjectStore,
    now: datetime,
    *,
    virtual_prefix: str = "9558",
) -> list[schemas.DocumentRead]:
    """A bidder obtains the tender documents (获取招标文件): registered as a holder, given download links,
    and given a deposit sub-account with its own virtual account number (虚拟子账号) for each lot."""
    org = await accounts.require_active(session, actor)
    tender = await visible_tender(session, actor, tender_id)
    if tender.status != TenderStatus.TENDERING:
        raise Conflict(f"Documents are issued only while the tender is tendering; it is {tender.status}.")
    # Insert-if-missing: two clicks at once must not both insert (nor fail on the unique constraint).
    holder = {
        "id": uuid.uuid4(),
        "tender_id": tender.id,
        "organisation_id": actor.organisation_id,
        "obtained_at": now,
    }
    inserted = await session.execute(upsert_ignore(session, DocumentAccess, holder))
    if getattr(inserted, "rowcount", 0) == 1:
        await accounts.record(
            session, actor, "documents.obtain", "tender", tender.id, now, sealed_tender=tender.id
        )
    await escrow.open_deposits(
        session,
        tender.id,
        org.id,
        [
            escrow.LotDeposit(lot.id, f"{tender.code}/{lot.number}/{org.credit_code}", lot.deposit_fen)
            for lot in await lots_of(session, tender.id)
        ],
        virtual_prefix,
        now,
    )
    out = []
    for d in await list_documents(session, tender.id, PUBLIC_DOCUMENT_KINDS):
        url = await store.presigned_get_url(d.object_key, DOWNLOAD_GRANT_TTL)
        out.append(schemas.DocumentRead(d.id, d.kind, d.filename, d.sha256, d.size, d.uploaded_at, url))
    return out


# ---------------------------------------------------------------- clarifications and objections


def _days_before_deadline(tender: Tender, now: datetime) -> int:
    return (local_date(tender.bid_deadline) - local_date(now)).days


def _same_time_on(day: date, instant: datetime) -> datetime:
    local = instant.astimezone(SHANGHAI)
    return datetime.combine(day, time(local.hour, local.minute, local.second), tzinfo=SHANGHAI).astimezone(
        instant.tzinfo
    )


async def clarify(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.ClarificationCreate,
    now: datetime,
    amended_documents: TakenFile | None = None,
) -> tuple[Clarification, int]:
    """Issue a clarification or amendment, optionally carrying amended documents (taken by `take_document`
    from `data.amended_documents`); if it may affect bids and fewer than 15 days remain, the deadline moves
    out to keep 15 (W-02). Everyone who obtained the documents is told."""
    tender = await tender_for_agency(session, actor, tender_id)
    if tender.status not in (TenderStatus.PUBLISHED, TenderStatus.TENDERING):
        raise Conflict(f"Clarifications are issued before the deadline; the tender is {tender.status}.")
    if now >= tender.bid_deadline:
        raise RuleViolation(
            "W-08",
            "The bid deadline has passed: the bids are to be opened as they stand, and the documents can "
            "no longer be clarified.",
            bid_deadline=tender.bid_deadline.isoformat(),
        )
    profile = profile_for(tender.sector, tender.method)
    cal = await working_calendar(session)
    before = tender.bid_deadline
    if data.affects_bids:
        earliest = cal.earliest_after(local_date(now), profile.clarification_notice_days)
        if local_date(tender.bid_deadline) < earliest:
            tender.bid_deadline = _same_time_on(earliest, tender.bid_deadline)
            tender.next_check = _next_check(tender)
    objection = None
    if data.objection_id is not None:
        objection = await session.get(Objection, data.objection_id)
        if objection is None or objection.tender_id != tender.id:
            raise ValidationProblem(
                "No such objection on this tender.", errors=[field_error("objection_id", "unknown")]
            )
    number = (
        await session.scalar(
            select(func.coalesce(func.max(Clarification.number), 0)).where(
                Clarification.tender_id == tender.id
            )
        )
        or 0
    ) + 1
    clarification = Clarification(
        tender_id=tender.id,
        number=number,
        text=data.text,
        affects_bids=data.affects_bids,
        issued_at=now,
        deadline_before=before,
        deadline_after=tender.bid_deadline,
        objection_id=data.objection_id,
    )
    session.add(clarification)
    await session.flush()
    amended = None
    if data.amended_documents is not None:
        assert (
            amended_documents is not None
            and amended_documents.upload_key == data.amended_documents.object_key
        )
        amended = await _record_document(
            session, actor, tender, "amendment", data.amended_documents.filename, amended_documents, now
        )
    moved = tender.bid_deadline != before
    await accounts.record(
        session,
        actor,
        "tender.clarify",
        "tender",
        tender.id,
        now,
        number=number,
        deadline_moved=moved,
        rule="W-02" if moved else None,
    )
    body: dict[str, Any] = {"number": number, "text": data.text, "affects_bids": data.affects_bids}
    if amended is not None:
        body["amended_documents"] = {
            "filename": amended.filename,
            "sha256": amended.sha256,
            "size": amended.size,
        }
    if moved:
        body["bid_deadline"] = {
            "before": before.isoformat(),
            "after": tender.bid_deadline.isoformat(),
            "rule": "W-02",
        }
    previous = await session.scalar(
        select(Notice)
        .where(
            Notice.tender_id == tender.id,
            Notice.superseded_by_id.is_(None),
            Notice.kind.in_(("tender_notice", "correction")),
        )
        .order_by(Notice.published_at.desc())
        .limit(1)
    )
    await _publish_notice(
        session, tender, "correction", f"{tender.title} 更正公告 第{number}号", body, now, supersedes=previous
    )
    message = f"{tender.code}: clarification {number} issued."
    if moved:
        message += (
            f" The bid deadline moved to {tender.bid_deadline.astimezone(SHANGHAI).isoformat()} (W-02)."
        )
    notified = await _notify_holders(session, tender, "tender.clarified", message, now)
    if objection is not None and objection.answered_at is None:
        objection.answer = data.text
        objection.answered_at = now
        await _resume_if_clear(session, tender, now)
    return clarification, notified


async def _holder_or_bidder(session: AsyncSession, actor: Principal, tender: Tender) -> None:
    holder = await session.scalar(
        select(DocumentAccess.id).where(
            DocumentAccess.tender_id == tender.id, DocumentAccess.organisation_id == actor.organisation_id
        )
    )
    if holder is None:
        raise Forbidden("Only a bidder that obtained the documents may object.")


async def file_objection(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.ObjectionCreate,
    now: datetime,
) -> Objection:
    """A bidder objects (异议): to the documents at least 10 days before the deadline (W-03), to the opening
    while it runs, or to the candidates during publicity (W-12). The tenderer answers within 3 days."""
    await accounts.require_active(session, actor)
    tender = await _tender(session, tender_id, lock=True)
    if tender.status == TenderStatus.DRAFT:
        raise NotFound("No such tender.")
    await _holder_or_bidder(session, actor, tender)
    profile = profile_for(tender.sector, tender.method)
    cal = await working_calendar(session)
    if data.subject == "documents":
        if tender.status not in (TenderStatus.PUBLISHED, TenderStatus.TENDERING) or (
            _days_before_deadline(tender, now) < profile.objection_before_deadline_days
        ):
            last = local_date(tender.bid_deadline) - timedelta(days=profile.objection_before_deadline_days)
            raise RuleViolation(
                "W-03",
                f"Objections to the tender documents must be filed at least {profile.objection_before_deadline_days} "
                f"days before the bid deadline, that is by {last.isoformat()}.",
                last_day=last.isoformat(),
            )
    elif data.subject == "opening" and tender.status != TenderStatus.OPENING:
        raise Conflict("Objections to the opening are raised while the opening is in progress.")
    elif data.subject == "candidates" and (
        tender.status != TenderStatus.PUBLICITY
        or tender.publicity_ends is None
        or now >= tender.publicity_ends
    ):
        # 条例 54: during publicity only; the status stays `publicity` after it ends until the award.
        ends = {"publicity_ends": tender.publicity_ends.isoformat()} if tender.publicity_ends else {}
        raise RuleViolation(
            "W-12", "Objections to the candidates are filed during the publicity period.", **ends
        )
    due = end_of_day(cal.period_end(local_date(now), profile.objection_answer_days))
    objection = Objection(
        tender_id=tender.id,
        organisation_id=actor.organisation_id,
        subject=data.subject,
        text=data.text,
        filed_at=now,
        answer_due=due,
    )
    session.add(objection)
    await session.flush()
    if data.subject == "documents":
        tender.paused_reason = "An objection to the documents awaits the tenderer's answer (W-03)."
    if data.subject == "opening":
        await _tender(session, tender.id, lock=True)  # opening lines are numbered under the tender's lock
        org = await accounts.get_organisation(session, actor.organisation_id)
        await bidding.opening_event(
            session,
            tender.id,
            "objection_raised",
            {"objection": str(objection.id), "by": org.name, "text": data.text},
            now,
        )
    await accounts.record(
        session,
        actor,
        "objection.file",
        "objection",
        objection.id,
        now,
        subject=data.subject,
        sealed_tender=tender.id,
    )
    return objection


async def answer_objection(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    objection_id: uuid.UUID,
    data: schemas.ObjectionAnswer,
    now: datetime,
) -> Objection:
    """The tenderer answers an objection; the paused step resumes when nothing is left unanswered."""
    tender = await tender_for_agency(session, actor, tender_id)
    objection = await session.get(Objection, objection_id)
    if objection is None or objection.tender_id != tender.id:
        raise NotFound("No such objection.")
    if objection.answered_at is not None:
        raise Conflict("This objection was already answered.")
    objection.answer = data.answer
    objection.answered_at = now
    if objection.subject == "opening":
        await _tender(session, tender.id, lock=True)
        await bidding.opening_event(
            session,
            tender.id,
            "objection_answered",
            {"objection": str(objection.id), "answer": data.answer},
            now,
        )
    await accounts.record(
        session, actor, "objection.answer", "objection", objection.id, now, late=now > objection.answer_due
    )
    await _resume_if_clear(session, tender, now)
    return objection


async def _pending_objections(session: AsyncSession, tender: Tender, subject: str) -> int:
    return (
        await session.scalar(
            select(func.count())
            .select_from(Objection)
            .where(
                Objection.tender_id == tender.id,
                Objection.subject == subject,
                Objection.answered_at.is_(None),
            )
        )
    ) or 0


async def _resume_if_clear(session: AsyncSession, tender: Tender, now: datetime) -> None:
    if tender.paused_reason and not await _pending_objections(session, tender, "documents"):
        tender.paused_reason = None
        tender.next_check = _next_check(tender)


async def list_objections(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID
) -> list[tuple[Objection, bool]]:
    """Objections on a tender: all of them for its agency, the centre, supervisors and auditors, a bidder's
    own for a bidder; each with whether the caller may see who filed it. Before the deadline only the
    objector itself may: an objector is a holder of the documents (W-20); the agency answers the objection
    without knowing whose it is, and the answer reaches every holder as a clarification."""
    tender = await visible_tender(session, actor, tender_id)
    query = select(Objection).where(Objection.tender_id == tender.id).order_by(Objection.filed_at)
    if not (_can_manage(actor, tender) or actor.has("centre", "supervisor", "auditor")):
        query = query.where(Objection.organisation_id == actor.organisation_id)
    sealed = tender.status in SEALED_STATUSES
    return [
        (o, not sealed or o.organisation_id == actor.organisation_id) for o in await session.scalars(query)
    ]


# ---------------------------------------------------------------- bids


@dataclass(frozen=True)
class ClientSeen:
    """Where a submission came from, kept for the W-18 signals at the opening."""

    address: str | None = None
    device: str | None = None
    user_agent: str | None = None


async def bid_upload(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.UploadRequest,
    store: ObjectStore,
    now: datetime,
    quota: int = UPLOAD_QUOTA_BYTES,
) -> schemas.UploadGrant:
    """Where a bidder may upload its sealed envelope: one presigned upload, or for a large envelope a
    multipart upload whose parts are retried one by one and can be resumed (`bid_upload_progress`). Either
    way the store holds the bidder to the declared size: a bounded number of parts, each of its size."""
    tender = await _bidding_tender(session, actor, tender_id, now)
    key = _object_key(tender, "bids", actor.organisation_id, data.filename)
    if data.size < MULTIPART_FROM:
        return await upload_grant(
            session,
            store,
            key,
            data.size,
            now,
            owner_id=actor.organisation_id,
            tender_id=tender.id,
            quota=quota,
        )
    _check_upload_size(data.size)
    await _check_quota(session, actor.organisation_id, tender.id, data.size, now, quota)
    upload_id = await store.start_multipart(key, content_type="application/age")
    uploads.claim_upload(
        session,
        key=key,
        owner_id=actor.organisation_id,
        scope_id=tender.id,
        max_bytes=data.size,
        now=now,
        expires_at=now + UPLOAD_GRANT_TTL,
        upload_id=upload_id,
    )
    parts = await _part_urls(store, key, upload_id, data.size)
    url = parts[0].url
    return schemas.UploadGrant(
        key, url, "PUT", now + UPLOAD_GRANT_TTL, data.size, upload_id, PART_SIZE, parts
    )


def part_sizes(size: int) -> list[int]:
    """The size of each part of a multipart upload of `size` bytes: PART_SIZE each, the rest last."""
    count = max(1, -(-size // PART_SIZE))
    return [PART_SIZE] * (count - 1) + [size - PART_SIZE * (count - 1)]


async def _part_urls(store: ObjectStore, key: str, upload_id: str, size: int) -> list[schemas.PartUrl]:
    return [
        schemas.PartUrl(
            n,
            await store.presigned_part_url(key, upload_id, n, UPLOAD_GRANT_TTL, max_bytes=part),
            part,
        )
        for n, part in enumerate(part_sizes(size), start=1)
    ]


async def bid_upload_progress(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    object_key: str,
    upload_id: str,
    size: int,
    store: ObjectStore,
    now: datetime,
) -> schemas.UploadProgress:
    """The parts of one of the caller's multipart uploads received so far, and fresh part URLs to resume."""
    tender = await _bidding_tender(session, actor, tender_id, now, lock=False)
    if not object_key.startswith(f"tenders/{tender.code}/bids/{actor.organisation_id}/"):
        raise NotFound("No such upload.")
    _check_upload_size(size)
    try:
        received = await store.list_parts(object_key, upload_id)
    except (UploadNotFound, InvalidObjectKey) as exc:
        raise NotFound("No such upload.") from exc
    return schemas.UploadProgress(
        object_key,
        upload_id,
        PART_SIZE,
        [schemas.ReceivedPart(p.number, p.size, p.etag) for p in received],
        await _part_urls(store, object_key, upload_id, size),
        now + UPLOAD_GRANT_TTL,
    )


async def _complete_upload(store: ObjectStore, key: str, upload_id: str) -> None:
    """Assemble a multipart upload's parts into the object (before it is taken on record)."""
    try:
        await store.complete_multipart(key, upload_id)
    except (UploadNotFound, InvalidObjectKey) as exc:
        if await store.stat(key) is None:
            raise ValidationProblem(
                "No such multipart upload for this object key.",
                errors=[field_error("upload_id", "unknown upload")],
            ) from exc
    except InvalidUpload as exc:
        raise ValidationProblem(
            f"The upload cannot be completed: {exc}", errors=[field_error("upload_id", "incomplete parts")]
        ) from exc


async def _bids_closed(session: AsyncSession, tender: Tender, now: datetime) -> bool:
    """Whether bids on `tender` are closed at `now`: by the clock, or by the closing. A request that arrived
    before the deadline but reaches the tender after the chronograph signed its closing head (its envelope
    was still being copied, or it waited for the tender's lock) is late like any other, since a bid event
    counts only if it is logged before the closing head."""
    return now >= tender.bid_deadline or (
        tender.status != TenderStatus.TENDERING and await bidding.closing_of(session, tender.id) is not None
    )


async def _bidding_tender(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, now: datetime, *, lock: bool = True
) -> Tender:
    """The tender, if the caller may bid on it at `now` (late bids are refused under W-07, see
    `_bids_closed`)."""
    await accounts.require_active(session, actor)
    tender = await _tender(session, tender_id, lock=lock)
    if tender.status == TenderStatus.DRAFT:
        raise NotFound("No such tender.")
    if await _bids_closed(session, tender, now):
        raise RuleViolation(
            "W-07",
            f"Bids closed at {tender.bid_deadline.astimezone(SHANGHAI).isoformat()}; late bids are refused.",
            bid_deadline=tender.bid_deadline.isoformat(),
        )
    if tender.status != TenderStatus.TENDERING:
        raise Conflict(f"The tender is {tender.status}; bids are accepted only while it is tendering.")
    holder = await session.scalar(
        select(DocumentAccess.id).where(
            DocumentAccess.tender_id == tender.id, DocumentAccess.organisation_id == actor.organisation_id
        )
    )
    if holder is None:
        raise Conflict("Obtain the tender documents before bidding.")
    return tender


def _leaf(event: str, tender: Tender, lot: Lot, credit_code: str, bid: Bid, now: datetime) -> dict[str, Any]:
    return {
        "event": event,
        "tender": tender.code,
        "lot": lot.number,
        "bidder": credit_code,
        "bid": str(bid.id),
        "sequence": bid.sequence,
        "envelope_sha256": bid.sha256,
        "size": bid.size,
        "submitted_at": bid.submitted_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "at": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


@dataclass(frozen=True)
class Submission:
    """Where a bidder's finalize may take its envelope from, as read before any copy: the tender and the
    key prefix its upload grants were issued under."""

    tender_id: uuid.UUID
    tender_code: str
    organisation_id: uuid.UUID
    shamir: int

    @property
    def upload_prefix(self) -> str:
        return f"tenders/{self.tender_code}/bids/{self.organisation_id}/"


@dataclass(frozen=True)
class TakenEnvelope:
    """An uploaded envelope copied into the record's key space and hashed, not yet recorded."""

    upload_key: str
    kept: str
    sha256: str
    size: int
    header: envelope.Header


async def prepare_submission(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, now: datetime
) -> Submission:
    """The checks a finalize makes before it copies anything (read only: no lock is taken)."""
    tender = await _bidding_tender(session, actor, tender_id, now, lock=False)
    return Submission(tender.id, tender.code, actor.organisation_id, _shamir(tender))


async def take_envelope(
    sessionmaker: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    submission: Submission,
    data: schemas.BidSubmit,
    now: datetime,
) -> TakenEnvelope:
    """Complete the upload, copy it into the record's key space hashing it as it streams, and read its
    header — outside any database transaction, so a large envelope holds up no other writer (on SQLite
    every write transaction excludes every other). The copy is claimed first, in a transaction of its own,
    so if it is never recorded the sweeper removes it."""
    _check_prefix(data.object_key, submission.upload_prefix)
    if data.upload_id is not None:
        await _complete_upload(store, data.object_key, data.upload_id)
    kept = f"records/{submission.tender_code}/bids/{uuid.uuid4().hex}"
    # Counted at the upload's size while it is copied (at most the cap: the copy stops there).
    try:
        uploaded = await store.stat(data.object_key)
    except InvalidObjectKey as exc:
        raise ValidationProblem(
            "Nothing was uploaded under this object key.",
            errors=[field_error("object_key", "no such object")],
        ) from exc
    await uploads.claim_copy(
        sessionmaker,
        key=kept,
        owner_id=submission.organisation_id,
        scope_id=submission.tender_id,
        max_bytes=min(uploaded.size, MAX_UPLOAD_BYTES) if uploaded is not None else MAX_UPLOAD_BYTES,
        now=now,
    )
    try:
        sha256, size = await _copy_upload(store, data.object_key, kept)
        if data.envelope_sha256 is not None and data.envelope_sha256 != sha256:
            raise ValidationProblem(
                "The uploaded envelope is not the one the client sealed (its SHA-256 differs); upload it again.",
                errors=[field_error("envelope_sha256", "does not match the upload")],
            )
        try:
            header = await bidding.read_stored_header(store, kept)
        except envelope.EnvelopeError as exc:
            raise bidding.envelope_problem(exc, "object_key") from exc
    except BaseException:
        await uploads.drop_copy(sessionmaker, store, kept)
        raise
    return TakenEnvelope(data.object_key, kept, sha256, size, header)


async def drop_envelope(
    sessionmaker: async_sessionmaker[AsyncSession], store: ObjectStore, taken: TakenEnvelope
) -> None:
    """Remove a taken envelope that will not be recorded (refused, replayed, or lost a race)."""
    await uploads.drop_copy(sessionmaker, store, taken.kept)


async def discard_upload(session: AsyncSession, key: str, now: datetime) -> None:
    """An upload that was taken: close its claim and remove it after commit."""
    await uploads.close_upload(session, key)
    outbox.enqueue(session, "trading.discard_upload", {"key": key}, now)


async def discard_retried_upload(session: AsyncSession, actor: Principal, key: str, now: datetime) -> None:
    """A retried submission was answered from its first answer: the caller's fresh upload it named (if
    it is one of the caller's open uploads) will never be taken, so it is removed after commit."""
    claim = await uploads.open_upload(session, key, actor.organisation_id)
    if claim is None:
        return
    await uploads.close_upload(session, key)
    outbox.enqueue(session, "trading.discard_upload", {"key": key, "upload_id": claim.upload_id}, now)


async def submit_bid(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.BidSubmit,
    taken: TakenEnvelope,
    signer: LogSigner,
    now: datetime,
    seen: ClientSeen = ClientSeen(),
) -> tuple[Bid, schemas.Receipt]:
    """Finalise a bid whose envelope was taken (`take_envelope`): check it is an age envelope to the bidder
    and to this tender's custodians, record arrival on the server clock, log it and issue the receipt. A
    second bid on the same lot replaces the first (W-05); after the deadline: W-07. Only database work
    happens here, under the tender's lock; the caller removes the copy if this does not commit."""
    tender = await _bidding_tender(session, actor, tender_id, now)
    await bidding.check_header(session, taken.header, tender.id, tender.code, _shamir(tender), taken.size)
    lot = await session.get(Lot, data.lot_id)
    if lot is None or lot.tender_id != tender.id:
        raise ValidationProblem("No such lot in this tender.", errors=[field_error("lot_id", "unknown lot")])
    if not await uploads.keep_copy(session, taken.kept, taken.size):
        raise Conflict(
            "The uploaded envelope was removed before it could be recorded; upload it again and resubmit.",
            errors=[field_error("object_key", "expired")],
        )
    await discard_upload(session, taken.upload_key, now)
    kept, sha256, size = taken.kept, taken.sha256, taken.size
    header = taken.header
    org = await accounts.get_organisation(session, actor.organisation_id)
    previous = await session.scalar(
        select(Bid).where(
            Bid.lot_id == lot.id, Bid.organisation_id == actor.organisation_id, Bid.status == "submitted"
        )
    )
    if previous is not None:
        previous.status = "replaced"
        previous.withdrawn_at = now
    # Numbered per bidder: a tender-wide number would tell each bidder how many others have bid.
    sequence = (
        await session.scalar(
            select(func.coalesce(func.max(Bid.sequence), 0)).where(
                Bid.tender_id == tender.id, Bid.organisation_id == actor.organisation_id
            )
        )
        or 0
    ) + 1
    bid = Bid(
        tender_id=tender.id,
        lot_id=lot.id,
        organisation_id=actor.organisation_id,
        status="submitted",
        object_key=kept,
        sha256=sha256,
        size=size,
        submitted_at=now,
        sequence=sequence,
        replaces_id=previous.id if previous else None,
    )
    session.add(bid)
    await session.flush()
    bidding.add_envelope(
        session,
        bid_id=bid.id,
        tender_id=tender.id,
        header=header,
        client_address=seen.address,
        client_device=seen.device,
        user_agent=seen.user_agent,
    )
    event = "replace" if previous else "submit"
    # Logged in the bidder's own log of the tender: its receipt counts no one else's bids (W-20).
    log = await bidding.log_bid_event(
        session,
        signer,
        _leaf(event, tender, lot, org.credit_code, bid, now),
        tender_id=tender.id,
        tender_code=tender.code,
        organisation_id=actor.organisation_id,
        bid_id=bid.id,
        now=now,
    )
    await accounts.record(
        session,
        actor,
        "bid.replace" if previous else "bid.submit",
        "bid",
        bid.id,
        now,
        sealed_tender=tender.id,
        sha256=sha256,
        lot=lot.number,
        log_index=log["leaf_index"],
    )
    await escrow.on_bid(session, lot.id, actor.organisation_id, now)
    return bid, _receipt(tender, lot, org.credit_code, bid, event, log)


def _receipt(
    tender: Tender, lot: Lot, credit_code: str, bid: Bid, event: str, log: dict[str, Any]
) -> schemas.Receipt:
    return schemas.Receipt(
        bid.id,
        tender.code,
        lot.number,
        credit_code,
        bid.sha256,
        bid.size,
        bid.submitted_at,
        bid.sequence,
        event,
        log,
    )


async def _own_bid(session: AsyncSession, actor: Principal, tender_id: uuid.UUID, bid_id: uuid.UUID) -> Bid:
    bid = await session.get(Bid, bid_id)
    if bid is None or bid.tender_id != tender_id or bid.organisation_id != actor.organisation_id:
        raise NotFound("No such bid.")
    return bid


async def withdraw_bid(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    bid_id: uuid.UUID,
    signer: LogSigner,
    now: datetime,
) -> tuple[Bid, schemas.Receipt]:
    """Withdraw a bid before the deadline (撤回, W-05), logged with a receipt of its own; after the deadline
    the bid stands and the deposit may be kept (W-06)."""
    tender = await _tender(session, tender_id, lock=True)
    bid = await _own_bid(session, actor, tender.id, bid_id)
    if await _bids_closed(session, tender, now):
        raise RuleViolation(
            "W-06",
            "The bid deadline has passed: a bid can no longer be withdrawn, and its deposit may be kept.",
        )
    if bid.status != "submitted":
        raise Conflict(f"This bid is {bid.status}.")
    bid.status = "withdrawn"
    bid.withdrawn_at = now
    profile = profile_for(tender.sector, tender.method)
    cal = await working_calendar(session)
    # P-01/P-02: counted from the day after the withdrawal, moved past rest days like every period.
    refund_due = cal.period_end(local_date(now), profile.withdrawal_refund_days)
    await escrow.on_withdrawal(session, bid.lot_id, bid.organisation_id, "W-05", local_date(now), cal, now)
    lot = await session.get(Lot, bid.lot_id)
    assert lot is not None
    org = await accounts.get_organisation(session, bid.organisation_id)
    log = await bidding.log_bid_event(
        session,
        signer,
        _leaf("withdraw", tender, lot, org.credit_code, bid, now),
        tender_id=tender.id,
        tender_code=tender.code,
        organisation_id=bid.organisation_id,
        bid_id=bid.id,
        now=now,
    )
    await accounts.record(
        session,
        actor,
        "bid.withdraw",
        "bid",
        bid.id,
        now,
        sealed_tender=tender.id,
        rule="W-05",
        deposit_refund_due=refund_due.isoformat(),
        log_index=log["leaf_index"],
    )
    return bid, _receipt(tender, lot, org.credit_code, bid, "withdraw", log)


async def list_bids(session: AsyncSession, actor: Principal, tender_id: uuid.UUID) -> list[Bid]:
    """A bidder sees its own bids; the agency and supervisors see all of them only once bids are opened
    (who bid stays secret until the opening, 招标投标法 22)."""
    tender = await visible_tender(session, actor, tender_id)
    query = in_arrival_order(select(Bid).where(Bid.tender_id == tender.id))
    sees_all = _can_manage(actor, tender) or actor.has("centre", "supervisor", "auditor")
    opened = (
        tender.opened_at is not None
    )  # a cancelled or failed tender never opened: its bidders stay secret
    if not (sees_all and opened):
        query = query.where(Bid.organisation_id == actor.organisation_id)
    return list(await session.scalars(query))


async def envelope_states(
    session: AsyncSession, bids: Sequence[Bid]
) -> dict[uuid.UUID, tuple[str, str | None]]:
    """Each bid's envelope status and opening result."""
    rows = await bidding.envelopes_of(session, bids[0].tender_id) if bids else []
    return {row.bid_id: (row.status, row.result) for row in rows}


async def receipt_for(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    bid_id: uuid.UUID,
    signer: LogSigner,
) -> schemas.Receipt:
    """The receipt of one of the caller's bids (its submission, or its withdrawal once withdrawn)."""
    bid = await _own_bid(session, actor, tender_id, bid_id)
    tender = await _tender(session, tender_id)
    lot = await session.get(Lot, bid.lot_id)
    org = await accounts.get_organisation(session, bid.organisation_id)
    assert lot is not None
    log = await bidding.receipt_of_bid(session, signer, bid.id)
    return _receipt(tender, lot, org.credit_code, bid, log["leaf"]["event"], log)


async def closing_record(
    session: AsyncSession, actor: Principal | None, tender_id: uuid.UUID, signer: LogSigner
) -> dict[str, Any]:
    """The tender's signed closing head (public once bids have closed)."""
    tender = await visible_tender(session, actor, tender_id)
    row = await bidding.closing_of(session, tender.id)
    if row is None:
        raise NotFound("Bids on this tender have not closed yet.")
    return bidding.closing_json(row, tender.code, signer)


async def signed_opening_record(
    session: AsyncSession, actor: Principal | None, tender_id: uuid.UUID, signer: LogSigner
) -> dict[str, Any]:
    """The opening record (开标记录) signed with the platform's log key, published once the opening has
    closed (`bidding.opening_record`): the closing record with its custody statement, each standing
    envelope's header and result, and each custody envelope's releases with their proofs and its cause."""
    tender = await visible_tender(session, actor, tender_id)
    closing = await bidding.closing_of(session, tender.id)
    if closing is None or tender.opened_at is None or tender.status == TenderStatus.OPENING:
        raise NotFound("The signed opening record is published when the opening closes.")
    if closing.custody is None:
        raise NotFound(
            "This tender closed before opening records were signed; see its opening record notice."
        )
    standing = set(closing.envelopes)
    bids = [
        b
        for b in await session.scalars(in_arrival_order(select(Bid).where(Bid.tender_id == tender.id)))
        if b.sha256 in standing and b.status != "replaced"
    ]
    rows = {r.bid_id: r for r in await bidding.envelopes_of(session, tender.id)}
    lots = {lot.id: lot.number for lot in await lots_of(session, tender.id)}
    roster = {c.position: c for c in await bidding.roster(session, tender.id)}
    releases = await bidding.releases_of(session, [b.id for b in bids])
    items = []
    for bid in bids:
        row = rows[bid.id]
        org = await accounts.get_organisation(session, bid.organisation_id)
        held = None
        if row.custody_outcome is not None:
            held = {
                "releases": [
                    {
                        "position": r.position,
                        "organisation_id": str(roster[r.position].organisation_id),
                        "release": r.release,
                        "valid": r.status == "valid",
                        "error": r.error,
                    }
                    for r in releases
                    if r.bid_id == bid.id and r.release is not None
                ],
                "outcome": row.custody_outcome,
            }
        items.append(
            {
                "bid": str(bid.id),
                "lot": lots[bid.lot_id],
                "bidder": org.name,
                "credit_code": org.credit_code,
                "envelope_sha256": bid.sha256,
                "header": row.header,
                "header_sha256": envelope.header_sha256(bidding.header_of(row)),
                "bid_status": bid.status,
                "opened_by": row.opened_by,
                "result": row.result or row.status,
                "declared_price_fen": bid.declared_price_fen,
                "custody": held,
            }
        )
    record: dict[str, Any] = {
        "v": opening_record.RECORD_VERSION,
        "kind": opening_record.RECORD_KIND,
        "tender": tender.code,
        "closing": bidding.closing_json(closing, tender.code, signer),
        "envelopes": items,
        "key_id": signer.key_id,
    }
    record["signature"] = base64.b64encode(signer.sign(opening_record.record_message(record))).decode()
    return record


# ---------------------------------------------------------------- deadline, opening


async def _fail(
    session: AsyncSession, tender: Tender, actor: Principal | None, rule: str, reason: str, now: datetime
) -> None:
    """The tender fails (流标) under `rule` and the failure notice is published; deposits still held go
    back with interest (T-END)."""
    tender.outcome_reason = reason
    tender.closed_at = now
    await _move(session, tender, Action.FAIL, actor, now, rule=rule)
    await _publish_notice(
        session,
        tender,
        "failure",
        f"{tender.title} 流标公告",
        {"reason": tender.outcome_reason, "rule": rule},
        now,
    )
    await _settle_all_lots(session, tender, "tender_failed", now)


async def _settle_all_lots(session: AsyncSession, tender: Tender, event: str, now: datetime) -> None:
    cal = await working_calendar(session)
    for lot in await lots_of(session, tender.id):
        if lot.status != "contracted":
            await escrow.on_lot_settled(session, lot.id, "T-END", event, local_date(now), cal, now)


def bid_valid_through(tender: Tender) -> date:
    """The last day of the bid validity period (投标有效期), counted from the day after the deadline (P-01):
    a guarantee given as the deposit must stay in force through it (条例 26)."""
    return local_date(tender.bid_deadline) + timedelta(days=tender.bid_validity_days)


async def _deposit_at_deadline(session: AsyncSession, tender: Tender, bid: Bid, now: datetime) -> Any:
    """Escrow's answer, recorded, whether the bid's deposit stood at the deadline (as of the deadline
    instant, whenever this runs; a guarantee must stay in force through the bid validity period)."""
    return await escrow.check_eligibility(
        session,
        bid.lot_id,
        bid.organisation_id,
        "bid_deadline",
        now,
        as_of=tender.bid_deadline,
        cover_through=bid_valid_through(tender),
    )


async def _reject_without_deposit(
    session: AsyncSession, tender: Tender, lot: Lot, bid: Bid, answer: Any, now: datetime
) -> None:
    """A bid on a lot that requires a deposit, whose deposit was not in place at the deadline, is rejected
    under W-19 (条例 51(6), 26): the platform establishes the fact from escrow's answer and keeps its
    evidence. The bid still stands: it counted toward the three needed to open (W-09, 条例 44), and it is
    opened and read out as rejected; it is never evaluated as responsive."""
    if lot.deposit_fen <= 0 or (answer is not None and answer.eligible):
        return
    evidence = (
        dict(answer.evidence or {}, eligibility_id=str(answer.id), checked_at=answer.checked_at.isoformat())
        if answer is not None
        else {"detail": "no deposit at the deadline: the bidder has no deposit sub-account for this lot"}
    )
    bid.rejection_rule = "W-19"
    bid.rejected_at = now
    bid.rejection = {
        "rule": "W-19",
        "reason": NO_DEPOSIT,
        "detail": evidence.get("detail") or NO_DEPOSIT,
        "required_fen": lot.deposit_fen,
        "evidence": evidence,
    }
    await accounts.record(
        session, None, "bid.reject", "bid", bid.id, now, rule="W-19", reason=NO_DEPOSIT, lot=lot.number
    )
    await notify(
        session,
        bid.organisation_id,
        tender.id,
        "bid.rejected",
        f"{tender.code} lot {lot.number}: your bid is rejected under W-19 — {bid.rejection['detail']}.",
        now,
    )


async def _close_bidding(session: AsyncSession, tender: Tender, signer: LogSigner, now: datetime) -> str:
    """At the deadline: sign the closing head over the envelopes that stand; lots with fewer than 3 bids
    fail (W-09); the rest go to the online opening hall (W-08, E-02), where a bid whose deposit was not in
    place at the deadline is rejected under W-19."""
    profile = profile_for(tender.sector, tender.method)
    standing = list(
        await session.scalars(select(Bid).where(Bid.tender_id == tender.id, Bid.status == "submitted"))
    )
    answers = {}
    for bid in standing:
        # the deposit (or a verified guarantee) must be in place at the deadline; the answer is recorded.
        # Asked before the closing head, whose append to the platform-wide log holds that log's lock until
        # commit: with deadlines clustered, the less done under it, the more tenders close side by side.
        answers[bid.id] = await _deposit_at_deadline(session, tender, bid, now)
    closing = await bidding.close(
        session,
        signer,
        tender_id=tender.id,
        tender_code=tender.code,
        standing={b.id: b.sha256 for b in standing},
        threshold=tender.custody_threshold,
        shamir_threshold=_shamir(tender),
        now=now,
    )
    # 截标: the signed closing head and the hashes of the envelopes that stand, for anyone to check
    # their receipts against (who bid stays unpublished until the opening record).
    await _publish_notice(session, tender, "bid_closing", f"{tender.title} 截标记录", closing, now)
    counts: dict[uuid.UUID, int] = {}
    for bid in standing:
        counts[bid.lot_id] = counts.get(bid.lot_id, 0) + 1
    live = 0
    lots = await lots_of(session, tender.id)
    for lot in lots:
        n = counts.get(lot.id, 0)
        if n < profile.min_bids_to_open:
            lot.status = "failed"
            lot.outcome_reason = (
                f"W-09: {n} bid(s) at the deadline; at least {profile.min_bids_to_open} are needed"
            )
            # Not opened, not revoked: these bidders are owed their deposits back, through no fault of theirs.
            for bid in standing:
                if bid.lot_id == lot.id:
                    bid.status = "returned"
                    await accounts.record(session, None, "bid.return", "bid", bid.id, now, rule="W-09")
            cal = await working_calendar(session)
            await escrow.on_lot_settled(session, lot.id, "W-09", "lot_failed", local_date(now), cal, now)
        else:
            live += 1
            for bid in standing:
                if bid.lot_id == lot.id:
                    await _reject_without_deposit(session, tender, lot, bid, answers[bid.id], now)
    if live == 0:
        reason = "W-09: fewer than 3 bids on every lot; no opening, the tender is to be re-run"
        await _fail(session, tender, None, "W-09", reason, now)
        return "unsuccessful"
    tender.opened_at = now
    await _move(session, tender, Action.CLOSE_BIDDING, None, now, rule="W-08")
    window_end = _window_end(tender)
    await bidding.opening_event(
        session,
        tender.id,
        "hall_opened",
        {
            "tender": tender.code,
            "bids": sum(counts.get(lot.id, 0) for lot in lots if lot.status != "failed"),
            "decryption_window_ends": window_end.isoformat(),
            "policy": tender.opening_policy,
        },
        now,
    )
    return "opening"


def _in_window(tender: Tender, now: datetime) -> None:
    """Keys are revealed in the hall within the decryption window only (E-02, E-03)."""
    if tender.opened_at is not None and now >= _window_end(tender):
        raise RuleViolation(
            "E-03",
            "The decryption window has closed; an envelope its bidder did not open is treated as revoked "
            "unless the tender's custodians open it.",
            window_ended=_window_end(tender).isoformat(),
        )
    if tender.status != TenderStatus.OPENING:
        if now < tender.bid_deadline:
            raise RuleViolation("E-01", "No envelope can be opened before the bid deadline.")
        raise Conflict(f"Envelopes are opened in the opening hall; the tender is {tender.status}.")


async def decrypt_bid(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    bid_id: uuid.UUID,
    data: schemas.BidDecrypt,
    now: datetime,
) -> Bid:
    """In the opening hall, within the window, the bidder reveals its envelope's file key (E-02). The key
    is checked against the header MAC at once; decryption runs as a job, off the request."""
    tender = await _tender(session, tender_id, lock=True)
    bid = await _own_bid(session, actor, tender.id, bid_id)
    _in_window(tender, now)
    if bid.status != "submitted":
        raise Conflict(f"This bid is {bid.status}.")
    row = await bidding.envelope_of(session, bid.id)
    if row.status == "opening" and row.opened_by == "bidder":
        # Revealed already and still being decrypted (the job retries through store or database faults):
        # the same key again is accepted and changes nothing.
        bidding.check_file_key(row, data.file_key)
        return bid
    if row.status != "sealed":
        raise Conflict(f"This envelope is already {row.status}.")
    key = bidding.check_file_key(row, data.file_key)
    await _start_opening(session, tender, bid, row, key, "bidder", now)
    await accounts.record(session, actor, "bid.decrypt", "bid", bid.id, now)
    return bid


async def _start_opening(
    session: AsyncSession, tender: Tender, bid: Bid, row: Any, key: bytes, by: str, now: datetime
) -> None:
    row.status = "opening"
    row.file_key = base64.b64encode(key).decode()
    row.opened_by = by
    outbox.enqueue(session, "trading.open_envelope", {"bid_id": str(bid.id)}, now)
    await bidding.opening_event(session, tender.id, "key_revealed", {"bid": str(bid.id), "by": by}, now)


@dataclass(frozen=True)
class EnvelopeToOpen:
    """What the decryption job needs, read in a short transaction of its own."""

    bid_id: uuid.UUID
    object_key: str
    sha256: str
    file_key: bytes
    out_prefix: str


async def envelope_to_open(session: AsyncSession, bid_id: uuid.UUID) -> EnvelopeToOpen | None:
    """The envelope of a bid if its file key is in hand and it is not opened yet."""
    bid = await session.get(Bid, bid_id)
    if bid is None:
        return None
    row = await bidding.envelope_of(session, bid.id)
    if row.status != "opening" or row.file_key is None:
        return None
    tender = await _tender(session, bid.tender_id)
    return EnvelopeToOpen(
        bid.id, bid.object_key, bid.sha256, base64.b64decode(row.file_key), f"opened/{tender.code}/{bid.id}"
    )


async def open_envelope(session: AsyncSession, store: ObjectStore, bid_id: uuid.UUID, now: datetime) -> str:
    """Decrypt one envelope whose file key is in hand and record it (in one transaction: for callers that
    do not mind holding it; the job decrypts between two short ones)."""
    job = await envelope_to_open(session, bid_id)
    if job is None:
        return "skipped"
    opened = await bidding.open_stored(
        store, key=job.object_key, sha256=job.sha256, file_key=job.file_key, out_prefix=job.out_prefix
    )
    return await record_opening(session, bid_id, opened, now)


async def record_opening(
    session: AsyncSession, bid_id: uuid.UUID, opened: bidding.Opened, now: datetime
) -> str:
    """Check a decrypted envelope's manifest against the submission (tender, lot, bidder, signing key) and
    read the result into the opening record (唱标). Idempotent: an envelope already resolved is left alone."""
    bid = await session.get(Bid, bid_id)
    assert bid is not None
    lot = await session.get(Lot, bid.lot_id)
    org = await accounts.get_organisation(session, bid.organisation_id)
    assert lot is not None
    row = await bidding.envelope_of(session, bid.id)
    # Decryption ran without the tender's lock; take it now, and look again at the state, to record it.
    tender = await _tender(session, bid.tender_id, lock=True)
    await session.refresh(row)
    if row.status != "opening":
        return row.status
    problem: tuple[str, str] | None
    if opened.error is not None:
        problem = (opened.error, opened.detail or "")
    else:
        assert opened.manifest is not None
        keys = [
            k.public_key
            for k in await accounts.list_keys(session, bid.organisation_id)
            if k.purpose == "signing" and k.revoked_at is None and k.created_at <= bid.submitted_at
        ]
        problem = bidding.check_context(
            opened.manifest, tender=tender.code, lot=lot.number, bidder=org.credit_code, signing_keys=keys
        )
    row.opened_at = now
    if problem is None:
        assert opened.manifest is not None
        row.status = "opened"
        row.result = "opened"
        row.manifest = json.loads(opened.manifest.to_bytes())
        row.files = opened.files
        bid.declared_price_fen = opened.manifest.declared_price_fen
        bid.duration_days = opened.manifest.duration_days
        bid.revealed_at = now
        await accounts.record(session, None, "bid.open", "bid", bid.id, now, by=row.opened_by)
    else:
        code, detail = problem
        row.status = "failed"
        row.result = code
        row.result_detail = detail[:500]
        row.files = opened.files or None
        if opened.platform_fault:
            # E-03: not the bidder's fault — treated as withdrawn (撤回), and the deposit goes back.
            bid.status = "withdrawn"
            bid.withdrawn_at = now
            await accounts.record(session, None, "bid.withdraw", "bid", bid.id, now, rule="E-03", reason=code)
            cal = await working_calendar(session)
            await escrow.on_withdrawal(
                session, bid.lot_id, bid.organisation_id, "E-03", local_date(now), cal, now
            )
        else:
            # The bidder's envelope does not open to a valid bid for this submission: void (E-03 revoked).
            bid.status = "revoked"
            await accounts.record(session, None, "bid.revoke", "bid", bid.id, now, rule="E-03", reason=code)
            await escrow.on_revoked(session, bid.lot_id, bid.organisation_id)
    await bidding.opening_event(
        session,
        tender.id,
        "bid_opened" if problem is None else "bid_failed",
        _sung(tender, lot, org, bid, row),
        now,
    )
    return row.status


def _sung(tender: Tender, lot: Lot, org: Any, bid: Bid, row: Any) -> dict[str, Any]:
    """One line of the opening record as read out (唱标), with the platform's rejection (W-19: no deposit
    at the deadline) when it established one."""
    line = {
        "bid": str(bid.id),
        "lot": lot.number,
        "bidder": org.name,
        "credit_code": org.credit_code,
        "envelope_sha256": bid.sha256,
        "declared_price_fen": bid.declared_price_fen,
        "duration_days": bid.duration_days,
        "opened_by": row.opened_by,
        "result": row.result or row.status,
        "detail": row.result_detail,
        "custody_cause": (row.custody_outcome or {}).get("cause"),
    }
    if bid.rejection_rule is not None:
        line["rejected"] = rejection_line(bid)
    return line


def rejection_view(bid: Bid) -> dict[str, Any] | None:
    """A bid's platform-established rejection with the evidence it rests on, for those who may see the bid."""
    line = rejection_line(bid)
    return None if line is None else {**line, "evidence": (bid.rejection or {}).get("evidence")}


def rejection_line(bid: Bid) -> dict[str, Any] | None:
    """A bid's platform-established rejection as it is read out and shown: rule, reason and detail."""
    if bid.rejection_rule is None:
        return None
    found = bid.rejection or {}
    return {
        "rule": bid.rejection_rule,
        "reason": found.get("reason"),
        "detail": found.get("detail"),
        "at": bid.rejected_at.isoformat() if bid.rejected_at else None,
    }


async def check_in(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    """A bidder signs in to the opening hall (开标签到); the line is read into the live record once."""
    tender = await _tender(session, tender_id, lock=True)
    mine = await session.scalar(
        select(func.count()).where(
            Bid.tender_id == tender.id,
            Bid.organisation_id == actor.organisation_id,
            Bid.status == "submitted",
        )
    )
    if not mine:
        raise NotFound("No such opening.")
    if tender.status != TenderStatus.OPENING:
        if now < tender.bid_deadline:
            raise RuleViolation("E-02", "The opening hall opens at the bid deadline.")
        raise Conflict(f"The opening hall is closed; the tender is {tender.status}.")
    org = await accounts.get_organisation(session, actor.organisation_id)
    earlier = [
        e
        for e in await bidding.opening_events(session, tender.id, 0)
        if e.kind == "bidder_signed_in" and e.payload.get("credit_code") == org.credit_code
    ]
    if earlier:
        return {
            "seq": earlier[0].seq,
            "at": earlier[0].at.isoformat(),
            "kind": earlier[0].kind,
            **earlier[0].payload,
        }
    event = await bidding.opening_event(
        session,
        tender.id,
        "bidder_signed_in",
        {"bidder": org.name, "credit_code": org.credit_code, "by": actor.username},
        now,
    )
    await accounts.record(session, actor, "opening.check_in", "tender", tender.id, now)
    return {"seq": event.seq, "at": event.at.isoformat(), "kind": event.kind, **event.payload}


def _shamir(tender: Tender) -> int:
    """The Shamir threshold T of the tender's stanzas (fixed at publication)."""
    return tender.custody_shamir_threshold or tender.custody_threshold


async def custody_view(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, now: datetime
) -> schemas.CustodyView:
    """What a custodian needs to release: the headers of the envelopes in custody and its releases so far."""
    tender = await _tender(session, tender_id)
    position = await bidding.custodian_position(session, tender.id, actor.organisation_id)
    if now < tender.bid_deadline:
        raise RuleViolation("E-01", "No envelope can be opened before the bid deadline.")
    rows = [r for r in await bidding.envelopes_of(session, tender.id) if r.status == "custody"]
    bids = {b.id: b for b in await session.scalars(select(Bid).where(Bid.tender_id == tender.id))}
    lots = {lot.id: lot.number for lot in await lots_of(session, tender.id)}
    releases = await bidding.releases_of(session, [r.bid_id for r in rows])
    mine = {r.bid_id: r.status for r in releases if r.position == position}
    return schemas.CustodyView(
        tender.code,
        position,
        tender.custody_threshold,
        _shamir(tender),
        tender.opening_policy,
        tender.custody_until,
        [
            schemas.CustodyEnvelope(
                r.bid_id,
                lots[bids[r.bid_id].lot_id],
                bids[r.bid_id].sha256,
                r.header,
                envelope.header_sha256(bidding.header_of(r)),
                r.status,
                sum(1 for x in releases if x.bid_id == r.bid_id and x.status == "valid"),
                mine.get(r.bid_id),
            )
            for r in sorted(rows, key=lambda r: (lots[bids[r.bid_id].lot_id], bids[r.bid_id].sha256))
        ],
    )


async def release_custody(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: schemas.ReleaseIn, now: datetime
) -> tuple[schemas.ReleaseResult, bidding.Recorded]:
    """A custodian releases its stanza of one envelope in custody (after the deadline, while the custody
    window runs): the stanza's shared secret with its proof, verified at once and kept, valid or invalid
    (the evidence of a custodian's fault). Once the valid releases open the envelope it is opened; once
    every custodian released validly its outcome is final and applied at once (otherwise at the end of
    the custody window). Envelope by envelope: one envelope's release never waits on another's."""
    tender = await _tender(session, tender_id, lock=True)
    position = await bidding.custodian_position(session, tender.id, actor.organisation_id)
    if now < tender.bid_deadline:
        raise RuleViolation(
            "E-01", "No envelope can be opened before the bid deadline; releases are refused."
        )
    if tender.opening_policy != "custodians":
        raise RuleViolation(
            "E-03", "This tender's policy revokes unopened bids; custodians do not open them."
        )
    if tender.custody_until is None or tender.status != TenderStatus.OPENING:
        raise Conflict("No envelope is in custody: custodians release after the decryption window.")
    if now >= tender.custody_until:
        raise RuleViolation(
            "E-03", "The custody window has closed.", custody_ended=tender.custody_until.isoformat()
        )
    bid = await session.get(Bid, data.bid_id)
    row = (
        await bidding.envelope_of(session, bid.id) if bid is not None and bid.tender_id == tender.id else None
    )
    if bid is None or row is None:
        raise ValidationProblem(
            "No such envelope in this tender.", errors=[field_error("bid_id", "unknown bid")]
        )
    if row.status != "custody":
        kept = await bidding.release_of(session, bid.id, position)
        if kept is not None and kept.status == "valid" and kept.release is not None:
            if kept.release.get("shared_secret") == data.release.get("shared_secret"):
                # a retry of the release that resolved the envelope: the same answer, nothing new
                cause = (row.custody_outcome or {}).get("cause")
                replay = bidding.Recorded("valid", None, None, kept.share is not None, True)
                result = schemas.ReleaseResult(
                    bid.id, position, "valid", replay.stanza_opens, True, row.status, cause
                )
                return result, replay
        raise Conflict(
            f"This envelope is {row.status}, not in custody.", errors=[field_error("bid_id", row.status)]
        )
    try:
        custody.parse_release(data.release)
    except envelope.EnvelopeError as exc:
        raise ValidationProblem(
            f"This is not a custody release ({exc.message}); make it with `ggzy custodian release`.",
            errors=[field_error("release", exc.code)],
            release_error=exc.code,
        ) from exc
    member = next(c for c in await bidding.roster(session, tender.id) if c.position == position)
    recorded = await bidding.record_release(
        session, row=row, custodian=member, context=tender.code, release=data.release, now=now
    )
    outcome: str | None = (row.custody_outcome or {}).get("cause")
    if not recorded.replayed:
        await accounts.record(
            session,
            actor,
            "custody.release",
            "bid",
            bid.id,
            now,
            outcome="accepted" if recorded.status == "valid" else "refused",
            position=position,
            status=recorded.status,
            error=recorded.error,
            stanza_opens=recorded.stanza_opens,
        )
        if recorded.status == "valid":
            attributed = await bidding.attribute(
                session, row, context=tender.code, shamir_threshold=_shamir(tender)
            )
            if attributed.complete:
                await _resolve_custody(session, tender, bid, row, attributed, now)
                outcome = attributed.cause
    return (
        schemas.ReleaseResult(
            bid.id, position, recorded.status, recorded.stanza_opens, recorded.replayed, row.status, outcome
        ),
        recorded,
    )


async def _resolve_custody(
    session: AsyncSession, tender: Tender, bid: Bid, row: Any, outcome: custody.Outcome, now: datetime
) -> None:
    """Apply an envelope's custody outcome: opened → decrypted as any other; the bidder's fault → revoked
    (E-03 撤销) with a W-06 forfeiture of its deposit proposed; a custodian's fault → withdrawn (E-03 撤回),
    its deposit refunded. The live record gets the cause and its evidence, the audit trail too."""
    lot = await session.get(Lot, bid.lot_id)
    org = await accounts.get_organisation(session, bid.organisation_id)
    assert lot is not None
    evidence = outcome.evidence()
    row.custody_outcome = evidence
    await bidding.opening_event(
        session,
        tender.id,
        "custody_outcome",
        {
            "bid": str(bid.id),
            "lot": lot.number,
            "bidder": org.name,
            "credit_code": org.credit_code,
            "envelope_sha256": bid.sha256,
            **evidence,
        },
        now,
    )
    if outcome.cause == "opened":
        assert outcome.file_key is not None
        await accounts.record(session, None, "custody.open", "bid", bid.id, now, **evidence)
        await _start_opening(session, tender, bid, row, outcome.file_key, "custodians", now)
        return
    row.status = "failed"
    row.result = opening_record.CAUSE_RESULTS[outcome.cause]
    row.result_detail = outcome.detail[:500]
    if outcome.cause == "bidder_fault":
        bid.status = "revoked"
        await accounts.record(
            session, None, "bid.revoke", "bid", bid.id, now, rule="E-03", reason=row.result, **evidence
        )
        await escrow.on_revoked(session, bid.lot_id, bid.organisation_id)
        proposal = await escrow.on_proven_fault(
            session,
            bid.lot_id,
            bid.organisation_id,
            f"E-03 撤销: the custody opening of envelope {bid.sha256[:16]}… proved the bidder's fault — "
            f"{outcome.detail} (opening record of {tender.code})",
            now,
        )
        if proposal is not None:
            await accounts.record(
                session, None, "escrow.forfeiture.propose", "forfeiture", proposal.id, now, rule="W-06"
            )
    else:
        bid.status, bid.withdrawn_at = "withdrawn", now
        await accounts.record(
            session, None, "bid.withdraw", "bid", bid.id, now, rule="E-03", reason=row.result, **evidence
        )
        await escrow.on_withdrawal(
            session,
            bid.lot_id,
            bid.organisation_id,
            "E-03",
            local_date(now),
            await working_calendar(session),
            now,
        )
    await bidding.opening_event(session, tender.id, "bid_failed", _sung(tender, lot, org, bid, row), now)


async def _end_custody(session: AsyncSession, tender: Tender, bid: Bid, row: Any, now: datetime) -> None:
    """At the end of the custody window: the envelope's outcome from the releases on record, in a savepoint
    of its own, so one envelope that cannot be attributed (its stored state unreadable) fails neither the
    others nor the tick: it is then the platform's fault (E-03 撤回), its deposit refunded."""
    try:
        async with session.begin_nested():
            outcome = await bidding.attribute(
                session, row, context=tender.code, shamir_threshold=_shamir(tender)
            )
            await _resolve_custody(session, tender, bid, row, outcome, now)
        return
    except Exception:
        log.exception(
            "custody outcome of bid %s could not be attributed; treated as the platform's fault", bid.id
        )
    await session.refresh(row)
    await session.refresh(bid)
    async with session.begin_nested():
        await _platform_fault(
            session,
            tender,
            bid,
            row,
            "platform.custody",
            "the platform could not attribute the custody outcome",
            now,
        )


async def _platform_fault(
    session: AsyncSession, tender: Tender, bid: Bid, row: Any, code: str, detail: str, now: datetime
) -> None:
    """Not the bidder's fault (E-03): the bid is treated as withdrawn (撤回) and its deposit goes back."""
    row.status, row.result, row.result_detail = "failed", code, detail
    bid.status, bid.withdrawn_at = "withdrawn", now
    await accounts.record(session, None, "bid.withdraw", "bid", bid.id, now, rule="E-03", reason=code)
    await escrow.on_withdrawal(
        session,
        bid.lot_id,
        bid.organisation_id,
        "E-03",
        local_date(now),
        await working_calendar(session),
        now,
    )
    lot = await session.get(Lot, bid.lot_id)
    assert lot is not None
    org = await accounts.get_organisation(session, bid.organisation_id)
    await bidding.opening_event(session, tender.id, "bid_failed", _sung(tender, lot, org, bid, row), now)


async def _end_decryption_window(session: AsyncSession, tender: Tender, now: datetime) -> bool:
    """At the window's end, envelopes nobody opened go to the custodians (policy "custodians", once) or
    their bids are revoked (E-03). True when the opening may close now."""
    rows = await bidding.envelopes_of(session, tender.id)
    bids = {b.id: b for b in await session.scalars(select(Bid).where(Bid.tender_id == tender.id))}
    lots = {lot.id: lot for lot in await lots_of(session, tender.id)}
    live = [
        r
        for r in rows
        if bids[r.bid_id].status == "submitted" and lots[bids[r.bid_id].lot_id].status != "failed"
    ]
    stuck_after = (tender.custody_until or _window_end(tender)) + DECRYPTION_GRACE
    if any(r.status == "opening" for r in live):
        if now < stuck_after:
            return False  # a decryption job is still running; look again shortly
        for row in live:
            if row.status == "opening":
                # The platform could not decrypt an envelope whose key it held, though its job kept
                # retrying through the window and the grace: its fault, not the bidder's (E-03) — treated
                # as withdrawn, the deposit goes back, and the line is read out as failed.
                await _platform_fault(
                    session,
                    tender,
                    bids[row.bid_id],
                    row,
                    "platform.decryption",
                    "the platform did not finish decrypting the envelope",
                    now,
                )
    in_custody = [r for r in live if r.status == "custody"]
    if in_custody and tender.custody_until is not None and now >= tender.custody_until:
        for row in in_custody:
            await _end_custody(session, tender, bids[row.bid_id], row, now)
        if any(r.status == "opening" for r in in_custody):
            return False  # opened by the custodians' shares at the last moment: decrypting now
    unopened = [r for r in live if r.status in ("sealed", "custody")]
    if unopened and tender.opening_policy == "custodians" and tender.custody_until is None:
        tender.custody_until = now + timedelta(minutes=tender.opening_window_minutes)
        for row in unopened:
            row.status = "custody"
        await bidding.opening_event(
            session,
            tender.id,
            "custody_opened",
            {"envelopes": len(unopened), "custody_until": tender.custody_until.isoformat()},
            now,
        )
        return False
    for row in unopened:
        bid = bids[row.bid_id]
        bid.status = "revoked"
        row.result = "not_opened"
        await accounts.record(session, None, "bid.revoke", "bid", bid.id, now, rule="E-03")
        await escrow.on_revoked(session, bid.lot_id, bid.organisation_id)
        org = await accounts.get_organisation(session, bid.organisation_id)
        await bidding.opening_event(
            session, tender.id, "bid_failed", _sung(tender, lots[bid.lot_id], org, bid, row), now
        )
    return True


async def close_opening(
    session: AsyncSession,
    actor: Principal | None,
    tender_id: uuid.UUID,
    now: datetime,
    *,
    tender: Tender | None = None,
) -> Tender:
    """End the opening: the opening record (开标记录) is published, W-18 signals are computed, lots left with
    fewer than 3 valid bids fail (W-09), and the tender goes to evaluation. The agency may close early once
    every envelope is resolved; otherwise the chronograph closes it after the window(s)."""
    if tender is None:
        assert actor is not None
        tender = await tender_for_agency(session, actor, tender_id)
    if tender.status != TenderStatus.OPENING:
        raise Conflict(f"The tender is {tender.status}, not opening.")
    rows = {r.bid_id: r for r in await bidding.envelopes_of(session, tender.id)}
    bids = list(await session.scalars(in_arrival_order(select(Bid).where(Bid.tender_id == tender.id))))
    lots = {lot.id: lot for lot in await lots_of(session, tender.id)}
    pending = [
        b
        for b in bids
        if b.status == "submitted"
        and b.id in rows
        and rows[b.id].status != "opened"
        and lots[b.lot_id].status != "failed"
    ]
    if pending:
        raise Conflict(
            "Some envelopes are not open yet; the opening closes when they are or when the decryption "
            "window (and any custody window) ends.",
            window_ends=_window_end(tender).isoformat(),
        )
    if await _pending_objections(session, tender, "opening"):
        raise Conflict("Answer the objections raised at the opening first.")
    profile = profile_for(tender.sector, tender.method)
    orgs: dict[uuid.UUID, Any] = {}
    record = []
    evidence = []
    valid: dict[uuid.UUID, int] = {}
    for bid in bids:
        lot = lots[bid.lot_id]
        row = rows.get(bid.id)
        withdrawn_early = bid.status == "withdrawn" and (bid.withdrawn_at or now) < tender.bid_deadline
        if lot.status == "failed" or row is None or bid.status == "replaced" or withdrawn_early:
            continue
        if bid.organisation_id not in orgs:
            orgs[bid.organisation_id] = await accounts.get_organisation(session, bid.organisation_id)
        org = orgs[bid.organisation_id]
        record.append(_sung(tender, lot, org, bid, row))
        if bid.status == "submitted" and bid.rejection_rule is None:  # a W-19 bid is opened, not valid
            valid[lot.id] = valid.get(lot.id, 0) + 1
        if bid.status == "submitted":
            evidence.append(
                collusion.BidEvidence(
                    bid_id=str(bid.id),
                    bidder=org.credit_code,
                    bidder_name=org.name,
                    files=tuple(
                        collusion.FileEvidence(f["name"], f["sha256"], f["size"], f.get("metadata") or {})
                        for f in (row.files or [])
                    ),
                    signing_key=(row.manifest or {}).get("signing_key", ""),
                    address=row.client_address,
                    device=row.client_device,
                    user_agent=row.user_agent,
                )
            )
    for lot in lots.values():
        if lot.status != "failed" and valid.get(lot.id, 0) < profile.min_bids_to_open:
            lot.status = "failed"
            lot.outcome_reason = f"W-09: {valid.get(lot.id, 0)} valid bid(s) opened; at least {profile.min_bids_to_open} are needed"
            for bid in bids:
                if bid.lot_id == lot.id and bid.status == "submitted":
                    bid.status = "returned"
                    await accounts.record(session, None, "bid.return", "bid", bid.id, now, rule="W-09")
    signals = await bidding.record_signals(session, tender.id, evidence, now)
    objections = [
        {
            "id": str(o.id),
            "text": o.text,
            "answer": o.answer,
            "answered_at": o.answered_at and o.answered_at.isoformat(),
        }
        for o in await session.scalars(
            select(Objection).where(Objection.tender_id == tender.id, Objection.subject == "opening")
        )
    ]
    await bidding.opening_event(
        session, tender.id, "hall_closed", {"bids": len(record), "signals": len(signals)}, now
    )
    await _publish_notice(
        session,
        tender,
        "opening_record",
        f"{tender.title} 开标记录",
        {"bids": record, "objections": objections},
        now,
    )
    if all(lot.status == "failed" for lot in lots.values()):
        reason = "W-09: fewer than 3 valid bids on every lot; the tender is to be re-run"
        await _fail(session, tender, actor, "W-09", reason, now)
    else:
        await _move(session, tender, Action.CLOSE_OPENING, actor, now)
    return tender


async def opening_hall(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, after: int
) -> tuple[Tender, list[Any]]:
    """The live opening record for its participants: the tender's agency, its bidders (once the hall
    opened), the centre, supervisors and auditors."""
    tender = await visible_tender(session, actor, tender_id)
    if not (_can_manage(actor, tender) or actor.has("centre", "supervisor", "auditor")):
        bidder = await session.scalar(
            select(Bid.id)
            .where(Bid.tender_id == tender.id, Bid.organisation_id == actor.organisation_id)
            .limit(1)
        )
        if bidder is None:
            raise NotFound("No such opening.")
    return tender, await bidding.opening_events(session, tender.id, after)


# ---------------------------------------------------------------- report, publicity, award


@dataclass(frozen=True)
class StoredFile:
    """A file another package already put in the object store, to be kept as a document of the trade."""

    filename: str
    object_key: str
    sha256: str
    size: int
    uploaded_by: uuid.UUID


async def record_report(
    session: AsyncSession,
    actor: Principal | None,
    tender_id: uuid.UUID,
    committee: list[dict[str, Any]],
    candidates: list[tuple[uuid.UUID, list[uuid.UUID]]],
    file: StoredFile,
    report_hash: str,
    now: datetime,
) -> Report:
    """Take the committee's signed report from the evaluation room (W-10, W-11) and publish the candidates
    for publicity (W-12). A lot without candidates fails; a tender whose every lot failed fails."""
    tender = await _tender(session, tender_id, lock=True)
    if tender.status != TenderStatus.EVALUATION:
        raise Conflict(f"The report comes after the opening; the tender is {tender.status}.")
    profile = profile_for(tender.sector, tender.method)
    experts = sum(1 for m in committee if m["kind"] == "expert")
    why = committee_ok(profile, len(committee), experts)
    if why:
        raise RuleViolation("W-10", f"The evaluation committee is not lawful: {why}.")
    dissents = [m["name"] for m in committee if m.get("dissent")]
    deemed = [m["name"] for m in committee if m.get("deemed_agreed")]
    lots = {lot.id: lot for lot in await lots_of(session, tender.id)}
    open_lots = {lid for lid, lot in lots.items() if lot.status == "open"}
    if {lot_id for lot_id, _ in candidates} != open_lots:
        raise Conflict("The report must rank candidates for every open lot.")
    for _lot_id, ranking in candidates:
        if len(ranking) > profile.max_candidates:
            raise RuleViolation("W-11", f"At most {profile.max_candidates} ranked candidates per lot.")
    await _refuse_rejected(session, [bid_id for _lot_id, ranking in candidates for bid_id in ranking])
    document = Document(
        tender_id=tender.id,
        kind="evaluation_report",
        filename=file.filename,
        object_key=file.object_key,
        sha256=file.sha256,
        size=file.size,
        uploaded_by=file.uploaded_by,
        uploaded_at=now,
    )
    session.add(document)
    await session.flush()
    for lot_id, ranking in candidates:
        if not ranking:
            lots[lot_id].status = "failed"
            lots[lot_id].outcome_reason = "the committee found no acceptable bid"
    report = Report(
        tender_id=tender.id,
        document_id=document.id,
        committee=committee,
        candidates=[
            {"lot_id": str(lot_id), "ranking": [str(b) for b in ranking]} for lot_id, ranking in candidates
        ],
        received_at=now,
    )
    session.add(report)
    await session.flush()
    await accounts.record(
        session,
        actor,
        "report.submit",
        "report",
        report.id,
        now,
        deemed_agreed=deemed,
        dissents=dissents,
        report_hash=report_hash,
    )
    if all(lot.status == "failed" for lot in lots.values()):
        tender.outcome_reason = "the committee rejected every bid"
        tender.closed_at = now
        await _move(session, tender, Action.FAIL, actor, now)
        await _publish_notice(
            session, tender, "failure", f"{tender.title} 流标公告", {"reason": tender.outcome_reason}, now
        )
        return report
    cal = await working_calendar(session)
    tender.report_at = now
    tender.publicity_days = max(tender.publicity_days, profile.publicity_min_days)
    tender.publicity_ends = end_of_day(cal.period_end(local_date(now), tender.publicity_days))
    await _move(session, tender, Action.SUBMIT_REPORT, actor, now)
    body = []
    for lot_id, ranking in candidates:
        ranked = []
        for rank, bid_id in enumerate(ranking, start=1):
            bid = await session.get(Bid, bid_id)
            assert bid is not None
            org = await accounts.get_organisation(session, bid.organisation_id)
            ranked.append(
                {
                    "rank": rank,
                    "bidder": org.name,
                    "credit_code": org.credit_code,
                    "declared_price_fen": bid.declared_price_fen,
                }
            )
        body.append({"lot": lots[lot_id].number, "candidates": ranked})
    await _publish_notice(
        session,
        tender,
        "candidates",
        f"{tender.title} 中标候选人公示",
        {
            "lots": body,
            "publicity_ends": tender.publicity_ends.isoformat(),
            "rule": "W-12",
            "committee": [m["name"] for m in committee],
            "report_sha256": report_hash,
        },
        now,
    )
    return report


async def award(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: schemas.AwardCreate, now: datetime
) -> list[Award]:
    """Issue the award (定标, 中标通知书) after publicity, once every objection is answered; the winner of each
    lot must be one of its candidates. The contract is due within 30 days (W-13)."""
    tender = await tender_for_agency(session, actor, tender_id)
    if tender.status == TenderStatus.AWARDED:
        return await _reaward(session, actor, tender, data, now)
    if tender.status != TenderStatus.PUBLICITY:
        raise Conflict(f"Awards follow the candidates' publicity; the tender is {tender.status}.")
    assert tender.publicity_ends is not None
    if now < tender.publicity_ends:
        raise RuleViolation(
            "W-12",
            f"The candidates are in publicity until {tender.publicity_ends.astimezone(SHANGHAI).isoformat()}.",
            publicity_ends=tender.publicity_ends.isoformat(),
        )
    if await _pending_objections(session, tender, "candidates"):
        raise RuleViolation("W-12", "Objections to the candidates must be answered before the award.")
    ranking = await _report_ranking(session, tender)
    open_lots = {lot.id: lot for lot in await lots_of(session, tender.id) if lot.status == "open"}
    chosen = {a.lot_id: a.bid_id for a in data.lots}
    if set(chosen) != set(open_lots) or len(chosen) != len(data.lots):
        raise ValidationProblem(
            "Name one winning bid for every open lot.",
            errors=[field_error("lots", "missing or repeated lots")],
        )
    awards, results = await _make_awards(session, tender, chosen, ranking, open_lots, set(), now)
    tender.awarded_at = now
    await _move(session, tender, Action.AWARD, actor, now)
    await _publish_notice(session, tender, "result", f"{tender.title} 中标结果公告", {"lots": results}, now)
    await _notify_holders(
        session, tender, "tender.awarded", f"{tender.code}: the award has been published.", now
    )
    return awards


async def _make_awards(
    session: AsyncSession,
    tender: Tender,
    chosen: dict[uuid.UUID, uuid.UUID],
    ranking: dict[uuid.UUID, list[uuid.UUID]],
    lots: dict[uuid.UUID, Lot],
    excluded: set[uuid.UUID],
    now: datetime,
) -> tuple[list[Award], list[dict[str, Any]]]:
    """Create one active award per chosen lot, each winner a candidate of its lot not in `excluded`."""
    profile = profile_for(tender.sector, tender.method)
    cal = await working_calendar(session)
    awards = []
    results = []
    for i, (lot_id, bid_id) in enumerate(chosen.items()):
        if bid_id not in ranking.get(lot_id, []) or bid_id in excluded:
            raise ValidationProblem(
                "The winner must be one of the lot's candidates.",
                errors=[field_error(f"lots[{i}].bid_id", "not a candidate")],
            )
        await _refuse_rejected(session, [bid_id], field=f"lots[{i}].bid_id")
        bid = await session.get(Bid, bid_id)
        assert bid is not None and bid.declared_price_fen is not None
        row = Award(
            tender_id=tender.id,
            lot_id=lot_id,
            bid_id=bid_id,
            organisation_id=bid.organisation_id,
            price_fen=bid.declared_price_fen,
            awarded_at=now,
            contract_due=cal.period_end(local_date(now), profile.contract_within_days),
        )
        session.add(row)
        lots[lot_id].status = "awarded"
        awards.append(row)
        org = await accounts.get_organisation(session, bid.organisation_id)
        results.append(
            {
                "lot": lots[lot_id].number,
                "winner": org.name,
                "credit_code": org.credit_code,
                "price_fen": bid.declared_price_fen,
            }
        )
    await session.flush()
    return awards, results


async def _refuse_rejected(
    session: AsyncSession, bid_ids: Sequence[uuid.UUID], field: str = "candidates"
) -> None:
    """No bid the platform rejected (W-19: no deposit at the deadline) becomes a candidate or wins."""
    if not bid_ids:
        return
    rejected = (
        await session.execute(
            select(Bid.id, Bid.rejection_rule).where(Bid.id.in_(bid_ids), Bid.rejection_rule.is_not(None))
        )
    ).first()
    if rejected is not None:
        raise RuleViolation(
            rejected.rejection_rule,
            "A bid the platform rejected cannot be a candidate or win: its deposit was not in place at the "
            "bid deadline.",
            errors=[field_error(field, f"bid {rejected.id} is rejected ({rejected.rejection_rule})")],
        )


async def _report_ranking(session: AsyncSession, tender: Tender) -> dict[uuid.UUID, list[uuid.UUID]]:
    report = await session.scalar(select(Report).where(Report.tender_id == tender.id))
    assert report is not None
    return {uuid.UUID(c["lot_id"]): [uuid.UUID(b) for b in c["ranking"]] for c in report.candidates}


async def decline_award(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    award_id: uuid.UUID,
    data: schemas.AwardDecline,
    now: datetime,
) -> Award:
    """The winner refused to sign the contract or to give the performance security: it loses the award and
    its deposit (W-16), and the lot may go to the next-ranked candidate."""
    tender = await tender_for_agency(session, actor, tender_id)
    if tender.status != TenderStatus.AWARDED:
        raise Conflict(f"Only an award not yet contracted can be lost; the tender is {tender.status}.")
    row = await session.get(Award, award_id)
    if row is None or row.tender_id != tender.id:
        raise NotFound("No such award.")
    if row.status != "active" or await session.scalar(select(Contract.id).where(Contract.award_id == row.id)):
        raise Conflict("This award is already declined or contracted.")
    row.status = "declined"
    row.declined_at = now
    row.decline_reason = data.reason
    lot = await session.get(Lot, row.lot_id)
    assert lot is not None
    lot.status = "reawarding"
    deposit = await escrow.deposit_of(session, lot.id, row.organisation_id)
    if deposit is not None:
        # W-16: proposed here, with the reason; the money moves only on a supervisor's approval
        await escrow.propose_forfeiture(
            session,
            deposit,
            "W-16",
            f"the winner declined the award: {data.reason}",
            f"user:{actor.user_id}",
            now,
        )
    await accounts.record(
        session,
        actor,
        "award.decline",
        "award",
        row.id,
        now,
        rule="W-16",
        deposit_forfeited=True,
        organisation=row.organisation_id,
    )
    await _publish_notice(
        session,
        tender,
        "award_change",
        f"{tender.title} 中标结果变更公告 (标段 {lot.number})",
        {"lot": lot.number, "reason": data.reason, "rule": "W-16"},
        now,
    )
    await session.flush()
    declined = set(
        await session.scalars(
            select(Award.bid_id).where(Award.tender_id == tender.id, Award.status == "declined")
        )
    )
    if not [b for b in (await _report_ranking(session, tender)).get(lot.id, []) if b not in declined]:
        await _lot_without_candidates(session, actor, tender, lot, now)
    return row


async def _lot_without_candidates(
    session: AsyncSession, actor: Principal, tender: Tender, lot: Lot, now: datetime
) -> None:
    """Every candidate of the lot declined: the lot fails; the tender fails when no lot is left, and is
    contracted when the other lots all have their contracts."""
    lot.status = "failed"
    lot.outcome_reason = "W-16: every candidate declined the award"
    await escrow.on_lot_settled(
        session, lot.id, "T-END", "lot_failed", local_date(now), await working_calendar(session), now
    )
    statuses = {other.status for other in await lots_of(session, tender.id)}
    if statuses & {"awarded", "reawarding"}:
        return
    if "contracted" in statuses:
        await _move(session, tender, Action.SIGN_CONTRACTS, actor, now)
        return
    reason = "every candidate declined the award (W-16); the tender is to be re-run"
    await _fail(session, tender, actor, "W-16", reason, now)


async def _reaward(
    session: AsyncSession, actor: Principal, tender: Tender, data: schemas.AwardCreate, now: datetime
) -> list[Award]:
    """Award a lot whose winner declined to the next candidate in the committee's order (条例 55)."""
    lots = {lot.id: lot for lot in await lots_of(session, tender.id) if lot.status == "reawarding"}
    chosen = {a.lot_id: a.bid_id for a in data.lots}
    if not lots:
        raise Conflict("Every lot is awarded; nothing to award again.")
    if set(chosen) != set(lots) or len(chosen) != len(data.lots):
        raise ValidationProblem(
            "Name one winning bid for every lot whose winner declined.",
            errors=[field_error("lots", "missing or repeated lots")],
        )
    ranking = await _report_ranking(session, tender)
    declined = set(
        await session.scalars(
            select(Award.bid_id).where(Award.tender_id == tender.id, Award.status == "declined")
        )
    )
    for i, (lot_id, bid_id) in enumerate(chosen.items()):
        remaining = [b for b in ranking.get(lot_id, []) if b not in declined]
        if not remaining or remaining[0] != bid_id:
            raise ValidationProblem(
                "After a winner declines, the lot goes to the next candidate in the committee's order.",
                errors=[field_error(f"lots[{i}].bid_id", "not the next-ranked candidate")],
            )
    awards, results = await _make_awards(session, tender, chosen, ranking, lots, declined, now)
    await accounts.record(session, actor, "tender.reaward", "tender", tender.id, now, lots=len(awards))
    await _publish_notice(
        session, tender, "result", f"{tender.title} 中标结果公告 (重新确定)", {"lots": results}, now
    )
    return awards


async def list_awards(session: AsyncSession, tender_id: uuid.UUID) -> list[Award]:
    """Awards of a tender."""
    return list(await session.scalars(select(Award).where(Award.tender_id == tender_id)))


async def record_contract(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.ContractCreate,
    taken: TakenFile,
    now: datetime,
) -> Contract:
    """Record the signed contract of an awarded lot, its file taken by `take_document`: signed within 30 days
    of the award (W-13), performance security at most 10% of the price (W-15). When every awarded lot has
    its contract, the tender is contracted."""
    tender = await tender_for_agency(session, actor, tender_id)
    if tender.status != TenderStatus.AWARDED:
        raise Conflict(f"Contracts follow the award; the tender is {tender.status}.")
    row = await session.get(Award, data.award_id)
    if row is None or row.tender_id != tender.id:
        raise ValidationProblem("No such award in this tender.", errors=[field_error("award_id", "unknown")])
    if row.status != "active":
        raise Conflict("This award was declined (W-16); record the contract of the new award.", rule="W-16")
    if await session.scalar(select(Contract.id).where(Contract.award_id == row.id)):
        raise Conflict("This award already has its contract.")
    profile = profile_for(tender.sector, tender.method)
    if data.signed_on > local_date(now):
        raise ValidationProblem(
            "signed_on is in the future.", errors=[field_error("signed_on", "in the future")]
        )
    if data.signed_on < local_date(row.awarded_at):
        raise ValidationProblem(
            "signed_on is before the award.", errors=[field_error("signed_on", "before the award")]
        )
    if data.signed_on > row.contract_due and not data.late_reason:
        raise RuleViolation(
            "W-13",
            f"The contract was due by {row.contract_due.isoformat()} (30 days from the award notice); "
            "record it with a late_reason, which is reported to the supervisor.",
            contract_due=row.contract_due.isoformat(),
        )
    cap = performance_security_cap(profile, data.price_fen)
    if data.performance_security_fen > cap:
        raise RuleViolation(
            "W-15",
            f"The performance security may be at most 10% of the contract price: {cap} fen.",
            errors=[field_error("performance_security_fen", f"at most {cap}")],
        )
    document = await _record_document(session, actor, tender, "contract", data.filename, taken, now)
    contract = Contract(
        tender_id=tender.id,
        award_id=row.id,
        document_id=document.id,
        price_fen=data.price_fen,
        performance_security_fen=data.performance_security_fen,
        signed_on=data.signed_on,
        late_reason=data.late_reason,
        recorded_at=now,
    )
    session.add(contract)
    await session.flush()
    await accounts.record(
        session,
        actor,
        "contract.record",
        "contract",
        contract.id,
        now,
        late=data.signed_on > row.contract_due,
    )
    lot = await session.get(Lot, row.lot_id)
    assert lot is not None
    lot.status = "contracted"
    # W-14: every deposit of the lot, the winner's and the others', back within 5 days with interest
    await escrow.on_lot_settled(
        session, lot.id, "W-14", "contract_signed", data.signed_on, await working_calendar(session), now
    )
    await _publish_notice(
        session,
        tender,
        "contract",
        f"{tender.title} 合同公告 (标段 {lot.number})",
        {
            "lot": lot.number,
            "price_fen": data.price_fen,
            "signed_on": data.signed_on.isoformat(),
            "performance_security_fen": data.performance_security_fen,
            "sha256": document.sha256,
        },
        now,
    )
    remaining = await session.scalar(
        select(func.count())
        .select_from(Lot)
        .where(Lot.tender_id == tender.id, Lot.status.in_(("awarded", "reawarding")))
    )
    if not remaining:
        await _move(session, tender, Action.SIGN_CONTRACTS, actor, now)
    return contract


async def complete(session: AsyncSession, actor: Principal, tender_id: uuid.UUID, now: datetime) -> Tender:
    """Close a contracted tender: the trade is complete."""
    tender = await tender_for_agency(session, actor, tender_id)
    tender.closed_at = now
    await _move(session, tender, Action.COMPLETE, actor, now)
    return tender


# ---------------------------------------------------------------- the chronograph


async def advance(session: AsyncSession, tender: Tender, now: datetime, signer: LogSigner) -> str | None:
    """Run the transition due on one tender at `now` (the caller holds its row and owns the transaction):
    documents issued, bidding closed, the opening hall closed; answer what it became, or None when nothing
    moved but its next check."""
    status = TenderStatus(tender.status)
    if status == TenderStatus.PUBLISHED and now >= tender.documents_from:
        await _issue_documents(session, tender, None, now)
        return "tendering"
    if status == TenderStatus.TENDERING and now >= tender.bid_deadline:
        if tender.paused_reason:
            tender.next_check = None  # resumes when the objection is answered
            return "paused"
        return await _close_bidding(session, tender, signer, now)
    if status == TenderStatus.OPENING:
        if not await _end_decryption_window(session, tender, now):
            # A decryption job is still running, or the custodians' window has just begun.
            later = tender.custody_until if tender.custody_until and tender.custody_until > now else None
            tender.next_check = later or now + timedelta(minutes=1)
            return "custody" if later else "decrypting"
        if await _pending_objections(session, tender, "opening"):
            tender.next_check = now + timedelta(minutes=5)
            return None
        await close_opening(session, None, tender.id, now, tender=tender)
        return tender.status
    tender.next_check = _next_check(tender)
    return None


# ---------------------------------------------------------------- complaints (投诉)

# Complaints on these subjects come after an objection to the tenderer on the same subject (条例 60).
OBJECTION_FIRST = frozenset({"documents", "opening", "candidates"})


async def file_complaint(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.ComplaintCreate,
    now: datetime,
) -> Complaint:
    """A bidder complains to the supervising authority within 10 days of when it knew (W-17). Complaints
    about the documents, the opening or the candidates come after an objection to the tenderer (条例 60)."""
    await accounts.require_active(session, actor)
    tender = await _tender(session, tender_id)
    if tender.status == TenderStatus.DRAFT:
        raise NotFound("No such tender.")
    await _holder_or_bidder(session, actor, tender)
    today = local_date(now)
    if data.known_on > today:
        raise ValidationProblem(
            "known_on is in the future.", errors=[field_error("known_on", "in the future")]
        )
    profile = profile_for(tender.sector, tender.method)
    cal = await working_calendar(session)
    last_day = cal.period_end(data.known_on, profile.complaint_within_days)
    if today > last_day:
        raise RuleViolation(
            "W-17",
            f"A complaint must be filed within {profile.complaint_within_days} days of when you knew; "
            f"the last day was {last_day.isoformat()}.",
            last_day=last_day.isoformat(),
        )
    if data.subject in OBJECTION_FIRST:
        objected = await session.scalar(
            select(Objection.id).where(
                Objection.tender_id == tender.id,
                Objection.organisation_id == actor.organisation_id,
                Objection.subject == data.subject,
            )
        )
        if objected is None:
            raise RuleViolation(
                "W-17",
                f"A complaint about the {data.subject} follows an objection to the tenderer on it (条例 60); "
                "file the objection first.",
            )
    complaint = Complaint(
        tender_id=tender.id,
        organisation_id=actor.organisation_id,
        subject=data.subject,
        known_on=data.known_on,
        text=data.text,
        filed_at=now,
        decision_due=cal.add_working_days(today, profile.complaint_decision_working_days),
    )
    session.add(complaint)
    await session.flush()
    await accounts.record(
        session,
        actor,
        "complaint.file",
        "complaint",
        complaint.id,
        now,
        subject=data.subject,
        sealed_tender=complaint.tender_id,
    )
    return complaint


async def decide_complaint(
    session: AsyncSession,
    actor: Principal,
    complaint_id: uuid.UUID,
    data: schemas.ComplaintDecision,
    now: datetime,
) -> Complaint:
    """The supervising authority decides a complaint (due within 30 working days, W-17)."""
    complaint = await session.get(Complaint, complaint_id, with_for_update=True)
    if complaint is None:
        raise NotFound("No such complaint.")
    if complaint.decided_at is not None:
        raise Conflict("This complaint is already decided.")
    complaint.decision = data.decision
    complaint.decision_text = data.text
    complaint.decided_at = now
    complaint.decided_by = actor.user_id
    await accounts.record(
        session,
        actor,
        "complaint.decide",
        "complaint",
        complaint.id,
        now,
        decision=data.decision,
        late=local_date(now) > complaint.decision_due,
    )
    return complaint


async def list_complaints(session: AsyncSession, actor: Principal, tender_id: uuid.UUID) -> list[Complaint]:
    """Complaints on a tender: all for the supervisors, the centre and its agency; a bidder's own otherwise."""
    tender = await visible_tender(session, actor, tender_id)
    query = select(Complaint).where(Complaint.tender_id == tender.id).order_by(Complaint.filed_at)
    if not (_can_manage(actor, tender) or actor.has("centre", "supervisor", "auditor")):
        query = query.where(Complaint.organisation_id == actor.organisation_id)
    return list(await session.scalars(query))
