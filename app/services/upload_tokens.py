"""Upload tokens: short-lived, project-scoped, revocable, stored only as a hash.

Wire format: `pubtrail-v1.<token id>.<secret>`; the id is 16 hex digits
(public: it appears in log entries), the secret 32 random bytes in URL-safe
base64 (never stored: the database keeps SHA-256 of it, compared in
constant time). A token is minted inside the transaction of the `exchange`
entry that records it, so every token points at its exchange's log index.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.engine import Connection

from app.entries import TRUSTED_PUBLISHING
from app.storage.tables import UploadToken

PREFIX = "pubtrail-v1"
_table = UploadToken.__table__
# built once, executed with parameters: building a statement per call costs more than running it
_INSERT = _table.insert()
_BY_ID = select(_table).where(_table.c.id == bindparam("id"))


class TokenRejected(Exception):
    """The token cannot authorise anything; the message says why (safe to show)."""


@dataclass(frozen=True)
class NewToken:
    """A freshly minted token: `value` is shown once, to the exchanging client."""

    token_id: str
    value: str
    secret_hash: bytes
    expires_at: int


@dataclass(frozen=True)
class TokenGrant:
    """What an authenticated token allows."""

    token_id: str
    projects: tuple[str, ...]
    exchange_log_index: int
    expires_at: int
    auth: str = TRUSTED_PUBLISHING  # (an API token's grant is `app.services.api_tokens.ApiTokenGrant`)


def new_token(now: float, lifetime: int) -> NewToken:
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewToken(
        token_id=token_id,
        value=f"{PREFIX}.{token_id}.{secret}",
        secret_hash=_hash(secret),
        expires_at=int(now) + lifetime,
    )


def store_token(conn: Connection, token: NewToken, projects: list[str], exchange_log_index: int) -> None:
    """Insert the token row (inside the exchange entry's transaction)."""
    conn.execute(
        _INSERT,
        {
            "id": token.token_id,
            "secret_hash": token.secret_hash,
            "exchange_log_index": exchange_log_index,
            "projects": json.dumps(sorted(projects)),
            "expires_at": token.expires_at,
        },
    )


class UploadTokens:
    def __init__(self, engine: Engine):
        self.engine = engine

    def authenticate(self, value: str, now: float) -> TokenGrant:
        """Check a presented token; raise TokenRejected unless it is live."""
        parts = value.split(".")
        if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
            raise TokenRejected("Invalid API Token: the token is not a pubtrail upload token")
        token_id, secret = parts[1], parts[2]
        with self.engine.connect() as conn:
            row = conn.execute(_BY_ID, {"id": token_id}).first()
        # compare even when the row is missing, so timing does not reveal which ids exist
        expected = bytes(row.secret_hash) if row is not None else b"\0" * 32
        if not hmac.compare_digest(expected, _hash(secret)) or row is None:
            raise TokenRejected("Invalid API Token: the token is not recognised")
        if row.revoked_at is not None:
            raise TokenRejected("Invalid API Token: the token has been revoked")
        if now >= row.expires_at:
            raise TokenRejected("Invalid API Token: the token has expired")
        return TokenGrant(row.id, tuple(json.loads(row.projects)), row.exchange_log_index, row.expires_at)

    def revoke(self, token_id: str, now: float) -> bool:
        """Revoke a token; False if no such live token."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(_table)
                .where(_table.c.id == token_id, _table.c.revoked_at.is_(None))
                .values(revoked_at=int(now))
            )
        return result.rowcount == 1


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()
