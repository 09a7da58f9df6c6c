"""Tests for accounts.uscc: the unified social credit code (GB 32100-2015)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.uscc import (
    ALPHABET,
    InvalidUSCC,
    check_character,
    is_valid_uscc,
    make_uscc,
    validate_uscc,
)

# Codes published in public business registrations (large enterprises and banks); each one was checked
# against this implementation when added. A random 18-character string passes with probability 1/31.
PUBLISHED = [
    "91110000100006485K",
    "91440300708461136T",
    "914403001922038216",
    "91110000802100433B",
    "91100000100003962T",
    "91330100716105852F",
    "91110108551385082Q",
]

# Computed with make_uscc for test and demo data: an enterprise (91), a social organisation (52),
# a public institution (12) and an "other" registration (Y1).
COMPUTED = {
    "91110108MA01ABCDE": "91110108MA01ABCDEN",
    "91310115MA1K3Y8Q0": "91310115MA1K3Y8Q09",
    "52440300MJL1XY2K3": "52440300MJL1XY2K33",
    "12100000400012345": "12100000400012345P",
    "Y1320500123456789": "Y1320500123456789E",
}


def test_alphabet_is_31_characters_without_i_o_s_v_z() -> None:
    assert len(ALPHABET) == 31
    assert not set("IOSVZ") & set(ALPHABET)


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_code_is_valid(code: str) -> None:
    assert validate_uscc(code) == code
    assert is_valid_uscc(code)


@pytest.mark.parametrize(("first17", "code"), COMPUTED.items())
def test_make_uscc_appends_the_check_character(first17: str, code: str) -> None:
    assert make_uscc(first17) == code
    assert check_character(first17) == code[-1]
    assert validate_uscc(code) == code


def test_check_value_31_is_written_as_zero() -> None:
    # Σ value × weight ≡ 0 (mod 31) gives 31 − 0 = 31, which the standard writes as 0.
    assert check_character("00000000000000000") == "0"
    assert validate_uscc("000000000000000000") == "000000000000000000"


def test_wrong_check_character_names_the_expected_one() -> None:
    expected = "wrong check character: expected 'K' at position 18, got 'J'"
    with pytest.raises(InvalidUSCC, match=expected) as info:
        validate_uscc("91110000100006485J")
    assert info.value.position == 18
    assert not is_valid_uscc("91110000100006485J")


def test_lower_case_and_surrounding_spaces_are_normalised() -> None:
    assert validate_uscc("  91110000802100433b\n") == "91110000802100433B"


def test_full_width_input_is_normalised() -> None:
    assert validate_uscc("９１１１００００８０２１００４３３Ｂ") == "91110000802100433B"


@pytest.mark.parametrize("letter", ["I", "O", "S", "V", "Z"])
def test_forbidden_letter_is_refused_with_its_position(letter: str) -> None:
    code = "91110000" + letter + "00006485K"
    with pytest.raises(InvalidUSCC, match=f"invalid character '{letter}' at position 9") as info:
        validate_uscc(code)
    assert info.value.position == 9


def test_forbidden_lower_case_letter_is_refused_after_upper_casing() -> None:
    with pytest.raises(InvalidUSCC, match="invalid character 'O' at position 1"):
        validate_uscc("o1110000802100433B")


def test_punctuation_is_refused_with_its_position() -> None:
    with pytest.raises(InvalidUSCC, match="invalid character '-' at position 9"):
        validate_uscc("91110000-802100433")


@pytest.mark.parametrize("code", ["", "9111000080210043", "91110000802100433", "91110000802100433BB"])
def test_wrong_length_is_refused(code: str) -> None:
    with pytest.raises(InvalidUSCC, match=f"wrong length: expected 18 characters, got {len(code)}"):
        validate_uscc(code)


def test_division_code_must_be_digits() -> None:
    with pytest.raises(
        InvalidUSCC, match=r"division code not digits: .* at position 7 is not a digit"
    ) as info:
        validate_uscc("911100A0802100433B")
    assert info.value.position == 7


def test_make_uscc_refuses_a_division_code_with_letters() -> None:
    with pytest.raises(InvalidUSCC, match="division code not digits"):
        make_uscc("91AB0000802100433")


def test_make_uscc_refuses_wrong_length() -> None:
    with pytest.raises(InvalidUSCC, match="expected 17 characters before the check, got 18"):
        make_uscc("91110000802100433B")


def test_check_character_refuses_forbidden_letter() -> None:
    with pytest.raises(InvalidUSCC, match="invalid character 'Z' at position 17"):
        check_character("9111000080210043Z")


def test_invalid_uscc_is_a_value_error() -> None:
    assert issubclass(InvalidUSCC, ValueError)


# --- properties ------------------------------------------------------------------------------------------

alphabet_chars = st.text(alphabet=ALPHABET, min_size=1, max_size=1)
first17s = st.builds(
    lambda head, division, body: head + division + body,
    st.text(alphabet=ALPHABET, min_size=2, max_size=2),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.text(alphabet=ALPHABET, min_size=9, max_size=9),
)


@given(first17=first17s)
def test_make_uscc_always_validates(first17: str) -> None:
    code = make_uscc(first17)
    assert validate_uscc(code) == code
    assert validate_uscc(code.lower()) == code


@given(first17=first17s, position=st.integers(min_value=0, max_value=17), data=st.data())
def test_changing_any_one_character_breaks_the_code(first17: str, position: int, data: st.DataObject) -> None:
    code = make_uscc(first17)
    replacement = data.draw(alphabet_chars.filter(lambda char: char != code[position]))
    changed = code[:position] + replacement + code[position + 1 :]
    assert not is_valid_uscc(changed)
