"""Typed errors of the clients; every one names the check that failed (``check``).

::

    ClientError                       .check
    ├── ServerError                   the server gave no usable answer
    │   ├── Unreachable               "server reachable"
    │   ├── NotFoundAnswer            "known to the server"   (404)
    │   ├── RefusedAnswer             "server answer"         (any other non-2xx)
    │   └── MalformedAnswer           "answer shape"          (not JSON, missing or mistyped fields)
    └── VerificationError             an answer that does not verify against the pinned key
        ├── CheckpointSignatureError  "checkpoint signature"
        ├── InclusionError            "inclusion proof"
        │   ├── ProofSizeError        "proof size"            (made at another tree size)
        │   └── NotCoveredError       "checkpoint coverage"   (the item is beyond the checkpoint)
        ├── EntryBytesError           "entry bytes"           (not the leaf, or not a canonical entry)
        ├── FileHashError             "file hashes"           (the local file is not the uploaded one)
        ├── LinkError                 "upload-exchange link"
        ├── AnswerMismatchError       "answer fields"         (plain fields that the entries do not say)
        ├── CheckpointPinError        "pinned checkpoint"     (pages of one query at different checkpoints)
        └── IdentityChangedError      "identity continuity"   (raised only when asked to be strict)

The message of each error starts with its check: ``"<check>: <what differs>"``.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base class of every error the clients raise on purpose."""

    check = "client"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.check}: {detail}")
        self.detail = detail


class ServerError(ClientError):
    """The server could not be asked, or did not answer in pubtrail's shape."""


class Unreachable(ServerError):
    check = "server reachable"


class NotFoundAnswer(ServerError):
    check = "known to the server"


class RefusedAnswer(ServerError):
    check = "server answer"

    def __init__(self, detail: str, status_code: int) -> None:
        super().__init__(detail)
        self.status_code = status_code


class MalformedAnswer(ServerError):
    check = "answer shape"


class VerificationError(ClientError):
    """An answer that does not verify against the pinned key and the logged entries."""

    check = "verification"


class CheckpointSignatureError(VerificationError):
    check = "checkpoint signature"


class InclusionError(VerificationError):
    check = "inclusion proof"


class ProofSizeError(InclusionError):
    check = "proof size"


class NotCoveredError(InclusionError):
    check = "checkpoint coverage"


class EntryBytesError(VerificationError):
    check = "entry bytes"


class FileHashError(VerificationError):
    check = "file hashes"


class LinkError(VerificationError):
    check = "upload-exchange link"


class AnswerMismatchError(VerificationError):
    check = "answer fields"


class CheckpointPinError(VerificationError):
    check = "pinned checkpoint"


class IdentityChangedError(VerificationError):
    check = "identity continuity"
