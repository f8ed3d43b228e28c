"""Pruning of operational state (never log entries, never projections).

Upload-token rows stay after expiry: they are projections of `exchange`
entries and `pubtrail audit` compares them with the log. What may go is what
the log does not imply: used jtis past their token's expiry
(`TokenExchange.prune_used_jtis`) and the refused-exchange audit beyond its cap.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, func, select

from app.services.exchange import FAILED_EXCHANGES_KEPT
from app.storage.tables import FailedExchange

_failed = FailedExchange.__table__


def prune_failed_exchanges(engine: Engine, keep: int = FAILED_EXCHANGES_KEPT) -> int:
    """Delete all but the newest `keep` refused-exchange audit rows; return how many went.

    Inserting prunes only every 100th row, so the table may hold up to 99 rows
    over its cap between rounds of this job."""
    with engine.begin() as conn:
        newest = conn.execute(select(func.max(_failed.c.id))).scalar()
        if newest is None:
            return 0
        return conn.execute(delete(_failed).where(_failed.c.id <= newest - keep)).rowcount
