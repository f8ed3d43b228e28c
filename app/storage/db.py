"""Engine construction for SQLite (default) and PostgreSQL.

SQLite is opened in WAL mode with `synchronous=FULL`, so a committed
transaction survives power loss, and with pysqlite's implicit transactions
turned off so that pubtrail decides how each transaction begins: writers that
open a connection with `execution_options(pubtrail_write=True)` get
`BEGIN IMMEDIATE`, which takes SQLite's single write lock up front (the
database, not the process, enforces one writer at a time).

The WAL is checkpointed into the database file every `WAL_AUTOCHECKPOINT_PAGES`
pages (SQLite's default is 1,000 pages, about 4 MB: with the log's random
leaf-hash index a batch of a few hundred entries dirties hundreds of pages, so
the default made every few commits also copy and fsync the WAL back; one
checkpoint per 10,000 pages writes each hot page once instead of many times).
`journal_size_limit` truncates the WAL file after a checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection

from app.private_files import ensure_private_file, make_private_dir

WAL_AUTOCHECKPOINT_PAGES = 10_000
WAL_SIZE_LIMIT = 64 * 1024 * 1024

WRITE = {"pubtrail_write": True}
"""Execution options for a connection that will write the log."""


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """Create an engine for `url` with pubtrail's durability and locking settings.

    A SQLite database file that does not exist yet is created with mode 0600
    (its folder, if created, 0700).
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        if path and path != ":memory:":
            # SQLite gives its -wal and -shm files the database file's mode
            make_private_dir(Path(path).parent)
            ensure_private_file(Path(path))
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=16,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=16, pool_pre_ping=True)


def _sqlite_on_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_on_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    if conn.get_execution_options().get("pubtrail_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")
