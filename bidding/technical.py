"""Two-envelope bidding (双信封): the technical opening, the technical result and the commercial opening.

On a tender of two envelopes each bid is a technical envelope and a commercial one, sealed and submitted
together (`bidding.submission`). At the deadline the opening hall opens the technical envelopes only: each
bidder reveals its technical file key, the platform decrypts and checks it (its manifest must say
"technical"), and the record reads out who bid and whether the envelope opened, never a price. After the
technical evaluation the committee's chair records in its room which bids passed, with reasons
(`record_result`), and the agency opens the hall again for their commercial envelopes alone (`hall`,
`opening` as for any envelope), where the prices are read out. The commercial envelopes of the bids that
did not pass are never decrypted, and their keys are never asked for.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from bidding import envelopes, hall_log
from bidding import schemas as bid_schemas
from bidding.models import TechnicalEnvelope
from escrow import refunds
from rules.calendar import local_date
from rules.profiles import profile_for
from rules.schedule import working_calendar
from storage import outbox
from storage.problems import Conflict, ValidationProblem, field_error
from trading.lifecycle import Action, TenderStatus
from trading.models import Bid, Lot, Tender
from trading.notices import publish_notice
from trading.tenders import fail_tender, load_tender, lots_of, move, tender_for_agency, window_end

# What a bid that did not pass the technical evaluation is: not responsive to a substantive requirement of
# the documents, so rejected (条例 51(6)); its commercial envelope stays sealed.
NOT_PASSED = "did not pass the technical evaluation"


def technical_phase(tender: Tender) -> bool:
    """Whether the hall is opening the technical envelopes of a tender of two envelopes."""
    return tender.envelopes == 2 and tender.status == TenderStatus.OPENING


async def left_sealed(session: AsyncSession, tender: Tender) -> set[uuid.UUID]:
    """The bids whose commercial envelope is never opened: on a tender of two envelopes, every bid that did
    not pass the technical evaluation (none on a tender of one)."""
    if tender.envelopes != 2:
        return set()
    rows = await envelopes.technicals_of(session, tender.id)
    return {r.bid_id for r in rows if r.passed is not True}


async def check_commercial_key(session: AsyncSession, tender: Tender, bid: Bid) -> None:
    """A commercial file key is taken only at the commercial opening, and only for a bid that passed."""
    if tender.envelopes != 2:
        return
    if tender.status != TenderStatus.COMMERCIAL_OPENING:
        raise Conflict(
            "Commercial envelopes are opened at the commercial opening, after the technical evaluation; "
            f"the tender is {tender.status}.",
            errors=[field_error("kind", "commercial envelopes are not being opened")],
        )
    if bid.id in await left_sealed(session, tender):
        raise Conflict(
            "This bid did not pass the technical evaluation: its commercial envelope is never opened.",
            errors=[field_error("kind", "not passed")],
        )


async def decrypt_technical(
    session: AsyncSession,
    actor: Principal,
    tender: Tender,
    bid: Bid,
    data: bid_schemas.BidDecrypt,
    now: datetime,
) -> None:
    """In the opening hall of a tender of two envelopes, the bidder reveals its technical envelope's file
    key (E-02), checked against that envelope's header at once; decryption runs as a job."""
    if tender.envelopes != 2:
        raise ValidationProblem(
            "Bids on this tender are one envelope: reveal its commercial envelope's key.",
            errors=[field_error("kind", "no technical envelope on this tender")],
        )
    if tender.status != TenderStatus.OPENING:
        raise Conflict(
            f"Technical envelopes are opened at the opening; the tender is {tender.status}.",
            errors=[field_error("kind", "technical envelopes are not being opened")],
        )
    row = await envelopes.technical_of(session, bid.id)
    if row is None:
        raise Conflict("This bid has no technical envelope.", errors=[field_error("kind", "none")])
    if row.status == "opening" and row.opened_by == "bidder":
        envelopes.check_file_key(row, data.file_key)  # a retry of the same key changes nothing
        return
    if row.status != "sealed":
        raise Conflict(f"This technical envelope is already {row.status}.")
    key = envelopes.check_file_key(row, data.file_key)
    row.status = "opening"
    row.file_key = base64.b64encode(key).decode()
    row.opened_by = "bidder"
    outbox.enqueue(session, "trading.open_envelope", {"bid_id": str(bid.id), "kind": "technical"}, now)
    await hall_log.opening_event(
        session, tender.id, "key_revealed", {"bid": str(bid.id), "by": "bidder", "envelope": "technical"}, now
    )
    await accounts.record(session, actor, "bid.decrypt", "bid", bid.id, now, envelope="technical")


async def technical_to_open(session: AsyncSession, bid_id: uuid.UUID) -> envelopes.ToOpen | None:
    """A bid's technical envelope if its file key is in hand and it is not opened yet."""
    row = await envelopes.technical_of(session, bid_id)
    if row is None or row.status != "opening" or row.file_key is None:
        return None
    tender = await load_tender(session, row.tender_id)
    return envelopes.ToOpen(
        bid_id,
        row.object_key,
        row.sha256,
        base64.b64decode(row.file_key),
        f"opened/{tender.code}/{bid_id}/technical",
    )


async def record_technical(
    session: AsyncSession, bid_id: uuid.UUID, opened: envelopes.Opened, now: datetime
) -> str:
    """Check a decrypted technical envelope against the submission (tender, lot, bidder, signing key, and
    its kind: "technical") and read its line into the record, with no price. One that does not open to a
    valid technical envelope of this bid voids the bid (E-03 revoked), so its commercial envelope is never
    opened; the platform's fault withdraws it (E-03 撤回) and its deposit goes back. Idempotent."""
    bid = await session.get(Bid, bid_id)
    assert bid is not None
    lot = await session.get(Lot, bid.lot_id)
    assert lot is not None
    org = await accounts.get_organisation(session, bid.organisation_id)
    tender = await load_tender(session, bid.tender_id, lock=True)
    row = await envelopes.technical_of(session, bid.id)
    assert row is not None
    await session.refresh(row)
    if row.status != "opening":
        return row.status
    problem = await envelopes.opened_problem(
        session,
        opened,
        tender=tender.code,
        lot=lot.number,
        organisation_id=bid.organisation_id,
        bidder=org.credit_code,
        submitted_at=bid.submitted_at,
        kind="technical",
    )
    row.opened_at = now
    if problem is None:
        assert opened.manifest is not None
        row.status = row.result = "opened"
        row.manifest = json.loads(opened.manifest.to_bytes())
        row.files = opened.files
        await accounts.record(session, None, "bid.open", "bid", bid.id, now, envelope="technical")
    else:
        code, detail = problem
        row.status, row.result, row.result_detail = "failed", code, detail[:500]
        row.files = opened.files or None
        await _void(session, bid, code, opened.platform_fault, now)
    await hall_log.opening_event(
        session,
        tender.id,
        "bid_opened" if problem is None else "bid_failed",
        technical_line(lot, org, bid, row),
        now,
    )
    return row.status


async def _void(session: AsyncSession, bid: Bid, code: str, platform_fault: bool, now: datetime) -> None:
    """A bid whose technical envelope did not open: the platform's fault withdraws it (E-03 撤回, deposit
    refunded); anything else is the bidder's (E-03 撤销)."""
    if platform_fault:
        bid.status, bid.withdrawn_at = "withdrawn", now
        await accounts.record(session, None, "bid.withdraw", "bid", bid.id, now, rule="E-03", reason=code)
        cal = await working_calendar(session)
        await refunds.on_withdrawal(
            session, bid.lot_id, bid.organisation_id, "E-03", local_date(now), cal, now
        )
        return
    bid.status = "revoked"
    await accounts.record(session, None, "bid.revoke", "bid", bid.id, now, rule="E-03", reason=code)
    await refunds.on_revoked(session, bid.lot_id, bid.organisation_id)


def technical_line(lot: Lot, org: Any, bid: Bid, row: TechnicalEnvelope) -> dict[str, Any]:
    """One line of the technical opening's record: who bid on which lot and whether the technical envelope
    opened. No price: a technical envelope declares none, and the commercial envelope is still sealed."""
    return {
        "bid": str(bid.id),
        "envelope": "technical",
        "lot": lot.number,
        "bidder": org.name,
        "credit_code": org.credit_code,
        "envelope_sha256": row.sha256,
        "opened_by": row.opened_by,
        "result": row.result or row.status,
        "detail": row.result_detail,
    }


async def end_technical_window(
    session: AsyncSession, tender: Tender, now: datetime, grace: timedelta
) -> bool:
    """At the end of the technical opening's window: a technical envelope its bidder did not open goes to
    the custodians when the tender's policy is "custodians" (once; its header holds their shares of its
    file key, as the commercial one's does of its own), else it voids its bid (E-03 revoked), as does one
    still sealed after custody. The custody window itself is ended by the hall. True when the technical
    opening may close now."""
    rows = await envelopes.technicals_of(session, tender.id)
    bids = {b.id: b for b in await session.scalars(select(Bid).where(Bid.tender_id == tender.id))}
    lots = {lot.id: lot for lot in await lots_of(session, tender.id)}
    live = [
        r
        for r in rows
        if bids[r.bid_id].status == "submitted" and lots[bids[r.bid_id].lot_id].status != "failed"
    ]
    if any(r.status == "opening" for r in live):
        if now < (tender.custody_until or window_end(tender)) + grace:
            return False
        for row in live:
            if row.status == "opening":
                row.status, row.result = "failed", "platform.decryption"
                await _void(session, bids[row.bid_id], "platform.decryption", True, now)
    if any(r.status == "custody" for r in live):
        return False  # the custodians are releasing until the custody window ends
    unopened = [r for r in live if r.status == "sealed"]
    if unopened and tender.opening_policy == "custodians" and tender.custody_until is None:
        tender.custody_until = now + timedelta(minutes=tender.opening_window_minutes)
        for row in unopened:
            row.status = "custody"
        await hall_log.opening_event(
            session,
            tender.id,
            "custody_opened",
            {
                "envelopes": len(unopened),
                "custody_until": tender.custody_until.isoformat(),
                "envelope": "technical",
            },
            now,
        )
        return False
    for row in live:
        if row.status == "sealed":
            bid = bids[row.bid_id]
            row.result = "not_opened"
            await _void(session, bid, "not_opened", False, now)
            org = await accounts.get_organisation(session, bid.organisation_id)
            await hall_log.opening_event(
                session, tender.id, "bid_failed", technical_line(lots[bid.lot_id], org, bid, row), now
            )
    return True


async def close_technical_opening(
    session: AsyncSession, actor: Principal | None, tender: Tender, now: datetime
) -> Tender:
    """End the technical opening: every standing technical envelope is opened or void; lots left with too
    few bids fail (W-09); the technical opening record (no prices) is published and the tender goes to the
    technical evaluation."""
    rows = {r.bid_id: r for r in await envelopes.technicals_of(session, tender.id)}
    bids = list(await session.scalars(select(Bid).where(Bid.tender_id == tender.id)))
    lots = {lot.id: lot for lot in await lots_of(session, tender.id)}
    live = [b for b in bids if b.status == "submitted" and lots[b.lot_id].status != "failed"]
    if any(b.id in rows and rows[b.id].status != "opened" for b in live):
        raise Conflict(
            "Some technical envelopes are not open yet; the opening closes when they are or when the "
            "decryption window ends.",
            window_ends=window_end(tender).isoformat(),
        )
    profile = profile_for(tender.sector, tender.method, tender.envelopes)
    too_few = profile.rule("min_bids_to_open") or "W-09"
    record = []
    for bid in live:
        org = await accounts.get_organisation(session, bid.organisation_id)
        record.append(technical_line(lots[bid.lot_id], org, bid, rows[bid.id]))
    for lot in lots.values():
        valid = sum(1 for b in live if b.lot_id == lot.id and b.rejection_rule is None)
        if lot.status != "failed" and valid < profile.min_bids_to_open:
            lot.status = "failed"
            lot.outcome_reason = (
                f"{too_few}: {valid} valid technical envelope(s) opened; at least {profile.min_bids_to_open} "
                "are needed"
            )
            for bid in live:
                if bid.lot_id == lot.id:
                    bid.status = "returned"
                    await accounts.record(session, None, "bid.return", "bid", bid.id, now, rule=too_few)
    await hall_log.opening_event(
        session, tender.id, "hall_closed", {"bids": len(record), "envelope": "technical"}, now
    )
    await publish_notice(
        session, tender, "opening_record", f"{tender.title} 技术标开标记录", {"bids": record}, now
    )
    if all(lot.status == "failed" for lot in lots.values()):
        reason = f"{too_few}: too few valid technical envelopes on every lot; the trade is to be re-run"
        await fail_tender(session, tender, actor, too_few, reason, now)
    else:
        await move(session, tender, Action.CLOSE_OPENING, actor, now)
    return tender


async def _standing(
    session: AsyncSession, tender: Tender
) -> tuple[dict[uuid.UUID, TechnicalEnvelope], dict[uuid.UUID, Bid]]:
    """The technical envelopes of the tender and the bids standing after its technical opening (submitted,
    on a live lot), by bid."""
    rows = {r.bid_id: r for r in await envelopes.technicals_of(session, tender.id)}
    lots = {lot.id: lot for lot in await lots_of(session, tender.id)}
    standing = {
        b.id: b
        for b in await session.scalars(
            select(Bid).where(Bid.tender_id == tender.id, Bid.status == "submitted")
        )
        if lots[b.lot_id].status != "failed" and b.id in rows
    }
    return rows, standing


def _in_technical_evaluation(tender: Tender) -> None:
    if tender.envelopes != 2:
        raise Conflict(
            "Bids on this tender are one envelope: there is no technical evaluation.",
            errors=[field_error("verdicts", "no technical envelopes on this tender")],
        )
    if tender.status != TenderStatus.TECHNICAL_EVALUATION:
        raise Conflict(
            "The technical result is recorded after the technical opening closes, before the commercial "
            f"opening; the tender is {tender.status}.",
            status_now=tender.status,
        )


async def technical_files(session: AsyncSession, tender: Tender) -> list[bid_schemas.TechnicalBid]:
    """What the evaluation committee reads in its room during the technical evaluation: each standing bid's
    opened technical envelope (its files, never a price: the commercial envelopes are still sealed) and the
    committee's verdict once recorded."""
    rows, standing = await _standing(session, tender)
    lots = {lot.id: lot.number for lot in await lots_of(session, tender.id)}
    out = []
    for bid in sorted(standing.values(), key=lambda b: (lots[b.lot_id], rows[b.id].sha256)):
        row = rows[bid.id]
        org = await accounts.get_organisation(session, bid.organisation_id)
        out.append(
            bid_schemas.TechnicalBid(
                bid.id,
                lots[bid.lot_id],
                org.name,
                org.credit_code,
                row.sha256,
                [bid_schemas.TechnicalFile(f["name"], f["size"], f["sha256"]) for f in row.files or []],
                bid.rejection_rule,
                row.passed,
                row.verdict_reason,
            )
        )
    return out


async def record_result(
    session: AsyncSession,
    actor: Principal,
    tender: Tender,
    data: bid_schemas.TechnicalResult,
    now: datetime,
    *,
    room_id: uuid.UUID,
) -> bid_schemas.TechnicalResultRead:
    """The technical evaluation's result, recorded once by the evaluation committee's chair in its room
    (the caller checks the seat): a verdict with its reason for every bid standing after the technical
    opening. A bid that did not pass is rejected under W-19 (条例 51(6)), its commercial envelope never
    opened; the agency then opens the commercial envelopes of the others (`open_commercial`). 409 unless
    the tender is in its technical evaluation with no result yet; 422 naming the verdict when one names a
    bid that is not standing here, names one twice, leaves one out or passes one the platform rejected."""
    _in_technical_evaluation(tender)
    rows, standing = await _standing(session, tender)
    if any(rows[b].passed is not None for b in standing):
        raise Conflict(
            "The committee has recorded this tender's technical result; it stands.",
            errors=[field_error("verdicts", "already recorded")],
        )
    seen: set[uuid.UUID] = set()
    for n, verdict in enumerate(data.verdicts):
        where = f"verdicts[{n}].bid_id"
        if verdict.bid_id not in standing:
            raise ValidationProblem(
                "Only bids standing after this tender's technical opening are judged.",
                errors=[field_error(where, f"not a standing bid of this tender: {verdict.bid_id}")],
            )
        if verdict.bid_id in seen:
            raise ValidationProblem(
                "Each bid is judged once.", errors=[field_error(where, f"named twice: {verdict.bid_id}")]
            )
        seen.add(verdict.bid_id)
        if verdict.passed and standing[verdict.bid_id].rejection_rule is not None:
            raise ValidationProblem(
                "A bid the platform rejected cannot pass the technical evaluation (W-19).",
                errors=[field_error(f"verdicts[{n}].passed", "rejected by the platform")],
            )
    missing = sorted(str(b) for b in standing if b not in seen)
    if missing:
        raise ValidationProblem(
            "The result judges every bid standing after the technical opening.",
            errors=[field_error("verdicts", f"not judged: {missing[0]}")],
        )
    for verdict in data.verdicts:
        bid, row = standing[verdict.bid_id], rows[verdict.bid_id]
        row.passed, row.judged_at, row.verdict_reason = verdict.passed, now, verdict.reason
        if not verdict.passed and bid.rejection_rule is None:
            bid.rejection_rule, bid.rejected_at = "W-19", now
            bid.rejection = {"rule": "W-19", "reason": NOT_PASSED, "detail": verdict.reason}
    passed = sorted(v.bid_id for v in data.verdicts if v.passed)
    failed = sorted(v.bid_id for v in data.verdicts if not v.passed)
    await accounts.record(
        session,
        actor,
        "tender.technical_result",
        "tender",
        tender.id,
        now,
        room=str(room_id),
        passed=[str(b) for b in passed],
        not_passed=[str(b) for b in failed],
    )
    return bid_schemas.TechnicalResultRead(tender.id, tender.status, passed, failed)


async def open_commercial(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, now: datetime
) -> bid_schemas.TechnicalResultRead:
    """The agency runs the commercial opening once the evaluation committee recorded the technical result
    (`record_result`; 409 before it): the hall opens again, for the passed bids' commercial envelopes alone,
    with a decryption window of its own."""
    tender = await tender_for_agency(session, actor, tender_id)
    if tender.status != TenderStatus.TECHNICAL_EVALUATION:
        raise Conflict(
            "Commercial envelopes are opened only after the technical opening and its evaluation; "
            f"the tender is {tender.status}.",
            status_now=tender.status,
        )
    rows, standing = await _standing(session, tender)
    if any(rows[b].passed is None for b in standing):
        raise Conflict(
            "The evaluation committee has not recorded the technical result: its chair records it in the "
            "committee's room; the commercial opening follows it.",
            errors=[field_error("technical_result", "not recorded by the committee")],
        )
    passed = sorted(b for b in standing if rows[b].passed)
    tender.opened_at, tender.custody_until = now, None
    await move(session, tender, Action.OPEN_COMMERCIAL, actor, now)
    await hall_log.opening_event(
        session,
        tender.id,
        "hall_opened",
        {
            "tender": tender.code,
            "envelope": "commercial",
            "bids": len(passed),
            "decryption_window_ends": window_end(tender).isoformat(),
            "policy": tender.opening_policy,
        },
        now,
    )
    return bid_schemas.TechnicalResultRead(
        tender.id, tender.status, passed, sorted(b for b in standing if b not in passed)
    )
