"""Receipts prove what they say, and the transparency log tells nobody how many bid, or when, before the
deadline (W-20): `ggzy verify receipt` against the real app's receipts and closing records."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bidding import logs, merkle
from ggzy import cli as ggzy_cli
from tests.helpers import DEADLINE, Api

T = "/api/v1/tenders"
PRICE = 4_800_000_000


def verify(tmp_path: Path, receipt: dict[str, Any], *args: str) -> Result:
    """`ggzy verify receipt` on a receipt written to a file."""
    path = tmp_path / f"receipt-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(receipt, ensure_ascii=False))
    return CliRunner().invoke(ggzy_cli, ["verify", "receipt", str(path), *args])


def lines(result: Result) -> list[str]:
    return [click_line.strip() for click_line in result.output.splitlines() if click_line.strip()]


async def platform_key(api: Api) -> str:
    return str((await api.get("/api/v1/transparency/key")).json()["public_key"])


def self_signed(receipt: dict[str, Any], **leaf_changes: Any) -> dict[str, Any]:
    """What anyone can make: the receipt's leaf, changed, in a one-leaf log signed by their own key."""
    forged = copy.deepcopy(receipt)
    leaf = forged["log"]["leaf"] | leaf_changes | {"index": 0}
    key = Ed25519PrivateKey.generate()
    head = merkle.TreeHead(
        leaf["log"],
        1,
        merkle.leaf_hash(merkle.leaf_bytes(leaf)),
        datetime.fromisoformat(receipt["submitted_at"]),
    )
    forged["log"] = merkle.receipt_to_json(
        leaf=leaf,
        leaf_index=0,
        inclusion_proof=[],
        tree_head=merkle.sign_head(head, key),
        log_public_key=key.public_key().public_bytes_raw(),
    ) | {"version": receipt["log"]["version"]}
    for top, name in (("envelope_sha256", "envelope_sha256"), ("size", "size")):
        forged[top] = leaf[name]
    return forged


# ---------------------------------------------------------------- a receipt proves what it says


async def test_a_self_signed_receipt_does_not_verify_without_a_pinned_key(api: Api, tmp_path: Path) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bid = await api.bid(await api.organisation("bidder"), tender, PRICE)
    forged = self_signed(bid.receipt, envelope_sha256="ab" * 32, size=1)

    result = verify(tmp_path, forged)

    assert result.exit_code == 1, result.output
    pinned = [line for line in lines(result) if "key_pinned" in line]
    assert len(pinned) == 1 and pinned[0].startswith("FAIL"), result.output
    assert "--key" in pinned[0] and "--fetch-key" in pinned[0] and "--closing" in pinned[0]
    # the same receipt genuinely issued verifies once the platform's key is pinned
    assert verify(tmp_path, bid.receipt, "--key", await platform_key(api)).exit_code == 0


# every field a receipt states at its top level, and a different value for it
EDITS: dict[str, Any] = {
    "envelope_sha256": "0" * 64,
    "tender_code": "GGZY-2099-9999",
    "lot_number": 2,
    "size": 1,
    "bidder_credit_code": "91110108MA01ABCDEN",
    "bid_id": "00000000-0000-4000-8000-000000000000",
    "event": "withdraw",
    "submitted_at": "2026-03-01T00:00:00Z",
    "sequence": 7,
}


async def test_with_the_key_pinned_every_edited_field_of_a_receipt_fails(api: Api, tmp_path: Path) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bid = await api.bid(await api.organisation("bidder"), tender, PRICE)
    key = await platform_key(api)
    assert set(EDITS) == set(bid.receipt) - {"log"}  # no field of the receipt goes unchecked

    passed = []
    for field, value in EDITS.items():
        result = verify(tmp_path, bid.receipt | {field: value}, "--key", key)
        failing = [line for line in lines(result) if line.startswith("FAIL")]
        if result.exit_code != 1 or not any(line.startswith(f"FAIL {field}:") for line in failing):
            passed.append(field)
    assert passed == []


# ---------------------------------------------------------------- no count or timing before the deadline


async def test_the_public_head_does_not_move_when_bids_arrive_before_the_deadline(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    await api.bid(await api.organisation("bidder"), tender, PRICE)
    before = await api.get("/api/v1/transparency/head")
    proof_before = await api.get("/api/v1/transparency/consistency", params={"first": 0, "second": 1})

    api.clock.advance(timedelta(hours=1))
    await api.bid(await api.organisation("bidder"), tender, PRICE - 1)

    after = await api.get("/api/v1/transparency/head")
    assert (after.status_code, after.json()) == (before.status_code, before.json())
    proof_after = await api.get("/api/v1/transparency/consistency", params={"first": 0, "second": 1})
    assert (proof_after.status_code, proof_after.json()) == (proof_before.status_code, proof_before.json())
    # the head is live: it moves at the deadline, by the tender's closing head alone
    await api.at(DEADLINE)
    closed = await api.get("/api/v1/transparency/head")
    assert closed.status_code == 200
    size_before = before.json()["tree_size"] if before.status_code == 200 else 0
    assert closed.json()["tree_size"] == size_before + 1


async def test_a_second_bidders_receipt_does_not_reveal_the_first_bid(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    first = await api.bid(await api.organisation("bidder"), tender, PRICE)
    api.clock.advance(timedelta(hours=1))
    second = await api.bid(await api.organisation("bidder"), tender, PRICE - 1)

    log = second.receipt["log"]
    assert (log["leaf_index"], log["tree_head"]["tree_size"], log["inclusion_proof"]) == (0, 1, [])
    assert log["leaf"]["index"] == 0 and second.receipt["sequence"] == 1
    # signed when the second bid arrived, not when anything else happened
    assert log["tree_head"]["timestamp"] == api.clock.now().isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
    text = json.dumps(second.receipt)
    for secret in (first.bid_id, first.receipt["envelope_sha256"], first.bidder.credit_code):
        assert secret not in text
    assert base64.b64decode(log["tree_head"]["root_hash"]) == merkle.leaf_hash(merkle.leaf_bytes(log["leaf"]))


async def _visible(api: Api, tender: dict[str, Any], who: Any) -> list[tuple[str, int, Any, str | None]]:
    """Everything `who` (None: the public) can read about the tender and the log, as (path, status, body,
    ETag)."""
    tid = tender["id"]
    paths = [
        f"{T}/{tid}",
        f"{T}?status=tendering",
        f"{T}/{tid}/documents",
        f"{T}/{tid}/closing",
        f"{T}/{tid}/awards",
        f"/api/v1/notices?tender_code={tender['code']}",
        "/api/v1/transparency/head",
        "/api/v1/transparency/consistency?first=0&second=1",
        "/api/v1/transparency/inclusion?leaf_index=0&tree_size=1",
    ]
    if who is not None:
        paths += [f"{T}/{tid}/bids", f"{T}/{tid}/opening/record", f"{T}/{tid}/objections"]
    seen = []
    for path in paths:
        r = await api.get(path, who)
        seen.append((path, r.status_code, r.json() if r.content else None, r.headers.get("etag")))
    return seen


async def test_nothing_the_public_a_competitor_or_the_agency_reads_moves_when_a_bid_comes_or_goes(
    api: Api,
) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    competitor = await api.organisation("bidder")
    await api.bid(competitor, tender, PRICE)
    bidder = await api.organisation("bidder")
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    api.clock.advance(timedelta(hours=1))
    before = {
        who: await _visible(api, tender, actor)
        for who, actor in (("public", None), ("competitor", competitor), ("agency", agency))
    }

    bid = await api.bid(bidder, tender, PRICE - 1, obtain=False)
    api.clock.advance(timedelta(hours=1))
    assert (await api.post(f"{T}/{tender['id']}/bids/{bid.bid_id}/withdraw", bidder)).status_code == 200
    await api.bid(bidder, tender, PRICE - 2, obtain=False)

    for who, actor in (("public", None), ("competitor", competitor), ("agency", agency)):
        assert await _visible(api, tender, actor) == before[who], who


# ---------------------------------------------------------------- after the deadline, against what is published


async def _published_closing(api: Api, tender: dict[str, Any], tmp_path: Path) -> Path:
    """The 截标 notice's body, as anyone reads it from the public notice board, saved to a file."""
    notices = (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    [notice] = [n for n in notices if n["kind"] == "bid_closing"]
    path = tmp_path / "closing.json"
    path.write_text(json.dumps(notice["body"], ensure_ascii=False))
    return path


async def test_after_the_deadline_every_acknowledged_receipt_verifies_against_the_published_closing(
    api: Api, tmp_path: Path
) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bids = []
    for i in range(3):
        api.clock.advance(timedelta(hours=1))
        bids.append(await api.bid(await api.organisation("bidder"), tender, PRICE - i))
    replacement = await api.bid(bids[0].bidder, tender, PRICE - 10, obtain=False)
    withdrawal = (await api.post(f"{T}/{tender['id']}/bids/{bids[1].bid_id}/withdraw", bids[1].bidder)).json()
    await api.at(DEADLINE)
    closing = await _published_closing(api, tender, tmp_path)
    record = json.loads(closing.read_text())
    assert (record["version"], record["head"]["tree_size"], len(record["leaves"])) == (2, 5, 5)
    key = await platform_key(api)

    standing = [bids[2].receipt, replacement.receipt, withdrawal["receipt"]]
    gone = [
        bids[0].receipt,
        bids[1].receipt,
    ]  # replaced, and withdrawn: logged, but their envelopes did not stand
    for receipt in standing:
        for pin in ([], ["--key", key]):  # the published closing record pins the key that signed it
            result = verify(tmp_path, receipt, "--closing", str(closing), *pin)
            assert result.exit_code == 0, result.output
            assert not [line for line in lines(result) if not line.startswith("ok")], result.output
    for receipt in gone:
        result = verify(tmp_path, receipt, "--closing", str(closing), "--key", key)
        assert result.exit_code == 1
        assert [line.split(":")[0] for line in lines(result) if not line.startswith("ok")] == [
            "FAIL closing_envelope"
        ]
        assert any(line.startswith("ok   closing_inclusion:") for line in lines(result))


async def test_a_leaf_the_platform_acknowledged_but_left_out_of_the_closing_is_detected(
    api: Api, tmp_path: Path
) -> None:
    from sqlalchemy import delete

    from bidding.models import BidEvent
    from storage.db import transaction

    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bids = [await api.bid(await api.organisation("bidder"), tender, PRICE - i) for i in range(3)]
    # the platform loses (or drops) the second bidder's acknowledged event before the deadline
    async with transaction(api.runtime.sessionmaker) as session:
        await session.execute(delete(BidEvent).where(BidEvent.bid_id == uuid.UUID(bids[1].bid_id)))
    await api.at(DEADLINE)
    closing = await _published_closing(api, tender, tmp_path)
    key = await platform_key(api)

    assert verify(tmp_path, bids[0].receipt, "--closing", str(closing), "--key", key).exit_code == 0
    result = verify(tmp_path, bids[1].receipt, "--closing", str(closing), "--key", key)
    assert result.exit_code == 1
    failing = [line for line in lines(result) if line.startswith("FAIL")]
    # its envelope is still among those the platform says stood: only the closing tree shows the gap
    assert [line.split(":")[0] for line in failing] == ["FAIL closing_inclusion"]
    assert "prove the omission" in failing[0]


async def test_no_event_is_logged_once_the_closing_head_is_signed(api: Api) -> None:
    from storage.db import transaction
    from storage.problems import Conflict

    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bid = await api.bid(await api.organisation("bidder"), tender, PRICE)
    await api.at(DEADLINE)
    async with transaction(api.runtime.sessionmaker) as session:
        with pytest.raises(Conflict, match="closing head is signed"):
            await logs.log_bid_event(
                session,
                api.runtime.signer,
                bid.receipt["log"]["leaf"],
                tender_id=uuid.UUID(tender["id"]),
                tender_code=tender["code"],
                organisation_id=uuid.UUID(bid.bidder.organisation_id),
                bid_id=uuid.UUID(bid.bid_id),
                now=api.clock.now(),
            )


# ---------------------------------------------------------------- the key


async def test_fetch_key_pins_the_platforms_key_and_prints_its_fingerprint(api: Api, tmp_path: Path) -> None:
    import asyncio
    import socket

    from app import create_app
    from demo.common import serving

    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bid = await api.bid(await api.organisation("bidder"), tender, PRICE)
    forged = self_signed(bid.receipt, envelope_sha256="ab" * 32, size=1)
    raw = base64.b64decode(await platform_key(api))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with serving(create_app(api.runtime, manage_runtime=False), sock):
        good = await asyncio.to_thread(verify, tmp_path, bid.receipt, "--fetch-key", "--url", url)
        bad = await asyncio.to_thread(verify, tmp_path, forged, "--fetch-key", "--url", url)
    assert good.exit_code == 0, good.output
    first = lines(good)[0]
    assert first.startswith(f"fetched the platform's log key from {url}: key id {merkle.key_id(raw)}")
    assert f"SHA-256 fingerprint {hashlib.sha256(raw).hexdigest()}" in first
    assert f"ok   key_pinned: the receipt's log key is the key fetched from {url}" in good.output
    assert bad.exit_code == 1 and "FAIL key_pinned" in bad.output
    # nowhere to fetch it from: the command says so instead of passing
    down = await asyncio.to_thread(verify, tmp_path, bid.receipt, "--fetch-key", "--url", url)
    assert down.exit_code == 1 and "could not fetch the platform's log key" in down.output


async def test_key_and_fetch_key_together_are_refused(tmp_path: Path) -> None:
    receipt = tmp_path / "r.json"
    receipt.write_text("{}")
    result = CliRunner().invoke(ggzy_cli, ["verify", "receipt", str(receipt), "--key", "AAAA", "--fetch-key"])
    assert result.exit_code == 2 and "--key or --fetch-key, not both" in result.output


# ---------------------------------------------------------------- receipts of version 1


async def _as_version_1(api: Api, bid: Any) -> None:
    """Rewrite a bid's logging as the platform did before tenders had logs of their own: one leaf of the
    platform-wide log, numbered there."""
    from sqlalchemy import delete

    from bidding.models import BidEvent
    from storage.db import transaction
    from trading.models import Bid

    leaf = {
        k: v for k, v in bid.receipt["log"]["leaf"].items() if k not in ("v", "log", "index", "submitted_at")
    }
    async with transaction(api.runtime.sessionmaker) as session:
        await session.execute(delete(BidEvent).where(BidEvent.bid_id == uuid.UUID(bid.bid_id)))
        row = await session.get(Bid, uuid.UUID(bid.bid_id))
        assert row is not None
        log = await logs.append_public(
            session,
            api.runtime.signer,
            leaf | {"v": 1},
            tender_id=row.tender_id,
            bid_id=row.id,
            now=row.submitted_at,
        )
        row.log_index = log["leaf_index"]


async def test_a_version_1_receipt_of_a_tender_open_across_the_upgrade_verifies_against_its_closing(
    api: Api, tmp_path: Path
) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    old = await api.bid(await api.organisation("bidder"), tender, PRICE)
    await _as_version_1(api, old)
    receipt = (await api.get(f"{T}/{tender['id']}/bids/{old.bid_id}/receipt", old.bidder)).json()
    assert (receipt["log"]["version"], receipt["log"]["tree_head"]["log_id"]) == (1, "ggzy/bids/v1")
    new = await api.bid(await api.organisation("bidder"), tender, PRICE - 1)
    key = await platform_key(api)
    assert verify(tmp_path, receipt, "--key", key).exit_code == 0
    await api.at(DEADLINE)
    closing = await _published_closing(api, tender, tmp_path)
    assert len(json.loads(closing.read_text())["leaves"]) == 2
    for issued in (receipt, new.receipt):
        result = verify(tmp_path, issued, "--closing", str(closing), "--key", key)
        assert result.exit_code == 0, result.output
