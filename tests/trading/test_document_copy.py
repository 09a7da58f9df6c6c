"""A document (the tender's files, an amendment, a contract) is copied into the record and hashed outside
any database transaction: while a large file is being copied every other write goes ahead, the tender's
own included, and a copy that ends up not recorded (a refusal decided meanwhile, a duplicate) is removed.
Copies are held mid-way at a gate in the object store while the test writes, so no verdict depends on
timing."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from storage.clock import SettableClock
from storage.db import transaction
from storage.uploads import COPY, KEPT, ObjectClaim
from tests.conftest import Database, _api, _runtime
from tests.helpers import HOLD_TIMEOUT, Actor, Api, GatedStore, record_copies
from trading.models import Document

T = "/api/v1/tenders"


@pytest.fixture
async def api(database: Database, clock: SettableClock, tmp_path: Path) -> AsyncIterator[Api]:
    store = GatedStore(
        tmp_path / "objects", "http://testserver", b"s" * 32, now=clock.now, holds=record_copies("documents")
    )
    rt = _runtime(database, clock, tmp_path, store=store)
    await store.ensure_ready()
    async for client in _api(rt):
        yield client
    await rt.queue.close()


async def uploaded(api: Api, agency: Actor, tender: dict[str, Any], content: bytes) -> str:
    grant = await api.post(
        f"{T}/{tender['id']}/uploads", agency, json={"filename": "f.pdf", "size": len(content)}
    )
    assert grant.status_code == 201, grant.text
    await api.upload(grant.json(), content)
    return str(grant.json()["object_key"])


def register(api: Api, agency: Actor, tender: dict[str, Any], key: str, kind: str = "drawings") -> Any:
    body = {"kind": kind, "filename": f"{kind}.pdf", "object_key": key}
    return api.post(f"{T}/{tender['id']}/documents", agency, json=body)


async def on_record(api: Api, tender: dict[str, Any]) -> tuple[int, list[str], int]:
    """(documents, the states of the copies claimed under the tender's documents, files on disk there)."""
    prefix = f"records/{tender['code']}/documents/"
    async with transaction(api.runtime.sessionmaker, read_only=True) as session:
        documents = await session.scalar(
            select(func.count()).select_from(Document).where(Document.tender_id == uuid.UUID(tender["id"]))
        )
        states = list(
            await session.scalars(
                select(ObjectClaim.state).where(ObjectClaim.kind == COPY, ObjectClaim.key.startswith(prefix))
            )
        )
    folder = GatedStore.of(api).root / prefix
    # a copy is stored under a fresh hex name (beside it, the store keeps its metadata)
    files = sum(1 for p in folder.glob("*") if re.fullmatch("[0-9a-f]{32}", p.name)) if folder.exists() else 0
    return int(documents or 0), states, files


async def test_while_a_document_is_copied_other_writes_on_its_tender_go_ahead(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.draft(agency)
    content = b"%PDF-1.7 drawings " + secrets.token_bytes(256)
    key = await uploaded(api, agency, tender, content)

    store = GatedStore.of(api)
    [task] = await store.hold([register(api, agency, tender, key)])
    # the tender's own writes are not held up by the copy: another upload is granted, a document recorded
    other = await asyncio.wait_for(
        uploaded(api, agency, tender, b"%PDF-1.7 tender " + secrets.token_bytes(64)), HOLD_TIMEOUT
    )
    store.stop_holding()
    recorded = await asyncio.wait_for(register(api, agency, tender, other, "tender_documents"), HOLD_TIMEOUT)
    assert recorded.status_code == 201, recorded.text
    [r] = await store.release([task])

    assert r.status_code == 201, r.text
    assert (r.json()["sha256"], r.json()["size"]) == (hashlib.sha256(content).hexdigest(), len(content))
    assert await on_record(api, tender) == (2, [KEPT, KEPT], 2)


async def test_a_document_refused_while_it_was_copied_leaves_no_copy_behind(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    before = await on_record(api, tender)
    key = await uploaded(api, agency, tender, b"%PDF-1.7 drawings " + secrets.token_bytes(256))

    [task] = await GatedStore.of(api).hold([register(api, agency, tender, key)])
    [r] = await GatedStore.of(api).release([task])

    assert r.status_code == 409 and r.json()["rule"] == "W-02", r.text
    assert await on_record(api, tender) == before


async def test_publishing_while_a_document_is_copied_goes_ahead_and_the_document_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.draft(agency)
    await api.document(agency, tender["id"], b"%PDF-1.7 tender documents " + secrets.token_bytes(64))
    key = await uploaded(api, agency, tender, b"%PDF-1.7 drawings " + secrets.token_bytes(256))

    [task] = await GatedStore.of(api).hold([register(api, agency, tender, key)])
    published = await asyncio.wait_for(api.publish(agency, tender["id"]), HOLD_TIMEOUT)
    assert published.status_code == 200, published.text
    [r] = await GatedStore.of(api).release([task])

    assert r.status_code == 409 and r.json()["rule"] == "W-02", r.text
    assert await on_record(api, tender) == (1, [KEPT], 1)


async def test_an_upload_registered_twice_at_once_is_recorded_once_and_leaves_one_copy(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.draft(agency)
    key = await uploaded(api, agency, tender, b"%PDF-1.7 drawings " + secrets.token_bytes(256))

    store = GatedStore.of(api)
    tasks = await store.hold([register(api, agency, tender, key), register(api, agency, tender, key)])
    answers = await store.release(tasks)

    assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
    refused = next(r for r in answers if r.status_code == 409).json()
    assert [e["field"] for e in refused["errors"]] == ["object_key"], refused
    assert await on_record(api, tender) == (1, [KEPT], 1)


async def test_a_retry_after_the_document_was_recorded_is_refused_and_leaves_no_copy(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.draft(agency)
    key = await uploaded(api, agency, tender, b"%PDF-1.7 drawings " + secrets.token_bytes(256))

    first = await register(api, agency, tender, key)
    again = await register(api, agency, tender, key)

    assert first.status_code == 201, first.text
    assert again.status_code == 409, again.text
    assert await on_record(api, tender) == (1, [KEPT], 1)
    await api.run_jobs()  # the upload itself is discarded after commit: a later retry finds nothing
    assert (await register(api, agency, tender, key)).status_code == 422
    assert await on_record(api, tender) == (1, [KEPT], 1)
