"""`ggzy demo --url`: the demo's trade driven through a running rehearsal server (演练, GGZY_REHEARSAL).

The steps are the private demo's (`demo/works.py`), through the server's HTTP API and nothing else: the
demo never opens the server's database. What a private server lets the demo do by hand, a rehearsal server
does itself, and the demo waits for it:

- time: the centre's rehearsal clock (`PUT /api/v1/rehearsal/clock`). The demo stops it (rate 0) for the
  run, so every step sees the instant it set, moves it only forward, and gives the clock its rate back at
  the end;
- the chronograph and the jobs: the server's own. After moving time the demo polls the state it expects
  (the tender opened, the envelope read out …), for at most WAIT_SECONDS, and names what it waited for
  when the server does not get there.

The centre is the server's own, signed in with the credentials given; every other organisation, user and
expert is the run's (`Cast`: usernames prefixed `r<run>-`, credit codes numbered for the run), so the demo
runs again and again against the same server. A server that does not mark its answers
`X-GGZY-Rehearsal: 1` is refused before anything is sent to it: the demo moves time by weeks.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from demo.common import (
    CENTRE,
    HTTP_TIMEOUT_SECONDS,
    PARTIES,
    WORKS,
    Actor,
    Cast,
    Narrator,
    Party,
    Platform,
    StepFailed,
    Trade,
    check,
    kept_files,
    shanghai_text,
)
from demo.works import DEMO_STEPS
from rules.calendar import default_calendar, local_date
from rules.profiles import WORKS_OPEN, ProcedureProfile
from storage.clock import ensure_utc

REHEARSAL_HEADER = "X-GGZY-Rehearsal"
WAIT_SECONDS = 120.0  # how long a step waits for the server's chronograph or worker
POLL_SECONDS = 0.2
TOKEN_MARGIN = timedelta(minutes=1)


class NotRehearsal(Exception):
    """The server does not run a rehearsal: the demo would move a real deployment's time."""


@dataclass(frozen=True)
class CentreLogin:
    """How the demo signs in as the rehearsal server's centre: a username and password, or a token."""

    username: str | None = None
    password: str | None = None
    token: str | None = None


class ServerClock:
    """The rehearsal server's time as the steps move it: set or advanced here at once, carried to the server
    by the driver before the next request. It only moves forward, as the rehearsal clock does."""

    def __init__(self, now: datetime) -> None:
        self._now = ensure_utc(now)

    def now(self) -> datetime:
        """The instant the steps moved to (the server's, once the next request has carried it there)."""
        return self._now

    def set(self, instant: datetime) -> None:
        """Move to `instant`, which may not lie before the present one."""
        instant = ensure_utc(instant)
        check(
            instant >= self._now,
            f"rehearsal time moved forward from {shanghai_text(self._now)}",
            f"a move back to {shanghai_text(instant)} (rehearsal time never goes back)",
        )
        self._now = instant

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by `delta`; the new instant."""
        self.set(self._now + delta)
        return self._now


class RehearsalDriver:
    """A running rehearsal server: time moved through its clock API, its chronograph and worker waited for."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        login: CentreLogin,
        *,
        files: Path,
        kept: bool,
        bank_notify_secret: str,
    ) -> None:
        self.client = client
        self.login = login
        self.files = files
        self.kept = kept
        self.bank_notify_secret = bank_notify_secret
        self.clock = ServerClock(datetime.fromtimestamp(0).astimezone())
        self.server_now: datetime | None = None  # the instant the server's stopped clock stands at
        self.rate_before = 1.0
        self._token = login.token or ""
        self._expires: datetime | None = None
        self._pushing = False

    # ---------------------------------------------------------------- the centre and its clock

    async def _centre_token(self) -> str:
        """A centre token valid at the server's present instant (signed in again when it ran out)."""
        if self.login.username is None:
            return self._token
        now = self.server_now
        if self._expires is None or (now is not None and now >= self._expires - TOKEN_MARGIN):
            r = await self.client.post(
                "/api/v1/auth/login", json={"username": self.login.username, "password": self.login.password}
            )
            check(
                r.status_code == 200,
                f"the centre's user {self.login.username!r} signed in",
                f"{r.status_code} {r.text[:400]}",
            )
            self._token = str(r.json()["access_token"])
            self._expires = datetime.fromisoformat(r.json()["expires_at"])
        return self._token

    async def _set_clock(self, body: dict[str, Any], what: str) -> dict[str, Any]:
        r = await self.client.put(
            "/api/v1/rehearsal/clock",
            json=body,
            headers={"Authorization": f"Bearer {await self._centre_token()}"},
        )
        check(
            r.status_code == 200,
            f"PUT /api/v1/rehearsal/clock → 200 ({what})",
            f"{r.status_code} {r.text[:400]}",
        )
        answer: dict[str, Any] = r.json()
        self.server_now = datetime.fromisoformat(answer["now"])
        return answer

    async def stop_clock(self) -> datetime:
        """Stop rehearsal time where it is (rate 0) for the run; the instant it stands at."""
        current = await self.client.get("/api/v1/clock")
        self.rate_before = float(current.json()["rate"])
        await self._set_clock({"rate": 0}, "rehearsal time stopped for the demo")
        assert self.server_now is not None
        self.clock = ServerClock(self.server_now)
        return self.server_now

    async def restore_rate(self) -> None:
        """Give rehearsal time the rate it had before the run (from the instant the run left it at)."""
        await self._set_clock(
            {"rate": self.rate_before}, f"rehearsal time running ×{self.rate_before:g} again"
        )

    async def sync(self, platform: Platform) -> None:
        """Carry the instant the steps moved to onto the server's clock."""
        target = self.clock.now()
        if self._pushing or target == self.server_now:
            return
        self._pushing = True
        try:
            await self._set_clock(
                {"at": target.isoformat()}, f"rehearsal time moved to {shanghai_text(target)}"
            )
            check(
                self.server_now == target,
                f"the server's clock at {shanghai_text(target)}",
                self.server_now.isoformat() if self.server_now else None,
            )
        finally:
            self._pushing = False

    # ---------------------------------------------------------------- what the steps ask of a driver

    async def centre(self, platform: Platform) -> Actor:
        """The server's own centre, signed in with the credentials given."""
        actor = Actor(
            Party(self.login.username or "", "centre", "", ""),
            name=CENTRE.username,
            token=self._token,
            password=self.login.password if self.login.username else None,
        )
        me = await platform.call("GET", "/api/v1/auth/me", actor)
        check("centre" in me["roles"], "a user of the trading centre (role centre)", me["roles"])
        organisation = me["organisation"]
        actor.party = Party(
            str(me["username"]), "centre", str(organisation["name"]), str(organisation["credit_code"])
        )
        actor.organisation_id = str(organisation["id"])
        return actor

    async def earliest_deadline_day(
        self, documents_from: datetime, profile: ProcedureProfile = WORKS_OPEN
    ) -> date:
        """By the official holidays the platform ships (the `holidays` package); the server's answer to an
        early deadline (rule W-01) shows whether the centre loaded a schedule that differs."""
        return default_calendar().earliest_after(
            local_date(documents_from), profile.documents_to_deadline_days
        )

    async def tick(self) -> list[tuple[str, str]] | None:
        """Nothing: the server's own chronograph runs on the moved clock (the steps wait with `settle`)."""
        return None

    async def run_jobs(self) -> None:
        """Nothing: the server's own worker runs the jobs."""

    async def settle(self, done: Callable[[], Awaitable[bool]], what: str) -> None:
        """Poll `done()` until it holds, for at most WAIT_SECONDS."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + WAIT_SECONDS
        while not await done():
            if loop.time() > give_up:
                raise StepFailed(
                    what,
                    f"not within {WAIT_SECONDS:g} s: the server's chronograph or job worker did not get there "
                    "(a server started with GGZY_REHEARSAL=1 runs both in-process; beside GGZY_REDIS_URL, "
                    "`ggzy worker` must run too)",
                )
            await asyncio.sleep(POLL_SECONDS)


async def check_rehearsal(client: httpx.AsyncClient) -> None:
    """Refuse a server whose answers are not marked `X-GGZY-Rehearsal: 1`."""
    r = await client.get("/api/v1/clock")
    if r.headers.get(REHEARSAL_HEADER) != "1":
        raise NotRehearsal(
            f"{client.base_url} is not a rehearsal server (its answers carry no {REHEARSAL_HEADER}: 1) and the "
            "demo moves time by weeks; start one with GGZY_REHEARSAL=1, or run `ggzy demo` without --url"
        )


async def run_remote_demo(
    console: Console,
    url: str,
    login: CentreLogin,
    *,
    bank_notify_secret: str,
    keep: Path | None = None,
) -> bool:
    """The whole demo against the rehearsal server at `url`; True when every step did what it should."""
    cast = Cast(run=secrets.randbelow(99_999) + 1)
    with contextlib.ExitStack() as stack:
        if keep is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ggzy-demo-")))
        else:
            await asyncio.to_thread(keep.mkdir, parents=True, exist_ok=True)
            folder = keep
        async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT_SECONDS) as client:
            await check_rehearsal(client)
            driver = RehearsalDriver(
                client, login, files=folder, kept=keep is not None, bank_notify_secret=bank_notify_secret
            )
            started = await driver.stop_clock()
            console.print(
                f"[bold]ggzy demo[/]: an open works tender through the rehearsal server at {url}, run {cast.run} "
                f"(users {cast.prefix}…); rehearsal time stopped at {shanghai_text(started)} Shanghai and moved "
                "only by the demo until it ends"
            )
            trade = Trade(Platform(client, driver), cast.plan(WORKS), PARTIES, cast=cast)
            try:
                ok = await Narrator(console).run(DEMO_STEPS, trade)
            finally:
                await driver.restore_rate()
            console.print(
                f"rehearsal time left at {shanghai_text(driver.clock.now())} Shanghai, running "
                f"×{driver.rate_before:g} again"
            )
            console.print(
                "[green]demo complete: every step did what it should[/]" if ok else "[red]demo failed[/]"
            )
            if ok:
                key = await client.get("/api/v1/transparency/key")
                kept_files(console, trade, str(key.json()["public_key"]))
    return ok
