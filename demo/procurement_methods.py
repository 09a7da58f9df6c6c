"""The methods of `ggzy demo --sector procurement` other than open tendering, through the real HTTP API.

The hospital's second procurement failed for too few suppliers (G-13): with the finance bureau's consent it
is re-run by request for quotation (询价) to three invited suppliers, three working days to their quotes, a
panel of three and the lowest price. An archives office then buys a digitisation service by competitive
negotiation (竞争性谈判): the panel negotiates with each supplier alone, amends the requirements for all of
them, and the suppliers seal final quotes that nobody, the platform included, can read before all are
opened together. Each trade ends with its contract signed and published, the performance accepted (履约验收)
and the procurement complete, its budget, award and saving exact to the fen.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

from demo import deposits
from demo.bids import obtain_documents, submit_bids
from demo.common import AGENCY, Outcome, SealedBid, TenderPlan, Trade, check, make_party, shanghai_text, yuan
from demo.opening import close_bidding, close_hall, reveal_and_read
from demo.purchase_committee import draw_panel, sit
from demo.works import (
    award_lot,
    draft_tender,
    lawful_deadline,
    patch_deadline,
    publish,
    upload_documents,
    upload_tender_file,
)
from rules.calendar import local_date
from rules.profiles import PROCUREMENT_NEGOTIATION, PROCUREMENT_RFQ
from storage.commitments import final_quote_commitment

QUOTES_FEN = (289_000_000, 284_560_010, 291_300_000)  # the request for quotation's three quotes
APPROVAL = {"body": "南京市财政局", "number": "宁财采〔2026〕21号"}
NEGOTIATION = TenderPlan(
    title="市档案馆馆藏档案数字化加工服务",
    tenderer="南京市档案馆",
    tenderer_credit_code=make_party("", "", "", "11", 72).credit_code,
    qualification="具有独立承担民事责任的能力；具有档案数字化加工服务经验；具备涉密信息系统集成资质",
    estimated_price_fen=180_000_000,  # 1,800,000.00 yuan
    prices_fen=(176_000_000, 172_500_000, 179_800_000),  # the first responses
    rebid_price_fen=0,
    saboteur=None,
    same_author=None,
    profile=PROCUREMENT_NEGOTIATION,
)
FINAL_QUOTES_FEN = (165_800_000, 158_990_007, 169_000_000)  # sealed after the rounds


def _suppliers(t: Trade) -> list[Any]:
    """The suppliers among the main trade's parties, in their order."""
    return [p for p in t.parties if p.kind == "bidder"]


async def _reveal_all(t: Trade) -> None:
    for bid in t.live_bids():
        await reveal_and_read(t, bid)


def _lowest(t: Trade) -> SealedBid:
    """The first of the panel's ranking: the lowest price (the lowest evaluated price method)."""
    first = t.evaluation["ranking"][0]
    return next(b for b in t.live_bids() if b.bid_id == first)


async def contract_and_accept(
    t: Trade, price_fen: int, *, interest_fen: int = 0
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The contract at the award's price is signed and recorded the same day (published, G-11); a month on the
    purchaser accepts the performance (履约验收, published) and completes the procurement."""
    t.p.clock.advance(timedelta(days=2))
    key = await upload_tender_file(t, "政府采购合同.pdf", b"%PDF-1.7 contract " + secrets.token_bytes(512))
    contract: dict[str, Any] = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/contracts",
        t.agency,
        expect=201,
        json={
            "award_id": t.award["id"],
            "object_key": key,
            "filename": "政府采购合同.pdf",
            "price_fen": price_fen,
            "performance_security_fen": 0,
            "signed_on": local_date(t.p.clock.now()).isoformat(),
        },
    )
    check(bool(await t.notices("contract")), "the contract published", "no contract notice")
    t.p.clock.advance(timedelta(hours=1))
    if interest_fen:
        await deposits.credit_interest(t, interest_fen)
    _batch, paid = await deposits.bank_round(t)
    check(paid["failed"] == 0, "the deposits due paid back", paid)
    for bidder in t.bidders:
        d = await deposits.deposit_of(t, bidder)
        check(d["status"] == "refunded", f"{bidder.party.username}'s deposit refunded", d)
    t.p.clock.advance(timedelta(days=30))
    early = await t.p.request("POST", f"/api/v1/tenders/{t.tid}/complete", t.agency, expect=409)
    check("履约验收" in early.json()["detail"], "completion refused before the acceptance", early.json())
    accepted = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/contracts/{contract['id']}/acceptance",
        t.agency,
        json={
            "result": "passed",
            "accepted_on": local_date(t.p.clock.now()).isoformat(),
            "report": "经验收小组逐项核验，服务成果符合合同约定，验收合格",
        },
    )
    check(accepted["acceptance_result"] == "passed", "the performance accepted", accepted)
    check(bool(await t.notices("acceptance")), "the acceptance published", "no acceptance notice")
    tender: dict[str, Any] = await t.p.call("POST", f"/api/v1/tenders/{t.tid}/complete", t.agency)
    check(tender["status"] == "completed", "status completed", tender["status"])
    return contract, accepted


def _saving(t: Trade, price_fen: int) -> str:
    budget = t.plan.estimated_price_fen
    return f"budget {yuan(budget)} yuan, award {yuan(price_fen)} yuan, saving {yuan(budget - price_fen)} yuan"


# ---------------------------------------------------------------- request for quotation, re-running a failure


async def switch_to_quotation(t: Trade) -> Outcome:
    """The failed procurement changes its method with the approving body's consent (G-13), dated no later than
    today, inviting three suppliers. The new draft gets its own code and the
    quotation's period (3 working days), documents, and is published to the invited alone."""
    failed = t.sequel
    assert failed is not None
    suppliers = _suppliers(t)[:3]
    approval = {**APPROVAL, "approved_on": local_date(t.p.clock.now()).isoformat()}
    path = f"/api/v1/tenders/{failed.tid}/switch-method"
    org_ids = [t.people[s.username].organisation_id for s in suppliers]
    body = {"method": "rfq", "approval": {**approval, "approved_on": "2099-01-01"}, "invited": org_ids}
    r = await t.p.request("POST", path, t.agency, expect=422, json=body)
    fields = [e.get("field") for e in r.json().get("errors", [])]
    check(fields == ["approval.approved_on"], "an approval dated later refused", r.json())
    r = await t.p.request("POST", path, t.agency, expect=201, json={**body, "approval": approval})
    plan = replace(failed.plan, profile=PROCUREMENT_RFQ, prices_fen=QUOTES_FEN)
    q = Trade(t.p, plan, (AGENCY, *suppliers), people=t.people, keys=t.keys, cast=t.cast)
    q.tender, q.etag = r.json(), r.headers.get("ETag", "")
    check(q.tender["method_approval"]["number"] == APPROVAL["number"], "the consent recorded", q.tender)
    t.others["quotation"] = q
    deadline = await lawful_deadline(q)
    await patch_deadline(q, deadline)
    await upload_documents(q)
    await publish(q)
    return (
        f"{failed.code} (failed, G-13) → {q.code} by request for quotation, consent {APPROVAL['body']} "
        f"{APPROVAL['number']} (an approval dated in the future → 422 on approval.approved_on), three invited; quotes due "
        f"{shanghai_text(deadline)} (G-13: ≥ 3 working days)"
    )


async def quotation(t: Trade) -> Outcome:
    """The three invited suppliers obtain the documents, pay their deposits and seal one quote each; at the
    deadline they open them in the hall, and a panel of three qualifies the quotes: the lowest is first."""
    q = t.others["quotation"]
    await obtain_documents(q)
    await deposits.pay_by_notification(q, q.bidders)
    await submit_bids(q)
    await close_bidding(q)
    await _reveal_all(q)
    await close_hall(q)
    panel = await draw_panel(q)
    await sit(q, 3)
    winner = _lowest(q)
    check(winner.price_fen == min(QUOTES_FEN), "the lowest quote first", winner.price_fen)
    return (
        f"{len(q.bids)} sealed quotes opened by their suppliers; {panel}; the panel ranks "
        f"{winner.bidder.party.username} first at {yuan(winner.price_fen)} yuan"
    )


async def quotation_result(t: Trade) -> Outcome:
    """The purchaser awards the lowest quote; the result notice states the saving to the fen (G-11); the
    contract is published, the performance accepted and the procurement completed."""
    q = t.others["quotation"]
    q.p.clock.advance(timedelta(hours=2))
    winner = _lowest(q)
    results = await award_lot(q, winner)
    lot = results[0]["body"]["lots"][0]
    saving = q.plan.estimated_price_fen - winner.price_fen
    check(lot["saving_fen"] == saving, f"saving {saving} fen", lot)
    # the bank's interest credit funds the interest on the failed procurement's refunds (G-04-end)
    contract, accepted = await contract_and_accept(q, winner.price_fen, interest_fen=500_000)
    return (
        f"{q.code}: {_saving(q, winner.price_fen)}; contract {contract['signed_on']} published; accepted "
        f"{accepted['accepted_on']}; status completed"
    )


# ---------------------------------------------------------------- competitive negotiation


def _negotiation(t: Trade) -> Trade:
    n = t.others.get("negotiation")
    if n is None:
        parties = (AGENCY, *_suppliers(t)[1:4])
        n = Trade(t.p, NEGOTIATION, parties, people=t.people, keys=t.keys, cast=t.cast)
        t.others["negotiation"] = n
    return n


def _path(n: Trade, rest: str) -> str:
    return f"/api/v1/tenders/{n.tid}/negotiation/{rest}"


async def negotiation_published(t: Trade) -> Outcome:
    """The archives office invites three suppliers to a competitive negotiation: 3 working days to their
    first responses (G-13)."""
    n = _negotiation(t)
    n.p.clock.advance(timedelta(days=1))
    await draft_tender(n)
    await upload_documents(n)
    await publish(n)
    return (
        f"{n.code} «{n.plan.title}», budget {yuan(n.plan.estimated_price_fen)} yuan, invited "
        f"{', '.join(b.party.username for b in n.bidders)}; responses due {shanghai_text(n.deadline)} "
        "(G-13: ≥ 3 working days)"
    )


async def negotiation_rounds(t: Trade) -> Outcome:
    """The suppliers respond with sealed first offers, opened in the hall; then the panel negotiates with each
    alone (the minutes are that supplier's and the purchaser's only) and amends the delivery period for
    all."""
    n = _negotiation(t)
    await obtain_documents(n)
    await deposits.pay_by_notification(n, n.bidders)
    await submit_bids(n)
    await close_bidding(n)
    await _reveal_all(n)
    n.p.clock.advance(timedelta(minutes=2))
    tender = await n.p.call("POST", f"/api/v1/tenders/{n.tid}/close-opening", n.agency)
    check(tender["status"] == "negotiation", "status negotiation", tender["status"])
    for i, bid in enumerate(n.live_bids()):
        await n.p.call(
            "POST",
            _path(n, "rounds"),
            n.agency,
            expect=201,
            json={
                "organisation_id": bid.bidder.organisation_id,
                "round": 1,
                "minutes": f"第一轮谈判：就加工质量、保密措施与交付期逐项磋商（供应商 {i + 1}）",
            },
        )
    await n.p.call(
        "POST", _path(n, "amendments"), n.agency, expect=201, json={"text": "交付期由90日调整为60日"}
    )
    one = n.live_bids()[0].bidder
    seen = await n.p.call("GET", _path(n, "notes"), one)
    others = {x["organisation_id"] for x in seen if x["kind"] == "round"} - {one.organisation_id}
    check(not others, "no other supplier's minutes", others)
    return (
        f"{len(n.live_bids())} first offers opened; status negotiation; a round with each supplier alone, "
        f"{one.party.username} sees only its own minutes; the amended delivery period sent to all"
    )


async def final_quotes(t: Trade) -> Outcome:
    """The final call: each supplier seals its final quote as a SHA-256 commitment (price and a secret
    nonce) within the hour; after the deadline each opens its own, and the prices are published together
    when the window closes: nobody saw a price before every quote was sealed."""
    n = _negotiation(t)
    deadline = n.p.clock.now() + timedelta(hours=1)
    called = await n.p.call("POST", _path(n, "final-call"), n.agency, json={"deadline": deadline.isoformat()})
    check(called["status"] == "final_quotes", "status final_quotes", called["status"])
    sealed: list[tuple[SealedBid, int, str]] = []
    for bid, price in zip(n.live_bids(), FINAL_QUOTES_FEN, strict=True):
        nonce = secrets.token_hex(32)
        commitment = final_quote_commitment(
            uuid.UUID(n.tid), uuid.UUID(bid.lot_id), uuid.UUID(bid.bidder.organisation_id), price, nonce
        )
        await n.p.call(
            "POST",
            _path(n, "final-quotes"),
            bid.bidder,
            expect=201,
            json={"lot_id": bid.lot_id, "commitment": commitment},
        )
        sealed.append((bid, price, nonce))
    listed = await n.p.call("GET", _path(n, "final-quotes"), n.agency)
    check(all(x["price_fen"] is None for x in listed), "no price visible while sealed", listed)
    await n.p.move_to(deadline)
    for bid, price, nonce in sealed:
        await n.p.call(
            "POST",
            _path(n, "final-quotes/open"),
            bid.bidder,
            json={"lot_id": bid.lot_id, "price_fen": price, "nonce": nonce},
        )
    closes = deadline + timedelta(minutes=PROCUREMENT_NEGOTIATION.final_quote_reveal_minutes or 0)
    await n.p.move_to(closes)
    await n.p.settle(n.status_is("evaluation"), f"the chronograph to publish {n.code}'s final quotes")
    [notice] = await n.notices("final_quotes")
    published = sorted(q["price_fen"] for q in notice["body"]["final_quotes"])
    check(published == sorted(FINAL_QUOTES_FEN), f"the final quotes {sorted(FINAL_QUOTES_FEN)}", published)
    # the final quotes are the prices the panel evaluates
    n.bids = [replace(b, price_fen=p) for b, p, _ in sealed]
    return (
        f"{len(sealed)} final quotes sealed by {shanghai_text(deadline)}, none readable before it; opened by "
        f"their suppliers and published together at {shanghai_text(closes)}: "
        f"{', '.join(yuan(p) for p in published)} yuan"
    )


async def negotiation_result(t: Trade) -> Outcome:
    """A panel of three evaluates the final quotes; the purchaser awards the lowest; the contract is published,
    the performance accepted and the procurement completed."""
    n = _negotiation(t)
    panel = await draw_panel(n)
    await sit(n, 3)
    winner = _lowest(n)
    check(winner.price_fen == min(FINAL_QUOTES_FEN), "the lowest final quote first", winner.price_fen)
    n.p.clock.advance(timedelta(hours=2))
    results = await award_lot(n, winner)
    lot = results[0]["body"]["lots"][0]
    check(lot["saving_fen"] == n.plan.estimated_price_fen - winner.price_fen, "the saving to the fen", lot)
    contract, accepted = await contract_and_accept(n, winner.price_fen)
    return (
        f"{panel}; {winner.bidder.party.username} first; {n.code}: {_saving(n, winner.price_fen)}; contract "
        f"{contract['signed_on']} published; accepted {accepted['accepted_on']}; status completed"
    )
