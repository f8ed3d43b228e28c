"""Inclusion proofs of a whole appended batch, read off the batch's own new tiles.

The proofs of the leaves one append added share almost all their nodes: the
tiles the append wrote (``TiledTree.append`` output) already hold every node
on the new right edge, at every level the append touched. :class:`BatchProofs`
expands those tiles once and asks ``fetch`` only for the few older nodes to
their left, instead of planning and fetching a proof per leaf.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .errors import TileError
from .plan import fold_range, range_nodes
from .tiles import TILE_HEIGHT, TILE_WIDTH, Tile
from .tree import expand_tile

Node = tuple[int, int]
"""(height, index) of a complete subtree, as in :mod:`.plan`."""


class BatchProofs:
    """Inclusion proofs, at tree size ``size``, of every leaf ``first..size-1`` of one append.

    ``tiles`` are the tiles the append produced (``TiledTree.append`` output,
    covering the whole right edge of the new tree at every level it touched);
    ``fetch(nodes, size)`` returns the hashes of the few older nodes to their
    left (e.g. ``TiledTree.node_hashes``). ``fetch`` is called at most once,
    during construction; afterwards nothing is read, so :meth:`proofs` may run
    in any thread, after the caller has released whatever lock guarded storage.

    Raises ``ValueError`` for an empty or out-of-range batch or tiles that are
    not one contiguous run per level, and :class:`TileError` from
    :meth:`proofs` if ``fetch`` did not supply a node a proof needs.
    """

    def __init__(
        self,
        tiles: Sequence[tuple[Tile, bytes]],
        first: int,
        size: int,
        fetch: Callable[[Sequence[Node], int], Mapping[Node, bytes]],
    ) -> None:
        if not 0 <= first < size:
            raise ValueError(f"batch [{first}, {size}) is empty or out of range")
        self.first = first
        self.size = size
        # height -> (index of the first node held, concatenated node hashes)
        self._levels: dict[int, tuple[int, bytes]] = {}
        by_level: dict[int, list[tuple[Tile, bytes]]] = {}
        for tile, data in tiles:
            if not tile.is_entries:
                by_level.setdefault(tile.level, []).append((tile, data))
        for level, items in by_level.items():
            items.sort(key=lambda item: item[0].index)
            base = items[0][0].index
            for position, (tile, _) in enumerate(items):
                if tile.index != base + position or (position < len(items) - 1 and not tile.is_full):
                    raise ValueError(f"batch tiles at level {level} are not one contiguous run")
            expanded = [expand_tile(data) for _, data in items]
            for inner in range(TILE_HEIGHT):
                parts = [heights[inner] for heights in expanded if len(heights) > inner]
                if parts:
                    self._levels[TILE_HEIGHT * level + inner] = ((base * TILE_WIDTH) >> inner, b"".join(parts))
        self._extra: dict[Node, bytes] = {}
        missing = [node for node in self._needed_nodes() if self._lookup(*node) is None]
        if missing:
            self._extra = dict(fetch(missing, size))

    def _lookup(self, height: int, index: int) -> bytes | None:
        held = self._levels.get(height)
        if held is not None:
            offset = (index - held[0]) * 32
            if offset >= 0 and offset + 32 <= len(held[1]):
                return held[1][offset : offset + 32]
        return self._extra.get((height, index))

    def _needed_nodes(self) -> list[Node]:
        """Nodes of any batch proof that might lie outside the batch's tiles."""
        first, size = self.first, self.size
        needed = []
        for height in range((size - 1).bit_length()):
            low, high = first >> height, (size - 1) >> height
            held = self._levels.get(height)
            ancestors = range(low, high + 1) if held is None else (low, high)
            for ancestor in ancestors:
                sibling = ancestor ^ 1
                start = sibling << height
                if start >= size:
                    continue
                if start + (1 << height) <= size:
                    needed.append((height, sibling))
                else:
                    needed.extend(range_nodes(start, size))
        return needed

    def _node(self, height: int, index: int) -> bytes:
        value = self._lookup(height, index)
        if value is None:
            raise TileError(f"batch proof node ({height}, {index}) is unknown")
        return value

    def proofs(self) -> list[list[bytes]]:
        """Proof of each leaf first..size-1, in order (RFC 9162, as `TiledTree.inclusion_proof`)."""
        first, size = self.first, self.size
        count = size - first
        columns = []  # per height: the proof hash of each leaf, indexed by leaf - first
        for height in range((size - 1).bit_length()):
            low, high = first >> height, (size - 1) >> height
            by_ancestor = []
            for ancestor in range(low, high + 1):
                sibling = ancestor ^ 1
                start = sibling << height
                if start >= size:
                    by_ancestor.append(None)
                elif start + (1 << height) <= size:
                    by_ancestor.append(self._node(height, sibling))
                else:
                    by_ancestor.append(fold_range([self._node(h, i) for h, i in range_nodes(start, size)]))
            if high == low:
                columns.append(by_ancestor * count if by_ancestor[0] is not None else None)
            else:
                columns.append([by_ancestor[(leaf >> height) - low] for leaf in range(first, size)])
        live = [column for column in columns if column is not None]
        return [[hash_ for hash_ in row if hash_ is not None] for row in zip(*live)] if live else [[] for _ in range(count)]
