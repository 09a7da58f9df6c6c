"""The ledger's signed heads, on both databases: one signed in the same transaction after every batch that
moved money and at least hourly by the chronograph, published beside the transparency log's heads (sizes
and hashes only), and `ggzy verify ledger --head HEAD.json` proving offline that the journal still holds
and extends a head an auditor kept — so a journal rewritten and rehashed with the documented scheme no
longer passes."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from escrow import heads, ledger, sandbox
from escrow.models import AccountBalance, JournalEntry, LedgerHead, Posting
from storage.db import transaction
from storage.signing import LogSigner
from tests.escrow.test_deposits import ESCROW, _import
from tests.helpers import Api

STRANGER = "6228480000000001"


def _line(ref: str, amount: int) -> sandbox.Credit:
    return sandbox.Credit(
        reference=ref,
        amount_fen=amount,
        booked_on=date(2026, 3, 2),
        payer_name="某某公司",
        payer_account=STRANGER,
        payer_bank="中国农业银行南京分行",
        credited_account="95580000000000000",
    )


async def _three_batches(api: Api) -> None:
    """Three statements of one suspense line each: three batches, entries 1, 2 and 3."""
    centre = await api.bootstrap_centre()
    for n in (1, 2, 3):
        statement = sandbox.statement(ESCROW, f"S{n}", api.clock.now(), [_line(f"R{n}", n * 100_000)])
        assert (await _import(api, centre, statement))["suspense"] == 1


async def _replication_off(session: AsyncSession) -> None:
    """What an attacker who owns the PostgreSQL database does first: switch its triggers off."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL session_replication_role = replica"))


async def _rehash_from(session: AsyncSession, start: int) -> None:
    """The short script: recompute every request hash and link from `start` with the documented scheme
    (escrow/ledger.py), so that every check of the journal itself passes again."""
    previous = await session.scalar(select(JournalEntry.hash).where(JournalEntry.sequence == start - 1))
    previous = previous or ledger.GENESIS
    rows = (
        (
            await session.execute(
                select(JournalEntry).where(JournalEntry.sequence >= start).order_by(JournalEntry.sequence)
            )
        )
        .scalars()
        .all()
    )
    for row in rows:
        legs = (
            await session.execute(
                select(Posting.account_code, Posting.amount_fen)
                .where(Posting.sequence == row.sequence)
                .order_by(Posting.leg)
            )
        ).all()
        draft = ledger.EntryDraft(
            row.reason,
            tuple(ledger.Posting(a, n) for a, n in legs),
            row.idempotency_key,
            dict(row.context),
            row.actor,
            ledger.Party(
                row.party_role or "", row.party_account or "", row.party_name or "", row.party_bank or ""
            ),
            row.scheme,
        )
        request = ledger.request_hash(draft)
        link = ledger.link_hash(
            previous, row.sequence, row.idempotency_key, request, row.phase, row.at, row.scheme
        )
        await session.execute(
            update(JournalEntry)
            .where(JournalEntry.sequence == row.sequence)
            .values(request_hash=request, previous_hash=previous, hash=link)
        )
        previous = link
    await session.execute(update(LedgerHead).where(LedgerHead.id == 1).values(hash=previous))


async def _skim_entry_two(api: Api) -> None:
    """Entry 2 took 200,000 fen into suspense; the script makes it 150,000 on both legs and in the
    balances, then rehashes the chain from there."""
    async with transaction(api.runtime.sessionmaker) as session:
        await _replication_off(session)
        await session.execute(text("UPDATE postings SET amount_fen = amount_fen / 4 * 3 WHERE sequence = 2"))
        for code, delta in (("bank:escrow", -50_000), ("suspense", 50_000)):
            await session.execute(
                update(AccountBalance)
                .where(AccountBalance.account_code == code)
                .values(posted=AccountBalance.posted + delta)
            )
        await _rehash_from(session, 2)


def _ggzy(api: Api, tmp_path: Path, *args: str) -> Result:
    from ggzy import cli as ggzy_cli

    env = {
        "GGZY_DATABASE_URL": api.runtime.engine.url.render_as_string(hide_password=False),
        "GGZY_VAR_DIR": str(tmp_path),
        "GGZY_SECRET_KEY": api.runtime.settings.secret_key,
    }
    return CliRunner().invoke(ggzy_cli, list(args), env=env)


async def ggzy(api: Api, tmp_path: Path, *args: str) -> Result:
    return await asyncio.to_thread(_ggzy, api, tmp_path, *args)


def _key(api: Api) -> str:
    return base64.b64encode(api.runtime.signer.public_raw).decode()


async def test_a_journal_rewritten_and_rehashed_no_longer_passes_against_a_kept_head(
    api: Api, tmp_path: Path
) -> None:
    await _three_batches(api)
    r = await api.get("/api/v1/transparency/ledger/head")
    assert r.status_code == 200, r.text
    kept = r.json()
    assert (kept["sequence"], kept["entries"]) == (3, 3)
    head_file = tmp_path / "HEAD.json"
    head_file.write_text(json.dumps(kept))
    before = await ggzy(api, tmp_path, "verify", "ledger", "--head", str(head_file), "--key", _key(api))
    assert before.exit_code == 0, before.output

    await _skim_entry_two(api)
    # the journal's own checks are satisfied by the rehashed chain…
    async with transaction(api.runtime.sessionmaker, read_only=True) as session:
        from escrow import journal

        assert [c.name for c in await journal.verify(session) if not c.ok] == []
    # …but not the head the auditor kept, nor the heads the platform signed after each batch
    after = await ggzy(api, tmp_path, "verify", "ledger", "--head", str(head_file), "--key", _key(api))
    assert after.exit_code == 1, after.output
    failed = [line for line in after.output.splitlines() if line.startswith("FAIL")]
    assert [line.split(":")[0] for line in failed] == [
        "FAIL signed heads match the journal",
        "FAIL the journal still holds the kept head",
        "FAIL the journal extends the kept head",
    ]
    assert "rewritten at entry 2" in failed[1], after.output
    assert failed[2].endswith("the journal no longer holds the kept head")
    assert "head 2 (entry 2)" in after.output and "head 3 (entry 3)" in after.output
    plain = await ggzy(api, tmp_path, "verify", "ledger")
    assert plain.exit_code == 1 and "FAIL signed heads match the journal" in plain.output


async def test_the_heads_are_published_with_sizes_and_hashes_only(api: Api) -> None:
    await _three_batches(api)
    listed = (await api.get("/api/v1/transparency/ledger/heads")).json()
    assert [(h["sequence"], h["entries"]) for h in listed["heads"]] == [(1, 1), (2, 2), (3, 3)]
    one = (await api.get("/api/v1/transparency/ledger/heads/2")).json()
    assert set(one) == {"version", "sequence", "entries", "chain_hash", "signed_at", "key_id", "signature"}
    assert one == listed["heads"][1]
    async with transaction(api.runtime.sessionmaker, read_only=True) as session:
        second = await session.scalar(select(JournalEntry.hash).where(JournalEntry.sequence == 2))
    assert one["chain_hash"] == second
    assert (await api.get("/api/v1/transparency/ledger/heads/4")).status_code == 404
    assert (await api.get("/api/v1/transparency/ledger/heads/0")).status_code == 400


async def test_each_batch_that_moves_money_signs_one_head_and_one_that_moves_none_signs_none(
    api: Api,
) -> None:
    centre = await api.bootstrap_centre()
    first = sandbox.statement(ESCROW, "S1", api.clock.now(), [_line("R1", 100_000), _line("R2", 200_000)])
    await _import(api, centre, first)
    assert (await api.get("/api/v1/transparency/ledger/head")).json()["entries"] == 2
    await _import(api, centre, first)  # the same file: a replay
    known = sandbox.statement(ESCROW, "S2", api.clock.now(), [_line("R1", 100_000)])
    assert (await _import(api, centre, known))["already_known"] == 1
    listed = (await api.get("/api/v1/transparency/ledger/heads")).json()["heads"]
    assert [(h["sequence"], h["entries"]) for h in listed] == [(1, 2)]


async def test_the_chronograph_signs_a_head_at_least_hourly_even_when_nothing_moves(api: Api) -> None:
    from escrow import journal

    start = api.clock.now()
    await api.tick()
    first = (await api.get("/api/v1/transparency/ledger/head")).json()
    assert (first["sequence"], first["entries"], first["chain_hash"]) == (1, 0, ledger.GENESIS)
    api.clock.set(start + timedelta(minutes=59))
    await api.tick()
    assert (await api.get("/api/v1/transparency/ledger/head")).json()["sequence"] == 1
    api.clock.set(start + timedelta(hours=1))
    await api.tick()
    second = (await api.get("/api/v1/transparency/ledger/head")).json()
    assert (second["sequence"], second["entries"], second["signed_at"]) == (
        2,
        0,
        "2026-03-02T02:00:00.000000Z",
    )
    # an entry written by a path that did not sign is covered at the next tick, however recent the head
    async with transaction(api.runtime.sessionmaker) as session:
        await journal.ensure_account(session, journal.BANK, "bank", api.clock.now())
        await journal.ensure_account(session, journal.INTEREST_INCOME, "interest_income", api.clock.now())
        await journal.post(
            session,
            ledger.EntryDraft(
                "interest_received",
                (ledger.Posting(journal.BANK, 7), ledger.Posting(journal.INTEREST_INCOME, -7)),
                "interest:line-0001",
            ),
            api.clock.now(),
        )
    api.clock.set(start + timedelta(hours=1, minutes=1))
    await api.tick()
    third = (await api.get("/api/v1/transparency/ledger/head")).json()
    assert (third["sequence"], third["entries"]) == (3, 1)


async def _appended(api: Api) -> None:
    centre = await api.bootstrap_centre()
    statement = sandbox.statement(ESCROW, "S4", api.clock.now(), [_line("R4", 400_000), _line("R5", 500_000)])
    await _import(api, centre, statement)


async def test_a_kept_head_is_checked_quickly_against_the_entries_since_it(api: Api, tmp_path: Path) -> None:
    await _three_batches(api)
    head_file = tmp_path / "HEAD.json"
    head_file.write_text((await api.get("/api/v1/transparency/ledger/head")).text)
    await _appended(api)
    quick = await ggzy(
        api, tmp_path, "verify", "ledger", "--head", str(head_file), "--key", _key(api), "--quick"
    )
    assert quick.exit_code == 0, quick.output
    assert quick.output.splitlines() == [
        f"ok   the kept head is signed by the platform key: head 3, key {api.runtime.signer.key_id}",
        quick.output.splitlines()[1],
        "ok   the journal extends the kept head: 2 entries since entry 3, chained on its hash",
    ]
    assert quick.output.splitlines()[1].startswith(
        "ok   the journal still holds the kept head: entry 3 hashes to "
    )
    # an entry after the head edited without rehashing: the head still holds, the extension names it
    async with transaction(api.runtime.sessionmaker) as session:
        await _replication_off(session)
        await session.execute(text("UPDATE postings SET amount_fen = -amount_fen WHERE sequence = 4"))
    after = await ggzy(
        api, tmp_path, "verify", "ledger", "--head", str(head_file), "--key", _key(api), "--quick"
    )
    assert after.exit_code == 1
    failed = [line for line in after.output.splitlines() if line.startswith("FAIL")]
    assert failed == [
        "FAIL the journal extends the kept head: entry 4: stored " + failed[0].split("entry 4: stored ")[1]
    ]
    assert "(and 1 more)" in failed[0]  # the request hash and the link of entry 4


async def test_a_head_signed_by_another_key_or_not_a_head_is_refused(api: Api, tmp_path: Path) -> None:
    await _three_batches(api)
    head_file = tmp_path / "HEAD.json"
    head_file.write_text((await api.get("/api/v1/transparency/ledger/head")).text)
    other = base64.b64encode(LogSigner.from_secret("not the platform").public_raw).decode()
    run = await ggzy(api, tmp_path, "verify", "ledger", "--head", str(head_file), "--key", other, "--quick")
    assert run.exit_code == 1
    assert run.output.startswith("FAIL the kept head is signed by the platform key: head 3 names key ")
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"version": "ggzy-ledger-head-v1"}')
    run = await ggzy(api, tmp_path, "verify", "ledger", "--head", str(garbage))
    assert run.exit_code == 2 and "The field `sequence` is missing." in run.output
    run = await ggzy(api, tmp_path, "verify", "ledger", "--head", str(head_file), "--key", "not base64")
    assert run.exit_code == 2 and "--key is not base64" in run.output
    run = await ggzy(api, tmp_path, "verify", "ledger", "--quick")
    assert run.exit_code == 2 and "--quick needs --head" in run.output


async def test_the_key_is_fetched_and_its_fingerprint_printed(api: Api, monkeypatch: Any) -> None:
    import httpx

    from escrow import cli

    served = (await api.get("/api/v1/transparency/key")).json()
    seen: list[str] = []

    def fake_get(url: str, timeout: float) -> httpx.Response:
        seen.append(url)
        return httpx.Response(200, json=served, request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", fake_get)
    assert cli._pinned_key(None, True, "https://ggzy.example/") == api.runtime.signer.public_raw
    assert seen == ["https://ggzy.example/api/v1/transparency/key"]
    monkeypatch.setattr(
        httpx,
        "get",
        lambda url, timeout: httpx.Response(
            200, json={**served, "key_id": "0" * 16}, request=httpx.Request("GET", url)
        ),
    )
    with pytest.raises(click.ClickException, match="does not match the id it names"):
        cli._pinned_key(None, True, "https://ggzy.example")


@pytest.mark.parametrize(
    "tamper",
    [
        [],
        ['UPDATE journal_entries SET context = \'{"x": "y"}\' WHERE sequence = 4'],
        ["DELETE FROM postings WHERE sequence = 4", "DELETE FROM journal_entries WHERE sequence = 4"],
        ["UPDATE journal_entries SET previous_hash = hash WHERE sequence >= 4"],
    ],
)
async def test_the_extension_is_judged_alike_set_based_and_streamed(api: Api, tamper: list[str]) -> None:
    await _three_batches(api)
    kept = heads.parse((await api.get("/api/v1/transparency/ledger/head")).json())
    await _appended(api)
    async with transaction(api.runtime.sessionmaker) as session:
        await _replication_off(session)
        for statement in tamper:
            await session.execute(text(statement))
    async with transaction(api.runtime.sessionmaker, read_only=True) as session:
        from escrow import published

        reference = await published.check_kept(
            session, kept, api.runtime.signer.public_raw, reference=True, limit=2
        )
        assert await published.check_kept(session, kept, api.runtime.signer.public_raw, limit=2) == reference
    extended = reference[2]
    assert extended.ok == (not tamper)
    if tamper:
        assert extended.total >= 2 and len(extended.offenders) == 2
