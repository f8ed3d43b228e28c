"""`pubtrail witness serve`: run pubtrail as a C2SP tlog-witness for the logs named by --log.

    pubtrail witness serve --key WITNESS_KEY_FILE --log LOG_VERIFIER_KEY [--log ...] --state DIR
                           [--host H] [--port P]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from app import tlog
from app.cli.errors import USAGE, CliError


def register(commands, common: argparse.ArgumentParser) -> None:
    witness = commands.add_parser(
        "witness", parents=[common], help="run pubtrail as a transparency log witness",
        description="Cosign checkpoints of the given logs (C2SP tlog-witness, cosignature/v1).",
    )
    actions = witness.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = actions.add_parser(
        "serve", parents=[common], help="serve POST /add-checkpoint",
        description="Serve the C2SP tlog-witness protocol: POST /add-checkpoint cosigns a checkpoint of a "
        "configured log when it is consistent with the latest one this witness cosigned for that origin "
        "(kept in DIR/witness.sqlite3, so it never cosigns two inconsistent checkpoints, across restarts too).",
    )
    serve.add_argument("--key", required=True, type=Path, metavar="WITNESS_KEY_FILE",
                       help="the witness's private key file (`pubtrail keygen --witness NAME --out FILE`)")
    serve.add_argument("--log", required=True, action="append", metavar="LOG_VERIFIER_KEY",
                       help="a log to witness, by its verifier key (its name is the log's origin); repeatable")
    serve.add_argument("--state", required=True, type=Path, metavar="DIR", help="folder of the witness's state")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7380)
    serve.set_defaults(run=run_serve)


def build(args: argparse.Namespace):
    """The witness app for the parsed arguments; CliError on a bad key, log key or state folder."""
    from app.tlog.cosignature import CosignatureSigner
    from app.witness.protocol import Witness
    from app.witness.server import make_app
    from app.witness.state import WitnessState

    try:
        signer = CosignatureSigner(args.key.read_text().strip())
    except OSError as exc:
        raise CliError(f"cannot read --key {args.key}: {exc.strerror or exc}", USAGE) from exc
    except tlog.TlogError as exc:
        raise CliError(f"--key {args.key} is not a witness key: {exc}", USAGE) from exc
    for key in args.log:
        try:
            tlog.note.Verifier(key)
        except tlog.TlogError as exc:
            raise CliError(f"--log {key!r} is not a log verifier key: {exc}", USAGE) from exc
    try:
        args.state.mkdir(parents=True, exist_ok=True)
        state = WitnessState(args.state / "witness.sqlite3")
    except OSError as exc:
        raise CliError(f"cannot use --state {args.state}: {exc.strerror or exc}", USAGE) from exc
    return signer, make_app(Witness(signer, args.log, state, time.time))


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    signer, app = build(args)
    print(f"witness verifier key: {signer.verifier_key}", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
