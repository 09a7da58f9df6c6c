"""Use cases of the evaluation package: the tender's evaluation scheme, the committee draw with its
invitations and replacements, and the evaluation room (评标室) from the no-conflict declaration to the signed
report that goes back to trading for the candidates' publicity.

Services flush but never commit: the request or job that calls them owns the transaction. Each transition
checks the state, makes the change, writes the audit trail and the room's event line, in that order.
The pool (专家库) has its own module, `evaluation.pool`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from sqlalchemy import String, and_, func, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

import accounts.service as accounts
from accounts.security import Principal
from bidding import signals, submission
from evaluation import draw, pool, report, schemas, scoring
from evaluation.models import (
    Clarification,
    Draw,
    DrawAbortRequest,
    DrawWitness,
    EvaluationScheme,
    Expert,
    ExpertRelationship,
    ExpertSpecialty,
    ExpertUnavailability,
    Invitation,
    Member,
    QualificationReview,
    Room,
    RoomEvent,
    ScoreSheet,
    Specialty,
)
from rules.calendar import SHANGHAI, local_date
from rules.profiles import committee_ok, profile_for
from storage.objects import ObjectStore
from storage.problems import Conflict, Forbidden, NotFound, RuleViolation, ValidationProblem, field_error
from storage.signing import LogSigner
from trading import awards, tenders
from trading.lifecycle import TenderStatus
from trading.models import Bid, Tender

FEN_PER_YUAN = 100
G07_BUDGET_FEN = 10_000_000 * FEN_PER_YUAN  # G-07: seven or more members from 10 million yuan
SERVICE_LOOKBACK_DAYS = 365
READERS = ("centre", "supervisor", "auditor")
DECLARATION = (
    "本人与本项目投标人、招标人及招标代理机构不存在利害关系，不存在法律法规规定的回避情形。"
    " (I have no interest in any bidder, the tenderer or the agency of this tender and no ground for avoidance.)"
)


def _instant(field: str, value: datetime) -> datetime:
    """An instant a request names, refused unless it carries a zone and falls in a year the platform can
    reckon with (a far one overflows when a time box is added to it)."""
    if value.tzinfo is None:
        raise ValidationProblem(
            f"{field} must carry a time zone (e.g. +08:00 or Z).",
            errors=[field_error(field, "naive datetime")],
        )
    if not 2000 <= value.year <= 2099:
        raise ValidationProblem(
            f"{field} must fall within the years 2000 to 2099.", errors=[field_error(field, "out of range")]
        )
    return value


# ---------------------------------------------------------------- the scheme


async def set_scheme(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: dict[str, Any], now: datetime
) -> scoring.Scheme:
    """Fix the tender's evaluation scheme (评标办法). It is part of the documents: once bidding has closed it
    cannot change. The method must be the one the tender published."""
    tender = await tenders.tender_for_agency(session, actor, tender_id)
    if tender.status not in (TenderStatus.DRAFT, TenderStatus.PUBLISHED, TenderStatus.TENDERING):
        raise Conflict(f"The evaluation scheme is part of the documents; the tender is {tender.status}.")
    try:
        scheme = scoring.scheme_from_json(data)
        scoring.validate(scheme)
    except scoring.SchemeError as exc:
        raise _scheme_problem(exc) from exc
    if scheme.method != tender.evaluation_method:
        raise ValidationProblem(
            f"The tender is evaluated by {tender.evaluation_method}; the scheme says {scheme.method}.",
            errors=[field_error("method", "differs from the tender's evaluation method")],
        )
    row = await session.get(EvaluationScheme, tender.id)
    if row is None:
        row = EvaluationScheme(tender_id=tender.id, scheme={}, set_at=now)
        session.add(row)
    row.scheme = scoring.scheme_to_json(scheme)
    row.set_at = now
    row.set_by = actor.user_id
    await session.flush()
    await accounts.record(session, actor, "evaluation.scheme", "tender", tender.id, now, method=scheme.method)
    return scheme


def _scheme_problem(exc: scoring.SchemeError) -> ValidationProblem | RuleViolation:
    if exc.rule:
        return RuleViolation(exc.rule, str(exc), errors=[field_error(exc.path, str(exc))])
    return ValidationProblem(str(exc), errors=[field_error(exc.path, str(exc))])


async def scheme_of(session: AsyncSession, tender: Tender) -> scoring.Scheme:
    """The scheme the agency fixed, or the method's default one."""
    row = await session.get(EvaluationScheme, tender.id)
    if row is not None:
        return scoring.scheme_from_json(row.scheme)
    return scoring.default_scheme(tender.evaluation_method)


async def read_scheme(session: AsyncSession, actor: Principal | None, tender_id: uuid.UUID) -> dict[str, Any]:
    """The scheme as published with the documents (anyone who may see the tender)."""
    tender = await tenders.visible_tender(session, actor, tender_id)
    return scoring.scheme_to_json(await scheme_of(session, tender))


# ---------------------------------------------------------------- the draw

ABORT_REQUESTERS = ("agency", "centre")
WITNESSES = ("supervisor",)  # a supervisor or a notary office (a supervising organisation)


def _seal_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"ggzy evaluation draw seed", hashlib.sha256).digest()


def seal_seed(secret: str, draw_id: uuid.UUID, seed: bytes) -> str:
    """The secret seed sealed under the server's key until it is revealed (never stored in the clear)."""
    nonce = os.urandom(12)
    return base64.b64encode(
        nonce + ChaCha20Poly1305(_seal_key(secret)).encrypt(nonce, seed, draw_id.bytes)
    ).decode()


def unseal_seed(secret: str, row: Draw) -> bytes:
    """The draw's seed, opened with the server's key (only once a witness has committed does one exist)."""
    raw = base64.b64decode(row.sealed_seed)
    return ChaCha20Poly1305(_seal_key(secret)).decrypt(raw[:12], raw[12:], row.id.bytes)


def _legacy(row: Draw) -> bool:
    """A draw made under the first version of the protocol (no witness commitment, no pool before
    avoidance): it still selects and replays as it did."""
    return bool(row.rules.get("version") == draw.LEGACY_VERSION)


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
    if tender.status not in (TenderStatus.OPENING, TenderStatus.EVALUATION):
        raise Conflict(
            f"A committee is drawn once the bids are in (after the deadline); the tender is {tender.status}."
        )
    live = await session.scalar(
        select(Draw.id).where(Draw.tender_id == tender.id, Draw.status.not_in(("aborted",)))
    )
    if live is not None:
        raise Conflict(
            "This tender already has a draw; its abort must be requested and approved by a supervisor first.",
            draw_id=str(live),
        )
    if _instant("evaluation_at", data.evaluation_at) <= now:
        raise ValidationProblem(
            "The evaluation must be scheduled in the future.",
            errors=[field_error("evaluation_at", "in the past")],
        )
    await _check_specialties(session, data.quotas)
    experts = sum(q.seats for q in data.quotas)
    size = experts + (1 if data.representative_user_id else 0)
    profile = profile_for(tender.sector, tender.method)
    why = committee_ok(profile, size, experts)
    if why:
        raise RuleViolation(
            "W-10", f"The committee is not lawful: {why}.", errors=[field_error("quotas", why)]
        )
    budget = sum(lot.estimated_price_fen for lot in await tenders.lots_of(session, tender.id))
    if tender.sector == "procurement" and budget >= G07_BUDGET_FEN and size < 7:
        raise RuleViolation("G-07", "A budget of 10 million yuan or more needs a committee of 7 or more.")
    if data.representative_user_id is not None:
        rep = await accounts.get_user(session, data.representative_user_id)
        if rep is None or not rep.active or rep.organisation_id != tender.agency_organisation_id:
            raise ValidationProblem(
                "The representative must be an active user of the tender's agency.",
                errors=[field_error("representative_user_id", "not a user of the agency")],
            )
    parties = await _parties(session, tender)
    on = local_date(data.evaluation_at)
    ctx = draw.Context(
        on=on,
        bidders=parties.bidders,
        parties=parties.parties,
        min_credit_score=data.min_credit_score,
        max_services_for_tenderer=data.max_services_for_tenderer,
    )
    quotas = tuple(draw.Quota(q.specialty, q.seats) for q in data.quotas)
    found = await candidates(session, [q.specialty for q in quotas], tender, on)
    prepared = await asyncio.to_thread(draw.prepare, found, ctx, quotas, data.employer_limit)
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


async def draw_for(session: AsyncSession, actor: Principal, draw_id: uuid.UUID) -> Draw:
    """A draw the caller may see: the centre, supervisors and auditors; the agency of its tender."""
    row = await session.get(Draw, draw_id)
    if row is None:
        raise NotFound("No such draw.")
    if not actor.has(*READERS):
        await tenders.tender_for_agency(session, actor, row.tender_id)
    return row


def _inputs(row: Draw) -> draw.Inputs:
    assert row.candidates_digest is not None and row.exclusions_digest is not None
    assert row.avoidance_context is not None
    context = draw.encode_context(draw.context_from_json(row.avoidance_context))
    return draw.Inputs(
        candidates_digest=row.candidates_digest,
        context_digest=hashlib.sha256(context).hexdigest(),
        exclusions_digest=row.exclusions_digest,
        pool_digest=row.pool_digest,
        quotas=tuple(draw.Quota(q["specialty"], q["seats"]) for q in row.quotas),
        employer_limit=row.employer_limit,
    )


def _may_witness(actor: Principal) -> None:
    # The witness is neither the platform's operator (the centre) nor the party that asked (the agency).
    if not actor.has(*WITNESSES) or actor.has(*ABORT_REQUESTERS):
        raise Forbidden("Only a supervisor or a notary, never the centre or the agency, is a draw's witness.")


async def witness_of(session: AsyncSession, row: Draw) -> DrawWitness | None:
    """The draw's witness contribution, if one has committed."""
    return await session.get(DrawWitness, row.id)


async def commit_witness(
    session: AsyncSession,
    actor: Principal,
    draw_id: uuid.UUID,
    witness_commitment: str,
    secret: str,
    signer: LogSigner,
    now: datetime,
) -> Draw:
    """A supervisor or notary commits to its witness (SHA-256 of a witness and a nonce it keeps). Only now,
    in the same transaction, does the platform draw its seed, seal it and publish (and sign) its commitment
    over the seed, this witness commitment and the draw's inputs: the witness is fixed before the seed
    exists, and the seed is fixed before the witness is known. The same commitment again changes nothing."""
    _may_witness(actor)
    row = await session.get(Draw, draw_id, with_for_update=True)
    if row is None:
        raise NotFound("No such draw.")
    if not draw.is_hex32(witness_commitment):
        raise ValidationProblem(
            "The witness commitment is a SHA-256 in 64 lowercase hexadecimal characters.",
            errors=[field_error("witness_commitment", "not 64 lowercase hex characters")],
        )
    existing = await witness_of(session, row)
    if existing is not None:
        if existing.committed_by == actor.user_id and existing.commitment == witness_commitment:
            return row
        raise Conflict("A witness has already committed to this draw.")
    if _legacy(row):
        raise Conflict(
            "This draw predates witness commitments; its abort can be requested and a new one asked."
        )
    if row.status != "awaiting_witness":
        raise Conflict(f"The draw is {row.status}; a witness commits only before the seed exists.")
    seed = os.urandom(draw.WITNESS_BYTES)
    row.commitment = draw.commitment(seed, witness_commitment, _inputs(row))
    row.sealed_seed = seal_seed(secret, row.id, seed)
    row.commitment_signature = base64.b64encode(
        signer.sign(draw.commitment_statement(str(row.id), witness_commitment, row.commitment))
    ).decode()
    row.signing_key_id = signer.key_id
    row.status = "committed"
    session.add(
        DrawWitness(
            draw_id=row.id,
            committed_by=actor.user_id,
            organisation_id=actor.organisation_id,
            commitment=witness_commitment,
            committed_at=now,
        )
    )
    await session.flush()
    await accounts.record(
        session,
        actor,
        "draw.witness_commit",
        "draw",
        row.id,
        now,
        witness_commitment=witness_commitment,
        commitment=row.commitment,
    )
    return row


async def run_draw(
    session: AsyncSession,
    actor: Principal,
    draw_id: uuid.UUID,
    witness: str,
    nonce: str,
    secret: str,
    store: ObjectStore,
    now: datetime,
) -> Draw:
    """The witness reveals its witness and nonce; they must match its commitment, and the selection runs at
    once on the final seed (the sealed seed and the witness) and the drawn experts are invited. Only the
    supervisor who committed reveals, so nobody else chooses the moment; the same reveal again changes
    nothing."""
    row = await session.get(Draw, draw_id, with_for_update=True)
    if row is None:
        raise NotFound("No such draw.")
    contribution = await witness_of(session, row)
    if contribution is None:
        raise Conflict("No witness has committed to this draw yet: a supervisor or notary commits first.")
    if contribution.committed_by != actor.user_id:
        raise Forbidden("Only the supervisor who committed to the witness reveals it.")
    if contribution.witness is not None:
        if (contribution.witness, contribution.nonce) == (witness, nonce):
            return row
        raise Conflict("The witness was already revealed and the draw has run.")
    if row.status != "committed":
        raise Conflict(f"The draw is {row.status}; it can no longer run.")
    if not (draw.is_hex32(witness) and draw.is_hex32(nonce)):
        raise ValidationProblem(
            "The witness and the nonce are 64 lowercase hexadecimal characters each.",
            errors=[
                field_error("witness" if not draw.is_hex32(witness) else "nonce", "not 64 lowercase hex")
            ],
        )
    if draw.witness_commitment(bytes.fromhex(witness), bytes.fromhex(nonce)) != contribution.commitment:
        raise ValidationProblem(
            "The witness and nonce do not match the commitment you made; the draw has not run.",
            errors=[field_error("witness", "does not match the witness commitment")],
        )
    contribution.witness = witness
    contribution.nonce = nonce
    contribution.revealed_at = now
    row.drawn_at = now
    row.status = "inviting"
    await _apply_selection(session, row, secret, store, now)
    await accounts.record(session, actor, "draw.run", "draw", row.id, now, witness=witness, nonce=nonce)
    return row


async def _object(store: ObjectStore, key: str, digest: str, what: str) -> bytes:
    data = b"".join([chunk async for chunk in store.iter_chunks(key)])
    if hashlib.sha256(data).hexdigest() != digest:
        raise Conflict(f"The stored {what} does not match its digest.")
    return data


async def _pool_of(store: ObjectStore, row: Draw) -> list[draw.PoolEntry]:
    data = await _object(store, row.pool_object_key, row.pool_digest, "pool snapshot")
    return await asyncio.to_thread(draw.decode_pool, data)


async def _removed(session: AsyncSession, row: Draw) -> list[str]:
    rows = await session.scalars(
        select(Invitation)
        .where(Invitation.draw_id == row.id, Invitation.removed_seq.is_not(None))
        .order_by(Invitation.removed_seq)
    )
    return [str(i.expert_id) for i in rows]


async def _final_seed(session: AsyncSession, row: Draw, secret: str) -> bytes:
    seed = unseal_seed(secret, row)
    if _legacy(row):
        return draw.final_seed_v1(seed, row.witness or "")
    contribution = await witness_of(session, row)
    assert contribution is not None and contribution.witness is not None
    return draw.final_seed(seed, bytes.fromhex(contribution.witness))


async def _apply_selection(
    session: AsyncSession, row: Draw, secret: str, store: ObjectStore, now: datetime
) -> None:
    """Replay the selection with every removal so far and create the invitations it adds."""
    entries = await _pool_of(store, row)
    quotas = [draw.Quota(q["specialty"], q["seats"]) for q in row.quotas]
    seed = await _final_seed(session, row, secret)
    removed = await _removed(session, row)
    result = await asyncio.to_thread(draw.select, entries, quotas, seed, row.employer_limit, removed)
    made = {
        i.position: i
        for i in (await session.scalars(select(Invitation).where(Invitation.draw_id == row.id))).all()
    }
    for position, seat in enumerate(result.invitations):
        if position in made:
            if str(made[position].expert_id) != seat.expert_id:
                raise Conflict("The draw no longer replays; refusing to go on.", position=position)
            continue
        session.add(
            Invitation(
                draw_id=row.id,
                position=position,
                quota_index=seat.quota_index,
                round=seat.round,
                expert_id=uuid.UUID(seat.expert_id),
                replaces=uuid.UUID(seat.replaces) if seat.replaces else None,
                status="invited",
                invited_at=now,
                respond_by=now + timedelta(minutes=row.invitation_minutes),
            )
        )
        expert = await session.get(Expert, uuid.UUID(seat.expert_id))
        if expert is not None and expert.user_id is not None:
            user = await accounts.get_user(session, expert.user_id)
            if user is not None:
                await tenders.notify(
                    session,
                    user.organisation_id,
                    row.tender_id,
                    "evaluation.invitation",
                    "You are invited to an evaluation committee; answer before "
                    f"{(now + timedelta(minutes=row.invitation_minutes)).astimezone(SHANGHAI):%Y-%m-%d %H:%M}.",
                    now,
                )
    await session.flush()
    row.next_deadline = await session.scalar(
        select(func.min(Invitation.respond_by)).where(
            Invitation.draw_id == row.id, Invitation.status == "invited"
        )
    )
    if result.shortfalls:
        row.status = "short"
    await _confirm_if_complete(session, row, result, secret, now)


async def _confirm_if_complete(
    session: AsyncSession, row: Draw, result: draw.DrawResult, secret: str, now: datetime
) -> None:
    if result.shortfalls:
        return
    standing = {s.expert_id for s in result.committee}
    invitations = (await session.scalars(select(Invitation).where(Invitation.draw_id == row.id))).all()
    accepted = {str(i.expert_id) for i in invitations if i.status == "accepted"}
    if not standing <= accepted:
        return
    row.status = "confirmed"
    row.confirmed_at = now
    row.next_deadline = None
    # The seed is revealed now that no answer can change the committee any more, so anyone may replay it.
    row.seed_hex = unseal_seed(secret, row).hex()
    await accounts.record(session, None, "draw.confirm", "draw", row.id, now, seed=row.seed_hex)
    await _seat_members(session, row, result, now)


async def _seat_members(session: AsyncSession, row: Draw, result: draw.DrawResult, now: datetime) -> Room:
    """Create the room at the first confirmation; after a recusal, seat the replacement in it."""
    room = await session.scalar(select(Room).where(Room.draw_id == row.id))
    if room is None:
        room = Room(
            id=uuid.uuid4(),
            tender_id=row.tender_id,
            draw_id=row.id,
            status="scheduled",
            phase="qualification",
            opens_at=row.evaluation_at,
            closes_at=row.evaluation_at + timedelta(hours=row.room_hours),
            extensions=[],
            event_seq=0,
        )
        session.add(room)
        await session.flush()
    members = (await session.scalars(select(Member).where(Member.room_id == room.id))).all()
    seated = {str(m.expert_id) for m in members if m.expert_id is not None}
    seat = max((m.seat for m in members), default=0)
    added = 0
    for s in result.committee:
        if s.expert_id in seated:
            continue
        expert = await session.get(Expert, uuid.UUID(s.expert_id))
        assert expert is not None and expert.user_id is not None
        seat += 1
        added += 1
        session.add(
            Member(
                room_id=room.id,
                seat=seat,
                kind="expert",
                expert_id=expert.id,
                user_id=expert.user_id,
                name=expert.name,
                specialty=row.quotas[s.quota_index]["specialty"],
            )
        )
    if row.representative_user_id is not None and not any(m.kind == "representative" for m in members):
        rep = await accounts.get_user(session, row.representative_user_id)
        assert rep is not None
        seat += 1
        added += 1
        session.add(
            Member(
                room_id=room.id,
                seat=seat,
                kind="representative",
                user_id=rep.id,
                name=rep.display_name,
                specialty="",
            )
        )
    await session.flush()
    await _event(session, room, "committee.seated", now, seats=added, opens_at=room.opens_at.isoformat())
    return room


async def my_invitations(session: AsyncSession, actor: Principal) -> list[tuple[Invitation, Draw, Tender]]:
    """The caller's invitations (an expert), newest first."""
    expert = await _expert_of(session, actor)
    rows = await session.execute(
        select(Invitation, Draw)
        .join(Draw, Draw.id == Invitation.draw_id)
        .where(Invitation.expert_id == expert.id)
        .order_by(Invitation.invited_at.desc())
    )
    out = []
    for invitation, row in rows.all():
        out.append((invitation, row, await tenders.tender_by_id(session, row.tender_id)))
    return out


async def _expert_of(session: AsyncSession, actor: Principal) -> Expert:
    expert = await session.scalar(select(Expert).where(Expert.user_id == actor.user_id))
    if expert is None:
        raise NotFound("You have no expert profile.")
    return expert


async def answer_invitation(
    session: AsyncSession,
    actor: Principal,
    invitation_id: uuid.UUID,
    accept: bool,
    reason: str | None,
    secret: str,
    store: ObjectStore,
    now: datetime,
    *,
    on_behalf: bool = False,
) -> Invitation:
    """The expert accepts or declines (the centre may record an answer given by telephone). A decline is
    replaced at once by the next expert of the same quota in the draw's order."""
    invitation = await session.get(Invitation, invitation_id)
    if invitation is None:
        raise NotFound("No such invitation.")
    if not on_behalf:
        expert = await _expert_of(session, actor)
        if expert.id != invitation.expert_id:
            raise NotFound("No such invitation.")
    row = await session.get(Draw, invitation.draw_id, with_for_update=True)
    assert row is not None
    if row.status == "aborted":
        raise Conflict("The draw was aborted; this invitation no longer stands.")
    if invitation.status != "invited":
        if invitation.status == ("accepted" if accept else "declined"):
            return invitation  # the same answer again changes nothing
        raise Conflict(f"This invitation was already answered: {invitation.status}.")
    if now > invitation.respond_by:
        raise Conflict("The time to answer has passed; the seat went to another expert.")
    invitation.answered_at = now
    invitation.reason = reason
    if accept:
        invitation.status = "accepted"
        await accounts.record(
            session, actor, "invitation.accept", "invitation", invitation.id, now, on_behalf=on_behalf
        )
    else:
        invitation.status = "declined"
        await _remove(session, row, invitation, "declined", reason, now)
        await accounts.record(
            session,
            actor,
            "invitation.decline",
            "invitation",
            invitation.id,
            now,
            on_behalf=on_behalf,
            reason=reason,
        )
    await session.flush()
    await _apply_selection(session, row, secret, store, now)
    return invitation


async def _remove(
    session: AsyncSession,
    row: Draw,
    invitation: Invitation,
    credit_kind: str | None,
    reason: str | None,
    now: datetime,
) -> None:
    seq = await session.scalar(
        select(func.coalesce(func.max(Invitation.removed_seq), 0)).where(Invitation.draw_id == row.id)
    )
    invitation.removed_seq = int(seq or 0) + 1
    if credit_kind is not None:
        await pool.record_credit(session, None, invitation.expert_id, credit_kind, row.tender_id, reason, now)


def _inviting_due(now: datetime) -> Any:
    return and_(Draw.next_deadline.is_not(None), Draw.next_deadline <= now, Draw.status == "inviting")


async def draws_due(session: AsyncSession, now: datetime) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    """The chronograph: each draw with an invitation unanswered by its deadline, as (draw, tender, status),
    earliest deadline first."""
    rows = await session.execute(
        select(Draw.id, Draw.tender_id, Draw.status)
        .where(_inviting_due(now))
        .order_by(Draw.next_deadline, Draw.id)
    )
    return [(r.id, r.tender_id, r.status) for r in rows]


async def expire_invitations(
    session: AsyncSession, secret: str, store: ObjectStore, draw_id: uuid.UUID, now: datetime
) -> int:
    """The chronograph: the draw's invitations unanswered by their deadline time out and are replaced.
    The draw is locked and checked afresh, so of two workers only one times them out (the other answers 0)."""
    row = await session.scalar(
        select(Draw)
        .where(Draw.id == draw_id, _inviting_due(now))
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if row is None:
        return 0
    stale = (
        await session.scalars(
            select(Invitation)
            .where(Invitation.draw_id == row.id, Invitation.status == "invited", Invitation.respond_by <= now)
            .order_by(Invitation.position)
        )
    ).all()
    for invitation in stale:
        invitation.status = "timed_out"
        await _remove(session, row, invitation, "no_response", "no answer before the deadline", now)
        await accounts.record(session, None, "invitation.timeout", "invitation", invitation.id, now)
    await session.flush()
    await _apply_selection(session, row, secret, store, now)
    return len(stale)


async def _check_abortable(session: AsyncSession, row: Draw) -> Room | None:
    """Whether the draw may still be aborted, and the room an abort would cancel."""
    if row.status == "aborted":
        raise Conflict("The draw is already aborted.")
    if row.status == "confirmed":
        raise Conflict("The committee is confirmed; its room decides from here.")
    room = await session.scalar(select(Room).where(Room.draw_id == row.id))
    if room is not None and row.status != "short":
        # A recused seat is still being redrawn; the committee may yet be completed.
        raise Conflict("The committee already sits in its room; only the recused seat is being redrawn.")
    return room


async def _pending_abort(session: AsyncSession, row: Draw) -> DrawAbortRequest | None:
    return await session.scalar(
        select(DrawAbortRequest).where(
            DrawAbortRequest.draw_id == row.id, DrawAbortRequest.status == "pending"
        )
    )


async def request_abort(
    session: AsyncSession, actor: Principal, draw_id: uuid.UUID, reason: str, now: datetime
) -> DrawAbortRequest:
    """The tender's agency or the centre asks, with a reason, to abort a draw that should not go on (the
    evaluation must move, a quota the pool cannot fill, a recused member nobody can replace). Nothing
    changes until a supervisor approves; one request waits at a time."""
    row = await session.get(Draw, draw_id, with_for_update=True)
    if row is None:
        raise NotFound("No such draw.")
    if actor.has("centre"):
        role = "centre"
    elif actor.has("agency"):
        await tenders.tender_for_agency(session, actor, row.tender_id)
        role = "agency"
    else:
        raise Forbidden("An abort is asked for by the tender's agency or the centre.")
    await _check_abortable(session, row)
    pending = await _pending_abort(session, row)
    if pending is not None:
        raise Conflict(
            "An abort of this draw already awaits a supervisor's decision.", request_id=str(pending.id)
        )
    request = DrawAbortRequest(
        draw_id=row.id,
        tender_id=row.tender_id,
        reason=reason,
        stage=row.status,
        requested_by=actor.user_id,
        requester_organisation_id=actor.organisation_id,
        requester_role=role,
        requested_at=now,
        status="pending",
    )
    session.add(request)
    await session.flush()
    await accounts.record(
        session, actor, "draw.abort_request", "draw", row.id, now, request_id=str(request.id), reason=reason
    )
    return request


async def decide_abort(
    session: AsyncSession,
    actor: Principal,
    draw_id: uuid.UUID,
    request_id: uuid.UUID,
    approve: bool,
    note: str | None,
    secret: str,
    now: datetime,
) -> tuple[Draw, DrawAbortRequest]:
    """A supervisor approves or refuses an abort request. The draw's own witness may not decide (it could
    otherwise withhold its reveal and end the draw alone). On approval the draw is aborted at once: its
    seed, if one was drawn, is revealed; invitations still open are cancelled; a room whose recused seat
    cannot be filled is cancelled with it; the agency may then ask for a new committee. The same decision
    again changes nothing."""
    if not actor.has("supervisor") or actor.has(*ABORT_REQUESTERS):
        raise Forbidden("Only a supervisor decides on an abort.")
    row = await session.get(Draw, draw_id, with_for_update=True)
    if row is None:
        raise NotFound("No such draw.")
    request = await session.get(DrawAbortRequest, request_id)
    if request is None or request.draw_id != row.id:
        raise NotFound("No such abort request for this draw.")
    contribution = await witness_of(session, row)
    if contribution is not None and contribution.committed_by == actor.user_id:
        raise Forbidden("The draw's witness cannot decide on its abort; another supervisor does.")
    decided = "approved" if approve else "refused"
    if request.status != "pending":
        if request.status == decided and request.decided_by == actor.user_id:
            return row, request
        raise Conflict(f"This abort request was already {request.status}.")
    request.status = decided
    request.decided_by = actor.user_id
    request.decided_at = now
    request.decision_note = note
    if approve:
        await _abort(session, row, request, secret, now)
    await session.flush()
    await accounts.record(
        session,
        actor,
        f"draw.abort_{decided}",
        "draw",
        row.id,
        now,
        request_id=str(request.id),
        note=note,
        seed=row.seed_hex if approve else None,
    )
    return row, request


async def _abort(
    session: AsyncSession, row: Draw, request: DrawAbortRequest, secret: str, now: datetime
) -> None:
    room = await _check_abortable(session, row)
    if room is not None:
        # The pool cannot replace a recused member: the room cannot lawfully sit (W-10), so it is cancelled
        # with its draw, and the agency asks for a new committee.
        room.status = "cancelled"
        room.phase = "closed"
        room.closed_at = now
        room.outcome = "committee incomplete"
        await _event(session, room, "room.cancelled", now, reason=request.reason)
    for invitation in await session.scalars(
        select(Invitation).where(Invitation.draw_id == row.id, Invitation.status == "invited")
    ):
        invitation.status = "cancelled"
    row.status = "aborted"
    row.aborted_at = now
    row.next_deadline = None
    if row.sealed_seed:
        # Revealed at once: whoever could read the sealed seed gains nothing by aborting, and anyone can
        # check the aborted draw (and what it had drawn) against its commitment.
        row.seed_hex = unseal_seed(secret, row).hex()


async def abort_requests_of(session: AsyncSession, row: Draw) -> list[DrawAbortRequest]:
    """The draw's abort requests, oldest first."""
    return list(
        await session.scalars(
            select(DrawAbortRequest)
            .where(DrawAbortRequest.draw_id == row.id)
            .order_by(DrawAbortRequest.requested_at, DrawAbortRequest.id)
        )
    )


def record_published(row: Draw) -> bool:
    """Whether the draw's record may be published: its seed is revealed (the committee was confirmed) or
    it was aborted (at any stage)."""
    return row.status == "aborted" or row.seed_hex is not None


def _seats(invitations: Sequence[Invitation]) -> tuple[draw.Seat, ...]:
    return tuple(
        draw.Seat(i.quota_index, str(i.expert_id), i.round, str(i.replaces) if i.replaces else None)
        for i in invitations
    )


async def draw_record(
    session: AsyncSession, store: ObjectStore, row: Draw
) -> draw.DrawRecord | draw.LegacyRecord:
    """The full record an auditor replays offline, once the seed is revealed or the draw aborted: the pool
    before avoidance, the context, every exclusion with its reasons, the witness's commitment and reveal,
    the platform's signed commitment and its seed, the removals and invitations, and the abort. Experts
    appear by pool id only: no names, no telephone numbers."""
    if not record_published(row):
        raise Conflict("The record is published once the committee is confirmed or the draw is aborted.")
    invitations = (
        await session.scalars(
            select(Invitation).where(Invitation.draw_id == row.id).order_by(Invitation.position)
        )
    ).all()
    removed = tuple(await _removed(session, row))
    if _legacy(row):
        if row.seed_hex is None:
            raise Conflict(
                "This first-version draw was aborted before aborts revealed seeds; it has no record."
            )
        return draw.LegacyRecord(
            commitment=row.commitment,
            seed_hex=row.seed_hex,
            witness=row.witness or "",
            pool=await _object(store, row.pool_object_key, row.pool_digest, "pool snapshot"),
            quotas=tuple(draw.Quota(q["specialty"], q["seats"]) for q in row.quotas),
            employer_limit=row.employer_limit,
            removed=removed,
            invitations=_seats(invitations),
        )
    assert row.candidates_object_key and row.candidates_digest and row.exclusions_object_key
    assert row.exclusions_digest and row.avoidance_context is not None
    found = await _object(store, row.candidates_object_key, row.candidates_digest, "pool before avoidance")
    excluded = await _object(store, row.exclusions_object_key, row.exclusions_digest, "exclusions")
    exclusions = tuple(
        (expert_id, tuple(reasons.split(",")))
        for expert_id, reasons in (line.split("\t") for line in excluded.decode().splitlines())
    )
    contribution = await witness_of(session, row)
    approved = await session.scalar(
        select(DrawAbortRequest).where(
            DrawAbortRequest.draw_id == row.id, DrawAbortRequest.status == "approved"
        )
    )
    abort = None
    if approved is not None:
        assert approved.decided_at is not None
        abort = draw.Abort(
            reason=approved.reason,
            requested_by=approved.requester_role,
            stage=approved.stage,
            requested_at=approved.requested_at.isoformat(),
            approved_at=approved.decided_at.isoformat(),
        )
    return draw.DrawRecord(
        draw_id=str(row.id),
        status=row.status,
        context=draw.context_from_json(row.avoidance_context),
        candidates=tuple(await asyncio.to_thread(draw.decode_candidates, found)),
        exclusions=exclusions,
        quotas=tuple(draw.Quota(q["specialty"], q["seats"]) for q in row.quotas),
        employer_limit=row.employer_limit,
        witness_commitment=contribution.commitment if contribution else None,
        commitment=row.commitment or None,
        signature=row.commitment_signature,
        key_id=row.signing_key_id,
        seed_hex=row.seed_hex,
        witness_hex=contribution.witness if contribution else None,
        nonce_hex=contribution.nonce if contribution else None,
        removed=removed,
        invitations=_seats(invitations),
        abort=abort,
    )


# ---------------------------------------------------------------- abort statistics


def _month(instant: datetime) -> str:
    return instant.astimezone(SHANGHAI).strftime("%Y-%m")


async def abort_statistics(session: AsyncSession, since: date | None, until: date | None) -> dict[str, Any]:
    """Aborts for supervisors and auditors, so a pattern shows: draws asked for and abort requests in the
    period (Asia/Shanghai days, both ends included), by month, by who asked (the centre itself among
    them), by agency and by tender, how many came after the names were drawn, and every request with its
    reason and decision."""
    if since is not None and until is not None and until < since:
        raise ValidationProblem("until comes before since.", errors=[field_error("until", "before since")])
    start = datetime.combine(since, datetime.min.time(), SHANGHAI) if since else None
    end = datetime.combine(until + timedelta(days=1), datetime.min.time(), SHANGHAI) if until else None

    def within(column: Any) -> list[Any]:
        return [
            c for c in (column >= start if start else None, column < end if end else None) if c is not None
        ]

    draws = (
        await session.execute(
            select(Draw.id, Draw.tender_id, Draw.created_at).where(*within(Draw.created_at))
        )
    ).all()
    requests = list(
        await session.scalars(
            select(DrawAbortRequest)
            .where(*within(DrawAbortRequest.requested_at))
            .order_by(DrawAbortRequest.requested_at, DrawAbortRequest.id)
        )
    )
    by_id = {
        t: await tenders.tender_by_id(session, t)
        for t in {d.tender_id for d in draws} | {r.tender_id for r in requests}
    }
    names: dict[uuid.UUID, Any] = {}

    async def organisation(org_id: uuid.UUID) -> Any:
        if org_id not in names:
            names[org_id] = await accounts.get_organisation(session, org_id)
        return names[org_id]

    def tally() -> dict[str, int]:
        return {"draws": 0, "requests": 0, "approved": 0, "refused": 0, "pending": 0}

    months: dict[str, dict[str, int]] = defaultdict(tally)
    agencies: dict[uuid.UUID, dict[str, int]] = defaultdict(tally)
    by_tender: dict[uuid.UUID, dict[str, int]] = defaultdict(tally)
    requesters: dict[uuid.UUID, dict[str, int]] = defaultdict(tally)
    for d in draws:
        agency = by_id[d.tender_id].agency_organisation_id
        for bucket in (months[_month(d.created_at)], agencies[agency], by_tender[d.tender_id]):
            bucket["draws"] += 1
    for r in requests:
        agency = by_id[r.tender_id].agency_organisation_id
        for bucket in (
            months[_month(r.requested_at)],
            agencies[agency],
            by_tender[r.tender_id],
            requesters[r.requester_organisation_id],
        ):
            bucket["requests"] += 1
            bucket[r.status] += 1
    totals = tally()
    totals["draws"] = len(draws)
    for r in requests:
        totals["requests"] += 1
        totals[r.status] += 1
    return {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "totals": totals,
        "approved_after_names_were_drawn": sum(
            1 for r in requests if r.status == "approved" and r.stage in ("inviting", "short")
        ),
        "by_month": [{"month": m, **counts} for m, counts in sorted(months.items())],
        "by_requester": [
            {
                "organisation_id": str(org_id),
                "name": (org := await organisation(org_id)).name,
                "kind": org.kind,
                **counts,
            }
            for org_id, counts in sorted(requesters.items(), key=lambda kv: (-kv[1]["requests"], str(kv[0])))
        ],
        "by_agency": [
            {"organisation_id": str(org_id), "name": (await organisation(org_id)).name, **counts}
            for org_id, counts in sorted(agencies.items(), key=lambda kv: (-kv[1]["requests"], str(kv[0])))
        ],
        "by_tender": [
            {"tender_id": str(t), "code": by_id[t].code, **counts}
            for t, counts in sorted(by_tender.items(), key=lambda kv: (-kv[1]["requests"], by_id[kv[0]].code))
        ],
        "requests": [
            {
                "id": str(r.id),
                "draw_id": str(r.draw_id),
                "tender_code": by_id[r.tender_id].code,
                "requester_role": r.requester_role,
                "requester": (await organisation(r.requester_organisation_id)).name,
                "stage": r.stage,
                "reason": r.reason,
                "status": r.status,
                "requested_at": r.requested_at.isoformat(),
                "decided_at": r.decided_at.isoformat() if r.decided_at else None,
                "decision_note": r.decision_note,
            }
            for r in requests
        ],
    }


# ---------------------------------------------------------------- the room


async def _event(session: AsyncSession, room: Room, kind: str, now: datetime, **payload: Any) -> None:
    """One line of the room's live progress (no scores, no names)."""
    room.event_seq += 1
    session.add(RoomEvent(room_id=room.id, seq=room.event_seq, at=now, kind=kind, payload=payload))
    await session.flush()


async def room_events(
    session: AsyncSession, actor: Principal, room_id: uuid.UUID, after: int
) -> list[RoomEvent]:
    """The room's progress after `after`, for its members and its watchers."""
    await room_for(session, actor, room_id)
    rows = await session.scalars(
        select(RoomEvent).where(RoomEvent.room_id == room_id, RoomEvent.seq > after).order_by(RoomEvent.seq)
    )
    return list(rows)


def active(members: list[Member]) -> list[Member]:
    """The seats that count: every member except one who recused."""
    return [m for m in members if m.outcome != "recused"]


async def members_of(session: AsyncSession, room: Room) -> list[Member]:
    return list(await session.scalars(select(Member).where(Member.room_id == room.id).order_by(Member.seat)))


async def room_for(session: AsyncSession, actor: Principal, room_id: uuid.UUID) -> tuple[Room, Member | None]:
    """The room and the caller's seat in it (None for a watcher: the centre, a supervisor or an auditor).
    Anyone else, the agency and the bidders included, is told the room does not exist."""
    room = await session.get(Room, room_id)
    if room is None:
        raise NotFound("No such evaluation room.")
    member = await session.scalar(
        select(Member).where(Member.room_id == room.id, Member.user_id == actor.user_id)
    )
    if member is not None and member.outcome != "recused":
        return room, member
    if actor.has(*READERS):
        return room, None
    raise NotFound("No such evaluation room.")


async def _seat(
    session: AsyncSession, actor: Principal, room_id: uuid.UUID, now: datetime, *, declared: bool = True
) -> tuple[Room, Member]:
    """The caller's seat in an open room, for an action that changes something (S-04: watchers cannot)."""
    room, member = await room_for(session, actor, room_id)
    if member is None:
        raise Forbidden(
            "Only a member of the committee acts in the room; watchers see it read-only (S-04).", rule="S-04"
        )
    if room.status == "scheduled":
        raise Conflict(f"The room opens at {room.opens_at.astimezone(SHANGHAI).isoformat()}.")
    if room.status != "open":
        raise Conflict(f"The room is {room.status}; nothing more can be done in it.")
    if now >= room.closes_at:
        # The chronograph may not have run yet; the time box ends at its instant all the same (W-11).
        raise Conflict(
            f"The room's time ended at {room.closes_at.astimezone(SHANGHAI).isoformat()}; the centre may extend it."
        )
    if declared and member.declared_at is None:
        raise Forbidden("Sign the no-conflict declaration before entering the room (G-08).", rule="G-08")
    return room, member


def _room_due(now: datetime) -> Any:
    return or_(
        and_(Room.status == "scheduled", Room.opens_at <= now),
        and_(Room.status == "open", Room.closes_at <= now),
    )


async def rooms_due(session: AsyncSession, now: datetime) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    """The chronograph: each room due to open or to close at `now`, as (room, tender, status)."""
    rows = await session.execute(
        select(Room.id, Room.tender_id, Room.status).where(_room_due(now)).order_by(Room.opens_at, Room.id)
    )
    return [(r.id, r.tender_id, r.status) for r in rows]


async def tick_room(session: AsyncSession, store: ObjectStore, room_id: uuid.UUID, now: datetime) -> int:
    """The chronograph: open the room at its time; at the end of the time box a room awaiting signatures is
    finalised (a member who neither signed nor wrote a dissent is deemed to agree, W-11), any other room
    expires until the centre extends it. The room is locked and checked afresh, so of two workers only one
    moves it (the other answers 0); answers how many steps it took."""
    room = await session.scalar(
        select(Room)
        .where(Room.id == room_id, _room_due(now))
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if room is None:
        return 0
    changed = 0
    if room.status == "scheduled":
        room.status = "open"
        room.opened_at = now
        await _event(session, room, "room.opened", now)
        await accounts.record(session, None, "room.open", "room", room.id, now)
        changed += 1
    if room.closes_at <= now:
        if room.phase == "signing":
            await _finalise(session, None, room, store, now)
        else:
            room.status = "expired"
            await _event(session, room, "room.expired", now, phase=room.phase)
            await accounts.record(session, None, "room.expire", "room", room.id, now, phase=room.phase)
        changed += 1
    return changed


async def extend(
    session: AsyncSession, actor: Principal, room_id: uuid.UUID, hours: int, reason: str, now: datetime
) -> Room:
    """The centre extends the time box with a written reason (reopening an expired room)."""
    room = await session.get(Room, room_id)
    if room is None:
        raise NotFound("No such evaluation room.")
    if room.status not in ("open", "expired", "scheduled"):
        raise Conflict(f"The room is {room.status}.")
    base = max(room.closes_at, now)
    room.closes_at = base + timedelta(hours=hours)
    room.extensions = [*room.extensions, {"at": now.isoformat(), "hours": hours, "reason": reason}]
    if room.status == "expired":
        room.status = "open"
    await _event(session, room, "room.extended", now, closes_at=room.closes_at.isoformat(), reason=reason)
    await accounts.record(session, actor, "room.extend", "room", room.id, now, hours=hours, reason=reason)
    return room


async def declare(
    session: AsyncSession,
    actor: Principal,
    room_id: uuid.UUID,
    no_conflict: bool,
    statement: str | None,
    secret: str,
    store: ObjectStore,
    now: datetime,
) -> Member:
    """The no-conflict declaration (G-08) a member signs before entering. A member who declares a conflict
    recuses: the seat is redrawn from the same quota, and the replacement is invited."""
    room, member = await _seat(session, actor, room_id, now, declared=False)
    if member.declared_at is not None:
        return member
    if no_conflict:
        member.declared_at = now
        member.declaration = DECLARATION
        await _event(session, room, "member.entered", now, seat=member.seat)
        await accounts.record(session, actor, "room.enter", "room", room.id, now, seat=member.seat)
        return member
    member.outcome = "recused"
    member.dissent = statement
    await _event(session, room, "member.recused", now, seat=member.seat)
    await accounts.record(
        session, actor, "room.recuse", "room", room.id, now, seat=member.seat, statement=statement
    )
    if member.expert_id is not None:
        row = await session.get(Draw, room.draw_id, with_for_update=True)
        assert row is not None
        invitation = await session.scalar(
            select(Invitation).where(Invitation.draw_id == row.id, Invitation.expert_id == member.expert_id)
        )
        assert invitation is not None
        invitation.status = "recused"
        await _remove(session, row, invitation, None, statement, now)
        row.status = "inviting"
        await session.flush()
        await _apply_selection(session, row, secret, store, now)
    return member


async def vote_chair(
    session: AsyncSession, actor: Principal, room_id: uuid.UUID, seat: int, now: datetime
) -> Room:
    """Each member votes for a chair (组长); a majority of the seats elects."""
    room, member = await _seat(session, actor, room_id, now)
    if room.chair_member_id is not None:
        raise Conflict("The committee has already elected its chair.")
    members = active(await members_of(session, room))
    chosen = next((m for m in members if m.seat == seat), None)
    if chosen is None:
        raise ValidationProblem(
            "No such seat in this committee.", errors=[field_error("seat", "not a member")]
        )
    member.chair_vote = chosen.id
    votes = Counter(m.chair_vote for m in members if m.chair_vote is not None)
    await _event(session, room, "chair.vote", now, seat=member.seat)
    leader, count = votes.most_common(1)[0]
    if count * 2 > len(members):
        room.chair_member_id = leader
        elected = next(m for m in members if m.id == leader)
        await _event(session, room, "chair.elected", now, seat=elected.seat)
        await accounts.record(session, actor, "room.chair", "room", room.id, now, seat=elected.seat)
    return room


async def _chair(
    session: AsyncSession, actor: Principal, room_id: uuid.UUID, now: datetime
) -> tuple[Room, Member]:
    room, member = await _seat(session, actor, room_id, now)
    if room.chair_member_id != member.id:
        raise Forbidden("Only the committee's chair does this.")
    return room, member


async def _evaluable(session: AsyncSession, room: Room) -> dict[uuid.UUID, list[Bid]]:
    """The opened, valid bids of each open lot."""
    lots = [lot for lot in await tenders.lots_of(session, room.tender_id) if lot.status == "open"]
    bids = await submission.evaluable_bids(session, room.tender_id)
    return {lot.id: [b for b in bids if b.lot_id == lot.id] for lot in lots}


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
    room, member = await _seat(session, actor, room_id, now)
    if room.phase != "qualification":
        raise Conflict(f"The qualification review is over; the room is at {room.phase}.")
    tender = await tenders.tender_by_id(session, room.tender_id)
    scheme = await scheme_of(session, tender)
    lots = await _evaluable(session, room)
    if lot_id not in lots:
        raise ValidationProblem(
            "Not an open lot of this tender.", errors=[field_error("lot_id", "not an open lot")]
        )
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
                "The platform established that this bid's deposit was not in place at the bid deadline: it is "
                "rejected (条例 51(6)) and no member can pass it. Leave it out of the review.",
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
    await _event(session, room, "review.submitted", now, seat=member.seat, lot_id=str(lot_id))
    await accounts.record(session, actor, "room.review", "room", room.id, now, lot_id=str(lot_id))
    await _advance(session, room, now)
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
    bid deadline), as the room and the report show it."""
    if bid.rejection_rule is None:
        return None
    found = bid.rejection or {}
    return Rejection(
        bid.rejection_rule,
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
    members = len(active(await members_of(session, room)))
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
    for lot_id, bids in (await _evaluable(session, room)).items():
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


async def _advance(session: AsyncSession, room: Room, now: datetime) -> None:
    """Move the room to the next phase once every seat has done its part of this one. While a recused seat
    is being redrawn the committee is short (W-10) and waits for its replacement."""
    members = active(await members_of(session, room))
    row = await session.get(Draw, room.draw_id)
    assert row is not None
    if len(members) < row.committee_size:
        return
    lots = await _evaluable(session, room)
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
            scheme = await scheme_of(session, tender)
            room.phase = "scoring" if scheme.method == "comprehensive" else "report"
            await _event(session, room, "phase", now, phase=room.phase)
        return
    if room.phase in ("scoring", "report"):
        ready = await _scoring_complete(session, room, members, lots)
        phase = "report" if ready else "scoring"
        if phase != room.phase:
            room.phase = phase
            await _event(session, room, "phase", now, phase=phase)


async def _scoring_complete(
    session: AsyncSession, room: Room, members: list[Member], lots: dict[uuid.UUID, list[Bid]]
) -> bool:
    tender = await tenders.tender_by_id(session, room.tender_id)
    scheme = await scheme_of(session, tender)
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


async def ask(
    session: AsyncSession,
    actor: Principal,
    room_id: uuid.UUID,
    bid_id: uuid.UUID,
    question: str,
    respond_by: datetime,
    now: datetime,
) -> Clarification:
    """The chair asks a bidder to clarify (澄清) an obvious ambiguity; the bidder is not told who asks."""
    room, _member = await _chair(session, actor, room_id, now)
    if room.phase == "signing":
        raise Conflict("The report is drawn up; a clarification now would not be in it.")
    bids = {b.id: b for lot in (await _evaluable(session, room)).values() for b in lot}
    bid = bids.get(bid_id)
    if bid is None:
        raise ValidationProblem(
            "Not a bid under evaluation here.", errors=[field_error("bid_id", "not a bid of the tender")]
        )
    if bid.rejection_rule is not None:
        # 条例 52: a clarification may not change a bid's substance; it cannot supply a missing deposit
        raise RuleViolation(
            bid.rejection_rule,
            "The platform rejected this bid (no deposit at the bid deadline); a clarification cannot cure it.",
            errors=[field_error("bid_id", f"rejected by the platform ({bid.rejection_rule})")],
        )
    if _instant("respond_by", respond_by) <= now or respond_by > room.closes_at:
        raise ValidationProblem(
            "The answer must be due after now and before the room's time box ends.",
            errors=[field_error("respond_by", "outside the room's time")],
        )
    row = Clarification(
        room_id=room.id,
        bid_id=bid.id,
        organisation_id=bid.organisation_id,
        question=question,
        asked_at=now,
        respond_by=respond_by,
    )
    session.add(row)
    await session.flush()
    await tenders.notify(
        session,
        bid.organisation_id,
        room.tender_id,
        "evaluation.clarification",
        "The evaluation committee asks you to clarify your bid.",
        now,
    )
    await _event(session, room, "clarification.asked", now, clarification_id=str(row.id))
    await accounts.record(session, actor, "room.ask", "clarification", row.id, now)
    return row


async def my_clarifications(session: AsyncSession, actor: Principal) -> list[Clarification]:
    """The clarifications asked of the caller's organisation (a bidder)."""
    rows = await session.scalars(
        select(Clarification)
        .where(Clarification.organisation_id == actor.organisation_id)
        .order_by(Clarification.asked_at)
    )
    return list(rows)


async def answer_clarification(
    session: AsyncSession, actor: Principal, clarification_id: uuid.UUID, answer: str, now: datetime
) -> Clarification:
    """The bidder answers once, before the deadline; the answer may not change the bid's substance."""
    row = await session.get(Clarification, clarification_id)
    if row is None or row.organisation_id != actor.organisation_id:
        raise NotFound("No such clarification.")
    if row.answer is not None:
        raise Conflict("This clarification is already answered.")
    if now > row.respond_by:
        raise Conflict("The time to answer has passed.")
    row.answer = answer
    row.answered_at = now
    room = await session.get(Room, row.room_id)
    assert room is not None
    await _event(session, room, "clarification.answered", now, clarification_id=str(row.id))
    await accounts.record(session, actor, "clarification.answer", "clarification", row.id, now)
    return row


async def clarifications_of(session: AsyncSession, room: Room) -> list[Clarification]:
    rows = await session.scalars(
        select(Clarification).where(Clarification.room_id == room.id).order_by(Clarification.asked_at)
    )
    return list(rows)


async def _qualified(session: AsyncSession, room: Room, lot_id: uuid.UUID) -> list[Bid]:
    outcome = (await qualification(session, room)).get(lot_id, {})
    bids = (await _evaluable(session, room)).get(lot_id, [])
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
    room, member = await _seat(session, actor, room_id, now)
    if room.phase not in ("scoring", "report"):
        raise Conflict(f"Scoring follows the qualification review; the room is at {room.phase}.")
    tender = await tenders.tender_by_id(session, room.tender_id)
    scheme = await scheme_of(session, tender)
    if scheme.method != "comprehensive":
        raise Conflict(f"{scheme.method} ranks by price; there is nothing to score by hand.")
    lots = await _evaluable(session, room)
    if lot_id not in lots:
        raise ValidationProblem(
            "Not an open lot of this tender.", errors=[field_error("lot_id", "not an open lot")]
        )
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
                "The platform rejected that bid (no deposit at the bid deadline); it is never scored.",
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
    await _event(session, room, "sheet.submitted", now, seat=member.seat, lot_id=str(lot_id))
    await accounts.record(
        session, actor, "room.score", "score_sheet", sheet.id, now, submission=sheet.submissions
    )
    await _advance(session, room, now)
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
    room, _chair_member = await _chair(session, actor, room_id, now)
    if room.phase not in ("scoring", "report"):
        raise Conflict(f"The room is at {room.phase}; sheets can no longer be reopened.")
    target = next((m for m in active(await members_of(session, room)) if m.seat == seat), None)
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
    await _event(session, room, "sheet.reopened", now, seat=seat, lot_id=str(lot_id))
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
    room, member = await _seat(session, actor, room_id, now)
    if room.phase not in ("scoring", "report"):
        raise Conflict(f"Scores are justified while the sheets are open; the room is at {room.phase}.")
    sheet = await session.scalar(
        select(ScoreSheet).where(ScoreSheet.member_id == member.id, ScoreSheet.lot_id == lot_id)
    )
    if sheet is None or sheet.submitted_at is None:
        raise Conflict("Submit your sheet first.")
    tender = await tenders.tender_by_id(session, room.tender_id)
    scheme = await scheme_of(session, tender)
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
    await _event(session, room, "score.justified", now, seat=member.seat, lot_id=str(lot_id))
    await accounts.record(session, actor, "room.justify", "score_sheet", sheet.id, now, bid_id=bid_id)
    await _advance(session, room, now)
    return sheet


async def sheets_visible(
    session: AsyncSession, room: Room, member: Member | None, lot_id: uuid.UUID
) -> list[tuple[Member, ScoreSheet]]:
    """The sheets the caller may see: a member sees the others' only after submitting their own; watchers
    see the submitted ones."""
    members = {m.id: m for m in await members_of(session, room)}
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
    scheme = await scheme_of(session, tender)
    members = {str(m.id): m for m in await members_of(session, room)}
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


# ---------------------------------------------------------------- the report


async def build_report(session: AsyncSession, room: Room, now: datetime) -> dict[str, Any]:
    """The report (评标报告) as data: committee, per lot the qualification outcome with reasons, every
    member's scores, abnormal scores and their justification, the ranking and at most three candidates
    (W-11), the clarifications. The platform builds it from what the room recorded; nobody types it."""
    tender = await tenders.tender_by_id(session, room.tender_id)
    scheme = await scheme_of(session, tender)
    row = await session.get(Draw, room.draw_id)
    assert row is not None
    members = active(await members_of(session, room))
    seat_of = {str(m.id): m.seat for m in members}
    outcome = await qualification(session, room)
    lots_out = []
    profile = profile_for(tender.sector, tender.method)
    limit = min(scheme.max_candidates, profile.max_candidates)
    evaluable = await _evaluable(session, room)
    for lot in await tenders.lots_of(session, tender.id):
        if lot.id not in evaluable:
            continue
        bids = evaluable[lot.id]
        names = {b.id: await accounts.get_organisation(session, b.organisation_id) for b in bids}
        qualified = [b for b in bids if not outcome[lot.id].get(b.id)]
        sheets = (
            await session.scalars(
                select(ScoreSheet).where(
                    ScoreSheet.room_id == room.id,
                    ScoreSheet.lot_id == lot.id,
                    ScoreSheet.submitted_at.is_not(None),
                )
            )
        ).all()
        sheets = [s for s in sheets if str(s.member_id) in seat_of]
        prices = [scoring.BidPrice(str(b.id), b.declared_price_fen or 0) for b in qualified]
        result = scoring.aggregate(
            scheme,
            prices,
            {str(s.member_id): s.scores for s in sheets},
            (row.seed_hex or row.commitment).encode(),
        )
        ranked = {r.bid_id: r for r in result.ranking}
        candidates = result.candidates[:limit]
        lots_out.append(
            {
                "lot_id": str(lot.id),
                "number": lot.number,
                "title": lot.title,
                "method": scheme.method,
                "criteria": _criteria_rows(scheme),
                "qualification": [{"code": c, "title": t} for c, t in scheme.qualification],
                "bids": [
                    {
                        "bid_id": str(b.id),
                        "bidder": names[b.id].name,
                        "credit_code": names[b.id].credit_code,
                        "price_fen": b.declared_price_fen or 0,
                        "qualified": not outcome[lot.id].get(b.id),
                        "rejections": [rejection_json(r) for r in outcome[lot.id].get(b.id, [])],
                        "rank": ranked[str(b.id)].rank if str(b.id) in ranked else None,
                        "total_cp": ranked[str(b.id)].total_cp if str(b.id) in ranked else None,
                        "leaf_cp": ranked[str(b.id)].leaf_cp if str(b.id) in ranked else {},
                        "tie_broken": ranked[str(b.id)].tie_broken if str(b.id) in ranked else False,
                    }
                    for b in bids
                ],
                "sheets": [
                    {
                        "seat": seat_of[str(s.member_id)],
                        "bid_id": bid_id,
                        "scores": scores,
                        "total_cp": sum(scores.values()),
                    }
                    for s in sorted(sheets, key=lambda s: seat_of[str(s.member_id)])
                    for bid_id, scores in sorted(s.scores.items())
                ],
                "abnormal": await abnormal(session, room, lot.id),
                "candidates": [
                    {
                        "rank": i + 1,
                        "bid_id": bid_id,
                        "bidder": names[uuid.UUID(bid_id)].name,
                        "price_fen": ranked[bid_id].price_fen,
                        "total_cp": ranked[bid_id].total_cp,
                    }
                    for i, bid_id in enumerate(candidates)
                ],
            }
        )
    bidder_names = {}
    for c in await clarifications_of(session, room):
        if c.organisation_id not in bidder_names:
            bidder_names[c.organisation_id] = (
                await accounts.get_organisation(session, c.organisation_id)
            ).name
    chair = room.chair_member_id
    return {
        "version": report.REPORT_VERSION,
        "tender": {
            "id": str(tender.id),
            "code": tender.code,
            "title": tender.title,
            "tenderer": tender.tenderer_name,
            "evaluation_method": tender.evaluation_method,
        },
        "generated_at": now.astimezone(SHANGHAI).isoformat(),
        "draw": {"id": str(row.id), "commitment": row.commitment, "seed": row.seed_hex},
        "committee": [
            {"seat": m.seat, "name": m.name, "kind": m.kind, "specialty": m.specialty, "chair": m.id == chair}
            for m in members
        ],
        "lots": lots_out,
        "clarifications": [
            {
                "bidder": bidder_names[c.organisation_id],
                "question": c.question,
                "answer": c.answer,
                "asked_at": c.asked_at.astimezone(SHANGHAI).isoformat(),
                "answered_at": c.answered_at.astimezone(SHANGHAI).isoformat() if c.answered_at else None,
            }
            for c in await clarifications_of(session, room)
        ],
        "notes": [
            f"Ties are broken by SHA-256(draw seed ‖ bid id), lowest first; at most {limit} candidates per lot (W-11).",
        ],
    }


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


def _criteria_rows(scheme: scoring.Scheme) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def walk(nodes: tuple[scoring.Criterion, ...], depth: int) -> None:
        for c in nodes:
            rows.append(
                {"code": c.code, "title": c.title, "kind": c.kind, "max_cp": c.max_cp, "depth": depth}
            )
            walk(c.children, depth + 1)

    walk(scheme.criteria, 0)
    return rows


async def make_report(
    session: AsyncSession, actor: Principal, room_id: uuid.UUID, store: ObjectStore, now: datetime
) -> Room:
    """The chair has the platform draw up the report once every step is done: every abnormal score revised
    or justified (G-10). It is hashed, rendered as HTML and PDF, and put to the members for signature."""
    room, _member = await _chair(session, actor, room_id, now)
    await _advance(session, room, now)
    if room.phase != "report":
        if room.phase == "scoring":
            raise RuleViolation(
                "G-10",
                "Every member must submit every sheet, and every abnormal score be revised or justified, first.",
            )
        raise Conflict(f"The room is at {room.phase}.")
    body = await build_report(session, room, now)
    digest = report.report_hash(body)
    html = await asyncio.to_thread(report.render_html, body)
    pdf = await asyncio.to_thread(report.render_pdf, body)
    tender = await tenders.tender_by_id(session, room.tender_id)
    base = f"records/{tender.code}/evaluation/report-{digest[:16]}"
    await store.put_bytes(f"{base}.html", html.encode(), content_type="text/html; charset=utf-8")
    await store.put_bytes(f"{base}.pdf", pdf, content_type="application/pdf")
    room.report = body
    room.report_hash = digest
    room.report_html_key = f"{base}.html"
    room.report_pdf_key = f"{base}.pdf"
    room.report_at = now
    room.phase = "signing"
    for m in await members_of(session, room):
        if m.outcome != "recused":
            m.outcome = None
    await _event(session, room, "report.ready", now, report_hash=digest)
    await accounts.record(session, actor, "room.report", "room", room.id, now, report_hash=digest)
    return room


async def sign(
    session: AsyncSession,
    actor: Principal,
    room_id: uuid.UUID,
    report_hash: str,
    signature_b64: str | None,
    dissent: str | None,
    store: ObjectStore,
    now: datetime,
) -> Member:
    """A member signs the report's hash with their Ed25519 key, or refuses with a written dissent (W-11).
    When every seat has answered, the report is final and goes to trading for the candidates' publicity."""
    room, member = await _seat(session, actor, room_id, now)
    if room.phase != "signing" or room.report_hash is None:
        raise Conflict(f"There is no report to sign yet; the room is at {room.phase}.")
    if report_hash != room.report_hash:
        raise ValidationProblem(
            "That is not the hash of this room's report; fetch the report again and sign its hash.",
            errors=[field_error("report_hash", "differs from the report's hash")],
        )
    if member.outcome is not None:
        raise Conflict(f"You have already answered: {member.outcome}.")
    if signature_b64 is not None:
        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except (ValueError, TypeError) as exc:
            raise ValidationProblem(
                "The signature is not base64.", errors=[field_error("signature", "not base64")]
            ) from exc
        keys = await accounts.signing_keys_of(session, member.user_id)
        good = next(
            (
                k
                for k in keys
                if report.verify_signature(base64.b64decode(k.public_key), report_hash, signature)
            ),
            None,
        )
        if good is None:
            raise ValidationProblem(
                "The signature does not verify under any of your registered signing keys.",
                errors=[field_error("signature", "does not verify")],
            )
        member.outcome = "signed"
        member.signature = signature_b64
        member.key_fingerprint = good.fingerprint
    else:
        member.outcome = "dissent"
        member.dissent = dissent
    member.signed_at = now
    await session.flush()
    await _event(session, room, "report.signed" if signature_b64 else "report.dissent", now, seat=member.seat)
    await accounts.record(session, actor, "room.sign", "room", room.id, now, outcome=member.outcome)
    members = active(await members_of(session, room))
    if all(m.outcome is not None for m in members):
        await _finalise(session, actor, room, store, now)
    return member


def signatures_of(members: list[Member]) -> list[dict[str, Any]]:
    return [
        {
            "seat": m.seat,
            "name": m.name,
            "outcome": m.outcome or "pending",
            "at": m.signed_at.astimezone(SHANGHAI).isoformat() if m.signed_at else None,
            "key_fingerprint": m.key_fingerprint,
            "dissent": m.dissent,
        }
        for m in members
    ]


async def _finalise(
    session: AsyncSession, actor: Principal | None, room: Room, store: ObjectStore, now: datetime
) -> None:
    """Close the room on the signed report: members who neither signed nor dissented by the end of the time
    box are deemed to agree (W-11). The final document carries the signatures; trading publishes the
    candidates."""
    assert room.report is not None and room.report_hash is not None
    members = active(await members_of(session, room))
    for m in members:
        if m.outcome is None:
            m.outcome = "deemed_agreed"
    signatures = signatures_of(members)
    html = await asyncio.to_thread(report.render_html, room.report, signatures)
    pdf = await asyncio.to_thread(report.render_pdf, room.report, signatures)
    tender = await tenders.tender_by_id(session, room.tender_id)
    base = f"records/{tender.code}/evaluation/report-{room.report_hash[:16]}-signed"
    await store.put_bytes(f"{base}.html", html.encode(), content_type="text/html; charset=utf-8")
    info = await store.put_bytes(f"{base}.pdf", pdf, content_type="application/pdf")
    room.report_html_key = f"{base}.html"
    room.report_pdf_key = f"{base}.pdf"
    room.status = "closed"
    room.phase = "closed"
    room.closed_at = now
    room.outcome = "report_signed"
    chair = next((m for m in members if m.id == room.chair_member_id), members[0])
    committee = [
        {
            "name": m.name,
            "kind": "expert" if m.kind == "expert" else "representative",
            "signed": m.outcome == "signed",
            "dissent": m.dissent if m.outcome == "dissent" else None,
            "seat": m.seat,
            "deemed_agreed": m.outcome == "deemed_agreed",
        }
        for m in members
    ]
    candidates = [
        (uuid.UUID(lot["lot_id"]), [uuid.UUID(c["bid_id"]) for c in lot["candidates"]])
        for lot in room.report["lots"]
    ]
    await awards.record_report(
        session,
        actor,
        room.tender_id,
        committee,
        candidates,
        awards.StoredFile(
            filename=f"{tender.code}-evaluation-report.pdf",
            object_key=f"{base}.pdf",
            sha256=info.sha256 or hashlib.sha256(pdf).hexdigest(),
            size=len(pdf),
            uploaded_by=chair.user_id,
        ),
        room.report_hash,
        now,
    )
    for m in members:
        if m.expert_id is not None:
            await pool.record_credit(session, None, m.expert_id, "attended", room.tender_id, None, now)
    for lot in room.report["lots"]:
        for a in lot["abnormal"]:
            m = next(x for x in members if x.seat == a["seat"])
            if m.expert_id is not None and not a["revised"]:
                await pool.record_credit(
                    session, None, m.expert_id, "abnormal_score", room.tender_id, a["justification"], now
                )
    row = await session.get(Draw, room.draw_id)
    assert row is not None
    row.published_at = now
    await _event(session, room, "room.closed", now, outcome=room.outcome)
    await accounts.record(session, actor, "room.close", "room", room.id, now, report_hash=room.report_hash)


def names_public(row: Draw) -> bool:
    """Whether the committee's names may be shown to the agency and the bidders: only once the result is
    published with the candidates."""
    return row.published_at is not None


# ---------------------------------------------------------------- W-18 signals, for the committee


SIGNAL_WATCHERS = ("supervisor", "auditor")
BEFORE_THE_OPENING_CLOSED = (
    TenderStatus.DRAFT,
    TenderStatus.PUBLISHED,
    TenderStatus.TENDERING,
    TenderStatus.OPENING,
)


async def _seated(session: AsyncSession, actor: Principal, tender_id: uuid.UUID) -> bool:
    """True when the caller is a drawn expert who accepted and declared no conflict in one of the tender's
    rooms that was not cancelled, and has not recused."""
    seat = await session.scalar(
        select(Member.id)
        .join(Room, Room.id == Member.room_id)
        .where(
            Room.tender_id == tender_id,
            Room.status != "cancelled",
            Member.user_id == actor.user_id,
            Member.kind == "expert",
            Member.declared_at.is_not(None),
            or_(Member.outcome.is_(None), Member.outcome != "recused"),
        )
        .limit(1)
    )
    return seat is not None


async def collusion_signals(session: AsyncSession, actor: Principal, tender_id: uuid.UUID) -> list[Any]:
    """The tender's W-18 signals (identical files or metadata, one device or address, one signing key, one
    paying account) for the experts of its committee, supervisors and auditors, once the opening has closed.

    Before that they would say who obtained the documents or bid (W-20), so nobody sees them, not even those
    who will; an expert of no committee of this tender is told the signals do not exist (404)."""
    tender = await tenders.tender_by_id(session, tender_id)
    if not actor.has(*SIGNAL_WATCHERS) and not await _seated(session, actor, tender.id):
        raise NotFound("No such tender's signals.")
    if tender.opened_at is None or tender.status in BEFORE_THE_OPENING_CLOSED:
        raise Forbidden(
            "Collusion signals name bidders, so they are shown only once the opening has closed (W-20).",
            rule="W-20",
        )
    return await signals.signals_of(session, tender.id)
