"""`ggzy bench …`: benchmarks that print one JSON line per measurement and never pass or fail on time.

`ggzy bench notices` fills a scratch database with tenders and their public notices (bulk SQLAlchemy core
inserts, not the API: filling is not what is measured), serves it with the real `ggzy serve` in a child
process on a free loopback port, and drives the public notice board with `wrk`, a C load generator
(Debian's package `wrk`), so the figure is the server's and not a Python client's. Every round runs every
case, `/health` included, for `--seconds` each, and each case's ratio is its rate over `/health`'s in the
same round: "this fraction of what the server answers when it does nothing", which travels between
machines better than a bare requests-per-second. Lines give the median over the rounds with min and max.
A non-2xx answer or a socket error is counted as an error; any error makes the exit status 1.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
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
from rules.profiles import WORKS_OPEN, deposit_cap
from storage.benchmark import Spread, emit, repeat_option
from storage.clock import Clock, SystemClock
from storage.db import create_engine, create_sessionmaker, transaction
from storage.migrate import upgrade_async
from trading.models import Lot, Notice, Tender

BATCH = 1000
SERVER_START_SECONDS = 60.0
SERVER_STOP_SECONDS = 15.0
REQUEST_TIMEOUT_SECONDS = 30.0
TARGET_VS_HEALTH = 0.3  # the public board at least this fraction of /health's rate, on PostgreSQL
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

WRK_THREADS = 1  # one load-generator thread leaves the other core to the server on a 2-core machine
_LATENCY = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([0-9.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


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
class Round:
    """What one `wrk` run of one case reported."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int


def wrk_path() -> str | None:
    """The `wrk` load generator (Debian's package `wrk`), if installed."""
    return shutil.which("wrk")


def parse_wrk(output: str) -> Round:
    """Requests, duration, rate, latency percentiles and errors from `wrk --latency`'s report."""
    done = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m)", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s+([0-9.]+)", output, re.MULTILINE)
    if done is None or rate is None:
        raise click.ClickException(f"wrk gave no figures:\n{output[-2000:]}")
    seconds = float(done.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[done.group(3)]
    latency = {int(p): float(v) * _UNIT_MS[unit] for p, v, unit in _LATENCY.findall(output)}
    errors = 0
    if (non_2xx := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)) is not None:
        errors += int(non_2xx.group(1))
    if socket := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(int(n) for n in socket.groups())
    return Round(
        requests=int(done.group(1)),
        seconds=seconds,
        rps=float(rate.group(1)),
        p50_ms=round(latency[50], 3) if 50 in latency else None,
        p99_ms=round(latency[99], 3) if 99 in latency else None,
        errors=errors,
    )


def run_wrk(wrk: str, base: str, case: Case, seconds: float, concurrency: int) -> Round:
    """One `wrk` run against `case` for `seconds` on `concurrency` keep-alive connections."""
    command = [
        wrk,
        f"-t{WRK_THREADS}",
        f"-c{concurrency}",
        f"-d{max(1, math.ceil(seconds))}s",
        f"--timeout={int(REQUEST_TIMEOUT_SECONDS)}s",
        "--latency",
        base + case.url,
    ]
    # the installed wrk with fixed arguments against our own loopback server
    run = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, check=False)  # noqa: S603
    if run.returncode != 0:
        raise click.ClickException(f"wrk failed (exit {run.returncode}): {run.stderr[-2000:]}")
    return parse_wrk(run.stdout)


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


def result_line(
    case: Case, rounds: Sequence[Round], health: Sequence[Round], plan: Plan, filled: Filled, database: str
) -> dict[str, Any]:
    """The JSON line of one case: its rate over the rounds and its ratio to /health in the same rounds."""
    rps = Spread(tuple(r.rps for r in rounds))
    ratios = Spread(tuple(r.rps / h.rps if h.rps else 0.0 for r, h in zip(rounds, health, strict=True)))
    middle = sorted(rounds, key=lambda r: r.rps)[len(rounds) // 2]
    return {
        "url": case.url,
        "load_generator": f"wrk -t{WRK_THREADS} -c{plan.concurrency} -d{plan.seconds}s",
        "concurrency": plan.concurrency,
        "requests": sum(r.requests for r in rounds),
        **rps.fields("rps", 1),
        "p50_ms": middle.p50_ms,
        "p99_ms": middle.p99_ms,
        "errors": sum(r.errors for r in rounds),
        "tenders": filled.tenders,
        "notices": filled.notices,
        "database": database,
        "baseline_rps": round(Spread(tuple(h.rps for h in health)).median, 1),
        **ratios.fields("ratio_to_health", 3),
        "target_min_ratio": None if case.name == "health" else TARGET_VS_HEALTH,
    }


@dataclass(frozen=True)
class Plan:
    tenders: int
    seconds: int
    repeat: int
    concurrency: int
    database_url: str | None
    max_seconds: float


async def run_notices(plan: Plan, err: Console) -> int:
    """Fill, serve, measure; one JSON line per case on stdout. Returns how many requests failed."""
    wrk = wrk_path()
    if wrk is None:
        raise click.ClickException("the wrk load generator is not installed (apt-get install wrk)")
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
                return await _measure(wrk, plan, filled, database, port, process, err)
        except BaseException:
            err.print(f"[red]server log ({log.name}), last lines:[/]")
            err.print(log.read_text(errors="replace")[-3000:], markup=False)
            raise
        finally:
            stop_server(process)


async def _measure(
    wrk: str,
    plan: Plan,
    filled: Filled,
    database: str,
    port: int,
    process: subprocess.Popen[bytes],
    err: Console,
) -> int:
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        await wait_healthy(client, process)
        measured = await cases(client)
    for case in measured:  # warm every query plan and cache before the first timed round
        await asyncio.to_thread(run_wrk, wrk, base, case, 1, plan.concurrency)
    rounds: dict[str, list[Round]] = {case.name: [] for case in measured}
    for index in range(plan.repeat):
        # /health runs next to every case in every round, so each ratio compares like with like
        for case in measured if index % 2 == 0 else list(reversed(measured)):
            err.print(f"round {index + 1}/{plan.repeat}: {case.name}")
            rounds[case.name].append(
                await asyncio.to_thread(run_wrk, wrk, base, case, plan.seconds, plan.concurrency)
            )
    errors = 0
    for case in measured:
        errors += sum(r.errors for r in rounds[case.name])
        emit(
            "notices",
            case.name,
            **result_line(case, rounds[case.name], rounds["health"], plan, filled, database),
        )
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
    "--seconds",
    type=click.IntRange(1, 3600),
    default=10,
    show_default=True,
    help="How long wrk drives each case in each round.",
)
@repeat_option()
@click.option(
    "--concurrency",
    type=click.IntRange(1, 512),
    default=16,
    show_default=True,
    help="Connections wrk keeps open at once.",
)
@click.option(
    "--database-url",
    default=None,
    help="An EMPTY database to fill instead of a scratch SQLite file (e.g. postgresql+asyncpg://…).",
)
@click.option(
    "--max-seconds",
    type=click.FloatRange(1),
    default=1800.0,
    show_default=True,
    help="Give up after this long.",
)
def notices(
    tenders: int, seconds: int, repeat: int, concurrency: int, database_url: str | None, max_seconds: float
) -> None:
    """The public notice board: list, page 5 by cursor, search, filter — driven by wrk next to /health."""
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one log line per request would be the bench
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    plan = Plan(tenders, seconds, repeat, concurrency, database_url, max_seconds)
    errors = asyncio.run(run_notices(plan, err))
    if errors:
        err.print(f"[red]{errors} requests did not answer 200[/]")
        raise SystemExit(1)
