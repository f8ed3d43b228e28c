"""LogStore: the database side of the log (entries, tiles, checkpoints, state).

The store knows nothing about hashing or signing; it keeps bytes and answers
queries. The sequencer calls `lock_state` and `write_batch` inside one write
transaction; readers call the other methods, each on a short connection of
its own. Tiles are kept at their widest version only (`LogTile`); a request
for a narrower partial tile is answered with the matching prefix.
"""

from __future__ import annotations

import fcntl
import os

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator, NamedTuple, Sequence

from sqlalchemy import Engine, and_, bindparam, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from app.storage.db import WRITE, is_sqlite
from app.storage.tables import LogEntry, LogState, LogTile, SignedCheckpoint
from app.tlog import HASH_SIZE, Tile, TileError


_entries = LogEntry.__table__
_tiles = LogTile.__table__
_checkpoints = SignedCheckpoint.__table__
_state = LogState.__table__
_ENTRIES_AT = select(_entries).where(_entries.c.index.in_(bindparam("indexes", expanding=True)))


def _tile_upsert(dialect):
    insert = dialect.insert(_tiles)
    return insert.on_conflict_do_update(
        index_elements=[_tiles.c.level, _tiles.c.index],
        set_={"width": insert.excluded.width, "data": insert.excluded.data},
    )


# built once: constructing these per batch cost more than executing some of them
_TILE_UPSERT_SQLITE = _tile_upsert(sqlite)
_TILE_UPSERT_POSTGRES = _tile_upsert(postgresql)
_CHECKPOINT_INSERT = _checkpoints.insert()
_STATE_UPDATE = (
    update(_state)
    .where(_state.c.id == 1)
    .values(size=bindparam("new_size"), root_hash=bindparam("new_root"))
)
_ENTRY_COLUMNS = '"index", kind, leaf_hash, data, logged_at'
_ENTRY_INSERT_SQLITE = f"INSERT INTO {_entries.name} ({_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
_ENTRY_COPY_POSTGRES = f"COPY {_entries.name} ({_ENTRY_COLUMNS}) FROM STDIN (FORMAT BINARY)"


@dataclass(frozen=True)
class StoredState:
    origin: str
    size: int
    root_hash: bytes


@dataclass(frozen=True)
class StoredEntry:
    index: int
    kind: str
    leaf_hash: bytes
    data: bytes
    logged_at: int


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root_hash: bytes
    note: str
    signed_at: int


class NewEntry(NamedTuple):
    kind: str
    leaf_hash: bytes
    data: bytes
    logged_at: int


SCHEMA_LOCK_KEY = 0x7075627472616C  # "pubtral": PostgreSQL advisory lock held while creating tables


def create_schema(engine: Engine) -> None:
    """Create every table that does not exist yet (idempotent, safe when several
    processes start at once on one database).

    The existence checks and the CREATEs run in one transaction that holds the
    database's write lock from its start: SQLite `BEGIN IMMEDIATE` (a deferred
    transaction that reads then writes fails at once with "database is locked"
    when another process wrote in between), PostgreSQL a transaction-scoped
    advisory lock (concurrent `CREATE TABLE`s otherwise collide on `pg_type`).
    """
    import app.storage.tables  # noqa: F401  (registers the tables)

    with engine.connect().execution_options(**WRITE) as conn, conn.begin():
        if not is_sqlite(engine):
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        SQLModel.metadata.create_all(conn)


class LogStore:
    """Reads and writes the log's tables through `engine`."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sqlite = is_sqlite(engine)
        self._latest: StoredCheckpoint | None = None
        self._latest_at = 0.0
        self._latest_lock = threading.Lock()
        database = engine.url.database if self._sqlite else None
        self._lock_path = f"{database}-writer.lock" if database and database != ":memory:" else None
        self._lock_fd: int | None = None

    # --- writing (inside the sequencer's transaction) --------------------------

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A connection whose transactions take the database's write lock at BEGIN.

        On SQLite, the connection is also held under an exclusive `flock` on a
        file beside the database. Writers in other processes then queue in the
        kernel and wake the moment it is released, instead of polling SQLite's
        busy handler (which sleeps up to 100 ms between tries). The flock
        excludes other processes only (threads share this store's descriptor);
        within a process the sequencer's own lock serialises writers.
        """
        with self._writer_flock(), self.engine.connect().execution_options(**WRITE) as conn:
            yield conn

    def close(self) -> None:
        """Release the writer lock file's descriptor (the engine is the caller's to dispose)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextmanager
    def _writer_flock(self) -> Iterator[None]:
        if self._lock_path is None:
            yield
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def lock_state(self, conn: Connection) -> StoredState | None:
        """Read the log state row, locking it until the transaction ends."""
        return _read_state(conn, lock=not self._sqlite)

    @property
    def is_sqlite(self) -> bool:
        return self._sqlite

    def lock_state_table(self, conn: Connection) -> None:
        """PostgreSQL: lock the state table against other writers until the transaction ends
        (used only when creating the log, when there is no row to lock yet)."""
        if not self._sqlite:
            conn.execute(text(f"LOCK TABLE {_state.name} IN SHARE ROW EXCLUSIVE MODE"))

    def create_state(self, conn: Connection, origin: str, root_hash: bytes) -> None:
        conn.execute(_state.insert().values(id=1, origin=origin, size=0, root_hash=root_hash))

    def write_batch(
        self,
        conn: Connection,
        *,
        first_index: int,
        entries: Sequence[NewEntry],
        tiles: Iterable[tuple[Tile, bytes]],
        new_size: int,
        new_root: bytes,
        checkpoint_note: str,
        signed_at: int,
    ) -> None:
        """Write a batch's entries, changed tiles, signed checkpoint and new state."""
        if entries:
            rows = [(first_index + offset, *entry) for offset, entry in enumerate(entries)]
            self._insert_entries(conn, rows)
        tile_rows = [
            {"level": tile.level, "index": tile.index, "width": tile.width, "data": data}
            for tile, data in tiles
        ]
        if tile_rows:
            conn.execute(_TILE_UPSERT_SQLITE if self._sqlite else _TILE_UPSERT_POSTGRES, tile_rows)
        conn.execute(
            _CHECKPOINT_INSERT,
            {"size": new_size, "root_hash": new_root, "note": checkpoint_note, "signed_at": signed_at},
        )
        conn.execute(_STATE_UPDATE, {"new_size": new_size, "new_root": new_root})

    def _insert_entries(self, conn: Connection, rows: list[tuple]) -> None:
        """Insert entry rows `(index, kind, leaf_hash, data, logged_at)` with the
        driver's fastest bulk path: PostgreSQL binary COPY, SQLite executemany.
        Both run inside `conn`'s transaction (the SQLAlchemy Core insert costs
        several microseconds per row in parameter processing alone)."""
        dbapi = conn.connection.dbapi_connection
        if self._sqlite:
            cursor = dbapi.cursor()
            try:
                cursor.executemany(_ENTRY_INSERT_SQLITE, rows)
            finally:
                cursor.close()
            return
        with dbapi.cursor() as cursor:
            with cursor.copy(_ENTRY_COPY_POSTGRES) as copy:
                copy.set_types(["int8", "text", "bytea", "bytea", "int8"])
                for row in rows:
                    copy.write_row(row)

    # --- reading ------------------------------------------------------------------

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        """TileReader: each requested tile's hashes, exactly `width * 32` bytes.

        Raises TileError if a tile is missing or narrower than requested.
        """
        if not tiles:
            return []
        by_level: dict[int, set[int]] = {}
        for tile in tiles:
            by_level.setdefault(tile.level, set()).add(tile.index)
        # one primary-key lookup per level: SQLite answers a row-value
        # `(level, index) IN (...)` with a scan of the whole tile table
        where = or_(
            *(
                and_(_tiles.c.level == level, _tiles.c.index.in_(sorted(indexes)))
                for level, indexes in sorted(by_level.items())
            )
        )
        with self.engine.connect() as conn:
            rows = conn.execute(select(_tiles.c.level, _tiles.c.index, _tiles.c.data).where(where)).all()
        found = {(row.level, row.index): bytes(row.data) for row in rows}
        out = []
        for tile in tiles:
            data = found.get((tile.level, tile.index))
            need = tile.width * HASH_SIZE
            if data is None or len(data) < need:
                raise TileError(f"tile {tile.path} is not in storage")
            out.append(data[:need])
        return out

    def read_tile(self, level: int, index: int, width: int) -> bytes | None:
        """One tile's bytes at `width`, or None if the log has not reached it."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(_tiles.c.width, _tiles.c.data).where(
                    _tiles.c.level == level, _tiles.c.index == index
                )
            ).first()
        if row is None or row.width < width:
            return None
        return bytes(row.data[: width * HASH_SIZE])

    def state(self) -> StoredState | None:
        with self.engine.connect() as conn:
            return _read_state(conn, lock=False)

    def entry(self, index: int) -> StoredEntry | None:
        entries = self.entries(index, index + 1)
        return entries[0] if entries else None

    def entries(self, start: int, stop: int) -> list[StoredEntry]:
        """Entries with start <= index < stop, in index order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_entries)
                .where(_entries.c.index >= start, _entries.c.index < stop)
                .order_by(_entries.c.index)
            ).all()
        return [
            StoredEntry(r.index, r.kind, bytes(r.leaf_hash), bytes(r.data), r.logged_at) for r in rows
        ]

    def entries_at(self, indexes: Sequence[int]) -> dict[int, StoredEntry]:
        """The stored entries at `indexes` (any order), by index; missing ones are absent."""
        if not indexes:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(_ENTRIES_AT, {"indexes": list(indexes)}).all()
        return {
            r.index: StoredEntry(r.index, r.kind, bytes(r.leaf_hash), bytes(r.data), r.logged_at) for r in rows
        }

    def iter_entries(self, stop: int, chunk: int = 10_000):
        """Entries 0 <= index < stop in index order, read `chunk` rows at a time."""
        start = 0
        while start < stop:
            rows = self.entries(start, min(start + chunk, stop))
            if not rows:
                return
            yield from rows
            start = rows[-1].index + 1

    def all_tiles(self) -> list[tuple[int, int, int, bytes]]:
        """Every stored hash tile row as `(level, index, width, data)`, by level and index."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_tiles.c.level, _tiles.c.index, _tiles.c.width, _tiles.c.data).order_by(
                    _tiles.c.level, _tiles.c.index
                )
            ).all()
        return [(row.level, row.index, row.width, bytes(row.data)) for row in rows]

    def all_checkpoints(self) -> list[StoredCheckpoint]:
        """Every stored checkpoint, by size."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(_checkpoints).order_by(_checkpoints.c.size)).all()
        return [StoredCheckpoint(r.size, bytes(r.root_hash), r.note, r.signed_at) for r in rows]

    def entry_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(_entries)).scalar_one()

    def index_of_leaf_hash(self, leaf_hash: bytes, below: int) -> int | None:
        """The smallest index below `below` whose leaf hash is `leaf_hash`."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.min(_entries.c.index)).where(
                    _entries.c.leaf_hash == leaf_hash, _entries.c.index < below
                )
            ).scalar_one_or_none()

    def latest_checkpoint(self, max_age: float = 0.0) -> StoredCheckpoint | None:
        """The latest checkpoint, from a process-wide cache if it was read or
        published at most `max_age` seconds ago, else from the database.

        A cached checkpoint is still one the log signed, only possibly not the
        newest: another process may have appended since (this process's own
        sequencer publishes every checkpoint it commits, see `published`).
        """
        cached = self._latest
        if cached is not None and max_age > 0 and time.monotonic() - self._latest_at <= max_age:
            return cached
        fresh = self.checkpoint()
        if fresh is not None:
            self.published(fresh)
        return fresh

    def published(self, checkpoint: StoredCheckpoint) -> None:
        """Record a checkpoint that is committed (never call it before the commit)."""
        with self._latest_lock:
            if self._latest is None or checkpoint.size >= self._latest.size:
                self._latest = checkpoint
                self._latest_at = time.monotonic()

    def checkpoint(self, size: int | None = None) -> StoredCheckpoint | None:
        """The checkpoint signed at `size`, or the latest one when size is None."""
        query = select(_checkpoints)
        if size is None:
            query = query.order_by(_checkpoints.c.size.desc()).limit(1)
        else:
            query = query.where(_checkpoints.c.size == size)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return StoredCheckpoint(row.size, bytes(row.root_hash), row.note, row.signed_at)


def _read_state(conn: Connection, *, lock: bool) -> StoredState | None:
    query = select(_state.c.origin, _state.c.size, _state.c.root_hash).where(_state.c.id == 1)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return StoredState(row.origin, row.size, bytes(row.root_hash)) if row else None
