"""`ggzy accounts …`: setting up the centre and its staff from the command line; `ggzy verify audit` and
`ggzy audit sign`: checking the audit trail and signing its head; `ggzy jobs list|retry`: the centre's
dead-letter list of background jobs."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import click
import httpx

import storage.models  # noqa: F401 - every table, so the mapper resolves foreign keys across packages
from accounts import audit, auditchain, service
from storage import jobs
from storage.cli import key_server_url, server_url
from storage.clock import SystemClock
from storage.db import create_engine, create_sessionmaker, transaction
from storage.problems import Problem
from storage.settings import Settings
from storage.signing import LogSigner


@click.group("accounts")
def accounts_group() -> None:
    """Organisations and users."""


@accounts_group.command("bootstrap")
@click.option("--name", default="公共资源交易中心", show_default=True, help="The centre's name.")
@click.option("--credit-code", required=True, help="The centre's unified social credit code.")
@click.option("--username", required=True, help="The first administrator's username.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="The administrator's password (prompted twice when not given).",
)
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
@server_url
@click.option(
    "--username",
    envvar="GGZY_USERNAME",
    required=True,
    help="Whose password (or set GGZY_USERNAME); the current one from GGZY_PASSWORD, else prompted. "
    "GGZY_TOKEN is not used here.",
)
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


# ---------------------------------------------------------------- the audit trail (E-04)


def _signer(settings: Settings) -> LogSigner:
    return LogSigner.from_secret(settings.secret_key, settings.log_signing_key)


def _platform_key(key_b64: str | None, fetch: bool, url: str) -> tuple[bytes, str]:
    """The key heads are checked with, and where it came from."""
    if key_b64 and fetch:
        raise click.UsageError("give --key or --fetch-key, not both")
    if key_b64:
        try:
            raw = base64.b64decode(key_b64, validate=True)
        except ValueError as exc:
            raise click.BadParameter("not base64", param_hint="--key") from exc
        if len(raw) != 32:
            raise click.BadParameter("not a 32-byte Ed25519 public key", param_hint="--key")
        return raw, "pinned with --key"
    if fetch:
        try:
            answer = (
                httpx.get(f"{url.rstrip('/')}/api/v1/transparency/key", timeout=30).raise_for_status().json()
            )
            raw = base64.b64decode(answer["public_key"], validate=True)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise click.ClickException(f"could not fetch the key from {url}: {exc}") from exc
        if len(raw) != 32 or answer.get("key_id") != auditchain.key_id(raw):
            raise click.ClickException(f"the key {url} serves does not match the id it names")
        return raw, f"fetched from {url}: compare this fingerprint with one you trust"
    return _signer(Settings.from_env()).public_raw, "this installation's key"


@click.command("audit")
@click.option(
    "--head",
    "head_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="a signed head you kept (GET /api/v1/transparency/audit/head): the trail must still extend it",
)
@click.option("--key", "key_b64", default=None, help="the platform's public key (base64) to check heads with")
@click.option("--fetch-key", is_flag=True, help="take the key from GET /api/v1/transparency/key at --url")
@key_server_url
@click.option(
    "--limit",
    type=click.IntRange(1, auditchain.MAX_LIMIT),
    default=auditchain.DEFAULT_LIMIT,
    show_default=True,
    help="offenders named per check",
)
def verify_audit(head_path: Path | None, key_b64: str | None, fetch_key: bool, url: str, limit: int) -> None:
    """Re-check the audit trail (E-04) and its signed heads in the configured database.

    The sequence gapless, every event
    hashing to its stored hash and linking to the one before, the chain row, every signed head (with the
    platform key: this installation's, --key or --fetch-key) and, with --head, that the trail still
    extends a head you kept. Names every offender up to --limit per check; exit 1 if any check fails."""
    public_raw, source = _platform_key(key_b64, fetch_key, url)
    kept = None
    if head_path is not None:
        try:
            kept = auditchain.head_from_json(json.loads(head_path.read_text(encoding="utf-8")))
        except (ValueError, UnicodeDecodeError) as exc:
            click.echo(
                click.style("FAIL", fg="red")
                + f" the kept head is not a signed head of the audit trail: {exc}"
            )
            sys.exit(1)

    async def run() -> audit.Report:
        engine = create_engine(Settings.from_env().effective_database_url)
        try:
            async with audit.snapshot(create_sessionmaker(engine)) as session:
                return await audit.verify(session, public_raw, kept=kept, limit=limit)
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    click.echo(
        f"audit trail: {report.events} events, the chain ends at {report.last_sequence} with "
        f"{report.last_hash}; key id {report.key_id} ({source})"
    )
    for check in report.checks:
        mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark} {check.name}: {check.detail}")
        for offender in check.offenders:
            click.echo(f"       - {offender}")
        if check.offenders_total > len(check.offenders):
            click.echo(
                f"       … {check.offenders_total - len(check.offenders)} more not listed (limit {report.limit})"
            )
    if not report.ok:
        sys.exit(1)


@click.group("audit")
def audit_group() -> None:
    """The audit trail's signed heads."""


@audit_group.command("sign")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="write the head here"
)
def sign_command(out: Path | None) -> None:
    """Sign the audit trail's head now (the chronograph does so every GGZY_AUDIT_HEAD_MINUTES while it
    moves) and print it; the newest head when the trail has not moved since. Exit 1 if the trail no
    longer extends its last signed head."""

    async def run() -> auditchain.PublishedAuditHead | None:
        settings = Settings.from_env()
        engine = create_engine(settings.effective_database_url)
        now = SystemClock().now()
        try:
            async with transaction(create_sessionmaker(engine)) as session:
                signed, new = await audit.sign(session, _signer(settings), now)
                if signed is None:
                    return None
                if new:
                    await service.record(
                        session,
                        None,
                        "audit.sign_head",
                        "audit_head",
                        signed.head.sequence,
                        now,
                        events=signed.head.events,
                        chain_hash=signed.head.chain_hash,
                    )
                return auditchain.head_to_json(signed)
        finally:
            await engine.dispose()

    try:
        head = asyncio.run(run())
    except audit.ChainBroken as exc:
        click.echo(click.style("FAIL", fg="red") + f" {exc.detail}")
        for offender in exc.extra["offenders"]:
            click.echo(f"       - {offender}")
        sys.exit(1)
    if head is None:
        raise click.ClickException("the audit trail is empty; there is no head to sign")
    text = json.dumps(head, indent=2)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    click.echo(text)


@click.group("jobs")
def jobs_group() -> None:
    """Background jobs: the dead-letter list (jobs that kept failing for the whole retry horizon)."""


@jobs_group.command("list")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=100,
    show_default=True,
    help="Print at most this many dead jobs (GGZY_DATABASE_URL names the database).",
)
def jobs_list(limit: int) -> None:
    """Print the dead jobs, most recently parked first: id, job, attempts, failing since, dead at, last error."""

    async def run() -> list[Any]:
        engine = create_engine(Settings.from_env().effective_database_url)
        try:
            async with transaction(create_sessionmaker(engine), read_only=True) as session:
                return await jobs.dead_letters(session, limit=limit)
        finally:
            await engine.dispose()

    rows = asyncio.run(run())
    for row in rows:
        click.echo(
            "\t".join(
                [
                    str(row.id),
                    row.job,
                    str(row.attempts),
                    row.failing_since.isoformat() if row.failing_since else "-",
                    row.dead_at.isoformat() if row.dead_at else "-",
                    row.last_error or "-",
                ]
            )
        )
    click.echo(f"{len(rows)} dead job(s)", err=True)


@jobs_group.command("retry")
@click.argument("job_ids", nargs=-1, required=True)
def jobs_retry(job_ids: tuple[str, ...]) -> None:
    """Put dead jobs back in the queue, due now, with a fresh retry horizon. Idempotent: a job that is not
    dead is left as it is. Exits 1 when an id names no job."""
    try:
        ids = [uuid.UUID(value) for value in job_ids]
    except ValueError as exc:
        raise click.BadParameter("each JOB_ID must be a job's UUID (see `ggzy jobs list`)") from exc

    async def run() -> list[tuple[uuid.UUID, str]]:
        engine = create_engine(Settings.from_env().effective_database_url)
        answers = []
        try:
            for job_id in ids:
                async with transaction(create_sessionmaker(engine)) as session:
                    now = SystemClock().now()
                    outcome = await jobs.retry_dead(session, job_id, now)
                    if outcome is None:
                        answers.append((job_id, "no such job"))
                        continue
                    row, retried = outcome
                    if retried:
                        await service.record(
                            session, None, "job.retry", "job", row.id, now, job=row.job, via="ggzy jobs retry"
                        )
                    answers.append((job_id, "retried" if retried else f"not dead ({row.status}); unchanged"))
        finally:
            await engine.dispose()
        return answers

    answers = asyncio.run(run())
    for job_id, answer in answers:
        click.echo(f"{job_id}\t{answer}")
    if any(answer == "no such job" for _id, answer in answers):
        sys.exit(1)
