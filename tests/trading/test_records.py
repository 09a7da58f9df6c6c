"""What is on record stays as it was recorded, and nothing about other bidders leaks before the opening."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

from tests.helpers import AFTER_WINDOW, DEADLINE, Api, shanghai


async def _stored_sha256(api: Api, key: str) -> str:
    digest = hashlib.sha256()
    async for chunk in api.runtime.store.iter_chunks(key):
        digest.update(chunk)
    return digest.hexdigest()


async def test_an_upload_grant_reused_after_submission_cannot_change_the_bid_on_record(api: Api) -> None:
    agency = await api.organisation("agency")
    bidder = await api.organisation("bidder")
    tender = await api.published(agency)
    tid = tender["id"]
    await api.post(f"/api/v1/tenders/{tid}/documents/obtain", bidder)
    content = await api.seal(bidder, tender, 1_000_000)
    grant = (
        await api.post(
            f"/api/v1/tenders/{tid}/bids/uploads", bidder, json={"filename": "bid.age", "size": len(content)}
        )
    ).json()
    await api.upload(grant, content)
    r = await api.post(
        f"/api/v1/tenders/{tid}/bids",
        bidder,
        json={"lot_id": tender["lots"][0]["id"], "object_key": grant["object_key"]},
        headers={"Idempotency-Key": "bid-reuse-0001"},
    )
    assert r.status_code == 201
    receipt = r.json()
    await api.run_jobs()  # the upload is discarded once the bid is committed
    assert await api.runtime.store.stat(grant["object_key"]) is None

    await api.upload(grant, b"TAMPERED after submission")  # the grant still lets an upload through ...
    bids = (await api.get(f"/api/v1/tenders/{tid}/bids", bidder)).json()
    assert bids[0]["sha256"] == receipt["envelope_sha256"] == hashlib.sha256(content).hexdigest()
    from sqlalchemy import select

    from trading.models import Bid

    async with api.runtime.sessionmaker() as session:
        kept = await session.scalar(select(Bid.object_key).where(Bid.id == uuid.UUID(receipt["bid_id"])))
    assert kept is not None and not kept.startswith("tenders/")  # ... but not to the file on record
    assert await _stored_sha256(api, kept) == receipt["envelope_sha256"]


async def test_a_receipt_numbers_bids_per_bidder_so_it_does_not_count_the_others(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    first = await api.bid(await api.organisation("bidder"), tender, 1_000)
    second = await api.bid(await api.organisation("bidder"), tender, 2_000)
    assert first.receipt["sequence"] == 1 and second.receipt["sequence"] == 1
    again = await api.bid(second.bidder, tender, 1_500, obtain=False)
    assert again.receipt["sequence"] == 2


async def test_after_a_cancellation_the_agency_still_cannot_see_who_bid(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    await api.bid(await api.organisation("bidder"), tender, 1_000)
    r = await api.post(f"/api/v1/tenders/{tender['id']}/cancel", agency, json={"reason": "项目取消"})
    assert r.status_code == 200
    assert (await api.get(f"/api/v1/tenders/{tender['id']}/bids", agency)).json() == []


async def test_a_clarification_after_the_deadline_is_refused_before_the_chronograph_runs(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    api.clock.set(DEADLINE + timedelta(seconds=30))  # no tick yet: the tender still reads `tendering`
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/clarifications", agency, json={"text": "延期", "affects_bids": True}
    )
    assert r.status_code == 422
    assert r.json()["rule"] == "W-08"
    assert (await api.get(f"/api/v1/tenders/{tender['id']}")).json()["bid_deadline"] == "2026-03-23T02:00:00Z"


async def test_amended_documents_come_only_with_a_clarification_and_its_notice(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    tid = tender["id"]
    content = b"%PDF amended bill of quantities"
    grant = (
        await api.post(f"/api/v1/tenders/{tid}/uploads", agency, json={"filename": "boq-v2.pdf", "size": 40})
    ).json()
    await api.upload(grant, content)
    direct = await api.post(
        f"/api/v1/tenders/{tid}/documents",
        agency,
        json={"kind": "amendment", "filename": "boq-v2.pdf", "object_key": grant["object_key"]},
    )
    assert direct.status_code == 409
    api.clock.set(shanghai(2026, 3, 5, 9))
    r = await api.post(
        f"/api/v1/tenders/{tid}/clarifications",
        agency,
        json={
            "text": "工程量清单第二版",
            "affects_bids": True,
            "amended_documents": {"filename": "boq-v2.pdf", "object_key": grant["object_key"]},
        },
    )
    assert r.status_code == 201, r.text
    notices = (
        await api.get("/api/v1/notices", params={"tender_code": tender["code"], "kind": "correction"})
    ).json()
    amended = notices["items"][0]["body"]["amended_documents"]
    assert amended == {
        "filename": "boq-v2.pdf",
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
    }
    documents = (await api.get(f"/api/v1/tenders/{tid}/documents")).json()
    assert [d["kind"] for d in documents] == ["tender_documents", "amendment"]


async def test_bids_on_a_lot_that_failed_for_too_few_bids_are_returned_not_revoked(api: Api) -> None:
    agency = await api.organisation("agency")
    lots = [
        {"title": "第一标段", "estimated_price_fen": 5_000_000_000, "deposit_fen": 1_000},
        {"title": "第二标段", "estimated_price_fen": 5_000_000_000, "deposit_fen": 1_000},
    ]
    tender = await api.published(agency, lots=lots)
    bidders = [await api.organisation("bidder") for _ in range(3)]
    first_lot = [await api.bid(b, tender, 1_000 + i) for i, b in enumerate(bidders)]
    lonely = await api.bid(bidders[0], tender, 2_000, lot=1, obtain=False)
    await api.at(DEADLINE)
    for bid in first_lot:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    r = await api.post(f"/api/v1/tenders/{tender['id']}/close-opening", agency)
    assert r.status_code == 200, r.text  # the returned bid does not hold the opening up
    mine = (await api.get(f"/api/v1/tenders/{tender['id']}/bids", bidders[0])).json()
    assert {b["id"]: b["status"] for b in mine}[lonely.bid_id] == "returned"


async def test_a_tender_whose_every_candidate_declines_fails_and_can_be_rerun(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bids = [await api.bid(await api.organisation("bidder"), tender, 1_000 + i) for i in range(3)]
    await api.at(DEADLINE)
    for bid in bids:
        await api.reveal(tender["id"], bid)
    await api.at(AFTER_WINDOW)
    # the committee fails the other two bids at qualification, so the report names one candidate
    await api.evaluate(agency, tender["id"], fail={bids[1].bid_id, bids[2].bid_id})
    [notice] = (
        await api.get("/api/v1/notices", params={"tender_code": tender["code"], "kind": "candidates"})
    ).json()["items"]
    assert [c["credit_code"] for c in notice["body"]["lots"][0]["candidates"]] == [bids[0].bidder.credit_code]
    assert (await api.get(f"/api/v1/tenders/{tender['id']}")).json()["status"] == "publicity"
    api.clock.set(api.clock.now() + timedelta(days=5))
    award = (
        await api.post(
            f"/api/v1/tenders/{tender['id']}/award",
            agency,
            json={"lots": [{"lot_id": bids[0].lot_id, "bid_id": bids[0].bid_id}]},
        )
    ).json()[0]
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/awards/{award['id']}/decline",
        agency,
        json={"reason": "中标人书面表示拒绝签订合同"},
    )
    assert r.status_code == 200
    got = (await api.get(f"/api/v1/tenders/{tender['id']}")).json()
    assert got["status"] == "unsuccessful"
    assert got["lots"][0]["status"] == "failed"
    assert (await api.post(f"/api/v1/tenders/{tender['id']}/retender", agency)).status_code == 201


async def test_obtaining_the_documents_twice_at_once_registers_one_holder(api: Api) -> None:
    import asyncio

    agency = await api.organisation("agency")
    bidder = await api.organisation("bidder")
    tender = await api.published(agency)
    path = f"/api/v1/tenders/{tender['id']}/documents/obtain"
    answers = await asyncio.gather(*(api.post(path, bidder) for _ in range(6)))
    assert [r.status_code for r in answers] == [200] * 6
    await api.at(DEADLINE)  # who obtained the documents stays sealed until then (W-20)
    audit = await api.get(
        "/api/v1/audit",
        await api.bootstrap_centre(),
        params={"object_type": "tender", "object_id": tender["id"]},
    )
    assert [e["action"] for e in audit.json()["items"]].count("documents.obtain") == 1


async def test_a_refused_attempt_is_kept_in_the_audit_trail_with_its_rule(api: Api) -> None:
    agency = await api.organisation("agency")
    bidder = await api.organisation("bidder")
    tender = await api.published(agency)
    await api.at(DEADLINE)
    late = await api.post(
        f"/api/v1/tenders/{tender['id']}/bids/uploads", bidder, json={"filename": "late.zip", "size": 10}
    )
    assert late.status_code == 422
    supervisor = await api.organisation("supervisor")
    events = (
        await api.get(
            "/api/v1/audit", supervisor, params={"object_type": "tender", "object_id": tender["id"]}
        )
    ).json()["items"]
    refused = [e for e in events if e["outcome"] == "refused"]
    assert len(refused) == 1
    assert refused[0]["action"] == "request_bid_upload"
    assert refused[0]["actor_organisation_id"] == bidder.organisation_id
    assert refused[0]["detail"]["rule"] == "W-07" and refused[0]["detail"]["status"] == 422


async def test_a_refused_attempt_on_another_organisations_tender_is_kept_in_the_audit_trail(api: Api) -> None:
    owner = await api.organisation("agency")
    other = await api.organisation("agency")
    draft = await api.draft(owner)
    url = f"/api/v1/tenders/{draft['id']}"
    etag = (await api.get(url, owner)).headers["etag"]
    r = await api.client.patch(
        url, json={"title": "他人的招标项目"}, headers={**other.headers, "If-Match": etag}
    )
    assert r.status_code == 404
    supervisor = await api.organisation("supervisor")
    events = (
        await api.get("/api/v1/audit", supervisor, params={"object_type": "tender", "object_id": draft["id"]})
    ).json()["items"]
    [refused] = [e for e in events if e["outcome"] == "refused"]
    assert refused["action"] == "update_tender"
    assert refused["actor_organisation_id"] == other.organisation_id
    assert refused["detail"]["status"] == 404
