"""The token exchange: an OIDC identity token in, a short-lived upload token out.

Steps (any failure raises an `OIDCError` carrying PyPI's error code):

1. parse the request body (`{"token": "<JWT>"}`)                 invalid-payload
2. verify the JWT against its issuer's keys and our audience     invalid-token / not-enabled
3. find the most specific registered publisher that accepts it   invalid-publisher
4. append an `exchange` entry; in the same transaction claim the jti
   (unique per issuer: a replay, even a concurrent one in another process,
   is refused here and leaves no entry)                          invalid-reuse-token
   and record the exchange, its claims (for blast-radius queries) and the
   upload token's hash.

Only then is the token returned, with the exchange entry's receipt.

Failures are counted in metrics and kept in a bounded audit table, never in
the log. Refused exchanges need no credentials, so the audit rows they cost
are rate-limited per client address and overall (FAILURE_AUDIT_*); the rest
are only counted (`pubtrail_failed_exchange_audit_dropped_total`).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Callable

import jwt
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.dialects import postgresql, sqlite

from app.entries import ExchangeEntry, decode, parse_rfc3339, rfc3339
from app.metrics import Metrics
from app.oidc.errors import InvalidPayload, OIDCError, ReusedToken
from app.oidc.identity import identity_fields, query_key
from app.oidc.providers import identity_claims
from app.oidc.publishers import lookup_keys, select_publisher
from app.oidc.verifier import TokenVerifier, VerifiedToken
from app.services.log import Log
from app.sequencer import Receipt, Sequencer
from app.services.publishers import Publishers
from app.services.rate_limit import RateLimiter
from app.services.upload_tokens import new_token, store_token
from app.storage.tables import Exchange, ExchangeClaim, ExchangeIdentity, FailedExchange, LogEntry, UsedJti

FAILED_EXCHANGES_KEPT = 10_000
#: failure audit rows per second (and burst) one client address may cause
FAILURE_AUDIT_PER_CLIENT = (1.0, 10)
#: failure audit rows per second (and burst) all clients together may cause
FAILURE_AUDIT_TOTAL = (20.0, 100)
_used_jti = UsedJti.__table__
_exchange = Exchange.__table__
_claims = ExchangeClaim.__table__
_failed = FailedExchange.__table__
_identity = ExchangeIdentity.__table__

# Statements built once and executed with parameters: building one per call
# (`.values(...)`) costs SQLAlchemy more than SQLite takes to run it.
_INSERT_EXCHANGE = _exchange.insert()
_INSERT_CLAIM = _claims.insert()
_INSERT_IDENTITY = _identity.insert()
_CLAIM_JTI = {
    name: dialect.insert(_used_jti)
    .on_conflict_do_nothing(index_elements=[_used_jti.c.issuer, _used_jti.c.jti])
    .returning(_used_jti.c.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}


@dataclass(frozen=True)
class MintedToken:
    token: str
    expires: int
    token_id: str
    receipt: Receipt


class TokenExchange:
    def __init__(
        self,
        engine: Engine,
        log: Log,
        verifier: TokenVerifier,
        publishers: Publishers,
        metrics: Metrics,
        clock: Callable[[], float],
        token_lifetime: int,
    ):
        self.engine = engine
        self.log = log
        self.verifier = verifier
        self.publishers = publishers
        self.metrics = metrics
        self.clock = clock
        self.token_lifetime = token_lifetime
        self._audit_per_client = RateLimiter(*FAILURE_AUDIT_PER_CLIENT, clock=clock)
        self._audit_total = RateLimiter(*FAILURE_AUDIT_TOTAL, clock=clock)

    async def mint(self, body: bytes, client: str | None = None) -> MintedToken:
        """Run the exchange for a raw request body from `client` (its address, for
        rate-limiting the failure audit); raise OIDCError on refusal."""
        raw_token = None
        try:
            raw_token = _token_from_body(body)
            minted = await self._mint(raw_token)
        except OIDCError as exc:
            self.metrics.exchanges.labels(exc.code).inc()
            if self._audit_per_client.allow(client) and self._audit_total.allow():
                # a database write: off the event loop, which must not wait on a busy database
                await asyncio.to_thread(self._record_failure, exc, *_peek(raw_token))
            else:
                self.metrics.failed_exchange_audit_dropped.inc()
            raise
        self.metrics.exchanges.labels("success").inc()
        return minted

    async def _mint(self, raw_token: str) -> MintedToken:
        now = self.clock()
        verified = await self.verifier.verify(raw_token, now)
        candidates = await asyncio.to_thread(
            self.publishers.candidates, lookup_keys(verified.provider, verified.claims)
        )
        by_identity = {c.id: c.publisher() for c in candidates}
        chosen = select_publisher(by_identity.values(), verified.claims)
        chosen_id = next(pid for pid, publisher in by_identity.items() if publisher is chosen)
        projects = sorted({c.project for c in candidates if c.id == chosen_id})
        token = new_token(now, self.token_lifetime)
        claims = identity_claims(verified.provider, verified.claims)
        entry = ExchangeEntry(
            time=rfc3339(now),
            issuer=verified.issuer,
            provider=verified.provider,
            kid=verified.kid,
            claims=claims,
            jti=verified.jti,
            publisher_id=chosen_id,
            projects=projects,
            token_id=token.token_id,
            token_expires=rfc3339(token.expires_at),
        )

        def project_rows(conn: Connection, index: int) -> None:
            if verified.jti is not None and not _claim_jti(conn, verified):
                raise ReusedToken()
            conn.execute(
                _INSERT_EXCHANGE,
                {
                    "log_index": index,
                    "at": int(now),
                    "issuer": verified.issuer,
                    "provider": verified.provider,
                    "kid": verified.kid,
                    "jti": verified.jti,
                    "publisher_id": chosen_id,
                    "token_id": token.token_id,
                    "token_expires_at": token.expires_at,
                },
            )
            rows = [{"log_index": index, "name": k, "value": claim_text(v)} for k, v in claims.items()]
            if rows:
                conn.execute(_INSERT_CLAIM, rows)
            conn.execute(_INSERT_IDENTITY, identity_row(index, entry))
            store_token(conn, token, projects, index)

        receipt = await self.log.append(entry.encode(), kind=entry.kind, projection=project_rows)
        return MintedToken(token.value, token.expires_at, token.token_id, receipt)

    def _record_failure(self, exc: OIDCError, issuer: str | None, repository: str | None) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(
                _failed.insert().values(
                    at=int(self.clock()),
                    issuer=issuer[:512] if issuer else None,
                    code=exc.code,
                    description=exc.description[:2000],
                    repository=repository[:512] if repository else None,
                )
            )
            newest = result.inserted_primary_key[0]
            if newest % 100 == 0:  # prune now and then, not on every failure
                conn.execute(delete(_failed).where(_failed.c.id <= newest - FAILED_EXCHANGES_KEPT))

    def prune_used_jtis(self) -> int:
        """Forget jtis whose tokens have expired (a periodic job)."""
        with self.engine.begin() as conn:
            return conn.execute(delete(_used_jti).where(_used_jti.c.expires_at < int(self.clock()))).rowcount

    def failed_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(_failed)).scalar_one()


def identity_row(index: int, entry: ExchangeEntry) -> dict[str, Any]:
    """The `exchange_identity` row of the exchange entry at `index`: a pure function
    of the entry, so the row can be rebuilt from the log."""
    fields = identity_fields(entry.issuer, entry.provider, entry.claims)
    row = {name: query_key(name, fields[name]) for name in _IDENTITY_COLUMNS}
    row.update(log_index=index, at=parse_rfc3339(entry.time), provider=entry.provider)
    return row


_IDENTITY_COLUMNS = tuple(c.name for c in _identity.columns if c.name not in ("log_index", "at", "provider"))
BACKFILL_BATCH = 1000


def backfill_identities(sequencer: Sequencer) -> int:
    """Give every logged exchange its `exchange_identity` row (exchanges logged
    before the table existed have none); return how many rows were added.

    A cheap look first, then the work under the log's write lock, so that
    processes starting together neither collide nor race an append.
    """
    engine = sequencer.store.engine
    missing = (
        select(_exchange.c.log_index)
        .outerjoin(_identity, _identity.c.log_index == _exchange.c.log_index)
        .where(_identity.c.log_index.is_(None))
        .order_by(_exchange.c.log_index)
    )
    with engine.connect() as conn:
        if conn.execute(missing.limit(1)).first() is None:
            return 0
    added = 0
    entries = LogEntry.__table__
    with sequencer.locked() as conn:
        while True:
            indexes = list(conn.execute(missing.limit(BACKFILL_BATCH)).scalars())
            if not indexes:
                return added
            stored = conn.execute(
                select(entries.c.index, entries.c.data).where(entries.c.index.in_(indexes))
            ).all()
            rows = []
            for index, data in stored:
                entry = decode(bytes(data))
                if not isinstance(entry, ExchangeEntry):
                    raise ValueError(f"log entry {index} is a {entry.kind} entry, but the exchange table names it")
                rows.append(identity_row(index, entry))
            if len(rows) != len(indexes):
                raise ValueError("the exchange table names log entries that are not stored")
            conn.execute(_INSERT_IDENTITY, rows)
            added += len(rows)


def _claim_jti(conn: Connection, verified: VerifiedToken) -> bool:
    """Record the token's jti; False if this issuer's jti was recorded before.

    The (issuer, jti) unique constraint decides, so of two processes racing
    with the same token exactly one wins. Kept a minute past the token's expiry
    (after which the verifier refuses the token anyway).
    """
    result = conn.execute(
        _CLAIM_JTI[conn.dialect.name],
        {"issuer": verified.issuer, "jti": verified.jti, "expires_at": verified.expires_at + 60},
    )
    return result.first() is not None


def _token_from_body(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidPayload("the request body is not valid JSON") from exc
    if not isinstance(payload, dict) or "token" not in payload:
        raise InvalidPayload("the request body must be a JSON object with a 'token' field")
    token = payload["token"]
    if not isinstance(token, str) or not token:
        raise InvalidPayload("'token' must be a non-empty string")
    if not token.isascii():
        raise InvalidPayload("the OIDC token is not a well-formed JWT")
    return token


def _peek(raw_token: str | None) -> tuple[str | None, str | None]:
    """Issuer and repository from the unverified payload, for the failure audit only."""
    if raw_token is None:
        return None, None
    try:
        claims = jwt.decode(raw_token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError):
        return None, None
    issuer = claims.get("iss") if isinstance(claims.get("iss"), str) else None
    repository = claims.get("repository") or claims.get("project_path")
    return issuer, repository if isinstance(repository, str) else None


def claim_text(value: Any) -> str:
    """A claim's value as the `exchange_claim` table stores it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
