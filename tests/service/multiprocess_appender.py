"""One appending process for test_multiprocess.py (run as a script, not collected by pytest).

    python multiprocess_appender.py CONFIG_JSON WORKER COUNT CONCURRENCY OUT_FILE

Builds its own runtime from the settings in CONFIG_JSON (same database and key
file as its siblings), waits until the start file named there exists, appends
COUNT entries with CONCURRENCY concurrent appenders through `runtime.log.append`,
and writes one JSON line per receipt to OUT_FILE.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.config import Settings  # noqa: E402
from app.runtime import build_runtime  # noqa: E402


def main() -> None:
    config_file, worker, count, concurrency, out_file = sys.argv[1:6]
    worker, count, concurrency = int(worker), int(count), int(concurrency)
    config = json.loads(Path(config_file).read_text())
    start_file = Path(config["start_file"])
    deadline = time.monotonic() + 60
    while not start_file.exists():  # start every process's runtime at the same moment
        if time.monotonic() > deadline:
            raise SystemExit("start file never appeared")
        time.sleep(0.005)
    settings = Settings(
        data_dir=Path(config["data_dir"]) / f"worker{worker}",
        database_url=config["database_url"],
        origin=config["origin"],
        signing_key_file=Path(config["key_file"]),
        batch_window=config.get("batch_window", 0.002),
    )
    runtime = build_runtime(settings)

    async def run() -> list:
        await runtime.start()
        semaphore = asyncio.Semaphore(concurrency)

        async def one(n: int):
            data = json.dumps({"worker": worker, "n": n}, separators=(",", ":")).encode()
            async with semaphore:
                receipt = await runtime.log.append(data, kind="test")
            return data, receipt

        try:
            return await asyncio.gather(*(one(n) for n in range(count)))
        finally:
            await runtime.stop()

    try:
        results = asyncio.run(run())
    finally:
        runtime.close()
    with open(out_file, "w") as out:
        for data, receipt in results:
            line = receipt.to_json()
            line["data"] = data.decode()
            out.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
