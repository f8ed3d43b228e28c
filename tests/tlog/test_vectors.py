"""Known-answer vectors: the RFC 6962 / CT eight-leaf tree, tile paths."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from app.tlog import (
    EMPTY_ROOT,
    MemoryTree,
    TiledTree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

from .conftest import WidestTileStore

VECTORS = json.loads((Path(__file__).parent / "testdata" / "rfc6962_tree.json").read_text())
LEAVES = [bytes.fromhex(value) for value in VECTORS["leaves_hex"]]
ROOTS = [bytes.fromhex(value) for value in VECTORS["roots_hex"]]


def b64(value: str) -> bytes:
    return base64.b64decode(value)


def test_hashing_primitives() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert [leaf_hash(leaf).hex() for leaf in LEAVES] == VECTORS["leaf_hashes_hex"]
    assert node_hash(leaf_hash(LEAVES[0]), leaf_hash(LEAVES[1])) == ROOTS[2]


def _trees():
    memory = MemoryTree()
    memory.extend(LEAVES)
    store = WidestTileStore()
    tiled = TiledTree(store)
    store.write(tiled.append(0, [leaf_hash(leaf) for leaf in LEAVES]))
    return memory, tiled


@pytest.mark.parametrize("size", range(9))
def test_roots(size: int) -> None:
    memory, tiled = _trees()
    assert memory.root(size) == ROOTS[size]
    assert tiled.root(size) == ROOTS[size]


@pytest.mark.parametrize("vector", VECTORS["inclusion"], ids=lambda v: f"{v['leafIdx']}-of-{v['treeSize']}")
def test_inclusion_vectors(vector: dict) -> None:
    proof = [b64(value) for value in vector["proof"]]
    memory, tiled = _trees()
    assert memory.inclusion_proof(vector["leafIdx"], vector["treeSize"]) == proof
    assert tiled.inclusion_proof(vector["leafIdx"], vector["treeSize"]) == proof
    verify_inclusion(b64(vector["leafHash"]), vector["leafIdx"], vector["treeSize"], proof, b64(vector["root"]))


@pytest.mark.parametrize("vector", VECTORS["consistency"], ids=lambda v: f"{v['size1']}-to-{v['size2']}")
def test_consistency_vectors(vector: dict) -> None:
    proof = [b64(value) for value in vector["proof"]]
    memory, tiled = _trees()
    assert memory.consistency_proof(vector["size1"], vector["size2"]) == proof
    assert tiled.consistency_proof(vector["size1"], vector["size2"]) == proof
    verify_consistency(vector["size1"], vector["size2"], proof, b64(vector["root1"]), b64(vector["root2"]))


def test_rfc_proof_shapes_for_eight_leaves() -> None:
    # The RFC 6962 section 2.1.3 example tree of 7 leaves: proofs for d0, d3, d4, d6.
    memory, _ = _trees()
    node = memory.node
    assert memory.inclusion_proof(0, 7) == [node(0, 1), node(1, 1), _mth(memory, 4, 7)]
    assert memory.inclusion_proof(3, 7) == [node(0, 2), node(1, 0), _mth(memory, 4, 7)]
    assert memory.inclusion_proof(4, 7) == [node(0, 5), node(0, 6), node(2, 0)]
    assert memory.inclusion_proof(6, 7) == [node(1, 2), node(2, 0)]
    # Section 2.1.4 consistency examples: 3 -> 7, 4 -> 7, 6 -> 7.
    assert memory.consistency_proof(3, 7) == [node(0, 2), node(0, 3), node(1, 0), _mth(memory, 4, 7)]
    assert memory.consistency_proof(4, 7) == [_mth(memory, 4, 7)]
    assert memory.consistency_proof(6, 7) == [node(1, 2), node(0, 6), node(2, 0)]


def _mth(memory: MemoryTree, start: int, end: int) -> bytes:
    from .reference import ReferenceTree

    return ReferenceTree(LEAVES)._mth(start, end)
