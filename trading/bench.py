"""`ggzy bench …`: benchmarks that print one JSON line per measurement and never pass or fail on time.

`ggzy bench notices` fills a scratch database with tenders and their public notices (bulk SQLAlchemy core
inserts, not the API: filling is not what is measured), serves it with the real `ggzy serve` in a child
process on a free loopback port, and measures the public notice board with a fixed number of requests at a
fixed concurrency, after a warm-up. Each line carries the same run's `/health` rate as its baseline, so a
figure reads as "this fraction of what the server answers when it does nothing", which travels between
machines better than a bare requests-per-second. A non-200 answer is counted as an error; any error makes
the exit status 1.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts import schemas as account_schemas
from accounts import service as accounts
from accounts.uscc import make_uscc
from storage.clock import Clock, SystemClock
from storage.db import create_engine, create_sessionmaker, transaction
from storage.migrate import upgrade_async
from trading.models import Lot, Notice, Tender
from trading.profiles import WORKS_OPEN, deposit_cap

BATCH = 1000
SERVER_START_SECONDS = 60.0
SERVER_STOP_SECONDS = 15.0
REQUEST_TIMEOUT_SECONDS = 30.0
MAX_WARMUP = 100
SEARCH_WORD = "污水处理"
RESULT_REGION = "320500"
TENDERING_DAYS = 24  # tenders published more recently than this are still open for bids
COMPLETED_AFTER_DAYS = 40  # deadline (25 days) + candidates (3) + result (8), with room to spare
HISTORY_DAYS = 365

REGIONS = {
    "320100": "南京市",
    "320200": "无锡市",
    "320300": "徐州市",
    "320400": "常州市",
    "320500": "苏州市",
    "320600": "南通市",
    "320700": "连云港市",
    "320800": "淮安市",
    "320900": "盐城市",
    "321000": "扬州市",
    "321100": "镇江市",
    "321200": "泰州市",
    "321300": "宿迁市",
}
DISTRICTS = ("城南", "江北新区", "高新区", "经济开发区", "滨江", "老城", "临港", "东部新城", "湖西", "北郊")
SUBJECTS = (
    "污水处理厂",
    "第一中学教学楼",
    "人民医院门诊综合楼",
    "滨江大道",
    "保障性住房",
    "地下综合管廊",
    "体育中心",
    "城市中央公园",
    "110千伏变电站",
    "水库除险加固",
    "跨江大桥",
    "地铁站点",
    "生活垃圾焚烧发电厂",
    "智慧交通信号",
    "老旧小区",
    "农村公路",
    "河道综合整治",
    "市民图书馆",
    "消防救援站",
    "供水管网",
)
WORKS = ("新建工程", "改扩建工程", "提标改造工程", "维修加固工程", "提升改造工程", "配套工程")
CONTRACTS = ("施工", "施工总承包", "监理", "设计施工总承包（EPC）", "勘察设计")
TENDERERS = (
    "城市建设投资集团有限公司",
    "交通建设发展有限公司",
    "水务集团有限公司",
    "教育局",
    "卫生健康委员会",
)
BIDDERS = (
    "江苏宁远建设集团有限公司",
    "南京恒泰市政工程有限公司",
    "江苏中盛路桥工程有限公司",
    "苏州吴越建设工程有限公司",
)


# ---------------------------------------------------------------- the scratch data


@dataclass
class Filled:
    """What went into the scratch database."""

    tenders: int
    notices: int


def _title(rng: random.Random, city: str) -> str:
    return f"{city}{rng.choice(DISTRICTS)}{rng.choice(SUBJECTS)}{rng.choice(WORKS)}{rng.choice(CONTRACTS)}"


def _rows(
    index: int, total: int, anchor: datetime, agency_id: uuid.UUID, rng: random.Random
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """One tender, its lot and its notices; newer tenders are still open, older ones closed."""
    region = rng.choice(list(REGIONS))
    city = REGIONS[region]
    title = _title(rng, city)
    published = anchor - timedelta(hours=1, seconds=index * HISTORY_DAYS * 86_400 // total)
    deadline = published + timedelta(days=WORKS_OPEN.documents_to_deadline_days + 5)
    age = anchor - published
    tendering = age < timedelta(days=TENDERING_DAYS)
    # Only trades closed long enough ago have their candidates and result out (no notice is dated after now).
    completed = age >= timedelta(days=COMPLETED_AFTER_DAYS) and index % 3 == 0
    estimate = rng.randrange(100_000, 50_000_000) * 100
    tender_id = uuid.uuid4()
    code = f"GGZY-{region}-{published.year}-W{index + 1:06d}"
    tender = {
        "id": tender_id,
        "code": code,
        "title": title,
        "sector": "works",
        "method": "open",
        "status": "tendering" if tendering else "completed" if completed else "evaluation",
        "agency_organisation_id": agency_id,
        "tenderer_name": f"{city}{rng.choice(TENDERERS)}",
        "region_code": region,
        "qualification": "市政公用工程施工总承包二级及以上资质",
        "evaluation_method": "comprehensive",
        "documents_from": published,
        "bid_deadline": deadline,
        "opening_window_minutes": WORKS_OPEN.opening_window_minutes,
        "publicity_days": WORKS_OPEN.publicity_min_days,
        "created_at": published - timedelta(days=1),
        "published_at": published,
        "documents_issued_at": published,
        "opened_at": None if tendering else deadline,
        "closed_at": deadline + timedelta(days=20) if completed else None,
        # Open tenders are due at their deadline, after the run: the live chronograph finds nothing to do.
        "next_check": deadline if tendering else None,
        "version": 1,
    }
    lot = {
        "id": uuid.uuid4(),
        "tender_id": tender_id,
        "number": 1,
        "title": "第一标段",
        "estimated_price_fen": estimate,
        "deposit_fen": deposit_cap(WORKS_OPEN, estimate),
        "status": "contracted" if completed else "open",
    }

    def notice(kind: str, suffix: str, body: dict[str, Any], at: datetime) -> dict[str, Any]:
        return {
            "id": uuid.uuid4(),
            "tender_id": tender_id,
            "kind": kind,
            "sector": "works",
            "region_code": region,
            "tender_code": code,
            "title": f"{title} {suffix}",
            "body": body,
            "published_at": at,
            "supersedes_id": None,
            "superseded_by_id": None,
        }

    notices = [
        notice(
            "tender_notice",
            "招标公告",
            {
                "tenderer": tender["tenderer_name"],
                "qualification": tender["qualification"],
                "evaluation_method": "comprehensive",
                "documents_from": published.isoformat(),
                "bid_deadline": deadline.isoformat(),
                "lots": [{"number": 1, "title": "第一标段", "estimated_price_fen": estimate}],
            },
            published,
        )
    ]
    if completed:
        price = estimate * rng.randrange(900, 990) // 1000
        candidates = [
            {"rank": n, "bidder": name, "declared_price_fen": price + (n - 1) * estimate // 200}
            for n, name in enumerate(rng.sample(BIDDERS, 3), start=1)
        ]
        notices.append(
            notice(
                "candidates",
                "中标候选人公示",
                {"lots": [{"lot": 1, "candidates": candidates}]},
                deadline + timedelta(days=3),
            )
        )
        notices.append(
            notice(
                "result",
                "中标结果公告",
                {"lots": [{"lot": 1, "winner": candidates[0]["bidder"], "price_fen": price}]},
                deadline + timedelta(days=8),
            )
        )
    return tender, lot, notices


def _batches(
    total: int, anchor: datetime, agency_id: uuid.UUID, seed: int
) -> Iterator[tuple[list[Any], list[Any], list[Any]]]:
    rng = random.Random(seed)
    for start in range(0, total, BATCH):
        tenders, lots, notices = [], [], []
        for index in range(start, min(start + BATCH, total)):
            tender, lot, more = _rows(index, total, anchor, agency_id, rng)
            tenders.append(tender)
            lots.append(lot)
            notices.extend(more)
        yield tenders, lots, notices


async def _agency(engine: AsyncEngine, clock: Clock) -> uuid.UUID:
    """The agency that runs every bench tender, registered through the accounts service."""
    data = account_schemas.RegistrationCreate(
        organisation_name="基准测试招标代理有限公司",
        credit_code=make_uscc(f"91320100{secrets.randbelow(10**9):09d}"),
        kind="agency",
        username=f"bench-{secrets.token_hex(4)}",
        password=secrets.token_urlsafe(24),
        display_name="bench",
        contact_email="bench@example.invalid",
    )
    async with transaction(create_sessionmaker(engine)) as session:
        org = await accounts.register(session, data, clock.now())
        assert org is not None, "a fresh credit code and username cannot collide"
        return org.id


async def fill(engine: AsyncEngine, tenders: int, clock: Clock, err: Console, *, seed: int = 2026) -> Filled:
    """Bulk-insert `tenders` tenders with one lot and their notices each, in batches of BATCH."""
    async with engine.connect() as conn:
        existing = await conn.scalar(select(func.count()).select_from(Tender))
    if existing:
        raise click.UsageError(f"the database already holds {existing} tenders; benchmark on an empty one")
    agency_id = await _agency(engine, clock)
    notices = 0
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("inserting tenders", total=tenders)
        for tender_rows, lot_rows, notice_rows in _batches(tenders, clock.now(), agency_id, seed):
            async with engine.begin() as conn:
                await conn.execute(insert(Tender), tender_rows)
                await conn.execute(insert(Lot), lot_rows)
                await conn.execute(insert(Notice), notice_rows)
            notices += len(notice_rows)
            progress.advance(task, len(tender_rows))
    # A live database has planner statistics (autovacuum keeps them); a freshly bulk-loaded one must be told.
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))
    return Filled(tenders, notices)


# ---------------------------------------------------------------- the server under test


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve_command() -> list[str]:
    """`ggzy serve` from this very installation: the script beside the interpreter, else `python -m ggzy`."""
    script = Path(sys.executable).with_name("ggzy")
    return [str(script), "serve"] if script.exists() else [sys.executable, "-m", "ggzy", "serve"]


def start_server(database_url: str, var_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`ggzy serve` on the scratch data: only our GGZY_* variables, so it is the embedded setup."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
    env |= {
        "GGZY_DATABASE_URL": database_url,
        "GGZY_VAR_DIR": str(var_dir),
        "GGZY_HOST": "127.0.0.1",
        "GGZY_PORT": str(port),
    }
    with log.open("wb") as out:
        # The command is this installation's own `ggzy`, with fixed arguments.
        return subprocess.Popen(  # noqa: S603
            _serve_command(), env=env, cwd=var_dir, stdout=out, stderr=subprocess.STDOUT
        )


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it does not go in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=SERVER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=SERVER_STOP_SECONDS)


async def wait_healthy(client: httpx.AsyncClient, process: subprocess.Popen[bytes]) -> None:
    """Poll /health until it answers 200; fail if the server exits or takes too long."""
    async with asyncio.timeout(SERVER_START_SECONDS):
        while True:
            if process.poll() is not None:
                raise click.ClickException(f"the server exited with status {process.returncode}")
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


# ---------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Case:
    """One measured request: a name and the URL path with its query."""

    name: str
    path: str
    params: dict[str, str]

    @property
    def url(self) -> str:
        return str(httpx.URL(self.path, params=self.params))


@dataclass(frozen=True)
class Measurement:
    case: Case
    requests: int
    concurrency: int
    seconds: float
    latencies: Sequence[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000


async def hammer(client: httpx.AsyncClient, case: Case, requests: int, concurrency: int) -> Measurement:
    """Send `requests` GETs for `case` from `concurrency` workers; every answer must be a 200."""
    latencies: list[float] = []
    errors = 0
    remaining = requests

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            # perf_counter measures a duration; it is not the time of day the injected clock stands for.
            started = time.perf_counter()
            try:
                ok = (await client.get(case.path, params=case.params)).status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            errors += not ok

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, requests))))
    return Measurement(case, requests, concurrency, time.perf_counter() - started, latencies, errors)


async def page_cursor(client: httpx.AsyncClient, page: int) -> str:
    """The cursor that fetches page `page` (1-based, 20 notices a page) of the board."""
    cursor = ""
    for _ in range(page - 1):
        params = {"limit": "20", **({"cursor": cursor} if cursor else {})}
        answer = await client.get("/api/v1/notices", params=params)
        answer.raise_for_status()
        cursor = answer.json()["next_cursor"]
        if not cursor:
            raise click.ClickException(f"the board has fewer than {page} pages")
    return cursor


async def cases(client: httpx.AsyncClient) -> list[Case]:
    """What the public board is asked most, after the do-nothing baseline."""
    return [
        Case("health", "/health", {}),
        Case("notices_first_page", "/api/v1/notices", {"limit": "20"}),
        Case("notices_page_5", "/api/v1/notices", {"limit": "20", "cursor": await page_cursor(client, 5)}),
        Case("notices_search", "/api/v1/notices", {"q": SEARCH_WORD, "limit": "20"}),
        Case("notices_kind_region", "/api/v1/notices", {"kind": "result", "region_code": RESULT_REGION}),
    ]


def result_line(m: Measurement, baseline: Measurement, filled: Filled, database: str) -> dict[str, Any]:
    """The JSON line of one measurement."""
    return {
        "bench": "notices",
        "case": m.case.name,
        "url": m.case.url,
        "requests": m.requests,
        "concurrency": m.concurrency,
        "seconds": round(m.seconds, 3),
        "rps": round(m.rps, 1),
        "p50_ms": round(m.percentile_ms(50), 2),
        "p99_ms": round(m.percentile_ms(99), 2),
        "errors": m.errors,
        "tenders": filled.tenders,
        "notices": filled.notices,
        "database": database,
        "baseline_rps": round(baseline.rps, 1),
        "ratio_to_health": round(m.rps / baseline.rps, 3) if baseline.rps else None,
    }


@dataclass(frozen=True)
class Plan:
    tenders: int
    requests: int
    concurrency: int
    database_url: str | None
    max_seconds: float


async def run_notices(plan: Plan, err: Console) -> int:
    """Fill, serve, measure; one JSON line per case on stdout. Returns how many requests failed."""
    with tempfile.TemporaryDirectory(prefix="ggzy-bench-") as tmp:
        scratch = Path(tmp)
        url = plan.database_url or f"sqlite+aiosqlite:///{scratch / 'bench.db'}"
        database = make_url(url).get_backend_name()
        err.print(f"migrating the {database} scratch database")
        await upgrade_async(url)
        engine = create_engine(url)
        try:
            filled = await fill(engine, plan.tenders, SystemClock(), err)
        finally:
            await engine.dispose()
        err.print(f"{filled.tenders} tenders, {filled.notices} notices; starting `ggzy serve`")
        port = _free_port()
        log = scratch / "server.log"
        process = start_server(url, scratch, port, log)
        try:
            async with asyncio.timeout(plan.max_seconds):
                return await _measure(plan, filled, database, port, process, err)
        except BaseException:
            err.print(f"[red]server log ({log.name}), last lines:[/]")
            err.print(log.read_text(errors="replace")[-3000:], markup=False)
            raise
        finally:
            stop_server(process)


async def _measure(
    plan: Plan,
    filled: Filled,
    database: str,
    port: int,
    process: subprocess.Popen[bytes],
    err: Console,
) -> int:
    limits = httpx.Limits(max_connections=plan.concurrency, max_keepalive_connections=plan.concurrency)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=REQUEST_TIMEOUT_SECONDS, limits=limits
    ) as client:
        await wait_healthy(client, process)
        baseline: Measurement | None = None
        errors = 0
        for case in await cases(client):
            err.print(f"measuring {case.name}: {case.url}")
            await hammer(client, case, min(plan.requests, MAX_WARMUP), plan.concurrency)
            m = await hammer(client, case, plan.requests, plan.concurrency)
            baseline = baseline or m
            errors += m.errors
            click.echo(json.dumps(result_line(m, baseline, filled, database), ensure_ascii=False))
        return errors


# ---------------------------------------------------------------- commands


@click.command("notices")
@click.option(
    "--tenders",
    type=click.IntRange(1, 1_000_000),
    default=10_000,
    show_default=True,
    help="Tenders to fill the board with.",
)
@click.option(
    "--requests",
    "requests_",
    type=click.IntRange(1, 1_000_000),
    default=2000,
    show_default=True,
    help="Requests per measurement.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 512),
    default=16,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option(
    "--database-url",
    default=None,
    help="An EMPTY database to fill instead of a scratch SQLite file (e.g. postgresql+asyncpg://…).",
)
@click.option(
    "--max-seconds",
    type=click.FloatRange(1),
    default=900.0,
    show_default=True,
    help="Give up after this long.",
)
def notices(
    tenders: int, requests_: int, concurrency: int, database_url: str | None, max_seconds: float
) -> None:
    """The public notice board: list, page 5 by cursor, search, filter — next to /health on the same server."""
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one log line per request would be the bench
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    plan = Plan(tenders, requests_, concurrency, database_url, max_seconds)
    errors = asyncio.run(run_notices(plan, err))
    if errors:
        err.print(f"[red]{errors} requests did not answer 200[/]")
        raise SystemExit(1)
