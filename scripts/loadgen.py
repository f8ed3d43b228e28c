"""A lean HTTP/1.1 load generator for the benchmark scripts.

The server under test and the load generator share this machine's two
cores, so the generator must cost little: each client is one keep-alive
connection that writes prebuilt request bytes and reads the answer by its
Content-Length (or chunked framing). Requests are built once with httpx
(`raw_request`), so headers and multipart bodies are exactly what a real
client sends.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx


def raw_request(request: httpx.Request) -> bytes:
    """Serialise an httpx request (body included) to HTTP/1.1 bytes."""
    body = request.read()
    url = request.url
    target = url.raw_path.decode()
    lines = [f"{request.method} {target} HTTP/1.1"]
    headers = dict(request.headers)
    headers.setdefault("host", url.netloc.decode())
    headers["content-length"] = str(len(body))
    headers.pop("transfer-encoding", None)
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class LoadResult:
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def run_load(base_url: str, requests: list[bytes], concurrency: int) -> LoadResult:
    """Send every request once, `concurrency` connections at a time; time each."""
    parts = urlsplit(base_url)
    queue = list(reversed(requests))
    result = LoadResult()

    async def client() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while queue:
                request = queue.pop()
                started = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result
