"""`pubtrail export DIR`: write the log as a static C2SP tlog-tiles directory (incremental)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from app.cli.errors import FAILED, CliError
from app.config import Settings


def register(commands, common: argparse.ArgumentParser) -> None:
    export = commands.add_parser(
        "export", parents=[common], help="write the log as static tlog-tiles files any web server can serve",
        description="Write the log's checkpoint, hash tiles and entry bundles (with .gz copies) under DIR in "
        "the C2SP tlog-tiles layout, reading the database of the PUBTRAIL_* settings that `serve` uses. "
        "Incremental: only tiles the directory's checkpoint lacks are written, each renamed into place "
        "whole, the checkpoint last, after the tiles on disk were checked against it. Serve DIR at the "
        "URL of the log's origin (e.g. https://pubtrail.example/log/) and point clients at it.",
    )
    export.add_argument("directory", type=Path, metavar="DIR", help="the directory to write (created if absent)")
    export.add_argument("--no-gzip", action="store_true", help="do not write .gz copies of the entry bundles")
    export.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from app.errors import PubtrailError
    from app.keys import load_key
    from app.services.export import export_log
    from app.services.log_reader import LogReader
    from app.storage.db import make_engine
    from app.storage.log_store import LogStore

    settings = Settings.from_env()
    _signer, verifier = load_key(settings.key_file, settings.origin)
    engine = make_engine(settings.effective_database_url)
    try:
        reader = LogReader(LogStore(engine), verifier.key_string, settings.origin)
        started = time.perf_counter()
        try:
            result = export_log(reader, args.directory, gzip_bundles=not args.no_gzip)
        except PubtrailError as exc:
            raise CliError(f"export to {args.directory}: {exc.message}", FAILED) from exc
    finally:
        engine.dispose()
    print(f"{args.directory}: {result.summary()} in {time.perf_counter() - started:.2f}s")
    return 0
