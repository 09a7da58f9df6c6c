"""The bid deadline and the decryption: bidding closes with a signed closing head, lots with too few bids
fail (W-09, G-13), a bid whose deposit was not in place is rejected (W-19), and the envelopes are opened
in the online opening hall (W-08, E-02), where a bid declaring more than the lot's ceiling price, or in
procurement its budget, is rejected the same way (条例 51(5); 87号令 63(4))."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from bidding import envelopes, hall_log, logs, technical
from bidding import schemas as bid_schemas
from bidding.submission import own_bid
from escrow import refunds, subaccounts
from escrow.eligibility import NO_DEPOSIT
from rules.calendar import (
    local_date,
)
from rules.profiles import (
    profile_for,
)
from rules.schedule import working_calendar
from storage import outbox
from storage.objects import (
    ObjectStore,
)
from storage.problems import (
    Conflict,
    RuleViolation,
)
from storage.signing import LogSigner
from trading.lifecycle import (
    Action,
    TenderStatus,
)
from trading.models import (
    Bid,
    Lot,
    Tender,
)
from trading.notices import publish_notice
from trading.tenders import (
    bid_valid_through,
    fail_tender,
    load_tender,
    lots_of,
    move,
    notify,
    price_cap,
    shamir_of,
    window_end,
)


async def _deposit_at_deadline(session: AsyncSession, tender: Tender, bid: Bid, now: datetime) -> Any:
    """Escrow's answer, recorded, whether the bid's deposit stood at the deadline (as of the deadline
    instant, whenever this runs; a guarantee must stay in force through the bid validity period)."""
    return await subaccounts.check_eligibility(
        session,
        bid.lot_id,
        bid.organisation_id,
        "bid_deadline",
        now,
        as_of=tender.bid_deadline,
        cover_through=bid_valid_through(tender),
    )


async def _reject_without_deposit(
    session: AsyncSession, tender: Tender, lot: Lot, bid: Bid, answer: Any, now: datetime
) -> None:
    """A bid on a lot that requires a deposit, whose deposit was not in place at the deadline, is rejected
    under W-19 (条例 51(6), 26): the platform establishes the fact from escrow's answer and keeps its
    evidence. The bid still stands: it counted toward the three needed to open (W-09, 条例 44), and it is
    opened and read out as rejected; it is never evaluated as responsive."""
    if lot.deposit_fen <= 0 or (answer is not None and answer.eligible):
        return
    evidence = (
        dict(answer.evidence or {}, eligibility_id=str(answer.id), checked_at=answer.checked_at.isoformat())
        if answer is not None
        else {"detail": "no deposit at the deadline: the bidder has no deposit sub-account for this lot"}
    )
    bid.rejection_rule = "W-19"
    bid.rejected_at = now
    bid.rejection = {
        "rule": "W-19",
        "reason": NO_DEPOSIT,
        "detail": evidence.get("detail") or NO_DEPOSIT,
        "required_fen": lot.deposit_fen,
        "evidence": evidence,
    }
    await accounts.record(
        session, None, "bid.reject", "bid", bid.id, now, rule="W-19", reason=NO_DEPOSIT, lot=lot.number
    )
    await notify(
        session,
        bid.organisation_id,
        tender.id,
        "bid.rejected",
        f"{tender.code} lot {lot.number}: your bid is rejected under W-19 — {bid.rejection['detail']}.",
        now,
    )


async def _reject_above_limit(
    session: AsyncSession, tender: Tender, lot: Lot, bid: Bid, now: datetime
) -> None:
    """A bid whose declared price exceeds the lot's ceiling price, or in procurement its budget, does not
    respond to the documents (条例 51(5); 87号令 63(4)): once the opening reads its price the platform
    rejects it, the same way as a bid without a deposit (W-19), with the field it exceeds as the reason, and
    no member of the committee can pass it."""
    limit = price_cap(tender.sector, lot)
    if limit is None or bid.rejection_rule is not None or bid.declared_price_fen is None:
        return
    field, cap = limit
    if bid.declared_price_fen <= cap:
        return
    law = "87号令 63(4)" if tender.sector == "procurement" else "条例 51(5)"
    named = "budget" if field == "estimated_price_fen" else "ceiling price"
    detail = (
        f"the declared price {bid.declared_price_fen} fen exceeds the lot's {named} ({field}) of {cap} fen "
        f"({law})"
    )
    bid.rejection_rule = "W-19"
    bid.rejected_at = now
    bid.rejection = {
        "rule": "W-19",
        "reason": field,
        "field": field,
        "detail": detail,
        "limit_fen": cap,
        "declared_price_fen": bid.declared_price_fen,
        "evidence": {"detail": detail, field: cap, "declared_price_fen": bid.declared_price_fen},
    }
    await accounts.record(
        session, None, "bid.reject", "bid", bid.id, now, rule="W-19", reason=field, lot=lot.number
    )
    await notify(
        session,
        bid.organisation_id,
        tender.id,
        "bid.rejected",
        f"{tender.code} lot {lot.number}: your bid is rejected — {detail}.",
        now,
    )


async def close_bidding(session: AsyncSession, tender: Tender, signer: LogSigner, now: datetime) -> str:
    """At the deadline: sign the closing head over the envelopes that stand; lots with fewer than 3 bids
    fail (W-09); the rest go to the online opening hall (W-08, E-02), where a bid whose deposit was not in
    place at the deadline is rejected under W-19."""
    profile = profile_for(tender.sector, tender.method)
    standing = list(
        await session.scalars(select(Bid).where(Bid.tender_id == tender.id, Bid.status == "submitted"))
    )
    answers = {}
    for bid in standing:
        # the deposit (or a verified guarantee) must be in place at the deadline; the answer is recorded.
        # Asked before the closing head, whose append to the platform-wide log holds that log's lock until
        # commit: with deadlines clustered, the less done under it, the more tenders close side by side.
        answers[bid.id] = await _deposit_at_deadline(session, tender, bid, now)
    closing = await logs.close(
        session,
        signer,
        tender_id=tender.id,
        tender_code=tender.code,
        standing={b.id: b.sha256 for b in standing},
        threshold=tender.custody_threshold,
        shamir_threshold=shamir_of(tender),
        now=now,
    )
    # 截标: the signed closing head and the hashes of the envelopes that stand, for anyone to check
    # their receipts against (who bid stays unpublished until the opening record).
    await publish_notice(session, tender, "bid_closing", f"{tender.title} 截标记录", closing, now)
    counts: dict[uuid.UUID, int] = {}
    for bid in standing:
        counts[bid.lot_id] = counts.get(bid.lot_id, 0) + 1
    live = 0
    too_few = profile.rule("min_bids_to_open") or "W-09"
    lots = await lots_of(session, tender.id)
    for lot in lots:
        n = counts.get(lot.id, 0)
        if n < profile.min_bids_to_open:
            lot.status = "failed"
            lot.outcome_reason = (
                f"{too_few}: {n} bid(s) at the deadline; at least {profile.min_bids_to_open} are needed"
            )
            # Not opened, not revoked: these bidders are owed their deposits back, through no fault of theirs.
            for bid in standing:
                if bid.lot_id == lot.id:
                    bid.status = "returned"
                    await accounts.record(session, None, "bid.return", "bid", bid.id, now, rule=too_few)
            cal = await working_calendar(session)
            await refunds.on_lot_settled(
                session, lot.id, profile.too_few_refund_rule, "lot_failed", local_date(now), cal, now
            )
        else:
            live += 1
            for bid in standing:
                if bid.lot_id == lot.id:
                    await _reject_without_deposit(session, tender, lot, bid, answers[bid.id], now)
    if live == 0:
        reason = f"{too_few}: fewer than {profile.min_bids_to_open} bids on every lot; no opening, the trade is to be re-run"
        await fail_tender(session, tender, None, too_few, reason, now)
        return "unsuccessful"
    tender.opened_at = now
    await move(session, tender, Action.CLOSE_BIDDING, None, now, rule="W-08")
    ends = window_end(tender)
    await hall_log.opening_event(
        session,
        tender.id,
        "hall_opened",
        {
            "tender": tender.code,
            "bids": sum(counts.get(lot.id, 0) for lot in lots if lot.status != "failed"),
            "decryption_window_ends": ends.isoformat(),
            "policy": tender.opening_policy,
            **({"envelope": "technical"} if tender.envelopes == 2 else {}),
        },
        now,
    )
    return "opening"


def _in_window(tender: Tender, now: datetime) -> None:
    """Keys are revealed in the hall within the decryption window only (E-02, E-03)."""
    if tender.opened_at is not None and now >= window_end(tender):
        raise RuleViolation(
            "E-03",
            "The decryption window has closed; an envelope its bidder did not open is treated as revoked "
            "unless the tender's custodians open it.",
            window_ended=window_end(tender).isoformat(),
        )
    if tender.status not in (TenderStatus.OPENING, TenderStatus.COMMERCIAL_OPENING):
        if now < tender.bid_deadline:
            raise RuleViolation("E-01", "No envelope can be opened before the bid deadline.")
        raise Conflict(f"Envelopes are opened in the opening hall; the tender is {tender.status}.")


async def decrypt_bid(
    session: AsyncSession,
    actor: Principal,
    tender_id: uuid.UUID,
    bid_id: uuid.UUID,
    data: bid_schemas.BidDecrypt,
    now: datetime,
) -> Bid:
    """In the opening hall, within the window, the bidder reveals its envelope's file key (E-02). The key
    is checked against the header MAC at once; decryption runs as a job, off the request. On a tender of
    two envelopes the technical key is taken at the opening, the commercial one only at the commercial
    opening and only for a bid that passed the technical evaluation (`bidding.technical`)."""
    tender = await load_tender(session, tender_id, lock=True)
    bid = await own_bid(session, actor, tender.id, bid_id)
    _in_window(tender, now)
    if bid.status != "submitted":
        raise Conflict(f"This bid is {bid.status}.")
    if data.kind == "technical":
        await technical.decrypt_technical(session, actor, tender, bid, data, now)
        return bid
    await technical.check_commercial_key(session, tender, bid)
    row = await envelopes.envelope_of(session, bid.id)
    if row.status == "opening" and row.opened_by == "bidder":
        # Revealed already and still being decrypted (the job retries through store or database faults):
        # the same key again is accepted and changes nothing.
        envelopes.check_file_key(row, data.file_key)
        return bid
    if row.status != "sealed":
        raise Conflict(f"This envelope is already {row.status}.")
    key = envelopes.check_file_key(row, data.file_key)
    await start_opening(session, tender, bid, row, key, "bidder", now)
    await accounts.record(session, actor, "bid.decrypt", "bid", bid.id, now)
    return bid


async def start_opening(
    session: AsyncSession,
    tender: Tender,
    bid: Bid,
    row: Any,
    key: bytes,
    by: str,
    now: datetime,
    kind: str = "commercial",
) -> None:
    """An envelope's file key is in hand (from its bidder or its custodians): keep it and queue the
    decryption; a technical envelope (双信封) is decrypted and recorded by `bidding.technical`."""
    row.status = "opening"
    row.file_key = base64.b64encode(key).decode()
    row.opened_by = by
    which = {"kind": "technical"} if kind == "technical" else {}
    outbox.enqueue(session, "trading.open_envelope", {"bid_id": str(bid.id), **which}, now)
    await hall_log.opening_event(
        session,
        tender.id,
        "key_revealed",
        {"bid": str(bid.id), "by": by, **({"envelope": "technical"} if which else {})},
        now,
    )


async def envelope_to_open(session: AsyncSession, bid_id: uuid.UUID) -> envelopes.ToOpen | None:
    """The envelope of a bid if its file key is in hand and it is not opened yet."""
    bid = await session.get(Bid, bid_id)
    if bid is None:
        return None
    row = await envelopes.envelope_of(session, bid.id)
    if row.status != "opening" or row.file_key is None:
        return None
    tender = await load_tender(session, bid.tender_id)
    return envelopes.ToOpen(
        bid.id, bid.object_key, bid.sha256, base64.b64decode(row.file_key), f"opened/{tender.code}/{bid.id}"
    )


async def open_envelope(session: AsyncSession, store: ObjectStore, bid_id: uuid.UUID, now: datetime) -> str:
    """Decrypt one envelope whose file key is in hand and record it (in one transaction: for callers that
    do not mind holding it; the job decrypts between two short ones)."""
    job = await envelope_to_open(session, bid_id)
    if job is None:
        return "skipped"
    opened = await envelopes.open_job(store, job)
    return await record_opening(session, bid_id, opened, now)


async def record_opening(
    session: AsyncSession, bid_id: uuid.UUID, opened: envelopes.Opened, now: datetime
) -> str:
    """Check a decrypted envelope's manifest against the submission (tender, lot, bidder, signing key) and
    read the result into the opening record (唱标). Idempotent: an envelope already resolved is left alone."""
    bid = await session.get(Bid, bid_id)
    assert bid is not None
    lot = await session.get(Lot, bid.lot_id)
    org = await accounts.get_organisation(session, bid.organisation_id)
    assert lot is not None
    row = await envelopes.envelope_of(session, bid.id)
    # Decryption ran without the tender's lock; take it now, and look again at the state, to record it.
    tender = await load_tender(session, bid.tender_id, lock=True)
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
        kind="commercial" if tender.envelopes == 2 else None,
    )
    row.opened_at = now
    if problem is None:
        assert opened.manifest is not None
        row.status = "opened"
        row.result = "opened"
        row.manifest = json.loads(opened.manifest.to_bytes())
        row.files = opened.files
        bid.declared_price_fen = opened.manifest.declared_price_fen
        bid.duration_days = opened.manifest.duration_days
        bid.revealed_at = now
        await accounts.record(session, None, "bid.open", "bid", bid.id, now, by=row.opened_by)
        await _reject_above_limit(session, tender, lot, bid, now)
    else:
        code, detail = problem
        row.status = "failed"
        row.result = code
        row.result_detail = detail[:500]
        row.files = opened.files or None
        if opened.platform_fault:
            # E-03: not the bidder's fault — treated as withdrawn (撤回), and the deposit goes back.
            bid.status = "withdrawn"
            bid.withdrawn_at = now
            await accounts.record(session, None, "bid.withdraw", "bid", bid.id, now, rule="E-03", reason=code)
            cal = await working_calendar(session)
            await refunds.on_withdrawal(
                session, bid.lot_id, bid.organisation_id, "E-03", local_date(now), cal, now
            )
        else:
            # The bidder's envelope does not open to a valid bid for this submission: void (E-03 revoked).
            bid.status = "revoked"
            await accounts.record(session, None, "bid.revoke", "bid", bid.id, now, rule="E-03", reason=code)
            await refunds.on_revoked(session, bid.lot_id, bid.organisation_id)
    await hall_log.opening_event(
        session,
        tender.id,
        "bid_opened" if problem is None else "bid_failed",
        sung_line(tender, lot, org, bid, row),
        now,
    )
    return row.status


def sung_line(tender: Tender, lot: Lot, org: Any, bid: Bid, row: Any) -> dict[str, Any]:
    """One line of the opening record as read out (唱标), with the platform's rejection (W-19: no deposit
    at the deadline) when it established one."""
    line = {
        "bid": str(bid.id),
        "lot": lot.number,
        "bidder": org.name,
        "credit_code": org.credit_code,
        "envelope_sha256": bid.sha256,
        "declared_price_fen": bid.declared_price_fen,
        "duration_days": bid.duration_days,
        "opened_by": row.opened_by,
        "result": row.result or row.status,
        "detail": row.result_detail,
        "custody_cause": (row.custody_outcome or {}).get("cause"),
    }
    if bid.rejection_rule is not None:
        line["rejected"] = rejection_line(bid)
    return line


def rejection_view(bid: Bid) -> dict[str, Any] | None:
    """A bid's platform-established rejection with the evidence it rests on, for those who may see the bid."""
    line = rejection_line(bid)
    return None if line is None else {**line, "evidence": (bid.rejection or {}).get("evidence")}


def rejection_line(bid: Bid) -> dict[str, Any] | None:
    """A bid's platform-established rejection as it is read out and shown: rule, reason and detail."""
    if bid.rejection_rule is None:
        return None
    found = bid.rejection or {}
    return {
        "rule": bid.rejection_rule,
        "reason": found.get("reason"),
        "detail": found.get("detail"),
        "at": bid.rejected_at.isoformat() if bid.rejected_at else None,
    }
