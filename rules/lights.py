"""The supervision lights of S-01 (电子监察 红黄灯): every time-limited step shows yellow when its due day is
near (by default one working day left) and red once it is missed. Pure calendar logic, shared by every
package that has a step with a legal due day (refunds, awards, contracts, objections, complaints)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from rules.calendar import WorkingCalendar


class Light(StrEnum):
    """The supervision light of a time-limited step (电子监察 红黄灯, S-01)."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


def working_days_left(due: date, today: date, cal: WorkingCalendar) -> int:
    """The signed working-day distance from `today` to `due`: the working days in (today, due].

    0 on the due day itself (it is still in time until 24:00, P-03), 1 on the working day before it and
    on the rest days just before it (only the due day is left). Past the due day it is minus the working
    days in (due, today], so on rest days right after a missed due day it is still 0: whether a step is
    late is `today > due` (see `light`), not the sign of this count.
    """
    if today <= due:
        return cal.working_days_between(today, due)
    return -cal.working_days_between(due, today)


def light(
    due: date,
    today: date,
    cal: WorkingCalendar,
    settled: bool,
    *,
    yellow_working_days: int = 1,
) -> Light:
    """The S-01 light of a step due on `due`, seen on `today`.

    Green once `settled` (paid, whenever that was) or while more than `yellow_working_days` working
    days are left; yellow when at most that many are left (by default the working day before the due
    day, any rest days between, and the due day itself); red once `today > due` and it is not settled.
    """
    if isinstance(yellow_working_days, bool) or yellow_working_days < 0:
        raise ValueError(f"yellow_working_days must be 0 or more, got {yellow_working_days!r}")
    if settled:
        return Light.GREEN
    if today > due:
        return Light.RED
    if working_days_left(due, today, cal) <= yellow_working_days:
        return Light.YELLOW
    return Light.GREEN
