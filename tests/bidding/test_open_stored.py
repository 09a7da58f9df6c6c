"""Opening a stored envelope through the object store (`bidding.envelopes.open_stored`), on both stores:
the receipt's hash is checked before anything is released, and the opened files reach the store with the
hashes the manifest lists."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from bidding import bench
from bidding.envelopes import open_stored
from storage.objects import LocalObjectStore, ObjectNotFound, ObjectStore

SECRET = b"grant-secret-for-tests-only-0123456789"


@dataclass(frozen=True)
class Sealed:
    envelope: bytes
    file_key: bytes
    name: str
    plaintext: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.envelope).hexdigest()


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Sealed:
    folder = tmp_path_factory.mktemp("sealed")
    source = folder / "technical.pdf"
    source.write_bytes(random.Random(13).randbytes(3 * 1024 * 1024 + 17))
    keys = bench.Keys()
    bench.seal_file(source, folder / "bid.age", keys)
    file_key = bench.bidder_file_key(folder / "bid.age", keys)
    return Sealed((folder / "bid.age").read_bytes(), file_key, source.name, source.read_bytes())


@pytest.fixture
async def local_store(tmp_path: Path) -> LocalObjectStore:
    store = LocalObjectStore(tmp_path / "objects", "http://testserver", SECRET)
    await store.ensure_ready()
    return store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    return request.getfixturevalue(f"{request.param}_store")  # type: ignore[no-any-return]


def _scratch_left(store: ObjectStore) -> list[Path]:
    if not isinstance(store, LocalObjectStore):
        return []
    return sorted((store.root / ".scratch~").glob("*"))


@pytest.mark.asyncio
async def test_an_envelope_that_matches_its_receipt_opens_into_the_store_with_the_manifest_hashes(
    store: ObjectStore, sealed: Sealed
) -> None:
    await store.put_bytes("bids/b1.age", sealed.envelope)

    opened = await open_stored(
        store, key="bids/b1.age", sha256=sealed.sha256, file_key=sealed.file_key, out_prefix="opened/b1"
    )

    assert (opened.error, opened.platform_fault) == (None, False)
    assert opened.manifest is not None
    sha256 = hashlib.sha256(sealed.plaintext).hexdigest()
    assert [(f["name"], f["size"], f["sha256"]) for f in opened.files] == [
        (sealed.name, len(sealed.plaintext), sha256)
    ]
    assert [(f.name, f.size, f.sha256) for f in opened.manifest.files] == [
        (sealed.name, len(sealed.plaintext), sha256)
    ]
    key = opened.files[0]["object_key"]
    assert key == f"opened/b1/001-{sealed.name}"
    assert b"".join([chunk async for chunk in store.iter_chunks(key)]) == sealed.plaintext
    stat = await store.stat(key)
    assert stat is not None and stat.sha256 == sha256
    assert _scratch_left(store) == []


@pytest.mark.asyncio
async def test_an_envelope_changed_after_its_receipt_is_the_platforms_fault_and_releases_nothing(
    store: ObjectStore, sealed: Sealed
) -> None:
    altered = bytearray(sealed.envelope)
    altered[-1000] ^= 1  # a payload chunk: it would not decrypt either, but the fault is the platform's
    await store.put_bytes("bids/b2.age", bytes(altered))

    opened = await open_stored(
        store, key="bids/b2.age", sha256=sealed.sha256, file_key=sealed.file_key, out_prefix="opened/b2"
    )

    assert (opened.error, opened.platform_fault, opened.files, opened.manifest) == (
        "platform.integrity",
        True,
        [],
        None,
    )
    assert await store.stat(f"opened/b2/001-{sealed.name}") is None
    assert _scratch_left(store) == []


@pytest.mark.asyncio
async def test_an_intact_envelope_the_key_does_not_open_is_not_the_platforms_fault(
    store: ObjectStore, sealed: Sealed
) -> None:
    await store.put_bytes("bids/b3.age", sealed.envelope)

    opened = await open_stored(
        store, key="bids/b3.age", sha256=sealed.sha256, file_key=bytes(16), out_prefix="opened/b3"
    )

    assert (opened.error, opened.platform_fault, opened.files) == ("header.mac", False, [])
    assert await store.stat(f"opened/b3/001-{sealed.name}") is None
    assert _scratch_left(store) == []


@pytest.mark.asyncio
async def test_a_missing_envelope_raises_object_not_found_and_leaves_no_scratch(
    store: ObjectStore, sealed: Sealed
) -> None:
    with pytest.raises(ObjectNotFound):
        await open_stored(
            store, key="bids/none.age", sha256=sealed.sha256, file_key=sealed.file_key, out_prefix="opened/x"
        )

    assert _scratch_left(store) == []
