"""Shamir secret sharing over GF(2^8), byte by byte: the custodians' shares of a bid envelope's file key.

Each byte of the secret is the constant term of its own random polynomial of degree t-1 over GF(2^8) with
the AES reduction polynomial x^8 + x^4 + x^3 + x + 1 (0x11b). Share x holds every polynomial evaluated at
x, so any t shares recover the secret by Lagrange interpolation at 0, and any t-1 shares are consistent
with every possible secret (each byte of the missing share maps one to one onto the secret byte).

Shares carry no integrity protection of their own: a wrong share silently yields a wrong secret. The
envelope checks the combined file key against the header MAC (`envelope.combine_shares`).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

MAX_SHARES = 255  # x runs over the non-zero field elements; x = 0 would be the secret itself
MIN_THRESHOLD = 2


def _tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Exponent and logarithm tables for generator 3, which generates the multiplicative group mod 0x11b."""
    exp = [0] * 510
    log = [0] * 256
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        # value * 3 = value * 2 xor value; multiplying by 2 reduces by 0x11b on overflow
        doubled = value << 1
        if doubled & 0x100:
            doubled ^= 0x11B
        value = doubled ^ value
    # a second copy spares a modulo in mul and div
    for power in range(255, 510):
        exp[power] = exp[power - 255]
    return tuple(exp), tuple(log)


_EXP, _LOG = _tables()


def gf_mul(a: int, b: int) -> int:
    """Multiply two elements of GF(2^8) (mod 0x11b)."""
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def gf_div(a: int, b: int) -> int:
    """Divide a by a non-zero b in GF(2^8) (mod 0x11b)."""
    if b == 0:
        raise ZeroDivisionError("division by zero in GF(2^8)")
    if a == 0:
        return 0
    return _EXP[_LOG[a] + 255 - _LOG[b]]


@dataclass(frozen=True)
class Share:
    """One custodian's share: the x coordinate (1..255) and the polynomials' values there, one per byte."""

    x: int
    value: bytes


def split(secret: bytes, n: int, t: int) -> list[Share]:
    """Split `secret` into `n` shares (x = 1..n) of which any `t` recover it; 2 <= t <= n <= 255."""
    if not MIN_THRESHOLD <= t <= n <= MAX_SHARES:
        raise ValueError(f"need {MIN_THRESHOLD} <= t <= n <= {MAX_SHARES}, got t={t}, n={n}")
    if not secret:
        raise ValueError("the secret is empty")
    # coefficients[k][i] is the coefficient of x^(k+1) in the polynomial of byte i
    coefficients = [secrets.token_bytes(len(secret)) for _ in range(t - 1)]
    shares = []
    for x in range(1, n + 1):
        value = bytearray(len(secret))
        for i, constant in enumerate(secret):
            # Horner's rule from the highest coefficient down to the constant term
            acc = 0
            for k in range(t - 2, -1, -1):
                acc = gf_mul(acc, x) ^ coefficients[k][i]
            value[i] = gf_mul(acc, x) ^ constant
        shares.append(Share(x, bytes(value)))
    return shares


def combine(shares: Sequence[Share]) -> bytes:
    """Recover the secret from shares by Lagrange interpolation at 0.

    Every share given is used, so pass at least the threshold; with fewer the result is some other value,
    which only an outside check (a MAC) can tell. Raises ValueError for no shares, an x outside 1..255,
    a duplicate x, or values of different lengths.
    """
    if not shares:
        raise ValueError("no shares to combine")
    length = len(shares[0].value)
    seen: set[int] = set()
    for share in shares:
        if not 1 <= share.x <= MAX_SHARES:
            raise ValueError(f"share x={share.x} is outside 1..{MAX_SHARES}")
        if share.x in seen:
            raise ValueError(f"two shares have x={share.x}")
        if len(share.value) != length:
            raise ValueError(
                f"share x={share.x} has {len(share.value)} bytes, share x={shares[0].x} has {length}"
            )
        seen.add(share.x)
    if length == 0:
        raise ValueError("the shares are empty")
    secret = bytearray(length)
    for share in shares:
        # basis polynomial of this share evaluated at 0: prod x_j / (x_j - x_i), and minus is xor here
        basis = 1
        for other in shares:
            if other.x != share.x:
                basis = gf_mul(basis, gf_div(other.x, other.x ^ share.x))
        for i, byte in enumerate(share.value):
            secret[i] ^= gf_mul(basis, byte)
    return bytes(secret)
