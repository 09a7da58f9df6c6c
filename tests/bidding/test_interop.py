"""Envelopes are standard age files: rage (pyrage) and the age CLI open ours, and we open theirs."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pyrage
import pytest

from bidding import agekeys, bidfile, envelope

TENDER = "GGZY-320100-2026-W000001"
CREATED = datetime(2026, 3, 1, 1, 30, tzinfo=UTC)
BIDDER = agekeys.generate(signing=True)
CUSTODIANS = [agekeys.generate(signing=False) for _ in range(3)]
FILES = [("投标函.pdf", b"%PDF-1.7 letter of bid"), ("工程量清单.xlsx", bytes(range(256)) * 1000)]
SIZES = [0, 1, 64 * 1024, 64 * 1024 + 1, 5 * 64 * 1024 + 17, 3 * 1024 * 1024]
AGE = shutil.which("age")
needs_age = pytest.mark.skipif(AGE is None, reason="the age CLI is not installed (Debian package 'age')")


def identity_file(tmp_path: Path, kp: agekeys.KeyPair = BIDDER) -> Path:
    path = tmp_path / "key.txt"
    path.write_text(agekeys.identity_file_text(kp, CREATED))
    return path


def secret_key_line(path: Path) -> str:
    return next(line for line in path.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-1"))


def seal_bid(tmp_path: Path) -> bytes:
    sources = tmp_path / "sources"
    sources.mkdir()
    paths = []
    for name, data in FILES:
        (sources / name).write_bytes(data)
        paths.append(sources / name)
    dst = io.BytesIO()
    assert BIDDER.signing is not None
    bidfile.seal_bid(
        paths,
        dst,
        tender=TENDER,
        lot=1,
        bidder="91320100MA1XYZ0001",
        kind="technical",
        declared_price_fen=None,
        duration_days=365,
        signing=BIDDER.signing,
        bidder_public=agekeys.x25519_public_raw(BIDDER),
        custodians=[agekeys.x25519_public_raw(c) for c in CUSTODIANS],
        threshold=2,
    )
    return dst.getvalue()


def seal_plain(data: bytes) -> bytes:
    dst = io.BytesIO()
    envelope.seal(
        io.BytesIO(data),
        dst,
        bidder=agekeys.x25519_public_raw(BIDDER),
        custodians=[agekeys.x25519_public_raw(c) for c in CUSTODIANS],
        threshold=2,
        context=TENDER,
    )
    return dst.getvalue()


def members_of(tar: bytes) -> dict[str, bytes]:
    members = {}
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        for info in archive:
            extracted = archive.extractfile(info)
            assert extracted is not None
            members[info.name] = extracted.read()
    return members


def ggzy_decrypt(blob: bytes, kp: agekeys.KeyPair = BIDDER) -> bytes:
    header = envelope.parse_header(blob)
    file_key = envelope.unwrap_bidder(header, kp.encryption.private_bytes_raw())
    out = io.BytesIO()
    assert envelope.decrypt(io.BytesIO(blob), out, file_key) == len(out.getvalue())
    return out.getvalue()


# --- rage, through pyrage -----------------------------------------------------------------------------


def test_pyrage_opens_a_bid_envelope_with_the_identity_file_key(tmp_path: Path) -> None:
    blob = seal_bid(tmp_path)
    assert b"-> ggzy-share " in blob[: envelope.parse_header(blob).size]
    identity = pyrage.x25519.Identity.from_str(secret_key_line(identity_file(tmp_path)))
    members = members_of(pyrage.decrypt(blob, [identity]))
    assert list(members) == ["files/投标函.pdf", "files/工程量清单.xlsx", "manifest.json", "manifest.sig"]
    assert [members[f"files/{name}"] for name, _ in FILES] == [data for _, data in FILES]


@pytest.mark.parametrize("size", SIZES)
def test_pyrage_opens_envelopes_of_every_chunking(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    identity = pyrage.x25519.Identity.from_str(agekeys.identity_string(BIDDER.encryption.private_bytes_raw()))
    assert pyrage.decrypt(seal_plain(data), [identity]) == data


def test_pyrage_does_not_open_an_envelope_for_a_custodian() -> None:
    custodian = pyrage.x25519.Identity.from_str(
        agekeys.identity_string(CUSTODIANS[0].encryption.private_bytes_raw())
    )
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(seal_plain(b"bid"), [custodian])


@pytest.mark.parametrize("size", SIZES)
def test_ggzy_opens_what_pyrage_encrypted(size: int) -> None:
    data = bytes(i % 253 for i in range(size))
    recipient = pyrage.x25519.Recipient.from_str(agekeys.recipient(agekeys.x25519_public_raw(BIDDER)))
    assert ggzy_decrypt(pyrage.encrypt(data, [recipient])) == data


def test_ggzy_opens_a_pyrage_file_for_several_recipients() -> None:
    other = pyrage.x25519.Identity.generate()
    ours = pyrage.x25519.Recipient.from_str(agekeys.recipient(agekeys.x25519_public_raw(BIDDER)))
    blob = pyrage.encrypt(b"for two", [other.to_public(), ours])
    assert ggzy_decrypt(blob) == b"for two"


def test_a_pyrage_file_fails_our_roster_check() -> None:
    recipient = pyrage.x25519.Recipient.from_str(agekeys.recipient(agekeys.x25519_public_raw(BIDDER)))
    header = envelope.parse_header(pyrage.encrypt(b"no shares", [recipient]))
    with pytest.raises(envelope.EnvelopeError) as caught:
        envelope.check_roster(
            header, custodians=[agekeys.x25519_public_raw(c) for c in CUSTODIANS], threshold=2, context=TENDER
        )
    # rage adds random "grease" stanzas of unknown types, which the roster refuses before the missing shares
    assert caught.value.code in ("roster.stanza_unexpected", "roster.share_missing")


# --- the age CLI --------------------------------------------------------------------------------------


@needs_age
def test_age_cli_and_tar_unpack_a_bid_envelope(tmp_path: Path) -> None:
    assert AGE is not None
    envelope_path = tmp_path / "bid.age"
    envelope_path.write_bytes(seal_bid(tmp_path))
    out = tmp_path / "unpacked"
    out.mkdir()
    age = subprocess.Popen(
        [AGE, "-d", "-i", str(identity_file(tmp_path)), str(envelope_path)], stdout=subprocess.PIPE
    )
    subprocess.run(["tar", "-x", "-C", str(out)], stdin=age.stdout, check=True)
    assert age.wait() == 0
    for name, data in FILES:
        assert (out / "files" / name).read_bytes() == data
    manifest = bidfile.Manifest.from_bytes((out / "manifest.json").read_bytes())
    assert [(f.name, f.sha256) for f in manifest.files] == [
        (n, hashlib.sha256(d).hexdigest()) for n, d in FILES
    ]


@needs_age
@pytest.mark.parametrize("size", SIZES)
def test_age_cli_decrypts_envelopes_of_every_chunking(tmp_path: Path, size: int) -> None:
    assert AGE is not None
    data = bytes(i % 249 for i in range(size))
    result = subprocess.run(
        [AGE, "-d", "-i", str(identity_file(tmp_path))],
        input=seal_plain(data),
        capture_output=True,
        check=True,
    )
    assert result.stdout == data


@needs_age
def test_age_cli_refuses_a_tampered_envelope(tmp_path: Path) -> None:
    assert AGE is not None
    blob = bytearray(seal_plain(bytes(100_000)))
    blob[-100] ^= 1
    result = subprocess.run(
        [AGE, "-d", "-i", str(identity_file(tmp_path))], input=bytes(blob), capture_output=True
    )
    assert result.returncode != 0


@needs_age
@pytest.mark.parametrize("size", SIZES)
def test_ggzy_opens_what_the_age_cli_encrypted(size: int) -> None:
    assert AGE is not None
    data = bytes(i % 247 for i in range(size))
    recipient = agekeys.recipient(agekeys.x25519_public_raw(BIDDER))
    result = subprocess.run([AGE, "-e", "-r", recipient], input=data, capture_output=True, check=True)
    assert ggzy_decrypt(result.stdout) == data


@needs_age
def test_age_keygen_identity_files_are_read(tmp_path: Path) -> None:
    keygen = shutil.which("age-keygen")
    if keygen is None:
        pytest.skip("age-keygen is not installed next to age")
    path = tmp_path / "age-key.txt"
    subprocess.run([keygen, "-o", str(path)], check=True, capture_output=True)
    kp = agekeys.parse_identity_file(path.read_text())
    public_line = next(line for line in path.read_text().splitlines() if line.startswith("# public key: "))
    assert public_line.removeprefix("# public key: ") == agekeys.recipient(agekeys.x25519_public_raw(kp))
    assert kp.signing is None
