"""The transparency logs: the platform-wide log (RFC 9162) and each tender's log of bid events (W-20), the receipts they give, and the closing head signed at the deadline with its custody statement."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

import accounts.service as accounts
from bidding import envelope, logtree, merkle, opening_record
from bidding import receipt as receipts
from bidding.custodians import roster
from bidding.models import (
    BidderLog,
    BidEvent,
    Closing,
    Envelope,
    LogHead,
    LogLeaf,
    LogNode,
    LogState,
    TechnicalEnvelope,
    TenderLog,
)
from bidding.records import b64, header_of
from storage.db import upsert_ignore
from storage.problems import Conflict, NotFound, ValidationProblem, field_error
from storage.signing import LogSigner

LOG_ID = receipts.PUBLIC_LOG_ID


def _ms(instant: datetime) -> datetime:
    """Heads carry millisecond timestamps: truncate before signing so the stored row re-creates them."""
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


async def _lock_log(session: AsyncSession) -> LogState:
    await session.execute(upsert_ignore(session, LogState, {"id": 1, "size": 0}))
    state = await session.scalar(
        select(LogState).where(LogState.id == 1).with_for_update().execution_options(populate_existing=True)
    )
    assert state is not None
    return state


async def _nodes(session: AsyncSession, keys: set[logtree.NodeKey]) -> dict[logtree.NodeKey, bytes]:
    if not keys:
        return {}
    found: dict[logtree.NodeKey, bytes] = {}
    wanted = sorted(keys)
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        rows = await session.execute(
            select(LogNode.level, LogNode.index, LogNode.hash).where(
                tuple_(LogNode.level, LogNode.index).in_(part)
            )
        )
        for level, index, value in rows:
            found[(level, index)] = bytes.fromhex(value)
    missing = keys - found.keys()
    if missing:
        raise RuntimeError(f"the log is missing nodes {sorted(missing)[:5]}")
    return found


def _signed(row: LogHead, kind: str) -> merkle.SignedTreeHead:
    head = merkle.TreeHead(LOG_ID, row.tree_size, bytes.fromhex(row.root_hash), row.timestamp, kind)
    return merkle.SignedTreeHead(head, row.key_id, base64.b64decode(row.signature))


async def append_public(
    session: AsyncSession,
    signer: LogSigner,
    entry: dict[str, Any],
    *,
    tender_id: uuid.UUID,
    now: datetime,
    bid_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Append one leaf to the platform-wide log, sign its new head and return the leaf's receipt (leaf,
    inclusion proof, signed head, log key). Its leaves are tenders' closing heads, one per tender at its
    deadline, so its head moves only then (W-20); before tender logs existed every bid event was one
    (those kept their `bid_id`). Appends are serialised by the log's state row."""
    state = await _lock_log(session)
    index = state.size
    size = index + 1
    entry = {**entry, "log": LOG_ID, "index": index}
    data = merkle.leaf_bytes(entry)
    leaf = logtree.leaf_hash(data)
    nodes = await _nodes(
        session,
        (logtree.append_nodes(index) | logtree.root_nodes(size) | logtree.inclusion_nodes(index, size))
        - {(0, index)}
        - _made_keys(index),
    )
    made = logtree.completed_by(index, leaf, nodes)
    nodes.update(made)
    for (level, i), value in made.items():
        session.add(LogNode(level=level, index=i, hash=value.hex()))
    root = logtree.root(size, nodes)
    proof = logtree.inclusion_proof(index, size, nodes)
    stamp = _ms(now)
    sth = merkle.sign_head(merkle.TreeHead(LOG_ID, size, root, stamp, "head"), signer.private)
    session.add(
        LogHead(
            tree_size=size,
            root_hash=root.hex(),
            timestamp=stamp,
            key_id=sth.key_id,
            signature=b64(sth.signature),
        )
    )
    session.add(
        LogLeaf(
            index=index,
            tender_id=tender_id,
            bid_id=bid_id,
            event=entry["event"],
            leaf=data.decode(),
            leaf_hash=leaf.hex(),
            created_at=now,
        )
    )
    state.size = size
    await session.flush()
    return merkle.receipt_to_json(
        leaf=entry, leaf_index=index, inclusion_proof=proof, tree_head=sth, log_public_key=signer.public_raw
    )


def _made_keys(index: int) -> set[logtree.NodeKey]:
    keys = {(0, index)}
    level, i = 0, index
    while i & 1:
        level, i = level + 1, i >> 1
        keys.add((level, i))
    return keys


async def receipt(session: AsyncSession, signer: LogSigner, leaf_index: int) -> dict[str, Any]:
    """The receipt of a leaf of the platform-wide log, proved against the head signed when it was appended
    (for a bid logged there before tender logs existed: a version 1 receipt)."""
    leaf = await session.get(LogLeaf, leaf_index)
    if leaf is None:
        raise NotFound("No such log entry.")
    size = leaf_index + 1
    head = await session.get(LogHead, size)
    assert head is not None
    nodes = await _nodes(session, logtree.inclusion_nodes(leaf_index, size))
    return merkle.receipt_to_json(
        leaf=json.loads(leaf.leaf),
        leaf_index=leaf_index,
        inclusion_proof=logtree.inclusion_proof(leaf_index, size, nodes),
        tree_head=_signed(head, "head"),
        log_public_key=signer.public_raw,
    )


async def latest_head(session: AsyncSession) -> merkle.PublishedTreeHead | None:
    """The newest signed tree head, or None while the log is empty."""
    row = await session.scalar(select(LogHead).order_by(LogHead.tree_size.desc()).limit(1))
    return None if row is None else merkle.head_to_json(_signed(row, "head"))


async def head_at(session: AsyncSession, size: int) -> merkle.PublishedTreeHead:
    """The signed head of the log at `size` leaves."""
    row = await session.get(LogHead, size)
    if row is None:
        raise NotFound(f"No signed head of size {size}.")
    return merkle.head_to_json(_signed(row, "head"))


async def log_size(session: AsyncSession) -> int:
    """How many leaves the platform-wide log holds."""
    return int(await session.scalar(select(func.coalesce(func.max(LogHead.tree_size), 0))) or 0)


async def consistency(session: AsyncSession, first: int, second: int) -> list[str]:
    """The consistency proof between two sizes of the log (base64 hashes)."""
    size = await log_size(session)
    if not 0 <= first <= second <= size:
        raise ValidationProblem(
            f"Sizes must satisfy 0 ≤ first ≤ second ≤ {size} (the log's size).",
            errors=[field_error("second" if second > size else "first", "out of range")],
        )
    nodes = await _nodes(session, logtree.consistency_nodes(first, second))
    return [b64(h) for h in logtree.consistency_proof(first, second, nodes)]


async def inclusion(session: AsyncSession, leaf_index: int, size: int) -> list[str]:
    """The inclusion proof of a leaf in the log at `size` leaves (base64 hashes)."""
    if not 0 <= leaf_index < size <= await log_size(session):
        raise ValidationProblem(
            "The leaf must lie within a tree size the log has reached.",
            errors=[field_error("tree_size", "out of range")],
        )
    nodes = await _nodes(session, logtree.inclusion_nodes(leaf_index, size))
    return [b64(h) for h in logtree.inclusion_proof(leaf_index, size, nodes)]


async def _lock_tender_log(session: AsyncSession, tender_id: uuid.UUID) -> TenderLog:
    await session.execute(upsert_ignore(session, TenderLog, {"tender_id": tender_id, "size": 0}))
    state = await session.scalar(
        select(TenderLog)
        .where(TenderLog.tender_id == tender_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert state is not None
    return state


async def _bidder_log(
    session: AsyncSession, tender_id: uuid.UUID, tender_code: str, organisation_id: uuid.UUID
) -> BidderLog:
    """The bidder's own log of the tender, made at its first event (the caller holds the tender log)."""
    row = await session.scalar(
        select(BidderLog).where(
            BidderLog.tender_id == tender_id, BidderLog.organisation_id == organisation_id
        )
    )
    if row is None:
        # A random token, not a number: a bidder log's id must not count the bidders before it.
        token = secrets.token_hex(8)
        row = BidderLog(
            tender_id=tender_id,
            organisation_id=organisation_id,
            log_id=f"{receipts.tender_log_id(tender_code)}/{token}",
        )
        session.add(row)
        await session.flush()
    return row


async def _bidder_hashes(
    session: AsyncSession, bidder_log_id: uuid.UUID, upto: int | None = None
) -> list[bytes]:
    query = select(BidEvent.leaf_hash).where(BidEvent.bidder_log_id == bidder_log_id)
    if upto is not None:
        query = query.where(BidEvent.index <= upto)
    return [bytes.fromhex(h) for h in await session.scalars(query.order_by(BidEvent.index))]


async def log_bid_event(
    session: AsyncSession,
    signer: LogSigner,
    entry: dict[str, Any],
    *,
    tender_id: uuid.UUID,
    tender_code: str,
    organisation_id: uuid.UUID,
    bid_id: uuid.UUID,
    now: datetime,
) -> dict[str, Any]:
    """Append a bid event to its bidder's own log of the tender and return the receipt at once (version
    2: the leaf, its inclusion proof and that log's head, signed now). The head counts only this bidder's
    events, so the receipt tells nobody how many others bid or when (W-20); the event also takes the next
    place in the tender's arrival order, which only the closing head publishes, after the deadline.
    Refused (409) once the tender's closing head is signed."""
    state = await _lock_tender_log(session, tender_id)
    if state.closed_at is not None:
        raise Conflict("Bids on this tender are closed: its closing head is signed and its log is sealed.")
    log = await _bidder_log(session, tender_id, tender_code, organisation_id)
    hashes = await _bidder_hashes(session, log.id)
    index = len(hashes)
    entry = {**entry, "v": 2, "log": log.log_id, "index": index}
    data = merkle.leaf_bytes(entry)
    hashes.append(merkle.leaf_hash(data))
    stamp = _ms(now)
    root = merkle.root(hashes)
    sth = merkle.sign_head(merkle.TreeHead(log.log_id, index + 1, root, stamp, "head"), signer.private)
    session.add(
        BidEvent(
            tender_id=tender_id,
            seq=state.size,
            bidder_log_id=log.id,
            index=index,
            bid_id=bid_id,
            event=entry["event"],
            leaf=data.decode(),
            leaf_hash=hashes[-1].hex(),
            created_at=now,
            head_root=root.hex(),
            head_timestamp=stamp,
            key_id=sth.key_id,
            head_signature=b64(sth.signature),
        )
    )
    state.size += 1
    await session.flush()
    return merkle.receipt_to_json(
        leaf=entry,
        leaf_index=index,
        inclusion_proof=merkle.inclusion_proof(index, hashes),
        tree_head=sth,
        log_public_key=signer.public_raw,
        version=2,
    )


async def receipt_of_bid(session: AsyncSession, signer: LogSigner, bid_id: uuid.UUID) -> dict[str, Any]:
    """The receipt of a bid's latest logged event (its withdrawal once withdrawn), exactly as it was
    issued: version 2 from its bidder's own log; version 1 from the platform-wide log for a bid logged
    there before tender logs existed."""
    event = await session.scalar(
        select(BidEvent).where(BidEvent.bid_id == bid_id).order_by(BidEvent.index.desc()).limit(1)
    )
    if event is None:
        legacy = await session.scalar(
            select(LogLeaf.index).where(LogLeaf.bid_id == bid_id).order_by(LogLeaf.index.desc()).limit(1)
        )
        if legacy is None:
            raise NotFound("No such log entry.")
        return await receipt(session, signer, legacy)
    log = await session.get(BidderLog, event.bidder_log_id)
    assert log is not None
    hashes = await _bidder_hashes(session, log.id, event.index)
    head = merkle.TreeHead(
        log.log_id, event.index + 1, bytes.fromhex(event.head_root), event.head_timestamp, "head"
    )
    return merkle.receipt_to_json(
        leaf=json.loads(event.leaf),
        leaf_index=event.index,
        inclusion_proof=merkle.inclusion_proof(event.index, hashes),
        tree_head=merkle.SignedTreeHead(head, event.key_id, base64.b64decode(event.head_signature)),
        log_public_key=signer.public_raw,
        version=2,
    )


async def _closing_leaves(session: AsyncSession, tender_id: uuid.UUID) -> list[bytes]:
    """Every bid event of the tender in arrival order: those logged in the platform-wide log before tender
    logs existed (a tender open across that upgrade), then its bidders' own logs' events."""
    legacy = await session.scalars(
        select(LogLeaf.leaf_hash)
        .where(LogLeaf.tender_id == tender_id, LogLeaf.bid_id.is_not(None))
        .order_by(LogLeaf.index)
    )
    events = await session.scalars(
        select(BidEvent.leaf_hash).where(BidEvent.tender_id == tender_id).order_by(BidEvent.seq)
    )
    return [bytes.fromhex(h) for h in [*legacy, *events]]


async def close(
    session: AsyncSession,
    signer: LogSigner,
    *,
    tender_id: uuid.UUID,
    tender_code: str,
    standing: Mapping[uuid.UUID, str],
    threshold: int,
    shamir_threshold: int,
    now: datetime,
) -> dict[str, Any]:
    """Sign and keep the tender's closing head at the deadline (idempotent): the root of the tree of every
    bid event of the tender in arrival order, whose leaf hashes are published with it so that any receipt
    is checked against it offline and a missing one shows; seal the tender's log; sign the envelopes that
    stand (`standing`: bid id → envelope SHA-256) and the custody statement (the roster, t and T, each
    standing envelope's header hash); and append the closing head to the platform-wide log, whose head
    moves only at deadlines."""
    existing = await session.get(Closing, tender_id)
    if existing is not None:
        return closing_json(existing, tender_code, signer)
    state = await _lock_tender_log(session, tender_id)
    state.closed_at = now
    leaves = await _closing_leaves(session, tender_id)
    size, root = len(leaves), merkle.root(leaves)
    log_id = receipts.tender_log_id(tender_code)
    stamp = _ms(now)
    sth = merkle.sign_head(merkle.TreeHead(log_id, size, root, stamp, "closing"), signer.private)
    head_json = merkle.head_to_json(sth)
    envelopes = list(standing.values())
    statement = await _custody_statement(
        session, tender_id, tender_code, standing, threshold, shamir_threshold
    )
    # Last: the append holds the platform-wide log's lock until commit, so tenders closing at the same
    # deadline queue behind one another only for what follows it.
    entry = await append_public(
        session, signer, receipts.closing_entry(tender_code, head_json), tender_id=tender_id, now=now
    )
    row = Closing(
        tender_id=tender_id,
        tree_size=size,
        root_hash=root.hex(),
        timestamp=stamp,
        key_id=sth.key_id,
        signature=b64(sth.signature),
        envelopes=sorted(envelopes),
        envelopes_signature=b64(
            signer.sign(logtree.closing_message(tender_code, size, head_json["root_hash"], envelopes))
        ),
        version=2,
        log_id=log_id,
        leaves=[h.hex() for h in leaves],
        log_entry=entry,
        custody=statement,
        custody_signature=b64(signer.sign(opening_record.statement_message(statement))),
    )
    session.add(row)
    await session.flush()
    return closing_json(row, tender_code, signer)


async def _custody_statement(
    session: AsyncSession,
    tender_id: uuid.UUID,
    tender_code: str,
    standing: Mapping[uuid.UUID, str],
    threshold: int,
    shamir_threshold: int,
) -> dict[str, Any]:
    headers = {}
    technical = {}
    if standing:
        for row in await session.scalars(select(Envelope).where(Envelope.bid_id.in_(list(standing)))):
            headers[standing[row.bid_id]] = envelope.header_sha256(header_of(row))
        for tech in await session.scalars(
            select(TechnicalEnvelope).where(TechnicalEnvelope.bid_id.in_(list(standing)))
        ):
            technical[tech.sha256] = envelope.header_sha256(header_of(tech))
    members = []
    for c in await roster(session, tender_id):
        org = await accounts.get_organisation(session, c.organisation_id)
        members.append(
            {
                "position": c.position,
                "organisation": org.name,
                "credit_code": org.credit_code,
                "public_key": base64.b64decode(c.public_key),
                "platform": c.platform,
            }
        )
    return opening_record.custody_statement(
        tender=tender_code,
        roster=members,
        threshold=threshold,
        shamir_threshold=shamir_threshold,
        envelopes=headers,
        technical=technical,
    )


def _closing_head(row: Closing) -> merkle.SignedTreeHead:
    head = merkle.TreeHead(
        row.log_id or LOG_ID, row.tree_size, bytes.fromhex(row.root_hash), row.timestamp, "closing"
    )
    return merkle.SignedTreeHead(head, row.key_id, base64.b64decode(row.signature))


def closing_json(row: Closing, tender_code: str, signer: LogSigner) -> dict[str, Any]:
    """The published closing record (`bidding.receipt.parse_closing` reads it). Version 2 adds the
    closing tree's leaves and the closing head's entry in the platform-wide log; a version 1 closing
    (the platform-wide log's head at the deadline) is served as it was published. Tenders closed since
    custody statements exist carry theirs."""
    record: dict[str, Any] = {
        "tender": tender_code,
        "head": merkle.head_to_json(_closing_head(row)),
        "envelopes": list(row.envelopes),
        "envelopes_signature": row.envelopes_signature,
        "log_public_key": b64(signer.public_raw),
    }
    if row.version >= 2:
        record["version"] = row.version
        record["leaves"] = [b64(bytes.fromhex(h)) for h in row.leaves or []]
        record["log_entry"] = row.log_entry
    if row.custody is not None:
        record["custody"] = row.custody
        record["custody_signature"] = row.custody_signature
    return record


async def closing_of(session: AsyncSession, tender_id: uuid.UUID) -> Closing | None:
    """A tender's closing head, once signed."""
    return await session.get(Closing, tender_id)
