"""The legal due days of a trade's open steps, with their supervision lights (电子监察 红黄灯, S-01).

Each step a person must take in time — the centre's review of a submitted notice (公告审核), the purchaser's decision on the report (87号令 68), each contract
(W-13, G-11), each answer to an objection or challenge (W-03, W-12, G-12, G-14), each decision on a
complaint (W-17, G-12) — shows its due day, the rule that sets it, and green, yellow (one working day left
by default) or red (missed). The steps the platform takes itself (issuing documents, closing bids, the
opening) run on the chronograph and have no light.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from rules.calendar import WorkingCalendar, day_ending_at, local_date
from rules.lights import Light, light
from rules.profiles import ProcedureProfile, profile_for
from trading.lifecycle import TenderStatus
from trading.models import Award, Complaint, Contract, NoticeReview, Objection, Tender

# Which rule sets the answer's due day of an objection, by subject, where the procedure has no challenges.
_WORKS_OBJECTION_RULE = {"documents": "W-03", "candidates": "W-12"}


@dataclass(frozen=True)
class Deadline:
    """One open step of a trade: what is due, by whom, until when, under which rule, and its light."""

    tender: Tender
    step: str  # review | decision | contract | answer | complaint_decision
    subject_id: uuid.UUID | None
    what: str
    by: str  # who must act: the centre, the agency (purchaser) or the supervising authority
    due: date
    rule: str | None
    light: Light


_ORDER = {Light.RED: 0, Light.YELLOW: 1, Light.GREEN: 2}


def _urgency(d: Deadline) -> tuple[int, date, str]:
    """Red first, then yellow, then green; the earliest due first; then by trade."""
    return (_ORDER[d.light], d.due, d.tender.code)


def _objection_rule(profile: ProcedureProfile, subject: str) -> str | None:
    if subject == "single_source":
        return profile.rule("announcement_working_days")
    if profile.challenge_answer_working_days is not None:
        return profile.rule("challenge_answer_working_days")
    return _WORKS_OBJECTION_RULE.get(subject)


async def trade_deadlines(
    session: AsyncSession, tender: Tender, cal: WorkingCalendar, today: date, *, yellow_working_days: int = 1
) -> list[Deadline]:
    """The open steps of `tender` with their due days and lights on `today`, the most urgent first."""
    profile = profile_for(tender.sector, tender.method)
    out: list[Deadline] = []

    def add(step: str, subject: uuid.UUID | None, what: str, by: str, due: date, rule: str | None) -> None:
        shown = light(due, today, cal, False, yellow_working_days=yellow_working_days)
        out.append(Deadline(tender, step, subject, what, by, due, rule, shown))

    for review in await session.scalars(
        select(NoticeReview).where(NoticeReview.tender_id == tender.id, NoticeReview.status == "pending")
    ):
        rule = profile.rule("notice_review_working_days")
        add(
            "review",
            review.id,
            "the centre's review of the tender notice (公告审核)",
            "centre",
            review.due_on,
            rule,
        )
    if (
        tender.status == TenderStatus.DECISION
        and tender.report_at is not None
        and profile.award_decision_working_days is not None
    ):
        due = cal.add_working_days(local_date(tender.report_at), profile.award_decision_working_days)
        add("decision", None, "the purchaser names the winner on the report (87号令 68)", "agency", due, None)
    if tender.status == TenderStatus.AWARDED:
        pending = await session.execute(
            select(Award)
            .outerjoin(Contract, Contract.award_id == Award.id)
            .where(Award.tender_id == tender.id, Award.status == "active", Contract.id.is_(None))
            .order_by(Award.contract_due)
        )
        for award in pending.scalars():
            rule = profile.rule("contract_within_days")
            add(
                "contract",
                award.id,
                "the contract of an awarded lot is signed",
                "agency",
                award.contract_due,
                rule,
            )
    for objection in await session.scalars(
        select(Objection)
        .where(Objection.tender_id == tender.id, Objection.answered_at.is_(None))
        .order_by(Objection.answer_due)
    ):
        what = f"the answer to an objection to the {objection.subject.replace('_', ' ')}"
        rule = _objection_rule(profile, objection.subject)
        add("answer", objection.id, what, "agency", day_ending_at(objection.answer_due), rule)
    for complaint in await session.scalars(
        select(Complaint)
        .where(Complaint.tender_id == tender.id, Complaint.decided_at.is_(None))
        .order_by(Complaint.decision_due)
    ):
        rule = profile.rule("complaint_decision_working_days")
        what = f"the decision on a complaint about the {complaint.subject}"
        add("complaint_decision", complaint.id, what, "supervisor", complaint.decision_due, rule)
    return sorted(out, key=_urgency)


async def live_deadlines(
    session: AsyncSession, cal: WorkingCalendar, today: date, wanted: Light | None = None
) -> list[Deadline]:
    """Every open step of every trade, the most urgent first; only those showing `wanted` when given."""
    with_open_steps = (
        select(Tender)
        .where(
            or_(
                Tender.status.in_((TenderStatus.DECISION.value, TenderStatus.AWARDED.value)),
                Tender.id.in_(select(Objection.tender_id).where(Objection.answered_at.is_(None))),
                Tender.id.in_(select(Complaint.tender_id).where(Complaint.decided_at.is_(None))),
                Tender.id.in_(select(NoticeReview.tender_id).where(NoticeReview.status == "pending")),
            )
        )
        .order_by(Tender.code)
    )
    out: list[Deadline] = []
    for tender in await session.scalars(with_open_steps):
        out.extend(await trade_deadlines(session, tender, cal, today))
    if wanted is not None:
        out = [d for d in out if d.light is wanted]
    return sorted(out, key=_urgency)
