"""Procedure profiles: the legal rules of RULES.md as data, keyed by sector and method.

A centre may tighten a value (a longer period, a lower cap) but never loosen a legal minimum;
`tighten` enforces that. Every legal value carries the id of the rule it comes from, so a refusal can cite
it; the few house values the law gives no figure for (the bid validity period) carry none.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

FEN_PER_YUAN = 100


@dataclass(frozen=True)
class Step:
    """One step of a procedure: the state a trade is in while the step lasts, the action that ends it and the
    state that action leads to, the profile field (and so the rule) that bounds it, and whether the trade
    may fail (流标) or be terminated (终止) during it. Failing, terminating and re-running are the same exits
    in every procedure: a failed or terminated trade may only be re-run."""

    state: str
    ends_by: str
    leads_to: str
    bounded_by: str | None = None
    may_fail: bool = False
    may_cancel: bool = False


# From the draft to the bids in hand, the same in every tendering procedure: published, documents issued,
# bids until the deadline (the period bounds both), the opening.
UP_TO_OPENING = (
    Step("draft", "publish", "published", may_cancel=True),
    Step("published", "issue_documents", "tendering", "documents_to_deadline_days", may_cancel=True),
    Step(
        "tendering", "close_bidding", "opening", "documents_to_deadline_days", may_fail=True, may_cancel=True
    ),
)
# From the award on: the contracts, then completion.
FROM_AWARD = (
    Step("awarded", "sign_contracts", "contracted", "contract_within_days", may_fail=True),
    Step("contracted", "complete", "completed"),
)

# Two envelopes (双信封): the opening reads out the technical envelopes only; after the technical evaluation
# the agency names the bids that passed, whose commercial envelopes alone are opened in a second opening,
# prices read out there; then the evaluation. A tender of one envelope never enters these states.
# They take the place of the opening step (`two_envelope_steps`).
TWO_ENVELOPES = (
    Step("opening", "close_opening", "technical_evaluation", "opening_window_minutes", may_fail=True),
    Step("technical_evaluation", "open_commercial", "commercial_opening", may_fail=True),
    Step("commercial_opening", "close_opening", "evaluation", "opening_window_minutes", may_fail=True),
)


def two_envelope_steps(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """A procedure's steps for a tender of two envelopes: its opening is the technical opening, then the
    technical evaluation and the commercial opening, before the evaluation."""
    out: list[Step] = []
    for step in steps:
        if step.state == "opening" and step.leads_to == "evaluation":
            out.extend(TWO_ENVELOPES)
        else:
            out.append(step)
    return tuple(out)


# The steps of a works tender (招标 → 投标 → 开标 → 评标 → 公示 → 定标 → 签约).
WORKS_STEPS = (
    *UP_TO_OPENING,
    Step("opening", "close_opening", "evaluation", "opening_window_minutes", may_fail=True),
    Step("evaluation", "submit_report", "publicity", "publish_candidates_within_days", may_fail=True),
    Step("publicity", "award", "awarded", "publicity_min_days"),
    *FROM_AWARD,
)

# The purchaser's decision on the committee's ranking, announced with the award (G-11): no candidates'
# publicity in procurement.
PURCHASER_DECIDES = (
    Step("evaluation", "submit_report", "decision", may_fail=True),
    Step("decision", "award", "awarded", "award_decision_working_days", may_fail=True),
)

# The steps of a government procurement tender (采购公告 → 投标 → 开标 → 评标 → 采购人确定中标人 → 结果公告 → 合同).
PROCUREMENT_TENDER_STEPS = (
    *UP_TO_OPENING,
    Step("opening", "close_opening", "evaluation", "opening_window_minutes", may_fail=True),
    *PURCHASER_DECIDES,
    *FROM_AWARD,
)

# Competitive negotiation and consultation (竞争性谈判 / 竞争性磋商): after the first responses are opened the
# panel negotiates with each supplier separately, in rounds, amending the requirements for all who remain;
# then the remaining suppliers seal their final quotes, opened together, and the panel evaluates them.
NEGOTIATED_STEPS = (
    *UP_TO_OPENING,
    Step("opening", "close_opening", "negotiation", "opening_window_minutes", may_fail=True),
    Step("negotiation", "call_final_quotes", "final_quotes", may_fail=True),
    Step("final_quotes", "close_final_quotes", "evaluation", "final_quote_reveal_minutes", may_fail=True),
    *PURCHASER_DECIDES,
    *FROM_AWARD,
)

# A closed framework agreement (封闭式框架协议, 110号令): the first stage is an open call for suppliers walked as
# open tendering up to the purchaser's decision, which admits several suppliers per lot (入围), each at its
# own capped price, for the agreement's term; the orders of the second stage (直接选定, 二次竞价) follow while
# the agreement is in force, and the purchaser closes it when the term is over.
FRAMEWORK_STEPS = (
    *UP_TO_OPENING,
    Step("opening", "close_opening", "evaluation", "opening_window_minutes", may_fail=True),
    Step("evaluation", "submit_report", "decision", may_fail=True),
    Step("decision", "award", "awarded", "award_decision_working_days", may_fail=True),
    Step("awarded", "complete", "completed", "framework_term_max_days"),
)


@dataclass(frozen=True)
class ProcedureProfile:
    """The periods, caps and counts one procedure (sector × method) must respect.

    Each field's metadata names its rule; `minimum` fields may only grow, `maximum` fields only shrink.
    """

    sector: str
    method: str
    title: str
    documents_to_deadline_days: int  # W-01: at least 20 days
    clarification_notice_days: int  # W-02: at least 15 days before the deadline
    objection_before_deadline_days: int  # W-03: filed at least 10 days before the deadline
    objection_answer_days: int  # W-03 / W-12: answered within 3 days
    deposit_max_permille_of_estimate: int  # W-04: 2% = 20 ‰
    deposit_cap_fen: int | None  # W-04: 800,000 yuan for construction
    withdrawal_refund_days: int  # W-05: 5 days
    min_bids_to_open: int  # W-09: 3
    committee_min_size: int  # W-10: 5, odd
    committee_expert_share_num: int  # W-10: experts at least 2/3
    committee_expert_share_den: int
    max_candidates: int  # W-11: at most 3
    publish_candidates_within_days: int  # W-12: within 3 days of the report
    publicity_min_days: int  # W-12: at least 3 days
    contract_within_days: int  # W-13: 30 days of the award notice
    deposit_refund_after_contract_days: int  # W-14: 5 days
    performance_security_max_permille: int  # W-15: 10% = 100 ‰
    complaint_within_days: int  # W-17: 10 days
    complaint_decision_working_days: int  # W-17: 30 working days
    opening_window_minutes: int  # E-02: decryption window at the opening (house default)
    # 投标有效期: the documents state how long bids stay valid from the deadline; a guarantee given as the
    # deposit must stay in force that long (W-19, 条例 26). The law sets no figure: house values.
    bid_validity_days: int = 90  # the default the documents state
    bid_validity_min_days: int = 30  # long enough for evaluation, publicity (W-12) and the contract (W-13)
    # 公告审核: the centre answers a submitted tender notice within this many working days of its submission
    # (the centre's own service commitment; its light shows under S-01).
    notice_review_working_days: int = 2
    # The steps the trade walks, in order (`trading.lifecycle` builds the state machine from them).
    steps: tuple[Step, ...] = WORKS_STEPS
    # The rule id each field comes from, as (field, rule) pairs; a field left out cites no rule.
    rules: tuple[tuple[str, str | None], ...] = ()
    # G-07: a larger committee from this budget on (None: the size never depends on the budget).
    committee_large_budget_fen: int | None = None
    committee_min_size_large: int = 5
    # 87号令 68: the purchaser names the winner within 5 working days of the report (None: no decision step).
    award_decision_working_days: int | None = None
    # G-11: the result announced within 2 working days of the award decision; the contract published within
    # 2 working days of its signing (None: the law of the sector sets no such period).
    result_notice_working_days: int | None = None
    contract_publish_working_days: int | None = None
    # Who may take part: anyone (open), or only the suppliers the purchaser invites, at least `min_invited`
    # of them (invited tendering; quotation, negotiation and consultation, G-13).
    invitation_only: bool = False
    min_invited: int = 0
    max_invited: int | None = None
    # G-14: a single source is announced for at least 5 working days, open to objections, before the
    # documents go to the supplier (None: no such announcement).
    announcement_working_days: int | None = None
    # Whether documents_to_deadline_days counts working days (G-13: 3 working days to the quotes).
    deadline_in_working_days: bool = False
    # The evaluation methods the procedure allows (empty: any the platform has).
    evaluation_methods: tuple[str, ...] = ()
    # G-05: the price's weight in comprehensive scoring, in centipoints of 100 points, by procurement category
    # (competitive consultation: 30–60 for goods, 10–30 for services; empty: only the general floors).
    price_weight_band_cp: tuple[tuple[str, int, int], ...] = ()
    # Negotiated procedures: how long after the final quotes' deadline each supplier has to open its sealed
    # final quote with its nonce (a house value; None: no final quotes).
    final_quote_reveal_minutes: int | None = None
    # G-12: in procurement objections are challenges (质疑), filed within 7 working days of when the supplier
    # knew, answered within 7 working days; a complaint (投诉) follows a challenge, within 15 working days of
    # its answer or of the answer's deadline (None: the works rules W-03, W-12 and W-17 apply instead).
    challenge_within_working_days: int | None = None
    challenge_answer_working_days: int | None = None
    complaint_after_answer_working_days: int | None = None
    # How many sealed envelopes a bid may be (the documents choose among these): one, or two (双信封) — a
    # technical envelope opened at the deadline and a commercial one opened only for the bids that pass the
    # technical evaluation.
    envelope_counts: tuple[int, ...] = (1,)
    # The refund rules (escrow.obligations) a step of the procedure raises: the unsuccessful bidders' deposits
    # at the award notice (None: they wait for the contract) and the deposits still held at the contract.
    losers_refund_rule: str | None = None
    contract_refund_rule: str = "W-14"
    # ... and when a lot fails for too few bids, and when the trade ends without an award
    too_few_refund_rule: str = "W-09"
    end_refund_rule: str = "T-END"
    # G-01 (110号令): the longest term a framework agreement may have from its admission (None: the procedure
    # makes no framework agreement).
    framework_term_max_days: int | None = None

    def rule(self, field: str) -> str | None:
        """The rule id of RULES.md that sets `field` in this procedure, or None for a house value."""
        return dict(self.rules).get(field)

    @property
    def has_publicity(self) -> bool:
        """Whether the candidates are published before the award (W-12); procurement announces the result."""
        return any(step.state == "publicity" for step in self.steps)


# What names the procedure rather than bounding it: a centre tunes none of these.
NOT_TUNABLE = frozenset(
    {
        "sector",
        "method",
        "title",
        "steps",
        "rules",
        "losers_refund_rule",
        "contract_refund_rule",
        "too_few_refund_rule",
        "end_refund_rule",
        "invitation_only",
        "max_invited",
        "deadline_in_working_days",
        "evaluation_methods",
        "price_weight_band_cp",
        "envelope_counts",
    }
)

WORKS_RULES: dict[str, str | None] = {
    "documents_to_deadline_days": "W-01",
    "clarification_notice_days": "W-02",
    "objection_before_deadline_days": "W-03",
    "objection_answer_days": "W-03",
    "deposit_max_permille_of_estimate": "W-04",
    "deposit_cap_fen": "W-04",
    "withdrawal_refund_days": "W-05",
    "min_bids_to_open": "W-09",
    "committee_min_size": "W-10",
    "committee_expert_share_num": "W-10",
    "committee_expert_share_den": "W-10",
    "max_candidates": "W-11",
    "publish_candidates_within_days": "W-12",
    "publicity_min_days": "W-12",
    "contract_within_days": "W-13",
    "deposit_refund_after_contract_days": "W-14",
    "performance_security_max_permille": "W-15",
    "complaint_within_days": "W-17",
    "complaint_decision_working_days": "W-17",
    "opening_window_minutes": "E-02",
    "bid_validity_days": None,  # house values: RULES.md gives no figure
    "bid_validity_min_days": None,
    "notice_review_working_days": None,  # the centre's own commitment
    # what the works law does not have: a committee sized by the budget, the purchaser's decision step,
    # the result and contract publication periods of procurement (G-07, G-11)
    "committee_large_budget_fen": None,
    "committee_min_size_large": "W-10",
    "award_decision_working_days": None,
    "result_notice_working_days": None,
    "contract_publish_working_days": None,
    "challenge_within_working_days": None,
    "challenge_answer_working_days": None,
    "complaint_after_answer_working_days": None,
    "min_invited": None,
    "announcement_working_days": None,
    "final_quote_reveal_minutes": None,
    "framework_term_max_days": None,
}

# Fields a centre may only raise (periods before something may happen, minimum counts) ...
MINIMUMS = frozenset(
    {
        "documents_to_deadline_days",
        "clarification_notice_days",
        "objection_before_deadline_days",
        "min_bids_to_open",
        "committee_min_size",
        "publicity_min_days",
        "complaint_within_days",  # the complainant's time may be lengthened, never cut short
        "opening_window_minutes",
        "bid_validity_min_days",
        "committee_min_size_large",
        "challenge_within_working_days",  # the supplier's time may be lengthened, never cut short
        "min_invited",
        "complaint_after_answer_working_days",
    }
)
# ... and fields it may only lower (caps, time allowed to act).
MAXIMUMS = frozenset(
    {
        "objection_answer_days",
        "deposit_max_permille_of_estimate",
        "deposit_cap_fen",
        "withdrawal_refund_days",
        "max_candidates",
        "publish_candidates_within_days",
        "contract_within_days",
        "deposit_refund_after_contract_days",
        "performance_security_max_permille",
        "complaint_decision_working_days",
        "committee_large_budget_fen",
        "award_decision_working_days",
        "result_notice_working_days",
        "contract_publish_working_days",
        "challenge_answer_working_days",
        "framework_term_max_days",
        "notice_review_working_days",
    }
)

WORKS_OPEN = ProcedureProfile(
    sector="works",
    method="open",
    title="工程建设项目公开招标 (open tendering of construction works)",
    documents_to_deadline_days=20,
    clarification_notice_days=15,
    objection_before_deadline_days=10,
    objection_answer_days=3,
    deposit_max_permille_of_estimate=20,
    deposit_cap_fen=800_000 * FEN_PER_YUAN,
    withdrawal_refund_days=5,
    min_bids_to_open=3,
    committee_min_size=5,
    committee_expert_share_num=2,
    committee_expert_share_den=3,
    max_candidates=3,
    publish_candidates_within_days=3,
    publicity_min_days=3,
    contract_within_days=30,
    deposit_refund_after_contract_days=5,
    performance_security_max_permille=100,
    complaint_within_days=10,
    complaint_decision_working_days=30,
    opening_window_minutes=30,
    steps=WORKS_STEPS,
    envelope_counts=(1, 2),
    rules=tuple(WORKS_RULES.items()),
)

# Government procurement by open tendering (政府采购公开招标, 采购法 26, 87号令). The values the procurement
# rules (G-) give are cited by them; a few carry over from the general law of tendering where the procurement
# rules give the same figure without a rule of their own here (the clarification period, 87号令 27; the
# performance security, 实施条例 48), and cite no rule.
PROCUREMENT_RULES: dict[str, str | None] = {
    "documents_to_deadline_days": "G-02",
    "clarification_notice_days": None,  # 87号令 27: 15 days before the deadline
    "objection_before_deadline_days": None,
    "objection_answer_days": None,
    "deposit_max_permille_of_estimate": "G-03",
    "deposit_cap_fen": "G-03",
    "withdrawal_refund_days": "G-04",
    # G-13 asks for at least 3 suppliers; open tendering with fewer fails the same way (采购法 36)
    "min_bids_to_open": "G-13",
    "committee_min_size": "G-07",
    "committee_expert_share_num": "G-07",
    "committee_expert_share_den": "G-07",
    "committee_large_budget_fen": "G-07",
    "committee_min_size_large": "G-07",
    "max_candidates": None,
    "publish_candidates_within_days": None,
    "publicity_min_days": None,
    "award_decision_working_days": None,  # 87号令 68
    "result_notice_working_days": "G-11",
    "contract_within_days": "G-11",
    "contract_publish_working_days": "G-11",
    "deposit_refund_after_contract_days": "G-04",
    "performance_security_max_permille": None,  # 实施条例 48: at most 10 %
    "complaint_within_days": "G-12",
    "complaint_decision_working_days": "G-12",
    "challenge_within_working_days": "G-12",
    "challenge_answer_working_days": "G-12",
    "complaint_after_answer_working_days": "G-12",
    "min_invited": "G-13",
    "announcement_working_days": "G-14",
    "final_quote_reveal_minutes": None,
    "framework_term_max_days": None,
    "opening_window_minutes": "E-02",
    "bid_validity_days": None,
    "bid_validity_min_days": None,
    "notice_review_working_days": None,  # the centre's own commitment
}

PROCUREMENT_OPEN = ProcedureProfile(
    sector="procurement",
    method="open",
    title="政府采购公开招标 (government procurement by open tendering)",
    documents_to_deadline_days=20,
    clarification_notice_days=15,
    objection_before_deadline_days=10,
    objection_answer_days=3,
    deposit_max_permille_of_estimate=20,  # of the budget (预算金额)
    deposit_cap_fen=None,
    withdrawal_refund_days=5,
    min_bids_to_open=3,
    committee_min_size=5,
    committee_expert_share_num=2,
    committee_expert_share_den=3,
    max_candidates=3,
    publish_candidates_within_days=3,
    publicity_min_days=0,
    contract_within_days=30,
    deposit_refund_after_contract_days=5,
    performance_security_max_permille=100,
    complaint_within_days=15,
    complaint_decision_working_days=30,
    opening_window_minutes=30,
    steps=PROCUREMENT_TENDER_STEPS,
    envelope_counts=(1, 2),
    rules=tuple(PROCUREMENT_RULES.items()),
    committee_large_budget_fen=10_000_000 * FEN_PER_YUAN,
    committee_min_size_large=7,
    award_decision_working_days=5,
    result_notice_working_days=2,
    contract_publish_working_days=2,
    challenge_within_working_days=7,
    challenge_answer_working_days=7,
    complaint_after_answer_working_days=15,
    losers_refund_rule="G-04-loser",
    contract_refund_rule="G-04-winner",
    too_few_refund_rule="G-04-end",
    end_refund_rule="G-04-end",
)

# Invited tendering (邀请招标, 采购法 29, 87号令 14): as open tendering, but only the suppliers the purchaser
# invites (at least 3, chosen from a qualification round or a supplier pool) may obtain the documents.
PROCUREMENT_INVITED = replace(
    PROCUREMENT_OPEN,
    method="invited",
    title="政府采购邀请招标 (government procurement by invited tendering)",
    invitation_only=True,
    min_invited=3,
)

# Request for quotation (询价, 采购法 40, 74号令): at least 3 invited suppliers, 3 working days from the
# invitation to the quotes (G-13), one sealed quote each, a quotation panel of 3 or more (2/3 experts), and
# the lowest compliant price wins.
PROCUREMENT_RFQ = replace(
    PROCUREMENT_OPEN,
    method="rfq",
    title="政府采购询价 (government procurement by request for quotation)",
    envelope_counts=(1,),
    invitation_only=True,
    min_invited=3,
    documents_to_deadline_days=3,
    deadline_in_working_days=True,
    clarification_notice_days=3,  # 74号令 10: 3 working days before the quotes are due (working, as the period)
    committee_min_size=3,
    committee_large_budget_fen=None,
    committee_min_size_large=3,
    evaluation_methods=("lowest_evaluated_price",),
    rules=tuple({**PROCUREMENT_RULES, "documents_to_deadline_days": "G-13"}.items()),
)

# Single source (单一来源, 采购法 31, 39; 74号令): the one supplier named and announced with the reasons for at
# least 5 working days, open to objections (G-14); then the documents go to that supplier alone, its sealed
# response is opened, and a panel of 3 or more negotiates and records the price.
PROCUREMENT_SINGLE_SOURCE = replace(
    PROCUREMENT_OPEN,
    method="single_source",
    title="政府采购单一来源 (government procurement from a single source)",
    envelope_counts=(1,),
    invitation_only=True,
    min_invited=1,
    max_invited=1,
    announcement_working_days=5,
    documents_to_deadline_days=3,  # the law gives none; a house value long enough to prepare a response
    clarification_notice_days=1,
    min_bids_to_open=1,
    committee_min_size=3,
    committee_large_budget_fen=None,
    committee_min_size_large=3,
    evaluation_methods=("lowest_evaluated_price",),
    rules=tuple(
        {
            **PROCUREMENT_RULES,
            "documents_to_deadline_days": None,
            "min_invited": "G-01",
            "min_bids_to_open": "G-01",
        }.items()
    ),
)

# Competitive negotiation (竞争性谈判, 采购法 30, 38; 74号令): at least 3 invited suppliers and 3 working days
# to the first responses (G-13), negotiation rounds, sealed final quotes, a panel of 3 or more, the lowest
# final quote among the responsive.
PROCUREMENT_NEGOTIATION = replace(
    PROCUREMENT_RFQ,
    method="negotiation",
    title="政府采购竞争性谈判 (government procurement by competitive negotiation)",
    steps=NEGOTIATED_STEPS,
    final_quote_reveal_minutes=30,
)

# Competitive consultation (竞争性磋商, 财库〔2014〕214号): at least 3 invited suppliers, at least 10 days to the
# first responses (G-13), rounds and sealed final quotes as in negotiation, then comprehensive scoring (G-05).
PROCUREMENT_CONSULTATION = replace(
    PROCUREMENT_NEGOTIATION,
    method="consultation",
    title="政府采购竞争性磋商 (government procurement by competitive consultation)",
    documents_to_deadline_days=10,
    deadline_in_working_days=False,
    clarification_notice_days=5,  # 214号: 5 days before the responses are due
    evaluation_methods=("comprehensive",),
    price_weight_band_cp=(("goods", 3000, 6000), ("services", 1000, 3000)),
)

# A closed framework agreement (框架协议采购, 110号令; G-01): the call for suppliers is open tendering's, with its
# 20 days from the documents to the deadline (G-02), opening, a panel and the purchaser's decision; the
# decision admits several suppliers per lot, each at its evaluated price as its cap (入围价格). The term is
# one year at most, the usual term for goods and services (◐: confirm the figure for the category; a centre
# may only shorten it).
PROCUREMENT_FRAMEWORK = replace(
    PROCUREMENT_OPEN,
    method="framework",
    title="政府采购框架协议 (government procurement by framework agreement)",
    steps=FRAMEWORK_STEPS,
    framework_term_max_days=365,
    rules=tuple({**PROCUREMENT_RULES, "framework_term_max_days": "G-01"}.items()),
)

PROFILES: dict[tuple[str, str], ProcedureProfile] = {
    (profile.sector, profile.method): profile
    for profile in (
        WORKS_OPEN,
        PROCUREMENT_OPEN,
        PROCUREMENT_INVITED,
        PROCUREMENT_RFQ,
        PROCUREMENT_SINGLE_SOURCE,
        PROCUREMENT_NEGOTIATION,
        PROCUREMENT_CONSULTATION,
        PROCUREMENT_FRAMEWORK,
    )
}


class ProfileError(ValueError):
    """A profile change that would loosen a legal minimum, or an unknown procedure."""

    def __init__(self, message: str, rule: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule


_TWO_ENVELOPE_PROFILES: dict[tuple[str, str], ProcedureProfile] = {}


def profile_for(sector: str, method: str, envelopes: int = 1) -> ProcedureProfile:
    """The profile of a procedure, or ProfileError when the platform does not run it; for a tender of two
    envelopes (双信封) where the procedure has them, with the steps of two openings."""
    try:
        profile = PROFILES[(sector, method)]
    except KeyError:
        known = ", ".join(f"{s}/{m}" for s, m in sorted(PROFILES))
        raise ProfileError(f"no procedure profile for {sector}/{method}; known: {known}") from None
    if envelopes != 2 or 2 not in profile.envelope_counts:
        return profile
    two = _TWO_ENVELOPE_PROFILES.get((sector, method))
    if two is None:
        two = replace(profile, steps=two_envelope_steps(profile.steps))
        _TWO_ENVELOPE_PROFILES[(sector, method)] = two
    return two


def tighten(profile: ProcedureProfile, **changes: Any) -> ProcedureProfile:
    """A copy of `profile` with `changes`, refusing any change that loosens the law."""
    names = {f.name for f in fields(profile)}
    for name, value in changes.items():
        if name not in names or name in NOT_TUNABLE:
            raise ProfileError(f"{name} is not a tunable value of a procedure profile")
        current = getattr(profile, name)
        rule = profile.rule(name)
        cite = f" ({rule})" if rule else " (a house value)"
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ProfileError(f"{name} must be a whole number of 0 or more, not {value!r}", rule)
        if name in MINIMUMS and current is not None and value < current:
            raise ProfileError(f"{name} may not go below {current}{cite}", rule)
        if name in MAXIMUMS and current is not None and (value is None or value > current):
            raise ProfileError(f"{name} may not go above {current}{cite}", rule)
    tightened = replace(profile, **changes)
    law_of_committee = profile.rule("committee_min_size")
    for name in ("committee_min_size", "committee_min_size_large"):
        if getattr(tightened, name) % 2 == 0:
            raise ProfileError(f"{name} must be odd ({law_of_committee})", law_of_committee)
    # The expert share is a ratio: it may only grow, whichever of its two terms changes (W-10).
    share, law = (
        (tightened.committee_expert_share_num, tightened.committee_expert_share_den),
        (profile.committee_expert_share_num, profile.committee_expert_share_den),
    )
    if share[1] == 0 or share[0] > share[1] or share[0] * law[1] < law[0] * share[1]:
        raise ProfileError(
            f"the expert share {share[0]}/{share[1]} may not go below {law[0]}/{law[1]} ({law_of_committee})",
            law_of_committee,
        )
    return tightened


def deposit_cap(profile: ProcedureProfile, estimated_price_fen: int) -> int:
    """The largest deposit allowed for an estimated price (W-04): 2 % of it, and at most the absolute cap."""
    cap = estimated_price_fen * profile.deposit_max_permille_of_estimate // 1000
    if profile.deposit_cap_fen is not None:
        cap = min(cap, profile.deposit_cap_fen)
    return cap


def bid_validity_problem(profile: ProcedureProfile, days: int) -> str | None:
    """None when a bid validity period (投标有效期) of `days` suits the profile, else why not."""
    if days < profile.bid_validity_min_days:
        return f"at least {profile.bid_validity_min_days} days"
    return None


def performance_security_cap(profile: ProcedureProfile, contract_price_fen: int) -> int:
    """The largest performance security allowed for a contract price (W-15)."""
    return contract_price_fen * profile.performance_security_max_permille // 1000


def committee_min_size(profile: ProcedureProfile, budget_fen: int) -> int:
    """The smallest lawful committee for a trade of `budget_fen` (W-10; G-07: 7 from 10 million yuan)."""
    large = profile.committee_large_budget_fen
    if large is not None and budget_fen >= large:
        return max(profile.committee_min_size, profile.committee_min_size_large)
    return profile.committee_min_size


def committee_ok(profile: ProcedureProfile, size: int, experts: int, budget_fen: int = 0) -> str | None:
    """None when a committee of `size` with `experts` technical/economic experts is lawful for a trade of
    `budget_fen`, else why not (W-10, G-07); the rule is `profile.rule("committee_min_size")`."""
    least = committee_min_size(profile, budget_fen)
    if size < least:
        because = (
            f" for a budget of {budget_fen // FEN_PER_YUAN:,} yuan"
            if least > profile.committee_min_size
            else ""
        )
        return f"the committee has {size} members; at least {least} are required{because}"
    if size % 2 == 0:
        return f"the committee has {size} members; the number must be odd"
    if experts * profile.committee_expert_share_den < size * profile.committee_expert_share_num:
        return (
            f"{experts} of {size} members are experts; at least "
            f"{profile.committee_expert_share_num}/{profile.committee_expert_share_den} must be"
        )
    return None
