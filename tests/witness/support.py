"""A log in memory that signs checkpoints, and helpers to ask a witness."""

from __future__ import annotations

import base64

from app import tlog
from app.tlog import note

ORIGIN = "witness-test.example/log"


class MemoryLog:
    """A signed log: ``grow(n)`` appends n entries; ``note(size)`` its signed checkpoint at a size."""

    def __init__(self, origin: str = ORIGIN, seed: bytes = b"\x11" * 32, salt: bytes = b"") -> None:
        skey, vkey = note.generate_key(origin, seed)
        self.signer = note.Signer(skey)
        self.verifier_key = vkey
        self.origin = origin
        self.tree = tlog.MemoryTree()
        self.salt = salt

    def grow(self, count: int) -> int:
        for _ in range(count):
            self.tree.append(self.salt + b"entry %d" % self.tree.size)
        return self.tree.size

    def checkpoint(self, size: int | None = None) -> tlog.Checkpoint:
        size = self.tree.size if size is None else size
        return tlog.Checkpoint(self.origin, size, self.tree.root(size))

    def note(self, size: int | None = None, signer: note.Signer | None = None) -> str:
        return note.sign(self.checkpoint(size).to_text(), [signer or self.signer])

    def body(self, old: int, size: int | None = None, proof: list[bytes] | None = None) -> bytes:
        size = self.tree.size if size is None else size
        if proof is None:
            proof = self.tree.consistency_proof(old, size) if 0 < old < size else []
        lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
        return f"old {old}\n{lines}\n{self.note(size)}".encode()
