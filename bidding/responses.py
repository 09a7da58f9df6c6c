"""Answers of the bidding API (the closing head, the opening hall and its record, custody) that the services
build as plain JSON objects, as TypedDicts.

The handlers return these dicts unchanged; the types only document them (the OpenAPI document is generated
from them). Ids are UUIDs as text, instants ISO 8601 text, money integer fen (1/100 yuan), hashes of
envelopes and headers lowercase hex; signatures, keys and root hashes are standard base64 (RFC 4648
section 4, with padding) unless a field says otherwise.

This module does not use postponed annotations: `NotRequired` must be seen when the class is created, or
every key would count as required.
"""

from typing import Any, NotRequired, TypedDict

from bidding.schemas import LogReceipt, LogTreeHead


class ClosingRecord(TypedDict):
    """A tender's closing record, signed at the bid deadline. `head` is the closing tree's head over every
    bidder's log; `envelopes` the SHA-256 (hex) of each envelope that stands, sorted; `envelopes_signature`
    the base64 Ed25519 signature, with the platform log key (`log_public_key`, raw 32 bytes in base64), over
    the UTF-8 lines joined by LF with a final LF: "ggzy-closing-v1", the tender code, the head's tree size,
    its base64 root hash, then the sorted envelope hashes (`bidding.logtree.closing_message`).

    Version 2 records (`version`) add the closing tree's `leaves` (base64 leaf hashes) and `log_entry`,
    the closing head's receipt in the platform-wide log. Tenders closed since custody statements exist carry
    `custody`, an open object of its own versioned format (`bidding.opening_record.custody_statement`: the
    roster with the custodians' X25519 keys, t and T, each standing envelope's header hash), and
    `custody_signature`, base64 Ed25519 over "ggzy-closing-custody-v1" LF followed by the statement's
    canonical JSON."""

    tender: str
    head: LogTreeHead
    envelopes: list[str]
    envelopes_signature: str
    log_public_key: str
    version: NotRequired[int]
    leaves: NotRequired[list[str]]
    log_entry: NotRequired[LogReceipt]
    custody: NotRequired[dict[str, Any]]
    custody_signature: NotRequired[str]


class CustodyInvalid(TypedDict):
    """A custodian's release that did not verify: its roster position and the stable error code."""

    position: int
    error: str


class OpeningLineRejection(TypedDict):
    """The platform's rejection read out with a bid (W-19): the rule, its reason and detail, and when (ISO
    8601)."""

    rule: str
    reason: str | None
    detail: str | None
    at: str | None


class OpeningLine(TypedDict):
    """One line of the opening record (开标记录), the same the opening hall's event stream sends: its number
    `seq` (from 1), instant `at` (ISO 8601) and `kind`; the other keys depend on the kind:

    - "hall_opened": `tender` (its code), `bids` (how many envelopes stand), `decryption_window_ends`
      (ISO 8601) and `policy` (what happens to an envelope nobody opens: "custodians" or "revoke");
    - "bidder_signed_in": `bidder`, `credit_code`, `by` (the username);
    - "key_revealed": `bid`, `by` ("bidder" or "custodians");
    - "bid_opened" and "bid_failed" (唱标): `bid`, `lot` (number), `bidder`, `credit_code`,
      `envelope_sha256` (hex), `declared_price_fen` (integer fen), `duration_days`, `opened_by`, `result`,
      `detail`, `custody_cause`, and `rejected` when the platform established a rejection (W-19);
    - "custody_opened": `envelopes` (how many went to the custodians) and `custody_until` (ISO 8601);
    - "custody_outcome": `bid`, `lot`, `bidder`, `credit_code`, `envelope_sha256`, and the outcome: its
      `cause` ("opened", "bidder_fault" or "custodian_fault"), `detail`, `opened_shares`, `bad_stanzas`
      and `not_released` (roster positions), `combine_failed`, and `invalid` releases;
    - "objection_raised": `objection` (its id), `by`, `text`; "objection_answered": `objection`, `answer`;
    - "hall_closed": `bids` (lines read out) and `signals` (collusion signals computed).

    On a tender of two envelopes (双信封) the technical opening's lines carry `envelope` "technical" (its
    "bid_opened" and "bid_failed" lines name the technical envelope's hash and read out no price), and the
    commercial opening begins with a "hall_opened" line whose `envelope` is "commercial"."""

    seq: int
    at: str
    kind: str
    tender: NotRequired[str]
    bids: NotRequired[int]
    decryption_window_ends: NotRequired[str]
    policy: NotRequired[str]
    bidder: NotRequired[str]
    credit_code: NotRequired[str | None]
    by: NotRequired[str]
    bid: NotRequired[str]
    lot: NotRequired[int]
    envelope_sha256: NotRequired[str]
    declared_price_fen: NotRequired[int | None]
    duration_days: NotRequired[int | None]
    opened_by: NotRequired[str | None]
    result: NotRequired[str]
    detail: NotRequired[str | None]
    custody_cause: NotRequired[str | None]
    rejected: NotRequired[OpeningLineRejection]
    envelopes: NotRequired[int]
    custody_until: NotRequired[str]
    cause: NotRequired[str]
    opened_shares: NotRequired[list[int]]
    bad_stanzas: NotRequired[list[int]]
    not_released: NotRequired[list[int]]
    combine_failed: NotRequired[bool]
    invalid: NotRequired[list[CustodyInvalid]]
    objection: NotRequired[str]
    text: NotRequired[str]
    answer: NotRequired[str]
    signals: NotRequired[int]
    envelope: NotRequired[str]


class CheckIn(TypedDict):
    """The caller's sign-in line in the opening record (开标签到): the first one if it signed in before."""

    seq: int
    at: str
    kind: str
    bidder: str
    credit_code: str
    by: str


class CustodyRelease(TypedDict):
    """A custodian's release of one envelope as the signed opening record keeps it: its roster position and
    organisation, the `release` it sent (an open object in the custody release format of `bidding.custody`:
    the stanza's shared secret and the proof that it is the honest one), whether it verified, and the stable
    error code when it did not."""

    position: int
    organisation_id: str
    release: dict[str, Any]
    valid: bool
    error: str | None


class EnvelopeCustody(TypedDict):
    """What the custodians did for an envelope the bidder did not open: their releases and the `outcome` (an
    open object: the `cause`, "opened", "bidder_fault" or "custodian_fault", with its evidence)."""

    releases: list[CustodyRelease]
    outcome: dict[str, Any]


class OpeningEnvelope(TypedDict):
    """One envelope standing at the deadline, in the order the platform received them: the bid, lot number,
    bidder, its SHA-256 (hex), its age header's bytes in base64 and their SHA-256 (hex), the bid's status, who
    opened it ("bidder" or "custodians", null if nobody), the result, the declared price in fen, and what the
    custodians did (null when it did not go to custody)."""

    bid: str
    lot: int
    bidder: str
    credit_code: str
    envelope_sha256: str
    header: str
    header_sha256: str
    bid_status: str
    opened_by: str | None
    result: str
    declared_price_fen: int | None
    custody: EnvelopeCustody | None


class TechnicalOpeningEnvelope(TypedDict):
    """One technical envelope (技术标) of a tender of two envelopes, on the line of its bid: its SHA-256 and
    its header's as signed at the deadline (the custody statement's `technical`), who opened it ("bidder" or
    "custodians", null if nobody), the result and what the custodians did with its own stanzas; no price."""

    bid: str
    lot: int
    bidder: str
    credit_code: str
    envelope_sha256: str
    header: str
    header_sha256: str
    bid_status: str
    opened_by: str | None
    result: str
    custody: EnvelopeCustody | None


class SignedOpeningRecord(TypedDict):
    """The opening record signed once the opening closed (`ggzy verify opening` re-checks it offline).
    `kind` is "ggzy/v1/opening-record", `v` 1. `signature` is the base64 Ed25519 signature, with the
    platform log key named by `key_id` (the closing record's `log_public_key`), over "ggzy-opening-record-v1"
    LF followed by the canonical JSON (keys sorted, no spaces, UTF-8) of this object without `signature`."""

    v: int
    kind: str
    tender: str
    closing: ClosingRecord
    envelopes: list[OpeningEnvelope]
    # A tender of two envelopes (双信封): its technical envelopes, one line for each bid's.
    technical: NotRequired[list[TechnicalOpeningEnvelope]]
    key_id: str
    signature: str
