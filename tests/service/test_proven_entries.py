"""LogReader.proven: entries in the asked order with proofs at a pinned (older) size."""

from __future__ import annotations

import pytest

from app import tlog
from app.errors import NotFound
from app.runtime import build_runtime


def test_proofs_at_a_pinned_size_verify_against_that_checkpoint(settings):
    runtime = build_runtime(settings)
    try:
        sequencer = runtime.log.sequencer
        sequencer.append_batch_sync([("test", b'{"n":%d}' % i) for i in range(300)])
        pinned = runtime.log.reader.checkpoint_at(300)
        sequencer.append_batch_sync([("test", b'{"m":%d}' % i) for i in range(10)])
        proven = runtime.log.reader.proven([299, 0, 256], pinned.size)
        assert [p.stored.index for p in proven] == [299, 0, 256]
        for item in proven:
            body = item.to_json()
            assert body["inclusion_proof"]["tree_size"] == 300
            assert bytes.fromhex(body["inclusion_proof"]["root_hash"]) == pinned.root_hash
            tlog.verify_inclusion(tlog.leaf_hash(item.stored.data), item.stored.index, 300, item.proof.hashes, pinned.root_hash)
        with pytest.raises(NotFound):
            runtime.log.reader.proven([400], 310)
    finally:
        runtime.close()
