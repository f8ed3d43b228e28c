"""MemoryTree: an in-memory log over the tlog-tiles layout.

The tree keeps, for every Merkle height ``h``, the concatenated hashes of all
complete subtrees of ``2**h`` leaves (Go sumdb/tlog's "stored hashes",
kept as one ``bytearray`` per height: about 64 bytes per leaf in total).
A tile at level ``L`` is a slice of the height ``8 * L`` buffer, so tiles
and proofs use the same geometry (:mod:`app.tlog.tiles`) and planning
(:mod:`app.tlog.plan`) code as :class:`~app.tlog.tree.TiledTree`.
Not thread-safe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from .errors import ProofError, TileError
from .hashing import EMPTY_ROOT, HASH_SIZE, leaf_hashes
from .plan import consistency_plan, inclusion_plan, rehash, root_plan
from .tiles import TILE_HEIGHT, TILE_WIDTH, Tile, tile_width_at


class MemoryTree:
    """An append-only RFC 9162 Merkle tree held in memory."""

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    def __len__(self) -> int:
        return self._size

    def append(self, data: bytes) -> int:
        """Append one entry; return its index."""
        return self.extend((data,)).start

    def extend(self, items: Iterable[bytes]) -> range:
        """Append entries; return the range of their indexes."""
        return self.extend_hashes(leaf_hashes(items))

    def extend_hashes(self, hashes: Iterable[bytes]) -> range:
        """Append precomputed leaf hashes; return the range of their indexes."""
        new_nodes = list(hashes)
        if any(len(value) != HASH_SIZE for value in new_nodes):
            raise TileError("leaf hashes must be 32 bytes each")
        old_size = self._size
        new_size = old_size + len(new_nodes)
        levels = self._levels
        levels[0] += b"".join(new_nodes)
        sha = hashlib.sha256
        height = 1
        # new_nodes holds the nodes added at height - 1, starting at index first_new.
        first_new = old_size
        while new_size >> height:
            if height == len(levels):
                levels.append(bytearray())
            old_count = old_size >> height
            new_count = new_size >> height
            if old_count == new_count:
                break
            children = new_nodes[: 2 * new_count - first_new]
            if 2 * old_count < first_new:
                # The left child of the first new node was stored by an earlier append.
                children.insert(0, self.node(height - 1, 2 * old_count))
            pairs = iter(children)
            new_nodes = [sha(b"\x01" + left + right).digest() for left, right in zip(pairs, pairs)]
            levels[height] += b"".join(new_nodes)
            first_new = old_count
            height += 1
        self._size = new_size
        return range(old_size, new_size)

    def node(self, height: int, index: int) -> bytes:
        """Hash of the complete subtree ``(height, index)``; it must exist."""
        offset = index * HASH_SIZE
        value = bytes(self._levels[height][offset : offset + HASH_SIZE])
        if len(value) != HASH_SIZE:
            raise ProofError(f"node ({height}, {index}) is not in the tree")
        return value

    def leaf_hash(self, index: int) -> bytes:
        """Leaf hash at ``index``."""
        if not 0 <= index < self._size:
            raise ProofError(f"leaf index {index} out of range for tree size {self._size}")
        return self.node(0, index)

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise ProofError(f"tree size {size} out of range 0..{self._size}")
        return size

    def root(self, size: int | None = None) -> bytes:
        """Root hash of the tree's first ``size`` leaves (default: all)."""
        size = self._check_size(size)
        if size == 0:
            return EMPTY_ROOT
        return rehash((root_plan(size),), self.node)[0]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
        size = self._check_size(size)
        return rehash(inclusion_plan(index, size), self.node)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof from ``size1`` to ``size2`` (default: current size)."""
        size2 = self._check_size(size2)
        return rehash(consistency_plan(size1, size2), self.node)

    def tile(self, level: int, index: int, width: int | None = None) -> bytes:
        """Data of tile ``(level, index)``: ``width`` hashes (default: as wide as the tree allows)."""
        available = tile_width_at(level, index, self._size) if level >= 0 else 0
        if width is None:
            width = available
        if available == 0 or not 1 <= width <= available:
            raise TileError(f"tile ({level}, {index}) of width {width} not in tree of size {self._size}")
        buffer = self._levels[TILE_HEIGHT * level]
        start = index * TILE_WIDTH * HASH_SIZE
        return bytes(buffer[start : start + width * HASH_SIZE])

    def tiles(self, size: int | None = None) -> list[tuple[Tile, bytes]]:
        """Every tile of the tree of ``size`` leaves with its data (for static export)."""
        from .tiles import tiles_for_size

        size = self._check_size(size)
        return [(tile, self.tile(tile.level, tile.index, tile.width)) for tile in tiles_for_size(size)]
