"""TiledTree: roots, proofs and appends over tlog-tiles storage.

Proofs are computed in three steps, as in transparency-dev/merkle and Go's
sumdb/tlog:

1. *plan* (:mod:`app.tlog.plan`): pure arithmetic naming the complete
   subtrees ``(height, index)`` that make up each proof hash;
2. *fetch* (:meth:`TiledTree.node_hashes`): map each node to the tile that
   holds it (tile level ``height // 8``), read the missing tiles through a
   :class:`TileReader` in one call, re-check their sizes (storage is not
   trusted) and hash the node out of the tile;
3. *rehash* (:func:`app.tlog.plan.rehash`): fold each group into one hash.

A tile is read at the width it has in the tree of the size being proved.
The reader must return the first ``width`` hashes of the tile; storage that
keeps only the widest version of each tile can truncate it (tiles grow by
appending, so a narrower tile is always a prefix of a wider one). Static
tile stores that keep only exact partial widths can serve proofs at the tree
sizes they hold tiles for (checkpoint sizes).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from .errors import ProofError, TileError
from .hashing import EMPTY_ROOT, HASH_SIZE, hash_level
from .plan import Group, Node, consistency_plan, fold_range, inclusion_plan, root_plan
from .tiles import TILE_HEIGHT, TILE_WIDTH, Tile, tile_width_at

_FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE
#: bytes of hashes a full tile takes in the cache: its 256 hashes and the 255 above them inside the tile
EXPANDED_TILE_BYTES = (2 * TILE_WIDTH - 1) * HASH_SIZE
#: the default byte bound of a TiledTree's tile cache: 4,096 full tiles (every tile of a million-entry log)
DEFAULT_CACHE_BYTES = 4096 * EXPANDED_TILE_BYTES


@runtime_checkable
class TileReader(Protocol):
    """Storage of hash tiles, as seen by :class:`TiledTree`."""

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        """Return each tile's data: exactly ``tile.width * 32`` bytes, in order.

        Raise any exception for a tile that does not exist.
        """
        ...


def expand_tile(data: bytes) -> list[bytes]:
    """All hashes inside a tile: element ``k`` holds the hashes at ``k`` levels above the tile's base.

    Element 0 is ``data`` itself; a full tile's element 8 is its root (the
    hash stored in the tile one level up). A partial tile of width ``w`` has
    ``w >> k`` hashes at level ``k``.
    """
    heights = [bytes(data)]
    for _ in range(TILE_HEIGHT):
        below = heights[-1]
        if len(below) < 2 * HASH_SIZE:
            break
        heights.append(hash_level(below))
    return heights


def tile_root(data: bytes) -> bytes:
    """Root hash of a full tile's 256 hashes."""
    if len(data) != _FULL_TILE_BYTES:
        raise TileError(f"tile root needs a full tile ({_FULL_TILE_BYTES} bytes), got {len(data)}")
    return expand_tile(data)[TILE_HEIGHT]


def node_tile(height: int, index: int, size: int) -> tuple[Tile, int, int]:
    """Locate node ``(height, index)`` of a tree of ``size`` leaves.

    Returns the tile holding it (at its width in that tree), the level inside
    the tile (``height % 8``) and the node's position at that level.
    """
    level = height >> 3
    inner = height & 7
    tile_index = (index << inner) >> TILE_HEIGHT
    width = tile_width_at(level, tile_index, size)
    if width == 0 or ((index + 1) << height) > size:
        raise ProofError(f"node ({height}, {index}) is not in a tree of size {size}")
    return Tile(level, tile_index, width), inner, index & ((TILE_WIDTH >> inner) - 1)


class TiledTree:
    """The storage-facing log engine: roots, proofs and appends over tiles.

    ``reader`` supplies tiles (see :class:`TileReader`). Tiles' hashes (with
    their interior levels) are kept in an LRU cache bounded twice: at most
    ``cache_size`` tiles and at most ``cache_bytes`` bytes of hashes (a full
    tile expanded is :data:`EXPANDED_TILE_BYTES`, 16,352 bytes; Python's
    object overhead adds about 3% to that). The least recently used tiles are
    evicted first; :attr:`cache_usage` says what is held. Full tiles never
    change; a partial tile is cached at the widest width seen and serves
    every narrower width (a prefix). Not thread-safe: use one instance per
    thread or guard it.
    """

    def __init__(self, reader: TileReader, cache_size: int = 4096, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._reader = reader
        self._cache_size = max(0, cache_size)
        self._cache_bytes = max(0, cache_bytes)
        self._cached_bytes = 0
        self._cache: OrderedDict[tuple[int, int], tuple[int, list[bytes]]] = OrderedDict()

    # -- cache --------------------------------------------------------------

    @property
    def cache_usage(self) -> tuple[int, int]:
        """``(tiles, bytes of hashes)`` the cache holds now."""
        return len(self._cache), self._cached_bytes

    def _cache_put(self, tile: Tile, heights: list[bytes]) -> None:
        size = sum(len(level) for level in heights)
        if not self._cache_size or size > self._cache_bytes:
            return
        key = (tile.level, tile.index)
        known = self._cache.get(key)
        if known is not None and known[0] >= tile.width:
            self._cache.move_to_end(key)
            return
        if known is not None:
            self._cached_bytes -= sum(len(level) for level in known[1])
        self._cache[key] = (tile.width, heights)
        self._cache.move_to_end(key)
        self._cached_bytes += size
        while len(self._cache) > self._cache_size or self._cached_bytes > self._cache_bytes:
            _, (_, evicted) = self._cache.popitem(last=False)
            self._cached_bytes -= sum(len(level) for level in evicted)

    def remember(self, tiles: Iterable[tuple[Tile, bytes]]) -> None:
        """Put tiles (e.g. the output of :meth:`append`) into the cache.

        The cache is trusted as if it were storage. A writer that needs the new
        root before its commit (to sign it) may call this first, but must then
        drop the whole tree (a new TiledTree) if the commit fails: the cache
        would otherwise hold tiles that were never stored.
        """
        for tile, data in tiles:
            if tile.is_entries:
                continue
            if len(data) != tile.data_size:
                raise TileError(f"{tile.path}: expected {tile.data_size} bytes, got {len(data)}")
            self._cache_put(tile, expand_tile(data))

    def clear_cache(self) -> None:
        self._cache.clear()
        self._cached_bytes = 0

    # -- fetch ----------------------------------------------------------------

    def _load(self, tiles: Iterable[Tile]) -> dict[tuple[int, int], list[bytes]]:
        """Expanded hashes of each tile, from the cache or (in one call) from the reader."""
        found: dict[tuple[int, int], list[bytes]] = {}
        missing: dict[tuple[int, int], Tile] = {}
        cache = self._cache
        for tile in tiles:
            key = (tile.level, tile.index)
            if key in found or key in missing and missing[key].width >= tile.width:
                continue
            cached = cache.get(key)
            if cached is not None and cached[0] >= tile.width:
                cache.move_to_end(key)
                found[key] = cached[1]
            else:
                missing[key] = tile
        if missing:
            wanted = list(missing.values())
            datas = self._reader.read_tiles(wanted)
            if len(datas) != len(wanted):
                raise TileError(f"tile reader returned {len(datas)} tiles for {len(wanted)} requested")
            for tile, data in zip(wanted, datas):
                if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) != tile.data_size:
                    got = len(data) if isinstance(data, (bytes, bytearray, memoryview)) else type(data).__name__
                    raise TileError(f"tile reader returned {got} bytes for {tile.path}, expected {tile.data_size}")
                heights = expand_tile(bytes(data))
                self._cache_put(tile, heights)
                found[(tile.level, tile.index)] = heights
        return found

    def node_hashes(self, nodes: Sequence[Node], size: int) -> dict[Node, bytes]:
        """Fetch step: the hash of each complete subtree node of the tree of ``size`` leaves."""
        cache = self._cache
        result: dict[Node, bytes] = {}
        pending: list[Node] = []
        for node in nodes:
            height, index = node
            if index < 0 or ((index + 1) << height) > size:
                raise ProofError(f"node ({height}, {index}) is not in a tree of size {size}")
            inner = height & 7
            key = (height >> 3, (index << inner) >> TILE_HEIGHT)
            width = min((size >> (height & ~7)) - key[1] * TILE_WIDTH, TILE_WIDTH)
            cached = cache.get(key)
            if cached is not None and cached[0] >= width:
                cache.move_to_end(key)
                position = (index & ((TILE_WIDTH >> inner) - 1)) * HASH_SIZE
                result[node] = cached[1][inner][position : position + HASH_SIZE]
            else:
                pending.append(node)
        if pending:
            located = [node_tile(height, index, size) for height, index in pending]
            expanded = self._load(tile for tile, _, _ in located)
            for node, (tile, inner, position) in zip(pending, located):
                hashes = expanded[(tile.level, tile.index)][inner]
                value = hashes[position * HASH_SIZE : (position + 1) * HASH_SIZE]
                if len(value) != HASH_SIZE:
                    raise TileError(f"{tile.path} does not hold node {node}")
                result[node] = value
        return result

    def _rehash(self, groups: Sequence[Group], size: int) -> list[bytes]:
        nodes = list({node: None for group in groups for node in group})
        hashes = self.node_hashes(nodes, size)
        return [
            hashes[group[0]] if len(group) == 1 else fold_range([hashes[node] for node in group])
            for group in groups
        ]

    # -- queries ------------------------------------------------------------

    def root(self, size: int) -> bytes:
        """Root hash of the tree of ``size`` leaves."""
        if size == 0:
            return EMPTY_ROOT
        return self._rehash((root_plan(size),), size)[0]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
        return self._rehash(inclusion_plan(index, size), size)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 consistency proof from tree size ``size1`` to ``size2``."""
        return self._rehash(consistency_plan(size1, size2), size2)

    def leaf_hashes(self, start: int, end: int, size: int) -> list[bytes]:
        """Leaf hashes ``[start, end)`` of a tree of ``size`` leaves."""
        if not 0 <= start <= end <= size:
            raise ProofError(f"leaf range [{start}, {end}) out of range for tree size {size}")
        hashes = self.node_hashes([(0, index) for index in range(start, end)], size)
        return [hashes[(0, index)] for index in range(start, end)]

    # -- append -------------------------------------------------------------

    def append(self, old_size: int, leaf_hashes: Sequence[bytes]) -> list[tuple[Tile, bytes]]:
        """Tiles that are new or grown when ``leaf_hashes`` are appended to a tree of ``old_size``.

        Reads only the old tree's right-edge partial tiles. Returns
        ``(tile, data)`` pairs, lower levels first, each with the tile's full
        data at its new width. Writes nothing and does not touch the cache:
        store the tiles, then optionally :meth:`remember` them.
        """
        if old_size < 0:
            raise TileError(f"tree size {old_size} is negative")
        for position, value in enumerate(leaf_hashes):
            if len(value) != HASH_SIZE:
                raise TileError(f"leaf hash {position} is {len(value)} bytes, expected {HASH_SIZE}")
        if not leaf_hashes:
            return []
        edges: dict[int, Tile] = {}
        level = 0
        while old_size >> (TILE_HEIGHT * level):
            count = old_size >> (TILE_HEIGHT * level)
            if count % TILE_WIDTH:
                edges[level] = Tile(level, count // TILE_WIDTH, count % TILE_WIDTH)
            level += 1
        expanded = self._load(edges.values()) if edges else {}
        changed: list[tuple[Tile, bytes]] = []
        new_hashes = b"".join(leaf_hashes)
        level = 0
        while new_hashes:
            count = old_size >> (TILE_HEIGHT * level)
            first_tile = count // TILE_WIDTH
            edge = edges.get(level)
            prefix = b""
            if edge is not None:
                prefix = expanded[(level, edge.index)][0][: edge.data_size]
            buffer = prefix + new_hashes
            roots = []
            for number, offset in enumerate(range(0, len(buffer), _FULL_TILE_BYTES)):
                chunk = buffer[offset : offset + _FULL_TILE_BYTES]
                tile = Tile(level, first_tile + number, len(chunk) // HASH_SIZE)
                changed.append((tile, chunk))
                if tile.width == TILE_WIDTH:
                    roots.append(tile_root(chunk))
            new_hashes = b"".join(roots)
            level += 1
        return changed
