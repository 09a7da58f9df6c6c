"""The online opening hall (开标大厅): bidders check in and decrypt, custodians release their shares when a
bidder cannot (E-03), the decryption window ends, and the opening record (开标记录) is published."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from bidding import (
    collusion,
    custodians,
    custody,
    envelope,
    envelopes,
    hall_log,
    opening_record,
    records,
    signals,
    technical,
)
from bidding import schemas as bid_schemas
from bidding.opening import start_opening, sung_line
from bidding.submission import in_arrival_order
from escrow import forfeiture, refunds
from rules.calendar import (
    local_date,
)
from rules.profiles import (
    profile_for,
)
from rules.schedule import working_calendar
from storage.problems import (
    Conflict,
    NotFound,
    RuleViolation,
    ValidationProblem,
    field_error,
)
from trading.lifecycle import (
    Action,
    TenderStatus,
)
from trading.models import (
    Bid,
    Lot,
    Objection,
    Tender,
)
from trading.notices import publish_notice
from trading.objections import pending_objections
from trading.tenders import (
    fail_tender,
    load_tender,
    lots_of,
    move,
    oversees,
    shamir_of,
    tender_for_agency,
    visible_tender,
    window_end,
)

log = logging.getLogger("ggzy.trading")

DECRYPTION_GRACE = timedelta(minutes=15)


async def check_in(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    """A bidder signs in to the opening hall (开标签到); the line is read into the live record once."""
    tender = await load_tender(session, tender_id, lock=True)
    mine = await session.scalar(
        select(func.count()).where(
            Bid.tender_id == tender.id,
            Bid.organisation_id == actor.organisation_id,
            Bid.status == "submitted",
        )
    )
    if not mine:
        raise NotFound("No such opening.")
    if tender.status not in (TenderStatus.OPENING, TenderStatus.COMMERCIAL_OPENING):
        if now < tender.bid_deadline:
            raise RuleViolation("E-02", "The opening hall opens at the bid deadline.")
        raise Conflict(f"The opening hall is closed; the tender is {tender.status}.")
    org = await accounts.get_organisation(session, actor.organisation_id)
    earlier = [
        e
        for e in await hall_log.opening_events(session, tender.id, 0)
        if e.kind == "bidder_signed_in" and e.payload.get("credit_code") == org.credit_code
    ]
    if earlier:
        return {
            "seq": earlier[0].seq,
            "at": earlier[0].at.isoformat(),
            "kind": earlier[0].kind,
            **earlier[0].payload,
        }
    event = await hall_log.opening_event(
        session,
        tender.id,
        "bidder_signed_in",
        {"bidder": org.name, "credit_code": org.credit_code, "by": actor.username},
        now,
    )
    await accounts.record(session, actor, "opening.check_in", "tender", tender.id, now)
    return {"seq": event.seq, "at": event.at.isoformat(), "kind": event.kind, **event.payload}


async def custody_view(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, now: datetime
) -> bid_schemas.CustodyView:
    """What a custodian needs to release: the headers of the envelopes in custody and its releases so far.
    On a tender of two envelopes (双信封) these are technical envelopes at the technical opening and
    commercial ones at the commercial opening, each item naming its `kind`."""
    tender = await load_tender(session, tender_id)
    position = await custodians.custodian_position(session, tender.id, actor.organisation_id)
    if now < tender.bid_deadline:
        raise RuleViolation("E-01", "No envelope can be opened before the bid deadline.")
    bids = {b.id: b for b in await session.scalars(select(Bid).where(Bid.tender_id == tender.id))}
    lots = {lot.id: lot.number for lot in await lots_of(session, tender.id)}
    items: list[bid_schemas.CustodyEnvelope] = []
    for kind in custodians.KINDS:
        rows: list[Any] = [
            r
            for r in await (
                envelopes.technicals_of(session, tender.id)
                if kind == "technical"
                else envelopes.envelopes_of(session, tender.id)
            )
            if r.status == "custody"
        ]
        releases = await custodians.releases_of(session, [r.bid_id for r in rows], kind)
        mine = {r.bid_id: r.status for r in releases if r.position == position}
        items += [
            bid_schemas.CustodyEnvelope(
                r.bid_id,
                lots[bids[r.bid_id].lot_id],
                r.sha256 if kind == "technical" else bids[r.bid_id].sha256,
                r.header,
                envelope.header_sha256(records.header_of(r)),
                r.status,
                sum(1 for x in releases if x.bid_id == r.bid_id and x.status == "valid"),
                mine.get(r.bid_id),
                kind,
            )
            for r in rows
        ]
    return bid_schemas.CustodyView(
        tender.code,
        position,
        tender.custody_threshold,
        shamir_of(tender),
        tender.opening_policy,
        tender.custody_until,
        sorted(items, key=lambda e: (e.lot_number, e.kind, e.envelope_sha256)),
    )


def _check_kind(tender: Tender, kind: str) -> None:
    """Custodians open an envelope at its own opening (双信封): a technical one at the technical opening,
    a commercial one only at the commercial opening, after the technical evaluation (409 naming `kind`)."""
    if tender.envelopes != 2:
        if kind == "technical":
            raise ValidationProblem(
                "Bids on this tender are one envelope: there is no technical envelope to release.",
                errors=[field_error("kind", "no technical envelope on this tender")],
            )
        return
    opens = TenderStatus.OPENING if kind == "technical" else TenderStatus.COMMERCIAL_OPENING
    if tender.status != opens:
        when = "the technical opening" if kind == "technical" else "the commercial opening"
        raise Conflict(
            f"Custodians release shares of {kind} envelopes only at {when}; the tender is {tender.status}.",
            errors=[field_error("kind", f"{kind} envelopes are not being opened")],
        )


async def _envelope(session: AsyncSession, bid: Bid, kind: str) -> Any:
    """The bid's envelope of `kind` (None when it has none)."""
    if kind == "technical":
        return await envelopes.technical_of(session, bid.id)
    return await envelopes.envelope_of(session, bid.id)


def _line(tender: Tender, lot: Lot, org: Any, bid: Bid, row: Any, kind: str) -> dict[str, Any]:
    """The opening record's line of the envelope: a technical one reads out no price."""
    if kind == "technical":
        return technical.technical_line(lot, org, bid, row)
    return sung_line(tender, lot, org, bid, row)


async def release_custody(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, data: bid_schemas.ReleaseIn, now: datetime
) -> tuple[bid_schemas.ReleaseResult, custodians.Recorded]:
    """A custodian releases its stanza of one envelope in custody (after the deadline, while the custody
    window runs): the stanza's shared secret with its proof, verified at once and kept, valid or invalid
    (the evidence of a custodian's fault). Once the valid releases open the envelope it is opened; once
    every custodian released validly its outcome is final and applied at once (otherwise at the end of
    the custody window). Envelope by envelope: one envelope's release never waits on another's. On a tender
    of two envelopes the release names its envelope's `kind` (`_check_kind`)."""
    tender = await load_tender(session, tender_id, lock=True)
    position = await custodians.custodian_position(session, tender.id, actor.organisation_id)
    if now < tender.bid_deadline:
        raise RuleViolation(
            "E-01", "No envelope can be opened before the bid deadline; releases are refused."
        )
    if tender.opening_policy != "custodians":
        raise RuleViolation(
            "E-03", "This tender's policy revokes unopened bids; custodians do not open them."
        )
    kind = data.kind
    _check_kind(tender, kind)
    if tender.custody_until is None or tender.status not in (
        TenderStatus.OPENING,
        TenderStatus.COMMERCIAL_OPENING,
    ):
        raise Conflict("No envelope is in custody: custodians release after the decryption window.")
    if now >= tender.custody_until:
        raise RuleViolation(
            "E-03", "The custody window has closed.", custody_ended=tender.custody_until.isoformat()
        )
    bid = await session.get(Bid, data.bid_id)
    row = await _envelope(session, bid, kind) if bid is not None and bid.tender_id == tender.id else None
    if bid is None or row is None:
        raise ValidationProblem(
            "No such envelope in this tender.", errors=[field_error("bid_id", "unknown bid")]
        )
    if row.status != "custody":
        kept = await custodians.release_of(session, bid.id, position, kind)
        if kept is not None and kept.status == "valid" and kept.release is not None:
            if kept.release.get("shared_secret") == data.release.get("shared_secret"):
                # a retry of the release that resolved the envelope: the same answer, nothing new
                cause = (row.custody_outcome or {}).get("cause")
                replay = custodians.Recorded("valid", None, None, kept.share is not None, True)
                result = bid_schemas.ReleaseResult(
                    bid.id, position, "valid", replay.stanza_opens, True, row.status, cause, kind
                )
                return result, replay
        raise Conflict(
            f"This envelope is {row.status}, not in custody.", errors=[field_error("bid_id", row.status)]
        )
    try:
        custody.parse_release(data.release)
    except envelope.EnvelopeError as exc:
        raise ValidationProblem(
            f"This is not a custody release ({exc.message}); make it with `ggzy custodian release`.",
            errors=[field_error("release", exc.code)],
            release_error=exc.code,
        ) from exc
    member = next(c for c in await custodians.roster(session, tender.id) if c.position == position)
    recorded = await custodians.record_release(
        session, row=row, custodian=member, context=tender.code, release=data.release, now=now, kind=kind
    )
    outcome: str | None = (row.custody_outcome or {}).get("cause")
    if not recorded.replayed:
        await accounts.record(
            session,
            actor,
            "custody.release",
            "bid",
            bid.id,
            now,
            outcome="accepted" if recorded.status == "valid" else "refused",
            position=position,
            status=recorded.status,
            error=recorded.error,
            stanza_opens=recorded.stanza_opens,
            envelope=kind,
        )
        if recorded.status == "valid":
            attributed = await custodians.attribute(
                session, row, context=tender.code, shamir_threshold=shamir_of(tender), kind=kind
            )
            if attributed.complete:
                await _resolve_custody(session, tender, bid, row, attributed, now, kind)
                outcome = attributed.cause
    return (
        bid_schemas.ReleaseResult(
            bid.id,
            position,
            recorded.status,
            recorded.stanza_opens,
            recorded.replayed,
            row.status,
            outcome,
            kind,
        ),
        recorded,
    )


async def _resolve_custody(
    session: AsyncSession,
    tender: Tender,
    bid: Bid,
    row: Any,
    outcome: custody.Outcome,
    now: datetime,
    kind: str = "commercial",
) -> None:
    """Apply an envelope's custody outcome: opened → decrypted as any other; the bidder's fault → revoked
    (E-03 撤销) with a W-06 forfeiture of its deposit proposed; a custodian's fault → withdrawn (E-03 撤回),
    its deposit refunded. The live record gets the cause and its evidence, the audit trail too. A technical
    envelope (双信封) the same way: its bid void, its commercial envelope then never opened."""
    lot = await session.get(Lot, bid.lot_id)
    org = await accounts.get_organisation(session, bid.organisation_id)
    assert lot is not None
    evidence = outcome.evidence()
    row.custody_outcome = evidence
    await hall_log.opening_event(
        session,
        tender.id,
        "custody_outcome",
        {
            "bid": str(bid.id),
            "lot": lot.number,
            "bidder": org.name,
            "credit_code": org.credit_code,
            "envelope_sha256": row.sha256 if kind == "technical" else bid.sha256,
            **({"envelope": "technical"} if kind == "technical" else {}),
            **evidence,
        },
        now,
    )
    if outcome.cause == "opened":
        assert outcome.file_key is not None
        await accounts.record(session, None, "custody.open", "bid", bid.id, now, envelope=kind, **evidence)
        await start_opening(session, tender, bid, row, outcome.file_key, "custodians", now, kind)
        return
    row.status = "failed"
    row.result = opening_record.CAUSE_RESULTS[outcome.cause]
    row.result_detail = outcome.detail[:500]
    if outcome.cause == "bidder_fault":
        bid.status = "revoked"
        await accounts.record(
            session, None, "bid.revoke", "bid", bid.id, now, rule="E-03", reason=row.result, **evidence
        )
        await refunds.on_revoked(session, bid.lot_id, bid.organisation_id)
        proposal = await forfeiture.on_proven_fault(
            session,
            bid.lot_id,
            bid.organisation_id,
            f"E-03 撤销: the custody opening of envelope {bid.sha256[:16]}… proved the bidder's fault — "
            f"{outcome.detail} (opening record of {tender.code})",
            now,
        )
        if proposal is not None:
            await accounts.record(
                session, None, "escrow.forfeiture.propose", "forfeiture", proposal.id, now, rule="W-06"
            )
    else:
        bid.status, bid.withdrawn_at = "withdrawn", now
        await accounts.record(
            session, None, "bid.withdraw", "bid", bid.id, now, rule="E-03", reason=row.result, **evidence
        )
        await refunds.on_withdrawal(
            session,
            bid.lot_id,
            bid.organisation_id,
            "E-03",
            local_date(now),
            await working_calendar(session),
            now,
        )
    await hall_log.opening_event(
        session, tender.id, "bid_failed", _line(tender, lot, org, bid, row, kind), now
    )


async def _end_custody(
    session: AsyncSession, tender: Tender, bid: Bid, row: Any, now: datetime, kind: str = "commercial"
) -> None:
    """At the end of the custody window: the envelope's outcome from the releases on record, in a savepoint
    of its own, so one envelope that cannot be attributed (its stored state unreadable) fails neither the
    others nor the tick: it is then the platform's fault (E-03 撤回), its deposit refunded."""
    try:
        async with session.begin_nested():
            outcome = await custodians.attribute(
                session, row, context=tender.code, shamir_threshold=shamir_of(tender), kind=kind
            )
            await _resolve_custody(session, tender, bid, row, outcome, now, kind)
        return
    except Exception:
        log.exception(
            "custody outcome of bid %s could not be attributed; treated as the platform's fault", bid.id
        )
    await session.refresh(row)
    await session.refresh(bid)
    async with session.begin_nested():
        await _platform_fault(
            session,
            tender,
            bid,
            row,
            "platform.custody",
            "the platform could not attribute the custody outcome",
            now,
            kind,
        )


async def _platform_fault(
    session: AsyncSession,
    tender: Tender,
    bid: Bid,
    row: Any,
    code: str,
    detail: str,
    now: datetime,
    kind: str = "commercial",
) -> None:
    """Not the bidder's fault (E-03): the bid is treated as withdrawn (撤回) and its deposit goes back."""
    row.status, row.result, row.result_detail = "failed", code, detail
    bid.status, bid.withdrawn_at = "withdrawn", now
    await accounts.record(session, None, "bid.withdraw", "bid", bid.id, now, rule="E-03", reason=code)
    await refunds.on_withdrawal(
        session,
        bid.lot_id,
        bid.organisation_id,
        "E-03",
        local_date(now),
        await working_calendar(session),
        now,
    )
    lot = await session.get(Lot, bid.lot_id)
    assert lot is not None
    org = await accounts.get_organisation(session, bid.organisation_id)
    await hall_log.opening_event(
        session, tender.id, "bid_failed", _line(tender, lot, org, bid, row, kind), now
    )


async def _end_technical_custody(session: AsyncSession, tender: Tender, now: datetime) -> bool:
    """At the end of the technical opening's custody window, each technical envelope still in custody ends
    with its one cause (`_end_custody`); True when the custodians' shares opened one at the last moment
    (it is decrypting now)."""
    if tender.custody_until is None or now < tender.custody_until:
        return False
    rows = [r for r in await envelopes.technicals_of(session, tender.id) if r.status == "custody"]
    for row in rows:
        bid = await session.get(Bid, row.bid_id)
        assert bid is not None
        await _end_custody(session, tender, bid, row, now, "technical")
    return any(r.status == "opening" for r in rows)


async def end_decryption_window(session: AsyncSession, tender: Tender, now: datetime) -> bool:
    """At the window's end, envelopes nobody opened go to the custodians (policy "custodians", once) or
    their bids are revoked (E-03). True when the opening may close now. On a tender of two envelopes the
    technical opening ends by `technical.end_technical_window` (its custody window, if any, ended here
    first); at the commercial opening the commercial envelopes of the bids that did not pass the technical
    evaluation are not in it."""
    if technical.technical_phase(tender):
        if await _end_technical_custody(session, tender, now):
            return False
        return await technical.end_technical_window(session, tender, now, DECRYPTION_GRACE)
    sealed_for_good = await technical.left_sealed(session, tender)
    rows = [r for r in await envelopes.envelopes_of(session, tender.id) if r.bid_id not in sealed_for_good]
    bids = {b.id: b for b in await session.scalars(select(Bid).where(Bid.tender_id == tender.id))}
    lots = {lot.id: lot for lot in await lots_of(session, tender.id)}
    live = [
        r
        for r in rows
        if bids[r.bid_id].status == "submitted" and lots[bids[r.bid_id].lot_id].status != "failed"
    ]
    stuck_after = (tender.custody_until or window_end(tender)) + DECRYPTION_GRACE
    if any(r.status == "opening" for r in live):
        if now < stuck_after:
            return False  # a decryption job is still running; look again shortly
        for row in live:
            if row.status == "opening":
                # The platform could not decrypt an envelope whose key it held, though its job kept
                # retrying through the window and the grace: its fault, not the bidder's (E-03) — treated
                # as withdrawn, the deposit goes back, and the line is read out as failed.
                await _platform_fault(
                    session,
                    tender,
                    bids[row.bid_id],
                    row,
                    "platform.decryption",
                    "the platform did not finish decrypting the envelope",
                    now,
                )
    in_custody = [r for r in live if r.status == "custody"]
    if in_custody and tender.custody_until is not None and now >= tender.custody_until:
        for row in in_custody:
            await _end_custody(session, tender, bids[row.bid_id], row, now)
        if any(r.status == "opening" for r in in_custody):
            return False  # opened by the custodians' shares at the last moment: decrypting now
    unopened = [r for r in live if r.status in ("sealed", "custody")]
    if unopened and tender.opening_policy == "custodians" and tender.custody_until is None:
        tender.custody_until = now + timedelta(minutes=tender.opening_window_minutes)
        for row in unopened:
            row.status = "custody"
        await hall_log.opening_event(
            session,
            tender.id,
            "custody_opened",
            {"envelopes": len(unopened), "custody_until": tender.custody_until.isoformat()},
            now,
        )
        return False
    for row in unopened:
        bid = bids[row.bid_id]
        bid.status = "revoked"
        row.result = "not_opened"
        await accounts.record(session, None, "bid.revoke", "bid", bid.id, now, rule="E-03")
        await refunds.on_revoked(session, bid.lot_id, bid.organisation_id)
        org = await accounts.get_organisation(session, bid.organisation_id)
        await hall_log.opening_event(
            session, tender.id, "bid_failed", sung_line(tender, lots[bid.lot_id], org, bid, row), now
        )
    return True


async def close_opening(
    session: AsyncSession,
    actor: Principal | None,
    tender_id: uuid.UUID,
    now: datetime,
    *,
    tender: Tender | None = None,
) -> Tender:
    """End the opening: the opening record (开标记录) is published, W-18 signals are computed, lots left with
    fewer than 3 valid bids fail (W-09), and the tender goes to evaluation. The agency may close early once
    every envelope is resolved; otherwise the chronograph closes it after the window(s). On a tender of two
    envelopes this closes the technical opening (`technical.close_technical_opening`) or, the second time,
    the commercial opening."""
    if tender is None:
        assert actor is not None
        tender = await tender_for_agency(session, actor, tender_id)
    if tender.status not in (TenderStatus.OPENING, TenderStatus.COMMERCIAL_OPENING):
        raise Conflict(f"The tender is {tender.status}, not opening.")
    if technical.technical_phase(tender):
        if await pending_objections(session, tender, "opening"):
            raise Conflict("Answer the objections raised at the opening first.")
        return await technical.close_technical_opening(session, actor, tender, now)
    # 双信封: the bids that did not pass the technical evaluation are not read out; their prices stay sealed.
    sealed_for_good = await technical.left_sealed(session, tender)
    rows = {
        r.bid_id: r
        for r in await envelopes.envelopes_of(session, tender.id)
        if r.bid_id not in sealed_for_good
    }
    bids = list(await session.scalars(in_arrival_order(select(Bid).where(Bid.tender_id == tender.id))))
    lots = {lot.id: lot for lot in await lots_of(session, tender.id)}
    pending = [
        b
        for b in bids
        if b.status == "submitted"
        and b.id in rows
        and rows[b.id].status != "opened"
        and lots[b.lot_id].status != "failed"
    ]
    if pending:
        raise Conflict(
            "Some envelopes are not open yet; the opening closes when they are or when the decryption "
            "window (and any custody window) ends.",
            window_ends=window_end(tender).isoformat(),
        )
    if await pending_objections(session, tender, "opening"):
        raise Conflict("Answer the objections raised at the opening first.")
    profile = profile_for(tender.sector, tender.method)
    orgs: dict[uuid.UUID, Any] = {}
    record = []
    evidence = []
    valid: dict[uuid.UUID, int] = {}
    for bid in bids:
        lot = lots[bid.lot_id]
        row = rows.get(bid.id)
        withdrawn_early = bid.status == "withdrawn" and (bid.withdrawn_at or now) < tender.bid_deadline
        if lot.status == "failed" or row is None or bid.status == "replaced" or withdrawn_early:
            continue
        if bid.organisation_id not in orgs:
            orgs[bid.organisation_id] = await accounts.get_organisation(session, bid.organisation_id)
        org = orgs[bid.organisation_id]
        record.append(sung_line(tender, lot, org, bid, row))
        if bid.status == "submitted" and bid.rejection_rule is None:  # a W-19 bid is opened, not valid
            valid[lot.id] = valid.get(lot.id, 0) + 1
        if bid.status == "submitted":
            evidence.append(
                collusion.BidEvidence(
                    bid_id=str(bid.id),
                    bidder=org.credit_code,
                    bidder_name=org.name,
                    files=tuple(
                        collusion.FileEvidence(f["name"], f["sha256"], f["size"], f.get("metadata") or {})
                        for f in (row.files or [])
                    ),
                    signing_key=(row.manifest or {}).get("signing_key", ""),
                    address=row.client_address,
                    device=row.client_device,
                    user_agent=row.user_agent,
                )
            )
    too_few = profile.rule("min_bids_to_open") or "W-09"
    for lot in lots.values():
        if lot.status != "failed" and valid.get(lot.id, 0) < profile.min_bids_to_open:
            lot.status = "failed"
            lot.outcome_reason = f"{too_few}: {valid.get(lot.id, 0)} valid bid(s) opened; at least {profile.min_bids_to_open} are needed"
            for bid in bids:
                if bid.lot_id == lot.id and bid.status == "submitted":
                    bid.status = "returned"
                    await accounts.record(session, None, "bid.return", "bid", bid.id, now, rule=too_few)
    found = await signals.record_signals(session, tender.id, evidence, now)
    objections = [
        {
            "id": str(o.id),
            "text": o.text,
            "answer": o.answer,
            "answered_at": o.answered_at and o.answered_at.isoformat(),
        }
        for o in await session.scalars(
            select(Objection).where(Objection.tender_id == tender.id, Objection.subject == "opening")
        )
    ]
    await hall_log.opening_event(
        session, tender.id, "hall_closed", {"bids": len(record), "signals": len(found)}, now
    )
    await publish_notice(
        session,
        tender,
        "opening_record",
        f"{tender.title} {'商务标开标记录' if tender.envelopes == 2 else '开标记录'}",
        {"bids": record, "objections": objections},
        now,
    )
    if all(lot.status == "failed" for lot in lots.values()):
        reason = f"{too_few}: fewer than {profile.min_bids_to_open} valid bids on every lot; the trade is to be re-run"
        await fail_tender(session, tender, actor, too_few, reason, now)
    else:
        await move(session, tender, Action.CLOSE_OPENING, actor, now)
    return tender


async def opening_hall(
    session: AsyncSession, actor: Principal, tender_id: uuid.UUID, after: int
) -> tuple[Tender, list[Any]]:
    """The live opening record for its participants: the tender's agency, its bidders (once the hall
    opened), the centre, supervisors and auditors."""
    tender = await visible_tender(session, actor, tender_id)
    if not oversees(actor, tender):
        bidder = await session.scalar(
            select(Bid.id)
            .where(Bid.tender_id == tender.id, Bid.organisation_id == actor.organisation_id)
            .limit(1)
        )
        if bidder is None:
            raise NotFound("No such opening.")
    return tender, await hall_log.opening_events(session, tender.id, after)
