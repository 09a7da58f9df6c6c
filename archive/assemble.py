"""A tender's archive assembled from its records (G-09): the manifest, sealed with the platform's log key,
kept in the object store under `archives/<tender code>/<n>.json` with a row naming it.

The manifest lists the tender's facts and lots, every notice with its body and the body's hash, every
document's hash, every envelope's hash (with the bidder as the opening record made it public), the closing
head and the signed opening record as published, each evaluation report with its hash and the members'
signatures and keys, the reports received, the awards and contracts (or a framework agreement's admitted
suppliers, orders and quotes), the deposit ledger's entries on the tender's deposit accounts with the signed
ledger head that covers them, and the transparency log's and the audit trail's newest signed heads.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import audit, auditchain
from accounts.models import PublicKey
from archive import bundle
from archive.models import TradeArchive
from bidding import logs, submission
from escrow import published
from escrow.models import Deposit, JournalEntry, LedgerAccount, PayeeChange, Posting
from evaluation import rooms
from evaluation.models import Room
from storage.objects import ObjectStore
from storage.problems import NotFound
from storage.signing import LogSigner
from trading.lifecycle import TenderStatus
from trading.models import (
    Award,
    Bid,
    Complaint,
    Contract,
    Document,
    FinalQuote,
    FrameworkAdmission,
    FrameworkAgreement,
    FrameworkOrder,
    FrameworkQuote,
    NegotiationNote,
    Notice,
    Objection,
    Report,
    Tender,
)
from trading.tenders import lots_of

TERMINAL: Final = (
    TenderStatus.COMPLETED,
    TenderStatus.UNSUCCESSFUL,
    TenderStatus.CANCELLED,
    TenderStatus.RETENDER,
)
"""The statuses a tender ends in; its archive is assembled once it reaches one."""

MANIFEST_VERSION: Final = 1


def _at(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value.isoformat()


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _tender(tender: Tender) -> dict[str, Any]:
    return {
        "id": str(tender.id),
        "code": tender.code,
        "title": tender.title,
        "sector": tender.sector,
        "method": tender.method,
        "status": tender.status,
        "tenderer_name": tender.tenderer_name,
        "tenderer_credit_code": tender.tenderer_credit_code,
        "region_code": tender.region_code,
        "evaluation_method": tender.evaluation_method,
        "created_at": _at(tender.created_at),
        "published_at": _at(tender.published_at),
        "documents_from": _at(tender.documents_from),
        "bid_deadline": _at(tender.bid_deadline),
        "opened_at": _at(tender.opened_at),
        "report_at": _at(tender.report_at),
        "awarded_at": _at(tender.awarded_at),
        "closed_at": _at(tender.closed_at),
        "outcome_reason": tender.outcome_reason,
        "parent_id": _id(tender.parent_id),
        "invited_organisations": [str(o) for o in tender.invited_organisations],
        "method_approval": tender.method_approval,
        "max_lots_per_supplier": tender.max_lots_per_supplier,
        "final_quote_deadline": _at(tender.final_quote_deadline),
    }


async def _notices(session: AsyncSession, tender_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(Notice).where(Notice.tender_id == tender_id).order_by(Notice.published_at, Notice.id)
    )
    return [
        {
            "id": str(n.id),
            "kind": n.kind,
            "title": n.title,
            "published_at": _at(n.published_at),
            "supersedes_id": _id(n.supersedes_id),
            "body": n.body,
            "body_sha256": hashlib.sha256(bundle.canonical(n.body)).hexdigest(),
        }
        for n in rows
    ]


async def _documents(session: AsyncSession, tender_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(Document).where(Document.tender_id == tender_id).order_by(Document.uploaded_at, Document.id)
    )
    return [
        {
            "id": str(d.id),
            "kind": d.kind,
            "filename": d.filename,
            "sha256": d.sha256,
            "size": d.size,
            "uploaded_at": _at(d.uploaded_at),
        }
        for d in rows
    ]


def _envelopes(
    bids: list[Bid], lots: dict[uuid.UUID, int], sealed: set[str], named: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    for bid in bids:
        public = named.get(bid.sha256, {})
        out.append(
            {
                "bid": str(bid.id),
                "lot": lots.get(bid.lot_id),
                "sha256": bid.sha256,
                "size": bid.size,
                "submitted_at": _at(bid.submitted_at),
                "status": bid.status,
                "stands": bid.sha256 in sealed,
                "bidder": public.get("bidder"),
                "credit_code": public.get("credit_code"),
                "declared_price_fen": public.get("declared_price_fen"),
            }
        )
    return out


async def _evaluation(session: AsyncSession, tender_id: uuid.UUID) -> list[dict[str, Any]]:
    out = []
    for room in await session.scalars(
        select(Room)
        .where(Room.tender_id == tender_id, Room.report_hash.is_not(None))
        .order_by(Room.round, Room.report_at)
    ):
        signatures = []
        for m in rooms.active(await rooms.members_of(session, room)):
            key = None
            if m.key_fingerprint is not None:
                key = await session.scalar(
                    select(PublicKey.public_key).where(
                        PublicKey.user_id == m.user_id, PublicKey.fingerprint == m.key_fingerprint
                    )
                )
            signatures.append(
                {
                    "seat": m.seat,
                    "name": m.name,
                    "outcome": m.outcome or "pending",
                    "signed_at": _at(m.signed_at),
                    "signature": m.signature,
                    "key_fingerprint": m.key_fingerprint,
                    "public_key": key,
                    "dissent": m.dissent,
                }
            )
        out.append(
            {
                "room": str(room.id),
                "round": room.round,
                # a lot's own room (one room per lot) names its lot; a room of every lot does not
                **({"lot_id": str(room.lot_id)} if room.lot_id is not None else {}),
                "status": room.status,
                "report_hash": room.report_hash,
                "report": room.report,
                "signatures": signatures,
            }
        )
    return out


async def _received(session: AsyncSession, tender_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await session.scalars(select(Report).where(Report.tender_id == tender_id).order_by(Report.round))
    return [
        {
            "id": str(r.id),
            "round": r.round,
            "document_id": str(r.document_id),
            "committee": r.committee,
            "candidates": r.candidates,
            "received_at": _at(r.received_at),
        }
        for r in rows
    ]


async def _disputes(session: AsyncSession, tender_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    """Objections and challenges with their answers, complaints with the authority's decisions."""
    objections = await session.scalars(
        select(Objection).where(Objection.tender_id == tender_id).order_by(Objection.filed_at, Objection.id)
    )
    complaints = await session.scalars(
        select(Complaint).where(Complaint.tender_id == tender_id).order_by(Complaint.filed_at, Complaint.id)
    )
    return {
        "objections": [
            {
                "id": str(o.id),
                "organisation_id": str(o.organisation_id),
                "subject": o.subject,
                "text": o.text,
                "filed_at": _at(o.filed_at),
                "answer_due": _at(o.answer_due),
                "answer": o.answer,
                "answered_at": _at(o.answered_at),
            }
            for o in objections
        ],
        "complaints": [
            {
                "id": str(c.id),
                "organisation_id": str(c.organisation_id),
                "subject": c.subject,
                "known_on": _at(c.known_on),
                "text": c.text,
                "filed_at": _at(c.filed_at),
                "decision_due": _at(c.decision_due),
                "decision": c.decision,
                "decision_text": c.decision_text,
                "outcome": c.outcome,
                "decided_at": _at(c.decided_at),
            }
            for c in complaints
        ],
    }


async def _negotiation(session: AsyncSession, tender_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    """A negotiated procedure's rounds, amendments and exclusions, and the sealed final quotes with the
    price and nonce that opened each (so anyone can recompute its commitment)."""
    notes = await session.scalars(
        select(NegotiationNote)
        .where(NegotiationNote.tender_id == tender_id)
        .order_by(NegotiationNote.recorded_at, NegotiationNote.id)
    )
    quotes = await session.scalars(
        select(FinalQuote)
        .where(FinalQuote.tender_id == tender_id)
        .order_by(FinalQuote.committed_at, FinalQuote.id)
    )
    return {
        "notes": [
            {
                "kind": n.kind,
                "organisation_id": _id(n.organisation_id),
                "round": n.round,
                "text": n.text,
                "recorded_at": _at(n.recorded_at),
            }
            for n in notes
        ],
        "final_quotes": [
            {
                "lot_id": str(q.lot_id),
                "organisation_id": str(q.organisation_id),
                "commitment": q.commitment,
                "committed_at": _at(q.committed_at),
                "price_fen": q.price_fen,
                "nonce": q.nonce,
                "revealed_at": _at(q.revealed_at),
            }
            for q in quotes
        ],
    }


async def _framework(session: AsyncSession, tender_id: uuid.UUID) -> dict[str, Any] | None:
    """A framework agreement's term and purchasers, the admitted suppliers with their caps as they stand,
    and every order with the quotes of its mini-competition (G-01); None for any other procedure."""
    agreement = await session.scalar(
        select(FrameworkAgreement).where(FrameworkAgreement.tender_id == tender_id)
    )
    if agreement is None:
        return None
    admissions = await session.scalars(
        select(FrameworkAdmission)
        .where(FrameworkAdmission.tender_id == tender_id)
        .order_by(FrameworkAdmission.admitted_at, FrameworkAdmission.id)
    )
    orders = list(
        await session.scalars(
            select(FrameworkOrder)
            .where(FrameworkOrder.tender_id == tender_id)
            .order_by(FrameworkOrder.created_at, FrameworkOrder.id)
        )
    )
    quotes: dict[uuid.UUID, list[dict[str, Any]]] = {}
    # a competition ended unawarded by the completion keeps its quotes unread, in the archive too (W-20)
    unread = {o.id for o in orders if o.status == "closed"}
    if orders:
        for q in await session.scalars(
            select(FrameworkQuote)
            .where(FrameworkQuote.order_id.in_([o.id for o in orders]))
            .order_by(FrameworkQuote.quoted_at, FrameworkQuote.id)
        ):
            quotes.setdefault(q.order_id, []).append(
                {
                    "organisation_id": str(q.organisation_id),
                    "price_fen": None if q.order_id in unread else q.price_fen,
                    "quoted_at": _at(q.quoted_at),
                }
            )
    return {
        "valid_until": _at(agreement.valid_until),
        "purchasers": list(agreement.purchasers),
        "made_at": _at(agreement.made_at),
        "kind": agreement.kind,
        "allocation": agreement.allocation,
        "terms": agreement.terms,
        "admissions": [
            {
                "id": str(a.id),
                "lot_id": str(a.lot_id),
                "bid_id": _id(a.bid_id),
                "organisation_id": str(a.organisation_id),
                "cap_fen": a.cap_fen,
                "admitted_at": _at(a.admitted_at),
                "left_at": _at(a.left_at),
            }
            for a in admissions
        ],
        "orders": [
            {
                "id": str(o.id),
                "lot_id": str(o.lot_id),
                "kind": o.kind,
                "status": o.status,
                "subject": o.subject,
                "purchaser_organisation_id": str(o.purchaser_organisation_id),
                "organisation_id": _id(o.organisation_id),
                "price_fen": o.price_fen,
                "created_at": _at(o.created_at),
                "closes_at": _at(o.closes_at),
                "placed_at": _at(o.placed_at),
                "quotes": quotes.get(o.id, []),
            }
            for o in orders
        ],
    }


async def _awards(session: AsyncSession, tender_id: uuid.UUID) -> tuple[list[Any], list[Any]]:
    awards = await session.scalars(
        select(Award).where(Award.tender_id == tender_id).order_by(Award.awarded_at, Award.id)
    )
    contracts = await session.scalars(
        select(Contract).where(Contract.tender_id == tender_id).order_by(Contract.recorded_at, Contract.id)
    )
    return (
        [
            {
                "id": str(a.id),
                "lot_id": str(a.lot_id),
                "bid_id": str(a.bid_id),
                "organisation_id": str(a.organisation_id),
                "price_fen": a.price_fen,
                "awarded_at": _at(a.awarded_at),
                "contract_due": _at(a.contract_due),
                "status": a.status,
                "declined_at": _at(a.declined_at),
                "decline_reason": a.decline_reason,
            }
            for a in awards
        ],
        [
            {
                "id": str(c.id),
                "award_id": str(c.award_id),
                "document_id": str(c.document_id),
                "price_fen": c.price_fen,
                "performance_security_fen": c.performance_security_fen,
                "signed_on": _at(c.signed_on),
                "late_reason": c.late_reason,
                "recorded_at": _at(c.recorded_at),
                "acceptance_result": c.acceptance_result,
                "accepted_on": _at(c.accepted_on),
                "acceptance_report": c.acceptance_text,
            }
            for c in contracts
        ],
    )


async def _ledger(
    session: AsyncSession, tender_id: uuid.UUID, signer: LogSigner, now: datetime
) -> dict[str, Any]:
    codes = sorted(
        await session.scalars(
            select(LedgerAccount.code).where(
                LedgerAccount.tender_id == tender_id, LedgerAccount.kind == "deposit"
            )
        )
    )
    deposits = sorted(
        str(d) for d in await session.scalars(select(Deposit.id).where(Deposit.tender_id == tender_id))
    )
    touching = select(Posting.sequence).where(Posting.account_code.in_(codes))
    # an approved change of payee moves no money: its memo names the deposit instead of an account
    memos = (
        select(PayeeChange.entry_sequence)
        .join(Deposit, Deposit.id == PayeeChange.deposit_id)
        .where(Deposit.tender_id == tender_id, PayeeChange.entry_sequence.is_not(None))
    )
    rows = (
        await session.scalars(
            select(JournalEntry)
            .where(JournalEntry.sequence.in_(touching.union(memos)))
            .order_by(JournalEntry.sequence)
        )
    ).all()
    legs: dict[int, list[dict[str, Any]]] = {}
    if rows:
        for sequence, account, amount in await session.execute(
            select(Posting.sequence, Posting.account_code, Posting.amount_fen)
            .where(Posting.sequence.in_([r.sequence for r in rows]))
            .order_by(Posting.sequence, Posting.leg)
        ):
            legs.setdefault(sequence, []).append({"account": account, "amount_fen": amount})
    entries = [
        {
            "sequence": e.sequence,
            "idempotency_key": e.idempotency_key,
            "request_hash": e.request_hash,
            "reason": e.reason,
            "phase": e.phase,
            "resolves": e.resolves,
            "at": _at(e.at),
            "actor": e.actor,
            "context": e.context,
            "previous_hash": e.previous_hash,
            "hash": e.hash,
            "scheme": e.scheme,
            "party": {
                "role": e.party_role or "",
                "account": e.party_account or "",
                "name": e.party_name or "",
                "bank": e.party_bank or "",
            },
            "postings": legs.get(e.sequence, []),
        }
        for e in rows
    ]
    # the head that covers the extract: signed now if the journal moved since the newest
    await published.seal(session, signer, now, "archive")
    try:
        head: dict[str, Any] | None = dict((await published.latest(session)).to_json())
    except NotFound:
        head = None
    return {"accounts": codes, "deposits": deposits, "entries": entries, "head": head}


async def manifest_of(
    session: AsyncSession, tender: Tender, signer: LogSigner, now: datetime
) -> dict[str, Any]:
    """The archive manifest of `tender` as its records stand at `now`."""
    lots = await lots_of(session, tender.id)
    closing_row = await logs.closing_of(session, tender.id)
    closing = logs.closing_json(closing_row, tender.code, signer) if closing_row is not None else None
    try:
        record: dict[str, Any] | None = await submission.signed_opening_record(
            session, None, tender.id, signer
        )
    except NotFound:
        record = None
    named = {str(e["envelope_sha256"]): e for e in (record or {}).get("envelopes", [])}
    bids = list(
        await session.scalars(
            submission.in_arrival_order(
                select(Bid).where(Bid.tender_id == tender.id, Bid.status != "replaced")
            )
        )
    )
    sealed = {str(h) for h in (closing or {}).get("envelopes", [])}
    awards, contracts = await _awards(session, tender.id)
    transparency = await logs.latest_head(session)
    audit_head = await audit.newest_head(session)
    return {
        "v": MANIFEST_VERSION,
        "kind": bundle.KIND,
        "assembled_at": _at(now),
        "tender": _tender(tender),
        "lots": [
            {
                "number": lot.number,
                "title": lot.title,
                "estimated_price_fen": lot.estimated_price_fen,
                "deposit_fen": lot.deposit_fen,
                "status": lot.status,
                "outcome_reason": lot.outcome_reason,
            }
            for lot in lots
        ],
        "notices": await _notices(session, tender.id),
        "documents": await _documents(session, tender.id),
        "envelopes": _envelopes(bids, {lot.id: lot.number for lot in lots}, sealed, named),
        "closing": closing,
        "opening_record": record,
        "evaluation": await _evaluation(session, tender.id),
        "reports": await _received(session, tender.id),
        "awards": awards,
        "contracts": contracts,
        "disputes": await _disputes(session, tender.id),
        "negotiation": await _negotiation(session, tender.id),
        "framework": await _framework(session, tender.id),
        "deposit_ledger": await _ledger(session, tender.id, signer, now),
        "transparency_head": dict(transparency) if transparency is not None else None,
        "audit_head": dict(auditchain.head_to_json(audit_head)) if audit_head is not None else None,
    }


async def assemble(
    session: AsyncSession, store: ObjectStore, signer: LogSigner, tender: Tender, now: datetime
) -> TradeArchive:
    """Assemble, sign and store the next archive bundle of `tender` (the caller's transaction holds the
    row): the bytes go to the object store first, so a row never names a missing object."""
    number = 1 + len(
        (await session.scalars(select(TradeArchive.id).where(TradeArchive.tender_id == tender.id))).all()
    )
    sealed = bundle.seal(await manifest_of(session, tender, signer, now), signer)
    data = bundle.to_bytes(sealed)
    key = f"archives/{tender.code}/{number}.json"
    await store.put_bytes(key, data, content_type="application/json")
    row = TradeArchive(
        tender_id=tender.id,
        number=number,
        object_key=key,
        sha256=hashlib.sha256(data).hexdigest(),
        manifest_sha256=sealed["manifest_sha256"],
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def unarchived(session: AsyncSession) -> list[tuple[uuid.UUID, str]]:
    """The tenders in a terminal status that have no archive yet, with their status."""
    kept = select(TradeArchive.tender_id)
    rows = await session.execute(
        select(Tender.id, Tender.status)
        .where(Tender.status.in_([s.value for s in TERMINAL]), Tender.id.not_in(kept))
        .order_by(Tender.closed_at, Tender.id)
    )
    return [(tender_id, status) for tender_id, status in rows.all()]


async def archive_tender(
    session: AsyncSession, store: ObjectStore, signer: LogSigner, tender_id: uuid.UUID, now: datetime
) -> int:
    """The chronograph's step for one tender: lock it and assemble its first archive unless another worker
    has; answers 1 when it assembled one."""
    tender = await session.scalar(select(Tender).where(Tender.id == tender_id).with_for_update())
    if tender is None or tender.status not in {s.value for s in TERMINAL}:
        return 0
    if await session.scalar(select(TradeArchive.id).where(TradeArchive.tender_id == tender_id).limit(1)):
        return 0
    await assemble(session, store, signer, tender, now)
    return 1


async def latest_of(session: AsyncSession, tender_id: uuid.UUID) -> TradeArchive:
    """The newest archive bundle of a tender; NotFound before the first."""
    row = await session.scalar(
        select(TradeArchive)
        .where(TradeArchive.tender_id == tender_id)
        .order_by(TradeArchive.number.desc())
        .limit(1)
    )
    if row is None:
        raise NotFound("This tender has no archive yet: it is assembled when the tender ends.")
    return row
