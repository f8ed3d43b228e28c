"""A database created before API tokens (release_file.exchange_log_index NOT NULL) is upgraded
at start-up, rows and indexes kept, so API-token uploads can be stored there."""

from __future__ import annotations

from sqlalchemy import MetaData, inspect, insert, select

from app.storage.db import make_engine
from app.storage.log_store import create_schema
from app.storage.migrations import upgrade_schema
from app.storage.tables import ReleaseFile

ROW = dict(filename="demo-1.0.tar.gz", project="demo", version="1.0", packagetype="sdist", size=10, sha256="a" * 64,
           blake2b_256="b" * 64, requires_python=None, uploaded_at=1, log_index=5, token_id="t", exchange_log_index=4)


def _old_release_file(engine) -> None:
    """Replace release_file by its definition before API tokens, holding one row."""
    ReleaseFile.__table__.drop(engine)
    old = MetaData()
    table = ReleaseFile.__table__.to_metadata(old)
    table.c.exchange_log_index.nullable = False
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table).values(**ROW))


def test_release_file_of_an_older_database_takes_api_token_uploads(database_url):
    engine = make_engine(database_url)
    create_schema(engine)
    _old_release_file(engine)
    assert not {c["name"]: c for c in inspect(engine).get_columns("release_file")}["exchange_log_index"]["nullable"]
    assert upgrade_schema(engine) == ["release_file.exchange_log_index nullable"]
    assert upgrade_schema(engine) == []  # idempotent
    assert {c["name"]: c for c in inspect(engine).get_columns("release_file")}["exchange_log_index"]["nullable"]
    indexes = {i["name"] for i in inspect(engine).get_indexes("release_file")}
    assert {"ix_release_file_project_log_index", "ix_release_file_sha256"} <= indexes
    table = ReleaseFile.__table__
    with engine.begin() as conn:
        assert [tuple(r) for r in conn.execute(select(table.c.filename, table.c.exchange_log_index))] == [
            ("demo-1.0.tar.gz", 4)]
        conn.execute(insert(table).values(**{**ROW, "filename": "demo-1.1.tar.gz", "sha256": "c" * 64,
                                             "log_index": 7, "exchange_log_index": None}))
    engine.dispose()
