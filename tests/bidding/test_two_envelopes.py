"""Two-envelope bidding (双信封) through the HTTP API: a bid is a technical and a commercial envelope sealed
and submitted together; the opening reveals the technical envelopes only, and the commercial envelopes of
the bids that pass the technical evaluation alone are opened afterwards, their prices read out then."""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from httpx import Response

from bidding import agekeys, bidfile, envelope
from bidding import receipt as receipts
from tests.evaluation.technical_fixtures import judge, judged_and_opened, seat_committee
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api

T = "/api/v1/tenders"
PRICE = 4_800_000_000


@dataclass
class TwoEnvelopes:
    """What a bidder keeps of a bid of two envelopes."""

    bidder: Actor
    bid_id: str
    price_fen: int
    technical: bytes
    commercial: bytes
    keys: agekeys.KeyPair
    receipt: dict[str, Any]

    def file_key(self, kind: str) -> bytes:
        sealed = self.technical if kind == "technical" else self.commercial
        header = envelope.read_header(io.BytesIO(sealed))
        return envelope.unwrap_bidder(header, self.keys.encryption.private_bytes_raw())


def problem(r: Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return dict(r.json())


async def seal(
    api: Api,
    bidder: Actor,
    tender: dict[str, Any],
    kind: str,
    price_fen: int | None,
    *,
    code: str | None = None,
) -> bytes:
    """One envelope of the bidder's bid, as its client seals it (`ggzy bid seal --kind`)."""
    keys = await api.register_keys(bidder)
    assert keys.signing is not None
    if not tender.get("custodians"):
        tender = (await api.get(f"{T}/{tender['id']}", bidder)).json()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{kind}.pdf"
        path.write_bytes(b"%PDF-1.7 " + kind.encode() + secrets.token_bytes(256))
        out = io.BytesIO()
        bidfile.seal_bid(
            [path],
            out,
            tender=code or tender["code"],
            lot=tender["lots"][0]["number"],
            bidder=bidder.credit_code,
            kind=kind,
            declared_price_fen=price_fen,
            duration_days=365 if kind == "commercial" else None,
            signing=keys.signing,
            bidder_public=agekeys.x25519_public_raw(keys),
            custodians=[base64.b64decode(c["public_key"]) for c in tender["custodians"]],
            threshold=tender["shamir_threshold"],
        )
    return out.getvalue()


async def upload(api: Api, bidder: Actor, tender: dict[str, Any], content: bytes) -> str:
    grant = await api.post(
        f"{T}/{tender['id']}/bids/uploads", bidder, json={"filename": "bid.age", "size": len(content)}
    )
    assert grant.status_code == 201, grant.text
    await api.upload(grant.json(), content)
    return str(grant.json()["object_key"])


async def submit(
    api: Api,
    bidder: Actor,
    tender: dict[str, Any],
    commercial: bytes,
    technical: bytes | None,
) -> Response:
    body: dict[str, Any] = {
        "lot_id": tender["lots"][0]["id"],
        "object_key": await upload(api, bidder, tender, commercial),
    }
    if technical is not None:
        body["technical"] = {"object_key": await upload(api, bidder, tender, technical)}
    return await api.post(
        f"{T}/{tender['id']}/bids",
        bidder,
        json=body,
        headers={"Idempotency-Key": f"bid-{secrets.token_hex(8)}"},
    )


async def bid_two(
    api: Api,
    bidder: Actor,
    tender: dict[str, Any],
    price_fen: int,
    *,
    technical_kind: str = "technical",
    swap: bool = False,
) -> TwoEnvelopes:
    """`bidder` obtains the documents, pays the deposit, seals both envelopes and submits them together."""
    r = await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    assert r.status_code == 200, r.text
    await api.pay_deposit(bidder, tender["lots"][0]["id"], only_if_missing=True)
    keys = await api.register_keys(bidder)
    technical = await seal(
        api, bidder, tender, technical_kind, price_fen if technical_kind == "commercial" else None
    )
    commercial = await seal(api, bidder, tender, "commercial", price_fen)
    if swap:
        technical, commercial = commercial, technical
    r = await submit(api, bidder, tender, commercial, technical)
    assert r.status_code == 201, r.text
    return TwoEnvelopes(bidder, r.json()["bid_id"], price_fen, technical, commercial, keys, r.json())


async def platform_key(api: Api) -> receipts.KeyPin:
    key = base64.b64decode((await api.get("/api/v1/transparency/key")).json()["public_key"])
    return receipts.KeyPin(key, "the platform's")


async def two_envelope_tender(api: Api, **overrides: Any) -> tuple[Actor, dict[str, Any]]:
    agency = await api.organisation("agency")
    return agency, await api.published(agency, envelopes=2, **overrides)


# ---------------------------------------------------------------- the tender


async def test_a_tender_states_its_envelopes_and_one_is_the_default(api: Api) -> None:
    agency = await api.organisation("agency")
    one = await api.draft(agency)
    two = await api.draft(agency, envelopes=2)
    assert (one["envelopes"], two["envelopes"]) == (1, 2)
    procurement = await api.draft(agency, sector="procurement", envelopes=2)
    assert procurement["envelopes"] == 2


async def test_two_envelopes_only_where_the_procedure_has_them(api: Api) -> None:
    agency = await api.organisation("agency")
    invited = [(await api.organisation("bidder")).organisation_id for _ in range(3)]
    r = await api.post(
        T,
        agency,
        json=api.tender_body(
            sector="procurement",
            method="rfq",
            envelopes=2,
            evaluation_method="lowest_evaluated_price",
            invited=invited,
            documents_from="2026-03-02T09:00:00+08:00",
            bid_deadline="2026-03-23T10:00:00+08:00",
        ),
    )
    body = problem(r, 422)
    assert body["errors"][0]["field"] == "envelopes"


# ---------------------------------------------------------------- sealing and submission


async def test_sealing_both_envelopes_puts_the_price_in_the_commercial_one_only(api: Api) -> None:
    _agency, tender = await two_envelope_tender(api)
    bid = await bid_two(api, await api.organisation("bidder"), tender, PRICE)
    opened = {}
    for kind in ("technical", "commercial"):
        sealed = bid.technical if kind == "technical" else bid.commercial
        with tempfile.TemporaryDirectory() as tmp:
            opened[kind] = bidfile.open_bid(io.BytesIO(sealed), bid.file_key(kind), Path(tmp)).manifest
    assert opened["technical"].kind == "technical"
    assert opened["technical"].declared_price_fen is None
    assert opened["commercial"].kind == "commercial"
    assert opened["commercial"].declared_price_fen == PRICE
    assert bid.file_key("technical") != bid.file_key("commercial")


async def test_a_bid_on_a_tender_of_two_envelopes_needs_both(api: Api) -> None:
    _agency, tender = await two_envelope_tender(api)
    bidder = await api.organisation("bidder")
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    commercial = await seal(api, bidder, tender, "commercial", PRICE)
    body = problem(await submit(api, bidder, tender, commercial, None), 422)
    assert body["errors"][0]["field"] == "technical"
    assert (await api.get(f"{T}/{tender['id']}/bids", bidder)).json() == []


async def test_the_same_file_as_both_envelopes_is_refused(api: Api) -> None:
    _agency, tender = await two_envelope_tender(api)
    bidder = await api.organisation("bidder")
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    commercial = await seal(api, bidder, tender, "commercial", PRICE)
    body = problem(await submit(api, bidder, tender, commercial, commercial), 422)
    assert body["errors"][0]["field"] == "technical.object_key"


async def test_the_receipt_covers_both_envelopes_and_verifies_offline(api: Api) -> None:
    _agency, tender = await two_envelope_tender(api)
    bid = await bid_two(api, await api.organisation("bidder"), tender, PRICE)
    receipt = bid.receipt
    assert receipt["envelope_sha256"] == hashlib.sha256(bid.commercial).hexdigest()
    assert receipt["technical_sha256"] == hashlib.sha256(bid.technical).hexdigest()
    assert receipt["technical_size"] == len(bid.technical)
    leaf = receipt["log"]["leaf"]
    assert (leaf["envelope_sha256"], leaf["technical_sha256"]) == (
        receipt["envelope_sha256"],
        receipt["technical_sha256"],
    )
    pin = await platform_key(api)
    checks = receipts.verify(receipt, pin=pin)
    assert receipts.passed(checks), checks
    assert "technical_sha256" in {c.name for c in checks}
    forged = dict(receipt, technical_sha256="0" * 64)
    assert not receipts.passed(receipts.verify(forged, pin=pin))
    served = await api.get(f"{T}/{tender['id']}/bids/{bid.bid_id}/receipt", bid.bidder)
    assert served.json()["technical_sha256"] == receipt["technical_sha256"]


async def test_withdrawing_a_bid_withdraws_both_envelopes(api: Api) -> None:
    _agency, tender = await two_envelope_tender(api)
    bid = await bid_two(api, await api.organisation("bidder"), tender, PRICE)
    r = await api.post(f"{T}/{tender['id']}/bids/{bid.bid_id}/withdraw", bid.bidder)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "withdrawn"
    leaf = r.json()["receipt"]["log"]["leaf"]
    assert leaf["event"] == "withdraw"
    assert leaf["technical_sha256"] == bid.receipt["technical_sha256"]
    assert leaf["envelope_sha256"] == bid.receipt["envelope_sha256"]


async def test_a_tender_of_one_envelope_takes_no_technical_envelope(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    commercial = await seal(api, bidder, tender, "commercial", PRICE)
    technical = await seal(api, bidder, tender, "technical", None)
    body = problem(await submit(api, bidder, tender, commercial, technical), 422)
    assert body["errors"][0]["field"] == "technical"
    bid = await api.bid(bidder, tender, PRICE)
    assert "technical_sha256" not in bid.receipt


# ---------------------------------------------------------------- the two openings


async def reveal(
    api: Api, tender: dict[str, Any], bid: TwoEnvelopes, kind: str, *, run: bool = True
) -> Response:
    r = await api.post(
        f"{T}/{tender['id']}/bids/{bid.bid_id}/decrypt",
        bid.bidder,
        json={"file_key": base64.b64encode(bid.file_key(kind)).decode(), "kind": kind},
    )
    if run:
        await api.run_jobs()
    return r


async def record(api: Api, agency: Actor, tender: dict[str, Any]) -> list[dict[str, Any]]:
    r = await api.get(f"{T}/{tender['id']}/opening/record", agency)
    assert r.status_code == 200, r.text
    return list(r.json())


async def commercial_rows(api: Api, tender: dict[str, Any]) -> dict[str, Any]:
    """The commercial envelopes on record, by bid (read from the database: what was decrypted)."""
    import uuid

    from sqlalchemy import select

    from bidding.models import Envelope

    async with api.runtime.sessionmaker() as session:
        rows = await session.scalars(select(Envelope).where(Envelope.tender_id == uuid.UUID(tender["id"])))
        return {str(r.bid_id): r for r in rows}


async def technically_opened(api: Api, n: int = 4) -> tuple[Actor, dict[str, Any], list[TwoEnvelopes]]:
    """A tender of two envelopes with `n` bids, its technical opening held and closed."""
    agency, tender = await two_envelope_tender(api)
    bids = [await bid_two(api, await api.organisation("bidder"), tender, PRICE - i) for i in range(n)]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await reveal(api, tender, bid, "technical")).status_code == 202
    r = await api.post(f"{T}/{tender['id']}/close-opening", agency)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "technical_evaluation"
    return agency, tender, bids


async def test_the_opening_reveals_the_technical_envelopes_only_and_reads_out_no_price(api: Api) -> None:
    agency, tender = await two_envelope_tender(api)
    bids = [await bid_two(api, await api.organisation("bidder"), tender, PRICE - i) for i in range(3)]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await reveal(api, tender, bid, "technical")).status_code == 202
    events = await record(api, agency, tender)
    assert events[0]["kind"] == "hall_opened" and events[0]["envelope"] == "technical"
    opened = [e for e in events if e["kind"] == "bid_opened"]
    assert len(opened) == 3
    assert all(e["envelope"] == "technical" for e in opened)
    assert all("declared_price_fen" not in e and "duration_days" not in e for e in events)
    assert all(
        row.status == "sealed" and row.file_key is None
        for row in (await commercial_rows(api, tender)).values()
    )
    listed = (await api.get(f"{T}/{tender['id']}/bids", agency)).json()
    assert {b["declared_price_fen"] for b in listed} == {None}
    r = await api.post(f"{T}/{tender['id']}/close-opening", agency)
    assert r.json()["status"] == "technical_evaluation"
    notice = [
        n
        for n in (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
        if n["kind"] == "opening_record"
    ]
    assert notice and all("declared_price_fen" not in line for line in notice[0]["body"]["bids"])


async def test_a_commercial_key_before_the_commercial_opening_is_refused(api: Api) -> None:
    agency, tender = await two_envelope_tender(api)
    bids = [await bid_two(api, await api.organisation("bidder"), tender, PRICE - i) for i in range(3)]
    await api.at(DEADLINE)
    body = problem(await reveal(api, tender, bids[0], "commercial"), 409)
    assert body["errors"][0]["field"] == "kind"
    for bid in bids:
        await reveal(api, tender, bid, "technical")
    await api.post(f"{T}/{tender['id']}/close-opening", agency)
    body = problem(await reveal(api, tender, bids[0], "commercial"), 409)  # the technical evaluation runs
    assert "technical_evaluation" in body["detail"]
    assert (await commercial_rows(api, tender))[bids[0].bid_id].status == "sealed"


async def test_the_commercial_opening_reads_out_the_passed_bids_prices_only(api: Api) -> None:
    agency, tender, bids = await technically_opened(api)
    passed, failed = bids[:3], bids[3]
    r = await judged_and_opened(api, agency, tender, [b.bid_id for b in passed], [failed.bid_id])
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["not_passed"]) == ("commercial_opening", [failed.bid_id])
    for bid in passed:
        assert (await reveal(api, tender, bid, "commercial")).status_code == 202
    opened = [
        e for e in await record(api, agency, tender) if e["kind"] == "bid_opened" and "envelope" not in e
    ]
    assert {e["bid"]: e["declared_price_fen"] for e in opened} == {b.bid_id: b.price_fen for b in passed}
    r = await api.post(f"{T}/{tender['id']}/close-opening", agency)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "evaluation"
    notices = (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    commercial = [n for n in notices if n["kind"] == "opening_record" and "商务标" in n["title"]]
    assert {line["bid"] for line in commercial[0]["body"]["bids"]} == {b.bid_id for b in passed}


async def test_a_failed_bids_commercial_envelope_is_never_decrypted(api: Api) -> None:
    agency, tender, bids = await technically_opened(api)
    failed = bids[3]
    opened = await judged_and_opened(api, agency, tender, [b.bid_id for b in bids[:3]], [failed.bid_id])
    assert opened.status_code == 200, opened.text
    assert (await api.get(f"{T}/{tender['id']}/opening/record/signed")).status_code == 404
    body = problem(await reveal(api, tender, failed, "commercial"), 409)
    assert body["errors"][0]["field"] == "kind"
    for bid in bids[:3]:
        await reveal(api, tender, bid, "commercial")
    await api.at(AFTER_WINDOW + timedelta(hours=2))  # the window ends: nothing goes to custody for it
    row = (await commercial_rows(api, tender))[failed.bid_id]
    assert (row.status, row.file_key, row.manifest) == ("sealed", None, None)
    got = (await api.get(f"{T}/{tender['id']}", agency)).json()
    assert got["status"] == "evaluation"
    listed = {b["id"]: b for b in (await api.get(f"{T}/{tender['id']}/bids", agency)).json()}
    assert listed[failed.bid_id]["declared_price_fen"] is None
    assert listed[failed.bid_id]["rejection"]["rule"] == "W-19"
    assert (
        listed[failed.bid_id]["rejection"]["detail"] == "技术方案不满足实质性要求"
    )  # the committee's reason
    signed = (await api.get(f"{T}/{tender['id']}/opening/record/signed")).json()
    [item] = [e for e in signed["envelopes"] if e["bid"] == failed.bid_id]
    assert (item["result"], item["declared_price_fen"]) == ("sealed", None)


async def test_an_envelope_whose_manifest_is_of_the_other_kind_is_void(api: Api) -> None:
    agency, tender = await two_envelope_tender(api)
    bids = [await bid_two(api, await api.organisation("bidder"), tender, PRICE - i) for i in range(3)]
    wrong = await bid_two(
        api, await api.organisation("bidder"), tender, PRICE - 9, technical_kind="qualification"
    )
    await api.at(DEADLINE)
    assert (await reveal(api, tender, wrong, "technical")).status_code == 202
    [line] = [e for e in await record(api, agency, tender) if e["kind"] == "bid_failed"]
    assert (line["bid"], line["result"]) == (wrong.bid_id, "context.kind")
    mine = (await api.get(f"{T}/{tender['id']}/bids", wrong.bidder)).json()
    assert mine[0]["status"] == "revoked"
    assert {e["bid"] for e in await record(api, agency, tender) if e["kind"] == "bid_opened"} == set()
    assert len(bids) == 3


async def test_a_bidder_who_swaps_its_envelopes_is_void_and_its_price_is_not_read_out(api: Api) -> None:
    agency, tender = await two_envelope_tender(api)
    for i in range(3):
        await bid_two(api, await api.organisation("bidder"), tender, PRICE - i)
    swapped = await bid_two(api, await api.organisation("bidder"), tender, PRICE - 7, swap=True)
    await api.at(DEADLINE)
    # the envelope submitted as technical is its commercial one: it opens with its key, but is void
    assert (await reveal(api, tender, swapped, "technical")).status_code == 202
    events = await record(api, agency, tender)
    [line] = [e for e in events if e["kind"] == "bid_failed"]
    assert (line["bid"], line["result"]) == (swapped.bid_id, "context.kind")
    assert all("declared_price_fen" not in e for e in events)
    assert all(str(PRICE - 7) not in str(e) for e in events)
    # the bid is void: its other envelope is never opened
    assert problem(await reveal(api, tender, swapped, "commercial"), 409)["detail"] == "This bid is revoked."
    assert (await commercial_rows(api, tender))[swapped.bid_id].status == "sealed"


async def test_the_agency_cannot_open_commercial_envelopes_before_the_technical_opening_closes(
    api: Api,
) -> None:
    agency, tender = await two_envelope_tender(api)
    bids = [await bid_two(api, await api.organisation("bidder"), tender, PRICE - i) for i in range(3)]
    opening = f"{T}/{tender['id']}/commercial-opening"
    assert problem(await api.post(opening, agency), 409)["status_now"] == "tendering"
    await api.at(DEADLINE)
    assert problem(await api.post(opening, agency), 409)["status_now"] == "opening"
    # the agency is no bidder: it cannot reveal a key, and nobody else's agency can name the result
    r = await api.post(
        f"{T}/{tender['id']}/bids/{bids[0].bid_id}/decrypt",
        agency,
        json={"file_key": base64.b64encode(bids[0].file_key("commercial")).decode(), "kind": "commercial"},
    )
    assert r.status_code in (403, 404)
    other = await api.organisation("agency")
    assert (await api.post(opening, other)).status_code == 404
    assert all(row.status == "sealed" for row in (await commercial_rows(api, tender)).values())


async def test_a_bidder_of_another_tender_cannot_reveal_keys_here(api: Api) -> None:
    _other_agency, other = await two_envelope_tender(api)
    stranger = await bid_two(api, await api.organisation("bidder"), other, PRICE)
    _agency, tender, bids = await technically_opened(api, 3)
    r = await api.post(
        f"{T}/{tender['id']}/bids/{bids[0].bid_id}/decrypt",
        stranger.bidder,
        json={"file_key": base64.b64encode(bids[0].file_key("commercial")).decode(), "kind": "commercial"},
    )
    assert r.status_code == 404


async def test_a_tender_of_one_envelope_opens_as_before(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bids = [await api.bid(await api.organisation("bidder"), tender, PRICE - i) for i in range(3)]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    events = await record(api, agency, tender)
    assert "envelope" not in events[0]
    assert {e["declared_price_fen"] for e in events if e["kind"] == "bid_opened"} == {
        b.price_fen for b in bids
    }
    technical = await api.post(
        f"{T}/{tender['id']}/bids/{bids[0].bid_id}/decrypt",
        bids[0].bidder,
        json={"file_key": base64.b64encode(bids[0].file_key).decode(), "kind": "technical"},
    )
    assert problem(technical, 422)["errors"][0]["field"] == "kind"
    r = await api.post(f"{T}/{tender['id']}/close-opening", agency)
    assert r.json()["status"] == "evaluation"


# ---------------------------------------------------------------- the client


async def test_the_client_seals_submits_and_reveals_both_envelopes(api: Api, tmp_path: Path) -> None:
    from bidding.client import GgzyClient

    agency, tender = await two_envelope_tender(api)
    for i in range(2):
        await bid_two(api, await api.organisation("bidder"), tender, PRICE - i)
    bidder = await api.organisation("bidder")
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    await api.pay_deposit(bidder, tender["lots"][0]["id"], only_if_missing=True)
    keys = agekeys.generate(signing=True)
    (tmp_path / "技术标.pdf").write_bytes(b"%PDF-1.7 technical")
    (tmp_path / "商务标.pdf").write_bytes(b"%PDF-1.7 commercial")
    client = GgzyClient("http://testserver", bidder.token, transport=api.client._transport)
    async with client:
        await client.register_keys(keys)
        published = await client.tender(tender["id"])
        sealed = {}
        for kind, price in (("technical", None), ("commercial", PRICE)):
            sealed[kind] = await client.seal(
                published,
                1,
                [tmp_path / ("技术标.pdf" if kind == "technical" else "商务标.pdf")],
                keys,
                bidder_credit_code=bidder.credit_code,
                declared_price_fen=price,
                duration_days=None,
                out=tmp_path / f"{kind}.age",
                kind=kind,
            )
        receipt = await client.submit(
            tender["id"],
            tender["lots"][0]["id"],
            sealed["commercial"].path,
            technical=sealed["technical"].path,
        )
        assert receipt["technical_sha256"] == sealed["technical"].sha256()
        assert receipt["envelope_sha256"] == sealed["commercial"].sha256()
        await api.at(DEADLINE)
        answer = await client.reveal(
            tender["id"], receipt["bid_id"], sealed["technical"].path, keys, "technical"
        )
        assert answer["envelope_status"] == "opening"
        await api.run_jobs()
    events = await record(api, agency, tender)
    assert [e["bid"] for e in events if e["kind"] == "bid_opened"] == [receipt["bid_id"]]


async def test_a_technical_envelope_left_sealed_voids_its_bid_when_the_window_ends(api: Api) -> None:
    agency, tender = await two_envelope_tender(api, opening_policy="revoke")
    bids = [await bid_two(api, await api.organisation("bidder"), tender, PRICE - i) for i in range(4)]
    await api.at(DEADLINE)
    for bid in bids[:3]:
        await reveal(api, tender, bid, "technical")
    assert await api.at(AFTER_WINDOW) == [(tender["code"], "technical_evaluation")]
    listed = {b["id"]: b for b in (await api.get(f"{T}/{tender['id']}/bids", agency)).json()}
    assert listed[bids[3].bid_id]["status"] == "revoked"
    # under the "revoke" policy the custodians are asked for nothing: no envelope is in custody
    assert all(row.status == "sealed" for row in (await commercial_rows(api, tender)).values())
    seated = await seat_committee(api, agency, tender)
    r = await judge(api, seated, [bids[3].bid_id], [b.bid_id for b in bids[:3]])
    assert problem(r, 422)["errors"][0]["field"] == "verdicts[0].bid_id"  # a void bid is not judged


async def test_the_two_envelope_flow_on_the_command_line(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """seal --kind technical (no price), seal the commercial one, submit --technical, reveal --kind."""
    import asyncio
    import json
    import socket

    from click.testing import CliRunner

    from app import create_app
    from demo.common import serving
    from ggzy import cli
    from tests.helpers import PASSWORD

    agency, tender = await two_envelope_tender(api)
    for i in range(2):
        await bid_two(api, await api.organisation("bidder"), tender, PRICE - i)
    bidder = await api.organisation("bidder")
    (tmp_path / "tech.pdf").write_bytes(b"%PDF-1.7 technical")
    (tmp_path / "price.pdf").write_bytes(b"%PDF-1.7 commercial")
    key, tech, comm = tmp_path / "me.key", tmp_path / "tech.age", tmp_path / "bid.age"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        monkeypatch.setattr(api.runtime.store, "_base_url", url)
        async with serving(create_app(api.runtime, manage_runtime=False), sock):

            def ggzy(*args: str, ok: bool = True) -> str:
                env = {"GGZY_URL": url, "GGZY_USERNAME": bidder.username, "GGZY_PASSWORD": PASSWORD}
                result = CliRunner().invoke(cli, list(args), env=env)
                assert (result.exit_code == 0) is ok, result.output
                return result.output

            def bidding() -> dict[str, Any]:
                ggzy("bid", "keygen", "--out", str(key), "--register")
                ggzy("bid", "obtain", "--tender", tender["id"], "--out", str(tmp_path / "docs"))
                seal = ("bid", "seal", "--tender", tender["id"], "--key", str(key), "--out")
                ggzy(
                    *seal,
                    str(tech),
                    "--kind",
                    "technical",
                    "--price-fen",
                    "1",
                    str(tmp_path / "tech.pdf"),
                    ok=False,
                )
                ggzy(*seal, str(tech), "--kind", "technical", str(tmp_path / "tech.pdf"))
                ggzy(*seal, str(comm), "--price-fen", str(PRICE), str(tmp_path / "price.pdf"))
                submit = ("bid", "submit", "--tender", tender["id"], "--receipt", str(tmp_path / "r.json"))
                ggzy(*submit, "--technical", str(tech), str(comm))
                return dict(json.loads((tmp_path / "r.json").read_text()))

            receipt = await asyncio.to_thread(bidding)
            await api.pay_deposit(bidder, tender["lots"][0]["id"], only_if_missing=True)
            await api.at(DEADLINE)
            reveal = (
                "bid",
                "reveal",
                "--tender",
                tender["id"],
                "--bid",
                receipt["bid_id"],
                "--key",
                str(key),
            )
            refused = await asyncio.to_thread(lambda: ggzy(*reveal, str(comm), ok=False))
            answer = await asyncio.to_thread(lambda: ggzy(*reveal, "--kind", "technical", str(tech)))
    assert "kind" in refused
    assert json.loads(answer)["envelope_status"] == "opening"
    assert receipt["technical_sha256"] == hashlib.sha256(tech.read_bytes()).hexdigest()
    assert receipt["envelope_sha256"] == hashlib.sha256(comm.read_bytes()).hexdigest()
    await api.run_jobs()
    opened = [e["bid"] for e in await record(api, agency, tender) if e["kind"] == "bid_opened"]
    assert opened == [receipt["bid_id"]]
