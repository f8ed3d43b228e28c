"""LogReader: everything an auditor can read from the log, as plain values.

Proofs are computed from stored tiles (through a cached `TiledTree`), never
trusted from elsewhere. Sizes are bounded by the latest signed checkpoint, so
a reader never sees a tree state that no checkpoint vouches for.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from app import tlog
from app.errors import BadRequest, NotFound
from app.storage.log_store import LogStore, StoredCheckpoint, StoredEntry
from app.tlog import TILE_WIDTH, TiledTree, fold_range, inclusion_plan, root_plan



@dataclass(frozen=True)
class InclusionProof:
    index: int
    tree_size: int
    root_hash: bytes
    hashes: list[bytes]

    def to_json(self) -> dict:
        return {
            "index": self.index,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "hashes": [h.hex() for h in self.hashes],
        }


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    first_root: bytes
    second_root: bytes
    hashes: list[bytes]

    def to_json(self) -> dict:
        return {
            "first": self.first,
            "second": self.second,
            "first_root": self.first_root.hex(),
            "second_root": self.second_root.hex(),
            "hashes": [h.hex() for h in self.hashes],
        }


class LogReader:
    """Read side of the log. Thread-safe for concurrent request handlers."""

    def __init__(
        self,
        store: LogStore,
        verifier_key: str,
        origin: str,
        cache_tiles: int = 4096,
        latest_max_age: float = 0.5,
    ):
        self.store = store
        self.verifier_key = verifier_key
        self.origin = origin
        self.latest_max_age = latest_max_age
        self.tree = TiledTree(store, cache_size=cache_tiles)
        self._tree_lock = threading.Lock()

    def latest(self, *, fresh: bool = False) -> StoredCheckpoint:
        """The latest signed checkpoint.

        Unless `fresh`, it may come from the store's cache: checkpoints this
        process's sequencer committed are seen at once, those of other
        processes after at most `latest_max_age` seconds. A request naming a
        size beyond the cached one re-reads the database before it is refused.
        """
        checkpoint = self.store.latest_checkpoint(0.0 if fresh else self.latest_max_age)
        if checkpoint is None:
            raise NotFound("the log has no checkpoint yet")
        return checkpoint

    def _latest_covering(self, size: int) -> StoredCheckpoint:
        """The latest checkpoint, re-read from the database if the cached one is smaller than `size`."""
        latest = self.latest()
        return latest if size <= latest.size else self.latest(fresh=True)

    def checkpoint_at(self, size: int) -> StoredCheckpoint:
        _check_non_negative("size", size)
        latest = self._latest_covering(size)
        if size > latest.size:  # also keeps out-of-range integers away from the database
            raise NotFound(f"no checkpoint at size {size}: the log has {latest.size} entries")
        checkpoint = latest if size == latest.size else self.store.checkpoint(size)
        if checkpoint is None:
            raise NotFound(f"no checkpoint was signed at size {size}")
        return checkpoint

    def root(self, size: int) -> bytes:
        if size == 0:
            return tlog.EMPTY_ROOT
        with self._tree_lock:
            return self.tree.root(size)

    def tile(self, level: int, index: int, width: int) -> bytes:
        """Hash tile bytes; NotFound until the log has grown to cover it."""
        end = (index * TILE_WIDTH + width) << (8 * level)
        latest = self._latest_covering(end).size
        if end > latest:
            raise NotFound(f"tile {tlog.tile_path(level, index, width)} is beyond the log's size {latest}")
        data = self.store.read_tile(level, index, width)
        if data is None:
            raise NotFound(f"tile {tlog.tile_path(level, index, width)} does not exist")
        return data

    def entry_bundle(self, index: int, width: int) -> bytes:
        """An entry bundle (tlog-tiles), NotFound until the log holds all its entries."""
        start = index * TILE_WIDTH
        if start + width > self._latest_covering(start + width).size:
            raise NotFound(f"entry bundle {tlog.entries_path(index, width)} is beyond the log's size")
        entries = self.store.entries(start, start + width)
        if len(entries) != width:
            raise NotFound(f"entry bundle {tlog.entries_path(index, width)} is incomplete in storage")
        return tlog.encode_entry_bundle([e.data for e in entries])

    def entry(self, index: int) -> tuple[StoredEntry, InclusionProof, StoredCheckpoint]:
        """An entry with its inclusion proof at the latest checkpoint."""
        _check_non_negative("index", index)
        checkpoint = self._latest_covering(index + 1)
        if index >= checkpoint.size:
            raise NotFound(f"index {index} is not in the log (size {checkpoint.size})")
        stored = self.store.entry(index)
        if stored is None:
            raise NotFound(f"entry {index} is missing from storage")
        return stored, self.inclusion(index, checkpoint.size), checkpoint

    def inclusion(self, index: int, tree_size: int | None = None) -> InclusionProof:
        size = self._size(tree_size)
        _check_non_negative("index", index)
        if index >= size:
            raise BadRequest(f"index {index} must be below tree_size {size}")
        # the root's nodes and the proof's, fetched together: one storage
        # read when the tiles are not cached (the root is recomputed from
        # tiles, not taken from the checkpoint)
        root_nodes = root_plan(size)
        groups = inclusion_plan(index, size)
        nodes = list(dict.fromkeys([*root_nodes, *(node for group in groups for node in group)]))
        with self._tree_lock:
            known = self.tree.node_hashes(nodes, size)
        root = fold_range([known[node] for node in root_nodes])
        hashes = [known[group[0]] if len(group) == 1 else fold_range([known[n] for n in group]) for group in groups]
        return InclusionProof(index, size, root, hashes)

    def inclusion_by_hash(self, leaf_hash: bytes, tree_size: int | None = None) -> InclusionProof:
        size = self._size(tree_size)
        if len(leaf_hash) != 32:
            raise BadRequest("leaf_hash must be 32 bytes (64 hex digits)")
        index = self.store.index_of_leaf_hash(leaf_hash, size)
        if index is None:
            raise NotFound(f"no entry with leaf hash {leaf_hash.hex()} in the first {size} entries")
        return self.inclusion(index, size)

    def consistency(self, first: int, second: int | None = None) -> ConsistencyProof:
        second = self._size(second)
        _check_non_negative("first", first)
        if first > second:
            raise BadRequest(f"first ({first}) must not exceed second ({second})")
        if first == 0 or first == second:
            hashes = []
        else:
            with self._tree_lock:
                hashes = self.tree.consistency_proof(first, second)
        return ConsistencyProof(first, second, self.root(first), self.root(second), hashes)

    def _size(self, tree_size: int | None) -> int:
        if tree_size is None:
            return self.latest().size
        _check_non_negative("tree_size", tree_size)
        latest = self._latest_covering(tree_size).size
        if tree_size > latest:
            raise BadRequest(f"tree_size {tree_size} is larger than the log ({latest})")
        return tree_size


def _check_non_negative(name: str, value: int) -> None:
    if value < 0:
        raise BadRequest(f"{name} must not be negative")
