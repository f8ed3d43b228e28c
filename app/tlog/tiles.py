"""C2SP tlog-tiles geometry and paths.

A tile at level ``L`` and index ``N`` holds the Merkle tree hashes at tree
height ``8 * L`` with indexes ``256 * N`` up to ``256 * N + width``: each hash
covers ``256 ** L`` leaves. A full tile holds 256 hashes (8192 bytes); the
rightmost tile of a level may be *partial* (width 1..255), written with a
``.p/<W>`` suffix. Entry bundles (``tile/entries/...``) share the index and
width scheme; :class:`Tile` reports them with ``level == ENTRIES_LEVEL`` (-1).

Paths are exactly those of the spec::

    tile/<L>/<N>[.p/<W>]        L in 0..63, no leading zeros
    tile/entries/<N>[.p/<W>]    W in 1..255, no leading zeros

with ``N`` split into zero-padded groups of three digits, every group but the
last prefixed with ``x`` (1234067 -> ``x001/x234/067``).
:func:`parse_tile_path` accepts only the canonical form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import TileError, TilePathError

TILE_HEIGHT = 8
"""Each tile spans 8 levels of the Merkle tree."""
TILE_WIDTH = 1 << TILE_HEIGHT
"""Hashes (or entries) in a full tile: 256."""
MAX_TILE_LEVEL = 63
"""Highest tile level a path may name."""
ENTRIES_LEVEL = -1
"""``Tile.level`` of an entry bundle (``tile/entries/...``)."""


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile: ``level`` (``ENTRIES_LEVEL`` for an entry bundle), ``index``, ``width`` (1..256)."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not ENTRIES_LEVEL <= self.level <= MAX_TILE_LEVEL:
            raise TileError(f"tile level {self.level} out of range")
        if self.index < 0:
            raise TileError(f"tile index {self.index} is negative")
        if not 1 <= self.width <= TILE_WIDTH:
            raise TileError(f"tile width {self.width} out of range 1..{TILE_WIDTH}")

    @property
    def is_entries(self) -> bool:
        """True for an entry bundle, False for a hash tile."""
        return self.level == ENTRIES_LEVEL

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def path(self) -> str:
        """The tile's canonical path, e.g. ``tile/0/x001/234.p/5``."""
        if self.level == ENTRIES_LEVEL:
            return entries_path(self.index, self.width)
        return tile_path(self.level, self.index, self.width)

    @property
    def data_size(self) -> int:
        """Bytes of a hash tile's data: ``width * 32``."""
        return self.width * 32


def _index_path(index: int) -> str:
    if index < 0:
        raise TilePathError(f"tile index {index} is negative")
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def _width_suffix(width: int | None) -> str:
    if width is None or width == TILE_WIDTH:
        return ""
    if not 1 <= width < TILE_WIDTH:
        raise TilePathError(f"tile width {width} out of range 1..{TILE_WIDTH}")
    return f".p/{width}"


def tile_path(level: int, index: int, width: int | None = None) -> str:
    """Return ``tile/<L>/<N>[.p/<W>]``; ``width`` None or 256 means a full tile."""
    if not 0 <= level <= MAX_TILE_LEVEL:
        raise TilePathError(f"tile level {level} out of range 0..{MAX_TILE_LEVEL}")
    return f"tile/{level}/{_index_path(index)}{_width_suffix(width)}"


def entries_path(index: int, width: int | None = None) -> str:
    """Return ``tile/entries/<N>[.p/<W>]``; ``width`` None or 256 means a full bundle."""
    return f"tile/entries/{_index_path(index)}{_width_suffix(width)}"


_PATH_RE = re.compile(
    r"tile/(?P<level>entries|[0-9]{1,2})/(?P<index>(?:x[0-9]{3}/)*[0-9]{3})(?:\.p/(?P<width>[0-9]{1,3}))?"
)


#: Longest index text a tile path can need: 2**63 has 19 digits, 7 groups of "xNNN/".
_MAX_INDEX_TEXT = 7 * 5


def parse_tile_path(path: str) -> Tile:
    """Parse a canonical tile or entry-bundle path into a :class:`Tile`.

    Entry bundles come back with ``level == ENTRIES_LEVEL`` (-1). Raises
    :class:`TilePathError` for anything that :func:`tile_path` /
    :func:`entries_path` would not produce (leading zeros, ``x000/``
    prefixes, ``.p/0``, ``.p/256``, ``.p/007``, level > 63, ...).
    """
    if not isinstance(path, str):
        raise TilePathError("tile path must be a string")
    match = _PATH_RE.fullmatch(path)
    if match is None:
        raise TilePathError(f"not a tile path: {path!r}")
    if len(match["index"]) > _MAX_INDEX_TEXT:
        raise TilePathError(f"tile index out of range: {path[:80]!r}...")
    level_text = match["level"]
    level = ENTRIES_LEVEL if level_text == "entries" else int(level_text)
    index = int(match["index"].replace("x", "").replace("/", ""))
    width_text = match["width"]
    width = TILE_WIDTH if width_text is None else int(width_text)
    if level > MAX_TILE_LEVEL or not 1 <= width <= TILE_WIDTH:
        raise TilePathError(f"tile path out of range: {path!r}")
    try:
        tile = Tile(level, index, width)
        canonical = tile.path
    except TileError as exc:
        raise TilePathError(f"invalid tile path {path!r}: {exc}") from exc
    if canonical != path:
        raise TilePathError(f"non-canonical tile path {path!r} (canonical: {canonical!r})")
    return tile


def tile_width_at(level: int, index: int, size: int) -> int:
    """Width of tile ``(level, index)`` in a tree of ``size`` leaves (0 if absent)."""
    count = (size >> (TILE_HEIGHT * level)) - index * TILE_WIDTH
    if count <= 0:
        return 0
    return TILE_WIDTH if count >= TILE_WIDTH else count


def tiles_for_size(size: int) -> list[Tile]:
    """Every hash tile of a tree of ``size`` leaves, level by level, left to right.

    Full tiles plus, on each level whose hash count is not a multiple of 256,
    the partial rightmost tile (so a tree of 256 leaves has ``tile/0/000`` and
    ``tile/1/000.p/1``).
    """
    if size < 0:
        raise TileError(f"tree size {size} is negative")
    tiles: list[Tile] = []
    level = 0
    while level <= MAX_TILE_LEVEL:
        count = size >> (TILE_HEIGHT * level)
        if count == 0:
            break
        full, partial = divmod(count, TILE_WIDTH)
        tiles.extend(Tile(level, index) for index in range(full))
        if partial:
            tiles.append(Tile(level, full, partial))
        level += 1
    return tiles


def entry_bundles_for_size(size: int) -> list[Tile]:
    """Every entry bundle of a tree of ``size`` leaves (``level == ENTRIES_LEVEL``)."""
    if size < 0:
        raise TileError(f"tree size {size} is negative")
    full, partial = divmod(size, TILE_WIDTH)
    bundles = [Tile(ENTRIES_LEVEL, index) for index in range(full)]
    if partial:
        bundles.append(Tile(ENTRIES_LEVEL, full, partial))
    return bundles
