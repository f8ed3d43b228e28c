"""Verification of inclusion and consistency proofs (RFC 9162 2.1.3.2, 2.1.4.2).

These functions take plain values and accept proofs from any conforming log
(CT, Sigstore Rekor, ...). As in transparency-dev/merkle, computing a root
from a proof and comparing it with the expected root are separate steps:
``root_from_inclusion_proof`` / ``roots_from_consistency_proof`` compute,
``verify_inclusion`` / ``verify_consistency`` compare and raise a
:class:`~app.tlog.errors.RootMismatchError` carrying ``expected`` and
``calculated`` roots. Structural problems (index >= size, size1 > size2,
wrong number of hashes, a hash that is not 32 bytes) raise
:class:`~app.tlog.errors.ProofError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .errors import ProofError, RootMismatchError
from .hashing import EMPTY_ROOT, HASH_SIZE

_sha256 = hashlib.sha256


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, (bytes, bytearray)) or len(value) != HASH_SIZE:
        raise ProofError(f"{what} is not a {HASH_SIZE}-byte hash")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, value in enumerate(proof):
        _check_hash(value, f"proof hash {position}")


def root_from_inclusion_proof(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """Return the root that ``proof`` leads to for ``leaf_hash`` at ``index`` in a tree of ``size``.

    Raises :class:`ProofError` if the proof cannot be a proof for that index
    and size (too short, too long, index out of range, bad hash lengths).
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} out of range for tree size {size}")
    _check_hash(leaf_hash, "leaf hash")
    _check_proof_hashes(proof)
    sha = _sha256
    node_index = index
    last_index = size - 1
    result = bytes(leaf_hash)
    for sibling in proof:
        if last_index == 0:
            raise ProofError(f"inclusion proof has {len(proof)} hashes, too many for index {index} in size {size}")
        if node_index & 1 or node_index == last_index:
            result = sha(b"\x01" + sibling + result).digest()
            if not node_index & 1:
                while node_index and not node_index & 1:
                    node_index >>= 1
                    last_index >>= 1
        else:
            result = sha(b"\x01" + result + sibling).digest()
        node_index >>= 1
        last_index >>= 1
    if last_index != 0:
        raise ProofError(f"inclusion proof has {len(proof)} hashes, too few for index {index} in size {size}")
    return result


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``proof`` shows ``leaf_hash`` at ``index`` in the tree of ``size`` with ``root``.

    Returns None on success; raises :class:`ProofError` (``RootMismatchError``
    with ``expected``/``calculated`` when the proof leads to another root).
    """
    _check_hash(root, "root")
    calculated = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if calculated != root:
        raise RootMismatchError("inclusion proof root", bytes(root), calculated)


def roots_from_consistency_proof(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> tuple[bytes, bytes]:
    """Return ``(root1, root2)`` as calculated from a consistency proof.

    ``root1`` is needed as input because a proof from a power-of-two size
    omits it. The caller compares both results with the trusted roots
    (see :func:`verify_consistency`). Requires ``0 < size1 < size2``.
    """
    if not 0 < size1 < size2:
        raise ProofError(f"no consistency proof hashes exist from size {size1} to size {size2}")
    _check_hash(root1, "first root")
    _check_proof_hashes(proof)
    if not proof:
        raise ProofError(f"consistency proof from size {size1} to size {size2} is empty")
    sha = _sha256
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, bytes(root1))
    first_index = size1 - 1
    second_index = size2 - 1
    while first_index & 1:
        first_index >>= 1
        second_index >>= 1
    first_root = second_root = path[0]
    for sibling in path[1:]:
        if second_index == 0:
            raise ProofError(f"consistency proof has {len(proof)} hashes, too many for sizes {size1}, {size2}")
        if first_index & 1 or first_index == second_index:
            first_root = sha(b"\x01" + sibling + first_root).digest()
            second_root = sha(b"\x01" + sibling + second_root).digest()
            if not first_index & 1:
                while first_index and not first_index & 1:
                    first_index >>= 1
                    second_index >>= 1
        else:
            second_root = sha(b"\x01" + second_root + sibling).digest()
        first_index >>= 1
        second_index >>= 1
    if second_index != 0:
        raise ProofError(f"consistency proof has {len(proof)} hashes, too few for sizes {size1}, {size2}")
    return bytes(first_root), bytes(second_root)


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of ``size1`` with ``root1`` is a prefix of the tree of ``size2`` with ``root2``.

    Equal sizes need an empty proof and equal roots; from size 0 only an
    empty proof and ``root1 == EMPTY_ROOT`` are accepted. Raises
    :class:`ProofError` (``RootMismatchError`` naming which root differs).
    """
    if not 0 <= size1 <= size2:
        raise ProofError(f"cannot prove consistency from size {size1} to size {size2}")
    _check_hash(root1, "first root")
    _check_hash(root2, "second root")
    if size1 == size2 or size1 == 0:
        if proof:
            raise ProofError(
                f"consistency proof from size {size1} to size {size2} must be empty, has {len(proof)} hashes"
            )
        if size1 == 0:
            if root1 != EMPTY_ROOT:
                raise RootMismatchError("empty tree root", EMPTY_ROOT, bytes(root1))
        elif root1 != root2:
            raise RootMismatchError(f"root of equal size {size1}", bytes(root2), bytes(root1))
        return
    calculated1, calculated2 = roots_from_consistency_proof(size1, size2, proof, root1)
    if calculated1 != root1:
        raise RootMismatchError("consistency proof first root", bytes(root1), calculated1)
    if calculated2 != root2:
        raise RootMismatchError("consistency proof second root", bytes(root2), calculated2)
