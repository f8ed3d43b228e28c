"""compose.yaml and deploy/nginx.conf agree with pubtrail's settings, the Dockerfile and each other.

Docker cannot run here, so the compose file is parsed and checked: its services,
ports, volumes, secrets and environment against app/config.py and the Dockerfile.
The proxy configuration is checked by number against the settings and, when nginx
is installed, by `nginx -t` and by a live run: nginx with this configuration in
front of two `pubtrail serve` processes started with the compose environment
(secrets read from files), answering through the proxy as pubtrail does.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from app.api.body_limit import ADMIN_BUDGET, MINT_TOKEN_BUDGET
from app.config import Settings
from app.keys import write_new_key

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
NGINX = (ROOT / "deploy" / "nginx.conf").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()
API = ("api1", "api2")


def _directive(text: str, name: str) -> list[str]:
    return re.findall(rf"^\s*{name}\s+([^;]+);", text, re.M)


def _location(path: str) -> str:
    match = re.search(rf"location = {re.escape(path)} \{{(.*?)\}}", NGINX, re.S)
    assert match, f"no location = {path}"
    return match.group(1)


def _seconds(value: str) -> float:
    assert value.endswith("s"), value
    return float(value[:-1])


def _bytes(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)


def _secret_files(tmp_path: Path, database_url: str) -> dict[str, Path]:
    """The compose secrets as files, at the names the services read them under."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    write_new_key(folder / "log_signing_key", "pubtrail.example/log")
    (folder / "admin_token").write_text("a" * 43 + "\n")
    (folder / "database_url").write_text(database_url + "\n")
    (folder / "postgres_password").write_text("pw\n")
    return {name: folder / name for name in COMPOSE["secrets"]}


def _api_env(secrets: dict[str, Path], data_dir: Path) -> dict[str, str]:
    """The API services' environment with /run/secrets/<name> pointing at `secrets` and /data at `data_dir`."""
    env = {}
    for name, value in COMPOSE["x-pubtrail-api"]["environment"].items():
        value = str(value)
        if value.startswith("${"):
            value = {"PUBTRAIL_ORIGIN": "pubtrail.example/log", "PUBTRAIL_PUBLIC_URL": "https://pubtrail.example"}[name]
        if value.startswith("/run/secrets/"):
            value = str(secrets[value.removeprefix("/run/secrets/")])
        if value == "/data":
            value = str(data_dir)
        env[name] = value
    return env


def test_services_ports_and_volumes():
    services = COMPOSE["services"]
    assert set(services) == {"db", "api1", "api2", "proxy"}
    assert [name for name, s in services.items() if "ports" in s] == ["proxy"]  # one public port
    assert services["proxy"]["ports"] == ["${PUBTRAIL_HTTP_PORT:-8000}:8080"]
    assert re.search(r"^\s*listen 8080;", NGINX, re.M)
    for name in API:
        api = services[name]
        assert api["build"] == "." and (ROOT / "Dockerfile").is_file()
        assert api["command"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
        assert "EXPOSE 8000" in DOCKERFILE and api["expose"] == ["8000"]
        assert f"server {name}:8000;" in NGINX
        assert api["volumes"] == ["pubtrail-data:/data"]  # uploaded files shared by both processes
        assert api["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert "PUBTRAIL_DATA_DIR=/data" in DOCKERFILE and 'VOLUME ["/data"]' in DOCKERFILE
    assert services["proxy"]["volumes"] == ["./deploy/nginx.conf:/etc/nginx/nginx.conf:ro"]
    assert set(COMPOSE["volumes"]) == {"pubtrail-data", "pgdata"}
    assert services["db"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]


def test_secrets_come_from_files_and_every_secret_is_declared():
    services = COMPOSE["services"]
    used = {s for service in services.values() for s in service.get("secrets", [])}
    assert used == set(COMPOSE["secrets"])
    for name in COMPOSE["secrets"]:
        assert COMPOSE["secrets"][name]["file"].startswith("./secrets/")
    environment = COMPOSE["x-pubtrail-api"]["environment"]
    assert not {"PUBTRAIL_ADMIN_TOKEN", "PUBTRAIL_DATABASE_URL"} & set(environment)  # never inline
    for name, value in environment.items():
        if name.endswith("_FILE"):
            assert value.removeprefix("/run/secrets/") in services["api1"]["secrets"], name
    assert services["db"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    # the build context never holds them: .dockerignore starts by leaving everything out
    assert (ROOT / ".dockerignore").read_text().splitlines()[3] == "*"


def test_the_environment_is_settings_pubtrail_reads_and_it_starts(tmp_path):
    source = (ROOT / "app" / "config.py").read_text()
    known = set(re.findall(r'"(PUBTRAIL_[A-Z_]+)"', source))
    secret_names = set(re.findall(r'_secret\(env, "(PUBTRAIL_[A-Z_]+)"\)', source))
    known |= {f"{name}_FILE" for name in secret_names} | {"PUBTRAIL_SIGNING_KEY_FILE"}
    environment = COMPOSE["x-pubtrail-api"]["environment"]
    unknown = {name for name in environment if name.startswith("PUBTRAIL_")} - known
    assert not unknown, f"compose sets variables pubtrail does not read: {unknown}"
    url = "postgresql+psycopg://pubtrail:pw@db:5432/pubtrail"
    settings = Settings.from_env(_api_env(_secret_files(tmp_path, url), tmp_path / "data"))
    settings.check_secrets()  # the key file exists and is the origin's, the admin token is strong enough
    assert settings.database_url == url and url.split("@")[1].startswith("db:")
    assert settings.dev is False


def test_the_proxy_limits_match_pubtrails():
    settings = Settings.from_env(
        {k: str(v) for k, v in COMPOSE["x-pubtrail-api"]["environment"].items() if not k.endswith("_FILE")}
    )
    assert _seconds(_directive(NGINX, "client_header_timeout")[0]) == settings.header_timeout
    assert _seconds(_directive(NGINX, "client_body_timeout")[0]) == settings.body_chunk_timeout
    assert 0 < _seconds(_directive(NGINX, "keepalive_timeout")[0]) <= settings.keep_alive_timeout
    upstream = re.search(r"upstream pubtrail \{(.*?)\}", NGINX, re.S).group(1)
    assert _seconds(_directive(upstream, "keepalive_timeout")[0]) < settings.keep_alive_timeout
    general = _bytes(_directive(NGINX, "client_max_body_size")[0])
    assert max(MINT_TOKEN_BUDGET, ADMIN_BUDGET) < general <= 1024**2  # pubtrail refuses first, in its format
    legacy = _location("/legacy/")
    assert _bytes(_directive(legacy, "client_max_body_size")[0]) == settings.max_upload_size + 1024**2
    assert _directive(legacy, "proxy_request_buffering") == ["off"]
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in NGINX  # overwritten, never appended
    assert COMPOSE["x-pubtrail-api"]["environment"]["FORWARDED_ALLOW_IPS"] == "*"
    assert all("non_idempotent" not in v for v in _directive(NGINX, "proxy_next_upstream"))


def test_the_load_test_runs_with_the_compose_settings():
    sys.path.insert(0, str(ROOT))
    from scripts.load_test import compose_tunables

    tunables = compose_tunables()
    assert tunables["PUBTRAIL_HEADER_TIMEOUT"] == "10" and "PUBTRAIL_ORIGIN" not in tunables
    assert not any(name.endswith("_FILE") for name in tunables)


def _nginx_config(tmp_path: Path, listen: int, upstreams: list[int]) -> Path:
    text = NGINX.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    for name, port in zip(API, upstreams):
        text = text.replace(f"server {name}:8000;", f"server 127.0.0.1:{port};")
    path = tmp_path / "nginx.conf"
    path.write_text(text)
    return path


def _nginx(tmp_path: Path, config: Path, *extra: str) -> list[str]:
    return ["nginx", "-p", str(tmp_path), "-c", str(config), "-g", f"pid {tmp_path}/nginx.pid;", *extra]


needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")


@needs_nginx
def test_nginx_accepts_the_configuration(tmp_path):
    config = _nginx_config(tmp_path, 8080, [18001, 18002])
    result = subprocess.run(_nginx(tmp_path, config, "-t"), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@needs_nginx
def test_two_processes_behind_the_proxy_answer_as_pubtrail_does(tmp_path, database_url):
    """The compose environment (secrets from files) on two `pubtrail serve` processes sharing one
    database and data folder, nginx in front with deploy/nginx.conf: reads, admin writes, and
    PyPI's refusals (status line reason and JSON body) come through the proxy unchanged."""
    secrets = _secret_files(tmp_path, database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBTRAIL_")}
    env.update(_api_env(secrets, tmp_path / "data"), PYTHONPATH=str(ROOT))
    ports = [_free_port(), _free_port()]
    servers = [
        subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for port in ports
    ]
    listen = _free_port()
    proxy = None
    try:
        deadline = time.monotonic() + 180
        for server, port in zip(servers, ports):
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "pubtrail serve did not start"
                time.sleep(0.2)
        proxy = subprocess.Popen(_nginx(tmp_path, _nginx_config(tmp_path, listen, ports), "-g", "daemon off;"),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{listen}"
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(50):
                try:
                    client.get("/healthz")
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            admin = {"Authorization": "Bearer " + secrets["admin_token"].read_text().strip()}
            added = client.post("/api/v1/projects/demo/publishers", headers=admin, json={
                "provider": "github", "repository": "me/demo", "repository_owner_id": "1", "workflow": "release.yml"})
            assert added.status_code in (200, 201), added.text
            time.sleep(0.6)  # the other process re-reads the latest checkpoint after at most 0.5 s
            checkpoints = {client.get("/checkpoint").text for _ in range(8)}  # both processes answer
            assert all(c.startswith("pubtrail.example/log\n1\n") for c in checkpoints)

            refused = client.post("/_/oidc/mint-token", content=b'{"token": 5}')
            assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == "invalid-payload"
            direct = httpx.post(f"http://127.0.0.1:{ports[0]}/legacy/", headers={"Authorization": "Basic eA=="},
                                files={"content": ("a.whl", b"x")}, data={":action": "file_upload"})
            proxied = client.post("/legacy/", headers={"Authorization": "Basic eA=="},
                                  files={"content": ("a.whl", b"x")}, data={":action": "file_upload"})
            assert proxied.status_code == direct.status_code >= 400
            assert proxied.reason_phrase == direct.reason_phrase  # twine prints the status line's reason
            too_big = client.post("/api/v1/projects/demo/publishers", headers=admin, content=b"x" * (200 * 1024))
            assert too_big.status_code == 413
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
