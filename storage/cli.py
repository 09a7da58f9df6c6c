"""`ggzy db …`: the database schema."""

from __future__ import annotations

import logging

import click


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
