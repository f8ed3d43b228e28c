"""pubtrail's witness: the tlog-witness answers, its state across restarts, and concurrent requests."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import httpx
import pytest

from app.tlog import cosignature as cosig
from app.tlog import note
from app.witness.protocol import Witness
from app.witness.server import make_app
from app.witness.state import WitnessState
from tests.support.server import serve
from tests.witness.support import MemoryLog

WITNESS_SEED = b"\x22" * 32


def make_witness(state_dir: Path, log: MemoryLog, now: float = 1_700_000_000) -> Witness:
    skey, _ = cosig.generate_key("witness.test/w1", WITNESS_SEED)
    return Witness(cosig.CosignatureSigner(skey), [log.verifier_key], WitnessState(state_dir / "w.sqlite3"), lambda: now)


def witness_verifier() -> cosig.CosignatureVerifier:
    return cosig.CosignatureVerifier(cosig.generate_key("witness.test/w1", WITNESS_SEED)[1])


def cosigned(log: MemoryLog, size: int, answer_body: str) -> list[cosig.Cosignature]:
    witnessed = cosig.with_signature_lines(log.note(size), cosig.parse_cosignature_lines(answer_body))
    return cosig.verify_cosignatures(witnessed, [note.Verifier(log.verifier_key)], [witness_verifier()])


def test_cosigns_a_consistent_sequence_and_answers_409_with_the_known_size(tmp_path: Path) -> None:
    log = MemoryLog()
    witness = make_witness(tmp_path, log)
    log.grow(3)
    first = witness.add_checkpoint(log.body(0))
    assert first.status == 200, first.body
    assert [c.timestamp for c in cosigned(log, 3, first.body)] == [1_700_000_000]
    log.grow(7)
    stale = witness.add_checkpoint(log.body(0))
    assert (stale.status, stale.content_type, stale.body) == (409, "text/x.tlog.size", "3\n")
    second = witness.add_checkpoint(log.body(3))
    assert second.status == 200 and len(cosigned(log, 10, second.body)) == 1
    again = witness.add_checkpoint(log.body(10))  # the same checkpoint again is cosigned again
    assert again.status == 200


def test_a_fork_is_refused_and_not_cosigned(tmp_path: Path) -> None:
    log = MemoryLog()
    witness = make_witness(tmp_path, log)
    log.grow(5)
    assert witness.add_checkpoint(log.body(0)).status == 200
    fork = MemoryLog(seed=b"\x11" * 32, salt=b"forked ")  # same key, other entries
    fork.grow(9)
    answer = witness.add_checkpoint(fork.body(5))
    assert answer.status == 422 and "\u2014" not in answer.body
    # the same size with another root
    same_size = MemoryLog(seed=b"\x11" * 32, salt=b"other ")
    same_size.grow(5)
    answer = witness.add_checkpoint(same_size.body(5))
    assert answer.status == 409 and answer.body == "5\n"
    assert witness.state.latest(log.origin).size == 5


@pytest.mark.parametrize(
    "body, status",
    [
        (b"", 400),
        (b"old 01\n\n", 400),
        (b"old -1\n\n", 400),
        (b"new 0\n\n", 400),
        (b"old 0\nnot base64\n\n", 400),
        (b"old 0\n" + b"\xff\n\n", 400),
        (b"old 0\n\n\n", 400),
    ],
)
def test_malformed_requests_are_400(tmp_path: Path, body: bytes, status: int) -> None:
    log = MemoryLog()
    log.grow(1)
    assert make_witness(tmp_path, log).add_checkpoint(body + log.note().encode() if body else body).status == status


def test_origin_signature_and_sizes(tmp_path: Path) -> None:
    log = MemoryLog()
    witness = make_witness(tmp_path, log)
    log.grow(4)
    other = MemoryLog(origin="elsewhere.example/log")
    other.grow(4)
    assert witness.add_checkpoint(other.body(0)).status == 404  # tlog-witness: unknown origin
    impostor = note.Signer(note.generate_key(log.origin, b"\x33" * 32)[0])
    forged = f"old 0\n\n{log.note(signer=impostor)}".encode()
    assert witness.add_checkpoint(forged).status == 403
    assert witness.add_checkpoint(log.body(5, 4)).status == 400  # old above the checkpoint
    too_many = f"old 0\n{('A' * 43 + '=' + chr(10)) * 64}\n{log.note()}".encode()
    assert witness.add_checkpoint(too_many).status == 400
    assert witness.add_checkpoint(log.body(0, 4, proof=[b"\x00" * 32])).status == 422  # proof from 0 must be empty
    assert witness.state.latest(log.origin).size == 0


def test_state_survives_a_restart(tmp_path: Path) -> None:
    log = MemoryLog()
    log.grow(6)
    assert make_witness(tmp_path, log).add_checkpoint(log.body(0)).status == 200
    restarted = make_witness(tmp_path, log)
    answer = restarted.add_checkpoint(log.body(0))
    assert (answer.status, answer.body) == (409, "6\n")
    fork = MemoryLog(salt=b"forked ")
    fork.grow(8)
    assert restarted.add_checkpoint(fork.body(6)).status == 422


def test_concurrent_requests_never_cosign_inconsistent_checkpoints(tmp_path: Path) -> None:
    """Many threads race to move the witness from size 2, each along its own fork: one wins.

    Two Witness objects share the state file, as two processes would (each has its own lock)."""
    base = MemoryLog()
    base.grow(2)
    witness = make_witness(tmp_path, base)
    twin = make_witness(tmp_path, base)
    assert witness.add_checkpoint(base.body(0)).status == 200
    forks = []
    for i in range(12):
        fork = MemoryLog(salt=b"")
        fork.grow(2)
        fork.salt = b"fork %d " % i
        fork.grow(3 + i % 3)
        forks.append(fork)
    results: list[tuple[MemoryLog, int]] = []
    barrier = threading.Barrier(len(forks))

    def submit(fork: MemoryLog, which: Witness) -> None:
        body = fork.body(2)
        barrier.wait()
        results.append((fork, which.add_checkpoint(body).status))

    threads = [threading.Thread(target=submit, args=(fork, (witness, twin)[i % 2])) for i, fork in enumerate(forks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [fork for fork, status in results if status == 200]
    assert len(winners) == 1
    assert sorted(status for _, status in results) == [200] + [409] * (len(forks) - 1)
    assert witness.state.latest(base.origin).root_hash == winners[0].tree.root()


def test_over_a_real_socket(tmp_path: Path) -> None:
    log = MemoryLog()
    log.grow(2)
    with serve(make_app(make_witness(tmp_path, log))) as url:
        ok = httpx.post(url + "/add-checkpoint", content=log.body(0))
        assert ok.status_code == 200 and len(cosigned(log, 2, ok.text)) == 1
        conflict = httpx.post(url + "/add-checkpoint", content=log.body(0))
        assert conflict.status_code == 409
        assert conflict.headers["content-type"] == "text/x.tlog.size" and conflict.text == "2\n"
        assert httpx.post(url + "/add-checkpoint", content=b"x" * 70_000).status_code == 400
        assert httpx.get(url + "/add-checkpoint").status_code == 405


def test_the_answer_line_decodes_as_cosignature_v1(tmp_path: Path) -> None:
    log = MemoryLog()
    log.grow(1)
    answer = make_witness(tmp_path, log, now=1679315147).add_checkpoint(log.body(0))
    blob = base64.b64decode(answer.body.split(" ")[2])
    assert len(blob) == 76 and int.from_bytes(blob[4:12], "big") == 1679315147
    assert blob[:4] == witness_verifier().key_id.to_bytes(4, "big")


def test_the_specification_witness_agrees_with_ours(tmp_path: Path) -> None:
    """The independent witness and pubtrail's give the same answers to the same requests."""
    from tests.witness.spec_witness import SpecWitness

    log = MemoryLog()
    ours = make_witness(tmp_path, log, now=1679315147)
    theirs = SpecWitness("witness.test/w1", WITNESS_SEED, log.verifier_key, clock=lambda: 1679315147)
    assert theirs.vkey == witness_verifier().key_string
    log.grow(3)
    fork = MemoryLog(salt=b"forked ")
    fork.grow(7)
    steps = [log.body(0), log.body(0), log.body(3, 3)]
    log.grow(9)
    steps += [log.body(0), log.body(3), fork.body(12), log.body(12, 12), log.body(5, 12)]
    for body in steps:
        a, (status, kind, text) = ours.add_checkpoint(body), theirs.handle(body)
        assert (a.status, a.body if a.status in (200, 409) else "") == (status, text if status in (200, 409) else "")
