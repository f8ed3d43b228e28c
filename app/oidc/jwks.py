"""JWKS retrieval and caching per issuer, refreshed on an unknown ``kid``.

:class:`JWKSCache` keeps the signing keys of each issuer, keyed by ``kid``.
A token signed with a ``kid`` we do not hold triggers one refresh of that
issuer's key set, but at most one refresh per ``refresh_cooldown`` seconds
per issuer, so a stream of tokens with invented ``kid`` values cannot make
us hammer the issuer. Concurrent refreshes of one issuer coalesce behind an
``asyncio.Lock``.

Where the keys come from: ``overrides[issuer]`` if configured (an ``http(s)``
or ``file:///path`` URL; tests and air-gapped sites use it), otherwise the
``jwks_uri`` of ``<issuer>/.well-known/openid-configuration``. The
discovery document's own ``issuer`` must equal the issuer (OpenID Connect
Discovery 1.0, section 4.3).

Fetching is injected: ``fetch`` is ``async (url) -> bytes``. The shipped
:func:`httpx_fetcher` reads ``file://`` URLs from disk and everything else
with httpx. Fetch or parse failures raise :class:`JWKSUnavailable` (an
:class:`InvalidToken`, code ``invalid-token``): the token could not be
verified. A failed refresh also starts the cool-down, and keys already
cached are kept.

Refresh ahead: :meth:`JWKSCache.refresh_ahead` (a periodic job of every
process, since each holds its own cache) re-fetches the key set of every
issuer it knows (configured or used before) once its keys are older than a
given age, so a new key is held before the first token signed with it
arrives, a key the issuer withdrew stops being accepted, and an exchange
never waits on a fetch it could have been spared. A failed refresh keeps the
keys already held.

Only RSA keys (used with RS256) and EC P-256 keys (ES256) are accepted;
other keys in a set are ignored.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import jwt

from app.oidc.errors import InvalidToken, JWKSUnavailable

__all__ = [
    "Fetcher",
    "JWKSCache",
    "httpx_fetcher",
    "read_file_url",
    "MAX_DOCUMENT_BYTES",
    "parse_jwks",
]

Fetcher = Callable[[str], Awaitable[bytes]]

#: Discovery documents and key sets larger than this are refused.
MAX_DOCUMENT_BYTES = 1 << 20

# kty -> the only algorithm we use that key with.
_ALGORITHM_FOR_KTY = {"RSA": "RS256", "EC": "ES256"}


def read_file_url(url: str) -> bytes:
    """read_file_url reads a ``file:///absolute/path`` URL from local disk."""
    parsed = urlparse(url)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise ValueError(f"not a local file URL: {url!r}")
    data = Path(unquote(parsed.path)).read_bytes()
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{url} is larger than {MAX_DOCUMENT_BYTES} bytes")
    return data


def httpx_fetcher(client: httpx.AsyncClient | None = None, timeout: float = 5.0) -> Fetcher:
    """httpx_fetcher returns the default fetcher: file:// from disk, else HTTP GET.

    With ``client`` None a short-lived client is opened per fetch (fetches are
    rare: at most one per issuer per cool-down). Redirects are not followed;
    a non-2xx status or an oversized body is an error.
    """

    async def fetch(url: str) -> bytes:
        if url.startswith("file:"):
            return await asyncio.to_thread(read_file_url, url)
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"unsupported URL scheme: {url!r}")
        if client is None:
            async with httpx.AsyncClient(timeout=timeout) as own:
                response = await own.get(url, headers={"Accept": "application/json"})
        else:
            response = await client.get(url, headers={"Accept": "application/json"}, timeout=timeout)
        response.raise_for_status()
        if len(response.content) > MAX_DOCUMENT_BYTES:
            raise ValueError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
        return response.content

    return fetch


def parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    """parse_jwks returns the usable signing keys of a JWKS document by kid.

    Keys without a string ``kid``, with ``use`` other than ``sig``, of another
    type or curve, or whose ``alg`` disagrees with their type are skipped.
    Raises ValueError when the document is not a JWKS at all.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document (no 'keys' list)")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        kty = entry.get("kty")
        if not isinstance(kid, str) or not kid or kty not in _ALGORITHM_FOR_KTY:
            continue
        algorithm = _ALGORITHM_FOR_KTY[kty]
        if entry.get("use", "sig") != "sig" or entry.get("alg", algorithm) != algorithm:
            continue
        if kty == "EC" and entry.get("crv") != "P-256":
            continue
        if "d" in entry:  # a private key published by mistake: refuse to use it
            continue
        try:
            keys[kid] = jwt.PyJWK(entry, algorithm=algorithm)
        except jwt.PyJWTError:
            continue
    return keys


@dataclass
class _IssuerKeys:
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_attempt: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    fetches: int = 0


class JWKSCache:
    """JWKSCache holds issuers' signing keys, refreshed on an unknown kid.

    ``clock`` is monotonic seconds (injected for tests). The cache is meant to
    live for the process and be used from one event loop.
    """

    def __init__(
        self,
        fetch: Fetcher,
        overrides: Mapping[str, str] | None = None,
        refresh_cooldown: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._overrides = dict(overrides or {})
        self._cooldown = refresh_cooldown
        self._clock = clock
        self._issuers: dict[str, _IssuerKeys] = {}

    def _state(self, issuer: str) -> _IssuerKeys:
        state = self._issuers.get(issuer)
        if state is None:
            state = self._issuers[issuer] = _IssuerKeys()
        return state

    def cached_kids(self, issuer: str) -> frozenset[str]:
        """cached_kids lists the kids currently held for ``issuer``."""
        state = self._issuers.get(issuer)
        return frozenset(state.keys) if state else frozenset()

    def fetch_count(self, issuer: str) -> int:
        """fetch_count is how many refreshes of ``issuer`` were attempted."""
        state = self._issuers.get(issuer)
        return state.fetches if state else 0

    async def get_key(self, issuer: str, kid: str) -> jwt.PyJWK:
        """get_key returns the key ``kid`` of ``issuer``, refreshing once if unknown.

        Raises InvalidToken when the kid is still unknown, and
        JWKSUnavailable when the key set could not be fetched.
        """
        state = self._state(issuer)
        key = state.keys.get(kid)
        if key is not None:
            return key
        async with state.lock:
            # Another task may have refreshed while we waited for the lock.
            key = state.keys.get(kid)
            if key is not None:
                return key
            if self._may_refresh(state):
                await self._refresh_locked(issuer, state)
                key = state.keys.get(kid)
                if key is not None:
                    return key
            elif state.last_error is not None and not state.keys:
                raise JWKSUnavailable(
                    f"could not fetch JWKS for issuer {issuer}: {state.last_error}"
                )
        raise InvalidToken(f"the OIDC token was signed with an unknown signing key (kid {kid[:100]!r})")

    async def refresh(self, issuer: str, *, force: bool = False) -> bool:
        """refresh re-fetches ``issuer``'s keys unless in cool-down (or ``force``).

        Returns True if a fetch happened. For a scheduled warm-up job.
        """
        state = self._state(issuer)
        async with state.lock:
            if not force and not self._may_refresh(state):
                return False
            await self._refresh_locked(issuer, state)
            return True

    async def refresh_ahead(self, max_age: float) -> dict[str, str | None]:
        """refresh_ahead re-fetches each known issuer whose keys are ``max_age``
        seconds old or were never fetched; known means configured in
        ``overrides`` or asked for before. Returns issuer -> None (refreshed) or
        the error (its keys kept) for each issuer it tried; never raises for one.
        """
        outcome: dict[str, str | None] = {}
        for issuer in sorted(set(self._overrides) | set(self._issuers)):
            state = self._state(issuer)
            if state.last_success is not None and self._clock() - state.last_success < max_age:
                continue
            async with state.lock:
                try:
                    await self._refresh_locked(issuer, state)
                    outcome[issuer] = None
                except JWKSUnavailable as exc:
                    outcome[issuer] = exc.description
        return outcome

    def _may_refresh(self, state: _IssuerKeys) -> bool:
        return state.last_attempt is None or self._clock() - state.last_attempt >= self._cooldown

    async def _refresh_locked(self, issuer: str, state: _IssuerKeys) -> None:
        state.last_attempt = self._clock()
        state.fetches += 1
        try:
            keys = await self._load(issuer)
        except JWKSUnavailable as exc:
            state.last_error = exc.description
            raise
        state.keys = keys
        state.last_error = None
        state.last_success = state.last_attempt

    async def _load(self, issuer: str) -> dict[str, jwt.PyJWK]:
        jwks_url = self._overrides.get(issuer)
        if jwks_url is None:
            discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
            discovery = await self._get_json(issuer, discovery_url)
            if not isinstance(discovery, dict):
                raise JWKSUnavailable(f"could not fetch JWKS for issuer {issuer}: discovery document is not an object")
            if discovery.get("issuer") != issuer:
                raise JWKSUnavailable(
                    f"could not fetch JWKS for issuer {issuer}: discovery document names "
                    f"issuer {str(discovery.get('issuer'))[:200]!r}"
                )
            jwks_url = discovery.get("jwks_uri")
            # an https issuer's keys must come over https too (an http issuer is a local/dev one)
            schemes = ("https://",) if issuer.startswith("https://") else ("https://", "http://")
            if not isinstance(jwks_url, str) or not jwks_url.startswith(schemes):
                raise JWKSUnavailable(f"could not fetch JWKS for issuer {issuer}: discovery document has no usable jwks_uri")
        document = await self._get_json(issuer, jwks_url)
        try:
            keys = parse_jwks(document)
        except ValueError as exc:
            raise JWKSUnavailable(f"could not fetch JWKS for issuer {issuer}: {exc}") from exc
        if not keys:
            raise JWKSUnavailable(f"could not fetch JWKS for issuer {issuer}: no usable RSA or EC P-256 signing keys")
        return keys

    async def _get_json(self, issuer: str, url: str) -> Any:
        try:
            body = await self._fetch(url)
            return json.loads(body)
        except Exception as exc:  # any transport, HTTP, file or JSON failure
            raise JWKSUnavailable(
                f"could not fetch JWKS for issuer {issuer}: {url}: {type(exc).__name__}: {exc}"[:500]
            ) from exc
