"""tlog-tiles entry bundles: each entry prefixed by its big-endian uint16 length."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import EntryBundleError

MAX_ENTRY_SIZE = 0xFFFF
"""Largest entry a bundle can hold (uint16 length prefix)."""


def encode_entry_bundle(entries: Iterable[bytes]) -> bytes:
    """Concatenate ``len(entry).to_bytes(2, "big") + entry`` for each entry."""
    parts = []
    for position, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_SIZE:
            raise EntryBundleError(f"entry {position} is {len(entry)} bytes, more than {MAX_ENTRY_SIZE}")
        parts.append(len(entry).to_bytes(2, "big"))
        parts.append(bytes(entry))
    return b"".join(parts)


def decode_entry_bundle(data: bytes) -> list[bytes]:
    """Split a bundle into its entries; reject a truncated length or entry."""
    entries = []
    offset = 0
    total = len(data)
    while offset < total:
        if offset + 2 > total:
            raise EntryBundleError(f"entry bundle truncated inside a length prefix at byte {offset}")
        length = (data[offset] << 8) | data[offset + 1]
        offset += 2
        if offset + length > total:
            raise EntryBundleError(
                f"entry bundle truncated: entry {len(entries)} needs {length} bytes, {total - offset} left"
            )
        entries.append(bytes(data[offset : offset + length]))
        offset += length
    return entries
