"""Shared fixtures for the log core tests: dict-backed tile readers."""

from __future__ import annotations

from collections.abc import Sequence

from app.tlog import Tile, TileError


class WidestTileStore:
    """Keeps the widest version of each tile and serves any narrower width as a prefix."""

    def __init__(self) -> None:
        self.tiles: dict[tuple[int, int], bytes] = {}
        self.reads: list[Tile] = []

    def write(self, changed: Sequence[tuple[Tile, bytes]]) -> None:
        for tile, data in changed:
            assert len(data) == tile.width * 32
            self.tiles[(tile.level, tile.index)] = data

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        self.reads.extend(tiles)
        result = []
        for tile in tiles:
            data = self.tiles[(tile.level, tile.index)]
            if len(data) < tile.width * 32:
                raise TileError(f"{tile.path} not stored at that width")
            result.append(data[: tile.width * 32])
        return result


class ExactTileStore:
    """Static-hosting semantics: serves exactly the tiles written, keyed by path."""

    def __init__(self) -> None:
        self.tiles: dict[str, bytes] = {}

    def write(self, changed: Sequence[tuple[Tile, bytes]]) -> None:
        for tile, data in changed:
            self.tiles[tile.path] = data

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        return [self.tiles[tile.path] for tile in tiles]
