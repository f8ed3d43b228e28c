"""LogReader: everything an auditor can read from the log, as plain values.

Proofs are computed from stored tiles (through a cached `TiledTree`), never
trusted from elsewhere. Sizes are bounded by the latest signed checkpoint, so
a reader never sees a tree state that no checkpoint vouches for.

Entry bytes are never served unchecked: each entry (alone or in a bundle) is
hashed once, and its RFC 9162 leaf hash must equal both its stored
`leaf_hash` and the leaf in the stored level-0 tile. A mismatch means the
database was altered: the read fails with `EntryIntegrityError` (HTTP 500),
is counted in the `pubtrail_log_integrity_failures` metric and logged once
per entry.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from dataclasses import dataclass
from typing import Sequence

from app import tlog
from app.errors import BadRequest, NotFound, PubtrailError
from app.metrics import Metrics
from app.storage.log_store import LogStore, StoredCheckpoint, StoredEntry
from app.tlog import TILE_WIDTH, TiledTree, fold_range, inclusion_plan, root_plan

log = logging.getLogger("pubtrail.log_reader")

_MAX_REPORTED = 10_000  # entries remembered as already logged (bounds memory under a flood)


class EntryIntegrityError(PubtrailError):
    """A stored entry does not hash to its leaf: storage was altered, nothing is served (500)."""

    status_code = 500

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


@dataclass(frozen=True)
class ProvenEntry:
    """A stored entry with its inclusion proof at one tree size; `to_json` is the
    item shape every answer about log entries shares (`/api/v1/log/entries/{i}`,
    provenance, blast radius)."""

    stored: StoredEntry
    proof: InclusionProof

    def to_json(self) -> dict:
        try:
            entry = json.loads(self.stored.data)
        except ValueError:
            entry = None
        return {
            "index": self.stored.index,
            "kind": self.stored.kind,
            "leaf_hash": self.stored.leaf_hash.hex(),
            "entry": entry,
            "entry_bytes": base64.b64encode(self.stored.data).decode(),
            "inclusion_proof": self.proof.to_json(),
        }


class LogReader:
    """Read side of the log. Thread-safe for concurrent request handlers.

    Memory: the reader's only cache is its `TiledTree`'s tile cache, at most
    `cache_tiles` tiles and `cache_bytes` bytes of hashes (defaults: 4,096
    tiles, 64 MiB, which hold every tile of a million-entry log), evicted
    least recently used first. Entries and bundles are read from storage on
    every request and never cached; the latest checkpoint is one object;
    entries reported as altered are remembered up to 10,000.
    """

    def __init__(
        self,
        store: LogStore,
        verifier_key: str,
        origin: str,
        cache_tiles: int = 4096,
        latest_max_age: float = 0.5,
        metrics: Metrics | None = None,
        cache_bytes: int = tlog.DEFAULT_CACHE_BYTES,
    ):
        self.store = store
        self.verifier_key = verifier_key
        self.origin = origin
        self.latest_max_age = latest_max_age
        self.metrics = metrics
        self.tree = TiledTree(store, cache_size=cache_tiles, cache_bytes=cache_bytes)
        self._tree_lock = threading.Lock()
        self._reported: set[int] = set()

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
        size = self._latest_covering(start + width).size
        if start + width > size:
            raise NotFound(f"entry bundle {tlog.entries_path(index, width)} is beyond the log's size")
        entries = self.store.entries(start, start + width)
        if len(entries) != width:
            raise NotFound(f"entry bundle {tlog.entries_path(index, width)} is incomplete in storage")
        with self._tree_lock:
            leaves = self.tree.node_hashes([(0, e.index) for e in entries], size)
        self._check_entries(entries, [leaves[(0, e.index)] for e in entries], "entry_bundle")
        return tlog.encode_entry_bundle([e.data for e in entries])

    def entry(self, index: int) -> tuple[ProvenEntry, StoredCheckpoint]:
        """An entry with its inclusion proof at the latest checkpoint."""
        _check_non_negative("index", index)
        checkpoint = self._latest_covering(index + 1)
        if index >= checkpoint.size:
            raise NotFound(f"index {index} is not in the log (size {checkpoint.size})")
        return self.proven([index], checkpoint.size)[0], checkpoint

    def proven(self, indexes: Sequence[int], size: int) -> list[ProvenEntry]:
        """The entries at `indexes` (each below `size`, the size of a signed
        checkpoint), in the order given, each with its inclusion proof at
        `size`; every entry is checked against its leaf before it is returned.
        NotFound if an entry is missing from storage."""
        stored = self.store.entries_at(indexes)
        out = []
        for index in indexes:
            if index not in stored:
                raise NotFound(f"entry {index} is missing from storage")
            proof, leaf = self._inclusion(index, size)
            self._check_entries([stored[index]], [leaf], "entry")
            out.append(ProvenEntry(stored[index], proof))
        return out

    def inclusion(self, index: int, tree_size: int | None = None) -> InclusionProof:
        """The inclusion proof of `index` at `tree_size`, or at the latest checkpoint (re-read when
        the cached one does not cover `index`: another process may have logged it just now)."""
        _check_non_negative("index", index)
        size = self._latest_covering(index + 1).size if tree_size is None else self._size(tree_size)
        if index >= size:
            raise BadRequest(f"index {index} must be below tree_size {size}")
        return self._inclusion(index, size)[0]

    def _inclusion(self, index: int, size: int) -> tuple[InclusionProof, bytes]:
        """The inclusion proof of `index` at `size`, and the leaf hash the tiles hold for it."""
        # the root's nodes, the proof's and the leaf, fetched together: one
        # storage read when the tiles are not cached (the root is recomputed
        # from tiles, not taken from the checkpoint; the leaf's tile is the
        # proof's first)
        root_nodes = root_plan(size)
        groups = inclusion_plan(index, size)
        nodes = list(dict.fromkeys([*root_nodes, *(node for group in groups for node in group), (0, index)]))
        with self._tree_lock:
            known = self.tree.node_hashes(nodes, size)
        root = fold_range([known[node] for node in root_nodes])
        hashes = [known[group[0]] if len(group) == 1 else fold_range([known[n] for n in group]) for group in groups]
        return InclusionProof(index, size, root, hashes), known[(0, index)]

    def _check_entries(self, entries: Sequence[StoredEntry], tree_leaves: Sequence[bytes], read: str) -> None:
        """Raise EntryIntegrityError unless every entry's data hashes to its stored
        leaf hash and to its leaf in the tree (one SHA-256 per entry)."""
        for entry, tree_leaf in zip(entries, tree_leaves, strict=True):
            computed = tlog.leaf_hash(entry.data)
            if computed == entry.leaf_hash == tree_leaf:
                continue
            if computed != entry.leaf_hash:
                reason = (
                    f"entry {entry.index} in storage does not hash to its stored leaf hash "
                    "(its data or leaf hash was altered)"
                )
            else:
                reason = f"entry {entry.index} in storage does not match its leaf in the log's tiles"
            self._report(entry.index, read, reason)
            raise EntryIntegrityError(f"{reason}; refusing to serve it (run `pubtrail audit`)")

    def _report(self, index: int, read: str, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.log_integrity_failures.labels(read).inc()
        if index not in self._reported and len(self._reported) < _MAX_REPORTED:
            self._reported.add(index)
            log.error("log storage integrity: %s; served as HTTP 500 until repaired", reason)

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
