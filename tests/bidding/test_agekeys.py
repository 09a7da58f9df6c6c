"""age key strings and ggzy identity files, checked against the spec's vectors and rage (pyrage)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from bidding import agekeys

CREATED = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=8)))
# From c2sp.org/age: an identity of 32 bytes of 0x42 and its recipient
SPEC_IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
SPEC_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"


def test_spec_identity_decodes_to_its_bytes() -> None:
    assert agekeys.parse_identity(SPEC_IDENTITY) == b"\x42" * 32
    assert agekeys.identity_string(b"\x42" * 32) == SPEC_IDENTITY


def test_spec_recipient_is_the_public_key_of_the_spec_identity() -> None:
    kp = agekeys.KeyPair(X25519PrivateKey.from_private_bytes(b"\x42" * 32), None)
    assert agekeys.recipient(agekeys.x25519_public_raw(kp)) == SPEC_RECIPIENT
    assert agekeys.parse_recipient(SPEC_RECIPIENT) == agekeys.x25519_public_raw(kp)


def test_bip173_vector_decodes() -> None:
    assert agekeys.bech32_decode("A12UEL5L") == ("a", b"")
    assert agekeys.bech32_decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw")[0] == "abcdef"


def test_bech32m_string_is_refused() -> None:
    # BIP-350 test vector: valid bech32m, so not valid bech32
    with pytest.raises(ValueError, match="checksum"):
        agekeys.bech32_decode("a1lqfn3a")


@given(st.binary(max_size=80), st.sampled_from(["age", "age-secret-key-", "x"]))
def test_bech32_round_trips(data: bytes, hrp: str) -> None:
    assert agekeys.bech32_decode(agekeys.bech32_encode(hrp, data)) == (hrp, data)


def test_mixed_case_is_refused() -> None:
    with pytest.raises(ValueError, match="mixes upper and lower case"):
        agekeys.bech32_decode(SPEC_RECIPIENT[:10] + SPEC_RECIPIENT[10:].upper())


def test_a_typo_breaks_the_checksum() -> None:
    typo = SPEC_RECIPIENT[:-1] + ("q" if SPEC_RECIPIENT[-1] != "q" else "p")
    with pytest.raises(ValueError, match="checksum does not match"):
        agekeys.parse_recipient(typo)


def test_identity_is_not_a_recipient() -> None:
    with pytest.raises(ValueError, match="the prefix is 'age-secret-key-', expected 'age'"):
        agekeys.parse_recipient(SPEC_IDENTITY.lower())


def test_recipient_must_be_lower_case_and_identity_upper_case() -> None:
    with pytest.raises(ValueError, match="lower case"):
        agekeys.parse_recipient(SPEC_RECIPIENT.upper())
    with pytest.raises(ValueError, match="upper case"):
        agekeys.parse_identity(SPEC_IDENTITY.lower())


def test_wrong_key_length_is_refused() -> None:
    short = agekeys.bech32_encode("age", b"\x01" * 31)
    with pytest.raises(ValueError, match="the key is 31 bytes, expected 32"):
        agekeys.parse_recipient(short)
    with pytest.raises(ValueError, match="32 bytes"):
        agekeys.recipient(b"\x01" * 31)


def test_pyrage_identity_parses_and_matches_its_recipient() -> None:
    identity = pyrage.x25519.Identity.generate()
    private = agekeys.parse_identity(str(identity))
    kp = agekeys.KeyPair(X25519PrivateKey.from_private_bytes(private), None)
    assert agekeys.recipient(agekeys.x25519_public_raw(kp)) == str(identity.to_public())


def test_our_recipient_is_accepted_by_pyrage() -> None:
    kp = agekeys.generate(signing=False)
    text = agekeys.recipient(agekeys.x25519_public_raw(kp))
    assert str(pyrage.x25519.Recipient.from_str(text)) == text
    secret = agekeys.identity_string(kp.encryption.private_bytes_raw())
    assert str(pyrage.x25519.Identity.from_str(secret).to_public()) == text


def test_bidder_identity_file_round_trips() -> None:
    kp = agekeys.generate(signing=True)
    text = agekeys.identity_file_text(kp, CREATED)
    lines = text.splitlines()
    assert lines[0] == "# created: 2026-03-01T09:30:00+08:00"
    assert lines[1] == f"# public key: {agekeys.recipient(agekeys.x25519_public_raw(kp))}"
    assert lines[2].startswith("# ggzy-signing-key: ")
    assert lines[3].startswith("AGE-SECRET-KEY-1")
    parsed = agekeys.parse_identity_file(text)
    assert parsed.encryption.private_bytes_raw() == kp.encryption.private_bytes_raw()
    assert agekeys.ed25519_public_raw(parsed) == agekeys.ed25519_public_raw(kp)


def test_custodian_identity_file_has_no_signing_key() -> None:
    kp = agekeys.generate(signing=False)
    text = agekeys.identity_file_text(kp, CREATED)
    assert "ggzy-signing-key" not in text
    parsed = agekeys.parse_identity_file(text)
    assert parsed.signing is None
    with pytest.raises(ValueError, match="no signing key"):
        agekeys.ed25519_public_raw(parsed)


def test_identity_file_is_read_by_pyrage() -> None:
    kp = agekeys.generate(signing=True)
    text = agekeys.identity_file_text(kp, CREATED)
    line = next(line for line in text.splitlines() if line.startswith("AGE-SECRET-KEY-1"))
    recipient = agekeys.recipient(agekeys.x25519_public_raw(kp))
    sealed = pyrage.encrypt(b"hello", [pyrage.x25519.Recipient.from_str(recipient)])
    assert pyrage.decrypt(sealed, [pyrage.x25519.Identity.from_str(line)]) == b"hello"


def test_naive_creation_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        agekeys.identity_file_text(agekeys.generate(signing=False), datetime(2026, 1, 1))


def test_identity_file_without_a_key_is_refused() -> None:
    with pytest.raises(ValueError, match="has no AGE-SECRET-KEY-1… line"):
        agekeys.parse_identity_file("# created: 2026-01-01T00:00:00+00:00\n")


def test_identity_file_with_two_keys_is_refused() -> None:
    a = agekeys.identity_string(agekeys.generate(signing=False).encryption.private_bytes_raw())
    b = agekeys.identity_string(agekeys.generate(signing=False).encryption.private_bytes_raw())
    with pytest.raises(ValueError, match=r"2 AGE-SECRET-KEY lines \(lines 1, 3\); ggzy expects exactly one"):
        agekeys.parse_identity_file(f"{a}\n\n{b}\n")


def test_identity_file_with_a_foreign_line_is_refused() -> None:
    with pytest.raises(ValueError, match="line 2: 'AGE-PLUGIN-YUBIKEY-1…' is neither a comment"):
        agekeys.parse_identity_file("# x\nAGE-PLUGIN-YUBIKEY-1QQQQQQQQQQQQQQQQQQQQQQ\n")


def test_identity_file_with_a_bad_key_names_the_line() -> None:
    with pytest.raises(ValueError, match="line 2: not a valid age identity: Bech32 checksum"):
        agekeys.parse_identity_file("# x\n" + SPEC_IDENTITY[:-1] + "Q\n")


def test_identity_file_public_key_comment_must_match() -> None:
    kp = agekeys.generate(signing=False)
    other = agekeys.recipient(agekeys.x25519_public_raw(agekeys.generate(signing=False)))
    text = agekeys.identity_file_text(kp, CREATED).replace(
        agekeys.recipient(agekeys.x25519_public_raw(kp)), other
    )
    with pytest.raises(ValueError, match=r"line 2: the public key comment .* does not match"):
        agekeys.parse_identity_file(text)


def test_identity_file_with_a_bad_signing_key_is_refused() -> None:
    kp = agekeys.generate(signing=False)
    secret = agekeys.identity_string(kp.encryption.private_bytes_raw())
    short = base64.b64encode(b"\x01" * 31).decode()
    with pytest.raises(ValueError, match="line 1: the ggzy signing key must be the base64 of a 32-byte seed"):
        agekeys.parse_identity_file(f"# ggzy-signing-key: {short}\n{secret}\n")
    with pytest.raises(ValueError, match="line 1: the ggzy signing key is not valid base64"):
        agekeys.parse_identity_file(f"# ggzy-signing-key: !!!\n{secret}\n")


def test_identity_file_with_two_signing_keys_is_refused() -> None:
    kp = agekeys.generate(signing=True)
    text = agekeys.identity_file_text(kp, datetime.now(UTC))
    signing_line = next(line for line in text.splitlines() if line.startswith("# ggzy-signing-key"))
    with pytest.raises(ValueError, match="line 4: a second ggzy signing key"):
        agekeys.parse_identity_file(signing_line + "\n" + text)
