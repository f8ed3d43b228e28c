"""C2SP signed notes with Ed25519, compatible with Go's golang.org/x/mod/sumdb/note.

Wire format
-----------
A signed note is UTF-8 text with no ASCII control characters but newline:
the note *text* (one or more lines, ending in a newline), a blank line, then
one or more signature lines::

    — <key name> <base64(key id (4 bytes, big-endian) || signature)>

(the line starts with U+2014 EM DASH and a space). The signature covers the
text exactly, final newline included. Keys are named; a name is non-empty,
holds no ``+`` and no whitespace. The 32-bit key id of an Ed25519 key is the
first 4 bytes of ``SHA-256(name || 0x0A || 0x01 || public key)``. Key strings::

    verifier:  <name>+<key id, 8 hex digits>+<base64(0x01 || 32-byte public key)>
    signer:    PRIVATE+KEY+<name>+<key id>+<base64(0x01 || 32-byte seed)>

Worked example (the Go package's test key)::

    PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz
    PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW

signing the text ``"If you think cryptography is the answer to your problem,\\n
then you don't know what your problem is.\\n"`` gives::

    If you think cryptography is the answer to your problem,
    then you don't know what your problem is.

    — PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=

(``x08go/`` is base64 of the key id ``c74f20a3`` followed by the signature.)

Opening a note against known verifiers (:func:`open`): signatures by unknown
keys are ignored; a signature by a known key (name and key id) that does not
verify raises :class:`InvalidSignatureError`; a note with no valid signature
by a known key raises :class:`UnverifiedNoteError`; more than 100 signature
lines, a bad line or bad encoding raise :class:`NoteError`. Repeated
signatures by one key are ignored after the first, as in Go.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import InvalidSignatureError, NoteError, UnverifiedNoteError

ALGORITHM_ED25519 = 0x01
"""Signature type byte of Ed25519 keys."""
MAX_SIGNATURES = 100
"""Open rejects notes with more signature lines than this (as Go does)."""

_SIGNATURE_PREFIX = "\u2014 "
_KEY_ID_RE = re.compile(r"[0-9a-fA-F]{8}")


def is_valid_name(name: str) -> bool:
    """A key name is non-empty and holds neither ``+`` nor whitespace (nor control characters)."""
    return (
        isinstance(name, str)
        and name != ""
        and "+" not in name
        and not any(char.isspace() or ord(char) < 0x20 or char == "\x7f" for char in name)
        and _is_utf8(name)
    )


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def key_id(name: str, key: bytes) -> int:
    """32-bit key id of ``key`` (type byte included) under ``name``."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + key).digest()
    return int.from_bytes(digest[:4], "big")


def _decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise NoteError("malformed base64") from exc


def _split_key_id(text: str) -> int:
    if not _KEY_ID_RE.fullmatch(text):
        raise NoteError(f"malformed key id {text!r}")
    return int(text, 16)


def verifier_key(name: str, public_key: bytes, algorithm: int = ALGORITHM_ED25519) -> str:
    """Verifier key string for an Ed25519 ``public_key`` (32 raw bytes) named ``name``;
    ``algorithm`` is the key type byte (0x01 signed notes, 0x04 cosignature/v1)."""
    if not is_valid_name(name):
        raise NoteError(f"invalid key name {name!r}")
    if len(public_key) != 32:
        raise NoteError(f"Ed25519 public key must be 32 bytes, got {len(public_key)}")
    key = bytes([algorithm]) + bytes(public_key)
    return f"{name}+{key_id(name, key):08x}+{base64.b64encode(key).decode('ascii')}"


def generate_key(name: str, seed: bytes | None = None, algorithm: int = ALGORITHM_ED25519) -> tuple[str, str]:
    """Return ``(private key string, verifier key string)`` for a new Ed25519 key
    of key type ``algorithm``.

    ``seed`` (32 bytes) makes the key deterministic, for tests; by default it
    comes from ``os.urandom``.
    """
    if not is_valid_name(name):
        raise NoteError(f"invalid key name {name!r}")
    if seed is None:
        seed = os.urandom(32)
    if len(seed) != 32:
        raise NoteError(f"Ed25519 seed must be 32 bytes, got {len(seed)}")
    public = Ed25519PrivateKey.from_private_bytes(bytes(seed)).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw
    )
    vkey = verifier_key(name, public, algorithm)
    key_hex = vkey.split("+")[1]
    private = base64.b64encode(bytes([algorithm]) + bytes(seed)).decode("ascii")
    return f"PRIVATE+KEY+{name}+{key_hex}+{private}", vkey


class Verifier:
    """A named Ed25519 public key parsed from ``<name>+<hex key id>+<base64(0x01||key)>``.

    Attributes: ``name``, ``key_id`` (int), ``key_string`` (as given),
    ``public_key`` (32 raw bytes).
    """

    def __init__(self, key_string: str) -> None:
        parts = key_string.split("+", 2) if isinstance(key_string, str) else []
        if len(parts) != 3 or not is_valid_name(parts[0]):
            raise NoteError("malformed verifier key")
        name, key_hex, key_b64 = parts
        identifier = _split_key_id(key_hex)
        key = _decode_base64(key_b64)
        if not key:
            raise NoteError("malformed verifier key")
        if key_id(name, key) != identifier:
            raise NoteError("verifier key id does not match its key")
        if key[0] != ALGORITHM_ED25519:
            raise NoteError(f"unknown verifier algorithm {key[0]:#04x}")
        if len(key) != 33:
            raise NoteError("malformed verifier key: Ed25519 key must be 32 bytes")
        self.name = name
        self.key_id = identifier
        self.key_string = key_string
        self.public_key = key[1:]
        self._key = Ed25519PublicKey.from_public_bytes(self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            self._key.verify(bytes(signature), bytes(message))
        except (InvalidSignature, ValueError):
            return False
        return True

    def __repr__(self) -> str:
        return f"Verifier({self.key_string!r})"


class Signer:
    """A named Ed25519 private key parsed from ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01||seed)>``.

    Attributes: ``name``, ``key_id`` (int), ``verifier_key`` (the matching
    verifier key string).
    """

    def __init__(self, key_string: str) -> None:
        parts = key_string.split("+", 4) if isinstance(key_string, str) else []
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY" or not is_valid_name(parts[2]):
            raise NoteError("malformed signer key")
        name, key_hex, key_b64 = parts[2:]
        identifier = _split_key_id(key_hex)
        key = _decode_base64(key_b64)
        if not key:
            raise NoteError("malformed signer key")
        if key[0] != ALGORITHM_ED25519:
            raise NoteError(f"unknown signer algorithm {key[0]:#04x}")
        if len(key) != 33:
            raise NoteError("malformed signer key: Ed25519 seed must be 32 bytes")
        self._key = Ed25519PrivateKey.from_private_bytes(key[1:])
        public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        if key_id(name, bytes([ALGORITHM_ED25519]) + public) != identifier:
            raise NoteError("signer key id does not match its key")
        self.name = name
        self.key_id = identifier
        self.verifier_key = verifier_key(name, public)

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (64 bytes) of ``message``."""
        return self._key.sign(bytes(message))

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, key_id={self.key_id:08x})"


def _check_note_characters(text: str) -> None:
    if not _is_utf8(text):
        raise NoteError("malformed note: not valid UTF-8")
    for char in text:
        if ord(char) < 0x20 and char != "\n":
            raise NoteError("malformed note: control character")


def sign(text: str, signers: Iterable[Signer]) -> str:
    """Sign the note ``text`` (must end in a newline) with each signer; return the signed note."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise NoteError("malformed note: text must end in a newline")
    _check_note_characters(text)
    message = text.encode("utf-8")
    lines = []
    seen = set()
    for signer in signers:
        if not is_valid_name(signer.name):
            raise NoteError("invalid signer")
        identity = (signer.name, signer.key_id)
        if identity in seen:
            raise NoteError(f"duplicate signer {signer.name}+{signer.key_id:08x}")
        seen.add(identity)
        signature = signer.key_id.to_bytes(4, "big") + signer.sign(message)
        lines.append(f"{_SIGNATURE_PREFIX}{signer.name} {base64.b64encode(signature).decode('ascii')}\n")
    if not lines:
        raise NoteError("no signers")
    return text + "\n" + "".join(lines)


@dataclass(frozen=True)
class Signature:
    """One signature line of a note: key ``name``, ``key_id`` and the base64 text."""

    name: str
    key_id: int
    base64: str


@dataclass(frozen=True)
class Note:
    """An opened note: its text, verified signatures and signatures by unknown keys."""

    text: str
    signatures: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


def open_note(note: str | bytes, verifiers: Iterable[Verifier]) -> Note:
    """Parse ``note`` and check its signatures against ``verifiers``; see the module docstring."""
    if isinstance(note, (bytes, bytearray)):
        try:
            note = bytes(note).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("malformed note: not valid UTF-8") from exc
    if not isinstance(note, str):
        raise NoteError("malformed note")
    _check_note_characters(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("malformed note: signature block must end in a newline")
    known: dict[tuple[str, int], list[Verifier]] = {}
    for verifier in verifiers:
        known.setdefault((verifier.name, verifier.key_id), []).append(verifier)
    message = text.encode("utf-8")
    verified: list[Signature] = []
    unverified: list[Signature] = []
    seen: set[tuple[str, int]] = set()
    seen_unverified: set[str] = set()
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    for line in lines:
        if not line.startswith(_SIGNATURE_PREFIX):
            raise NoteError("malformed note: bad signature line")
        body = line[len(_SIGNATURE_PREFIX) :]
        name, _, signature_b64 = body.partition(" ")
        if not is_valid_name(name) or not signature_b64:
            raise NoteError("malformed note: bad signature line")
        raw = _decode_base64(signature_b64)
        if len(raw) < 5:
            raise NoteError("malformed note: signature too short")
        identifier = int.from_bytes(raw[:4], "big")
        entry = Signature(name, identifier, signature_b64)
        candidates = known.get((name, identifier))
        if candidates is None:
            if body not in seen_unverified:
                seen_unverified.add(body)
                unverified.append(entry)
            continue
        if len(candidates) > 1:
            raise NoteError(f"ambiguous key {name}+{identifier:08x}")
        if (name, identifier) in seen:
            continue
        seen.add((name, identifier))
        if not candidates[0].verify(message, raw[4:]):
            raise InvalidSignatureError(name, identifier)
        verified.append(entry)
    if not verified:
        raise UnverifiedNoteError(text, [(sig.name, sig.key_id) for sig in unverified])
    return Note(text, tuple(verified), tuple(unverified))


def open(note: str | bytes, verifiers: Iterable[Verifier]) -> tuple[str, list[str]]:  # noqa: A001
    """Open a signed note: return its text and the names of the keys that verified it."""
    opened = open_note(note, verifiers)
    return opened.text, [signature.name for signature in opened.signatures]
