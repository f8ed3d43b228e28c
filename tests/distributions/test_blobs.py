"""BlobStore: content addressing, idempotent commit, path safety."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from app.distributions.blobs import BlobStore, InvalidDigest, fsync_and_rename
from app.distributions.form import parse_upload_form
from tests.distributions.builders import chunked, encode, twine_fields


def stage(store: BlobStore, data: bytes):
    body, ctype = encode(twine_fields("demo_pkg-1.0.tar.gz", data))
    form = asyncio.run(parse_upload_form(chunked(body), ctype, max_file_size=1 << 20, spool_dir=store.spool_dir))
    return form.file


def test_commit_moves_to_content_address(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    staged = stage(store, b"hello wheel")
    digest = hashlib.sha256(b"hello wheel").hexdigest()
    path = store.commit(staged)
    assert path == tmp_path / "blobs" / "sha256" / digest[:2] / digest[2:4] / digest
    assert path.read_bytes() == b"hello wheel"
    assert not staged.path.exists()
    assert store.exists(digest)
    with store.open(digest) as fh:
        assert fh.read() == b"hello wheel"
    assert list(store.spool_dir.iterdir()) == []


def test_commit_is_idempotent(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    first = store.commit(stage(store, b"same"))
    os.utime(first, (1000, 1000))
    inode = first.stat().st_ino
    again = stage(store, b"same")
    assert store.commit(again) == first
    # the same file, not rewritten, but touched so orphan collection leaves it alone
    assert first.stat().st_ino == inode and first.read_bytes() == b"same"
    assert first.stat().st_mtime > 1000
    assert not again.path.exists()
    assert list(store.spool_dir.iterdir()) == []


@pytest.mark.parametrize(
    "bad",
    ["", "../" + "a" * 61, "A" * 64, "a" * 63, "a" * 65, "g" * 64, "a" * 63 + "/", "a" * 63 + "\0", "a" * 64 + "\n"],
)
def test_path_tricks_refused(tmp_path: Path, bad: str) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(InvalidDigest):
        store.path_for(bad)
    with pytest.raises(InvalidDigest):
        store.exists(bad)


def test_missing_blob(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    assert not store.exists("0" * 64)
    with pytest.raises(FileNotFoundError):
        store.open("0" * 64)


def test_fsync_and_rename_replaces_atomically(tmp_path: Path) -> None:
    src, dst = tmp_path / "a.part", tmp_path / "final"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")
    fsync_and_rename(src, dst)
    assert dst.read_bytes() == b"new" and not src.exists()


def test_sweep_spool(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    old = store.spool_dir / "upload-old.part"
    old.write_bytes(b"x")
    os.utime(old, (0, 0))
    fresh = store.spool_dir / "upload-new.part"
    fresh.write_bytes(b"y")
    os.utime(fresh, (10_000, 10_000))
    assert store.sweep_spool(3600, now=10_100) == 1
    assert not old.exists() and fresh.exists()
