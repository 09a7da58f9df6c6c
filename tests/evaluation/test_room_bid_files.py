"""The committee reads the opened bid files themselves in its room: a technical file after the technical
opening, streamed with its SHA-256 and media type; never a commercial one before the commercial opening,
never to the agency or a bidder, never from a withdrawn or rejected bid, never before the declaration."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import update

from evaluation.models import Member
from tests.bidding.test_two_envelopes import (
    PRICE,
    T,
    TwoEnvelopes,
    bid_two,
    problem,
    reveal,
    technically_opened,
    two_envelope_tender,
)
from tests.evaluation.technical_fixtures import Seated, judge, seat_committee
from tests.helpers import Actor, Api
from trading.models import Bid


async def committee(api: Api) -> tuple[Actor, dict[str, Any], list[TwoEnvelopes], Seated]:
    agency, tender, bids = await technically_opened(api)
    return agency, tender, bids, await seat_committee(api, agency, tender)


def file_url(seated: Seated, bid: TwoEnvelopes, kind: str = "technical", number: int = 1) -> str:
    return f"{seated.url}/bids/{bid.bid_id}/file?kind={kind}&number={number}"


async def test_a_declared_member_downloads_a_technical_file_with_its_hash(api: Api) -> None:
    _agency, _tender, bids, seated = await committee(api)
    listed = {b["bid_id"]: b for b in (await api.get(f"{seated.url}/technical", seated.chair)).json()["bids"]}

    r = await api.get(file_url(seated, bids[1]), seated.members[4])

    assert r.status_code == 200, r.text
    digest = hashlib.sha256(r.content).hexdigest()
    assert digest == r.headers["x-content-sha256"] == listed[bids[1].bid_id]["files"][0]["sha256"]
    assert r.headers["content-type"].startswith("application/pdf")
    assert r.content.startswith(b"%PDF-1.7 technical")
    assert "technical.pdf" in r.headers["content-disposition"]
    centre = await api.bootstrap_centre()
    watched = await api.get(file_url(seated, bids[1]), centre)
    assert (watched.status_code, watched.content) == (200, r.content)


async def test_the_agency_and_the_bidders_cannot_download(api: Api) -> None:
    agency, _tender, bids, seated = await committee(api)

    assert (await api.get(file_url(seated, bids[0]), agency)).status_code == 404
    assert (await api.get(file_url(seated, bids[0]), bids[0].bidder)).status_code in (403, 404)
    assert (await api.get(file_url(seated, bids[1]), bids[0].bidder)).status_code in (403, 404)


async def test_a_member_who_has_not_declared_cannot_download(api: Api) -> None:
    _agency, _tender, bids, seated = await committee(api)
    async with api.runtime.sessionmaker() as session, session.begin():
        await session.execute(
            update(Member)
            .where(Member.room_id == uuid.UUID(seated.room_id), Member.seat == 2)
            .values(declared_at=None)
        )

    assert problem(await api.get(file_url(seated, bids[0]), seated.members[2]), 403)["rule"] == "G-08"


async def test_no_commercial_file_before_the_commercial_opening(api: Api) -> None:
    _agency, _tender, bids, seated = await committee(api)

    refused = problem(await api.get(file_url(seated, bids[0], "commercial"), seated.chair), 409)

    assert refused["errors"][0]["field"] == "kind"
    assert "price" not in refused["detail"] and str(bids[0].price_fen) not in refused["detail"]
    unknown = await api.get(file_url(seated, bids[0], "qualification"), seated.chair)
    assert unknown.status_code == 400 and unknown.headers["content-type"].startswith(
        "application/problem+json"
    )


async def test_no_file_of_a_rejected_or_withdrawn_bid_or_past_the_last_one(api: Api) -> None:
    _agency, _tender, bids, seated = await committee(api)
    assert (await judge(api, seated, [b.bid_id for b in bids[:3]], [bids[3].bid_id])).status_code == 200
    async with api.runtime.sessionmaker() as session, session.begin():
        await session.execute(
            update(Bid).where(Bid.id == uuid.UUID(bids[2].bid_id)).values(status="withdrawn")
        )

    assert (await api.get(file_url(seated, bids[3]), seated.chair)).status_code == 404
    assert (await api.get(file_url(seated, bids[2]), seated.chair)).status_code == 404
    assert (
        problem(await api.get(file_url(seated, bids[0], number=2), seated.chair), 404)["errors"][0]["field"]
        == "number"
    )
    assert (await api.get(f"{seated.url}/bids/{uuid.uuid4()}/file?number=1", seated.chair)).status_code == 404


async def test_a_bid_of_another_tender_is_not_served_through_this_room(api: Api) -> None:
    other_agency, other = await two_envelope_tender(api)
    theirs = [await bid_two(api, await api.organisation("bidder"), other, PRICE - i) for i in range(3)]
    agency, tender, bids = await technically_opened(api)  # both tenders' bids close at the same deadline
    for bid in theirs:
        assert (await reveal(api, other, bid, "technical")).status_code == 202
    assert (await api.post(f"{T}/{other['id']}/close-opening", other_agency)).status_code == 200
    seated = await seat_committee(api, agency, tender)

    assert (await api.get(file_url(seated, theirs[0]), seated.chair)).status_code == 404
    assert (await api.get(file_url(seated, bids[0]), seated.chair)).status_code == 200


async def test_after_the_commercial_opening_a_passed_bids_commercial_file_is_served(api: Api) -> None:
    agency, tender, bids, seated = await committee(api)
    assert (await judge(api, seated, [b.bid_id for b in bids[:3]], [bids[3].bid_id])).status_code == 200
    assert (await api.post(f"{T}/{tender['id']}/commercial-opening", agency)).status_code == 200
    unopened = problem(await api.get(file_url(seated, bids[0], "commercial"), seated.chair), 409)
    assert unopened["errors"][0]["field"] == "kind"
    assert (await reveal(api, tender, bids[0], "commercial")).status_code == 202

    r = await api.get(file_url(seated, bids[0], "commercial"), seated.chair)

    assert r.status_code == 200, r.text
    assert hashlib.sha256(r.content).hexdigest() == r.headers["x-content-sha256"]
    assert r.content.startswith(b"%PDF-1.7 commercial")
    assert (await api.get(file_url(seated, bids[3], "commercial"), seated.chair)).status_code == 404
