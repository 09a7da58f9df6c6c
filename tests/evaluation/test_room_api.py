"""The evaluation room (评标室) through the API: who may enter and act, the declaration and recusal, the
chair, qualification by majority, clarifications, sealed score sheets, reopening and G-10, the report, its
signatures and dissents, the hand-over to publicity, the time box and the event stream."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from evaluation import report
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api, SealedBid, _subjective_leaves

BASE = "/api/v1/evaluation"
REASON = "打分有误需要更正 (a scoring error to correct)"


@dataclass
class Committee:
    """A tender under evaluation and its confirmed committee, by seat; `pool` is every expert of the pool."""

    agency: Actor
    tender: dict[str, Any]
    bids: list[SealedBid]
    draw_id: str
    room_id: str
    opens_at: datetime
    members: dict[int, Actor]
    pool: list[Actor]
    lot_id: str = ""
    leaves: list[tuple[str, int]] = field(default_factory=list)
    criteria: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{BASE}/rooms/{self.room_id}"

    def bid(self, n: int) -> str:
        return self.bids[n].bid_id


# ---------------------------------------------------------------- set-up


async def convene(api: Api, bidders: int = 3, spare: int = 2, **overrides: Any) -> Committee:
    """A committee of five drawn from a pool of 5 + `spare` experts, every invitation accepted; the room is
    scheduled two hours from now. `overrides` change the tender's body."""
    agency = await api.organisation("agency")
    tender, bids = await api.in_evaluation(agency, bidders, **overrides)
    pool = [await api.expert() for _ in range(5 + spare)]
    opens_at = api.clock.now() + timedelta(hours=2)
    r = await api.post(
        f"{BASE}/tenders/{tender['id']}/draws",
        agency,
        json={"evaluation_at": opens_at.isoformat(), "quotas": [{"specialty": "A02", "seats": 5}]},
    )
    assert r.status_code == 201, r.text
    draw_id = r.json()["id"]
    await api.witnessed(draw_id)
    await accept_all(api, pool)
    members: dict[int, Actor] = {}
    room_id = ""
    for actor in pool:
        rooms = (await api.get(f"{BASE}/rooms", actor)).json()
        if rooms:
            room_id = rooms[0]["id"]
            members[(await api.get(f"{BASE}/rooms/{room_id}", actor)).json()["my_seat"]] = actor
    assert sorted(members) == [1, 2, 3, 4, 5]
    c = Committee(agency, tender, bids, draw_id, room_id, opens_at, members, pool)
    c.lot_id = tender["lots"][0]["id"]
    return c


async def accept_all(api: Api, experts: list[Actor]) -> None:
    for actor in experts:
        for invitation in (await api.get(f"{BASE}/invitations", actor)).json():
            if invitation["status"] == "invited":
                r = await api.post(
                    f"{BASE}/invitations/{invitation['id']}/answer", actor, json={"accept": True}
                )
                assert r.status_code == 200, r.text


async def enter(api: Api, c: Committee) -> None:
    """Open the room at its time; every member signs the declaration."""
    await api.at(c.opens_at)
    for actor in c.members.values():
        r = await api.post(f"{c.url}/declaration", actor, json={"no_conflict": True})
        assert r.status_code == 200, r.text
    view = (await api.get(c.url, c.members[1])).json()
    c.leaves = _subjective_leaves(view["scheme"])
    c.criteria = [q["code"] for q in view["scheme"]["qualification"]]


async def elect(api: Api, c: Committee, seat: int = 1) -> None:
    for voter in (1, 2, 3):
        r = await api.post(f"{c.url}/chair", c.members[voter], json={"seat": seat})
        assert r.status_code == 200, r.text


def votes(c: Committee, fails: dict[int, str] | None = None) -> list[dict[str, Any]]:
    """A full review of the lot: every bid passes every criterion except the bids in `fails` (by index),
    failed on the first criterion with the reason given."""
    fails = fails or {}
    out = []
    for n in range(len(c.bids)):
        for i, code in enumerate(c.criteria):
            failed = n in fails and i == 0
            out.append(
                {
                    "bid_id": c.bid(n),
                    "criterion": code,
                    "passed": not failed,
                    "reason": fails[n] if failed else None,
                }
            )
    return out


async def review(api: Api, c: Committee, seat: int, fails: dict[int, str] | None = None) -> dict[str, Any]:
    r = await api.post(
        f"{c.url}/reviews", c.members[seat], json={"lot_id": c.lot_id, "votes": votes(c, fails)}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def qualified(api: Api, c: Committee) -> None:
    """Open, declared, chair 1, every bid passed by everyone: the room is scoring."""
    await enter(api, c)
    await elect(api, c)
    for seat in c.members:
        await review(api, c, seat)


Scores = Callable[[int, str, str, int], int]


def even(_seat: int, _bid: str, _leaf: str, maximum: int) -> int:
    return maximum * 8 // 10


def sheet(c: Committee, seat: int, scores: Scores = even, bids: list[str] | None = None) -> dict[str, Any]:
    return {
        bid: {code: scores(seat, bid, code, maximum) for code, maximum in c.leaves}
        for bid in (bids if bids is not None else [b.bid_id for b in c.bids])
    }


async def score(api: Api, c: Committee, seat: int, scores: Scores = even) -> dict[str, Any]:
    r = await api.post(
        f"{c.url}/sheets", c.members[seat], json={"lot_id": c.lot_id, "scores": sheet(c, seat, scores)}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def low_from(seat: int, bid: str) -> Scores:
    """Everyone scores 80 %, except `seat`, who gives `bid` nothing: abnormal (G-10)."""

    def scores(s: int, b: str, _leaf: str, maximum: int) -> int:
        return 0 if (s, b) == (seat, bid) else maximum * 8 // 10

    return scores


async def scored(api: Api, c: Committee, scores: Scores = even) -> None:
    await qualified(api, c)
    for seat in c.members:
        await score(api, c, seat, scores)


async def make_report(api: Api, c: Committee) -> dict[str, Any]:
    r = await api.post(f"{c.url}/report", c.members[1])
    assert r.status_code == 200, r.text
    return dict(r.json())


def signature(api: Api, actor: Actor, report_hash: str) -> str:
    key = api.keys[actor.organisation_id].signing
    assert key is not None
    return base64.b64encode(key.sign(report.signing_message(report_hash))).decode()


async def sign(api: Api, c: Committee, seat: int, report_hash: str) -> dict[str, Any]:
    actor = c.members[seat]
    r = await api.post(
        f"{c.url}/signatures",
        actor,
        json={"report_hash": report_hash, "signature": signature(api, actor, report_hash)},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return dict(r.json())


def fields(r: Any, status: int) -> list[str]:
    return [e["field"] for e in problem(r, status)["errors"]]


# ---------------------------------------------------------------- entering


async def test_a_member_cannot_act_before_the_room_opens(api: Api) -> None:
    c = await convene(api)
    r = await api.post(f"{c.url}/declaration", c.members[1], json={"no_conflict": True})
    problem(r, 409)
    assert (await api.get(c.url, c.members[1])).json()["status"] == "scheduled"


async def test_a_member_cannot_act_before_signing_the_declaration(api: Api) -> None:
    c = await convene(api)
    await api.at(c.opens_at)
    r = await api.post(f"{c.url}/chair", c.members[1], json={"seat": 1})
    assert problem(r, 403)["rule"] == "G-08"
    view = (await api.get(c.url, c.members[1])).json()
    assert view["declared"] is False and "members" not in view and "lots" not in view


async def test_an_expert_who_is_not_a_member_is_told_the_room_does_not_exist(api: Api) -> None:
    c = await convene(api)
    await api.at(c.opens_at)
    outsider = next(a for a in c.pool if a not in c.members.values())
    assert (await api.get(c.url, outsider)).status_code == 404
    assert (await api.post(f"{c.url}/declaration", outsider, json={"no_conflict": True})).status_code == 404
    assert (await api.get(f"{BASE}/rooms", outsider)).json() == []


async def test_the_agency_and_the_bidders_cannot_look_into_the_room(api: Api) -> None:
    c = await convene(api)
    await enter(api, c)
    assert (await api.get(c.url, c.agency)).status_code == 404
    assert (await api.get(f"{c.url}/events", c.agency, params={"follow": "false"})).status_code == 404
    # its list names its trade's room, with the room's status and times only
    [listed] = (await api.get(f"{BASE}/rooms", c.agency)).json()
    assert listed["id"] == c.room_id and set(listed) == {
        "id",
        "tender_id",
        "round",
        "lot_id",
        "status",
        "phase",
        "opens_at",
        "closes_at",
    }
    assert (await api.get(f"{BASE}/rooms", await api.organisation("agency"))).json() == []
    assert (await api.get(c.url, c.bids[0].bidder)).status_code == 403


async def test_a_supervisor_watches_the_room_and_is_refused_every_action_by_s04(api: Api) -> None:
    c = await convene(api)
    await qualified(api, c)
    supervisor = await api.organisation("supervisor")
    view = (await api.get(c.url, supervisor)).json()
    assert view["my_seat"] is None and len(view["members"]) == 5
    actions: list[tuple[str, dict[str, Any] | None]] = [
        ("declaration", {"no_conflict": True}),
        ("chair", {"seat": 1}),
        ("reviews", {"lot_id": c.lot_id, "votes": votes(c)}),
        ("clarifications", {"bid_id": c.bid(0), "question": "?", "respond_by": c.opens_at.isoformat()}),
        ("sheets", {"lot_id": c.lot_id, "scores": sheet(c, 1)}),
        ("sheets/reopen", {"lot_id": c.lot_id, "seat": 1, "reason": REASON}),
        ("justifications", {"lot_id": c.lot_id, "bid_id": c.bid(0), "justification": REASON}),
        ("report", None),
        ("signatures", {"report_hash": "0" * 64, "dissent": "我不同意这个结果 (I disagree)"}),
    ]
    for path, body in actions:
        r = await api.post(f"{c.url}/{path}", supervisor, json=body)
        assert problem(r, 403)["rule"] == "S-04", path


# ---------------------------------------------------------------- declaration and chair


async def test_a_recusal_redraws_the_seat_and_the_replacement_is_seated_in_the_same_room(api: Api) -> None:
    c = await convene(api)
    await api.at(c.opens_at)
    r = await api.post(
        f"{c.url}/declaration",
        c.members[3],
        json={"no_conflict": False, "statement": "我的配偶在投标人处任职"},
    )
    assert r.json() == {"seat": 3, "declared": False, "outcome": "recused"}
    assert (await api.get(c.url, c.members[3])).status_code == 404
    view = (await api.get(f"{BASE}/draws/{c.draw_id}", await api.bootstrap_centre())).json()
    replacement = view["invitations"][-1]
    assert (replacement["round"], replacement["status"], replacement["reason"]) == (1, "invited", None)
    recused = next(i for i in view["invitations"] if i["status"] == "recused")
    assert replacement["replaces"] == recused["expert_id"]
    spare = [a for a in c.pool if a not in c.members.values()]
    await accept_all(api, spare)
    joined = {a.username: (await api.get(f"{BASE}/rooms", a)).json() for a in spare}
    assert sorted(len(rooms) for rooms in joined.values()) == [0, 1]
    newcomer = next(a for a in spare if joined[a.username])
    assert joined[newcomer.username][0]["id"] == c.room_id
    seated = (await api.get(c.url, newcomer)).json()
    assert seated["my_seat"] == 6 and seated["status"] == "open"
    members = (await api.get(c.url, await api.bootstrap_centre())).json()["members"]
    assert [(m["seat"], m["outcome"]) for m in members] == [
        (n, "recused" if n == 3 else None) for n in range(1, 7)
    ]


async def test_while_a_recused_seat_is_redrawn_the_room_does_not_move_on(api: Api) -> None:
    c = await convene(api)
    await api.at(c.opens_at)
    r = await api.post(
        f"{c.url}/declaration", c.members[5], json={"no_conflict": False, "statement": "亲属在投标人处"}
    )
    assert r.status_code == 200
    for seat in (1, 2, 3, 4):
        assert (
            await api.post(f"{c.url}/declaration", c.members[seat], json={"no_conflict": True})
        ).status_code == 200
    view = (await api.get(c.url, c.members[1])).json()
    c.criteria = [q["code"] for q in view["scheme"]["qualification"]]
    for voter in (1, 2, 3):
        await api.post(f"{c.url}/chair", c.members[voter], json={"seat": 1})
    phases = [(await review(api, c, seat))["phase"] for seat in (1, 2, 3, 4)]
    assert phases == ["qualification"] * 4  # four members are not a committee (W-10)
    spare = [a for a in c.pool if a not in c.members.values()]
    await accept_all(api, spare)
    [newcomer] = [a for a in spare if (await api.get(f"{BASE}/rooms", a)).json()]
    assert (await api.post(f"{c.url}/declaration", newcomer, json={"no_conflict": True})).status_code == 200
    c.members[6] = newcomer
    assert (await review(api, c, 6))["phase"] == "scoring"


async def test_a_draw_whose_committee_sits_in_its_room_cannot_be_aborted(api: Api) -> None:
    c = await convene(api)
    await api.at(c.opens_at)
    r = await api.post(
        f"{c.url}/declaration", c.members[2], json={"no_conflict": False, "statement": "利害关系"}
    )
    assert r.status_code == 200
    centre = await api.bootstrap_centre()
    assert (await api.get(f"{BASE}/draws/{c.draw_id}", centre)).json()["status"] == "inviting"
    r = await api.post(f"{BASE}/draws/{c.draw_id}/abort", centre, json={"reason": "重新抽取整个评标委员会"})
    problem(r, 409)
    assert (await api.get(f"{BASE}/draws/{c.draw_id}", centre)).json()["abort_requests"] == []


async def test_a_recused_seat_the_pool_cannot_fill_lets_the_centre_ask_a_supervisor_to_cancel_the_room(
    api: Api,
) -> None:
    c = await convene(api, spare=0)
    await api.at(c.opens_at)
    r = await api.post(
        f"{c.url}/declaration", c.members[2], json={"no_conflict": False, "statement": "与投标人存在利害关系"}
    )
    assert r.status_code == 200
    centre = await api.bootstrap_centre()
    assert (await api.get(f"{BASE}/draws/{c.draw_id}", centre)).json()["status"] == "short"

    asked = await api.post(
        f"{BASE}/draws/{c.draw_id}/abort", centre, json={"reason": "专家库不足，重新抽取评标委员会"}
    )
    assert asked.status_code == 201, asked.text
    assert (await api.get(c.url, centre)).json()["status"] == "open"  # nothing happens before the approval
    r = await api.post(
        f"{BASE}/draws/{c.draw_id}/abort/approve",
        await api.organisation("supervisor"),
        json={"request_id": asked.json()["id"]},
    )

    assert r.status_code == 200 and r.json()["status"] == "aborted"
    assert r.json()["seed"] is not None and r.json()["abort_requests"][0]["stage"] == "short"
    room = (await api.get(c.url, centre)).json()
    assert room["status"] == "cancelled"
    action = await api.post(f"{c.url}/chair", c.members[1], json={"seat": 1})
    problem(action, 409)
    await api.expert()  # the centre widens the pool
    again = await api.post(
        f"{BASE}/tenders/{c.tender['id']}/draws",
        c.agency,
        json={
            "evaluation_at": (api.clock.now() + timedelta(hours=2)).isoformat(),
            "quotas": [{"specialty": "A02", "seats": 5}],
        },
    )
    assert again.status_code == 201, again.text


async def test_a_majority_of_the_seats_elects_the_chair(api: Api) -> None:
    c = await convene(api)
    await enter(api, c)
    answers = []
    for voter in (1, 2, 3):
        r = await api.post(f"{c.url}/chair", c.members[voter], json={"seat": 2})
        answers.append(r.json()["chair_seat"])
    assert answers == [None, None, 2]
    assert (await api.post(f"{c.url}/chair", c.members[4], json={"seat": 1})).status_code == 409
    members = (await api.get(c.url, c.members[5])).json()["members"]
    assert [m["seat"] for m in members if m["chair"]] == [2]


# ---------------------------------------------------------------- qualification


async def test_a_bid_failed_by_three_of_five_is_rejected_with_the_reasons_and_cannot_be_scored(
    api: Api,
) -> None:
    c = await convene(api)
    await enter(api, c)
    await elect(api, c)
    for seat in c.members:
        await review(api, c, seat, {0: f"资质证书过期 (seat {seat})"} if seat <= 3 else None)
    view = (await api.get(c.url, c.members[1])).json()
    assert view["phase"] == "scoring"
    assert view["qualification"][c.lot_id] == {
        c.bid(0): [
            {
                "criterion": c.criteria[0],
                "reasons": [f"资质证书过期 (seat {s})" for s in (1, 2, 3)],
                "fail_votes": 3,
            }
        ],
        c.bid(1): [],
        c.bid(2): [],
    }
    r = await api.post(f"{c.url}/sheets", c.members[1], json={"lot_id": c.lot_id, "scores": sheet(c, 1)})
    body = problem(r, 422)
    assert body["rule"] == "W-10" and [e["field"] for e in body["errors"]] == [f"scores[{c.bid(0)}]"]
    r = await api.post(
        f"{c.url}/sheets",
        c.members[1],
        json={"lot_id": c.lot_id, "scores": sheet(c, 1, bids=[c.bid(1), c.bid(2)])},
    )
    assert r.status_code == 201, r.text


async def test_a_bid_failed_by_two_of_five_stays_in_the_evaluation(api: Api) -> None:
    c = await convene(api)
    await enter(api, c)
    await elect(api, c)
    for seat in c.members:
        await review(api, c, seat, {0: "业绩不符 (track record)"} if seat <= 2 else None)
    view = (await api.get(c.url, c.members[1])).json()
    assert view["qualification"][c.lot_id][c.bid(0)] == []
    await score(api, c, 1)


async def test_a_fail_without_a_reason_is_refused(api: Api) -> None:
    c = await convene(api)
    await enter(api, c)
    body = votes(c, {1: "x"})
    index = next(i for i, v in enumerate(body) if not v["passed"])
    body[index]["reason"] = "  "
    r = await api.post(f"{c.url}/reviews", c.members[1], json={"lot_id": c.lot_id, "votes": body})
    assert fields(r, 422) == [f"votes[{index}].reason"]


async def test_an_incomplete_review_is_refused(api: Api) -> None:
    c = await convene(api)
    await enter(api, c)
    r = await api.post(f"{c.url}/reviews", c.members[1], json={"lot_id": c.lot_id, "votes": votes(c)[1:]})
    assert fields(r, 422) == ["votes"]


async def test_a_second_review_of_the_lot_is_a_conflict(api: Api) -> None:
    c = await convene(api)
    await enter(api, c)
    await review(api, c, 1)
    r = await api.post(f"{c.url}/reviews", c.members[1], json={"lot_id": c.lot_id, "votes": votes(c)})
    problem(r, 409)


async def test_a_review_of_another_tenders_lot_is_refused(api: Api) -> None:
    c = await convene(api)
    await enter(api, c)
    other = await api.draft(c.agency)
    r = await api.post(
        f"{c.url}/reviews", c.members[1], json={"lot_id": other["lots"][0]["id"], "votes": votes(c)}
    )
    assert fields(r, 422) == ["lot_id"]


# ---------------------------------------------------------------- score sheets


async def test_a_score_out_of_range_is_refused_naming_the_score(api: Api) -> None:
    c = await convene(api)
    await qualified(api, c)
    code, maximum = c.leaves[0]
    scores = sheet(c, 1)
    scores[c.bid(1)][code] = maximum + 1
    r = await api.post(f"{c.url}/sheets", c.members[1], json={"lot_id": c.lot_id, "scores": scores})
    assert fields(r, 422) == [f"scores[{c.bid(1)}][{code}]"]
    scores[c.bid(1)][code] = -1
    r = await api.post(f"{c.url}/sheets", c.members[1], json={"lot_id": c.lot_id, "scores": scores})
    assert fields(r, 422) == [f"scores[{c.bid(1)}][{code}]"]


async def test_a_score_for_an_unknown_bid_is_refused_naming_it(api: Api) -> None:
    c = await convene(api)
    await qualified(api, c)
    stranger = str(uuid.uuid4())
    scores = {**sheet(c, 1), stranger: sheet(c, 1)[c.bid(0)]}
    r = await api.post(f"{c.url}/sheets", c.members[1], json={"lot_id": c.lot_id, "scores": scores})
    assert fields(r, 422) == [f"scores[{stranger}]"]


async def test_a_sheet_for_another_tenders_lot_is_refused(api: Api) -> None:
    c = await convene(api)
    await qualified(api, c)
    other = await api.draft(c.agency)
    r = await api.post(
        f"{c.url}/sheets", c.members[1], json={"lot_id": other["lots"][0]["id"], "scores": sheet(c, 1)}
    )
    assert fields(r, 422) == ["lot_id"]


async def test_a_member_sees_no_other_sheet_before_submitting_their_own(api: Api) -> None:
    c = await convene(api)
    await qualified(api, c)
    await score(api, c, 1)
    await score(api, c, 2)
    before = (await api.get(f"{c.url}/sheets", c.members[3], params={"lot_id": c.lot_id})).json()
    assert before == []
    assert (await api.get(f"{c.url}/abnormal", c.members[3], params={"lot_id": c.lot_id})).json() == []
    await score(api, c, 3)
    after = (await api.get(f"{c.url}/sheets", c.members[3], params={"lot_id": c.lot_id})).json()
    assert sorted(s["seat"] for s in after) == [1, 2, 3]
    assert all(s["submitted"] and s["scores"] == sheet(c, s["seat"]) for s in after)


async def test_a_second_submission_is_a_conflict_until_the_chair_reopens_the_sheet(api: Api) -> None:
    c = await convene(api)
    await qualified(api, c)
    await score(api, c, 2)
    again = {"lot_id": c.lot_id, "scores": sheet(c, 2, lambda *_a: 0)}
    problem(await api.post(f"{c.url}/sheets", c.members[2], json=again), 409)
    short = await api.post(
        f"{c.url}/sheets/reopen", c.members[1], json={"lot_id": c.lot_id, "seat": 2, "reason": "x"}
    )
    assert fields(short, 400) == ["reason"]
    r = await api.post(
        f"{c.url}/sheets/reopen", c.members[1], json={"lot_id": c.lot_id, "seat": 2, "reason": REASON}
    )
    assert r.status_code == 200 and r.json()["submitted"] is False
    r = await api.post(f"{c.url}/sheets", c.members[2], json=again)
    assert r.status_code == 201 and r.json()["submissions"] == 2


async def test_only_the_chair_reopens_a_sheet(api: Api) -> None:
    c = await convene(api)
    await qualified(api, c)
    await score(api, c, 2)
    r = await api.post(
        f"{c.url}/sheets/reopen", c.members[2], json={"lot_id": c.lot_id, "seat": 2, "reason": REASON}
    )
    problem(r, 403)


# ---------------------------------------------------------------- abnormal scores (G-10)


async def test_an_abnormal_score_blocks_the_report_until_its_member_justifies_it(api: Api) -> None:
    c = await convene(api)
    await qualified(api, c)
    for seat in c.members:
        await score(api, c, seat, low_from(4, c.bid(1)))
    flagged = (await api.get(f"{c.url}/abnormal", c.members[1], params={"lot_id": c.lot_id})).json()
    assert [(a["seat"], a["bid_id"], a["total_cp"], a["justification"]) for a in flagged] == [
        (4, c.bid(1), 0, None)
    ]
    assert problem(await api.post(f"{c.url}/report", c.members[1]), 422)["rule"] == "G-10"
    r = await api.post(
        f"{c.url}/justifications",
        c.members[4],
        json={
            "lot_id": c.lot_id,
            "bid_id": c.bid(1),
            "justification": "技术方案缺少关键工序 (key steps missing)",
        },
    )
    assert r.status_code == 200 and r.json()["justified"] == [c.bid(1)]
    made = await make_report(api, c)
    abnormal = made["report"]["lots"][0]["abnormal"]
    assert [(a["seat"], a["justification"], a["revised"]) for a in abnormal] == [
        (4, "技术方案缺少关键工序 (key steps missing)", False)
    ]


async def test_an_abnormal_score_revised_after_the_chair_reopens_the_sheet_unblocks_the_report(
    api: Api,
) -> None:
    c = await convene(api)
    await qualified(api, c)
    for seat in c.members:
        await score(api, c, seat, low_from(4, c.bid(1)))
    r = await api.post(
        f"{c.url}/sheets/reopen", c.members[1], json={"lot_id": c.lot_id, "seat": 4, "reason": REASON}
    )
    assert r.status_code == 200
    assert (await score(api, c, 4))["submissions"] == 2
    made = await make_report(api, c)
    assert made["report"]["lots"][0]["abnormal"] == []


async def test_a_score_cannot_be_justified_once_the_report_is_drawn_up(api: Api) -> None:
    c = await convene(api)
    await qualified(api, c)
    for seat in c.members:
        await score(api, c, seat, low_from(4, c.bid(1)))
    why = {
        "lot_id": c.lot_id,
        "bid_id": c.bid(1),
        "justification": "技术方案缺少关键工序 (key steps missing)",
    }
    assert (await api.post(f"{c.url}/justifications", c.members[4], json=why)).status_code == 200
    made = await make_report(api, c)
    later = {**why, "justification": "改写后的理由，与报告不一致 (rewritten after the report)"}
    problem(await api.post(f"{c.url}/justifications", c.members[4], json=later), 409)
    sheets = (await api.get(f"{c.url}/sheets", c.members[4], params={"lot_id": c.lot_id})).json()
    kept = next(s["justifications"] for s in sheets if s["seat"] == 4)
    assert kept == {c.bid(1): made["report"]["lots"][0]["abnormal"][0]["justification"]}


async def test_justifying_a_score_that_is_not_abnormal_is_refused(api: Api) -> None:
    c = await convene(api)
    await scored(api, c)
    r = await api.post(
        f"{c.url}/justifications",
        c.members[2],
        json={
            "lot_id": c.lot_id,
            "bid_id": c.bid(0),
            "justification": "我的打分有充分的理由 (I have my reasons)",
        },
    )
    assert fields(r, 422) == ["bid_id"]


# ---------------------------------------------------------------- clarifications


async def ask(api: Api, c: Committee, bid: int = 0, hours: int = 1) -> dict[str, Any]:
    r = await api.post(
        f"{c.url}/clarifications",
        c.members[1],
        json={
            "bid_id": c.bid(bid),
            "question": "请说明工期计算依据 (explain the duration)",
            "respond_by": (api.clock.now() + timedelta(hours=hours)).isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_the_chair_asks_and_the_bidder_answers_once_before_the_deadline(api: Api) -> None:
    c = await convene(api)
    await enter(api, c)
    await elect(api, c)
    asked = await ask(api, c)
    bidder = c.bids[0].bidder
    listed = (await api.get(f"{BASE}/clarifications/", bidder)).json()
    assert [(q["id"], q["bid_id"], q["answer"]) for q in listed] == [(asked["id"], c.bid(0), None)]
    assert set(listed[0]) == {"id", "bid_id", "question", "respond_by", "answer", "answered_at"}
    r = await api.post(
        f"{BASE}/clarifications/{asked['id']}/answer", bidder, json={"answer": "按定额工期计算"}
    )
    assert r.status_code == 200
    again = await api.post(f"{BASE}/clarifications/{asked['id']}/answer", bidder, json={"answer": "改口"})
    problem(again, 409)
    view = (await api.get(c.url, c.members[2])).json()
    assert [q["answer"] for q in view["clarifications"]] == ["按定额工期计算"]


async def test_an_answer_after_the_clarification_deadline_is_a_conflict(api: Api) -> None:
    c = await convene(api)
    await enter(api, c)
    await elect(api, c)
    asked = await ask(api, c)
    api.clock.set(datetime.fromisoformat(asked["respond_by"]) + timedelta(seconds=1))
    r = await api.post(
        f"{BASE}/clarifications/{asked['id']}/answer", c.bids[0].bidder, json={"answer": "迟到"}
    )
    problem(r, 409)


async def test_another_bidder_cannot_see_or_answer_the_clarification(api: Api) -> None:
    c = await convene(api)
    await enter(api, c)
    await elect(api, c)
    asked = await ask(api, c)
    other = c.bids[1].bidder
    assert (await api.get(f"{BASE}/clarifications/", other)).json() == []
    r = await api.post(f"{BASE}/clarifications/{asked['id']}/answer", other, json={"answer": "冒名"})
    problem(r, 404)


async def test_a_clarification_deadline_without_a_time_zone_is_refused(api: Api) -> None:
    c = await convene(api)
    await enter(api, c)
    await elect(api, c)
    r = await api.post(
        f"{c.url}/clarifications",
        c.members[1],
        json={"bid_id": c.bid(0), "question": "?", "respond_by": "2026-03-23T15:00:00"},
    )
    assert fields(r, 422) == ["respond_by"]


async def test_no_clarification_is_asked_once_the_report_is_drawn_up(api: Api) -> None:
    c = await convene(api)
    await scored(api, c)
    await make_report(api, c)
    r = await api.post(
        f"{c.url}/clarifications",
        c.members[1],
        json={
            "bid_id": c.bid(0),
            "question": "请说明工期计算依据 (explain the duration)",
            "respond_by": (api.clock.now() + timedelta(hours=1)).isoformat(),
        },
    )
    problem(r, 409)


# ---------------------------------------------------------------- the report and its signatures


async def test_the_report_hash_is_the_hash_of_the_report(api: Api) -> None:
    c = await convene(api)
    await scored(api, c)
    made = await make_report(api, c)
    assert made["report_hash"] == report.report_hash(made["report"])
    fetched = (await api.get(f"{c.url}/report", c.members[3])).json()
    assert fetched["report_hash"] == made["report_hash"] and fetched["report"] == made["report"]
    assert [s["outcome"] for s in fetched["signatures"]] == ["pending"] * 5


async def test_signing_another_hash_is_refused_naming_report_hash(api: Api) -> None:
    c = await convene(api)
    await scored(api, c)
    await make_report(api, c)
    wrong = "ab" * 32
    r = await api.post(
        f"{c.url}/signatures",
        c.members[2],
        json={"report_hash": wrong, "signature": signature(api, c.members[2], wrong)},
    )
    assert fields(r, 422) == ["report_hash"]


async def test_a_signature_that_does_not_verify_is_refused_naming_signature(api: Api) -> None:
    c = await convene(api)
    await scored(api, c)
    made = await make_report(api, c)
    forged = signature(api, c.members[3], made["report_hash"])  # another member's key
    r = await api.post(
        f"{c.url}/signatures", c.members[2], json={"report_hash": made["report_hash"], "signature": forged}
    )
    assert fields(r, 422) == ["signature"]


async def test_a_written_dissent_is_accepted_and_recorded(api: Api) -> None:
    c = await convene(api)
    await scored(api, c)
    made = await make_report(api, c)
    dissent = "我认为第二名的技术方案不可行 (the runner-up's method is unworkable)"
    r = await api.post(
        f"{c.url}/signatures", c.members[5], json={"report_hash": made["report_hash"], "dissent": dissent}
    )
    assert r.json() == {"seat": 5, "outcome": "dissent", "room_status": "open"}
    again = await api.post(
        f"{c.url}/signatures", c.members[5], json={"report_hash": made["report_hash"], "dissent": dissent}
    )
    problem(again, 409)
    signatures = (await api.get(f"{c.url}/report", c.members[1])).json()["signatures"]
    assert [(s["seat"], s["outcome"], s["dissent"]) for s in signatures if s["seat"] == 5] == [
        (5, "dissent", dissent)
    ]


async def test_when_every_member_answered_the_room_closes_and_the_candidates_go_to_publicity(
    api: Api,
) -> None:
    c = await convene(api, bidders=4)
    await scored(api, c)
    made = await make_report(api, c)
    dissent = "我不同意排名的依据与结论 (I disagree)"
    for seat in (1, 2, 3, 4):
        assert (await sign(api, c, seat, made["report_hash"]))["room_status"] == "open"
    r = await api.post(
        f"{c.url}/signatures", c.members[5], json={"report_hash": made["report_hash"], "dissent": dissent}
    )
    assert r.json()["room_status"] == "closed"
    tender = (await api.get(f"/api/v1/tenders/{c.tender['id']}")).json()
    assert tender["status"] == "publicity"
    notices = (
        await api.get("/api/v1/notices", params={"tender_code": c.tender["code"], "kind": "candidates"})
    ).json()
    body = notices["items"][0]["body"]
    assert body["report_sha256"] == made["report_hash"]
    assert [len(lot["candidates"]) for lot in body["lots"]] == [3]
    assert body["lots"][0]["candidates"][0]["declared_price_fen"] == min(b.price_fen for b in c.bids)
    pdf = await api.get(f"{c.url}/report.pdf", c.members[1])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    html = await api.get(f"{c.url}/report.html", c.members[1])
    assert dissent in html.text
    assert (await api.get(f"{BASE}/draws/{c.draw_id}", c.agency)).json()["invitations"][0]["expert_name"]


async def test_after_the_room_closes_every_action_is_a_conflict(api: Api) -> None:
    c = await convene(api)
    await scored(api, c)
    made = await make_report(api, c)
    for seat in c.members:
        await sign(api, c, seat, made["report_hash"])
    problem(await api.post(f"{c.url}/report", c.members[1]), 409)
    problem(
        await api.post(f"{c.url}/sheets", c.members[2], json={"lot_id": c.lot_id, "scores": sheet(c, 2)}), 409
    )
    r = await api.post(
        f"{c.url}/sheets/reopen", c.members[1], json={"lot_id": c.lot_id, "seat": 2, "reason": REASON}
    )
    problem(r, 409)


# ---------------------------------------------------------------- the time box


async def test_at_the_end_of_the_time_box_members_who_did_not_sign_are_deemed_to_agree(api: Api) -> None:
    c = await convene(api)
    await scored(api, c)
    made = await make_report(api, c)
    for seat in (1, 2, 3):
        await sign(api, c, seat, made["report_hash"])
    closes_at = datetime.fromisoformat((await api.get(c.url, c.members[1])).json()["closes_at"])
    await api.at(closes_at)
    fetched = (await api.get(f"{c.url}/report", await api.bootstrap_centre())).json()
    assert fetched["status"] == "closed"
    assert [s["outcome"] for s in fetched["signatures"]] == ["signed"] * 3 + ["deemed_agreed"] * 2
    assert (await api.get(f"/api/v1/tenders/{c.tender['id']}")).json()["status"] == "publicity"


async def test_a_room_out_of_time_before_the_report_expires_until_the_centre_extends_it(api: Api) -> None:
    c = await convene(api)
    await enter(api, c)
    closes_at = datetime.fromisoformat((await api.get(c.url, c.members[1])).json()["closes_at"])
    await api.at(closes_at)
    assert (await api.get(c.url, c.members[1])).json()["status"] == "expired"
    problem(await api.post(f"{c.url}/chair", c.members[1], json={"seat": 1}), 409)
    centre = await api.bootstrap_centre()
    r = await api.post(f"{c.url}/extend", centre, json={"hours": 4, "reason": ""})
    assert fields(r, 400) == ["reason"]
    r = await api.post(f"{c.url}/extend", centre, json={"hours": 4, "reason": "评标工作量大，需延长时间"})
    assert r.status_code == 200
    assert r.json() == {"status": "open", "closes_at": (closes_at + timedelta(hours=4)).isoformat()}
    assert (await api.post(f"{c.url}/chair", c.members[1], json={"seat": 1})).status_code == 200


async def test_at_the_end_of_the_time_box_actions_are_refused_before_the_chronograph_runs(api: Api) -> None:
    c = await convene(api)
    await scored(api, c)
    made = await make_report(api, c)
    closes_at = datetime.fromisoformat((await api.get(c.url, c.members[1])).json()["closes_at"])
    api.clock.set(closes_at)  # no tick yet: the room still reads `open`
    r = await api.post(
        f"{c.url}/signatures",
        c.members[2],
        json={"report_hash": made["report_hash"], "dissent": "时间已过仍提交的异议"},
    )
    problem(r, 409)
    await api.tick()
    signatures = (await api.get(f"{c.url}/report", c.members[2])).json()["signatures"]
    assert [s["outcome"] for s in signatures] == ["deemed_agreed"] * 5


async def test_the_rooms_opening_and_the_draws_confirmation_are_in_the_audit_trail(api: Api) -> None:
    c = await convene(api)
    await api.at(c.opens_at)
    centre = await api.bootstrap_centre()
    audit = "/api/v1/audit"
    opened = (await api.get(audit, centre, params={"object_type": "room", "object_id": c.room_id})).json()
    assert [e["action"] for e in opened["items"] if e["action"] != "room.view"] == ["room.open"]
    draw_events = (
        await api.get(audit, centre, params={"object_type": "draw", "object_id": c.draw_id})
    ).json()
    confirm = next(e for e in draw_events["items"] if e["action"] == "draw.confirm")
    seed = (await api.get(f"{BASE}/draws/{c.draw_id}", centre)).json()["seed"]
    assert confirm["detail"]["seed"] == seed


# ---------------------------------------------------------------- the event stream


def sse(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.replace("\r\n", "\n").strip().split("\n\n"):
        fields_ = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            fields_[name] = value
        events.append(fields_)
    return events


async def test_the_event_stream_lists_the_progress_in_order_without_scores_or_names(api: Api) -> None:
    c = await convene(api)
    await scored(api, c)
    r = await api.get(f"{c.url}/events", await api.organisation("supervisor"), params={"follow": "false"})
    assert r.status_code == 200
    events = sse(r.text)
    assert [int(e["id"]) for e in events] == list(range(1, len(events) + 1))
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["committee.seated", "room.opened"]
    assert kinds.count("member.entered") == 5 and kinds.count("sheet.submitted") == 5
    assert kinds.index("chair.elected") < kinds.index("review.submitted") < kinds.index("phase")
    assert kinds[-1] == "phase" and json.loads(events[-1]["data"])["phase"] == "report"
    for event in events:
        assert set(json.loads(event["data"])) <= {"seq", "at", "seats", "opens_at", "seat", "lot_id", "phase"}
    assert "专家" not in r.text and c.bids[0].bidder.username not in r.text


async def test_a_bid_without_a_positive_price_is_rejected_and_never_ranked(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bids = [
        await api.bid(await api.organisation("bidder"), tender, price)
        for price in (0, 3_900_000_000, 3_800_000_000)
    ]
    await api.at(DEADLINE)
    for bid in bids:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    await api.at(AFTER_WINDOW)

    done = await api.evaluate(agency, tender["id"], fail={bids[0].bid_id})

    room = (await api.get(f"{BASE}/rooms/{done['room_id']}/report", done["members"][1])).json()
    lot = room["report"]["lots"][0]
    zero = next(b for b in lot["bids"] if b["bid_id"] == bids[0].bid_id)
    assert zero["qualified"] is False and zero["rank"] is None
    assert [r["criterion"] for r in zero["rejections"]] == ["Q1", "price"]
    assert [c["bid_id"] for c in lot["candidates"]] == [bids[2].bid_id, bids[1].bid_id]
