"""The verifiable random draw of an evaluation committee (专家抽取) and the avoidance rules (回避).

W-10 wants the experts of a committee drawn at random from the expert database; G-08 keeps out anyone
with a conflict of interest. This module decides both, and lets anyone replay a draw afterwards. Pure
logic: no I/O, no clock, no randomness of its own; the service supplies the secret seed and stores what
this module decides.

How a draw is made verifiable (draw version "ggzy-draw-v1"):

1. The service computes the eligible pool (`eligible_pool`, below), encodes it canonically
   (`encode_pool`) and publishes its digest (`pool_digest`).
2. It takes a secret `seed` (32 random bytes from `secrets.token_bytes`) and publishes, before anything is
   drawn, `commitment(seed, digest, quotas, employer_limit)`: SHA-256 over the line-feed separated text
   ``"ggzy-draw-commit-v1"``, the seed in lowercase hex, the pool digest, and `terms_text`. The
   commitment binds the seed, the pool, the quotas and the employer limit; a short seed could be guessed
   from it, hence 32 random bytes.
3. A supervisor then contributes a `witness` (any text, "" when none). The draw runs on
   ``final_seed(seed, witness) = SHA-256("ggzy-draw-seed-v1\\n" + seed + "\\n" + UTF-8 witness)``.
   The platform committed to its seed before it saw the witness and the supervisor never sees the seed,
   so neither can steer the outcome by trying seeds ("grinding").
4. Once the committee is confirmed the seed is revealed and the whole record (`DrawRecord`) published;
   `verify` replays it. Declines, timeouts and late-found conflicts (`removed`) cannot be committed in
   advance: each one must stand on its own evidence (the expert's answer, the invitation's deadline).

Canonical pool encoding: one line per expert, sorted by `expert_id` (by code point, which is also the
byte order of UTF-8), each ``expert_id TAB codes TAB employer LF`` where `codes` are the expert's specialty
codes, sorted, without repeats, joined by commas ("" when none), and `employer` is the current employer's
unified social credit code ("" when none). No field may contain a tab, a line feed or a comma; a code may
not be empty; an expert id may not be empty or repeated. An empty pool is the empty byte string.

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
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import Final

DRAW_VERSION: Final = "ggzy-draw-v1"

_COMMIT_TAG: Final = b"ggzy-draw-commit-v1\n"
_SEED_TAG: Final = b"ggzy-draw-seed-v1\n"
_FORBIDDEN: Final = ("\t", "\n", ",")
_HASH_BLOCK: Final = 64  # SHA-256's block size, in bytes, as HMAC pads its key

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


# ---------------------------------------------------------------- terms and commitment


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


def commitment(seed: bytes, digest: str, quotas: Sequence[Quota], employer_limit: int) -> str:
    """The commitment published before the draw: hex SHA-256 of ``ggzy-draw-commit-v1 LF``, the seed's
    lowercase hex, LF, the pool digest, LF, and `terms_text(quotas, employer_limit)`."""
    text = (
        _COMMIT_TAG
        + seed.hex().encode()
        + b"\n"
        + digest.encode()
        + b"\n"
        + terms_text(quotas, employer_limit).encode()
    )
    return hashlib.sha256(text).hexdigest()


def final_seed(seed: bytes, witness: str) -> bytes:
    """The seed the draw runs on: SHA-256 of ``ggzy-draw-seed-v1 LF``, the secret seed, LF and the UTF-8
    witness. The witness is entropy a supervisor contributes after the commitment is published ("" when
    none), so the platform, bound to its seed already, cannot grind seeds for an outcome it likes."""
    return hashlib.sha256(_SEED_TAG + seed + b"\n" + witness.encode("utf-8")).digest()


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
    this tender's tenderer within the look-back window.
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


@dataclass(frozen=True)
class Context:
    """One tender's draw as the avoidance rules see it: the evaluation day, the bidders' credit codes,
    the agency's and the tenderer's (`parties`), and the thresholds a procedure profile may tighten."""

    on: date
    bidders: frozenset[str]
    parties: frozenset[str]
    former_employer_years: int = 3
    min_credit_score: int = 60
    max_services_for_tenderer: int = 3


# Reason code -> the rule it enforces and what it means, in the order `avoidance` reports them.
REASONS: Final[dict[str, str]] = {
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
    if ctx.former_employer_years < 0:
        raise ValueError(f"former_employer_years must be 0 or more, not {ctx.former_employer_years}.")
    cutoff = _years_before(ctx.on, ctx.former_employer_years)
    recent = {code for code, end in c.former_employers if code and (end is None or end >= cutoff)}
    found = {
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
    for c in sorted(candidates, key=lambda c: c.expert_id):
        if c.expert_id in seen:
            raise DrawError(f"Expert {c.expert_id} appears more than once among the candidates.")
        seen.add(c.expert_id)
        if not any(code.startswith(prefixes) for code in c.specialties):
            continue
        reasons = avoidance(c, ctx)
        if reasons:
            excluded[c.expert_id] = reasons
        else:
            eligible.append(PoolEntry(c.expert_id, c.specialties, c.employer))
    return eligible, excluded


# ---------------------------------------------------------------- verification


@dataclass(frozen=True)
class DrawRecord:
    """Everything published about a draw once its committee is confirmed, for anyone to replay: the
    commitment, the revealed seed (lowercase hex) and the witness, the pool's canonical bytes, the terms,
    the removals in order, and the invitations as the platform recorded them."""

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


def _replay_seed(record: DrawRecord) -> tuple[bytes | None, str | None]:
    try:
        seed = bytes.fromhex(record.seed_hex)
    except ValueError:
        seed = None
    if seed is None or seed.hex() != record.seed_hex:
        return None, f"seed: {record.seed_hex!r} is not lowercase hexadecimal."
    return seed, None


def verify(record: DrawRecord) -> list[str]:
    """Replay `record`; [] when every check passes, else one message per failed check.

    The checks, each reported on its own: the seed is lowercase hex; the pool decodes canonically; the
    terms are valid; the commitment is that of the revealed seed, the pool's SHA-256 and the terms; the
    invitations replayed from the pool, the terms, the final seed and the removals are those recorded
    (the message names the first index that differs). A check that needs a part found broken is skipped.
    """
    problems: list[str] = []
    seed, problem = _replay_seed(record)
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
    expected = commitment(seed, hashlib.sha256(record.pool).hexdigest(), record.quotas, record.employer_limit)
    if record.commitment != expected:
        problems.append(
            f"commitment: {record.commitment} is not the commitment of the revealed seed, the pool and the "
            f"terms ({expected})."
        )
    if pool is None:
        return problems
    try:
        replay = select(
            pool, record.quotas, final_seed(seed, record.witness), record.employer_limit, record.removed
        )
    except DrawError as exc:
        problems.append(f"invitations: the draw cannot be replayed: {exc}")
        return problems
    difference = _first_difference(record.invitations, replay.invitations)
    if difference is not None:
        problems.append(f"invitations: {difference}")
    return problems


def record_to_json(record: DrawRecord) -> dict[str, object]:
    """`record` as JSON-ready data (the pool in standard base64), tagged with `DRAW_VERSION`."""
    return {
        "version": DRAW_VERSION,
        "commitment": record.commitment,
        "seed_hex": record.seed_hex,
        "witness": record.witness,
        "pool": base64.b64encode(record.pool).decode("ascii"),
        "quotas": [{"specialty": q.specialty, "seats": q.seats} for q in record.quotas],
        "employer_limit": record.employer_limit,
        "removed": list(record.removed),
        "invitations": [
            {"quota_index": s.quota_index, "expert_id": s.expert_id, "round": s.round, "replaces": s.replaces}
            for s in record.invitations
        ],
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


def _whole(data: Mapping[str, object], key: str, where: str = "draw record") -> int:
    value = _get(data, key, int, where)
    assert isinstance(value, int)
    return value


def _items(data: Mapping[str, object], key: str) -> list[object]:
    value = _get(data, key, list, "draw record")
    assert isinstance(value, list)
    return value


def _objects(data: Mapping[str, object], key: str) -> list[Mapping[str, object]]:
    objects: list[Mapping[str, object]] = []
    for index, item in enumerate(_items(data, key)):
        if not isinstance(item, Mapping):
            raise DrawError(f"draw record: {key}[{index}] must be an object.")
        objects.append(item)
    return objects


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


def record_from_json(data: Mapping[str, object]) -> DrawRecord:
    """The `DrawRecord` in data made by `record_to_json`; a missing or mistyped field, a version other
    than `DRAW_VERSION` or a pool that is not standard base64 is a DrawError naming it."""
    version = _text(data, "version")
    if version != DRAW_VERSION:
        raise DrawError(f"draw record: version {version!r} is not {DRAW_VERSION!r}.")
    try:
        pool = base64.b64decode(_text(data, "pool"), validate=True)
    except binascii.Error:
        raise DrawError("draw record: 'pool' is not standard base64.") from None
    removed = _items(data, "removed")
    if not all(isinstance(r, str) for r in removed):
        raise DrawError("draw record: 'removed' must be a list of expert ids.")
    quotas = _objects(data, "quotas")
    invitations = _objects(data, "invitations")
    return DrawRecord(
        commitment=_text(data, "commitment"),
        seed_hex=_text(data, "seed_hex"),
        witness=_text(data, "witness"),
        pool=pool,
        quotas=tuple(
            Quota(_text(q, "specialty", f"quotas[{i}]"), _whole(q, "seats", f"quotas[{i}]"))
            for i, q in enumerate(quotas)
        ),
        employer_limit=_whole(data, "employer_limit"),
        removed=tuple(str(r) for r in removed),
        invitations=tuple(_seat(s, f"invitations[{i}]") for i, s in enumerate(invitations)),
    )
