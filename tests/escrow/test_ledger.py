"""The ledger's pure core: entry checks, hashes, balances with the no-overdraft rule, two-phase entries,
reversals, and the invariant checker, including every kind of tampering it must catch."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from escrow.ledger import (
    ACCOUNT_KINDS,
    GENESIS,
    MEMO_REASONS,
    NO_PARTY,
    PARTY_ROLES,
    REASONS,
    AccountSpec,
    Balance,
    Check,
    EntryDraft,
    LedgerError,
    Lifecycle,
    Party,
    Phase,
    Posting,
    Side,
    StoredEntry,
    Verifier,
    apply,
    check_entry,
    context_text,
    entry_hash,
    entry_problems,
    entry_text,
    link_hash,
    natural,
    post_pending,
    request_hash,
    request_text,
    reversal,
    transition,
    verify,
    void_pending,
)

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
BANK, TRANSIT, SUSPENSE, FORFEITED = "bank:escrow", "refunds_in_transit", "suspense", "forfeited"
PAYABLE, EXPENSE = "interest_payable", "interest_expense"
BIDDERS = tuple(f"deposit:T1:L1:bidder-{c}" for c in "abcd")
SPECS: dict[str, AccountSpec] = {
    BANK: AccountSpec(BANK, "bank"),
    TRANSIT: AccountSpec(TRANSIT, "refunds_in_transit"),
    SUSPENSE: AccountSpec(SUSPENSE, "suspense"),
    FORFEITED: AccountSpec(FORFEITED, "forfeited"),
    PAYABLE: AccountSpec(PAYABLE, "interest_payable"),
    # the centre's interest cost is a debit that no deposit funds
    EXPENSE: AccountSpec(EXPENSE, "interest_expense"),
    **{b: AccountSpec(b, "deposit") for b in BIDDERS},
}
LOOSE = {code: dataclasses.replace(spec, may_go_negative=True) for code, spec in SPECS.items()}
PAYER = Party("payer", "6222020100000001", "乙公司", "中国工商银行南京分行")
PAYEE = Party("payee", "6222020100000001", "乙公司", "中国工商银行南京分行")


def draft(reason: str, *legs: tuple[str, int], key: str = "key-00000001", **context: str) -> EntryDraft:
    party = {"payer": PAYER, "payee": PAYEE}.get(PARTY_ROLES.get(reason, ""), NO_PARTY)
    return EntryDraft(reason, tuple(Posting(a, n) for a, n in legs), key, context, "job:test", party)


def received(bidder: str, amount: int, key: str) -> EntryDraft:
    return draft("deposit_received", (BANK, amount), (bidder, -amount), key=key, bidder=bidder)


def refund(bidder: str, amount: int, key: str) -> EntryDraft:
    return draft("refund_instructed", (bidder, amount), (BANK, -amount), key=key, bidder=bidder)


class Book:
    """A journal kept in memory the way the service keeps it in the database (the reference model)."""

    def __init__(self, specs: Mapping[str, AccountSpec] = SPECS) -> None:
        self.specs = specs
        self.balances: dict[str, Balance] = {}
        self.entries: list[StoredEntry] = []
        self.resolved: set[int] = set()
        self.keys = 0

    def key(self) -> str:
        self.keys += 1
        return f"book-key-{self.keys:06d}"

    def post(self, d: EntryDraft, phase: str = Phase.POSTED, resolves: int | None = None) -> StoredEntry:
        check_entry(d)
        if resolves is None:
            changed = apply(self.balances, self.specs, d.postings, phase=phase)
        elif phase == Phase.POSTED:
            changed = post_pending(self.balances, self.specs, d.postings)
        else:
            changed = void_pending(self.balances, self.specs, d.postings)
        self.balances.update(changed)
        sequence = len(self.entries) + 1
        previous = self.entries[-1].hash if self.entries else GENESIS
        at = T0 + timedelta(seconds=sequence, microseconds=sequence)
        stored = StoredEntry(
            sequence=sequence,
            idempotency_key=d.idempotency_key,
            request_hash=request_hash(d),
            reason=d.reason,
            phase=str(phase),
            at=at,
            previous_hash=previous,
            hash=entry_hash(previous, sequence, d, phase, at),
            postings=d.postings,
            context=dict(d.context),
            actor=d.actor,
            resolves=resolves,
            party=d.party,
            scheme=d.scheme,
        )
        self.entries.append(stored)
        return stored

    def resolve(self, pending: int, target: str) -> StoredEntry:
        original = self.entries[pending - 1]
        transition(original.phase, target)
        if pending in self.resolved:
            raise LedgerError("phase.transition", f"entry {pending} already resolved")
        reason = "refund_confirmed" if target == Phase.POSTED else "refund_failed"
        d = EntryDraft(
            reason, original.postings, self.key(), {**original.context, "resolves": str(pending)}, "job:bank"
        )
        stored = self.post(d, target, resolves=pending)
        self.resolved.add(pending)
        return stored

    def reversible(self, reason: str | None = None) -> list[StoredEntry]:
        """Posted entries not yet reversed (what a correct service would let an officer reverse)."""
        done = {e.context["reverses"] for e in self.entries if e.reason == "reversal"}
        return [
            e
            for e in self.entries
            if e.phase == Phase.POSTED
            and e.resolves is None
            and str(e.sequence) not in done
            and (reason is None or e.reason == reason)
        ]

    def open_pending(self) -> list[int]:
        return [
            e.sequence for e in self.entries if e.phase == Phase.PENDING and e.sequence not in self.resolved
        ]

    def checks(
        self, entries: list[StoredEntry] | None = None, balances: Mapping[str, Balance] | None = None
    ) -> dict[str, Check]:
        got = verify(
            self.entries if entries is None else entries,
            self.specs,
            self.balances if balances is None else balances,
        )
        return {c.name: c for c in got}


def failing(checks: Mapping[str, Check]) -> set[str]:
    return {name for name, c in checks.items() if not c.ok}


# ---------------------------------------------------------------- accounts and errors


def test_every_kind_has_its_normal_side() -> None:
    assert dict(ACCOUNT_KINDS) == {
        "bank": Side.DEBIT,
        "deposit": Side.CREDIT,
        "suspense": Side.CREDIT,
        "interest_payable": Side.CREDIT,
        "interest_expense": Side.DEBIT,
        "interest_income": Side.CREDIT,
        "forfeited": Side.CREDIT,
        "refunds_in_transit": Side.CREDIT,
    }
    assert AccountSpec("x", "deposit").normal is Side.CREDIT


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(LedgerError) as refused:
        AccountSpec("cash", "petty_cash").normal  # noqa: B018
    assert refused.value.code == "account.unknown" and refused.value.detail == {"account": "cash"}


def test_natural_shows_a_balance_on_the_accounts_own_side() -> None:
    assert natural(SPECS[BANK], 500) == 500
    assert natural(SPECS[BIDDERS[0]], -500) == 500


def test_a_ledger_error_carries_code_message_and_detail() -> None:
    error = LedgerError("overdraft", "too much", account="a", requested=5)
    assert (error.code, error.message, error.detail, str(error)) == (
        "overdraft",
        "too much",
        {"account": "a", "requested": 5},
        "too much",
    )
    assert isinstance(error, ValueError)


# ---------------------------------------------------------------- check_entry


def test_a_balanced_entry_passes() -> None:
    check_entry(received(BIDDERS[0], 100, "stmt-1:line-1"))


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        (draft("deposit_received", (BANK, 1)), "entry.empty"),
        (draft("deposit_received"), "entry.empty"),
        (draft("deposit_received", (BANK, 0), (SUSPENSE, 0)), "entry.zero_amount"),
        (draft("deposit_received", (BANK, 5), (SUSPENSE, -4)), "entry.unbalanced"),
        (draft("deposit_received", (BANK, 5), (BANK, -5)), "entry.duplicate_account"),
        (draft("deposit_received", (BANK, True), (SUSPENSE, -1)), "entry.amount"),  # bool is an int to mypy
        (draft("deposit_received", (BANK, 2**63), (SUSPENSE, -(2**63))), "entry.amount"),
        (draft("gift", (BANK, 5), (SUSPENSE, -5)), "entry.reason"),
        (draft("deposit_received", (BANK, 5), (SUSPENSE, -5), key="short-1"), "entry.key"),
        (draft("deposit_received", (BANK, 5), (SUSPENSE, -5), key="has space 1"), "entry.key"),
        (draft("deposit_received", (BANK, 5), (SUSPENSE, -5), key="x" * 129), "entry.key"),
        (draft("deposit_received", (BANK, 5), (SUSPENSE, -5), key="line-0001\n"), "entry.key"),
        (draft("deposit_received", (BANK, 5), (SUSPENSE, -5), key="行号-00000001"), "entry.key"),
        (
            EntryDraft(
                "deposit_received",
                (Posting(BANK, 5), Posting(SUSPENSE, -5)),
                "key-00000001",
                {"n": 1},  # type: ignore[dict-item]
            ),
            "entry.context",
        ),
        (
            EntryDraft(
                "deposit_received", (Posting(BANK, 5), Posting(SUSPENSE, -5)), "key-00000001", {}, "job:a\nb"
            ),
            "entry.actor",
        ),
        (draft("deposit_received", (BANK, 5), ("suspense\nsecond line", -5)), "entry.account"),
    ],
)
def test_a_malformed_entry_is_refused_with_its_code(entry: EntryDraft, code: str) -> None:
    with pytest.raises(LedgerError) as refused:
        check_entry(entry)
    assert refused.value.code == code


@pytest.mark.parametrize("key", ["a" * 8, "a" * 128, "stmt-2025-03-01:line.17_a"])
def test_keys_of_8_to_128_safe_characters_pass(key: str) -> None:
    check_entry(draft("deposit_received", (BANK, 5), (SUSPENSE, -5), key=key))


def test_every_named_reason_is_accepted() -> None:
    for reason in REASONS - MEMO_REASONS:
        check_entry(draft(reason, (BANK, 5), (SUSPENSE, -5)))
    for reason in MEMO_REASONS:
        check_entry(draft(reason))


def test_a_memo_moves_no_money() -> None:
    with pytest.raises(LedgerError) as refused:
        check_entry(draft("payee_changed", (BANK, 5), (SUSPENSE, -5)))
    assert refused.value.code == "entry.memo"


@pytest.mark.parametrize(
    ("reason", "party", "message"),
    [
        ("deposit_received", NO_PARTY, "A deposit_received entry names its payer, not ''."),
        ("refund_instructed", PAYER, "A refund_instructed entry names its payee, not 'payer'."),
        ("refund_instructed", Party("payee", "", "乙公司", "银行"), "A payee needs an account number."),
        ("forfeiture", PAYEE, "A forfeiture entry names no party, not 'payee'."),
        ("forfeiture", Party("", "6222", "", ""), "A forfeiture entry names no party."),
        (
            "deposit_received",
            Party("payer", "6222", "乙\n公司", "银行"),
            "The party's account, name and bank are each one line of text.",
        ),
    ],
)
def test_the_party_is_the_one_the_reason_names(reason: str, party: Party, message: str) -> None:
    legs = (Posting(BANK, 5), Posting(SUSPENSE, -5))
    with pytest.raises(LedgerError) as refused:
        check_entry(EntryDraft(reason, legs, "key-00000001", {}, "job:x", party))
    assert (refused.value.code, refused.value.message) == ("entry.party", message)


def test_a_scheme_2_entry_names_no_party_and_an_unknown_scheme_is_refused() -> None:
    legs = (Posting(BANK, 5), Posting(SUSPENSE, -5))
    check_entry(EntryDraft("deposit_received", legs, "key-00000001", {}, "job:x", NO_PARTY, 2))
    with pytest.raises(LedgerError) as refused:
        check_entry(EntryDraft("deposit_received", legs, "key-00000001", {}, "job:x", PAYER, 2))
    assert refused.value.code == "entry.party"
    with pytest.raises(LedgerError) as refused:
        check_entry(EntryDraft("deposit_received", legs, "key-00000001", {}, "job:x", PAYER, 4))
    assert refused.value.code == "entry.scheme"


accounts = st.sampled_from(sorted(SPECS))
amounts = st.integers(-(10**12), 10**12).filter(lambda n: n != 0)


@st.composite
def balanced_postings(draw: st.DrawFn) -> tuple[Posting, ...]:
    codes = draw(st.lists(accounts, min_size=2, max_size=5, unique=True))
    legs = [draw(amounts) for _ in codes[:-1]]
    assume(sum(legs) != 0)
    return tuple(Posting(a, n) for a, n in zip(codes, [*legs, -sum(legs)], strict=True))


@given(balanced_postings())
def test_any_balanced_entry_passes_and_any_nudge_unbalances_it(postings: tuple[Posting, ...]) -> None:
    check_entry(EntryDraft("opening_balance", postings, "key-00000001"))
    nudged = (Posting(postings[0].account, postings[0].amount_fen + 1), *postings[1:])
    with pytest.raises(LedgerError) as refused:
        check_entry(EntryDraft("opening_balance", nudged, "key-00000001"))
    assert refused.value.code in {"entry.unbalanced", "entry.zero_amount"}


# ---------------------------------------------------------------- hashes


def test_the_request_hash_excludes_the_key_and_the_context_order() -> None:
    a = draft("deposit_received", (BANK, 5), (SUSPENSE, -5), key="key-aaaaaaaa", tender="T1", lot="1")
    b = EntryDraft(a.reason, a.postings, "key-bbbbbbbb", {"lot": "1", "tender": "T1"}, a.actor, a.party)
    assert request_hash(a) == request_hash(b)
    assert len(request_hash(a)) == 64 and int(request_hash(a), 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        lambda d: dataclasses.replace(d, reason="suspense_received"),
        lambda d: dataclasses.replace(d, postings=tuple(reversed(d.postings))),
        lambda d: dataclasses.replace(d, postings=(Posting(BANK, 6), Posting(SUSPENSE, -6))),
        lambda d: dataclasses.replace(d, context={**d.context, "tender": "T2"}),
        lambda d: dataclasses.replace(d, actor="user:someone-else"),
    ],
)
def test_the_request_hash_covers_reason_postings_in_order_context_and_actor(change: object) -> None:
    d = draft("deposit_received", (BANK, 5), (SUSPENSE, -5), tender="T1")
    assert request_hash(change(d)) != request_hash(d)  # type: ignore[operator]


def test_the_entry_hash_is_the_same_instant_in_any_zone_and_refuses_naive_times() -> None:
    d = received(BIDDERS[0], 100, "key-00000001")
    shanghai = T0.astimezone(timezone(timedelta(hours=8)))
    assert entry_hash(GENESIS, 1, d, "posted", T0) == entry_hash(GENESIS, 1, d, "posted", shanghai)
    assert entry_hash(GENESIS, 1, d, "posted", T0) != entry_hash(
        GENESIS, 1, d, "posted", T0 + timedelta(microseconds=1)
    )
    with pytest.raises(ValueError, match="naive"):
        entry_hash(GENESIS, 1, d, "posted", T0.replace(tzinfo=None))


def test_the_entry_hash_covers_previous_sequence_key_phase_and_request() -> None:
    d = received(BIDDERS[0], 100, "key-00000001")
    base = entry_hash(GENESIS, 1, d, "posted", T0)
    others = {
        entry_hash("1" * 64, 1, d, "posted", T0),
        entry_hash(GENESIS, 2, d, "posted", T0),
        entry_hash(GENESIS, 1, dataclasses.replace(d, idempotency_key="key-00000002"), "posted", T0),
        entry_hash(GENESIS, 1, d, "pending", T0),
        entry_hash(GENESIS, 1, received(BIDDERS[0], 101, "key-00000001"), "posted", T0),
    }
    assert base not in others and len(others) == 5


# ---------------------------------------------------------------- balances


def test_a_deposit_raises_the_bank_and_what_is_owed_to_the_bidder() -> None:
    got = apply({}, SPECS, received(BIDDERS[0], 100, "k").postings, phase="posted")
    assert got == {BANK: Balance(100, 0), BIDDERS[0]: Balance(-100, 0)}


def test_only_the_touched_accounts_are_returned() -> None:
    start = {BANK: Balance(100, 0), BIDDERS[0]: Balance(-100, 0), BIDDERS[1]: Balance(-7, 0)}
    got = apply(start, SPECS, refund(BIDDERS[0], 40, "k").postings, phase="posted")
    assert got == {BIDDERS[0]: Balance(-60, 0), BANK: Balance(60, 0)}


def test_a_refund_beyond_the_deposit_is_an_overdraft_naming_the_account() -> None:
    start = {BANK: Balance(1_000, 0), BIDDERS[0]: Balance(-100, 0)}
    with pytest.raises(LedgerError) as refused:
        apply(start, SPECS, refund(BIDDERS[0], 101, "k").postings, phase="posted")
    assert refused.value.code == "overdraft"
    assert refused.value.detail == {"account": BIDDERS[0], "available": 100, "requested": 101}


def test_a_pending_reservation_counts_so_two_refunds_cannot_reserve_the_same_money() -> None:
    start = {BANK: Balance(100, 0), BIDDERS[0]: Balance(-100, 0)}
    first = apply(start, SPECS, refund(BIDDERS[0], 100, "k").postings, phase="pending")
    assert first == {BIDDERS[0]: Balance(-100, 100), BANK: Balance(100, -100)}
    with pytest.raises(LedgerError) as refused:
        apply({**start, **first}, SPECS, refund(BIDDERS[0], 1, "k").postings, phase="pending")
    assert refused.value.detail == {"account": BIDDERS[0], "available": 0, "requested": 1}


def test_an_account_that_may_go_negative_is_not_guarded() -> None:
    got = apply({}, LOOSE, refund(BIDDERS[0], 5, "k").postings, phase="posted")
    assert got == {BIDDERS[0]: Balance(5, 0), BANK: Balance(-5, 0)}


def test_an_account_already_negative_may_still_be_raised() -> None:
    start = {BIDDERS[0]: Balance(50, 0), BANK: Balance(-50, 0)}  # both stand negative on their own side
    got = apply(start, SPECS, received(BIDDERS[0], 10, "k").postings, phase="posted")
    assert got == {BANK: Balance(-40, 0), BIDDERS[0]: Balance(40, 0)}


def test_an_unknown_account_or_phase_is_refused() -> None:
    with pytest.raises(LedgerError) as unknown:
        apply({}, SPECS, (Posting("nowhere", 5), Posting(BANK, -5)), phase="posted")
    assert unknown.value.code == "account.unknown" and unknown.value.detail == {"account": "nowhere"}
    with pytest.raises(LedgerError) as phase:
        apply({}, SPECS, received(BIDDERS[0], 1, "k").postings, phase="voided")
    assert phase.value.code == "phase.unknown"


def test_posting_a_pending_refund_moves_it_to_posted_and_voiding_releases_it() -> None:
    start = {BANK: Balance(100, 0), BIDDERS[0]: Balance(-100, 0)}
    legs = refund(BIDDERS[0], 60, "k").postings
    reserved = {**start, **apply(start, SPECS, legs, phase="pending")}
    assert post_pending(reserved, SPECS, legs) == {BIDDERS[0]: Balance(-40, 0), BANK: Balance(40, 0)}
    assert void_pending(reserved, SPECS, legs) == start


def test_money_still_pending_in_cannot_be_paid_out() -> None:
    held = apply({}, SPECS, received(BIDDERS[0], 100, "k").postings, phase="pending")
    with pytest.raises(LedgerError) as refused:
        apply(held, SPECS, refund(BIDDERS[0], 100, "k").postings, phase="posted")
    assert refused.value.detail == {"account": BIDDERS[0], "available": 0, "requested": 100}


def test_voiding_a_pending_inflow_that_was_reserved_against_is_an_overdraft() -> None:
    inflow = received(BIDDERS[0], 100, "k").postings
    held = apply({}, SPECS, inflow, phase="pending")
    reserved = {**held, **apply(held, SPECS, refund(BIDDERS[0], 100, "k").postings, phase="pending")}
    with pytest.raises(LedgerError) as refused:
        void_pending(reserved, SPECS, inflow)
    assert refused.value.code == "overdraft"


@given(st.lists(st.tuples(balanced_postings(), st.sampled_from(["posted", "pending"])), max_size=30))
def test_balances_are_the_sums_of_the_postings(entries: list[tuple[tuple[Posting, ...], str]]) -> None:
    balances: dict[str, Balance] = {}
    for postings, phase in entries:
        changed = apply(balances, LOOSE, postings, phase=phase)
        assert set(changed) == {p.account for p in postings}
        balances.update(changed)
    for code in SPECS:
        posted = sum(p.amount_fen for ps, ph in entries if ph == "posted" for p in ps if p.account == code)
        pending = sum(p.amount_fen for ps, ph in entries if ph == "pending" for p in ps if p.account == code)
        assert balances.get(code, Balance()) == Balance(posted, pending)
    # double entry: the whole ledger nets to zero on both sums
    assert sum(b.posted for b in balances.values()) == sum(b.pending for b in balances.values()) == 0


@given(st.lists(balanced_postings(), max_size=20))
def test_no_guarded_account_ever_goes_below_zero(entries: list[tuple[Posting, ...]]) -> None:
    balances: dict[str, Balance] = {}
    for postings in entries:
        try:
            changed = apply(balances, SPECS, postings, phase="posted")
        except LedgerError as refused:
            assert refused.code == "overdraft"
            spec = SPECS[str(refused.detail["account"])]
            assert refused.detail["available"] == natural(spec, balances.get(spec.code, Balance()).total)
            continue
        balances.update(changed)
        for code in changed:
            assert natural(SPECS[code], balances[code].total) >= 0


@given(st.dictionaries(accounts, st.builds(Balance, amounts, amounts)), balanced_postings())
def test_pending_then_post_equals_posting_and_pending_then_void_changes_nothing(
    start: dict[str, Balance], postings: tuple[Posting, ...]
) -> None:
    reserved = {**start, **apply(start, LOOSE, postings, phase="pending")}
    posted = {**reserved, **post_pending(reserved, LOOSE, postings)}
    assert posted == {**start, **apply(start, LOOSE, postings, phase="posted")}
    assert {**reserved, **void_pending(reserved, LOOSE, postings)} == {
        **start,
        **{p.account: start.get(p.account, Balance()) for p in postings},
    }


@given(st.dictionaries(accounts, st.builds(Balance, amounts, amounts)), balanced_postings())
def test_a_reversal_restores_the_balances(start: dict[str, Balance], postings: tuple[Posting, ...]) -> None:
    original = EntryDraft("opening_balance", postings, "key-00000001", {"tender": "T1"}, "job:x")
    back = reversal(original, key="key-00000002", actor="user:officer", original_sequence=7)
    check_entry(back)
    once = {**start, **apply(start, LOOSE, original.postings, phase="posted")}
    twice = {**once, **apply(once, LOOSE, back.postings, phase="posted")}
    assert twice == {**start, **{p.account: start.get(p.account, Balance()) for p in postings}}


def test_a_reversal_negates_names_the_original_and_keeps_the_context() -> None:
    original = received(BIDDERS[0], 100, "key-00000001")
    back = reversal(original, key="fix-00000001", actor="user:officer", original_sequence=3)
    assert back == EntryDraft(
        "reversal",
        (Posting(BANK, -100), Posting(BIDDERS[0], 100)),
        "fix-00000001",
        {"bidder": BIDDERS[0], "reverses": "3"},
        "user:officer",
    )


# ---------------------------------------------------------------- phases

PHASES = ["pending", "posted", "voided", "bogus"]


@pytest.mark.parametrize("current", PHASES)
@pytest.mark.parametrize("target", PHASES)
def test_only_pending_moves_and_only_to_posted_or_voided(current: str, target: str) -> None:
    if current == "pending" and target in {"posted", "voided"}:
        assert transition(current, target) == target
    else:
        with pytest.raises(LedgerError) as refused:
            transition(current, target)
        assert refused.value.code == "phase.transition"


def test_a_posted_entry_is_final_and_the_error_says_to_reverse_it() -> None:
    with pytest.raises(LedgerError, match="reversal"):
        transition("posted", "voided")


# ---------------------------------------------------------------- verify: a healthy journal


def life_of_two_deposits() -> Book:
    book = Book()
    book.post(received(BIDDERS[0], 80_000_000, "stmt-1:line-1"))
    book.post(received(BIDDERS[1], 80_000_000, "stmt-1:line-2"))
    book.post(draft("interest_accrued", (EXPENSE, 31_111), (PAYABLE, -31_111), key="interest-0001"))
    first = book.post(refund(BIDDERS[0], 80_000_000, "refund-0001"), Phase.PENDING)
    book.resolve(first.sequence, Phase.VOIDED)  # the bank refused the transfer
    again = book.post(refund(BIDDERS[0], 80_000_000, "refund-0002"), Phase.PENDING)
    book.resolve(again.sequence, Phase.POSTED)
    book.post(
        draft(
            "forfeiture", (BIDDERS[1], 80_000_000), (FORFEITED, -80_000_000), key="forfeit-0001", rule="W-16"
        )
    )
    return book


def test_a_healthy_journal_passes_every_check() -> None:
    book = life_of_two_deposits()
    checks = book.checks()
    assert failing(checks) == set()
    assert list(checks) == [
        "sequence gapless from 1",
        "every entry balances",
        "request hashes recompute",
        "hash chain intact",
        "balances equal the sum of postings",
        "no account overdrawn",
        "accounts known",
        "entries well formed",
        "pending entries resolved at most once",
        "reversals undo an earlier entry at most once",
    ]
    assert checks["pending entries resolved at most once"].detail == "2 resolved, 0 still pending"
    assert book.balances[BIDDERS[0]] == Balance(0, 0) and book.balances[FORFEITED] == Balance(-80_000_000, 0)


def test_an_empty_journal_passes() -> None:
    assert failing(Book().checks()) == set()


def test_the_streaming_verifier_gives_the_same_answer_and_the_chain_head() -> None:
    book = life_of_two_deposits()
    checker = Verifier(SPECS)
    for e in book.entries:
        checker.feed(e)
    assert checker.finish(book.balances) == verify(book.entries, SPECS, book.balances)
    assert checker.last_hash == book.entries[-1].hash
    assert checker.computed_balances() == {k: v for k, v in book.balances.items()}


# ---------------------------------------------------------------- verify: tampering, by example


def test_an_edited_amount_is_caught_by_the_balance_check() -> None:
    book = life_of_two_deposits()
    entries = list(book.entries)
    e = entries[0]
    entries[0] = dataclasses.replace(e, postings=(Posting(BANK, 80_000_001), e.postings[1]))
    checks = book.checks(entries)
    assert {
        "every entry balances",
        "request hashes recompute",
        "hash chain intact",
        "balances equal the sum of postings",
    } <= failing(checks)
    assert checks["every entry balances"].detail.startswith("entry 1: entry.unbalanced")


def test_an_edited_context_is_caught_by_the_request_hash() -> None:
    book = life_of_two_deposits()
    entries = list(book.entries)
    entries[7] = dataclasses.replace(entries[7], context={"rule": "W-06"})
    checks = book.checks(entries)
    assert failing(checks) == {"request hashes recompute", "hash chain intact"}
    assert checks["request hashes recompute"].detail.startswith("entry 8:")


def test_a_rewritten_request_hash_does_not_rescue_an_edited_entry() -> None:
    book = life_of_two_deposits()
    entries = list(book.entries)
    forged = dataclasses.replace(entries[7], context={"rule": "W-06"})
    entries[7] = dataclasses.replace(forged, request_hash=request_hash(forged.draft()))
    assert failing(book.checks(entries)) == {"hash chain intact"}


def test_a_removed_entry_is_caught_by_the_sequence_and_the_chain() -> None:
    book = life_of_two_deposits()
    entries = book.entries[:2] + book.entries[3:]
    checks = book.checks(entries)
    assert {"sequence gapless from 1", "hash chain intact", "balances equal the sum of postings"} <= failing(
        checks
    )
    assert checks["sequence gapless from 1"].detail == "entry 4 follows entry 2; expected 3"


def test_a_removed_last_entry_is_caught_by_the_balances() -> None:
    book = life_of_two_deposits()
    checks = book.checks(book.entries[:-1])
    assert failing(checks) == {"balances equal the sum of postings"}
    assert checks["balances equal the sum of postings"].detail.startswith(BIDDERS[1])


def test_a_tampered_stored_balance_is_caught() -> None:
    book = life_of_two_deposits()
    checks = book.checks(balances={**book.balances, BANK: Balance(book.balances[BANK].posted + 1, 0)})
    assert failing(checks) == {"balances equal the sum of postings"}
    assert checks["balances equal the sum of postings"].detail.startswith(BANK)


def test_history_rewritten_and_rehashed_is_caught_by_the_stored_balances_and_the_head() -> None:
    book = life_of_two_deposits()
    forged = Book()
    forged.post(received(BIDDERS[0], 80_000_000, "stmt-1:line-1"))
    forged.post(received(BIDDERS[1], 70_000_000, "stmt-1:line-2"))  # skim 100,000 yuan
    checker = Verifier(SPECS)
    for e in forged.entries:
        checker.feed(e)
    checks = {c.name: c for c in checker.finish(book.balances)}
    assert failing(checks) == {"balances equal the sum of postings"}
    assert checker.last_hash != book.entries[-1].hash


def test_a_second_resolution_of_the_same_pending_entry_is_caught() -> None:
    book = Book()
    book.post(received(BIDDERS[0], 100, "stmt-1:line-1"))
    pending = book.post(refund(BIDDERS[0], 100, "refund-0001"), Phase.PENDING)
    book.resolve(pending.sequence, Phase.POSTED)
    with pytest.raises(LedgerError):
        book.resolve(pending.sequence, Phase.VOIDED)
    with pytest.raises(LedgerError) as refused:  # the balance rule alone refuses paying it twice
        post_pending(book.balances, SPECS, pending.postings)
    assert refused.value.code == "overdraft" and refused.value.detail["account"] == BIDDERS[0]
    # a broken service that skipped both guards:
    twice = EntryDraft("refund_confirmed", pending.postings, "result-0009", {"resolves": "2"}, "job:bank")
    book.specs = LOOSE
    book.post(twice, Phase.POSTED, resolves=pending.sequence)
    book.specs = SPECS
    checks = book.checks()
    assert checks["pending entries resolved at most once"].detail == "entry 4 resolves entry 2 a second time"
    assert checks["no account overdrawn"].offenders == (
        f"{BIDDERS[0]} has -100 fen posted after entry 4",
        f"{BANK} has -100 fen posted after entry 4",
        f"{BANK} is stored at posted -100, pending 100",
        f"{BIDDERS[0]} is stored at posted 100, pending -100",
    )


def test_a_resolution_with_other_postings_is_caught() -> None:
    book = Book()
    book.post(received(BIDDERS[0], 100, "stmt-1:line-1"))
    pending = book.post(refund(BIDDERS[0], 100, "refund-0001"), Phase.PENDING)
    d = EntryDraft(
        "refund_confirmed", refund(BIDDERS[0], 60, "x").postings, "result-0001", {"resolves": "2"}, "job:bank"
    )
    book.post(d, Phase.POSTED, resolves=pending.sequence)
    checks = book.checks()
    assert failing(checks) == {"pending entries resolved at most once"}
    assert (
        checks["pending entries resolved at most once"].detail
        == "entry 3 resolves entry 2 with other postings than it reserved"
    )


def test_a_resolution_of_a_posted_entry_is_caught() -> None:
    book = Book(LOOSE)
    book.post(received(BIDDERS[0], 100, "stmt-1:line-1"))
    d = EntryDraft(
        "refund_failed", received(BIDDERS[0], 100, "x").postings, "result-0001", {"resolves": "1"}, "job:bank"
    )
    book.post(d, Phase.VOIDED, resolves=1)
    assert book.checks()["pending entries resolved at most once"].detail == (
        "entry 2 resolves entry 1 which is not an earlier open pending entry"
    )


def test_a_resolves_link_that_disagrees_with_the_hashed_context_is_caught() -> None:
    book = Book()
    book.post(received(BIDDERS[0], 100, "stmt-1:line-1"))
    pending = book.post(refund(BIDDERS[0], 100, "refund-0001"), Phase.PENDING)
    book.resolve(pending.sequence, Phase.POSTED)
    entries = list(book.entries)
    entries[2] = dataclasses.replace(entries[2], resolves=1)  # the column is outside the entry hash
    assert "pending entries resolved at most once" in failing(book.checks(entries))


def test_an_overdrawn_account_and_an_unknown_account_are_named() -> None:
    book = Book({**LOOSE, "bank:other": AccountSpec("bank:other", "bank", may_go_negative=True)})
    book.post(refund(BIDDERS[0], 100, "refund-0001"))
    book.post(draft("suspense_received", ("bank:other", 5), (SUSPENSE, -5), key="stmt-2:line-1"))
    checks = {c.name: c for c in verify(book.entries, SPECS, book.balances)}
    assert checks["no account overdrawn"].offenders == (
        f"{BIDDERS[0]} stands at -100 fen after entry 1",
        f"{BANK} stands at -100 fen after entry 1",
        f"{BANK} is stored at posted -100, pending 0",
        f"{BIDDERS[0]} is stored at posted 100, pending 0",
    )
    assert (
        checks["no account overdrawn"].detail == f"{BIDDERS[0]} stands at -100 fen after entry 1 (and 3 more)"
    )
    assert checks["accounts known"].offenders == (
        "entry 2 posts to unknown account bank:other",
        "a balance is stored for unknown account bank:other",
    )


def test_an_unknown_reason_or_phase_is_caught() -> None:
    book = life_of_two_deposits()
    entries = list(book.entries)
    entries[0] = dataclasses.replace(entries[0], reason="gift")
    entries[1] = dataclasses.replace(entries[1], phase="maybe")
    checks = book.checks(entries)
    assert checks["entries well formed"].detail.startswith("entry 1: entry.reason")
    assert {"request hashes recompute", "hash chain intact"} <= failing(checks)


def test_a_second_reversal_of_the_same_entry_is_caught() -> None:
    book = Book(LOOSE)
    first = book.post(received(BIDDERS[0], 100, "stmt-1:line-1"))
    book.post(reversal(first.draft(), key="fix-00000001", actor="user:officer", original_sequence=1))
    book.post(reversal(first.draft(), key="fix-00000002", actor="user:officer", original_sequence=1))
    checks = book.checks()
    assert failing(checks) == {"reversals undo an earlier entry at most once"}
    assert (
        checks["reversals undo an earlier entry at most once"].detail
        == "entry 3 reverses entry 1 a second time"
    )


def test_every_offender_of_a_check_is_named_with_the_total() -> None:
    book = Book(LOOSE)
    first = book.post(received(BIDDERS[0], 100, "stmt-1:line-1"))
    second = book.post(received(BIDDERS[1], 100, "stmt-1:line-2"))
    for n, original in enumerate((first, first, second, second), start=1):
        book.post(
            reversal(
                original.draft(),
                key=f"fix-0000000{n}",
                actor="user:officer",
                original_sequence=original.sequence,
            )
        )
    entries = list(book.entries)
    for i in (0, 1):  # both deposits edited behind the service's back
        entries[i] = dataclasses.replace(entries[i], context={"rule": "W-06"})
    checks = book.checks(entries)
    reversed_twice = checks["reversals undo an earlier entry at most once"]
    assert reversed_twice.offenders == (
        "entry 4 reverses entry 1 a second time",
        "entry 6 reverses entry 2 a second time",
    )
    assert reversed_twice.total == 2
    assert reversed_twice.detail == "entry 4 reverses entry 1 a second time (and 1 more)"
    requests = checks["request hashes recompute"]
    assert [o.split(":")[0] for o in requests.offenders] == ["entry 1", "entry 2"]
    assert requests.total == 2


def test_a_check_names_at_most_its_limit_and_counts_the_rest() -> None:
    book = Book()
    for n in range(1, 8):
        book.post(received(BIDDERS[0], n, book.key()))
    entries = [dataclasses.replace(e, context={"rule": "W-06"}) for e in book.entries]
    checker = Verifier(SPECS, limit=3)
    for e in entries:
        checker.feed(e)
    requests = {c.name: c for c in checker.finish(book.balances)}["request hashes recompute"]
    assert [o.split(":")[0] for o in requests.offenders] == ["entry 1", "entry 2", "entry 3"]
    assert requests.total == 7
    assert requests.detail.endswith("(and 6 more; the first 3 are listed)")


@pytest.mark.parametrize(
    ("named", "detail"),
    [
        ("9", "entry 3 is a reversal naming '9', not an earlier entry"),
        ("2", "entry 3 reverses entry 2, a pending entry (void it instead)"),
    ],
)
def test_a_reversal_of_a_later_or_pending_entry_is_caught(named: str, detail: str) -> None:
    book = Book(LOOSE)
    book.post(received(BIDDERS[0], 100, "stmt-1:line-1"))
    pending = book.post(refund(BIDDERS[0], 100, "refund-0001"), Phase.PENDING)
    book.post(
        reversal(pending.draft(), key="fix-00000001", actor="user:officer", original_sequence=int(named))
    )
    assert book.checks()["reversals undo an earlier entry at most once"].detail == detail


def test_a_first_entry_not_chained_to_genesis_is_caught() -> None:
    book = life_of_two_deposits()
    entries = list(book.entries)
    entries[0] = dataclasses.replace(entries[0], previous_hash="f" * 64)
    assert book.checks(entries)["hash chain intact"].detail.startswith(
        "entry 1: previous hash ffffffffffffffff"
    )


# ---------------------------------------------------------------- verify: random journals and tampering


@st.composite
def journeys(draw: st.DrawFn) -> Book:
    """A random life of deposits: arrivals, pending refunds that succeed or fail, direct refunds,
    interest, forfeiture and reversals, each refused by the ledger when it would overdraw."""
    book = Book()
    for _ in range(draw(st.integers(1, 25))):
        op = draw(
            st.sampled_from(
                ["deposit", "deposit", "pending", "resolve", "refund", "interest", "forfeit", "reverse"]
            )
        )
        bidder = draw(st.sampled_from(BIDDERS))
        amount = draw(st.integers(1, 10**9))
        try:
            if op == "deposit":
                book.post(received(bidder, amount, book.key()))
            elif op == "pending":
                book.post(refund(bidder, amount, book.key()), Phase.PENDING)
            elif op == "resolve" and book.open_pending():
                book.resolve(
                    draw(st.sampled_from(book.open_pending())),
                    draw(st.sampled_from([Phase.POSTED, Phase.VOIDED])),
                )
            elif op == "refund":
                book.post(refund(bidder, amount, book.key()))
            elif op == "interest":
                book.post(draft("interest_accrued", (EXPENSE, amount), (PAYABLE, -amount), key=book.key()))
            elif op == "forfeit":
                book.post(draft("forfeiture", (bidder, amount), (FORFEITED, -amount), key=book.key()))
            elif op == "reverse":
                posted = book.reversible()
                if posted:
                    e = draw(st.sampled_from(posted))
                    book.post(
                        reversal(
                            e.draft(), key=book.key(), actor="user:officer", original_sequence=e.sequence
                        )
                    )
        except LedgerError as refused:
            assert refused.code == "overdraft"  # the only refusal a well-formed operation may meet
    assume(book.entries)
    return book


@settings(max_examples=150)
@given(journeys())
def test_any_journey_verifies_and_its_balances_are_the_sums(book: Book) -> None:
    assert failing(book.checks()) == set()
    for code, balance in book.balances.items():
        assert natural(SPECS[code], balance.total) >= 0


TAMPERINGS = ["amount", "remove", "swap", "context", "balance", "key", "time"]


@settings(max_examples=200)
@given(journeys(), st.sampled_from(TAMPERINGS), st.data())
def test_any_tampering_is_caught_by_the_right_check(book: Book, how: str, data: st.DataObject) -> None:
    entries, balances = list(book.entries), dict(book.balances)
    i = data.draw(st.integers(0, len(entries) - 1))
    e = entries[i]
    if how == "amount":
        leg = data.draw(st.integers(0, len(e.postings) - 1))
        delta = data.draw(st.integers(-1000, 1000).filter(lambda n: n != 0))
        legs = list(e.postings)
        legs[leg] = Posting(legs[leg].account, legs[leg].amount_fen + delta)
        entries[i] = dataclasses.replace(e, postings=tuple(legs))
        expected = {"every entry balances", "request hashes recompute", "hash chain intact"}
    elif how == "remove":
        del entries[i]
        last = i == len(book.entries) - 1
        expected = (
            {"balances equal the sum of postings"}
            if last
            else {"sequence gapless from 1", "hash chain intact"}
        )
    elif how == "swap":
        assume(len(entries) >= 2)
        j = min(i, len(entries) - 2)
        entries[j], entries[j + 1] = entries[j + 1], entries[j]
        expected = {"sequence gapless from 1", "hash chain intact"}
    elif how == "context":
        entries[i] = dataclasses.replace(e, context={**e.context, "bidder": "someone-else"})
        expected = {"request hashes recompute", "hash chain intact"}
    elif how == "balance":
        code = data.draw(st.sampled_from(sorted(balances)))
        balances[code] = Balance(
            balances[code].posted + data.draw(st.integers(1, 1000)), balances[code].pending
        )
        expected = {"balances equal the sum of postings"}
    elif how == "key":
        entries[i] = dataclasses.replace(e, idempotency_key=e.idempotency_key + "x")
        expected = {"hash chain intact"}
    else:
        entries[i] = dataclasses.replace(e, at=e.at + timedelta(microseconds=1))
        expected = {"hash chain intact"}
    assert expected <= failing(book.checks(entries, balances))


# ---------------------------------------------------------------- the documented encodings, pinned


def test_a_scheme_2_request_hash_is_sha256_of_the_documented_text() -> None:
    d = EntryDraft(
        "deposit_received",
        (Posting(BANK, 80_000_000), Posting(BIDDERS[0], -80_000_000)),
        "stmt-1:line-1",
        {"tender": "T1", "bidder": "乙公司", "lot": "1"},
        "job:statement-import",
        NO_PARTY,
        2,
    )
    text = (
        "ggzy.escrow.request.2\n"
        "deposit_received\n"
        "job:statement-import\n"
        '{"lot": "1", "bidder": "乙公司", "tender": "T1"}\n'
        "bank:escrow\n80000000\n"
        "deposit:T1:L1:bidder-a\n-80000000"
    )
    assert request_text(d) == text
    assert request_hash(d) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_a_scheme_2_entry_hash_is_sha256_of_the_documented_text() -> None:
    d = dataclasses.replace(received(BIDDERS[0], 80_000_000, "stmt-1:line-1"), party=NO_PARTY, scheme=2)
    at = datetime(2025, 3, 1, 10, 0, 0, 123, tzinfo=timezone(timedelta(hours=8)))  # 02:00 UTC
    text = f"ggzy.escrow.entry.2\n{GENESIS}\n1\nstmt-1:line-1\n{request_hash(d)}\nposted\n1740794400000123"
    assert entry_text(GENESIS, 1, "stmt-1:line-1", request_hash(d), Phase.POSTED, at, 2) == text
    assert entry_hash(GENESIS, 1, d, Phase.POSTED, at) == hashlib.sha256(text.encode()).hexdigest()


# Scheme 3, byte for byte, with digests computed once by hand (`printf '%s' "$text" | sha256sum`), so an
# auditor's own implementation can be checked against these literals.
V3_REQUEST = (
    "ggzy.escrow.request.3\n"
    "deposit_received\n"
    "job:statement-import\n"
    '{"lot": "1", "bidder": "乙公司", "tender": "T1"}\n'
    "payer\n"
    "6222020100000001\n"
    "乙公司\n"
    "中国工商银行南京分行\n"
    "bank:escrow\n80000000\n"
    "deposit:T1:L1:bidder-a\n-80000000"
)
V3_REQUEST_SHA256 = "cf8e2b13ebe03b02c2d3938ede26d44395307886acc993670b34f280e6b98df1"
V3_MEMO = (
    "ggzy.escrow.request.3\n"
    "payee_changed\n"
    "user:officer\n"
    '{"deposit": "D1"}\n'
    "payee\n"
    "6222020100000002\n"
    "乙公司\n"
    "中国银行南京分行"
)
V3_MEMO_SHA256 = "ea8c3a96961f1c63677de8f847035ac5db8d342a4c6d036dc0f4638e08a98736"
V3_ENTRY_SHA256 = "7b9eed3e92437453bdc31290b70d3e454edd4f498f6118bc35bdf94191486fb7"


def test_a_scheme_3_request_hashes_the_payer_byte_for_byte() -> None:
    d = EntryDraft(
        "deposit_received",
        (Posting(BANK, 80_000_000), Posting(BIDDERS[0], -80_000_000)),
        "stmt-1:line-1",
        {"tender": "T1", "bidder": "乙公司", "lot": "1"},
        "job:statement-import",
        PAYER,
    )
    assert request_text(d) == V3_REQUEST
    assert request_hash(d) == V3_REQUEST_SHA256


def test_a_scheme_3_memo_hashes_the_payee_and_no_postings() -> None:
    payee = Party("payee", "6222020100000002", "乙公司", "中国银行南京分行")
    d = EntryDraft("payee_changed", (), "payee:0001", {"deposit": "D1"}, "user:officer", payee)
    check_entry(d)
    assert request_text(d) == V3_MEMO
    assert request_hash(d) == V3_MEMO_SHA256


def test_a_scheme_3_entry_hash_is_sha256_of_the_documented_text() -> None:
    at = datetime(2025, 3, 1, 10, 0, 0, 123, tzinfo=timezone(timedelta(hours=8)))  # 02:00 UTC
    text = f"ggzy.escrow.entry.3\n{GENESIS}\n1\nstmt-1:line-1\n{V3_REQUEST_SHA256}\nposted\n1740794400000123"
    assert entry_text(GENESIS, 1, "stmt-1:line-1", V3_REQUEST_SHA256, Phase.POSTED, at) == text
    assert link_hash(GENESIS, 1, "stmt-1:line-1", V3_REQUEST_SHA256, Phase.POSTED, at) == V3_ENTRY_SHA256


def test_the_scheme_is_inside_the_link_so_an_entry_cannot_change_scheme() -> None:
    d = received(BIDDERS[0], 80_000_000, "stmt-1:line-1")
    as_2 = dataclasses.replace(d, party=NO_PARTY, scheme=2)
    at = datetime(2025, 3, 1, 2, tzinfo=UTC)
    assert entry_hash(GENESIS, 1, d, Phase.POSTED, at) != entry_hash(GENESIS, 1, as_2, Phase.POSTED, at)
    with pytest.raises(ValueError, match="unknown hash scheme 4"):
        request_text(dataclasses.replace(d, scheme=4))


@pytest.mark.parametrize(
    ("context", "written"),
    [
        ({}, "{}"),
        ({"tender": "T1", "lot": "1", "bidder": "b"}, '{"lot": "1", "bidder": "b", "tender": "T1"}'),
        ({"bb": "1", "é": "2", "z": "3"}, '{"z": "3", "bb": "1", "é": "2"}'),  # é is two bytes
        (
            {"q": 'say "hi"\\', "c": "a\nb\t\x01\x7f😀"},
            '{"c": "a\\nb\\t\\u0001\x7f😀", "q": "say \\"hi\\"\\\\"}',
        ),
    ],
)
def test_the_context_is_written_as_postgresql_writes_a_jsonb_object(
    context: dict[str, str], written: str
) -> None:
    assert context_text(context) == written


@pytest.mark.parametrize("context", [{"n": 1}, ["not", "a", "mapping"], {1: "x"}])
def test_a_context_that_is_not_text_to_text_has_no_canonical_text(context: object) -> None:
    with pytest.raises(TypeError):
        context_text(context)  # type: ignore[arg-type]


def test_an_instant_before_1970_counts_negative_microseconds() -> None:
    d = received(BIDDERS[0], 1, "stmt-1:line-1")
    at = datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)
    assert entry_text(GENESIS, 1, "k", request_hash(d), "posted", at).endswith("\n-500000")


def test_a_stored_balance_standing_overdrawn_is_named() -> None:
    book = life_of_two_deposits()
    bad = {**book.balances, BIDDERS[2]: Balance(5, 0), BANK: Balance(book.balances[BANK].posted - 5, 0)}
    checks = book.checks(balances=bad)
    assert failing(checks) == {"balances equal the sum of postings", "no account overdrawn"}
    assert checks["no account overdrawn"].detail == f"{BIDDERS[2]} is stored at posted 5, pending 0"


def test_one_entry_is_judged_on_its_own_against_the_entry_before_it() -> None:
    book = life_of_two_deposits()
    second = book.entries[1]
    assert entry_problems(second, 1, book.entries[0].hash, SPECS) == {}
    legs = (Posting("bank:other", 1), second.postings[1])
    forged = dataclasses.replace(second, context={"n": 2}, postings=legs)  # type: ignore[dict-item]
    found = entry_problems(forged, 5, "f" * 64, SPECS)
    assert found == {
        "sequence gapless from 1": "entry 2 follows entry 5; expected 6",
        "every entry balances": "entry 2: entry.unbalanced: The postings sum to -79999999 fen, not zero (debits must equal credits).",
        "entries well formed": "entry 2: entry.context: Context entry 'n' must map text to text.",
        "request hashes recompute": "entry 2: cannot recompute (context entry 'n' does not map text to text)",
        "hash chain intact": f"entry 2: previous hash {book.entries[0].hash[:16]}… but the chain ends ffffffffffffffff…",
        "accounts known": "entry 2 posts to unknown account bank:other",
    }


def test_a_request_without_canonical_text_breaks_its_link_even_if_rehashed() -> None:
    book = Book()
    first = book.post(received(BIDDERS[0], 100, "stmt-1:line-1"))
    entries = [dataclasses.replace(first, context={"bidder": 7})]  # type: ignore[dict-item]
    assert failing(book.checks(entries)) >= {
        "hash chain intact",
        "request hashes recompute",
        "entries well formed",
    }


@pytest.mark.parametrize(
    ("named", "problem"),
    [
        ("1", None),
        ("01", None),
        ("٣", "entry 5 is a reversal naming '٣', not an earlier entry"),  # a decimal digit, not ASCII
        (1, "entry 5 is a reversal naming 1, not an earlier entry"),
        ("", "entry 5 is a reversal naming '', not an earlier entry"),
        ("5", "entry 5 is a reversal naming '5', not an earlier entry"),
        ("2", "entry 5 reverses entry 2, a pending entry (void it instead)"),
    ],
)
def test_a_reversal_names_an_earlier_entry_in_ascii_digits(named: object, problem: str | None) -> None:
    assert Lifecycle().reversal(5, named, lambda sequence: sequence == 2) == problem


def test_the_lifecycle_pops_a_reservation_once_whatever_else_is_wrong() -> None:
    lifecycle = Lifecycle()
    assert lifecycle.resolution(5, "posted", 2, "3", True, False) == (
        "entry 5 resolves entry 2 but its context says '3'"
    )
    assert lifecycle.resolved == {2}
    assert lifecycle.resolution(6, "voided", 2, "2", True, True) == "entry 6 resolves entry 2 a second time"
    assert (
        lifecycle.resolution(7, "pending", 3, "3", True, True)
        == "entry 7 is pending yet claims to resolve entry 3"
    )
    assert lifecycle.resolved == {2}


def test_the_verifier_keeps_only_open_pending_entries() -> None:
    book = Book()
    book.post(received(BIDDERS[0], 300, "stmt-1:line-1"))
    for n in range(3):
        book.post(refund(BIDDERS[0], 100, f"refund-000{n}"), Phase.PENDING)
    book.resolve(2, Phase.POSTED)
    book.resolve(3, Phase.VOIDED)
    assert book.checks()["pending entries resolved at most once"].detail == "2 resolved, 1 still pending"
    assert book.balances[BIDDERS[0]] == Balance(-200, 100)


# ---------------------------------------------------------------- a state machine over the pure ledger


class LedgerMachine(RuleBasedStateMachine):
    """Random intake, pending refunds that succeed or fail, direct refunds, forfeiture and reversals;
    after every step the journal verifies and every deposit's figures stand at or above zero."""

    def __init__(self) -> None:
        super().__init__()
        self.book = Book()
        self.paid_in = dict.fromkeys(BIDDERS, 0)
        self.paid_out = dict.fromkeys(BIDDERS, 0)  # refunded (posted) or forfeited

    def _try(self, d: EntryDraft, phase: str = Phase.POSTED) -> StoredEntry | None:
        try:
            return self.book.post(d, phase)
        except LedgerError as refused:
            assert refused.code == "overdraft"
            return None

    @rule(bidder=st.sampled_from(BIDDERS), amount=st.integers(1, 10**10))
    def deposit(self, bidder: str, amount: int) -> None:
        self.book.post(received(bidder, amount, self.book.key()))
        self.paid_in[bidder] += amount

    @rule(bidder=st.sampled_from(BIDDERS), amount=st.integers(1, 10**10))
    def instruct_refund(self, bidder: str, amount: int) -> None:
        self._try(refund(bidder, amount, self.book.key()), Phase.PENDING)

    @precondition(lambda self: bool(self.book.open_pending()))
    @rule(data=st.data(), ok=st.booleans())
    def bank_answers(self, data: st.DataObject, ok: bool) -> None:
        pending = data.draw(st.sampled_from(self.book.open_pending()))
        done = self.book.resolve(pending, Phase.POSTED if ok else Phase.VOIDED)
        if ok:
            bidder = done.context["bidder"]
            self.paid_out[bidder] += done.postings[0].amount_fen

    @rule(bidder=st.sampled_from(BIDDERS), amount=st.integers(1, 10**10))
    def forfeit(self, bidder: str, amount: int) -> None:
        if self._try(
            draft("forfeiture", (bidder, amount), (FORFEITED, -amount), key=self.book.key(), bidder=bidder)
        ):
            self.paid_out[bidder] += amount

    @precondition(lambda self: bool(self.book.reversible("deposit_received")))
    @rule(data=st.data())
    def reverse_a_deposit(self, data: st.DataObject) -> None:
        e = data.draw(st.sampled_from(self.book.reversible("deposit_received")))
        back = reversal(e.draft(), key=self.book.key(), actor="user:officer", original_sequence=e.sequence)
        if self._try(back):
            self.paid_in[e.context["bidder"]] -= -e.postings[1].amount_fen

    @invariant()
    def the_journal_verifies(self) -> None:
        assert failing(self.book.checks()) == set()

    @invariant()
    def no_deposit_pays_out_more_than_came_in(self) -> None:
        for bidder in BIDDERS:
            balance = self.book.balances.get(bidder, Balance())
            assert natural(SPECS[bidder], balance.posted) == self.paid_in[bidder] - self.paid_out[bidder] >= 0
            assert natural(SPECS[bidder], balance.total) >= 0


LedgerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30)
test_the_ledger_machine = LedgerMachine.TestCase
