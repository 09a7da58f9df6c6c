"""Tests for bidding.merkle: RFC 9162 trees and proofs, signed tree heads, receipts verified offline."""

from __future__ import annotations

import base64
import copy
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from bidding.merkle import (
    CLOSING_CHECKS,
    EMPTY_ROOT,
    RECEIPT_CHECKS,
    Check,
    SignedTreeHead,
    TreeHead,
    all_ok,
    consistency_proof,
    head_from_json,
    head_to_json,
    inclusion_proof,
    key_id,
    leaf_bytes,
    leaf_hash,
    node_hash,
    receipt_from_json,
    receipt_to_json,
    root,
    sign_head,
    signed_message,
    verify_consistency,
    verify_head,
    verify_inclusion,
    verify_receipt,
)

# ---------------------------------------------------------------- a naive reference, straight from the RFC


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, recursively as RFC 9162 §2.1.1 writes it."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return node_hash(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D_n), §2.1.3.1."""
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D_n, b), §2.1.4.1."""
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(f"leaf {i}".encode()) for i in range(n)]


def flip(data: bytes, at: int = 0, bit: int = 0) -> bytes:
    return data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1 :]


# ---------------------------------------------------------------- the Certificate Transparency test vectors

# The 8-leaf tree of the Certificate Transparency reference implementations (C++ merkletree tests, Go
# transparency-dev/merkle): leaf inputs, MTH of the first n leaves for n = 0..8, and proofs.
CT_LEAVES = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, proof)
CT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (first size, second size, proof)
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_HASHES = [leaf_hash(x) for x in CT_LEAVES]


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()


@pytest.mark.parametrize("size", range(9))
def test_ct_vector_root(size: int) -> None:
    assert root(CT_HASHES[:size]).hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_ct_vector_inclusion_proof(index: int, size: int, proof: list[str]) -> None:
    made = inclusion_proof(index, CT_HASHES[:size])
    assert [p.hex() for p in made] == proof
    assert verify_inclusion(CT_HASHES[index], index, size, made, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("m", "n", "proof"), CT_CONSISTENCY)
def test_ct_vector_consistency_proof(m: int, n: int, proof: list[str]) -> None:
    made = consistency_proof(m, CT_HASHES[:n])
    assert [p.hex() for p in made] == proof
    assert verify_consistency(m, n, bytes.fromhex(CT_ROOTS[m]), bytes.fromhex(CT_ROOTS[n]), made)


# ---------------------------------------------------------------- small trees by hand


def test_rfc_example_tree_of_seven_leaves() -> None:
    # RFC 9162 §2.1.5, with its node names.
    d = leaves(7)
    a, b, c, dd, e, f, j = d
    g, h, i = node_hash(a, b), node_hash(c, dd), node_hash(e, f)
    k, ll = node_hash(g, h), node_hash(i, j)
    assert root(d) == node_hash(k, ll)
    assert inclusion_proof(0, d) == [b, h, ll]
    assert inclusion_proof(3, d) == [c, g, ll]
    assert inclusion_proof(4, d) == [f, j, k]
    assert inclusion_proof(6, d) == [i, k]
    assert consistency_proof(3, d) == [c, dd, g, ll]
    assert consistency_proof(4, d) == [ll]
    assert consistency_proof(6, d) == [i, j, k]


@pytest.mark.parametrize("n", range(1, 9))
def test_small_tree_matches_the_reference(n: int) -> None:
    d = leaves(n)
    assert root(d) == ref_mth(d)
    for index in range(n):
        proof = inclusion_proof(index, d)
        assert proof == ref_path(index, d)
        assert verify_inclusion(d[index], index, n, proof, root(d))
    for m in range(1, n):
        proof = consistency_proof(m, d)
        assert proof == ref_subproof(m, d, True)
        assert verify_consistency(m, n, root(d[:m]), root(d), proof)


def test_proof_builders_refuse_what_is_not_in_the_tree() -> None:
    with pytest.raises(ValueError, match="leaf index 3 is not in a tree of 3 leaves"):
        inclusion_proof(3, leaves(3))
    with pytest.raises(ValueError, match="leaf index -1"):
        inclusion_proof(-1, leaves(3))
    with pytest.raises(ValueError, match="0 ≤ m ≤ n"):
        consistency_proof(4, leaves(3))
    assert consistency_proof(0, leaves(3)) == []
    assert consistency_proof(3, leaves(3)) == []


def test_root_is_iterative_and_fast_enough_for_a_large_tender() -> None:
    # Ten thousand leaves: far past any recursion limit a naive implementation could hit on deep trees,
    # and the result must agree with the recursive reference.
    d = leaves(10_000)
    assert root(d) == ref_mth(d)


# ---------------------------------------------------------------- inclusion proofs, properties


@st.composite
def tree_and_index(draw: st.DrawFn, max_size: int = 200) -> tuple[list[bytes], int]:
    n = draw(st.integers(min_value=1, max_value=max_size))
    return leaves(n), draw(st.integers(min_value=0, max_value=n - 1))


@given(tree_and_index())
def test_inclusion_proof_verifies_and_matches_the_reference(case: tuple[list[bytes], int]) -> None:
    d, index = case
    proof = inclusion_proof(index, d)
    assert proof == ref_path(index, d)
    assert verify_inclusion(d[index], index, len(d), proof, root(d))


def test_every_inclusion_proof_of_every_tree_up_to_64_verifies() -> None:
    for n in range(1, 65):
        d = leaves(n)
        top = root(d)
        for index in range(n):
            assert verify_inclusion(d[index], index, n, inclusion_proof(index, d), top), (n, index)


@given(tree_and_index(), st.data())
def test_inclusion_fails_when_anything_changes(case: tuple[list[bytes], int], data: st.DataObject) -> None:
    d, index = case
    n, top, leaf = len(d), root(d), d[index]
    proof = inclusion_proof(index, d)
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        byte = data.draw(st.integers(0, 31))
        bit = data.draw(st.integers(0, 7))
        bad = list(proof)
        bad[at] = flip(bad[at], byte, bit)
        assert not verify_inclusion(leaf, index, n, bad, top)
        assert not verify_inclusion(leaf, index, n, proof[:-1], top)
        assert not verify_inclusion(leaf, index, n, [proof[0], *proof], top)
    other = data.draw(st.integers(0, n - 1).filter(lambda i: i != index)) if n > 1 else n
    assert not verify_inclusion(leaf, other, n, proof, top)
    assert not verify_inclusion(leaf, index, n * 2, proof, top)
    assert not verify_inclusion(leaf, index, n // 2, proof, top)
    size = data.draw(st.integers(1, 2 * n + 1).filter(lambda s: s != n))
    assert not verify_inclusion(leaf, index, size, proof, root(leaves(size)))
    assert not verify_inclusion(leaf, index, n, proof, flip(top, data.draw(st.integers(0, 31))))
    assert not verify_inclusion(flip(leaf), index, n, proof, top)
    assert not verify_inclusion(leaf, index, n, [*proof, top], top)
    assert not verify_inclusion(leaf, index, n, [*proof, b""], top)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 1), (5, 3), (-1, 3)])
def test_inclusion_fails_for_an_index_outside_the_tree(index: int, size: int) -> None:
    assert not verify_inclusion(leaf_hash(b"x"), index, size, [], leaf_hash(b"x"))


def test_inclusion_refuses_an_over_long_proof_without_hashing_it() -> None:
    d = leaves(5)
    proof = inclusion_proof(2, d)
    assert not verify_inclusion(d[2], 2, 5, proof + [d[0]] * 10_000, root(d))


def test_single_leaf_tree_proof_is_empty_and_leaf_is_root() -> None:
    h = leaf_hash(b"data")
    assert inclusion_proof(0, [h]) == []
    assert verify_inclusion(h, 0, 1, [], h)
    assert not verify_inclusion(h, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], h)


# ---------------------------------------------------------------- consistency proofs


def _corrupt_consistency(
    m: int, n: int, root_m: bytes, root_n: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    # The probes of the CT reference verifiers: every one of them must be refused.
    some = hashlib.sha256(b"some hash").digest()
    probes = [
        ("m - 1", m - 1, n, root_m, root_n, proof),
        ("m + 1", m + 1, n, root_m, root_n, proof),
        ("m ^ 2", m ^ 2, n, root_m, root_n, proof),
        ("n * 2", m, n * 2, root_m, root_n, proof),
        ("n / 2", m, n // 2, root_m, root_n, proof),
        ("wrong root_m", m, n, some, root_n, proof),
        ("wrong root_n", m, n, root_m, some, proof),
        ("swapped roots", m, n, root_n, root_m, proof),
        ("empty proof", m, n, root_m, root_n, []),
        ("trailing root_m", m, n, root_m, root_n, [*proof, root_m]),
        ("trailing root_n", m, n, root_m, root_n, [*proof, root_n]),
        ("preceding root_m", m, n, root_m, root_n, [root_m, *proof]),
        ("preceding root_n", m, n, root_m, root_n, [root_n, *proof]),
        ("preceding proof[0]", m, n, root_m, root_n, [proof[0], *proof]),
        ("truncated", m, n, root_m, root_n, proof[:-1]),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = flip(bad[i], 0, 4)
        probes.append((f"proof[{i}] bit 4", m, n, root_m, root_n, bad))
    return probes


def test_consistency_of_every_pair_up_to_64() -> None:
    d = leaves(64)
    roots = [root(d[:n]) for n in range(65)]
    for n in range(65):
        for m in range(n + 1):
            proof = consistency_proof(m, d[:n])
            if 0 < m < n:
                assert proof == ref_subproof(m, d[:n], True), (m, n)
            else:
                assert proof == [], (m, n)
            assert verify_consistency(m, n, roots[m], roots[n], proof), (m, n)
            if 0 < m < n:
                for name, *probe in _corrupt_consistency(m, n, roots[m], roots[n], proof):
                    pm, pn, rm, rn, pp = cast(tuple[int, int, bytes, bytes, list[bytes]], tuple(probe))
                    assert not verify_consistency(pm, pn, rm, rn, pp), (m, n, name)


@settings(max_examples=60)
@given(st.integers(min_value=65, max_value=3000), st.data())
def test_consistency_of_larger_trees(n: int, data: st.DataObject) -> None:
    m = data.draw(st.integers(min_value=1, max_value=n - 1))
    d = leaves(n)
    root_m, root_n = root(d[:m]), root(d)
    proof = consistency_proof(m, d)
    assert verify_consistency(m, n, root_m, root_n, proof)
    at = data.draw(st.integers(0, len(proof) - 1))
    bad = list(proof)
    bad[at] = flip(bad[at], data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7)))
    assert not verify_consistency(m, n, root_m, root_n, bad)
    other = data.draw(st.integers(1, n).filter(lambda x: x != m))
    assert not verify_consistency(other, n, root(d[:other]), root_n, proof)


def test_a_rewritten_history_is_not_consistent() -> None:
    d = leaves(20)
    forked = [*d[:9], leaf_hash(b"rewritten"), *d[10:]]
    proof = consistency_proof(12, forked)
    assert not verify_consistency(12, 20, root(d[:12]), root(forked), proof)


@pytest.mark.parametrize(
    ("m", "n", "root_m", "root_n", "proof", "expected"),
    [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 0, EMPTY_ROOT, leaf_hash(b"a"), [], False),
        (0, 0, leaf_hash(b"a"), leaf_hash(b"a"), [], False),
        (0, 5, EMPTY_ROOT, leaf_hash(b"b"), [], True),
        (0, 5, leaf_hash(b"a"), leaf_hash(b"b"), [], False),
        (0, 5, EMPTY_ROOT, leaf_hash(b"b"), [EMPTY_ROOT], False),
        (3, 3, leaf_hash(b"a"), leaf_hash(b"a"), [], True),
        (3, 3, leaf_hash(b"a"), leaf_hash(b"b"), [], False),
        (3, 3, leaf_hash(b"a"), leaf_hash(b"a"), [leaf_hash(b"a")], False),
        (4, 3, leaf_hash(b"a"), leaf_hash(b"b"), [], False),
        (-1, 3, leaf_hash(b"a"), leaf_hash(b"b"), [], False),
        (1, 2, leaf_hash(b"a"), leaf_hash(b"b"), [], False),
        (1, 2, b"short", leaf_hash(b"b"), [leaf_hash(b"c")], False),
    ],
)
def test_consistency_edges(
    m: int, n: int, root_m: bytes, root_n: bytes, proof: list[bytes], expected: bool
) -> None:
    assert verify_consistency(m, n, root_m, root_n, proof) is expected


def test_consistency_refuses_an_over_long_proof() -> None:
    d = leaves(9)
    proof = consistency_proof(5, d)
    assert not verify_consistency(5, 9, root(d[:5]), root(d), proof + [d[0]] * 1000)


# ---------------------------------------------------------------- canonical leaves


def test_leaf_bytes_are_canonical_json() -> None:
    entry = {"tender": "GGZY-2025-001", "bidder": "91110108MA01ABCDEN", "v": 1, "name": "北京建工", "lot": 1}
    assert leaf_bytes(entry) == (
        '{"bidder":"91110108MA01ABCDEN","lot":1,"name":"北京建工","tender":"GGZY-2025-001","v":1}'.encode()
    )
    assert leaf_bytes(dict(reversed(list(entry.items())))) == leaf_bytes(entry)


def test_leaf_bytes_refuse_nan() -> None:
    with pytest.raises(ValueError):
        leaf_bytes({"x": float("nan")})


# ---------------------------------------------------------------- signed tree heads

PRIVATE = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = PRIVATE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
OTHER_PUBLIC = OTHER.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
LOG = "ggzy-log-test"
T0 = datetime(2025, 3, 1, 8, 30, 15, 123000, tzinfo=UTC)
ROOT = hashlib.sha256(b"root").digest()


def test_signed_message_is_one_field_a_line() -> None:
    head = TreeHead(LOG, 12, ROOT, T0, "closing")
    assert signed_message(head) == (
        b"ggzy-tree-head-v1\n"
        b"ggzy-log-test\n"
        b"12\n" + ROOT.hex().encode() + b"\n"
        b"2025-03-01T08:30:15.123Z\n"
        b"closing\n"
    )


def test_tree_head_keeps_utc_to_the_millisecond() -> None:
    beijing = timezone(timedelta(hours=8))
    head = TreeHead(LOG, 1, ROOT, datetime(2025, 3, 1, 16, 30, 15, 123987, tzinfo=beijing))
    assert head.timestamp == T0
    assert head.timestamp.tzinfo == UTC
    assert head.kind == "head"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"timestamp": datetime(2025, 3, 1, 8, 30)}, "timezone-aware"),
        ({"kind": "final"}, "kind must be one of head, closing"),
        ({"tree_size": -1}, "tree_size"),
        ({"root_hash": b"short"}, "root_hash must be 32 bytes"),
        ({"log_id": "log\nhead"}, "control characters"),
        ({"log_id": ""}, "non-empty"),
    ],
)
def test_tree_head_refuses_what_cannot_be_signed_unambiguously(changes: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"log_id": LOG, "tree_size": 1, "root_hash": ROOT, "timestamp": T0} | changes
    with pytest.raises(ValueError, match=message):
        TreeHead(**fields)


def test_key_id_is_the_start_of_the_key_hash() -> None:
    assert key_id(PUBLIC) == hashlib.sha256(PUBLIC).hexdigest()[:16]
    assert len(key_id(PUBLIC)) == 16


def test_signed_head_verifies_with_its_key() -> None:
    sth = sign_head(TreeHead(LOG, 7, ROOT, T0), PRIVATE)
    assert sth.key_id == key_id(PUBLIC)
    assert verify_head(sth, PUBLIC)


def test_signed_head_fails_with_another_key() -> None:
    sth = sign_head(TreeHead(LOG, 7, ROOT, T0), PRIVATE)
    assert not verify_head(sth, OTHER_PUBLIC)
    assert not verify_head(replace(sth, key_id=key_id(OTHER_PUBLIC)), OTHER_PUBLIC)
    assert not verify_head(sth, b"not a key")


@pytest.mark.parametrize(
    "changes",
    [
        {"log_id": "another-log"},
        {"tree_size": 8},
        {"root_hash": flip(ROOT)},
        {"timestamp": T0 + timedelta(milliseconds=1)},
        {"kind": "closing"},
    ],
)
def test_tampered_head_fails(changes: dict[str, Any]) -> None:
    sth = sign_head(TreeHead(LOG, 7, ROOT, T0), PRIVATE)
    assert not verify_head(replace(sth, head=replace(sth.head, **changes)), PUBLIC)


def test_tampered_signature_fails() -> None:
    sth = sign_head(TreeHead(LOG, 7, ROOT, T0), PRIVATE)
    assert not verify_head(replace(sth, signature=flip(sth.signature, 10)), PUBLIC)


def test_head_json_has_base64_and_utc_z() -> None:
    sth = sign_head(TreeHead(LOG, 7, ROOT, T0, "closing"), PRIVATE)
    assert head_to_json(sth) == {
        "log_id": LOG,
        "tree_size": 7,
        "root_hash": base64.b64encode(ROOT).decode(),
        "timestamp": "2025-03-01T08:30:15.123Z",
        "kind": "closing",
        "key_id": key_id(PUBLIC),
        "signature": base64.b64encode(sth.signature).decode(),
    }


def test_head_json_round_trip() -> None:
    sth = sign_head(TreeHead(LOG, 7, ROOT, T0, "closing"), PRIVATE)
    back = head_from_json(head_to_json(sth))
    assert back == sth
    assert verify_head(back, PUBLIC)


def _good_head_json() -> dict[str, Any]:
    return dict(head_to_json(sign_head(TreeHead(LOG, 7, ROOT, T0), PRIVATE)))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("log_id", 5, "log_id: must be a string"),
        ("log_id", "a\nb", "log_id: log_id must be a non-empty string"),
        ("tree_size", "7", "tree_size: must be an integer ≥ 0"),
        ("tree_size", True, "tree_size: must be an integer ≥ 0"),
        ("tree_size", -3, "tree_size: must be an integer ≥ 0"),
        ("root_hash", "not base64!", "root_hash: not valid base64"),
        ("root_hash", base64.b64encode(b"short").decode(), "root_hash: must decode to 32 bytes, got 5"),
        ("timestamp", "2025-03-01T08:30:15Z", "timestamp: must be UTC ISO 8601 with milliseconds"),
        ("timestamp", "2025-03-01T08:30:15.123+08:00", "timestamp: must be UTC ISO 8601"),
        ("timestamp", "2025-02-30T08:30:15.123Z", "timestamp: not a valid date and time"),
        ("kind", "final", "kind: must be one of head, closing"),
        ("key_id", "ABCDEF0123456789", "key_id: must be 16 lowercase hexadecimal characters"),
        ("signature", base64.b64encode(b"x" * 63).decode(), "signature: must decode to 64 bytes, got 63"),
        ("extra", 1, "extra: unknown field"),
    ],
)
def test_head_from_json_names_the_field_at_fault(field: str, value: Any, message: str) -> None:
    obj = _good_head_json() | {field: value}
    with pytest.raises(ValueError, match=message):
        head_from_json(obj)


def test_head_from_json_reports_a_missing_field() -> None:
    obj = _good_head_json()
    del obj["root_hash"]
    with pytest.raises(ValueError, match=r"^root_hash: missing$"):
        head_from_json(obj)


def test_head_from_json_refuses_what_is_not_an_object() -> None:
    with pytest.raises(ValueError, match="tree head: must be a JSON object"):
        head_from_json([1, 2])


# ---------------------------------------------------------------- receipts

TENDER = "GGZY-2025-0042"


def entry(index: int, /, **changes: Any) -> dict[str, Any]:
    """A log entry as the platform writes one."""
    return {
        "v": 1,
        "log": LOG,
        "index": index,
        "event": "submit",
        "tender": TENDER,
        "lot": 1,
        "bidder": "91110108MA01ABCDEN",
        "bid": str(uuid.UUID(int=index + 1)),
        "sequence": 1,
        "envelope_sha256": hashlib.sha256(f"envelope {index}".encode()).hexdigest(),
        "size": 4096 + index,
        "at": "2025-03-01T08:00:00.000Z",
    } | changes


class Log:
    """A tiny in-memory log that signs heads and writes receipts the way the platform does."""

    def __init__(self, entries: Sequence[dict[str, Any]], log_id: str = LOG) -> None:
        self.entries = list(entries)
        self.hashes = [leaf_hash(leaf_bytes(e)) for e in self.entries]
        self.log_id = log_id

    def head(self, size: int, kind: str = "head", key: Ed25519PrivateKey = PRIVATE) -> SignedTreeHead:
        at = T0 + timedelta(minutes=size) + (timedelta(hours=1) if kind == "closing" else timedelta())
        return sign_head(TreeHead(self.log_id, size, root(self.hashes[:size]), at, kind), key)

    def receipt(self, index: int, size: int, key: Ed25519PrivateKey = PRIVATE) -> dict[str, Any]:
        return receipt_to_json(
            leaf=self.entries[index],
            leaf_index=index,
            inclusion_proof=inclusion_proof(index, self.hashes[:size]),
            tree_head=self.head(size, key=key),
            log_public_key=PUBLIC,
        )

    def closing(self, size: int, kind: str = "closing", key: Ed25519PrivateKey = PRIVATE) -> dict[str, Any]:
        return dict(head_to_json(self.head(size, kind, key)))

    def consistency(self, m: int, n: int) -> list[str]:
        return [base64.b64encode(p).decode() for p in consistency_proof(m, self.hashes[:n])]


LOG5 = Log([entry(i) for i in range(5)])
ALL_CHECKS = [*RECEIPT_CHECKS, *CLOSING_CHECKS]


def failed(checks: list[Check]) -> set[str]:
    return {check.name for check in checks if not check.ok}


def test_receipt_json_round_trip() -> None:
    obj = LOG5.receipt(2, 3)
    parsed = receipt_from_json(obj)
    assert parsed.leaf == entry(2)
    assert parsed.leaf_index == 2
    assert parsed.inclusion_proof == tuple(inclusion_proof(2, LOG5.hashes[:3]))
    assert parsed.tree_head == LOG5.head(3)
    assert parsed.log_public_key == PUBLIC
    assert obj["version"] == 1
    assert set(obj) == {"version", "leaf", "leaf_index", "inclusion_proof", "tree_head", "log_public_key"}


def test_good_receipt_passes_every_check() -> None:
    checks = verify_receipt(
        LOG5.receipt(2, 3),
        trusted_key=PUBLIC,
        closing_head=LOG5.closing(5),
        consistency=LOG5.consistency(3, 5),
    )
    assert [c.name for c in checks] == ALL_CHECKS
    assert all_ok(checks), [c for c in checks if not c.ok]


def test_receipt_of_the_last_leaf_closed_at_once_passes_without_a_proof() -> None:
    checks = verify_receipt(
        LOG5.receipt(4, 5), trusted_key=PUBLIC, closing_head=LOG5.closing(5), consistency=[]
    )
    assert all_ok(checks)


def test_a_receipt_without_a_pinned_key_fails_key_pinned() -> None:
    # A receipt signed by its own key proves nothing: anyone can make one.
    checks = verify_receipt(LOG5.receipt(0, 1))
    assert [c.name for c in checks] == list(RECEIPT_CHECKS)
    assert failed(checks) == {"key_pinned"}
    assert not all_ok(checks)
    assert checks[1].detail.startswith(f"no key pinned: the receipt's own key (key id {key_id(PUBLIC)})")


def test_receipt_alone_with_the_pinned_key_passes_the_receipt_checks() -> None:
    checks = verify_receipt(LOG5.receipt(0, 1), trusted_key=PUBLIC)
    assert [c.name for c in checks] == list(RECEIPT_CHECKS)
    assert all_ok(checks)
    assert checks[1] == Check("key_pinned", True, f"the log key is the pinned key (key id {key_id(PUBLIC)})")


def test_a_receipt_of_either_version_round_trips_and_no_other_is_written() -> None:
    obj = receipt_to_json(
        leaf=entry(0),
        leaf_index=0,
        inclusion_proof=[],
        tree_head=LOG5.head(1),
        log_public_key=PUBLIC,
        version=2,
    )
    assert obj["version"] == 2 and receipt_from_json(obj).version == 2
    assert receipt_from_json(LOG5.receipt(0, 1)).version == 1
    with pytest.raises(ValueError, match="version must be one of"):
        receipt_to_json(
            leaf=entry(0),
            leaf_index=0,
            inclusion_proof=[],
            tree_head=LOG5.head(1),
            log_public_key=PUBLIC,
            version=3,
        )


def _tamper_head_signature(r: dict[str, Any]) -> None:
    r["tree_head"]["signature"] = base64.b64encode(
        flip(base64.b64decode(r["tree_head"]["signature"]))
    ).decode()


def _tamper_proof(r: dict[str, Any]) -> None:
    r["inclusion_proof"][0] = base64.b64encode(flip(base64.b64decode(r["inclusion_proof"][0]))).decode()


def _tamper_leaf(r: dict[str, Any]) -> None:
    r["leaf"]["envelope_sha256"] = hashlib.sha256(b"another envelope").hexdigest()


def _head_by_other_key(r: dict[str, Any]) -> None:
    r["tree_head"] = LOG5.closing(3, "head", OTHER)


def _other_index(r: dict[str, Any]) -> None:
    r["leaf_index"] = 1


WRONG_INDEX_LOG = Log([entry(0), entry(1), entry(2, index=7), entry(3), entry(4)])
FORKED_LOG = Log([entry(0), entry(1), entry(3, index=2), entry(4, index=3), entry(5, index=4)])
OTHER_LOG = Log(LOG5.entries, log_id="ggzy-log-other")


def _unchanged(r: dict[str, Any]) -> None:
    pass


# (case, the log, mutation of its receipt of leaf 2 at size 3, verify_receipt keywords, the checks that
# must fail); each log closes at 5 leaves.
BAD_RECEIPTS: list[tuple[str, Log, Callable[[dict[str, Any]], None], dict[str, Any], set[str]]] = [
    ("key is not the pinned key", LOG5, _unchanged, {"trusted_key": OTHER_PUBLIC}, {"key_pinned"}),
    ("head signature tampered", LOG5, _tamper_head_signature, {}, {"head_signature"}),
    ("head signed by another key", LOG5, _head_by_other_key, {}, {"head_signature"}),
    ("leaf index field disagrees", WRONG_INDEX_LOG, _unchanged, {}, {"leaf_index"}),
    # The proof is for leaf 2, so a receipt claiming leaf 1 is refused twice.
    ("receipt claims another index", LOG5, _other_index, {}, {"leaf_index", "inclusion"}),
    ("leaf tampered", LOG5, _tamper_leaf, {}, {"inclusion"}),
    ("inclusion proof tampered", LOG5, _tamper_proof, {}, {"inclusion"}),
]


@pytest.mark.parametrize(
    ("case", "log", "mutate", "keywords", "expected"), BAD_RECEIPTS, ids=[c[0] for c in BAD_RECEIPTS]
)
def test_bad_receipt_fails_exactly_the_expected_check(
    case: str,
    log: Log,
    mutate: Callable[[dict[str, Any]], None],
    keywords: dict[str, Any],
    expected: set[str],
) -> None:
    receipt = log.receipt(2, 3)
    mutate(receipt)
    checks = verify_receipt(
        receipt,
        closing_head=log.closing(5),
        consistency=log.consistency(3, 5),
        **({"trusted_key": PUBLIC} | keywords),
    )
    assert [c.name for c in checks] == ALL_CHECKS
    assert failed(checks) == expected, case
    assert not all_ok(checks)


def _flipped(proof: list[str]) -> list[str]:
    return [base64.b64encode(flip(base64.b64decode(proof[0]))).decode(), *proof[1:]]


def _tampered_closing_signature() -> dict[str, Any]:
    closing = LOG5.closing(5)
    closing["signature"] = base64.b64encode(flip(base64.b64decode(closing["signature"]), 3)).decode()
    return closing


# (case, closing head, consistency proof, the checks that must fail)
BAD_CLOSINGS: list[tuple[str, dict[str, Any], list[str] | None, set[str]]] = [
    (
        "closing signature tampered",
        _tampered_closing_signature(),
        LOG5.consistency(3, 5),
        {"closing_signature"},
    ),
    (
        "closing head by another key",
        LOG5.closing(5, key=OTHER),
        LOG5.consistency(3, 5),
        {"closing_signature"},
    ),
    ("closing head of another log", OTHER_LOG.closing(5), LOG5.consistency(3, 5), {"closing_log_id"}),
    ("closing head not marked closing", LOG5.closing(5, "head"), LOG5.consistency(3, 5), {"closing_kind"}),
    # A smaller closing tree cannot extend the receipt's: consistency fails with the size.
    ("closing head smaller than the receipt's", LOG5.closing(2), [], {"closing_size", "consistency"}),
    ("consistency proof tampered", LOG5.closing(5), _flipped(LOG5.consistency(3, 5)), {"consistency"}),
    ("consistency proof missing", LOG5.closing(5), None, {"consistency"}),
    ("consistency proof for other sizes", LOG5.closing(5), LOG5.consistency(2, 5), {"consistency"}),
    # The platform signed the bidder a head with their bid, then closed a log that no longer has it.
    (
        "leaf absent from the closing tree",
        FORKED_LOG.closing(5),
        FORKED_LOG.consistency(3, 5),
        {"consistency"},
    ),
]


@pytest.mark.parametrize(
    ("case", "closing", "proof", "expected"), BAD_CLOSINGS, ids=[c[0] for c in BAD_CLOSINGS]
)
def test_bad_closing_fails_exactly_the_expected_check(
    case: str, closing: dict[str, Any], proof: list[str] | None, expected: set[str]
) -> None:
    checks = verify_receipt(LOG5.receipt(2, 3), trusted_key=PUBLIC, closing_head=closing, consistency=proof)
    assert [c.name for c in checks] == ALL_CHECKS
    assert failed(checks) == expected, case


def test_forked_log_receipt_head_itself_verifies() -> None:
    # The bidder's receipt from the honest log is fine on its own: only the closing head exposes the fork.
    assert all_ok(verify_receipt(LOG5.receipt(2, 3), trusted_key=PUBLIC))
    assert FORKED_LOG.hashes[:2] == LOG5.hashes[:2]
    assert FORKED_LOG.hashes[2] != LOG5.hashes[2]


def test_a_head_signed_by_another_key_names_both_key_ids() -> None:
    receipt = LOG5.receipt(2, 3)
    _head_by_other_key(receipt)
    check = verify_receipt(receipt)[2]
    assert check == Check(
        "head_signature",
        False,
        f"the tree head names key id {key_id(OTHER_PUBLIC)}, the log key is {key_id(PUBLIC)}",
    )


def _without(field: str) -> Callable[[dict[str, Any]], Any]:
    def mutate(r: dict[str, Any]) -> Any:
        del r[field]
        return r

    return mutate


def _with(path: Sequence[str | int], value: Any) -> Callable[[dict[str, Any]], Any]:
    def mutate(r: dict[str, Any]) -> Any:
        target: Any = r
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        return r

    return mutate


MALFORMED: list[tuple[Callable[[dict[str, Any]], Any], str]] = [
    (lambda r: None, "receipt: must be a JSON object"),
    (lambda r: [r], "receipt: must be a JSON object"),
    (_without("leaf"), "leaf: missing"),
    (_with(["version"], 3), "version: must be 1 or 2"),
    (_with(["version"], True), "version: must be 1 or 2"),
    (_with(["leaf"], "a string"), "leaf: must be a JSON object"),
    (_with(["leaf", "size"], float("nan")), "leaf: cannot be written as canonical JSON"),
    (_with(["leaf_index"], True), "leaf_index: must be an integer ≥ 0"),
    (_with(["leaf_index"], 2.0), "leaf_index: must be an integer ≥ 0"),
    (_with(["inclusion_proof"], "AAAA"), "inclusion_proof: must be a list of base64 hashes"),
    (_with(["inclusion_proof", 0], "%%%"), "inclusion_proof[0]: not valid base64"),
    (_with(["tree_head", "root_hash"], None), "tree_head.root_hash: must be a base64 string"),
    (_with(["tree_head", "surprise"], 1), "tree_head.surprise: unknown field"),
    (_with(["tree_head"], []), "tree_head: must be a JSON object"),
    (
        _with(["log_public_key"], base64.b64encode(b"k" * 31).decode()),
        "log_public_key: must decode to 32 bytes",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), MALFORMED)
def test_malformed_receipt_fails_format_and_nothing_else_is_checked(
    mutate: Callable[[dict[str, Any]], Any], message: str
) -> None:
    receipt = mutate(LOG5.receipt(2, 3))
    checks = verify_receipt(receipt, closing_head=LOG5.closing(5), consistency=LOG5.consistency(3, 5))
    assert checks[0].name == "format"
    assert not checks[0].ok
    assert checks[0].detail.startswith(message)
    assert checks[1:] == [
        Check(name, False, "not checked: the input is malformed") for name in ALL_CHECKS[1:]
    ]


@pytest.mark.parametrize(
    ("closing", "proof", "message"),
    [
        ({"tree_size": 5}, [], "closing_head.log_id: missing"),
        (LOG5.closing(5) | {"timestamp": "yesterday"}, [], "closing_head.timestamp: must be UTC ISO 8601"),
        (LOG5.closing(5), "not a list", "consistency: must be a list of base64 hashes"),
        (
            LOG5.closing(5),
            [base64.b64encode(b"x").decode()],
            "consistency[0]: must decode to 32 bytes, got 1",
        ),
    ],
)
def test_malformed_closing_head_or_proof_fails_format(closing: Any, proof: Any, message: str) -> None:
    checks = verify_receipt(LOG5.receipt(2, 3), closing_head=closing, consistency=proof)
    assert checks[0] == Check("format", False, checks[0].detail)
    assert checks[0].detail.startswith(message)
    assert not all_ok(checks)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    ["version"],
    ["leaf"],
    ["leaf", "index"],
    ["leaf_index"],
    ["inclusion_proof"],
    ["inclusion_proof", 0],
    ["tree_head"],
    ["tree_head", "tree_size"],
    ["tree_head", "timestamp"],
    ["tree_head", "signature"],
    ["tree_head", "kind"],
    ["log_public_key"],
]


@given(st.sampled_from(FIELDS), JSON)
def test_verify_receipt_never_raises_on_garbage(path: list[str | int], value: Any) -> None:
    receipt = _with(path, value)(copy.deepcopy(LOG5.receipt(2, 3)))
    checks = verify_receipt(receipt, closing_head=LOG5.closing(5), consistency=LOG5.consistency(3, 5))
    assert [c.name for c in checks] == ALL_CHECKS
    assert all(isinstance(c.ok, bool) and c.detail for c in checks)


@given(JSON.filter(lambda v: v is not None), JSON)
def test_verify_receipt_never_raises_on_a_garbage_closing_head(closing: Any, proof: Any) -> None:
    checks = verify_receipt(LOG5.receipt(2, 3), closing_head=closing, consistency=proof)
    assert checks[0].name == "format"
    assert not all_ok(checks)


def test_all_ok_of_nothing_is_not_ok() -> None:
    assert not all_ok([])
    assert all_ok([Check("format", True, "well formed")])


def test_a_skipped_check_neither_passes_nor_fails() -> None:
    skipped = Check("submitted_at", False, "nothing signed states it", skipped=True)
    assert all_ok([Check("format", True, "well formed"), skipped])
    assert not all_ok([skipped])
    assert not all_ok([Check("format", False, "bad"), skipped])
