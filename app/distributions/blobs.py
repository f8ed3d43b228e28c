"""Content-addressed store for distribution files.

Layout under ``root``::

    root/tmp/                       spool directory (uploads being received)
    root/sha256/ab/cd/abcd...       one file per distinct content, named by
                                    its lowercase hex SHA-256

A file appears under its final name only through :func:`fsync_and_rename`:
the bytes are fsynced, ``os.replace`` moves them into place atomically, and
the directory is fsynced so the rename itself survives a crash. A crash at
any point leaves either nothing or the complete file under the final name;
at worst a stray ``root/tmp/*.part`` file, which :meth:`BlobStore.sweep_spool`
removes.

Reuse and deletion exclude each other through ``root/blobs.lock``, an
advisory ``flock`` that works across every server process sharing the data
folder: :meth:`BlobStore.commit` holds it shared while it decides whether a
file is already stored (and touches it, or moves the new one in);
:meth:`BlobStore.remove_unreferenced` holds it exclusively while it re-reads
the file's modification time, asks whether an entry references it, and
deletes it. An upload commits its file before appending its entry, so the
collector sees either a file just touched (too young: kept) or none at all
(the upload then stores its own copy); it never deletes a file that an entry
about to be appended names.
"""

from __future__ import annotations

import fcntl
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from app.distributions.form import StagedFile

__all__ = ["BlobStore", "InvalidDigest", "fsync_and_rename"]

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class InvalidDigest(ValueError):
    """A string that is not 64 lowercase hex characters was used as a blob name."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_and_rename(source: Path, target: Path) -> None:
    """Durably move ``source`` to ``target`` (same filesystem).

    fsync the file's data, ``os.replace`` it onto ``target`` (atomic on
    POSIX: readers see the old name or the complete new file, never a
    partial one), then fsync the target directory so the new directory entry
    is on disk before we return.
    """
    _fsync_file(source)
    os.replace(source, target)
    _fsync_dir(target.parent)


class BlobStore:
    """Distribution files on a local filesystem, addressed by SHA-256.

    ``spool_dir`` is where :func:`~app.distributions.form.parse_upload_form`
    must write (it is inside ``root``, hence on the same filesystem, so
    :meth:`commit` is a rename, never a copy).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.spool_dir = self.root / "tmp"
        self._objects = self.root / "sha256"
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._objects.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.root / "blobs.lock"

    @contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        """Hold ``root/blobs.lock`` (``fcntl.LOCK_SH`` or ``LOCK_EX``) for the block.

        Each hold opens its own descriptor: flock belongs to the open file
        description, so two threads sharing one descriptor would convert each
        other's lock instead of waiting for it.
        """
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # releases the lock

    def path_for(self, sha256: str) -> Path:
        """Where the blob with this digest lives (whether or not it exists).

        Raises :class:`InvalidDigest` unless ``sha256`` is exactly 64
        lowercase hex characters, so no caller-supplied string can steer the
        path (``..``, ``/``, NUL).
        """
        if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
            raise InvalidDigest(f"not a lowercase hex sha256: {sha256!r}")
        return self._objects / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        """Open the blob for reading; ``FileNotFoundError`` if absent."""
        return open(self.path_for(sha256), "rb")  # noqa: SIM115 - caller closes

    def commit(self, staged: StagedFile) -> Path:
        """Move a staged upload to its content address and return the path.

        Idempotent: if a blob with the same digest is already stored, the
        staged copy is discarded, the stored file's modification time set to
        now (so :meth:`remove_unreferenced` treats it as young while its
        entry is appended) and its path returned. The decision is taken under
        the shared store lock (see the module docstring). The staged file
        must be in :attr:`spool_dir` (same filesystem). Its digest is trusted
        as computed while it was written; the file is not re-read.
        Blocking (fsync): call it from a worker thread.
        """
        target = self.path_for(staged.sha256)
        synced = False
        if not target.is_file():  # a hint only: the decision is taken under the lock
            _fsync_file(staged.path)  # the slow part, before taking the lock
            synced = True
        with self._locked(fcntl.LOCK_SH):
            if target.is_file():
                staged.discard()
                os.utime(target)
                return target
            if not target.parent.is_dir():
                target.parent.mkdir(parents=True, exist_ok=True)
                # A new fan-out directory must itself be durable in its parent.
                _fsync_dir(target.parent.parent)
                _fsync_dir(self._objects)
            if not synced:
                _fsync_file(staged.path)
            os.replace(staged.path, target)
            _fsync_dir(target.parent)
        return target

    def stored(self) -> Iterator[tuple[str, float]]:
        """Every stored blob as (sha256, modification time)."""
        for path in self._objects.glob("??/??/*"):
            if len(path.name) == 64 and path.is_file():
                try:
                    yield path.name, path.stat().st_mtime
                except FileNotFoundError:
                    continue

    def remove_unreferenced(self, sha256: str, cutoff: float, referenced: Callable[[str], bool]) -> bool:
        """Delete a stored blob last modified before Unix time ``cutoff`` that
        ``referenced(sha256)`` says no entry names; True if it was deleted.

        Runs under the exclusive store lock and re-reads the modification
        time there, so a :meth:`commit` that reused the file after the caller
        listed it (its entry not yet appended, hence not yet referenced) wins:
        the file is kept. ``cutoff`` must come from the same clock as file
        times (the system's) and lie well before the oldest upload that may
        still be between its commit and its entry.
        """
        path = self.path_for(sha256)
        with self._locked(fcntl.LOCK_EX):
            try:
                if path.stat().st_mtime >= cutoff:
                    return False
            except FileNotFoundError:
                return False
            if referenced(sha256):
                return False
            path.unlink(missing_ok=True)
        return True

    def remove(self, sha256: str) -> bool:
        """Delete a stored blob unconditionally; False if it was not there.
        Not for garbage collection: use :meth:`remove_unreferenced`."""
        try:
            self.path_for(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    def sweep_spool(self, older_than_seconds: float, now: float) -> int:
        """Delete spool files older than the given age at Unix time `now`
        (leftovers of crashed or killed requests). Returns how many were removed."""
        cutoff = now - older_than_seconds
        removed = 0
        for entry in self.spool_dir.iterdir():
            try:
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
