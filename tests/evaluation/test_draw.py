"""The committee draw (专家抽取) and avoidance (回避): the canonical pool, a worked example computed with
`hmac` directly, the selection rules one by one, properties over random pools, each avoidance reason at its
boundary days; the second version's witness commitment, platform commitment and final seed with test
vectors, the canonical encodings of the pool before avoidance, the context and the exclusions, and the
auditors' replay of a record at every stage catching every kind of tampering; first-version records still
verify."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.draw import (
    LEGACY_VERSION,
    REASONS,
    Abort,
    Candidate,
    Context,
    DrawError,
    DrawRecord,
    DrawResult,
    Inputs,
    LegacyRecord,
    PoolEntry,
    Quota,
    Seat,
    avoidance,
    candidate_from_json,
    candidate_to_json,
    commitment,
    commitment_statement,
    commitment_v1,
    committee_of,
    context_from_json,
    context_to_json,
    decode_candidates,
    decode_pool,
    eligible_pool,
    encode_candidates,
    encode_context,
    encode_exclusions,
    encode_pool,
    final_seed,
    final_seed_v1,
    pool_digest,
    prepare,
    rank_key,
    ranking,
    record_from_json,
    record_to_json,
    select,
    terms_text,
    verify,
    witness_commitment,
)

X = "91320100000000001X"  # employers' unified social credit codes (the draw does not check them)
Y = "91320100000000002Y"
Z = "91320100000000003Z"


def eid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def expert(n: int, *codes: str, employer: str = "") -> PoolEntry:
    return PoolEntry(eid(n), codes, employer)


def seed_ranking(pool: list[PoolEntry], first: list[int]) -> bytes:
    """A seed under which `ranking` puts the experts numbered `first` at the top, in that order."""
    wanted = [eid(n) for n in first]
    for attempt in range(100_000):
        seed = f"test-seed-{attempt}".encode()
        if [e.expert_id for e in ranking(pool, seed)][: len(wanted)] == wanted:
            return seed
    raise AssertionError("no seed found")


def ids(seats: tuple[Seat, ...]) -> list[str]:
    return [s.expert_id for s in seats]


def record_for(
    pool: list[PoolEntry],
    quotas: tuple[Quota, ...],
    seed: bytes,
    witness: str,
    employer_limit: int,
    removed: tuple[str, ...] = (),
) -> LegacyRecord:
    result = select(pool, quotas, final_seed_v1(seed, witness), employer_limit, removed)
    return LegacyRecord(
        commitment=commitment_v1(seed, pool_digest(pool), quotas, employer_limit),
        seed_hex=seed.hex(),
        witness=witness,
        pool=encode_pool(pool),
        quotas=quotas,
        employer_limit=employer_limit,
        removed=removed,
        invitations=result.invitations,
    )


# ---------------------------------------------------------------- the canonical pool


def test_encode_pool_writes_one_sorted_tab_separated_line_per_expert() -> None:
    pool = [expert(2, "B02", "A0102", employer=X), expert(1), expert(3, "C03", employer=Y)]

    assert encode_pool(pool) == (
        b"00000000-0000-4000-8000-000000000001\t\t\n"
        b"00000000-0000-4000-8000-000000000002\tA0102,B02\t91320100000000001X\n"
        b"00000000-0000-4000-8000-000000000003\tC03\t91320100000000002Y\n"
    )


def test_pool_entry_keeps_its_codes_sorted_without_repeats() -> None:
    assert PoolEntry(eid(1), ("B02", "A01", "B02"), "").specialties == ("A01", "B02")


def test_the_empty_pool_is_the_empty_byte_string() -> None:
    assert (encode_pool([]), decode_pool(b"")) == (b"", [])


def test_pool_digest_is_the_sha256_of_the_canonical_bytes() -> None:
    pool = [expert(1, "A01", employer=X)]

    assert pool_digest(pool) == hashlib.sha256(encode_pool(pool)).hexdigest()


@pytest.mark.parametrize(
    ("pool", "message"),
    [
        ([expert(1, "A01"), expert(1, "B02")], "appears more than once"),
        ([PoolEntry("", ("A01",), "")], "may not be empty"),
        ([PoolEntry(eid(1), ("A01", ""), "")], "may not be empty"),
        ([PoolEntry(eid(1) + "\t", ("A01",), "")], "contains '\\\\t'"),
        ([PoolEntry(eid(1), ("A01\n",), "")], "contains '\\\\n'"),
        ([PoolEntry(eid(1), ("A01,B02",), "")], "contains ','"),
        ([PoolEntry(eid(1), ("A01",), X + ",")], "contains ','"),
    ],
    ids=["repeated id", "empty id", "empty code", "tab", "line feed", "comma in code", "comma in employer"],
)
def test_encode_pool_refuses_what_it_could_not_decode(pool: list[PoolEntry], message: str) -> None:
    with pytest.raises(DrawError, match=message):
        encode_pool(pool)


A = b"00000000-0000-4000-8000-000000000001\tA01\t91320100000000001X\n"
B = b"00000000-0000-4000-8000-000000000002\tB02\t\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (B + A, "line 2: expert .* out of order"),
        (A + A, "line 2: expert .* out of order or repeated"),
        (A + b"\xff\n", "not valid UTF-8"),
        (A + B[:-1], "does not end with a line feed"),
        (A + b"00000000-0000-4000-8000-000000000002\tB02\n", "line 2 has 2 tab-separated fields"),
        (A + b"00000000-0000-4000-8000-000000000002\tB02\t\t\n", "line 2 has 4 tab-separated fields"),
        (b"00000000-0000-4000-8000-000000000001\tB02,A01\t\n", "not sorted"),
        (b"00000000-0000-4000-8000-000000000001\tA01,A01\t\n", "not sorted without repeats"),
        (b"00000000-0000-4000-8000-000000000001\tA01,\t\n", "empty expert id or specialty code"),
        (b"\tA01\t\n", "empty expert id"),
        (b"00000000-0000-4000-8000-000000000001\tA01\tX,Y\n", "comma"),
        (A + b"\n", "line 2 has 1 tab-separated fields"),
    ],
    ids=[
        "unsorted",
        "repeated",
        "bad utf-8",
        "no final line feed",
        "two fields",
        "four fields",
        "unsorted codes",
        "repeated code",
        "empty code",
        "empty id",
        "comma in employer",
        "blank line",
    ],
)
def test_decode_pool_refuses_non_canonical_bytes(data: bytes, message: str) -> None:
    with pytest.raises(DrawError, match=message):
        decode_pool(data)


CODES = ["A01", "A0101", "A0102", "B02", "B0201", "C03"]
EMPLOYERS = ["", X, Y, Z]

pool_entries = st.builds(
    PoolEntry,
    st.uuids().map(str),
    st.lists(st.sampled_from(CODES), max_size=3).map(tuple),
    st.sampled_from(EMPLOYERS),
)
pools = st.lists(pool_entries, max_size=25, unique_by=lambda e: e.expert_id)


@settings(max_examples=60)
@given(pools)
def test_decode_pool_is_the_exact_inverse_of_encode_pool(pool: list[PoolEntry]) -> None:
    data = encode_pool(pool)

    assert decode_pool(data) == sorted(pool, key=lambda e: e.expert_id)
    assert encode_pool(decode_pool(data)) == data


# ---------------------------------------------------------------- terms, commitment, seeds

POOL = [
    expert(1, "A01", employer=X),
    expert(2, "A0102", employer=X),
    expert(3, "B02", employer=Y),
    expert(4, "A01", "B02"),
    expert(5, "B0201", employer=Y),
    expert(6, "C03", employer=Z),
]
QUOTAS = (Quota("A01", 2), Quota("B02", 1))
SEED = bytes(range(32))
WITNESS = "supervisor-2026-05-20"


def test_terms_text_lists_the_quotas_in_order_then_the_employer_limit() -> None:
    assert terms_text(QUOTAS, 1) == "quota\tA01\t2\nquota\tB02\t1\nemployer_limit\t1\n"


def test_commitment_is_the_sha256_of_the_tagged_seed_digest_and_terms() -> None:
    digest = pool_digest(POOL)
    text = f"ggzy-draw-commit-v1\n{SEED.hex()}\n{digest}\n{terms_text(QUOTAS, 1)}"

    assert commitment_v1(SEED, digest, QUOTAS, 1) == hashlib.sha256(text.encode()).hexdigest()
    # a test vector for independent implementations
    assert (
        commitment_v1(SEED, digest, QUOTAS, 1)
        == "a0826e60247a85509705b7412c3523f02c71ab7c2e0c731c2fa6b6c5558a071d"
    )


@pytest.mark.parametrize(
    ("seed", "pool", "quotas", "limit"),
    [
        (bytes(32), POOL, QUOTAS, 1),
        (SEED, [*POOL[:5], expert(6, "C03", employer=X)], QUOTAS, 1),
        (SEED, POOL[:5], QUOTAS, 1),
        (SEED, POOL, (Quota("A0102", 2), Quota("B02", 1)), 1),
        (SEED, POOL, (Quota("A01", 3), Quota("B02", 1)), 1),
        (SEED, POOL, (Quota("B02", 1), Quota("A01", 2)), 1),
        (SEED, POOL, QUOTAS, 2),
    ],
    ids=["seed", "employer", "expert dropped", "specialty", "seats", "quota order", "employer limit"],
)
def test_commitment_binds_seed_pool_quotas_and_employer_limit(
    seed: bytes, pool: list[PoolEntry], quotas: tuple[Quota, ...], limit: int
) -> None:
    assert commitment_v1(seed, pool_digest(pool), quotas, limit) != commitment_v1(
        SEED, pool_digest(POOL), QUOTAS, 1
    )


def test_final_seed_mixes_the_witness_into_the_committed_seed() -> None:
    expected = hashlib.sha256(b"ggzy-draw-seed-v1\n" + SEED + b"\n" + WITNESS.encode()).digest()

    assert final_seed_v1(SEED, WITNESS) == expected
    assert final_seed_v1(SEED, "") != expected
    assert (
        final_seed_v1(SEED, WITNESS).hex()
        == "9bd27f1d4d6003ee477418f8d871c2fa708382557055d0f19a634470c121c205"
    )


@given(st.binary(max_size=150), st.text(max_size=40))
def test_ranking_sorts_by_the_hmac_of_each_expert_id(seed: bytes, expert_id: str) -> None:
    pool = [*POOL, PoolEntry(expert_id or "x", (), "")]
    key = {e.expert_id: hmac.new(seed, e.expert_id.encode(), hashlib.sha256).digest() for e in pool}

    assert rank_key(seed, expert_id) == hmac.new(seed, expert_id.encode(), hashlib.sha256).digest()
    assert ranking(pool, seed) == sorted(pool, key=lambda e: (key[e.expert_id], e.expert_id))


# ---------------------------------------------------------------- a worked example


def test_worked_example_draws_replaces_and_leaves_a_shortfall_as_the_rules_say() -> None:
    seed = final_seed_v1(SEED, WITNESS)
    key = {e.expert_id: hmac.new(seed, e.expert_id.encode(), hashlib.sha256).digest() for e in POOL}
    order = sorted(key, key=lambda i: (key[i], i))
    assert order == [eid(2), eid(5), eid(6), eid(1), eid(3), eid(4)]

    result = select(POOL, QUOTAS, seed, employer_limit=1, removed=[eid(4), eid(2)])

    # A01 seat 1: expert 2 (A0102). A01 seat 2: 5 and 6 do not match, 1 matches but X already has its one
    # seat, so 4 (no employer). B02: 5 (B0201). Removing 4: 1 is still blocked by 2 and 3, 4 do not match
    # or were invited, so the seat stays empty. Removing 2 frees X: 1 takes the A01 seat in round 2.
    assert result == DrawResult(
        invitations=(
            Seat(0, eid(2), 0, None),
            Seat(0, eid(4), 0, None),
            Seat(1, eid(5), 0, None),
            Seat(0, eid(1), 2, eid(2)),
        ),
        committee=(Seat(0, eid(1), 2, eid(2)), Seat(1, eid(5), 0, None)),
        shortfalls=(0,),
    )


# ---------------------------------------------------------------- the selection rules one by one

TRIO = [expert(1, "A01", "B02"), expert(2, "A01"), expert(3, "B02")]


def test_quotas_are_filled_in_the_order_given() -> None:
    seed = seed_ranking(TRIO, [1, 2, 3])

    assert ids(select(TRIO, [Quota("B02", 1), Quota("A01", 1)], seed, 1).committee) == [eid(1), eid(2)]
    assert ids(select(TRIO, [Quota("A01", 1), Quota("B02", 1)], seed, 1).committee) == [eid(1), eid(3)]


def test_a_quota_matches_an_expert_with_any_code_under_its_prefix() -> None:
    pool = [expert(1, "A01"), expert(2, "C03", "A0102"), expert(3, "B0201")]
    seed = seed_ranking(pool, [1, 2, 3])

    assert ids(select(pool, [Quota("A0102", 1)], seed, 1).committee) == [eid(2)]
    assert ids(select(pool, [Quota("A01", 2)], seed, 1).committee) == [eid(1), eid(2)]
    assert ids(select(pool, [Quota("B02", 1)], seed, 1).committee) == [eid(3)]


EMPLOYED = [expert(1, "A01", employer=X), expert(2, "A01", employer=X), expert(3, "A01", employer=Y)]
EMPLOYED += [expert(4, "A01")]


def test_the_employer_limit_passes_over_a_full_employer() -> None:
    seed = seed_ranking(EMPLOYED, [1, 2, 3, 4])

    assert ids(select(EMPLOYED, [Quota("A01", 3)], seed, 1).committee) == [eid(1), eid(3), eid(4)]
    assert ids(select(EMPLOYED, [Quota("A01", 3)], seed, 2).committee) == [eid(1), eid(2), eid(3)]


def test_experts_without_an_employer_are_never_limited() -> None:
    pool = [expert(1, "A01"), expert(2, "A01"), expert(3, "A01")]

    assert len(select(pool, [Quota("A01", 3)], b"seed", 1).committee) == 3


def test_a_removal_frees_its_employers_place() -> None:
    seed = seed_ranking(EMPLOYED, [1, 2, 3, 4])

    result = select(EMPLOYED, [Quota("A01", 3)], seed, 1, removed=[eid(1)])

    assert result.invitations[-1] == Seat(0, eid(2), 1, eid(1))
    assert ids(result.committee) == [eid(3), eid(4), eid(2)]


def test_an_empty_seat_stays_empty_when_a_later_removal_frees_its_employer() -> None:
    pool = [expert(1, "A01", employer=X), expert(2, "A01", employer=X), expert(3, "B02")]
    seed = seed_ranking(pool, [1, 2, 3])

    result = select(pool, [Quota("A01", 2), Quota("B02", 1)], seed, 1, removed=[eid(3)])

    assert result.shortfalls == (0, 1)
    assert ids(result.committee) == [eid(1)]


def test_replacements_take_the_removed_experts_quota_and_rounds_count_up() -> None:
    pool = [expert(n, "A01" if n <= 3 else "B02") for n in range(1, 7)]
    seed = b"seed"
    first = select(pool, [Quota("A01", 1), Quota("B02", 1)], seed, 1)
    a, b = ids(first.committee)

    second_b = select(pool, [Quota("A01", 1), Quota("B02", 1)], seed, 1, removed=[b]).committee[1].expert_id
    result = select(pool, [Quota("A01", 1), Quota("B02", 1)], seed, 1, removed=[b, second_b, a])

    assert [(s.quota_index, s.round, s.replaces) for s in result.invitations] == [
        (0, 0, None),
        (1, 0, None),
        (1, 1, b),
        (1, 2, second_b),
        (0, 3, a),
    ]
    assert [s.quota_index for s in result.committee] == [0, 1]
    assert len(set(ids(result.invitations))) == 5


@pytest.mark.parametrize(
    ("removed", "message"),
    [
        ([eid(6)], f"Expert {eid(6)} cannot be removed: .*never invited"),
        ([eid(2), eid(2)], f"Expert {eid(2)} cannot be removed: .*already removed"),
        (["not-an-expert"], "Expert not-an-expert cannot be removed"),
    ],
    ids=["never invited", "removed twice", "unknown"],
)
def test_removing_an_expert_who_is_not_standing_is_refused(removed: list[str], message: str) -> None:
    with pytest.raises(DrawError, match=message):
        select(POOL, QUOTAS, final_seed_v1(SEED, WITNESS), 1, removed)


def test_a_pool_that_runs_dry_leaves_one_shortfall_per_empty_seat() -> None:
    pool = [expert(1, "A01"), expert(2, "A01"), expert(3, "B02")]

    result = select(pool, [Quota("A01", 3), Quota("B02", 1), Quota("C03", 2)], b"seed", 1)

    assert len(result.committee) == 3
    assert result.shortfalls == (0, 2, 2)


def test_a_removal_with_no_one_left_leaves_a_shortfall() -> None:
    pool = [expert(1, "A01"), expert(2, "B02")]

    result = select(pool, [Quota("A01", 1), Quota("B02", 1)], b"seed", 1, removed=[eid(1)])

    assert (ids(result.committee), result.shortfalls) == ([eid(2)], (0,))


def test_shortfalls_are_listed_by_quota_whenever_they_arose() -> None:
    pool = [expert(1, "A01"), expert(2, "B02")]

    result = select(pool, [Quota("A01", 1), Quota("B02", 2)], b"seed", 1, removed=[eid(1)])

    assert result.shortfalls == (0, 1)


@pytest.mark.parametrize(
    ("pool", "quotas", "limit", "message"),
    [
        (POOL, [], 1, "at least one quota"),
        (POOL, [Quota("A01", 0)], 1, "1 or more seats"),
        (POOL, [Quota("", 1)], 1, "may not be empty"),
        (POOL, [Quota("A01", 1)], 0, "employer limit must be 1 or more"),
        ([*POOL, expert(1, "C03")], [Quota("A01", 1)], 1, f"Expert {eid(1)} appears more than once"),
    ],
    ids=["no quotas", "no seats", "empty specialty", "limit zero", "repeated expert"],
)
def test_select_refuses_terms_it_cannot_draw(
    pool: list[PoolEntry], quotas: list[Quota], limit: int, message: str
) -> None:
    with pytest.raises(DrawError, match=message):
        select(pool, quotas, b"seed", limit)


# ---------------------------------------------------------------- properties

quota_lists = st.lists(
    st.builds(Quota, st.sampled_from(["A", "A01", "A0102", "B02", "C", "D"]), st.integers(1, 3)),
    min_size=1,
    max_size=3,
)


@st.composite
def draws(
    draw: st.DrawFn,
) -> tuple[list[PoolEntry], list[Quota], bytes, int, list[str], list[DrawResult]]:
    """A random draw with up to five removals, each of an expert standing at the time; the results after
    0, 1, … removals."""
    pool = draw(pools)
    quotas = draw(quota_lists)
    seed = draw(st.binary(max_size=40))
    limit = draw(st.integers(1, 3))
    removed: list[str] = []
    results = [select(pool, quotas, seed, limit)]
    for pick in draw(st.lists(st.integers(0, 50), max_size=5)):
        standing = results[-1].committee
        if not standing:
            break
        removed.append(standing[pick % len(standing)].expert_id)
        results.append(select(pool, quotas, seed, limit, removed))
    return pool, quotas, seed, limit, removed, results


@settings(max_examples=80)
@given(draws())
def test_select_is_deterministic_whatever_the_pool_order(
    case: tuple[list[PoolEntry], list[Quota], bytes, int, list[str], list[DrawResult]],
) -> None:
    pool, quotas, seed, limit, removed, results = case

    assert select(pool[::-1], quotas, seed, limit, removed) == results[-1]
    assert select(pool, quotas, seed, limit, removed) == results[-1]


@settings(max_examples=80)
@given(draws())
def test_select_keeps_its_invariants_after_every_removal(
    case: tuple[list[PoolEntry], list[Quota], bytes, int, list[str], list[DrawResult]],
) -> None:
    pool, quotas, _, limit, _, results = case
    by_id = {e.expert_id: e for e in pool}
    for result in results:
        invited = ids(result.invitations)
        assert len(set(invited)) == len(invited)  # nobody is invited twice
        seated_at: dict[str, int] = {}
        for seat in result.committee:
            entry = by_id[seat.expert_id]
            assert any(code.startswith(quotas[seat.quota_index].specialty) for code in entry.specialties)
            if entry.employer:
                seated_at[entry.employer] = seated_at.get(entry.employer, 0) + 1
        assert all(count <= limit for count in seated_at.values())
        assert len(result.committee) + len(result.shortfalls) == sum(q.seats for q in quotas)


@settings(max_examples=60)
@given(pools, quota_lists, st.integers(1, 3), st.binary(min_size=32, max_size=32), st.text(max_size=20))
def test_verify_accepts_every_honest_record(
    pool: list[PoolEntry], quotas: list[Quota], limit: int, seed: bytes, witness: str
) -> None:
    first = select(pool, quotas, final_seed_v1(seed, witness), limit)
    removed = tuple(ids(first.committee)[:2])  # declines must be of experts standing at the time

    record = record_for(pool, tuple(quotas), seed, witness, limit, removed)

    assert verify(record) == []
    assert record_from_json(json.loads(json.dumps(record_to_json(record)))) == record


# ---------------------------------------------------------------- first-version records (ggzy-draw-v1) still verify

BIG_POOL = [expert(n, CODES[n % len(CODES)], employer=EMPLOYERS[n % len(EMPLOYERS)]) for n in range(1, 21)]
TERMS = (Quota("A01", 3), Quota("B02", 2))


def honest_record() -> LegacyRecord:
    first = select(BIG_POOL, TERMS, final_seed_v1(SEED, WITNESS), 1)
    return record_for(BIG_POOL, TERMS, SEED, WITNESS, 1, (first.committee[0].expert_id,))


def checks(problems: list[str]) -> list[str]:
    return [p.split(":")[0] for p in problems]


def test_verify_accepts_the_honest_record() -> None:
    assert verify(honest_record()) == []


def test_verify_detects_a_changed_seed() -> None:
    record = replace(honest_record(), seed_hex=bytes(32).hex())

    assert checks(verify(record)) == ["commitment", "invitations"]


def test_verify_detects_a_changed_witness() -> None:
    assert checks(verify(replace(honest_record(), witness="another witness"))) == ["invitations"]


def test_verify_detects_a_seed_that_is_not_lowercase_hex() -> None:
    record = honest_record()

    assert checks(verify(replace(record, seed_hex=record.seed_hex.upper()))) == ["seed"]


def test_verify_detects_a_changed_pool_byte() -> None:
    record = honest_record()
    pool = record.pool.replace(b"\tC03\t", b"\tC04\t", 1)  # one byte of a code no quota asks for
    assert len(pool) == len(record.pool) and pool != record.pool

    assert checks(verify(replace(record, pool=pool))) == ["commitment"]


def test_verify_detects_a_pool_that_is_not_canonical() -> None:
    record = honest_record()
    pool = record.pool.replace(b"\t", b" ", 1)

    assert checks(verify(replace(record, pool=pool))) == ["pool", "commitment"]


def test_verify_detects_changed_terms() -> None:
    assert checks(verify(replace(honest_record(), employer_limit=2))) == ["commitment", "invitations"]


def test_verify_names_the_first_swapped_invitation() -> None:
    record = honest_record()
    first, second, *rest = record.invitations

    problems = verify(replace(record, invitations=(second, first, *rest)))

    assert len(problems) == 1
    assert problems[0].startswith("invitations: invitation 0 differs: recorded Seat(quota_index=0, ")


def test_verify_names_a_missing_invitation() -> None:
    record = honest_record()

    problems = verify(replace(record, invitations=record.invitations[:-1]))

    assert problems == [
        f"invitations: invitation {len(record.invitations) - 1} differs: "
        f"{len(record.invitations) - 1} invitations recorded, the replay makes {len(record.invitations)}."
    ]


def test_verify_reports_removals_that_cannot_be_replayed() -> None:
    record = replace(honest_record(), removed=(eid(99),))

    assert verify(record) == [
        f"invitations: the draw cannot be replayed: Expert {eid(99)} cannot be removed: not standing in "
        "the committee (was never invited)."
    ]


def test_record_to_json_carries_the_version_and_the_pool_in_base64() -> None:
    record = honest_record()

    data = record_to_json(record)

    assert data["version"] == LEGACY_VERSION
    assert data["pool"] == base64.b64encode(record.pool).decode()
    assert record_from_json(data) == record


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "ggzy-draw-v0"}, "version 'ggzy-draw-v0' is neither 'ggzy-draw-v2' nor 'ggzy-draw-v1'"),
        ({"pool": "not base64!"}, "'pool' is not standard base64"),
        ({"employer_limit": True}, "'employer_limit' must be int, not bool"),
        ({"removed": [1]}, "'removed' must be a list of expert ids"),
        ({"quotas": [{"specialty": "A01"}]}, "quotas\\[0\\]: 'seats' is missing"),
        ({"invitations": ["x"]}, "invitations\\[0\\] must be an object"),
    ],
    ids=["version", "base64", "bool limit", "removed", "quota seats", "invitation"],
)
def test_record_from_json_refuses_malformed_records(change: dict[str, object], message: str) -> None:
    data = {**record_to_json(honest_record()), **change}

    with pytest.raises(DrawError, match=message):
        record_from_json(data)


def test_record_from_json_refuses_a_missing_field() -> None:
    data = record_to_json(honest_record())
    del data["commitment"]

    with pytest.raises(DrawError, match="'commitment' is missing"):
        record_from_json(data)


# ---------------------------------------------------------------- avoidance (回避)

ON = date(2026, 5, 20)
BIDDER, AGENCY, TENDERER, OTHER = (
    "91110000000000001B",
    "91110000000000002A",
    "91110000000000003T",
    "91110000000000004O",
)
CTX = Context(on=ON, bidders=frozenset({BIDDER}), parties=frozenset({AGENCY, TENDERER}))
CLEAN = Candidate(
    expert_id=eid(1),
    status="active",
    term_start=date(2024, 1, 1),
    term_end=date(2027, 12, 31),
    employer=OTHER,
    specialties=("A0102",),
    former_employers=((BIDDER, date(2020, 6, 30)),),
    relatives_at=(OTHER,),
    unavailable=((date(2026, 6, 1), date(2026, 6, 5)),),
    credit_score=60,
    services_for_tenderer=2,
)


def test_an_expert_with_no_conflict_is_eligible() -> None:
    assert avoidance(CLEAN, CTX) == ()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "suspended"}, "not_active"),
        ({"status": "pending"}, "not_active"),
        ({"term_start": ON + timedelta(days=1)}, "out_of_term"),
        ({"term_end": ON - timedelta(days=1)}, "out_of_term"),
        ({"employer": BIDDER}, "employer_is_bidder"),
        ({"employer": AGENCY}, "employer_is_party"),
        ({"employer": TENDERER}, "employer_is_party"),
        ({"former_employers": ((BIDDER, None),)}, "former_employer_bidder"),
        ({"former_employers": ((TENDERER, date(2025, 1, 1)),)}, "former_employer_party"),
        ({"relatives_at": (OTHER, BIDDER)}, "relative_at_bidder"),
        ({"unavailable": ((ON, ON),)}, "unavailable"),
        ({"credit_score": 59}, "credit"),
        ({"services_for_tenderer": 3}, "served_tenderer_often"),
        ({"has_account": False}, "no_account"),
    ],
)
def test_each_avoidance_reason(change: dict[str, object], reason: str) -> None:
    assert avoidance(replace(CLEAN, **change), CTX) == (reason,)  # type: ignore[arg-type]


def test_the_term_covers_its_first_and_last_day() -> None:
    assert avoidance(replace(CLEAN, term_start=ON, term_end=ON), CTX) == ()
    assert avoidance(replace(CLEAN, term_start=None, term_end=None), CTX) == ()


@pytest.mark.parametrize(
    ("ended", "avoided"),
    [(date(2023, 5, 20), True), (date(2023, 5, 19), False), (None, True)],
    ids=["exactly 3 years ago", "a day more", "no end recorded"],
)
def test_a_former_employment_avoids_when_it_ended_on_or_after_the_day_three_years_before(
    ended: date | None, avoided: bool
) -> None:
    candidate = replace(CLEAN, former_employers=((BIDDER, ended),))

    assert avoidance(candidate, CTX) == (("former_employer_bidder",) if avoided else ())


@pytest.mark.parametrize(
    ("ended", "avoided"),
    [(date(2021, 2, 28), True), (date(2021, 2, 27), False)],
    ids=["28 February", "27 February"],
)
def test_three_years_before_29_february_is_28_february(ended: date, avoided: bool) -> None:
    candidate = replace(CLEAN, former_employers=((AGENCY, ended),))
    ctx = replace(CTX, on=date(2024, 2, 29))

    assert avoidance(candidate, ctx) == (("former_employer_party",) if avoided else ())


def test_a_profile_may_look_back_further_at_former_employers() -> None:
    candidate = replace(CLEAN, former_employers=((BIDDER, date(2022, 1, 1)),))

    assert avoidance(candidate, replace(CTX, former_employer_years=5)) == ("former_employer_bidder",)


@pytest.mark.parametrize(
    ("on", "avoided"),
    [
        (date(2026, 5, 31), False),
        (date(2026, 6, 1), True),
        (date(2026, 6, 5), True),
        (date(2026, 6, 6), False),
    ],
    ids=["day before", "first day", "last day", "day after"],
)
def test_an_unavailable_range_covers_both_its_ends(on: date, avoided: bool) -> None:
    assert avoidance(CLEAN, replace(CTX, on=on)) == (("unavailable",) if avoided else ())


def test_thresholds_come_from_the_context() -> None:
    ctx = replace(CTX, min_credit_score=80, max_services_for_tenderer=2)

    assert avoidance(CLEAN, ctx) == ("credit", "served_tenderer_often")


def test_every_reason_is_reported_in_the_order_of_reasons() -> None:
    candidate = replace(
        CLEAN,
        status="retired",
        term_end=ON - timedelta(days=1),
        employer=BIDDER,
        former_employers=((AGENCY, None), (BIDDER, ON)),
        relatives_at=(BIDDER,),
        unavailable=((ON, ON),),
        credit_score=0,
        services_for_tenderer=9,
        has_account=False,
    )

    ctx = replace(CTX, earlier_committee=frozenset({candidate.expert_id}))
    assert avoidance(candidate, ctx) == tuple(code for code in REASONS if code != "employer_is_party")


def test_every_reason_cites_its_rule() -> None:
    assert {code: text.split(":")[0] for code, text in REASONS.items()} == {
        "no_account": "W-10",
        "not_active": "W-10",
        "out_of_term": "W-10",
        "employer_is_bidder": "G-08",
        "employer_is_party": "G-08",
        "former_employer_bidder": "G-08",
        "former_employer_party": "G-08",
        "relative_at_bidder": "G-08",
        "unavailable": "W-10",
        "credit": "house rule",
        "served_tenderer_often": "house rule",
        "earlier_committee": "G-12/W-17",
    }


def test_a_fresh_committee_excludes_the_earlier_committee_and_its_context_carries_it() -> None:
    ctx = replace(CTX, earlier_committee=frozenset({CLEAN.expert_id}))
    assert avoidance(CLEAN, ctx) == ("earlier_committee",)
    assert avoidance(CLEAN, CTX) == ()
    assert context_to_json(ctx)["earlier_committee"] == [CLEAN.expert_id]
    assert context_from_json(context_to_json(ctx)) == ctx
    # a first draw's context reads as it did before the field existed
    assert "earlier_committee" not in context_to_json(CTX)
    assert context_from_json(context_to_json(CTX)) == CTX


def test_eligible_pool_splits_the_candidates_of_the_wanted_specialties() -> None:
    candidates = [
        replace(CLEAN, expert_id=eid(3), specialties=("B0201", "A0102"), employer=""),
        replace(CLEAN, expert_id=eid(2), specialties=("B02",), employer=BIDDER),
        replace(CLEAN, expert_id=eid(1)),
        replace(CLEAN, expert_id=eid(4), specialties=("C03",), status="suspended"),
        replace(CLEAN, expert_id=eid(5), specialties=("A01",), credit_score=10),
    ]

    pool, excluded = eligible_pool(candidates, CTX, ["A0102", "B02"])

    assert pool == [PoolEntry(eid(1), ("A0102",), OTHER), PoolEntry(eid(3), ("A0102", "B0201"), "")]
    assert excluded == {eid(2): ("employer_is_bidder",)}


@pytest.mark.parametrize(
    ("candidates", "specialties", "message"),
    [
        ([CLEAN, CLEAN], ["A01"], f"Expert {eid(1)} appears more than once"),
        ([CLEAN], [], "at least one specialty prefix"),
        ([CLEAN], [""], "none of them empty"),
    ],
    ids=["repeated expert", "no prefix", "empty prefix"],
)
def test_eligible_pool_refuses_what_it_cannot_split(
    candidates: list[Candidate], specialties: list[str], message: str
) -> None:
    with pytest.raises(DrawError, match=message):
        eligible_pool(candidates, CTX, specialties)


# ---------------------------------------------------------------- version 2: the witness and the commitments

W = bytes(range(32))
N = bytes(range(32, 64))
S = bytes(range(64, 96))


def test_the_witness_commitment_is_the_tagged_sha256_of_witness_and_nonce() -> None:
    expected = hashlib.sha256(b"ggzy-draw-witness-v2\n" + W + N).hexdigest()

    assert witness_commitment(W, N) == expected
    # a test vector for independent implementations
    assert expected == "7f4a91661972d3250fe61bfc50e4b0dd6f858b664e5814365ee15c2ead49c497"


@pytest.mark.parametrize(
    ("witness", "nonce", "message"),
    [(W[:31], N, "witness must be exactly 32 bytes"), (W, N + b"\0", "witness nonce must be exactly 32")],
)
def test_a_witness_or_nonce_of_another_length_is_refused(witness: bytes, nonce: bytes, message: str) -> None:
    with pytest.raises(DrawError, match=message):
        witness_commitment(witness, nonce)


def test_the_final_seed_is_the_tagged_sha256_of_seed_and_witness() -> None:
    assert final_seed(S, W) == hashlib.sha256(b"ggzy-draw-seed-v2\n" + S + W).digest()
    assert final_seed(S, W).hex() == "8b28e4ab001ddcab7aa4583df701eaa5c7897e259ef7ce35edba759c73cae350"
    with pytest.raises(DrawError, match="witness must be exactly 32 bytes"):
        final_seed(S, b"")
    with pytest.raises(DrawError, match="seed must be exactly 32 bytes"):
        final_seed(S[:16], W)


INPUTS = Inputs(
    candidates_digest="c" * 64,
    context_digest="d" * 64,
    exclusions_digest="e" * 64,
    pool_digest="f" * 64,
    quotas=QUOTAS,
    employer_limit=1,
)


def test_the_commitment_is_the_tagged_sha256_of_seed_witness_commitment_digests_and_terms() -> None:
    wc = witness_commitment(W, N)
    text = (
        f"ggzy-draw-commit-v2\n{S.hex()}\n{wc}\n{'c' * 64}\n{'d' * 64}\n{'e' * 64}\n{'f' * 64}\n"
        + terms_text(QUOTAS, 1)
    )

    assert commitment(S, wc, INPUTS) == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        {"candidates_digest": "0" * 64},
        {"context_digest": "0" * 64},
        {"exclusions_digest": "0" * 64},
        {"pool_digest": "0" * 64},
        {"quotas": (Quota("A01", 3), Quota("B02", 1))},
        {"employer_limit": 2},
    ],
    ids=["candidates", "context", "exclusions", "pool", "quotas", "employer limit"],
)
def test_the_commitment_binds_every_input(change: dict[str, object]) -> None:
    wc = witness_commitment(W, N)

    assert commitment(S, wc, replace(INPUTS, **change)) != commitment(S, wc, INPUTS)  # type: ignore[arg-type]
    assert commitment(bytes(32), wc, INPUTS) != commitment(S, wc, INPUTS)
    assert commitment(S, witness_commitment(N, W), INPUTS) != commitment(S, wc, INPUTS)


def test_the_signed_statement_names_the_draw_and_both_commitments() -> None:
    assert commitment_statement("d-1", "a" * 64, "b" * 64) == (
        b"ggzy-draw-commitment-v2\nd-1\n" + b"a" * 64 + b"\n" + b"b" * 64 + b"\n"
    )


# ---------------------------------------------------------------- version 2: canonical encodings


def cand(n: int, *codes: str, **change: object) -> Candidate:
    return replace(CLEAN, expert_id=eid(n), specialties=codes or ("A0102",), **change)  # type: ignore[arg-type]


def test_a_candidate_line_is_canonical_json_with_sorted_keys_and_lists() -> None:
    c = replace(
        CLEAN,
        specialties=("B02", "A0102", "B02"),
        former_employers=((BIDDER, date(2020, 6, 30)), (AGENCY, None)),
        relatives_at=(OTHER, BIDDER, OTHER),
        unavailable=((date(2026, 6, 1), date(2026, 6, 5)), (date(2026, 1, 2), date(2026, 1, 2))),
    )

    assert encode_candidates([c]).decode() == (
        '{"credit_score":60,"employer":"91110000000000004O","expert_id":"00000000-0000-4000-8000-000000000001",'
        '"former_employers":[["91110000000000001B","2020-06-30"],["91110000000000002A",null]],'
        '"has_account":true,"relatives_at":["91110000000000001B","91110000000000004O"],'
        '"services_for_tenderer":2,"specialties":["A0102","B02"],"status":"active",'
        '"term_end":"2027-12-31","term_start":"2024-01-01",'
        '"unavailable":[["2026-01-02","2026-01-02"],["2026-06-01","2026-06-05"]]}\n'
    )


candidates_st = st.lists(
    st.builds(
        Candidate,
        expert_id=st.uuids().map(str),
        status=st.sampled_from(["active", "suspended", "retired", "pending"]),
        term_start=st.none() | st.dates(date(2020, 1, 1), date(2026, 12, 31)),
        term_end=st.none() | st.dates(date(2026, 1, 1), date(2030, 12, 31)),
        employer=st.sampled_from([BIDDER, AGENCY, TENDERER, OTHER, ""]),
        specialties=st.lists(st.sampled_from(["A0101", "A0102", "B02", "B0201"]), min_size=1, max_size=3).map(
            tuple
        ),
        former_employers=st.lists(
            st.tuples(st.sampled_from([BIDDER, TENDERER, OTHER]), st.none() | st.dates(date(2018, 1, 1))),
            max_size=2,
        ).map(tuple),
        relatives_at=st.lists(st.sampled_from([BIDDER, OTHER, "名字 with 中文"]), max_size=2).map(tuple),
        unavailable=st.lists(st.tuples(st.just(ON), st.just(ON + timedelta(days=1))), max_size=1).map(tuple),
        credit_score=st.integers(0, 100),
        services_for_tenderer=st.integers(0, 5),
        has_account=st.booleans(),
    ),
    max_size=12,
    unique_by=lambda c: c.expert_id,
)


def _normal(c: Candidate) -> Candidate:
    return candidate_from_json(candidate_to_json(c))


@settings(max_examples=60)
@given(candidates_st)
def test_decode_candidates_is_the_exact_inverse_of_encode_candidates(candidates: list[Candidate]) -> None:
    data = encode_candidates(candidates)

    assert decode_candidates(data) == sorted((_normal(c) for c in candidates), key=lambda c: c.expert_id)
    assert encode_candidates(decode_candidates(data)) == data


GOOD_LINE = encode_candidates([CLEAN])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (GOOD_LINE.replace(b'"credit_score":60,', b'"credit_score": 60,'), "line 1 is not in canonical form"),
        (GOOD_LINE.replace(b"}\n", b',"name":"\xe7\x8e\x8b"}\n'), "unknown field 'name'"),
        (GOOD_LINE.replace(b"2027-12-31", b"2027-12-32"), "is not a date written YYYY-MM-DD"),
        (GOOD_LINE.replace(b"2027-12-31", b"20271231"), "is not a date written YYYY-MM-DD"),
        (GOOD_LINE.replace(b'"credit_score":60', b'"credit_score":"60"'), "'credit_score' must be int"),
        (GOOD_LINE.replace(b'"has_account":true', b'"has_account":1'), "'has_account' must be bool"),
        (GOOD_LINE[:-1], "does not end with a line feed"),
        (GOOD_LINE + GOOD_LINE, "line 2: expert .* out of order or repeated"),
        (b"{not json\n", "line 1 is not JSON"),
        (b"\xff\n", "not valid UTF-8"),
    ],
    ids=[
        "spacing",
        "a name",
        "bad date",
        "compact date",
        "text score",
        "number flag",
        "no line feed",
        "repeated",
        "not json",
        "bad utf-8",
    ],
)
def test_decode_candidates_refuses_what_encode_candidates_would_not_write(data: bytes, message: str) -> None:
    with pytest.raises(DrawError, match=message):
        decode_candidates(data)


def test_the_context_is_canonical_json_without_a_final_line_feed() -> None:
    assert encode_context(CTX) == (
        b'{"bidders":["91110000000000001B"],"former_employer_years":3,"max_services_for_tenderer":3,'
        b'"min_credit_score":60,"on":"2026-05-20","parties":["91110000000000002A","91110000000000003T"]}'
    )
    assert context_from_json(context_to_json(CTX)) == CTX


def test_the_exclusions_are_one_sorted_line_each_with_the_reasons_in_order() -> None:
    data = encode_exclusions({eid(2): ("not_active", "credit"), eid(1): ("employer_is_bidder",)})

    assert data == (f"{eid(1)}\temployer_is_bidder\n{eid(2)}\tnot_active,credit\n".encode())


@pytest.mark.parametrize(
    ("exclusions", "message"),
    [
        ({eid(1): ()}, "not reason codes"),
        ({eid(1): ("bribed",)}, "not reason codes"),
        ({eid(1): ("credit", "not_active")}, "not in the order of REASONS"),
        ({eid(1): ("credit", "credit")}, "not in the order of REASONS"),
    ],
    ids=["none", "unknown", "misordered", "repeated"],
)
def test_encode_exclusions_refuses_what_avoidance_could_not_give(
    exclusions: dict[str, tuple[str, ...]], message: str
) -> None:
    with pytest.raises(DrawError, match=message):
        encode_exclusions(exclusions)


def test_prepare_applies_avoidance_and_encodes_everything_it_commits_to() -> None:
    candidates = [
        cand(1),
        cand(2, employer=BIDDER),
        cand(3, "B0201", employer=""),
        cand(4, has_account=False),
    ]

    prepared = prepare(candidates, CTX, (Quota("A01", 1), Quota("B02", 1)), 1)

    assert prepared.exclusions == {eid(2): ("employer_is_bidder",), eid(4): ("no_account",)}
    assert prepared.pool == [PoolEntry(eid(1), ("A0102",), OTHER), PoolEntry(eid(3), ("B0201",), "")]
    assert prepared.pool_bytes == encode_pool(prepared.pool)
    assert prepared.candidates == encode_candidates(candidates)
    assert prepared.inputs == Inputs(
        hashlib.sha256(prepared.candidates).hexdigest(),
        hashlib.sha256(encode_context(CTX)).hexdigest(),
        hashlib.sha256(encode_exclusions(prepared.exclusions)).hexdigest(),
        pool_digest(prepared.pool),
        (Quota("A01", 1), Quota("B02", 1)),
        1,
    )


def test_prepare_refuses_a_candidate_with_no_specialty_under_the_quotas() -> None:
    with pytest.raises(DrawError, match=f"Expert {eid(1)} has no specialty under the quotas"):
        prepare([cand(1, "C03")], CTX, (Quota("A01", 1),), 1)


# ---------------------------------------------------------------- version 2: the record replayed

KEY = Ed25519PrivateKey.from_private_bytes(bytes(32))
PUBLIC = KEY.public_key().public_bytes_raw()
V2_CANDIDATES = tuple(
    [
        cand(n, CODES[n % 3], employer=[OTHER, "", "91110000000000005E"][n % 3] if n % 5 else "")
        for n in range(1, 13)
    ]
    + [cand(13, employer=BIDDER), cand(14, employer=TENDERER), cand(15, status="retired")]
)
V2_TERMS = (Quota("A01", 3), Quota("A0102", 1))


def record_v2(
    stage: str = "confirmed", removed: int = 1, candidates: tuple[Candidate, ...] = V2_CANDIDATES
) -> DrawRecord:
    """An honest record at `stage`: "awaiting_witness" / "committed" (aborted then), "inviting" (aborted
    after the reveal) or "confirmed" (with `removed` removals of standing experts)."""
    prepared = prepare(candidates, CTX, V2_TERMS, 1)
    wc = witness_commitment(W, N)
    made = commitment(S, wc, prepared.inputs)
    signature = base64.b64encode(KEY.sign(commitment_statement("draw-1", wc, made))).decode()
    first = select(prepared.pool, V2_TERMS, final_seed(S, W), 1)
    gone = tuple(s.expert_id for s in first.committee[:removed])
    result = select(prepared.pool, V2_TERMS, final_seed(S, W), 1, gone)
    abort = Abort(
        "评标时间需改期 (the day must move)",
        "agency",
        stage,
        "2026-03-23T02:00:00+00:00",
        "2026-03-23T03:00:00+00:00",
    )
    base = DrawRecord(
        draw_id="draw-1",
        status="confirmed" if stage == "confirmed" else "aborted",
        context=CTX,
        candidates=candidates,
        exclusions=tuple(sorted(prepared.exclusions.items())),
        quotas=V2_TERMS,
        employer_limit=1,
        abort=None if stage == "confirmed" else abort,
    )
    if stage == "awaiting_witness":
        return base
    base = replace(
        base, witness_commitment=wc, commitment=made, signature=signature, key_id="k", seed_hex=S.hex()
    )
    if stage == "committed":
        return base
    return replace(base, witness_hex=W.hex(), nonce_hex=N.hex(), removed=gone, invitations=result.invitations)


@pytest.mark.parametrize("stage", ["awaiting_witness", "committed", "inviting", "confirmed"])
def test_an_honest_record_verifies_at_every_stage_and_survives_json(stage: str) -> None:
    record = record_v2(stage)

    assert verify(record, PUBLIC) == []
    assert record_from_json(json.loads(json.dumps(record_to_json(record)))) == record


def test_the_honest_record_excludes_the_bidders_and_the_tenderers_staff_and_the_retired() -> None:
    assert dict(record_v2().exclusions) == {
        eid(13): ("employer_is_bidder",),
        eid(14): ("employer_is_party",),
        eid(15): ("not_active",),
    }


def _drop_exclusion(r: DrawRecord) -> DrawRecord:
    return replace(r, exclusions=r.exclusions[1:])


def _add_exclusion(r: DrawRecord) -> DrawRecord:
    return replace(r, exclusions=tuple(sorted((*r.exclusions, (eid(1), ("credit",))))))


def _move_candidate(r: DrawRecord) -> DrawRecord:
    return replace(r, candidates=(replace(r.candidates[0], employer=BIDDER), *r.candidates[1:]))


def _drop_candidate(r: DrawRecord) -> DrawRecord:
    return replace(r, candidates=r.candidates[1:])


def _swap(r: DrawRecord) -> DrawRecord:
    first, second, *rest = r.invitations
    return replace(r, invitations=(second, first, *rest))


@pytest.mark.parametrize(
    ("tamper", "failed"),
    [
        (_drop_exclusion, ["exclusions", "commitment"]),
        (_add_exclusion, ["exclusions", "commitment"]),
        (_move_candidate, ["exclusions", "commitment"]),
        (_drop_candidate, ["commitment"]),
        (lambda r: replace(r, context=replace(CTX, bidders=frozenset())), ["exclusions", "commitment"]),
        (lambda r: replace(r, witness_hex="00" * 32), ["witness", "invitations"]),
        (lambda r: replace(r, nonce_hex="00" * 32), ["witness"]),
        (lambda r: replace(r, witness_hex="0" * 63), ["witness"]),
        (lambda r: replace(r, witness_commitment="0" * 64), ["witness", "commitment", "signature"]),
        (lambda r: replace(r, seed_hex="11" * 32), ["commitment", "invitations"]),
        (lambda r: replace(r, seed_hex=S.hex().upper()), ["seed"]),
        (lambda r: replace(r, commitment="0" * 64), ["commitment", "signature"]),
        (lambda r: replace(r, signature=base64.b64encode(bytes(64)).decode()), ["signature"]),
        (lambda r: replace(r, signature=None), ["signature"]),
        (lambda r: replace(r, employer_limit=2), ["commitment", "invitations"]),
        (_swap, ["invitations"]),
        (lambda r: replace(r, removed=()), ["invitations"]),
    ],
    ids=[
        "exclusion removed",
        "exclusion added",
        "candidate changed",
        "candidate dropped",
        "context changed",
        "witness changed",
        "nonce changed",
        "witness short",
        "witness commitment changed",
        "seed changed",
        "seed upper case",
        "commitment changed",
        "signature forged",
        "signature missing",
        "terms changed",
        "invitations swapped",
        "removal hidden",
    ],
)
def test_verify_names_each_kind_of_tampering(
    tamper: Callable[[DrawRecord], DrawRecord], failed: list[str]
) -> None:
    assert checks(verify(tamper(record_v2()), PUBLIC)) == failed


def test_without_the_key_the_signature_is_not_checked() -> None:
    assert verify(replace(record_v2(), signature=None)) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "committed"}, "a draw that is 'committed' is not published"),
        ({"abort": None, "status": "aborted"}, "an aborted draw, and only one, carries its abort"),
        ({"witness_hex": None, "nonce_hex": None}, "only an aborted draw is published without its witness"),
        ({"nonce_hex": None}, "the witness and its nonce are revealed together"),
        ({"seed_hex": None}, "the commitment and the seed must be published"),
    ],
)
def test_verify_checks_what_the_stage_must_publish(change: dict[str, object], message: str) -> None:
    problems = verify(replace(record_v2(), **change))  # type: ignore[arg-type]

    assert any(message in p for p in problems), problems


def test_an_aborted_record_without_a_witness_commitment_may_not_show_a_seed() -> None:
    record = replace(record_v2("awaiting_witness"), seed_hex=S.hex())

    assert verify(record) == [
        "status: no witness commitment, yet a commitment, seed or witness is published."
    ]


def test_a_confirmed_record_may_not_leave_a_seat_empty() -> None:
    few = V2_CANDIDATES[:2]  # two A01 experts for four seats
    record = record_v2("confirmed", removed=0, candidates=few)

    assert verify(record) == ["invitations: a confirmed draw leaves 2 seats empty."]
    assert verify(replace(record, status="short")) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "ggzy-draw-v3"}, "neither 'ggzy-draw-v2' nor 'ggzy-draw-v1'"),
        ({"context": None}, "'context' must be Mapping"),
        (
            {"exclusions": [{"expert_id": eid(1), "reasons": ["credit"]}] * 2},
            "listed twice among the exclusions",
        ),
        ({"abort": {"reason": "x"}}, "abort: 'requested_by' is missing"),
        ({"seed_hex": 5}, "'seed_hex' must be str"),
    ],
)
def test_record_from_json_refuses_malformed_v2_records(change: dict[str, object], message: str) -> None:
    data = {**record_to_json(record_v2()), **change}

    with pytest.raises(DrawError, match=message):
        record_from_json(data)


def test_record_from_json_refuses_a_candidate_carrying_a_name() -> None:
    data = record_to_json(record_v2())
    data["candidates"][0]["name"] = "王建国"  # type: ignore[index]

    with pytest.raises(DrawError, match=r"candidates\[0\]: unknown field 'name'"):
        record_from_json(data)


@settings(max_examples=40)
@given(candidates_st, st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_every_honest_v2_record_verifies(candidates: list[Candidate], seed: bytes, witness: bytes) -> None:
    candidates = [c for c in candidates if any(code.startswith(("A01", "B02")) for code in c.specialties)]
    quotas = (Quota("A01", 2), Quota("B02", 1))
    prepared = prepare(candidates, CTX, quotas, 1)
    wc = witness_commitment(witness, N)
    result = select(prepared.pool, quotas, final_seed(seed, witness), 1)
    record = DrawRecord(
        draw_id="d",
        status="short" if result.shortfalls else "confirmed",
        context=CTX,
        candidates=tuple(candidates),
        exclusions=tuple(sorted(prepared.exclusions.items())),
        quotas=quotas,
        employer_limit=1,
        witness_commitment=wc,
        commitment=commitment(seed, wc, prepared.inputs),
        seed_hex=seed.hex(),
        witness_hex=witness.hex(),
        nonce_hex=N.hex(),
        invitations=result.invitations,
    )

    assert verify(record) == []
    assert committee_of(record) == result
