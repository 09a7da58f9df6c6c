"""`ggzy verify draw`: replay a committee draw from its published record, offline (a JSON file an auditor
downloaded from `GET /api/v1/evaluation/draws/{id}/record`) or from the configured database and store.
`ggzy draw witness` and `ggzy draw reveal`: the witness's side of a draw (a supervisor or a notary), against
`--url` as `--username` (password from `GGZY_PASSWORD`) or with `GGZY_TOKEN`. `ggzy room show`: a tender's
evaluation room (its lot's, `--lot`, where each lot has its own room) and its report, the hash recomputed."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bidding.cli import username_opt
from bidding.client import ClientError, GgzyClient
from evaluation import draw, report, witness
from storage.cli import server_url

T = TypeVar("T")


def _record_from_database(draw_id: uuid.UUID) -> tuple[dict[str, Any], bytes]:
    from evaluation import selection
    from evaluation.models import Draw
    from storage.clock import SystemClock
    from storage.db import create_engine, create_sessionmaker, transaction
    from storage.objects import build_store
    from storage.settings import Settings
    from storage.signing import LogSigner

    async def run() -> tuple[dict[str, Any], bytes]:
        settings = Settings.from_env()
        engine = create_engine(settings.effective_database_url)
        store = build_store(settings, SystemClock())
        signer = LogSigner.from_secret(settings.secret_key, settings.log_signing_key)
        try:
            async with transaction(create_sessionmaker(engine), read_only=True) as session:
                row = await session.get(Draw, draw_id)
                if row is None:
                    raise click.ClickException(f"no draw {draw_id}")
                record = await selection.draw_record(session, store, row)
                return draw.record_to_json(record), signer.public_raw
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _describe(record: draw.DrawRecord | draw.LegacyRecord, problems: list[str]) -> None:
    if isinstance(record, draw.LegacyRecord):
        click.echo(f"version    {draw.LEGACY_VERSION} (no witness commitment, no pool before avoidance)")
        click.echo(f"commitment {record.commitment}")
        click.echo(f"seed       {record.seed_hex}  witness {record.witness!r}")
        click.echo(f"invitations {len(record.invitations)}, removals {len(record.removed)}")
        return
    reasons = Counter(reason for _, rs in record.exclusions for reason in rs)
    excluded = ", ".join(f"{code} {n}" for code, n in sorted(reasons.items())) or "none"
    click.echo(f"draw       {record.draw_id}, {record.status}")
    if record.abort is not None:
        a = record.abort
        click.echo(
            f"abort      asked by the {a.requested_by} while {a.stage} ({a.requested_at}), approved "
            f"{a.approved_at}: {a.reason}"
        )
    click.echo(
        f"candidates {len(record.candidates)} before avoidance; excluded {len(record.exclusions)}: {excluded}"
    )
    click.echo(f"pool       {len(record.candidates) - len(record.exclusions)} eligible")
    click.echo(
        f"witness    commitment {record.witness_commitment or '-'}; revealed {record.witness_hex or '-'}"
    )
    signed = f", signed by key {record.key_id}" if record.key_id else ""
    click.echo(f"commitment {record.commitment or '-'}{signed}")
    click.echo(f"seed       {record.seed_hex or '-'}")
    click.echo(f"invitations {len(record.invitations)}, removals {len(record.removed)}")


@click.command("draw")
@click.argument("source")
@click.option(
    "--key", "key_b64", default=None, help="the platform's Ed25519 public key (base64) to check the signature"
)
def verify_draw(source: str, key_b64: str | None) -> None:
    """Replay a committee draw from its published record, offline.

    SOURCE is a record file (JSON) or a draw id in the configured database. Checks what
    the stage must publish, avoidance replayed on the pool before avoidance (every exclusion and its
    reasons), the witness against its commitment, the platform's commitment to the seed (and its signature
    with --key, or with the configured key for a draw id), and every invitation (initial seats and
    replacements) against the documented selection. An aborted draw is checked as far as it got. Exit 1 if
    anything differs."""
    path = Path(source)
    public_key = base64.b64decode(key_b64) if key_b64 else None
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
    else:
        try:
            draw_id = uuid.UUID(source)
        except ValueError:
            raise click.BadParameter("neither a record file nor a draw id", param_hint="SOURCE") from None
        data, configured = _record_from_database(draw_id)
        public_key = public_key or configured
    try:
        record = draw.record_from_json(data)
    except (draw.DrawError, KeyError, TypeError, ValueError) as exc:
        click.echo(click.style("FAIL", fg="red") + f" the record is malformed: {exc}")
        sys.exit(1)
    problems = draw.verify(record, public_key)
    _describe(record, problems)
    for problem in problems:
        click.echo(click.style("FAIL", fg="red") + f" {problem}")
    if problems:
        sys.exit(1)
    result = draw.committee_of(record)
    for seat in result.committee if result else ():
        click.echo(f"  seat quota {seat.quota_index} round {seat.round}: {seat.expert_id}")
    if result is None:
        click.echo(
            click.style("ok  ", fg="green") + " avoidance and the commitments check; nothing was drawn"
        )
    else:
        click.echo(
            click.style("ok  ", fg="green") + " avoidance and the committee reproduce from the published seed"
        )


# ---------------------------------------------------------------- ggzy draw witness | reveal


def _run(url: str, username: str | None, action: Callable[[GgzyClient], Awaitable[T]]) -> T:
    async def go() -> T:
        async with GgzyClient(url, os.environ.get("GGZY_TOKEN")) as client:
            if username:
                password = os.environ.get("GGZY_PASSWORD") or click.prompt("password", hide_input=True)
                await client.login(username, password)
            elif not client.token:
                raise click.UsageError(
                    "sign in: pass --username (password from GGZY_PASSWORD) or set GGZY_TOKEN"
                )
            return await action(client)

    try:
        return asyncio.run(go())
    except (ClientError, witness.WitnessError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("draw")
def draw_group() -> None:
    """The witness's side of a committee draw (a supervisor or a notary)."""


@draw_group.command("witness")
@click.argument("draw_id")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The witness file to write (mode 0600): keep it until the reveal.",
)
@server_url
@username_opt
def draw_witness(draw_id: str, out: Path, url: str, username: str | None) -> None:
    """Commit to a fresh random witness for DRAW_ID: the witness and nonce stay in OUT (mode 0600) with the
    platform's signed commitment, checked against its published key. Reveal it with `ggzy draw reveal`."""
    if out.exists():
        raise click.UsageError(f"{out} exists; refusing to overwrite a witness file")
    kept = _run(url, username, lambda c: witness.commit(c, draw_id))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(kept.to_json())
    click.echo(f"witness commitment {kept.witness_commitment}")
    click.echo(f"platform commitment {kept.commitment} (signature checked, key {kept.key_id})")
    click.echo(f"kept in {out}; reveal with: ggzy draw reveal {out}")


@draw_group.command("reveal")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@server_url
@username_opt
def draw_reveal(path: Path, url: str, username: str | None) -> None:
    """Reveal the witness kept in PATH, which runs the draw at once, after checking the draw still shows
    the commitments that were signed."""
    try:
        kept = witness.Witness.from_json(path.read_text(encoding="utf-8"))
    except witness.WitnessError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    shown = _run(url, username, lambda c: witness.reveal(c, kept))
    click.echo(f"draw {shown['id']} is {shown['status']}: {len(shown['invitations'])} experts invited")


# ---------------------------------------------------------------- ggzy room show


def choose_room(
    rooms: list[dict[str, Any]], tender_id: str, lot_id: str | None, round_: int | None
) -> dict[str, Any]:
    """The tender's room the caller asks for: of its lot (`lot_id`) where each lot has its own room, of the
    round asked (by default the latest). A usage error names what is missing."""
    mine = [r for r in rooms if r["tender_id"] == tender_id and (round_ is None or r["round"] == round_)]
    if not mine:
        raise click.UsageError(f"no evaluation room of tender {tender_id} is visible to you")
    per_lot = any(r.get("lot_id") for r in mine)
    if per_lot and lot_id is None:
        raise click.UsageError("the tender has one evaluation room per lot: pass --lot N")
    if not per_lot and lot_id is not None:
        raise click.UsageError("one room evaluates every lot of this tender: leave --lot out")
    mine = [r for r in mine if r.get("lot_id") == lot_id]
    if not mine:
        raise click.UsageError("that lot has no evaluation room visible to you")
    return max(mine, key=lambda r: (r["round"], r["opens_at"]))


async def _show_room(client: GgzyClient, tender_id: str, lot: int | None, round_: int | None) -> list[str]:
    lot_id = None
    if lot is not None:
        lots = {x["number"]: x["id"] for x in (await client.tender(tender_id))["lots"]}
        if lot not in lots:
            raise click.UsageError(f"the tender has no lot {lot}")
        lot_id = str(lots[lot])
    room = choose_room(await client.request("GET", "/api/v1/evaluation/rooms/"), tender_id, lot_id, round_)
    lines = [
        f"room {room['id']}" + (f" (lot {lot})" if lot is not None else "") + f", round {room['round']}",
        f"{room['status']}, {room['phase']}; {room['opens_at']} to {room['closes_at']}",
    ]
    shown = await client.request("GET", f"/api/v1/evaluation/rooms/{room['id']}/report", ok=(200, 404))
    if not shown or "report" not in shown:
        return [*lines, "no report drawn up yet"]
    again = report.report_hash(shown["report"])
    mark = "matches" if again == shown["report_hash"] else "DOES NOT MATCH"
    return [*lines, f"report {shown['report_hash']} ({shown['status']}); recomputed hash {mark}"]


@click.group("room")
def room_group() -> None:
    """A tender's evaluation room (its lot's, --lot, where each lot has its own room) and its report."""


@room_group.command("show")
@click.argument("tender_id")
@click.option("--lot", type=int, default=None, help="The lot's number, where each lot has its own room.")
@click.option("--round", "round_", type=int, default=None, help="The evaluation round (default: the latest).")
@server_url
@username_opt
def room_show(tender_id: str, lot: int | None, round_: int | None, url: str, username: str | None) -> None:
    """Show TENDER_ID's evaluation room (its lot's with --lot) and its report's hash, recomputed."""
    for line in _run(url, username, lambda c: _show_room(c, tender_id, lot, round_)):
        click.echo(line)
