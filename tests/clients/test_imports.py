"""app.clients trusts only the public API: importing it loads no server, web or database code."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import app.clients

FORBIDDEN_PACKAGES = ("fastapi", "starlette", "sqlalchemy", "sqlmodel", "apscheduler", "pydantic", "uvicorn")
#: the only pubtrail modules a client may load
ALLOWED = ("app", "app.tlog", "app.entries", "app.identity", "app.watch", "app.webhooks", "app.clients")


def test_app_clients_import_no_server_code() -> None:
    modules = sorted(f"app.clients.{m.name}" for m in pkgutil.iter_modules(app.clients.__path__))
    assert {"app.clients.http", "app.clients.provenance", "app.clients.blast_radius", "app.clients.receipt"} <= set(modules)
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN_PACKAGES!r})\n"
        f"allowed = {ALLOWED!r}\n"
        "bad += sorted(m for m in sys.modules if m.split('.')[0] == 'app'"
        " and not any(m == a or m.startswith(a + '.') for a in allowed if a != 'app') and m != 'app')\n"
        "print(','.join(bad))\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "", f"app.clients loaded {result.stdout.strip()}"
