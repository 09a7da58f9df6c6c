"""`ggzy demo`: a complete open works tender through the real HTTP API, one checked step at a time.

By default everything is throw-away: a fresh SQLite database and a local object store in a temporary
directory, the app served by uvicorn on a free loopback port inside this process, and httpx talking to it
over TCP as any client would. A `SettableClock` stands still at Mon 2026-03-02 09:00 (Shanghai) until the
demo moves it across a deadline; then the demo runs the chronograph itself, as the server's periodic job
would, and the outbox jobs that became due.

`--seed-only` is what `make run` calls before `ggzy serve`: into the configured database and object store it
puts the demo organisations and users (password `demo-password-1`), one trade completed in the past on a
simulated clock that starts 70 days ago, and one open tender published now, which the live server's
chronograph carries on in real time. It drives the same steps through the same API, in-process (ASGI).

Every step checks the status codes and fields it gets back; the first surprise stops the demo with what
was expected and what came instead, and the process exits 1.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from accounts import service as accounts
from accounts.uscc import make_uscc
from storage.clock import Clock, SettableClock, SystemClock
from storage.db import transaction
from storage.jobs import InlineJobQueue
from storage.migrate import upgrade_async
from storage.settings import Settings, argon2_from_env
from trading import jobs as trading_jobs
from trading import service
from trading.calendar import SHANGHAI, local_date
from trading.commitments import price_commitment
from trading.profiles import WORKS_OPEN, deposit_cap, performance_security_cap

if TYPE_CHECKING:
    from litestar import Litestar

    from app import Runtime

PASSWORD = "demo-password-1"  # noqa: S105 - the published demo password (README), not a secret
DEMO_START = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
SEED_HISTORY = timedelta(days=70)
DEADLINE_TIME = time(10, 0)
BID_DURATION_DAYS = 540
STARTUP_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 60.0


class StepFailed(Exception):
    """A step got something other than what the trade requires at that point."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"expected {expected}, got {got}")
        self.expected = expected
        self.got = got


def check(condition: bool, expected: str, got: object) -> None:
    """Stop the demo unless `condition` holds."""
    if not condition:
        raise StepFailed(expected, str(got))


# ---------------------------------------------------------------- display


def yuan(fen: int) -> str:
    """An amount in fen shown in yuan with two decimals (integer arithmetic: money is never a float)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def short(digest: str) -> str:
    """The first 12 hex digits of a hash, enough to tell hashes apart on screen."""
    return digest[:12] + "…"


def shanghai_text(instant: datetime | str) -> str:
    """An instant as Asia/Shanghai wall time, to the minute."""
    if isinstance(instant, str):
        instant = datetime.fromisoformat(instant)
    return instant.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def at_shanghai(day: date, wall: time) -> datetime:
    """The instant of `wall` o'clock in Shanghai on `day`."""
    return datetime.combine(day, wall, tzinfo=SHANGHAI)


# ---------------------------------------------------------------- who takes part


@dataclass(frozen=True)
class Party:
    """A demo organisation and its one user (username = kind, plus a number for the bidders)."""

    username: str
    kind: str
    name: str
    credit_code: str

    @property
    def roles(self) -> list[str]:
        return sorted(accounts.KIND_ROLES[self.kind])


def _party(username: str, kind: str, name: str, authority: str, serial: int) -> Party:
    # Positions 1-2: 12 public institution, 11 government body, 91 enterprise; 3-8: Nanjing (320100).
    return Party(username, kind, name, make_uscc(f"{authority}320100MA{serial:07d}"))


CENTRE = _party("centre", "centre", "南京市公共资源交易中心", "12", 1)
AGENCY = _party("agency", "agency", "江苏华诚招标代理有限公司", "91", 2)
BIDDERS = tuple(
    _party(f"bidder{n}", "bidder", name, "91", 10 + n)
    for n, name in enumerate(
        (
            "江苏宁远建设集团有限公司",
            "南京恒泰市政工程有限公司",
            "江苏中盛路桥工程有限公司",
            "苏州吴越建设工程有限公司",
            "无锡锡安水务工程有限公司",
        ),
        start=1,
    )
)
SUPERVISOR = _party("supervisor", "supervisor", "南京市建设工程招标投标监督管理办公室", "11", 3)
AUDITOR = _party("auditor", "auditor", "南京市审计局", "11", 4)
DEMO_PARTIES = (AGENCY, *BIDDERS)
SEED_PARTIES = (AGENCY, *BIDDERS, SUPERVISOR, AUDITOR)


@dataclass(frozen=True)
class TenderPlan:
    """What the agency tenders: one lot, with the bidders' prices (in bidder order) and who misses the
    decryption window at the opening."""

    title: str
    tenderer: str
    qualification: str
    estimated_price_fen: int
    prices_fen: tuple[int, ...]
    rebid_price_fen: int
    absent_bidder: int = 3  # bidder4 misses the window (E-03)
    withdrawing_bidder: int = 4  # bidder5 withdraws (W-05) and bids again

    @property
    def deposit_fen(self) -> int:
        return deposit_cap(WORKS_OPEN, self.estimated_price_fen)


WORKS = TenderPlan(
    title="城南污水处理厂提标改造工程施工",
    tenderer="南京市城南水务有限公司",
    qualification="市政公用工程施工总承包二级及以上资质，项目经理具备市政公用工程一级注册建造师执业资格",
    estimated_price_fen=5_000_000_000,
    prices_fen=(4_880_000_000, 4_795_000_000, 4_912_000_000, 4_760_000_000, 4_851_000_000),
    rebid_price_fen=4_823_000_000,
)
LIVE = TenderPlan(
    title="滨江大道综合管廊及道路提升工程施工",
    tenderer="南京市滨江开发建设有限公司",
    qualification="市政公用工程施工总承包一级资质",
    estimated_price_fen=12_600_000_000,
    prices_fen=(),
    rebid_price_fen=0,
)


# ---------------------------------------------------------------- the platform, as its users reach it


@dataclass
class Actor:
    """A signed-in demo user; signs in again when the token runs out on the (simulated) clock."""

    party: Party
    token: str = ""
    expires_at: datetime | None = None


@dataclass
class SealedBid:
    """What a bidder keeps: its bid request, the receipt, and the secret that opens the price commitment."""

    bidder: Actor
    price_fen: int
    nonce: str
    request: dict[str, Any]
    idempotency_key: str
    receipt: dict[str, Any]

    @property
    def bid_id(self) -> str:
        return str(self.receipt["bid_id"])

    @property
    def lot_id(self) -> str:
        return str(self.request["lot_id"])


class Platform:
    """The HTTP API plus the runtime behind it, for moving the clock and running what became due."""

    def __init__(self, client: httpx.AsyncClient, runtime: Runtime, clock: SettableClock) -> None:
        self.client = client
        self.runtime = runtime
        self.clock = clock

    async def request(
        self,
        method: str,
        path: str,
        actor: Actor | None = None,
        *,
        expect: int,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request as `actor` and insist on the status `expect`."""
        sent = dict(headers or {})
        if actor is not None:
            sent["Authorization"] = f"Bearer {await self._token(actor)}"
        r = await self.client.request(method, path, json=json, params=params, headers=sent)
        check(r.status_code == expect, f"{method} {path} → {expect}", f"{r.status_code} {r.text[:400]}")
        return r

    async def call(
        self, method: str, path: str, actor: Actor | None = None, *, expect: int = 200, **kw: Any
    ) -> Any:
        """The JSON answer of a request that must get status `expect`."""
        return (await self.request(method, path, actor, expect=expect, **kw)).json()

    async def refused(
        self, method: str, path: str, actor: Actor, *, rule: str, status: int = 422, json: Any = None
    ) -> dict[str, Any]:
        """A request that must be refused by `rule` (an RFC 9457 problem naming it)."""
        r = await self.request(method, path, actor, expect=status, json=json)
        problem: dict[str, Any] = r.json()
        check(
            problem.get("rule") == rule,
            f"a problem citing rule {rule}",
            f"rule {problem.get('rule')!r}: {problem.get('detail')}",
        )
        check(
            r.headers.get("content-type", "").startswith("application/problem+json"),
            "Content-Type application/problem+json",
            r.headers.get("content-type"),
        )
        return problem

    async def login(self, party: Party) -> Actor:
        """Sign `party`'s user in."""
        actor = Actor(party)
        await self._token(actor)
        return actor

    async def _token(self, actor: Actor) -> str:
        # Tokens expire on the server's clock, which the demo moves by weeks: sign in again when needed.
        if actor.expires_at is None or self.clock.now() >= actor.expires_at - timedelta(minutes=1):
            answer = await self.call(
                "POST", "/api/v1/auth/login", json={"username": actor.party.username, "password": PASSWORD}
            )
            actor.token = str(answer["access_token"])
            actor.expires_at = datetime.fromisoformat(answer["expires_at"])
        return actor.token

    async def presigned(self, method: str, url: str, content: bytes | None = None) -> httpx.Response:
        """A request to a presigned URL: the server's own object route (local store) or the S3 server."""
        if url.startswith(str(self.client.base_url).rstrip("/") + "/"):
            return await self.client.request(method, url, content=content)
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as outside:
            return await outside.request(method, url, content=content)

    async def upload(self, grant: dict[str, Any], content: bytes) -> None:
        """PUT a file to the presigned URL the platform granted."""
        check(grant.get("method") == "PUT", "a presigned PUT", grant.get("method"))
        r = await self.presigned("PUT", str(grant["upload_url"]), content)
        check(
            r.status_code in (200, 201),
            "PUT to the presigned URL → 200/201",
            f"{r.status_code} {r.text[:200]}",
        )

    async def tick(self) -> list[tuple[str, str]]:
        """Run the chronograph at the clock's time, then every job its transitions put in the outbox."""
        done = await trading_jobs.chronograph_tick(self.runtime.job_context)
        await self.runtime.dispatcher.dispatch_once()
        if isinstance(self.runtime.queue, InlineJobQueue):
            await self.runtime.queue.drain()
        return done

    async def move_to(self, instant: datetime) -> list[tuple[str, str]]:
        """Move the clock to `instant` and run whatever fell due."""
        self.clock.set(instant)
        return await self.tick()


@dataclass
class Trade:
    """One tender carried through the platform, with everything the steps learn on the way."""

    platform: Platform
    plan: TenderPlan
    parties: Sequence[Party]
    people: dict[str, Actor] = field(default_factory=dict)
    tender: dict[str, Any] = field(default_factory=dict)
    etag: str = ""
    earliest_day: date | None = None
    documents_sha256: str = ""
    bids: list[SealedBid] = field(default_factory=list)
    award: dict[str, Any] = field(default_factory=dict)
    publicity_ends: datetime | None = None

    @property
    def p(self) -> Platform:
        return self.platform

    @property
    def tid(self) -> str:
        return str(self.tender["id"])

    @property
    def code(self) -> str:
        return str(self.tender["code"])

    @property
    def centre(self) -> Actor:
        return self.people[CENTRE.username]

    @property
    def agency(self) -> Actor:
        return self.people[AGENCY.username]

    @property
    def bidders(self) -> list[Actor]:
        return [self.people[b.username] for b in BIDDERS]

    @property
    def deadline(self) -> datetime:
        return datetime.fromisoformat(self.tender["bid_deadline"])

    @property
    def window_end(self) -> datetime:
        return self.deadline + timedelta(minutes=int(self.tender["opening_window_minutes"]))

    def live_bids(self) -> list[SealedBid]:
        """The bids standing at the deadline (a withdrawn bid is replaced by its bidder's new one)."""
        latest = {b.bidder.party.username: b for b in self.bids}
        return sorted(latest.values(), key=lambda b: int(b.receipt["sequence"]))

    async def notices(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The trade's notices on the public board (no sign-in), newest first."""
        params = {"tender_code": self.code, **({"kind": kind} if kind else {})}
        items: list[dict[str, Any]] = (await self.p.call("GET", "/api/v1/notices", params=params))["items"]
        return items


Outcome = str | tuple[str, Table]
StepFn = Callable[[Trade], Awaitable[Outcome]]


@dataclass(frozen=True)
class Step:
    title: str
    run: StepFn


# ---------------------------------------------------------------- people


async def bootstrap_centre(t: Trade) -> Outcome:
    """The trading centre and its administrator, created once from the command line's side (no API)."""
    async with transaction(t.p.runtime.sessionmaker) as session:
        org, _user, created = await accounts.bootstrap_centre(
            session,
            name=CENTRE.name,
            credit_code=CENTRE.credit_code,
            username=CENTRE.username,
            password=PASSWORD,
            now=t.p.clock.now(),
        )
        code = org.credit_code
    check(created, "a new centre", "a centre that already existed")
    t.people[CENTRE.username] = await t.p.login(CENTRE)
    return f"{CENTRE.name}, credit code {code}, administrator '{CENTRE.username}' signed in"


async def register_parties(t: Trade) -> Outcome:
    """Centre staff add each organisation (approved at once) and its user, who then signs in."""
    table = Table("user", "role", "organisation", "credit code (USCC)", box=None, padding=(0, 2))
    for party in t.parties:
        org = await t.p.call(
            "POST",
            "/api/v1/organisations",
            t.centre,
            expect=201,
            json={"name": party.name, "credit_code": party.credit_code, "kind": party.kind},
        )
        check(org["status"] == "active", f"{party.name} active", org["status"])
        check(org["credit_code"] == party.credit_code, party.credit_code, org["credit_code"])
        user = await t.p.call(
            "POST",
            "/api/v1/users",
            t.centre,
            expect=201,
            json={
                "organisation_id": org["id"],
                "username": party.username,
                "password": PASSWORD,
                "display_name": party.name,
                "roles": party.roles,
            },
        )
        check(user["roles"] == party.roles, f"roles {party.roles}", user["roles"])
        t.people[party.username] = await t.p.login(party)
        table.add_row(party.username, ", ".join(party.roles), party.name, party.credit_code)
    kinds = sorted({p.kind for p in t.parties})
    return f"{len(t.parties)} organisations ({', '.join(kinds)}), each with a signed-in user", table


# ---------------------------------------------------------------- drafting and publishing


async def _earliest_deadline_day(t: Trade, documents_from: datetime) -> date:
    """The first day bids may close on (W-01), by the calendar the server itself uses."""
    async with t.p.runtime.sessionmaker() as session:
        calendar = await service.working_calendar(session)
    return service.earliest_deadline_day(calendar, WORKS_OPEN, documents_from)


async def draft_tender(t: Trade) -> Outcome:
    """The agency saves a draft: documents from now, bids close at 10:00 on the earliest legal day."""
    documents_from = t.p.clock.now()
    t.earliest_day = await _earliest_deadline_day(t, documents_from)
    deadline = at_shanghai(t.earliest_day, DEADLINE_TIME)
    r = await t.p.request(
        "POST",
        "/api/v1/tenders",
        t.agency,
        expect=201,
        json={
            "title": t.plan.title,
            "tenderer_name": t.plan.tenderer,
            "region_code": "320100",
            "qualification": t.plan.qualification,
            "evaluation_method": "comprehensive",
            "documents_from": documents_from.isoformat(),
            "bid_deadline": deadline.isoformat(),
            "lots": [
                {
                    "title": "第一标段",
                    "estimated_price_fen": t.plan.estimated_price_fen,
                    "deposit_fen": t.plan.deposit_fen,
                }
            ],
        },
    )
    t.tender, t.etag = r.json(), r.headers.get("ETag", "")
    check(t.tender["status"] == "draft", "status draft", t.tender["status"])
    check(t.code.startswith("GGZY-320100-"), "a GGZY-320100-… transaction code", t.code)
    check(bool(t.etag), "an ETag on the draft", "none")
    lot = t.tender["lots"][0]
    return (
        f"{t.code} «{t.plan.title}», status draft; documents from {shanghai_text(documents_from)}, "
        f"bids close {shanghai_text(deadline)} (W-01: ≥ {WORKS_OPEN.documents_to_deadline_days} days); "
        f"estimate {yuan(lot['estimated_price_fen'])} yuan, deposit {yuan(lot['deposit_fen'])} yuan (W-04 cap)"
    )


async def _upload_tender_file(t: Trade, filename: str, content: bytes) -> str:
    """Upload one of the agency's files of the tender by presigned PUT; the object key to cite it by."""
    grant = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/uploads",
        t.agency,
        expect=201,
        json={"filename": filename, "size": len(content)},
    )
    await t.p.upload(grant, content)
    return str(grant["object_key"])


async def upload_documents(t: Trade) -> Outcome:
    """The tender documents go to the object store by presigned PUT; the server hashes what arrived."""
    content = (
        b"%PDF-1.7\n% "
        + t.plan.title.encode()
        + b" tender documents\n"
        + secrets.token_bytes(4096)
        + b"\n%%EOF\n"
    )
    key = await _upload_tender_file(t, "招标文件.pdf", content)
    document = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/documents",
        t.agency,
        expect=201,
        json={"kind": "tender_documents", "filename": "招标文件.pdf", "object_key": key},
    )
    local = hashlib.sha256(content).hexdigest()
    check(document["sha256"] == local, f"server SHA-256 {short(local)}", document["sha256"])
    check(document["size"] == len(content), f"{len(content)} bytes", document["size"])
    t.documents_sha256 = local
    return f"招标文件.pdf, {len(content)} bytes, SHA-256 {short(local)} computed by the server matches ours"


async def _patch_deadline(t: Trade, deadline: datetime) -> None:
    r = await t.p.request(
        "PATCH",
        f"/api/v1/tenders/{t.tid}",
        t.agency,
        expect=200,
        json={"bid_deadline": deadline.isoformat()},
        headers={"If-Match": t.etag},
    )
    t.tender, t.etag = r.json(), r.headers.get("ETag", "")


async def refuse_early_deadline(t: Trade) -> Outcome:
    """A deadline one day before the W-01 day: publishing is refused, naming the rule and the earliest day."""
    assert t.earliest_day is not None
    lawful = t.deadline
    early = lawful - timedelta(days=1)
    await _patch_deadline(t, early)
    problem = await t.p.refused("POST", f"/api/v1/tenders/{t.tid}/publish", t.agency, rule="W-01")
    check(
        problem.get("earliest_deadline_day") == t.earliest_day.isoformat(),
        f"earliest_deadline_day {t.earliest_day.isoformat()}",
        problem.get("earliest_deadline_day"),
    )
    await _patch_deadline(t, lawful)
    check(t.deadline == lawful, f"deadline back at {shanghai_text(lawful)}", t.tender["bid_deadline"])
    return (
        f"deadline {shanghai_text(early)} → 422 rule W-01, earliest legal day {problem['earliest_deadline_day']}; "
        f"draft edited back to {shanghai_text(lawful)} (If-Match {t.etag})"
    )


async def publish(t: Trade) -> Outcome:
    """The agency publishes: the tender notice goes on the board and the documents are issued."""
    r = await t.p.request(
        "POST", f"/api/v1/tenders/{t.tid}/publish", t.agency, expect=200, headers={"If-Match": t.etag}
    )
    t.tender, t.etag = r.json(), r.headers.get("ETag", "")
    check(t.tender["status"] == "tendering", "status tendering", t.tender["status"])
    await t.p.tick()  # jobs from the outbox, if any
    notices = await t.notices("tender_notice")
    check(len(notices) == 1, "one tender notice on the public board", len(notices))
    return (
        f"{t.code} is tendering; «{notices[0]['title']}» published {shanghai_text(notices[0]['published_at'])}, "
        f"next chronograph check {shanghai_text(t.tender['next_check'])}"
    )


# ---------------------------------------------------------------- bidding


async def obtain_documents(t: Trade) -> Outcome:
    """Each bidder obtains the documents (获取招标文件) and is registered as a holder; one downloads them."""
    t.p.clock.advance(timedelta(days=1))
    links: list[dict[str, Any]] = []
    for bidder in t.bidders:
        docs = await t.p.call("POST", f"/api/v1/tenders/{t.tid}/documents/obtain", bidder)
        check(len(docs) == 1 and docs[0]["sha256"] == t.documents_sha256, "the published documents", docs)
        links.append(docs[0])
    download = await t.p.presigned("GET", links[0]["download_url"])
    check(download.status_code == 200, "GET on the presigned download URL → 200", download.status_code)
    got = hashlib.sha256(download.content).hexdigest()
    check(got == t.documents_sha256, f"downloaded SHA-256 {short(t.documents_sha256)}", got)
    return (
        f"{len(t.bidders)} bidders hold the documents; {t.bidders[0].party.username} downloaded them "
        f"by presigned URL, SHA-256 {short(got)} as published"
    )


async def _submit_bid(t: Trade, bidder: Actor, price_fen: int) -> SealedBid:
    """Upload a bid file, then finalise it with a price commitment under an Idempotency-Key."""
    content = b"sealed bid envelope " + secrets.token_bytes(2048)
    grant = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/bids/uploads",
        bidder,
        expect=201,
        json={"filename": "投标文件.zip", "size": len(content)},
    )
    await t.p.upload(grant, content)
    nonce = secrets.token_hex(16)
    request = {
        "lot_id": t.tender["lots"][0]["id"],
        "object_key": grant["object_key"],
        "price_commitment": price_commitment(price_fen, BID_DURATION_DAYS, nonce),
    }
    key = f"bid-{secrets.token_hex(8)}"
    receipt = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/bids",
        bidder,
        expect=201,
        json=request,
        headers={"Idempotency-Key": key},
    )
    sha256 = hashlib.sha256(content).hexdigest()
    check(receipt["sha256"] == sha256, f"a receipt for our file {short(sha256)}", receipt["sha256"])
    check(
        receipt["price_commitment"] == request["price_commitment"],
        "our price commitment on the receipt",
        receipt["price_commitment"],
    )
    check(
        receipt["bidder_credit_code"] == bidder.party.credit_code,
        f"bidder {bidder.party.credit_code} on the receipt",
        receipt["bidder_credit_code"],
    )
    bid = SealedBid(bidder, price_fen, nonce, request, key, receipt)
    t.bids.append(bid)
    return bid


def _receipt_table() -> Table:
    return Table(
        "seq",
        "bidder",
        "received",
        "file SHA-256",
        "price commitment",
        "receipt digest",
        box=None,
        padding=(0, 2),
    )


def _receipt_row(table: Table, bid: SealedBid) -> None:
    r = bid.receipt
    table.add_row(
        str(r["sequence"]),
        bid.bidder.party.username,
        shanghai_text(r["submitted_at"]),
        short(r["sha256"]),
        short(r["price_commitment"]),
        short(r["receipt_digest"]),
    )


async def submit_bids(t: Trade) -> Outcome:
    """Each bidder commits to its price without revealing it and submits; the platform answers a receipt.
    The same request sent again under the same key replays the first answer instead of bidding twice."""
    table = _receipt_table()
    for bidder, price in zip(t.bidders, t.plan.prices_fen, strict=True):
        t.p.clock.advance(timedelta(hours=2))
        _receipt_row(table, await _submit_bid(t, bidder, price))
    first = t.bids[0]
    replay = await t.p.request(
        "POST",
        f"/api/v1/tenders/{t.tid}/bids",
        first.bidder,
        expect=201,
        json=first.request,
        headers={"Idempotency-Key": first.idempotency_key},
    )
    check(
        replay.headers.get("Idempotent-Replayed") == "true", "Idempotent-Replayed: true", dict(replay.headers)
    )
    check(replay.json()["bid_id"] == first.bid_id, f"the same bid {first.bid_id}", replay.json()["bid_id"])
    return (
        f"{len(t.bids)} sealed bids, prices committed, not revealed; {first.bidder.party.username}'s request "
        "sent again under its Idempotency-Key got the same receipt back (Idempotent-Replayed: true)",
        table,
    )


async def withdraw_and_rebid(t: Trade) -> Outcome:
    """Before the deadline a bidder may withdraw its bid (W-05: deposit back within 5 days) and bid again."""
    t.p.clock.advance(timedelta(days=2))
    old = t.bids[t.plan.withdrawing_bidder]
    bidder = old.bidder
    bid = await t.p.call("POST", f"/api/v1/tenders/{t.tid}/bids/{old.bid_id}/withdraw", bidder)
    check(bid["status"] == "withdrawn", "status withdrawn", bid["status"])
    trail = await t.p.call(
        "GET", "/api/v1/audit", t.centre, params={"object_type": "bid", "object_id": old.bid_id}
    )
    refund_due = next(
        (e["detail"].get("deposit_refund_due") for e in trail["items"] if e["action"] == "bid.withdraw"), None
    )
    check(
        refund_due is not None, "the withdrawal in the audit trail with its refund due date", trail["items"]
    )
    t.p.clock.advance(timedelta(hours=3))
    new = await _submit_bid(t, bidder, t.plan.rebid_price_fen)
    return (
        f"{bidder.party.username} withdrew bid #{old.receipt['sequence']} (deposit refund due {refund_due}, W-05) "
        f"and submitted a new one: receipt #{new.receipt['sequence']}, {short(new.receipt['receipt_digest'])}"
    )


# ---------------------------------------------------------------- the deadline and the opening hall


async def close_bidding(t: Trade) -> Outcome:
    """At the bid deadline the chronograph closes bidding and opens the online opening hall (W-08)."""
    done = await t.p.move_to(t.deadline)
    check(done == [(t.code, "opening")], f"[({t.code!r}, 'opening')]", done)
    tender = await t.p.call("GET", f"/api/v1/tenders/{t.tid}")
    check(tender["status"] == "opening", "status opening", tender["status"])
    return (
        f"clock {shanghai_text(t.p.clock.now())}: chronograph → {t.code} opening, "
        f"{len(t.live_bids())} bids standing, decryption window until {shanghai_text(t.window_end)}"
    )


async def refuse_late_bid(t: Trade) -> Outcome:
    """A bid after the deadline is refused (W-07)."""
    t.p.clock.advance(timedelta(minutes=1))
    late = t.bidders[t.plan.withdrawing_bidder]
    problem = await t.p.refused(
        "POST",
        f"/api/v1/tenders/{t.tid}/bids/uploads",
        late,
        rule="W-07",
        json={"filename": "补充投标文件.zip", "size": 1024},
    )
    return f"{late.party.username} at {shanghai_text(t.p.clock.now())} → 422 rule W-07: {problem['detail']}"


async def reveal_prices(t: Trade) -> Outcome:
    """In the opening hall each present bidder opens its commitment: price, duration and nonce."""
    absent = t.bidders[t.plan.absent_bidder]
    opened = []
    for bid in t.live_bids():
        if bid.bidder is absent:
            continue
        t.p.clock.advance(timedelta(minutes=2))
        got = await t.p.call(
            "POST",
            f"/api/v1/tenders/{t.tid}/bids/{bid.bid_id}/reveal",
            bid.bidder,
            json={
                "declared_price_fen": bid.price_fen,
                "duration_days": BID_DURATION_DAYS,
                "nonce": bid.nonce,
            },
        )
        check(got["declared_price_fen"] == bid.price_fen, f"price {bid.price_fen}", got["declared_price_fen"])
        opened.append(f"{bid.bidder.party.username} {yuan(bid.price_fen)}")
    check(len(opened) == 4, "four bids opened", len(opened))
    return f"{len(opened)} commitments opened (yuan): " + "; ".join(opened)


async def revoke_absent(t: Trade) -> Outcome:
    """The window ends: a reveal now is refused (E-03); the chronograph closes the opening and the unopened
    bid is revoked."""
    absent = next(b for b in t.live_bids() if b.bidder is t.bidders[t.plan.absent_bidder])
    t.p.clock.set(t.window_end + timedelta(minutes=1))
    # Before the next tick; once the opening is closed the tender's status answers first (409, no rule).
    await t.p.refused(
        "POST",
        f"/api/v1/tenders/{t.tid}/bids/{absent.bid_id}/reveal",
        absent.bidder,
        rule="E-03",
        json={
            "declared_price_fen": absent.price_fen,
            "duration_days": BID_DURATION_DAYS,
            "nonce": absent.nonce,
        },
    )
    done = await t.p.tick()
    check(done == [(t.code, "evaluation")], f"[({t.code!r}, 'evaluation')]", done)
    own = await t.p.call("GET", f"/api/v1/tenders/{t.tid}/bids", absent.bidder)
    status = next(b["status"] for b in own if b["id"] == absent.bid_id)
    check(status == "revoked", "its bid revoked", status)
    return (
        f"clock {shanghai_text(t.p.clock.now())}: {absent.bidder.party.username}'s reveal → 422 rule E-03; "
        f"chronograph → evaluation, the bid is {status}"
    )


async def opening_record(t: Trade) -> Outcome:
    """The opening record (开标记录) is a public notice: who bid, the file hashes, the opened prices."""
    notices = await t.notices("opening_record")
    check(len(notices) == 1, "one opening record", len(notices))
    rows = notices[0]["body"]["bids"]
    table = Table(
        "lot",
        "bidder",
        "credit code",
        "bid SHA-256",
        "price (yuan)",
        "days",
        "result",
        box=None,
        padding=(0, 2),
    )
    for row in rows:
        price = row["declared_price_fen"]
        table.add_row(
            str(row["lot"]),
            row["bidder"],
            row["credit_code"],
            short(row["sha256"]),
            yuan(price) if price is not None else "—",
            str(row["duration_days"] or "—"),
            row["result"],
        )
    results = [row["result"] for row in rows]
    expected = [
        "revoked (E-03)" if b.bidder is t.bidders[t.plan.absent_bidder] else "opened" for b in t.live_bids()
    ]
    check(results == expected, str(expected), results)
    return f"«{notices[0]['title']}» published {shanghai_text(notices[0]['published_at'])}", table


# ---------------------------------------------------------------- report, publicity, award, contract


def _ranking(t: Trade) -> list[SealedBid]:
    """The committee's ranking in this demo: the three lowest opened prices."""
    absent = t.bidders[t.plan.absent_bidder]
    return sorted((b for b in t.live_bids() if b.bidder is not absent), key=lambda b: b.price_fen)[
        : WORKS_OPEN.max_candidates
    ]


async def submit_report(t: Trade) -> Outcome:
    """The agency uploads the committee's signed report: 5 members, 4 of them experts (W-10), every one
    signed (W-11), three ranked candidates; publicity starts at once (W-12)."""
    t.p.clock.set(t.window_end + timedelta(days=1))
    key = await _upload_tender_file(
        t, "评标报告.pdf", b"%PDF-1.7 evaluation report " + secrets.token_bytes(1024)
    )
    committee = [{"name": f"评标专家{i}", "kind": "expert", "signed": True} for i in range(1, 5)]
    committee.append({"name": "招标人代表", "kind": "tenderer_representative", "signed": True})
    ranking = _ranking(t)
    answer = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/report",
        t.agency,
        expect=201,
        json={
            "object_key": key,
            "filename": "评标报告.pdf",
            "committee": committee,
            "candidates": [{"lot_id": ranking[0].lot_id, "ranking": [b.bid_id for b in ranking]}],
        },
    )
    check(answer["status"] == "publicity", "status publicity", answer["status"])
    t.publicity_ends = datetime.fromisoformat(answer["publicity_ends"])
    return (
        f"committee of {len(committee)} (4 experts), all signed; candidates "
        + ", ".join(f"{n}. {b.bidder.party.username}" for n, b in enumerate(ranking, 1))
        + f"; publicity ends {shanghai_text(t.publicity_ends)}"
    )


async def publicity(t: Trade) -> Outcome:
    """The candidates are public (中标候选人公示); an award before publicity ends is refused (W-12)."""
    notices = await t.notices("candidates")
    check(len(notices) == 1, "one candidates notice", len(notices))
    candidates = notices[0]["body"]["lots"][0]["candidates"]
    ranking = _ranking(t)
    check(
        [c["credit_code"] for c in candidates] == [b.bidder.party.credit_code for b in ranking],
        "the ranked candidates on the notice",
        candidates,
    )
    t.p.clock.advance(timedelta(hours=1))
    problem = await t.p.refused(
        "POST",
        f"/api/v1/tenders/{t.tid}/award",
        t.agency,
        rule="W-12",
        json={"lots": [{"lot_id": ranking[0].lot_id, "bid_id": ranking[0].bid_id}]},
    )
    listed = "; ".join(f"{c['rank']}. {c['bidder']} {yuan(c['declared_price_fen'])}" for c in candidates)
    return f"«{notices[0]['title']}»: {listed} (yuan); award at {shanghai_text(t.p.clock.now())} → 422 rule W-12 ({problem['detail']})"


async def award(t: Trade) -> Outcome:
    """After publicity the agency awards the lot to the first candidate (中标通知书); contract due in 30 days."""
    assert t.publicity_ends is not None
    t.p.clock.set(at_shanghai(local_date(t.publicity_ends), time(9, 30)))
    winner = _ranking(t)[0]
    awards = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/award",
        t.agency,
        expect=201,
        json={"lots": [{"lot_id": winner.lot_id, "bid_id": winner.bid_id}]},
    )
    check(len(awards) == 1 and awards[0]["bid_id"] == winner.bid_id, f"the award to {winner.bid_id}", awards)
    check(awards[0]["price_fen"] == winner.price_fen, f"price {winner.price_fen}", awards[0]["price_fen"])
    t.award = awards[0]
    results = await t.notices("result")
    check(len(results) == 1, "one result notice", len(results))
    return (
        f"{shanghai_text(t.p.clock.now())}: lot 1 to {winner.bidder.party.name} at {yuan(winner.price_fen)} yuan; "
        f"«{results[0]['title']}» published; contract due by {t.award['contract_due']} (W-13)"
    )


async def record_contract(t: Trade) -> Outcome:
    """The signed contract: a performance security above 10% is refused (W-15), exactly 10% is recorded."""
    t.p.clock.advance(timedelta(days=7))
    price = int(t.award["price_fen"])
    cap = performance_security_cap(WORKS_OPEN, price)
    key = await _upload_tender_file(t, "施工合同.pdf", b"%PDF-1.7 contract " + secrets.token_bytes(1024))
    body = {
        "award_id": t.award["id"],
        "object_key": key,
        "filename": "施工合同.pdf",
        "price_fen": price,
        "performance_security_fen": cap + 1,
        "signed_on": local_date(t.p.clock.now()).isoformat(),
    }
    await t.p.refused("POST", f"/api/v1/tenders/{t.tid}/contracts", t.agency, rule="W-15", json=body)
    contract = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/contracts",
        t.agency,
        expect=201,
        json={**body, "performance_security_fen": cap},
    )
    check(
        contract["performance_security_fen"] == cap, f"security {cap}", contract["performance_security_fen"]
    )
    tender = await t.p.call("GET", f"/api/v1/tenders/{t.tid}")
    check(tender["status"] == "contracted", "status contracted", tender["status"])
    return (
        f"signed {contract['signed_on']}, price {yuan(price)} yuan; security {yuan(cap + 1)} → 422 rule W-15, "
        f"{yuan(cap)} (10%) recorded; status contracted"
    )


async def complete(t: Trade) -> Outcome:
    """The agency closes the contracted tender: the trade is complete."""
    t.p.clock.advance(timedelta(hours=1))
    tender = await t.p.call("POST", f"/api/v1/tenders/{t.tid}/complete", t.agency)
    check(tender["status"] == "completed", "status completed", tender["status"])
    return f"{t.code} completed at {shanghai_text(t.p.clock.now())}"


async def _audit_count(t: Trade) -> int:
    count, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = await t.p.call("GET", "/api/v1/audit", t.centre, params=params)
        count += len(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return count


async def summary(t: Trade) -> Outcome:
    """Every notice of the trade, newest first, and the size of the audit trail."""
    notices = await t.notices()
    kinds = [n["kind"] for n in notices]
    expected = ["contract", "result", "candidates", "opening_record", "tender_notice"]
    check(kinds == expected, str(expected), kinds)
    table = Table("published (Shanghai)", "kind", "title", box=None, padding=(0, 2))
    for n in reversed(notices):
        table.add_row(shanghai_text(n["published_at"]), n["kind"], n["title"])
    events = await _audit_count(t)
    check(events > 0, "audit events", events)
    return (
        f"{t.code}: {len(notices)} public notices, {events} audit events, "
        f"awarded {yuan(int(t.award['price_fen']))} yuan",
        table,
    )


PEOPLE_STEPS = (
    Step("The trading centre is bootstrapped", bootstrap_centre),
    Step("The centre registers the organisations and their users", register_parties),
)
PUBLISH_STEPS = (
    Step("The agency drafts a works tender with the lawful timeline", draft_tender),
    Step("The agency uploads the tender documents through the presigned URL", upload_documents),
    Step("A bid deadline before the W-01 day is refused", refuse_early_deadline),
    Step("The agency publishes the tender (W-01 checked)", publish),
)
TRADE_STEPS = (
    *PUBLISH_STEPS,
    Step("The bidders obtain the tender documents", obtain_documents),
    Step("Each bidder submits a sealed bid with a price commitment", submit_bids),
    Step("A bidder withdraws before the deadline (W-05) and bids again", withdraw_and_rebid),
    Step("The deadline passes; the chronograph opens the bidding", close_bidding),
    Step("A late bid is refused (W-07)", refuse_late_bid),
    Step("Four bidders reveal their prices in the opening hall", reveal_prices),
    Step("One bidder misses the decryption window and is revoked (E-03)", revoke_absent),
    Step("The opening record is public", opening_record),
    Step("The agency uploads the committee's report with 3 ranked candidates", submit_report),
    Step("Publicity of the candidates (W-12)", publicity),
    Step("The award after publicity (W-12 respected)", award),
    Step("The contract, performance security at most 10% (W-15)", record_contract),
    Step("The trade is completed", complete),
)
DEMO_STEPS = (*PEOPLE_STEPS, *TRADE_STEPS, Step("Summary", summary))


# ---------------------------------------------------------------- running steps


class Narrator:
    """Runs steps in order and prints each as a numbered line: ✓ with its facts, or ✗ with what went wrong."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.number = 0

    async def run(self, steps: Sequence[Step], trade: Trade) -> bool:
        """Run `steps` on `trade`; False after the first failing step."""
        for step in steps:
            self.number += 1
            try:
                outcome = await step.run(trade)
            except StepFailed as failure:
                self.console.print(f"[bold]{self.number:>2}[/] [red]✗[/] {escape(step.title)}")
                self.console.print(f"     expected: {escape(failure.expected)}", soft_wrap=True)
                self.console.print(f"     got:      {escape(failure.got)}", soft_wrap=True)
                return False
            facts, table = (outcome, None) if isinstance(outcome, str) else outcome
            self.console.print(
                f"[bold]{self.number:>2}[/] [green]✓[/] [bold]{escape(step.title)}[/]: {escape(facts)}",
                soft_wrap=True,
            )
            if table is not None:
                self.console.print(table)
        return True


# ---------------------------------------------------------------- the demo: an in-process server on a port


def _loopback_socket() -> socket.socket:
    """A listening-ready socket on a free loopback port (bound now, so no one can take the port meanwhile)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serving(app: Litestar, sock: socket.socket) -> AsyncIterator[None]:
    """Serve `app` with uvicorn on `sock` in this event loop until the block ends."""
    import uvicorn

    # log_config=None: a server embedded in this process leaves the process's logging as it is.
    config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(STARTUP_SECONDS):
            while not server.started:
                if task.done():
                    await task
                    raise RuntimeError("the server stopped while starting")
                await asyncio.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        await task


async def run_demo(console: Console) -> bool:
    """The whole demo on a throw-away database, store and port; True when every step did what it should."""
    from app import build_runtime, create_app

    with tempfile.TemporaryDirectory(prefix="ggzy-demo-") as tmp, _loopback_socket() as sock:
        port = sock.getsockname()[1]
        settings = Settings(
            var_dir=Path(tmp),
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'ggzy.db'}",
            host="127.0.0.1",
            port=port,
            secret_key=secrets.token_urlsafe(48),
            **argon2_from_env(),
        )
        await upgrade_async(settings.effective_database_url)
        clock = SettableClock(DEMO_START)
        runtime = build_runtime(settings, clock=clock)
        runtime.run_chronograph = False  # the demo moves the clock and runs the chronograph itself
        console.print(
            f"[bold]ggzy demo[/]: an open works tender through the HTTP API at {settings.effective_public_url} "
            f"(SQLite and objects in {tmp}; simulated clock from {shanghai_text(DEMO_START)} Shanghai)"
        )
        async with (
            serving(create_app(runtime), sock),
            httpx.AsyncClient(base_url=settings.effective_public_url, timeout=HTTP_TIMEOUT_SECONDS) as client,
        ):
            trade = Trade(Platform(client, runtime, clock), WORKS, DEMO_PARTIES)
            ok = await Narrator(console).run(DEMO_STEPS, trade)
    console.print("[green]demo complete: every step did what it should[/]" if ok else "[red]demo failed[/]")
    return ok


# ---------------------------------------------------------------- --seed-only: the data `make run` serves


def _users_table() -> Table:
    table = Table("user", "password", "role", "organisation", "credit code", title="demo users")
    for party in (CENTRE, *SEED_PARTIES):
        table.add_row(party.username, PASSWORD, ", ".join(party.roles), party.name, party.credit_code)
    return table


def _next_steps(console: Console, settings: Settings, live: Trade | None) -> None:
    base = settings.effective_public_url
    console.print(_users_table())
    console.print("[bold]Try next[/] (after `ggzy serve`):")
    console.print(f"  {base}/schema                      the API, browsable")
    console.print(f"  {base}/api/v1/notices              the public notice board (no sign-in)")
    if live is not None and live.tender:
        console.print(
            f"  {base}/api/v1/tenders/{live.tid}   {live.code}, open for bids until "
            f"{shanghai_text(live.deadline)} Shanghai"
        )
    else:
        console.print(f"  {base}/api/v1/tenders?status=tendering   the open tender")
    console.print(
        f"  curl -s {base}/api/v1/auth/login -H 'Content-Type: application/json' "
        f"""-d '{{"username": "agency", "password": "{PASSWORD}"}}'""",
        soft_wrap=True,
    )


async def _centre_exists(runtime: Runtime) -> bool:
    async with runtime.sessionmaker() as session:
        return bool(await accounts.list_organisations(session, kind="centre", status=None))


async def seed(console: Console, settings: Settings, wall_clock: Clock | None = None) -> bool:
    """Seed the configured database once: people, a trade completed in the past, an open tender now."""
    from app import build_runtime, create_app

    wall_clock = wall_clock or SystemClock()
    await upgrade_async(settings.effective_database_url)
    clock = SettableClock(wall_clock.now() - SEED_HISTORY)
    runtime = build_runtime(settings, clock=clock)
    runtime.run_chronograph = False
    try:
        await runtime.store.ensure_ready()
        await runtime.queue.start()
        if await _centre_exists(runtime):
            console.print("The demo data is already there; nothing changed.")
            _next_steps(console, settings, None)
            return True
        # httpx types its ASGI app loosely and Litestar its scopes precisely; they agree at runtime.
        app: Any = create_app(runtime, manage_runtime=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=settings.effective_public_url, timeout=HTTP_TIMEOUT_SECONDS
        ) as client:
            platform = Platform(client, runtime, clock)
            narrator = Narrator(console)
            past = Trade(platform, WORKS, SEED_PARTIES)
            console.print(
                f"[bold]Seeding[/]: a complete trade on a clock from {shanghai_text(clock.now())} Shanghai"
            )
            if not await narrator.run((*PEOPLE_STEPS, *TRADE_STEPS), past):
                return False
            clock.set(wall_clock.now())
            live = Trade(platform, LIVE, SEED_PARTIES, people=past.people)
            console.print(
                f"[bold]Seeding[/]: an open tender published now ({shanghai_text(clock.now())} Shanghai)"
            )
            if not await narrator.run(PUBLISH_STEPS, live):
                return False
        _next_steps(console, settings, live)
        return True
    finally:
        await runtime.queue.close()
        await runtime.engine.dispose()


# ---------------------------------------------------------------- the command


@click.command("demo")
@click.option(
    "--seed-only",
    is_flag=True,
    help="Only seed the configured database (GGZY_*) with the demo users, a past trade and an open tender.",
)
def demo(seed_only: bool) -> None:
    """A complete open works tender through the real HTTP API, step by step (exit 1 on the first surprise)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the steps
    # Piped output (make, CI logs) gets a wide page instead of rich's 80 columns, so tables stay whole.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    if seed_only:
        ok = asyncio.run(seed(console, Settings.from_env()))
    else:
        ok = asyncio.run(run_demo(console))
    raise SystemExit(0 if ok else 1)
