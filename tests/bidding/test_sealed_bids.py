"""Sealed bids through the HTTP API: finalize checks, receipts against the closing head, the opening hall,
custody opening, the live record and W-18 signals."""

from __future__ import annotations

import base64
import io
import json
import secrets
from datetime import timedelta
from typing import Any

import pytest
from httpx import Response

from bidding import envelope, merkle
from bidding import receipt as receipts
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api, SealedBid

T = "/api/v1/tenders"
PRICE = 4_800_000_000


def problem(r: Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return dict(r.json())


async def bids_on(api: Api, n: int, **overrides: Any) -> tuple[Actor, dict[str, Any], list[SealedBid]]:
    agency = await api.organisation("agency")
    tender = await api.published(agency, **overrides)
    bids = [await api.bid(await api.organisation("bidder"), tender, PRICE - i) for i in range(n)]
    return agency, tender, bids


async def finalize(api: Api, bidder: Actor, tender: dict[str, Any], content: bytes, key: str) -> Response:
    grant = await api.post(
        f"{T}/{tender['id']}/bids/uploads", bidder, json={"filename": "bid.age", "size": max(len(content), 1)}
    )
    assert grant.status_code == 201, grant.text
    await api.upload(grant.json(), content)
    return await api.post(
        f"{T}/{tender['id']}/bids",
        bidder,
        json={"lot_id": tender["lots"][0]["id"], "object_key": grant.json()["object_key"]},
        headers={"Idempotency-Key": key},
    )


async def my_bids(api: Api, bidder: Actor, tender: dict[str, Any]) -> list[dict[str, Any]]:
    return list((await api.get(f"{T}/{tender['id']}/bids", bidder)).json())


# ---------------------------------------------------------------- finalize


async def test_a_file_that_is_not_an_age_envelope_is_refused_and_nothing_is_recorded(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    r = await finalize(api, bidder, tender, b"PK\x03\x04 a zip, not an envelope", "bid-not-age-01")
    body = problem(r, 422)
    assert body["errors"][0]["field"] == "object_key" and body["errors"][0]["message"].startswith("header.")
    assert await my_bids(api, bidder, tender) == []


async def test_an_envelope_sealed_for_another_tender_is_refused_at_finalize(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    other = await api.published(agency)
    bidder = await api.organisation("bidder")
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    sealed = await api.seal(bidder, other, PRICE)  # the other tender's code is bound into its share stanzas
    body = problem(await finalize(api, bidder, tender, sealed, "bid-wrong-tender"), 422)
    assert body["errors"][0]["message"].startswith("roster.")
    assert await my_bids(api, bidder, tender) == []


async def test_an_envelope_without_the_custodians_shares_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    strangers = [await api.organisation("supervisor") for _ in range(3)]
    for who in strangers:
        await api.register_keys(who, signing=False)
    tender = await api.published(agency)
    foreign = dict(tender)
    foreign["custodians"] = [
        {
            "public_key": base64.b64encode(
                api.keys[a.organisation_id].encryption.public_key().public_bytes_raw()
            ).decode()
        }
        for a in strangers
    ]
    bidder = await api.organisation("bidder")
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    sealed = await api.seal(bidder, foreign, PRICE)
    body = problem(await finalize(api, bidder, tender, sealed, "bid-foreign-roster"), 422)
    assert body["errors"][0]["message"].startswith("roster.")


async def test_an_empty_upload_is_refused_naming_the_object(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    body = problem(await finalize(api, bidder, tender, b"", "bid-empty-00001"), 422)
    assert body["errors"] == [{"field": "object_key", "message": "zero-length"}]


async def test_a_finalize_without_an_upload_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    grant = await api.post(f"{T}/{tender['id']}/bids/uploads", bidder, json={"filename": "b.age", "size": 10})
    r = await api.post(
        f"{T}/{tender['id']}/bids",
        bidder,
        json={"lot_id": tender["lots"][0]["id"], "object_key": grant.json()["object_key"]},
        headers={"Idempotency-Key": "bid-no-upload-1"},
    )
    assert problem(r, 422)["errors"] == [{"field": "object_key", "message": "no such object"}]


async def test_no_file_key_or_plaintext_is_stored_before_the_deadline(api: Api) -> None:
    _agency, _tender, [bid] = await bids_on(api, 1)
    from sqlalchemy import select

    from bidding.models import Envelope

    async with api.runtime.sessionmaker() as session:
        row = await session.scalar(select(Envelope))
    assert row is not None and row.file_key is None and row.manifest is None and row.files is None
    assert bid.envelope.startswith(b"age-encryption.org/v1\n")
    stored = b"".join([c async for c in api.runtime.store.iter_chunks(await _record_key(api, bid))])
    assert stored == bid.envelope  # ciphertext only: the platform never had the plaintext


async def _record_key(api: Api, bid: SealedBid) -> str:
    import uuid

    from trading.models import Bid

    async with api.runtime.sessionmaker() as session:
        row = await session.get(Bid, uuid.UUID(bid.bid_id))
    assert row is not None
    return str(row.object_key)


# ---------------------------------------------------------------- receipts


async def test_every_receipt_verifies_offline_and_against_the_closing_head(api: Api) -> None:
    _agency, tender, bids = await bids_on(api, 3)
    replaced = await api.bid(bids[0].bidder, tender, PRICE - 10, obtain=False)
    pin = receipts.KeyPin(
        base64.b64decode((await api.get("/api/v1/transparency/key")).json()["public_key"]), "the platform's"
    )
    for bid in [*bids, replaced]:
        checks = receipts.verify(bid.receipt, pin=pin)
        assert receipts.passed(checks), checks
    await api.at(DEADLINE)
    closing = (await api.get(f"{T}/{tender['id']}/closing")).json()
    assert sorted(closing["envelopes"]) == sorted(b.receipt["envelope_sha256"] for b in [*bids[1:], replaced])
    assert closing["head"]["tree_size"] == len(closing["leaves"]) == 4
    for bid in [*bids[1:], replaced]:
        checks = receipts.verify(bid.receipt, pin=pin, closing=closing)
        assert receipts.passed(checks), checks
    # the replaced envelope is still proven logged and in the closing tree, but is not among those that stood
    results = {c.name: c.ok for c in receipts.verify(bids[0].receipt, pin=pin, closing=closing)}
    assert results.pop("closing_envelope") is False
    assert results.pop("closing_inclusion") is True
    assert all(results.values())


async def test_a_tampered_receipt_fails_verification(api: Api) -> None:
    _agency, _tender, [bid] = await bids_on(api, 1)
    key = base64.b64decode((await api.get("/api/v1/transparency/key")).json()["public_key"])
    receipt = json.loads(json.dumps(bid.receipt["log"]))
    assert merkle.all_ok(merkle.verify_receipt(receipt, trusted_key=key))
    receipt["leaf"]["envelope_sha256"] = "0" * 64
    assert not merkle.all_ok(merkle.verify_receipt(receipt, trusted_key=key))


async def test_a_withdrawal_is_logged_with_a_receipt_of_its_own(api: Api) -> None:
    _agency, tender, [bid] = await bids_on(api, 1)
    key = base64.b64decode((await api.get("/api/v1/transparency/key")).json()["public_key"])
    r = await api.post(f"{T}/{tender['id']}/bids/{bid.bid_id}/withdraw", bid.bidder)
    assert r.status_code == 200
    receipt = r.json()["receipt"]
    assert receipt["event"] == "withdraw" and receipt["log"]["leaf"]["bid"] == bid.bid_id
    assert receipts.passed(receipts.verify(receipt, pin=receipts.KeyPin(key, "the platform's")))
    # the next leaf of the bidder's own log, under a head that extends the submission's
    assert (receipt["log"]["leaf_index"], receipt["log"]["tree_head"]["tree_size"]) == (1, 2)
    assert receipt["log"]["tree_head"]["log_id"] == bid.receipt["log"]["tree_head"]["log_id"]
    # the withdrawn bid's receipt is now the withdrawal's
    again = await api.get(f"{T}/{tender['id']}/bids/{bid.bid_id}/receipt", bid.bidder)
    assert again.json() == receipt


async def test_the_public_log_proves_consistency_between_any_two_heads(api: Api) -> None:
    agency = await api.organisation("agency")
    for _ in range(3):
        await api.bid(await api.organisation("bidder"), await api.published(agency), PRICE)
    await api.at(DEADLINE)  # three closing heads: the public log's three leaves
    head = (await api.get("/api/v1/transparency/head")).json()
    assert head["tree_size"] == 3
    early = (await api.get("/api/v1/transparency/head", params={"tree_size": 2})).json()
    proof = (
        await api.get("/api/v1/transparency/consistency", params={"first": 2, "second": head["tree_size"]})
    ).json()["proof"]
    assert merkle.verify_consistency(
        2,
        head["tree_size"],
        base64.b64decode(early["root_hash"]),
        base64.b64decode(head["root_hash"]),
        [base64.b64decode(p) for p in proof],
    )
    r = await api.get("/api/v1/transparency/consistency", params={"first": 2, "second": 999})
    assert problem(r, 422)["errors"][0]["field"] == "second"


# ---------------------------------------------------------------- the opening hall


async def test_opening_reads_out_the_manifest_price_and_keeps_the_plaintext_for_evaluation(api: Api) -> None:
    agency, tender, bids = await bids_on(api, 3)
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    mine = await my_bids(api, bids[0].bidder, tender)
    assert mine[0]["envelope_status"] == "opened" and mine[0]["declared_price_fen"] == PRICE
    record = (await api.get(f"{T}/{tender['id']}/opening/record", agency)).json()
    assert [e["kind"] for e in record] == ["hall_opened"] + ["key_revealed", "bid_opened"] * 3
    assert {e["declared_price_fen"] for e in record if e["kind"] == "bid_opened"} == {
        PRICE,
        PRICE - 1,
        PRICE - 2,
    }
    from sqlalchemy import select

    from bidding.models import Envelope

    async with api.runtime.sessionmaker() as session:
        rows = list(await session.scalars(select(Envelope)))
    for row in rows:
        assert row.files and all(f["object_key"].startswith("opened/") for f in row.files)
        stat = await api.runtime.store.stat(row.files[0]["object_key"])
        assert stat is not None and stat.size == row.files[0]["size"]


async def test_a_revealed_key_cannot_be_revealed_twice(api: Api) -> None:
    _agency, tender, [bid, *_] = await bids_on(api, 3)
    await api.at(DEADLINE)
    assert (await api.reveal(tender["id"], bid)).status_code == 202
    assert problem(await api.reveal(tender["id"], bid), 409)["detail"] == "This envelope is already opened."


async def test_an_envelope_whose_manifest_names_another_bidder_is_void(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidders = [await api.organisation("bidder") for _ in range(3)]
    bids = [await api.bid(b, tender, PRICE) for b in bidders[:2]]
    cheat = bidders[2]
    await api.post(f"{T}/{tender['id']}/documents/obtain", cheat)
    sealed = await api.seal(cheat, tender, PRICE - 5, credit_code=bidders[0].credit_code)
    r = await finalize(api, cheat, tender, sealed, "bid-cheat-00001")
    assert r.status_code == 201, r.text  # the platform cannot see inside before the deadline
    cheat_bid = SealedBid(
        cheat,
        tender["lots"][0]["id"],
        r.json()["bid_id"],
        PRICE - 5,
        365,
        sealed,
        api.keys[cheat.organisation_id],
        r.json(),
    )
    await api.at(DEADLINE)
    for bid in [*bids, cheat_bid]:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    [mine] = await my_bids(api, cheat, tender)
    assert (mine["status"], mine["envelope_result"]) == ("revoked", "context.bidder")
    assert mine["declared_price_fen"] is None


async def test_custodians_open_an_envelope_its_bidder_did_not(api: Api) -> None:
    _agency, tender, bids = await bids_on(api, 3)
    await api.at(DEADLINE)
    centre, supervisor, notary = await api.custodians()
    # before the window ends there is nothing in custody
    r = await api.post(
        f"{T}/{tender['id']}/custody/releases", centre, json={"bid_id": bids[2].bid_id, "release": {}}
    )
    assert problem(r, 409)["detail"].startswith("No envelope is in custody")
    for bid in bids[:2]:
        await api.reveal(tender["id"], bid)
    assert await api.at(AFTER_WINDOW) == [(tender["code"], "custody")]
    # T = 3: the platform's share and the supervisor's are not enough
    for custodian in (centre, supervisor):
        [r] = await api.release(tender["id"], custodian)
        assert r.status_code == 201, r.text
        assert (r.json()["status"], r.json()["stanza_opens"], r.json()["envelope_status"]) == (
            "valid",
            True,
            "custody",
        )
    [left] = [b for b in await my_bids(api, bids[2].bidder, tender)]
    assert left["envelope_status"] == "custody" and left["declared_price_fen"] is None
    [r] = await api.release(tender["id"], notary)
    assert (r.json()["envelope_status"], r.json()["outcome"]) == ("opening", "opened")
    # the release that opened it, sent again (its answer lost on the way): the same answer, a replay
    again = await api.client.post(
        r.request.url,
        content=r.request.content,
        headers={**notary.headers, "content-type": "application/json"},
    )
    assert (again.status_code, again.json()["replayed"], again.json()["outcome"]) == (200, True, "opened")
    [opened] = await my_bids(api, bids[2].bidder, tender)
    assert (opened["envelope_status"], opened["declared_price_fen"]) == ("opened", PRICE - 2)


async def test_a_release_before_the_deadline_is_refused_by_e01(api: Api) -> None:
    _agency, tender, [bid] = await bids_on(api, 1)
    centre, _, _ = await api.custodians()
    r = await api.post(
        f"{T}/{tender['id']}/custody/releases", centre, json={"bid_id": bid.bid_id, "release": {}}
    )
    assert problem(r, 422)["rule"] == "E-01"
    assert problem(await api.get(f"{T}/{tender['id']}/custody", centre), 422)["rule"] == "E-01"


async def test_under_the_revoke_policy_custodians_do_not_open(api: Api) -> None:
    _agency, tender, bids = await bids_on(api, 4, opening_policy="revoke")
    await api.at(DEADLINE)
    for bid in bids[:3]:
        await api.reveal(tender["id"], bid)
    assert await api.at(AFTER_WINDOW) == [(tender["code"], "evaluation")]
    centre, _, _ = await api.custodians()
    r = await api.post(
        f"{T}/{tender['id']}/custody/releases", centre, json={"bid_id": bids[3].bid_id, "release": {}}
    )
    assert problem(r, 422)["rule"] == "E-03"


async def test_fewer_than_three_valid_bids_after_opening_fail_the_lot_by_w09(api: Api) -> None:
    _agency, tender, bids = await bids_on(api, 3, opening_policy="revoke")
    await api.at(DEADLINE)
    for bid in bids[:2]:
        await api.reveal(tender["id"], bid)
    assert await api.at(AFTER_WINDOW) == [(tender["code"], "unsuccessful")]
    got = (await api.get(f"{T}/{tender['id']}")).json()
    assert got["lots"][0]["outcome_reason"].startswith("W-09: 2 valid bid(s)")


async def test_the_event_stream_replays_the_opening_and_ends_when_the_hall_closes(api: Api) -> None:
    agency, tender, bids = await bids_on(api, 3)
    await api.at(DEADLINE)
    for bid in bids:
        await api.reveal(tender["id"], bid)
    assert (await api.post(f"{T}/{tender['id']}/close-opening", agency)).status_code == 200
    r = await api.get(f"{T}/{tender['id']}/opening/events", bids[0].bidder)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("event: ") for line in r.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "hall_opened" and events[-1] == "hall_closed"
    assert events.count("bid_opened") == 3
    resumed = await api.client.get(
        f"{T}/{tender['id']}/opening/events", headers={**bids[0].bidder.headers, "Last-Event-ID": "7"}
    )
    ids = [int(line.removeprefix("id: ")) for line in resumed.text.splitlines() if line.startswith("id: ")]
    assert ids == [8]


async def test_the_same_device_at_submission_is_a_w18_signal(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidders = [await api.organisation("bidder") for _ in range(3)]
    bids = []
    device = secrets.token_hex(8)
    for i, bidder in enumerate(bidders):
        await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
        sealed = await api.seal(bidder, tender, PRICE - i)
        grant = await api.post(
            f"{T}/{tender['id']}/bids/uploads", bidder, json={"filename": "b.age", "size": len(sealed)}
        )
        await api.upload(grant.json(), sealed)
        r = await api.post(
            f"{T}/{tender['id']}/bids",
            bidder,
            json={"lot_id": tender["lots"][0]["id"], "object_key": grant.json()["object_key"]},
            headers={"Idempotency-Key": f"bid-device-{i:04d}", "X-GGZY-Device": device if i < 2 else "other"},
        )
        assert r.status_code == 201, r.text
        bids.append(
            SealedBid(
                bidder,
                tender["lots"][0]["id"],
                r.json()["bid_id"],
                PRICE - i,
                365,
                sealed,
                api.keys[bidder.organisation_id],
                r.json(),
            )
        )
    await api.at(DEADLINE)
    for bid in bids:
        await api.reveal(tender["id"], bid)
    await api.at(AFTER_WINDOW)
    supervisor = api.custodian_actors[1]
    signals = (await api.get(f"{T}/{tender['id']}/collusion-signals", supervisor)).json()
    same_device = [s for s in signals if s["kind"] == "same_device"]
    assert len(same_device) == 1
    assert same_device[0]["rule"] == "W-18"
    assert same_device[0]["bidders"] == sorted(b.credit_code for b in bidders[:2])
    assert not [s for s in signals if s["kind"] == "identical_file"]


async def test_a_late_key_after_the_window_is_refused_by_e03(api: Api) -> None:
    _agency, tender, bids = await bids_on(api, 3)
    await api.at(DEADLINE)
    api.clock.set(DEADLINE + timedelta(minutes=30))
    r = await api.reveal(tender["id"], bids[0])
    assert problem(r, 422)["rule"] == "E-03"


async def test_an_objection_at_the_opening_is_recorded_live_with_its_answer(api: Api) -> None:
    agency, tender, bids = await bids_on(api, 3)
    await api.at(DEADLINE)
    for bid in bids:
        await api.reveal(tender["id"], bid)
    r = await api.post(
        f"{T}/{tender['id']}/objections", bids[0].bidder, json={"subject": "opening", "text": "唱标价格有误"}
    )
    assert r.status_code == 201, r.text
    objection = r.json()["id"]
    assert "objections" in problem(await api.post(f"{T}/{tender['id']}/close-opening", agency), 409)["detail"]
    r = await api.post(
        f"{T}/{tender['id']}/objections/{objection}/answer", agency, json={"answer": "经复核，唱标无误"}
    )
    assert r.status_code == 200, r.text
    assert (await api.post(f"{T}/{tender['id']}/close-opening", agency)).status_code == 200
    record = (await api.get(f"{T}/{tender['id']}/opening/record", bids[1].bidder)).json()
    kinds = [e["kind"] for e in record]
    assert kinds[-3:] == ["objection_raised", "objection_answered", "hall_closed"]
    assert record[-2]["answer"] == "经复核，唱标无误"
    notices = (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    [opening] = [n for n in notices if n["kind"] == "opening_record"]
    assert opening["body"]["objections"][0]["answer"] == "经复核，唱标无误"


async def test_the_event_stream_is_live_on_a_real_server(api: Api) -> None:
    import asyncio
    import socket

    import httpx

    from app import create_app
    from demo.common import serving

    _agency, tender, bids = await bids_on(api, 3)
    await api.at(DEADLINE)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(api.runtime, manage_runtime=False)
    seen: list[str] = []
    async with serving(app, sock), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

        async def listen() -> None:
            async with http.stream(
                "GET", f"{T}/{tender['id']}/opening/events", headers=bids[0].bidder.headers
            ) as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("event: "):
                        seen.append(line.removeprefix("event: "))
                        if seen.count("bid_opened") == 1:
                            return

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0.3)
        assert seen == ["hall_opened"]  # the stream is open and waiting
        await api.reveal(tender["id"], bids[0])
        await asyncio.wait_for(listener, 10)
    assert seen == ["hall_opened", "key_revealed", "bid_opened"]


async def test_bidders_sign_in_to_the_hall_once_and_only_when_it_is_open(api: Api) -> None:
    _agency, tender, bids = await bids_on(api, 3)
    path = f"{T}/{tender['id']}/opening/check-in"
    assert problem(await api.post(path, bids[0].bidder), 422)["rule"] == "E-02"
    await api.at(DEADLINE)
    first = await api.post(path, bids[0].bidder)
    assert first.status_code == 200 and first.json()["kind"] == "bidder_signed_in"
    again = await api.post(path, bids[0].bidder)
    assert again.json()["seq"] == first.json()["seq"]
    stranger = await api.organisation("bidder")
    problem(await api.post(path, stranger), 404)
    record = (await api.get(f"{T}/{tender['id']}/opening/record", bids[1].bidder)).json()
    assert [e["kind"] for e in record].count("bidder_signed_in") == 1


async def test_an_oversized_envelope_is_refused_before_any_upload(api: Api) -> None:
    from trading.documents import MAX_UPLOAD_BYTES

    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    r = await api.post(
        f"{T}/{tender['id']}/bids/uploads", bidder, json={"filename": "b.age", "size": MAX_UPLOAD_BYTES + 1}
    )
    assert problem(r, 422)["errors"] == [{"field": "size", "message": "too large"}]


@pytest.mark.parametrize(
    ("keep", "code"),
    [
        (lambda header: header, "payload.nonce"),  # the header alone
        (lambda header: header + 16, "payload.truncated"),  # the nonce and no chunk
        (lambda header: header + 16 + 65_536 + 16 + 10, "payload.truncated"),  # the last chunk cut in its tag
        (lambda header: header + 16 + 65_536 + 16 + 16, "payload.empty_chunk"),  # an empty chunk after data
    ],
    ids=["header-only", "nonce-only", "cut-in-tag", "empty-last-chunk"],
)
async def test_finalize_refuses_a_payload_whose_length_cannot_be_valid(
    api: Api, keep: Any, code: str
) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    sealed = await api.seal(bidder, tender, PRICE, files={"bid.pdf": secrets.token_bytes(100_000)})
    header = envelope.read_header(io.BytesIO(sealed))

    r = await finalize(api, bidder, tender, sealed[: keep(header.size)], f"bid-cut-{code}")

    assert problem(r, 422)["errors"] == [{"field": "object_key", "message": code}]
    assert await my_bids(api, bidder, tender) == []
