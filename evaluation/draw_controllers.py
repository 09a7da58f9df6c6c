"""HTTP routes of the committee draw: the tender's evaluation scheme, the draw request, the witness's
commitment and reveal, the record and its replay, and abort requests and decisions."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

from litestar import Controller, get, post, put
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import authenticated, requires
from accounts.security import Principal
from evaluation import aborts, committees, draw, responses, rooms, schemas, schemes, scoring, selection
from evaluation.models import Draw, DrawAbortRequest, Expert, Invitation
from storage.clock import Clock
from storage.objects import ObjectStore
from storage.settings import Settings
from storage.signing import LogSigner
from trading import tenders

AGENCY = requires("agency")
SUPERVISOR = requires("supervisor")
WITNESS = requires(*selection.WITNESSES)  # never the centre, never the agency
ABORT_REQUESTERS = requires(*selection.ABORT_REQUESTERS)
READERS = requires(*rooms.READERS)
DRAW_VIEWERS = requires("agency", *rooms.READERS)


def abort_request_read(request: DrawAbortRequest) -> schemas.AbortRequestRead:
    """An abort request as the API shows it."""
    return schemas.AbortRequestRead(
        id=request.id,
        draw_id=request.draw_id,
        status=request.status,
        reason=request.reason,
        stage=request.stage,
        requester_role=request.requester_role,
        requester_organisation_id=request.requester_organisation_id,
        requested_at=request.requested_at,
        decided_at=request.decided_at,
        decision_note=request.decision_note,
    )


async def draw_read(session: AsyncSession, actor: Principal, row: Draw) -> schemas.DrawRead:
    """The draw as the caller may see it: who was drawn only for the centre, supervisors and auditors until
    the result is published; to the agency, the seats and their states without names (条例 46)."""
    invitations = (
        await session.scalars(
            select(Invitation).where(Invitation.draw_id == row.id).order_by(Invitation.position)
        )
    ).all()
    named = actor.has(*rooms.READERS) or rooms.names_public(row)
    rows = []
    for i in invitations:
        item: responses.DrawInvitation = {
            "id": str(i.id),
            "position": i.position,
            "quota_index": i.quota_index,
            "round": i.round,
            "status": i.status,
            "respond_by": i.respond_by.isoformat(),
        }
        if named:
            expert = await session.get(Expert, i.expert_id)
            item["expert_id"] = str(i.expert_id)
            item["expert_name"] = expert.name if expert else None
            item["replaces"] = str(i.replaces) if i.replaces else None
            item["reason"] = i.reason
        rows.append(item)
    contribution = await selection.witness_of(session, row)
    return schemas.DrawRead(
        id=row.id,
        tender_id=row.tender_id,
        status=row.status,
        evaluation_at=row.evaluation_at,
        committee_size=row.committee_size,
        quotas=row.quotas,
        employer_limit=row.employer_limit,
        rules=row.rules,
        candidates_digest=row.candidates_digest,
        exclusions_digest=row.exclusions_digest,
        pool_digest=row.pool_digest,
        pool_size=row.pool_size,
        excluded=row.excluded,
        context=cast(responses.DrawContext | None, row.avoidance_context),
        witness_commitment=contribution.commitment if contribution else None,
        witness_organisation_id=contribution.organisation_id if contribution else None,
        commitment=row.commitment or None,
        commitment_signature=row.commitment_signature,
        signing_key_id=row.signing_key_id,
        created_at=row.created_at,
        drawn_at=row.drawn_at,
        confirmed_at=row.confirmed_at,
        aborted_at=row.aborted_at,
        witness=contribution.witness if contribution else row.witness,
        nonce=contribution.nonce if contribution else None,
        seed=row.seed_hex,
        invitations=rows,
        abort_requests=[abort_request_read(r) for r in await aborts.abort_requests_of(session, row)],
    )


class DrawController(Controller):
    """The evaluation scheme and the committee draw (抽取)."""

    path = "/api/v1/evaluation"
    tags = ["evaluation"]

    @put("/tenders/{tender_id:uuid}/scheme", operation_id="set_evaluation_scheme", guards=[AGENCY])
    async def set_scheme(
        self,
        tender_id: uuid.UUID,
        data: dict[str, Any],
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> responses.EvaluationScheme:
        """Fix the evaluation scheme (criteria, weights, qualification) with the documents."""
        scheme = await schemes.set_scheme(session, principal, tender_id, data, clock.now())
        return cast(responses.EvaluationScheme, scoring.scheme_to_json(scheme))

    @get("/tenders/{tender_id:uuid}/scheme", operation_id="get_evaluation_scheme", guards=[authenticated])
    async def get_scheme(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> responses.EvaluationScheme:
        """The evaluation scheme published with the documents."""
        return cast(responses.EvaluationScheme, await schemes.read_scheme(session, principal, tender_id))

    @post("/tenders/{tender_id:uuid}/draws", operation_id="request_draw", guards=[AGENCY])
    async def request(
        self,
        tender_id: uuid.UUID,
        data: schemas.DrawCreate,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        clock: Clock,
    ) -> schemas.DrawRead:
        """Ask for a committee: the platform fixes and publishes the digests of the pool before avoidance, the
        exclusions and the eligible pool. A supervisor or notary then commits to a witness."""
        row = await committees.request_draw(session, principal, tender_id, data, object_store, clock.now())
        return await draw_read(session, principal, row)

    @get("/draws/{draw_id:uuid}", operation_id="get_draw", guards=[DRAW_VIEWERS])
    async def read_draw(
        self, draw_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> schemas.DrawRead:
        """A draw: commitment, pool size, exclusions by reason, seats and their answers."""
        row = await committees.draw_for(session, principal, draw_id)
        return await draw_read(session, principal, row)

    @get("/tenders/{tender_id:uuid}/draws", operation_id="list_tender_draws", guards=[DRAW_VIEWERS])
    async def of_tender(
        self, tender_id: uuid.UUID, principal: Principal, session: AsyncSession
    ) -> list[schemas.DrawRead]:
        """The draws of a tender, newest first."""
        if not principal.has(*rooms.READERS):
            await tenders.tender_for_agency(session, principal, tender_id)
        rows = (
            await session.scalars(
                select(Draw).where(Draw.tender_id == tender_id).order_by(Draw.created_at.desc())
            )
        ).all()
        return [await draw_read(session, principal, r) for r in rows]

    @post(
        "/draws/{draw_id:uuid}/witness",
        operation_id="commit_draw_witness",
        guards=[WITNESS],
        status_code=200,
    )
    async def commit_witness(
        self,
        draw_id: uuid.UUID,
        data: schemas.WitnessCommit,
        principal: Principal,
        session: AsyncSession,
        settings: Settings,
        signer: LogSigner,
        clock: Clock,
    ) -> schemas.DrawRead:
        """A supervisor or notary commits to its witness; the platform then draws its seed and publishes its
        signed commitment. Nothing is selected yet."""
        row = await selection.commit_witness(
            session, principal, draw_id, data.witness_commitment, settings.secret_key, signer, clock.now()
        )
        return await draw_read(session, principal, row)

    @post("/draws/{draw_id:uuid}/run", operation_id="run_draw", guards=[WITNESS], status_code=200)
    async def run(
        self,
        draw_id: uuid.UUID,
        data: schemas.DrawRun,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        settings: Settings,
        clock: Clock,
    ) -> schemas.DrawRead:
        """The witness reveals its witness and nonce; the committee is selected and invited at once."""
        row = await selection.run_draw(
            session,
            principal,
            draw_id,
            data.witness,
            data.nonce,
            settings.secret_key,
            object_store,
            clock.now(),
        )
        return await draw_read(session, principal, row)

    @post(
        "/draws/{draw_id:uuid}/abort",
        operation_id="request_draw_abort",
        guards=[ABORT_REQUESTERS],
        status_code=201,
    )
    async def abort(
        self,
        draw_id: uuid.UUID,
        data: schemas.DrawAbort,
        principal: Principal,
        session: AsyncSession,
        clock: Clock,
    ) -> schemas.AbortRequestRead:
        """Ask, with a reason, to abort a draw; a supervisor approves or refuses."""
        request = await aborts.request_abort(session, principal, draw_id, data.reason, clock.now())
        return abort_request_read(request)

    @post(
        "/draws/{draw_id:uuid}/abort/approve",
        operation_id="approve_draw_abort",
        guards=[SUPERVISOR],
        status_code=200,
    )
    async def approve_abort(
        self,
        draw_id: uuid.UUID,
        data: schemas.AbortApproval,
        principal: Principal,
        session: AsyncSession,
        settings: Settings,
        clock: Clock,
    ) -> schemas.DrawRead:
        """Approve the pending abort: the draw is aborted and its seed revealed at once."""
        row, _request = await aborts.decide_abort(
            session,
            principal,
            draw_id,
            data.request_id,
            True,
            data.note.strip() or None,
            settings.secret_key,
            clock.now(),
        )
        return await draw_read(session, principal, row)

    @post(
        "/draws/{draw_id:uuid}/abort/refuse",
        operation_id="refuse_draw_abort",
        guards=[SUPERVISOR],
        status_code=200,
    )
    async def refuse_abort(
        self,
        draw_id: uuid.UUID,
        data: schemas.AbortRefusal,
        principal: Principal,
        session: AsyncSession,
        settings: Settings,
        clock: Clock,
    ) -> schemas.AbortRequestRead:
        """Refuse the pending abort, saying why; the draw goes on."""
        _row, request = await aborts.decide_abort(
            session, principal, draw_id, data.request_id, False, data.note, settings.secret_key, clock.now()
        )
        return abort_request_read(request)

    @get("/draws/{draw_id:uuid}/record", operation_id="draw_record", guards=[READERS])
    async def record(
        self, draw_id: uuid.UUID, principal: Principal, session: AsyncSession, object_store: ObjectStore
    ) -> responses.DrawRecordJson:
        """Everything needed to replay the draw offline (`ggzy verify draw FILE`), once the seed is revealed
        or the draw aborted: the pool before avoidance, every exclusion, both commitments and the seed."""
        row = await committees.draw_for(session, principal, draw_id)
        return cast(
            responses.DrawRecordJson,
            draw.record_to_json(await selection.draw_record(session, object_store, row)),
        )

    @get("/draws/{draw_id:uuid}/verify", operation_id="verify_draw", guards=[READERS])
    async def verify(
        self,
        draw_id: uuid.UUID,
        principal: Principal,
        session: AsyncSession,
        object_store: ObjectStore,
        signer: LogSigner,
    ) -> responses.DrawVerification:
        """Replay the draw: avoidance, the witness, the signed commitment and every invitation."""
        row = await committees.draw_for(session, principal, draw_id)
        record = await selection.draw_record(session, object_store, row)
        problems = await asyncio.to_thread(draw.verify, record, signer.public_raw)
        return {
            "draw_id": str(row.id),
            "status": row.status,
            "ok": not problems,
            "problems": problems,
            "invitations": len(record.invitations),
        }
