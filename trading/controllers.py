"""HTTP routes of a works tender: parse, authorise, call the service, shape the answer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Annotated, Any, cast

import msgspec
from litestar import Controller, Request, Response, get, patch, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.guards import authenticated, public, requires
from accounts.security import Principal
from bidding import hall, opening, submission
from rules.calendar import ScheduleDict
from storage import http, idempotency
from storage.bounds import Cursor, Filter, IdempotencyKey, IfMatch, LastEventId, Limit, StreamAfter
from storage.clock import Clock
from storage.db import SINGLE_READ, transaction
from storage.objects import ObjectStore
from storage.openapi import refusal
from storage.problems import ValidationProblem, field_error
from storage.settings import Settings
from storage.signing import LogSigner
from trading import awards, chronograph, documents, notices, objections, responses, schemas, tenders
from trading.models import Award, Bid, Clarification, Complaint, Contract, Notice, Notification, Objection

AGENCY = requires("agency")
BIDDER = requires("bidder")


async def _tender_response(
    session: AsyncSession,
    tender: Any,
    status_code: int = 200,
    *,
    caller: Principal | None,
    now: datetime,
    rehearsal: bool = False,
) -> Response[schemas.TenderRead]:
    read = await tenders.tender_read(session, tender, caller, now)
    if rehearsal:  # its deadlines are a rehearsal's, on the rehearsal clock
        read = msgspec.structs.replace(read, rehearsal=True)
    return Response(read, status_code=status_code, headers={"ETag": http.etag(tender.version)})


def notice_read(n: Notice | Any) -> schemas.NoticeRead:
    """A notice, or a row of its columns, as the API shows it."""
    return schemas.NoticeRead(
        n.id,
        n.tender_id,
        n.tender_code,
        n.kind,
        n.sector,
        n.region_code,
        n.title,
        n.body,
        n.published_at,
        n.supersedes_id,
        n.superseded_by_id,
    )


def bid_read(
    b: Bid, envelope: tuple[str, str | None] | None = None, receipt: schemas.Receipt | None = None
) -> schemas.BidRead:
    return schemas.BidRead(
        b.id,
        b.tender_id,
        b.lot_id,
        b.organisation_id,
        b.status,
        b.sha256,
        b.size,
        b.submitted_at,
        b.sequence,
        b.withdrawn_at,
        b.declared_price_fen,
        b.duration_days,
        b.revealed_at,
        envelope[0] if envelope else None,
        envelope[1] if envelope else None,
        receipt,
        cast(schemas.BidRejection | None, opening.rejection_view(b)),
    )


def _seen(request: Request[Any, Any, Any]) -> submission.ClientSeen:
    """Where a submission came from (W-18): address, the client's device id header, its user agent."""
    client = request.client.host if request.client else None
    return submission.ClientSeen(
        address=client,
        device=request.headers.get("x-ggzy-device"),
        user_agent=request.headers.get("user-agent"),
    )


def objection_read(o: Objection, objector_shown: bool = True) -> schemas.ObjectionRead:
    return schemas.ObjectionRead(
        o.id,
        o.tender_id,
        o.organisation_id if objector_shown else None,
        o.subject,
        o.text,
        o.filed_at,
        o.answer_due,
        o.answer,
        o.answered_at,
    )


def clarification_read(c: Clarification) -> schemas.ClarificationRead:
    return schemas.ClarificationRead(
        c.id,
        c.number,
        c.text,
        c.affects_bids,
        c.issued_at,
        c.deadline_before,
        c.deadline_after,
        c.deadline_before != c.deadline_after,
    )


def award_read(a: Award) -> schemas.AwardRead:
    return schemas.AwardRead(
        a.id,
        a.lot_id,
        a.bid_id,
        a.organisation_id,
        a.price_fen,
        a.awarded_at,
        a.contract_due,
        a.status,
        a.declined_at,
        a.decline_reason,
    )


def complaint_read(c: Complaint) -> schemas.ComplaintRead:
    return schemas.ComplaintRead(
        c.id,
        c.tender_id,
        c.organisation_id,
        c.subject,
        c.known_on,
        c.text,
        c.filed_at,
        c.decision_due,
        c.decision,
        c.decision_text,
        c.decided_at,
    )


def contract_read(c: Contract) -> schemas.ContractRead:
    return schemas.ContractRead(
        c.id, c.award_id, c.price_fen, c.performance_security_fen, c.signed_on, c.late_reason, c.recorded_at
    )


class TenderController(Controller):
    """Tenders: drafting, publishing, the timeline, terminating and re-running."""

    path = "/api/v1/tenders"
    tags = ["trading"]

    @post("/", operation_id="create_tender", guards=[AGENCY])
    async def create(
        self, data: schemas.TenderCreate, principal: Principal, session: AsyncSession, clock: Clock
    ) -> Response[schemas.TenderRead]:
        """Save a new works tender as a draft."""
        tender = await tenders.create_tender(session, principal, data, clock.now())
        return await _tender_response(session, tender, 201, caller=principal, now=clock.now())

    @get("/", operation_id="list_tenders", guards=[public])
    async def list_tenders(
        self,
        session: AsyncSession,
        settings: Settings,
        clock: Clock,
        request_principal: Principal | None = None,
        status: Filter = None,
        mine: bool = False,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> responses.TenderPage:
        """Published tenders (and, with `mine=true`, the caller agency's own drafts), newest first."""
        rows, next_cursor = await tenders.list_tenders(
            session, request_principal, status=status, mine=mine, cursor=cursor, limit=limit
        )
        page: responses.TenderPage = {
            "items": [await tenders.tender_read(session, t, request_principal, clock.now()) for t in rows],
            "next_cursor": next_cursor,
        }
        if settings.rehearsal:
            page["rehearsal"] = True
        return page

    @get("/{tender_id:uuid}", operation_id="get_tender", guards=[public])
    async def get_one(
        self,
        tender_id: uuid.UUID,
        session: AsyncSession,
        settings: Settings,
        clock: Clock,
        request_principal: Principal | None = None,
    ) -> Response[schemas.TenderRead]:
        """One tender; drafts only for their agency. The ETag is the version to send back in If-Match;
        `allowed_actions` lists what the caller can ask of it now."""
        return await _tender_response(
            session,
            await tenders.visible_tender(session, request_principal, tender_id),
            caller=request_principal,
            now=clock.now(),
            rehearsal=settings.rehearsal,
        )

    @patch("/{tender_id:uuid}", operation_id="update_tender", guards=[AGENCY])
    async def update(
        self,
        tender_id: uuid.UUID,
        data: schemas.TenderUpdate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
        if_match: IfMatch = None,
    ) -> Response[schemas.TenderRead]:
        """Edit a draft (If-Match required)."""
        version = http.if_match(if_match, required=True)
        assert version is not None
        tender = await tenders.update_tender(session, principal, tender_id, data, version, clock.now())
        return await _tender_response(session, tender, caller=principal, now=clock.now())

    @post("/{tender_id:uuid}/publish", operation_id="publish_tender", guards=[AGENCY], status_code=200)
    async def publish(
        self,
        tender_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
        if_match: IfMatch = None,
    ) -> Response[schemas.TenderRead]:
        """Publish the tender notice; checks the timeline against W-01."""
        tender = await tenders.publish(
            session, principal, tender_id, http.if_match(if_match, required=False), clock.now()
        )
        return await _tender_response(session, tender, caller=principal, now=clock.now())

    @post("/{tender_id:uuid}/cancel", operation_id="cancel_tender", guards=[AGENCY], status_code=200)
    async def cancel(
        self,
        tender_id: uuid.UUID,
        data: schemas.CancelRequest,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> Response[schemas.TenderRead]:
        """Terminate the tender before the deadline (终止招标)."""
        return await _tender_response(
            session,
            await tenders.cancel(session, principal, tender_id, data.reason, clock.now()),
            caller=principal,
            now=clock.now(),
        )

    @post("/{tender_id:uuid}/retender", operation_id="retender", guards=[AGENCY])
    async def retender(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> Response[schemas.TenderRead]:
        """Create a new draft from a failed or terminated tender (重新招标, W-09)."""
        return await _tender_response(
            session,
            await tenders.retender(session, principal, tender_id, clock.now()),
            201,
            caller=principal,
            now=clock.now(),
        )

    @post("/{tender_id:uuid}/close-opening", operation_id="close_opening", guards=[AGENCY], status_code=200)
    async def close_opening(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> Response[schemas.TenderRead]:
        """Close the opening once every bid is open (otherwise the window's end closes it)."""
        return await _tender_response(
            session,
            await hall.close_opening(session, principal, tender_id, clock.now()),
            caller=principal,
            now=clock.now(),
        )

    @post("/{tender_id:uuid}/complete", operation_id="complete_tender", guards=[AGENCY], status_code=200)
    async def complete(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> Response[schemas.TenderRead]:
        """Close a contracted tender: the trade is complete and its record final (the agency, after the contract)."""
        return await _tender_response(
            session,
            await awards.complete(session, principal, tender_id, clock.now()),
            caller=principal,
            now=clock.now(),
        )


class DocumentController(Controller):
    """Tender documents, clarifications and objections."""

    path = "/api/v1/tenders/{tender_id:uuid}"
    tags = ["trading"]

    @post("/uploads", operation_id="request_document_upload", guards=[AGENCY])
    async def upload(
        self,
        tender_id: uuid.UUID,
        data: schemas.UploadRequest,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        clock: Clock,
        settings: Settings,
    ) -> schemas.UploadGrant:
        """A presigned upload of a document of the tender (documents, report, contract), capped at its size."""
        return await documents.document_upload(
            session, principal, tender_id, data, object_store, clock.now(), settings.upload_quota_bytes
        )

    @post("/documents", operation_id="register_document", guards=[AGENCY])
    async def register(
        self,
        tender_id: uuid.UUID,
        data: schemas.DocumentRegister,
        principal: Principal,
        sessionmaker: async_sessionmaker[AsyncSession],
        object_store: ObjectStore,
        clock: Clock,
    ) -> schemas.DocumentRead:
        """Record an uploaded file as a tender document; the server hashes it.

        The file is copied and hashed outside any transaction, then recorded in one short write transaction;
        a copy that is not recorded (a refusal, a duplicate) is removed."""
        now = clock.now()
        taken = await documents.take_document(
            sessionmaker, object_store, principal, tender_id, data.object_key, now
        )
        try:
            async with transaction(sessionmaker) as session:
                d = await documents.register_document(session, principal, tender_id, data, taken, now)
                return schemas.DocumentRead(d.id, d.kind, d.filename, d.sha256, d.size, d.uploaded_at)
        except BaseException:
            await documents.drop_document(sessionmaker, object_store, taken)
            raise

    @get("/documents", operation_id="list_documents", guards=[public])
    async def list_documents(
        self, tender_id: uuid.UUID, session: AsyncSession, request_principal: Principal | None = None
    ) -> list[schemas.DocumentRead]:
        """The tender's documents with their hashes (contents are obtained by bidders, below)."""
        tender = await tenders.visible_tender(session, request_principal, tender_id)
        return [
            schemas.DocumentRead(d.id, d.kind, d.filename, d.sha256, d.size, d.uploaded_at)
            for d in await documents.list_documents(session, tender.id, documents.PUBLIC_DOCUMENT_KINDS)
        ]

    @post("/documents/obtain", operation_id="obtain_documents", guards=[BIDDER], status_code=200)
    async def obtain(
        self,
        tender_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        clock: Clock,
        settings: Settings,
    ) -> list[schemas.DocumentRead]:
        """Obtain the tender documents: the bidder is registered as a holder, gets download links, and a
        deposit sub-account per lot (see `GET /api/v1/escrow/deposits`)."""
        return await documents.obtain_documents(
            session,
            principal,
            tender_id,
            object_store,
            clock.now(),
            virtual_prefix=settings.escrow_virtual_prefix,
        )

    @post("/clarifications", operation_id="issue_clarification", guards=[AGENCY])
    async def clarify(
        self,
        tender_id: uuid.UUID,
        data: schemas.ClarificationCreate,
        principal: Principal,
        sessionmaker: async_sessionmaker[AsyncSession],
        object_store: ObjectStore,
        clock: Clock,
    ) -> schemas.ClarificationRead:
        """Issue a clarification or amendment, with amended documents if any (W-02 moves the deadline).
        Amended documents are copied and hashed outside any transaction, as for `register_document`."""
        now = clock.now()
        amended = None
        if data.amended_documents is not None:
            key = data.amended_documents.object_key
            amended = await documents.take_document(
                sessionmaker, object_store, principal, tender_id, key, now
            )
        try:
            async with transaction(sessionmaker) as session:
                # How many hold the documents stays secret until the deadline, from the agency too (W-20).
                c, _holders = await documents.clarify(session, principal, tender_id, data, now, amended)
                return clarification_read(c)
        except BaseException:
            await documents.drop_document(sessionmaker, object_store, amended)
            raise

    @post("/objections", operation_id="file_objection", guards=[BIDDER])
    async def object_to(
        self,
        tender_id: uuid.UUID,
        data: schemas.ObjectionCreate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.ObjectionRead:
        """File an objection (异议) to the documents (W-03), the opening, or the candidates (W-12)."""
        return objection_read(
            await objections.file_objection(session, principal, tender_id, data, clock.now())
        )

    @get("/objections", operation_id="list_objections", guards=[authenticated])
    async def objections(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> list[schemas.ObjectionRead]:
        """Objections on the tender (a bidder sees its own); before the deadline only the objector is named."""
        return [
            objection_read(o, shown)
            for o, shown in await objections.list_objections(session, principal, tender_id)
        ]

    @post(
        "/objections/{objection_id:uuid}/answer",
        operation_id="answer_objection",
        guards=[AGENCY],
        status_code=200,
    )
    async def answer(
        self,
        tender_id: uuid.UUID,
        objection_id: uuid.UUID,
        data: schemas.ObjectionAnswer,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.ObjectionRead:
        """Answer an objection; a paused step resumes."""
        return objection_read(
            await objections.answer_objection(session, principal, tender_id, objection_id, data, clock.now())
        )


async def _replayed(
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    data: schemas.BidSubmit,
    stored: idempotency.StoredAnswer,
    now: Any,
) -> Response[Any]:
    """The first answer to a retried submission. An upload the retry made afresh is removed: nothing will
    ever take it (only the caller's own open uploads are)."""
    async with transaction(sessionmaker) as session:
        await submission.discard_retried_upload(session, principal, data.object_key, now)
    return Response(stored.body, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"})


class BidController(Controller):
    """Bids: upload, submit with a receipt, replace, withdraw, open at the opening."""

    path = "/api/v1/tenders/{tender_id:uuid}/bids"
    tags = ["bidding"]

    @post("/uploads", operation_id="request_bid_upload", guards=[BIDDER])
    async def upload(
        self,
        tender_id: uuid.UUID,
        data: schemas.UploadRequest,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        clock: Clock,
        settings: Settings,
    ) -> schemas.UploadGrant:
        """A presigned upload of the bid file, capped at its declared size."""
        return await submission.bid_upload(
            session, principal, tender_id, data, object_store, clock.now(), settings.upload_quota_bytes
        )

    @get(
        "/uploads/{upload_id:str}",
        operation_id="bid_upload_progress",
        guards=[BIDDER],
        responses={
            409: refusal("The tender takes no bids now, or the caller has not obtained its documents")
        },
    )
    async def upload_progress(
        self,
        tender_id: uuid.UUID,
        upload_id: Annotated[str, Parameter(max_length=200)],
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        clock: Clock,
        object_key: Annotated[str, Parameter(query="object_key", min_length=1, max_length=512)],
        size: Annotated[int, Parameter(query="size", ge=1, le=2**34)],
    ) -> schemas.UploadProgress:
        """A multipart upload's parts received so far, with fresh part URLs: resume where it stopped."""
        return await submission.bid_upload_progress(
            session, principal, tender_id, object_key, upload_id, size, object_store, clock.now()
        )

    @post("/", operation_id="submit_bid", guards=[BIDDER])
    async def submit(
        self,
        tender_id: uuid.UUID,
        data: schemas.BidSubmit,
        principal: Principal,
        sessionmaker: async_sessionmaker[AsyncSession],
        object_store: ObjectStore,
        signer: LogSigner,
        clock: Clock,
        request: Request[Any, Any, Any],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[schemas.Receipt]:
        """Submit (or replace) a sealed bid for a lot; answers the receipt (transparency-log leaf, inclusion
        proof, signed tree head). Needs an Idempotency-Key.

        Three steps, so that copying and hashing an envelope of up to 512 MiB holds no write transaction
        (on SQLite one would hold up every other writer): the checks, read only; the copy, outside any
        transaction; the record, in one short write transaction. A copy that is not recorded is removed."""
        key = idempotency.check_key(idempotency_key)
        scope = f"submit_bid:{principal.user_id}:{tender_id}"
        identity = msgspec.to_builtins(data)
        if data.envelope_sha256 is not None:
            identity.pop("object_key")  # the same envelope, uploaded again on a retry
            identity.pop("upload_id")
        digest = idempotency.fingerprint(identity)
        now = clock.now()
        async with transaction(sessionmaker, read_only=True) as session:
            stored = await idempotency.replay(session, scope, key, digest)
            if stored is None:
                prepared = await submission.prepare_submission(session, principal, tender_id, now)
        if stored is not None:
            return await _replayed(sessionmaker, principal, data, stored, now)
        taken = await submission.take_envelope(sessionmaker, object_store, prepared, data, now)
        try:
            async with transaction(sessionmaker) as session:
                stored = await idempotency.replay(session, scope, key, digest)
                if stored is None:
                    _bid, receipt = await submission.submit_bid(
                        session, principal, tender_id, data, taken, signer, now, _seen(request)
                    )
                    body = msgspec.to_builtins(receipt)
                    await idempotency.remember(session, scope, key, digest, 201, body, now)
        except BaseException:
            await submission.drop_envelope(sessionmaker, object_store, taken)
            raise
        if stored is not None:  # the same submission, recorded meanwhile by a concurrent retry
            await submission.drop_envelope(sessionmaker, object_store, taken)
            return await _replayed(sessionmaker, principal, data, stored, now)
        return Response(body, status_code=201)

    @get("/", operation_id="list_bids", guards=[authenticated])
    async def list_bids(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> list[schemas.BidRead]:
        """A bidder's own bids; all bids for the agency and supervisors after the deadline."""
        bids = await submission.list_bids(session, principal, tender_id)
        states = await submission.envelope_states(session, bids)
        return [bid_read(b, states.get(b.id)) for b in bids]

    @get("/{bid_id:uuid}/receipt", operation_id="get_bid_receipt", guards=[BIDDER])
    async def receipt(
        self,
        tender_id: uuid.UUID,
        bid_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        signer: LogSigner,
    ) -> schemas.Receipt:
        """The receipt of one of the caller's bids (of its withdrawal, once withdrawn)."""
        return await submission.receipt_for(session, principal, tender_id, bid_id, signer)

    @post("/{bid_id:uuid}/withdraw", operation_id="withdraw_bid", guards=[BIDDER], status_code=200)
    async def withdraw(
        self,
        tender_id: uuid.UUID,
        bid_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        signer: LogSigner,
        clock: Clock,
    ) -> schemas.BidRead:
        """Withdraw a bid before the deadline (W-05); the answer carries the withdrawal's receipt."""
        bid, receipt = await submission.withdraw_bid(
            session, principal, tender_id, bid_id, signer, clock.now()
        )
        return bid_read(bid, receipt=receipt)

    @post("/{bid_id:uuid}/decrypt", operation_id="decrypt_bid", guards=[BIDDER], status_code=202)
    async def decrypt(
        self,
        tender_id: uuid.UUID,
        bid_id: uuid.UUID,
        data: schemas.BidDecrypt,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.BidRead:
        """In the opening hall, reveal the envelope's file key (unwrapped by the bidder's client). The key
        is checked against the header at once; the envelope is decrypted and read out shortly after."""
        bid = await opening.decrypt_bid(session, principal, tender_id, bid_id, data, clock.now())
        return bid_read(bid, ("opening", None))


class OpeningController(Controller):
    """The online opening hall (开标大厅): the live record, the closing head, custody (W-18 signals are the
    committee's: `evaluation.controllers.SignalController`)."""

    path = "/api/v1/tenders/{tender_id:uuid}"
    tags = ["opening"]

    @get("/closing", operation_id="get_closing_head", guards=[public])
    async def closing(
        self,
        tender_id: uuid.UUID,
        request_principal: Principal | None,
        session: AsyncSession,
        signer: LogSigner,
    ) -> responses.ClosingRecord:
        """The tender's signed closing head and the envelopes that stood at the deadline."""
        return cast(
            responses.ClosingRecord,
            await submission.closing_record(session, request_principal, tender_id, signer),
        )

    @get(
        "/opening/events",
        operation_id="opening_events",
        guards=[authenticated],
        media_type="text/event-stream",
    )
    async def events(
        self,
        tender_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
        last_event_id: LastEventId = None,
        after: StreamAfter = 0,
        follow: Annotated[bool, Parameter(query="follow")] = True,
    ) -> ServerSentEvent:
        """The live opening record as server-sent events (resumable with Last-Event-ID). The stream ends
        when the hall closes; `follow=false` answers what is recorded so far and ends."""
        start = last_event_id if last_event_id is not None else after
        await hall.opening_hall(session, principal, tender_id, start)  # authorise before streaming
        return ServerSentEvent(_opening_stream(sessionmaker, principal, tender_id, start, follow))

    @post("/opening/check-in", operation_id="opening_check_in", guards=[BIDDER], status_code=200)
    async def check_in(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> responses.CheckIn:
        """A bidder signs in to the opening hall (开标签到); signing in twice answers the first line."""
        return cast(responses.CheckIn, await hall.check_in(session, principal, tender_id, clock.now()))

    @get("/opening/record", operation_id="opening_record", guards=[authenticated])
    async def record(
        self,
        tender_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        after: StreamAfter = 0,
    ) -> list[responses.OpeningLine]:
        """The opening record so far, line by line (the same lines the event stream sends)."""
        _tender, events = await hall.opening_hall(session, principal, tender_id, after)
        return [cast(responses.OpeningLine, _event_body(e)) for e in events]

    @get("/custody", operation_id="custody_view", guards=[authenticated])
    async def custody(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> schemas.CustodyView:
        """For a custodian of this tender: the envelopes in custody with their headers (after the deadline)."""
        return await hall.custody_view(session, principal, tender_id, clock.now())

    @post(
        "/custody/releases",
        operation_id="release_custody",
        guards=[authenticated],
        status_code=201,
        responses={
            200: ResponseSpec(
                data_container=schemas.ReleaseResult,
                description="The same release again: the answer on record, nothing new",
                generate_examples=False,
            )
        },
    )
    async def release(
        self,
        request: Request[Any, Any, Any],
        tender_id: uuid.UUID,
        data: schemas.ReleaseIn,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> Response[schemas.ReleaseResult]:
        """A custodian releases its stanza of one envelope in custody: the stanza's shared secret and the
        proof that it is the honest one (made locally by `ggzy custodian release`). 201 when accepted, 200
        when it repeats a release on record; a release whose proof does not hold is kept as the evidence
        of the custodian's fault and answered 422 with its stable code (a valid one may replace it)."""
        result, recorded = await hall.release_custody(session, principal, tender_id, data, clock.now())
        if recorded.status != "valid":
            problem = ValidationProblem(
                f"The release is kept on record but does not verify: {recorded.detail or recorded.error}. "
                "Release again with the key registered on the roster before the custody window ends.",
                errors=[field_error("release", recorded.error or "release.invalid")],
                release_error=recorded.error,
                recorded=True,
            )
            # Returned, not raised: the request's transaction commits the invalid release as evidence.
            refused: Response[Any] = Response(
                msgspec.json.encode(problem.to_dict(instance=request.url.path)),
                status_code=problem.status,
                media_type="application/problem+json",
            )
            return refused
        return Response(result, status_code=200 if recorded.replayed else 201)

    @get("/opening/record/signed", operation_id="signed_opening_record", guards=[public])
    async def signed_record(
        self,
        tender_id: uuid.UUID,
        request_principal: Principal | None,
        session: AsyncSession,
        signer: LogSigner,
    ) -> responses.SignedOpeningRecord:
        """The opening record signed by the platform's log key once the opening has closed: the closing
        head with its custody statement, every standing envelope's public header and result, and for each
        envelope that went to custody the custodians' releases with their proofs and the outcome with its
        cause. `ggzy verify opening` re-checks all of it offline."""
        return cast(
            responses.SignedOpeningRecord,
            await submission.signed_opening_record(session, request_principal, tender_id, signer),
        )


def _event_body(event: Any) -> dict[str, Any]:
    return {"seq": event.seq, "at": event.at.isoformat(), "kind": event.kind, **event.payload}


async def _opening_stream(
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    tender_id: uuid.UUID,
    after: int,
    follow: bool,
) -> AsyncIterator[ServerSentEventMessage]:
    """The opening record's new lines, once each, until the hall closes."""

    async def read(since: int) -> tuple[Sequence[Any], bool]:
        async with transaction(sessionmaker, read_only=True) as session:
            tender, events = await hall.opening_hall(session, principal, tender_id, since)
        return events, tender.status in ("tendering", "opening")

    async for message in http.poll_events(read, after, follow, "hall_closed", _event_body):
        yield message


class AwardController(Controller):
    """Evaluation report, award and contracts."""

    path = "/api/v1/tenders/{tender_id:uuid}"
    tags = ["trading"]

    @post("/award", operation_id="award_tender", guards=[AGENCY])
    async def award(
        self,
        tender_id: uuid.UUID,
        data: schemas.AwardCreate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> list[schemas.AwardRead]:
        """Issue the award after publicity (W-12); contracts are due within 30 days (W-13)."""
        return [award_read(a) for a in await awards.award(session, principal, tender_id, data, clock.now())]

    @get("/awards", operation_id="list_awards", guards=[public])
    async def awards(
        self, tender_id: uuid.UUID, session: AsyncSession, request_principal: Principal | None = None
    ) -> list[schemas.AwardRead]:
        """The tender's awards (public once made, S-03)."""
        tender = await tenders.visible_tender(session, request_principal, tender_id)
        return [award_read(a) for a in await awards.list_awards(session, tender.id)]

    @post("/awards/{award_id:uuid}/decline", operation_id="decline_award", guards=[AGENCY], status_code=200)
    async def decline(
        self,
        tender_id: uuid.UUID,
        award_id: uuid.UUID,
        data: schemas.AwardDecline,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.AwardRead:
        """Record that the winner refused to sign or to give the security: it loses the award (W-16)."""
        return award_read(
            await awards.decline_award(session, principal, tender_id, award_id, data, clock.now())
        )

    @post("/contracts", operation_id="record_contract", guards=[AGENCY])
    async def contract(
        self,
        tender_id: uuid.UUID,
        data: schemas.ContractCreate,
        principal: Principal,
        sessionmaker: async_sessionmaker[AsyncSession],
        object_store: ObjectStore,
        clock: Clock,
    ) -> schemas.ContractRead:
        """Record a signed contract (W-13, W-15). Its file is copied and hashed outside any transaction, as
        for `register_document`."""
        now = clock.now()
        taken = await documents.take_document(
            sessionmaker, object_store, principal, tender_id, data.object_key, now
        )
        try:
            async with transaction(sessionmaker) as session:
                return contract_read(
                    await awards.record_contract(session, principal, tender_id, data, taken, now)
                )
        except BaseException:
            await documents.drop_document(sessionmaker, object_store, taken)
            raise


class ComplaintController(Controller):
    """Complaints (投诉) to the supervising authority (W-17)."""

    path = "/api/v1"
    tags = ["oversight"]

    @post("/tenders/{tender_id:uuid}/complaints", operation_id="file_complaint", guards=[BIDDER])
    async def file(
        self,
        tender_id: uuid.UUID,
        data: schemas.ComplaintCreate,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.ComplaintRead:
        """File a complaint within 10 days of knowing (W-17)."""
        return complaint_read(
            await objections.file_complaint(session, principal, tender_id, data, clock.now())
        )

    @get("/tenders/{tender_id:uuid}/complaints", operation_id="list_complaints", guards=[authenticated])
    async def list_for_tender(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> list[schemas.ComplaintRead]:
        """Complaints on a tender (a bidder sees its own)."""
        return [complaint_read(c) for c in await objections.list_complaints(session, principal, tender_id)]

    @post(
        "/complaints/{complaint_id:uuid}/decision",
        operation_id="decide_complaint",
        guards=[requires("supervisor")],
        status_code=200,
    )
    async def decide(
        self,
        complaint_id: uuid.UUID,
        data: schemas.ComplaintDecision,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.ComplaintRead:
        """The supervising authority decides a complaint (within 30 working days, W-17)."""
        return complaint_read(
            await objections.decide_complaint(session, principal, complaint_id, data, clock.now())
        )


class NoticeController(Controller):
    """The public notice board (S-03): no sign-in needed."""

    path = "/api/v1/notices"
    tags = ["notices"]

    @get("/", operation_id="list_notices", guards=[public], opt={SINGLE_READ: True})
    async def list_notices(
        self,
        session: AsyncSession,
        kind: Filter = None,
        sector: Filter = None,
        region_code: Filter = None,
        tender_code: Filter = None,
        q: Filter = None,
        cursor: Cursor = None,
        limit: Limit = 20,
    ) -> responses.NoticePage:
        """Published notices, newest first; filter by kind, sector, region or tender code, search with `q`."""
        found, next_cursor = await notices.list_notices(
            session,
            kind=kind,
            sector=sector,
            region_code=region_code,
            tender_code=tender_code,
            q=q,
            cursor=cursor,
            limit=limit,
        )
        return {"items": found, "next_cursor": next_cursor}

    @get("/{notice_id:uuid}", operation_id="get_notice", guards=[public])
    async def get_notice(self, notice_id: uuid.UUID, session: AsyncSession) -> schemas.NoticeRead:
        """One published notice of the public board, with its text and attachments; no sign-in needed."""
        return notice_read(await notices.get_notice(session, notice_id))


class InboxController(Controller):
    """Notifications to the caller's organisation, and the calendar the centre maintains."""

    path = "/api/v1"
    tags = ["accounts"]

    @get("/notifications", operation_id="list_notifications", guards=[authenticated])
    async def notifications(
        self, principal: Principal, session: AsyncSession
    ) -> list[schemas.NotificationRead]:
        """The caller organisation's notifications, newest first."""
        rows: list[Notification] = await notices.list_notifications(session, principal)
        return [
            schemas.NotificationRead(n.id, n.tender_id, n.kind, n.message, n.created_at, n.read_at)
            for n in rows
        ]

    @put("/calendar/{year:int}", operation_id="load_calendar_year", guards=[requires("centre")])
    async def load_year(
        self,
        year: Annotated[int, Parameter(ge=2000, le=2100)],
        data: schemas.ScheduleIn,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> ScheduleDict:
        """Load the year's official holidays and make-up working days (国务院办公厅 notice)."""
        if data.year != year:
            raise ValidationProblem(
                "The body's year differs from the path's.", errors=[field_error("year", "mismatch")]
            )
        return (await tenders.load_schedule(session, principal, data, clock.now())).to_dict()


class ChronographController(Controller):
    """What the chronograph could not do: tenders whose due transition fails, rooms and draws whose due step
    fails, for the centre and supervisors."""

    path = "/api/v1/chronograph"
    tags = ["chronograph"]

    @get("/failures", operation_id="list_transition_failures", guards=[requires("centre", "supervisor")])
    async def failures(self, session: AsyncSession) -> list[schemas.TransitionFailureRead]:
        """Tenders whose due transition is failing, and evaluation rooms and draws whose due step is, the
        longest-failing first, with attempts and next retry."""
        return [
            schemas.TransitionFailureRead(
                f.tender_id,
                f.tender_code,
                f.status,
                f.attempts,
                f.error,
                f.first_failed_at,
                f.last_failed_at,
                f.retry_at,
                f.stage,
                f.subject_id,
            )
            for f in await chronograph.failures(session)
        ]


TRADING_CONTROLLERS = [
    TenderController,
    DocumentController,
    BidController,
    OpeningController,
    AwardController,
    NoticeController,
    InboxController,
    ComplaintController,
    ChronographController,
]
