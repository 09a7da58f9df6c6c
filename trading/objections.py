"""Objections (异议) to the documents (W-03), the opening, or the candidates (W-12), answered by the tenderer;
in procurement, challenges (质疑, G-12) to the documents, the opening or the result, answered by the
purchaser; and complaints (投诉) to the supervising authority (W-17, G-12), decided within its period."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from rules.calendar import (
    WorkingCalendar,
    day_ending_at,
    end_of_day,
    local_date,
)
from rules.profiles import (
    ProcedureProfile,
    profile_for,
)
from rules.schedule import working_calendar
from storage.problems import (
    Conflict,
    Forbidden,
    NotFound,
    RuleViolation,
    ValidationProblem,
    field_error,
)
from trading import engine, schemas
from trading.lifecycle import (
    TenderStatus,
)
from trading.models import (
    Bid,
    Complaint,
    DocumentAccess,
    Objection,
    Tender,
)
from trading.tenders import (
    SEALED_STATUSES,
    days_before_deadline,
    load_tender,
    next_check_of,
    oversees,
    tender_for_agency,
    visible_tender,
)


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
    tender = await load_tender(session, tender_id, lock=True)
    if tender.status == TenderStatus.DRAFT:
        raise NotFound("No such tender.")
    profile = profile_for(tender.sector, tender.method)
    cal = await working_calendar(session)
    if data.subject == "single_source":
        return await _object_to_single_source(session, actor, tender, profile, cal, data, now)
    await _holder_or_bidder(session, actor, tender)
    if profile.challenge_within_working_days is not None:
        return await _file_challenge(session, actor, tender, profile, cal, data, now)
    if data.subject == "result":
        raise ValidationProblem(
            "A works tender takes objections to the candidates during their publicity (W-12), not to the result.",
            errors=[field_error("subject", "documents, opening or candidates")],
        )
    if data.subject == "documents":
        if tender.status not in (TenderStatus.PUBLISHED, TenderStatus.TENDERING) or (
            days_before_deadline(tender, now) < profile.objection_before_deadline_days
        ):
            last = local_date(tender.bid_deadline) - timedelta(days=profile.objection_before_deadline_days)
            raise RuleViolation(
                "W-03",
                f"Objections to the tender documents must be filed at least {profile.objection_before_deadline_days} "
                f"days before the bid deadline, that is by {last.isoformat()}.",
                last_day=last.isoformat(),
            )
    elif data.subject == "opening" and tender.status not in (
        TenderStatus.OPENING,
        TenderStatus.COMMERCIAL_OPENING,
    ):
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
    objection = await _new_objection(session, actor, tender, data, due, now)
    if data.subject == "documents":
        tender.paused_reason = "An objection to the documents awaits the tenderer's answer (W-03)."
    if data.subject == "opening":
        await load_tender(session, tender.id, lock=True)  # opening lines are numbered under the tender's lock
        org = await accounts.get_organisation(session, actor.organisation_id)
        await engine.bids().opening_event(
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


async def _new_objection(
    session: AsyncSession,
    actor: Principal,
    tender: Tender,
    data: schemas.ObjectionCreate,
    answer_due: datetime,
    now: datetime,
) -> Objection:
    objection = Objection(
        tender_id=tender.id,
        organisation_id=actor.organisation_id,
        subject=data.subject,
        text=data.text,
        filed_at=now,
        answer_due=answer_due,
    )
    session.add(objection)
    await session.flush()
    return objection


async def _object_to_single_source(
    session: AsyncSession,
    actor: Principal,
    tender: Tender,
    profile: ProcedureProfile,
    cal: WorkingCalendar,
    data: schemas.ObjectionCreate,
    now: datetime,
) -> Objection:
    """Any supplier objects to a single source while it is announced (G-14); the documents wait until the
    purchaser has answered every such objection."""
    rule = profile.rule("announcement_working_days") or "G-14"
    if profile.announcement_working_days is None:
        raise ValidationProblem(
            f"{profile.title} is not a single source.", errors=[field_error("subject", "not a single source")]
        )
    if tender.status != TenderStatus.PUBLISHED or now >= tender.documents_from:
        raise RuleViolation(
            rule,
            "Objections to a single source are filed while it is announced, before its documents go out "
            f"({tender.documents_from.isoformat()}).",
            documents_from=tender.documents_from.isoformat(),
        )
    answer_days = profile.challenge_answer_working_days or profile.announcement_working_days
    due = end_of_day(cal.add_working_days(local_date(now), answer_days))
    objection = await _new_objection(session, actor, tender, data, due, now)
    tender.paused_reason = "An objection to the single source awaits the purchaser's answer (G-14)."
    await accounts.record(
        session, actor, "objection.file", "objection", objection.id, now, subject=data.subject, rule=rule
    )
    return objection


async def _file_challenge(
    session: AsyncSession,
    actor: Principal,
    tender: Tender,
    profile: ProcedureProfile,
    cal: WorkingCalendar,
    data: schemas.ObjectionCreate,
    now: datetime,
) -> Objection:
    """A supplier challenges (质疑, G-12) the documents, the opening or the result within 7 working days of
    when it knew: the documents from the day it obtained them, the opening from the opening, the result from
    the result notice. Only a supplier that bid may challenge the opening or the result. The purchaser
    answers within 7 working days; a challenge to the result stops the contract until it is answered
    (实施条例 54)."""
    assert profile.challenge_within_working_days is not None
    assert profile.challenge_answer_working_days is not None
    rule = profile.rule("challenge_within_working_days") or "G-12"
    if data.subject == "candidates":
        raise ValidationProblem(
            "A procurement publishes no candidates: challenge the documents, the opening or the result.",
            errors=[field_error("subject", "documents, opening or result")],
        )
    if data.subject == "documents":
        obtained = await session.scalar(
            select(DocumentAccess.obtained_at).where(
                DocumentAccess.tender_id == tender.id, DocumentAccess.organisation_id == actor.organisation_id
            )
        )
        knew = obtained
    else:
        took_part = await session.scalar(
            select(Bid.id).where(
                Bid.tender_id == tender.id,
                Bid.organisation_id == actor.organisation_id,
                Bid.status != "withdrawn",
            )
        )
        if took_part is None:
            raise RuleViolation(
                rule,
                f"Only a supplier that took part may challenge the {data.subject} (质疑供应商须参与采购活动).",
                errors=[field_error("subject", "no bid of yours in this procurement")],
            )
        knew = tender.opened_at if data.subject == "opening" else tender.awarded_at
    if knew is None:
        raise Conflict(f"There is no {data.subject} to challenge yet; the procurement is {tender.status}.")
    last = cal.add_working_days(local_date(knew), profile.challenge_within_working_days)
    if local_date(now) > last:
        raise RuleViolation(
            rule,
            f"A challenge to the {data.subject} is filed within {profile.challenge_within_working_days} working "
            f"days of {local_date(knew).isoformat()}, that is by {last.isoformat()}.",
            last_day=last.isoformat(),
        )
    due = end_of_day(cal.add_working_days(local_date(now), profile.challenge_answer_working_days))
    objection = await _new_objection(session, actor, tender, data, due, now)
    await accounts.record(
        session,
        actor,
        "challenge.file",
        "objection",
        objection.id,
        now,
        subject=data.subject,
        rule=rule,
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
        await load_tender(session, tender.id, lock=True)
        await engine.bids().opening_event(
            session,
            tender.id,
            "objection_answered",
            {"objection": str(objection.id), "answer": data.answer},
            now,
        )
    await accounts.record(
        session, actor, "objection.answer", "objection", objection.id, now, late=now > objection.answer_due
    )
    await resume_if_clear(session, tender, now)
    return objection


async def pending_objections(session: AsyncSession, tender: Tender, subject: str) -> int:
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


async def resume_if_clear(session: AsyncSession, tender: Tender, now: datetime) -> None:
    if tender.paused_reason and not (
        await pending_objections(session, tender, "documents")
        or await pending_objections(session, tender, "single_source")
    ):
        tender.paused_reason = None
        tender.next_check = next_check_of(tender)


async def list_objections(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID
) -> list[tuple[Objection, bool]]:
    """Objections on a tender: all of them for its agency, the centre, supervisors and auditors, a bidder's
    own for a bidder; each with whether the caller may see who filed it. Before the deadline only the
    objector itself may: an objector is a holder of the documents (W-20); the agency answers the objection
    without knowing whose it is, and the answer reaches every holder as a clarification."""
    tender = await visible_tender(session, actor, tender_id)
    query = select(Objection).where(Objection.tender_id == tender.id).order_by(Objection.filed_at)
    if not oversees(actor, tender):
        query = query.where(Objection.organisation_id == actor.organisation_id)
    sealed = tender.status in SEALED_STATUSES
    return [
        (o, not sealed or o.organisation_id == actor.organisation_id) for o in await session.scalars(query)
    ]


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
    tender = await load_tender(session, tender_id)
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
    if profile.complaint_after_answer_working_days is not None:
        last_day = await _complaint_last_day(session, actor, tender, profile, cal, data.subject, now)
    else:
        last_day = cal.period_end(data.known_on, profile.complaint_within_days)
    if today > last_day:
        raise RuleViolation(
            profile.rule("complaint_within_days") or "W-17",
            f"A complaint must be filed within {_complaint_period(profile)}; the last day was "
            f"{last_day.isoformat()}.",
            last_day=last_day.isoformat(),
        )
    if data.subject in OBJECTION_FIRST and profile.complaint_after_answer_working_days is None:
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


def _complaint_period(profile: ProcedureProfile) -> str:
    if profile.complaint_after_answer_working_days is not None:
        return (
            f"{profile.complaint_after_answer_working_days} working days of the challenge's answer, or of the "
            "day the answer was due"
        )
    return f"{profile.complaint_within_days} days of when you knew"


# A procurement complaint's subject and the challenge it follows (采购法 55).
CHALLENGED_AS = {"documents": "documents", "opening": "opening", "evaluation": "result", "award": "result"}


async def _complaint_last_day(
    session: AsyncSession,
    actor: Principal,
    tender: Tender,
    profile: ProcedureProfile,
    cal: WorkingCalendar,
    subject: str,
    now: datetime,
) -> date:
    """Procurement (G-12): a complaint follows the complainant's own challenge on the subject, once it is
    answered or its answer is overdue, within 15 working days of the answer (or of the answer's due day)."""
    assert profile.complaint_after_answer_working_days is not None
    rule = profile.rule("complaint_after_answer_working_days") or "G-12"
    challenged = CHALLENGED_AS.get(subject)
    query = select(Objection).where(
        Objection.tender_id == tender.id, Objection.organisation_id == actor.organisation_id
    )
    if challenged is not None:
        query = query.where(Objection.subject == challenged)
    challenge = await session.scalar(query.order_by(Objection.filed_at.desc()).limit(1))
    if challenge is None:
        raise RuleViolation(
            rule,
            "A procurement complaint follows a challenge (质疑) to the purchaser on the same matter "
            "(采购法 55); file the challenge first.",
            errors=[field_error("subject", f"no challenge of yours on the {challenged or 'procurement'}")],
        )
    if challenge.answered_at is None and now <= challenge.answer_due:
        raise RuleViolation(
            rule,
            "The challenge is not answered yet; a complaint may follow its answer, or the day after the "
            f"answer was due ({day_ending_at(challenge.answer_due).isoformat()}).",
            answer_due=challenge.answer_due.isoformat(),
        )
    answered = (
        local_date(challenge.answered_at)
        if challenge.answered_at is not None
        else day_ending_at(challenge.answer_due)
    )
    return cal.add_working_days(answered, profile.complaint_after_answer_working_days)


async def list_complaints(session: AsyncSession, actor: Principal, tender_id: uuid.UUID) -> list[Complaint]:
    """Complaints on a tender: all for the supervisors, the centre and its agency; a bidder's own otherwise."""
    tender = await visible_tender(session, actor, tender_id)
    query = select(Complaint).where(Complaint.tender_id == tender.id).order_by(Complaint.filed_at)
    if not oversees(actor, tender):
        query = query.where(Complaint.organisation_id == actor.organisation_id)
    return list(await session.scalars(query))
