"""Tests for trading.lifecycle: the transition table built from a profile's steps is the whole state machine,
and nothing leaves an end."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.profiles import PROFILES, WORKS_OPEN, ProcedureProfile, Step, profile_for
from trading import lifecycle
from trading.lifecycle import PUBLIC, TERMINAL, Action, IllegalTransition, TenderStatus, transitions

TRANSITIONS = transitions(WORKS_OPEN)


def next_status(status: TenderStatus, action: Action) -> TenderStatus:
    return lifecycle.next_status(WORKS_OPEN, status, action)


def allowed_actions(status: TenderStatus) -> list[Action]:
    return lifecycle.allowed_actions(WORKS_OPEN, status)


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


WALKS = [profile_for(p.sector, p.method, n) for p in PROFILES.values() for n in p.envelope_counts]


@pytest.mark.parametrize(
    "profile",
    WALKS,
    ids=lambda p: f"{p.sector}/{p.method}" + ("/2" if S.COMMERCIAL_OPENING.value in str(p.steps) else ""),
)
def test_every_non_terminal_state_has_a_way_out_and_every_state_is_reachable_from_draft(
    profile: ProcedureProfile,
) -> None:
    table = transitions(profile)
    used = {s for s, _a in table} | set(table.values())
    for status in used - TERMINAL:
        assert lifecycle.allowed_actions(profile, status), status
    reached, frontier = {S.DRAFT}, [S.DRAFT]
    while frontier:
        status = frontier.pop()
        for action in lifecycle.allowed_actions(profile, status):
            target = lifecycle.next_status(profile, status, action)
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == used


def test_every_state_belongs_to_some_procedure() -> None:
    used = set()
    for profile in PROFILES.values():
        for envelopes in profile.envelope_counts:
            table = transitions(profile_for(profile.sector, profile.method, envelopes))
            used |= {s for s, _a in table} | set(table.values())
    assert used == set(TenderStatus)


def test_a_tender_of_two_envelopes_opens_them_in_two_openings() -> None:
    two = profile_for("works", "open", 2)
    path = [
        (Action.CLOSE_BIDDING, S.OPENING),
        (Action.CLOSE_OPENING, S.TECHNICAL_EVALUATION),
        (Action.OPEN_COMMERCIAL, S.COMMERCIAL_OPENING),
        (Action.CLOSE_OPENING, S.EVALUATION),
    ]
    status = S.TENDERING
    for action, expected in path:
        status = lifecycle.next_status(two, status, action)
        assert status is expected
    with pytest.raises(IllegalTransition):
        lifecycle.next_status(two, S.OPENING, Action.OPEN_COMMERCIAL)
    assert profile_for("procurement", "rfq", 2) is profile_for("procurement", "rfq")


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


def test_the_works_table_is_the_one_the_works_profile_names() -> None:
    # Every step's action leads to the next step's state; the exits are the same for every procedure.
    steps = WORKS_OPEN.steps
    assert [s.state for s in steps] == [
        "draft",
        "published",
        "tendering",
        "opening",
        "evaluation",
        "publicity",
        "awarded",
        "contracted",
    ]
    for step, after in itertools.pairwise(steps):
        assert step.leads_to == after.state
    # ... and an upheld challenge or complaint may send the trade back to evaluation from the candidates'
    # publicity or the award (重新评审)
    reevaluation = 2
    assert len(TRANSITIONS) == (
        len(steps) + sum(s.may_fail for s in steps) + sum(s.may_cancel for s in steps) + 2 + reevaluation
    )
    assert {s for (s, a) in TRANSITIONS if a is Action.REEVALUATE} == {S.PUBLICITY, S.AWARDED}


def test_a_procedure_with_other_steps_gets_its_own_table() -> None:
    # A shorter procedure (a quotation: published, one sealed quote each, opened, awarded) is data: the
    # engine builds its table from the steps and refuses the works steps it does not have.
    quotation = dataclasses.replace(
        WORKS_OPEN,
        method="quotation",
        steps=(
            Step("draft", "publish", "published", may_cancel=True),
            Step("published", "issue_documents", "tendering", may_cancel=True),
            Step("tendering", "close_bidding", "opening", may_fail=True, may_cancel=True),
            Step("opening", "close_opening", "awarded", may_fail=True),
            Step("awarded", "sign_contracts", "contracted"),
            Step("contracted", "complete", "completed"),
        ),
    )
    assert (
        lifecycle.next_status(quotation, TenderStatus.OPENING, Action.CLOSE_OPENING) is TenderStatus.AWARDED
    )
    assert (
        lifecycle.next_status(WORKS_OPEN, TenderStatus.OPENING, Action.CLOSE_OPENING)
        is TenderStatus.EVALUATION
    )
    with pytest.raises(IllegalTransition, match="allowed now: nothing"):
        lifecycle.next_status(quotation, TenderStatus.EVALUATION, Action.SUBMIT_REPORT)
    assert lifecycle.allowed_actions(quotation, TenderStatus.UNSUCCESSFUL) == [Action.RETENDER]


def test_a_profile_naming_an_unknown_state_is_refused_when_its_table_is_built() -> None:
    broken = dataclasses.replace(WORKS_OPEN, method="broken", steps=(Step("draft", "publish", "nowhere"),))
    with pytest.raises(ValueError, match="nowhere"):
        transitions(broken)
