"""The report (评标报告): built by the platform from what the room recorded, drawn up at the chair's request
(hashed, rendered as HTML and PDF), and signed or refused with a dissent by each member (W-11); the last
answer closes the room (`evaluation.rooms.finalise`). Its canonical form and renderings are the pure
`evaluation.report`.

Services flush but never commit: the request or job that calls them owns the transaction.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import accounts.service as accounts
from accounts.security import Principal
from evaluation import clarifications, report, reviews, rooms, schemes, scoring
from evaluation.models import Draw, Member, Room, ScoreSheet
from rules.calendar import SHANGHAI
from rules.profiles import profile_for
from storage.objects import ObjectStore
from storage.problems import Conflict, RuleViolation, ValidationProblem, field_error
from trading import tenders


async def build_report(session: AsyncSession, room: Room, now: datetime) -> dict[str, Any]:
    """The report (评标报告) as data: committee, per lot the qualification outcome with reasons, every
    member's scores, abnormal scores and their justification, the ranking and at most three candidates
    (W-11), the clarifications. The platform builds it from what the room recorded; nobody types it."""
    tender = await tenders.tender_by_id(session, room.tender_id)
    scheme = await schemes.scheme_of(session, tender)
    row = await session.get(Draw, room.draw_id)
    assert row is not None
    members = rooms.active(await rooms.members_of(session, room))
    seat_of = {str(m.id): m.seat for m in members}
    outcome = await reviews.qualification(session, room)
    lots_out = []
    profile = profile_for(tender.sector, tender.method)
    limit = min(scheme.max_candidates, profile.max_candidates)
    evaluable = await reviews.evaluable(session, room)
    for lot in await tenders.lots_of(session, tender.id):
        if lot.id not in evaluable:
            continue
        bids = evaluable[lot.id]
        names = {b.id: await accounts.get_organisation(session, b.organisation_id) for b in bids}
        qualified = [b for b in bids if not outcome[lot.id].get(b.id)]
        sheets = (
            await session.scalars(
                select(ScoreSheet).where(
                    ScoreSheet.room_id == room.id,
                    ScoreSheet.lot_id == lot.id,
                    ScoreSheet.submitted_at.is_not(None),
                )
            )
        ).all()
        sheets = [s for s in sheets if str(s.member_id) in seat_of]
        prices = [scoring.BidPrice(str(b.id), b.declared_price_fen or 0) for b in qualified]
        result = scoring.aggregate(
            scheme,
            prices,
            {str(s.member_id): s.scores for s in sheets},
            (row.seed_hex or row.commitment).encode(),
        )
        ranked = {r.bid_id: r for r in result.ranking}
        candidates = result.candidates[:limit]
        lots_out.append(
            {
                "lot_id": str(lot.id),
                "number": lot.number,
                "title": lot.title,
                "method": scheme.method,
                "criteria": _criteria_rows(scheme),
                "qualification": [{"code": c, "title": t} for c, t in scheme.qualification],
                "bids": [
                    {
                        "bid_id": str(b.id),
                        "bidder": names[b.id].name,
                        "credit_code": names[b.id].credit_code,
                        "price_fen": b.declared_price_fen or 0,
                        "qualified": not outcome[lot.id].get(b.id),
                        "rejections": [reviews.rejection_json(r) for r in outcome[lot.id].get(b.id, [])],
                        "rank": ranked[str(b.id)].rank if str(b.id) in ranked else None,
                        "total_cp": ranked[str(b.id)].total_cp if str(b.id) in ranked else None,
                        "leaf_cp": ranked[str(b.id)].leaf_cp if str(b.id) in ranked else {},
                        "tie_broken": ranked[str(b.id)].tie_broken if str(b.id) in ranked else False,
                    }
                    for b in bids
                ],
                "sheets": [
                    {
                        "seat": seat_of[str(s.member_id)],
                        "bid_id": bid_id,
                        "scores": scores,
                        "total_cp": sum(scores.values()),
                    }
                    for s in sorted(sheets, key=lambda s: seat_of[str(s.member_id)])
                    for bid_id, scores in sorted(s.scores.items())
                ],
                "abnormal": await reviews.abnormal(session, room, lot.id),
                "candidates": [
                    {
                        "rank": i + 1,
                        "bid_id": bid_id,
                        "bidder": names[uuid.UUID(bid_id)].name,
                        "price_fen": ranked[bid_id].price_fen,
                        "total_cp": ranked[bid_id].total_cp,
                    }
                    for i, bid_id in enumerate(candidates)
                ],
            }
        )
    bidder_names = {}
    for c in await clarifications.clarifications_of(session, room):
        if c.organisation_id not in bidder_names:
            bidder_names[c.organisation_id] = (
                await accounts.get_organisation(session, c.organisation_id)
            ).name
    chair = room.chair_member_id
    return {
        "version": report.REPORT_VERSION,
        "tender": {
            "id": str(tender.id),
            "code": tender.code,
            "title": tender.title,
            "tenderer": tender.tenderer_name,
            "evaluation_method": tender.evaluation_method,
        },
        "generated_at": now.astimezone(SHANGHAI).isoformat(),
        # 1, or 2… when a re-evaluation (重新评审) sent the trade back to the committee
        "round": room.round,
        "draw": {"id": str(row.id), "commitment": row.commitment, "seed": row.seed_hex},
        "committee": [
            {"seat": m.seat, "name": m.name, "kind": m.kind, "specialty": m.specialty, "chair": m.id == chair}
            for m in members
        ],
        "lots": lots_out,
        "clarifications": [
            {
                "bidder": bidder_names[c.organisation_id],
                "question": c.question,
                "answer": c.answer,
                "asked_at": c.asked_at.astimezone(SHANGHAI).isoformat(),
                "answered_at": c.answered_at.astimezone(SHANGHAI).isoformat() if c.answered_at else None,
            }
            for c in await clarifications.clarifications_of(session, room)
        ],
        "notes": [
            f"Ties are broken by SHA-256(draw seed ‖ bid id), lowest first; at most {limit} candidates per lot (W-11).",
        ],
    }


def _criteria_rows(scheme: scoring.Scheme) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def walk(nodes: tuple[scoring.Criterion, ...], depth: int) -> None:
        for c in nodes:
            rows.append(
                {"code": c.code, "title": c.title, "kind": c.kind, "max_cp": c.max_cp, "depth": depth}
            )
            walk(c.children, depth + 1)

    walk(scheme.criteria, 0)
    return rows


async def make_report(
    session: AsyncSession, actor: Principal, room_id: uuid.UUID, store: ObjectStore, now: datetime
) -> Room:
    """The chair has the platform draw up the report once every step is done: every abnormal score revised
    or justified (G-10). It is hashed, rendered as HTML and PDF, and put to the members for signature."""
    room, _member = await rooms.chair_for(session, actor, room_id, now)
    await reviews.advance(session, room, now)
    if room.phase != "report":
        if room.phase == "scoring":
            raise RuleViolation(
                "G-10",
                "Every member must submit every sheet, and every abnormal score be revised or justified, first.",
            )
        raise Conflict(f"The room is at {room.phase}.")
    body = await build_report(session, room, now)
    digest = report.report_hash(body)
    html = await asyncio.to_thread(report.render_html, body)
    pdf = await asyncio.to_thread(report.render_pdf, body)
    tender = await tenders.tender_by_id(session, room.tender_id)
    base = f"records/{tender.code}/evaluation/report-{digest[:16]}"
    await store.put_bytes(f"{base}.html", html.encode(), content_type="text/html; charset=utf-8")
    await store.put_bytes(f"{base}.pdf", pdf, content_type="application/pdf")
    room.report = body
    room.report_hash = digest
    room.report_html_key = f"{base}.html"
    room.report_pdf_key = f"{base}.pdf"
    room.report_at = now
    room.phase = "signing"
    for m in await rooms.members_of(session, room):
        if m.outcome != "recused":
            m.outcome = None
    await rooms.log_event(session, room, "report.ready", now, report_hash=digest)
    await accounts.record(session, actor, "room.report", "room", room.id, now, report_hash=digest)
    return room


async def sign(
    session: AsyncSession,
    actor: Principal,
    room_id: uuid.UUID,
    report_hash: str,
    signature_b64: str | None,
    dissent: str | None,
    store: ObjectStore,
    now: datetime,
) -> Member:
    """A member signs the report's hash with their Ed25519 key, or refuses with a written dissent (W-11).
    When every seat has answered, the report is final and goes to trading for the candidates' publicity."""
    room, member = await rooms.seat_for(session, actor, room_id, now)
    if room.phase != "signing" or room.report_hash is None:
        raise Conflict(f"There is no report to sign yet; the room is at {room.phase}.")
    if report_hash != room.report_hash:
        raise ValidationProblem(
            "That is not the hash of this room's report; fetch the report again and sign its hash.",
            errors=[field_error("report_hash", "differs from the report's hash")],
        )
    if member.outcome is not None:
        raise Conflict(f"You have already answered: {member.outcome}.")
    if signature_b64 is not None:
        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except (ValueError, TypeError) as exc:
            raise ValidationProblem(
                "The signature is not base64.", errors=[field_error("signature", "not base64")]
            ) from exc
        keys = await accounts.signing_keys_of(session, member.user_id)
        good = next(
            (
                k
                for k in keys
                if report.verify_signature(base64.b64decode(k.public_key), report_hash, signature)
            ),
            None,
        )
        if good is None:
            raise ValidationProblem(
                "The signature does not verify under any of your registered signing keys.",
                errors=[field_error("signature", "does not verify")],
            )
        member.outcome = "signed"
        member.signature = signature_b64
        member.key_fingerprint = good.fingerprint
    else:
        member.outcome = "dissent"
        member.dissent = dissent
    member.signed_at = now
    await session.flush()
    await rooms.log_event(
        session, room, "report.signed" if signature_b64 else "report.dissent", now, seat=member.seat
    )
    await accounts.record(session, actor, "room.sign", "room", room.id, now, outcome=member.outcome)
    members = rooms.active(await rooms.members_of(session, room))
    if all(m.outcome is not None for m in members):
        await rooms.finalise(session, actor, room, store, now)
    return member
