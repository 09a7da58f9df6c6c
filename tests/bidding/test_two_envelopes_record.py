"""The signed opening record of a tender of two envelopes (双信封) covers its technical envelopes: a line
for each bid's technical envelope with its hash, its header as signed at the deadline and who opened it, no
price; `ggzy verify opening` re-checks them offline, and a tampered technical line fails, naming itself."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bidding import opening_record
from tests.bidding.test_two_envelopes import T, TwoEnvelopes, reveal, technically_opened
from tests.evaluation.technical_fixtures import judged_and_opened
from tests.helpers import Api


async def closed_record(api: Api) -> tuple[list[TwoEnvelopes], dict[str, Any], bytes]:
    """Four bids, three passed and opened at the commercial opening, one not passed; the signed record."""
    agency, tender, bids = await technically_opened(api)
    r = await judged_and_opened(api, agency, tender, [b.bid_id for b in bids[:3]], [bids[3].bid_id])
    assert r.status_code == 200, r.text
    for bid in bids[:3]:
        assert (await reveal(api, tender, bid, "commercial")).status_code == 202
    assert (await api.post(f"{T}/{tender['id']}/close-opening", agency)).status_code == 200
    signed = await api.get(f"{T}/{tender['id']}/opening/record/signed")  # public: no sign-in
    assert signed.status_code == 200, signed.text
    key = base64.b64decode((await api.get("/api/v1/transparency/key")).json()["public_key"])
    return bids, signed.json(), key


def failed(checks: list[Any]) -> list[str]:
    return [c.name for c in checks if not c.ok]


def line(record: dict[str, Any], bid: TwoEnvelopes) -> dict[str, Any]:
    return next(t for t in record["technical"] if t["bid"] == bid.bid_id)


async def test_the_signed_record_lists_each_technical_envelope_and_verifies(api: Api) -> None:
    bids, record, key = await closed_record(api)

    checks = opening_record.verify(record, key)

    assert failed(checks) == []
    names = [c.name for c in checks]
    assert "technical_accounted" in names
    assert sum(n.startswith("header technical ") for n in names) == 4
    assert sum(n.startswith("opened technical ") for n in names) == 4
    statement = {e["sha256"] for e in record["closing"]["custody"]["technical"]}
    assert {t["envelope_sha256"] for t in record["technical"]} == statement
    assert {t["bid"] for t in record["technical"]} == {b.bid_id for b in bids}
    assert all(t["opened_by"] == "bidder" and t["result"] == "opened" for t in record["technical"])
    assert all("declared_price_fen" not in t for t in record["technical"])
    assert statement.isdisjoint(e["envelope_sha256"] for e in record["envelopes"])


async def test_a_tampered_technical_line_fails_naming_the_check(api: Api) -> None:
    bids, record, key = await closed_record(api)
    first = line(record, bids[0])["envelope_sha256"][:12]

    def swap_header(forged: dict[str, Any]) -> None:
        line(forged, bids[0])["header"] = line(forged, bids[1])["header"]

    def claim_custody(forged: dict[str, Any]) -> None:
        line(forged, bids[0])["opened_by"] = "custodians"

    def drop_line(forged: dict[str, Any]) -> None:
        forged["technical"].remove(line(forged, bids[3]))

    def drop_all(forged: dict[str, Any]) -> None:
        del forged["technical"]

    changes: list[tuple[Callable[[dict[str, Any]], None], list[str]]] = [
        (swap_header, [f"header technical {first}…"]),
        (claim_custody, [f"opened technical {first}…"]),
        (drop_line, ["technical_accounted"]),
        (drop_all, ["technical_accounted"]),
    ]
    for change, expected in changes:
        forged = copy.deepcopy(record)
        change(forged)
        # tampered by anyone but the platform: the record's signature fails, and nothing else is passed
        assert failed(opening_record.verify(forged, key)) == ["record_signature", "contents"]
        # even the platform re-signing it cannot make the technical line pass: it is checked against the
        # custody statement signed at the deadline
        forged["signature"] = base64.b64encode(
            api.runtime.signer.sign(opening_record.record_message(forged))
        ).decode()
        assert failed(opening_record.verify(forged, key)) == expected, change.__name__


async def test_ggzy_verify_opening_checks_the_technical_lines_offline(api: Api, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ggzy import cli

    bids, record, key = await closed_record(api)
    pinned = base64.b64encode(key).decode()
    good = tmp_path / "opening.json"
    good.write_text(json.dumps(record))
    forged = copy.deepcopy(record)
    line(forged, bids[2])["envelope_sha256"] = "0" * 64
    bad = tmp_path / "forged.json"
    bad.write_text(json.dumps(forged))

    ok = CliRunner().invoke(cli, ["verify", "opening", str(good), "--key", pinned])
    refused = CliRunner().invoke(cli, ["verify", "opening", str(bad), "--key", pinned])

    assert ok.exit_code == 0, ok.output
    assert "ok   technical_accounted" in ok.output and "FAIL" not in ok.output
    assert refused.exit_code == 1 and "FAIL record_signature" in refused.output
