"""Notice review (公告审核): a tender notice reaches the public board only once the trading centre approves
it. The agency submits its draft (every publishing check runs then, so a notice that could not be
published is refused at once); the centre approves — the tender is published at that instant, every check
run again then — or refuses with reasons, and the tender stays a draft the agency may fix and submit again.
The centre answers within the profile's `notice_review_working_days` of the submission; the step shows
its supervision light (S-01) among the trade's deadlines. Nothing under review is public: the tender is a
draft until the approval. An open framework's call (征集公告) is reviewed the same way, with its own checks,
and the agreement is in force from the approval."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from rules.calendar import local_date
from rules.profiles import profile_for
from rules.schedule import working_calendar
from storage.problems import Conflict, PreconditionFailed, ValidationProblem, field_error
from trading import frameworks_open, publication, schemas
from trading.models import NoticeReview, Tender
from trading.tenders import last_review, load_tender, notify, tender_for_agency


async def submit(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, if_match: int | None, now: datetime
) -> Tender:
    """Submit the draft's notice for the centre's review, once every publishing check passes at `now`;
    one submission is pending at a time. The tender stays a draft, seen by nobody else, until approved."""
    tender = await tender_for_agency(session, actor, tender_id)
    if if_match is not None and if_match != tender.version:
        raise PreconditionFailed(
            f"The tender is at version {tender.version}, not {if_match}; reload it and try again.",
            current_version=tender.version,
        )
    last = await last_review(session, tender.id)
    if last is not None and last.status == "pending":
        raise Conflict(
            "The notice is already under the centre's review.", errors=[field_error("review", "pending")]
        )
    call = await frameworks_open.draft_call_of(session, tender)
    if call is not None:
        await frameworks_open.check_call(session, tender, call, now)
    else:
        await publication.check_publishable(session, tender, now)
    profile = profile_for(tender.sector, tender.method, tender.envelopes)
    cal = await working_calendar(session)
    review = NoticeReview(
        tender_id=tender.id,
        number=last.number + 1 if last is not None else 1,
        status="pending",
        submitted_at=now,
        due_on=cal.add_working_days(local_date(now), profile.notice_review_working_days),
        submitted_by=actor.user_id,
    )
    session.add(review)
    await session.flush()
    await accounts.record(session, actor, "tender.submit_notice", "tender", tender.id, now, review=review.id)
    return tender


async def decide(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: schemas.ReviewDecision, now: datetime
) -> Tender:
    """The centre approves the pending notice — the tender is published now, every check run again at this
    instant — or refuses it with reasons, and the agency may fix the draft and submit it again."""
    tender = await load_tender(session, tender_id, lock=True)
    review = await last_review(session, tender.id)
    if review is None or review.status != "pending":
        raise Conflict("No notice of this tender awaits the centre's review.", status_now=tender.status)
    if data.decision == "refused" and not data.reasons:
        raise ValidationProblem(
            "Give the reasons for refusing the notice.", errors=[field_error("reasons", "required")]
        )
    if data.decision == "approved":
        call = await frameworks_open.draft_call_of(session, tender)
        if call is not None:
            await frameworks_open.put_in_force(session, tender, call, actor, now)
        else:
            await publication.publish(session, tender, actor, now)
        message = f"{tender.code}: the centre approved the notice; it is published."
    else:
        message = f"{tender.code}: the centre refused the notice: {data.reasons}"
    review.status = data.decision
    review.reasons = data.reasons
    review.decided_at = now
    review.decided_by = actor.user_id
    await accounts.record(
        session, actor, f"notice_review.{data.decision}", "tender", tender.id, now, reasons=data.reasons
    )
    await notify(session, tender.agency_organisation_id, tender.id, f"review.{data.decision}", message, now)
    return tender


async def pending(session: AsyncSession) -> list[NoticeReview]:
    """The notices awaiting the centre's review, the longest waiting first."""
    return list(
        await session.scalars(
            select(NoticeReview)
            .where(NoticeReview.status == "pending")
            .order_by(NoticeReview.submitted_at, NoticeReview.id)
        )
    )
