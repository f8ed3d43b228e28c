"""The witness's memory: per origin, the size and root hash of the latest checkpoint it cosigned.

Stored in one SQLite file. :meth:`WitnessState.advance` checks a request
against the stored state and records the new checkpoint in one ``BEGIN
IMMEDIATE`` transaction, so two requests (threads or processes) can never both
move the state from one size, and a restart resumes from what was committed
before any cosignature left the witness.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.tlog import EMPTY_ROOT, ProofError, verify_consistency


class Conflict(Exception):
    """The request's old size is not the latest cosigned size (``known``), or the same size has another root."""

    def __init__(self, known: int, message: str) -> None:
        super().__init__(message)
        self.known = known


class BadProof(Exception):
    """The consistency proof does not lead from the stored root to the checkpoint's root."""


@dataclass(frozen=True)
class Head:
    size: int
    root_hash: bytes


class WitnessState:
    """SQLite-backed state at ``path`` (created if missing)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # one request at a time on the one connection
        self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS witnessed_log "
            "(origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root_hash BLOB NOT NULL)"
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def latest(self, origin: str) -> Head:
        """The latest cosigned head of ``origin`` (size 0 and the empty root if none)."""
        with self._lock:
            row = self._conn.execute("SELECT size, root_hash FROM witnessed_log WHERE origin = ?", (origin,)).fetchone()
        return Head(row[0], bytes(row[1])) if row else Head(0, EMPTY_ROOT)

    def advance(
        self, origin: str, old_size: int, proof: Sequence[bytes], new: Head, cosign: Callable[[], str]
    ) -> str:
        """Move ``origin`` from ``old_size`` to ``new`` if ``proof`` shows they are consistent; return ``cosign()``.

        ``cosign`` runs inside the transaction, after every check and before the
        commit; nothing is recorded if it raises. Raises :class:`Conflict` or
        :class:`BadProof`.
        """
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                row = conn.execute(
                    "SELECT size, root_hash FROM witnessed_log WHERE origin = ?", (origin,)
                ).fetchone()
                known = Head(row[0], bytes(row[1])) if row else Head(0, EMPTY_ROOT)
                if old_size != known.size:
                    raise Conflict(known.size, f"old size {old_size} is not the latest cosigned size {known.size}")
                if new.size == known.size:
                    if proof:
                        raise BadProof("a proof between equal sizes must be empty")
                    if row is not None and new.root_hash != known.root_hash:
                        raise Conflict(known.size, f"size {new.size} was cosigned with another root hash")
                    if row is None and new.size == 0 and new.root_hash != EMPTY_ROOT:
                        raise BadProof("a tree of size 0 has the empty root")
                elif known.size == 0:
                    if proof:
                        raise BadProof("the proof from size 0 must be empty")
                else:
                    try:
                        verify_consistency(known.size, new.size, list(proof), known.root_hash, new.root_hash)
                    except ProofError as exc:
                        raise BadProof(str(exc)) from exc
                line = cosign()
                conn.execute(
                    "INSERT INTO witnessed_log (origin, size, root_hash) VALUES (?, ?, ?) "
                    "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root_hash = excluded.root_hash",
                    (origin, new.size, new.root_hash),
                )
                conn.execute("COMMIT")
                return line
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
