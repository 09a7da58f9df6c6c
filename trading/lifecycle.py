"""The trade's state machine: the table of allowed transitions, built from the steps of the procedure's
profile (`rules.profiles`), and one function that applies them.

States follow the trade from draft to completion (招标 → 投标 → 开标 → 评标 → 公示 → 定标 → 签约; a
procurement tender has the purchaser's decision where works have the candidates' publicity), with the exits `unsuccessful` (流标), `cancelled` (终止) and `retender` (重新招标).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rules.profiles import ProcedureProfile, Step


class TenderStatus(StrEnum):
    """Where a tender stands."""

    DRAFT = "draft"
    PUBLISHED = "published"  # notice out, documents not yet issued
    TENDERING = "tendering"  # documents issued, bids accepted until the deadline
    OPENING = "opening"  # deadline passed, bids being opened in the online opening hall
    # Two envelopes (双信封): the technical envelopes were opened; the committee judges them, and the agency
    # names the bids that passed, whose commercial envelopes alone are opened next.
    TECHNICAL_EVALUATION = "technical_evaluation"
    COMMERCIAL_OPENING = "commercial_opening"  # the passed bids' commercial envelopes opened in the hall
    NEGOTIATION = "negotiation"  # the panel negotiates with each supplier (竞争性谈判/磋商, procurement)
    FINAL_QUOTES = "final_quotes"  # the remaining suppliers seal their final quotes (最后报价)
    EVALUATION = "evaluation"  # committee at work
    PUBLICITY = "publicity"  # candidates published (中标候选人公示)
    DECISION = "decision"  # report received, the purchaser names the winner (采购人确定中标人, procurement)
    AWARDED = "awarded"  # award notice issued (中标通知书)
    CONTRACTED = "contracted"  # contracts signed
    COMPLETED = "completed"
    UNSUCCESSFUL = "unsuccessful"  # failed (流标), e.g. fewer than 3 bids (W-09)
    CANCELLED = "cancelled"  # terminated by the tenderer (终止招标)
    RETENDER = "retender"  # superseded by a new tender created from it


class Action(StrEnum):
    """What moves a tender; performed by a person or by the chronograph."""

    PUBLISH = "publish"
    ISSUE_DOCUMENTS = "issue_documents"
    CLOSE_BIDDING = "close_bidding"
    FAIL = "fail"
    CLOSE_OPENING = "close_opening"
    OPEN_COMMERCIAL = "open_commercial"
    CALL_FINAL_QUOTES = "call_final_quotes"
    CLOSE_FINAL_QUOTES = "close_final_quotes"
    SUBMIT_REPORT = "submit_report"
    REEVALUATE = "reevaluate"
    AWARD = "award"
    SIGN_CONTRACTS = "sign_contracts"
    COMPLETE = "complete"
    CANCEL = "cancel"
    RETENDER = "retender"


S = TenderStatus
Table = dict[tuple[TenderStatus, Action], TenderStatus]

TERMINAL = frozenset({S.COMPLETED, S.RETENDER})
# States in which the public can see the tender and its notices.
PUBLIC = frozenset(set(TenderStatus) - {S.DRAFT})

_tables: dict[tuple[Step, ...], Table] = {}


def transitions(profile: ProcedureProfile) -> Table:
    """The state machine of a procedure, built from its profile's steps: each step's action leads to the
    next state; a step that may fail or be terminated also leads to `unsuccessful` or `cancelled`; a failed
    or terminated trade may only be re-run. In step order, so `allowed_actions` lists them in that order."""
    table = _tables.get(profile.steps)
    if table is None:
        table = {}
        for step in profile.steps:
            state = TenderStatus(step.state)
            table[(state, Action(step.ends_by))] = TenderStatus(step.leads_to)
            if step.may_fail:
                table[(state, Action.FAIL)] = S.UNSUCCESSFUL
        for step in profile.steps:
            if step.may_cancel:
                table[(TenderStatus(step.state), Action.CANCEL)] = S.CANCELLED
        for state in _reevaluable(profile):
            table[(state, Action.REEVALUATE)] = S.EVALUATION
        if profile.framework_term_max_days is not None:
            # an open framework (开放式框架协议) has no first stage: its call makes the agreement, from the draft
            table[(S.DRAFT, Action.AWARD)] = S.AWARDED
        table[(S.UNSUCCESSFUL, Action.RETENDER)] = S.RETENDER
        table[(S.CANCELLED, Action.RETENDER)] = S.RETENDER
        _tables[profile.steps] = table
    return table


def _reevaluable(profile: ProcedureProfile) -> list[TenderStatus]:
    """The states from which an upheld challenge or complaint may send the trade back to its committee (重新评审,
    87号令 64): from the report (the candidates' publicity or the purchaser's decision) until the award is
    contracted."""
    evaluation = next((s for s in profile.steps if s.state == S.EVALUATION.value), None)
    if evaluation is None:
        return []
    after = TenderStatus(evaluation.leads_to)
    present = {TenderStatus(s.state) for s in profile.steps}
    return [state for state in (after, S.AWARDED) if state in present]


@dataclass(frozen=True)
class IllegalTransition(Exception):
    """The action is not allowed from the current state."""

    status: TenderStatus
    action: Action
    allowed: tuple[Action, ...] = ()

    def __str__(self) -> str:
        allowed = sorted(a.value for a in self.allowed)
        return (
            f"a tender that is {self.status.value} cannot {self.action.value.replace('_', ' ')}; "
            f"allowed now: {', '.join(allowed) or 'nothing'}"
        )


def next_status(profile: ProcedureProfile, status: TenderStatus, action: Action) -> TenderStatus:
    """The state `action` leads to from `status` in the procedure of `profile`, or IllegalTransition."""
    try:
        return transitions(profile)[(status, action)]
    except KeyError:
        raise IllegalTransition(status, action, tuple(allowed_actions(profile, status))) from None


def allowed_actions(profile: ProcedureProfile, status: TenderStatus) -> list[Action]:
    """What may happen next, in step order."""
    return [a for (s, a) in transitions(profile) if s == status]


# What a person asks for through the API; the others (issuing the documents, closing the bidding, failing,
# the report's submission, the re-evaluation an upheld challenge or complaint orders) happen to the tender
# when their time or condition comes.
CALLER_ACTIONS = frozenset(
    {
        Action.PUBLISH,
        Action.CANCEL,
        Action.RETENDER,
        Action.CLOSE_OPENING,
        Action.OPEN_COMMERCIAL,
        Action.CALL_FINAL_QUOTES,
        Action.AWARD,
        Action.SIGN_CONTRACTS,
        Action.COMPLETE,
    }
)
