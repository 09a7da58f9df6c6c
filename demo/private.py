"""The demo's private platform: the app served by uvicorn on a free loopback port inside this process, on a
throw-away SQLite database and local object store, with a `SettableClock` the steps move and the chronograph
and the jobs run here when the steps ask (`PrivateDriver`). The seed (`demo/seeding.py`) drives the same
driver over an in-process ASGI transport inside one database transaction.

The composition root (`app.py`) builds the runtime and the app and hands them in (`ServerParts`): nothing
below it imports it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import socket
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from rich.console import Console

from accounts import service as accounts
from demo.common import (
    CENTRE,
    DEMO_START,
    HTTP_TIMEOUT_SECONDS,
    JOB_WAIT_SECONDS,
    PARTIES,
    PASSWORD,
    WORKS,
    Actor,
    Narrator,
    Platform,
    StepFailed,
    Trade,
    check,
    kept_files,
    loopback_socket,
    serving,
    shanghai_text,
)
from demo.procurement import PROCUREMENT, PROCUREMENT_PARTIES, PROCUREMENT_STEPS
from demo.works import DEMO_STEPS
from rules.profiles import WORKS_OPEN, ProcedureProfile
from rules.schedule import working_calendar
from storage.clock import SettableClock
from storage.db import transaction
from storage.jobs import InlineJobQueue, JobContext, JobQueue, OutboxDispatcher
from storage.migrate import upgrade_async
from storage.settings import Settings, argon2_from_env
from trading import jobs as trading_jobs
from trading import tenders

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from accounts.signin import SignInThrottle
    from storage.objects import ObjectStore
    from storage.signing import LogSigner


_WHAT = {"works": "an open works tender", "procurement": "a government procurement by open tendering"}


class PrivateRuntime(Protocol):
    """What the demo uses of the runtime the composition root builds for its private server."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    store: ObjectStore
    queue: JobQueue
    dispatcher: OutboxDispatcher
    signer: LogSigner
    throttle: SignInThrottle
    run_chronograph: bool

    @property
    def job_context(self) -> JobContext: ...


@dataclass(frozen=True)
class ServerParts:
    """How the composition root (`app.py`) builds a server: the demo's private one and the seed's in-process
    one. `build_runtime(settings, clock=…, …)` wires a runtime; `create_app(runtime, manage_runtime=…)`
    is the HTTP application on it."""

    build_runtime: Callable[..., PrivateRuntime]
    create_app: Callable[..., Any]


class PrivateDriver:
    """The demo's own platform in this process: a `SettableClock` the steps move, and the chronograph and
    the jobs run here, when the steps ask, on that clock."""

    def __init__(
        self, runtime: PrivateRuntime, clock: SettableClock, *, files: Path, kept: bool = False
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        self.files = files
        self.kept = kept
        self.bank_notify_secret = runtime.settings.bank_notify_secret

    async def centre(self, platform: Platform) -> Actor:
        """The centre and its administrator, created once from the command line's side (no API)."""
        async with transaction(self.runtime.sessionmaker) as session:
            org, _user, created = await accounts.bootstrap_centre(
                session,
                name=CENTRE.name,
                credit_code=CENTRE.credit_code,
                username=CENTRE.username,
                password=PASSWORD,
                now=self.clock.now(),
            )
            org_id = str(org.id)
        check(created, "a new centre", "a centre that already existed")
        return await platform.login(CENTRE, org_id)

    async def earliest_deadline_day(
        self, documents_from: datetime, profile: ProcedureProfile = WORKS_OPEN
    ) -> date:
        """By the calendar the server itself uses (the official schedules the centre loaded)."""
        async with self.runtime.sessionmaker() as session:
            calendar = await working_calendar(session)
        return tenders.earliest_deadline_day(calendar, profile, documents_from)

    async def sync(self, platform: Platform) -> None:
        """Nothing to do: the server reads the same clock object."""

    async def run_jobs(self) -> None:
        """Dispatch what the outbox holds and, on the in-process queue, run it now."""
        await self.runtime.dispatcher.dispatch_once()
        if isinstance(self.runtime.queue, InlineJobQueue):
            await self.runtime.queue.drain()

    async def settle(self, done: Callable[[], Awaitable[bool]], what: str) -> None:
        """Run the due jobs until `done()` holds; a worker elsewhere (arq) gets up to JOB_WAIT_SECONDS."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + JOB_WAIT_SECONDS
        while True:
            await self.run_jobs()
            if await done():
                return
            if isinstance(self.runtime.queue, InlineJobQueue) or loop.time() > give_up:
                raise StepFailed(what, "still not done after the jobs ran (is `ggzy worker` running?)")
            await asyncio.sleep(0.25)

    async def tick(self) -> list[tuple[str, str]] | None:
        """Run the chronograph at the clock's time, then every job its transitions put in the outbox."""
        done = await trading_jobs.chronograph_tick(self.runtime.job_context)
        await self.run_jobs()
        return done


async def run_demo(
    console: Console, server: ServerParts, keep: Path | None = None, sector: str = "works"
) -> bool:
    """The whole demo of `sector` (an open works tender, or a government procurement by open tendering) on
    a throw-away database, store and port; True when every step did what it should. With `keep`, the
    database, the objects and the files the demo saves for an auditor stay in that folder."""
    with contextlib.ExitStack() as stack:
        sock = stack.enter_context(loopback_socket())
        if keep is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ggzy-demo-"))
        else:
            await asyncio.to_thread(keep.mkdir, parents=True, exist_ok=True)
            tmp = str(keep)
        return await _run_demo(console, server, Path(tmp), sock, kept=keep is not None, sector=sector)


async def _run_demo(
    console: Console, server: ServerParts, tmp: Path, sock: socket.socket, *, kept: bool, sector: str
) -> bool:
    port = sock.getsockname()[1]
    settings = Settings(
        var_dir=Path(tmp),
        database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'ggzy.db'}",
        host="127.0.0.1",
        port=port,
        secret_key=secrets.token_urlsafe(48),
        bank_notify_secret=secrets.token_urlsafe(32),
        **argon2_from_env(),
    )
    await upgrade_async(settings.effective_database_url)
    clock = SettableClock(DEMO_START)
    runtime = server.build_runtime(settings, clock=clock)
    runtime.run_chronograph = False  # the demo moves the clock and runs the chronograph itself
    console.print(
        f"[bold]ggzy demo[/]: {_WHAT[sector]} through the HTTP API at {settings.effective_public_url} "
        f"(SQLite and objects in {tmp}; simulated clock from {shanghai_text(DEMO_START)} Shanghai)"
    )
    async with (
        serving(server.create_app(runtime), sock),
        httpx.AsyncClient(base_url=settings.effective_public_url, timeout=HTTP_TIMEOUT_SECONDS) as client,
    ):
        driver = PrivateDriver(runtime, clock, files=Path(tmp), kept=kept)
        platform = Platform(client, driver)
        if sector == "procurement":
            trade = Trade(platform, PROCUREMENT, PROCUREMENT_PARTIES)
            ok = await Narrator(console).run(PROCUREMENT_STEPS, trade)
        else:
            trade = Trade(platform, WORKS, PARTIES)
            ok = await Narrator(console).run(DEMO_STEPS, trade)
    console.print("[green]demo complete: every step did what it should[/]" if ok else "[red]demo failed[/]")
    if ok and sector == "works":
        kept_files(console, trade, base64.b64encode(runtime.signer.public_raw).decode())
    return ok
