"""C2SP tlog-checkpoint bodies and c2sp.org/tlog-proof@v1 texts."""

from __future__ import annotations

import base64

import pytest

from app.tlog import (
    Checkpoint,
    CheckpointError,
    MemoryTree,
    NoteError,
    ProofError,
    TlogProof,
    TlogProofError,
    leaf_hash,
    note,
    open_checkpoint,
)

ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()


def test_checkpoint_round_trip() -> None:
    checkpoint = Checkpoint("example.com/log", 20852163, ROOT)
    assert checkpoint.to_text() == f"example.com/log\n20852163\n{ROOT_B64}\n"
    assert Checkpoint.parse(checkpoint.to_text()) == checkpoint
    with_extensions = Checkpoint("o", 0, ROOT, ("ext one", "ext two"))
    assert with_extensions.to_text().endswith("\next one\next two\n")
    assert Checkpoint.parse(with_extensions.to_text()) == with_extensions


def test_spec_example_parses() -> None:
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    checkpoint = Checkpoint.parse(text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)


@pytest.mark.parametrize(
    "text",
    [
        f"o\n1\n{ROOT_B64}",  # no final newline
        f"\n1\n{ROOT_B64}\n",  # empty origin
        f"o\n01\n{ROOT_B64}\n",
        f"o\n+1\n{ROOT_B64}\n",
        f"o\n-1\n{ROOT_B64}\n",
        f"o\n1 \n{ROOT_B64}\n",
        f"o\n\n{ROOT_B64}\n",
        f"o\n１\n{ROOT_B64}\n",
        f"o\n99999999999999999999\n{ROOT_B64}\n",
        f"o\n1\n{ROOT_B64[:-1]}\n",
        f"o\n1\n{ROOT_B64[:-1]}\n",
        f"o\n1\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"o\n1\n{base64.b64encode(ROOT + b'x').decode()}\n",
        "o\n1\n" + base64.urlsafe_b64encode(bytes([255]) * 32).decode() + "\n",
        f"o\n1\n{ROOT_B64[:-2]}B=\n",  # non-canonical trailing bits
        f"o\n1\n{ROOT_B64}\n\n",  # empty extension line
        "o\n1\n",
        "",
    ],
)
def test_checkpoint_parse_rejects(text: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.parse(text)


def test_checkpoint_constructor_validates() -> None:
    for args in (("", 1, ROOT), ("a\nb", 1, ROOT), ("o", -1, ROOT), ("o", 1, ROOT[:31]), ("o", 1, ROOT, ("",))):
        with pytest.raises(CheckpointError):
            Checkpoint(*args)


def _signed_tree():
    skey, vkey = note.generate_key("example.com/log", seed=b"\x07" * 32)
    tree = MemoryTree()
    tree.extend(b"entry %d" % n for n in range(13))
    signed = note.sign(Checkpoint("example.com/log", tree.size, tree.root()).to_text(), [note.Signer(skey)])
    return tree, signed, note.Verifier(vkey)


def test_open_checkpoint() -> None:
    _, signed, verifier = _signed_tree()
    assert open_checkpoint(signed, [verifier], "example.com/log").size == 13
    with pytest.raises(CheckpointError):
        open_checkpoint(signed, [verifier], "other.example/log")
    with pytest.raises(NoteError):
        open_checkpoint(signed, [])


def test_tlog_proof_round_trip_and_verify() -> None:
    tree, signed, verifier = _signed_tree()
    proof = TlogProof(index=5, hashes=tuple(tree.inclusion_proof(5)), checkpoint=signed, extra=b"\x00extra")
    text = proof.to_text()
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "extra " + base64.b64encode(b"\x00extra").decode()
    assert lines[2] == "index 5"
    assert text.endswith("\n\n" + signed)
    assert TlogProof.parse(text) == proof
    assert proof.verify(leaf_hash(b"entry 5"), [verifier], "example.com/log").size == 13
    with pytest.raises(ProofError):
        proof.verify(leaf_hash(b"entry 6"), [verifier])
    bare = TlogProof(index=0, hashes=(), checkpoint=signed)
    assert bare.to_text().startswith("c2sp.org/tlog-proof@v1\nindex 0\n\n")
    assert TlogProof.parse(bare.to_text()) == bare


def test_tlog_proof_spec_example_parses() -> None:
    example = (
        "c2sp.org/tlog-proof@v1\n"
        "extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6\n"
        "index 73894\n"
        "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n"
        "B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n"
        "\n"
        "example.com/fancylog\n109482\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n\n"
        "— example.com/fancylog hI2DJw==\n"
    )
    parsed = TlogProof.parse(example)
    assert parsed.index == 73894 and len(parsed.hashes) == 2 and parsed.extra == b"age-v1.2.1-darwin-arm64.tar.gz"
    assert parsed.checkpoint.startswith("example.com/fancylog\n109482\n")
    assert parsed.to_text() == example


@pytest.mark.parametrize(
    "text",
    [
        "",
        "c2sp.org/tlog-proof@v2\nindex 0\n\ncp\n",
        "c2sp.org/tlog-proof@v1\nindex 01\n\ncp\n",
        "c2sp.org/tlog-proof@v1\nindex -1\n\ncp\n",
        "c2sp.org/tlog-proof@v1\nindex  1\n\ncp\n",
        "c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n\ncp\n",
        "c2sp.org/tlog-proof@v1\nindex 1\n",
        "c2sp.org/tlog-proof@v1\nindex 1\n\n",
        f"c2sp.org/tlog-proof@v1\nindex 1\n{ROOT_B64[:-4]}\n\ncp\n",
        f"c2sp.org/tlog-proof@v1\nindex 1\n{ROOT_B64} \n\ncp\n",
        f"c2sp.org/tlog-proof@v1\nindex 1\n{ROOT_B64}\n",
        "c2sp.org/tlog-proof@v1\nindex 1\n\ncp",  # checkpoint without final newline
        "c2sp.org/tlog-proof@v1\r\nindex 1\n\ncp\n",
    ],
)
def test_tlog_proof_parse_rejects(text: str) -> None:
    with pytest.raises(TlogProofError):
        TlogProof.parse(text)
