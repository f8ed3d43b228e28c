"""`pubtrail export`: a static tlog-tiles copy of the log, written incrementally and checked before
its checkpoint is published, read back by `TileSource` over http.server and file://."""

from __future__ import annotations

import gzip

import pytest

from app import tlog
from app.cli import main
from app.clients.errors import NotFoundAnswer
from app.clients.tiles import TileSource
from app.runtime import build_runtime
from app.services.export import ExportError, export_log
from app.tlog import MemoryTree, note
from tests.conftest import ORIGIN
from tests.support.static_server import static_server


def payload(i: int) -> bytes:
    return b'{"n":%d,"pad":"%s"}' % (i, b"y" * (i % 11))


@pytest.fixture
def runtime(settings):
    runtime = build_runtime(settings)
    yield runtime
    runtime.close()


def grow(runtime, start: int, count: int) -> None:
    receipts = runtime.log.sequencer.append_batch_sync([("test", payload(i)) for i in range(start, start + count)])
    assert receipts[-1].index == start + count - 1


def check_copy(source: TileSource, verifier: note.Verifier, payloads: list[bytes]) -> None:
    """What a client does with a static copy: open the checkpoint with the pinned key, recompute
    its root from the tiles, and check each bundle's entries against the level-0 tiles."""
    checkpoint = tlog.open_checkpoint(source.checkpoint(), [verifier], origin=ORIGIN)
    assert checkpoint.size == len(payloads)
    assert tlog.TiledTree(source).root(checkpoint.size) == checkpoint.root_hash
    for bundle in tlog.entry_bundles_for_size(checkpoint.size):
        entries = source.entry_bundle(bundle.index, bundle.width)
        assert entries == payloads[bundle.index * 256 : bundle.index * 256 + bundle.width]
        leaves = source.tile(0, bundle.index, bundle.width)
        assert b"".join(tlog.leaf_hash(e) for e in entries) == leaves


def test_export_is_the_tlog_tiles_layout_served_statically_and_by_file_url(runtime, tmp_path):
    out = tmp_path / "static"
    grow(runtime, 0, 700)
    result = export_log(runtime.log.reader, out)
    assert (result.previous_size, result.size) == (0, 700)
    reference = MemoryTree()
    reference.extend([payload(i) for i in range(700)])
    for tile in tlog.tiles_for_size(700):
        assert (out / tile.path).read_bytes() == reference.tile(tile.level, tile.index, tile.width)
    for bundle in tlog.entry_bundles_for_size(700):
        raw = (out / bundle.path).read_bytes()
        assert gzip.decompress((out / (bundle.path + ".gz")).read_bytes()) == raw
    assert (out / "checkpoint").read_text() == runtime.log.reader.latest().note
    verifier = note.Verifier(runtime.log.verifier_key)
    payloads = [payload(i) for i in range(700)]
    with static_server(out) as url, TileSource(url) as source:
        check_copy(source, verifier, payloads)
    with TileSource(out.resolve().as_uri()) as source:
        check_copy(source, verifier, payloads)


def test_export_is_incremental_and_keeps_old_partial_tiles(runtime, tmp_path):
    out = tmp_path / "static"
    grow(runtime, 0, 300)
    export_log(runtime.log.reader, out)
    old_checkpoint = (out / "checkpoint").read_text()
    assert export_log(runtime.log.reader, out).summary() == "up to date at size 300"
    full = out / "tile/0/000"
    mtime = full.stat().st_mtime_ns
    grow(runtime, 300, 250)
    result = export_log(runtime.log.reader, out)
    # new: tile/0/002.p/38, tile/0/001 (full now), tile/1/000.p/2; entries 001 and 002.p/38
    assert (result.previous_size, result.size, result.tiles_written, result.bundles_written) == (300, 550, 3, 2)
    assert full.stat().st_mtime_ns == mtime
    assert (out / "tile/0/001.p/44").is_file() and (out / "tile/entries/001.p/44").is_file()
    assert (out / "checkpoint").read_text() != old_checkpoint
    with TileSource(out.as_uri()) as source:
        check_copy(source, note.Verifier(runtime.log.verifier_key), [payload(i) for i in range(550)])
    assert not list(out.rglob("*.tmp"))


def test_a_missing_partial_tile_is_read_from_the_full_one(runtime, tmp_path):
    out = tmp_path / "static"
    grow(runtime, 0, 10)
    export_log(runtime.log.reader, out)
    grow(runtime, 10, 300)
    export_log(runtime.log.reader, out)
    for path in ("tile/0/000.p/10", "tile/entries/000.p/10"):
        (out / path).unlink()
    with TileSource(out.as_uri()) as source:
        assert source.tile(0, 0, 10) == (out / "tile/0/000").read_bytes()[: 10 * 32]
        assert source.entry_bundle(0, 10) == [payload(i) for i in range(10)]
        with pytest.raises(NotFoundAnswer):
            source.tile(0, 5)


@pytest.mark.parametrize("read", ["tile", "entry_bundle"])
def test_a_tile_or_bundle_that_does_not_match_the_checkpoint_is_never_published(runtime, tmp_path, monkeypatch, read):
    out = tmp_path / "static"
    grow(runtime, 0, 100)
    export_log(runtime.log.reader, out)
    before = (out / "checkpoint").read_text()
    grow(runtime, 100, 100)
    reader = runtime.log.reader
    real = getattr(reader, read)
    monkeypatch.setattr(reader, read, lambda *args: real(*args)[:-1] + b"\x00")
    with pytest.raises(ExportError):
        export_log(reader, out)
    assert (out / "checkpoint").read_text() == before


def test_tiles_that_do_not_give_the_checkpoint_root_are_never_published(runtime, tmp_path, monkeypatch):
    out = tmp_path / "static"
    grow(runtime, 0, 600)
    reader = runtime.log.reader
    real = reader.tile

    def tampered(level: int, index: int, width: int) -> bytes:
        data = real(level, index, width)
        return data[:-1] + b"\x00" if level == 1 else data

    monkeypatch.setattr(reader, "tile", tampered)
    with pytest.raises(ExportError, match="root"):
        export_log(reader, out)
    assert not (out / "checkpoint").exists()


def test_a_directory_of_another_log_is_refused(runtime, make_settings, tmp_path):
    out = tmp_path / "static"
    grow(runtime, 0, 5)
    export_log(runtime.log.reader, out)
    other = build_runtime(make_settings(data_dir=tmp_path / "other", database_url=f"sqlite:///{tmp_path / 'o.db'}"))
    try:
        with pytest.raises(ExportError, match="not a checkpoint of"):
            export_log(other.log.reader, out)
    finally:
        other.close()
    grow(runtime, 5, 1)
    forked = runtime.log.reader
    (out / "checkpoint").write_text("not a note\n")
    with pytest.raises(ExportError):
        export_log(forked, out)


def test_cli_export(settings, runtime, tmp_path, monkeypatch, capsys):
    grow(runtime, 0, 20)
    for name, value in {
        "PUBTRAIL_DATA_DIR": str(settings.data_dir),
        "PUBTRAIL_DATABASE_URL": settings.effective_database_url,
        "PUBTRAIL_ORIGIN": settings.origin,
        "PUBTRAIL_SIGNING_KEY_FILE": str(settings.key_file),
    }.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "cli"
    assert main(["export", str(out)]) == 0
    assert "exported size 20 (was 0)" in capsys.readouterr().out
    assert main(["export", str(out), "--no-gzip"]) == 0
    assert "up to date at size 20" in capsys.readouterr().out
    (out / "checkpoint").write_text("garbage")
    assert main(["export", str(out)]) == 1
    assert "pubtrail: export to" in capsys.readouterr().err


def test_an_older_signed_checkpoint_can_be_published_but_not_a_foreign_one(runtime, make_settings, tmp_path):
    out = tmp_path / "static"
    grow(runtime, 0, 10)
    older = runtime.log.reader.latest().note
    grow(runtime, 10, 290)
    result = export_log(runtime.log.reader, out, note=older)
    assert result.size == 10 and (out / "checkpoint").read_text() == older
    assert not (out / "tile/0/001.p/44").exists()
    with TileSource(out.as_uri()) as source:
        check_copy(source, note.Verifier(runtime.log.verifier_key), [payload(i) for i in range(10)])
    other = build_runtime(make_settings(data_dir=tmp_path / "other", database_url=f"sqlite:///{tmp_path / 'o.db'}"))
    try:
        with pytest.raises(ExportError, match="signed with its key"):
            export_log(runtime.log.reader, out, note=other.log.reader.latest().note)
    finally:
        other.close()
    assert (out / "checkpoint").read_text() == older
