"""Every rule this slice enforces, broken through the HTTP API and met at its legal boundary.

Each refusal is checked exactly: the status, the `rule` of the RFC 9457 problem and the fields a client acts
on. Instants are Asia/Shanghai wall times on the 2026 calendar; the clock only moves when a test moves it.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import Response

from rules.calendar import SHANGHAI
from storage.db import transaction
from tests.conftest import Database
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api, SealedBid
from trading import chronograph
from trading import jobs as trading_jobs

T = "/api/v1/tenders"
PRICE = 4_800_000_000
STEP = 10_000_000
REPORT_AT = datetime(2026, 3, 25, 9, tzinfo=SHANGHAI)  # Wed: publicity's 3rd day is Sat 03-28 → Mon 03-30
PUBLICITY_ENDS = datetime(2026, 3, 31, 0, tzinfo=SHANGHAI)  # 24:00 on Mon 03-30 (P-01, P-02, P-03)
AWARD_AT = datetime(2026, 4, 1, 9, tzinfo=SHANGHAI)  # + 30 days is Fri 05-01, Labour Day → Wed 05-06
CONTRACT_DUE = "2026-05-06"


def sh(y: int, m: int, d: int, hh: int = 9, mm: int = 0, ss: int = 0) -> datetime:
    """An Asia/Shanghai wall time as an aware UTC instant."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=SHANGHAI).astimezone(UTC)


def at(text: str) -> datetime:
    """An instant from the API (ISO 8601, `Z` or an offset)."""
    return datetime.fromisoformat(text)


def refused(r: Response, rule: str, status: int = 422) -> dict[str, Any]:
    """The body of a problem that names `rule`."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["rule"] == rule, body
    assert body["type"] == f"tag:ggzy,2026:rule/{rule}"
    assert body["status"] == status
    return body


def problem(r: Response, status: int) -> dict[str, Any]:
    """The body of a problem that names no rule."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert "rule" not in body, body
    return body


# ---------------------------------------------------------------- driving a trade


async def with_bids(api: Api, n: int, **overrides: Any) -> tuple[Actor, dict[str, Any], list[SealedBid]]:
    """A published tender and `n` bids from `n` bidders on its first lot."""
    agency = await api.organisation("agency")
    tender = await api.published(agency, **overrides)
    bids = [await api.bid(await api.organisation("bidder"), tender, PRICE - i * STEP) for i in range(n)]
    return agency, tender, bids


async def opened(api: Api, n: int = 3, **overrides: Any) -> tuple[Actor, dict[str, Any], list[SealedBid]]:
    agency, tender, bids = await with_bids(api, n, **overrides)
    assert await api.at(DEADLINE) == [(tender["code"], "opening")]
    return agency, tender, bids


async def evaluated(
    api: Api, n: int = 3, revealed: int | None = None
) -> tuple[Actor, dict[str, Any], list[SealedBid]]:
    """A tender in evaluation; the first `revealed` bids (all by default) were opened in the window and,
    under the tender's "revoke" policy, the others revoked at its end (E-03)."""
    agency, tender, bids = await opened(api, n, opening_policy="revoke")
    for bid in bids[: n if revealed is None else revealed]:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    assert await api.at(AFTER_WINDOW) == [(tender["code"], "evaluation")]
    return agency, tender, bids


async def request_draw(
    api: Api, agency: Actor, tender: dict[str, Any], quotas: list[int], representative: bool = False
) -> Response:
    """The agency asks for a committee with `quotas[i]` experts of the i-th municipal specialty and, if
    `representative`, a seat for one of its own users."""
    await api.seed_specialties()
    body: dict[str, Any] = {
        "evaluation_at": (api.clock.now() + timedelta(hours=2)).isoformat(),
        "quotas": [
            {"specialty": code, "seats": n} for code, n in zip(["A0201", "A0202"], quotas, strict=False)
        ],
    }
    if representative:
        body["representative_user_id"] = (await api.get("/api/v1/auth/me", agency)).json()["user_id"]
    return await api.post(f"/api/v1/evaluation/tenders/{tender['id']}/draws", agency, json=body)


async def candidates_notice(api: Api, tender: dict[str, Any]) -> dict[str, Any]:
    [notice] = await notices(api, tender_code=tender["code"], kind="candidates")
    return notice


async def in_publicity(api: Api) -> tuple[Actor, dict[str, Any], list[SealedBid]]:
    """The committee evaluates from REPORT_AT and its signed report puts the candidates in publicity: with
    equal scores, bid 2 (lowest price) first."""
    agency, tender, bids = await evaluated(api)
    api.clock.set(REPORT_AT)
    await api.evaluate(agency, tender["id"])
    return agency, tender, bids


async def award(api: Api, agency: Actor, tender: dict[str, Any], bid: SealedBid) -> Response:
    return await api.post(
        f"{T}/{tender['id']}/award", agency, json={"lots": [{"lot_id": bid.lot_id, "bid_id": bid.bid_id}]}
    )


async def awarded(api: Api) -> tuple[Actor, dict[str, Any], list[SealedBid], dict[str, Any]]:
    agency, tender, bids = await in_publicity(api)
    api.clock.set(AWARD_AT)
    r = await award(api, agency, tender, bids[2])
    assert r.status_code == 201, r.text
    return agency, tender, bids, r.json()[0]


async def contract(
    api: Api, agency: Actor, tender: dict[str, Any], award_row: dict[str, Any], **overrides: Any
) -> Response:
    doc = await api.document(
        agency, tender["id"], b"%PDF contract " + secrets.token_bytes(16), kind="contract", filename="c.pdf"
    )
    body = {
        "award_id": award_row["id"],
        "object_key": doc["object_key"],
        "filename": "contract.pdf",
        "price_fen": award_row["price_fen"],
        "performance_security_fen": award_row["price_fen"] // 10,
        "signed_on": api.clock.now().astimezone(SHANGHAI).date().isoformat(),
    }
    body.update(overrides)
    return await api.post(f"{T}/{tender['id']}/contracts", agency, json=body)


async def obtain(api: Api, bidder: Actor, tender: dict[str, Any]) -> None:
    r = await api.post(f"{T}/{tender['id']}/documents/obtain", bidder)
    assert r.status_code == 200, r.text


async def upload_bid(
    api: Api, bidder: Actor, tender: dict[str, Any], content: bytes | None = None, price: int = PRICE
) -> str:
    """Upload a sealed envelope; return its object key (the bid is not submitted yet)."""
    content = content if content is not None else await api.seal(bidder, tender, price)
    grant = await api.post(
        f"{T}/{tender['id']}/bids/uploads", bidder, json={"filename": "bid.age", "size": len(content) or 1}
    )
    assert grant.status_code == 201, grant.text
    await api.upload(grant.json(), content)
    return str(grant.json()["object_key"])


async def submit(
    api: Api, bidder: Actor, tender: dict[str, Any], object_key: str, key: str | None, price: int = PRICE
) -> Response:
    body = {"lot_id": tender["lots"][0]["id"], "object_key": object_key}
    return await api.post(
        f"{T}/{tender['id']}/bids", bidder, json=body, headers={"Idempotency-Key": key} if key else {}
    )


async def get_tender(api: Api, tender: dict[str, Any], actor: Actor | None = None) -> dict[str, Any]:
    r = await api.get(f"{T}/{tender['id']}", actor)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def notices(api: Api, **params: Any) -> list[dict[str, Any]]:
    r = await api.get("/api/v1/notices", params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def notifications(api: Api, actor: Actor) -> list[dict[str, Any]]:
    r = await api.get("/api/v1/notifications", actor)
    assert r.status_code == 200, r.text
    return list(r.json())


async def audit(api: Api, object_type: str, object_id: str) -> list[dict[str, Any]]:
    centre = await api.bootstrap_centre()
    r = await api.get(
        "/api/v1/audit", centre, params={"object_type": object_type, "object_id": object_id, "limit": 200}
    )
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def object_to(api: Api, bidder: Actor, tender: dict[str, Any], subject: str) -> Response:
    return await api.post(
        f"{T}/{tender['id']}/objections",
        bidder,
        json={"subject": subject, "text": "第3.2条资格条件排斥潜在投标人"},
    )


async def my_bids(api: Api, bidder: Actor, tender: dict[str, Any]) -> list[dict[str, Any]]:
    r = await api.get(f"{T}/{tender['id']}/bids/", bidder)
    assert r.status_code == 200, r.text
    return list(r.json())


# ---------------------------------------------------------------- W-01: 20 days from documents to deadline


async def test_w01_a_deadline_on_day_20_that_is_a_sunday_is_refused_naming_the_earliest_day(api: Api) -> None:
    agency = await api.organisation("agency")
    draft = await api.draft(agency, bid_deadline="2026-03-22T10:00:00+08:00")
    await api.document(agency, draft["id"], b"%PDF documents")
    r = await api.post(f"{T}/{draft['id']}/publish", agency)
    body = refused(r, "W-01")
    assert body["earliest_deadline_day"] == "2026-03-23"
    assert body["errors"] == [{"field": "bid_deadline", "message": "earliest legal day is 2026-03-23"}]
    assert (await get_tender(api, draft, agency))["status"] == "draft"
    assert await notices(api) == []


async def test_w01_the_first_instant_of_the_earliest_day_is_a_lawful_deadline(api: Api) -> None:
    agency = await api.organisation("agency")
    late = await api.draft(agency, bid_deadline="2026-03-22T23:59:59+08:00")
    await api.document(agency, late["id"], b"%PDF documents")
    refused(await api.post(f"{T}/{late['id']}/publish", agency), "W-01")
    tender = await api.published(agency, bid_deadline="2026-03-23T00:00:00+08:00")
    assert tender["status"] == "tendering"
    assert at(tender["bid_deadline"]) == sh(2026, 3, 23, 0)


async def test_w01_documents_from_in_the_past_is_clamped_to_the_publication(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency, documents_from="2026-02-20T09:00:00+08:00")
    assert at(tender["documents_from"]) == api.clock.now() == sh(2026, 3, 2, 9)
    notice = (await notices(api, tender_code=tender["code"]))[0]
    assert at(notice["body"]["documents_from"]) == sh(2026, 3, 2, 9)


async def test_w01_a_past_documents_from_cannot_buy_an_earlier_deadline(api: Api) -> None:
    # From Thu 02-26 a deadline on Fri 03-20 would keep 20 days; from the real first issue (03-02) it does not.
    agency = await api.organisation("agency")
    draft = await api.draft(
        agency, documents_from="2026-02-26T09:00:00+08:00", bid_deadline="2026-03-20T10:00:00+08:00"
    )
    await api.document(agency, draft["id"], b"%PDF documents")
    body = refused(await api.post(f"{T}/{draft['id']}/publish", agency), "W-01")
    assert body["earliest_deadline_day"] == "2026-03-23"


async def test_w01_future_documents_are_issued_by_the_chronograph_and_counted_from_then(api: Api) -> None:
    agency = await api.organisation("agency")
    early = await api.draft(
        agency, documents_from="2026-03-04T09:00:00+08:00", bid_deadline="2026-03-23T10:00:00+08:00"
    )
    await api.document(agency, early["id"], b"%PDF documents")
    assert refused(await api.post(f"{T}/{early['id']}/publish", agency), "W-01")["earliest_deadline_day"] == (
        "2026-03-24"
    )
    tender = await api.published(agency, documents_from="2026-03-03T09:00:00+08:00")
    assert tender["status"] == "published"
    assert at(tender["next_check"]) == sh(2026, 3, 3, 9)
    assert await api.at(sh(2026, 3, 3, 8, 59, 59)) == []
    assert await api.at(sh(2026, 3, 3, 9)) == [(tender["code"], "tendering")]


# ---------------------------------------------------------------- W-02: clarifications keep 15 days


async def test_w02_a_clarification_affecting_bids_moves_the_deadline_and_tells_every_holder(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    holders = [await api.organisation("bidder") for _ in range(2)]
    for holder in holders:
        await obtain(api, holder, tender)
    outsider = await api.organisation("bidder")

    api.clock.set(sh(2026, 3, 16, 9))
    r = await api.post(
        f"{T}/{tender['id']}/clarifications",
        agency,
        json={"text": "工程量清单第5项更正", "affects_bids": True},
    )
    assert r.status_code == 201, r.text
    c = r.json()
    # 03-16 + 15 days = Tue 03-31, a working day; the time of day (10:00) is kept.
    new_deadline = sh(2026, 3, 31, 10)
    assert (at(c["deadline_before"]), at(c["deadline_after"])) == (DEADLINE, new_deadline)
    assert c["deadline_moved"] is True and c["number"] == 1

    got = await get_tender(api, tender)
    assert at(got["bid_deadline"]) == new_deadline and at(got["next_check"]) == new_deadline

    board = await notices(api, tender_code=tender["code"])
    correction, original = board
    assert (correction["kind"], original["kind"]) == ("correction", "tender_notice")
    assert original["superseded_by_id"] == correction["id"]
    assert correction["supersedes_id"] == original["id"] and correction["superseded_by_id"] is None
    assert correction["body"]["bid_deadline"]["rule"] == "W-02"
    assert at(correction["body"]["bid_deadline"]["after"]) == new_deadline

    await api.run_jobs()
    for holder in holders:
        [note] = await notifications(api, holder)
        assert note["kind"] == "tender.clarified" and note["tender_id"] == tender["id"]
        assert "2026-03-31T10:00:00+08:00" in note["message"]
    assert await notifications(api, outsider) == []

    # the old deadline no longer opens anything; bids are still taken
    assert await api.at(DEADLINE) == []
    assert (await get_tender(api, tender))["status"] == "tendering"


async def test_w02_the_moved_deadline_skips_rest_days(api: Api) -> None:
    # Fri 03-20 + 15 = Sat 04-04; Qingming runs to Mon 04-06, so the deadline moves to Tue 04-07.
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    api.clock.set(sh(2026, 3, 20, 16))
    r = await api.post(
        f"{T}/{tender['id']}/clarifications", agency, json={"text": "更正", "affects_bids": True}
    )
    assert r.status_code == 201, r.text
    assert at(r.json()["deadline_after"]) == sh(2026, 4, 7, 10)


async def test_w02_fifteen_days_left_exactly_leaves_the_deadline_and_one_fewer_moves_it(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    api.clock.set(sh(2026, 3, 8, 23, 59))  # 03-08 + 15 = 03-23, the deadline's day
    r = await api.post(
        f"{T}/{tender['id']}/clarifications", agency, json={"text": "更正一", "affects_bids": True}
    )
    assert r.status_code == 201 and r.json()["deadline_moved"] is False
    api.clock.set(sh(2026, 3, 9, 0))
    r = await api.post(
        f"{T}/{tender['id']}/clarifications", agency, json={"text": "更正二", "affects_bids": True}
    )
    assert r.status_code == 201 and at(r.json()["deadline_after"]) == sh(2026, 3, 24, 10)
    # each correction supersedes the one before it
    second, first, original = await notices(api, tender_code=tender["code"])
    assert original["superseded_by_id"] == first["id"] and first["superseded_by_id"] == second["id"]


async def test_w02_a_clarification_that_does_not_affect_bids_leaves_the_deadline(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    holder = await api.organisation("bidder")
    await obtain(api, holder, tender)
    api.clock.set(sh(2026, 3, 16, 9))
    r = await api.post(
        f"{T}/{tender['id']}/clarifications", agency, json={"text": "答疑会地点", "affects_bids": False}
    )
    assert r.status_code == 201, r.text
    assert at(r.json()["deadline_after"]) == DEADLINE and r.json()["deadline_moved"] is False
    assert at((await get_tender(api, tender))["bid_deadline"]) == DEADLINE
    await api.run_jobs()
    [note] = await notifications(api, holder)
    assert note["message"] == f"{tender['code']}: clarification 1 issued."


# ---------------------------------------------------------------- W-03: objections to the documents


async def test_w03_an_objection_nine_days_before_the_deadline_is_refused_naming_the_last_day(
    api: Api,
) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await obtain(api, bidder, tender)
    api.clock.set(sh(2026, 3, 14, 0))
    body = refused(await object_to(api, bidder, tender, "documents"), "W-03")
    assert body["last_day"] == "2026-03-13"
    assert (await get_tender(api, tender))["paused_reason"] is None


async def test_w03_an_objection_ten_days_before_is_taken_and_due_an_answer_in_three_days(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await obtain(api, bidder, tender)
    api.clock.set(sh(2026, 3, 13, 23, 59, 59))
    r = await object_to(api, bidder, tender, "documents")
    assert r.status_code == 201, r.text
    assert at(r.json()["filed_at"]) == sh(2026, 3, 13, 23, 59, 59)
    assert at(r.json()["answer_due"]) == sh(2026, 3, 17, 0)  # 24:00 on Mon 03-16
    assert r.json()["answer"] is None
    assert "W-03" in (await get_tender(api, tender))["paused_reason"]


async def test_w03_an_unanswered_objection_pauses_the_opening_until_it_is_answered(api: Api) -> None:
    agency, tender, bids = await with_bids(api, 3)
    api.clock.set(sh(2026, 3, 10, 9))
    objection = (await object_to(api, bids[0].bidder, tender, "documents")).json()

    assert await api.at(DEADLINE) == [(tender["code"], "paused")]
    got = await get_tender(api, tender)
    assert got["status"] == "tendering" and got["next_check"] is None and "W-03" in got["paused_reason"]
    assert await api.at(sh(2026, 3, 24, 8)) == []  # nothing moves while it waits
    late = await api.post(
        f"{T}/{tender['id']}/bids/uploads", bids[0].bidder, json={"filename": "b", "size": 1}
    )
    refused(late, "W-07")

    url = f"{T}/{tender['id']}/objections/{objection['id']}/answer"
    r = await api.post(url, agency, json={"answer": "资格条件符合法规，维持原文件"})
    assert r.status_code == 200 and at(r.json()["answered_at"]) == sh(2026, 3, 24, 8)
    assert (await get_tender(api, tender))["paused_reason"] is None
    assert await api.tick() == [(tender["code"], "opening")]
    problem(await api.post(url, agency, json={"answer": "再次答复"}), 409)

    # The decryption window runs from when the opening hall actually opened, not from the old deadline.
    got = await get_tender(api, tender)
    assert at(got["opened_at"]) == sh(2026, 3, 24, 8)
    assert at(got["next_check"]) == sh(2026, 3, 24, 8, 30)
    api.clock.set(sh(2026, 3, 24, 8, 29, 59))
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    assert await api.at(sh(2026, 3, 24, 8, 30)) == [(tender["code"], "evaluation")]


async def test_w03_answering_through_a_clarification_resumes_the_trade(api: Api) -> None:
    agency, tender, bids = await with_bids(api, 3)
    api.clock.set(sh(2026, 3, 10, 9))
    objection = (await object_to(api, bids[0].bidder, tender, "documents")).json()
    r = await api.post(
        f"{T}/{tender['id']}/clarifications",
        agency,
        json={"text": "删除第3.2条", "affects_bids": True, "objection_id": objection["id"]},
    )
    assert r.status_code == 201 and at(r.json()["deadline_after"]) == sh(2026, 3, 25, 10)
    assert (await get_tender(api, tender))["paused_reason"] is None
    [answered] = (await api.get(f"{T}/{tender['id']}/objections", bids[0].bidder)).json()
    assert answered["answer"] == "删除第3.2条"


# ---------------------------------------------------------------- W-04: the bid deposit cap


@pytest.mark.parametrize(
    ("estimate", "deposit", "ok"),
    [
        (1_000_000_000, 20_000_001, False),  # 2% of 10 million yuan is 200,000 yuan
        (1_000_000_000, 20_000_000, True),
        (10**12, 80_000_001, False),  # 2% would be 200 million yuan; the works cap is 800,000 yuan
        (10**12, 80_000_000, True),
    ],
)
async def test_w04_the_deposit_is_at_most_two_percent_and_800000_yuan(
    api: Api, estimate: int, deposit: int, ok: bool
) -> None:
    agency = await api.organisation("agency")
    lots = [{"title": "第一标段", "estimated_price_fen": estimate, "deposit_fen": deposit}]
    r = await api.post(T, agency, json=api.tender_body(lots=lots))
    if ok:
        assert r.status_code == 201 and r.json()["lots"][0]["deposit_fen"] == deposit
        return
    body = refused(r, "W-04")
    cap = min(estimate // 50, 80_000_000)
    assert body["errors"] == [
        {"field": "lots[0].deposit_fen", "message": f"at most {cap} fen for this estimated price"}
    ]


async def test_w04_each_offending_lot_is_named_also_when_a_draft_is_edited(api: Api) -> None:
    agency = await api.organisation("agency")
    draft = await api.draft(agency)
    lots = [
        {"title": "第一标段", "estimated_price_fen": 1_000_000_000, "deposit_fen": 20_000_000},
        {"title": "第二标段", "estimated_price_fen": 1_000_000_000, "deposit_fen": 20_000_001},
    ]
    r = await api.patch(f"{T}/{draft['id']}", agency, json={"lots": lots}, headers={"If-Match": '"1"'})
    assert [e["field"] for e in refused(r, "W-04")["errors"]] == ["lots[1].deposit_fen"]
    assert len((await get_tender(api, draft, agency))["lots"]) == 1


# ---------------------------------------------------------------- W-05, W-06: withdrawal and replacement


async def test_w05_a_bid_withdrawn_before_the_deadline_is_refunded_within_five_days(api: Api) -> None:
    _agency, tender, [bid] = await with_bids(api, 1)
    r = await api.post(f"{T}/{tender['id']}/bids/{bid.bid_id}/withdraw", bid.bidder)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "withdrawn" and at(r.json()["withdrawn_at"]) == sh(2026, 3, 2, 9)
    problem(await api.post(f"{T}/{tender['id']}/bids/{bid.bid_id}/withdraw", bid.bidder), 409)
    assert await audit(api, "bid", bid.bid_id) == []  # who withdrew stays sealed until the deadline (W-20)
    await api.at(DEADLINE)
    [event] = [e for e in await audit(api, "bid", bid.bid_id) if e["action"] == "bid.withdraw"]
    # Mon 03-02 + 5 days = Sat 03-07, a rest day: the refund is due on Mon 03-09 (P-02).
    assert event["detail"]["deposit_refund_due"] == "2026-03-09"


async def test_w05_a_withdrawn_bid_does_not_count_toward_the_three_needed(api: Api) -> None:
    _agency, tender, bids = await with_bids(api, 3)
    r = await api.post(f"{T}/{tender['id']}/bids/{bids[1].bid_id}/withdraw", bids[1].bidder)
    assert r.status_code == 200
    assert await api.at(DEADLINE) == [(tender["code"], "unsuccessful")]
    lot = (await get_tender(api, tender))["lots"][0]
    assert lot["status"] == "failed" and lot["outcome_reason"].startswith("W-09: 2 bid(s)")


async def test_w05_a_withdrawn_bid_is_not_in_the_opening_record(api: Api) -> None:
    _agency, tender, bids = await with_bids(api, 4)
    assert (
        await api.post(f"{T}/{tender['id']}/bids/{bids[3].bid_id}/withdraw", bids[3].bidder)
    ).status_code == 200
    assert await api.at(DEADLINE) == [(tender["code"], "opening")]
    for bid in bids[:3]:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    problem(await api.reveal(tender["id"], bids[3]), 409)
    await api.at(AFTER_WINDOW)
    [record] = await notices(api, kind="opening_record")
    assert [b["credit_code"] for b in record["body"]["bids"]] == [b.bidder.credit_code for b in bids[:3]]
    assert {b["result"] for b in record["body"]["bids"]} == {"opened"}


async def test_w05_a_second_submission_on_the_lot_replaces_the_first(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    first = await api.bid(bidder, tender, PRICE)
    second = await api.bid(bidder, tender, PRICE - 1, obtain=False)
    assert second.bid_id != first.bid_id
    assert second.receipt["sequence"] > first.receipt["sequence"]
    assert second.receipt["event"] == "replace" and first.receipt["event"] == "submit"
    assert second.receipt["envelope_sha256"] != first.receipt["envelope_sha256"]
    statuses = {b["id"]: b["status"] for b in await my_bids(api, bidder, tender)}
    assert statuses == {first.bid_id: "replaced", second.bid_id: "submitted"}
    # the replaced bid's receipt still proves what was received then
    r = await api.get(f"{T}/{tender['id']}/bids/{first.bid_id}/receipt", bidder)
    assert r.status_code == 200 and r.json()["log"] == first.receipt["log"]
    problem(await api.post(f"{T}/{tender['id']}/bids/{first.bid_id}/withdraw", bidder), 409)


async def test_w05_a_replaced_bid_counts_its_bidder_once(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    twice = await api.organisation("bidder")
    await api.bid(twice, tender, PRICE)
    await api.bid(twice, tender, PRICE - 1, obtain=False)
    await api.bid(await api.organisation("bidder"), tender, PRICE - 2)
    assert await api.at(DEADLINE) == [(tender["code"], "unsuccessful")]


async def test_w06_a_bid_cannot_be_withdrawn_at_or_after_the_deadline(api: Api) -> None:
    _agency, tender, [bid] = await with_bids(api, 1)
    api.clock.set(DEADLINE)
    body = refused(await api.post(f"{T}/{tender['id']}/bids/{bid.bid_id}/withdraw", bid.bidder), "W-06")
    assert "deposit may be kept" in body["detail"]
    assert [b["status"] for b in await my_bids(api, bid.bidder, tender)] == ["submitted"]


async def test_w06_one_second_before_the_deadline_a_bid_can_still_be_withdrawn(api: Api) -> None:
    _agency, tender, [bid] = await with_bids(api, 1)
    api.clock.set(DEADLINE - timedelta(seconds=1))
    r = await api.post(f"{T}/{tender['id']}/bids/{bid.bid_id}/withdraw", bid.bidder)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"


# ---------------------------------------------------------------- W-07: late bids


async def test_w07_a_bid_finalised_at_the_deadline_instant_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await obtain(api, bidder, tender)
    api.clock.set(DEADLINE - timedelta(minutes=1))
    key = await upload_bid(api, bidder, tender)
    api.clock.set(DEADLINE)
    body = refused(await submit(api, bidder, tender, key, "late-bid-0001"), "W-07")
    assert at(body["bid_deadline"]) == DEADLINE
    assert await my_bids(api, bidder, tender) == []


async def test_w07_a_bid_finalised_after_the_deadline_is_refused_even_once_opening_began(api: Api) -> None:
    _agency, tender, _bids = await with_bids(api, 3)
    late = await api.organisation("bidder")
    await obtain(api, late, tender)
    key = await upload_bid(api, late, tender)
    assert await api.at(DEADLINE + timedelta(seconds=1)) == [(tender["code"], "opening")]
    refused(await submit(api, late, tender, key, "late-bid-0002"), "W-07")
    refused(
        await api.post(f"{T}/{tender['id']}/bids/uploads", late, json={"filename": "b", "size": 1}), "W-07"
    )


async def test_w07_one_second_before_the_deadline_the_bid_is_accepted(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await obtain(api, bidder, tender)
    api.clock.set(DEADLINE - timedelta(minutes=1))
    key = await upload_bid(api, bidder, tender)
    api.clock.set(DEADLINE - timedelta(seconds=1))
    r = await submit(api, bidder, tender, key, "in-time-bid-0001")
    assert r.status_code == 201, r.text
    assert at(r.json()["submitted_at"]) == DEADLINE - timedelta(seconds=1)


# ---------------------------------------------------------------- W-08, W-09: opening needs three bids


async def test_w08_with_exactly_three_bids_the_deadline_opens_the_tender(api: Api) -> None:
    _agency, tender, _bids = await with_bids(api, 3)
    assert await api.at(DEADLINE - timedelta(seconds=1)) == []
    assert await api.at(DEADLINE) == [(tender["code"], "opening")]
    got = await get_tender(api, tender)
    assert got["status"] == "opening" and at(got["opened_at"]) == DEADLINE
    assert at(got["next_check"]) == DEADLINE + timedelta(minutes=30)
    [event] = [e for e in await audit(api, "tender", tender["id"]) if e["action"] == "tender.close_bidding"]
    assert event["detail"]["rule"] == "W-08"


async def test_w09_two_bids_fail_the_tender_publish_a_failure_notice_and_allow_a_retender(api: Api) -> None:
    agency, tender, _bids = await with_bids(api, 2)
    assert await api.at(DEADLINE) == [(tender["code"], "unsuccessful")]
    got = await get_tender(api, tender, agency)
    assert got["status"] == "unsuccessful" and got["outcome_reason"].startswith("W-09")
    assert got["allowed_actions"] == ["retender"]
    [failure] = await notices(api, kind="failure")
    assert failure["tender_code"] == tender["code"]
    assert failure["body"]["rule"] == "W-09" and failure["body"]["reason"] == got["outcome_reason"]
    assert await notices(api, kind="opening_record") == []

    r = await api.post(f"{T}/{tender['id']}/retender", agency)
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["status"] == "draft" and new["parent_id"] == tender["id"] and new["code"] != tender["code"]
    assert [lot["deposit_fen"] for lot in new["lots"]] == [lot["deposit_fen"] for lot in tender["lots"]]
    assert (await get_tender(api, tender))["status"] == "retender"
    problem(await api.post(f"{T}/{tender['id']}/retender", agency), 409)


async def test_w09_a_lot_with_two_bids_fails_while_the_lot_with_three_opens(api: Api) -> None:
    agency = await api.organisation("agency")
    lots = [
        {"title": "第一标段", "estimated_price_fen": 5_000_000_000, "deposit_fen": 80_000_000},
        {"title": "第二标段", "estimated_price_fen": 1_000_000_000, "deposit_fen": 20_000_000},
    ]
    tender = await api.published(agency, lots=lots)
    bidders = [await api.organisation("bidder") for _ in range(3)]
    for i, bidder in enumerate(bidders):
        await api.bid(bidder, tender, PRICE - i, lot=0)
    for i, bidder in enumerate(bidders[:2]):
        await api.bid(bidder, tender, 900_000_000 - i, lot=1, obtain=False)
    assert await api.at(DEADLINE) == [(tender["code"], "opening")]
    first, second = (await get_tender(api, tender))["lots"]
    assert (first["status"], first["outcome_reason"]) == ("open", None)
    assert second["status"] == "failed"
    assert second["outcome_reason"] == "W-09: 2 bid(s) at the deadline; at least 3 are needed"


# ---------------------------------------------------------------- W-10, W-11: committee and report


@pytest.mark.parametrize(
    ("quotas", "representative", "why"),
    [
        ([4], False, "the committee has 4 members; at least 5 are required"),
        ([2, 2], False, "the committee has 4 members; at least 5 are required"),
        ([3], True, "the committee has 4 members; at least 5 are required"),
        ([6], False, "the committee has 6 members; the number must be odd"),
        ([3, 2], True, "the committee has 6 members; the number must be odd"),
    ],
)
async def test_w10_a_draw_for_an_unlawful_committee_is_refused(
    api: Api, quotas: list[int], representative: bool, why: str
) -> None:
    agency, tender, _bids = await evaluated(api)
    body = refused(await request_draw(api, agency, tender, quotas, representative), "W-10")
    assert body["errors"] == [{"field": "quotas", "message": why}]
    assert (await api.get(f"/api/v1/evaluation/tenders/{tender['id']}/draws", agency)).json() == []
    assert (await get_tender(api, tender))["status"] == "evaluation"


@pytest.mark.parametrize(("quotas", "representative", "size"), [([4], True, 5), ([4, 3], False, 7)])
async def test_w10_five_with_four_experts_and_seven_experts_are_lawful(
    api: Api, quotas: list[int], representative: bool, size: int
) -> None:
    agency, tender, _bids = await evaluated(api)
    r = await request_draw(api, agency, tender, quotas, representative)
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["committee_size"]) == ("awaiting_witness", size)


async def test_w11_of_four_ranked_bids_only_the_first_three_become_candidates(api: Api) -> None:
    agency, tender, bids = await evaluated(api, 4)
    room = await api.evaluate(agency, tender["id"])
    [lot] = (await api.get(f"/api/v1/evaluation/rooms/{room['room_id']}/report", room["members"][1])).json()[
        "report"
    ]["lots"]
    by_price = sorted(bids, key=lambda b: b.price_fen)
    assert [(b["bid_id"], b["rank"]) for b in sorted(lot["bids"], key=lambda b: b["rank"])] == [
        (b.bid_id, rank) for rank, b in enumerate(by_price, start=1)
    ]
    assert [c["bid_id"] for c in lot["candidates"]] == [b.bid_id for b in by_price[:3]]
    notice = await candidates_notice(api, tender)
    assert [c["credit_code"] for c in notice["body"]["lots"][0]["candidates"]] == [
        b.bidder.credit_code for b in by_price[:3]
    ]
    assert (await get_tender(api, tender))["status"] == "publicity"


async def report_event(api: Api) -> dict[str, Any]:
    """The trading side's record of the one report taken in this test."""
    centre = await api.bootstrap_centre()
    r = await api.get("/api/v1/audit", centre, params={"object_type": "report", "limit": 200})
    assert r.status_code == 200, r.text
    [event] = [e for e in r.json()["items"] if e["action"] == "report.submit"]
    return dict(event)


async def test_w11_a_member_who_neither_signs_nor_dissents_is_deemed_to_agree(api: Api) -> None:
    # 条例 53: refusing to sign without a written reason counts as agreeing; the report stands when the
    # room's time box ends.
    agency, tender, _bids = await evaluated(api)
    room = await api.evaluate(agency, tender["id"], unsigned={2: None})
    view = (await api.get(f"/api/v1/evaluation/rooms/{room['room_id']}", room["members"][1])).json()
    assert (await get_tender(api, tender))["status"] == "evaluation"
    await api.at(at(view["closes_at"]))
    assert (await get_tender(api, tender))["status"] == "publicity"
    silent = next(m["name"] for m in view["members"] if m["seat"] == 2)
    detail = (await report_event(api))["detail"]
    assert detail["deemed_agreed"] == [silent] and detail["dissents"] == []
    assert detail["report_hash"] == room["report_hash"]


async def test_w11_a_member_who_does_not_sign_but_writes_a_dissent_is_accepted(api: Api) -> None:
    agency, tender, _bids = await evaluated(api)
    room = await api.evaluate(agency, tender["id"], unsigned={2: "第二名报价低于成本，应否决"})
    view = (await api.get(f"/api/v1/evaluation/rooms/{room['room_id']}", room["members"][1])).json()
    assert (await get_tender(api, tender))["status"] == "publicity"
    dissenter = next(m["name"] for m in view["members"] if m["seat"] == 2)
    detail = (await report_event(api))["detail"]
    assert detail["dissents"] == [dissenter] and detail["deemed_agreed"] == []


async def test_w11_a_bid_revoked_at_the_opening_is_neither_ranked_nor_a_candidate(api: Api) -> None:
    agency, tender, bids = await evaluated(api, 4, revealed=3)  # bid 3 was never opened: revoked
    room = await api.evaluate(agency, tender["id"])
    [lot] = (await api.get(f"/api/v1/evaluation/rooms/{room['room_id']}/report", room["members"][1])).json()[
        "report"
    ]["lots"]
    assert sorted(b["bid_id"] for b in lot["bids"]) == sorted(b.bid_id for b in bids[:3])
    notice = await candidates_notice(api, tender)
    assert [c["credit_code"] for c in notice["body"]["lots"][0]["candidates"]] == [
        bids[2].bidder.credit_code,
        bids[1].bidder.credit_code,
        bids[0].bidder.credit_code,
    ]


# ---------------------------------------------------------------- W-12: publicity and its objections


async def test_w12_the_award_waits_until_publicity_ends_at_24_00_of_its_third_day(api: Api) -> None:
    agency, tender, bids = await in_publicity(api)
    got = await get_tender(api, tender)
    assert got["status"] == "publicity" and at(got["publicity_ends"]) == PUBLICITY_ENDS
    [candidates] = await notices(api, kind="candidates")
    assert candidates["body"]["rule"] == "W-12" and at(candidates["body"]["publicity_ends"]) == PUBLICITY_ENDS
    assert [c["credit_code"] for c in candidates["body"]["lots"][0]["candidates"]] == [
        bids[2].bidder.credit_code,
        bids[1].bidder.credit_code,
        bids[0].bidder.credit_code,
    ]

    api.clock.set(PUBLICITY_ENDS - timedelta(seconds=1))
    body = refused(await award(api, agency, tender, bids[2]), "W-12")
    assert at(body["publicity_ends"]) == PUBLICITY_ENDS
    api.clock.set(PUBLICITY_ENDS)
    r = await award(api, agency, tender, bids[2])
    assert r.status_code == 201, r.text
    assert r.json()[0]["price_fen"] == bids[2].price_fen


async def test_allowed_actions_are_what_the_caller_can_ask_now(api: Api) -> None:
    """Only the tender's agency acts on it, and the list offers nothing the rules refuse at that moment:
    no award while the candidates are in publicity (W-12), nothing the chronograph does by itself."""
    agency, tender, bids = await in_publicity(api)
    for reader in (
        None,
        bids[0].bidder,
        await api.organisation("agency"),
        await api.organisation("supervisor"),
    ):
        assert (await get_tender(api, tender, reader))["allowed_actions"] == []
    api.clock.set(PUBLICITY_ENDS - timedelta(seconds=1))
    assert (await get_tender(api, tender, agency))["allowed_actions"] == []
    api.clock.set(PUBLICITY_ENDS)
    assert (await get_tender(api, tender, agency))["allowed_actions"] == ["award"]
    listed = (await api.get(f"{T}?status=publicity", agency)).json()["items"]
    assert [t["allowed_actions"] for t in listed if t["id"] == tender["id"]] == [["award"]]


async def test_after_the_deadline_the_agency_is_not_offered_to_terminate_the_tender(api: Api) -> None:
    agency, tender, _bids = await with_bids(api, 3)
    api.clock.set(DEADLINE - timedelta(seconds=1))
    assert (await get_tender(api, tender, agency))["allowed_actions"] == ["cancel"]
    api.clock.set(DEADLINE)  # the chronograph has not ticked yet: still tendering, but past the deadline
    got = await get_tender(api, tender, agency)
    assert got["status"] == "tendering" and got["allowed_actions"] == []
    assert "close_bidding" not in got["allowed_actions"]


async def test_w12_an_objection_to_the_candidates_blocks_the_award_until_answered(api: Api) -> None:
    agency, tender, bids = await in_publicity(api)
    api.clock.set(sh(2026, 3, 26, 9))
    r = await object_to(api, bids[0].bidder, tender, "candidates")
    assert r.status_code == 201, r.text
    assert at(r.json()["answer_due"]) == sh(2026, 3, 31, 0)  # Sun 03-29 → Mon 03-30, 24:00
    api.clock.set(PUBLICITY_ENDS)
    refused(await award(api, agency, tender, bids[2]), "W-12")
    answer = f"{T}/{tender['id']}/objections/{r.json()['id']}/answer"
    assert (await api.post(answer, agency, json={"answer": "经复核，评标结果无误"})).status_code == 200
    assert (await award(api, agency, tender, bids[2])).status_code == 201


async def test_w12_objections_to_the_candidates_outside_publicity_are_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await obtain(api, bidder, tender)
    refused(await object_to(api, bidder, tender, "candidates"), "W-12")


async def test_w12_an_objection_after_publicity_ended_is_refused_even_before_the_award(api: Api) -> None:
    _agency, tender, bids = await in_publicity(api)
    api.clock.set(PUBLICITY_ENDS - timedelta(seconds=1))
    assert (await object_to(api, bids[0].bidder, tender, "candidates")).status_code == 201
    api.clock.set(PUBLICITY_ENDS)
    body = refused(await object_to(api, bids[1].bidder, tender, "candidates"), "W-12")
    assert at(body["publicity_ends"]) == PUBLICITY_ENDS


# ---------------------------------------------------------------- W-13, W-15: contract


async def test_w13_the_contract_is_due_30_days_after_the_award_moved_past_the_holiday(api: Api) -> None:
    _agency, _tender, _bids, row = await awarded(api)
    assert row["contract_due"] == CONTRACT_DUE
    assert at(row["awarded_at"]) == AWARD_AT


async def test_w13_a_late_contract_needs_a_late_reason_and_is_recorded_as_late(api: Api) -> None:
    agency, tender, _bids, row = await awarded(api)
    api.clock.set(sh(2026, 5, 7, 9))
    body = refused(await contract(api, agency, tender, row), "W-13")
    assert body["contract_due"] == CONTRACT_DUE
    r = await contract(api, agency, tender, row, late_reason="中标人资质证书换证，延误签约")
    assert r.status_code == 201, r.text
    assert r.json()["late_reason"] == "中标人资质证书换证，延误签约"
    [event] = [e for e in await audit(api, "contract", r.json()["id"]) if e["action"] == "contract.record"]
    assert event["detail"]["late"] is True
    assert (await get_tender(api, tender))["status"] == "contracted"


async def test_w13_a_contract_signed_on_the_due_day_is_in_time(api: Api) -> None:
    agency, tender, _bids, row = await awarded(api)
    api.clock.set(sh(2026, 5, 7, 9))
    r = await contract(api, agency, tender, row, signed_on=CONTRACT_DUE)
    assert r.status_code == 201, r.text
    [event] = [e for e in await audit(api, "contract", r.json()["id"]) if e["action"] == "contract.record"]
    assert event["detail"]["late"] is False


async def test_w15_a_performance_security_above_ten_percent_is_refused_and_ten_percent_passes(
    api: Api,
) -> None:
    agency, tender, _bids, row = await awarded(api)
    price = row["price_fen"]
    assert price == 4_780_000_000
    body = refused(await contract(api, agency, tender, row, performance_security_fen=price // 10 + 1), "W-15")
    assert body["errors"] == [{"field": "performance_security_fen", "message": f"at most {price // 10}"}]
    r = await contract(api, agency, tender, row, performance_security_fen=price // 10)
    assert r.status_code == 201 and r.json()["performance_security_fen"] == 478_000_000


# ---------------------------------------------------------------- G-08: the tenderer's credit code


async def test_g08_a_tender_without_the_tenderers_credit_code_is_not_published(api: Api) -> None:
    agency = await api.organisation("agency")
    draft = await api.draft(agency, tenderer_credit_code=None)
    assert draft["tenderer_credit_code"] is None
    await api.document(agency, draft["id"], b"%PDF-1.7 tender documents")
    body = refused(await api.post(f"{T}/{draft['id']}/publish", agency), "G-08")
    assert body["errors"] == [{"field": "tenderer_credit_code", "message": "required to publish"}]
    assert (await api.get(f"{T}/{draft['id']}", agency)).json()["status"] == "draft"
    current = await api.get(f"{T}/{draft['id']}", agency)
    r = await api.patch(
        f"{T}/{draft['id']}",
        agency,
        json={
            "tenderer_credit_code": "９１３２０１００ＭＡ００００００１Ｂ"
        },  # full-width, as Chinese IMEs type it
        headers={"If-Match": current.headers["etag"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["tenderer_credit_code"] == "91320100MA0000001B"
    published = await api.publish(agency, draft["id"])
    assert published.status_code == 200, published.text
    assert published.json()["tenderer_credit_code"] == "91320100MA0000001B"


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("91320100MA0000001C", 422, "wrong check character: expected 'B' at position 18, got 'C'"),
        (
            "9132010OMA0000001B",
            422,
            "invalid character 'O' at position 8: only 0-9 and A-Y without I, O, S, V, Z",
        ),
        ("91320100MA000001B", 400, "Expected `str` of length >= 18"),
    ],
    ids=["check character", "letter O", "17 characters"],
)
async def test_g08_a_malformed_tenderer_credit_code_is_refused_naming_the_field(
    api: Api, code: str, status: int, message: str
) -> None:
    agency = await api.organisation("agency")
    r = await api.post(T, agency, json=api.tender_body(tenderer_credit_code=code))
    assert r.status_code == status, r.text
    assert r.json()["errors"] == [{"field": "tenderer_credit_code", "message": message}]


# ---------------------------------------------------------------- E-03: the decryption window


async def test_e03_a_bid_not_revealed_by_the_window_end_is_revoked_at_the_next_tick(api: Api) -> None:
    _agency, tender, bids = await opened(api, 4, opening_policy="revoke")
    for bid in bids[:3]:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    assert await api.at(DEADLINE + timedelta(minutes=30)) == [(tender["code"], "evaluation")]
    assert [b["status"] for b in await my_bids(api, bids[3].bidder, tender)] == ["revoked"]
    [event] = [e for e in await audit(api, "bid", bids[3].bid_id) if e["action"] == "bid.revoke"]
    assert event["detail"]["rule"] == "E-03"
    [record] = await notices(api, kind="opening_record")
    assert [b["result"] for b in record["body"]["bids"]] == ["opened"] * 3 + ["not_opened"]


async def test_e03_revealing_at_or_after_the_window_end_is_refused(api: Api) -> None:
    _agency, tender, bids = await opened(api, 3)
    window_end = DEADLINE + timedelta(minutes=30)
    api.clock.set(window_end - timedelta(seconds=1))
    assert (await api.reveal(tender["id"], bids[0])).status_code == 202
    api.clock.set(window_end)
    refused(await api.reveal(tender["id"], bids[1]), "E-03")
    await api.tick()
    refused(await api.reveal(tender["id"], bids[2]), "E-03")


async def test_e03_a_wrong_file_key_is_refused_naming_the_field_and_nothing_changes(api: Api) -> None:
    _agency, tender, [bid, other, *_] = await opened(api, 3)
    path = f"{T}/{tender['id']}/bids/{bid.bid_id}/decrypt"
    wrong = base64.b64encode(secrets.token_bytes(16)).decode()
    r = await api.post(path, bid.bidder, json={"file_key": wrong})
    assert problem(r, 422)["errors"] == [{"field": "file_key", "message": "header.mac"}]
    # another bidder's (valid) key does not open this envelope either
    r = await api.post(path, bid.bidder, json={"file_key": base64.b64encode(other.file_key).decode()})
    assert problem(r, 422)["errors"][0]["field"] == "file_key"
    r = await api.post(path, bid.bidder, json={"file_key": "not base64 at all!!!!"})
    assert problem(r, 422)["errors"][0]["field"] == "file_key"
    [mine] = await my_bids(api, bid.bidder, tender)
    assert mine["revealed_at"] is None and mine["envelope_status"] == "sealed"


# ---------------------------------------------------------------- idempotent bid submission


async def test_the_same_idempotency_key_and_body_replays_the_receipt_without_a_second_bid(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await obtain(api, bidder, tender)
    key = await upload_bid(api, bidder, tender)
    first = await submit(api, bidder, tender, key, "retry-key-0001")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    api.clock.set(api.clock.now() + timedelta(minutes=5))
    again = await submit(api, bidder, tender, key, "retry-key-0001")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert [b["id"] for b in await my_bids(api, bidder, tender)] == [first.json()["bid_id"]]


async def test_the_same_idempotency_key_with_another_body_is_a_conflict(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await obtain(api, bidder, tender)
    key = await upload_bid(api, bidder, tender)
    assert (await submit(api, bidder, tender, key, "retry-key-0002")).status_code == 201
    other = await upload_bid(api, bidder, tender, price=PRICE - 1)
    r = await submit(api, bidder, tender, other, "retry-key-0002")
    body = problem(r, 409)
    assert body["errors"] == [{"field": "header:Idempotency-Key", "message": "reused with another body"}]
    assert len(await my_bids(api, bidder, tender)) == 1


@pytest.mark.parametrize("key", [None, "short", "bad key with spaces"])
async def test_a_bid_without_a_valid_idempotency_key_is_refused(api: Api, key: str | None) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await obtain(api, bidder, tender)
    r = await submit(api, bidder, tender, await upload_bid(api, bidder, tender), key)
    assert problem(r, 422)["errors"] == [
        {"field": "header:Idempotency-Key", "message": "missing or malformed"}
    ]
    assert await my_bids(api, bidder, tender) == []


# ---------------------------------------------------------------- ETag / If-Match on drafts


async def test_editing_a_draft_needs_if_match_and_a_stale_version_changes_nothing(api: Api) -> None:
    agency = await api.organisation("agency")
    draft = await api.draft(agency)
    url = f"{T}/{draft['id']}"
    got = await api.get(url, agency)
    assert got.headers["ETag"] == '"1"'

    assert problem(await api.patch(url, agency, json={"title": "新标题工程"}), 428)["status"] == 428
    stale = await api.patch(url, agency, json={"title": "新标题工程"}, headers={"If-Match": '"0"'})
    assert problem(stale, 412)["current_version"] == 1
    assert (await get_tender(api, draft, agency))["title"] == draft["title"]

    r = await api.patch(url, agency, json={"title": "新标题工程"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["title"] == "新标题工程"
    assert r.headers["ETag"] == '"2"' and r.json()["version"] == 2
    # a change to the lots alone is a change of the tender too
    lots = [{"title": "唯一标段", "estimated_price_fen": 1_000_000_000, "deposit_fen": 1_000_000}]
    r = await api.patch(url, agency, json={"lots": lots}, headers={"If-Match": 'W/"2"'})
    assert r.status_code == 200 and r.json()["lots"][0]["title"] == "唯一标段"
    assert r.headers["ETag"] == '"3"'
    problem(await api.patch(url, agency, json={"title": "再改一次"}, headers={"If-Match": '"2"'}), 412)


async def test_publishing_with_a_stale_if_match_is_refused(api: Api) -> None:
    agency = await api.organisation("agency")
    draft = await api.draft(agency)
    await api.document(agency, draft["id"], b"%PDF documents")
    url = f"{T}/{draft['id']}"
    assert (
        await api.patch(url, agency, json={"title": "改过的标题"}, headers={"If-Match": '"1"'})
    ).status_code == 200
    problem(await api.post(f"{url}/publish", agency, headers={"If-Match": '"1"'}), 412)
    assert (await get_tender(api, draft, agency))["status"] == "draft"
    r = await api.publish(agency, draft["id"], headers={"If-Match": '"2"'})
    assert r.status_code == 200 and r.json()["status"] == "tendering"


async def test_a_published_tender_cannot_be_edited(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    r = await api.get(f"{T}/{tender['id']}", agency)
    edit = await api.patch(
        f"{T}/{tender['id']}", agency, json={"title": "偷偷改标题"}, headers={"If-Match": r.headers["ETag"]}
    )
    assert edit.status_code == 409, edit.text
    assert edit.json()["rule"] == "W-02" and "clarification" in edit.json()["detail"]


# ---------------------------------------------------------------- steps out of order


async def test_award_before_the_report_is_refused_naming_the_status(api: Api) -> None:
    agency, tender, bids = await evaluated(api)
    assert "evaluation" in problem(await award(api, agency, tender, bids[0]), 409)["detail"]


async def test_a_draw_before_the_opening_is_refused_naming_the_status(api: Api) -> None:
    agency, tender, _bids = await with_bids(api, 3)
    body = problem(await request_draw(api, agency, tender, [5]), 409)
    assert body["detail"] == (
        "A committee is drawn once the bids are in (after the deadline); the tender is tendering."
    )


async def test_e01_revealing_a_file_key_before_the_deadline_is_refused(api: Api) -> None:
    _agency, tender, [bid] = await with_bids(api, 1)
    refused(await api.reveal(tender["id"], bid), "E-01")


async def test_complete_before_the_contracts_is_refused_naming_the_status(api: Api) -> None:
    agency, tender, _bids, _row = await awarded(api)
    body = problem(await api.post(f"{T}/{tender['id']}/complete", agency), 409)
    assert (
        body["detail"]
        == "a tender that is awarded cannot complete; allowed now: fail, reevaluate, sign_contracts"
    )
    assert body["status_now"] == "awarded"


async def test_an_opening_tender_cannot_be_cancelled(api: Api) -> None:
    agency, tender, _bids = await opened(api)
    body = problem(await api.post(f"{T}/{tender['id']}/cancel", agency, json={"reason": "资金未落实"}), 409)
    assert body["status_now"] == "opening"


async def test_cancelling_a_published_tender_publishes_a_termination_and_tells_holders(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    holder, outsider = await api.organisation("bidder"), await api.organisation("bidder")
    await obtain(api, holder, tender)
    r = await api.post(f"{T}/{tender['id']}/cancel", agency, json={"reason": "项目资金未落实"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["outcome_reason"] == "项目资金未落实" and r.json()["next_check"] is None
    [termination] = await notices(api, kind="termination")
    assert termination["tender_code"] == tender["code"] and termination["body"] == {
        "reason": "项目资金未落实"
    }
    await api.run_jobs()
    [note] = await notifications(api, holder)
    assert note["kind"] == "tender.cancelled" and "项目资金未落实" in note["message"]
    assert await notifications(api, outsider) == []
    upload = await api.post(f"{T}/{tender['id']}/bids/uploads", holder, json={"filename": "b", "size": 1})
    assert "cancelled" in problem(upload, 409)["detail"]
    assert await api.at(DEADLINE) == []


# ---------------------------------------------------------------- the public notice board (S-03)


async def test_the_board_is_public_and_filters_by_kind_sector_region_and_code(api: Api) -> None:
    agency = await api.organisation("agency")
    a = await api.published(agency)
    b = await api.published(agency, title="鼓楼区道路改造工程", region_code="320106")
    await api.draft(agency, title="尚未发布的草稿工程")
    r = await api.client.get("/api/v1/notices")
    assert r.status_code == 200
    assert {n["tender_code"] for n in r.json()["items"]} == {a["code"], b["code"]}
    assert [n["tender_code"] for n in await notices(api, region_code="320106")] == [b["code"]]
    assert [n["tender_code"] for n in await notices(api, tender_code=a["code"])] == [a["code"]]
    assert len(await notices(api, kind="tender_notice", sector="works")) == 2
    assert await notices(api, kind="result") == []
    assert await notices(api, sector="land") == []
    one = (await notices(api, tender_code=b["code"]))[0]
    r = await api.client.get(f"/api/v1/notices/{one['id']}")
    assert r.status_code == 200 and r.json() == one


async def test_the_board_search_treats_percent_and_underscore_literally(api: Api) -> None:
    agency = await api.organisation("agency")
    percent = await api.published(agency, title="管网改造完成率100%工程")
    underscore = await api.published(agency, title="A_1地块配套道路工程")
    plain = await api.published(agency, title="A11地块配套道路工程")
    assert [n["tender_code"] for n in await notices(api, q="%")] == [percent["code"]]
    assert [n["tender_code"] for n in await notices(api, q="A_1")] == [underscore["code"]]
    assert {n["tender_code"] for n in await notices(api, q="地块")} == {underscore["code"], plain["code"]}
    assert [n["tender_code"] for n in await notices(api, q=plain["code"].lower())] == [plain["code"]]


async def test_drafts_never_reach_the_board(api: Api) -> None:
    agency = await api.organisation("agency")
    draft = await api.draft(agency, title="内部草稿工程")
    await api.document(agency, draft["id"], b"%PDF documents")
    assert await notices(api) == []
    assert (await api.get(f"{T}/{draft['id']}")).status_code == 404
    assert (await api.client.get(T)).json()["items"] == []


async def test_the_board_pages_through_every_notice_once(api: Api) -> None:
    agency = await api.organisation("agency")
    for i in range(3):
        tender = await api.published(agency, title=f"分页测试工程{i}")
        for n in range(2):
            r = await api.post(
                f"{T}/{tender['id']}/clarifications", agency, json={"text": f"澄清{n}", "affects_bids": False}
            )
            assert r.status_code == 201
        api.clock.set(api.clock.now() + timedelta(minutes=1 - (i % 2)))  # some notices share an instant
    everything = await notices(api)
    assert len(everything) == 9
    seen: list[str] = []
    cursor = None
    while True:
        r = await api.client.get(
            "/api/v1/notices", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
        )
        assert r.status_code == 200
        seen += [n["id"] for n in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [n["id"] for n in everything]
    assert len(set(seen)) == 9
    assert (
        problem(await api.client.get("/api/v1/notices", params={"cursor": "nonsense"}), 422)["errors"][0][
            "field"
        ]
        == "cursor"
    )


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_a_notice_cannot_be_changed(api: Api, method: str) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    [notice] = await notices(api, tender_code=tender["code"])
    r = await api.client.request(
        method, f"/api/v1/notices/{notice['id']}", json={"title": "改"}, headers=agency.headers
    )
    assert r.status_code == 405
    assert (await notices(api, tender_code=tender["code"])) == [notice]


# ---------------------------------------------------------------- the chronograph


async def test_the_chronograph_does_nothing_the_second_time_at_the_same_instant(api: Api) -> None:
    _agency, tender, _bids = await with_bids(api, 3)
    failing = await api.published(await api.organisation("agency"))
    assert sorted(await api.at(DEADLINE)) == sorted(
        [(tender["code"], "opening"), (failing["code"], "unsuccessful")]
    )
    assert await api.tick() == []
    assert len(await notices(api, kind="failure")) == 1
    moves = [e for e in await audit(api, "tender", tender["id"]) if e["action"].startswith("tender.close")]
    assert [e["action"] for e in moves] == ["tender.close_bidding"]


async def test_two_concurrent_ticks_process_each_tender_once(api: Api, database: Database) -> None:
    opening = (await with_bids(api, 3))[1]
    agency = await api.organisation("agency")
    failing = [await api.published(agency) for _ in range(4)]
    api.clock.set(DEADLINE)
    ctx = api.runtime.job_context
    first, second = await asyncio.gather(
        trading_jobs.chronograph_tick(ctx), trading_jobs.chronograph_tick(ctx)
    )
    expected = [(opening["code"], "opening")] + [(t["code"], "unsuccessful") for t in failing]
    assert sorted(first + second) == sorted(expected), database.backend
    assert len(await notices(api, kind="failure")) == 4
    for tender in [opening, *failing]:
        moves = [
            e
            for e in await audit(api, "tender", tender["id"])
            if e["action"] in ("tender.close_bidding", "tender.fail")
        ]
        assert len(moves) == 1


# PostgreSQL only: SQLite serialises writers, so there a second tick waits for the first instead of skipping.
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_a_tick_skips_the_tenders_another_tick_is_still_processing(api: Api) -> None:
    _agency, tender, _bids = await with_bids(api, 3)
    api.clock.set(DEADLINE)
    async with transaction(api.runtime.sessionmaker) as session:
        row = await chronograph.claim(session, uuid.UUID(tender["id"]), DEADLINE)
        assert row is not None
        assert await chronograph.advance(session, row, DEADLINE, api.runtime.signer) == "opening"
        # The first tick still holds the tender's row lock: a second worker skips it rather than waiting.
        assert await trading_jobs.chronograph_tick(api.runtime.job_context) == []
    assert await api.tick() == []
    got = await get_tender(api, tender)
    assert got["status"] == "opening" and at(got["opened_at"]) == DEADLINE
