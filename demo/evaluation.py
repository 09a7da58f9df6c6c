"""The evaluation steps of `ggzy demo`: the centre builds the expert pool (one expert works for a bidder,
another left one within three years, a third works for the tenderer: all three are avoided, G-08); a first
draw is aborted at the agency's request with a supervisor's approval and its seed revealed at once; the
agency asks for a committee again, a supervisor commits to a witness before the platform draws its seed,
and the witness's reveal invites five experts; one declines and is replaced from the same quota; the
auditor replays both draws, avoidance included, from their published records; in the evaluation
room the members declare no conflict, elect a chair, review qualification and score alone; an abnormal
score (G-10) holds the report back until it is justified; every member signs the report's hash with
Ed25519 (W-11) and the candidates go to publicity."""

from __future__ import annotations

import base64
import csv
import io
import json
import secrets
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.table import Table

from bidding import agekeys
from demo.common import (
    BIDDERS,
    Actor,
    Party,
    Trade,
    at_shanghai,
    check,
    enrol,
    make_party,
    shanghai_text,
    short,
    yuan,
)
from evaluation import draw, report, scoring
from evaluation.taxonomy import DEFAULT_SPECIALTIES
from rules.calendar import local_date

# The pool: nine experts of municipal works (A02) and economics (D01) the draw may take, and two it may not.
EXPERTS = tuple(
    make_party(f"expert{n}", "employer", employer, "12", 40 + n)
    for n, employer in enumerate(
        (
            "南京市市政设计研究院有限责任公司",
            "东南大学",
            "南京工业大学",
            "江苏省交通规划设计院股份有限公司",
            "河海大学",
            "南京林业大学",
            "中衡设计集团股份有限公司",
            "江苏天宏华信工程造价咨询有限公司",
            "南京审计大学",
            "南京水务集团有限公司",
            "江苏省建筑科学研究院有限公司",
        ),
        start=1,
    )
)
NAMES = ("王建国", "李秀英", "张伟", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周强", "吴芳", "徐刚")
SPECIALTIES = ("A0201", "A0202", "A0201", "A0202", "A0201", "A0202", "A0201", "D01", "D01", "A0202", "A0201")
EMPLOYED_BY_BIDDER = 9  # expert10 works for bidder2: avoided (G-08)
LEFT_A_BIDDER = 10  # expert11 left bidder3 in 2025: avoided for three years (G-08)
EMPLOYED_BY_TENDERER = 1  # expert2 works for the tenderer: avoided (G-08)
QUOTAS = ({"specialty": "A02", "seats": 4}, {"specialty": "D01", "seats": 1})


def _expert_actors(t: Trade) -> list[Actor]:
    return [t.people[p.username] for p in EXPERTS]


async def _register(t: Trade, part: Party) -> Actor:
    return await enrol(t, part, NAMES[EXPERTS.index(part)])


async def _no_other_serving_experts(t: Trade) -> None:
    """On a shared rehearsal server: no expert of another run or of the server's own pool serves in the
    specialties of the draw on the evaluation day, or the draw could invite someone this run cannot answer
    for (the experts `ggzy demo --seed-only` seeds serve with no end)."""
    day = local_date(_evaluation_at(t))
    others: list[str] = []
    for quota in QUOTAS:
        cursor = None
        while True:
            params = {"status": "active", "specialty": quota["specialty"], "limit": 100}
            page = await t.p.call(
                "GET",
                "/api/v1/evaluation/experts",
                t.centre,
                params={**params, **({"cursor": cursor} if cursor else {})},
            )
            others += [
                f"{e['name']} ({e['number']})"
                for e in page["items"]
                if (e["term_end"] is None or date.fromisoformat(e["term_end"]) >= day)
                and (e["term_start"] is None or date.fromisoformat(e["term_start"]) <= day)
            ]
            cursor = page["next_cursor"]
            if not cursor:
                break
    check(
        not others,
        f"no other expert of {', '.join(str(q['specialty']) for q in QUOTAS)} serving on {day} in the server's pool "
        "(the draw could invite one this run cannot answer for)",
        f"{len(others)} such experts ({', '.join(others[:5])}{' …' if len(others) > 5 else ''}); a server seeded "
        "with `ggzy demo --seed-only` has them: drive a rehearsal server that was not seeded",
    )


async def import_pool(t: Trade, csv_text: str) -> dict[str, Any]:
    """The centre imports experts into the pool from a CSV file; the import's counts."""
    r = await t.p.request(
        "POST",
        "/api/v1/evaluation/experts/import",
        t.centre,
        expect=200,
        content=csv_text.encode(),
        headers={"Content-Type": "text/csv"},
    )
    counts: dict[str, Any] = r.json()
    return counts


async def register_signing_keys(t: Trade, experts: Sequence[Party]) -> None:
    """Each expert generates an Ed25519 key to sign reports with and registers its public half."""
    for party in experts:
        keys = agekeys.generate(signing=True)
        t.keys[party.username] = keys
        await t.p.call(
            "POST",
            "/api/v1/keys",
            t.people[party.username],
            expect=201,
            json={
                "purpose": "signing",
                "public_key": base64.b64encode(agekeys.ed25519_public_raw(keys)).decode(),
            },
        )


async def build_pool(t: Trade) -> tuple[str, Table]:
    """The centre keeps the specialty tree and imports the pool from a CSV file; each expert registers an
    Ed25519 key to sign reports with, and one declares a former employer (G-08). On a shared rehearsal
    server a run's experts serve its one evaluation (their term ends that day), so a later run's draw
    never invites them."""
    if t.cast.run:
        await _no_other_serving_experts(t)
    tree = [{"code": c, "parent_code": p, "name": n, "active": True} for c, p, n in DEFAULT_SPECIALTIES]
    await t.p.call("PUT", "/api/v1/evaluation/specialties", t.centre, json=tree)
    for party in EXPERTS:
        t.people[party.username] = await _register(t, party)
    bidder2 = t.cast(BIDDERS[1])
    term_end = [local_date(_evaluation_at(t)).isoformat()] if t.cast.run else []
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["name", "username", "employer_credit_code", "employer_name", "region_code", "title", "specialties"]
        + (["term_end"] if term_end else [])
    )
    for n, party in enumerate(t.cast(p) for p in EXPERTS):
        employer = bidder2 if n == EMPLOYED_BY_BIDDER else party
        code, name = employer.credit_code, employer.name
        if n == EMPLOYED_BY_TENDERER:
            code, name = t.plan.tenderer_credit_code, t.plan.tenderer
        writer.writerow(
            [
                NAMES[n],
                party.username,
                code,
                name,
                "320100",
                "高级工程师",
                SPECIALTIES[n],
                *term_end,
            ]
        )
    counts = await import_pool(t, out.getvalue())
    check(counts.get("created") == len(EXPERTS), f"{len(EXPERTS)} experts created", counts)
    again = await import_pool(t, out.getvalue())
    check(again.get("created") == 0, "the same file again creates nothing", again)
    await register_signing_keys(t, EXPERTS)
    bidder3 = t.cast(BIDDERS[2])
    await t.p.call(
        "POST",
        "/api/v1/evaluation/me/relationships",
        t.people[EXPERTS[LEFT_A_BIDDER].username],
        expect=201,
        json={
            "kind": "former_employer",
            "credit_code": bidder3.credit_code,
            "organisation_name": bidder3.name,
            "start_on": "2019-03-01",
            "end_on": "2025-06-30",
        },
    )
    table = Table("expert", "name", "employer", "specialty", box=None, padding=(0, 2))
    for n, party in enumerate(t.cast(p) for p in EXPERTS):
        works_at = bidder2.name + " (a bidder)" if n == EMPLOYED_BY_BIDDER else party.name
        if n == EMPLOYED_BY_TENDERER:
            works_at = t.plan.tenderer + " (the tenderer)"
        if n == LEFT_A_BIDDER:
            works_at += f"; until 2025-06 {bidder3.name}"
        table.add_row(party.username, NAMES[n], works_at, SPECIALTIES[n])
    return (
        f"{len(DEFAULT_SPECIALTIES)} specialty codes; {len(EXPERTS)} experts imported from CSV (again: 0 new); "
        "each registered an Ed25519 signing key",
        table,
    )


def _evaluation_at(t: Trade) -> datetime:
    return at_shanghai(local_date(t.window_end) + timedelta(days=1), time(9, 0))


async def _request(t: Trade) -> dict[str, Any]:
    return dict(
        await t.p.call(
            "POST",
            f"/api/v1/evaluation/tenders/{t.tid}/draws",
            t.agency,
            expect=201,
            json={
                "evaluation_at": _evaluation_at(t).isoformat(),
                "quotas": list(QUOTAS),
                "invitation_minutes": 60,
            },
        )
    )


async def witnessed(t: Trade, draw_id: str, witness: Actor) -> tuple[dict[str, Any], dict[str, Any]]:
    """`witness` commits to 32 random bytes and a nonce made on its own machine; the platform answers its
    signed commitment, checked against its published key; then the reveal runs the draw. Answers the
    draw after the commitment and after the run."""
    secret, nonce = secrets.token_bytes(draw.WITNESS_BYTES), secrets.token_bytes(draw.WITNESS_BYTES)
    mine = draw.witness_commitment(secret, nonce)
    url = f"/api/v1/evaluation/draws/{draw_id}"
    committed = await t.p.call("POST", f"{url}/witness", witness, json={"witness_commitment": mine})
    check(committed["witness_commitment"] == mine, "the witness commitment published", committed)
    key = await t.p.call("GET", "/api/v1/transparency/key")
    statement = draw.commitment_statement(draw_id, mine, committed["commitment"])
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"])).verify(
            base64.b64decode(committed["commitment_signature"]), statement
        )
    except InvalidSignature:
        check(False, "the platform's signature of its commitment", "a signature that does not verify")
    ran = await t.p.call("POST", f"{url}/run", witness, json={"witness": secret.hex(), "nonce": nonce.hex()})
    return committed, ran


async def abort_draw(t: Trade) -> str:
    """The agency asks for a committee; the notary commits to a witness and reveals it, and five experts are
    invited. Then the evaluation must move: the agency asks for an abort with its reason. Neither the centre
    nor the notary (the draw's witness) may approve it; the supervisor does, the draw is aborted at once, its
    seed revealed and the invitations cancelled. The aborted draw stays in the record: the auditor replays it
    and the supervisors' statistics count it."""
    t.p.clock.set(t.window_end + timedelta(hours=2))
    before = (await t.p.call("GET", "/api/v1/evaluation/draw-aborts", t.supervisor))["totals"]["approved"]
    requested = await _request(t)
    draw_id = requested["id"]
    _committed, ran = await witnessed(t, draw_id, t.people["notary"])
    check(len(ran["invitations"]) == 5, "five invitations", ran["invitations"])
    t.p.clock.advance(timedelta(minutes=5))
    url = f"/api/v1/evaluation/draws/{draw_id}"
    reason = (
        "评标室当日已被占用，评标须改期 (the evaluation room is taken that day; the evaluation must move)"
    )
    asked = await t.p.call("POST", f"{url}/abort", t.agency, expect=201, json={"reason": reason})
    approval = {"request_id": asked["id"], "note": "理由属实，同意终止 (the reason holds)"}
    await t.p.request("POST", f"{url}/abort/approve", t.centre, expect=403, json=approval)
    await t.p.request("POST", f"{url}/abort/approve", t.people["notary"], expect=403, json=approval)
    aborted = await t.p.call("POST", f"{url}/abort/approve", t.supervisor, json=approval)
    check(aborted["status"] == "aborted", "the draw aborted", aborted["status"])
    check(aborted["seed"] is not None, "the seed revealed at once", aborted["seed"])
    check(
        all(i["status"] == "cancelled" for i in aborted["invitations"]),
        "the invitations cancelled",
        aborted["invitations"],
    )
    auditor = t.people["auditor"]
    replay = await t.p.call("GET", f"{url}/verify", auditor)
    check(replay["ok"] and replay["status"] == "aborted", "the aborted draw replays", replay)
    stats = await t.p.call("GET", "/api/v1/evaluation/draw-aborts", t.supervisor)
    check(
        stats["totals"]["approved"] == before + 1,
        "one more approved abort in the statistics",
        stats["totals"],
    )
    t.evaluation["aborted_id"] = draw_id
    return (
        f"draw {short(draw_id)}: the notary's witness invited five; the agency asked to abort ({reason}); "
        f"the centre → 403, the witness → 403; aborted on the supervisor's approval, "
        f"seed {short(aborted['seed'])} revealed at once, the five invitations cancelled; "
        f"the auditor's replay: ok; statistics: {stats['totals']['approved']} approved abort, "
        f"{stats['approved_after_names_were_drawn']} after the names were drawn"
    )


async def draw_committee(t: Trade) -> str:
    """The agency asks for five experts again (4 municipal, 1 economic, W-10): the platform fixes the pool
    before avoidance, the exclusions and the eligible pool and publishes their digests; no seed exists yet.
    The supervisor commits to a witness made on its own machine; only then does the platform draw its seed
    and publish its signed commitment; the supervisor's reveal runs the draw at once. The agency sees the
    seats, not the names."""
    t.p.clock.advance(timedelta(minutes=10))
    requested = await _request(t)
    # experts of earlier rehearsal runs, whose term ended with their trade, are out of every later draw
    reasons = {k: n for k, n in requested["excluded"]["by_reason"].items() if k != "out_of_term"}
    check(requested["pool_size"] == 8, "8 eligible experts", requested["pool_size"])
    check(
        reasons == {"employer_is_bidder": 1, "employer_is_party": 1, "former_employer_bidder": 1},
        "one expert avoided for working at a bidder, one for having left one within 3 years, one for working "
        "at the tenderer (G-08)",
        reasons,
    )
    check(requested["commitment"] is None, "no seed before the witness commits", requested["commitment"])
    committed, ran = await witnessed(t, requested["id"], t.supervisor)
    check(len(ran["invitations"]) == 5, "five invitations", ran["invitations"])
    seen = await t.p.call("GET", f"/api/v1/evaluation/draws/{requested['id']}", t.agency)
    check(
        all("expert_id" not in i for i in seen["invitations"]),
        "the agency sees the seats without names",
        seen["invitations"],
    )
    await t.p.request("GET", f"/api/v1/evaluation/draws/{requested['id']}", t.bidders[0], expect=403)
    t.evaluation.update(draw_id=requested["id"], evaluation_at=_evaluation_at(t), witness=ran["witness"])
    return (
        f"pool before avoidance {short(requested['candidates_digest'])}, exclusions "
        f"{short(requested['exclusions_digest'])}, pool {short(requested['pool_digest'])} "
        f"({requested['pool_size']} eligible, 3 avoided under G-08) fixed {shanghai_text(requested['created_at'])}; "
        f"the supervisor's witness commitment {short(committed['witness_commitment'])}, then the platform's "
        f"signed commitment {short(committed['commitment'])}; the reveal invited five; "
        "the agency sees seats, not names; a bidder → 403"
    )


async def _invitation(t: Trade, actor: Actor) -> dict[str, Any] | None:
    mine = await t.p.call("GET", "/api/v1/evaluation/invitations", actor)
    return next((i for i in mine if i["status"] == "invited"), None)


async def answer_invitations(t: Trade) -> tuple[str, Table]:
    """One expert declines (away on business) and the draw takes the next expert of the same quota; every
    other accepts. Once all five have accepted the seed is revealed."""
    t.p.clock.advance(timedelta(minutes=10))
    declined = ""
    for actor in _expert_actors(t):
        invitation = await _invitation(t, actor)
        if invitation is None:
            continue
        if not declined and SPECIALTIES[[p.username for p in EXPERTS].index(actor.name)].startswith("A02"):
            await t.p.call(
                "POST",
                f"/api/v1/evaluation/invitations/{invitation['id']}/answer",
                actor,
                json={"accept": False, "reason": "评标当日出差在外 (away on business that day)"},
            )
            declined = actor.party.username
    check(bool(declined), "one municipal expert declined", declined)
    for actor in _expert_actors(t):
        invitation = await _invitation(t, actor)
        if invitation is not None:
            await t.p.call(
                "POST",
                f"/api/v1/evaluation/invitations/{invitation['id']}/answer",
                actor,
                json={"accept": True},
            )
    done = await t.p.call("GET", f"/api/v1/evaluation/draws/{t.evaluation['draw_id']}", t.centre)
    check(done["status"] == "confirmed", "the committee confirmed", done["status"])
    check(done["seed"] is not None, "the seed revealed", done["seed"])
    replacement = next(i for i in done["invitations"] if i["round"] == 1)
    table = Table("#", "quota", "round", "expert", "answer", box=None, padding=(0, 2))
    for i in done["invitations"]:
        table.add_row(
            str(i["position"]),
            str(QUOTAS[i["quota_index"]]["specialty"]),
            str(i["round"]),
            i["expert_name"],
            i["status"],
        )
    return (
        f"{declined} declined; the draw replaced it with {replacement['expert_name']} (round 1, same quota); "
        f"all five accepted and the seed {short(done['seed'])} was revealed",
        table,
    )


async def verify_draw(t: Trade) -> str:
    """The auditor downloads both draw records, the aborted one and the confirmed one, and replays them
    offline (what `ggzy verify draw FILE --key …` does): avoidance on the pool before avoidance, the witness
    against its commitment, the platform's signed commitment, the initial seats and the replacement."""
    auditor = t.people["auditor"]
    key = base64.b64decode((await t.p.call("GET", "/api/v1/transparency/key"))["public_key"])
    saved = []
    for name, draw_id in (("aborted", t.evaluation["aborted_id"]), ("confirmed", t.evaluation["draw_id"])):
        record = await t.p.call("GET", f"/api/v1/evaluation/draws/{draw_id}/record", auditor)
        problems = draw.verify(draw.record_from_json(record), key)
        check(problems == [], f"the {name} draw replays", problems)
        path = t.p.files / f"draw-{t.code}-{name}.json"
        path.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
        saved.append(path)
    online = await t.p.call("GET", f"/api/v1/evaluation/draws/{t.evaluation['draw_id']}/verify", auditor)
    check(online["ok"], "the auditor endpoint agrees", online)
    avoided = [e for e in record["exclusions"] if e["reasons"] != ["out_of_term"]]
    check(len(avoided) == 3, "three exclusions in the record (G-08)", record["exclusions"])
    tampered = dict(record)
    tampered["witness"] = "00" * 32
    check(draw.verify(draw.record_from_json(tampered), key) != [], "a changed witness fails", "it passed")
    dropped = dict(record, exclusions=record["exclusions"][1:])
    failed = draw.verify(draw.record_from_json(dropped), key)
    check(failed[0].startswith("exclusions:"), "a dropped exclusion fails", failed)
    where = f"records saved for `ggzy verify draw {saved[1]}`" if t.p.kept else "records saved with the demo"
    return (
        f"replayed avoidance ({len(record['candidates'])} candidates, 3 exclusions) and "
        f"{online['invitations']} invitations from seed and witness: ok; a changed witness fails, a dropped "
        f"exclusion fails; the aborted draw replays too; {where}"
    )


async def evaluation_room(t: Trade) -> tuple[str, Table]:
    """The room opens at 09:00; each member signs the no-conflict declaration (G-08), the committee elects
    seat 1 chair, reviews qualification (all pass) and scores alone. One member scores the lowest bid far
    above the others (G-10): the report is refused until that member justifies it in writing."""
    await t.p.move_to(t.evaluation["evaluation_at"])

    async def room_open() -> bool:
        rooms = await t.p.call("GET", "/api/v1/evaluation/rooms", t.agency)
        return any(r["tender_id"] == t.tid and r["status"] != "scheduled" for r in rooms)

    await t.p.settle(room_open, f"the chronograph to open {t.code}'s evaluation room")
    members: dict[int, Actor] = {}
    room_id = ""
    for actor in _expert_actors(t):
        rooms = await t.p.call("GET", "/api/v1/evaluation/rooms", actor)
        if not rooms:
            continue
        room_id = rooms[0]["id"]
        if not members:  # nobody acts in the room before signing the declaration
            await t.p.refused(
                "POST",
                f"/api/v1/evaluation/rooms/{room_id}/chair",
                actor,
                rule="G-08",
                status=403,
                json={"seat": 1},
            )
        view = await t.p.call("GET", f"/api/v1/evaluation/rooms/{room_id}", actor)
        await t.p.call(
            "POST", f"/api/v1/evaluation/rooms/{room_id}/declaration", actor, json={"no_conflict": True}
        )
        members[view["my_seat"]] = actor
    check(len(members) == 5, "five members entered", sorted(members))
    # S-04: supervisors watch the room read-only; no member route takes them
    await t.p.request("GET", f"/api/v1/evaluation/rooms/{room_id}", t.supervisor, expect=200)
    await t.p.request(
        "POST", f"/api/v1/evaluation/rooms/{room_id}/chair", t.supervisor, expect=403, json={"seat": 1}
    )
    for seat in sorted(members):
        answer = await t.p.call(
            "POST", f"/api/v1/evaluation/rooms/{room_id}/chair", members[seat], json={"seat": 1}
        )
        if answer["chair_seat"] is not None:
            break
    room = await t.p.call("GET", f"/api/v1/evaluation/rooms/{room_id}", members[1])
    scheme = room["scheme"]
    lot = room["lots"][0]
    for actor in members.values():
        votes = [
            {"bid_id": b["bid_id"], "criterion": q["code"], "passed": True}
            for b in lot["bids"]
            for q in scheme["qualification"]
        ]
        await t.p.call(
            "POST",
            f"/api/v1/evaluation/rooms/{room_id}/reviews",
            actor,
            expect=201,
            json={"lot_id": lot["id"], "votes": votes},
        )
    leaves = [
        (c.code, c.max_cp) for c in scoring.leaves(scoring.scheme_from_json(scheme)) if c.kind == "subjective"
    ]
    lowest = min(lot["bids"], key=lambda b: b["price_fen"])
    for seat, actor in members.items():
        sheet = {
            b["bid_id"]: {
                code: (top if seat == 3 and b["bid_id"] == lowest["bid_id"] else top * 7 // 10)
                for code, top in leaves
            }
            for b in lot["bids"]
        }
        await t.p.call(
            "POST",
            f"/api/v1/evaluation/rooms/{room_id}/sheets",
            actor,
            expect=201,
            json={"lot_id": lot["id"], "scores": sheet},
        )
    abnormal = await t.p.call(
        "GET", f"/api/v1/evaluation/rooms/{room_id}/abnormal", members[1], params={"lot_id": lot["id"]}
    )
    check(
        [(a["seat"], a["bid_id"]) for a in abnormal] == [(3, lowest["bid_id"])],
        "seat 3's score of the lowest bid is abnormal",
        abnormal,
    )
    await t.p.refused("POST", f"/api/v1/evaluation/rooms/{room_id}/report", members[1], rule="G-10")
    await t.p.call(
        "POST",
        f"/api/v1/evaluation/rooms/{room_id}/justifications",
        members[3],
        json={
            "lot_id": lot["id"],
            "bid_id": lowest["bid_id"],
            "justification": "该投标人施工组织设计针对提标改造不停水施工给出完整方案，明显优于其他投标人 "
            "(its method statement keeps the plant running throughout, clearly better than the others)",
        },
    )
    t.evaluation.update(room_id=room_id, members=members, lot=lot)
    table = Table("seat", "member", "declared", "chair", box=None, padding=(0, 2))
    for seat, actor in sorted(members.items()):
        table.add_row(str(seat), actor.party.username, "yes", "chair" if seat == 1 else "")
    return (
        f"room opened {shanghai_text(t.evaluation['evaluation_at'])}; a supervisor's action → 403 S-04; "
        f"{len(lot['bids'])} bids passed qualification; seat 3 scored {yuan(lowest['price_fen'])} yuan's bid "
        f"far above the others → the report refused (G-10) until seat 3 justified it",
        table,
    )


async def sign_report(t: Trade) -> tuple[str, Table]:
    """The chair has the report drawn up (HTML and PDF, hashed); each member signs the hash with their
    Ed25519 key (a signature over another hash is refused); the room closes and the candidates go to
    publicity (W-12)."""
    room_id = t.evaluation["room_id"]
    members: dict[int, Actor] = t.evaluation["members"]
    made = await t.p.call("POST", f"/api/v1/evaluation/rooms/{room_id}/report", members[1])
    digest = made["report_hash"]
    check(report.report_hash(made["report"]) == digest, "the hash is the report's", digest)
    wrong = secrets.token_hex(32)
    await t.p.request(
        "POST",
        f"/api/v1/evaluation/rooms/{room_id}/signatures",
        members[2],
        expect=422,
        json={"report_hash": wrong, "signature": base64.b64encode(b"x" * 64).decode()},
    )
    for _seat, actor in sorted(members.items()):
        key = t.keys[actor.name].signing
        assert key is not None
        signature = key.sign(report.signing_message(digest))
        await t.p.call(
            "POST",
            f"/api/v1/evaluation/rooms/{room_id}/signatures",
            actor,
            json={"report_hash": digest, "signature": base64.b64encode(signature).decode()},
        )
    await t.p.settle(t.status_is("publicity"), f"the signed report to put {t.code}'s candidates in publicity")
    tender = await t.p.call("GET", f"/api/v1/tenders/{t.tid}")
    t.publicity_ends = datetime.fromisoformat(tender["publicity_ends"])
    pdf = await t.p.request("GET", f"/api/v1/evaluation/rooms/{room_id}/report.pdf", members[1], expect=200)
    check(pdf.content.startswith(b"%PDF-"), "a PDF", pdf.content[:8])
    lot = made["report"]["lots"][0]
    table = Table("rank", "bidder", "price (yuan)", "score", box=None, padding=(0, 2))
    for c in lot["candidates"]:
        table.add_row(str(c["rank"]), c["bidder"], yuan(c["price_fen"]), f"{c['total_cp'] / 100:.2f}")
    return (
        f"report {short(digest)} (PDF {len(pdf.content):,} bytes) signed by all five; a signature over another "
        f"hash → 422; publicity ends {shanghai_text(t.publicity_ends)}",
        table,
    )
