"""`ggzy demo`: a complete open works tender through the real HTTP API, one checked step at a time.

By default everything is throw-away: a fresh SQLite database and a local object store in a temporary
directory, the app served by uvicorn on a free loopback port inside this process, and httpx talking to it
over TCP as any client would. A `SettableClock` stands still at Mon 2026-03-02 09:00 (Shanghai) until the
demo moves it across a deadline; then the demo runs the chronograph itself, as the server's periodic job
would, and the outbox jobs that became due (the envelopes' decryption among them): `trading/demo_private.py`.

The bids are real sealed envelopes (age v1 files, DESIGN.md "The sealed envelope"): each bidder's keys are
made here, on the client side, and only public keys, ciphertext and — after the deadline — file keys and
custodians' releases ever reach the server. Three custodians (the centre, the supervisor and a notary) each
hold a share of every envelope's file key; t = 2 counts the two besides the platform, so the stanzas need
T = 3 shares and the platform with one other never opens a bid. One bidder sabotages its custody shares
(shares of a random secret) and keeps its key: the custodians' proven releases attribute that to it.

`--url` drives a running rehearsal server instead (`trading/demo_remote.py`): the same steps through its API,
time moved with the rehearsal clock the centre sets, the server's own chronograph and worker waited for,
and every organisation and user named for the run, so the demo runs again and again against one server.
The steps reach either platform through a `Driver`; the composition root (`app.py`) hands in what builds a
private one (`trading.demo_private.ServerParts`), so nothing here imports it.

`--seed-only` is what `make run` calls before `ggzy serve`: into the configured database and object store it
puts the demo organisations and users (password `demo-password-1`) with their registered public keys (the
private halves as age identity files under `<var>/demo-keys/`), one trade completed in the past on a
simulated clock that starts 70 days ago, and one open tender published now, which the live server's
chronograph carries on in real time. It drives the same steps through the same API, in-process (ASGI),
in one database transaction: all of it or nothing (`trading/seeding.py`).

Every step checks the status codes and fields it gets back; the first surprise stops the demo with what
was expected and what came instead, and the process exits 1.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from accounts import service as accounts
from accounts.uscc import make_uscc
from bidding import agekeys, bidfile, custody, envelope, merkle
from bidding import opening_record as signed_record
from bidding import receipt as receipts
from rules.calendar import SHANGHAI, local_date
from rules.profiles import WORKS_OPEN, deposit_cap, performance_security_cap
from storage.settings import Settings

if TYPE_CHECKING:
    pass

PASSWORD = "demo-password-1"  # noqa: S105 - the published demo password (README), not a secret
DEMO_START = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
SEED_HISTORY = timedelta(days=70)
DEADLINE_TIME = time(10, 0)
BID_DURATION_DAYS = 540
CUSTODY_THRESHOLD = 2
STARTUP_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 60.0
JOB_WAIT_SECONDS = 60.0  # how long a step waits for a worker elsewhere (arq) to finish its jobs
KEYS_DIR = "demo-keys"


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
    """The first 12 characters of a hash or key, enough to tell them apart on screen."""
    return digest[:12] + "…"


def shanghai_text(instant: datetime | str) -> str:
    """An instant as Asia/Shanghai wall time, to the minute."""
    if isinstance(instant, str):
        instant = datetime.fromisoformat(instant)
    return instant.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def at_shanghai(day: date, wall: time) -> datetime:
    """The instant of `wall` o'clock in Shanghai on `day`."""
    return datetime.combine(day, wall, tzinfo=SHANGHAI)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


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
            "南京腾跃建设工程有限公司",
        ),
        start=1,
    )
)
SUPERVISOR = _party("supervisor", "supervisor", "南京市建设工程招标投标监督管理办公室", "11", 3)
AUDITOR = _party("auditor", "auditor", "南京市审计局", "11", 4)
# A notary office supervises openings (公证监督); it takes part as a supervising organisation.
NOTARY = _party("notary", "supervisor", "江苏省南京市石城公证处", "12", 5)
PARTIES = (AGENCY, *BIDDERS, SUPERVISOR, NOTARY, AUDITOR)
# The opening custodians, in share-position order: the platform holds one share only (DESIGN.md); t = 2
# counts the custodians besides the platform, so the stanzas need T = 3 shares: the platform's and both others'.
CUSTODIANS = (CENTRE, SUPERVISOR, NOTARY)
# Who releases when envelopes go to custody: every custodian, the platform (the centre's key) included.
RELEASING = CUSTODIANS


@dataclass(frozen=True)
class TenderPlan:
    """What the agency tenders: one lot, the bidders' prices (in bidder order), who misses the decryption
    window at the opening, who withdraws and bids again, and which two bidders' bid letters were written
    by the same hand (a W-18 trace the platform finds at the opening)."""

    title: str
    tenderer: str
    tenderer_credit_code: str  # the committee draw avoids the tenderer's staff by it (G-08)
    qualification: str
    estimated_price_fen: int
    prices_fen: tuple[int, ...]
    rebid_price_fen: int
    absent_bidder: int = 3  # bidder4 misses the window; the custodians open its envelope (E-03)
    saboteur: int = 5  # bidder6 seals shares of a random secret and keeps its key: its fault, proven
    withdrawing_bidder: int = 4  # bidder5 withdraws (W-05) and bids again
    same_author: tuple[int, int] = (0, 2)  # bidder1 and bidder3, the two highest prices (陪标)

    @property
    def deposit_fen(self) -> int:
        return deposit_cap(WORKS_OPEN, self.estimated_price_fen)


WORKS = TenderPlan(
    title="城南污水处理厂提标改造工程施工",
    tenderer="南京市城南水务有限公司",
    tenderer_credit_code=make_uscc("91320100MA0000061"),
    qualification="市政公用工程施工总承包二级及以上资质，项目经理具备市政公用工程一级注册建造师执业资格",
    estimated_price_fen=5_000_000_000,
    prices_fen=(4_880_000_000, 4_795_000_000, 4_912_000_000, 4_760_000_000, 4_851_000_000, 4_968_000_000),
    rebid_price_fen=4_823_000_000,
)
LIVE = TenderPlan(
    title="滨江大道综合管廊及道路提升工程施工",
    tenderer="南京市滨江开发建设有限公司",
    tenderer_credit_code=make_uscc("91320100MA0000062"),
    qualification="市政公用工程施工总承包一级资质",
    estimated_price_fen=12_600_000_000,
    prices_fen=(),
    rebid_price_fen=0,
)


# ---------------------------------------------------------------- the platform, as its users reach it


@dataclass(frozen=True)
class Cast:
    """Who plays the demo's parts on the server. On its private server the demo's own names; on a shared
    rehearsal server a run's own (`run`, drawn at random): usernames prefixed `r<run>-`, and credit codes,
    the tenderer's included, numbered for the run. So no run meets another's organisations, users or
    experts, and the demo runs as often as one likes against the same server."""

    run: int = 0

    @property
    def prefix(self) -> str:
        return f"r{self.run}-" if self.run else ""

    def __call__(self, party: Party) -> Party:
        """The user and organisation that play `party` in this run."""
        if not self.run:
            return party
        return replace(
            party, username=self.prefix + party.username, credit_code=self.credit_code(party.credit_code)
        )

    def credit_code(self, code: str) -> str:
        """A demo credit code (serial below 100) renumbered for this run."""
        if not self.run:
            return code
        head, serial = code[:10], int(code[10:17])
        return make_uscc(f"{head}{self.run * 100 + serial:07d}")

    def plan(self, plan: TenderPlan) -> TenderPlan:
        """`plan` with this run's tenderer (the draw avoids the tenderer's staff by its credit code)."""
        return replace(plan, tenderer_credit_code=self.credit_code(plan.tenderer_credit_code))


@dataclass
class Actor:
    """A signed-in demo user; signs in again when the token runs out on the (simulated) clock."""

    party: Party
    organisation_id: str = ""
    token: str = ""
    expires_at: datetime | None = None
    name: str = (
        ""  # the part it plays (`bidder1`): its username, unless a run's prefix names it on the server
    )
    password: str | None = PASSWORD  # None: the token is all it has, and it never signs in again


@dataclass
class SealedBid:
    """What a bidder keeps: the sealed envelope it made, its finalise request and the receipt (a signed
    transparency-log entry), and — once withdrawn — the withdrawal's receipt."""

    bidder: Actor
    price_fen: int
    sealed: bytes  # the age file, as uploaded
    request: dict[str, Any]
    idempotency_key: str
    receipt: dict[str, Any]
    withdrawal: dict[str, Any] | None = None

    @property
    def bid_id(self) -> str:
        return str(self.receipt["bid_id"])

    @property
    def lot_id(self) -> str:
        return str(self.request["lot_id"])

    @property
    def sha256(self) -> str:
        return str(self.receipt["envelope_sha256"])

    @property
    def header(self) -> envelope.Header:
        return envelope.read_header(io.BytesIO(self.sealed))


class DemoClock(Protocol):
    """The time the demo's platform runs on, as the steps move it."""

    def now(self) -> datetime: ...

    def set(self, instant: datetime) -> None: ...

    def advance(self, delta: timedelta) -> datetime: ...


class Driver(Protocol):
    """What runs the platform the steps talk to: a private server in this process (`trading.demo_private.PrivateDriver`) or a
    rehearsal server elsewhere (`trading.demo_remote.RehearsalDriver`). The steps do everything through the
    HTTP API; through the driver they only move time, wait for the background work and learn the few things
    a client cannot ask the API for."""

    @property
    def clock(self) -> DemoClock:
        """The clock the steps move."""
        ...

    files: Path  # where the demo saves what it tells an auditor to verify
    kept: bool  # whether `files` outlives the demo (`--keep`), so files there may be named
    bank_notify_secret: str  # the key the bank signs its arrival notices with (the sandbox bank's side)

    async def centre(self, platform: Platform) -> Actor:
        """The trading centre's signed-in administrator."""
        ...

    async def earliest_deadline_day(self, documents_from: datetime) -> date:
        """The first day bids may close on (W-01) for documents issued from `documents_from`."""
        ...

    async def sync(self, platform: Platform) -> None:
        """Bring the platform's clock to `clock` before a request, if the steps moved it."""
        ...

    async def tick(self) -> list[tuple[str, str]] | None:
        """Run the chronograph now and the jobs it caused: what moved, or None where the server's own
        chronograph runs it."""
        ...

    async def run_jobs(self) -> None:
        """Run the due jobs (nothing where the server's own worker runs them)."""
        ...

    async def settle(self, done: Callable[[], Awaitable[bool]], what: str) -> None:
        """Return once `done()` holds after the background work ran; StepFailed naming `what` otherwise."""
        ...


class Platform:
    """The HTTP API as the demo's users reach it, over a driver that moves time and runs what became due."""

    def __init__(self, client: httpx.AsyncClient, driver: Driver) -> None:
        self.client = client
        self.driver = driver

    @property
    def clock(self) -> DemoClock:
        return self.driver.clock

    @property
    def kept(self) -> bool:
        return self.driver.kept

    @property
    def files(self) -> Path:
        return self.driver.files

    @property
    def bank_notify_secret(self) -> str:
        return self.driver.bank_notify_secret

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
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send a request as `actor` and insist on the status `expect`."""
        await self.driver.sync(self)
        sent = dict(headers or {})
        if actor is not None:
            sent["Authorization"] = f"Bearer {await self._token(actor)}"
        r = await self.client.request(method, path, json=json, params=params, headers=sent, content=content)
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

    async def login(self, party: Party, organisation_id: str = "", *, name: str | None = None) -> Actor:
        """Sign `party`'s user in; `name` is the part it plays in the demo (its demo username by default)."""
        actor = Actor(party, organisation_id, name=name or party.username)
        await self._token(actor)
        return actor

    async def _token(self, actor: Actor) -> str:
        # Tokens expire on the server's clock, which the demo moves by weeks: sign in again when needed.
        if actor.password is None:
            return actor.token
        if actor.expires_at is None or self.clock.now() >= actor.expires_at - timedelta(minutes=1):
            answer = await self.call(
                "POST",
                "/api/v1/auth/login",
                json={"username": actor.party.username, "password": actor.password},
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
        """Send a file the way the platform granted: PUT to its URL, or POST the S3 form."""
        check(grant.get("method") in ("PUT", "POST"), "a presigned PUT or POST", grant.get("method"))
        if grant["method"] == "POST":
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as outside:
                r = await outside.post(
                    str(grant["upload_url"]), data=grant["fields"], files={"file": ("file", content)}
                )
        else:
            r = await self.presigned("PUT", str(grant["upload_url"]), content)
        check(
            r.status_code in (200, 201, 204),
            "the presigned upload → 200/201/204",
            f"{r.status_code} {r.text[:200]}",
        )

    async def run_jobs(self) -> None:
        """Run what the outbox holds (where this process runs the jobs)."""
        await self.driver.run_jobs()

    async def settle(self, done: Callable[[], Awaitable[bool]], what: str) -> None:
        """Let the background work run until `done()` holds (bounded; StepFailed naming `what` otherwise)."""
        await self.driver.sync(self)
        await self.driver.settle(done, what)

    async def tick(self) -> list[tuple[str, str]] | None:
        """Run the chronograph at the clock's time, then every job its transitions put in the outbox; what
        moved, or None where the server's own chronograph runs (wait for the state with `settle`)."""
        await self.driver.sync(self)
        return await self.driver.tick()

    async def move_to(self, instant: datetime) -> list[tuple[str, str]] | None:
        """Move the clock to `instant` and run whatever fell due (as `tick`)."""
        self.clock.set(instant)
        return await self.tick()


@dataclass
class Trade:
    """One tender carried through the platform, with everything the steps learn on the way."""

    platform: Platform
    plan: TenderPlan
    parties: Sequence[Party]
    people: dict[str, Actor] = field(default_factory=dict)
    keys: dict[str, agekeys.KeyPair] = field(default_factory=dict)  # private halves, by username
    tender: dict[str, Any] = field(default_factory=dict)
    etag: str = ""
    earliest_day: date | None = None
    documents_sha256: str = ""
    bids: list[SealedBid] = field(default_factory=list)
    log_key: bytes = b""  # the transparency log's public key, pinned by the bidders
    closing: dict[str, Any] = field(default_factory=dict)
    record: list[dict[str, Any]] = field(default_factory=list)  # the live opening record, line by line
    award: dict[str, Any] = field(default_factory=dict)
    publicity_ends: datetime | None = None
    escrow: dict[str, Any] = field(default_factory=dict)  # what the deposit steps learn
    evaluation: dict[str, Any] = field(default_factory=dict)  # what the evaluation steps learn
    cast: Cast = field(default_factory=Cast)  # who plays each part on the server

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
    def supervisor(self) -> Actor:
        return self.people[SUPERVISOR.username]

    @property
    def bidders(self) -> list[Actor]:
        return [self.people[b.username] for b in BIDDERS]

    @property
    def absent(self) -> Actor:
        return self.bidders[self.plan.absent_bidder]

    @property
    def saboteur(self) -> Actor:
        return self.bidders[self.plan.saboteur]

    @property
    def deadline(self) -> datetime:
        return datetime.fromisoformat(self.tender["bid_deadline"])

    @property
    def window_end(self) -> datetime:
        return self.deadline + timedelta(minutes=int(self.tender["opening_window_minutes"]))

    def live_bids(self) -> list[SealedBid]:
        """The bids standing at the deadline (a withdrawn bid is replaced by its bidder's new one), in the
        order they arrived."""
        latest = {b.bidder.party.username: b for b in self.bids}
        return sorted(latest.values(), key=lambda b: datetime.fromisoformat(b.receipt["submitted_at"]))

    def bid_of(self, bidder: Actor) -> SealedBid:
        """The bidder's standing bid."""
        return next(b for b in self.live_bids() if b.bidder is bidder)

    async def notices(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The trade's notices on the public board (no sign-in), newest first."""
        params = {"tender_code": self.code, **({"kind": kind} if kind else {})}
        items: list[dict[str, Any]] = (await self.p.call("GET", "/api/v1/notices", params=params))["items"]
        return items

    def status_is(self, status: str) -> Callable[[], Awaitable[bool]]:
        """A condition for `settle`: the tender has reached `status`."""

        async def reached() -> bool:
            return bool((await self.p.call("GET", f"/api/v1/tenders/{self.tid}"))["status"] == status)

        return reached

    async def opening_record(self) -> list[dict[str, Any]]:
        """The live opening record so far (as the agency sees it in the hall)."""
        self.record = await self.p.call("GET", f"/api/v1/tenders/{self.tid}/opening/record", self.agency)
        return self.record


Outcome = str | tuple[str, Table]
StepFn = Callable[[Trade], Awaitable[Outcome]]


@dataclass(frozen=True)
class Step:
    title: str
    run: StepFn


def _table(*columns: str) -> Table:
    return Table(*columns, box=None, padding=(0, 2))


# ---------------------------------------------------------------- people


async def bootstrap_centre(t: Trade) -> Outcome:
    """The trading centre and its administrator: created once from the command line's side (no API) on a
    private server; a rehearsal server's own, signed in with the credentials given."""
    centre = await t.p.driver.centre(t.p)
    t.people[CENTRE.username] = centre
    party = centre.party
    return f"{party.name}, credit code {party.credit_code}, administrator '{party.username}' signed in"


async def register_parties(t: Trade) -> Outcome:
    """Centre staff add each organisation (approved at once) and its user, who then signs in."""
    table = _table("user", "role", "organisation", "credit code (USCC)")
    for part in t.parties:
        party = t.cast(part)
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
        t.people[part.username] = await t.p.login(party, str(org["id"]), name=part.username)
        table.add_row(party.username, ", ".join(party.roles), party.name, party.credit_code)
    kinds = sorted({p.kind for p in t.parties})
    return f"{len(t.parties)} organisations ({', '.join(kinds)}), each with a signed-in user", table


async def register_keys(t: Trade) -> Outcome:
    """Each custodian makes an X25519 key and each bidder an X25519 and an Ed25519 key, on its own side;
    only the public halves are registered (the private halves stay with their owners)."""
    table = _table("user", "registers", "age recipient (X25519)", "Ed25519 signing key")
    holders = [(p, False) for p in CUSTODIANS] + [(p, True) for p in BIDDERS]
    for party, signing in holders:
        keys = agekeys.generate(signing=signing)
        actor = t.people[party.username]
        items = [("encryption", agekeys.x25519_public_raw(keys))]
        if signing:
            items.append(("signing", agekeys.ed25519_public_raw(keys)))
        for purpose, raw in items:
            key = await t.p.call(
                "POST",
                "/api/v1/keys",
                actor,
                expect=201,
                json={"purpose": purpose, "public_key": b64(raw)},
            )
            check(key["purpose"] == purpose, f"a {purpose} key", key)
        t.keys[party.username] = keys
        recipient = agekeys.recipient(agekeys.x25519_public_raw(keys))
        table.add_row(
            party.username,
            " + ".join(purpose for purpose, _ in items),
            short(recipient) + recipient[-6:],
            short(b64(agekeys.ed25519_public_raw(keys))) if signing else "—",
        )
    registered = await t.p.call("GET", "/api/v1/keys", t.supervisor)
    check(
        [k["purpose"] for k in registered] == ["encryption"],
        "the supervisor's one encryption key",
        registered,
    )
    return (
        f"{len(CUSTODIANS)} custodians ({', '.join(p.username for p in CUSTODIANS)}) and {len(BIDDERS)} bidders "
        "registered their public keys; no private key left its owner",
        table,
    )


# ---------------------------------------------------------------- drafting and publishing


async def draft_tender(t: Trade) -> Outcome:
    """The agency saves a draft: documents from now, bids close at 10:00 on the earliest legal day; three
    opening custodians, the centre among them: t = 2 counts the two others, whose shares with the
    platform's open an envelope its bidder does not (E-03)."""
    documents_from = t.p.clock.now()
    t.earliest_day = await t.p.driver.earliest_deadline_day(documents_from)
    deadline = at_shanghai(t.earliest_day, DEADLINE_TIME)
    r = await t.p.request(
        "POST",
        "/api/v1/tenders",
        t.agency,
        expect=201,
        json={
            "title": t.plan.title,
            "tenderer_name": t.plan.tenderer,
            "tenderer_credit_code": t.plan.tenderer_credit_code,
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
            "custodians": [t.people[p.username].organisation_id for p in CUSTODIANS],
            "custody_threshold": CUSTODY_THRESHOLD,
            "opening_policy": "custodians",
        },
    )
    t.tender, t.etag = r.json(), r.headers.get("ETag", "")
    check(t.tender["status"] == "draft", "status draft", t.tender["status"])
    check(t.code.startswith("GGZY-320100-"), "a GGZY-320100-… transaction code", t.code)
    check(bool(t.etag), "an ETag on the draft", "none")
    named = [t.people[p.username].organisation_id for p in CUSTODIANS]
    check(
        t.tender["custodian_organisations"] == named,
        f"custodians {named}",
        t.tender["custodian_organisations"],
    )
    check(t.tender["custodians"] == [], "no roster before publication", t.tender["custodians"])
    lot = t.tender["lots"][0]
    return (
        f"{t.code} «{t.plan.title}», status draft; documents from {shanghai_text(documents_from)}, "
        f"bids close {shanghai_text(deadline)} (W-01: ≥ {WORKS_OPEN.documents_to_deadline_days} days); "
        f"estimate {yuan(lot['estimated_price_fen'])} yuan, deposit {yuan(lot['deposit_fen'])} yuan (W-04 cap); "
        f"custodians {', '.join(p.username for p in CUSTODIANS)}, t = {CUSTODY_THRESHOLD} besides the platform "
        f"(policy {t.tender['opening_policy']})"
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
    """The agency publishes: the tender notice goes on the board, the documents are issued, and the
    custodian roster is frozen with each custodian's key: every envelope is sealed to exactly these."""
    r = await t.p.request(
        "POST", f"/api/v1/tenders/{t.tid}/publish", t.agency, expect=200, headers={"If-Match": t.etag}
    )
    t.tender, t.etag = r.json(), r.headers.get("ETag", "")
    check(t.tender["status"] == "tendering", "status tendering", t.tender["status"])
    await t.p.tick()  # jobs from the outbox, if any

    async def on_the_board() -> bool:
        return bool(await t.notices("tender_notice"))

    await t.p.settle(on_the_board, f"{t.code}'s tender notice on the public board")
    notices = await t.notices("tender_notice")
    check(len(notices) == 1, "one tender notice on the public board", len(notices))
    roster = t.tender["custodians"]
    check(t.tender["custody_threshold"] == CUSTODY_THRESHOLD, f"t = {CUSTODY_THRESHOLD}", t.tender)
    check(len(roster) == len(CUSTODIANS), f"{len(CUSTODIANS)} custodians on the roster", roster)
    # the platform's share never counts toward t: the stanzas need t + 1 shares, the platform's among them
    check(t.tender["shamir_threshold"] == CUSTODY_THRESHOLD + 1, f"T = {CUSTODY_THRESHOLD + 1}", t.tender)
    check(
        [c["platform"] for c in roster] == [p is CENTRE for p in CUSTODIANS],
        "the centre marked as the platform",
        roster,
    )
    table = _table("share", "custodian", "organisation", "platform", "age recipient (frozen at publication)")
    for position, (party, custodian) in enumerate(zip(CUSTODIANS, roster, strict=True), start=1):
        mine = agekeys.recipient(agekeys.x25519_public_raw(t.keys[party.username]))
        check(custodian["position"] == position, f"share position {position}", custodian)
        check(
            custodian["organisation_id"] == t.people[party.username].organisation_id,
            f"{party.username} at position {position}",
            custodian,
        )
        check(
            custodian["recipient"] == mine,
            f"{party.username}'s registered key {mine}",
            custodian["recipient"],
        )
        table.add_row(
            f"x={position}",
            party.username,
            party.name,
            "yes" if custodian["platform"] else "",
            custodian["recipient"],
        )
    sealing = notices[0]["body"].get("sealing", {})
    check(
        (sealing.get("custody_threshold"), sealing.get("shamir_threshold"))
        == (CUSTODY_THRESHOLD, CUSTODY_THRESHOLD + 1),
        "the sealing terms on the notice",
        sealing,
    )
    return (
        f"{t.code} is tendering; «{notices[0]['title']}» published {shanghai_text(notices[0]['published_at'])}, "
        f"next chronograph check {shanghai_text(t.tender['next_check'])}; bids are sealed to the bidder and "
        f"to {len(roster)} custodians: t = {t.tender['custody_threshold']} custodians besides the platform and "
        f"the platform's share (Shamir T = {t.tender['shamir_threshold']}) open one after the deadline; the "
        "platform with one custodian never can",
        table,
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


def _pdf(title: str, author: str | None) -> bytes:
    """A small PDF whose document information names its title and (when given) its author."""
    info = f"<< /Title ({title})" + (f" /Author ({author})" if author else "") + " >>"
    content = secrets.token_hex(2048).encode()
    return b"".join(
        (
            b"%PDF-1.7\n1 0 obj\n",
            info.encode(),
            b"\nendobj\n2 0 obj\n<< /Length %d >>\nstream\n" % len(content),
            content,
            b"\nendstream\nendobj\ntrailer\n<< /Info 1 0 R >>\n%%EOF\n",
        )
    )


def _bid_files(t: Trade, bidder: Actor) -> dict[str, bytes]:
    """The bidder's files: a bid letter whose PDF names its author, and the priced bill of quantities.
    The plan's `same_author` pair had theirs written by one person (a W-18 trace)."""
    index = t.bidders.index(bidder)
    author = "王建国" if index in t.plan.same_author else f"{bidder.party.name}投标部"
    return {
        "bid-letter.pdf": _pdf(f"{t.plan.title} 投标函", author),
        "priced-bill.pdf": _pdf(f"{t.plan.title} 已标价工程量清单", None),
    }


def _seal(t: Trade, bidder: Actor, price_fen: int) -> bytes:
    """Seal the bidder's files locally into an age v1 envelope: to the bidder's own key and, as Shamir
    shares of the file key, to the tender's custodians; the manifest inside is signed by the bidder."""
    keys = t.keys[bidder.name]
    assert keys.signing is not None
    with tempfile.TemporaryDirectory(prefix="ggzy-seal-") as tmp:
        paths = []
        for name, data in _bid_files(t, bidder).items():
            path = Path(tmp) / name
            path.write_bytes(data)
            paths.append(path)
        out = io.BytesIO()
        bidfile.seal_bid(
            paths,
            out,
            tender=t.code,
            lot=int(t.tender["lots"][0]["number"]),
            bidder=bidder.party.credit_code,
            kind="commercial",
            declared_price_fen=price_fen,
            duration_days=BID_DURATION_DAYS,
            signing=keys.signing,
            bidder_public=agekeys.x25519_public_raw(keys),
            custodians=[base64.b64decode(c["public_key"]) for c in t.tender["custodians"]],
            threshold=int(t.tender["shamir_threshold"]),
        )
    if bidder is t.saboteur:
        return _sabotage(t, out.getvalue(), keys)
    return out.getvalue()


def _sabotage(t: Trade, sealed: bytes, keys: agekeys.KeyPair) -> bytes:
    """What a cheating bidder does to keep an option on its bid: the custodians' stanzas carry shares of a
    random secret, not of the file key (right context, x, t and tags, so finalize accepts them); only its
    own stanza opens the envelope. It would reveal its key only if its price won."""
    header = envelope.read_header(io.BytesIO(sealed))
    file_key = envelope.unwrap_bidder(header, keys.encryption.private_bytes_raw())
    custodians = [base64.b64decode(c["public_key"]) for c in t.tender["custodians"]]
    fake = envelope.share_stanzas(
        envelope.generate_file_key(), custodians, int(t.tender["shamir_threshold"]), t.code
    )
    own = [s for s in header.stanzas if s.type == envelope.X25519_TYPE]
    return envelope.encode_header([*own, *fake], file_key) + sealed[header.size :]


def _check_receipt(t: Trade, receipt: dict[str, Any], event: str, bidder: Actor, sha256: str) -> None:
    """A receipt names our envelope and is a leaf of the log, signed by the key we pinned."""
    check(receipt["event"] == event, f"a {event!r} receipt", receipt["event"])
    check(receipt["envelope_sha256"] == sha256, f"a receipt for our envelope {short(sha256)}", receipt)
    check(
        receipt["bidder_credit_code"] == bidder.party.credit_code,
        f"bidder {bidder.party.credit_code} on the receipt",
        receipt["bidder_credit_code"],
    )
    leaf = receipt["log"]["leaf"]
    check(
        (leaf["event"], leaf["envelope_sha256"], leaf["tender"]) == (event, sha256, t.code),
        "the log leaf of this event",
        leaf,
    )
    # The bidder's own log of the tender: its head counts this bidder's events alone, none of the others'.
    own = sum(1 + (b.withdrawal is not None) for b in t.bids if b.bidder is bidder)
    head = receipt["log"]["tree_head"]
    check(
        (receipt["log"]["leaf_index"], head["tree_size"]) == (own, own + 1),
        f"leaf #{own} of a head of {own + 1}: this bidder's own events only",
        (receipt["log"]["leaf_index"], head["tree_size"]),
    )
    checks = receipts.verify(receipt, pin=receipts.KeyPin(t.log_key, "the bidders pinned"))
    check(
        receipts.passed(checks),
        "a receipt whose every field verifies offline",
        [c for c in checks if not c.ok],
    )


async def _submit_bid(t: Trade, bidder: Actor, price_fen: int) -> SealedBid:
    """Seal locally, upload the envelope by presigned PUT, then finalise it under an Idempotency-Key."""
    sealed = await asyncio.to_thread(_seal, t, bidder, price_fen)
    grant = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/bids/uploads",
        bidder,
        expect=201,
        json={"filename": "bid.age", "size": len(sealed)},
    )
    await t.p.upload(grant, sealed)
    request = {"lot_id": t.tender["lots"][0]["id"], "object_key": grant["object_key"]}
    key = f"bid-{secrets.token_hex(8)}"
    receipt = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/bids",
        bidder,
        expect=201,
        json=request,
        headers={"Idempotency-Key": key},
    )
    _check_receipt(t, receipt, "submit", bidder, hashlib.sha256(sealed).hexdigest())
    check(receipt["size"] == len(sealed), f"{len(sealed)} bytes on the receipt", receipt["size"])
    bid = SealedBid(bidder, price_fen, sealed, request, key, receipt)
    t.bids.append(bid)
    return bid


def _stanzas(header: envelope.Header) -> str:
    kinds = [s.type for s in header.stanzas]
    return " + ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))


def _receipt_table() -> Table:
    return _table("bidder", "received", "event", "envelope SHA-256", "bytes", "recipients", "own log")


def _receipt_row(table: Table, bid: SealedBid) -> None:
    r = bid.receipt
    table.add_row(
        bid.bidder.party.username,
        shanghai_text(r["submitted_at"]),
        r["event"],
        short(r["envelope_sha256"]),
        f"{r['size']:,}",
        _stanzas(bid.header),
        f"#{r['log']['leaf_index']} of {r['log']['tree_head']['tree_size']}",
    )


def _open_own(t: Trade, bid: SealedBid) -> bidfile.Manifest:
    """What the bidder can always do with its own envelope: open it locally (as `age -d -i key` would)."""
    keys = t.keys[bid.bidder.name]
    file_key = envelope.unwrap_bidder(bid.header, keys.encryption.private_bytes_raw())
    with tempfile.TemporaryDirectory(prefix="ggzy-open-") as tmp:
        return bidfile.open_bid(io.BytesIO(bid.sealed), file_key, Path(tmp)).manifest


async def submit_bids(t: Trade) -> Outcome:
    """Each bidder seals its bid on its own machine (age v1: to itself and to the custodians) and submits the
    ciphertext; the receipt is a signed entry of the transparency log. The same request sent again under
    the same key replays the first answer instead of bidding twice."""
    pinned = await t.p.call("GET", "/api/v1/transparency/key")
    t.log_key = base64.b64decode(pinned["public_key"])
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
    check(first.sealed.startswith(envelope.INTRO), "an age v1 file", first.sealed[:30])
    manifest = await asyncio.to_thread(_open_own, t, first)
    check(manifest.declared_price_fen == first.price_fen, f"price {first.price_fen}", manifest)
    return (
        f"{len(t.bids)} sealed envelopes (age-encryption.org/v1), the platform holds only ciphertext; receipts "
        f"signed by log key {pinned['key_id']}, each verified offline; {first.bidder.party.username} can "
        f"always open its own envelope locally (signed manifest, {yuan(manifest.declared_price_fen or 0)} yuan); "
        "its request sent again under its Idempotency-Key got the same receipt back (Idempotent-Replayed: true)",
        table,
    )


async def withdraw(t: Trade) -> Outcome:
    """Before the deadline a bidder may withdraw its bid (W-05: deposit back within 5 days); the withdrawal
    is logged too and has a receipt of its own."""
    t.p.clock.advance(timedelta(days=2))
    old = t.bids[t.plan.withdrawing_bidder]
    bidder = old.bidder
    bid = await t.p.call("POST", f"/api/v1/tenders/{t.tid}/bids/{old.bid_id}/withdraw", bidder)
    check(bid["status"] == "withdrawn", "status withdrawn", bid["status"])
    check(bid.get("receipt") is not None, "the withdrawal's receipt", bid)
    _check_receipt(t, bid["receipt"], "withdraw", bidder, old.sha256)
    old.withdrawal = bid["receipt"]
    # The centre's escrow officers hold the refund (W-05); who withdrew stays out of the audit trail until
    # the deadline (W-20), and a supervisor sees the refund's light but not whose it is.
    refunds = await t.p.call("GET", "/api/v1/escrow/obligations", t.centre)
    refund_due = next(
        (
            r["due_on"]
            for r in refunds
            if r["rule"] == "W-05" and r["account"].endswith(f"/{bidder.party.credit_code}")
        ),
        None,
    )
    check(refund_due is not None, "the withdrawal's refund obligation with its due date (W-05)", refunds)
    trail = await t.p.call(
        "GET", "/api/v1/audit", t.centre, params={"object_type": "bid", "object_id": old.bid_id}
    )
    check(
        trail["items"] == [],
        "no trace of the withdrawal in the audit trail before the deadline (W-20)",
        trail,
    )
    return (
        f"{bidder.party.username} withdrew its bid (deposit refund due {refund_due}, W-05; withdrawal logged as "
        f"leaf #{old.withdrawal['log']['leaf_index']} of its own log)"
    )


async def rebid(t: Trade) -> Outcome:
    """With its deposit paid again, the bidder seals and submits a new bid before the deadline."""
    t.p.clock.advance(timedelta(hours=1))
    bidder = t.bids[t.plan.withdrawing_bidder].bidder
    new = await _submit_bid(t, bidder, t.plan.rebid_price_fen)
    return (
        f"{bidder.party.username} sealed a new bid: envelope {short(new.sha256)}, "
        f"leaf #{new.receipt['log']['leaf_index']} of its own log"
    )


async def no_early_opening(t: Trade) -> Outcome:
    """Before the deadline no custodian can help open anything: the custody view is refused, and so is a
    release made from a copy of an envelope (E-01); one share alone is not the file key anyway."""
    t.p.clock.advance(timedelta(hours=1))
    custodian = t.supervisor
    await t.p.refused("GET", f"/api/v1/tenders/{t.tid}/custody", custodian, rule="E-01")
    target = t.bid_of(t.bidders[1])
    identity = t.keys[custodian.name].encryption.private_bytes_raw()
    shares = envelope.unwrap_shares(target.header, identity, t.code)
    release = custody.make_release(identity, target.header, context=t.code, x=shares[0].x)
    problem = await t.p.refused(
        "POST",
        f"/api/v1/tenders/{t.tid}/custody/releases",
        custodian,
        rule="E-01",
        json={"bid_id": target.bid_id, "release": release.to_json()},
    )
    try:
        envelope.combine_shares(target.header, shares)
    except envelope.EnvelopeError as exc:
        alone = exc.code
    else:
        alone = "the file key"
    check(alone == "shares.insufficient", "one share alone cannot open the envelope", alone)
    return (
        f"{custodian.party.username} at {shanghai_text(t.p.clock.now())}: custody view → 422 rule E-01; "
        f"its release of {target.bidder.party.username}'s stanza → 422 rule E-01 ({problem['detail']}); "
        f"one share alone: {alone}"
    )


# ---------------------------------------------------------------- the deadline and the opening hall


async def close_bidding(t: Trade) -> Outcome:
    """At the bid deadline the chronograph signs the tender's closing head over every bid event of the
    tender and the envelopes that stand, appends it to the public log (whose head did not move while bids
    arrived, W-20) and opens the online opening hall (W-08)."""
    public = await t.p.client.get("/api/v1/transparency/head")  # 404 while the public log is empty
    before = public.json()["tree_size"] if public.status_code == 200 else 0
    done = await t.p.move_to(t.deadline)
    if done is not None:  # our own chronograph ran: it moved this tender and nothing else
        check(done == [(t.code, "opening")], f"[({t.code!r}, 'opening')]", done)
    await t.p.settle(t.status_is("opening"), f"the chronograph to close bidding on {t.code} at its deadline")
    t.closing = await t.p.call("GET", f"/api/v1/tenders/{t.tid}/closing")  # public: no sign-in
    standing = sorted(b.sha256 for b in t.live_bids())
    check(sorted(t.closing["envelopes"]) == standing, f"the {len(standing)} standing envelopes", t.closing)
    check(t.closing["log_public_key"] == b64(t.log_key), "the pinned log key", t.closing["log_public_key"])
    head = t.closing["head"]
    check(head["kind"] == "closing", "a closing head", head)
    events = sum(1 + (b.withdrawal is not None) for b in t.bids)
    check(head["tree_size"] == len(t.closing["leaves"]) == events, f"{events} bid events", head)
    after = (await t.p.call("GET", "/api/v1/transparency/head"))["tree_size"]
    check(after == before + 1, f"the public log grown by this closing alone ({before} → {before + 1})", after)
    record = await t.opening_record()
    check([line["kind"] for line in record] == ["hall_opened"], "the hall opened", record)
    return (
        f"clock {shanghai_text(t.p.clock.now())}: chronograph → {t.code} opening; closing head signed over "
        f"{head['tree_size']} bid events (root {short(head['root_hash'])}, leaves published) and "
        f"{len(standing)} standing envelopes, logged as public leaf #{before}; decryption window until "
        f"{shanghai_text(t.window_end)}"
    )


async def verify_receipts(t: Trade) -> Outcome:
    """Every bidder checks its receipts offline against the published closing record, the log key pinned:
    every field against its signed leaf, the signatures, that its leaf is among the closing tree's
    published leaves, that the closing head is in the public log, and that its envelope stood."""
    table = _table("bidder", "receipt", "own log", "closing leaf", "checks", "in the closing set")
    pin = receipts.KeyPin(t.log_key, "the bidders pinned")
    verified = 0
    for bid in t.bids:
        withdrawn = bid.withdrawal is not None
        for receipt in (bid.receipt, *([bid.withdrawal] if bid.withdrawal else [])):
            log = receipt["log"]
            checks = receipts.verify(receipt, pin=pin, closing=t.closing)
            failed = [c.name for c in checks if not c.ok]
            expected = ["closing_envelope"] if withdrawn and receipt["event"] == "submit" else []
            check(failed == expected, f"failed checks {expected}", [c for c in checks if not c.ok])
            listed = next((c for c in checks if c.name == "closing_envelope"), None)
            leaf = b64(merkle.leaf_hash(merkle.leaf_bytes(log["leaf"])))
            table.add_row(
                bid.bidder.party.username,
                receipt["event"],
                f"#{log['leaf_index']} of {log['tree_head']['tree_size']}",
                f"#{t.closing['leaves'].index(leaf)} of {t.closing['head']['tree_size']}",
                f"{len(checks) - len(failed)} of {len(checks)} hold",
                "—" if listed is None else "yes" if listed.ok else "no: withdrawn before the deadline",
            )
            verified += 1
    withdrawn_by = t.bids[t.plan.withdrawing_bidder].bidder.party.username
    return (
        f"{verified} receipts verified against the closing head: every field, signature and inclusion "
        f"holds and every leaf is in the published closing tree; {withdrawn_by}'s withdrawn envelope is not "
        "in the closing set, as expected",
        table,
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
        json={"filename": "late-bid.age", "size": 1024},
    )
    return f"{late.party.username} at {shanghai_text(t.p.clock.now())} → 422 rule W-07: {problem['detail']}"


def _sung(t: Trade, kind: str, bid: SealedBid) -> dict[str, Any] | None:
    """The line of the opening record that reads out `bid` (唱标), if there is one yet."""
    return next((e for e in t.record if e["kind"] == kind and e.get("bid") == bid.bid_id), None)


async def _read_out(t: Trade, bid: SealedBid) -> dict[str, Any]:
    """Wait for the decryption job to read `bid` out in the hall; the line it wrote."""

    async def opened() -> bool:
        await t.opening_record()
        return _sung(t, "bid_opened", bid) is not None or _sung(t, "bid_failed", bid) is not None

    await t.p.settle(opened, f"{bid.bidder.party.username}'s envelope decrypted and read out")
    line = _sung(t, "bid_opened", bid)
    check(line is not None, f"{bid.bidder.party.username}'s envelope opened", _sung(t, "bid_failed", bid))
    assert line is not None
    check(line["declared_price_fen"] == bid.price_fen, f"price {bid.price_fen}", line)
    check(line["duration_days"] == BID_DURATION_DAYS, f"{BID_DURATION_DAYS} days", line)
    check(line["envelope_sha256"] == bid.sha256, f"envelope {short(bid.sha256)}", line)
    return line


async def reveal_keys(t: Trade) -> Outcome:
    """In the opening hall each present bidder's client unwraps its envelope's file key locally and reveals
    it; the platform checks it against the header, decrypts in a job, verifies the signed manifest and reads
    the bid out (唱标)."""
    table = _table("bidder", "key revealed", "envelope SHA-256", "price (yuan)", "days", "opened by")
    for bid in t.live_bids():
        if bid.bidder in (t.absent, t.saboteur):
            continue
        t.p.clock.advance(timedelta(minutes=2))
        keys = t.keys[bid.bidder.name]
        file_key = envelope.unwrap_bidder(bid.header, keys.encryption.private_bytes_raw())
        got = await t.p.call(
            "POST",
            f"/api/v1/tenders/{t.tid}/bids/{bid.bid_id}/decrypt",
            bid.bidder,
            expect=202,
            json={"file_key": b64(file_key)},
        )
        check(got["envelope_status"] == "opening", "the envelope being opened", got)
        line = await _read_out(t, bid)
        table.add_row(
            bid.bidder.party.username,
            shanghai_text(t.p.clock.now()),
            short(bid.sha256),
            yuan(line["declared_price_fen"]),
            str(line["duration_days"]),
            str(line["opened_by"]),
        )
    opened = [e for e in t.record if e["kind"] == "bid_opened"]
    check(len(opened) == len(t.live_bids()) - 2, f"{len(t.live_bids()) - 2} bids read out", len(opened))
    return (
        f"{len(opened)} envelopes opened by their bidders' keys and read out; "
        f"{t.absent.party.username} has not revealed its key, nor has {t.saboteur.party.username}, which "
        "watched four lower prices read out and keeps its key, its custody shares sabotaged",
        table,
    )


async def miss_window(t: Trade) -> Outcome:
    """The window ends: a key revealed now is refused (E-03), and the chronograph hands the unopened
    envelopes to the custodians (the tender's policy) for a custody window of the same length."""
    bid = t.bid_of(t.absent)
    t.p.clock.set(t.window_end + timedelta(minutes=1))
    keys = t.keys[t.absent.name]
    file_key = envelope.unwrap_bidder(bid.header, keys.encryption.private_bytes_raw())
    # Before the next tick, so the refusal is the window's (E-03), whatever the chronograph does next.
    await t.p.refused(
        "POST",
        f"/api/v1/tenders/{t.tid}/bids/{bid.bid_id}/decrypt",
        t.absent,
        rule="E-03",
        json={"file_key": b64(file_key)},
    )
    done = await t.p.tick()
    if done is not None:
        check(done == [(t.code, "custody")], f"[({t.code!r}, 'custody')]", done)

    async def in_custody() -> bool:
        return (await t.p.call("GET", f"/api/v1/tenders/{t.tid}"))["custody_until"] is not None

    await t.p.settle(in_custody, f"the chronograph to hand {t.code}'s unopened envelopes to the custodians")
    tender = await t.p.call("GET", f"/api/v1/tenders/{t.tid}")
    check(tender["status"] == "opening", "status opening", tender["status"])
    check(tender["custody_until"] is not None, "a custody window", tender)
    t.tender["custody_until"] = tender["custody_until"]
    own = await t.p.call("GET", f"/api/v1/tenders/{t.tid}/bids", t.absent)
    status = next(b["envelope_status"] for b in own if b["id"] == bid.bid_id)
    check(status == "custody", "its envelope in custody", status)
    record = await t.opening_record()
    held = [e for e in record if e["kind"] == "custody_opened"]
    check(len(held) == 1 and held[0]["envelopes"] == 2, "two envelopes to custody", record)
    return (
        f"clock {shanghai_text(t.p.clock.now())}: {t.absent.party.username}'s key → 422 rule E-03; "
        f"chronograph → custody, 2 envelopes ({t.absent.party.username}'s, {t.saboteur.party.username}'s) "
        f"in custody until {shanghai_text(tender['custody_until'])}"
    )


async def custodians_open(t: Trade) -> Outcome:
    """Each custodian (the centre's platform key included) fetches the headers in custody and, on its own
    side, releases its stanza of each envelope, one request per envelope: the stanza's X25519 shared secret
    and a Chaum–Pedersen proof that it was computed with the key on the roster. The three shares of the
    honest envelope open it; the saboteur's shares combine, but not to its file key."""
    honest, sabotaged = t.bid_of(t.absent), t.bid_of(t.saboteur)
    who = {honest.bid_id: t.absent.party.username, sabotaged.bid_id: t.saboteur.party.username}
    table = _table("custodian", "stanza", "envelope of", "proof", "stanza opens", "envelope", "outcome")
    results: dict[str, dict[str, Any]] = {}
    for party in RELEASING:
        t.p.clock.advance(timedelta(minutes=3))
        custodian = t.people[party.username]
        view = await t.p.call("GET", f"/api/v1/tenders/{t.tid}/custody", custodian)
        check(
            sorted(e["bid_id"] for e in view["envelopes"]) == sorted(who),
            "the two envelopes in custody",
            view["envelopes"],
        )
        check(
            (view["threshold"], view["shamir_threshold"]) == (CUSTODY_THRESHOLD, CUSTODY_THRESHOLD + 1),
            f"t = {CUSTODY_THRESHOLD}, T = {CUSTODY_THRESHOLD + 1}",
            view,
        )
        identity = t.keys[party.username].encryption.private_bytes_raw()
        for item in view["envelopes"]:
            header = envelope.parse_header(base64.b64decode(item["header"]))
            release = custody.make_release(identity, header, context=view["tender_code"], x=view["position"])
            answer = await t.p.call(
                "POST",
                f"/api/v1/tenders/{t.tid}/custody/releases",
                custodian,
                expect=201,
                json={"bid_id": item["bid_id"], "release": release.to_json()},
            )
            check(
                (answer["status"], answer["stanza_opens"]) == ("valid", True),
                "a valid release whose stanza opens",
                answer,
            )
            results[f"{party.username}:{item['bid_id']}"] = answer
            table.add_row(
                party.username,
                f"x={view['position']}",
                who[item["bid_id"]],
                "valid",
                "yes",
                answer["envelope_status"],
                answer["outcome"] or "—",
            )
    last = RELEASING[-1].username
    check(
        (results[f"{last}:{honest.bid_id}"]["outcome"], results[f"{last}:{sabotaged.bid_id}"]["outcome"])
        == ("opened", "bidder_fault"),
        "the honest envelope opened and the sabotaged one attributed once every custodian released",
        results,
    )
    line = await _read_out(t, honest)
    check(line["opened_by"] == "custodians", "opened by the custodians", line)
    return (
        f"{', '.join(p.username for p in RELEASING)} each released their stanza of both envelopes with a proof: "
        f"{t.absent.party.username}'s envelope opened by the custodians, {yuan(line['declared_price_fen'])} "
        f"yuan, {line['duration_days']} days; {t.saboteur.party.username}'s shares, every one proven, do not "
        "open its header",
        table,
    )


async def attribute_sabotage(t: Trade) -> Outcome:
    """The sabotaged envelope ends with one provable cause: the bidder's fault. Its bid is revoked (E-03
    撤销) and the platform proposes keeping its deposit (W-06); the supervisor decides, and approves."""
    bid = t.bid_of(t.saboteur)
    await t.opening_record()
    outcome = next((e for e in t.record if e["kind"] == "custody_outcome" and e["bid"] == bid.bid_id), None)
    check(outcome is not None, "the custody outcome in the live record", t.record)
    assert outcome is not None
    check(
        (outcome["cause"], outcome["combine_failed"], outcome["opened_shares"], outcome["not_released"])
        == ("bidder_fault", True, [1, 2, 3], []),
        "the bidder's fault: three proven shares that combine but do not open the header",
        outcome,
    )
    mine = next(
        b for b in await t.p.call("GET", f"/api/v1/tenders/{t.tid}/bids", t.saboteur) if b["id"] == bid.bid_id
    )
    check(
        (mine["status"], mine["envelope_result"]) == ("revoked", "custody.bidder_fault"),
        "its bid revoked (E-03)",
        mine,
    )
    deposit = next(d for d in (await t.p.call("GET", "/api/v1/escrow/deposits", t.saboteur)))

    async def proposed() -> list[dict[str, Any]]:
        forfeitures = await t.p.call("GET", "/api/v1/escrow/forfeitures", t.supervisor)
        return [f for f in forfeitures if f["deposit_id"] == deposit["id"]]

    async def any_proposed() -> bool:
        return bool(await proposed())

    await t.p.settle(
        any_proposed, f"the platform's W-06 proposal to keep {t.saboteur.party.username}'s deposit"
    )
    proposals = await proposed()
    check(
        [(f["rule"], f["status"], f["proposed_by"]) for f in proposals]
        == [("W-06", "proposed", "job:custody")],
        "a W-06 forfeiture proposed by the platform",
        proposals,
    )
    # within the custody window: at its end a running chronograph closes the hall before the agency would
    t.p.clock.advance(timedelta(minutes=15))
    decided = await t.p.call(
        "POST",
        f"/api/v1/escrow/forfeitures/{proposals[0]['id']}/decision",
        t.supervisor,
        json={
            "approve": True,
            "note": "开标记录中三名保管人的释放证明均有效，份额合成后不能打开信封头：投标人自身原因（E-03 撤销）",
        },
    )
    check(decided["status"] == "approved", "approved by the supervisor", decided)
    kept = next(d for d in await t.p.call("GET", "/api/v1/escrow/deposits", t.saboteur))
    check(kept["status"] == "forfeited", "the deposit forfeited", kept)
    t.escrow.setdefault("forfeited", set()).add(t.saboteur.party.username)
    return (
        f"{t.saboteur.party.username}: {outcome['detail']} → bid revoked (E-03 撤销); W-06 forfeiture of its "
        f"{yuan(deposit['required_fen'])} yuan deposit proposed by the platform, approved by the supervisor"
    )


def _sse(text: str) -> list[dict[str, Any]]:
    """The events of a text/event-stream body: each with its id, event name and JSON data."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            if name in ("id", "event", "data"):
                fields[name] = fields.get(name, "") + value.removeprefix(" ")
        if "data" in fields:
            events.append(
                {"id": fields.get("id"), "event": fields.get("event"), **json.loads(fields["data"])}
            )
    return events


def _line_text(t: Trade, event: dict[str, Any]) -> str:
    who = {b.bid_id: b.bidder.party.username for b in t.bids}
    kind = event["kind"]
    if kind == "hall_opened":
        return (
            f"{event['bids']} bids; decryption window until {shanghai_text(event['decryption_window_ends'])}"
        )
    if kind == "key_revealed":
        return f"{who.get(event['bid'], event['bid'])}: file key from the {event['by']}"
    if kind in ("bid_opened", "bid_failed"):
        price = event["declared_price_fen"]
        return (
            f"{who.get(event['bid'], event['bid'])}: {yuan(price) if price is not None else '—'} yuan, "
            f"{event['duration_days'] or '—'} days, {event['result']}"
        )
    if kind == "custody_opened":
        return f"{event['envelopes']} envelope(s) to the custodians until {shanghai_text(event['custody_until'])}"
    if kind == "custody_outcome":
        return f"{who.get(event['bid'], event['bid'])}: {event['cause']} — {event['detail']}"
    if kind == "hall_closed":
        return f"{event['bids']} bids on the record, {event['signals']} W-18 signal(s)"
    return json.dumps({k: v for k, v in event.items() if k not in ("seq", "at", "kind", "id", "event")})


async def close_hall(t: Trade) -> Outcome:
    """Every envelope is open: the agency closes the opening hall early, the tender goes to evaluation;
    the whole live record, as the opening hall's event stream sent it."""
    t.p.clock.advance(timedelta(minutes=2))
    tender = await t.p.call("POST", f"/api/v1/tenders/{t.tid}/close-opening", t.agency)
    check(tender["status"] == "evaluation", "status evaluation", tender["status"])

    async def stream() -> httpx.Response:
        return await t.p.request(
            "GET",
            f"/api/v1/tenders/{t.tid}/opening/events",
            t.supervisor,
            expect=200,
            params={"follow": "false"},
        )

    async def closed() -> bool:
        events = _sse((await stream()).text)
        return bool(events) and events[-1]["kind"] == "hall_closed"

    await t.p.settle(closed, f"the hall_closed line at the end of {t.code}'s opening record")
    r = await stream()
    check(r.headers.get("content-type", "").startswith("text/event-stream"), "an event stream", r.headers)
    events = _sse(r.text)
    check(
        bool(events) and events[-1]["kind"] == "hall_closed",
        "the stream ends with the hall closed",
        events[-1:],
    )
    check([e["event"] for e in events] == [e["kind"] for e in events], "named events", events)
    table = _table("#", "at", "event", "")
    for e in events:
        table.add_row(str(e["seq"]), shanghai_text(e["at"])[-5:], e["kind"], _line_text(t, e))
    return (
        f"{shanghai_text(t.p.clock.now())}: the agency closed the hall, {t.code} is in evaluation; "
        f"the live record has {len(events)} lines",
        table,
    )


async def opening_record(t: Trade) -> Outcome:
    """The opening record (开标记录) is a public notice: who bid, the envelope hashes, the prices read out
    and who opened each envelope."""
    notices = await t.notices("opening_record")
    check(len(notices) == 1, "one opening record", len(notices))
    rows = notices[0]["body"]["bids"]
    table = _table(
        "lot", "bidder", "credit code", "envelope SHA-256", "price (yuan)", "days", "opened by", "result"
    )
    for row in rows:
        price = row["declared_price_fen"]
        table.add_row(
            str(row["lot"]),
            row["bidder"],
            row["credit_code"],
            short(row["envelope_sha256"]),
            yuan(price) if price is not None else "—",
            str(row["duration_days"] or "—"),
            str(row["opened_by"] or "—"),
            row["result"],
        )
    got = [(r["envelope_sha256"], r["declared_price_fen"], r["opened_by"], r["result"]) for r in rows]
    expected = [
        (b.sha256, None, None, "custody.bidder_fault")
        if b.bidder is t.saboteur
        else (b.sha256, b.price_fen, "custodians" if b.bidder is t.absent else "bidder", "opened")
        for b in t.live_bids()
    ]
    check(got == expected, str(expected), got)
    return f"«{notices[0]['title']}» published {shanghai_text(notices[0]['published_at'])}", table


async def verify_opening(t: Trade) -> Outcome:
    """Anyone downloads the signed opening record (no sign-in) and verifies it offline with the pinned log
    key, as `ggzy verify opening` does: the signatures, each header against the hash signed at the
    deadline, every custodian's proof and stanza, and each custody outcome's cause. A record with a cause
    changed fails."""
    record = await t.p.call("GET", f"/api/v1/tenders/{t.tid}/opening/record/signed")
    checks = signed_record.verify(record, t.log_key)
    check(all(c.ok for c in checks), "every check holds", [c for c in checks if not c.ok])
    forged = json.loads(json.dumps(record))
    bid = t.bid_of(t.saboteur)
    next(e for e in forged["envelopes"] if e["bid"] == bid.bid_id)["custody"]["outcome"]["cause"] = (
        "custodian_fault"
    )
    failed = [c.name for c in signed_record.verify(forged, t.log_key) if not c.ok]
    check(failed == ["record_signature", "contents"], "a changed cause fails", failed)
    table = _table("check", "result")
    for c in checks:
        if c.name.startswith(("cause", "release")) or not c.name.startswith("header"):
            table.add_row(c.name, f"ok — {c.detail}")
    releases = sum(c.name.startswith("release") for c in checks)
    return (
        f"{len(checks)} checks pass with the pinned key: {releases} custodians' proofs, "
        f"{sum(c.name.startswith('header') for c in checks)} headers as signed at the deadline, "
        f"2 custody causes; the record with {t.saboteur.party.username}'s cause changed → {', '.join(failed)} fail",
        table,
    )


async def collusion_signals(t: Trade) -> Outcome:
    """W-18: at the opening the platform compared the bids (identical files, document authors, devices,
    network addresses, signing keys); the supervisor sees the signals, the agency does not."""
    signals = await t.p.call("GET", f"/api/v1/tenders/{t.tid}/collusion-signals", t.supervisor)
    await t.p.request("GET", f"/api/v1/tenders/{t.tid}/collusion-signals", t.agency, expect=403)
    pair = sorted(t.bidders[i].party.credit_code for i in t.plan.same_author)
    check(
        sorted((s["kind"], s["rule"], sorted(s["bidders"])) for s in signals)
        == [("deposit_same_payer", "W-18", pair), ("identical_metadata", "W-18", pair)],
        f"two W-18 signals on {pair}: deposits from one account, the same author in the documents",
        signals,
    )
    table = _table("kind", "rule", "bidders", "evidence")
    names = {b.party.credit_code: b.party.username for b in t.bidders}
    for s in signals:
        table.add_row(s["kind"], s["rule"], ", ".join(names[c] for c in s["bidders"]), s["evidence"])
    who = " and ".join(t.bidders[i].party.username for i in t.plan.same_author)
    author = next(s["value"] for s in signals if s["kind"] == "identical_metadata")
    return (
        f"2 W-18 signals for the committee: {who} paid their deposits from one bank account, and their bid "
        f"letters name the same author ({author}); the agency → 403",
        table,
    )


# ---------------------------------------------------------------- report, publicity, award, contract


def _ranking(t: Trade) -> list[SealedBid]:
    """The committee's ranking in this demo: the three lowest opened prices (the one the custodians opened
    included; the saboteur's revoked bid is not evaluated)."""
    opened = [b for b in t.live_bids() if b.bidder is not t.saboteur]
    return sorted(opened, key=lambda b: b.price_fen)[: WORKS_OPEN.max_candidates]


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
    expected = ["contract", "result", "candidates", "opening_record", "bid_closing", "tender_notice"]
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


from escrow import demo as escrow_demo  # noqa: E402 - its steps use this module's Trade and helpers
from evaluation import demo as evaluation_demo  # noqa: E402 - the same

PEOPLE_STEPS = (
    Step("The trading centre is bootstrapped", bootstrap_centre),
    Step("The centre registers the organisations and their users", register_parties),
    Step("Custodians and bidders register their public keys", register_keys),
)
PUBLISH_STEPS = (
    Step("The agency drafts a works tender with the lawful timeline and three custodians", draft_tender),
    Step("The agency uploads the tender documents through the presigned URL", upload_documents),
    Step("A bid deadline before the W-01 day is refused", refuse_early_deadline),
    Step("The agency publishes the tender (W-01 checked, custodian roster frozen)", publish),
)
TRADE_STEPS = (
    *PUBLISH_STEPS,
    Step("The bidders obtain the tender documents and a deposit sub-account each", obtain_documents),
    Step(
        "Deposits arrive by the bank's statement; one in suspense is matched by the centre",
        escrow_demo.deposits_arrive,
    ),
    Step("Each bidder seals its bid locally and submits the envelope for a logged receipt", submit_bids),
    Step("A bidder withdraws before the deadline (W-05)", withdraw),
    Step(
        "Its deposit is refunded through a bank batch (pain.001 out, pain.002 back)",
        escrow_demo.refund_withdrawal,
    ),
    Step(
        "It pays again; the bank's signed notification credits it at once",
        escrow_demo.pay_again_by_notification,
    ),
    Step("It bids again", rebid),
    Step("No custodian can open an envelope before the deadline (E-01)", no_early_opening),
    Step("The deadline passes; the chronograph signs the closing head and opens the hall", close_bidding),
    Step(
        "Escrow answered at the deadline: every bidder's deposit was in place",
        escrow_demo.eligibility_at_deadline,
    ),
    Step("Every receipt verifies against the closing head", verify_receipts),
    Step("A late bid is refused (W-07)", refuse_late_bid),
    Step("Four bidders reveal their file keys in the opening hall", reveal_keys),
    Step("Two bidders miss the decryption window (E-03); their envelopes go to custody", miss_window),
    Step("The custodians release their stanzas with proofs, envelope by envelope", custodians_open),
    Step(
        "The sabotaged custody shares are the bidder's fault: revoked, deposit forfeiture proposed (W-06)",
        attribute_sabotage,
    ),
    Step("The agency closes the opening hall; the live record", close_hall),
    Step("The opening record is public", opening_record),
    Step("Anyone verifies the signed opening record offline", verify_opening),
    Step("The supervisor sees the W-18 collusion signals", collusion_signals),
    Step(
        "The centre keeps the expert pool (CSV import, signing keys, a declared former employer)",
        evaluation_demo.build_pool,
    ),
    Step(
        "A draw is aborted: asked for with a reason, approved by a supervisor, its seed revealed at once",
        evaluation_demo.abort_draw,
    ),
    Step(
        "The committee is drawn: avoidance (G-08) fixed first, a supervisor's committed witness, then the seed",
        evaluation_demo.draw_committee,
    ),
    Step(
        "One expert declines and is replaced from the same quota; the seed is revealed",
        evaluation_demo.answer_invitations,
    ),
    Step(
        "The auditor replays both draws from their published records, avoidance included",
        evaluation_demo.verify_draw,
    ),
    Step(
        "The evaluation room: declarations, chair, qualification, sealed scores, an abnormal score justified (G-10)",
        evaluation_demo.evaluation_room,
    ),
    Step(
        "The report is drawn up, signed by every member (W-11), and the candidates go to publicity",
        evaluation_demo.sign_report,
    ),
    Step("Publicity of the candidates (W-12)", publicity),
    Step("The award after publicity (W-12 respected)", award),
    Step("The contract, performance security at most 10% (W-15)", record_contract),
    Step(
        "Every deposit is refunded with interest (W-14); a failed transfer is retried",
        escrow_demo.contract_refunds,
    ),
    Step("The trade is completed", complete),
    Step("The auditor verifies the ledger and the deposits", escrow_demo.verify_ledger),
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


# ---------------------------------------------------------------- an app served on a loopback port


def loopback_socket() -> socket.socket:
    """A listening-ready socket on a free loopback port (bound now, so no one can take the port meanwhile)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serving(app: Any, sock: socket.socket) -> AsyncIterator[None]:
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


def kept_files(console: Console, trade: Trade, log_key: str) -> None:
    """Where the draw records the demo saved are, and the command that replays one."""
    if trade.p.kept:
        folder = trade.p.files
        console.print(
            f"kept in {folder}: the draw records (and, from a private server, its database and objects); "
            f"replay the draw with\n  ggzy verify draw {folder / f'draw-{trade.code}-confirmed.json'} --key {log_key}",
            soft_wrap=True,
        )
    else:
        console.print("its files went with its temporary folder; `ggzy demo --keep DIR` keeps them")


# ---------------------------------------------------------------- --seed-only: the data `make run` serves


def _users_table(keys_dir: Path) -> Table:
    table = Table("user", "password", "role", "organisation", "credit code", "keys", title="demo users")
    experts = evaluation_demo.EXPERTS
    holders = {p.username for p in (*CUSTODIANS, *BIDDERS, *experts)}
    for party in (CENTRE, *PARTIES, *experts):
        key = str(keys_dir / f"{party.username}.key") if party.username in holders else ""
        table.add_row(party.username, PASSWORD, ", ".join(party.roles), party.name, party.credit_code, key)
    return table


def _keys_dir(settings: Settings) -> Path:
    return Path(settings.var_dir) / KEYS_DIR


def write_keys(settings: Settings, trade: Trade, created: datetime) -> Path:
    """The private halves of the seeded keys, as age identity files (mode 0600) a custodian passes to
    `ggzy custodian release --key` and a bidder to `ggzy bid seal|reveal --key` (demo data, like the
    published password: the keys registered now replace any left from an earlier seed)."""
    folder = _keys_dir(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for username, keys in trade.keys.items():
        path = folder / f"{username}.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(agekeys.identity_file_text(keys, created))
    return folder


def next_steps(console: Console, settings: Settings, live: Trade | None) -> None:
    base = settings.effective_public_url
    console.print(_users_table(_keys_dir(settings)))
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
    if live is not None and live.tender:
        key = _keys_dir(settings) / "bidder1.key"
        console.print(
            f"  export GGZY_URL={base} GGZY_USERNAME=bidder1 GGZY_PASSWORD={PASSWORD}   bid as bidder1:",
            soft_wrap=True,
        )
        for command, what in (
            (f"ggzy bid obtain --tender {live.tid} --out docs/", "obtain the documents first"),
            (
                f"ggzy bid seal --tender {live.tid} --price-fen 12000000000 --duration-days 720 --key {key} "
                "--out bid.age docs/*",
                "seal locally",
            ),
            (
                f"ggzy bid submit --tender {live.tid} --receipt receipt.json bid.age",
                "submit; keep the receipt",
            ),
        ):
            console.print(f"    {command}   {what}", soft_wrap=True)
