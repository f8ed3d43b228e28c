"""`pubtrail provenance --mirror DIR SHA256`: where a file came from, answered from the verified local mirror.

The answer has the shape of `GET /api/v1/provenance/{sha256}` (upload and
exchange entries with inclusion proofs at the mirror's checkpoint, the
publisher identity, the incidents covering the upload, identity continuity),
built only from entries `pubtrail monitor` verified. To check a downloaded
file against a server instead, use `pubtrail verify`.
"""

from __future__ import annotations

import argparse
import json

from app.cli.errors import USAGE, CliError
from app.clients.errors import ClientError


def register(commands, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "provenance", parents=[common], help="where a file came from, from the verified local mirror",
        description="Answer from the mirror `pubtrail monitor --state DIR` keeps, as GET /api/v1/provenance/SHA256 "
        "does: the upload and exchange entries behind the file with inclusion proofs at the mirror's checkpoint, "
        "the publisher identity, covering incidents and identity continuity. Prints the JSON answer.",
    )
    parser.add_argument("sha256", metavar="SHA256", help="the file's SHA-256 (64 hex digits)")
    parser.add_argument("--mirror", required=True, metavar="DIR", help="the --state folder of pubtrail monitor")
    parser.add_argument("--key", metavar="VERIFIER_KEY", help="refuse a mirror of any other log")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from app.cli.monitor import open_mirror

    with open_mirror(args.mirror, args.key) as mirror:
        try:
            answer = mirror.provenance(args.sha256)
        except ClientError as exc:
            raise CliError(exc.detail, USAGE if "64 hex" in exc.detail else 1) from exc
    print(json.dumps(answer, indent=1))
    return 0
