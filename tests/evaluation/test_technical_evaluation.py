"""The technical evaluation of a tender of two envelopes (双信封) in the committee's room: the committee
reads the opened technical envelopes and no price; its chair records a verdict with its reason for every
standing bid, once; the agency opens the commercial envelopes only after it, and cannot judge."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from bidding.models import TechnicalEnvelope
from tests.bidding.test_two_envelopes import (
    PRICE,
    T,
    TwoEnvelopes,
    bid_two,
    commercial_rows,
    problem,
    reveal,
    technically_opened,
    two_envelope_tender,
)
from tests.evaluation.technical_fixtures import Seated, judge, seat_committee, verdicts
from tests.helpers import Actor, Api


async def committee(api: Api) -> tuple[Actor, dict[str, Any], list[TwoEnvelopes], Seated]:
    agency, tender, bids = await technically_opened(api)
    return agency, tender, bids, await seat_committee(api, agency, tender)


async def verdicts_on_record(api: Api, tender: dict[str, Any]) -> list[bool | None]:
    async with api.runtime.sessionmaker() as session:
        rows = await session.scalars(
            select(TechnicalEnvelope).where(TechnicalEnvelope.tender_id == uuid.UUID(tender["id"]))
        )
        return [r.passed for r in rows]


async def test_the_committee_reads_the_technical_envelopes_and_no_price(api: Api) -> None:
    agency, _tender, bids, seated = await committee(api)

    r = await api.get(f"{seated.url}/technical", seated.members[3])

    assert r.status_code == 200, r.text
    listed = r.json()["bids"]
    assert sorted(b["bid_id"] for b in listed) == sorted(b.bid_id for b in bids)
    assert all(b["files"] and b["passed"] is None for b in listed)
    assert all(str(bid.price_fen) not in r.text for bid in bids)
    assert "price" not in r.text
    assert (await api.get(f"{seated.url}/technical", agency)).status_code == 404
    assert (await api.get(f"{seated.url}/technical", bids[0].bidder)).status_code in (403, 404)
    room = (await api.get(seated.url, seated.members[3])).json()
    assert all(b["price_fen"] is None for lot in room["lots"] for b in lot["bids"])


async def test_the_chairs_result_rejects_the_failed_bids_and_the_agency_then_opens_the_others(
    api: Api,
) -> None:
    agency, tender, bids, seated = await committee(api)
    passed, failed = [b.bid_id for b in bids[:3]], [bids[3].bid_id]

    r = await judge(api, seated, passed, failed)

    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["not_passed"]) == ("technical_evaluation", failed)
    listed = {b["id"]: b for b in (await api.get(f"{T}/{tender['id']}/bids", agency)).json()}
    assert listed[failed[0]]["rejection"]["rule"] == "W-19"
    shown = {b["bid_id"]: b for b in (await api.get(f"{seated.url}/technical", seated.chair)).json()["bids"]}
    assert (shown[failed[0]]["passed"], shown[failed[0]]["reason"]) == (False, "技术方案不满足实质性要求")
    opened = await api.post(f"{T}/{tender['id']}/commercial-opening", agency)
    assert opened.status_code == 200, opened.text
    assert (opened.json()["status"], opened.json()["passed"]) == ("commercial_opening", sorted(passed))
    assert problem(await reveal(api, tender, bids[3], "commercial"), 409)["errors"][0]["field"] == "kind"
    assert (await reveal(api, tender, bids[0], "commercial")).status_code == 202


async def test_the_agency_cannot_record_a_technical_result(api: Api) -> None:
    agency, tender, bids, seated = await committee(api)
    body = verdicts([b.bid_id for b in bids], [])

    assert (await api.post(f"{seated.url}/technical-result", agency, json=body)).status_code == 404
    early = problem(await api.post(f"{T}/{tender['id']}/commercial-opening", agency), 409)
    assert early["errors"][0]["field"] == "technical_result"
    assert await verdicts_on_record(api, tender) == [None] * 4
    assert all(row.status == "sealed" for row in (await commercial_rows(api, tender)).values())
    # nor can the committee run the opening: that is the agency's
    assert (await api.post(f"{T}/{tender['id']}/commercial-opening", seated.chair)).status_code == 403


async def test_only_the_chair_records_the_result(api: Api) -> None:
    _agency, tender, bids, seated = await committee(api)
    body = verdicts([b.bid_id for b in bids], [])

    assert (await api.post(f"{seated.url}/technical-result", seated.members[2], json=body)).status_code == 403
    centre = await api.bootstrap_centre()
    assert problem(await api.post(f"{seated.url}/technical-result", centre, json=body), 403)["rule"] == "S-04"
    assert await verdicts_on_record(api, tender) == [None] * 4


async def test_an_expert_of_another_tender_cannot_record_or_read_the_result(api: Api) -> None:
    other_agency, other = await two_envelope_tender(api)
    theirs = [await bid_two(api, await api.organisation("bidder"), other, PRICE - i) for i in range(3)]
    agency, tender, bids = await technically_opened(api)  # both tenders' bids close at the same deadline
    for bid in theirs:
        assert (await reveal(api, other, bid, "technical")).status_code == 202
    assert (await api.post(f"{T}/{other['id']}/close-opening", other_agency)).status_code == 200
    seated = await seat_committee(api, agency, tender)
    elsewhere = await seat_committee(api, other_agency, other, [*seated.members.values(), *seated.spare])
    outsider = next(a for a in elsewhere.members.values() if a not in seated.members.values())
    body = verdicts([b.bid_id for b in bids], [])

    assert (await api.post(f"{seated.url}/technical-result", outsider, json=body)).status_code == 404
    assert (await api.get(f"{seated.url}/technical", outsider)).status_code == 404
    # in its own room, this tender's bids are not its tender's
    own = await api.post(f"{elsewhere.url}/technical-result", elsewhere.chair, json=body)
    assert problem(own, 422)["errors"][0]["field"] == "verdicts[0].bid_id"
    assert await verdicts_on_record(api, tender) == [None] * 4


async def test_a_result_naming_a_bid_not_in_the_tender_or_leaving_one_out_is_refused(api: Api) -> None:
    _agency, tender, bids, seated = await committee(api)
    stranger = str(uuid.uuid4())

    named = await judge(api, seated, [b.bid_id for b in bids[1:]] + [stranger], [bids[0].bid_id])
    assert problem(named, 422)["errors"][0]["field"] == "verdicts[3].bid_id"
    missing = await judge(api, seated, [b.bid_id for b in bids[1:]], [])
    assert problem(missing, 422)["errors"][0]["field"] == "verdicts"
    twice = await judge(api, seated, [b.bid_id for b in bids], [bids[0].bid_id])
    assert problem(twice, 422)["errors"][0]["field"] == "verdicts[4].bid_id"
    assert await verdicts_on_record(api, tender) == [None] * 4


async def test_a_second_result_is_refused_and_the_first_stands(api: Api) -> None:
    _agency, tender, bids, seated = await committee(api)
    assert (await judge(api, seated, [b.bid_id for b in bids[:3]], [bids[3].bid_id])).status_code == 200

    again = await judge(api, seated, [b.bid_id for b in bids], [])

    assert problem(again, 409)["errors"][0]["field"] == "verdicts"
    assert sorted(await verdicts_on_record(api, tender), key=str) == [False, True, True, True]
