"""A single source and a re-evaluation in `ggzy demo --sector procurement`, through the real HTTP API.

The land registry buys the upgrade of its registration system from the one supplier that owns its source
code (单一来源, 采购法 31): the notice names the supplier and the reasons, and the documents may not go out
before 5 working days of announcement have passed (G-14, an earlier day is refused naming the first lawful
one). Another supplier objects in that time; the documents wait until the purchaser answers. Then the named
supplier alone obtains them (anyone else is refused), its one sealed response is opened, a panel of three
evaluates it, and the purchaser awards, signs and accepts.

Then a request for quotation whose result is challenged and the challenge upheld (重新评审, 87号令 64; G-12):
the award is annulled before any contract, the same panel sits again in a second round and, finding the
winner's business licence expired, fails it on qualification; the second report ranks another supplier
first and the purchaser awards it. The first round's report stays on record beside the second.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

from demo import deposits
from demo.bids import obtain_documents, submit_bids
from demo.common import (
    AGENCY,
    Outcome,
    SealedBid,
    TenderPlan,
    Trade,
    at_shanghai,
    check,
    make_party,
    shanghai_text,
    short,
    yuan,
)
from demo.opening import close_bidding, close_hall, reveal_and_read
from demo.procurement_methods import contract_and_accept
from demo.purchase_committee import draw_panel, sit
from demo.works import award_lot, draft_tender, publish, upload_documents
from rules.profiles import PROCUREMENT_RFQ, PROCUREMENT_SINGLE_SOURCE

SINGLE = TenderPlan(
    title="不动产登记信息系统原厂升级服务单一来源采购",
    tenderer="南京市不动产登记中心",
    tenderer_credit_code=make_party("", "", "", "12", 74).credit_code,
    qualification="原系统著作权人，升级服务涉及原厂源代码，只能由其提供（采购法 31(1)）",
    estimated_price_fen=96_000_000,  # 960,000.00 yuan
    prices_fen=(95_880_000,),
    rebid_price_fen=0,
    saboteur=None,
    same_author=None,
    profile=PROCUREMENT_SINGLE_SOURCE,
)
REEVALUATED = TenderPlan(
    title="市疾病预防控制中心实验室耗材询价采购",
    tenderer="南京市疾病预防控制中心",
    tenderer_credit_code=make_party("", "", "", "12", 75).credit_code,
    qualification="具有独立承担民事责任的能力；营业执照在有效期内；具有医疗器械经营许可证",
    estimated_price_fen=68_000_000,  # 680,000.00 yuan
    prices_fen=(64_300_000, 66_450_020, 61_980_000),
    rebid_price_fen=0,
    saboteur=None,
    same_author=None,
    profile=PROCUREMENT_RFQ,
)
EXPIRED = "营业执照已过有效期，响应截止时不具备独立承担民事责任的资格"


def _suppliers(t: Trade) -> list[Any]:
    return [p for p in t.parties if p.kind == "bidder"]


def _single(t: Trade) -> Trade:
    s = t.others.get("single_source")
    if s is None:
        s = Trade(t.p, SINGLE, (AGENCY, _suppliers(t)[2]), people=t.people, keys=t.keys, cast=t.cast)
        t.others["single_source"] = s
    return s


def _objector(t: Trade) -> Any:
    """Another supplier, not the one named."""
    return t.people[_suppliers(t)[3].username]


def _reevaluated(t: Trade) -> Trade:
    r = t.others.get("reevaluation")
    if r is None:
        parties = (AGENCY, *(_suppliers(t)[i] for i in (0, 1, 3)))
        r = Trade(t.p, REEVALUATED, parties, people=t.people, keys=t.keys, cast=t.cast)
        t.others["reevaluation"] = r
    return r


def _bid(t: Trade, bid_id: str) -> SealedBid:
    return next(b for b in t.live_bids() if b.bid_id == bid_id)


async def _reveal_all(t: Trade) -> None:
    for bid in t.live_bids():
        await reveal_and_read(t, bid)


# ---------------------------------------------------------------- the single source


async def single_source_published(t: Trade) -> Outcome:
    """The draft names one supplier and the reasons; documents from today are refused (G-14: the documents'
    first day comes after 5 working days of announcement, the refusal names it). From that day the draft is
    submitted; the centre approves it, and the notice announces the supplier until when anyone may object."""
    s = _single(t)
    s.p.clock.advance(timedelta(days=1))
    await draft_tender(s)
    check(s.tender["invited_organisations"] == [s.bidders[0].organisation_id], "one supplier named", s.tender)
    await upload_documents(s)
    early = await s.p.refused("POST", f"/api/v1/tenders/{s.tid}/publish", s.agency, rule="G-14")
    first_day = datetime.fromisoformat(early["earliest_documents_day"]).date()
    fields = [e.get("field") for e in early.get("errors", [])]
    check(fields == ["documents_from"], "the refusal naming documents_from", early)
    documents_from = at_shanghai(first_day, time(9, 0))
    deadline = at_shanghai(
        await s.p.driver.earliest_deadline_day(documents_from, s.plan.profile), time(10, 0)
    )
    r = await s.p.request(
        "PATCH",
        f"/api/v1/tenders/{s.tid}",
        s.agency,
        expect=200,
        json={"documents_from": documents_from.isoformat(), "bid_deadline": deadline.isoformat()},
        headers={"If-Match": s.etag},
    )
    s.tender, s.etag = r.json(), r.headers.get("ETag", "")
    submitted = await s.p.call(
        "POST", f"/api/v1/tenders/{s.tid}/publish", s.agency, headers={"If-Match": s.etag}
    )
    check(submitted["review"]["status"] == "pending", "the review pending", submitted["review"])
    await s.p.call("POST", f"/api/v1/tenders/{s.tid}/review", s.centre, json={"decision": "approved"})
    r = await s.p.request("GET", f"/api/v1/tenders/{s.tid}", s.agency, expect=200)
    s.tender, s.etag = r.json(), r.headers.get("ETag", "")
    check(s.tender["status"] == "published", "status published (announced)", s.tender["status"])
    await s.p.tick()

    async def on_the_board() -> bool:
        return bool(await s.notices("tender_notice"))

    await s.p.settle(on_the_board, f"{s.code}'s notice on the public board")
    [notice] = await s.notices("tender_notice")
    announced = notice["body"]["single_source"]
    named = s.bidders[0].party
    check(announced["credit_code"] == named.credit_code, f"the supplier {named.credit_code}", announced)
    check(announced["reasons"] == SINGLE.qualification, "the reasons announced", announced)
    until = announced["objections_until"]
    check(until < first_day.isoformat(), f"objections until before {first_day}", until)
    s.evaluation["documents_from"] = documents_from
    return (
        f"{s.code} «{s.plan.title}» names {named.username} "
        f"alone; documents from today → 422 rule G-14 on documents_from, earliest {first_day}; announced "
        f"until {until}, documents from {first_day}, responses due {deadline.strftime('%Y-%m-%d %H:%M')}"
    )


async def single_source_objection(t: Trade) -> Outcome:
    """Another supplier objects to the single source during the announcement; on the documents' first day
    they wait (status published, paused under G-14) until the purchaser answers; an objection after the
    announcement is refused (G-14)."""
    s = _single(t)
    other = _objector(t)
    s.p.clock.advance(timedelta(days=1))
    filed = await s.p.call(
        "POST",
        f"/api/v1/tenders/{s.tid}/objections",
        other,
        expect=201,
        json={"subject": "single_source", "text": "本公司亦具备该系统升级能力，请改用竞争性方式采购"},
    )
    check(filed["subject"] == "single_source" and filed["answer"] is None, "an unanswered objection", filed)
    documents_from: datetime = s.evaluation["documents_from"]
    await s.p.move_to(documents_from + timedelta(minutes=5))
    read = await s.p.call("GET", f"/api/v1/tenders/{s.tid}", s.agency)
    check(read["status"] == "published", "still published", read["status"])
    check("G-14" in str(read["paused_reason"]), "paused under G-14", read["paused_reason"])
    s.p.clock.advance(timedelta(hours=2))
    answered = await s.p.call(
        "POST",
        f"/api/v1/tenders/{s.tid}/objections/{filed['id']}/answer",
        s.agency,
        json={"answer": "经专业人员论证，升级服务涉及原厂源代码及著作权，维持单一来源采购"},
    )
    check(answered["answer"] is not None, "the objection answered", answered)
    await s.p.tick()
    await s.p.settle(s.status_is("tendering"), f"{s.code}'s documents to go out after the answer")
    late = await s.p.refused(
        "POST",
        f"/api/v1/tenders/{s.tid}/objections",
        other,
        rule="G-14",
        json={"subject": "single_source", "text": "补充异议"},
    )
    return (
        f"{other.party.username} objected {shanghai_text(filed['filed_at'])}; on "
        f"{documents_from.date()} status published, paused ({read['paused_reason']}); answered, status "
        f"tendering; a later objection → {late['status']} rule G-14"
    )


async def single_source_response(t: Trade) -> Outcome:
    """The named supplier alone obtains the documents (another is refused, 403), pays its deposit and seals
    its response; at the deadline it opens it in the hall and a panel of three evaluates it."""
    s = _single(t)
    other = _objector(t)
    refused = await s.p.request("POST", f"/api/v1/tenders/{s.tid}/documents/obtain", other, expect=403)
    check(refused.status_code == 403, "another supplier refused the documents", refused.status_code)
    await obtain_documents(s)
    await deposits.pay_by_notification(s, s.bidders)
    await submit_bids(s)
    await close_bidding(s)
    await _reveal_all(s)
    await close_hall(s)
    panel = await draw_panel(s)
    await sit(s, 3)
    [only] = s.evaluation["ranking"]
    bid = _bid(s, only)
    return (
        f"{other.party.username} obtaining the documents → 403; {bid.bidder.party.username}'s one response "
        f"opened at {yuan(bid.price_fen)} yuan; {panel}; report signed"
    )


async def single_source_result(t: Trade) -> Outcome:
    """The purchaser awards the single source; the contract is published, the performance accepted and the
    procurement completed."""
    s = _single(t)
    s.p.clock.advance(timedelta(hours=2))
    bid = _bid(s, s.evaluation["ranking"][0])
    awarded = (await award_lot(s, bid))[0]["body"]["lots"][0]
    contract, accepted = await contract_and_accept(s, bid.price_fen)
    budget = s.plan.estimated_price_fen
    return (
        f"{s.code}: awarded to {awarded['winner']} at {yuan(bid.price_fen)} yuan (budget {yuan(budget)} yuan, "
        f"saving {yuan(budget - bid.price_fen)} yuan); contract {contract['signed_on']} published; accepted "
        f"{accepted['accepted_on']}; status completed"
    )


# ---------------------------------------------------------------- a challenge upheld: re-evaluation


async def reevaluation_awarded(t: Trade) -> Outcome:
    """A request for quotation to three invited suppliers: quotes sealed and opened, a panel of three ranks
    the lowest first and the purchaser awards it."""
    r = _reevaluated(t)
    r.p.clock.advance(timedelta(days=1))
    await draft_tender(r)
    await upload_documents(r)
    await publish(r)
    await obtain_documents(r)
    await deposits.pay_by_notification(r, r.bidders)
    await submit_bids(r)
    await close_bidding(r)
    await _reveal_all(r)
    await close_hall(r)
    panel = await draw_panel(r)
    made, _lot = await sit(r, 3)
    first = _bid(r, r.evaluation["ranking"][0])
    check(first.price_fen == min(REEVALUATED.prices_fen), "the lowest quote first", first.price_fen)
    r.evaluation.update(first_room=r.evaluation["room_id"], first_hash=made["report_hash"], first=first)
    r.p.clock.advance(timedelta(hours=2))
    await award_lot(r, first)
    return (
        f"{r.code} «{r.plan.title}»: {len(r.live_bids())} quotes opened; {panel}; round 1 report "
        f"{short(made['report_hash'])} ranks {first.bidder.party.username} first; awarded at "
        f"{yuan(first.price_fen)} yuan"
    )


async def reevaluation_ordered(t: Trade) -> Outcome:
    """The supplier ranked second challenges the result (质疑): the winner's business licence had expired.
    The agency upholds it and orders a re-evaluation by the same panel (87号令 64): the award is annulled and
    the trade goes back to evaluation, a contract refused meanwhile."""
    r = _reevaluated(t)
    r.p.clock.advance(timedelta(days=1))
    second = _bid(r, r.evaluation["ranking"][1])
    filed = await r.p.call(
        "POST",
        f"/api/v1/tenders/{r.tid}/objections",
        second.bidder,
        expect=201,
        json={"subject": "result", "text": "成交供应商营业执照已过期，不具备资格，请重新评审"},
    )
    r.p.clock.advance(timedelta(hours=3))
    answered = await r.p.call(
        "POST",
        f"/api/v1/tenders/{r.tid}/objections/{filed['id']}/answer",
        r.agency,
        json={"answer": "经核实，质疑成立，由原评审小组重新评审", "outcome": "reevaluate"},
    )
    check(answered["outcome"] == "reevaluate", "a re-evaluation ordered", answered)
    tender = await r.p.call("GET", f"/api/v1/tenders/{r.tid}", r.agency)
    check(tender["status"] == "evaluation", "status evaluation", tender["status"])
    awards = await r.p.call("GET", f"/api/v1/tenders/{r.tid}/awards", r.agency)
    check([a["status"] for a in awards] == ["annulled"], "the award annulled", awards)
    rooms = await r.p.call("GET", "/api/v1/evaluation/rooms", r.agency)
    rounds = sorted(int(x["round"]) for x in rooms if x["tender_id"] == r.tid)
    check(rounds == [1, 2], "rooms of rounds 1 and 2", rounds)
    r.evaluation["challenger"] = second
    return (
        f"{second.bidder.party.username} challenged the result; upheld with a re-evaluation: the award "
        f"annulled, status evaluation, round 2 room open for the same panel"
    )


async def reevaluation_result(t: Trade) -> Outcome:
    """The same panel sits again in round 2 and fails the winner on qualification, with its reason; the
    second report ranks the challenger first and the purchaser awards it; round 1's report stays readable to
    the supervisor, unchanged. Then the contract, the acceptance and completion."""
    r = _reevaluated(t)
    first: SealedBid = r.evaluation["first"]
    r.evaluation["evaluation_at"] = r.p.clock.now()  # the round-2 room opened on the order
    made, _lot = await sit(r, 3, {first.bid_id: EXPIRED})
    check(made["report"]["round"] == 2, "a round 2 report", made["report"].get("round"))
    check(made["report_hash"] != r.evaluation["first_hash"], "a new report", made["report_hash"])
    check(first.bid_id not in r.evaluation["ranking"], "the expired licence out of the ranking", r.evaluation)
    check(
        EXPIRED in json.dumps(made["report"], ensure_ascii=False), "the reason in the report", made["report"]
    )
    winner = _bid(r, r.evaluation["ranking"][0])
    check(winner.bidder is r.evaluation["challenger"].bidder, "the challenger first", winner.bidder)
    earlier = await r.p.call(
        "GET", f"/api/v1/evaluation/rooms/{r.evaluation['first_room']}/report", r.supervisor
    )
    check(earlier["report_hash"] == r.evaluation["first_hash"], "round 1's report unchanged", earlier)
    check(earlier["report"]["round"] == 1, "round 1", earlier["report"].get("round"))
    check(
        earlier["report"]["lots"][0]["candidates"][0]["bid_id"] == first.bid_id,
        "round 1 still ranks the first winner first",
        earlier["report"]["lots"][0]["candidates"],
    )
    r.p.clock.advance(timedelta(hours=2))
    lot = (await award_lot(r, winner))[0]["body"]["lots"][0]
    contract, accepted = await contract_and_accept(r, winner.price_fen)
    return (
        f"round 2 report {short(made['report_hash'])}: {first.bidder.party.username} failed on qualification "
        f"(«{EXPIRED}»), {winner.bidder.party.username} first; awarded at {yuan(lot['price_fen'])} yuan; round 1 "
        f"report {short(earlier['report_hash'])} still on record, unchanged; contract {contract['signed_on']}; "
        f"accepted {accepted['accepted_on']}; status completed"
    )
