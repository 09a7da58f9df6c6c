"""`ggzy bench chronograph`: a cluster of tenders with bids reaches its deadline in the same minute.

09:30 is every agency's favourite deadline. The bench fills a scratch database (bulk inserts, not the API:
filling is not what is measured) with `--tenders` tenders in their bidding period, each with one lot and
`--bids` submitted bids from different bidders (a real age header each, their bid events in the bidders'
logs), all due at the same deadline. Then, with a clock standing at that deadline, it runs the
chronograph's tick as `--workers` workers would, at once, each moving `--concurrency` tenders at a time,
and times it from the deadline to the commit of the last closing head. As the baseline, in the same
round and just before, one plain `UPDATE` touches the same tender rows (`next_check` set to itself) in one
transaction: what the database needs to write those rows at all.

Each round seeds a fresh cluster due a minute after the one before (the earlier ones are in their opening
windows, not due), and the rounds alternate baseline and chronograph, so drift in the machine affects both
alike. One JSON line per backend (PostgreSQL in a scratch database beside `--admin-url`, dropped after;
SQLite in a temporary file): the median, min and max over `--rounds`, the ratio of the medians, the 60 s
target on PostgreSQL (reported, never enforced) and whether every tender was closed exactly once (one
closing head, one audited move). The exit status is 1 only when a tender was not closed or closed twice,
never because of time. The time runs from the tick at the deadline: a live chronograph adds up to one
period (`GGZY_TICK_SECONDS`) before its first tick after the deadline.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from rich.console import Console
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import bidding.stage  # noqa: F401 - plugs the bid stage in: the deadline's closing is what the tick runs
from accounts import schemas as account_schemas
from accounts import service as accounts
from accounts.models import AuditEvent
from accounts.uscc import make_uscc
from bidding import envelope
from bidding.models import BidderLog, BidEvent, Closing, Envelope, TenderLog
from rules.calendar import SHANGHAI
from rules.profiles import WORKS_OPEN
from storage.clock import SystemClock
from storage.db import create_engine, create_sessionmaker, scratch_database, transaction
from storage.migrate import upgrade_async
from storage.signing import LogSigner
from trading import chronograph
from trading.models import Bid, Lot, Tender

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
TARGET_SECONDS = 60.0
BATCH = 500
SEAL_TIME = "09:30"
MAX_ROUNDS = 20  # rounds a minute apart, all inside the first cluster's 30-minute opening window


@dataclass(frozen=True)
class Parties:
    """The agency that runs every bench tender and the bidders that bid on each."""

    agency: uuid.UUID
    bidders: list[tuple[uuid.UUID, bytes]]  # organisation id, X25519 public key


@dataclass
class Round:
    """One round's figures."""

    baseline_s: float
    chronograph_s: float
    moved: int


async def _register(session: AsyncSession, kind: str, name: str) -> uuid.UUID:
    data = account_schemas.RegistrationCreate(
        organisation_name=name,
        credit_code=make_uscc(f"91320100{secrets.randbelow(10**9):09d}"),
        kind=kind,  # type: ignore[arg-type]
        username=f"bench-{secrets.token_hex(4)}",
        password=secrets.token_urlsafe(24),
        display_name="bench",
        contact_email="bench@example.invalid",
    )
    org = await accounts.register(session, data, SystemClock().now())
    assert org is not None, "a fresh credit code and username cannot collide"
    return org.id


async def parties(sessionmaker: async_sessionmaker[AsyncSession], bidders: int) -> Parties:
    """Register the agency and `bidders` bidders through the accounts service."""
    async with transaction(sessionmaker) as session:
        agency = await _register(session, "agency", "基准测试招标代理有限公司")
        found = []
        for n in range(bidders):
            org = await _register(session, "bidder", f"基准测试投标人{n + 1}有限公司")
            key = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            found.append((org, key))
    return Parties(agency, found)


def _rows(
    who: Parties, code: str, deadline: datetime, bids: int
) -> tuple[dict[str, Any], dict[str, Any], list[list[dict[str, Any]]]]:
    """One tender due at `deadline`, its lot, and per bid the rows a submission leaves."""
    tender_id, lot_id = uuid.uuid4(), uuid.uuid4()
    published = deadline - timedelta(days=WORKS_OPEN.documents_to_deadline_days + 1)
    tender = {
        "id": tender_id,
        "code": code,
        "title": f"基准测试 {code} 施工",
        "sector": "works",
        "method": "open",
        "status": "tendering",
        "agency_organisation_id": who.agency,
        "tenderer_name": "城市建设投资集团有限公司",
        "region_code": "320100",
        "qualification": "市政公用工程施工总承包二级及以上资质",
        "evaluation_method": "comprehensive",
        "documents_from": published,
        "bid_deadline": deadline,
        "opening_window_minutes": WORKS_OPEN.opening_window_minutes,
        "opening_policy": "revoke",
        "custody_threshold": 2,
        "custodian_organisations": [],
        "publicity_days": WORKS_OPEN.publicity_min_days,
        "created_at": published - timedelta(days=1),
        "published_at": published,
        "documents_issued_at": published,
        "next_check": deadline,
        "version": 1,
    }
    lot = {
        "id": lot_id,
        "tender_id": tender_id,
        "number": 1,
        "title": "第一标段",
        "estimated_price_fen": 1_000_000_000,
        "deposit_fen": 0,
        "status": "open",
    }
    per_bid = []
    for seq, (org, public) in enumerate(who.bidders[:bids], start=1):
        bid_id, log_row_id = uuid.uuid4(), uuid.uuid4()
        file_key = secrets.token_bytes(16)
        header = envelope.encode_header([envelope.x25519_stanza(file_key, public)], file_key)
        digest = hashlib.sha256(header + secrets.token_bytes(64)).hexdigest()
        at = deadline - timedelta(hours=seq)
        leaf = json.dumps({"event": "submit", "tender": code, "bid": str(bid_id), "sha256": digest})
        per_bid.append(
            [
                {
                    "id": log_row_id,
                    "tender_id": tender_id,
                    "organisation_id": org,
                    "log_id": f"ggzy/bids/v2/{code}/{secrets.token_hex(16)}",
                },
                {
                    "id": bid_id,
                    "tender_id": tender_id,
                    "lot_id": lot_id,
                    "organisation_id": org,
                    "status": "submitted",
                    "object_key": f"bids/{tender_id}/{bid_id}",
                    "sha256": digest,
                    "size": len(header) + 64,
                    "submitted_at": at,
                    "sequence": 1,
                    "declared_price_fen": 900_000_000 - seq,
                },
                {
                    "id": uuid.uuid4(),
                    "bid_id": bid_id,
                    "tender_id": tender_id,
                    "header": base64.b64encode(header).decode(),
                    "header_size": len(header),
                },
                {
                    "id": uuid.uuid4(),
                    "tender_id": tender_id,
                    "seq": seq,
                    "bidder_log_id": log_row_id,
                    "index": 0,
                    "bid_id": bid_id,
                    "event": "submit",
                    "leaf": leaf,
                    "leaf_hash": hashlib.sha256(b"\x00" + leaf.encode()).hexdigest(),
                    "created_at": at,
                    "head_root": hashlib.sha256(leaf.encode()).hexdigest(),
                    "head_timestamp": at,
                    "key_id": "0" * 16,
                    "head_signature": base64.b64encode(secrets.token_bytes(64)).decode(),
                },
            ]
        )
    return tender, lot, per_bid


async def seed(
    engine: AsyncEngine, who: Parties, tenders: int, bids: int, deadline: datetime, label: str
) -> list[uuid.UUID]:
    """Bulk-insert `tenders` tenders with `bids` submitted bids each, all due at `deadline`."""
    ids: list[uuid.UUID] = []
    for start in range(0, tenders, BATCH):
        rows: dict[str, list[dict[str, Any]]] = {k: [] for k in ("t", "l", "tl", "bl", "b", "e", "ev")}
        for n in range(start, min(start + BATCH, tenders)):
            tender, lot, per_bid = _rows(who, f"GGZY-320100-2026-{label}{n + 1:06d}", deadline, bids)
            ids.append(tender["id"])
            rows["t"].append(tender)
            rows["l"].append(lot)
            rows["tl"].append({"tender_id": tender["id"], "size": len(per_bid)})
            for log_row, bid, env, event in per_bid:
                rows["bl"].append(log_row)
                rows["b"].append(bid)
                rows["e"].append(env)
                rows["ev"].append(event)
        async with engine.begin() as conn:
            for key, table in (
                ("t", Tender),
                ("l", Lot),
                ("tl", TenderLog),
                ("bl", BidderLog),
                ("b", Bid),
                ("e", Envelope),
                ("ev", BidEvent),
            ):
                if rows[key]:
                    await conn.execute(insert(table), rows[key])
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
    return ids


async def plain_update(engine: AsyncEngine, ids: Sequence[uuid.UUID]) -> float:
    """The baseline: one transaction that rewrites the same tender rows and changes nothing."""
    started = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(update(Tender).where(Tender.id.in_(ids)).values(next_check=Tender.next_check))
    return time.perf_counter() - started


async def close_cluster(
    sessionmaker: async_sessionmaker[AsyncSession],
    deadline: datetime,
    signer: LogSigner,
    workers: int,
    concurrency: int,
) -> tuple[float, list[tuple[str, str]]]:
    """`workers` chronograph ticks at the deadline at once; seconds until the last one returns."""
    started = time.perf_counter()
    results = await asyncio.gather(
        *(chronograph.tick(sessionmaker, deadline, signer, concurrency=concurrency) for _ in range(workers))
    )
    return time.perf_counter() - started, [moved for done in results for moved in done]


async def once_each(engine: AsyncEngine, ids: Sequence[uuid.UUID]) -> tuple[int, int]:
    """How many of the tenders have a closing head, and how many bidding-closing moves the audit trail
    holds for them (exactly one each when every tender closed once)."""
    async with engine.connect() as conn:
        closings = await conn.scalar(
            select(func.count()).select_from(Closing).where(Closing.tender_id.in_(ids))
        )
        moves = await conn.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.object_id.in_([str(i) for i in ids]),
                AuditEvent.action.in_(("tender.close_bidding", "tender.fail")),
            )
        )
    return int(closings or 0), int(moves or 0)


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


async def run_backend(
    url: str, backend: str, *, tenders: int, bids: int, rounds: int, workers: int, concurrency: int
) -> dict[str, Any]:
    """Migrate the empty database at `url`, then run `rounds` rounds; answer the JSON line."""
    await upgrade_async(url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    signer = LogSigner.from_secret(secrets.token_urlsafe(32))
    try:
        who = await parties(sessionmaker, bids)
        base = datetime(2026, 3, 23, 9, 30, tzinfo=SHANGHAI)
        figures: list[Round] = []
        all_ids: list[uuid.UUID] = []
        for n in range(rounds):
            # A minute apart: the earlier clusters' opening windows (30 minutes) are still running, so
            # only this round's tenders are due.
            deadline = base + timedelta(minutes=n)
            ids = await seed(engine, who, tenders, bids, deadline, f"C{n:02d}")
            all_ids.extend(ids)
            baseline = await plain_update(engine, ids)
            seconds, done = await close_cluster(sessionmaker, deadline, signer, workers, concurrency)
            figures.append(Round(baseline, seconds, len(done)))
        closings, moves = await once_each(engine, all_ids)
    finally:
        await engine.dispose()
    chrono = [r.chronograph_s for r in figures]
    plain = [r.baseline_s for r in figures]
    median_ratio = statistics.median(chrono) / statistics.median(plain) if statistics.median(plain) else None
    return {
        "bench": "chronograph",
        "backend": backend,
        "tenders": tenders,
        "bids_per_tender": bids,
        "rounds": rounds,
        "workers": workers,
        "concurrency": concurrency,
        "deadline_to_last_closing_head_s": _spread(chrono),
        "plain_update_s": _spread(plain),
        "ratio_vs_plain_update": round(median_ratio, 1) if median_ratio is not None else None,
        "per_tender_ms": round(1000 * statistics.median(chrono) / tenders, 2),
        "target_s": TARGET_SECONDS if backend == "postgresql" else None,
        "within_target": statistics.median(chrono) < TARGET_SECONDS if backend == "postgresql" else None,
        "moved": sum(r.moved for r in figures),
        "closing_heads": closings,
        "audited_moves": moves,
        "closed_exactly_once": closings == moves == tenders * rounds,
    }


async def _both(
    backends: Sequence[str],
    admin_url: str,
    database_url: str | None,
    **kw: Any,
) -> list[dict[str, Any]]:
    lines = []
    for backend in backends:
        if backend == "postgresql":
            if database_url:
                lines.append(await run_backend(database_url, backend, **kw))
            else:
                async with scratch_database(admin_url, "ggzy_bench_chrono") as url:
                    lines.append(await run_backend(url, backend, **kw))
        else:
            with tempfile.TemporaryDirectory(prefix="ggzy-bench-chrono-") as tmp:
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
                lines.append(await run_backend(url, backend, **kw))
        print(json.dumps(lines[-1], ensure_ascii=False), flush=True)
    return lines


@click.command("chronograph")
@click.option("--tenders", default=1000, show_default=True, help="tenders whose deadline is the same minute")
@click.option("--bids", default=3, show_default=True, help="submitted bids on each tender")
@click.option("--rounds", default=3, show_default=True, help="rounds, at most 20 (median, min and max)")
@click.option("--workers", default=1, show_default=True, help="chronograph workers ticking at once")
@click.option("--concurrency", default=1, show_default=True, help="tenders each tick moves at once")
@click.option(
    "--backend",
    "backends",
    type=click.Choice(["postgresql", "sqlite"]),
    multiple=True,
    default=("postgresql", "sqlite"),
    show_default=True,
    help="the databases to run on (repeat the option for both)",
)
@click.option(
    "--admin-url", default=DEFAULT_ADMIN_URL, show_default=True, help="where to make the scratch database"
)
@click.option("--database-url", default=None, help="an empty PostgreSQL database to use instead")
def chronograph_command(
    tenders: int,
    bids: int,
    rounds: int,
    workers: int,
    concurrency: int,
    backends: tuple[str, ...],
    admin_url: str,
    database_url: str | None,
) -> None:
    """Close a cluster of tenders that reach their deadline in the same minute; one JSON line per backend."""
    if tenders < 1 or bids < 1 or rounds < 1 or workers < 1 or concurrency < 1:
        raise click.UsageError("--tenders, --bids, --rounds, --workers and --concurrency are at least 1")
    if rounds > MAX_ROUNDS:
        raise click.UsageError(f"--rounds is at most {MAX_ROUNDS}: each round's deadline is a minute later")
    Console(stderr=True).print(
        f"closing {tenders} tenders × {bids} bids at {SEAL_TIME}, {rounds} round(s), on {', '.join(backends)}"
    )
    lines = asyncio.run(
        _both(
            backends,
            admin_url,
            database_url,
            tenders=tenders,
            bids=bids,
            rounds=rounds,
            workers=workers,
            concurrency=concurrency,
        )
    )
    if not all(line["closed_exactly_once"] for line in lines):
        raise SystemExit(1)
