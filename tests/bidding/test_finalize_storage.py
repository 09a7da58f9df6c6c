"""Finalizing a bid against the store: the copy holds no write transaction, and no copy or upload of a
retried or duplicated submission is left behind."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text

from storage.clock import SettableClock
from tests.conftest import Database, _api, _runtime
from tests.helpers import Actor, Api, GatedStore, record_copies

T = "/api/v1/tenders"
PRICE = 4_800_000_000


@pytest.fixture
async def gated(database: Database, clock: SettableClock, tmp_path: Path) -> AsyncIterator[Api]:
    store = GatedStore(
        tmp_path / "objects", "http://testserver", b"s" * 32, now=clock.now, holds=record_copies("bids")
    )
    rt = _runtime(database, clock, tmp_path, store=store)
    await store.ensure_ready()
    async for client in _api(rt):
        yield client
    await rt.queue.close()


async def _ready_to_submit(api: Api) -> tuple[Actor, dict[str, Any], bytes]:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    assert (await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)).status_code == 200
    await api.pay_deposit(bidder, tender["lots"][0]["id"], only_if_missing=True)
    return bidder, tender, await api.seal(bidder, tender, PRICE)


async def _upload(api: Api, bidder: Actor, tender: dict[str, Any], sealed: bytes) -> str:
    grant = await api.post(
        f"{T}/{tender['id']}/bids/uploads", bidder, json={"filename": "bid.age", "size": len(sealed)}
    )
    assert grant.status_code == 201, grant.text
    await api.upload(grant.json(), sealed)
    return str(grant.json()["object_key"])


def _submit(api: Api, bidder: Actor, tender: dict[str, Any], key: str, sealed: bytes, idem: str) -> Any:
    return api.post(
        f"{T}/{tender['id']}/bids",
        bidder,
        json={
            "lot_id": tender["lots"][0]["id"],
            "object_key": key,
            "envelope_sha256": hashlib.sha256(sealed).hexdigest(),
        },
        headers={"Idempotency-Key": idem},
    )


async def _open_transactions(database: Database) -> int:
    """How many other connections hold a transaction open (PostgreSQL) or the write lock (SQLite)."""
    if database.backend == "sqlite":
        path = make_url(database.url).database
        assert path is not None
        raw = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            raw.execute("BEGIN IMMEDIATE")  # fails at once if any writer holds the database
            raw.execute("ROLLBACK")
            return 0
        except sqlite3.OperationalError:
            return 1
        finally:
            raw.close()
    async with database.engine.connect() as conn:
        count = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
            )
        )
    return int(count or 0)


async def test_finalize_copies_and_hashes_the_envelope_outside_any_transaction(
    gated: Api, database: Database
) -> None:
    api = gated
    store = GatedStore.of(api)
    bidder, tender, sealed = await _ready_to_submit(api)
    key = await _upload(api, bidder, tender, sealed)
    submitting = await store.hold([_submit(api, bidder, tender, key, sealed, "bid-outside-tx-1")])
    # mid-copy, every other writer may go ahead: no transaction is open, no write lock held
    assert await _open_transactions(database) == 0
    other = await api.organisation("bidder")  # a write of its own, while the copy waits
    assert other.organisation_id
    [r] = await store.release(submitting)
    assert r.status_code == 201, r.text


async def test_a_retried_submission_answered_from_its_first_answer_leaves_no_upload_behind(
    api: Api,
) -> None:
    bidder, tender, sealed = await _ready_to_submit(api)
    first = await _upload(api, bidder, tender, sealed)
    r = await _submit(api, bidder, tender, first, sealed, "bid-retried-001")
    assert r.status_code == 201, r.text
    again = await _upload(api, bidder, tender, sealed)  # the client lost the answer and uploaded again
    replay = await _submit(api, bidder, tender, again, sealed, "bid-retried-001")
    assert (replay.status_code, replay.headers["Idempotent-Replayed"]) == (201, "true")
    assert replay.json() == r.json()
    await api.run_jobs()
    assert await api.runtime.store.stat(first) is None
    assert await api.runtime.store.stat(again) is None
    assert _stored(api, f"records/{tender['code']}/bids") == [await _record_key(api, r.json()["bid_id"])]


async def test_two_finalizes_of_one_submission_at_once_keep_one_copy(gated: Api) -> None:
    api = gated
    store = GatedStore.of(api)
    bidder, tender, sealed = await _ready_to_submit(api)
    first = await _upload(api, bidder, tender, sealed)
    second = await _upload(api, bidder, tender, sealed)
    both = await store.hold(  # both are copying at once
        [
            _submit(api, bidder, tender, first, sealed, "bid-twice-00001"),
            _submit(api, bidder, tender, second, sealed, "bid-twice-00001"),
        ]
    )
    answers = await store.release(both)
    assert sorted(a.status_code for a in answers) in ([201, 201], [201, 409]), [a.text for a in answers]
    recorded = [a for a in answers if a.status_code == 201 and "Idempotent-Replayed" not in a.headers]
    assert len(recorded) == 1
    await api.run_jobs()
    assert _stored(api, f"records/{tender['code']}/bids") == [
        await _record_key(api, recorded[0].json()["bid_id"])
    ]
    assert await store.stat(first) is None or await store.stat(second) is None


def _stored(api: Api, prefix: str) -> list[str]:
    """Every object under `prefix` in the local store (sidecars and temporaries left out)."""
    root = api.runtime.store.root
    return sorted(
        str(p.relative_to(root))
        for p in (root / prefix).rglob("*")
        if p.is_file() and "~" not in p.name and not p.name.startswith(".")
    )


async def _record_key(api: Api, bid_id: str) -> str:
    import uuid

    from trading.models import Bid

    async with api.runtime.sessionmaker() as session:
        row = await session.get(Bid, uuid.UUID(bid_id))
    assert row is not None
    return str(row.object_key)
