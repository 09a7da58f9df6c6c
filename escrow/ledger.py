"""The deposit ledger's arithmetic (保证金台账): entries, postings, balances, phases, hashes and invariants.

Pure logic, no I/O and no clock: `escrow/journal.py` stores what this module decides, and the auditors'
checker (`verify`, `Verifier`) re-derives everything from the stored rows without trusting the service.

Conventions, borrowed from TigerBeetle and Formance:

- Money is integer fen. A posting's `amount_fen` is signed, debit positive and credit negative, and the
  postings of one entry sum to zero (double entry).
- A balance is kept as two signed debit-minus-credit sums, `posted` and `pending`; `natural` turns a
  signed figure into the account's own sense (what the bank holds, what the centre owes a bidder).
- Entries are immutable. A pending entry (a reservation, e.g. a refund instructed to the bank) is resolved
  at most once by a later entry that posts or voids it; a posted entry is final and is corrected only by a
  reversing entry.
- Every entry carries an idempotency key and the hash of its request, and is chained to the entry before
  it by SHA-256, so an auditor holding the last hash can detect any edit, insertion or removal.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

# ---------------------------------------------------------------- errors


class LedgerError(ValueError):
    """A refused entry or balance change: a stable machine `code`, a human `message`, and `detail`."""

    def __init__(self, code: str, message: str, **detail: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail: dict[str, object] = dict(detail)

    def __repr__(self) -> str:
        return f"LedgerError({self.code!r}, {self.message!r}, **{self.detail!r})"


# ---------------------------------------------------------------- accounts


class Side(StrEnum):
    """The side on which an account's balance normally stands."""

    DEBIT = "debit"
    CREDIT = "credit"


ACCOUNT_KINDS: Final[Mapping[str, Side]] = MappingProxyType(
    {
        "bank": Side.DEBIT,  # the escrow bank account (an asset of the centre)
        "deposit": Side.CREDIT,  # one per bidder per tender/lot: what the centre owes that bidder
        "suspense": Side.CREDIT,  # money received but not yet matched to a deposit sub-account
        "interest_payable": Side.CREDIT,  # interest accrued to bidders, not yet paid out
        "interest_expense": Side.DEBIT,  # interest the centre bears
        "interest_income": Side.CREDIT,  # interest the escrow bank credits to the escrow account
        "forfeited": Side.CREDIT,  # forfeited deposits held for the treasury
        "refunds_in_transit": Side.CREDIT,  # refunds instructed to the bank, not yet confirmed
    }
)


@dataclass(frozen=True)
class AccountSpec:
    """What the ledger needs to know about an account: its code, its kind, and whether it may go negative."""

    code: str
    kind: str
    may_go_negative: bool = False

    @property
    def normal(self) -> Side:
        """The account's normal side, from its kind; an unknown kind is refused ("account.unknown")."""
        try:
            return ACCOUNT_KINDS[self.kind]
        except KeyError:
            raise LedgerError(
                "account.unknown",
                f"Account {self.code} has an unknown kind {self.kind!r}.",
                account=self.code,
            ) from None


# ---------------------------------------------------------------- entries

REASONS: Final[frozenset[str]] = frozenset(
    {
        "deposit_received",
        "suspense_received",
        "suspense_matched",
        "suspense_returned",
        "refund_instructed",
        "refund_confirmed",
        "refund_failed",
        "interest_accrued",
        "interest_received",
        "forfeiture",
        "reversal",
        "opening_balance",
    }
)

# Idempotency keys travel through HTTP headers, bank files and job names; a narrow ASCII alphabet keeps
# them unambiguous in all three, and 8 characters is the least that is not a guessable counter.
KEY_PATTERN: Final = re.compile(r"[A-Za-z0-9_.:-]{8,128}")

# The database stores fen as a signed 64-bit integer; anything larger is a bug upstream, not a deposit.
MAX_AMOUNT_FEN: Final = 2**63 - 1


@dataclass(frozen=True)
class Posting:
    """One leg of an entry: a signed amount in fen on one account (debit positive, credit negative)."""

    account: str
    amount_fen: int


@dataclass(frozen=True)
class EntryDraft:
    """An entry as requested, before it has a sequence number, a phase, a time or a hash."""

    reason: str
    postings: tuple[Posting, ...]
    idempotency_key: str
    context: Mapping[str, str] = field(
        default_factory=dict
    )  # tender, lot, bidder, obligation, statement line…
    actor: str = ""  # "user:<uuid>" or "job:<name>"


def _postings_problem(postings: Sequence[Posting]) -> LedgerError | None:
    """The first structural fault of a set of postings (shared by `check_entry` and the verifier)."""
    if len(postings) < 2:
        return LedgerError("entry.empty", f"An entry needs at least two postings, not {len(postings)}.")
    seen: set[str] = set()
    total = 0
    for leg, p in enumerate(postings):
        # bool is an int in Python; True fen is never what anyone meant
        if type(p.amount_fen) is not int or abs(p.amount_fen) > MAX_AMOUNT_FEN:
            return LedgerError(
                "entry.amount",
                f"Posting {leg} on {p.account} must be a whole number of fen within 64 bits.",
                leg=leg,
                account=p.account,
            )
        if p.amount_fen == 0:
            return LedgerError(
                "entry.zero_amount",
                f"Posting {leg} on {p.account} moves nothing.",
                leg=leg,
                account=p.account,
            )
        if p.account in seen:
            # one leg per account keeps an entry readable and its balance change unambiguous
            return LedgerError(
                "entry.duplicate_account",
                f"Account {p.account} appears more than once in the entry; net its legs into one.",
                leg=leg,
                account=p.account,
            )
        seen.add(p.account)
        total += p.amount_fen
    if total != 0:
        return LedgerError(
            "entry.unbalanced",
            f"The postings sum to {total} fen, not zero (debits must equal credits).",
            total=total,
        )
    return None


def _draft_problem(draft: EntryDraft) -> LedgerError | None:
    """The first fault of an entry other than its postings: reason, key, context."""
    if draft.reason not in REASONS:
        return LedgerError("entry.reason", f"Unknown entry reason {draft.reason!r}.", reason=draft.reason)
    if not isinstance(draft.idempotency_key, str) or KEY_PATTERN.fullmatch(draft.idempotency_key) is None:
        return LedgerError(
            "entry.key",
            "The idempotency key must be 8–128 characters of A–Z, a–z, 0–9, '_', '.', ':' and '-'.",
            key=draft.idempotency_key,
        )
    for k, v in draft.context.items():
        # the request hash is over the context as text; anything else would not survive a JSON round trip
        if not isinstance(k, str) or not isinstance(v, str):
            return LedgerError("entry.context", f"Context entry {k!r} must map text to text.", key=str(k))
    if not isinstance(draft.actor, str):
        return LedgerError("entry.actor", "The actor must be text such as 'user:<uuid>' or 'job:<name>'.")
    return None


def check_entry(draft: EntryDraft) -> None:
    """Refuse a malformed entry with the precise `LedgerError` code: "entry.reason", "entry.key",
    "entry.context", "entry.actor", "entry.empty", "entry.amount", "entry.zero_amount",
    "entry.duplicate_account" or "entry.unbalanced" (checked in that order)."""
    problem = _draft_problem(draft) or _postings_problem(draft.postings)
    if problem is not None:
        raise problem


# sorted keys, no whitespace, UTF-8: the same bytes on every platform and Python version. One encoder,
# built once: json.dumps with options builds a new one per call, which the verifier would feel.
_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical(obj: object) -> bytes:
    return _ENCODER.encode(obj).encode("utf-8")


def request_hash(draft: EntryDraft) -> str:
    """Hex SHA-256 of what the entry asks for, without its idempotency key.

    The canonical encoding is the UTF-8 JSON (keys sorted, no whitespace, non-ASCII unescaped) of
    `{"v": "ggzy.escrow.request.1", "reason": …, "postings": [[account, amount_fen], …] in the given order,
    "context": {…}, "actor": …}`. The same key with the same request hash is a replay; the same key with
    another hash is a conflict."""
    return hashlib.sha256(
        _canonical(
            {
                "v": "ggzy.escrow.request.1",
                "reason": draft.reason,
                "postings": [[p.account, p.amount_fen] for p in draft.postings],
                "context": dict(draft.context),
                "actor": draft.actor,
            }
        )
    ).hexdigest()


GENESIS: Final = "0" * 64


def _utc_text(at: datetime) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("An entry's time must be timezone-aware (UTC); naive datetimes are refused.")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _link_hash(previous_hash: str, sequence: int, key: str, request: str, phase: str, at: datetime) -> str:
    return hashlib.sha256(
        _canonical(
            {
                "v": "ggzy.escrow.entry.1",
                "previous": previous_hash,
                "sequence": sequence,
                "key": key,
                "request": request,
                "phase": str(phase),
                "at": _utc_text(at),
            }
        )
    ).hexdigest()


def entry_hash(previous_hash: str, sequence: int, draft: EntryDraft, phase: str, at: datetime) -> str:
    """Hex SHA-256 of one link of the journal's chain.

    The canonical encoding is the UTF-8 JSON (keys sorted, no whitespace) of `{"v": "ggzy.escrow.entry.1",
    "previous": previous_hash, "sequence": n, "key": idempotency key, "request": request_hash(draft),
    "phase": phase, "at": at in UTC as ISO 8601 with microseconds, e.g. "2025-03-01T02:00:00.000000+00:00"}`.
    Microseconds because both PostgreSQL and SQLite keep them, so the stored time recomputes the hash.
    The first entry's previous hash is `GENESIS`; a naive `at` is a ValueError."""
    return _link_hash(previous_hash, sequence, draft.idempotency_key, request_hash(draft), phase, at)


# ---------------------------------------------------------------- balances


@dataclass(frozen=True)
class Balance:
    """An account's balance as TigerBeetle keeps it: posted and pending sums, each signed debit − credit."""

    posted: int = 0
    pending: int = 0

    @property
    def total(self) -> int:
        """Posted plus pending: what the no-overdraft rule looks at (a reservation counts)."""
        return self.posted + self.pending


def natural(spec: AccountSpec, signed: int) -> int:
    """A signed debit − credit figure on the account's normal side: as is for a debit-normal account,
    negated for a credit-normal one (so a deposit of 100 fen received shows as 100 on the deposit)."""
    return signed if spec.normal is Side.DEBIT else -signed


def _spec(specs: Mapping[str, AccountSpec], account: str) -> AccountSpec:
    spec = specs.get(account)
    if spec is None:
        raise LedgerError("account.unknown", f"Unknown ledger account {account}.", account=account)
    spec.normal  # noqa: B018 - refuses an unknown kind before any arithmetic
    return spec


def _net(postings: Sequence[Posting]) -> dict[str, int]:
    # apply() also serves callers that did not run check_entry; netting makes repeated accounts harmless
    out: dict[str, int] = {}
    for p in postings:
        out[p.account] = out.get(p.account, 0) + p.amount_fen
    return out


def _guard(spec: AccountSpec, before: Balance, after: Balance) -> None:
    """The no-overdraft rule, for an account that may not go negative. A change that lowers either figure
    below may not take it below zero:

    - natural(posted + pending): a pending reservation counts, so two pending refunds cannot both reserve
      the same money;
    - natural(posted): money still pending in does not fund money going out (TigerBeetle's rule), so a
      refund posted twice, or posted against a receipt that may yet be voided, is refused.

    A change that raises a figure is always allowed, so an account that somehow stands negative can still
    be repaired. With only outflows ever pending (refunds), the second figure follows from the first."""
    if spec.may_go_negative:
        return
    for counted, was, now in (
        ("posted and pending", natural(spec, before.total), natural(spec, after.total)),
        ("posted", natural(spec, before.posted), natural(spec, after.posted)),
    ):
        if now < was and now < 0:
            raise LedgerError(
                "overdraft",
                f"{spec.code} has {was} fen available ({counted}); {was - now} fen requested.",
                account=spec.code,
                available=was,
                requested=was - now,
            )


class Phase(StrEnum):
    """An entry's phase: pending (a reservation), posted (final), voided (a released reservation)."""

    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"


def apply(
    balances: Mapping[str, Balance],
    specs: Mapping[str, AccountSpec],
    postings: Sequence[Posting],
    *,
    phase: str,
) -> dict[str, Balance]:
    """The new balances of the accounts the postings touch (only those): "posted" adds to the posted sums,
    "pending" to the pending sums. An account missing from `balances` starts at zero; one missing from
    `specs` is "account.unknown"; an overdraft (see `_guard`) is "overdraft" with the account, what was
    available and what was requested; any other phase is "phase.unknown"."""
    if phase not in (Phase.POSTED, Phase.PENDING):
        raise LedgerError(
            "phase.unknown", f"A new entry is posted or pending, not {phase!r}.", phase=str(phase)
        )
    out: dict[str, Balance] = {}
    for account, delta in _net(postings).items():
        spec = _spec(specs, account)
        before = balances.get(account, Balance())
        if phase == Phase.POSTED:
            after = Balance(before.posted + delta, before.pending)
        else:
            after = Balance(before.posted, before.pending + delta)
        _guard(spec, before, after)
        out[account] = after
    return out


def post_pending(
    balances: Mapping[str, Balance], specs: Mapping[str, AccountSpec], postings: Sequence[Posting]
) -> dict[str, Balance]:
    """Post a pending entry's postings: each amount moves from the pending sum to the posted sum. The
    total does not change; the posted sum may not be overdrawn (see `_guard`), which refuses posting the
    same refund twice. That these are the pending entry's own postings is the caller's duty (the service
    reads them back; the verifier re-checks it)."""
    out: dict[str, Balance] = {}
    for account, delta in _net(postings).items():
        spec = _spec(specs, account)
        before = balances.get(account, Balance())
        after = Balance(before.posted + delta, before.pending - delta)
        _guard(spec, before, after)
        out[account] = after
    return out


def void_pending(
    balances: Mapping[str, Balance], specs: Mapping[str, AccountSpec], postings: Sequence[Posting]
) -> dict[str, Balance]:
    """Void a pending entry's postings: each amount leaves the pending sum. Releasing a pending outflow
    only raises balances; voiding a pending inflow that something else already reserved against is an
    "overdraft" (the money it promised never came)."""
    out: dict[str, Balance] = {}
    for account, delta in _net(postings).items():
        spec = _spec(specs, account)
        before = balances.get(account, Balance())
        after = Balance(before.posted, before.pending - delta)
        _guard(spec, before, after)
        out[account] = after
    return out


# ---------------------------------------------------------------- phases

# The whole state machine: a pending entry is posted or voided, once; nothing else moves.
TRANSITIONS: Final[Mapping[Phase, frozenset[Phase]]] = MappingProxyType(
    {
        Phase.PENDING: frozenset({Phase.POSTED, Phase.VOIDED}),
        Phase.POSTED: frozenset(),  # final: a correction is a reversal, never an edit
        Phase.VOIDED: frozenset(),
    }
)


def transition(current: str, target: str) -> str:
    """The phase after moving `current` to `target`: only pending → posted and pending → voided; anything
    else (including unknown phases and staying put) is LedgerError "phase.transition"."""
    try:
        allowed = TRANSITIONS[Phase(current)]
        goal = Phase(target)
    except ValueError:
        raise LedgerError(
            "phase.transition", f"Unknown phase in {current!r} → {target!r}.", current=current, target=target
        ) from None
    if goal not in allowed:
        hint = " A posted entry is corrected by a reversal." if current == Phase.POSTED else ""
        raise LedgerError(
            "phase.transition",
            f"An entry that is {current} cannot become {target}.{hint}",
            current=current,
            target=target,
        )
    return goal.value


def reversal(draft: EntryDraft, *, key: str, actor: str, original_sequence: int) -> EntryDraft:
    """The entry that undoes a posted one: the same accounts with negated amounts, reason "reversal", the
    original context plus "reverses" naming the original's sequence number."""
    return EntryDraft(
        reason="reversal",
        postings=tuple(Posting(p.account, -p.amount_fen) for p in draft.postings),
        idempotency_key=key,
        context={**draft.context, "reverses": str(original_sequence)},
        actor=actor,
    )


# ---------------------------------------------------------------- verification


@dataclass(frozen=True)
class Check:
    """One invariant's result, with a detail naming the first offender (or what was covered)."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class StoredEntry:
    """A journal entry as stored: one link of the hash chain.

    `resolves` names the pending entry that this posted or voided entry resolves (None for ordinary
    entries); the service also records it in the context as "resolves", which the request hash covers."""

    sequence: int
    idempotency_key: str
    request_hash: str
    reason: str
    phase: str
    at: datetime
    previous_hash: str
    hash: str
    postings: tuple[Posting, ...]
    context: Mapping[str, str]
    actor: str
    resolves: int | None = None

    def draft(self) -> EntryDraft:
        """The entry as it was requested (what the request hash covers)."""
        return EntryDraft(self.reason, self.postings, self.idempotency_key, self.context, self.actor)


SEQUENCE: Final = "sequence gapless from 1"
BALANCED: Final = "every entry balances"
REQUESTS: Final = "request hashes recompute"
CHAIN: Final = "hash chain intact"
SUMS: Final = "balances equal the sum of postings"
OVERDRAWN: Final = "no account overdrawn"
KNOWN: Final = "accounts known"
WELL_FORMED: Final = "entries well formed"
RESOLVED: Final = "pending entries resolved at most once"
REVERSED: Final = "reversals undo an earlier entry at most once"

CHECKS: Final = (SEQUENCE, BALANCED, REQUESTS, CHAIN, SUMS, OVERDRAWN, KNOWN, WELL_FORMED, RESOLVED, REVERSED)


# What an entry does to the sums, per (phase, is it a resolution): (× amount into posted, into pending).
_EFFECTS: Final[Mapping[tuple[str, bool], tuple[int, int]]] = MappingProxyType(
    {
        ("posted", False): (1, 0),
        ("pending", False): (0, 1),
        ("voided", False): (0, 0),  # a pending entry voided in place contributes nothing
        ("posted", True): (1, -1),  # a resolution: the pending amount becomes posted
        ("voided", True): (0, -1),  # a resolution: the pending amount is released
        ("pending", True): (0, 1),  # refused by the resolution check; summed as stored
    }
)


class Verifier:
    """The invariant checker, fed one entry at a time in sequence order so a journal of millions of
    postings streams through it: it keeps only the per-account sums, the pending entries not yet resolved,
    and the sequence numbers of the resolved ones.

    After `finish`, `last_hash` is the chain's head (compare it with a published or stored head)."""

    def __init__(self, specs: Mapping[str, AccountSpec]) -> None:
        self._specs = specs
        self._sums: dict[str, list[int]] = {}  # account → [posted, pending], signed debit − credit
        self._open: dict[int, tuple[Posting, ...]] = {}  # pending entries awaiting their resolution
        self._resolved: set[int] = set()
        self._reversed: set[int] = set()
        self._failures: dict[str, str] = {}  # check name → the first offender
        self._signs: dict[str, int] = {}
        self._next_sequence = 1
        self.last_hash = GENESIS
        self.entries = 0
        self.postings = 0

    def _fail(self, check: str, detail: str) -> None:
        self._failures.setdefault(check, detail)  # the first offender is the one worth reading

    def feed(self, entry: StoredEntry) -> None:
        """Check one entry against the ones before it and add its postings to the running sums."""
        n = entry.sequence
        self.entries += 1
        self.postings += len(entry.postings)
        if n != self._next_sequence:
            self._fail(
                SEQUENCE, f"entry {n} follows entry {self._next_sequence - 1}; expected {self._next_sequence}"
            )
        self._next_sequence = n + 1

        problem = _postings_problem(entry.postings)
        if problem is not None:
            self._fail(BALANCED, f"entry {n}: {problem.code}: {problem.message}")
        requested = entry.draft()
        problem = _draft_problem(requested)
        if problem is not None:
            self._fail(WELL_FORMED, f"entry {n}: {problem.code}: {problem.message}")

        try:
            recomputed = request_hash(requested)
        except (TypeError, ValueError) as exc:  # a context that is not text cannot be hashed
            recomputed = ""
            self._fail(REQUESTS, f"entry {n}: cannot recompute ({exc})")
        if recomputed and recomputed != entry.request_hash:
            self._fail(
                REQUESTS, f"entry {n}: stored {entry.request_hash[:16]}…, recomputed {recomputed[:16]}…"
            )

        if entry.previous_hash != self.last_hash:
            self._fail(
                CHAIN,
                f"entry {n}: previous hash {entry.previous_hash[:16]}… but the chain ends {self.last_hash[:16]}…",
            )
        else:
            try:
                # over the recomputed request hash, so a stored request hash rewritten to match edited
                # postings does not rescue the link
                link = _link_hash(
                    entry.previous_hash, n, entry.idempotency_key, recomputed, entry.phase, entry.at
                )
            except ValueError as exc:
                link = ""
                self._fail(CHAIN, f"entry {n}: cannot recompute ({exc})")
            if link and link != entry.hash:
                self._fail(CHAIN, f"entry {n}: stored hash {entry.hash[:16]}…, recomputed {link[:16]}…")
        self.last_hash = entry.hash

        specs = self._specs
        for p in entry.postings:
            if p.account not in specs:
                self._fail(KNOWN, f"entry {n} posts to unknown account {p.account}")

        if entry.reason == "reversal":
            self._check_reversal(entry)
        self._resolve_and_sum(entry)

    def _check_reversal(self, entry: StoredEntry) -> None:
        """A reversal names an earlier entry that is not a reservation and was not reversed before. (That
        its postings are the original's negated would need every entry's postings kept; the request hash
        and the service's own check carry that.)"""
        n, named = entry.sequence, entry.context.get("reverses", "")
        if not named.isdecimal() or not 0 < int(named) < n:
            self._fail(REVERSED, f"entry {n} is a reversal naming {named!r}, not an earlier entry")
        elif int(named) in self._reversed:
            self._fail(REVERSED, f"entry {n} reverses entry {named} a second time")
        elif int(named) in self._open or int(named) in self._resolved:
            self._fail(REVERSED, f"entry {n} reverses entry {named}, a pending entry (void it instead)")
        else:
            self._reversed.add(int(named))

    def _sign(self, account: str) -> int:
        """+1 or −1 to turn a signed figure natural, 0 for an account the overdraft check skips (it may go
        negative, or it is unknown, which another check reports). Cached: accounts repeat, entries do not."""
        sign = self._signs.get(account)
        if sign is None:
            spec = self._specs.get(account)
            kind = ACCOUNT_KINDS.get(spec.kind) if spec is not None else None
            sign = (
                0 if spec is None or kind is None or spec.may_go_negative else 1 if kind is Side.DEBIT else -1
            )
            self._signs[account] = sign
        return sign

    def _resolve_and_sum(self, entry: StoredEntry) -> None:
        n, phase = entry.sequence, entry.phase
        resolution = entry.resolves is not None
        effect = _EFFECTS.get((phase, resolution))
        if effect is None:
            self._fail(WELL_FORMED, f"entry {n}: unknown phase {phase!r}")
            return
        if resolution:
            self._check_resolution(entry)
        elif phase == Phase.PENDING:
            self._open[n] = entry.postings
        into_posted, into_pending = effect
        for p in entry.postings:
            sums = self._sums.get(p.account)
            if sums is None:
                sums = self._sums[p.account] = [0, 0]
            was_posted, was_total = sums[0], sums[0] + sums[1]
            sums[0] += into_posted * p.amount_fen
            sums[1] += into_pending * p.amount_fen
            sign = self._sign(p.account)
            if not sign:
                continue
            # the same two figures `_guard` protects, so the checker and the service agree
            total, posted = sign * (sums[0] + sums[1]), sign * sums[0]
            if total < 0 and total < sign * was_total:
                self._fail(OVERDRAWN, f"{p.account} stands at {total} fen after entry {n}")
            elif posted < 0 and posted < sign * was_posted:
                self._fail(OVERDRAWN, f"{p.account} has {posted} fen posted after entry {n}")

    def _check_resolution(self, entry: StoredEntry) -> None:
        n, target = entry.sequence, entry.resolves
        assert target is not None
        if entry.phase == Phase.PENDING:
            self._fail(RESOLVED, f"entry {n} is pending yet claims to resolve entry {target}")
            return
        if entry.context.get("resolves") != str(target):
            # the resolves column is outside the entry hash; the context copy is inside it
            self._fail(
                RESOLVED,
                f"entry {n} resolves entry {target} but its context says {entry.context.get('resolves')!r}",
            )
        reserved = self._open.pop(target, None)
        if reserved is None:
            why = (
                "a second time" if target in self._resolved else "which is not an earlier open pending entry"
            )
            self._fail(RESOLVED, f"entry {n} resolves entry {target} {why}")
            return
        self._resolved.add(target)
        if reserved != entry.postings:
            self._fail(RESOLVED, f"entry {n} resolves entry {target} with other postings than it reserved")

    def computed_balances(self) -> dict[str, Balance]:
        """The balances the postings fed so far add up to."""
        return {code: Balance(s[0], s[1]) for code, s in self._sums.items()}

    def finish(self, stored_balances: Mapping[str, Balance]) -> list[Check]:
        """Compare the running sums with the stored balances and report every invariant, in `CHECKS` order."""
        computed = self.computed_balances()
        for code in sorted(computed.keys() | stored_balances.keys()):
            mine, theirs = computed.get(code, Balance()), stored_balances.get(code, Balance())
            if mine != theirs:
                self._fail(
                    SUMS,
                    f"{code}: stored posted {theirs.posted}, pending {theirs.pending}; "
                    f"postings sum to posted {mine.posted}, pending {mine.pending}",
                )
        for code in sorted(stored_balances):
            spec = self._specs.get(code)
            if spec is None:
                self._fail(KNOWN, f"a balance is stored for unknown account {code}")
            elif spec.kind not in ACCOUNT_KINDS:
                self._fail(KNOWN, f"account {code} has unknown kind {spec.kind!r}")
            elif not spec.may_go_negative:
                stored = stored_balances[code]
                if min(natural(spec, stored.total), natural(spec, stored.posted)) < 0:
                    self._fail(
                        OVERDRAWN, f"{code} is stored at posted {stored.posted}, pending {stored.pending}"
                    )
        covered = {
            SEQUENCE: f"{self.entries} entries, 1 to {self._next_sequence - 1}",
            BALANCED: f"{self.entries} entries, {self.postings} postings",
            REQUESTS: f"{self.entries} entries",
            CHAIN: f"{self.entries} links, head {self.last_hash[:16]}…",
            SUMS: f"{len(computed.keys() | stored_balances.keys())} accounts",
            OVERDRAWN: f"{len(self._specs)} accounts",
            KNOWN: f"{len(self._specs)} accounts",
            WELL_FORMED: f"{self.entries} entries",
            RESOLVED: f"{len(self._resolved)} resolved, {len(self._open)} still pending",
            REVERSED: f"{len(self._reversed)} reversed",
        }
        return [
            Check(name, name not in self._failures, self._failures.get(name, covered[name]))
            for name in CHECKS
        ]


def verify(
    entries: Sequence[StoredEntry], specs: Mapping[str, AccountSpec], stored_balances: Mapping[str, Balance]
) -> list[Check]:
    """Every ledger invariant over a journal held in memory (the streaming form is `Verifier`):
    sequence gapless from 1; every entry balances; request hashes recompute; hash chain intact (genesis
    first, each previous hash the prior entry's hash, each hash recomputes); balances equal the sum of
    postings (posted from posted entries, pending from pending ones, resolutions moving or releasing
    them, voided entries nothing); no account overdrawn; accounts known; entries well formed; pending
    entries resolved at most once; reversals undo an earlier entry at most once. Each Check's detail
    names the first offender."""
    checker = Verifier(specs)
    for entry in entries:
        checker.feed(entry)
    return checker.finish(stored_balances)
