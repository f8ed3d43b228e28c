"""Typed errors for the upload path, carrying PyPI's exact reason phrases.

PyPI's legacy upload API (``POST /legacy/``) reports every failure in the
HTTP *reason phrase* (``HTTP/1.1 400 File already exists (...)``): twine
shows that phrase to the user and ``twine upload --skip-existing`` looks
for "already exist" in it. So an error here is a status code plus the one
line of text that goes on the status line.

Hierarchy::

    UploadError(status, reason, field=None)
     +-- FileTooLarge        (400, carries the byte limit)

The texts mirror pypi/warehouse ``warehouse/forklift/legacy.py`` and
``forms.py``; the builder functions below produce the ones that need
arguments so the route and the validators phrase them identically.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_HELP_URL",
    "HELP_PATH",
    "FileTooLarge",
    "UploadError",
    "file_already_exists",
    "file_too_large_reason",
    "sanitize_reason",
]

#: Where pubtrail serves its upload help page (what is checked and why), relative
#: to its public URL; refusals link to its sections ("See <public URL>/help/uploads#invalid-auth").
HELP_PATH = "/help/uploads"
#: Base of the "See ... for more information." links when no public URL is given
#: (pubtrail's default public URL).
DEFAULT_HELP_URL = "http://127.0.0.1:8000" + HELP_PATH

_MAX_REASON_CHARS = 1024


def sanitize_reason(text: str) -> str:
    """Return ``text`` made safe for an HTTP/1.1 status line.

    Reason phrases are ISO-8859-1 and must not contain CR, LF or other
    control characters (RFC 9112 section 4). Control characters (including
    CR/LF/TAB and DEL) become spaces, runs of whitespace collapse, characters
    outside latin-1 become ``?`` (what PyPI does with ``encode("iso-8859-1",
    "replace")``), and the result is capped at 1024 characters.
    """
    cleaned = []
    for char in text:
        code = ord(char)
        if code < 0x20 or 0x7F <= code < 0xA0:
            cleaned.append(" ")
        elif code > 0xFF:
            cleaned.append("?")
        else:
            cleaned.append(char)
    line = " ".join("".join(cleaned).split())
    if len(line) > _MAX_REASON_CHARS:
        line = line[: _MAX_REASON_CHARS - 3] + "..."
    return line


class UploadError(Exception):
    """An upload was refused: ``status`` is the HTTP status, ``reason`` the
    exact single-line text to send as reason phrase (and body).

    ``field`` names the form field at fault when there is one (e.g.
    ``"version"``, ``"sha256_digest"``, ``"content"``), for logs and metrics.
    """

    def __init__(self, status: int, reason: str, *, field: str | None = None) -> None:
        self.status = status
        self.reason = sanitize_reason(reason)
        self.field = field
        super().__init__(self.reason)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, reason={self.reason!r}, field={self.field!r})"


class FileTooLarge(UploadError):
    """The ``content`` part grew past ``limit`` bytes; reading was stopped."""

    def __init__(self, limit: int, project: str | None, *, help_url: str = DEFAULT_HELP_URL) -> None:
        self.limit = limit
        self.project = project
        super().__init__(400, file_too_large_reason(project, limit, help_url=help_url), field="content")


def file_too_large_reason(project: str | None, limit: int, *, help_url: str = DEFAULT_HELP_URL) -> str:
    """PyPI's text: ``File too large. Limit for project 'x' is 100 MB. See ... for more information.``"""
    megabytes = limit // (1024 * 1024)
    who = f"project {project!r}" if project else "this upload"
    return (
        f"File too large. Limit for {who} is {megabytes} MB. "
        f"See {help_url}#file-size-limit for more information."
    )


def file_already_exists(filename: str, blake2_256: str, *, help_url: str = DEFAULT_HELP_URL) -> UploadError:
    """PyPI's duplicate-file refusal (400). Its text must start with
    "File already exists": ``twine upload --skip-existing`` depends on it."""
    return UploadError(
        400,
        f"File already exists ({filename!r}, with blake2_256 hash {blake2_256!r}). "
        f"See {help_url}#file-name-reuse for more information.",
        field="content",
    )
