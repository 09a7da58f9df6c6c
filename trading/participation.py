"""Who may take part in a procedure, checked as a trade is drafted and published: the procedure the profile
names, the evaluation methods it allows, the suppliers it invites (at least 3, G-13; one for a single
source) and a single source's announcement of at least 5 working days (G-14)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.models import Organisation
from rules.calendar import WorkingCalendar, local_date
from rules.profiles import ProcedureProfile, ProfileError, profile_for
from storage.problems import RuleViolation, ValidationProblem, field_error
from trading.models import Tender


def check_announcement(
    cal: WorkingCalendar, profile: ProcedureProfile, tender: Tender, now: datetime
) -> date | None:
    """G-14: a single source stays announced for at least 5 working days before its documents go out;
    answers the announcement's last day (None where the procedure has no announcement)."""
    if profile.announcement_working_days is None:
        return None
    last = cal.add_working_days(local_date(now), profile.announcement_working_days)
    if local_date(tender.documents_from) <= last:
        earliest = cal.add_working_days(last, 1)
        raise RuleViolation(
            profile.rule("announcement_working_days") or "G-14",
            f"A single source is announced for {profile.announcement_working_days} working days, through "
            f"{last.isoformat()}; the documents may go out from {earliest.isoformat()}.",
            earliest_documents_day=earliest.isoformat(),
            errors=[field_error("documents_from", f"from {earliest.isoformat()}")],
        )
    return last


async def announcement(
    session: AsyncSession, tender: Tender, invited: list[uuid.UUID], until: date | None
) -> dict[str, Any]:
    """The single source's announcement on the notice (G-14): the supplier, the reasons, until when anyone
    may object."""
    if until is None:
        return {}
    supplier = await accounts.get_organisation(session, invited[0])
    return {
        "single_source": {
            "supplier": supplier.name,
            "credit_code": supplier.credit_code,
            "reasons": tender.qualification,
            "objections_until": until.isoformat(),
            "rule": "G-14",
        }
    }


def procedure(sector: str, method: str) -> ProcedureProfile:
    """The profile of a procedure the platform runs, or a problem naming the method."""
    try:
        return profile_for(sector, method)
    except ProfileError as exc:
        raise ValidationProblem(str(exc), errors=[field_error("method", str(exc))]) from exc


def check_terms(
    profile: ProcedureProfile, evaluation_method: str, invited: Sequence[object], envelopes: int = 1
) -> None:
    """The evaluation method the procedure allows, invitations only where it admits the invited alone, and
    two envelopes (双信封) only where the procedure has them."""
    if profile.evaluation_methods and evaluation_method not in profile.evaluation_methods:
        allowed = ", ".join(profile.evaluation_methods)
        raise ValidationProblem(
            f"{profile.title} is evaluated by {allowed}.", errors=[field_error("evaluation_method", allowed)]
        )
    if invited and not profile.invitation_only:
        raise ValidationProblem(
            f"{profile.title} admits every supplier; invitations are for invited procedures.",
            errors=[field_error("invited", "not for this procedure")],
        )
    if envelopes not in profile.envelope_counts:
        raise ValidationProblem(
            f"{profile.title} takes bids of {' or '.join(map(str, profile.envelope_counts))} envelope(s).",
            errors=[field_error("envelopes", "not for this procedure")],
        )


async def check_invited(session: AsyncSession, profile: ProcedureProfile, tender: Tender) -> list[uuid.UUID]:
    """Before an invited procedure is published: at least `min_invited` distinct active suppliers (G-13)."""
    invited = list(dict.fromkeys(uuid.UUID(str(org)) for org in tender.invited_organisations))
    if not profile.invitation_only:
        return []
    rule = profile.rule("min_invited") or "G-13"
    if profile.max_invited is not None and len(invited) > profile.max_invited:
        raise ValidationProblem(
            f"{profile.title} names at most {profile.max_invited} supplier(s); {len(invited)} are named.",
            errors=[field_error("invited", f"at most {profile.max_invited}")],
        )
    if len(invited) < profile.min_invited:
        raise RuleViolation(
            rule,
            f"{profile.title} invites at least {profile.min_invited} suppliers; {len(invited)} are named.",
            errors=[field_error("invited", f"at least {profile.min_invited}")],
        )
    for i, org_id in enumerate(invited):
        org = await session.get(Organisation, org_id)
        if org is None or org.status != "active" or org.kind != "bidder":
            raise ValidationProblem(
                "Invite active supplier (bidder) organisations.",
                errors=[field_error(f"invited[{i}]", "not an active supplier")],
            )
    return invited
