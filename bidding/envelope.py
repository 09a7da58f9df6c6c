"""The sealed bid envelope: an age v1 file (c2sp.org/age) built from `cryptography` primitives.

An envelope's header wraps one random 16-byte file key to
- the bidder, in a standard `X25519` stanza, so `age -d -i key.txt` (or rage) opens it, and
- each opening custodian, in a `ggzy-share` stanza carrying that custodian's Shamir share of the file key
  (t of n, `bidding.shamir`), wrapped exactly like an X25519 stanza but with an HKDF info that binds the
  tender code (the context), x and t:

      -> ggzy-share <context> <x> <t> <tag> <ephemeral share, base64>
      <body: ChaCha20-Poly1305 of the 16-byte share, base64>

  where tag is base64(SHA-256(custodian public key)[:4]) so a custodian finds their stanza, and custodian
  i (0-based in the roster) holds x = i + 1. Standard age tools skip the unknown stanza type.

The header MAC (HMAC-SHA-256 keyed from the file key) covers every stanza, so none can be stripped or
moved without the file key. The payload is age's STREAM: a 16-byte nonce, then 64 KiB chunks under
ChaCha20-Poly1305 with an 11-byte big-endian counter and a last-chunk flag in the AEAD nonce.

Every failure raises `EnvelopeError` with a stable dotted `code` and a message naming what and where.

Throughput is the point of the streaming code below: chunks are encrypted with `encrypt_into` /
`decrypt_into` into buffers reused for the whole file (a fresh `bytes` per chunk costs more than the
cipher), the source is read with `readinto`, and work is done in batches of `BATCH_CHUNKS` chunks so the
per-call Python overhead is paid once per megabyte or two. Writing (and hashing) the output runs on one
helper thread, overlapping the cipher: hashlib, the AEAD and file writes all release the GIL. Memory stays
constant: a handful of batch buffers whatever the file size, drawn from a small process-wide pool so that
many envelopes in a row (an opening) do not pay the page faults of fresh buffers each time.

Regular files are read through `MappedReader`: on this kind of (virtualised) machine `read()` from the
page cache copies at ≈ 2.5 GB/s while a user-space copy out of an mmap window runs at ≈ 13 GB/s, so the
copy into the cipher's private buffers costs a fifth of a syscall read. The bytes are still copied (never
encrypted or authenticated in place), so a file changed while it is read cannot make what was hashed
differ from what was encrypted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import itertools
import mmap
import os
import re
import secrets
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bidding import shamir

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

FILE_KEY_SIZE = 16
CHUNK_SIZE = 64 * 1024
MAX_HEADER = 1024 * 1024
TAG_SIZE = 16
NONCE_SIZE = 16
ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
# 32 chunks (2 MiB) per batch: large enough that Python's per-batch overhead (thread hand-off, slicing)
# is noise, small enough to stay in L2/L3-friendly territory and keep memory at a few MiB.
BATCH_CHUNKS = 32
# Buffers in flight between the cipher and the output thread, and plaintext batches in rotation (the
# one being encrypted, the look-ahead, slack). Measured on 2 cores with 256 MiB: when the output is
# hashed too (sealing a bid, whose source also hashes the files on a thread), deeper queues absorb the
# three threads' jitter (~5% faster); for bare encryption they only cost cache (~5% slower).
PIPELINE_DEPTH = 3
PLAIN_RING = 2
HASHED_PIPELINE_DEPTH = 6
HASHED_PLAIN_RING = 4
# Regular files are copied out of mmap windows this large (see MappedReader); below MAP_MIN, plain reads.
MAP_WINDOW = 8 * 1024 * 1024
MAP_MIN = 256 * 1024
# Batch buffers kept for reuse per size, process-wide (see _BufferPool): enough for two envelopes at once.
POOL_KEEP = 16

INTRO = b"age-encryption.org/v1\n"
X25519_TYPE = "X25519"
SHARE_TYPE = "ggzy-share"
X25519_INFO = b"age-encryption.org/v1/X25519"
SHARE_INFO_PREFIX = b"ggzy/v1/share\x00"
MAX_CONTEXT = 200

_ZERO_NONCE = bytes(12)
_BASE64_LINE = 64
_B64_CHARS = re.compile(rb"[A-Za-z0-9+/]*")
_VCHAR = re.compile(r"[\x21-\x7e]+")
_DECIMAL = re.compile(r"[1-9][0-9]{0,2}")


class EnvelopeError(ValueError):
    """A bid envelope (or its opening) is not valid; `code` is a stable dotted machine code."""

    def __init__(self, code: str, message: str) -> None:
        # both in args, so the error pickles intact across a process pool
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"


class ReadIntoSource(Protocol):
    """Anything with `readinto`, like an open binary file: the plaintext or envelope being streamed.

    The encryptor writes into its plaintext buffers only through `readinto`, so a source that lets
    another thread read the memory it filled (to hash it, say) must only wait for that thread when it
    is asked to fill the same memory again, and must be done with all of them once `readinto` has
    returned 0. Such a source says so with a true `busy_thread` attribute: the encryptor then writes
    its output on its own thread rather than start a third (see `_write_envelope`).
    """

    def readinto(self, buffer: memoryview, /) -> int | None: ...


@runtime_checkable
class BatchSource(Protocol):
    """A source that fills buffers of its own (ahead of time, on a thread of its own) and lends them.

    `read_batch(size)` gives the next `size` bytes of the stream, fewer only at its end and none after
    it; the view stays valid and unchanged until two more calls (the encryptor holds one batch of
    look-ahead). The encryptor encrypts straight from it, so filling (and hashing) the plaintext runs
    beside the cipher instead of before it. `busy_thread` as for ReadIntoSource.
    """

    def read_batch(self, size: int, /) -> memoryview: ...


class Sink(Protocol):
    """Anything with `write`, like a binary file opened for writing."""

    def write(self, data: bytes | memoryview, /) -> int | None: ...


class LineSource(Protocol):
    """Anything with `readline(limit)`, like an open binary file or a socket file."""

    def readline(self, size: int = -1, /) -> bytes: ...


class EnvelopeSource(LineSource, ReadIntoSource, Protocol):
    """A readable binary stream: the header is read by lines, the payload with `readinto`."""


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza of an age header: its type (first argument), other arguments and body."""

    type: str
    args: tuple[str, ...]
    body: bytes


@dataclass(frozen=True)
class Header:
    """A parsed age header; `mac_input` ends with "---" and the payload starts at offset `size`."""

    stanzas: tuple[Stanza, ...]
    mac: bytes
    mac_input: bytes
    size: int


@dataclass(frozen=True)
class SealInfo:
    """What sealing wrote: the header length, the whole envelope's length and its SHA-256 (hex).

    `sha256` is None when sealing was asked not to hash its output (`hash_output=False`): whoever
    submits the envelope hashes the file it submits anyway.
    """

    header_size: int
    size: int
    sha256: str | None


@dataclass(frozen=True)
class ShareStanza:
    """The parsed arguments and body of a `ggzy-share` stanza."""

    context: str
    x: int
    t: int
    tag: str
    ephemeral: bytes
    body: bytes


# --- base64 -------------------------------------------------------------------------------------------


def b64encode(data: bytes) -> str:
    """Standard base64 without padding, as age writes it."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str, where: str) -> bytes:
    """Decode canonical unpadded base64 (age's rule); EnvelopeError header.base64 otherwise."""
    if len(text) % 4 == 1 or not _B64_CHARS.fullmatch(text.encode("ascii", "replace")):
        raise EnvelopeError("header.base64", f"{where}: not unpadded base64")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise EnvelopeError("header.base64", f"{where}: not unpadded base64") from None
    # Non-zero unused bits in the last character decode fine but are a second spelling of the same bytes.
    if b64encode(data) != text:
        raise EnvelopeError(
            "header.base64", f"{where}: non-canonical base64 (stray bits in the last character)"
        )
    return data


# --- keys ---------------------------------------------------------------------------------------------


def generate_file_key() -> bytes:
    """A fresh 16-byte file key from the CSPRNG; never reuse one across envelopes."""
    return secrets.token_bytes(FILE_KEY_SIZE)


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _header_mac(file_key: bytes, mac_input: bytes) -> bytes:
    return hmac.new(_hkdf(file_key, b"", b"header"), mac_input, hashlib.sha256).digest()


def share_tag(custodian_public: bytes) -> str:
    """The stanza tag naming a custodian: base64 of the first 4 bytes of SHA-256 of their public key."""
    return b64encode(hashlib.sha256(custodian_public).digest()[:4])


def share_info(context: str, x: int, t: int) -> bytes:
    """The HKDF info of a ggzy-share stanza, binding the tender code, the share's x and the threshold."""
    return SHARE_INFO_PREFIX + context.encode("ascii") + b"\x00" + f"{x}/{t}".encode("ascii")


def _wrap(secret: bytes, recipient_public: bytes, info: bytes) -> tuple[bytes, bytes]:
    """Wrap a secret to an X25519 key as age's X25519 stanza does; returns (ephemeral share, body)."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_share = ephemeral.public_key().public_bytes_raw()
    try:
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_public))
    except ValueError:
        # cryptography refuses an all-zero shared secret: the recipient is a low-order point
        raise ValueError("the recipient X25519 public key is invalid (a low-order point)") from None
    key = _hkdf(shared, ephemeral_share + recipient_public, info)
    return ephemeral_share, ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, secret, None)


def _unwrap(identity: X25519PrivateKey, ephemeral_share: bytes, body: bytes, info: bytes) -> bytes | None:
    """The wrapped secret, or None when this identity does not open the stanza."""
    try:
        shared = identity.exchange(X25519PublicKey.from_public_bytes(ephemeral_share))
    except ValueError:
        return None  # all-zero shared secret: age says abort this stanza
    public = identity.public_key().public_bytes_raw()
    return unwrap_with_secret(shared, ephemeral_share, public, body, info)


def unwrap_with_secret(
    shared_secret: bytes, ephemeral_share: bytes, recipient_public: bytes, body: bytes, info: bytes
) -> bytes | None:
    """Open a stanza body from its X25519 shared secret (as a custodian's release reveals it), exactly as
    the recipient's identity would: the wrapped secret, or None when the body does not authenticate."""
    if len(shared_secret) != 32 or shared_secret == bytes(32):
        return None
    key = _hkdf(shared_secret, ephemeral_share + recipient_public, info)
    try:
        return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None


def _check_context(context: str) -> None:
    if len(context) > MAX_CONTEXT or not _VCHAR.fullmatch(context):
        raise ValueError(
            f"context {context!r} must be 1..{MAX_CONTEXT} printable ASCII characters, no spaces"
        )


def x25519_stanza(file_key: bytes, recipient_public: bytes) -> Stanza:
    """A standard age X25519 stanza wrapping `file_key` to a raw 32-byte X25519 public key."""
    ephemeral_share, body = _wrap(file_key, recipient_public, X25519_INFO)
    return Stanza(X25519_TYPE, (b64encode(ephemeral_share),), body)


def share_stanzas(file_key: bytes, custodians: Sequence[bytes], threshold: int, context: str) -> list[Stanza]:
    """One ggzy-share stanza per custodian (x = position + 1) carrying a t-of-n share of `file_key`."""
    _check_context(context)
    if len(set(custodians)) != len(custodians):
        raise ValueError("a custodian appears twice in the roster: one party would hold two shares")
    shares = shamir.split(file_key, len(custodians), threshold)
    stanzas = []
    for share, custodian in zip(shares, custodians, strict=True):
        ephemeral_share, body = _wrap(share.value, custodian, share_info(context, share.x, threshold))
        args = (context, str(share.x), str(threshold), share_tag(custodian), b64encode(ephemeral_share))
        stanzas.append(Stanza(SHARE_TYPE, args, body))
    return stanzas


# --- header -------------------------------------------------------------------------------------------


def _stanza_bytes(stanza: Stanza) -> bytes:
    for arg in (stanza.type, *stanza.args):
        if not _VCHAR.fullmatch(arg):
            raise ValueError(f"stanza argument {arg!r} must be non-empty printable ASCII without spaces")
    body = b64encode(stanza.body)
    # Wrapped at 64 columns; the last line is always shorter, so a body of 48k bytes ends with an empty line.
    lines = [body[i : i + _BASE64_LINE] for i in range(0, len(body) - len(body) % _BASE64_LINE, _BASE64_LINE)]
    lines.append(body[len(body) - len(body) % _BASE64_LINE :])
    return ("-> " + " ".join((stanza.type, *stanza.args)) + "\n" + "\n".join(lines) + "\n").encode("ascii")


def encode_header(stanzas: Sequence[Stanza], file_key: bytes) -> bytes:
    """The complete header (intro, stanzas, MAC line) for these stanzas, MAC'd with `file_key`."""
    if not stanzas:
        raise ValueError("an age header needs at least one stanza")
    mac_input = INTRO + b"".join(_stanza_bytes(s) for s in stanzas) + b"---"
    return mac_input + b" " + b64encode(_header_mac(file_key, mac_input)).encode("ascii") + b"\n"


class _HeaderLines:
    """Feeds header lines to the parser, enforcing MAX_HEADER and counting lines for messages."""

    def __init__(self, readline: Callable[[int], bytes]) -> None:
        self._readline = readline
        self.consumed = 0
        self.number = 0

    def next(self) -> bytes:
        """The next line, with its LF; EnvelopeError at the cap or when the input ends mid-header."""
        # One byte past the cap, so a header that overruns it is told apart from one that just fits.
        line = self._readline(MAX_HEADER - self.consumed + 1)
        self.consumed += len(line)
        self.number += 1
        if self.consumed > MAX_HEADER:
            raise EnvelopeError("header.too_large", f"the header is larger than {MAX_HEADER} bytes")
        if not line.endswith(b"\n"):
            raise EnvelopeError(
                "header.truncated", f"the header ends at line {self.number} before its MAC line ('--- …')"
            )
        return line


def _parse_intro(line: bytes) -> None:
    if line == INTRO:
        return
    if line == INTRO[:-1] + b"\r":
        raise EnvelopeError("header.intro", "the intro line ends in CRLF: the file was converted as text")
    if line.startswith(b"age-encryption.org/"):
        raise EnvelopeError("header.intro", "unsupported age version: only age-encryption.org/v1 is read")
    if line.startswith(b"-----BEGIN"):
        raise EnvelopeError("header.intro", "the envelope is ASCII-armored; submit the binary age file")
    raise EnvelopeError("header.intro", "not an age file: the first line is not 'age-encryption.org/v1'")


def _parse_stanza(first: bytes, lines: _HeaderLines, mac_input: bytearray) -> Stanza:
    start = lines.number
    words = first[3:-1].split(b" ")
    for word in words:
        if not _VCHAR.fullmatch(word.decode("latin-1")):
            raise EnvelopeError(
                "header.stanza",
                f"line {start}: stanza arguments must be non-empty printable ASCII without spaces",
            )
    body_text = bytearray()
    while True:
        line = lines.next()
        mac_input += line
        content = line[:-1]
        if content.startswith((b"-> ", b"---")):
            raise EnvelopeError(
                "header.stanza",
                f"line {lines.number}: the stanza of line {start} has no final body line shorter than 64 columns",
            )
        if b"=" in content:
            raise EnvelopeError(
                "header.base64", f"line {lines.number}: stanza bodies are base64 without '=' padding"
            )
        if len(content) > _BASE64_LINE or not _B64_CHARS.fullmatch(content):
            raise EnvelopeError(
                "header.stanza",
                f"line {lines.number}: a stanza body line must be at most 64 base64 characters",
            )
        body_text += content
        if len(content) < _BASE64_LINE:
            break
    body = b64decode(body_text.decode("ascii"), f"body of the stanza on line {start}")
    decoded = tuple(w.decode("ascii") for w in words)
    return Stanza(decoded[0], decoded[1:], body)


def _parse_header(readline: Callable[[int], bytes]) -> Header:
    lines = _HeaderLines(readline)
    # Read no further than the intro's length, so a binary file is refused as "not age" at once.
    intro = readline(len(INTRO))
    _parse_intro(intro)
    lines.consumed, lines.number = len(intro), 1
    mac_input = bytearray(intro)
    stanzas: list[Stanza] = []
    while True:
        line = lines.next()
        if line.startswith(b"-> "):
            mac_input += line
            stanzas.append(_parse_stanza(line, lines, mac_input))
        elif line.startswith(b"---"):
            if len(line) != 48 or line[3:4] != b" " or not _B64_CHARS.fullmatch(line[4:-1]):
                raise EnvelopeError(
                    "header.mac_line",
                    f"line {lines.number}: the MAC line must be '--- ' and 43 base64 characters",
                )
            if not stanzas:
                raise EnvelopeError("header.stanza", "the header has no recipient stanza")
            mac = b64decode(line[4:-1].decode("ascii"), f"line {lines.number}: header MAC")
            mac_input += b"---"
            return Header(tuple(stanzas), mac, bytes(mac_input), lines.consumed)
        else:
            raise EnvelopeError(
                "header.stanza",
                f"line {lines.number}: expected a recipient stanza ('-> …') or the MAC line ('--- …')",
            )


def header_bytes(header: Header) -> bytes:
    """The header exactly as it appears at the start of the envelope (intro through the MAC line)."""
    return header.mac_input + b" " + b64encode(header.mac).encode("ascii") + b"\n"


def header_sha256(header: Header) -> str:
    """The SHA-256 (hex) of the header's bytes: what ties a published header to the closing head."""
    return hashlib.sha256(header_bytes(header)).hexdigest()


def check_payload_length(total_size: int, header_size: int) -> None:
    """Refuse an envelope whose payload length no age STREAM can have, before any key is at hand.

    The payload is a 16-byte nonce and chunks of 64 KiB + 16 bytes; the last chunk holds 0..64 KiB of
    plaintext and its 16-byte tag, and may be empty only when it is the only chunk (an empty plaintext).
    EnvelopeError payload.nonce (no whole nonce: the header alone), payload.truncated (a nonce and no
    chunk, or a last chunk cut inside its tag) or payload.empty_chunk (an empty chunk after data).
    """
    payload = total_size - header_size
    if payload < NONCE_SIZE:
        raise EnvelopeError(
            "payload.nonce",
            f"the payload is {max(payload, 0)} bytes, shorter than its {NONCE_SIZE}-byte nonce",
        )
    chunks = payload - NONCE_SIZE
    if chunks == 0:
        raise EnvelopeError("payload.truncated", "the payload has a nonce but no chunk")
    full, last = divmod(chunks, ENCRYPTED_CHUNK_SIZE)
    if 0 < last < TAG_SIZE:
        raise EnvelopeError(
            "payload.truncated",
            f"the last chunk (#{full}) is {last} bytes, cut inside its {TAG_SIZE}-byte tag",
        )
    if last == TAG_SIZE and full > 0:
        raise EnvelopeError(
            "payload.empty_chunk", f"final chunk {full} is empty; only an empty payload may be"
        )


def parse_header(data: bytes | bytearray | memoryview) -> Header:
    """Parse the age header at the start of `data` (which may continue with the payload)."""
    view = bytes(data[: MAX_HEADER + 1]) if len(data) > MAX_HEADER + 1 else bytes(data)
    position = 0

    def readline(limit: int) -> bytes:
        nonlocal position
        end = view.find(b"\n", position, position + limit)
        end = min(position + limit, len(view)) if end < 0 else end + 1
        line = view[position:end]
        position = end
        return line

    return _parse_header(readline)


def read_header(stream: LineSource) -> Header:
    """Read only the header from `stream` (seekable or not), leaving it positioned at the payload."""
    return _parse_header(stream.readline)


def verify_file_key(header: Header, file_key: bytes) -> None:
    """Check `file_key` against the header MAC; EnvelopeError header.mac when it is not this file's key."""
    if len(file_key) != FILE_KEY_SIZE:
        raise EnvelopeError("header.mac", f"a file key is {FILE_KEY_SIZE} bytes, got {len(file_key)}")
    if not hmac.compare_digest(_header_mac(file_key, header.mac_input), header.mac):
        raise EnvelopeError(
            "header.mac", "the header MAC does not match: the header was altered or this is not its file key"
        )


# --- stanzas in a parsed header -----------------------------------------------------------------------


def _x25519_parts(stanza: Stanza, index: int) -> tuple[bytes, bytes]:
    where = f"X25519 stanza #{index + 1}"
    if len(stanza.args) != 1:
        raise EnvelopeError("header.stanza", f"{where} has {len(stanza.args) + 1} arguments, expected 2")
    ephemeral = b64decode(stanza.args[0], f"{where}: ephemeral share")
    if len(ephemeral) != 32 or len(stanza.body) != FILE_KEY_SIZE + TAG_SIZE:
        raise EnvelopeError("header.stanza", f"{where}: wrong ephemeral share or body length")
    return ephemeral, stanza.body


def parse_share_stanza(stanza: Stanza, index: int = 0) -> ShareStanza:
    """Check and decode a ggzy-share stanza's arguments; EnvelopeError header.stanza when malformed."""
    where = f"ggzy-share stanza #{index + 1}"
    if stanza.type != SHARE_TYPE:
        raise EnvelopeError("header.stanza", f"{where} is of type {stanza.type!r}")
    if len(stanza.args) != 5:
        raise EnvelopeError("header.stanza", f"{where} has {len(stanza.args) + 1} arguments, expected 6")
    context, x_text, t_text, tag, ephemeral_text = stanza.args
    if not _DECIMAL.fullmatch(x_text) or not _DECIMAL.fullmatch(t_text):
        raise EnvelopeError(
            "header.stanza", f"{where}: x and t must be decimal numbers without leading zeros"
        )
    x, t = int(x_text), int(t_text)
    if not 1 <= x <= shamir.MAX_SHARES or not shamir.MIN_THRESHOLD <= t <= shamir.MAX_SHARES:
        raise EnvelopeError("header.stanza", f"{where}: x={x} or t={t} out of range")
    if len(b64decode(tag, f"{where}: tag")) != 4:
        raise EnvelopeError("header.stanza", f"{where}: the tag must encode 4 bytes")
    ephemeral = b64decode(ephemeral_text, f"{where}: ephemeral share")
    if len(ephemeral) != 32 or len(stanza.body) != FILE_KEY_SIZE + TAG_SIZE:
        raise EnvelopeError("header.stanza", f"{where}: wrong ephemeral share or body length")
    return ShareStanza(context, x, t, tag, ephemeral, stanza.body)


def check_roster(header: Header, *, custodians: Sequence[bytes], threshold: int, context: str) -> None:
    """Check the header carries exactly the stanzas ggzy requires for this tender's custodian roster.

    Exactly one X25519 stanza (the bidder's; its recipient cannot be checked, age stanzas are anonymous),
    exactly one ggzy-share stanza per custodian with x = position + 1, this threshold, this context and
    the custodian's tag, and nothing else.
    """
    x25519 = [s for s in header.stanzas if s.type == X25519_TYPE]
    others = [s.type for s in header.stanzas if s.type not in (X25519_TYPE, SHARE_TYPE)]
    if others:
        raise EnvelopeError("roster.stanza_unexpected", f"unexpected stanza type(s): {', '.join(others)}")
    if len(x25519) != 1:
        raise EnvelopeError(
            "roster.bidder_stanza",
            f"the header has {len(x25519)} X25519 stanzas, expected exactly one (the bidder's)",
        )
    _x25519_parts(x25519[0], 0)
    shares = [
        parse_share_stanza(s, i) for i, s in enumerate(s for s in header.stanzas if s.type == SHARE_TYPE)
    ]
    for share in shares:
        if share.context != context:
            raise EnvelopeError(
                "roster.share_context",
                f"the ggzy-share stanza x={share.x} is for {share.context!r}, not {context!r}",
            )
        if share.t != threshold:
            raise EnvelopeError(
                "roster.share_threshold",
                f"the ggzy-share stanza x={share.x} has t={share.t}, the tender needs t={threshold}",
            )
    unmatched = list(shares)
    for position, custodian in enumerate(custodians):
        wanted = (position + 1, share_tag(custodian))
        found = next((s for s in unmatched if (s.x, s.tag) == wanted), None)
        if found is None:
            raise EnvelopeError(
                "roster.share_missing",
                f"custodian #{position + 1} (tag {wanted[1]}) has no ggzy-share stanza with x={position + 1}",
            )
        unmatched.remove(found)
    if unmatched:
        extra = ", ".join(f"x={s.x} tag={s.tag}" for s in unmatched)
        raise EnvelopeError(
            "roster.share_unexpected", f"ggzy-share stanza(s) for no custodian of the roster: {extra}"
        )


def unwrap_bidder(header: Header, identity_private_raw: bytes) -> bytes:
    """The file key, from the X25519 stanza this identity opens, checked against the header MAC."""
    identity = X25519PrivateKey.from_private_bytes(identity_private_raw)
    stanzas = [s for s in header.stanzas if s.type == X25519_TYPE]
    for index, stanza in enumerate(stanzas):
        ephemeral, body = _x25519_parts(stanza, index)
        file_key = _unwrap(identity, ephemeral, body, X25519_INFO)
        if file_key is not None:
            verify_file_key(header, file_key)
            return file_key
    raise EnvelopeError("key.unwrap", f"none of the {len(stanzas)} X25519 stanza(s) opens with this identity")


def unwrap_shares(header: Header, identity_private_raw: bytes, context: str) -> list[shamir.Share]:
    """This custodian's shares (normally one) from the ggzy-share stanzas tagged with their key.

    The share key derivation binds `context`, so a stanza copied into an envelope of another tender (even
    with its context argument rewritten) does not open. Shares are not MAC-checked until combined.
    """
    identity = X25519PrivateKey.from_private_bytes(identity_private_raw)
    tag = share_tag(identity.public_key().public_bytes_raw())
    parsed = [
        parse_share_stanza(s, i) for i, s in enumerate(s for s in header.stanzas if s.type == SHARE_TYPE)
    ]
    mine = [s for s in parsed if s.tag == tag]
    if not mine:
        raise EnvelopeError(
            "key.unwrap", f"no ggzy-share stanza is addressed to this custodian key (tag {tag})"
        )
    shares = []
    for stanza in mine:
        if stanza.context != context:
            raise EnvelopeError(
                "roster.share_context",
                f"the ggzy-share stanza x={stanza.x} is for {stanza.context!r}, not {context!r}",
            )
        value = _unwrap(identity, stanza.ephemeral, stanza.body, share_info(context, stanza.x, stanza.t))
        if value is not None:
            shares.append(shamir.Share(stanza.x, value))
    if not shares:
        raise EnvelopeError(
            "key.unwrap", f"the ggzy-share stanza(s) tagged {tag} do not open with this key for {context!r}"
        )
    return shares


# Combining tries subsets when the full set fails, to get past one bad share; bounded so a large roster
# with many bad shares cannot turn an opening into a combinatorial search.
MAX_COMBINE_ATTEMPTS = 5000


def combine_shares(header: Header, shares: Sequence[shamir.Share]) -> bytes:
    """The file key from at least t custodians' shares, checked against the header MAC.

    EnvelopeError shares.insufficient with fewer than t distinct shares, shares.invalid when no t of
    them yield this envelope's file key (a wrong share, or shares of another envelope).
    """
    thresholds = {
        parse_share_stanza(s, i).t for i, s in enumerate(s for s in header.stanzas if s.type == SHARE_TYPE)
    }
    if not thresholds:
        raise EnvelopeError("roster.share_missing", "the header has no ggzy-share stanza")
    if len(thresholds) > 1:
        raise EnvelopeError(
            "roster.share_threshold", f"the ggzy-share stanzas disagree on t: {sorted(thresholds)}"
        )
    threshold = thresholds.pop()
    distinct: dict[int, shamir.Share] = {}
    for share in shares:
        if len(share.value) != FILE_KEY_SIZE or not 1 <= share.x <= shamir.MAX_SHARES:
            raise EnvelopeError("shares.invalid", f"share x={share.x} is not a {FILE_KEY_SIZE}-byte share")
        known = distinct.setdefault(share.x, share)
        if known.value != share.value:
            raise EnvelopeError("shares.invalid", f"two different shares were given for x={share.x}")
    if len(distinct) < threshold:
        raise EnvelopeError(
            "shares.insufficient", f"{len(distinct)} distinct share(s) given, this envelope needs {threshold}"
        )
    candidates = list(distinct.values())
    subsets = itertools.chain([candidates], itertools.combinations(candidates, threshold))
    for subset in itertools.islice(subsets, MAX_COMBINE_ATTEMPTS):
        file_key = shamir.combine(subset)
        if hmac.compare_digest(_header_mac(file_key, header.mac_input), header.mac):
            return file_key
    raise EnvelopeError("shares.invalid", "the shares do not combine to this envelope's file key")


# --- payload: streaming machinery ---------------------------------------------------------------------


def _chunk_nonce(counter: int, final: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def _fill(src: ReadIntoSource, view: memoryview, start: int) -> int:
    """Read into view[start:] until it is full or the source ends; the number of bytes now in view."""
    position = start
    end = len(view)
    while position < end:
        n = src.readinto(view[position:])
        if n is None:
            raise BlockingIOError("the source is non-blocking and has no data; give a blocking stream")
        if n == 0:
            break
        position += n
    return position


def write_all(dst: Sink, data: memoryview | bytes) -> None:
    """Write all of `data`: buffered files do, raw ones may write part per call, so loop."""
    view = memoryview(data)
    while view:
        n = dst.write(view)
        if n is None or n >= len(view):
            return
        view = view[n:]


class _BufferPool:
    """Batch buffers kept for reuse, process-wide and thread-safe, at most `keep` of each size.

    A fresh multi-megabyte bytearray costs a page fault per 4 KiB on first touch (≈ 1 GB/s here), as much
    as the cipher for a 20 MiB bid. A buffer is given back only when no thread reads or writes it any more.
    """

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._free: dict[int, list[bytearray]] = {}

    def take(self, size: int) -> bytearray:
        """A buffer of exactly `size` bytes (contents undefined)."""
        with self._lock:
            free = self._free.get(size)
            if free:
                return free.pop()
        return bytearray(size)

    def give(self, buffer: bytearray) -> None:
        """Take back a buffer nobody uses any more; dropped when enough of its size are kept."""
        with self._lock:
            free = self._free.setdefault(len(buffer), [])
            if len(free) < self._keep:
                free.append(buffer)


POOL = _BufferPool(POOL_KEEP)


class MappedReader:
    """`readinto` over the bytes of a regular file from `start`, copied out of mmap windows.

    Each window (MAP_WINDOW bytes) is mapped only while it is being copied from, so resident memory
    stays constant whatever the file size. With `end` given, it reads exactly up to there (fewer bytes
    if the file shrinks: the caller tells that apart); without it, up to the file's end as it is when
    reached. The size is re-checked before each copy, so a file that shrank is read to its new end
    rather than faulting; only a truncation landing during one copy (a fraction of a millisecond) can
    still raise SIGBUS, as with any mmap reader.
    `stream`, when given, is seeked to where reading stopped on `close()`.
    """

    def __init__(
        self, fd: int, start: int, end: int | None = None, *, stream: io.IOBase | None = None
    ) -> None:
        self._fd = fd
        self.position = start
        self._end = end
        self._stream = stream
        self._map: mmap.mmap | None = None
        self._view = memoryview(b"")
        self._window_start = 0
        self._window_end = 0
        self._unmappable = False  # a file system without mmap: positional reads instead

    def _release(self) -> None:
        self._view.release()
        self._view = memoryview(b"")
        if self._map is not None:
            self._map.close()
            self._map = None
        self._window_start = self._window_end = 0

    def _map_window(self, end: int) -> None:
        """Map the window holding `position`, up to `end` at most."""
        self._release()
        start = self.position - self.position % mmap.ALLOCATIONGRANULARITY
        stop = min(end, self.position + MAP_WINDOW)
        self._map = mmap.mmap(self._fd, stop - start, offset=start, access=mmap.ACCESS_READ)
        self._view = memoryview(self._map)
        self._window_start, self._window_end = start, stop

    def readinto(self, buffer: memoryview, /) -> int:
        """Copy up to len(buffer) bytes at the current position; 0 at the end."""
        # The size is checked before every copy (a microsecond per batch): touching a mapped page past
        # the end of a file that shrank would kill the process (SIGBUS) instead of raising.
        size = os.fstat(self._fd).st_size
        end = size if self._end is None else min(self._end, size)
        if self.position >= end:
            return 0
        if self._unmappable:
            return self._pread(buffer[: end - self.position])
        if not self._window_start <= self.position < self._window_end:
            try:
                self._map_window(end)
            except (OSError, ValueError):
                self._release()
                self._unmappable = True
                return self._pread(buffer[: end - self.position])
        n = min(len(buffer), self._window_end - self.position, end - self.position)
        offset = self.position - self._window_start
        buffer[:n] = self._view[offset : offset + n]
        self.position += n
        return n

    def _pread(self, buffer: memoryview) -> int:
        n = os.preadv(self._fd, [buffer], self.position)
        self.position += n
        return n

    def close(self) -> None:
        """Unmap the current window and leave `stream` (if any) where reading stopped."""
        self._release()
        if self._stream is not None:
            self._stream.seek(self.position)
            self._stream = None


def mapped(src: ReadIntoSource) -> MappedReader | None:
    """A MappedReader continuing `src` when it is a seekable regular file of some size, else None."""
    if not isinstance(src, (io.BufferedReader, io.FileIO)):
        return None
    try:
        fd = src.fileno()
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or not src.seekable():
            return None
        position = src.tell()
    except (OSError, ValueError):
        return None
    if status.st_size - position < MAP_MIN:
        return None
    return MappedReader(fd, position, stream=src)


class _Output:
    """The writing (and optionally hashing) end of a stream, moved to a helper thread once it is worth it.

    The caller fills buffers from `acquire()` and hands them back with `submit()`. Small streams (one
    batch) are handled inline; from the first batch that is not the last on, a single-worker executor
    hashes and writes them in order while the caller produces the next. A buffer is reused only after
    its write finished, and the worker's first error is raised in the caller at the next hand-over.
    Buffers come from the pool and go back to it on `close()`. Without `background`, everything is
    hashed and written inline.
    """

    def __init__(
        self,
        dst: Sink,
        *,
        digest: bool,
        buffer_size: int,
        depth: int = PIPELINE_DEPTH,
        background: bool = True,
    ) -> None:
        self._dst = dst
        self._background = background
        self._hash = hashlib.sha256() if digest else None
        self._buffer_size = buffer_size
        self._depth = depth
        self._free: list[bytearray] = []
        self._owned: list[bytearray] = []
        self._pending: deque[tuple[bytearray, Future[None]]] = deque()
        self._executor: ThreadPoolExecutor | None = None
        self.size = 0

    def _consume(self, data: memoryview | bytes) -> None:
        if self._hash is not None:
            self._hash.update(data)
        write_all(self._dst, data)

    def write(self, data: bytes) -> None:
        """Write small bytes inline (the header, the nonce); only before any background write."""
        assert self._executor is None
        self._consume(data)
        self.size += len(data)

    def acquire(self) -> bytearray:
        """A buffer to fill: a free one, a new one while under the pipeline depth, else the oldest done one."""
        if self._free:
            return self._free.pop()
        if len(self._owned) < self._depth:
            buffer = POOL.take(self._buffer_size)
            self._owned.append(buffer)
            return buffer
        buffer, future = self._pending.popleft()
        future.result()
        return buffer

    def submit(self, buffer: bytearray, length: int, *, more: bool) -> None:
        """Hash and write buffer[:length]; in the background if more will follow or already went there."""
        view = memoryview(buffer)[:length]
        self.size += length
        if self._executor is None and not (more and self._background):
            self._consume(view)
            self._free.append(buffer)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ggzy-envelope-output")
        self._pending.append((buffer, self._executor.submit(self._consume, view)))

    def finish(self) -> str | None:
        """Wait for every write, re-raise the worker's error if any; the SHA-256 hex (None unhashed)."""
        while self._pending:
            buffer, future = self._pending.popleft()
            future.result()
            self._free.append(buffer)
        return self._hash.hexdigest() if self._hash is not None else None

    def close(self) -> None:
        """Stop the worker; safe after an error (pending writes are waited for, their errors dropped)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        for buffer in self._owned:
            POOL.give(buffer)
        self._owned = []
        self._free = []
        self._pending.clear()


def _seal_batch(aead: ChaCha20Poly1305, plain: memoryview, counter: int, out: _Output, *, final: bool) -> int:
    """Encrypt one batch of whole chunks (the last one final if `final`) into an output buffer."""
    chunks = max(1, -(-len(plain) // CHUNK_SIZE))  # an empty payload is one empty final chunk
    buffer = out.acquire()
    sealed = memoryview(buffer)
    encrypt_into = aead.encrypt_into
    position = 0
    written = 0
    last = chunks - 1
    for i in range(chunks):
        end = min(position + CHUNK_SIZE, len(plain))
        size = end - position + TAG_SIZE
        nonce = _chunk_nonce(counter + i, final and i == last)
        encrypt_into(nonce, plain[position:end], None, sealed[written : written + size])
        position = end
        written += size
    out.submit(buffer, written, more=not final)
    return chunks


def _encrypt_batches(src: BatchSource, out: _Output, aead: ChaCha20Poly1305) -> int:
    """Encrypt the batches a BatchSource lends, one batch of look-ahead; the plaintext length."""
    batch = BATCH_CHUNKS * CHUNK_SIZE
    current = src.read_batch(batch)
    counter = 0
    total = 0
    while len(current) == batch:
        following = src.read_batch(batch)
        if not following:
            break
        counter += _seal_batch(aead, current, counter, out, final=False)
        total += batch
        current = following
    _seal_batch(aead, current, counter, out, final=True)
    out.finish()
    return total + len(current)


def _encrypt_payload(src: ReadIntoSource | BatchSource, out: _Output, file_key: bytes, ring_size: int) -> int:
    """Write nonce and STREAM chunks of everything `src` yields; the plaintext length."""
    nonce = secrets.token_bytes(NONCE_SIZE)
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    out.write(nonce)
    if isinstance(src, BatchSource):
        return _encrypt_batches(src, out, aead)
    batch = BATCH_CHUNKS * CHUNK_SIZE
    # A batch is encrypted only once the next one is read: that look-ahead tells whether its last chunk
    # is the final one (age forbids an empty final chunk after data). Batches rotate through a small
    # ring and are only ever written by the source's readinto, never moved, so a source that lets
    # another thread read a batch (to hash it) needs only wait before it refills that same memory; once
    # its readinto has returned 0 it must not touch them at all (they go back to the pool).
    owned = [POOL.take(batch)]
    ring = [memoryview(owned[0])]
    try:
        index = 0
        filled = _fill(src, ring[0], 0)
        counter = 0
        total = 0
        while filled == batch:
            following = (index + 1) % ring_size
            if following == len(ring):
                owned.append(POOL.take(batch))
                ring.append(memoryview(owned[-1]))
            following_filled = _fill(src, ring[following], 0)
            if following_filled == 0:
                break
            counter += _seal_batch(aead, ring[index], counter, out, final=False)
            total += batch
            index, filled = following, following_filled
        _seal_batch(aead, ring[index][:filled], counter, out, final=True)
        # the final batch is written (and the output drained) before its memory is given back
        out.finish()
    except BaseException:
        # a source's helper thread or the output thread may still read a ring buffer: do not pool them
        owned.clear()
        raise
    finally:
        for view in ring:
            view.release()
        for buffer in owned:
            POOL.give(buffer)
    return total + filled


def _write_envelope(
    src: ReadIntoSource | BatchSource, dst: Sink, header: bytes, file_key: bytes, *, digest: bool
) -> SealInfo:
    depth, ring = (HASHED_PIPELINE_DEPTH, HASHED_PLAIN_RING) if digest else (PIPELINE_DEPTH, PLAIN_RING)
    # With 2 cores, a source hashing on its own thread (a bid's files) and an unhashed output: the
    # cipher and the writes share one core and the hashing has the other. A third thread for the
    # writes would take turns with the hashing, the slowest stage (measured: ≈ 10% slower). Hashing
    # the output too is more work than one core takes next to the cipher, so then it gets the thread.
    background = digest or not getattr(src, "busy_thread", False)
    out = _Output(
        dst,
        digest=digest,
        buffer_size=BATCH_CHUNKS * ENCRYPTED_CHUNK_SIZE,
        depth=depth,
        background=background,
    )
    source = None if isinstance(src, BatchSource) else mapped(src)
    try:
        if header:
            out.write(header)
        _encrypt_payload(src if source is None else source, out, file_key, ring)
        sha256 = out.finish()
    finally:
        out.close()
        if source is not None:
            source.close()
    return SealInfo(len(header), out.size, sha256)


def encrypt(
    src: ReadIntoSource | BatchSource,
    dst: Sink,
    stanzas: Sequence[Stanza],
    file_key: bytes,
    *,
    hash_output: bool = True,
) -> SealInfo:
    """Write a plain age file of `src` with these recipient stanzas; `file_key` must be fresh.

    With `hash_output` the SHA-256 of what was written is computed on the way (SealInfo.sha256);
    without it that costs nothing and SealInfo.sha256 is None.
    """
    if len(file_key) != FILE_KEY_SIZE:
        raise ValueError(f"a file key is {FILE_KEY_SIZE} bytes, got {len(file_key)}")
    return _write_envelope(src, dst, encode_header(stanzas, file_key), file_key, digest=hash_output)


def encrypt_payload(src: ReadIntoSource, dst: Sink, file_key: bytes) -> int:
    """Write only the payload (nonce and chunks) of `src`, unhashed: the bare encryption stage."""
    return _write_envelope(src, dst, b"", file_key, digest=False).size


def seal(
    src: ReadIntoSource | BatchSource,
    dst: Sink,
    *,
    bidder: bytes,
    custodians: Sequence[bytes],
    threshold: int,
    context: str,
    file_key: bytes | None = None,
    hash_output: bool = True,
) -> SealInfo:
    """Seal `src` into a bid envelope: an X25519 stanza to the bidder, t-of-n shares to the custodians.

    `bidder` and `custodians` are raw X25519 public keys, `context` the tender code bound into the shares.
    With `hash_output` (the default) the returned SHA-256 is of the envelope bytes as written (computed
    on the way, no second pass, but a second full-speed hash on the critical path); without it
    SealInfo.sha256 is None, for callers that hash the envelope when they submit it.
    """
    file_key = generate_file_key() if file_key is None else file_key
    if len(file_key) != FILE_KEY_SIZE:
        raise ValueError(f"a file key is {FILE_KEY_SIZE} bytes, got {len(file_key)}")
    stanzas = [x25519_stanza(file_key, bidder), *share_stanzas(file_key, custodians, threshold, context)]
    return _write_envelope(src, dst, encode_header(stanzas, file_key), file_key, digest=hash_output)


class PayloadDecryptor:
    """Decrypts the STREAM payload batch by batch into buffers the caller provides (PLAIN_BATCH bytes).

    With `pooled`, its read buffer comes from the pool and goes back on `close()`.
    """

    def __init__(self, src: ReadIntoSource, file_key: bytes, *, pooled: bool = False) -> None:
        self._src = src
        nonce = bytearray(NONCE_SIZE)
        got = _fill(src, memoryview(nonce), 0)
        if got < NONCE_SIZE:
            raise EnvelopeError(
                "payload.nonce", f"the payload is {got} bytes, shorter than its 16-byte nonce"
            )
        self._aead = ChaCha20Poly1305(_hkdf(file_key, bytes(nonce), b"payload"))
        size = (BATCH_CHUNKS + 1) * ENCRYPTED_CHUNK_SIZE
        self._pooled = pooled
        self._sealed = POOL.take(size) if pooled else bytearray(size)
        self._carry = 0
        self._counter = 0
        self.done = False

    def close(self) -> None:
        """Give a pooled read buffer back; the decryptor is unusable afterwards."""
        if self._pooled:
            self._pooled = False
            POOL.give(self._sealed)
            self._sealed = bytearray()
            self.done = True

    def _open(self, chunk: memoryview, out: memoryview, final: bool) -> bool:
        try:
            self._aead.decrypt_into(_chunk_nonce(self._counter, final), chunk, None, out)
        except InvalidTag:
            return False
        return True

    def _diagnose(self, chunk: memoryview, out: memoryview, expected_final: bool) -> EnvelopeError:
        """Name why chunk `counter` failed: does it open with the other last-chunk flag?"""
        n = self._counter
        if self._open(chunk, out, not expected_final):
            if expected_final:
                return EnvelopeError(
                    "payload.truncated", f"chunk {n} is not marked final: the payload is truncated"
                )
            return EnvelopeError("payload.trailing", f"chunk {n} is the final chunk but data follows it")
        return EnvelopeError(
            "payload.chunk",
            f"chunk {n} failed authentication: it was altered, reordered, cut, has data appended, or the key is wrong",
        )

    def decrypt_batch(self, out: memoryview) -> int | None:
        """Decrypt the next batch into `out` (at least BATCH_CHUNKS + 1 chunks long); None after the end."""
        if self.done:
            return None
        sealed = memoryview(self._sealed)
        filled = _fill(self._src, sealed, self._carry)
        at_end = filled < len(self._sealed)
        if at_end:
            if filled == 0:
                raise EnvelopeError("payload.truncated", "the payload has a nonce but no chunk")
            length = filled
            chunks = -(-filled // ENCRYPTED_CHUNK_SIZE)
        else:
            length = BATCH_CHUNKS * ENCRYPTED_CHUNK_SIZE
            chunks = BATCH_CHUNKS
        position = 0
        written = 0
        for i in range(chunks):
            end = min(position + ENCRYPTED_CHUNK_SIZE, length)
            size = end - position - TAG_SIZE
            final = at_end and i == chunks - 1
            if size < 0:
                raise EnvelopeError(
                    "payload.truncated",
                    f"chunk {self._counter} is {end - position} bytes, cut inside its tag",
                )
            chunk = sealed[position:end]
            target = out[written : written + size]
            if not self._open(chunk, target, final):
                raise self._diagnose(chunk, target, final)
            if final and size == 0 and self._counter > 0:
                raise EnvelopeError(
                    "payload.empty_chunk",
                    f"final chunk {self._counter} is empty; only an empty payload may be",
                )
            self._counter += 1
            position = end
            written += size
        if at_end:
            self.done = True
        else:
            sealed[:ENCRYPTED_CHUNK_SIZE] = sealed[BATCH_CHUNKS * ENCRYPTED_CHUNK_SIZE :]
            self._carry = ENCRYPTED_CHUNK_SIZE
        return written


PLAIN_BATCH = (BATCH_CHUNKS + 1) * CHUNK_SIZE
_PLAIN_BATCH = PLAIN_BATCH


def iter_plaintext(src: ReadIntoSource, header: Header, file_key: bytes) -> Iterator[memoryview]:
    """Decrypt the payload (`src` positioned just after the header) in batches, in constant memory.

    Each view is valid only until the next is requested. Plaintext is released chunk by chunk as it is
    authenticated; truncation is only known at the end, so a consumer must discard its output when the
    iteration raises.
    """
    verify_file_key(header, file_key)
    decryptor = PayloadDecryptor(src, file_key)
    buffer = memoryview(bytearray(_PLAIN_BATCH))
    while (n := decryptor.decrypt_batch(buffer)) is not None:
        yield buffer[:n]


def decrypt(src: EnvelopeSource, dst: Sink, file_key: bytes) -> int:
    """Decrypt a whole envelope (header included) with its file key into `dst`; the plaintext size."""
    header = read_header(src)
    verify_file_key(header, file_key)
    source = mapped(src)
    out = _Output(dst, digest=False, buffer_size=_PLAIN_BATCH)
    decryptor: PayloadDecryptor | None = None
    try:
        decryptor = PayloadDecryptor(src if source is None else source, file_key, pooled=True)
        while True:
            buffer = out.acquire()
            n = decryptor.decrypt_batch(memoryview(buffer))
            if n is None:
                break
            out.submit(buffer, n, more=not decryptor.done)
        out.finish()
    finally:
        out.close()
        if decryptor is not None:
            decryptor.close()
        if source is not None:
            source.close()
    return out.size


class PlaintextReader(io.RawIOBase):
    """A read-only file over an envelope's plaintext (`src` positioned at the payload).

    It reads and authenticates the payload batch by batch, so `tarfile.open(fileobj=reader, mode="r|")`
    or any streaming consumer can use it in constant memory. Errors surface as EnvelopeError from read.
    """

    def __init__(self, src: ReadIntoSource, header: Header, file_key: bytes) -> None:
        super().__init__()
        verify_file_key(header, file_key)
        self._decryptor = PayloadDecryptor(src, file_key)
        self._buffer = memoryview(bytearray(_PLAIN_BATCH))
        self._start = 0
        self._end = 0

    def readable(self) -> bool:
        """Always True: this is a reader."""
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        """Copy up to len(buffer) plaintext bytes into it; 0 at the authenticated end of the payload."""
        target = memoryview(buffer).cast("B")
        while self._start == self._end:
            n = self._decryptor.decrypt_batch(self._buffer)
            if n is None:
                return 0
            self._start, self._end = 0, n
        count = min(len(target), self._end - self._start)
        target[:count] = self._buffer[self._start : self._start + count]
        self._start += count
        return count
