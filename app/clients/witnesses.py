"""Insisting on witnesses: an answer counts only when witnessed checkpoints vouch for it.

``pubtrail verify`` and ``pubtrail blast-radius`` with ``--witness VKEY``
(repeatable) and ``--witnesses-required K`` check, besides everything else:

- the server's ``/checkpoint`` is signed by the pinned log key and carries
  valid cosignatures (C2SP cosignature/v1) from at least K distinct given
  witness keys (a line by a given key that does not verify fails outright);
- the answer's checkpoint and that witnessed one are the same tree or one
  extends the other (a consistency proof from the server, checked against
  both roots), so the answer is not from a split view;
- every entry the answer relies on is below the witnessed size (an entry
  logged after the newest witnessed checkpoint is not witnessed yet).

Failures raise :class:`WitnessError` (check ``witness cosignatures``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from app import tlog
from app.tlog import note
from app.tlog.cosignature import CosignatureVerifier, verify_cosignatures

from .errors import MalformedAnswer, VerificationError
from .http import Server


class WitnessError(VerificationError):
    check = "witness cosignatures"


@dataclass
class WitnessPolicy:
    """The witness keys a client trusts and how many of them must have cosigned."""

    verifiers: Sequence[CosignatureVerifier]
    required: int
    _witnessed: tuple[tlog.Checkpoint, list[str]] | None = field(default=None, repr=False)
    _consistent: set[tuple[int, bytes]] = field(default_factory=set, repr=False)

    @classmethod
    def parse(cls, keys: Iterable[str], required: int | None) -> WitnessPolicy | None:
        """From ``--witness`` keys and ``--witnesses-required`` (default: all keys); None without keys.

        Raises ValueError saying what is wrong."""
        keys = list(keys)
        if not keys:
            if required:
                raise ValueError("--witnesses-required needs --witness keys")
            return None
        verifiers = []
        for key in keys:
            try:
                verifiers.append(CosignatureVerifier(key))
            except tlog.TlogError as exc:
                raise ValueError(f"--witness {key!r} is not a witness verifier key: {exc}") from exc
        if len({(v.name, v.key_id) for v in verifiers}) != len(verifiers):
            raise ValueError("--witness names one key twice")
        required = len(verifiers) if required is None else required
        if not 1 <= required <= len(verifiers):
            raise ValueError(f"--witnesses-required must be between 1 and the {len(verifiers)} --witness keys")
        return cls(verifiers, required)

    def witnessed(self, server: Server, log_verifier: note.Verifier) -> tuple[tlog.Checkpoint, list[str]]:
        """The server's ``/checkpoint`` and the witnesses that cosigned it, once it meets the policy."""
        if self._witnessed is None:
            text = server.get("/checkpoint", accept="text/plain").text
            self._witnessed = check_witnessed(text, log_verifier, self.verifiers, self.required)
        return self._witnessed

    def vouch(self, server: Server, log_verifier: note.Verifier, checkpoint: tlog.Checkpoint, indexes: Iterable[int]) -> None:
        """Accept ``checkpoint`` (already verified against the log key) and the entries at ``indexes``
        only if the witnessed checkpoint is consistent with it and covers them."""
        witnessed, names = self.witnessed(server, log_verifier)
        if (checkpoint.size, checkpoint.root_hash) not in self._consistent:
            _check_consistent(server, witnessed, checkpoint)
            self._consistent.add((checkpoint.size, checkpoint.root_hash))
        beyond = sorted(i for i in indexes if i >= witnessed.size)
        if beyond:
            raise WitnessError(
                f"entry {beyond[0]} is beyond the newest checkpoint the witnesses cosigned (size {witnessed.size}, "
                f"by {', '.join(names)}): it is not witnessed yet; try again later"
            )


def check_witnessed(
    text: str, log_verifier: note.Verifier, verifiers: Sequence[CosignatureVerifier], required: int
) -> tuple[tlog.Checkpoint, list[str]]:
    """Open a checkpoint note signed by the log and cosigned by ``required`` of ``verifiers``."""
    try:
        checkpoint = tlog.open_checkpoint(text, [log_verifier], origin=log_verifier.name)
        cosigned = verify_cosignatures(text, [log_verifier], verifiers)
    except tlog.TlogError as exc:
        raise WitnessError(f"the server's checkpoint does not verify with the log and witness keys: {exc}") from exc
    names = sorted({c.name for c in cosigned})
    if len(names) < required:
        raise WitnessError(
            f"the server's checkpoint (size {checkpoint.size}) has {len(names)} valid cosignature(s) from the given "
            f"witnesses ({', '.join(names) or 'none'}), {required} required"
        )
    return checkpoint, names


def _check_consistent(server: Server, witnessed: tlog.Checkpoint, checkpoint: tlog.Checkpoint) -> None:
    small, big = sorted((witnessed, checkpoint), key=lambda c: c.size)
    if small.size == big.size:
        if small.root_hash != big.root_hash:
            raise WitnessError(f"split view: the answer's checkpoint and the witnessed one differ at size {small.size}")
        return
    if small.size == 0:
        return
    answer = server.get_json("/api/v1/log/proof/consistency", {"first": small.size, "second": big.size})
    try:
        hashes = [bytes.fromhex(h) for h in answer["hashes"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedAnswer("the consistency proof answer has no list of hex hashes") from exc
    try:
        tlog.verify_consistency(small.size, big.size, hashes, small.root_hash, big.root_hash)
    except tlog.ProofError as exc:
        raise WitnessError(
            f"split view: the answer's checkpoint (size {checkpoint.size}) is not consistent with the witnessed "
            f"one (size {witnessed.size}): {exc}"
        ) from exc
