"""The age v1 envelope: round trips, strict header parsing, every failure code, the custodian roster."""

from __future__ import annotations

import hashlib
import io
import mmap
import pathlib
import pickle
import random
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidding import agekeys, envelope, shamir
from bidding.envelope import CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, EnvelopeError, Stanza

TENDER = "GGZY-320100-2026-W000001"
OTHER_TENDER = "GGZY-320100-2026-W000002"
BATCH = envelope.BATCH_CHUNKS * CHUNK_SIZE
MIB = 1024 * 1024


@dataclass(frozen=True)
class Party:
    keys: agekeys.KeyPair

    @property
    def public(self) -> bytes:
        return agekeys.x25519_public_raw(self.keys)

    @property
    def private(self) -> bytes:
        return self.keys.encryption.private_bytes_raw()


BIDDER = Party(agekeys.generate(signing=True))
CUSTODIANS = tuple(Party(agekeys.generate(signing=False)) for _ in range(3))
STRANGER = Party(agekeys.generate(signing=False))


@dataclass(frozen=True)
class Sealed:
    blob: bytes
    file_key: bytes
    info: envelope.SealInfo

    @property
    def header(self) -> envelope.Header:
        return envelope.parse_header(self.blob)

    @property
    def payload(self) -> bytes:
        return self.blob[self.header.size :]


def seal(
    data: bytes, *, custodians: tuple[Party, ...] = CUSTODIANS, threshold: int = 2, context: str = TENDER
) -> Sealed:
    out = io.BytesIO()
    file_key = envelope.generate_file_key()
    info = envelope.seal(
        io.BytesIO(data),
        out,
        bidder=BIDDER.public,
        custodians=[c.public for c in custodians],
        threshold=threshold,
        context=context,
        file_key=file_key,
    )
    return Sealed(out.getvalue(), file_key, info)


def open_as_bidder(blob: bytes) -> bytes:
    header = envelope.parse_header(blob)
    file_key = envelope.unwrap_bidder(header, BIDDER.private)
    out = io.BytesIO()
    envelope.decrypt(io.BytesIO(blob), out, file_key)
    return out.getvalue()


def with_stanzas(sealed: Sealed, stanzas: list[Stanza] | tuple[Stanza, ...]) -> envelope.Header:
    """A header re-made with other stanzas and a valid MAC under the same file key."""
    return envelope.parse_header(envelope.encode_header(stanzas, sealed.file_key))


def check_roster(header: envelope.Header, *, n: int = 3, threshold: int = 2, context: str = TENDER) -> None:
    envelope.check_roster(
        header, custodians=[c.public for c in CUSTODIANS[:n]], threshold=threshold, context=context
    )


def data_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def code_of(call: object) -> str:
    assert callable(call)
    with pytest.raises(EnvelopeError) as caught:
        call()
    return caught.value.code


# --- round trips --------------------------------------------------------------------------------------


SIZES = [
    0,
    1,
    CHUNK_SIZE - 1,
    CHUNK_SIZE,
    CHUNK_SIZE + 1,
    3 * CHUNK_SIZE,
    BATCH - 1,
    BATCH,
    BATCH + 1,
    BATCH + CHUNK_SIZE,
    BATCH + CHUNK_SIZE + 1,
    2 * BATCH + 7,
]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(size: int) -> None:
    data = data_of(size, size)
    sealed = seal(data)
    assert open_as_bidder(sealed.blob) == data
    assert sealed.info.size == len(sealed.blob)
    assert sealed.info.header_size == sealed.header.size
    assert sealed.info.sha256 == hashlib.sha256(sealed.blob).hexdigest()


def test_unhashed_seal_gives_no_sha256_and_the_same_decryptable_envelope() -> None:
    data = data_of(2 * BATCH + 7, 3)
    file_key = envelope.generate_file_key()

    def seal_with(hash_output: bool) -> tuple[envelope.SealInfo, bytes]:
        out = io.BytesIO()
        info = envelope.seal(
            io.BytesIO(data),
            out,
            bidder=BIDDER.public,
            custodians=[c.public for c in CUSTODIANS],
            threshold=2,
            context=TENDER,
            file_key=file_key,
            hash_output=hash_output,
        )
        return info, out.getvalue()

    hashed_info, hashed = seal_with(True)
    info, unhashed = seal_with(False)
    assert info.sha256 is None
    assert hashed_info.sha256 == hashlib.sha256(hashed).hexdigest()
    # the same format and sizes (only the random nonce and ephemeral keys differ), and it opens the same
    assert info.size == hashed_info.size == len(unhashed)
    assert info.header_size == hashed_info.header_size == envelope.parse_header(unhashed).size
    assert open_as_bidder(unhashed) == open_as_bidder(hashed) == data
    plain = io.BytesIO()
    stanzas = [envelope.x25519_stanza(file_key, BIDDER.public)]
    assert envelope.encrypt(io.BytesIO(data), plain, stanzas, file_key, hash_output=False).sha256 is None
    assert open_as_bidder(plain.getvalue()) == data


@pytest.mark.parametrize("size", [envelope.MAP_MIN, envelope.MAP_WINDOW + CHUNK_SIZE + 5])
def test_files_on_disk_are_sealed_and_opened_through_mmap_windows(tmp_path: pathlib.Path, size: int) -> None:
    data = data_of(size, size)
    source = tmp_path / "plain.bin"
    source.write_bytes(data)
    file_key = envelope.generate_file_key()
    sealed = tmp_path / "sealed.age"
    with source.open("rb") as src, sealed.open("wb") as dst:
        assert envelope.mapped(src) is not None
        info = envelope.encrypt(src, dst, [envelope.x25519_stanza(file_key, BIDDER.public)], file_key)
        assert src.tell() == size  # left where reading stopped
    assert info.sha256 == hashlib.sha256(sealed.read_bytes()).hexdigest()
    out = io.BytesIO()
    with sealed.open("rb") as src:
        assert envelope.decrypt(src, out, file_key) == size
    assert out.getvalue() == data


def test_a_mapped_reader_stops_at_a_file_that_shrank(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "shrinking.bin"
    path.write_bytes(bytes(3 * envelope.MAP_WINDOW))
    buffer = memoryview(bytearray(MIB))
    with path.open("r+b") as handle:
        reader = envelope.MappedReader(handle.fileno(), 0, 3 * envelope.MAP_WINDOW)
        assert reader.readinto(buffer) == MIB
        handle.truncate(MIB + 10)  # inside the mapped window: never touched, no SIGBUS
        assert reader.readinto(buffer) == 10
        assert reader.readinto(buffer) == 0
        reader.close()


def test_a_mapped_reader_falls_back_to_plain_reads_where_mmap_fails(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = data_of(envelope.MAP_WINDOW + 5)
    path = tmp_path / "plain.bin"
    path.write_bytes(data)

    def no_mmap(*args: object, **kwargs: object) -> None:
        raise OSError(19, "No such device")  # what mmap says on a file system that cannot map

    monkeypatch.setattr(mmap, "mmap", no_mmap)
    out = bytearray(len(data) + 10)
    with path.open("rb") as handle:
        reader = envelope.MappedReader(handle.fileno(), 0)
        assert envelope._fill(reader, memoryview(out), 0) == len(data)
        reader.close()
    assert bytes(out[: len(data)]) == data


def test_mapped_is_only_for_regular_files_of_some_size(tmp_path: pathlib.Path) -> None:
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 10)
    with small.open("rb") as src:
        assert envelope.mapped(src) is None
    assert envelope.mapped(io.BytesIO(bytes(envelope.MAP_MIN))) is None


@pytest.mark.parametrize(
    ("size", "chunks"),
    [(0, 1), (1, 1), (CHUNK_SIZE, 1), (CHUNK_SIZE + 1, 2), (3 * CHUNK_SIZE, 3), (BATCH, 32)],
)
def test_payload_has_age_chunking(size: int, chunks: int) -> None:
    # A full last chunk is the final one: no empty chunk follows data.
    sealed = seal(data_of(size))
    assert len(sealed.payload) == envelope.NONCE_SIZE + size + chunks * envelope.TAG_SIZE


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(min_value=0, max_value=5 * CHUNK_SIZE), seed=st.integers(min_value=0, max_value=2**32)
)
def test_round_trip_of_random_sizes(size: int, seed: int) -> None:
    data = data_of(size, seed)
    sealed = seal(data)
    assert open_as_bidder(sealed.blob) == data


class Trickle:
    """A source that hands out at most a few bytes per call, like a slow pipe."""

    def __init__(self, data: bytes, seed: int) -> None:
        self._data = memoryview(data)
        self._random = random.Random(seed)

    def readinto(self, buffer: memoryview) -> int:
        n = min(len(buffer), len(self._data), self._random.randint(1, 70_000))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def test_short_reads_from_the_source_are_fine() -> None:
    data = data_of(3 * CHUNK_SIZE + 5)
    out = io.BytesIO()
    file_key = envelope.generate_file_key()
    envelope.encrypt(Trickle(data, 1), out, [envelope.x25519_stanza(file_key, BIDDER.public)], file_key)
    assert open_as_bidder(out.getvalue()) == data


def test_iter_plaintext_and_reader_give_the_plaintext() -> None:
    data = data_of(BATCH + 3 * CHUNK_SIZE + 11)
    sealed = seal(data)
    src = io.BytesIO(sealed.blob)
    header = envelope.read_header(src)
    assert src.tell() == header.size
    assert b"".join(bytes(v) for v in envelope.iter_plaintext(src, header, sealed.file_key)) == data
    src.seek(header.size)
    reader = envelope.PlaintextReader(src, header, sealed.file_key)
    parts = []
    while piece := reader.read(100_000):
        parts.append(piece)
    assert b"".join(parts) == data


class Pipe(io.RawIOBase):
    """A non-seekable stream, like a socket or a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        return self._data.readinto(buffer)


def test_read_header_on_a_non_seekable_stream_stops_at_the_payload() -> None:
    data = data_of(1000)
    sealed = seal(data)
    stream = Pipe(sealed.blob)
    header = envelope.read_header(stream)
    assert header == sealed.header
    assert list(envelope.iter_plaintext(stream, header, sealed.file_key)) == [memoryview(data)]


class Zeros:
    """A large plaintext that takes no memory."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readinto(self, buffer: memoryview) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


class Discard(io.RawIOBase):
    """A destination that keeps nothing."""

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        return len(memoryview(data))  # type: ignore[arg-type]


def peak_memory(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_encryption_uses_constant_memory() -> None:
    # a fixed set of batch buffers (about 20 MiB), whatever the size
    peak = peak_memory(
        lambda: envelope.encrypt_payload(Zeros(256 * MIB), Discard(), envelope.generate_file_key())
    )
    assert peak < 32 * MIB


def test_decryption_uses_constant_memory() -> None:
    file_key = envelope.generate_file_key()
    sealed = io.BytesIO()
    envelope.encrypt(Zeros(64 * MIB), sealed, [envelope.x25519_stanza(file_key, BIDDER.public)], file_key)
    sealed.seek(0)
    assert peak_memory(lambda: envelope.decrypt(sealed, Discard(), file_key)) < 32 * MIB


def test_a_failing_destination_stops_sealing_with_its_error() -> None:
    class Full(io.RawIOBase):
        written = 0

        def writable(self) -> bool:
            return True

        def write(self, data: object) -> int:
            self.written += len(memoryview(data))  # type: ignore[arg-type]
            if self.written > 3 * BATCH:
                raise OSError(28, "No space left on device")
            return len(memoryview(data))  # type: ignore[arg-type]

    with pytest.raises(OSError, match="No space left"):
        envelope.encrypt_payload(io.BytesIO(bytes(10 * BATCH)), Full(), envelope.generate_file_key())


def test_plain_age_file_with_several_recipients() -> None:
    file_key = envelope.generate_file_key()
    stanzas = [
        envelope.x25519_stanza(file_key, STRANGER.public),
        envelope.x25519_stanza(file_key, BIDDER.public),
    ]
    out = io.BytesIO()
    envelope.encrypt(io.BytesIO(b"plain age"), out, stanzas, file_key)
    assert open_as_bidder(out.getvalue()) == b"plain age"


def test_encrypt_payload_writes_only_the_payload() -> None:
    out = io.BytesIO()
    written = envelope.encrypt_payload(io.BytesIO(b"x" * 10), out, envelope.generate_file_key())
    assert written == len(out.getvalue()) == envelope.NONCE_SIZE + 10 + envelope.TAG_SIZE


# --- header format ------------------------------------------------------------------------------------


def test_header_layout_follows_the_spec() -> None:
    sealed = seal(b"x")
    text = sealed.blob[: sealed.header.size].decode("ascii")
    lines = text.split("\n")
    assert lines[0] == "age-encryption.org/v1"
    assert lines[1].startswith("-> X25519 ")
    assert [line.split(" ")[2:6] for line in lines if line.startswith("-> ggzy-share")] == [
        [TENDER, "1", "2", envelope.share_tag(CUSTODIANS[0].public)],
        [TENDER, "2", "2", envelope.share_tag(CUSTODIANS[1].public)],
        [TENDER, "3", "2", envelope.share_tag(CUSTODIANS[2].public)],
    ]
    assert lines[-2].startswith("--- ") and len(lines[-2]) == 47
    assert sealed.header.mac_input == text[: text.rindex("---") + 3].encode()


@pytest.mark.parametrize("body_size", [0, 1, 47, 48, 49, 96, 200])
def test_stanza_bodies_wrap_at_64_columns(body_size: int) -> None:
    file_key = envelope.generate_file_key()
    stanza = Stanza("example.com/test", ("a", "b"), bytes(range(body_size % 256)) * (body_size // 256 + 1))
    stanza = replace(stanza, body=stanza.body[:body_size])
    encoded = envelope.encode_header([stanza], file_key)
    header = envelope.parse_header(encoded)
    assert header.stanzas == (stanza,)
    body_lines = encoded.split(b"\n")[2:-2]
    assert all(len(line) == 64 for line in body_lines[:-1]) and len(body_lines[-1]) < 64
    envelope.verify_file_key(header, file_key)


def valid_header() -> bytes:
    sealed = seal(b"x")
    return sealed.blob[: sealed.header.size]


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        (b"", "header.intro", "not an age file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "header.intro", "not an age file"),
        (b"age-encryption.org/v2\n", "header.intro", "unsupported age version"),
        (b"-----BEGIN AGE ENCRYPTED FILE-----\n", "header.intro", "ASCII-armored"),
        (b"age-encryption.org/v1\n", "header.truncated", "before its MAC line"),
        (b"age-encryption.org/v1\n-> X25519 AAAA\n", "header.truncated", "line 3"),
        (b"age-encryption.org/v1\n--- " + b"A" * 43 + b"\n", "header.stanza", "no recipient stanza"),
        (b"age-encryption.org/v1\n->  X25519\n\n", "header.stanza", "line 2: stanza arguments"),
        (b"age-encryption.org/v1\n-> X25519 a\xffb\n\n", "header.stanza", "line 2: stanza arguments"),
        (b"age-encryption.org/v1\n-> \n\n", "header.stanza", "line 2"),
        (b"age-encryption.org/v1\n-> x\n" + b"A" * 65 + b"\n", "header.stanza", "line 3: a stanza body line"),
        (
            b"age-encryption.org/v1\n-> x\n" + b"A" * 64 + b"\n--- " + b"A" * 43 + b"\n",
            "header.stanza",
            "no final body line",
        ),
        (b"age-encryption.org/v1\n-> x\nAA*A\n", "header.stanza", "line 3"),
        (b"age-encryption.org/v1\n-> x\nAA==\n", "header.base64", "without '=' padding"),
        (b"age-encryption.org/v1\n-> x\nAB\n", "header.base64", "non-canonical"),
        (b"age-encryption.org/v1\n-> x\nA\n", "header.base64", "not unpadded base64"),
        (b"age-encryption.org/v1\n-> x\n\nhello\n", "header.stanza", "line 4: expected a recipient stanza"),
        (b"age-encryption.org/v1\n-> x\n\n--- AAAA\n", "header.mac_line", "line 4: the MAC line"),
        (b"age-encryption.org/v1\n-> x\n\n---" + b"A" * 44 + b"\n", "header.mac_line", "line 4"),
        (b"age-encryption.org/v1\n-> x\n\n--- " + b"A" * 42 + b"B\n", "header.base64", "non-canonical"),
        (b"age-encryption.org/v1\r\n-> x\n\n", "header.intro", "CRLF"),
        (b"age-encryption.org/v1\n-> x\r\n\n", "header.stanza", "line 2"),
    ],
)
def test_malformed_headers_are_refused_precisely(text: bytes, code: str, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message) as caught:
        envelope.parse_header(text)
    assert caught.value.code == code


def test_header_larger_than_the_cap_is_refused() -> None:
    body = b"A" * 64 + b"\n"
    text = b"age-encryption.org/v1\n-> x\n" + body * (envelope.MAX_HEADER // len(body) + 1) + b"\n"
    with pytest.raises(EnvelopeError) as caught:
        envelope.parse_header(text)
    assert caught.value.code == "header.too_large"
    with pytest.raises(EnvelopeError) as caught:
        envelope.read_header(io.BytesIO(text))
    assert caught.value.code == "header.too_large"


def test_one_endless_line_is_too_large_not_read_forever() -> None:
    text = b"age-encryption.org/v1\n-> " + b"x" * (2 * envelope.MAX_HEADER)
    assert code_of(lambda: envelope.read_header(io.BytesIO(text))) == "header.too_large"


def test_parse_header_ignores_what_follows_the_header() -> None:
    sealed = seal(b"payload")
    assert envelope.parse_header(sealed.blob[: sealed.header.size]) == sealed.header


# --- keys ---------------------------------------------------------------------------------------------


def test_wrong_identity_does_not_unwrap() -> None:
    sealed = seal(b"x")
    with pytest.raises(EnvelopeError, match="none of the 1 X25519 stanza") as caught:
        envelope.unwrap_bidder(sealed.header, STRANGER.private)
    assert caught.value.code == "key.unwrap"


def test_wrong_file_key_fails_the_mac() -> None:
    sealed = seal(b"x")
    assert code_of(lambda: envelope.verify_file_key(sealed.header, bytes(16))) == "header.mac"
    assert code_of(lambda: envelope.verify_file_key(sealed.header, bytes(15))) == "header.mac"
    assert code_of(lambda: envelope.decrypt(io.BytesIO(sealed.blob), io.BytesIO(), bytes(16))) == "header.mac"


def test_malformed_x25519_stanza_is_refused() -> None:
    sealed = seal(b"x")
    bad = Stanza("X25519", ("AAAA", "extra"), sealed.header.stanzas[0].body)
    header = with_stanzas(sealed, [bad])
    with pytest.raises(EnvelopeError, match="X25519 stanza #1 has 3 arguments") as caught:
        envelope.unwrap_bidder(header, BIDDER.private)
    assert caught.value.code == "header.stanza"


def test_stripping_a_stanza_fails_the_mac() -> None:
    sealed = seal(b"secret bid")
    header = sealed.header
    stripped = envelope.encode_header(header.stanzas[:2], bytes(16))
    # keep the original MAC: the attacker does not know the file key
    forged = stripped[: stripped.rindex(b"--- ")] + sealed.blob[sealed.blob.rindex(b"--- ", 0, header.size) :]
    with pytest.raises(EnvelopeError, match="header MAC does not match") as caught:
        open_as_bidder(forged)
    assert caught.value.code == "header.mac"


def test_envelope_error_survives_a_process_boundary() -> None:
    error = EnvelopeError("payload.chunk", "chunk 3 failed")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert (copy.code, copy.message, str(copy)) == (
        "payload.chunk",
        "chunk 3 failed",
        "chunk 3 failed [payload.chunk]",
    )


# --- tampering with the payload -----------------------------------------------------------------------


SMALL = data_of(2 * CHUNK_SIZE + 100, 7)
SMALL_SEALED = seal(SMALL)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(min_value=0, max_value=len(SMALL_SEALED.blob) - 1), bit=st.integers(0, 7))
def test_any_flipped_bit_is_caught(position: int, bit: int) -> None:
    blob = bytearray(SMALL_SEALED.blob)
    blob[position] ^= 1 << bit
    with pytest.raises(EnvelopeError) as caught:
        open_as_bidder(bytes(blob))
    header_size = SMALL_SEALED.header.size
    if position < header_size:
        assert caught.value.code.startswith(("header.", "key."))
    else:
        chunk = max(0, position - header_size - envelope.NONCE_SIZE) // ENCRYPTED_CHUNK_SIZE
        assert caught.value.code == "payload.chunk"
        assert f"chunk {chunk} failed authentication" in caught.value.message


def test_flipped_mac_is_a_mac_error() -> None:
    blob = bytearray(SMALL_SEALED.blob)
    position = SMALL_SEALED.header.size - 10  # inside the MAC, clear of its last (partial) character
    blob[position] = ord("A") if blob[position] != ord("A") else ord("B")
    assert code_of(lambda: open_as_bidder(bytes(blob))) == "header.mac"


def test_truncation_at_a_chunk_boundary() -> None:
    cut = SMALL_SEALED.header.size + envelope.NONCE_SIZE + ENCRYPTED_CHUNK_SIZE
    with pytest.raises(
        EnvelopeError, match="chunk 0 is not marked final: the payload is truncated"
    ) as caught:
        open_as_bidder(SMALL_SEALED.blob[:cut])
    assert caught.value.code == "payload.truncated"


def test_truncation_inside_a_chunk() -> None:
    cut = SMALL_SEALED.header.size + envelope.NONCE_SIZE + ENCRYPTED_CHUNK_SIZE + 500
    with pytest.raises(EnvelopeError, match="chunk 1 failed authentication") as caught:
        open_as_bidder(SMALL_SEALED.blob[:cut])
    assert caught.value.code == "payload.chunk"


def test_truncation_inside_a_tag() -> None:
    cut = SMALL_SEALED.header.size + envelope.NONCE_SIZE + 2 * ENCRYPTED_CHUNK_SIZE + 5
    with pytest.raises(EnvelopeError, match="chunk 2 is 5 bytes, cut inside its tag") as caught:
        open_as_bidder(SMALL_SEALED.blob[:cut])
    assert caught.value.code == "payload.truncated"


def test_truncation_to_the_header_or_nonce() -> None:
    size = SMALL_SEALED.header.size
    assert code_of(lambda: open_as_bidder(SMALL_SEALED.blob[:size])) == "payload.nonce"
    assert code_of(lambda: open_as_bidder(SMALL_SEALED.blob[: size + 9])) == "payload.nonce"
    with pytest.raises(EnvelopeError, match="nonce but no chunk") as caught:
        open_as_bidder(SMALL_SEALED.blob[: size + envelope.NONCE_SIZE])
    assert caught.value.code == "payload.truncated"


def test_truncation_of_a_multi_batch_payload() -> None:
    sealed = seal(data_of(2 * BATCH))
    cut = sealed.header.size + envelope.NONCE_SIZE + 40 * ENCRYPTED_CHUNK_SIZE
    with pytest.raises(EnvelopeError, match="chunk 39 is not marked final") as caught:
        open_as_bidder(sealed.blob[:cut])
    assert caught.value.code == "payload.truncated"


@pytest.mark.parametrize("size", [CHUNK_SIZE, 3 * CHUNK_SIZE, BATCH])
def test_trailing_data_after_a_full_final_chunk(size: int) -> None:
    sealed = seal(data_of(size))
    final = size // CHUNK_SIZE - 1
    with pytest.raises(
        EnvelopeError, match=f"chunk {final} is the final chunk but data follows it"
    ) as caught:
        open_as_bidder(sealed.blob + b"extra")
    assert caught.value.code == "payload.trailing"


def test_trailing_data_after_a_short_final_chunk() -> None:
    # The final chunk's end is unknowable then: it fails authentication, and the message says why it may.
    with pytest.raises(EnvelopeError, match="has data appended") as caught:
        open_as_bidder(SMALL_SEALED.blob + b"extra")
    assert caught.value.code == "payload.chunk"


def test_a_repeated_final_chunk_is_trailing_data() -> None:
    sealed = seal(data_of(2 * CHUNK_SIZE))
    last = sealed.blob[-ENCRYPTED_CHUNK_SIZE:]
    assert code_of(lambda: open_as_bidder(sealed.blob + last)) == "payload.trailing"


def test_swapped_chunks_are_caught_at_the_first() -> None:
    sealed = seal(data_of(3 * CHUNK_SIZE + 1))
    start = sealed.header.size + envelope.NONCE_SIZE
    chunks = [
        sealed.blob[start + i * ENCRYPTED_CHUNK_SIZE : start + (i + 1) * ENCRYPTED_CHUNK_SIZE]
        for i in range(4)
    ]
    swapped = sealed.blob[:start] + chunks[1] + chunks[0] + chunks[2] + chunks[3]
    with pytest.raises(
        EnvelopeError, match="chunk 0 failed authentication: it was altered, reordered"
    ) as caught:
        open_as_bidder(swapped)
    assert caught.value.code == "payload.chunk"


def test_an_empty_final_chunk_after_data_is_refused() -> None:
    # Craft it by hand: a full non-final chunk, then an empty final one (a non-canonical age file).
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    file_key = envelope.generate_file_key()
    nonce = bytes(16)
    aead = ChaCha20Poly1305(envelope._hkdf(file_key, nonce, b"payload"))
    payload = nonce + aead.encrypt(bytes(11) + b"\x00", bytes(CHUNK_SIZE), None)
    payload += aead.encrypt((1).to_bytes(11, "big") + b"\x01", b"", None)
    blob = envelope.encode_header([envelope.x25519_stanza(file_key, BIDDER.public)], file_key) + payload
    with pytest.raises(EnvelopeError, match="final chunk 1 is empty") as caught:
        open_as_bidder(blob)
    assert caught.value.code == "payload.empty_chunk"


def test_plaintext_reader_raises_at_the_truncation() -> None:
    cut = SMALL_SEALED.header.size + envelope.NONCE_SIZE + ENCRYPTED_CHUNK_SIZE
    src = io.BytesIO(SMALL_SEALED.blob[:cut])
    header = envelope.read_header(src)
    reader = envelope.PlaintextReader(src, header, SMALL_SEALED.file_key)
    assert code_of(lambda: reader.read()) == "payload.truncated"


# --- the custodian roster -----------------------------------------------------------------------------


def roster_sealed() -> Sealed:
    return seal(b"bid")


ROSTER = roster_sealed()


def stanzas_of(type_: str) -> list[Stanza]:
    return [s for s in ROSTER.header.stanzas if s.type == type_]


def test_a_sealed_envelope_passes_its_roster_check() -> None:
    check_roster(ROSTER.header)


def test_roster_refuses_foreign_stanza_types() -> None:
    header = with_stanzas(ROSTER, [*ROSTER.header.stanzas, Stanza("scrypt", ("c2FsdA", "18"), bytes(32))])
    with pytest.raises(EnvelopeError, match="unexpected stanza type\\(s\\): scrypt") as caught:
        check_roster(header)
    assert caught.value.code == "roster.stanza_unexpected"


@pytest.mark.parametrize("count", [0, 2])
def test_roster_needs_exactly_one_bidder_stanza(count: int) -> None:
    bidder = [envelope.x25519_stanza(ROSTER.file_key, BIDDER.public) for _ in range(count)]
    header = with_stanzas(ROSTER, [*bidder, *stanzas_of("ggzy-share")])
    with pytest.raises(EnvelopeError, match=f"the header has {count} X25519 stanzas") as caught:
        check_roster(header)
    assert caught.value.code == "roster.bidder_stanza"


def test_roster_refuses_a_missing_share() -> None:
    header = with_stanzas(ROSTER, [*stanzas_of("X25519"), *stanzas_of("ggzy-share")[:2]])
    with pytest.raises(EnvelopeError, match=r"custodian #3 .* has no ggzy-share stanza with x=3") as caught:
        check_roster(header)
    assert caught.value.code == "roster.share_missing"


def test_roster_refuses_shares_in_the_wrong_order() -> None:
    shares = stanzas_of("ggzy-share")
    header = with_stanzas(ROSTER, [*stanzas_of("X25519"), shares[1], shares[0], shares[2]])
    check_roster(header)  # order of stanzas does not matter, x and tag do
    moved = replace(shares[0], args=(TENDER, "2", *shares[0].args[2:]))
    header = with_stanzas(ROSTER, [*stanzas_of("X25519"), moved, shares[1], shares[2]])
    assert code_of(lambda: check_roster(header)) == "roster.share_missing"


def test_roster_refuses_an_extra_share() -> None:
    with pytest.raises(EnvelopeError, match="for no custodian of the roster: x=3") as caught:
        check_roster(ROSTER.header, n=2)
    assert caught.value.code == "roster.share_unexpected"


def test_roster_refuses_another_threshold() -> None:
    with pytest.raises(EnvelopeError, match="has t=2, the tender needs t=3") as caught:
        check_roster(ROSTER.header, threshold=3)
    assert caught.value.code == "roster.share_threshold"


def test_roster_refuses_another_context() -> None:
    with pytest.raises(EnvelopeError, match=f"is for '{TENDER}', not '{OTHER_TENDER}'") as caught:
        check_roster(ROSTER.header, context=OTHER_TENDER)
    assert caught.value.code == "roster.share_context"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((TENDER, "1", "2", "AAAAAA"), "has 5 arguments, expected 6"),
        ((TENDER, "01", "2", "AAAAAA", "A" * 43), "without leading zeros"),
        ((TENDER, "1", "1", "AAAAAA", "A" * 43), "out of range"),
        ((TENDER, "256", "2", "AAAAAA", "A" * 43), "out of range"),
        ((TENDER, "1", "2", "AAAA", "A" * 43), "the tag must encode 4 bytes"),
        ((TENDER, "1", "2", "AAAAAA", "A" * 42), "not unpadded base64|wrong ephemeral"),
    ],
)
def test_roster_refuses_malformed_share_stanzas(args: tuple[str, ...], message: str) -> None:
    bad = Stanza("ggzy-share", args, bytes(32))
    header = with_stanzas(ROSTER, [*stanzas_of("X25519"), bad])
    with pytest.raises(EnvelopeError, match=message) as caught:
        check_roster(header)
    assert caught.value.code in ("header.stanza", "header.base64")


# --- custodian shares ---------------------------------------------------------------------------------


def custodian_shares(sealed: Sealed, context: str = TENDER) -> list[shamir.Share]:
    return [envelope.unwrap_shares(sealed.header, c.private, context)[0] for c in CUSTODIANS]


def test_each_custodian_unwraps_their_own_share() -> None:
    shares = custodian_shares(ROSTER)
    assert [s.x for s in shares] == [1, 2, 3]
    assert all(len(s.value) == envelope.FILE_KEY_SIZE for s in shares)


@pytest.mark.parametrize("indexes", [(0, 1), (0, 2), (1, 2), (0, 1, 2)])
def test_t_of_n_shares_recover_the_file_key(indexes: tuple[int, ...]) -> None:
    shares = custodian_shares(ROSTER)
    assert envelope.combine_shares(ROSTER.header, [shares[i] for i in indexes]) == ROSTER.file_key


def test_recovered_file_key_decrypts() -> None:
    data = data_of(CHUNK_SIZE + 3)
    sealed = seal(data, threshold=3)
    file_key = envelope.combine_shares(sealed.header, custodian_shares(sealed))
    out = io.BytesIO()
    envelope.decrypt(io.BytesIO(sealed.blob), out, file_key)
    assert out.getvalue() == data


def test_too_few_shares_are_insufficient() -> None:
    shares = custodian_shares(ROSTER)
    with pytest.raises(EnvelopeError, match="1 distinct share\\(s\\) given, this envelope needs 2") as caught:
        envelope.combine_shares(ROSTER.header, [shares[0], shares[0]])
    assert caught.value.code == "shares.insufficient"


def test_a_corrupted_share_is_invalid() -> None:
    shares = custodian_shares(ROSTER)
    bad = shamir.Share(shares[1].x, bytes(b ^ 1 for b in shares[1].value))
    with pytest.raises(EnvelopeError, match="do not combine to this envelope's file key") as caught:
        envelope.combine_shares(ROSTER.header, [shares[0], bad])
    assert caught.value.code == "shares.invalid"


def test_one_corrupted_share_among_enough_good_ones_is_outvoted() -> None:
    shares = custodian_shares(ROSTER)
    bad = shamir.Share(shares[1].x, bytes(16))
    assert envelope.combine_shares(ROSTER.header, [shares[0], bad, shares[2]]) == ROSTER.file_key


def test_shares_of_another_envelope_are_invalid() -> None:
    other = custodian_shares(roster_sealed())
    assert code_of(lambda: envelope.combine_shares(ROSTER.header, other)) == "shares.invalid"


def test_conflicting_shares_for_one_x_are_invalid() -> None:
    shares = custodian_shares(ROSTER)
    conflicting = shamir.Share(1, bytes(16))
    assert code_of(lambda: envelope.combine_shares(ROSTER.header, [*shares, conflicting])) == "shares.invalid"


def test_a_stranger_has_no_share() -> None:
    with pytest.raises(
        EnvelopeError, match="no ggzy-share stanza is addressed to this custodian key"
    ) as caught:
        envelope.unwrap_shares(ROSTER.header, STRANGER.private, TENDER)
    assert caught.value.code == "key.unwrap"


def test_the_bidder_key_does_not_open_a_share() -> None:
    assert code_of(lambda: envelope.unwrap_shares(ROSTER.header, BIDDER.private, TENDER)) == "key.unwrap"


def test_unwrapping_for_another_tender_is_refused() -> None:
    with pytest.raises(EnvelopeError) as caught:
        envelope.unwrap_shares(ROSTER.header, CUSTODIANS[0].private, OTHER_TENDER)
    assert caught.value.code == "roster.share_context"


def test_a_share_stanza_moved_to_another_tender_does_not_unwrap() -> None:
    # Copy a stanza into an envelope of another tender, rewriting its context argument to fit there.
    other = seal(b"other bid", context=OTHER_TENDER)
    stolen = stanzas_of("ggzy-share")[0]
    moved = replace(stolen, args=(OTHER_TENDER, *stolen.args[1:]))
    header = with_stanzas(other, [*[s for s in other.header.stanzas if s.args[1:2] != ("1",)], moved])
    # the header looks right, so the roster check passes: only the key derivation tells
    envelope.check_roster(
        header, custodians=[c.public for c in CUSTODIANS], threshold=2, context=OTHER_TENDER
    )
    with pytest.raises(EnvelopeError, match="do not open with this key") as caught:
        envelope.unwrap_shares(header, CUSTODIANS[0].private, OTHER_TENDER)
    assert caught.value.code == "key.unwrap"


def test_roster_arguments_are_validated_when_sealing() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        seal(b"x", custodians=(CUSTODIANS[0], CUSTODIANS[0]))
    with pytest.raises(ValueError, match="need 2 <= t <= n"):
        seal(b"x", threshold=1)
    with pytest.raises(ValueError, match="printable ASCII"):
        seal(b"x", context="GGZY 1")


def test_seal_refuses_a_low_order_recipient() -> None:
    with pytest.raises(ValueError, match="low-order"):
        envelope.seal(
            io.BytesIO(b"x"),
            io.BytesIO(),
            bidder=bytes(32),
            custodians=[c.public for c in CUSTODIANS],
            threshold=2,
            context=TENDER,
        )


def iter_all(sealed: Sealed) -> Iterator[memoryview]:
    src = io.BytesIO(sealed.blob)
    header = envelope.read_header(src)
    return envelope.iter_plaintext(src, header, sealed.file_key)


def test_iter_plaintext_checks_the_mac_first() -> None:
    sealed = seal(b"x")
    src = io.BytesIO(sealed.blob)
    header = envelope.read_header(src)
    assert code_of(lambda: list(envelope.iter_plaintext(src, header, bytes(16)))) == "header.mac"
    assert b"".join(iter_all(sealed)) == b"x"


# --- payload length, before any key -------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(plain=st.integers(0, 3 * CHUNK_SIZE + 5))
def test_every_sealed_payload_length_passes_and_matches_what_decryption_accepts(plain: int) -> None:
    header_size = 321
    full, rest = divmod(plain, CHUNK_SIZE)
    chunks = full + (1 if rest or plain == 0 else 0)
    size = header_size + envelope.NONCE_SIZE + plain + chunks * envelope.TAG_SIZE
    envelope.check_payload_length(size, header_size)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (0, "payload.nonce"),
        (15, "payload.nonce"),
        (16, "payload.truncated"),
        (16 + 15, "payload.truncated"),
        (16 + ENCRYPTED_CHUNK_SIZE + 1, "payload.truncated"),
        (16 + ENCRYPTED_CHUNK_SIZE + 16, "payload.empty_chunk"),
        (16 + 2 * ENCRYPTED_CHUNK_SIZE + 16, "payload.empty_chunk"),
    ],
)
def test_a_payload_length_no_stream_can_have_is_refused(payload: int, code: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        envelope.check_payload_length(1000 + payload, 1000)
    assert caught.value.code == code


def test_the_length_check_agrees_with_decryption_on_truncated_envelopes() -> None:
    sealed = seal(random.randbytes(CHUNK_SIZE + 100))
    header_size = sealed.header.size
    for cut in (header_size, header_size + 16, header_size + 16 + ENCRYPTED_CHUNK_SIZE + 7):
        with pytest.raises(EnvelopeError) as by_length:
            envelope.check_payload_length(cut, header_size)
        with pytest.raises(EnvelopeError) as by_key:
            envelope.decrypt(io.BytesIO(sealed.blob[:cut]), io.BytesIO(), sealed.file_key)
        assert by_length.value.code == by_key.value.code
    envelope.check_payload_length(len(sealed.blob), header_size)
