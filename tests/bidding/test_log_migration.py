"""Migration 0007 on a database of the earlier version: its closings stay version 1 and are served as they
were published, its log leaves keep their bids, and the platform-wide log goes on from where it was."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command

from accounts.models import Organisation
from accounts.uscc import make_uscc
from bidding import logs, merkle
from bidding.models import Closing, LogHead, LogLeaf, LogNode, LogState
from storage.db import create_engine, create_sessionmaker, transaction
from storage.migrate import alembic_config, upgrade_async
from storage.signing import LogSigner
from tests.conftest import PG_URL, _drop_postgres_database, _postgres_database, unavailable
from trading.models import Bid, Lot, Tender

SIGNER = LogSigner.from_secret("a test installation secret")
AT = datetime(2026, 3, 23, 2, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of its own on each backend (migrated step by step by the test)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'earlier.db'}"
        return
    if not PG_URL:
        unavailable("PostgreSQL", "GGZY_TEST_DATABASE_URL is not set")
    url, name = await _postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(name)


async def _trade_of_the_earlier_version(url: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A tender with one bid logged as the earlier version logged it (one leaf of the platform-wide log and
    the head it made) and that version's closing: the platform-wide log's head at the deadline."""
    engine = create_engine(url)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            agency = Organisation(
                name="代理", credit_code=make_uscc("91320100999999999"), kind="agency", created_at=AT
            )
            session.add(agency)
            await session.flush()
            tender = Tender(
                code="GGZY-320100-2026-W000001",
                title="工程",
                sector="works",
                method="open",
                status="opening",
                agency_organisation_id=agency.id,
                tenderer_name="招标人",
                region_code="320100",
                qualification="资质",
                evaluation_method="comprehensive",
                documents_from=AT - timedelta(days=21),
                bid_deadline=AT,
                opening_window_minutes=30,
                publicity_days=3,
                created_at=AT - timedelta(days=30),
            )
            session.add(tender)
            await session.flush()
            lot = Lot(tender_id=tender.id, number=1, title="一标段", estimated_price_fen=1, deposit_fen=0)
            session.add(lot)
            await session.flush()
            bid = Bid(
                tender_id=tender.id,
                lot_id=lot.id,
                organisation_id=agency.id,
                status="submitted",
                object_key="records/x",
                sha256="ab" * 32,
                size=1,
                submitted_at=AT - timedelta(days=1),
                sequence=1,
            )
            session.add(bid)
            await session.flush()
            entry = {"v": 1, "log": logs.LOG_ID, "index": 0, "event": "submit", "tender": tender.code}
            data = merkle.leaf_bytes(entry | {"bid": str(bid.id)})
            root = merkle.leaf_hash(data)
            head = merkle.sign_head(merkle.TreeHead(logs.LOG_ID, 1, root, AT), SIGNER.private)
            closing = merkle.sign_head(merkle.TreeHead(logs.LOG_ID, 1, root, AT, "closing"), SIGNER.private)
            bid.log_index = 0
            session.add_all(
                [
                    LogLeaf(
                        index=0,
                        tender_id=tender.id,
                        bid_id=bid.id,
                        event="submit",
                        leaf=data.decode(),
                        leaf_hash=root.hex(),
                        created_at=bid.submitted_at,
                    ),
                    LogNode(level=0, index=0, hash=root.hex()),
                    LogHead(
                        tree_size=1,
                        root_hash=root.hex(),
                        timestamp=AT,
                        key_id=head.key_id,
                        signature=base64.b64encode(head.signature).decode(),
                    ),
                    LogState(id=1, size=1),
                    Closing(
                        tender_id=tender.id,
                        tree_size=1,
                        root_hash=root.hex(),
                        timestamp=AT,
                        key_id=closing.key_id,
                        signature=base64.b64encode(closing.signature).decode(),
                        envelopes=[bid.sha256],
                        envelopes_signature="c2ln",
                    ),
                ]
            )
            return tender.id, bid.id, base64.b64encode(closing.signature).decode()
    finally:
        await engine.dispose()


async def test_an_earlier_database_keeps_its_closings_and_log_and_the_log_goes_on(url: str) -> None:
    await upgrade_async(url)
    tender_id, bid_id, signature = await _trade_of_the_earlier_version(url)
    # the database as the earlier version left it, then upgraded by this one
    await asyncio.to_thread(command.downgrade, alembic_config(url), "0006")
    await upgrade_async(url)

    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            row = await session.get(Closing, tender_id)
            assert row is not None
            assert (row.version, row.log_id, row.leaves, row.log_entry) == (1, None, None, None)
            published = logs.closing_json(row, "GGZY-320100-2026-W000001", SIGNER)
            assert set(published) == {"tender", "head", "envelopes", "envelopes_signature", "log_public_key"}
            assert (published["head"]["log_id"], published["head"]["signature"]) == (
                logs.LOG_ID,
                signature,
            )
            assert merkle.verify_head(merkle.head_from_json(published["head"]), SIGNER.public_raw)
            leaf = await session.get(LogLeaf, 0)
            assert leaf is not None and leaf.bid_id == bid_id
            # the bid's version 1 receipt is served from the platform-wide log
            receipt = await logs.receipt_of_bid(session, SIGNER, bid_id)
            assert receipt["version"] == 1
            assert merkle.all_ok(merkle.verify_receipt(receipt, trusted_key=SIGNER.public_raw))
            # the public log goes on from its earlier head, by a leaf without a bid
            entry = await logs.append_public(
                session, SIGNER, {"event": "closing", "tender": "GGZY-2"}, tender_id=tender_id, now=AT
            )
            assert entry["leaf_index"] == 1
            proof = await logs.consistency(session, 1, 2)
            assert merkle.verify_consistency(
                1,
                2,
                bytes.fromhex(row.root_hash),
                merkle.receipt_from_json(entry).tree_head.head.root_hash,
                [base64.b64decode(p) for p in proof],
            )
            await session.rollback()
    finally:
        await engine.dispose()
