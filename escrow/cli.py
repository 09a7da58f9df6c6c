"""`ggzy verify ledger` and the centre's bank-side commands, run against the configured database:
`ggzy escrow import` (a statement file), `ggzy escrow batch` (instruct the due refunds and write the
bank file), `ggzy escrow results` (the bank's results), `ggzy escrow flag-overdue` (S-01)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import create_engine, create_sessionmaker, transaction
from storage.settings import Settings

T = TypeVar("T")


def _run(work: Callable[[AsyncSession, Settings], Awaitable[T]], *, read_only: bool = False) -> T:
    async def run() -> T:
        settings = Settings.from_env()
        engine = create_engine(settings.effective_database_url)
        try:
            async with transaction(create_sessionmaker(engine), read_only=read_only) as session:
                return await work(session, settings)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _store(settings: Settings) -> Any:
    from app import build_store
    from storage.clock import SystemClock

    return build_store(settings, SystemClock())


def _now() -> Any:
    from storage.clock import SystemClock

    return SystemClock().now()


@click.command("ledger")
def verify_ledger() -> None:
    """Check the deposit ledger and the deposits: entries balance, balances equal the postings, the hash
    chain is intact, no account overdrawn; every deposit refunded, forfeited or held for a reason; refunds
    within deposit plus interest and to the paying account; bank lines taken in once; interest recomputes;
    overdue refunds flagged. Prints each check; exit 1 if any fails."""
    import trading.service as trading
    from escrow import audit

    async def work(session: AsyncSession, _settings: Settings) -> list[Any]:
        return await audit.verify(session, await trading.working_calendar(session), _now())

    failed = False
    for check in _run(work, read_only=True):
        failed |= not check.ok
        mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark} {check.name}: {check.detail}")
    if failed:
        sys.exit(1)


@click.group("escrow")
def escrow_group() -> None:
    """The centre's side of the deposit bank account."""


@escrow_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["camt053", "csv"]), default="camt053", show_default=True)
def import_command(path: Path, fmt: str) -> None:
    """Import a bank statement file; importing it again changes nothing."""
    from escrow import service

    data = path.read_bytes()

    async def work(session: AsyncSession, settings: Settings) -> Any:
        return await service.import_statement(session, _store(settings), None, data, fmt, _now())

    result = _run(work)
    click.echo(
        json.dumps({"statement_id": str(result.statement_id), "replay": result.replay, **result.summary()})
    )


@escrow_group.command("batch")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True)
def batch_command(out: Path) -> None:
    """Instruct the bank to pay every refund that is due, and write the batch's pain.001 XML and CSV."""
    from escrow import service

    async def work(session: AsyncSession, settings: Settings) -> Any:
        made = await service.create_batch(session, None, _now())
        if made.batch is None:
            return None, made.skipped
        xml = await service.batch_file(session, made.batch.id, "xml", settings)
        csv = await service.batch_file(session, made.batch.id, "csv", settings)
        return (made.batch.number, made.batch.count, made.batch.total_fen, xml, csv), made.skipped

    done, skipped = _run(work)
    for line in skipped:
        click.echo(f"skipped {line}", err=True)
    if done is None:
        click.echo(json.dumps({"batch": None}))
        return
    number, count, total, xml, csv = done
    out.mkdir(parents=True, exist_ok=True)
    # written after the commit: a crash before this line loses no instruction, and the file can be
    # rendered again from the rows at any time (GET /api/v1/escrow/batches/{id}/file)
    (out / f"{number}.xml").write_bytes(xml)
    (out / f"{number}.csv").write_bytes(csv)
    click.echo(
        json.dumps(
            {"batch": number, "count": count, "total_fen": total, "files": [f"{number}.xml", f"{number}.csv"]}
        )
    )


@escrow_group.command("results")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["pain002", "csv"]), default="pain002", show_default=True)
def results_command(path: Path, fmt: str) -> None:
    """Import the bank's results of a refund batch; importing them again changes nothing."""
    from escrow import service

    data = path.read_bytes()

    async def work(session: AsyncSession, _settings: Settings) -> Any:
        return await service.import_results(session, None, data, fmt, _now())

    out = _run(work)
    click.echo(
        json.dumps(
            {
                "paid": out.paid,
                "failed": out.failed,
                "unchanged": out.unchanged,
                "pending": out.pending,
                "problems": out.problems,
            }
        )
    )


@escrow_group.command("flag-overdue")
def flag_command() -> None:
    """Flag every refund past its due day (S-01); the chronograph does this on every tick too."""
    import trading.service as trading
    from escrow import service

    async def work(session: AsyncSession, _settings: Settings) -> int:
        return await service.flag_overdue(session, await trading.working_calendar(session), _now())

    click.echo(json.dumps({"flagged": _run(work)}))


def register(cli: click.Group) -> None:
    """Attach `ggzy verify ledger` (the `verify` group is shared with `verify receipt`) and `ggzy escrow`."""
    group = cli.commands.get("verify")
    assert isinstance(group, click.Group), "register the bidding commands first"
    group.add_command(verify_ledger)
    cli.add_command(escrow_group)
