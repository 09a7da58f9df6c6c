"""Framework agreements (框架协议采购, 110号令; G-01) on the procedure engine: the open call for suppliers (G-02),
the admission of several suppliers per lot at their own caps (入围价格), direct orders and mini-competitions
(二次竞价) while the agreement is in force, each refusal and the attacks on them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from rules.profiles import ProfileError, profile_for, tighten
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api, SealedBid

YUAN = 100
BUDGET_FEN = 3_000_000 * YUAN  # below 10 million yuan: a committee of 5 (G-07)
DEPOSIT_FEN = 60_000 * YUAN  # 2 % of the budget (G-03)
PRICES = [2_700_000 * YUAN, 2_600_000 * YUAN, 2_650_000 * YUAN, 2_900_000 * YUAN]
F = "/api/v1/tenders/{}/framework"


def framework(**overrides: Any) -> dict[str, Any]:
    """Overrides of the test tender body that make it a framework agreement of one lot with BUDGET_FEN."""
    body: dict[str, Any] = {
        "sector": "procurement",
        "method": "framework",
        "title": "市级机关办公设备框架协议采购",
        "tenderer_name": "南京市政府采购中心",
        "qualification": "具有独立承担民事责任的能力",
        "lots": [
            {"title": "第一包 台式计算机", "estimated_price_fen": BUDGET_FEN, "deposit_fen": DEPOSIT_FEN}
        ],
    }
    body.update(overrides)
    return body


@dataclass
class Framework:
    """A framework tender evaluated by the panel: its agency, the tender, the four bids (the first three the
    committee's candidates, the lowest prices) and, once admitted, the agreement."""

    agency: Actor
    tender: dict[str, Any]
    bids: list[SealedBid]
    agreement: dict[str, Any]

    @property
    def url(self) -> str:
        return F.format(self.tender["id"])

    @property
    def lot_id(self) -> str:
        return str(self.tender["lots"][0]["id"])

    @property
    def admitted(self) -> list[SealedBid]:
        return self.bids[:3]

    @property
    def outsider(self) -> SealedBid:
        return self.bids[3]

    def cap(self, bid: SealedBid) -> int:
        return bid.price_fen


async def evaluated(api: Api) -> Framework:
    """A published framework tender with four bids, opened and evaluated with equal scores, so the three
    lowest prices are the candidates; the report is in and the purchaser decides."""
    agency = await api.organisation("agency")
    tender = await api.published(agency, **framework())
    bids = [await api.bid(await api.organisation("bidder"), tender, price) for price in PRICES]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    await api.evaluate(agency, tender["id"])
    return Framework(agency, tender, bids, {})


def term_end(api: Api, days: int = 180) -> date:
    today: date = api.clock.now().date()
    return today + timedelta(days=days)


async def admitted(api: Api, purchasers: list[str] | None = None) -> Framework:
    """`evaluated`, then the three candidates admitted for 180 days."""
    fw = await evaluated(api)
    r = await api.post(
        f"{fw.url}/admissions",
        fw.agency,
        json={
            "lots": [{"lot_id": fw.lot_id, "bid_ids": [b.bid_id for b in fw.admitted]}],
            "valid_until": term_end(api).isoformat(),
            "purchasers": purchasers or [],
        },
    )
    assert r.status_code == 201, r.text
    fw.agreement = r.json()
    return fw


async def competition(api: Api, fw: Framework, hours: int = 24) -> dict[str, Any]:
    closes_at = api.clock.now() + timedelta(hours=hours)
    r = await api.post(
        f"{fw.url}/competitions",
        fw.agency,
        json={"lot_id": fw.lot_id, "closes_at": closes_at.isoformat(), "subject": "台式计算机 200 台"},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def direct(fw: Framework, bid: SealedBid, price_fen: int) -> dict[str, Any]:
    return {
        "lot_id": fw.lot_id,
        "organisation_id": bid.bidder.organisation_id,
        "price_fen": price_fen,
        "subject": "台式计算机 20 台",
    }


async def notices(api: Api, fw: Framework, kind: str) -> list[dict[str, Any]]:
    r = await api.get("/api/v1/notices", params={"tender_code": fw.tender["code"], "kind": kind})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


# ---------------------------------------------------------------- the happy path


async def test_a_framework_admits_three_suppliers_and_orders_directly_and_by_mini_competition(
    api: Api,
) -> None:
    fw = await evaluated(api)
    tid = fw.tender["id"]
    assert (await api.get(f"/api/v1/tenders/{tid}", fw.agency)).json()["status"] == "decision"
    # one winner per lot is not how a framework ends
    award = {"lots": [{"lot_id": fw.lot_id, "bid_id": fw.admitted[0].bid_id}]}
    refused = await api.post(f"/api/v1/tenders/{tid}/award", fw.agency, json=award)
    assert refused.status_code == 409 and refused.json()["rule"] == "G-01"
    until = term_end(api)
    r = await api.post(
        f"{fw.url}/admissions",
        fw.agency,
        json={
            "lots": [{"lot_id": fw.lot_id, "bid_ids": [b.bid_id for b in fw.admitted]}],
            "valid_until": until.isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["valid_until"] == until.isoformat()
    caps = {a["organisation_id"]: a["cap_fen"] for a in r.json()["admissions"]}
    assert caps == {b.bidder.organisation_id: b.price_fen for b in fw.admitted}
    assert (await api.get(f"/api/v1/tenders/{tid}", fw.agency)).json()["status"] == "awarded"
    # the admitted list is public, in the agreement and the result notice
    public = await api.get(fw.url)
    assert public.status_code == 200 and len(public.json()["admissions"]) == 3
    [result] = await notices(api, fw, "result")
    [lot] = result["body"]["lots"]
    assert sorted(a["cap_fen"] for a in lot["admitted"]) == sorted(PRICES[:3])
    assert result["body"]["rule"] == "G-01" and result["body"]["valid_until"] == until.isoformat()
    # a direct order at the cap
    cheapest = fw.admitted[1]
    r = await api.post(f"{fw.url}/orders", fw.agency, json=direct(fw, cheapest, cheapest.price_fen))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "placed" and r.json()["price_fen"] == cheapest.price_fen
    api.clock.set(api.clock.now() + timedelta(minutes=1))
    # a mini-competition with three quotes, the lowest wins
    order = await competition(api, fw)
    assert order["status"] == "open" and order["kind"] == "competition"
    quotes = {0: 2_500_000 * YUAN, 1: 2_450_000 * YUAN, 2: 2_480_000 * YUAN}
    for i, price in quotes.items():
        q = await api.post(
            f"{fw.url}/competitions/{order['id']}/quotes", fw.admitted[i].bidder, json={"price_fen": price}
        )
        assert q.status_code == 201, q.text
    api.clock.set(api.clock.now() + timedelta(hours=24))
    closed = await api.post(f"{fw.url}/competitions/{order['id']}/close", fw.agency)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "placed"
    assert closed.json()["organisation_id"] == fw.admitted[1].bidder.organisation_id
    assert closed.json()["price_fen"] == 2_450_000 * YUAN
    # both orders are published: supplier, lot, price, date
    published = await notices(api, fw, "framework_order")
    assert sorted(n["body"]["price_fen"] for n in published) == [2_450_000 * YUAN, cheapest.price_fen]
    listed = (await api.get(f"{fw.url}/orders")).json()
    assert [(o["kind"], o["status"], o["lot"]) for o in listed] == [
        ("direct", "placed", 1),
        ("competition", "placed", 1),
    ]
    # after the close the lot's suppliers see every quote
    seen = (await api.get(f"{fw.url}/competitions/{order['id']}/quotes", fw.admitted[0].bidder)).json()
    assert sorted(q["price_fen"] for q in seen) == sorted(quotes.values())


async def test_equal_quotes_go_to_the_earliest(api: Api) -> None:
    fw = await admitted(api)
    order = await competition(api, fw)
    for bid in (fw.admitted[2], fw.admitted[0]):
        q = await api.post(
            f"{fw.url}/competitions/{order['id']}/quotes", bid.bidder, json={"price_fen": 2_000_000 * YUAN}
        )
        assert q.status_code == 201, q.text
        api.clock.set(api.clock.now() + timedelta(minutes=1))
    api.clock.set(api.clock.now() + timedelta(hours=24))
    closed = await api.post(f"{fw.url}/competitions/{order['id']}/close", fw.agency)
    assert closed.json()["organisation_id"] == fw.admitted[2].bidder.organisation_id


async def test_a_named_purchaser_orders_and_another_agency_cannot(api: Api) -> None:
    other = await api.organisation("agency")
    stranger = await api.organisation("agency")
    fw = await admitted(api, purchasers=[other.organisation_id])
    bid = fw.admitted[0]
    r = await api.post(f"{fw.url}/orders", other, json=direct(fw, bid, bid.price_fen))
    assert r.status_code == 201, r.text
    assert r.json()["purchaser_organisation_id"] == other.organisation_id
    r = await api.post(f"{fw.url}/orders", stranger, json=direct(fw, bid, bid.price_fen))
    assert r.status_code == 404, r.text


# ---------------------------------------------------------------- the admission refused


async def test_the_admission_is_refused_beyond_the_term_and_for_a_bid_not_among_the_candidates(
    api: Api,
) -> None:
    fw = await evaluated(api)
    body = {
        "lots": [{"lot_id": fw.lot_id, "bid_ids": [b.bid_id for b in fw.admitted]}],
        "valid_until": term_end(api, 366).isoformat(),
    }
    r = await api.post(f"{fw.url}/admissions", fw.agency, json=body)
    assert r.status_code == 422 and r.json()["rule"] == "G-01"
    assert r.json()["errors"][0]["field"] == "valid_until"
    body["valid_until"] = term_end(api).isoformat()
    body["lots"][0]["bid_ids"] = [fw.admitted[0].bid_id, fw.outsider.bid_id]  # type: ignore[index]
    r = await api.post(f"{fw.url}/admissions", fw.agency, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "lots[0].bid_ids[1]"
    # a bidder, or another agency, admits nobody
    body["lots"][0]["bid_ids"] = [fw.admitted[0].bid_id]  # type: ignore[index]
    assert (await api.post(f"{fw.url}/admissions", fw.admitted[0].bidder, json=body)).status_code == 403
    stranger = await api.organisation("agency")
    assert (await api.post(f"{fw.url}/admissions", stranger, json=body)).status_code == 404
    assert (await api.get(fw.url)).status_code == 404  # nothing admitted yet


def test_the_framework_profile_cites_g01_for_its_term_and_g02_for_its_call() -> None:
    profile = profile_for("procurement", "framework")
    assert profile.rule("framework_term_max_days") == "G-01"
    assert profile.rule("documents_to_deadline_days") == "G-02" and profile.documents_to_deadline_days == 20
    assert tighten(profile, framework_term_max_days=180).framework_term_max_days == 180
    with pytest.raises(ProfileError) as longer:
        tighten(profile, framework_term_max_days=366)
    assert longer.value.rule == "G-01"


async def test_suppliers_are_admitted_once_and_every_deposit_of_the_lot_falls_due(api: Api) -> None:
    from tests.trading.test_procurement_open import _obligations

    fw = await admitted(api)
    due = await _obligations(api, fw.lot_id)
    assert {org for org, (rule, _day) in due.items() if rule == "G-04-winner"} == {
        b.bidder.organisation_id for b in fw.bids
    }
    again = {
        "lots": [{"lot_id": fw.lot_id, "bid_ids": [fw.admitted[0].bid_id]}],
        "valid_until": term_end(api).isoformat(),
    }
    r = await api.post(f"{fw.url}/admissions", fw.agency, json=again)
    assert r.status_code == 409, r.text
    caps = {a["organisation_id"]: a["cap_fen"] for a in (await api.get(fw.url)).json()["admissions"]}
    assert len(caps) == 3


# ---------------------------------------------------------------- orders refused


async def test_a_direct_order_above_the_cap_is_refused_by_g01(api: Api) -> None:
    fw = await admitted(api)
    bid = fw.admitted[0]
    r = await api.post(f"{fw.url}/orders", fw.agency, json=direct(fw, bid, bid.price_fen + 1))
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "G-01"
    assert r.json()["errors"][0]["field"] == "price_fen"
    assert (await api.get(f"{fw.url}/orders", fw.agency)).json() == []


async def test_a_direct_order_to_a_supplier_not_admitted_is_refused(api: Api) -> None:
    fw = await admitted(api)
    r = await api.post(f"{fw.url}/orders", fw.agency, json=direct(fw, fw.outsider, fw.outsider.price_fen))
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "G-01"
    assert r.json()["errors"][0]["field"] == "organisation_id"


async def test_no_order_or_quote_after_the_agreements_term(api: Api) -> None:
    fw = await admitted(api)
    order = await competition(api, fw)
    api.clock.set(api.clock.now() + timedelta(days=182))
    bid = fw.admitted[0]
    r = await api.post(f"{fw.url}/orders", fw.agency, json=direct(fw, bid, bid.price_fen))
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "G-01" and "valid_until" in r.json()
    q = await api.post(f"{fw.url}/competitions/{order['id']}/quotes", bid.bidder, json={"price_fen": 1})
    assert q.status_code == 422 and q.json()["rule"] == "G-01"
    closes_at = api.clock.now() + timedelta(hours=1)
    c = await api.post(
        f"{fw.url}/competitions",
        fw.agency,
        json={"lot_id": fw.lot_id, "closes_at": closes_at.isoformat(), "subject": "打印机 10 台"},
    )
    assert c.status_code == 422 and c.json()["rule"] == "G-01"


async def test_a_mini_competition_closes_within_the_term(api: Api) -> None:
    fw = await admitted(api)
    closes_at = api.clock.now() + timedelta(days=200)
    r = await api.post(
        f"{fw.url}/competitions",
        fw.agency,
        json={"lot_id": fw.lot_id, "closes_at": closes_at.isoformat(), "subject": "打印机 10 台"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "G-01" and r.json()["errors"][0]["field"] == "closes_at"


async def test_a_quote_after_the_close_is_refused(api: Api) -> None:
    fw = await admitted(api)
    order = await competition(api, fw)
    api.clock.set(api.clock.now() + timedelta(hours=24))
    q = await api.post(
        f"{fw.url}/competitions/{order['id']}/quotes", fw.admitted[0].bidder, json={"price_fen": 100}
    )
    assert q.status_code == 422, q.text
    assert q.json()["rule"] == "G-01"


async def test_a_second_quote_by_the_same_supplier_is_refused(api: Api) -> None:
    fw = await admitted(api)
    order = await competition(api, fw)
    url = f"{fw.url}/competitions/{order['id']}/quotes"
    bidder = fw.admitted[0].bidder
    assert (await api.post(url, bidder, json={"price_fen": 2_500_000 * YUAN})).status_code == 201
    again = await api.post(url, bidder, json={"price_fen": 2_400_000 * YUAN})
    assert again.status_code == 409, again.text
    assert again.json()["rule"] == "G-01"
    mine = (await api.get(url, bidder)).json()
    assert [q["price_fen"] for q in mine] == [2_500_000 * YUAN]


async def test_a_quote_above_the_cap_is_refused(api: Api) -> None:
    fw = await admitted(api)
    order = await competition(api, fw)
    bid = fw.admitted[0]
    q = await api.post(
        f"{fw.url}/competitions/{order['id']}/quotes", bid.bidder, json={"price_fen": bid.price_fen + 1}
    )
    assert q.status_code == 422 and q.json()["rule"] == "G-01"
    assert q.json()["errors"][0]["field"] == "price_fen"


async def test_a_supplier_not_admitted_cannot_quote(api: Api) -> None:
    fw = await admitted(api)
    order = await competition(api, fw)
    url = f"{fw.url}/competitions/{order['id']}/quotes"
    q = await api.post(url, fw.outsider.bidder, json={"price_fen": 1})
    assert q.status_code == 403, q.text
    assert q.json()["rule"] == "G-01"
    stranger = await api.organisation("bidder")
    assert (await api.post(url, stranger, json={"price_fen": 1})).status_code == 403
    assert (await api.post(url, fw.agency, json={"price_fen": 1})).status_code == 403  # not a bidder


async def test_a_mini_competition_is_not_closed_before_its_time(api: Api) -> None:
    fw = await admitted(api)
    order = await competition(api, fw)
    url = f"{fw.url}/competitions/{order['id']}/close"
    early = await api.post(url, fw.agency)
    assert early.status_code == 422, early.text
    assert early.json()["rule"] == "G-01"
    api.clock.set(api.clock.now() + timedelta(hours=24))
    # a supplier does not close it; without a quote it fails, published
    assert (await api.post(url, fw.admitted[0].bidder)).status_code == 403
    closed = await api.post(url, fw.agency)
    assert closed.status_code == 200 and closed.json()["status"] == "failed"
    assert (await api.post(url, fw.agency)).status_code == 409
    assert len(await notices(api, fw, "framework_order")) == 1


async def test_orders_on_a_tender_that_is_not_a_framework_are_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency, **framework(method="open"))
    url = F.format(tender["id"])
    body = {
        "lot_id": tender["lots"][0]["id"],
        "organisation_id": agency.organisation_id,
        "price_fen": 1,
        "subject": "台式计算机",
    }
    r = await api.post(f"{url}/orders", agency, json=body)
    assert r.status_code == 409, r.text
    assert r.json()["rule"] == "G-01"
    closes_at = (api.clock.now() + timedelta(hours=1)).isoformat()
    body = {"lot_id": tender["lots"][0]["id"], "closes_at": closes_at, "subject": "台式计算机"}
    r = await api.post(f"{url}/competitions", agency, json=body)
    assert r.status_code == 409 and r.json()["rule"] == "G-01"
    assert (await api.get(f"{url}/orders")).json() == []


# ---------------------------------------------------------------- attacks


async def test_nobody_reads_another_suppliers_quote_before_the_close(api: Api) -> None:
    fw = await admitted(api)
    order = await competition(api, fw)
    url = f"{fw.url}/competitions/{order['id']}/quotes"
    first, second = fw.admitted[0].bidder, fw.admitted[1].bidder
    assert (await api.post(url, first, json={"price_fen": 2_000_000 * YUAN})).status_code == 201
    assert (await api.get(url, second)).json() == []
    assert (await api.get(url, fw.agency)).json() == []
    assert (await api.get(url, await api.organisation("supervisor"))).json() == []
    assert [q["price_fen"] for q in (await api.get(url, first)).json()] == [2_000_000 * YUAN]
    # the open competition tells the other suppliers nothing of the quote
    [listed] = [o for o in (await api.get(f"{fw.url}/orders", second)).json() if o["id"] == order["id"]]
    assert listed["price_fen"] is None and listed["organisation_id"] is None
    # those who watch see the open competition, without a price
    for watcher in (await api.bootstrap_centre(), await api.organisation("auditor")):
        [watched] = (await api.get(f"{fw.url}/orders", watcher)).json()
        assert watched["status"] == "open" and watched["price_fen"] is None
    # the public does not see the open competition at all
    assert (await api.get(f"{fw.url}/orders")).json() == []
    assert (await api.get(url)).status_code == 401


async def test_a_supplier_cannot_order_for_itself(api: Api) -> None:
    fw = await admitted(api)
    bid = fw.admitted[0]
    r = await api.post(f"{fw.url}/orders", bid.bidder, json=direct(fw, bid, bid.price_fen))
    assert r.status_code == 403, r.text
    r = await api.post(f"{fw.url}/orders", fw.outsider.bidder, json=direct(fw, bid, bid.price_fen))
    assert r.status_code == 403, r.text
    closes_at = (api.clock.now() + timedelta(hours=1)).isoformat()
    body = {"lot_id": fw.lot_id, "closes_at": closes_at, "subject": "台式计算机"}
    assert (await api.post(f"{fw.url}/competitions", bid.bidder, json=body)).status_code == 403
    stranger = await api.organisation("agency")
    assert (await api.post(f"{fw.url}/competitions", stranger, json=body)).status_code == 404


async def test_a_cap_is_lowered_by_its_supplier_and_never_raised(api: Api) -> None:
    fw = await admitted(api)
    admissions = {a["organisation_id"]: a for a in fw.agreement["admissions"]}
    bid = fw.admitted[0]
    mine = admissions[bid.bidder.organisation_id]
    url = f"{fw.url}/admissions/{mine['id']}/cap"
    raised = await api.post(url, bid.bidder, json={"cap_fen": bid.price_fen + 1})
    assert raised.status_code == 422, raised.text
    assert raised.json()["rule"] == "G-01" and raised.json()["errors"][0]["field"] == "cap_fen"
    # nobody else touches the cap: another supplier, the purchaser
    assert (await api.post(url, fw.admitted[1].bidder, json={"cap_fen": 1})).status_code == 404
    assert (await api.post(url, fw.agency, json={"cap_fen": 1})).status_code == 403
    assert (await api.patch(url, fw.agency, json={"cap_fen": bid.price_fen * 2})).status_code == 405
    lowered = await api.post(url, bid.bidder, json={"cap_fen": bid.price_fen - 100})
    assert lowered.status_code == 200, lowered.text
    assert lowered.json()["cap_fen"] == bid.price_fen - 100
    back_up = await api.post(url, bid.bidder, json={"cap_fen": bid.price_fen})
    assert back_up.status_code == 422 and back_up.json()["rule"] == "G-01"
    # the purchaser may now order only at the lower cap
    r = await api.post(f"{fw.url}/orders", fw.agency, json=direct(fw, bid, bid.price_fen))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "price_fen"
    assert len(await notices(api, fw, "framework_cap")) == 1


# ---------------------------------------------------------------- the archive


async def test_a_completed_framework_is_archived_with_its_admissions_orders_and_quotes(
    api: Api, tmp_path: Path
) -> None:
    from tests.archive.test_archive import _key, _resign, _verify

    fw = await admitted(api)
    bid = fw.admitted[0]
    r = await api.post(f"{fw.url}/orders", fw.agency, json=direct(fw, bid, bid.price_fen - 5))
    assert r.status_code == 201, r.text
    api.clock.set(api.clock.now() + timedelta(minutes=1))
    order = await competition(api, fw)
    for i, price in ((1, 2_300_000 * YUAN), (2, 2_200_000 * YUAN)):
        q = await api.post(
            f"{fw.url}/competitions/{order['id']}/quotes", fw.admitted[i].bidder, json={"price_fen": price}
        )
        assert q.status_code == 201, q.text
    api.clock.set(api.clock.now() + timedelta(hours=24))
    assert (await api.post(f"{fw.url}/competitions/{order['id']}/close", fw.agency)).status_code == 200
    done = await api.post(f"/api/v1/tenders/{fw.tender['id']}/complete", fw.agency)
    assert done.status_code == 200, done.text
    # the agreement is over: no more orders
    r = await api.post(f"{fw.url}/orders", fw.agency, json=direct(fw, bid, bid.price_fen))
    assert r.status_code == 409 and r.json()["rule"] == "G-01"
    await api.tick()
    got = (await api.get(f"/api/v1/tenders/{fw.tender['id']}/archive", fw.agency)).json()
    manifest = got["manifest"]["framework"]
    assert len(manifest["admissions"]) == 3
    assert [(o["kind"], o["status"], len(o["quotes"])) for o in manifest["orders"]] == [
        ("direct", "placed", 0),
        ("competition", "placed", 2),
    ]
    code, output = _verify(tmp_path, got, _key(api))
    assert code == 0 and "2 order(s) under the framework agreement" in output, output
    # an order moved to a dearer quote after the fact, even re-signed, is caught
    forged = copy.deepcopy(got)
    forged["manifest"]["framework"]["orders"][1]["organisation_id"] = fw.admitted[1].bidder.organisation_id
    forged["manifest"]["framework"]["orders"][1]["price_fen"] = 2_300_000 * YUAN
    _resign(forged, api.runtime.signer)
    code, output = _verify(tmp_path, forged, _key(api))
    assert code == 1 and "FAIL framework orders" in output, output
