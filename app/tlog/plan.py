"""Pure proof planning: which Merkle tree nodes a root or proof is made of.

A *node* is a pair ``(height, index)``: the complete subtree of ``2**height``
leaves starting at leaf ``index << height``. Every hash of an RFC 9162 root
or proof is the Merkle tree hash ``MTH(D[start:end])`` of a leaf range whose
start is aligned to a power of two at least as large as the range; such a
range splits, left to right, into complete subtrees of strictly decreasing
size (:func:`range_nodes`), and its hash is those subtree hashes folded from
the right (:func:`fold_range`).

So each function here returns a *plan*: a list of groups, one group per
proof hash, each group the tuple of nodes whose fold is that hash. Fetching
the node hashes (from memory or from tiles) and folding them (rehash) is
done by the caller -- see :mod:`app.tlog.tree` and :mod:`app.tlog.memory`.
Nothing here touches storage or hashes anything but in :func:`fold_range`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .errors import ProofError
from .hashing import EMPTY_ROOT, node_hash

Node = tuple[int, int]
"""``(height, index)`` of a complete subtree."""
Group = tuple[Node, ...]
"""Nodes, left to right, whose fold is one hash of a plan."""


def range_nodes(start: int, end: int) -> Group:
    """Split the leaf range ``[start, end)`` into complete subtrees, left to right.

    ``start`` must be a multiple of a power of two ``>= end - start`` (true of
    every range in an RFC 9162 tree); sizes are then strictly decreasing.
    """
    nodes = []
    remaining = end - start
    while remaining:
        height = remaining.bit_length() - 1
        nodes.append((height, start >> height))
        start += 1 << height
        remaining -= 1 << height
    return tuple(nodes)


def root_plan(size: int) -> Group:
    """Nodes whose fold is the root of a tree of ``size`` leaves (empty for size 0)."""
    if size < 0:
        raise ProofError(f"tree size {size} is negative")
    return range_nodes(0, size)


def inclusion_plan(index: int, size: int) -> list[Group]:
    """Plan of the RFC 9162 inclusion proof of leaf ``index`` in a tree of ``size`` leaves.

    One group per proof hash, from the leaf's sibling up to the root's child.
    At most one group has more than one node (the right border).
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} out of range for tree size {size}")
    groups: list[Group] = []
    for height in range((size - 1).bit_length()):
        sibling = (index >> height) ^ 1
        start = sibling << height
        if start >= size:
            continue
        end = start + (1 << height)
        if end <= size:
            groups.append(((height, sibling),))
        else:
            groups.append(range_nodes(start, size))
    return groups


def consistency_plan(size1: int, size2: int) -> list[Group]:
    """Plan of the RFC 9162 consistency proof between tree sizes ``size1 <= size2``.

    Empty when ``size1`` is 0 or equal to ``size2``.
    """
    if not 0 <= size1 <= size2:
        raise ProofError(f"cannot prove consistency from size {size1} to size {size2}")
    if size1 == 0 or size1 == size2:
        return []
    # Iterative SUBPROOF(m, D[start:end], complete) of RFC 9162 2.1.4.1; the
    # hashes it appends come out last-first, so collect and reverse.
    groups: list[Group] = []
    start, end, old = 0, size2, size1
    complete = True
    while True:
        width = end - start
        if old == width:
            if not complete:
                groups.append(range_nodes(start, end))
            break
        split = 1 << ((width - 1).bit_length() - 1)
        if old <= split:
            groups.append(range_nodes(start + split, end))
            end = start + split
        else:
            groups.append(range_nodes(start, start + split))
            start += split
            old -= split
            complete = False
    groups.reverse()
    return groups


def fold_range(hashes: Sequence[bytes]) -> bytes:
    """Fold the hashes of a range's complete subtrees (left to right) into its hash."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for position in range(len(hashes) - 2, -1, -1):
        result = node_hash(hashes[position], result)
    return result


def plan_nodes(groups: Sequence[Group]) -> list[Node]:
    """All nodes of a plan, in order (the fetch list)."""
    return [node for group in groups for node in group]


def rehash(groups: Sequence[Group], lookup: Callable[[int, int], bytes]) -> list[bytes]:
    """Turn a plan into hashes: fetch each node with ``lookup(height, index)`` and fold each group."""
    result = []
    for group in groups:
        if len(group) == 1:
            result.append(lookup(*group[0]))
        else:
            result.append(fold_range([lookup(height, index) for height, index in group]))
    return result
