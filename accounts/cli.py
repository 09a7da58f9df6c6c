"""`ggzy accounts …`: setting up the centre and its staff from the command line."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import click
import httpx

from accounts import service
from storage.clock import SystemClock
from storage.db import create_engine, create_sessionmaker, transaction
from storage.problems import Problem
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
        service.check_password(password, username=username, organisation_name=name, credit_code=credit_code)
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

    try:
        created = asyncio.run(run())
    except Problem as exc:
        raise click.ClickException(_problem_text(exc.to_dict())) from exc
    click.echo("centre created" if created else "the centre already exists; nothing changed")


def _problem_text(body: dict[str, Any]) -> str:
    reasons = "; ".join(f"{e['field']}: {e['message']}" for e in body.get("errors") or [])
    return f"{body.get('detail', body)}" + (f" ({reasons})" if reasons else "")


@accounts_group.command("password")
@click.option(
    "--url", envvar="GGZY_URL", default="http://127.0.0.1:8000", show_default=True, help="ggzy server"
)
@click.option("--username", envvar="GGZY_USERNAME", required=True, help="whose password")
def change_password(url: str, username: str) -> None:
    """Change your own password on the server (current from GGZY_PASSWORD or prompted; the new one is
    prompted twice). Every session signed in before stops working."""
    current = os.environ.get("GGZY_PASSWORD") or click.prompt("current password", hide_input=True)
    new = click.prompt("new password", hide_input=True, confirmation_prompt=True)

    async def run() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            await password_over_http(http, username, current, new)

    asyncio.run(run())
    click.echo("password changed; sign in again with the new one")


async def password_over_http(http: httpx.AsyncClient, username: str, current: str, new: str) -> None:
    """Sign in and change the password through the HTTP API; a refusal becomes the command's error (the
    policy's reasons, or when to try again)."""
    r = await http.post("/api/v1/auth/login", json={"username": username, "password": current})
    if r.status_code == 200:
        r = await http.post(
            "/api/v1/auth/password",
            json={"current_password": current, "new_password": new},
            headers={"Authorization": f"Bearer {r.json()['access_token']}"},
        )
        if r.status_code == 204:
            return
    try:
        body = r.json()
    except ValueError:
        body = {"detail": r.text}
    text = _problem_text(body)
    if r.status_code == 429:
        text += f" Try again in {r.headers.get('retry-after', '?')} seconds."
    raise click.ClickException(text)
