"""The audit trail's hash chain and its signed heads (E-04: every step leaves a record that cannot be
altered afterwards): the canonical encoding of an event, the link hash, the signed head and the checker.

Pure logic, no I/O and no clock: `accounts/audit.py` stores what this module computes, and the checker
(`Verifier`) re-derives everything from the stored rows without trusting the writer.

**Canonical JSON.** Values are written as RFC 8785 (JCS) writes them, restricted to what an audit event
holds: null, true and false, integers in decimal, text, arrays, and objects with text keys sorted by their
UTF-16 code units, no whitespace; text escapes `"` and `\\`, writes \\b \\f \\n \\r \\t by name and other
characters below U+0020 as lowercase \\u00XX, everything else (non-ASCII included) as UTF-8. Floats are
refused ("detail.float"): money is integer fen and rates are text here, so no number has two spellings.

**An event's link** (version "ggzy.audit.event.1") is the lowercase hex SHA-256 of the UTF-8 canonical
JSON of the array

    ["ggzy.audit.event.1", sequence, previous hash, event id, time, actor user id, actor organisation id,
     actor roles, action, object type, object id, outcome, details hash]

where the time is whole microseconds since 1970-01-01T00:00:00Z (an integer), ids are lowercase
hyphenated UUIDs as text (null when there is no actor), the roles are the array of role names as stored,
and the details hash is the lowercase hex SHA-256 of the UTF-8 canonical JSON of the details object. The
first event's previous hash is `GENESIS` (64 zeros); each later one's is the hash of the event before it.
So every column of the row is covered, and an auditor re-implements the chain with any JCS library.

**A signed head** (like the deposit ledger's) is the platform's statement "the audit trail had `events`
events and the last one hashed to `chain_hash`", signed with its Ed25519 log key over these lines, each
ending in a line feed (UTF-8):

    ggzy-audit-head-v1
    <sequence>        the head's own number: 1, 2, 3, … without gaps
    <events>          how many events it covers (the last one's sequence number; 0 when empty)
    <chain_hash>      that event's hash, 64 lowercase hex digits (64 zeros when empty)
    <signed_at>       the signing instant as whole microseconds since 1970-01-01T00:00:00Z

The first line keeps these signatures apart from every other text the same key signs.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
import json.encoder
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, TypedDict

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from storage.signing import key_id as key_id

EVENT_VERSION: Final = "ggzy.audit.event.1"
GENESIS: Final = "0" * 64
HEAD_VERSION: Final = "ggzy-audit-head-v1"
# The checker names at most this many offenders per check unless told otherwise.
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 10_000
# Sequence numbers are stored as signed 64-bit integers.
MAX_SEQUENCE: Final = 2**63 - 1
MAX_DEPTH: Final = 32

_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_KEY_ID: Final = re.compile(r"[0-9a-f]{16}")
_INSTANT: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_SIGNATURE_SIZE: Final = 64
_PUBLIC_KEY_SIZE: Final = 32
# A JSON string literal as RFC 8785 writes it: '"' and '\\' escaped, \b \f \n \r \t by name, other control
# characters as lowercase \u00XX, everything else as is (the C encoder behind json.dumps(ensure_ascii=False)).
_quote: Final[Callable[[str], str]] = json.encoder.encode_basestring


# ---------------------------------------------------------------- canonical JSON


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _sorted_keys(keys: list[str]) -> list[str]:
    # ASCII keys sort the same by code point and by UTF-16 code unit; only others need the slower key
    if all(key.isascii() for key in keys):
        return sorted(keys)
    return sorted(keys, key=_utf16)


class _NoForm(Exception):
    """The fast encoder met something it cannot write; the careful one says where and why."""


def _fast(value: object, depth: int) -> str:
    """Canonical JSON without keeping track of where it is (the common case, so it must be quick)."""
    if isinstance(value, str):
        return _quote(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    if depth >= MAX_DEPTH:
        raise _NoForm
    if isinstance(value, list | tuple):
        return "[" + ",".join([_fast(item, depth + 1) for item in value]) + "]"
    if isinstance(value, Mapping):
        keys = list(value.keys())
        if not all(isinstance(key, str) for key in keys):
            raise _NoForm
        return "{" + ",".join([f"{_quote(k)}:{_fast(value[k], depth + 1)}" for k in _sorted_keys(keys)]) + "}"
    raise _NoForm


def _text(value: str, where: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise TypeError(f"{where}: text holds a lone surrogate, which UTF-8 cannot carry") from None
    return _quote(value)


def _canonical(value: object, where: str, depth: int) -> str:
    """The careful encoder: the same output as `_fast`, or a TypeError naming where the value fails."""
    if depth > MAX_DEPTH:
        raise TypeError(f"{where}: nested deeper than {MAX_DEPTH}")
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        return _text(value, where)
    if isinstance(value, float):
        raise TypeError(f"{where}: a float has no canonical spelling here; give integers or text")
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canonical(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)) + "]"
    if isinstance(value, Mapping):
        keys = list(value.keys())
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(f"{where}: key {key!r} is not text")
        return (
            "{"
            + ",".join(
                f"{_text(k, where)}:{_canonical(value[k], f'{where}.{k}', depth + 1)}"
                for k in _sorted_keys(keys)
            )
            + "}"
        )
    raise TypeError(f"{where}: {type(value).__name__} is not a JSON value")


def _canonical_bytes(value: object, where: str) -> bytes:
    """The UTF-8 canonical JSON of `value`: quickly, and carefully (naming the fault) when it fails."""
    try:
        return _fast(value, 0).encode("utf-8")
    except (_NoForm, UnicodeEncodeError):
        return _canonical(value, where, 0).encode("utf-8")


# The C encoder behind json.dumps, for values already known to hold only text, integers, null, booleans
# and (for objects) ASCII keys: then its output is exactly the canonical one, several times faster.
_C_ENCODE: Final[Callable[[object], str]] = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
).encode
_SCALARS: Final = (str, int, type(None))


def _flat_scalars(items: Iterable[object]) -> bool:
    return all(type(item) in _SCALARS or type(item) is bool for item in items)


def _plain_detail(detail: Mapping[str, Any]) -> bool:
    """Whether the details are the usual flat kind (ASCII keys; text, integers, booleans, null, or lists
    of those), which the C encoder writes canonically."""
    for key, value in detail.items():
        if type(key) is not str or not key.isascii():
            return False
        kind = type(value)
        if kind in _SCALARS or kind is bool:
            continue
        if kind is list and _flat_scalars(value):
            continue
        return False
    return True


def canonical_json(value: object) -> str:
    """`value` as RFC 8785 (JCS) canonical JSON, for null, booleans, integers, text, lists and tuples, and
    mappings with text keys. Anything else (a float, bytes, a non-text key, a lone surrogate, nesting
    deeper than MAX_DEPTH) is a TypeError naming where it sits."""
    return _canonical_bytes(value, "value").decode("utf-8")


def normalise(value: object, where: str = "detail") -> Any:
    """`value` as the plain JSON value the audit trail stores, so what is hashed at the commit is what
    the database hands back: UUIDs as text, instants and dates in ISO 8601, Decimals as text, enums by
    value, tuples as lists, sets as lists in canonical order. A float or another type is a TypeError."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, enum.Enum):
        return normalise(value.value, where)
    if isinstance(value, str):
        _text(value, where)
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: key {key!r} is not text")
            out[key] = normalise(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [normalise(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [normalise(item, f"{where}[]") for item in value]
        return sorted(items, key=canonical_json)
    if isinstance(value, float):
        raise TypeError(f"{where}: a float has no canonical spelling here; give integers (fen) or text")
    raise TypeError(f"{where}: {type(value).__name__} is not a JSON value")


def detail_hash(detail: Mapping[str, Any]) -> str:
    """Lowercase hex SHA-256 of the UTF-8 canonical JSON of an event's details (TypeError as
    `canonical_json`)."""
    if not isinstance(detail, Mapping):
        raise TypeError("detail: not an object")
    if type(detail) is dict and _plain_detail(detail):
        try:
            return hashlib.sha256(_C_ENCODE(detail).encode("utf-8")).hexdigest()
        except UnicodeEncodeError:
            pass  # a lone surrogate: the careful encoder names it
    return hashlib.sha256(_canonical_bytes(detail, "detail")).hexdigest()


# ---------------------------------------------------------------- the chain


def micros(at: datetime) -> int:
    """Whole microseconds since 1970-01-01T00:00:00Z; a naive instant is a ValueError."""
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("an event's time must be an aware instant")
    return (at - _EPOCH) // _MICROSECOND


@dataclass(frozen=True)
class Event:
    """An audit event as the chain covers it: every column of its row, the details by their hash."""

    sequence: int
    previous_hash: str
    event_id: str
    at: datetime
    actor_user_id: str | None
    actor_organisation_id: str | None
    actor_roles: tuple[str, ...]
    action: str
    object_type: str
    object_id: str
    outcome: str
    detail_sha256: str


def _event_fields(event: Event) -> list[object]:
    return [
        EVENT_VERSION,
        event.sequence,
        event.previous_hash,
        event.event_id,
        micros(event.at),
        event.actor_user_id,
        event.actor_organisation_id,
        list(event.actor_roles),
        event.action,
        event.object_type,
        event.object_id,
        event.outcome,
        event.detail_sha256,
    ]


def event_text(event: Event) -> str:
    """The canonical text of one link: the JCS array described in the module docstring."""
    return canonical_json(_event_fields(event))


def _well_typed(event: Event) -> bool:
    texts = (
        event.previous_hash,
        event.event_id,
        event.action,
        event.object_type,
        event.object_id,
        event.outcome,
        event.detail_sha256,
    )
    return (
        type(event.sequence) is int
        and all(type(t) is str for t in texts)
        and all(a is None or type(a) is str for a in (event.actor_user_id, event.actor_organisation_id))
        and all(type(r) is str for r in event.actor_roles)
    )


def link_hash(event: Event) -> str:
    """Lowercase hex SHA-256 of the UTF-8 `event_text(event)`: the event's hash in the chain."""
    fields = _event_fields(event)
    if _well_typed(event):
        try:
            return hashlib.sha256(_C_ENCODE(fields).encode("utf-8")).hexdigest()
        except UnicodeEncodeError:
            pass  # a lone surrogate: the careful encoder names it
    return hashlib.sha256(_canonical_bytes(fields, "event")).hexdigest()


def chain(events: Iterable[Event]) -> str:
    """The hash the chain ends in after `events`, each linked to the one before whatever its stated
    previous hash (GENESIS for none)."""
    last = GENESIS
    for event in events:
        last = link_hash(_with_previous(event, last))
    return last


def _with_previous(event: Event, previous: str) -> Event:
    if event.previous_hash == previous:
        return event
    return Event(
        event.sequence,
        previous,
        event.event_id,
        event.at,
        event.actor_user_id,
        event.actor_organisation_id,
        event.actor_roles,
        event.action,
        event.object_type,
        event.object_id,
        event.outcome,
        event.detail_sha256,
    )


# ---------------------------------------------------------------- signed heads


def format_instant(at: datetime) -> str:
    """An instant as the heads write it: UTC, six decimals, "Z" (2026-03-02T01:00:00.000000Z)."""
    micros(at)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Head:
    """Head number `sequence`: the trail had `events` events, the last one hashing to `chain_hash`
    (GENESIS when empty), as stated at `signed_at`. ValueError for a head that cannot be signed."""

    sequence: int
    events: int
    chain_hash: str
    signed_at: datetime

    def __post_init__(self) -> None:
        if type(self.sequence) is not int or not 1 <= self.sequence <= MAX_SEQUENCE:
            raise ValueError(f"sequence: must be a whole number from 1 to {MAX_SEQUENCE}")
        if type(self.events) is not int or not 0 <= self.events <= MAX_SEQUENCE:
            raise ValueError(f"events: must be a whole number from 0 to {MAX_SEQUENCE}")
        if not isinstance(self.chain_hash, str) or not _HEX64.fullmatch(self.chain_hash):
            raise ValueError("chain_hash: must be 64 lowercase hexadecimal digits")
        if self.events == 0 and self.chain_hash != GENESIS:
            raise ValueError("chain_hash: of an empty trail is 64 zeros")
        if not isinstance(self.signed_at, datetime) or self.signed_at.utcoffset() is None:
            raise ValueError("signed_at: must be an aware instant")


@dataclass(frozen=True)
class SignedHead:
    """A head with the platform's Ed25519 signature over `signed_message(head)` and the key's id."""

    head: Head
    key_id: str
    signature: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, str) or not _KEY_ID.fullmatch(self.key_id):
            raise ValueError("key_id: must be 16 lowercase hexadecimal digits")
        if not isinstance(self.signature, bytes) or len(self.signature) != _SIGNATURE_SIZE:
            raise ValueError(f"signature: must be the base64 of {_SIGNATURE_SIZE} bytes")


def signed_message(head: Head) -> bytes:
    """The bytes a head's signature covers (see the module docstring)."""
    lines = (HEAD_VERSION, str(head.sequence), str(head.events), head.chain_hash, str(micros(head.signed_at)))
    return "".join(f"{line}\n" for line in lines).encode()


def sign_head(head: Head, private: Ed25519PrivateKey) -> SignedHead:
    """Sign a head with the platform's key."""
    public_raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return SignedHead(head, key_id(public_raw), private.sign(signed_message(head)))


def verify_head(signed: SignedHead, public_raw: bytes) -> bool:
    """Whether the head names this key's id and its signature verifies with this raw Ed25519 key."""
    if len(public_raw) != _PUBLIC_KEY_SIZE or signed.key_id != key_id(public_raw):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signed.signature, signed_message(signed.head))
    except (InvalidSignature, ValueError):
        return False
    return True


class PublishedAuditHead(TypedDict):
    """A signed head of the audit trail: the platform states that the trail had `events` events and that
    the last one's link hash is `chain_hash` (64 lowercase hex digits; 64 zeros when empty), as head number
    `sequence` (1, 2, 3, … without gaps), at `signed_at` (UTC, six decimals, "Z").

    `signature` is the base64 of the 64-byte Ed25519 signature, by the platform's log key
    (`GET /api/v1/transparency/key`; `key_id` is the first 16 hex digits of the SHA-256 of its raw 32-byte
    public key), over these UTF-8 lines, each ending in a line feed: `ggzy-audit-head-v1`, the sequence,
    the events, the chain hash, and the signing instant as whole microseconds since
    1970-01-01T00:00:00Z, all in decimal. `version` is always "ggzy-audit-head-v1"."""

    version: str
    sequence: int
    events: int
    chain_hash: str
    signed_at: str
    key_id: str
    signature: str


HEAD_FIELDS: Final = ("version", "sequence", "events", "chain_hash", "signed_at", "key_id", "signature")


def head_to_json(signed: SignedHead) -> PublishedAuditHead:
    """A signed head as published: the signed fields, the key's id and the base64 signature."""
    head = signed.head
    return {
        "version": HEAD_VERSION,
        "sequence": head.sequence,
        "events": head.events,
        "chain_hash": head.chain_hash,
        "signed_at": format_instant(head.signed_at),
        "key_id": signed.key_id,
        "signature": base64.b64encode(signed.signature).decode("ascii"),
    }


def head_from_json(obj: object, where: str = "") -> SignedHead:
    """Parse a head made by `head_to_json`, strictly: every field present with its type and format, no
    other field, this version. Raises ValueError whose message starts with the field at fault (prefixed
    by `where`, e.g. "head."). The signature is not checked here: see `verify_head`."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where.removesuffix('.') or 'head'}: must be a JSON object")
    for name in HEAD_FIELDS:
        if name not in obj:
            raise ValueError(f"{where}{name}: missing")
    extra = sorted(str(name) for name in obj if name not in HEAD_FIELDS)
    if extra:
        raise ValueError(f"{where}{extra[0]}: unknown field")
    if obj["version"] != HEAD_VERSION:
        raise ValueError(f"{where}version: must be {HEAD_VERSION!r} (this is not a head of the audit trail)")
    stamp = obj["signed_at"]
    if not isinstance(stamp, str) or not _INSTANT.fullmatch(stamp):
        raise ValueError(f"{where}signed_at: must read like 2026-03-02T01:00:00.000000Z")
    try:
        signed_at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{where}signed_at: not a calendar instant") from None
    signature = obj["signature"]
    try:
        raw = base64.b64decode(signature, validate=True) if isinstance(signature, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    try:
        return SignedHead(
            Head(obj["sequence"], obj["events"], obj["chain_hash"], signed_at), obj["key_id"], raw
        )
    except ValueError as exc:
        raise ValueError(f"{where}{exc}") from None


# ---------------------------------------------------------------- the checker


@dataclass(frozen=True)
class StoredEvent:
    """An event row as read back: the columns as stored, the details as a value, the stored hash.
    Nothing here is trusted; `Verifier` checks every field."""

    sequence: int
    event_id: str
    at: object
    actor_user_id: str | None
    actor_organisation_id: str | None
    actor_roles: object
    action: object
    object_type: object
    object_id: object
    outcome: object
    detail: object
    previous_hash: object
    hash: object


@dataclass(frozen=True)
class Offender:
    """One thing a check found wrong: the event (or head) at `sequence`, the event's id when there is
    one, and what is wrong with it."""

    sequence: int | None
    event_id: str | None
    detail: str

    def __str__(self) -> str:
        if self.event_id is not None:
            return f"event {self.sequence} ({self.event_id}): {self.detail}"
        return self.detail


@dataclass(frozen=True)
class Check:
    """One invariant's result: whether it holds, a sentence on what was covered or how much failed,
    the offenders named (at most the limit) and how many there are in all."""

    name: str
    ok: bool
    detail: str
    offenders: tuple[Offender, ...] = ()
    offenders_total: int = 0


SEQUENCE: Final = "sequence gapless from 1"
WELL_FORMED: Final = "events well formed"
HASHES: Final = "events hash to their stored hash"
LINKS: Final = "each event links to the one before"
CHAIN_ROW: Final = "the chain row names the last event"
HEADS: Final = "signed heads match the trail"
KEPT_SIGNED: Final = "the kept head is signed by the platform key"
KEPT_HELD: Final = "the trail still holds the kept head"
KEPT_EXTENDED: Final = "the trail extends the kept head"

CHECKS: Final = (SEQUENCE, WELL_FORMED, HASHES, LINKS, CHAIN_ROW, HEADS)
KEPT_CHECKS: Final = (KEPT_SIGNED, KEPT_HELD, KEPT_EXTENDED)


@dataclass
class _Found:
    limit: int
    named: list[Offender] = field(default_factory=list)
    total: int = 0

    def add(self, offender: Offender) -> None:
        self.total += 1
        if len(self.named) < self.limit:
            self.named.append(offender)


def _short(value: object) -> str:
    return f"{value[:16]}…" if isinstance(value, str) else repr(value)


def check_limit(limit: int) -> int:
    """`limit` if it lies within 1 to MAX_LIMIT, else ValueError."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"the limit must lie between 1 and {MAX_LIMIT}")
    return limit


def _recompute(event: StoredEvent) -> tuple[str | None, str | None]:
    """The event's link hash recomputed from its stored fields, or why it cannot be (the first malformed
    field)."""
    if isinstance(event.sequence, bool) or not isinstance(event.sequence, int) or event.sequence < 1:
        return None, f"sequence {event.sequence!r} is not a positive integer"
    if not isinstance(event.at, datetime) or event.at.utcoffset() is None:
        return None, "its time is not an aware instant"
    roles = event.actor_roles
    if not isinstance(roles, list | tuple) or not all(isinstance(r, str) for r in roles):
        return None, "its roles are not a list of text"
    for name in ("action", "object_type", "object_id", "outcome"):
        if not isinstance(getattr(event, name), str):
            return None, f"its {name} is not text"
    for name in ("previous_hash", "hash"):
        value = getattr(event, name)
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            return None, f"its {name} is not 64 lowercase hexadecimal characters"
    if not isinstance(event.detail, Mapping):
        return None, "its details are not an object"
    try:
        digest = detail_hash(event.detail)
        shaped = Event(
            event.sequence,
            str(event.previous_hash),
            event.event_id,
            event.at,
            event.actor_user_id,
            event.actor_organisation_id,
            tuple(roles),
            str(event.action),
            str(event.object_type),
            str(event.object_id),
            str(event.outcome),
            digest,
        )
        return link_hash(shaped), None
    except (TypeError, ValueError) as exc:
        return None, f"it has no canonical form ({exc})"


class Verifier:
    """The audit trail's checker, fed one event at a time in sequence order, so millions of events stream
    through it: it keeps the last sequence and hash, the stored hash at each sequence a head covers, and
    at most `limit` offenders per check (counting them all)."""

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        watch: Iterable[int] = (),
        start: tuple[int, str] = (0, GENESIS),
        kept_events: int | None = None,
    ) -> None:
        """`watch`: the event counts whose stored hash heads will be compared with; `start`: the sequence
        and hash the events fed extend (a segment after a signed head; the genesis by default);
        `kept_events`: the events a kept head covers, so the faults after it are also counted against
        "the trail extends the kept head"."""
        self._limit = check_limit(limit)
        self._found = {name: _Found(self._limit) for name in (*CHECKS, *KEPT_CHECKS)}
        self._watch = set(watch)
        self._kept_events = kept_events
        self.hash_at: dict[int, str] = {start[0]: start[1]}
        self.events = 0
        self.last_sequence, self.last_hash = start

    def _fail(self, check: str, sequence: int | None, event_id: str | None, detail: str) -> None:
        self._found[check].add(Offender(sequence, event_id, detail))

    def feed(self, event: StoredEvent) -> None:
        """Check one stored event against the one stored before it."""
        self.events += 1
        n, previous, event_id = event.sequence, self.last_sequence, event.event_id
        failed: list[str] = []
        if n == previous:
            self._fail(SEQUENCE, n, event_id, "a second event with this sequence number")
            failed.append(SEQUENCE)
        elif n < previous:
            self._fail(SEQUENCE, n, event_id, f"stored after event {previous}")
            failed.append(SEQUENCE)
        elif n > previous + 1:
            gap = (
                f"event {previous + 1} is missing"
                if n == previous + 2
                else (f"events {previous + 1} to {n - 1} are missing")
            )
            self._fail(SEQUENCE, previous + 1, None, gap)
            if self._kept_events is not None and n - 1 > self._kept_events:
                self._fail(KEPT_EXTENDED, previous + 1, None, f"after the kept head, {gap}")
        recomputed, why = _recompute(event)
        if recomputed is None:
            self._fail(WELL_FORMED, n, event_id, str(why))
            failed.append(WELL_FORMED)
        elif recomputed != event.hash:
            self._fail(HASHES, n, event_id, f"stored {_short(event.hash)}, recomputed {_short(recomputed)}")
            failed.append(HASHES)
        if event.previous_hash != self.last_hash:
            before = f"event {previous}" if previous else "the genesis"
            self._fail(
                LINKS,
                n,
                event_id,
                f"previous hash {_short(event.previous_hash)} but {before} before it ends "
                f"{_short(self.last_hash)}",
            )
            failed.append(LINKS)
        if failed and self._kept_events is not None and n > self._kept_events:
            self._fail(KEPT_EXTENDED, n, event_id, "fails " + ", ".join(f"“{name}”" for name in failed))
        stored = event.hash if isinstance(event.hash, str) else ""
        if n in self._watch:
            self.hash_at.setdefault(n, stored)
        self.last_sequence = max(n, previous)
        self.last_hash = stored

    def finish(
        self,
        chain_row: tuple[int, str] | None,
        heads: Sequence[SignedHead],
        public_raw: bytes,
        kept: SignedHead | None = None,
    ) -> list[Check]:
        """Every check in `CHECKS` order, then `KEPT_CHECKS` when `kept` is given: the chain row against
        the last event; the stored heads (in their order) numbered from 1 without gaps, never covering
        fewer events than the one before, signed by the platform key `public_raw` and matching the stored
        hash where they end; the kept head signed by that key, held and extended (build the Verifier with
        `kept_events` for the last)."""
        row_sequence, row_hash = chain_row if chain_row is not None else (0, GENESIS)
        if (row_sequence, row_hash) != (self.last_sequence, self.last_hash):
            self._fail(
                CHAIN_ROW,
                row_sequence,
                None,
                f"the chain row names event {row_sequence} ending {_short(row_hash)}; the events end at "
                f"{self.last_sequence} with {_short(self.last_hash)}",
            )
        number, covered = 0, 0
        for signed in heads:
            head = signed.head
            if head.sequence > number + 1:
                gap = (
                    f"head {number + 1} is missing"
                    if head.sequence == number + 2
                    else (f"heads {number + 1} to {head.sequence - 1} are missing")
                )
                self._fail(HEADS, number + 1, None, gap)
            if head.events < covered:
                self._fail(
                    HEADS,
                    head.sequence,
                    None,
                    f"head {head.sequence} covers {head.events} events, fewer than "
                    f"the {covered} of the head before it",
                )
            problem = self._signature_problem(signed, public_raw) or self._held_problem(head)
            if problem is not None:
                self._fail(HEADS, head.sequence, None, f"head {head.sequence}: {problem}")
            number, covered = head.sequence, max(covered, head.events)
        if kept is not None:
            self._judge_kept(kept, public_raw)
        return self._report(len(heads), kept)

    def _judge_kept(self, kept: SignedHead, public_raw: bytes) -> None:
        head = kept.head
        problem = self._signature_problem(kept, public_raw)
        if problem is not None:
            self._fail(KEPT_SIGNED, head.sequence, None, f"kept head {head.sequence}: {problem}")
        problem = self._held_problem(head)
        if problem is not None:
            self._fail(KEPT_HELD, head.sequence, None, f"kept head {head.sequence}: {problem}")
            if not self._found[KEPT_EXTENDED].total:
                self._fail(
                    KEPT_EXTENDED, head.sequence, None, "not checked: the trail does not hold the kept head"
                )

    @staticmethod
    def _signature_problem(signed: SignedHead, public_raw: bytes) -> str | None:
        if signed.key_id != key_id(public_raw):
            return f"signed by key id {signed.key_id}, not the platform key {key_id(public_raw)}"
        if not verify_head(signed, public_raw):
            return f"the signature does not verify with key id {signed.key_id}"
        return None

    def _held_problem(self, head: Head) -> str | None:
        if head.events > self.last_sequence:
            return f"the trail ends at event {self.last_sequence}; the head covers {head.events} events"
        stored = self.hash_at.get(head.events)
        if stored is None:
            return f"event {head.events} is missing"
        if stored != head.chain_hash:
            return f"event {head.events} ends {_short(stored)}, the head was signed over {_short(head.chain_hash)}"
        return None

    def _report(self, heads: int, kept: SignedHead | None) -> list[Check]:
        n = self.events
        signed = f"{heads} signed head{'' if heads == 1 else 's'}"
        covered = {
            SEQUENCE: f"{n} events, 1 to {self.last_sequence}",
            WELL_FORMED: f"{n} events",
            HASHES: f"{n} events",
            LINKS: f"{n} links, the trail ends {_short(self.last_hash)}",
            CHAIN_ROW: f"event {self.last_sequence}",
            HEADS: signed,
            KEPT_SIGNED: "",
            KEPT_HELD: "",
            KEPT_EXTENDED: "",
        }
        if kept is not None:
            head = kept.head
            covered[KEPT_SIGNED] = f"head {head.sequence}, key id {kept.key_id}"
            covered[KEPT_HELD] = f"event {head.events} ends {_short(head.chain_hash)}"
            covered[KEPT_EXTENDED] = f"{max(0, self.last_sequence - head.events)} events since"
        failed = {
            SEQUENCE: "{total} gaps or repeats",
            WELL_FORMED: f"{{total}} of {n} events",
            HASHES: f"{{total}} of {n} events",
            LINKS: f"{{total}} of {n} links",
            CHAIN_ROW: "the chain row does not name the last event",
            HEADS: f"{{total}} problems with {signed}",
            KEPT_SIGNED: "no",
            KEPT_HELD: "no",
            KEPT_EXTENDED: "{total} faults after the kept head",
        }
        names = (*CHECKS, *KEPT_CHECKS) if kept is not None else CHECKS
        checks = []
        for name in names:
            found = self._found[name]
            if not found.total:
                checks.append(Check(name, True, covered[name]))
                continue
            detail = failed[name].format(total=found.total)
            if found.total > self._limit:
                detail += f"; the first {self._limit} are named"
            checks.append(Check(name, False, detail, tuple(found.named), found.total))
        return checks


def all_ok(checks: Sequence[Check]) -> bool:
    """Whether every check passed; an empty list proves nothing and is not ok."""
    return bool(checks) and all(check.ok for check in checks)
