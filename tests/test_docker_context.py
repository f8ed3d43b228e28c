"""The Docker build context holds what the image needs and never the data folder or the virtualenv;
the image's entrypoint creates a signing key in an empty data volume."""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pattern(text: str) -> re.Pattern:
    """A .dockerignore pattern as Docker reads it (Go filepath.Match, plus `**` for any folders)."""
    text = os.path.normpath(text.strip().lstrip("/"))
    out, i = [], 0
    while i < len(text):
        if text.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif text.startswith("**", i):
            out.append(".*")
            i += 2
        elif text[i] == "*":
            out.append("[^/]*")
            i += 1
        elif text[i] == "?":
            out.append("[^/]")
            i += 1
        elif text[i] == "[":
            end = text.index("]", i)
            out.append(text[i : end + 1])
            i = end + 1
        else:
            out.append(re.escape(text[i]))
            i += 1
    return re.compile("".join(out))


def _rules() -> list[tuple[bool, re.Pattern]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((negated, _pattern(line[1:] if negated else line)))
    return rules


def excluded(path: str, rules=None) -> bool:
    """Whether Docker leaves `path` (relative to the context) out: the last matching rule wins,
    and a rule matching a parent folder matches everything in it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for negated, pattern in rules if rules is not None else _rules():
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            result = not negated
    return result


def test_the_matcher_follows_dockers_rules():
    rules = [(False, _pattern("*")), (True, _pattern("app/")), (False, _pattern("**/__pycache__"))]
    assert excluded("var/x", rules) and not excluded("app/a/b.py", rules)
    assert excluded("app/a/__pycache__/b.pyc", rules)


@pytest.mark.parametrize(
    "path",
    [
        "var",
        "var/log-signing.key",
        "var/admin-token",
        "var/pubtrail.sqlite3",
        "var/files/sha256/ab/cd/abcd",
        ".venv/bin/python",
        ".venv/lib/python3.11/site-packages/jwt/__init__.py",
        ".git/HEAD",
        ".pytest_cache/v/cache/nodeids",
        ".hypothesis/examples/x",
        "app/__pycache__/cli.cpython-311.pyc",
        "app/tlog/__pycache__/tree.cpython-311.pyc",
        "pubtrail.egg-info/PKG-INFO",
        "tests/tlog/testdata/rekor_inclusion.json",
        "tests/conftest.py",
        "elsewhere/log-signing.key",
        "app/dev-oidc.pem",
        "app/admin-token",
        "other-data/pubtrail.sqlite3-wal",
    ],
)
def test_secrets_virtualenv_and_test_data_stay_out_of_the_context(path):
    assert excluded(path), f"{path} would be sent to the Docker daemon"


def _copied_sources() -> list[str]:
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words and words[0].upper() == "COPY":
            sources += [word for word in words[1:-1] if not word.startswith("--")]
    return sources


def test_everything_the_dockerfile_copies_is_in_the_context():
    sources = _copied_sources()
    assert "app" in sources and "scripts/docker-entrypoint.sh" in sources
    for source in sources:
        path = ROOT / source
        files = [p for p in path.rglob("*.py") if "__pycache__" not in p.parts] if path.is_dir() else [path]
        assert files, source
        for file in files:
            assert not excluded(file.relative_to(ROOT).as_posix()), f"{file} is excluded but the image needs it"


def _entrypoint(tmp_path: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    """Run the entrypoint with `pubtrail` on PATH: keygen is the real one, anything else only echoes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "pubtrail"
    stub.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = keygen ]; then exec {shlex.quote(str(Path(sys.executable).parent / "pubtrail"))} "$@"; fi\n'
        'echo "ran: $*"\n'
    )
    stub.chmod(0o755)
    return subprocess.run(
        ["sh", str(ROOT / "scripts/docker-entrypoint.sh"), *args],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_entrypoint_creates_a_key_in_an_empty_volume_once(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    env = {"PUBTRAIL_DATA_DIR": str(data), "PUBTRAIL_ORIGIN": "example.org/log"}
    first = _entrypoint(tmp_path, env, "serve", "--port", "8000")
    assert first.returncode == 0, first.stderr
    key = data / "log-signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert re.search(r"^log verifier key: example\.org/log\+[0-9a-f]{8}\+\S+$", first.stdout, re.M), first.stdout
    assert first.stdout.rstrip().endswith("ran: serve --port 8000")
    created = key.read_bytes()
    again = _entrypoint(tmp_path, env, "serve")
    assert again.returncode == 0 and "verifier key" not in again.stdout
    assert key.read_bytes() == created


def test_entrypoint_creates_nothing_without_an_origin_or_for_other_commands(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    assert _entrypoint(tmp_path, {"PUBTRAIL_DATA_DIR": str(data)}, "serve").stdout == "ran: serve\n"
    env = {"PUBTRAIL_DATA_DIR": str(data), "PUBTRAIL_ORIGIN": "example.org/log"}
    assert _entrypoint(tmp_path, env, "audit").stdout == "ran: audit\n"
    assert not (data / "log-signing.key").exists()
