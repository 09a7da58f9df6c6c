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
# File data is handed to the writer thread in pieces this large (see envelope.BATCH_CHUNKS).
_IO_SIZE = 2 * 1024 * 1024
_IO_DEPTH = 3
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
    digest: Any = field(default_factory=hashlib.sha256)


class _BidStream:
    """The tar stream as a `readinto` source: bid files are read straight into the cipher's buffers.

    Each file is read once, into the encryptor's batch buffer. Its SHA-256 is computed there on a
    helper thread while the encryptor encrypts (hashlib and the AEAD release the GIL, so they run on two
    cores); before filling a buffer again, readinto waits for the hashing still reading that buffer.
    The manifest and its signature are built when the last file is done.
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

    def readinto(self, buffer: memoryview, /) -> int:
        """Fill as much of `buffer` as the stream has left; 0 at its end."""
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
        n = current.handle.readinto(target[:want]) if want else 0
        if want and not n:
            raise EnvelopeError("bid.file_changed", f"{current.name} shrank while it was being sealed")
        self._hash(current.digest, target[:n])
        current.left -= n
        if current.left == 0:
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
        """Stop the hashing thread and close a file left open by an error."""
        if self._hasher is not None:
            self._hasher.shutdown(wait=True, cancel_futures=True)
            self._hasher = None
        if self._file is not None:
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
) -> SealedBid:
    """Seal bid files into an envelope for `tender` (its code is the custodian shares' context).

    One read pass: tar framing and file bytes stream straight into the encryptor's buffers and each
    file's SHA-256 is computed on the way; the signed manifest follows the files.
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
            stream, dst, bidder=bidder_public, custodians=custodians, threshold=threshold, context=tender
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


def _read_exact(reader: envelope.PlaintextReader, size: int, what: str) -> bytes:
    data = bytearray(size)
    view = memoryview(data)
    position = 0
    while position < size:
        n = reader.readinto(view[position:])
        if not n:
            raise _tar_error(f"the stream ends inside {what}")
        position += n
    return bytes(data)


def _skip_padding(reader: envelope.PlaintextReader, size: int, what: str) -> None:
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


def _next_member(reader: envelope.PlaintextReader, member: int) -> tuple[str, int] | None:
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
    """Hashes and writes opened file data on one helper thread, overlapping decryption."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ggzy-bid-open")
        self._free: list[bytearray] = []
        self._allocated = 0
        self._pending: deque[tuple[bytearray, Future[None]]] = deque()

    def acquire(self) -> bytearray:
        """A buffer to fill, reused once its previous write has finished."""
        if self._free:
            return self._free.pop()
        if self._allocated < _IO_DEPTH:
            self._allocated += 1
            return bytearray(_IO_SIZE)
        buffer, future = self._pending.popleft()
        future.result()
        return buffer

    def submit(self, buffer: bytearray, length: int, handle: BinaryIO, digest: Any) -> None:
        """Hash and write buffer[:length] to `handle`, in order with everything submitted before."""

        def work(view: memoryview) -> None:
            digest.update(view)
            envelope.write_all(handle, view)

        self._pending.append((buffer, self._executor.submit(work, memoryview(buffer)[:length])))

    def close_file(self, handle: BinaryIO, digest: Any) -> Future[str]:
        """Close `handle` after its writes; the future gives the file's SHA-256."""

        def work() -> str:
            handle.close()
            return str(digest.hexdigest())

        return self._executor.submit(work)

    def finish(self) -> None:
        """Wait for every write and stop the thread; the first write error is raised here."""
        self._executor.shutdown(wait=True)
        while self._pending:
            self._pending.popleft()[1].result()

    def abort(self) -> None:
        """Stop the thread after an error: queued work is dropped, running work waited for."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def _extract(
    reader: envelope.PlaintextReader, sink: _FileSink, target: Path, size: int, written: list[Path]
) -> Future[str]:
    digest = hashlib.sha256()
    # exclusive creation: never follow or overwrite something already in the output directory
    handle = target.open("xb")
    written.append(target)
    left = size
    try:
        while left:
            buffer = sink.acquire()
            want = min(left, len(buffer))
            view = memoryview(buffer)
            position = 0
            while position < want:
                n = reader.readinto(view[position:want])
                if not n:
                    raise _tar_error(f"the stream ends inside {target.name}")
                position += n
            sink.submit(buffer, want, handle, digest)
            left -= want
    except BaseException:
        handle.close()
        raise
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
    reader: envelope.PlaintextReader, sink: _FileSink, out_dir: Path, written: list[Path]
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
    rest = bytearray(64 * 1024)
    while n := reader.readinto(rest):
        if memoryview(rest)[:n] != bytes(n):
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
    reader = envelope.PlaintextReader(src, header, file_key)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    sink = _FileSink()
    try:
        manifest_bytes, signature_member, extracted = _read_members(reader, sink, out_dir, written)
        sink.finish()
        opened = [OpenedFile(name, path, size, future.result()) for name, path, size, future in extracted]
        manifest = Manifest.from_bytes(manifest_bytes)
        signature = _verify_signature(manifest, manifest_bytes, signature_member)
        _check_files(manifest, opened)
    except BaseException:
        sink.abort()
        for path in written:
            path.unlink(missing_ok=True)
        raise
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
