"""The plaintext of a bid envelope: a pax tar stream of the bid files, then the signed manifest.

    files/<name>     each bid file, in the bidder's order
    manifest.json    canonical JSON: tender, lot, bidder, envelope kind, declared price (fen), duration,
                     and every file's name, size and SHA-256, plus the bidder's Ed25519 public key
    manifest.sig     base64 of the Ed25519 signature over b"ggzy-manifest-v1\\x00" + manifest.json, and LF

The manifest comes last so sealing reads each file once: its SHA-256 is computed while it streams into
the cipher. `age -d -i key.txt bid.age | tar -x` unpacks an envelope with standard tools.

Opening is strict: only these members, regular files only, no links or path tricks, names that are safe
basenames, the manifest canonical and signed, and every file's size and hash as the manifest says. Any
failure raises `EnvelopeError` with a `bid.*` code and removes what was written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import unicodedata
from collections import deque
from collections.abc import Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bidding import envelope
from bidding.envelope import EnvelopeError

MANIFEST_VERSION = 1
KINDS = ("technical", "commercial", "qualification")
FILES_PREFIX = "files/"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
SIGNATURE_CONTEXT = b"ggzy-manifest-v1\x00"
MAX_NAME = 200
MAX_TEXT = 200
MAX_MANIFEST = 1024 * 1024
MAX_PAX = 64 * 1024
# A safety bound, not a procurement rule: opening writes each file before the signature is checked.
MAX_FILES = 1000
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
# What a pax extended header may say: where and how big the member is, and harmless metadata. Anything
# else (linkpath, sparse maps, charset switches) is refused rather than half-understood.
PAX_KEYS = frozenset({"path", "size", "mtime", "atime", "ctime", "uid", "gid", "uname", "gname"})
# Decrypted batches in rotation at opening: the one being parsed and the ones still hashed and written.
_OPEN_RING = 4
# Batches the sealing helper thread fills (and hashes) ahead of the encryptor.
_READ_AHEAD = 2
# Below this, hashing inline costs less than handing the piece to the hashing thread.
_HASH_INLINE = 256 * 1024

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_TENDER = re.compile(r"[\x21-\x7e]{1,200}")
_ZERO_BLOCK = bytes(BLOCK)
_FIELDS = (
    "bidder",
    "declared_price_fen",
    "duration_days",
    "files",
    "kind",
    "lot",
    "signing_key",
    "tender",
    "version",
)
_FILE_FIELDS = ("name", "sha256", "size")


def name_problem(name: str) -> str | None:
    """Why `name` is not a safe bid file name (a plain basename), or None when it is."""
    if not name:
        return "is empty"
    if len(name) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if ".." in name or name == ".":
        return "contains '..' or is '.'"
    for char in name:
        # Cc: control characters (NUL included); Cs: lone surrogates from undecodable bytes
        if unicodedata.category(char) in ("Cc", "Cs"):
            return f"contains the control character U+{ord(char):04X}"
    return None


def _manifest_error(message: str) -> EnvelopeError:
    return EnvelopeError("bid.manifest", f"manifest: {message}")


def _is_int(value: object) -> bool:
    return type(value) is int  # bool is an int subclass and must not pass as a number


@dataclass(frozen=True)
class FileEntry:
    """One bid file as the manifest records it: safe basename, size in bytes, SHA-256 in lower-case hex."""

    name: str
    size: int
    sha256: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or (problem := name_problem(self.name)) is not None:
            raise _manifest_error(f"file name {self.name!r} {problem or 'is not a string'}")
        if not _is_int(self.size) or self.size < 0:
            raise _manifest_error(f"file {self.name!r}: size must be a non-negative integer")
        if not isinstance(self.sha256, str) or not _SHA256_HEX.fullmatch(self.sha256):
            raise _manifest_error(f"file {self.name!r}: sha256 must be 64 lower-case hex digits")


@dataclass(frozen=True)
class Manifest:
    """What a bid envelope says it is, signed by the bidder (投标文件清单).

    `kind` is the envelope of a multi-envelope procedure: technical (技术标), commercial (商务标) or
    qualification (资格审查). Only the commercial envelope declares a price, so a technical envelope
    opened first cannot leak it.
    """

    tender: str
    lot: int
    bidder: str
    kind: str
    declared_price_fen: int | None
    duration_days: int | None
    files: tuple[FileEntry, ...]
    signing_key: str
    version: int = MANIFEST_VERSION

    def __post_init__(self) -> None:
        if self.version != MANIFEST_VERSION or not _is_int(self.version):
            raise _manifest_error(f"version {self.version!r} is not supported (expected {MANIFEST_VERSION})")
        if not isinstance(self.tender, str) or not _TENDER.fullmatch(self.tender):
            raise _manifest_error("tender must be a tender code of 1..200 printable ASCII characters")
        if not _is_int(self.lot) or self.lot < 1:
            raise _manifest_error("lot must be a lot number, 1 or more")
        if (
            not isinstance(self.bidder, str)
            or not 1 <= len(self.bidder) <= MAX_TEXT
            or any(unicodedata.category(c) in ("Cc", "Cs") for c in self.bidder)
        ):
            raise _manifest_error(f"bidder must be 1..{MAX_TEXT} characters without control characters")
        if self.kind not in KINDS:
            raise _manifest_error(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        price = self.declared_price_fen
        if price is not None and (not _is_int(price) or price < 0):
            raise _manifest_error("declared_price_fen must be a non-negative integer (fen) or null")
        if self.kind == "commercial" and price is None:
            raise _manifest_error("a commercial envelope must declare its price (declared_price_fen)")
        if self.kind != "commercial" and price is not None:
            raise _manifest_error(
                f"a {self.kind} envelope must not declare a price; only the commercial one does"
            )
        if self.duration_days is not None and (not _is_int(self.duration_days) or self.duration_days < 1):
            raise _manifest_error("duration_days must be a positive integer or null")
        if not isinstance(self.files, tuple) or not self.files:
            raise _manifest_error("files must list at least one file")
        if len(self.files) > MAX_FILES:
            raise _manifest_error(f"more than {MAX_FILES} files")
        for entry in self.files:
            if not isinstance(entry, FileEntry):
                raise _manifest_error("files must be FileEntry values")
        names = [entry.name for entry in self.files]
        if len(set(names)) != len(names):
            raise _manifest_error("two files have the same name")
        if not isinstance(self.signing_key, str) or not _is_b64_of(self.signing_key, 32):
            raise _manifest_error("signing_key must be the base64 of a 32-byte Ed25519 public key")

    def to_bytes(self) -> bytes:
        """The canonical encoding: sorted keys, no spaces, UTF-8 (not \\u escapes)."""
        document = {
            "bidder": self.bidder,
            "declared_price_fen": self.declared_price_fen,
            "duration_days": self.duration_days,
            "files": [{"name": f.name, "sha256": f.sha256, "size": f.size} for f in self.files],
            "kind": self.kind,
            "lot": self.lot,
            "signing_key": self.signing_key,
            "tender": self.tender,
            "version": self.version,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse a manifest strictly: canonical bytes only, exact fields and types; EnvelopeError bid.manifest."""
        if len(data) > MAX_MANIFEST:
            raise _manifest_error(f"larger than {MAX_MANIFEST} bytes")
        try:
            document = json.loads(
                data.decode("utf-8"),
                object_pairs_hook=_no_duplicates,
                parse_float=_no_float,
                parse_constant=_no_float,
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise _manifest_error(f"not JSON: {exc}") from None
        fields = _exact_fields(document, _FIELDS, "the manifest")
        files = fields["files"]
        if not isinstance(files, list):
            raise _manifest_error("files must be a list")
        entries = []
        for index, item in enumerate(files):
            entry = _exact_fields(item, _FILE_FIELDS, f"files[{index}]")
            entries.append(FileEntry(entry["name"], entry["size"], entry["sha256"]))
        manifest = cls(
            tender=fields["tender"],
            lot=fields["lot"],
            bidder=fields["bidder"],
            kind=fields["kind"],
            declared_price_fen=fields["declared_price_fen"],
            duration_days=fields["duration_days"],
            files=tuple(entries),
            signing_key=fields["signing_key"],
            version=fields["version"],
        )
        # One spelling only: a second one (spaces, escapes, key order) could read differently elsewhere.
        if manifest.to_bytes() != data:
            raise _manifest_error("not in canonical form (sorted keys, no spaces, UTF-8)")
        return manifest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key appears twice in an object")
    return dict(pairs)


def _no_float(text: str) -> Any:
    raise ValueError(f"{text} is not an integer")


def _exact_fields(document: object, expected: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise _manifest_error(f"{where} must be an object")
    unknown = sorted(set(document) - set(expected))
    missing = sorted(set(expected) - set(document))
    if unknown:
        raise _manifest_error(f"{where} has unknown field(s): {', '.join(unknown)}")
    if missing:
        raise _manifest_error(f"{where} lacks field(s): {', '.join(missing)}")
    return document


def _is_b64_of(text: str, size: int) -> bool:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == size and base64.b64encode(raw).decode("ascii") == text


def signed_bytes(manifest_bytes: bytes) -> bytes:
    """What the bidder's Ed25519 key signs: a domain-separation prefix, then the manifest bytes."""
    return SIGNATURE_CONTEXT + manifest_bytes


# --- sealing ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SealedBid:
    """The manifest that went into the envelope, and what sealing wrote."""

    manifest: Manifest
    info: envelope.SealInfo


def _tar_header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    # pax: a UTF-8 name (Chinese file names) or a size beyond ustar's 8 GiB gets an extended header
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return bytes(-size % BLOCK)


@dataclass
class _OpenFile:
    name: str
    handle: io.BufferedReader
    size: int
    left: int
    # the file's bytes: copied out of mmap windows when it is big enough (see envelope.MappedReader)
    reader: envelope.MappedReader | None = None
    digest: Any = field(default_factory=hashlib.sha256)


class _BidStream:
    """The tar stream as a source for the encryptor: an envelope.BatchSource (or a `readinto` one).

    As a BatchSource (what seal_bid uses), a helper thread fills batch buffers of its own, copying each
    file once out of mmap windows and SHA-256-ing it from that private copy, a batch or two ahead of
    the encryptor, which encrypts straight from the same buffers: the copy and the hashing (≈ 0.8 of a
    core at full speed) run beside the cipher and the writes (the other core). The manifest and its
    signature are built when the last file is done. As a `readinto` source, files are read into the
    encryptor's buffers and hashed there on the helper thread; before filling a buffer again, readinto
    waits for the hashing still reading that buffer.
    """

    def __init__(self, paths: Sequence[Path], draft: Manifest, signing: Ed25519PrivateKey) -> None:
        self._paths = deque(paths)
        self._draft = draft
        self._signing = signing
        self._pending = memoryview(b"")
        self._file: _OpenFile | None = None
        self._entries: list[tuple[str, int, Future[str]]] = []
        self._offset = 0
        self._mtime = 0
        self._finished = False
        self._hasher: ThreadPoolExecutor | None = None
        # pending hash jobs, each with the buffer (memoryview.obj) it reads
        self._hashing: list[tuple[object, Future[None]]] = []
        self.manifest: Manifest | None = None
        # it hashes on a thread of its own: the encryptor then writes on its thread (envelope.ReadIntoSource)
        self.busy_thread = True
        # read_batch: the helper thread fills and hashes `_staging` buffers in turn, `_READ_AHEAD` ahead
        self._inline_hash = False
        self._producer: ThreadPoolExecutor | None = None
        self._staging: list[bytearray] = []
        self._filling: deque[Future[int]] = deque()
        self._submitted = 0
        self._returned = 0

    def read_batch(self, size: int, /) -> memoryview:
        """The next `size` bytes of the stream (fewer only at its end), valid until two more calls."""
        if self._producer is None:
            self._inline_hash = True  # on the producer thread, which is the hashing thread
            self._producer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ggzy-bid-read")
            self._staging = [envelope.POOL.take(size) for _ in range(_READ_AHEAD + 2)]
        # batch n - 2 is encrypted by now (the encryptor holds n - 1 and n), so its buffer can be refilled
        while self._submitted <= self._returned + _READ_AHEAD:
            target = memoryview(self._staging[self._submitted % len(self._staging)])[:size]
            self._filling.append(self._producer.submit(self._fill_batch, target))
            self._submitted += 1
        n = self._filling.popleft().result()
        view = memoryview(self._staging[self._returned % len(self._staging)])[:n]
        self._returned += 1
        return view

    def _fill_batch(self, target: memoryview) -> int:
        position = 0
        while position < len(target):
            n = self.readinto(target[position:])
            if n == 0:
                break
            position += n
        return position

    def readinto(self, buffer: memoryview, /) -> int:
        """Fill as much of `buffer` as the stream has left; 0 at its end (no hashing still running then)."""
        self._settle(buffer.obj)
        position = 0
        while position < len(buffer):
            if self._pending:
                n = min(len(self._pending), len(buffer) - position)
                buffer[position : position + n] = self._pending[:n]
                self._pending = self._pending[n:]
            elif self._file is not None:
                n = self._read_file(self._file, buffer[position:])
            elif not self._next_segment():
                break
            else:
                continue
            position += n
            self._offset += n
        if position == 0:
            # the encryptor gives its buffers back once the source has ended: let go of them first
            for _, future in self._hashing:
                future.result()
            self._hashing = []
        return position

    def _settle(self, owner: object) -> None:
        """Wait for the hash jobs reading `owner`'s memory, so it can be refilled."""
        pending = []
        for job_owner, future in self._hashing:
            if job_owner is owner:
                future.result()
            else:
                pending.append((job_owner, future))
        self._hashing = pending

    def _hash(self, digest: Any, view: memoryview) -> None:
        if self._inline_hash:
            digest.update(view)
            return
        # Small pieces are hashed inline when nothing is queued (keeping order); big ones on the thread.
        self._hashing = [job for job in self._hashing if not job[1].done()]
        if len(view) < _HASH_INLINE and not self._hashing:
            digest.update(view)
            return
        if self._hasher is None:
            self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ggzy-bid-hash")
        self._hashing.append((view.obj, self._hasher.submit(digest.update, view)))

    def _digest(self, digest: Any) -> Future[str]:
        if self._hasher is None:
            done: Future[str] = Future()
            done.set_result(digest.hexdigest())
            return done
        return self._hasher.submit(digest.hexdigest)

    def _read_file(self, current: _OpenFile, target: memoryview) -> int:
        want = min(current.left, len(target))
        source = current.handle if current.reader is None else current.reader
        n = source.readinto(target[:want]) if want else 0
        if want and not n:
            raise EnvelopeError("bid.file_changed", f"{current.name} shrank while it was being sealed")
        self._hash(current.digest, target[:n])
        current.left -= n
        if current.left == 0:
            if current.reader is not None:
                current.reader.close()
                current.reader = None
                current.handle.seek(current.size)
            grew = current.handle.read(1)
            current.handle.close()
            self._file = None
            if grew:
                raise EnvelopeError("bid.file_changed", f"{current.name} grew while it was being sealed")
            self._entries.append((current.name, current.size, self._digest(current.digest)))
            self._pending = memoryview(_padding(current.size))
        return n

    def _next_segment(self) -> bool:
        if self._paths:
            path = self._paths.popleft()
            handle = path.open("rb")
            try:
                status = os.fstat(handle.fileno())
                if not stat.S_ISREG(status.st_mode):
                    raise ValueError(f"{path} is not a regular file")
            except BaseException:
                handle.close()
                raise
            self._file = _OpenFile(path.name, handle, status.st_size, status.st_size)
            if status.st_size >= envelope.MAP_MIN:
                self._file.reader = envelope.MappedReader(handle.fileno(), 0, status.st_size)
            mtime = max(0, int(status.st_mtime))
            self._mtime = max(self._mtime, mtime)
            self._pending = memoryview(_tar_header(FILES_PREFIX + path.name, status.st_size, mtime))
            return True
        if not self._finished:
            self._finished = True
            self._pending = memoryview(self._trailer())
            return True
        return False

    def _trailer(self) -> bytes:
        draft = self._draft
        manifest = Manifest(
            tender=draft.tender,
            lot=draft.lot,
            bidder=draft.bidder,
            kind=draft.kind,
            declared_price_fen=draft.declared_price_fen,
            duration_days=draft.duration_days,
            files=tuple(FileEntry(name, size, digest.result()) for name, size, digest in self._entries),
            signing_key=draft.signing_key,
        )
        self.manifest = manifest
        data = manifest.to_bytes()
        signature = base64.b64encode(self._signing.sign(signed_bytes(data))) + b"\n"
        parts = [
            # the newest file's time: tar -x then shows a plausible date, without reading a clock here
            _tar_header(MANIFEST_NAME, len(data), self._mtime),
            data,
            _padding(len(data)),
            _tar_header(SIGNATURE_NAME, len(signature), self._mtime),
            signature,
            _padding(len(signature)),
            bytes(2 * BLOCK),  # end-of-archive marker
        ]
        trailer = b"".join(parts)
        # pad the archive to whole 10 KiB records, as tar itself writes them
        return trailer + bytes(-(self._offset + len(trailer)) % RECORD)

    def close(self) -> None:
        """Stop the helper threads and close a file left open by an error."""
        if self._producer is not None:
            self._producer.shutdown(wait=True, cancel_futures=True)
            self._producer = None
            for buffer in self._staging:
                envelope.POOL.give(buffer)
            self._staging = []
        if self._hasher is not None:
            self._hasher.shutdown(wait=True, cancel_futures=True)
            self._hasher = None
        if self._file is not None:
            if self._file.reader is not None:
                self._file.reader.close()
            self._file.handle.close()
            self._file = None


def seal_bid(
    paths: Sequence[Path],
    dst: envelope.Sink,
    *,
    tender: str,
    lot: int,
    bidder: str,
    kind: str,
    declared_price_fen: int | None,
    duration_days: int | None,
    signing: Ed25519PrivateKey,
    bidder_public: bytes,
    custodians: Sequence[bytes],
    threshold: int,
    hash_output: bool = True,
) -> SealedBid:
    """Seal bid files into an envelope for `tender` (its code is the custodian shares' context).

    One read pass: tar framing and file bytes stream straight into the encryptor's buffers and each
    file's SHA-256 is computed on the way; the signed manifest follows the files. With `hash_output`
    False the envelope itself is not hashed (SealInfo.sha256 is None): the files' hashes must be
    computed, the envelope's only when it is submitted, by whoever submits it.
    """
    signing_key = base64.b64encode(signing.public_key().public_bytes_raw()).decode("ascii")
    # Validate every field and name before reading a byte; sizes and hashes are filled in while streaming.
    draft = Manifest(
        tender=tender,
        lot=lot,
        bidder=bidder,
        kind=kind,
        declared_price_fen=declared_price_fen,
        duration_days=duration_days,
        files=tuple(FileEntry(p.name, 0, "0" * 64) for p in paths),
        signing_key=signing_key,
    )
    for path in paths:
        if not stat.S_ISREG(path.stat().st_mode):
            raise ValueError(f"{path} is not a regular file")
    stream = _BidStream(paths, draft, signing)
    try:
        info = envelope.seal(
            stream,
            dst,
            bidder=bidder_public,
            custodians=custodians,
            threshold=threshold,
            context=tender,
            hash_output=hash_output,
        )
    finally:
        stream.close()
    assert stream.manifest is not None
    return SealedBid(stream.manifest, info)


# --- opening ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedFile:
    """A bid file written out at opening, with the size and SHA-256 of what was written."""

    name: str
    path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class OpenedBid:
    """An opened, verified envelope: manifest, its signature, the files written, and the header."""

    manifest: Manifest
    signature: bytes
    files: tuple[OpenedFile, ...]
    header: envelope.Header


def _tar_error(message: str) -> EnvelopeError:
    return EnvelopeError("bid.tar", f"tar stream: {message}")


class _Plaintext:
    """The decrypted tar stream, batch by batch in a small ring of pooled buffers.

    File data is handed on as memoryview slices of the batch it was decrypted into (`take`), never
    copied; whoever reads such a slice on another thread registers its future with `hold`, and a batch
    buffer is decrypted into again only once those futures are done. Headers, the manifest and the
    signature are small and copied out (`read_exact`).
    """

    def __init__(self, src: envelope.EnvelopeSource, header: envelope.Header, file_key: bytes) -> None:
        envelope.verify_file_key(header, file_key)
        self._source = envelope.mapped(src)
        try:
            self._decryptor = envelope.PayloadDecryptor(
                src if self._source is None else self._source, file_key, pooled=True
            )
        except BaseException:
            if self._source is not None:
                self._source.close()
            raise
        self._ring: list[bytearray] = []
        self._jobs: list[list[Future[Any]]] = []
        self._index = -1
        self._view = memoryview(b"")

    def _next_batch(self) -> bool:
        index = (self._index + 1) % _OPEN_RING
        if index == len(self._ring):
            self._ring.append(envelope.POOL.take(envelope.PLAIN_BATCH))
            self._jobs.append([])
        jobs, self._jobs[index] = self._jobs[index], []
        for future in jobs:
            future.result()
        n = self._decryptor.decrypt_batch(memoryview(self._ring[index]))
        if n is None:
            return False
        self._index = index
        self._view = memoryview(self._ring[index])[:n]
        return True

    def take(self, limit: int) -> memoryview:
        """Up to `limit` (> 0) bytes of the current batch, not copied; empty at the end of the stream."""
        while not self._view:
            if not self._next_batch():
                return self._view
        piece = self._view[:limit]
        self._view = self._view[len(piece) :]
        return piece

    def hold(self, future: Future[Any]) -> None:
        """Keep the batch of the last `take` until `future` (which reads it) is done."""
        self._jobs[self._index].append(future)

    def read_exact(self, size: int, what: str) -> bytes:
        """Exactly `size` bytes, copied; a bid.tar error when the stream ends first."""
        if size <= len(self._view):
            data = self._view[:size].tobytes()
            self._view = self._view[size:]
            return data
        parts = []
        left = size
        while left:
            piece = self.take(left)
            if not piece:
                raise _tar_error(f"the stream ends inside {what}")
            parts.append(piece.tobytes())
            left -= len(piece)
        return b"".join(parts)

    def close(self) -> None:
        """Give the buffers back; only once nothing reads them any more (the sink has stopped)."""
        self._view = memoryview(b"")
        for buffer in self._ring:
            envelope.POOL.give(buffer)
        self._ring = []
        self._decryptor.close()
        if self._source is not None:
            self._source.close()


def _read_exact(reader: _Plaintext, size: int, what: str) -> bytes:
    return reader.read_exact(size, what)


def _skip_padding(reader: _Plaintext, size: int, what: str) -> None:
    if _read_exact(reader, -size % BLOCK, f"the padding of {what}").strip(b"\0"):
        raise _tar_error(f"the padding after {what} is not zero")


def _parse_pax(data: bytes, member: int) -> dict[str, str]:
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        space = data.find(b" ", position)
        digits = data[position:space] if space > position else b""
        if not digits.isdigit() or digits.startswith(b"0"):
            raise _tar_error(f"member #{member}: malformed pax record length")
        end = position + int(digits)
        record = data[space + 1 : end]
        if end > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise _tar_error(f"member #{member}: malformed pax record")
        key_bytes, _, value_bytes = record[:-1].partition(b"=")
        try:
            key, value = key_bytes.decode("utf-8"), value_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise _tar_error(f"member #{member}: a pax record is not UTF-8") from None
        if key == "linkpath":
            raise EnvelopeError("bid.member", f"member #{member} is a link; only regular files are allowed")
        if key not in PAX_KEYS:
            raise _tar_error(f"member #{member}: unsupported pax key {key!r}")
        if key in records:
            raise _tar_error(f"member #{member}: pax key {key!r} appears twice")
        records[key] = value
        position = end
    return records


def _parse_block(block: bytes, member: int) -> tarfile.TarInfo:
    # POSIX ustar only: GNU and v7 headers bring their own long-name and sparse conventions
    if block[257:265] != b"ustar\x0000":
        raise _tar_error(f"member #{member}: not a POSIX ustar header")
    try:
        return tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError as exc:
        raise _tar_error(f"member #{member}: bad header ({exc})") from None


_TYPE_NAMES = {
    tarfile.DIRTYPE: "a directory",
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}


def _next_member(reader: _Plaintext, member: int) -> tuple[str, int] | None:
    """The next member's name and size, or None at the end-of-archive marker."""
    block = _read_exact(reader, BLOCK, f"the header of member #{member}")
    if block == _ZERO_BLOCK:
        return None
    info = _parse_block(block, member)
    pax: dict[str, str] = {}
    if info.type == tarfile.XHDTYPE:
        if info.size > MAX_PAX:
            raise _tar_error(f"member #{member}: pax header larger than {MAX_PAX} bytes")
        pax = _parse_pax(_read_exact(reader, info.size, f"the pax header of member #{member}"), member)
        _skip_padding(reader, info.size, f"the pax header of member #{member}")
        info = _parse_block(_read_exact(reader, BLOCK, f"the header of member #{member}"), member)
        if info.type == tarfile.XHDTYPE:
            raise _tar_error(f"member #{member}: two pax headers in a row")
    if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        kind = _TYPE_NAMES.get(info.type, f"of tar type {info.type!r}")
        raise EnvelopeError(
            "bid.member", f"member #{member} ({info.name!r}) is {kind}; only regular files are allowed"
        )
    name = pax.get("path", info.name)
    size = info.size
    if "size" in pax:
        if not pax["size"].isdigit():
            raise _tar_error(f"member #{member}: pax size is not a number")
        size = int(pax["size"])
    return name, size


class _FileSink:
    """Writes opened file data as it is decrypted and hashes it on one helper thread, overlapping both.

    Writing stays on the decrypting thread: with 2 cores, SHA-256 (the slowest stage) gets a core to
    itself and the cipher and the writes share the other, where a third thread for the writes would
    take turns with the hashing and slow it (measured: ≈ 7% slower for one 256 MiB bid). Hash jobs run
    in submission order, so each file's digest sees its bytes in order.
    """

    def __init__(self) -> None:
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ggzy-bid-hash")
        self._handles: list[BinaryIO] = []

    def open(self, target: Path) -> BinaryIO:
        """Create `target` exclusively (never following or overwriting what is there), unbuffered."""
        handle = target.open("xb", buffering=0)
        self._handles.append(handle)
        return handle

    def submit(self, view: memoryview, handle: BinaryIO, digest: Any) -> Future[None]:
        """Write `view` to `handle` now and hash it after everything submitted before; the hash's future."""
        hashed = self._hasher.submit(digest.update, view)
        envelope.write_all(handle, view)
        return hashed

    def close_file(self, handle: BinaryIO, digest: Any) -> Future[str]:
        """Close `handle`; the future gives the file's SHA-256 once it is all hashed."""
        handle.close()
        return self._hasher.submit(lambda: str(digest.hexdigest()))

    def finish(self) -> None:
        """Wait for every hash and stop the thread."""
        self._hasher.shutdown(wait=True)

    def abort(self) -> None:
        """Stop the thread after an error (queued hashes dropped, a running one waited for), close files."""
        self._hasher.shutdown(wait=True, cancel_futures=True)
        for handle in self._handles:
            handle.close()


def _extract(
    reader: _Plaintext, sink: _FileSink, target: Path, size: int, written: list[Path]
) -> Future[str]:
    digest = hashlib.sha256()
    handle = sink.open(target)
    written.append(target)
    left = size
    while left:
        piece = reader.take(left)
        if not piece:
            raise _tar_error(f"the stream ends inside {target.name}")
        reader.hold(sink.submit(piece, handle, digest))
        left -= len(piece)
    return sink.close_file(handle, digest)


def _check_files(manifest: Manifest, opened: list[OpenedFile]) -> None:
    listed = [(f.name, f.size, f.sha256) for f in manifest.files]
    found = [(f.name, f.size, f.sha256) for f in opened]
    if [n for n, _, _ in listed] != [n for n, _, _ in found]:
        raise EnvelopeError(
            "bid.file_mismatch",
            f"the manifest lists {[n for n, _, _ in listed]} but the envelope holds {[n for n, _, _ in found]}",
        )
    for (name, size, sha256), (_, got_size, got_sha256) in zip(listed, found, strict=True):
        if size != got_size:
            raise EnvelopeError(
                "bid.file_mismatch", f"{name}: the manifest says {size} bytes, the file has {got_size}"
            )
        if sha256 != got_sha256:
            raise EnvelopeError("bid.file_mismatch", f"{name}: SHA-256 differs from the manifest")


def _verify_signature(manifest: Manifest, manifest_bytes: bytes, signature_member: bytes) -> bytes:
    text = signature_member.removesuffix(b"\n")
    try:
        signature = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    if len(signature) != 64 or base64.b64encode(signature) + b"\n" != signature_member:
        raise EnvelopeError("bid.signature", "manifest.sig must be the base64 of a 64-byte signature and LF")
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(manifest.signing_key))
        public.verify(signature, signed_bytes(manifest_bytes))
    except (InvalidSignature, ValueError):
        raise EnvelopeError(
            "bid.signature", "the manifest signature does not verify under the manifest's signing key"
        ) from None
    return signature


def _read_members(
    reader: _Plaintext, sink: _FileSink, out_dir: Path, written: list[Path]
) -> tuple[bytes, bytes, list[tuple[str, Path, int, Future[str]]]]:
    files: list[tuple[str, Path, int, Future[str]]] = []
    manifest_bytes: bytes | None = None
    signature: bytes | None = None
    names: set[str] = set()
    member = 0
    while True:
        member += 1
        entry = _next_member(reader, member)
        if entry is None:
            break
        name, size = entry
        if signature is not None:
            raise EnvelopeError(
                "bid.member", f"member #{member} ({name!r}) follows manifest.sig, which must be last"
            )
        if manifest_bytes is not None:
            if name != SIGNATURE_NAME:
                raise EnvelopeError(
                    "bid.member", f"member #{member} ({name!r}): manifest.sig must follow manifest.json"
                )
            if size > 1024:
                raise EnvelopeError("bid.signature", "manifest.sig is too large")
            signature = _read_exact(reader, size, SIGNATURE_NAME)
        elif name == MANIFEST_NAME:
            if size > MAX_MANIFEST:
                raise _manifest_error(f"larger than {MAX_MANIFEST} bytes")
            manifest_bytes = _read_exact(reader, size, MANIFEST_NAME)
        elif name.startswith(FILES_PREFIX):
            base = name[len(FILES_PREFIX) :]
            problem = name_problem(base)
            if problem is not None:
                raise EnvelopeError("bid.member", f"member #{member}: file name {base!r} {problem}")
            if base in names:
                raise EnvelopeError("bid.member", f"member #{member}: {base!r} appears twice")
            if len(files) == MAX_FILES:
                raise EnvelopeError("bid.member", f"member #{member}: more than {MAX_FILES} bid files")
            names.add(base)
            target = out_dir / base
            files.append((base, target, size, _extract(reader, sink, target, size, written)))
        else:
            raise EnvelopeError(
                "bid.member", f"member #{member} ({name!r}) is not a bid file, the manifest or its signature"
            )
        _skip_padding(reader, size, repr(name))
    if manifest_bytes is None or signature is None:
        raise EnvelopeError("bid.member", "the archive ends without manifest.json and manifest.sig")
    # after the end-of-archive marker only zero blocks (record padding) may follow
    if _read_exact(reader, BLOCK, "the end-of-archive marker") != _ZERO_BLOCK:
        raise _tar_error("the end-of-archive marker is not two zero blocks")
    while rest := reader.take(RECORD):
        if rest.tobytes().count(0) != len(rest):
            raise _tar_error("non-zero data after the end-of-archive marker")
    return manifest_bytes, signature, files


def open_bid(src: envelope.EnvelopeSource, file_key: bytes, out_dir: Path) -> OpenedBid:
    """Decrypt and verify a whole envelope, writing its bid files into `out_dir` (created if missing).

    Checks the header MAC, every chunk, the tar structure, the manifest, each file's size and SHA-256
    against it and the Ed25519 signature under the manifest's signing key. Whether that key and the
    manifest's tender, lot and bidder are the right ones is `check_context`'s job. On any error the files
    written are removed and EnvelopeError is raised.
    """
    header = envelope.read_header(src)
    reader = _Plaintext(src, header, file_key)
    written: list[Path] = []
    sink: _FileSink | None = None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        sink = _FileSink()
        manifest_bytes, signature_member, extracted = _read_members(reader, sink, out_dir, written)
        sink.finish()
        opened = [OpenedFile(name, path, size, future.result()) for name, path, size, future in extracted]
        manifest = Manifest.from_bytes(manifest_bytes)
        signature = _verify_signature(manifest, manifest_bytes, signature_member)
        _check_files(manifest, opened)
    except BaseException:
        if sink is not None:
            sink.abort()
        for path in written:
            path.unlink(missing_ok=True)
        raise
    finally:
        # after the sink's threads stopped, so no batch buffer is still being read
        reader.close()
    return OpenedBid(manifest, signature, tuple(opened), header)


def check_context(
    manifest: Manifest, *, tender: str, lot: int, bidder: str, signing_keys: Collection[str]
) -> None:
    """The manifest must name this submission's tender, lot and bidder and be signed by one of the
    bidder's registered signing keys; a mismatch voids the bid (EnvelopeError context.*)."""
    if manifest.tender != tender:
        raise EnvelopeError(
            "context.tender", f"the manifest is for tender {manifest.tender!r}, not {tender!r}"
        )
    if manifest.lot != lot:
        raise EnvelopeError("context.lot", f"the manifest is for lot {manifest.lot}, not lot {lot}")
    if manifest.bidder != bidder:
        raise EnvelopeError(
            "context.bidder", f"the manifest names bidder {manifest.bidder!r}, not {bidder!r}"
        )
    if manifest.signing_key not in signing_keys:
        raise EnvelopeError(
            "context.signing_key", "the manifest is signed by a key not registered to this bidder"
        )
