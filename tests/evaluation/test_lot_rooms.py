"""One evaluation room per lot (分包评标, `evaluation_rooms` "per_lot"): the setting and its check, one room
per lot for the drawn committee, each room showing and scoring its own lot alone, the trade going on only
once every lot's room has signed its report, each lot's candidates from its own room's report, a lot
failing alone, and a re-evaluation seating the committee again in each re-decided lot's room."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import timedelta
from typing import Any

import click
import pytest
from sqlalchemy import select

from accounts.models import User
from bidding.client import GgzyClient
from evaluation import report
from evaluation.cli import _show_room, choose_room
from storage.db import transaction
from storage.problems import ValidationProblem
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api, SealedBid, _subjective_leaves, shanghai
from tests.trading.test_procurement_open import YUAN, procurement
from trading import awards, lot_reports
from trading.models import Document, Report

BASE = "/api/v1/evaluation"
T = "/api/v1/tenders"
LOT_FEN = 2_500_000_000


def _lots(n: int = 2) -> list[dict[str, Any]]:
    return [
        {"title": f"第{i}标段", "estimated_price_fen": LOT_FEN, "deposit_fen": 40_000_000}
        for i in range(1, n + 1)
    ]


def _vote(bid: SealedBid, code: str) -> dict[str, Any]:
    return {"bid_id": bid.bid_id, "criterion": code, "passed": True}


async def _report_and_sign(api: Api, room: dict[str, Any]) -> dict[str, Any]:
    """The chair (seat 1) has the report drawn up and every member signs it."""
    url = f"{BASE}/rooms/{room['room_id']}"
    r = await api.post(f"{url}/report", room["members"][1])
    assert r.status_code == 200, r.text
    report_hash = r.json()["report_hash"]
    for actor in room["members"].values():
        key = api.keys[actor.organisation_id].signing
        assert key is not None
        signature = base64.b64encode(key.sign(report.signing_message(report_hash))).decode()
        r = await api.post(
            f"{url}/signatures", actor, json={"report_hash": report_hash, "signature": signature}
        )
        assert r.status_code == 200, r.text
    return {"report_hash": report_hash}


class Trade:
    """A tender of two lots under evaluation, three bids on each (by the same three bidders)."""

    def __init__(self, agency: Actor, tender: dict[str, Any], bids: dict[tuple[int, int], SealedBid]) -> None:
        self.agency, self.tender, self.bids = agency, tender, bids
        self.id = tender["id"]
        self.lot_ids = [lot["id"] for lot in tender["lots"]]


async def _trade(api: Api, **body: Any) -> Trade:
    agency = await api.organisation("agency")
    tender = await api.published(agency, **{"lots": _lots(), "evaluation_rooms": "per_lot", **body})
    bidders = [await api.organisation("bidder") for _ in range(3)]
    price = tender["lots"][0]["estimated_price_fen"]
    bids = {
        (n, lot): await api.bid(bidder, tender, price - (n + 1) * 1000 * YUAN, lot=lot)
        for n, bidder in enumerate(bidders)
        for lot in (0, 1)
    }
    await api.at(DEADLINE)
    for bid in bids.values():
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    return Trade(agency, tender, bids)


async def _convene(api: Api, trade: Trade, experts: int = 5) -> dict[str, dict[str, Any]]:
    """Draw the committee and seat it: answers, per lot id, {"room_id", "members": {seat: Actor}}, every
    member declared in every room and seat 1 elected chair in each."""
    pool = [await api.expert() for _ in range(experts + 2)]
    evaluation_at = api.clock.now() + timedelta(hours=2)
    r = await api.post(
        f"{BASE}/tenders/{trade.id}/draws",
        trade.agency,
        json={"evaluation_at": evaluation_at.isoformat(), "quotas": [{"specialty": "A02", "seats": experts}]},
    )
    assert r.status_code == 201, r.text
    await api.witnessed(r.json()["id"])
    for actor in pool:
        for inv in (await api.get(f"{BASE}/invitations", actor)).json():
            if inv["status"] == "invited":
                a = await api.post(f"{BASE}/invitations/{inv['id']}/answer", actor, json={"accept": True})
                assert a.status_code == 200, a.text
    await api.at(evaluation_at)
    rooms: dict[str, dict[str, Any]] = {}
    for actor in pool:
        for listed in (await api.get(f"{BASE}/rooms", actor)).json():
            room = rooms.setdefault(listed["lot_id"], {"room_id": listed["id"], "members": {}})
            assert room["room_id"] == listed["id"]
            view = (await api.get(f"{BASE}/rooms/{listed['id']}", actor)).json()
            room["members"][view["my_seat"]] = actor
            d = await api.post(f"{BASE}/rooms/{listed['id']}/declaration", actor, json={"no_conflict": True})
            assert d.status_code == 200, d.text
    for room in rooms.values():
        assert len(room["members"]) == experts
        for actor in room["members"].values():
            v = await api.post(f"{BASE}/rooms/{room['room_id']}/chair", actor, json={"seat": 1})
            assert v.status_code == 200, v.text
            if v.json()["chair_seat"] is not None:
                break
    return rooms


async def test_one_room_per_lot_needs_two_lots_and_is_named_in_the_documents(api: Api) -> None:
    agency = await api.organisation("agency")
    r = await api.post(T, agency, json=api.tender_body(evaluation_rooms="per_lot"))
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["evaluation_rooms"]
    r = await api.post(T, agency, json=api.tender_body(evaluation_rooms="per_lot", lots=_lots()))
    assert r.status_code == 201, r.text
    tender = r.json()
    assert tender["evaluation_rooms"] == "per_lot"
    # a draft cut back to one lot keeps the setting only if it drops it too
    one = api.tender_body()["lots"]
    r = await api.patch(
        f"{T}/{tender['id']}", agency, json={"lots": one}, headers={"If-Match": str(tender["version"])}
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["evaluation_rooms"]
    r = await api.patch(
        f"{T}/{tender['id']}",
        agency,
        json={"lots": one, "evaluation_rooms": "single"},
        headers={"If-Match": str(tender["version"])},
    )
    assert r.status_code == 200, r.text
    assert r.json()["evaluation_rooms"] == "single"
    # the default is one room for every lot
    r = await api.post(T, agency, json=api.tender_body(lots=_lots()))
    assert r.json()["evaluation_rooms"] == "single"
    # a two-envelope tender's committee judges every technical envelope in one room
    r = await api.post(T, agency, json=api.tender_body(evaluation_rooms="per_lot", lots=_lots(), envelopes=2))
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["evaluation_rooms"]


async def test_a_lots_room_reads_the_opened_files_of_its_own_lots_bids_only(api: Api) -> None:
    trade = await _trade(api)
    rooms = await _convene(api, trade)
    for index, lot_id in enumerate(trade.lot_ids):
        room = rooms[lot_id]
        member = room["members"][1]
        own, other = trade.bids[(0, index)], trade.bids[(0, 1 - index)]
        url = f"{BASE}/rooms/{room['room_id']}/bids/{{}}/file?kind=commercial&number=1"
        r = await api.get(url.format(own.bid_id), member)
        assert r.status_code == 200, r.text
        assert r.headers["X-Content-SHA256"] == hashlib.sha256(r.content).hexdigest()
        r = await api.get(url.format(other.bid_id), member)
        assert r.status_code == 404, r.text
        assert [e["field"] for e in r.json()["errors"]] == ["bid_id"]


async def test_each_lot_has_its_room_and_the_trade_goes_on_when_every_lot_is_reported(api: Api) -> None:
    trade = await _trade(api)
    rooms = await _convene(api, trade)
    assert set(rooms) == set(trade.lot_ids)
    lot1, lot2 = (rooms[lot_id] for lot_id in trade.lot_ids)
    # the agency lists its trade's rooms with their lots, and reads neither; a bidder sees nothing
    listed = (await api.get(f"{BASE}/rooms", trade.agency)).json()
    assert sorted(r["lot_id"] for r in listed) == sorted(trade.lot_ids)
    bidder = trade.bids[0, 0].bidder
    for room in (lot1, lot2):
        assert (await api.get(f"{BASE}/rooms/{room['room_id']}", trade.agency)).status_code == 404
        assert (await api.get(f"{BASE}/rooms/{room['room_id']}", bidder)).status_code in (403, 404)
        assert (await api.get(f"{BASE}/rooms/{room['room_id']}/report", bidder)).status_code in (403, 404)
    assert (await api.get(f"{BASE}/rooms", bidder)).status_code in (200, 403)
    if (await api.get(f"{BASE}/rooms", bidder)).status_code == 200:
        assert (await api.get(f"{BASE}/rooms", bidder)).json() == []
    # each room shows its own lot's bids alone
    view = (await api.get(f"{BASE}/rooms/{lot1['room_id']}", lot1["members"][1])).json()
    assert view["lot_id"] == trade.lot_ids[0]
    assert [lot["id"] for lot in view["lots"]] == [trade.lot_ids[0]]
    assert {b["bid_id"] for b in view["lots"][0]["bids"]} == {trade.bids[n, 0].bid_id for n in range(3)}
    # an expert cannot review another lot in this lot's room, nor slip another lot's bid into its review
    criteria = [q["code"] for q in view["scheme"]["qualification"]]
    other = [_vote(trade.bids[n, 1], code) for n in range(3) for code in criteria]
    r = await api.post(
        f"{BASE}/rooms/{lot1['room_id']}/reviews",
        lot1["members"][2],
        json={"lot_id": trade.lot_ids[1], "votes": other},
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["lot_id"]
    own = [_vote(trade.bids[n, 0], code) for n in range(3) for code in criteria]
    mixed = [{**own[0], "bid_id": trade.bids[0, 1].bid_id}, *own[1:]]
    r = await api.post(
        f"{BASE}/rooms/{lot1['room_id']}/reviews",
        lot1["members"][2],
        json={"lot_id": trade.lot_ids[0], "votes": mixed},
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "votes[0].bid_id"
    # lot 1's room reports: the trade waits for lot 2
    done1 = await api.deliberate(lot1)
    room1 = (await api.get(f"{BASE}/rooms/{lot1['room_id']}", lot1["members"][1])).json()
    assert (room1["status"], room1["phase"]) == ("closed", "closed")
    assert (await api.get(f"{T}/{trade.id}", trade.agency)).json()["status"] == "evaluation"
    async with transaction(api.runtime.sessionmaker) as session:
        assert (
            await session.scalars(select(Report).where(Report.tender_id == uuid.UUID(trade.id)))
        ).all() == []
    # the other room goes on with its own phases, chair and time box
    url2 = f"{BASE}/rooms/{lot2['room_id']}"
    room2 = (await api.get(url2, lot2["members"][1])).json()
    assert (room2["status"], room2["phase"]) == ("open", "qualification")
    for actor in lot2["members"].values():
        votes = [_vote(trade.bids[n, 1], code) for n in range(3) for code in criteria]
        r = await api.post(f"{url2}/reviews", actor, json={"lot_id": trade.lot_ids[1], "votes": votes})
        assert r.status_code == 201, r.text
    assert (await api.get(url2, lot2["members"][1])).json()["phase"] == "scoring"
    # a member cannot score a bid of lot 1 in lot 2's room, under either lot
    leaves = _subjective_leaves(room2["scheme"])
    sheet = {trade.bids[n, 1].bid_id: {code: top * 8 // 10 for code, top in leaves} for n in range(3)}
    stray = trade.bids[0, 0].bid_id
    r = await api.post(
        f"{url2}/sheets",
        lot2["members"][3],
        json={"lot_id": trade.lot_ids[1], "scores": {**sheet, stray: sheet[trade.bids[0, 1].bid_id]}},
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == f"scores[{stray}]"
    r = await api.post(
        f"{url2}/sheets", lot2["members"][3], json={"lot_id": trade.lot_ids[0], "scores": sheet}
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["lot_id"]
    for actor in lot2["members"].values():
        r = await api.post(f"{url2}/sheets", actor, json={"lot_id": trade.lot_ids[1], "scores": sheet})
        assert r.status_code == 201, r.text
    done2 = await _report_and_sign(api, lot2)
    tender = (await api.get(f"{T}/{trade.id}", trade.agency)).json()
    assert tender["status"] != "evaluation"
    reports = {
        lot_id: (
            await api.get(f"{BASE}/rooms/{rooms[lot_id]['room_id']}/report", rooms[lot_id]["members"][1])
        ).json()
        for lot_id in trade.lot_ids
    }
    assert reports[trade.lot_ids[0]]["report_hash"] == done1["report_hash"]
    assert reports[trade.lot_ids[1]]["report_hash"] == done2["report_hash"]
    async with transaction(api.runtime.sessionmaker) as session:
        [row] = (await session.scalars(select(Report).where(Report.tender_id == uuid.UUID(trade.id)))).all()
        files = (
            await session.scalars(
                select(Document).where(
                    Document.tender_id == uuid.UUID(trade.id), Document.kind == "evaluation_report"
                )
            )
        ).all()
    assert len(files) == 2
    for entry in row.candidates:
        body = reports[entry["lot_id"]]
        [own] = [lot for lot in body["report"]["lots"] if lot["lot_id"] == entry["lot_id"]]
        assert len(body["report"]["lots"]) == 1
        assert entry["ranking"] == [c["bid_id"] for c in own["candidates"]]
        assert entry["report_sha256"] == body["report_hash"]
    assert row.candidates[0]["ranking"] and row.candidates[1]["ranking"]
    assert [c["lot_id"] for c in row.candidates] == trade.lot_ids
    # `ggzy room show TENDER --lot 2` finds lot 2's room and recomputes its report's hash
    member = lot2["members"][1]
    async with GgzyClient("http://testserver", member.token, transport=api.client._transport) as client:
        lines = await _show_room(client, trade.id, 2, None)
        assert lines[0].startswith(f"room {lot2['room_id']} (lot 2), round 1")
        assert lines[-1] == f"report {done2['report_hash']} (closed); recomputed hash matches"
        with pytest.raises(click.UsageError, match="--lot"):
            await _show_room(client, trade.id, None, None)


async def test_a_report_of_one_lot_cannot_decide_another_lots_award(api: Api) -> None:
    trade = await _trade(api)
    async with transaction(api.runtime.sessionmaker) as session:
        uploader = await session.scalar(select(User.id).where(User.username == trade.agency.username))
        assert uploader is not None
        file = awards.StoredFile("r.pdf", "records/x/r.pdf", "0" * 64, 1, uploader)
        lot1 = [uuid.UUID(trade.bids[n, 0].bid_id) for n in range(3)]
        parts = [
            lot_reports.LotReport(uuid.UUID(trade.lot_ids[0]), lot1, [], file, "a" * 64),
            # lot 1's ranking offered as lot 2's
            lot_reports.LotReport(uuid.UUID(trade.lot_ids[1]), lot1, [], file, "b" * 64),
        ]
        with pytest.raises(ValidationProblem) as refused:
            await lot_reports.record_lot_reports(session, None, uuid.UUID(trade.id), parts, api.clock.now())
        assert (refused.value.errors or [{}])[0].get("field") == "reports[1].candidates"
        twice = [parts[0], parts[0]]
        with pytest.raises(ValidationProblem) as refused:
            await lot_reports.record_lot_reports(session, None, uuid.UUID(trade.id), twice, api.clock.now())
        assert (refused.value.errors or [{}])[0].get("field") == "reports[1].lot_id"


async def test_a_lot_whose_room_finds_no_acceptable_bid_fails_alone(api: Api) -> None:
    trade = await _trade(api)
    rooms = await _convene(api, trade)
    await api.deliberate(rooms[trade.lot_ids[0]])
    failed = {trade.bids[n, 1].bid_id for n in range(3)}
    await api.deliberate(rooms[trade.lot_ids[1]], fail=failed)
    tender = (await api.get(f"{T}/{trade.id}", trade.agency)).json()
    assert tender["status"] != "failed"
    assert [lot["status"] for lot in tender["lots"]] == ["open", "failed"]


@pytest.mark.parametrize("lot2_fails", [False, True])
async def test_a_reevaluation_seats_the_committee_again_in_each_redecided_lots_room(
    api: Api, lot2_fails: bool
) -> None:
    """Every lot with a result is decided afresh in its own room of round 2; a lot that failed in round 1
    (its room accepted no bid) stays failed and gets no room."""
    agency = await api.organisation("agency")
    tender = await api.published(agency, **procurement(lots=_lots(), evaluation_rooms="per_lot"))
    bidders = [await api.organisation("bidder") for _ in range(3)]
    bids = {
        (n, lot): await api.bid(bidder, tender, LOT_FEN - (n + 1) * 1000 * YUAN, lot=lot)
        for n, bidder in enumerate(bidders)
        for lot in (0, 1)
    }
    await api.at(DEADLINE)
    for bid in bids.values():
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)
    trade = Trade(agency, tender, bids)
    rooms = await _convene(api, trade, experts=7)
    await api.deliberate(rooms[trade.lot_ids[0]])
    failed = {bids[n, 1].bid_id for n in range(3)} if lot2_fails else set()
    await api.deliberate(rooms[trade.lot_ids[1]], fail=failed)
    awarded = (0,) if lot2_fails else (0, 1)
    redecided = [trade.lot_ids[lot] for lot in awarded]
    await api.at(shanghai(2026, 3, 26, 9))
    body = {"lots": [{"lot_id": bids[2, lot].lot_id, "bid_id": bids[2, lot].bid_id} for lot in awarded]}
    r = await api.post(f"{T}/{trade.id}/award", agency, json=body)
    assert r.status_code == 201, r.text
    r = await api.post(
        f"{T}/{trade.id}/objections", bids[0, 0].bidder, json={"subject": "result", "text": "评分错误"}
    )
    assert r.status_code == 201, r.text
    r = await api.post(
        f"{T}/{trade.id}/objections/{r.json()['id']}/answer",
        agency,
        json={"answer": "质疑成立，由原评标委员会重新评审", "outcome": "reevaluate"},
    )
    assert r.status_code == 200, r.text
    members = rooms[trade.lot_ids[0]]["members"]
    listed = [x for x in (await api.get(f"{BASE}/rooms", members[1])).json() if x["round"] == 2]
    assert sorted(x["lot_id"] for x in listed) == sorted(redecided)
    for room in listed:
        view = (await api.get(f"{BASE}/rooms/{room['id']}", members[1])).json()
        assert [lot["id"] for lot in view["lots"]] == [room["lot_id"]]
        assert view["phase"] == "qualification"
    for room in listed:
        await api.deliberate({"room_id": room["id"], "members": rooms[room["lot_id"]]["members"]})
    async with transaction(api.runtime.sessionmaker) as session:
        rows = (await session.scalars(select(Report).where(Report.tender_id == uuid.UUID(trade.id)))).all()
    assert sorted(r.round for r in rows) == [1, 2]
    assert [c["lot_id"] for c in max(rows, key=lambda r: r.round).candidates] == redecided
    after = (await api.get(f"{T}/{trade.id}", agency)).json()
    assert after["status"] == "decision"
    assert [lot["status"] for lot in after["lots"]] == ["open", "failed" if lot2_fails else "open"]


def test_the_cli_chooses_a_lots_room_by_tender() -> None:
    rooms: list[dict[str, Any]] = [
        {"id": "a", "tender_id": "t", "lot_id": "l1", "round": 1, "opens_at": "x"},
        {"id": "b", "tender_id": "t", "lot_id": "l2", "round": 1, "opens_at": "x"},
        {"id": "c", "tender_id": "t", "lot_id": "l2", "round": 2, "opens_at": "y"},
        {"id": "d", "tender_id": "u", "lot_id": None, "round": 1, "opens_at": "x"},
    ]
    assert choose_room(rooms, "t", "l2", None)["id"] == "c"
    assert choose_room(rooms, "t", "l2", 1)["id"] == "b"
    assert choose_room(rooms, "u", None, None)["id"] == "d"
    with pytest.raises(click.UsageError, match="--lot"):
        choose_room(rooms, "t", None, None)
    with pytest.raises(click.UsageError, match="--lot"):
        choose_room(rooms, "u", "l1", None)
    with pytest.raises(click.UsageError):
        choose_room(rooms, "t", "l3", None)


async def test_a_member_recusing_in_one_lots_room_leaves_every_lot_room_and_is_replaced_in_each(
    api: Api,
) -> None:
    trade = await _trade(api)
    pool = [await api.expert() for _ in range(7)]
    evaluation_at = api.clock.now() + timedelta(hours=2)
    r = await api.post(
        f"{BASE}/tenders/{trade.id}/draws",
        trade.agency,
        json={"evaluation_at": evaluation_at.isoformat(), "quotas": [{"specialty": "A02", "seats": 5}]},
    )
    assert r.status_code == 201, r.text
    await api.witnessed(r.json()["id"])
    for actor in pool:
        for inv in (await api.get(f"{BASE}/invitations", actor)).json():
            if inv["status"] == "invited":
                await api.post(f"{BASE}/invitations/{inv['id']}/answer", actor, json={"accept": True})
    await api.at(evaluation_at)
    seated = [a for a in pool if (await api.get(f"{BASE}/rooms", a)).json()]
    leaving, staying = seated[0], seated[1]
    by_lot = {x["lot_id"]: x["id"] for x in (await api.get(f"{BASE}/rooms", leaving)).json()}
    first, second = (by_lot[lot_id] for lot_id in trade.lot_ids)
    seat = (await api.get(f"{BASE}/rooms/{first}", leaving)).json()["my_seat"]
    r = await api.post(
        f"{BASE}/rooms/{first}/declaration",
        leaving,
        json={"no_conflict": False, "statement": "与投标人有利害关系"},
    )
    assert r.status_code == 200, r.text
    # gone from the other lot's room too
    assert (await api.get(f"{BASE}/rooms/{second}", leaving)).status_code == 404
    for room_id in (first, second):
        d = await api.post(f"{BASE}/rooms/{room_id}/declaration", staying, json={"no_conflict": True})
        assert d.status_code == 200, d.text
    for room_id in (first, second):
        members = (await api.get(f"{BASE}/rooms/{room_id}", staying)).json()["members"]
        assert [m["outcome"] for m in members if m["seat"] == seat] == ["recused"]
    # the replacement, once it accepts, sits in both lots' rooms
    await api.run_jobs()
    for actor in pool:
        if actor in seated:
            continue
        for inv in (await api.get(f"{BASE}/invitations", actor)).json():
            if inv["status"] == "invited":
                a = await api.post(f"{BASE}/invitations/{inv['id']}/answer", actor, json={"accept": True})
                assert a.status_code == 200, a.text
                listed = (await api.get(f"{BASE}/rooms", actor)).json()
                assert sorted(x["lot_id"] for x in listed) == sorted(trade.lot_ids)
                return
    raise AssertionError("no replacement was invited")


def test_the_rounds_committee_is_the_one_sitting_last_with_every_lots_answers() -> None:
    def seat(n: int, name: str, *, signed: bool = True, dissent: str | None = None) -> dict[str, Any]:
        return {
            "seat": n,
            "name": name,
            "kind": "expert",
            "signed": signed,
            "dissent": dissent,
            "deemed_agreed": False,
        }

    file = awards.StoredFile("r.pdf", "k", "0" * 64, 1, uuid.uuid4())
    # lot 1's room closed with seats 1-3; seat 3 then recused in lot 2's room and seat 4 replaced it
    lot1 = lot_reports.LotReport(
        uuid.uuid4(), [], [seat(1, "a"), seat(2, "b", signed=False, dissent="x"), seat(3, "c")], file, "1"
    )
    lot2 = lot_reports.LotReport(uuid.uuid4(), [], [seat(1, "a"), seat(2, "b"), seat(4, "d")], file, "2")
    merged = lot_reports.merged_committee([lot1, lot2])
    assert [(m["seat"], m["signed"], m["dissent"]) for m in merged] == [
        (1, True, None),
        (2, False, "lot report 1: x"),
        (4, True, None),
    ]
    assert lot_reports.round_hash([lot1, lot2]) == hashlib.sha256(b"1\n2\n").hexdigest()
    assert lot_reports.round_hash([lot1, lot2]) != lot_reports.round_hash([lot2, lot1])
