"""The `pubtrail` command.

    pubtrail serve [--host H] [--port P] [--workers N]
                                             run the service (settings from PUBTRAIL_* variables)
    pubtrail audit                           rebuild the tree from every stored entry and compare
                                             every tile and checkpoint (exit 1 on any problem)
    pubtrail export DIR                      write the log as static tlog-tiles files (incremental)
    pubtrail keygen --origin O [--out FILE]  create a log signing key, print its verifier key
    pubtrail keygen --witness NAME --out FILE
                                             create a witness key, print its verifier key
    pubtrail witness serve --key FILE --log VKEY --state DIR
                                             run a C2SP tlog-witness for the logs given
    pubtrail verify FILE... --server URL --key VKEY [--strict-identity]
                                             verify downloaded files' provenance against a pinned key
    pubtrail verify-receipt PROOF --key VKEY (--entry FILE | --leaf-hash HEX)
                                             check a receipt (C2SP tlog-proof text) offline
    pubtrail blast-radius --server URL --key VKEY [criteria] [--json | --csv]
                                             what an identity published, each item verified
    pubtrail monitor --server URL --key VKEY --state DIR [--once] [--watch RULES.toml] [--hook CMD] [--webhook URL]
                                             follow the log, verify every entry, keep a verified local mirror
    pubtrail blast-radius|provenance --mirror DIR ...
                                             answer from that mirror
    pubtrail publishers add|list|remove ...  manage trusted publishers through the admin API
    pubtrail tokens create|list|revoke PROJECT ...
                                             a project's long-lived API tokens (admin API, logged)
    pubtrail projects set PROJECT --trusted-publishing-only true|false
                                             refuse API-token uploads to a project (admin API, logged)
    pubtrail incidents declare|list|show ... declare an incident (admin API), read incidents
    pubtrail dev token --repository O/R --workflow F [--url URL]
                                             print a GitHub-shaped token from a development server's issuer

One module per command group (`serve`, `audit`, `keygen`, `verify`,
`publishers`, `dev`), each a thin layer over a service or a client with a
`register(commands, common)` that adds its parser. Errors are raised, never
printed by a command: `main()` turns every failure into one `pubtrail: ...`
line on stderr and a non-zero exit (see `app.cli.errors`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn

from app.cli import (
    api_tokens, audit, blast_radius, dev, export, incidents, keygen, monitor, provenance, publishers, serve, verify, witness,
)
from app.cli.errors import USAGE, CliError, describe

__all__ = ["main", "build_parser"]

GROUPS = (
    serve, audit, export, keygen, verify, blast_radius, monitor, provenance, publishers, api_tokens, incidents, dev, witness,
)


class _Parser(argparse.ArgumentParser):
    """Usage errors become a CliError, so they too are one `pubtrail: ...` line."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see `{self.prog} --help`)", USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; defaults that come from PUBTRAIL_* variables are read now."""
    parser = _Parser(
        prog="pubtrail",
        description="pubtrail: trusted publishing for a Python package index, with a transparency log.",
        epilog="Settings come from PUBTRAIL_* environment variables (see README.md). "
        "`pubtrail COMMAND --help` describes each command.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="log what the command does (e.g. each HTTP request) and show the traceback of an unexpected error",
    )
    # The same flag after the command name; SUPPRESS keeps the top-level value when it is absent.
    common = _Parser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(commands, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command in ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    verbose = False
    try:
        args = build_parser().parse_args(argv)
        verbose = args.verbose
        _configure_logging(verbose or args.command == "serve")
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place a failure becomes a message
        message, code, expected = describe(exc)
        if verbose and not expected:
            raise
        hint = "" if expected else " (run with --verbose for the traceback)"
        print(f"pubtrail: {message}{hint}", file=sys.stderr)
        return code


def _configure_logging(info: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if info else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


if __name__ == "__main__":
    sys.exit(main())
