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
    keygen.add_argument(
        "--origin", required=True,
        help="the log's origin line, also the key name: non-empty, without '+' and without whitespace",
    )
    keygen.add_argument(
        "--out", type=Path, metavar="FILE", help="key file (default: PUBTRAIL_SIGNING_KEY_FILE or DATA_DIR/log-signing.key)"
    )
    keygen.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = args.out or Settings.from_env().key_file
    verifier = write_new_key(path, args.origin)
    print(f"wrote signing key to {path}", file=sys.stderr)
    print(verifier)
    return 0
