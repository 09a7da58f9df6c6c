"""The `ggzy` command: a table of sub-commands, each imported only when it runs.

`ggzy --help` and `ggzy --version` import no package at all, and `ggzy bid seal` loads the sealing client
and nothing of the server: a command costs what it uses. Each entry names where its command lives and
carries the one line `--help` lists, so listing needs no import (tests/test_cli.py keeps the two equal).

A user's mistake or an unreachable server ends in one line on stderr and exit status 1, never a
traceback; `GGZY_DEBUG=1` shows the traceback of an error the command did not expect.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

# httpx imports its own command line (and with it rich and pygments) when they are installed; ggzy never
# runs it, and a None entry makes that import fail the way httpx expects when they are absent.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


class LazyGroup(click.Group):
    """A group whose sub-commands are `module:attribute` paths, imported when one is asked for."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in self.lazy:
            return None
        module_name, attribute = self.lazy[cmd_name][0].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy[cmd_name][0]} is not a click command")
        self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The listing from the table, so `--help` imports nothing."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(name) for name in names), default=0)
        rows = [
            (
                name,
                (
                    self.commands.get(name) or click.Command(name, short_help=self.lazy[name][1])
                ).get_short_help_str(limit),
            )
            for name in names
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def describe(exc: BaseException) -> str | None:
    """One line for an error a user can act on, or None for one nobody expected.

    Modules are looked up in `sys.modules` rather than imported: an error of a library can only come from a
    command that already imported it.
    """
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(exc, httpx.TransportError):
        url = _request_url(exc)
        where = f" at {url}" if url else ""
        return (
            f"cannot reach the ggzy server{where} ({exc or type(exc).__name__}); is it running? "
            "Point --url or GGZY_URL at it."
        )
    if httpx is not None and isinstance(exc, httpx.HTTPError):
        return f"the server's answer could not be read: {exc}"
    problems = sys.modules.get("storage.problems")
    if problems is not None and isinstance(exc, problems.Problem):
        reasons = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in exc.errors or [])
        rule = f" [{exc.rule}]" if exc.rule else ""
        return f"{exc.detail}{rule}" + (f" ({reasons})" if reasons else "")
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.OperationalError | OSError):
        text = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        if "no such table" in text or "does not exist" in text:
            return f"the database has no ggzy schema yet ({text}); run `ggzy db upgrade` first"
        if isinstance(exc, sqlalchemy_exc.OperationalError):
            return f"cannot use the database (GGZY_DATABASE_URL): {text}"
    if isinstance(exc, ConnectionError):
        return f"cannot connect: {exc}"
    if isinstance(exc, FileExistsError):
        return f"{exc.filename} already exists; nothing was overwritten"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, OSError):
        return str(exc)
    return None


def _request_url(exc: BaseException) -> str | None:
    try:
        request = exc.request  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when no request is attached
        return None
    return f"{request.url.scheme}://{request.url.netloc.decode()}"


class Root(LazyGroup):
    """The `ggzy` group: its sub-commands lazy, every error a user can act on one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get("GGZY_DEBUG"):
                raise
            message = describe(exc)
            if message is None:
                message = (
                    f"unexpected {type(exc).__name__}: {exc} (GGZY_DEBUG=1 shows where; please report it)"
                )
            raise click.ClickException(message) from exc


VERIFY: dict[str, tuple[str, str]] = {
    "archive": (
        "archive.cli:verify_archive",
        "Verify a trade archive bundle offline: its signature and that its hashes agree (G-09).",
    ),
    "audit": (
        "accounts.cli:verify_audit",
        "Re-check the audit trail (E-04) and its signed heads in the configured database.",
    ),
    "draw": ("evaluation.cli:verify_draw", "Replay a committee draw from its published record, offline."),
    "ledger": (
        "escrow.cli:verify_ledger",
        "Check every invariant of the deposit ledger and the deposits in the configured database.",
    ),
    "opening": (
        "bidding.cli:verify_opening",
        "Verify a published opening record offline, under a pinned platform key.",
    ),
    "receipt": ("bidding.cli:verify_receipt", "Verify a bid receipt offline, under a pinned platform key."),
}

BENCH: dict[str, tuple[str, str]] = {
    "audit": (
        "accounts.bench:audit_command",
        "What chaining the audit trail costs its writers, and what checking it costs.",
    ),
    "draw": (
        "evaluation.bench:draw_command",
        "A committee draw from a large expert pool, and a committee's scores, each next to plain SQL.",
    ),
    "chronograph": (
        "bidding.bench_chronograph:chronograph_command",
        "Close a cluster of tenders that reach their deadline in the same minute; one JSON line per backend.",
    ),
    "ledger": (
        "escrow.bench:ledger_command",
        "The deposit ledger: posting and verifying, each next to a plain SQL baseline.",
    ),
    "notices": (
        "trading.bench:notices",
        "The public notice board: list, page 5 by cursor, search, filter — driven by wrk next to /health.",
    ),
    "opening": (
        "bidding.bench:opening_command",
        "Open many stored bids at once through the platform's path, next to the raw AEAD on as many threads.",
    ),
    "seal": (
        "bidding.bench:seal_command",
        "Seal and open throughput, file to file, interleaved with age, openssl and the raw AEAD.",
    ),
    "surge": (
        "bidding.bench_surge:surge_command",
        "Bidders finalise large envelopes at once, just before the deadline.",
    ),
}

COMMANDS: dict[str, tuple[str, str]] = {
    "accounts": ("accounts.cli:accounts_group", "Organisations and users."),
    "audit": ("accounts.cli:audit_group", "The audit trail's signed heads."),
    "bid": (
        "bidding.cli:bid_group",
        "Seal, submit and open bids (the private key never leaves this machine).",
    ),
    "calendar": (
        "trading.cli:calendar_group",
        "The working-day calendar: official holidays and make-up working days (调休).",
    ),
    "custodian": (
        "bidding.cli:custodian_group",
        "Opening custodians: keys, and releasing shares after the deadline (E-03).",
    ),
    "db": ("storage.cli:db", "Database schema."),
    "demo": (
        "app:demo",
        "A complete open works tender (or, with --sector procurement, a government procurement) through the "
        "real HTTP API, step by step (exit 1 on the first surprise).",
    ),
    "draw": (
        "evaluation.cli:draw_group",
        "The witness's side of a committee draw (a supervisor or a notary).",
    ),
    "escrow": ("escrow.cli:escrow_group", "The centre's side of the deposit bank account."),
    "framework": (
        "trading.framework_cli:framework_group",
        "Framework agreements (框架协议, G-01): admissions at capped prices, orders, mini-competitions.",
    ),
    "jobs": (
        "accounts.cli:jobs_group",
        "Background jobs: the dead-letter list (jobs that kept failing for the whole retry horizon).",
    ),
    "project": (
        "trading.centre_cli:project_group",
        "Projects registered with the centre and its acceptance (项目受理).",
    ),
    "rehearsal": (
        "demo.cli:rehearsal_group",
        "A rehearsal deployment's clock (演练, GGZY_REHEARSAL): the centre moves it forward or speeds it up.",
    ),
    "room": (
        "evaluation.cli:room_group",
        "A tender's evaluation room (its lot's, --lot, where each lot has its own room) and its report.",
    ),
    "review": ("trading.centre_cli:review_group", "The centre's review of tender notices (公告审核)."),
    "serve": (
        "app:serve",
        "Run the HTTP server (with jobs and the chronograph in-process unless GGZY_REDIS_URL is set).",
    ),
    "storage": (
        "app:storage_group",
        "The object store.",
    ),
    "venue": (
        "trading.centre_cli:venue_group",
        "The centre's rooms: its calendar, and evaluation rooms booked by the agency (场地预约).",
    ),
    "worker": (
        "app:worker",
        "Run the arq worker on GGZY_REDIS_URL: jobs from the outbox and the chronograph as a cron.",
    ),
}


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # One line per HTTP request made by the client commands would drown their output (and name URLs).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Each migration's INFO lines would drown what `db upgrade` and `demo` say (`db upgrade --verbose`).
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from storage.redact import RedactGrants

    for name in ("uvicorn.access", "httpx", "ggzy"):
        logging.getLogger(name).addFilter(RedactGrants())


@click.group(cls=Root, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ggzy", prog_name="ggzy", message="%(prog)s %(version)s")
def cli() -> None:
    """ggzy: the public-resource trading platform.

    Every command answers --help. Client commands (bid, custodian, draw, project, review, venue, framework, accounts password) talk to a
    server at --url or GGZY_URL; the others use the configured database (GGZY_DATABASE_URL, else
    var/ggzy.db) and object store.
    """
    _configure_logging()


cli.add_command(LazyGroup("verify", lazy=VERIFY, help="Check platform records offline."))
cli.add_command(
    LazyGroup(
        "bench",
        lazy=BENCH,
        help="Benchmarks: one JSON line per result on stdout; they never pass or fail on time.",
    )
)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point `ggzy`."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="ggzy")


if __name__ == "__main__":
    main()
