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
        "whole, the checkpoint last, after the tiles on disk were checked against it. With PUBTRAIL_WITNESSES "
        "the checkpoint published is the one /checkpoint serves: the newest with PUBTRAIL_WITNESSES_REQUIRED "
        "cosignatures, its cosignature lines included (exit status 1 and nothing written until there is one). "
        "Serve DIR at the URL of the log's origin (e.g. https://pubtrail.example/log/) and point clients at it.",
    )
    export.add_argument("directory", type=Path, metavar="DIR", help="the directory to write (created if absent)")
    export.add_argument("--no-gzip", action="store_true", help="do not write .gz copies of the entry bundles")
    export.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from app.errors import PubtrailError
    from app.keys import load_key
    from app.services.export import publish
    from app.services.log_reader import LogReader
    from app.services.witnessing import WitnessSpec, Witnessing
    from app.storage.db import make_engine
    from app.storage.log_store import LogStore

    settings = Settings.from_env()
    _signer, verifier = load_key(settings.key_file, settings.origin)
    engine = make_engine(settings.effective_database_url)
    try:
        reader = LogReader(LogStore(engine), verifier.key_string, settings.origin)
        witnessing = None
        if settings.witnesses:
            witnessing = Witnessing(
                engine, reader, verifier, [WitnessSpec(w["url"], w["key"]) for w in settings.witnesses],
                settings.witnesses_required, time.time,
            )
        started = time.perf_counter()
        try:
            result = publish(reader, args.directory, witnessing, gzip_bundles=not args.no_gzip)
        except PubtrailError as exc:
            raise CliError(f"export to {args.directory}: {exc.message}", FAILED) from exc
    finally:
        engine.dispose()
    if result is None:
        raise CliError(
            f"export to {args.directory}: no checkpoint has {settings.witnesses_required} witness cosignatures "
            "yet (PUBTRAIL_WITNESSES_REQUIRED); nothing was written", FAILED,
        )
    print(f"{args.directory}: {result.summary()} in {time.perf_counter() - started:.2f}s")
    return 0
