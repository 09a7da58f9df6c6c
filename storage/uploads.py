"""What the platform let be written to the object store, so nothing can fill it and nothing is left behind.

Every object a client or a finalize may write is claimed here first, in the database:

- an **upload** (kind `upload`): a presigned grant to one key, capped at `max_bytes`, good until
  `expires_at`; a multipart upload also names its `upload_id`. It is claimed in the transaction that
  issues the grant, so a grant the client received always has its row.
- a **copy** (kind `copy`): the copy a finalize makes of an upload into the record's key space. It is
  claimed `pending` in a transaction of its own *before* the copy starts, and turned `kept` in the
  transaction that records it (a bid, a document); a crash, a refusal or a lost race in between leaves a
  pending claim the sweeper finds.

The sweeper (`sweep`) removes what nothing will ever take: uploads past their expiry (plus a grace, for a
transfer that began just before it), their open multipart uploads, and pending copies past theirs. It
never touches a `kept` copy, which is the one thing a record points to. Each removal first marks its
claim `doomed` and commits, then deletes the object, then the row: a crash at any point leaves a row the
next sweep finishes, and a finalize can only turn a `pending` copy `kept` (`keep_copy`), never a doomed
one, so a record never points at an object the sweeper is deleting.

Claims also carry who (`owner_id`, an organisation) and for what (`scope_id`, a tender), so each owner's
bytes per scope are bounded (`used_bytes`, the quota the callers enforce).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import BigInteger, Index, String, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, transaction
from storage.jobs import JobContext, tick_stage
from storage.objects import ObjectStore

UPLOAD: Final = "upload"
COPY: Final = "copy"
PENDING: Final = "pending"  # an open grant, or a copy not yet on record
KEPT: Final = "kept"  # a copy on record: never swept
DOOMED: Final = "doomed"  # being removed by the sweeper

# A transfer that began just before its grant expired may still be streaming: give it this long.
UPLOAD_GRACE: Final = timedelta(hours=1)
# A finalize copies at most 512 MiB: a copy still pending this long after it began was abandoned.
COPY_GRACE: Final = timedelta(hours=6)
SWEEP_BATCH: Final = 200

log = logging.getLogger("ggzy.storage")


class ObjectClaim(Base):
    """One object the platform let be written: an upload grant or a finalize's copy (see the module)."""

    __tablename__ = "object_claims"
    __table_args__ = (
        Index("ix_object_claims_owner_scope", "owner_id", "scope_id"),
        Index("ix_object_claims_state_expires", "state", "expires_at"),
    )

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    upload_id: Mapped[str | None] = mapped_column(String(1024))
    owner_id: Mapped[uuid.UUID]
    scope_id: Mapped[uuid.UUID | None]
    max_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


async def used_bytes(session: AsyncSession, owner_id: uuid.UUID, scope_id: uuid.UUID, now: datetime) -> int:
    """The bytes an owner holds in a scope: its open grants (at their cap), its pending and kept copies.
    An expired grant no longer counts: nothing can be written through it any more."""
    total = await session.scalar(
        select(func.coalesce(func.sum(ObjectClaim.max_bytes), 0)).where(
            ObjectClaim.owner_id == owner_id,
            ObjectClaim.scope_id == scope_id,
            ObjectClaim.state != DOOMED,
            or_(ObjectClaim.kind == COPY, ObjectClaim.expires_at > now),
        )
    )
    return int(total or 0)


def claim_upload(
    session: AsyncSession,
    *,
    key: str,
    owner_id: uuid.UUID,
    scope_id: uuid.UUID | None,
    max_bytes: int,
    now: datetime,
    expires_at: datetime,
    upload_id: str | None = None,
) -> None:
    """Claim an upload grant in the transaction that issues it."""
    session.add(
        ObjectClaim(
            key=key,
            kind=UPLOAD,
            state=PENDING,
            upload_id=upload_id,
            owner_id=owner_id,
            scope_id=scope_id,
            max_bytes=max_bytes,
            created_at=now,
            expires_at=expires_at,
        )
    )


async def open_upload(session: AsyncSession, key: str, owner_id: uuid.UUID) -> ObjectClaim | None:
    """The owner's open upload under `key`, if there is one."""
    claim = await session.get(ObjectClaim, key)
    if claim is None or claim.kind != UPLOAD or claim.state != PENDING or claim.owner_id != owner_id:
        return None
    return claim


async def close_upload(session: AsyncSession, key: str) -> None:
    """The upload was taken (or given up): its claim goes with the caller's transaction; the object itself
    is discarded by whoever took it, after commit."""
    await session.execute(delete(ObjectClaim).where(ObjectClaim.key == key, ObjectClaim.kind == UPLOAD))


async def claim_copy(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    key: str,
    owner_id: uuid.UUID,
    scope_id: uuid.UUID | None,
    max_bytes: int,
    now: datetime,
) -> None:
    """Claim a copy `pending`, committed before the copy starts, so no crash can leave it untracked."""
    async with transaction(sessionmaker) as session:
        session.add(
            ObjectClaim(
                key=key,
                kind=COPY,
                state=PENDING,
                upload_id=None,
                owner_id=owner_id,
                scope_id=scope_id,
                max_bytes=max_bytes,
                created_at=now,
                expires_at=now + COPY_GRACE,
            )
        )


def add_kept_copy(
    session: AsyncSession,
    *,
    key: str,
    owner_id: uuid.UUID,
    scope_id: uuid.UUID | None,
    size: int,
    now: datetime,
) -> None:
    """Claim a copy made and recorded in the caller's own transaction (already on record)."""
    session.add(
        ObjectClaim(
            key=key,
            kind=COPY,
            state=KEPT,
            upload_id=None,
            owner_id=owner_id,
            scope_id=scope_id,
            max_bytes=size,
            created_at=now,
            expires_at=now,
        )
    )


async def keep_copy(session: AsyncSession, key: str, size: int) -> bool:
    """Turn a pending copy `kept` in the transaction that records it; False when the sweeper took it first
    (the copy is gone or going, so the caller must not record it)."""
    result = await session.execute(
        update(ObjectClaim)
        .where(ObjectClaim.key == key, ObjectClaim.kind == COPY, ObjectClaim.state == PENDING)
        .values(state=KEPT, max_bytes=size)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def drop_copy(sessionmaker: async_sessionmaker[AsyncSession], store: ObjectStore, key: str) -> None:
    """Remove a copy that will not be recorded (a refusal, a replay, a lost race), and its claim: the
    object first, so a crash in between leaves a pending claim for the sweeper, never a stray object."""
    async with transaction(sessionmaker) as session:
        result = await session.execute(
            update(ObjectClaim)
            .where(ObjectClaim.key == key, ObjectClaim.kind == COPY, ObjectClaim.state == PENDING)
            .values(state=DOOMED)
        )
        if getattr(result, "rowcount", 0) != 1:
            return  # kept (on record) or already being removed
    await store.delete(key)
    async with transaction(sessionmaker) as session:
        await session.execute(delete(ObjectClaim).where(ObjectClaim.key == key, ObjectClaim.state == DOOMED))


@dataclass(frozen=True)
class Swept:
    """What one sweep removed."""

    uploads: int
    multipart: int
    copies: int
    failed: int
    scratch: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "uploads": self.uploads,
            "multipart": self.multipart,
            "copies": self.copies,
            "failed": self.failed,
            "scratch": self.scratch,
        }


async def sweep(
    sessionmaker: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    now: datetime,
    *,
    batch: int = SWEEP_BATCH,
) -> Swept:
    """Remove expired uploads (and their open multipart uploads) and abandoned copies; never a kept copy;
    and the scratch directories that killed processes left (opened plaintext, downloaded envelopes).
    Runs in short transactions; the store is called between them, never inside one."""
    async with transaction(sessionmaker) as session:
        due = (
            select(ObjectClaim.key)
            .where(
                ObjectClaim.state == PENDING,
                or_(
                    (ObjectClaim.kind == UPLOAD) & (ObjectClaim.expires_at <= now - UPLOAD_GRACE),
                    (ObjectClaim.kind == COPY) & (ObjectClaim.expires_at <= now),
                ),
            )
            .order_by(ObjectClaim.expires_at)
            .limit(batch)
        )
        keys = list(await session.scalars(due))
        if keys:
            await session.execute(
                update(ObjectClaim)
                .where(ObjectClaim.key.in_(keys), ObjectClaim.state == PENDING)
                .values(state=DOOMED)
            )
    async with transaction(sessionmaker, read_only=True) as session:
        doomed = list(
            await session.scalars(
                select(ObjectClaim).where(ObjectClaim.state == DOOMED).order_by(ObjectClaim.key).limit(batch)
            )
        )
    uploads = multipart = copies = failed = 0
    removed: list[str] = []
    for claim in doomed:
        try:
            if claim.upload_id is not None:
                await store.abort_multipart(claim.key, claim.upload_id)
                multipart += 1
            await store.delete(claim.key)
        except Exception:
            failed += 1
            continue
        removed.append(claim.key)
        if claim.kind == COPY:
            copies += 1
        else:
            uploads += 1
    if removed:
        async with transaction(sessionmaker) as session:
            await session.execute(
                delete(ObjectClaim).where(ObjectClaim.key.in_(removed), ObjectClaim.state == DOOMED)
            )
    scratch = await store.sweep_scratch()
    return Swept(uploads, multipart, copies, failed, scratch)


@tick_stage("storage sweep", order=50)
async def sweep_job(ctx: JobContext) -> Swept:
    """The chronograph's periodic sweep of the object store (`sweep` at the clock's now)."""
    swept = await sweep(ctx.sessionmaker, ctx.extras["store"], ctx.clock.now())
    if swept.uploads or swept.copies or swept.failed or swept.scratch:
        log.info("storage sweep: %s", swept.to_dict())
    return swept
