"""Every `pubtrail` error is one `pubtrail: ...` line on stderr and a non-zero exit, never a traceback.

The commands run in this process (`main(argv)`), with PUBTRAIL_* variables set per test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.cli import main
from app.keys import write_new_key

ADMIN = "cli-admin-token-0123456789abcdefghijklmnopqrstuv"


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> Path:
    """A clean PUBTRAIL_* environment with its data folder under tmp_path; returns the data folder."""
    for name in list(os.environ):
        if name.startswith("PUBTRAIL_"):
            monkeypatch.delenv(name)
    data = tmp_path / "data"
    monkeypatch.setenv("PUBTRAIL_DATA_DIR", str(data))
    monkeypatch.setenv("PUBTRAIL_ORIGIN", "cli.test/log")
    return data


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # what the console script would do with it
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def error_line(capsys, *argv: str, code: int | None = None) -> str:
    """Run, expect failure with exactly one `pubtrail: ` line on stderr; return that line."""
    rc, _out, err = run(capsys, *argv)
    assert rc not in (0, None), err
    if code is not None:
        assert rc == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pubtrail: "), err
    return lines[0]


def test_verify_with_a_missing_proof_file(env, capsys, tmp_path):
    verifier = write_new_key(tmp_path / "k", "cli.test/log")
    line = error_line(capsys, "verify", "--key", verifier, str(tmp_path / "nope.txt"), "--leaf-hash", "00", code=2)
    assert "nope.txt" in line and "No such file" in line


def test_verify_with_a_missing_entry_file(env, capsys, tmp_path):
    proof = tmp_path / "proof.txt"
    proof.write_text("c2sp.org/tlog-proof@v1\nindex 0\n\n")
    verifier = write_new_key(tmp_path / "k", "cli.test/log")
    line = error_line(capsys, "verify", "--key", verifier, str(proof), "--entry", str(tmp_path / "entry.json"), code=2)
    assert "entry.json" in line and "No such file" in line


def test_verify_with_a_malformed_key_or_leaf_hash(env, capsys, tmp_path):
    verifier = write_new_key(tmp_path / "k", "cli.test/log")
    proof = tmp_path / "proof.txt"
    proof.write_text("anything")
    assert "--key" in error_line(capsys, "verify-receipt", "--key", "not a key", str(proof), "--leaf-hash", "00", code=2)
    assert "--leaf-hash" in error_line(capsys, "verify-receipt", "--key", verifier, str(proof), "--leaf-hash", "xyz", code=2)
    # the older spelling needs tlog-proof text, so a downloaded file is never taken for a receipt
    line = error_line(capsys, "verify", "--key", verifier, str(proof), "--leaf-hash", "00", code=2)
    assert "c2sp.org/tlog-proof" in line


def test_dev_token_without_an_owner(env, capsys, monkeypatch):
    monkeypatch.setenv("PUBTRAIL_DEV", "1")
    line = error_line(capsys, "dev", "token", "--repository", "demo", "--workflow", "release.yml", code=2)
    assert "OWNER/REPO" in line and "'demo'" in line


@pytest.mark.parametrize(
    ("origin", "rule"),
    [("has space", "whitespace"), ("a+b", "'+'"), ("", "empty"), ("tab\there", "whitespace")],
)
def test_keygen_names_the_key_name_rule_that_failed(env, capsys, origin, rule):
    line = error_line(capsys, "keygen", "--origin", origin, code=2)
    assert rule in line and repr(origin) in line
    assert not (env / "log-signing.key").exists()


def test_keygen_into_an_unwritable_place(env, capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = error_line(capsys, "keygen", "--origin", "cli.test/log", "--out", str(blocker / "key"))
    assert str(blocker / "key") in line


def test_serve_with_a_key_of_another_origin(env, capsys, monkeypatch):
    write_new_key(env / "log-signing.key", "other.example/log")
    monkeypatch.setenv("PUBTRAIL_ADMIN_TOKEN", ADMIN)
    line = error_line(capsys, "serve", "--port", "1", code=2)
    assert "PUBTRAIL_ORIGIN" in line and "'other.example/log'" in line and "'cli.test/log'" in line


def test_audit_with_a_key_of_another_origin(env, capsys):
    write_new_key(env / "log-signing.key", "other.example/log")
    line = error_line(capsys, "audit", code=2)
    assert "PUBTRAIL_ORIGIN" in line and "'other.example/log'" in line


def test_unreadable_or_malformed_key_file(env, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PUBTRAIL_SIGNING_KEY_FILE", str(tmp_path / "missing.key"))
    assert "missing.key" in error_line(capsys, "audit", code=2)
    (tmp_path / "junk.key").write_text("junk\n")
    monkeypatch.setenv("PUBTRAIL_SIGNING_KEY_FILE", str(tmp_path / "junk.key"))
    assert "junk.key" in error_line(capsys, "audit", code=2)


@pytest.mark.parametrize(
    ("name", "value"),
    [("PUBTRAIL_BATCH_MAX", "lots"), ("PUBTRAIL_JWKS_URLS", "{"), ("PUBTRAIL_DATABASE_URL", "nosuchdb://x")],
)
def test_bad_settings(env, capsys, monkeypatch, name, value):
    write_new_key(env / "log-signing.key", "cli.test/log")
    monkeypatch.setenv(name, value)
    assert name.removeprefix("PUBTRAIL_").split("_")[0].lower() in error_line(capsys, "audit").lower()


def test_database_unreachable(env, capsys, monkeypatch):
    write_new_key(env / "log-signing.key", "cli.test/log")
    monkeypatch.setenv("PUBTRAIL_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    assert "database" in error_line(capsys, "audit", code=1)


def test_admin_server_unreachable(env, capsys, monkeypatch):
    monkeypatch.setenv("PUBTRAIL_ADMIN_TOKEN", ADMIN)
    line = error_line(capsys, "publishers", "--url", "http://127.0.0.1:1", "list", "demo", code=1)
    assert "cannot reach http://127.0.0.1:1" in line


def test_admin_token_missing(env, capsys):
    assert "PUBTRAIL_ADMIN_TOKEN" in error_line(capsys, "publishers", "list", "demo", code=2)


def test_usage_errors_are_one_line(env, capsys):
    assert "--origin" in error_line(capsys, "keygen", code=2)
    assert "nosuch" in error_line(capsys, "nosuch", code=2)
    assert "--port" in error_line(capsys, "serve", "--port", "eighty", code=2)


@pytest.mark.parametrize(
    ("provider", "flag", "takes"),
    [
        ("github", "--namespace", "--repository, --repository-owner-id, --workflow, [--environment]"),
        ("google", "--workflow", "--email, [--sub]"),
        ("gitlab", "--repository", "--namespace, --project, --workflow-filepath, [--environment]"),
    ],
)
def test_publisher_flags_of_another_provider_are_refused(env, capsys, monkeypatch, provider, flag, takes):
    import httpx

    def no_request(*args, **kwargs):
        raise AssertionError("a request was sent")

    monkeypatch.setattr(httpx, "request", no_request)
    monkeypatch.setattr(httpx.Client, "request", no_request)
    monkeypatch.setenv("PUBTRAIL_ADMIN_TOKEN", ADMIN)
    line = error_line(capsys, "publishers", "add", "demo", "--provider", provider, flag, "x", code=2)
    assert flag in line and takes in line


@pytest.mark.parametrize(
    "argv",
    [[], ["serve"], ["keygen"], ["verify"], ["verify-receipt"], ["blast-radius"], ["audit"], ["publishers"], ["publishers", "add"],
     ["publishers", "list"], ["publishers", "remove"], ["dev"], ["dev", "token"]],
)
def test_help(capsys, argv):
    rc, out, err = run(capsys, *argv, "--help")
    assert rc == 0 and out.startswith("usage: pubtrail") and not err


def test_an_unexpected_error_is_one_line_and_verbose_shows_the_traceback(env, capsys, monkeypatch):
    import app.cli.keygen

    def boom(path, origin):
        raise RuntimeError("boom")

    monkeypatch.setattr(app.cli.keygen, "write_new_key", boom)
    line = error_line(capsys, "keygen", "--origin", "cli.test/log", code=1)
    assert "unexpected error: RuntimeError: boom" in line and "--verbose" in line
    with pytest.raises(RuntimeError, match="boom"):
        main(["keygen", "--origin", "cli.test/log", "--verbose"])


@pytest.mark.parametrize(
    ("host", "url"),
    [("127.0.0.1", "http://127.0.0.1:9000"), ("0.0.0.0", "http://127.0.0.1:9000"), ("::", "http://[::1]:9000"),
     ("::1", "http://[::1]:9000"), ("localhost", "http://localhost:9000")],
)
def test_serve_names_the_address_it_serves(host, url):
    from app.cli.serve import public_url

    assert public_url(host, 9000) == url
