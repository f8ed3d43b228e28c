"""Log reads run at most PUBTRAIL_READ_CONCURRENCY at a time per process; the rest wait their
turn without failing, and other routes are not held up by them (a real server, real sockets)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.api.app import create_app
from app.runtime import build_runtime
from tests.support.server import serve

DELAY = 0.4


class Gauge:
    """Counts how many wrapped reader calls run at once; each takes DELAY seconds more."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = self.most = 0

    def wrap(self, method):
        def slow(*args, **kwargs):
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                time.sleep(DELAY)
                return method(*args, **kwargs)
            finally:
                with self.lock:
                    self.running -= 1

        return slow


@pytest.mark.parametrize("limit", [2, 0])
def test_reads_beyond_the_limit_wait_their_turn(make_settings, limit):
    runtime = build_runtime(make_settings(read_concurrency=limit))
    try:
        runtime.log.sequencer.append_batch_sync([("test", b'{"n":%d}' % n) for n in range(300)])
        reader, gauge = runtime.log.reader, Gauge()
        reader.tile = gauge.wrap(reader.tile)
        reader.inclusion = gauge.wrap(reader.inclusion)
        paths = ["/tile/0/000", "/api/v1/log/proof/inclusion?index=5", "/log/tile/0/000"] * 4
        with serve(create_app(runtime)) as url, httpx.Client(base_url=url, timeout=60) as client:
            with ThreadPoolExecutor(len(paths)) as pool:
                answers = pool.map(lambda path: client.get(path).status_code, paths)
                time.sleep(0.1)
                started = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                other = time.perf_counter() - started
                assert list(answers) == [200] * len(paths)
        assert gauge.running == 0
        if limit:
            assert gauge.most == limit
            assert other < DELAY * len(paths) / limit / 2  # healthz did not queue behind the reads
        else:
            assert gauge.most > 2
    finally:
        runtime.close()
