"""The supervision lights of a trade's open steps (S-01): the purchaser's decision, the contract, answers to
challenges, complaint decisions — each with its due day and rule, yellow a working day before, red after;
the agency sees its own trade's, supervisors every trade's, a bidder none."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from rules.calendar import SHANGHAI
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api, shanghai
from tests.trading.test_procurement_open import BUDGET_FEN, YUAN, procurement


async def _reported(api: Api) -> tuple[Actor, dict[str, Any], list[Any]]:
    """A procurement whose report came in on Mon 2026-03-23 (the day of the deadline), awaiting the
    purchaser's decision."""
    agency = await api.organisation("agency")
    tender = await api.published(agency, **procurement())
    bids = [await api.bid(await api.organisation("bidder"), tender, BUDGET_FEN - i * YUAN) for i in range(3)]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    await api.evaluate(agency, tender["id"], experts=7)
    return agency, tender, bids


def _steps(answer: Any, tender: dict[str, Any]) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    return [d for d in answer.json() if d["tender_id"] == tender["id"]]


async def test_the_purchasers_decision_goes_yellow_then_red(api: Api) -> None:
    agency, tender, _bids = await _reported(api)
    report_day = api.clock.now().astimezone(SHANGHAI).date()
    supervisor = await api.organisation("supervisor")
    [decision] = _steps(await api.get("/api/v1/supervision/deadlines", supervisor), tender)
    assert decision["step"] == "decision" and decision["by"] == "agency"
    assert decision["light"] == "green"
    due = decision["due"]
    assert due > report_day.isoformat()
    # the working day before the due day: yellow; the day after: red, and the red filter finds it
    due_day = date.fromisoformat(due)
    await api.at(shanghai(due_day.year, due_day.month, due_day.day) - timedelta(days=1))
    [decision] = _steps(await api.get(f"/api/v1/tenders/{tender['id']}/deadlines", agency), tender)
    assert decision["light"] == "yellow"
    await api.at(shanghai(due_day.year, due_day.month, due_day.day) + timedelta(days=1))
    red = _steps(await api.get("/api/v1/supervision/deadlines", supervisor, params={"light": "red"}), tender)
    assert [d["step"] for d in red] == ["decision"]
    # a bidder sees no trade's lights
    bidder = await api.organisation("bidder")
    assert (await api.get("/api/v1/supervision/deadlines", bidder)).status_code == 403
    assert (await api.get(f"/api/v1/tenders/{tender['id']}/deadlines", bidder)).status_code == 404


async def test_after_the_award_the_contract_and_an_open_challenge_have_their_lights(api: Api) -> None:
    agency, tender, bids = await _reported(api)
    winner = min(bids, key=lambda b: b.price_fen)
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/award",
        agency,
        json={"lots": [{"lot_id": winner.lot_id, "bid_id": winner.bid_id}]},
    )
    assert r.status_code == 201, r.text
    loser = max(bids, key=lambda b: b.price_fen)
    challenge = await api.post(
        f"/api/v1/tenders/{tender['id']}/objections",
        loser.bidder,
        json={"subject": "result", "text": "评分有误"},
    )
    assert challenge.status_code == 201, challenge.text
    steps = _steps(await api.get(f"/api/v1/tenders/{tender['id']}/deadlines", agency), tender)
    assert {(d["step"], d["rule"]) for d in steps} == {("contract", "G-11"), ("answer", "G-12")}
    [answer] = [d for d in steps if d["step"] == "answer"]
    # due by 24:00 Shanghai on the day named (the instant is the next day's start, P-03)
    due_instant = datetime.fromisoformat(challenge.json()["answer_due"])
    assert answer["due"] == (due_instant.astimezone(SHANGHAI) - timedelta(microseconds=1)).date().isoformat()
    await api.post(
        f"/api/v1/tenders/{tender['id']}/objections/{challenge.json()['id']}/answer",
        agency,
        json={"answer": "维持"},
    )
    steps = _steps(await api.get(f"/api/v1/tenders/{tender['id']}/deadlines", agency), tender)
    assert [d["step"] for d in steps] == ["contract"]
