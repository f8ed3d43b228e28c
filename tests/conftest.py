"""Shared fixtures: settings with a fresh signing key, and databases.

PostgreSQL tests run when PUBTRAIL_TEST_DATABASE_URL is set (CI sets it to
postgresql+psycopg://postgres@127.0.0.1:5432/test); otherwise they skip and
say how to enable them. Each PostgreSQL test starts from empty tables.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.config import Settings
from app.keys import write_new_key

ORIGIN = "test.pubtrail.local/log"
ADMIN_TOKEN = "test-admin-token-0123456789abcdefghijklmnop"
PG_ENV = "PUBTRAIL_TEST_DATABASE_URL"


def reset_postgres(url: str) -> None:
    """Drop every pubtrail table in the PostgreSQL database at `url`."""
    from sqlalchemy import create_engine
    from sqlmodel import SQLModel

    import app.storage.tables  # noqa: F401

    engine = create_engine(url)
    try:
        SQLModel.metadata.drop_all(engine)
    finally:
        engine.dispose()


def postgres_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> str:
    """Each test using this runs once on a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite3'}"
    url = postgres_url()
    reset_postgres(url)
    return url


@pytest.fixture
def make_settings(tmp_path: Path):
    """Build Settings for a data folder under tmp_path with a fresh signing key."""

    def build(**overrides) -> Settings:
        data_dir = overrides.pop("data_dir", tmp_path / "data")
        key_file = data_dir / "log-signing.key"
        if not key_file.exists():
            write_new_key(key_file, overrides.get("origin", ORIGIN))
        base = dict(
            data_dir=data_dir,
            origin=ORIGIN,
            signing_key_file=key_file,
            admin_token=ADMIN_TOKEN,
            batch_window=0.002,
        )
        base.update(overrides)
        return Settings(**base)

    return build


@pytest.fixture
def settings(make_settings, database_url) -> Settings:
    return make_settings(database_url=database_url)
