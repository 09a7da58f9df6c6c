"""Use cases of the bidding package on the database and the object store: custodian rosters, accepting
sealed envelopes, each tender's log of bid events and its receipts, closing heads, the platform-wide
transparency log, opening envelopes, custody shares, the live opening record and collusion signals.

The bid stage (bidding.submission, bidding.opening, bidding.hall) drives these at its own transitions and hands in its rows; this package
never reads the trade's tables itself.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

import accounts.service as accounts
from bidding import bidfile, collusion, custody, envelope, logtree, merkle, opening_record, shamir
from bidding import receipt as receipts
from bidding.models import (
    BidderLog,
    BidEvent,
    Closing,
    CollusionSignal,
    Custodian,
    Envelope,
    LogHead,
    LogLeaf,
    LogNode,
    LogState,
    OpeningEvent,
    ShareRelease,
    TenderLog,
)
from storage.db import upsert_ignore
from storage.objects import ObjectStore
from storage.problems import Conflict, NotFound, ValidationProblem, field_error
from storage.signing import LogSigner

LOG_ID = receipts.PUBLIC_LOG_ID
MAX_CUSTODIANS = 10
# Opening runs in threads: the AEAD and SHA-256 release the GIL on 64 KiB buffers (DESIGN.md).
OPEN_THREADS = 2  # envelopes decrypted at once: one per core of the reference machine
_OPEN_LIMITER = anyio.CapacityLimiter(OPEN_THREADS)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _ms(instant: datetime) -> datetime:
    """Heads carry millisecond timestamps: truncate before signing so the stored row re-creates them."""
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


# ---------------------------------------------------------------- custodians


async def set_roster(
    session: AsyncSession,
    tender_id: uuid.UUID,
    organisation_ids: Sequence[uuid.UUID],
    threshold: int,
    now: datetime,
) -> list[Custodian]:
    """Freeze a tender's custodians at publication: each named organisation's newest encryption key, share
    positions in the order given. The platform (the centre) holds at most one share and never counts
    toward t: 2 ≤ t ≤ the number of the other custodians (see `shamir_threshold`)."""
    n = len(organisation_ids)
    if n < 2 or n > MAX_CUSTODIANS:
        raise ValidationProblem(
            f"Name between 2 and {MAX_CUSTODIANS} opening custodians.",
            errors=[field_error("custodians", f"{n} named")],
        )
    if len(set(organisation_ids)) != n:
        raise ValidationProblem(
            "Each custodian may hold one share only.", errors=[field_error("custodians", "duplicate")]
        )
    rows: list[Custodian] = []
    for position, org_id in enumerate(organisation_ids, start=1):
        where = f"custodians[{position - 1}]"
        try:
            org = await accounts.get_organisation(session, org_id)
        except NotFound:
            raise ValidationProblem(
                "No such organisation.", errors=[field_error(where, "unknown organisation")]
            ) from None
        if org.status != "active":
            raise ValidationProblem(
                f"{org.name} is not an active organisation.", errors=[field_error(where, "not active")]
            )
        keys = [
            k
            for k in await accounts.list_keys(session, org_id)
            if k.purpose == "encryption" and k.revoked_at is None
        ]
        if not keys:
            raise ValidationProblem(
                f"{org.name} has no registered encryption key to receive custody shares "
                "(`ggzy custodian keygen --register`).",
                errors=[field_error(where, "no encryption key")],
            )
        key = keys[-1]
        if not custody.is_prime_order_key(base64.b64decode(key.public_key)):
            # No release of a stanza wrapped to such a key could be proven (bidding.custody).
            raise ValidationProblem(
                f"{org.name}'s encryption key is not a point of the prime-order group; register a key made "
                "by `ggzy custodian keygen`.",
                errors=[field_error(where, "key.point")],
            )
        rows.append(
            Custodian(
                tender_id=tender_id,
                position=position,
                organisation_id=org_id,
                public_key_id=key.id,
                public_key=key.public_key,
                platform=org.kind == "centre",
            )
        )
    platform = sum(row.platform for row in rows)
    if platform > 1:
        raise ValidationProblem(
            "The platform may hold at most one custody share.",
            errors=[field_error("custodians", "more than one centre")],
        )
    others = n - platform
    if not 2 <= threshold <= others:
        raise ValidationProblem(
            f"The custody threshold t counts the custodians other than the platform: it must be at least 2 "
            f"and at most the {others} of them, so that neither the platform nor any one custodian alone, "
            "nor the platform with t − 1 others, can open a bid.",
            errors=[
                field_error(
                    "custody_threshold",
                    f"t={threshold} exceeds the {others} custodian(s) other than the platform"
                    if threshold > others
                    else f"t={threshold} is below 2",
                )
            ],
        )
    for row in rows:
        session.add(row)
    await session.flush()
    return rows


def shamir_threshold(rows: Sequence[Custodian], threshold: int) -> int:
    """T, the Shamir threshold written in every stanza: t + 1 when the platform holds a share (its share
    then never stands in for a custodian's), else t."""
    return threshold + (1 if any(row.platform for row in rows) else 0)


def custodians_of(rows: Sequence[Custodian]) -> list[custody.Custodian]:
    """The roster as `bidding.custody` takes it."""
    return [custody.Custodian(r.position, base64.b64decode(r.public_key), r.platform) for r in rows]


async def roster(session: AsyncSession, tender_id: uuid.UUID) -> list[Custodian]:
    """A tender's custodians by share position."""
    return list(
        await session.scalars(
            select(Custodian).where(Custodian.tender_id == tender_id).order_by(Custodian.position)
        )
    )


async def custodian_position(session: AsyncSession, tender_id: uuid.UUID, organisation_id: uuid.UUID) -> int:
    """The share position of an organisation on the roster (NotFound when it is not a custodian)."""
    position = await session.scalar(
        select(Custodian.position).where(
            Custodian.tender_id == tender_id, Custodian.organisation_id == organisation_id
        )
    )
    if position is None:
        raise NotFound("No such tender.")
    return position


# ---------------------------------------------------------------- accepting an envelope


async def read_stored_header(store: ObjectStore, key: str) -> envelope.Header:
    """Parse the age header at the start of a stored object (reads at most the header cap)."""
    buffer = bytearray()
    async for chunk in store.iter_chunks(key, 64 * 1024):
        buffer += chunk
        end = buffer.find(b"\n---", 0)
        if end != -1 and buffer.find(b"\n", end + 4) != -1:
            break
        if len(buffer) > envelope.MAX_HEADER:
            break
    return envelope.parse_header(bytes(buffer))


def envelope_problem(exc: envelope.EnvelopeError, field: str) -> ValidationProblem:
    """A refused envelope as a 422 naming the field and the envelope error's code."""
    return ValidationProblem(
        f"The envelope was refused: {exc}", errors=[field_error(field, exc.code)], envelope_error=exc.code
    )


async def check_envelope(
    session: AsyncSession,
    store: ObjectStore,
    key: str,
    tender_id: uuid.UUID,
    context: str,
    threshold: int,
    size: int,
) -> envelope.Header:
    """The stored object must be an age envelope to the bidder and to exactly this tender's custodians
    (`threshold` is the Shamir threshold T), every share stanza's ephemeral a prime-order point (so each
    custodian's release can be proven), and its payload of a length an age STREAM can have."""
    try:
        header = await read_stored_header(store, key)
    except envelope.EnvelopeError as exc:
        raise envelope_problem(exc, "object_key") from exc
    await check_header(session, header, tender_id, context, threshold, size)
    return header


async def check_header(
    session: AsyncSession,
    header: envelope.Header,
    tender_id: uuid.UUID,
    context: str,
    threshold: int,
    size: int,
) -> None:
    """`check_envelope` on a header already read from the store: the roster, the share ephemerals and the
    payload length, with no object store I/O (so it can run inside a short write transaction)."""
    try:
        custodians = [base64.b64decode(c.public_key) for c in await roster(session, tender_id)]
        envelope.check_roster(header, custodians=custodians, threshold=threshold, context=context)
        custody.check_share_ephemerals(header)
        envelope.check_payload_length(size, header.size)
    except envelope.EnvelopeError as exc:
        raise envelope_problem(exc, "object_key") from exc


def add_envelope(
    session: AsyncSession,
    *,
    bid_id: uuid.UUID,
    tender_id: uuid.UUID,
    header: envelope.Header,
    client_address: str | None,
    client_device: str | None,
    user_agent: str | None,
) -> Envelope:
    """Record an accepted envelope's header and where it came from (for W-18)."""
    header_bytes = envelope.header_bytes(header)
    row = Envelope(
        bid_id=bid_id,
        tender_id=tender_id,
        header=_b64(header_bytes),
        header_size=header.size,
        client_address=(client_address or None) and client_address[:64],
        client_device=(client_device or None) and client_device[:128],
        user_agent=(user_agent or None) and user_agent[:300],
        status="sealed",
    )
    session.add(row)
    return row


async def envelope_of(session: AsyncSession, bid_id: uuid.UUID) -> Envelope:
    """The envelope of a bid."""
    row = await session.scalar(select(Envelope).where(Envelope.bid_id == bid_id))
    if row is None:
        raise NotFound("No such envelope.")
    return row


def header_of(row: Envelope) -> envelope.Header:
    """The parsed header of a recorded envelope."""
    return envelope.parse_header(base64.b64decode(row.header))


# ---------------------------------------------------------------- the platform-wide transparency log


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
            signature=_b64(sth.signature),
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
    return [_b64(h) for h in logtree.consistency_proof(first, second, nodes)]


async def inclusion(session: AsyncSession, leaf_index: int, size: int) -> list[str]:
    """The inclusion proof of a leaf in the log at `size` leaves (base64 hashes)."""
    if not 0 <= leaf_index < size <= await log_size(session):
        raise ValidationProblem(
            "The leaf must lie within a tree size the log has reached.",
            errors=[field_error("tree_size", "out of range")],
        )
    nodes = await _nodes(session, logtree.inclusion_nodes(leaf_index, size))
    return [_b64(h) for h in logtree.inclusion_proof(leaf_index, size, nodes)]


# ---------------------------------------------------------------- tenders' logs of bid events (W-20)


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
            head_signature=_b64(sth.signature),
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
        signature=_b64(sth.signature),
        envelopes=sorted(envelopes),
        envelopes_signature=_b64(
            signer.sign(logtree.closing_message(tender_code, size, head_json["root_hash"], envelopes))
        ),
        version=2,
        log_id=log_id,
        leaves=[h.hex() for h in leaves],
        log_entry=entry,
        custody=statement,
        custody_signature=_b64(signer.sign(opening_record.statement_message(statement))),
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
    if standing:
        for row in await session.scalars(select(Envelope).where(Envelope.bid_id.in_(list(standing)))):
            headers[standing[row.bid_id]] = envelope.header_sha256(header_of(row))
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
        "log_public_key": _b64(signer.public_raw),
    }
    if row.version >= 2:
        record["version"] = row.version
        record["leaves"] = [_b64(bytes.fromhex(h)) for h in row.leaves or []]
        record["log_entry"] = row.log_entry
    if row.custody is not None:
        record["custody"] = row.custody
        record["custody_signature"] = row.custody_signature
    return record


async def closing_of(session: AsyncSession, tender_id: uuid.UUID) -> Closing | None:
    """A tender's closing head, once signed."""
    return await session.get(Closing, tender_id)


# ---------------------------------------------------------------- opening


def check_file_key(row: Envelope, file_key_b64: str) -> bytes:
    """The file key a bidder revealed, checked against the envelope's header MAC (422 when wrong)."""
    try:
        key = base64.b64decode(file_key_b64, validate=True)
    except ValueError:
        key = b""
    if len(key) != envelope.FILE_KEY_SIZE:
        raise ValidationProblem(
            "file_key must be the base64 of the envelope's 16-byte file key.",
            errors=[field_error("file_key", "not 16 bytes of base64")],
        )
    try:
        envelope.verify_file_key(header_of(row), key)
    except envelope.EnvelopeError as exc:
        raise ValidationProblem(
            "This file key does not open the envelope (its header MAC does not verify).",
            errors=[field_error("file_key", exc.code)],
        ) from exc
    return key


@dataclass(frozen=True)
class Opened:
    """What decrypting a stored envelope gave: the manifest and files, or the error that stopped it."""

    manifest: bidfile.Manifest | None
    files: list[dict[str, Any]]
    error: str | None
    detail: str | None
    platform_fault: bool = False


async def open_stored(
    store: ObjectStore, *, key: str, sha256: str, file_key: bytes, out_prefix: str
) -> Opened:
    """Decrypt a stored envelope off the event loop, check it against the hash on its receipt, and keep the
    plaintext files under `out_prefix` for the evaluation stage.

    Each byte is handled once where it must be: the ciphertext is hashed as the store hands it over (the
    local store links its file, S3 downloads it), before any of it is decrypted; `open_bid` decrypts it,
    writing and hashing each file once; the store takes the files over with those hashes (the local store
    renames them into place), never reading them back."""
    work = await store.scratch()
    try:
        path = work / "envelope.age"
        stored = await store.get_file(key, path)
        if stored.sha256 != sha256:
            # E-03: the stored envelope is not what was acknowledged — the platform's fault, not the bidder's.
            return Opened(
                None, [], "platform.integrity", "the stored envelope does not match its receipt", True
            )
        try:
            opened = await anyio.to_thread.run_sync(
                _open_file, path, file_key, work / "files", limiter=_OPEN_LIMITER
            )
        except envelope.EnvelopeError as exc:
            return Opened(None, [], exc.code, str(exc)[:500])
        files = []
        for number, item in enumerate(opened.files, start=1):
            metadata = await anyio.to_thread.run_sync(collusion.extract_metadata, item.path)
            object_key = f"{out_prefix}/{number:03d}-{_key_safe(item.name)}"
            await store.put_file(object_key, item.path, sha256=item.sha256, size=item.size)
            files.append(
                {
                    "name": item.name,
                    "size": item.size,
                    "sha256": item.sha256,
                    "object_key": object_key,
                    "metadata": metadata,
                }
            )
        return Opened(opened.manifest, files, None, None)
    finally:
        await anyio.to_thread.run_sync(shutil.rmtree, work, True)


def _key_safe(name: str) -> str:
    """An object-key-safe rendering of a bid file's name (its real name stays in the manifest)."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)[-80:]
    return safe.strip(".") or "file"


def _open_file(path: Path, file_key: bytes, out: Path) -> bidfile.OpenedBid:
    with path.open("rb") as src:
        return bidfile.open_bid(src, file_key, out)


def check_context(
    manifest: bidfile.Manifest, *, tender: str, lot: int, bidder: str, signing_keys: Sequence[str]
) -> tuple[str, str] | None:
    """None when the manifest belongs to this submission, else (error code, detail)."""
    try:
        bidfile.check_context(manifest, tender=tender, lot=lot, bidder=bidder, signing_keys=set(signing_keys))
    except envelope.EnvelopeError as exc:
        return exc.code, str(exc)[:500]
    return None


# ---------------------------------------------------------------- custody


@dataclass(frozen=True)
class Recorded:
    """What became of a custodian's release: `status` valid or invalid (`error`, its stable code), whether
    the proven secret opens the stanza, and whether it only repeated what was already on record."""

    status: str
    error: str | None
    detail: str | None
    stanza_opens: bool | None
    replayed: bool


async def release_of(session: AsyncSession, bid_id: uuid.UUID, position: int) -> ShareRelease | None:
    """The release on record for this envelope from the custodian at `position`."""
    return await session.scalar(
        select(ShareRelease).where(ShareRelease.bid_id == bid_id, ShareRelease.position == position)
    )


async def record_release(
    session: AsyncSession,
    *,
    row: Envelope,
    custodian: Custodian,
    context: str,
    release: dict[str, Any],
    now: datetime,
) -> Recorded:
    """Verify a custodian's release of its stanza of this envelope at once and keep it, valid or not: an
    invalid one is the evidence of the custodian's fault until a valid one replaces it. The same release
    again is a replay; a valid release stands and is never replaced (Conflict)."""
    header = header_of(row)
    member = custody.Custodian(custodian.position, base64.b64decode(custodian.public_key), custodian.platform)
    share: shamir.Share | None = None
    error: envelope.EnvelopeError | None = None
    try:
        _parsed, share = custody.check_release(release, header, member, context)
    except envelope.EnvelopeError as exc:
        error = exc
    existing = await release_of(session, row.bid_id, custodian.position)
    if existing is not None and existing.status == "valid":
        # A proof is randomised, so a retried release differs in its bytes; the secret it proves does not.
        if (
            error is None
            and existing.release is not None
            and existing.release.get("shared_secret") == release.get("shared_secret")
        ):
            return Recorded("valid", None, None, existing.share is not None, True)
        raise Conflict(
            "A valid release of this stanza is on record; it stands and cannot be replaced.",
            errors=[field_error("release", "already released")],
        )
    if existing is not None and existing.release == release:
        return Recorded(existing.status, existing.error, None if error is None else error.message, None, True)
    status = "valid" if error is None else "invalid"
    code = None if error is None else error.code
    values: dict[str, Any] = {
        "organisation_id": custodian.organisation_id,
        "share": None if share is None else _b64(share.value),
        "release": release,
        "status": status,
        "error": code,
        "released_at": now,
    }
    if existing is None:
        session.add(ShareRelease(bid_id=row.bid_id, position=custodian.position, **values))
    else:
        for name, value in values.items():
            setattr(existing, name, value)
    await session.flush()
    return Recorded(
        status,
        code,
        None if error is None else error.message,
        None if error is not None else share is not None,
        False,
    )


async def releases_of(session: AsyncSession, bid_ids: Sequence[uuid.UUID]) -> list[ShareRelease]:
    """The releases on record for these envelopes, by envelope and position."""
    if not bid_ids:
        return []
    return list(
        await session.scalars(
            select(ShareRelease)
            .where(ShareRelease.bid_id.in_(list(bid_ids)))
            .order_by(ShareRelease.bid_id, ShareRelease.position)
        )
    )


async def attribute(
    session: AsyncSession, row: Envelope, *, context: str, shamir_threshold: int
) -> custody.Outcome:
    """The custody outcome of an envelope from the releases on record (`bidding.custody.attribute`: each
    release is verified again, exactly as anyone re-checks the published record)."""
    members = custodians_of(await roster(session, row.tender_id))
    releases = {
        r.position: r.release for r in await releases_of(session, [row.bid_id]) if r.release is not None
    }
    return custody.attribute(
        header_of(row), members, shamir_threshold=shamir_threshold, context=context, releases=releases
    )


# ---------------------------------------------------------------- the live opening record


async def opening_event(
    session: AsyncSession, tender_id: uuid.UUID, kind: str, payload: dict[str, Any], now: datetime
) -> OpeningEvent:
    """Append a line to the tender's live opening record (the caller holds the tender's lock)."""
    seq = (
        await session.scalar(
            select(func.coalesce(func.max(OpeningEvent.seq), 0)).where(OpeningEvent.tender_id == tender_id)
        )
        or 0
    ) + 1
    event = OpeningEvent(tender_id=tender_id, seq=seq, at=now, kind=kind, payload=payload)
    session.add(event)
    await session.flush()
    return event


async def opening_events(session: AsyncSession, tender_id: uuid.UUID, after: int) -> list[OpeningEvent]:
    """The lines of the opening record after number `after`."""
    return list(
        await session.scalars(
            select(OpeningEvent)
            .where(OpeningEvent.tender_id == tender_id, OpeningEvent.seq > after)
            .order_by(OpeningEvent.seq)
            .limit(500)
        )
    )


# ---------------------------------------------------------------- collusion signals (W-18)


async def record_signals(
    session: AsyncSession, tender_id: uuid.UUID, evidence: Sequence[collusion.BidEvidence], now: datetime
) -> list[CollusionSignal]:
    """Compute the W-18 signals of the opened bids and keep them for evaluators and supervisors."""
    rows = []
    for signal in collusion.signals(evidence):
        row = CollusionSignal(
            tender_id=tender_id,
            kind=signal.kind,
            rule=signal.rule,
            bidders=list(signal.bidders),
            bids=list(signal.bids),
            evidence=signal.evidence,
            value=signal.value[:300],
            found_at=now,
        )
        session.add(row)
        rows.append(row)
    await session.flush()
    return rows


async def record_signal(
    session: AsyncSession,
    tender_id: uuid.UUID,
    *,
    kind: str,
    bidders: Sequence[str],
    evidence: str,
    value: str,
    now: datetime,
) -> CollusionSignal:
    """Keep one W-18 signal found outside the opening (e.g. deposits paid from one account), once: the
    same kind, value and bidders are not recorded twice."""
    bidders = sorted(bidders)
    for row in await session.scalars(
        select(CollusionSignal).where(
            CollusionSignal.tender_id == tender_id,
            CollusionSignal.kind == kind,
            CollusionSignal.value == value[:300],
        )
    ):
        if sorted(row.bidders) == bidders:
            return row
    row = CollusionSignal(
        tender_id=tender_id,
        kind=kind,
        rule="W-18",
        bidders=bidders,
        bids=[],
        evidence=evidence,
        value=value[:300],
        found_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def signals_of(session: AsyncSession, tender_id: uuid.UUID) -> list[CollusionSignal]:
    """A tender's W-18 signals, as found at the opening."""
    return list(
        await session.scalars(
            select(CollusionSignal)
            .where(CollusionSignal.tender_id == tender_id)
            .order_by(CollusionSignal.kind, CollusionSignal.value)
        )
    )


async def envelopes_of(session: AsyncSession, tender_id: uuid.UUID) -> list[Envelope]:
    """Every envelope of a tender."""
    return list(await session.scalars(select(Envelope).where(Envelope.tender_id == tender_id)))
