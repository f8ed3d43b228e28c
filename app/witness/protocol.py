"""One C2SP tlog-witness ``add-checkpoint`` request, parsed and checked (pure but for the state).

Request body::

    old <size>
    <base64 consistency proof hash>      (0 to 63 lines)
    <blank line>
    <signed checkpoint note>

Answers (status, content type, body) follow the specification: 200 with the
cosignature line; 400 for a malformed body or an old size above the
checkpoint's; 404 for an origin the witness does not follow; 403 when no
signature by the origin's configured key verifies; 409 (``text/x.tlog.size``,
the known size and a newline) when the old size is not the latest cosigned
one, or the same size was cosigned with another root; 422 for a consistency
proof that does not verify.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from app.tlog import Checkpoint, CheckpointError, InvalidSignatureError, NoteError, UnverifiedNoteError, note
from app.tlog.checkpoint import decode_hash
from app.tlog.cosignature import CosignatureSigner

from .state import BadProof, Conflict, Head, WitnessState

MAX_PROOF_LINES = 63
MAX_BODY = 64 * 1024
SIZE_TYPE = "text/x.tlog.size"
_OLD_RE = re.compile(r"old (0|[1-9][0-9]{0,18})")


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: str


def _text(status: int, message: str) -> Answer:
    return Answer(status, "text/plain; charset=utf-8", message + "\n")


@dataclass(frozen=True)
class Request:
    old_size: int
    proof: tuple[bytes, ...]
    note: str


def parse(body: bytes) -> Request:
    """Split a request body; raise ValueError with the reason when it is malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("body is not UTF-8") from exc
    head, sep, signed = text.partition("\n\n")
    if not sep:
        raise ValueError("no blank line between the proof and the checkpoint")
    lines = head.split("\n")
    match = _OLD_RE.fullmatch(lines[0])
    if not match:
        raise ValueError("the first line must be `old <size>` (decimal, no leading zeros)")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise ValueError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            proof.append(decode_hash(line, "consistency proof hash"))
        except CheckpointError as exc:
            raise ValueError(str(exc)) from exc
    return Request(int(match.group(1)), tuple(proof), signed)


class Witness:
    """Cosigns checkpoints of the logs in ``logs`` (verifier key strings) with ``signer``.

    ``clock`` gives the POSIX time put in each cosignature.
    """

    def __init__(
        self, signer: CosignatureSigner, logs: Iterable[str], state: WitnessState, clock: Callable[[], float]
    ) -> None:
        self.signer = signer
        self.state = state
        self.clock = clock
        self.logs: Mapping[str, list[note.Verifier]] = {}
        for key in logs:
            verifier = note.Verifier(key)
            self.logs.setdefault(verifier.name, []).append(verifier)

    def add_checkpoint(self, body: bytes) -> Answer:
        """Handle one request body; see the module docstring for the answers."""
        if len(body) > MAX_BODY:
            return _text(400, f"body larger than {MAX_BODY} bytes")
        try:
            request = parse(body)
        except ValueError as exc:
            return _text(400, f"malformed request: {exc}")
        origin = request.note.partition("\n")[0]
        if not origin:
            return _text(400, "malformed request: the checkpoint has no origin line")
        verifiers = self.logs.get(origin)
        if verifiers is None:
            return _text(404, f"unknown log origin {origin!r}")
        try:
            opened = note.open_note(request.note, verifiers)
        except (NoteError, CheckpointError) as exc:
            if isinstance(exc, (UnverifiedNoteError, InvalidSignatureError)):
                return _text(403, f"no valid signature by the log's key: {exc}")
            return _text(400, f"malformed checkpoint note: {exc}")
        try:
            checkpoint = Checkpoint.parse(opened.text)
        except CheckpointError as exc:
            return _text(400, f"malformed checkpoint: {exc}")
        if request.old_size > checkpoint.size:
            return _text(400, f"old size {request.old_size} is above the checkpoint size {checkpoint.size}")
        timestamp = int(self.clock())
        try:
            line = self.state.advance(
                origin, request.old_size, request.proof, Head(checkpoint.size, checkpoint.root_hash),
                lambda: self.signer.cosign(opened.text, timestamp),
            )
        except Conflict as exc:
            return Answer(409, SIZE_TYPE, f"{exc.known}\n")
        except BadProof as exc:
            return _text(422, f"consistency proof does not verify: {exc}")
        return Answer(200, "text/plain; charset=utf-8", line)
