"""A winner that declines loses the award (W-16); complaints go to the supervisor in time (W-17)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.helpers import Actor, Api, SealedBid


async def _awarded(api: Api) -> tuple[Actor, dict[str, Any], list[SealedBid], dict[str, Any]]:
    """A tender awarded to the lowest of three revealed bids, ranked 3rd < 2nd < 1st by price."""
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bids = [await api.bid(await api.organisation("bidder"), tender, 4_000_000_000 - i) for i in range(3)]
    award = await api.award_lowest(agency, tender, bids)
    return agency, tender, bids, award


async def test_a_winner_that_declines_loses_the_award_and_the_next_candidate_takes_it(api: Api) -> None:
    agency, tender, bids, award = await _awarded(api)
    tid = tender["id"]
    r = await api.post(
        f"/api/v1/tenders/{tid}/awards/{award['id']}/decline",
        agency,
        json={"reason": "中标人拒绝签订合同 (refused to sign)"},
    )
    assert r.status_code == 200
    assert r.json()["status"] == "declined"
    audit = await api.get(
        "/api/v1/audit",
        await api.bootstrap_centre(),
        params={"object_type": "award", "object_id": award["id"]},
    )
    event = audit.json()["items"][0]
    assert event["action"] == "award.decline"
    assert event["detail"]["rule"] == "W-16" and event["detail"]["deposit_forfeited"] is True

    # the declined award can no longer take a contract
    contract = await api.document(agency, tid, b"%PDF contract", kind="contract", filename="contract.pdf")
    r = await api.post(
        f"/api/v1/tenders/{tid}/contracts",
        agency,
        json={
            "award_id": award["id"],
            "object_key": contract["object_key"],
            "filename": "contract.pdf",
            "price_fen": 3_999_999_998,
            "performance_security_fen": 0,
            "signed_on": api.clock.now().date().isoformat(),
        },
    )
    assert r.status_code == 409

    # skipping the next-ranked candidate is refused; taking it succeeds
    skip = await api.post(
        f"/api/v1/tenders/{tid}/award",
        agency,
        json={"lots": [{"lot_id": bids[0].lot_id, "bid_id": bids[0].bid_id}]},
    )
    assert skip.status_code == 422
    assert skip.json()["errors"][0]["field"] == "lots[0].bid_id"
    r = await api.post(
        f"/api/v1/tenders/{tid}/award",
        agency,
        json={"lots": [{"lot_id": bids[0].lot_id, "bid_id": bids[1].bid_id}]},
    )
    assert r.status_code == 201
    assert r.json()[0]["price_fen"] == bids[1].price_fen
    kinds = [
        n["kind"]
        for n in (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    ]
    assert "award_change" in kinds


async def test_declining_twice_is_a_conflict(api: Api) -> None:
    agency, tender, _bids, award = await _awarded(api)
    path = f"/api/v1/tenders/{tender['id']}/awards/{award['id']}/decline"
    assert (await api.post(path, agency, json={"reason": "refused to give the security"})).status_code == 200
    assert (await api.post(path, agency, json={"reason": "refused to give the security"})).status_code == 409


async def test_a_complaint_within_ten_days_is_accepted_with_its_decision_due_date(api: Api) -> None:
    agency, tender, bids, _award = await _awarded(api)
    bidder = bids[0].bidder
    today = api.clock.now().date()
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/complaints",
        bidder,
        json={"subject": "award", "known_on": (today - timedelta(days=3)).isoformat(), "text": "评标不公"},
    )
    assert r.status_code == 201, r.text
    complaint = r.json()
    assert date.fromisoformat(complaint["decision_due"]) > today + timedelta(days=30)  # 30 working days
    supervisor = await api.organisation("supervisor")
    assert (
        await api.post(
            f"/api/v1/complaints/{complaint['id']}/decision",
            agency,
            json={"decision": "dismissed", "text": "x"},
        )
    ).status_code == 403
    r = await api.post(
        f"/api/v1/complaints/{complaint['id']}/decision",
        supervisor,
        json={"decision": "dismissed", "text": "评标程序合法"},
    )
    assert r.status_code == 200 and r.json()["decision"] == "dismissed"
    again = await api.post(
        f"/api/v1/complaints/{complaint['id']}/decision", supervisor, json={"decision": "upheld", "text": "x"}
    )
    assert again.status_code == 409
    own = await api.get(f"/api/v1/tenders/{tender['id']}/complaints", bids[1].bidder)
    assert own.json() == []


async def test_a_complaint_after_ten_days_is_refused_by_w17(api: Api) -> None:
    _agency, tender, bids, _award = await _awarded(api)
    today = api.clock.now().date()
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/complaints",
        bids[0].bidder,
        json={"subject": "award", "known_on": (today - timedelta(days=20)).isoformat(), "text": "评标不公"},
    )
    assert r.status_code == 422
    assert r.json()["rule"] == "W-17"
    assert "last_day" in r.json()


async def test_a_complaint_about_the_candidates_needs_an_objection_first(api: Api) -> None:
    _agency, tender, bids, _award = await _awarded(api)
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/complaints",
        bids[0].bidder,
        json={
            "subject": "candidates",
            "known_on": api.clock.now().date().isoformat(),
            "text": "候选人资格不符",
        },
    )
    assert r.status_code == 422
    assert r.json()["rule"] == "W-17"
    assert "objection" in r.json()["detail"]
