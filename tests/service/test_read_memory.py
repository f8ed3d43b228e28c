"""Memory on the read path stays bounded: the tile cache holds its limits in tiles and bytes,
proofs stay right after eviction, and reading a log over and over retains nothing per request."""

from __future__ import annotations

import gc
import tracemalloc

from app import tlog
from app.runtime import build_runtime
from app.services.log_reader import LogReader
from app.tlog import EXPANDED_TILE_BYTES, MemoryTree, TiledTree, leaf_hash

from tests.tlog.conftest import WidestTileStore


def _tiled(entries: int) -> tuple[MemoryTree, WidestTileStore]:
    memory = MemoryTree()
    memory.extend([f"entry {n}".encode() for n in range(entries)])
    store = WidestTileStore()
    store.write(memory.tiles())
    return memory, store


def test_the_tile_cache_holds_its_byte_bound_and_proofs_stay_right():
    size = 256 * 40 + 17  # 41 level-0 tiles, one of them partial
    memory, store = _tiled(size)
    limit = 5 * EXPANDED_TILE_BYTES
    tree = TiledTree(store, cache_size=1000, cache_bytes=limit)
    root = memory.root()
    for index in range(0, size, 97):
        proof = tree.inclusion_proof(index, size)
        tlog.verify_inclusion(leaf_hash(f"entry {index}".encode()), index, size, proof, root)
        tiles, held = tree.cache_usage
        assert held <= limit and tiles < 41  # the 41 level-0 tiles do not all fit
    assert tree.cache_usage[1] == sum(len(level) for _, levels in tree._cache.values() for level in levels)
    for first in (1, 300, 5000):
        proof = tree.consistency_proof(first, size)
        tlog.verify_consistency(first, size, proof, memory.root(first), root)
        assert tree.cache_usage[1] <= limit


def test_the_tile_cache_holds_its_count_bound_and_keeps_the_recent_tiles():
    size = 256 * 20
    _, store = _tiled(size)
    tree = TiledTree(store, cache_size=3)
    for index in range(0, size, 256):
        tree.inclusion_proof(index, size)
        assert tree.cache_usage[0] <= 3
    store.reads.clear()
    tree.inclusion_proof(size - 1, size)  # the newest tile and the level-1 tile: still cached
    assert store.reads == []
    tree.inclusion_proof(0, size)  # evicted long ago: read again
    assert [t.index for t in store.reads if t.level == 0] == [0]


def test_a_tile_larger_than_the_byte_bound_is_not_cached():
    _, store = _tiled(256)
    tree = TiledTree(store, cache_bytes=EXPANDED_TILE_BYTES - 1)
    tree.root(256)
    assert tree.cache_usage == (1, 32)  # only the one-hash level-1 tile; the full level-0 tile was too large


def test_the_default_bound_is_a_million_entry_log_and_64_mib():
    assert tlog.DEFAULT_CACHE_BYTES == 4096 * 16_352 == 66_977_792
    assert (1_000_000 // 256 + 1_000_000 // 65_536 + 2) <= 4096


def test_reading_every_entry_bundle_and_proof_repeatedly_retains_no_memory(make_settings):
    """After one warm pass (the cache filled up to its bound), further passes over every
    bundle, entry and proof retain less than 256 KiB: nothing on the read path grows with
    the number of requests."""
    runtime = build_runtime(make_settings())
    try:
        size = 256 * 12 + 5
        runtime.log.sequencer.append_batch_sync([("test", f'{{"n":{n}}}'.encode()) for n in range(size)])
        reader = LogReader(runtime.log.reader.store, runtime.log.verifier_key, runtime.settings.origin,
                           cache_tiles=4096, cache_bytes=4 * EXPANDED_TILE_BYTES)

        def one_pass() -> None:
            for bundle in range(size // 256):
                reader.entry_bundle(bundle, 256)
            for index in range(0, size, 7):
                reader.entry(index)
                reader.inclusion(index, size)
            reader.consistency(1, size)
            reader.tile(0, 0, 256)

        one_pass()
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            for _ in range(3):
                one_pass()
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        assert grown < 256 * 1024, [str(s) for s in after.compare_to(before, "lineno")[:5]]
        tiles, held = reader.tree.cache_usage
        assert held <= 4 * EXPANDED_TILE_BYTES and tiles <= 4096
    finally:
        runtime.close()


def test_the_service_reader_takes_its_bound_from_the_settings(make_settings):
    runtime = build_runtime(make_settings(tile_cache_bytes=3 * EXPANDED_TILE_BYTES))
    try:
        runtime.log.sequencer.append_batch_sync([("test", f'{{"n":{n}}}'.encode()) for n in range(256 * 8)])
        reader = runtime.log.reader
        for index in range(0, 256 * 8, 256):
            reader.inclusion(index)
        assert reader.tree.cache_usage[1] <= 3 * EXPANDED_TILE_BYTES
    finally:
        runtime.close()
