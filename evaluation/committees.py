"""Asking for a committee (W-10, G-07): the candidates with the wanted specialties (the pool before
avoidance), the parties a draw must avoid (G-08), and the agency's draw request, which fixes and publishes
the digests of the candidates, the exclusions and the eligible pool before any seed exists. The witness,
the seed and the selection follow in `evaluation.selection`. The pool (专家库) itself is `evaluation.pool`.

Services flush but never commit: the request or job that calls them owns the transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import String, func, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

import accounts.service as accounts
from accounts.security import Principal
from evaluation import draw, pool, rooms, schemas
from evaluation.models import (
    Draw,
    Expert,
    ExpertRelationship,
    ExpertSpecialty,
    ExpertUnavailability,
    Invitation,
    Member,
    Room,
    Specialty,
)
from rules.calendar import SHANGHAI, local_date
from rules.profiles import committee_ok, profile_for
from storage.objects import ObjectStore
from storage.problems import (
    Conflict,
    NotFound,
    RuleViolation,
    ValidationProblem,
    field_error,
    requested_instant,
)
from trading import tenders
from trading.lifecycle import TenderStatus
from trading.models import Tender

SERVICE_LOOKBACK_DAYS = 365


@dataclass(frozen=True)
class Parties:
    """Whose employees a draw must avoid (G-08)."""

    bidders: frozenset[str]
    parties: frozenset[str]


async def _parties(session: AsyncSession, tender: Tender) -> Parties:
    agency = await accounts.get_organisation(session, tender.agency_organisation_id)
    bidder_orgs = await tenders.bidder_organisations(session, tender.id)
    codes = []
    for org_id in bidder_orgs:
        codes.append((await accounts.get_organisation(session, org_id)).credit_code)
    parties = {agency.credit_code}
    if tender.tenderer_credit_code:
        parties.add(tender.tenderer_credit_code)
    return Parties(frozenset(codes), frozenset(parties))


_CODE_SEPARATOR = "\n"


def _raw_id(column: Any) -> Any:
    """`column` as the database returns it, not converted to `uuid.UUID` row by row: the draw reads tens of
    thousands of expert ids and only needs them as keys (see `candidates`)."""
    return type_coerce(column, String)


def _id_text(raw: Any) -> str:
    """The canonical lowercase UUID text of an id read with `_raw_id` (SQLite keeps 32 hex digits,
    PostgreSQL a UUID)."""
    if isinstance(raw, str) and len(raw) == 32 and raw.islower():
        return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
    return str(raw) if isinstance(raw, uuid.UUID) else str(uuid.UUID(str(raw)))


async def candidates(
    session: AsyncSession, prefixes: list[str], tender: Tender | None, on: date
) -> list[draw.Candidate]:
    """Every expert with a wanted specialty (the pool before avoidance), as the avoidance rules see them;
    one without an account to answer an invitation or enter a room is marked so (avoided: `no_account`).

    The ids stay as the database returns them while the rows are joined in memory: each is turned into
    its canonical text once, per candidate, instead of into a `uuid.UUID` per row read."""
    wanted = or_(*[ExpertSpecialty.code.startswith(p, autoescape=True) for p in prefixes])
    ids = select(ExpertSpecialty.expert_id).where(wanted).distinct().scalar_subquery()
    # Each expert's codes come back as one row, joined by a line feed, with their count: a pool of tens
    # of thousands reads a row per expert instead of one per code (each row an object the interpreter
    # allocates and its collector walks). A code holding the separator would split into more pieces than
    # the count says; such an expert's codes are read again row by row, exactly as stored.
    joined = (
        select(
            ExpertSpecialty.expert_id.label("expert_id"),
            func.aggregate_strings(ExpertSpecialty.code, _CODE_SEPARATOR).label("codes"),
            func.count().label("n"),
        )
        .where(ExpertSpecialty.expert_id.in_(ids))
        .group_by(ExpertSpecialty.expert_id)
        .subquery()
    )
    experts = (
        await session.execute(
            select(
                _raw_id(Expert.id),
                Expert.status,
                Expert.term_start,
                Expert.term_end,
                Expert.employer_credit_code,
                Expert.user_id.is_not(None),
                joined.c.codes,
                joined.c.n,
            ).join(joined, joined.c.expert_id == Expert.id)
        )
    ).all()
    codes: dict[Any, list[str]] = {}
    split: list[Any] = []
    for raw, *_, joined_codes, n in experts:
        pieces = joined_codes.split(_CODE_SEPARATOR)
        if len(pieces) == n:
            codes[raw] = pieces
        else:
            split.append(raw)
    if split:
        for raw in split:
            codes[raw] = []
        by_row = select(_raw_id(ExpertSpecialty.expert_id), ExpertSpecialty.code).where(
            ExpertSpecialty.expert_id.in_([uuid.UUID(_id_text(raw)) for raw in split])
        )
        for expert_id, code in await session.execute(by_row):
            codes[expert_id].append(code)
    former: dict[Any, list[tuple[str, date | None]]] = defaultdict(list)
    relatives: dict[Any, list[str]] = defaultdict(list)
    relationships = select(
        _raw_id(ExpertRelationship.expert_id),
        ExpertRelationship.kind,
        ExpertRelationship.credit_code,
        ExpertRelationship.end_on,
    ).where(ExpertRelationship.expert_id.in_(ids))
    for expert_id, kind, credit_code, end_on in (await session.execute(relationships)).all():
        if kind == "former_employer":
            former[expert_id].append((credit_code, end_on))
        else:
            relatives[expert_id].append(credit_code)
    away: dict[Any, list[tuple[date, date]]] = defaultdict(list)
    absences = select(
        _raw_id(ExpertUnavailability.expert_id), ExpertUnavailability.start_on, ExpertUnavailability.end_on
    ).where(
        ExpertUnavailability.expert_id.in_(ids),
        ExpertUnavailability.start_on <= on,
        ExpertUnavailability.end_on >= on,
    )
    for expert_id, start_on, end_on in (await session.execute(absences)).all():
        away[expert_id].append((start_on, end_on))
    credit = {str(k): v for k, v in (await pool.credit_scores_among(session, ids, on)).items()}
    served = (
        {str(k): v for k, v in (await _services_for_tenderer(session, tender, on)).items()}
        if tender is not None
        else {}
    )
    out = []
    for raw, status, start, end, employer, has_account, _, _ in experts:
        expert_id = _id_text(raw)
        out.append(
            draw.Candidate(
                expert_id=expert_id,
                status=status,
                term_start=start,
                term_end=end,
                employer=employer,
                specialties=tuple(sorted(codes[raw])),
                former_employers=tuple(former[raw]),
                relatives_at=tuple(relatives[raw]),
                unavailable=tuple(away[raw]),
                credit_score=credit.get(expert_id, pool.CREDIT_START),
                services_for_tenderer=served.get(expert_id, 0),
                has_account=bool(has_account),
            )
        )
    return out


async def _services_for_tenderer(session: AsyncSession, tender: Tender, on: date) -> dict[uuid.UUID, int]:
    """How many committees each expert sat on for this tender's tenderer within the look-back year."""
    others = await tenders.same_tenderer(session, tender)
    if not others:
        return {}
    since = datetime.combine(on - timedelta(days=SERVICE_LOOKBACK_DAYS), datetime.min.time(), SHANGHAI)
    rows = await session.execute(
        select(Invitation.expert_id, func.count())
        .join(Draw, Draw.id == Invitation.draw_id)
        .where(
            Draw.tender_id.in_(others),
            Draw.status != "aborted",
            Invitation.status == "accepted",
            Invitation.answered_at >= since,
        )
        .group_by(Invitation.expert_id)
    )
    return {expert_id: int(n) for expert_id, n in rows.all()}


async def _check_specialties(session: AsyncSession, quotas: list[schemas.QuotaIn]) -> None:
    known = set((await session.scalars(select(Specialty.code).where(Specialty.active))).all())
    for i, q in enumerate(quotas):
        if q.specialty not in known:
            raise ValidationProblem(
                f"{q.specialty} is not an active specialty code.",
                errors=[field_error(f"quotas[{i}].specialty", "unknown or inactive specialty")],
            )
    if len({q.specialty for q in quotas}) != len(quotas):
        raise ValidationProblem(
            "A specialty is named twice.", errors=[field_error("quotas", "repeated specialty")]
        )


async def request_draw(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.DrawCreate,
    store: ObjectStore,
    now: datetime,
) -> Draw:
    """The agency asks for a committee: size, quotas per specialty, its representative's seat if any (W-10,
    G-07). The platform lists the candidates, applies the avoidance rules (G-08) and keeps the candidates,
    the exclusions and the eligible pool (objects) with their digests. No seed exists yet: it is drawn only
    once a witness has committed (`commit_witness`), and nothing is selected before the witness reveals."""
    tender = await tenders.tender_for_agency(session, actor, tender_id)
    if tender.status not in (
        TenderStatus.OPENING,
        TenderStatus.TECHNICAL_EVALUATION,
        TenderStatus.COMMERCIAL_OPENING,
        TenderStatus.EVALUATION,
    ):
        raise Conflict(
            f"A committee is drawn once the bids are in (after the deadline); the tender is {tender.status}."
        )
    # A draw whose committee signed its report and sits in no room any more is spent: after a re-evaluation
    # by a fresh committee is ordered (重新评审), the next round is drawn anew.
    signed = select(Room.id).where(Room.draw_id == Draw.id, Room.outcome == "report_signed")
    sitting = select(Room.id).where(Room.draw_id == Draw.id, Room.status.not_in(("closed", "cancelled")))
    live = await session.scalar(
        select(Draw.id).where(
            Draw.tender_id == tender.id,
            Draw.status.not_in(("aborted",)),
            or_(~signed.exists(), sitting.exists()),
        )
    )
    if live is not None:
        raise Conflict(
            "This tender already has a draw; its abort must be requested and approved by a supervisor first.",
            draw_id=str(live),
        )
    if requested_instant("evaluation_at", data.evaluation_at) <= now:
        raise ValidationProblem(
            "The evaluation must be scheduled in the future.",
            errors=[field_error("evaluation_at", "in the past")],
        )
    await _check_specialties(session, data.quotas)
    experts = sum(q.seats for q in data.quotas)
    size = experts + (1 if data.representative_user_id else 0)
    profile = profile_for(tender.sector, tender.method)
    why = committee_ok(profile, size, experts, tenders.budget_of(await tenders.lots_of(session, tender.id)))
    if why:
        raise RuleViolation(
            profile.rule("committee_min_size") or "W-10",
            f"The committee is not lawful: {why}.",
            errors=[field_error("quotas", why)],
        )
    if data.representative_user_id is not None:
        rep = await accounts.get_user(session, data.representative_user_id)
        if rep is None or not rep.active or rep.organisation_id != tender.agency_organisation_id:
            raise ValidationProblem(
                "The representative must be an active user of the tender's agency.",
                errors=[field_error("representative_user_id", "not a user of the agency")],
            )
    parties = await _parties(session, tender)
    on = local_date(data.evaluation_at)
    earlier = await _earlier_committee(session, tender)
    ctx = draw.Context(
        on=on,
        bidders=parties.bidders,
        parties=parties.parties,
        min_credit_score=data.min_credit_score,
        max_services_for_tenderer=data.max_services_for_tenderer,
        earlier_committee=earlier,
    )
    quotas = tuple(draw.Quota(q.specialty, q.seats) for q in data.quotas)
    found = await candidates(session, [q.specialty for q in quotas], tender, on)
    prepared = await asyncio.to_thread(draw.prepare, found, ctx, quotas, data.employer_limit)
    if earlier:
        _refuse_short_fresh_pool(tender, prepared, quotas)
    inputs = prepared.inputs
    reasons = Counter(r for rs in prepared.exclusions.values() for r in rs)
    row = Draw(
        id=uuid.uuid4(),
        tender_id=tender.id,
        status="awaiting_witness",
        evaluation_at=data.evaluation_at,
        room_hours=data.room_hours,
        committee_size=size,
        quotas=[{"specialty": q.specialty, "seats": q.seats} for q in quotas],
        employer_limit=data.employer_limit,
        representative_user_id=data.representative_user_id,
        invitation_minutes=data.invitation_minutes,
        rules={
            "min_credit_score": data.min_credit_score,
            "max_services_for_tenderer": data.max_services_for_tenderer,
            "former_employer_years": ctx.former_employer_years,
            "version": draw.DRAW_VERSION,
        },
        pool_digest=inputs.pool_digest,
        pool_object_key="",
        pool_size=len(prepared.pool),
        excluded={"by_reason": dict(sorted(reasons.items())), "count": len(prepared.exclusions)},
        # No seed and no commitment until a witness has committed (`commit_witness`).
        commitment="",
        sealed_seed="",
        candidates_digest=inputs.candidates_digest,
        exclusions_digest=inputs.exclusions_digest,
        avoidance_context=draw.context_to_json(ctx),
        requested_by=actor.user_id,
        created_at=now,
    )
    folder = f"records/{tender.code}/evaluation/draw-{row.id}"
    row.pool_object_key = f"{folder}/pool.txt"
    row.candidates_object_key = f"{folder}/candidates.jsonl"
    row.exclusions_object_key = f"{folder}/exclusions.txt"
    text = "text/plain; charset=utf-8"
    await store.put_bytes(row.candidates_object_key, prepared.candidates, content_type=text)
    await store.put_bytes(row.exclusions_object_key, prepared.exclusions_bytes, content_type=text)
    await store.put_bytes(row.pool_object_key, prepared.pool_bytes, content_type=text)
    session.add(row)
    await session.flush()
    await accounts.record(
        session,
        actor,
        "draw.request",
        "draw",
        row.id,
        now,
        candidates=len(found),
        candidates_digest=inputs.candidates_digest,
        exclusions_digest=inputs.exclusions_digest,
        pool_size=len(prepared.pool),
    )
    return row


async def _earlier_committee(session: AsyncSession, tender: Tender) -> frozenset[str]:
    """The experts who sat in any room of the tender whose committee signed a report: a draw after that is
    a fresh committee ordered on a re-evaluation (重新评审), which seats none of them. Empty for a first
    draw."""
    signed = select(Room.id).where(Room.tender_id == tender.id, Room.outcome == "report_signed")
    if await session.scalar(signed.limit(1)) is None:
        return frozenset()
    rows = await session.scalars(
        select(Member.expert_id)
        .join(Room, Room.id == Member.room_id)
        .where(Room.tender_id == tender.id, Member.expert_id.is_not(None))
    )
    return frozenset(str(expert_id) for expert_id in rows)


def _refuse_short_fresh_pool(tender: Tender, prepared: draw.Prepared, quotas: tuple[draw.Quota, ...]) -> None:
    """A fresh committee must be drawn without the earlier one: when the experts left cannot fill every
    quota, the draw is refused now, saying how many the earlier committee took out, rather than leaving
    seats empty after the witness."""
    taken = sum(1 for reasons in prepared.exclusions.values() if "earlier_committee" in reasons)
    for i, q in enumerate(quotas):
        eligible = sum(
            1 for e in prepared.pool if any(code.startswith(q.specialty) for code in e.specialties)
        )
        if eligible < q.seats:
            rule = profile_for(tender.sector, tender.method).rule("challenge_answer_working_days") or "W-17"
            raise RuleViolation(
                rule,
                f"A fresh committee seats none of the earlier committee's {taken} expert(s) excluded from this "
                f"draw: only {eligible} eligible expert(s) are left for the {q.seats} seat(s) of specialty "
                f"{q.specialty}. Widen the specialty or the pool before drawing.",
                errors=[field_error(f"quotas[{i}].seats", f"only {eligible} eligible")],
                earlier_committee_excluded=taken,
            )


async def draw_for(session: AsyncSession, actor: Principal, draw_id: uuid.UUID) -> Draw:
    """A draw the caller may see: the centre, supervisors and auditors; the agency of its tender."""
    row = await session.get(Draw, draw_id)
    if row is None:
        raise NotFound("No such draw.")
    if not actor.has(*rooms.READERS):
        await tenders.tender_for_agency(session, actor, row.tender_id)
    return row
