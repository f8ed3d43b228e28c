"""Browser tests of the explorer: a seeded log served by a real `pubtrail serve` process,
driven by Playwright in Debian's headless Chromium.

The log is seeded once per module over the real HTTP API (trusted publishers, token
exchanges and uploads from a local OIDC issuer: the blast-radius corpus of tests/e2e
plus two releases of `sampleproject`), then that server stops and `pubtrail serve`
serves the same database and key from a child process.

Chromium must be at /usr/bin/chromium (`apt-get install chromium`; `.ci/run` installs
it). Without it the browser tests FAIL, so CI cannot pass them silently; for a local
run without a browser set PUBTRAIL_SKIP_BROWSER_TESTS=1 to skip them instead.
Screenshots go to $PUBTRAIL_TEST_ARTIFACTS (default: a temporary directory).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from app.api.app import create_app
from app.api.reason_phrase import ReasonH11Protocol
from app.config import Settings
from app.keys import write_new_key
from app.runtime import build_runtime
from tests.conftest import ADMIN_TOKEN, ORIGIN
from tests.e2e.blast_corpus import TOKEN_LIFETIME, Corpus, build_corpus
from tests.e2e.conftest import ALL_ISSUERS, NOW, Clock, Service
from tests.e2e.conftest import issuer, make_service, service  # noqa: F401  (fixtures of the page tests)
from tests.e2e.provenance_support import PROJECT, Uploaded, mint, upload
from tests.support.oidc_issuer import LocalOIDCIssuer
from tests.support.server import serve

CHROMIUM = "/usr/bin/chromium"
SKIP_ENV = "PUBTRAIL_SKIP_BROWSER_TESTS"
ARTIFACTS_ENV = "PUBTRAIL_TEST_ARTIFACTS"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Seeded:
    """What the test put in the log, and where it lives."""

    data_dir: Path
    key_file: Path
    database_url: str
    verifier_key: str
    corpus: Corpus
    files: list[Uploaded]
    size: int


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Seeded:
    root = tmp_path_factory.mktemp("web-log")
    data_dir = root / "data"
    key_file = data_dir / "log-signing.key"
    write_new_key(key_file, ORIGIN)
    database_url = f"sqlite:///{root / 'db.sqlite3'}"
    with LocalOIDCIssuer(audience="pubtrail") as issuer:
        settings = Settings(
            data_dir=data_dir, origin=ORIGIN, signing_key_file=key_file, admin_token=ADMIN_TOKEN,
            batch_window=0.002, database_url=database_url, jwks_urls=issuer.jwks_overrides(*ALL_ISSUERS),
            webhook_poll_interval=3600, upload_token_lifetime=TOKEN_LIFETIME,
        )
        clock = Clock()
        runtime = build_runtime(settings, clock=clock)
        try:
            with serve(create_app(runtime), http=ReasonH11Protocol) as url, httpx.Client(base_url=url, timeout=30) as client:
                service = Service(url, runtime, issuer, clock, client)
                (root / "corpus").mkdir()
                corpus = build_corpus(service, root / "corpus", per_window=8)
                clock.value = NOW + 30_000
                service.add_github_publisher(PROJECT)
                publisher = mint(service)
                files = [upload(service, publisher, root / "w1", "1.0.0", "wheel")]
                clock.value += 60
                files.append(upload(service, mint(service), root / "w2", "1.1.0", "wheel"))
                info = client.get("/api/v1/log").json()
        finally:
            runtime.close()
    return Seeded(data_dir, key_file, database_url, info["verifier_key"], corpus, files, info["size"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(seeded: Seeded) -> Iterator[str]:
    """`pubtrail serve` over the seeded log in a child process; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBTRAIL_")}
    env.update(
        PUBTRAIL_DATA_DIR=str(seeded.data_dir),
        PUBTRAIL_DATABASE_URL=seeded.database_url,
        PUBTRAIL_ORIGIN=ORIGIN,
        PUBTRAIL_SIGNING_KEY_FILE=str(seeded.key_file),
        PUBTRAIL_ADMIN_TOKEN=ADMIN_TOKEN,
        PYTHONPATH=str(ROOT),
    )
    log_path = seeded.data_dir.parent / f"serve-{port}.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # a loaded CI machine starts slowly
    try:
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("pubtrail serve did not start:\n" + log_path.read_text())
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium under Playwright; fails (not skips) when it is missing,
    unless PUBTRAIL_SKIP_BROWSER_TESTS=1."""
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "the playwright package is not installed (pip install -e '.[test]')"
    if problem is None and not os.access(CHROMIUM, os.X_OK):
        problem = f"{CHROMIUM} is missing (apt-get install chromium)"
    if problem is not None:
        if os.environ.get(SKIP_ENV) == "1":
            pytest.skip(f"browser tests skipped ({SKIP_ENV}=1): {problem}")
        pytest.fail(f"browser tests need Chromium: {problem}; set {SKIP_ENV}=1 to skip them locally")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    opened.script_errors = errors
    yield opened
    context.close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    configured = os.environ.get(ARTIFACTS_ENV)
    directory = Path(configured) if configured else tmp_path_factory.mktemp("web-artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def screenshot(page, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
