"""Tile paths and geometry (C2SP tlog-tiles), entry bundles, TiledTree storage checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.tlog import (
    ENTRIES_LEVEL,
    EntryBundleError,
    Tile,
    TiledTree,
    TileError,
    TilePathError,
    decode_entry_bundle,
    encode_entry_bundle,
    entries_path,
    leaf_hash,
    parse_tile_path,
    tile_path,
    tiles_for_size,
)

from .conftest import WidestTileStore


@pytest.mark.parametrize(
    ("level", "index", "width", "path"),
    [
        (0, 0, None, "tile/0/000"),
        (0, 1234067, None, "tile/0/x001/x234/067"),
        (1, 999, 256, "tile/1/999"),
        (1, 1000, None, "tile/1/x001/000"),
        (2, 5, 17, "tile/2/005.p/17"),
        (63, 1, 1, "tile/63/001.p/1"),
        (0, 1_000_000, 255, "tile/0/x001/x000/000.p/255"),
    ],
)
def test_tile_paths(level: int, index: int, width: int | None, path: str) -> None:
    assert tile_path(level, index, width) == path
    parsed = parse_tile_path(path)
    assert parsed == Tile(level, index, width or 256)
    assert parsed.path == path


def test_entries_paths() -> None:
    assert entries_path(1234067) == "tile/entries/x001/x234/067"
    assert entries_path(0, 5) == "tile/entries/000.p/5"
    parsed = parse_tile_path("tile/entries/x001/x234/067.p/9")
    assert parsed == Tile(ENTRIES_LEVEL, 1234067, 9)
    assert parsed.is_entries and parsed.path == "tile/entries/x001/x234/067.p/9"


@pytest.mark.parametrize(
    "path",
    [
        "", "tile/0", "tile/0/", "tile/0/0", "tile/0/00", "tile/0/0000", "tile/00/000", "tile/01/000",
        "tile/64/000", "tile/100/000", "tile/-1/000", "tile/0/x000/123", "tile/0/x01/234", "tile/0/001/234",
        "tile/0/x001/x234", "tile/0/x001/234/", "tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/007",
        "tile/0/000.p/", "tile/0/000.p", "tile/0/000.p/1/", "tile/0/000p/1", "/tile/0/000", "tile//000",
        "tile/entries/000.p/256", "tile/entries/0", "tile/entry/000", "tile/0/１２３", "tile/0/000.p/+1",
        "tile/0/000.p/1 ", " tile/0/000", "tile/0/X001/234", "tile/0/000\n", "tile/ 0/000",
    ],
)
def test_non_canonical_paths_rejected(path: str) -> None:
    with pytest.raises(TilePathError):
        parse_tile_path(path)
    assert issubclass(TilePathError, ValueError)


def test_path_arguments_checked() -> None:
    for bad in [(-1, 0, None), (64, 0, None), (0, -1, None), (0, 0, 0), (0, 0, 257)]:
        with pytest.raises(TilePathError):
            tile_path(*bad)
    with pytest.raises(TileError):
        Tile(0, 0, 0)


@settings(max_examples=200, deadline=None)
@given(
    level=st.integers(min_value=-1, max_value=63),
    index=st.integers(min_value=0, max_value=10**15),
    width=st.integers(min_value=1, max_value=256),
)
def test_path_round_trip(level: int, index: int, width: int) -> None:
    tile = Tile(level, index, width)
    assert parse_tile_path(tile.path) == tile


def test_tiles_for_size_matches_spec_examples() -> None:
    assert tiles_for_size(0) == []
    assert tiles_for_size(256) == [Tile(0, 0), Tile(1, 0, 1)]
    tiles = tiles_for_size(70_000)
    assert len([t for t in tiles if t.level == 0 and t.width == 256]) == 273
    assert [t for t in tiles if t.width < 256] == [Tile(0, 273, 112), Tile(1, 1, 17), Tile(2, 0, 1)]
    assert Tile(1, 0) in tiles


def test_entry_bundles() -> None:
    entries = [b"", b"a", b"\x00" * 300, b"x" * 65535]
    data = encode_entry_bundle(entries)
    assert data[:5] == b"\x00\x00\x00\x01a"
    assert decode_entry_bundle(data) == entries
    assert decode_entry_bundle(b"") == []
    with pytest.raises(EntryBundleError):
        encode_entry_bundle([b"x" * 65536])
    for cut in (1, 2, 3, len(data) - 1):
        with pytest.raises(EntryBundleError):
            decode_entry_bundle(data[:-cut])
    for garbage in (b"\x00", b"\x00\x05abc", b"\x01"):
        with pytest.raises(EntryBundleError):
            decode_entry_bundle(data + garbage)


class ShortTileReader:
    def __init__(self, inner: WidestTileStore, cut: int = 1, count_off: bool = False) -> None:
        self.inner, self.cut, self.count_off = inner, cut, count_off

    def read_tiles(self, tiles):
        data = self.inner.read_tiles(tiles)
        if self.count_off:
            return data[:-1]
        return [item[: -self.cut] for item in data]


def _store(size: int) -> WidestTileStore:
    store = WidestTileStore()
    store.write(TiledTree(store).append(0, [leaf_hash(b"%d" % number) for number in range(size)]))
    return store


def test_tiled_tree_rejects_short_tiles() -> None:
    store = _store(600)
    for reader in (ShortTileReader(store), ShortTileReader(store, cut=32), ShortTileReader(store, count_off=True)):
        tree = TiledTree(reader)
        with pytest.raises(TileError):
            tree.inclusion_proof(5, 600)
        with pytest.raises(TileError):
            tree.root(600)
        with pytest.raises(TileError):
            tree.append(600, [leaf_hash(b"new")])


def test_append_reads_only_right_edge_and_remember_avoids_rereads() -> None:
    store = _store(600)  # level 0: 2 full + 88; level 1: width 2
    writer = TiledTree(store)
    store.reads.clear()
    changed = writer.append(600, [leaf_hash(b"more %d" % n) for n in range(300)])
    assert store.reads == [Tile(0, 2, 88), Tile(1, 0, 2)]
    assert [tile for tile, _ in changed] == [Tile(0, 2), Tile(0, 3, 132), Tile(1, 0, 3)]
    store.write(changed)
    writer.remember(changed)
    store.reads.clear()
    for index in range(0, 900, 50):
        writer.inclusion_proof(index, 900)
    assert store.reads == [Tile(0, 0), Tile(0, 1)]  # old full tiles only; the new ones were remembered
    assert writer.append(900, []) == []
    with pytest.raises(TileError):
        writer.append(900, [b"short"])
    with pytest.raises(TileError):
        writer.remember([(Tile(0, 0), b"\x00" * 31)])
