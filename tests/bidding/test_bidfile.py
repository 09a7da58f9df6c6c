"""Bid envelopes end to end: sealing files with a signed manifest, strict opening, context checks."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import random
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidding import agekeys, bidfile, envelope
from bidding.bidfile import FileEntry, Manifest
from bidding.envelope import EnvelopeError

TENDER = "GGZY-320100-2026-W000001"
OTHER_TENDER = "GGZY-320100-2026-W000002"
BIDDER_CODE = "91320100MA1XYZ0001"
BIDDER = agekeys.generate(signing=True)
CUSTODIANS = [agekeys.generate(signing=False) for _ in range(3)]
CUSTODIAN_KEYS = [agekeys.x25519_public_raw(c) for c in CUSTODIANS]
assert BIDDER.signing is not None
SIGNING: Ed25519PrivateKey = BIDDER.signing
SIGNING_KEY = base64.b64encode(agekeys.ed25519_public_raw(BIDDER)).decode()


def write_files(directory: Path, files: list[tuple[str, bytes]]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files:
        path = directory / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def seal_files(paths: list[Path], dst: io.BytesIO, **overrides: Any) -> bidfile.SealedBid:
    arguments: dict[str, Any] = {
        "tender": TENDER,
        "lot": 1,
        "bidder": BIDDER_CODE,
        "kind": "commercial",
        "declared_price_fen": 12_345_600,
        "duration_days": 180,
        "signing": SIGNING,
        "bidder_public": agekeys.x25519_public_raw(BIDDER),
        "custodians": CUSTODIAN_KEYS,
        "threshold": 2,
    }
    arguments.update(overrides)
    return bidfile.seal_bid(paths, dst, **arguments)


def file_key_of(blob: bytes) -> bytes:
    return envelope.unwrap_bidder(envelope.parse_header(blob), BIDDER.encryption.private_bytes_raw())


def open_blob(blob: bytes, out_dir: Path) -> bidfile.OpenedBid:
    return bidfile.open_bid(io.BytesIO(blob), file_key_of(blob), out_dir)


def manifest_of(files: list[tuple[str, bytes]], **overrides: Any) -> Manifest:
    entries = tuple(FileEntry(name, len(data), hashlib.sha256(data).hexdigest()) for name, data in files)
    fields: dict[str, Any] = {
        "tender": TENDER,
        "lot": 1,
        "bidder": BIDDER_CODE,
        "kind": "technical",
        "declared_price_fen": None,
        "duration_days": None,
        "files": entries,
        "signing_key": SIGNING_KEY,
    }
    fields.update(overrides)
    return Manifest(**fields)


def signature_of(manifest_bytes: bytes, key: Ed25519PrivateKey = SIGNING) -> bytes:
    return base64.b64encode(key.sign(bidfile.signed_bytes(manifest_bytes))) + b"\n"


Member = tuple[str, bytes] | tarfile.TarInfo


def tar_of(members: Sequence[Member], *, end: bool = True) -> bytes:
    """A pax tar stream of the given members, written by the standard library (without its end marker
    when `end` is False)."""
    buffer = io.BytesIO()
    archive = tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT)
    for member in members:
        if isinstance(member, tarfile.TarInfo):
            archive.addfile(member)
        else:
            name, data = member
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    if end:
        archive.close()
    return buffer.getvalue()


def good_members(files: list[tuple[str, bytes]]) -> list[Member]:
    manifest_bytes = manifest_of(files).to_bytes()
    return [
        *[(f"files/{name}", data) for name, data in files],
        ("manifest.json", manifest_bytes),
        ("manifest.sig", signature_of(manifest_bytes)),
    ]


def envelope_of(plaintext: bytes) -> bytes:
    out = io.BytesIO()
    envelope.seal(
        io.BytesIO(plaintext),
        out,
        bidder=agekeys.x25519_public_raw(BIDDER),
        custodians=CUSTODIAN_KEYS,
        threshold=2,
        context=TENDER,
    )
    return out.getvalue()


def open_error(plaintext: bytes, out_dir: Path) -> EnvelopeError:
    with pytest.raises(EnvelopeError) as caught:
        open_blob(envelope_of(plaintext), out_dir)
    return caught.value


# --- sealing and opening ------------------------------------------------------------------------------


def test_seal_then_open_gives_the_files_and_the_signed_manifest(tmp_path: Path) -> None:
    files = [("投标函.pdf", b"%PDF-1.7 bid letter"), ("报价表.xlsx", b"price" * 50_000), ("empty.txt", b"")]
    dst = io.BytesIO()
    sealed = seal_files(write_files(tmp_path / "in", files), dst)
    blob = dst.getvalue()
    assert sealed.info.sha256 == hashlib.sha256(blob).hexdigest()
    assert sealed.manifest == manifest_of(
        files, kind="commercial", declared_price_fen=12_345_600, duration_days=180
    )

    opened = open_blob(blob, tmp_path / "out")
    assert opened.manifest == sealed.manifest
    assert [(f.name, f.path.read_bytes()) for f in opened.files] == files
    assert [(f.name, f.size, f.sha256) for f in opened.files] == [
        (e.name, e.size, e.sha256) for e in sealed.manifest.files
    ]
    assert opened.header == envelope.parse_header(blob)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(name for name, _ in files)


def test_large_and_small_files_hash_right_across_batches(tmp_path: Path) -> None:
    # Pieces of 256 KiB and more are hashed on a helper thread while the batch is encrypted, and the
    # batch buffers are refilled many times over: a hash racing a refill would show here.
    sizes = [21 * 1024 * 1024 + 3, 1, 300 * 1024, 0, 2 * 1024 * 1024, 17]
    rng = random.Random(5)
    files = [(f"part-{i}.bin", rng.randbytes(size)) for i, size in enumerate(sizes)]
    dst = io.BytesIO()
    sealed = seal_files(write_files(tmp_path / "in", files), dst)
    assert [(e.size, e.sha256) for e in sealed.manifest.files] == [
        (len(data), hashlib.sha256(data).hexdigest()) for _, data in files
    ]
    opened = open_blob(dst.getvalue(), tmp_path / "out")
    assert [f.sha256 for f in opened.files] == [e.sha256 for e in sealed.manifest.files]


safe_names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="/\\."),
    min_size=1,
    max_size=40,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.lists(
        st.tuples(safe_names, st.binary(max_size=3000) | st.integers(0, 200_000).map(bytes)),
        min_size=1,
        max_size=5,
        unique_by=lambda f: f[0],
    )
)
def test_any_list_of_files_round_trips(
    tmp_path_factory: pytest.TempPathFactory, files: list[tuple[str, bytes]]
) -> None:
    root = tmp_path_factory.mktemp("bid")
    dst = io.BytesIO()
    sealed = seal_files(write_files(root / "in", files), dst, kind="technical", declared_price_fen=None)
    opened = open_blob(dst.getvalue(), root / "out")
    assert [(f.name, f.path.read_bytes()) for f in opened.files] == files
    assert opened.manifest == sealed.manifest


def test_unhashed_seal_of_large_files_opens_from_disk(tmp_path: Path) -> None:
    # big enough to be read through several mmap windows and many batches, sealing and opening
    size = envelope.MAP_WINDOW + 3 * envelope.CHUNK_SIZE + 123
    files = [
        ("大文件.bin", random.Random(1).randbytes(size)),
        ("small.txt", b"small"),
        ("b.bin", bytes(envelope.MAP_MIN)),
    ]
    sealed_path = tmp_path / "bid.age"
    with sealed_path.open("wb") as dst:
        sealed = bidfile.seal_bid(
            write_files(tmp_path / "in", files),
            dst,
            tender=TENDER,
            lot=1,
            bidder=BIDDER_CODE,
            kind="technical",
            declared_price_fen=None,
            duration_days=None,
            signing=SIGNING,
            bidder_public=agekeys.x25519_public_raw(BIDDER),
            custodians=CUSTODIAN_KEYS,
            threshold=2,
            hash_output=False,
        )
    assert sealed.info.sha256 is None
    assert sealed.info.size == sealed_path.stat().st_size
    assert sealed.manifest == manifest_of(files)
    blob = sealed_path.read_bytes()
    with sealed_path.open("rb") as src:
        opened = bidfile.open_bid(src, file_key_of(blob), tmp_path / "out")
    assert [(f.name, f.path.read_bytes()) for f in opened.files] == files
    assert opened.manifest == sealed.manifest


def test_an_opening_that_fails_late_removes_large_files_too(tmp_path: Path) -> None:
    files = [("a.bin", bytes(3 * envelope.BATCH_CHUNKS * envelope.CHUNK_SIZE + 1))]
    members = good_members(files)
    members[-1] = ("manifest.sig", signature_of(b"another manifest"))
    error = open_error(tar_of(members), tmp_path / "out")
    assert error.code == "bid.signature"
    assert list((tmp_path / "out").iterdir()) == []


def test_plaintext_is_a_tar_stream_that_tarfile_reads(tmp_path: Path) -> None:
    files = [("技术标.docx", b"technical"), ("b.bin", bytes(range(256)) * 300)]
    dst = io.BytesIO()
    sealed = seal_files(write_files(tmp_path, files), dst)
    src = io.BytesIO(dst.getvalue())
    header = envelope.read_header(src)
    reader = envelope.PlaintextReader(src, header, file_key_of(dst.getvalue()))
    with tarfile.open(fileobj=reader, mode="r|") as archive:
        members = {}
        for info in archive:
            assert info.isfile()
            extracted = archive.extractfile(info)
            assert extracted is not None
            members[info.name] = extracted.read()
    assert list(members) == ["files/技术标.docx", "files/b.bin", "manifest.json", "manifest.sig"]
    assert members["files/b.bin"] == files[1][1]
    assert members["manifest.json"] == sealed.manifest.to_bytes()
    signature = base64.b64decode(members["manifest.sig"])
    SIGNING.public_key().verify(signature, b"ggzy-manifest-v1\x00" + members["manifest.json"])


def test_manifest_json_is_canonical(tmp_path: Path) -> None:
    manifest = manifest_of([("a.pdf", b"x")])
    document = json.loads(manifest.to_bytes())
    assert (
        manifest.to_bytes()
        == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert list(document) == sorted(document)


def test_seal_refuses_two_files_with_one_name(tmp_path: Path) -> None:
    first = write_files(tmp_path / "a", [("x.pdf", b"1")])
    second = write_files(tmp_path / "b", [("x.pdf", b"2")])
    with pytest.raises(EnvelopeError, match="two files have the same name") as caught:
        seal_files(first + second, io.BytesIO())
    assert caught.value.code == "bid.manifest"


def test_seal_refuses_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(ValueError, match="is not a regular file"):
        seal_files([tmp_path / "dir"], io.BytesIO())


def test_seal_refuses_a_file_whose_size_changes_while_read() -> None:
    # /proc files claim size 0 and then have content: like a file growing during sealing
    with pytest.raises(EnvelopeError, match="status grew while it was being sealed") as caught:
        seal_files([Path("/proc/self/status")], io.BytesIO())
    assert caught.value.code == "bid.file_changed"


def test_seal_refuses_bad_fields_before_reading(tmp_path: Path) -> None:
    paths = write_files(tmp_path, [("a.pdf", b"x")])
    with pytest.raises(EnvelopeError, match="a commercial envelope must declare its price"):
        seal_files(paths, io.BytesIO(), declared_price_fen=None)
    with pytest.raises(EnvelopeError, match="must not declare a price"):
        seal_files(paths, io.BytesIO(), kind="technical")
    with pytest.raises(EnvelopeError, match="tender must be a tender code"):
        seal_files(paths, io.BytesIO(), tender="GGZY 1")


# --- opening: what is refused -------------------------------------------------------------------------


FILES = [("投标文件.pdf", b"%PDF bid"), ("附件.zip", b"PK zip")]


def test_a_standard_tar_with_the_right_members_opens(tmp_path: Path) -> None:
    opened = open_blob(envelope_of(tar_of(good_members(FILES))), tmp_path)
    assert [f.name for f in opened.files] == [name for name, _ in FILES]


def test_wrong_file_key_is_a_mac_error_and_writes_nothing(tmp_path: Path) -> None:
    blob = envelope_of(tar_of(good_members(FILES)))
    with pytest.raises(EnvelopeError) as caught:
        bidfile.open_bid(io.BytesIO(blob), bytes(16), tmp_path / "out")
    assert caught.value.code == "header.mac"
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_truncated_envelope_removes_the_files_written(tmp_path: Path) -> None:
    big = [("big.bin", bytes(3 * 1024 * 1024)), ("second.bin", b"2")]
    blob = envelope_of(tar_of(good_members(big)))
    cut = blob[: envelope.parse_header(blob).size + 16 + 40 * envelope.ENCRYPTED_CHUNK_SIZE]
    (tmp_path / "kept.txt").write_text("already here")
    with pytest.raises(EnvelopeError) as caught:
        bidfile.open_bid(io.BytesIO(cut), file_key_of(blob), tmp_path)
    assert caught.value.code == "payload.truncated"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.txt"]


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "附件.zip").write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        open_blob(envelope_of(tar_of(good_members(FILES))), tmp_path)
    assert (tmp_path / "附件.zip").read_bytes() == b"mine"
    assert [p.name for p in tmp_path.iterdir()] == ["附件.zip"]


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def directory(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([link("files/passwd", "/etc/passwd"), *good_members(FILES)], "is a symbolic link"),
        ([link("files/x", "files/y", tarfile.LNKTYPE), *good_members(FILES)], "is a hard link"),
        ([directory("files"), *good_members(FILES)], "is a directory"),
        ([("evil.sh", b"rm -rf"), *good_members(FILES)], "'evil.sh'.*is not a bid file"),
        ([("files/../../etc/cron", b"x"), *good_members(FILES)], "contains a path separator"),
        ([("files/..", b"x"), *good_members(FILES)], "contains '..'"),
        ([("files/sub/dir.pdf", b"x"), *good_members(FILES)], "contains a path separator"),
        ([("files/a\x01b", b"x"), *good_members(FILES)], "control character U\\+0001"),
        ([("/files/abs", b"x"), *good_members(FILES)], "is not a bid file"),
        ([*good_members(FILES), ("files/late.pdf", b"x")], "follows manifest.sig"),
        ([*good_members(FILES)[:-1], ("files/late.pdf", b"x")], "manifest.sig must follow manifest.json"),
        (good_members(FILES)[:-1], "without manifest.json and manifest.sig"),
        ([("files/a.pdf", b"1"), ("files/a.pdf", b"2"), *good_members(FILES)[2:]], "'a.pdf' appears twice"),
    ],
)
def test_unexpected_members_are_refused(tmp_path: Path, members: list[Member], message: str) -> None:
    blob = envelope_of(tar_of(members))
    with pytest.raises(EnvelopeError, match=message) as caught:
        open_blob(blob, tmp_path)
    assert caught.value.code == "bid.member"
    assert list(tmp_path.iterdir()) == []


def corrupt(data: bytes, position: int, value: bytes) -> bytes:
    return data[:position] + value + data[position + len(value) :]


def test_bad_tar_structures_are_refused(tmp_path: Path) -> None:
    tar = tar_of(good_members(FILES))
    cases: dict[str, bytes] = {
        "bad header": corrupt(tar, 148, b"9999999\x00"),  # checksum field of the first header
        "not ustar": corrupt(tar, 257, b"ustar  \x00"),  # GNU magic
        "truncated": tar[:2048],
        "non-zero padding": corrupt(tar, 512 + 1024 + 10, b"\x01"),  # after the pax path of member 1
        "garbage after the end": tar + b"\x01" + bytes(511),
        "one zero block": tar_of(good_members(FILES), end=False) + bytes(512) + b"x" * 512,
    }
    for label, plaintext in cases.items():
        error = open_error(plaintext, tmp_path / label)
        assert error.code == "bid.tar", (label, error)
        assert not list((tmp_path / label).iterdir()), label


def test_unsupported_pax_keys_are_refused(tmp_path: Path) -> None:
    info = tarfile.TarInfo("files/a.pdf")
    info.size = 1
    info.pax_headers = {"GNU.sparse.map": "0,1"}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(info, io.BytesIO(b"x"))
    error = open_error(buffer.getvalue(), tmp_path)
    assert (error.code, "unsupported pax key 'GNU.sparse.map'" in error.message) == ("bid.tar", True)


def test_a_pax_linkpath_is_a_link(tmp_path: Path) -> None:
    info = link("files/a", "目标")  # a non-ASCII target puts linkpath in the pax header
    error = open_error(tar_of([info, *good_members(FILES)]), tmp_path)
    assert error.code == "bid.member"


def test_manifest_that_is_not_json_is_refused(tmp_path: Path) -> None:
    members = [
        *good_members(FILES)[:2],
        ("manifest.json", b"{not json"),
        ("manifest.sig", signature_of(b"{")),
    ]
    error = open_error(tar_of(members), tmp_path)
    assert error.code == "bid.manifest"
    assert not list(tmp_path.iterdir())


def test_signature_by_another_key_is_refused(tmp_path: Path) -> None:
    manifest_bytes = manifest_of(FILES).to_bytes()
    members = [*good_members(FILES)[:2], ("manifest.json", manifest_bytes)]
    members.append(("manifest.sig", signature_of(manifest_bytes, Ed25519PrivateKey.generate())))
    error = open_error(tar_of(members), tmp_path)
    assert error.code == "bid.signature"
    assert "does not verify" in error.message


@pytest.mark.parametrize("signature", [b"", b"AAAA\n", b"!" * 89, base64.b64encode(bytes(64))])
def test_malformed_signatures_are_refused(tmp_path: Path, signature: bytes) -> None:
    manifest_bytes = manifest_of(FILES).to_bytes()
    members = [*good_members(FILES)[:2], ("manifest.json", manifest_bytes), ("manifest.sig", signature)]
    assert open_error(tar_of(members), tmp_path).code == "bid.signature"


@pytest.mark.parametrize(
    ("listed", "message"),
    [
        ([("投标文件.pdf", b"%PDF bid")], "the manifest lists"),
        ([("投标文件.pdf", b"%PDF bid"), ("附件.zip", b"PK zip!")], "附件.zip: the manifest says 7 bytes"),
        ([("投标文件.pdf", b"%PDF bid"), ("附件.zip", b"PK zap")], "附件.zip: SHA-256 differs"),
        ([("附件.zip", b"PK zip"), ("投标文件.pdf", b"%PDF bid")], "the manifest lists"),
    ],
)
def test_files_must_match_the_signed_manifest(
    tmp_path: Path, listed: list[tuple[str, bytes]], message: str
) -> None:
    manifest_bytes = manifest_of(listed).to_bytes()
    members = [
        *[(f"files/{name}", data) for name, data in FILES],
        ("manifest.json", manifest_bytes),
        ("manifest.sig", signature_of(manifest_bytes)),
    ]
    error = open_error(tar_of(members), tmp_path)
    assert error.code == "bid.file_mismatch"
    assert message in error.message
    assert not list(tmp_path.iterdir())


# --- the manifest, strictly ---------------------------------------------------------------------------


def manifest_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(manifest_of(FILES).to_bytes())
    document.update(changes)
    return document


def canonical(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def manifest_error(data: bytes) -> str:
    with pytest.raises(EnvelopeError) as caught:
        Manifest.from_bytes(data)
    assert caught.value.code == "bid.manifest"
    return caught.value.message


def test_manifest_round_trips() -> None:
    manifest = manifest_of(FILES, kind="commercial", declared_price_fen=0, duration_days=30)
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"extra": 1}, "unknown field\\(s\\): extra"),
        ({"version": 2}, "version 2 is not supported"),
        ({"version": True}, "version True is not supported"),
        ({"lot": 0}, "lot must be a lot number"),
        ({"lot": True}, "lot must be a lot number"),
        ({"lot": "1"}, "lot must be a lot number"),
        ({"tender": ""}, "tender must be a tender code"),
        ({"tender": "有中文"}, "tender must be a tender code"),
        ({"bidder": ""}, "bidder must be"),
        ({"bidder": "a\nb"}, "bidder must be"),
        ({"kind": "price"}, "kind 'price' is not one of"),
        ({"kind": "commercial"}, "must declare its price"),
        ({"declared_price_fen": 100}, "a technical envelope must not declare a price"),
        ({"kind": "commercial", "declared_price_fen": -1}, "non-negative integer"),
        ({"duration_days": -5}, "duration_days must be a positive integer"),
        ({"duration_days": "90"}, "duration_days must be a positive integer"),
        ({"files": []}, "at least one file"),
        ({"files": {}}, "files must be a list"),
        ({"signing_key": "AAAA"}, "signing_key must be the base64"),
        ({"files": [{"name": "a", "size": 1}]}, "files\\[0\\] lacks field\\(s\\): sha256"),
        ({"files": [{"name": "a", "size": -1, "sha256": "0" * 64}]}, "size must be a non-negative integer"),
        ({"files": [{"name": "a", "size": 1, "sha256": "A" * 64}]}, "sha256 must be 64 lower-case hex"),
        ({"files": [{"name": "a/b", "size": 1, "sha256": "0" * 64}]}, "contains a path separator"),
        ({"files": [{"name": "a\\b", "size": 1, "sha256": "0" * 64}]}, "contains a path separator"),
        ({"files": [{"name": "..", "size": 1, "sha256": "0" * 64}]}, "contains '..'"),
        ({"files": [{"name": "a\x00", "size": 1, "sha256": "0" * 64}]}, "control character U\\+0000"),
        ({"files": [{"name": "x" * 201, "size": 1, "sha256": "0" * 64}]}, "longer than 200"),
        ({"files": [{"name": "", "size": 1, "sha256": "0" * 64}]}, "is empty"),
        ({"files": [{"name": "a", "size": 1, "sha256": "0" * 64}] * 2}, "two files have the same name"),
    ],
)
def test_manifest_fields_are_checked(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(EnvelopeError, match=message) as caught:
        Manifest.from_bytes(canonical(manifest_document(**changes)))
    assert caught.value.code == "bid.manifest"


def test_manifest_missing_field_is_refused() -> None:
    document = manifest_document()
    del document["duration_days"]
    assert "lacks field(s): duration_days" in manifest_error(canonical(document))


def test_manifest_floats_duplicates_and_spellings_are_refused() -> None:
    good = manifest_of(FILES).to_bytes()
    assert "not JSON" in manifest_error(good.replace(b'"lot":1', b'"lot":1.0'))
    assert "not JSON" in manifest_error(good.replace(b'"lot":1', b'"lot":NaN'))
    assert "not JSON" in manifest_error(good.replace(b'"lot":1', b'"lot":1,"lot":2'))
    assert "not in canonical form" in manifest_error(good.replace(b'"lot":1', b'"lot": 1'))
    assert "not in canonical form" in manifest_error(json.dumps(json.loads(good), sort_keys=True).encode())
    assert "not JSON" in manifest_error(b"\xff\xfe")
    assert "must be an object" in manifest_error(b"[]")
    assert "larger than" in manifest_error(b" " * (bidfile.MAX_MANIFEST + 1))


def test_name_problem_accepts_ordinary_names() -> None:
    for name in ("投标文件（正本）.pdf", "a b.docx", "README", "x.tar.gz", "-dash"):
        assert bidfile.name_problem(name) is None


# --- context ------------------------------------------------------------------------------------------


def check(manifest: Manifest, **changes: Any) -> Callable[[], None]:
    arguments: dict[str, Any] = {
        "tender": TENDER,
        "lot": 1,
        "bidder": BIDDER_CODE,
        "signing_keys": {SIGNING_KEY},
    }
    arguments.update(changes)
    return lambda: bidfile.check_context(manifest, **arguments)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"tender": OTHER_TENDER}, "context.tender"),
        ({"lot": 2}, "context.lot"),
        ({"bidder": "91320100MA1XYZ0002"}, "context.bidder"),
        ({"signing_keys": {base64.b64encode(bytes(32)).decode()}}, "context.signing_key"),
        ({"signing_keys": set()}, "context.signing_key"),
    ],
)
def test_context_mismatches_void_the_bid(changes: dict[str, Any], code: str) -> None:
    manifest = manifest_of(FILES)
    check(manifest)()
    with pytest.raises(EnvelopeError) as caught:
        check(manifest, **changes)()
    assert caught.value.code == code


def test_an_envelope_moved_to_another_tender_is_caught_twice(tmp_path: Path) -> None:
    dst = io.BytesIO()
    seal_files(write_files(tmp_path / "in", FILES), dst, kind="technical", declared_price_fen=None)
    blob = dst.getvalue()
    header = envelope.parse_header(blob)
    # At submission: the custodian stanzas are bound to the tender it was sealed for.
    with pytest.raises(EnvelopeError) as caught:
        envelope.check_roster(header, custodians=CUSTODIAN_KEYS, threshold=2, context=OTHER_TENDER)
    assert caught.value.code == "roster.share_context"
    # At opening: the signed manifest names the original tender.
    opened = open_blob(blob, tmp_path / "out")
    with pytest.raises(EnvelopeError) as caught:
        check(opened.manifest, tender=OTHER_TENDER)()
    assert caught.value.code == "context.tender"


def test_replace_keeps_validation() -> None:
    manifest = manifest_of(FILES)
    with pytest.raises(EnvelopeError):
        dataclasses.replace(manifest, lot=-1)
