#!/usr/bin/env python3
"""Benchmark the log core: hashing rate, MemoryTree appends, memory, proof latency.

Usage: .venv/bin/python scripts/bench_tlog.py [--leaves N]
Prints figures only; it is not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.tlog import MemoryTree, TiledTree, leaf_hash, verify_consistency, verify_inclusion  # noqa: E402


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def median_microseconds(function, arguments) -> float:
    samples = []
    for args in arguments:
        start = time.perf_counter_ns()
        function(*args)
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


class DictTileReader:
    def __init__(self) -> None:
        self.tiles: dict[tuple[int, int], bytes] = {}

    def read_tiles(self, tiles):
        return [self.tiles[(tile.level, tile.index)][: tile.width * 32] for tile in tiles]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=2000)
    options = parser.parse_args()
    leaves = options.leaves
    rng = random.Random(42)

    sha = hashlib.sha256
    block = b"\x01" + bytes(64)
    count = 1_000_000
    start = time.perf_counter()
    for _ in range(count):
        sha(block).digest()
    elapsed = time.perf_counter() - start
    print(f"sha256 over 65-byte inputs:        {count / elapsed / 1e6:.2f} M/s")

    entries = [b"entry %d" % number for number in range(leaves)]
    tree = MemoryTree()
    rss_before = rss_bytes()
    start = time.perf_counter()
    tree.extend(entries)
    elapsed = time.perf_counter() - start
    rss_after = rss_bytes()
    print(f"MemoryTree.extend({leaves:,}):    {leaves / elapsed:,.0f} leaves/s ({elapsed:.2f} s)")

    tracemalloc.start()
    measured = MemoryTree()
    for offset in range(0, leaves, 65536):
        measured.extend(entries[offset : offset + 65536])
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del measured
    print(f"memory per leaf (tracemalloc):      {current / leaves:.1f} bytes  (RSS delta {max(0, rss_after - rss_before) / leaves:.1f} bytes)")

    size = tree.size
    indexes = [(rng.randrange(size), size) for _ in range(options.samples)]
    print(f"inclusion proof @{size:,}, median:  {median_microseconds(tree.inclusion_proof, indexes):.1f} µs")
    pairs = []
    for _ in range(options.samples):
        size1 = rng.randrange(1, size)
        pairs.append((size1, rng.randrange(size1, size + 1)))
    print(f"consistency proof @{size:,}, median: {median_microseconds(tree.consistency_proof, pairs):.1f} µs")
    print(f"root @{size:,}, median:             {median_microseconds(tree.root, [(s2,) for _, s2 in pairs]):.1f} µs")

    root = tree.root()
    inclusion_args = [(tree.leaf_hash(index), index, size, tree.inclusion_proof(index, size), root) for index, _ in indexes[:500]]
    print(f"verify_inclusion, median:           {median_microseconds(verify_inclusion, inclusion_args):.1f} µs")
    consistency_args = [
        (size1, size2, tree.consistency_proof(size1, size2), tree.root(size1), tree.root(size2)) for size1, size2 in pairs[:500]
    ]
    print(f"verify_consistency, median:         {median_microseconds(verify_consistency, consistency_args):.1f} µs")

    reader = DictTileReader()
    writer = TiledTree(reader, cache_size=0)
    start = time.perf_counter()
    grown = 0
    for offset in range(0, leaves, 256):
        batch = [tree.node(0, index) for index in range(offset, min(leaves, offset + 256))]
        for tile, data in writer.append(grown, batch):
            reader.tiles[(tile.level, tile.index)] = data
        grown += len(batch)
    elapsed = time.perf_counter() - start
    print(f"TiledTree.append in 256-leaf batches: {leaves / elapsed:,.0f} leaves/s")

    tiled = TiledTree(reader)
    for args in indexes:
        tiled.inclusion_proof(*args)  # warm the cache
    for args in pairs:
        tiled.consistency_proof(*args)
    print(f"TiledTree inclusion @{size:,} warm, median:   {median_microseconds(tiled.inclusion_proof, indexes):.1f} µs")
    print(f"TiledTree consistency @{size:,} warm, median: {median_microseconds(tiled.consistency_proof, pairs):.1f} µs")
    cold = TiledTree(reader)
    print(f"TiledTree inclusion @{size:,} cold, median:   {median_microseconds(cold.inclusion_proof, indexes[:200]):.1f} µs")
    assert tiled.root(size) == root and tiled.inclusion_proof(*indexes[0]) == tree.inclusion_proof(*indexes[0])
    assert leaf_hash(entries[0]) == tree.leaf_hash(0)


if __name__ == "__main__":
    main()
