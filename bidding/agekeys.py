"""age keys: Bech32 recipients (`age1…`), identities (`AGE-SECRET-KEY-1…`) and ggzy identity files.

An age X25519 recipient is the 32-byte public key in Bech32 (BIP-173, not bech32m) with the
human-readable part "age"; the identity is the 32-byte private scalar with "age-secret-key-", written in
upper case. Bech32 is written here rather than pulled in as a dependency: it is forty lines, and age uses
it without BIP-173's 90-character limit, which general-purpose libraries enforce.

A ggzy identity file is an age identity file, so a bidder can run `age -d -i key.txt bid.age` on their
own envelope. Bidders also keep their Ed25519 signing key (the seed, in base64) in it, on a comment line
that age skips:

    # created: 2026-03-01T09:30:00+08:00
    # public key: age1…
    # ggzy-signing-key: <base64 of the 32-byte Ed25519 seed>
    AGE-SECRET-KEY-1…
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

RECIPIENT_HRP = "age"
IDENTITY_HRP = "age-secret-key-"
KEY_SIZE = 32
CREATED_PREFIX = "# created: "
PUBLIC_KEY_PREFIX = "# public key: "
SIGNING_KEY_PREFIX = "# ggzy-signing-key: "
IDENTITY_PREFIX = "AGE-SECRET-KEY-1"

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_INDEX = {c: i for i, c in enumerate(_CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_BECH32_CONST = 1  # bech32m would be 0x2BC830A3; age uses the original BIP-173 checksum


def _polymod(values: Sequence[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATOR):
            if (top >> i) & 1:
                chk ^= generator
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Sequence[int], from_bits: int, to_bits: int, *, pad: bool) -> list[int]:
    """Regroup bits; without `pad`, leftover bits must be fewer than from_bits and all zero (canonical)."""
    acc = 0
    bits = 0
    out = []
    max_value = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & max_value)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & max_value)
    elif bits >= from_bits or (acc << (to_bits - bits)) & max_value:
        raise ValueError("Bech32 data has non-zero or excess padding bits")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    """Encode bytes as lower-case Bech32 (BIP-173 checksum, no length limit) with the given HRP."""
    if not hrp or any(not 33 <= ord(c) <= 126 for c in hrp) or hrp != hrp.lower():
        raise ValueError(f"invalid Bech32 human-readable part {hrp!r}")
    words = _convert_bits(data, 8, 5, pad=True)
    polymod = _polymod([*_hrp_expand(hrp), *words, 0, 0, 0, 0, 0, 0]) ^ _BECH32_CONST
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Decode a Bech32 string (all lower or all upper case) into its lower-case HRP and bytes."""
    if text != text.lower() and text != text.upper():
        raise ValueError("Bech32 string mixes upper and lower case")
    if any(not 33 <= ord(c) <= 126 for c in text):
        raise ValueError("Bech32 string has a character outside printable ASCII")
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1 or separator + 7 > len(text):
        raise ValueError("Bech32 string has no human-readable part, separator or 6-character checksum")
    hrp = text[:separator]
    try:
        words = [_CHARSET_INDEX[c] for c in text[separator + 1 :]]
    except KeyError as exc:
        raise ValueError(f"Bech32 string has the invalid data character {exc.args[0]!r}") from None
    if _polymod([*_hrp_expand(hrp), *words]) != _BECH32_CONST:
        raise ValueError("Bech32 checksum does not match (a typo, or a bech32m string)")
    return hrp, bytes(_convert_bits(words[:-6], 5, 8, pad=False))


def _decode_key(text: str, hrp: str, what: str) -> bytes:
    try:
        found_hrp, data = bech32_decode(text)
    except ValueError as exc:
        raise ValueError(f"not a valid {what}: {exc}") from None
    if found_hrp != hrp:
        raise ValueError(f"not a valid {what}: the prefix is {found_hrp!r}, expected {hrp!r}")
    if len(data) != KEY_SIZE:
        raise ValueError(f"not a valid {what}: the key is {len(data)} bytes, expected {KEY_SIZE}")
    return data


def recipient(public: bytes) -> str:
    """The `age1…` recipient string of a raw 32-byte X25519 public key."""
    if len(public) != KEY_SIZE:
        raise ValueError(f"an X25519 public key is {KEY_SIZE} bytes, got {len(public)}")
    return bech32_encode(RECIPIENT_HRP, public)


def parse_recipient(text: str) -> bytes:
    """The raw X25519 public key of an `age1…` recipient string (lower case only, like age)."""
    if text != text.lower():
        raise ValueError("not a valid age recipient: it must be lower case")
    return _decode_key(text, RECIPIENT_HRP, "age recipient")


def identity_string(private_raw: bytes) -> str:
    """The `AGE-SECRET-KEY-1…` identity string of a raw 32-byte X25519 private key."""
    if len(private_raw) != KEY_SIZE:
        raise ValueError(f"an X25519 private key is {KEY_SIZE} bytes, got {len(private_raw)}")
    return bech32_encode(IDENTITY_HRP, private_raw).upper()


def parse_identity(text: str) -> bytes:
    """The raw X25519 private key of an `AGE-SECRET-KEY-1…` identity string (upper case, like age)."""
    if text != text.upper():
        raise ValueError("not a valid age identity: it must be upper case")
    return _decode_key(text, IDENTITY_HRP, "age identity")


@dataclass(frozen=True)
class KeyPair:
    """A party's keys: X25519 for envelopes (all parties), Ed25519 for signing manifests (bidders)."""

    encryption: X25519PrivateKey
    signing: Ed25519PrivateKey | None


def generate(*, signing: bool) -> KeyPair:
    """Fresh keys; `signing=True` for bidders, who sign their manifests, False for custodians."""
    return KeyPair(X25519PrivateKey.generate(), Ed25519PrivateKey.generate() if signing else None)


def x25519_public_raw(kp: KeyPair) -> bytes:
    """The raw 32-byte X25519 public key (what a recipient string encodes)."""
    return kp.encryption.public_key().public_bytes_raw()


def ed25519_public_raw(kp: KeyPair) -> bytes:
    """The raw 32-byte Ed25519 public key; ValueError when the key pair has no signing key."""
    if kp.signing is None:
        raise ValueError("this key pair has no signing key")
    return kp.signing.public_key().public_bytes_raw()


def identity_file_text(kp: KeyPair, created: datetime) -> str:
    """The identity file for `kp`, readable by `age -d -i FILE`; `created` must be timezone-aware."""
    if created.tzinfo is None or created.utcoffset() is None:
        raise ValueError("the creation time must be timezone-aware")
    lines = [
        f"{CREATED_PREFIX}{created.isoformat(timespec='seconds')}",
        f"{PUBLIC_KEY_PREFIX}{recipient(x25519_public_raw(kp))}",
    ]
    if kp.signing is not None:
        seed = base64.b64encode(kp.signing.private_bytes_raw()).decode("ascii")
        lines.append(f"{SIGNING_KEY_PREFIX}{seed}")
    lines.append(identity_string(kp.encryption.private_bytes_raw()))
    return "\n".join(lines) + "\n"


def _parse_signing_seed(value: str, line_number: int) -> Ed25519PrivateKey:
    try:
        seed = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError(f"line {line_number}: the ggzy signing key is not valid base64") from None
    if len(seed) != KEY_SIZE or base64.b64encode(seed).decode("ascii") != value:
        raise ValueError(f"line {line_number}: the ggzy signing key must be the base64 of a 32-byte seed")
    return Ed25519PrivateKey.from_private_bytes(seed)


def parse_identity_file(text: str) -> KeyPair:
    """Read an identity file: exactly one AGE-SECRET-KEY line, an optional ggzy signing key comment.

    Lines are split on LF as age does. Other comments and blank lines are skipped; a `# public key:`
    comment, when present, must match the secret key, so a file pasted together from two keys is caught.
    """
    identities: list[tuple[int, bytes]] = []
    signing: Ed25519PrivateKey | None = None
    public_comment: tuple[int, str] | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith(SIGNING_KEY_PREFIX):
                if signing is not None:
                    raise ValueError(f"line {number}: a second ggzy signing key; keep exactly one")
                signing = _parse_signing_seed(line[len(SIGNING_KEY_PREFIX) :], number)
            elif line.startswith(PUBLIC_KEY_PREFIX):
                public_comment = (number, line[len(PUBLIC_KEY_PREFIX) :])
            continue
        if not line.startswith(IDENTITY_PREFIX):
            shown = line if len(line) <= 20 else line[:20] + "…"
            raise ValueError(
                f"line {number}: {shown!r} is neither a comment nor an AGE-SECRET-KEY-1… identity"
            )
        try:
            identities.append((number, parse_identity(line)))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
    if not identities:
        raise ValueError("the identity file has no AGE-SECRET-KEY-1… line")
    if len(identities) > 1:
        numbers = ", ".join(str(n) for n, _ in identities)
        raise ValueError(
            f"the identity file has {len(identities)} AGE-SECRET-KEY lines (lines {numbers}); ggzy expects exactly one"
        )
    encryption = X25519PrivateKey.from_private_bytes(identities[0][1])
    if public_comment is not None:
        number, written = public_comment
        actual = recipient(encryption.public_key().public_bytes_raw())
        if written != actual:
            raise ValueError(
                f"line {number}: the public key comment {written} does not match the secret key ({actual})"
            )
    return KeyPair(encryption, signing)
