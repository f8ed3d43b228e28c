"""A receipt (C2SP tlog-proof text) checked offline against the pinned key.

:func:`verify_receipt` parses the text, opens its checkpoint with the pinned
key (for the key's own origin) and checks the inclusion proof of ``leaf`` at
the checkpoint's size; each failure is its own error:
:class:`~app.clients.errors.MalformedAnswer` (not tlog-proof text),
:class:`~app.clients.errors.CheckpointSignatureError`,
:class:`~app.clients.errors.InclusionError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from app import tlog
from app.tlog import note
from app.tlog.tlog_proof import HEADER

from .errors import InclusionError, MalformedAnswer
from .items import open_checkpoint


@dataclass(frozen=True)
class VerifiedReceipt:
    index: int
    checkpoint: tlog.Checkpoint


def is_receipt(text: str) -> bool:
    """Whether ``text`` starts like C2SP tlog-proof text (a receipt, not a package file)."""
    return text.startswith(HEADER + "\n")


def verify_receipt(text: str, leaf: bytes, verifier: note.Verifier) -> VerifiedReceipt:
    """Check that ``leaf`` is proven by the receipt ``text`` in a checkpoint the pinned key signed."""
    try:
        proof = tlog.TlogProof.parse(text)
    except tlog.TlogError as exc:
        raise MalformedAnswer(f"the receipt is not C2SP tlog-proof text: {exc}") from exc
    checkpoint = open_checkpoint(proof.checkpoint, verifier, "receipt")
    try:
        tlog.verify_inclusion(leaf, proof.index, checkpoint.size, proof.hashes, checkpoint.root_hash)
    except tlog.ProofError as exc:
        raise InclusionError(f"entry {proof.index} is not proven in the receipt's checkpoint: {exc}") from exc
    return VerifiedReceipt(proof.index, checkpoint)
