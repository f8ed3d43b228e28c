"""A log of publishes over the real HTTP API, with the test's own record of it.

`build_corpus(service, tmp_path)` registers publishers and publishes across
several repositories, workflows, refs, environments, two issuer signing keys
and three time windows (moving `service.clock`), including a token minted in
the second window and used in the third. It returns what the test itself
logged (`Corpus`), from which `expected` computes blast radii independently
of the server's SQL.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from app.entries import parse_rfc3339
from tests.distributions.builders import build_wheel, encode, twine_fields
from tests.e2e.conftest import NOW

REPOSITORIES = ("octo-org/app-0", "octo-org/app-1", "octo-org/app-2", "other-org/lib-3")
WORKFLOWS = ("release.yml", "nightly.yml")
REFS = ("refs/tags/v1", "refs/heads/main")
ENVIRONMENTS = ("pypi", "testpypi", None)
KIDS = ("rsa-1", "rsa-2")
WINDOWS = (NOW, NOW + 10_000, NOW + 20_000)
WINDOW_LENGTH = 5_000
TOKEN_LIFETIME = 86_400


def project_of(repository: str) -> str:
    return "proj-" + repository.rsplit("-", 1)[1]


@dataclass
class Exchange:
    index: int
    at: int
    repository: str
    workflow: str
    workflow_ref: str
    ref: str
    sha: str
    environment: str | None
    kid: str
    token_id: str
    token: str
    expires: int
    publisher_id: str
    projects: list[str]


@dataclass
class Upload:
    index: int
    at: int
    project: str
    version: str
    filename: str
    token_id: str
    exchange_index: int


@dataclass
class Corpus:
    exchanges: dict[int, Exchange] = field(default_factory=dict)
    uploads: dict[int, Upload] = field(default_factory=dict)
    carried: tuple[int, int] | None = None  # (exchange index in window 1, upload index in window 2)
    counter: int = 0


def add_publishers(service) -> None:
    for repository in REPOSITORIES:
        for workflow in WORKFLOWS:
            _add(service, repository, workflow)


def _add(service, repository: str, workflow: str) -> None:
    body = {"provider": "github", "repository": repository, "repository_owner_id": "1000", "workflow": workflow}
    response = service.client.post(
        f"/api/v1/projects/{project_of(repository)}/publishers", json=body, headers=service.admin
    )
    assert response.status_code == 201, response.text


def mint(service, corpus: Corpus, repository: str, workflow: str, ref: str, environment: str | None,
         kid: str) -> Exchange:
    corpus.counter += 1
    sha = f"{corpus.counter:040x}"
    claims = service.issuer.github_claims(
        now=service.clock(), repository=repository, repository_owner_id="1000", workflow=workflow, ref=ref,
        sha=sha, environment=environment,
    )
    response = service.mint(service.issuer.sign(claims, kid=kid))
    assert response.status_code == 200, response.text
    body = response.json()
    index = body["receipt"]["index"]
    entry = service.client.get(f"/api/v1/log/entries/{index}").json()["entry"]
    exchange = Exchange(
        index=index, at=int(service.clock()), repository=repository, workflow=workflow,
        workflow_ref=claims["workflow_ref"], ref=ref, sha=sha, environment=environment, kid=kid,
        token_id=entry["token_id"], token=body["token"], expires=parse_rfc3339(entry["token_expires"]),
        publisher_id=entry["publisher_id"], projects=entry["projects"],
    )
    corpus.exchanges[index] = exchange
    return exchange


def upload(service, corpus: Corpus, exchange: Exchange, tmp_path: Path, project: str | None = None,
           *, refused: int | None = None) -> Upload | None:
    """Upload a fresh wheel with the exchange's token; with `refused`, assert that status and log nothing."""
    corpus.counter += 1
    project = project or exchange.projects[0]
    version = f"1.{corpus.counter}"
    name = project.replace("-", "_")
    wheel = build_wheel(tmp_path / f"{name}-{version}-py3-none-any.whl", name=name, version=version)
    body, content_type = encode(twine_fields(wheel.name, wheel.read_bytes(), name=project, version=version))
    response = service.client.post(
        "/legacy/", content=body, headers={"Content-Type": content_type}, auth=("__token__", exchange.token)
    )
    if refused is not None:
        assert response.status_code == refused, response.text
        return None
    assert response.status_code == 200, response.text
    index = response.json()["receipt"]["index"]
    record = Upload(index, int(service.clock()), project, version, wheel.name, exchange.token_id, exchange.index)
    corpus.uploads[index] = record
    return record


def build_corpus(service, tmp_path: Path, *, per_window: int = 30, seed: int = 10) -> Corpus:
    """About `3 * per_window` exchanges and 1.5 times as many uploads."""
    rng = random.Random(seed)
    corpus = Corpus()
    add_publishers(service)
    carried: Exchange | None = None
    for window, start in enumerate(WINDOWS):
        service.clock.value = start
        for n in range(per_window):
            service.clock.value = start + n * (WINDOW_LENGTH // per_window)
            kid = KIDS[0] if window == 0 else KIDS[1] if window == 2 else rng.choice(KIDS)
            exchange = mint(
                service, corpus, rng.choice(REPOSITORIES), rng.choice(WORKFLOWS), rng.choice(REFS),
                rng.choice(ENVIRONMENTS), kid,
            )
            if window == 1 and n == per_window - 1:
                carried = exchange  # minted inside window 1, used only in window 2
                continue
            for _ in range(rng.choice((0, 1, 1, 2, 2))):
                service.clock.value += 1
                upload(service, corpus, exchange, tmp_path)
            if window == 2 and n == per_window // 2 and carried is not None:
                service.clock.value += 1
                used = upload(service, corpus, carried, tmp_path)
                corpus.carried = (carried.index, used.index)
    return corpus


# --- ground truth ------------------------------------------------------------------

EXCHANGE_NAMES = ("issuer", "provider", "repository", "repository_owner_id", "workflow", "job_workflow_ref", "ref",
                  "sha", "environment", "actor", "publisher_id", "kid")


def _exchange_matches(exchange: Exchange, criteria: dict[str, str]) -> bool:
    for name, value in criteria.items():
        if name == "repository" and exchange.repository.lower() != value.lower():
            return False
        if name == "workflow":
            if "@" in value and exchange.workflow_ref.lower() != value.lower():
                return False
            if "@" not in value and exchange.workflow != value:
                return False
        if name == "job_workflow_ref" and exchange.workflow_ref.lower() != value.lower():
            return False
        if name in ("ref", "sha", "environment", "kid", "publisher_id") and getattr(exchange, name) != value:
            return False
        if name == "token_id" and exchange.token_id != value:
            return False
        if name == "project" and value not in exchange.projects:
            return False
    return _in_window(exchange.at, criteria)


def _in_window(at: int, criteria: dict[str, str]) -> bool:
    if "since" in criteria and at < parse_rfc3339(criteria["since"]):
        return False
    return not ("until" in criteria and at >= parse_rfc3339(criteria["until"]))


def expected(corpus: Corpus, criteria: dict[str, str], below: int | None = None) -> tuple[list[int], list[int]]:
    """(exchange indexes, upload indexes) the stated semantics select, computed from the test's own record."""
    if "project" in criteria:
        criteria = {**criteria, "project": re.sub(r"[-_.]+", "-", criteria["project"]).lower()}
    exchanges = {i: e for i, e in corpus.exchanges.items() if below is None or i < below}
    uploads = {i: u for i, u in corpus.uploads.items() if below is None or i < below}
    if any(name in EXCHANGE_NAMES for name in criteria):
        chosen = {i for i, e in exchanges.items() if _exchange_matches(e, criteria)}
        picked = [
            i for i, u in uploads.items()
            if u.exchange_index in chosen
            and criteria.get("token_id", u.token_id) == u.token_id
            and criteria.get("project", u.project) == u.project
        ]
        return sorted(chosen), sorted(picked)
    picked = [
        i for i, u in uploads.items()
        if criteria.get("token_id", u.token_id) == u.token_id
        and criteria.get("project", u.project) == u.project
        and _in_window(u.at, criteria)
    ]
    if "token_id" in criteria:
        chosen = {
            i for i, e in exchanges.items()
            if e.token_id == criteria["token_id"] and criteria.get("project", e.projects[0]) in e.projects
        }
    else:
        chosen = {uploads[i].exchange_index for i in picked}
    return sorted(chosen), sorted(picked)
