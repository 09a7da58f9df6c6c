"""Tests for trading.lifecycle: the transition table is the whole state machine, and nothing leaves an end."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.lifecycle import (
    PUBLIC,
    TERMINAL,
    TRANSITIONS,
    Action,
    IllegalTransition,
    TenderStatus,
    allowed_actions,
    next_status,
)

S = TenderStatus
ILLEGAL = [(s, a) for s, a in itertools.product(TenderStatus, Action) if (s, a) not in TRANSITIONS]


def test_the_happy_path_runs_from_draft_to_completed() -> None:
    path = [
        (Action.PUBLISH, S.PUBLISHED),
        (Action.ISSUE_DOCUMENTS, S.TENDERING),
        (Action.CLOSE_BIDDING, S.OPENING),
        (Action.CLOSE_OPENING, S.EVALUATION),
        (Action.SUBMIT_REPORT, S.PUBLICITY),
        (Action.AWARD, S.AWARDED),
        (Action.SIGN_CONTRACTS, S.CONTRACTED),
        (Action.COMPLETE, S.COMPLETED),
    ]
    status = S.DRAFT
    for action, expected in path:
        status = next_status(status, action)
        assert status is expected


@pytest.mark.parametrize(("status", "action"), sorted(TRANSITIONS, key=str))
def test_every_listed_transition_leads_where_the_table_says(status: TenderStatus, action: Action) -> None:
    assert next_status(status, action) is TRANSITIONS[(status, action)]


@pytest.mark.parametrize(("status", "action"), ILLEGAL)
def test_every_unlisted_pair_is_an_illegal_transition_naming_what_is_allowed(
    status: TenderStatus, action: Action
) -> None:
    with pytest.raises(IllegalTransition) as refused:
        next_status(status, action)
    assert (refused.value.status, refused.value.action) == (status, action)
    allowed = sorted(a.value for (s, a) in TRANSITIONS if s == status)
    expected = (
        f"a tender that is {status.value} cannot {action.value.replace('_', ' ')}; "
        f"allowed now: {', '.join(allowed) or 'nothing'}"
    )
    assert str(refused.value) == expected


def test_the_message_lists_the_allowed_actions() -> None:
    with pytest.raises(IllegalTransition) as refused:
        next_status(S.TENDERING, Action.AWARD)
    assert str(refused.value) == (
        "a tender that is tendering cannot award; allowed now: cancel, close_bidding, fail"
    )


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_terminal_states_allow_nothing(status: TenderStatus) -> None:
    assert allowed_actions(status) == []
    for action in Action:
        with pytest.raises(IllegalTransition, match="allowed now: nothing"):
            next_status(status, action)


def test_the_terminal_states_are_completed_and_retender() -> None:
    assert {S.COMPLETED, S.RETENDER} == TERMINAL


def test_failed_and_terminated_tenders_can_only_be_re_run() -> None:
    # Failed (流标) and terminated (终止) tenders may only be re-run; nothing else leaves them.
    assert allowed_actions(S.UNSUCCESSFUL) == [Action.RETENDER]
    assert allowed_actions(S.CANCELLED) == [Action.RETENDER]


def test_every_non_terminal_state_has_a_way_out_and_every_state_is_reachable_from_draft() -> None:
    for status in set(TenderStatus) - TERMINAL:
        assert allowed_actions(status), status
    reached, frontier = {S.DRAFT}, [S.DRAFT]
    while frontier:
        status = frontier.pop()
        for action in allowed_actions(status):
            target = next_status(status, action)
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(TenderStatus)


def test_cancel_is_possible_only_before_the_deadline_passes() -> None:
    cancellable = {s for (s, a) in TRANSITIONS if a is Action.CANCEL}
    assert cancellable == {S.DRAFT, S.PUBLISHED, S.TENDERING}


def test_only_drafts_are_hidden_from_the_public() -> None:
    assert set(TenderStatus) - PUBLIC == {S.DRAFT}


def test_allowed_actions_follow_table_order() -> None:
    assert allowed_actions(S.OPENING) == [Action.CLOSE_OPENING, Action.FAIL]


@given(st.lists(st.sampled_from(list(Action)), max_size=40), st.sampled_from(list(TenderStatus)))
def test_any_sequence_of_actions_keeps_a_valid_status_and_never_leaves_a_terminal_state(
    actions: list[Action], start: TenderStatus
) -> None:
    status = start
    for action in actions:
        before = status
        try:
            status = next_status(status, action)
        except IllegalTransition:
            assert action not in allowed_actions(before)
            assert status is before
        else:
            assert action in allowed_actions(before)
            assert before not in TERMINAL
        assert isinstance(status, TenderStatus)
        if before in TERMINAL:
            assert status is before
