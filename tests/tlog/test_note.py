"""Signed notes: the Go golang.org/x/mod/sumdb/note test vectors and error cases."""

from __future__ import annotations

import pytest

from app.tlog import note
from app.tlog.errors import InvalidSignatureError, NoteError, UnverifiedNoteError

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"


def test_go_vectors() -> None:
    signer = note.Signer(PETER_SKEY)
    assert (signer.name, signer.key_id) == ("PeterNeumann", 0xC74F20A3)
    assert signer.verifier_key == PETER_VKEY
    assert note.sign(TEXT, [signer]) == TEXT + "\n" + PETER_SIG
    verifier = note.Verifier(PETER_VKEY)
    assert (verifier.name, verifier.key_id, verifier.key_string) == ("PeterNeumann", 0xC74F20A3, PETER_VKEY)
    enoch = note.Verifier(ENOCH_VKEY)
    assert note.open(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [verifier]) == (TEXT, ["PeterNeumann"])
    assert note.open(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [verifier, enoch]) == (TEXT, ["PeterNeumann", "EnochRoot"])
    opened = note.open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [verifier])
    assert [(s.name, s.key_id) for s in opened.unverified] == [("EnochRoot", 0xAF0CFE78)]


def test_verifier_and_signer_manglings_rejected() -> None:
    for key, parse in ((PETER_VKEY, note.Verifier), (PETER_SKEY, note.Signer)):
        for start in range(len(key)):
            for end in range(start + 1, len(key) + 1, 5):
                if (start, end) != (0, len(key)):
                    with pytest.raises(NoteError):
                        parse(key[start:end])
        for position in range(len(key)):
            mangled = key[:position] + chr(ord(key[position]) + 1) + key[position + 1 :]
            with pytest.raises(NoteError):
                parse(mangled)
    with pytest.raises(NoteError):  # wrong key length, adjusted key id
        note.Verifier("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(NoteError):  # unknown algorithm, adjusted key id
        note.Verifier("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_generate_key_round_trip_and_seed() -> None:
    skey, vkey = note.generate_key("EnochRoot")
    signer, verifier = note.Signer(skey), note.Verifier(vkey)
    assert signer.verifier_key == vkey and signer.key_id == verifier.key_id
    signature = signer.sign(b"hi")
    assert verifier.verify(b"hi", signature)
    assert not verifier.verify(b"hi", bytes([signature[0] ^ 1]) + signature[1:])
    assert not verifier.verify(b"ho", signature)
    assert not verifier.verify(b"hi", signature[:-1])
    assert note.generate_key("a", seed=b"\x01" * 32) == note.generate_key("a", seed=b"\x01" * 32)
    for bad_name in ("", "a+b", "a b", "a\tb", "a\u00a0b"):
        with pytest.raises(NoteError):
            note.generate_key(bad_name)


def test_open_errors() -> None:
    peter = note.Verifier(PETER_VKEY)
    with pytest.raises(UnverifiedNoteError) as caught:
        note.open(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])
    assert caught.value.unverified == [("PeterNeumann", 0xC74F20A3), ("EnochRoot", 0xAF0CFE78)]
    with pytest.raises(NoteError, match="ambiguous"):
        note.open(TEXT + "\n" + PETER_SIG, [peter, note.Verifier(PETER_VKEY)])
    with pytest.raises(NoteError):
        note.open(TEXT + "\n" + PETER_SIG * 101, [peter])
    with pytest.raises(InvalidSignatureError, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        note.open(TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], [peter])
    # Duplicates are dropped: identical unknown lines and repeated known signatures.
    opened = note.open_note(TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG, [peter])
    assert len(opened.signatures) == 1 and len(opened.unverified) == 1
    bad_messages = [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        b"\xff" + (TEXT + "\n" + PETER_SIG).encode(),
        TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + "— PeterNeumann AAAA\n",
        TEXT + "\n" + "— PeterNeumann \n",
        TEXT + "\n" + "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM\n",
    ]
    for message in bad_messages:
        with pytest.raises(NoteError) as caught:
            note.open(message, [peter])
        assert not isinstance(caught.value, (UnverifiedNoteError, InvalidSignatureError))


def test_sign_errors() -> None:
    signer = note.Signer(PETER_SKEY)
    for text in ("abc", "", "a\x01b\n"):
        with pytest.raises(NoteError):
            note.sign(text, [signer])
    with pytest.raises(NoteError):
        note.sign(TEXT, [signer, signer])
    with pytest.raises(NoteError):
        note.sign(TEXT, [])


def test_multiple_signers_and_text_with_blank_lines() -> None:
    keys = [note.generate_key(name, seed=bytes([n]) * 32) for n, name in enumerate(["log.example", "witness"])]
    text = "line one\n\nline three\n"
    signed = note.sign(text, [note.Signer(skey) for skey, _ in keys])
    assert note.open(signed, [note.Verifier(vkey) for _, vkey in keys]) == (text, ["log.example", "witness"])
    assert note.open(signed, [note.Verifier(keys[1][1])]) == (text, ["witness"])
