"""Tables of the bidding package: custodian rosters, sealed envelopes and their opening, custodians'
released shares, the platform-wide transparency log, each tender's log of bid events with every bidder's
own log in it, tenders' closing heads, the live opening record and W-18 signals."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, IdMixin


class Custodian(IdMixin, Base):
    """One opening custodian (开标密钥保管人) of a tender: holds share number `position` (Shamir x) of every
    envelope's file key, wrapped to the X25519 key it had registered when the tender was published."""

    __tablename__ = "custodians"
    __table_args__ = (
        UniqueConstraint("tender_id", "position", name="uq_custodians_tender_position"),
        UniqueConstraint("tender_id", "organisation_id", name="uq_custodians_tender_organisation"),
    )

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    position: Mapped[int]
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    public_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("public_keys.id"))
    public_key: Mapped[str] = mapped_column(String(64))
    # The platform (the centre) holds at most one share, and its share never counts toward t.
    platform: Mapped[bool] = mapped_column(default=False)


class Envelope(IdMixin, Base):
    """The sealed envelope of one bid: its age header as received and, after the deadline, its opening.

    `status`: sealed → opening (a valid file key is in hand, decryption queued) → opened | failed; a sealed
    envelope left at the end of the decryption window goes to `custody` (custodians may open it) or stays
    sealed and its bid is revoked (E-03)."""

    __tablename__ = "envelopes"

    bid_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bids.id"), unique=True)
    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    header: Mapped[str] = mapped_column(Text)  # base64 of the age header bytes (public: no secret in it)
    header_size: Mapped[int]
    client_address: Mapped[str | None] = mapped_column(String(64))
    client_device: Mapped[str | None] = mapped_column(String(128))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="sealed")
    # Written only after the deadline, when the bidder (or t custodians) open the envelope (E-02).
    file_key: Mapped[str | None] = mapped_column(String(32))
    opened_by: Mapped[str | None] = mapped_column(String(20))
    result: Mapped[str | None] = mapped_column(String(60))
    result_detail: Mapped[str | None] = mapped_column(String(500))
    manifest: Mapped[dict[str, Any] | None]
    files: Mapped[list[Any] | None]
    opened_at: Mapped[datetime | None]
    # An envelope that went to custody: the one provable cause it ended with, and its evidence.
    custody_outcome: Mapped[dict[str, Any] | None]


class TechnicalEnvelope(IdMixin, Base):
    """The technical envelope (技术标) of a bid on a tender of two envelopes (双信封), sealed and submitted
    with its commercial one (the bid's `Envelope`, which alone declares the price), kept under its own key
    and hash, and opened at the deadline while the commercial one stays sealed.

    `status` moves as an `Envelope`'s (sealed → opening → opened | failed); `passed` is the technical
    evaluation's verdict the committee records, which decides whether the commercial envelope is ever opened."""

    __tablename__ = "technical_envelopes"

    bid_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bids.id"), unique=True)
    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    object_key: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    header: Mapped[str] = mapped_column(Text)  # base64 of the age header bytes
    header_size: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default="sealed")
    file_key: Mapped[str | None] = mapped_column(String(32))
    opened_by: Mapped[str | None] = mapped_column(String(20))
    result: Mapped[str | None] = mapped_column(String(60))
    result_detail: Mapped[str | None] = mapped_column(String(500))
    manifest: Mapped[dict[str, Any] | None]
    files: Mapped[list[Any] | None]
    opened_at: Mapped[datetime | None]
    passed: Mapped[bool | None]
    judged_at: Mapped[datetime | None]
    # The evaluation committee's reason for its verdict, recorded by its chair in the room.
    verdict_reason: Mapped[str | None] = mapped_column(String(500))
    # A technical envelope that went to custody at the technical opening: its one provable cause.
    custody_outcome: Mapped[dict[str, Any] | None]


class ShareRelease(IdMixin, Base):
    """A custodian's release of its stanza of one envelope after the deadline (E-03 custody opening): the
    stanza's X25519 shared secret with its proof (`bidding.custody`), whether the proof holds, and the
    share the stanza held (None when the proven secret does not open it: the bidder's fault). An invalid
    release stays as the evidence of the custodian's fault until a valid one replaces it.

    `kind` is the envelope whose stanza it is: "commercial" (the bid's `Envelope`, the only one on a tender
    of one envelope) or "technical" (its `TechnicalEnvelope`, 双信封): each envelope's header holds shares
    of its own file key, released at its own opening."""

    __tablename__ = "custody_shares"
    __table_args__ = (
        UniqueConstraint("bid_id", "kind", "position", name="uq_custody_shares_bid_kind_position"),
    )

    bid_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bids.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12), default="commercial", server_default="commercial")
    position: Mapped[int]
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    share: Mapped[str | None] = mapped_column(String(64))
    release: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(20), default="valid")
    error: Mapped[str | None] = mapped_column(String(60))
    released_at: Mapped[datetime]


class LogState(Base):
    """The one row every append to the platform-wide log locks, so its appends are serialised."""

    __tablename__ = "log_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)


class LogLeaf(Base):
    """One leaf of the platform-wide transparency log (canonical JSON): a tender's closing head; until
    receipt version 2, every bid submitted, replaced or withdrawn (those keep `bid_id`)."""

    __tablename__ = "log_leaves"
    __table_args__ = (Index("ix_log_leaves_tender", "tender_id", "index"),)

    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"))
    bid_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bids.id"), index=True)
    event: Mapped[str] = mapped_column(String(20))
    leaf: Mapped[str] = mapped_column(Text)
    leaf_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class LogNode(Base):
    """A perfect subtree root of the log (level 0: the leaves), kept once complete (bidding.logtree)."""

    __tablename__ = "log_nodes"

    level: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))


class LogHead(Base):
    """A signed tree head of the log at `tree_size` leaves."""

    __tablename__ = "log_heads"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(100))


class TenderLog(Base):
    """A tender's log of bid events (W-20): the row its appends lock, how many events it holds (never
    served before the deadline) and when the closing head sealed it; nothing is appended after that."""

    __tablename__ = "tender_logs"

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    closed_at: Mapped[datetime | None]


class BidderLog(IdMixin, Base):
    """One bidder's own log of one tender: its receipts' heads count only this bidder's events. The id
    ends in a random token, so the published closing record never names the bidder."""

    __tablename__ = "bidder_logs"
    __table_args__ = (
        UniqueConstraint("tender_id", "organisation_id", name="uq_bidder_logs_tender_id_organisation_id"),
    )

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    log_id: Mapped[str] = mapped_column(String(200), unique=True)


class BidEvent(IdMixin, Base):
    """A bid submitted, replaced or withdrawn: leaf `index` of its bidder's log (canonical JSON) and event
    `seq` of its tender (arrival order, the closing tree's order), with the bidder log's head signed at
    once when it was appended, so its receipt can be served again exactly as issued."""

    __tablename__ = "bid_events"
    __table_args__ = (
        UniqueConstraint("tender_id", "seq", name="uq_bid_events_tender_id_seq"),
        UniqueConstraint("bidder_log_id", "index", name="uq_bid_events_bidder_log_id_index"),
    )

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    bidder_log_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bidder_logs.id"))
    index: Mapped[int] = mapped_column(BigInteger)
    bid_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bids.id"), index=True)
    event: Mapped[str] = mapped_column(String(20))
    leaf: Mapped[str] = mapped_column(Text)
    leaf_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    head_root: Mapped[str] = mapped_column(String(64))
    head_timestamp: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(16))
    head_signature: Mapped[str] = mapped_column(String(100))


class Closing(Base):
    """A tender's closing head (截标), signed at the deadline, and the envelopes that stand.

    Version 2: the head of the tender's closing tree (`log_id`) over every bid event of the tender in
    arrival order (`leaves`, hex leaf hashes), and the closing head's entry in the platform-wide log
    (`log_entry`, a receipt of that leaf). Version 1 (closed before tender logs existed): the platform-wide
    log's head at the deadline."""

    __tablename__ = "closings"

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(100))
    envelopes: Mapped[list[Any]]
    envelopes_signature: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(default=1)
    log_id: Mapped[str | None] = mapped_column(String(200))
    leaves: Mapped[list[Any] | None]
    log_entry: Mapped[dict[str, Any] | None]
    # The custody statement signed beside the head: roster, t and T, each envelope's header hash.
    custody: Mapped[dict[str, Any] | None]
    custody_signature: Mapped[str | None] = mapped_column(String(100))


class OpeningEvent(IdMixin, Base):
    """One line of the live opening record (开标记录 / 唱标), numbered per tender for the event stream."""

    __tablename__ = "opening_events"
    __table_args__ = (UniqueConstraint("tender_id", "seq"),)

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"))
    seq: Mapped[int]
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]]


class CollusionSignal(IdMixin, Base):
    """A W-18 signal found at the opening, for the evaluators and supervisors."""

    __tablename__ = "collusion_signals"

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    rule: Mapped[str] = mapped_column(String(10))
    bidders: Mapped[list[Any]]
    bids: Mapped[list[Any]]
    evidence: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(String(300))
    found_at: Mapped[datetime]
