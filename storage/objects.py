"""The object store: bid envelopes, tender documents and archives, by key, streamed and hashed.

Two implementations of one `ObjectStore` protocol run the same code paths: `LocalObjectStore` (a directory,
the embedded default) and `S3ObjectStore` (any S3 API through the `minio` client; SeaweedFS in tests).

Objects are never held whole in memory: uploads stream through a bounded hand-over from the event loop to
one blocking writer thread, which writes and hashes as it goes; downloads are read chunk by chunk. All
blocking I/O and all hashing happens off the event loop.

A local file changes hands without passing through Python where the store allows it: `get_file` gives an
object as a local file with its SHA-256 (the local store hard-links the object's immutable file and hashes
its mapped pages), `put_file` stores a file whose SHA-256 its writer already computed (the local store
renames it into place from its `scratch` directory, on its own file system; S3 uploads it in parts).

Presigned URLs let a client move large objects without the application in between. S3 signs its own; the
local store points at the server's streaming endpoint (`storage.object_routes`) with an HMAC-signed,
expiring grant (`sign_grant` / `verify_grant`), so both stores offer the same upload flow. The store itself
enforces an upload's size (`presigned_upload`): the local grant carries its cap, S3 gets a POST policy with
a content-length range; a part URL signs its exact `Content-Length` on S3.

Multipart uploads (分片上传) let a bidder send a sealed envelope of hundreds of MiB in parts, each to its own
presigned URL, and resume after a dropped connection: `list_parts` says which parts arrived whole, the
client sends the rest, `complete_multipart` joins them in part-number order. Both stores keep S3's rules
(parts 1 to 10000, every part but the last at least `MIN_PART_SIZE`), so a client cannot tell them apart.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import errno
import hashlib
import hmac
import io
import json
import mmap
import os
import re
import secrets
import shutil
import tempfile
import threading
import urllib.parse
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Final, Protocol, TypeVar, cast, runtime_checkable

from minio import Minio
from minio.datatypes import Part as S3Part
from minio.datatypes import PostPolicy
from minio.error import S3Error
from minio.helpers import DictType
from urllib3 import BaseHTTPResponse

from storage.clock import Clock, SystemClock
from storage.settings import Settings

DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"
DEFAULT_CHUNK_SIZE: Final = 64 * 1024
MAX_KEY_LENGTH: Final = 512
# File systems cap a name at 255 bytes; the local store's temporary names add a prefix and a suffix.
MAX_KEY_SEGMENT_LENGTH: Final = 200
GRANT_METHODS: Final = frozenset({"PUT", "GET"})
MIN_PART_SIZE: Final = 5 * 1024 * 1024  # S3's minimum for every part of a multipart upload but the last
MAX_PART_SIZE: Final = 5 * 1024 * 1024 * 1024  # S3's maximum part size
MAX_PART_NUMBER: Final = 10_000  # part numbers run from 1 to this, as in S3

_KEY_CHARS = re.compile(r"[A-Za-z0-9._/-]+")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_HASH_BLOCK = 1024 * 1024
_MAP_WINDOW = 16 * 1024 * 1024  # a multiple of every page size
_PIPE_DEPTH = 16  # chunks in flight between the event loop and a writer thread (1 MiB at 64 KiB chunks)
_S3_SHA256_HEADER = "x-amz-meta-sha256"
MAX_TOKEN_LENGTH = 4096
_MIN_SECRET_BYTES = 16
_GRANT_CONTEXT = b"ggzy object grant v1\n"
_LOCAL_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
# S3 upload ids are opaque, but they travel into paths on some servers (SeaweedFS): allow no separators.
_S3_UPLOAD_ID = re.compile(r"[A-Za-z0-9._=+-]{1,1024}")

T = TypeVar("T")


class InvalidObjectKey(ValueError):
    """The key is not one the store accepts (see `validate_key`)."""


class ObjectNotFound(KeyError):
    """No object is stored under the key."""


class InvalidGrant(ValueError):
    """A presigned-URL grant that is malformed, forged, for another method, or expired."""


class UploadNotFound(KeyError):
    """No multipart upload with this id is open for this key: never started, completed, or aborted."""


class InvalidUpload(ValueError):
    """The multipart upload cannot be completed as it stands (no parts, or a non-final part too small)."""


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a multipart upload as the store holds it: `etag` is the hex MD5 of its bytes, as in S3."""

    number: int
    size: int
    etag: str


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the store knows about one object. `sha256` is hex, or None when the store does not know it."""

    key: str
    size: int
    sha256: str | None
    content_type: str


@dataclass(frozen=True, slots=True)
class UploadForm:
    """How a client sends one object under a size cap the store itself enforces: `PUT` the bytes to `url`
    (the local store's signed grant), or `POST` an HTML form to `url` (S3's POST policy): the `fields`
    first, then the file as the field `file`."""

    method: str
    url: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class Grant:
    """A verified permission to PUT or GET one key until `expires_at`, optionally capped at `max_bytes`.

    A part grant also names `upload_id` and `part_number`: it allows PUTting that one part and nothing else.
    """

    method: str
    key: str
    expires_at: datetime
    max_bytes: int | None
    upload_id: str | None = None
    part_number: int | None = None

    @property
    def is_part(self) -> bool:
        """True for a grant to upload one part of a multipart upload, not a whole object."""
        return self.upload_id is not None


@runtime_checkable
class ObjectStore(Protocol):
    """Objects by key. Every method validates the key first and raises `InvalidObjectKey`."""

    async def ensure_ready(self) -> None:
        """Create the bucket or directory if it does not exist yet."""
        ...

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        """Store the chunks under `key`, computing size and SHA-256 on the way, in constant memory.

        The object appears whole or not at all: when `chunks` raises (or the write fails), nothing new is
        left under `key` and the error propagates. A previous object under `key` is replaced on success.
        """
        ...

    async def put_bytes(
        self, key: str, data: bytes, *, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        """Store a small object that is already in memory."""
        ...

    def iter_chunks(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Read the object back in chunks; raises `ObjectNotFound` on the first iteration if it is missing."""
        ...

    async def scratch(self) -> Path:
        """A new empty directory for the caller's temporary files, which the caller removes when done.

        The local store makes it on its own file system, so that `get_file` and `put_file` between it and
        the store link and rename files instead of copying them. Its name carries this process's id, so
        that `sweep_scratch` can tell it from one a killed process left behind.
        """
        ...

    async def sweep_scratch(self) -> int:
        """Remove the scratch directories of processes of this host that are no longer running (a process
        killed mid-opening leaves its files there); answer how many were removed. Never touches the
        directories of a running process."""
        ...

    async def get_file(self, key: str, path: Path) -> ObjectInfo:
        """Give the object's bytes a new local file at `path` (which must not exist yet) and return their
        size and SHA-256, computed here from the file's bytes, off the event loop.

        The file may share its storage with the stored object (the local store links it): read it, never
        write to it. Raises `ObjectNotFound`.
        """
        ...

    async def put_file(
        self,
        key: str,
        path: Path,
        *,
        sha256: str,
        size: int,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> ObjectInfo:
        """Store the local file at `path` under `key` without reading it back: the caller computed its
        `sha256` as it wrote it (recorded as given, so `stat` knows it) and its `size` (checked against the
        file; a `ValueError` when they differ).

        The store takes the file over: `path` may be gone afterwards (the local store renames it into place
        when it lies on the store's file system, see `scratch`). The object appears whole or not at all, and
        replaces a previous one, as with `put_stream`.
        """
        ...

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size, content type and (if recorded at upload) SHA-256, without reading; None if missing."""
        ...

    async def hash_object(self, key: str) -> ObjectInfo:
        """Read the stored object back and compute its SHA-256 here, off the event loop.

        This is the authoritative hash (e.g. when a bid submission is finalised); `stat` only repeats what
        the uploader's path recorded. Raises `ObjectNotFound`.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing object is not an error (as in S3)."""
        ...

    async def presigned_put_url(self, key: str, expires: timedelta, *, max_bytes: int | None = None) -> str:
        """A URL a client can PUT the object's bytes to, valid for `expires`.

        `max_bytes` is enforced while streaming where the store can (local); a presigned S3 PUT cannot
        carry it, so whoever finalises an upload must still check the stored size.
        """
        ...

    async def presigned_upload(self, key: str, expires: timedelta, *, max_bytes: int) -> UploadForm:
        """A way for a client to upload the object, valid for `expires`, which the store refuses beyond
        `max_bytes`: a signed PUT grant (local) or a POST policy with a content-length range (S3)."""
        ...

    async def presigned_get_url(self, key: str, expires: timedelta) -> str:
        """A URL a client can GET the object from, valid for `expires`."""
        ...

    async def start_multipart(self, key: str, *, content_type: str = DEFAULT_CONTENT_TYPE) -> str:
        """Open a multipart upload to `key` and return its upload id; the object appears on completion."""
        ...

    async def presigned_part_url(
        self, key: str, upload_id: str, part_number: int, expires: timedelta, *, max_bytes: int
    ) -> str:
        """A URL a client can PUT part `part_number` (1 to 10000) of the upload to, valid for `expires`.

        A PUT to the same part number again replaces that part. The store enforces `max_bytes`: the local
        store refuses a longer part; on S3 the URL signs `Content-Length: max_bytes`, so the part must be
        exactly that long. Only the part numbers given URLs can be sent, which bounds the part count.
        Whether the upload is still open is checked when the part arrives, not here.
        """
        ...

    async def list_parts(self, key: str, upload_id: str) -> list[Part]:
        """The parts received whole so far, one per part number, ascending; raises `UploadNotFound`.

        A part still arriving, or one whose upload broke off, is not listed.
        """
        ...

    async def complete_multipart(self, key: str, upload_id: str) -> ObjectInfo:
        """Join every listed part in part-number order into the object at `key` and close the upload.

        Raises `InvalidUpload` when there are no parts or a part other than the last is smaller than
        `MIN_PART_SIZE` (the upload stays open, so the client can re-send that part), and `UploadNotFound`.
        `sha256` in the result is None where the store cannot know it without reading (S3): call
        `hash_object` for the authoritative hash.
        """
        ...

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Close the upload and discard its parts; aborting an unknown or closed upload does nothing."""
        ...


def validate_key(key: str) -> str:
    """Return `key` if it is a valid object key, else raise `InvalidObjectKey`.

    A key is 1 to 512 characters of `[A-Za-z0-9._/-]`, without a leading `/`, without `..`, and without
    empty or `.` path segments or segments over 200 characters, so it maps to the same single file under
    any root and to the same S3 object.
    """
    if not isinstance(key, str) or not key:
        raise InvalidObjectKey("an object key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidObjectKey(
            f"object key is {len(key)} characters long; at most {MAX_KEY_LENGTH} are allowed"
        )
    if not _KEY_CHARS.fullmatch(key):
        raise InvalidObjectKey(f"object key {key!r} may only contain A-Z a-z 0-9 . _ / -")
    if key.startswith("/"):
        raise InvalidObjectKey(f"object key {key!r} must not start with '/'")
    if ".." in key:
        raise InvalidObjectKey(f"object key {key!r} must not contain '..'")
    segments = key.split("/")
    if any(segment in ("", ".") for segment in segments):
        raise InvalidObjectKey(f"object key {key!r} has an empty or '.' path segment")
    if any(len(segment) > MAX_KEY_SEGMENT_LENGTH for segment in segments):
        raise InvalidObjectKey(
            f"object key {key!r} has a path segment over {MAX_KEY_SEGMENT_LENGTH} characters"
        )
    return key


# --- presigned grants for the local store -------------------------------------------------------------


def sign_grant(
    secret: bytes,
    method: str,
    key: str,
    expires_at: datetime,
    max_bytes: int | None,
    *,
    upload_id: str | None = None,
    part_number: int | None = None,
) -> str:
    """Sign a grant to `method` (PUT or GET) `key` until `expires_at`; return a URL-safe token.

    The token is `base64url(payload) "." base64url(HMAC-SHA256(secret, context || payload))`, where the
    payload is compact JSON `{"m": method, "k": key, "e": expiry epoch seconds, "x": max_bytes}`. A part
    grant (PUT only) adds `"u": upload_id, "p": part_number`, so the signature covers them too.
    """
    _check_secret(secret)
    method = _check_method(method)
    validate_key(key)
    if max_bytes is not None and (isinstance(max_bytes, bool) or max_bytes < 0):
        raise ValueError("max_bytes must be a non-negative integer or None")
    fields: dict[str, object] = {
        "m": method,
        "k": key,
        "e": int(_aware(expires_at).timestamp()),
        "x": max_bytes,
    }
    if upload_id is not None or part_number is not None:
        if method != "PUT" or upload_id is None or part_number is None:
            raise ValueError("a part grant is for PUT and names both the upload id and the part number")
        if not _LOCAL_UPLOAD_ID.fullmatch(upload_id):
            raise ValueError(f"{upload_id!r} is not an upload id of the local store")
        fields.update(u=upload_id, p=_check_part_number(part_number))
    payload = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
    body = _b64encode(payload)
    return f"{body}.{_b64encode(_grant_mac(secret, body))}"


def verify_grant(secret: bytes, token: str, method: str, now: datetime) -> Grant:
    """Return the grant in `token` if its signature is ours, it is for `method`, and it has not expired.

    Raises `InvalidGrant` otherwise. A grant is valid strictly before its expiry second.
    """
    _check_secret(secret)
    method = _check_method(method)
    now = _aware(now)
    if not isinstance(token, str) or not token.isascii() or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidGrant("malformed grant")
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature:
        raise InvalidGrant("malformed grant")
    if not hmac.compare_digest(_b64encode(_grant_mac(secret, body)), signature):
        raise InvalidGrant("grant signature does not match")
    try:
        fields = json.loads(_b64decode(body))
        granted_method, key, expiry, max_bytes = fields["m"], fields["k"], fields["e"], fields["x"]
        upload_id, part_number = fields.get("u"), fields.get("p")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidGrant("malformed grant") from exc
    if not (
        isinstance(granted_method, str)
        and isinstance(key, str)
        and type(expiry) is int
        and (max_bytes is None or type(max_bytes) is int)
        and (
            (upload_id is None and part_number is None)
            or (
                granted_method == "PUT"
                and isinstance(upload_id, str)
                and _LOCAL_UPLOAD_ID.fullmatch(upload_id)
                and type(part_number) is int
                and 1 <= part_number <= MAX_PART_NUMBER
            )
        )
    ):
        raise InvalidGrant("malformed grant")
    if granted_method != method:
        raise InvalidGrant(f"grant is for {granted_method}, not {method}")
    expires_at = datetime.fromtimestamp(expiry, UTC)
    if now >= expires_at:
        raise InvalidGrant(f"grant expired at {expires_at.isoformat()}")
    try:
        validate_key(key)
    except InvalidObjectKey as exc:
        raise InvalidGrant("malformed grant") from exc
    return Grant(
        method=granted_method,
        key=key,
        expires_at=expires_at,
        max_bytes=max_bytes,
        upload_id=upload_id,
        part_number=part_number,
    )


def _grant_mac(secret: bytes, body: str) -> bytes:
    return hmac.new(secret, _GRANT_CONTEXT + body.encode("ascii"), hashlib.sha256).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < _MIN_SECRET_BYTES:
        raise ValueError(f"the grant secret must be at least {_MIN_SECRET_BYTES} bytes")


def _check_method(method: str) -> str:
    normalised = method.upper()
    if normalised not in GRANT_METHODS:
        raise ValueError(f"a grant is for PUT or GET, not {method!r}")
    return normalised


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("naive datetime: instants must carry a time zone")
    return instant


def _check_expires(expires: timedelta) -> None:
    if expires <= timedelta(0):
        raise ValueError("a presigned URL must expire in the future")


def _check_part_number(part_number: int) -> int:
    if type(part_number) is not int or not 1 <= part_number <= MAX_PART_NUMBER:
        raise ValueError(f"a part number runs from 1 to {MAX_PART_NUMBER}, not {part_number!r}")
    return part_number


def _check_max_bytes(max_bytes: int) -> None:
    if type(max_bytes) is not int or max_bytes < 0:
        raise ValueError("max_bytes must be a non-negative integer")


def _check_part_max_bytes(max_bytes: int) -> None:
    if type(max_bytes) is not int or not 0 <= max_bytes <= MAX_PART_SIZE:
        raise ValueError(f"max_bytes of a part must be an integer from 0 to {MAX_PART_SIZE} (S3's limit)")


def _check_completable(parts: list[Part]) -> None:
    """S3's rule for completing, enforced alike by both stores: some parts, none but the last under 5 MiB."""
    if not parts:
        raise InvalidUpload("no part has been uploaded yet: upload at least one part, then complete")
    for part in parts[:-1]:
        if part.size < MIN_PART_SIZE:
            raise InvalidUpload(
                f"part {part.number} is {part.size} bytes, but every part except the last must be at least"
                f" {MIN_PART_SIZE} bytes (5 MiB): upload part {part.number} again, larger, then complete"
            )


# --- streaming from the event loop into a blocking thread ---------------------------------------------


class _SourceFailed(Exception):
    """Raised in the writer thread when the async source failed, so the writer discards its work."""


class _ChunkPipe:
    """A bounded hand-over of chunks from a coroutine on the event loop to one blocking consumer thread.

    At most `depth` chunks wait in between, so memory stays constant whatever the object's size and
    however slow either side is. All queue operations run on the loop; the thread asks for them.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, depth: int) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=depth)
        self._aborted = False

    # Event-loop side.

    async def feed(self, chunks: AsyncIterable[bytes], consumer: asyncio.Future[Any]) -> None:
        """Pass every chunk on, then the end mark; stop early if the consumer has already finished."""
        source = aiter(chunks)
        try:
            async for chunk in source:
                if consumer.done():
                    return
                if not chunk:
                    continue
                # A bytearray or memoryview the caller may reuse must be copied before it crosses over.
                data = chunk if type(chunk) is bytes else bytes(chunk)
                if not await self._put(data, consumer):
                    return
            await self._put(None, consumer)
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

    def abort(self) -> None:
        """Tell the consumer the source failed; it will raise `_SourceFailed` and clean up."""
        self._aborted = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def _put(self, item: bytes | None, consumer: asyncio.Future[Any]) -> bool:
        if not self._queue.full():
            self._queue.put_nowait(item)
            return True
        putter = asyncio.ensure_future(self._queue.put(item))
        try:
            await asyncio.wait({putter, consumer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not putter.done():
                putter.cancel()
        return putter.done() and not putter.cancelled()

    async def _take(self) -> list[bytes | None]:
        items = [await self._queue.get()]
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    # Consumer-thread side.

    def chunks(self) -> Iterator[bytes]:
        """Yield chunks until the end mark; raise `_SourceFailed` if the source failed instead."""
        while True:
            for item in self._take_blocking():
                if item is None:
                    if self._aborted:
                        raise _SourceFailed
                    return
                yield item

    def _take_blocking(self) -> list[bytes | None]:
        future = asyncio.run_coroutine_threadsafe(self._take(), self._loop)
        while True:
            try:
                return future.result(timeout=1.0)
            except TimeoutError:
                # A loop that closed under us will never answer; do not keep the thread forever.
                if self._loop.is_closed():
                    future.cancel()
                    raise _SourceFailed from None


class _PipeReader:
    """The read() side minio's `put_object(length=-1)` wants, hashing and counting what it hands out.

    read(n) returns exactly n bytes until the end: minio grows each part with `+=`, so short reads of
    64 KiB would cost quadratic copying per part.
    """

    def __init__(self, pipe: _ChunkPipe) -> None:
        self._chunks = pipe.chunks()
        self._pending: deque[bytes] = deque()
        self._pending_size = 0
        self._ended = False
        self.size = 0
        self.sha256 = hashlib.sha256()

    def read(self, size: int | None = -1) -> bytes:
        want = _HASH_BLOCK if size is None or size < 0 else size
        while not self._ended and self._pending_size < want:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._ended = True
            else:
                self._pending.append(chunk)
                self._pending_size += len(chunk)
        parts: list[bytes] = []
        taken = 0
        while self._pending and taken < want:
            chunk = self._pending.popleft()
            if taken + len(chunk) > want:
                cut = want - taken
                self._pending.appendleft(chunk[cut:])
                chunk = chunk[:cut]
            parts.append(chunk)
            taken += len(chunk)
        self._pending_size -= taken
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.sha256.update(data)
        self.size += len(data)
        return data


def _run_in_own_thread(function: Callable[[], T], name: str) -> asyncio.Future[T]:
    """Run `function` on a new daemon thread and return a future on the running loop for its outcome.

    A streaming writer waits on its client for as long as the upload takes; on the loop's default
    executor (a handful of threads) a few slow uploads would starve every other `to_thread` call.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    # Nobody may be left awaiting a writer that failed after its caller gave up; mark the error seen.
    future.add_done_callback(lambda done: done.cancelled() or done.exception())

    def run() -> None:
        value: T | None = None
        error: BaseException | None = None
        try:
            value = function()
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed; nobody is waiting any more
            loop.call_soon_threadsafe(_settle, future, value, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def _settle(future: asyncio.Future[T], value: T | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(cast(T, value))


async def _stream_into_thread(
    chunks: AsyncIterable[bytes], consume: Callable[[_ChunkPipe], T], name: str
) -> T:
    """Feed `chunks` to `consume(pipe)` running on its own thread; return what it returns.

    If the source fails (or the caller is cancelled), the consumer is told to discard its work and is
    waited for, so when this raises, nothing half-written is left behind.
    """
    pipe = _ChunkPipe(asyncio.get_running_loop(), _PIPE_DEPTH)
    consumer = _run_in_own_thread(lambda: consume(pipe), name)
    try:
        await pipe.feed(chunks, consumer)
    except BaseException:
        pipe.abort()
        await asyncio.wait({consumer})
        raise
    return await consumer


async def _single_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


# --- the local directory ------------------------------------------------------------------------------

# Sidecars and temporary files end in '~', which no key may contain, so they can never shadow an object.
_META_SUFFIX = "~meta"
_PART_SUFFIX = ".part~"
# Open multipart uploads live in <root>/.multipart~/<upload id>/: the '~' keeps the folder out of the key
# space, so it can never be read, written or deleted as an object. Each upload folder holds its record
# (key and content type) and one file per part, named by its zero-padded number, with a sidecar.
_UPLOADS_DIR = ".multipart~"
# Scratch directories (`scratch`) live in <root>/.scratch~/, out of the key space for the same reason.
_SCRATCH_DIR = ".scratch~"
# A scratch directory's name starts with its process's id: work-<pid>-<random>.
_SCRATCH_PREFIX = "work-{pid}-"
_S3_SCRATCH_PREFIX = "ggzy-scratch-{pid}-"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: running
    return True


def remove_orphaned_scratch(parent: Path, prefix: str) -> int:
    """Remove the directories in `parent` named `prefix` (with `{pid}` in it) whose process has ended."""
    head, _, tail = prefix.partition("{pid}")
    removed = 0
    try:
        entries = list(os.scandir(parent))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not entry.name.startswith(head) or not entry.is_dir(follow_symlinks=False):
            continue
        pid_text, sep, _ = entry.name[len(head) :].partition(tail)
        if not sep or not pid_text.isdigit() or int(pid_text) == os.getpid() or _running(int(pid_text)):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed += 1
    return removed


_UPLOAD_RECORD = "upload~json"
_PART_FILE = re.compile(r"[0-9]{5}")


class LocalObjectStore:
    """Objects as files under `root`; presigned URLs point at the server's own `/api/v1/objects/` endpoint.

    A write goes to a temporary file in the target directory, is fsynced, then renamed over the key, so a
    reader sees the old object or the new one, never a torn one. Size, SHA-256 and content type are kept
    in a sidecar `<key>~meta` that names the inode it describes; a sidecar left stale by a crash between
    the two renames is recognised and ignored (the SHA-256 then reads as unknown).
    """

    def __init__(
        self, root: Path, base_url: str, secret: bytes, *, now: Callable[[], datetime] | None = None
    ) -> None:
        _check_secret(secret)
        self._root = Path(root)
        self._base_url = base_url.rstrip("/")
        self._secret = secret
        self._now = now if now is not None else SystemClock().now

    @property
    def root(self) -> Path:
        """The directory the objects live in."""
        return self._root

    async def ensure_ready(self) -> None:
        """Create the root directory."""
        await asyncio.to_thread(self._root.mkdir, parents=True, exist_ok=True)

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        """Stream `chunks` into a temporary file, then rename it over `key` (see `ObjectStore.put_stream`)."""
        path = self._path(key)
        return await _stream_into_thread(
            chunks, lambda pipe: self._write(key, path, pipe.chunks(), content_type), "ggzy-object-write"
        )

    async def put_bytes(
        self, key: str, data: bytes, *, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        """Store `data` under `key`."""
        return await self.put_stream(key, _single_chunk(data), content_type=content_type)

    async def iter_chunks(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Read the object in chunks of `chunk_size` bytes, each read in a worker thread."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        path = self._path(key)
        file = await asyncio.to_thread(_open_object, path, key)
        try:
            while chunk := await asyncio.to_thread(file.read, chunk_size):
                yield chunk
        finally:
            file.close()

    async def scratch(self) -> Path:
        """A new directory under `<root>/.scratch~/`, on the store's own file system."""
        return await asyncio.to_thread(self._scratch)

    async def sweep_scratch(self) -> int:
        """Remove the scratch directories under `<root>/.scratch~/` that no running process owns."""
        return await asyncio.to_thread(remove_orphaned_scratch, self._root / _SCRATCH_DIR, _SCRATCH_PREFIX)

    async def get_file(self, key: str, path: Path) -> ObjectInfo:
        """Hard-link the object's file at `path` (a copy when that cannot be done) and hash it in a thread.

        A link costs no copy and is a faithful snapshot: an object's file is never written in place, only
        replaced by a rename, so the linked inode keeps the bytes it had.
        """
        source = self._path(key)
        return await asyncio.to_thread(self._get_file, key, source, Path(path))

    async def put_file(
        self,
        key: str,
        path: Path,
        *,
        sha256: str,
        size: int,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> ObjectInfo:
        """fsync the file, then rename it over `key` with a sidecar recording `sha256` (see
        `ObjectStore.put_file`); a file on another file system is copied instead."""
        target = self._path(key)
        info = _given_info(key, sha256, size, content_type)
        return await asyncio.to_thread(self._put_file, key, target, Path(path), info)

    async def stat(self, key: str) -> ObjectInfo | None:
        """What the sidecar recorded about the object, or None if there is no object."""
        path = self._path(key)
        return await asyncio.to_thread(self._stat, key, path)

    async def hash_object(self, key: str) -> ObjectInfo:
        """Read the file back in a worker thread and compute its SHA-256."""
        path = self._path(key)
        return await asyncio.to_thread(self._hash, key, path)

    async def delete(self, key: str) -> None:
        """Remove the object and its sidecar."""
        path = self._path(key)
        await asyncio.to_thread(self._delete, path)

    async def presigned_put_url(self, key: str, expires: timedelta, *, max_bytes: int | None = None) -> str:
        """A URL to PUT the object to this server, good for `expires`, capped at `max_bytes` if given."""
        return self._grant_url("PUT", key, expires, max_bytes)

    async def presigned_get_url(self, key: str, expires: timedelta) -> str:
        """A URL to GET the object from this server, good for `expires`."""
        return self._grant_url("GET", key, expires, None)

    async def presigned_upload(self, key: str, expires: timedelta, *, max_bytes: int) -> UploadForm:
        """A PUT grant to this server, which stops the body past `max_bytes` (413)."""
        _check_max_bytes(max_bytes)
        return UploadForm("PUT", self._grant_url("PUT", key, expires, max_bytes), {})

    async def start_multipart(self, key: str, *, content_type: str = DEFAULT_CONTENT_TYPE) -> str:
        """Open an upload folder under a random id, recording the key and content type it is for."""
        validate_key(key)
        upload_id = secrets.token_hex(16)
        await asyncio.to_thread(self._start_upload, key, upload_id, content_type)
        return upload_id

    async def presigned_part_url(
        self, key: str, upload_id: str, part_number: int, expires: timedelta, *, max_bytes: int
    ) -> str:
        """A URL to PUT one part to this server; the grant names key, upload and part number."""
        validate_key(key)
        self._upload_dir(upload_id)
        _check_part_number(part_number)
        _check_part_max_bytes(max_bytes)
        _check_expires(expires)
        token = sign_grant(
            self._secret,
            "PUT",
            key,
            self._now() + expires,
            max_bytes,
            upload_id=upload_id,
            part_number=part_number,
        )
        return f"{self._base_url}/api/v1/objects/{token}"

    async def put_part(
        self, key: str, upload_id: str, part_number: int, chunks: AsyncIterable[bytes]
    ) -> Part:
        """Stream one part into a temporary file, then rename it over the part (the streaming endpoint's work).

        A part that breaks off leaves nothing; one that arrives whole replaces an earlier one of its number.
        Raises `UploadNotFound` if the upload is not open for `key` (also when it closes meanwhile).
        """
        validate_key(key)
        directory = self._upload_dir(upload_id)
        _check_part_number(part_number)
        await asyncio.to_thread(self._read_upload, key, upload_id, directory)
        return await _stream_into_thread(
            chunks,
            lambda pipe: _write_part(directory, upload_id, part_number, pipe.chunks()),
            "ggzy-part-write",
        )

    async def list_parts(self, key: str, upload_id: str) -> list[Part]:
        """The parts whose files are in the upload folder (see `ObjectStore.list_parts`)."""
        validate_key(key)
        directory = self._upload_dir(upload_id)
        return await asyncio.to_thread(self._list_parts, key, upload_id, directory)

    async def complete_multipart(self, key: str, upload_id: str) -> ObjectInfo:
        """Copy the parts in order through a hashing writer into the object, in a thread of its own."""
        path = self._path(key)
        directory = self._upload_dir(upload_id)
        return await _run_in_own_thread(
            lambda: self._complete(key, upload_id, directory, path), "ggzy-multipart-complete"
        )

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Remove the upload folder and its parts, if the upload is open for `key`."""
        validate_key(key)
        try:
            directory = self._upload_dir(upload_id)
        except UploadNotFound:
            return
        await asyncio.to_thread(self._abort, key, upload_id, directory)

    def check_grant(self, token: str, method: str, now: datetime) -> Grant:
        """Verify a grant this store signed (see `verify_grant`); used by the streaming endpoint."""
        return verify_grant(self._secret, token, method, now)

    def _grant_url(self, method: str, key: str, expires: timedelta, max_bytes: int | None) -> str:
        validate_key(key)
        _check_expires(expires)
        token = sign_grant(self._secret, method, key, self._now() + expires, max_bytes)
        return f"{self._base_url}/api/v1/objects/{token}"

    def _path(self, key: str) -> Path:
        return self._root / validate_key(key)

    def _upload_dir(self, upload_id: str) -> Path:
        if not isinstance(upload_id, str) or not _LOCAL_UPLOAD_ID.fullmatch(upload_id):
            raise UploadNotFound(upload_id)
        return self._root / _UPLOADS_DIR / upload_id

    # Blocking helpers for multipart uploads, always called in a worker thread.

    def _start_upload(self, key: str, upload_id: str, content_type: str) -> None:
        uploads = self._root / _UPLOADS_DIR
        _make_dirs(self._root, uploads)
        # Built aside and renamed into place, so an upload folder always has its record.
        building = Path(tempfile.mkdtemp(dir=uploads, prefix=f".{upload_id}.", suffix="~"))
        try:
            record = json.dumps({"key": key, "content_type": content_type}, separators=(",", ":"))
            os.replace(_write_temp(building, _UPLOAD_RECORD, record.encode()), building / _UPLOAD_RECORD)
            _fsync_dir(building)
            building.rename(uploads / upload_id)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        _fsync_dir(uploads)

    def _read_upload(self, key: str, upload_id: str, directory: Path) -> str:
        """The upload's content type, if the upload is open for `key`; else `UploadNotFound`."""
        try:
            record = json.loads((directory / _UPLOAD_RECORD).read_bytes())
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise UploadNotFound(upload_id) from exc
        if not isinstance(record, dict) or record.get("key") != key:
            raise UploadNotFound(upload_id)  # an upload for another key is no upload for this one, as in S3
        content_type = record.get("content_type")
        return content_type if isinstance(content_type, str) and content_type else DEFAULT_CONTENT_TYPE

    def _list_parts(self, key: str, upload_id: str, directory: Path) -> list[Part]:
        self._read_upload(key, upload_id, directory)
        return _parts_in(directory, upload_id)

    def _complete(self, key: str, upload_id: str, directory: Path, path: Path) -> ObjectInfo:
        content_type = self._read_upload(key, upload_id, directory)
        # Claim the upload by renaming its folder: from here a concurrent complete, abort or part PUT
        # finds no upload, so the parts cannot change while they are joined.
        claimed = directory.with_name(f".{upload_id}.completing~")
        try:
            directory.rename(claimed)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise UploadNotFound(upload_id) from exc
        try:
            parts = _parts_in(claimed, upload_id)
            _check_completable(parts)
            info = self._write(key, path, _read_parts(claimed, parts), content_type)
        except BaseException:
            claimed.rename(directory)  # still open: the client may fix a part and complete again
            raise
        _remove_tree(claimed)
        return info

    def _abort(self, key: str, upload_id: str, directory: Path) -> None:
        try:
            self._read_upload(key, upload_id, directory)
        except UploadNotFound:
            return
        doomed = directory.with_name(f".{upload_id}.aborting~")
        try:
            directory.rename(doomed)  # the upload is gone at once, however long the removal takes
        except (FileNotFoundError, NotADirectoryError):
            return
        _remove_tree(doomed)

    # Blocking helpers, always called in a worker thread.

    def _write(self, key: str, path: Path, chunks: Iterator[bytes], content_type: str) -> ObjectInfo:
        try:
            _make_dirs(self._root, path.parent)
            data_fd, data_tmp = tempfile.mkstemp(
                dir=path.parent, prefix=f".{path.name}.", suffix=_PART_SUFFIX
            )
        except (FileExistsError, NotADirectoryError) as exc:
            raise InvalidObjectKey(f"object key {key!r} runs through an existing object") from exc
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(data_fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
                inode = os.fstat(out.fileno()).st_ino
        except BaseException:
            _unlink_quietly(data_tmp)
            raise
        info = ObjectInfo(key=key, size=size, sha256=digest.hexdigest(), content_type=content_type)
        _install(key, data_tmp, path, _meta_json(info, inode))
        return info

    def _scratch(self) -> Path:
        parent = self._root / _SCRATCH_DIR
        _make_dirs(self._root, parent)
        return Path(tempfile.mkdtemp(dir=parent, prefix=_SCRATCH_PREFIX.format(pid=os.getpid())))

    def _get_file(self, key: str, source: Path, path: Path) -> ObjectInfo:
        try:
            os.link(source, path)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError:
            # another file system, or a directory of other objects: copy (which tells the two apart)
            return self._copy_out(key, source, path)
        try:
            with path.open("rb") as file:
                stat = os.fstat(file.fileno())
                digest = _hash_mapped(file.fileno(), stat.st_size)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        recorded = _read_meta(key, source, stat)
        return ObjectInfo(key=key, size=stat.st_size, sha256=digest, content_type=recorded.content_type)

    def _copy_out(self, key: str, source: Path, path: Path) -> ObjectInfo:
        with _open_object(source, key) as file:
            stat = os.fstat(file.fileno())
            digest = hashlib.sha256()
            size = 0
            buffer = bytearray(_HASH_BLOCK)
            view = memoryview(buffer)
            try:
                with path.open("xb") as out:
                    while count := file.readinto(view):
                        out.write(view[:count])
                        digest.update(view[:count])
                        size += count
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        recorded = _read_meta(key, source, stat)
        return ObjectInfo(key=key, size=size, sha256=digest.hexdigest(), content_type=recorded.content_type)

    def _put_file(self, key: str, target: Path, path: Path, info: ObjectInfo) -> ObjectInfo:
        try:
            _make_dirs(self._root, target.parent)
        except (FileExistsError, NotADirectoryError) as exc:
            raise InvalidObjectKey(f"object key {key!r} runs through an existing object") from exc
        with path.open("rb") as file:
            _check_file_size(path, os.fstat(file.fileno()).st_size, info.size)
            os.fsync(file.fileno())
        data_fd, data_tmp = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=_PART_SUFFIX
        )
        os.close(data_fd)
        try:
            try:
                os.replace(path, data_tmp)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                with open(data_tmp, "wb") as out, path.open("rb") as file:
                    shutil.copyfileobj(file, out, _HASH_BLOCK)
                    out.flush()
                    os.fsync(out.fileno())
            os.chmod(data_tmp, 0o600)  # as private as a streamed object's file
            stat = os.stat(data_tmp)
            _check_file_size(path, stat.st_size, info.size)
        except BaseException:
            _unlink_quietly(data_tmp)
            raise
        _install(key, data_tmp, target, _meta_json(info, stat.st_ino))
        return info

    def _stat(self, key: str, path: Path) -> ObjectInfo | None:
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return _read_meta(key, path, stat)

    def _hash(self, key: str, path: Path) -> ObjectInfo:
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray(_HASH_BLOCK)
        view = memoryview(buffer)
        with _open_object(path, key) as file:
            stat = os.fstat(file.fileno())
            while count := file.readinto(view):
                digest.update(view[:count])
                size += count
        recorded = _read_meta(key, path, stat)
        return ObjectInfo(key=key, size=size, sha256=digest.hexdigest(), content_type=recorded.content_type)

    def _delete(self, path: Path) -> None:
        removed = False
        for victim in (path, _meta_path(path)):
            try:
                victim.unlink()
                removed = True
            except (FileNotFoundError, NotADirectoryError):
                pass
            except IsADirectoryError:
                return  # a "directory" of other objects, not an object
        if removed:
            _fsync_dir(path.parent)


def _unlink_quietly(path: str | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _install(key: str, data_tmp: str, target: Path, meta: bytes) -> None:
    """Rename a written, synced temporary file into place at `target` with its sidecar `meta`: the object
    appears whole or not at all, and on any failure neither temporary file is left behind."""
    meta_tmp: str | None = None
    try:
        meta_tmp = _write_temp(target.parent, target.name, meta)
        try:
            os.replace(data_tmp, target)
        except IsADirectoryError as exc:
            raise InvalidObjectKey(f"object key {key!r} names a directory of other objects") from exc
        os.replace(meta_tmp, _meta_path(target))
    except BaseException:
        _unlink_quietly(data_tmp)
        _unlink_quietly(meta_tmp)
        raise
    _fsync_dir(target.parent)


def _write_part(directory: Path, upload_id: str, number: int, chunks: Iterator[bytes]) -> Part:
    """Write a part to a temporary file in the upload folder, then rename it (and its sidecar) into place."""
    path = directory / f"{number:05d}"
    try:
        data_fd, data_tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=_PART_SUFFIX)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise UploadNotFound(upload_id) from exc
    md5 = hashlib.md5(usedforsecurity=False)  # S3's part ETag, so a resuming client can compare
    size = 0
    meta_tmp: str | None = None
    try:
        with os.fdopen(data_fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                md5.update(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
            inode = os.fstat(out.fileno()).st_ino
        part = Part(number=number, size=size, etag=md5.hexdigest())
        record = {"size": size, "etag": part.etag, "inode": inode}
        meta_tmp = _write_temp(directory, path.name, json.dumps(record, separators=(",", ":")).encode())
        os.replace(data_tmp, path)
        os.replace(meta_tmp, _meta_path(path))
    except BaseException as exc:
        _unlink_quietly(data_tmp)
        _unlink_quietly(meta_tmp)
        if isinstance(exc, FileNotFoundError):  # the upload was completed or aborted meanwhile
            raise UploadNotFound(upload_id) from exc
        raise
    _fsync_dir(directory)
    return part


def _parts_in(directory: Path, upload_id: str) -> list[Part]:
    """The parts in an upload folder, ascending. Temporary files of parts still arriving are not parts."""
    try:
        names = sorted(entry.name for entry in os.scandir(directory) if _PART_FILE.fullmatch(entry.name))
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise UploadNotFound(upload_id) from exc
    parts: list[Part] = []
    for name in names:
        with contextlib.suppress(FileNotFoundError):  # removed by an abort meanwhile
            parts.append(_read_part(directory / name))
    return parts


def _read_part(path: Path) -> Part:
    """The part's size and ETag from its sidecar, or from its bytes if a crash left the sidecar stale."""
    stat = path.stat()
    try:
        record = json.loads(_meta_path(path).read_bytes())
    except (OSError, ValueError):
        record = None
    etag = record.get("etag") if isinstance(record, dict) else None
    if (
        not isinstance(record, dict)
        or record.get("inode") != stat.st_ino
        or record.get("size") != stat.st_size
        or not isinstance(etag, str)
    ):
        md5 = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as file:
            while block := file.read(_HASH_BLOCK):
                md5.update(block)
        etag = md5.hexdigest()
    return Part(number=int(path.name), size=stat.st_size, etag=etag)


def _read_parts(directory: Path, parts: list[Part]) -> Iterator[bytes]:
    """The bytes of `parts` in order, a block at a time."""
    for part in parts:
        with (directory / f"{part.number:05d}").open("rb") as file:
            while block := file.read(_HASH_BLOCK):
                yield block


def _remove_tree(directory: Path) -> None:
    """Remove a claimed upload folder; a part writer that lost the race may still drop a file into it."""
    for _ in range(3):
        try:
            shutil.rmtree(directory)
        except OSError:
            if not os.path.lexists(directory):
                return
            continue
        return
    shutil.rmtree(directory, ignore_errors=True)


def _open_object(path: Path, key: str) -> io.BufferedReader:
    try:
        file = path.open("rb")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise ObjectNotFound(key) from exc
    return file


def _hash_mapped(fd: int, size: int) -> str:
    """The SHA-256 of a file's first `size` bytes, hashed straight from its mapped pages (no copy), one
    window at a time so that resident memory stays bounded whatever the file's size."""
    digest = hashlib.sha256()
    offset = 0
    while offset < size:
        length = min(_MAP_WINDOW, size - offset)
        with mmap.mmap(fd, length, access=mmap.ACCESS_READ, offset=offset) as window:
            digest.update(window)
        offset += length
    return digest.hexdigest()


def _given_info(key: str, sha256: str, size: int, content_type: str) -> ObjectInfo:
    validate_key(key)
    if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
        raise ValueError("sha256 must be 64 lowercase hex digits")
    if size < 0:
        raise ValueError("size must not be negative")
    return ObjectInfo(key=key, size=size, sha256=sha256, content_type=content_type)


def _check_file_size(path: Path, actual: int, expected: int) -> None:
    if actual != expected:
        raise ValueError(f"{path.name} has {actual} bytes, not the {expected} the caller gave")


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + _META_SUFFIX)


def _meta_json(info: ObjectInfo, inode: int) -> bytes:
    record = {"size": info.size, "sha256": info.sha256, "content_type": info.content_type, "inode": inode}
    return json.dumps(record, separators=(",", ":")).encode()


def _read_meta(key: str, path: Path, stat: os.stat_result) -> ObjectInfo:
    """The sidecar's facts if it describes this very file; otherwise only what the file itself tells."""
    unknown = ObjectInfo(key=key, size=stat.st_size, sha256=None, content_type=DEFAULT_CONTENT_TYPE)
    try:
        record = json.loads(_meta_path(path).read_bytes())
    except (OSError, ValueError):
        return unknown
    if (
        not isinstance(record, dict)
        or record.get("inode") != stat.st_ino
        or record.get("size") != stat.st_size
    ):
        return unknown
    sha256 = record.get("sha256")
    content_type = record.get("content_type")
    return ObjectInfo(
        key=key,
        size=stat.st_size,
        sha256=sha256 if isinstance(sha256, str) and _SHA256_HEX.fullmatch(sha256) else None,
        content_type=content_type if isinstance(content_type, str) and content_type else DEFAULT_CONTENT_TYPE,
    )


def _write_temp(directory: Path, name: str, data: bytes) -> str:
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=_PART_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return temp


def _make_dirs(root: Path, directory: Path) -> None:
    """Create `directory` under `root`, fsyncing each new directory's parent so the entry survives a crash."""
    missing: list[Path] = []
    current = directory
    while current != root and not current.is_dir():
        missing.append(current)
        current = current.parent
    if not root.is_dir():
        raise FileNotFoundError(f"object store root {root} does not exist; call ensure_ready() first")
    for new in reversed(missing):
        try:
            new.mkdir()
        except FileExistsError:
            if not new.is_dir():  # an object's file, not a directory a concurrent writer just made
                raise
            continue
        _fsync_dir(new.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- S3 -----------------------------------------------------------------------------------------------

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound"})
_NO_UPLOAD_CODES = frozenset({"NoSuchUpload"})
_BAD_UPLOAD_CODES = frozenset({"EntityTooSmall", "InvalidPart", "InvalidPartOrder"})
_LIST_PARTS_PAGE = 1000


class S3ObjectStore:
    """Objects in one S3 bucket through the (blocking) `minio` client, every call in a worker thread.

    Uploads of unknown length go up as multipart uploads of `part_size` bytes, at most `parallel_parts`
    at a time, so memory stays around (parallel_parts + 2) x part_size whatever the object's size. A
    failed upload is aborted, so no object appears. The SHA-256 is known to `stat` only for `put_bytes`
    (S3 takes metadata before the bytes); `put_stream` returns it and `hash_object` recomputes it.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str = "us-east-1",
        *,
        part_size: int = 8 * 1024 * 1024,
        parallel_parts: int = 2,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (the S3 minimum)")
        if parallel_parts < 1:
            raise ValueError("parallel_parts must be at least 1")
        self._client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )
        self._signer = _SigV4(endpoint, access_key, secret_key, region, secure)
        self._bucket = bucket
        self._part_size = part_size
        self._parallel_parts = parallel_parts

    @property
    def bucket(self) -> str:
        """The bucket the objects live in."""
        return self._bucket

    async def ensure_ready(self) -> None:
        """Create the bucket if it does not exist."""
        await asyncio.to_thread(self._ensure_bucket)

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        """Stream `chunks` into a multipart upload (see `ObjectStore.put_stream`)."""
        validate_key(key)

        def upload(pipe: _ChunkPipe) -> ObjectInfo:
            reader = _PipeReader(pipe)
            self._client.put_object(
                self._bucket,
                key,
                cast(BinaryIO, reader),  # minio only calls read()
                length=-1,
                part_size=self._part_size,
                num_parallel_uploads=self._parallel_parts,
                content_type=content_type,
            )
            return ObjectInfo(
                key=key, size=reader.size, sha256=reader.sha256.hexdigest(), content_type=content_type
            )

        return await _stream_into_thread(chunks, upload, "ggzy-object-upload")

    async def put_bytes(
        self, key: str, data: bytes, *, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        """Store `data` under `key`, with its SHA-256 as object metadata."""
        validate_key(key)

        def upload() -> ObjectInfo:
            sha256 = hashlib.sha256(data).hexdigest()
            self._client.put_object(
                self._bucket,
                key,
                io.BytesIO(data),
                length=len(data),
                part_size=self._part_size,
                num_parallel_uploads=self._parallel_parts,
                content_type=content_type,
                metadata={_S3_SHA256_HEADER: sha256},
            )
            return ObjectInfo(key=key, size=len(data), sha256=sha256, content_type=content_type)

        return await asyncio.to_thread(upload)

    async def iter_chunks(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Read the object in chunks of `chunk_size` bytes, each read in a worker thread."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        validate_key(key)
        response = await asyncio.to_thread(self._get, key)
        try:
            while chunk := await asyncio.to_thread(response.read, chunk_size):
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def scratch(self) -> Path:
        """A new directory in the system's temporary directory."""
        prefix = _S3_SCRATCH_PREFIX.format(pid=os.getpid())
        return Path(await asyncio.to_thread(tempfile.mkdtemp, None, prefix))

    async def sweep_scratch(self) -> int:
        """Remove this host's S3 scratch directories in the temporary directory that no running process owns."""
        return await asyncio.to_thread(
            remove_orphaned_scratch, Path(tempfile.gettempdir()), _S3_SCRATCH_PREFIX
        )

    async def get_file(self, key: str, path: Path) -> ObjectInfo:
        """Download the object into `path` in one worker thread, hashing it on the way."""
        validate_key(key)
        return await asyncio.to_thread(self._get_file, key, Path(path))

    async def put_file(
        self,
        key: str,
        path: Path,
        *,
        sha256: str,
        size: int,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> ObjectInfo:
        """Upload the file in parts from disk (`fput_object`), its SHA-256 as object metadata, so `stat`
        knows it; the file is left in place for the caller to remove."""
        info = _given_info(key, sha256, size, content_type)

        def upload() -> ObjectInfo:
            _check_file_size(Path(path), os.stat(path).st_size, size)
            self._client.fput_object(
                self._bucket,
                key,
                str(path),
                content_type=content_type,
                metadata={_S3_SHA256_HEADER: sha256},
                part_size=self._part_size,
                num_parallel_uploads=self._parallel_parts,
            )
            return info

        return await asyncio.to_thread(upload)

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size, content type and recorded SHA-256 from a HEAD request; None if there is no object."""
        validate_key(key)
        return await asyncio.to_thread(self._stat, key)

    async def hash_object(self, key: str) -> ObjectInfo:
        """Download the object in a worker thread and compute its SHA-256."""
        validate_key(key)
        return await asyncio.to_thread(self._hash, key)

    async def delete(self, key: str) -> None:
        """Remove the object."""
        validate_key(key)
        await asyncio.to_thread(self._client.remove_object, self._bucket, key)

    async def presigned_put_url(self, key: str, expires: timedelta, *, max_bytes: int | None = None) -> str:
        """An S3 presigned PUT URL. S3 cannot cap its size: check `stat(key).size` when finalising."""
        validate_key(key)
        _check_expires(expires)
        return await asyncio.to_thread(self._client.presigned_put_object, self._bucket, key, expires)

    async def presigned_upload(self, key: str, expires: timedelta, *, max_bytes: int) -> UploadForm:
        """A POST policy for exactly this key with `content-length-range` 0 to `max_bytes`: S3 refuses a
        larger body (EntityTooLarge) and any other key (AccessDenied)."""
        validate_key(key)
        _check_expires(expires)
        _check_max_bytes(max_bytes)
        policy = PostPolicy(self._bucket, SystemClock().now() + expires)
        policy.add_equals_condition("key", key)
        policy.add_content_length_range_condition(0, max_bytes)
        form = await asyncio.to_thread(self._client.presigned_post_policy, policy)
        return UploadForm("POST", f"{self._signer.base_url}/{self._bucket}", {"key": key, **form})

    async def presigned_get_url(self, key: str, expires: timedelta) -> str:
        """An S3 presigned GET URL."""
        validate_key(key)
        _check_expires(expires)
        return await asyncio.to_thread(self._client.presigned_get_object, self._bucket, key, expires)

    async def start_multipart(self, key: str, *, content_type: str = DEFAULT_CONTENT_TYPE) -> str:
        """CreateMultipartUpload; the content type is the completed object's."""
        validate_key(key)
        headers: DictType = {"Content-Type": content_type}
        return await asyncio.to_thread(self._client._create_multipart_upload, self._bucket, key, headers)

    async def presigned_part_url(
        self, key: str, upload_id: str, part_number: int, expires: timedelta, *, max_bytes: int
    ) -> str:
        """A presigned UploadPart URL that signs `Content-Length: max_bytes`: S3 takes exactly that many."""
        validate_key(key)
        _check_s3_upload_id(upload_id)
        _check_part_number(part_number)
        _check_part_max_bytes(max_bytes)
        _check_expires(expires)
        return self._signer.presign(
            "PUT",
            f"/{self._bucket}/{key}",
            {"uploadId": upload_id, "partNumber": str(part_number)},
            expires,
            content_length=max_bytes,
            now=SystemClock().now(),
        )

    async def list_parts(self, key: str, upload_id: str) -> list[Part]:
        """ListParts, every page, one part per number (see `_newest_uploads` for why that needs care)."""
        validate_key(key)
        _check_s3_upload_id(upload_id)
        uploads = await asyncio.to_thread(self._part_uploads, key, upload_id)
        return [_as_part(number, _newest_uploads(uploads[number])[0]) for number in sorted(uploads)]

    async def complete_multipart(self, key: str, upload_id: str) -> ObjectInfo:
        """ListParts, check S3's size rule here (for the same error as the local store), then complete."""
        validate_key(key)
        _check_s3_upload_id(upload_id)
        return await asyncio.to_thread(self._complete, key, upload_id)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """AbortMultipartUpload; an unknown or closed upload is not an error."""
        validate_key(key)
        try:
            _check_s3_upload_id(upload_id)
        except UploadNotFound:
            return
        await asyncio.to_thread(self._abort, key, upload_id)

    # Blocking helpers, always called in a worker thread.

    def _part_uploads(self, key: str, upload_id: str) -> dict[int, list[S3Part]]:
        """Every upload of every part number that S3 lists, by part number."""
        uploads: dict[int, list[S3Part]] = {}
        marker: int | None = None
        while True:
            try:
                page = self._client._list_parts(
                    self._bucket,
                    key,
                    upload_id,
                    max_parts=_LIST_PARTS_PAGE,
                    part_number_marker=None if marker is None else str(marker),
                )
            except S3Error as exc:
                if exc.code in _NO_UPLOAD_CODES:
                    raise UploadNotFound(upload_id) from exc
                raise
            for listed in page.parts:
                versions = uploads.setdefault(listed.part_number, [])
                if listed not in versions:  # a page may start again at the marker's own part
                    versions.append(listed)
            next_marker = int(page.next_part_number_marker or 0)
            if not page.is_truncated or (marker is not None and next_marker <= marker):
                return uploads
            marker = next_marker

    def _complete(self, key: str, upload_id: str) -> ObjectInfo:
        uploads = self._part_uploads(key, upload_id)
        numbers = sorted(uploads)
        chosen = {number: _newest_uploads(uploads[number]) for number in numbers}
        # Where S3 cannot say which of several same-second uploads of a part is newest, the smallest
        # decides the size rule: the server checks every upload it is given (SeaweedFS does).
        _check_completable(
            [_as_part(number, min(chosen[number], key=lambda u: u.size or 0)) for number in numbers]
        )
        # Every candidate ETag of a part goes in; a server that lists several uploads of one part
        # (SeaweedFS) joins the newest of them by its own nanosecond clock.
        listing = [S3Part(number, upload.etag) for number in numbers for upload in chosen[number]]
        try:
            self._client._complete_multipart_upload(self._bucket, key, upload_id, listing)
        except S3Error as exc:
            if exc.code in _NO_UPLOAD_CODES:
                raise UploadNotFound(upload_id) from exc
            if exc.code in _BAD_UPLOAD_CODES:
                raise InvalidUpload(f"S3 refused to complete the upload: {exc.message}") from exc
            raise
        info = self._stat(key)
        if info is None:  # replaced or removed in the instant since; the upload itself did complete
            raise ObjectNotFound(key)
        return info

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._client._abort_multipart_upload(self._bucket, key, upload_id)
        except S3Error as exc:
            if exc.code not in _NO_UPLOAD_CODES:
                raise

    def _ensure_bucket(self) -> None:
        if self._client.bucket_exists(self._bucket):
            return
        try:
            self._client.make_bucket(self._bucket)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _get(self, key: str) -> BaseHTTPResponse:
        try:
            return self._client.get_object(self._bucket, key)
        except S3Error as exc:
            if exc.code in _NOT_FOUND_CODES:
                raise ObjectNotFound(key) from exc
            raise

    def _get_file(self, key: str, path: Path) -> ObjectInfo:
        response = self._get(key)
        try:
            digest = hashlib.sha256()
            size = 0
            with path.open("xb") as out:
                try:
                    for block in response.stream(_HASH_BLOCK):
                        out.write(block)
                        digest.update(block)
                        size += len(block)
                except BaseException:
                    path.unlink(missing_ok=True)
                    raise
            content_type = response.headers.get("Content-Type") or DEFAULT_CONTENT_TYPE
        finally:
            response.close()
            response.release_conn()
        return ObjectInfo(key=key, size=size, sha256=digest.hexdigest(), content_type=content_type)

    def _stat(self, key: str) -> ObjectInfo | None:
        try:
            found = self._client.stat_object(self._bucket, key)
        except S3Error as exc:
            if exc.code in _NOT_FOUND_CODES:
                return None
            raise
        sha256 = (found.metadata or {}).get(_S3_SHA256_HEADER)
        return ObjectInfo(
            key=key,
            size=found.size or 0,
            sha256=sha256 if isinstance(sha256, str) and _SHA256_HEX.fullmatch(sha256) else None,
            content_type=found.content_type or DEFAULT_CONTENT_TYPE,
        )

    def _hash(self, key: str) -> ObjectInfo:
        response = self._get(key)
        try:
            digest = hashlib.sha256()
            size = 0
            for block in response.stream(_HASH_BLOCK):
                digest.update(block)
                size += len(block)
            content_type = response.headers.get("Content-Type") or DEFAULT_CONTENT_TYPE
        finally:
            response.close()
            response.release_conn()
        return ObjectInfo(key=key, size=size, sha256=digest.hexdigest(), content_type=content_type)


class _SigV4:
    """AWS Signature Version 4 query-string signing (presigned URLs), for what minio's presigner cannot
    do: sign a header (`Content-Length`), so the server refuses a body of any other length."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, region: str, secure: bool) -> None:
        self._host = endpoint
        self._access_key = access_key
        self._secret_key = secret_key
        self._region = region
        self.base_url = f"{'https' if secure else 'http'}://{endpoint}"

    def presign(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        expires: timedelta,
        *,
        content_length: int,
        now: datetime,
    ) -> str:
        stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        scope = f"{day}/{self._region}/s3/aws4_request"
        params = {
            **query,
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{self._access_key}/{scope}",
            "X-Amz-Date": stamp,
            "X-Amz-Expires": str(int(expires.total_seconds())),
            "X-Amz-SignedHeaders": "content-length;host",
        }
        canonical_query = "&".join(f"{_uri(k)}={_uri(v)}" for k, v in sorted(params.items()))
        canonical_path = _uri(path, safe="/~-._")
        request = "\n".join(
            [
                method,
                canonical_path,
                canonical_query,
                f"content-length:{content_length}",
                f"host:{self._host}",
                "",
                "content-length;host",
                "UNSIGNED-PAYLOAD",
            ]
        )
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(request.encode()).hexdigest()])
        key = f"AWS4{self._secret_key}".encode()
        for part in (day, self._region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{self.base_url}{canonical_path}?{canonical_query}&X-Amz-Signature={signature}"


def _uri(value: str, safe: str = "~-._") -> str:
    return urllib.parse.quote(value, safe=safe)


def _check_s3_upload_id(upload_id: str) -> None:
    if not isinstance(upload_id, str) or not _S3_UPLOAD_ID.fullmatch(upload_id) or set(upload_id) == {"."}:
        raise UploadNotFound(upload_id)


def _as_part(number: int, upload: S3Part) -> Part:
    return Part(number=number, size=upload.size or 0, etag=upload.etag)


def _newest_uploads(uploads: list[S3Part]) -> list[S3Part]:
    """The uploads of one part number that may be its newest: one, unless S3 cannot tell them apart.

    AWS lists one upload per part number. SeaweedFS keeps every upload of a part number until the upload
    completes and lists them all, with times to the second only; several with the newest second and
    different ETags cannot be ordered here, so all of them are returned, the first one as the best guess.
    """
    newest = max(upload.last_modified or _EPOCH for upload in uploads)
    candidates: list[S3Part] = []
    for upload in uploads:
        if (upload.last_modified or _EPOCH) == newest and all(c.etag != upload.etag for c in candidates):
            candidates.append(upload)
    return candidates


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def build_store(settings: Settings, clock: Clock) -> ObjectStore:
    """The configured store: S3 when `GGZY_S3_ENDPOINT` is set, otherwise files under `var/objects`."""
    if settings.s3_endpoint:
        return S3ObjectStore(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key,
            settings.s3_bucket,
            secure=settings.s3_secure,
        )
    return LocalObjectStore(
        settings.var_dir / "objects",
        settings.effective_public_url,
        settings.secret_key.encode(),
        now=clock.now,
    )
