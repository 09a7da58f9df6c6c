"""Open framework agreements (开放式框架协议, 110号令; G-01): fixed prices and terms published from the draft,
suppliers applying to join during the term, the purchaser admitting or refusing with reasons, suppliers
leaving; orders by rotation (顺序轮候) — and the attacks on each."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.helpers import Actor, Api
from tests.trading.test_framework import BUDGET_FEN, YUAN, F, admitted, framework, notices, term_end

PRICE = 2_800_000 * YUAN


async def opened(api: Api, allocation: str = "choice") -> tuple[Actor, dict[str, Any], str]:
    """An open framework of one lot at PRICE, made from its draft: its agency, the tender, its URL."""
    agency = await api.organisation("agency")
    draft = await api.draft(agency, **framework())
    url = F.format(draft["id"])
    lot = draft["lots"][0]["id"]
    body = {
        "lots": [{"lot_id": lot, "price_fen": PRICE, "terms": "台式计算机 单价 5800 元 三年上门保修"}],
        "valid_until": term_end(api, 180).isoformat(),
        "allocation": allocation,
    }
    r = await api.post(f"{url}/open", agency, json=body)
    assert r.status_code == 201, r.text
    assert (r.json()["kind"], r.json()["allocation"], r.json()["admissions"]) == ("open", allocation, [])
    centre = await api.bootstrap_centre()
    d = await api.post(f"/api/v1/tenders/{draft['id']}/review", centre, json={"decision": "approved"})
    assert d.status_code == 200 and d.json()["status"] == "awarded", d.text
    return agency, draft, url


async def test_an_open_framework_call_reaches_the_public_only_through_the_centre_review(api: Api) -> None:
    agency = await api.organisation("agency")
    draft = await api.draft(agency, **framework())
    url, lot = F.format(draft["id"]), draft["lots"][0]["id"]
    entry: dict[str, Any] = {"lot_id": lot, "price_fen": PRICE, "terms": "条款"}
    body = {"lots": [entry], "valid_until": term_end(api, 180).isoformat()}
    assert (await api.post(f"{url}/open", agency, json=body)).status_code == 201
    supplier = await api.organisation("bidder")
    # under review: a draft nobody else sees, no call on the board, nobody joins, no second submission
    tender = (await api.get(f"/api/v1/tenders/{draft['id']}", agency)).json()
    assert tender["status"] == "draft"
    assert (await api.get(f"/api/v1/tenders/{draft['id']}", supplier)).status_code == 404
    notices = (await api.get(f"/api/v1/notices?tender_id={draft['id']}", None)).json()
    assert not [n for n in notices.get("items", notices) if n.get("kind") == "framework_call"]
    r = await api.post(f"{url}/applications", supplier, json={"lot_id": lot})
    assert r.status_code in (404, 409), r.text
    assert (await api.post(f"{url}/open", agency, json=body)).status_code == 409
    # refused with reasons: still a draft; rewritten at a lower price and submitted again, then approved
    centre = await api.bootstrap_centre()
    review = f"/api/v1/tenders/{draft['id']}/review"
    r = await api.post(review, centre, json={"decision": "refused", "reasons": "条款不完整"})
    assert r.status_code == 200 and r.json()["status"] == "draft", r.text
    entry |= {"price_fen": PRICE - 1, "terms": "台式计算机 单价 5800 元 三年上门保修"}
    assert (await api.post(f"{url}/open", agency, json=body)).status_code == 201
    # a supplier cannot approve the call, the agency cannot approve its own
    assert (await api.post(review, supplier, json={"decision": "approved"})).status_code in (403, 404)
    assert (await api.post(review, agency, json={"decision": "approved"})).status_code in (403, 404)
    r = await api.post(review, centre, json={"decision": "approved"})
    assert r.status_code == 200 and r.json()["status"] == "awarded", r.text
    shown = (await api.get(url, supplier)).json()
    assert shown["terms"][lot]["price_fen"] == PRICE - 1
    notices = (await api.get(f"/api/v1/notices?tender_id={draft['id']}", None)).json()
    calls = [n for n in notices.get("items", notices) if n.get("kind") == "framework_call"]
    assert len(calls) == 1 and calls[0]["tender_id"] == draft["id"], notices
    r = await api.post(f"{url}/applications", supplier, json={"lot_id": lot})
    assert r.status_code == 201, r.text


async def joined(api: Api, agency: Actor, tender: dict[str, Any], url: str) -> Actor:
    """A new supplier that applied and was admitted."""
    supplier = await api.organisation("bidder")
    r = await api.post(f"{url}/applications", supplier, json={"lot_id": tender["lots"][0]["id"]})
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    d = await api.post(f"{url}/applications/{r.json()['id']}/decision", agency, json={"decision": "admitted"})
    assert d.status_code == 200 and d.json()["status"] == "admitted", d.text
    return supplier


async def test_suppliers_join_an_open_framework_at_its_fixed_price_and_are_refused_with_reasons(
    api: Api,
) -> None:
    agency, tender, url = await opened(api)
    assert (await api.get(f"/api/v1/tenders/{tender['id']}", agency)).json()["status"] == "awarded"
    [call] = await notices(api, _fw(tender), "framework_call")
    assert "征集公告" in call["title"]
    first = await joined(api, agency, tender, url)
    other = await api.organisation("bidder")
    r = await api.post(f"{url}/applications", other, json={"lot_id": tender["lots"][0]["id"]})
    application = r.json()["id"]
    again = await api.post(f"{url}/applications", other, json={"lot_id": tender["lots"][0]["id"]})
    assert again.status_code == 409, again.text
    no_reasons = await api.post(
        f"{url}/applications/{application}/decision", agency, json={"decision": "refused"}
    )
    assert no_reasons.status_code == 422 and no_reasons.json()["errors"][0]["field"] == "reasons"
    refused = await api.post(
        f"{url}/applications/{application}/decision",
        agency,
        json={"decision": "refused", "reasons": "未提供有效的售后服务承诺"},
    )
    assert refused.status_code == 200 and refused.json()["reasons"] == "未提供有效的售后服务承诺"
    agreement = (await api.get(url)).json()
    assert [(a["organisation_id"], a["cap_fen"], a["bid_id"]) for a in agreement["admissions"]] == [
        (first.organisation_id, PRICE, None)
    ]
    assert len(await notices(api, _fw(tender), "framework_admission")) == 1
    # the applicant sees its own application only; the agency all of them
    mine = (await api.get(f"{url}/applications", other)).json()
    assert [a["status"] for a in mine] == ["refused"]
    assert len((await api.get(f"{url}/applications", agency)).json()) == 2
    # an order at no more than the fixed price
    order = {
        "lot_id": tender["lots"][0]["id"],
        "organisation_id": first.organisation_id,
        "subject": "台式计算机 20 台",
    }
    r = await api.post(f"{url}/orders", agency, json=order | {"price_fen": PRICE + 1})
    assert r.status_code == 422 and r.json()["rule"] == "G-01", r.text
    assert (await api.post(f"{url}/orders", agency, json=order | {"price_fen": PRICE})).status_code == 201


async def test_a_supplier_cannot_admit_itself_nor_another_agency_admit_it(api: Api) -> None:
    agency, tender, url = await opened(api)
    supplier = await api.organisation("bidder")
    r = await api.post(f"{url}/applications", supplier, json={"lot_id": tender["lots"][0]["id"]})
    decision = f"{url}/applications/{r.json()['id']}/decision"
    assert (await api.post(decision, supplier, json={"decision": "admitted"})).status_code == 403
    assert (
        await api.post(decision, await api.organisation("agency"), json={"decision": "admitted"})
    ).status_code == 404
    assert (
        await api.post(decision, await api.bootstrap_centre(), json={"decision": "admitted"})
    ).status_code == 403
    assert (await api.get(url)).json()["admissions"] == []
    # nor can an agency apply for itself
    r = await api.post(f"{url}/applications", agency, json={"lot_id": tender["lots"][0]["id"]})
    assert r.status_code == 403


async def test_nobody_joins_a_closed_framework(api: Api) -> None:
    fw = await admitted(api)
    r = await api.post(f"{fw.url}/applications", fw.outsider.bidder, json={"lot_id": fw.lot_id})
    assert r.status_code == 422 and r.json()["rule"] == "G-01", r.text
    admission = fw.agreement["admissions"][0]
    bidder = next(b.bidder for b in fw.admitted if b.bidder.organisation_id == admission["organisation_id"])
    left = await api.post(f"{fw.url}/admissions/{admission['id']}/leave", bidder)
    assert left.status_code == 422 and left.json()["rule"] == "G-01", left.text


async def test_nobody_joins_after_the_term(api: Api) -> None:
    _agency, tender, url = await opened(api)
    api.clock.set(api.clock.now() + timedelta(days=182))
    r = await api.post(
        f"{url}/applications", await api.organisation("bidder"), json={"lot_id": tender["lots"][0]["id"]}
    )
    assert r.status_code == 422 and r.json()["rule"] == "G-01", r.text


async def test_an_open_framework_is_made_only_from_its_draft_at_no_more_than_the_budget(api: Api) -> None:
    agency = await api.organisation("agency")
    draft = await api.draft(agency, **framework())
    lot = draft["lots"][0]["id"]
    body = {
        "lots": [{"lot_id": lot, "price_fen": BUDGET_FEN + 1, "terms": "条款"}],
        "valid_until": str(term_end(api)),
    }
    r = await api.post(f"{F.format(draft['id'])}/open", agency, json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "lots[0].price_fen", r.text
    under_review = await api.draft(agency, **framework())
    await api.document(agency, under_review["id"], b"%PDF-1.7 tender documents")
    assert (await api.post(f"/api/v1/tenders/{under_review['id']}/publish", agency)).status_code == 200
    body["lots"] = [{"lot_id": under_review["lots"][0]["id"], "price_fen": PRICE, "terms": "条款"}]
    r = await api.post(f"{F.format(under_review['id'])}/open", agency, json=body)
    assert r.status_code == 409, r.text
    published = await api.published(agency, **framework())
    body["lots"] = [{"lot_id": published["lots"][0]["id"], "price_fen": PRICE, "terms": "条款"}]
    r = await api.post(f"{F.format(published['id'])}/open", agency, json=body)
    assert r.status_code == 409 and r.json()["rule"] == "G-01", r.text


async def test_orders_by_rotation_take_turns_skip_a_supplier_that_left_and_are_checked_by_the_archive(
    api: Api, tmp_path: Path
) -> None:
    from tests.archive.test_archive import _key, _resign, _verify

    agency, tender, url = await opened(api, allocation="rotation")
    a = await joined(api, agency, tender, url)
    api.clock.set(api.clock.now() + timedelta(minutes=1))
    b = await joined(api, agency, tender, url)
    api.clock.set(api.clock.now() + timedelta(minutes=1))
    c = await joined(api, agency, tender, url)
    lot = tender["lots"][0]["id"]
    order = {"lot_id": lot, "subject": "台式计算机 20 台"}

    async def rotate() -> str:
        api.clock.set(api.clock.now() + timedelta(minutes=1))
        r = await api.post(f"{url}/rotations", agency, json=order)
        assert r.status_code == 201 and r.json()["price_fen"] == PRICE, r.text
        return str(r.json()["organisation_id"])

    assert [await rotate() for _ in range(4)] == [
        a.organisation_id,
        b.organisation_id,
        c.organisation_id,
        a.organisation_id,
    ]
    # b leaves: its turn passes to c
    [mine] = [
        x for x in (await api.get(url)).json()["admissions"] if x["organisation_id"] == b.organisation_id
    ]
    assert (await api.post(f"{url}/admissions/{mine['id']}/leave", b)).status_code == 200
    assert await rotate() == c.organisation_id
    # the purchaser cannot skip the rotation, by a direct order or a mini-competition
    direct = {
        "lot_id": lot,
        "organisation_id": c.organisation_id,
        "price_fen": PRICE,
        "subject": "台式计算机",
    }
    r = await api.post(f"{url}/orders", agency, json=direct)
    assert r.status_code == 422 and r.json()["rule"] == "G-01", r.text
    closes = (api.clock.now() + timedelta(hours=24)).isoformat()
    r = await api.post(
        f"{url}/competitions", agency, json={"lot_id": lot, "closes_at": closes, "subject": "台式计算机"}
    )
    assert r.status_code == 422 and r.json()["rule"] == "G-01", r.text
    # the rotation route is for rotation frameworks only, and for the purchaser only
    assert (await api.post(f"{url}/rotations", a, json=order)).status_code == 403
    published = await notices(api, _fw(tender), "framework_order")
    assert len(published) == 5

    done = await api.post(f"/api/v1/tenders/{tender['id']}/complete", agency)
    assert done.status_code == 200, done.text
    await api.tick()
    got = (await api.get(f"/api/v1/tenders/{tender['id']}/archive", agency)).json()
    code, output = _verify(tmp_path, got, _key(api))
    assert code == 0 and "5 order(s) under the framework agreement" in output, output
    # an order moved to another supplier out of turn, even re-signed, is caught
    forged = copy.deepcopy(got)
    forged["manifest"]["framework"]["orders"][1]["organisation_id"] = c.organisation_id
    _resign(forged, api.runtime.signer)
    code, output = _verify(tmp_path, forged, _key(api))
    assert code == 1 and "not the supplier whose turn it was" in output, output
    # and so is an order to the supplier that had left
    forged = copy.deepcopy(got)
    forged["manifest"]["framework"]["orders"][4]["organisation_id"] = b.organisation_id
    _resign(forged, api.runtime.signer)
    code, output = _verify(tmp_path, forged, _key(api))
    assert code == 1 and "not admitted at the time" in output, output


async def test_a_choice_framework_takes_no_rotation_order(api: Api) -> None:
    agency, tender, url = await opened(api)
    await joined(api, agency, tender, url)
    r = await api.post(
        f"{url}/rotations", agency, json={"lot_id": tender["lots"][0]["id"], "subject": "台式计算机"}
    )
    assert r.status_code == 422 and r.json()["rule"] == "G-01", r.text


def _fw(tender: dict[str, Any]) -> Any:
    """What `notices` reads of a framework: its tender."""
    return SimpleNamespace(tender=tender)
