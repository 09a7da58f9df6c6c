"""The tender documents (招标文件) and every file of a trade's record: upload grants and quotas, files copied
into the record with their hashes, documents obtained by bidders (who holds them stays secret, W-20), and
clarifications and amendments (澄清/修改) that move the deadline to keep 15 days (W-02)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts import service as accounts
from accounts.security import Principal
from escrow import subaccounts
from rules.calendar import (
    SHANGHAI,
    local_date,
)
from rules.profiles import (
    profile_for,
)
from rules.schedule import working_calendar
from storage import outbox, uploads
from storage.db import transaction, upsert_ignore
from storage.objects import (
    InvalidObjectKey,
    ObjectNotFound,
    ObjectStore,
)
from storage.problems import (
    Conflict,
    Forbidden,
    NotFound,
    RuleViolation,
    ValidationProblem,
    field_error,
)
from trading import schemas, venues
from trading.lifecycle import (
    TenderStatus,
)
from trading.models import (
    Clarification,
    Document,
    DocumentAccess,
    Notice,
    Objection,
    Tender,
)
from trading.notices import notify_holders, publish_notice
from trading.objections import resume_if_clear
from trading.tenders import (
    can_manage,
    load_tender,
    lots_of,
    next_check_of,
    same_time_on,
    tender_for_agency,
    visible_tender,
)

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
# What one organisation may hold in uploads on one tender (GGZY_UPLOAD_QUOTA_BYTES): open grants at their
# cap, copies on record and in flight. Eight envelopes or documents of the largest size.
UPLOAD_QUOTA_BYTES = 8 * MAX_UPLOAD_BYTES
UPLOAD_GRANT_TTL = timedelta(hours=2)
DOWNLOAD_GRANT_TTL = timedelta(minutes=30)


def upload_key_for(tender: Tender, area: str, org: uuid.UUID, filename: str) -> str:
    safe = (
        "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in filename)[-80:] or "file"
    )
    return f"tenders/{tender.code}/{area}/{org}/{uuid.uuid4().hex}-{safe}"


def check_upload_size(size: int) -> None:
    if size > MAX_UPLOAD_BYTES:
        raise ValidationProblem(
            f"Files may be at most {MAX_UPLOAD_BYTES} bytes.", errors=[field_error("size", "too large")]
        )


async def upload_grant(
    session: AsyncSession,
    store: ObjectStore,
    key: str,
    size: int,
    now: datetime,
    *,
    owner_id: uuid.UUID,
    tender_id: uuid.UUID,
    quota: int = UPLOAD_QUOTA_BYTES,
) -> schemas.UploadGrant:
    """A presigned upload of one file, which the store itself caps at the declared size (a POST policy
    on S3, a signed grant on the local store); claimed against the owner's quota on the tender."""
    check_upload_size(size)
    await check_quota(session, owner_id, tender_id, size, now, quota)
    form = await store.presigned_upload(key, UPLOAD_GRANT_TTL, max_bytes=size)
    uploads.claim_upload(
        session,
        key=key,
        owner_id=owner_id,
        scope_id=tender_id,
        max_bytes=size,
        now=now,
        expires_at=now + UPLOAD_GRANT_TTL,
    )
    return schemas.UploadGrant(
        key, form.url, form.method, now + UPLOAD_GRANT_TTL, size, fields=form.fields or None
    )


async def check_quota(
    session: AsyncSession, owner_id: uuid.UUID, tender_id: uuid.UUID, size: int, now: datetime, quota: int
) -> None:
    """Refuse an upload that would take the organisation past its storage quota on this tender (open
    grants at their cap, and every copy it has on record or in flight)."""
    used = await uploads.used_bytes(session, owner_id, tender_id, now)
    if used + size > quota:
        raise ValidationProblem(
            f"This organisation may hold at most {quota} bytes of uploads on this tender; it holds {used} "
            f"and asks for {size} more. Let unused upload grants expire, or ask the centre.",
            errors=[field_error("size", "quota")],
            quota_bytes=quota,
            used_bytes=used,
        )


async def document_upload(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.UploadRequest,
    store: ObjectStore,
    now: datetime,
    quota: int = UPLOAD_QUOTA_BYTES,
) -> schemas.UploadGrant:
    """Where the agency may upload a document of its tender."""
    tender = await tender_for_agency(session, actor, tender_id)
    return await upload_grant(
        session,
        store,
        upload_key_for(tender, "documents", actor.organisation_id, data.filename),
        data.size,
        now,
        owner_id=actor.organisation_id,
        tender_id=tender.id,
        quota=quota,
    )


class _TooLarge(Exception):
    pass


async def _capped(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise _TooLarge
        yield chunk


def check_prefix(key: str, prefix: str) -> None:
    if not key.startswith(prefix):
        raise ValidationProblem(
            "This object key was not issued for this upload.",
            errors=[field_error("object_key", "foreign key")],
        )


async def copy_upload(store: ObjectStore, key: str, kept: str) -> tuple[str, int]:
    """Copy an upload to `kept`, hashing as it streams; (SHA-256, size). Refusals are 422s naming the
    upload; an empty upload leaves no copy."""
    try:
        info = await store.put_stream(kept, _capped(store.iter_chunks(key), MAX_UPLOAD_BYTES))
    except (ObjectNotFound, InvalidObjectKey) as exc:
        raise ValidationProblem(
            "Nothing was uploaded under this object key.",
            errors=[field_error("object_key", "no such object")],
        ) from exc
    except _TooLarge as exc:
        raise ValidationProblem(
            f"The uploaded file is larger than {MAX_UPLOAD_BYTES} bytes.",
            errors=[field_error("object_key", "too large")],
        ) from exc
    if info.size == 0:
        await store.delete(kept)
        raise ValidationProblem(
            "The uploaded file is empty.", errors=[field_error("object_key", "zero-length")]
        )
    assert info.sha256 is not None
    return info.sha256, info.size


@dataclass(frozen=True)
class TakenFile:
    """An uploaded document copied into the record's key space and hashed, not yet recorded."""

    upload_key: str
    kept: str
    sha256: str
    size: int


async def take_document(
    sessionmaker: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    actor: Principal,
    tender_id: uuid.UUID,
    key: str,
    now: datetime,
) -> TakenFile:
    """Take an uploaded document into the record: copy it, hashing as it streams, to a key no upload grant
    names, so the file on record can never be overwritten through the grant it came by. The copy runs
    outside any database transaction, so a large file holds up no other writer (on SQLite every write
    transaction excludes every other), and is claimed first, in a transaction of its own, so that if it is
    never recorded the sweeper removes it. The key must be one granted to the caller's agency for this
    tender. The caller records it (`register_document`, `clarify`, `record_contract`) in its own
    transaction and drops it (`drop_document`) if that does not commit."""
    async with transaction(sessionmaker, read_only=True) as session:
        tender = await load_tender(session, tender_id)
        if not can_manage(actor, tender):
            raise NotFound("No such tender.")
        code = tender.code
    check_prefix(key, f"tenders/{code}/documents/{actor.organisation_id}/")
    try:
        uploaded = await store.stat(key)
    except InvalidObjectKey as exc:
        raise ValidationProblem(
            "Nothing was uploaded under this object key.",
            errors=[field_error("object_key", "no such object")],
        ) from exc
    kept = f"records/{code}/documents/{uuid.uuid4().hex}"
    await uploads.claim_copy(
        sessionmaker,
        key=kept,
        owner_id=actor.organisation_id,
        scope_id=tender_id,
        max_bytes=min(uploaded.size, MAX_UPLOAD_BYTES) if uploaded is not None else MAX_UPLOAD_BYTES,
        now=now,
    )
    try:
        sha256, size = await copy_upload(store, key, kept)
    except BaseException:
        await uploads.drop_copy(sessionmaker, store, kept)
        raise
    return TakenFile(key, kept, sha256, size)


async def drop_document(
    sessionmaker: async_sessionmaker[AsyncSession], store: ObjectStore, taken: TakenFile | None
) -> None:
    """Remove a taken document that will not be recorded (refused, a duplicate, or lost a race)."""
    if taken is not None:
        await uploads.drop_copy(sessionmaker, store, taken.kept)


async def register_document(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.DocumentRegister,
    taken: TakenFile,
    now: datetime,
    *,
    kind: str | None = None,
) -> Document:
    """Record an uploaded file, taken by `take_document`, as a document of the tender, with the hash the
    server computed."""
    tender = await tender_for_agency(session, actor, tender_id)
    kind = kind or data.kind
    if kind in PUBLIC_DOCUMENT_KINDS and tender.status != TenderStatus.DRAFT:
        raise Conflict(
            "Tender documents are fixed at publication; amend them with a clarification, which carries "
            "the amended file, publishes a correction notice and tells every holder (W-02).",
            rule="W-02",
        )
    return await record_document(session, actor, tender, kind, data.filename, taken, now)


async def record_document(
    session: AsyncSession,
    actor: Principal,
    tender: Tender,
    kind: str,
    filename: str,
    taken: TakenFile,
    now: datetime,
) -> Document:
    """Record a taken document: its copy turns kept and its upload is closed and discarded after commit.
    An upload is recorded once: a second registration of it (a retry, a concurrent duplicate) is refused,
    and the caller drops the copy it took."""
    check_prefix(taken.upload_key, f"tenders/{tender.code}/documents/{actor.organisation_id}/")
    if await uploads.open_upload(session, taken.upload_key, actor.organisation_id) is None:
        raise Conflict("This upload is already registered.", errors=[field_error("object_key", "registered")])
    if not await uploads.keep_copy(session, taken.kept, taken.size):
        raise Conflict(
            "The uploaded file was removed before it could be recorded; upload it again.",
            errors=[field_error("object_key", "expired")],
        )
    await discard_upload(session, taken.upload_key, now)
    return await _add_document(
        session, actor, tender, kind, filename, taken.kept, taken.sha256, taken.size, now
    )


async def _add_document(
    session: AsyncSession,
    actor: Principal,
    tender: Tender,
    kind: str,
    filename: str,
    kept: str,
    sha256: str,
    size: int,
    now: datetime,
) -> Document:
    document = Document(
        tender_id=tender.id,
        kind=kind,
        filename=filename,
        object_key=kept,
        sha256=sha256,
        size=size,
        uploaded_by=actor.user_id,
        uploaded_at=now,
    )
    session.add(document)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "This upload is already registered.", errors=[field_error("object_key", "registered")]
        ) from exc
    await accounts.record(
        session, actor, "document.register", "document", document.id, now, sha256=sha256, kind=kind
    )
    return document


async def list_documents(session: AsyncSession, tender_id: uuid.UUID, kinds: Sequence[str]) -> list[Document]:
    """Documents of a tender of the given kinds, oldest first."""
    rows = await session.scalars(
        select(Document)
        .where(Document.tender_id == tender_id, Document.kind.in_(kinds))
        .order_by(Document.uploaded_at)
    )
    return list(rows)


PUBLIC_DOCUMENT_KINDS = ("tender_documents", "amendment", "drawings", "bill_of_quantities")


async def obtain_documents(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    store: ObjectStore,
    now: datetime,
    *,
    virtual_prefix: str = "9558",
) -> list[schemas.DocumentRead]:
    """A bidder obtains the tender documents (获取招标文件): registered as a holder, given download links,
    and given a deposit sub-account with its own virtual account number (虚拟子账号) for each lot."""
    org = await accounts.require_active(session, actor)
    tender = await visible_tender(session, actor, tender_id)
    if tender.status != TenderStatus.TENDERING:
        raise Conflict(f"Documents are issued only while the tender is tendering; it is {tender.status}.")
    profile = profile_for(tender.sector, tender.method)
    if profile.invitation_only and str(actor.organisation_id) not in {
        str(org) for org in tender.invited_organisations
    }:
        raise Forbidden(
            f"{profile.title} admits only the suppliers the purchaser invited.",
            rule="G-01",
        )
    # Insert-if-missing: two clicks at once must not both insert (nor fail on the unique constraint).
    holder = {
        "id": uuid.uuid4(),
        "tender_id": tender.id,
        "organisation_id": actor.organisation_id,
        "obtained_at": now,
    }
    inserted = await session.execute(upsert_ignore(session, DocumentAccess, holder))
    if getattr(inserted, "rowcount", 0) == 1:
        await accounts.record(
            session, actor, "documents.obtain", "tender", tender.id, now, sealed_tender=tender.id
        )
    await subaccounts.open_deposits(
        session,
        tender.id,
        org.id,
        [
            subaccounts.LotDeposit(lot.id, f"{tender.code}/{lot.number}/{org.credit_code}", lot.deposit_fen)
            for lot in await lots_of(session, tender.id)
        ],
        virtual_prefix,
        now,
    )
    out = []
    for d in await list_documents(session, tender.id, PUBLIC_DOCUMENT_KINDS):
        url = await store.presigned_get_url(d.object_key, DOWNLOAD_GRANT_TTL)
        out.append(schemas.DocumentRead(d.id, d.kind, d.filename, d.sha256, d.size, d.uploaded_at, url))
    return out


async def clarify(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.ClarificationCreate,
    now: datetime,
    amended_documents: TakenFile | None = None,
) -> tuple[Clarification, int]:
    """Issue a clarification or amendment, optionally carrying amended documents (taken by `take_document`
    from `data.amended_documents`); if it may affect bids and fewer than 15 days remain, the deadline moves
    out to keep 15 (W-02). Everyone who obtained the documents is told."""
    tender = await tender_for_agency(session, actor, tender_id)
    if tender.status not in (TenderStatus.PUBLISHED, TenderStatus.TENDERING):
        raise Conflict(f"Clarifications are issued before the deadline; the tender is {tender.status}.")
    if now >= tender.bid_deadline:
        raise RuleViolation(
            "W-08",
            "The bid deadline has passed: the bids are to be opened as they stand, and the documents can "
            "no longer be clarified.",
            bid_deadline=tender.bid_deadline.isoformat(),
        )
    profile = profile_for(tender.sector, tender.method)
    cal = await working_calendar(session)
    before = tender.bid_deadline
    if data.affects_bids:
        earliest = cal.earliest_after(
            local_date(now), profile.clarification_notice_days, profile.deadline_in_working_days
        )
        if local_date(tender.bid_deadline) < earliest:
            tender.bid_deadline = same_time_on(earliest, tender.bid_deadline)
            tender.next_check = next_check_of(tender)
            await venues.move_opening(session, tender)
    objection = None
    if data.objection_id is not None:
        objection = await session.get(Objection, data.objection_id)
        if objection is None or objection.tender_id != tender.id:
            raise ValidationProblem(
                "No such objection on this tender.", errors=[field_error("objection_id", "unknown")]
            )
    number = (
        await session.scalar(
            select(func.coalesce(func.max(Clarification.number), 0)).where(
                Clarification.tender_id == tender.id
            )
        )
        or 0
    ) + 1
    clarification = Clarification(
        tender_id=tender.id,
        number=number,
        text=data.text,
        affects_bids=data.affects_bids,
        issued_at=now,
        deadline_before=before,
        deadline_after=tender.bid_deadline,
        objection_id=data.objection_id,
    )
    session.add(clarification)
    await session.flush()
    amended = None
    if data.amended_documents is not None:
        assert (
            amended_documents is not None
            and amended_documents.upload_key == data.amended_documents.object_key
        )
        amended = await record_document(
            session, actor, tender, "amendment", data.amended_documents.filename, amended_documents, now
        )
    moved = tender.bid_deadline != before
    # W-02 in works; procurement's periods (87号令 27, 74号令 10) have no rule id of their own
    rule = profile.rule("clarification_notice_days")
    await accounts.record(
        session,
        actor,
        "tender.clarify",
        "tender",
        tender.id,
        now,
        number=number,
        deadline_moved=moved,
        rule=rule if moved else None,
    )
    body: dict[str, Any] = {"number": number, "text": data.text, "affects_bids": data.affects_bids}
    if amended is not None:
        body["amended_documents"] = {
            "filename": amended.filename,
            "sha256": amended.sha256,
            "size": amended.size,
        }
    if moved:
        body["bid_deadline"] = {
            "before": before.isoformat(),
            "after": tender.bid_deadline.isoformat(),
            "rule": rule,
            "days": profile.clarification_notice_days,
        }
    previous = await session.scalar(
        select(Notice)
        .where(
            Notice.tender_id == tender.id,
            Notice.superseded_by_id.is_(None),
            Notice.kind.in_(("tender_notice", "correction")),
        )
        .order_by(Notice.published_at.desc())
        .limit(1)
    )
    await publish_notice(
        session, tender, "correction", f"{tender.title} 更正公告 第{number}号", body, now, supersedes=previous
    )
    message = f"{tender.code}: clarification {number} issued."
    if moved:
        message += f" The bid deadline moved to {tender.bid_deadline.astimezone(SHANGHAI).isoformat()}" + (
            f" ({rule})." if rule else "."
        )
    notified = await notify_holders(session, tender, "tender.clarified", message, now)
    if objection is not None and objection.answered_at is None:
        objection.answer = data.text
        objection.answered_at = now
        await resume_if_clear(session, tender, now)
    return clarification, notified


async def discard_upload(session: AsyncSession, key: str, now: datetime) -> None:
    """An upload that was taken: close its claim and remove it after commit."""
    await uploads.close_upload(session, key)
    outbox.enqueue(session, "trading.discard_upload", {"key": key}, now)
