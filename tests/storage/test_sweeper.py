"""Storage that can't be filled or leaked: the store caps every grant at its declared size, each
organisation has a quota per tender, and the sweeper removes expired uploads, open multipart uploads and
abandoned copies, never an object a record points to. On the local store and on SeaweedFS alike."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from storage import uploads
from storage.clock import SettableClock
from storage.objects import LocalObjectStore, UploadNotFound
from storage.uploads import ObjectClaim
from tests.conftest import Database, _api, _runtime
from tests.helpers import Actor, Api

T = "/api/v1/tenders"
PRICE = 4_800_000_000
PAST_EXPIRY = timedelta(hours=2) + uploads.UPLOAD_GRACE + timedelta(seconds=1)


@pytest.fixture(params=["local", "s3"])
async def any_api(
    request: pytest.FixtureRequest, database: Database, clock: SettableClock, tmp_path: Path, s3_store: Any
) -> AsyncIterator[Api]:
    """The app on the local store, then on SeaweedFS."""
    rt = _runtime(database, clock, tmp_path, store=s3_store if request.param == "s3" else None)
    await rt.store.ensure_ready()
    async for client in _api(rt):
        yield client
    await rt.queue.close()


async def _holder(api: Api) -> tuple[Actor, dict[str, Any]]:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    assert (await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)).status_code == 200
    return bidder, tender


async def _grant(api: Api, bidder: Actor, tender: dict[str, Any], size: int) -> httpx.Response:
    return await api.post(
        f"{T}/{tender['id']}/bids/uploads", bidder, json={"filename": "bid.age", "size": size}
    )


async def _send(api: Api, grant: dict[str, Any], content: bytes) -> int:
    """Upload as granted, answering the store's status (no assertion: refusals are what we test)."""
    if grant["method"] == "POST":
        async with httpx.AsyncClient() as http:
            r = await http.post(grant["upload_url"], data=grant["fields"], files={"file": ("f", content)})
        return r.status_code
    url = httpx.URL(grant["upload_url"])
    return (await api.client.put(url.raw_path.decode(), content=content)).status_code


async def _sweep(api: Api) -> uploads.Swept:
    return await uploads.sweep(api.runtime.sessionmaker, api.runtime.store, api.clock.now())


async def _claims(api: Api) -> list[ObjectClaim]:
    async with api.runtime.sessionmaker() as session:
        return list(await session.scalars(select(ObjectClaim)))


# ---------------------------------------------------------------- size caps


async def test_the_store_refuses_an_upload_larger_than_its_grant(any_api: Api) -> None:
    api = any_api
    bidder, tender = await _holder(api)
    grant = (await _grant(api, bidder, tender, 100)).json()
    assert grant["max_bytes"] == 100
    assert await _send(api, grant, b"x" * 101) in (400, 413)
    assert await api.runtime.store.stat(grant["object_key"]) is None
    assert await _send(api, grant, b"x" * 100) in (200, 201, 204)
    assert (await api.runtime.store.stat(grant["object_key"])).size == 100


async def test_a_multipart_grant_bounds_every_part_and_their_number(any_api: Api) -> None:
    from bidding.submission import PART_SIZE

    api = any_api
    bidder, tender = await _holder(api)
    size = 4 * PART_SIZE + 10
    grant = (await _grant(api, bidder, tender, size)).json()
    assert [(p["number"], p["max_bytes"]) for p in grant["parts"]] == [
        (1, PART_SIZE),
        (2, PART_SIZE),
        (3, PART_SIZE),
        (4, PART_SIZE),
        (5, 10),
    ]
    last = grant["parts"][-1]
    put = api.client.put if api.runtime.store.__class__.__name__ == "LocalObjectStore" else None
    for content, refused in ((b"y" * 11, True), (b"y" * 10, False)):
        if put is not None:
            status = (await put(httpx.URL(last["url"]).raw_path.decode(), content=content)).status_code
        else:
            async with httpx.AsyncClient() as http:
                status = (await http.put(last["url"], content=content)).status_code
        assert (status >= 400) is refused, status
    parts = await api.runtime.store.list_parts(grant["object_key"], grant["upload_id"])
    assert [(p.number, p.size) for p in parts] == [(5, 10)]


async def test_an_upload_past_the_quota_is_refused_naming_the_field(api: Api) -> None:
    api.runtime.settings = dataclasses.replace(api.runtime.settings, upload_quota_bytes=1000)
    bidder, tender = await _holder(api)
    assert (await _grant(api, bidder, tender, 600)).status_code == 201
    r = await _grant(api, bidder, tender, 600)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"] == [{"field": "size", "message": "quota"}]
    assert (r.json()["quota_bytes"], r.json()["used_bytes"]) == (1000, 600)
    # another bidder, or another tender, has a quota of its own
    other = await api.organisation("bidder")
    assert (await api.post(f"{T}/{tender['id']}/documents/obtain", other)).status_code == 200
    assert (await _grant(api, other, tender, 600)).status_code == 201
    # once the first grant expires, nothing can be written through it: it no longer counts
    api.clock.advance(timedelta(hours=2, seconds=1))
    assert (await _grant(api, bidder, tender, 600)).status_code == 201


# ---------------------------------------------------------------- the sweeper


async def test_the_sweeper_removes_an_expired_upload_and_keeps_one_still_in_time(any_api: Api) -> None:
    api = any_api
    bidder, tender = await _holder(api)
    grant = (await _grant(api, bidder, tender, 10)).json()
    assert await _send(api, grant, b"z" * 10) in (200, 201, 204)
    api.clock.advance(timedelta(hours=2))  # expired, but a transfer begun just before may still run
    assert (await _sweep(api)).uploads == 0
    assert await api.runtime.store.stat(grant["object_key"]) is not None
    api.clock.advance(uploads.UPLOAD_GRACE + timedelta(seconds=1))
    assert (await _sweep(api)).uploads == 1
    assert await api.runtime.store.stat(grant["object_key"]) is None
    assert [c.key for c in await _claims(api) if c.kind == uploads.UPLOAD] == []


async def test_the_sweeper_aborts_an_abandoned_multipart_upload(any_api: Api) -> None:
    from bidding.submission import PART_SIZE

    api = any_api
    bidder, tender = await _holder(api)
    grant = (await _grant(api, bidder, tender, 4 * PART_SIZE + 1)).json()
    assert await api.runtime.store.list_parts(grant["object_key"], grant["upload_id"]) == []
    api.clock.advance(PAST_EXPIRY)
    swept = await _sweep(api)
    assert (swept.uploads, swept.multipart) == (1, 1)
    with pytest.raises(UploadNotFound):
        await api.runtime.store.list_parts(grant["object_key"], grant["upload_id"])


async def test_the_sweeper_removes_a_copy_no_record_took(any_api: Api) -> None:
    api = any_api
    bidder, tender = await _holder(api)
    kept = f"records/{tender['code']}/bids/{uuid.uuid4().hex}"
    # a finalize that claimed its copy and copied, then died before recording it
    await uploads.claim_copy(
        api.runtime.sessionmaker,
        key=kept,
        owner_id=uuid.UUID(bidder.organisation_id),
        scope_id=uuid.UUID(tender["id"]),
        max_bytes=100,
        now=api.clock.now(),
    )
    await api.runtime.store.put_bytes(kept, b"age-encryption.org/v1\n")
    assert (await _sweep(api)).copies == 0  # it may still be recording
    api.clock.advance(uploads.COPY_GRACE)
    assert (await _sweep(api)).copies == 1
    assert await api.runtime.store.stat(kept) is None
    assert kept not in [c.key for c in await _claims(api)]


async def test_the_sweeper_never_removes_an_object_a_record_points_to(any_api: Api) -> None:
    from trading.models import Bid, Document

    api = any_api
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bid = await api.bid(await api.organisation("bidder"), tender, PRICE)
    await api.run_jobs()
    api.clock.advance(timedelta(days=400))
    await _sweep(api)
    async with api.runtime.sessionmaker() as session:
        keys = [
            *(await session.scalars(select(Bid.object_key))),
            *(await session.scalars(select(Document.object_key))),
        ]
    assert len(keys) == 2
    for key in keys:
        assert await api.runtime.store.stat(key) is not None, key
    assert bid.receipt["envelope_sha256"]


async def test_a_copy_the_sweeper_took_first_is_never_recorded(api: Api) -> None:
    bidder, tender = await _holder(api)
    kept = f"records/{tender['code']}/bids/{uuid.uuid4().hex}"
    await uploads.claim_copy(
        api.runtime.sessionmaker,
        key=kept,
        owner_id=uuid.UUID(bidder.organisation_id),
        scope_id=uuid.UUID(tender["id"]),
        max_bytes=100,
        now=api.clock.now(),
    )
    api.clock.advance(uploads.COPY_GRACE)
    await _sweep(api)
    async with api.runtime.sessionmaker() as session, session.begin():
        assert await uploads.keep_copy(session, kept, 100) is False


# ---------------------------------------------------------------- scratch left by killed processes


_KILLED_MID_OPENING = """
import asyncio, os, signal, sys
from pathlib import Path
from storage.objects import LocalObjectStore
store = LocalObjectStore(Path(sys.argv[1]), "http://127.0.0.1", b"k" * 32)
work = asyncio.run(store.scratch())
(work / "opened.pdf").write_bytes(b"plaintext of an opened bid")
print(work, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_mid_opening(root: Path) -> Path:
    """Run a process that makes a scratch directory in the store at `root`, writes a plaintext file
    there and is killed; answer the directory it left."""
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_OPENING, str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    left = Path(child.stdout.strip())
    assert (left / "opened.pdf").exists()
    return left


def _ended_pid() -> int:
    """The id of a process that has ended."""
    return int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout
    )


def test_the_sweep_removes_the_scratch_of_a_killed_process_and_keeps_a_running_ones(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = LocalObjectStore(root, "http://127.0.0.1", b"k" * 32)
    asyncio.run(store.ensure_ready())
    ours = asyncio.run(store.scratch())
    (ours / "envelope.age").write_bytes(b"in use")
    left = _killed_mid_opening(root)

    assert asyncio.run(store.sweep_scratch()) == 1
    assert not left.exists()
    assert (ours / "envelope.age").read_bytes() == b"in use"
    assert asyncio.run(store.sweep_scratch()) == 0


async def test_the_periodic_sweep_counts_the_scratch_it_removed(any_api: Api) -> None:
    store = any_api.runtime.store
    pid = await asyncio.to_thread(_ended_pid)
    mine = await store.scratch()
    left = mine.parent / mine.name.replace(f"-{os.getpid()}-", f"-{pid}-", 1)
    await asyncio.to_thread(left.mkdir)
    await asyncio.to_thread((left / "file").write_bytes, b"x")

    swept = await _sweep(any_api)

    assert swept.scratch == 1 and swept.to_dict()["scratch"] == 1
    assert not await asyncio.to_thread(left.exists)
    assert await asyncio.to_thread(mine.exists)
    await asyncio.to_thread(shutil.rmtree, mine)
