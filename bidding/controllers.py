"""HTTP routes of a bid from upload to opening: uploads and submission, receipts and withdrawal, the opening
hall and custody; and the platform-wide transparency log: its key, signed heads and proofs (public: they carry
only hashes, and the log moves only when a tender's bids close, so nothing here counts or times bids before a
deadline, W-20)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, cast

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.guards import authenticated, public
from accounts.security import Principal
from bidding import hall, logs, opening, submission, technical
from bidding import responses as bid_responses
from bidding import schemas as bid_schemas
from bidding.merkle import PublishedTreeHead
from storage import http, idempotency
from storage.bounds import INT64_MAX, IdempotencyKey, LastEventId, StreamAfter
from storage.clock import Clock
from storage.db import transaction
from storage.objects import ObjectStore
from storage.openapi import refusal
from storage.problems import NotFound, ValidationProblem, field_error
from storage.settings import Settings
from storage.signing import LogSigner
from trading import schemas
from trading.controllers import AGENCY, BIDDER, tender_response
from trading.models import Bid


def bid_read(
    b: Bid, envelope: tuple[str, str | None] | None = None, receipt: bid_schemas.Receipt | None = None
) -> bid_schemas.BidRead:
    return bid_schemas.BidRead(
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
        cast(bid_schemas.BidRejection | None, opening.rejection_view(b)),
    )


def _seen(request: Request[Any, Any, Any]) -> submission.ClientSeen:
    """Where a submission came from (W-18): address, the client's device id header, its user agent."""
    client = request.client.host if request.client else None
    return submission.ClientSeen(
        address=client,
        device=request.headers.get("x-ggzy-device"),
        user_agent=request.headers.get("user-agent"),
    )


async def _replayed(
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    data: bid_schemas.BidSubmit,
    stored: idempotency.StoredAnswer,
    now: Any,
) -> Response[Any]:
    """The first answer to a retried submission. An upload the retry made afresh is removed: nothing will
    ever take it (only the caller's own open uploads are)."""
    async with transaction(sessionmaker) as session:
        await submission.discard_retried_upload(session, principal, data.object_key, now)
        if data.technical is not None:
            await submission.discard_retried_upload(session, principal, data.technical.object_key, now)
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
        data: bid_schemas.BidSubmit,
        principal: Principal,
        sessionmaker: async_sessionmaker[AsyncSession],
        object_store: ObjectStore,
        signer: LogSigner,
        clock: Clock,
        request: Request[Any, Any, Any],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[bid_schemas.Receipt]:
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
        if data.technical is not None and data.technical.envelope_sha256 is not None:
            identity["technical"].pop("object_key")
            identity["technical"].pop("upload_id")
        digest = idempotency.fingerprint(identity)
        now = clock.now()
        async with transaction(sessionmaker, read_only=True) as session:
            stored = await idempotency.replay(session, scope, key, digest)
            if stored is None:
                prepared = await submission.prepare_submission(session, principal, tender_id, now, data)
        if stored is not None:
            return await _replayed(sessionmaker, principal, data, stored, now)
        taken = await submission.take_envelope(sessionmaker, object_store, prepared, data, now)
        technical = None
        try:
            if data.technical is not None:
                technical = await submission.take_envelope(
                    sessionmaker, object_store, prepared, data.technical, now
                )
            async with transaction(sessionmaker) as session:
                stored = await idempotency.replay(session, scope, key, digest)
                if stored is None:
                    _bid, receipt = await submission.submit_bid(
                        session, principal, tender_id, data, taken, signer, now, _seen(request), technical
                    )
                    body = msgspec.to_builtins(receipt)
                    await idempotency.remember(session, scope, key, digest, 201, body, now)
        except BaseException:
            for copy in (taken, technical):
                if copy is not None:
                    await submission.drop_envelope(sessionmaker, object_store, copy)
            raise
        if stored is not None:  # the same submission, recorded meanwhile by a concurrent retry
            for copy in (taken, technical):
                if copy is not None:
                    await submission.drop_envelope(sessionmaker, object_store, copy)
            return await _replayed(sessionmaker, principal, data, stored, now)
        return Response(body, status_code=201)

    @get("/", operation_id="list_bids", guards=[authenticated])
    async def list_bids(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> list[bid_schemas.BidRead]:
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
    ) -> bid_schemas.Receipt:
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
    ) -> bid_schemas.BidRead:
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
        data: bid_schemas.BidDecrypt,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> bid_schemas.BidRead:
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
    ) -> bid_responses.ClosingRecord:
        """The tender's signed closing head and the envelopes that stood at the deadline."""
        return cast(
            bid_responses.ClosingRecord,
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
    ) -> bid_responses.CheckIn:
        """A bidder signs in to the opening hall (开标签到); signing in twice answers the first line."""
        return cast(bid_responses.CheckIn, await hall.check_in(session, principal, tender_id, clock.now()))

    @get("/opening/record", operation_id="opening_record", guards=[authenticated])
    async def record(
        self,
        tender_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        after: StreamAfter = 0,
    ) -> list[bid_responses.OpeningLine]:
        """The opening record so far, line by line (the same lines the event stream sends)."""
        _tender, events = await hall.opening_hall(session, principal, tender_id, after)
        return [cast(bid_responses.OpeningLine, _event_body(e)) for e in events]

    @get("/custody", operation_id="custody_view", guards=[authenticated])
    async def custody(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> bid_schemas.CustodyView:
        """For a custodian of this tender: the envelopes in custody with their headers (after the deadline)."""
        return await hall.custody_view(session, principal, tender_id, clock.now())

    @post(
        "/custody/releases",
        operation_id="release_custody",
        guards=[authenticated],
        status_code=201,
        responses={
            200: ResponseSpec(
                data_container=bid_schemas.ReleaseResult,
                description="The same release again: the answer on record, nothing new",
                generate_examples=False,
            )
        },
    )
    async def release(
        self,
        request: Request[Any, Any, Any],
        tender_id: uuid.UUID,
        data: bid_schemas.ReleaseIn,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> Response[bid_schemas.ReleaseResult]:
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
    ) -> bid_responses.SignedOpeningRecord:
        """The opening record signed by the platform's log key once the opening has closed: the closing
        head with its custody statement, every standing envelope's public header and result, and for each
        envelope that went to custody the custodians' releases with their proofs and the outcome with its
        cause. `ggzy verify opening` re-checks all of it offline."""
        return cast(
            bid_responses.SignedOpeningRecord,
            await submission.signed_opening_record(session, request_principal, tender_id, signer),
        )

    @post("/close-opening", operation_id="close_opening", guards=[AGENCY], status_code=200)
    async def close_opening(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> Response[schemas.TenderRead]:
        """Close the opening once every bid is open (otherwise the window's end closes it)."""
        return await tender_response(
            session,
            await hall.close_opening(session, principal, tender_id, clock.now()),
            caller=principal,
            now=clock.now(),
        )

    @post("/commercial-opening", operation_id="open_commercial", guards=[AGENCY], status_code=200)
    async def commercial_opening(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession, clock: Clock
    ) -> bid_schemas.TechnicalResultRead:
        """On a tender of two envelopes (双信封), once the evaluation committee recorded the technical result
        in its room: open the hall for the passed bids' commercial envelopes alone (409 before it); the
        others stay sealed for good. The agency runs the opening; it does not judge."""
        return await technical.open_commercial(session, principal, tender_id, clock.now())


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


class TransparencyController(Controller):
    """The platform-wide log (RFC 9162): one leaf per tender's closing head, signed at its deadline (before
    tender logs existed, one leaf per bid event)."""

    path = "/api/v1/transparency"
    tags = ["transparency"]

    @get("/key", operation_id="transparency_key", guards=[public])
    async def key(self, signer: LogSigner) -> bid_schemas.TransparencyKey:
        """The Ed25519 key that signs tree heads and closing heads: pin it in `ggzy verify receipt --key`."""
        return {
            "log_id": logs.LOG_ID,
            "public_key": base64.b64encode(signer.public_raw).decode(),
            "key_id": signer.key_id,
        }

    @get("/head", operation_id="transparency_head", guards=[public])
    async def head(
        self,
        session: AsyncSession,
        tree_size: Annotated[int | None, Parameter(query="tree_size", ge=1, le=INT64_MAX)] = None,
    ) -> PublishedTreeHead:
        """The newest signed tree head, or the one signed when the log reached `tree_size`."""
        if tree_size is not None:
            return await logs.head_at(session, tree_size)
        head = await logs.latest_head(session)
        if head is None:
            raise NotFound("The log is empty.")
        return head

    @get("/consistency", operation_id="transparency_consistency", guards=[public])
    async def consistency(
        self,
        session: AsyncSession,
        first: Annotated[int, Parameter(query="first", ge=0, le=INT64_MAX)],
        second: Annotated[int, Parameter(query="second", ge=0, le=INT64_MAX)],
    ) -> bid_schemas.ConsistencyProof:
        """The proof that the log at `first` leaves is a prefix of the log at `second` (RFC 9162 §2.1.4)."""
        return {"first": first, "second": second, "proof": await logs.consistency(session, first, second)}

    @get("/inclusion", operation_id="transparency_inclusion", guards=[public])
    async def inclusion(
        self,
        session: AsyncSession,
        leaf_index: Annotated[int, Parameter(query="leaf_index", ge=0, le=INT64_MAX)],
        tree_size: Annotated[int, Parameter(query="tree_size", ge=1, le=INT64_MAX)],
    ) -> bid_schemas.InclusionProof:
        """The inclusion proof of a leaf in the log at `tree_size` leaves (RFC 9162 §2.1.3)."""
        return {
            "leaf_index": leaf_index,
            "tree_size": tree_size,
            "proof": await logs.inclusion(session, leaf_index, tree_size),
        }


BIDDING_CONTROLLERS = [BidController, OpeningController, TransparencyController]
