"""`ggzy db …`: the database schema; and the option every client command takes to name its server."""

from __future__ import annotations

import logging

import click

DEFAULT_URL = "http://127.0.0.1:8000"

server_url = click.option(
    "--url",
    envvar="GGZY_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The ggzy server to talk to (or set GGZY_URL).",
)
key_server_url = click.option(
    "--url",
    envvar="GGZY_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The ggzy server --fetch-key asks (or set GGZY_URL).",
)


@click.group("db")
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option(
    "--revision",
    default="head",
    show_default=True,
    help="The migration to stop at (a revision id such as 0012, or head for the newest).",
)
@click.option("--verbose", is_flag=True, help="Print each migration as it runs.")
def db_upgrade(revision: str, verbose: bool) -> None:
    """Apply migrations to the configured database (GGZY_DATABASE_URL, else var/ggzy.db) up to REVISION."""
    # before alembic is imported: it logs its plugins as it loads
    logging.getLogger("alembic").setLevel(logging.INFO if verbose else logging.WARNING)
    from storage.migrate import upgrade
    from storage.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url, revision)
    click.echo(f"database at {settings.effective_database_url.split('@')[-1]} is at {revision}")
