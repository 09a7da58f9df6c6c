"""The verifiable random draw of an evaluation committee (专家抽取) and the avoidance rules (回避).

W-10 wants the experts of a committee drawn at random from the expert database; G-08 keeps out anyone
with a conflict of interest. This module decides both, and lets anyone replay a draw afterwards from its
published record. Pure logic: no I/O, no clock, no randomness of its own; the service supplies the seed and
stores what this module decides. Everything below is what an auditor needs to re-implement it.

Three parties take part (draw version "ggzy-draw-v2"): the agency asks for the committee; a witness (a
supervisor or a notary, never the centre and never the agency) contributes entropy; the platform holds a
secret seed. No one of them can choose the committee:

1. Request. The platform lists the candidates: every expert of the pool with a specialty code under one of
   the quotas' prefixes, with everything the avoidance rules read (`Candidate`, experts named by their pool
   id, never by name). With the `Context` (evaluation day, bidders', agency's and tenderer's credit codes,
   thresholds) it applies `avoidance` (`prepare`), giving the exclusions and the eligible pool, and keeps
   the canonical encodings of all three and of the context (see "Canonical encodings"). Their SHA-256
   digests, the quotas and the employer limit are the draw's `Inputs`. No seed exists yet.
2. Witness commitment. The witness takes 32 random bytes `witness` and 32 random bytes `nonce` on its own
   machine and sends only ``witness_commitment = hex SHA-256("ggzy-draw-witness-v2" LF ‖ witness ‖
   nonce)``.
3. Platform commitment. In the same request the platform takes its `seed` (32 random bytes) and publishes
   ``commitment = hex SHA-256(UTF-8 of "ggzy-draw-commit-v2" LF, seed in lowercase hex LF,
   witness_commitment LF, candidates digest LF, context digest LF, exclusions digest LF, pool digest LF,
   terms_text(quotas, employer_limit))``, and signs `commitment_statement` with the platform key.
4. Reveal. The witness sends `witness` and `nonce`; they must match its commitment, and the selection runs
   at once on ``final_seed = SHA-256("ggzy-draw-seed-v2" LF ‖ seed ‖ witness)`` (raw bytes: 32 + 32).
5. Publication. When the committee is confirmed, or the draw is aborted at any stage, the seed is revealed
   and the whole record (`DrawRecord`) published; `verify` replays avoidance, both commitments and the
   selection.

The platform draws its seed after the witness is fixed and without knowing it (the commitment hides 32
random bytes), so it has nothing to grind its seed against; the witness fixed its input before the seed
existed and never sees the seed before revealing, so it cannot choose a witness for an outcome either; and
the reveal itself runs the draw, so nobody times it. Declines, timeouts and recusals (`removed`) come
after the draw and cannot be committed to: each stands on its own evidence.

Canonical encodings (all UTF-8; "LF" is the byte 0x0A):

- Pool (the eligible experts, unchanged since v1): one line per expert, sorted by `expert_id` (by code
  point, which is also UTF-8 byte order), each ``expert_id TAB codes TAB employer LF``; `codes` are the
  expert's specialty codes sorted without repeats and joined by commas ("" when none), `employer` the
  current employer's unified social credit code ("" when none). No field may contain a tab, a line feed or
  a comma; an expert id or code may not be empty, an id not repeated. An empty pool is the empty string.
- Candidates (the pool before avoidance): one line per candidate, sorted by `expert_id`, each the JSON
  object of `candidate_to_json` serialised as RFC 8785 (JCS) does for these values: keys sorted, no
  whitespace, strings with only the mandatory escapes (non-ASCII characters as themselves), then LF.
  Lists inside are sorted without repeats; dates are "YYYY-MM-DD"; a missing date is null.
- Context: the JSON object of `context_to_json`, serialised the same way, without a final LF. The field
  `earlier_committee` (the sorted expert ids of an earlier round's committee of the tender, excluded from
  a fresh committee drawn for a re-evaluation) is present only when it is not empty, so a first draw's
  context reads the same as before it existed.
- Exclusions: one line per excluded candidate, sorted by `expert_id`, ``expert_id TAB reasons LF`` with
  the reason codes in `REASONS` order joined by commas.

Selection (`select`), given the pool, the quotas in order, the final seed, the employer limit and the
removals in the order they happened:

- Ranking: every expert's key is ``HMAC-SHA256(key=final seed, message=UTF-8 expert_id)``; `order` is the
  pool sorted by (key, expert_id), comparing keys as bytes.
- An expert matches a quota when any of their specialty codes starts with the quota's `specialty`.
- A pick for quota q takes the FIRST expert in `order` who (a) matches q, (b) has never been invited in
  this draw (neither seated, removed nor replaced), and (c) whose employer currently has fewer than
  `employer_limit` experts among the standing seats; the employer "" is never limited. When no expert
  qualifies, the seat stays empty: a shortfall for q.
- Initial draw: for each quota in the order given, for each of its `seats` seats, one pick. Each
  invitation is a `Seat` with round 0 and no `replaces`.
- Then for each expert id in `removed`, in sequence (k = 1, 2, ...): it must be standing in the committee
  at that moment, else the record cannot be replayed (`DrawError` naming it). It leaves the committee (its
  employer's count drops by one), and one pick is made for the SAME quota; the invitation carries
  round k and replaces the removed id. A removal may leave a shortfall. A seat left empty is never filled
  later, not even when a later removal frees an employer's place.
- The result: `invitations`, every invitation in the order made; `committee`, the seats standing at the
  end ordered by (quota index, order of invitation); `shortfalls`, one quota index per empty seat at the
  end, in ascending order.

Avoidance (`avoidance`) lists every reason that keeps a candidate out of one tender's draw, in the order
of `REASONS`, each citing its rule; `eligible_pool` applies it to the candidates with a wanted specialty.

Records of the first version ("ggzy-draw-v1": no witness commitment, the witness any text, no pool before
avoidance) still verify (`LegacyRecord`, `commitment_v1`, `final_seed_v1`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

DRAW_VERSION: Final = "ggzy-draw-v2"
LEGACY_VERSION: Final = "ggzy-draw-v1"
WITNESS_BYTES: Final = 32  # the witness, its nonce and the platform's seed are each this long

_COMMIT_TAG: Final = b"ggzy-draw-commit-v2\n"
_SEED_TAG: Final = b"ggzy-draw-seed-v2\n"
_WITNESS_TAG: Final = b"ggzy-draw-witness-v2\n"
_STATEMENT_TAG: Final = "ggzy-draw-commitment-v2"
_COMMIT_TAG_V1: Final = b"ggzy-draw-commit-v1\n"
_SEED_TAG_V1: Final = b"ggzy-draw-seed-v1\n"
_FORBIDDEN: Final = ("\t", "\n", ",")
_HASH_BLOCK: Final = 64  # SHA-256's block size, in bytes, as HMAC pads its key
_HEX: Final = frozenset("0123456789abcdef")
# A record is published once its seed is revealed (first confirmation; a recusal may send the draw back to
# inviting or short) or when it is aborted.
PUBLISHED: Final = ("confirmed", "inviting", "short", "aborted")

# ---------------------------------------------------------------- errors


class DrawError(ValueError):
    """A draw record that cannot be replayed (e.g. removing an expert who is not seated)."""


# ---------------------------------------------------------------- the pool


@dataclass(frozen=True)
class PoolEntry:
    """One eligible expert as the draw sees them.

    `expert_id` is the expert's canonical lowercase UUID text; `specialties` their specialty codes (e.g.
    ``("A01", "A0102")``), kept sorted and without repeats whatever order they are given in; `employer`
    the current employer's 18-character unified social credit code, "" when none.
    """

    expert_id: str
    specialties: tuple[str, ...]
    employer: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "specialties", tuple(sorted(set(self.specialties))))


@dataclass(frozen=True)
class Quota:
    """Seats for one specialty: `specialty` is a code prefix (an expert matches when any of their codes
    starts with it), `seats` the number of experts to draw for it (1 or more)."""

    specialty: str
    seats: int


def _check_field(value: object, what: str, *, empty_ok: bool) -> str:
    # the common case first, in one pass per reserved character: a non-empty text without any of them
    if type(value) is str and value and "\t" not in value and "\n" not in value and "," not in value:
        return value
    if not isinstance(value, str):
        raise DrawError(f"The {what} must be text, not {value!r}.")
    if not value and not empty_ok:
        raise DrawError(f"The {what} may not be empty.")
    for char in _FORBIDDEN:
        if char in value:
            raise DrawError(f"The {what} {value!r} contains {char!r}, which the canonical encoding reserves.")
    return value


def _entry_line(entry: PoolEntry) -> str:
    expert_id = _check_field(entry.expert_id, "expert id", empty_ok=False)
    codes = [
        _check_field(c, f"specialty code of expert {expert_id}", empty_ok=False) for c in entry.specialties
    ]
    employer = _check_field(entry.employer, f"employer of expert {expert_id}", empty_ok=True)
    return f"{expert_id}\t{','.join(sorted(set(codes)))}\t{employer}\n"


def _unique_sorted(pool: Iterable[PoolEntry]) -> list[PoolEntry]:
    entries = sorted(pool, key=lambda e: e.expert_id)
    for before, after in pairwise(entries):
        if before.expert_id == after.expert_id:
            raise DrawError(f"Expert {after.expert_id} appears more than once in the pool.")
    return entries


def _check_unique(pool: Sequence[PoolEntry]) -> None:
    if len({e.expert_id for e in pool}) != len(pool):
        _unique_sorted(pool)  # names the repeated id


def encode_pool(pool: Iterable[PoolEntry]) -> bytes:
    """The pool's canonical bytes (see the module docstring): one line per expert, sorted by expert id.

    A repeated expert id, an empty id or specialty code, or a tab, line feed or comma inside a field is a
    DrawError naming it.
    """
    return "".join(_entry_line(e) for e in _unique_sorted(pool)).encode("utf-8")


def decode_pool(data: bytes) -> list[PoolEntry]:
    """The entries of canonical pool bytes, in their (sorted) order: the exact inverse of `encode_pool`.

    Anything `encode_pool` would not have produced (bad UTF-8, a missing final line feed, a line without
    exactly three fields, unsorted or repeated ids or codes, an empty id or code) is a DrawError that says
    which line is at fault.
    """
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DrawError(f"The pool is not valid UTF-8 (byte {exc.start}).") from None
    if not text:
        return []
    if not text.endswith("\n"):
        raise DrawError("The pool's last line does not end with a line feed.")
    entries: list[PoolEntry] = []
    for number, line in enumerate(text[:-1].split("\n"), start=1):
        fields = line.split("\t")
        if len(fields) != 3:
            raise DrawError(f"Pool line {number} has {len(fields)} tab-separated fields, not 3.")
        expert_id, joined, employer = fields
        codes = tuple(joined.split(",")) if joined else ()
        if not expert_id or "" in codes:
            raise DrawError(f"Pool line {number} has an empty expert id or specialty code.")
        if "," in expert_id or "," in employer:
            raise DrawError(f"Pool line {number} has a comma in its expert id or employer.")
        if list(codes) != sorted(set(codes)):
            raise DrawError(f"Pool line {number}: the specialty codes are not sorted without repeats.")
        if entries and entries[-1].expert_id >= expert_id:
            raise DrawError(f"Pool line {number}: expert {expert_id} is out of order or repeated.")
        entries.append(PoolEntry(expert_id, codes, employer))
    return entries


def pool_digest(pool: Iterable[PoolEntry]) -> str:
    """The lowercase hex SHA-256 of the pool's canonical bytes, as published before the draw."""
    return hashlib.sha256(encode_pool(pool)).hexdigest()


# ---------------------------------------------------------------- terms, witness, commitments, seeds


def _check_terms(quotas: Sequence[Quota], employer_limit: int) -> None:
    if not quotas:
        raise DrawError("A draw needs at least one quota.")
    for index, quota in enumerate(quotas):
        _check_field(quota.specialty, f"specialty of quota {index}", empty_ok=False)
        if type(quota.seats) is not int or quota.seats < 1:
            raise DrawError(
                f"Quota {index} ({quota.specialty}) must have 1 or more seats, not {quota.seats!r}."
            )
    if type(employer_limit) is not int or employer_limit < 1:
        raise DrawError(f"The employer limit must be 1 or more, not {employer_limit!r}.")


def terms_text(quotas: Sequence[Quota], employer_limit: int) -> str:
    """The canonical text of the draw's terms: ``quota TAB specialty TAB seats LF`` per quota in order,
    then ``employer_limit TAB n LF``. Terms `select` would refuse are a DrawError here too."""
    _check_terms(quotas, employer_limit)
    lines = [f"quota\t{q.specialty}\t{q.seats}\n" for q in quotas]
    return "".join(lines) + f"employer_limit\t{employer_limit}\n"


def is_hex32(value: object) -> bool:
    """Whether `value` is 32 bytes written as 64 lowercase hexadecimal characters (a seed, a witness, a
    nonce or a SHA-256 digest as this module writes them)."""
    return isinstance(value, str) and len(value) == 2 * WITNESS_BYTES and set(value) <= _HEX


def _bytes32(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != WITNESS_BYTES:
        raise DrawError(f"The {what} must be exactly {WITNESS_BYTES} bytes.")
    return value


def witness_commitment(witness: bytes, nonce: bytes) -> str:
    """What the witness publishes before the platform's seed exists: hex SHA-256 of
    ``"ggzy-draw-witness-v2" LF``, the 32-byte witness and the 32-byte nonce. Other lengths are a
    DrawError. The nonce keeps the witness hidden even if it were guessable."""
    return hashlib.sha256(
        _WITNESS_TAG + _bytes32(witness, "witness") + _bytes32(nonce, "witness nonce")
    ).hexdigest()


@dataclass(frozen=True)
class Inputs:
    """Everything a draw selects from, fixed when the agency asks and bound by the platform's commitment:
    the SHA-256 (lowercase hex) of the candidates', the context's, the exclusions' and the pool's canonical
    bytes, the quotas in order and the employer limit."""

    candidates_digest: str
    context_digest: str
    exclusions_digest: str
    pool_digest: str
    quotas: tuple[Quota, ...]
    employer_limit: int


def commitment(seed: bytes, witness_commitment: str, inputs: Inputs) -> str:
    """The platform's commitment, published when the witness has committed and before anything is drawn:
    hex SHA-256 of ``"ggzy-draw-commit-v2" LF``, the seed in lowercase hex, LF, the witness commitment,
    LF, the candidates, context, exclusions and pool digests each followed by LF, and
    `terms_text(quotas, employer_limit)`."""
    lines = [
        _bytes32(seed, "seed").hex(),
        witness_commitment,
        inputs.candidates_digest,
        inputs.context_digest,
        inputs.exclusions_digest,
        inputs.pool_digest,
    ]
    text = "".join(f"{line}\n" for line in lines) + terms_text(inputs.quotas, inputs.employer_limit)
    return hashlib.sha256(_COMMIT_TAG + text.encode("utf-8")).hexdigest()


def commitment_statement(draw_id: str, witness_commitment: str, commitment: str) -> bytes:
    """The bytes the platform signs (Ed25519) when it publishes its commitment, so that the witness holds
    proof of what the platform committed to: ``"ggzy-draw-commitment-v2" LF draw_id LF
    witness_commitment LF commitment LF`` in UTF-8."""
    return f"{_STATEMENT_TAG}\n{draw_id}\n{witness_commitment}\n{commitment}\n".encode()


def final_seed(seed: bytes, witness: bytes) -> bytes:
    """The seed the selection runs on: SHA-256 of ``"ggzy-draw-seed-v2" LF``, the platform's 32-byte seed
    and the witness's 32 bytes. Other lengths are a DrawError."""
    return hashlib.sha256(_SEED_TAG + _bytes32(seed, "seed") + _bytes32(witness, "witness")).digest()


def commitment_v1(seed: bytes, digest: str, quotas: Sequence[Quota], employer_limit: int) -> str:
    """The first version's commitment: hex SHA-256 of ``ggzy-draw-commit-v1 LF``, the seed's lowercase
    hex, LF, the pool digest, LF, and `terms_text(quotas, employer_limit)`."""
    text = (
        _COMMIT_TAG_V1
        + seed.hex().encode()
        + b"\n"
        + digest.encode()
        + b"\n"
        + terms_text(quotas, employer_limit).encode()
    )
    return hashlib.sha256(text).hexdigest()


def final_seed_v1(seed: bytes, witness: str) -> bytes:
    """The first version's final seed: SHA-256 of ``ggzy-draw-seed-v1 LF``, the seed, LF and the UTF-8
    witness text (which could be anything, "" included)."""
    return hashlib.sha256(_SEED_TAG_V1 + seed + b"\n" + witness.encode("utf-8")).digest()


# ---------------------------------------------------------------- ranking


def rank_key(seed: bytes, expert_id: str) -> bytes:
    """An expert's ranking key under `seed`: HMAC-SHA256 keyed by the seed over the UTF-8 expert id."""
    return hmac.digest(seed, expert_id.encode("utf-8"), hashlib.sha256)


def _rank_keys(seed: bytes, expert_ids: Iterable[str]) -> list[bytes]:
    # `rank_key` for many ids at once: HMAC (RFC 2104) with the padded key's two hash states computed
    # once and copied per id, about three times faster than `hmac.digest` per id on 50,000 experts.
    key = hashlib.sha256(seed).digest() if len(seed) > _HASH_BLOCK else seed
    key = key.ljust(_HASH_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    keys: list[bytes] = []
    for expert_id in expert_ids:
        ihash = inner.copy()
        ihash.update(expert_id.encode("utf-8"))
        ohash = outer.copy()
        ohash.update(ihash.digest())
        keys.append(ohash.digest())
    return keys


def ranking(pool: Sequence[PoolEntry], seed: bytes) -> list[PoolEntry]:
    """The pool in draw order under `seed`: sorted by (`rank_key`, expert id)."""
    ids = [e.expert_id for e in pool]
    keyed = sorted(zip(_rank_keys(seed, ids), ids, range(len(ids)), strict=True))
    return [pool[index] for _, _, index in keyed]


# ---------------------------------------------------------------- selection


@dataclass(frozen=True)
class Seat:
    """One invitation the draw made, in the order it was made: the quota it fills, the expert, the round
    (0 for the initial draw, k for the k-th removal's replacement) and the expert it replaces."""

    quota_index: int
    expert_id: str
    round: int
    replaces: str | None


@dataclass(frozen=True)
class DrawResult:
    """What a draw decided: every invitation in order (initial, then replacements), the seats standing at
    the end ordered by (quota index, order of invitation), and one quota index per empty seat, ascending."""

    invitations: tuple[Seat, ...]
    committee: tuple[Seat, ...]
    shortfalls: tuple[int, ...]


class _Draw:
    """The state of one selection: the draw order, who was invited, who stands, each employer's seats."""

    def __init__(self, order: list[PoolEntry], quotas: Sequence[Quota], employer_limit: int) -> None:
        self.order = order
        self.prefixes = [q.specialty for q in quotas]
        self.limit = employer_limit
        self.invited: set[str] = set()
        # expert id -> (invitation position, seat, employer)
        self.standing: dict[str, tuple[int, Seat, str]] = {}
        self.seated_at: dict[str, int] = {}  # employer -> standing seats
        self.invitations: list[Seat] = []
        self.shortfalls: list[int] = []

    def pick(self, quota_index: int, round_: int, replaces: str | None) -> None:
        # A scan from the top every time (O(n) per pick): a removal may free an employer's place, so an
        # expert passed over earlier can be the first to qualify now.
        prefix = self.prefixes[quota_index]
        invited, seated_at, limit = self.invited, self.seated_at, self.limit
        for entry in self.order:
            for code in entry.specialties:
                if code.startswith(prefix):
                    break
            else:
                continue
            if entry.expert_id in invited or (entry.employer and seated_at.get(entry.employer, 0) >= limit):
                continue
            seat = Seat(quota_index, entry.expert_id, round_, replaces)
            invited.add(entry.expert_id)
            self.standing[entry.expert_id] = (len(self.invitations), seat, entry.employer)
            seated_at[entry.employer] = seated_at.get(entry.employer, 0) + 1
            self.invitations.append(seat)
            return
        self.shortfalls.append(quota_index)

    def remove(self, expert_id: str) -> int:
        if expert_id not in self.standing:
            state = "was already removed" if expert_id in self.invited else "was never invited"
            raise DrawError(f"Expert {expert_id} cannot be removed: not standing in the committee ({state}).")
        _, seat, employer = self.standing.pop(expert_id)
        self.seated_at[employer] -= 1
        return seat.quota_index

    def result(self) -> DrawResult:
        standing = sorted(self.standing.values(), key=lambda p: (p[1].quota_index, p[0]))
        return DrawResult(
            tuple(self.invitations), tuple(s for _, s, _ in standing), tuple(sorted(self.shortfalls))
        )


def select(
    pool: Sequence[PoolEntry],
    quotas: Sequence[Quota],
    seed: bytes,
    employer_limit: int,
    removed: Sequence[str] = (),
) -> DrawResult:
    """Draw the committee from `pool` under the FINAL seed, then replace each of `removed` in turn.

    The rules are the module docstring's "Selection". Empty quotas, a quota with fewer than one seat or an
    empty or reserved-character specialty, an employer limit below one, a repeated expert id, or a
    removal of an expert not standing at that moment is a DrawError.
    """
    _check_terms(quotas, employer_limit)
    _check_unique(pool)
    draw = _Draw(ranking(pool, seed), quotas, employer_limit)
    for quota_index, quota in enumerate(quotas):
        for _ in range(quota.seats):
            draw.pick(quota_index, 0, None)
    for round_, expert_id in enumerate(removed, start=1):
        draw.pick(draw.remove(expert_id), round_, expert_id)
    return draw.result()


# ---------------------------------------------------------------- avoidance (回避)


@dataclass(frozen=True)
class Candidate:
    """An expert as the avoidance rules see them, with approved values only.

    `former_employers` are (credit code, end date) pairs, the end None when none was recorded;
    `relatives_at` the credit codes of organisations where a declared close relative works;
    `unavailable` inclusive (first, last) date ranges; `services_for_tenderer` the committees served for
    this tender's tenderer within the look-back window; `has_account` whether the expert has an account
    to answer an invitation and sit in the room.
    """

    expert_id: str
    status: str  # "active" | "suspended" | "retired" | "pending"
    term_start: date | None
    term_end: date | None
    employer: str
    specialties: tuple[str, ...]
    former_employers: tuple[tuple[str, date | None], ...]
    relatives_at: tuple[str, ...]
    unavailable: tuple[tuple[date, date], ...]
    credit_score: int
    services_for_tenderer: int
    has_account: bool = True


@dataclass(frozen=True)
class Context:
    """One tender's draw as the avoidance rules see it: the evaluation day, the bidders' credit codes,
    the agency's and the tenderer's (`parties`), the thresholds a procedure profile may tighten, and for a
    fresh committee ordered on a re-evaluation (重新评审) the expert ids of the earlier committee."""

    on: date
    bidders: frozenset[str]
    parties: frozenset[str]
    former_employer_years: int = 3
    min_credit_score: int = 60
    max_services_for_tenderer: int = 3
    # the experts of an earlier round's committee, when a fresh committee is drawn for a re-evaluation
    earlier_committee: frozenset[str] = frozenset()


# Reason code -> the rule it enforces and what it means, in the order `avoidance` reports them.
REASONS: Final[dict[str, str]] = {
    "no_account": "W-10: the expert has no account to answer an invitation or sit in the evaluation room.",
    "not_active": "W-10: only active members of the expert database are drawn (the expert is suspended, "
    "retired or not yet approved).",
    "out_of_term": "W-10: the evaluation day falls outside the expert's term in the expert database.",
    "employer_is_bidder": "G-08: the expert works for a bidder.",
    "employer_is_party": "G-08: the expert works for the tenderer or its agency (another interest).",
    "former_employer_bidder": "G-08: the expert worked for a bidder within the look-back years (3 by law).",
    "former_employer_party": "G-08: the expert worked for the tenderer or its agency within the look-back "
    "years.",
    "relative_at_bidder": "G-08: a close relative of the expert works for a bidder.",
    "unavailable": "W-10: the expert declared the evaluation day unavailable.",
    "credit": "house rule: the expert's credit score is below the profile's minimum.",
    "served_tenderer_often": "house rule: the expert has served this tenderer's committees too often within "
    "the look-back window.",
    "earlier_committee": "G-12/W-17: a fresh committee ordered on a re-evaluation (重新评审) seats none of "
    "the experts of the tender's earlier committee.",
}


def _years_before(day: date, years: int) -> date:
    # The same calendar day `years` earlier; 29 February maps to the 28th in a common year.
    year = day.year - years
    if year < date.min.year:
        return date.min
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


def avoidance(c: Candidate, ctx: Context) -> tuple[str, ...]:
    """Every reason code (keys of `REASONS`) that keeps `c` out of the draw for `ctx`, in `REASONS`
    order; () when the expert is eligible.

    Dates are inclusive: the term covers `term_start` and `term_end` (each only when given), an
    unavailable range covers both its ends. A former employment counts (G-08) when it has no end date or
    ended on or after the same calendar day `former_employer_years` years before the evaluation day
    (29 February → 28 February): with 3 years and an evaluation on 2026-05-20, an employment that ended
    2023-05-20 still avoids, one that ended 2023-05-19 does not. The empty credit code matches nothing.
    """
    return _avoidance(c, ctx, _cutoff(ctx))


def _cutoff(ctx: Context) -> date:
    """The earliest end day of a former employment that still avoids (see `avoidance`)."""
    if ctx.former_employer_years < 0:
        raise ValueError(f"former_employer_years must be 0 or more, not {ctx.former_employer_years}.")
    return _years_before(ctx.on, ctx.former_employer_years)


def _avoidance(c: Candidate, ctx: Context, cutoff: date) -> tuple[str, ...]:
    """`avoidance` with the context's cutoff worked out once for a whole pool."""
    recent = {code for code, end in c.former_employers if code and (end is None or end >= cutoff)}
    found = {
        "no_account": not c.has_account,
        "not_active": c.status != "active",
        "out_of_term": (c.term_start is not None and ctx.on < c.term_start)
        or (c.term_end is not None and ctx.on > c.term_end),
        "employer_is_bidder": bool(c.employer) and c.employer in ctx.bidders,
        "employer_is_party": bool(c.employer) and c.employer in ctx.parties,
        "former_employer_bidder": not recent.isdisjoint(ctx.bidders),
        "former_employer_party": not recent.isdisjoint(ctx.parties),
        "relative_at_bidder": any(code and code in ctx.bidders for code in c.relatives_at),
        "unavailable": any(first <= ctx.on <= last for first, last in c.unavailable),
        "credit": c.credit_score < ctx.min_credit_score,
        "served_tenderer_often": c.services_for_tenderer >= ctx.max_services_for_tenderer,
        "earlier_committee": c.expert_id in ctx.earlier_committee,
    }
    return tuple(code for code in REASONS if found[code])


def eligible_pool(
    candidates: Iterable[Candidate], ctx: Context, specialties: Sequence[str]
) -> tuple[list[PoolEntry], dict[str, tuple[str, ...]]]:
    """Split the candidates with a code starting with one of `specialties` into the eligible ones, as
    `PoolEntry` sorted by expert id, and the excluded ones' reasons by expert id (also sorted).

    Candidates with no wanted specialty appear in neither. No prefix, an empty prefix, or a repeated
    expert id is a DrawError.
    """
    prefixes = tuple(specialties)
    if not prefixes or "" in prefixes:
        raise DrawError("eligible_pool needs at least one specialty prefix, none of them empty.")
    eligible: list[PoolEntry] = []
    excluded: dict[str, tuple[str, ...]] = {}
    seen: set[str] = set()
    cutoff = _cutoff(ctx)
    for c in sorted(candidates, key=lambda c: c.expert_id):
        if c.expert_id in seen:
            raise DrawError(f"Expert {c.expert_id} appears more than once among the candidates.")
        seen.add(c.expert_id)
        if not any(code.startswith(prefixes) for code in c.specialties):
            continue
        reasons = _avoidance(c, ctx, cutoff)
        if reasons:
            excluded[c.expert_id] = reasons
        else:
            eligible.append(PoolEntry(c.expert_id, c.specialties, c.employer))
    return eligible, excluded


# ---------------------------------------------------------------- the pool before avoidance


# RFC 8785 for what these objects hold (strings, integers, booleans, null, lists, objects): sorted keys, no
# whitespace, only the mandatory escapes; Python's lowercase \\u00xx matches JCS. One encoder for every
# call: `json.dumps` with these options would build a new one per candidate.
_CANONICAL: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _canonical_json(value: object) -> str:
    return _CANONICAL.encode(value)


def _day_text(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _former_key(pair: tuple[str, date | None]) -> tuple[str, str]:
    return pair[0], _day_text(pair[1]) or ""


def candidate_to_json(c: Candidate) -> dict[str, object]:
    """`c` as the JSON object of its canonical line and of the record: the `Candidate` field names,
    `former_employers` as [credit code, end date or null] pairs and `unavailable` as [first, last] pairs,
    every list sorted without repeats, dates as "YYYY-MM-DD". An empty expert id or specialty code, or a
    tab, line feed or comma in the id, a code or the employer, is a DrawError (the pool could not carry it).
    """
    expert_id = _check_field(c.expert_id, "expert id", empty_ok=False)
    codes = {
        _check_field(code, f"specialty code of expert {expert_id}", empty_ok=False) for code in c.specialties
    }
    return {
        "credit_score": c.credit_score,
        "employer": _check_field(c.employer, f"employer of expert {expert_id}", empty_ok=True),
        "expert_id": expert_id,
        "former_employers": [
            [code, _day_text(end)] for code, end in sorted(set(c.former_employers), key=_former_key)
        ],
        "has_account": c.has_account,
        "relatives_at": sorted(set(c.relatives_at)),
        "services_for_tenderer": c.services_for_tenderer,
        "specialties": sorted(codes),
        "status": c.status,
        "term_end": _day_text(c.term_end),
        "term_start": _day_text(c.term_start),
        "unavailable": [[first.isoformat(), last.isoformat()] for first, last in sorted(set(c.unavailable))],
    }


_CANDIDATE_FIELDS: Final = frozenset(
    {
        "credit_score",
        "employer",
        "expert_id",
        "former_employers",
        "has_account",
        "relatives_at",
        "services_for_tenderer",
        "specialties",
        "status",
        "term_end",
        "term_start",
        "unavailable",
    }
)


def _sorted_unique(candidates: Iterable[Candidate]) -> list[Candidate]:
    ordered = sorted(candidates, key=lambda c: c.expert_id)
    for before, after in pairwise(ordered):
        if before.expert_id == after.expert_id:
            raise DrawError(f"Expert {after.expert_id} appears more than once among the candidates.")
    return ordered


def encode_candidates(candidates: Iterable[Candidate]) -> bytes:
    """The candidates' canonical bytes: one line per candidate sorted by expert id, each the canonical
    JSON of `candidate_to_json` and a line feed. A repeated id is a DrawError naming it."""
    lines = [_canonical_json(candidate_to_json(c)) + "\n" for c in _sorted_unique(candidates)]
    return "".join(lines).encode("utf-8")


def decode_candidates(data: bytes) -> list[Candidate]:
    """The candidates of canonical bytes, in their (sorted) order: the exact inverse of
    `encode_candidates`. Anything it would not have produced is a DrawError naming the line at fault."""
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DrawError(f"The candidates are not valid UTF-8 (byte {exc.start}).") from None
    if not text:
        return []
    if not text.endswith("\n"):
        raise DrawError("The candidates' last line does not end with a line feed.")
    out: list[Candidate] = []
    for number, line in enumerate(text[:-1].split("\n"), start=1):
        try:
            item = json.loads(line)
        except ValueError:
            raise DrawError(f"Candidates line {number} is not JSON.") from None
        out.append(candidate_from_json(item, f"candidates line {number}"))
        if _canonical_json(candidate_to_json(out[-1])) != line:
            raise DrawError(f"Candidates line {number} is not in canonical form.")
    if len(out) > 1:
        for number, (before, after) in enumerate(pairwise(out), start=2):
            if before.expert_id >= after.expert_id:
                raise DrawError(
                    f"Candidates line {number}: expert {after.expert_id} is out of order or repeated."
                )
    return out


def context_to_json(ctx: Context) -> dict[str, object]:
    """The context as a JSON object: the evaluation day, the bidders' and the parties' (agency, tenderer)
    credit codes sorted, the three thresholds, and the earlier committee's expert ids sorted when any."""
    out: dict[str, object] = {
        "bidders": sorted(ctx.bidders),
        "former_employer_years": ctx.former_employer_years,
        "max_services_for_tenderer": ctx.max_services_for_tenderer,
        "min_credit_score": ctx.min_credit_score,
        "on": ctx.on.isoformat(),
        "parties": sorted(ctx.parties),
    }
    if ctx.earlier_committee:
        out["earlier_committee"] = sorted(ctx.earlier_committee)
    return out


def encode_context(ctx: Context) -> bytes:
    """The context's canonical bytes: the canonical JSON of `context_to_json`, without a final line feed."""
    return _canonical_json(context_to_json(ctx)).encode("utf-8")


def encode_exclusions(exclusions: Mapping[str, Sequence[str]]) -> bytes:
    """The exclusions' canonical bytes: ``expert_id TAB reason,reason LF`` per excluded expert, sorted by
    id, the reasons in `REASONS` order. An unknown, repeated or misordered reason, none at all, or an id
    the pool could not carry is a DrawError."""
    order = list(REASONS)
    lines = []
    for expert_id in sorted(exclusions):
        reasons = list(exclusions[expert_id])
        _check_field(expert_id, "expert id", empty_ok=False)
        if not reasons or any(r not in REASONS for r in reasons):
            raise DrawError(f"Expert {expert_id}: the reasons {reasons} are not reason codes of REASONS.")
        if reasons != sorted(set(reasons), key=order.index):
            raise DrawError(f"Expert {expert_id}: the reasons {reasons} are not in the order of REASONS.")
        lines.append(f"{expert_id}\t{','.join(reasons)}\n")
    return "".join(lines).encode("utf-8")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Prepared:
    """One draw's avoidance, done when the agency asks: the canonical bytes of the candidates, the context,
    the exclusions and the eligible pool (what the platform keeps and commits to), the exclusions by expert
    id and the eligible pool itself, with the terms."""

    candidates: bytes
    context: bytes
    exclusions: dict[str, tuple[str, ...]]
    exclusions_bytes: bytes
    pool: list[PoolEntry]
    pool_bytes: bytes
    quotas: tuple[Quota, ...]
    employer_limit: int

    @property
    def inputs(self) -> Inputs:
        """The digests and terms the platform's commitment binds."""
        return Inputs(
            candidates_digest=_digest(self.candidates),
            context_digest=_digest(self.context),
            exclusions_digest=_digest(self.exclusions_bytes),
            pool_digest=_digest(self.pool_bytes),
            quotas=self.quotas,
            employer_limit=self.employer_limit,
        )


def prepare(
    candidates: Iterable[Candidate], ctx: Context, quotas: Sequence[Quota], employer_limit: int
) -> Prepared:
    """Apply `avoidance` to the candidates (the pool before avoidance: every one must have a specialty
    under one of the quotas, else DrawError) and encode everything the draw is committed to."""
    terms_text(quotas, employer_limit)
    listed = _sorted_unique(candidates)
    prefixes = tuple(q.specialty for q in quotas)
    for c in listed:
        if not any(code.startswith(prefixes) for code in c.specialties):
            raise DrawError(f"Expert {c.expert_id} has no specialty under the quotas {list(prefixes)}.")
    eligible, excluded = eligible_pool(listed, ctx, prefixes)
    return Prepared(
        candidates=encode_candidates(listed),
        context=encode_context(ctx),
        exclusions=excluded,
        exclusions_bytes=encode_exclusions(excluded),
        pool=eligible,
        pool_bytes=encode_pool(eligible),
        quotas=tuple(quotas),
        employer_limit=employer_limit,
    )


# ---------------------------------------------------------------- the published record


@dataclass(frozen=True)
class Abort:
    """Why and when a draw was aborted: the reason given, the role that asked ("agency" or "centre"), the
    draw's status when it asked (so an abort after the names were known shows), and the instants of the
    request and of the supervisor's approval (ISO 8601). Approval and reason are the platform's word;
    `verify` checks that an aborted record reveals what it must."""

    reason: str
    requested_by: str
    stage: str
    requested_at: str
    approved_at: str


@dataclass(frozen=True)
class DrawRecord:
    """Everything published about a draw once its committee is confirmed or it is aborted, for anyone to
    replay with `verify`: the pool before avoidance (`candidates`), the `context`, the exclusions (expert
    id and reason codes, sorted by id), the terms, the witness's commitment and revealed witness and nonce,
    the platform's commitment, its signature (base64 Ed25519 over `commitment_statement`) and revealed seed
    (all hex lowercase) with the id of the key that signed, the removals in order, the invitations as
    recorded, and the abort if any. `status` is the draw's: "aborted", or "confirmed" ("inviting" or
    "short" again while a member who recused after the confirmation is being replaced).

    What exists depends on how far the draw got: an abort before the witness committed has no witness
    commitment, commitment or seed; one before the reveal has no witness, nonce or invitations."""

    draw_id: str
    status: str
    context: Context
    candidates: tuple[Candidate, ...]
    exclusions: tuple[tuple[str, tuple[str, ...]], ...]
    quotas: tuple[Quota, ...]
    employer_limit: int
    witness_commitment: str | None = None
    commitment: str | None = None
    signature: str | None = None
    key_id: str | None = None
    seed_hex: str | None = None
    witness_hex: str | None = None
    nonce_hex: str | None = None
    removed: tuple[str, ...] = ()
    invitations: tuple[Seat, ...] = ()
    abort: Abort | None = None


@dataclass(frozen=True)
class LegacyRecord:
    """A record of the first version ("ggzy-draw-v1"), kept verifiable: the commitment, the revealed seed
    (lowercase hex) and the witness text, the eligible pool's canonical bytes, the terms, the removals in
    order, and the invitations as the platform recorded them."""

    commitment: str
    seed_hex: str
    witness: str
    pool: bytes
    quotas: tuple[Quota, ...]
    employer_limit: int
    removed: tuple[str, ...]
    invitations: tuple[Seat, ...]


def _first_difference(recorded: Sequence[Seat], replayed: Sequence[Seat]) -> str | None:
    for index, (mine, theirs) in enumerate(zip(recorded, replayed, strict=False)):
        if mine != theirs:
            return f"invitation {index} differs: recorded {mine}, the replay gives {theirs}."
    if len(recorded) != len(replayed):
        index = min(len(recorded), len(replayed))
        return f"invitation {index} differs: {len(recorded)} invitations recorded, the replay makes {len(replayed)}."
    return None


def _replay_seed(seed_hex: str) -> tuple[bytes | None, str | None]:
    try:
        seed = bytes.fromhex(seed_hex)
    except ValueError:
        seed = None
    if seed is None or seed.hex() != seed_hex:
        return None, f"seed: {seed_hex!r} is not lowercase hexadecimal."
    return seed, None


def _exclusion_differences(
    recorded: Mapping[str, tuple[str, ...]], replayed: Mapping[str, tuple[str, ...]]
) -> list[str]:
    problems = []
    for expert_id in sorted(set(recorded) | set(replayed)):
        mine, theirs = recorded.get(expert_id), replayed.get(expert_id)
        if mine == theirs:
            continue
        if theirs is None:
            problems.append(
                f"exclusions: expert {expert_id} is excluded for {list(mine or ())}, the replay keeps them."
            )
        elif mine is None:
            problems.append(
                f"exclusions: expert {expert_id} is not excluded, the replay excludes them for {list(theirs)}."
            )
        else:
            problems.append(
                f"exclusions: expert {expert_id} is excluded for {list(mine)}, the replay gives {list(theirs)}."
            )
    return problems


def _stage_problems(r: DrawRecord) -> list[str]:
    """What must and must not be published at the record's stage."""
    problems = []
    if r.status not in PUBLISHED:
        problems.append(f"status: a draw that is {r.status!r} is not published.")
    if (r.status == "aborted") != (r.abort is not None):
        problems.append("status: an aborted draw, and only one, carries its abort.")
    if r.status != "aborted" and r.witness_hex is None:
        problems.append("status: only an aborted draw is published without its witness revealed.")
    if r.witness_commitment is None:
        if any(v is not None for v in (r.commitment, r.seed_hex, r.witness_hex, r.nonce_hex)):
            problems.append("status: no witness commitment, yet a commitment, seed or witness is published.")
    elif r.commitment is None or r.seed_hex is None:
        problems.append("status: the witness committed, so the commitment and the seed must be published.")
    if (r.witness_hex is None) != (r.nonce_hex is None):
        problems.append("witness: the witness and its nonce are revealed together.")
    if r.witness_hex is None and (r.invitations or r.removed):
        problems.append("status: invitations are recorded, yet the witness was never revealed.")
    return problems


def _witness_problems(r: DrawRecord) -> tuple[bytes | None, list[str]]:
    if r.witness_hex is None or r.nonce_hex is None or r.witness_commitment is None:
        return None, []
    if not (is_hex32(r.witness_hex) and is_hex32(r.nonce_hex)):
        return None, ["witness: the witness and the nonce must each be 64 lowercase hexadecimal characters."]
    witness = bytes.fromhex(r.witness_hex)
    expected = witness_commitment(witness, bytes.fromhex(r.nonce_hex))
    if expected != r.witness_commitment:
        return witness, [
            f"witness: the witness and nonce commit to {expected}, not to {r.witness_commitment}."
        ]
    return witness, []


def _signature_problem(r: DrawRecord, public_key: bytes) -> str | None:
    if r.commitment is None or r.witness_commitment is None:
        return None
    if r.signature is None:
        return "signature: the commitment is not signed."
    try:
        signature = base64.b64decode(r.signature, validate=True)
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, commitment_statement(r.draw_id, r.witness_commitment, r.commitment)
        )
    except (binascii.Error, ValueError, InvalidSignature):
        return "signature: not the platform key's signature of the commitment statement."
    return None


def verify(record: DrawRecord | LegacyRecord, public_key: bytes | None = None) -> list[str]:
    """Replay `record`; [] when every check passes, else one message per failed check, each starting with
    the check's name.

    The checks of a v2 record: `status` (what the stage must publish), `candidates` (canonical, each with
    a specialty under the quotas), `terms`, `exclusions` (avoidance replayed on the candidates and the
    context gives exactly the recorded exclusions), `witness` (the revealed witness and nonce match the
    witness commitment), `seed` (lowercase hex), `commitment` (that of the seed, the witness commitment,
    the digests of the candidates, the context, the recorded exclusions and the pool they leave, and the
    terms), `signature` (only when the platform's raw Ed25519 `public_key` is given), and `invitations`
    (the selection replayed on that pool with the final seed and the removals gives the recorded
    invitations; a confirmed draw has no empty seat). A check that needs a part found broken is skipped.
    A `LegacyRecord` is checked as the first version did (seed, pool, terms, commitment, invitations).
    """
    if isinstance(record, LegacyRecord):
        return _verify_v1(record)
    r = record
    problems = _stage_problems(r)
    try:
        terms_text(r.quotas, r.employer_limit)
    except DrawError as exc:
        problems.append(f"terms: {exc}")
        return problems
    try:
        prepared = prepare(r.candidates, r.context, r.quotas, r.employer_limit)
    except DrawError as exc:
        problems.append(f"candidates: {exc}")
        return problems
    recorded = dict(r.exclusions)
    problems += _exclusion_differences(recorded, prepared.exclusions)
    pool = [_entry(c) for c in r.candidates if c.expert_id not in recorded]
    try:
        inputs = _stated_inputs(prepared, encode_exclusions(recorded), encode_pool(pool))
    except DrawError as exc:
        problems.append(f"exclusions: {exc}")
        return problems
    if not set(recorded) <= {c.expert_id for c in r.candidates}:
        problems.append("exclusions: an excluded expert is not among the candidates.")
    witness, found = _witness_problems(r)
    problems += found
    if r.seed_hex is None or r.witness_commitment is None or r.commitment is None:
        return problems
    seed, problem = _replay_seed(r.seed_hex)
    if problem is not None or seed is None or len(seed) != WITNESS_BYTES:
        problems.append(problem or f"seed: {r.seed_hex!r} is not {WITNESS_BYTES} bytes.")
        return problems
    expected = commitment(seed, r.witness_commitment, inputs)
    if r.commitment != expected:
        problems.append(
            f"commitment: {r.commitment} is not the commitment of the revealed seed, the witness commitment, "
            f"the candidates, context, exclusions and pool, and the terms ({expected})."
        )
    if public_key is not None and (signed := _signature_problem(r, public_key)) is not None:
        problems.append(signed)
    if witness is None:
        return problems
    try:
        replay = select(pool, r.quotas, final_seed(seed, witness), r.employer_limit, r.removed)
    except DrawError as exc:
        problems.append(f"invitations: the draw cannot be replayed: {exc}")
        return problems
    difference = _first_difference(r.invitations, replay.invitations)
    if difference is not None:
        problems.append(f"invitations: {difference}")
    elif r.status == "confirmed" and replay.shortfalls:
        problems.append(f"invitations: a confirmed draw leaves {len(replay.shortfalls)} seats empty.")
    return problems


def _entry(c: Candidate) -> PoolEntry:
    return PoolEntry(c.expert_id, c.specialties, c.employer)


def _stated_inputs(prepared: Prepared, exclusions: bytes, pool: bytes) -> Inputs:
    # The exclusions and the pool as the record states them: the commitment must bind those, whether or
    # not the replay of avoidance agrees.
    inputs = prepared.inputs
    return Inputs(
        candidates_digest=inputs.candidates_digest,
        context_digest=inputs.context_digest,
        exclusions_digest=_digest(exclusions),
        pool_digest=_digest(pool),
        quotas=inputs.quotas,
        employer_limit=inputs.employer_limit,
    )


def _verify_v1(record: LegacyRecord) -> list[str]:
    problems: list[str] = []
    seed, problem = _replay_seed(record.seed_hex)
    if problem is not None:
        problems.append(problem)
    pool: list[PoolEntry] | None = None
    try:
        pool = decode_pool(record.pool)
    except DrawError as exc:
        problems.append(f"pool: not canonical: {exc}")
    try:
        terms_text(record.quotas, record.employer_limit)
    except DrawError as exc:
        problems.append(f"terms: {exc}")
        return problems
    if seed is None:
        return problems
    expected = commitment_v1(seed, _digest(record.pool), record.quotas, record.employer_limit)
    if record.commitment != expected:
        problems.append(
            f"commitment: {record.commitment} is not the commitment of the revealed seed, the pool and the "
            f"terms ({expected})."
        )
    if pool is None:
        return problems
    try:
        replay = select(
            pool, record.quotas, final_seed_v1(seed, record.witness), record.employer_limit, record.removed
        )
    except DrawError as exc:
        problems.append(f"invitations: the draw cannot be replayed: {exc}")
        return problems
    difference = _first_difference(record.invitations, replay.invitations)
    if difference is not None:
        problems.append(f"invitations: {difference}")
    return problems


def committee_of(record: DrawRecord | LegacyRecord) -> DrawResult | None:
    """The selection a record's revealed seed and witness give (after its removals), or None when the
    witness was never revealed. Call it on a record `verify` passed."""
    if isinstance(record, LegacyRecord):
        seed = final_seed_v1(bytes.fromhex(record.seed_hex), record.witness)
        return select(decode_pool(record.pool), record.quotas, seed, record.employer_limit, record.removed)
    if record.seed_hex is None or record.witness_hex is None:
        return None
    excluded = {expert_id for expert_id, _ in record.exclusions}
    pool = [_entry(c) for c in record.candidates if c.expert_id not in excluded]
    seed = final_seed(bytes.fromhex(record.seed_hex), bytes.fromhex(record.witness_hex))
    return select(pool, record.quotas, seed, record.employer_limit, record.removed)


# ---------------------------------------------------------------- records as JSON


def _seat_json(s: Seat) -> dict[str, object]:
    return {"quota_index": s.quota_index, "expert_id": s.expert_id, "round": s.round, "replaces": s.replaces}


def record_to_json(record: DrawRecord | LegacyRecord) -> dict[str, object]:
    """`record` as JSON-ready data tagged with its version (`DRAW_VERSION`, or `LEGACY_VERSION` for a
    `LegacyRecord`, whose pool is in standard base64)."""
    quotas = [{"specialty": q.specialty, "seats": q.seats} for q in record.quotas]
    if isinstance(record, LegacyRecord):
        return {
            "version": LEGACY_VERSION,
            "commitment": record.commitment,
            "seed_hex": record.seed_hex,
            "witness": record.witness,
            "pool": base64.b64encode(record.pool).decode("ascii"),
            "quotas": quotas,
            "employer_limit": record.employer_limit,
            "removed": list(record.removed),
            "invitations": [_seat_json(s) for s in record.invitations],
        }
    abort = record.abort
    return {
        "version": DRAW_VERSION,
        "draw_id": record.draw_id,
        "status": record.status,
        "context": context_to_json(record.context),
        "candidates": [candidate_to_json(c) for c in record.candidates],
        "exclusions": [{"expert_id": e, "reasons": list(reasons)} for e, reasons in record.exclusions],
        "quotas": quotas,
        "employer_limit": record.employer_limit,
        "witness_commitment": record.witness_commitment,
        "commitment": record.commitment,
        "signature": record.signature,
        "key_id": record.key_id,
        "seed_hex": record.seed_hex,
        "witness": record.witness_hex,
        "nonce": record.nonce_hex,
        "removed": list(record.removed),
        "invitations": [_seat_json(s) for s in record.invitations],
        "abort": None
        if abort is None
        else {
            "reason": abort.reason,
            "requested_by": abort.requested_by,
            "stage": abort.stage,
            "requested_at": abort.requested_at,
            "approved_at": abort.approved_at,
        },
    }


def _get(data: Mapping[str, object], key: str, kind: type, where: str) -> object:
    if not isinstance(data, Mapping) or key not in data:
        raise DrawError(f"{where}: {key!r} is missing.")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DrawError(f"{where}: {key!r} must be {kind.__name__}, not {type(value).__name__}.")
    return value


def _text(data: Mapping[str, object], key: str, where: str = "draw record") -> str:
    value = _get(data, key, str, where)
    assert isinstance(value, str)
    return value


def _optional_text(data: Mapping[str, object], key: str, where: str = "draw record") -> str | None:
    if isinstance(data, Mapping) and data.get(key, "") is None:
        return None
    return _text(data, key, where)


def _whole(data: Mapping[str, object], key: str, where: str = "draw record") -> int:
    value = _get(data, key, int, where)
    assert isinstance(value, int)
    return value


def _flag(data: Mapping[str, object], key: str, where: str) -> bool:
    value = _get(data, key, bool, where)
    assert isinstance(value, bool)
    return value


def _items(data: Mapping[str, object], key: str, where: str = "draw record") -> list[object]:
    value = _get(data, key, list, where)
    assert isinstance(value, list)
    return value


def _texts(data: Mapping[str, object], key: str, where: str) -> tuple[str, ...]:
    items = _items(data, key, where)
    if not all(isinstance(item, str) for item in items):
        raise DrawError(f"{where}: {key!r} must be a list of strings.")
    return tuple(str(item) for item in items)


def _objects(data: Mapping[str, object], key: str, where: str = "draw record") -> list[Mapping[str, object]]:
    objects: list[Mapping[str, object]] = []
    for index, item in enumerate(_items(data, key, where)):
        if not isinstance(item, Mapping):
            raise DrawError(f"{where}: {key}[{index}] must be an object.")
        objects.append(item)
    return objects


def _day(value: object, where: str) -> date:
    if isinstance(value, str):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            day = None
        if day is not None and day.isoformat() == value:
            return day
    raise DrawError(f"{where}: {value!r} is not a date written YYYY-MM-DD.")


def _optional_day(data: Mapping[str, object], key: str, where: str) -> date | None:
    if key not in data:
        raise DrawError(f"{where}: {key!r} is missing.")
    value = data[key]
    return None if value is None else _day(value, f"{where}: {key}")


def _pairs(data: Mapping[str, object], key: str, where: str) -> list[tuple[object, object]]:
    pairs = []
    for index, item in enumerate(_items(data, key, where)):
        if not isinstance(item, list) or len(item) != 2:
            raise DrawError(f"{where}: {key}[{index}] must be a pair.")
        pairs.append((item[0], item[1]))
    return pairs


def _only(data: Mapping[str, object], fields: frozenset[str], where: str) -> None:
    unknown = sorted(set(data) - fields)
    if unknown:
        raise DrawError(f"{where}: unknown field {unknown[0]!r}.")


def candidate_from_json(data: object, where: str = "candidate") -> Candidate:
    """The `Candidate` of an object made by `candidate_to_json`; a missing, unknown or mistyped field is a
    DrawError naming it (lists may come in any order: the encoding sorts them)."""
    if not isinstance(data, Mapping):
        raise DrawError(f"{where} must be an object.")
    _only(data, _CANDIDATE_FIELDS, where)
    former = []
    for index, (code, end) in enumerate(_pairs(data, "former_employers", where)):
        if not isinstance(code, str):
            raise DrawError(f"{where}: former_employers[{index}] must name a credit code.")
        former.append((code, None if end is None else _day(end, f"{where}: former_employers[{index}]")))
    unavailable = [
        (_day(first, f"{where}: unavailable[{i}]"), _day(last, f"{where}: unavailable[{i}]"))
        for i, (first, last) in enumerate(_pairs(data, "unavailable", where))
    ]
    return Candidate(
        expert_id=_text(data, "expert_id", where),
        status=_text(data, "status", where),
        term_start=_optional_day(data, "term_start", where),
        term_end=_optional_day(data, "term_end", where),
        employer=_text(data, "employer", where),
        specialties=_texts(data, "specialties", where),
        former_employers=tuple(former),
        relatives_at=_texts(data, "relatives_at", where),
        unavailable=tuple(unavailable),
        credit_score=_whole(data, "credit_score", where),
        services_for_tenderer=_whole(data, "services_for_tenderer", where),
        has_account=_flag(data, "has_account", where),
    )


_CONTEXT_FIELDS: Final = frozenset(
    {
        "bidders",
        "earlier_committee",
        "former_employer_years",
        "max_services_for_tenderer",
        "min_credit_score",
        "on",
        "parties",
    }
)


def context_from_json(data: object, where: str = "context") -> Context:
    """The `Context` of an object made by `context_to_json`; anything else is a DrawError naming it."""
    if not isinstance(data, Mapping):
        raise DrawError(f"{where} must be an object.")
    _only(data, _CONTEXT_FIELDS, where)
    return Context(
        on=_day(data.get("on"), f"{where}: on"),
        bidders=frozenset(_texts(data, "bidders", where)),
        parties=frozenset(_texts(data, "parties", where)),
        former_employer_years=_whole(data, "former_employer_years", where),
        min_credit_score=_whole(data, "min_credit_score", where),
        max_services_for_tenderer=_whole(data, "max_services_for_tenderer", where),
        earlier_committee=frozenset(_texts(data, "earlier_committee", where))
        if "earlier_committee" in data
        else frozenset(),
    )


def _seat(item: Mapping[str, object], where: str) -> Seat:
    replaces = item.get("replaces")
    if replaces is not None and not isinstance(replaces, str):
        raise DrawError(f"{where}: 'replaces' must be str or null.")
    return Seat(
        _whole(item, "quota_index", where),
        _text(item, "expert_id", where),
        _whole(item, "round", where),
        replaces,
    )


def _quotas(data: Mapping[str, object]) -> tuple[Quota, ...]:
    return tuple(
        Quota(_text(q, "specialty", f"quotas[{i}]"), _whole(q, "seats", f"quotas[{i}]"))
        for i, q in enumerate(_objects(data, "quotas"))
    )


def _legacy_from_json(data: Mapping[str, object]) -> LegacyRecord:
    try:
        pool = base64.b64decode(_text(data, "pool"), validate=True)
    except binascii.Error:
        raise DrawError("draw record: 'pool' is not standard base64.") from None
    removed = _items(data, "removed")
    if not all(isinstance(r, str) for r in removed):
        raise DrawError("draw record: 'removed' must be a list of expert ids.")
    return LegacyRecord(
        commitment=_text(data, "commitment"),
        seed_hex=_text(data, "seed_hex"),
        witness=_text(data, "witness"),
        pool=pool,
        quotas=_quotas(data),
        employer_limit=_whole(data, "employer_limit"),
        removed=tuple(str(r) for r in removed),
        invitations=tuple(_seat(s, f"invitations[{i}]") for i, s in enumerate(_objects(data, "invitations"))),
    )


def _abort_from_json(data: Mapping[str, object]) -> Abort | None:
    if data.get("abort", ...) is None:
        return None
    where = "draw record: abort"
    item = _get(data, "abort", Mapping, "draw record")
    assert isinstance(item, Mapping)
    return Abort(
        reason=_text(item, "reason", where),
        requested_by=_text(item, "requested_by", where),
        stage=_text(item, "stage", where),
        requested_at=_text(item, "requested_at", where),
        approved_at=_text(item, "approved_at", where),
    )


def _exclusions_from_json(data: Mapping[str, object]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    out = []
    for i, item in enumerate(_objects(data, "exclusions")):
        where = f"exclusions[{i}]"
        out.append((_text(item, "expert_id", where), _texts(item, "reasons", where)))
    if len({expert_id for expert_id, _ in out}) != len(out):
        raise DrawError("draw record: an expert is listed twice among the exclusions.")
    return tuple(sorted(out))


def record_from_json(data: Mapping[str, object]) -> DrawRecord | LegacyRecord:
    """The record in data made by `record_to_json`: a `DrawRecord`, or a `LegacyRecord` for the first
    version. A missing or mistyped field, an unknown version or a legacy pool that is not standard base64
    is a DrawError naming it."""
    version = _text(data, "version")
    if version == LEGACY_VERSION:
        return _legacy_from_json(data)
    if version != DRAW_VERSION:
        raise DrawError(
            f"draw record: version {version!r} is neither {DRAW_VERSION!r} nor {LEGACY_VERSION!r}."
        )
    context = _get(data, "context", Mapping, "draw record")
    return DrawRecord(
        draw_id=_text(data, "draw_id"),
        status=_text(data, "status"),
        context=context_from_json(context),
        candidates=tuple(
            candidate_from_json(c, f"candidates[{i}]") for i, c in enumerate(_items(data, "candidates"))
        ),
        exclusions=_exclusions_from_json(data),
        quotas=_quotas(data),
        employer_limit=_whole(data, "employer_limit"),
        witness_commitment=_optional_text(data, "witness_commitment"),
        commitment=_optional_text(data, "commitment"),
        signature=_optional_text(data, "signature"),
        key_id=_optional_text(data, "key_id"),
        seed_hex=_optional_text(data, "seed_hex"),
        witness_hex=_optional_text(data, "witness"),
        nonce_hex=_optional_text(data, "nonce"),
        removed=_texts(data, "removed", "draw record"),
        invitations=tuple(_seat(s, f"invitations[{i}]") for i, s in enumerate(_objects(data, "invitations"))),
        abort=_abort_from_json(data),
    )
