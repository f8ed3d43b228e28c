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
``pubtrail monitor --witness`` applies the first rule (:meth:`WitnessPolicy.check`)
to every checkpoint it follows, from a server or a static copy.

``pubtrail monitor --cosign KEY`` makes the monitor a witness of the log it
follows (:class:`Cosigner`): it cosigns (cosignature/v1) the newest checkpoint
it verified and submits the line to ``POST /api/v1/log/cosignatures``. Its
memory is the mirror: it cosigns only the mirror's newest verified checkpoint,
which the monitor checked to extend everything it verified before, and a
compare-and-swap on the ``cosigned`` row of the mirror's SQLite file (the
last checkpoint cosigned, which must be a prefix of the verified tree) keeps it
from cosigning two inconsistent checkpoints, across restarts and concurrent
monitors on one state folder too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from app import tlog
from app.tlog import note
from app.tlog.cosignature import CosignatureSigner, CosignatureVerifier, signature_lines, verify_cosignatures

from .errors import MalformedAnswer, RefusedAnswer, Unreachable, VerificationError
from .http import DEFAULT_TIMEOUT, Server, _detail
from .mirror import Mirror, MirrorError


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

    def check(self, text: str, log_verifier: note.Verifier) -> tuple[tlog.Checkpoint, list[str]]:
        """The checkpoint note ``text`` and its cosigners, if it meets the policy (else WitnessError)."""
        return check_witnessed(text, log_verifier, self.verifiers, self.required)

    def witnessed(self, server: Server, log_verifier: note.Verifier) -> tuple[tlog.Checkpoint, list[str]]:
        """The server's ``/checkpoint`` and the witnesses that cosigned it, once it meets the policy."""
        if self._witnessed is None:
            text = server.get("/checkpoint", accept="text/plain").text
            self._witnessed = self.check(text, log_verifier)
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


class SplitViewError(VerificationError):
    """The log refuses a checkpoint signed with its key that the monitor verified: it shows another history."""

    check = "split view"


_COSIGNED = """CREATE TABLE IF NOT EXISTS cosigned (
    id INTEGER PRIMARY KEY CHECK (id = 1), size INTEGER NOT NULL, root BLOB NOT NULL, line TEXT NOT NULL
)"""


@dataclass(frozen=True)
class Cosigned:
    """What one :meth:`Cosigner.cosign_step` did: the checkpoint cosigned, the line, and the log's answer."""

    size: int
    line: str
    answer: dict[str, Any] | None  # None: already accepted by the log in this process


class Cosigner:
    """The monitor as a witness of the log at ``server`` (a pubtrail API server), with ``signer``'s key.

    ``clock`` (Unix seconds) dates the cosignatures. ``transport`` replaces
    the network in tests.
    """

    def __init__(
        self,
        signer: CosignatureSigner,
        mirror: Mirror,
        server: str,
        clock: Callable[[], float],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.signer = signer
        self.mirror = mirror
        self.server = Server(server, timeout=timeout, transport=transport)
        self._client = httpx.Client(timeout=timeout, transport=transport)
        self.clock = clock
        self.id = f"{signer.name}+{signer.key_id:08x}"
        self._accepted: str | None = None
        try:
            mirror.conn.execute(_COSIGNED)
        except Exception as exc:  # sqlite3.Error: the mirror's file is unusable
            raise MirrorError(f"cannot keep the cosigned checkpoint in {mirror.folder}: {exc}") from exc

    def close(self) -> None:
        self.server.close()
        self._client.close()

    def __enter__(self) -> Cosigner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def newest_checkpoint(self) -> str:
        """The log's newest signed checkpoint (``GET /api/v1/log``), unverified.

        A witness follows the newest checkpoint, not ``/checkpoint``: that one
        may wait for this very cosignature."""
        answer = self.server.get_json("/api/v1/log")
        signed = answer.get("checkpoint") if isinstance(answer, dict) else None
        if not isinstance(signed, str):
            raise MalformedAnswer(f"{self.server.url}/api/v1/log has no checkpoint text")
        return signed

    def cosign(self, checkpoint: tlog.Checkpoint) -> tuple[str, str]:
        """The checkpoint body and cosignature line of ``checkpoint``, which must be the mirror's
        newest verified one.

        One write transaction on the mirror (compare-and-swap): the
        checkpoint must be the newest verified, the last cosigned one must be
        a prefix of it (its root the verified tree's at its size, and no
        larger), and only then is the line signed and recorded. The same
        checkpoint again gives the recorded line. Anything else raises
        MirrorError and signs nothing."""
        mirror, conn = self.mirror, self.mirror.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            latest = mirror.latest()
            if latest is None or (latest.size, latest.root) != (checkpoint.size, checkpoint.root_hash):
                raise MirrorError(
                    f"the checkpoint of size {checkpoint.size} is not the newest the mirror verified "
                    f"({latest.size if latest else 0}); not cosigned"
                )
            body = signature_lines(latest.note)[0]
            last = conn.execute("SELECT size, root, line FROM cosigned WHERE id = 1").fetchone()
            if last is not None and (last[0], bytes(last[1])) == (latest.size, latest.root):
                conn.execute("COMMIT")
                return body, last[2]
            tree = mirror.tree()
            if tree.size < latest.size:  # another process moved the mirror on since this tree was built
                mirror.forget_tree()
                tree = mirror.tree()
            if tree.size < latest.size or tree.root(latest.size) != latest.root:
                raise MirrorError(f"the mirror's entries do not hash to its checkpoint of size {latest.size}")
            if last is not None and (last[0] > latest.size or tree.root(last[0]) != bytes(last[1])):
                raise MirrorError(
                    f"this witness cosigned size {last[0]} with root {bytes(last[1]).hex()}, which the verified "
                    f"log of size {latest.size} does not extend: a checkpoint inconsistent with it is never cosigned"
                )
            line = self.signer.cosign(body, int(self.clock()))
            conn.execute("INSERT OR REPLACE INTO cosigned VALUES (1, ?, ?, ?)", (latest.size, latest.root, line))
            conn.execute("COMMIT")
            return body, line
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def submit(self, checkpoint_body: str, line: str) -> dict[str, Any]:
        """POST ``checkpoint_body`` with the cosignature ``line`` to the log; its JSON answer.

        A 409 (the log never signed a checkpoint its key signed) raises
        SplitViewError; any other refusal RefusedAnswer."""
        body = checkpoint_body + "\n" + line
        url = self.server.url + "/api/v1/log/cosignatures"
        try:
            response = self._client.post(url, content=body.encode("utf-8"),
                                         headers={"Content-Type": "text/plain; charset=utf-8"})
        except httpx.HTTPError as exc:
            raise Unreachable(f"cannot reach {self.server.url}: {exc or type(exc).__name__}") from exc
        if response.status_code == 409:
            raise SplitViewError(
                f"the log refuses the checkpoint it signed and this monitor verified: {_detail(response)}"
            )
        if not response.is_success:
            raise RefusedAnswer(
                f"{self.server.url} answered {response.status_code} to the cosignature: {_detail(response)}",
                response.status_code,
            )
        try:
            answer = response.json()
        except ValueError as exc:
            raise MalformedAnswer(f"{url} answered without JSON: is it a pubtrail server?") from exc
        if not isinstance(answer, dict) or self.id not in (answer.get("accepted") or ()):
            raise MalformedAnswer(f"{url} did not say it accepted the cosignature of {self.id}")
        return answer

    def cosign_step(self, checkpoint: tlog.Checkpoint) -> Cosigned:
        """Cosign the checkpoint a monitor step just verified and submit it (once per checkpoint)."""
        body, line = self.cosign(checkpoint)
        if line == self._accepted:
            return Cosigned(checkpoint.size, line, None)
        answer = self.submit(body, line)
        self._accepted = line
        return Cosigned(checkpoint.size, line, answer)
