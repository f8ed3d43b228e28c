"""C2SP tlog-cosignature v1 with Ed25519: what witnesses sign, and how to check it.

A cosignature is a signed-note signature line on a checkpoint::

    — <witness name> <base64(key id (4) || timestamp (8, big-endian) || Ed25519 signature (64))>

The key id is the first 4 bytes of ``SHA-256(name || 0x0A || 0x04 || public
key)`` (signature type 0x04). The Ed25519 signature covers::

    cosignature/v1
    time <timestamp, ASCII decimal, no leading zeros>
    <the checkpoint body, final newline included>

Key strings::

    verifier:  <name>+<key id, 8 hex digits>+<base64(0x04 || 32-byte public key)>
    signer:    PRIVATE+KEY+<name>+<key id>+<base64(0x04 || 32-byte seed)>

A signer string in the ordinary note form (type 0x01, as Go's
``note.GenerateKey`` writes and transparency-dev's
``NewSignerForCosignatureV1`` accepts) is accepted too; its cosignature key
id is computed with type 0x04.

:class:`CosignatureVerifier` has the ``name``, ``key_id`` and
``verify(message, signature)`` of :class:`app.tlog.note.Verifier`, where the
message is the note text and the signature the bytes after the key id, so it
works with :func:`app.tlog.note.open_note` next to the log's own verifier.
Pure: standard library and ``cryptography`` only.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import NoteError, TlogError
from . import note
from .note import ALGORITHM_ED25519, _decode_base64, _split_key_id, is_valid_name, key_id, open_note

ALGORITHM_COSIGNATURE_V1 = 0x04
"""Signature type byte of Ed25519 cosignature/v1 keys."""
MAX_TIMESTAMP = (1 << 63) - 1
SIGNATURE_SIZE = 8 + 64
"""Bytes after the key id in a cosignature: timestamp and Ed25519 signature."""
_PREFIX = "\u2014 "


def cosigned_message(text: str | bytes, timestamp: int) -> bytes:
    """The bytes a cosignature/v1 signs for the checkpoint body ``text`` at ``timestamp``."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp!r} out of range")
    body = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return b"cosignature/v1\ntime %d\n" % timestamp + body


def _key_id(name: str, public_key: bytes) -> int:
    return key_id(name, bytes([ALGORITHM_COSIGNATURE_V1]) + public_key)


def verifier_key(name: str, public_key: bytes) -> str:
    """Verifier key string of a witness's Ed25519 ``public_key`` (32 bytes) named ``name``."""
    return note.verifier_key(name, public_key, ALGORITHM_COSIGNATURE_V1)


def generate_key(name: str, seed: bytes | None = None) -> tuple[str, str]:
    """Return ``(signer key string, verifier key string)`` for a new witness key.

    ``seed`` (32 bytes) makes the key deterministic, for tests.
    """
    return note.generate_key(name, seed, ALGORITHM_COSIGNATURE_V1)


class CosignatureVerifier:
    """A witness's public key from its verifier key string (type 0x04).

    Attributes: ``name``, ``key_id`` (int), ``key_string``, ``public_key`` (32 bytes).
    """

    def __init__(self, key_string: str) -> None:
        parts = key_string.split("+", 2) if isinstance(key_string, str) else []
        if len(parts) != 3 or not is_valid_name(parts[0]):
            raise NoteError("malformed witness verifier key")
        name, key_hex, key_b64 = parts
        identifier = _split_key_id(key_hex)
        key = _decode_base64(key_b64)
        if not key or key[0] != ALGORITHM_COSIGNATURE_V1:
            kind = f"{key[0]:#04x}" if key else "none"
            raise NoteError(f"not a cosignature/v1 key (type {kind}, expected 0x04)")
        if len(key) != 33:
            raise NoteError("malformed witness verifier key: Ed25519 key must be 32 bytes")
        if key_id(name, key) != identifier:
            raise NoteError("witness verifier key id does not match its key")
        self.name = name
        self.key_id = identifier
        self.key_string = key_string
        self.public_key = key[1:]
        self._key = Ed25519PublicKey.from_public_bytes(self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if ``signature`` (timestamp || Ed25519 signature) cosigns the note text ``message``."""
        if len(signature) != SIGNATURE_SIZE:
            return False
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        try:
            self._key.verify(bytes(signature[8:]), cosigned_message(message, timestamp))
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"CosignatureVerifier({self.key_string!r})"


class CosignatureSigner:
    """A witness's private key from ``PRIVATE+KEY+<name>+<key id>+<base64(type || seed)>``.

    Attributes: ``name``, ``key_id`` (the cosignature/v1 key id), ``verifier_key``.
    """

    def __init__(self, key_string: str) -> None:
        parts = key_string.split("+", 4) if isinstance(key_string, str) else []
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not is_valid_name(parts[2]):
            raise NoteError("malformed witness signer key")
        name, key_hex, key_b64 = parts[2:]
        identifier = _split_key_id(key_hex)
        key = _decode_base64(key_b64)
        if len(key) != 33 or key[0] not in (ALGORITHM_COSIGNATURE_V1, ALGORITHM_ED25519):
            raise NoteError("malformed witness signer key: expected type 0x04 or 0x01 and a 32-byte seed")
        self._key = Ed25519PrivateKey.from_private_bytes(key[1:])
        public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        if key_id(name, bytes([key[0]]) + public) != identifier:
            raise NoteError("witness signer key id does not match its key")
        self.name = name
        self.key_id = _key_id(name, public)
        self.verifier_key = verifier_key(name, public)

    def cosign(self, text: str, timestamp: int) -> str:
        """The cosignature line (ending in a newline) of the checkpoint body ``text`` at ``timestamp``."""
        signature = self._key.sign(cosigned_message(text, timestamp))
        raw = self.key_id.to_bytes(4, "big") + timestamp.to_bytes(8, "big") + signature
        return f"{_PREFIX}{self.name} {base64.b64encode(raw).decode('ascii')}\n"

    def __repr__(self) -> str:
        return f"CosignatureSigner(name={self.name!r}, key_id={self.key_id:08x})"


@dataclass(frozen=True)
class Cosignature:
    """A verified cosignature: the witness's ``name`` and ``key_id``, its ``timestamp`` and ``line``."""

    name: str
    key_id: int
    timestamp: int
    line: str


def timestamp_of(signature_b64: str) -> int:
    """The timestamp of a cosignature line's base64 part (key id, timestamp, signature)."""
    raw = _decode_base64(signature_b64)
    if len(raw) != 4 + SIGNATURE_SIZE:
        raise NoteError(f"not a cosignature/v1 signature ({len(raw)} bytes, expected {4 + SIGNATURE_SIZE})")
    return int.from_bytes(raw[4:12], "big")


def signature_lines(signed_note: str) -> tuple[str, list[str]]:
    """Split a signed note into its text and its signature lines (each ending in a newline)."""
    split = signed_note.rfind("\n\n")
    if split < 0 or not signed_note.endswith("\n"):
        raise NoteError("malformed note: no blank line before signatures")
    return signed_note[: split + 1], [line + "\n" for line in signed_note[split + 2 : -1].split("\n")]


def verify_cosignatures(
    signed_note: str, log_verifiers: Iterable, witnesses: Sequence[CosignatureVerifier]
) -> list[Cosignature]:
    """Open ``signed_note`` with the log's verifiers and return its valid cosignatures by ``witnesses``.

    The note must carry a valid signature by one of ``log_verifiers``. A
    signature line by a configured witness (name and key id) that does not
    verify raises :class:`~app.tlog.errors.InvalidSignatureError`, as note
    opening does; unknown keys are ignored. One cosignature per witness.
    """
    log_list = list(log_verifiers)
    opened = open_note(signed_note, [*log_list, *witnesses])
    if not any((sig.name, sig.key_id) in {(v.name, v.key_id) for v in log_list} for sig in opened.signatures):
        raise NoteError("the note carries no valid signature by the log's key")
    known = {(w.name, w.key_id) for w in witnesses}
    found = []
    for sig in opened.signatures:
        if (sig.name, sig.key_id) in known:
            found.append(Cosignature(sig.name, sig.key_id, timestamp_of(sig.base64), f"{_PREFIX}{sig.name} {sig.base64}\n"))
    return found


def with_signature_lines(signed_note: str, lines: Iterable[str]) -> str:
    """``signed_note`` with ``lines`` appended after its signatures, each line once."""
    text, existing = signature_lines(signed_note)
    merged = list(existing)
    for line in lines:
        if not line.endswith("\n") or not line.startswith(_PREFIX) or "\n" in line[:-1]:
            raise NoteError("malformed signature line")
        if line not in merged:
            merged.append(line)
    return text + "\n" + "".join(merged)


def parse_cosignature_lines(body: str) -> list[str]:
    """The signature lines of a witness's add-checkpoint answer (one or more, each ending in a newline)."""
    if not body or not body.endswith("\n"):
        raise NoteError("malformed cosignature answer: must be signature lines ending in a newline")
    lines = [line + "\n" for line in body[:-1].split("\n")]
    for line in lines:
        name, _, b64 = line[len(_PREFIX) : -1].partition(" ")
        if not line.startswith(_PREFIX) or not is_valid_name(name) or not b64:
            raise NoteError("malformed cosignature answer: bad signature line")
    return lines


__all__ = [
    "ALGORITHM_COSIGNATURE_V1",
    "Cosignature",
    "CosignatureSigner",
    "CosignatureVerifier",
    "TlogError",
    "cosigned_message",
    "generate_key",
    "parse_cosignature_lines",
    "signature_lines",
    "timestamp_of",
    "verifier_key",
    "verify_cosignatures",
    "with_signature_lines",
]
