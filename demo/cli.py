"""`ggzy` sub-commands that drive a platform from outside, as a client: the rehearsal clock of a rehearsal
deployment (`ggzy rehearsal`) and the demo (`ggzy demo`, built by the composition root with the server parts
it needs)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from bidding.cli import username_opt
from storage.cli import server_url
from storage.settings import Settings

# ---------------------------------------------------------------- ggzy rehearsal show | set

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_advance(text: str) -> int:
    """Seconds from `3600`, `90m`, `36h` or `21d`."""
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:], 0)
    digits = value[:-1] if unit else value
    if not digits.isdigit():
        raise click.BadParameter("a whole number of seconds, or with d, h, m or s (e.g. 21d, 36h, 90m)")
    return int(digits) * (unit or 1)


def _clock_line(clock: dict[str, Any]) -> str:
    from rules.calendar import SHANGHAI

    now = datetime.fromisoformat(clock["now"]).astimezone(SHANGHAI)
    if not clock["rehearsal"]:
        return f"real time: {now:%Y-%m-%d %H:%M:%S} Shanghai (not a rehearsal)"
    ahead = timedelta(seconds=round(float(clock["offset_seconds"])))
    return (
        f"rehearsal time: {now:%Y-%m-%d %H:%M:%S} Shanghai, {ahead} ahead of real time, "
        f"running ×{float(clock['rate']):g}"
    )


@click.group("rehearsal")
def rehearsal_group() -> None:
    """A rehearsal deployment's clock (演练, GGZY_REHEARSAL): the centre moves it forward or speeds it up."""


@rehearsal_group.command("show")
@server_url
@click.option("--json", "as_json", is_flag=True, help="the server's answer as JSON")
def rehearsal_show(url: str, as_json: bool) -> None:
    """The platform's time now, and whether it is a rehearsal's."""
    from bidding.client import ClientError, GgzyClient

    async def go() -> dict[str, Any]:
        async with GgzyClient(url, None) as client:
            answer: dict[str, Any] = await client.request("GET", "/api/v1/clock")
            return answer

    try:
        clock = asyncio.run(go())
    except ClientError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(clock) if as_json else _clock_line(clock))


@rehearsal_group.command("set")
@click.option("--at", "at", default=None, help="move rehearsal time to this instant (ISO 8601 with its zone)")
@click.option("--advance", default=None, help="move rehearsal time ahead by 21d, 36h, 90m or seconds")
@click.option("--rate", type=float, default=None, help="how many times as fast as real time (0 stands still)")
@server_url
@username_opt
def rehearsal_set(
    at: str | None, advance: str | None, rate: float | None, url: str, username: str | None
) -> None:
    """Move the rehearsal clock forward and/or set its rate, as the centre (never back)."""
    import os

    from bidding.client import ClientError, GgzyClient

    body: dict[str, Any] = {}
    if at is not None:
        body["at"] = at
    if advance is not None:
        body["advance_seconds"] = parse_advance(advance)
    if rate is not None:
        body["rate"] = rate
    if not body:
        raise click.UsageError("say what to change: --at, --advance and/or --rate")

    async def go() -> dict[str, Any]:
        async with GgzyClient(url, os.environ.get("GGZY_TOKEN")) as client:
            if username:
                password = os.environ.get("GGZY_PASSWORD") or click.prompt("password", hide_input=True)
                await client.login(username, password)
            elif not client.token:
                raise click.UsageError(
                    "sign in: pass --username (password from GGZY_PASSWORD) or set GGZY_TOKEN"
                )
            answer: dict[str, Any] = await client.request("PUT", "/api/v1/rehearsal/clock", json=body)
            return answer

    try:
        click.echo(_clock_line(asyncio.run(go())))
    except ClientError as exc:
        raise click.ClickException(str(exc)) from exc


# ---------------------------------------------------------------- ggzy demo


def demo_command(build_runtime: Callable[..., Any], create_app: Callable[..., Any]) -> click.Command:
    """The `ggzy demo` command on the composition root's `build_runtime` and `create_app`, with which the
    demo builds its private server and the seed its in-process one (nothing below app.py imports it)."""

    @click.command("demo")
    @click.option(
        "--seed-only",
        is_flag=True,
        help="Only seed the configured database (GGZY_*) with the demo users and their keys, a past trade and "
        "an open tender.",
    )
    @click.option(
        "--keep",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Run in this folder (created; it must be empty) instead of a temporary one, and keep it: the "
        "database, the objects and the draw records the demo tells you to verify (with --url, the draw "
        "records).",
    )
    @click.option(
        "--url",
        default=None,
        help="Drive the running rehearsal server (GGZY_REHEARSAL=1) at this URL instead of a private one, as "
        "its centre (--username); GGZY_BANK_NOTIFY_SECRET must be the server's. Unlike the client commands "
        "the demo does not read GGZY_URL: without --url it runs its own server.",
    )
    @click.option(
        "--sector",
        type=click.Choice(["works", "procurement"]),
        default="works",
        show_default=True,
        help="What the demo runs: an open works tender, or a government procurement by open tendering (G rules) "
        "on its own private server.",
    )
    @username_opt
    @click.pass_context
    def demo(
        ctx: click.Context,
        seed_only: bool,
        keep: Path | None,
        url: str | None,
        sector: str,
        username: str | None,
    ) -> None:
        """A complete open works tender (or, with --sector procurement, a government procurement) through the
        real HTTP API, step by step (exit 1 on the first surprise)."""
        import logging
        import sys

        from rich.console import Console

        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the steps
        # The steps narrate what the chronograph and the decryption jobs did; their INFO lines would repeat it.
        logging.getLogger("ggzy.chronograph").setLevel(logging.WARNING)
        # Piped output (make, CI logs) gets a wide page instead of rich's 80 columns, so tables stay whole.
        console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
        if keep is not None and seed_only:
            raise click.UsageError("--keep is for the full demo; --seed-only uses the configured database")
        if url is not None and seed_only:
            raise click.UsageError("--seed-only seeds the configured database; --url drives a running server")
        if url is None and ctx.get_parameter_source("username") is click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("--username signs in to the server given with --url")
        if sector != "works" and (seed_only or url is not None):
            raise click.UsageError(
                "--sector procurement runs on the demo's own private server (no --url, --seed-only)"
            )
        if keep is not None and keep.exists() and any(keep.iterdir()):
            raise click.UsageError(f"{keep} is not empty; give --keep a new or empty folder")
        if url is not None:
            ok = _remote_demo(console, url, username, keep)
        elif seed_only:
            from demo.private import ServerParts
            from demo.seeding import seed

            ok = asyncio.run(seed(console, Settings.from_env(), ServerParts(build_runtime, create_app)))
        else:
            from demo.private import ServerParts, run_demo

            ok = asyncio.run(run_demo(console, ServerParts(build_runtime, create_app), keep, sector))
        raise SystemExit(0 if ok else 1)

    return demo


def _remote_demo(console: Any, url: str, username: str | None, keep: Path | None) -> bool:
    """`ggzy demo --url`: the centre's credentials and the bank's key checked, then the demo on the server."""
    import os

    from demo.common import StepFailed
    from demo.remote import CentreLogin, NotRehearsal, run_remote_demo

    token = os.environ.get("GGZY_TOKEN")
    if username:
        password = os.environ.get("GGZY_PASSWORD") or click.prompt("password", hide_input=True)
        login = CentreLogin(username=username, password=password)
    elif token:
        login = CentreLogin(token=token)
    else:
        raise click.UsageError(
            "sign in as the server's centre: pass --username (password from GGZY_PASSWORD) or set GGZY_TOKEN"
        )
    secret = os.environ.get("GGZY_BANK_NOTIFY_SECRET", "")
    if not secret:
        raise click.UsageError(
            "the demo signs the bank's arrival notice as the bank would: set GGZY_BANK_NOTIFY_SECRET to the "
            "rehearsal server's"
        )
    try:
        return asyncio.run(run_remote_demo(console, url, login, bank_notify_secret=secret, keep=keep))
    except NotRehearsal as exc:
        raise click.ClickException(str(exc)) from exc
    except StepFailed as exc:  # before the steps: the centre could not sign in or stop the clock
        raise click.ClickException(f"{url}: {exc}") from exc
