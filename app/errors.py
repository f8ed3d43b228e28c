"""Errors the services raise; the API maps each to one HTTP status in one place.

    PubtrailError
     ├── BadRequest      400  the request's parameters cannot be answered as given
     ├── Unauthorized    401  no or wrong credentials
     ├── Forbidden       403  credentials fine, action not allowed
     ├── NotFound        404  nothing there (yet)
     ├── Conflict        409  the request contradicts the current state
     └── StorageFull     503  the disk is full (see `storage_full`): refused, retry later

Each carries a message meant for the person reading the response.
"""

from __future__ import annotations


class PubtrailError(Exception):
    status_code = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(PubtrailError):
    status_code = 400


class Unauthorized(PubtrailError):
    status_code = 401


class Forbidden(PubtrailError):
    status_code = 403


class NotFound(PubtrailError):
    status_code = 404


class Conflict(PubtrailError):
    status_code = 409


class StorageFull(PubtrailError):
    """The disk under the files or the database is full: the write was refused
    and nothing of it was acknowledged (503 with Retry-After). Writing resumes
    by itself once space is freed; the log is not halted."""

    status_code = 503
    #: Seconds a client should wait before trying again (the Retry-After header).
    retry_after = 60

    def __init__(self, message: str = "the server's storage is full: nothing was stored; try again later"):
        super().__init__(message)


_ENOSPC = (28, 122)  # ENOSPC; EDQUOT (Linux) for a quota reached
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"
_DRIVERS = ("sqlite3", "psycopg", "psycopg2")
_FULL_MESSAGES = ("database or disk is full", "could not extend file", "No space left on device")


def storage_full(exc: BaseException) -> bool:
    """Whether `exc`, or an error it wraps or was raised from, says the disk is full.

    Recognised: an OSError with errno ENOSPC or EDQUOT; SQLite's SQLITE_FULL
    ("database or disk is full"); PostgreSQL's disk_full (SQLSTATE 53100,
    "could not extend file"). A SQLAlchemy error is looked through to the
    driver's (`orig`). Duck-typed, so this module imports no driver.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _ENOSPC:
            return True
        if getattr(current, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if getattr(current, "sqlstate", None) == _PG_DISK_FULL:
            return True
        if type(current).__module__.split(".")[0] in _DRIVERS and any(m in str(current) for m in _FULL_MESSAGES):
            return True
        orig = getattr(current, "orig", None)
        pending.extend(
            [orig if isinstance(orig, BaseException) else None, current.__cause__, current.__context__]
        )
    return False
