"""`ggzy demo`: a complete open works tender through the real HTTP API, one checked step at a time.

By default everything is throw-away: a fresh SQLite database and a local object store in a temporary
directory, the app served by uvicorn on a free loopback port inside this process, and httpx talking to it
over TCP as any client would. A `SettableClock` stands still at Mon 2026-03-02 09:00 (Shanghai) until the
demo moves it across a deadline; then the demo runs the chronograph itself, as the server's periodic job
would, and the outbox jobs that became due (the envelopes' decryption among them): `demo/private.py`.

The bids are real sealed envelopes (age v1 files, DESIGN.md "The sealed envelope"): each bidder's keys are
made here, on the client side, and only public keys, ciphertext and — after the deadline — file keys and
custodians' releases ever reach the server. Three custodians (the centre, the supervisor and a notary) each
hold a share of every envelope's file key; t = 2 counts the two besides the platform, so the stanzas need
T = 3 shares and the platform with one other never opens a bid. One bidder sabotages its custody shares
(shares of a random secret) and keeps its key: the custodians' proven releases attribute that to it.

`--url` drives a running rehearsal server instead (`demo/remote.py`): the same steps through its API,
time moved with the rehearsal clock the centre sets, the server's own chronograph and worker waited for,
and every organisation and user named for the run, so the demo runs again and again against one server.
The steps reach either platform through a `Driver`; the composition root (`app.py`) hands in what builds a
private one (`demo.private.ServerParts`), so nothing here imports it.

`--seed-only` is what `make run` calls before `ggzy serve`: into the configured database and object store it
puts the demo organisations and users (password `demo-password-1`) with their registered public keys (the
private halves as age identity files under `<var>/demo-keys/`), one trade completed in the past on a
simulated clock that starts 70 days ago, and one open tender published now, which the live server's
chronograph carries on in real time. It drives the same steps through the same API, in-process (ASGI),
in one database transaction: all of it or nothing (`demo/seeding.py`).

Every step checks the status codes and fields it gets back; the first surprise stops the demo with what
was expected and what came instead, and the process exits 1.

This module holds the people, the drafting and publishing, the award and the contract, and the step tables
that put the stages in order; the bidding (`demo/bids.py`), the deadline and opening hall (`demo/opening.py`),
the deposits (`demo/deposits.py`) and the evaluation (`demo/evaluation.py`) are stages of their own, and
what they all share is `demo/common.py`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bidding import agekeys
from demo import deposits, evaluation
from demo.bids import no_early_opening, obtain_documents, rebid, submit_bids, withdraw
from demo.common import (
    BIDDERS,
    CENTRE,
    CUSTODIANS,
    CUSTODY_THRESHOLD,
    DEADLINE_TIME,
    KEYS_DIR,
    PARTIES,
    PASSWORD,
    Outcome,
    SealedBid,
    Step,
    Trade,
    at_shanghai,
    b64,
    check,
    enrol,
    plain_table,
    shanghai_text,
    short,
    yuan,
)
from demo.opening import (
    attribute_sabotage,
    close_bidding,
    close_hall,
    collusion_signals,
    custodians_open,
    miss_window,
    opening_record,
    refuse_late_bid,
    reveal_keys,
    verify_opening,
    verify_receipts,
)
from rules.calendar import local_date
from rules.profiles import WORKS_OPEN, performance_security_cap
from storage.settings import Settings

# ---------------------------------------------------------------- people


async def bootstrap_centre(t: Trade) -> Outcome:
    """The trading centre and its administrator: created once from the command line's side (no API) on a
    private server; a rehearsal server's own, signed in with the credentials given."""
    centre = await t.p.driver.centre(t.p)
    t.people[CENTRE.username] = centre
    party = centre.party
    return f"{party.name}, credit code {party.credit_code}, administrator '{party.username}' signed in"


async def register_parties(t: Trade) -> Outcome:
    """Centre staff add each organisation (approved at once) and its user, who then signs in."""
    table = plain_table("user", "role", "organisation", "credit code (USCC)")
    for part in t.parties:
        t.people[part.username] = await enrol(t, part)
        party = t.cast(part)
        table.add_row(party.username, ", ".join(party.roles), party.name, party.credit_code)
    kinds = sorted({p.kind for p in t.parties})
    return f"{len(t.parties)} organisations ({', '.join(kinds)}), each with a signed-in user", table


async def register_keys(t: Trade) -> Outcome:
    """Each custodian makes an X25519 key and each bidder an X25519 and an Ed25519 key, on its own side;
    only the public halves are registered (the private halves stay with their owners)."""
    table = plain_table("user", "registers", "age recipient (X25519)", "Ed25519 signing key")
    bidders = [p for p in t.parties if p.kind == "bidder"]
    holders = [(p, False) for p in CUSTODIANS] + [(p, True) for p in bidders]
    for party, signing in holders:
        keys = agekeys.generate(signing=signing)
        actor = t.people[party.username]
        items = [("encryption", agekeys.x25519_public_raw(keys))]
        if signing:
            items.append(("signing", agekeys.ed25519_public_raw(keys)))
        for purpose, raw in items:
            key = await t.p.call(
                "POST",
                "/api/v1/keys",
                actor,
                expect=201,
                json={"purpose": purpose, "public_key": b64(raw)},
            )
            check(key["purpose"] == purpose, f"a {purpose} key", key)
        t.keys[party.username] = keys
        recipient = agekeys.recipient(agekeys.x25519_public_raw(keys))
        table.add_row(
            party.username,
            " + ".join(purpose for purpose, _ in items),
            short(recipient) + recipient[-6:],
            short(b64(agekeys.ed25519_public_raw(keys))) if signing else "—",
        )
    registered = await t.p.call("GET", "/api/v1/keys", t.supervisor)
    check(
        [k["purpose"] for k in registered] == ["encryption"],
        "the supervisor's one encryption key",
        registered,
    )
    return (
        f"{len(CUSTODIANS)} custodians ({', '.join(p.username for p in CUSTODIANS)}) and {len(bidders)} bidders "
        "registered their public keys; no private key left its owner",
        table,
    )


# ---------------------------------------------------------------- drafting and publishing


def tender_body(t: Trade, deadline: datetime, deposit_fen: int) -> dict[str, Any]:
    """The draft the agency saves: the plan's one lot with `deposit_fen`, documents from now, bids closing
    at `deadline`, the three opening custodians (t = 2 besides the platform). A method that admits only the
    invited invites the trade's bidders; one that names its evaluation methods takes the first."""
    profile = t.plan.profile
    invited = {"invited": [b.organisation_id for b in t.bidders]} if profile.invitation_only else {}
    return {
        "sector": profile.sector,
        "method": profile.method,
        **invited,
        "title": t.plan.title,
        "tenderer_name": t.plan.tenderer,
        "tenderer_credit_code": t.plan.tenderer_credit_code,
        "region_code": "320100",
        "qualification": t.plan.qualification,
        "evaluation_method": (profile.evaluation_methods or ("comprehensive",))[0],
        "documents_from": t.p.clock.now().isoformat(),
        "bid_deadline": deadline.isoformat(),
        "lots": [
            {
                "title": "第一标段" if t.plan.profile.sector == "works" else "第一包",
                "estimated_price_fen": t.plan.estimated_price_fen,
                "deposit_fen": deposit_fen,
            }
        ],
        "custodians": [t.people[p.username].organisation_id for p in CUSTODIANS],
        "custody_threshold": CUSTODY_THRESHOLD,
        "opening_policy": "custodians",
    } | ({"project_id": t.project_id} if t.project_id else {})


async def accept_project(t: Trade) -> Outcome:
    """The agency registers the project with the centre (项目受理): the approving body's document number,
    where the money comes from and, in government procurement, the procurement plan it carries out; the
    centre accepts it. Only an accepted project's tenders are published."""
    sector = t.plan.profile.sector
    body: dict[str, Any] = {
        "name": t.plan.title,
        "sector": sector,
        "funding_source": "市级财政资金" if sector == "procurement" else "市级财政资金及企业自筹",
        "approval_number": "宁发改审批〔2026〕18号",
        "budget_fen": t.plan.estimated_price_fen,
    }
    if sector == "procurement":
        body["procurement_plan_number"] = "NJCG-2026-0318"
    project = await t.p.call("POST", "/api/v1/projects", t.agency, expect=201, json=body)
    check(project["status"] == "pending", "the project pending the centre's acceptance", project["status"])
    accepted = await t.p.call(
        "POST", f"/api/v1/projects/{project['id']}/decision", t.centre, json={"decision": "accepted"}
    )
    check(accepted["status"] == "accepted", "the project accepted", accepted["status"])
    t.project_id = str(project["id"])
    plan = f", procurement plan {body['procurement_plan_number']}" if sector == "procurement" else ""
    return (
        f"«{project['name']}», approval {project['approval_number']}, funding {project['funding_source']}{plan}: "
        f"accepted by the centre"
    )


async def lawful_deadline(t: Trade) -> datetime:
    """10:00 on the earliest day the procedure lets bids close for documents issued now (W-01, G-02)."""
    t.earliest_day = await t.p.driver.earliest_deadline_day(t.p.clock.now(), t.plan.profile)
    return at_shanghai(t.earliest_day, DEADLINE_TIME)


async def draft_tender(t: Trade) -> Outcome:
    """The agency saves a draft: documents from now, bids close at 10:00 on the earliest legal day; three
    opening custodians, the centre among them: t = 2 counts the two others, whose shares with the
    platform's open an envelope its bidder does not (E-03)."""
    if not t.project_id:  # a trade of its own project, accepted by the centre (项目受理)
        await accept_project(t)
    documents_from = t.p.clock.now()
    deadline = await lawful_deadline(t)
    r = await t.p.request(
        "POST", "/api/v1/tenders", t.agency, expect=201, json=tender_body(t, deadline, t.plan.deposit_fen)
    )
    t.tender, t.etag = r.json(), r.headers.get("ETag", "")
    check(t.tender["status"] == "draft", "status draft", t.tender["status"])
    check(t.tender["sector"] == t.plan.profile.sector, f"sector {t.plan.profile.sector}", t.tender["sector"])
    check(t.code.startswith("GGZY-320100-"), "a GGZY-320100-… transaction code", t.code)
    check(bool(t.etag), "an ETag on the draft", "none")
    named = [t.people[p.username].organisation_id for p in CUSTODIANS]
    check(
        t.tender["custodian_organisations"] == named,
        f"custodians {named}",
        t.tender["custodian_organisations"],
    )
    check(t.tender["custodians"] == [], "no roster before publication", t.tender["custodians"])
    lot = t.tender["lots"][0]
    profile = t.plan.profile
    price = "budget" if profile.sector == "procurement" else "estimate"
    return (
        f"{t.code} «{t.plan.title}», status draft; documents from {shanghai_text(documents_from)}, "
        f"bids close {shanghai_text(deadline)} ({profile.rule('documents_to_deadline_days')}: "
        f"≥ {profile.documents_to_deadline_days} days); {price} {yuan(lot['estimated_price_fen'])} yuan, "
        f"deposit {yuan(lot['deposit_fen'])} yuan ({profile.rule('deposit_max_permille_of_estimate')} cap); "
        f"custodians {', '.join(p.username for p in CUSTODIANS)}, t = {CUSTODY_THRESHOLD} besides the platform "
        f"(policy {t.tender['opening_policy']})"
    )


async def upload_tender_file(t: Trade, filename: str, content: bytes) -> str:
    """Upload one of the agency's files of the tender by presigned PUT; the object key to cite it by."""
    grant = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/uploads",
        t.agency,
        expect=201,
        json={"filename": filename, "size": len(content)},
    )
    await t.p.upload(grant, content)
    return str(grant["object_key"])


async def upload_documents(t: Trade) -> Outcome:
    """The tender documents go to the object store by presigned PUT; the server hashes what arrived."""
    content = (
        b"%PDF-1.7\n% "
        + t.plan.title.encode()
        + b" tender documents\n"
        + secrets.token_bytes(4096)
        + b"\n%%EOF\n"
    )
    key = await upload_tender_file(t, "招标文件.pdf", content)
    document = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/documents",
        t.agency,
        expect=201,
        json={"kind": "tender_documents", "filename": "招标文件.pdf", "object_key": key},
    )
    local = hashlib.sha256(content).hexdigest()
    check(document["sha256"] == local, f"server SHA-256 {short(local)}", document["sha256"])
    check(document["size"] == len(content), f"{len(content)} bytes", document["size"])
    t.documents_sha256 = local
    return f"招标文件.pdf, {len(content)} bytes, SHA-256 {short(local)} computed by the server matches ours"


async def patch_deadline(t: Trade, deadline: datetime) -> None:
    """The agency moves the draft's bid deadline to `deadline` (If-Match its version)."""
    r = await t.p.request(
        "PATCH",
        f"/api/v1/tenders/{t.tid}",
        t.agency,
        expect=200,
        json={"bid_deadline": deadline.isoformat()},
        headers={"If-Match": t.etag},
    )
    t.tender, t.etag = r.json(), r.headers.get("ETag", "")


async def refuse_early_deadline(t: Trade) -> Outcome:
    """A deadline one day before the earliest legal day (W-01, G-02): publishing is refused, naming the rule
    and the earliest day."""
    assert t.earliest_day is not None
    lawful = t.deadline
    early = lawful - timedelta(days=1)
    await patch_deadline(t, early)
    rule = str(t.plan.profile.rule("documents_to_deadline_days"))
    problem = await t.p.refused("POST", f"/api/v1/tenders/{t.tid}/publish", t.agency, rule=rule)
    check(
        problem.get("earliest_deadline_day") == t.earliest_day.isoformat(),
        f"earliest_deadline_day {t.earliest_day.isoformat()}",
        problem.get("earliest_deadline_day"),
    )
    await patch_deadline(t, lawful)
    check(t.deadline == lawful, f"deadline back at {shanghai_text(lawful)}", t.tender["bid_deadline"])
    return (
        f"deadline {shanghai_text(early)} → 422 rule {rule}, earliest legal day {problem['earliest_deadline_day']}; "
        f"draft edited back to {shanghai_text(lawful)} (If-Match {t.etag})"
    )


async def publish(t: Trade) -> Outcome:
    """The agency submits the notice for the centre's review (公告审核); nothing is public until the centre
    approves it. Then the tender notice goes on the board, the documents are issued, the opening hall is
    booked at the deadline, and the custodian roster is frozen with each custodian's key: every envelope is
    sealed to exactly these."""
    submitted = await t.p.call(
        "POST", f"/api/v1/tenders/{t.tid}/publish", t.agency, headers={"If-Match": t.etag}
    )
    check(submitted["status"] == "draft", "still a draft under review", submitted["status"])
    check(submitted["review"]["status"] == "pending", "the review pending", submitted["review"])
    check(await t.notices("tender_notice") == [], "nothing on the board under review", "a notice")
    await t.p.call("POST", f"/api/v1/tenders/{t.tid}/review", t.centre, json={"decision": "approved"})
    r = await t.p.request("GET", f"/api/v1/tenders/{t.tid}", t.agency, expect=200)
    t.tender, t.etag = r.json(), r.headers.get("ETag", "")
    check(t.tender["status"] == "tendering", "status tendering", t.tender["status"])
    await t.p.tick()  # jobs from the outbox, if any

    async def on_the_board() -> bool:
        return bool(await t.notices("tender_notice"))

    await t.p.settle(on_the_board, f"{t.code}'s tender notice on the public board")
    notices = await t.notices("tender_notice")
    check(len(notices) == 1, "one tender notice on the public board", len(notices))
    roster = t.tender["custodians"]
    check(t.tender["custody_threshold"] == CUSTODY_THRESHOLD, f"t = {CUSTODY_THRESHOLD}", t.tender)
    check(len(roster) == len(CUSTODIANS), f"{len(CUSTODIANS)} custodians on the roster", roster)
    # the platform's share never counts toward t: the stanzas need t + 1 shares, the platform's among them
    check(t.tender["shamir_threshold"] == CUSTODY_THRESHOLD + 1, f"T = {CUSTODY_THRESHOLD + 1}", t.tender)
    check(
        [c["platform"] for c in roster] == [p is CENTRE for p in CUSTODIANS],
        "the centre marked as the platform",
        roster,
    )
    table = plain_table(
        "share", "custodian", "organisation", "platform", "age recipient (frozen at publication)"
    )
    for position, (party, custodian) in enumerate(zip(CUSTODIANS, roster, strict=True), start=1):
        mine = agekeys.recipient(agekeys.x25519_public_raw(t.keys[party.username]))
        check(custodian["position"] == position, f"share position {position}", custodian)
        check(
            custodian["organisation_id"] == t.people[party.username].organisation_id,
            f"{party.username} at position {position}",
            custodian,
        )
        check(
            custodian["recipient"] == mine,
            f"{party.username}'s registered key {mine}",
            custodian["recipient"],
        )
        table.add_row(
            f"x={position}",
            party.username,
            t.people[party.username].party.name,
            "yes" if custodian["platform"] else "",
            custodian["recipient"],
        )
    sealing = notices[0]["body"].get("sealing", {})
    check(
        (sealing.get("custody_threshold"), sealing.get("shamir_threshold"))
        == (CUSTODY_THRESHOLD, CUSTODY_THRESHOLD + 1),
        "the sealing terms on the notice",
        sealing,
    )
    return (
        f"{t.code} is tendering; «{notices[0]['title']}» published {shanghai_text(notices[0]['published_at'])}, "
        f"next chronograph check {shanghai_text(t.tender['next_check'])}; bids are sealed to the bidder and "
        f"to {len(roster)} custodians: t = {t.tender['custody_threshold']} custodians besides the platform and "
        f"the platform's share (Shamir T = {t.tender['shamir_threshold']}) open one after the deadline; the "
        "platform with one custodian never can",
        table,
    )


# ---------------------------------------------------------------- report, publicity, award, contract


def _ranking(t: Trade) -> list[SealedBid]:
    """The committee's ranking in this demo: the three lowest opened prices (the one the custodians opened
    included; the saboteur's revoked bid is not evaluated)."""
    opened = [b for b in t.live_bids() if b.bidder is not t.saboteur]
    return sorted(opened, key=lambda b: b.price_fen)[: WORKS_OPEN.max_candidates]


async def publicity(t: Trade) -> Outcome:
    """The candidates are public (中标候选人公示); an award before publicity ends is refused (W-12)."""
    notices = await t.notices("candidates")
    check(len(notices) == 1, "one candidates notice", len(notices))
    candidates = notices[0]["body"]["lots"][0]["candidates"]
    ranking = _ranking(t)
    check(
        [c["credit_code"] for c in candidates] == [b.bidder.party.credit_code for b in ranking],
        "the ranked candidates on the notice",
        candidates,
    )
    t.p.clock.advance(timedelta(hours=1))
    problem = await t.p.refused(
        "POST",
        f"/api/v1/tenders/{t.tid}/award",
        t.agency,
        rule="W-12",
        json={"lots": [{"lot_id": ranking[0].lot_id, "bid_id": ranking[0].bid_id}]},
    )
    listed = "; ".join(f"{c['rank']}. {c['bidder']} {yuan(c['declared_price_fen'])}" for c in candidates)
    return f"«{notices[0]['title']}»: {listed} (yuan); award at {shanghai_text(t.p.clock.now())} → 422 rule W-12 ({problem['detail']})"


async def award_lot(t: Trade, winner: SealedBid) -> list[dict[str, Any]]:
    """The agency awards the lot to `winner` (中标通知书): one award at its price, kept as `t.award`; answers
    the result notices, newest first, the newest (this award's) naming the winner's price."""
    awards = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/award",
        t.agency,
        expect=201,
        json={"lots": [{"lot_id": winner.lot_id, "bid_id": winner.bid_id}]},
    )
    check(len(awards) == 1 and awards[0]["bid_id"] == winner.bid_id, f"the award to {winner.bid_id}", awards)
    check(awards[0]["price_fen"] == winner.price_fen, f"price {winner.price_fen}", awards[0]["price_fen"])
    t.award = awards[0]
    results: list[dict[str, Any]] = await t.notices("result")
    check(bool(results), "a result notice", results)
    newest = results[0]["body"]["lots"][0]
    check(newest["price_fen"] == winner.price_fen, "the result notice at the award's price", newest)
    return results


async def award(t: Trade) -> Outcome:
    """After publicity the agency awards the lot to the first candidate (中标通知书); contract due in 30 days."""
    assert t.publicity_ends is not None
    t.p.clock.set(at_shanghai(local_date(t.publicity_ends), time(9, 30)))
    winner = _ranking(t)[0]
    results = await award_lot(t, winner)
    return (
        f"{shanghai_text(t.p.clock.now())}: lot 1 to {winner.bidder.party.name} at {yuan(winner.price_fen)} yuan; "
        f"«{results[0]['title']}» published; contract due by {t.award['contract_due']} (W-13)"
    )


async def record_contract(t: Trade) -> Outcome:
    """The signed contract: a performance security above 10% is refused (W-15), exactly 10% is recorded."""
    t.p.clock.advance(timedelta(days=7))
    price = int(t.award["price_fen"])
    cap = performance_security_cap(WORKS_OPEN, price)
    key = await upload_tender_file(t, "施工合同.pdf", b"%PDF-1.7 contract " + secrets.token_bytes(1024))
    body = {
        "award_id": t.award["id"],
        "object_key": key,
        "filename": "施工合同.pdf",
        "price_fen": price,
        "performance_security_fen": cap + 1,
        "signed_on": local_date(t.p.clock.now()).isoformat(),
    }
    await t.p.refused("POST", f"/api/v1/tenders/{t.tid}/contracts", t.agency, rule="W-15", json=body)
    contract = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/contracts",
        t.agency,
        expect=201,
        json={**body, "performance_security_fen": cap},
    )
    check(
        contract["performance_security_fen"] == cap, f"security {cap}", contract["performance_security_fen"]
    )
    tender = await t.p.call("GET", f"/api/v1/tenders/{t.tid}")
    check(tender["status"] == "contracted", "status contracted", tender["status"])
    return (
        f"signed {contract['signed_on']}, price {yuan(price)} yuan; security {yuan(cap + 1)} → 422 rule W-15, "
        f"{yuan(cap)} (10%) recorded; status contracted"
    )


async def complete(t: Trade) -> Outcome:
    """The agency closes the contracted tender: the trade is complete."""
    t.p.clock.advance(timedelta(hours=1))
    tender = await t.p.call("POST", f"/api/v1/tenders/{t.tid}/complete", t.agency)
    check(tender["status"] == "completed", "status completed", tender["status"])
    return f"{t.code} completed at {shanghai_text(t.p.clock.now())}"


async def _audit_count(t: Trade) -> int:
    count, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = await t.p.call("GET", "/api/v1/audit", t.centre, params=params)
        count += len(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return count


async def summary(t: Trade) -> Outcome:
    """Every notice of the trade, newest first, and the size of the audit trail."""
    notices = await t.notices()
    kinds = [n["kind"] for n in notices]
    expected = ["contract", "result", "candidates", "opening_record", "bid_closing", "tender_notice"]
    check(kinds == expected, str(expected), kinds)
    table = Table("published (Shanghai)", "kind", "title", box=None, padding=(0, 2))
    for n in reversed(notices):
        table.add_row(shanghai_text(n["published_at"]), n["kind"], n["title"])
    events = await _audit_count(t)
    check(events > 0, "audit events", events)
    return (
        f"{t.code}: {len(notices)} public notices, {events} audit events, "
        f"awarded {yuan(int(t.award['price_fen']))} yuan",
        table,
    )


PEOPLE_STEPS = (
    Step("The trading centre is bootstrapped", bootstrap_centre),
    Step("The centre registers the organisations and their users", register_parties),
    Step("Custodians and bidders register their public keys", register_keys),
)
PUBLISH_STEPS = (
    Step("The centre accepts the agency's project and its approval documents (项目受理)", accept_project),
    Step("The agency drafts a works tender with the lawful timeline and three custodians", draft_tender),
    Step("The agency uploads the tender documents through the presigned URL", upload_documents),
    Step("A bid deadline before the W-01 day is refused", refuse_early_deadline),
    Step(
        "The agency submits the notice; the centre approves it and it is published (W-01 checked, custodian "
        "roster frozen)",
        publish,
    ),
)
TRADE_STEPS = (
    *PUBLISH_STEPS,
    Step("The bidders obtain the tender documents and a deposit sub-account each", obtain_documents),
    Step(
        "Deposits arrive by the bank's statement; one in suspense is matched by the centre",
        deposits.deposits_arrive,
    ),
    Step("Each bidder seals its bid locally and submits the envelope for a logged receipt", submit_bids),
    Step("A bidder withdraws before the deadline (W-05)", withdraw),
    Step(
        "Its deposit is refunded through a bank batch (pain.001 out, pain.002 back)",
        deposits.refund_withdrawal,
    ),
    Step(
        "It pays again; the bank's signed notification credits it at once",
        deposits.pay_again_by_notification,
    ),
    Step("It bids again", rebid),
    Step("No custodian can open an envelope before the deadline (E-01)", no_early_opening),
    Step("The deadline passes; the chronograph signs the closing head and opens the hall", close_bidding),
    Step(
        "Escrow answered at the deadline: every bidder's deposit was in place",
        deposits.eligibility_at_deadline,
    ),
    Step("Every receipt verifies against the closing head", verify_receipts),
    Step("A late bid is refused (W-07)", refuse_late_bid),
    Step("Four bidders reveal their file keys in the opening hall", reveal_keys),
    Step("Two bidders miss the decryption window (E-03); their envelopes go to custody", miss_window),
    Step("The custodians release their stanzas with proofs, envelope by envelope", custodians_open),
    Step(
        "The sabotaged custody shares are the bidder's fault: revoked, deposit forfeiture proposed (W-06)",
        attribute_sabotage,
    ),
    Step("The agency closes the opening hall; the live record", close_hall),
    Step("The opening record is public", opening_record),
    Step("Anyone verifies the signed opening record offline", verify_opening),
    Step("The supervisor sees the W-18 collusion signals", collusion_signals),
    Step(
        "The centre keeps the expert pool (CSV import, signing keys, a declared former employer)",
        evaluation.build_pool,
    ),
    Step(
        "A draw is aborted: asked for with a reason, approved by a supervisor, its seed revealed at once",
        evaluation.abort_draw,
    ),
    Step(
        "The committee is drawn: avoidance (G-08) fixed first, a supervisor's committed witness, then the seed",
        evaluation.draw_committee,
    ),
    Step(
        "One expert declines and is replaced from the same quota; the seed is revealed",
        evaluation.answer_invitations,
    ),
    Step(
        "The auditor replays both draws from their published records, avoidance included",
        evaluation.verify_draw,
    ),
    Step(
        "The evaluation room: declarations, chair, qualification, sealed scores, an abnormal score justified (G-10)",
        evaluation.evaluation_room,
    ),
    Step(
        "The report is drawn up, signed by every member (W-11), and the candidates go to publicity",
        evaluation.sign_report,
    ),
    Step("Publicity of the candidates (W-12)", publicity),
    Step("The award after publicity (W-12 respected)", award),
    Step("The contract, performance security at most 10% (W-15)", record_contract),
    Step(
        "Every deposit is refunded with interest (W-14); a failed transfer is retried",
        deposits.contract_refunds,
    ),
    Step("The trade is completed", complete),
    Step("The auditor verifies the ledger and the deposits", deposits.verify_ledger),
)
DEMO_STEPS = (*PEOPLE_STEPS, *TRADE_STEPS, Step("Summary", summary))


# ---------------------------------------------------------------- --seed-only: the data `make run` serves


def _users_table(keys_dir: Path) -> Table:
    table = Table("user", "password", "role", "organisation", "credit code", "keys", title="demo users")
    experts = evaluation.EXPERTS
    holders = {p.username for p in (*CUSTODIANS, *BIDDERS, *experts)}
    for party in (CENTRE, *PARTIES, *experts):
        key = str(keys_dir / f"{party.username}.key") if party.username in holders else ""
        table.add_row(party.username, PASSWORD, ", ".join(party.roles), party.name, party.credit_code, key)
    return table


def _keys_dir(settings: Settings) -> Path:
    return Path(settings.var_dir) / KEYS_DIR


def write_keys(settings: Settings, trade: Trade, created: datetime) -> Path:
    """The private halves of the seeded keys, as age identity files (mode 0600) a custodian passes to
    `ggzy custodian release --key` and a bidder to `ggzy bid seal|reveal --key` (demo data, like the
    published password: the keys registered now replace any left from an earlier seed)."""
    folder = _keys_dir(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for username, keys in trade.keys.items():
        path = folder / f"{username}.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(agekeys.identity_file_text(keys, created))
    return folder


def next_steps(console: Console, settings: Settings, live: Trade | None) -> None:
    base = settings.effective_public_url
    console.print(_users_table(_keys_dir(settings)))
    console.print("[bold]Try next[/] (after `ggzy serve`):")
    console.print(f"  {base}/schema                      the API, browsable")
    console.print(f"  {base}/api/v1/notices              the public notice board (no sign-in)")
    if live is not None and live.tender:
        console.print(
            f"  {base}/api/v1/tenders/{live.tid}   {live.code}, open for bids until "
            f"{shanghai_text(live.deadline)} Shanghai"
        )
    else:
        console.print(f"  {base}/api/v1/tenders?status=tendering   the open tender")
    console.print(
        f"  curl -s {base}/api/v1/auth/login -H 'Content-Type: application/json' "
        f"""-d '{{"username": "agency", "password": "{PASSWORD}"}}'""",
        soft_wrap=True,
    )
    if live is not None and live.tender:
        key = _keys_dir(settings) / "bidder1.key"
        console.print(
            f"  export GGZY_URL={base} GGZY_USERNAME=bidder1 GGZY_PASSWORD={PASSWORD}   bid as bidder1:",
            soft_wrap=True,
        )
        for command, what in (
            (f"ggzy bid obtain --tender {live.tid} --out docs/", "obtain the documents first"),
            (
                f"ggzy bid seal --tender {live.tid} --price-fen 12000000000 --duration-days 720 --key {key} "
                "--out bid.age docs/*",
                "seal locally",
            ),
            (
                f"ggzy bid submit --tender {live.tid} --receipt receipt.json bid.age",
                "submit; keep the receipt",
            ),
        ):
            console.print(f"    {command}   {what}", soft_wrap=True)
