"""The stored-node log tree agrees with the reference Merkle functions on every size, index and proof."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bidding import logtree, merkle


def _stored(n: int) -> tuple[list[bytes], dict[logtree.NodeKey, bytes]]:
    """Append n leaves the way the service does and keep every node it stores."""
    leaves = [logtree.leaf_hash(f"leaf {i}".encode()) for i in range(n)]
    nodes: dict[logtree.NodeKey, bytes] = {}
    for i, leaf in enumerate(leaves):
        assert logtree.append_nodes(i) <= nodes.keys()
        nodes.update(logtree.completed_by(i, leaf, nodes))
    return leaves, nodes


def test_the_empty_tree_has_the_hash_of_nothing() -> None:
    assert logtree.root(0, {}) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", range(1, 70))
def test_roots_match_the_reference(n: int) -> None:
    leaves, nodes = _stored(n)
    for size in range(1, n + 1):
        assert logtree.root_nodes(size) <= nodes.keys()
        assert logtree.root(size, nodes) == merkle.root(leaves[:size])


@given(st.integers(1, 300), st.data())
def test_inclusion_proofs_match_and_verify(n: int, data: st.DataObject) -> None:
    leaves, nodes = _stored(n)
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    proof = logtree.inclusion_proof(index, size, nodes)
    assert proof == merkle.inclusion_proof(index, leaves[:size])
    assert merkle.verify_inclusion(leaves[index], index, size, proof, logtree.root(size, nodes))


@given(st.integers(1, 300), st.data())
def test_consistency_proofs_match_and_verify(n: int, data: st.DataObject) -> None:
    leaves, nodes = _stored(n)
    second = data.draw(st.integers(1, n))
    first = data.draw(st.integers(1, second))
    proof = logtree.consistency_proof(first, second, nodes)
    assert proof == merkle.consistency_proof(first, leaves[:second])
    assert merkle.verify_consistency(
        first, second, logtree.root(first, nodes), logtree.root(second, nodes), proof
    )


def test_a_proof_needs_only_logarithmically_many_nodes() -> None:
    assert len(logtree.inclusion_nodes(123_456, 1_000_000)) <= 2 * 20
    assert len(logtree.consistency_nodes(300_000, 1_000_000)) <= 2 * 20 + 2


@pytest.mark.parametrize(("index", "size"), [(0, 0), (5, 5), (-1, 3)])
def test_an_index_outside_the_tree_is_refused(index: int, size: int) -> None:
    with pytest.raises(ValueError, match="not in a tree"):
        logtree.inclusion_nodes(index, size)
