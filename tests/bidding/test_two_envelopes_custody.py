"""Custody on a tender of two envelopes (双信封): each envelope's header holds the custodians' shares of its
own file key, so custodians open a technical envelope its bidder did not open at the technical opening, and
a commercial one only at the commercial opening; a release names its envelope's kind and counts for that
envelope alone."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from typing import Any

from httpx import Response
from sqlalchemy import func, select

from bidding import custody, envelope, opening_record
from bidding.models import Envelope, ShareRelease, TechnicalEnvelope
from tests.bidding.test_two_envelopes import (
    PRICE,
    T,
    TwoEnvelopes,
    bid_two,
    commercial_rows,
    problem,
    record,
    reveal,
    two_envelope_tender,
)
from tests.evaluation.technical_fixtures import judged_and_opened
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api

COMMERCIAL_WINDOW = timedelta(minutes=31)


def release(api: Api, custodian: Actor, view: dict[str, Any], header_b64: str) -> dict[str, Any]:
    """The custodian's release of its stanza of the envelope whose header is `header_b64`, made locally."""
    header = envelope.parse_header(base64.b64decode(header_b64))
    identity = api.keys[custodian.organisation_id].encryption.private_bytes_raw()
    return custody.make_release(identity, header, context=view["tender_code"], x=view["position"]).to_json()


async def view_of(api: Api, tender: dict[str, Any], custodian: Actor) -> dict[str, Any]:
    r = await api.get(f"{T}/{tender['id']}/custody", custodian)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def post(
    api: Api, tender: dict[str, Any], custodian: Actor, bid_id: str, kind: str, body: dict[str, Any]
) -> Response:
    return await api.post(
        f"{T}/{tender['id']}/custody/releases",
        custodian,
        json={"bid_id": bid_id, "kind": kind, "release": body},
    )


async def headers(api: Api, bid_id: str) -> tuple[str, str]:
    """The bid's technical and commercial envelope headers (base64), as the platform keeps them."""
    async with api.runtime.sessionmaker() as session:
        tech = await session.scalar(
            select(TechnicalEnvelope).where(TechnicalEnvelope.bid_id == uuid.UUID(bid_id))
        )
        com = await session.scalar(select(Envelope).where(Envelope.bid_id == uuid.UUID(bid_id)))
        assert tech is not None and com is not None
        return tech.header, com.header


async def releases_on_record(api: Api) -> list[tuple[str, str, str]]:
    async with api.runtime.sessionmaker() as session:
        rows = await session.scalars(select(ShareRelease))
        return sorted((str(r.bid_id), r.kind, r.status) for r in rows)


async def technical_custody(api: Api) -> tuple[Actor, dict[str, Any], list[TwoEnvelopes], TwoEnvelopes]:
    """Four bids; three bidders open their technical envelopes, the fourth does not: at the end of the
    window its technical envelope goes to the custodians."""
    agency, tender = await two_envelope_tender(api)
    bids = [await bid_two(api, await api.organisation("bidder"), tender, PRICE - i) for i in range(4)]
    await api.at(DEADLINE)
    for bid in bids[:3]:
        assert (await reveal(api, tender, bid, "technical")).status_code == 202
    assert await api.at(AFTER_WINDOW) == [(tender["code"], "custody")]
    return agency, tender, bids[:3], bids[3]


async def release_all(api: Api, tender: dict[str, Any], bid: TwoEnvelopes, kind: str) -> list[dict[str, Any]]:
    """Every custodian releases its stanza of the bid's envelope of `kind`; the releases made."""
    made = []
    for custodian in await api.custodians():
        view = await view_of(api, tender, custodian)
        [item] = [e for e in view["envelopes"] if e["bid_id"] == bid.bid_id]
        assert item["kind"] == kind
        body = release(api, custodian, view, item["header"])
        r = await post(api, tender, custodian, bid.bid_id, kind, body)
        assert r.status_code == 201, r.text
        made.append(body)
    await api.run_jobs()
    return made


async def test_custodians_open_a_technical_envelope_its_bidder_did_not_open(api: Api) -> None:
    agency, tender, _revealed, absent = await technical_custody(api)
    view = await view_of(api, tender, (await api.custodians())[1])
    assert [(e["bid_id"], e["kind"]) for e in view["envelopes"]] == [(absent.bid_id, "technical")]

    await release_all(api, tender, absent, "technical")

    opened = [e for e in await record(api, agency, tender) if e["kind"] == "bid_opened"]
    assert [e["opened_by"] for e in opened if e["bid"] == absent.bid_id] == ["custodians"]
    assert all("declared_price_fen" not in e for e in opened)
    assert all(row.status == "sealed" for row in (await commercial_rows(api, tender)).values())
    assert await releases_on_record(api) == [(absent.bid_id, "technical", "valid")] * 3
    r = await api.post(f"{T}/{tender['id']}/close-opening", agency)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "technical_evaluation"


async def test_a_custodian_releasing_a_commercial_share_at_the_technical_opening_is_refused(api: Api) -> None:
    _agency, tender, revealed, absent = await technical_custody(api)
    custodian = (await api.custodians())[1]
    view = await view_of(api, tender, custodian)
    for bid in (absent, revealed[0]):
        _technical, commercial = await headers(api, bid.bid_id)
        body = release(api, custodian, view, commercial)

        found = problem(await post(api, tender, custodian, bid.bid_id, "commercial", body), 409)

        assert found["errors"][0]["field"] == "kind"
    assert await releases_on_record(api) == []
    assert all(
        row.status == "sealed" and row.file_key is None
        for row in (await commercial_rows(api, tender)).values()
    )


async def test_a_technical_share_used_for_the_commercial_envelope_does_not_verify(api: Api) -> None:
    agency, tender, revealed, absent = await technical_custody(api)
    technical_releases = await release_all(api, tender, absent, "technical")
    assert (await api.post(f"{T}/{tender['id']}/close-opening", agency)).status_code == 200
    r = await judged_and_opened(api, agency, tender, [b.bid_id for b in (*revealed, absent)], [])
    assert r.status_code == 200, r.text
    for bid in revealed:
        assert (await reveal(api, tender, bid, "commercial")).status_code == 202
    assert await api.at(api.clock.now() + COMMERCIAL_WINDOW) == [(tender["code"], "custody")]
    custodian = (await api.custodians())[1]
    view = await view_of(api, tender, custodian)
    assert [(e["bid_id"], e["kind"]) for e in view["envelopes"]] == [(absent.bid_id, "commercial")]

    # the stanza of the technical envelope, released again as the commercial one's: bound to the other header
    found = problem(
        await post(api, tender, custodian, absent.bid_id, "commercial", technical_releases[1]), 422
    )
    assert found["release_error"] == "release.context"
    # and a technical release is no longer taken: the technical opening is over
    found = problem(
        await post(api, tender, custodian, absent.bid_id, "technical", technical_releases[1]), 409
    )
    assert found["errors"][0]["field"] == "kind"

    await release_all(api, tender, absent, "commercial")  # the honest releases replace the invalid one

    line = [
        e
        for e in await record(api, agency, tender)
        if e["kind"] == "bid_opened" and e["bid"] == absent.bid_id and "envelope" not in e
    ]
    assert [(e["opened_by"], e["declared_price_fen"]) for e in line] == [("custodians", absent.price_fen)]
    assert await releases_on_record(api) == sorted(
        [(absent.bid_id, "technical", "valid")] * 3 + [(absent.bid_id, "commercial", "valid")] * 3
    )
    # the signed opening record checks each envelope's custody opening offline, the technical one's too
    assert (await api.post(f"{T}/{tender['id']}/close-opening", agency)).status_code == 200
    signed = (await api.get(f"{T}/{tender['id']}/opening/record/signed")).json()
    key = base64.b64decode((await api.get("/api/v1/transparency/key")).json()["public_key"])
    checks = opening_record.verify(signed, key)
    assert [c.name for c in checks if not c.ok] == []
    technical = next(t for t in signed["technical"] if t["bid"] == absent.bid_id)
    assert (technical["opened_by"], len(technical["custody"]["releases"])) == ("custodians", 3)
    assert sum(c.name.startswith("release technical ") for c in checks) == 3
    assert any(c.name.startswith("cause technical ") and c.detail.startswith("opened") for c in checks)


async def test_a_technical_release_on_a_tender_of_one_envelope_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bid = await api.bid(await api.organisation("bidder"), tender, PRICE)
    await api.at(DEADLINE)
    custodian = (await api.custodians())[1]
    found = problem(await post(api, tender, custodian, bid.bid_id, "technical", {"v": 1}), 422)
    assert found["errors"][0]["field"] == "kind"
    async with api.runtime.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ShareRelease)) == 0


async def test_the_custodians_client_releases_a_technical_envelope_checked_against_the_signed_statement(
    api: Api,
) -> None:
    from tests.bidding.test_client_cli import client_for

    agency, tender, _revealed, absent = await technical_custody(api)
    outcomes = []
    for custodian in await api.custodians():
        async with client_for(api, custodian.token) as client:
            [result] = await client.release(tender["id"], api.keys[custodian.organisation_id])
        assert (result.bid_id, result.status, result.error) == (absent.bid_id, "released", None)
        outcomes.append(result.outcome)
    await api.run_jobs()
    assert outcomes == [None, None, "opened"]
    opened = [e for e in await record(api, agency, tender) if e["kind"] == "bid_opened"]
    assert [e["opened_by"] for e in opened if e["bid"] == absent.bid_id] == ["custodians"]
