"""Tests for trading.commitments: a price commitment opens for exactly the triple it was made of (E-01)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from trading.commitments import opens, price_commitment

NONCE = "0123456789abcdef0123456789abcdef"
prices = st.integers(min_value=0, max_value=10**15)
durations = st.integers(min_value=0, max_value=36_500)
nonces = st.text(alphabet="0123456789abcdef", min_size=32, max_size=128)


def test_the_commitment_is_the_documented_sha256() -> None:
    expected = hashlib.sha256(f"ggzy-price-v1:4780000000:365:{NONCE}".encode()).hexdigest()
    assert price_commitment(4_780_000_000, 365, NONCE) == expected


def test_it_opens_for_the_exact_triple_only() -> None:
    c = price_commitment(4_780_000_000, 365, NONCE)
    assert opens(c, 4_780_000_000, 365, NONCE)
    assert not opens(c, 4_780_000_001, 365, NONCE)
    assert not opens(c, 4_780_000_000, 366, NONCE)
    assert not opens(c, 4_780_000_000, 365, NONCE[:-1] + "0")


def test_the_separator_keeps_price_and_duration_apart() -> None:
    # "1:23" and "12:3" must not collide.
    assert price_commitment(1, 23, NONCE) != price_commitment(12, 3, NONCE)


@pytest.mark.parametrize(
    "nonce",
    ["", "0" * 31, "0" * 129, NONCE.upper(), "g" * 32, NONCE + "\n"],
)
def test_a_malformed_nonce_is_refused_and_never_opens(nonce: str) -> None:
    with pytest.raises(ValueError, match="nonce must be"):
        price_commitment(1, 1, nonce)
    assert not opens(price_commitment(1, 1, NONCE), 1, 1, nonce)


def test_negative_figures_are_refused_and_never_open() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        price_commitment(-1, 1, NONCE)
    assert not opens(price_commitment(1, 1, NONCE), -1, 1, NONCE)


def test_an_uppercase_commitment_does_not_open() -> None:
    c = price_commitment(1, 1, NONCE)
    assert not opens(c.upper(), 1, 1, NONCE)


@given(prices, durations, nonces)
def test_a_commitment_opens_with_what_it_was_made_of(price: int, duration: int, nonce: str) -> None:
    assert opens(price_commitment(price, duration, nonce), price, duration, nonce)


@given(prices, durations, nonces, prices, durations, nonces)
def test_a_commitment_opens_with_nothing_else(
    price: int, duration: int, nonce: str, other_price: int, other_duration: int, other_nonce: str
) -> None:
    assume((price, duration, nonce) != (other_price, other_duration, other_nonce))
    assert not opens(price_commitment(price, duration, nonce), other_price, other_duration, other_nonce)


@given(prices, durations, nonces, st.sampled_from(["price", "duration", "nonce"]), st.integers(1, 10**6))
def test_changing_any_one_part_closes_the_commitment(
    price: int, duration: int, nonce: str, part: str, delta: int
) -> None:
    c = price_commitment(price, duration, nonce)
    if part == "price":
        assert not opens(c, price + delta, duration, nonce)
    elif part == "duration":
        assert not opens(c, price, duration + delta, nonce)
    else:
        flipped = "1" if nonce[-1] == "0" else "0"
        assert not opens(c, price, duration, nonce[:-1] + flipped)
