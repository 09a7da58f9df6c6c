"""The committee draw (专家抽取) and avoidance (回避): the canonical pool, the commitment, a worked example
computed with `hmac` directly, the selection rules one by one, the auditors' replay catching every kind of
tampering, properties over random pools, and each avoidance reason at its boundary days."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.draw import (
    DRAW_VERSION,
    REASONS,
    Candidate,
    Context,
    DrawError,
    DrawRecord,
    DrawResult,
    PoolEntry,
    Quota,
    Seat,
    avoidance,
    commitment,
    decode_pool,
    eligible_pool,
    encode_pool,
    final_seed,
    pool_digest,
    rank_key,
    ranking,
    record_from_json,
    record_to_json,
    select,
    terms_text,
    verify,
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
) -> DrawRecord:
    result = select(pool, quotas, final_seed(seed, witness), employer_limit, removed)
    return DrawRecord(
        commitment=commitment(seed, pool_digest(pool), quotas, employer_limit),
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

    assert commitment(SEED, digest, QUOTAS, 1) == hashlib.sha256(text.encode()).hexdigest()
    # a test vector for independent implementations
    assert (
        commitment(SEED, digest, QUOTAS, 1)
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
    assert commitment(seed, pool_digest(pool), quotas, limit) != commitment(
        SEED, pool_digest(POOL), QUOTAS, 1
    )


def test_final_seed_mixes_the_witness_into_the_committed_seed() -> None:
    expected = hashlib.sha256(b"ggzy-draw-seed-v1\n" + SEED + b"\n" + WITNESS.encode()).digest()

    assert final_seed(SEED, WITNESS) == expected
    assert final_seed(SEED, "") != expected
    assert (
        final_seed(SEED, WITNESS).hex() == "9bd27f1d4d6003ee477418f8d871c2fa708382557055d0f19a634470c121c205"
    )


@given(st.binary(max_size=150), st.text(max_size=40))
def test_ranking_sorts_by_the_hmac_of_each_expert_id(seed: bytes, expert_id: str) -> None:
    pool = [*POOL, PoolEntry(expert_id or "x", (), "")]
    key = {e.expert_id: hmac.new(seed, e.expert_id.encode(), hashlib.sha256).digest() for e in pool}

    assert rank_key(seed, expert_id) == hmac.new(seed, expert_id.encode(), hashlib.sha256).digest()
    assert ranking(pool, seed) == sorted(pool, key=lambda e: (key[e.expert_id], e.expert_id))


# ---------------------------------------------------------------- a worked example


def test_worked_example_draws_replaces_and_leaves_a_shortfall_as_the_rules_say() -> None:
    seed = final_seed(SEED, WITNESS)
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
        select(POOL, QUOTAS, final_seed(SEED, WITNESS), 1, removed)


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
    first = select(pool, quotas, final_seed(seed, witness), limit)
    removed = tuple(ids(first.committee)[:2])  # declines must be of experts standing at the time

    record = record_for(pool, tuple(quotas), seed, witness, limit, removed)

    assert verify(record) == []
    assert record_from_json(json.loads(json.dumps(record_to_json(record)))) == record


# ---------------------------------------------------------------- verification

BIG_POOL = [expert(n, CODES[n % len(CODES)], employer=EMPLOYERS[n % len(EMPLOYERS)]) for n in range(1, 21)]
TERMS = (Quota("A01", 3), Quota("B02", 2))


def honest_record() -> DrawRecord:
    first = select(BIG_POOL, TERMS, final_seed(SEED, WITNESS), 1)
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

    assert data["version"] == DRAW_VERSION
    assert data["pool"] == base64.b64encode(record.pool).decode()
    assert record_from_json(data) == record


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "ggzy-draw-v0"}, "version 'ggzy-draw-v0' is not 'ggzy-draw-v1'"),
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
    )

    assert avoidance(candidate, CTX) == tuple(code for code in REASONS if code != "employer_is_party")


def test_every_reason_cites_its_rule() -> None:
    assert {code: text.split(":")[0] for code, text in REASONS.items()} == {
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
    }


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
