"""The committee's work in the room: the qualification and compliance review (a majority fails a bid; a
bid the platform rejected under W-19 fails without a vote), the score sheets sealed from the other members
until submitted, the chair's reopening, abnormal scores (G-10) and their justification, and the room's
move from one phase to the next.

Services flush but never commit: the request or job that calls them owns the transaction.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import accounts.service as accounts
from accounts.security import Principal
from bidding import submission
from evaluation import rooms, schemas, schemes, scoring
from evaluation.models import Draw, Member, QualificationReview, Room, ScoreSheet
from storage.problems import Conflict, RuleViolation, ValidationProblem, field_error
from trading import tenders
from trading.models import Bid


async def evaluable(session: AsyncSession, room: Room) -> dict[uuid.UUID, list[Bid]]:
    """The opened, valid bids of each open lot the room evaluates (its own lot alone in a lot's room)."""
    lots = [lot for lot in await tenders.lots_of(session, room.tender_id) if lot.status == "open"]
    lots = [lot for lot in lots if room.lot_id in (None, lot.id)]
    bids = await submission.evaluable_bids(session, room.tender_id)
    return {lot.id: [b for b in bids if b.lot_id == lot.id] for lot in lots}


def not_this_lot(room: Room) -> ValidationProblem:
    """The refusal of a lot the room does not evaluate."""
    if room.lot_id is not None:
        return ValidationProblem(
            "This room evaluates one lot alone; another lot is evaluated in its own room.",
            errors=[field_error("lot_id", f"not this room's lot ({room.lot_id})")],
        )
    return ValidationProblem(
        "Not an open lot of this tender.", errors=[field_error("lot_id", "not an open lot")]
    )


async def review(
    session: AsyncSession,
    actor: Principal,
    room_id: uuid.UUID,
    lot_id: uuid.UUID,
    votes: list[schemas.VoteIn],
    now: datetime,
) -> QualificationReview:
    """A member's qualification and compliance review of a lot: pass or fail per criterion per bid, a
    reason for every fail. Submitted once."""
    room, member = await rooms.seat_for(session, actor, room_id, now)
    if room.phase != "qualification":
        raise Conflict(f"The qualification review is over; the room is at {room.phase}.")
    tender = await tenders.tender_by_id(session, room.tender_id)
    scheme = await schemes.scheme_of(session, tender)
    lots = await evaluable(session, room)
    if lot_id not in lots:
        raise not_this_lot(room)
    done = await session.scalar(
        select(QualificationReview).where(
            QualificationReview.member_id == member.id, QualificationReview.lot_id == lot_id
        )
    )
    if done is not None:
        raise Conflict("You have already submitted your review of this lot.")
    # a bid the platform rejected (W-19) is not the committee's to review: no member can pass it
    rejected = {b.id: b.rejection_rule for b in lots[lot_id] if b.rejection_rule is not None}
    bids = {b.id for b in lots[lot_id]} - set(rejected)
    codes = {code for code, _title in scheme.qualification}
    seen: set[tuple[uuid.UUID, str]] = set()
    for i, v in enumerate(votes):
        if v.bid_id in rejected:
            raise RuleViolation(
                rejected[v.bid_id],
                "The platform established that this bid does not respond to the documents (its deposit was "
                "not in place at the bid deadline, or its price exceeds the ceiling or the budget): it is "
                "rejected and no member can pass it. Leave it out of the review.",
                errors=[
                    field_error(f"votes[{i}].bid_id", f"rejected by the platform ({rejected[v.bid_id]})")
                ],
            )
        if v.bid_id not in bids:
            raise ValidationProblem(
                "Not a bid of this lot.", errors=[field_error(f"votes[{i}].bid_id", "not a bid of the lot")]
            )
        if v.criterion not in codes:
            raise ValidationProblem(
                "Not a qualification criterion of the scheme.",
                errors=[field_error(f"votes[{i}].criterion", "unknown criterion")],
            )
        if (v.bid_id, v.criterion) in seen:
            raise ValidationProblem("A vote is given twice.", errors=[field_error(f"votes[{i}]", "repeated")])
        if not v.passed and not (v.reason or "").strip():
            raise ValidationProblem(
                "A failed criterion needs its reason.",
                errors=[field_error(f"votes[{i}].reason", "required for a fail")],
            )
        seen.add((v.bid_id, v.criterion))
    missing = len(bids) * len(codes) - len(seen)
    if missing:
        raise ValidationProblem(
            f"Review every bid on every criterion; {missing} votes are missing.",
            errors=[field_error("votes", "incomplete")],
        )
    row = QualificationReview(
        room_id=room.id,
        member_id=member.id,
        lot_id=lot_id,
        votes=[
            {"bid_id": str(v.bid_id), "criterion": v.criterion, "passed": v.passed, "reason": v.reason}
            for v in votes
        ],
        submitted_at=now,
    )
    session.add(row)
    await session.flush()
    await rooms.log_event(session, room, "review.submitted", now, seat=member.seat, lot_id=str(lot_id))
    await accounts.record(session, actor, "room.review", "room", room.id, now, lot_id=str(lot_id))
    await advance(session, room, now)
    return row


@dataclass(frozen=True)
class Rejection:
    """Why a bid failed the qualification review: a criterion a majority of the committee failed, or a fact
    the platform established (`by="platform"`; `rule` W-19 with its `evidence`), which no member can
    overturn."""

    criterion: str
    reasons: tuple[str, ...]
    fail_votes: int
    members: int
    by: str = "committee"
    rule: str | None = None
    evidence: dict[str, Any] | None = None


def platform_rejection(bid: Bid, members: int) -> Rejection | None:
    """The rejection the platform established for `bid` before the room opened (W-19: no deposit at the
    bid deadline; a declared price above the ceiling price or the budget, named by its field), as the room
    and the report show it."""
    if bid.rejection_rule is None:
        return None
    found = bid.rejection or {}
    return Rejection(
        # the field a price exceeds (ceiling_price_fen, estimated_price_fen) is the ground; else the rule
        str(found.get("field") or bid.rejection_rule),
        (str(found.get("detail") or found.get("reason") or bid.rejection_rule),),
        members,
        members,
        by="platform",
        rule=bid.rejection_rule,
        evidence=found.get("evidence"),
    )


async def qualification(
    session: AsyncSession, room: Room
) -> dict[uuid.UUID, dict[uuid.UUID, list[Rejection]]]:
    """Per lot, per bid: the criteria a majority failed (a bid fails on any; W-10's committee decides by
    majority). A bid with no rejection passed."""
    members = len(rooms.active(await rooms.members_of(session, room)))
    out: dict[uuid.UUID, dict[uuid.UUID, list[Rejection]]] = {}
    reviews = (
        await session.scalars(
            select(QualificationReview)
            .join(Member, Member.id == QualificationReview.member_id)
            .where(QualificationReview.room_id == room.id)
            .order_by(Member.seat)  # the reasons in seat order, the same every time the report is built
        )
    ).all()
    tally: dict[tuple[uuid.UUID, str, str], list[str]] = defaultdict(list)
    for r in reviews:
        for v in r.votes:
            if not v["passed"]:
                tally[(r.lot_id, v["bid_id"], v["criterion"])].append(v["reason"])
    for lot_id, bids in (await evaluable(session, room)).items():
        out[lot_id] = {}
        for bid in bids:
            established = platform_rejection(bid, members)
            out[lot_id][bid.id] = [] if established is None else [established]
            out[lot_id][bid.id] += [
                Rejection(code, tuple(reasons), len(reasons), members)
                for (lid, bid_id, code), reasons in sorted(tally.items())
                if lid == lot_id and bid_id == str(bid.id) and len(reasons) * 2 > members
            ]
            if not bid.declared_price_fen or bid.declared_price_fen <= 0:
                # A bid without a positive price cannot be priced against the others (G-06); it is void.
                out[lot_id][bid.id].append(
                    Rejection(
                        "price",
                        ("the declared price is not a positive amount",),
                        members,
                        members,
                        "platform",
                    )
                )
    return out


async def advance(session: AsyncSession, room: Room, now: datetime) -> None:
    """Move the room to the next phase once every seat has done its part of this one. While a recused seat
    is being redrawn the committee is short (W-10) and waits for its replacement."""
    members = rooms.active(await rooms.members_of(session, room))
    row = await session.get(Draw, room.draw_id)
    assert row is not None
    if len(members) < row.committee_size:
        return
    lots = await evaluable(session, room)
    if room.phase == "qualification":
        reviewed = Counter(
            r.member_id
            for r in (
                await session.scalars(
                    select(QualificationReview).where(QualificationReview.room_id == room.id)
                )
            ).all()
        )
        if all(reviewed[m.id] >= len(lots) for m in members):
            tender = await tenders.tender_by_id(session, room.tender_id)
            scheme = await schemes.scheme_of(session, tender)
            room.phase = "scoring" if scheme.method == "comprehensive" else "report"
            await rooms.log_event(session, room, "phase", now, phase=room.phase)
        return
    if room.phase in ("scoring", "report"):
        ready = await _scoring_complete(session, room, members, lots)
        phase = "report" if ready else "scoring"
        if phase != room.phase:
            room.phase = phase
            await rooms.log_event(session, room, "phase", now, phase=phase)


async def _scoring_complete(
    session: AsyncSession, room: Room, members: list[Member], lots: dict[uuid.UUID, list[Bid]]
) -> bool:
    tender = await tenders.tender_by_id(session, room.tender_id)
    scheme = await schemes.scheme_of(session, tender)
    if scheme.method != "comprehensive":
        return True
    sheets = (await session.scalars(select(ScoreSheet).where(ScoreSheet.room_id == room.id))).all()
    by_lot: dict[uuid.UUID, list[ScoreSheet]] = defaultdict(list)
    for sheet in sheets:
        by_lot[sheet.lot_id].append(sheet)
    ids = {m.id for m in members}
    for lot_id in lots:
        submitted = [s for s in by_lot[lot_id] if s.submitted_at is not None and s.member_id in ids]
        if len(submitted) < len(members):
            return False
        if _unjustified(scheme, submitted):
            return False
    return True


def _unjustified(scheme: scoring.Scheme, sheets: list[ScoreSheet]) -> list[scoring.Abnormal]:
    flagged = scoring.abnormal_scores(scheme, {str(s.member_id): s.scores for s in sheets})
    justified = {(str(s.member_id), bid) for s in sheets for bid in s.justifications}
    return [a for a in flagged if (a.member, a.bid_id) not in justified]


async def _qualified(session: AsyncSession, room: Room, lot_id: uuid.UUID) -> list[Bid]:
    outcome = (await qualification(session, room)).get(lot_id, {})
    bids = (await evaluable(session, room)).get(lot_id, [])
    return [b for b in bids if not outcome.get(b.id)]


async def submit_sheet(
    session: AsyncSession,
    actor: Principal,
    room_id: uuid.UUID,
    lot_id: uuid.UUID,
    scores: dict[str, dict[str, int]],
    now: datetime,
) -> ScoreSheet:
    """A member's scores of a lot, alone: sealed from the others until submitted, and submitted once unless
    the chair reopens the sheet."""
    room, member = await rooms.seat_for(session, actor, room_id, now)
    if room.phase not in ("scoring", "report"):
        raise Conflict(f"Scoring follows the qualification review; the room is at {room.phase}.")
    tender = await tenders.tender_by_id(session, room.tender_id)
    scheme = await schemes.scheme_of(session, tender)
    if scheme.method != "comprehensive":
        raise Conflict(f"{scheme.method} ranks by price; there is nothing to score by hand.")
    lots = await evaluable(session, room)
    if lot_id not in lots:
        raise not_this_lot(room)
    sheet = await session.scalar(
        select(ScoreSheet).where(ScoreSheet.member_id == member.id, ScoreSheet.lot_id == lot_id)
    )
    if sheet is not None and sheet.submitted_at is not None:
        raise Conflict("Your sheet is submitted; the chair must reopen it before you change it.")
    qualified = [str(b.id) for b in await _qualified(session, room, lot_id)]
    failed = {str(b.id) for b in lots[lot_id]} - set(qualified)
    rejected = {str(b.id): b.rejection_rule for b in lots[lot_id] if b.rejection_rule is not None}
    for bid_id in scores:
        if bid_id in rejected:
            raise RuleViolation(
                str(rejected[bid_id]),
                "The platform rejected that bid (no deposit at the bid deadline, or a price above the ceiling "
                "or the budget); it is never scored.",
                errors=[field_error(f"scores[{bid_id}]", f"rejected by the platform ({rejected[bid_id]})")],
            )
        if bid_id in failed:
            raise RuleViolation(
                "W-10",
                "That bid failed the qualification review and is not scored.",
                errors=[field_error(f"scores[{bid_id}]", "failed qualification")],
            )
    try:
        scoring.check_sheet(scheme, qualified, scores)
    except scoring.ScoreError as exc:
        raise ValidationProblem(str(exc), errors=[field_error(exc.path, str(exc))]) from exc
    if sheet is None:
        sheet = ScoreSheet(
            room_id=room.id, member_id=member.id, lot_id=lot_id, scores={}, justifications={}, submissions=0
        )
        session.add(sheet)
    sheet.scores = scores
    sheet.justifications = {}
    sheet.submitted_at = now
    sheet.submissions += 1
    await session.flush()
    await rooms.log_event(session, room, "sheet.submitted", now, seat=member.seat, lot_id=str(lot_id))
    await accounts.record(
        session, actor, "room.score", "score_sheet", sheet.id, now, submission=sheet.submissions
    )
    await advance(session, room, now)
    return sheet


async def reopen_sheet(
    session: AsyncSession,
    actor: Principal,
    room_id: uuid.UUID,
    lot_id: uuid.UUID,
    seat: int,
    reason: str,
    now: datetime,
) -> ScoreSheet:
    """The chair reopens a member's submitted sheet (to correct an error or an abnormal score), with a reason."""
    room, _chair_member = await rooms.chair_for(session, actor, room_id, now)
    if room.phase not in ("scoring", "report"):
        raise Conflict(f"The room is at {room.phase}; sheets can no longer be reopened.")
    target = next((m for m in rooms.active(await rooms.members_of(session, room)) if m.seat == seat), None)
    if target is None:
        raise ValidationProblem("No such seat.", errors=[field_error("seat", "not a member")])
    sheet = await session.scalar(
        select(ScoreSheet).where(ScoreSheet.member_id == target.id, ScoreSheet.lot_id == lot_id)
    )
    if sheet is None or sheet.submitted_at is None:
        raise Conflict("That sheet is not submitted; there is nothing to reopen.")
    sheet.submitted_at = None
    sheet.reopen_reason = reason
    room.phase = "scoring"
    await rooms.log_event(session, room, "sheet.reopened", now, seat=seat, lot_id=str(lot_id))
    await accounts.record(session, actor, "room.reopen", "score_sheet", sheet.id, now, reason=reason)
    return sheet


async def justify(
    session: AsyncSession,
    actor: Principal,
    room_id: uuid.UUID,
    lot_id: uuid.UUID,
    bid_id: str,
    text: str,
    now: datetime,
) -> ScoreSheet:
    """A member keeps an abnormal score (G-10) with a written justification, before the report is drawn up."""
    room, member = await rooms.seat_for(session, actor, room_id, now)
    if room.phase not in ("scoring", "report"):
        raise Conflict(f"Scores are justified while the sheets are open; the room is at {room.phase}.")
    sheet = await session.scalar(
        select(ScoreSheet).where(ScoreSheet.member_id == member.id, ScoreSheet.lot_id == lot_id)
    )
    if sheet is None or sheet.submitted_at is None:
        raise Conflict("Submit your sheet first.")
    tender = await tenders.tender_by_id(session, room.tender_id)
    scheme = await schemes.scheme_of(session, tender)
    others = (
        await session.scalars(
            select(ScoreSheet).where(
                ScoreSheet.lot_id == lot_id,
                ScoreSheet.room_id == room.id,
                ScoreSheet.submitted_at.is_not(None),
            )
        )
    ).all()
    flagged = {
        a.bid_id
        for a in scoring.abnormal_scores(scheme, {str(s.member_id): s.scores for s in others})
        if a.member == str(member.id)
    }
    if bid_id not in flagged:
        raise ValidationProblem(
            "Your score of that bid is not abnormal; there is nothing to justify.",
            errors=[field_error("bid_id", "not an abnormal score")],
        )
    sheet.justifications = {**sheet.justifications, bid_id: text}
    await session.flush()
    await rooms.log_event(session, room, "score.justified", now, seat=member.seat, lot_id=str(lot_id))
    await accounts.record(session, actor, "room.justify", "score_sheet", sheet.id, now, bid_id=bid_id)
    await advance(session, room, now)
    return sheet


async def sheets_visible(
    session: AsyncSession, room: Room, member: Member | None, lot_id: uuid.UUID
) -> list[tuple[Member, ScoreSheet]]:
    """The sheets the caller may see: a member sees the others' only after submitting their own; watchers
    see the submitted ones."""
    members = {m.id: m for m in await rooms.members_of(session, room)}
    sheets = (
        await session.scalars(
            select(ScoreSheet).where(ScoreSheet.room_id == room.id, ScoreSheet.lot_id == lot_id)
        )
    ).all()
    mine = next((s for s in sheets if member is not None and s.member_id == member.id), None)
    if member is not None and (mine is None or mine.submitted_at is None):
        return [(member, mine)] if mine is not None else []
    return [
        (members[s.member_id], s)
        for s in sheets
        if s.submitted_at is not None or (member and s.member_id == member.id)
    ]


async def abnormal(session: AsyncSession, room: Room, lot_id: uuid.UUID) -> list[dict[str, Any]]:
    """The abnormal scores of a lot (G-10) with their justification, by seat."""
    tender = await tenders.tender_by_id(session, room.tender_id)
    scheme = await schemes.scheme_of(session, tender)
    members = {str(m.id): m for m in await rooms.members_of(session, room)}
    sheets = (
        await session.scalars(
            select(ScoreSheet).where(
                ScoreSheet.room_id == room.id,
                ScoreSheet.lot_id == lot_id,
                ScoreSheet.submitted_at.is_not(None),
            )
        )
    ).all()
    by_member = {str(s.member_id): s for s in sheets}
    out = []
    for a in scoring.abnormal_scores(scheme, {k: s.scores for k, s in by_member.items()}):
        out.append(
            {
                "seat": members[a.member].seat,
                "bid_id": a.bid_id,
                "total_cp": a.total_cp,
                "others_mean_cp": _round(a.others_mean),
                "justification": by_member[a.member].justifications.get(a.bid_id),
                "revised": by_member[a.member].submissions > 1,
            }
        )
    return out


def _round(value: Fraction) -> int:
    return int(value + Fraction(1, 2)) if value >= 0 else -int(-value + Fraction(1, 2))


def rejection_json(r: Rejection, *, with_members: bool = True) -> dict[str, Any]:
    """One rejection as the report (and, without `members`, the room's qualification view) shows it; one
    the platform established says so, and one under a rule names it and carries the platform's evidence."""
    out: dict[str, Any] = {"criterion": r.criterion, "reasons": list(r.reasons), "fail_votes": r.fail_votes}
    if with_members:
        out["members"] = r.members
    if r.by != "committee":
        out["by"] = r.by
    if r.rule is not None:
        out["rule"] = r.rule
        out["evidence"] = r.evidence
    return out
