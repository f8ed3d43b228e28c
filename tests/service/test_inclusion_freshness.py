"""An inclusion proof asked without a tree size, for an entry another process logged a moment ago,
is proven at a checkpoint that covers it (the cached latest checkpoint is re-read), never a 400."""

from __future__ import annotations

from app.runtime import build_runtime


def test_inclusion_without_a_size_covers_an_entry_just_logged_elsewhere(make_settings):
    settings = make_settings()
    writer, other = build_runtime(settings), build_runtime(settings)
    try:
        writer.log.sequencer.append_batch_sync([("test", b'{"n":0}')])
        reader = other.log.reader
        assert reader.latest(fresh=True).size == 1  # now cached in this "process" for up to 0.5 s
        writer.log.sequencer.append_batch_sync([("test", b'{"n":1}'), ("test", b'{"n":2}')])
        proof = reader.inclusion(2)
        assert proof.tree_size == 3 and proof.index == 2
    finally:
        writer.close()
        other.close()
