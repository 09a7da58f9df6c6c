"""The audit trail on the database (E-04): events chained as their transaction commits, signed heads kept
and published, and the check that re-derives the chain from the stored rows.

**Chained at commit.** Every request writes audit events, so a lock held for a whole request would
serialise the platform. `accounts.service.record` therefore only stages an event in its session. As the
session's outermost transaction commits, `_chain_staged` (a `before_commit` hook) flushes the rest of the
unit of work first, then locks the chain row (`audit_chain`, `SELECT … FOR UPDATE`), numbers the staged
events after the chain's last one, links each to the one before (`accounts.auditchain`), inserts them in
one statement and moves the chain row; the COMMIT follows at once and releases the lock. The lock is held
for those few rows and the COMMIT only, never for a request's own work. The chain is in commit order, so
the sequence has no gap and no two transactions ever link to the same event; an event's time is when its
action happened, which may be a little earlier than an event numbered before it. Events staged inside a
savepoint that rolls back go with it; a transaction that rolls back writes none. On SQLite writers are
serialised by `BEGIN IMMEDIATE` anyway.

**Signed heads.** `sign` states the trail's head (how many events, the last one's hash) as head number n+1,
after checking that the events since head n extend it, and signs it with the platform's log key; the
chronograph does so whenever the trail has moved and the newest head is `GGZY_AUDIT_HEAD_MINUTES` old
(`sign_if_due`), and the centre, supervisors and auditors on demand. The heads carry sizes and hashes
only and are public.

**The check.** `verify` streams the events in sequence order through `auditchain.Verifier` in one
consistent snapshot (REPEATABLE READ on PostgreSQL) and compares the chain row, every stored head and
an auditor's kept head with it, naming every offender up to a limit.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import Table, event, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from accounts import auditchain
from accounts.models import AuditChain, AuditEvent, AuditHead
from accounts.schemas import AuditReport
from storage.db import READ_ONLY, upsert_ignore
from storage.pagination import check_limit
from storage.problems import Conflict, NotFound
from storage.signing import LogSigner

_EVENTS = cast(Table, AuditEvent.__table__)
_CHAIN = cast(Table, AuditChain.__table__)
_HEADS = cast(Table, AuditHead.__table__)
_STAGED: Final = "ggzy.audit.staged"
# Events read per query when checking the chain.
BATCH: Final = 5000


# ---------------------------------------------------------------- chaining at commit


@dataclass(frozen=True)
class _Staged:
    """An event waiting for its transaction's commit: the row without its place in the chain, the hash
    of its details, and the (nested) transaction it was staged in."""

    row: dict[str, Any]
    detail_sha256: str
    within: SessionTransaction | None


def stage(
    session: AsyncSession,
    *,
    at: datetime,
    actor_user_id: uuid.UUID | None,
    actor_organisation_id: uuid.UUID | None,
    actor_roles: list[str],
    action: str,
    object_type: str,
    object_id: str,
    outcome: str,
    detail: Mapping[str, Any],
) -> None:
    """Stage one event in `session`: it is chained and written as the session's transaction commits.
    The details are normalised and hashed now, so a value the chain cannot carry (a float, a naive
    instant) is refused here, at the caller, rather than at the commit."""
    auditchain.micros(at)
    stored = auditchain.normalise(dict(detail))
    row = {
        "id": uuid.uuid4(),
        "at": at,
        "actor_user_id": actor_user_id,
        "actor_organisation_id": actor_organisation_id,
        "actor_roles": list(actor_roles),
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "outcome": outcome,
        "detail": stored,
    }
    sync = session.sync_session
    within = sync.get_nested_transaction() or sync.get_transaction()
    sync.info.setdefault(_STAGED, []).append(_Staged(row, auditchain.detail_hash(stored), within))


def _lock_chain(session: Session) -> tuple[int, str]:
    """Lock the chain row (creating it for the first event): the last sequence number and hash."""
    query = select(_CHAIN.c.sequence, _CHAIN.c.hash).where(_CHAIN.c.id == 1).with_for_update()
    row = session.execute(query).first()
    if row is None:
        session.execute(
            upsert_ignore(session, AuditChain, {"id": 1, "sequence": 0, "hash": auditchain.GENESIS})
        )
        row = session.execute(query).first()
        assert row is not None
    return int(row[0]), str(row[1])


def _link(staged: _Staged, sequence: int, previous: str) -> dict[str, Any]:
    row = staged.row
    link = auditchain.Event(
        sequence,
        previous,
        str(row["id"]),
        row["at"],
        None if row["actor_user_id"] is None else str(row["actor_user_id"]),
        None if row["actor_organisation_id"] is None else str(row["actor_organisation_id"]),
        tuple(row["actor_roles"]),
        row["action"],
        row["object_type"],
        row["object_id"],
        row["outcome"],
        staged.detail_sha256,
    )
    return {**row, "sequence": sequence, "previous_hash": previous, "hash": auditchain.link_hash(link)}


@event.listens_for(Session, "before_commit")
def _chain_staged(session: Session) -> None:
    """Chain and insert the events staged in the committing transaction, holding the chain row's lock
    from here to the COMMIT only (a savepoint's release waits for the outermost commit)."""
    if session.in_nested_transaction():
        return
    staged: list[_Staged] | None = session.info.pop(_STAGED, None)
    if not staged:
        return
    session.flush()  # the rest of the unit of work first, so the lock below covers only the audit rows
    sequence, previous = _lock_chain(session)
    rows = []
    for item in staged:
        sequence += 1
        rows.append(_link(item, sequence, previous))
        previous = rows[-1]["hash"]
    session.execute(insert(_EVENTS), rows)
    session.execute(update(_CHAIN).where(_CHAIN.c.id == 1).values(sequence=sequence, hash=previous))


def _inside(within: SessionTransaction | None, ended: SessionTransaction) -> bool:
    if within is None:
        return ended.parent is None
    node: SessionTransaction | None = within
    while node is not None:
        if node is ended:
            return True
        node = node.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous: SessionTransaction) -> None:
    """Events staged in a transaction (or savepoint) that rolled back are never written."""
    staged: list[_Staged] | None = session.info.get(_STAGED)
    if staged:
        session.info[_STAGED] = [item for item in staged if not _inside(item.within, previous)]


@event.listens_for(Session, "after_transaction_end")
def _forget_on_end(session: Session, transaction: SessionTransaction) -> None:
    """Nothing staged outlives its session's outermost transaction (a session closed without commit)."""
    if transaction.parent is None:
        session.info.pop(_STAGED, None)


# ---------------------------------------------------------------- signed heads


def _signed(row: Any) -> auditchain.SignedHead:
    head = auditchain.Head(int(row.sequence), int(row.events), row.chain_hash, row.signed_at)
    return auditchain.SignedHead(head, row.key_id, base64.b64decode(row.signature))


async def chain_head(session: AsyncSession) -> tuple[int, str]:
    """The trail's last sequence number and hash as committed (0 and GENESIS while empty); no lock."""
    row = (await session.execute(select(_CHAIN.c.sequence, _CHAIN.c.hash).where(_CHAIN.c.id == 1))).first()
    return (0, auditchain.GENESIS) if row is None else (int(row[0]), str(row[1]))


async def newest_head(session: AsyncSession) -> auditchain.SignedHead | None:
    """The newest signed head, or None before the first."""
    row = (await session.execute(select(_HEADS).order_by(_HEADS.c.sequence.desc()).limit(1))).first()
    return None if row is None else _signed(row)


async def head_at(session: AsyncSession, sequence: int) -> auditchain.SignedHead:
    """Signed head number `sequence`, or 404."""
    row = (await session.execute(select(_HEADS).where(_HEADS.c.sequence == sequence))).first()
    if row is None:
        raise NotFound(f"The audit trail has no signed head number {sequence}.")
    return _signed(row)


async def list_heads(
    session: AsyncSession, *, after: int, limit: int
) -> tuple[list[auditchain.SignedHead], int | None]:
    """Signed heads numbered after `after`, oldest first, one page; the `after` of the next page or None
    at the end."""
    limit = check_limit(limit)
    rows = (
        await session.execute(
            select(_HEADS).where(_HEADS.c.sequence > after).order_by(_HEADS.c.sequence).limit(limit + 1)
        )
    ).all()
    heads = [_signed(row) for row in rows[:limit]]
    return heads, heads[-1].head.sequence if len(rows) > limit else None


class ChainBroken(Conflict):
    """The events after the newest signed head do not extend it: no head is signed over them."""

    def __init__(self, checks: list[auditchain.Check]) -> None:
        named = [str(o) for c in checks for o in c.offenders]
        super().__init__(
            "The audit trail does not extend its last signed head, so no new head is signed over it; "
            "GET /api/v1/audit/verify names what is wrong.",
            offenders=named,
        )
        self.checks = checks


async def _events(
    session: AsyncSession, after: int, through: int | None = None
) -> AsyncIterator[list[auditchain.StoredEvent]]:
    """The stored events after sequence `after` (to `through`), in sequence order, a batch at a time."""
    while True:
        query = select(_EVENTS).where(_EVENTS.c.sequence > after).order_by(_EVENTS.c.sequence).limit(BATCH)
        if through is not None:
            query = query.where(_EVENTS.c.sequence <= through)
        rows = (await session.execute(query)).all()
        if not rows:
            return
        yield [_stored(row) for row in rows]
        after = int(rows[-1].sequence)


def _stored(row: Any) -> auditchain.StoredEvent:
    return auditchain.StoredEvent(
        sequence=row.sequence,
        event_id=str(row.id),
        at=row.at,
        actor_user_id=None if row.actor_user_id is None else str(row.actor_user_id),
        actor_organisation_id=None if row.actor_organisation_id is None else str(row.actor_organisation_id),
        actor_roles=row.actor_roles,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        outcome=row.outcome,
        detail=row.detail,
        previous_hash=row.previous_hash,
        hash=row.hash,
    )


def _feed(checker: auditchain.Verifier, batch: list[auditchain.StoredEvent]) -> None:
    for stored in batch:
        checker.feed(stored)


async def _stream(
    checker: auditchain.Verifier, session: AsyncSession, after: int, through: int | None
) -> None:
    async for batch in _events(session, after, through):
        # hashing a batch is CPU work: off the event loop, so the server keeps answering meanwhile
        await asyncio.to_thread(_feed, checker, batch)


async def sign(
    session: AsyncSession, signer: LogSigner, now: datetime
) -> tuple[auditchain.SignedHead | None, bool]:
    """Sign the trail's head as committed now as the next head number, once the events since the newest
    signed head are checked to extend it; `ChainBroken` (409) if they do not. Answers the head and whether
    it is new: the newest head itself when the trail has not moved since, None while the trail is empty.
    Of two signers at once, one head stands (the numbers and the event counts are unique)."""
    events, chain_hash = await chain_head(session)
    newest = await newest_head(session)
    if newest is not None and newest.head.events == events:
        return newest, False
    if events == 0:
        return None, False
    start = (0, auditchain.GENESIS) if newest is None else (newest.head.events, newest.head.chain_hash)
    checker = auditchain.Verifier(start=start)
    await _stream(checker, session, start[0], events)
    checks = checker.finish((events, chain_hash), [], signer.public_raw)
    if not auditchain.all_ok(checks):
        raise ChainBroken([c for c in checks if not c.ok])
    number = 1 if newest is None else newest.head.sequence + 1
    signed = auditchain.sign_head(auditchain.Head(number, events, chain_hash, now), signer.private)
    await session.execute(
        upsert_ignore(
            session,
            AuditHead,
            {
                "sequence": number,
                "events": events,
                "chain_hash": chain_hash,
                "signed_at": now,
                "key_id": signed.key_id,
                "signature": base64.b64encode(signed.signature).decode(),
            },
        )
    )
    stored = await newest_head(session)
    assert stored is not None
    return stored, stored.signature == signed.signature


async def sign_if_due(
    session: AsyncSession, signer: LogSigner, now: datetime, interval: timedelta
) -> auditchain.SignedHead | None:
    """The chronograph's part: sign a head when the trail has moved since the newest signed head and that
    head is at least `interval` old (or there is none). Answers the new head, or None."""
    events, _ = await chain_head(session)
    newest = await newest_head(session)
    if events == 0 or (newest is not None and newest.head.events == events):
        return None
    if newest is not None and now - newest.head.signed_at < interval:
        return None
    signed, new = await sign(session, signer, now)
    return signed if new else None


# ---------------------------------------------------------------- the check


@asynccontextmanager
async def snapshot(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A read-only transaction that sees one moment throughout (REPEATABLE READ on PostgreSQL; SQLite's
    read transaction keeps its snapshot anyway), so events committed meanwhile do not look like offenders."""
    async with sessionmaker() as session, session.begin():
        bind = session.bind
        if bind is not None and bind.dialect.name == "postgresql":
            await session.connection(
                execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
            )
        else:
            await session.connection(execution_options={READ_ONLY: True})
        yield session


@dataclass(frozen=True)
class Report:
    """What `verify` found: every check, how many events, where the chain ends, and the key used."""

    checks: list[auditchain.Check]
    events: int
    last_sequence: int
    last_hash: str
    key_id: str
    limit: int

    @property
    def ok(self) -> bool:
        return auditchain.all_ok(self.checks)


async def verify(
    session: AsyncSession,
    public_raw: bytes,
    *,
    kept: auditchain.SignedHead | None = None,
    limit: int = auditchain.DEFAULT_LIMIT,
) -> Report:
    """Check the whole audit trail from the stored rows (`auditchain.CHECKS`): the sequence, each event's
    form and hash, each link, the chain row, every stored signed head against the key `public_raw`, and,
    given `kept` (a head an auditor kept), that it is signed by that key and the trail still holds and
    extends it. Each check names every
    offender up to `limit`. Run it in a `snapshot`."""
    heads = [
        _signed(row) for row in (await session.execute(select(_HEADS).order_by(_HEADS.c.sequence))).all()
    ]
    watch = {h.head.events for h in heads} | ({kept.head.events} if kept is not None else set())
    checker = auditchain.Verifier(limit, watch, kept_events=None if kept is None else kept.head.events)
    chain_row = (
        await session.execute(select(_CHAIN.c.sequence, _CHAIN.c.hash).where(_CHAIN.c.id == 1))
    ).first()
    await _stream(checker, session, 0, None)
    checks = checker.finish(
        None if chain_row is None else (int(chain_row[0]), str(chain_row[1])), heads, public_raw, kept
    )
    return Report(
        checks, checker.events, checker.last_sequence, checker.last_hash, auditchain.key_id(public_raw), limit
    )


def report_json(report: Report) -> AuditReport:
    """A report as the API answers it."""
    return {
        "ok": report.ok,
        "events": report.events,
        "chain": {"sequence": report.last_sequence, "chain_hash": report.last_hash},
        "key_id": report.key_id,
        "limit": report.limit,
        "checks": [
            {
                "name": c.name,
                "ok": c.ok,
                "detail": c.detail,
                "offenders": [
                    {"sequence": o.sequence, "event_id": o.event_id, "detail": o.detail} for o in c.offenders
                ],
                "offenders_total": c.offenders_total,
            }
            for c in report.checks
        ],
    }
