"""Typed errors of the log core.

Every error raised on purpose by ``app.tlog`` derives from :class:`TlogError`::

    TlogError
    ├── ProofError            a proof is malformed or does not match its root(s)
    │   └── RootMismatchError     well-formed, but the calculated root differs
    ├── TileError             storage returned a tile of the wrong size, or a
    │   │                     tile/leaf-hash argument is out of range
    │   └── TilePathError (also ValueError)  a non-canonical tile path
    ├── EntryBundleError      a malformed tlog-tiles entry bundle
    ├── NoteError             a malformed signed note or key string
    │   ├── UnverifiedNoteError   no signature by a known key
    │   └── InvalidSignatureError a known key's signature does not verify
    ├── CheckpointError       a malformed tlog-checkpoint body
    └── TlogProofError        a malformed c2sp.org/tlog-proof@v1 text
"""

from __future__ import annotations


class TlogError(Exception):
    """Base class of every error raised by the log core."""


class ProofError(TlogError):
    """A proof that must be rejected.

    ``expected`` and ``calculated`` are set (to the root given by the caller
    and the root the proof leads to) when the proof was well-formed but led to
    a different root; they are ``None`` for structural errors (wrong length,
    index out of range, ...).
    """

    def __init__(
        self,
        message: str,
        *,
        expected: bytes | None = None,
        calculated: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.calculated = calculated


class RootMismatchError(ProofError):
    """A well-formed proof whose calculated root differs from the expected one."""

    def __init__(self, what: str, expected: bytes, calculated: bytes) -> None:
        super().__init__(
            f"{what} mismatch: expected {expected.hex()}, calculated {calculated.hex()}",
            expected=expected,
            calculated=calculated,
        )


class TileError(TlogError):
    """Tile data or tile arguments are wrong (storage is not trusted)."""


class TilePathError(TileError, ValueError):
    """A tile path that is not in canonical C2SP tlog-tiles form."""


class EntryBundleError(TlogError):
    """A tlog-tiles entry bundle that cannot be encoded or decoded."""


class NoteError(TlogError):
    """A malformed signed note, key string or signer."""


class UnverifiedNoteError(NoteError):
    """The note parsed, but carries no signature by any known key.

    ``text`` is the note text and ``unverified`` the ``(name, key_id)`` pairs
    of the signatures that were present.
    """

    def __init__(self, text: str, unverified: list[tuple[str, int]]) -> None:
        super().__init__("note has no verifiable signatures")
        self.text = text
        self.unverified = unverified


class InvalidSignatureError(NoteError):
    """A signature by a known key (name and key id) failed to verify."""

    def __init__(self, name: str, key_id: int) -> None:
        super().__init__(f"invalid signature for key {name}+{key_id:08x}")
        self.name = name
        self.key_id = key_id


class CheckpointError(TlogError):
    """A checkpoint body that is not a canonical C2SP tlog-checkpoint."""


class TlogProofError(TlogError):
    """A text that is not a canonical c2sp.org/tlog-proof@v1 proof."""
