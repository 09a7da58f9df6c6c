"""Answers of the bidding API that are not Structs of the trade: the transparency log's key and proofs
(TypedDicts; the signed tree head itself is `bidding.merkle.PublishedTreeHead`)."""

from __future__ import annotations

from typing import TypedDict


class TransparencyKey(TypedDict):
    """The platform's log key, to pin before checking anything it signs offline (`ggzy verify receipt
    --key`): `public_key` is the base64 of the raw 32-byte Ed25519 public key, `key_id` the first 16
    lowercase hex digits of its SHA-256 (every signed head names it), and `log_id` the id of the
    platform-wide log ("ggzy/bids/v1"). The same key signs tree heads, tenders' closing heads, the deposit
    ledger's heads and the audit trail's heads; each signed text begins with its own first line, so no
    signature of one kind can pass for another."""

    log_id: str
    public_key: str
    key_id: str


class ConsistencyProof(TypedDict):
    """The RFC 9162 §2.1.4 consistency proof that the platform-wide log at `first` leaves is a prefix of
    the log at `second` leaves: `proof` lists the node hashes, each the base64 of 32 SHA-256 bytes, in the
    order the RFC's verification algorithm reads them (empty when `first` is 0 or equals `second`)."""

    first: int
    second: int
    proof: list[str]


class InclusionProof(TypedDict):
    """The RFC 9162 §2.1.3 inclusion proof (audit path) of leaf `leaf_index` (from 0) in the platform-wide
    log at `tree_size` leaves: `proof` lists the sibling hashes from the leaf up, each the base64 of 32
    SHA-256 bytes; with the leaf's hash they recompute the root of the head signed at `tree_size`."""

    leaf_index: int
    tree_size: int
    proof: list[str]
