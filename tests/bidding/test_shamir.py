"""Shamir sharing over GF(2^8): any t shares recover, t-1 reveal nothing, bad input is refused."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bidding import shamir
from bidding.shamir import Share


@st.composite
def roster(draw: st.DrawFn, max_n: int = 12) -> tuple[int, int]:
    n = draw(st.integers(min_value=2, max_value=max_n))
    t = draw(st.integers(min_value=2, max_value=n))
    return n, t


def test_field_multiplication_matches_the_aes_example() -> None:
    # FIPS-197 section 4.2: {57} x {83} = {c1}
    assert shamir.gf_mul(0x57, 0x83) == 0xC1
    assert shamir.gf_mul(0x57, 0x13) == 0xFE


def test_every_nonzero_element_has_an_inverse() -> None:
    for a in range(1, 256):
        assert shamir.gf_mul(a, shamir.gf_div(1, a)) == 1


@given(secret=st.binary(min_size=1, max_size=40), shape=roster(), data=st.data())
def test_any_t_shares_recover_the_secret(secret: bytes, shape: tuple[int, int], data: st.DataObject) -> None:
    n, t = shape
    shares = shamir.split(secret, n, t)
    assert [s.x for s in shares] == list(range(1, n + 1))
    chosen = data.draw(st.permutations(shares)).copy()[: data.draw(st.integers(min_value=t, max_value=n))]
    assert shamir.combine(chosen) == secret


def test_all_subsets_of_a_small_roster_recover() -> None:
    secret = bytes(range(16))
    shares = shamir.split(secret, 5, 3)
    for subset in itertools.combinations(shares, 3):
        assert shamir.combine(subset) == secret


@settings(max_examples=60)
@given(
    secret=st.binary(min_size=1, max_size=1),
    shape=roster(max_n=6),
    fresh=st.integers(min_value=1, max_value=255),
)
def test_t_minus_one_shares_are_consistent_with_every_secret_byte(
    secret: bytes, shape: tuple[int, int], fresh: int
) -> None:
    n, t = shape
    known = shamir.split(secret, n, t)[: t - 1]
    if fresh in {s.x for s in known}:
        fresh = next(x for x in range(1, 256) if x not in {s.x for s in known})
    # Each value of the one missing share completes the t-1 known ones to a different secret, so all
    # 256 secrets are equally consistent with what t-1 custodians hold: they learn nothing.
    recovered = {shamir.combine([*known, Share(fresh, bytes([v]))]) for v in range(256)}
    assert recovered == {bytes([b]) for b in range(256)}


@given(secret=st.binary(min_size=1, max_size=1))
def test_one_share_of_two_is_uniform_over_the_randomness(secret: bytes) -> None:
    # With t = 2 the share at x is secret + a*x; over all 256 coefficients a it takes every value once.
    for x in (1, 2, 0x53, 255):
        values = {secret[0] ^ shamir.gf_mul(a, x) for a in range(256)}
        assert len(values) == 256


def test_fewer_than_t_shares_give_a_wrong_secret() -> None:
    secret = b"sixteen byte key"
    shares = shamir.split(secret, 5, 3)
    assert shamir.combine(shares[:2]) != secret


@pytest.mark.parametrize(("n", "t"), [(1, 1), (3, 1), (2, 3), (256, 2), (0, 0)])
def test_split_refuses_bad_shapes(n: int, t: int) -> None:
    with pytest.raises(ValueError, match="need 2 <= t <= n <= 255"):
        shamir.split(b"k", n, t)


def test_split_refuses_an_empty_secret() -> None:
    with pytest.raises(ValueError, match="empty"):
        shamir.split(b"", 3, 2)


def test_split_of_255_shares_works() -> None:
    shares = shamir.split(b"\x01\x02", 255, 2)
    assert shamir.combine([shares[0], shares[254]]) == b"\x01\x02"


def test_combine_refuses_duplicate_x() -> None:
    shares = shamir.split(b"secret", 3, 2)
    with pytest.raises(ValueError, match="two shares have x=1"):
        shamir.combine([shares[0], shares[0]])


def test_combine_refuses_x_zero() -> None:
    with pytest.raises(ValueError, match="x=0 is outside"):
        shamir.combine([Share(0, b"a"), Share(1, b"b")])


def test_combine_refuses_x_above_255() -> None:
    with pytest.raises(ValueError, match="x=256 is outside"):
        shamir.combine([Share(256, b"a"), Share(1, b"b")])


def test_combine_refuses_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="share x=2 has 2 bytes"):
        shamir.combine([Share(1, b"a"), Share(2, b"bb")])


def test_combine_refuses_no_shares() -> None:
    with pytest.raises(ValueError, match="no shares"):
        shamir.combine([])
