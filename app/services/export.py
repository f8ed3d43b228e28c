"""Static export: the log as a directory of C2SP tlog-tiles files any static host can serve.

`export_log(reader, directory)` writes, under `directory`::

    checkpoint                       the latest signed checkpoint (written last)
    tile/<L>/<N>[.p/<W>]             hash tiles, as stored
    tile/entries/<N>[.p/<W>]         entry bundles (app.tlog.encode_entry_bundle)
    tile/entries/<N>[.p/<W>].gz      the same bundle gzip-compressed, for hosts
                                     that serve precompressed files
                                     (nginx `gzip_static`, object stores with
                                     Content-Encoding metadata)

`publish(reader, directory, witnessing)` is what `pubtrail export` and the
scheduled export run: it exports the checkpoint the log's `/checkpoint`
serves (with witnesses, the newest witnessed one).

Incremental: the checkpoint already in the directory says which tiles it
holds; only tiles and bundles of the new size that the old one lacked (new
full tiles, new or wider partial ones), or that are missing on disk, are
written. Old partial tiles stay: a tile path never changes its bytes, so a
cache or client holding one is never wrong.

Every file is written to a temporary name, flushed to disk and renamed into
place, so a reader sees either no file or the whole file. Before the new
checkpoint replaces the old one, the export checks what the directory now
holds against it: the root recomputed from the tiles on disk must be the
checkpoint's, and every bundle written must hash, entry by entry, to the
leaves of its level-0 tile. Readers following the old checkpoint meanwhile
find everything they need: nothing they use is removed or changed.

An existing checkpoint must be this log's (signed with its key, naming its
origin) and a prefix of it (its root equals the log's root at its size);
otherwise the export refuses (`ExportError`) without writing anything.
One export at a time per directory (an advisory lock on `.pubtrail-export.lock`).
"""

from __future__ import annotations

import fcntl
import gzip
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from app import tlog
from app.errors import PubtrailError
from app.services.log_reader import LogReader
from app.services.witnessing import Witnessing
from app.tlog import Tile

LOCK_FILE = ".pubtrail-export.lock"
GZIP_LEVEL = 6


class ExportError(PubtrailError):
    """The directory cannot take this log's export (another log's, or a larger or forked one)."""


@dataclass(frozen=True)
class ExportResult:
    """What one export did: the sizes before and after, and what it wrote."""

    previous_size: int
    size: int
    tiles_written: int
    bundles_written: int
    bytes_written: int

    def summary(self) -> str:
        if self.previous_size == self.size and not (self.tiles_written or self.bundles_written):
            return f"up to date at size {self.size}"
        return (
            f"exported size {self.size} (was {self.previous_size}): {self.tiles_written} tiles, "
            f"{self.bundles_written} entry bundles, {self.bytes_written} bytes"
        )


def export_log(
    reader: LogReader, directory: Path, *, gzip_bundles: bool = True, note: str | None = None
) -> ExportResult:
    """Bring `directory` up to a signed checkpoint of the log (see the module docstring).

    `note` is the checkpoint to publish, as the log's `/checkpoint` serves it
    (with witnesses: the latest witnessed one, cosignature lines included); by
    default the latest checkpoint. It must verify with the log's key, and its
    root must be the log's root at its size (ExportError otherwise)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory):
        return _export(reader, directory, gzip_bundles, note)


def publish(
    reader: LogReader, directory: Path, witnessing: Witnessing | None = None, *, gzip_bundles: bool = True
) -> ExportResult | None:
    """Bring `directory` up to the checkpoint the log's `/checkpoint` serves, as `pubtrail export` and
    the scheduled export (`PUBTRAIL_EXPORT_DIR`) both do.

    With witnesses (`witnessing`, from `PUBTRAIL_WITNESSES`), that is the
    newest checkpoint with the cosignatures `PUBTRAIL_WITNESSES_REQUIRED`
    asks for, its cosignature lines included, so clients that insist on
    witnesses can follow the static copy; None (nothing written) until
    there is one. Without: the latest signed checkpoint."""
    note = None
    if witnessing is not None:
        note = witnessing.witnessed()
        if note is None:
            return None
    return export_log(reader, directory, gzip_bundles=gzip_bundles, note=note)


def _export(reader: LogReader, directory: Path, gzip_bundles: bool, note: str | None) -> ExportResult:
    latest = _to_publish(reader, note)
    size = latest.size
    previous = _previous_size(reader, directory, size)
    before_tiles = set(tlog.tiles_for_size(previous))
    before_bundles = set(tlog.entry_bundles_for_size(previous))
    tiles = [t for t in tlog.tiles_for_size(size) if t not in before_tiles or not (directory / t.path).is_file()]
    bundles = [
        b for b in tlog.entry_bundles_for_size(size) if b not in before_bundles or not (directory / b.path).is_file()
    ]
    written = 0
    for tile in tiles:
        data = reader.tile(tile.level, tile.index, tile.width)
        written += _write_atomic(directory / tile.path, data)
    disk = _DirectoryTiles(directory)
    for bundle in bundles:
        data = reader.entry_bundle(bundle.index, bundle.width)
        _check_bundle(bundle, data, disk.read_tiles([Tile(0, bundle.index, bundle.width)])[0])
        written += _write_atomic(directory / bundle.path, data)
        if gzip_bundles:
            written += _write_atomic(
                directory / (bundle.path + ".gz"), gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
            )
    root = tlog.TiledTree(disk, cache_size=64).root(size) if size else tlog.EMPTY_ROOT
    if root != latest.root_hash:
        raise ExportError(
            f"the tiles in {directory} give root {root.hex()} at size {size}, not the checkpoint's "
            f"{latest.root_hash.hex()}; the checkpoint was not replaced"
        )
    checkpoint = directory / "checkpoint"
    if not checkpoint.is_file() or checkpoint.read_text(encoding="utf-8") != latest.note:
        written += _write_atomic(checkpoint, latest.note.encode("utf-8"))
    return ExportResult(previous, size, len(tiles), len(bundles), written)


@dataclass(frozen=True)
class _Published:
    size: int
    root_hash: bytes
    note: str


def _to_publish(reader: LogReader, note: str | None) -> _Published:
    if note is None:
        latest = reader.latest(fresh=True)
        return _Published(latest.size, latest.root_hash, latest.note)
    try:
        checkpoint = tlog.open_checkpoint(note, [tlog.note.Verifier(reader.verifier_key)], origin=reader.origin)
    except tlog.TlogError as exc:
        raise ExportError(f"the checkpoint to publish is not one of {reader.origin} signed with its key: {exc}") from exc
    reader.checkpoint_at(checkpoint.size)  # NotFound beyond the log
    if reader.root(checkpoint.size) != checkpoint.root_hash:
        raise ExportError(f"the checkpoint to publish at size {checkpoint.size} is not this log's: its root differs")
    return _Published(checkpoint.size, checkpoint.root_hash, note)


def _previous_size(reader: LogReader, directory: Path, size: int) -> int:
    """The size of the checkpoint already exported to `directory` (0 if none), checked to be this log's prefix."""
    path = directory / "checkpoint"
    if not path.exists():
        return 0
    try:
        text = path.read_text(encoding="utf-8")
        old = tlog.open_checkpoint(text, [tlog.note.Verifier(reader.verifier_key)], origin=reader.origin)
    except (tlog.TlogError, UnicodeDecodeError, ValueError) as exc:
        raise ExportError(f"{path} is not a checkpoint of {reader.origin} signed with this log's key: {exc}") from exc
    if old.size > size:
        raise ExportError(f"{path} is at size {old.size}, beyond this log's {size}: another copy of the log?")
    if reader.root(old.size) != old.root_hash:
        raise ExportError(f"{path} at size {old.size} is not a prefix of this log: its root differs")
    return old.size


def _check_bundle(bundle: Tile, data: bytes, level0: bytes) -> None:
    entries = tlog.decode_entry_bundle(data)
    leaves = b"".join(tlog.leaf_hash(entry) for entry in entries)
    if len(entries) != bundle.width or leaves != level0:
        raise ExportError(f"{bundle.path} does not hash to the leaves of its level-0 tile; nothing was published")


class _DirectoryTiles:
    """TileReader over the exported files: the check reads what a static client will read."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        out = []
        for tile in tiles:
            try:
                out.append((self.directory / tile.path).read_bytes())
            except FileNotFoundError as exc:
                raise ExportError(f"{tile.path} is missing from {self.directory}") from exc
        return out


def _write_atomic(path: Path, data: bytes) -> int:
    """Write `data` to `path` through a flushed temporary file and a rename; return its length."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    return len(data)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    with open(directory / LOCK_FILE, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ExportError(f"another export into {directory} is running") from exc
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
