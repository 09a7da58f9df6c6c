"""The evaluation committee of `ggzy demo --sector procurement` (评标委员会): the centre keeps a pool of
medical-equipment and economics experts; with a budget of 10 million yuan or more a committee of five is
refused (G-07) and seven are drawn, a supervisor's witness committed before the platform's seed; every
member accepts, declares no conflict, reviews qualification and scores alone; the chair draws up the report,
every member signs its hash, and the procurement waits for the purchaser's decision (no candidates'
publicity in procurement)."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any

from rich.table import Table

from demo.common import (
    Actor,
    Outcome,
    Trade,
    at_shanghai,
    check,
    enrol,
    make_party,
    shanghai_text,
    short,
    yuan,
)
from demo.evaluation import import_pool, register_signing_keys, witnessed
from evaluation import report, scoring
from evaluation.taxonomy import DEFAULT_SPECIALTIES
from rules.calendar import local_date

# The pool: six experts of medical equipment (B02) and three of economics (D01), each at their own employer.
EXPERTS = tuple(
    make_party(f"expert{n}", "employer", employer, "12", 60 + n)
    for n, employer in enumerate(
        (
            "南京医科大学第二附属医院",
            "东南大学附属中大医院",
            "江苏省人民医院",
            "南京鼓楼医院",
            "江苏省医疗器械检验所",
            "南京市第二医院",
            "南京审计大学",
            "南京财经大学",
            "江苏苏亚金诚会计师事务所",
        ),
        start=1,
    )
)
NAMES = ("孙立群", "钱文华", "郑晓明", "冯丽娟", "韩志刚", "曹雪梅", "彭建华", "蒋慧", "沈国平")
SPECIALTIES = ("B02", "B02", "B02", "B02", "B02", "B02", "D01", "D01", "D01")
QUOTAS = ({"specialty": "B02", "seats": 5}, {"specialty": "D01", "seats": 2})  # 7 members (G-07)
TOO_FEW = ({"specialty": "B02", "seats": 4}, {"specialty": "D01", "seats": 1})  # 5: refused from 10m yuan
PANEL = ({"specialty": "B02", "seats": 2}, {"specialty": "D01", "seats": 1})  # quotation, negotiation (G-13)


def _experts(t: Trade) -> list[Actor]:
    return [t.people[p.username] for p in EXPERTS]


def _evaluation_at(t: Trade) -> datetime:
    return at_shanghai(local_date(t.window_end) + timedelta(days=1), time(9, 0))


async def build_pool(t: Trade) -> Outcome:
    """The centre keeps the specialty tree, registers the experts and imports the pool from CSV; each
    expert registers an Ed25519 key to sign the report with."""
    tree = [{"code": c, "parent_code": p, "name": n, "active": True} for c, p, n in DEFAULT_SPECIALTIES]
    await t.p.call("PUT", "/api/v1/evaluation/specialties", t.centre, json=tree)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["name", "username", "employer_credit_code", "employer_name", "region_code", "title", "specialties"]
    )
    table = Table("expert", "name", "employer", "specialty", box=None, padding=(0, 2))
    for n, part in enumerate(EXPERTS):
        t.people[part.username] = await enrol(t, part, NAMES[n])
        party = t.cast(part)
        writer.writerow(
            [NAMES[n], party.username, party.credit_code, party.name, "320100", "主任医师", SPECIALTIES[n]]
        )
        table.add_row(party.username, NAMES[n], party.name, SPECIALTIES[n])
    counts = await import_pool(t, out.getvalue())
    check(counts.get("created") == len(EXPERTS), f"{len(EXPERTS)} experts created", counts)
    await register_signing_keys(t, EXPERTS)
    return (
        f"{len(EXPERTS)} experts imported from CSV ({SPECIALTIES.count('B02')} of medical equipment B02, "
        f"{SPECIALTIES.count('D01')} of economics D01), each with an Ed25519 signing key",
        table,
    )


def _draw_body(t: Trade, quotas: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return {"evaluation_at": _evaluation_at(t).isoformat(), "quotas": list(quotas), "invitation_minutes": 60}


async def _draw(t: Trade, quotas: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Draw `quotas` for `t`: the supervisor commits to a witness, the platform then draws its seed, the reveal
    invites the members and every invited expert accepts. Answers the platform's commitment and the confirmed
    draw."""
    seats = sum(int(q["seats"]) for q in quotas)
    requested = await t.p.call(
        "POST", f"/api/v1/evaluation/tenders/{t.tid}/draws", t.agency, expect=201, json=_draw_body(t, quotas)
    )
    check(requested["pool_size"] == len(EXPERTS), f"{len(EXPERTS)} eligible experts", requested["pool_size"])
    committed, ran = await witnessed(t, requested["id"], t.supervisor)
    check(len(ran["invitations"]) == seats, f"{seats} invitations", ran["invitations"])
    t.p.clock.advance(timedelta(minutes=10))
    for actor in _experts(t):
        mine = await t.p.call("GET", "/api/v1/evaluation/invitations", actor)
        for invitation in (i for i in mine if i["status"] == "invited"):
            await t.p.call(
                "POST",
                f"/api/v1/evaluation/invitations/{invitation['id']}/answer",
                actor,
                json={"accept": True},
            )
    done = await t.p.call("GET", f"/api/v1/evaluation/draws/{requested['id']}", t.centre)
    check(done["status"] == "confirmed", "the committee confirmed", done["status"])
    check(done["seed"] is not None, "the seed revealed", done["seed"])
    t.evaluation.update(draw_id=requested["id"], evaluation_at=_evaluation_at(t))
    return committed, done


async def draw_committee(t: Trade) -> Outcome:
    """A committee of five is refused: the budget is 10 million yuan or more (G-07). The agency asks for
    seven (5 medical equipment, 2 economics); the supervisor commits to a witness, the platform then draws
    its seed, and the reveal invites seven; every expert accepts and the seed is revealed."""
    t.p.clock.advance(timedelta(hours=1))
    budget = sum(int(lot["estimated_price_fen"]) for lot in t.tender["lots"])
    problem = await t.p.refused(
        "POST",
        f"/api/v1/evaluation/tenders/{t.tid}/draws",
        t.agency,
        rule="G-07",
        json=_draw_body(t, TOO_FEW),
    )
    check("at least 7" in str(problem.get("detail")), "a refusal asking for at least 7 members", problem)
    committed, done = await _draw(t, QUOTAS)
    return (
        f"budget {yuan(budget)} yuan: a committee of 5 → 422 rule G-07 ({problem['detail']}); 7 drawn from a pool of {len(EXPERTS)} "
        f"(B02 × 5, D01 × 2): the supervisor's witness {short(committed['witness_commitment'])} before the "
        f"platform's signed commitment {short(committed['commitment'])}; all seven accepted, seed "
        f"{short(done['seed'])} revealed"
    )


async def draw_panel(t: Trade, quotas: tuple[dict[str, Any], ...] = PANEL) -> str:
    """A panel (by default of three, for a method other than tendering, G-13: 2 of the trade, 1 of economics)
    drawn and witnessed like a committee; the facts."""
    t.p.clock.advance(timedelta(hours=1))
    committed, done = await _draw(t, quotas)
    seats = sum(int(q["seats"]) for q in quotas)
    shares = ", ".join(f"{q['specialty']} × {q['seats']}" for q in quotas)
    return (
        f"a panel of {seats} drawn ({shares}), witness "
        f"{short(committed['witness_commitment'])}, seed {short(done['seed'])}"
    )


async def enter_room(t: Trade, size: int) -> tuple[str, dict[int, Actor]]:
    """Every member of `t`'s committee finds its room (of the latest evaluation round: after a re-evaluation
    the same members sit again) and signs the no-conflict declaration (again: a no-op); the room and the
    seats."""
    members: dict[int, Actor] = {}
    room_id = ""
    chaired = False
    for actor in _experts(t):
        rooms = [
            r for r in await t.p.call("GET", "/api/v1/evaluation/rooms", actor) if r["tender_id"] == t.tid
        ]
        if not rooms:
            continue
        room_id = max(rooms, key=lambda r: int(r["round"]))["id"]
        view = await t.p.call("GET", f"/api/v1/evaluation/rooms/{room_id}", actor)
        await t.p.call(
            "POST", f"/api/v1/evaluation/rooms/{room_id}/declaration", actor, json={"no_conflict": True}
        )
        members[view["my_seat"]] = actor
        chaired = chaired or any(m["chair"] for m in view.get("members", []))  # a later round keeps its chair
    check(len(members) == size, f"{size} members entered", sorted(members))
    for seat in [] if chaired else sorted(members):
        answer = await t.p.call(
            "POST", f"/api/v1/evaluation/rooms/{room_id}/chair", members[seat], json={"seat": 1}
        )
        if answer["chair_seat"] is not None:
            break
    return room_id, members


async def _review_and_score(
    t: Trade, room_id: str, members: dict[int, Actor], failed: Mapping[str, str]
) -> dict[str, Any]:
    """Every member passes every bid on qualification, but fails the bids of `failed` (bid id → reason) on
    the first criterion, and gives every passed bid the same technical and business scores (70 % of each),
    so the price decides the ranking; the room's lot."""
    room = await t.p.call("GET", f"/api/v1/evaluation/rooms/{room_id}", members[1])
    scheme, lot = room["scheme"], room["lots"][0]
    leaves = [
        (c.code, c.max_cp) for c in scoring.leaves(scoring.scheme_from_json(scheme)) if c.kind == "subjective"
    ]
    for actor in members.values():
        votes: list[dict[str, Any]] = [
            {"bid_id": b["bid_id"], "criterion": q["code"], "passed": True}
            for b in lot["bids"]
            for q in scheme["qualification"]
        ]
        for vote in votes:
            if vote["bid_id"] in failed and vote["criterion"] == scheme["qualification"][0]["code"]:
                vote.update(passed=False, reason=failed[vote["bid_id"]])
        await t.p.call(
            "POST",
            f"/api/v1/evaluation/rooms/{room_id}/reviews",
            actor,
            expect=201,
            json={"lot_id": lot["id"], "votes": votes},
        )
    if not leaves:  # the lowest evaluated price: qualification only, the price ranks
        return dict(lot)
    for actor in members.values():
        sheet = {
            b["bid_id"]: {code: top * 7 // 10 for code, top in leaves}
            for b in lot["bids"]
            if b["bid_id"] not in failed
        }
        await t.p.call(
            "POST",
            f"/api/v1/evaluation/rooms/{room_id}/sheets",
            actor,
            expect=201,
            json={"lot_id": lot["id"], "scores": sheet},
        )
    return dict(lot)


async def sit(
    t: Trade, size: int, failed: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The room of `t`'s committee of `size` opens at its time: declarations, a chair, qualification (the
    bids of `failed` failed with its reason) and, where the method scores, sealed scores; the chair draws up
    the report and every member signs its hash with Ed25519. Answers the report as made and the room's
    lot."""
    if t.p.clock.now() < t.evaluation["evaluation_at"]:  # a technical evaluation (双信封) sat there already
        await t.p.move_to(t.evaluation["evaluation_at"])

    async def room_open() -> bool:
        rooms = await t.p.call("GET", "/api/v1/evaluation/rooms", t.agency)
        return any(r["tender_id"] == t.tid and r["status"] != "scheduled" for r in rooms)

    await t.p.settle(room_open, f"the chronograph to open {t.code}'s evaluation room")
    room_id, members = await enter_room(t, size)
    lot = await _review_and_score(t, room_id, members, failed or {})
    made: dict[str, Any] = await t.p.call("POST", f"/api/v1/evaluation/rooms/{room_id}/report", members[1])
    digest = made["report_hash"]
    check(report.report_hash(made["report"]) == digest, "the hash is the report's", digest)
    for actor in members.values():
        key = t.keys[actor.name].signing
        assert key is not None
        signature = base64.b64encode(key.sign(report.signing_message(digest))).decode()
        await t.p.call(
            "POST",
            f"/api/v1/evaluation/rooms/{room_id}/signatures",
            actor,
            json={"report_hash": digest, "signature": signature},
        )
    await t.p.settle(
        t.status_is("decision"), f"the signed report to put {t.code} to the purchaser's decision"
    )
    t.evaluation["ranking"] = [c["bid_id"] for c in made["report"]["lots"][0]["candidates"]]
    t.evaluation["room_id"] = room_id
    return made, lot


async def evaluate(t: Trade) -> Outcome:
    """The room opens at 09:00 the day after the opening: declarations, a chair, qualification and sealed
    scores; the chair draws up the report and every member signs its hash with Ed25519. The procurement
    then waits for the purchaser's decision: no candidates' publicity (G-11)."""
    made, lot = await sit(t, 7)
    candidates = made["report"]["lots"][0]["candidates"]
    table = Table("rank", "supplier", "price (yuan)", "score", box=None, padding=(0, 2))
    for c in candidates:
        table.add_row(str(c["rank"]), c["bidder"], yuan(c["price_fen"]), f"{c['total_cp'] / 100:.2f}")
    return (
        f"room opened {shanghai_text(t.evaluation['evaluation_at'])}; 7 declarations, chair seat 1; "
        f"{len(lot['bids'])} bids qualified and scored; report {short(made['report_hash'])} signed by all seven",
        table,
    )
