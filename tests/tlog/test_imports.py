"""app.tlog is pure: importing it in a fresh interpreter loads no web, database or scheduler code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FORBIDDEN = ("fastapi", "starlette", "sqlalchemy", "sqlmodel", "apscheduler", "pydantic", "httpx", "uvicorn")


def test_app_tlog_imports_only_stdlib_and_cryptography() -> None:
    script = (
        "import sys, app.tlog, app.tlog.note, app.tlog.checkpoint, app.tlog.tlog_proof\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "", f"app.tlog loaded {result.stdout.strip()}"
