"""The `pubtrail` command.

    pubtrail serve [--host H] [--port P]     run the service (settings from PUBTRAIL_* variables)
    pubtrail keygen --origin O [--out FILE]  create a log signing key, print its verifier key
    pubtrail verify --key VKEY PROOF [--entry FILE | --leaf-hash HEX]
                                             check a receipt (C2SP tlog-proof text) offline
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from app import tlog
from app.config import ConfigError, Settings
from app.keys import KeyFileError, write_new_key
from app.tlog import note

log = logging.getLogger("pubtrail")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pubtrail", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=_serve)

    keygen = commands.add_parser("keygen", help="create a log signing key")
    keygen.add_argument("--origin", required=True, help="the log's origin line, also the key name")
    keygen.add_argument("--out", type=Path, help="key file (default: PUBTRAIL_SIGNING_KEY_FILE or DATA_DIR/log-signing.key)")
    keygen.set_defaults(func=_keygen)

    verify = commands.add_parser("verify", help="verify a receipt offline against a pinned verifier key")
    verify.add_argument("--key", required=True, help="the log's verifier key string (pin it out of band)")
    verify.add_argument("proof", type=Path, help="file with C2SP tlog-proof text ('-' for stdin)")
    what = verify.add_mutually_exclusive_group(required=True)
    what.add_argument("--entry", type=Path, help="file with the exact entry bytes")
    what.add_argument("--leaf-hash", help="the entry's leaf hash, hex")
    verify.set_defaults(func=_verify)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ConfigError, KeyFileError) as exc:
        print(f"pubtrail: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.api.app import create_app
    from app.api.reason_phrase import ReasonH11Protocol
    from app.runtime import build_runtime

    settings = Settings.from_env()
    settings.check_secrets()
    if settings.dev:
        log.warning("=" * 72)
        log.warning("DEVELOPMENT MODE (PUBTRAIL_DEV=1): do not expose this server")
        log.warning("=" * 72)
    runtime = build_runtime(settings)
    log.info("log %s, verifier key %s", settings.origin, runtime.log.verifier_key)
    uvicorn.run(
        create_app(runtime), host=args.host, port=args.port, log_level="info", http=ReasonH11Protocol
    )
    return 0


def _keygen(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    path = args.out or settings.key_file
    verifier = write_new_key(path, args.origin)
    print(f"wrote signing key to {path}", file=sys.stderr)
    print(verifier)
    return 0


def _verify(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if str(args.proof) == "-" else args.proof.read_text()
    try:
        verifier = note.Verifier(args.key)
        proof = tlog.TlogProof.parse(text)
        body, _ = note.open(proof.checkpoint, [verifier])
        checkpoint = tlog.Checkpoint.parse(body)
        if checkpoint.origin != verifier.name:
            raise tlog.TlogError(f"checkpoint origin {checkpoint.origin!r} is not the key's log {verifier.name!r}")
        leaf = tlog.leaf_hash(args.entry.read_bytes()) if args.entry else bytes.fromhex(args.leaf_hash)
        tlog.verify_inclusion(leaf, proof.index, checkpoint.size, proof.hashes, checkpoint.root_hash)
    except (tlog.TlogError, ValueError, OSError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"OK: entry {proof.index} is in {checkpoint.origin} at size {checkpoint.size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
