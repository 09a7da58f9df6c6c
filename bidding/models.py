"""Tables of the bidding package: custodian rosters, sealed envelopes and their opening, custodians'
released shares, the transparency log, tenders' closing heads, the live opening record and W-18 signals."""

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


class ShareRelease(IdMixin, Base):
    """A custodian's release of its stanza of one envelope after the deadline (E-03 custody opening): the
    stanza's X25519 shared secret with its proof (`bidding.custody`), whether the proof holds, and the
    share the stanza held (None when the proven secret does not open it: the bidder's fault). An invalid
    release stays as the evidence of the custodian's fault until a valid one replaces it."""

    __tablename__ = "custody_shares"
    __table_args__ = (UniqueConstraint("bid_id", "position"),)

    bid_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bids.id"), index=True)
    position: Mapped[int]
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    share: Mapped[str | None] = mapped_column(String(64))
    release: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(20), default="valid")
    error: Mapped[str | None] = mapped_column(String(60))
    released_at: Mapped[datetime]


class LogState(Base):
    """The one row every append locks, so appends to the log are serialised."""

    __tablename__ = "log_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)


class LogLeaf(Base):
    """One event of the transparency log: a bid submitted, replaced or withdrawn (canonical JSON)."""

    __tablename__ = "log_leaves"
    __table_args__ = (Index("ix_log_leaves_tender", "tender_id", "index"),)

    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"))
    bid_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bids.id"), index=True)
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


class Closing(Base):
    """A tender's closing head (截标): the log head signed at the deadline, and the envelopes that stand."""

    __tablename__ = "closings"

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(100))
    envelopes: Mapped[list[Any]]
    envelopes_signature: Mapped[str] = mapped_column(String(100))
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
