"""`ggzy bench draw`: the committee draw (专家抽取) with avoidance (回避) over a large expert pool, and the
aggregation of a committee's score sheets, each next to a baseline measured in the same run.

Setup (not timed): a scratch database — a SQLite file in a temporary directory, or the EMPTY database
`--database-url` names (PostgreSQL in production) — migrated to head, with the default specialty tree
(`evaluation.taxonomy`) and, by plain bulk inserts (filling is not what is measured):

- `--experts` experts, each with a user account (one fixed, unusable password hash) in their employer's
  organisation; the employers are one organisation per 25 experts (2,000 for 50,000), each expert has one
  to three specialty codes of the tree; most are active and in term, a few suspended, retired, pending or
  out of term;
- `--relationships` declared relationships: former employers with start and end dates (about half ended
  within the three look-back years) and organisations where a relative works, a third of them naming a
  bidder or a party of the tender so that avoidance has something to find;
- unavailability (one expert in fifty, about half of them away on the evaluation day) and credit events
  (attendance, lateness, declines… for one expert in ten; a few records bad enough to fall below 60);
- one works tender in evaluation with one lot, its agency and tenderer, and a submitted bid from each of
  up to 20 bidders. The bidders and the tenderer are among the experts' employers: avoidance compares
  credit codes, so their employees (and those who worked there lately, or have relatives there) are out.

Cases, each run `--repeat` times after one warm-up round (the median and the fastest are reported):

- `committee`: `evaluation.committees.request_draw` (the candidates with wanted specialties and their
  relationships, unavailability and credit, avoidance, the snapshots of the pool before avoidance, the
  exclusions and the eligible pool written to a `LocalObjectStore` in the temporary directory) and
  `evaluation.selection.run_draw` (the witness's reveal: the selection and the invitations) for a 7-seat
  committee, A02 × 5 and D01 × 2, employer limit 1, each in its own committed transaction as the requests
  are; between them a supervisor's witness commitment seals the seed (not timed: no pool work), and after
  them the agency asks for an abort that another supervisor approves (not timed) so the next round may
  ask again. For the breakdown: the same run's
  `evaluation.committees.candidates` alone, and the pure `draw.eligible_pool` and `draw.select` on its
  output. Baseline: one plain SQL count of the active experts with a wanted specialty (no avoidance).
- `score_aggregation`: `evaluation.scoring.aggregate` (sheets checked, price scores, exact means and
  the ranking) and `evaluation.scoring.abnormal_scores` (G-10) for 9 members × 40 subjective criteria ×
  30 bids under a validated scheme of 40 subjective leaves and one price leaf; baseline: a plain Python
  sum of the same 10,800 integers.

One JSON line per case on stdout; nothing passes or fails on time. The exit status is 1 only if something
is wrong: a draw that does not seat the whole committee, or an empty pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accounts.models import Organisation, User
from accounts.security import Principal, hash_password
from accounts.uscc import make_uscc
from evaluation import aborts, committees, draw, pool, schemas, scoring, selection
from evaluation.models import (
    CreditEvent,
    Expert,
    ExpertRelationship,
    ExpertSpecialty,
    ExpertUnavailability,
    Invitation,
    Specialty,
)
from evaluation.taxonomy import DEFAULT_SPECIALTIES
from rules.calendar import SHANGHAI, local_date
from storage.benchmark import emit, repeat_option
from storage.clock import SystemClock
from storage.db import create_engine, create_sessionmaker, transaction
from storage.migrate import upgrade_async
from storage.objects import LocalObjectStore
from storage.signing import LogSigner
from trading.models import Bid, Lot, Tender

T = TypeVar("T")

BATCH = 5000  # rows per bulk INSERT transaction
EXPERTS_PER_EMPLOYER = 25
MIN_EMPLOYERS = 30
MAX_BIDDERS = 20
QUOTAS = (("A02", 5), ("D01", 2))  # municipal works and cost engineering: 7 seats
EMPLOYER_LIMIT = 1
# Codes an expert may hold: every node below the four classes (an expert of "A0201" matches "A02").
CODES = tuple(code for code, parent, _ in DEFAULT_SPECIALTIES if parent is not None)
STATUSES = (("active", 92), ("suspended", 3), ("retired", 3), ("pending", 2))
TITLES = ("高级工程师", "正高级工程师", "工程师", "高级经济师", "注册造价工程师")
RELATIONS = ("配偶", "子女", "父母", "兄弟姐妹")
# (kind, points, share of the experts with such an event): attendance is the common line of a record.
CREDIT_EVENTS = (("attended", 0, 10), ("late", 2, 3), ("declined", 1, 4), ("no_response", 2, 2))
BAD_RECORD_EVERY = 200  # one expert in 200 has absences and upheld complaints enough to fall below 60
AWAY_EVERY = 50  # one expert in 50 has declared unavailability
SECRET = "ggzy bench draw: the seal key of this run's seeds"  # noqa: S105 - scratch data, dropped after
DUMMY_BID_SHA256 = "0" * 64

# score aggregation
MEMBERS = 9
GROUPS = 4
LEAVES_PER_GROUP = 10  # 40 subjective criteria
LEAF_CP = 175  # 40 x 1.75 points = 70 points by hand
PRICE_CP = scoring.TOTAL_CP - GROUPS * LEAVES_PER_GROUP * LEAF_CP  # 30 points by the base-price method
SCORED_BIDS = 30
TARGET_DRAW_RATIO = 2.0  # the draw at most this many times the candidate rows read and hashed


def _line(case: str, **fields: Any) -> None:
    emit("draw", case, **fields)


def _s(seconds: float) -> float:
    return round(seconds, 6)


@dataclass
class Samples:
    """Durations of one measured operation, in seconds, one per repetition."""

    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return _s(statistics.median(self.runs))

    @property
    def fastest(self) -> float:
        return _s(min(self.runs))

    @property
    def slowest(self) -> float:
        return _s(max(self.runs))


async def _timed(samples: Samples | None, work: Awaitable[T]) -> T:
    started = time.perf_counter()
    result = await work
    if samples is not None:
        samples.runs.append(time.perf_counter() - started)
    return result


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 1) if b > 0 else None


# ---------------------------------------------------------------- the scratch data


@dataclass(frozen=True)
class Plan:
    experts: int
    relationships: int
    repeat: int
    seed: int
    database_url: str | None

    @property
    def employers(self) -> int:
        return max(MIN_EMPLOYERS, self.experts // EXPERTS_PER_EMPLOYER)

    @property
    def bidders(self) -> int:
        return min(MAX_BIDDERS, self.employers // 5)


@dataclass(frozen=True)
class Org:
    id: uuid.UUID
    credit_code: str
    name: str


@dataclass
class Setting:
    """What the fill left for the measurements: the tender, who asks for the draw, witnesses it and
    approves its abort, and counts."""

    tender_id: uuid.UUID
    evaluation_at: datetime
    agency: Principal
    centre: Principal
    witness: Principal
    supervisor: Principal
    counts: dict[str, int] = field(default_factory=dict)


class Codes:
    """Fresh, valid unified social credit codes for the scratch organisations."""

    def __init__(self) -> None:
        self.serial = 0

    def next(self) -> str:
        self.serial += 1
        return make_uscc(f"91320100{self.serial:09d}")


def _organisation(org: Org, kind: str, now: datetime) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "credit_code": org.credit_code,
        "kind": kind,
        "status": "active",
        "contact_email": None,
        "created_at": now,
        "approved_at": now,
    }


def _user(
    user_id: uuid.UUID, org: Org, username: str, roles: list[str], pw: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": user_id,
        "organisation_id": org.id,
        "username": username,
        "display_name": username,
        "password_hash": pw,
        "roles": roles,
        "active": True,
        "created_at": now,
    }


def _weighted(rng: random.Random, options: Sequence[tuple[str, int]]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


@dataclass
class Rows:
    """One batch of experts with their users and specialty codes."""

    users: list[dict[str, Any]] = field(default_factory=list)
    experts: list[dict[str, Any]] = field(default_factory=list)
    specialties: list[dict[str, Any]] = field(default_factory=list)


def expert_batches(
    plan: Plan, employers: Sequence[Org], on: date, now: datetime, pw: str, rng: random.Random
) -> Iterator[tuple[Rows, list[uuid.UUID]]]:
    """The experts in batches of BATCH, each with a user in their employer's organisation."""
    for start in range(0, plan.experts, BATCH):
        rows = Rows()
        ids: list[uuid.UUID] = []
        for i in range(start, min(start + BATCH, plan.experts)):
            employer = employers[rng.randrange(len(employers))]
            user_id, expert_id = uuid.uuid4(), uuid.uuid4()
            rows.users.append(_user(user_id, employer, f"expert{i:07d}", ["expert"], pw, now))
            term_start: date | None = None
            term_end: date | None = None
            if rng.random() >= 0.1:  # one in ten has no term recorded
                term_start = on - timedelta(days=rng.randrange(30, 1800))
                term_end = term_start + timedelta(days=5 * 365 + 1)
                if rng.random() < 0.03:
                    term_end = on - timedelta(days=rng.randrange(1, 365))  # the term has run out
            rows.experts.append(
                {
                    "id": expert_id,
                    "number": f"E{i + 1:07d}",
                    "user_id": user_id,
                    "name": f"专家{i + 1}",
                    "employer_credit_code": employer.credit_code,
                    "employer_name": employer.name,
                    "region_code": "320100",
                    "title": rng.choice(TITLES),
                    "status": _weighted(rng, STATUSES),
                    "term_start": term_start,
                    "term_end": term_end,
                    "phone": None,
                    "email": None,
                    "created_at": now,
                    "approved_at": now,
                    "pending": None,
                    "version": 1,
                }
            )
            for code in rng.sample(CODES, rng.choice((1, 1, 2, 2, 3))):
                rows.specialties.append({"expert_id": expert_id, "code": code})
            ids.append(expert_id)
        yield rows, ids


def relationship_rows(
    plan: Plan,
    expert_ids: Sequence[uuid.UUID],
    employers: Sequence[Org],
    conflicted: Sequence[Org],
    on: date,
    now: datetime,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """Former employers (with dates) and relatives' organisations; a third name a bidder or a party."""
    out = []
    for _ in range(plan.relationships):
        org = rng.choice(conflicted) if rng.random() < 1 / 3 else employers[rng.randrange(len(employers))]
        row: dict[str, Any] = {
            "id": uuid.uuid4(),
            "expert_id": expert_ids[rng.randrange(len(expert_ids))],
            "credit_code": org.credit_code,
            "organisation_name": org.name,
            "declared_at": now,
        }
        if rng.random() < 0.6:
            end = on - timedelta(days=rng.randrange(1, 6 * 365))  # about half within the 3 look-back years
            start = end - timedelta(days=rng.randrange(365, 10 * 365))
            row |= {"kind": "former_employer", "relation": None, "start_on": start, "end_on": end}
        else:
            row |= {"kind": "relative", "relation": rng.choice(RELATIONS), "start_on": None, "end_on": None}
        out.append(row)
    return out


def unavailability_rows(
    expert_ids: Sequence[uuid.UUID], on: date, now: datetime, rng: random.Random
) -> list[dict[str, Any]]:
    """One expert in AWAY_EVERY is away for up to ten days around the evaluation day."""
    out = []
    for expert_id in rng.sample(list(expert_ids), len(expert_ids) // AWAY_EVERY):
        start = on + timedelta(days=rng.randrange(-10, 10))
        out.append(
            {
                "id": uuid.uuid4(),
                "expert_id": expert_id,
                "start_on": start,
                "end_on": start + timedelta(days=rng.randrange(0, 10)),
                "reason": "出差",
                "declared_at": now,
            }
        )
    return out


def credit_rows(expert_ids: Sequence[uuid.UUID], now: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """Credit events over the last three years (some outside the two-year window that counts)."""
    out = []

    def event(expert_id: uuid.UUID, kind: str, points: int) -> None:
        out.append(
            {
                "id": uuid.uuid4(),
                "expert_id": expert_id,
                "kind": kind,
                "points": points,
                "tender_id": None,
                "at": now - timedelta(days=rng.randrange(1, 3 * 365), minutes=rng.randrange(1440)),
                "note": None,
                "recorded_by": "bench",
            }
        )

    for kind, points, percent in CREDIT_EVENTS:
        for expert_id in rng.sample(list(expert_ids), len(expert_ids) * percent // 100):
            event(expert_id, kind, points)
    for expert_id in rng.sample(list(expert_ids), len(expert_ids) // BAD_RECORD_EVERY):
        for kind in ("absent", "absent", "complaint_upheld", "absent", "complaint_upheld"):
            event(expert_id, kind, 10)
    return out


async def _insert(engine: AsyncEngine, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        async with engine.begin() as conn:
            await conn.execute(insert(table), list(rows[start : start + BATCH]))


async def fill(engine: AsyncEngine, plan: Plan, err: Console) -> Setting:
    """Bulk-insert the pool, the tender and its bids (see the module docstring)."""
    async with engine.connect() as conn:
        existing = int(await conn.scalar(select(func.count()).select_from(Expert)) or 0)
    if existing:
        raise click.UsageError(f"the database already holds {existing} experts; benchmark on an empty one")
    rng = random.Random(plan.seed)
    now = SystemClock().now()
    # The evaluation sits at 09:00 (Asia/Shanghai) three days from now.
    evaluation_at = datetime.combine(local_date(now) + timedelta(days=3), datetime.min.time(), SHANGHAI)
    evaluation_at = (evaluation_at + timedelta(hours=9)).astimezone(UTC)
    on = local_date(evaluation_at)
    # One hash of a random password nobody knows: the accounts exist, none can be signed in to.
    pw = await hash_password(os.urandom(24).hex())
    codes = Codes()
    employers = [Org(uuid.uuid4(), codes.next(), f"基准测试单位{n + 1:05d}") for n in range(plan.employers)]
    bidders, tenderer = employers[: plan.bidders], employers[plan.bidders]
    agency = Org(uuid.uuid4(), codes.next(), "基准测试招标代理有限公司")
    centre = Org(uuid.uuid4(), codes.next(), "基准测试公共资源交易中心")
    supervision = Org(uuid.uuid4(), codes.next(), "基准测试招标投标监督管理办公室")
    agency_user, centre_user = uuid.uuid4(), uuid.uuid4()
    witness_user, approver_user = uuid.uuid4(), uuid.uuid4()

    await _insert(
        engine, Specialty, [{"code": c, "parent_code": p, "name": n} for c, p, n in DEFAULT_SPECIALTIES]
    )
    await _insert(
        engine,
        Organisation,
        [
            _organisation(agency, "agency", now),
            _organisation(centre, "centre", now),
            _organisation(supervision, "supervisor", now),
        ]
        + [_organisation(org, "employer", now) for org in employers],
    )
    await _insert(
        engine,
        User,
        [
            _user(agency_user, agency, "bench-agency", ["agency"], pw, now),
            _user(centre_user, centre, "bench-centre", ["centre"], pw, now),
            _user(witness_user, supervision, "bench-witness", ["supervisor"], pw, now),
            _user(approver_user, supervision, "bench-supervisor", ["supervisor"], pw, now),
        ],
    )
    expert_ids: list[uuid.UUID] = []
    specialties = 0
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("inserting experts", total=plan.experts)
        for rows, ids in expert_batches(plan, employers, on, now, pw, rng):
            async with engine.begin() as conn:
                await conn.execute(insert(User), rows.users)
                await conn.execute(insert(Expert), rows.experts)
                await conn.execute(insert(ExpertSpecialty), rows.specialties)
            expert_ids += ids
            specialties += len(rows.specialties)
            progress.advance(task, len(ids))
    conflicted = [*bidders, tenderer, agency]
    relationships = relationship_rows(plan, expert_ids, employers, conflicted, on, now, rng)
    away = unavailability_rows(expert_ids, on, now, rng)
    credit = credit_rows(expert_ids, now, rng)
    err.print(
        f"inserting {len(relationships)} relationships, {len(away)} absences, {len(credit)} credit events"
    )
    await _insert(engine, ExpertRelationship, relationships)
    await _insert(engine, ExpertUnavailability, away)
    await _insert(engine, CreditEvent, credit)
    tender_id = await _tender(engine, agency, tenderer, bidders, now, rng)
    # A live database has planner statistics (autovacuum keeps them); a freshly bulk-loaded one must be told.
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))
    return Setting(
        tender_id=tender_id,
        evaluation_at=evaluation_at,
        agency=Principal(agency_user, agency.id, frozenset({"agency"}), "bench-agency"),
        centre=Principal(centre_user, centre.id, frozenset({"centre"}), "bench-centre"),
        witness=Principal(witness_user, supervision.id, frozenset({"supervisor"}), "bench-witness"),
        supervisor=Principal(approver_user, supervision.id, frozenset({"supervisor"}), "bench-supervisor"),
        counts={
            "experts": len(expert_ids),
            "specialty_codes": specialties,
            "employers": len(employers),
            "relationships": len(relationships),
            "unavailability": len(away),
            "credit_events": len(credit),
            "bidders": len(bidders),
        },
    )


async def _tender(
    engine: AsyncEngine, agency: Org, tenderer: Org, bidders: Sequence[Org], now: datetime, rng: random.Random
) -> uuid.UUID:
    """A works tender whose bids are opened: the state in which the agency asks for its committee."""
    tender_id, lot_id = uuid.uuid4(), uuid.uuid4()
    deadline = now - timedelta(hours=2)
    estimate = 80_000_000 * 100  # 80 million yuan
    tender = {
        "id": tender_id,
        "code": "GGZY-320100-2026-W990001",
        "title": "基准测试市政道路改扩建工程施工",
        "sector": "works",
        "method": "open",
        "status": "evaluation",
        "agency_organisation_id": agency.id,
        "tenderer_name": tenderer.name,
        "tenderer_credit_code": tenderer.credit_code,
        "region_code": "320100",
        "qualification": "市政公用工程施工总承包一级",
        "evaluation_method": "comprehensive",
        "documents_from": deadline - timedelta(days=25),
        "bid_deadline": deadline,
        "opening_window_minutes": 30,
        "custodian_organisations": [],
        "publicity_days": 3,
        "created_at": deadline - timedelta(days=30),
        "published_at": deadline - timedelta(days=25),
        "documents_issued_at": deadline - timedelta(days=25),
        "opened_at": deadline,
        "version": 1,
    }
    lot = {
        "id": lot_id,
        "tender_id": tender_id,
        "number": 1,
        "title": "第一标段",
        "estimated_price_fen": estimate,
        "deposit_fen": 800_000 * 100,
        "status": "open",
    }
    bids = [
        {
            "id": uuid.uuid4(),
            "tender_id": tender_id,
            "lot_id": lot_id,
            "organisation_id": org.id,
            "status": "submitted",
            "object_key": f"bench/bids/{n}.age",
            "sha256": DUMMY_BID_SHA256,
            "size": 0,
            "submitted_at": deadline - timedelta(hours=n + 1),
            "sequence": n + 1,
            "declared_price_fen": estimate * rng.randrange(880, 990) // 1000,
            "revealed_at": deadline,
        }
        for n, org in enumerate(bidders)
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(Tender), [tender])
        await conn.execute(insert(Lot), [lot])
        if bids:
            await conn.execute(insert(Bid), bids)
    return tender_id


# ---------------------------------------------------------------- case 1: the committee draw


@dataclass
class DrawTimes:
    draw: Samples = field(default_factory=Samples)
    request: Samples = field(default_factory=Samples)
    run: Samples = field(default_factory=Samples)
    candidates: Samples = field(default_factory=Samples)
    eligible_pool: Samples = field(default_factory=Samples)
    select: Samples = field(default_factory=Samples)
    sql_count: Samples = field(default_factory=Samples)
    rows_hashed: Samples = field(default_factory=Samples)


@dataclass
class Drawn:
    pool: int = 0
    excluded: dict[str, Any] = field(default_factory=dict)
    invited: int = 0
    status: str = ""
    candidates: int = 0
    no_account: int = 0
    sql_count: int = 0
    rows_read: int = 0
    problems: list[str] = field(default_factory=list)


def count_sql(prefixes: Sequence[str]) -> str:
    """The baseline: active experts with a wanted specialty, one plain query, no avoidance."""
    wanted = " OR ".join(f"es.code LIKE :p{i}" for i in range(len(prefixes)))
    # only numbered placeholders are formatted in; the prefixes themselves are bound parameters
    return (
        "SELECT count(DISTINCT es.expert_id) FROM expert_specialties es "  # noqa: S608
        f"JOIN experts e ON e.id = es.expert_id WHERE ({wanted}) AND e.status = 'active'"
    )


def candidate_rows_sql(prefixes: Sequence[str]) -> list[str]:
    """The baseline's reads: the rows `committees.candidates` needs (every expert with a wanted specialty, their
    specialties, relationships, absences on the day and credit in the window), as plain SQL."""
    wanted = " OR ".join(f"code LIKE :p{i}" for i in range(len(prefixes)))
    ids = f"SELECT DISTINCT expert_id FROM expert_specialties WHERE {wanted}"  # noqa: S608 - placeholders only
    return [
        "SELECT id, status, term_start, term_end, employer_credit_code, user_id FROM experts "  # noqa: S608
        f"WHERE id IN ({ids})",
        f"SELECT expert_id, code FROM expert_specialties WHERE expert_id IN ({ids})",  # noqa: S608
        "SELECT expert_id, kind, credit_code, end_on FROM expert_relationships "  # noqa: S608
        f"WHERE expert_id IN ({ids})",
        "SELECT expert_id, start_on, end_on FROM expert_unavailability "  # noqa: S608
        f"WHERE expert_id IN ({ids}) AND start_on <= :on AND end_on >= :on",
        "SELECT expert_id, sum(points) FROM expert_credit_events "  # noqa: S608
        f"WHERE at >= :start AND at < :end AND expert_id IN ({ids}) GROUP BY expert_id",
    ]


async def read_and_hash(engine: AsyncEngine, prefixes: Sequence[str], on: date) -> tuple[int, str]:
    """The draw's irreducible work: read the candidate rows and hash a snapshot of them (SHA-256 over
    each row's text). Answers the rows read and the digest."""
    start, end = pool.credit_window(on)
    params: dict[str, Any] = {f"p{i}": f"{p}%" for i, p in enumerate(prefixes)}
    params |= {"on": on, "start": start, "end": end}
    digest = hashlib.sha256()
    rows = 0
    async with engine.connect() as conn:
        for sql in candidate_rows_sql(prefixes):
            for row in await conn.execute(text(sql), params):
                digest.update("\t".join(map(str, row)).encode())
                digest.update(b"\n")
                rows += 1
    return rows, digest.hexdigest()


async def one_draw(
    sm: async_sessionmaker[AsyncSession], store: LocalObjectStore, setting: Setting, times: DrawTimes | None
) -> Drawn:
    """request_draw, then the witness's commitment (not timed: no pool work) and its reveal, which runs
    the draw (run_draw), each its own committed transaction as the requests are; then the agency asks for
    an abort and a supervisor approves it (not timed) so the tender may ask again."""
    data = schemas.DrawCreate(
        evaluation_at=setting.evaluation_at,
        quotas=[schemas.QuotaIn(specialty=s, seats=n) for s, n in QUOTAS],
        employer_limit=EMPLOYER_LIMIT,
    )
    clock = SystemClock()
    signer = LogSigner.from_secret(SECRET)
    witness, nonce = os.urandom(32), os.urandom(32)
    started = time.perf_counter()

    async def request() -> uuid.UUID:
        async with transaction(sm) as session:
            row = await committees.request_draw(
                session, setting.agency, setting.tender_id, data, store, clock.now()
            )
            return row.id

    async def run(draw_id: uuid.UUID) -> None:
        async with transaction(sm) as session:
            await selection.run_draw(
                session, setting.witness, draw_id, witness.hex(), nonce.hex(), SECRET, store, clock.now()
            )

    draw_id = await _timed(times.request if times else None, request())
    async with transaction(sm) as session:
        commitment = draw.witness_commitment(witness, nonce)
        await selection.commit_witness(
            session, setting.witness, draw_id, commitment, SECRET, signer, clock.now()
        )
    await _timed(times.run if times else None, run(draw_id))
    if times is not None:
        times.draw.runs.append(time.perf_counter() - started)
    out = Drawn()
    async with transaction(sm) as session:
        row = await committees.draw_for(session, setting.centre, draw_id)
        out.pool, out.status = row.pool_size, row.status
        # PostgreSQL's JSONB does not keep key order; the line shows the reasons sorted on both databases
        reasons = dict(sorted(row.excluded.get("by_reason", {}).items()))
        out.excluded = {"count": row.excluded.get("count"), "by_reason": reasons}
        out.invited = int(
            await session.scalar(select(func.count()).where(Invitation.draw_id == draw_id)) or 0
        )
        asked = await aborts.request_abort(
            session, setting.agency, draw_id, "benchmark round over", clock.now()
        )
        await aborts.decide_abort(
            session, setting.supervisor, draw_id, asked.id, True, None, SECRET, clock.now()
        )
    return out


async def one_breakdown(
    sm: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    setting: Setting,
    times: DrawTimes | None,
    out: Drawn,
) -> None:
    """`committees.candidates` alone, the pure avoidance and selection on its output, and the SQL count."""
    prefixes = [s for s, _ in QUOTAS]
    on = local_date(setting.evaluation_at)
    async with transaction(sm, read_only=True) as session:
        tender = await session.get(Tender, setting.tender_id)
        assert tender is not None
        found = await _timed(
            times.candidates if times else None, committees.candidates(session, prefixes, tender, on)
        )
        out.candidates = len(found)
        out.no_account = sum(1 for c in found if not c.has_account)
        # the same parties request_draw computes (agency, tenderer, bidders), read here outside the timing
        bidders = frozenset(
            (
                await session.scalars(
                    select(Organisation.credit_code)
                    .join(Bid, Bid.organisation_id == Organisation.id)
                    .where(Bid.tender_id == tender.id, Bid.status == "submitted")
                )
            ).all()
        )
        agency = await session.get(Organisation, tender.agency_organisation_id)
        assert agency is not None
    parties = frozenset(c for c in (agency.credit_code, tender.tenderer_credit_code) if c)
    ctx = draw.Context(on=on, bidders=bidders, parties=parties)
    started = time.perf_counter()
    eligible, _ = draw.eligible_pool(found, ctx, prefixes)
    middle = time.perf_counter()
    quotas = [draw.Quota(s, n) for s, n in QUOTAS]
    draw.select(eligible, quotas, draw.final_seed(os.urandom(32), os.urandom(32)), EMPLOYER_LIMIT)
    if times is not None:
        times.eligible_pool.runs.append(middle - started)
        times.select.runs.append(time.perf_counter() - middle)
    params = {f"p{i}": f"{p}%" for i, p in enumerate(prefixes)}
    async with engine.connect() as conn:
        started = time.perf_counter()
        out.sql_count = int(await conn.scalar(text(count_sql(prefixes)), params) or 0)
        if times is not None:
            times.sql_count.runs.append(time.perf_counter() - started)
    started = time.perf_counter()
    out.rows_read, _ = await read_and_hash(engine, prefixes, on)
    if times is not None:
        times.rows_hashed.runs.append(time.perf_counter() - started)


async def measure_draw(
    engine: AsyncEngine, setting: Setting, store: LocalObjectStore, repeat: int, err: Console
) -> tuple[DrawTimes, Drawn]:
    """One warm-up round, then `repeat` rounds of the draw, its breakdown and the baseline, interleaved."""
    sm = create_sessionmaker(engine)
    times = DrawTimes()
    committee = sum(n for _, n in QUOTAS)
    problems: list[str] = []
    drawn = Drawn()
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("drawing committees", total=repeat + 1)
        for round_ in range(repeat + 1):
            measured = times if round_ else None  # round 0 warms the caches of both sides
            drawn = await one_draw(sm, store, setting, measured)
            await one_breakdown(sm, engine, setting, measured, drawn)
            if drawn.invited != committee or drawn.status != "inviting":
                problems.append(
                    f"round {round_}: {drawn.invited} of {committee} seats invited, the draw is {drawn.status}"
                )
            if drawn.pool == 0:
                problems.append(f"round {round_}: the eligible pool is empty")
            progress.advance(task)
    drawn.problems = problems
    return times, drawn


# ---------------------------------------------------------------- case 2: score aggregation


def score_scheme() -> scoring.Scheme:
    """A comprehensive works scheme: 4 groups of 10 subjective leaves (1.75 points each) and the price
    (30 points), read and validated from its JSON form as a tender's scheme is."""
    groups = [
        {
            "code": f"G{g + 1}",
            "title": f"评审因素组 {g + 1}",
            "kind": scoring.GROUP,
            "max_cp": LEAVES_PER_GROUP * LEAF_CP,
            "children": [
                {
                    "code": f"G{g + 1}.{leaf + 1}",
                    "title": f"评审因素 {g + 1}.{leaf + 1}",
                    "kind": scoring.SUBJECTIVE,
                    "max_cp": LEAF_CP,
                }
                for leaf in range(LEAVES_PER_GROUP)
            ],
        }
        for g in range(GROUPS)
    ]
    price = {"code": "P", "title": "价格分 (基准价法)", "kind": scoring.PRICE, "max_cp": PRICE_CP}
    return scoring.scheme_from_json(
        {
            "method": scoring.COMPREHENSIVE,
            "category": "works",
            "criteria": [*groups, price],
            "qualification": [{"code": "Q1", "title": "营业执照与资质"}],
        }
    )


def score_sheets(
    scheme: scoring.Scheme, rng: random.Random
) -> tuple[list[scoring.BidPrice], dict[str, scoring.Sheet]]:
    """SCORED_BIDS bids and MEMBERS sheets: each bid has a quality, each member scores around it; one
    member is harsh enough for G-10 to flag some totals."""
    subjective = [leaf for leaf in scoring.leaves(scheme) if leaf.kind == scoring.SUBJECTIVE]
    bids = [
        scoring.BidPrice(f"bid-{n + 1:02d}", rng.randrange(70_000_000, 80_000_000) * 100)
        for n in range(SCORED_BIDS)
    ]
    quality = {b.bid_id: rng.uniform(0.5, 0.95) for b in bids}
    sheets: dict[str, scoring.Sheet] = {}
    for m in range(MEMBERS):
        bias = -0.3 if m == MEMBERS - 1 else rng.uniform(-0.05, 0.05)
        sheets[f"member-{m + 1}"] = {
            b.bid_id: {
                leaf.code: max(
                    0, min(leaf.max_cp, round(leaf.max_cp * (quality[b.bid_id] + bias + rng.gauss(0, 0.05))))
                )
                for leaf in subjective
            }
            for b in bids
        }
    return bids, sheets


def plain_sum(sheets: dict[str, scoring.Sheet]) -> int:
    """The baseline: every score added up, nothing checked."""
    return sum(cp for sheet in sheets.values() for scores in sheet.values() for cp in scores.values())


def measure_scoring(repeat: int, seed: int) -> dict[str, Any]:
    """aggregate and abnormal_scores over the same sheets, next to plain_sum, after one warm-up each."""
    scheme = score_scheme()
    bids, sheets = score_sheets(scheme, random.Random(seed))
    tie_seed = os.urandom(32)
    aggregate, abnormal, baseline = Samples(), Samples(), Samples()
    outcome: scoring.Outcome | None = None
    flagged: list[scoring.Abnormal] = []
    total = 0
    for round_ in range(repeat + 1):
        started = time.perf_counter()
        outcome = scoring.aggregate(scheme, bids, sheets, tie_seed)
        second = time.perf_counter()
        flagged = scoring.abnormal_scores(scheme, sheets)
        third = time.perf_counter()
        total = plain_sum(sheets)
        fourth = time.perf_counter()
        if round_:
            aggregate.runs.append(second - started)
            abnormal.runs.append(third - second)
            baseline.runs.append(fourth - third)
    assert outcome is not None
    subjective = [leaf for leaf in scoring.leaves(scheme) if leaf.kind == scoring.SUBJECTIVE]
    return {
        "members": len(sheets),
        "criteria": len(subjective),
        "bids": len(bids),
        "scores": len(sheets) * len(subjective) * len(bids),
        "repeat": repeat,
        "aggregate_median_s": aggregate.median,
        "aggregate_min_s": aggregate.fastest,
        "abnormal_median_s": abnormal.median,
        "abnormal_min_s": abnormal.fastest,
        "plain_sum_median_s": baseline.median,
        "plain_sum_min_s": baseline.fastest,
        "ratio": _ratio(aggregate.median, baseline.median),
        "abnormal_ratio": _ratio(abnormal.median, baseline.median),
        "sum_cp": total,
        "candidates": len(outcome.candidates),
        "abnormal_flagged": len(flagged),
    }


# ---------------------------------------------------------------- the command


async def run_bench(plan: Plan, err: Console) -> list[str]:
    """Set up, measure both cases, print their lines. Answers the problems found."""
    async with contextlib.AsyncExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ggzy-bench-draw-")))
        url = plan.database_url or f"sqlite+aiosqlite:///{scratch / 'bench.db'}"
        database = make_url(url).get_backend_name()
        err.print(f"migrating the {database} scratch database")
        await upgrade_async(url)
        engine = create_engine(url)
        stack.push_async_callback(engine.dispose)
        started = time.perf_counter()
        setting = await fill(engine, plan, err)
        fill_seconds = time.perf_counter() - started
        store = LocalObjectStore(scratch / "objects", "http://127.0.0.1/api/v1/objects", os.urandom(32))
        await store.ensure_ready()
        common: dict[str, Any] = {"database": database}
        if database == "postgresql":
            async with engine.connect() as conn:
                common["server_version"] = str(await conn.scalar(text("SHOW server_version")))
        err.print(f"filled in {fill_seconds:.1f} s: {setting.counts}; measuring")
        times, drawn = await measure_draw(engine, setting, store, plan.repeat, err)
        prefixes = [s for s, _ in QUOTAS]
        _line(
            "committee",
            experts=setting.counts["experts"],
            relationships=setting.counts["relationships"],
            employers=setting.counts["employers"],
            bidders=setting.counts["bidders"],
            unavailability=setting.counts["unavailability"],
            credit_events=setting.counts["credit_events"],
            quotas=dict(QUOTAS),
            employer_limit=EMPLOYER_LIMIT,
            committee=sum(n for _, n in QUOTAS),
            invited=drawn.invited,
            status=drawn.status,
            candidates=drawn.candidates,
            pool=drawn.pool,
            excluded=drawn.excluded,
            repeat=plan.repeat,
            draw_median_s=times.draw.median,
            draw_min_s=times.draw.fastest,
            request_median_s=times.request.median,
            run_median_s=times.run.median,
            candidates_median_s=times.candidates.median,
            candidates_min_s=times.candidates.fastest,
            eligible_pool_median_s=times.eligible_pool.median,
            select_median_s=times.select.median,
            sql=count_sql(prefixes),
            sql_count=drawn.sql_count,
            sql_count_median_s=times.sql_count.median,
            sql_count_min_s=times.sql_count.fastest,
            baseline="the candidate rows read and hashed (candidate_rows_sql, SHA-256)",
            rows_read=drawn.rows_read,
            baseline_median_s=times.rows_hashed.median,
            baseline_min_s=times.rows_hashed.fastest,
            baseline_max_s=times.rows_hashed.slowest,
            draw_max_s=times.draw.slowest,
            ratio=_ratio(times.draw.median, times.rows_hashed.median),
            candidates_ratio=_ratio(times.candidates.median, times.rows_hashed.median),
            target_max_ratio=TARGET_DRAW_RATIO,
            ratio_to_count=_ratio(times.draw.median, times.sql_count.median),
            fill_s=round(fill_seconds, 1),
            **common,
        )
    _line("score_aggregation", **measure_scoring(plan.repeat, plan.seed))
    return drawn.problems


@click.command("draw")
@click.option(
    "--experts",
    type=click.IntRange(1, 10_000_000),
    default=50_000,
    show_default=True,
    help="Experts in the pool (one employer per 25 of them).",
)
@click.option(
    "--relationships",
    type=click.IntRange(0, 10_000_000),
    default=2000,
    show_default=True,
    help="Declared relationships (former employers, relatives' organisations).",
)
@repeat_option(
    default=5,
    most=1000,
    help="Measured rounds of each case, after one warm-up round; the median and the fastest are reported.",
)
@click.option("--seed", type=int, default=2026, show_default=True, help="Seed of the scratch data.")
@click.option(
    "--database-url",
    default=None,
    help="An EMPTY database to fill instead of a scratch SQLite file (e.g. postgresql+asyncpg://…).",
)
def draw_command(experts: int, relationships: int, repeat: int, seed: int, database_url: str | None) -> None:
    """A committee draw from a large expert pool, and a committee's scores, each next to plain SQL.

    A 7-member committee drawn with avoidance from a pool of --experts (request_draw and run_draw)
    next to a plain SQL count of the pool, and score aggregation for 9 members x 40 criteria x 30 bids next
    to a plain sum of the scores."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    problems = asyncio.run(run_bench(Plan(experts, relationships, repeat, seed, database_url), err))
    for problem in problems[:20]:
        err.print(f"[red]{problem}[/]", markup=True, highlight=False)
    if problems:
        raise SystemExit(1)
