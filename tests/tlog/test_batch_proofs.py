"""BatchProofs: a batch's inclusion proofs, read off its own new tiles, equal the RFC 9162 proofs."""

from __future__ import annotations

import random

import pytest

from .conftest import WidestTileStore
from app.tlog import BatchProofs, MemoryTree, TiledTree, TileError, leaf_hash


def test_batch_proofs_equal_tree_proofs():
    """For many batch shapes, every leaf's batch proof is the reference tree's proof."""
    rng = random.Random(7)
    shapes = [[1], [1, 1, 1], [255, 1, 1], [256, 256], [257, 65279, 1], [3, 70000], [600, 4000, 2]]
    shapes += [[rng.randint(1, 700) for _ in range(rng.randint(1, 6))] for _ in range(40)]
    for shape in shapes:
        storage, reference, size = WidestTileStore(), MemoryTree(), 0
        tree = TiledTree(storage)
        for batch, count in enumerate(shape):
            leaves = [b"%d/%d" % (batch, i) for i in range(count)]
            reference.extend(leaves)
            tiles = tree.append(size, [leaf_hash(leaf) for leaf in leaves])
            storage.write(tiles)
            proofs = BatchProofs(tiles, size, size + count, TiledTree(storage).node_hashes).proofs()
            size += count
            assert len(proofs) == count
            indexes = range(size - count, size)
            if count > 2000:  # the ends, both sides of tile boundaries, and a sample
                indexes = sorted({*indexes[:300], *indexes[-300:], *rng.sample(indexes, 300)})
            for index in indexes:
                assert proofs[index - size + count] == reference.inclusion_proof(index, size), (shape, index)


def _appended(sizes):
    """Append batches of `sizes` leaves; return the storage, the last batch's tiles and the size."""
    storage, size, tiles = WidestTileStore(), 0, []
    tree = TiledTree(storage)
    for count in sizes:
        tiles = tree.append(size, [leaf_hash(b"%d" % i) for i in range(size, size + count)])
        storage.write(tiles)
        size += count
    return storage, tiles, size


def test_empty_or_out_of_range_batch_is_refused():
    storage, tiles, _ = _appended([5])
    fetch = TiledTree(storage).node_hashes
    for first, end in [(5, 5), (-1, 5), (6, 5)]:
        with pytest.raises(ValueError, match="empty or out of range"):
            BatchProofs(tiles, first, end, fetch)


def test_tiles_that_are_not_one_run_are_refused():
    storage, tiles, size = _appended([600])
    level0 = [(tile, data) for tile, data in tiles if tile.level == 0]
    assert [tile.index for tile, _ in level0] == [0, 1, 2]
    fetch = TiledTree(storage).node_hashes
    with pytest.raises(ValueError, match="not one contiguous run"):
        BatchProofs([level0[0], level0[2]], 0, size, fetch)


def test_a_node_fetch_did_not_supply_is_a_tile_error():
    storage, tiles, size = _appended([300, 1])
    proofs = BatchProofs(tiles, 300, size, lambda nodes, size: {})
    with pytest.raises(TileError, match="is unknown"):
        proofs.proofs()
