"""Proof verification: corrupted, truncated, extended and mis-sized proofs all fail."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .reference import largest_power_of_two_below
from app.tlog import (
    EMPTY_ROOT,
    MemoryTree,
    ProofError,
    RootMismatchError,
    root_from_inclusion_proof,
    roots_from_consistency_proof,
    verify_consistency,
    verify_inclusion,
)

TREE = MemoryTree()
TREE.extend(f"leaf {number}".encode() for number in range(600))


def flipped(value: bytes, bit: int) -> bytes:
    data = bytearray(value)
    data[bit // 8] ^= 1 << (bit % 8)
    return bytes(data)


def assert_inclusion_fails(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> None:
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, root)


def assert_consistency_fails(size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes) -> None:
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, root1, root2)


@pytest.mark.parametrize(("index", "size"), [(0, 1), (0, 2), (1, 2), (2, 3), (5, 8), (6, 7), (100, 257), (599, 600)])
def test_inclusion_every_bit_flip_fails(index: int, size: int) -> None:
    leaf = TREE.leaf_hash(index)
    root = TREE.root(size)
    proof = TREE.inclusion_proof(index, size)
    verify_inclusion(leaf, index, size, proof, root)
    for position in range(len(proof)):
        for bit in range(256):
            corrupted = list(proof)
            corrupted[position] = flipped(proof[position], bit)
            assert_inclusion_fails(leaf, index, size, corrupted, root)
    for bit in range(0, 256, 7):
        assert_inclusion_fails(flipped(leaf, bit), index, size, proof, root)
        assert_inclusion_fails(leaf, index, size, proof, flipped(root, bit))


@pytest.mark.parametrize(("size1", "size2"), [(1, 2), (2, 5), (3, 7), (4, 7), (6, 7), (1, 600), (256, 600), (257, 511)])
def test_consistency_every_bit_flip_fails(size1: int, size2: int) -> None:
    root1, root2 = TREE.root(size1), TREE.root(size2)
    proof = TREE.consistency_proof(size1, size2)
    verify_consistency(size1, size2, proof, root1, root2)
    for position in range(len(proof)):
        for bit in range(256):
            corrupted = list(proof)
            corrupted[position] = flipped(proof[position], bit)
            assert_consistency_fails(size1, size2, corrupted, root1, root2)
    for bit in range(0, 256, 7):
        assert_consistency_fails(size1, size2, proof, flipped(root1, bit), root2)
        assert_consistency_fails(size1, size2, proof, root1, flipped(root2, bit))


def test_mismatch_error_carries_both_roots() -> None:
    leaf, proof, root = TREE.leaf_hash(3), TREE.inclusion_proof(3, 10), TREE.root(10)
    wrong = flipped(root, 0)
    with pytest.raises(RootMismatchError) as caught:
        verify_inclusion(leaf, 3, 10, proof, wrong)
    assert caught.value.expected == wrong
    assert caught.value.calculated == root
    assert wrong.hex() in str(caught.value) and root.hex() in str(caught.value)
    assert root_from_inclusion_proof(leaf, 3, 10, proof) == root
    assert roots_from_consistency_proof(3, 10, TREE.consistency_proof(3, 10), TREE.root(3)) == (TREE.root(3), root)


def test_structural_errors() -> None:
    leaf, proof, root = TREE.leaf_hash(3), TREE.inclusion_proof(3, 10), TREE.root(10)
    assert_inclusion_fails(leaf, 10, 10, proof, root)  # index == size
    assert_inclusion_fails(leaf, -1, 10, proof, root)
    assert_inclusion_fails(leaf, 0, 0, [], EMPTY_ROOT)
    assert_inclusion_fails(leaf, 3, 10, proof + [b"\x00" * 31], root)  # short hash
    assert_inclusion_fails(leaf[:31], 3, 10, proof, root)
    assert_inclusion_fails(leaf, 3, 10, proof, root + b"\x00")
    assert_consistency_fails(5, 4, [], TREE.root(5), TREE.root(4))  # size1 > size2
    assert_consistency_fails(4, 4, [TREE.root(4)], TREE.root(4), TREE.root(4))  # non-empty for equal sizes
    assert_consistency_fails(4, 4, [], TREE.root(4), TREE.root(5))
    assert_consistency_fails(0, 4, [], flipped(EMPTY_ROOT, 1), TREE.root(4))
    assert_consistency_fails(0, 4, [TREE.root(4)], EMPTY_ROOT, TREE.root(4))
    assert_consistency_fails(2, 5, [], TREE.root(2), TREE.root(5))  # empty proof
    verify_consistency(0, 4, [], EMPTY_ROOT, TREE.root(4))
    verify_consistency(4, 4, [], TREE.root(4), TREE.root(4))


sizes = st.integers(min_value=1, max_value=600)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), size=sizes)
def test_inclusion_mutations_fail(data: st.DataObject, size: int) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    leaf, proof, root = TREE.leaf_hash(index), TREE.inclusion_proof(index, size), TREE.root(size)
    verify_inclusion(leaf, index, size, proof, root)
    garbage = data.draw(st.binary(min_size=32, max_size=32))
    assert_inclusion_fails(leaf, index, size, proof + [garbage], root)  # trailing garbage
    assert_inclusion_fails(leaf, index, size, [garbage] + proof, root)  # preceding garbage
    if proof:
        assert_inclusion_fails(leaf, index, size, proof[:-1], root)  # truncated
        assert_inclusion_fails(leaf, index, size, proof[1:], root)
    # Another index or size is accepted exactly when its proof path has the same
    # shape (sibling sides and length): the RFC binds size to root, not to the proof.
    for other_index, other_size in ((index + 1, size), (index - 1, size), (index, size + 1), (index, size - 1), (index, size * 2), (index ^ 2, size)):
        if (other_index, other_size) == (index, size):
            continue
        try:
            verify_inclusion(leaf, other_index, other_size, proof, root)
            accepted = True
        except ProofError:
            accepted = False
        same_shape = 0 <= other_index < other_size and path_shape(other_index, other_size) == path_shape(index, size)
        assert accepted == same_shape, (other_index, other_size)


def path_shape(index: int, size: int) -> list[bool]:
    """For each proof hash, leaf first: True if the sibling is on the right (RFC 9162 PATH)."""
    if size == 1:
        return []
    split = largest_power_of_two_below(size)
    if index < split:
        return path_shape(index, split) + [True]
    return path_shape(index - split, size - split) + [False]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), size2=sizes)
def test_consistency_mutations_fail(data: st.DataObject, size2: int) -> None:
    size1 = data.draw(st.integers(min_value=1, max_value=size2))
    root1, root2 = TREE.root(size1), TREE.root(size2)
    proof = TREE.consistency_proof(size1, size2)
    verify_consistency(size1, size2, proof, root1, root2)
    garbage = data.draw(st.binary(min_size=32, max_size=32))
    assert_consistency_fails(size1, size2, proof + [garbage], root1, root2)
    assert_consistency_fails(size1, size2, [garbage] + proof, root1, root2)
    if proof:
        assert_consistency_fails(size1, size2, proof[:-1], root1, root2)
    if root1 != root2:
        assert_consistency_fails(size1, size2, proof, root2, root1)  # swapped roots
    # As for inclusion: other sizes are accepted exactly when the proof has the same shape.
    for other1, other2 in ((size1 + 1, size2), (size1 - 1, size2), (size1, size2 + 1), (size1, size2 - 1)):
        if not 0 < other1 < other2:
            continue
        try:
            verify_consistency(other1, other2, proof, root1, root2)
            accepted = True
        except ProofError:
            accepted = False
        same_shape = consistency_shape(other1, other2) == consistency_shape(size1, size2)
        assert accepted == same_shape, (other1, other2)


def consistency_shape(size1: int, size2: int, complete: bool = True) -> list[str]:
    """Token list of RFC 9162 SUBPROOF's recursion ('node' = the old subtree hash is included)."""
    if size1 == size2:
        return [] if complete else ["node"]
    split = largest_power_of_two_below(size2)
    if size1 <= split:
        return consistency_shape(size1, split, complete) + ["right"]
    return consistency_shape(size1 - split, size2 - split, False) + ["left"]
