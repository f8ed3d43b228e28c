"""`pubtrail verify`: check a receipt (C2SP tlog-proof text) offline against a pinned verifier key."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app import tlog
from app.cli.errors import FAILED, USAGE, CliError
from app.tlog import note


def register(commands, common: argparse.ArgumentParser) -> None:
    verify = commands.add_parser(
        "verify", parents=[common], help="verify a receipt offline against a pinned verifier key",
        description="Check that an entry is in the log: the proof's checkpoint must be signed by the pinned "
        "key and its inclusion proof must lead from the entry to the checkpoint's root. Prints `OK: ...`; "
        "exit status 1 when the proof does not verify, 2 when the input cannot be read.",
    )
    verify.add_argument("--key", required=True, metavar="VERIFIER_KEY", help="the log's verifier key string (pin it out of band)")
    verify.add_argument("proof", metavar="PROOF", type=Path, help="file with C2SP tlog-proof text ('-' for stdin)")
    what = verify.add_mutually_exclusive_group(required=True)
    what.add_argument("--entry", type=Path, metavar="FILE", help="file with the exact entry bytes")
    what.add_argument("--leaf-hash", metavar="HEX", help="the entry's leaf hash, hex")
    verify.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        verifier = note.Verifier(args.key)
    except tlog.TlogError as exc:
        raise CliError(f"--key is not a note verifier key: {exc}", USAGE) from exc
    if args.entry is not None:
        leaf = tlog.leaf_hash(_read_bytes(args.entry, "entry"))
    else:
        try:
            leaf = bytes.fromhex(args.leaf_hash)
        except ValueError as exc:
            raise CliError(f"--leaf-hash is not hex: {args.leaf_hash!r}", USAGE) from exc
    text = sys.stdin.read() if str(args.proof) == "-" else _read_bytes(args.proof, "proof").decode("utf-8", "replace")
    try:
        proof = tlog.TlogProof.parse(text)
        checkpoint = proof.verify(leaf, [verifier], origin=verifier.name)
    except (tlog.TlogError, ValueError) as exc:
        raise CliError(f"FAILED: {exc}", FAILED) from exc
    print(f"OK: entry {proof.index} is in {checkpoint.origin} at size {checkpoint.size}")
    return 0


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {what} file {path}: {exc.strerror or exc}", USAGE) from exc
