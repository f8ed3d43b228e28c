"""The monitor's checks against a forged log served through tlog-tiles paths, one tampering at a time."""

from __future__ import annotations

import httpx
import pytest

from app import tlog
from app.clients.errors import CheckpointSignatureError
from app.clients.mirror import Mirror, MirrorError
from app.clients.monitor import (
    EntryDecodeError,
    ForkError,
    LeafHashError,
    Monitor,
    RootHashError,
    TileHashError,
    decode_entry,
)
from app.clients.tiles import TileSource
from app.entries import decode
from app.tlog import note
from app.watch import parse_rule
from tests.clients.forge import Forge


class Served:
    """Serves a forge's checkpoint, tiles and bundles at `size`, with optional overrides per path."""

    def __init__(self, forge: Forge):
        self.forge = forge
        self.size: int | None = None
        self.overrides: dict[str, bytes] = {}
        self.checkpoint_text: str | None = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.lstrip("/")
        if path in self.overrides:
            return httpx.Response(200, content=self.overrides[path])
        forge, size = self.forge, self.forge.tree.size if self.size is None else self.size
        if path == "checkpoint":
            return httpx.Response(200, text=self.checkpoint_text or forge.checkpoint(size))
        try:
            tile = tlog.parse_tile_path(path)
        except tlog.TlogError:
            return httpx.Response(404)
        if tile.is_entries:
            start = tile.index * 256
            if start + tile.width > size:
                return httpx.Response(404)
            return httpx.Response(200, content=tlog.encode_entry_bundle(forge.entries[start:start + tile.width]))
        if tlog.tile_width_at(tile.level, tile.index, size) < tile.width:
            return httpx.Response(404)
        return httpx.Response(200, content=forge.tree.tile(tile.level, tile.index, tile.width))

    def source(self) -> TileSource:
        return TileSource("http://log.test", transport=httpx.MockTransport(self.handler))


def grow(forge: Forge, n: int, project: str = "demo") -> None:
    for _ in range(n // 2):
        exchange = forge.exchange(projects=(project,))
        forge.upload(exchange, f"{project}-{exchange}.whl", b"x%d" % exchange, project=project)


def monitor(served: Served, tmp_path, forge: Forge | None = None, **kwargs) -> Monitor:
    forge = forge or served.forge
    mirror = Mirror(tmp_path / "state", key=forge.verifier_key, create=True)
    return Monitor(served.source(), forge.verifier, mirror, **kwargs)


def test_honest_log_is_mirrored_and_followed(tmp_path):
    forge = Forge()
    grow(forge, 600)
    served = Served(forge)
    served.size = 300
    mon = monitor(served, tmp_path)
    step = mon.step()
    assert (step.old_size, step.size) == (0, 300)
    served.size = None
    step = mon.step()
    assert (step.old_size, step.size) == (300, 600)
    assert mon.step().new_entries == 0
    grow(forge, 1000)  # crosses a level-1 tile boundary (65,536 is far; 256-leaf tiles many times)
    assert mon.step().size == 1600
    mirrored = list(mon.mirror.entries())
    assert [data for _, _, data in mirrored] == [decode(d) for d in forge.entries]
    assert mon.mirror.tree().root() == forge.tree.root()
    # a fresh process resumes from the mirror alone
    again = Monitor(served.source(), forge.verifier, Mirror(tmp_path / "state", key=forge.verifier_key))
    assert again.step().new_entries == 0


def test_wrong_key_and_other_log_mirror(tmp_path):
    forge = Forge()
    grow(forge, 10)
    served = Served(forge)
    other = Forge()
    mirror = Mirror(tmp_path / "s", key=other.verifier_key, create=True)
    with pytest.raises(CheckpointSignatureError, match="checkpoint signature"):
        Monitor(served.source(), other.verifier, mirror).step()
    with pytest.raises(MirrorError, match="mirrors the log of key"):
        Mirror(tmp_path / "s", key=forge.verifier_key)
    assert mirror.latest() is None


def test_entry_bytes_not_the_tiles_leaf(tmp_path):
    forge = Forge()
    grow(forge, 20)
    served = Served(forge)
    bundle = list(forge.entries[:20])
    bundle[7] = bundle[7].replace(b'"demo"', b'"evil"')
    served.overrides["tile/entries/000.p/20"] = tlog.encode_entry_bundle(bundle)
    mon = monitor(served, tmp_path)
    with pytest.raises(LeafHashError, match=r"entry leaf hash: entry 7 .* at size 20") as caught:
        mon.step()
    assert (caught.value.size, caught.value.index) == (20, 7)
    assert mon.mirror.latest() is None and list(mon.mirror.entries()) == []


def test_undecodable_entry(tmp_path):
    forge = Forge()
    grow(forge, 4)
    forge.entries.append(b'{"kind":"upload"}')
    forge.tree.append(b'{"kind":"upload"}')
    with pytest.raises(EntryDecodeError, match="entry decode: entry 4 at size 5"):
        monitor(Served(forge), tmp_path).step()


def test_swapped_upper_tile(tmp_path):
    forge = Forge()
    grow(forge, 600)
    served = Served(forge)
    tile = bytearray(forge.tree.tile(1, 0, 2))
    tile[40] ^= 1
    served.overrides["tile/1/000.p/2"] = bytes(tile)
    with pytest.raises(TileHashError, match=r"tile hashes: tile tile/1/000.p/2 at size 600 .* hash 1 \(entries from index 256\)"):
        monitor(served, tmp_path).step()


def test_root_not_the_signed_one(tmp_path):
    forge = Forge()
    grow(forge, 10)
    served = Served(forge)
    body = tlog.Checkpoint(forge.origin, 10, b"\x01" * 32).to_text()
    served.checkpoint_text = note.sign(body, [forge.signer])
    with pytest.raises(RootHashError, match="root hash: the entries 0..9 hash to root"):
        monitor(served, tmp_path).step()


def test_forks_are_never_accepted(tmp_path):
    honest = Forge()
    grow(honest, 300)
    fork = Forge()
    fork.signer, fork.verifier, fork.verifier_key = honest.signer, honest.verifier, honest.verifier_key
    fork.entries = list(honest.entries[:200])
    fork.tree.extend(fork.entries)
    grow(fork, 100, project="other")  # the same first 200 entries, then another history
    served = Served(honest)
    mon = monitor(served, tmp_path)
    mon.step()
    # the same size with another root
    served.forge = fork
    with pytest.raises(ForkError, match="consistency: the checkpoint of size 300 .* same size"):
        mon.step()
    # a larger tree that does not extend the verified one
    grow(fork, 100, project="other")
    with pytest.raises(ForkError, match="consistency: the checkpoint of size 400 is not an extension of the verified checkpoint of size 300"):
        mon.step()
    # a smaller tree whose root is not the verified log's at that size
    served.size = 250
    with pytest.raises(ForkError, match="consistency: the checkpoint of size 250"):
        mon.step()
    assert mon.mirror.size == 300
    # the honest server, briefly behind, is consistent
    served.forge, served.size = honest, 250
    assert mon.step().behind


def test_watch_rules_match_only_verified_entries(tmp_path):
    forge = Forge()
    forge.exchange(projects=("demo",))  # 0
    forge.upload(0, "demo-1.whl", b"1")  # 1
    forge.exchange(projects=("demo",), workflow="evil.yml")  # 2
    forge.upload(2, "demo-2.whl", b"2")  # 3
    forge.exchange(projects=("other",))  # 4
    forge.upload(4, "other-1.whl", b"3", project="other")  # 5
    rules = [
        parse_rule({"name": "uploads", "kind": "upload", "project": "demo"}),
        parse_rule({"name": "stranger", "project": "demo",
                    "unexpected_publisher": [{"repository": "octo-org/app", "workflow": "release.yml"}]}),
        parse_rule({"name": "key", "kind": "upload", "kid": "key-1", "project": "other"}),
    ]
    step = monitor(Served(forge), tmp_path, rules=rules).step()
    assert [(m.rule, m.index) for m in step.matches] == [
        ("uploads", 1), ("uploads", 3), ("stranger", 3), ("key", 5)
    ]


def test_fast_decode_agrees_with_decode(monkeypatch):
    import app.clients.monitor as monitor_module

    forge = Forge()
    grow(forge, 4)
    expected = [decode(data) for data in forge.entries]

    def slow_path(data):
        raise AssertionError("canonical ASCII entries take the fast path")

    with monkeypatch.context() as patch:
        patch.setattr(monitor_module, "decode", slow_path)
        assert [decode_entry(data) for data in forge.entries] == expected
    for bad in (b'{"v":1,"kind":"upload"}', b'[1]', b'{"kind":"x","v":1.0}', b"\xff"):
        with pytest.raises(ValueError):
            decode_entry(bad)
    # not canonical: spaces, unsorted keys
    spaced = forge.entries[0].replace(b",", b", ", 1)
    with pytest.raises(ValueError):
        decode_entry(spaced)


def test_a_bulk_step_rebuilds_the_indexes_and_a_failed_one_keeps_them(tmp_path, monkeypatch):
    import app.clients.monitor as monitor_module
    from app.clients.mirror import _INDEXES

    monkeypatch.setattr(monitor_module, "BULK_STEP", 1)
    names = {statement.split()[5] for statement in _INDEXES}

    def indexes(mirror: Mirror) -> set[str]:
        rows = mirror.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        return {r[0] for r in rows}

    forge = Forge()
    grow(forge, 20)
    served = Served(forge)
    mon = monitor(served, tmp_path)
    mon.step()
    assert indexes(mon.mirror) == names
    grow(forge, 20)
    bundle = list(forge.entries[:40])
    bundle[30] = bundle[30].replace(b'"demo"', b'"evil"')
    served.overrides["tile/entries/000.p/40"] = tlog.encode_entry_bundle(bundle)
    with pytest.raises(LeafHashError):
        mon.step()
    assert indexes(mon.mirror) == names and mon.mirror.size == 20
    plan = mon.mirror.conn.execute("EXPLAIN QUERY PLAN SELECT idx FROM upload WHERE project = 'demo'").fetchall()
    assert "upload_project" in str(plan)
