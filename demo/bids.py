"""The works demo's bidding stage: documents obtained, bids sealed on the client side and submitted for a
logged receipt, a withdrawal and a new bid, and no custodian able to open an envelope before the deadline."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.table import Table

from bidding import agekeys, bidfile, custody, envelope
from bidding import receipt as receipts
from demo.common import (
    BID_DURATION_DAYS,
    Actor,
    Outcome,
    SealedBid,
    Trade,
    check,
    plain_table,
    shanghai_text,
    short,
    yuan,
)

# ---------------------------------------------------------------- bidding


async def obtain_documents(t: Trade) -> Outcome:
    """Each bidder obtains the documents (获取招标文件) and is registered as a holder; one downloads them."""
    t.p.clock.advance(timedelta(days=1))
    links: list[dict[str, Any]] = []
    for bidder in t.bidders:
        docs = await t.p.call("POST", f"/api/v1/tenders/{t.tid}/documents/obtain", bidder)
        check(len(docs) == 1 and docs[0]["sha256"] == t.documents_sha256, "the published documents", docs)
        links.append(docs[0])
    download = await t.p.presigned("GET", links[0]["download_url"])
    check(download.status_code == 200, "GET on the presigned download URL → 200", download.status_code)
    got = hashlib.sha256(download.content).hexdigest()
    check(got == t.documents_sha256, f"downloaded SHA-256 {short(t.documents_sha256)}", got)
    return (
        f"{len(t.bidders)} bidders hold the documents; {t.bidders[0].party.username} downloaded them "
        f"by presigned URL, SHA-256 {short(got)} as published"
    )


def _pdf(title: str, author: str | None) -> bytes:
    """A small PDF whose document information names its title and (when given) its author."""
    info = f"<< /Title ({title})" + (f" /Author ({author})" if author else "") + " >>"
    content = secrets.token_hex(2048).encode()
    return b"".join(
        (
            b"%PDF-1.7\n1 0 obj\n",
            info.encode(),
            b"\nendobj\n2 0 obj\n<< /Length %d >>\nstream\n" % len(content),
            content,
            b"\nendstream\nendobj\ntrailer\n<< /Info 1 0 R >>\n%%EOF\n",
        )
    )


def _bid_files(t: Trade, bidder: Actor) -> dict[str, bytes]:
    """The bidder's files: a bid letter whose PDF names its author, and the priced bill of quantities.
    The plan's `same_author` pair had theirs written by one person (a W-18 trace)."""
    index = t.bidders.index(bidder)
    author = "王建国" if t.plan.same_author and index in t.plan.same_author else f"{bidder.party.name}投标部"
    return {
        "bid-letter.pdf": _pdf(f"{t.plan.title} 投标函", author),
        "priced-bill.pdf": _pdf(f"{t.plan.title} 已标价工程量清单", None),
    }


def _seal(t: Trade, bidder: Actor, price_fen: int) -> bytes:
    """Seal the bidder's files locally into an age v1 envelope: to the bidder's own key and, as Shamir
    shares of the file key, to the tender's custodians; the manifest inside is signed by the bidder."""
    keys = t.keys[bidder.name]
    assert keys.signing is not None
    with tempfile.TemporaryDirectory(prefix="ggzy-seal-") as tmp:
        paths = []
        for name, data in _bid_files(t, bidder).items():
            path = Path(tmp) / name
            path.write_bytes(data)
            paths.append(path)
        out = io.BytesIO()
        bidfile.seal_bid(
            paths,
            out,
            tender=t.code,
            lot=int(t.tender["lots"][0]["number"]),
            bidder=bidder.party.credit_code,
            kind="commercial",
            declared_price_fen=price_fen,
            duration_days=BID_DURATION_DAYS,
            signing=keys.signing,
            bidder_public=agekeys.x25519_public_raw(keys),
            custodians=[base64.b64decode(c["public_key"]) for c in t.tender["custodians"]],
            threshold=int(t.tender["shamir_threshold"]),
        )
    if t.is_saboteur(bidder):
        return _sabotage(t, out.getvalue(), keys)
    return out.getvalue()


def _sabotage(t: Trade, sealed: bytes, keys: agekeys.KeyPair) -> bytes:
    """What a cheating bidder does to keep an option on its bid: the custodians' stanzas carry shares of a
    random secret, not of the file key (right context, x, t and tags, so finalize accepts them); only its
    own stanza opens the envelope. It would reveal its key only if its price won."""
    header = envelope.read_header(io.BytesIO(sealed))
    file_key = envelope.unwrap_bidder(header, keys.encryption.private_bytes_raw())
    custodians = [base64.b64decode(c["public_key"]) for c in t.tender["custodians"]]
    fake = envelope.share_stanzas(
        envelope.generate_file_key(), custodians, int(t.tender["shamir_threshold"]), t.code
    )
    own = [s for s in header.stanzas if s.type == envelope.X25519_TYPE]
    return envelope.encode_header([*own, *fake], file_key) + sealed[header.size :]


def _check_receipt(t: Trade, receipt: dict[str, Any], event: str, bidder: Actor, sha256: str) -> None:
    """A receipt names our envelope and is a leaf of the log, signed by the key we pinned."""
    check(receipt["event"] == event, f"a {event!r} receipt", receipt["event"])
    check(receipt["envelope_sha256"] == sha256, f"a receipt for our envelope {short(sha256)}", receipt)
    check(
        receipt["bidder_credit_code"] == bidder.party.credit_code,
        f"bidder {bidder.party.credit_code} on the receipt",
        receipt["bidder_credit_code"],
    )
    leaf = receipt["log"]["leaf"]
    check(
        (leaf["event"], leaf["envelope_sha256"], leaf["tender"]) == (event, sha256, t.code),
        "the log leaf of this event",
        leaf,
    )
    # The bidder's own log of the tender: its head counts this bidder's events alone, none of the others'.
    own = sum(1 + (b.withdrawal is not None) for b in t.bids if b.bidder is bidder)
    head = receipt["log"]["tree_head"]
    check(
        (receipt["log"]["leaf_index"], head["tree_size"]) == (own, own + 1),
        f"leaf #{own} of a head of {own + 1}: this bidder's own events only",
        (receipt["log"]["leaf_index"], head["tree_size"]),
    )
    checks = receipts.verify(receipt, pin=receipts.KeyPin(t.log_key, "the bidders pinned"))
    check(
        receipts.passed(checks),
        "a receipt whose every field verifies offline",
        [c for c in checks if not c.ok],
    )


async def _submit_bid(t: Trade, bidder: Actor, price_fen: int) -> SealedBid:
    """Seal locally, upload the envelope by presigned PUT, then finalise it under an Idempotency-Key."""
    sealed = await asyncio.to_thread(_seal, t, bidder, price_fen)
    grant = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/bids/uploads",
        bidder,
        expect=201,
        json={"filename": "bid.age", "size": len(sealed)},
    )
    await t.p.upload(grant, sealed)
    request = {"lot_id": t.tender["lots"][0]["id"], "object_key": grant["object_key"]}
    key = f"bid-{secrets.token_hex(8)}"
    receipt = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/bids",
        bidder,
        expect=201,
        json=request,
        headers={"Idempotency-Key": key},
    )
    _check_receipt(t, receipt, "submit", bidder, hashlib.sha256(sealed).hexdigest())
    check(receipt["size"] == len(sealed), f"{len(sealed)} bytes on the receipt", receipt["size"])
    bid = SealedBid(bidder, price_fen, sealed, request, key, receipt)
    t.bids.append(bid)
    return bid


def _stanzas(header: envelope.Header) -> str:
    kinds = [s.type for s in header.stanzas]
    return " + ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))


def _receipt_table() -> Table:
    return plain_table("bidder", "received", "event", "envelope SHA-256", "bytes", "recipients", "own log")


def _receipt_row(table: Table, bid: SealedBid) -> None:
    r = bid.receipt
    table.add_row(
        bid.bidder.party.username,
        shanghai_text(r["submitted_at"]),
        r["event"],
        short(r["envelope_sha256"]),
        f"{r['size']:,}",
        _stanzas(bid.header),
        f"#{r['log']['leaf_index']} of {r['log']['tree_head']['tree_size']}",
    )


def _open_own(t: Trade, bid: SealedBid) -> bidfile.Manifest:
    """What the bidder can always do with its own envelope: open it locally (as `age -d -i key` would)."""
    keys = t.keys[bid.bidder.name]
    file_key = envelope.unwrap_bidder(bid.header, keys.encryption.private_bytes_raw())
    with tempfile.TemporaryDirectory(prefix="ggzy-open-") as tmp:
        return bidfile.open_bid(io.BytesIO(bid.sealed), file_key, Path(tmp)).manifest


async def submit_bids(t: Trade) -> Outcome:
    """Each bidder seals its bid on its own machine (age v1: to itself and to the custodians) and submits the
    ciphertext; the receipt is a signed entry of the transparency log. The same request sent again under
    the same key replays the first answer instead of bidding twice."""
    pinned = await t.p.call("GET", "/api/v1/transparency/key")
    t.log_key = base64.b64decode(pinned["public_key"])
    table = _receipt_table()
    for bidder, price in zip(t.bidders, t.plan.prices_fen, strict=True):
        t.p.clock.advance(timedelta(hours=2))
        _receipt_row(table, await _submit_bid(t, bidder, price))
    first = t.bids[0]
    replay = await t.p.request(
        "POST",
        f"/api/v1/tenders/{t.tid}/bids",
        first.bidder,
        expect=201,
        json=first.request,
        headers={"Idempotency-Key": first.idempotency_key},
    )
    check(
        replay.headers.get("Idempotent-Replayed") == "true", "Idempotent-Replayed: true", dict(replay.headers)
    )
    check(replay.json()["bid_id"] == first.bid_id, f"the same bid {first.bid_id}", replay.json()["bid_id"])
    check(first.sealed.startswith(envelope.INTRO), "an age v1 file", first.sealed[:30])
    manifest = await asyncio.to_thread(_open_own, t, first)
    check(manifest.declared_price_fen == first.price_fen, f"price {first.price_fen}", manifest)
    return (
        f"{len(t.bids)} sealed envelopes (age-encryption.org/v1), the platform holds only ciphertext; receipts "
        f"signed by log key {pinned['key_id']}, each verified offline; {first.bidder.party.username} can "
        f"always open its own envelope locally (signed manifest, {yuan(manifest.declared_price_fen or 0)} yuan); "
        "its request sent again under its Idempotency-Key got the same receipt back (Idempotent-Replayed: true)",
        table,
    )


async def withdraw(t: Trade) -> Outcome:
    """Before the deadline a bidder may withdraw its bid (W-05: deposit back within 5 days); the withdrawal
    is logged too and has a receipt of its own."""
    t.p.clock.advance(timedelta(days=2))
    old = t.bids[t.plan.withdrawing_bidder]
    bidder = old.bidder
    bid = await t.p.call("POST", f"/api/v1/tenders/{t.tid}/bids/{old.bid_id}/withdraw", bidder)
    check(bid["status"] == "withdrawn", "status withdrawn", bid["status"])
    check(bid.get("receipt") is not None, "the withdrawal's receipt", bid)
    _check_receipt(t, bid["receipt"], "withdraw", bidder, old.sha256)
    old.withdrawal = bid["receipt"]
    # The centre's escrow officers hold the refund (W-05); who withdrew stays out of the audit trail until
    # the deadline (W-20), and a supervisor sees the refund's light but not whose it is.
    refunds = await t.p.call("GET", "/api/v1/escrow/obligations", t.centre)
    refund_due = next(
        (
            r["due_on"]
            for r in refunds
            if r["rule"] == "W-05" and r["account"].endswith(f"/{bidder.party.credit_code}")
        ),
        None,
    )
    check(refund_due is not None, "the withdrawal's refund obligation with its due date (W-05)", refunds)
    trail = await t.p.call(
        "GET", "/api/v1/audit", t.centre, params={"object_type": "bid", "object_id": old.bid_id}
    )
    check(
        trail["items"] == [],
        "no trace of the withdrawal in the audit trail before the deadline (W-20)",
        trail,
    )
    return (
        f"{bidder.party.username} withdrew its bid (deposit refund due {refund_due}, W-05; withdrawal logged as "
        f"leaf #{old.withdrawal['log']['leaf_index']} of its own log)"
    )


async def rebid(t: Trade) -> Outcome:
    """With its deposit paid again, the bidder seals and submits a new bid before the deadline."""
    t.p.clock.advance(timedelta(hours=1))
    bidder = t.bids[t.plan.withdrawing_bidder].bidder
    new = await _submit_bid(t, bidder, t.plan.rebid_price_fen)
    return (
        f"{bidder.party.username} sealed a new bid: envelope {short(new.sha256)}, "
        f"leaf #{new.receipt['log']['leaf_index']} of its own log"
    )


async def no_early_opening(t: Trade) -> Outcome:
    """Before the deadline no custodian can help open anything: the custody view is refused, and so is a
    release made from a copy of an envelope (E-01); one share alone is not the file key anyway."""
    t.p.clock.advance(timedelta(hours=1))
    custodian = t.supervisor
    await t.p.refused("GET", f"/api/v1/tenders/{t.tid}/custody", custodian, rule="E-01")
    target = t.bid_of(t.bidders[1])
    identity = t.keys[custodian.name].encryption.private_bytes_raw()
    shares = envelope.unwrap_shares(target.header, identity, t.code)
    release = custody.make_release(identity, target.header, context=t.code, x=shares[0].x)
    problem = await t.p.refused(
        "POST",
        f"/api/v1/tenders/{t.tid}/custody/releases",
        custodian,
        rule="E-01",
        json={"bid_id": target.bid_id, "release": release.to_json()},
    )
    try:
        envelope.combine_shares(target.header, shares)
    except envelope.EnvelopeError as exc:
        alone = exc.code
    else:
        alone = "the file key"
    check(alone == "shares.insufficient", "one share alone cannot open the envelope", alone)
    return (
        f"{custodian.party.username} at {shanghai_text(t.p.clock.now())}: custody view → 422 rule E-01; "
        f"its release of {target.bidder.party.username}'s stanza → 422 rule E-01 ({problem['detail']}); "
        f"one share alone: {alone}"
    )
