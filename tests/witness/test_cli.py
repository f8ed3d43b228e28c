"""`pubtrail keygen --witness` and `pubtrail witness serve` as processes, restarted between requests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.cli import main
from app.tlog import cosignature as cosig
from app.tlog import note
from tests.witness.support import MemoryLog


def test_keygen_witness_writes_a_key_and_prints_its_verifier_key(tmp_path: Path, capsys) -> None:
    out = tmp_path / "w.key"
    assert main(["keygen", "--witness", "witness.test/w9", "--out", str(out)]) == 0
    vkey = capsys.readouterr().out.strip()
    signer = cosig.CosignatureSigner(out.read_text().strip())
    assert signer.verifier_key == vkey and cosig.CosignatureVerifier(vkey).name == "witness.test/w9"
    assert out.stat().st_mode & 0o077 == 0
    assert main(["keygen", "--witness", "witness.test/w9", "--out", str(out)]) == 2  # never overwrites
    assert main(["keygen", "--witness", "bad name", "--out", str(tmp_path / "x.key")]) == 2
    assert main(["keygen", "--witness", "w", "--origin", "o"]) == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: list[str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "witness", "serve", *args, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2],
        env={**os.environ},
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.HTTPError:
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode())
            time.sleep(0.1)
    process.kill()
    raise AssertionError("witness did not start")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=15)
    process.stderr.close()


def test_witness_serve_keeps_its_state_across_a_restart(tmp_path: Path) -> None:
    key = tmp_path / "w.key"
    skey, vkey = cosig.generate_key("witness.test/w1", b"\x44" * 32)
    key.write_text(skey + "\n")
    log = MemoryLog()
    log.grow(4)
    args = ["--key", str(key), "--log", log.verifier_key, "--state", str(tmp_path / "state")]
    port = _free_port()
    process = _start(args, port)
    try:
        answer = httpx.post(f"http://127.0.0.1:{port}/add-checkpoint", content=log.body(0))
        assert answer.status_code == 200
        witnessed = cosig.with_signature_lines(log.note(), cosig.parse_cosignature_lines(answer.text))
        assert cosig.verify_cosignatures(witnessed, [note.Verifier(log.verifier_key)], [cosig.CosignatureVerifier(vkey)])
    finally:
        _stop(process)
    process = _start(args, port)
    try:
        fork = MemoryLog(salt=b"forked ")
        fork.grow(6)
        assert httpx.post(f"http://127.0.0.1:{port}/add-checkpoint", content=fork.body(0)).text == "4\n"
        assert httpx.post(f"http://127.0.0.1:{port}/add-checkpoint", content=fork.body(4)).status_code == 422
    finally:
        _stop(process)


@pytest.mark.parametrize("bad", ["key", "log"])
def test_witness_serve_refuses_bad_keys(tmp_path: Path, bad: str, capsys) -> None:
    key = tmp_path / "w.key"
    key.write_text("not a key" if bad == "key" else cosig.generate_key("w", b"\x01" * 32)[0])
    log_key = "not a key" if bad == "log" else MemoryLog().verifier_key
    assert main(["witness", "serve", "--key", str(key), "--log", log_key, "--state", str(tmp_path / "s")]) == 2
    assert f"--{bad}" in capsys.readouterr().err
