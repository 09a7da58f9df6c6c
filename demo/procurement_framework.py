"""A framework agreement (框架协议采购, 110号令; G-01) in `ggzy demo --sector procurement`, through the HTTP API.

The city's procurement centre calls for suppliers of desktop computers for every municipal office: an open
call of 20 days (G-02), four suppliers' sealed bids, a committee of five. The purchaser admits the three the
committee ranked first (入围), each at its own price as the cap it may never exceed, for 180 days; the
deposits go back at the admission. Then the second stage: a direct order to one admitted supplier (one fen
above its cap is refused) and a mini-competition (二次竞价) among the three, whose quotes nobody sees before
the close; the lowest wins. Every order is published.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from demo import deposits
from demo.bids import obtain_documents, submit_bids
from demo.common import AGENCY, Outcome, TenderPlan, Trade, check, make_party, shanghai_text, yuan
from demo.opening import close_bidding, close_hall, reveal_and_read
from demo.purchase_committee import TOO_FEW, draw_panel, sit
from demo.works import draft_tender, publish, upload_documents
from rules.calendar import local_date
from rules.profiles import PROCUREMENT_FRAMEWORK

FRAMEWORK = TenderPlan(
    title="市级机关台式计算机框架协议采购",
    tenderer="南京市政府采购中心",
    tenderer_credit_code=make_party("", "", "", "11", 73).credit_code,
    qualification="具有独立承担民事责任的能力；近三年无重大违法记录；具备计算机产品原厂授权",
    estimated_price_fen=500_000_000,  # 5,000,000.00 yuan: a committee of 5 (G-07)
    prices_fen=(468_000_000, 452_300_000, 471_550_000, 489_900_000),
    rebid_price_fen=0,
    saboteur=None,
    same_author=None,
    profile=PROCUREMENT_FRAMEWORK,
)
TERM_DAYS = 180
QUOTES_FEN = (449_900_000, 441_800_050, 455_000_000)  # the mini-competition's, by the admitted in rank order


def _framework(t: Trade) -> Trade:
    f = t.others.get("framework")
    if f is None:
        parties = (AGENCY, *(p for p in t.parties if p.kind == "bidder"))
        f = Trade(t.p, FRAMEWORK, parties, people=t.people, keys=t.keys, cast=t.cast)
        t.others["framework"] = f
    return f


def _url(f: Trade, rest: str = "") -> str:
    return f"/api/v1/tenders/{f.tid}/framework{rest}"


async def framework_call(t: Trade) -> Outcome:
    """The open call for suppliers (G-02: 20 days); four suppliers obtain the documents, pay their deposits
    and seal their bids."""
    f = _framework(t)
    f.p.clock.advance(timedelta(days=1))
    await draft_tender(f)
    await upload_documents(f)
    await publish(f)
    await obtain_documents(f)
    await deposits.pay_by_notification(f, f.bidders)
    await submit_bids(f)
    return (
        f"{f.code} «{f.plan.title}», budget {yuan(f.plan.estimated_price_fen)} yuan; bids close "
        f"{shanghai_text(f.deadline)} (G-02: ≥ 20 days); {len(f.bids)} sealed bids with verified receipts"
    )


async def framework_evaluation(t: Trade) -> Outcome:
    """The bids are opened by their suppliers; a committee of five scores them and ranks its candidates."""
    f = _framework(t)
    await close_bidding(f)
    for bid in f.live_bids():
        await reveal_and_read(f, bid)
    await close_hall(f)
    panel = await draw_panel(f, TOO_FEW)
    made, _lot = await sit(f, 5)
    ranked = made["report"]["lots"][0]["candidates"]
    return f"{len(f.live_bids())} bids opened; {panel}; {len(ranked)} candidates ranked"


async def admission(t: Trade) -> Outcome:
    """The purchaser admits the committee's candidates (入围) for 180 days, each at its own price as its cap;
    an award to one winner is refused (G-01); the admission is published with every cap, and every deposit
    goes back."""
    f = _framework(t)
    f.p.clock.advance(timedelta(hours=2))
    ranked = f.evaluation["ranking"]
    refused = await f.p.refused(
        "POST",
        f"/api/v1/tenders/{f.tid}/award",
        f.agency,
        rule="G-01",
        status=409,
        json={"lots": [{"lot_id": f.tender["lots"][0]["id"], "bid_id": ranked[0]}]},
    )
    until = local_date(f.p.clock.now()) + timedelta(days=TERM_DAYS)
    agreement = await f.p.call(
        "POST",
        _url(f, "/admissions"),
        f.agency,
        expect=201,
        json={
            "lots": [{"lot_id": f.tender["lots"][0]["id"], "bid_ids": ranked}],
            "valid_until": until.isoformat(),
        },
    )
    prices = {b.bid_id: b.price_fen for b in f.live_bids()}
    caps = {a["bid_id"]: a["cap_fen"] for a in agreement["admissions"]}
    check(caps == {b: prices[b] for b in ranked}, "each admitted at its own price", caps)
    [result] = await f.notices("result")
    published = sorted(a["cap_fen"] for a in result["body"]["lots"][0]["admitted"])
    check(published == sorted(caps.values()), "the caps published", published)
    f.evaluation["agreement"] = agreement
    f.p.clock.advance(timedelta(hours=1))
    _batch, paid = await deposits.bank_round(f)
    check(paid["paid"] == len(f.bidders) and paid["failed"] == 0, "every deposit paid back", paid)
    return (
        f"a single award → 409 rule G-01 ({refused['detail']}); {len(caps)} admitted until {until} at caps "
        f"{', '.join(yuan(c) for c in published)} yuan, published; {paid['paid']} deposits paid back"
    )


def _admitted(f: Trade) -> list[dict[str, Any]]:
    """The admissions in the committee's order."""
    by_bid = {a["bid_id"]: a for a in f.evaluation["agreement"]["admissions"]}
    return [by_bid[b] for b in f.evaluation["ranking"]]


async def orders(t: Trade) -> Outcome:
    """A direct order one fen above the supplier's cap is refused (G-01), at the cap it is placed; then a
    mini-competition among the three: the purchaser sees no price before the close, the lowest quote wins;
    both orders are published."""
    f = _framework(t)
    f.p.clock.advance(timedelta(days=3))
    lot_id = f.tender["lots"][0]["id"]
    first = _admitted(f)[0]
    body = {
        "lot_id": lot_id,
        "organisation_id": first["organisation_id"],
        "price_fen": first["cap_fen"] + 1,
        "subject": "台式计算机 40 台（市政务服务中心）",
    }
    above = await f.p.request("POST", _url(f, "/orders"), f.agency, expect=422, json=body)
    fields = [e.get("field") for e in above.json().get("errors", [])]
    check(above.json().get("rule") == "G-01" and fields == ["price_fen"], "G-01 on price_fen", above.json())
    placed = await f.p.call(
        "POST", _url(f, "/orders"), f.agency, expect=201, json={**body, "price_fen": first["cap_fen"]}
    )
    check(placed["status"] == "placed", "the direct order placed", placed)
    closes = f.p.clock.now() + timedelta(days=2)
    contest = await f.p.call(
        "POST",
        _url(f, "/competitions"),
        f.agency,
        expect=201,
        json={"lot_id": lot_id, "closes_at": closes.isoformat(), "subject": "台式计算机 300 台（市教育局）"},
    )
    by_org = {b.bidder.organisation_id: b.bidder for b in f.live_bids()}
    for admitted, price in zip(_admitted(f), QUOTES_FEN, strict=True):
        f.p.clock.advance(timedelta(hours=1))
        await f.p.call(
            "POST",
            _url(f, f"/competitions/{contest['id']}/quotes"),
            by_org[admitted["organisation_id"]],
            expect=201,
            json={"price_fen": price},
        )
    seen = await f.p.call("GET", _url(f, f"/competitions/{contest['id']}/quotes"), f.agency)
    check(seen == [], "no quote seen by the purchaser before the close", seen)
    f.p.clock.set(closes)
    closed = await f.p.call("POST", _url(f, f"/competitions/{contest['id']}/close"), f.agency)
    check(closed["price_fen"] == min(QUOTES_FEN), f"the lowest quote {min(QUOTES_FEN)}", closed)
    published = await f.notices("framework_order")
    check(len(published) == 2, "both orders published", published)
    return (
        f"direct order at {yuan(first['cap_fen'] + 1)} yuan (cap + 1 fen) → 422 rule G-01 on price_fen, at the "
        f"cap placed; mini-competition of 3 quotes, none seen before {shanghai_text(closes)}, won by "
        f"{closed['supplier']} at {yuan(closed['price_fen'])} yuan; 2 orders published"
    )
