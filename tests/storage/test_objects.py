"""The object store, on the local directory and on a real S3 (SeaweedFS), through one set of behaviours.

Plus what only one of them has: S3's presigned URLs over real HTTP, and the local store's signed grants
and the streaming endpoint that serves them.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import random
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from litestar import Litestar
from litestar.di import Provide
from litestar.testing import AsyncTestClient
from minio.error import S3Error

from storage.clock import SettableClock
from storage.object_routes import ObjectController
from storage.objects import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    Grant,
    InvalidGrant,
    InvalidObjectKey,
    LocalObjectStore,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    S3ObjectStore,
    sign_grant,
    verify_grant,
)
from tests.storage.seaweed import SeaweedFS

SECRET = b"grant-secret-for-tests-only-0123456789"
BASE_URL = "http://testserver.local"  # AsyncTestClient's own base URL
MiB = 1024 * 1024
# Odd sizes on purpose: part and chunk boundaries must not line up with what the source yields.
CHUNK_SIZES = (64 * 1024, 1, 100_003, 7, 262_144, 65_535)
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@dataclass
class Source:
    """An async byte source of `total` deterministic pseudo-random bytes that knows its SHA-256."""

    total: int
    fail_after: int | None = None
    sha256: Any = field(default_factory=hashlib.sha256)
    sent: int = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        rng = random.Random(self.total)
        index = 0
        while self.sent < self.total:
            if self.fail_after is not None and self.sent >= self.fail_after:
                raise RuntimeError("the source broke off")
            size = min(CHUNK_SIZES[index % len(CHUNK_SIZES)], self.total - self.sent)
            index += 1
            chunk = rng.randbytes(size)
            self.sha256.update(chunk)
            self.sent += size
            yield chunk

    @property
    def hexdigest(self) -> str:
        return str(self.sha256.hexdigest())


async def _read_all(store: ObjectStore, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> bytes:
    return b"".join([chunk async for chunk in store.iter_chunks(key, chunk_size)])


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def clock() -> SettableClock:
    """A clock standing still at 2026-03-02 01:00 UTC, moved only by the test."""
    return SettableClock(NOW)


@pytest_asyncio.fixture
async def local_store(tmp_path: Path, clock: SettableClock) -> LocalObjectStore:
    store = LocalObjectStore(tmp_path / "objects", BASE_URL, SECRET, now=clock.now)
    await store.ensure_ready()
    return store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """Each behaviour test runs once on the local directory and once on SeaweedFS."""
    return request.getfixturevalue(f"{request.param}_store")  # type: ignore[no-any-return]


# --- the same behaviour on both stores ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_put_stream_round_trips_a_multi_mib_object_with_its_sha256(store: ObjectStore) -> None:
    source = Source(total=12 * MiB + 12_345)  # three S3 parts of 5 MiB in the test store

    info = await store.put_stream("tenders/T-1/bid.age", source.chunks(), content_type="application/age")

    assert info == ObjectInfo("tenders/T-1/bid.age", 12 * MiB + 12_345, source.hexdigest, "application/age")
    read_back = hashlib.sha256()
    size = 0
    async for chunk in store.iter_chunks("tenders/T-1/bid.age", chunk_size=100_000):
        assert 0 < len(chunk) <= 100_000
        read_back.update(chunk)
        size += len(chunk)
    assert (size, read_back.hexdigest()) == (source.total, source.hexdigest)


@pytest.mark.asyncio
async def test_put_bytes_is_described_exactly_by_stat(store: ObjectStore) -> None:
    data = b"%PDF-1.7 tender document"

    info = await store.put_bytes("docs/notice.pdf", data, content_type="application/pdf")

    expected = ObjectInfo("docs/notice.pdf", len(data), hashlib.sha256(data).hexdigest(), "application/pdf")
    assert info == expected
    assert await store.stat("docs/notice.pdf") == expected
    assert await _read_all(store, "docs/notice.pdf") == data


@pytest.mark.asyncio
async def test_stat_after_put_stream_gives_size_and_content_type(store: ObjectStore) -> None:
    source = Source(total=300_000)
    await store.put_stream("a/b.bin", source.chunks())

    stat = await store.stat("a/b.bin")

    assert stat is not None
    assert (stat.key, stat.size, stat.content_type) == ("a/b.bin", 300_000, DEFAULT_CONTENT_TYPE)
    # S3 takes metadata before the bytes, so only the local sidecar can know a streamed object's hash.
    assert stat.sha256 in (source.hexdigest, None)


@pytest.mark.asyncio
async def test_empty_object_round_trips(store: ObjectStore) -> None:
    info = await store.put_bytes("empty", b"")

    assert info == ObjectInfo("empty", 0, hashlib.sha256(b"").hexdigest(), DEFAULT_CONTENT_TYPE)
    assert await _read_all(store, "empty") == b""


@pytest.mark.asyncio
async def test_put_replaces_an_existing_object(store: ObjectStore) -> None:
    await store.put_bytes("k", b"first version")
    await store.put_bytes("k", b"second", content_type="text/plain")

    assert await _read_all(store, "k") == b"second"
    assert await store.stat("k") == ObjectInfo("k", 6, hashlib.sha256(b"second").hexdigest(), "text/plain")


@pytest.mark.asyncio
async def test_stat_of_a_missing_object_is_none(store: ObjectStore) -> None:
    assert await store.stat("no/such/object") is None


@pytest.mark.asyncio
async def test_iter_chunks_of_a_missing_object_raises_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        await _read_all(store, "no/such/object")


@pytest.mark.asyncio
async def test_hash_object_recomputes_the_stored_sha256(store: ObjectStore) -> None:
    source = Source(total=3 * MiB + 1)
    await store.put_stream("envelopes/e1", source.chunks(), content_type="application/age")

    info = await store.hash_object("envelopes/e1")

    assert info == ObjectInfo("envelopes/e1", 3 * MiB + 1, source.hexdigest, "application/age")


@pytest.mark.asyncio
async def test_hash_object_of_a_missing_object_raises_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        await store.hash_object("no/such/object")


@pytest.mark.asyncio
async def test_get_file_gives_a_local_copy_with_the_sha256_of_its_bytes(store: ObjectStore) -> None:
    source = Source(total=17 * MiB + 3)  # more than one mapped window on the local store
    await store.put_stream("envelopes/e2", source.chunks(), content_type="application/age")
    scratch = await store.scratch()

    info = await store.get_file("envelopes/e2", scratch / "copy")

    assert info == ObjectInfo("envelopes/e2", source.total, source.hexdigest, "application/age")
    assert hashlib.sha256((scratch / "copy").read_bytes()).hexdigest() == source.hexdigest


@pytest.mark.asyncio
async def test_get_file_keeps_the_bytes_it_got_when_the_object_is_replaced(store: ObjectStore) -> None:
    await store.put_bytes("envelopes/e3", b"as acknowledged")
    scratch = await store.scratch()
    await store.get_file("envelopes/e3", scratch / "copy")

    await store.put_bytes("envelopes/e3", b"replaced later")

    assert (scratch / "copy").read_bytes() == b"as acknowledged"


@pytest.mark.asyncio
async def test_get_file_of_a_missing_object_raises_object_not_found_and_leaves_no_file(
    store: ObjectStore,
) -> None:
    scratch = await store.scratch()

    with pytest.raises(ObjectNotFound):
        await store.get_file("no/such/object", scratch / "copy")

    assert list(scratch.iterdir()) == []


@pytest.mark.asyncio
async def test_scratch_gives_a_new_empty_directory_each_time(store: ObjectStore) -> None:
    first, second = await store.scratch(), await store.scratch()

    assert first != second
    assert first.is_dir() and second.is_dir()
    assert list(first.iterdir()) == list(second.iterdir()) == []


@pytest.mark.asyncio
async def test_put_file_stores_the_file_with_the_sha256_it_is_given(store: ObjectStore) -> None:
    data = random.Random(7).randbytes(11 * MiB + 5)  # three S3 parts of 5 MiB in the test store
    scratch = await store.scratch()
    (scratch / "file.pdf").write_bytes(data)
    sha256 = hashlib.sha256(data).hexdigest()

    info = await store.put_file(
        "opened/1/001-file.pdf",
        scratch / "file.pdf",
        sha256=sha256,
        size=len(data),
        content_type="application/pdf",
    )

    expected = ObjectInfo("opened/1/001-file.pdf", len(data), sha256, "application/pdf")
    assert info == expected
    assert await store.stat("opened/1/001-file.pdf") == expected  # S3 too: the hash is known up front
    assert await store.hash_object("opened/1/001-file.pdf") == expected
    assert await _read_all(store, "opened/1/001-file.pdf") == data


@pytest.mark.asyncio
async def test_put_file_replaces_an_existing_object(store: ObjectStore) -> None:
    await store.put_bytes("opened/k", b"first version")
    scratch = await store.scratch()
    (scratch / "f").write_bytes(b"second")

    await store.put_file("opened/k", scratch / "f", sha256=hashlib.sha256(b"second").hexdigest(), size=6)

    assert await _read_all(store, "opened/k") == b"second"


@pytest.mark.asyncio
async def test_put_file_of_another_size_than_given_is_refused_and_stores_nothing(store: ObjectStore) -> None:
    scratch = await store.scratch()
    (scratch / "f").write_bytes(b"twelve bytes")

    with pytest.raises(ValueError, match="12 bytes, not the 13"):
        await store.put_file("opened/short", scratch / "f", sha256=hashlib.sha256(b"").hexdigest(), size=13)

    assert await store.stat("opened/short") is None


@pytest.mark.asyncio
async def test_put_file_refuses_a_malformed_sha256(store: ObjectStore) -> None:
    scratch = await store.scratch()
    (scratch / "f").write_bytes(b"x")

    with pytest.raises(ValueError, match="sha256"):
        await store.put_file("opened/bad", scratch / "f", sha256="ABC", size=1)

    assert await store.stat("opened/bad") is None


@pytest.mark.asyncio
async def test_delete_removes_the_object_and_is_idempotent(store: ObjectStore) -> None:
    await store.put_bytes("to/delete", b"x")

    await store.delete("to/delete")
    await store.delete("to/delete")

    assert await store.stat("to/delete") is None
    with pytest.raises(ObjectNotFound):
        await _read_all(store, "to/delete")


INVALID_KEYS = [
    "",
    "/absolute",
    "..",
    "a/../b",
    "a..b",
    "a/./b",
    ".",
    "a//b",
    "dir/",
    "with space",
    "back\\slash",
    "query?x",
    "tilde~",
    "ümlaut",
    "x" * 513,
    "y" * 201,
]


@pytest.mark.asyncio
@pytest.mark.parametrize("key", INVALID_KEYS, ids=lambda k: repr(k)[:24])
async def test_invalid_keys_are_rejected_by_every_operation(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        await store.put_bytes(key, b"x")
    with pytest.raises(InvalidObjectKey):
        await store.put_stream(key, Source(total=10).chunks())
    with pytest.raises(InvalidObjectKey):
        await store.stat(key)
    with pytest.raises(InvalidObjectKey):
        await _read_all(store, key)
    with pytest.raises(InvalidObjectKey):
        await store.hash_object(key)
    with pytest.raises(InvalidObjectKey):
        await store.delete(key)
    with pytest.raises(InvalidObjectKey):
        await store.presigned_get_url(key, timedelta(minutes=5))


@pytest.mark.asyncio
async def test_longest_valid_key_is_accepted(store: ObjectStore) -> None:
    key = "/".join(["s" * 200, "t" * 200, "u" * 110])
    assert len(key) == 512

    await store.put_bytes(key, b"ok")

    assert await _read_all(store, key) == b"ok"


@pytest.mark.asyncio
async def test_put_stream_whose_source_fails_midway_leaves_no_object(store: ObjectStore) -> None:
    source = Source(total=20 * MiB, fail_after=11 * MiB)  # past two S3 parts: a multipart upload is open

    with pytest.raises(RuntimeError, match="the source broke off"):
        await store.put_stream("bids/broken", source.chunks())

    assert await store.stat("bids/broken") is None
    if isinstance(store, LocalObjectStore):
        assert _files_under(store.root) == []


@pytest.mark.asyncio
async def test_failed_put_stream_keeps_the_previous_object(store: ObjectStore) -> None:
    await store.put_bytes("bids/kept", b"the sealed bid", content_type="application/age")

    with pytest.raises(RuntimeError, match="the source broke off"):
        await store.put_stream("bids/kept", Source(total=MiB, fail_after=300_000).chunks())

    assert await _read_all(store, "bids/kept") == b"the sealed bid"
    assert (await store.hash_object("bids/kept")).sha256 == hashlib.sha256(b"the sealed bid").hexdigest()


@pytest.mark.asyncio
async def test_a_cancelled_put_stream_leaves_no_object(store: ObjectStore) -> None:
    all_sent = asyncio.Event()

    async def stalls_after_6_mib() -> AsyncIterator[bytes]:
        for _ in range(96):  # 6 MiB: past the first S3 part, so a multipart upload is open
            yield b"c" * (64 * 1024)
        all_sent.set()
        await asyncio.Event().wait()  # a client that stops sending
        yield b""

    upload = asyncio.create_task(store.put_stream("bids/cancelled", stalls_after_6_mib()))
    await all_sent.wait()
    upload.cancel()

    with pytest.raises(asyncio.CancelledError):
        await upload
    assert await store.stat("bids/cancelled") is None
    if isinstance(store, LocalObjectStore):
        assert _files_under(store.root) == []


@pytest.mark.asyncio
async def test_put_stream_memory_stays_bounded_whatever_the_size(store: ObjectStore) -> None:
    chunk = random.Random(7).randbytes(64 * 1024)
    count = 1024  # 64 MiB
    expected = hashlib.sha256()
    for _ in range(count):
        expected.update(chunk)

    async def repeated() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield chunk

    tracemalloc.start()
    try:
        info = await store.put_stream("big/object", repeated())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (info.size, info.sha256) == (64 * MiB, expected.hexdigest())
    # Local: a few chunks in flight. S3: (2 parallel parts + the one being read) of 5 MiB, with copies.
    assert peak < (4 * MiB if isinstance(store, LocalObjectStore) else 40 * MiB)


# --- S3 only: presigned URLs over real HTTP -----------------------------------------------------------


@pytest.mark.asyncio
async def test_s3_presigned_put_then_get_over_http(s3_store: S3ObjectStore) -> None:
    data = random.Random(1).randbytes(2 * MiB + 3)
    put_url = await s3_store.presigned_put_url("uploads/direct.age", timedelta(minutes=10))
    get_url = await s3_store.presigned_get_url("uploads/direct.age", timedelta(minutes=10))

    async with httpx.AsyncClient(timeout=30) as http:
        uploaded = await http.put(put_url, content=data)
        downloaded = await http.get(get_url)

    assert uploaded.status_code == 200
    assert (downloaded.status_code, downloaded.content) == (200, data)
    assert (await s3_store.hash_object("uploads/direct.age")).sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.asyncio
async def test_s3_refusing_the_upload_fails_put_stream_without_hanging(
    seaweedfs: SeaweedFS, s3_store: S3ObjectStore
) -> None:
    wrong_secret = S3ObjectStore(
        seaweedfs.endpoint, seaweedfs.access_key, "not-the-secret", s3_store.bucket, part_size=5 * MiB
    )
    source = Source(total=20 * MiB)  # far more than the hand-over holds: the sender must notice the failure

    with pytest.raises(S3Error) as refused:
        await wrong_secret.put_stream("bids/refused", source.chunks())

    assert refused.value.code == "SignatureDoesNotMatch"
    assert source.sent < source.total
    assert await s3_store.stat("bids/refused") is None


@pytest.mark.asyncio
async def test_s3_presigned_get_with_a_tampered_signature_is_refused(s3_store: S3ObjectStore) -> None:
    await s3_store.put_bytes("secret/doc", b"not for you")
    url = await s3_store.presigned_get_url("secret/doc", timedelta(minutes=10))
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")

    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(tampered)

    assert response.status_code == 403


# --- local only: grants -------------------------------------------------------------------------------


def test_a_signed_grant_verifies_to_what_was_granted() -> None:
    token = sign_grant(SECRET, "PUT", "bids/T-1/b.age", NOW + timedelta(minutes=15), 1000)

    grant = verify_grant(SECRET, token, "PUT", NOW)

    assert grant == Grant("PUT", "bids/T-1/b.age", NOW + timedelta(minutes=15), 1000)
    assert urlsplit(f"{BASE_URL}/api/v1/objects/{token}").path == f"/api/v1/objects/{token}"
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_a_grant_expires_at_its_expiry_second() -> None:
    token = sign_grant(SECRET, "GET", "k", NOW + timedelta(seconds=60), None)

    assert verify_grant(SECRET, token, "GET", NOW + timedelta(seconds=59)).max_bytes is None
    with pytest.raises(InvalidGrant, match="expired"):
        verify_grant(SECRET, token, "GET", NOW + timedelta(seconds=60))


def test_a_grant_for_get_does_not_allow_put() -> None:
    token = sign_grant(SECRET, "GET", "k", NOW + timedelta(minutes=1), None)

    with pytest.raises(InvalidGrant, match="for GET, not PUT"):
        verify_grant(SECRET, token, "PUT", NOW)


def test_a_grant_signed_with_another_secret_is_refused() -> None:
    token = sign_grant(b"another-secret-of-sufficient-length", "GET", "k", NOW + timedelta(minutes=1), None)

    with pytest.raises(InvalidGrant, match="signature"):
        verify_grant(SECRET, token, "GET", NOW)


def test_a_tampered_grant_is_refused() -> None:
    token = sign_grant(SECRET, "PUT", "bids/mine", NOW + timedelta(minutes=1), 10)
    body, signature = token.split(".")
    forged_body = sign_grant(SECRET, "PUT", "bids/theirs", NOW + timedelta(minutes=1), 10).split(".")[0]
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")

    for forged in (f"{forged_body}.{signature}", f"{body}.{flipped}", f"{body}x.{signature}"):
        with pytest.raises(InvalidGrant):
            verify_grant(SECRET, forged, "PUT", NOW)


@pytest.mark.parametrize("token", ["", "nodot", ".", "a.", ".b", "a.b.c", "é.é", "x" * 5000])
def test_malformed_grants_are_refused(token: str) -> None:
    with pytest.raises(InvalidGrant):
        verify_grant(SECRET, token, "GET", NOW)


def test_grant_times_must_be_aware() -> None:
    token = sign_grant(SECRET, "GET", "k", NOW + timedelta(minutes=1), None)

    with pytest.raises(ValueError, match="naive"):
        verify_grant(SECRET, token, "GET", NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="naive"):
        sign_grant(SECRET, "GET", "k", NOW.replace(tzinfo=None), None)


@pytest.mark.asyncio
async def test_local_put_through_an_existing_object_fails_cleanly(local_store: LocalObjectStore) -> None:
    # S3 keeps "a" and "a/b" side by side; a directory cannot, so the local store refuses the second.
    await local_store.put_bytes("a", b"object a")
    source = Source(total=8 * MiB)

    with pytest.raises(InvalidObjectKey, match="runs through an existing object"):
        await local_store.put_stream("a/b", source.chunks())

    assert source.sent < source.total
    assert await _read_all(local_store, "a") == b"object a"
    assert _files_under(local_store.root) == ["a", "a~meta"]


@pytest.mark.asyncio
async def test_local_get_file_links_the_object_instead_of_copying_it(local_store: LocalObjectStore) -> None:
    await local_store.put_bytes("envelopes/e4", b"sealed bytes")
    scratch = await local_store.scratch()

    await local_store.get_file("envelopes/e4", scratch / "copy")

    assert (scratch / "copy").stat().st_ino == (local_store.root / "envelopes/e4").stat().st_ino
    assert scratch.is_relative_to(local_store.root)


@pytest.mark.asyncio
async def test_local_put_file_from_its_scratch_renames_the_file_into_place(
    local_store: LocalObjectStore,
) -> None:
    scratch = await local_store.scratch()
    (scratch / "f").write_bytes(b"plaintext")
    inode = (scratch / "f").stat().st_ino

    await local_store.put_file(
        "opened/f", scratch / "f", sha256=hashlib.sha256(b"plaintext").hexdigest(), size=9
    )

    assert (local_store.root / "opened/f").stat().st_ino == inode
    assert not (scratch / "f").exists()
    assert (local_store.root / "opened/f").stat().st_mode & 0o777 == 0o600


@pytest.mark.asyncio
async def test_local_put_file_from_another_file_system_copies_it(
    local_store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(b"plaintext")
    real_replace = os.replace

    def cross_device(source: Any, target: Any) -> None:
        if Path(source) == tmp_path / "f":
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", cross_device)

    sha256 = hashlib.sha256(b"plaintext").hexdigest()
    info = await local_store.put_file("opened/g", tmp_path / "f", sha256=sha256, size=9)

    assert info.sha256 == sha256
    assert await _read_all(local_store, "opened/g") == b"plaintext"
    assert await local_store.stat("opened/g") == info


@pytest.mark.asyncio
async def test_local_put_file_through_an_existing_object_fails_cleanly(local_store: LocalObjectStore) -> None:
    await local_store.put_bytes("a", b"object a")
    scratch = await local_store.scratch()
    (scratch / "f").write_bytes(b"x")

    with pytest.raises(InvalidObjectKey, match="runs through an existing object"):
        await local_store.put_file("a/b", scratch / "f", sha256=hashlib.sha256(b"x").hexdigest(), size=1)

    left = str((scratch / "f").relative_to(local_store.root))
    assert _files_under(local_store.root) == sorted(["a", "a~meta", left])


@pytest.mark.asyncio
async def test_local_presigned_urls_carry_a_grant_from_the_injected_clock(
    local_store: LocalObjectStore, clock: SettableClock
) -> None:
    url = await local_store.presigned_put_url("bids/x", timedelta(minutes=30), max_bytes=4096)

    prefix = f"{BASE_URL}/api/v1/objects/"
    assert url.startswith(prefix)
    grant = verify_grant(SECRET, url.removeprefix(prefix), "PUT", clock.now())
    assert grant == Grant("PUT", "bids/x", clock.now() + timedelta(minutes=30), 4096)


# --- local only: the streaming endpoint ---------------------------------------------------------------


def _app(store: ObjectStore, clock: SettableClock) -> Litestar:
    return Litestar(
        route_handlers=[ObjectController],
        dependencies={
            "object_store": Provide(lambda: store, sync_to_thread=False),
            "clock_now": Provide(lambda: clock.now, sync_to_thread=False),
        },
    )


def _path(url: str) -> str:
    return urlsplit(url).path


@pytest.mark.asyncio
async def test_upload_then_download_through_the_local_endpoint(
    local_store: LocalObjectStore, clock: SettableClock
) -> None:
    data = random.Random(2).randbytes(3 * MiB + 17)
    put_url = await local_store.presigned_put_url("bids/T-9/env.age", timedelta(minutes=5), max_bytes=4 * MiB)
    get_url = await local_store.presigned_get_url("bids/T-9/env.age", timedelta(minutes=5))

    async with AsyncTestClient(app=_app(local_store, clock)) as client:
        uploaded = await client.put(_path(put_url), content=data, headers={"Content-Type": "application/age"})
        downloaded = await client.get(_path(get_url))

    assert uploaded.status_code == 201
    assert uploaded.json() == {
        "key": "bids/T-9/env.age",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert downloaded.status_code == 200
    assert downloaded.content == data
    assert downloaded.headers["content-type"] == "application/age"
    assert downloaded.headers["content-disposition"] == 'attachment; filename="env.age"'
    assert downloaded.headers["x-content-type-options"] == "nosniff"


async def _put_without_length(client: AsyncTestClient[Litestar], url: str, data: bytes) -> httpx.Response:
    """A PUT without Content-Length, as a chunked upload arrives: only the running count can stop it.

    (Litestar's test transport cannot send an async generator body, so the length header is dropped.)
    """
    request = client.build_request("PUT", _path(url), content=data)
    del request.headers["Content-Length"]
    return await client.send(request)


@pytest.mark.asyncio
async def test_an_upload_without_length_is_streamed_and_hashed(
    local_store: LocalObjectStore, clock: SettableClock
) -> None:
    data = random.Random(3).randbytes(2 * MiB)
    put_url = await local_store.presigned_put_url("bids/chunked", timedelta(minutes=5), max_bytes=2 * MiB)

    async with AsyncTestClient(app=_app(local_store, clock)) as client:
        response = await _put_without_length(client, put_url, data)

    sha256 = hashlib.sha256(data).hexdigest()
    assert response.status_code == 201
    assert response.json() == {"key": "bids/chunked", "size": 2 * MiB, "sha256": sha256}
    assert await local_store.stat("bids/chunked") == ObjectInfo(
        "bids/chunked", 2 * MiB, sha256, DEFAULT_CONTENT_TYPE
    )


@pytest.mark.asyncio
async def test_an_upload_over_the_granted_size_is_refused_with_413(
    local_store: LocalObjectStore, clock: SettableClock
) -> None:
    put_url = await local_store.presigned_put_url("bids/big", timedelta(minutes=5), max_bytes=1000)

    async with AsyncTestClient(app=_app(local_store, clock)) as client:
        response = await client.put(_path(put_url), content=b"x" * 1001)

    assert response.status_code == 413
    assert await local_store.stat("bids/big") is None


@pytest.mark.asyncio
async def test_an_upload_without_length_over_the_granted_size_is_cut_off_with_413(
    local_store: LocalObjectStore, clock: SettableClock
) -> None:
    put_url = await local_store.presigned_put_url("bids/big", timedelta(minutes=5), max_bytes=MiB)

    async with AsyncTestClient(app=_app(local_store, clock)) as client:
        response = await _put_without_length(client, put_url, b"x" * (MiB + 1))

    assert response.status_code == 413
    assert await local_store.stat("bids/big") is None
    assert _files_under(local_store.root) == []


@pytest.mark.asyncio
async def test_an_upload_of_exactly_the_granted_size_is_accepted(
    local_store: LocalObjectStore, clock: SettableClock
) -> None:
    put_url = await local_store.presigned_put_url("bids/exact", timedelta(minutes=5), max_bytes=1000)

    async with AsyncTestClient(app=_app(local_store, clock)) as client:
        response = await client.put(_path(put_url), content=b"x" * 1000)

    assert response.status_code == 201
    assert response.json()["size"] == 1000


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["PUT", "GET"])
async def test_a_bad_token_is_401(local_store: LocalObjectStore, clock: SettableClock, method: str) -> None:
    async with AsyncTestClient(app=_app(local_store, clock)) as client:
        response = await client.request(method, "/api/v1/objects/not-a-grant.at-all", content=b"x")

    assert response.status_code == 401
    assert await local_store.stat("bids/x") is None


@pytest.mark.asyncio
async def test_a_download_grant_cannot_upload(local_store: LocalObjectStore, clock: SettableClock) -> None:
    await local_store.put_bytes("bids/x", b"original")
    get_url = await local_store.presigned_get_url("bids/x", timedelta(minutes=5))

    async with AsyncTestClient(app=_app(local_store, clock)) as client:
        response = await client.put(_path(get_url), content=b"overwritten")

    assert response.status_code == 401
    assert await _read_all(local_store, "bids/x") == b"original"


@pytest.mark.asyncio
async def test_an_expired_grant_is_401(local_store: LocalObjectStore, clock: SettableClock) -> None:
    await local_store.put_bytes("docs/d", b"document")
    get_url = await local_store.presigned_get_url("docs/d", timedelta(minutes=5))
    clock.advance(timedelta(minutes=5))

    async with AsyncTestClient(app=_app(local_store, clock)) as client:
        response = await client.get(_path(get_url))

    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


@pytest.mark.asyncio
async def test_downloading_a_missing_object_is_404(
    local_store: LocalObjectStore, clock: SettableClock
) -> None:
    get_url = await local_store.presigned_get_url("docs/never-uploaded", timedelta(minutes=5))

    async with AsyncTestClient(app=_app(local_store, clock)) as client:
        response = await client.get(_path(get_url))

    assert response.status_code == 404


@pytest.mark.asyncio
async def test_an_invalid_content_type_is_refused(
    local_store: LocalObjectStore, clock: SettableClock
) -> None:
    put_url = await local_store.presigned_put_url("docs/d", timedelta(minutes=5))

    async with AsyncTestClient(app=_app(local_store, clock)) as client:
        response = await client.put(_path(put_url), content=b"x", headers={"Content-Type": "not a type"})

    assert response.status_code == 400
    assert await local_store.stat("docs/d") is None


@pytest.mark.asyncio
async def test_the_endpoint_is_404_when_the_store_is_not_local(
    s3_store: S3ObjectStore, local_store: LocalObjectStore, clock: SettableClock
) -> None:
    put_url = await local_store.presigned_put_url("bids/x", timedelta(minutes=5))

    async with AsyncTestClient(app=_app(s3_store, clock)) as client:
        response = await client.put(_path(put_url), content=b"x")

    assert response.status_code == 404
    assert await s3_store.stat("bids/x") is None


def test_the_routes_are_named_and_marked_as_grant_authorised(tmp_path: Path) -> None:
    app = _app(LocalObjectStore(tmp_path, BASE_URL, SECRET), SettableClock(NOW))
    handlers = {
        handler.operation_id: handler
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if route.path.startswith("/api/v1/objects") and "OPTIONS" not in handler.http_methods
    }

    assert set(handlers) == {"object_upload", "object_download"}
    assert all(handler.opt.get("auth") == "grant" for handler in handlers.values())
