"""Whether a bid's deposit stood at the bid deadline (投标保证金是否在截止时间前到位): W-19, 条例 26, 51(6).

The documents require a deposit for a lot; a bid that lacks it at the deadline does not respond to a
substantive requirement and is rejected (W-19). The platform, not the committee, establishes the fact, from
what escrow held *at the deadline instant* — so the answer is the same whenever it is computed (a
chronograph that runs late cannot let a payment made after the deadline count):

- cash: what was credited to the bidder's sub-account *for this lot* before the deadline, less what was
  already on its way back to the payer (a refund instructed to the bank backs no bid);
- a guarantee (保函 / 保证保险): counts only if a centre officer verified it with its issuer before the
  deadline, it was not released before the deadline, it was in force on the deadline's day, and it stays
  in force through the last day of the bid validity period (投标有效期; 条例 26: the deposit's validity is the
  bid's validity).

Cash and guarantees do not add up: either the cash held or the verified guarantees cover what the lot
requires (a deposit is paid one way or the other; half in cash and half guaranteed is not a deposit the
documents ask for). A lot that requires nothing (M-05, waived) is always covered.

Pure logic: no I/O, no clock. Callers pass the deadline instant, its Shanghai calendar day and the last
day of the bid validity period; `answer` says yes or no, with every figure and the reason for each
guarantee that did not count, so the answer can be shown to the bidder, the room and an auditor as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from escrow.schemas import EligibilityEvidence

NO_DEPOSIT: Final = "no deposit"


@dataclass(frozen=True)
class Payment:
    """A bank line credited to the deposit: its bank reference, amount and when escrow took it in."""

    reference: str
    amount_fen: int
    credited_at: datetime


@dataclass(frozen=True)
class GuaranteeFact:
    """A guarantee lodged for the deposit, as escrow records it now (`status`) with the instants of its
    decision and release, so its state at the deadline can be told."""

    number: str
    issuer: str
    kind: str
    amount_fen: int
    valid_from: date
    valid_until: date
    status: str  # submitted, verified, rejected, released, claimed
    decided_at: datetime | None
    released_at: datetime | None
    verified: bool  # the issuer's confirmation was recorded (whatever happened to it since)


@dataclass(frozen=True)
class Position:
    """What escrow held for one bidder and one lot at the deadline.

    `held_fen` is the sub-account's posted balance at the deadline (credits less refunds paid before it);
    `returning_fen` the part of it instructed back to the bank and not yet confirmed (pending); `payments`
    every line credited to the deposit, before or after the deadline (those after are shown, not counted).
    """

    required_fen: int
    held_fen: int
    returning_fen: int
    payments: tuple[Payment, ...] = ()
    guarantees: tuple[GuaranteeFact, ...] = ()


@dataclass(frozen=True)
class GuaranteeVerdict:
    """One guarantee and whether it counted at the deadline; `why` says why not (empty when it counted)."""

    fact: GuaranteeFact
    counted: bool
    why: str


@dataclass(frozen=True)
class Answer:
    """The platform's answer for one bid: eligible or not, the cash and guarantee cover it found, each
    guarantee's verdict, what arrived too late, and a one-line detail for people to read."""

    eligible: bool
    waived: bool
    required_fen: int
    cash_fen: int
    returning_fen: int
    guarantee_fen: int
    late_fen: int
    guarantees: tuple[GuaranteeVerdict, ...]
    payments: tuple[Payment, ...]
    deadline: datetime
    cover_through: date
    detail: str

    @property
    def reason(self) -> str | None:
        """Why the bid does not respond (W-19), or None when it does."""
        return None if self.eligible else NO_DEPOSIT


def guarantee_verdict(
    g: GuaranteeFact, *, deadline: datetime, deadline_day: date, cover_through: date
) -> str:
    """Why guarantee `g` did not back a bid at `deadline` (empty when it did)."""
    if not g.verified or g.status == "rejected":
        return "refused by its issuer" if g.status == "rejected" else "not verified with its issuer"
    if g.decided_at is None or g.decided_at >= deadline:
        return "not verified with its issuer before the deadline"
    if g.released_at is not None and g.released_at < deadline:
        return "released before the deadline"
    if g.valid_from > deadline_day:
        return f"not in force until {g.valid_from.isoformat()}, after the deadline"
    if g.valid_until < cover_through:
        return (
            f"expires {g.valid_until.isoformat()}, before the bid validity period ends "
            f"{cover_through.isoformat()}"
        )
    return ""


def answer(position: Position, *, deadline: datetime, deadline_day: date, cover_through: date) -> Answer:
    """Whether `position` backed a bid at `deadline` (see the module's docstring for what counts)."""
    if deadline.tzinfo is None:
        raise ValueError("the deadline must be an aware instant")
    verdicts = tuple(
        GuaranteeVerdict(g, not why, why)
        for g in position.guarantees
        for why in (
            guarantee_verdict(g, deadline=deadline, deadline_day=deadline_day, cover_through=cover_through),
        )
    )
    required = position.required_fen
    cash = max(position.held_fen - position.returning_fen, 0)
    cover = sum(v.fact.amount_fen for v in verdicts if v.counted)
    late = sum(p.amount_fen for p in position.payments if p.credited_at >= deadline)
    waived = required <= 0
    eligible = waived or cash >= required or cover >= required
    return Answer(
        eligible=eligible,
        waived=waived,
        required_fen=max(required, 0),
        cash_fen=cash,
        returning_fen=position.returning_fen,
        guarantee_fen=cover,
        late_fen=late,
        guarantees=verdicts,
        payments=position.payments,
        deadline=deadline,
        cover_through=cover_through,
        detail=_detail(waived, eligible, required, cash, position.returning_fen, cover, late, cover_through),
    )


def _detail(
    waived: bool,
    eligible: bool,
    required: int,
    cash: int,
    returning: int,
    cover: int,
    late: int,
    cover_through: date,
) -> str:
    if waived:
        return "no deposit required (M-05)"
    found = f"cash {cash} fen held for this lot"
    if returning:
        found += f" ({returning} fen more on its way back to the payer)"
    found += f", verified guarantees valid through {cover_through.isoformat()} {cover} fen"
    if late:
        found += f"; {late} fen arrived after the deadline and do not count"
    if eligible:
        return f"deposit in place: {found}; {required} fen required"
    return f"{NO_DEPOSIT} at the deadline: {found}; {required} fen required"


def evidence(a: Answer) -> EligibilityEvidence:
    """The answer as JSON: what escrow found for the lot, as the bid's rejection (W-19) and the evaluation
    report quote it."""
    return {
        "eligible": a.eligible,
        "required_fen": a.required_fen,
        "cash_fen": a.cash_fen,
        "returning_fen": a.returning_fen,
        "guarantee_fen": a.guarantee_fen,
        "late_fen": a.late_fen,
        "deadline": a.deadline.isoformat(),
        "cover_through": a.cover_through.isoformat(),
        "payments": [
            {
                "reference": p.reference,
                "amount_fen": p.amount_fen,
                "credited_at": p.credited_at.isoformat(),
                "counted": p.credited_at < a.deadline,
            }
            for p in a.payments
        ],
        "guarantees": [
            {
                "kind": v.fact.kind,
                "issuer": v.fact.issuer,
                "number": v.fact.number,
                "amount_fen": v.fact.amount_fen,
                "valid_from": v.fact.valid_from.isoformat(),
                "valid_until": v.fact.valid_until.isoformat(),
                "counted": v.counted,
                "why_not": v.why or None,
            }
            for v in a.guarantees
        ],
        "detail": a.detail,
    }
