"""The sealing client (bidding.client) against the real app, and the `ggzy bid|custodian|verify` commands."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from click.testing import CliRunner

from app import register_package_commands
from bidding import agekeys
from bidding.client import GgzyClient
from tests.helpers import DEADLINE, Api

PRICE = 4_780_000_000


def client_for(api: Api, token: str) -> GgzyClient:
    return GgzyClient("http://testserver", token, transport=api.client._transport, device_id="laptop-1")


async def test_a_bidder_seals_submits_and_opens_with_the_client(api: Api, tmp_path: Path) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    others = [await api.bid(await api.organisation("bidder"), tender, PRICE + i) for i in range(2)]
    bidder = await api.organisation("bidder")
    await api.post(f"/api/v1/tenders/{tender['id']}/documents/obtain", bidder)
    keys = agekeys.generate(signing=True)
    document = tmp_path / "投标文件.pdf"
    document.write_bytes(b"%PDF-1.7 our bid")
    async with client_for(api, bidder.token) as client:
        await client.register_keys(keys)
        await client.register_keys(keys)  # already registered: fine
        published = await client.tender(tender["id"])
        sealed = await client.seal(
            published,
            1,
            [document],
            keys,
            bidder_credit_code=bidder.credit_code,
            declared_price_fen=PRICE,
            duration_days=300,
            out=tmp_path / "bid.age",
        )
        receipt = await client.submit(
            tender["id"], tender["lots"][0]["id"], sealed.path, idempotency_key="client-bid-0001"
        )
        again = await client.submit(
            tender["id"], tender["lots"][0]["id"], sealed.path, idempotency_key="client-bid-0001"
        )
        assert again == receipt and receipt["envelope_sha256"] == sealed.sha256
        await api.at(DEADLINE)
        assert (await client.reveal(tender["id"], receipt["bid_id"], sealed.path, keys))[
            "envelope_status"
        ] == "opening"
        await api.run_jobs()
        checks = await client.check_receipt(receipt, tender["id"])
    assert all(c.ok for c in checks), checks
    for other in others:
        await api.reveal(tender["id"], other)
    mine = (await api.get(f"/api/v1/tenders/{tender['id']}/bids", bidder)).json()
    assert (mine[0]["envelope_status"], mine[0]["declared_price_fen"], mine[0]["duration_days"]) == (
        "opened",
        PRICE,
        300,
    )


def test_keygen_writes_a_private_age_identity_and_never_overwrites(tmp_path: Path) -> None:
    cli = register_package_commands()
    out = tmp_path / "me.key"
    result = CliRunner().invoke(cli, ["bid", "keygen", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    keys = agekeys.parse_identity_file(out.read_text())
    assert keys.signing is not None
    assert agekeys.recipient(agekeys.x25519_public_raw(keys)) in result.output
    again = CliRunner().invoke(cli, ["bid", "keygen", "--out", str(out)])
    assert again.exit_code != 0 and "refusing to overwrite" in again.output
    custodian = tmp_path / "custodian.key"
    assert CliRunner().invoke(cli, ["custodian", "keygen", "--out", str(custodian)]).exit_code == 0
    assert agekeys.parse_identity_file(custodian.read_text()).signing is None


async def test_bid_open_decrypts_ones_own_envelope_locally(api: Api, tmp_path: Path) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    sealed = await api.seal(bidder, tender, PRICE, files={"报价.pdf": b"%PDF price"})
    (tmp_path / "bid.age").write_bytes(sealed)
    key = tmp_path / "me.key"
    key.write_text(agekeys.identity_file_text(api.keys[bidder.organisation_id], api.clock.now()))
    out = tmp_path / "opened"
    result = CliRunner().invoke(
        register_package_commands(),
        ["bid", "open", "--key", str(key), "--out", str(out), str(tmp_path / "bid.age")],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["declared_price_fen"] == PRICE
    assert (out / "报价.pdf").read_bytes() == b"%PDF price"


async def test_verify_receipt_passes_a_good_receipt_and_fails_a_tampered_one(
    api: Api, tmp_path: Path
) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bid = await api.bid(await api.organisation("bidder"), tender, PRICE)
    good = tmp_path / "receipt.json"
    good.write_text(json.dumps(bid.receipt))
    key = (await api.get("/api/v1/transparency/key")).json()["public_key"]
    cli = register_package_commands()
    result = CliRunner().invoke(cli, ["verify", "receipt", str(good), "--key", key])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
    await api.at(DEADLINE)
    closing = tmp_path / "closing.json"
    closing.write_text((await api.get(f"/api/v1/tenders/{tender['id']}/closing")).text)
    size = json.loads(closing.read_text())["head"]["tree_size"]
    proof = tmp_path / "proof.json"
    first = bid.receipt["log"]["tree_head"]["tree_size"]
    proof.write_text(
        (await api.get("/api/v1/transparency/consistency", params={"first": first, "second": size})).text
    )
    args = [
        "verify",
        "receipt",
        str(good),
        "--closing",
        str(closing),
        "--consistency",
        str(proof),
        "--key",
        key,
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "envelope in the closing set" in result.output
    tampered = json.loads(good.read_text())
    tampered["log"]["leaf"]["declared"] = 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tampered))
    result = CliRunner().invoke(cli, ["verify", "receipt", str(bad), "--key", key])
    assert result.exit_code == 1 and "FAIL" in result.output
