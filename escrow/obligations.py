"""Deposit refund obligations (保证金退还义务): the legal refund rules of RULES.md as data.

A trade event — a written withdrawal, a signed contract, an award notice, a listing's close, a failed or
terminated tender — obliges the centre to pay a deposit back within a period. This module says, for each
rule, how long that period is, what it counts from, whether it counts calendar or working days, and what
interest the refund carries; then it computes the due day (P-01, P-02, P-04 through `WorkingCalendar`),
the interest or fee owed (through `escrow.interest`), and the supervision light of S-01.

Pure logic: no I/O and no clock; callers pass the days (Asia/Shanghai calendar dates, see
`rules.calendar.local_date`). Deposits that are kept rather than refunded (W-06, W-16) create no
obligation and are refused here with a message that says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from escrow.interest import Interest, RateTable, deposit_interest, occupancy_fee
from rules.calendar import WorkingCalendar
from rules.lights import Light as Light
from rules.lights import light as light
from rules.lights import working_days_left as working_days_left

# ---------------------------------------------------------------- errors


class UnknownRefundRule(ValueError):
    """A rule id that names no refund obligation; `rule` is the id as given, the message says what to use."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


# ---------------------------------------------------------------- the rules


class Trigger(StrEnum):
    """The event a refund period counts from (P-01: the event's own day is not counted)."""

    WITHDRAWAL_NOTICE = "withdrawal_notice"  # the written withdrawal received (or E-03's deemed withdrawal)
    CONTRACT_SIGNED = "contract_signed"  # the written contract signed
    AWARD_NOTICE = "award_notice"  # the award notice (中标通知书) issued
    CLOSE = "close"  # the tender, auction or listing closed (招拍挂活动结束)
    FAILURE = "failure"  # the tender failed or was terminated (流标 / 终止招标)


class InterestRule(StrEnum):
    """What a refund carries besides the principal."""

    NONE = "none"
    DEPOSIT = "deposit"  # bank deposit interest from arrival to the day before payment (M-01, M-02)
    OCCUPANCY_IF_LATE = "occupancy_if_late"  # the occupancy fee for each day late, none if on time (M-03)


@dataclass(frozen=True)
class RefundRule:
    """One refund obligation: the period, what it counts from, and the interest it carries.

    `days` are calendar days unless `working_days` (工作日). `house_default` is true when the law gives
    no figure (e.g. "及时", promptly) and the period is the platform's own default, which a centre's
    profile may shorten; `status` is RULES.md's: ✅ checked against the text, ◐ confirm before relying on it.
    """

    rule: str
    days: int
    working_days: bool
    trigger: Trigger
    interest: InterestRule
    source: str
    zh: str
    en: str
    status: str
    house_default: bool = False


_RULE_LIST: Final = (
    RefundRule(
        rule="W-05",
        days=5,
        working_days=False,
        trigger=Trigger.WITHDRAWAL_NOTICE,
        interest=InterestRule.NONE,
        source="招标投标法实施条例 第35条",
        zh="投标截止前书面撤回投标文件的，自收到书面撤回通知之日起5日内退还投标保证金",
        en="A bid withdrawn in writing before the deadline: the deposit is refunded within 5 days of "
        "receiving the written withdrawal.",
        status="✅",
    ),
    RefundRule(
        rule="W-14",
        days=5,
        working_days=False,
        trigger=Trigger.CONTRACT_SIGNED,
        interest=InterestRule.DEPOSIT,
        source="招标投标法实施条例 第57条",
        zh="书面合同签订后5日内向中标人和未中标的投标人退还投标保证金及银行同期存款利息",
        en="Within 5 days after the written contract is signed, deposits go back to the winner and every "
        "other bidder, with bank deposit interest for the same period.",
        status="✅",
    ),
    RefundRule(
        rule="G-04-loser",
        days=5,
        working_days=True,
        trigger=Trigger.AWARD_NOTICE,
        interest=InterestRule.OCCUPANCY_IF_LATE,
        source="政府采购货物和服务招标投标管理办法（财政部令第87号）第38条",
        zh="自中标通知书发出之日起5个工作日内退还未中标人的投标保证金；逾期退还的，支付超期资金占用费",
        en="Unsuccessful suppliers' deposits are refunded within 5 working days of the award notice; a late "
        "refund owes an occupancy fee (the lending reference rate plus 20%) for each day late.",
        status="✅ / ◐ fee",
    ),
    RefundRule(
        rule="G-04-winner",
        days=5,
        working_days=True,
        trigger=Trigger.CONTRACT_SIGNED,
        interest=InterestRule.OCCUPANCY_IF_LATE,
        source="政府采购货物和服务招标投标管理办法（财政部令第87号）第38条",
        zh="自采购合同签订之日起5个工作日内退还中标人的投标保证金（或转为履约保证金）；逾期退还的，支付超期资金占用费",
        en="The winner's deposit is refunded (or turned into the performance security) within 5 working "
        "days of the contract's signing; a late refund owes the occupancy fee for each day late.",
        status="✅ / ◐ fee",
    ),
    RefundRule(
        rule="G-04-end",
        days=5,
        working_days=True,
        trigger=Trigger.FAILURE,
        interest=InterestRule.DEPOSIT,
        source="政府采购货物和服务招标投标管理办法（财政部令第87号）第38条",
        zh="采购活动终止的（含因供应商不足而废标），在终止后5个工作日内退还已收取的投标保证金及其在银行产生的孳息",
        en="A procurement that ends without an award (terminated, or failed for too few suppliers): every "
        "deposit is refunded within 5 working days of the end, with the interest it earned at the bank.",
        status="✅",
    ),
    RefundRule(
        rule="L-06",
        days=5,
        working_days=True,
        trigger=Trigger.CLOSE,
        interest=InterestRule.NONE,
        source="招标拍卖挂牌出让国有建设用地使用权规定（国土资源部令第39号）第21条",
        zh="招标拍卖挂牌活动结束后5个工作日内退还其他投标人、竞买人的保证金，不计利息；中标人、竞得人的保证金抵作出让价款",
        en="Unsuccessful bidders' deposits are refunded within 5 working days of the close, without "
        "interest; the winner's deposit becomes part of the price (no refund).",
        status="◐",
    ),
    RefundRule(
        rule="E-03",
        days=5,
        working_days=False,
        trigger=Trigger.WITHDRAWAL_NOTICE,
        interest=InterestRule.NONE,
        source="电子招标投标办法 第31条；招标投标法实施条例 第35条",
        zh="因平台或其他非投标人原因无法解密的，视为撤回投标文件，按撤回自认定之日起5日内退还投标保证金",
        en="A bid that cannot be decrypted through no fault of the bidder is treated as withdrawn; its "
        "deposit is refunded as for a withdrawal (W-05), within 5 days of that finding.",
        status="◐",
        house_default=True,
    ),
    RefundRule(
        rule="W-09",
        days=5,
        working_days=False,
        trigger=Trigger.FAILURE,
        interest=InterestRule.NONE,
        source="招标投标法实施条例 第44条（期限为平台默认）",
        zh="投标人少于3个的不得开标，应重新招标；投标保证金自流标之日起5日内退还（法规未定期限，平台默认）",
        en="Fewer than 3 bidders: no opening and the tender is re-run; deposits are refunded within 5 days "
        "of the failure (the law sets no period: a house default).",
        status="◐",
        house_default=True,
    ),
    RefundRule(
        rule="T-END",
        days=5,
        working_days=False,
        trigger=Trigger.FAILURE,
        interest=InterestRule.DEPOSIT,
        source="招标投标法实施条例 第31条（“及时”，5日为平台默认）",
        zh="招标人终止招标的，应当及时退还所收取的投标保证金及银行同期存款利息（法规要求“及时”，平台默认5日）",
        en="A tender the tenderer terminates: deposits are refunded promptly with bank deposit interest for "
        "the same period (the law says 'promptly'; 5 days is a house default).",
        status="✅ / house default period",
        house_default=True,
    ),
    RefundRule(
        rule="SUSPENSE",
        days=5,
        working_days=True,
        trigger=Trigger.FAILURE,
        interest=InterestRule.NONE,
        source="平台规则：无法匹配的来款原路退回（5个工作日为平台默认）",
        zh="无法匹配到投标保证金子账户的来款，经中心经办人决定后原路退回付款账户（平台默认5个工作日）",
        en="Money that matches no deposit sub-account, once a centre officer decides to send it back: "
        "returned to the paying account within 5 working days (a house default).",
        status="house rule",
        house_default=True,
    ),
)

RULES: Final[Mapping[str, RefundRule]] = MappingProxyType({r.rule: r for r in _RULE_LIST})

# Rule ids a caller might reasonably reach for that create no refund obligation, with the reason why.
_NOT_REFUNDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "W-06": "W-06 creates no refund obligation: the deposit of a bid withdrawn after the deadline may be "
        "kept (条例 35).",
        "W-16": "W-16 creates no refund obligation: a winner who refuses to sign or to give the performance "
        "security loses the deposit (条例 74).",
        "G-04": "G-04 has three refund rules: use G-04-loser (from the award notice), G-04-winner (from the "
        "contract's signing) or G-04-end (from the end of a procurement without an award).",
    }
)


def rule_for(rule_id: str) -> RefundRule:
    """Return the refund rule `rule_id`; any other id is an UnknownRefundRule naming the ids that exist."""
    try:
        return RULES[rule_id]
    except (KeyError, TypeError):
        pass
    reason = _NOT_REFUNDS.get(rule_id) if isinstance(rule_id, str) else None
    if reason is None:
        reason = f"Unknown refund rule {rule_id!r}; the refund rules are {', '.join(RULES)}."
    raise UnknownRefundRule(str(rule_id), reason)


# ---------------------------------------------------------------- due dates


def due_date(rule_id: str, event_day: date, cal: WorkingCalendar) -> date:
    """Return the last day on which the refund under `rule_id` is in time, for an event on `event_day`.

    P-01: the event's own day is not counted. Calendar-day rules end on `event_day + days`, moved to the
    next working day when that is a rest day (P-02, `WorkingCalendar.period_end`); working-day rules end
    on the `days`-th working day after `event_day` (P-04, `WorkingCalendar.add_working_days`), so rest
    days, the event day included, are never counted and make-up working days (调休) are. The refund is in
    time until 24:00 Asia/Shanghai on the day returned (P-03). Example: W-14 after a contract signed on
    Fri 2026-09-25 → Wed 2026-09-30.
    """
    rule = rule_for(rule_id)
    if rule.working_days:
        return cal.add_working_days(event_day, rule.days)
    return cal.period_end(event_day, rule.days)


# ---------------------------------------------------------------- interest


def _no_interest(principal_fen: int) -> Interest:
    # the same shape escrow.interest returns for an empty period: exact zero shown to 1e-20 fen
    return Interest(principal_fen, 0, Decimal(0).scaleb(-20), 0, ())


def interest_due(
    rule_id: str,
    principal_fen: int,
    arrived: date,
    due: date,
    paid: date,
    deposit_rates: RateTable,
    lpr: RateTable,
) -> Interest:
    """The interest or fee a refund under `rule_id` of `principal_fen` carries when paid on `paid`.

    - Deposit interest (W-14, T-END, G-04-end; M-01, M-02): for each day from `arrived` (counted) up to the day
      before `paid` (not counted), so days = paid − arrived, at the escrow bank's demand rate in force
      each day ÷ 360 (`escrow.interest.deposit_interest`). It runs to the actual payment, late or not.
    - Occupancy fee (G-04-loser, G-04-winner; M-03): only for the days late, from the day after `due`
      up to and including `paid`, so days = paid − due, at the one-year LPR in force each day × 1.2 ÷ 360
      (`escrow.interest.occupancy_fee`); nothing when paid on or before `due`.
    - Every other rule (W-05, E-03, W-09, L-06): no interest; the law gives none (L-06 says 不计利息).

    Sums are exact and rounded half-up to the fen once (M-04). A negative or non-integer principal, or a
    payment before the deposit arrived, is a ValueError; a day before a rate table starts is a LookupError.
    """
    rule = rule_for(rule_id)
    if type(principal_fen) is not int or principal_fen < 0:
        raise ValueError(f"The principal must be a non-negative whole number of fen, not {principal_fen!r}.")
    if paid < arrived:
        raise ValueError(f"The refund ({paid}) cannot precede the deposit's arrival ({arrived}).")
    if rule.interest is InterestRule.DEPOSIT:
        return deposit_interest(principal_fen, arrived, paid, deposit_rates)
    if rule.interest is InterestRule.OCCUPANCY_IF_LATE:
        return occupancy_fee(principal_fen, due, paid, lpr)
    return _no_interest(principal_fen)


# ---------------------------------------------------------------- supervision lights (S-01)

# A refund obligation shows the lights of `rules.lights`; the names stay importable from here.
