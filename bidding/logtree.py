"""The transparency log's tree kept as stored nodes, so appends and proofs cost O(log n) lookups.

The platform-wide log (RFC 9162 §2.1) is one Merkle tree of tenders' closing heads (of every bid event,
before tenders had logs of their own). Rather than load every leaf to answer a proof, the database keeps each *perfect* subtree root once it is complete: node (level, index)
covers leaves [index·2^level, (index+1)·2^level). Every subtree hash that RFC 9162's recursive definitions
ask for covers a range [a, b) whose start is aligned to the largest power of two not above its length; such
a range is a run of perfect nodes of decreasing size, folded from the right.

The functions here are pure: first ask which nodes a computation needs (`*_nodes`), fetch them in one
query, then compute with the fetched hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence

NodeKey = tuple[int, int]  # (level, index)


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly less than n (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def blocks(a: int, b: int) -> Iterator[NodeKey]:
    """The perfect nodes that make up the range [a, b), left to right."""
    while a < b:
        size = a & -a if a else 1 << ((b - a).bit_length() - 1)
        while a + size > b:
            size >>= 1
        level = size.bit_length() - 1
        yield level, a >> level
        a += size


def range_hash(a: int, b: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """MTH(D[a:b]) from the perfect nodes of the range (b > a)."""
    parts = [nodes[key] for key in blocks(a, b)]
    acc = parts[-1]
    for part in reversed(parts[:-1]):
        acc = node_hash(part, acc)
    return acc


def _path_ranges(m: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """The ranges whose hashes form PATH(m, D[lo:hi]) (RFC 9162 §2.1.3.1), leaf side first."""
    out: list[tuple[int, int]] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo = lo + k
    out.reverse()
    return out


def _proof_ranges(m: int, n: int) -> list[tuple[int, int]]:
    """The ranges whose hashes form PROOF(m, D[0:n]) (RFC 9162 §2.1.4.1), in proof order."""
    out: list[tuple[int, int]] = []
    lo, hi, complete = 0, n, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            m -= k
            lo = lo + k
            complete = False
    if not complete:
        out.append((lo, hi))
    out.reverse()
    return out


def _needed(ranges: Sequence[tuple[int, int]]) -> set[NodeKey]:
    return {key for a, b in ranges for key in blocks(a, b)}


def root_nodes(size: int) -> set[NodeKey]:
    """The nodes `root` needs for a tree of `size` leaves."""
    return set(blocks(0, size))


def root(size: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """MTH of the first `size` leaves (the empty tree's root is SHA-256 of nothing)."""
    return range_hash(0, size, nodes) if size else hashlib.sha256(b"").digest()


def inclusion_nodes(index: int, size: int) -> set[NodeKey]:
    """The nodes `inclusion_proof` needs."""
    _check_index(index, size)
    return _needed(_path_ranges(index, 0, size))


def inclusion_proof(index: int, size: int, nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """The audit path of leaf `index` in the tree of `size` leaves."""
    _check_index(index, size)
    return [range_hash(a, b, nodes) for a, b in _path_ranges(index, 0, size)]


def consistency_nodes(first: int, second: int) -> set[NodeKey]:
    """The nodes `consistency_proof` needs."""
    _check_sizes(first, second)
    return _needed(_proof_ranges(first, second)) if 0 < first < second else set()


def consistency_proof(first: int, second: int, nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """The proof that the tree of `first` leaves is a prefix of the tree of `second` leaves."""
    _check_sizes(first, second)
    if first == 0 or first == second:
        return []
    return [range_hash(a, b, nodes) for a, b in _proof_ranges(first, second)]


def completed_by(index: int, leaf: bytes, nodes: Mapping[NodeKey, bytes]) -> dict[NodeKey, bytes]:
    """The nodes that appending leaf hash `leaf` at `index` completes (the leaf itself included).

    `nodes` must hold the left siblings on the way up: `append_nodes(index)`."""
    made: dict[NodeKey, bytes] = {(0, index): leaf}
    level, i, acc = 0, index, leaf
    while i & 1:
        acc = node_hash(nodes[(level, i - 1)], acc)
        level, i = level + 1, i >> 1
        made[(level, i)] = acc
    return made


def append_nodes(index: int) -> set[NodeKey]:
    """The stored nodes `completed_by` needs to append at `index`."""
    need: set[NodeKey] = set()
    level, i = 0, index
    while i & 1:
        need.add((level, i - 1))
        level, i = level + 1, i >> 1
    return need


def _check_index(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of {size} leaves")


def _check_sizes(first: int, second: int) -> None:
    if not 0 <= first <= second:
        raise ValueError(f"tree sizes must satisfy 0 ≤ first ≤ second, got {first} and {second}")


def closing_message(tender_code: str, tree_size: int, root_hash_b64: str, envelopes: Sequence[str]) -> bytes:
    """What the platform signs as a tender's closing record beside its closing head: the tender, the head's
    size and root, and the sorted hashes of the envelopes that stand at the deadline."""
    lines = ["ggzy-closing-v1", tender_code, str(tree_size), root_hash_b64, *sorted(envelopes)]
    return ("\n".join(lines) + "\n").encode()
