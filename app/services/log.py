"""Log: the one internal entry point for writing the log, plus its read side.

`await log.append(data, kind=...)` is how token exchanges, uploads and
publisher changes enter the log; there is no public append endpoint.
"""

from __future__ import annotations

import time

from app.metrics import Metrics
from app.sequencer import Projection, Receipt, Sequencer
from app.services.log_reader import LogReader


class Log:
    def __init__(self, sequencer: Sequencer, reader: LogReader, metrics: Metrics):
        self.sequencer = sequencer
        self.reader = reader
        self.metrics = metrics

    @property
    def origin(self) -> str:
        return self.sequencer.origin

    @property
    def verifier_key(self) -> str:
        return self.reader.verifier_key

    async def append(self, data: bytes, *, kind: str, projection: Projection | None = None) -> Receipt:
        """Append `data` (the exact leaf bytes); return the receipt once durable and included."""
        started = time.perf_counter()
        receipt = await self.sequencer.append(data, kind=kind, projection=projection)
        self.metrics.append_seconds.observe(time.perf_counter() - started)
        self.metrics.log_size.set(receipt.tree_size)
        return receipt
