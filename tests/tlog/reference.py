"""A naive RFC 9162 section 2.1 reference, straight from the recursive definitions.

Used only by tests, to cross-check the tiled and in-memory implementations.
``MTH`` results are memoised per (start, end) of one shared leaf list, so
checking every proof of every prefix stays cheap.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly less than ``n`` (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class ReferenceTree:
    """Leaves appended to a list; every function takes explicit sizes."""

    def __init__(self, entries: list[bytes] | None = None) -> None:
        self.entries: list[bytes] = []
        self._mth = lru_cache(maxsize=None)(self._mth_uncached)
        for entry in entries or []:
            self.append(entry)

    def append(self, entry: bytes) -> None:
        self.entries.append(entry)

    def _mth_uncached(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return _sha(b"")
        if n == 1:
            return _sha(b"\x00" + self.entries[start])
        k = largest_power_of_two_below(n)
        return _sha(b"\x01" + self._mth(start, start + k) + self._mth(start + k, end))

    def root(self, size: int) -> bytes:
        return self._mth(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self._path(index, 0, size)

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = largest_power_of_two_below(n)
        if m < k:
            return self._path(m, start, start + k) + [self._mth(start + k, end)]
        return self._path(m - k, start + k, end) + [self._mth(start, start + k)]

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        if size1 == 0 or size1 == size2:
            return []
        return self._subproof(size1, 0, size2, True)

    def _subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [self._mth(start, end)]
        k = largest_power_of_two_below(n)
        if m <= k:
            return self._subproof(m, start, start + k, complete) + [self._mth(start + k, end)]
        return self._subproof(m - k, start + k, end, False) + [self._mth(start, start + k)]
