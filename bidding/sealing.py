"""Sealing a bid on the bidder's machine, with no network: the envelope written beside its target, opened
again by its own bidder and renamed into place, and the sealing context a bidder may save beforehand.

The sealing context (`ggzy bid prepare`) is what sealing needs from the platform: the tender's code, its
lots, its custodian roster and threshold, the bidder's credit code and the public keys registered to the
bidder's organisation when it was saved. With it `ggzy bid seal --prepared FILE` runs offline and still
refuses a key file that was not registered. This module imports no HTTP client and no event loop, so a
seal costs the interpreter, `click` and the sealing modules.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bidding import agekeys, bidfile, envelope

PREPARED_VERSION = 1
# Written bytes between background write-backs while an envelope is written (see EarlyWriteBack).
WRITE_BACK_EVERY = 32 * 1024 * 1024

Progress = Callable[[int], object]
"""Told how many more bytes were sealed, sent or received (a progress bar's `update`)."""


class SealingRefused(ValueError):
    """The client will not seal (or keep) this envelope: its bidder could not open it, or it could not
    stand as this bidder's bid. Nothing is left on disk."""


@dataclass(frozen=True)
class Sealed:
    """A sealed envelope on disk and its manifest."""

    path: Path
    manifest: bidfile.Manifest
    size: int

    def sha256(self) -> str:
        """The envelope's SHA-256 (what the receipt will name), read from disk: sealing does not hash its
        output, since submitting hashes the file anyway."""
        return sha256_of(self.path)


@dataclass(frozen=True)
class Prepared:
    """A sealing context: what `seal` needs from the platform, saved so that sealing runs offline.

    `registered` holds the live (purpose, base64 public key) pairs of the bidder's organisation.
    """

    tender_id: str
    tender_code: str
    lots: tuple[int, ...]
    custodians: tuple[bytes, ...]
    threshold: int
    bidder_credit_code: str
    registered: tuple[tuple[str, str], ...]

    @classmethod
    def from_answers(
        cls, tender: Mapping[str, Any], me: Mapping[str, Any], keys: Sequence[Mapping[str, Any]]
    ) -> Prepared:
        """From the platform's answers: GET /tenders/{id}, GET /auth/me and GET /keys."""
        custodians = tuple(base64.b64decode(c["public_key"]) for c in tender.get("custodians") or [])
        threshold = tender.get("shamir_threshold")
        if not custodians or not threshold:
            raise SealingRefused("the tender has no custodian roster yet: it is not published")
        return cls(
            tender_id=str(tender["id"]),
            tender_code=str(tender["code"]),
            lots=tuple(int(lot["number"]) for lot in tender.get("lots") or []),
            custodians=custodians,
            threshold=int(threshold),
            bidder_credit_code=str(me["organisation"]["credit_code"]),
            registered=tuple(
                (str(k["purpose"]), str(k["public_key"])) for k in keys if not k.get("revoked_at")
            ),
        )

    def to_json(self) -> str:
        """The file `ggzy bid prepare` writes (public data only: nothing in it is secret)."""
        document = {
            "version": PREPARED_VERSION,
            "tender_id": self.tender_id,
            "tender_code": self.tender_code,
            "lots": list(self.lots),
            "custodians": [base64.b64encode(c).decode("ascii") for c in self.custodians],
            "shamir_threshold": self.threshold,
            "bidder_credit_code": self.bidder_credit_code,
            "registered_keys": [{"purpose": p, "public_key": k} for p, k in self.registered],
        }
        return json.dumps(document, ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Prepared:
        """Read a sealing context; ValueError naming what is wrong with it."""
        try:
            document = json.loads(text)
            if not isinstance(document, dict) or document.get("version") != PREPARED_VERSION:
                raise ValueError(f"not a version {PREPARED_VERSION} sealing context (ggzy bid prepare)")
            custodians = tuple(
                base64.b64decode(c, validate=True) for c in document["custodians"] if isinstance(c, str)
            )
            prepared = cls(
                tender_id=_text(document["tender_id"], "tender_id"),
                tender_code=_text(document["tender_code"], "tender_code"),
                lots=tuple(_whole(n, "lots") for n in document["lots"]),
                custodians=custodians,
                threshold=_whole(document["shamir_threshold"], "shamir_threshold"),
                bidder_credit_code=_text(document["bidder_credit_code"], "bidder_credit_code"),
                registered=tuple(
                    (_text(k["purpose"], "registered_keys"), _text(k["public_key"], "registered_keys"))
                    for k in document["registered_keys"]
                ),
            )
        except KeyError as exc:
            raise ValueError(f"the sealing context has no {exc.args[0]}") from exc
        except (TypeError, binascii.Error) as exc:
            raise ValueError(f"the sealing context is malformed: {exc}") from exc
        if len(custodians) != len(document["custodians"]) or not custodians:
            raise ValueError("the sealing context's custodians must be base64 public keys")
        return prepared


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"the sealing context's {name} must be text")
    return value


def _whole(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"the sealing context's {name} must be whole numbers from 1")
    return value


def check_own_keys(keys: agekeys.KeyPair, registered: Sequence[tuple[str, str]]) -> None:
    """The identity's X25519 (and Ed25519) public keys must be among the live keys registered to the
    bidder's organisation, as (purpose, base64 public key) pairs; SealingRefused otherwise."""
    live = set(registered)
    encryption = base64.b64encode(agekeys.x25519_public_raw(keys)).decode()
    if ("encryption", encryption) not in live:
        raise SealingRefused(
            "this identity's X25519 key is not an encryption key registered to your organisation: an "
            "envelope sealed to it could not be opened by you in the opening hall "
            "(register it with `ggzy bid keygen --register`, or use your own key file)"
        )
    if keys.signing is not None:
        signing = base64.b64encode(agekeys.ed25519_public_raw(keys)).decode()
        if ("signing", signing) not in live:
            raise SealingRefused(
                "this identity's Ed25519 key is not a signing key registered to your organisation: the "
                "bid's signed manifest would not be accepted at the opening"
            )


def seal_to_file(
    prepared: Prepared,
    lot_number: int,
    files: Sequence[Path],
    keys: agekeys.KeyPair,
    *,
    declared_price_fen: int | None,
    duration_days: int | None,
    out: Path,
    kind: str = "commercial",
    progress: Progress | None = None,
) -> Sealed:
    """Seal `files` for a lot into `out`, for the tender and bidder of a sealing context (blocking).

    Refused (SealingRefused) unless the identity's keys are registered to the bidder's organisation:
    sealed to anyone else's key, a bid could not be opened by its own bidder. After sealing, the
    envelope's own header is opened (its stanza, the MAC, the roster, the payload's length) before the
    file is kept; it is written beside `out` and renamed into place only then, so no partial or
    unchecked envelope is ever left at `out`, whatever fails. `progress` is told of every block of
    ciphertext written.
    """
    if keys.signing is None:
        raise ValueError("a bidder's key file must hold a signing key (ggzy bid keygen)")
    check_own_keys(keys, prepared.registered)
    signing = keys.signing
    custodians = list(prepared.custodians)

    def write(dst: envelope.Sink) -> bidfile.SealedBid:
        return bidfile.seal_bid(
            list(files),
            dst if progress is None else _CountingSink(dst, progress),
            tender=prepared.tender_code,
            lot=lot_number,
            bidder=prepared.bidder_credit_code,
            kind=kind,
            declared_price_fen=declared_price_fen,
            duration_days=duration_days,
            signing=signing,
            bidder_public=agekeys.x25519_public_raw(keys),
            custodians=custodians,
            threshold=prepared.threshold,
            hash_output=False,
        )

    def check(path: Path) -> None:
        self_check(
            path, keys, custodians=custodians, threshold=prepared.threshold, context=prepared.tender_code
        )

    sealed = write_atomically(out, write, check)
    return Sealed(out, sealed.manifest, sealed.info.size)


def self_check(
    path: Path, keys: agekeys.KeyPair, *, custodians: Sequence[bytes], threshold: int, context: str
) -> None:
    """Open one's own freshly sealed envelope's header: the bidder's stanza opens with the identity and the
    MAC holds, the share stanzas are exactly the tender's roster (and provable), and the payload's length
    is one an age STREAM can have. SealingRefused naming what failed."""
    from bidding import custody  # its group arithmetic (libsodium) is only needed from here on

    try:
        size = path.stat().st_size
        with path.open("rb") as src:
            header = envelope.read_header(src)
        envelope.unwrap_bidder(header, keys.encryption.private_bytes_raw())
        envelope.check_roster(header, custodians=custodians, threshold=threshold, context=context)
        custody.check_share_ephemerals(header)
        envelope.check_payload_length(size, header.size)
    except envelope.EnvelopeError as exc:
        raise SealingRefused(f"the sealed envelope failed its self-check, nothing was kept: {exc}") from exc


def write_atomically(out: Path, write: Callable[[Any], Any], check: Callable[[Path], None]) -> Any:
    """Write a file through `write(stream)` into a temporary file in `out`'s folder, `check` it, and only
    then rename it to `out` (atomically: `out` is either untouched or complete). On any error, including
    an interrupt, the temporary file is removed. The file is on disk (fsync) before it is renamed; what
    was written is sent to disk while the rest is still being written (`EarlyWriteBack`)."""
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as stream:
            early = EarlyWriteBack(stream)
            try:
                result = write(early)
                stream.flush()
                early.finish()
            finally:
                early.close()
            os.fsync(stream.fileno())
        check(temporary)
        os.replace(temporary, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return result


class EarlyWriteBack:
    """A sink over an open file that has the kernel write it to disk in the background, every
    WRITE_BACK_EVERY bytes written, while the writing goes on: the fsync that makes the file durable
    then waits only for the last part rather than the whole file. One `fdatasync` at a time runs on a
    thread of its own; its error, if any, is raised by `finish`. Small files never start the thread."""

    def __init__(self, stream: Any, every: int | None = None) -> None:
        self._stream = stream
        self._every = WRITE_BACK_EVERY if every is None else every
        self._since = 0
        self._thread: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def write(self, data: bytes | memoryview, /) -> int | None:
        """Write `data` to the file; start a background write-back when enough has been written since."""
        written: int | None = self._stream.write(data)
        self._since += len(data)
        if self._since >= self._every and (self._pending is None or self._pending.done()):
            if self._pending is not None:
                self._pending.result()
            self._since = 0
            if self._thread is None:
                self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ggzy-write-back")
            self._pending = self._thread.submit(os.fdatasync, self._stream.fileno())
        return written

    def finish(self) -> None:
        """Wait for the write-back still running; its error, if it had one."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        """Stop the thread (waiting for a write-back still running, its error dropped)."""
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None


class _CountingSink:
    """A sink that tells a progress callback how much was written through it."""

    def __init__(self, sink: envelope.Sink, progress: Progress) -> None:
        self.sink = sink
        self.progress = progress

    def write(self, data: bytes | memoryview, /) -> int | None:
        written = self.sink.write(data)
        self.progress(len(data))
        return written


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    with path.open("rb") as src:
        return hashlib.file_digest(src, "sha256").hexdigest()
