"""Every root and proof of every small tree, against the naive RFC reference."""

from __future__ import annotations

import random

import pytest

from app.tlog import (
    MemoryTree,
    TiledTree,
    leaf_hash,
    tiles_for_size,
    verify_consistency,
    verify_inclusion,
)

from .conftest import ExactTileStore, WidestTileStore
from .reference import ReferenceTree

MAX_SIZE = 300
ALL_PAIRS_UP_TO = 140


def entries(count: int, offset: int = 0) -> list[bytes]:
    return [f"entry {number}".encode() for number in range(offset, offset + count)]


@pytest.fixture(scope="module")
def reference() -> ReferenceTree:
    return ReferenceTree(entries(MAX_SIZE))


def test_memory_tree_every_proof(reference: ReferenceTree) -> None:
    tree = MemoryTree()
    for size in range(1, MAX_SIZE + 1):
        assert tree.append(reference.entries[size - 1]) == size - 1
        root = reference.root(size)
        assert tree.root() == root
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert proof == reference.inclusion_proof(index, size), (index, size)
            verify_inclusion(leaf_hash(reference.entries[index]), index, size, proof, root)
    for size2 in range(1, MAX_SIZE + 1):
        sizes1 = range(size2 + 1) if size2 <= ALL_PAIRS_UP_TO else random.Random(size2).sample(range(size2 + 1), 12)
        for size1 in sizes1:
            proof = tree.consistency_proof(size1, size2)
            assert proof == reference.consistency_proof(size1, size2), (size1, size2)
            verify_consistency(size1, size2, proof, reference.root(size1), reference.root(size2))


def _grow_tiled(store, total: int, seed: int) -> tuple[TiledTree, list[int]]:
    """Grow a TiledTree by random batches, storing only what append returns."""
    rng = random.Random(seed)
    writer = TiledTree(store, cache_size=0)
    boundaries = []
    size = 0
    while size < total:
        batch = min(total - size, rng.choice([1, 1, 2, 3, 7, 31, 255, 256, 257, 600]))
        changed = writer.append(size, [leaf_hash(entry) for entry in entries(batch, size)])
        assert [tile for tile, _ in changed] == _expected_changed_tiles(size, size + batch)
        store.write(changed)
        size += batch
        boundaries.append(size)
    return writer, boundaries


def _expected_changed_tiles(old_size: int, new_size: int):
    old = set(tiles_for_size(old_size))
    return [tile for tile in tiles_for_size(new_size) if tile not in old]


@pytest.mark.parametrize("cache_size", [0, 4096])
def test_tiled_tree_every_proof(reference: ReferenceTree, cache_size: int) -> None:
    store = WidestTileStore()
    _grow_tiled(store, MAX_SIZE, seed=cache_size)
    tree = TiledTree(store, cache_size=cache_size)
    # Without a cache every proof re-hashes its tiles: check a third of the sizes.
    step = 1 if cache_size else 3
    for size in range(1, MAX_SIZE + 1, step):
        assert tree.root(size) == reference.root(size)
        for index in range(size):
            assert tree.inclusion_proof(index, size) == reference.inclusion_proof(index, size), (index, size)
    for size2 in range(1, MAX_SIZE + 1, 3):
        for size1 in range(size2 + 1):
            assert tree.consistency_proof(size1, size2) == reference.consistency_proof(size1, size2)


def test_tiled_tree_at_checkpoint_sizes_reads_only_written_tiles(reference: ReferenceTree) -> None:
    store = ExactTileStore()
    _, boundaries = _grow_tiled(store, MAX_SIZE, seed=7)
    tree = TiledTree(store, cache_size=0)
    for size in boundaries:
        assert tree.root(size) == reference.root(size)
        for index in range(0, size, 7):
            assert tree.inclusion_proof(index, size) == reference.inclusion_proof(index, size)
        for size1 in boundaries:
            if size1 <= size:
                assert tree.consistency_proof(size1, size) == reference.consistency_proof(size1, size)


def test_two_tile_levels_sparse() -> None:
    """Sizes around 65536 (tile level 2 appears) with a sparse set of indexes."""
    total = 65536 + 300
    data = entries(total)
    memory = MemoryTree()
    memory.extend(data)
    reference = ReferenceTree(data)
    store = WidestTileStore()
    _grow_tiled(store, total, seed=3)
    tiled = TiledTree(store)
    rng = random.Random(1)
    for size in (255, 256, 257, 65279, 65280, 65535, 65536, 65537, 65792, total):
        root = reference.root(size)
        assert memory.root(size) == root == tiled.root(size)
        indexes = {0, size - 1, size // 2, *rng.sample(range(size), 5)}
        for index in indexes:
            proof = reference.inclusion_proof(index, size)
            assert memory.inclusion_proof(index, size) == proof
            assert tiled.inclusion_proof(index, size) == proof
            verify_inclusion(leaf_hash(data[index]), index, size, proof, root)
        for size1 in {1, 256, 65535, 65536, rng.randrange(1, size + 1)}:
            if size1 <= size:
                proof = reference.consistency_proof(size1, size)
                assert memory.consistency_proof(size1, size) == proof
                assert tiled.consistency_proof(size1, size) == proof
                verify_consistency(size1, size, proof, reference.root(size1), root)
    for tile in tiles_for_size(total):
        data_bytes = store.tiles[(tile.level, tile.index)][: tile.width * 32]
        assert memory.tile(tile.level, tile.index, tile.width) == data_bytes
