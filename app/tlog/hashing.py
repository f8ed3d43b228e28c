"""RFC 9162 section 2.1 hashing: leaves, interior nodes and the empty tree.

``leaf_hash(d) = SHA-256(0x00 || d)``, ``node_hash(l, r) = SHA-256(0x01 || l || r)``,
and the root of the empty tree is ``SHA-256("")``.
"""

from __future__ import annotations

import hashlib

HASH_SIZE = 32
"""Size in bytes of every hash in the log (SHA-256)."""

_sha256 = hashlib.sha256

EMPTY_ROOT: bytes = _sha256(b"").digest()
"""Root hash of the empty tree."""


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 hash of the leaf holding ``data``."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 hash of the interior node with children ``left``, ``right``."""
    return _sha256(b"\x01" + left + right).digest()


def leaf_hashes(items) -> list[bytes]:
    """Return ``[leaf_hash(item) for item in items]`` (a fast batch form)."""
    sha = _sha256
    return [sha(b"\x00" + item).digest() for item in items]


def hash_level(hashes: bytes) -> bytes:
    """Hash consecutive pairs of a concatenation of 32-byte hashes.

    ``hashes`` holds ``2k`` (or ``2k+1``; the odd last one is ignored) hashes;
    the result is the concatenation of the ``k`` parent hashes. This is the
    batch step used to build tiles and in-memory levels.
    """
    sha = _sha256
    usable = len(hashes) - len(hashes) % 64
    return b"".join(
        [sha(b"\x01" + hashes[offset : offset + 64]).digest() for offset in range(0, usable, 64)]
    )
