"""The one error type of the `pubtrail` command, and how any failure becomes one line.

Commands raise :class:`CliError` (or let a domain error with a user-facing
message through: :class:`~app.config.ConfigError`,
:class:`~app.keys.KeyFileError`); :func:`describe` turns it, or any other
exception, into the text and exit status that ``main()`` prints as a single
``pubtrail: ...`` line.

Exit statuses: 2 when the command could not run as asked (usage, settings,
key files, input files); 1 when it ran and the answer is a failure (a proof
that does not verify, a server that refused or cannot be reached, a database
error).
"""

from __future__ import annotations

USAGE = 2
FAILED = 1


class CliError(Exception):
    """A failure the user can act on; ``main()`` prints ``pubtrail: <message>`` and exits with ``code``."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def describe(exc: BaseException) -> tuple[str, int, bool]:
    """Return ``(one-line message, exit status, expected)`` for ``exc``.

    ``expected`` is False for exceptions no command anticipates (a bug, most
    likely): ``main()`` then suggests ``--verbose`` for the traceback.
    """
    from sqlalchemy import exc as sa

    from app.config import ConfigError
    from app.keys import KeyFileError

    if isinstance(exc, CliError):
        message, code, expected = exc.message, exc.code, True
    elif isinstance(exc, (ConfigError, KeyFileError)):
        message, code, expected = str(exc), USAGE, True
    elif isinstance(exc, (sa.ArgumentError, sa.NoSuchModuleError)):
        message, code, expected = f"PUBTRAIL_DATABASE_URL is not usable: {exc}", USAGE, True
    elif isinstance(exc, sa.SQLAlchemyError):
        cause = getattr(exc, "orig", None) or exc
        message, code, expected = f"database error: {cause}", FAILED, True
    elif isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        message, code, expected = f"{exc.strerror}{where}", FAILED, True
    else:
        message, code, expected = f"unexpected error: {type(exc).__name__}: {exc}", FAILED, False
    return one_line(message), code, expected


def one_line(text: str) -> str:
    """``text`` with its lines joined by ``; `` (database drivers answer in several lines)."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip()) or "error"
