"""The works demo's deadline and opening hall: the chronograph closes bidding and signs the closing head,
receipts verify against it, a late bid is refused, bidders reveal their file keys, custodians release their
stanzas for the bids that missed the window, the sabotaged shares are attributed, and the signed opening
record is published and verified offline; then the supervisor's W-18 collusion signals."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import httpx

from bidding import custody, envelope, merkle
from bidding import opening_record as signed_record
from bidding import receipt as receipts
from demo.common import (
    BID_DURATION_DAYS,
    CUSTODY_THRESHOLD,
    RELEASING,
    Outcome,
    SealedBid,
    Trade,
    b64,
    check,
    plain_table,
    shanghai_text,
    short,
    yuan,
)

# ---------------------------------------------------------------- the deadline and the opening hall


async def close_bidding(t: Trade) -> Outcome:
    """At the bid deadline the chronograph signs the tender's closing head over every bid event of the
    tender and the envelopes that stand, appends it to the public log (whose head did not move while bids
    arrived, W-20) and opens the online opening hall (W-08)."""
    public = await t.p.client.get("/api/v1/transparency/head")  # 404 while the public log is empty
    before = public.json()["tree_size"] if public.status_code == 200 else 0
    done = await t.p.move_to(t.deadline)
    if done is not None:  # our own chronograph ran: it moved this tender and nothing else
        check(done == [(t.code, "opening")], f"[({t.code!r}, 'opening')]", done)
    await t.p.settle(t.status_is("opening"), f"the chronograph to close bidding on {t.code} at its deadline")
    t.closing = await t.p.call("GET", f"/api/v1/tenders/{t.tid}/closing")  # public: no sign-in
    standing = sorted(b.sha256 for b in t.live_bids())
    check(sorted(t.closing["envelopes"]) == standing, f"the {len(standing)} standing envelopes", t.closing)
    check(t.closing["log_public_key"] == b64(t.log_key), "the pinned log key", t.closing["log_public_key"])
    head = t.closing["head"]
    check(head["kind"] == "closing", "a closing head", head)
    events = sum(1 + (b.withdrawal is not None) for b in t.bids)
    check(head["tree_size"] == len(t.closing["leaves"]) == events, f"{events} bid events", head)
    after = (await t.p.call("GET", "/api/v1/transparency/head"))["tree_size"]
    check(after == before + 1, f"the public log grown by this closing alone ({before} → {before + 1})", after)
    record = await t.opening_record()
    check([line["kind"] for line in record] == ["hall_opened"], "the hall opened", record)
    return (
        f"clock {shanghai_text(t.p.clock.now())}: chronograph → {t.code} opening; closing head signed over "
        f"{head['tree_size']} bid events (root {short(head['root_hash'])}, leaves published) and "
        f"{len(standing)} standing envelopes, logged as public leaf #{before}; decryption window until "
        f"{shanghai_text(t.window_end)}"
    )


async def verify_receipts(t: Trade) -> Outcome:
    """Every bidder checks its receipts offline against the published closing record, the log key pinned:
    every field against its signed leaf, the signatures, that its leaf is among the closing tree's
    published leaves, that the closing head is in the public log, and that its envelope stood."""
    table = plain_table("bidder", "receipt", "own log", "closing leaf", "checks", "in the closing set")
    pin = receipts.KeyPin(t.log_key, "the bidders pinned")
    verified = 0
    for bid in t.bids:
        withdrawn = bid.withdrawal is not None
        for receipt in (bid.receipt, *([bid.withdrawal] if bid.withdrawal else [])):
            log = receipt["log"]
            checks = receipts.verify(receipt, pin=pin, closing=t.closing)
            failed = [c.name for c in checks if not c.ok]
            expected = ["closing_envelope"] if withdrawn and receipt["event"] == "submit" else []
            check(failed == expected, f"failed checks {expected}", [c for c in checks if not c.ok])
            listed = next((c for c in checks if c.name == "closing_envelope"), None)
            leaf = b64(merkle.leaf_hash(merkle.leaf_bytes(log["leaf"])))
            table.add_row(
                bid.bidder.party.username,
                receipt["event"],
                f"#{log['leaf_index']} of {log['tree_head']['tree_size']}",
                f"#{t.closing['leaves'].index(leaf)} of {t.closing['head']['tree_size']}",
                f"{len(checks) - len(failed)} of {len(checks)} hold",
                "—" if listed is None else "yes" if listed.ok else "no: withdrawn before the deadline",
            )
            verified += 1
    withdrawn_by = t.bids[t.plan.withdrawing_bidder].bidder.party.username
    return (
        f"{verified} receipts verified against the closing head: every field, signature and inclusion "
        f"holds and every leaf is in the published closing tree; {withdrawn_by}'s withdrawn envelope is not "
        "in the closing set, as expected",
        table,
    )


async def refuse_late_bid(t: Trade) -> Outcome:
    """A bid after the deadline is refused (W-07)."""
    t.p.clock.advance(timedelta(minutes=1))
    late = t.bidders[t.plan.withdrawing_bidder]
    problem = await t.p.refused(
        "POST",
        f"/api/v1/tenders/{t.tid}/bids/uploads",
        late,
        rule="W-07",
        json={"filename": "late-bid.age", "size": 1024},
    )
    return f"{late.party.username} at {shanghai_text(t.p.clock.now())} → 422 rule W-07: {problem['detail']}"


def _sung(t: Trade, kind: str, bid: SealedBid) -> dict[str, Any] | None:
    """The line of the opening record that reads out `bid` (唱标), if there is one yet."""
    return next((e for e in t.record if e["kind"] == kind and e.get("bid") == bid.bid_id), None)


async def reveal_and_read(t: Trade, bid: SealedBid) -> dict[str, Any]:
    """Two minutes on, the bidder unwraps its file key locally and reveals it in the opening hall; answers
    the bid's line as the platform reads it out (唱标)."""
    t.p.clock.advance(timedelta(minutes=2))
    keys = t.keys[bid.bidder.name]
    file_key = envelope.unwrap_bidder(bid.header, keys.encryption.private_bytes_raw())
    got = await t.p.call(
        "POST",
        f"/api/v1/tenders/{t.tid}/bids/{bid.bid_id}/decrypt",
        bid.bidder,
        expect=202,
        json={"file_key": b64(file_key)},
    )
    check(got["envelope_status"] == "opening", "the envelope being opened", got)
    return await read_out(t, bid)


async def read_out(t: Trade, bid: SealedBid) -> dict[str, Any]:
    """Wait for the decryption job to read `bid` out in the hall; the line it wrote."""

    async def opened() -> bool:
        await t.opening_record()
        return _sung(t, "bid_opened", bid) is not None or _sung(t, "bid_failed", bid) is not None

    await t.p.settle(opened, f"{bid.bidder.party.username}'s envelope decrypted and read out")
    line = _sung(t, "bid_opened", bid)
    check(line is not None, f"{bid.bidder.party.username}'s envelope opened", _sung(t, "bid_failed", bid))
    assert line is not None
    check(line["declared_price_fen"] == bid.price_fen, f"price {bid.price_fen}", line)
    check(line["duration_days"] == BID_DURATION_DAYS, f"{BID_DURATION_DAYS} days", line)
    check(line["envelope_sha256"] == bid.sha256, f"envelope {short(bid.sha256)}", line)
    return line


async def reveal_keys(t: Trade) -> Outcome:
    """In the opening hall each present bidder's client unwraps its envelope's file key locally and reveals
    it; the platform checks it against the header, decrypts in a job, verifies the signed manifest and reads
    the bid out (唱标)."""
    table = plain_table("bidder", "key revealed", "envelope SHA-256", "price (yuan)", "days", "opened by")
    for bid in t.live_bids():
        if bid.bidder in (t.absent, t.saboteur):
            continue
        line = await reveal_and_read(t, bid)
        table.add_row(
            bid.bidder.party.username,
            shanghai_text(t.p.clock.now()),
            short(bid.sha256),
            yuan(line["declared_price_fen"]),
            str(line["duration_days"]),
            str(line["opened_by"]),
        )
    opened = [e for e in t.record if e["kind"] == "bid_opened"]
    check(len(opened) == len(t.live_bids()) - 2, f"{len(t.live_bids()) - 2} bids read out", len(opened))
    return (
        f"{len(opened)} envelopes opened by their bidders' keys and read out; "
        f"{t.absent.party.username} has not revealed its key, nor has {t.saboteur.party.username}, which "
        "watched four lower prices read out and keeps its key, its custody shares sabotaged",
        table,
    )


async def miss_window(t: Trade) -> Outcome:
    """The window ends: a key revealed now is refused (E-03), and the chronograph hands the unopened
    envelopes to the custodians (the tender's policy) for a custody window of the same length."""
    bid = t.bid_of(t.absent)
    t.p.clock.set(t.window_end + timedelta(minutes=1))
    keys = t.keys[t.absent.name]
    file_key = envelope.unwrap_bidder(bid.header, keys.encryption.private_bytes_raw())
    # Before the next tick, so the refusal is the window's (E-03), whatever the chronograph does next.
    await t.p.refused(
        "POST",
        f"/api/v1/tenders/{t.tid}/bids/{bid.bid_id}/decrypt",
        t.absent,
        rule="E-03",
        json={"file_key": b64(file_key)},
    )
    done = await t.p.tick()
    if done is not None:
        check(done == [(t.code, "custody")], f"[({t.code!r}, 'custody')]", done)

    async def in_custody() -> bool:
        return (await t.p.call("GET", f"/api/v1/tenders/{t.tid}"))["custody_until"] is not None

    await t.p.settle(in_custody, f"the chronograph to hand {t.code}'s unopened envelopes to the custodians")
    tender = await t.p.call("GET", f"/api/v1/tenders/{t.tid}")
    check(tender["status"] == "opening", "status opening", tender["status"])
    check(tender["custody_until"] is not None, "a custody window", tender)
    t.tender["custody_until"] = tender["custody_until"]
    own = await t.p.call("GET", f"/api/v1/tenders/{t.tid}/bids", t.absent)
    status = next(b["envelope_status"] for b in own if b["id"] == bid.bid_id)
    check(status == "custody", "its envelope in custody", status)
    record = await t.opening_record()
    held = [e for e in record if e["kind"] == "custody_opened"]
    check(len(held) == 1 and held[0]["envelopes"] == 2, "two envelopes to custody", record)
    return (
        f"clock {shanghai_text(t.p.clock.now())}: {t.absent.party.username}'s key → 422 rule E-03; "
        f"chronograph → custody, 2 envelopes ({t.absent.party.username}'s, {t.saboteur.party.username}'s) "
        f"in custody until {shanghai_text(tender['custody_until'])}"
    )


async def custodians_open(t: Trade) -> Outcome:
    """Each custodian (the centre's platform key included) fetches the headers in custody and, on its own
    side, releases its stanza of each envelope, one request per envelope: the stanza's X25519 shared secret
    and a Chaum–Pedersen proof that it was computed with the key on the roster. The three shares of the
    honest envelope open it; the saboteur's shares combine, but not to its file key."""
    honest, sabotaged = t.bid_of(t.absent), t.bid_of(t.saboteur)
    who = {honest.bid_id: t.absent.party.username, sabotaged.bid_id: t.saboteur.party.username}
    table = plain_table("custodian", "stanza", "envelope of", "proof", "stanza opens", "envelope", "outcome")
    results: dict[str, dict[str, Any]] = {}
    for party in RELEASING:
        t.p.clock.advance(timedelta(minutes=3))
        custodian = t.people[party.username]
        view = await t.p.call("GET", f"/api/v1/tenders/{t.tid}/custody", custodian)
        check(
            sorted(e["bid_id"] for e in view["envelopes"]) == sorted(who),
            "the two envelopes in custody",
            view["envelopes"],
        )
        check(
            (view["threshold"], view["shamir_threshold"]) == (CUSTODY_THRESHOLD, CUSTODY_THRESHOLD + 1),
            f"t = {CUSTODY_THRESHOLD}, T = {CUSTODY_THRESHOLD + 1}",
            view,
        )
        identity = t.keys[party.username].encryption.private_bytes_raw()
        for item in view["envelopes"]:
            header = envelope.parse_header(base64.b64decode(item["header"]))
            release = custody.make_release(identity, header, context=view["tender_code"], x=view["position"])
            answer = await t.p.call(
                "POST",
                f"/api/v1/tenders/{t.tid}/custody/releases",
                custodian,
                expect=201,
                json={"bid_id": item["bid_id"], "release": release.to_json()},
            )
            check(
                (answer["status"], answer["stanza_opens"]) == ("valid", True),
                "a valid release whose stanza opens",
                answer,
            )
            results[f"{party.username}:{item['bid_id']}"] = answer
            table.add_row(
                party.username,
                f"x={view['position']}",
                who[item["bid_id"]],
                "valid",
                "yes",
                answer["envelope_status"],
                answer["outcome"] or "—",
            )
    last = RELEASING[-1].username
    check(
        (results[f"{last}:{honest.bid_id}"]["outcome"], results[f"{last}:{sabotaged.bid_id}"]["outcome"])
        == ("opened", "bidder_fault"),
        "the honest envelope opened and the sabotaged one attributed once every custodian released",
        results,
    )
    line = await read_out(t, honest)
    check(line["opened_by"] == "custodians", "opened by the custodians", line)
    return (
        f"{', '.join(p.username for p in RELEASING)} each released their stanza of both envelopes with a proof: "
        f"{t.absent.party.username}'s envelope opened by the custodians, {yuan(line['declared_price_fen'])} "
        f"yuan, {line['duration_days']} days; {t.saboteur.party.username}'s shares, every one proven, do not "
        "open its header",
        table,
    )


async def attribute_sabotage(t: Trade) -> Outcome:
    """The sabotaged envelope ends with one provable cause: the bidder's fault. Its bid is revoked (E-03
    撤销) and the platform proposes keeping its deposit (W-06); the supervisor decides, and approves."""
    bid = t.bid_of(t.saboteur)
    await t.opening_record()
    outcome = next((e for e in t.record if e["kind"] == "custody_outcome" and e["bid"] == bid.bid_id), None)
    check(outcome is not None, "the custody outcome in the live record", t.record)
    assert outcome is not None
    check(
        (outcome["cause"], outcome["combine_failed"], outcome["opened_shares"], outcome["not_released"])
        == ("bidder_fault", True, [1, 2, 3], []),
        "the bidder's fault: three proven shares that combine but do not open the header",
        outcome,
    )
    mine = next(
        b for b in await t.p.call("GET", f"/api/v1/tenders/{t.tid}/bids", t.saboteur) if b["id"] == bid.bid_id
    )
    check(
        (mine["status"], mine["envelope_result"]) == ("revoked", "custody.bidder_fault"),
        "its bid revoked (E-03)",
        mine,
    )
    deposit = next(d for d in (await t.p.call("GET", "/api/v1/escrow/deposits", t.saboteur)))

    async def proposed() -> list[dict[str, Any]]:
        forfeitures = await t.p.call("GET", "/api/v1/escrow/forfeitures", t.supervisor)
        return [f for f in forfeitures if f["deposit_id"] == deposit["id"]]

    async def any_proposed() -> bool:
        return bool(await proposed())

    await t.p.settle(
        any_proposed, f"the platform's W-06 proposal to keep {t.saboteur.party.username}'s deposit"
    )
    proposals = await proposed()
    check(
        [(f["rule"], f["status"], f["proposed_by"]) for f in proposals]
        == [("W-06", "proposed", "job:custody")],
        "a W-06 forfeiture proposed by the platform",
        proposals,
    )
    # within the custody window: at its end a running chronograph closes the hall before the agency would
    t.p.clock.advance(timedelta(minutes=15))
    decided = await t.p.call(
        "POST",
        f"/api/v1/escrow/forfeitures/{proposals[0]['id']}/decision",
        t.supervisor,
        json={
            "approve": True,
            "note": "开标记录中三名保管人的释放证明均有效，份额合成后不能打开信封头：投标人自身原因（E-03 撤销）",
        },
    )
    check(decided["status"] == "approved", "approved by the supervisor", decided)
    kept = next(d for d in await t.p.call("GET", "/api/v1/escrow/deposits", t.saboteur))
    check(kept["status"] == "forfeited", "the deposit forfeited", kept)
    t.escrow.setdefault("forfeited", set()).add(t.saboteur.party.username)
    return (
        f"{t.saboteur.party.username}: {outcome['detail']} → bid revoked (E-03 撤销); W-06 forfeiture of its "
        f"{yuan(deposit['required_fen'])} yuan deposit proposed by the platform, approved by the supervisor"
    )


def _sse(text: str) -> list[dict[str, Any]]:
    """The events of a text/event-stream body: each with its id, event name and JSON data."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            if name in ("id", "event", "data"):
                fields[name] = fields.get(name, "") + value.removeprefix(" ")
        if "data" in fields:
            events.append(
                {"id": fields.get("id"), "event": fields.get("event"), **json.loads(fields["data"])}
            )
    return events


def _line_text(t: Trade, event: dict[str, Any]) -> str:
    who = {b.bid_id: b.bidder.party.username for b in t.bids}
    kind = event["kind"]
    if kind == "hall_opened":
        return (
            f"{event['bids']} bids; decryption window until {shanghai_text(event['decryption_window_ends'])}"
        )
    if kind == "key_revealed":
        return f"{who.get(event['bid'], event['bid'])}: file key from the {event['by']}"
    if kind in ("bid_opened", "bid_failed"):
        price = event["declared_price_fen"]
        return (
            f"{who.get(event['bid'], event['bid'])}: {yuan(price) if price is not None else '—'} yuan, "
            f"{event['duration_days'] or '—'} days, {event['result']}"
        )
    if kind == "custody_opened":
        return f"{event['envelopes']} envelope(s) to the custodians until {shanghai_text(event['custody_until'])}"
    if kind == "custody_outcome":
        return f"{who.get(event['bid'], event['bid'])}: {event['cause']} — {event['detail']}"
    if kind == "hall_closed":
        return f"{event['bids']} bids on the record, {event['signals']} W-18 signal(s)"
    return json.dumps({k: v for k, v in event.items() if k not in ("seq", "at", "kind", "id", "event")})


async def close_hall(t: Trade) -> Outcome:
    """Every envelope is open: the agency closes the opening hall early, the tender goes to evaluation;
    the whole live record, as the opening hall's event stream sent it."""
    t.p.clock.advance(timedelta(minutes=2))
    tender = await t.p.call("POST", f"/api/v1/tenders/{t.tid}/close-opening", t.agency)
    check(tender["status"] == "evaluation", "status evaluation", tender["status"])

    async def stream() -> httpx.Response:
        return await t.p.request(
            "GET",
            f"/api/v1/tenders/{t.tid}/opening/events",
            t.supervisor,
            expect=200,
            params={"follow": "false"},
        )

    async def closed() -> bool:
        events = _sse((await stream()).text)
        return bool(events) and events[-1]["kind"] == "hall_closed"

    await t.p.settle(closed, f"the hall_closed line at the end of {t.code}'s opening record")
    r = await stream()
    check(r.headers.get("content-type", "").startswith("text/event-stream"), "an event stream", r.headers)
    events = _sse(r.text)
    check(
        bool(events) and events[-1]["kind"] == "hall_closed",
        "the stream ends with the hall closed",
        events[-1:],
    )
    check([e["event"] for e in events] == [e["kind"] for e in events], "named events", events)
    table = plain_table("#", "at", "event", "")
    for e in events:
        table.add_row(str(e["seq"]), shanghai_text(e["at"])[-5:], e["kind"], _line_text(t, e))
    return (
        f"{shanghai_text(t.p.clock.now())}: the agency closed the hall, {t.code} is in evaluation; "
        f"the live record has {len(events)} lines",
        table,
    )


async def opening_record(t: Trade) -> Outcome:
    """The opening record (开标记录) is a public notice: who bid, the envelope hashes, the prices read out
    and who opened each envelope."""
    notices = await t.notices("opening_record")
    check(len(notices) == 1, "one opening record", len(notices))
    rows = notices[0]["body"]["bids"]
    table = plain_table(
        "lot", "bidder", "credit code", "envelope SHA-256", "price (yuan)", "days", "opened by", "result"
    )
    for row in rows:
        price = row["declared_price_fen"]
        table.add_row(
            str(row["lot"]),
            row["bidder"],
            row["credit_code"],
            short(row["envelope_sha256"]),
            yuan(price) if price is not None else "—",
            str(row["duration_days"] or "—"),
            str(row["opened_by"] or "—"),
            row["result"],
        )
    got = [(r["envelope_sha256"], r["declared_price_fen"], r["opened_by"], r["result"]) for r in rows]
    expected = [
        (b.sha256, None, None, "custody.bidder_fault")
        if b.bidder is t.saboteur
        else (b.sha256, b.price_fen, "custodians" if b.bidder is t.absent else "bidder", "opened")
        for b in t.live_bids()
    ]
    check(got == expected, str(expected), got)
    return f"«{notices[0]['title']}» published {shanghai_text(notices[0]['published_at'])}", table


async def verify_opening(t: Trade) -> Outcome:
    """Anyone downloads the signed opening record (no sign-in) and verifies it offline with the pinned log
    key, as `ggzy verify opening` does: the signatures, each header against the hash signed at the
    deadline, every custodian's proof and stanza, and each custody outcome's cause. A record with a cause
    changed fails."""
    record = await t.p.call("GET", f"/api/v1/tenders/{t.tid}/opening/record/signed")
    checks = signed_record.verify(record, t.log_key)
    check(all(c.ok for c in checks), "every check holds", [c for c in checks if not c.ok])
    forged = json.loads(json.dumps(record))
    bid = t.bid_of(t.saboteur)
    next(e for e in forged["envelopes"] if e["bid"] == bid.bid_id)["custody"]["outcome"]["cause"] = (
        "custodian_fault"
    )
    failed = [c.name for c in signed_record.verify(forged, t.log_key) if not c.ok]
    check(failed == ["record_signature", "contents"], "a changed cause fails", failed)
    table = plain_table("check", "result")
    for c in checks:
        if c.name.startswith(("cause", "release")) or not c.name.startswith("header"):
            table.add_row(c.name, f"ok — {c.detail}")
    releases = sum(c.name.startswith("release") for c in checks)
    return (
        f"{len(checks)} checks pass with the pinned key: {releases} custodians' proofs, "
        f"{sum(c.name.startswith('header') for c in checks)} headers as signed at the deadline, "
        f"2 custody causes; the record with {t.saboteur.party.username}'s cause changed → {', '.join(failed)} fail",
        table,
    )


async def collusion_signals(t: Trade) -> Outcome:
    """W-18: at the opening the platform compared the bids (identical files, document authors, devices,
    network addresses, signing keys); the supervisor sees the signals, the agency does not."""
    signals = await t.p.call("GET", f"/api/v1/tenders/{t.tid}/collusion-signals", t.supervisor)
    await t.p.request("GET", f"/api/v1/tenders/{t.tid}/collusion-signals", t.agency, expect=403)
    same = t.plan.same_author
    assert same is not None  # a plan whose bidders this step looks for
    pair = sorted(t.bidders[i].party.credit_code for i in same)
    check(
        sorted((s["kind"], s["rule"], sorted(s["bidders"])) for s in signals)
        == [("deposit_same_payer", "W-18", pair), ("identical_metadata", "W-18", pair)],
        f"two W-18 signals on {pair}: deposits from one account, the same author in the documents",
        signals,
    )
    table = plain_table("kind", "rule", "bidders", "evidence")
    names = {b.party.credit_code: b.party.username for b in t.bidders}
    for s in signals:
        table.add_row(s["kind"], s["rule"], ", ".join(names[c] for c in s["bidders"]), s["evidence"])
    who = " and ".join(t.bidders[i].party.username for i in same)
    author = next(s["value"] for s in signals if s["kind"] == "identical_metadata")
    return (
        f"2 W-18 signals for the committee: {who} paid their deposits from one bank account, and their bid "
        f"letters name the same author ({author}); the agency → 403",
        table,
    )
