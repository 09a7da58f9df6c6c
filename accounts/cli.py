"""`ggzy accounts …`: setting up the centre and its staff from the command line."""

from __future__ import annotations

import asyncio

import click

from accounts import service
from storage.clock import SystemClock
from storage.db import create_engine, create_sessionmaker, transaction
from storage.settings import Settings


@click.group("accounts")
def accounts_group() -> None:
    """Organisations and users."""


@accounts_group.command("bootstrap")
@click.option("--name", default="公共资源交易中心", show_default=True, help="The centre's name.")
@click.option("--credit-code", required=True, help="The centre's unified social credit code.")
@click.option("--username", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def bootstrap(name: str, credit_code: str, username: str, password: str) -> None:
    """Create the centre and its first administrator (once)."""

    async def run() -> bool:
        settings = Settings.from_env()
        engine = create_engine(settings.effective_database_url)
        try:
            async with transaction(create_sessionmaker(engine)) as session:
                _org, _user, created = await service.bootstrap_centre(
                    session,
                    name=name,
                    credit_code=credit_code,
                    username=username,
                    password=password,
                    now=SystemClock().now(),
                )
                return created
        finally:
            await engine.dispose()

    created = asyncio.run(run())
    click.echo("centre created" if created else "the centre already exists; nothing changed")
