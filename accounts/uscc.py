"""The unified social credit code (统一社会信用代码, GB 32100-2015) that identifies every organisation.

Layout of the 18 characters (positions 1-based, as the standard counts them):

- 1: registration authority (登记管理部门码), e.g. 1 机构编制, 5 民政, 9 市场监管 (工商), Y 其他;
- 2: organisation category (机构类别码) within that authority, e.g. 91 = enterprise;
- 3–8: administrative division code (登记管理机关行政区划码), six digits (GB/T 2260);
- 9–17: organisation code (主体标识码, GB 11714), whose own check character is not enforced here;
- 18: check character (校验码) over the first 17.

Every character comes from the 31-character alphabet 0-9 plus A–Y without I, O, Z, S and V. Only the
alphabet is checked for positions 1–2: the authority and category lists have grown since 2015, and a
stale list here would lock real organisations out. Pure logic: no I/O.
"""

from __future__ import annotations

import unicodedata
from typing import Final

ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
LENGTH: Final = 18

_VALUE: Final = {char: value for value, char in enumerate(ALPHABET)}
_MODULUS: Final = len(ALPHABET)  # 31
# Weight of position i (0-based) is 3**i mod 31:
# 1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28.
_WEIGHTS: Final = tuple(pow(3, i, _MODULUS) for i in range(LENGTH - 1))
_DIVISION: Final = slice(2, 8)


class InvalidUSCC(ValueError):
    """A malformed unified social credit code; `position` is the 1-based character at fault, if any."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


def _normalise(code: str) -> str:
    # NFKC folds full-width input (９１１１…, common from Chinese input methods) to ASCII.
    return unicodedata.normalize("NFKC", code).strip().upper()


def _check_alphabet(code: str) -> None:
    for index, char in enumerate(code):
        if char not in _VALUE:
            raise InvalidUSCC(
                f"invalid character {char!r} at position {index + 1}: only 0-9 and A-Y without I, O, S, V, Z",
                position=index + 1,
            )


def _check_first17(first17: str) -> None:
    if len(first17) != LENGTH - 1:
        expected = LENGTH - 1
        raise InvalidUSCC(
            f"wrong length: expected {expected} characters before the check, got {len(first17)}"
        )
    _check_alphabet(first17)


def _check_division(code: str) -> None:
    division = code[_DIVISION]
    for index, char in enumerate(division, start=_DIVISION.start + 1):
        if not ("0" <= char <= "9"):
            raise InvalidUSCC(
                f"division code not digits: positions 3-8 are {division!r}, character {char!r} "
                f"at position {index} is not a digit",
                position=index,
            )


def _check_value(first17: str) -> str:
    total = sum(_VALUE[char] * weight for char, weight in zip(first17, _WEIGHTS, strict=True))
    return ALPHABET[(_MODULUS - total % _MODULUS) % _MODULUS]


def check_character(first17: str) -> str:
    """Return the check character (校验码) for the first 17 characters of a code (GB 32100-2015, 4.3).

    Value = 31 − (Σ value × 3^i mod 31) mod 31, with 31 written as 0. The input is normalised like
    `validate_uscc` does; raises InvalidUSCC for a wrong length or a character outside the alphabet.
    """
    first17 = _normalise(first17)
    _check_first17(first17)
    return _check_value(first17)


def make_uscc(first17: str) -> str:
    """Return the full 18-character code: the normalised first 17 plus their check character.

    Meant for test and demo data. The first 17 must already be well formed (alphabet, six-digit division
    code), so the result always passes `validate_uscc`.
    """
    first17 = _normalise(first17)
    _check_first17(first17)
    _check_division(first17)
    return first17 + _check_value(first17)


def validate_uscc(code: str) -> str:
    """Return `code` normalised (NFKC, stripped, upper-case) if it is a valid unified social credit code.

    Raises InvalidUSCC saying why: wrong length, an invalid character at position N, a division code
    (positions 3–8) that is not six digits, or a wrong check character (with the one expected).
    """
    normalised = _normalise(code)
    if len(normalised) != LENGTH:
        raise InvalidUSCC(f"wrong length: expected {LENGTH} characters, got {len(normalised)}")
    _check_alphabet(normalised)
    _check_division(normalised)
    expected = _check_value(normalised[: LENGTH - 1])
    if normalised[-1] != expected:
        raise InvalidUSCC(
            f"wrong check character: expected {expected!r} at position {LENGTH}, got {normalised[-1]!r}",
            position=LENGTH,
        )
    return normalised


def is_valid_uscc(code: str) -> bool:
    """Whether `code` is a valid unified social credit code (see `validate_uscc`)."""
    try:
        validate_uscc(code)
    except InvalidUSCC:
        return False
    return True
