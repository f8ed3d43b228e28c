"""Secrets and the data folder are private from the moment they are created."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from app.config import Settings
from app.keys import write_new_key
from app.runtime import build_runtime, dev_issuer_for

from tests.conftest import ADMIN_TOKEN, ORIGIN


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask():
    """The common umask 022 (files 0644, folders 0755 unless pubtrail says otherwise)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def no_chmod(monkeypatch):
    """A mode set after creation leaves a window where the file is readable: forbid it."""

    def refuse(*args, **kwargs):
        raise AssertionError("a private file must be created with its mode, not chmod-ed later")

    monkeypatch.setattr(os, "chmod", refuse)
    monkeypatch.setattr(Path, "chmod", refuse)


def test_dev_issuer_key_is_created_0600(tmp_path, no_chmod):
    settings = Settings(data_dir=tmp_path, origin=ORIGIN, dev=True)
    issuer = dev_issuer_for(settings)
    key_file = tmp_path / "dev-oidc.pem"
    assert mode(key_file) == 0o600
    assert dev_issuer_for(settings).kid == issuer.kid  # kept across restarts


def test_signing_key_and_its_new_folder_are_private(tmp_path, no_chmod):
    key_file = tmp_path / "data" / "log-signing.key"
    write_new_key(key_file, ORIGIN)
    assert mode(key_file) == 0o600
    assert mode(key_file.parent) == 0o700


def test_fresh_data_folder_database_and_files_are_private(tmp_path, no_chmod):
    key_file = tmp_path / "keys" / "log-signing.key"
    write_new_key(key_file, ORIGIN)
    data_dir = tmp_path / "data"
    settings = Settings(
        data_dir=data_dir, origin=ORIGIN, signing_key_file=key_file, admin_token=ADMIN_TOKEN, dev=True
    )
    runtime = build_runtime(settings)
    try:
        runtime.log.sequencer.append_batch_sync([("test", b"an entry")])  # the WAL now exists
        assert mode(data_dir) == 0o700
        database = data_dir / "pubtrail.sqlite3"
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            assert mode(path) == 0o600, path
        assert mode(data_dir / "files") == 0o700
        assert mode(data_dir / "dev-oidc.pem") == 0o600
    finally:
        runtime.close()


def test_sqlite_database_outside_the_data_folder_is_0600(tmp_path, make_settings):
    database = tmp_path / "elsewhere" / "log.sqlite3"
    runtime = build_runtime(make_settings(database_url=f"sqlite:///{database}"))
    try:
        assert mode(database) == 0o600
        assert mode(database.parent) == 0o700
    finally:
        runtime.close()


def test_existing_data_folder_keeps_the_operators_mode(tmp_path, make_settings):
    data_dir = tmp_path / "shared"
    data_dir.mkdir(mode=0o750)
    runtime = build_runtime(make_settings(data_dir=data_dir))
    runtime.close()
    assert mode(data_dir) == 0o750
