"""app.clients trusts only the public API: importing it loads no server, web or database code.

One exception, loaded only when a file has PEP 740 attestations to verify:
`app.attestations` and `pypi_attestations` (hence pydantic and sigstore), which
are no server code either."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import app.clients

FORBIDDEN_PACKAGES = ("fastapi", "starlette", "sqlalchemy", "sqlmodel", "apscheduler", "pydantic", "uvicorn")
#: FORBIDDEN_PACKAGES but pydantic, which pypi_attestations needs
SERVER_PACKAGES = tuple(p for p in FORBIDDEN_PACKAGES if p != "pydantic")
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


def test_verifying_attestations_loads_pypi_attestations_and_still_no_server_code() -> None:
    script = (
        "import sys\n"
        "import app.clients.attestations, app.clients.provenance\n"
        "assert 'pypi_attestations' not in sys.modules and 'pydantic' not in sys.modules\n"
        "from app import attestations\n"
        "attestations.verifier()\n"  # what checking a file's attestations loads
        "assert 'pypi_attestations' in sys.modules\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {SERVER_PACKAGES!r})\n"
        f"allowed = {ALLOWED + ('app.attestations',)!r}\n"
        "bad += sorted(m for m in sys.modules if m.split('.')[0] == 'app'"
        " and not any(m == a or m.startswith(a + '.') for a in allowed if a != 'app') and m != 'app')\n"
        "print(','.join(bad))\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "", f"verifying attestations loaded {result.stdout.strip()}"
