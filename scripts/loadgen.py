"""A lean HTTP/1.1 load generator for the benchmark scripts.

The server under test and the load generator share this machine's two
cores, so the generator must cost little: each client is one keep-alive
connection that writes prebuilt request bytes and reads the answer by its
Content-Length (or chunked framing). Requests are built once with httpx
(`raw_request`), so headers and multipart bodies are exactly what a real
client sends. `run_load` sends a fixed list of requests; `run_mix` keeps the
connections busy for a fixed time with requests built as it goes, and
records timeouts and broken connections instead of failing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
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


#: statuses recorded for requests that got no HTTP answer
TIMED_OUT = 0
CONNECTION_LOST = -1


async def run_mix(
    base_url: str,
    next_request: Callable[[], tuple[str, bytes, object]],
    concurrency: int,
    duration: float,
    *,
    timeout: float = 30.0,
    on_response: Callable[[str, int, object], None] | None = None,
) -> dict[str, LoadResult]:
    """Keep `concurrency` keep-alive connections busy for `duration` seconds.

    Each connection asks `next_request()` for `(kind, request bytes, tag)`,
    sends it, times the answer and records it under `kind`;
    `on_response(kind, status, tag)` hears every outcome (so a later request
    can depend on an earlier one, e.g. a provenance query for an uploaded
    file). An answer that takes longer than `timeout` is recorded as status
    `TIMED_OUT`, a connection that breaks as `CONNECTION_LOST`; either way the
    connection is opened again. Every result's `elapsed` is the whole run.
    """
    parts = urlsplit(base_url)
    results: dict[str, LoadResult] = {}
    deadline = time.perf_counter() + duration

    async def client() -> None:
        reader = writer = None
        try:
            while time.perf_counter() < deadline:
                if writer is None:
                    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                kind, request, tag = next_request()
                started = time.perf_counter()
                try:
                    writer.write(request)
                    status = await asyncio.wait_for(_read_response(reader), timeout)
                except asyncio.TimeoutError:
                    status = TIMED_OUT
                except (ConnectionError, asyncio.IncompleteReadError):
                    status = CONNECTION_LOST
                if status in (TIMED_OUT, CONNECTION_LOST):
                    writer.close()
                    reader = writer = None
                result = results.setdefault(kind, LoadResult())
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if on_response is not None:
                    on_response(kind, status, tag)
        finally:
            if writer is not None:
                writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    for result in results.values():
        result.elapsed = elapsed
    return results
