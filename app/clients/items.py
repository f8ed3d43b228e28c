"""One proven log item, checked against a checkpoint signed with the pinned key.

Every answer about log entries pins one signed checkpoint and proves each of
its items at that checkpoint's size. :func:`open_checkpoint` checks the
checkpoint's signature; :func:`verify_item` checks one item against it:

1. the item lies inside the checkpoint (index < size), and its proof was made
   at exactly the checkpoint's size and names the checkpoint's root;
2. its ``entry_bytes`` hash (SHA-256(0x00 || bytes)) to its ``leaf_hash``, and
   are a canonical entry (:func:`app.entries.decode`);
3. the inclusion proof leads from that leaf to the checkpoint's root;
4. whatever the item says besides (``kind``, the decoded ``entry``) equals
   what the verified bytes say.

The shape helpers (``field``, ``integer``, ...) raise
:class:`~app.clients.errors.MalformedAnswer` naming the missing or mistyped
field, so a malformed answer is a clear failure, never a crash.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from app import tlog
from app.entries import Entry, EntryError, decode
from app.tlog import note

from .errors import (
    AnswerMismatchError,
    CheckpointSignatureError,
    EntryBytesError,
    InclusionError,
    MalformedAnswer,
    NotCoveredError,
    ProofSizeError,
)


def field(obj: Any, name: str, types: type | tuple[type, ...], where: str) -> Any:
    """``obj[name]``, which must exist and be of ``types`` (bool is never an int here)."""
    if not isinstance(obj, dict):
        raise MalformedAnswer(f"{where} is not a JSON object")
    if name not in obj:
        raise MalformedAnswer(f"{where} has no {name!r}")
    value = obj[name]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise MalformedAnswer(f"{where}.{name} is not a {_names(types)}")
    if not isinstance(value, types):
        raise MalformedAnswer(f"{where}.{name} is not a {_names(types)}")
    return value


def integer(obj: Any, name: str, where: str) -> int:
    value = field(obj, name, int, where)
    if value < 0:
        raise MalformedAnswer(f"{where}.{name} is negative")
    return value


def hex_hash(obj: Any, name: str, where: str) -> bytes:
    text = field(obj, name, str, where)
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != tlog.HASH_SIZE or value.hex() != text:
        raise MalformedAnswer(f"{where}.{name} is not {tlog.HASH_SIZE * 2} lower-case hex digits")
    return value


def _names(types: type | tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))


def open_checkpoint(signed_note: Any, verifier: note.Verifier, where: str = "answer") -> tlog.Checkpoint:
    """The checkpoint of ``signed_note`` if the pinned ``verifier`` signed it for its own origin."""
    if not isinstance(signed_note, str):
        raise MalformedAnswer(f"{where}.checkpoint is not signed note text")
    try:
        return tlog.open_checkpoint(signed_note, [verifier], origin=verifier.name)
    except tlog.UnverifiedNoteError as exc:
        signers = ", ".join(f"{name}+{key_id:08x}" for name, key_id in exc.unverified) or "none"
        raise CheckpointSignatureError(
            f"{where}.checkpoint is not signed by the pinned key {verifier.name}+{verifier.key_id:08x} "
            f"(signed by: {signers})"
        ) from exc
    except tlog.TlogError as exc:
        raise CheckpointSignatureError(f"{where}.checkpoint does not verify with the pinned key: {exc}") from exc


@dataclass(frozen=True)
class VerifiedItem:
    """A log entry proven to be at ``index`` in the checkpoint it was checked against."""

    index: int
    leaf_hash: bytes
    entry_bytes: bytes
    entry: Entry


def verify_item(
    item: Any,
    checkpoint: tlog.Checkpoint,
    where: str,
    *,
    proof_field: str = "inclusion_proof",
    kind: str | None = None,
) -> VerifiedItem:
    """Check one item (see the module docstring) and return its verified entry.

    ``proof_field`` names the item's proof object (``inclusion_proof`` in
    entry-shaped items, ``proof`` in blast-radius items); ``kind``, when
    given, is the entry kind the item must hold.
    """
    index = integer(item, "index", where)
    leaf = hex_hash(item, "leaf_hash", where)
    encoded = field(item, "entry_bytes", str, where)
    try:
        entry_bytes = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise MalformedAnswer(f"{where}.entry_bytes is not base64") from exc
    proof = field(item, proof_field, dict, where)
    proof_where = f"{where}.{proof_field}"
    tree_size = integer(proof, "tree_size", proof_where)
    root = hex_hash(proof, "root_hash", proof_where)
    hashes_text = field(proof, "hashes", list, proof_where)
    hashes = [hex_hash({"hash": h}, "hash", f"{proof_where}.hashes[{i}]") for i, h in enumerate(hashes_text)]
    if "index" in proof and integer(proof, "index", proof_where) != index:
        raise AnswerMismatchError(f"{proof_where}.index {proof['index']} is not the item's index {index}")

    if index >= checkpoint.size:
        raise NotCoveredError(
            f"{where} is entry {index}, beyond the signed checkpoint of size {checkpoint.size}"
        )
    if tree_size != checkpoint.size:
        raise ProofSizeError(
            f"{where}'s proof was made at tree size {tree_size}, not at the signed checkpoint's size {checkpoint.size}"
        )
    if root != checkpoint.root_hash:
        raise InclusionError(f"{proof_where}.root_hash is not the signed checkpoint's root")

    computed = tlog.leaf_hash(entry_bytes)
    if computed != leaf:
        raise EntryBytesError(
            f"{where}'s entry bytes hash to leaf {computed.hex()}, not to its leaf_hash {leaf.hex()}"
        )
    try:
        entry = decode(entry_bytes)
    except EntryError as exc:
        raise EntryBytesError(f"{where}'s entry bytes are not a valid entry: {exc}") from exc
    try:
        tlog.verify_inclusion(computed, index, checkpoint.size, hashes, checkpoint.root_hash)
    except tlog.ProofError as exc:
        raise InclusionError(f"{where} (entry {index}) is not proven in the signed checkpoint: {exc}") from exc

    if "kind" in item and item["kind"] != entry.kind:
        raise AnswerMismatchError(f"{where}.kind is {item['kind']!r}, the entry is a {entry.kind!r} entry")
    if "entry" in item and item["entry"] != entry.to_json():
        logged = entry.to_json()
        said = item["entry"] if isinstance(item["entry"], dict) else {}
        differ = sorted(k for k in set(said) | set(logged) if said.get(k, ...) != logged.get(k, ...)) or ["(all)"]
        raise AnswerMismatchError(
            f"{where}.entry is not what its verified entry bytes say (differs in {', '.join(differ)})"
        )
    if kind is not None and entry.kind != kind:
        raise AnswerMismatchError(f"{where} holds a {entry.kind!r} entry where a {kind!r} entry belongs")
    return VerifiedItem(index, computed, entry_bytes, entry)


def expect_equal(where: str, name: str, answered: Any, logged: Any) -> None:
    """A plain field of an answer must equal what the verified entry says."""
    if answered != logged:
        raise AnswerMismatchError(f"{where}.{name} is {answered!r}, but the logged entry says {logged!r}")
