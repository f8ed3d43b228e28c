"""A second tlog-witness, written in the tests from the C2SP texts alone (tlog-witness,
tlog-cosignature, signed-note, RFC 9162 consistency proofs): no pubtrail code, stdlib
http.server, state in memory. `down` and `delay` make it absent or slow."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.tlog.test_cosignature import spec_line, spec_vkey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def consistent(size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes) -> bool:
    """RFC 9162 2.1.4.2, step by step."""
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0 or size1 > size2:
        return False
    if size1 & (size1 - 1) == 0:  # a power of two: the old root is the first node
        proof = [root1, *proof]
    if not proof:
        return False
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


class SpecWitness:
    def __init__(self, name: str, seed: bytes, log_vkey: str, clock=time.time) -> None:
        self.name, self.seed, self.clock = name, seed, clock
        public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.vkey = spec_vkey(name, public)
        log_name, log_id, log_key = log_vkey.split("+", 2)
        self.origin, self.log_id, self.log_key = log_name, bytes.fromhex(log_id), base64.b64decode(log_key)[1:]
        self.state = (0, hashlib.sha256(b"").digest())
        self.lock = threading.Lock()
        self.down = False
        self.delay = 0.0
        self.requests = 0

    def handle(self, body: bytes) -> tuple[int, str, str]:
        head, _, signed = body.decode().partition("\n\n")
        lines = head.split("\n")
        if not lines[0].startswith("old ") or not lines[0][4:].isdigit():
            return 400, "text/plain", "bad old line\n"
        old = int(lines[0][4:])
        proof = [base64.b64decode(x) for x in lines[1:]]
        text_end = signed.rfind("\n\n")
        text, sigs = signed[: text_end + 1], signed[text_end + 2 :].splitlines()
        origin, size, root = text.split("\n")[:3]
        if origin != self.origin:
            return 404, "text/plain", "unknown log\n"
        ok = False
        for sig in sigs:
            name, _, b64 = sig[2:].partition(" ")
            raw = base64.b64decode(b64)
            if name == self.origin and raw[:4] == self.log_id:
                try:
                    Ed25519PublicKey.from_public_bytes(self.log_key).verify(raw[4:], text.encode())
                    ok = True
                except Exception:  # noqa: BLE001
                    pass
        if not ok:
            return 403, "text/plain", "bad signature\n"
        size, root = int(size), base64.b64decode(root)
        if old > size:
            return 400, "text/plain", "old above size\n"
        with self.lock:
            known_size, known_root = self.state
            if old != known_size:
                return 409, "text/x.tlog.size", f"{known_size}\n"
            if old == size and root != known_root and known_size:
                return 409, "text/x.tlog.size", f"{known_size}\n"
            if old and not consistent(old, size, proof, known_root, root):
                return 422, "text/plain", "bad proof\n"
            if not old and proof:
                return 422, "text/plain", "bad proof\n"
            self.state = (size, root)
            return 200, "text/plain", spec_line(self.name, self.seed, text, int(self.clock()))


@contextmanager
def running(witness: SpecWitness) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            witness.requests += 1
            if witness.down:
                self.connection.close()
                return
            time.sleep(witness.delay)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, kind, text = witness.handle(body) if self.path == "/add-checkpoint" else (404, "text/plain", "")
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
