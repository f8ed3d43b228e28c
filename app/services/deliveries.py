"""Webhook deliveries of the server's monitors: at least once, signed (Standard Webhooks).

Two steps, both safe to run in any number of processes at once:

1. `scan()` turns entries into events. Each monitor has a cursor: the next log
   index it has not looked at. A scan reads the entries below the latest signed
   checkpoint (all committed: the checkpoint is written in the transaction that
   appends them), stores one `webhook_delivery` row per matching entry, and moves
   the cursor, in one transaction whose cursor update is a compare-and-set
   (`WHERE cursor = <what this scan read>`): a scan that lost a race to another
   process stores nothing. The event id is `evt_<monitor id>_<log index>`, so one
   event has one id forever, and the body (event type, rule, entry, checkpoint)
   is fixed when the row is stored, so every attempt sends the same bytes.
   The log's append path does no webhook work at all.

2. `claim()` / send / `record()`: a process claims a due attempt by setting a
   lease on its row only where no live lease exists (one UPDATE each; on
   PostgreSQL a concurrent claimer waits for the row and then finds it leased),
   POSTs it with fresh `webhook-timestamp`/`webhook-signature` headers, and
   records the outcome. A 2xx is delivered; anything else (another status, a
   redirect, a timeout, a refused connection) is retried after 1 s, 5 s, 30 s,
   2 min, 10 min, then hourly, until a day after the event; then the row is
   `failed`. A process that dies mid-attempt leaves a lease that expires
   (timeout + 30 s) and the attempt is made again with the same event id;
   `stop()` releases this process's leases at once.

`run_forever()` is the worker (an asyncio task of each serving process);
`run_once_sync()` the same work for a scheduler job. Time is the injected clock.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import uuid
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import httpx
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection

from app.entries import EntryError, ExchangeEntry, UploadEntry, decode, rfc3339
from app.storage.db import WRITE
from app.storage.log_store import LogStore, StoredCheckpoint, StoredEntry
from app.storage.tables import Monitor, Publisher, WebhookDelivery
from app.watch import Rule, WatchRuleError, events_of, parse_rule
from app.webhooks import sign_headers

log = logging.getLogger("pubtrail.webhooks")

EVENT_TYPE = "entry.matched"
#: seconds before the 2nd, 3rd, ... attempt; then `hourly` until `give_up_after`
SCHEDULE = (1, 5, 30, 120, 600)
HOURLY = 3600
GIVE_UP_AFTER = 86400
SCAN_MAX = 1000  # entries one scan reads
CLAIM_MAX = 64  # attempts one pass claims
_monitors = Monitor.__table__
_publishers = Publisher.__table__
_deliveries = WebhookDelivery.__table__


@dataclass(frozen=True)
class Attempt:
    """A claimed attempt: POST `body` to `url`, signed with `secret`, as event `id`."""

    id: str
    url: str
    secret: str
    body: bytes
    attempts: int  # attempts made before this one
    created_at: int


def event_id(monitor_id: str, index: int) -> str:
    return f"evt_{monitor_id}_{index}"


def event_body(monitor_id: str, name: str, stored: StoredEntry, entry_json: dict,
               checkpoint: StoredCheckpoint, now: float) -> bytes:
    """The JSON body of one event (Standard Webhooks' `type`, `timestamp`, `data`)."""
    return json.dumps(
        {
            "type": EVENT_TYPE,
            "timestamp": rfc3339(now),
            "data": {
                "rule": {"id": monitor_id, "name": name},
                "entry": {
                    "index": stored.index,
                    "leaf_hash": stored.leaf_hash.hex(),
                    "kind": stored.kind,
                    "entry": entry_json,
                    "entry_bytes": base64.b64encode(stored.data).decode(),
                },
                "checkpoint": {"size": checkpoint.size, "note": checkpoint.note},
            },
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


class Deliveries:
    """Scans the log for the monitors' events and delivers them (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        store: LogStore,
        clock: Callable[[], float],
        *,
        timeout: float = 10.0,
        poll_interval: float = 0.2,
        schedule: Sequence[float] = SCHEDULE,
        hourly: float = HOURLY,
        give_up_after: float = GIVE_UP_AFTER,
        transport: httpx.AsyncBaseTransport | None = None,
        write_lock: Callable[[], AbstractContextManager[Connection]] | None = None,
    ):
        self.engine = engine
        self.store = store
        self.clock = clock
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.schedule = tuple(schedule)
        self.hourly = hourly
        self.give_up_after = give_up_after
        self.transport = transport
        self.write_lock = write_lock
        self.owner = uuid.uuid4().hex  # this process's name on the leases it takes
        self.lease = math.ceil(timeout) + 30
        self._task: asyncio.Task | None = None

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction. On SQLite (one writer at a time) it queues behind the
        log's write lock (`write_lock`, the sequencer's) instead of polling SQLite's
        busy handler, which would stall both the appends and these writes."""
        if self.write_lock is not None:
            with self.write_lock() as conn:
                yield conn
        else:
            with self.engine.connect().execution_options(**WRITE) as conn, conn.begin():
                yield conn

    # --- 1. entries -> events ---------------------------------------------------

    def scan(self, windows: int = 16) -> int:
        """Store the events of entries the monitors have not looked at, up to `windows`
        reads of SCAN_MAX entries; the number of events stored."""
        checkpoint = self.store.checkpoint()
        if checkpoint is None:
            return 0
        stored = 0
        for _ in range(windows):
            with self.engine.connect() as conn:
                behind = conn.execute(
                    select(_monitors.c.id, _monitors.c.name, _monitors.c.match, _monitors.c.cursor).where(
                        _monitors.c.cursor < checkpoint.size
                    )
                ).all()
            if not behind:
                break
            stored += self._scan_window(checkpoint, behind)
        return stored

    def _scan_window(self, checkpoint: StoredCheckpoint, behind: list) -> int:
        """Scan SCAN_MAX entries from the lowest cursor for the monitors whose
        cursor is in that window (a monitor further on waits for the next window:
        a cursor never moves back)."""
        start = min(m.cursor for m in behind)
        stop = min(checkpoint.size, start + SCAN_MAX)
        monitors = [m for m in behind if m.cursor < stop]
        entries = self._decoded(self.store.entries(start, stop))
        exchanges = self._exchanges(entries)
        events = self._events(entries)
        now = self.clock()
        stored = 0
        with self._writing() as conn:
            for monitor in monitors:
                moved = conn.execute(
                    update(_monitors)
                    .where(_monitors.c.id == monitor.id, _monitors.c.cursor == monitor.cursor)
                    .values(cursor=stop)
                ).rowcount
                if moved != 1:
                    continue  # deleted, or another process scanned it
                rule = _rule(monitor.name, monitor.match)
                rows = []
                for raw, entry in entries:
                    if raw.index < monitor.cursor or entry is None or rule is None:
                        continue
                    exchange = exchanges.get(entry.exchange_index) if isinstance(entry, UploadEntry) else None
                    if rule.matches(entry, exchange, events.get(raw.index, frozenset())):
                        rows.append(
                            {
                                "id": event_id(monitor.id, raw.index),
                                "monitor_id": monitor.id,
                                "entry_index": raw.index,
                                "body": event_body(monitor.id, monitor.name, raw, entry.to_json(), checkpoint, now),
                                "status": "pending",
                                "attempts": 0,
                                "created_at": int(now),
                                "next_attempt_at": int(now),
                                "lease_until": 0,
                            }
                        )
                if rows:
                    conn.execute(insert(_deliveries), rows)
                    stored += len(rows)
        return stored

    @staticmethod
    def _decoded(entries: list[StoredEntry]) -> list[tuple[StoredEntry, object]]:
        out = []
        for raw in entries:
            try:
                out.append((raw, decode(raw.data)))
            except EntryError as exc:  # never appended by pubtrail; the audit reports it
                log.error("webhooks: entry %d does not decode (%s); it matches no monitor", raw.index, exc)
                out.append((raw, None))
        return out

    def _events(self, entries: list[tuple[StoredEntry, object]]) -> dict[int, frozenset[str]]:
        """The watch events (`app.watch.events_of`) of the API-token uploads among `entries`:
        was a trusted publisher registered for the project when the upload was logged?"""
        out: dict[int, frozenset[str]] = {}
        wanted = [(raw.index, e) for raw, e in entries if isinstance(e, UploadEntry) and e.auth == "api_token"]
        if not wanted:
            return out
        with self.engine.connect() as conn:
            for index, entry in wanted:
                trusted = conn.execute(
                    select(_publishers.c.added_log_index).where(
                        _publishers.c.project == entry.project,
                        _publishers.c.added_log_index < index,
                        _publishers.c.removed_log_index.is_(None) | (_publishers.c.removed_log_index > index),
                    ).limit(1)
                ).first()
                out[index] = events_of(entry, trusted is not None)
        return out

    def _exchanges(self, entries: list[tuple[StoredEntry, object]]) -> dict[int, ExchangeEntry]:
        """The exchange entries that minted the tokens of the uploads among `entries`."""
        have = {raw.index: e for raw, e in entries if isinstance(e, ExchangeEntry)}
        wanted = {e.exchange_index for _, e in entries if isinstance(e, UploadEntry)} - set(have) - {None}
        for index, raw in self.store.entries_at(sorted(wanted)).items():
            try:
                entry = decode(raw.data)
            except EntryError:
                continue
            if isinstance(entry, ExchangeEntry):
                have[index] = entry
        return have

    # --- 2. events -> attempts ---------------------------------------------------

    def claim(self, limit: int = CLAIM_MAX) -> list[Attempt]:
        """Lease up to `limit` due attempts for this process."""
        now = int(self.clock())
        due = (
            (_deliveries.c.status == "pending")
            & (_deliveries.c.next_attempt_at <= now)
            & (_deliveries.c.lease_until <= now)
        )
        with self.engine.connect() as conn:
            candidates = conn.execute(
                select(
                    _deliveries.c.id, _deliveries.c.body, _deliveries.c.attempts, _deliveries.c.created_at,
                    _monitors.c.webhook_url, _monitors.c.secret,
                )
                .join(_monitors, _monitors.c.id == _deliveries.c.monitor_id)
                .where(due)
                .order_by(_deliveries.c.next_attempt_at, _deliveries.c.id)
                .limit(limit)
            ).all()
        if not candidates:
            return []
        claimed = []
        with self._writing() as conn:
            for c in candidates:
                won = conn.execute(
                    update(_deliveries)
                    .where(_deliveries.c.id == c.id, due)
                    .values(lease_owner=self.owner, lease_until=now + self.lease)
                ).rowcount
                if won == 1:
                    claimed.append(Attempt(c.id, c.webhook_url, c.secret, bytes(c.body), c.attempts, c.created_at))
        return claimed

    def record(self, attempt: Attempt, error: str | None) -> None:
        """Record one attempt's outcome (`error` None: delivered); see `record_all`."""
        self.record_all([(attempt, error)])

    def record_all(self, outcomes: Sequence[tuple[Attempt, str | None]]) -> None:
        """Record attempts' outcomes in one transaction, each only if this process
        still holds its lease (else another process made the attempt again)."""
        if not outcomes:
            return
        now = int(self.clock())
        with self._writing() as conn:
            for attempt, error in outcomes:
                made = attempt.attempts + 1
                if error is None:
                    values = {"status": "delivered", "delivered_at": now, "last_error": None}
                else:
                    delay = self.schedule[made - 1] if made <= len(self.schedule) else self.hourly
                    next_at = now + int(delay)
                    gave_up = next_at > attempt.created_at + self.give_up_after
                    values = {"status": "failed" if gave_up else "pending", "next_attempt_at": next_at,
                              "last_error": error[:500]}
                    log.warning("webhook %s attempt %d to %s failed: %s%s", attempt.id, made, attempt.url, error,
                                " (giving up)" if gave_up else "")
                conn.execute(
                    update(_deliveries)
                    .where(_deliveries.c.id == attempt.id, _deliveries.c.lease_owner == self.owner)
                    .values(attempts=made, lease_owner=None, lease_until=0, **values)
                )

    def release(self) -> None:
        """Give up this process's leases (attempts not made), so another process retries them at once."""
        with self._writing() as conn:
            conn.execute(
                update(_deliveries)
                .where(_deliveries.c.lease_owner == self.owner, _deliveries.c.status == "pending")
                .values(lease_owner=None, lease_until=0)
            )

    def _headers(self, attempt: Attempt) -> dict[str, str]:
        headers = sign_headers(attempt.secret, attempt.id, attempt.body, timestamp=int(self.clock()))
        headers["content-type"] = "application/json"
        headers["user-agent"] = "pubtrail-webhooks"
        return headers

    @staticmethod
    def _outcome(response: httpx.Response) -> str | None:
        return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"

    async def _send(self, client: httpx.AsyncClient, attempt: Attempt) -> str | None:
        try:
            return self._outcome(await client.post(attempt.url, content=attempt.body, headers=self._headers(attempt)))
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}".rstrip(": ")

    # --- running ------------------------------------------------------------------

    async def run_once(self, client: httpx.AsyncClient) -> int:
        """One pass: scan, claim, send concurrently, record. The number of attempts made."""
        attempts = await asyncio.to_thread(self._scan_and_claim)
        if not attempts:
            return 0
        outcomes = await asyncio.gather(*(self._send(client, a) for a in attempts))
        await asyncio.to_thread(self.record_all, list(zip(attempts, outcomes)))
        return len(attempts)

    def _scan_and_claim(self) -> list[Attempt]:
        self.scan()
        return self.claim()

    def run_once_sync(self) -> int:
        """`run_once` for a scheduler job (blocking; its own HTTP client)."""
        self.scan()
        attempts = self.claim()
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            for attempt in attempts:
                try:
                    error = self._outcome(client.post(attempt.url, content=attempt.body,
                                                      headers=self._headers(attempt)))
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}".rstrip(": ")
                self.record(attempt, error)
        return len(attempts)

    async def run_forever(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, transport=self.transport) as client:
            while True:
                try:
                    busy = await self.run_once(client)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a database hiccup must not end deliveries
                    log.exception("webhook delivery pass failed")
                    busy = 0
                if busy < CLAIM_MAX:
                    await asyncio.sleep(self.poll_interval)

    async def start(self) -> None:
        """Start the worker on the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self.run_forever(), name="pubtrail-webhooks")

    async def stop(self) -> None:
        """Stop the worker and release its leases (an attempt cut short is made again)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        try:
            await asyncio.to_thread(self.release)
        except Exception:  # the leases then expire on their own
            log.exception("could not release webhook leases")


def _rule(name: str, match: str) -> Rule | None:
    try:
        return parse_rule({"name": name, **json.loads(match)})
    except (WatchRuleError, ValueError) as exc:  # stored by create(), which parsed it; a later version may disagree
        log.error("webhooks: monitor %r has a rule this version cannot read: %s", name, exc)
        return None
