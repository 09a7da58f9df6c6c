"""The password policy, as a pure function: each weakness with its code and message, and what passes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts import passwords
from accounts.passwords import MIN_LENGTH, weaknesses

NAMES = {"username": "hengtong", "display_name": "张伟", "organisation_name": "恒通建设", "credit_code": None}


def codes(password: str, **names: str | None) -> list[str]:
    return [w.code for w in weaknesses(password, names={**NAMES, **names})]


def test_the_shipped_list_holds_thirty_thousand_lower_case_passwords_without_its_header() -> None:
    common = passwords.common_passwords()
    assert len(common) == 30_000
    assert {"123456", "password", "trustno1", "1qaz2wsx"} <= common
    assert not any(p.startswith("#") or p != p.lower() for p in common)


@pytest.mark.parametrize(
    "password",
    [
        "demo-password-1",
        "correct horse battery staple",
        "城南污水处理厂提标改造工程很重要",
        "Tr0ub4dor&3-horse-battery",
    ],
)
def test_long_unusual_passwords_pass(password: str) -> None:
    assert codes(password) == []


def test_length_is_counted_in_code_points_after_nfkc() -> None:
    assert codes("水" * (MIN_LENGTH - 1) + "处") == []  # 15 characters of Chinese, 45 bytes of UTF-8
    assert codes("ｌｏｎｇ ｐｈｒａｓｅ ９") == ["length"]  # full-width forms fold to 13 plain characters
    assert codes("水处" * 7) == ["length", "repeated"]


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        (" " * 20, ["blank"]),
        ("\u3000\t\n" * 6, ["blank"]),
        ("PASSWORD", ["length", "common"]),
        ("!!!sunshine2024!!!", ["common"]),
        ("dragon.........................", ["common"]),
        ("abcabcabcabcabcabc", ["repeated"]),
        ("zyxwvutsrqponmlk", ["run"]),
        ("0987654321098765", ["common"]),  # holds 0987654321, common once the other digits are taken off
        ("mnbvcxzlkjhgfdsapoiu", ["run"]),
        ("1qaz2wsx3edc4rfv5", ["common"]),
        ("a fine long passphrase hengtong", ["contains_username"]),
        ("恒通建设的一个很长的口令啊", ["length", "contains_organisation_name"]),
    ],
)
def test_each_weakness_is_named(password: str, expected: list[str]) -> None:
    assert codes(password) == expected


def test_names_are_compared_without_case_and_short_names_are_not_looked_for() -> None:
    assert codes("a fine long passphrase HengTong") == ["contains_username"]
    assert codes("a fine long passphrase 张伟") == []  # a two-character name would refuse too much
    code = "91320100MA1XY2H0A7"
    assert codes(f"my code is {code.lower()}", credit_code=code) == ["contains_credit_code"]


def test_messages_are_what_a_client_shows_next_to_the_field() -> None:
    found = weaknesses("password12", names={})
    assert [(w.code, w.message) for w in found] == [
        ("length", f"shorter than {MIN_LENGTH} characters"),
        ("common", "a commonly used password"),
    ]


@given(st.text(min_size=0, max_size=40))
def test_the_policy_never_fails_and_short_passwords_never_pass(password: str) -> None:
    found = weaknesses(password, names=NAMES)
    if len(passwords.normalise(password)) < MIN_LENGTH:
        assert found and found[0].code == "length"


@given(st.sampled_from(sorted(passwords.common_passwords())), st.text("0123456789!@#. ", max_size=12))
def test_a_common_password_dressed_in_digits_and_symbols_is_still_common(word: str, dressing: str) -> None:
    found = codes(word + dressing)
    assert "common" in found or "blank" in found
