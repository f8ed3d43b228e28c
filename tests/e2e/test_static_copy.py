"""Clients with no API server: `pubtrail monitor` follows an exported static copy served by
Python's http.server or read through file://, and the server's own read paths under the origin's path."""

from __future__ import annotations

import pytest

from app.cli import main
from app.services.export import export_log
from app.tlog import note
from tests.support.static_server import static_server


def key_of(service) -> str:
    return service.client.get("/api/v1/log").json()["verifier_key"]


def monitor(url: str, key: str, state) -> int:
    return main(["monitor", "--server", url, "--key", key, "--state", str(state), "--once"])


@pytest.mark.parametrize("served_by", ["http.server", "file://"])
def test_monitor_follows_a_static_copy_as_it_grows(service, tmp_path, capsys, served_by):
    out = tmp_path / "public"
    for i in range(5):
        service.add_github_publisher(f"proj-{i}")
    service.add_github_publisher("sampleproject")
    service.upload_token()
    export_log(service.runtime.log.reader, out)
    key = key_of(service)

    def round_trip() -> int:
        if served_by == "file://":
            return monitor(out.as_uri(), key, tmp_path / "state")
        with static_server(out) as url:
            return monitor(url, key, tmp_path / "state")

    assert round_trip() == 0
    assert "verified size 7 (+7 new" in capsys.readouterr().out
    for i in range(300):
        service.add_github_publisher(f"more-{i}")
    export_log(service.runtime.log.reader, out)
    assert round_trip() == 0
    assert "verified size 307 (+300 new" in capsys.readouterr().out
    # a copy signed by another key is refused, naming the check
    other = note.generate_key(key.split("+")[0])[1]
    assert monitor(out.as_uri(), other, tmp_path / "other") == 1
    assert "checkpoint signature" in capsys.readouterr().err


def test_monitor_follows_the_server_under_the_origin_path(service, tmp_path, capsys):
    for i in range(3):
        service.add_github_publisher(f"proj-{i}")
    assert monitor(service.url + "/log", key_of(service), tmp_path / "state") == 0
    assert "verified size 3 (+3 new" in capsys.readouterr().out
