"""Runtime: the service's objects, built from Settings in one place.

`build_runtime(settings)` opens the database, creates the schema, loads the
signing key and checks the log's integrity (refusing to start if stored
tiles and checkpoints disagree). Tests build several runtimes side by side;
nothing here is global.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import Engine

from app.config import Settings
from app.keys import load_key
from app.metrics import Metrics
from app.sequencer import Sequencer
from app.services.log import Log
from app.services.log_reader import LogReader
from app.storage.db import make_engine
from app.storage.log_store import LogStore, create_schema


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    clock: Callable[[], float]
    metrics: Metrics
    log: Log

    async def start(self) -> None:
        await self.log.sequencer.start()

    async def stop(self) -> None:
        await self.log.sequencer.stop()

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(settings: Settings, *, clock: Callable[[], float] = time.time) -> Runtime:
    """Open storage and the log for `settings`; raise on any integrity problem."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    create_schema(engine)
    store = LogStore(engine)
    signer, verifier = load_key(settings.key_file)
    metrics = Metrics()
    sequencer = Sequencer(
        store,
        signer,
        verifier,
        settings.origin,
        clock=clock,
        batch_window=settings.batch_window,
        batch_max=settings.batch_max,
        on_batch=metrics.observe_batch,
    )
    sequencer.initialize()
    reader = LogReader(store, verifier.key_string, settings.origin)
    metrics.log_size.set(reader.latest().size)
    return Runtime(settings=settings, engine=engine, clock=clock, metrics=metrics, log=Log(sequencer, reader, metrics))
