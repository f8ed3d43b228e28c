"""`python -m tests.api.serve_process FD`: serve pubtrail as `pubtrail serve` does
(settings from PUBTRAIL_* variables, uvicorn with app.api.server.uvicorn_options)
on the already-bound listening socket FD, so tests can measure a real process."""

from __future__ import annotations

import sys

import uvicorn

from app.api.app import create_app
from app.api.server import uvicorn_options
from app.config import Settings
from app.runtime import build_runtime


def main() -> None:
    settings = Settings.from_env()
    runtime = build_runtime(settings)
    uvicorn.run(create_app(runtime), fd=int(sys.argv[1]), **uvicorn_options(settings))


if __name__ == "__main__":
    main()
