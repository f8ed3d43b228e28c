"""cosignature/v1: published vectors, and byte-for-byte agreement with an implementation written here
from the C2SP text alone (tlog-cosignature, signed-note), which imports nothing from pubtrail."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.tlog import InvalidSignatureError, NoteError, note
from app.tlog import cosignature as cosig

BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


# --- the independent implementation (from the specification text) -------------------------


def spec_key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\x0a" + b"\x04" + public).digest()[:4]


def spec_vkey(name: str, public: bytes) -> str:
    key = base64.b64encode(bytes([4]) + public).decode()
    return f"{name}+{spec_key_id(name, public).hex()}+{key}"


def spec_line(name: str, seed: bytes, body: str, timestamp: int) -> str:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    message = b"cosignature/v1\n" + b"time " + str(timestamp).encode() + b"\n" + body.encode()
    blob = spec_key_id(name, public) + timestamp.to_bytes(8, "big") + key.sign(message)
    return "\u2014 " + name + " " + base64.b64encode(blob).decode() + "\n"


def spec_verify(vkey: str, body: str, line: str) -> bool:
    name, key_hex, key_b64 = vkey.split("+", 2)
    public = base64.b64decode(key_b64)[1:]
    line_name, blob_b64 = line[2:-1].split(" ")
    blob = base64.b64decode(blob_b64)
    if line_name != name or blob[:4].hex() != key_hex or len(blob) != 76:
        return False
    timestamp = int.from_bytes(blob[4:12], "big")
    message = f"cosignature/v1\ntime {timestamp}\n{body}".encode()
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(blob[12:], message)
    except Exception:  # noqa: BLE001 - any failure is "does not verify"
        return False
    return True


# --- published vectors ---------------------------------------------------------------------


def test_transparency_dev_vkey_of_type_04_parses() -> None:
    # transparency-dev/formats note_cosigv1_test.go, "native algEd25519CosignatureV1 verifier"
    verifier = cosig.CosignatureVerifier("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
    assert (verifier.name, verifier.key_id) == ("remora.n621.de", 0xDA77ADE7)
    assert cosig.verifier_key("remora.n621.de", verifier.public_key) == verifier.key_string


def test_transparency_dev_timestamp_vector() -> None:
    # transparency-dev/formats TestCosignatureTimestamp "works"
    sig = "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
    assert cosig.timestamp_of(sig) == 1727964367
    with pytest.raises(NoteError):  # "wrong type of signature": a plain note signature
        cosig.timestamp_of("eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=")


def test_specification_example_framing() -> None:
    # c2sp.org/tlog-cosignature: the example's witness line carries the time of its signed-message example
    line = "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
    assert cosig.timestamp_of(line) == 1679315147
    assert base64.b64decode(line)[:4].hex() == "8d66cf3f"
    assert cosig.cosigned_message(BODY, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )


def test_go_note_key_is_accepted_as_a_cosigner_with_its_04_key_id() -> None:
    # Go's note test key (PeterNeumann), used as transparency-dev's NewSignerForCosignatureV1 does
    signer = cosig.CosignatureSigner("PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
    public = note.Verifier("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").public_key
    assert signer.verifier_key == spec_vkey("PeterNeumann", public)
    assert signer.key_id != 0xC74F20A3


# --- agreement with the independent implementation -------------------------------------------


@pytest.mark.parametrize("seed", [bytes(32), bytes(range(32)), b"\xff" * 32])
@pytest.mark.parametrize("timestamp", [0, 1, 1679315147, (1 << 63) - 1])
def test_byte_for_byte_with_the_specification(seed: bytes, timestamp: int) -> None:
    skey, vkey = cosig.generate_key("witness.example/w1", seed)
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert vkey == spec_vkey("witness.example/w1", public)
    ours = cosig.CosignatureSigner(skey).cosign(BODY, timestamp)
    assert ours == spec_line("witness.example/w1", seed, BODY, timestamp)
    assert spec_verify(vkey, BODY, ours)


def test_pinned_vector() -> None:
    # written down once from the independent implementation above (seed 00 01 .. 1f); pins every byte
    skey = "PRIVATE+KEY+witness.example/w1+e75f6532+BAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
    vkey = "witness.example/w1+e75f6532+BAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
    line = ("\u2014 witness.example/w1 519lMgAAAABkGFDLBuRDazBLVac2NE+Y+IjbjQOcXLfF9CSDZVUIoS83rE1nFZsVE8YiWV6N"
            "gr7lV8H6bdoBQGP/l73euDMQ9k+bBQ==\n")
    assert cosig.generate_key("witness.example/w1", bytes(range(32))) == (skey, vkey)
    assert cosig.CosignatureSigner(skey).cosign(BODY, 1679315147) == line
    assert spec_verify(vkey, BODY, line)


def _log():
    log_skey, log_vkey = note.generate_key("example.com/behind-the-sofa", b"\x07" * 32)
    return note.Signer(log_skey), note.Verifier(log_vkey)


def test_verify_cosignatures_counts_each_configured_witness_once() -> None:
    log_signer, log_verifier = _log()
    signed = note.sign(BODY, [log_signer])
    keys = [cosig.generate_key(f"w{i}.example", bytes([i]) * 32) for i in (1, 2, 3)]
    lines = [cosig.CosignatureSigner(s).cosign(BODY, 100 + i) for i, (s, _) in enumerate(keys)]
    witnessed = cosig.with_signature_lines(signed, [lines[0], lines[1], lines[0]])
    verifiers = [cosig.CosignatureVerifier(v) for _, v in keys]
    found = cosig.verify_cosignatures(witnessed, [log_verifier], verifiers)
    assert [(c.name, c.timestamp) for c in found] == [("w1.example", 100), ("w2.example", 101)]
    # lines by unconfigured keys are ignored
    assert cosig.verify_cosignatures(witnessed, [log_verifier], verifiers[2:]) == []


def test_a_bad_cosignature_by_a_configured_witness_is_refused() -> None:
    log_signer, log_verifier = _log()
    skey, vkey = cosig.generate_key("w.example", b"\x05" * 32)
    line = cosig.CosignatureSigner(skey).cosign(BODY, 5)
    # the same bytes claimed for another time: the signed message differs
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[11] ^= 1
    forged = f"\u2014 w.example {base64.b64encode(bytes(raw)).decode()}\n"
    witnessed = cosig.with_signature_lines(note.sign(BODY, [log_signer]), [forged])
    with pytest.raises(InvalidSignatureError):
        cosig.verify_cosignatures(witnessed, [log_verifier], [cosig.CosignatureVerifier(vkey)])


def test_a_cosignature_covers_extension_lines() -> None:
    skey, vkey = cosig.generate_key("w.example", b"\x05" * 32)
    line = cosig.CosignatureSigner(skey).cosign(BODY + "ext\n", 5)
    verifier = cosig.CosignatureVerifier(vkey)
    blob = base64.b64decode(line.split(" ")[2])
    assert verifier.verify((BODY + "ext\n").encode(), blob[4:])
    assert not verifier.verify((BODY + "exu\n").encode(), blob[4:])


def test_a_note_key_is_not_a_cosignature_key_and_vice_versa() -> None:
    _, log_vkey = note.generate_key("log.example", b"\x01" * 32)
    with pytest.raises(NoteError):
        cosig.CosignatureVerifier(log_vkey)
    _, witness_vkey = cosig.generate_key("w.example", b"\x01" * 32)
    with pytest.raises(NoteError):
        note.Verifier(witness_vkey)


def test_the_log_signature_is_required() -> None:
    _, log_verifier = _log()
    other = note.Signer(note.generate_key("example.com/behind-the-sofa", b"\x08" * 32)[0])
    with pytest.raises(NoteError):
        cosig.verify_cosignatures(note.sign(BODY, [other]), [log_verifier], [])
