"""A bid receipt (回执) and what it proves, checked offline: every field it states against its signed leaf,
the log key against a pinned key, and the leaf against the tender's published closing record (截标记录).

Two kinds of receipt exist. Version 1 (until this module existed): the leaf of a bid event in the
platform-wide log `PUBLIC_LOG_ID`, whose head grew with every submission and so told anyone how many bids
arrived and when (W-20). Version 2: the leaf of a bid event in the bidder's own log of the tender, id
`<tender log id>/<random token>`, whose signed head counts only that bidder's own events; at the deadline
the platform signs the tender's closing head over every event of the tender (all bidders, in arrival
order, version 1 leaves of the tender first), publishes the closing tree's leaf hashes, and appends the
closing head as one leaf to the public log. So before the deadline nothing public moves, and a receipt
tells its bidder nothing about anyone else; after it, any receipt is checked against the closing record
alone, and a leaf the platform acknowledged but left out is shown missing by the published leaves.

`verify` reads both versions and both kinds of closing record (version 1 records need the consistency
proof from the receipt's head to the closing head of the public log). Every check says exactly what it
compared; what the receipt states but nothing signed covers is reported `skipped`, never as passed.

Pure logic: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bidding import logtree, merkle
from bidding.merkle import Check

# The platform-wide log keeps the id it had when it logged every bid event (receipt version 1), so its
# history stays one append-only tree: since version 2 it grows by one closing head per tender.
PUBLIC_LOG_ID: Final = "ggzy/bids/v1"
TENDER_LOG_PREFIX: Final = "ggzy/bids/v2/"
EVENTS: Final = ("submit", "replace", "withdraw")
# The receipt's own fields (the API's schemas.Receipt) and the leaf field each must equal.
STATED: Final = (
    ("bid_id", "bid"),
    ("tender_code", "tender"),
    ("lot_number", "lot"),
    ("bidder_credit_code", "bidder"),
    ("envelope_sha256", "envelope_sha256"),
    ("size", "size"),
    ("submitted_at", "submitted_at"),
    ("sequence", "sequence"),
    ("event", "event"),
)
# Stated only by a bid of two envelopes (双信封): its technical envelope, which the leaf covers too.
STATED_IF_TWO: Final = (("technical_sha256", "technical_sha256"), ("technical_size", "technical_size"))
_INTEGERS: Final = frozenset({"lot_number", "size", "sequence", "technical_size"})
_INSTANTS: Final = frozenset({"submitted_at"})
_V1_CLOSING_FIELDS: Final = ("tender", "head", "envelopes", "envelopes_signature", "log_public_key")
_V2_CLOSING_FIELDS: Final = (*_V1_CLOSING_FIELDS, "version", "leaves", "log_entry")
_PUBLIC_KEY_SIZE: Final = 32
_SIGNATURE_SIZE: Final = 64


def tender_log_id(tender_code: str) -> str:
    """The id of a tender's closing log; each bidder's own log of the tender is `<this>/<token>`."""
    return TENDER_LOG_PREFIX + tender_code


def closing_entry(tender_code: str, head: Mapping[str, Any]) -> dict[str, Any]:
    """The leaf the platform-wide log gets for a tender's closing head (`head`: `merkle.head_to_json`);
    the log adds its own "log" and "index"."""
    return {"event": "closing", "tender": tender_code, "head": dict(head)}


def fingerprint(public_raw: bytes) -> str:
    """A key's fingerprint: SHA-256 of the raw Ed25519 public key, in hex (its first 16 digits are the
    key id every head names)."""
    return hashlib.sha256(public_raw).hexdigest()


@dataclass(frozen=True)
class KeyPin:
    """The platform key a receipt must be signed with, and where the verifier got it (said in its report:
    "given with --key", "fetched from https://…", "of the closing record")."""

    key: bytes
    source: str

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes) or len(self.key) != _PUBLIC_KEY_SIZE:
            raise ValueError(f"a pinned key is a raw Ed25519 public key of {_PUBLIC_KEY_SIZE} bytes")


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Parsed:
    stated: Mapping[str, Any] | None  # the receipt's own fields; None when only its log part is given
    log: merkle.Receipt
    raw_log: Mapping[str, Any]


@dataclass(frozen=True)
class ClosingRecord:
    """A tender's published closing record, parsed (see `parse_closing`)."""

    version: int
    tender: str
    head: merkle.SignedTreeHead
    head_json: Mapping[str, Any]
    leaves: tuple[bytes, ...]
    envelopes: tuple[str, ...]
    envelopes_signature: bytes
    log_public_key: bytes
    log_entry: Mapping[str, Any] | None
    unchecked: tuple[str, ...]


def _b64(value: Any, label: str, size: int) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{label}: must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError(f"{label}: not valid base64") from None
    if len(raw) != size:
        raise ValueError(f"{label}: must decode to {size} bytes, got {len(raw)}")
    return raw


def _parse_receipt(obj: Any) -> _Parsed:
    if not isinstance(obj, Mapping):
        raise ValueError("receipt: must be a JSON object")
    if "log" not in obj:
        # The log part alone: what it proves is its leaf, and there are no other fields to compare.
        return _Parsed(None, merkle.receipt_from_json(obj), obj)
    names = {name for name, _leaf in (*STATED, *STATED_IF_TWO)} | {"log"}
    missing = [name for name, _leaf in STATED if name not in obj]
    if missing:
        raise ValueError(f"{missing[0]}: missing")
    extra = sorted(str(name) for name in obj if name not in names)
    if extra:
        raise ValueError(f"{extra[0]}: unknown field, which nothing signed could vouch for")
    log = obj["log"]
    try:
        parsed = merkle.receipt_from_json(log)
    except ValueError as exc:
        raise ValueError(f"log.{exc}") from None
    return _Parsed(obj, parsed, log)


def parse_closing(obj: Any) -> ClosingRecord:
    """Parse a closing record as `GET /tenders/{id}/closing` and the 截标 notice publish it: version 2
    (with "version", the closing tree's "leaves" and its "log_entry" in the public log) or version 1 (the
    public log's head at the deadline). Fields this verifier does not use are listed in `unchecked`,
    never read. Raises ValueError naming the field at fault."""
    if not isinstance(obj, Mapping):
        raise ValueError("closing: must be a JSON object")
    version = obj.get("version", 1)
    if isinstance(version, bool) or version not in (1, 2):
        raise ValueError("closing.version: must be 2 (or absent, for a version 1 record)")
    fields = _V2_CLOSING_FIELDS if version == 2 else _V1_CLOSING_FIELDS
    missing = [name for name in fields if name not in obj]
    if missing:
        raise ValueError(f"closing.{missing[0]}: missing")
    tender = obj["tender"]
    if not isinstance(tender, str) or not tender:
        raise ValueError("closing.tender: must be a tender code")
    try:
        head = merkle.head_from_json(obj["head"])
    except ValueError as exc:
        raise ValueError(f"closing.head.{exc}") from None
    envelopes = obj["envelopes"]
    if not isinstance(envelopes, list) or not all(isinstance(e, str) for e in envelopes):
        raise ValueError("closing.envelopes: must be a list of SHA-256 hex strings")
    leaves: tuple[bytes, ...] = ()
    log_entry = None
    if version == 2:
        raw_leaves = obj["leaves"]
        if not isinstance(raw_leaves, list):
            raise ValueError("closing.leaves: must be a list of base64 hashes")
        leaves = tuple(
            _b64(item, f"closing.leaves[{i}]", merkle.HASH_SIZE) for i, item in enumerate(raw_leaves)
        )
        log_entry = obj["log_entry"]
        if not isinstance(log_entry, Mapping):
            raise ValueError("closing.log_entry: must be a JSON object")
    return ClosingRecord(
        version=version,
        tender=tender,
        head=head,
        head_json=obj["head"],
        leaves=leaves,
        envelopes=tuple(envelopes),
        envelopes_signature=_b64(obj["envelopes_signature"], "closing.envelopes_signature", _SIGNATURE_SIZE),
        log_public_key=_b64(obj["log_public_key"], "closing.log_public_key", _PUBLIC_KEY_SIZE),
        log_entry=log_entry,
        unchecked=tuple(sorted(str(name) for name in obj if name not in fields)),
    )


# ---------------------------------------------------------------- the receipt itself


def _describe(pin: KeyPin) -> str:
    return f"{pin.source} (key id {merkle.key_id(pin.key)})"


def _key_pinned(log: merkle.Receipt, pin: KeyPin | None) -> Check:
    found = merkle.key_id(log.log_public_key)
    if pin is None:
        return Check(
            "key_pinned",
            False,
            f"no key pinned: the receipt's own key (key id {found}) proves nothing, anyone can sign a "
            "receipt with a key of their own; pin the platform's key with --key, --fetch-key or "
            "--closing (the published closing record)",
        )
    if log.log_public_key == pin.key:
        return Check("key_pinned", True, f"the receipt's log key is the key {_describe(pin)}")
    return Check("key_pinned", False, f"the receipt's log key id {found} is not the key {_describe(pin)}")


def _log_check(log: merkle.Receipt) -> Check:
    leaf, head_log = log.leaf, log.tree_head.head.log_id
    if leaf.get("log") != head_log:
        return Check("log", False, f"the leaf names log {leaf.get('log')!r}, its head is of log {head_log!r}")
    if leaf.get("v") != log.version:
        return Check("log", False, f"a version {log.version} receipt, but its leaf says v {leaf.get('v')!r}")
    tender = leaf.get("tender")
    if log.version == 1:
        if head_log != PUBLIC_LOG_ID:
            return Check("log", False, f"a version 1 receipt is of log {PUBLIC_LOG_ID}, not {head_log!r}")
        return Check("log", True, f"the leaf is in the platform-wide log {PUBLIC_LOG_ID} (version 1)")
    if not isinstance(tender, str) or not head_log.startswith(tender_log_id(tender) + "/"):
        return Check("log", False, f"log {head_log!r} is not a bidder's log of tender {tender!r}")
    return Check("log", True, f"the leaf is in the bidder's own log {head_log} of tender {tender}")


def _leaf_value(log: merkle.Receipt, field: str, leaf_field: str) -> tuple[bool, Any]:
    """(whether the signed leaf states it, the value it states)."""
    leaf = log.leaf
    if log.version == 1 and field == "submitted_at":
        # A version 1 leaf stated only the instant of its own event: the arrival for a submission or a
        # replacement, the withdrawal's instant for a withdrawal.
        if leaf.get("event") in ("submit", "replace"):
            return "at" in leaf, leaf.get("at")
        return False, None
    return leaf_field in leaf, leaf.get(leaf_field)


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None


def _same(field: str, stated: Any, signed: Any) -> bool:
    if field in _INSTANTS:
        left, right = _instant(stated), _instant(signed)
        return left is not None and left == right
    if field in _INTEGERS:
        return (
            all(isinstance(v, int) and not isinstance(v, bool) for v in (stated, signed)) and stated == signed
        )
    return isinstance(stated, str) and isinstance(signed, str) and stated == signed


def _field_checks(parsed: _Parsed) -> list[Check]:
    if parsed.stated is None:
        return []
    checks = []
    optional = tuple(item for item in STATED_IF_TWO if item[0] in parsed.stated)
    for field, leaf_field in (*STATED, *optional):
        stated = parsed.stated[field]
        present, signed = _leaf_value(parsed.log, field, leaf_field)
        if not present:
            legacy = parsed.log.version == 1
            leaf = f"a version 1 {parsed.log.leaf.get('event')} leaf" if legacy else "the signed leaf"
            checks.append(
                Check(
                    field,
                    False,
                    f"the receipt says {stated!r}; {leaf} does not state it, so nothing signed vouches for it",
                    # Only a version 1 receipt may lack one: the platform never issued such a version 2 leaf.
                    skipped=legacy,
                )
            )
        elif _same(field, stated, signed):
            checks.append(Check(field, True, f"{signed!r}, as the signed leaf states"))
        else:
            checks.append(Check(field, False, f"the receipt says {stated!r}, the signed leaf {signed!r}"))
    return checks


def _receipt_checks(parsed: _Parsed, pin: KeyPin | None) -> list[Check]:
    # merkle's own checks (format, key_pinned, head_signature, leaf_index, inclusion), less its format
    # (parsed already) and with the key check saying where the pinned key came from.
    logged = merkle.verify_receipt(parsed.raw_log, trusted_key=pin.key if pin else None)[1:]
    logged[0] = _key_pinned(parsed.log, pin)
    signature = logged[1]
    if pin is None and signature.ok:
        logged[1] = Check(
            signature.name,
            True,
            f"the tree head verifies with the receipt's own key id {merkle.key_id(parsed.log.log_public_key)} "
            "(not pinned: this shows only that the receipt is consistent with itself)",
        )
    return [*logged, _log_check(parsed.log), *_field_checks(parsed)]


# ---------------------------------------------------------------- against the closing record


def _check(name: str, ok: bool, passed: str, failed: str) -> Check:
    return Check(name, ok, passed if ok else failed)


def _signed_by(name: str, sth: merkle.SignedTreeHead, pin: KeyPin, what: str) -> Check:
    if merkle.verify_head(sth, pin.key):
        return Check(name, True, f"{what} is signed by the key {_describe(pin)}")
    return Check(name, False, f"{what} (key id {sth.key_id}) does not verify with the key {_describe(pin)}")


def _set_signature(record: ClosingRecord, pin: KeyPin) -> Check:
    message = logtree.closing_message(
        record.tender, record.head.head.tree_size, str(record.head_json["root_hash"]), record.envelopes
    )
    try:
        Ed25519PublicKey.from_public_bytes(pin.key).verify(record.envelopes_signature, message)
    except InvalidSignature:
        return Check(
            "closing_set_signature",
            False,
            f"the closing set of {len(record.envelopes)} envelopes is not signed by the key {_describe(pin)}",
        )
    return Check(
        "closing_set_signature",
        True,
        f"the {len(record.envelopes)} envelopes that stood at the deadline are signed by the key "
        f"{_describe(pin)}",
    )


def _envelope_listed(log: merkle.Receipt, record: ClosingRecord) -> list[Check]:
    leaf = log.leaf
    if leaf.get("event") not in ("submit", "replace"):
        return []
    sha = leaf.get("envelope_sha256")
    listed = sha in record.envelopes
    return [
        _check(
            "closing_envelope",
            listed,
            f"envelope {str(sha)[:16]}… is among the {len(record.envelopes)} envelopes that stood at the "
            "deadline",
            f"envelope {str(sha)[:16]}… is NOT among the {len(record.envelopes)} envelopes that stood at the "
            "deadline (it may have been replaced or withdrawn later)",
        )
    ]


def _closing_logged(record: ClosingRecord, pin: KeyPin) -> Check:
    assert record.log_entry is not None
    checks = merkle.verify_receipt(record.log_entry, trusted_key=pin.key)
    failed = [c for c in checks if not c.ok]
    if failed:
        return Check(
            "closing_logged",
            False,
            f"the closing head's entry in the public log fails {failed[0].name}: {failed[0].detail}",
        )
    entry = merkle.receipt_from_json(record.log_entry)
    expected = closing_entry(record.tender, record.head_json) | {
        "log": PUBLIC_LOG_ID,
        "index": entry.leaf_index,
    }
    head = entry.tree_head.head
    if head.log_id != PUBLIC_LOG_ID or dict(entry.leaf) != expected:
        return Check(
            "closing_logged",
            False,
            f"the public log's leaf {entry.leaf_index} is not this closing head of tender {record.tender}",
        )
    return Check(
        "closing_logged",
        True,
        f"the closing head is leaf {entry.leaf_index} of the platform's public log {PUBLIC_LOG_ID}, under "
        f"its head of {head.tree_size} leaves signed at {merkle.head_to_json(entry.tree_head)['timestamp']}",
    )


def _v2_closing_checks(parsed: _Parsed, record: ClosingRecord, pin: KeyPin) -> list[Check]:
    log, head = parsed.log, record.head.head
    tender = log.leaf.get("tender")
    hashed = merkle.leaf_hash(merkle.leaf_bytes(log.leaf))
    leaves_ok = len(record.leaves) == head.tree_size and merkle.root(record.leaves) == head.root_hash
    position = record.leaves.index(hashed) if hashed in record.leaves else None
    if not leaves_ok:
        inclusion = Check(
            "closing_inclusion", False, "not checked: the published leaves are not the signed closing tree"
        )
    elif position is None:
        inclusion = Check(
            "closing_inclusion",
            False,
            f"the closing head commits to {head.tree_size} leaves and this receipt's leaf is NOT among "
            "them: the platform signed this leaf before the deadline and left it out of the closing; "
            "keep this receipt and the closing record, together they prove the omission",
        )
    else:
        inclusion = Check(
            "closing_inclusion",
            True,
            f"the receipt's leaf is leaf {position} of the {head.tree_size} the closing head commits to",
        )
    return [
        _signed_by("closing_signature", record.head, pin, "the closing head"),
        _check(
            "closing_tender",
            record.tender == tender and head.log_id == tender_log_id(record.tender),
            f"the closing head is of tender {tender} (log {head.log_id})",
            f"the closing record is of tender {record.tender!r} (log {head.log_id!r}), the receipt of "
            f"tender {tender!r}",
        ),
        _check(
            "closing_kind",
            head.kind == "closing",
            "the closing head is marked closing",
            f"the closing head is marked {head.kind!r}, not 'closing'",
        ),
        _check(
            "closing_leaves",
            leaves_ok,
            f"the {len(record.leaves)} published leaves make the signed root {head.root_hash.hex()[:16]}…",
            f"the {len(record.leaves)} published leaves do not make the signed tree of {head.tree_size} "
            f"leaves with root {head.root_hash.hex()[:16]}…",
        ),
        inclusion,
        _closing_logged(record, pin),
        _set_signature(record, pin),
        *_envelope_listed(log, record),
    ]


def _v1_closing_checks(
    parsed: _Parsed, record: ClosingRecord, pin: KeyPin, consistency: Any | None
) -> list[Check]:
    head, last = parsed.log.tree_head.head, record.head.head
    checks = merkle.verify_receipt(
        parsed.raw_log, trusted_key=pin.key, closing_head=record.head_json, consistency=consistency or []
    )[len(merkle.RECEIPT_CHECKS) :]
    if consistency is None:
        checks[-1] = Check(
            "consistency",
            False,
            "a version 1 closing record needs the consistency proof from the receipt's head to it: "
            f"GET /api/v1/transparency/consistency?first={head.tree_size}&second={last.tree_size}",
        )
    tender = parsed.log.leaf.get("tender")
    same = _check(
        "closing_tender",
        record.tender == tender,
        f"the closing record is of tender {tender}",
        f"the closing record is of tender {record.tender!r}, the receipt of tender {tender!r}",
    )
    return [*checks, same, _set_signature(record, pin), *_envelope_listed(parsed.log, record)]


# ---------------------------------------------------------------- verify


def _check_proof(proof: Any) -> None:
    """Raise ValueError unless `proof` is a list of base64 SHA-256 hashes."""
    if not isinstance(proof, list | tuple):
        raise ValueError("consistency: must be a list of base64 hashes")
    for i, item in enumerate(proof):
        _b64(item, f"consistency[{i}]", merkle.HASH_SIZE)


def verify(
    receipt: Any,
    *,
    pin: KeyPin | None = None,
    closing: Any | None = None,
    consistency: Any | None = None,
) -> list[Check]:
    """Check a receipt offline and return every check made, in order:

    format; key_pinned (the receipt's key is `pin`, or, without one, the key of the closing record:
    a published document pins the key that signed it; with neither it fails); head_signature, leaf_index
    and inclusion (`merkle.verify_receipt`); log (the leaf is in the log its head signs: the platform's
    for version 1, the bidder's own log of the leaf's tender for version 2); then, for the API's receipt
    (the log part alone states nothing else), one check per field it states (`STATED`) against the leaf.
    With `closing`: for a version 2 record closing_signature, closing_tender, closing_kind, closing_leaves
    (the published leaves make the signed root), closing_inclusion (the receipt's leaf is one of them:
    an omission shows here), closing_logged (the closing head is a leaf of the public log);
    for a version 1 record merkle's closing checks with `consistency` and closing_tender; then
    closing_set_signature and, for a submission, closing_envelope (its envelope stood at the deadline).

    Never raises on bad input: what does not parse fails "format" and nothing else is checked."""
    try:
        parsed = _parse_receipt(receipt)
        record = parse_closing(closing) if closing is not None else None
        if consistency is not None:
            _check_proof(consistency)
        if record is not None and record.version == 1 and parsed.log.version != 1:
            raise ValueError(
                f"closing.version: a version {parsed.log.version} receipt is checked against a version 2 "
                "closing record"
            )
        if pin is None and record is not None:
            pin = KeyPin(record.log_public_key, "of the closing record, which pins the key that signed it")
    except (ValueError, TypeError, RecursionError) as exc:
        return [Check("format", False, str(exc))]
    what = f"a version {parsed.log.version} receipt of a {parsed.log.leaf.get('event')!r} event"
    if record is not None:
        what += f"; a version {record.version} closing record of tender {record.tender}"
        if record.unchecked:
            what += (
                f" (its fields {', '.join(record.unchecked)} are not about this receipt: not checked here)"
            )
    checks = [Check("format", True, what), *_receipt_checks(parsed, pin)]
    if record is not None and pin is not None:
        if record.version == 2:
            checks.extend(_v2_closing_checks(parsed, record, pin))
        else:
            checks.extend(_v1_closing_checks(parsed, record, pin, consistency))
    return checks


def passed(checks: Sequence[Check]) -> bool:
    """Whether the receipt verified: no check failed and at least one passed (`merkle.all_ok`)."""
    return merkle.all_ok(checks)


def report(checks: Sequence[Check], mark: Callable[[Check], str] | None = None) -> list[str]:
    """One line per check: "ok", "FAIL" or "skip", its name and what it compared."""

    def plain(check: Check) -> str:
        return "ok  " if check.ok else "skip" if check.skipped else "FAIL"

    label = mark or plain
    return [f"{label(check)} {check.name}: {check.detail}" for check in checks]
