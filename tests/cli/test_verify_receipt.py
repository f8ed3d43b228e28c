"""`pubtrail verify-receipt` and the older `pubtrail verify --key K PROOF --entry FILE` spelling."""

from __future__ import annotations

import pytest

from app import tlog
from app.cli import main
from tests.clients.forge import Forge


@pytest.fixture
def receipt(tmp_path):
    forge = Forge()
    forge.exchange()
    forge.exchange()
    proof = tlog.TlogProof(0, tuple(forge.tree.inclusion_proof(0)), forge.checkpoint())
    (tmp_path / "proof.txt").write_text(proof.to_text())
    (tmp_path / "entry.json").write_bytes(forge.entries[0])
    return forge, tmp_path / "proof.txt", tmp_path / "entry.json"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("command", [["verify-receipt"], ["verify"]])
def test_both_spellings_check_a_receipt(receipt, capsys, command):
    forge, proof, entry = receipt
    code, out, err = run(capsys, *command, "--key", forge.verifier_key, proof, "--entry", entry)
    assert code == 0 and out == "OK: entry 0 is in forge.test/log at size 2\n", err
    leaf = tlog.leaf_hash(entry.read_bytes()).hex()
    assert run(capsys, *command, "--key", forge.verifier_key, proof, "--leaf-hash", leaf)[0] == 0

    entry.write_bytes(entry.read_bytes().replace(b"octo-org", b"octo-orh"))
    code, out, err = run(capsys, *command, "--key", forge.verifier_key, proof, "--entry", entry)
    assert code == 1 and err.startswith("pubtrail: FAILED: inclusion proof: ")
    code, out, err = run(capsys, *command, "--key", Forge().verifier_key, proof, "--leaf-hash", leaf)
    assert code == 1 and err.startswith("pubtrail: FAILED: checkpoint signature: ")
