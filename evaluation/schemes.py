"""The tender's evaluation scheme (评标办法): fixed by the agency with the documents, read by anyone who may
see the tender, and applied by the room (`evaluation.reviews`, `evaluation.reporting`).

Services flush but never commit: the request or job that calls them owns the transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

import accounts.service as accounts
from accounts.security import Principal
from evaluation import scoring
from evaluation.models import EvaluationScheme
from rules.profiles import ProcedureProfile, profile_for
from storage.problems import Conflict, RuleViolation, ValidationProblem, field_error
from trading import tenders
from trading.lifecycle import TenderStatus
from trading.models import Tender


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
    _check_price_band(profile_for(tender.sector, tender.method), scheme)
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


def _check_price_band(profile: ProcedureProfile, scheme: scoring.Scheme) -> None:
    """G-05's band for the procedure (competitive consultation: the price worth 30–60 points for goods,
    10–30 for services), which a scheme alone does not know."""
    for category, low, high in profile.price_weight_band_cp:
        if scheme.method != "comprehensive" or scheme.category != category:
            continue
        price = next(c for c in scoring.leaves(scheme) if c.kind == scoring.PRICE)
        if not low <= price.max_cp <= high:
            why = f"for {category} in {profile.title} the price is worth {low // 100}–{high // 100} points"
            raise RuleViolation(
                "G-05",
                f"{why}, not {scoring.cp_text(price.max_cp)} (G-05).",
                errors=[field_error("criteria", why)],
            )


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
