"""`ggzy verify draw`: replay a committee draw from its published record, offline (a JSON file an auditor
downloaded from `GET /api/v1/evaluation/draws/{id}/record`) or from the configured database and store."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import click

from evaluation import draw


def _record_from_database(draw_id: uuid.UUID) -> dict[str, Any]:
    from app import build_store
    from evaluation import service
    from evaluation.models import Draw
    from storage.clock import SystemClock
    from storage.db import create_engine, create_sessionmaker, transaction
    from storage.settings import Settings

    async def run() -> dict[str, Any]:
        settings = Settings.from_env()
        engine = create_engine(settings.effective_database_url)
        store = build_store(settings, SystemClock())
        try:
            async with transaction(create_sessionmaker(engine), read_only=True) as session:
                row = await session.get(Draw, draw_id)
                if row is None:
                    raise click.ClickException(f"no draw {draw_id}")
                return draw.record_to_json(await service.draw_record(session, store, row))
        finally:
            await engine.dispose()

    return asyncio.run(run())


@click.command("draw")
@click.argument("source")
def verify_draw(source: str) -> None:
    """Replay a draw: SOURCE is a record file (JSON) or a draw id in the configured database. Checks the
    pool encoding and digest, the commitment to the revealed seed, and every invitation (initial seats and
    replacements after declines) against the documented selection. Exit 1 if anything differs."""
    path = Path(source)
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
    else:
        try:
            draw_id = uuid.UUID(source)
        except ValueError:
            raise click.BadParameter("neither a record file nor a draw id", param_hint="SOURCE") from None
        data = _record_from_database(draw_id)
    try:
        record = draw.record_from_json(data)
    except (draw.DrawError, KeyError, TypeError, ValueError) as exc:
        click.echo(click.style("FAIL", fg="red") + f" the record is malformed: {exc}")
        sys.exit(1)
    problems = draw.verify(record)
    pool = draw.decode_pool(record.pool) if not problems else []
    click.echo(f"commitment {record.commitment}")
    click.echo(f"seed       {record.seed_hex}  witness {record.witness!r}")
    click.echo(f"pool       {len(pool)} eligible experts, digest {draw.pool_digest(pool) if pool else '-'}")
    click.echo(f"invitations {len(record.invitations)}, removals {len(record.removed)}")
    for problem in problems:
        click.echo(click.style("FAIL", fg="red") + f" {problem}")
    if problems:
        sys.exit(1)
    committee = draw.select(
        pool,
        list(record.quotas),
        draw.final_seed(bytes.fromhex(record.seed_hex), record.witness),
        record.employer_limit,
        list(record.removed),
    ).committee
    for seat in committee:
        click.echo(f"  seat quota {seat.quota_index} round {seat.round}: {seat.expert_id}")
    click.echo(click.style("ok  ", fg="green") + " the committee reproduces from the published seed")


def register(cli: click.Group) -> None:
    """Attach `ggzy verify draw` (the `verify` group is shared)."""
    group = cli.commands.get("verify")
    assert isinstance(group, click.Group), "register the bidding commands first"
    group.add_command(verify_draw)
