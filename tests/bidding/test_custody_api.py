"""Custody opening through the HTTP API: the platform's share never counts toward t, custodians release
envelope by envelope with a proof, and an envelope nobody opened ends with one provable cause — the
bidder's fault (revoked, W-06 forfeiture proposed) or a custodian's (withdrawn, deposit refunded)."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from httpx import Response

from tests.bidding.custody_fixtures import cheat, pay_deposits
from tests.helpers import AFTER_WINDOW, DEADLINE, Actor, Api, SealedBid

T = "/api/v1/tenders"
PRICE = 4_800_000_000
CUSTODY_END = AFTER_WINDOW + timedelta(minutes=31)  # the custody window is as long as the decryption window


def problem(r: Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return dict(r.json())


async def mine(api: Api, bid: SealedBid, tender: dict[str, Any]) -> dict[str, Any]:
    [row] = [
        b for b in (await api.get(f"{T}/{tender['id']}/bids", bid.bidder)).json() if b["id"] == bid.bid_id
    ]
    return dict(row)


async def in_custody(
    api: Api, cheats: tuple[str, ...] = (), *, absent: int = 1, **overrides: Any
) -> tuple[dict[str, Any], list[SealedBid], list[SealedBid], list[SealedBid]]:
    """Three bidders who reveal, `absent` honest bidders who miss the window and one cheating bidder per
    entry of `cheats`; every deposit paid. At the end of the decryption window: (tender, revealed, absent,
    cheats), the absent and cheating envelopes in custody."""
    agency = await api.organisation("agency")
    tender = await api.published(agency, **overrides)
    revealed = [await api.bid(await api.organisation("bidder"), tender, PRICE - i) for i in range(3)]
    missing = [await api.bid(await api.organisation("bidder"), tender, PRICE - 10 - i) for i in range(absent)]
    cheating = [await cheat(api, tender, PRICE - 20 - i, how) for i, how in enumerate(cheats)]
    await pay_deposits(api, [b.bidder for b in (*revealed, *missing, *cheating)])
    await api.at(DEADLINE)
    for bid in revealed:
        assert (await api.reveal(tender["id"], bid)).status_code == 202
    assert await api.at(AFTER_WINDOW) == [(tender["code"], "custody")]
    return tender, revealed, missing, cheating


async def forfeitures(api: Api) -> list[dict[str, Any]]:
    supervisor = await api.organisation("supervisor")
    return list((await api.get("/api/v1/escrow/forfeitures", supervisor)).json())


async def obligations(api: Api, tender: dict[str, Any]) -> list[dict[str, Any]]:
    centre = await api.bootstrap_centre()
    r = await api.get("/api/v1/escrow/obligations", centre, params={"tender_id": tender["id"]})
    assert r.status_code == 200, r.text
    return list(r.json())


async def deposit_id(api: Api, bidder: Actor) -> str:
    [deposit] = (await api.get("/api/v1/escrow/deposits", bidder)).json()
    return str(deposit["id"])


# ---------------------------------------------------------------- the platform's share never counts toward t


async def three_custodians(api: Api) -> list[Actor]:
    """The centre (the platform) and two supervising organisations, each with a registered key."""
    centre = await api.bootstrap_centre()
    others = [await api.organisation("supervisor") for _ in range(2)]
    for actor in (centre, *others):
        await api.register_keys(actor, signing=False)
    return [centre, *others]


async def test_with_t2_the_platforms_share_and_one_custodian_do_not_open_an_envelope(api: Api) -> None:
    centre, first, second = await three_custodians(api)
    agency = await api.organisation("agency")
    tender = await api.published(
        agency, custodians=[c.organisation_id for c in (centre, first, second)], custody_threshold=2
    )
    bids = [await api.bid(await api.organisation("bidder"), tender, PRICE - i) for i in range(3)]
    await api.at(DEADLINE)
    for bid in bids[:2]:
        await api.reveal(tender["id"], bid)
    assert await api.at(AFTER_WINDOW) == [(tender["code"], "custody")]

    await api.release(tender["id"], centre)
    await api.release(tender["id"], first)

    left = await mine(api, bids[2], tender)
    assert (left["envelope_status"], left["declared_price_fen"]) == ("custody", None)
    await api.release(tender["id"], second)
    opened = await mine(api, bids[2], tender)
    assert (opened["envelope_status"], opened["declared_price_fen"]) == ("opened", PRICE - 2)


async def test_t_counts_only_custodians_other_than_the_platform(api: Api) -> None:
    centre = await api.bootstrap_centre()
    await api.register_keys(centre, signing=False)
    supervisor = await api.organisation("supervisor")
    await api.register_keys(supervisor, signing=False)
    agency = await api.organisation("agency")
    draft = await api.draft(
        agency, custodians=[centre.organisation_id, supervisor.organisation_id], custody_threshold=2
    )
    await api.document(agency, draft["id"], b"%PDF-1.7 tender documents")

    r = await api.post(f"{T}/{draft['id']}/publish", agency)

    body = problem(r, 422)
    assert body["errors"] == [
        {"field": "custody_threshold", "message": "t=2 exceeds the 1 custodian(s) other than the platform"}
    ]
    assert (await api.get(f"{T}/{draft['id']}", agency)).json()["status"] == "draft"


# ---------------------------------------------------------------- attributable outcomes


async def test_shares_of_a_random_secret_are_the_bidders_fault_revoked_with_a_forfeiture_proposed(
    api: Api,
) -> None:
    tender, _revealed, [absent], [saboteur] = await in_custody(api, ("random_secret",))
    for custodian in await api.custodians():
        await api.release(tender["id"], custodian)

    # the honest bidder who missed the window is opened by the custodians in the same tender
    honest = await mine(api, absent, tender)
    assert (honest["envelope_status"], honest["declared_price_fen"]) == ("opened", absent.price_fen)
    # every custodian released a valid, proven share; they combine, but not to this envelope's file key
    cheated = await mine(api, saboteur, tender)
    assert (cheated["status"], cheated["envelope_result"]) == ("revoked", "custody.bidder_fault")
    proposed = [
        f for f in await forfeitures(api) if f["deposit_id"] == await deposit_id(api, saboteur.bidder)
    ]
    assert [(f["rule"], f["status"]) for f in proposed] == [("W-06", "proposed")]
    assert "do not open the header" in proposed[0]["reason"]
    assert [o for o in await obligations(api, tender) if o["rule"] == "E-03"] == []


async def test_a_custodian_who_does_not_release_is_a_custodian_fault_withdrawn_and_refunded(api: Api) -> None:
    tender, _revealed, [absent], _ = await in_custody(api)
    centre, *_others = await api.custodians()
    await api.release(tender["id"], centre)  # the others stay away

    await api.at(CUSTODY_END)

    got = await mine(api, absent, tender)
    assert (got["status"], got["envelope_result"]) == ("withdrawn", "custody.custodian_fault")
    refunds = [o for o in await obligations(api, tender) if o["rule"] == "E-03"]
    assert [(o["deposit_id"], o["status"]) for o in refunds] == [
        (await deposit_id(api, absent.bidder), "due")
    ]
    assert await forfeitures(api) == []


# ---------------------------------------------------------------- releases, one envelope at a time


def _release(api: Api, custodian: Actor, view: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    from bidding import custody, envelope

    header = envelope.parse_header(base64.b64decode(item["header"]))
    identity = api.keys[custodian.organisation_id].encryption.private_bytes_raw()
    return custody.make_release(identity, header, context=view["tender_code"], x=view["position"]).to_json()


async def _view(api: Api, tender: dict[str, Any], custodian: Actor) -> dict[str, Any]:
    r = await api.get(f"{T}/{tender['id']}/custody", custodian)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _post(api: Api, tender: dict[str, Any], custodian: Actor, bid_id: str, release: Any) -> Response:
    return await api.post(
        f"{T}/{tender['id']}/custody/releases", custodian, json={"bid_id": bid_id, "release": release}
    )


async def test_a_wrong_secret_is_kept_as_the_custodians_fault_and_a_valid_release_may_replace_it(
    api: Api,
) -> None:
    tender, _revealed, [absent, other], _ = await in_custody(api, absent=2)
    centre, supervisor, notary = await api.custodians()
    view = await _view(api, tender, supervisor)
    items = {item["bid_id"]: item for item in view["envelopes"]}
    good = _release(api, supervisor, view, items[absent.bid_id])
    wrong = {**good, "shared_secret": _release(api, supervisor, view, items[other.bid_id])["shared_secret"]}

    r = await _post(api, tender, supervisor, absent.bid_id, wrong)

    body = problem(r, 422)
    assert (body["errors"], body["release_error"], body["recorded"]) == (
        [{"field": "release", "message": "release.secret"}],
        "release.secret",
        True,
    )
    view = await _view(api, tender, supervisor)
    assert [
        (e["bid_id"], e["my_release"], e["valid_releases"])
        for e in view["envelopes"]
        if e["bid_id"] == absent.bid_id
    ] == [(absent.bid_id, "invalid", 0)]
    # the same invalid release again is a replay: the same answer, nothing new on record
    assert (
        problem(await _post(api, tender, supervisor, absent.bid_id, wrong), 422)["release_error"]
        == "release.secret"
    )
    # were the window to close now, the supervisor's invalid release would be its fault: it may replace it
    r = await _post(api, tender, supervisor, absent.bid_id, good)
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["stanza_opens"], r.json()["replayed"]) == ("valid", True, False)
    # a valid release stands: a retry (a fresh proof of the same secret) is a replay, anything else a 409
    again = _release(api, supervisor, view, items[absent.bid_id])
    assert again["proof"] != good["proof"]
    r = await _post(api, tender, supervisor, absent.bid_id, again)
    assert (r.status_code, r.json()["replayed"]) == (200, True)
    assert problem(await _post(api, tender, supervisor, absent.bid_id, wrong), 409)["errors"] == [
        {"field": "release", "message": "already released"}
    ]
    for custodian in (centre, notary):
        await api.release(tender["id"], custodian)
    got = await mine(api, absent, tender)
    assert (got["envelope_status"], got["declared_price_fen"]) == ("opened", absent.price_fen)


async def test_a_release_copied_from_another_envelope_or_tender_does_not_verify(api: Api) -> None:
    tender, _revealed, [absent, other], _ = await in_custody(api, absent=2)
    _centre, supervisor, _notary = await api.custodians()
    view = await _view(api, tender, supervisor)
    items = {item["bid_id"]: item for item in view["envelopes"]}
    theirs = _release(api, supervisor, view, items[other.bid_id])

    r = await _post(api, tender, supervisor, absent.bid_id, theirs)

    assert problem(r, 422)["release_error"] == "release.context"
    # rewritten to name this envelope, the proof still binds the other stanza: it does not hold
    rewritten = {**theirs, "header_sha256": items[absent.bid_id]["header_sha256"]}
    assert problem(await _post(api, tender, supervisor, absent.bid_id, rewritten), 422)["release_error"] in (
        "release.secret",
        "release.proof",
    )
    # a release made for another tender (its code in the transcript) does not hold here either
    foreign = {**_release(api, supervisor, view, items[absent.bid_id]), "tender": "GGZY-320100-2026-W009999"}
    assert problem(await _post(api, tender, supervisor, absent.bid_id, foreign), 422)["release_error"] == (
        "release.context"
    )


async def test_a_stanza_wrapped_to_another_key_is_proven_the_bidders_fault_by_its_custodians_release(
    api: Api,
) -> None:
    tender, _revealed, [absent], [cheating] = await in_custody(api, ("random_key",))
    centre, supervisor, notary = await api.custodians()
    answers = await api.release(tender["id"], supervisor)  # the cheated stanza is the supervisor's (x = 2)
    by_bid = {r.json()["bid_id"]: r.json() for r in answers}
    assert {b: (a["status"], a["stanza_opens"]) for b, a in by_bid.items()} == {
        absent.bid_id: ("valid", True),
        cheating.bid_id: ("valid", False),
    }
    for custodian in (centre, notary):
        await api.release(tender["id"], custodian)

    got = await mine(api, cheating, tender)
    assert (got["status"], got["envelope_result"]) == ("revoked", "custody.bidder_fault")
    [line] = [
        e
        for e in (await api.get(f"{T}/{tender['id']}/opening/record", centre)).json()
        if e["kind"] == "custody_outcome" and e["bid"] == cheating.bid_id
    ]
    assert (line["cause"], line["bad_stanzas"], line["combine_failed"]) == ("bidder_fault", [2], False)
    assert (await mine(api, absent, tender))["envelope_status"] == "opened"


async def test_one_envelope_that_cannot_be_attributed_fails_neither_the_others_nor_the_tick(api: Api) -> None:
    from sqlalchemy import update

    from bidding.models import Envelope
    from storage.db import transaction

    tender, _revealed, [broken, absent], _ = await in_custody(api, absent=2)
    centre, *_ = await api.custodians()
    await api.release(tender["id"], centre)
    async with transaction(api.runtime.sessionmaker) as session:
        await session.execute(
            update(Envelope)
            .where(Envelope.bid_id == uuid.UUID(broken.bid_id))
            .values(header="bm90IGFuIGFnZSBoZWFkZXI=")
        )

    assert await api.at(CUSTODY_END) == [(tender["code"], "evaluation")]

    got = await mine(api, broken, tender)
    assert (got["status"], got["envelope_result"]) == ("withdrawn", "platform.custody")
    other = await mine(api, absent, tender)
    assert (other["status"], other["envelope_result"]) == ("withdrawn", "custody.custodian_fault")
    refunds = sorted(o["deposit_id"] for o in await obligations(api, tender) if o["rule"] == "E-03")
    assert refunds == sorted([await deposit_id(api, broken.bidder), await deposit_id(api, absent.bidder)])


async def test_a_release_after_the_custody_window_is_refused_by_e03(api: Api) -> None:
    tender, _revealed, [absent], _ = await in_custody(api)
    centre, *_ = await api.custodians()
    view = await _view(api, tender, centre)
    release = _release(api, centre, view, view["envelopes"][0])
    api.clock.set(CUSTODY_END)

    assert problem(await _post(api, tender, centre, absent.bid_id, release), 422)["rule"] == "E-03"


async def test_a_release_that_is_not_one_is_refused_and_changes_nothing(api: Api) -> None:
    tender, _revealed, [absent], _ = await in_custody(api)
    centre, *_ = await api.custodians()

    r = await _post(api, tender, centre, absent.bid_id, {"share": "AAAA"})

    assert problem(r, 422)["errors"] == [{"field": "release", "message": "release.encoding"}]
    view = await _view(api, tender, centre)
    assert [e["my_release"] for e in view["envelopes"]] == [None]


# ---------------------------------------------------------------- the signed opening record, verified offline


async def closed_with_custody(api: Api) -> tuple[dict[str, Any], dict[str, Any], bytes, SealedBid, SealedBid]:
    """A tender whose opening closed after custody: an honest absent bidder opened by the custodians and a
    saboteur attributed; (tender, the signed record, the pinned log key, the absent bid, the saboteur's)."""
    tender, _revealed, [absent], [saboteur] = await in_custody(api, ("random_secret",))
    for custodian in await api.custodians():
        await api.release(tender["id"], custodian)
    agency_tender = await api.get(f"{T}/{tender['id']}")
    assert agency_tender.json()["status"] == "opening"
    assert await api.at(CUSTODY_END) == [(tender["code"], "evaluation")]
    record = (await api.get(f"{T}/{tender['id']}/opening/record/signed")).json()  # public: no sign-in
    key = base64.b64decode((await api.get("/api/v1/transparency/key")).json()["public_key"])
    return tender, record, key, absent, saboteur


def failed(checks: list[Any]) -> list[str]:
    return [c.name for c in checks if not c.ok]


async def test_the_signed_opening_record_verifies_offline_with_every_proof_and_cause(api: Api) -> None:
    from bidding import opening_record

    tender, record, key, absent, saboteur = await closed_with_custody(api)

    checks = opening_record.verify(record, key)

    assert failed(checks) == []
    names = [c.name for c in checks]
    assert names[:6] == [
        "format",
        "record_signature",
        "closing_signature",
        "closing_set_signature",
        "custody_statement_signature",
        "envelopes_accounted",
    ]
    assert sum(n.startswith("header ") for n in names) == 5
    assert sum(n.startswith("release ") for n in names) == 6  # three custodians, two envelopes
    causes = {c.name: c.detail for c in checks if c.name.startswith("cause ")}
    assert sorted(d.split(":")[0] for d in causes.values()) == ["bidder_fault", "opened"]
    statement = record["closing"]["custody"]
    assert (statement["threshold"], statement["shamir_threshold"]) == (2, 3)
    assert [(c["position"], c["platform"]) for c in statement["roster"]] == [
        (1, True),
        (2, False),
        (3, False),
    ]
    by_bid = {e["bid"]: e for e in record["envelopes"]}
    assert by_bid[saboteur.bid_id]["result"] == "custody.bidder_fault"
    assert by_bid[saboteur.bid_id]["custody"]["outcome"]["combine_failed"] is True
    assert by_bid[absent.bid_id]["opened_by"] == "custodians"
    assert tender["code"] == record["tender"]


async def test_a_tampered_opening_record_fails_naming_the_check(api: Api) -> None:
    from bidding import opening_record

    _tender, record, key, absent, saboteur = await closed_with_custody(api)

    def entry(forged: dict[str, Any], bid: SealedBid) -> dict[str, Any]:
        return next(e for e in forged["envelopes"] if e["bid"] == bid.bid_id)

    def flip_cause(forged: dict[str, Any]) -> None:
        entry(forged, saboteur)["custody"]["outcome"]["cause"] = "custodian_fault"

    def flip_proof(forged: dict[str, Any]) -> None:
        release = entry(forged, absent)["custody"]["releases"][1]["release"]
        release["proof"]["s"] = entry(forged, saboteur)["custody"]["releases"][1]["release"]["proof"]["s"]

    def swap_header(forged: dict[str, Any]) -> None:
        entry(forged, absent)["header"] = entry(forged, saboteur)["header"]

    for change, expected in (
        (flip_cause, [f"cause {saboteur.receipt['envelope_sha256'][:12]}…"]),
        (
            flip_proof,  # the release no longer holds, and without it the stated opening does not follow
            [
                f"release {absent.receipt['envelope_sha256'][:12]}… x=2",
                f"cause {absent.receipt['envelope_sha256'][:12]}…",
            ],
        ),
        (swap_header, [f"header {absent.receipt['envelope_sha256'][:12]}…"]),
    ):
        forged = copy.deepcopy(record)
        change(forged)
        # tampered by anyone but the platform: the record's signature fails, and nothing else is passed
        assert failed(opening_record.verify(forged, key)) == ["record_signature", "contents"]
        # even the platform signing it cannot make a false statement pass: the check that recomputes it fails
        forged["signature"] = base64.b64encode(
            api.runtime.signer.sign(opening_record.record_message(forged))
        ).decode()
        assert failed(opening_record.verify(forged, key)) == expected, change.__name__

    # checked against another key than the platform's, nothing passes
    checks = opening_record.verify(record, bytes(range(32)))
    assert failed(checks) == [
        "record_signature",
        "closing_signature",
        "closing_set_signature",
        "custody_statement_signature",
        "contents",
    ]


async def test_ggzy_verify_opening_exits_0_on_the_published_record_and_1_naming_a_tampered_check(
    api: Api, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from ggzy import cli

    _tender, record, key, _absent, saboteur = await closed_with_custody(api)
    good = tmp_path / "opening.json"
    good.write_text(json.dumps(record))

    result = CliRunner().invoke(
        cli, ["verify", "opening", str(good), "--key", base64.b64encode(key).decode()]
    )

    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output and "ok   custody_statement_signature" in result.output
    unpinned = CliRunner().invoke(cli, ["verify", "opening", str(good)])
    assert unpinned.exit_code == 2 and "pin the platform key" in unpinned.output
    forged = copy.deepcopy(record)
    next(e for e in forged["envelopes"] if e["bid"] == saboteur.bid_id)["custody"]["outcome"]["cause"] = (
        "opened"
    )
    bad = tmp_path / "forged.json"
    bad.write_text(json.dumps(forged))
    result = CliRunner().invoke(cli, ["verify", "opening", str(bad), "--key", base64.b64encode(key).decode()])
    assert result.exit_code == 1
    assert (
        "FAIL record_signature" in result.output
        and "2 check(s) failed: record_signature, contents" in result.output
    )


async def test_the_signed_opening_record_is_published_only_once_the_opening_closed(api: Api) -> None:
    tender, _revealed, _absent, _ = await in_custody(api)
    r = await api.get(f"{T}/{tender['id']}/opening/record/signed")
    assert problem(r, 404)["detail"] == "The signed opening record is published when the opening closes."


async def test_a_revoked_saboteur_leaves_too_few_valid_bids_and_the_lot_fails_by_w09(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    revealed = [await api.bid(await api.organisation("bidder"), tender, PRICE - i) for i in range(2)]
    saboteur = await cheat(api, tender, PRICE - 9, "random_secret")
    await pay_deposits(api, [b.bidder for b in (*revealed, saboteur)])
    await api.at(DEADLINE)
    for bid in revealed:
        await api.reveal(tender["id"], bid)
    assert await api.at(AFTER_WINDOW) == [(tender["code"], "custody")]
    for custodian in await api.custodians():
        await api.release(tender["id"], custodian)

    # every custodian released: the outcome is final at once, so the agency may close the hall now
    assert (await mine(api, saboteur, tender))["status"] == "revoked"
    closed = await api.post(f"{T}/{tender['id']}/close-opening", agency)
    assert closed.status_code == 200, closed.text

    got = (await api.get(f"{T}/{tender['id']}")).json()
    assert got["status"] == "unsuccessful"
    assert got["lots"][0]["outcome_reason"].startswith("W-09: 2 valid bid(s) opened")
    # the honest bidders are owed their deposits back (T-END); the saboteur's waits for the supervisor
    owed = {o["deposit_id"]: o["rule"] for o in await obligations(api, tender)}
    assert owed == {await deposit_id(api, b.bidder): "T-END" for b in revealed}
    [proposal] = await forfeitures(api)
    assert (proposal["deposit_id"], proposal["rule"], proposal["status"]) == (
        await deposit_id(api, saboteur.bidder),
        "W-06",
        "proposed",
    )


async def test_a_custodian_key_outside_the_prime_order_group_is_refused_at_publication(api: Api) -> None:
    centre, first, _second = await three_custodians(api)
    odd = await api.organisation("supervisor")
    weak = base64.b64encode((1).to_bytes(32, "little")).decode()  # u = 1: a point of order 4
    r = await api.post("/api/v1/keys", odd, json={"purpose": "encryption", "public_key": weak})
    assert r.status_code == 201, r.text
    agency = await api.organisation("agency")
    draft = await api.draft(agency, custodians=[c.organisation_id for c in (centre, first, odd)])
    await api.document(agency, draft["id"], b"%PDF-1.7 tender documents")

    body = problem(await api.post(f"{T}/{draft['id']}/publish", agency), 422)

    assert body["errors"] == [{"field": "custodians[2]", "message": "key.point"}]
