"""A running pubtrail over a real socket, wired to a real local OIDC issuer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import httpx
import pytest

from app import tlog
from app.api.app import create_app
from app.api.reason_phrase import ReasonH11Protocol
from app.runtime import Runtime, build_runtime
from app.tlog import note
from tests.conftest import ADMIN_TOKEN
from tests.support.oidc_issuer import (
    ACTIVESTATE_ISSUER,
    GITHUB_ISSUER,
    GITLAB_ISSUER,
    GOOGLE_ISSUER,
    LocalOIDCIssuer,
)
from tests.support.server import serve

ALL_ISSUERS = (GITHUB_ISSUER, GITLAB_ISSUER, GOOGLE_ISSUER, ACTIVESTATE_ISSUER)
NOW = 1_790_000_000.0  # 2026-09-21, a fixed "now" the tests move by hand


class Clock:
    def __init__(self, value: float = NOW):
        self.value = value

    def __call__(self) -> float:
        return self.value


@dataclass
class Service:
    url: str
    runtime: Runtime
    issuer: LocalOIDCIssuer
    clock: Clock
    client: httpx.Client

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def verify_receipt(self, receipt: dict, entry_bytes: bytes | None = None) -> None:
        """A receipt (or an entry answer: same shape) proves its leaf (and `entry_bytes`,
        when given) is in a checkpoint signed with the log's key."""
        verifier = note.Verifier(self.client.get("/api/v1/log").json()["verifier_key"])
        checkpoint = tlog.open_checkpoint(receipt["checkpoint"], [verifier], origin=verifier.name)
        proof = receipt["inclusion_proof"]
        assert proof["tree_size"] == checkpoint.size
        leaf = bytes.fromhex(receipt["leaf_hash"])
        if entry_bytes is not None:
            assert leaf == tlog.leaf_hash(entry_bytes)
        hashes = [bytes.fromhex(h) for h in proof["hashes"]]
        tlog.verify_inclusion(leaf, receipt["index"], checkpoint.size, hashes, checkpoint.root_hash)

    def log_size(self) -> int:
        return self.client.get("/api/v1/log").json()["size"]

    def add_github_publisher(self, project: str = "sampleproject", **config) -> dict:
        body = {
            "provider": "github",
            "repository": "octo-org/sampleproject",
            "repository_owner_id": "65432",
            "workflow": "release.yml",
            "environment": "pypi",
        }
        body.update(config)
        response = self.client.post(f"/api/v1/projects/{project}/publishers", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        return response.json()

    def github_token(self, **claims) -> str:
        return self.issuer.sign(self.issuer.github_claims(now=self.clock(), **claims))

    def mint(self, oidc_token: str) -> httpx.Response:
        return self.client.post("/_/oidc/mint-token", json={"token": oidc_token})

    def upload_token(self, **claims) -> str:
        """An upload token minted from a fresh GitHub OIDC token (a matching publisher must exist)."""
        response = self.mint(self.github_token(**claims))
        assert response.status_code == 200, response.text
        return response.json()["token"]


@pytest.fixture
def issuer() -> Iterator[LocalOIDCIssuer]:
    with LocalOIDCIssuer(audience="pubtrail") as server:
        yield server


@pytest.fixture
def make_service(make_settings, database_url, issuer):
    """Start a service; extra keyword arguments override Settings fields."""
    started = []

    def start(**overrides) -> Service:
        clock = Clock()
        settings = make_settings(
            database_url=database_url,
            jwks_urls=issuer.jwks_overrides(*ALL_ISSUERS),
            **overrides,
        )
        runtime = build_runtime(settings, clock=clock)
        context = serve(create_app(runtime), http=ReasonH11Protocol)
        url = context.__enter__()
        client = httpx.Client(base_url=url, timeout=30)
        started.append((context, client, runtime))
        return Service(url, runtime, issuer, clock, client)

    yield start
    for context, client, runtime in reversed(started):
        client.close()
        context.__exit__(None, None, None)
        runtime.close()


@pytest.fixture
def service(make_service) -> Service:
    return make_service()
