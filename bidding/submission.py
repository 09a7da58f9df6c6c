"""A bid from upload to receipt: upload grants for the sealed envelope, the submission (idempotent, before
the deadline only, W-07), replacement and withdrawal (W-05, W-06), receipts that verify offline, and the
bids each party may list."""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts import service as accounts
from accounts.security import Principal
from bidding import custodians, envelope, envelopes, logs, opening_lines, opening_record
from bidding import schemas as bid_schemas
from bidding.models import BidEvent, TechnicalEnvelope
from escrow import refunds
from rules.calendar import (
    SHANGHAI,
    local_date,
)
from rules.profiles import (
    profile_for,
)
from rules.schedule import working_calendar
from storage import outbox, uploads
from storage.objects import (
    InvalidObjectKey,
    InvalidUpload,
    ObjectStore,
    UploadNotFound,
)
from storage.problems import (
    Conflict,
    NotFound,
    RuleViolation,
    ValidationProblem,
    field_error,
)
from storage.signing import LogSigner
from trading import schemas
from trading.documents import (
    MAX_UPLOAD_BYTES,
    UPLOAD_GRANT_TTL,
    UPLOAD_QUOTA_BYTES,
    check_prefix,
    check_quota,
    check_upload_size,
    copy_upload,
    discard_upload,
    upload_grant,
    upload_key_for,
)
from trading.lifecycle import (
    TenderStatus,
)
from trading.models import (
    Bid,
    DocumentAccess,
    Lot,
    Tender,
)
from trading.tenders import load_tender, lots_of, oversees, shamir_of, visible_tender

log = logging.getLogger("ggzy.trading")

# Envelopes from this size go up in parts of PART_SIZE (each ≥ the S3 minimum but the last), resumable.
MULTIPART_FROM = 64 * 1024 * 1024
PART_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True)
class ClientSeen:
    """Where a submission came from, kept for the W-18 signals at the opening."""

    address: str | None = None
    device: str | None = None
    user_agent: str | None = None


async def bid_upload(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: schemas.UploadRequest,
    store: ObjectStore,
    now: datetime,
    quota: int = UPLOAD_QUOTA_BYTES,
) -> schemas.UploadGrant:
    """Where a bidder may upload its sealed envelope: one presigned upload, or for a large envelope a
    multipart upload whose parts are retried one by one and can be resumed (`bid_upload_progress`). Either
    way the store holds the bidder to the declared size: a bounded number of parts, each of its size."""
    tender = await _bidding_tender(session, actor, tender_id, now)
    key = upload_key_for(tender, "bids", actor.organisation_id, data.filename)
    if data.size < MULTIPART_FROM:
        return await upload_grant(
            session,
            store,
            key,
            data.size,
            now,
            owner_id=actor.organisation_id,
            tender_id=tender.id,
            quota=quota,
        )
    check_upload_size(data.size)
    await check_quota(session, actor.organisation_id, tender.id, data.size, now, quota)
    upload_id = await store.start_multipart(key, content_type="application/age")
    uploads.claim_upload(
        session,
        key=key,
        owner_id=actor.organisation_id,
        scope_id=tender.id,
        max_bytes=data.size,
        now=now,
        expires_at=now + UPLOAD_GRANT_TTL,
        upload_id=upload_id,
    )
    parts = await _part_urls(store, key, upload_id, data.size)
    url = parts[0].url
    return schemas.UploadGrant(
        key, url, "PUT", now + UPLOAD_GRANT_TTL, data.size, upload_id, PART_SIZE, parts
    )


def part_sizes(size: int) -> list[int]:
    """The size of each part of a multipart upload of `size` bytes: PART_SIZE each, the rest last."""
    count = max(1, -(-size // PART_SIZE))
    return [PART_SIZE] * (count - 1) + [size - PART_SIZE * (count - 1)]


async def _part_urls(store: ObjectStore, key: str, upload_id: str, size: int) -> list[schemas.PartUrl]:
    return [
        schemas.PartUrl(
            n,
            await store.presigned_part_url(key, upload_id, n, UPLOAD_GRANT_TTL, max_bytes=part),
            part,
        )
        for n, part in enumerate(part_sizes(size), start=1)
    ]


async def bid_upload_progress(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    object_key: str,
    upload_id: str,
    size: int,
    store: ObjectStore,
    now: datetime,
) -> schemas.UploadProgress:
    """The parts of one of the caller's multipart uploads received so far, and fresh part URLs to resume."""
    tender = await _bidding_tender(session, actor, tender_id, now, lock=False)
    if not object_key.startswith(f"tenders/{tender.code}/bids/{actor.organisation_id}/"):
        raise NotFound("No such upload.")
    check_upload_size(size)
    try:
        received = await store.list_parts(object_key, upload_id)
    except (UploadNotFound, InvalidObjectKey) as exc:
        raise NotFound("No such upload.") from exc
    return schemas.UploadProgress(
        object_key,
        upload_id,
        PART_SIZE,
        [schemas.ReceivedPart(p.number, p.size, p.etag) for p in received],
        await _part_urls(store, object_key, upload_id, size),
        now + UPLOAD_GRANT_TTL,
    )


async def _complete_upload(store: ObjectStore, key: str, upload_id: str) -> None:
    """Assemble a multipart upload's parts into the object (before it is taken on record)."""
    try:
        await store.complete_multipart(key, upload_id)
    except (UploadNotFound, InvalidObjectKey) as exc:
        if await store.stat(key) is None:
            raise ValidationProblem(
                "No such multipart upload for this object key.",
                errors=[field_error("upload_id", "unknown upload")],
            ) from exc
    except InvalidUpload as exc:
        raise ValidationProblem(
            f"The upload cannot be completed: {exc}", errors=[field_error("upload_id", "incomplete parts")]
        ) from exc


async def _bids_closed(session: AsyncSession, tender: Tender, now: datetime) -> bool:
    """Whether bids on `tender` are closed at `now`: by the clock, or by the closing. A request that arrived
    before the deadline but reaches the tender after the chronograph signed its closing head (its envelope
    was still being copied, or it waited for the tender's lock) is late like any other, since a bid event
    counts only if it is logged before the closing head."""
    return now >= tender.bid_deadline or (
        tender.status != TenderStatus.TENDERING and await logs.closing_of(session, tender.id) is not None
    )


async def _bidding_tender(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, now: datetime, *, lock: bool = True
) -> Tender:
    """The tender, if the caller may bid on it at `now` (late bids are refused under W-07, see
    `_bids_closed`)."""
    await accounts.require_active(session, actor)
    tender = await load_tender(session, tender_id, lock=lock)
    if tender.status == TenderStatus.DRAFT:
        raise NotFound("No such tender.")
    if await _bids_closed(session, tender, now):
        raise RuleViolation(
            "W-07",
            f"Bids closed at {tender.bid_deadline.astimezone(SHANGHAI).isoformat()}; late bids are refused.",
            bid_deadline=tender.bid_deadline.isoformat(),
        )
    if tender.status != TenderStatus.TENDERING:
        raise Conflict(f"The tender is {tender.status}; bids are accepted only while it is tendering.")
    holder = await session.scalar(
        select(DocumentAccess.id).where(
            DocumentAccess.tender_id == tender.id, DocumentAccess.organisation_id == actor.organisation_id
        )
    )
    if holder is None:
        raise Conflict("Obtain the tender documents before bidding.")
    return tender


def _leaf(
    event: str,
    tender: Tender,
    lot: Lot,
    credit_code: str,
    bid: Bid,
    now: datetime,
    technical: TechnicalEnvelope | None = None,
) -> dict[str, Any]:
    """A bid event's leaf; a bid of two envelopes (双信封) states both envelopes' hashes and sizes."""
    two = (
        {} if technical is None else {"technical_sha256": technical.sha256, "technical_size": technical.size}
    )
    return {
        **two,
        "event": event,
        "tender": tender.code,
        "lot": lot.number,
        "bidder": credit_code,
        "bid": str(bid.id),
        "sequence": bid.sequence,
        "envelope_sha256": bid.sha256,
        "size": bid.size,
        "submitted_at": bid.submitted_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "at": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


@dataclass(frozen=True)
class Submission:
    """Where a bidder's finalize may take its envelope from, as read before any copy: the tender and the
    key prefix its upload grants were issued under."""

    tender_id: uuid.UUID
    tender_code: str
    organisation_id: uuid.UUID
    shamir: int
    envelopes: int = 1

    @property
    def upload_prefix(self) -> str:
        return f"tenders/{self.tender_code}/bids/{self.organisation_id}/"


@dataclass(frozen=True)
class TakenEnvelope:
    """An uploaded envelope copied into the record's key space and hashed, not yet recorded."""

    upload_key: str
    kept: str
    sha256: str
    size: int
    header: envelope.Header


async def prepare_submission(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    now: datetime,
    data: bid_schemas.BidSubmit | None = None,
) -> Submission:
    """The checks a finalize makes before it copies anything (read only: no lock is taken)."""
    tender = await _bidding_tender(session, actor, tender_id, now, lock=False)
    if data is not None:
        check_envelope_count(tender, data)
    return Submission(tender.id, tender.code, actor.organisation_id, shamir_of(tender), tender.envelopes)


def check_envelope_count(tender: Tender, data: bid_schemas.BidSubmit) -> None:
    """A bid on a tender of two envelopes (双信封) is its technical and its commercial envelope, submitted
    together, two distinct files; a bid on a tender of one envelope is that one alone."""
    if tender.envelopes == 2 and data.technical is None:
        raise ValidationProblem(
            "Bids on this tender are two envelopes: submit the technical envelope with the commercial one.",
            errors=[field_error("technical", "required: this tender takes two envelopes")],
        )
    if tender.envelopes != 2 and data.technical is not None:
        raise ValidationProblem(
            "Bids on this tender are one envelope; there is no technical envelope to submit.",
            errors=[field_error("technical", "not for a tender of one envelope")],
        )
    if data.technical is not None and data.technical.object_key == data.object_key:
        raise ValidationProblem(
            "The technical and the commercial envelope are two files.",
            errors=[field_error("technical.object_key", "the commercial envelope's object")],
        )


async def take_envelope(
    sessionmaker: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    submission: Submission,
    data: bid_schemas.BidSubmit | bid_schemas.EnvelopeUpload,
    now: datetime,
) -> TakenEnvelope:
    """Complete the upload, copy it into the record's key space hashing it as it streams, and read its
    header — outside any database transaction, so a large envelope holds up no other writer (on SQLite
    every write transaction excludes every other). The copy is claimed first, in a transaction of its own,
    so if it is never recorded the sweeper removes it."""
    check_prefix(data.object_key, submission.upload_prefix)
    if data.upload_id is not None:
        await _complete_upload(store, data.object_key, data.upload_id)
    kept = f"records/{submission.tender_code}/bids/{uuid.uuid4().hex}"
    # Counted at the upload's size while it is copied (at most the cap: the copy stops there).
    try:
        uploaded = await store.stat(data.object_key)
    except InvalidObjectKey as exc:
        raise ValidationProblem(
            "Nothing was uploaded under this object key.",
            errors=[field_error("object_key", "no such object")],
        ) from exc
    await uploads.claim_copy(
        sessionmaker,
        key=kept,
        owner_id=submission.organisation_id,
        scope_id=submission.tender_id,
        max_bytes=min(uploaded.size, MAX_UPLOAD_BYTES) if uploaded is not None else MAX_UPLOAD_BYTES,
        now=now,
    )
    try:
        sha256, size = await copy_upload(store, data.object_key, kept)
        if data.envelope_sha256 is not None and data.envelope_sha256 != sha256:
            raise ValidationProblem(
                "The uploaded envelope is not the one the client sealed (its SHA-256 differs); upload it again.",
                errors=[field_error("envelope_sha256", "does not match the upload")],
            )
        try:
            header = await envelopes.read_stored_header(store, kept)
        except envelope.EnvelopeError as exc:
            raise envelopes.envelope_problem(exc, "object_key") from exc
    except BaseException:
        await uploads.drop_copy(sessionmaker, store, kept)
        raise
    return TakenEnvelope(data.object_key, kept, sha256, size, header)


async def drop_envelope(
    sessionmaker: async_sessionmaker[AsyncSession], store: ObjectStore, taken: TakenEnvelope
) -> None:
    """Remove a taken envelope that will not be recorded (refused, replayed, or lost a race)."""
    await uploads.drop_copy(sessionmaker, store, taken.kept)


async def discard_retried_upload(session: AsyncSession, actor: Principal, key: str, now: datetime) -> None:
    """A retried submission was answered from its first answer: the caller's fresh upload it named (if
    it is one of the caller's open uploads) will never be taken, so it is removed after commit."""
    claim = await uploads.open_upload(session, key, actor.organisation_id)
    if claim is None:
        return
    await uploads.close_upload(session, key)
    outbox.enqueue(session, "trading.discard_upload", {"key": key, "upload_id": claim.upload_id}, now)


async def submit_bid(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    data: bid_schemas.BidSubmit,
    taken: TakenEnvelope,
    signer: LogSigner,
    now: datetime,
    seen: ClientSeen = ClientSeen(),
    technical: TakenEnvelope | None = None,
) -> tuple[Bid, bid_schemas.Receipt]:
    """Finalise a bid whose envelope was taken (`take_envelope`): check it is an age envelope to the bidder
    and to this tender's custodians, record arrival on the server clock, log it and issue the receipt. A
    second bid on the same lot replaces the first (W-05); after the deadline: W-07. Only database work
    happens here, under the tender's lock; the caller removes the copy if this does not commit. On a
    tender of two envelopes (双信封) the technical envelope is checked and kept the same way, and the one
    receipt covers both."""
    tender = await _bidding_tender(session, actor, tender_id, now)
    check_envelope_count(tender, data)
    await envelopes.check_header(session, taken.header, tender.id, tender.code, shamir_of(tender), taken.size)
    if technical is not None:
        await _check_technical(session, tender, taken, technical)
    lot = await session.get(Lot, data.lot_id)
    if lot is None or lot.tender_id != tender.id:
        raise ValidationProblem("No such lot in this tender.", errors=[field_error("lot_id", "unknown lot")])
    if not await uploads.keep_copy(session, taken.kept, taken.size):
        raise Conflict(
            "The uploaded envelope was removed before it could be recorded; upload it again and resubmit.",
            errors=[field_error("object_key", "expired")],
        )
    await discard_upload(session, taken.upload_key, now)
    if technical is not None:
        if not await uploads.keep_copy(session, technical.kept, technical.size):
            raise Conflict(
                "The uploaded technical envelope was removed before it could be recorded; upload it again.",
                errors=[field_error("technical.object_key", "expired")],
            )
        await discard_upload(session, technical.upload_key, now)
    kept, sha256, size = taken.kept, taken.sha256, taken.size
    header = taken.header
    org = await accounts.get_organisation(session, actor.organisation_id)
    previous = await session.scalar(
        select(Bid).where(
            Bid.lot_id == lot.id, Bid.organisation_id == actor.organisation_id, Bid.status == "submitted"
        )
    )
    if previous is not None:
        previous.status = "replaced"
        previous.withdrawn_at = now
    # Numbered per bidder: a tender-wide number would tell each bidder how many others have bid.
    sequence = (
        await session.scalar(
            select(func.coalesce(func.max(Bid.sequence), 0)).where(
                Bid.tender_id == tender.id, Bid.organisation_id == actor.organisation_id
            )
        )
        or 0
    ) + 1
    bid = Bid(
        tender_id=tender.id,
        lot_id=lot.id,
        organisation_id=actor.organisation_id,
        status="submitted",
        object_key=kept,
        sha256=sha256,
        size=size,
        submitted_at=now,
        sequence=sequence,
        replaces_id=previous.id if previous else None,
    )
    session.add(bid)
    await session.flush()
    envelopes.add_envelope(
        session,
        bid_id=bid.id,
        tender_id=tender.id,
        header=header,
        client_address=seen.address,
        client_device=seen.device,
        user_agent=seen.user_agent,
    )
    second = None
    if technical is not None:
        second = envelopes.add_technical(session, bid_id=bid.id, tender_id=tender.id, taken=technical)
    event = "replace" if previous else "submit"
    # Logged in the bidder's own log of the tender: its receipt counts no one else's bids (W-20).
    log = await logs.log_bid_event(
        session,
        signer,
        _leaf(event, tender, lot, org.credit_code, bid, now, second),
        tender_id=tender.id,
        tender_code=tender.code,
        organisation_id=actor.organisation_id,
        bid_id=bid.id,
        now=now,
    )
    await accounts.record(
        session,
        actor,
        "bid.replace" if previous else "bid.submit",
        "bid",
        bid.id,
        now,
        sealed_tender=tender.id,
        sha256=sha256,
        lot=lot.number,
        log_index=log["leaf_index"],
    )
    await refunds.on_bid(session, lot.id, actor.organisation_id, now)
    return bid, _receipt(tender, lot, org.credit_code, bid, event, log, second)


async def _check_technical(
    session: AsyncSession, tender: Tender, commercial: TakenEnvelope, technical: TakenEnvelope
) -> None:
    """The technical envelope: an age envelope to the bidder and this tender's custodians like the
    commercial one, and another file than it."""
    try:
        await envelopes.check_header(
            session, technical.header, tender.id, tender.code, shamir_of(tender), technical.size
        )
    except ValidationProblem as exc:
        raise ValidationProblem(
            f"The technical envelope was refused: {exc.detail}",
            errors=[field_error("technical.object_key", "not a sealed envelope for this tender")],
        ) from exc
    if technical.sha256 == commercial.sha256:
        raise ValidationProblem(
            "The technical and the commercial envelope are the same file; seal each on its own.",
            errors=[field_error("technical.object_key", "the commercial envelope again")],
        )


def _receipt(
    tender: Tender,
    lot: Lot,
    credit_code: str,
    bid: Bid,
    event: str,
    log: dict[str, Any],
    technical: TechnicalEnvelope | None = None,
) -> bid_schemas.Receipt:
    return bid_schemas.Receipt(
        bid.id,
        tender.code,
        lot.number,
        credit_code,
        bid.sha256,
        bid.size,
        bid.submitted_at,
        bid.sequence,
        event,
        log,
        technical.sha256 if technical is not None else None,
        technical.size if technical is not None else None,
    )


async def own_bid(session: AsyncSession, actor: Principal, tender_id: uuid.UUID, bid_id: uuid.UUID) -> Bid:
    bid = await session.get(Bid, bid_id)
    if bid is None or bid.tender_id != tender_id or bid.organisation_id != actor.organisation_id:
        raise NotFound("No such bid.")
    return bid


async def withdraw_bid(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    bid_id: uuid.UUID,
    signer: LogSigner,
    now: datetime,
) -> tuple[Bid, bid_schemas.Receipt]:
    """Withdraw a bid before the deadline (撤回, W-05), logged with a receipt of its own; after the deadline
    the bid stands and the deposit may be kept (W-06)."""
    tender = await load_tender(session, tender_id, lock=True)
    bid = await own_bid(session, actor, tender.id, bid_id)
    if await _bids_closed(session, tender, now):
        raise RuleViolation(
            "W-06",
            "The bid deadline has passed: a bid can no longer be withdrawn, and its deposit may be kept.",
        )
    if bid.status != "submitted":
        raise Conflict(f"This bid is {bid.status}.")
    bid.status = "withdrawn"
    bid.withdrawn_at = now
    profile = profile_for(tender.sector, tender.method)
    cal = await working_calendar(session)
    # P-01/P-02: counted from the day after the withdrawal, moved past rest days like every period.
    refund_due = cal.period_end(local_date(now), profile.withdrawal_refund_days)
    await refunds.on_withdrawal(session, bid.lot_id, bid.organisation_id, "W-05", local_date(now), cal, now)
    lot = await session.get(Lot, bid.lot_id)
    assert lot is not None
    org = await accounts.get_organisation(session, bid.organisation_id)
    # Both envelopes of a bid of two go with it: the withdrawal's leaf names them both.
    second = await envelopes.technical_of(session, bid.id)
    log = await logs.log_bid_event(
        session,
        signer,
        _leaf("withdraw", tender, lot, org.credit_code, bid, now, second),
        tender_id=tender.id,
        tender_code=tender.code,
        organisation_id=bid.organisation_id,
        bid_id=bid.id,
        now=now,
    )
    await accounts.record(
        session,
        actor,
        "bid.withdraw",
        "bid",
        bid.id,
        now,
        sealed_tender=tender.id,
        rule="W-05",
        deposit_refund_due=refund_due.isoformat(),
        log_index=log["leaf_index"],
    )
    return bid, _receipt(tender, lot, org.credit_code, bid, "withdraw", log, second)


async def list_bids(session: AsyncSession, actor: Principal, tender_id: uuid.UUID) -> list[Bid]:
    """A bidder sees its own bids; the agency and supervisors see all of them only once bids are opened
    (who bid stays secret until the opening, 招标投标法 22)."""
    tender = await visible_tender(session, actor, tender_id)
    query = in_arrival_order(select(Bid).where(Bid.tender_id == tender.id))
    sees_all = oversees(actor, tender)
    opened = (
        tender.opened_at is not None
    )  # a cancelled or failed tender never opened: its bidders stay secret
    if not (sees_all and opened):
        query = query.where(Bid.organisation_id == actor.organisation_id)
    return list(await session.scalars(query))


async def envelope_states(
    session: AsyncSession, bids: Sequence[Bid]
) -> dict[uuid.UUID, tuple[str, str | None]]:
    """Each bid's envelope status and opening result."""
    rows = await envelopes.envelopes_of(session, bids[0].tender_id) if bids else []
    return {row.bid_id: (row.status, row.result) for row in rows}


async def receipt_for(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    bid_id: uuid.UUID,
    signer: LogSigner,
) -> bid_schemas.Receipt:
    """The receipt of one of the caller's bids (its submission, or its withdrawal once withdrawn)."""
    bid = await own_bid(session, actor, tender_id, bid_id)
    tender = await load_tender(session, tender_id)
    lot = await session.get(Lot, bid.lot_id)
    org = await accounts.get_organisation(session, bid.organisation_id)
    assert lot is not None
    log = await logs.receipt_of_bid(session, signer, bid.id)
    second = await envelopes.technical_of(session, bid.id)
    return _receipt(tender, lot, org.credit_code, bid, log["leaf"]["event"], log, second)


async def closing_record(
    session: AsyncSession, actor: Principal | None, tender_id: uuid.UUID, signer: LogSigner
) -> dict[str, Any]:
    """The tender's signed closing head (public once bids have closed)."""
    tender = await visible_tender(session, actor, tender_id)
    row = await logs.closing_of(session, tender.id)
    if row is None:
        raise NotFound("Bids on this tender have not closed yet.")
    return logs.closing_json(row, tender.code, signer)


async def signed_opening_record(
    session: AsyncSession, actor: Principal | None, tender_id: uuid.UUID, signer: LogSigner
) -> dict[str, Any]:
    """The opening record (开标记录) signed with the platform's log key, published once the opening has
    closed (`bidding.opening_record`): the closing record with its custody statement, each standing
    envelope's header and result, and each custody envelope's releases with their proofs and its cause."""
    tender = await visible_tender(session, actor, tender_id)
    closing = await logs.closing_of(session, tender.id)
    still_opening = (TenderStatus.OPENING, TenderStatus.TECHNICAL_EVALUATION, TenderStatus.COMMERCIAL_OPENING)
    if closing is None or tender.opened_at is None or tender.status in still_opening:
        raise NotFound("The signed opening record is published when the opening closes.")
    if closing.custody is None:
        raise NotFound(
            "This tender closed before opening records were signed; see its opening record notice."
        )
    standing = set(closing.envelopes)
    bids = [
        b
        for b in await session.scalars(in_arrival_order(select(Bid).where(Bid.tender_id == tender.id)))
        if b.sha256 in standing and b.status != "replaced"
    ]
    rows = {r.bid_id: r for r in await envelopes.envelopes_of(session, tender.id)}
    lots = {lot.id: lot.number for lot in await lots_of(session, tender.id)}
    roster = {c.position: c for c in await custodians.roster(session, tender.id)}
    items = await opening_lines.lines(session, bids, rows, lots, roster, "commercial")
    record: dict[str, Any] = {
        "v": opening_record.RECORD_VERSION,
        "kind": opening_record.RECORD_KIND,
        "tender": tender.code,
        "closing": logs.closing_json(closing, tender.code, signer),
        "envelopes": items,
        "key_id": signer.key_id,
    }
    if tender.envelopes == 2:
        technical = {r.bid_id: r for r in await envelopes.technicals_of(session, tender.id)}
        record["technical"] = await opening_lines.lines(session, bids, technical, lots, roster, "technical")
    record["signature"] = base64.b64encode(signer.sign(opening_record.record_message(record))).decode()
    return record


def _arrival() -> Any:
    """A bid's place in its tender's arrival order: the tender-log sequence of its submission (bids logged
    before tenders had logs of their own fall back to their submission instant, then their id), so bids
    submitted in the same instant still read out in the order the platform received them."""
    return select(func.min(BidEvent.seq)).where(BidEvent.bid_id == Bid.id).correlate(Bid).scalar_subquery()


def in_arrival_order(query: Any) -> Any:
    """`query` over Bid, ordered as the bids arrived (the opening record's and the evaluation's order)."""
    return query.order_by(Bid.submitted_at, _arrival().nulls_first(), Bid.id)


async def evaluable_bids(session: AsyncSession, tender_id: uuid.UUID) -> list[Bid]:
    """The opened, valid bids of the tender, in the order they were submitted."""
    rows = await session.scalars(
        in_arrival_order(
            select(Bid).where(
                Bid.tender_id == tender_id, Bid.status == "submitted", Bid.revealed_at.is_not(None)
            )
        )
    )
    return list(rows)
