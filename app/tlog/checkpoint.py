"""C2SP tlog-checkpoint note bodies.

A checkpoint body is at least three lines, each ending in a newline::

    <origin>
    <tree size, ASCII decimal, no leading zeros>
    <base64 of the 32-byte root hash>
    [<extension line>...]

The origin and extension lines are non-empty. :meth:`Checkpoint.parse`
accepts only this canonical form (no ``+`` or leading zeros in the size, only
canonical standard base64 of exactly 32 bytes, a final newline).
:func:`open_checkpoint` opens a signed checkpoint note and checks its origin.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import CheckpointError
from .hashing import HASH_SIZE

MAX_TREE_SIZE = (1 << 63) - 1
"""Largest tree size a checkpoint may carry (as Go's sumdb/tlog, int64)."""

_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,18}")


def decode_hash(text: str, what: str = "hash") -> bytes:
    """Decode canonical standard base64 of a 32-byte hash, or raise :class:`CheckpointError`."""
    try:
        value = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise CheckpointError(f"{what} is not valid base64") from exc
    if len(value) != HASH_SIZE:
        raise CheckpointError(f"{what} is {len(value)} bytes, expected {HASH_SIZE}")
    if base64.b64encode(value).decode("ascii") != text:
        raise CheckpointError(f"{what} is not canonical base64")
    return value


def _check_line(line: str, what: str) -> None:
    if not isinstance(line, str) or not line:
        raise CheckpointError(f"{what} is empty")
    if any(ord(char) < 0x20 or char == "\x7f" for char in line):
        raise CheckpointError(f"{what} holds a newline or control character")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: ``origin``, ``size``, ``root_hash`` (32 bytes) and optional ``extensions``."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "checkpoint origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint size {self.size!r} out of range")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root hash must be {HASH_SIZE} bytes")
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for line in self.extensions:
            _check_line(line, "checkpoint extension line")

    def to_text(self) -> str:
        """The checkpoint body (the note text to sign), ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode("ascii"), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body (the text of an opened note)."""
        if not isinstance(text, str) or not text.endswith("\n"):
            raise CheckpointError("checkpoint must end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint needs origin, size and root hash lines")
        origin, size_text, root_text, *extensions = lines
        _check_line(origin, "checkpoint origin")
        if not _SIZE_RE.fullmatch(size_text) or int(size_text) > MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint size {size_text!r} is not a canonical decimal")
        root_hash = decode_hash(root_text, "checkpoint root hash")
        return cls(origin, int(size_text), root_hash, tuple(extensions))


def open_checkpoint(signed_note: str | bytes, verifiers: Iterable, origin: str | None = None) -> Checkpoint:
    """Open a signed checkpoint note against ``verifiers`` and parse it.

    Raises :class:`~app.tlog.errors.NoteError` (signatures) or
    :class:`CheckpointError` (body, or an origin other than ``origin``).
    """
    from .note import open_note

    opened = open_note(signed_note, verifiers)
    checkpoint = Checkpoint.parse(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint origin {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint
