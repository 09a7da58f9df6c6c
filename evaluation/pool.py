"""Use cases of the expert pool (专家库): the specialty tree, experts and their import, self-service
enrolment and proposed changes, declared relationships (回避, G-08) and unavailable days, and the credit
record (信用记录) the draw checks.

Services flush but never commit: the request or job that calls them owns the transaction. Every change is
written to the audit trail (`accounts.service.record`) with field names only, never phone or email values.

Other packages call: `seed_specialties`, `get_expert`, `expert_of_user`, `specialties_of`,
`record_credit`, `credit_score` and `credit_scores` (one grouped query for the whole pool).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import io
import re
import uuid
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Final

import msgspec
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from accounts import service as accounts
from accounts import uscc
from accounts.models import User
from accounts.security import Principal
from evaluation import pool_schemas as schemas
from evaluation.models import (
    CreditEvent,
    Expert,
    ExpertRelationship,
    ExpertSpecialty,
    ExpertUnavailability,
    Specialty,
)
from evaluation.taxonomy import DEFAULT_SPECIALTIES
from rules.calendar import end_of_day, local_date, start_of_day
from storage.db import new_id
from storage.pagination import MAX_CURSOR_LENGTH, check_limit
from storage.problems import (
    Conflict,
    NotFound,
    PreconditionFailed,
    Problem,
    ValidationProblem,
    field_error,
)
from trading import tenders

# ---------------------------------------------------------------- rules as data

CODE_PATTERN: Final = re.compile(r"^[A-Z][0-9A-Z]{0,19}$")
NUMBER_PATTERN: Final = re.compile(r"^E[0-9]{6}$")
MAX_NUMBER: Final = 999_999

STATUSES: Final = frozenset({"pending", "active", "suspended", "retired", "rejected"})
# The expert's state machine: (from, to) -> the move that makes it. The centre's PATCH may only suspend,
# reinstate, retire and reappoint; approval and rejection have their own routes; an import states what
# the centre's own register says and is the one writer outside this table.
STATUS_MOVES: Final[dict[tuple[str, str], str]] = {
    ("pending", "active"): "approve",
    ("pending", "rejected"): "reject",
    ("rejected", "pending"): "enrol",
    ("active", "suspended"): "suspend",
    ("active", "retired"): "retire",
    ("suspended", "active"): "reinstate",
    ("suspended", "retired"): "retire",
    ("retired", "active"): "reappoint",
}
CENTRE_MOVES: Final = frozenset({"suspend", "retire", "reinstate", "reappoint"})
# Profiles an expert may still change (proposals for approved ones, the application itself when pending).
EDITABLE: Final = frozenset({"pending", "active", "suspended"})

# Points each kind of credit event deducts; `other` takes the points the centre gives (1 to 20).
CREDIT_POINTS: Final[dict[str, int | None]] = {
    "attended": 0,
    "late": 2,
    "declined": 1,
    "no_response": 2,
    "absent": 10,
    "abnormal_score": 2,
    "complaint_upheld": 10,
    "other": None,
}
OTHER_POINTS: Final = range(1, 21)
CREDIT_START: Final = 100
CREDIT_YEARS: Final = 2

MAX_UNAVAILABLE_DAYS: Final = 366
PROFILE_FIELDS: Final = (
    "name",
    "region_code",
    "title",
    "specialties",
    "phone",
    "email",
    "term_start",
    "term_end",
)
PERSONAL_FIELDS: Final = frozenset({"phone", "email"})

# The import file (CSV or .xlsx): a header row naming these columns, in any order.
IMPORT_COLUMNS: Final = (
    "number",
    "name",
    "username",
    "employer_credit_code",
    "employer_name",
    "region_code",
    "title",
    "specialties",
    "status",
    "term_start",
    "term_end",
    "phone",
    "email",
)
REQUIRED_COLUMNS: Final = frozenset(
    {"name", "employer_credit_code", "employer_name", "region_code", "title", "specialties"}
)
CSV_TYPES: Final = frozenset({"text/csv", "application/csv"})
XLSX_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_IMPORT_BYTES: Final = 10 * 1024 * 1024
MAX_IMPORT_ROWS: Final = 60_000
MAX_XLSX_UNZIPPED: Final = 200 * 1024 * 1024  # a workbook that inflates beyond this is refused (zip bomb)
MAX_REPORTED_ERRORS: Final = 100
IMPORT_STATUSES: Final = ("active", "suspended", "retired")

_IN_CHUNK: Final = 900  # values per IN (…) list: well under SQLite's and asyncpg's bind limits
_NUMBERING_LOCK: Final = 0x67677A79_65787074  # "ggzyexpt": PostgreSQL advisory lock for numbering
_PHONE: Final = re.compile(r"^\+?[0-9][0-9 ()-]{2,29}$")
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _problem(message: str, *errors: tuple[str, str]) -> ValidationProblem:
    return ValidationProblem(message, errors=[field_error(f, m) for f, m in errors])


def _chunks(values: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# ---------------------------------------------------------------- the specialty tree


def check_tree(nodes: Sequence[schemas.SpecialtyIn]) -> list[dict[str, Any]]:
    """The `errors[]` of a specialty tree (empty when it is sound): codes unique and well formed, every
    parent in the same tree and a proper prefix of its child. A parent strictly shorter than its child
    cannot close a cycle, but the walk up is checked anyway so the rule does not rest on that argument."""
    errors: list[dict[str, Any]] = []
    first: dict[str, int] = {}
    for index, node in enumerate(nodes):
        if not CODE_PATTERN.match(node.code):
            errors.append(field_error(f"[{index}].code", "not a specialty code"))
        if node.code in first:
            errors.append(field_error(f"[{index}].code", f"repeats [{first[node.code]}]"))
        first.setdefault(node.code, index)
    parents = {n.code: n.parent_code for n in nodes}
    for index, node in enumerate(nodes):
        parent = node.parent_code
        if parent is None:
            continue
        if parent not in parents:
            errors.append(field_error(f"[{index}].parent_code", f"{parent} is not in the tree"))
        elif not (node.code.startswith(parent) and len(parent) < len(node.code)):
            errors.append(
                field_error(f"[{index}].parent_code", f"{parent} is not a proper prefix of {node.code}")
            )
        else:
            seen: set[str] = {node.code}
            walk: str | None = parent
            while walk is not None:
                if walk in seen:
                    errors.append(field_error(f"[{index}].parent_code", "the parents form a cycle"))
                    break
                seen.add(walk)
                walk = parents.get(walk)
    return errors


async def specialty_tree(session: AsyncSession) -> list[Specialty]:
    """The specialty tree, in code order."""
    return list(await session.scalars(select(Specialty).order_by(Specialty.code)))


async def replace_specialties(
    session: AsyncSession, actor: Principal, nodes: Sequence[schemas.SpecialtyIn], now: datetime
) -> list[Specialty]:
    """Make the tree exactly `nodes`: new codes are added, known ones renamed, re-parented, switched on
    or off; a code left out is removed, unless an expert holds it (409: deactivate it instead, so the
    experts keep it and nobody new can choose it)."""
    errors = check_tree(nodes)
    if errors:
        raise ValidationProblem("The specialty tree is not sound; see errors.", errors=errors)
    current = {s.code: s for s in await specialty_tree(session)}
    wanted = {n.code: n for n in nodes}
    gone = sorted(set(current) - set(wanted))
    held: list[str] = []
    for chunk in _chunks(gone):
        held += await session.scalars(
            select(ExpertSpecialty.code).where(ExpertSpecialty.code.in_(chunk)).distinct()
        )
    if held:
        raise Conflict(
            f"Experts hold {', '.join(sorted(held))}; keep them in the tree with active: false instead.",
            errors=[field_error("body", f"{code} is held by experts") for code in sorted(held)],
        )
    for chunk in _chunks(gone):
        await session.execute(delete(Specialty).where(Specialty.code.in_(chunk)))
    added = changed = 0
    for code, node in wanted.items():
        row = current.get(code)
        if row is None:
            session.add(
                Specialty(code=code, parent_code=node.parent_code, name=node.name, active=node.active)
            )
            added += 1
        elif (row.parent_code, row.name, row.active) != (node.parent_code, node.name, node.active):
            row.parent_code, row.name, row.active = node.parent_code, node.name, node.active
            changed += 1
    await session.flush()
    await accounts.record(
        session,
        actor,
        "specialties.replace",
        "specialty_tree",
        "tree",
        now,
        added=added,
        changed=changed,
        removed=gone,
    )
    return await specialty_tree(session)


async def seed_specialties(session: AsyncSession, now: datetime) -> int:
    """Add the codes of the default tree (`evaluation.taxonomy`) that are missing; codes the centre has
    already (renamed, deactivated) are left alone. Idempotent; answers how many codes were added."""
    have = set(await session.scalars(select(Specialty.code)))
    missing = [(c, p, n) for c, p, n in DEFAULT_SPECIALTIES if c not in have]
    session.add_all(Specialty(code=c, parent_code=p, name=n, active=True) for c, p, n in missing)
    if missing:
        await session.flush()
        await accounts.record(
            session, None, "specialties.seed", "specialty_tree", "tree", now, added=len(missing)
        )
    return len(missing)


async def _active_codes(session: AsyncSession) -> dict[str, bool]:
    return {code: active for code, active in await session.execute(select(Specialty.code, Specialty.active))}


def _code_errors(
    codes: Sequence[str], tree: dict[str, bool], held: Iterable[str], where: str
) -> list[tuple[str, str]]:
    """Errors for codes not in the tree, repeated, or inactive and not already held by the expert."""
    errors: list[tuple[str, str]] = []
    kept = set(held)
    seen: set[str] = set()
    for index, code in enumerate(codes):
        at = f"{where}[{index}]"
        if code in seen:
            errors.append((at, f"{code} is listed twice"))
        elif code not in tree:
            errors.append((at, f"{code} is not in the specialty tree"))
        elif not tree[code] and code not in kept:
            errors.append((at, f"{code} is no longer in use (inactive)"))
        seen.add(code)
    return errors


# ---------------------------------------------------------------- experts: reading


async def get_expert(session: AsyncSession, expert_id: uuid.UUID) -> Expert:
    """The expert, or 404."""
    expert = await session.get(Expert, expert_id)
    if expert is None:
        raise NotFound("No such expert.")
    return expert


async def expert_of_user(session: AsyncSession, user_id: uuid.UUID) -> Expert | None:
    """The expert profile linked to a user, if any."""
    return await session.scalar(select(Expert).where(Expert.user_id == user_id))


async def my_expert(session: AsyncSession, actor: Principal) -> Expert:
    """The caller's own expert profile, or 404 telling them to enrol."""
    expert = await expert_of_user(session, actor.user_id)
    if expert is None:
        raise NotFound("You have no expert profile yet; enrol first (POST /api/v1/evaluation/me/enrol).")
    return expert


async def specialties_of(
    session: AsyncSession, expert_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """Each expert's specialty codes, sorted (experts without any are absent)."""
    out: dict[uuid.UUID, list[str]] = defaultdict(list)
    for chunk in _chunks(list(expert_ids)):
        rows = await session.execute(
            select(ExpertSpecialty.expert_id, ExpertSpecialty.code)
            .where(ExpertSpecialty.expert_id.in_(chunk))
            .order_by(ExpertSpecialty.code)
        )
        for expert_id, code in rows:
            out[expert_id].append(code)
    return dict(out)


def _encode_cursor(number: str) -> str:
    return base64.urlsafe_b64encode(number.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        number = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not NUMBER_PATTERN.match(number):
            raise ValueError("not a number")
        return number
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _problem("The cursor is not one this server issued.", ("cursor", "malformed cursor")) from exc


async def list_experts(
    session: AsyncSession,
    *,
    status: str | None,
    specialty: str | None,
    employer_credit_code: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Expert], str | None]:
    """Experts by number, one page at a time (keyset on the number), filtered by status, by a specialty
    code prefix (A01 finds A0101 and A0102), by employer, and by a part of the name."""
    limit = check_limit(limit)
    query = select(Expert).order_by(Expert.number).limit(limit + 1)
    if status is not None:
        if status not in STATUSES:
            raise _problem("Unknown status.", ("status", f"one of {', '.join(sorted(STATUSES))}"))
        query = query.where(Expert.status == status)
    if specialty is not None:
        if not CODE_PATTERN.match(specialty):
            raise _problem("specialty must be a specialty code or its prefix.", ("specialty", "not a code"))
        held = select(ExpertSpecialty.expert_id).where(
            ExpertSpecialty.expert_id == Expert.id, ExpertSpecialty.code.startswith(specialty)
        )
        query = query.where(held.exists())
    if employer_credit_code is not None:
        try:
            code = uscc.validate_uscc(employer_credit_code)
        except uscc.InvalidUSCC as exc:
            raise _problem(str(exc), ("employer_credit_code", str(exc))) from exc
        query = query.where(Expert.employer_credit_code == code)
    if q is not None:
        if not 1 <= len(q) <= 100:
            raise _problem("q must have 1 to 100 characters.", ("q", "1 to 100 characters"))
        query = query.where(Expert.name.contains(q, autoescape=True))
    if cursor is not None:
        query = query.where(Expert.number > _decode_cursor(cursor))
    rows = list(await session.scalars(query))
    if len(rows) > limit:
        return rows[:limit], _encode_cursor(rows[limit - 1].number)
    return rows, None


async def relationships_of(session: AsyncSession, expert_id: uuid.UUID) -> list[ExpertRelationship]:
    """An expert's declared relationships, in the order declared."""
    query = (
        select(ExpertRelationship)
        .where(ExpertRelationship.expert_id == expert_id)
        .order_by(ExpertRelationship.declared_at, ExpertRelationship.id)
    )
    return list(await session.scalars(query))


async def unavailability_of(session: AsyncSession, expert_id: uuid.UUID) -> list[ExpertUnavailability]:
    """An expert's unavailable periods, by first day."""
    query = (
        select(ExpertUnavailability)
        .where(ExpertUnavailability.expert_id == expert_id)
        .order_by(ExpertUnavailability.start_on, ExpertUnavailability.id)
    )
    return list(await session.scalars(query))


# ---------------------------------------------------------------- numbering


async def _next_numbers(session: AsyncSession, count: int) -> list[str]:
    """`count` fresh numbers after the highest one. Writers are serialised first: SQLite runs every
    write transaction as BEGIN IMMEDIATE; PostgreSQL takes a transaction advisory lock, so two imports or
    enrolments at once cannot pick the same number."""
    if count == 0:
        return []
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _NUMBERING_LOCK})
    highest = await session.scalar(select(func.max(Expert.number)).where(Expert.number.like("E%")))
    start = int(highest[1:]) + 1 if highest and NUMBER_PATTERN.match(highest) else 1
    if start + count - 1 > MAX_NUMBER:
        raise Conflict("The expert numbers E000001 to E999999 are used up.")
    return [f"E{n:06d}" for n in range(start, start + count)]


# ---------------------------------------------------------------- experts: the centre's changes


def _check_version(expert: Expert, if_match: int | None) -> None:
    if if_match is not None and if_match != expert.version:
        raise PreconditionFailed(
            f"The expert is at version {expert.version}, not {if_match}; reload it and try again."
        )


def _move(expert: Expert, to: str, allowed: frozenset[str]) -> str:
    """Apply one status move of `STATUS_MOVES` that `allowed` permits; the move's name, or a 409."""
    move = STATUS_MOVES.get((expert.status, to))
    if move is None or move not in allowed:
        can = sorted(t for (f, t), m in STATUS_MOVES.items() if f == expert.status and m in allowed)
        raise Conflict(
            f"An expert who is {expert.status} cannot become {to} here; "
            f"allowed now: {', '.join(can) or 'nothing'}."
        )
    expert.status = to
    return move


def _term_errors(start: date | None, end: date | None) -> list[tuple[str, str]]:
    if start is not None and end is not None and end < start:
        return [("term_end", "before term_start")]
    return []


async def update_expert(
    session: AsyncSession,
    actor: Principal,
    expert_id: uuid.UUID,
    data: schemas.ExpertUpdate,
    if_match: int,
    now: datetime,
) -> Expert:
    """The centre suspends, reinstates, retires or reappoints an expert, or changes their term; the
    caller names the version it read (If-Match), a stale one is a 412."""
    expert = await get_expert(session, expert_id)
    _check_version(expert, if_match)
    start = expert.term_start if data.term_start is msgspec.UNSET else data.term_start
    end = expert.term_end if data.term_end is msgspec.UNSET else data.term_end
    if errors := _term_errors(start, end):
        raise _problem("The term ends before it starts.", *errors)
    changed: list[str] = []
    move = None
    if data.status is not msgspec.UNSET and data.status != expert.status:
        move = _move(expert, data.status, CENTRE_MOVES)
        changed.append("status")
    if (start, end) != (expert.term_start, expert.term_end):
        expert.term_start, expert.term_end = start, end
        changed.append("term")
    if changed:
        await session.flush()
        await accounts.record(
            session, actor, "expert.update", "expert", expert.id, now, fields=changed, move=move
        )
    return expert


async def approve(
    session: AsyncSession, actor: Principal, expert_id: uuid.UUID, if_match: int | None, now: datetime
) -> Expert:
    """The centre approves an enrolment (the expert becomes active) and/or the profile changes the expert
    proposed (they apply now). Nothing awaiting approval is a 409."""
    expert = await get_expert(session, expert_id)
    _check_version(expert, if_match)
    changes = _pending_changes(expert)
    if expert.status != "pending" and not changes:
        raise Conflict(f"Expert {expert.number} has nothing awaiting approval.")
    held = (await specialties_of(session, [expert.id])).get(expert.id, [])
    if changes:
        await _apply_changes(session, expert, changes, held)
    move = _move(expert, "active", frozenset({"approve"})) if expert.status == "pending" else None
    if move:
        expert.approved_at = now
    expert.pending = None
    flag_modified(expert, "pending")
    await session.flush()
    await accounts.record(
        session,
        actor,
        "expert.approve",
        "expert",
        expert.id,
        now,
        enrolment=bool(move),
        fields=sorted(changes),
    )
    return expert


async def reject(
    session: AsyncSession,
    actor: Principal,
    expert_id: uuid.UUID,
    reason: str,
    if_match: int | None,
    now: datetime,
) -> Expert:
    """The centre turns down an enrolment (the profile becomes rejected; the expert may enrol again) or the
    proposed changes (they are dropped). The reason is kept for the expert to read."""
    expert = await get_expert(session, expert_id)
    _check_version(expert, if_match)
    changes = _pending_changes(expert)
    if expert.status != "pending" and not changes:
        raise Conflict(f"Expert {expert.number} has nothing awaiting approval.")
    move = _move(expert, "rejected", frozenset({"reject"})) if expert.status == "pending" else None
    # No column holds a rejection, so it is kept beside the (now empty) proposal until the next one.
    expert.pending = {"rejection": {"reason": reason, "at": now.isoformat()}}
    await session.flush()
    await accounts.record(
        session,
        actor,
        "expert.reject",
        "expert",
        expert.id,
        now,
        enrolment=bool(move),
        fields=sorted(changes),
        reason=reason,
    )
    return expert


# ---------------------------------------------------------------- self-service


async def enrol(session: AsyncSession, actor: Principal, data: schemas.Enrolment, now: datetime) -> Expert:
    """A user with the expert role applies to join the pool: a pending profile numbered at once, the
    employer being the caller's organisation. A rejected applicant may apply again (same number)."""
    org = await accounts.require_active(session, actor)
    expert = await expert_of_user(session, actor.user_id)
    if expert is not None and expert.status != "rejected":
        raise Conflict(f"You already have an expert profile ({expert.number}, {expert.status}).")
    tree = await _active_codes(session)
    errors = _code_errors(data.specialties, tree, (), "specialties")
    errors += _term_errors(data.term_start, data.term_end)
    errors += _name_errors(data.name, "name")
    if errors:
        raise _problem("The enrolment cannot be accepted; see errors.", *errors)
    if expert is None:
        [number] = await _next_numbers(session, 1)
        expert = Expert(id=new_id(), number=number, user_id=actor.user_id, created_at=now, status="pending")
        session.add(expert)
    else:
        _move(expert, "pending", frozenset({"enrol"}))
    expert.name = data.name.strip()
    expert.employer_credit_code, expert.employer_name = org.credit_code, org.name
    expert.region_code, expert.title = data.region_code, data.title
    expert.term_start, expert.term_end = data.term_start, data.term_end
    expert.phone, expert.email = data.phone, data.email
    expert.approved_at, expert.pending = None, None
    try:
        await session.flush()
    except IntegrityError as exc:  # the same user enrolling twice at the same moment
        raise Conflict("You already have an expert profile.") from exc
    await _set_codes(session, expert.id, data.specialties)
    await accounts.record(session, actor, "expert.enrol", "expert", expert.id, now, number=expert.number)
    return expert


def _name_errors(name: str, where: str) -> list[tuple[str, str]]:
    return [] if name.strip() else [(where, "blank")]


def _pending_changes(expert: Expert) -> dict[str, Any]:
    return dict((expert.pending or {}).get("changes") or {})


def rejection_of(expert: Expert) -> dict[str, Any] | None:
    """The centre's last refusal of this expert's enrolment or proposal, while no new one is pending."""
    rejection = (expert.pending or {}).get("rejection")
    return dict(rejection) if rejection else None


def proposal_of(expert: Expert) -> tuple[dict[str, Any] | None, datetime | None]:
    """The changes the expert proposed (JSON values: dates as ISO text) and when, or (None, None)."""
    changes = _pending_changes(expert)
    if not changes:
        return None, None
    return changes, datetime.fromisoformat(str((expert.pending or {})["proposed_at"]))


def _jsonable(name: str, value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if name == "specialties":
        return sorted(value)
    return value


def _current(expert: Expert, held: Sequence[str], name: str) -> Any:
    return sorted(held) if name == "specialties" else _jsonable(name, getattr(expert, name))


async def _apply_changes(
    session: AsyncSession, expert: Expert, changes: dict[str, Any], held: Sequence[str]
) -> None:
    """Write approved changes onto the profile; specialties are checked against the tree as it is now."""
    if "specialties" in changes:
        codes = list(changes["specialties"])
        if errors := _code_errors(codes, await _active_codes(session), held, "pending_changes.specialties"):
            raise Conflict(
                "The proposed specialties are no longer in the tree; reject the proposal.",
                errors=[field_error(f, m) for f, m in errors],
            )
        await _set_codes(session, expert.id, codes)
        flag_modified(expert, "name")  # the specialties are part of the profile: its version moves
    for name, value in changes.items():
        if name in ("term_start", "term_end"):
            setattr(expert, name, date.fromisoformat(value) if value else None)
        elif name != "specialties":
            setattr(expert, name, value)


async def propose_changes(
    session: AsyncSession, actor: Principal, data: schemas.ProfileChange, if_match: int | None, now: datetime
) -> Expert:
    """The expert changes their profile. While the enrolment awaits approval the application itself is
    edited; once approved, the changes wait in `pending` for the centre's approval and the draw keeps
    seeing the approved values. A change back to the approved value withdraws that part of a proposal."""
    expert = await my_expert(session, actor)
    _check_version(expert, if_match)
    if expert.status not in EDITABLE:
        raise Conflict(f"Your profile is {expert.status}; it cannot be changed.")
    given = {name: getattr(data, name) for name in PROFILE_FIELDS if getattr(data, name) is not msgspec.UNSET}
    if not given:
        raise _problem("Name at least one field to change.", ("body", "no field given"))
    held = (await specialties_of(session, [expert.id])).get(expert.id, [])
    changes = _pending_changes(expert)
    merged = {name: _current(expert, held, name) for name in PROFILE_FIELDS} | changes
    merged |= {name: _jsonable(name, value) for name, value in given.items()}
    errors: list[tuple[str, str]] = []
    if "specialties" in given:
        errors += _code_errors(given["specialties"], await _active_codes(session), held, "specialties")
    if "name" in given:
        errors += _name_errors(given["name"], "name")
    start, end = (date.fromisoformat(merged[k]) if merged[k] else None for k in ("term_start", "term_end"))
    errors += _term_errors(start, end)
    if errors:
        raise _problem("The change cannot be accepted; see errors.", *errors)
    if expert.status == "pending":
        await _apply_changes(session, expert, {k: merged[k] for k in given}, held)
        await session.flush()
        await accounts.record(
            session, actor, "expert.amend_enrolment", "expert", expert.id, now, fields=sorted(given)
        )
        return expert
    proposal = {k: v for k, v in merged.items() if v != _current(expert, held, k)}
    expert.pending = {"changes": proposal, "proposed_at": now.isoformat()} if proposal else None
    flag_modified(expert, "pending")
    await session.flush()
    await accounts.record(session, actor, "expert.propose", "expert", expert.id, now, fields=sorted(proposal))
    return expert


def _credit_code(value: str, where: str) -> str:
    try:
        return uscc.validate_uscc(value)
    except uscc.InvalidUSCC as exc:
        raise _problem(str(exc), (where, str(exc))) from exc


async def declare_relationship(
    session: AsyncSession, actor: Principal, data: schemas.RelationshipIn, now: datetime
) -> ExpertRelationship:
    """The expert declares a former employer or an organisation where a close relative works. It takes
    effect at once: a declaration only ever keeps the expert out of more draws (G-08)."""
    expert = await my_expert(session, actor)
    if expert.status == "rejected":
        raise Conflict("Your enrolment was rejected; enrol again first.")
    code = _credit_code(data.credit_code, "credit_code")
    if data.start_on is not None and data.end_on is not None and data.end_on < data.start_on:
        raise _problem("The relationship ends before it starts.", ("end_on", "before start_on"))
    if data.kind == "relative" and not data.relation:
        raise _problem(
            "Say how the relative is related (e.g. spouse).", ("relation", "required for relative")
        )
    row = ExpertRelationship(
        id=new_id(),
        expert_id=expert.id,
        kind=data.kind,
        credit_code=code,
        organisation_name=data.organisation_name,
        relation=data.relation,
        start_on=data.start_on,
        end_on=data.end_on,
        declared_at=now,
    )
    session.add(row)
    await session.flush()
    await accounts.record(
        session,
        actor,
        "expert.declare_relationship",
        "expert",
        expert.id,
        now,
        relationship_id=row.id,
        kind=data.kind,
        credit_code=code,
    )
    return row


async def declare_unavailability(
    session: AsyncSession, actor: Principal, data: schemas.UnavailabilityIn, now: datetime
) -> ExpertUnavailability:
    """The expert declares days (inclusive) they cannot evaluate: from today (Asia/Shanghai) on, at most
    366 days in one declaration."""
    expert = await my_expert(session, actor)
    if expert.status == "rejected":
        raise Conflict("Your enrolment was rejected; enrol again first.")
    today = local_date(now)
    if data.start_on < today:
        raise _problem(f"start_on is before today ({today}).", ("start_on", "in the past"))
    if data.end_on < data.start_on:
        raise _problem("end_on is before start_on.", ("end_on", "before start_on"))
    if (data.end_on - data.start_on).days + 1 > MAX_UNAVAILABLE_DAYS:
        raise _problem(
            f"One declaration covers at most {MAX_UNAVAILABLE_DAYS} days.",
            ("end_on", f"more than {MAX_UNAVAILABLE_DAYS} days after start_on"),
        )
    row = ExpertUnavailability(
        id=new_id(),
        expert_id=expert.id,
        start_on=data.start_on,
        end_on=data.end_on,
        reason=data.reason,
        declared_at=now,
    )
    session.add(row)
    await session.flush()
    await accounts.record(
        session,
        actor,
        "expert.declare_unavailability",
        "expert",
        expert.id,
        now,
        unavailability_id=row.id,
        start_on=data.start_on.isoformat(),
        end_on=data.end_on.isoformat(),
    )
    return row


async def withdraw_unavailability(
    session: AsyncSession, actor: Principal, unavailability_id: uuid.UUID, now: datetime
) -> None:
    """The expert withdraws an unavailable period of their own that has not ended yet (past periods stay,
    as the record of why past draws passed them over)."""
    expert = await my_expert(session, actor)
    row = await session.get(ExpertUnavailability, unavailability_id)
    if row is None or row.expert_id != expert.id:
        raise NotFound("No such unavailable period of yours.")
    if row.end_on < local_date(now):
        raise Conflict("This period is over; it stays on the record.")
    await session.delete(row)
    await session.flush()
    await accounts.record(
        session,
        actor,
        "expert.withdraw_unavailability",
        "expert",
        expert.id,
        now,
        unavailability_id=row.id,
        start_on=row.start_on.isoformat(),
        end_on=row.end_on.isoformat(),
    )


async def _set_codes(session: AsyncSession, expert_id: uuid.UUID, codes: Iterable[str]) -> None:
    """Make the expert's specialties exactly `codes`."""
    wanted = set(codes)
    have = set(
        await session.scalars(select(ExpertSpecialty.code).where(ExpertSpecialty.expert_id == expert_id))
    )
    if have - wanted:
        await session.execute(
            delete(ExpertSpecialty).where(
                ExpertSpecialty.expert_id == expert_id, ExpertSpecialty.code.in_(sorted(have - wanted))
            )
        )
    session.add_all(ExpertSpecialty(expert_id=expert_id, code=c) for c in sorted(wanted - have))
    await session.flush()


# ---------------------------------------------------------------- the credit record


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year - years, day=28)


def credit_window(on: date) -> tuple[datetime, datetime]:
    """The instants [from, to) whose events count on day `on`: the two years up to and including `on`
    (Asia/Shanghai days). On 2026-03-02 an event of 2024-03-03 counts, one of 2024-03-02 no longer does."""
    return start_of_day(_years_before(on, CREDIT_YEARS) + timedelta(days=1)), end_of_day(on)


def _score(points: int) -> int:
    return max(0, CREDIT_START - points)


async def credit_scores(
    session: AsyncSession, expert_ids: Sequence[uuid.UUID] | None, on: date
) -> dict[uuid.UUID, int]:
    """Every named expert's credit score on day `on` (every expert's with None), from one grouped query:
    100 less the points of the events within the two years up to `on`, never below 0."""
    start, end = credit_window(on)
    in_window = (CreditEvent.at >= start) & (CreditEvent.at < end)
    if expert_ids is None:
        query = (
            select(Expert.id, func.coalesce(func.sum(CreditEvent.points), 0))
            .outerjoin(CreditEvent, (CreditEvent.expert_id == Expert.id) & in_window)
            .group_by(Expert.id)
        )
        return {expert_id: _score(int(points)) for expert_id, points in await session.execute(query)}
    wanted = list(dict.fromkeys(expert_ids))
    query = select(CreditEvent.expert_id, func.sum(CreditEvent.points)).where(in_window)
    if len(wanted) <= _IN_CHUNK:
        query = query.where(CreditEvent.expert_id.in_(wanted))
    # A long list (the draw asks for the whole pool) would not fit in one IN (…); the window's sums for
    # everyone are one scan and one group-by either way.
    points = {e: int(p) for e, p in await session.execute(query.group_by(CreditEvent.expert_id))}
    return {expert_id: _score(points.get(expert_id, 0)) for expert_id in wanted}


async def credit_scores_among(session: AsyncSession, expert_ids: Any, on: date) -> dict[uuid.UUID, int]:
    """The credit scores on day `on` of the experts a subquery selects that have events in the window; an
    expert missing from the answer has the full score. The draw asks this of its whole candidate pool."""
    start, end = credit_window(on)
    query = (
        select(CreditEvent.expert_id, func.sum(CreditEvent.points))
        .where(CreditEvent.at >= start, CreditEvent.at < end, CreditEvent.expert_id.in_(expert_ids))
        .group_by(CreditEvent.expert_id)
    )
    return {expert_id: _score(int(points)) for expert_id, points in await session.execute(query)}


async def credit_score(session: AsyncSession, expert_id: uuid.UUID, on: date) -> int:
    """One expert's credit score on day `on` (see `credit_scores`)."""
    return (await credit_scores(session, [expert_id], on))[expert_id]


async def credit_events(session: AsyncSession, expert_id: uuid.UUID) -> list[CreditEvent]:
    """An expert's credit events, newest first."""
    query = (
        select(CreditEvent)
        .where(CreditEvent.expert_id == expert_id)
        .order_by(CreditEvent.at.desc(), CreditEvent.id.desc())
    )
    return list(await session.scalars(query))


async def record_credit(
    session: AsyncSession,
    actor: Principal | None,
    expert_id: uuid.UUID,
    kind: str,
    tender_id: uuid.UUID | None,
    note: str | None,
    now: datetime,
    *,
    points: int | None = None,
) -> CreditEvent:
    """Add one event to an expert's credit record (attended, late, declined, no_response, absent,
    abnormal_score, complaint_upheld, or other with 1 to 20 `points`); the points of the other kinds come
    from `CREDIT_POINTS` and may not be given. `actor` None is the platform itself (a job)."""
    if kind not in CREDIT_POINTS:
        raise _problem("Unknown kind of credit event.", ("kind", f"one of {', '.join(CREDIT_POINTS)}"))
    fixed = CREDIT_POINTS[kind]
    if fixed is None:
        if points is None or points not in OTHER_POINTS:
            raise _problem("An `other` event deducts 1 to 20 points.", ("points", "required, 1 to 20"))
    elif points is not None and points != fixed:
        raise _problem(
            f"A {kind} event deducts {fixed} points; leave points out.", ("points", "only for other")
        )
    expert = await get_expert(session, expert_id)
    if tender_id is not None:
        try:
            await tenders.visible_tender(session, actor, tender_id)
        except NotFound as exc:
            raise _problem("No such tender.", ("tender_id", "no such tender")) from exc
    event = CreditEvent(
        id=new_id(),
        expert_id=expert.id,
        kind=kind,
        points=fixed if fixed is not None else int(points or 0),
        tender_id=tender_id,
        at=now,
        note=note,
        recorded_by=(actor.username if actor else "ggzy")[:80],
    )
    session.add(event)
    await session.flush()
    await accounts.record(
        session,
        actor,
        "expert.credit",
        "expert",
        expert.id,
        now,
        event_id=event.id,
        kind=kind,
        points=event.points,
        tender_id=tender_id,
    )
    return event


# ---------------------------------------------------------------- the import (pure part: the file)


class ImportRefused(ValidationProblem):
    """The file cannot be imported; `errors[]` names each cell at fault as rows[<row>].<column>, the row
    numbered as a spreadsheet shows it (the header is row 1)."""


@dataclass
class Table:
    """The cells of an import file: the header's column names and the non-blank rows by row number."""

    columns: list[str]
    rows: list[tuple[int, list[str | None]]]


def _cell(value: object) -> str | None:
    """A cell as stripped text (None when empty); numbers and dates as a spreadsheet would write them."""
    if value is None:
        return None
    if isinstance(value, bool):
        text_value = "TRUE" if value else "FALSE"
    elif isinstance(value, datetime):
        text_value = value.date().isoformat() if value.time() == time(0) else value.isoformat()
    elif isinstance(value, date):
        text_value = value.isoformat()
    elif isinstance(value, float) and value.is_integer():
        text_value = str(int(value))
    else:
        text_value = str(value)
    return text_value.strip() or None


def _decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        # Excel in Chinese locales saves "CSV (逗号分隔)" in the ANSI code page, i.e. GBK; GB18030 covers it.
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ImportRefused(
            "The CSV is neither UTF-8 nor GB18030 text.", errors=[field_error("body", "not text")]
        ) from exc


def _csv_table(data: bytes) -> Iterator[list[str | None]]:
    reader = csv.reader(io.StringIO(_decode_text(data), newline=""), strict=True)
    try:
        for record in reader:
            yield [_cell(value) for value in record]
    except csv.Error as exc:
        raise ImportRefused(
            f"The CSV cannot be read at line {reader.line_num}: {exc}.",
            errors=[field_error("body", f"malformed CSV at line {reader.line_num}")],
        ) from exc


def _xlsx_table(data: bytes) -> Iterator[list[str | None]]:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
        if inflated > MAX_XLSX_UNZIPPED:
            raise ImportRefused(
                "The workbook inflates to too much data.", errors=[field_error("body", "workbook too large")]
            )
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except ImportRefused:
        raise
    except Exception as exc:  # openpyxl and zipfile raise many kinds for a file that is no workbook
        raise ImportRefused(
            "The body is not an .xlsx workbook.", errors=[field_error("body", "not an .xlsx workbook")]
        ) from exc
    try:
        if not workbook.worksheets:
            return
        for record in workbook.worksheets[0].iter_rows(values_only=True):
            yield [_cell(value) for value in record]
    finally:
        workbook.close()


def read_table(data: bytes, media_type: str) -> Table:
    """The header and the non-blank rows of an import file (CSV, UTF-8 or GB18030, or the first sheet of
    an .xlsx), refusing an empty, oversized or unreadable file and one with more than 60,000 rows."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportRefused(
            f"The file is {len(data):,} bytes; at most {MAX_IMPORT_BYTES:,} are taken.",
            errors=[field_error("body", "too large")],
        )
    records = _xlsx_table(data) if media_type == XLSX_TYPE else _csv_table(data)
    header: list[str] | None = None
    rows: list[tuple[int, list[str | None]]] = []
    for number, record in enumerate(records, start=1):
        if not any(record):
            continue
        if header is None:
            header = [(value or "").lower() for value in record]
            while header and not header[-1]:
                header.pop()
            continue
        rows.append((number, record))
        if len(rows) > MAX_IMPORT_ROWS:
            raise ImportRefused(
                f"The file has more than {MAX_IMPORT_ROWS:,} rows; split it.",
                errors=[field_error("body", f"more than {MAX_IMPORT_ROWS:,} rows")],
            )
    if header is None:
        raise ImportRefused("The file is empty.", errors=[field_error("body", "empty")])
    return Table(header, rows)


def _header_errors(columns: list[str]) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    for index, name in enumerate(columns):
        if name not in IMPORT_COLUMNS:
            errors.append((f"header[{index}]", f"unknown column {name[:40]!r}"))
        elif columns.index(name) != index:
            errors.append((f"header[{index}]", f"{name} appears twice"))
    errors += [
        (f"header.{name}", "missing column")
        for name in IMPORT_COLUMNS
        if name in REQUIRED_COLUMNS and name not in columns
    ]
    return errors


@dataclass
class Row:
    """One checked row of an import: who it names and the profile values its columns give."""

    number: int
    expert_number: str | None
    username: str | None
    codes: list[str]
    values: dict[str, Any] = field(default_factory=dict)  # attribute -> value, for the columns present

    @property
    def key(self) -> tuple[str, str]:
        return (self.values["name"], self.values["employer_credit_code"])


def _parse_date(text_value: str) -> date:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text_value):
        raise ValueError("not YYYY-MM-DD")
    return date.fromisoformat(text_value)


def parse_row(number: int, cells: dict[str, str | None]) -> tuple[Row | None, list[tuple[str, str]]]:
    """Check one row's cells (by column) on their own; the row, or None and its errors."""
    errors: list[tuple[str, str]] = []
    at = f"rows[{number}]"

    def text_cell(
        name: str, limit: int, pattern: re.Pattern[str] | None = None, required: bool = False
    ) -> str | None:
        value = cells.get(name)
        if value is None:
            if required:
                errors.append((f"{at}.{name}", "required"))
            return None
        if len(value) > limit:
            errors.append((f"{at}.{name}", f"longer than {limit} characters"))
        elif "\x00" in value:
            errors.append((f"{at}.{name}", "contains a NUL character"))
        elif pattern is not None and not pattern.match(value):
            errors.append((f"{at}.{name}", "malformed"))
        return value

    row = Row(number, text_cell("number", 20, NUMBER_PATTERN), text_cell("username", 64), [])
    values = row.values
    for name, limit in (("name", 100), ("employer_name", 200), ("title", 60)):
        values[name] = text_cell(name, limit, required=True)
    values["region_code"] = text_cell("region_code", 6, re.compile(r"^[0-9]{6}$"), required=True)
    credit_code = text_cell("employer_credit_code", 40, required=True)
    if credit_code is not None:
        try:
            values["employer_credit_code"] = uscc.validate_uscc(credit_code)
        except uscc.InvalidUSCC as exc:
            errors.append((f"{at}.employer_credit_code", str(exc)))
    codes = text_cell("specialties", 500, required=True)
    if codes is not None:
        row.codes = [c.strip() for c in codes.split(";") if c.strip()]
        bad = [c for c in row.codes if not CODE_PATTERN.match(c)]
        if bad or not row.codes or len(row.codes) > 20:
            errors.append(
                (
                    f"{at}.specialties",
                    f"not codes separated by ';': {', '.join(bad)[:80]}" if bad else "1 to 20 codes",
                )
            )
        elif len(set(row.codes)) != len(row.codes):
            errors.append((f"{at}.specialties", "a code is listed twice"))
    if "status" in cells and (status := cells["status"]) is not None:
        if status.lower() not in IMPORT_STATUSES:
            errors.append((f"{at}.status", f"one of {', '.join(IMPORT_STATUSES)}"))
        values["status"] = status.lower()
    for name in ("term_start", "term_end"):
        if name in cells:
            raw = cells[name]
            try:
                values[name] = _parse_date(raw) if raw is not None else None
            except ValueError:
                errors.append((f"{at}.{name}", "not a date YYYY-MM-DD"))
    if isinstance(values.get("term_start"), date) and isinstance(values.get("term_end"), date):
        if values["term_end"] < values["term_start"]:
            errors.append((f"{at}.term_end", "before term_start"))
    for name, pattern, limit in (("phone", _PHONE, 30), ("email", _EMAIL, 200)):
        if name in cells:
            values[name] = text_cell(name, limit, pattern)
    return (None if errors else row), errors


# ---------------------------------------------------------------- the import (the pool)


@dataclass
class _Known:
    """What the database already holds about the experts and users a file names."""

    tree: dict[str, bool]
    by_number: dict[str, Expert]
    by_user: dict[uuid.UUID, Expert]
    by_key: dict[tuple[str, str], list[Expert]]
    users: dict[str, tuple[uuid.UUID, bool]]  # username -> (user id, holds the expert role)
    codes: dict[uuid.UUID, list[str]]


async def _known(session: AsyncSession, rows: Sequence[Row]) -> _Known:
    numbers = sorted({r.expert_number for r in rows if r.expert_number})
    usernames = sorted({r.username for r in rows if r.username})
    names = sorted({r.values["name"] for r in rows})
    experts: dict[uuid.UUID, Expert] = {}
    users: dict[str, tuple[uuid.UUID, bool]] = {}
    for chunk in _chunks(numbers):
        experts |= {e.id: e for e in await session.scalars(select(Expert).where(Expert.number.in_(chunk)))}
    for chunk in _chunks(usernames):
        # accounts/service.py has no lookup by username, so the import reads the users table itself.
        found = await session.execute(
            select(User.id, User.username, User.roles).where(User.username.in_(chunk))
        )
        users |= {name: (user_id, "expert" in (roles or [])) for user_id, name, roles in found}
    user_ids = sorted(u for u, _ in users.values())
    for chunk in _chunks(user_ids):
        experts |= {e.id: e for e in await session.scalars(select(Expert).where(Expert.user_id.in_(chunk)))}
    for chunk in _chunks(names):
        experts |= {e.id: e for e in await session.scalars(select(Expert).where(Expert.name.in_(chunk)))}
    by_key: dict[tuple[str, str], list[Expert]] = defaultdict(list)
    for e in experts.values():
        by_key[(e.name, e.employer_credit_code)].append(e)
    return _Known(
        tree=await _active_codes(session),
        by_number={e.number: e for e in experts.values()},
        by_user={e.user_id: e for e in experts.values() if e.user_id is not None},
        by_key=by_key,
        users=users,
        codes=await specialties_of(session, list(experts)),
    )


@dataclass(eq=False)
class _Plan:
    row: Row
    expert: Expert | None  # None: the row makes a new expert
    user_id: uuid.UUID | None


def _resolve(rows: Sequence[Row], known: _Known) -> tuple[list[_Plan], list[tuple[str, str]]]:
    """Which expert each row creates or updates: by number, else by the linked username, else by name and
    employer; and the errors of rows that name nobody, somebody twice, or a code they may not take."""
    plans: list[_Plan] = []
    errors: list[tuple[str, str]] = []
    claimed: dict[object, int] = {}
    for row in rows:
        at = f"rows[{row.number}]"
        expert: Expert | None = None
        user_id: uuid.UUID | None = None
        row_errors: list[tuple[str, str]] = []
        if row.username:
            user = known.users.get(row.username)
            if user is None:
                row_errors.append((f"{at}.username", f"no user is named {row.username}"))
            elif not user[1]:
                row_errors.append((f"{at}.username", f"{row.username} does not hold the expert role"))
            else:
                user_id = user[0]
        if row.expert_number:
            expert = known.by_number.get(row.expert_number)
            if expert is None:
                row_errors.append((f"{at}.number", f"no expert has the number {row.expert_number}"))
        elif user_id is not None and user_id in known.by_user:
            expert = known.by_user[user_id]
        else:
            # Without a username any expert of that name and employer is the one; with one, only an
            # expert not yet linked to somebody else.
            same = [
                e
                for e in known.by_key.get(row.key, [])
                if row.username is None or e.user_id in (None, user_id)
            ]
            if len(same) > 1:
                row_errors.append(
                    (f"{at}.name", f"{len(same)} experts have this name and employer; give the number")
                )
            expert = same[0] if len(same) == 1 else None
        if expert is not None and user_id is not None:
            linked = known.by_user.get(user_id)
            if linked is not None and linked.id != expert.id:
                row_errors.append((f"{at}.username", f"{row.username} is the user of expert {linked.number}"))
            elif expert.user_id not in (None, user_id):
                row_errors.append((f"{at}.username", f"expert {expert.number} belongs to another user"))
        # A new expert is known by its user and by its name and employer: two rows making the same
        # person twice would leave a pair that no later import could tell apart.
        identities: list[object] = [expert.id] if expert is not None else [row.key]
        if expert is None and user_id is not None:
            identities.append(("user", user_id))
        earlier = next((claimed[i] for i in identities if i in claimed), None)
        if earlier is not None:
            row_errors.append((at, f"the same expert as rows[{earlier}]"))
        for identity in identities:
            claimed.setdefault(identity, row.number)
        held = known.codes.get(expert.id, []) if expert is not None else []
        row_errors += [(f"{at}.specialties", m) for _, m in _code_errors(row.codes, known.tree, held, "")]
        errors += row_errors
        plans.append(_Plan(row, expert, user_id))
    return plans, errors


def _refuse(errors: list[tuple[str, str]]) -> ImportRefused:
    shown = errors[:MAX_REPORTED_ERRORS]
    more = f" (the first {len(shown)} are listed)" if len(errors) > len(shown) else ""
    return ImportRefused(
        f"Nothing was imported: {len(errors)} problems in the file{more}.",
        errors=[field_error(f, m) for f, m in shown],
        error_count=len(errors),
    )


async def import_experts(
    session: AsyncSession, actor: Principal, data: bytes, media_type: str, now: datetime
) -> schemas.ImportResult:
    """Create and update experts from the centre's file (CSV or .xlsx), all or nothing: any bad cell
    refuses the whole file with every problem named (422) and nothing written. A row with a number
    updates that expert; without one, the expert linked to its username, else the one with the same name
    at the same employer; otherwise it creates an expert with the next number, approved at once. Columns
    left out of the header leave those values as they are. Importing the same file again changes nothing.
    An import states the centre's register, so it sets `status` directly (the one writer of the status
    outside `STATUS_MOVES`); a pending expert it marks active counts as approved."""
    if media_type not in CSV_TYPES and media_type != XLSX_TYPE:
        raise Problem("Send the file as text/csv or as an .xlsx workbook.")  # the controller checks first
    table = await asyncio.to_thread(read_table, data, media_type)  # a large workbook is CPU work
    errors = _header_errors(table.columns)
    if errors:
        raise _refuse(errors)
    rows: list[Row] = []
    for number, record in table.rows:
        extra = record[len(table.columns) :]
        if any(extra):
            errors.append((f"rows[{number}]", "more cells than the header has columns"))
            continue
        cells = dict(zip(table.columns, record, strict=False))
        row, row_errors = parse_row(number, cells)
        errors += row_errors
        if row is not None:
            rows.append(row)
    # The rows whose cells are sound are resolved against the pool even when others are not, so one
    # answer names every problem in the file.
    known = await _known(session, rows)
    plans, resolve_errors = _resolve(rows, known)
    errors += resolve_errors
    if errors:
        raise _refuse(sorted(errors, key=_row_of))
    return await _write(session, actor, plans, known, now)


def _row_of(error: tuple[str, str]) -> int:
    """The row number an error names (rows[12].name → 12), for listing errors in file order."""
    match = re.match(r"rows\[([0-9]+)\]", error[0])
    return int(match.group(1)) if match else 0


def _changed_fields(plan: _Plan, expert: Expert, held: Sequence[str]) -> list[str]:
    fields = sorted(k for k, v in plan.row.values.items() if getattr(expert, k) != v)
    if plan.user_id is not None and expert.user_id != plan.user_id:
        fields.append("user")
    if sorted(plan.row.codes) != sorted(held):
        fields.append("specialties")
    return fields


async def _write(
    session: AsyncSession, actor: Principal, plans: list[_Plan], known: _Known, now: datetime
) -> schemas.ImportResult:
    """Write a checked import: new experts numbered in file order, then the changes to known ones."""
    created = [p for p in plans if p.expert is None]
    experts: list[dict[str, Any]] = []
    codes: list[dict[str, Any]] = []
    for plan, number in zip(created, await _next_numbers(session, len(created)), strict=True):
        values = {"status": "active", "term_start": None, "term_end": None, "phone": None, "email": None}
        values |= plan.row.values
        expert_id = new_id()
        experts.append(
            {
                "id": expert_id,
                "number": number,
                "user_id": plan.user_id,
                "created_at": now,
                "approved_at": now,
            }
            | values
            | {"version": 1}
        )
        codes += [{"expert_id": expert_id, "code": c} for c in plan.row.codes]
    # Tens of thousands of new experts: multi-row INSERTs, not one ORM object each.
    for chunk in _chunks(experts, 1000):
        await session.execute(insert(Expert), list(chunk))
    for chunk in _chunks(codes, 2000):
        await session.execute(insert(ExpertSpecialty), list(chunk))
    for row in experts:
        await accounts.record(
            session, actor, "expert.import_create", "expert", row["id"], now, number=row["number"]
        )
    updated = unchanged = 0
    stale_codes: list[tuple[uuid.UUID, list[str]]] = []
    for plan in plans:
        expert = plan.expert
        if expert is None:
            continue
        held = known.codes.get(expert.id, [])
        fields = _changed_fields(plan, expert, held)
        if not fields:
            unchanged += 1
            continue
        updated += 1
        for name in fields:
            if name in plan.row.values:
                setattr(expert, name, plan.row.values[name])
        if "user" in fields:
            expert.user_id = plan.user_id
        if "specialties" in fields:
            stale_codes += [(expert.id, [c for c in held if c not in plan.row.codes])]
            session.add_all(
                ExpertSpecialty(expert_id=expert.id, code=c) for c in plan.row.codes if c not in held
            )
            flag_modified(expert, "name")  # the version (ETag) moves with the specialties
        if expert.status != "pending" and expert.approved_at is None:
            expert.approved_at = now  # the centre's register says so: an import approves
        await accounts.record(session, actor, "expert.import_update", "expert", expert.id, now, fields=fields)
    for expert_id, dropped in stale_codes:
        if dropped:
            await session.execute(
                delete(ExpertSpecialty).where(
                    ExpertSpecialty.expert_id == expert_id, ExpertSpecialty.code.in_(dropped)
                )
            )
    await session.flush()
    result = schemas.ImportResult(created=len(created), updated=updated, unchanged=unchanged)
    await accounts.record(
        session,
        actor,
        "expert.import",
        "expert_pool",
        "import",
        now,
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
    )
    return result
