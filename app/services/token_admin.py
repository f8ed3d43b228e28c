"""Upload tokens as an admin sees them: revoke one (a logged entry), list a publisher's live tokens.

A revocation is a `revocation` entry. Its projection marks the token revoked
and records who, why and at which log index, in the entry's own
transaction: once the receipt is handed out the token authorises nothing,
and a token that is unknown, already revoked or already expired leaves no
entry (404).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection

from app.entries import RevocationEntry, rfc3339
from app.errors import BadRequest, NotFound
from app.sequencer import Receipt
from app.services.log import Log
from app.storage.tables import Exchange, TokenRevocation, UploadToken

_tokens = UploadToken.__table__
_exchanges = Exchange.__table__
_revocations = TokenRevocation.__table__

MAX_REASON = 1000


@dataclass(frozen=True)
class LiveToken:
    """An upload token that still authorises uploads (not revoked, not expired)."""

    token_id: str
    projects: list[str]
    minted_at: int
    expires_at: int
    exchange_index: int

    def to_json(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "projects": self.projects,
            "minted_at": rfc3339(self.minted_at),
            "expires_at": rfc3339(self.expires_at),
            "exchange_index": self.exchange_index,
        }


class TokenAdmin:
    def __init__(self, engine: Engine, log: Log, clock: Callable[[], float]):
        self.engine = engine
        self.log = log
        self.clock = clock

    async def revoke(self, token_id: str, actor: str, reason: str | None = None) -> Receipt:
        """Revoke a live upload token; NotFound unless it exists, is unrevoked and unexpired."""
        if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
            raise BadRequest(f"reason must be a string of at most {MAX_REASON} characters")
        now = int(self.clock())
        exchange_index = await asyncio.to_thread(self._live_exchange_index, token_id, now)
        entry = RevocationEntry(
            time=rfc3339(now), token_id=token_id, exchange_index=exchange_index, actor=actor, reason=reason
        )

        def project_rows(conn: Connection, index: int) -> None:
            # re-checked inside the log's transaction: a concurrent revocation or
            # the token's expiry in between leaves no entry
            result = conn.execute(
                update(_tokens)
                .where(_tokens.c.id == token_id, _tokens.c.revoked_at.is_(None), _tokens.c.expires_at > now)
                .values(revoked_at=now)
            )
            if result.rowcount != 1:
                raise NotFound(f"no live upload token {token_id}")
            conn.execute(
                _revocations.insert().values(
                    token_id=token_id, revoked_at=now, revoked_by=actor, reason=reason, log_index=index
                )
            )

        return await self.log.append(entry.encode(), kind=entry.kind, projection=project_rows)

    def _live_exchange_index(self, token_id: str, now: int) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(_tokens.c.exchange_log_index).where(
                    _tokens.c.id == token_id, _tokens.c.revoked_at.is_(None), _tokens.c.expires_at > now
                )
            ).first()
        if row is None:
            raise NotFound(f"no live upload token {token_id}")
        return row.exchange_log_index

    def live_tokens(self, publisher_id: str) -> list[LiveToken]:
        """The live upload tokens minted through `publisher_id`, oldest first."""
        now = int(self.clock())
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_tokens, _exchanges.c.at)
                .join(_exchanges, _exchanges.c.log_index == _tokens.c.exchange_log_index)
                .where(
                    _exchanges.c.publisher_id == publisher_id,
                    _tokens.c.revoked_at.is_(None),
                    _tokens.c.expires_at > now,
                )
                .order_by(_tokens.c.exchange_log_index)
            ).all()
        return [
            LiveToken(row.id, json.loads(row.projects), row.at, row.expires_at, row.exchange_log_index)
            for row in rows
        ]
