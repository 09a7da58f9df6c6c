"""The audit trail (E-04) on the database: every event chained at commit, the head signed and published,
edits and deletions named by `GET /api/v1/audit/verify` and `ggzy verify audit`, and refused outright by
PostgreSQL's triggers.

An insider's edit is played with the database owner's rights: on PostgreSQL with
`session_replication_role = replica`, which a superuser may set and which switches the triggers off, so
the tests show what the chain catches when the triggers are gone too.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import rfc8785
import sqlalchemy as sa
import uvicorn
from alembic import command
from click.testing import CliRunner, Result
from sqlalchemy import Table, delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

from accounts import audit, auditchain
from accounts import service as accounts
from accounts.auditchain import GENESIS
from accounts.models import AuditChain, AuditEvent, AuditHead
from accounts.security import Principal
from app import create_app
from ggzy import cli as ggzy_cli
from storage.clock import SettableClock
from storage.db import (
    JSONType,
    UTCDateTime,
    create_engine,
    create_sessionmaker,
    scratch_database,
    transaction,
)
from storage.migrate import alembic_config, upgrade_async
from storage.signing import LogSigner
from tests.conftest import PG_URL, Database, unavailable
from tests.helpers import Actor, Api

VERIFY = "/api/v1/audit/verify"
HEAD = "/api/v1/transparency/audit/head"
HEADS = "/api/v1/transparency/audit/heads"
EVENTS = cast(Table, AuditEvent.__table__)
CHAIN = cast(Table, AuditChain.__table__)
HEADS_TABLE = cast(Table, AuditHead.__table__)
HEADS_MATCH = "signed heads match the trail"
KEPT_SIGNED = "the kept head is signed by the platform key"
KEPT_HELD = "the trail still holds the kept head"
KEPT_EXTENDED = "the trail extends the kept head"


# ---------------------------------------------------------------- helpers


async def insider(api: Api, *statements: Executable) -> None:
    """Run `statements` as someone holding the database's owner rights, the append-only triggers off."""
    async with api.runtime.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            await conn.execute(statement)


async def rows(api: Api) -> list[dict[str, Any]]:
    """Every audit event in chain order, as stored."""
    async with api.runtime.engine.connect() as conn:
        result = await conn.execute(select(EVENTS).order_by(EVENTS.c.sequence))
        return [dict(row._mapping) for row in result]


async def some_history(api: Api) -> tuple[Actor, Actor]:
    """A few events of every kind: a bootstrap, sign-ins, a refused sign-in, tenders. Returns the centre
    and an auditor."""
    centre = await api.bootstrap_centre()
    agency = await api.organisation("agency")
    await api.draft(agency, custodians=[])
    r = await api.post("/api/v1/auth/login", json={"username": agency.username, "password": "wrong"})
    assert r.status_code == 401
    api.clock.advance(timedelta(seconds=1))
    await api.draft(agency, custodians=[])
    auditor = await api.organisation("auditor")
    return centre, auditor


def check(body: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in body["checks"] if c["name"] == name]
    return dict(found)


def offenders(body: dict[str, Any], name: str) -> list[int | None]:
    return [o["sequence"] for o in check(body, name)["offenders"]]


def failed(body: dict[str, Any]) -> list[str]:
    return [c["name"] for c in body["checks"] if not c["ok"]]


async def verify(api: Api, actor: Actor, **params: Any) -> dict[str, Any]:
    r = await api.get(VERIFY, actor, params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


# ---------------------------------------------------------------- the attacks on an unchained trail


async def test_an_edited_outcome_and_actor_are_named_by_the_audit_check(api: Api) -> None:
    centre, auditor = await some_history(api)
    assert (await verify(api, auditor))["ok"] is True
    events = await rows(api)
    refused = next(e for e in events if e["outcome"] == "refused")
    someone = uuid.UUID((await api.get("/api/v1/auth/me", centre)).json()["user_id"])
    # the refused sign-in becomes a successful one by the centre's user
    await insider(
        api,
        update(EVENTS).where(EVENTS.c.id == refused["id"]).values(outcome="ok", actor_user_id=someone),
    )
    body = await verify(api, auditor)
    assert body["ok"] is False
    assert failed(body) == ["events hash to their stored hash"]
    [offender] = check(body, "events hash to their stored hash")["offenders"]
    assert (offender["sequence"], offender["event_id"]) == (refused["sequence"], str(refused["id"]))
    assert offender["detail"].startswith(f"stored {refused['hash'][:16]}…, recomputed ")


async def test_a_deleted_event_is_named_by_the_audit_check(api: Api) -> None:
    _centre, auditor = await some_history(api)
    events = await rows(api)
    gone = events[3]
    await insider(api, delete(EVENTS).where(EVENTS.c.id == gone["id"]))
    body = await verify(api, auditor)
    assert body["ok"] is False
    assert failed(body) == ["sequence gapless from 1", "each event links to the one before"]
    assert offenders(body, "sequence gapless from 1") == [gone["sequence"]]
    assert offenders(body, "each event links to the one before") == [gone["sequence"] + 1]


async def test_every_edited_event_is_named_up_to_the_stated_limit(api: Api) -> None:
    _centre, auditor = await some_history(api)
    events = await rows(api)
    await insider(api, update(EVENTS).where(EVENTS.c.sequence > 2).values(action="tender.forged"))
    edited = [e["sequence"] for e in events if e["sequence"] > 2]
    everything = await verify(api, auditor)
    assert offenders(everything, "events hash to their stored hash") == edited
    limited = await verify(api, auditor, limit=2)
    hashes = check(limited, "events hash to their stored hash")
    assert [o["sequence"] for o in hashes["offenders"]] == edited[:2]
    assert hashes["offenders_total"] == len(edited)
    assert hashes["detail"] == f"{len(edited)} of {len(events)} events; the first 2 are named"


# ---------------------------------------------------------------- PostgreSQL refuses edits outright


async def test_postgresql_refuses_to_update_or_delete_an_audit_event(api: Api) -> None:
    if api.runtime.engine.dialect.name != "postgresql":
        pytest.skip("the append-only triggers are PostgreSQL's; SQLite relies on the chain alone")
    await some_history(api)
    everything = select(EVENTS).order_by(EVENTS.c.id)
    async with api.runtime.engine.connect() as conn:
        before = (await conn.execute(everything)).all()
    for statement in (
        update(EVENTS).where(EVENTS.c.action == "auth.login").values(outcome="refused"),
        delete(EVENTS).where(EVENTS.c.outcome == "refused"),
        delete(EVENTS),
    ):
        with pytest.raises(DBAPIError, match=r"audit_events is append-only \(E-04\)"):
            async with api.runtime.engine.begin() as conn:
                await conn.execute(statement)
    async with api.runtime.engine.connect() as conn:
        assert (await conn.execute(everything)).all() == before


# ---------------------------------------------------------------- the chain as written


async def test_events_are_numbered_from_1_and_each_links_to_the_one_before(api: Api) -> None:
    await some_history(api)
    events = await rows(api)
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert [e["previous_hash"] for e in events] == [GENESIS] + [e["hash"] for e in events[:-1]]
    async with api.runtime.engine.connect() as conn:
        chain_row = (await conn.execute(select(AuditChain.sequence, AuditChain.hash))).one()
    assert tuple(chain_row) == (events[-1]["sequence"], events[-1]["hash"])


def independent_hash(event: dict[str, Any]) -> str:
    """An auditor's own implementation of the documented recipe, from the API's JSON and RFC 8785."""
    at = datetime.fromisoformat(event["at"])
    fields = [
        "ggzy.audit.event.1",
        event["sequence"],
        event["previous_hash"],
        event["id"],
        (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1),
        event["actor_user_id"],
        event["actor_organisation_id"],
        event["actor_roles"],
        event["action"],
        event["object_type"],
        event["object_id"],
        event["outcome"],
        hashlib.sha256(rfc8785.dumps(event["detail"])).hexdigest(),
    ]
    return hashlib.sha256(rfc8785.dumps(fields)).hexdigest()


async def test_an_auditor_recomputes_every_published_event_hash_from_the_documented_recipe(api: Api) -> None:
    centre, _auditor = await some_history(api)
    r = await api.get("/api/v1/audit", centre, params={"limit": 200})
    events = sorted(r.json()["items"], key=lambda e: e["sequence"])
    assert len(events) > 10
    assert {e["action"] for e in events} >= {"centre.bootstrap", "auth.login", "tender.create", "user.create"}
    refused = next(e for e in events if e["outcome"] == "refused")
    assert (refused["actor_roles"], refused["detail"]) == ([], {"reason": "wrong password"})
    assert next(e for e in events if e["action"] == "tender.create")["actor_roles"] == ["agency"]
    assert [independent_hash(e) for e in events] == [e["hash"] for e in events]


async def test_a_transaction_that_rolls_back_writes_no_event_and_a_savepoint_drops_only_its_own(
    api: Api,
) -> None:
    actor = Principal(uuid.uuid4(), uuid.uuid4(), frozenset({"centre"}), "someone")
    now = api.clock.now()
    with pytest.raises(RuntimeError):
        async with transaction(api.runtime.sessionmaker) as session:
            await accounts.record(session, actor, "test.lost", "thing", "1", now)
            raise RuntimeError("the request fails after recording")
    assert await rows(api) == []
    async with transaction(api.runtime.sessionmaker) as session:
        await accounts.record(session, actor, "test.outer", "thing", "1", now)
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                await accounts.record(session, actor, "test.inner_rolled_back", "thing", "2", now)
                raise RuntimeError("the savepoint fails")
        async with session.begin_nested():
            await accounts.record(session, actor, "test.inner_released", "thing", "3", now)
    assert [(e["sequence"], e["action"]) for e in await rows(api)] == [
        (1, "test.outer"),
        (2, "test.inner_released"),
    ]


async def test_a_detail_the_chain_cannot_carry_is_refused_where_it_is_recorded(api: Api) -> None:
    async with transaction(api.runtime.sessionmaker) as session:
        with pytest.raises(TypeError, match=r"detail\.rate: a float"):
            await accounts.record(session, None, "test.float", "thing", "1", api.clock.now(), rate=0.1)
    assert await rows(api) == []


# ---------------------------------------------------------------- concurrent writers (PostgreSQL)


def postgresql_only(database: Database) -> None:
    if database.backend != "postgresql":
        pytest.skip("SQLite serialises writers with BEGIN IMMEDIATE; the race is PostgreSQL's")


async def test_concurrent_writers_keep_the_chain_gapless_and_valid(
    database: Database, clock: SettableClock
) -> None:
    postgresql_only(database)
    writers, each = 12, 5
    everyone_inside = asyncio.Barrier(writers)

    async def writer(w: int) -> None:
        async with transaction(database.sessionmaker) as session:
            for i in range(each):
                await accounts.record(session, None, "test.write", "writer", w, clock.now(), i=i)
            await session.execute(text("SELECT 1"))  # the transaction is open on the server
            await everyone_inside.wait()  # no one commits before every writer has recorded its events

    await asyncio.gather(*(writer(w) for w in range(writers)))
    async with database.engine.connect() as conn:
        stored = (await conn.execute(select(EVENTS).order_by(EVENTS.c.sequence))).all()
    assert [e.sequence for e in stored] == list(range(1, writers * each + 1))
    for w in range(writers):
        mine = [e for e in stored if e.object_id == str(w)]
        # one commit inserts a writer's events together, in the order it recorded them
        assert [e.sequence for e in mine] == list(range(mine[0].sequence, mine[0].sequence + each))
        assert [e.detail["i"] for e in mine] == list(range(each))
    async with audit.snapshot(database.sessionmaker) as session:
        report = await audit.verify(session, LogSigner.from_secret("s").public_raw)
    assert report.ok, report.checks
    assert report.events == writers * each


async def test_the_chain_is_locked_only_while_a_writer_commits(
    database: Database, clock: SettableClock
) -> None:
    postgresql_only(database)
    async with database.sessionmaker() as first, first.begin():
        await accounts.record(first, None, "test.first", "writer", "first", clock.now())
        await first.execute(text("SELECT 1"))
        async with database.engine.connect() as watcher:
            held = await watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = 'audit_chain'"
                )
            )
        assert held == 0  # recording took no lock: the first writer's request holds nothing yet
        async with transaction(database.sessionmaker) as second:
            # were the chain locked by the first (still open) writer, this would fail instead of hang
            await second.execute(text("SET LOCAL lock_timeout = '10s'"))
            await accounts.record(second, None, "test.second", "writer", "second", clock.now())
    async with database.engine.connect() as conn:
        order = (
            await conn.execute(select(EVENTS.c.sequence, EVENTS.c.action).order_by(EVENTS.c.sequence))
        ).all()
    # the chain is in commit order: the second writer committed first
    assert [tuple(row) for row in order] == [(1, "test.second"), (2, "test.first")]


# ---------------------------------------------------------------- signed heads, published


async def platform_key(api: Api) -> bytes:
    return base64.b64decode((await api.get("/api/v1/transparency/key")).json()["public_key"])


async def test_the_chronograph_signs_the_head_once_the_trail_moved_and_the_last_head_is_due(api: Api) -> None:
    agency = await api.organisation("agency")
    assert (await api.get(HEAD)).status_code == 404
    await api.tick()
    first = (await api.get(HEAD)).json()
    events = await rows(api)
    assert (first["sequence"], first["events"], first["chain_hash"]) == (1, len(events), events[-1]["hash"])
    assert set(first) == {"version", "sequence", "events", "chain_hash", "signed_at", "key_id", "signature"}
    assert first["signed_at"] == api.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert auditchain.verify_head(auditchain.head_from_json(first), await platform_key(api))
    await api.draft(agency, custodians=[])
    api.clock.advance(timedelta(minutes=9, seconds=59))
    await api.tick()
    assert (await api.get(HEAD)).json() == first  # moved, but the last head is not ten minutes old
    api.clock.advance(timedelta(seconds=1))
    await api.tick()
    second = (await api.get(HEAD)).json()
    events = await rows(api)
    assert (second["sequence"], second["events"], second["chain_hash"]) == (
        2,
        len(events),
        events[-1]["hash"],
    )
    api.clock.advance(timedelta(hours=3))
    await api.tick()
    assert (await api.get(HEAD)).json() == second  # the trail has not moved: nothing new to sign
    listed = (await api.get(HEADS)).json()
    assert listed == {"heads": [first, second], "next": None}


async def test_the_heads_are_listed_a_page_at_a_time_and_found_by_their_sequence(api: Api) -> None:
    agency = await api.organisation("agency")
    signed = []
    for _ in range(3):
        await api.draft(agency, custodians=[])
        api.clock.advance(timedelta(minutes=10))
        await api.tick()
        signed.append((await api.get(HEAD)).json())
    page = (await api.get(HEADS, params={"limit": 2})).json()
    assert [h["sequence"] for h in signed] == [1, 2, 3]
    page = (await api.get(HEADS, params={"limit": 2})).json()
    assert page == {"heads": signed[:2], "next": 2}
    rest = (await api.get(HEADS, params={"limit": 2, "after": page["next"]})).json()
    assert rest == {"heads": signed[2:], "next": None}
    r = await api.get(f"{HEADS}/2")
    assert r.json() == signed[1]
    missing = await api.get(f"{HEADS}/4")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "The audit trail has no signed head number 4."


async def forge_from(api: Api, sequence: int, outcome: str) -> None:
    """The insider's rewrite: event `sequence` gets another outcome, and every hash from there on (and
    the chain row) is recomputed with the published recipe, so the chain is whole again."""
    events = await rows(api)
    statements: list[Executable] = []
    previous = events[sequence - 2]["hash"] if sequence > 1 else GENESIS
    for e in events[sequence - 1 :]:
        changed = outcome if e["sequence"] == sequence else e["outcome"]
        link = auditchain.Event(
            e["sequence"],
            previous,
            str(e["id"]),
            e["at"],
            None if e["actor_user_id"] is None else str(e["actor_user_id"]),
            None if e["actor_organisation_id"] is None else str(e["actor_organisation_id"]),
            tuple(e["actor_roles"]),
            e["action"],
            e["object_type"],
            e["object_id"],
            changed,
            auditchain.detail_hash(e["detail"]),
        )
        statements.append(
            update(EVENTS)
            .where(EVENTS.c.id == e["id"])
            .values(outcome=changed, previous_hash=previous, hash=auditchain.link_hash(link))
        )
        previous = auditchain.link_hash(link)
    statements.append(update(CHAIN).values(hash=previous))
    await insider(api, *statements)


async def test_a_rewritten_and_rehashed_trail_is_caught_by_the_signed_and_the_kept_heads(api: Api) -> None:
    _centre, auditor = await some_history(api)
    await api.tick()
    kept = (await api.get(HEAD)).json()
    await forge_from(api, 3, "refused")
    body = await verify(api, auditor)
    assert failed(body) == [HEADS_MATCH]  # every event hashes and links: only the signed head tells
    [offender] = check(body, HEADS_MATCH)["offenders"]
    assert offender["sequence"] == kept["sequence"]
    assert offender["detail"].endswith(f"the head was signed over {kept['chain_hash'][:16]}…")
    r = await api.post(VERIFY, auditor, json={"head": kept})
    assert r.status_code == 200, r.text
    assert failed(r.json()) == [HEADS_MATCH, KEPT_HELD, KEPT_EXTENDED]


async def test_a_truncated_trail_with_its_heads_removed_is_caught_by_a_kept_head_alone(api: Api) -> None:
    _centre, auditor = await some_history(api)
    await api.tick()
    kept = (await api.get(HEAD)).json()
    events = await rows(api)
    last_kept = events[-3]
    await insider(
        api,
        delete(EVENTS).where(EVENTS.c.sequence > last_kept["sequence"]),
        update(CHAIN).values(sequence=last_kept["sequence"], hash=last_kept["hash"]),
        delete(HEADS_TABLE),
    )
    assert (await verify(api, auditor))["ok"] is True  # the trail is whole in itself
    r = await api.post(VERIFY, auditor, json={"head": kept, "limit": 5})
    body = r.json()
    assert failed(body) == [KEPT_HELD, KEPT_EXTENDED]
    assert check(body, KEPT_HELD)["offenders"] == [
        {
            "sequence": kept["sequence"],
            "event_id": None,
            "detail": f"kept head {kept['sequence']}: the trail ends at event {last_kept['sequence']}; "
            f"the head covers {kept['events']} events",
        }
    ]


async def test_a_kept_head_the_trail_extends_passes_and_one_by_another_key_does_not(api: Api) -> None:
    _centre, auditor = await some_history(api)
    await api.tick()
    kept = (await api.get(HEAD)).json()
    await api.organisation("bidder")  # the trail moves on after the head
    r = await api.post(VERIFY, auditor, json={"head": kept})
    assert r.json()["ok"] is True
    assert check(r.json(), KEPT_HELD)["detail"] == f"event {kept['events']} ends {kept['chain_hash'][:16]}…"
    assert check(r.json(), KEPT_EXTENDED)["detail"] == "3 events since"  # organisation, user, sign-in
    other = LogSigner.from_secret("another installation")
    foreign = auditchain.head_to_json(
        auditchain.sign_head(auditchain.head_from_json(kept).head, other.private)
    )
    r = await api.post(VERIFY, auditor, json={"head": foreign})
    assert failed(r.json()) == [KEPT_SIGNED]
    assert check(r.json(), KEPT_SIGNED)["offenders"][0]["detail"].startswith(
        f"kept head {kept['sequence']}: signed by key id {other.key_id}, not the platform key "
    )


async def test_an_auditor_signs_a_head_on_demand_and_the_act_is_audited(api: Api) -> None:
    _centre, auditor = await some_history(api)
    r = await api.post("/api/v1/audit/heads", auditor)
    assert r.status_code == 201, r.text
    head = r.json()
    assert head == (await api.get(HEAD)).json()
    events = await rows(api)
    # the head covers everything before the request; the request itself is the next event
    assert (head["sequence"], head["events"], head["chain_hash"]) == (1, len(events) - 1, events[-2]["hash"])
    assert (events[-1]["action"], events[-1]["object_id"]) == ("audit.sign_head", "1")
    assert events[-1]["detail"] == {"events": head["events"], "chain_hash": head["chain_hash"]}
    await api.tick()
    assert (await api.get(HEAD)).json() == head  # the chronograph's next head is due ten minutes later
    api.clock.advance(timedelta(minutes=10))
    await api.tick()
    newest = (await api.get(HEAD)).json()
    assert (newest["sequence"], newest["events"]) == (2, len(events))
    again = await api.post("/api/v1/audit/heads", auditor)
    assert (again.status_code, again.json()) == (200, newest)  # nothing new since: the newest head


async def test_no_head_is_signed_over_a_trail_that_no_longer_extends_the_last_one(api: Api) -> None:
    _centre, auditor = await some_history(api)
    await api.tick()
    await api.organisation("bidder")
    edited = (await rows(api))[-1]
    await insider(api, update(EVENTS).where(EVENTS.c.id == edited["id"]).values(outcome="refused"))
    async with api.runtime.engine.connect() as conn:
        heads_before = (await conn.execute(select(HEADS_TABLE))).all()
    r = await api.post("/api/v1/audit/heads", auditor)
    assert r.status_code == 409, r.text
    assert r.json()["offenders"] == [
        f"event {edited['sequence']} ({edited['id']}): " + r.json()["offenders"][0].split(": ", 1)[1]
    ]
    api.clock.advance(timedelta(hours=1))
    await api.tick()  # the chronograph refuses as well (and says so in the log)
    async with api.runtime.engine.connect() as conn:
        assert (await conn.execute(select(HEADS_TABLE))).all() == heads_before


# ---------------------------------------------------------------- ggzy verify audit, ggzy audit sign


async def ggzy(api: Api, var_dir: Path, *args: str) -> Result:
    """Run the `ggzy` CLI against the test database with the test installation's key (in a thread: the
    command runs its own event loop)."""
    env = {
        "GGZY_DATABASE_URL": api.runtime.engine.url.render_as_string(hide_password=False),
        "GGZY_SECRET_KEY": api.runtime.settings.secret_key,
        "GGZY_LOG_SIGNING_KEY": "",
        "GGZY_VAR_DIR": str(var_dir),
    }
    return await asyncio.to_thread(CliRunner().invoke, ggzy_cli, list(args), env=env)


async def test_ggzy_verify_audit_checks_the_trail_and_a_kept_head_and_names_every_offender(
    api: Api, tmp_path: Path
) -> None:
    await some_history(api)
    await api.tick()
    kept = tmp_path / "HEAD.json"
    kept.write_text(json.dumps((await api.get(HEAD)).json()))
    events = await rows(api)
    n, last = len(events), events[-1]["hash"]
    ok = await ggzy(api, tmp_path, "verify", "audit", "--head", str(kept))
    assert ok.exit_code == 0, ok.output
    assert ok.output.splitlines() == [
        f"audit trail: {n} events, the chain ends at {n} with {last}; key id {api.runtime.signer.key_id} "
        "(this installation's key)",
        f"ok   sequence gapless from 1: {n} events, 1 to {n}",
        f"ok   events well formed: {n} events",
        f"ok   events hash to their stored hash: {n} events",
        f"ok   each event links to the one before: {n} links, the trail ends {last[:16]}…",
        f"ok   the chain row names the last event: event {n}",
        "ok   signed heads match the trail: 1 signed head",
        f"ok   the kept head is signed by the platform key: head 1, key id {api.runtime.signer.key_id}",
        f"ok   the trail still holds the kept head: event {n} ends {last[:16]}…",
        "ok   the trail extends the kept head: 0 events since",
    ]
    await insider(api, update(EVENTS).where(EVENTS.c.sequence.in_([2, 4, 5])).values(outcome="forged"))
    bad = await ggzy(api, tmp_path, "verify", "audit", "--head", str(kept), "--limit", "2")
    assert bad.exit_code == 1, bad.output
    lines = bad.output.splitlines()
    at = lines.index(f"FAIL events hash to their stored hash: 3 of {n} events; the first 2 are named")
    assert [line.split(":")[0] for line in lines[at + 1 : at + 3]] == [
        f"       - event 2 ({events[1]['id']})",
        f"       - event 4 ({events[3]['id']})",
    ]
    assert lines[at + 3] == "       … 1 more not listed (limit 2)"
    assert lines[at + 4].startswith("ok   each event links to the one before")


async def test_ggzy_verify_audit_checks_heads_with_a_pinned_or_a_fetched_key(
    api: Api, tmp_path: Path
) -> None:
    await some_history(api)
    await api.tick()
    other = base64.b64encode(LogSigner.from_secret("another installation").public_raw).decode()
    pinned = await ggzy(api, tmp_path, "verify", "audit", "--key", other)
    assert pinned.exit_code == 1
    assert "FAIL signed heads match the trail: 1 problems with 1 signed head" in pinned.output
    assert "(pinned with --key)" in pinned.output.splitlines()[0]
    both = await ggzy(api, tmp_path, "verify", "audit", "--key", other, "--fetch-key")
    assert (both.exit_code, "give --key or --fetch-key, not both" in both.output) == (2, True)
    with socket.socket() as listening:
        # bound and listening before the server starts, so the command's request simply waits for it
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        url = f"http://127.0.0.1:{listening.getsockname()[1]}"
        app = create_app(api.runtime, manage_runtime=False)
        server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
        serving = asyncio.create_task(server.serve(sockets=[listening]))
        try:
            fetched = await ggzy(api, tmp_path, "verify", "audit", "--fetch-key", "--url", url)
        finally:
            server.should_exit = True
            await serving
    assert fetched.exit_code == 0, fetched.output
    assert (
        f"key id {api.runtime.signer.key_id} (fetched from {url}: compare this fingerprint with one you trust)"
        in fetched.output
    )


async def test_ggzy_audit_sign_writes_a_head_that_ggzy_verify_audit_accepts(api: Api, tmp_path: Path) -> None:
    await some_history(api)
    head = tmp_path / "HEAD.json"
    signed = await ggzy(api, tmp_path, "audit", "sign", "--out", str(head))
    assert signed.exit_code == 0, signed.output
    kept = json.loads(head.read_text())
    assert kept == (await api.get(HEAD)).json()
    assert json.loads(signed.output) == kept
    assert (await rows(api))[-1]["action"] == "audit.sign_head"
    checked = await ggzy(api, tmp_path, "verify", "audit", "--head", str(head))
    assert checked.exit_code == 0, checked.output


async def test_ggzy_verify_audit_refuses_a_head_file_that_is_not_a_head(api: Api, tmp_path: Path) -> None:
    await some_history(api)
    await api.tick()
    tree_head = tmp_path / "tree.json"
    tree_head.write_text(json.dumps({"log_id": "ggzy/bids/v1", "tree_size": 3, "version": "x"}))
    result = await ggzy(api, tmp_path, "verify", "audit", "--head", str(tree_head))
    assert result.exit_code == 1
    assert result.output == "FAIL the kept head is not a signed head of the audit trail: sequence: missing\n"
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\xff{")
    result = await ggzy(api, tmp_path, "verify", "audit", "--head", str(garbage))
    assert result.exit_code == 1
    assert result.output.startswith("FAIL the kept head is not a signed head of the audit trail: ")


# ---------------------------------------------------------------- existing databases


LEGACY = sa.table(
    "audit_events",
    sa.column("id", sa.Uuid()),
    sa.column("at", UTCDateTime()),
    sa.column("actor_user_id", sa.Uuid()),
    sa.column("actor_organisation_id", sa.Uuid()),
    sa.column("action", sa.String()),
    sa.column("object_type", sa.String()),
    sa.column("object_id", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("detail", JSONType),
)


@asynccontextmanager
async def fresh_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'legacy.db'}"
        return
    if not PG_URL:
        unavailable("PostgreSQL", "GGZY_TEST_DATABASE_URL is not set")
    async with scratch_database(PG_URL, "ggzy_t_audit") as url:
        yield url


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_migration_chains_existing_events_in_time_order_deterministically(
    backend: str, tmp_path: Path
) -> None:
    t = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    legacy = [
        {"at": t + timedelta(seconds=s), "id": uuid.UUID(int=i), "outcome": o, "detail": d}
        for s, i, o, d in [
            (3, 9, "ok", {"kind": "bidder"}),
            (1, 7, "refused", {"reason": "wrong password", "status": 401}),
            (1, 2, "ok", {}),  # the same instant as the one above: the id decides
            (2, 5, "ok", {"fields": ["title"], "nested": {"b": 1, "a": None}}),
        ]
    ]
    async with fresh_database(backend, tmp_path) as url:
        await upgrade_async(url, "0006")
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    insert(LEGACY),
                    [
                        {
                            **row,
                            "actor_user_id": uuid.UUID(int=100),
                            "actor_organisation_id": None,
                            "action": "auth.login",
                            "object_type": "user",
                            "object_id": "u1",
                        }
                        for row in legacy
                    ],
                )
            await upgrade_async(url, "head")
            first = await chained(engine)
            expected_order = [uuid.UUID(int=i) for i in (2, 7, 5, 9)]
            assert [row["id"] for row in first] == expected_order
            assert [row["sequence"] for row in first] == [1, 2, 3, 4]
            assert all(row["actor_roles"] == [] for row in first)
            previous = GENESIS
            for row in first:
                assert row["previous_hash"] == previous
                assert row["hash"] == independent_hash(api_form(row))
                previous = row["hash"]
            await asyncio.to_thread(command.downgrade, alembic_config(url), "0006")
            await upgrade_async(url, "head")
            assert await chained(engine) == first  # the same chain again
            sessionmaker = create_sessionmaker(engine)
            async with transaction(sessionmaker) as session:
                await accounts.record(session, None, "test.after", "thing", "1", t + timedelta(days=1))
            async with audit.snapshot(sessionmaker) as session:
                report = await audit.verify(session, LogSigner.from_secret("s").public_raw)
            assert report.ok, report.checks
            assert report.events == 5
        finally:
            await engine.dispose()


async def chained(engine: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(EVENTS).order_by(EVENTS.c.sequence))]


def api_form(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the API writes it (ids and the instant as text)."""
    return {
        **row,
        "id": str(row["id"]),
        "at": row["at"].isoformat(),
        "actor_user_id": None if row["actor_user_id"] is None else str(row["actor_user_id"]),
        "actor_organisation_id": None
        if row["actor_organisation_id"] is None
        else str(row["actor_organisation_id"]),
    }
