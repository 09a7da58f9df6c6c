"""Answers of the bidding API that are not Structs of the trade: the transparency log's key and proofs
(TypedDicts; the signed tree head itself is `bidding.merkle.PublishedTreeHead`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, TypedDict

import msgspec

from bidding.merkle import PublishedTreeHead
from trading.schemas import Hex64, ObjectKey, Strict


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


# A signed tree head of a transparency log, as `bidding.merkle` writes and signs it.
LogTreeHead = PublishedTreeHead


class LogReceipt(TypedDict):
    """A transparency-log receipt (`ggzy verify receipt` checks it offline): the leaf as the log hashed it,
    its index, the inclusion proof (base64 node hashes, RFC 9162), the signed tree head and the log's raw
    32-byte Ed25519 public key in base64. `version` 1 is a leaf of the platform-wide log, 2 of a bidder's
    own log of one tender. `leaf` is an open object: the log entry whose canonical bytes (JSON, keys
    sorted, no spaces, UTF-8) were hashed as SHA-256(0x00 ‖ bytes); its keys depend on the event
    (`bidding.receipt` defines them)."""

    version: int
    leaf: dict[str, Any]
    leaf_index: int
    inclusion_proof: list[str]
    tree_head: LogTreeHead
    log_public_key: str


class BidRejection(TypedDict):
    """A rejection the platform established (W-19: no deposit at the bid deadline): the rule, the reason and
    the detail it gives, when (ISO 8601), and `evidence`, an open object: escrow's deposit check at the
    deadline (its findings with `eligibility_id` and `checked_at`), or only a `detail` when the bidder had
    no deposit sub-account for the lot."""

    rule: str
    reason: str | None
    detail: str | None
    at: str | None
    evidence: dict[str, Any] | None


class EnvelopeUpload(Strict):
    """A second sealed envelope of the same bid, already in the object store: on a tender of two envelopes
    (双信封) the technical one, whose manifest declares no price."""

    object_key: ObjectKey
    envelope_sha256: Hex64 | None = None
    upload_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class BidSubmit(Strict):
    """Finalise a bid whose sealed envelope (an age file) is already in the object store. On a tender of
    two envelopes (双信封) `object_key` is the commercial envelope and `technical` the technical one: the
    bid is taken, and its receipt issued, only with both."""

    lot_id: uuid.UUID
    object_key: ObjectKey
    # The client's own hash of the envelope: checked against what arrived, and what makes a retried
    # submission (a fresh upload of the same envelope under the same Idempotency-Key) the same request.
    envelope_sha256: Hex64 | None = None
    # Set when the envelope went up in parts: the upload is completed before it is taken on record.
    upload_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    technical: EnvelopeUpload | None = None


class BidDecrypt(Strict):
    """In the opening hall, the bidder reveals its envelope's file key.

    The file key is the envelope's 16 random bytes that the age header wraps: the bidder's client unwraps
    it locally from the header's X25519 stanza with the bidder's own encryption identity (`ggzy bid
    decrypt`, or `age` itself), and sends the 16 raw bytes in standard base64 (RFC 4648 section 4, with
    padding: 24 characters). The platform checks it against the header MAC (HMAC-SHA-256 keyed with
    HKDF-SHA-256 of the file key, info "header") before it takes it; a wrong key is refused with 422."""

    file_key: Annotated[
        str,
        msgspec.Meta(
            min_length=20,
            max_length=32,
            description="The envelope's 16-byte age file key in standard base64 with padding (24 characters).",
        ),
    ]
    # Which envelope of a bid of two (双信封): the technical one at the opening, the commercial one at the
    # commercial opening; a bid of one envelope has only the commercial one.
    kind: Literal["commercial", "technical"] = "commercial"


class TechnicalVerdict(Strict):
    """The committee's verdict on one bid's technical envelope: passed or not, and why."""

    bid_id: uuid.UUID
    passed: bool
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class TechnicalResult(Strict):
    """The technical evaluation's result on a tender of two envelopes (双信封), recorded by the evaluation
    committee's chair in its room: a verdict with its reason for every bid standing after the technical
    opening, each named once. The commercial envelopes of the bids that passed alone are opened next."""

    verdicts: Annotated[list[TechnicalVerdict], msgspec.Meta(min_length=1, max_length=1000)]


class TechnicalFile(msgspec.Struct):
    """One file of an opened technical envelope: its name, size in bytes and hex SHA-256."""

    name: str
    size: int
    sha256: str


class TechnicalBid(msgspec.Struct):
    """A bid standing after the technical opening as the committee reads it: its technical envelope's files
    (never a price), the platform's rejection rule if any, and the committee's verdict and reason once
    recorded."""

    bid_id: uuid.UUID
    lot: int
    bidder: str
    credit_code: str
    technical_sha256: str
    files: list[TechnicalFile]
    rejected: str | None
    passed: bool | None
    reason: str | None


class TechnicalView(msgspec.Struct):
    """The technical evaluation in the committee's room: the room, its tender and state, and the bids."""

    room_id: uuid.UUID
    tender_id: uuid.UUID
    status: str
    bids: list[TechnicalBid]


class TechnicalResultRead(msgspec.Struct):
    """The technical result as recorded: the tender's state now (technical_evaluation until the agency
    opens the commercial envelopes, then commercial_opening), the bids whose commercial envelopes are opened
    and those whose commercial envelopes stay sealed."""

    tender_id: uuid.UUID
    status: str
    passed: list[uuid.UUID]
    not_passed: list[uuid.UUID]


class ReleaseIn(Strict):
    """A custodian's release of its stanza of one envelope in custody, made locally with its private key
    (`bidding.custody.make_release`): the stanza's shared secret and the proof that it is the honest one."""

    bid_id: uuid.UUID
    release: Annotated[
        dict[str, Any],
        msgspec.Meta(
            description=(
                "The release as `ggzy custodian release` writes it (the format of `bidding.custody`): the "
                "stanza's X25519 shared secret and the proof that it is the honest one."
            )
        ),
    ]
    # Which envelope of the bid the stanza is of (双信封): technical ones are released at the technical
    # opening, commercial ones only at the commercial opening.
    kind: Literal["commercial", "technical"] = "commercial"


class CustodyEnvelope(msgspec.Struct):
    """An envelope a custodian may help open: its header holds the custodian's wrapped share. `header` is
    the age header's bytes in base64, `header_sha256` and `envelope_sha256` hex SHA-256 digests."""

    bid_id: uuid.UUID
    lot_number: int
    envelope_sha256: str
    header: str
    header_sha256: str
    status: str
    valid_releases: int
    my_release: str | None  # valid, invalid (replace it), or None (not released yet)
    kind: str = "commercial"  # technical or commercial (双信封): name it in the release


class CustodyView(msgspec.Struct):
    """What a custodian sees of a tender after the deadline: its roster position, the threshold t
    (custodians other than the platform) and the Shamir threshold T written in the stanzas, the opening
    policy, the end of the custody window, and the envelopes in custody."""

    tender_code: str
    position: int
    threshold: int
    shamir_threshold: int
    policy: str
    custody_until: datetime | None
    envelopes: list[CustodyEnvelope]


class ReleaseResult(msgspec.Struct):
    """A release accepted: whether the proven secret opens the stanza, whether the envelope is now
    opening (its file key recovered) or attributed, and whether it repeated one on record."""

    bid_id: uuid.UUID
    position: int
    status: str
    stanza_opens: bool | None
    replayed: bool
    envelope_status: str
    outcome: str | None
    kind: str = "commercial"


class BidRead(msgspec.Struct):
    """A bid as the caller may see it: its envelope's SHA-256 (hex) and size in bytes, when it arrived
    and its arrival sequence, the declared price in fen and duration in days once opened, the envelope's
    state and result at the opening, the receipt when the answer carries one, and the rejection the
    platform established (W-19) with its evidence."""

    id: uuid.UUID
    tender_id: uuid.UUID
    lot_id: uuid.UUID
    organisation_id: uuid.UUID
    status: str
    sha256: str
    size: int
    submitted_at: datetime
    sequence: int
    withdrawn_at: datetime | None
    declared_price_fen: int | None
    duration_days: int | None
    revealed_at: datetime | None
    envelope_status: str | None = None
    envelope_result: str | None = None
    receipt: Receipt | None = None
    # A rejection the platform established (W-19: no deposit at the deadline), with its evidence.
    rejection: BidRejection | None = None


class Receipt(msgspec.Struct, omit_defaults=True):
    """What the bidder keeps: proof that the platform accepted this envelope at this instant — the
    transparency-log leaf, its inclusion proof and the signed tree head (`ggzy verify receipt`). A bid of
    two envelopes (双信封) also states its technical envelope's SHA-256 and size, which the leaf covers
    too; `envelope_sha256` is then the commercial envelope's."""

    bid_id: uuid.UUID
    tender_code: str
    lot_number: int
    bidder_credit_code: str
    envelope_sha256: str
    size: int
    submitted_at: datetime
    sequence: int
    event: str
    log: Annotated[
        dict[str, Any],
        msgspec.Meta(
            description=(
                "The log receipt of the bidder's own log of the tender (version 2), shaped as `LogReceipt`: "
                "version, leaf, leaf_index, inclusion_proof, tree_head, log_public_key."
            )
        ),
    ]
    technical_sha256: str | None = None
    technical_size: int | None = None
