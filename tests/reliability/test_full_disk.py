"""A full disk while writing: refused with 503, nothing acknowledged lost, the log sound, writing resumes.

What is promised (docs/design.md, "Sequencing and durability"): when the disk
under the files or the database fills up, every write is refused with a 503
that says why and carries ``Retry-After`` (on ``/legacy/`` the reason is on
the status line, where twine reads it); nothing acknowledged before is lost;
the log is not corrupted (the full audit passes); and writing resumes by
itself once space is freed: no restart, no halt, no operator step.

How it is checked, on SQLite and on PostgreSQL (``PUBTRAIL_TEST_DATABASE_URL``):

- injected ``ENOSPC``, always run: the upload spool's write and the blob
  store's fsync raise ``OSError(ENOSPC)``; the log's entry insert raises the
  driver's own disk-full error (SQLite ``database or disk is full``,
  PostgreSQL ``DiskFull`` / "could not extend file"), and so does the commit
  of the log's batch transaction. After each: the answer, the log size, the
  halt row, the blob store and spool; then the same request again once the
  fault is gone, and the audit (`app.services.log_audit.audit_sequencer`
  with the blob store: tree, checkpoints, projections, files).
- a real full file system (SQLite only: PostgreSQL keeps its files
  elsewhere): a small tmpfs mounted as the data folder of a real `pubtrail
  serve` process, filled with a filler file, then uploads until the disk is
  full. Skipped, with the reason, where mounting is not permitted.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event

import app.distributions.blobs as blobs_module
import app.distributions.form as form_module
from app.services.log_audit import audit_sequencer
from app.storage.db import WRITE
from tests.distributions.builders import build_wheel, encode, twine_fields
from tests.e2e.conftest import issuer, make_service  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "sampleproject"
FULL_REASON = "Service Unavailable: the server's storage is full"


def upload_body(tmp_path: Path, version: str, payload: bytes = b"") -> tuple[bytes, str]:
    wheel = build_wheel(
        tmp_path / f"{PROJECT}-{version}-py3-none-any.whl", PROJECT, version,
        extra={f"{PROJECT}/data.bin": payload} if payload else None,
    )
    data = wheel.read_bytes()
    return encode(twine_fields(wheel.name, data, name=PROJECT, version=version))


def basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()}


def post_upload(service, token: str, body: tuple[bytes, str]) -> httpx.Response:
    content, content_type = body
    return service.client.post("/legacy/", content=content, headers={"Content-Type": content_type, **basic(token)})


def disk_full_error(database_url: str) -> Exception:
    """The error the database driver raises when its disk is full."""
    if database_url.startswith("sqlite"):
        return sqlite3.OperationalError("database or disk is full")
    import psycopg.errors

    return psycopg.errors.DiskFull('could not extend file "base/16384/16400": No space left on device')


class DatabaseFull:
    """Makes the log's batch transaction fail as on a full disk, at `where`:
    "insert" (the entries' bulk insert) or "commit" (the batch's COMMIT).
    Only the sequencer's write connections are touched, and only while `full`."""

    def __init__(self, runtime, database_url: str, where: str):
        self.error = disk_full_error(database_url)
        self.where = where
        self.full = False
        self.refused = 0
        store = runtime.log.sequencer.store
        insert = store._insert_entries

        def insert_entries(conn, rows):
            if self.full and where == "insert":
                self.refused += 1
                raise self.error
            return insert(conn, rows)

        store._insert_entries = insert_entries

        def commit(conn) -> None:
            if self.full and where == "commit" and conn.get_execution_options().get("pubtrail_write"):
                self.refused += 1
                raise self.error

        assert WRITE == {"pubtrail_write": True}
        event.listen(runtime.engine, "commit", commit)


def no_space(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FullSpoolFile:
    """An upload's spool file on a full disk: every write fails with ENOSPC."""

    def __init__(self, file):
        self._file = file

    def write(self, data) -> int:
        no_space()

    def __getattr__(self, name):
        return getattr(self._file, name)


def stored_blobs(runtime) -> set[str]:
    return {sha256 for sha256, _ in runtime.blobs.stored()}


def spool_files(runtime) -> list[Path]:
    return list(runtime.blobs.spool_dir.iterdir())


def assert_refused_for_full_disk(response: httpx.Response, *, status_line: bool) -> None:
    assert response.status_code == 503, (response.status_code, response.reason_phrase, response.text)
    assert int(response.headers["Retry-After"]) > 0
    if status_line:
        assert response.reason_phrase.startswith(FULL_REASON), response.reason_phrase
    else:
        assert "storage is full" in response.json()["detail"]


def assert_log_sound(service) -> None:
    sequencer = service.runtime.log.sequencer
    assert sequencer.halted() is None
    report = audit_sequencer(sequencer, blobs=service.runtime.blobs)
    assert report.ok, report.summary()


def test_storage_full_is_recognised_through_wrappers():
    from sqlalchemy.exc import OperationalError

    from app.errors import storage_full

    assert storage_full(OSError(errno.ENOSPC, "No space left on device"))
    assert storage_full(OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full")))
    wrapped = RuntimeError("batch failed")
    wrapped.__cause__ = OSError(errno.EDQUOT, "Disk quota exceeded")
    assert storage_full(wrapped)
    assert not storage_full(OSError(errno.EIO, "Input/output error"))
    assert not storage_full(OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")))
    assert not storage_full(ValueError("database or disk is full"))  # only a driver's or the OS's word counts


def test_full_spool_and_blob_store_refuse_upload_then_resume(make_service, monkeypatch, tmp_path):
    service = make_service(webhook_poll_interval=3600)
    service.add_github_publisher(PROJECT)
    token = service.upload_token()
    runtime = service.runtime
    size, blobs = service.log_size(), stored_blobs(runtime)
    body = upload_body(tmp_path, "1.0.0", os.urandom(300_000))  # large enough to be spooled in several writes

    # 1. the spool (the first write of the upload's body) is on a full disk
    open_spool = form_module._Sink._open_spool

    def full_open_spool(sink) -> None:
        open_spool(sink)
        sink._file = _FullSpoolFile(sink._file)

    with monkeypatch.context() as patch:
        patch.setattr(form_module._Sink, "_open_spool", full_open_spool)
        assert_refused_for_full_disk(post_upload(service, token, body), status_line=True)
    assert (service.log_size(), stored_blobs(runtime), spool_files(runtime)) == (size, blobs, [])

    # 2. the blob store cannot make the file durable (fsync of the staged file)
    with monkeypatch.context() as patch:
        patch.setattr(blobs_module, "_fsync_file", no_space)
        assert_refused_for_full_disk(post_upload(service, token, body), status_line=True)
    assert (service.log_size(), stored_blobs(runtime), spool_files(runtime)) == (size, blobs, [])
    assert service.client.get("/healthz").status_code == 200

    # 3. space freed: the same upload goes through, with a receipt, and its file is served whole
    response = post_upload(service, token, body)
    assert response.status_code == 200, response.reason_phrase
    receipt = response.json()["receipt"]
    service.verify_receipt(receipt)
    upload = response.json()["upload"]
    served = service.client.get(f"/files/{upload['sha256']}/{upload['filename']}")
    assert hashlib.sha256(served.content).hexdigest() == upload["sha256"]
    assert service.log_size() == size + 1
    assert_log_sound(service)


@pytest.mark.parametrize("where", ["insert", "commit"])
def test_full_database_refuses_exchange_and_upload_then_resumes(make_service, database_url, tmp_path, where):
    service = make_service(webhook_poll_interval=3600)
    runtime = service.runtime
    service.add_github_publisher(PROJECT)
    token = service.upload_token()
    before = post_upload(service, token, upload_body(tmp_path, "0.9.0"))
    assert before.status_code == 200, before.reason_phrase
    acknowledged = before.json()["receipt"]
    size = service.log_size()
    full = DatabaseFull(runtime, database_url, where)

    full.full = True
    oidc = service.github_token()
    assert_refused_for_full_disk(service.mint(oidc), status_line=False)
    body = upload_body(tmp_path, "1.0.0")
    assert_refused_for_full_disk(post_upload(service, token, body), status_line=True)
    assert full.refused == 2
    assert service.log_size() == size
    assert runtime.log.sequencer.halted() is None  # a full disk is not damage: the log is not halted
    assert service.client.get("/healthz").status_code == 200
    assert service.client.get(f"/api/v1/log/entries/{acknowledged['index']}").json()["leaf_hash"] == (
        acknowledged["leaf_hash"]
    )

    full.full = False
    # the refused exchange left nothing behind: its token (its jti) can still be exchanged
    minted = service.mint(oidc)
    assert minted.status_code == 200, minted.text
    service.verify_receipt(minted.json()["receipt"])
    response = post_upload(service, token, body)
    assert response.status_code == 200, response.reason_phrase
    service.verify_receipt(response.json()["receipt"])
    assert service.log_size() == size + 2
    entry = service.client.get(f"/api/v1/log/entries/{acknowledged['index']}").json()
    assert entry["leaf_hash"] == acknowledged["leaf_hash"]
    assert_log_sound(service)


# --- a real full file system ------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str):
    """A tmpfs of `size` mounted at `path` for the block; skips the test when mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the injected ENOSPC tests still ran)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or mounted.returncode}); "
                    "the injected ENOSPC tests still ran")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path, leave: int) -> Path:
    """Write a filler file until only about `leave` bytes are free on `path`'s file system."""
    filler = path / "filler"
    stats = os.statvfs(path)
    free = stats.f_bavail * stats.f_frsize
    with open(filler, "wb") as out:
        out.write(b"\0" * max(0, free - leave))
    return filler


def test_real_full_tmpfs_refuses_then_resumes(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_exchange import free_port, start_server
    from bench_upload import basic as bench_basic, setup, upload_body as bench_body

    from app.config import Settings
    from app.oidc.dev_issuer import github_claims
    from app.runtime import dev_issuer_for

    data_dir = tmp_path / "data"
    with small_tmpfs(data_dir, "24m"):
        port = free_port()
        server = start_server(data_dir, port)
        url = f"http://127.0.0.1:{port}"
        try:
            token = setup(url, data_dir)
            issuer = dev_issuer_for(Settings(data_dir=data_dir, dev=True, public_url=url))
            claims = github_claims("bench/project", "7", "release.yml")

            def mint_oidc(n: int) -> str:
                return issuer.mint(claims | {"jti": f"full-{n}"}, "pubtrail", time.time(), lifetime=600)

            filler = fill(data_dir, leave=3 * 1024 * 1024)
            acknowledged, refusals, others, acknowledged_exchanges = [], [], [], []
            with httpx.Client(base_url=url, timeout=60) as client:
                for n in range(200):
                    content, ctype = bench_body(f"1.0.{n}", 100_000)
                    response = client.post(
                        "/legacy/", content=content, headers={"Content-Type": ctype, **bench_basic(token)}
                    )
                    if response.status_code == 200:
                        acknowledged.append(response.json())
                    elif response.status_code == 503:
                        refusals.append(response)
                        if len(refusals) >= 3:
                            break
                    else:
                        others.append((response.status_code, response.reason_phrase))
                assert not others, others
                assert acknowledged and refusals, "the disk never filled up"
                for refused in refusals:
                    assert refused.reason_phrase.startswith(FULL_REASON), refused.reason_phrase
                    assert int(refused.headers["Retry-After"]) > 0
                # no room for a file; now fill the rest through the database (the exchanges' entries)
                full_refusals = 0
                for n in range(5000):
                    response = client.post("/_/oidc/mint-token", json={"token": mint_oidc(n)})
                    if response.status_code == 200:
                        acknowledged_exchanges.append(response.json()["receipt"])
                        continue
                    assert response.status_code == 503, (response.status_code, response.text)
                    assert "storage is full" in response.json()["detail"]
                    assert int(response.headers["Retry-After"]) > 0
                    full_refusals += 1
                    if full_refusals >= 3:
                        break
                assert full_refusals, "the database never hit the full disk"
                assert client.get("/healthz").status_code == 200
                size_full = client.get("/api/v1/log").json()["size"]

                filler.unlink()  # space freed: writing resumes, without a restart
                content, ctype = bench_body("2.0.0", 100_000)
                response = client.post("/legacy/", content=content, headers={"Content-Type": ctype, **bench_basic(token)})
                assert response.status_code == 200, response.reason_phrase
                minted = client.post("/_/oidc/mint-token", json={"token": mint_oidc(10_000)})
                assert minted.status_code == 200, minted.text
                assert client.get("/api/v1/log").json()["size"] == size_full + 2
                for receipt in acknowledged_exchanges:
                    entry = client.get(f"/api/v1/log/entries/{receipt['index']}").json()
                    assert entry["leaf_hash"] == receipt["leaf_hash"]
                for item in acknowledged:  # nothing acknowledged was lost, every file is whole
                    receipt, upload = item["receipt"], item["upload"]
                    entry = client.get(f"/api/v1/log/entries/{receipt['index']}").json()
                    assert entry["leaf_hash"] == receipt["leaf_hash"]
                    served = client.get(f"/files/{upload['sha256']}/{upload['filename']}")
                    assert hashlib.sha256(served.content).hexdigest() == upload["sha256"]
        finally:
            server.terminate()
            server.wait(timeout=15)
        audit = subprocess.run(
            [sys.executable, "-m", "app.cli", "audit"], capture_output=True, text=True, cwd=ROOT,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("PUBTRAIL_")},
                 "PUBTRAIL_DATA_DIR": str(data_dir), "PUBTRAIL_ORIGIN": "bench.pubtrail.local/log",
                 "PUBTRAIL_ADMIN_TOKEN": "x" * 40},
        )
        assert audit.returncode == 0, audit.stdout + audit.stderr
