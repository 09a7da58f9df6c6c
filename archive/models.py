"""The archive's table: one row per bundle kept in the object store."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, IdMixin


class TradeArchive(IdMixin, Base):
    """A tender's archive bundle (G-09): where the object store keeps it and the SHA-256 of its bytes.
    Bundle `number` 1 is assembled when the tender reaches its terminal status; rows are never edited."""

    __tablename__ = "trade_archives"
    __table_args__ = (UniqueConstraint("tender_id", "number"),)

    tender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenders.id"), index=True)
    number: Mapped[int]
    object_key: Mapped[str] = mapped_column(String(512), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
