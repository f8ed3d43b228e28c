"""`TileSource`: the read paths of a C2SP tlog-tiles log, from a server or a static copy.

A log's reads are three kinds of path under one base URL: ``checkpoint``,
``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``. A `TileSource`
fetches them from

- ``http(s)://host[/prefix]``: a pubtrail server (its root, or the origin's
  path such as ``/log``) or any static host serving a `pubtrail export`
  directory (plain GETs; gzip answers are decoded by httpx);
- ``file:///path/to/dir``: an exported directory on this machine.

Nothing read is trusted: the checkpoint must be opened with the pinned key and
tiles checked against its root (a `TiledTree` over this source does that,
since `read_tiles` makes it a `TileReader`). A partial tile that is no longer
there (a static host may prune it once the full tile exists) is read from the
full tile and cut to its width, as tlog-tiles lets clients do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence
from urllib.parse import unquote, urlsplit

import httpx

from app import tlog
from app.tlog import TILE_WIDTH, Tile

from .errors import MalformedAnswer, NotFoundAnswer, RefusedAnswer, Unreachable
from .http import DEFAULT_TIMEOUT

__all__ = ["TileSource"]


class TileSource:
    """The tlog-tiles paths under ``url`` (``http://``, ``https://`` or ``file://``).

    Errors are those of :mod:`app.clients.errors`: Unreachable (no server, no
    directory), NotFoundAnswer (a path that is not there), RefusedAnswer (any
    other non-2xx), MalformedAnswer (a tile of the wrong length).
    ``transport`` replaces the network (tests pass an ``httpx.MockTransport``).
    """

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT, transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        self._dir: Path | None = None
        self._client: httpx.Client | None = None
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise Unreachable(f"{url!r}: a file:// URL must name a local directory")
            self._dir = Path(unquote(parts.path) or "/")
            if not self._dir.is_dir():
                raise Unreachable(f"{url!r}: no directory {self._dir}")
        elif parts.scheme in ("http", "https") and parts.hostname:
            self._client = httpx.Client(
                timeout=timeout, transport=transport, headers={"Accept-Encoding": "gzip"}
            )
        else:
            raise Unreachable(f"{url!r} is not an http://, https:// or file:// URL")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> TileSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read(self, path: str) -> bytes:
        """The bytes at ``path`` (relative, e.g. ``tile/0/000``)."""
        if self._dir is not None:
            file = self._dir / path
            try:
                return file.read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
                raise NotFoundAnswer(f"{self.url} has no {path}") from exc
            except OSError as exc:
                raise Unreachable(f"cannot read {file}: {exc}") from exc
        assert self._client is not None
        try:
            response = self._client.get(f"{self.url}/{path}")
        except httpx.HTTPError as exc:
            raise Unreachable(f"cannot reach {self.url}: {exc or type(exc).__name__}") from exc
        if response.status_code == 404:
            raise NotFoundAnswer(f"{self.url} answered 404 for {path}")
        if not response.is_success:
            raise RefusedAnswer(f"{self.url} answered {response.status_code} for {path}", response.status_code)
        return response.content

    def checkpoint(self) -> str:
        """The checkpoint note as text (unverified)."""
        data = self.read("checkpoint")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedAnswer(f"{self.url}/checkpoint is not UTF-8 text") from exc

    def tile(self, level: int, index: int, width: int = TILE_WIDTH) -> bytes:
        """Hash tile bytes, exactly ``32 * width`` (a missing partial tile is cut from the full one)."""
        data = self._read_tile(Tile(level, index, width))
        if len(data) != 32 * width:
            raise MalformedAnswer(
                f"{self.url}/{tlog.tile_path(level, index, width)} is {len(data)} bytes, not {32 * width}"
            )
        return data

    def entry_bundle(self, index: int, width: int = TILE_WIDTH) -> list[bytes]:
        """The ``width`` entries of bundle ``index``, decoded (unverified)."""
        data = self._read_tile(Tile(tlog.ENTRIES_LEVEL, index, width))
        try:
            entries = tlog.decode_entry_bundle(data)
        except tlog.EntryBundleError as exc:
            raise MalformedAnswer(f"{self.url}/{tlog.entries_path(index, width)}: {exc}") from exc
        if len(entries) < width:
            raise MalformedAnswer(
                f"{self.url}/{tlog.entries_path(index, width)} holds {len(entries)} entries, not {width}"
            )
        return entries[:width]

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        """TileReader: each hash tile's bytes, so a `TiledTree` can compute roots and proofs."""
        return [self.tile(t.level, t.index, t.width) for t in tiles]

    def _read_tile(self, tile: Tile) -> bytes:
        try:
            return self.read(tile.path)
        except NotFoundAnswer:
            if tile.is_full:
                raise
        data = self.read(Tile(tile.level, tile.index).path)
        if tile.is_entries:
            return tlog.encode_entry_bundle(_decode(data, self.url, tile)[: tile.width])
        return data[: 32 * tile.width]


def _decode(data: bytes, url: str, tile: Tile) -> list[bytes]:
    try:
        return tlog.decode_entry_bundle(data)
    except tlog.EntryBundleError as exc:
        raise MalformedAnswer(f"{url}/{tile.path}: {exc}") from exc
