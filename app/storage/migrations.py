"""Schema changes a database created by an earlier pubtrail needs, applied at start-up.

`create_schema` creates missing tables but never alters existing ones. Each
function here brings one existing table to the current definition, is
idempotent (it looks before it changes anything), and runs under the same
write lock as `create_schema`, so several processes starting at once apply
it once. Only query tables are changed, never the log itself.

    release_file.exchange_log_index   NOT NULL -> NULL allowed: an upload made
                                      with a long-lived API token has no
                                      exchange (upload entry v2, auth api_token)
"""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

from app.storage.db import WRITE, is_sqlite
from app.storage.log_store import SCHEMA_LOCK_KEY
from app.storage.tables import ReleaseFile


def upgrade_schema(engine: Engine) -> list[str]:
    """Apply every pending change; the names of those applied (empty when none was needed)."""
    applied = []
    with engine.connect().execution_options(**WRITE) as conn, conn.begin():
        if not is_sqlite(engine):
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        columns = {c["name"]: c for c in inspect(conn).get_columns("release_file")}
        if not columns["exchange_log_index"]["nullable"]:
            _release_file_nullable_exchange(conn, sqlite=is_sqlite(engine))
            applied.append("release_file.exchange_log_index nullable")
    return applied


def _release_file_nullable_exchange(conn, *, sqlite: bool) -> None:
    if not sqlite:
        conn.execute(text("ALTER TABLE release_file ALTER COLUMN exchange_log_index DROP NOT NULL"))
        return
    # SQLite cannot drop NOT NULL: rebuild the table (DDL is transactional in SQLite)
    old_indexes = [i["name"] for i in inspect(conn).get_indexes("release_file") if i.get("name")]
    conn.execute(text("ALTER TABLE release_file RENAME TO release_file_before_api_tokens"))
    for name in old_indexes:  # index names must be free for the new table's
        conn.execute(text(f'DROP INDEX IF EXISTS "{name}"'))
    ReleaseFile.__table__.create(conn)
    names = ", ".join(f'"{c.name}"' for c in ReleaseFile.__table__.columns)
    conn.execute(text(f"INSERT INTO release_file ({names}) SELECT {names} FROM release_file_before_api_tokens"))
    conn.execute(text("DROP TABLE release_file_before_api_tokens"))
