"""escrow.eligibility: whether a deposit stood at the bid deadline (W-19), from escrow's facts alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escrow.eligibility import GuaranteeFact, Payment, Position, answer, evidence, guarantee_verdict

DEADLINE = datetime(2026, 3, 23, 2, 0, tzinfo=UTC)  # 10:00 Shanghai
DAY = date(2026, 3, 23)
THROUGH = date(2026, 6, 21)
REQUIRED = 80_000_000
BEFORE = DEADLINE - timedelta(days=3)
AFTER = DEADLINE + timedelta(minutes=1)

GOOD = GuaranteeFact(
    number="BG-1",
    issuer="中国建设银行南京分行",
    kind="bank_guarantee",
    amount_fen=REQUIRED,
    valid_from=date(2026, 3, 1),
    valid_until=THROUGH,
    status="verified",
    decided_at=BEFORE,
    released_at=None,
    verified=True,
)


def at_deadline(position: Position) -> bool:
    return answer(position, deadline=DEADLINE, deadline_day=DAY, cover_through=THROUGH).eligible


def test_cash_held_for_the_lot_covers_the_deposit() -> None:
    assert at_deadline(Position(REQUIRED, REQUIRED, 0))
    assert not at_deadline(Position(REQUIRED, REQUIRED - 1, 0))


def test_cash_on_its_way_back_backs_nothing() -> None:
    found = answer(
        Position(REQUIRED, REQUIRED, REQUIRED), deadline=DEADLINE, deadline_day=DAY, cover_through=THROUGH
    )
    assert (found.eligible, found.cash_fen, found.returning_fen, found.reason) == (
        False,
        0,
        REQUIRED,
        "no deposit",
    )
    assert "on its way back" in found.detail


def test_payments_after_the_deadline_are_shown_late_and_not_counted() -> None:
    late = Payment("L1", REQUIRED, AFTER)
    found = answer(
        Position(REQUIRED, 0, 0, payments=(late,)), deadline=DEADLINE, deadline_day=DAY, cover_through=THROUGH
    )
    assert (found.eligible, found.late_fen) == (False, REQUIRED)
    assert evidence(found)["payments"] == [
        {"reference": "L1", "amount_fen": REQUIRED, "credited_at": AFTER.isoformat(), "counted": False}
    ]


def test_a_waived_deposit_is_always_in_place() -> None:
    found = answer(Position(0, 0, 0), deadline=DEADLINE, deadline_day=DAY, cover_through=THROUGH)
    assert (found.eligible, found.waived, found.detail) == (True, True, "no deposit required (M-05)")


def test_a_verified_guarantee_in_force_through_the_validity_period_covers_the_deposit() -> None:
    assert at_deadline(Position(REQUIRED, 0, 0, guarantees=(GOOD,)))


@pytest.mark.parametrize(
    ("fact", "why"),
    [
        (
            replace(GOOD, valid_until=THROUGH - timedelta(days=1)),
            "expires 2026-06-20, before the bid validity period ends 2026-06-21",
        ),
        (replace(GOOD, status="submitted", decided_at=None, verified=False), "not verified with its issuer"),
        (replace(GOOD, status="rejected", verified=False), "refused by its issuer"),
        (replace(GOOD, decided_at=DEADLINE), "not verified with its issuer before the deadline"),
        (replace(GOOD, decided_at=AFTER), "not verified with its issuer before the deadline"),
        (replace(GOOD, status="released", released_at=BEFORE), "released before the deadline"),
        (
            replace(GOOD, valid_from=DAY + timedelta(days=1)),
            "not in force until 2026-03-24, after the deadline",
        ),
    ],
    ids=[
        "expires-early",
        "unverified",
        "refused",
        "verified-at-deadline",
        "verified-late",
        "released",
        "future",
    ],
)
def test_a_guarantee_that_does_not_stand_at_the_deadline_covers_nothing(
    fact: GuaranteeFact, why: str
) -> None:
    found = answer(
        Position(REQUIRED, 0, 0, guarantees=(fact,)),
        deadline=DEADLINE,
        deadline_day=DAY,
        cover_through=THROUGH,
    )
    assert found.eligible is False
    assert [v.why for v in found.guarantees] == [why]


def test_a_standing_guarantee_for_less_than_required_is_not_enough() -> None:
    short = replace(GOOD, amount_fen=REQUIRED - 1)
    found = answer(
        Position(REQUIRED, 0, 0, guarantees=(short,)),
        deadline=DEADLINE,
        deadline_day=DAY,
        cover_through=THROUGH,
    )
    assert (found.eligible, found.guarantee_fen, [v.counted for v in found.guarantees]) == (
        False,
        REQUIRED - 1,
        [True],
    )


def test_a_guarantee_released_after_the_deadline_still_stood_at_it() -> None:
    released = replace(GOOD, status="released", released_at=AFTER)
    assert guarantee_verdict(released, deadline=DEADLINE, deadline_day=DAY, cover_through=THROUGH) == ""


def test_cash_and_guarantees_do_not_add_up() -> None:
    half = replace(GOOD, amount_fen=REQUIRED // 2)
    assert not at_deadline(Position(REQUIRED, REQUIRED // 2, 0, guarantees=(half,)))


def test_a_naive_deadline_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        answer(Position(1, 1, 0), deadline=datetime(2026, 3, 23, 10), deadline_day=DAY, cover_through=THROUGH)


fen = st.integers(min_value=0, max_value=10**12)


@given(fen, fen, fen, fen)
def test_more_cash_never_turns_an_answer_to_no(required: int, held: int, returning: int, extra: int) -> None:
    returning = min(returning, held)
    before = at_deadline(Position(required, held, returning))
    after = at_deadline(Position(required, held + extra, returning))
    assert not before or after


@given(fen, fen, fen, st.lists(st.tuples(fen, st.integers(-10_000, 10_000)), max_size=4))
def test_the_answer_is_the_arithmetic_of_what_stood_at_the_deadline(
    required: int, held: int, returning: int, payments: list[tuple[int, int]]
) -> None:
    returning = min(returning, held)
    lines = tuple(
        Payment(f"P{i}", amount, DEADLINE + timedelta(seconds=s)) for i, (amount, s) in enumerate(payments)
    )
    found = answer(
        Position(required, held, returning, payments=lines),
        deadline=DEADLINE,
        deadline_day=DAY,
        cover_through=THROUGH,
    )
    assert found.eligible == (required == 0 or held - returning >= required)
    assert found.cash_fen == held - returning
    assert found.late_fen == sum(p.amount_fen for p in lines if p.credited_at >= DEADLINE)
    assert found.reason == (None if found.eligible else "no deposit")


@given(st.integers(min_value=-200, max_value=200))
def test_a_guarantee_counts_exactly_when_it_runs_through_the_validity_period(offset: int) -> None:
    fact = replace(GOOD, valid_until=THROUGH + timedelta(days=offset))
    assert at_deadline(Position(REQUIRED, 0, 0, guarantees=(fact,))) == (offset >= 0)
