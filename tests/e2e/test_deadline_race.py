"""The deadline falls while finalizes are in flight.

A bid counts if and only if its log event is appended before the tender's closing head, and its answer
follows the same decision: a finalize acknowledged (201 with a receipt) is in the closing head, its receipt
verifying against the published record; one refused is refused under W-07 and leaves nothing behind (no
bid, no log event, no copy in the record's key space, no claim). Finalizes are held mid-copy at a gate in
the object store while the test moves the clock and runs the chronograph, so the verdict never depends
on timing.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from httpx import Response
from sqlalchemy import func, select

from bidding import receipt as receipts
from bidding.models import BidEvent
from storage.clock import SettableClock
from storage.uploads import COPY, KEPT, ObjectClaim
from tests.conftest import Database, _api, _runtime
from tests.helpers import DEADLINE, Actor, Api, GatedStore, record_copies
from trading.models import Bid

T = "/api/v1/tenders"
PRICE = 4_800_000_000


@pytest.fixture
async def race(database: Database, clock: SettableClock, tmp_path: Path) -> AsyncIterator[Api]:
    store = GatedStore(
        tmp_path / "objects", "http://testserver", b"s" * 32, now=clock.now, holds=record_copies("bids")
    )
    rt = _runtime(database, clock, tmp_path, store=store)
    await store.ensure_ready()
    async for client in _api(rt):
        yield client
    await rt.queue.close()


@dataclass
class Ready:
    """A bidder whose envelope is uploaded; finalizing it is all that is left."""

    bidder: Actor
    object_key: str
    sha256: str


async def ready(api: Api, tender: dict[str, Any], price: int, bidder: Actor | None = None) -> Ready:
    """A bidder (a new one unless given) that holds the documents and its deposit and has uploaded a
    sealed envelope."""
    if bidder is None:
        bidder = await api.organisation("bidder")
        r = await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
        assert r.status_code == 200, r.text
        await api.pay_deposit(bidder, tender["lots"][0]["id"], only_if_missing=True)
    sealed = await api.seal(bidder, tender, price)
    grant = await api.post(
        f"{T}/{tender['id']}/bids/uploads", bidder, json={"filename": "bid.age", "size": len(sealed)}
    )
    assert grant.status_code == 201, grant.text
    await api.upload(grant.json(), sealed)
    return Ready(bidder, str(grant.json()["object_key"]), hashlib.sha256(sealed).hexdigest())


def finalize(api: Api, tender: dict[str, Any], bid: Ready) -> Any:
    return api.post(
        f"{T}/{tender['id']}/bids",
        bid.bidder,
        json={"lot_id": tender["lots"][0]["id"], "object_key": bid.object_key},
        headers={"Idempotency-Key": f"race-{secrets.token_hex(8)}"},
    )


def acknowledged(r: Response, bid: Ready) -> dict[str, Any]:
    assert r.status_code == 201, r.text
    receipt: dict[str, Any] = r.json()
    assert receipt["envelope_sha256"] == bid.sha256
    return receipt


def refused_late(r: Response) -> None:
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "W-07", r.text


async def recorded_envelopes(api: Api, tender: dict[str, Any]) -> list[str]:
    """The SHA-256 of every object in the tender's bid records, read back from the store."""
    folder = GatedStore.of(api).root / "records" / tender["code"] / "bids"
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.endswith("~meta"))
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in files)


async def closing_verdict(api: Api, tender: dict[str, Any], receipts_by_sha: dict[str, Any]) -> set[str]:
    """The envelopes the published closing head holds, after checking every acknowledged receipt against
    it offline under the log key."""
    key = (await api.get("/api/v1/transparency/key")).json()
    pin = receipts.KeyPin(base64.b64decode(key["public_key"]), "fetched from the test server")
    r = await api.get(f"{T}/{tender['id']}/closing")
    assert r.status_code == 200, r.text
    closing = r.json()
    for sha, receipt in receipts_by_sha.items():
        checks = receipts.verify(receipt, pin=pin, closing=closing)
        assert receipts.passed(checks), (sha, receipts.report(checks))
    return set(closing["envelopes"])


async def nothing_half_written(api: Api, tender: dict[str, Any], standing: set[str]) -> None:
    """The database holds a submitted bid, a kept copy and a log event for each standing envelope, and
    nothing for the refused ones; the store holds exactly the standing envelopes' copies."""
    tender_id = uuid.UUID(tender["id"])
    async with api.runtime.sessionmaker() as session:
        bids = list(await session.scalars(select(Bid).where(Bid.tender_id == tender_id)))
        events = await session.scalar(
            select(func.count()).select_from(BidEvent).where(BidEvent.tender_id == tender_id)
        )
        copies = list(
            await session.execute(
                select(ObjectClaim.key, ObjectClaim.state).where(
                    ObjectClaim.kind == COPY,
                    ObjectClaim.scope_id == tender_id,
                    ObjectClaim.key.startswith(f"records/{tender['code']}/bids/"),
                )
            )
        )
    assert {b.sha256 for b in bids} == standing
    assert events == len(bids)
    assert sorted(b.object_key for b in bids) == sorted(k for k, _ in copies)
    assert {state for _, state in copies} == {KEPT}
    assert await recorded_envelopes(api, tender) == sorted(standing)


async def test_finalizes_in_flight_when_the_tender_closes_are_refused_w07_and_leave_nothing(
    race: Api,
) -> None:
    api = race
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    early = [await ready(api, tender, PRICE - i) for i in range(3)]
    receipts_by_sha = {b.sha256: acknowledged(await finalize(api, tender, b), b) for b in early}
    # Just before the deadline: two new bidders and one replacing its bid start finalizing, and are still
    # copying their envelopes when the chronograph closes bidding.
    api.clock.set(DEADLINE - timedelta(seconds=1))
    late = [await ready(api, tender, PRICE - 10 - i) for i in range(2)]
    late.append(await ready(api, tender, PRICE - 20, bidder=early[0].bidder))
    after = await ready(api, tender, PRICE - 30)  # uploaded in time, finalized after the closing
    held = await GatedStore.of(api).hold([finalize(api, tender, bid) for bid in late])

    moved = await api.at(DEADLINE)
    assert moved == [(tender["code"], "opening")]
    refused_late(await finalize(api, tender, after))

    for r in await GatedStore.of(api).release(held):
        refused_late(r)
    standing = await closing_verdict(api, tender, receipts_by_sha)
    assert standing == {b.sha256 for b in early}  # the replaced bid stands: its replacement came too late
    await nothing_half_written(api, tender, standing)


async def test_a_finalize_that_started_before_the_deadline_counts_when_recorded_before_the_closing(
    race: Api,
) -> None:
    api = race
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    early = [await ready(api, tender, PRICE - i) for i in range(2)]
    receipts_by_sha = {b.sha256: acknowledged(await finalize(api, tender, b), b) for b in early}
    api.clock.set(DEADLINE - timedelta(seconds=1))
    slow = await ready(api, tender, PRICE - 10)
    held = await GatedStore.of(api).hold([finalize(api, tender, slow)])

    # The deadline passes on the clock, the copy ends and the bid is recorded; only then does the
    # chronograph close bidding: it arrived in time, and its log event precedes the closing head.
    api.clock.set(DEADLINE)
    [r] = await GatedStore.of(api).release(held)
    receipts_by_sha[slow.sha256] = acknowledged(r, slow)
    assert await api.tick() == [(tender["code"], "opening")]

    standing = await closing_verdict(api, tender, receipts_by_sha)
    assert standing == set(receipts_by_sha)
    await nothing_half_written(api, tender, standing)


async def test_a_withdrawal_that_reaches_the_log_after_the_closing_is_refused_w06(api: Api) -> None:
    """A withdrawal asked before the deadline that reaches the tender after the chronograph signed the
    closing head (it waited for the tender's lock, say) is refused as late under W-06: the bid stands in
    the head, and no withdrawal is logged."""
    agency = await api.organisation("agency")
    bidders = [await api.organisation("bidder", name=f"撤回集团{i}") for i in range(3)]
    tender = await api.published(agency)
    bids = [await api.bid(b, tender, price_fen=PRICE - i) for i, b in enumerate(bidders)]
    assert await api.at(DEADLINE) == [(tender["code"], "opening")]
    api.clock.set(DEADLINE - timedelta(seconds=1))  # the instant the withdrawal was asked
    r = await api.post(f"{T}/{tender['id']}/bids/{bids[0].bid_id}/withdraw", bidders[0])
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "W-06"
    mine = (await api.get(f"{T}/{tender['id']}/bids", bidders[0])).json()
    assert [b["status"] for b in mine] == ["submitted"]
