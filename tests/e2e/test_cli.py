"""The `pubtrail` command: keygen, serve (a real process), publishers, dev token, verify."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ADMIN = "cli-admin-token-0123456789abcdefghijklmnopqrstuv"


def _pubtrail(*args: str, env: dict, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True, input=input, timeout=60
    )
    if check and result.returncode != 0:
        raise AssertionError(f"pubtrail {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(env: dict, port: int, *args: str) -> subprocess.Popen:
    """`pubtrail serve` in a child process, returned once /healthz answers.

    Its output goes to a file (a pipe nobody reads would block it once full).
    """
    output = Path(env["PUBTRAIL_DATA_DIR"]).parent / f"serve-{port}.log"
    with output.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *args],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 90  # start-up imports sigstore and FastAPI: seconds on a quiet machine, tens on a loaded one
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise AssertionError("server did not start:\n" + output.read_text())
        time.sleep(0.1)


@pytest.fixture
def base_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBTRAIL_")}
    env.update(
        PUBTRAIL_DATA_DIR=str(tmp_path / "data"),
        PUBTRAIL_ORIGIN="cli.test/log",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    return env


def test_serve_refuses_to_start_without_secrets(base_env):
    missing_key = _pubtrail("serve", "--port", str(_free_port()), env=base_env, check=False)
    assert missing_key.returncode == 2 and "no log signing key" in missing_key.stderr
    _pubtrail("keygen", "--origin", "cli.test/log", env=base_env)
    no_admin = _pubtrail("serve", "--port", str(_free_port()), env=base_env, check=False)
    assert no_admin.returncode == 2 and "PUBTRAIL_ADMIN_TOKEN is not set" in no_admin.stderr
    weak = _pubtrail("serve", env={**base_env, "PUBTRAIL_ADMIN_TOKEN": "admin"}, check=False)
    assert weak.returncode == 2 and "too short" in weak.stderr


def test_keygen_never_overwrites(base_env):
    first = _pubtrail("keygen", "--origin", "cli.test/log", env=base_env)
    assert first.stdout.startswith("cli.test/log+")
    again = _pubtrail("keygen", "--origin", "cli.test/log", env=base_env, check=False)
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr


def test_development_walkthrough(base_env, tmp_path):
    """The README's walk-through: serve in dev mode, add a publisher, mint with a dev token, verify the receipt."""
    verifier_key = _pubtrail("keygen", "--origin", "cli.test/log", env=base_env).stdout.strip()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**base_env, "PUBTRAIL_DEV": "1", "PUBTRAIL_ADMIN_TOKEN": ADMIN, "PUBTRAIL_URL": url}
    server = _start_server(env, port)
    try:
        added = json.loads(
            _pubtrail(
                "publishers", "add", "demo-project", "--provider", "github",
                "--repository", "me/demo", "--repository-owner-id", "1", "--workflow", "release.yml",
                env=env,
            ).stdout
        )
        assert added["publisher"]["project"] == "demo-project"
        listed = json.loads(_pubtrail("publishers", "list", "demo-project", env=env).stdout)
        assert len(listed["publishers"]) == 1

        proof_file = tmp_path / "receipt.txt"
        proof_file.write_text(added["receipt"]["tlog_proof"])
        entry = httpx.get(f"{url}/api/v1/log/entries/0").json()
        import base64

        entry_file = tmp_path / "entry.json"
        entry_file.write_bytes(base64.b64decode(entry["entry_bytes"]))
        ok = _pubtrail("verify", "--key", verifier_key, str(proof_file), "--entry", str(entry_file), env=env)
        assert ok.stdout.startswith("OK: entry 0")
        entry_file.write_bytes(entry_file.read_bytes().replace(b"demo-project", b"demo-projecx"))
        bad = _pubtrail("verify", "--key", verifier_key, str(proof_file), "--entry", str(entry_file), env=env, check=False)
        assert bad.returncode == 1 and "FAILED" in bad.stderr

        token = _pubtrail("dev", "token", "--repository", "me/demo", "--workflow", "release.yml", env=env).stdout.strip()
        minted = httpx.post(f"{url}/_/oidc/mint-token", json={"token": token})
        assert minted.status_code == 200, minted.text
        assert minted.json()["token"].startswith("pubtrail-v1.")
        wrong = _pubtrail("dev", "token", "--repository", "me/other", "--workflow", "release.yml", env=env).stdout.strip()
        refused = httpx.post(f"{url}/_/oidc/mint-token", json={"token": wrong})
        assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == "invalid-publisher"
        assert httpx.get(f"{url}/api/v1/log").json()["size"] == 2
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_dev_token_needs_dev_mode(base_env):
    result = _pubtrail("dev", "token", "--repository", "a/b", "--workflow", "r.yml", env=base_env, check=False)
    assert result.returncode == 2 and "PUBTRAIL_DEV=1" in result.stderr


def test_audit_finds_a_tampered_entry(base_env):
    import asyncio
    import sqlite3

    from app.config import Settings
    from app.runtime import build_runtime
    from app.services.publishers import parse_publisher

    env = {**base_env, "PUBTRAIL_ADMIN_TOKEN": ADMIN}
    _pubtrail("keygen", "--origin", "cli.test/log", env=env)
    runtime = build_runtime(Settings.from_env(env))

    async def fill():
        await runtime.start()
        try:
            await asyncio.gather(*(
                runtime.publishers.add(f"project-{i}", parse_publisher({
                    "provider": "github", "repository": f"o/r{i}", "repository_owner_id": "1", "workflow": "r.yml",
                }), "admin")
                for i in range(300)
            ))
        finally:
            await runtime.stop()

    asyncio.run(fill())
    db = runtime.settings.effective_database_url.split("///", 1)[1]
    runtime.close()
    clean = _pubtrail("audit", env=env)
    assert "size 300" in clean.stdout and "query tables" in clean.stdout and "no problem found" in clean.stdout
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE log_entry SET data = ? WHERE \"index\" = 17", (b'{"n":1700}',))
    tampered = _pubtrail("audit", env=env, check=False)
    assert tampered.returncode == 1 and "problem" in tampered.stdout


def test_serve_with_two_worker_processes_keeps_one_log(base_env):
    """Two server processes on one SQLite file: every exchange lands once, the log audits clean."""
    from concurrent.futures import ThreadPoolExecutor

    _pubtrail("keygen", "--origin", "cli.test/log", env=base_env)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**base_env, "PUBTRAIL_DEV": "1", "PUBTRAIL_ADMIN_TOKEN": ADMIN, "PUBTRAIL_URL": url}
    server = _start_server(env, port, "--workers", "2")
    try:
        _pubtrail(
            "publishers", "add", "demo-project", "--provider", "github", "--repository", "me/demo",
            "--repository-owner-id", "1", "--workflow", "release.yml", env=env,
        )
        tokens = [
            _pubtrail("dev", "token", "--repository", "me/demo", "--workflow", "release.yml", env=env).stdout.strip()
            for _ in range(3)
        ]
        from app.config import Settings
        from app.oidc.dev_issuer import github_claims
        from app.runtime import dev_issuer_for

        issuer = dev_issuer_for(Settings(data_dir=Path(env["PUBTRAIL_DATA_DIR"]), dev=True, public_url=url))
        tokens += [issuer.mint(github_claims("me/demo", "1", "release.yml"), "pubtrail", time.time()) for _ in range(37)]

        def mint(token):
            with httpx.Client(timeout=30) as client:  # a fresh connection each: spread over both workers
                return client.post(f"{url}/_/oidc/mint-token", json={"token": token}).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(mint, tokens)) == [200] * 40
        # a worker serves its cached latest checkpoint for up to 0.5 s after another appended
        deadline = time.monotonic() + 5
        while (size := httpx.get(f"{url}/api/v1/log").json()["size"]) < 41 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert size == 41
    finally:
        server.terminate()
        server.wait(timeout=15)
    audit = _pubtrail("audit", env=env)
    assert "size 41" in audit.stdout and "no problem found" in audit.stdout


def _entry(url: str, index: int) -> dict:
    import base64

    return json.loads(base64.b64decode(httpx.get(f"{url}/api/v1/log/entries/{index}").json()["entry_bytes"]))


def test_gitlab_publisher_is_registered_under_the_positional_project(base_env):
    """`--project` is the GitLab project; the positional PROJECT is the index project. Admin output is the answer only."""
    _pubtrail("keygen", "--origin", "cli.test/log", env=base_env)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**base_env, "PUBTRAIL_ADMIN_TOKEN": ADMIN, "PUBTRAIL_URL": url}
    server = _start_server(env, port)
    try:
        added = _pubtrail(
            "publishers", "add", "gl-project", "--provider", "gitlab", "--namespace", "grp", "--project", "proj",
            "--workflow-filepath", ".gitlab-ci.yml", env=env,
        )
        assert added.stderr == ""  # no request logging unless --verbose
        entry = _entry(url, json.loads(added.stdout)["receipt"]["index"])
        assert entry["kind"] == "publisher" and entry["project"] == "gl-project"
        assert entry["config"] == {"namespace": "grp", "project": "proj", "workflow_filepath": ".gitlab-ci.yml"} | {
            k: v for k, v in entry["config"].items() if v is None
        }
        listed = _pubtrail("publishers", "list", "gl-project", env=env)
        assert listed.stderr == ""
        [publisher] = json.loads(listed.stdout)["publishers"]
        assert publisher["provider"] == "gitlab" and publisher.get("config", publisher)["namespace"] == "grp"
        wrong = _pubtrail("publishers", "list", "proj", env=env, check=False)
        assert wrong.returncode != 0 or json.loads(wrong.stdout)["publishers"] == []

        verbose = _pubtrail("--verbose", "publishers", "list", "gl-project", env=env)
        assert "HTTP Request: GET" in verbose.stderr and json.loads(verbose.stdout)["publishers"]
        also_verbose = _pubtrail("publishers", "list", "gl-project", "--verbose", env=env)
        assert "HTTP Request: GET" in also_verbose.stderr
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_development_issuer_is_named_after_the_served_port(base_env):
    """Served on a port other than 8000, dev tokens, discovery and logged exchanges name that port."""
    import jwt

    _pubtrail("keygen", "--origin", "cli.test/log", env=base_env)
    port = _free_port()
    assert port != 8000
    url = f"http://127.0.0.1:{port}"
    issuer = f"{url}/_/dev/oidc"
    env = {**base_env, "PUBTRAIL_DEV": "1", "PUBTRAIL_ADMIN_TOKEN": ADMIN, "PUBTRAIL_URL": url}
    server = _start_server(env, port)
    try:
        assert httpx.get(f"{issuer}/.well-known/openid-configuration").json()["issuer"] == issuer
        _pubtrail(
            "publishers", "add", "demo-project", "--provider", "github", "--repository", "me/demo",
            "--repository-owner-id", "1", "--workflow", "release.yml", env=env,
        )
        token = _pubtrail("dev", "token", "--repository", "me/demo", "--workflow", "release.yml", env=env).stdout.strip()
        assert jwt.decode(token, options={"verify_signature": False})["iss"] == issuer
        minted = httpx.post(f"{url}/_/oidc/mint-token", json={"token": token})
        assert minted.status_code == 200, minted.text
        exchange = _entry(url, 1)
        assert exchange["kind"] == "exchange" and exchange["issuer"] == issuer

        # --url names the server explicitly; a server that is not there is one clear line
        by_flag = _pubtrail(
            "dev", "token", "--url", url, "--repository", "me/demo", "--workflow", "release.yml",
            env={k: v for k, v in env.items() if k != "PUBTRAIL_URL"},
        )
        assert jwt.decode(by_flag.stdout.strip(), options={"verify_signature": False})["iss"] == issuer
        nobody = _pubtrail(
            "dev", "token", "--url", "http://127.0.0.1:1", "--repository", "me/demo", "--workflow", "release.yml",
            env=env, check=False,
        )
        assert nobody.returncode == 1 and nobody.stderr.startswith("pubtrail: cannot reach http://127.0.0.1:1")
        assert len(nobody.stderr.strip().splitlines()) == 1
    finally:
        server.terminate()
        server.wait(timeout=15)
