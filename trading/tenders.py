"""Tenders: drafting, publishing with the profile's periods and caps checked (W-01, W-04; G-02, G-03),
reading as each party may, terminating and re-running, and `move`, the one place a trade changes state
(`trading.lifecycle`), with failure and its refunds."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from accounts import service as accounts
from accounts.security import Principal
from accounts.uscc import InvalidUSCC, validate_uscc
from escrow import refunds
from rules.calendar import (
    SHANGHAI,
    OfficialSchedule,
    ScheduleError,
    WorkingCalendar,
    local_date,
)
from rules.profiles import (
    ProcedureProfile,
    bid_validity_problem,
    deposit_cap,
    profile_for,
)
from rules.schedule import store_schedule, working_calendar
from storage import outbox
from storage.db import upsert_ignore
from storage.pagination import check_limit, decode_cursor, page_after
from storage.problems import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    RuleViolation,
    ValidationProblem,
    field_error,
    requested_instant,
)
from trading import engine, participation, projects, schemas
from trading.lifecycle import (
    CALLER_ACTIONS,
    Action,
    IllegalTransition,
    TenderStatus,
    allowed_actions,
    next_status,
)
from trading.models import (
    Bid,
    CodeCounter,
    Lot,
    NoticeReview,
    Tender,
)
from trading.notices import notify_holders, publish_notice

SECTOR_LETTER = {"works": "W", "procurement": "G", "land": "L", "assets": "A"}


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


async def load_tender(session: AsyncSession, tender_id: uuid.UUID, *, lock: bool = False) -> Tender:
    query = select(Tender).where(Tender.id == tender_id)
    if lock:
        # Locking reads the row afresh: what this transaction saw before the lock may be stale.
        query = query.with_for_update().execution_options(populate_existing=True)
    tender = await session.scalar(query)
    if tender is None:
        raise NotFound("No such tender.")
    return tender


def can_manage(actor: Principal, tender: Tender) -> bool:
    return actor.has("agency") and actor.organisation_id == tender.agency_organisation_id


OVERSEERS = ("centre", "supervisor", "auditor")


def oversees(actor: Principal, tender: Tender) -> bool:
    """Whether `actor` sees all of the tender's records: its agency, the centre, supervisors, auditors."""
    return can_manage(actor, tender) or actor.has(*OVERSEERS)


async def tender_for_agency(session: AsyncSession, actor: Principal, tender_id: uuid.UUID) -> Tender:
    """The tender if the caller's agency runs it (locked for update); 404 otherwise."""
    tender = await load_tender(session, tender_id, lock=True)
    if not can_manage(actor, tender):
        raise NotFound("No such tender.")
    await accounts.require_active(session, actor)
    return tender


async def visible_tender(session: AsyncSession, actor: Principal | None, tender_id: uuid.UUID) -> Tender:
    """The tender as `actor` may see it: drafts only by their agency and the centre."""
    tender = await load_tender(session, tender_id)
    if tender.status == TenderStatus.DRAFT and not (
        actor is not None and (can_manage(actor, tender) or actor.has("centre", "supervisor"))
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
    return await load_tender(session, tender_id)


async def bidder_organisations(session: AsyncSession, tender_id: uuid.UUID) -> list[uuid.UUID]:
    """The organisations with a bid standing in the tender (submitted, not withdrawn)."""
    rows = await session.scalars(
        select(Bid.organisation_id).where(Bid.tender_id == tender_id, Bid.status == "submitted").distinct()
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


def budget_of(lots: Iterable[Lot]) -> int:
    """The trade's budget (or estimate) in fen: the sum of its lots' (G-07 sizes the committee by it)."""
    return sum(lot.estimated_price_fen for lot in lots)


def price_cap(sector: str, lot: Lot) -> tuple[str, int] | None:
    """The field that caps a lot's prices and its value: the ceiling price (最高投标限价, 条例 51(5); 最高限价,
    87号令 63(4)) where the documents set one, else in procurement the budget (预算金额, 87号令 63(4)); works
    without a ceiling have no cap. The one check of both the opening's and the final quotes' rejection of a
    price above it (W-19)."""
    if lot.ceiling_price_fen is not None:
        return "ceiling_price_fen", lot.ceiling_price_fen
    if sector == "procurement":
        return "estimated_price_fen", lot.estimated_price_fen
    return None


async def lots_of(session: AsyncSession, tender_id: uuid.UUID) -> list[Lot]:
    """The tender's lots, by number."""
    return list(await session.scalars(select(Lot).where(Lot.tender_id == tender_id).order_by(Lot.number)))


def caller_actions(tender: Tender, actor: Principal | None, now: datetime | None) -> list[str]:
    """What `actor` can ask of the tender now: only its agency acts on it, and only where the rules allow it
    at `now` (no termination after the deadline, W-08; no award during the candidates' publicity, W-12)."""
    if actor is None or now is None or not can_manage(actor, tender):
        return []
    status = TenderStatus(tender.status)
    out = []
    for action in allowed_actions(profile_for(tender.sector, tender.method, tender.envelopes), status):
        if action not in CALLER_ACTIONS:
            continue
        if action is Action.CANCEL and status is TenderStatus.TENDERING and now >= tender.bid_deadline:
            continue
        if (
            action is Action.AWARD
            and status is TenderStatus.PUBLICITY
            and (tender.publicity_ends is None or now < tender.publicity_ends)
        ):
            continue
        out.append(action.value)
    return out


async def last_review(session: AsyncSession, tender_id: uuid.UUID) -> NoticeReview | None:
    """The tender notice's last submission for the centre's review (公告审核), if any."""
    return await session.scalar(
        select(NoticeReview)
        .where(NoticeReview.tender_id == tender_id)
        .order_by(NoticeReview.number.desc())
        .limit(1)
    )


def review_read(r: NoticeReview) -> schemas.NoticeReviewRead:
    return schemas.NoticeReviewRead(
        id=r.id,
        tender_id=r.tender_id,
        status=r.status,
        submitted_at=r.submitted_at,
        due_on=r.due_on,
        reasons=r.reasons,
        decided_at=r.decided_at,
    )


async def tender_read(
    session: AsyncSession, tender: Tender, actor: Principal | None = None, now: datetime | None = None
) -> schemas.TenderRead:
    """The API view of a tender with its lots, and what `actor` can ask of it at `now` (`allowed_actions`:
    nothing unless both are given)."""
    lots = await lots_of(session, tender.id)
    review = None
    if actor is not None and oversees(actor, tender) and (last := await last_review(session, tender.id)):
        review = review_read(last)
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
                lot.ceiling_price_fen,
            )
            for lot in lots
        ],
        created_at=tender.created_at,
        published_at=tender.published_at,
        opened_at=tender.opened_at,
        publicity_ends=tender.publicity_ends,
        awarded_at=tender.awarded_at,
        paused_reason=tender.paused_reason,
        suspended_reason=tender.suspended_reason,
        outcome_reason=tender.outcome_reason,
        parent_id=tender.parent_id,
        next_check=tender.next_check,
        allowed_actions=[
            # a notice under review is not submitted again
            a
            for a in caller_actions(tender, actor, now)
            if not (a == Action.PUBLISH and review is not None and review.status == "pending")
        ],
        version=tender.version,
        custody_threshold=tender.custody_threshold,
        opening_policy=tender.opening_policy,
        custodian_organisations=[uuid.UUID(str(o)) for o in tender.custodian_organisations],
        custodians=await engine.bids().custodians(session, tender),
        custody_until=tender.custody_until,
        bid_validity_days=tender.bid_validity_days,
        envelopes=tender.envelopes,
        evaluation_rooms=tender.evaluation_rooms,
        max_lots_per_supplier=tender.max_lots_per_supplier,
        method_approval=(
            msgspec.convert(tender.method_approval, schemas.MethodApprovalRead)
            if tender.method_approval
            else None
        ),
        invited_organisations=(
            [uuid.UUID(str(o)) for o in tender.invited_organisations]
            if actor is not None and oversees(actor, tender)
            else None
        ),
        shamir_threshold=tender.custody_shamir_threshold,
        project_id=tender.project_id,
        review=review,
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


def refuse_if_suspended(tender: Tender, action: str) -> None:
    """Nothing moves a trade the supervising authority suspended over a complaint, but its failure or
    termination (W-17, G-12)."""
    if tender.suspended_reason is not None:
        raise Conflict(
            f"The supervising authority suspended this trade over a complaint; it cannot {action} until the "
            f"complaint is decided: {tender.suspended_reason}",
            rule=profile_for(tender.sector, tender.method).rule("complaint_decision_working_days"),
        )


async def move(
    session: AsyncSession,
    tender: Tender,
    action: Action,
    actor: Principal | None,
    now: datetime,
    **detail: Any,
) -> None:
    """Apply one transition of the state machine and log it; the only place `status` is written. A trade
    the supervising authority suspended only fails or is terminated."""
    if action not in (Action.FAIL, Action.CANCEL):
        refuse_if_suspended(tender, action.value.replace("_", " "))
    try:
        profile = profile_for(tender.sector, tender.method, tender.envelopes)
        target = next_status(profile, TenderStatus(tender.status), action)
    except IllegalTransition as exc:
        raise Conflict(str(exc), status_now=tender.status) from exc
    before = tender.status
    tender.status = target.value
    tender.next_check = next_check_of(tender)
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


def next_check_of(tender: Tender) -> datetime | None:
    """When the chronograph must look at this tender next."""
    status = TenderStatus(tender.status)
    if status == TenderStatus.PUBLISHED:
        return tender.documents_from
    if status == TenderStatus.TENDERING:
        return tender.bid_deadline
    if status in (TenderStatus.OPENING, TenderStatus.COMMERCIAL_OPENING):
        return tender.custody_until or window_end(tender)
    if status == TenderStatus.FINAL_QUOTES:
        return final_quotes_close(tender)
    return None


def final_quotes_close(tender: Tender) -> datetime | None:
    """When a negotiated procedure's final quotes are opened together: the reveal window's end."""
    if tender.final_quote_deadline is None:
        return None
    minutes = profile_for(tender.sector, tender.method).final_quote_reveal_minutes or 0
    return tender.final_quote_deadline + timedelta(minutes=minutes)


def window_end(tender: Tender) -> datetime:
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
        if lot.ceiling_price_fen is not None and profile.sector == "procurement":
            if lot.ceiling_price_fen > lot.estimated_price_fen:
                raise ValidationProblem(
                    "A procurement's ceiling price (最高限价) may not exceed its budget (预算金额).",
                    errors=[field_error(f"lots[{i}].ceiling_price_fen", "above estimated_price_fen")],
                )
        cap = deposit_cap(profile, lot.estimated_price_fen)
        if lot.deposit_fen > cap:
            errors.append(
                field_error(f"lots[{i}].deposit_fen", f"at most {cap} fen for this estimated price")
            )
    if errors:
        rule = profile.rule("deposit_max_permille_of_estimate") or "W-04"
        capped = f", and at most {profile.deposit_cap_fen // 100:,} yuan" if profile.deposit_cap_fen else ""
        priced = "budget" if profile.sector == "procurement" else "estimated price"
        raise RuleViolation(
            rule,
            f"A bid deposit may be at most {profile.deposit_max_permille_of_estimate / 10:g}% of the lot's "
            f"{priced}{capped} ({rule}).",
            errors=errors,
        )


def check_evaluation_rooms(setting: str, lots: int, envelopes: int) -> None:
    """One evaluation room per lot (分包评标) is for a tender of two lots or more, of one envelope: a
    two-envelope tender's committee judges every technical envelope in one room first."""
    if setting == "per_lot" and lots < 2:
        raise ValidationProblem(
            "One evaluation room per lot needs two lots or more.",
            errors=[field_error("evaluation_rooms", "per_lot needs two lots or more")],
        )
    if setting == "per_lot" and envelopes == 2:
        raise ValidationProblem(
            "A two-envelope tender is evaluated in one room: its committee records one technical result "
            "over every lot before the commercial opening.",
            errors=[field_error("evaluation_rooms", "per_lot is for tenders of one envelope")],
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
    profile = participation.procedure(data.sector, data.method)
    await projects.check_for_tender(session, actor.organisation_id, data.project_id, data.sector)
    _check_deposits(profile, data.lots)
    participation.check_terms(profile, data.evaluation_method, data.invited, data.envelopes)
    check_evaluation_rooms(data.evaluation_rooms, len(data.lots), data.envelopes)
    validity = _check_bid_validity(profile, data.bid_validity_days or profile.bid_validity_days)
    documents_from = requested_instant("documents_from", data.documents_from)
    bid_deadline = requested_instant("bid_deadline", data.bid_deadline)
    if bid_deadline <= documents_from:
        raise ValidationProblem(
            "bid_deadline must come after documents_from.",
            errors=[field_error("bid_deadline", "before documents_from")],
        )
    tender = await new_draft(
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
    "max_lots_per_supplier",
    "envelopes",
    "evaluation_rooms",
    "project_id",
)


async def new_draft(
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
        invited_organisations=(
            list(terms.invited_organisations)
            if isinstance(terms, Tender)
            else [str(org) for org in dict.fromkeys(terms.invited)]
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
                ceiling_price_fen=lot.ceiling_price_fen,
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
    review = await last_review(session, tender.id)
    if review is not None and review.status == "pending":
        raise Conflict(
            "The notice is under the centre's review (公告审核); it can be edited once the centre answers.",
            errors=[field_error("review", "pending")],
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
    if "invited" in changes:
        invited = changes.pop("invited")
        participation.check_terms(
            profile_for(tender.sector, tender.method), tender.evaluation_method, invited
        )
        tender.invited_organisations = [str(org) for org in dict.fromkeys(invited)]
    if "evaluation_method" in changes:
        participation.check_terms(profile_for(tender.sector, tender.method), changes["evaluation_method"], [])
    if "bid_validity_days" in changes:
        _check_bid_validity(profile_for(tender.sector, tender.method), changes["bid_validity_days"])
    for name, value in changes.items():
        if isinstance(value, datetime):
            requested_instant(name, value)
        setattr(tender, name, value)
    if tender.bid_deadline <= tender.documents_from:
        raise ValidationProblem(
            "bid_deadline must come after documents_from.",
            errors=[field_error("bid_deadline", "before documents_from")],
        )
    if {"evaluation_rooms", "lots", "envelopes"}.intersection(touched):
        lots = len(await lots_of(session, tender.id))
        check_evaluation_rooms(tender.evaluation_rooms, lots, tender.envelopes)
    await session.flush()
    await accounts.record(session, actor, "tender.update", "tender", tender.id, now, fields=touched)
    return tender


def earliest_deadline_day(cal: WorkingCalendar, profile: ProcedureProfile, documents_from: datetime) -> date:
    """The first day a bid deadline may fall on when documents are first issued at `documents_from` (W-01,
    G-02)."""
    return cal.earliest_after(
        local_date(documents_from), profile.documents_to_deadline_days, profile.deadline_in_working_days
    )


async def issue_documents(
    session: AsyncSession, tender: Tender, actor: Principal | None, now: datetime
) -> None:
    tender.documents_issued_at = now
    await move(session, tender, Action.ISSUE_DOCUMENTS, actor, now)


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
    await move(session, tender, Action.CANCEL, actor, now, reason=reason)
    review = await last_review(session, tender.id)
    if review is not None and review.status == "pending":  # nothing is left for the centre to review
        review.status, review.decided_at = "withdrawn", now
    await settle_all_lots(session, tender, "tender_terminated", now)
    if was_public:
        await publish_notice(
            session, tender, "termination", f"{tender.title} 终止公告", {"reason": reason}, now
        )
        await notify_holders(
            session, tender, "tender.cancelled", f"{tender.code} was terminated: {reason}", now
        )
    return tender


def days_before_deadline(tender: Tender, now: datetime) -> int:
    return (local_date(tender.bid_deadline) - local_date(now)).days


def same_time_on(day: date, instant: datetime) -> datetime:
    local = instant.astimezone(SHANGHAI)
    return datetime.combine(day, time(local.hour, local.minute, local.second), tzinfo=SHANGHAI).astimezone(
        instant.tzinfo
    )


async def fail_tender(
    session: AsyncSession, tender: Tender, actor: Principal | None, rule: str, reason: str, now: datetime
) -> None:
    """The tender fails (流标, 废标) under `rule` and the failure notice is published; deposits still held go
    back with interest (T-END, G-04-end)."""
    tender.outcome_reason = reason
    tender.closed_at = now
    await move(session, tender, Action.FAIL, actor, now, rule=rule)
    await publish_notice(
        session,
        tender,
        "failure",
        f"{tender.title} 流标公告",
        {"reason": tender.outcome_reason, "rule": rule},
        now,
    )
    await settle_all_lots(session, tender, "tender_failed", now)


async def settle_all_lots(session: AsyncSession, tender: Tender, event: str, now: datetime) -> None:
    cal = await working_calendar(session)
    rule = profile_for(tender.sector, tender.method).end_refund_rule
    for lot in await lots_of(session, tender.id):
        if lot.status != "contracted":
            await refunds.on_lot_settled(session, lot.id, rule, event, local_date(now), cal, now)


def bid_valid_through(tender: Tender) -> date:
    """The last day of the bid validity period (投标有效期), counted from the day after the deadline (P-01):
    a guarantee given as the deposit must stay in force through it (条例 26)."""
    return local_date(tender.bid_deadline) + timedelta(days=tender.bid_validity_days)


def shamir_of(tender: Tender) -> int:
    """The Shamir threshold T of the tender's stanzas (fixed at publication)."""
    return tender.custody_shamir_threshold or tender.custody_threshold
