"""c2sp.org/tlog-proof@v1: an offline-verifiable proof that an entry is in a log.

Format (lines end in a newline)::

    c2sp.org/tlog-proof@v1
    [extra <base64 of opaque, unauthenticated extra data>]
    index <decimal, no leading zeros>
    <base64 inclusion proof hash>          (zero or more lines, leaf's sibling first)
    <empty line>
    <the signed checkpoint note, verbatim>

:meth:`TlogProof.parse` accepts only that form (canonical base64, 32-byte
hashes, a non-empty checkpoint ending in a newline). :meth:`TlogProof.verify`
opens the checkpoint against trusted keys and checks the inclusion proof.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .checkpoint import Checkpoint, CheckpointError, decode_hash, open_checkpoint
from .errors import TlogProofError
from .hashing import HASH_SIZE
from .proofs import verify_inclusion

HEADER = "c2sp.org/tlog-proof@v1"
_INDEX_RE = re.compile(r"index (0|[1-9][0-9]{0,18})")
_MAX_PROOF_HASHES = 63


@dataclass(frozen=True)
class TlogProof:
    """Entry ``index``, inclusion proof ``hashes``, signed ``checkpoint`` note text, optional ``extra``."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if isinstance(self.index, bool) or not isinstance(self.index, int) or self.index < 0:
            raise TlogProofError(f"proof index {self.index!r} out of range")
        object.__setattr__(self, "hashes", tuple(bytes(value) for value in self.hashes))
        if len(self.hashes) > _MAX_PROOF_HASHES:
            raise TlogProofError("too many proof hashes")
        if any(len(value) != HASH_SIZE for value in self.hashes):
            raise TlogProofError(f"proof hashes must be {HASH_SIZE} bytes")
        if not isinstance(self.checkpoint, str) or not self.checkpoint.endswith("\n"):
            raise TlogProofError("checkpoint note must be text ending in a newline")
        if self.extra is not None:
            object.__setattr__(self, "extra", bytes(self.extra))

    def to_text(self) -> str:
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode("ascii"))
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(value).decode("ascii") for value in self.hashes)
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def parse(cls, text: str) -> TlogProof:
        if not isinstance(text, str):
            raise TlogProofError("tlog-proof must be text")
        header, separator, rest = text.partition("\n")
        if header != HEADER or not separator:
            raise TlogProofError(f"tlog-proof must start with {HEADER!r}")
        line, separator, rest = rest.partition("\n")
        extra = None
        if line.startswith("extra ") and separator:
            extra_text = line[len("extra ") :]
            try:
                extra = base64.b64decode(extra_text.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
                raise TlogProofError("tlog-proof extra data is not valid base64") from exc
            if base64.b64encode(extra).decode("ascii") != extra_text:
                raise TlogProofError("tlog-proof extra data is not canonical base64")
            line, separator, rest = rest.partition("\n")
        match = _INDEX_RE.fullmatch(line)
        if match is None or not separator:
            raise TlogProofError("tlog-proof needs an 'index <decimal>' line")
        index = int(match[1])
        hashes = []
        while True:
            line, separator, rest = rest.partition("\n")
            if not separator:
                raise TlogProofError("tlog-proof is truncated before the checkpoint")
            if line == "":
                break
            if len(hashes) == _MAX_PROOF_HASHES:
                raise TlogProofError("too many proof hashes")
            try:
                hashes.append(decode_hash(line, "proof hash"))
            except CheckpointError as exc:
                raise TlogProofError(str(exc)) from exc
        if not rest:
            raise TlogProofError("tlog-proof has no checkpoint")
        return cls(index, tuple(hashes), rest, extra)

    def verify(self, leaf_hash: bytes, verifiers: Iterable, origin: str | None = None) -> Checkpoint:
        """Open the checkpoint against ``verifiers`` and check the inclusion of ``leaf_hash``.

        Returns the checkpoint; raises ``NoteError``, ``CheckpointError`` or ``ProofError``.
        """
        checkpoint = open_checkpoint(self.checkpoint, verifiers, origin)
        verify_inclusion(leaf_hash, self.index, checkpoint.size, list(self.hashes), checkpoint.root_hash)
        return checkpoint
