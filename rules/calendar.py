"""The working-day calendar and period arithmetic (期间计算) for Asia/Shanghai.

Every legal period in RULES.md is counted here, and only here, by the "P" rules (民法典 200–204):

- P-01: a period in days starts the day after the event; the start day is not counted.
- P-02: a period whose last day is a rest day ends on the next working day.
- P-03: the last day ends at 24:00 local time (or at the close of business where the act needs it).
- P-04: "at least N days from A to B" means B's day is no earlier than A's day + N, moved by P-02;
  working-day periods count working days only.

Instants are aware UTC datetimes; dates are Asia/Shanghai calendar dates. Working days are weekdays that
are not official holidays, plus the official make-up working days (调休上班) that fall on weekends. Each
year's rules come from the centre's loaded `OfficialSchedule` (the State Council's notice, published every
November) or, for a year with no loaded schedule, from the `holidays` package. Pure logic: no I/O, no clock.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, TypedDict
from zoneinfo import ZoneInfo

from holidays import country_holidays
from holidays.constants import PUBLIC

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")

_ONE_DAY: Final = timedelta(days=1)
_SATURDAY: Final = 5
# No official schedule has ever had a rest spell this long; reaching it means a schedule is broken,
# and stopping beats looping for ever.
_MAX_REST_RUN: Final = 366
_ISO_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SCHEDULE_FIELDS: Final = frozenset({"year", "holidays", "makeup_workdays"})


class ScheduleError(ValueError):
    """An official holiday schedule that cannot be right; the message names the field at fault."""


# --- instants and local dates (P-03) -------------------------------------------------------------------


def local_date(instant: datetime) -> date:
    """Return the Asia/Shanghai calendar date of an aware instant, the day that P-01 counts from.

    Naive datetimes are refused with ValueError: their zone is unknown, so their day is too.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("naive datetime: instants must carry a time zone (use aware UTC datetimes)")
    return instant.astimezone(SHANGHAI).date()


def start_of_day(d: date) -> datetime:
    """Return 00:00 Asia/Shanghai on `d` as an aware UTC instant (the first moment of a P-01 day)."""
    _require_date(d)
    return datetime.combine(d, time(0), tzinfo=SHANGHAI).astimezone(UTC)


def end_of_day(d: date) -> datetime:
    """Return 24:00 Asia/Shanghai on `d`, i.e. the start of the next day, as an aware UTC instant (P-03).

    The instant itself is already too late: an act is in time when it happens strictly before it.
    """
    _require_date(d)
    return start_of_day(d + _ONE_DAY)


def day_ending_at(instant: datetime) -> date:
    """Return the last day of a period that runs out at `instant` (P-03): for 24:00 on `d` (`end_of_day`),
    `d` itself, not the next day that instant starts."""
    return local_date(instant - timedelta(microseconds=1))


def deadline_instant(d: date, *, close_of_business: time | None = None) -> datetime:
    """Return the instant at which a period whose last day is `d` runs out (P-03), as aware UTC.

    By default that is 24:00 local (`end_of_day`). Where the act must be done within business hours,
    pass the centre's `close_of_business` (a naive local wall time such as 17:00), and the period ends then.
    """
    if close_of_business is None:
        return end_of_day(d)
    _require_date(d)
    if close_of_business.tzinfo is not None:
        raise ValueError("close_of_business is a local wall-clock time; give it without a time zone")
    return datetime.combine(d, close_of_business, tzinfo=SHANGHAI).astimezone(UTC)


# --- the official schedule --------------------------------------------------------------------------------


class ScheduleDict(TypedDict):
    """A year's official schedule as loaded (国务院办公厅 notice): the official holidays and the make-up
    working days (调休上班, weekend days worked) of `year`, each an Asia/Shanghai calendar date written
    YYYY-MM-DD, sorted."""

    year: int
    holidays: list[str]
    makeup_workdays: list[str]


@dataclass(frozen=True, slots=True)
class OfficialSchedule:
    """One year's official holiday arrangement (国务院办公厅 节假日安排通知), as the centre loads it.

    `holidays` are the days off (放假), weekends inside a holiday spell included or not, as the notice
    lists them; `makeup_workdays` are the weekend days worked instead (调休上班). Every date lies in
    `year`, no day is both, and every make-up working day is a Saturday or Sunday (P-02 treats weekends
    as rest days unless they are make-up working days).
    """

    year: int
    holidays: frozenset[date]
    makeup_workdays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if isinstance(self.year, bool) or not isinstance(self.year, int) or not 1 <= self.year <= 9999:
            raise ScheduleError(f"year: {self.year!r} is not a year between 1 and 9999")
        for field_name, days in (("holidays", self.holidays), ("makeup_workdays", self.makeup_workdays)):
            for day in days:
                if isinstance(day, datetime) or not isinstance(day, date):
                    raise ScheduleError(f"{field_name}: {day!r} is not a date")
            for day in sorted(days):
                if day.year != self.year:
                    raise ScheduleError(f"{field_name}: {day.isoformat()} is not in {self.year}")
        both = sorted(self.holidays & self.makeup_workdays)
        if both:
            listed = ", ".join(day.isoformat() for day in both)
            raise ScheduleError(f"holidays and makeup_workdays: {listed} cannot be both off and worked")
        for day in sorted(self.makeup_workdays):
            if day.weekday() < _SATURDAY:
                raise ScheduleError(
                    f"makeup_workdays: {day.isoformat()} is a {day.strftime('%A')}; "
                    "a make-up working day must fall on a Saturday or Sunday"
                )

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> OfficialSchedule:
        """Parse and validate `{"year": 2026, "holidays": ["2026-01-01", …], "makeup_workdays": […]}`.

        Dates are ISO `YYYY-MM-DD` strings; `makeup_workdays` may be left out. Raises ScheduleError naming
        the field for a missing or unknown key, a malformed or repeated date, a date outside the year, a day
        listed as both, or a make-up working day on a weekday.
        """
        unknown = sorted(set(data) - _SCHEDULE_FIELDS)
        if unknown:
            expected = "year, holidays, makeup_workdays"
            raise ScheduleError(f"unknown field(s): {', '.join(unknown)}; expected {expected}")
        if "year" not in data:
            raise ScheduleError("year: missing")
        if "holidays" not in data:
            raise ScheduleError("holidays: missing")
        year = data["year"]
        if isinstance(year, bool) or not isinstance(year, int):
            raise ScheduleError(f"year: {year!r} is not an integer")
        return cls(
            year=year,
            holidays=_parse_dates("holidays", data["holidays"]),
            makeup_workdays=_parse_dates("makeup_workdays", data.get("makeup_workdays", [])),
        )

    def to_dict(self) -> ScheduleDict:
        """Return the schedule in the `from_dict` shape, dates sorted, so it round-trips exactly."""
        return {
            "year": self.year,
            "holidays": [day.isoformat() for day in sorted(self.holidays)],
            "makeup_workdays": [day.isoformat() for day in sorted(self.makeup_workdays)],
        }


def _parse_dates(field_name: str, raw: object) -> frozenset[date]:
    if isinstance(raw, str | bytes) or not isinstance(raw, list | tuple):
        raise ScheduleError(f"{field_name}: expected a list of YYYY-MM-DD dates, got {type(raw).__name__}")
    days: set[date] = set()
    for index, item in enumerate(raw):
        if not isinstance(item, str) or not _ISO_DATE.fullmatch(item):
            raise ScheduleError(f"{field_name}[{index}]: {item!r} is not a YYYY-MM-DD date")
        try:
            day = date.fromisoformat(item)
        except ValueError:
            raise ScheduleError(f"{field_name}[{index}]: {item!r} is not a calendar date") from None
        if day in days:
            raise ScheduleError(f"{field_name}[{index}]: {item} is listed twice")
        days.add(day)
    return frozenset(days)


def _package_schedule(year: int) -> OfficialSchedule:
    """What the `holidays` package says about `year`, as an OfficialSchedule.

    The package's China calendar has no WORKDAY category (only PUBLIC and HALF_DAY); it records the make-up
    working days in `weekend_workdays` instead, taken from its substituted-holiday table. HALF_DAY days
    (Women's Day and the like) are off only for some people, so they are not rest days here.
    A make-up day can belong to the next year's notice (e.g. 2001-12-29 for New Year 2002), so the next
    year is asked too. Beyond the package's lunar tables (after 2100) only weekends remain.
    """
    public = country_holidays("CN", years=(year, year + 1) if year < 9999 else year, categories=(PUBLIC,))
    makeup = frozenset(day for day in public.weekend_workdays if day.year == year)
    days_off = frozenset(day for day in public if day.year == year) - makeup
    return OfficialSchedule(year=year, holidays=days_off, makeup_workdays=makeup)


# --- the working calendar ---------------------------------------------------------------------------------


class WorkingCalendar:
    """Working days and period arithmetic (P-01 to P-04) from loaded official schedules.

    A loaded schedule replaces the `holidays` package for its year entirely; other years fall back to the
    package (cached per year). The package knows official make-up working days only for the years whose
    notice it already carries, so the centre should load each new year's schedule when it is published.
    Instances are immutable; build a new one to load another schedule.
    """

    def __init__(self, schedules: Iterable[OfficialSchedule] = ()) -> None:
        loaded: dict[int, OfficialSchedule] = {}
        for schedule in schedules:
            if schedule.year in loaded:
                raise ScheduleError(f"year: two schedules loaded for {schedule.year}")
            loaded[schedule.year] = schedule
        self._loaded: Final = loaded
        # Filled lazily; concurrent fills compute the same value, so no lock is needed.
        self._cache: dict[int, OfficialSchedule] = dict(loaded)

    @property
    def loaded_years(self) -> frozenset[int]:
        """The years answered from a loaded official schedule rather than the package."""
        return frozenset(self._loaded)

    def schedule(self, year: int) -> OfficialSchedule:
        """Return the schedule in force for `year`: the loaded one, else the package's (P-02's rest days)."""
        cached = self._cache.get(year)
        if cached is None:
            cached = self._cache.setdefault(year, _package_schedule(year))
        return cached

    def is_working_day(self, d: date) -> bool:
        """Whether `d` is a working day (工作日): a make-up working day, or a weekday that is no holiday."""
        _require_date(d)
        schedule = self.schedule(d.year)
        if d in schedule.makeup_workdays:
            return True
        return d not in schedule.holidays and d.weekday() < _SATURDAY

    def is_rest_day(self, d: date) -> bool:
        """Whether `d` is a rest day for P-02: an official holiday, or a weekend day not worked by 调休."""
        return not self.is_working_day(d)

    def next_working_day_on_or_after(self, d: date) -> date:
        """Return `d` if it is a working day, else the first working day after the rest ends (P-02)."""
        _require_date(d)
        day = d
        for _ in range(_MAX_REST_RUN):
            if self.is_working_day(day):
                return day
            day += _ONE_DAY
        raise ScheduleError(f"no working day within {_MAX_REST_RUN} days from {d.isoformat()}")

    def add_working_days(self, d: date, n: int) -> date:
        """Return the n-th working day after `d` (P-01: `d` itself is not counted; P-04 working days).

        `n` must be at least 0; for n = 0 the answer is `d` itself, so that
        `working_days_between(d, add_working_days(d, n)) == n` holds for every n.
        """
        _require_date(d)
        if n < 0:
            raise ValueError(f"n must be 0 or more working days, got {n}")
        day = d
        for _ in range(n):
            day = self.next_working_day_on_or_after(day + _ONE_DAY)
        return day

    def working_days_between(self, a: date, b: date) -> int:
        """Count the working days in (a, b]: a is the start day P-01 leaves out, b is counted.

        Raises ValueError when b is before a.
        """
        _require_date(a)
        _require_date(b)
        if b < a:
            raise ValueError(f"b ({b.isoformat()}) is before a ({a.isoformat()})")
        count = 0
        day = a + _ONE_DAY
        while day <= b:
            count += self.is_working_day(day)
            day += _ONE_DAY
        return count

    def period_end(self, start: date, days: int) -> date:
        """Return the last day of a period of `days` calendar days that starts with the event on `start`.

        P-01: counting starts the day after `start`, so the last day is start + days; P-02: when that day
        is a rest day, the period ends on the first working day after the rest. `days` must be 0 or more.
        """
        _require_date(start)
        if days < 0:
            raise ValueError(f"days must be 0 or more, got {days}")
        return self.next_working_day_on_or_after(start + timedelta(days=days))

    def earliest_after(self, start: date, days: int, working_days: bool = False) -> date:
        """Return the earliest day B may fall on when B must be "at least `days` days" after A on `start`.

        P-04: B's day is no earlier than A's day + `days`, moved to the next working day by P-02 when it is
        a rest day (the same day as `period_end`); with `working_days=True` only working days are counted,
        so B is the `days`-th working day after A (`add_working_days`). Example: documents first issued
        Mon 2026-03-02, W-01's 20 days → Sun 2026-03-22 is a rest day → Mon 2026-03-23.
        """
        if working_days:
            return self.add_working_days(start, days)
        return self.period_end(start, days)

    @staticmethod
    def deadline_instant(d: date, *, close_of_business: time | None = None) -> datetime:
        """Return the instant the period ending on `d` runs out (P-03); see the module-level function."""
        return deadline_instant(d, close_of_business=close_of_business)


@functools.cache
def default_calendar() -> WorkingCalendar:
    """Return the shared calendar with no loaded schedules: every year from the `holidays` package."""
    return WorkingCalendar()


def _require_date(d: date) -> None:
    # A datetime is a date too, but its .date() is the UTC day, not the Shanghai one; make callers say which.
    if isinstance(d, datetime):
        raise TypeError("expected a date; convert instants with local_date() first")
