"""`pubtrail audit`: rebuild the tree from every stored entry and compare every tile and checkpoint."""

from __future__ import annotations

import argparse

from app.config import Settings


def register(commands, common: argparse.ArgumentParser) -> None:
    audit = commands.add_parser(
        "audit", parents=[common], help="check every stored entry, tile, checkpoint and uploaded file of the log",
        description="Audit the configured database directly, holding the log's write lock meanwhile. "
        "Prints a summary; exit status 1 when any problem is found. A log the self-audit halted "
        "signs again once this audit finds no problem.",
    )
    audit.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """No start-up integrity check here: a damaged log must still be auditable."""
    import sqlalchemy

    from app.distributions.blobs import BlobStore
    from app.keys import load_key
    from app.sequencer import Sequencer
    from app.services.log_audit import audit_sequencer
    from app.storage.db import make_engine
    from app.storage.log_store import LogStore

    settings = Settings.from_env()
    signer, verifier = load_key(settings.key_file, settings.origin)
    engine = make_engine(settings.effective_database_url)
    try:
        sequencer = Sequencer(LogStore(engine), signer, verifier, settings.origin)
        report = audit_sequencer(sequencer, blobs=BlobStore(settings.data_dir / "files"))
        halted = sqlalchemy.inspect(engine).has_table("log_halt") and sequencer.halted()
        if halted and report.ok:
            sequencer.resume()
    finally:
        engine.dispose()
    print(report.summary())
    if halted:
        print(f"the log was halted ({halted}): " + ("it signs again" if report.ok else "it stays halted"))
    return 0 if report.ok else 1
