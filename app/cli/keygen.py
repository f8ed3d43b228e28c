"""`pubtrail keygen`: create a log signing key file and print its verifier key."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.config import Settings
from app.keys import write_new_key


def register(commands, common: argparse.ArgumentParser) -> None:
    keygen = commands.add_parser(
        "keygen", parents=[common], help="create a log signing key, print its verifier key",
        description="Create an Ed25519 C2SP note signing key named after the log's origin (never "
        "overwrites a file) and print the verifier key auditors pin.",
    )
    which = keygen.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--origin",
        help="the log's origin line, also the key name: non-empty, without '+' and without whitespace",
    )
    which.add_argument(
        "--witness", metavar="NAME",
        help="make a witness's cosignature/v1 key named NAME instead (requires --out); prints its verifier key",
    )
    keygen.add_argument(
        "--out", type=Path, metavar="FILE", help="key file (default: PUBTRAIL_SIGNING_KEY_FILE or DATA_DIR/log-signing.key)"
    )
    keygen.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.witness is not None:
        return _witness(args)
    path = args.out or Settings.from_env().key_file
    verifier = write_new_key(path, args.origin)
    print(f"wrote signing key to {path}", file=sys.stderr)
    print(verifier)
    return 0


def _witness(args: argparse.Namespace) -> int:
    from app.cli.errors import USAGE, CliError
    from app.private_files import create_private_file
    from app.tlog import TlogError
    from app.tlog.cosignature import generate_key

    if args.out is None:
        raise CliError("--witness needs --out FILE", USAGE)
    try:
        signer, verifier = generate_key(args.witness)
    except TlogError as exc:
        raise CliError(f"--witness: {exc}", USAGE) from exc
    if args.out.exists():
        raise CliError(f"{args.out} exists; pubtrail keygen never overwrites a key", USAGE)
    create_private_file(args.out, (signer + "\n").encode())
    print(f"wrote witness key to {args.out}", file=sys.stderr)
    print(verifier)
    return 0
