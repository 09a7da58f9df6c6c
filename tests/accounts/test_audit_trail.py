"""The audit trail (E-04) on the database: every event chained at commit, the head signed and published,
edits and deletions named by `GET /api/v1/audit/verify` and `ggzy verify audit`, and refused outright by
PostgreSQL's triggers.

An insider's edit is played with the database owner's rights: on PostgreSQL with
`session_replication_role = replica`, which a superuser may set and which switches the triggers off, so
the tests show what the chain catches when the triggers are gone too.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import rfc8785
from sqlalchemy import Table, delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

from accounts import audit
from accounts import service as accounts
from accounts.auditchain import GENESIS
from accounts.models import AuditChain, AuditEvent
from accounts.security import Principal
from storage.clock import SettableClock
from storage.db import transaction
from storage.signing import LogSigner
from tests.conftest import Database
from tests.helpers import Actor, Api

VERIFY = "/api/v1/audit/verify"
HEAD = "/api/v1/transparency/audit/head"
HEADS = "/api/v1/transparency/audit/heads"
EVENTS = cast(Table, AuditEvent.__table__)


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
