"""Server-side monitors and their signed webhooks, against a real server and a local receiver."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import httpx
import pytest
from sqlalchemy import func, select

from app import tlog, webhooks
from app.api.app import create_app
from app.api.reason_phrase import ReasonH11Protocol
from app.runtime import build_runtime
from app.services.deliveries import Deliveries
from app.storage.tables import WebhookDelivery
from app.tlog import note
from tests.conftest import ADMIN_TOKEN
from tests.e2e.conftest import ALL_ISSUERS, Clock, Service
from tests.support.server import serve

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every request; `refusing`
    makes it answer 503 (an outage), `down()` closes its port (refused connections)."""

    server: ThreadingHTTPServer

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.refusing = False
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = 503 if receiver.refusing else 204
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the worker POSTs a batch at once

        self.make = lambda port: Server(("127.0.0.1", port), Handler)
        self.up(0)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def up(self, port: int | None = None) -> None:
        """Listen (again) on `port` (default: the port it had)."""
        self.server = self.make(self.server.server_address[1] if port is None else port)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Close the port: connections are refused."""
        self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        raise AssertionError(f"receiver got {len(self.requests)} requests, expected {count}")

    def settled(self, count: int, quiet: float = 0.6) -> list[tuple[dict[str, str], bytes]]:
        """Exactly `count` requests, and no more after `quiet` seconds."""
        self.wait_for(count)
        time.sleep(quiet)
        with self.lock:
            assert len(self.requests) == count, [h["webhook-id"] for h, _ in self.requests]
            return list(self.requests)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    try:
        r.close()
    except OSError:
        pass


@pytest.fixture
def start(make_settings, database_url, issuer):
    """Start a server on the test's database (call again for a restart); returns (Service, stop)."""
    running = []

    def start_one(clock: Clock | None = None, **overrides) -> tuple[Service, Callable[[], None]]:
        clock = clock or Clock()
        overrides.setdefault("webhook_poll_interval", 0.05)
        settings = make_settings(
            database_url=database_url, jwks_urls=issuer.jwks_overrides(*ALL_ISSUERS), **overrides
        )
        runtime = build_runtime(settings, clock=clock)
        context = serve(create_app(runtime), http=ReasonH11Protocol)
        url = context.__enter__()
        client = httpx.Client(base_url=url, timeout=30)
        entry = [context, client, runtime, False]
        running.append(entry)

        def stop() -> None:
            if not entry[3]:
                entry[3] = True
                client.close()
                context.__exit__(None, None, None)
                runtime.close()

        return Service(url, runtime, issuer, clock, client), stop

    yield start_one
    for context, client, runtime, stopped in reversed(running):
        if not stopped:
            client.close()
            context.__exit__(None, None, None)
            runtime.close()


def recorded(service: Service, attempts: int, timeout: float = 10.0) -> None:
    """Wait until the deliveries have `attempts` attempts recorded and none is leased."""
    table = WebhookDelivery.__table__
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with service.runtime.engine.connect() as conn:
            made, leased = conn.execute(
                select(func.coalesce(func.sum(table.c.attempts), 0), func.count(table.c.lease_owner))
            ).one()
        if made == attempts and leased == 0:
            return
        time.sleep(0.02)
    raise AssertionError(f"{made} attempts recorded ({leased} leased), expected {attempts}")


def create_monitor(service: Service, match: dict, url: str, name: str = "watch") -> dict:
    response = service.client.post(
        "/api/v1/monitors", json={"name": name, "match": match, "webhook_url": url}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return response.json()


def check_event(service: Service, secret: str, headers: dict[str, str], body: bytes) -> dict:
    """The event, after checking its signature, its entry against its leaf hash and
    its checkpoint's signature and coverage."""
    assert webhooks.verify(secret, headers, body, now=service.clock()) == headers["webhook-id"]
    event = json.loads(body)
    assert event["type"] == "entry.matched"
    entry = event["data"]["entry"]
    raw = __import__("base64").b64decode(entry["entry_bytes"])
    assert bytes.fromhex(entry["leaf_hash"]) == tlog.leaf_hash(raw) == hashlib.sha256(b"\0" + raw).digest()
    assert json.loads(raw) == entry["entry"]
    verifier = note.Verifier(service.client.get("/api/v1/log").json()["verifier_key"])
    checkpoint = tlog.open_checkpoint(event["data"]["checkpoint"]["note"], [verifier], origin=verifier.name)
    assert checkpoint.size == event["data"]["checkpoint"]["size"] > entry["index"]
    assert headers["webhook-id"] == f"evt_{event['data']['rule']['id']}_{entry['index']}"
    return event


def test_exactly_the_matching_events_arrive_signed(start, receiver: Receiver) -> None:
    service, _ = start()
    exchanges = create_monitor(service, {"kind": "exchange", "repository": "octo-org/sampleproject"}, receiver.url,
                               name="exchanges of sampleproject")
    publishers = create_monitor(service, {"kind": "publisher", "project": "SampleProject"}, receiver.url)
    create_monitor(service, {"repository": "someone/else"}, receiver.url)  # matches nothing
    assert exchanges["secret"].startswith("whsec_") and exchanges["secret"] != publishers["secret"]
    service.add_github_publisher()
    for _ in range(3):
        service.upload_token()
    got = receiver.settled(4)
    secrets = {exchanges["id"]: exchanges["secret"], publishers["id"]: publishers["secret"]}
    events = []
    for headers, body in got:
        rule = json.loads(body)["data"]["rule"]
        events.append(check_event(service, secrets[rule["id"]], headers, body))
    by_rule = sorted((e["data"]["rule"]["id"], e["data"]["entry"]["kind"]) for e in events)
    assert by_rule == sorted([(exchanges["id"], "exchange")] * 3 + [(publishers["id"], "publisher")])
    assert {e["data"]["rule"]["name"] for e in events if e["data"]["rule"]["id"] == exchanges["id"]} == {
        "exchanges of sampleproject"
    }
    assert len({h["webhook-id"] for h, _ in got}) == 4
    shown = service.client.get(f"/api/v1/monitors/{exchanges['id']}", headers=ADMIN).json()
    assert shown["deliveries"] == {"pending": 0, "delivered": 3, "failed": 0}


def test_entries_before_the_monitor_are_not_sent(start, receiver: Receiver) -> None:
    service, _ = start()
    service.add_github_publisher()
    service.upload_token()
    create_monitor(service, {"repository": "octo-org/sampleproject"}, receiver.url)
    service.upload_token()
    assert len(receiver.settled(1)) == 1


def test_receiver_outage_is_retried_with_backoff_under_one_event_id(start, receiver: Receiver) -> None:
    service, _ = start()
    monitor = create_monitor(service, {"kind": "exchange"}, receiver.url)
    service.add_github_publisher()
    receiver.refusing = True
    t0 = int(service.clock())
    service.upload_token()
    receiver.settled(1)  # first attempt refused; nothing more until the clock moves
    recorded(service, 1)
    service.clock.value += 1
    receiver.settled(2)
    recorded(service, 2)
    service.clock.value += 4.5  # 5.5 s after the second attempt: not yet due (5 s, rounded to whole seconds)
    time.sleep(0.4)
    assert len(receiver.requests) == 2
    service.clock.value += 0.5
    receiver.settled(3)
    recorded(service, 3)
    service.clock.value += 30
    receiver.settled(4)
    recorded(service, 4)
    receiver.refusing = False
    service.clock.value += 120
    got = receiver.settled(5)
    assert len({h["webhook-id"] for h, _ in got}) == 1
    assert [int(h["webhook-timestamp"]) - t0 for h, _ in got] == [0, 1, 6, 36, 156]
    for headers, body in got:
        check_event(service, monitor["secret"], headers, body)
    assert len({body for _, body in got}) == 1  # every attempt sends the same bytes
    shown = service.client.get(f"/api/v1/monitors/{monitor['id']}", headers=ADMIN).json()
    assert shown["deliveries"] == {"pending": 0, "delivered": 1, "failed": 0}


def test_gives_up_a_day_after_the_event(start, receiver: Receiver) -> None:
    service, _ = start()
    monitor = create_monitor(service, {"kind": "exchange"}, receiver.url)
    service.add_github_publisher()
    receiver.refusing = True
    service.upload_token()
    receiver.settled(1)
    recorded(service, 1)
    for step in (1, 5, 30, 120, 600):
        service.clock.value += step
        receiver.wait_for(len(receiver.requests) + 1)
        recorded(service, len(receiver.requests))
    hourly = 0
    while service.client.get(f"/api/v1/monitors/{monitor['id']}", headers=ADMIN).json()["deliveries"]["failed"] == 0:
        seen = len(receiver.requests)
        service.clock.value += 3600
        receiver.wait_for(seen + 1)
        recorded(service, seen + 1)
        hourly += 1
        assert hourly < 30
    assert 22 <= hourly <= 24  # hourly until a day after the event, then failed
    count = len(receiver.requests)
    service.clock.value += 7200
    time.sleep(0.4)
    assert len(receiver.requests) == count


def test_restart_neither_loses_nor_duplicates_an_event_id(start, receiver: Receiver) -> None:
    clock = Clock()
    first, stop_first = start(clock)
    monitor = create_monitor(first, {"kind": "exchange"}, receiver.url)
    first.add_github_publisher()
    receiver.refusing = True
    for _ in range(3):
        first.upload_token()
    receiver.settled(3)
    recorded(first, 3)
    stop_first()
    receiver.refusing = False
    second, _ = start(clock)  # the same database and data folder, a new process's runtime
    second.upload_token()
    receiver.settled(4)  # the new event at once; the refused ones are due a second later
    recorded(second, 4)
    clock.value += 1
    got = receiver.settled(7)
    ids = [h["webhook-id"] for h, _ in got]
    assert len(set(ids[:3])) == 3 and set(ids[4:]) == set(ids[:3]) and ids[3] not in ids[:3]
    indexes = {json.loads(b)["data"]["entry"]["index"]: h["webhook-id"] for h, b in got}
    assert len(indexes) == 4
    for headers, body in got:
        check_event(second, monitor["secret"], headers, body)
    shown = second.client.get(f"/api/v1/monitors/{monitor['id']}", headers=ADMIN).json()
    assert shown["deliveries"] == {"pending": 0, "delivered": 4, "failed": 0}


def test_a_crashed_attempt_is_made_again_after_its_lease(start, receiver: Receiver) -> None:
    from app.jobs import deliver_webhooks

    service, _ = start(webhook_poll_interval=3600)  # the worker sleeps: the job below is the other process
    create_monitor(service, {"kind": "exchange"}, receiver.url)
    service.add_github_publisher()
    service.upload_token()
    store = service.runtime.log.sequencer.store
    crashed = Deliveries(service.runtime.engine, store, service.clock, timeout=10)
    crashed.scan()
    [attempt] = crashed.claim()  # then the claimer dies without attempting or recording
    assert deliver_webhooks(service.runtime) == 0  # leased: nobody else makes the attempt
    service.clock.value += crashed.lease - 1
    assert deliver_webhooks(service.runtime) == 0
    service.clock.value += 1  # the lease expired
    assert deliver_webhooks(service.runtime) == 1
    [(headers, _)] = receiver.settled(1)
    assert headers["webhook-id"] == attempt.id
    crashed.record(attempt, None)  # a late report from a lease it no longer holds changes nothing
    assert deliver_webhooks(service.runtime) == 0
    with service.runtime.engine.connect() as conn:
        row = conn.execute(select(WebhookDelivery.__table__)).one()
    assert (row.status, row.attempts) == ("delivered", 1)


def test_several_processes_never_make_the_same_attempt_twice(start, receiver: Receiver) -> None:
    service, _ = start()
    create_monitor(service, {"kind": "exchange"}, receiver.url)
    service.add_github_publisher()
    receiver.refusing = True
    for _ in range(20):
        service.upload_token()
    receiver.settled(20)
    recorded(service, 20)
    receiver.refusing = False
    store = service.runtime.log.sequencer.store
    others = [Deliveries(service.runtime.engine, store, service.clock) for _ in range(3)]
    service.clock.value += 1
    threads = [threading.Thread(target=d.run_once_sync) for d in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = receiver.settled(40)
    second_round = [h["webhook-id"] for h, _ in got[20:]]
    assert len(set(second_round)) == 20  # each attempt made once, by one of four claimers
    assert set(second_round) == {h["webhook-id"] for h, _ in got[:20]}


def test_admin_auth_required(start, receiver: Receiver) -> None:
    service, _ = start()
    body = {"name": "x", "match": {"kind": "upload"}, "webhook_url": receiver.url}
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token-wrong-token"}):
        assert service.client.post("/api/v1/monitors", json=body, headers=headers).status_code == 401
        assert service.client.get("/api/v1/monitors", headers=headers).status_code == 401
        assert service.client.get("/api/v1/monitors/mon_x", headers=headers).status_code == 401
        assert service.client.delete("/api/v1/monitors/mon_x", headers=headers).status_code == 401
    assert service.client.get("/api/v1/monitors", headers=ADMIN).json() == {"monitors": []}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"name": "x", "match": {"kind": "upload"}, "webhook_url": "ftp://example.com/"}, "http"),
        ({"name": "x", "match": {"kind": "upload"}, "webhook_url": "file:///etc/passwd"}, "http"),
        ({"name": "x", "match": {"kind": "upload"}, "webhook_url": "https://"}, "host"),
        ({"name": "x", "match": {"kind": "upload"}, "webhook_url": "https://u:p@example.com/"}, "password"),
        ({"name": "x", "match": {"kind": "upload"}, "webhook_url": "https://example.com:99999/"}, "valid URL"),
        ({"name": "x", "match": {"kind": "upload"}, "webhook_url": "https://exa mple.com/"}, "spaces"),
        ({"name": "x", "match": {"kind": "upload"}, "webhook_url": "https://example.com/" + "a" * 2000}, "2000"),
        ({"name": "x", "match": {"kind": "upload"}, "webhook_url": 7}, "webhook_url"),
        ({"name": "x", "match": {"kind": "upload"}}, "webhook_url"),
        ({"name": "", "match": {"kind": "upload"}, "webhook_url": "https://example.com/"}, "name"),
        ({"name": "a\x00b", "match": {"kind": "upload"}, "webhook_url": "https://example.com/"}, "control"),
        ({"name": "x", "match": {}, "webhook_url": "https://example.com/"}, "match"),
        ({"name": "x", "match": {"kind": "nonsense"}, "webhook_url": "https://example.com/"}, "match"),
        ({"name": "x", "match": {"colour": "red"}, "webhook_url": "https://example.com/"}, "match"),
        ({"name": "x", "match": {"name": "y", "kind": "upload"}, "webhook_url": "https://example.com/"}, "criteria"),
        ({"name": "x", "match": {"kind": "upload"}, "webhook_url": "https://example.com/", "extra": 1}, "unknown"),
        ([], "object"),
    ],
)
def test_bad_monitors_refused(start, body, reason: str) -> None:
    service, _ = start()
    response = service.client.post("/api/v1/monitors", json=body, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert reason in response.json()["detail"]
    assert service.client.post("/api/v1/monitors", content=b"{not json", headers=ADMIN).status_code == 400


def test_allowed_hosts_setting(make_settings, database_url, receiver: Receiver) -> None:
    from app.services.monitors import validate_webhook_url
    from app.errors import BadRequest

    allowed = frozenset({"hooks.example.com", "127.0.0.1:8443"})
    assert validate_webhook_url("https://HOOKS.example.com/x", allowed)
    assert validate_webhook_url("https://127.0.0.1:8443/x", allowed)
    for url in ("https://127.0.0.1/x", "http://169.254.169.254/latest/meta-data", "https://evil.example.com/"):
        with pytest.raises(BadRequest, match="ALLOWED_HOSTS"):
            validate_webhook_url(url, allowed)


def test_list_show_delete(start, receiver: Receiver) -> None:
    service, _ = start()
    one = create_monitor(service, {"kind": ["upload", "exchange"], "project": "demo"}, receiver.url, name="one")
    two = create_monitor(service, {"kind": "publisher"}, receiver.url, name="two")
    listed = service.client.get("/api/v1/monitors", headers=ADMIN).json()["monitors"]
    assert {m["id"] for m in listed} == {one["id"], two["id"]}
    assert all("secret" not in m for m in listed)
    shown = service.client.get(f"/api/v1/monitors/{one['id']}", headers=ADMIN).json()
    assert "secret" not in shown and shown["match"] == {"kind": ["exchange", "upload"], "project": "demo"}
    assert service.client.delete(f"/api/v1/monitors/{one['id']}", headers=ADMIN).status_code == 200
    assert service.client.get(f"/api/v1/monitors/{one['id']}", headers=ADMIN).status_code == 404
    assert service.client.delete(f"/api/v1/monitors/{one['id']}", headers=ADMIN).status_code == 404
    for odd in ("mon_%00", "mon_x", "%F0%9F%90%8D"):
        assert service.client.get(f"/api/v1/monitors/{odd}", headers=ADMIN).status_code == 404
        assert service.client.delete(f"/api/v1/monitors/{odd}", headers=ADMIN).status_code == 404
    service.add_github_publisher()  # only the remaining monitor hears of it
    headers, body = receiver.settled(1)[0]
    assert json.loads(body)["data"]["rule"] == {"id": two["id"], "name": "two"}


def test_the_scheduler_job_delivers_too(start, receiver: Receiver) -> None:
    from app.jobs import deliver_webhooks

    service, _ = start(webhook_poll_interval=3600)  # the worker makes one pass at start, then sleeps
    monitor = create_monitor(service, {"kind": "exchange"}, receiver.url)
    service.add_github_publisher()
    service.upload_token()
    time.sleep(0.3)
    assert receiver.requests == []
    assert deliver_webhooks(service.runtime) == 1
    headers, body = receiver.settled(1)[0]
    check_event(service, monitor["secret"], headers, body)
    assert deliver_webhooks(service.runtime) == 0


def test_uploads_by_an_unexpected_publisher(start, receiver: Receiver, tmp_path) -> None:
    from tests.e2e.test_upload import build_wheel, _post

    service, _ = start()
    unexpected = create_monitor(
        service,
        {"project": "SampleProject",
         "unexpected_publisher": [{"repository": "octo-org/sampleproject", "workflow": "release.yml"}]},
        receiver.url, name="not the release workflow",
    )
    by_owner = create_monitor(service, {"kind": "upload", "repository_owner_id": "65432"}, receiver.url)
    service.add_github_publisher()
    service.add_github_publisher(workflow="other.yml")
    for version, workflow in (("1.0.0", "release.yml"), ("2.0.0", "other.yml")):
        (tmp_path / version).mkdir()
        wheel = build_wheel(tmp_path / version, version)
        token = service.upload_token(workflow=workflow)
        assert _post(service, wheel, token=token, version=version).status_code == 200
    got = receiver.settled(3)
    seen = sorted(
        (json.loads(b)["data"]["rule"]["id"], json.loads(b)["data"]["entry"]["entry"]["version"]) for _, b in got
    )
    # repository_owner_id is not in the upload entry: it comes from the exchange that minted its token
    assert seen == sorted([(unexpected["id"], "2.0.0"), (by_owner["id"], "1.0.0"), (by_owner["id"], "2.0.0")])
    secrets = {unexpected["id"]: unexpected["secret"], by_owner["id"]: by_owner["secret"]}
    for headers, body in got:
        check_event(service, secrets[json.loads(body)["data"]["rule"]["id"]], headers, body)


def test_monitors_at_different_cursors_each_see_only_their_entries(
    start, receiver: Receiver, monkeypatch
) -> None:
    from app.jobs import deliver_webhooks
    from app.services import deliveries

    monkeypatch.setattr(deliveries, "SCAN_MAX", 2)  # a scan reads two entries at a time
    service, _ = start(webhook_poll_interval=3600)
    early = create_monitor(service, {"kind": "exchange"}, receiver.url, name="early")
    service.add_github_publisher()
    for _ in range(4):
        service.upload_token()
    late = create_monitor(service, {"kind": "exchange"}, receiver.url, name="late")
    for _ in range(3):
        service.upload_token()
    for _ in range(12):
        deliver_webhooks(service.runtime)
    got = receiver.settled(10)
    per_rule = {}
    for _, body in got:
        event = json.loads(body)["data"]
        per_rule.setdefault(event["rule"]["name"], []).append(event["entry"]["index"])
    assert sorted(per_rule["early"]) == list(range(1, 8))
    assert sorted(per_rule["late"]) == list(range(5, 8))
    listed = {m["name"]: m["next_index"] for m in service.client.get("/api/v1/monitors", headers=ADMIN).json()["monitors"]}
    assert listed == {"early": 8, "late": 8}
    assert {early["id"], late["id"]} == {m["id"] for m in service.client.get("/api/v1/monitors", headers=ADMIN).json()["monitors"]}


def test_refused_connections_are_retried(start, receiver: Receiver) -> None:
    service, _ = start()
    monitor = create_monitor(service, {"kind": "exchange"}, receiver.url)
    service.add_github_publisher()
    receiver.down()
    service.upload_token()
    recorded(service, 1)
    with service.runtime.engine.connect() as conn:
        row = conn.execute(select(WebhookDelivery.__table__)).one()
    assert row.status == "pending" and "ConnectError" in row.last_error
    receiver.up()
    service.clock.value += 1
    [(headers, body)] = receiver.settled(1)
    check_event(service, monitor["secret"], headers, body)
    assert headers["webhook-id"] == row.id
