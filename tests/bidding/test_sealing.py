"""Sealing offline (bidding.sealing): the sealing context, and an envelope made durable as it is written."""

from __future__ import annotations

import base64
import errno
import os
from pathlib import Path

import pytest

from bidding import agekeys, bidfile, sealing
from bidding.bench import BIDDER_CODE, TENDER, Keys, bidder_file_key, prepared_context

MIB = 1024 * 1024


def _seal(tmp_path: Path, keys: Keys, size: int) -> Path:
    source = tmp_path / "bid.bin"
    source.write_bytes(os.urandom(size))
    out = tmp_path / "bid.age"
    sealing.seal_to_file(
        prepared_context(keys),
        1,
        [source],
        keys.bidder,
        declared_price_fen=None,
        duration_days=None,
        out=out,
        kind="technical",
    )
    return out


def test_a_large_envelope_goes_to_disk_while_it_is_written_and_is_fsynced_before_it_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sealing, "WRITE_BACK_EVERY", MIB)
    synced_at: list[int] = []
    fsynced: list[int] = []
    fdatasync, fsync = os.fdatasync, os.fsync

    def background(fd: int) -> None:
        synced_at.append(os.fstat(fd).st_size)
        fdatasync(fd)

    def final(fd: int) -> None:
        fsynced.append(os.fstat(fd).st_size)
        fsync(fd)

    monkeypatch.setattr(os, "fdatasync", background)
    monkeypatch.setattr(os, "fsync", final)
    keys = Keys()

    out = _seal(tmp_path, keys, 6 * MIB)

    size = out.stat().st_size
    assert fsynced == [size]  # the whole envelope is on disk before it is renamed into place…
    # …and write-backs were started while it was written (when each one runs is the thread's affair, so
    # one may see the whole file)
    assert synced_at and all(0 < at <= size for at in synced_at)
    with out.open("rb") as src:
        opened = bidfile.open_bid(src, bidder_file_key(out, keys), tmp_path / "opened")
    assert (tmp_path / "opened" / "bid.bin").read_bytes() == (tmp_path / "bid.bin").read_bytes()
    assert opened.manifest.tender == TENDER


def test_a_small_envelope_starts_no_background_write_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(os, "fdatasync", calls.append)

    _seal(tmp_path, Keys(), 100_000)

    assert calls == []


def test_a_failed_write_back_leaves_no_envelope(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sealing, "WRITE_BACK_EVERY", MIB)

    def failing(_fd: int) -> None:
        raise OSError(errno.EIO, "the disk failed")

    monkeypatch.setattr(os, "fdatasync", failing)

    with pytest.raises(OSError, match="the disk failed"):
        _seal(tmp_path, Keys(), 4 * MIB)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["bid.bin"]


def test_a_sealing_context_reads_back_as_written_and_keeps_only_live_keys() -> None:
    keys = Keys()
    encryption = base64.b64encode(agekeys.x25519_public_raw(keys.bidder)).decode()
    tender = {
        "id": "t-1",
        "code": TENDER,
        "lots": [{"number": 1}, {"number": 2}],
        "custodians": [{"public_key": base64.b64encode(c).decode()} for c in keys.custodian_publics],
        "shamir_threshold": 2,
    }
    registered = [
        {"purpose": "encryption", "public_key": encryption},
        {"purpose": "signing", "public_key": "cmV2b2tlZA==", "revoked_at": "2026-01-01T00:00:00Z"},
    ]

    prepared = sealing.Prepared.from_answers(
        tender, {"organisation": {"credit_code": BIDDER_CODE}}, registered
    )

    assert prepared.lots == (1, 2) and prepared.custodians == tuple(keys.custodian_publics)
    assert prepared.registered == (("encryption", encryption),)
    assert sealing.Prepared.from_json(prepared.to_json()) == prepared


def test_a_tender_without_a_roster_cannot_be_prepared() -> None:
    with pytest.raises(sealing.SealingRefused, match="no custodian roster"):
        sealing.Prepared.from_answers(
            {"id": "t", "code": TENDER, "lots": [], "custodians": [], "shamir_threshold": None},
            {"organisation": {"credit_code": BIDDER_CODE}},
            [],
        )
