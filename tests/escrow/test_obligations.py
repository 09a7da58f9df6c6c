"""Refund obligations: the rule table, due dates over the 2026 official schedule (P-01, P-02, P-04),
interest and fees with figures computed by hand (M-01, M-03, M-04), and the S-01 lights."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from escrow.interest import Interest, InterestLine, Rate, RateTable
from escrow.obligations import (
    RULES,
    InterestRule,
    Light,
    RefundRule,
    Trigger,
    UnknownRefundRule,
    due_date,
    interest_due,
    light,
    rule_for,
    working_days_left,
)
from rules.calendar import OfficialSchedule, WorkingCalendar, default_calendar

# The 2026 calendar as the `holidays` package gives it (tests/trading/test_calendar.py pins it to the
# State Council notice): Mid-Autumn Fri 09-25, National Day 10-01..10-07, make-up working days Sun 09-20
# and Sat 10-10; Spring Festival 02-15..02-23, make-up Sat 02-14 and Sat 02-28.
CAL = default_calendar()

PBOC = RateTable([Rate(date(2015, 10, 24), Decimal("0.35"))])  # People's Bank benchmark demand rate
LPR = RateTable([Rate(date(2024, 10, 21), Decimal("3.10")), Rate(date(2025, 5, 20), Decimal("3.00"))])


def zero(principal_fen: int) -> Interest:
    return Interest(principal_fen, 0, Decimal(0).scaleb(-20), 0, ())


# ---------------------------------------------------------------- the rule table


def test_rule_table_encodes_period_trigger_and_interest_of_each_rule() -> None:
    assert {
        rule_id: (r.days, r.working_days, r.trigger, r.interest, r.house_default)
        for rule_id, r in RULES.items()
    } == {
        "W-05": (5, False, Trigger.WITHDRAWAL_NOTICE, InterestRule.NONE, False),
        "W-14": (5, False, Trigger.CONTRACT_SIGNED, InterestRule.DEPOSIT, False),
        "G-04-loser": (5, True, Trigger.AWARD_NOTICE, InterestRule.OCCUPANCY_IF_LATE, False),
        "G-04-winner": (5, True, Trigger.CONTRACT_SIGNED, InterestRule.OCCUPANCY_IF_LATE, False),
        "G-04-end": (5, True, Trigger.FAILURE, InterestRule.DEPOSIT, False),
        "L-06": (5, True, Trigger.CLOSE, InterestRule.NONE, False),
        "E-03": (5, False, Trigger.WITHDRAWAL_NOTICE, InterestRule.NONE, True),
        "W-09": (5, False, Trigger.FAILURE, InterestRule.NONE, True),
        "T-END": (5, False, Trigger.FAILURE, InterestRule.DEPOSIT, True),
        "SUSPENSE": (5, True, Trigger.FAILURE, InterestRule.NONE, True),
    }


def test_every_rule_is_keyed_by_its_own_id_and_cites_a_source_in_both_languages() -> None:
    for rule_id, rule in RULES.items():
        assert rule.rule == rule_id
        assert rule.source and rule.zh and rule.en and rule.status


def test_t_end_cites_article_31_and_says_its_period_is_a_house_default() -> None:
    rule = RULES["T-END"]
    assert "第31条" in rule.source and "及时" in rule.zh and "house default" in rule.en


def test_rule_table_and_rules_are_read_only() -> None:
    with pytest.raises(TypeError):
        RULES["X"] = RULES["W-05"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        RULES["W-05"].days = 10  # type: ignore[misc]


def test_rule_for_returns_the_rule() -> None:
    assert rule_for("W-14") is RULES["W-14"]
    assert isinstance(rule_for("W-14"), RefundRule)


def test_unknown_rule_id_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(
        UnknownRefundRule, match="Unknown refund rule 'W-99'; the refund rules are W-05, W-14"
    ) as e:
        due_date("W-99", date(2026, 3, 2), CAL)
    assert e.value.rule == "W-99"
    assert isinstance(e.value, ValueError)


def test_rule_ids_are_case_sensitive() -> None:
    with pytest.raises(UnknownRefundRule, match="'w-14'"):
        rule_for("w-14")


@pytest.mark.parametrize(
    ("rule_id", "message"),
    [
        ("W-06", "W-06 creates no refund obligation: the deposit of a bid withdrawn after the deadline"),
        ("W-16", "W-16 creates no refund obligation: a winner who refuses to sign"),
        ("G-04", "use G-04-loser .*, G-04-winner .* or G-04-end"),
    ],
)
def test_rule_ids_that_are_not_refunds_are_refused_saying_why(rule_id: str, message: str) -> None:
    with pytest.raises(UnknownRefundRule, match=message):
        rule_for(rule_id)


def test_unknown_rule_is_refused_by_interest_due_too() -> None:
    day = date(2026, 3, 2)
    with pytest.raises(UnknownRefundRule, match="'L-07'"):
        interest_due("L-07", 1, day, day, day, PBOC, LPR)


# ---------------------------------------------------------------- due dates: calendar days (P-01, P-02)


def test_w14_contract_signed_fri_2026_09_25_deposits_due_back_by_wed_2026_09_30() -> None:
    # RULES.md's worked example: signed on the Mid-Autumn holiday; day + 5 = Wed 09-30, a working day.
    assert due_date("W-14", date(2026, 9, 25), CAL) == date(2026, 9, 30)


def test_calendar_day_period_ending_on_a_sunday_moves_to_monday() -> None:
    # withdrawal Mon 2026-03-02; + 5 = Sat 03-07; the rest ends Sun 03-08 → Mon 03-09
    assert due_date("W-05", date(2026, 3, 2), CAL) == date(2026, 3, 9)


def test_calendar_day_period_counts_the_days_of_a_weekend_event() -> None:
    # signed Sat 2026-03-07: day + 5 = Thu 03-12, a working day; rest days inside the period still count
    assert due_date("W-14", date(2026, 3, 7), CAL) == date(2026, 3, 12)


def test_calendar_day_period_ending_in_national_day_moves_past_the_holiday() -> None:
    # withdrawal Sat 2026-09-26: + 5 = Thu 10-01 (National Day) → rest until Wed 10-07 → Thu 10-08
    assert due_date("W-05", date(2026, 9, 26), CAL) == date(2026, 10, 8)


def test_calendar_day_period_ending_on_a_makeup_saturday_is_not_moved() -> None:
    # withdrawal Mon 2026-02-09: + 5 = Sat 02-14, worked for the Spring Festival (调休)
    assert CAL.is_working_day(date(2026, 2, 14))
    assert due_date("W-05", date(2026, 2, 9), CAL) == date(2026, 2, 14)


def test_calendar_day_period_ending_in_spring_festival_moves_to_feb_24() -> None:
    # withdrawal Tue 2026-02-10: + 5 = Sun 02-15, first day of the festival; rest until Mon 02-23
    assert due_date("W-05", date(2026, 2, 10), CAL) == date(2026, 2, 24)


def test_calendar_day_period_from_a_makeup_sunday_ending_in_mid_autumn_moves_to_monday() -> None:
    # signed Sun 2026-09-20 (a make-up working day): + 5 = Fri 09-25, Mid-Autumn; Sat, Sun rest → Mon 09-28
    assert due_date("W-14", date(2026, 9, 20), CAL) == date(2026, 9, 28)


def test_t_end_and_w09_and_e03_count_five_calendar_days() -> None:
    assert due_date("T-END", date(2026, 3, 2), CAL) == date(2026, 3, 9)
    assert due_date("W-09", date(2026, 3, 3), CAL) == date(2026, 3, 9)  # Sun 03-08 → Mon
    assert due_date("E-03", date(2026, 3, 4), CAL) == date(2026, 3, 9)


# ---------------------------------------------------------------- due dates: working days (P-04)


def test_g04_loser_five_working_days_over_national_day_lands_on_the_makeup_saturday() -> None:
    # award notice Mon 2026-09-28: Tue 09-29 (1), Wed 09-30 (2), 10-01..10-07 off, Thu 10-08 (3),
    # Fri 10-09 (4), Sat 10-10 worked for National Day (5)
    assert due_date("G-04-loser", date(2026, 9, 28), CAL) == date(2026, 10, 10)


def test_g04_winner_five_working_days_from_a_holiday_signing_skip_the_holiday_weekend_and_national_day() -> (
    None
):
    # signed Fri 2026-09-25 (Mid-Autumn): Sat, Sun rest; Mon 09-28 (1), 09-29 (2), 09-30 (3),
    # 10-01..10-07 off, Thu 10-08 (4), Fri 10-09 (5)
    assert due_date("G-04-winner", date(2026, 9, 25), CAL) == date(2026, 10, 9)


def test_g04_from_an_event_inside_national_day_counts_from_the_first_working_day() -> None:
    # notice Thu 2026-10-01: 10-08 (1), 10-09 (2), Sat 10-10 (3), Sun 10-11 rest, 10-12 (4), 10-13 (5)
    assert due_date("G-04-loser", date(2026, 10, 1), CAL) == date(2026, 10, 13)


def test_l06_five_working_days_from_the_close_over_a_plain_weekend() -> None:
    # close Wed 2026-03-04: Thu (1), Fri (2), Sat, Sun rest, Mon (3), Tue (4), Wed 03-11 (5)
    assert due_date("L-06", date(2026, 3, 4), CAL) == date(2026, 3, 11)


def test_l06_over_national_day_skips_the_sunday_after_the_makeup_saturday() -> None:
    # close Wed 2026-09-30: 10-08 (1), 10-09 (2), Sat 10-10 (3), Sun 10-11 rest, 10-12 (4), Tue 10-13 (5)
    assert due_date("L-06", date(2026, 9, 30), CAL) == date(2026, 10, 13)


def test_due_dates_follow_a_loaded_official_schedule() -> None:
    # a centre's loaded 2026 schedule with only Mon 03-09 off: W-05 from Mon 03-02 ends Sat 03-07, rest
    # until Mon 03-09 (now a holiday) → Tue 03-10; G-04 from Mon 03-02 skips it too → Tue 03-10
    loaded = WorkingCalendar([OfficialSchedule(year=2026, holidays=frozenset({date(2026, 3, 9)}))])
    assert due_date("W-05", date(2026, 3, 2), loaded) == date(2026, 3, 10)
    assert due_date("G-04-loser", date(2026, 3, 2), loaded) == date(2026, 3, 10)


# ---------------------------------------------------------------- interest: deposit interest (W-14, T-END)


def test_w14_800000_yuan_held_37_days_at_035_percent_earns_28778_fen() -> None:
    # arrived Mon 2026-08-24, refunded on the W-14 due day Wed 2026-09-30: 24 Aug .. 29 Sep = 37 days
    # 80,000,000 fen × 0.35 / 100 / 360 × 37 = 280,000 × 37 / 360 = 10,360,000 / 360 = 28,777.77… → 28,778
    arrived, due = date(2026, 8, 24), due_date("W-14", date(2026, 9, 25), CAL)
    got = interest_due("W-14", 80_000_000, arrived, due, due, PBOC, LPR)
    assert (got.days, got.amount_fen) == (37, 28_778)
    assert got.exact == Decimal("28777.77777777777777777778")
    assert got.lines == (InterestLine(arrived, due, 37, Decimal("0.35"), got.exact),)


def test_w14_rate_change_mid_period_charges_each_day_at_its_own_rate() -> None:
    rates = RateTable([Rate(date(2015, 10, 24), Decimal("0.35")), Rate(date(2026, 9, 15), Decimal("0.25"))])
    # 800,000 yuan from 24 Aug to 30 Sep 2026:
    #   24 Aug – 14 Sep: 22 days × 80,000,000 × 0.35 / 100 / 360 = 6,160,000 / 360 = 17,111.11… fen
    #   15 Sep – 29 Sep: 15 days × 80,000,000 × 0.25 / 100 / 360 = 3,000,000 / 360 =  8,333.33… fen
    #   total 25,444.44… fen → 25,444 fen
    got = interest_due(
        "W-14", 80_000_000, date(2026, 8, 24), date(2026, 9, 30), date(2026, 9, 30), rates, LPR
    )
    assert (got.days, got.amount_fen) == (37, 25_444)
    assert [(line.start, line.end_exclusive, line.days, line.annual_percent) for line in got.lines] == [
        (date(2026, 8, 24), date(2026, 9, 15), 22, Decimal("0.35")),
        (date(2026, 9, 15), date(2026, 9, 30), 15, Decimal("0.25")),
    ]
    assert got.lines[0].amount == Decimal("17111.11111111111111111111")
    assert got.lines[1].amount == Decimal("8333.33333333333333333333")


def test_w14_interest_runs_to_the_actual_payment_when_paid_late() -> None:
    # due Wed 2026-09-30, paid Thu 10-08: 24 Aug .. 7 Oct = 45 days
    # 80,000,000 × 0.35 / 100 / 360 × 45 = 280,000 × 45 / 360 = 35,000 fen exactly
    got = interest_due("W-14", 80_000_000, date(2026, 8, 24), date(2026, 9, 30), date(2026, 10, 8), PBOC, LPR)
    assert (got.days, got.amount_fen) == (45, 35_000)


def test_t_end_carries_deposit_interest_like_w14() -> None:
    # 100,000 yuan arrived 2026-03-02, tender terminated, refunded 2026-03-09: 7 days
    # 10,000,000 × 0.35 / 100 / 360 × 7 = 35,000 × 7 / 360 = 245,000 / 360 = 680.55… → 681 fen
    got = interest_due("T-END", 10_000_000, date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 9), PBOC, LPR)
    assert (got.days, got.amount_fen) == (7, 681)


def test_deposit_interest_on_a_refund_the_day_it_arrived_is_nothing() -> None:
    day = date(2026, 3, 2)
    assert interest_due("W-14", 80_000_000, day, day, day, PBOC, LPR).amount_fen == 0


def test_deposit_interest_before_the_rate_table_starts_names_the_day() -> None:
    with pytest.raises(LookupError, match="2015-10-23"):
        interest_due("W-14", 1, date(2015, 10, 23), date(2015, 11, 1), date(2015, 11, 1), PBOC, LPR)


# ---------------------------------------------------------------- interest: occupancy fee (G-04)


def test_g04_paid_3_days_late_owes_lpr_3_percent_times_1_2_for_each_day() -> None:
    # award notice Mon 2026-09-28 → due Sat 2026-10-10; paid Tue 10-13: late on 10-11, 10-12, 10-13
    # 123,456.78 yuan = 12,345,678 fen × 3.00 × 1.2 / 100 / 360 × 3 = 12,345,678 × 0.036 × 3 / 360
    #   = 1,333,333.224 / 360 = 3,703.7034 fen → 3,704 fen
    due = due_date("G-04-loser", date(2026, 9, 28), CAL)
    got = interest_due("G-04-loser", 12_345_678, date(2026, 9, 1), due, date(2026, 10, 13), PBOC, LPR)
    assert (got.days, got.amount_fen) == (3, 3_704)
    assert got.exact == Decimal("3703.70340000000000000000")
    assert got.lines == (
        InterestLine(date(2026, 10, 11), date(2026, 10, 14), 3, Decimal("3.600"), got.exact),
    )


def test_g04_winner_paid_late_owes_the_same_fee() -> None:
    # 800,000 yuan, 3 days late: 80,000,000 × 3.6 / 100 / 360 × 3 = 8,000 × 3 = 24,000 fen
    got = interest_due(
        "G-04-winner", 80_000_000, date(2026, 9, 1), date(2026, 10, 9), date(2026, 10, 12), PBOC, LPR
    )
    assert (got.days, got.amount_fen) == (3, 24_000)


def test_g04_paid_on_the_due_day_owes_nothing() -> None:
    due = date(2026, 10, 10)
    assert interest_due("G-04-loser", 12_345_678, date(2026, 9, 1), due, due, PBOC, LPR) == zero(12_345_678)


def test_g04_paid_early_owes_nothing() -> None:
    got = interest_due(
        "G-04-loser", 12_345_678, date(2026, 9, 1), date(2026, 10, 10), date(2026, 9, 29), PBOC, LPR
    )
    assert got == zero(12_345_678)


def test_g04_carries_no_deposit_interest_even_for_a_long_hold() -> None:
    # months in escrow, refunded on time: the procurement rule charges only lateness, never holding
    got = interest_due(
        "G-04-winner", 80_000_000, date(2026, 1, 5), date(2026, 10, 9), date(2026, 10, 9), PBOC, LPR
    )
    assert got.amount_fen == 0


# ---------------------------------------------------------------- interest: none


@pytest.mark.parametrize("rule_id", ["W-05", "E-03", "W-09", "L-06"])
def test_rules_without_interest_owe_nothing_even_when_paid_late(rule_id: str) -> None:
    got = interest_due(rule_id, 80_000_000, date(2026, 3, 2), date(2026, 3, 9), date(2026, 4, 30), PBOC, LPR)
    assert got == zero(80_000_000)


def test_rules_without_interest_do_not_need_a_rate_in_force() -> None:
    empty = RateTable([])
    got = interest_due("L-06", 5, date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 9), empty, empty)
    assert got == zero(5)


@pytest.mark.parametrize("rule_id", sorted(RULES))
@pytest.mark.parametrize("principal", [-1, 1.5, True])
def test_bad_principal_is_refused_for_every_rule(rule_id: str, principal: object) -> None:
    day = date(2026, 3, 2)
    with pytest.raises(ValueError, match="principal"):
        interest_due(rule_id, principal, day, day, day, PBOC, LPR)  # type: ignore[arg-type]


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_payment_before_arrival_is_refused_for_every_rule(rule_id: str) -> None:
    with pytest.raises(ValueError, match="cannot precede"):
        interest_due(rule_id, 1, date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 1), PBOC, LPR)


def test_zero_principal_earns_zero_fen_over_the_days_held() -> None:
    got = interest_due("W-14", 0, date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 9), PBOC, LPR)
    assert (got.days, got.amount_fen) == (7, 0)


# ---------------------------------------------------------------- working days left


def test_working_days_left_is_zero_on_the_due_day() -> None:
    assert working_days_left(date(2026, 3, 11), date(2026, 3, 11), CAL) == 0


def test_working_days_left_counts_working_days_after_today_up_to_the_due_day() -> None:
    # due Wed 2026-03-11; on Wed 03-04: Thu, Fri, Mon, Tue, Wed = 5
    assert working_days_left(date(2026, 3, 11), date(2026, 3, 4), CAL) == 5


def test_working_days_left_skips_national_day_and_counts_the_makeup_saturday() -> None:
    # due Sat 2026-10-10 (make-up); on Wed 09-30: Thu 10-08, Fri 10-09, Sat 10-10 = 3
    assert working_days_left(date(2026, 10, 10), date(2026, 9, 30), CAL) == 3


def test_working_days_left_is_negative_once_working_days_have_passed_the_due_day() -> None:
    # due Fri 2026-03-06; on Tue 03-10: Mon and Tue have passed
    assert working_days_left(date(2026, 3, 6), date(2026, 3, 10), CAL) == -2


def test_working_days_left_is_zero_on_the_rest_days_right_after_a_missed_due_day() -> None:
    # due Fri 2026-03-06, today Sat 03-07: no working day has passed, but the step is late (light: red)
    assert working_days_left(date(2026, 3, 6), date(2026, 3, 7), CAL) == 0
    assert light(date(2026, 3, 6), date(2026, 3, 7), CAL, settled=False) is Light.RED


# ---------------------------------------------------------------- lights (S-01)

DUE_MON = date(2026, 3, 9)  # a Monday; the working day before it is Fri 03-06


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 3, 4), Light.GREEN),  # Wed: Thu, Fri, Mon left (3)
        (date(2026, 3, 5), Light.GREEN),  # Thu: Fri, Mon left (2) — the last green day
        (date(2026, 3, 6), Light.YELLOW),  # Fri: only Mon left (1) — the first yellow day
        (date(2026, 3, 7), Light.YELLOW),  # Sat
        (date(2026, 3, 8), Light.YELLOW),  # Sun
        (date(2026, 3, 9), Light.YELLOW),  # the due day itself: in time until 24:00 (P-03) — last yellow day
        (date(2026, 3, 10), Light.RED),  # the day after: missed — the first red day
        (date(2026, 4, 30), Light.RED),  # and it stays red
    ],
)
def test_light_of_an_unsettled_refund_across_the_boundary_days(today: date, expected: Light) -> None:
    assert light(DUE_MON, today, CAL, settled=False) is expected


@pytest.mark.parametrize("today", [date(2026, 3, 4), date(2026, 3, 6), date(2026, 3, 9), date(2026, 3, 10)])
def test_a_settled_refund_is_green_whatever_the_day(today: date) -> None:
    assert light(DUE_MON, today, CAL, settled=True) is Light.GREEN


def test_yellow_starts_on_the_last_working_day_before_national_day_for_a_due_day_after_it() -> None:
    due = date(2026, 10, 8)  # Thu, the first working day after National Day
    assert light(due, date(2026, 9, 29), CAL, settled=False) is Light.GREEN  # Wed 09-30 and 10-08 left
    assert light(due, date(2026, 9, 30), CAL, settled=False) is Light.YELLOW  # only 10-08 left
    assert light(due, date(2026, 10, 3), CAL, settled=False) is Light.YELLOW  # holiday
    assert light(due, date(2026, 10, 8), CAL, settled=False) is Light.YELLOW
    assert light(due, date(2026, 10, 9), CAL, settled=False) is Light.RED


def test_a_makeup_saturday_before_the_due_day_counts_as_a_working_day_left() -> None:
    due = date(2026, 10, 12)  # Mon; Sat 10-10 is worked, Sun 10-11 is not
    assert light(due, date(2026, 10, 9), CAL, settled=False) is Light.GREEN  # Sat 10-10 and Mon left
    assert light(due, date(2026, 10, 10), CAL, settled=False) is Light.YELLOW  # only Mon left


def test_a_wider_yellow_threshold_turns_yellow_earlier() -> None:
    assert light(DUE_MON, date(2026, 3, 4), CAL, settled=False, yellow_working_days=2) is Light.GREEN
    assert light(DUE_MON, date(2026, 3, 5), CAL, settled=False, yellow_working_days=2) is Light.YELLOW


def test_a_zero_threshold_is_yellow_on_the_due_day_only() -> None:
    # Fri with a Monday due day: only Mon is left, 1 > 0 → green; the due day itself: 0 → yellow
    assert light(DUE_MON, date(2026, 3, 6), CAL, settled=False, yellow_working_days=0) is Light.GREEN
    assert light(DUE_MON, date(2026, 3, 8), CAL, settled=False, yellow_working_days=0) is Light.GREEN
    assert light(DUE_MON, date(2026, 3, 9), CAL, settled=False, yellow_working_days=0) is Light.YELLOW


def test_a_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        light(DUE_MON, date(2026, 3, 4), CAL, settled=False, yellow_working_days=-1)


def test_light_values_are_the_strings_the_dashboard_shows() -> None:
    assert [str(x) for x in Light] == ["green", "yellow", "red"]


def test_the_light_of_a_due_date_from_the_rules_end_to_end() -> None:
    # G-04-loser from Mon 2026-09-28 is due Sat 10-10: yellow from Fri 10-09, red on Sun 10-11
    due = due_date("G-04-loser", date(2026, 9, 28), CAL)
    assert [light(due, date(2026, 10, d), CAL, settled=False) for d in (8, 9, 10, 11)] == [
        Light.GREEN,
        Light.YELLOW,
        Light.YELLOW,
        Light.RED,
    ]
