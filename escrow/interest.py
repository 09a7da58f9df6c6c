"""Interest on deposits (W-14, M-01, M-02) and the late-refund occupancy fee (G-04, M-03), in fen.

Day count: the banks' demand-deposit convention, actual days over a 360-day year (M-01). Rates come from a
dated table the centre maintains (M-02: never a hard-coded rate), and each day uses the rate in force on
that day. The sum over the rate segments is kept exact (as a fraction, no intermediate rounding) and
rounded half-up to the fen once, at the end (M-04), so splitting a period never changes the sum by more
than the final rounding. Pure logic: no I/O, no clock.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Final

DAYS_PER_YEAR: Final = 360  # M-01: the banks' convention for demand deposits, and for loan interest
OCCUPANCY_MARKUP: Final = Decimal("1.2")  # M-03: "lending rate + 20%" is the rate raised by a fifth
_EXACT_PLACES: Final = Decimal(1).scaleb(-20)  # `exact` is shown to 1e-20 fen; the rounding uses the fraction


@dataclass(frozen=True)
class Rate:
    """An annual rate in percent (0.35 means 0.35% a year), in force from `effective_from` until the next."""

    effective_from: date
    annual_percent: Decimal

    def __post_init__(self) -> None:
        # a float rate has already lost the decimal the centre typed in; refuse it rather than guess
        if not isinstance(self.annual_percent, Decimal) or not self.annual_percent.is_finite():
            raise TypeError(f"The rate from {self.effective_from} must be a finite Decimal.")
        if self.annual_percent < 0:
            raise ValueError(f"The rate from {self.effective_from} is negative ({self.annual_percent}%).")


class RateTable:
    """A dated table of annual rates: each rate is in force from its date until the next one's."""

    def __init__(self, rates: Iterable[Rate]) -> None:
        """Sort the rates by date; two rates from the same date are a ValueError (which one would hold?)."""
        ordered = sorted(rates, key=lambda r: r.effective_from)
        for before, after in itertools.pairwise(ordered):
            if before.effective_from == after.effective_from:
                raise ValueError(f"Two rates take effect on {after.effective_from}.")
        self._rates: tuple[Rate, ...] = tuple(ordered)
        self._dates: tuple[date, ...] = tuple(r.effective_from for r in ordered)

    @property
    def rates(self) -> tuple[Rate, ...]:
        """The rates in date order."""
        return self._rates

    def _index(self, day: date) -> int:
        i = bisect.bisect_right(self._dates, day) - 1
        if i < 0:
            first = f"; the table starts on {self._dates[0]}" if self._dates else "; the table is empty"
            raise LookupError(f"No rate is in force on {day}{first}.")
        return i

    def rate_on(self, day: date) -> Decimal:
        """The annual percent in force on `day`; before the first rate, a LookupError naming the day."""
        return self._rates[self._index(day)].annual_percent

    def segments(self, start: date, end_exclusive: date) -> list[tuple[date, date, Decimal]]:
        """The days from `start` up to but excluding `end_exclusive`, as maximal runs of one rate:
        (first day, day after the last, annual percent). Empty when the range is empty; a range that
        ends before it starts is a ValueError; a start before the first rate is a LookupError."""
        if end_exclusive < start:
            raise ValueError(f"The period ends ({end_exclusive}) before it starts ({start}).")
        if end_exclusive == start:
            return []
        i = self._index(start)
        out: list[tuple[date, date, Decimal]] = []
        cursor = start
        while cursor < end_exclusive:
            following = self._dates[i + 1] if i + 1 < len(self._dates) else None
            stop = end_exclusive if following is None else min(following, end_exclusive)
            rate = self._rates[i].annual_percent
            if out and out[-1][2] == rate:
                # two table rows with the same rate are one run: the auditor sees one line, not two
                out[-1] = (out[-1][0], stop, rate)
            else:
                out.append((cursor, stop, rate))
            cursor, i = stop, i + 1
        return out


@dataclass(frozen=True)
class InterestLine:
    """One run of days at one rate: `amount` is that run's exact (unrounded) share in fen."""

    start: date
    end_exclusive: date
    days: int
    annual_percent: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Interest:
    """An interest (or fee) figure: the exact sum in fen, the fen amount rounded half-up once, and the lines."""

    principal_fen: int
    days: int
    exact: Decimal
    amount_fen: int
    lines: tuple[InterestLine, ...]


def _to_decimal(value: Fraction) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 80  # enough for any 64-bit principal and any rate the table holds, to 1e-20 fen
        return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(_EXACT_PLACES)


def _half_up(value: Fraction) -> int:
    # exact half-up on the rational value: no binary or decimal rounding can turn 0.5 into 0.4999…
    return int((value + Fraction(1, 2)) // 1)


def _accrue(principal_fen: int, segments: list[tuple[date, date, Decimal]], markup: Decimal) -> Interest:
    lines: list[InterestLine] = []
    total = Fraction(0)
    for start, stop, percent in segments:
        applied = percent * markup
        days = (stop - start).days
        # principal × (percent ÷ 100) ÷ 360 × days, as a fraction: exact whatever the rate's digits
        share = Fraction(principal_fen) * Fraction(applied) * days / (100 * DAYS_PER_YEAR)
        total += share
        lines.append(InterestLine(start, stop, days, applied, _to_decimal(share)))
    return Interest(
        principal_fen=principal_fen,
        days=sum(line.days for line in lines),
        exact=_to_decimal(total),
        amount_fen=_half_up(total),
        lines=tuple(lines),
    )


def _check_principal(principal_fen: int) -> None:
    if type(principal_fen) is not int or principal_fen < 0:
        raise ValueError(f"The principal must be a non-negative whole number of fen, not {principal_fen!r}.")


def deposit_interest(principal_fen: int, arrived: date, refunded: date, table: RateTable) -> Interest:
    """Bank demand-deposit interest on a deposit held from `arrived` until it is refunded (W-14, M-01–M-04).

    Interest accrues for each day from the arrival day up to the day before the refund day, so
    `days = (refunded − arrived).days` and a refund on the arrival day earns nothing. Each day earns
    principal × (the annual percent in force that day ÷ 100) ÷ 360; the days are grouped into runs of one
    rate (the `lines`), summed exactly, and rounded half-up to the fen once. A negative principal or a
    refund before the arrival is a ValueError; a day before the table's first rate is a LookupError."""
    _check_principal(principal_fen)
    if refunded < arrived:
        raise ValueError(f"The refund ({refunded}) cannot precede the deposit's arrival ({arrived}).")
    return _accrue(principal_fen, table.segments(arrived, refunded), Decimal(1))


def occupancy_fee(principal_fen: int, due: date, paid: date, lpr: RateTable) -> Interest:
    """The fee for holding a procurement deposit past its refund deadline (G-04, M-03).

    `due` is the last day on which the refund is on time (the 5th working day after the award notice or
    the contract). Each day late is charged: the days from the day after `due` up to and including
    `paid`, so `days = (paid − due).days` (逾期天数 = the refund day minus the due day) and a refund on
    or before `due` owes nothing. Counting `paid` and not `due` mirrors M-01, which counts the arrival day
    and not the refund day: both count the difference of the dates. Each late day costs principal ×
    (the one-year LPR in force that day × 1.2 ÷ 100) ÷ 360 ("the lending rate plus 20%", a fifth more,
    not 20 points); the lines show that applied rate. Summed exactly, rounded half-up to the fen once."""
    _check_principal(principal_fen)
    if paid <= due:
        return Interest(principal_fen, 0, _to_decimal(Fraction(0)), 0, ())
    return _accrue(
        principal_fen, lpr.segments(due + timedelta(days=1), paid + timedelta(days=1)), OCCUPANCY_MARKUP
    )
