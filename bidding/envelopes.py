"""Envelopes on record: a sealed envelope accepted at submission (its header checked against the tender and the custodians), read back, and opened once its file key is revealed (off the event loop)."""

from __future__ import annotations

import base64
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from bidding import bidfile, collusion, custody, envelope
from bidding.custodians import roster
from bidding.models import (
    Envelope,
    TechnicalEnvelope,
)
from bidding.records import b64, header_of
from storage.objects import ObjectStore
from storage.problems import NotFound, ValidationProblem, field_error

# Opening runs in threads: the AEAD and SHA-256 release the GIL on 64 KiB buffers (DESIGN.md).
OPEN_THREADS = 2  # envelopes decrypted at once: one per core of the reference machine
_OPEN_LIMITER = anyio.CapacityLimiter(OPEN_THREADS)


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
        header=b64(header_bytes),
        header_size=header.size,
        client_address=(client_address or None) and client_address[:64],
        client_device=(client_device or None) and client_device[:128],
        user_agent=(user_agent or None) and user_agent[:300],
        status="sealed",
    )
    session.add(row)
    return row


def add_technical(
    session: AsyncSession, *, bid_id: uuid.UUID, tender_id: uuid.UUID, taken: Any
) -> TechnicalEnvelope:
    """Record a bid's technical envelope (双信封) as taken: its own copy, hash, size and header."""
    row = TechnicalEnvelope(
        bid_id=bid_id,
        tender_id=tender_id,
        object_key=taken.kept,
        sha256=taken.sha256,
        size=taken.size,
        header=b64(envelope.header_bytes(taken.header)),
        header_size=taken.header.size,
        status="sealed",
    )
    session.add(row)
    return row


async def technical_of(session: AsyncSession, bid_id: uuid.UUID) -> TechnicalEnvelope | None:
    """A bid's technical envelope, when its tender takes two."""
    return await session.scalar(select(TechnicalEnvelope).where(TechnicalEnvelope.bid_id == bid_id))


async def technicals_of(session: AsyncSession, tender_id: uuid.UUID) -> list[TechnicalEnvelope]:
    """Every technical envelope of a tender of two envelopes."""
    return list(
        await session.scalars(select(TechnicalEnvelope).where(TechnicalEnvelope.tender_id == tender_id))
    )


async def envelope_of(session: AsyncSession, bid_id: uuid.UUID) -> Envelope:
    """The envelope of a bid."""
    row = await session.scalar(select(Envelope).where(Envelope.bid_id == bid_id))
    if row is None:
        raise NotFound("No such envelope.")
    return row


def check_file_key(row: Envelope | TechnicalEnvelope, file_key_b64: str) -> bytes:
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


@dataclass(frozen=True)
class ToOpen:
    """What the decryption job needs of an envelope, commercial or technical, whose file key is in hand: read
    in a short transaction of its own, so the decryption runs holding no lock."""

    bid_id: uuid.UUID
    object_key: str
    sha256: str
    file_key: bytes
    out_prefix: str


async def open_job(store: ObjectStore, todo: ToOpen) -> Opened:
    """`open_stored` for an envelope the job read."""
    return await open_stored(
        store, key=todo.object_key, sha256=todo.sha256, file_key=todo.file_key, out_prefix=todo.out_prefix
    )


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


async def opened_problem(
    session: AsyncSession,
    opened: Opened,
    *,
    tender: str,
    lot: int,
    organisation_id: uuid.UUID,
    bidder: str,
    submitted_at: datetime,
    kind: str | None,
) -> tuple[str, str] | None:
    """What is wrong with a decrypted envelope, as (error code, detail): the decryption's own error, or its
    manifest against the submission (tender, lot, bidder, a signing key registered before the bid arrived
    and not revoked, the envelope's `kind`); None when it is the submitted bid's."""
    if opened.error is not None:
        return (opened.error, opened.detail or "")
    assert opened.manifest is not None
    keys = [
        k.public_key
        for k in await accounts.list_keys(session, organisation_id)
        if k.purpose == "signing" and k.revoked_at is None and k.created_at <= submitted_at
    ]
    return check_context(opened.manifest, tender=tender, lot=lot, bidder=bidder, signing_keys=keys, kind=kind)


def check_context(
    manifest: bidfile.Manifest,
    *,
    tender: str,
    lot: int,
    bidder: str,
    signing_keys: Sequence[str],
    kind: str | None = None,
) -> tuple[str, str] | None:
    """None when the manifest belongs to this submission (and, on a tender of two envelopes, says it is the
    envelope of the `kind` it was submitted as), else (error code, detail)."""
    try:
        bidfile.check_context(manifest, tender=tender, lot=lot, bidder=bidder, signing_keys=set(signing_keys))
    except envelope.EnvelopeError as exc:
        return exc.code, str(exc)[:500]
    if kind is not None and manifest.kind != kind:
        return "context.kind", f"the manifest is of a {manifest.kind} envelope, submitted as the {kind} one"
    return None


async def envelopes_of(session: AsyncSession, tender_id: uuid.UUID) -> list[Envelope]:
    """Every envelope of a tender."""
    return list(await session.scalars(select(Envelope).where(Envelope.tender_id == tender_id)))
