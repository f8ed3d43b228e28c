"""Fixtures for app.oidc tests: a real local HTTP issuer and a verifier wired to it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

# `python -m pytest` (scripts/test) puts the repository root on sys.path; a bare
# `pytest` does not. Until pyproject sets `pythonpath = ["."]`, make
# `tests.support` importable either way.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.oidc.jwks import JWKSCache, httpx_fetcher
from app.oidc.providers import IssuerRegistry
from app.oidc.verifier import TokenVerifier
from tests.support.oidc_issuer import (
    ACTIVESTATE_ISSUER,
    GITHUB_ISSUER,
    GITLAB_ISSUER,
    GOOGLE_ISSUER,
    LocalOIDCIssuer,
)

#: A fixed "now" (2024-06-01T00:00:00Z): tests never depend on the wall clock.
NOW = 1_717_200_000
AUDIENCE = "pubtrail"
ALL_ISSUERS = (GITHUB_ISSUER, GITLAB_ISSUER, GOOGLE_ISSUER, ACTIVESTATE_ISSUER)


class FakeClock:
    """A monotonic clock the test advances by hand."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


@pytest.fixture
def issuer() -> Iterator[LocalOIDCIssuer]:
    with LocalOIDCIssuer(audience=AUDIENCE) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_verifier(issuer: LocalOIDCIssuer, clock: FakeClock) -> Callable[..., tuple[TokenVerifier, JWKSCache]]:
    """make_verifier(registry=None, cooldown=60, overrides=None) -> (verifier, cache)."""

    def build(
        registry: IssuerRegistry | None = None,
        cooldown: float = 60.0,
        overrides: dict[str, str] | None = None,
        leeway: float = 30,
    ) -> tuple[TokenVerifier, JWKSCache]:
        cache = JWKSCache(
            httpx_fetcher(),
            overrides=issuer.jwks_overrides(*ALL_ISSUERS) if overrides is None else overrides,
            refresh_cooldown=cooldown,
            clock=clock,
        )
        return TokenVerifier(registry or IssuerRegistry.default(), cache, AUDIENCE, leeway=leeway), cache

    return build


def run(coro: Any) -> Any:
    """run drives one coroutine to completion in a fresh event loop."""
    return asyncio.run(coro)
