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

The hashes are SHA-256 over short texts of line-feed separated fields that PostgreSQL can rebuild from the
stored columns with plain concatenation, `encode(sha256(convert_to(text, 'UTF8')), 'hex')`, so the database
checks a million postings in one pass (`escrow/journal.py`) and this module, the reference, computes the
same digests from the same values (`request_text`, `entry_text`). The context enters as PostgreSQL writes a
jsonb object (`context_text`). No field may contain a line feed except through the context's JSON escapes:
the reason, key and phase have narrow alphabets, and a line feed in the actor, an account code or a party
field is refused ("entry.actor", "entry.account", "entry.party"), so the fields of a text can always be
told apart.

Scheme 3 ("ggzy.escrow.request.3", "ggzy.escrow.entry.3"), what the journal writes now, puts the party
the money comes from or goes to inside the request text: the payer (account, name, bank) of money taken in
from the bank, the payee of a refund instructed, of an approved change of payee and of a corrected payer
(`PARTY_ROLES`). So an auditor checks refunds against hashed data, never against columns anyone with the
database could edit. A change of payee or a corrected payer moves no money: a memo entry, with no postings
(`MEMO_REASONS`). Scheme 2 entries (no party) still verify; the entry's scheme is stored beside it and is
itself inside the link text, so an entry cannot be moved from one scheme to the other. Scheme 1
(canonical JSON) was never used in production and is gone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
        "payee_changed",
        "payer_corrected",
        "line_corrected",
    }
)

# Entries that record a fact about money without moving any: they carry no postings at all.
MEMO_REASONS: Final[frozenset[str]] = frozenset({"payee_changed", "payer_corrected"})

# The party each reason names inside the hashed text (scheme 3): who paid money in, who a refund goes to.
# Every other reason names none ("").
PARTY_ROLES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "deposit_received": "payer",
        "suspense_received": "payer",
        "suspense_matched": "payer",
        "line_corrected": "payer",
        "payer_corrected": "payer",
        "refund_instructed": "payee",
        "payee_changed": "payee",
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
class Party:
    """The bank account money came from (role "payer") or goes to ("payee"): its number, the holder's name
    and the bank, as the bank wrote them. `NO_PARTY` for an entry that names none."""

    role: str = ""
    account: str = ""
    name: str = ""
    bank: str = ""


NO_PARTY: Final = Party()
SCHEMES: Final = (2, 3)
CURRENT_SCHEME: Final = 3


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
    party: Party = NO_PARTY  # the payer or payee the entry names (scheme 3)
    scheme: int = CURRENT_SCHEME


def _postings_problem(postings: Sequence[Posting], reason: str = "") -> LedgerError | None:
    """The first structural fault of a set of postings (shared by `check_entry` and the verifier). A memo
    reason carries none; every other entry at least two."""
    if reason in MEMO_REASONS:
        if postings:
            return LedgerError(
                "entry.memo", f"A {reason} entry records a fact and moves no money; it has no postings."
            )
        return None
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
    if not isinstance(draft.context, Mapping):
        return LedgerError("entry.context", "The context must map text to text.", key="")
    for k, v in draft.context.items():
        # the request hash is over the context as text; anything else would not survive a JSON round trip
        if not isinstance(k, str) or not isinstance(v, str):
            return LedgerError("entry.context", f"Context entry {k!r} must map text to text.", key=str(k))
    if not isinstance(draft.actor, str) or "\n" in draft.actor:
        return LedgerError(
            "entry.actor", "The actor must be one line of text such as 'user:<uuid>' or 'job:<name>'."
        )
    for leg, p in enumerate(draft.postings):
        # the canonical texts separate fields by line feeds (see `request_text`)
        if not isinstance(p.account, str) or "\n" in p.account:
            return LedgerError(
                "entry.account", f"Posting {leg} names an account that is not one line of text.", leg=leg
            )
    if draft.scheme not in SCHEMES:
        return LedgerError("entry.scheme", f"Unknown hash scheme {draft.scheme!r}; 2 and 3 are defined.")
    return _party_problem(draft)


def _party_problem(draft: EntryDraft) -> LedgerError | None:
    """The party must be the one the reason names (`PARTY_ROLES`), one line per field, a payee with an
    account; a scheme 2 entry names none."""
    party = draft.party
    fields = (party.role, party.account, party.name, party.bank)
    if not all(isinstance(f, str) for f in fields):
        return LedgerError("entry.party", "The party's fields must be text.")
    if draft.scheme == 2:
        if any(fields):
            return LedgerError("entry.party", "A scheme 2 entry names no party.")
        return None
    wanted = PARTY_ROLES.get(draft.reason, "")
    if party.role != wanted:
        named = f"its {wanted}" if wanted else "no party"
        return LedgerError("entry.party", f"A {draft.reason} entry names {named}, not {party.role!r}.")
    if any("\n" in f for f in fields):
        return LedgerError("entry.party", "The party's account, name and bank are each one line of text.")
    if not wanted and any(fields):
        return LedgerError("entry.party", f"A {draft.reason} entry names no party.")
    if wanted == "payee" and not party.account:
        return LedgerError("entry.party", "A payee needs an account number.")
    return None


def check_entry(draft: EntryDraft) -> None:
    """Refuse a malformed entry with the precise `LedgerError` code: "entry.reason", "entry.key",
    "entry.context", "entry.actor", "entry.account", "entry.scheme", "entry.party", then "entry.memo",
    "entry.empty", "entry.amount", "entry.zero_amount", "entry.duplicate_account" or "entry.unbalanced"
    (checked in that order)."""
    problem = _draft_problem(draft) or _postings_problem(draft.postings, draft.reason)
    if problem is not None:
        raise problem


REQUEST_VERSIONS: Final[Mapping[int, str]] = MappingProxyType(
    {2: "ggzy.escrow.request.2", 3: "ggzy.escrow.request.3"}
)
ENTRY_VERSIONS: Final[Mapping[int, str]] = MappingProxyType(
    {2: "ggzy.escrow.entry.2", 3: "ggzy.escrow.entry.3"}
)
REQUEST_VERSION: Final = REQUEST_VERSIONS[CURRENT_SCHEME]
ENTRY_VERSION: Final = ENTRY_VERSIONS[CURRENT_SCHEME]
GENESIS: Final = "0" * 64

# A JSON string literal as PostgreSQL's escape_json writes it: '"' and '\\' escaped, \b \f \n \r \t by
# name, other control characters as lowercase \u00XX, everything else (non-ASCII included) as is.
_JSON_STRING: Final = json.JSONEncoder(ensure_ascii=False).encode
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def context_text(context: Mapping[str, str]) -> str:
    """An entry's context as PostgreSQL writes a jsonb object (`context::text`): keys shortest first in
    UTF-8 bytes, then bytewise; each pair `"key": "value"`, pairs joined by ", ", in braces; strings
    escaped as `_JSON_STRING` does. E.g. `{"lot": "1", "tender": "T1"}`. A context that is not a mapping
    of text to text has no canonical form: TypeError."""
    if not isinstance(context, Mapping):
        raise TypeError("the context is not a mapping")
    pairs = []
    for key, value in context.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"context entry {key!r} does not map text to text")
        raw = key.encode()
        pairs.append((len(raw), raw, key, value))
    pairs.sort()
    return "{" + ", ".join(f"{_JSON_STRING(k)}: {_JSON_STRING(v)}" for _, _, k, v in pairs) + "}"


def _version(versions: Mapping[int, str], scheme: int) -> str:
    version = versions.get(scheme) if type(scheme) is int else None
    if version is None:
        raise ValueError(f"unknown hash scheme {scheme!r}")
    return version


def request_text(draft: EntryDraft) -> str:
    """The canonical text of what an entry asks for, without its idempotency key, joined by line feeds
    ("\n", none at the end):

    - scheme 3: "ggzy.escrow.request.3", reason, actor, `context_text(context)`, the party's role ("payer",
      "payee" or empty), account, name and bank (four lines, empty when the entry names no party), then per
      posting in the given order its account and its amount in fen as a decimal integer (a memo has none);
    - scheme 2: "ggzy.escrow.request.2", reason, actor, `context_text(context)`, then the postings.

    An unknown scheme is a ValueError."""
    lines = [_version(REQUEST_VERSIONS, draft.scheme), draft.reason, draft.actor, context_text(draft.context)]
    if draft.scheme == 3:
        party = draft.party
        lines += [party.role, party.account, party.name, party.bank]
    for p in draft.postings:
        lines.append(p.account)
        lines.append(str(p.amount_fen))
    return "\n".join(lines)


def request_hash(draft: EntryDraft) -> str:
    """Hex SHA-256 of the UTF-8 `request_text(draft)`. The same key with the same request hash is a replay;
    the same key with another hash is a conflict. A draft whose context is not text to text is a
    TypeError; one of an unknown scheme a ValueError."""
    return hashlib.sha256(request_text(draft).encode()).hexdigest()


def _micros(at: datetime) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("An entry's time must be timezone-aware (UTC); naive datetimes are refused.")
    return (at - _EPOCH) // _MICROSECOND


def entry_text(
    previous_hash: str,
    sequence: int,
    key: str,
    request: str,
    phase: str,
    at: datetime,
    scheme: int = CURRENT_SCHEME,
) -> str:
    """The canonical text of one link of the chain: the lines "ggzy.escrow.entry.<scheme>", the previous
    entry's hash, the sequence number, the idempotency key, the request hash, the phase, and the entry's time
    as whole microseconds since 1970-01-01T00:00:00Z (PostgreSQL: `(extract(epoch FROM at) * 1000000)::bigint`),
    joined by line feeds. A naive `at` or an unknown scheme is a ValueError."""
    return "\n".join(
        (
            _version(ENTRY_VERSIONS, scheme),
            previous_hash,
            str(sequence),
            key,
            request,
            str(phase),
            str(_micros(at)),
        )
    )


def link_hash(
    previous_hash: str,
    sequence: int,
    key: str,
    request: str,
    phase: str,
    at: datetime,
    scheme: int = CURRENT_SCHEME,
) -> str:
    """Hex SHA-256 of the UTF-8 `entry_text` (for a writer that already holds the request hash)."""
    text = entry_text(previous_hash, sequence, key, request, phase, at, scheme)
    return hashlib.sha256(text.encode()).hexdigest()


def entry_hash(previous_hash: str, sequence: int, draft: EntryDraft, phase: str, at: datetime) -> str:
    """Hex SHA-256 of one link of the journal's chain: the UTF-8 `entry_text` over `request_hash(draft)`,
    in the draft's scheme. The first entry's previous hash is `GENESIS`; any zone gives the same hash for the
    same instant."""
    return link_hash(
        previous_hash, sequence, draft.idempotency_key, request_hash(draft), phase, at, draft.scheme
    )


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


OFFENDER_LIMIT: Final = 100  # offenders named per check; the total counts them all


@dataclass(frozen=True)
class Check:
    """One invariant's result. `offenders` names every offender found, in the order found, up to the
    checker's limit; `total` counts them all. `detail` is one line: what was covered when the check
    passes, else the first offender and how many more there are."""

    name: str
    ok: bool
    detail: str
    offenders: tuple[str, ...] = ()
    total: int = 0


def failed(name: str, offenders: Sequence[str], total: int, limit: int = OFFENDER_LIMIT) -> Check:
    """A failed check naming `offenders` (at most `limit` of them) out of `total`."""
    named = tuple(offenders[:limit])
    detail = named[0]
    if total > 1:
        detail += f" (and {total - 1} more"
        detail += f"; the first {len(named)} are listed)" if total > len(named) else ")"
    return Check(name, False, detail, named, total)


def judged(
    name: str, offenders: Sequence[str], total: int, covered: str, limit: int = OFFENDER_LIMIT
) -> Check:
    """A check that passes with `covered` as its detail when there is no offender, else fails naming them."""
    if total == 0:
        return Check(name, True, covered)
    return failed(name, offenders, total, limit)


class Offenders:
    """Every offender of each check, in the order found: up to `limit` named, all counted."""

    def __init__(self, limit: int = OFFENDER_LIMIT) -> None:
        self.limit = limit
        self.named: dict[str, list[str]] = {}
        self.totals: dict[str, int] = {}

    def add(self, check: str, detail: str) -> None:
        """Record one offender of `check`."""
        named = self.named.setdefault(check, [])
        if len(named) < self.limit:
            named.append(detail)
        self.totals[check] = self.totals.get(check, 0) + 1

    def count(self, check: str, unnamed: int) -> None:
        """Count `unnamed` more offenders of `check` that were found but not named (beyond the limit)."""
        if unnamed > 0:
            self.totals[check] = self.totals.get(check, 0) + unnamed

    def __contains__(self, check: object) -> bool:
        return check in self.totals

    def check(self, name: str, covered: str) -> Check:
        """The check's result: passed with `covered`, or failed naming its offenders."""
        return judged(name, self.named.get(name, []), self.totals.get(name, 0), covered, self.limit)


@dataclass(frozen=True)
class StoredEntry:
    """A journal entry as stored: one link of the hash chain.

    `resolves` names the pending entry that this posted or voided entry resolves (None for ordinary
    entries); the service also records it in the context as "resolves", which the request hash covers.
    The context is whatever was stored: the checks refuse anything but text to text."""

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
    party: Party = NO_PARTY
    scheme: int = CURRENT_SCHEME

    def draft(self) -> EntryDraft:
        """The entry as it was requested (what the request hash covers)."""
        return EntryDraft(
            self.reason,
            self.postings,
            self.idempotency_key,
            self.context,
            self.actor,
            self.party,
            self.scheme,
        )


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
# An entry of any other phase moves nothing (and fails "entries well formed").
EFFECTS: Final[Mapping[tuple[str, bool], tuple[int, int]]] = MappingProxyType(
    {
        ("posted", False): (1, 0),
        ("pending", False): (0, 1),
        ("voided", False): (0, 0),  # a pending entry voided in place contributes nothing
        ("posted", True): (1, -1),  # a resolution: the pending amount becomes posted
        ("voided", True): (0, -1),  # a resolution: the pending amount is released
        ("pending", True): (0, 1),  # refused by the resolution check; summed as stored
    }
)


def effect(phase: str, resolution: bool) -> tuple[int, int] | None:
    """(× amount into posted, × amount into pending) for an entry of this phase, None for an unknown one."""
    return EFFECTS.get((phase, resolution))


def account_sign(spec: AccountSpec | None) -> int:
    """+1 or −1 to turn a signed figure natural, 0 for an account the overdraft check skips (it may go
    negative, or it is unknown or of an unknown kind, which "accounts known" reports)."""
    side = ACCOUNT_KINDS.get(spec.kind) if spec is not None else None
    if spec is None or side is None or spec.may_go_negative:
        return 0
    return 1 if side is Side.DEBIT else -1


def overdraft_detail(account: str, sequence: int, total: int, posted: int, *, total_fell: bool) -> str:
    """An offender of "no account overdrawn" in the running check, named once per account: the natural
    figures (posted plus pending, and posted) of a guarded account right after the first posting, of entry
    `sequence`, that lowered one of them below zero; `total_fell` names the posted-and-pending figure."""
    if total_fell:
        return f"{account} stands at {total} fen after entry {sequence}"
    return f"{account} has {posted} fen posted after entry {sequence}"


def entry_problems(
    entry: StoredEntry, previous_sequence: int, previous_hash: str, specs: Mapping[str, AccountSpec]
) -> dict[str, str]:
    """The checks that one stored entry fails on its own, given the sequence number and hash of the entry
    stored before it (0 and GENESIS for the first): each failed check's name with a detail naming the
    entry. The local half of the invariants — sequence, balance, well-formedness (reason, key, context,
    actor, account codes, scheme, party, a known phase), request hash, chain link (over the recomputed
    request hash, so a request hash rewritten to match edited postings does not rescue it; and refused
    outright when the request has no canonical form), accounts known. `Verifier` applies it to every entry;
    the database's set-based checks (escrow/journal.py) apply it to every offender they find, so both say
    the same."""
    n = entry.sequence
    found: dict[str, str] = {}
    if n != previous_sequence + 1:
        found[SEQUENCE] = f"entry {n} follows entry {previous_sequence}; expected {previous_sequence + 1}"
    problem = _postings_problem(entry.postings, entry.reason)
    if problem is not None:
        found[BALANCED] = f"entry {n}: {problem.code}: {problem.message}"
    requested = entry.draft()
    problem = _draft_problem(requested)
    if problem is not None:
        found[WELL_FORMED] = f"entry {n}: {problem.code}: {problem.message}"
    elif effect(entry.phase, entry.resolves is not None) is None:
        found[WELL_FORMED] = f"entry {n}: unknown phase {entry.phase!r}"
    try:
        recomputed: str | None = request_hash(requested)
    except (TypeError, ValueError) as exc:  # a context that is not text has no canonical form
        recomputed = None
        found[REQUESTS] = f"entry {n}: cannot recompute ({exc})"
    if recomputed is not None and recomputed != entry.request_hash:
        found[REQUESTS] = f"entry {n}: stored {entry.request_hash[:16]}…, recomputed {recomputed[:16]}…"
    if entry.previous_hash != previous_hash:
        found[CHAIN] = (
            f"entry {n}: previous hash {entry.previous_hash[:16]}… but the chain ends {previous_hash[:16]}…"
        )
    elif recomputed is None:
        found[CHAIN] = f"entry {n}: cannot recompute (the request has no canonical form)"
    else:
        try:
            link = link_hash(
                entry.previous_hash, n, entry.idempotency_key, recomputed, entry.phase, entry.at, entry.scheme
            )
        except (TypeError, ValueError) as exc:
            found[CHAIN] = f"entry {n}: cannot recompute ({exc})"
        else:
            if link != entry.hash:
                found[CHAIN] = f"entry {n}: stored hash {entry.hash[:16]}…, recomputed {link[:16]}…"
    for p in entry.postings:
        if p.account not in specs:
            found[KNOWN] = f"entry {n} posts to unknown account {p.account}"
            break
    return found


def _named(context: object, key: str, default: object) -> object:
    return context.get(key, default) if isinstance(context, Mapping) else default


class Lifecycle:
    """Pending entries' resolutions and reversals, replayed in sequence order: the history half of the
    invariants "pending entries resolved at most once" and "reversals undo an earlier entry at most once".

    It keeps only the resolved and the reversed sequence numbers; what it needs to know about the named
    entry comes from the caller (`Verifier` from the entries fed so far, the database checks from one
    set-based pass), so both replay exactly the same rules. Each call answers the first problem of that
    entry, or None."""

    def __init__(self) -> None:
        self.resolved: set[int] = set()
        self.reversed: set[int] = set()

    def resolution(
        self, sequence: int, phase: str, target: int, named: object, target_pending: bool, same_postings: bool
    ) -> str | None:
        """Entry `sequence` of `phase` resolves `target`; `named` is its context's "resolves";
        `target_pending`: the target is a pending entry (not itself a resolution) stored before this one;
        `same_postings`: the resolution's postings equal the target's, leg by leg."""
        n = sequence
        if phase == Phase.PENDING:
            return f"entry {n} is pending yet claims to resolve entry {target}"
        problem = None
        if named != str(target):
            # the resolves column is outside the entry hash; the context copy is inside it
            problem = f"entry {n} resolves entry {target} but its context says {named!r}"
        if target in self.resolved:
            return problem or f"entry {n} resolves entry {target} a second time"
        if not target_pending:
            return problem or f"entry {n} resolves entry {target} which is not an earlier open pending entry"
        self.resolved.add(target)
        if not same_postings:
            return problem or f"entry {n} resolves entry {target} with other postings than it reserved"
        return problem

    def reversal(self, sequence: int, named: object, is_pending: Callable[[int], bool]) -> str | None:
        """Entry `sequence` is a reversal whose context names `named` as "reverses": an earlier entry, in
        ASCII digits, that is not a reservation (void it instead) and was not reversed before. (That its
        postings are the original's negated would need every entry's postings kept; the request hash and
        the service's own check carry that.)"""
        n = sequence
        valid = isinstance(named, str) and named.isascii() and named.isdecimal() and 0 < int(named) < n
        if not valid:
            return f"entry {n} is a reversal naming {named!r}, not an earlier entry"
        assert isinstance(named, str)
        target = int(named)
        if target in self.reversed:
            return f"entry {n} reverses entry {named} a second time"
        if is_pending(target):
            return f"entry {n} reverses entry {named}, a pending entry (void it instead)"
        self.reversed.add(target)
        return None


@dataclass
class Findings:
    """What a pass over the journal found, before the stored balances are compared: every offender per
    check in the order found (up to the limit, all counted), the counts, the chain's head and the sums
    (account → [posted, pending], signed)."""

    failures: Offenders = field(default_factory=Offenders)
    entries: int = 0
    postings: int = 0
    last_sequence: int = 0
    last_hash: str = GENESIS
    sums: dict[str, list[int]] = field(default_factory=dict)
    resolved: int = 0
    still_pending: int = 0
    reversed: int = 0

    def fail(self, check: str, detail: str) -> None:
        """Record one offender of `check`."""
        self.failures.add(check, detail)


def conclude(
    findings: Findings, specs: Mapping[str, AccountSpec], stored_balances: Mapping[str, Balance]
) -> list[Check]:
    """Compare the sums with the stored balances, check the stored balances' accounts and figures, and
    report every invariant in `CHECKS` order (shared by `Verifier.finish` and the database checks)."""
    computed = {code: Balance(s[0], s[1]) for code, s in findings.sums.items()}
    for code in sorted(computed.keys() | stored_balances.keys()):
        mine, theirs = computed.get(code, Balance()), stored_balances.get(code, Balance())
        if mine != theirs:
            findings.fail(
                SUMS,
                f"{code}: stored posted {theirs.posted}, pending {theirs.pending}; "
                f"postings sum to posted {mine.posted}, pending {mine.pending}",
            )
    for code in sorted(stored_balances):
        spec = specs.get(code)
        if spec is None:
            findings.fail(KNOWN, f"a balance is stored for unknown account {code}")
        elif spec.kind not in ACCOUNT_KINDS:
            findings.fail(KNOWN, f"account {code} has unknown kind {spec.kind!r}")
        elif not spec.may_go_negative:
            stored = stored_balances[code]
            if min(natural(spec, stored.total), natural(spec, stored.posted)) < 0:
                findings.fail(
                    OVERDRAWN, f"{code} is stored at posted {stored.posted}, pending {stored.pending}"
                )
    n = findings.entries
    covered = {
        SEQUENCE: f"{n} entries, 1 to {findings.last_sequence}",
        BALANCED: f"{n} entries, {findings.postings} postings",
        REQUESTS: f"{n} entries",
        CHAIN: f"{n} links, head {findings.last_hash[:16]}…",
        SUMS: f"{len(computed.keys() | stored_balances.keys())} accounts",
        OVERDRAWN: f"{len(specs)} accounts",
        KNOWN: f"{len(specs)} accounts",
        WELL_FORMED: f"{n} entries",
        RESOLVED: f"{findings.resolved} resolved, {findings.still_pending} still pending",
        REVERSED: f"{findings.reversed} reversed",
    }
    return [findings.failures.check(name, covered[name]) for name in CHECKS]


class Verifier:
    """The invariant checker, fed one entry at a time in sequence order so a journal of millions of
    postings streams through it: it keeps only the per-account sums, the pending entries not yet resolved,
    and the sequence numbers of the resolved and reversed ones. The reference for the database's
    set-based checks in escrow/journal.py, which must agree with it on every journal.

    After `finish`, `last_hash` is the chain's head (compare it with a published or stored head)."""

    def __init__(self, specs: Mapping[str, AccountSpec], *, limit: int = OFFENDER_LIMIT) -> None:
        self._specs = specs
        self._found = Findings(Offenders(limit))
        self._open: dict[int, tuple[Posting, ...]] = {}  # pending entries awaiting their resolution
        self._lifecycle = Lifecycle()
        self._signs: dict[str, int] = {}
        self._overdrawn: set[str] = set()  # accounts already named by the running overdraft check

    @property
    def last_hash(self) -> str:
        return self._found.last_hash

    @property
    def entries(self) -> int:
        return self._found.entries

    @property
    def postings(self) -> int:
        return self._found.postings

    def _is_pending(self, sequence: int) -> bool:
        # every pending entry fed so far is open or was resolved
        return sequence in self._open or sequence in self._lifecycle.resolved

    def feed(self, entry: StoredEntry) -> None:
        """Check one entry against the ones before it and add its postings to the running sums."""
        found = self._found
        for check, detail in entry_problems(entry, found.last_sequence, found.last_hash, self._specs).items():
            found.fail(check, detail)
        found.entries += 1
        found.postings += len(entry.postings)
        found.last_sequence, found.last_hash = entry.sequence, entry.hash
        if entry.reason == "reversal":
            problem = self._lifecycle.reversal(
                entry.sequence, _named(entry.context, "reverses", ""), self._is_pending
            )
            if problem is not None:
                found.fail(REVERSED, problem)
        self._resolve_and_sum(entry)

    def _sign(self, account: str) -> int:
        sign = self._signs.get(account)  # cached: accounts repeat, entries do not
        if sign is None:
            sign = self._signs[account] = account_sign(self._specs.get(account))
        return sign

    def _resolve_and_sum(self, entry: StoredEntry) -> None:
        n, phase, target = entry.sequence, entry.phase, entry.resolves
        moves = effect(phase, target is not None)
        if moves is None:
            return  # "entries well formed" names it; it moves nothing
        if target is not None:
            problem = self._lifecycle.resolution(
                n,
                phase,
                target,
                _named(entry.context, "resolves", None),
                self._is_pending(target),
                self._open.get(target) == entry.postings,
            )
            if target in self._lifecycle.resolved:
                self._open.pop(target, None)
            if problem is not None:
                self._found.fail(RESOLVED, problem)
        elif phase == Phase.PENDING:
            self._open[n] = entry.postings
        into_posted, into_pending = moves
        all_sums = self._found.sums
        for p in entry.postings:
            sums = all_sums.get(p.account)
            if sums is None:
                sums = all_sums[p.account] = [0, 0]
            sums[0] += into_posted * p.amount_fen
            sums[1] += into_pending * p.amount_fen
            sign = self._sign(p.account)
            if not sign or p.account in self._overdrawn:
                continue
            # the same two figures `_guard` protects, so the checker and the service agree: a posting that
            # lowers a natural figure may not leave it below zero
            total, posted = sign * (sums[0] + sums[1]), sign * sums[0]
            total_fell = total < 0 and sign * (into_posted + into_pending) * p.amount_fen < 0
            if total_fell or (posted < 0 and sign * into_posted * p.amount_fen < 0):
                # an account is named once, at the first posting that took it below zero
                self._overdrawn.add(p.account)
                self._found.fail(
                    OVERDRAWN, overdraft_detail(p.account, n, total, posted, total_fell=total_fell)
                )

    def computed_balances(self) -> dict[str, Balance]:
        """The balances the postings fed so far add up to."""
        return {code: Balance(s[0], s[1]) for code, s in self._found.sums.items()}

    def finish(self, stored_balances: Mapping[str, Balance]) -> list[Check]:
        """Compare the running sums with the stored balances and report every invariant, in `CHECKS` order."""
        found = self._found
        found.resolved = len(self._lifecycle.resolved)
        found.still_pending = len(self._open)
        found.reversed = len(self._lifecycle.reversed)
        return conclude(found, self._specs, stored_balances)


def verify(
    entries: Sequence[StoredEntry], specs: Mapping[str, AccountSpec], stored_balances: Mapping[str, Balance]
) -> list[Check]:
    """Every ledger invariant over a journal held in memory (the streaming form is `Verifier`):
    sequence gapless from 1; every entry balances; request hashes recompute; hash chain intact (genesis
    first, each previous hash the prior entry's hash, each hash recomputes); balances equal the sum of
    postings (posted from posted entries, pending from pending ones, resolutions moving or releasing
    them, voided entries nothing); no account overdrawn (a posting that lowers an account's posted, or
    posted-and-pending, figure never leaves it below zero, and no stored balance stands below zero);
    accounts known; entries well formed; pending entries resolved at most once; reversals undo an
    earlier entry at most once. Each Check names every offender, up to `OFFENDER_LIMIT`, and counts them."""
    checker = Verifier(specs)
    for entry in entries:
        checker.feed(entry)
    return checker.finish(stored_balances)
