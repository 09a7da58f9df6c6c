"""A complete open works tender through the HTTP API: draft → … → completed."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers import AFTER_WINDOW, DEADLINE, Api, shanghai


async def test_a_works_tender_runs_from_draft_to_completed_contract(api: Api) -> None:
    agency = await api.organisation("agency")
    bidders = [await api.organisation("bidder", name=f"建设集团{i}") for i in range(5)]
    tender = await api.published(agency)
    tid = tender["id"]
    assert tender["status"] == "tendering"
    assert tender["code"].startswith("GGZY-320100-2026-W")

    bids = [await api.bid(b, tender, price_fen=4_800_000_000 - i * 10_000_000) for i, b in enumerate(bidders)]
    # the fifth bidder withdraws before the deadline (W-05)
    r = await api.post(f"/api/v1/tenders/{tid}/bids/{bids[4].bid_id}/withdraw", bidders[4])
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"

    done = await api.at(DEADLINE)
    assert done == [(tender["code"], "opening")]
    # a late bid is refused (W-07)
    late = await api.post(
        f"/api/v1/tenders/{tid}/bids/uploads", bidders[4], json={"filename": "b.zip", "size": 10}
    )
    assert late.status_code == 422 and late.json()["rule"] == "W-07"

    for bid in bids[:3]:
        assert (await api.reveal(tid, bid)).status_code == 202
    # the fourth bidder misses the decryption window: its envelope goes to the custodians (E-03): the two
    # besides the platform (t = 2) and the platform's own share (T = 3) each release their stanza with a
    # proof; the platform then opens it
    assert await api.at(AFTER_WINDOW) == [(tender["code"], "custody")]
    for custodian in await api.custodians():
        [r] = await api.release(tid, custodian)
        assert r.status_code == 201, r.text
    assert (r.json()["bid_id"], r.json()["outcome"]) == (bids[3].bid_id, "opened")
    assert await api.at(AFTER_WINDOW + timedelta(minutes=30)) == [(tender["code"], "evaluation")]
    notices = (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    record = next(n for n in notices if n["kind"] == "opening_record")
    assert [b["result"] for b in record["body"]["bids"]] == ["opened"] * 4
    assert [b["opened_by"] for b in record["body"]["bids"]] == ["bidder"] * 3 + ["custodians"]
    assert [b["declared_price_fen"] for b in record["body"]["bids"]] == [
        4_800_000_000,
        4_790_000_000,
        4_780_000_000,
        4_770_000_000,
    ]

    # the committee rates bid 2's business and technical offer highest: it ranks first though bid 3 is
    # cheaper; the others follow by price, and only three become candidates (W-11)
    api.clock.set(AFTER_WINDOW + timedelta(days=1))
    scheme = (await api.get(f"/api/v1/evaluation/tenders/{tid}/scheme", agency)).json()
    maximum: dict[str, int] = {
        leaf["code"]: leaf["max_cp"] for group in scheme["criteria"] for leaf in group.get("children", [])
    }

    def scores(_seat: int, bid_id: str, leaf: str) -> int:
        return maximum[leaf] if bid_id == bids[2].bid_id else maximum[leaf] * 8 // 10

    await api.evaluate(agency, tid, scores=scores)
    got = (await api.get(f"/api/v1/tenders/{tid}")).json()
    assert got["status"] == "publicity"
    notices = (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    candidates = next(n for n in notices if n["kind"] == "candidates")
    assert [
        (c["rank"], c["credit_code"], c["declared_price_fen"])
        for c in candidates["body"]["lots"][0]["candidates"]
    ] == [
        (1, bidders[2].credit_code, 4_780_000_000),
        (2, bidders[3].credit_code, 4_770_000_000),
        (3, bidders[1].credit_code, 4_790_000_000),
    ]
    early = await api.post(
        f"/api/v1/tenders/{tid}/award",
        agency,
        json={"lots": [{"lot_id": bids[2].lot_id, "bid_id": bids[2].bid_id}]},
    )
    assert early.status_code == 422 and early.json()["rule"] == "W-12"

    api.clock.set(api.clock.now() + timedelta(days=4))
    r = await api.post(
        f"/api/v1/tenders/{tid}/award",
        agency,
        json={"lots": [{"lot_id": bids[2].lot_id, "bid_id": bids[2].bid_id}]},
    )
    assert r.status_code == 201, r.text
    award = r.json()[0]
    assert award["price_fen"] == 4_780_000_000

    api.clock.set(api.clock.now() + timedelta(days=7))
    contract = await api.document(agency, tid, b"%PDF contract", kind="contract", filename="contract.pdf")
    r = await api.post(
        f"/api/v1/tenders/{tid}/contracts",
        agency,
        json={
            "award_id": award["id"],
            "object_key": contract["object_key"],
            "filename": "contract.pdf",
            "price_fen": 4_780_000_000,
            "performance_security_fen": 478_000_000,
            "signed_on": api.clock.now().date().isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    r = await api.post(f"/api/v1/tenders/{tid}/complete", agency)
    assert r.status_code == 200 and r.json()["status"] == "completed"

    kinds = [
        n["kind"]
        for n in (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    ]
    assert kinds == ["contract", "result", "candidates", "opening_record", "bid_closing", "tender_notice"]


async def test_fewer_than_three_bids_fails_the_tender_and_it_can_be_rerun(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    for i in range(2):
        await api.bid(await api.organisation("bidder"), tender, price_fen=4_000_000_000 + i)
    assert await api.at(DEADLINE) == [(tender["code"], "unsuccessful")]
    got = (await api.get(f"/api/v1/tenders/{tender['id']}")).json()
    assert got["status"] == "unsuccessful" and got["outcome_reason"].startswith("W-09")
    r = await api.post(f"/api/v1/tenders/{tender['id']}/retender", agency)
    assert r.status_code == 201
    assert r.json()["status"] == "draft" and r.json()["parent_id"] == tender["id"]
    assert (await api.get(f"/api/v1/tenders/{tender['id']}")).json()["status"] == "retender"
    assert shanghai(2026, 3, 23, 10) == DEADLINE


async def test_documents_and_bids_travel_through_s3_presigned_urls(s3_api: Api) -> None:
    api = s3_api
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bids = [
        await api.bid(await api.organisation("bidder"), tender, price_fen=3_000_000_000 + i) for i in range(3)
    ]
    documents = await api.post(f"/api/v1/tenders/{tender['id']}/documents/obtain", bids[0].bidder)
    url = documents.json()[0]["download_url"]
    assert url.startswith("http://127.0.0.1:")
    import hashlib

    import httpx

    async with httpx.AsyncClient() as http:
        body = (await http.get(url)).content
    assert hashlib.sha256(body).hexdigest() == documents.json()[0]["sha256"]
    assert await api.at(DEADLINE) == [(tender["code"], "opening")]


async def test_concurrent_first_tenders_of_a_year_get_distinct_codes(api: Api) -> None:
    import asyncio

    agency = await api.organisation("agency")
    drafts = await asyncio.gather(
        *(api.post("/api/v1/tenders", agency, json=api.tender_body()) for _ in range(5))
    )
    assert [r.status_code for r in drafts] == [201] * 5
    codes = sorted(r.json()["code"] for r in drafts)
    assert codes == [f"GGZY-320100-2026-W{n:06d}" for n in range(1, 6)]
