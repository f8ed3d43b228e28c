"""Files and folders that only pubtrail's own user may read.

Secrets (signing keys, the development issuer's key) and the data folder
(database, uploaded files, keys) are created private from the first moment:
a file written first and chmod-ed afterwards is readable by anyone for a
while, so modes are passed to the system call that creates them.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Create folder `path` with mode 0700 if it does not exist.

    Missing parents are created with the default mode; an existing folder is
    left as the operator made it (pubtrail does not chmod what it did not create).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE)
    except FileExistsError:
        pass


def create_private_file(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 holding `data`, durably.

    Raises FileExistsError if `path` exists (nothing is overwritten).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if it does not exist; an existing file is left alone."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
