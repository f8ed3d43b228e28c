"""The log's signing key on disk: a C2SP note private key string in a file.

Every failure is a :class:`KeyFileError` whose message names the file (and,
for a key of another log, ``PUBTRAIL_ORIGIN``), ready to show a user.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.private_files import make_private_dir
from app.tlog import note


class KeyFileError(Exception):
    pass


def key_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a C2SP note key (and so cannot be a log origin), or None if it can.

    The rules (`app.tlog.note.is_valid_name`): non-empty, no ``+``, no
    whitespace, no control characters.
    """
    if name == "":
        return "it is empty"
    if "+" in name:
        return "it contains '+'"
    spaces = sorted({char for char in name if char.isspace()})
    if spaces:
        return f"it contains whitespace ({', '.join(repr(c) for c in spaces)})"
    if any(ord(char) < 0x20 or char == "\x7f" for char in name):
        return "it contains a control character"
    if not note.is_valid_name(name):
        return "it is not valid UTF-8"
    return None


def write_new_key(path: Path, origin: str) -> str:
    """Create a new key for `origin` at `path` (mode 0600 from creation, never
    overwritten; a folder it creates for it is 0700); return the verifier key.

    KeyFileError when `origin` cannot name a key (saying which rule it breaks),
    when `path` exists, or when it cannot be created."""
    problem = key_name_problem(origin)
    if problem:
        raise KeyFileError(
            f"origin {origin!r} cannot name a signing key: {problem} "
            "(a key name is non-empty, without '+' and without whitespace)"
        )
    private, verifier = note.generate_key(origin)
    try:
        make_private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a signing key") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot create signing key {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(private + "\n")
    return verifier


def load_key(path: Path, origin: str | None = None) -> tuple[note.Signer, note.Verifier]:
    """Read the private key string at `path`; return its signer and verifier.

    With `origin`, the key must be that log's: its name must equal `origin`
    (the `PUBTRAIL_ORIGIN` setting), or KeyFileError names both.
    """
    try:
        private = path.read_text().strip()
    except OSError as exc:
        raise KeyFileError(f"cannot read signing key {path}: {exc.strerror or exc}") from exc
    try:
        signer = note.Signer(private)
    except Exception as exc:  # noqa: BLE001 - any parse failure means a bad key file
        raise KeyFileError(f"{path} does not hold a note private key: {exc}") from exc
    if origin is not None and signer.name != origin:
        raise KeyFileError(
            f"the signing key {path} is named {signer.name!r} but PUBTRAIL_ORIGIN is {origin!r}: "
            f"set PUBTRAIL_ORIGIN={signer.name} or point PUBTRAIL_SIGNING_KEY_FILE at the key of {origin!r}"
        )
    return signer, note.Verifier(signer.verifier_key)
