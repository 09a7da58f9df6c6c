"""An ended tender's records are kept as one signed, verifiable bundle (G-09)."""

from __future__ import annotations

import base64
import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from archive import assemble, bundle
from archive.cli import verify_archive
from archive.models import TradeArchive
from storage.db import transaction
from tests.helpers import DEADLINE, Actor, Api

T = "/api/v1/tenders"


async def _completed(api: Api) -> tuple[Actor, dict[str, Any]]:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bids = [await api.bid(await api.organisation("bidder"), tender, 4_000_000_000 - i) for i in range(3)]
    award = await api.award_lowest(agency, tender, bids)
    r = await api.contract(agency, tender["id"], award["id"], award["price_fen"])
    assert r.status_code == 201, r.text
    r = await api.post(f"{T}/{tender['id']}/complete", agency)
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    return agency, tender


async def _failed(api: Api) -> tuple[Actor, dict[str, Any]]:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    for i in range(2):
        await api.bid(await api.organisation("bidder"), tender, price_fen=4_000_000_000 + i)
    assert await api.at(DEADLINE) == [(tender["code"], "unsuccessful")]
    return agency, tender


def _key(api: Api) -> str:
    return base64.b64encode(api.runtime.signer.public_raw).decode()


def _verify(tmp_path: Path, document: dict[str, Any], key: str) -> tuple[int, str]:
    path = tmp_path / "archive.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    result = CliRunner().invoke(verify_archive, [str(path), "--public-key", key])
    return result.exit_code, result.output


async def test_a_completed_tender_is_archived_at_the_next_tick_and_the_bundle_verifies(
    api: Api, tmp_path: Path
) -> None:
    agency, tender = await _completed(api)
    assert (await api.get(f"{T}/{tender['id']}/archive", agency)).status_code == 404
    await api.tick()
    r = await api.get(f"{T}/{tender['id']}/archive", agency)
    assert r.status_code == 200, r.text
    got = r.json()
    manifest = got["manifest"]
    assert manifest["tender"]["code"] == tender["code"] and manifest["tender"]["status"] == "completed"
    assert len([e for e in manifest["envelopes"] if e["stands"]]) == 3
    assert all(e["bidder"] for e in manifest["envelopes"])
    assert manifest["opening_record"]["signature"] and manifest["closing"]["envelopes"]
    assert manifest["evaluation"][0]["report_hash"] and manifest["evaluation"][0]["signatures"]
    assert len(manifest["awards"]) == 1 and len(manifest["contracts"]) == 1
    assert {n["kind"] for n in manifest["notices"]} >= {"tender_notice", "opening_record", "contract"}
    assert manifest["deposit_ledger"]["head"] is not None
    assert manifest["transparency_head"] is not None
    assert got["key_id"] == api.runtime.signer.key_id

    async with transaction(api.runtime.sessionmaker, read_only=True) as session:
        rows = list(await session.scalars(select(TradeArchive)))
    assert [(r.object_key, r.number) for r in rows] == [(f"archives/{tender['code']}/1.json", 1)]
    assert rows[0].manifest_sha256 == got["manifest_sha256"] == bundle.manifest_sha256(manifest)

    code, output = _verify(tmp_path, got, _key(api))
    assert code == 0, output
    assert "FAIL" not in output and f"tender {tender['code']} (completed)" in output

    # a second tick assembles nothing more
    await api.tick()
    async with transaction(api.runtime.sessionmaker, read_only=True) as session:
        assert len(list(await session.scalars(select(TradeArchive)))) == 1

    # the centre, supervisors and auditors read it too; bidders and the public do not
    for kind in ("supervisor", "auditor"):
        reader = await api.organisation(kind)
        assert (await api.get(f"{T}/{tender['id']}/archive", reader)).status_code == 200
    assert (await api.get(f"{T}/{tender['id']}/archive", await api.bootstrap_centre())).status_code == 200
    bidder = await api.organisation("bidder")
    assert (await api.get(f"{T}/{tender['id']}/archive", bidder)).status_code in (403, 404)
    assert (await api.get(f"{T}/{tender['id']}/archive")).status_code in (401, 403, 404)
    other = await api.organisation("agency")
    assert (await api.get(f"{T}/{tender['id']}/archive", other)).status_code == 404


def _tamper_envelope_hash(b: dict[str, Any]) -> None:
    b["manifest"]["envelopes"][0]["sha256"] = "0" * 64


def _tamper_signature(b: dict[str, Any]) -> None:
    b["signature"] = base64.b64encode(b"\x01" * 64).decode()


def _tamper_removed_envelope(b: dict[str, Any]) -> None:
    del b["manifest"]["envelopes"][1]


def _resign(b: dict[str, Any], signer: Any) -> None:
    b.update(bundle.seal(b["manifest"], signer))


async def test_a_tampered_bundle_fails_and_names_what_broke(api: Api, tmp_path: Path) -> None:
    agency, tender = await _completed(api)
    await api.tick()
    good = (await api.get(f"{T}/{tender['id']}/archive", agency)).json()
    key = _key(api)
    signer = api.runtime.signer

    changed = copy.deepcopy(good)
    _tamper_envelope_hash(changed)
    code, output = _verify(tmp_path, changed, key)
    assert code == 1 and "FAIL manifest hash" in output and "FAIL platform signature" in output

    replaced = copy.deepcopy(good)
    _tamper_signature(replaced)
    code, output = _verify(tmp_path, replaced, key)
    assert code == 1 and "FAIL platform signature" in output and "ok   manifest hash" in output

    # re-signed with the platform key after an envelope was removed: the signature holds, the content not
    removed = copy.deepcopy(good)
    _tamper_removed_envelope(removed)
    _resign(removed, signer)
    code, output = _verify(tmp_path, removed, key)
    assert code == 1 and "ok   platform signature" in output
    assert "FAIL closing envelopes" in output and "FAIL opening record envelopes" in output

    entry = copy.deepcopy(good)
    entry["manifest"]["deposit_ledger"]["entries"][0]["postings"][0]["amount_fen"] += 1
    _resign(entry, signer)
    code, output = _verify(tmp_path, entry, key)
    assert code == 1 and "FAIL deposit ledger extract" in output and "request hash" in output

    dropped = copy.deepcopy(good)
    del dropped["manifest"]["deposit_ledger"]["entries"][0]
    assert _verify(tmp_path, dropped, key)[0] == 1

    report = copy.deepcopy(good)
    report["manifest"]["evaluation"][0]["report"]["tender"] = "forged"
    _resign(report, signer)
    code, output = _verify(tmp_path, report, key)
    assert code == 1 and "hashes to" in output

    # under another key, nothing the platform signed verifies
    other = base64.b64encode(b"\x02" * 32).decode()
    code, output = _verify(tmp_path, good, other)
    assert code == 1 and "FAIL key id" in output


async def test_a_failed_tender_is_archived_too(api: Api, tmp_path: Path) -> None:
    agency, tender = await _failed(api)
    await api.tick()
    r = await api.get(f"{T}/{tender['id']}/archive", agency)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["manifest"]["tender"]["status"] == "unsuccessful"
    assert got["manifest"]["awards"] == [] and got["manifest"]["evaluation"] == []
    code, output = _verify(tmp_path, got, _key(api))
    assert code == 0, output


async def test_one_tender_that_fails_to_assemble_holds_up_no_other(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenders = []
    for _ in range(2):
        tender = await api.published(await api.organisation("agency"))
        for i in range(2):
            await api.bid(await api.organisation("bidder"), tender, price_fen=4_000_000_000 + i)
        tenders.append(tender)
    first, second = tenders
    real = assemble.manifest_of

    async def broken(session: Any, tender: Any, signer: Any, now: Any) -> dict[str, Any]:
        if tender.code == first["code"]:
            raise RuntimeError("the manifest could not be read")
        return await real(session, tender, signer, now)

    monkeypatch.setattr(assemble, "manifest_of", broken)
    assert sorted(await api.at(DEADLINE)) == sorted((t["code"], "unsuccessful") for t in tenders)
    assert await _archived(api) == {second["id"]}
    failures = (await api.get("/api/v1/chronograph/failures", await api.bootstrap_centre())).json()
    assert [(f["stage"], f["tender_code"]) for f in failures] == [("archive", first["code"])]

    # once it assembles again, the retry archives it and the failure leaves the list
    monkeypatch.setattr(assemble, "manifest_of", real)
    await api.at(DEADLINE + timedelta(minutes=2))
    assert await _archived(api) == {first["id"], second["id"]}
    failures = (await api.get("/api/v1/chronograph/failures", await api.bootstrap_centre())).json()
    assert failures == []


async def _archived(api: Api) -> set[str]:
    async with transaction(api.runtime.sessionmaker, read_only=True) as session:
        return {str(row.tender_id) for row in await session.scalars(select(TradeArchive))}


async def test_a_tender_cancelled_before_its_deadline_is_archived_without_envelopes(
    api: Api, tmp_path: Path
) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await api.bid(bidder, tender, price_fen=4_000_000_000)
    deposit = await api.deposit_of(bidder, tender["lots"][0]["id"])
    change = {
        "payee_name": "南京某建设集团有限公司",
        "payee_account": "6222000000000555",
        "payee_bank": "中国银行南京分行",
        "reason": "原付款账户已销户",
        "approval": "中心审批单 2026-017（附销户证明）",
    }
    r = await api.post(
        f"/api/v1/escrow/deposits/{deposit['id']}/payee", await api.bootstrap_centre(), json=change
    )
    assert r.status_code == 201, r.text
    r = await api.post(f"{T}/{tender['id']}/cancel", agency, json={"reason": "项目资金未落实"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    await api.tick()
    got = (await api.get(f"{T}/{tender['id']}/archive", agency)).json()
    manifest = got["manifest"]
    assert manifest["tender"]["status"] == "cancelled"
    assert manifest["closing"] is None and manifest["opening_record"] is None
    assert [e["stands"] for e in manifest["envelopes"]] in ([], [False])
    reasons = [e["reason"] for e in manifest["deposit_ledger"]["entries"]]
    assert "payee_changed" in reasons and manifest["deposit_ledger"]["deposits"] == [deposit["id"]]
    assert _verify(tmp_path, got, _key(api))[0] == 0


def test_the_manifest_refuses_floats_and_hashes_its_canonical_bytes() -> None:
    with pytest.raises(bundle.BundleError, match=r"manifest\.price is a float"):
        bundle.canonical({"price": 1.5})
    assert bundle.canonical({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
    assert bundle.message("ab" * 32) == b"ggzy-archive-v1\n" + b"ab" * 32 + b"\n"


def test_a_bundle_that_is_not_one_is_refused_by_name() -> None:
    key = b"\x00" * 32
    assert bundle.verify([], key)[0].detail == "not an archive bundle: no manifest object"
    assert "kind" in bundle.verify({"manifest": {"kind": "other"}}, key)[0].detail


async def test_a_negotiations_final_quotes_and_challenges_are_archived_and_checked(
    api: Api, tmp_path: Path
) -> None:
    from tests.trading.test_procurement_negotiation import BUDGET_FEN, _negotiating, _path, _seal

    agency, tender, bids = await _negotiating(api, suppliers=3)
    objection = await api.post(
        f"{T}/{tender['id']}/objections", bids[2].bidder, json={"subject": "opening", "text": "开标程序有误"}
    )
    assert objection.status_code == 201, objection.text
    deadline = api.clock.now() + timedelta(hours=1)
    r = await api.post(_path(tender, "final-call"), agency, json={"deadline": deadline.isoformat()})
    assert r.status_code == 200, r.text
    nonces = [await _seal(api, tender, bid, BUDGET_FEN - 1 - i) for i, bid in enumerate(bids[:2])]
    await api.at(deadline)
    for i, (bid, nonce) in enumerate(zip(bids[:2], nonces, strict=True)):
        body = {"lot_id": bid.lot_id, "price_fen": BUDGET_FEN - 1 - i, "nonce": nonce}
        assert (await api.post(_path(tender, "final-quotes/open"), bid.bidder, json=body)).status_code == 200
    await api.at(deadline + timedelta(minutes=31))  # two final quotes: the negotiation fails (G-13)
    await api.tick()
    got = (await api.get(f"{T}/{tender['id']}/archive", agency)).json()
    manifest = got["manifest"]
    assert manifest["tender"]["status"] == "unsuccessful"
    assert len(manifest["negotiation"]["final_quotes"]) == 2
    assert [o["subject"] for o in manifest["disputes"]["objections"]] == ["opening"]
    code, output = _verify(tmp_path, got, _key(api))
    assert code == 0 and "2 of 2 sealed final quote(s) opened" in output, output
    # a final price changed after the fact, even re-signed, does not open its commitment
    forged = copy.deepcopy(got)
    forged["manifest"]["negotiation"]["final_quotes"][0]["price_fen"] -= 1
    _resign(forged, api.runtime.signer)
    code, output = _verify(tmp_path, forged, _key(api))
    assert code == 1 and "FAIL final quotes" in output
