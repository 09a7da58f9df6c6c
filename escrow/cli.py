"""`ggzy verify ledger`: check every invariant of the deposit ledger against the configured database."""

from __future__ import annotations

import asyncio
import sys

import click

from storage.db import create_engine, create_sessionmaker, transaction
from storage.settings import Settings


@click.command("ledger")
def verify_ledger() -> None:
    """Check the deposit ledger: entries balance, balances equal the postings, the hash chain is intact,
    the sequence has no gaps, no account is overdrawn. Prints each check; exit 1 if any fails."""
    from escrow import journal, ledger

    async def run() -> list[ledger.Check]:
        engine = create_engine(Settings.from_env().effective_database_url)
        try:
            async with transaction(create_sessionmaker(engine), read_only=True) as session:
                return list(await journal.verify(session))
        finally:
            await engine.dispose()

    checks = asyncio.run(run())
    failed = False
    for check in checks:
        failed |= not check.ok
        mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark} {check.name}: {check.detail}")
    if failed:
        sys.exit(1)


def register(cli: click.Group) -> None:
    """Attach `ggzy verify ledger` (the `verify` group is shared with `verify receipt`)."""
    group = cli.commands.get("verify")
    assert isinstance(group, click.Group), "register the bidding commands first"
    group.add_command(verify_ledger)
