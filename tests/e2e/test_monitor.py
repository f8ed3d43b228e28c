"""pubtrail monitor against a real server: honest growth, tampered storage, a fork, the mirror's answers."""

from __future__ import annotations

import json
import sqlite3
import sys

import httpx
import pytest
from sqlalchemy import text

from app.api.app import create_app
from app.api.reason_phrase import ReasonH11Protocol
from app.cli import main
from app.clients.blast_radius import fetch_pages, verify_pages
from app.clients.http import Server
from app.clients.mirror import Mirror
from app.clients.monitor import ForkError, LeafHashError, Monitor, TileHashError
from app.clients.tiles import TileSource
from app.runtime import build_runtime
from app.tlog import note
from tests.e2e.blast_corpus import TOKEN_LIFETIME, WINDOWS, build_corpus
from tests.e2e.conftest import ALL_ISSUERS, Clock, Service
from tests.support.server import serve


def key_of(service) -> str:
    return service.client.get("/api/v1/log").json()["verifier_key"]


def add_publishers(service, n: int, prefix: str = "proj") -> None:
    """n log entries, one trusted-publisher add each."""
    for i in range(n):
        service.add_github_publisher(f"{prefix}-{i}")


def follower(service, tmp_path, **kwargs) -> Monitor:
    key = key_of(service)
    mirror = Mirror(tmp_path / "state", key=key, create=True)
    return Monitor(TileSource(service.url), note.Verifier(key), mirror, **kwargs)


def test_follows_an_honest_log_as_it_grows(service, tmp_path):
    add_publishers(service, 5)
    monitor = follower(service, tmp_path)
    first = monitor.step()
    assert first.size == service.log_size() == 5
    token = service.upload_token()
    assert token
    add_publishers(service, 300, prefix="more")
    second = monitor.step()
    assert (second.old_size, second.size) == (5, service.log_size())
    kinds = [e.kind for _, _, e in monitor.mirror.entries()]
    assert kinds.count("exchange") == 1 and kinds.count("publisher") == 305


def test_cli_once_exit_status_and_hook(service, tmp_path, capsys):
    service.add_github_publisher("sampleproject")
    service.upload_token()
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "tokens for sampleproject"\nkind = "exchange"\nproject = "sampleproject"\n')
    events = tmp_path / "events.jsonl"
    hook = f"{sys.executable} -c \"import sys; open({str(events)!r}, 'a').write(sys.stdin.read() + chr(10))\""
    args = ["monitor", "--server", service.url, "--key", key_of(service), "--state", str(tmp_path / "s"),
            "--once", "--watch", str(rules), "--hook", hook]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "verified size 2 (+2 new, 1 matched" in out
    assert "ALERT rule 'tokens for sampleproject': exchange at index 1" in out
    (event,) = [json.loads(line) for line in events.read_text().splitlines()]
    assert event["type"] == "entry.matched" and event["entry"]["index"] == 1
    assert event["entry"]["entry"]["kind"] == "exchange" and event["tree_size"] == 2
    # a second round: nothing new, nothing re-alerted
    assert main(args) == 0
    assert "verified size 2 (+0 new, 0 matched)" in capsys.readouterr().out
    assert len(events.read_text().splitlines()) == 1
    # a wrong key: exit 1 naming the check
    other = note.generate_key("pubtrail.localhost/log")[1]
    assert main(["monitor", "--server", service.url, "--key", other, "--state", str(tmp_path / "o"), "--once"]) == 1
    assert "checkpoint signature" in capsys.readouterr().err


def test_rewritten_entry_in_the_database(service, tmp_path, capsys):
    add_publishers(service, 10)
    with service.runtime.engine.begin() as conn:
        data = conn.execute(text('SELECT data FROM log_entry WHERE "index" = 6')).scalar_one()
        forged = bytes(data).replace(b"proj-6", b"evil-6")
        conn.execute(text('UPDATE log_entry SET data = :d WHERE "index" = 6'), {"d": forged})
    code = main(["monitor", "--server", service.url, "--key", key_of(service), "--state", str(tmp_path / "s"), "--once"])
    err = capsys.readouterr()
    assert code == 1
    # the server refuses to serve an entry that is not its leaf; the monitor names the bundle and stores nothing
    assert "tile/entries/000.p/10" in err.err
    assert Mirror(tmp_path / "s").latest() is None


def test_entry_rewritten_on_the_way(service, tmp_path):
    """Bytes that differ from the server's tiles, as a tampering proxy or cache would serve them."""
    add_publishers(service, 10)
    real = httpx.Client(base_url=service.url)

    def proxy(request: httpx.Request) -> httpx.Response:
        answer = real.get(request.url.path)
        content = answer.content
        if request.url.path == "/tile/entries/000.p/10":
            content = content.replace(b"proj-6", b"evil-6")
        return httpx.Response(answer.status_code, content=content)

    key = key_of(service)
    monitor = Monitor(TileSource("http://proxy.test", transport=httpx.MockTransport(proxy)), note.Verifier(key),
                      Mirror(tmp_path / "s", key=key, create=True))
    with pytest.raises(LeafHashError, match="entry leaf hash: entry 6 .* at size 10") as caught:
        monitor.step()
    assert (caught.value.size, caught.value.index) == (10, 6)
    assert monitor.mirror.latest() is None
    real.close()


def test_swapped_tile_in_the_database(service, tmp_path):
    add_publishers(service, 300)
    with service.runtime.engine.begin() as conn:
        data = bytearray(conn.execute(text('SELECT data FROM log_tile WHERE level = 1 AND "index" = 0')).scalar_one())
        data[0] ^= 0xFF
        conn.execute(text('UPDATE log_tile SET data = :d WHERE level = 1 AND "index" = 0'), {"d": bytes(data)})
    monitor = follower(service, tmp_path)
    with pytest.raises(TileHashError, match=r"tile hashes: tile tile/1/000.p/1 at size 300 differs .* at hash 0 \(entries from index 0\)"):
        monitor.step()
    assert monitor.mirror.latest() is None


def start_on(database_url: str, make_settings, issuer, started: list) -> Service:
    clock = Clock()
    settings = make_settings(database_url=database_url, jwks_urls=issuer.jwks_overrides(*ALL_ISSUERS))
    runtime = build_runtime(settings, clock=clock)
    context = serve(create_app(runtime), http=ReasonH11Protocol)
    url = context.__enter__()
    client = httpx.Client(base_url=url, timeout=30)
    service = Service(url, runtime, issuer, clock, client)
    started.append((context, client, runtime))
    return service


def test_an_older_copy_that_grows_differently_is_a_fork(make_settings, issuer, tmp_path):
    started: list = []
    try:
        honest = start_on(f"sqlite:///{tmp_path / 'a.sqlite3'}", make_settings, issuer, started)
        add_publishers(honest, 20)
        with sqlite3.connect(tmp_path / "a.sqlite3") as src, sqlite3.connect(tmp_path / "b.sqlite3") as dst:
            src.backup(dst)  # the database as it was at size 20
        add_publishers(honest, 10, prefix="later")
        monitor = follower(honest, tmp_path)
        assert monitor.step().size == 30
        # the operator restores the older copy; the log grows again, differently
        restored = start_on(f"sqlite:///{tmp_path / 'b.sqlite3'}", make_settings, issuer, started)
        monitor.source = TileSource(restored.url)
        add_publishers(restored, 10, prefix="other")
        with pytest.raises(ForkError, match="consistency: the checkpoint of size 30 has root .* same size"):
            monitor.step()
        add_publishers(restored, 5, prefix="again")
        with pytest.raises(ForkError, match="consistency: the checkpoint of size 35 is not an extension of the verified checkpoint of size 30"):
            monitor.step()
        assert monitor.mirror.size == 30
        assert [e.project for _, _, e in monitor.mirror.entries(20)] == [f"later-{i}" for i in range(10)]
    finally:
        for context, client, runtime in reversed(started):
            client.close()
            context.__exit__(None, None, None)
            runtime.close()


@pytest.fixture
def corpus_service(make_service, tmp_path):
    service = make_service(upload_token_lifetime=TOKEN_LIFETIME)
    corpus = build_corpus(service, tmp_path, per_window=12)
    return service, corpus


def test_mirror_blast_radius_equals_the_servers(corpus_service, tmp_path):
    service, corpus = corpus_service
    live = max(corpus.exchanges.values(), key=lambda e: e.expires)
    token = live.token_id
    response = service.client.post(f"/api/v1/tokens/{token}/revoke", headers=service.admin, json={"reason": "test"})
    assert response.status_code in (200, 201), response.text
    service.clock.value = WINDOWS[0] + TOKEN_LIFETIME + 30  # window 0's tokens expired, later ones valid
    monitor = follower(service, tmp_path)
    monitor.step()
    verifier = note.Verifier(key_of(service))
    some = next(iter(corpus.exchanges.values()))
    upload = next(iter(corpus.uploads.values()))
    queries = [
        {"repository": "octo-org/app-1"},
        {"repository": "OCTO-ORG/App-2", "since": "2026-01-01T00:00:00Z"},
        {"workflow": some.workflow},
        {"workflow": some.workflow_ref},
        {"kid": some.kid},
        {"token_id": token},
        {"project": upload.project},
        {"project": upload.project, "repository": "octo-org/app-1"},
        {"environment": "pypi", "until": "2030-01-01T00:00:00Z"},
        {"token_id": upload.token_id, "project": upload.project},
    ]
    nonempty = 0
    for criteria in queries:
        server = verify_pages(fetch_pages(Server(service.url), criteria), verifier, asked=criteria).to_json()
        mirror = monitor.mirror.blast_radius(criteria, now=int(service.clock())).to_json()
        assert server["tree_size"] == mirror["tree_size"] == monitor.mirror.size
        for name in ("criteria", "checkpoint", "exchanges", "uploads", "projects", "totals", "as_of"):
            assert mirror[name] == server[name], (criteria, name)
        nonempty += bool(server["uploads"])
    assert nonempty >= 5


def test_blast_radius_cli_from_the_mirror(service, tmp_path, capsys):
    service.add_github_publisher("sampleproject")
    service.upload_token()
    service.upload_token()
    key, state = key_of(service), str(tmp_path / "s")
    assert main(["monitor", "--server", service.url, "--key", key, "--state", state, "--once"]) == 0
    capsys.readouterr()
    asked = ["--repository", "Octo-Org/SampleProject"]
    assert main(["blast-radius", "--server", service.url, "--key", key, *asked, "--json"]) == 0
    server = json.loads(capsys.readouterr().out)
    assert main(["blast-radius", "--mirror", state, *asked, "--json"]) == 0
    mirror = json.loads(capsys.readouterr().out)
    assert len(mirror["exchanges"]) == 2
    for answer in (server, mirror):  # token states are taken at each side's own clock
        for item in answer["exchanges"]:
            item.pop("token_state")
        answer["totals"].pop("tokens_valid")
        answer.pop("as_of")
    assert mirror == server
    assert main(["blast-radius", "--mirror", state, *asked]) == 0
    assert "Totals: 2 exchanges, 0 uploads" in capsys.readouterr().out
    assert main(["blast-radius", "--mirror", state, "--key", note.generate_key("x.test/log")[1], *asked]) == 2
    assert "mirrors the log of key" in capsys.readouterr().err
    assert main(["blast-radius", "--mirror", str(tmp_path / "none"), *asked]) == 2
    assert "holds no mirror" in capsys.readouterr().err
    assert main(["blast-radius", "--mirror", state, "--since", "yesterday", *asked]) == 2
    assert "RFC 3339" in capsys.readouterr().err


class Receiver:
    """A webhook receiver (ASGI) that records each request's headers and body."""

    def __init__(self, status: int = 204):
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = status

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.received.append(({k.decode(): v.decode() for k, v in scope["headers"]}, body))
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_alerts_are_posted_signed_and_a_failing_receiver_is_not_fatal(service, tmp_path, capsys):
    from app.webhooks import new_secret, verify

    service.add_github_publisher("sampleproject")
    service.upload_token()
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "any exchange"\nkind = "exchange"\n')
    secret = new_secret()
    receiver = Receiver()
    with serve(receiver) as url:
        args = ["monitor", "--server", service.url, "--key", key_of(service), "--state", str(tmp_path / "s"),
                "--once", "--watch", str(rules), "--webhook", url + "/hook", "--webhook-secret", secret]
        assert main(args) == 0
    (headers, body), = receiver.received
    assert verify(secret, headers, body) == headers["webhook-id"]
    event = json.loads(body)
    assert (event["type"], event["rule"], event["entry"]["index"]) == ("entry.matched", "any exchange", 1)
    capsys.readouterr()
    service.upload_token()
    failing = Receiver(status=500)
    with serve(failing) as url:
        args[args.index("--webhook") + 1] = url + "/hook"
        assert main(args) == 0  # reported, not fatal
    assert len(failing.received) == 1
    captured = capsys.readouterr()
    assert "answered 500" in captured.err and "ALERT rule 'any exchange': exchange at index 2" in captured.out
    assert main([*args[:-4], "--webhook", "http://127.0.0.1:9/x", "--webhook-secret", "nope"]) == 2
    assert "--webhook-secret" in capsys.readouterr().err


def test_mirror_provenance_equals_the_servers(corpus_service, tmp_path, capsys):
    service, corpus = corpus_service
    upload = list(corpus.uploads.values())[-1]
    response = service.client.post("/api/v1/incidents", headers=service.admin, json={
        "description": "a test incident", "criteria": {"project": upload.project}, "revoke_tokens": False,
    })
    assert response.status_code in (200, 201), response.text
    monitor = follower(service, tmp_path)
    monitor.step()
    checked = 0
    for record in list(corpus.uploads.values())[-12:]:
        sha256 = service.client.get(f"/api/v1/log/entries/{record.index}").json()["entry"]["sha256"]
        server = service.client.get(f"/api/v1/provenance/{sha256}").json()
        mirror = monitor.mirror.provenance(sha256.upper())
        assert mirror == server
        checked += bool(server["incidents"]) + bool(server["identity_continuity"]["previous_release"])
    assert checked >= 2
    state = str(tmp_path / "state")
    assert main(["provenance", "--mirror", state, sha256]) == 0
    assert json.loads(capsys.readouterr().out) == server
    assert main(["provenance", "--mirror", state, "f" * 64]) == 1
    assert "no uploaded file has sha256" in capsys.readouterr().err
    assert main(["provenance", "--mirror", state, "xyz"]) == 2


def test_following_prints_a_line_per_round_and_retries_an_unreachable_server(service, tmp_path, capsys, monkeypatch):
    import app.cli.monitor as cli_monitor

    add_publishers(service, 3)
    rounds = []
    grow = [True]

    def sleep(seconds):  # between rounds: the log grows once, then the test stops the monitor
        rounds.append(seconds)
        if grow[0]:
            grow[0] = False
            add_publishers(service, 2, prefix="later")
        elif len(rounds) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_monitor.time, "sleep", sleep)
    key = key_of(service)
    assert main(["monitor", "--server", service.url, "--key", key, "--state", str(tmp_path / "s"),
                 "--interval", "0.01"]) == 130
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ", 1)[1].split(",")[0] for line in lines] == [
        "verified size 3 (+3 new", "verified size 5 (+2 new", "verified size 5 (+0 new"
    ]
    rounds.clear()
    assert main(["monitor", "--server", "http://127.0.0.1:9", "--key", key, "--state", str(tmp_path / "s"),
                 "--interval", "0.01"]) == 130
    out = capsys.readouterr().out
    assert out.count("cannot read the log") == 3 and "retrying in 0.01 s" in out
