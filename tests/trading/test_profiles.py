"""Tests for rules.profiles: the caps and counts of RULES.md as data, and `tighten` never loosening them."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.profiles import (
    MAXIMUMS,
    MINIMUMS,
    NOT_TUNABLE,
    PROCUREMENT_OPEN,
    PROFILES,
    WORKS_OPEN,
    ProcedureProfile,
    ProfileError,
    committee_ok,
    deposit_cap,
    performance_security_cap,
    profile_for,
    tighten,
)

YUAN = 100
CAP_800K_YUAN = 800_000 * YUAN
# 2% of 40,000,000 yuan is exactly 800,000 yuan: below this estimate the 2% bound binds, above it the cap.
ESTIMATE_AT_CAP = 40_000_000 * YUAN

# --- W-04: the bid deposit ---------------------------------------------------------------------------------


def test_w04_deposit_cap_is_two_percent_of_the_estimate() -> None:
    assert deposit_cap(WORKS_OPEN, 10_000_000 * YUAN) == 200_000 * YUAN


def test_w04_deposit_cap_rounds_down_so_it_never_exceeds_two_percent() -> None:
    assert deposit_cap(WORKS_OPEN, 1_001) == 20  # 2% of 1,001 fen is 20.02 fen
    assert deposit_cap(WORKS_OPEN, 49) == 0


def test_w04_the_800000_yuan_cap_binds_from_forty_million_yuan_exactly() -> None:
    assert deposit_cap(WORKS_OPEN, ESTIMATE_AT_CAP - 50) == CAP_800K_YUAN - 1
    assert deposit_cap(WORKS_OPEN, ESTIMATE_AT_CAP) == CAP_800K_YUAN
    assert deposit_cap(WORKS_OPEN, ESTIMATE_AT_CAP + 50) == CAP_800K_YUAN
    assert deposit_cap(WORKS_OPEN, 10**15) == CAP_800K_YUAN


def test_w04_a_profile_without_an_absolute_cap_keeps_only_two_percent() -> None:
    goods = replace(WORKS_OPEN, deposit_cap_fen=None)
    assert deposit_cap(goods, 10**12) == 2 * 10**10


@given(st.integers(min_value=1, max_value=10**15))
def test_w04_deposit_cap_is_the_largest_lawful_deposit(estimate: int) -> None:
    cap = deposit_cap(WORKS_OPEN, estimate)
    assert 0 <= cap <= CAP_800K_YUAN
    assert cap * 1000 <= estimate * 20  # at most 2 %
    one_more = cap + 1
    assert one_more > CAP_800K_YUAN or one_more * 1000 > estimate * 20


# --- W-15: the performance security -----------------------------------------------------------------------


def test_w15_performance_security_cap_is_ten_percent_of_the_contract_price() -> None:
    assert performance_security_cap(WORKS_OPEN, 4_780_000_000) == 478_000_000


def test_w15_performance_security_cap_rounds_down() -> None:
    assert performance_security_cap(WORKS_OPEN, 4_780_000_009) == 478_000_000


@given(st.integers(min_value=0, max_value=10**15))
def test_w15_performance_security_cap_is_the_largest_amount_within_ten_percent(price: int) -> None:
    cap = performance_security_cap(WORKS_OPEN, price)
    assert cap * 10 <= price < (cap + 1) * 10


# --- W-10: the evaluation committee -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "experts", "why"),
    [
        (4, 4, "the committee has 4 members; at least 5 are required"),
        (6, 6, "the committee has 6 members; the number must be odd"),
        (6, 5, "the committee has 6 members; the number must be odd"),
        (5, 3, "3 of 5 members are experts; at least 2/3 must be"),
        (7, 4, "4 of 7 members are experts; at least 2/3 must be"),
    ],
)
def test_w10_unlawful_committees_are_refused_with_the_reason(size: int, experts: int, why: str) -> None:
    assert committee_ok(WORKS_OPEN, size, experts) == why


@pytest.mark.parametrize(("size", "experts"), [(5, 4), (5, 5), (7, 5), (9, 6), (9, 9)])
def test_w10_lawful_committees_pass(size: int, experts: int) -> None:
    assert committee_ok(WORKS_OPEN, size, experts) is None


@given(st.integers(min_value=0, max_value=60), st.integers(min_value=0, max_value=60))
def test_w10_committee_ok_is_exactly_the_rule(size: int, experts: int) -> None:
    experts = min(experts, size)
    lawful = size >= 5 and size % 2 == 1 and 3 * experts >= 2 * size
    assert (committee_ok(WORKS_OPEN, size, experts) is None) == lawful


# --- the works profile is the law -------------------------------------------------------------------------


def test_the_works_profile_carries_the_legal_figures() -> None:
    p = profile_for("works", "open")
    assert p is WORKS_OPEN
    assert (p.documents_to_deadline_days, p.clarification_notice_days) == (20, 15)  # W-01, W-02
    assert (p.objection_before_deadline_days, p.objection_answer_days) == (10, 3)  # W-03
    assert (p.deposit_max_permille_of_estimate, p.deposit_cap_fen) == (20, CAP_800K_YUAN)  # W-04
    assert p.min_bids_to_open == 3  # W-09
    assert (p.committee_min_size, p.committee_expert_share_num, p.committee_expert_share_den) == (5, 2, 3)
    assert p.max_candidates == 3  # W-11
    assert (p.publish_candidates_within_days, p.publicity_min_days) == (3, 3)  # W-12
    assert p.contract_within_days == 30  # W-13
    assert p.performance_security_max_permille == 100  # W-15


def test_an_unknown_procedure_is_refused_naming_the_known_ones() -> None:
    known = ", ".join(f"{sector}/{method}" for sector, method in sorted(PROFILES))
    assert "procurement/single_source" in known and "works/open" in known
    with pytest.raises(ProfileError, match=f"no procedure profile for land/auction; known: {known}$"):
        profile_for("land", "auction")


@pytest.mark.parametrize("profile", PROFILES.values(), ids=lambda p: f"{p.sector}/{p.method}")
def test_every_tunable_field_names_its_rule(profile: ProcedureProfile) -> None:
    tunable = {f.name for f in fields(profile)} - NOT_TUNABLE
    assert {name for name, _rule in profile.rules} == tunable
    assert MINIMUMS <= tunable and MAXIMUMS <= tunable and not MINIMUMS & MAXIMUMS
    # a procedure's rule ids are its own sector's (or the electronic-tendering E- rules)
    letter = {"works": "W", "procurement": "G"}[profile.sector]
    assert {rule[0] for _name, rule in profile.rules if rule} <= {letter, "E"}


# --- tighten: a centre may tighten, never loosen ------------------------------------------------------------

# A legal step up for each minimum (a committee must stay odd, so it grows by two).
RAISE = {name: 2 if name.startswith("committee_min_size") else 1 for name in MINIMUMS}
BOUNDED = [
    (profile, name)
    for profile in PROFILES.values()
    for name in sorted(MINIMUMS | MAXIMUMS)
    if getattr(profile, name) is not None
]
LOWER_BOUNDED = [(p, n) for p, n in BOUNDED if n in MINIMUMS]
UPPER_BOUNDED = [(p, n) for p, n in BOUNDED if n in MAXIMUMS]


@pytest.mark.parametrize(
    ("profile", "name"), LOWER_BOUNDED, ids=[f"{p.sector}-{n}" for p, n in LOWER_BOUNDED]
)
def test_tighten_refuses_lowering_a_minimum(profile: ProcedureProfile, name: str) -> None:
    current = getattr(profile, name)
    if current == 0:
        pytest.skip(f"{name} is 0 in {profile.sector}: nothing to lower")
    with pytest.raises(ProfileError, match=f"{name} may not go below {current}") as refused:
        tighten(profile, **{name: current - 1})
    assert refused.value.rule == profile.rule(name)


@pytest.mark.parametrize(
    ("profile", "name"), LOWER_BOUNDED, ids=[f"{p.sector}-{n}" for p, n in LOWER_BOUNDED]
)
def test_tighten_accepts_raising_a_minimum(profile: ProcedureProfile, name: str) -> None:
    current = getattr(profile, name)
    tightened = tighten(profile, **{name: current + RAISE[name]})
    assert getattr(tightened, name) == current + RAISE[name]
    assert getattr(profile, name) == current  # the law's profile is untouched


@pytest.mark.parametrize(
    ("profile", "name"), UPPER_BOUNDED, ids=[f"{p.sector}-{n}" for p, n in UPPER_BOUNDED]
)
def test_tighten_refuses_raising_a_maximum(profile: ProcedureProfile, name: str) -> None:
    current = getattr(profile, name)
    with pytest.raises(ProfileError, match=f"{name} may not go above {current}") as refused:
        tighten(profile, **{name: current + 1})
    assert refused.value.rule == profile.rule(name)


@pytest.mark.parametrize(
    ("profile", "name"), UPPER_BOUNDED, ids=[f"{p.sector}-{n}" for p, n in UPPER_BOUNDED]
)
def test_tighten_accepts_lowering_a_maximum(profile: ProcedureProfile, name: str) -> None:
    current = getattr(profile, name)
    assert getattr(tighten(profile, **{name: current - 1}), name) == current - 1


def test_tighten_refuses_dropping_the_absolute_deposit_cap() -> None:
    with pytest.raises(ProfileError, match="deposit_cap_fen may not go above") as refused:
        tighten(WORKS_OPEN, deposit_cap_fen=None)
    assert refused.value.rule == "W-04"


def test_tighten_keeps_the_committee_odd() -> None:
    with pytest.raises(ProfileError, match="must be odd") as refused:
        tighten(WORKS_OPEN, committee_min_size=6)
    assert refused.value.rule == "W-10"


@pytest.mark.parametrize(("num", "den"), [(1, 2), (3, 5), (1, 3)])
def test_tighten_refuses_lowering_the_expert_share_below_two_thirds(num: int, den: int) -> None:
    with pytest.raises(ProfileError, match="expert share") as refused:
        tighten(WORKS_OPEN, committee_expert_share_num=num, committee_expert_share_den=den)
    assert refused.value.rule == "W-10"


def test_tighten_accepts_raising_the_expert_share() -> None:
    stricter = tighten(WORKS_OPEN, committee_expert_share_num=4, committee_expert_share_den=5)
    assert committee_ok(stricter, 5, 4) is None
    assert committee_ok(stricter, 7, 5) == "5 of 7 members are experts; at least 4/5 must be"


@pytest.mark.parametrize("name", ["sector", "method", "title", "no_such_value"])
def test_tighten_refuses_what_is_not_a_tunable_value(name: str) -> None:
    with pytest.raises(ProfileError, match=f"{name} is not a tunable value"):
        tighten(WORKS_OPEN, **{name: "x"})


@given(st.sampled_from(LOWER_BOUNDED), st.integers(min_value=-1000, max_value=1000))
def test_tighten_never_yields_a_minimum_below_the_law(
    bounded: tuple[ProcedureProfile, str], delta: int
) -> None:
    profile, name = bounded
    value = getattr(profile, name) + delta
    try:
        tightened = tighten(profile, **{name: value})
    except ProfileError:
        return
    assert getattr(tightened, name) >= getattr(profile, name)


@given(st.sampled_from(UPPER_BOUNDED), st.integers(min_value=-1000, max_value=1000))
def test_tighten_never_yields_a_maximum_above_the_law(
    bounded: tuple[ProcedureProfile, str], delta: int
) -> None:
    profile, name = bounded
    value = getattr(profile, name) + delta
    try:
        tightened = tighten(profile, **{name: value})
    except ProfileError:
        return
    assert getattr(tightened, name) <= getattr(profile, name)


@pytest.mark.parametrize(
    ("name", "value"), [("max_candidates", -1), ("contract_within_days", 2.5), ("publicity_min_days", True)]
)
def test_tighten_refuses_values_that_are_not_whole_numbers_of_zero_or_more(name: str, value: object) -> None:
    with pytest.raises(ProfileError, match=f"{name} must be a whole number of 0 or more"):
        tighten(WORKS_OPEN, **{name: value})


# --- procurement (G-): the profile's own rules --------------------------------------------------------------


def test_the_procurement_deposit_is_two_percent_of_the_budget_with_no_absolute_cap() -> None:
    budget = 100_000_000 * YUAN  # 2 % is 2,000,000 yuan: above the works cap, lawful here (G-03)
    assert deposit_cap(PROCUREMENT_OPEN, budget) == 2_000_000 * YUAN
    assert PROCUREMENT_OPEN.rule("deposit_max_permille_of_estimate") == "G-03"


@pytest.mark.parametrize(
    ("budget_yuan", "size", "lawful"),
    [(9_999_999, 5, True), (10_000_000, 5, False), (10_000_000, 7, True), (50_000_000, 6, False)],
)
def test_the_procurement_committee_grows_to_seven_from_ten_million_yuan(
    budget_yuan: int, size: int, lawful: bool
) -> None:
    why = committee_ok(PROCUREMENT_OPEN, size, size, budget_yuan * YUAN)
    assert (why is None) is lawful, why
    # the works law sizes the committee the same whatever the estimate
    assert committee_ok(WORKS_OPEN, 5, 5, budget_yuan * YUAN) is None


def test_procurement_has_no_candidates_publicity_and_works_does() -> None:
    assert WORKS_OPEN.has_publicity and not PROCUREMENT_OPEN.has_publicity
    assert [s.state for s in PROCUREMENT_OPEN.steps if s.ends_by == "award"] == ["decision"]
    assert PROCUREMENT_OPEN.losers_refund_rule == "G-04-loser"
    assert PROCUREMENT_OPEN.contract_refund_rule == "G-04-winner"
