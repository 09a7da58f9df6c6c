"""The ledger's signed heads (账本签名头): what the platform states, with its Ed25519 log key, about the
journal after every batch that moved money and at least hourly — "the journal had `entries` entries and
the last one hashed to `chain_hash`" — and the checks an auditor runs against them offline.

A head commits to the whole journal up to its entry, because each entry's hash covers the one before it
(`escrow/ledger.py`). Whoever rewrites an entry and rehashes the chain after it, with the documented
scheme, cannot sign the new hashes: every head signed since that entry no longer matches, and neither does
the head an auditor downloaded and kept. The heads are published (`GET /api/v1/transparency/ledger/…`)
with sizes and hashes only: no amounts, no accounts, no names.

The signed text, byte for byte (each line ends with a line feed, UTF-8):

    ggzy-ledger-head-v1
    <sequence>        the head's own number: 1, 2, 3, … without gaps
    <entries>         how many journal entries it covers (the last one's sequence number; 0 when empty)
    <chain_hash>      that entry's hash, 64 lowercase hex digits (64 zeros when empty)
    <signed_at>       the signing instant as whole microseconds since 1970-01-01T00:00:00Z

The first line keeps these signatures apart from every other text the same key signs (the transparency
log's tree heads begin "ggzy-tree-head-v1", closing records "ggzy-closing-v1").

Pure: no database, no web framework.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, TypedDict

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from escrow import ledger
from storage.signing import LogSigner, key_id

VERSION: Final = "ggzy-ledger-head-v1"
FIELDS: Final = ("version", "sequence", "entries", "chain_hash", "signed_at", "key_id", "signature")

SIGNED: Final = "signed heads match the journal"
KEPT_SIGNED: Final = "the kept head is signed by the platform key"
KEPT_HELD: Final = "the journal still holds the kept head"
KEPT_EXTENDED: Final = "the journal extends the kept head"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_HEX16: Final = re.compile(r"[0-9a-f]{16}")
_INSTANT: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_MAX_SEQUENCE: Final = 2**63 - 1


class HeadError(ValueError):
    """A head that is not one: a stable `code` ("head.json", "head.version", "head.field") and a message
    naming the field."""

    def __init__(self, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class SignedHead:
    """One signed head of the ledger."""

    sequence: int
    entries: int
    chain_hash: str
    signed_at: datetime
    key_id: str
    signature: bytes

    def to_json(self) -> PublishedLedgerHead:
        """The published form: the signed fields, the signing key's id and the base64 signature."""
        return {
            "version": VERSION,
            "sequence": self.sequence,
            "entries": self.entries,
            "chain_hash": self.chain_hash,
            "signed_at": format_instant(self.signed_at),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }


class PublishedLedgerHead(TypedDict):
    """A signed head of the deposit ledger: the platform states that the journal had `entries` entries and
    that the last one's hash is `chain_hash` (64 lowercase hex digits; 64 zeros when empty), as head number
    `sequence` (1, 2, 3, … without gaps), at `signed_at` (UTC, six decimals, "Z"). Sizes and hashes only.

    `signature` is the base64 of the 64-byte Ed25519 signature, by the platform's log key
    (`GET /api/v1/transparency/key`; `key_id` is the first 16 hex digits of the SHA-256 of its raw 32-byte
    public key), over these UTF-8 lines, each ending in a line feed: `ggzy-ledger-head-v1`, the sequence,
    the entries, the chain hash, and the signing instant as whole microseconds since
    1970-01-01T00:00:00Z, all in decimal. `version` is always "ggzy-ledger-head-v1"."""

    version: str
    sequence: int
    entries: int
    chain_hash: str
    signed_at: str
    key_id: str
    signature: str


class PublishedLedgerHeads(TypedDict):
    """Signed heads of the deposit ledger, oldest first; `next` is the `after` of the next page (null at
    the end)."""

    heads: list[PublishedLedgerHead]
    next: int | None


def _micros(at: datetime) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("A head's instant must be timezone-aware (UTC); naive datetimes are refused.")
    return (at - _EPOCH) // _MICROSECOND


def format_instant(at: datetime) -> str:
    """An instant as the published heads write it: UTC, six decimals, "Z" (2026-03-02T01:00:00.000000Z)."""
    _micros(at)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def message(sequence: int, entries: int, chain_hash: str, signed_at: datetime) -> bytes:
    """The bytes a head's signature covers (see the module's docstring)."""
    lines = (VERSION, str(sequence), str(entries), chain_hash, str(_micros(signed_at)))
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


def sign(signer: LogSigner, sequence: int, entries: int, chain_hash: str, signed_at: datetime) -> SignedHead:
    """The platform's signature over one head; a malformed field is a HeadError."""
    head = SignedHead(sequence, entries, chain_hash, signed_at, signer.key_id, b"")
    _check_fields(head)
    return SignedHead(
        sequence,
        entries,
        chain_hash,
        signed_at,
        signer.key_id,
        signer.sign(message(sequence, entries, chain_hash, signed_at)),
    )


def _check_fields(head: SignedHead) -> None:
    def wrong(field: str, why: str) -> HeadError:
        return HeadError("head.field", f"`{field}` {why}.", field)

    if type(head.sequence) is not int or not 1 <= head.sequence <= _MAX_SEQUENCE:
        raise wrong("sequence", "must be a whole number from 1")
    if type(head.entries) is not int or not 0 <= head.entries <= _MAX_SEQUENCE:
        raise wrong("entries", "must be a whole number from 0")
    if not isinstance(head.chain_hash, str) or _HEX64.fullmatch(head.chain_hash) is None:
        raise wrong("chain_hash", "must be 64 lowercase hex digits")
    if head.entries == 0 and head.chain_hash != ledger.GENESIS:
        raise wrong("chain_hash", "of an empty journal is 64 zeros")
    if not isinstance(head.key_id, str) or _HEX16.fullmatch(head.key_id) is None:
        raise wrong("key_id", "must be 16 lowercase hex digits")


def parse(document: object) -> SignedHead:
    """A head from its published JSON form (already decoded): every field present, of its type and
    format, nothing else. Refuses with HeadError naming the field."""
    if not isinstance(document, Mapping):
        raise HeadError("head.json", "A head is a JSON object.")
    unknown = sorted(str(k) for k in document if k not in FIELDS)
    if unknown:
        raise HeadError("head.field", f"Unknown field `{unknown[0]}`.", unknown[0])
    missing = [name for name in FIELDS if name not in document]
    if missing:
        raise HeadError("head.field", f"The field `{missing[0]}` is missing.", missing[0])
    if document["version"] != VERSION:
        raise HeadError("head.version", f"This is not a {VERSION} head.", "version")
    at = document["signed_at"]
    if not isinstance(at, str) or _INSTANT.fullmatch(at) is None:
        raise HeadError("head.field", "`signed_at` must read like 2026-03-02T01:00:00.000000Z.", "signed_at")
    try:
        signed_at = datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        raise HeadError("head.field", "`signed_at` is not a calendar instant.", "signed_at") from None
    raw = document["signature"]
    try:
        signature = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
    except (binascii.Error, ValueError):
        signature = b""
    if len(signature) != 64:
        raise HeadError("head.field", "`signature` must be the base64 of 64 bytes.", "signature")
    head = SignedHead(
        document["sequence"],
        document["entries"],
        document["chain_hash"],
        signed_at,
        document["key_id"],
        signature,
    )
    _check_fields(head)
    return head


def signature_ok(head: SignedHead, public_raw: bytes) -> bool:
    """Whether the head names this key's id and its signature verifies with this raw Ed25519 public key."""
    if len(public_raw) != 32 or head.key_id != key_id(public_raw):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(
            head.signature, message(head.sequence, head.entries, head.chain_hash, head.signed_at)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def _at(hashes: Mapping[int, str], entries: int) -> str | None:
    return ledger.GENESIS if entries == 0 else hashes.get(entries)


def judge_signed(
    heads: Sequence[SignedHead],
    hashes: Mapping[int, str],
    last: int,
    public_raw: bytes,
    *,
    limit: int = ledger.OFFENDER_LIMIT,
) -> ledger.Check:
    """SIGNED: the heads the platform stored, in sequence order, against the journal. Each head is
    numbered after the one before, covers no fewer entries, verifies with the platform's key, and still
    matches the journal (`hashes`: entry sequence → stored hash, for the entries the heads name; `last`:
    the journal's last entry); the newest head covers the last entry (every batch is signed in its own
    transaction, so an entry no head covers was written around the service, or its heads were removed)."""
    found = ledger.Offenders(limit)
    previous: SignedHead | None = None
    for head in heads:
        where = f"head {head.sequence} (entry {head.entries})"
        if previous is not None and head.sequence != previous.sequence + 1:
            found.add(SIGNED, f"head {head.sequence} follows head {previous.sequence}")
        elif previous is None and head.sequence != 1:
            found.add(SIGNED, f"head {head.sequence} is the first stored; heads before it are missing")
        if previous is not None and head.entries < previous.entries:
            found.add(
                SIGNED, f"{where} covers fewer entries than head {previous.sequence} ({previous.entries})"
            )
        if not signature_ok(head, public_raw):
            found.add(SIGNED, f"{where}: the signature does not verify with key {key_id(public_raw)}")
        now = _at(hashes, head.entries)
        if head.entries > last:
            found.add(SIGNED, f"{where}: the journal ends at entry {last}")
        elif now != head.chain_hash:
            found.add(
                SIGNED,
                f"{where}: entry {head.entries} now hashes to {str(now)[:16]}…, signed {head.chain_hash[:16]}…",
            )
        previous = head
    covered = previous.entries if previous is not None else 0
    if covered < last:
        span = f"entry {last}" if covered + 1 == last else f"entries {covered + 1}–{last}"
        found.add(SIGNED, f"{span} covered by no signed head")
    if previous is None:
        summary = "no head signed yet, the journal is empty"
    else:
        summary = (
            f"{len(heads)} heads, the newest (head {previous.sequence}) covers entry {previous.entries}, "
            f"signed {format_instant(previous.signed_at)}"
        )
    return found.check(SIGNED, summary)


def rewritten(
    kept: SignedHead, heads: Sequence[SignedHead], hashes: Mapping[int, str], public_raw: bytes
) -> str:
    """Where the journal was rewritten, given that it no longer holds the `kept` head: after the last
    stored head (signed by the same key) that still matches, up to the first that does not, at or before
    the kept head's entry."""
    good, bad = 0, kept.entries
    for head in sorted(heads, key=lambda h: h.entries):
        if head.entries > kept.entries or not signature_ok(head, public_raw):
            continue
        if _at(hashes, head.entries) == head.chain_hash:
            good = max(good, head.entries)
        else:
            bad = min(bad, head.entries)
            break
    if good >= bad:
        return f"the platform signed another hash for entry {bad}: the kept head is of another history"
    if good + 1 == bad:
        return f"rewritten at entry {bad}"
    return f"rewritten within entries {good + 1}–{bad}"


def judge_kept(
    kept: SignedHead,
    public_raw: bytes,
    held: str | None,
    last: int,
    heads: Sequence[SignedHead],
    hashes: Mapping[int, str],
) -> tuple[ledger.Check, ledger.Check]:
    """KEPT_SIGNED and KEPT_HELD for a head an auditor kept: signed by the pinned key, and the journal's
    entry at the head still hashes (stored and recomputed: `held`, None when it does not recompute or is
    missing) to the head's hash. When it does not, the stored heads locate the rewrite (`rewritten`)."""
    fingerprint = key_id(public_raw) if len(public_raw) == 32 else "?"
    if signature_ok(kept, public_raw):
        signed = ledger.Check(KEPT_SIGNED, True, f"head {kept.sequence}, key {fingerprint}")
    else:
        signed = ledger.failed(
            KEPT_SIGNED,
            [f"head {kept.sequence} names key {kept.key_id}; it does not verify with key {fingerprint}"],
            1,
        )
    where = f"the kept head {kept.sequence}"
    if kept.entries > last:
        problem = f"the journal ends at entry {last}, before {where}'s entry {kept.entries}"
    elif held != kept.chain_hash:
        now = "does not recompute" if held is None else f"now hashes to {held[:16]}…"
        problem = (
            f"entry {kept.entries} {now}, {where} says {kept.chain_hash[:16]}…; "
            f"{rewritten(kept, heads, hashes, public_raw)}"
        )
    else:
        return signed, ledger.Check(
            KEPT_HELD, True, f"entry {kept.entries} hashes to {kept.chain_hash[:16]}…"
        )
    return signed, ledger.failed(KEPT_HELD, [problem], 1)


class Extension:
    """KEPT_EXTENDED, streamed: `feed` every entry after the kept head in sequence order, then `finish`.
    Each must follow the one before without a gap, name its hash as the previous one, and recompute
    (request and link): the journal since the head is a chain hung on the signed hash. This costs the new
    entries only, whatever the journal's length."""

    _LOCAL: Final = (ledger.SEQUENCE, ledger.REQUESTS, ledger.CHAIN)

    def __init__(self, kept: SignedHead, limit: int = ledger.OFFENDER_LIMIT) -> None:
        self.kept = kept
        self.entries = 0
        self._found = ledger.Offenders(limit)
        self._sequence, self._hash = kept.entries, kept.chain_hash

    def feed(self, entry: ledger.StoredEntry) -> None:
        """Check one entry against the one before it (the kept head's, for the first)."""
        problems = ledger.entry_problems(entry, self._sequence, self._hash, {})
        for check in self._LOCAL:
            if check in problems:
                self._found.add(KEPT_EXTENDED, problems[check])
        self._sequence, self._hash = entry.sequence, entry.hash
        self.entries += 1

    def finish(self) -> ledger.Check:
        """The check over every entry fed."""
        return self._found.check(KEPT_EXTENDED, extended(self.kept, self.entries))


def extended(kept: SignedHead, entries: int) -> str:
    """What KEPT_EXTENDED covered, when it passes."""
    return f"{entries} entries since entry {kept.entries}, chained on its hash"
