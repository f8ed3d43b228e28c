"""Proofs from another conforming log verify: a real Sigstore Rekor inclusion proof
(tree size 114,818,493) from a public Sigstore bundle."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from app import tlog

VECTOR = json.loads((Path(__file__).parent / "testdata" / "rekor_inclusion.json").read_text())
LEAF = tlog.leaf_hash(base64.b64decode(VECTOR["canonicalized_body"]))
HASHES = [bytes.fromhex(h) for h in VECTOR["hashes"]]
ROOT = bytes.fromhex(VECTOR["root_hash"])
INDEX, SIZE = VECTOR["index"], VECTOR["tree_size"]


def test_rekor_inclusion_proof_verifies():
    tlog.verify_inclusion(LEAF, INDEX, SIZE, HASHES, ROOT)
    assert tlog.root_from_inclusion_proof(LEAF, INDEX, SIZE, HASHES) == ROOT


@pytest.mark.parametrize("position", range(len(HASHES)))
def test_rekor_proof_with_any_flipped_bit_fails(position):
    for bit in (0, 77, 255):
        corrupted = list(HASHES)
        raw = bytearray(corrupted[position])
        raw[bit // 8] ^= 1 << (bit % 8)
        corrupted[position] = bytes(raw)
        with pytest.raises(tlog.ProofError):
            tlog.verify_inclusion(LEAF, INDEX, SIZE, corrupted, ROOT)


@pytest.mark.parametrize(
    "index, size, hashes",
    [
        (INDEX - 1, SIZE, HASHES),
        (INDEX, SIZE + 1, HASHES),
        (INDEX, SIZE, HASHES[:-1]),
        (INDEX, SIZE, HASHES + [HASHES[0]]),
        (SIZE, SIZE, HASHES),
    ],
)
def test_rekor_proof_for_another_position_fails(index, size, hashes):
    with pytest.raises(tlog.ProofError):
        tlog.verify_inclusion(LEAF, index, size, hashes, ROOT)


def test_rekor_proof_of_another_entry_fails():
    other = tlog.leaf_hash(base64.b64decode(VECTOR["canonicalized_body"]) + b" ")
    with pytest.raises(tlog.ProofError):
        tlog.verify_inclusion(other, INDEX, SIZE, HASHES, ROOT)
