"""Multipart uploads, on the local directory and on a real S3 (SeaweedFS), through one set of behaviours.

Parts travel the way a bidder's client sends them: to presigned part URLs over HTTP (S3's own, or the local
store's grant endpoint). Plus what only the local store has: its part grants and their limits.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from storage.clock import SettableClock
from storage.objects import (
    MIN_PART_SIZE,
    InvalidGrant,
    InvalidObjectKey,
    InvalidUpload,
    LocalObjectStore,
    ObjectInfo,
    ObjectStore,
    Part,
    UploadNotFound,
    sign_grant,
    verify_grant,
)
from tests.storage.test_objects import BASE_URL, NOW, SECRET, _app, _files_under, _path, _read_all

MiB = 1024 * 1024
KEY = "tenders/T-7/bids/B-3/envelope.age"
AGE = "application/age"


def _bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class Client:
    """Sends parts to presigned part URLs over HTTP: the local store's endpoint, or S3 itself."""

    def __init__(self, store: ObjectStore, http: httpx.AsyncClient) -> None:
        self.store = store
        self.http = http

    async def put(self, url: str, data: bytes) -> httpx.Response:
        target = _path(url) if isinstance(self.store, LocalObjectStore) else url
        return await self.http.put(target, content=data)

    async def put_part(self, key: str, upload_id: str, number: int, data: bytes) -> httpx.Response:
        url = await self.store.presigned_part_url(
            key, upload_id, number, timedelta(minutes=10), max_bytes=len(data)
        )
        response = await self.put(url, data)
        assert response.status_code in (200, 201), response.text
        assert response.headers["etag"] == f'"{_md5(data)}"'
        return response

    async def put_part_broken_off(self, key: str, upload_id: str, number: int, sent: bytes) -> None:
        """A part whose connection drops after `sent` bytes of a longer body."""

        async def breaks_off() -> AsyncIterator[bytes]:
            yield sent
            raise ConnectionResetError("the bidder's connection dropped")

        if isinstance(self.store, LocalObjectStore):
            # Litestar's test transport cannot stream a request body; the endpoint hands the body to this.
            with pytest.raises(ConnectionResetError):
                await self.store.put_part(key, upload_id, number, breaks_off())
            return
        url = await self.store.presigned_part_url(
            key, upload_id, number, timedelta(minutes=10), max_bytes=MiB
        )
        with pytest.raises(ConnectionResetError):
            await self.http.put(url, content=breaks_off())


@pytest.fixture
def clock() -> SettableClock:
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


@pytest_asyncio.fixture
async def client(store: ObjectStore, clock: SettableClock) -> AsyncIterator[Client]:
    if isinstance(store, LocalObjectStore):
        async with AsyncTestClient(app=_app(store, clock)) as local_http:
            yield Client(store, local_http)
    else:
        async with httpx.AsyncClient(timeout=60) as http:
            yield Client(store, http)


# --- the same behaviour on both stores ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_parts_sent_out_of_order_complete_in_part_number_order(
    store: ObjectStore, client: Client
) -> None:
    parts = {1: _bytes(1, MIN_PART_SIZE), 2: _bytes(2, MIN_PART_SIZE + 3), 3: _bytes(3, 1000)}
    whole = parts[1] + parts[2] + parts[3]
    upload_id = await store.start_multipart(KEY, content_type=AGE)

    for number in (3, 1, 2):
        await client.put_part(KEY, upload_id, number, parts[number])
    info = await store.complete_multipart(KEY, upload_id)

    assert (info.key, info.size, info.content_type) == (KEY, len(whole), AGE)
    assert info.sha256 in (hashlib.sha256(whole).hexdigest(), None)  # S3 does not hash on completion
    assert await _read_all(store, KEY) == whole
    assert await store.hash_object(KEY) == ObjectInfo(KEY, len(whole), hashlib.sha256(whole).hexdigest(), AGE)
    with pytest.raises(UploadNotFound):
        await store.list_parts(KEY, upload_id)


@pytest.mark.asyncio
async def test_after_a_dropped_connection_only_whole_parts_are_listed(
    store: ObjectStore, client: Client
) -> None:
    parts = {1: _bytes(1, MIN_PART_SIZE), 2: _bytes(2, MIN_PART_SIZE), 3: _bytes(3, 777)}
    upload_id = await store.start_multipart(KEY)
    await client.put_part(KEY, upload_id, 1, parts[1])
    await client.put_part(KEY, upload_id, 3, parts[3])
    await client.put_part_broken_off(KEY, upload_id, 2, parts[2][:MiB])

    listed = await store.list_parts(KEY, upload_id)

    assert listed == [Part(1, MIN_PART_SIZE, _md5(parts[1])), Part(3, 777, _md5(parts[3]))]
    # Resuming: the client sends what is missing and completes.
    await client.put_part(KEY, upload_id, 2, parts[2])
    info = await store.complete_multipart(KEY, upload_id)
    assert info.size == 2 * MIN_PART_SIZE + 777
    assert await _read_all(store, KEY) == parts[1] + parts[2] + parts[3]


@pytest.mark.asyncio
async def test_list_parts_of_a_fresh_upload_is_empty(store: ObjectStore) -> None:
    upload_id = await store.start_multipart(KEY)

    assert await store.list_parts(KEY, upload_id) == []


@pytest.mark.asyncio
async def test_sending_a_part_again_replaces_it(store: ObjectStore, client: Client) -> None:
    first, second, tail = _bytes(1, MIN_PART_SIZE), _bytes(2, MIN_PART_SIZE), _bytes(3, 10)
    upload_id = await store.start_multipart(KEY)
    await client.put_part(KEY, upload_id, 1, first)
    await client.put_part(KEY, upload_id, 2, tail)
    await client.put_part(KEY, upload_id, 1, second)

    listed = await store.list_parts(KEY, upload_id)
    info = await store.complete_multipart(KEY, upload_id)

    assert [(p.number, p.size) for p in listed] == [(1, MIN_PART_SIZE), (2, 10)]
    if isinstance(store, LocalObjectStore):
        # SeaweedFS lists both uploads of part 1 with times to the second: within one second it cannot
        # say which is newer (complete_multipart still joins the newer, by the server's own clock).
        assert listed[0].etag == _md5(second)
    assert info.size == MIN_PART_SIZE + 10
    assert await _read_all(store, KEY) == second + tail


@pytest.mark.asyncio
async def test_a_part_under_5_mib_before_the_last_is_refused_on_complete(
    store: ObjectStore, client: Client
) -> None:
    upload_id = await store.start_multipart(KEY)
    await client.put_part(KEY, upload_id, 1, b"a" * 1000)
    await client.put_part(KEY, upload_id, 2, b"b" * 10)

    with pytest.raises(InvalidUpload, match="part 1 is 1000 bytes, but every part except the last"):
        await store.complete_multipart(KEY, upload_id)

    assert await store.stat(KEY) is None
    # The upload stays open, as in S3.
    assert [p.number for p in await store.list_parts(KEY, upload_id)] == [1, 2]


@pytest.mark.asyncio
async def test_completing_without_parts_is_refused(store: ObjectStore) -> None:
    upload_id = await store.start_multipart(KEY)

    with pytest.raises(InvalidUpload, match="no part has been uploaded"):
        await store.complete_multipart(KEY, upload_id)

    assert await store.stat(KEY) is None


@pytest.mark.asyncio
async def test_a_single_small_part_is_a_whole_upload(store: ObjectStore, client: Client) -> None:
    upload_id = await store.start_multipart(KEY)
    await client.put_part(KEY, upload_id, 1, b"short sealed bid")

    info = await store.complete_multipart(KEY, upload_id)

    assert info.size == 16
    assert await _read_all(store, KEY) == b"short sealed bid"


@pytest.mark.asyncio
async def test_an_unknown_upload_id_is_upload_not_found(store: ObjectStore) -> None:
    other_keys_upload = await store.start_multipart("tenders/T-7/bids/B-4/envelope.age")

    for upload_id in ("0" * 32, "not-an-upload", "..", "../x", "", other_keys_upload):
        with pytest.raises(UploadNotFound):
            await store.list_parts(KEY, upload_id)
        with pytest.raises(UploadNotFound):
            await store.complete_multipart(KEY, upload_id)


@pytest.mark.asyncio
async def test_abort_removes_the_parts_and_is_idempotent(store: ObjectStore, client: Client) -> None:
    upload_id = await store.start_multipart(KEY)
    await client.put_part(KEY, upload_id, 1, b"x" * 1000)

    await store.abort_multipart(KEY, upload_id)
    await store.abort_multipart(KEY, upload_id)
    await store.abort_multipart(KEY, "0" * 32)

    with pytest.raises(UploadNotFound):
        await store.list_parts(KEY, upload_id)
    with pytest.raises(UploadNotFound):
        await store.complete_multipart(KEY, upload_id)
    assert await store.stat(KEY) is None
    if isinstance(store, LocalObjectStore):
        assert _files_under(store.root) == []


@pytest.mark.asyncio
async def test_abort_under_another_key_leaves_the_upload_open(store: ObjectStore, client: Client) -> None:
    upload_id = await store.start_multipart(KEY)
    await client.put_part(KEY, upload_id, 1, b"x" * 1000)

    await store.abort_multipart("tenders/T-7/bids/B-4/envelope.age", upload_id)

    assert await store.list_parts(KEY, upload_id) == [Part(1, 1000, _md5(b"x" * 1000))]


@pytest.mark.asyncio
async def test_a_part_url_cannot_be_turned_to_another_part(store: ObjectStore, client: Client) -> None:
    upload_id = await store.start_multipart(KEY)
    url = await store.presigned_part_url(KEY, upload_id, 1, timedelta(minutes=10), max_bytes=100)
    other = await store.presigned_part_url(KEY, upload_id, 2, timedelta(minutes=10), max_bytes=100)
    if isinstance(store, LocalObjectStore):
        # Swap the signed payload for part 2's, keeping part 1's signature.
        *_, token = url.rsplit("/", 1)
        *_, other_token = other.rsplit("/", 1)
        forged = url.replace(token, f"{other_token.split('.')[0]}.{token.split('.')[1]}")
    else:
        forged = url.replace("partNumber=1", "partNumber=2")
    assert forged != url

    response = await client.put(forged, b"x" * 10)

    assert 400 <= response.status_code < 500
    assert await store.list_parts(KEY, upload_id) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("number", [0, 10_001])
async def test_part_numbers_run_from_1_to_10000(store: ObjectStore, number: int) -> None:
    upload_id = await store.start_multipart(KEY)

    with pytest.raises(ValueError, match="part number"):
        await store.presigned_part_url(KEY, upload_id, number, timedelta(minutes=5), max_bytes=10)


# --- local only: part grants and the endpoint ---------------------------------------------------------


def test_a_part_grant_verifies_to_its_key_upload_and_part() -> None:
    upload_id = "a" * 32
    token = sign_grant(
        SECRET, "PUT", KEY, NOW + timedelta(minutes=5), MiB, upload_id=upload_id, part_number=7
    )

    grant = verify_grant(SECRET, token, "PUT", NOW)

    assert (grant.key, grant.upload_id, grant.part_number, grant.max_bytes) == (KEY, upload_id, 7, MiB)
    assert grant.is_part
    with pytest.raises(InvalidGrant, match="for PUT, not GET"):
        verify_grant(SECRET, token, "GET", NOW)


def test_a_part_grant_must_name_upload_and_part_and_be_for_put() -> None:
    expiry = NOW + timedelta(minutes=5)
    with pytest.raises(ValueError, match="part grant"):
        sign_grant(SECRET, "PUT", KEY, expiry, 10, upload_id="a" * 32)
    with pytest.raises(ValueError, match="part grant"):
        sign_grant(SECRET, "GET", KEY, expiry, 10, upload_id="a" * 32, part_number=1)
    with pytest.raises(ValueError, match="part number"):
        sign_grant(SECRET, "PUT", KEY, expiry, 10, upload_id="a" * 32, part_number=10_001)


@pytest.mark.asyncio
async def test_a_part_grant_stores_the_part_not_the_object(
    local_store: LocalObjectStore, clock: SettableClock
) -> None:
    upload_id = await local_store.start_multipart(KEY)
    url = await local_store.presigned_part_url(KEY, upload_id, 4, timedelta(minutes=5), max_bytes=100)

    async with AsyncTestClient(app=_app(local_store, clock)) as http:
        response = await http.put(_path(url), content=b"part four", headers={"Content-Type": "text/html"})

    assert response.status_code == 201
    assert response.json() == {
        "key": KEY,
        "upload_id": upload_id,
        "part_number": 4,
        "size": 9,
        "etag": _md5(b"part four"),
    }
    assert await local_store.stat(KEY) is None
    assert await local_store.list_parts(KEY, upload_id) == [Part(4, 9, _md5(b"part four"))]


@pytest.mark.asyncio
async def test_a_part_over_the_granted_size_is_refused_with_413(
    local_store: LocalObjectStore, clock: SettableClock
) -> None:
    upload_id = await local_store.start_multipart(KEY)
    url = await local_store.presigned_part_url(KEY, upload_id, 1, timedelta(minutes=5), max_bytes=1000)

    async with AsyncTestClient(app=_app(local_store, clock)) as http:
        too_big = await http.put(_path(url), content=b"x" * 1001)
        request = http.build_request("PUT", _path(url), content=b"x" * 1001)
        del request.headers["Content-Length"]  # only the running count can stop a chunked body
        too_big_chunked = await http.send(request)
        exact = await http.put(_path(url), content=b"x" * 1000)

    assert (too_big.status_code, too_big_chunked.status_code, exact.status_code) == (413, 413, 201)
    assert await local_store.list_parts(KEY, upload_id) == [Part(1, 1000, _md5(b"x" * 1000))]


@pytest.mark.asyncio
async def test_a_part_for_a_closed_upload_is_404(local_store: LocalObjectStore, clock: SettableClock) -> None:
    upload_id = await local_store.start_multipart(KEY)
    url = await local_store.presigned_part_url(KEY, upload_id, 1, timedelta(minutes=5), max_bytes=100)
    await local_store.abort_multipart(KEY, upload_id)

    async with AsyncTestClient(app=_app(local_store, clock)) as http:
        response = await http.put(_path(url), content=b"late part")

    assert response.status_code == 404
    assert "start a new upload" in response.json()["detail"]
    assert _files_under(local_store.root) == []


@pytest.mark.asyncio
async def test_an_expired_part_grant_is_401(local_store: LocalObjectStore, clock: SettableClock) -> None:
    upload_id = await local_store.start_multipart(KEY)
    url = await local_store.presigned_part_url(KEY, upload_id, 1, timedelta(minutes=5), max_bytes=100)
    clock.advance(timedelta(minutes=5))

    async with AsyncTestClient(app=_app(local_store, clock)) as http:
        response = await http.put(_path(url), content=b"late")

    assert response.status_code == 401
    assert await local_store.list_parts(KEY, upload_id) == []


@pytest.mark.asyncio
async def test_local_uploads_live_outside_the_key_space(local_store: LocalObjectStore) -> None:
    upload_id = await local_store.start_multipart(KEY, content_type=AGE)
    await local_store.put_part(KEY, upload_id, 1, _chunks(b"abc"))

    assert all(path.startswith(".multipart~/") for path in _files_under(local_store.root))
    with pytest.raises(InvalidObjectKey):  # '~' is in no key: no object operation reaches an upload
        await local_store.stat(f".multipart~/{upload_id}/00001")


async def _chunks(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
