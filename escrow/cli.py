"""`ggzy verify ledger` and the centre's bank-side commands, run against the configured database:
`ggzy escrow import` (a statement file), `ggzy escrow batch` (instruct the due refunds and write the
bank file), `ggzy escrow results` (the bank's results), `ggzy escrow flag-overdue` (S-01),
`ggzy escrow conflicts` (bank lines the bank reported otherwise)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx
from sqlalchemy.ext.asyncio import AsyncSession

import storage.models  # noqa: F401 - every table, so the mapper resolves foreign keys across packages
from escrow import heads, ledger
from rules.schedule import working_calendar
from storage.cli import key_server_url
from storage.db import create_engine, create_sessionmaker, transaction
from storage.settings import Settings
from storage.signing import LogSigner, key_id

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
    from storage.clock import SystemClock
    from storage.objects import build_store

    return build_store(settings, SystemClock())


def _signer(settings: Settings) -> LogSigner:
    """The platform's log key, as `ggzy serve` derives it: it signs the ledger's head after each batch."""
    return LogSigner.from_secret(settings.secret_key, settings.log_signing_key)


def _now() -> Any:
    from storage.clock import SystemClock

    return SystemClock().now()


class _LineBar:
    """A progress bar on stderr for work that learns its total as it starts (`(done, total)` calls)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return  # piped output and logs stay clean
        if self.bar is None:
            self.bar = click.progressbar(
                length=max(total, 1), label=self.label, file=sys.stderr, show_eta=True
            )
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def __enter__(self) -> _LineBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            if exc[0] is None:
                self.bar.update(self.bar.length - self.done)
            self.bar.__exit__(*exc)


def _echo_check(check: ledger.Check) -> None:
    mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
    click.echo(f"{mark} {check.name}: {check.detail}")
    if not check.ok and check.total > 1:
        for offender in check.offenders:
            click.echo(f"       - {offender}")
        if check.total > len(check.offenders):
            click.echo(
                f"       … {check.total - len(check.offenders)} more not listed (limit {len(check.offenders)})"
            )


def _pinned_key(key: str | None, fetch_key: bool, url: str) -> bytes | None:
    """The platform's public key from `--key` (base64), or fetched from the server (its fingerprint
    printed, to compare with one obtained another way), or None."""
    if key is not None:
        try:
            raw = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise click.UsageError(f"--key is not base64: {exc}") from exc
        if len(raw) != 32:
            raise click.UsageError("--key must be the base64 of a 32-byte Ed25519 public key")
        return raw
    if not fetch_key:
        return None
    try:
        answer = httpx.get(f"{url.rstrip('/')}/api/v1/transparency/key", timeout=30).raise_for_status().json()
        raw = base64.b64decode(answer["public_key"], validate=True)
    except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
        raise click.ClickException(f"cannot fetch the platform key from {url}: {exc}") from exc
    if len(raw) != 32 or answer.get("key_id") != key_id(raw):
        raise click.ClickException(f"the key {url} serves does not match the id it names")
    click.echo(f"key {key_id(raw)} fetched from {url}: compare this fingerprint with one you trust")
    return raw


def _kept(path: Path) -> heads.SignedHead:
    try:
        return heads.parse(json.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.UsageError(f"{path} is not a head's JSON: {exc}") from exc
    except heads.HeadError as exc:
        raise click.UsageError(f"{path}: {exc.message}") from exc


@click.command("ledger")
@click.option(
    "--head",
    "head_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="a signed head kept earlier (GET /api/v1/transparency/ledger/head): prove the journal still holds "
    "and extends it",
)
@click.option("--key", default=None, help="the platform's Ed25519 public key (base64) to pin")
@click.option("--fetch-key", is_flag=True, help="fetch the key from --url and print its fingerprint")
@key_server_url
@click.option(
    "--quick",
    is_flag=True,
    help="with --head: only the head's checks, reading only the entries since it "
    "(ggzy bench ledger prints the seconds per 10,000)",
)
def verify_ledger(head_path: Path | None, key: str | None, fetch_key: bool, url: str, quick: bool) -> None:
    """Check every invariant of the deposit ledger and the deposits in the configured database.

    Entries balance, balances equal the postings, the hash
    chain is intact, no account overdrawn; the signed heads still match the journal; every deposit
    refunded, forfeited or held for a reason; refunds within deposit plus interest and to the paying
    account, payers as hashed; bank lines taken in once; interest recomputes; overdue refunds flagged; no
    bank line conflict open. With --head, also that the journal still holds and extends a head an auditor
    kept (signed by the pinned key). Prints each check and every offender; exit 1 if any fails."""
    from escrow import audit, published

    if quick and head_path is None:
        raise click.UsageError("--quick needs --head")
    kept = _kept(head_path) if head_path is not None else None
    pinned = _pinned_key(key, fetch_key, url)

    async def work(session: AsyncSession, settings: Settings) -> list[ledger.Check]:
        public_raw = pinned if pinned is not None else _signer(settings).public_raw
        checks: list[ledger.Check] = []
        if not quick:
            checks += await audit.verify(session, await working_calendar(session), _now(), public_raw)
        if kept is not None:
            checks += await published.check_kept(session, kept, public_raw)
        return checks

    if head_path is not None and pinned is None:
        click.echo("no --key or --fetch-key: the head is checked against this installation's own key")
    failed = False
    for check in _run(work, read_only=True):
        failed |= not check.ok
        _echo_check(check)
    if failed:
        sys.exit(1)


@click.group("escrow")
def escrow_group() -> None:
    """The centre's side of the deposit bank account."""


@escrow_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["camt053", "csv"]),
    default="camt053",
    show_default=True,
    help="The statement's format: ISO 20022 camt.053 XML, or the bank's CSV.",
)
def import_command(path: Path, fmt: str) -> None:
    """Import a bank statement file; importing it again changes nothing."""
    from escrow import intake
    from storage.problems import Problem

    data = path.read_bytes()
    bar = _LineBar("importing lines")

    async def work(session: AsyncSession, settings: Settings) -> Any:
        return await intake.import_statement(
            session, _store(settings), None, data, fmt, _now(), signer=_signer(settings), progress=bar
        )

    try:
        with bar:
            result = _run(work)
    except Problem as exc:
        reason = exc.errors[0]["message"] if exc.errors else exc.detail
        raise click.ClickException(
            f"{path} is not a {fmt} statement ggzy can read: {reason} Nothing was imported."
        ) from exc
    click.echo(
        json.dumps({"statement_id": str(result.statement_id), "replay": result.replay, **result.summary()})
    )


@escrow_group.command("batch")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The folder to write the batch's files into.",
)
def batch_command(out: Path) -> None:
    """Instruct the bank to pay every refund that is due, and write the batch's pain.001 XML and CSV."""
    from escrow import batches

    async def work(session: AsyncSession, settings: Settings) -> Any:
        made = await batches.create_batch(session, None, _now(), signer=_signer(settings))
        if made.batch is None:
            return None, made.skipped
        xml = await batches.batch_file(session, made.batch.id, "xml", settings)
        csv = await batches.batch_file(session, made.batch.id, "csv", settings)
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
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["pain002", "csv"]),
    default="pain002",
    show_default=True,
    help="The results' format: ISO 20022 pain.002 XML, or the bank's CSV.",
)
def results_command(path: Path, fmt: str) -> None:
    """Import the bank's results of a refund batch; importing them again changes nothing."""
    from escrow import batches

    data = path.read_bytes()

    async def work(session: AsyncSession, settings: Settings) -> Any:
        return await batches.import_results(session, None, data, fmt, _now(), signer=_signer(settings))

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
    from escrow import refunds

    async def work(session: AsyncSession, _settings: Settings) -> int:
        return await refunds.flag_overdue(session, await working_calendar(session), _now())

    click.echo(json.dumps({"flagged": _run(work)}))


@escrow_group.command("conflicts")
@click.option(
    "--status",
    type=click.Choice(["open", "resolved", "all"]),
    default="open",
    show_default=True,
    help="Which conflicts to list.",
)
def conflicts_command(status: str) -> None:
    """List the bank lines the bank reported again under a known reference but otherwise, one JSON line
    each, with both versions and the decision once taken. A centre officer resolves one with
    POST /api/v1/escrow/conflicts/{id}/resolution."""
    from escrow import conflicts

    async def work(session: AsyncSession, _settings: Settings) -> list[dict[str, Any]]:
        rows = await conflicts.listed(session, None if status == "all" else status)
        return [
            {
                "id": str(r.id),
                "reference": r.reference,
                "status": r.status,
                "detected_at": r.detected_at.isoformat(),
                "differences": r.differences,
                "known": r.known,
                "incoming": r.incoming,
                "decision": r.decision,
                "note": r.note,
                "resolved_by": r.resolved_by,
                "resolved_at": r.resolved_at.isoformat() if r.resolved_at else None,
                "entry_sequence": r.entry_sequence,
            }
            for r in rows
        ]

    for row in _run(work, read_only=True):
        click.echo(json.dumps(row, ensure_ascii=False))
