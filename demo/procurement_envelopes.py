"""Invited tendering with two envelopes (邀请招标, 双信封) in `ggzy demo --sector procurement`, through the HTTP API.

A university buys laboratory instruments by invited tendering: the agency invites four of the demo's
suppliers, the only ones who may obtain the documents, and asks for two envelopes. Each supplier seals a
technical envelope without a price and a commercial one with it, and submits both in one request for one
receipt. At the deadline the suppliers reveal their technical envelopes alone: the hall reads out no price,
and a commercial key revealed then is refused. A committee of five is drawn and enters its room, where it
reads the technical envelopes (no price anywhere), and its chair records the technical result with reasons,
failing one supplier; the agency, which cannot judge, then runs the commercial opening, which reveals the
passed suppliers' commercial envelopes and reads out their prices, and the failed supplier's stays sealed
for good: nobody learns its price. The same committee ranks the three, the purchaser awards the lowest, and
the contract, the acceptance (履约验收) and the completion follow.
"""

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

from bidding import agekeys, bidfile, envelope
from demo import deposits
from demo.bids import obtain_documents
from demo.common import (
    AGENCY,
    BID_DURATION_DAYS,
    Actor,
    Outcome,
    SealedBid,
    TenderPlan,
    Trade,
    b64,
    check,
    make_party,
    shanghai_text,
    short,
    yuan,
)
from demo.procurement_methods import contract_and_accept
from demo.purchase_committee import TOO_FEW, draw_panel, enter_room, sit
from demo.works import accept_project, award_lot, lawful_deadline, publish, tender_body, upload_documents
from rules.profiles import PROCUREMENT_INVITED

INVITED = TenderPlan(
    title="南京大学分析测试中心实验室仪器设备采购",
    tenderer="南京大学",
    tenderer_credit_code=make_party("", "", "", "12", 74).credit_code,
    qualification="具有独立承担民事责任的能力；具备所投仪器的制造商授权；近三年无重大违法记录",
    estimated_price_fen=680_000_000,  # 6,800,000.00 yuan: a committee of 5 (G-07)
    prices_fen=(652_000_000, 639_850_000, 661_200_000, 598_000_000),
    rebid_price_fen=0,
    saboteur=None,
    same_author=None,
    profile=PROCUREMENT_INVITED,
)
FAILING = 3  # the supplier whose technical envelope fails: its (lowest) price is never read


def _invited(t: Trade) -> Trade:
    i = t.others.get("invited")
    if i is None:
        parties = (AGENCY, *(p for p in t.parties if p.kind == "bidder"))
        i = Trade(t.p, INVITED, parties, people=t.people, keys=t.keys, cast=t.cast)
        t.others["invited"] = i
    return i


def _technical(i: Trade) -> dict[str, bytes]:
    """The technical envelopes the suppliers keep, by bid."""
    kept: dict[str, bytes] = i.evaluation.setdefault("technical", {})
    return kept


def _seal(i: Trade, bidder: Actor, kind: str, price_fen: int | None) -> bytes:
    """One envelope of the supplier's bid, sealed on its machine: the technical one (技术标) declares no
    price, the commercial one (商务标) the price and the bid's validity."""
    keys = i.keys[bidder.name]
    assert keys.signing is not None
    name = "技术标.pdf" if kind == "technical" else "商务标.pdf"
    with tempfile.TemporaryDirectory(prefix="ggzy-seal-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(b"%PDF-1.7 " + f"{i.plan.title} {name}".encode() + secrets.token_bytes(2048))
        out = io.BytesIO()
        bidfile.seal_bid(
            [path],
            out,
            tender=i.code,
            lot=int(i.tender["lots"][0]["number"]),
            bidder=bidder.party.credit_code,
            kind=kind,
            declared_price_fen=price_fen,
            duration_days=BID_DURATION_DAYS if kind == "commercial" else None,
            signing=keys.signing,
            bidder_public=agekeys.x25519_public_raw(keys),
            custodians=[base64.b64decode(c["public_key"]) for c in i.tender["custodians"]],
            threshold=int(i.tender["shamir_threshold"]),
        )
    return out.getvalue()


async def _upload(i: Trade, bidder: Actor, sealed: bytes) -> str:
    grant = await i.p.call(
        "POST",
        f"/api/v1/tenders/{i.tid}/bids/uploads",
        bidder,
        expect=201,
        json={"filename": "bid.age", "size": len(sealed)},
    )
    await i.p.upload(grant, sealed)
    return str(grant["object_key"])


def _file_key(i: Trade, bidder: Actor, sealed: bytes) -> bytes:
    header = envelope.read_header(io.BytesIO(sealed))
    return envelope.unwrap_bidder(header, i.keys[bidder.name].encryption.private_bytes_raw())


def _own_price(i: Trade, bidder: Actor, sealed: bytes) -> int | None:
    """What the supplier reads in its own envelope, opened locally: the declared price, if any."""
    with tempfile.TemporaryDirectory(prefix="ggzy-open-") as tmp:
        opened = bidfile.open_bid(io.BytesIO(sealed), _file_key(i, bidder, sealed), Path(tmp))
    return opened.manifest.declared_price_fen


async def _submit(i: Trade, bidder: Actor, price_fen: int) -> SealedBid:
    """Seal both envelopes, upload each by presigned PUT, and submit them together for one receipt."""
    technical = await asyncio.to_thread(_seal, i, bidder, "technical", None)
    commercial = await asyncio.to_thread(_seal, i, bidder, "commercial", price_fen)
    request = {
        "lot_id": i.tender["lots"][0]["id"],
        "object_key": await _upload(i, bidder, commercial),
        "technical": {"object_key": await _upload(i, bidder, technical)},
    }
    key = f"bid-{secrets.token_hex(8)}"
    receipt = await i.p.call(
        "POST",
        f"/api/v1/tenders/{i.tid}/bids",
        bidder,
        expect=201,
        json=request,
        headers={"Idempotency-Key": key},
    )
    check(
        receipt["envelope_sha256"] == hashlib.sha256(commercial).hexdigest(),
        "the commercial envelope on the receipt",
        receipt,
    )
    check(
        receipt.get("technical_sha256") == hashlib.sha256(technical).hexdigest(),
        "the technical envelope on the same receipt",
        receipt,
    )
    bid = SealedBid(bidder, price_fen, commercial, request, key, receipt)
    i.bids.append(bid)
    _technical(i)[bid.bid_id] = technical
    return bid


async def _reveal(i: Trade, bid: SealedBid, kind: str, *, expect: int = 202) -> dict[str, Any]:
    sealed = _technical(i)[bid.bid_id] if kind == "technical" else bid.sealed
    answer: dict[str, Any] = await i.p.call(
        "POST",
        f"/api/v1/tenders/{i.tid}/bids/{bid.bid_id}/decrypt",
        bid.bidder,
        expect=expect,
        json={"file_key": b64(_file_key(i, bid.bidder, sealed)), "kind": kind},
    )
    return answer


def _line(i: Trade, bid: SealedBid, kind: str) -> dict[str, Any] | None:
    """The record's `bid_opened` line of `bid`'s envelope of `kind` (the commercial lines name none)."""
    for e in i.record:
        if e["kind"] == "bid_opened" and e.get("bid") == bid.bid_id:
            if e.get("envelope", "commercial") == kind:
                return e
    return None


async def _read_out(i: Trade, bid: SealedBid, kind: str) -> dict[str, Any]:
    """Wait for the decryption job to read `bid`'s envelope of `kind` out in the hall; the line."""

    async def opened() -> bool:
        await i.opening_record()
        return _line(i, bid, kind) is not None

    await i.p.settle(opened, f"{bid.bidder.party.username}'s {kind} envelope read out")
    line = _line(i, bid, kind)
    assert line is not None
    return line


# ---------------------------------------------------------------- the steps


async def invited_published(t: Trade) -> Outcome:
    """The university's project is accepted; the agency drafts an invited tendering of two envelopes to four
    suppliers (G-02: 20 days), issues the documents and publishes it through the centre's review."""
    i = _invited(t)
    i.p.clock.advance(timedelta(days=1))
    await accept_project(i)
    deadline = await lawful_deadline(i)
    body = tender_body(i, deadline, i.plan.deposit_fen) | {"envelopes": 2}
    r = await i.p.request("POST", "/api/v1/tenders", i.agency, expect=201, json=body)
    i.tender, i.etag = r.json(), r.headers.get("ETag", "")
    check(i.tender["status"] == "draft", "status draft", i.tender["status"])
    check(i.tender["method"] == "invited", "method invited", i.tender["method"])
    check(i.tender["envelopes"] == 2, "two envelopes", i.tender["envelopes"])
    await upload_documents(i)
    await publish(i)
    [notice] = await i.notices("tender_notice")
    sealing = notice["body"].get("sealing", {})
    check(sealing.get("envelopes") == 2, "two envelopes on the notice", sealing)
    return (
        f"{i.code} «{i.plan.title}», budget {yuan(i.plan.estimated_price_fen)} yuan, two envelopes; invited "
        f"{', '.join(b.party.username for b in i.bidders)}; bids close {shanghai_text(deadline)} "
        "(G-02: ≥ 20 days)"
    )


async def invited_bids(t: Trade) -> Outcome:
    """The four invited suppliers obtain the documents and pay their deposits; each seals a technical
    envelope without a price and a commercial one with it, and submits both together."""
    i = _invited(t)
    await obtain_documents(i)
    await deposits.pay_by_notification(i, i.bidders)
    for bidder, price in zip(i.bidders, i.plan.prices_fen, strict=True):
        i.p.clock.advance(timedelta(hours=2))
        await _submit(i, bidder, price)
    first = i.bids[0]
    technical = _technical(i)[first.bid_id]
    own = await asyncio.to_thread(_own_price, i, first.bidder, technical)
    check(own is None, "no price in the technical envelope", own)
    priced = await asyncio.to_thread(_own_price, i, first.bidder, first.sealed)
    check(priced == first.price_fen, f"price {first.price_fen} in the commercial one", priced)
    return (
        f"{len(i.bids)} bids of two envelopes, each one request and one receipt naming both "
        f"({short(first.receipt['technical_sha256'])} technical, {short(first.sha256)} commercial for "
        f"{first.bidder.party.username}); opened locally its technical envelope declares no price, its "
        f"commercial one {yuan(priced or 0)} yuan"
    )


async def technical_opening(t: Trade) -> Outcome:
    """At the deadline the hall opens for the technical envelopes: a commercial key revealed now is refused;
    each supplier reveals its technical key and the hall reads out no price; the agency closes the hall and
    the technical evaluation begins."""
    i = _invited(t)
    await i.p.move_to(i.deadline)
    await i.p.settle(i.status_is("opening"), f"the chronograph to open {i.code}'s technical opening")
    first = i.live_bids()[0]
    early = await i.p.request(
        "POST",
        f"/api/v1/tenders/{i.tid}/bids/{first.bid_id}/decrypt",
        first.bidder,
        expect=409,
        json={"file_key": b64(_file_key(i, first.bidder, first.sealed)), "kind": "commercial"},
    )
    fields = [e.get("field") for e in early.json().get("errors", [])]
    check(fields == ["kind"], "a commercial key refused on kind", early.json())
    for bid in i.live_bids():
        i.p.clock.advance(timedelta(minutes=2))
        got = await _reveal(i, bid, "technical")
        check(got["envelope_status"] == "opening", "the technical envelope being opened", got)
        line = await _read_out(i, bid, "technical")
        check("declared_price_fen" not in line, "no price read out", line)
    check(
        all("declared_price_fen" not in e for e in await i.opening_record()),
        "no price on the record",
        i.record,
    )
    i.p.clock.advance(timedelta(minutes=2))
    tender = await i.p.call("POST", f"/api/v1/tenders/{i.tid}/close-opening", i.agency)
    check(tender["status"] == "technical_evaluation", "status technical_evaluation", tender["status"])
    return (
        f"{shanghai_text(i.deadline)}: a commercial key → 409 on kind; {len(i.live_bids())} technical "
        "envelopes opened, no price read out; status technical_evaluation"
    )


async def commercial_opening(t: Trade) -> Outcome:
    """A committee of five is drawn and enters its room the next morning: it reads the technical envelopes
    (no price), and its chair records the technical result, failing one supplier with its reason; the
    agency, which cannot judge, runs the commercial opening. The failed supplier's commercial key is
    refused; the passed suppliers' commercial envelopes are opened and their prices read out; the failed
    one's stays sealed, its price unknown to anyone but itself."""
    i = _invited(t)
    i.p.clock.advance(timedelta(hours=3))
    i.evaluation["panel"] = await draw_panel(i, TOO_FEW)
    await i.p.move_to(i.evaluation["evaluation_at"])

    async def room_open() -> bool:
        rooms = await i.p.call("GET", "/api/v1/evaluation/rooms", i.agency)
        return any(r["tender_id"] == i.tid and r["status"] != "scheduled" for r in rooms)

    await i.p.settle(room_open, f"the chronograph to open {i.code}'s evaluation room")
    room_id, members = await enter_room(i, 5)
    chair = members[1]
    read = await i.p.request("GET", f"/api/v1/evaluation/rooms/{room_id}/technical", chair, expect=200)
    check(len(read.json()["bids"]) == len(i.live_bids()), "every technical envelope in the room", read.json())
    check("price" not in read.text, "no price in the room", read.json())
    bids = i.live_bids()
    failed = next(b for b in bids if b.bidder is i.bidders[FAILING])
    passed = [b for b in bids if b is not failed]
    reason = "所投仪器检出限不满足招标文件第五章技术参数要求（实质性条款）"
    body = {
        "verdicts": [
            {
                "bid_id": b.bid_id,
                "passed": b is not failed,
                "reason": reason if b is failed else "满足技术要求",
            }
            for b in bids
        ]
    }
    agency_try = await i.p.request(
        "POST", f"/api/v1/evaluation/rooms/{room_id}/technical-result", i.agency, expect=404, json=body
    )
    check(agency_try.status_code == 404, "the agency cannot record the technical result", agency_try.text)
    result = await i.p.call("POST", f"/api/v1/evaluation/rooms/{room_id}/technical-result", chair, json=body)
    check(result["not_passed"] == [failed.bid_id], f"{failed.bidder.party.username} not passed", result)
    i.p.clock.advance(timedelta(minutes=10))
    opened = await i.p.call("POST", f"/api/v1/tenders/{i.tid}/commercial-opening", i.agency)
    check(opened["status"] == "commercial_opening", "status commercial_opening", opened)
    refused = await i.p.request(
        "POST",
        f"/api/v1/tenders/{i.tid}/bids/{failed.bid_id}/decrypt",
        failed.bidder,
        expect=409,
        json={"file_key": b64(_file_key(i, failed.bidder, failed.sealed)), "kind": "commercial"},
    )
    fields = [e.get("field") for e in refused.json().get("errors", [])]
    check(fields == ["kind"], "the failed supplier's commercial key refused on kind", refused.json())
    for bid in passed:
        i.p.clock.advance(timedelta(minutes=2))
        await _reveal(i, bid, "commercial")
        line = await _read_out(i, bid, "commercial")
        check(line["declared_price_fen"] == bid.price_fen, f"price {bid.price_fen}", line)
    i.p.clock.advance(timedelta(minutes=2))
    tender = await i.p.call("POST", f"/api/v1/tenders/{i.tid}/close-opening", i.agency)
    check(tender["status"] == "evaluation", "status evaluation", tender["status"])
    listed = {b["id"]: b for b in await i.p.call("GET", f"/api/v1/tenders/{i.tid}/bids", i.agency)}
    check(listed[failed.bid_id]["declared_price_fen"] is None, "no price for the failed bid", listed)
    check(_line(i, failed, "commercial") is None, "its commercial envelope never opened", i.record)

    async def signed() -> bool:
        r = await i.p.client.get(f"/api/v1/tenders/{i.tid}/opening/record/signed")
        return r.status_code == 200

    await i.p.settle(signed, f"{i.code}'s signed opening record")
    record = await i.p.call("GET", f"/api/v1/tenders/{i.tid}/opening/record/signed")
    [item] = [e for e in record["envelopes"] if e["bid"] == failed.bid_id]
    check(
        (item["result"], item["declared_price_fen"]) == ("sealed", None),
        "the failed bid's commercial envelope sealed on the signed record",
        item,
    )
    prices = ", ".join(yuan(b.price_fen) for b in passed)
    return (
        f"{i.evaluation['panel']}; in its room the committee reads the technical envelopes (no price) and its "
        f"chair records the result (the agency's attempt → 404); {failed.bidder.party.username} fails the "
        "technical evaluation (its commercial key → 409 on kind); "
        f"{len(passed)} commercial envelopes opened, prices {prices} yuan; "
        f"{failed.bidder.party.username}'s stays sealed on the signed record; status evaluation"
    )


async def invited_result(t: Trade) -> Outcome:
    """The committee that judged the technical envelopes ranks the three; the purchaser awards the lowest;
    the contract is published, the performance accepted and the procurement completed."""
    i = _invited(t)
    panel = i.evaluation["panel"]
    await sit(i, 5)
    first = i.evaluation["ranking"][0]
    winner = next(b for b in i.live_bids() if b.bid_id == first)
    opened = [b for b in i.live_bids() if b.bidder is not i.bidders[FAILING]]
    check(winner.price_fen == min(b.price_fen for b in opened), "the lowest opened price first", winner)
    i.p.clock.advance(timedelta(hours=2))
    results = await award_lot(i, winner)
    lot = results[0]["body"]["lots"][0]
    saving = i.plan.estimated_price_fen - winner.price_fen
    check(lot["saving_fen"] == saving, f"saving {saving} fen", lot)
    contract, accepted = await contract_and_accept(i, winner.price_fen)
    return (
        f"{panel}; {winner.bidder.party.username} first at {yuan(winner.price_fen)} yuan; {i.code}: budget "
        f"{yuan(i.plan.estimated_price_fen)} yuan, saving {yuan(saving)} yuan; contract {contract['signed_on']} "
        f"published; accepted {accepted['accepted_on']}; status completed"
    )
