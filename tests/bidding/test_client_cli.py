"""The sealing client (bidding.client) against the real app, and the `ggzy bid|custodian|verify` commands."""

from __future__ import annotations

import json
import secrets
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bidding import agekeys, bidfile, envelope
from bidding.client import GgzyClient, SealingRefused
from ggzy import cli
from tests.helpers import DEADLINE, Actor, Api
from tests.openapi_check import document_of

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
    sealing: list[int] = []
    uploading: list[int] = []
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
            progress=sealing.append,
        )
        receipt = await client.submit(
            tender["id"],
            tender["lots"][0]["id"],
            sealed.path,
            idempotency_key="client-bid-0001",
            progress=uploading.append,
        )
        # the progress callbacks were told of every byte written and sent
        assert sum(sealing) == sealed.size
        assert sum(uploading) == sealed.size
        again = await client.submit(
            tender["id"], tender["lots"][0]["id"], sealed.path, idempotency_key="client-bid-0001"
        )
        assert again == receipt and receipt["envelope_sha256"] == sealed.sha256()
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
        cli,
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
    result = CliRunner().invoke(cli, ["verify", "receipt", str(good), "--key", key])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
    assert "ok   key_pinned: the receipt's log key is the key given with --key" in result.output
    await api.at(DEADLINE)
    closing = tmp_path / "closing.json"
    closing.write_text((await api.get(f"/api/v1/tenders/{tender['id']}/closing")).text)
    result = CliRunner().invoke(
        cli, ["verify", "receipt", str(good), "--closing", str(closing), "--key", key]
    )
    assert result.exit_code == 0, result.output
    assert "ok   closing_inclusion: the receipt's leaf is leaf 0 of the 1" in result.output
    assert "ok   closing_envelope" in result.output
    tampered = json.loads(good.read_text())
    tampered["log"]["leaf"]["declared"] = 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tampered))
    result = CliRunner().invoke(cli, ["verify", "receipt", str(bad), "--key", key])
    assert result.exit_code == 1 and "FAIL inclusion" in result.output


class _Crash(Exception):
    pass


async def test_a_large_envelope_goes_up_in_parts_and_a_broken_upload_resumes(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _resumable_upload(api, tmp_path, monkeypatch)


async def test_a_broken_multipart_upload_resumes_on_s3(
    s3_api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _resumable_upload(s3_api, tmp_path, monkeypatch)


async def _resumable_upload(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from bidding import submission

    monkeypatch.setattr(submission, "MULTIPART_FROM", 1024 * 1024)
    monkeypatch.setattr(submission, "PART_SIZE", 5 * 1024 * 1024)
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await api.post(f"/api/v1/tenders/{tender['id']}/documents/obtain", bidder)
    keys = agekeys.generate(signing=True)
    drawings = tmp_path / "drawings.bin"
    drawings.write_bytes(os.urandom(12 * 1024 * 1024))  # three parts of 5, 5 and ~2 MiB
    puts: list[int] = []
    async with client_for(api, bidder.token) as client:
        await client.register_keys(keys)
        sealed = await client.seal(
            await client.tender(tender["id"]),
            1,
            [drawings],
            keys,
            bidder_credit_code=bidder.credit_code,
            declared_price_fen=PRICE,
            duration_days=300,
            out=tmp_path / "bid.age",
        )
        real_put = client._put_bytes

        crashed: list[bool] = []

        async def crash_on_part_two(url: str, data: bytes) -> Any:
            puts.append(len(data))
            if len(puts) == 2 and not crashed:
                crashed.append(True)
                raise _Crash  # the connection (or the process) dies during the second part
            return await real_put(url, data)

        monkeypatch.setattr(client, "_put_bytes", crash_on_part_two)
        with pytest.raises(_Crash):
            await client.submit(tender["id"], tender["lots"][0]["id"], sealed.path)
        state = json.loads((tmp_path / "bid.age.upload.json").read_text())
        assert state["upload_id"]
        puts.clear()
        receipt = await client.submit(tender["id"], tender["lots"][0]["id"], sealed.path)
    assert len(puts) == 2  # part 1 was already there intact: only parts 2 and 3 went up again
    assert receipt["envelope_sha256"] == sealed.sha256() and receipt["size"] == sealed.size
    assert not (tmp_path / "bid.age.upload.json").exists()


async def test_the_progress_of_anothers_upload_is_not_found(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    owner, other = await api.organisation("bidder"), await api.organisation("bidder")
    for who in (owner, other):
        await api.post(f"/api/v1/tenders/{tender['id']}/documents/obtain", who)
    grant = (
        await api.post(
            f"/api/v1/tenders/{tender['id']}/bids/uploads",
            owner,
            json={"filename": "b.age", "size": 70 * 2**20},
        )
    ).json()
    assert grant["upload_id"] and len(grant["parts"]) == 5
    path = f"/api/v1/tenders/{tender['id']}/bids/uploads/{grant['upload_id']}"
    params = {"object_key": grant["object_key"], "size": 70 * 2**20}
    mine = await api.get(path, owner, params=params)
    assert mine.status_code == 200 and mine.json()["received"] == []
    theirs = await api.get(path, other, params=params)
    assert theirs.status_code == 404


async def test_the_progress_of_an_upload_before_the_documents_is_a_documented_conflict(api: Api) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    r = await api.get(
        f"/api/v1/tenders/{tender['id']}/bids/uploads/0", bidder, params={"object_key": "0", "size": 1}
    )
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    assert "documents" in r.json()["detail"]
    operation = document_of(api.client._transport.app).operation("GET", r.request.url.path)  # type: ignore[attr-defined]
    assert operation is not None and "409" in operation.responses


async def test_custodians_release_their_stanzas_with_the_client(api: Api, tmp_path: Path) -> None:
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bids = [await api.bid(await api.organisation("bidder"), tender, PRICE + i) for i in range(3)]
    await api.at(DEADLINE)
    for bid in bids[:2]:
        await api.reveal(tender["id"], bid)
    await api.at(DEADLINE + timedelta(minutes=31))  # the third envelope goes to the custodians
    outcomes: list[str | None] = []
    for custodian in await api.custodians():
        async with client_for(api, custodian.token) as client:
            [result] = await client.release(tender["id"], api.keys[custodian.organisation_id])
            again = await client.release(tender["id"], api.keys[custodian.organisation_id])
        assert (result.bid_id, result.status, result.stanza_opens, result.error) == (
            bids[2].bid_id,
            "released",
            True,
            None,
        )
        outcomes.append(result.outcome)
        # run again: released already, nothing sent (and once the last release opened it, none in custody)
        expected = [] if result.outcome == "opened" else ["already released"]
        assert [a.status for a in again] == expected
        await api.run_jobs()
    assert outcomes == [None, None, "opened"]
    [mine] = (await api.get(f"/api/v1/tenders/{tender['id']}/bids", bids[2].bidder)).json()
    assert (mine["envelope_status"], mine["declared_price_fen"]) == ("opened", PRICE + 2)


async def test_one_envelope_that_does_not_open_for_a_custodian_does_not_stop_the_release_of_the_others(
    api: Api,
) -> None:
    from tests.bidding.custody_fixtures import cheat

    agency = await api.organisation("agency")
    tender = await api.published(agency)
    revealed = [await api.bid(await api.organisation("bidder"), tender, PRICE + i) for i in range(3)]
    absent = await api.bid(await api.organisation("bidder"), tender, PRICE + 10)
    # the supervisor's stanza of this envelope is wrapped to a stranger's key, under the supervisor's tag
    cheating = await cheat(api, tender, PRICE + 20, "random_key", position=2)
    await api.at(DEADLINE)
    for bid in revealed:
        await api.reveal(tender["id"], bid)
    await api.at(DEADLINE + timedelta(minutes=31))
    _centre, supervisor, *_ = await api.custodians()

    async with client_for(api, supervisor.token) as client:
        results = await client.release(tender["id"], api.keys[supervisor.organisation_id])

    got = {r.bid_id: (r.status, r.stanza_opens) for r in results}
    assert got == {absent.bid_id: ("released", True), cheating.bid_id: ("released", False)}
    assert not [r for r in results if r.error]


async def _sealing(api: Api, tmp_path: Path) -> tuple[Actor, dict[str, Any], Path]:
    """A published tender, a bidder with registered keys who obtained the documents, and a folder of its
    own holding one document."""
    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    await api.register_keys(bidder)
    await api.post(f"/api/v1/tenders/{tender['id']}/documents/obtain", bidder)
    work = tmp_path / "work"
    work.mkdir()
    (work / "投标文件.pdf").write_bytes(b"%PDF-1.7 our bid " + secrets.token_bytes(6 * 2**20))
    return bidder, tender, work


async def _seal(api: Api, bidder: Actor, tender: dict[str, Any], work: Path, keys: agekeys.KeyPair) -> Any:
    async with client_for(api, bidder.token) as client:
        published = await client.tender(tender["id"])
        return await client.seal(
            published,
            1,
            [work / "投标文件.pdf"],
            keys,
            bidder_credit_code=bidder.credit_code,
            declared_price_fen=PRICE,
            duration_days=300,
            out=work / "bid.age",
        )


async def test_the_client_refuses_to_seal_to_a_key_that_is_not_the_bidders_registered_key(
    api: Api, tmp_path: Path
) -> None:
    bidder, tender, work = await _sealing(api, tmp_path)
    theirs = await api.register_keys(await api.organisation("bidder"))  # another bidder's registered keys

    with pytest.raises(SealingRefused, match="not an encryption key registered to your organisation"):
        await _seal(api, bidder, tender, work, theirs)

    assert sorted(p.name for p in work.iterdir()) == ["投标文件.pdf"]


async def test_an_interrupted_source_leaves_no_partial_envelope_and_the_old_one_untouched(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bidder, tender, work = await _sealing(api, tmp_path)
    (work / "bid.age").write_bytes(b"the envelope sealed yesterday")
    read = bidfile._BidStream._read_file
    calls = 0
    partial: list[str] = []

    def failing(self: Any, current: Any, target: memoryview) -> int:
        nonlocal calls
        calls += 1
        if calls > 2:  # well into the file, the envelope half written
            partial.extend(p.name for p in work.iterdir() if p.name.endswith(".part"))
            raise OSError("the USB drive holding the bid files was unplugged")
        return read(self, current, target)

    monkeypatch.setattr(bidfile._BidStream, "_read_file", failing)

    with pytest.raises(OSError, match="unplugged"):
        await _seal(api, bidder, tender, work, api.keys[bidder.organisation_id])

    assert partial and partial[0].startswith(
        ".bid.age."
    )  # the envelope was being written beside the old one…
    # …and is gone; the envelope sealed before is as it was
    assert sorted(p.name for p in work.iterdir()) == ["bid.age", "投标文件.pdf"]
    assert (work / "bid.age").read_bytes() == b"the envelope sealed yesterday"


async def test_an_envelope_that_fails_its_self_check_is_not_kept(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bidder, tender, work = await _sealing(api, tmp_path)
    stranger = agekeys.x25519_public_raw(agekeys.generate(signing=False))
    honest = envelope.x25519_stanza
    # a faulty sealing library: the bidder's own stanza wraps the file key to some other key
    monkeypatch.setattr(envelope, "x25519_stanza", lambda file_key, _recipient: honest(file_key, stranger))

    with pytest.raises(SealingRefused, match=r"failed its self-check.*\[key.unwrap\]"):
        await _seal(api, bidder, tender, work, api.keys[bidder.organisation_id])

    assert sorted(p.name for p in work.iterdir()) == ["投标文件.pdf"]


@pytest.mark.parametrize("fails", [False, True])
def test_ggzy_custodian_release_prints_a_line_per_envelope_and_fails_only_for_a_real_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: bool
) -> None:
    from bidding import client as client_module

    key = tmp_path / "custodian.key"
    assert CliRunner().invoke(cli, ["custodian", "keygen", "--out", str(key)]).exit_code == 0
    results = [
        client_module.ReleaseOutcome("b-1", 1, "aa" * 32, "released", True, "opening", "opened"),
        client_module.ReleaseOutcome("b-2", 1, "bb" * 32, "released", False, "failed", "bidder_fault"),
    ]
    if fails:
        results.append(client_module.ReleaseOutcome("b-3", 1, "cc" * 32, "refused", error="409 Conflict"))

    async def release(_self: Any, tender_id: str, _keys: Any) -> list[Any]:
        assert tender_id == "T-1"
        return results

    monkeypatch.setattr(client_module.GgzyClient, "release", release)
    monkeypatch.setenv("GGZY_TOKEN", "a-token")

    result = CliRunner().invoke(cli, ["custodian", "release", "--tender", "T-1", "--key", str(key)])

    lines = result.output.splitlines()
    assert len(lines) == len(results)
    assert lines[0].startswith("ok   lot 1 envelope aaaaaaaaaaaaaaaa… (bid b-1): released; our stanza opens")
    assert "does NOT open with the proven secret: evidence of the bidder's fault" in lines[1]
    assert result.exit_code == (1 if fails else 0)
    if fails:
        assert lines[2].startswith("FAIL lot 1 envelope cccccccccccccccc… (bid b-3): refused: 409 Conflict")


async def test_the_readme_bid_flow_on_the_command_line(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """keygen --register, obtain (the documents downloaded and checked), seal, submit: as the README says."""
    import asyncio
    import hashlib
    import socket

    from app import create_app
    from demo.common import serving
    from tests.helpers import PASSWORD

    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    published = (await api.get(f"/api/v1/tenders/{tender['id']}/documents")).json()
    document = tmp_path / "bid.pdf"
    document.write_bytes(b"%PDF-1.7 our bid")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        monkeypatch.setattr(api.runtime.store, "_base_url", url)  # the links name the server we serve on
        async with serving(create_app(api.runtime, manage_runtime=False), sock):

            def ggzy(*args: str) -> str:
                env = {"GGZY_URL": url, "GGZY_USERNAME": bidder.username, "GGZY_PASSWORD": PASSWORD}
                result = CliRunner().invoke(cli, list(args), env=env)
                assert result.exit_code == 0, result.output
                return result.output

            def flow() -> list[str]:
                key, docs, sealed = tmp_path / "me.key", tmp_path / "docs", tmp_path / "bid.age"
                return [
                    ggzy("bid", "keygen", "--out", str(key), "--register"),
                    ggzy("bid", "obtain", "--tender", tender["id"], "--out", str(docs)),
                    ggzy("bid", "obtain", "--tender", tender["id"], "--out", str(docs)),  # again: harmless
                    ggzy(
                        "bid",
                        "seal",
                        "--tender",
                        tender["id"],
                        "--price-fen",
                        str(PRICE),
                        "--key",
                        str(key),
                        "--out",
                        str(sealed),
                        str(document),
                    ),
                    ggzy(
                        "bid",
                        "submit",
                        "--tender",
                        tender["id"],
                        "--receipt",
                        str(tmp_path / "r.json"),
                        str(sealed),
                    ),
                ]

            outputs = await asyncio.to_thread(flow)
    [doc] = published
    downloaded = tmp_path / "docs" / doc["filename"]
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == doc["sha256"]
    assert f"sha256 {doc['sha256']}" in outputs[1] and "sha256" not in outputs[2]
    assert "virtual account" in outputs[1]
    receipt = json.loads((tmp_path / "r.json").read_text())
    assert receipt["envelope_sha256"] == hashlib.sha256((tmp_path / "bid.age").read_bytes()).hexdigest()


async def test_a_bid_sealed_offline_from_a_prepared_context_is_accepted(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prepare against the server, seal with no server at all, then submit: the platform takes the bid."""
    import asyncio
    import hashlib
    import socket

    from app import create_app
    from demo.common import serving
    from tests.helpers import PASSWORD

    agency = await api.organisation("agency")
    tender = await api.published(agency)
    bidder = await api.organisation("bidder")
    document = tmp_path / "bid.pdf"
    document.write_bytes(b"%PDF-1.7 our bid, sealed offline")
    key, prepared, sealed = tmp_path / "me.key", tmp_path / "prepared.json", tmp_path / "bid.age"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        monkeypatch.setattr(api.runtime.store, "_base_url", url)
        async with serving(create_app(api.runtime, manage_runtime=False), sock):

            def ggzy(*args: str, server: str = url) -> str:
                env = {"GGZY_URL": server, "GGZY_USERNAME": bidder.username, "GGZY_PASSWORD": PASSWORD}
                result = CliRunner().invoke(cli, list(args), env=env)
                assert result.exit_code == 0, result.output
                return result.output

            def flow() -> str:
                ggzy("bid", "keygen", "--out", str(key), "--register")
                ggzy("bid", "obtain", "--tender", tender["id"], "--out", str(tmp_path / "docs"))
                said = ggzy("bid", "prepare", "--tender", tender["id"], "--out", str(prepared))
                ggzy(
                    "bid", "seal", "--prepared", str(prepared), "--price-fen", str(PRICE), "--key", str(key),
                    "--out", str(sealed), str(document),
                    server="http://127.0.0.1:9",  # the discard port: nothing answers there
                )  # fmt: skip
                ggzy(
                    "bid",
                    "submit",
                    "--tender",
                    tender["id"],
                    "--receipt",
                    str(tmp_path / "r.json"),
                    str(sealed),
                )
                return said

            said = await asyncio.to_thread(flow)

    context = json.loads(prepared.read_text())
    assert context["tender_id"] == tender["id"] and context["tender_code"] == tender["code"]
    assert f"ggzy bid seal --prepared {prepared}" in said
    receipt = json.loads((tmp_path / "r.json").read_text())
    assert receipt["envelope_sha256"] == hashlib.sha256(sealed.read_bytes()).hexdigest()
