"""The password policy: what makes a password too easy to guess. Pure: no web framework, no database.

Length first. A password is the only factor a user signs in with here, and NIST SP 800-63B-4 (2025, 3.1.1.2)
asks at least 15 characters of a password used alone; so do we (the published demo password
`demo-password-1` has exactly 15). Every Unicode code point counts as one character after NFKC
normalisation, so a Chinese passphrase counts as it reads. Beyond length the policy refuses what a guesser
tries first, and nothing else (no "one digit, one capital" composition rules, which SP 800-63B-4 forbids
because they make passwords more predictable, not less):

- only whitespace;
- one of the 30,000 most common passwords (`common_passwords.txt`, shipped with the package; see its
  header for source and licence), also when a common password is only dressed up with digits or symbols
  before or after it (`Trustno1!!!!!!!`);
- one character or group of characters repeated (`passwordpassword`, `aaaaaaaaaaaaaaa`);
- a run of consecutive characters on the alphabet, the digits or a keyboard row (`1234567890123456`,
  `qwertyuiopasdfgh`), either way round;
- the user's own names: the username, the display name, the organisation's name or its credit code,
  compared without regard to case (names shorter than 3 characters are not looked for).

Each weakness is reported with a stable code and the message a client shows next to the field.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MIN_LENGTH = 15
MIN_NAME_LENGTH = 3
COMMON_FILE = Path(__file__).with_name("common_passwords.txt")

# Sequences a run is looked for in, each also read backwards. The digits wrap (…7890123…).
RUNS = (
    "012345678901234567890123456789",
    string.ascii_lowercase,
    "qwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
)
_DRESSING = string.digits + string.punctuation + " "

NAME_LABELS = {
    "username": "the username",
    "display_name": "the display name",
    "organisation_name": "the organisation name",
    "credit_code": "the credit code",
}


@dataclass(frozen=True)
class Weakness:
    """Why a password is refused: a stable `code` and the message shown next to the field."""

    code: str
    message: str


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower-cased (read once)."""
    lines = COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def normalise(password: str) -> str:
    """The password as the policy reads it: NFKC, so full-width and compatibility forms count as plain."""
    return unicodedata.normalize("NFKC", password)


def _is_common(folded: str, common: frozenset[str]) -> bool:
    """The password, or its middle once any digits, symbols or spaces before and after are taken off (in
    every way they can be: `abc123` + `45` is `abc123` dressed), is a common password."""
    size = len(folded)
    lead = size - len(folded.lstrip(_DRESSING))
    trail = size - len(folded.rstrip(_DRESSING))
    return any(
        folded[start:end] in common
        for start in range(min(lead, size) + 1)
        for end in range(max(size - trail, start), size + 1)
        if end > start
    )


def _is_repeated(folded: str) -> bool:
    size = len(folded)
    return any(
        size % unit == 0 and folded[:unit] * (size // unit) == folded for unit in range(1, size // 2 + 1)
    )


def _is_run(folded: str) -> bool:
    return any(folded in run or folded in run[::-1] for run in RUNS)


def _guessability(password: str, folded: str, common: frozenset[str]) -> Weakness | None:
    """The first of the guessable shapes the password has (one is reason enough; more would repeat it)."""
    if not password.strip():
        return Weakness("blank", "only whitespace")
    if _is_common(folded, common):
        return Weakness("common", "a commonly used password")
    if _is_repeated(folded):
        return Weakness("repeated", "one character or group of characters repeated")
    if _is_run(folded):
        return Weakness("run", "a run of consecutive characters")
    return None


def weaknesses(
    password: str, *, names: Mapping[str, str | None], common: frozenset[str] | None = None
) -> list[Weakness]:
    """Every reason to refuse `password`, in a fixed order (empty: acceptable).

    `names` maps `username`, `display_name`, `organisation_name` and `credit_code` to the user's own values
    (missing or None: not known); `common` replaces the shipped list (for tests)."""
    password = normalise(password)
    folded = password.casefold()
    found: list[Weakness] = []
    if len(password) < MIN_LENGTH:
        found.append(Weakness("length", f"shorter than {MIN_LENGTH} characters"))
    guessable = _guessability(password, folded, common if common is not None else common_passwords())
    if guessable is not None:
        found.append(guessable)
    for key, label in NAME_LABELS.items():
        name = normalise((names.get(key) or "").strip()).casefold()
        if len(name) >= MIN_NAME_LENGTH and name in folded:
            found.append(Weakness(f"contains_{key}", f"contains {label}"))
    return found
