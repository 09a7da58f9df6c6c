"""What every demo module shares: the published password and the demo's clock, the parties who take part and
the tender plans, the platform as its users reach it (`Platform`, `Driver`, `Actor`), the state one trade
carries from step to step (`Trade`), the display helpers, the `Narrator` that runs steps, and the loopback
server that serves an app to them.

The stages (`demo/bids.py`, `demo/opening.py`, `demo/deposits.py`, `demo/evaluation.py`) import this module
and not each other; `demo/works.py` puts their steps in order for a works tender, `demo/procurement.py` for a
government procurement.
"""

from __future__ import annotations

import asyncio
import base64
import io
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from accounts import service as accounts
from accounts.uscc import make_uscc
from bidding import agekeys, envelope
from rules.calendar import SHANGHAI
from rules.profiles import WORKS_OPEN, ProcedureProfile, deposit_cap

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


def make_party(username: str, kind: str, name: str, authority: str, serial: int) -> Party:
    # Positions 1-2: 12 public institution, 11 government body, 91 enterprise; 3-8: Nanjing (320100).
    return Party(username, kind, name, make_uscc(f"{authority}320100MA{serial:07d}"))


CENTRE = make_party("centre", "centre", "南京市公共资源交易中心", "12", 1)
AGENCY = make_party("agency", "agency", "江苏华诚招标代理有限公司", "91", 2)
BIDDERS = tuple(
    make_party(f"bidder{n}", "bidder", name, "91", 10 + n)
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
SUPERVISOR = make_party("supervisor", "supervisor", "南京市建设工程招标投标监督管理办公室", "11", 3)
AUDITOR = make_party("auditor", "auditor", "南京市审计局", "11", 4)
# A notary office supervises openings (公证监督); it takes part as a supervising organisation.
NOTARY = make_party("notary", "supervisor", "江苏省南京市石城公证处", "12", 5)
PARTIES = (AGENCY, *BIDDERS, SUPERVISOR, NOTARY, AUDITOR)
# The opening custodians, in share-position order: the platform holds one share only (DESIGN.md); t = 2
# counts the custodians besides the platform, so the stanzas need T = 3 shares: the platform's and both others'.
CUSTODIANS = (CENTRE, SUPERVISOR, NOTARY)
# Who releases when envelopes go to custody: every custodian, the platform (the centre's key) included.
RELEASING = CUSTODIANS


@dataclass(frozen=True)
class TenderPlan:
    """What the agency tenders: one lot, the bidders' prices (in bidder order), who misses the decryption
    window at the opening (and mistypes its deposit's sub-account), who withdraws and bids again, and which
    two bidders' bid letters were written by the same hand (a W-18 trace the platform finds at the opening);
    None where the plan has no such bidder. `profile` is the procedure (works or procurement)."""

    title: str
    tenderer: str
    tenderer_credit_code: str  # the committee draw avoids the tenderer's staff by it (G-08)
    qualification: str
    estimated_price_fen: int
    prices_fen: tuple[int, ...]
    rebid_price_fen: int
    absent_bidder: int = 3  # bidder4 misses the window; the custodians open its envelope (E-03)
    saboteur: int | None = 5  # bidder6 seals shares of a random secret and keeps its key: its fault, proven
    withdrawing_bidder: int = 4  # bidder5 withdraws (W-05) and bids again
    same_author: tuple[int, int] | None = (0, 2)  # bidder1 and bidder3, the two highest prices (陪标)
    profile: ProcedureProfile = WORKS_OPEN

    @property
    def deposit_fen(self) -> int:
        """The largest deposit the procedure allows (W-04 in works, G-03 in procurement)."""
        return deposit_cap(self.profile, self.estimated_price_fen)


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
    """What runs the platform the steps talk to: a private server in this process (`demo.private.PrivateDriver`) or a
    rehearsal server elsewhere (`demo.remote.RehearsalDriver`). The steps do everything through the
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

    async def earliest_deadline_day(
        self, documents_from: datetime, profile: ProcedureProfile = WORKS_OPEN
    ) -> date:
        """The first day bids may close on (W-01, G-02) for documents issued from `documents_from`."""
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
    project_id: str = ""  # the project the centre accepted (项目受理), that the tender carries out
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
    sequel: Trade | None = None  # a second trade the steps run beside this one, on the same platform
    others: dict[str, Trade] = field(default_factory=dict)  # more trades beside it, by the steps' names

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
        """The bidders among the trade's parties, in their order."""
        return [self.people[p.username] for p in self.parties if p.kind == "bidder"]

    @property
    def absent(self) -> Actor:
        return self.bidders[self.plan.absent_bidder]

    @property
    def saboteur(self) -> Actor:
        assert self.plan.saboteur is not None
        return self.bidders[self.plan.saboteur]

    def is_saboteur(self, bidder: Actor) -> bool:
        """Whether the plan has `bidder` sabotage its custody shares."""
        return self.plan.saboteur is not None and bidder is self.saboteur

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


async def enrol(t: Trade, part: Party, display_name: str | None = None) -> Actor:
    """The centre adds `part`'s organisation (approved at once) and its user, who then signs in; checked."""
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
            "display_name": display_name or party.name,
            "roles": party.roles,
        },
    )
    check(user["roles"] == party.roles, f"roles {party.roles}", user["roles"])
    return await t.p.login(party, str(org["id"]), name=part.username)


Outcome = str | tuple[str, Table]
StepFn = Callable[[Trade], Awaitable[Outcome]]


@dataclass(frozen=True)
class Step:
    title: str
    run: StepFn


def plain_table(*columns: str) -> Table:
    return Table(*columns, box=None, padding=(0, 2))


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
