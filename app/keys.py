"""The log's signing key on disk: a C2SP note private key string in a file."""

from __future__ import annotations

import os
from pathlib import Path

from app.private_files import make_private_dir
from app.tlog import note


class KeyFileError(Exception):
    pass


def write_new_key(path: Path, origin: str) -> str:
    """Create a new key for `origin` at `path` (mode 0600 from creation, never
    overwritten; a folder it creates for it is 0700); return the verifier key."""
    private, verifier = note.generate_key(origin)
    make_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a signing key") from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(private + "\n")
    return verifier


def load_key(path: Path) -> tuple[note.Signer, note.Verifier]:
    """Read the private key string at `path`; return its signer and verifier."""
    try:
        private = path.read_text().strip()
    except OSError as exc:
        raise KeyFileError(f"cannot read signing key {path}: {exc}") from exc
    try:
        signer = note.Signer(private)
    except Exception as exc:  # noqa: BLE001 - any parse failure means a bad key file
        raise KeyFileError(f"{path} does not hold a note private key: {exc}") from exc
    return signer, note.Verifier(signer.verifier_key)
