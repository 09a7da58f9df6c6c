"""The tender's state machine: one table of allowed transitions and one function that applies them.

States follow the trade from draft to completion (招标 → 投标 → 开标 → 评标 → 公示 → 定标 → 签约),
with the exits `unsuccessful` (流标), `cancelled` (终止) and `retender` (重新招标).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TenderStatus(StrEnum):
    """Where a tender stands."""

    DRAFT = "draft"
    PUBLISHED = "published"  # notice out, documents not yet issued
    TENDERING = "tendering"  # documents issued, bids accepted until the deadline
    OPENING = "opening"  # deadline passed, bids being opened in the online opening hall
    EVALUATION = "evaluation"  # committee at work
    PUBLICITY = "publicity"  # candidates published (中标候选人公示)
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
    SUBMIT_REPORT = "submit_report"
    AWARD = "award"
    SIGN_CONTRACTS = "sign_contracts"
    COMPLETE = "complete"
    CANCEL = "cancel"
    RETENDER = "retender"


S = TenderStatus
TRANSITIONS: dict[tuple[TenderStatus, Action], TenderStatus] = {
    (S.DRAFT, Action.PUBLISH): S.PUBLISHED,
    (S.PUBLISHED, Action.ISSUE_DOCUMENTS): S.TENDERING,
    (S.TENDERING, Action.CLOSE_BIDDING): S.OPENING,
    (S.TENDERING, Action.FAIL): S.UNSUCCESSFUL,
    (S.OPENING, Action.CLOSE_OPENING): S.EVALUATION,
    (S.OPENING, Action.FAIL): S.UNSUCCESSFUL,
    (S.EVALUATION, Action.SUBMIT_REPORT): S.PUBLICITY,
    (S.EVALUATION, Action.FAIL): S.UNSUCCESSFUL,
    (S.PUBLICITY, Action.AWARD): S.AWARDED,
    (S.AWARDED, Action.FAIL): S.UNSUCCESSFUL,
    (S.AWARDED, Action.SIGN_CONTRACTS): S.CONTRACTED,
    (S.CONTRACTED, Action.COMPLETE): S.COMPLETED,
    (S.DRAFT, Action.CANCEL): S.CANCELLED,
    (S.PUBLISHED, Action.CANCEL): S.CANCELLED,
    (S.TENDERING, Action.CANCEL): S.CANCELLED,
    (S.UNSUCCESSFUL, Action.RETENDER): S.RETENDER,
    (S.CANCELLED, Action.RETENDER): S.RETENDER,
}

TERMINAL = frozenset({S.COMPLETED, S.RETENDER})
# States in which the public can see the tender and its notices.
PUBLIC = frozenset(set(TenderStatus) - {S.DRAFT})


@dataclass(frozen=True)
class IllegalTransition(Exception):
    """The action is not allowed from the current state."""

    status: TenderStatus
    action: Action

    def __str__(self) -> str:
        allowed = sorted(a.value for (s, a) in TRANSITIONS if s == self.status)
        return (
            f"a tender that is {self.status.value} cannot {self.action.value.replace('_', ' ')}; "
            f"allowed now: {', '.join(allowed) or 'nothing'}"
        )


def next_status(status: TenderStatus, action: Action) -> TenderStatus:
    """The state `action` leads to from `status`, or IllegalTransition."""
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise IllegalTransition(status, action) from None


def allowed_actions(status: TenderStatus) -> list[Action]:
    """What may happen next, in table order."""
    return [a for (s, a) in TRANSITIONS if s == status]


# What a person asks for through the API; the others (issuing the documents, closing the bidding, failing,
# the report's submission) happen to the tender when their time or condition comes.
CALLER_ACTIONS = frozenset(
    {
        Action.PUBLISH,
        Action.CANCEL,
        Action.RETENDER,
        Action.CLOSE_OPENING,
        Action.AWARD,
        Action.SIGN_CONTRACTS,
        Action.COMPLETE,
    }
)
