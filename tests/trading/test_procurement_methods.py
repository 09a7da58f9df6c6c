"""Procurement methods that admit only invited suppliers: invited tendering (邀请招标) and request for
quotation (询价) — at least 3 invitations (G-13), documents only for the invited (G-01), the quotation's 3
working days (G-13), its panel of 3 and its lowest price."""

from __future__ import annotations

from typing import Any

from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api, shanghai
from tests.trading.test_procurement_open import YUAN, procurement

BUDGET_FEN = 800_000 * YUAN


def quotation(invited: list[Actor], **overrides: Any) -> dict[str, Any]:
    """A request for quotation of office furniture to the `invited` suppliers."""
    body = {
        "method": "rfq",
        "title": "市政务服务中心办公家具询价采购",
        "evaluation_method": "lowest_evaluated_price",
        "invited": [a.organisation_id for a in invited],
        "lots": [{"title": "办公家具", "estimated_price_fen": BUDGET_FEN, "deposit_fen": 0}],
    }
    return procurement(**{**body, **overrides})


async def _publish(api: Api, agency: Actor, body: dict[str, Any]) -> Any:
    tender = await api.draft(agency, **body)
    await api.document(agency, tender["id"], b"%PDF-1.7 quotation documents")
    return tender, await api.publish(agency, tender["id"])


async def test_an_invited_procedure_needs_three_invitations_and_admits_only_the_invited(api: Api) -> None:
    agency = await api.organisation("agency")
    suppliers = [await api.organisation("bidder") for _ in range(3)]
    body = procurement(method="invited", invited=[s.organisation_id for s in suppliers[:2]])
    tender, r = await _publish(api, agency, body)
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "G-13" and r.json()["errors"][0]["field"] == "invited"
    version = (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()["version"]
    patch = await api.patch(
        f"/api/v1/tenders/{tender['id']}",
        agency,
        json={"invited": [s.organisation_id for s in suppliers]},
        headers={"If-Match": str(version)},
    )
    assert patch.status_code == 200, patch.text
    r = await api.publish(agency, tender["id"])
    assert r.status_code == 200, r.text
    await api.run_jobs()
    # the agency sees whom it invited; a supplier does not see the others (W-20)
    assert (
        len((await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()["invited_organisations"]) == 3
    )
    assert (await api.get(f"/api/v1/tenders/{tender['id']}", suppliers[0])).json()[
        "invited_organisations"
    ] is None
    stranger = await api.organisation("bidder")
    refused = await api.post(f"/api/v1/tenders/{tender['id']}/documents/obtain", stranger)
    assert refused.status_code == 403, refused.text
    assert refused.json()["rule"] == "G-01"
    for supplier in suppliers:
        assert (
            await api.post(f"/api/v1/tenders/{tender['id']}/documents/obtain", supplier)
        ).status_code == 200
    invited = await api.get("/api/v1/notifications", suppliers[0])
    assert any(n["kind"] == "tender.invited" for n in invited.json()), invited.text


async def test_invitations_belong_to_invited_procedures_and_methods_to_their_sector(api: Api) -> None:
    agency = await api.organisation("agency")
    supplier = await api.organisation("bidder")
    open_with_invitations = api.tender_body(**procurement(invited=[supplier.organisation_id]))
    r = await api.post("/api/v1/tenders", agency, json=open_with_invitations)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "invited"
    works_invited = api.tender_body(method="rfq")
    r = await api.post("/api/v1/tenders", agency, json=works_invited)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "method"


async def test_a_quotation_closes_after_three_working_days_and_is_priced_lowest(api: Api) -> None:
    agency = await api.organisation("agency")
    suppliers = [await api.organisation("bidder") for _ in range(3)]
    scored = api.tender_body(**quotation(suppliers, evaluation_method="comprehensive"))
    r = await api.post("/api/v1/tenders", agency, json=scored)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "evaluation_method"
    # documents from Mon 2026-03-02: three working days later is Thu 03-05; Wed is too early
    early = quotation(suppliers, bid_deadline="2026-03-04T10:00:00+08:00")
    _tender, r = await _publish(api, agency, early)
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "G-13" and r.json()["earliest_deadline_day"] == "2026-03-05"


async def test_a_quotation_runs_to_the_lowest_price_with_a_panel_of_three(api: Api) -> None:
    agency = await api.organisation("agency")
    suppliers = [await api.organisation("bidder") for _ in range(3)]
    tender = await api.published(agency, **quotation(suppliers))
    prices = [BUDGET_FEN - 30_000 * YUAN, BUDGET_FEN - 52_000 * YUAN - 7, BUDGET_FEN - 1]
    bids = [await api.bid(s, tender, p) for s, p in zip(suppliers, prices, strict=True)]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    await api.evaluate(agency, tender["id"], experts=3)
    read = (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()
    assert read["status"] == "decision"
    winner = bids[1]
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/award",
        agency,
        json={"lots": [{"lot_id": winner.lot_id, "bid_id": winner.bid_id}]},
    )
    assert r.status_code == 201, r.text
    notices = (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    [result] = [n for n in notices if n["kind"] == "result"]
    assert result["body"]["lots"][0]["saving_fen"] == 52_000 * YUAN + 7


async def test_a_quotation_with_two_quotes_fails_under_g13(api: Api) -> None:
    agency = await api.organisation("agency")
    suppliers = [await api.organisation("bidder") for _ in range(3)]
    tender = await api.published(agency, **quotation(suppliers))
    for supplier in suppliers[:2]:
        await api.bid(supplier, tender, BUDGET_FEN - 1)
    await api.at(DEADLINE)
    read = (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()
    assert read["status"] == "unsuccessful" and read["outcome_reason"].startswith("G-13")


def single_source(supplier: Actor, **overrides: Any) -> dict[str, Any]:
    """A single source of a licensed software upgrade from `supplier`, its documents from Tue 2026-03-10."""
    body = {
        "method": "single_source",
        "title": "不动产登记信息系统原厂升级服务单一来源采购",
        "qualification": "原系统著作权人，升级服务只能由其提供（采购法 31(1)）",
        "evaluation_method": "lowest_evaluated_price",
        "invited": [supplier.organisation_id],
        "documents_from": "2026-03-10T09:00:00+08:00",
        "lots": [{"title": "升级服务", "estimated_price_fen": BUDGET_FEN, "deposit_fen": 0}],
    }
    return procurement(**{**body, **overrides})


async def test_a_single_source_is_announced_for_five_working_days_and_objections_hold_it(api: Api) -> None:
    agency = await api.organisation("agency")
    supplier, other = await api.organisation("bidder"), await api.organisation("bidder")
    # published Mon 2026-03-02: announced through Mon 03-09, documents from Tue 03-10 at the earliest
    tender, r = await _publish(
        api, agency, single_source(supplier, documents_from="2026-03-09T09:00:00+08:00")
    )
    assert r.status_code == 422, r.text
    assert r.json()["rule"] == "G-14" and r.json()["earliest_documents_day"] == "2026-03-10"
    _two, r = await _publish(
        api, agency, single_source(supplier, invited=[supplier.organisation_id, other.organisation_id])
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "invited"
    tender, r = await _publish(api, agency, single_source(supplier))
    assert r.status_code == 200, r.text
    notices = (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    announced = notices[0]["body"]["single_source"]
    assert announced["credit_code"] == supplier.credit_code and announced["objections_until"] == "2026-03-09"
    # another supplier objects; the documents wait for the purchaser's answer
    objection = await api.post(
        f"/api/v1/tenders/{tender['id']}/objections",
        other,
        json={"subject": "single_source", "text": "本公司亦能提供同等升级服务"},
    )
    assert objection.status_code == 201, objection.text
    await api.at(api.clock.now().replace(day=10, hour=2))
    read = (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()
    assert read["status"] == "published" and "G-14" in read["paused_reason"]
    answer = await api.post(
        f"/api/v1/tenders/{tender['id']}/objections/{objection.json()['id']}/answer",
        agency,
        json={"answer": "经专业人员论证，升级服务涉及原厂源代码，维持单一来源"},
    )
    assert answer.status_code == 200
    await api.tick()
    assert (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()["status"] == "tendering"
    # an objection after the announcement is refused
    late = await api.post(
        f"/api/v1/tenders/{tender['id']}/objections", other, json={"subject": "single_source", "text": "x"}
    )
    assert late.status_code == 422 and late.json()["rule"] == "G-14"
    # only the named supplier obtains the documents; its one response opens and goes to a panel of three
    assert (await api.post(f"/api/v1/tenders/{tender['id']}/documents/obtain", other)).status_code == 403
    bid = await api.bid(supplier, tender, BUDGET_FEN - 12_345)
    await api.at(DEADLINE)
    assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    await api.evaluate(agency, tender["id"], experts=3)
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/award",
        agency,
        json={"lots": [{"lot_id": bid.lot_id, "bid_id": bid.bid_id}]},
    )
    assert r.status_code == 201, r.text
    assert r.json()[0]["price_fen"] == BUDGET_FEN - 12_345


async def test_a_procurement_that_failed_for_too_few_suppliers_switches_method_with_consent(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency, **procurement())
    bidders = [await api.organisation("bidder") for _ in range(2)]
    for bidder in bidders:
        await api.bid(bidder, tender, 11_000_000 * YUAN)
    await api.at(DEADLINE)
    path = f"/api/v1/tenders/{tender['id']}/switch-method"
    approval = {"body": "南京市财政局", "number": "宁财采〔2026〕17号", "approved_on": "2026-03-24"}
    body = {"method": "rfq", "approval": approval, "invited": [b.organisation_id for b in bidders]}
    # the approval cannot come before it was given
    early = await api.post(path, agency, json=body)
    assert early.status_code == 422 and early.json()["errors"][0]["field"] == "approval.approved_on"
    await api.at(DEADLINE.replace(day=24))
    other = await api.organisation("agency")
    assert (await api.post(path, other, json=body)).status_code in (403, 404)
    same = await api.post(path, agency, json={**body, "method": "open", "invited": []})
    assert same.status_code == 422 and same.json()["errors"][0]["field"] == "method"
    r = await api.post(path, agency, json=body)
    assert r.status_code == 201, r.text
    draft = r.json()
    assert draft["method"] == "rfq" and draft["status"] == "draft"
    assert draft["evaluation_method"] == "lowest_evaluated_price"
    assert draft["method_approval"]["number"] == "宁财采〔2026〕17号"
    assert draft["method_approval"]["from_method"] == "open"
    assert (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()["status"] == "retender"
    # once re-run, the failed procurement cannot switch again
    assert (await api.post(path, agency, json=body)).status_code == 409


async def test_only_a_procurement_failed_for_too_few_suppliers_may_switch(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)  # a works tender
    await api.at(DEADLINE)  # no bids: it fails under W-09
    approval = {"body": "南京市住建局", "number": "1", "approved_on": "2026-03-23"}
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/switch-method", agency, json={"method": "rfq", "approval": approval}
    )
    assert r.status_code == 409 and r.json()["rule"] == "G-13"


async def test_a_quotation_clarified_late_keeps_three_working_days_to_the_quotes(api: Api) -> None:
    agency = await api.organisation("agency")
    suppliers = [await api.organisation("bidder") for _ in range(3)]
    tender = await api.published(agency, **quotation(suppliers))
    # Fri 2026-03-20, the quotes due Mon 03-23: three working days from Friday is Wed 03-25
    await api.at(shanghai(2026, 3, 20, 9))
    r = await api.post(
        f"/api/v1/tenders/{tender['id']}/clarifications",
        agency,
        json={"text": "交货地点改为市政务服务中心二楼", "affects_bids": True},
    )
    assert r.status_code == 201, r.text
    read = (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()
    assert read["bid_deadline"].startswith("2026-03-25")
    notices = (await api.get("/api/v1/notices", params={"tender_code": tender["code"]})).json()["items"]
    [correction] = [n for n in notices if n["kind"] == "correction"]
    assert correction["body"]["bid_deadline"]["days"] == 3
    assert correction["body"]["bid_deadline"]["rule"] is None  # W-02 is the works rule
