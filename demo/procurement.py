"""`ggzy demo --sector procurement`: a government procurement by open tendering (政府采购公开招标) through the
real HTTP API, one checked step at a time, on the demo's private platform (`demo/private.py`).

The agency buys medical equipment for a hospital with a budget (预算金额) of 12 million yuan: a deposit above
2 % of the budget is refused (G-03), and so is a deadline before the 20th day (G-02). Four suppliers pay
their deposits through the bank's statement, seal and submit their bids; all four reveal their keys in the
opening hall. A committee of five is refused from a budget of 10 million yuan (G-07); seven are drawn and
score; the report goes to the purchaser's decision, with no candidates' publicity, and the agency awards at
once; the result notice (G-11) states the budget, the award price and the saving to the fen. A losing
supplier challenges the result (质疑, G-12): the contract is refused until the agency answers. The losers'
deposits are due back within 5 working days of the award notice, the winner's after the contract (G-04).
A second procurement gets two bids, fails at its deadline (G-13) and is re-run by request for quotation
with the approving body's consent; a competitive negotiation and a consultation follow (`demo/procurement_methods.py`). Every
trade ends with its contract published, the performance accepted (履约验收) and the procurement complete.
A single source is announced and objected to (G-14), and a quotation's result, challenged and upheld, is
re-evaluated by the same panel (重新评审; `demo/procurement_single.py`).
A framework agreement admits three suppliers at their caps and takes orders (`demo/procurement_framework.py`),
and an invited tendering seals two envelopes each, technical and commercial, opened at their own times
(`demo/procurement_envelopes.py`).

The people, drafting, publishing, bidding, deadline and deposit steps are the works demo's (`demo/works.py`,
`demo/bids.py`, `demo/opening.py`, `demo/deposits.py`), run on a procurement plan; the committee is
`demo/purchase_committee.py`.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from rich.table import Table

from demo import deposits
from demo.bids import obtain_documents, submit_bids
from demo.common import (
    AGENCY,
    AUDITOR,
    NOTARY,
    SUPERVISOR,
    Outcome,
    Party,
    SealedBid,
    Step,
    TenderPlan,
    Trade,
    check,
    make_party,
    plain_table,
    shanghai_text,
    yuan,
)
from demo.opening import close_bidding, close_hall, reveal_and_read
from demo.procurement_envelopes import (
    commercial_opening,
    invited_bids,
    invited_published,
    invited_result,
    technical_opening,
)
from demo.procurement_framework import admission, framework_call, framework_evaluation, orders
from demo.procurement_methods import (
    BY_CONSULTATION,
    final_quotes,
    negotiation_published,
    negotiation_result,
    negotiation_rounds,
    quotation,
    quotation_result,
    switch_to_quotation,
)
from demo.procurement_single import (
    reevaluation_awarded,
    reevaluation_ordered,
    reevaluation_result,
    single_source_objection,
    single_source_published,
    single_source_response,
    single_source_result,
)
from demo.purchase_committee import build_pool, draw_committee, evaluate
from demo.works import (
    PEOPLE_STEPS,
    accept_project,
    award_lot,
    draft_tender,
    lawful_deadline,
    publish,
    refuse_early_deadline,
    tender_body,
    upload_documents,
    upload_tender_file,
)
from rules.calendar import default_calendar, local_date
from rules.profiles import PROCUREMENT_OPEN, performance_security_cap

SUPPLIERS = tuple(
    make_party(f"bidder{n}", "bidder", name, "91", 20 + n)
    for n, name in enumerate(
        (
            "江苏康立医疗器械有限公司",
            "南京华影医疗设备有限公司",
            "苏州瑞康医学科技有限公司",
            "江苏博润医疗科技有限公司",
        ),
        start=1,
    )
)
# In procurement the finance department supervises (财政部门); it holds a custody share like the works one.
PROCUREMENT_SUPERVISOR = make_party("supervisor", "supervisor", "南京市财政局政府采购监督管理处", "11", 6)
PROCUREMENT_PARTIES: tuple[Party, ...] = (AGENCY, *SUPPLIERS, PROCUREMENT_SUPERVISOR, NOTARY, AUDITOR)
assert PROCUREMENT_SUPERVISOR.username == SUPERVISOR.username  # the custodian roster finds it by username

PROCUREMENT = TenderPlan(
    title="市第一人民医院医学影像设备采购",
    tenderer="南京市第一人民医院",
    tenderer_credit_code=make_party("", "", "", "12", 70).credit_code,
    qualification="具有独立承担民事责任的能力；具有医疗器械经营许可证；近三年无重大违法记录",
    estimated_price_fen=1_200_000_000,  # 12,000,000.00 yuan: a committee of 7 (G-07)
    prices_fen=(1_116_000_000, 1_087_654_321, 1_142_800_000, 1_098_000_050),
    rebid_price_fen=0,
    absent_bidder=3,  # bidder4 mistypes its sub-account at the bank counter: to suspense, then matched
    saboteur=None,
    same_author=None,
    profile=PROCUREMENT_OPEN,
)
SECOND = TenderPlan(
    title="市妇幼保健院超声诊断设备采购",
    tenderer="南京市妇幼保健院",
    tenderer_credit_code=make_party("", "", "", "12", 71).credit_code,
    qualification="具有独立承担民事责任的能力；具有医疗器械经营许可证",
    estimated_price_fen=300_000_000,  # 3,000,000.00 yuan
    prices_fen=(291_500_000, 287_900_000),
    rebid_price_fen=0,
    saboteur=None,
    same_author=None,
    profile=PROCUREMENT_OPEN,
)
SECOND_PARTIES: tuple[Party, ...] = (AGENCY, *SUPPLIERS[:2])


def _last_day(deadline: str) -> date:
    """The last day of a period that ends at 24:00 Shanghai (the instant itself is already too late)."""
    return local_date(datetime.fromisoformat(deadline) - timedelta(microseconds=1))


def _winner(t: Trade) -> SealedBid:
    """The first of the committee's ranking, which the purchaser accepts."""
    first = t.evaluation["ranking"][0]
    return next(b for b in t.live_bids() if b.bid_id == first)


async def _obligations(t: Trade, rule: str) -> list[dict[str, Any]]:
    rows = await t.p.call("GET", "/api/v1/escrow/obligations", t.centre, params={"tender_id": t.tid})
    return [r for r in rows if r["rule"] == rule]


def _by_supplier(t: Trade, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Obligations by the username of the supplier whose deposit they refund."""
    return {
        b.party.username: r
        for b in t.bidders
        for r in rows
        if r["account"].endswith(f"/{b.party.credit_code}")
    }


# ---------------------------------------------------------------- the notice


async def refuse_deposit_above_two_percent(t: Trade) -> Outcome:
    """A deposit one fen above 2 % of the budget is refused (G-03), naming the lot's field; procurement
    has no absolute cap, so exactly 2 % (above the works cap of 800,000 yuan would be refused there) is
    what the draft asks for."""
    too_much = t.plan.deposit_fen + 1
    deadline = await lawful_deadline(t)
    problem = await t.p.refused(
        "POST", "/api/v1/tenders", t.agency, rule="G-03", json=tender_body(t, deadline, too_much)
    )
    fields = [e.get("field") for e in problem.get("errors", [])]
    check(fields == ["lots[0].deposit_fen"], "the refusal naming lots[0].deposit_fen", fields)
    return (
        f"budget {yuan(t.plan.estimated_price_fen)} yuan, deposit {yuan(too_much)} yuan (2 % + 1 fen) → 422 rule "
        f"G-03 on {fields[0]}; 2 % is {yuan(t.plan.deposit_fen)} yuan, no absolute cap in procurement"
    )


# ---------------------------------------------------------------- the opening


async def reveal_all(t: Trade) -> Outcome:
    """Every supplier reveals its file key in the opening hall; the platform decrypts and reads each bid
    out (唱标)."""
    table = plain_table("supplier", "key revealed", "price (yuan)", "opened by")
    for bid in t.live_bids():
        line = await reveal_and_read(t, bid)
        table.add_row(
            bid.bidder.party.username,
            shanghai_text(t.p.clock.now()),
            yuan(line["declared_price_fen"]),
            str(line["opened_by"]),
        )
    return f"{len(t.live_bids())} envelopes opened by their suppliers' keys and read out", table


# ---------------------------------------------------------------- the decision, the result, the contract


async def award(t: Trade) -> Outcome:
    """With the report the procurement waits for the purchaser's decision: no candidates' notice, no
    publicity. The agency awards at once to the first of the ranking; the result notice (G-11) states each
    lot's budget, award price and saving (budget − award) to the fen."""
    tender = await t.p.call("GET", f"/api/v1/tenders/{t.tid}", t.agency)
    check(tender["status"] == "decision", "status decision", tender["status"])
    check(
        "award" in tender["allowed_actions"],
        "the award among the agency's actions",
        tender["allowed_actions"],
    )
    check(
        not await t.notices("candidates"),
        "no candidates notice in procurement",
        await t.notices("candidates"),
    )
    t.p.clock.advance(timedelta(hours=1))
    winner = _winner(t)
    check(winner.price_fen == min(t.plan.prices_fen), "the lowest price ranked first", winner.price_fen)
    results = await award_lot(t, winner)
    body = results[0]["body"]
    lot = body["lots"][0]
    saving = t.plan.estimated_price_fen - winner.price_fen
    check(body.get("rule") == "G-11", "the result notice under G-11", body.get("rule"))
    check(
        (lot["budget_fen"], lot["price_fen"], lot["saving_fen"])
        == (t.plan.estimated_price_fen, winner.price_fen, saving),
        f"budget {t.plan.estimated_price_fen}, price {winner.price_fen}, saving {saving} (fen)",
        lot,
    )
    t.evaluation["award_day"] = local_date(datetime.fromisoformat(results[0]["published_at"]))
    return (
        f"status decision, no candidates notice; {shanghai_text(t.p.clock.now())}: awarded to {lot['winner']}; "
        f"«{results[0]['title']}» (G-11): budget {yuan(lot['budget_fen'])} yuan, award {yuan(lot['price_fen'])} "
        f"yuan, saving {yuan(lot['saving_fen'])} yuan"
    )


async def _contract_body(t: Trade, security_fen: int) -> dict[str, Any]:
    key = await upload_tender_file(t, "政府采购合同.pdf", b"%PDF-1.7 contract " + secrets.token_bytes(1024))
    return {
        "award_id": t.award["id"],
        "object_key": key,
        "filename": "政府采购合同.pdf",
        "price_fen": int(t.award["price_fen"]),
        "performance_security_fen": security_fen,
        "signed_on": local_date(t.p.clock.now()).isoformat(),
    }


async def challenge(t: Trade) -> Outcome:
    """The supplier ranked second challenges the result (质疑, G-12) the next day; while the challenge is
    unanswered the contract is refused (G-12)."""
    t.p.clock.advance(timedelta(days=1))
    second = next(b for b in t.live_bids() if b.bid_id == t.evaluation["ranking"][1]).bidder
    filed = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/objections",
        second,
        expect=201,
        json={"subject": "result", "text": "中标供应商所投设备的探测器排数不满足采购需求，请复核评审结果"},
    )
    check((filed["subject"], filed["answer"]) == ("result", None), "an unanswered result challenge", filed)
    price = int(t.award["price_fen"])
    body = await _contract_body(t, performance_security_cap(PROCUREMENT_OPEN, price))
    problem = await t.p.refused(
        "POST", f"/api/v1/tenders/{t.tid}/contracts", t.agency, rule="G-12", json=body
    )
    t.evaluation.update(challenge=filed, challenger=second)
    return (
        f"{second.party.username} challenged the result {shanghai_text(filed['filed_at'])}, to be answered by "
        f"the end of {_last_day(filed['answer_due'])} (7 working days); the contract → 422 rule G-12 ({problem['detail']})"
    )


async def contract(t: Trade) -> Outcome:
    """The agency answers the challenge; the signed contract is recorded the day it is signed (G-11: within
    2 working days, no late reason needed); a performance security above 10 % is refused, naming the field."""
    t.p.clock.advance(timedelta(hours=3))
    filed = t.evaluation["challenge"]
    answered = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/objections/{filed['id']}/answer",
        t.agency,
        json={"answer": "经组织原评标委员会复核，中标设备技术参数满足采购需求，维持采购结果"},
    )
    check(answered["answer"] is not None and answered["answered_at"], "the challenge answered", answered)
    price = int(t.award["price_fen"])
    cap = performance_security_cap(PROCUREMENT_OPEN, price)
    body = await _contract_body(t, cap + 1)
    r = await t.p.request("POST", f"/api/v1/tenders/{t.tid}/contracts", t.agency, expect=422, json=body)
    fields = [e.get("field") for e in r.json().get("errors", [])]
    check(fields == ["performance_security_fen"], "the refusal naming performance_security_fen", r.json())
    recorded = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/contracts",
        t.agency,
        expect=201,
        json={**body, "performance_security_fen": cap},
    )
    check(recorded["performance_security_fen"] == cap, f"security {cap}", recorded)
    tender = await t.p.call("GET", f"/api/v1/tenders/{t.tid}")
    check(tender["status"] == "contracted", "status contracted", tender["status"])
    t.evaluation.update(contract_day=local_date(t.p.clock.now()), contract=recorded)
    return (
        f"answered {shanghai_text(answered['answered_at'])}; contract signed and recorded {recorded['signed_on']}, "
        f"{yuan(price)} yuan; security {yuan(cap + 1)} → 422 on performance_security_fen, {yuan(cap)} (10 %) "
        "recorded; status contracted"
    )


async def refunds(t: Trade) -> Outcome:
    """G-04: the unsuccessful suppliers' deposits were due back within 5 working days of the award notice, the
    winner's after the contract; the centre pays them all through one bank batch (pain.001 out, pain.002
    back)."""
    winner = _winner(t).bidder
    losers = _by_supplier(t, await _obligations(t, "G-04-loser"))
    winners = _by_supplier(t, await _obligations(t, "G-04-winner"))
    expected_losers = sorted(b.party.username for b in t.bidders if b is not winner)
    check(sorted(losers) == expected_losers, f"G-04-loser refunds for {expected_losers}", losers)
    check(
        list(winners) == [winner.party.username], f"a G-04-winner refund for {winner.party.username}", winners
    )
    award_day: date = t.evaluation["award_day"]
    due = default_calendar().add_working_days(award_day, 5)
    dues = {r["due_on"] for r in losers.values()}
    check(dues == {due.isoformat()}, f"due {due} (5 working days after {award_day})", dues)
    contract_day: date = t.evaluation["contract_day"]
    winner_due = default_calendar().add_working_days(
        contract_day, PROCUREMENT_OPEN.deposit_refund_after_contract_days
    )
    got = winners[winner.party.username]["due_on"]
    check(got == winner_due.isoformat(), f"due {winner_due} (5 working days after the contract)", got)
    t.p.clock.advance(timedelta(hours=1))
    batch, results = await deposits.bank_round(t)
    check((results["paid"], results["failed"]) == (len(t.bidders), 0), "every deposit paid back", results)
    table = Table("supplier", "rule", "due", "paid (yuan)", "end-to-end", box=None, padding=(0, 2))
    paid = {i["account_code"]: i for i in batch["instructions"]}
    for bidder in t.bidders:
        d = await deposits.deposit_of(t, bidder)
        check(d["status"] == "refunded" and d["held_fen"] == 0, f"{bidder.party.username} refunded", d)
        row = winners.get(bidder.party.username) or losers[bidder.party.username]
        ins = paid[d["account_code"]]
        table.add_row(
            bidder.party.username, row["rule"], row["due_on"], yuan(ins["amount_fen"]), ins["end_to_end_id"]
        )
    return (
        f"{len(losers)} G-04-loser refunds due {due} (award notice {award_day} + 5 working days); "
        f"{winner.party.username}'s G-04-winner due {winner_due} (contract {contract_day} + 5 working days); batch "
        f"{batch['batch']['number']} paid all {len(t.bidders)}",
        table,
    )


# ---------------------------------------------------------------- a procurement that fails and is re-run


def _second(t: Trade) -> Trade:
    if t.sequel is None:
        t.sequel = Trade(t.p, SECOND, SECOND_PARTIES, people=t.people, keys=t.keys, cast=t.cast)
    return t.sequel


def _facts(outcome: Outcome) -> str:
    return outcome if isinstance(outcome, str) else outcome[0]


async def second_published(t: Trade) -> Outcome:
    """The agency drafts a second procurement of one lot, uploads its documents and publishes it."""
    s = _second(t)
    t.p.clock.advance(timedelta(days=1))
    s.project_id = s.project_id or t.project_id
    drafted = _facts(await draft_tender(s))
    await upload_documents(s)
    await publish(s)
    return drafted.split(", status draft")[0] + f" published; bids close {shanghai_text(s.deadline)}"


async def second_bids(t: Trade) -> Outcome:
    """Only two suppliers take part: they obtain the documents, pay by the bank's signed arrival notice and bid."""
    s = _second(t)
    await obtain_documents(s)
    held = await deposits.pay_by_notification(s, s.bidders)
    await submit_bids(s)
    return (
        f"{', '.join(b.party.username for b in s.bidders)}: deposits of {yuan(held[0]['held_fen'])} yuan credited "
        f"by the bank's signed notices; {len(s.bids)} sealed bids with verified receipts"
    )


async def second_fails(t: Trade) -> Outcome:
    """At the deadline fewer than 3 bids stand: the procurement fails (G-13) and the deposits are due back
    under G-04-end."""
    s = _second(t)
    await s.p.move_to(s.deadline)
    await s.p.settle(s.status_is("unsuccessful"), f"the chronograph to end {s.code} at its deadline")
    tender = await s.p.call("GET", f"/api/v1/tenders/{s.tid}", s.agency)
    check(str(tender["outcome_reason"]).startswith("G-13"), "an outcome under G-13", tender["outcome_reason"])
    owed = _by_supplier(s, await _obligations(s, "G-04-end"))
    check(sorted(owed) == sorted(b.party.username for b in s.bidders), "a G-04-end refund for each", owed)
    due = default_calendar().add_working_days(local_date(s.deadline), 5)
    check({r["due_on"] for r in owed.values()} == {due.isoformat()}, f"due {due}", owed)
    s.tender = tender
    return f"{s.code} unsuccessful: {tender['outcome_reason']}; {len(owed)} deposits due back by {due} (G-04-end)"


async def accept_performance(t: Trade) -> Outcome:
    """Weeks on, the hospital accepts the equipment's performance (履约验收): completion is refused until then;
    the acceptance is recorded once and published, and the procurement completes."""
    path = f"/api/v1/tenders/{t.tid}/contracts/{t.evaluation['contract']['id']}/acceptance"
    early = await t.p.request("POST", f"/api/v1/tenders/{t.tid}/complete", t.agency, expect=409)
    check("履约验收" in early.json()["detail"], "completion refused before the acceptance", early.json())
    day = local_date(t.p.clock.now()).isoformat()
    accepted = await t.p.call(
        "POST",
        path,
        t.agency,
        json={
            "result": "passed",
            "accepted_on": day,
            "report": "设备安装调试完毕，各项技术指标经检测符合合同要求",
        },
    )
    check(accepted["acceptance_result"] == "passed", "the performance accepted", accepted)
    again = await t.p.request(
        "POST",
        path,
        t.agency,
        expect=409,
        json={"result": "failed", "accepted_on": day, "report": "x"},
    )
    check(again.status_code == 409, "a second acceptance refused", again.status_code)
    check(bool(await t.notices("acceptance")), "the acceptance published", "no acceptance notice")
    tender = await t.p.call("POST", f"/api/v1/tenders/{t.tid}/complete", t.agency)
    check(tender["status"] == "completed", "status completed", tender["status"])
    return f"completion before it → 409; accepted {day}, published, recorded once (a second → 409); {t.code} completed"


async def summary(t: Trade) -> Outcome:
    """The procurement's public notices, and its figures."""
    notices = await t.notices()
    kinds = [n["kind"] for n in notices]
    check(
        "candidates" not in kinds and kinds[:3] == ["acceptance", "contract", "result"],
        "no candidates; result, contract, acceptance",
        kinds,
    )
    table = plain_table("published (Shanghai)", "kind", "title")
    for n in reversed(notices):
        table.add_row(shanghai_text(n["published_at"]), n["kind"], n["title"])
    price = int(t.award["price_fen"])
    s = _second(t)
    return (
        f"{t.code}: {len(notices)} public notices; budget {yuan(t.plan.estimated_price_fen)} yuan, awarded "
        f"{yuan(price)} yuan, saving {yuan(t.plan.estimated_price_fen - price)} yuan; {s.code} failed (G-13), "
        f"re-run by quotation as {t.others['quotation'].code}; {t.others['negotiation'].code} by negotiation; {t.others['consultation'].code} by consultation; "
        f"{t.others['single_source'].code} single source; {t.others['reevaluation'].code} re-evaluated; "
        f"{t.others['framework'].code} a framework agreement; {t.others['invited'].code} invited, two envelopes",
        table,
    )


PROCUREMENT_STEPS = (
    *PEOPLE_STEPS,
    Step("A deposit of 2 % of the budget and one fen is refused (G-03)", refuse_deposit_above_two_percent),
    Step("The centre accepts the agency's project and its procurement plan (项目受理)", accept_project),
    Step("The agency drafts a procurement of medical equipment, budget 12 million yuan", draft_tender),
    Step("The agency uploads the procurement documents through the presigned URL", upload_documents),
    Step("A bid deadline before the 20th day is refused (G-02)", refuse_early_deadline),
    Step("The agency submits the notice; the centre approves it (custodian roster frozen)", publish),
    Step("The suppliers obtain the documents and a deposit sub-account each", obtain_documents),
    Step(
        "Deposits arrive by the bank's statement; one in suspense is matched by the centre",
        deposits.deposits_arrive,
    ),
    Step("Each supplier seals its bid locally and submits the envelope for a logged receipt", submit_bids),
    Step("The deadline passes; the chronograph signs the closing head and opens the hall", close_bidding),
    Step("Escrow answered at the deadline: every deposit was in place", deposits.eligibility_at_deadline),
    Step("The suppliers reveal their file keys in the opening hall", reveal_all),
    Step("The agency closes the opening hall; the live record", close_hall),
    Step("The centre keeps the expert pool", build_pool),
    Step("A committee of 5 is refused (G-07); 7 are drawn and accept", draw_committee),
    Step("The committee evaluates and signs the report", evaluate),
    Step("The purchaser's decision: the award and the result notice with the saving (G-11)", award),
    Step("A losing supplier challenges the result; the contract waits (G-12)", challenge),
    Step("The challenge is answered; the contract is recorded", contract),
    Step("Deposits back: the losers' under G-04-loser, the winner's under G-04-winner", refunds),
    Step("A second procurement of one lot is published", second_published),
    Step("Only two suppliers bid", second_bids),
    Step("It fails at the deadline (G-13); deposits due back under G-04-end", second_fails),
    Step(
        "The failed procurement is re-run by request for quotation, with the approving body's consent (G-13)",
        switch_to_quotation,
    ),
    Step("Three invited suppliers quote; a panel of three ranks the lowest first", quotation),
    Step("The quotation is awarded; contract published, performance accepted, completed", quotation_result),
    Step("A competitive negotiation is published to three invited suppliers", negotiation_published),
    Step(
        "First offers opened; rounds with each supplier alone; the requirements amended", negotiation_rounds
    ),
    Step("Final quotes sealed as commitments, opened together", final_quotes),
    Step("The panel evaluates the final quotes; award, contract, acceptance", negotiation_result),
    Step(
        "A competitive consultation is published to three invited suppliers (G-13: 10 days)",
        partial(negotiation_published, how=BY_CONSULTATION),
    ),
    Step(
        "Consultation: first offers opened, rounds, amendment",
        partial(negotiation_rounds, how=BY_CONSULTATION),
    ),
    Step("Consultation: final quotes sealed, opened together", partial(final_quotes, how=BY_CONSULTATION)),
    Step(
        "Consultation: comprehensive scoring of the final quotes; award, contract, acceptance",
        partial(negotiation_result, how=BY_CONSULTATION),
    ),
    Step(
        "A single source names one supplier; documents before 5 working days of announcement refused (G-14)",
        single_source_published,
    ),
    Step(
        "Another supplier objects; the documents wait for the purchaser's answer (G-14)",
        single_source_objection,
    ),
    Step(
        "The named supplier alone obtains the documents and responds; a panel of three",
        single_source_response,
    ),
    Step(
        "The single source is awarded; contract published, performance accepted, completed",
        single_source_result,
    ),
    Step("A request for quotation is evaluated and awarded to the lowest quote", reevaluation_awarded),
    Step(
        "A challenge to the result upheld: the award annulled, a re-evaluation ordered (G-12)",
        reevaluation_ordered,
    ),
    Step(
        "The same panel re-evaluates in round 2; another supplier awarded; contract, acceptance",
        reevaluation_result,
    ),
    Step("A framework agreement's open call: four suppliers bid (G-02)", framework_call),
    Step("The bids are opened; a committee of five ranks its candidates", framework_evaluation),
    Step("Three suppliers admitted at their own caps; a single award refused (G-01)", admission),
    Step("A direct order above the cap refused, one at the cap placed; a mini-competition", orders),
    Step("An invited tendering of two envelopes is published to four suppliers", invited_published),
    Step("Each supplier seals a technical envelope without a price and a commercial one", invited_bids),
    Step(
        "The technical envelopes are opened: no price read out; a commercial key refused", technical_opening
    ),
    Step("One supplier fails the technical evaluation; the others' prices read out", commercial_opening),
    Step("A committee of five ranks the three; award, contract, acceptance", invited_result),
    Step("The hospital accepts the equipment's performance; the procurement completes", accept_performance),
    Step("The auditor verifies the ledger and the deposits", deposits.verify_ledger),
    Step("Summary", summary),
)
