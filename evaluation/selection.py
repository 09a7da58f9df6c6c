"""The draw (抽取) from the witness's commitment to the seated committee: the supervisor's or notary's
commitment, the platform's sealed seed and signed commitment, the reveal that runs the selection, the
replayed selection that invites each seat and seats the committee once every seat has accepted, and the
draw's record an auditor replays offline. The selection itself is the pure `evaluation.draw`.

Services flush but never commit: the request or job that calls them owns the transaction.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

import accounts.service as accounts
from accounts.security import Principal
from evaluation import draw, lot_rooms, rooms
from evaluation.models import Draw, DrawAbortRequest, DrawWitness, Expert, Invitation, Member, Room
from rules.calendar import SHANGHAI
from storage.objects import ObjectStore
from storage.problems import Conflict, Forbidden, NotFound, ValidationProblem, field_error
from storage.signing import LogSigner
from trading import tenders

# Who asks for a committee and may ask to abort its draw (`evaluation.aborts`): never its witness.
ABORT_REQUESTERS = ("agency", "centre")
WITNESSES = ("supervisor",)  # a supervisor or a notary office (a supervising organisation)


def _seal_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"ggzy evaluation draw seed", hashlib.sha256).digest()


def seal_seed(secret: str, draw_id: uuid.UUID, seed: bytes) -> str:
    """The secret seed sealed under the server's key until it is revealed (never stored in the clear)."""
    nonce = os.urandom(12)
    return base64.b64encode(
        nonce + ChaCha20Poly1305(_seal_key(secret)).encrypt(nonce, seed, draw_id.bytes)
    ).decode()


def unseal_seed(secret: str, row: Draw) -> bytes:
    """The draw's seed, opened with the server's key (only once a witness has committed does one exist)."""
    raw = base64.b64decode(row.sealed_seed)
    return ChaCha20Poly1305(_seal_key(secret)).decrypt(raw[:12], raw[12:], row.id.bytes)


def _legacy(row: Draw) -> bool:
    """A draw made under the first version of the protocol (no witness commitment, no pool before
    avoidance): it still selects and replays as it did."""
    return bool(row.rules.get("version") == draw.LEGACY_VERSION)


def _inputs(row: Draw) -> draw.Inputs:
    assert row.candidates_digest is not None and row.exclusions_digest is not None
    assert row.avoidance_context is not None
    context = draw.encode_context(draw.context_from_json(row.avoidance_context))
    return draw.Inputs(
        candidates_digest=row.candidates_digest,
        context_digest=hashlib.sha256(context).hexdigest(),
        exclusions_digest=row.exclusions_digest,
        pool_digest=row.pool_digest,
        quotas=tuple(draw.Quota(q["specialty"], q["seats"]) for q in row.quotas),
        employer_limit=row.employer_limit,
    )


def _may_witness(actor: Principal) -> None:
    # The witness is neither the platform's operator (the centre) nor the party that asked (the agency).
    if not actor.has(*WITNESSES) or actor.has(*ABORT_REQUESTERS):
        raise Forbidden("Only a supervisor or a notary, never the centre or the agency, is a draw's witness.")


async def witness_of(session: AsyncSession, row: Draw) -> DrawWitness | None:
    """The draw's witness contribution, if one has committed."""
    return await session.get(DrawWitness, row.id)


async def commit_witness(
    session: AsyncSession,
    actor: Principal,
    draw_id: uuid.UUID,
    witness_commitment: str,
    secret: str,
    signer: LogSigner,
    now: datetime,
) -> Draw:
    """A supervisor or notary commits to its witness (SHA-256 of a witness and a nonce it keeps). Only now,
    in the same transaction, does the platform draw its seed, seal it and publish (and sign) its commitment
    over the seed, this witness commitment and the draw's inputs: the witness is fixed before the seed
    exists, and the seed is fixed before the witness is known. The same commitment again changes nothing."""
    _may_witness(actor)
    row = await session.get(Draw, draw_id, with_for_update=True)
    if row is None:
        raise NotFound("No such draw.")
    if not draw.is_hex32(witness_commitment):
        raise ValidationProblem(
            "The witness commitment is a SHA-256 in 64 lowercase hexadecimal characters.",
            errors=[field_error("witness_commitment", "not 64 lowercase hex characters")],
        )
    existing = await witness_of(session, row)
    if existing is not None:
        if existing.committed_by == actor.user_id and existing.commitment == witness_commitment:
            return row
        raise Conflict("A witness has already committed to this draw.")
    if _legacy(row):
        raise Conflict(
            "This draw predates witness commitments; its abort can be requested and a new one asked."
        )
    if row.status != "awaiting_witness":
        raise Conflict(f"The draw is {row.status}; a witness commits only before the seed exists.")
    seed = os.urandom(draw.WITNESS_BYTES)
    row.commitment = draw.commitment(seed, witness_commitment, _inputs(row))
    row.sealed_seed = seal_seed(secret, row.id, seed)
    row.commitment_signature = base64.b64encode(
        signer.sign(draw.commitment_statement(str(row.id), witness_commitment, row.commitment))
    ).decode()
    row.signing_key_id = signer.key_id
    row.status = "committed"
    session.add(
        DrawWitness(
            draw_id=row.id,
            committed_by=actor.user_id,
            organisation_id=actor.organisation_id,
            commitment=witness_commitment,
            committed_at=now,
        )
    )
    await session.flush()
    await accounts.record(
        session,
        actor,
        "draw.witness_commit",
        "draw",
        row.id,
        now,
        witness_commitment=witness_commitment,
        commitment=row.commitment,
    )
    return row


async def run_draw(
    session: AsyncSession,
    actor: Principal,
    draw_id: uuid.UUID,
    witness: str,
    nonce: str,
    secret: str,
    store: ObjectStore,
    now: datetime,
) -> Draw:
    """The witness reveals its witness and nonce; they must match its commitment, and the selection runs at
    once on the final seed (the sealed seed and the witness) and the drawn experts are invited. Only the
    supervisor who committed reveals, so nobody else chooses the moment; the same reveal again changes
    nothing."""
    row = await session.get(Draw, draw_id, with_for_update=True)
    if row is None:
        raise NotFound("No such draw.")
    contribution = await witness_of(session, row)
    if contribution is None:
        raise Conflict("No witness has committed to this draw yet: a supervisor or notary commits first.")
    if contribution.committed_by != actor.user_id:
        raise Forbidden("Only the supervisor who committed to the witness reveals it.")
    if contribution.witness is not None:
        if (contribution.witness, contribution.nonce) == (witness, nonce):
            return row
        raise Conflict("The witness was already revealed and the draw has run.")
    if row.status != "committed":
        raise Conflict(f"The draw is {row.status}; it can no longer run.")
    if not (draw.is_hex32(witness) and draw.is_hex32(nonce)):
        raise ValidationProblem(
            "The witness and the nonce are 64 lowercase hexadecimal characters each.",
            errors=[
                field_error("witness" if not draw.is_hex32(witness) else "nonce", "not 64 lowercase hex")
            ],
        )
    if draw.witness_commitment(bytes.fromhex(witness), bytes.fromhex(nonce)) != contribution.commitment:
        raise ValidationProblem(
            "The witness and nonce do not match the commitment you made; the draw has not run.",
            errors=[field_error("witness", "does not match the witness commitment")],
        )
    contribution.witness = witness
    contribution.nonce = nonce
    contribution.revealed_at = now
    row.drawn_at = now
    row.status = "inviting"
    await apply_selection(session, row, secret, store, now)
    await accounts.record(session, actor, "draw.run", "draw", row.id, now, witness=witness, nonce=nonce)
    return row


async def _object(store: ObjectStore, key: str, digest: str, what: str) -> bytes:
    data = b"".join([chunk async for chunk in store.iter_chunks(key)])
    if hashlib.sha256(data).hexdigest() != digest:
        raise Conflict(f"The stored {what} does not match its digest.")
    return data


async def _pool_of(store: ObjectStore, row: Draw) -> list[draw.PoolEntry]:
    data = await _object(store, row.pool_object_key, row.pool_digest, "pool snapshot")
    return await asyncio.to_thread(draw.decode_pool, data)


async def _removed(session: AsyncSession, row: Draw) -> list[str]:
    rows = await session.scalars(
        select(Invitation)
        .where(Invitation.draw_id == row.id, Invitation.removed_seq.is_not(None))
        .order_by(Invitation.removed_seq)
    )
    return [str(i.expert_id) for i in rows]


async def _final_seed(session: AsyncSession, row: Draw, secret: str) -> bytes:
    seed = unseal_seed(secret, row)
    if _legacy(row):
        return draw.final_seed_v1(seed, row.witness or "")
    contribution = await witness_of(session, row)
    assert contribution is not None and contribution.witness is not None
    return draw.final_seed(seed, bytes.fromhex(contribution.witness))


async def apply_selection(
    session: AsyncSession, row: Draw, secret: str, store: ObjectStore, now: datetime
) -> None:
    """Replay the selection with every removal so far and create the invitations it adds."""
    entries = await _pool_of(store, row)
    quotas = [draw.Quota(q["specialty"], q["seats"]) for q in row.quotas]
    seed = await _final_seed(session, row, secret)
    removed = await _removed(session, row)
    result = await asyncio.to_thread(draw.select, entries, quotas, seed, row.employer_limit, removed)
    made = {
        i.position: i
        for i in (await session.scalars(select(Invitation).where(Invitation.draw_id == row.id))).all()
    }
    for position, seat in enumerate(result.invitations):
        if position in made:
            if str(made[position].expert_id) != seat.expert_id:
                raise Conflict("The draw no longer replays; refusing to go on.", position=position)
            continue
        session.add(
            Invitation(
                draw_id=row.id,
                position=position,
                quota_index=seat.quota_index,
                round=seat.round,
                expert_id=uuid.UUID(seat.expert_id),
                replaces=uuid.UUID(seat.replaces) if seat.replaces else None,
                status="invited",
                invited_at=now,
                respond_by=now + timedelta(minutes=row.invitation_minutes),
            )
        )
        expert = await session.get(Expert, uuid.UUID(seat.expert_id))
        if expert is not None and expert.user_id is not None:
            user = await accounts.get_user(session, expert.user_id)
            if user is not None:
                await tenders.notify(
                    session,
                    user.organisation_id,
                    row.tender_id,
                    "evaluation.invitation",
                    "You are invited to an evaluation committee; answer before "
                    f"{(now + timedelta(minutes=row.invitation_minutes)).astimezone(SHANGHAI):%Y-%m-%d %H:%M}.",
                    now,
                )
    await session.flush()
    row.next_deadline = await session.scalar(
        select(func.min(Invitation.respond_by)).where(
            Invitation.draw_id == row.id, Invitation.status == "invited"
        )
    )
    if result.shortfalls:
        row.status = "short"
    await _confirm_if_complete(session, row, result, secret, now)


async def _confirm_if_complete(
    session: AsyncSession, row: Draw, result: draw.DrawResult, secret: str, now: datetime
) -> None:
    if result.shortfalls:
        return
    standing = {s.expert_id for s in result.committee}
    invitations = (await session.scalars(select(Invitation).where(Invitation.draw_id == row.id))).all()
    accepted = {str(i.expert_id) for i in invitations if i.status == "accepted"}
    if not standing <= accepted:
        return
    row.status = "confirmed"
    row.confirmed_at = now
    row.next_deadline = None
    # The seed is revealed now that no answer can change the committee any more, so anyone may replay it.
    row.seed_hex = unseal_seed(secret, row).hex()
    await accounts.record(session, None, "draw.confirm", "draw", row.id, now, seed=row.seed_hex)
    await _seat_members(session, row, result, now)


async def _seat_members(session: AsyncSession, row: Draw, result: draw.DrawResult, now: datetime) -> Room:
    """Create the room at the first confirmation, in the tender's next evaluation round (the first, or the
    one a re-evaluation by a fresh committee opened), or one room per open lot where the documents ask for
    it (`evaluation.lot_rooms`); after a recusal, seat the replacement in each room of the round."""
    seated_rooms = await lot_rooms.rooms_of_round(session, row.id)
    if not seated_rooms:
        round_ = await rooms.next_round(session, row.tender_id)
        for lot_id in await lot_rooms.lots_to_seat(session, row.tender_id):
            room = Room(
                id=uuid.uuid4(),
                tender_id=row.tender_id,
                draw_id=row.id,
                round=round_,
                lot_id=lot_id,
                status="scheduled",
                phase="qualification",
                opens_at=row.evaluation_at,
                closes_at=row.evaluation_at + timedelta(hours=row.room_hours),
                extensions=[],
                event_seq=0,
            )
            session.add(room)
            seated_rooms.append(room)
        await session.flush()
    for room in seated_rooms:
        if room.lot_id is not None and room.status in ("closed", "cancelled"):
            continue  # a lot's room that already signed its report seats nobody new
        await _seat_in(session, row, result, room, now)
    return seated_rooms[0]


async def _seat_in(
    session: AsyncSession, row: Draw, result: draw.DrawResult, room: Room, now: datetime
) -> None:
    members = (await session.scalars(select(Member).where(Member.room_id == room.id))).all()
    seated = {str(m.expert_id) for m in members if m.expert_id is not None}
    seat = max((m.seat for m in members), default=0)
    added = 0
    for s in result.committee:
        if s.expert_id in seated:
            continue
        expert = await session.get(Expert, uuid.UUID(s.expert_id))
        assert expert is not None and expert.user_id is not None
        seat += 1
        added += 1
        session.add(
            Member(
                room_id=room.id,
                seat=seat,
                kind="expert",
                expert_id=expert.id,
                user_id=expert.user_id,
                name=expert.name,
                specialty=row.quotas[s.quota_index]["specialty"],
            )
        )
    if row.representative_user_id is not None and not any(m.kind == "representative" for m in members):
        rep = await accounts.get_user(session, row.representative_user_id)
        assert rep is not None
        seat += 1
        added += 1
        session.add(
            Member(
                room_id=room.id,
                seat=seat,
                kind="representative",
                user_id=rep.id,
                name=rep.display_name,
                specialty="",
            )
        )
    await session.flush()
    await rooms.log_event(
        session, room, "committee.seated", now, seats=added, opens_at=room.opens_at.isoformat()
    )


def record_published(row: Draw) -> bool:
    """Whether the draw's record may be published: its seed is revealed (the committee was confirmed) or
    it was aborted (at any stage)."""
    return row.status == "aborted" or row.seed_hex is not None


def _seats(invitations: Sequence[Invitation]) -> tuple[draw.Seat, ...]:
    return tuple(
        draw.Seat(i.quota_index, str(i.expert_id), i.round, str(i.replaces) if i.replaces else None)
        for i in invitations
    )


async def draw_record(
    session: AsyncSession, store: ObjectStore, row: Draw
) -> draw.DrawRecord | draw.LegacyRecord:
    """The full record an auditor replays offline, once the seed is revealed or the draw aborted: the pool
    before avoidance, the context, every exclusion with its reasons, the witness's commitment and reveal,
    the platform's signed commitment and its seed, the removals and invitations, and the abort. Experts
    appear by pool id only: no names, no telephone numbers."""
    if not record_published(row):
        raise Conflict("The record is published once the committee is confirmed or the draw is aborted.")
    invitations = (
        await session.scalars(
            select(Invitation).where(Invitation.draw_id == row.id).order_by(Invitation.position)
        )
    ).all()
    removed = tuple(await _removed(session, row))
    if _legacy(row):
        if row.seed_hex is None:
            raise Conflict(
                "This first-version draw was aborted before aborts revealed seeds; it has no record."
            )
        return draw.LegacyRecord(
            commitment=row.commitment,
            seed_hex=row.seed_hex,
            witness=row.witness or "",
            pool=await _object(store, row.pool_object_key, row.pool_digest, "pool snapshot"),
            quotas=tuple(draw.Quota(q["specialty"], q["seats"]) for q in row.quotas),
            employer_limit=row.employer_limit,
            removed=removed,
            invitations=_seats(invitations),
        )
    assert row.candidates_object_key and row.candidates_digest and row.exclusions_object_key
    assert row.exclusions_digest and row.avoidance_context is not None
    found = await _object(store, row.candidates_object_key, row.candidates_digest, "pool before avoidance")
    excluded = await _object(store, row.exclusions_object_key, row.exclusions_digest, "exclusions")
    exclusions = tuple(
        (expert_id, tuple(reasons.split(",")))
        for expert_id, reasons in (line.split("\t") for line in excluded.decode().splitlines())
    )
    contribution = await witness_of(session, row)
    approved = await session.scalar(
        select(DrawAbortRequest).where(
            DrawAbortRequest.draw_id == row.id, DrawAbortRequest.status == "approved"
        )
    )
    abort = None
    if approved is not None:
        assert approved.decided_at is not None
        abort = draw.Abort(
            reason=approved.reason,
            requested_by=approved.requester_role,
            stage=approved.stage,
            requested_at=approved.requested_at.isoformat(),
            approved_at=approved.decided_at.isoformat(),
        )
    return draw.DrawRecord(
        draw_id=str(row.id),
        status=row.status,
        context=draw.context_from_json(row.avoidance_context),
        candidates=tuple(await asyncio.to_thread(draw.decode_candidates, found)),
        exclusions=exclusions,
        quotas=tuple(draw.Quota(q["specialty"], q["seats"]) for q in row.quotas),
        employer_limit=row.employer_limit,
        witness_commitment=contribution.commitment if contribution else None,
        commitment=row.commitment or None,
        signature=row.commitment_signature,
        key_id=row.signing_key_id,
        seed_hex=row.seed_hex,
        witness_hex=contribution.witness if contribution else None,
        nonce_hex=contribution.nonce if contribution else None,
        removed=removed,
        invitations=_seats(invitations),
        abort=abort,
    )
