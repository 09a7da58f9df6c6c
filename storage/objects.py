"""The object store: bid envelopes, tender documents and archives, by key, streamed and hashed.

Two implementations of one `ObjectStore` protocol run the same code paths: `LocalObjectStore` (a directory,
the embedded default) and `S3ObjectStore` (any S3 API through the `minio` client; SeaweedFS in tests).

Objects are never held whole in memory: uploads stream through a bounded hand-over from the event loop to
one blocking writer thread, which writes and hashes as it goes; downloads are read chunk by chunk. All
blocking I/O and all hashing happens off the event loop.

Presigned URLs let a client move large objects without the application in between. S3 signs its own; the
local store points at the server's streaming endpoint (`storage.object_routes`) with an HMAC-signed,
expiring grant (`sign_grant` / `verify_grant`), so both stores offer the same upload flow.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import io
import json
import os
import re
import tempfile
import threading
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Final, Protocol, TypeVar, cast, runtime_checkable

from minio import Minio
from minio.error import S3Error
from urllib3 import BaseHTTPResponse

from storage.clock import SystemClock

DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"
DEFAULT_CHUNK_SIZE: Final = 64 * 1024
MAX_KEY_LENGTH: Final = 512
# File systems cap a name at 255 bytes; the local store's temporary names add a prefix and a suffix.
MAX_KEY_SEGMENT_LENGTH: Final = 200
GRANT_METHODS: Final = frozenset({"PUT", "GET"})

_KEY_CHARS = re.compile(r"[A-Za-z0-9._/-]+")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_HASH_BLOCK = 1024 * 1024
_PIPE_DEPTH = 16  # chunks in flight between the event loop and a writer thread (1 MiB at 64 KiB chunks)
_MIN_S3_PART = 5 * 1024 * 1024  # the S3 minimum part size
_S3_SHA256_HEADER = "x-amz-meta-sha256"
_MAX_TOKEN_LENGTH = 4096
_MIN_SECRET_BYTES = 16
_GRANT_CONTEXT = b"ggzy object grant v1\n"

T = TypeVar("T")


class InvalidObjectKey(ValueError):
    """The key is not one the store accepts (see `validate_key`)."""


class ObjectNotFound(KeyError):
    """No object is stored under the key."""


class InvalidGrant(ValueError):
    """A presigned-URL grant that is malformed, forged, for another method, or expired."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the store knows about one object. `sha256` is hex, or None when the store does not know it."""

    key: str
    size: int
    sha256: str | None
    content_type: str


@dataclass(frozen=True, slots=True)
class Grant:
    """A verified permission to PUT or GET one key until `expires_at`, optionally capped at `max_bytes`."""

    method: str
    key: str
    expires_at: datetime
    max_bytes: int | None


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

    async def presigned_get_url(self, key: str, expires: timedelta) -> str:
        """A URL a client can GET the object from, valid for `expires`."""
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


def sign_grant(secret: bytes, method: str, key: str, expires_at: datetime, max_bytes: int | None) -> str:
    """Sign a grant to `method` (PUT or GET) `key` until `expires_at`; return a URL-safe token.

    The token is `base64url(payload) "." base64url(HMAC-SHA256(secret, context || payload))`, where the
    payload is compact JSON `{"m": method, "k": key, "e": expiry epoch seconds, "x": max_bytes}`.
    """
    _check_secret(secret)
    method = _check_method(method)
    validate_key(key)
    if max_bytes is not None and (isinstance(max_bytes, bool) or max_bytes < 0):
        raise ValueError("max_bytes must be a non-negative integer or None")
    payload = json.dumps(
        {"m": method, "k": key, "e": int(_aware(expires_at).timestamp()), "x": max_bytes},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    body = _b64encode(payload)
    return f"{body}.{_b64encode(_grant_mac(secret, body))}"


def verify_grant(secret: bytes, token: str, method: str, now: datetime) -> Grant:
    """Return the grant in `token` if its signature is ours, it is for `method`, and it has not expired.

    Raises `InvalidGrant` otherwise. A grant is valid strictly before its expiry second.
    """
    _check_secret(secret)
    method = _check_method(method)
    now = _aware(now)
    if not isinstance(token, str) or not token.isascii() or len(token) > _MAX_TOKEN_LENGTH:
        raise InvalidGrant("malformed grant")
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature:
        raise InvalidGrant("malformed grant")
    if not hmac.compare_digest(_b64encode(_grant_mac(secret, body)), signature):
        raise InvalidGrant("grant signature does not match")
    try:
        fields = json.loads(_b64decode(body))
        granted_method, key, expiry, max_bytes = fields["m"], fields["k"], fields["e"], fields["x"]
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidGrant("malformed grant") from exc
    if not (
        isinstance(granted_method, str)
        and isinstance(key, str)
        and type(expiry) is int
        and (max_bytes is None or type(max_bytes) is int)
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
    return Grant(method=granted_method, key=key, expires_at=expires_at, max_bytes=max_bytes)


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
        meta_tmp: str | None = None
        try:
            with os.fdopen(data_fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
                inode = os.fstat(out.fileno()).st_ino
            info = ObjectInfo(key=key, size=size, sha256=digest.hexdigest(), content_type=content_type)
            meta_tmp = _write_temp(path.parent, path.name, _meta_json(info, inode))
            try:
                os.replace(data_tmp, path)
            except IsADirectoryError as exc:
                raise InvalidObjectKey(f"object key {key!r} names a directory of other objects") from exc
            os.replace(meta_tmp, _meta_path(path))
        except BaseException:
            for leftover in (data_tmp, meta_tmp):
                if leftover is not None:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(leftover)
            raise
        _fsync_dir(path.parent)
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


def _open_object(path: Path, key: str) -> io.BufferedReader:
    try:
        file = path.open("rb")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise ObjectNotFound(key) from exc
    return file


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
        if part_size < _MIN_S3_PART:
            raise ValueError(f"part_size must be at least {_MIN_S3_PART} bytes (the S3 minimum)")
        if parallel_parts < 1:
            raise ValueError("parallel_parts must be at least 1")
        self._client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )
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

    async def presigned_get_url(self, key: str, expires: timedelta) -> str:
        """An S3 presigned GET URL."""
        validate_key(key)
        _check_expires(expires)
        return await asyncio.to_thread(self._client.presigned_get_object, self._bucket, key, expires)

    # Blocking helpers, always called in a worker thread.

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
