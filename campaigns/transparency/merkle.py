"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing and proofs, as pure functions.

The algorithms follow RFC 9162 section 2.1: the tree over n leaves splits at the largest power of two below n; an
inclusion proof is the audit path from a leaf to the root; a consistency proof between sizes m <= n holds the nodes that
let a verifier rebuild both roots. Hashes are raw 32-byte SHA-256 digests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


SubtreeHash = Callable[[int, int], bytes]
"""subtree(start, end) -> the hash of leaves [start, end); lets a store answer from cached complete subtrees."""


def subtree_hasher(leaves: Sequence[bytes]) -> SubtreeHash:
    def subtree(start: int, end: int) -> bytes:
        return root_of(leaves[start:end])

    return subtree


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes, computed bottom-up in O(n)."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    # Bottom-up pairing gives RFC 9162's tree: an odd last node is promoted unchanged to the next level.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 section 2.1.3.1, for leaf `index` in a tree of `size` leaves."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside a tree of {size} leaves")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            proof.append(subtree(start + k, end))
            end = start + k
        else:
            proof.append(subtree(start, start + k))
            start = start + k
    proof.reverse()
    return proof


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes | None:
    """RFC 9162 section 2.1.3.2: the root the proof leads to, or None when the proof's shape is wrong."""
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    return root_from_inclusion_proof(index, size, leaf, proof) == root


def consistency_proof(first: int, second: int, subtree: SubtreeHash) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 section 2.1.4.1."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from {first} to {second} leaves")
    if first == 0 or first == second:
        return []
    proof: list[bytes] = []
    start, end, m, complete = 0, second, first, True
    # SUBPROOF(m, D[start:end], complete), unrolled.
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(subtree(start, end))
            break
        k = split_point(n)
        if m <= k:
            proof.append(subtree(start + k, end))
            end = start + k
        else:
            proof.append(subtree(start, start + k))
            start, m, complete = start + k, m - k, False
    proof.reverse()
    return proof


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first tree is a complete subtree and its root starts the path
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def aligned_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """The complete subtrees (level, position) whose hashes make MTH(D[start:end]) for a range an RFC proof asks for."""
    n = end - start
    if n <= 0:
        raise ValueError(f"an empty range [{start}, {end}) has no subtrees")
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        if start % n:
            raise ValueError(f"[{start}, {end}) is not a subtree of the log")
        return [(level, start >> level)]
    k = split_point(n)
    return aligned_nodes(start, start + k) + aligned_nodes(start + k, end)


def range_hash(start: int, end: int, nodes: Mapping[tuple[int, int], bytes]) -> bytes:
    """MTH(D[start:end]) from the hashes of the complete subtrees `aligned_nodes` names."""
    n = end - start
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        return nodes[(level, start >> level)]
    k = split_point(n)
    return node_hash(range_hash(start, start + k, nodes), range_hash(start + k, end, nodes))


def ranges_asked(build: Callable[[SubtreeHash], object]) -> list[tuple[int, int]]:
    """The ranges a proof (or a root) needs: their positions depend only on the sizes, never on the hashes."""
    asked: list[tuple[int, int]] = []

    def record(start: int, end: int) -> bytes:
        asked.append((start, end))
        return b""

    build(record)
    return asked
