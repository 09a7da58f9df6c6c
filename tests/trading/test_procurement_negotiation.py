"""Competitive negotiation and consultation (竞争性谈判/磋商): rounds with each supplier separately, amendments
to every remaining supplier, exclusions, then sealed final quotes opened together that become the prices
the panel evaluates; a supplier never sees another's minutes or price before all are opened."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

import pytest

from storage.commitments import final_quote_commitment
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api, SealedBid
from tests.trading.test_procurement_methods import quotation
from tests.trading.test_procurement_open import YUAN

BUDGET_FEN = 800_000 * YUAN


async def _negotiating(api: Api, suppliers: int = 4) -> tuple[Actor, dict[str, Any], list[SealedBid]]:
    agency = await api.organisation("agency")
    invited = [await api.organisation("bidder") for _ in range(suppliers)]
    tender = await api.published(
        agency, **quotation(invited, method="negotiation", title="档案数字化服务竞争性谈判")
    )
    bids = [await api.bid(s, tender, BUDGET_FEN - i * 1000 * YUAN) for i, s in enumerate(invited)]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    read = (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()
    assert read["status"] == "negotiation", read["status"]
    return agency, tender, bids


def _path(tender: dict[str, Any], rest: str) -> str:
    return f"/api/v1/tenders/{tender['id']}/negotiation/{rest}"


async def _seal(api: Api, tender: dict[str, Any], bid: SealedBid, price: int) -> str:
    nonce = secrets.token_hex(32)
    commitment = final_quote_commitment(
        uuid.UUID(tender["id"]), uuid.UUID(bid.lot_id), uuid.UUID(bid.bidder.organisation_id), price, nonce
    )
    r = await api.post(
        _path(tender, "final-quotes"), bid.bidder, json={"lot_id": bid.lot_id, "commitment": commitment}
    )
    assert r.status_code == 201, r.text
    return nonce


async def test_a_negotiation_runs_rounds_and_final_quotes_to_the_lowest(api: Api) -> None:
    agency, tender, bids = await _negotiating(api)
    first, second, third, fourth = bids
    # a round with each supplier separately; the minutes are the agency's and that supplier's only
    for n, bid in enumerate(bids):
        r = await api.post(
            _path(tender, "rounds"),
            agency,
            json={
                "organisation_id": bid.bidder.organisation_id,
                "round": 1,
                "minutes": f"第一轮谈判纪要 {n}",
            },
        )
        assert r.status_code == 201, r.text
    assert (await api.post(_path(tender, "rounds"), first.bidder, json={})).status_code == 403
    seen = (await api.get(_path(tender, "notes"), second.bidder)).json()
    assert [n["organisation_id"] for n in seen] == [second.bidder.organisation_id]
    amendment = await api.post(_path(tender, "amendments"), agency, json={"text": "交付期调整为60日"})
    assert amendment.status_code == 201
    excluded = await api.post(
        _path(tender, "exclusions"),
        agency,
        json={"organisation_id": fourth.bidder.organisation_id, "reason": "未能满足修订后的交付期"},
    )
    assert excluded.status_code == 201
    seen = (await api.get(_path(tender, "notes"), second.bidder)).json()
    assert {n["kind"] for n in seen} == {"round", "amendment"}
    # the final call: sealed final quotes within the hour, opened in the 30 minutes after
    deadline = api.clock.now() + timedelta(hours=1)
    r = await api.post(_path(tender, "final-call"), agency, json={"deadline": deadline.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "final_quotes"
    quoting = [first, second, third]
    prices = [760_000 * YUAN, 748_000 * YUAN + 5, 790_000 * YUAN]
    nonces = [await _seal(api, tender, bid, price) for bid, price in zip(quoting, prices, strict=True)]
    # the excluded supplier cannot seal; nobody sees a price before the deadline
    late_comer = await api.post(
        _path(tender, "final-quotes"), fourth.bidder, json={"lot_id": fourth.lot_id, "commitment": "0" * 64}
    )
    assert late_comer.status_code == 422 and late_comer.json()["errors"][0]["field"] == "lot_id"
    listed = (await api.get(_path(tender, "final-quotes"), agency)).json()
    assert len(listed) == 3 and all(q["price_fen"] is None for q in listed)
    # opening before the deadline is refused; after it, a wrong nonce does not open the seal
    body = {"lot_id": first.lot_id, "price_fen": prices[0], "nonce": nonces[0]}
    early = await api.post(_path(tender, "final-quotes/open"), first.bidder, json=body)
    assert early.status_code == 422 and early.json()["rule"] == "G-13"
    await api.at(deadline)
    wrong = await api.post(_path(tender, "final-quotes/open"), first.bidder, json={**body, "price_fen": 1})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "nonce"
    for bid, price, nonce in zip(quoting, prices, nonces, strict=True):
        opened = await api.post(
            _path(tender, "final-quotes/open"),
            bid.bidder,
            json={"lot_id": bid.lot_id, "price_fen": price, "nonce": nonce},
        )
        assert opened.status_code == 200, opened.text
    # opened, but not yet together: the agency still sees no price
    assert all(q["price_fen"] is None for q in (await api.get(_path(tender, "final-quotes"), agency)).json())
    await api.at(deadline + timedelta(minutes=30))
    read = (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()
    assert read["status"] == "evaluation"
    notices = (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    [final] = [n for n in notices if n["kind"] == "final_quotes"]
    assert sorted(q["price_fen"] for q in final["body"]["final_quotes"]) == sorted(prices)
    # the panel of three evaluates the final quotes: the lowest wins
    await api.evaluate(agency, tender["id"], experts=3)
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/award",
        agency,
        json={"lots": [{"lot_id": second.lot_id, "bid_id": second.bid_id}]},
    )
    assert r.status_code == 201, r.text
    assert r.json()[0]["price_fen"] == prices[1]


async def test_too_few_final_quotes_fail_the_negotiation_under_g13(api: Api) -> None:
    agency, tender, bids = await _negotiating(api, suppliers=3)
    deadline = api.clock.now() + timedelta(hours=1)
    r = await api.post(_path(tender, "final-call"), agency, json={"deadline": deadline.isoformat()})
    assert r.status_code == 200, r.text
    # two seal and open; the third seals nothing
    nonces = [await _seal(api, tender, bid, BUDGET_FEN - 1) for bid in bids[:2]]
    await api.at(deadline)
    for bid, nonce in zip(bids[:2], nonces, strict=True):
        opened = await api.post(
            _path(tender, "final-quotes/open"),
            bid.bidder,
            json={"lot_id": bid.lot_id, "price_fen": BUDGET_FEN - 1, "nonce": nonce},
        )
        assert opened.status_code == 200, opened.text
    await api.at(deadline + timedelta(minutes=31))
    read = (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()
    assert read["status"] == "unsuccessful" and read["outcome_reason"].startswith("G-13")


async def test_the_final_call_needs_three_remaining_suppliers(api: Api) -> None:
    agency, tender, bids = await _negotiating(api, suppliers=3)
    r = await api.post(
        _path(tender, "exclusions"),
        agency,
        json={"organisation_id": bids[0].bidder.organisation_id, "reason": "资格不符"},
    )
    assert r.status_code == 201
    deadline = api.clock.now() + timedelta(hours=1)
    r = await api.post(_path(tender, "final-call"), agency, json={"deadline": deadline.isoformat()})
    assert r.status_code == 422 and r.json()["rule"] == "G-13"


async def test_a_consultation_takes_ten_days_and_prices_goods_at_thirty_to_sixty_points(api: Api) -> None:
    from evaluation.scoring import GROUP, PRICE, SUBJECTIVE, Criterion, Scheme, default_scheme, scheme_to_json

    agency = await api.organisation("agency")
    invited = [await api.organisation("bidder") for _ in range(3)]
    body = quotation(
        invited, method="consultation", evaluation_method="comprehensive", title="智慧校园平台竞争性磋商"
    )
    # documents from Mon 2026-03-02: ten days later is Thu 03-12; Wed 03-11 is too early
    draft = await api.draft(agency, **{**body, "bid_deadline": "2026-03-11T10:00:00+08:00"})
    await api.document(agency, draft["id"], b"%PDF-1.7 consultation documents")
    early = await api.post(f"/api/v1/tenders/{draft['id']}/publish", agency)
    assert early.status_code == 422 and early.json()["rule"] == "G-13"
    assert early.json()["earliest_deadline_day"] == "2026-03-12"
    goods = default_scheme("comprehensive", "goods")
    heavy = Scheme(
        "comprehensive",
        (
            Criterion("B", "商务", GROUP, 3000, (Criterion("B1", "业绩", SUBJECTIVE, 3000),)),
            Criterion("P", "价格", PRICE, 7000),
        ),
        goods.qualification,
        "goods",
    )
    path = f"/api/v1/evaluation/tenders/{draft['id']}/scheme"
    refused = await api.put(path, agency, json=scheme_to_json(heavy))
    assert refused.status_code == 422, refused.text
    assert refused.json()["rule"] == "G-05" and refused.json()["errors"][0]["field"] == "criteria"
    assert (await api.put(path, agency, json=scheme_to_json(goods))).status_code == 200


async def test_the_bid_client_seals_and_opens_a_final_quote(
    api: Api, tmp_path: Any, monkeypatch: Any
) -> None:
    """`ggzy bid final-quote seal|open`: the price and nonce stay in a 0600 file, the server gets only the
    commitment, and the file opens the seal after the deadline."""
    from click.testing import CliRunner

    import bidding.cli
    from bidding.client import GgzyClient
    from ggzy import cli

    agency, tender, bids = await _negotiating(api, suppliers=3)
    deadline = api.clock.now() + timedelta(hours=1)
    assert (
        await api.post(_path(tender, "final-call"), agency, json={"deadline": deadline.isoformat()})
    ).status_code == 200
    actions: list[Any] = []
    monkeypatch.setattr(bidding.cli, "_run", lambda _url, _user, action: actions.append(action))
    bidder = bids[0].bidder
    client = GgzyClient("http://testserver", bidder.token, transport=api.client._transport)
    sealed = tmp_path / "quote.json"
    args = [
        "--tender",
        tender["id"],
        "--lot-id",
        bids[0].lot_id,
        "--price-fen",
        "123456",
        "--out",
        str(sealed),
    ]
    result = CliRunner().invoke(cli, ["bid", "final-quote", "seal", *args, "--url", "http://testserver"])
    assert result.exit_code == 0, result.output
    quote = await actions.pop()(client)
    assert len(quote["commitment"]) == 64 and quote["price_fen"] is None
    assert oct(sealed.stat().st_mode & 0o777) == "0o600"
    assert "123456" not in str(await api.get(_path(tender, "final-quotes"), agency))
    await api.at(deadline)
    result = CliRunner().invoke(
        cli, ["bid", "final-quote", "open", str(sealed), "--url", "http://testserver"]
    )
    assert result.exit_code == 0, result.output
    opened = await actions.pop()(client)
    assert opened["price_fen"] == 123456
    await client.close()


async def test_steps_out_of_order_for_the_method_are_refused(api: Api) -> None:
    works_agency = await api.organisation("agency")
    works = await api.published(works_agency)
    agency, tender, bids = await _negotiating(api, suppliers=3)
    # no award, no report, no final quote during negotiation
    award = {"lots": [{"lot_id": bids[0].lot_id, "bid_id": bids[0].bid_id}]}
    assert (await api.post(f"/api/v1/tenders/{tender['id']}/award", agency, json=award)).status_code == 409
    sealed = await api.post(
        _path(tender, "final-quotes"), bids[0].bidder, json={"lot_id": bids[0].lot_id, "commitment": "0" * 64}
    )
    assert sealed.status_code == 409
    # a supplier cannot record rounds or call for final quotes; an open procurement has no negotiation
    call = {"deadline": (api.clock.now() + timedelta(hours=1)).isoformat()}
    assert (await api.post(_path(tender, "final-call"), bids[0].bidder, json=call)).status_code == 403
    refused = await api.post(f"/api/v1/tenders/{works['id']}/negotiation/final-call", works_agency, json=call)
    assert refused.status_code == 409


async def test_a_commitment_copied_from_another_supplier_opens_to_nothing(api: Api) -> None:
    """A supplier who learns a rival's sealed commitment (not its price) and seals the same bytes cannot
    open it even with the rival's price and nonce: the commitment binds the supplier."""
    agency, tender, bids = await _negotiating(api, suppliers=3)
    rival, copier = bids[0], bids[1]
    deadline = api.clock.now() + timedelta(hours=1)
    assert (
        await api.post(_path(tender, "final-call"), agency, json={"deadline": deadline.isoformat()})
    ).status_code == 200
    price = 700_000 * YUAN
    nonce = await _seal(api, tender, rival, price)
    commitment = final_quote_commitment(
        uuid.UUID(tender["id"]),
        uuid.UUID(rival.lot_id),
        uuid.UUID(rival.bidder.organisation_id),
        price,
        nonce,
    )
    copied = await api.post(
        _path(tender, "final-quotes"), copier.bidder, json={"lot_id": copier.lot_id, "commitment": commitment}
    )
    assert copied.status_code == 201
    await api.at(deadline)
    body = {"lot_id": copier.lot_id, "price_fen": price, "nonce": nonce}
    opened = await api.post(_path(tender, "final-quotes/open"), copier.bidder, json=body)
    assert opened.status_code == 422 and opened.json()["errors"][0]["field"] == "nonce"


@pytest.mark.parametrize("cap_field", ["estimated_price_fen", "ceiling_price_fen"])
async def test_a_final_quote_above_the_ceiling_or_the_budget_is_rejected_when_opened(
    api: Api, cap_field: str
) -> None:
    ceiling = BUDGET_FEN - 10_000 * YUAN
    cap = ceiling if cap_field == "ceiling_price_fen" else BUDGET_FEN
    lot: dict[str, Any] = {"title": "档案数字化", "estimated_price_fen": BUDGET_FEN, "deposit_fen": 0}
    if cap_field == "ceiling_price_fen":
        lot["ceiling_price_fen"] = ceiling
    agency = await api.organisation("agency")
    invited = [await api.organisation("bidder") for _ in range(4)]
    tender = await api.published(
        agency, **quotation(invited, method="negotiation", title="档案数字化竞争性谈判", lots=[lot])
    )
    bids = [await api.bid(s, tender, ceiling - (i + 1) * 1000 * YUAN) for i, s in enumerate(invited)]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    deadline = api.clock.now() + timedelta(hours=1)
    r = await api.post(_path(tender, "final-call"), agency, json={"deadline": deadline.isoformat()})
    assert r.status_code == 200, r.text
    # the lowest first response tries to raise its final quote a fen above the cap; one quotes the cap
    above, at, low1, low2 = bids[3], bids[0], bids[1], bids[2]
    prices = {above.bid_id: cap + 1, at.bid_id: cap, low1.bid_id: cap - 5, low2.bid_id: cap - 7}
    nonces = {b.bid_id: await _seal(api, tender, b, prices[b.bid_id]) for b in bids}
    await api.at(deadline)
    for b in bids:
        body = {"lot_id": b.lot_id, "price_fen": prices[b.bid_id], "nonce": nonces[b.bid_id]}
        opened = await api.post(_path(tender, "final-quotes/open"), b.bidder, json=body)
        assert opened.status_code == 200, opened.text
    await api.at(deadline + timedelta(minutes=30))
    assert (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()["status"] == "evaluation"
    notices = (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    [final] = [n for n in notices if n["kind"] == "final_quotes"]
    flagged = {q["price_fen"]: q.get("rejected") for q in final["body"]["final_quotes"]}
    assert flagged == {cap + 1: "W-19", cap: None, cap - 5: None, cap - 7: None}
    # the panel sees the rejection naming price_fen and cannot pass it; the rejected quote cannot win
    committee = await api.convene(agency, tender["id"], experts=3)
    room = (await api.get(f"/api/v1/evaluation/rooms/{committee['room_id']}", committee["members"][1])).json()
    lines = {b["bid_id"]: b.get("rejected") for b in room["lots"][0]["bids"]}
    assert (lines[above.bid_id]["rule"], lines[above.bid_id]["reason"]) == ("W-19", "price_fen")
    assert cap_field in lines[above.bid_id]["detail"]
    assert lines[at.bid_id] is None
    await api.deliberate(committee)
    stolen = {"lots": [{"lot_id": above.lot_id, "bid_id": above.bid_id}]}
    r = await api.post(f"/api/v1/tenders/{tender['id']}/award", agency, json=stolen)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "lots[0].bid_id"


async def test_a_final_quote_above_the_budget_does_not_count_towards_the_three_needed(api: Api) -> None:
    agency, tender, bids = await _negotiating(api, suppliers=3)
    deadline = api.clock.now() + timedelta(hours=1)
    r = await api.post(_path(tender, "final-call"), agency, json={"deadline": deadline.isoformat()})
    assert r.status_code == 200, r.text
    prices = [BUDGET_FEN, BUDGET_FEN - 1, BUDGET_FEN + 1]
    nonces = [await _seal(api, tender, bid, price) for bid, price in zip(bids, prices, strict=True)]
    await api.at(deadline)
    for bid, price, nonce in zip(bids, prices, nonces, strict=True):
        body = {"lot_id": bid.lot_id, "price_fen": price, "nonce": nonce}
        assert (await api.post(_path(tender, "final-quotes/open"), bid.bidder, json=body)).status_code == 200
    await api.at(deadline + timedelta(minutes=31))
    read = (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()
    assert read["status"] == "unsuccessful" and read["outcome_reason"].startswith("G-13")
    assert read["lots"][0]["outcome_reason"].startswith("G-13: 2 final quote(s)")
