"""Deposit interest (W-14, M-01–M-04) and the late-refund occupancy fee (G-04, M-03): worked examples with
figures computed by hand, the rate table, and properties (additivity, monotonicity)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escrow.interest import (
    Interest,
    InterestLine,
    Rate,
    RateTable,
    deposit_interest,
    occupancy_fee,
)

PBOC = RateTable([Rate(date(2015, 10, 24), Decimal("0.35"))])  # the People's Bank benchmark demand rate
BIG_BANK = RateTable([Rate(date(2015, 10, 24), Decimal("0.05"))])  # what large banks have paid (M-02)
# one-year LPR: 3.10% from 2024-10-21, 3.00% from 2025-05-20
LPR = RateTable([Rate(date(2024, 10, 21), Decimal("3.10")), Rate(date(2025, 5, 20), Decimal("3.00"))])
DAY = date(2025, 3, 1)


# ---------------------------------------------------------------- worked examples: deposit interest


def test_800000_yuan_held_40_days_at_035_percent_earns_31111_fen() -> None:
    # 80,000,000 fen × 0.35 / 100 / 360 × 40 = 1,120,000,000 / 36,000 = 31,111.11… fen → 31,111 fen
    got = deposit_interest(80_000_000, DAY, DAY + timedelta(days=40), PBOC)
    assert (got.days, got.amount_fen) == (40, 31_111)
    assert got.exact == Decimal("31111.11111111111111111111")
    assert got.lines == (InterestLine(DAY, DAY + timedelta(days=40), 40, Decimal("0.35"), got.exact),)


def test_the_same_deposit_at_005_percent_earns_4444_fen() -> None:
    # 80,000,000 × 0.05 / 100 / 360 × 40 = 160,000,000 / 36,000 = 4,444.44… fen → 4,444 fen
    assert deposit_interest(80_000_000, DAY, DAY + timedelta(days=40), BIG_BANK).amount_fen == 4_444


def test_a_rate_change_mid_period_charges_each_day_at_its_own_rate() -> None:
    table = RateTable([Rate(date(2015, 10, 24), Decimal("0.35")), Rate(date(2025, 2, 1), Decimal("0.25"))])
    # 1,000,000 yuan from 21 Jan to 2 Mar 2025:
    #   21 Jan – 31 Jan: 11 days × 100,000,000 × 0.35 / 100 / 360 = 3,850,000 / 360 = 10,694.44… fen
    #   1 Feb – 1 Mar:   29 days × 100,000,000 × 0.25 / 100 / 360 = 7,250,000 / 360 = 20,138.88… fen
    #   total 30,833.33… fen → 30,833 fen
    got = deposit_interest(100_000_000, date(2025, 1, 21), date(2025, 3, 2), table)
    assert got.days == 40 and got.amount_fen == 30_833
    assert [(line.start, line.end_exclusive, line.days, line.annual_percent) for line in got.lines] == [
        (date(2025, 1, 21), date(2025, 2, 1), 11, Decimal("0.35")),
        (date(2025, 2, 1), date(2025, 3, 2), 29, Decimal("0.25")),
    ]
    assert got.lines[0].amount == Decimal("10694.44444444444444444444")
    assert got.lines[1].amount == Decimal("20138.88888888888888888889")


def test_a_refund_on_the_arrival_day_earns_nothing() -> None:
    assert deposit_interest(80_000_000, DAY, DAY, PBOC) == Interest(
        80_000_000, 0, Decimal(0).scaleb(-20), 0, ()
    )


def test_one_day_counts_the_arrival_day_and_not_the_refund_day() -> None:
    table = RateTable([Rate(DAY, Decimal("0.35")), Rate(DAY + timedelta(days=1), Decimal("100"))])
    # only 1 March counts, at 0.35%: 36,000,000 × 0.35 / 100 / 360 = 350 fen (2 March's 100% never applies)
    assert deposit_interest(36_000_000, DAY, DAY + timedelta(days=1), table).amount_fen == 350


def test_exactly_half_a_fen_rounds_up() -> None:
    # 36,000 fen × 0.5 / 100 / 360 × 1 day = 0.5 fen → 1 fen
    assert (
        deposit_interest(
            36_000, DAY, DAY + timedelta(days=1), RateTable([Rate(DAY, Decimal("0.5"))])
        ).amount_fen
        == 1
    )
    # 180,000 fen × 0.5 / 100 / 360 = 2.5 fen → 3 fen (half-even would say 2)
    assert (
        deposit_interest(
            180_000, DAY, DAY + timedelta(days=1), RateTable([Rate(DAY, Decimal("0.5"))])
        ).amount_fen
        == 3
    )


def test_just_under_half_a_fen_rounds_down() -> None:
    # 35,999 fen × 0.5 / 100 / 360 = 0.49998… fen → 0
    assert (
        deposit_interest(
            35_999, DAY, DAY + timedelta(days=1), RateTable([Rate(DAY, Decimal("0.5"))])
        ).amount_fen
        == 0
    )


def test_rounding_happens_once_at_the_end_not_per_rate_line() -> None:
    table = RateTable([Rate(DAY, Decimal("0.4")), Rate(DAY + timedelta(days=1), Decimal("0.3"))])
    # 36,000 fen: day 1 at 0.4% = 0.4 fen, day 2 at 0.3% = 0.3 fen; 0.7 fen → 1 fen (per line: 0 + 0 = 0)
    got = deposit_interest(36_000, DAY, DAY + timedelta(days=2), table)
    assert [line.amount for line in got.lines] == [
        Decimal("0.4").quantize(got.exact),
        Decimal("0.3").quantize(got.exact),
    ]
    assert got.amount_fen == 1


def test_a_rate_with_many_digits_is_kept_exact() -> None:
    # 1 fen × 0.000000000001 % ÷ 360 for 1 day = 1e-12 / 36,000 = 2.777…e-17 fen: far below a fen, not zero
    got = deposit_interest(1, DAY, DAY + timedelta(days=1), RateTable([Rate(DAY, Decimal("1E-12"))]))
    assert got.amount_fen == 0 and got.exact == Decimal("0.00000000000000002778")  # shown to 1e-20 fen


def test_a_negative_principal_or_a_refund_before_arrival_is_refused() -> None:
    with pytest.raises(ValueError, match="principal"):
        deposit_interest(-1, DAY, DAY, PBOC)
    with pytest.raises(ValueError, match="precede"):
        deposit_interest(1, DAY, DAY - timedelta(days=1), PBOC)


def test_a_deposit_before_the_first_rate_names_the_day() -> None:
    with pytest.raises(LookupError, match="2015-10-23"):
        deposit_interest(1, date(2015, 10, 23), date(2015, 11, 1), PBOC)


# ---------------------------------------------------------------- worked examples: occupancy fee


def test_a_refund_paid_seven_days_late_owes_the_lpr_plus_a_fifth_for_each_day() -> None:
    # 500,000 yuan due 16 May 2025, paid 23 May: late on 17–23 May, 7 days
    #   17–19 May: 3 days at 3.10% × 1.2 = 3.72%: 50,000,000 × 3.72 / 100 / 360 × 3 = 15,500 fen
    #   20–23 May: 4 days at 3.00% × 1.2 = 3.60%: 50,000,000 × 3.60 / 100 / 360 × 4 = 20,000 fen
    #   total 35,500 fen
    got = occupancy_fee(50_000_000, date(2025, 5, 16), date(2025, 5, 23), LPR)
    assert (got.days, got.amount_fen) == (7, 35_500)
    assert [(line.start, line.end_exclusive, line.annual_percent) for line in got.lines] == [
        (date(2025, 5, 17), date(2025, 5, 20), Decimal("3.720")),
        (date(2025, 5, 20), date(2025, 5, 24), Decimal("3.600")),
    ]


def test_one_day_late_counts_the_payment_day_at_its_rate() -> None:
    # paid 20 May, due 19 May: 20 May counts at 3.00% × 1.2: 50,000,000 × 3.6 / 100 / 360 = 5,000 fen
    assert occupancy_fee(50_000_000, date(2025, 5, 19), date(2025, 5, 20), LPR).amount_fen == 5_000
    # paid 19 May, due 18 May: 19 May at 3.10% × 1.2: 50,000,000 × 3.72 / 100 / 360 = 5,166.66… → 5,167 fen
    assert occupancy_fee(50_000_000, date(2025, 5, 18), date(2025, 5, 19), LPR).amount_fen == 5_167


@pytest.mark.parametrize("paid", [date(2025, 5, 16), date(2025, 5, 10)])
def test_a_refund_on_or_before_the_due_day_owes_no_fee(paid: date) -> None:
    got = occupancy_fee(50_000_000, date(2025, 5, 16), paid, LPR)
    assert (got.days, got.amount_fen, got.lines) == (0, 0, ())


def test_a_fee_with_a_negative_principal_is_refused() -> None:
    with pytest.raises(ValueError, match="principal"):
        occupancy_fee(-5, DAY, DAY, LPR)


# ---------------------------------------------------------------- the rate table


def test_the_rate_in_force_is_the_latest_one_on_or_before_the_day() -> None:
    assert LPR.rate_on(date(2025, 5, 19)) == Decimal("3.10")
    assert LPR.rate_on(date(2025, 5, 20)) == Decimal("3.00")
    assert LPR.rate_on(date(2030, 1, 1)) == Decimal("3.00")


def test_a_day_before_the_first_rate_is_a_lookup_error_naming_it() -> None:
    with pytest.raises(LookupError, match="2024-10-20"):
        LPR.rate_on(date(2024, 10, 20))
    with pytest.raises(LookupError, match="empty"):
        RateTable([]).rate_on(DAY)


def test_rates_are_sorted_and_duplicate_dates_refused() -> None:
    table = RateTable([Rate(date(2025, 5, 20), Decimal("3.0")), Rate(date(2024, 10, 21), Decimal("3.1"))])
    assert [r.effective_from for r in table.rates] == [date(2024, 10, 21), date(2025, 5, 20)]
    with pytest.raises(ValueError, match="2025-05-20"):
        RateTable([Rate(date(2025, 5, 20), Decimal("3.0")), Rate(date(2025, 5, 20), Decimal("2.9"))])


def test_a_float_or_negative_rate_is_refused() -> None:
    with pytest.raises(TypeError):
        Rate(DAY, 0.35)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Rate(DAY, Decimal("NaN"))
    with pytest.raises(ValueError, match="negative"):
        Rate(DAY, Decimal("-0.01"))


def test_segments_are_maximal_runs_of_one_rate() -> None:
    table = RateTable(
        [
            Rate(date(2025, 1, 1), Decimal("0.35")),
            Rate(date(2025, 2, 1), Decimal("0.35")),  # same rate again: no new run
            Rate(date(2025, 3, 1), Decimal("0.20")),
        ]
    )
    assert table.segments(date(2025, 1, 15), date(2025, 3, 10)) == [
        (date(2025, 1, 15), date(2025, 3, 1), Decimal("0.35")),
        (date(2025, 3, 1), date(2025, 3, 10), Decimal("0.20")),
    ]
    assert table.segments(date(2025, 3, 1), date(2025, 3, 1)) == []
    assert table.segments(date(2025, 2, 28), date(2025, 3, 1)) == [
        (date(2025, 2, 28), date(2025, 3, 1), Decimal("0.35"))
    ]
    with pytest.raises(ValueError):
        table.segments(date(2025, 3, 2), date(2025, 3, 1))


# ---------------------------------------------------------------- properties

START = date(2024, 1, 1)
percents = st.decimals(min_value=0, max_value=10, places=4, allow_nan=False, allow_infinity=False)
tables = st.builds(
    lambda first, later: RateTable(
        [Rate(START, first), *(Rate(START + timedelta(days=d), p) for d, p in later)]
    ),
    percents,
    st.lists(st.tuples(st.integers(1, 400), percents), max_size=5, unique_by=lambda t: t[0]),
)
principals = st.integers(0, 10**12)  # up to 10 billion yuan


@given(principals, tables, st.integers(0, 500), st.integers(0, 500), st.integers(0, 500))
def test_splitting_a_period_changes_the_amount_by_at_most_one_fen(
    principal: int, table: RateTable, a: int, b: int, c: int
) -> None:
    first, middle, last = (START + timedelta(days=d) for d in sorted((a, b, c)))
    whole = deposit_interest(principal, first, last, table)
    left, right = (
        deposit_interest(principal, first, middle, table),
        deposit_interest(principal, middle, last, table),
    )
    assert whole.days == left.days + right.days
    # in fractions: `exact` carries 20 places, more digits than Decimal's default 28-digit context keeps
    assert abs(Fraction(whole.exact) - Fraction(left.exact) - Fraction(right.exact)) <= Fraction(2, 10**20)
    assert abs(whole.amount_fen - (left.amount_fen + right.amount_fen)) <= 1


@given(principals, tables, st.integers(0, 500), st.integers(0, 500))
def test_interest_never_falls_as_the_deposit_is_held_longer(
    principal: int, table: RateTable, d1: int, d2: int
) -> None:
    shorter, longer = sorted((d1, d2))
    assert (
        deposit_interest(principal, START, START + timedelta(days=shorter), table).amount_fen
        <= deposit_interest(principal, START, START + timedelta(days=longer), table).amount_fen
    )


@given(principals, tables, st.integers(0, 500), st.decimals(min_value=0, max_value=5, places=3))
def test_interest_never_falls_as_the_rates_rise(
    principal: int, table: RateTable, days: int, bump: Decimal
) -> None:
    higher = RateTable(Rate(r.effective_from, r.annual_percent + bump) for r in table.rates)
    end = START + timedelta(days=days)
    assert (
        deposit_interest(principal, START, end, table).amount_fen
        <= deposit_interest(principal, START, end, higher).amount_fen
    )


@given(principals, tables, st.integers(0, 500))
def test_the_amount_is_the_exact_sum_rounded_half_up_once(
    principal: int, table: RateTable, days: int
) -> None:
    got = deposit_interest(principal, START, START + timedelta(days=days), table)
    assert abs(got.amount_fen - Fraction(got.exact)) <= Fraction(1, 2)
    lines = sum((Fraction(line.amount) for line in got.lines), Fraction(0))
    assert abs(lines - Fraction(got.exact)) <= Fraction(len(got.lines), 10**20)  # each line is shown to 1e-20
    assert got.days == days == sum(line.days for line in got.lines)


@given(principals, tables, st.integers(0, 500))
def test_a_single_rate_table_matches_the_closed_formula(principal: int, table: RateTable, days: int) -> None:
    flat = RateTable([Rate(START, table.rates[0].annual_percent)])
    got = deposit_interest(principal, START, START + timedelta(days=days), flat)
    numerator = principal * table.rates[0].annual_percent * days  # fen × percent × days, exact
    # half-up of numerator / 36,000 done in integers: floor((2n + d) / 2d)
    scale = 10**4  # percents have at most 4 places
    n, d = int(numerator * scale), 36_000 * scale
    assert got.amount_fen == (2 * n + d) // (2 * d)


@given(principals, st.integers(0, 400), st.integers(-30, 200))
def test_the_fee_counts_paid_minus_due_days_and_grows_with_lateness(
    principal: int, due_offset: int, late: int
) -> None:
    due = date(2024, 11, 1) + timedelta(days=due_offset)
    fee = occupancy_fee(principal, due, due + timedelta(days=late), LPR)
    assert fee.days == max(late, 0)
    if late > 0:
        later = occupancy_fee(principal, due, due + timedelta(days=late + 1), LPR)
        assert later.amount_fen >= fee.amount_fen
