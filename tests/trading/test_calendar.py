"""Tests for rules.calendar: the P rules of RULES.md, the 2026 official schedule, loaded schedules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.calendar import (
    SHANGHAI,
    OfficialSchedule,
    ScheduleError,
    WorkingCalendar,
    deadline_instant,
    default_calendar,
    end_of_day,
    local_date,
    start_of_day,
)

CAL = default_calendar()

# The 2026 arrangement as the `holidays` package 0.109 gives it, which matches the State Council notice
# (国办发明电〔2025〕7号): holidays listed by the package (weekend days inside a spell are rest days anyway).
HOLIDAYS_2026 = {
    date(2026, 1, 1), date(2026, 1, 2),
    date(2026, 2, 16), date(2026, 2, 17), date(2026, 2, 18), date(2026, 2, 19), date(2026, 2, 20),
    date(2026, 2, 23),
    date(2026, 4, 5), date(2026, 4, 6),
    date(2026, 5, 1), date(2026, 5, 2), date(2026, 5, 4), date(2026, 5, 5),
    date(2026, 6, 19),
    date(2026, 9, 25),
    date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3), date(2026, 10, 5), date(2026, 10, 6),
    date(2026, 10, 7),
}  # fmt: skip
MAKEUP_WORKDAYS_2026 = {
    date(2026, 1, 4),  # Sun, for New Year
    date(2026, 2, 14),  # Sat, for Spring Festival
    date(2026, 2, 28),  # Sat, for Spring Festival
    date(2026, 5, 9),  # Sat, for Labour Day
    date(2026, 9, 20),  # Sun, for National Day
    date(2026, 10, 10),  # Sat, for National Day
}


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# --- worked examples in RULES.md -------------------------------------------------------------------------


def test_w01_bid_deadline_from_documents_issued_mon_2026_03_02_is_mon_2026_03_23() -> None:
    assert CAL.is_rest_day(date(2026, 3, 22))  # day + 20 is a Sunday
    assert CAL.earliest_after(date(2026, 3, 2), 20) == date(2026, 3, 23)


def test_w14_deposits_after_contract_signed_fri_2026_09_25_due_back_by_wed_2026_09_30() -> None:
    assert CAL.period_end(date(2026, 9, 25), 5) == date(2026, 9, 30)
    assert CAL.is_working_day(date(2026, 9, 30))


# --- the 2026 official schedule from the package -------------------------------------------------------


def test_package_2026_holidays_are_exactly_the_official_ones() -> None:
    assert CAL.schedule(2026).holidays == HOLIDAYS_2026


def test_package_2026_makeup_workdays_are_exactly_the_official_ones() -> None:
    assert CAL.schedule(2026).makeup_workdays == MAKEUP_WORKDAYS_2026


def test_national_day_2026_rest_runs_oct_1_to_7_with_sep_20_and_oct_10_worked() -> None:
    rest = [d for d in days(date(2026, 9, 19), date(2026, 10, 11)) if CAL.is_rest_day(d)]
    assert rest == [
        date(2026, 9, 19),  # Sat
        *days(date(2026, 9, 25), date(2026, 9, 27)),  # Mid-Autumn Festival (Fri) and the weekend
        *days(date(2026, 10, 1), date(2026, 10, 7)),  # National Day
        date(2026, 10, 11),  # Sun
    ]
    assert CAL.is_working_day(date(2026, 9, 20))  # Sunday, make-up working day
    assert CAL.is_working_day(date(2026, 10, 10))  # Saturday, make-up working day


def test_spring_festival_2026_rest_runs_feb_15_to_23_with_feb_14_and_28_worked() -> None:
    rest = [d for d in days(date(2026, 2, 14), date(2026, 3, 1)) if CAL.is_rest_day(d)]
    assert rest == [*days(date(2026, 2, 15), date(2026, 2, 23)), date(2026, 3, 1)]
    assert CAL.is_working_day(date(2026, 2, 14))
    assert CAL.is_working_day(date(2026, 2, 28))


def test_makeup_workday_announced_in_next_years_notice_is_a_working_day() -> None:
    # Sat 2001-12-29 was worked for New Year 2002; the package files it under 2002.
    assert CAL.is_working_day(date(2001, 12, 29))
    assert date(2001, 12, 29) in CAL.schedule(2001).makeup_workdays


def test_plain_weekend_is_rest_and_plain_weekday_is_working() -> None:
    assert CAL.is_rest_day(date(2026, 3, 7))  # Saturday
    assert CAL.is_working_day(date(2026, 3, 9))  # Monday


def test_default_calendar_is_shared_and_loads_nothing() -> None:
    assert default_calendar() is CAL
    assert CAL.loaded_years == frozenset()


# --- working-day arithmetic ------------------------------------------------------------------------------


def test_add_working_days_across_national_day_lands_on_saturday_makeup_day() -> None:
    # Thu 10-08, Fri 10-09, Sat 10-10 (make-up working day).
    assert CAL.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)
    assert CAL.working_days_between(date(2026, 9, 30), date(2026, 10, 10)) == 3


def test_add_working_days_over_holiday_week_skips_it() -> None:
    assert CAL.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert CAL.add_working_days(date(2026, 9, 30), 7) == date(2026, 10, 15)


def test_add_zero_working_days_is_the_start_day() -> None:
    assert CAL.add_working_days(date(2026, 10, 3), 0) == date(2026, 10, 3)


def test_add_negative_working_days_is_refused() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        CAL.add_working_days(date(2026, 3, 2), -1)


def test_working_days_between_excludes_start_and_includes_end() -> None:
    assert CAL.working_days_between(date(2026, 3, 2), date(2026, 3, 2)) == 0
    assert CAL.working_days_between(date(2026, 3, 2), date(2026, 3, 9)) == 5


def test_working_days_between_refuses_end_before_start() -> None:
    with pytest.raises(ValueError, match="before"):
        CAL.working_days_between(date(2026, 3, 9), date(2026, 3, 2))


def test_next_working_day_on_or_after_skips_spring_festival() -> None:
    assert CAL.next_working_day_on_or_after(date(2026, 2, 15)) == date(2026, 2, 24)
    assert CAL.next_working_day_on_or_after(date(2026, 2, 24)) == date(2026, 2, 24)


def test_period_end_on_working_day_is_not_moved() -> None:
    assert CAL.period_end(date(2026, 3, 2), 10) == date(2026, 3, 12)


def test_period_end_refuses_negative_days() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        CAL.period_end(date(2026, 3, 2), -1)


def test_earliest_after_in_working_days_counts_only_working_days() -> None:
    # G-13: at least 3 working days from an invitation on the Mid-Autumn holiday, Fri 2026-09-25.
    assert CAL.earliest_after(date(2026, 9, 25), 3, working_days=True) == date(2026, 9, 30)


def test_datetime_is_refused_where_a_local_date_is_expected() -> None:
    with pytest.raises(TypeError, match="local_date"):
        CAL.is_working_day(datetime(2026, 3, 2, tzinfo=UTC))


# --- instants --------------------------------------------------------------------------------------------


def test_local_date_refuses_naive_datetime() -> None:
    with pytest.raises(ValueError, match="naive"):
        local_date(datetime(2026, 3, 2, 12, 0))


def test_local_date_turns_over_at_shanghai_midnight() -> None:
    assert local_date(datetime(2026, 3, 22, 15, 59, 59, tzinfo=UTC)) == date(2026, 3, 22)
    assert local_date(datetime(2026, 3, 22, 16, 0, tzinfo=UTC)) == date(2026, 3, 23)
    assert local_date(datetime(2026, 3, 23, 1, 0, tzinfo=timezone(timedelta(hours=9)))) == date(2026, 3, 23)


def test_start_of_day_is_shanghai_midnight_in_utc() -> None:
    assert start_of_day(date(2026, 3, 23)) == datetime(2026, 3, 22, 16, 0, tzinfo=UTC)
    assert start_of_day(date(2026, 3, 23)).tzinfo is UTC


def test_end_of_day_is_24_00_shanghai_in_utc() -> None:
    assert end_of_day(date(2026, 3, 23)) == datetime(2026, 3, 23, 16, 0, tzinfo=UTC)
    assert end_of_day(date(2026, 3, 23)) == datetime(2026, 3, 24, 0, 0, tzinfo=SHANGHAI)


def test_deadline_instant_is_end_of_day_by_default() -> None:
    assert deadline_instant(date(2026, 3, 23)) == datetime(2026, 3, 23, 16, 0, tzinfo=UTC)
    assert CAL.deadline_instant(date(2026, 3, 23)) == end_of_day(date(2026, 3, 23))


def test_deadline_instant_at_close_of_business() -> None:
    assert deadline_instant(date(2026, 3, 23), close_of_business=time(17, 0)) == datetime(
        2026, 3, 23, 9, 0, tzinfo=UTC
    )


# --- loaded official schedules ---------------------------------------------------------------------------


def test_loaded_schedule_replaces_package_for_its_year_only() -> None:
    loaded = OfficialSchedule(year=2026, holidays=frozenset({date(2026, 3, 23)}))
    cal = WorkingCalendar([loaded])
    assert cal.loaded_years == frozenset({2026})
    assert cal.is_rest_day(date(2026, 3, 23))  # only the loaded schedule has it
    assert cal.is_working_day(date(2026, 10, 1))  # the package's National Day no longer applies
    assert cal.is_rest_day(date(2026, 10, 10))  # nor its make-up Saturday
    assert cal.earliest_after(date(2026, 3, 2), 20) == date(2026, 3, 24)
    assert cal.schedule(2027) == CAL.schedule(2027)


def test_loaded_makeup_workday_is_worked() -> None:
    loaded = OfficialSchedule(year=2026, holidays=frozenset(), makeup_workdays=frozenset({date(2026, 3, 22)}))
    assert WorkingCalendar([loaded]).period_end(date(2026, 3, 2), 20) == date(2026, 3, 22)


def test_two_schedules_for_one_year_are_refused() -> None:
    schedule = OfficialSchedule(year=2026, holidays=frozenset())
    with pytest.raises(ScheduleError, match="two schedules loaded for 2026"):
        WorkingCalendar([schedule, schedule])


def test_schedule_round_trips_through_dict() -> None:
    data = {"year": 2026, "holidays": ["2026-10-01", "2026-01-01"], "makeup_workdays": ["2026-10-10"]}
    schedule = OfficialSchedule.from_dict(data)
    assert schedule == OfficialSchedule(
        year=2026,
        holidays=frozenset({date(2026, 1, 1), date(2026, 10, 1)}),
        makeup_workdays=frozenset({date(2026, 10, 10)}),
    )
    assert schedule.to_dict() == {
        "year": 2026,
        "holidays": ["2026-01-01", "2026-10-01"],
        "makeup_workdays": ["2026-10-10"],
    }
    assert OfficialSchedule.from_dict(schedule.to_dict()) == schedule


def test_package_schedule_round_trips_through_dict() -> None:
    assert OfficialSchedule.from_dict(CAL.schedule(2026).to_dict()) == CAL.schedule(2026)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"year": 2026, "holidays": ["2027-01-01"]}, "holidays: 2027-01-01 is not in 2026"),
        (
            {"year": 2026, "holidays": [], "makeup_workdays": ["2025-12-27"]},
            "makeup_workdays: 2025-12-27 is not in 2026",
        ),
        (
            {"year": 2026, "holidays": ["2026-10-10"], "makeup_workdays": ["2026-10-10"]},
            "2026-10-10 cannot be both off and worked",
        ),
        (
            {"year": 2026, "holidays": [], "makeup_workdays": ["2026-10-09"]},
            "makeup_workdays: 2026-10-09 is a Friday",
        ),
        ({"year": 2026, "holidays": ["2026-02-30"]}, r"holidays\[0\]: '2026-02-30' is not a calendar date"),
        ({"year": 2026, "holidays": ["20260101"]}, r"holidays\[0\]: '20260101' is not a YYYY-MM-DD date"),
        (
            {"year": 2026, "holidays": ["2026-01-01", "2026-01-01"]},
            r"holidays\[1\]: 2026-01-01 is listed twice",
        ),
        ({"year": 2026, "holidays": "2026-01-01"}, "holidays: expected a list"),
        ({"year": "2026", "holidays": []}, "year: '2026' is not an integer"),
        ({"year": 0, "holidays": []}, "year: 0 is not a year"),
        ({"holidays": []}, "year: missing"),
        ({"year": 2026}, "holidays: missing"),
        ({"year": 2026, "holidays": [], "workdays": []}, "unknown field"),
    ],
)
def test_invalid_schedule_is_refused_naming_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        OfficialSchedule.from_dict(data)


def test_schedule_error_is_a_value_error() -> None:
    assert issubclass(ScheduleError, ValueError)


def test_schedule_built_directly_is_validated_too() -> None:
    with pytest.raises(ScheduleError, match="holidays: 2025-12-31 is not in 2026"):
        OfficialSchedule(year=2026, holidays=frozenset({date(2025, 12, 31)}))


# --- properties ------------------------------------------------------------------------------------------

some_dates = st.dates(min_value=date(2001, 1, 1), max_value=date(2035, 12, 31))


@given(d=some_dates, n=st.integers(min_value=1, max_value=60))
def test_add_working_days_lands_on_a_working_day(d: date, n: int) -> None:
    assert CAL.is_working_day(CAL.add_working_days(d, n))


@given(d=some_dates, n=st.integers(min_value=0, max_value=60))
def test_working_days_between_inverts_add_working_days(d: date, n: int) -> None:
    assert CAL.working_days_between(d, CAL.add_working_days(d, n)) == n


@given(d=some_dates, n=st.integers(min_value=0, max_value=60))
def test_period_end_is_the_first_working_day_on_or_after_start_plus_days(d: date, n: int) -> None:
    end = CAL.period_end(d, n)
    assert end >= d + timedelta(days=n)
    assert CAL.is_working_day(end)
    assert all(CAL.is_rest_day(day) for day in days(d + timedelta(days=n), end - timedelta(days=1)))


@given(instant=st.datetimes(timezones=st.just(UTC)))
def test_an_instant_lies_within_its_local_day(instant: datetime) -> None:
    day = local_date(instant)
    if date.min < day < date.max:
        assert start_of_day(day) <= instant < end_of_day(day)
