"""Transparency logs of bid events: RFC 9162 Merkle trees, signed tree heads and offline log receipts.

Every log is an append-only Merkle tree hashed as RFC 9162 §2.1 defines it (SHA-256, 0x00 before a leaf,
0x01 before an interior node): each bidder's own log of a tender, the tender's closing tree over all of
them, and the platform-wide log of closing heads (bidding.receipt says which is which). A log receipt
(回执) carries its leaf, the leaf's inclusion proof, an Ed25519-signed tree head and the log's key;
`verify_receipt` checks it offline against a pinned key (without one it fails: a receipt's own key
proves nothing) and, for a head of the platform-wide log, that a closing head extends it, by a
consistency proof. `bidding.receipt` checks a bid receipt's every field and its closing record on top.

Leaves are canonical JSON objects (`leaf_bytes`); this module hashes them and does not interpret their
fields, except `index`, which a receipt must agree with. Pure logic: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypedDict

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from storage.signing import key_id as key_id

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()  # MTH({}) = HASH() (RFC 9162 §2.1.1)
HEAD_KINDS: Final = ("head", "closing")
# 1: a leaf of the platform-wide log (bid events until version 2, closing heads since);
# 2: a leaf of one bidder's own log of one tender (bidding.receipt).
RECEIPT_VERSIONS: Final = (1, 2)

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"
_MESSAGE_DOMAIN: Final = b"ggzy-tree-head-v1\n"
_SIGNATURE_SIZE: Final = 64
_PUBLIC_KEY_SIZE: Final = 32
_KEY_ID_RE: Final = re.compile(r"[0-9a-f]{16}")
_TIMESTAMP_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")


# ---------------------------------------------------------------- hashing (RFC 9162 §2.1.1)


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def leaf_bytes(entry: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a log entry: JSON with sorted keys, no spaces, UTF-8 (not \\u-escaped).

    Raises TypeError or ValueError for what JSON cannot carry canonically (non-string keys, NaN)."""
    text = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def _parent_level(level: Sequence[bytes]) -> list[bytes]:
    # Pairing neighbours and promoting a lone last node builds exactly RFC 9162's tree, whose left
    # subtree always holds the largest power of two below n: the unpaired node on each level is the
    # root of the right-most (smaller) subtree, which only joins higher up.
    parents = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        parents.append(level[-1])
    return parents


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash MTH of the leaves (RFC 9162 §2.1.1); SHA-256 of nothing for an empty tree.

    Level by level, n − 1 node hashes in all: ten thousand leaves take a few milliseconds."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level: Sequence[bytes] = leaf_hashes
    while len(level) > 1:
        level = _parent_level(level)
    return level[0]


def _split(n: int) -> int:
    """The largest power of two strictly below n (n ≥ 2): the size of the left subtree."""
    return 1 << ((n - 1).bit_length() - 1)


# ---------------------------------------------------------------- inclusion (RFC 9162 §2.1.3)


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D_n) (RFC 9162 §2.1.3.1): the sibling hashes from the leaf up to the root.

    Raises ValueError when the index is not a leaf of the tree."""
    if not 0 <= index < len(leaf_hashes):
        raise ValueError(f"leaf index {index} is not in a tree of {len(leaf_hashes)} leaves")
    proof: list[bytes] = []
    level: Sequence[bytes] = leaf_hashes
    position = index
    while len(level) > 1:
        sibling = position ^ 1
        # A node without a sibling on its level is promoted unchanged, so that level adds nothing.
        if sibling < len(level):
            proof.append(level[sibling])
        level = _parent_level(level)
        position >>= 1
    return proof


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """Whether `proof` shows the leaf `leaf_hash` at `index` in the tree of `tree_size` leaves whose root
    is `root_hash`: the algorithm of RFC 9162 §2.1.3.2, step by step.

    Fails for index ≥ size, for proofs longer or shorter than the leaf's path, and for hashes that are not
    32 bytes long (which the RFC leaves implicit)."""
    if not 0 <= index < tree_size:
        return False
    # No path in a tree of n leaves is longer than ceil(log2 n): refusing longer ones up front bounds the
    # work an attacker can ask for; the loop below would refuse them too (step 4a).
    if len(proof) > (tree_size - 1).bit_length():
        return False
    if len(leaf_hash) != HASH_SIZE or len(root_hash) != HASH_SIZE:
        return False
    if any(len(p) != HASH_SIZE for p in proof):
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


# ---------------------------------------------------------------- consistency (RFC 9162 §2.1.4)


def consistency_proof(m: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D_n) (RFC 9162 §2.1.4.1): that the first m leaves are a prefix of all n.

    Empty for m == n (SUBPROOF(m, D_m, true) = {}) and for m == 0 (nothing to prove: the empty tree is a
    prefix of every tree). Raises ValueError unless 0 ≤ m ≤ n."""
    n = len(leaf_hashes)
    if not 0 <= m <= n:
        raise ValueError(f"tree sizes must satisfy 0 ≤ m ≤ n, got m = {m} and n = {n}")
    if m in (0, n):
        return []
    # SUBPROOF unrolled from the top: each step keeps the subtree D[lo:hi] that still holds the edge of
    # the old tree and records the root of the other half. `known` stays true while the old tree is the
    # left edge of the current subtree, i.e. while the verifier already holds its root.
    outer: list[bytes] = []
    lo, hi, known = 0, n, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            outer.append(root(leaf_hashes[lo + k : hi]))
            hi = lo + k
        else:
            outer.append(root(leaf_hashes[lo : lo + k]))
            lo, m, known = lo + k, m - k, False
    if not known:
        outer.append(root(leaf_hashes[lo:hi]))
    # SUBPROOF lists the innermost subproof first and the top-level sibling last.
    outer.reverse()
    return outer


def verify_consistency(m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]) -> bool:
    """Whether `proof` shows the tree of m leaves with root `root_m` is a prefix of the tree of n leaves
    with root `root_n`: RFC 9162 §2.1.4.2 for 0 < m < n.

    The RFC's algorithm covers 0 < m < n; the edges follow from its definitions. m == n: the proof must be
    empty (SUBPROOF(m, D_m, true) = {}) and the roots equal. m == 0: the proof must be empty and `root_m`
    must be the empty tree's hash HASH() (§2.1.1), since an empty tree is a prefix of every tree. m > n,
    negative sizes, hashes that are not 32 bytes and proofs longer than ceil(log2 n) + 1 fail."""
    if not 0 <= m <= n:
        return False
    if len(root_m) != HASH_SIZE or len(root_n) != HASH_SIZE or any(len(c) != HASH_SIZE for c in proof):
        return False
    if m == n:
        return not proof and root_m == root_n and (n > 0 or root_m == EMPTY_ROOT)
    if m == 0:
        return not proof and root_m == EMPTY_ROOT
    # Step 1, plus the RFC's bound on a proof's length (§2.1.4.1) so a padded proof costs nothing.
    if not proof or len(proof) > (n - 1).bit_length() + 1:
        return False
    path = list(proof)
    if m & (m - 1) == 0:
        path.insert(0, root_m)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root_m and sr == root_n


# ---------------------------------------------------------------- signed tree heads


def _format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


def _to_milliseconds(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class TreeHead:
    """The state of a log at `tree_size` leaves: its root hash, when it was made, and whether it is an
    ordinary head or a tender's closing head (截标时的树头), signed at the bid deadline.

    The timestamp is kept in UTC to the millisecond, exactly as it is signed; a naive datetime is refused.
    Raises ValueError for a head that could not be signed unambiguously."""

    log_id: str
    tree_size: int
    root_hash: bytes
    timestamp: datetime
    kind: str = "head"

    def __post_init__(self) -> None:
        if not isinstance(self.log_id, str) or not self.log_id or _CONTROL_RE.search(self.log_id):
            # A newline in the id would let two different heads sign as the same message.
            raise ValueError("log_id must be a non-empty string without control characters")
        if isinstance(self.tree_size, bool) or not isinstance(self.tree_size, int) or self.tree_size < 0:
            raise ValueError("tree_size must be an integer ≥ 0")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"root_hash must be {HASH_SIZE} bytes")
        if not isinstance(self.timestamp, datetime) or self.timestamp.utcoffset() is None:
            raise ValueError("timestamp must be a timezone-aware datetime")
        if self.kind not in HEAD_KINDS:
            raise ValueError(f"kind must be one of {', '.join(HEAD_KINDS)}, not {self.kind!r}")
        # Frozen: normalise in place once, so the head always equals what its signature covers.
        object.__setattr__(self, "timestamp", _to_milliseconds(self.timestamp))


@dataclass(frozen=True)
class SignedTreeHead:
    """A tree head with the log's Ed25519 signature over `signed_message(head)` and the signing key's id."""

    head: TreeHead
    key_id: str
    signature: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, str) or not _KEY_ID_RE.fullmatch(self.key_id):
            raise ValueError("key_id must be 16 lowercase hexadecimal characters")
        if not isinstance(self.signature, bytes) or len(self.signature) != _SIGNATURE_SIZE:
            raise ValueError(f"signature must be {_SIGNATURE_SIZE} bytes")


def signed_message(head: TreeHead) -> bytes:
    """The bytes a tree head's signature covers, one field a line:

    ggzy-tree-head-v1, log id, tree size, root hash (hex), timestamp (UTC, milliseconds, "Z"), kind."""
    lines = (
        head.log_id,
        str(head.tree_size),
        head.root_hash.hex(),
        _format_timestamp(head.timestamp),
        head.kind,
    )
    return _MESSAGE_DOMAIN + "".join(f"{line}\n" for line in lines).encode("utf-8")


def sign_head(head: TreeHead, private: Ed25519PrivateKey) -> SignedTreeHead:
    """Sign a tree head with the log's Ed25519 key."""
    public_raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return SignedTreeHead(head, key_id(public_raw), private.sign(signed_message(head)))


def verify_head(sth: SignedTreeHead, public_raw: bytes) -> bool:
    """Whether the head names this key's id and its signature verifies with this raw Ed25519 public key."""
    if len(public_raw) != _PUBLIC_KEY_SIZE or sth.key_id != key_id(public_raw):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(sth.signature, signed_message(sth.head))
    except (InvalidSignature, ValueError):
        return False
    return True


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class PublishedTreeHead(TypedDict):
    """A signed tree head (STH) of a transparency log: the log `log_id` had `tree_size` leaves and their
    RFC 9162 Merkle tree hash (SHA-256) was `root_hash` (the base64 of its 32 bytes) at `timestamp` (UTC,
    ISO 8601 with milliseconds and "Z"); `kind` is "head" for an ordinary head and "closing" for a tender's
    closing head (截标时的树头), signed at its bid deadline.

    `signature` is the base64 of the 64-byte Ed25519 signature, by the platform's log key
    (`GET /api/v1/transparency/key`; `key_id` is the first 16 hex digits of the SHA-256 of its raw 32-byte
    public key), over these UTF-8 lines, each ending in a line feed: `ggzy-tree-head-v1`, the log id, the
    tree size in decimal, the root hash in lowercase hex (not base64), the timestamp exactly as written
    here, and the kind."""

    log_id: str
    tree_size: int
    root_hash: str
    timestamp: str
    kind: str
    key_id: str
    signature: str


def head_to_json(sth: SignedTreeHead) -> PublishedTreeHead:
    """A signed tree head as JSON: root hash and signature in base64, timestamp as ISO 8601 in UTC ("Z")."""
    head = sth.head
    return {
        "log_id": head.log_id,
        "tree_size": head.tree_size,
        "root_hash": _b64(head.root_hash),
        "timestamp": _format_timestamp(head.timestamp),
        "kind": head.kind,
        "key_id": sth.key_id,
        "signature": _b64(sth.signature),
    }


# ---------------------------------------------------------------- strict JSON parsing

_HEAD_FIELDS: Final = ("log_id", "tree_size", "root_hash", "timestamp", "kind", "key_id", "signature")
_RECEIPT_FIELDS: Final = ("version", "leaf", "leaf_index", "inclusion_proof", "tree_head", "log_public_key")


def _object(obj: Any, where: str, fields: Sequence[str], label: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{label}: must be a JSON object")
    missing = [name for name in fields if name not in obj]
    if missing:
        raise ValueError(f"{where}{missing[0]}: missing")
    extra = sorted(str(name) for name in obj if name not in fields)
    if extra:
        raise ValueError(f"{where}{extra[0]}: unknown field")
    return obj


def _string(obj: Mapping[str, Any], name: str, where: str) -> str:
    value = obj[name]
    if not isinstance(value, str):
        raise ValueError(f"{where}{name}: must be a string")
    return value


def _integer(obj: Mapping[str, Any], name: str, where: str) -> int:
    value = obj[name]
    # JSON booleans arrive as Python bools, which are ints: refuse them explicitly.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}{name}: must be an integer ≥ 0")
    return value


def _base64(value: Any, label: str, size: int) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{label}: must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError(f"{label}: not valid base64") from None
    if len(raw) != size:
        raise ValueError(f"{label}: must decode to {size} bytes, got {len(raw)}")
    return raw


def _hash_list(value: Any, label: str) -> tuple[bytes, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{label}: must be a list of base64 hashes")
    return tuple(_base64(item, f"{label}[{i}]", HASH_SIZE) for i, item in enumerate(value))


def _timestamp(text: str, label: str) -> datetime:
    # One spelling only, the one signed_message produces, so a parsed head re-signs to the same bytes.
    if not _TIMESTAMP_RE.fullmatch(text):
        raise ValueError(f"{label}: must be UTC ISO 8601 with milliseconds, like 2025-01-31T08:00:00.000Z")
    try:
        return datetime.fromisoformat(text.removesuffix("Z") + "+00:00")
    except ValueError:
        raise ValueError(f"{label}: not a valid date and time") from None


def _parse_head(obj: Any, where: str) -> SignedTreeHead:
    fields = _object(obj, where, _HEAD_FIELDS, where.removesuffix(".") or "tree head")
    log_id = _string(fields, "log_id", where)
    tree_size = _integer(fields, "tree_size", where)
    root_hash = _base64(fields["root_hash"], f"{where}root_hash", HASH_SIZE)
    timestamp = _timestamp(_string(fields, "timestamp", where), f"{where}timestamp")
    kind = _string(fields, "kind", where)
    if kind not in HEAD_KINDS:
        raise ValueError(f"{where}kind: must be one of {', '.join(HEAD_KINDS)}")
    key = _string(fields, "key_id", where)
    if not _KEY_ID_RE.fullmatch(key):
        raise ValueError(f"{where}key_id: must be 16 lowercase hexadecimal characters")
    signature = _base64(fields["signature"], f"{where}signature", _SIGNATURE_SIZE)
    try:
        head = TreeHead(log_id, tree_size, root_hash, timestamp, kind)
    except ValueError as exc:
        # Only log_id can still be wrong here: every other field was checked above.
        raise ValueError(f"{where}log_id: {exc}") from None
    return SignedTreeHead(head, key, signature)


def head_from_json(obj: Any) -> SignedTreeHead:
    """Parse a signed tree head made by `head_to_json`, strictly: every field present with its type, no
    unknown field, base64 of the right length, the one timestamp spelling. Raises ValueError naming the
    field at fault. The signature is not checked here: see `verify_head`."""
    return _parse_head(obj, "")


# ---------------------------------------------------------------- receipts


@dataclass(frozen=True)
class Receipt:
    """A bidder's receipt: the logged entry, its index, its inclusion proof, the signed head the proof
    leads to and the log's raw Ed25519 public key."""

    leaf: Mapping[str, Any]
    leaf_index: int
    inclusion_proof: tuple[bytes, ...]
    tree_head: SignedTreeHead
    log_public_key: bytes
    version: int = 1


@dataclass(frozen=True)
class Check:
    """One check of a receipt: its name, whether it passed, and a sentence saying what was found.

    A `skipped` check names something the receipt states that nothing signed vouches for: it neither
    passes nor fails, and is never shown as passed."""

    name: str
    ok: bool
    detail: str
    skipped: bool = False


def receipt_to_json(
    *,
    leaf: Mapping[str, Any],
    leaf_index: int,
    inclusion_proof: Sequence[bytes],
    tree_head: SignedTreeHead,
    log_public_key: bytes,
    version: int = 1,
) -> dict[str, Any]:
    """A receipt as JSON: {"version", "leaf", "leaf_index", "inclusion_proof": [base64…],
    "tree_head": head_to_json(…), "log_public_key": base64}. The leaf is copied through its canonical
    JSON, so the receipt holds exactly what was hashed. `version` says which log it is of
    (`RECEIPT_VERSIONS`); the shape is the same."""
    if version not in RECEIPT_VERSIONS:
        raise ValueError(f"version must be one of {RECEIPT_VERSIONS}")
    return {
        "version": version,
        "leaf": json.loads(leaf_bytes(leaf)),
        "leaf_index": leaf_index,
        "inclusion_proof": [_b64(node) for node in inclusion_proof],
        "tree_head": head_to_json(tree_head),
        "log_public_key": _b64(log_public_key),
    }


def receipt_from_json(obj: Any) -> Receipt:
    """Parse a receipt made by `receipt_to_json`, strictly; raises ValueError naming the field at fault
    (nested fields as `tree_head.root_hash`, list items as `inclusion_proof[2]`). Proofs and signatures
    are not checked here: see `verify_receipt`."""
    fields = _object(obj, "", _RECEIPT_FIELDS, "receipt")
    version = fields["version"]
    if isinstance(version, bool) or version not in RECEIPT_VERSIONS:
        raise ValueError(f"version: must be {' or '.join(map(str, RECEIPT_VERSIONS))}")
    leaf = fields["leaf"]
    if not isinstance(leaf, Mapping):
        raise ValueError("leaf: must be a JSON object")
    try:
        leaf_bytes(leaf)
    except (TypeError, ValueError, RecursionError):
        raise ValueError("leaf: cannot be written as canonical JSON") from None
    leaf_index = _integer(fields, "leaf_index", "")
    proof = _hash_list(fields["inclusion_proof"], "inclusion_proof")
    head = _parse_head(fields["tree_head"], "tree_head.")
    public = _base64(fields["log_public_key"], "log_public_key", _PUBLIC_KEY_SIZE)
    return Receipt(dict(leaf), leaf_index, proof, head, public, version)


RECEIPT_CHECKS: Final = ("format", "key_pinned", "head_signature", "leaf_index", "inclusion")
CLOSING_CHECKS: Final = (
    "closing_signature",
    "closing_log_id",
    "closing_kind",
    "closing_size",
    "consistency",
)


def _short(data: bytes) -> str:
    return data.hex()[:16] + "…"


def _key_pinned(public: bytes, trusted_key: bytes | None) -> Check:
    found = key_id(public)
    if trusted_key is None:
        # Without a pinned key the signatures only show the receipt is self-consistent: anyone can make
        # such a receipt with a key of their own.
        return Check(
            "key_pinned",
            False,
            f"no key pinned: the receipt's own key (key id {found}) proves nothing, anyone can sign a "
            "receipt with a key of their own; check it against the platform's key",
        )
    if public == trusted_key:
        return Check("key_pinned", True, f"the log key is the pinned key (key id {found})")
    return Check(
        "key_pinned", False, f"the log key id {found} is not the pinned key id {key_id(trusted_key)}"
    )


def _signature(name: str, sth: SignedTreeHead, public: bytes, what: str) -> Check:
    if sth.key_id != key_id(public):
        return Check(name, False, f"{what} names key id {sth.key_id}, the log key is {key_id(public)}")
    if verify_head(sth, public):
        return Check(name, True, f"{what} is signed by key id {sth.key_id}")
    return Check(name, False, f"{what} signature does not verify with key id {sth.key_id}")


def _leaf_index(receipt: Receipt) -> Check:
    stated = receipt.leaf.get("index")
    if isinstance(stated, bool) or not isinstance(stated, int):
        return Check("leaf_index", False, "the leaf has no integer index")
    if stated != receipt.leaf_index:
        return Check("leaf_index", False, f"the leaf says index {stated}, the receipt {receipt.leaf_index}")
    return Check("leaf_index", True, f"leaf index {stated}")


def _inclusion(receipt: Receipt) -> Check:
    head = receipt.tree_head.head
    hashed = leaf_hash(leaf_bytes(receipt.leaf))
    where = (
        f"leaf {receipt.leaf_index} in the tree of {head.tree_size} leaves with root {_short(head.root_hash)}"
    )
    if verify_inclusion(hashed, receipt.leaf_index, head.tree_size, receipt.inclusion_proof, head.root_hash):
        return Check("inclusion", True, f"the proof places {where}")
    return Check("inclusion", False, f"the proof does not place {where}")


def _check(name: str, ok: bool, passed: str, failed: str) -> Check:
    return Check(name, ok, passed if ok else failed)


def _closing_checks(receipt: Receipt, closing: SignedTreeHead, proof: Sequence[bytes]) -> list[Check]:
    head, last = receipt.tree_head.head, closing.head
    span = f"from {head.tree_size} to {last.tree_size} leaves"
    consistent = verify_consistency(head.tree_size, last.tree_size, head.root_hash, last.root_hash, proof)
    return [
        _signature("closing_signature", closing, receipt.log_public_key, "the closing head"),
        _check(
            "closing_log_id",
            last.log_id == head.log_id,
            f"both heads are of log {head.log_id}",
            f"the closing head is of log {last.log_id}, the receipt's head of log {head.log_id}",
        ),
        _check(
            "closing_kind",
            last.kind == "closing",
            "the closing head is marked closing",
            f"the closing head is marked {last.kind!r}, not 'closing'",
        ),
        _check(
            "closing_size",
            last.tree_size >= head.tree_size,
            f"closing size {last.tree_size} ≥ receipt size {head.tree_size}",
            f"closing size {last.tree_size} < receipt size {head.tree_size}",
        ),
        _check(
            "consistency",
            consistent,
            f"the closing tree extends the receipt's tree ({span})",
            f"no proof that the closing tree extends the receipt's tree ({span})",
        ),
    ]


def verify_receipt(
    receipt: Mapping[str, Any],
    *,
    trusted_key: bytes | None = None,
    closing_head: Mapping[str, Any] | None = None,
    consistency: Sequence[str] | None = None,
) -> list[Check]:
    """Check a receipt offline and return every check with its result, in this order:

    format (receipt, closing head and consistency proof parse), key_pinned (the receipt's log key is
    `trusted_key`; without one it fails: a receipt's own key proves nothing), head_signature, leaf_index (the leaf's
    "index" is the receipt's), inclusion (the leaf is in the signed head); with `closing_head`, also
    closing_signature (same log key), closing_log_id, closing_kind ("closing"), closing_size (not smaller)
    and consistency (`consistency`, base64 hashes, proves the receipt's tree a prefix of the closing one).

    Never raises on bad input: a malformed one fails "format", and every other check is then reported
    failed as not checked."""
    names = RECEIPT_CHECKS[1:] + (CLOSING_CHECKS if closing_head is not None else ())
    try:
        parsed = receipt_from_json(receipt)
        closing = _parse_head(closing_head, "closing_head.") if closing_head is not None else None
        proof = _hash_list(consistency, "consistency") if consistency is not None else ()
    except ValueError as exc:
        return [Check("format", False, str(exc))] + [
            Check(name, False, "not checked: the input is malformed") for name in names
        ]
    checks = [
        Check("format", True, "well formed"),
        _key_pinned(parsed.log_public_key, trusted_key),
        _signature("head_signature", parsed.tree_head, parsed.log_public_key, "the tree head"),
        _leaf_index(parsed),
        _inclusion(parsed),
    ]
    if closing is not None:
        checks.extend(_closing_checks(parsed, closing, proof))
    return checks


def all_ok(checks: Sequence[Check]) -> bool:
    """Whether every check passed or was skipped, and at least one passed: an empty list (or one of
    skipped checks only) proves nothing and is not ok."""
    return any(check.ok for check in checks) and all(check.ok or check.skipped for check in checks)
