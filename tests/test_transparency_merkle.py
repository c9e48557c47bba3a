"""RFC 9162 Merkle proofs as pure functions: every honest proof verifies, every tampered one fails."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from campaigns.transparency.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    subtree_hasher,
    verify_consistency,
    verify_inclusion,
)


def leaves_of(count: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + str(i).encode()) for i in range(count)]


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) written exactly as RFC 9162 section 2.1.1 states it, recursively."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def test_the_hashes_follow_rfc_6962_with_their_domain_separating_prefixes() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert root_of([]) == hashlib.sha256(b"").digest()
    # The RFC 6962 test vector: the root of the eight-leaf tree used by Certificate Transparency's reference tests.
    vectors = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43"]
    vectors += [bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
    assert root_of([leaf_hash(v) for v in vectors]).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


@given(st.integers(min_value=0, max_value=300))
def test_the_bottom_up_root_is_the_rfc_root(count: int) -> None:
    leaves = leaves_of(count)
    assert root_of(leaves) == reference_root(leaves)


@given(st.data())
def test_every_inclusion_proof_verifies_against_the_root(data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=1, max_value=300))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    leaves = leaves_of(size)
    proof = inclusion_proof(index, size, subtree_hasher(leaves))
    assert verify_inclusion(index, size, leaves[index], proof, root_of(leaves))


@given(st.data())
def test_a_tampered_leaf_index_or_proof_fails_inclusion(data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=2, max_value=300))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    leaves = leaves_of(size)
    root = root_of(leaves)
    proof = inclusion_proof(index, size, subtree_hasher(leaves))

    assert not verify_inclusion(index, size, leaf_hash(b"a different file"), proof, root)
    other = data.draw(st.integers(min_value=0, max_value=size - 1).filter(lambda i: i != index))
    assert not verify_inclusion(other, size, leaves[index], proof, root)
    position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
    flipped = bytearray(proof[position])
    flipped[0] ^= 1
    tampered = [*proof[:position], bytes(flipped), *proof[position + 1 :]]
    assert not verify_inclusion(index, size, leaves[index], tampered, root)
    assert not verify_inclusion(index, size, leaves[index], proof[:-1], root)
    assert not verify_inclusion(index, size, leaves[index], [*proof, proof[0]], root)


@given(st.data())
def test_every_consistency_proof_between_two_sizes_verifies(data: st.DataObject) -> None:
    second = data.draw(st.integers(min_value=0, max_value=300))
    first = data.draw(st.integers(min_value=0, max_value=second))
    leaves = leaves_of(second)
    proof = consistency_proof(first, second, subtree_hasher(leaves))
    assert verify_consistency(first, second, root_of(leaves[:first]), root_of(leaves), proof)


@given(st.data())
def test_a_rewritten_prefix_fails_the_consistency_proof(data: st.DataObject) -> None:
    second = data.draw(st.integers(min_value=2, max_value=300))
    first = data.draw(st.integers(min_value=1, max_value=second - 1))
    rewritten_at = data.draw(st.integers(min_value=0, max_value=first - 1))
    leaves = leaves_of(second)
    history = list(leaves)
    history[rewritten_at] = leaf_hash(b"backdated")
    old_root = root_of(history[:first])
    # The log's current tree and proof do not lead back to a first tree whose leaves were different.
    proof = consistency_proof(first, second, subtree_hasher(leaves))
    assert not verify_consistency(first, second, old_root, root_of(leaves), proof)
    # Nor does a proof built from the rewritten log lead to the honest second root.
    rewritten_proof = consistency_proof(first, second, subtree_hasher(history))
    assert not verify_consistency(first, second, old_root, root_of(leaves), rewritten_proof)


def test_the_smallest_trees_have_the_proofs_the_rfc_describes() -> None:
    leaves = leaves_of(7)
    subtree = subtree_hasher(leaves)
    assert inclusion_proof(0, 1, subtree) == []
    # RFC 6962 section 2.1.3's examples: PROOF(4, D[7]) = [l], PROOF(3, D[7]) = [c, d, g, l].
    assert consistency_proof(4, 7, subtree) == [root_of(leaves[4:7])]
    assert consistency_proof(3, 7, subtree) == [leaves[2], leaves[3], root_of(leaves[:2]), root_of(leaves[4:7])]
    assert not verify_consistency(3, 7, root_of(leaves[:3]), root_of(leaves), [])
    assert not verify_consistency(5, 3, root_of(leaves[:3]), root_of(leaves), [])
