"""The log asks witnesses to cosign its checkpoints (C2SP tlog-witness, as a client).

A background task (never the sequencer's path: appends neither wait for it
nor notice it) looks at the latest signed checkpoint every ``poll_interval``
seconds. When it is newer than the last round's, one round submits that same
checkpoint to every configured witness concurrently, each request bounded by
``timeout``: body ``old <size>``, the consistency proof from the size that
witness last cosigned, a blank line and the signed note. A witness's answer
is verified (log signature, its own key) before its cosignature line is
stored in ``witness_cosignature``. A 409 tells the size the witness knows
(after a restart of either side); the request is made again once from there.
A witness that fails (down, slow, refusing) is skipped with exponential
back-off (``base_backoff`` doubling up to ``max_backoff`` seconds).

A witness configured without a URL is push-only (a `pubtrail monitor
--cosign`, for one): the log never calls it; it submits its cosignatures
itself (:func:`accept_cosignatures`, ``POST /api/v1/log/cosignatures``), and
they are verified and stored like pulled ones.

:meth:`Witnessing.witnessed` is what ``/checkpoint`` serves: the largest
checkpoint with cosignatures from at least ``required`` distinct witnesses,
with every cosignature line gathered for it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from app.errors import BadRequest, Conflict, Forbidden, NotFound, PubtrailError
from app.services.log_reader import LogReader
from app.storage.log_store import StoredCheckpoint
from app.storage.tables import WitnessCosignature
from app.tlog import Checkpoint, TlogError, note
from app.tlog.cosignature import (
    Cosignature,
    CosignatureVerifier,
    parse_cosignature_lines,
    signature_lines,
    timestamp_of,
    verify_cosignatures,
    with_signature_lines,
)
from app.tlog.errors import InvalidSignatureError, UnverifiedNoteError

log = logging.getLogger(__name__)

SIZE_TYPE = "text/x.tlog.size"


class NotYetWitnessed(PubtrailError):
    """No checkpoint has the cosignatures the policy requires yet (HTTP 503)."""

    status_code = 503


class WitnessConfigError(ValueError):
    """``PUBTRAIL_WITNESSES`` is not a JSON list of ``{"url", "key"}`` (or ``{"key"}``) with witness verifier keys."""


@dataclass(frozen=True)
class WitnessSpec:
    """One configured witness: its submission URL prefix (None: push-only) and its verifier key string."""

    url: str | None
    key: str

    @property
    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.key)


def parse_witnesses(text: str | None) -> tuple[WitnessSpec, ...]:
    """Parse ``PUBTRAIL_WITNESSES``; raise :class:`WitnessConfigError` saying what is wrong."""
    if not text or not text.strip():
        return ()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WitnessConfigError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, list):
        raise WitnessConfigError('must be a JSON list of {"url": ..., "key": ...}')
    specs = []
    for item in value:
        if not isinstance(item, dict) or set(item) not in ({"url", "key"}, {"key"}) \
                or not all(isinstance(v, str) for v in item.values()):
            raise WitnessConfigError(
                f'each witness must be {{"url": <string>, "key": <string>}} (or {{"key": <string>}} for a '
                f"push-only witness), got {item!r}"
            )
        if "url" in item and not item["url"].startswith(("http://", "https://")):
            raise WitnessConfigError(f"witness url {item['url']!r} is not http(s)")
        try:
            verifier = CosignatureVerifier(item["key"])
        except TlogError as exc:
            raise WitnessConfigError(f"witness key {item['key']!r}: {exc}") from exc
        if any(CosignatureVerifier(s.key).name == verifier.name for s in specs):
            raise WitnessConfigError(f"two witnesses are named {verifier.name!r}")
        specs.append(WitnessSpec(item["url"].rstrip("/") if "url" in item else None, item["key"]))
    return tuple(specs)


class _Peer:
    """What the log knows of one witness: the size it last cosigned and when to try again."""

    def __init__(self, spec: WitnessSpec) -> None:
        self.spec = spec
        self.verifier = spec.verifier
        self.id = f"{self.verifier.name}+{self.verifier.key_id:08x}"
        self.known: int | None = None  # None: ask with old 0 and learn from the 409
        self.failures = 0
        self.retry_at = 0.0


class Witnessing:
    """Gathers cosignatures for the log's checkpoints; see the module docstring.

    ``clock`` (seconds) dates stored cosignatures and schedules back-off;
    ``transport`` replaces the network in tests.
    """

    def __init__(
        self,
        engine: Engine,
        reader: LogReader,
        log_verifier: note.Verifier,
        witnesses: Sequence[WitnessSpec],
        required: int,
        clock: Callable[[], float],
        *,
        timeout: float = 5.0,
        poll_interval: float = 0.5,
        base_backoff: float = 1.0,
        max_backoff: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not 0 <= required <= len(witnesses):
            raise ValueError(f"required cosignatures {required} must be between 0 and {len(witnesses)}")
        self.engine = engine
        self.reader = reader
        self.log_verifier = log_verifier
        self.peers = [_Peer(spec) for spec in witnesses]
        self.required = required
        self.clock = clock
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.transport = transport
        self._task: asyncio.Task | None = None
        self._round_size = -1
        self._load_known()

    def _load_known(self) -> None:
        with Session(self.engine) as session:
            rows = session.exec(
                select(WitnessCosignature.witness, func.max(WitnessCosignature.size)).group_by(WitnessCosignature.witness)
            ).all()
        known = {witness: size for witness, size in rows}
        for peer in self.peers:
            peer.known = known.get(peer.id)

    # --- the background task ---------------------------------------------------------

    async def start(self) -> None:
        if self._task is None and any(peer.spec.url for peer in self.peers):
            self._task = asyncio.create_task(self._run(), name="witnessing")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
            while True:
                try:
                    await self.round(client)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - a failed round must not end witnessing
                    log.exception("witnessing round failed")
                await asyncio.sleep(self.poll_interval)

    async def round(self, client: httpx.AsyncClient) -> None:
        """Submit the latest checkpoint to every witness not backing off that lacks a cosignature for it."""
        latest = await asyncio.to_thread(self.reader.latest)
        now = self.clock()
        due = [p for p in self.peers if p.spec.url and p.retry_at <= now and p.known != latest.size]
        if not due:
            return
        await asyncio.gather(*(self._submit(client, peer, latest) for peer in due))

    async def _submit(self, client: httpx.AsyncClient, peer: _Peer, checkpoint: StoredCheckpoint) -> None:
        try:
            for _ in range(2):  # a 409 teaches the witness's size; then once more from there
                old = peer.known or 0
                if old > checkpoint.size:
                    return  # the witness saw a larger checkpoint (another process of this log submitted it)
                proof = await asyncio.to_thread(self._proof, old, checkpoint.size)
                body = f"old {old}\n{proof}\n{checkpoint.note}".encode()
                response = await client.post(peer.spec.url + "/add-checkpoint", content=body)
                if response.status_code == 409 and response.headers.get("content-type", "").startswith(SIZE_TYPE):
                    text = response.text
                    if not text.endswith("\n") or not text[:-1].isdigit():
                        raise ValueError(f"malformed 409 answer {text[:40]!r}")
                    known = int(text[:-1])
                    if known == peer.known:
                        raise ValueError(f"409 at its own size {known}: the witness cosigned another root there")
                    peer.known = known
                    continue
                if response.status_code != 200:
                    raise ValueError(f"answered {response.status_code}: {response.text[:200]!r}")
                await asyncio.to_thread(self._store, peer, checkpoint, response.text)
                peer.known = checkpoint.size
                peer.failures = 0
                peer.retry_at = 0.0
                return
            raise ValueError("conflicting sizes twice in a row")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure backs off this witness only
            peer.failures += 1
            delay = min(self.max_backoff, self.base_backoff * 2 ** (peer.failures - 1))
            peer.retry_at = self.clock() + delay
            log.warning("witness %s at %s: %s (next try in %.0f s)", peer.id, peer.spec.url, exc or type(exc).__name__, delay)

    def _proof(self, old: int, size: int) -> str:
        if old == 0 or old == size:
            return ""
        hashes = self.reader.consistency(old, size).hashes
        return "".join(base64.b64encode(h).decode("ascii") + "\n" for h in hashes)

    def _store(self, peer: _Peer, checkpoint: StoredCheckpoint, answer: str) -> None:
        lines = parse_cosignature_lines(answer)
        found = verify_cosignatures(with_signature_lines(checkpoint.note, lines), [self.log_verifier], [peer.verifier])
        if not found:
            raise ValueError("the answer holds no cosignature by the witness's key")
        self._save(checkpoint.size, peer, found[0])

    def _save(self, size: int, peer: _Peer, cosignature: Cosignature) -> None:
        """Store a verified cosignature of the log's checkpoint at ``size`` (a later one by the same
        witness for the same size replaces it)."""
        row = {
            "size": size, "witness": peer.id, "line": cosignature.line,
            "timestamp": cosignature.timestamp, "received_at": int(self.clock()),
        }
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert(WitnessCosignature).values(**row)
        statement = statement.on_conflict_do_update(
            index_elements=["size", "witness"], set_={k: row[k] for k in ("line", "timestamp", "received_at")}
        )
        with self.engine.begin() as conn:
            conn.execute(statement)

    # --- cosignatures pushed to the log -------------------------------------------------

    def cosigners(self, size: int) -> list[str]:
        """The configured witnesses (``name+keyid``) whose cosignature of the checkpoint at ``size`` is stored."""
        with Session(self.engine) as session:
            return list(session.exec(
                select(WitnessCosignature.witness)
                .where(WitnessCosignature.size == size, WitnessCosignature.witness.in_([p.id for p in self.peers]))
                .order_by(WitnessCosignature.witness)
            ).all())

    # --- what /checkpoint serves -------------------------------------------------------

    def witnessed(self) -> str | None:
        """The largest checkpoint cosigned by at least ``required`` configured witnesses, with all
        their lines; None if there is none yet. With ``required`` 0: the latest checkpoint, with
        whatever cosignatures it has."""
        if self.required == 0:
            latest = self.reader.latest()
            lines = self._lines(latest.size)
            return with_signature_lines(latest.note, lines) if lines else latest.note
        with Session(self.engine) as session:
            size = session.exec(
                select(WitnessCosignature.size)
                .where(WitnessCosignature.witness.in_([peer.id for peer in self.peers]))
                .group_by(WitnessCosignature.size)
                .having(func.count() >= self.required)
                .order_by(WitnessCosignature.size.desc())
                .limit(1)
            ).first()
        if size is None:
            return None
        return with_signature_lines(self.reader.checkpoint_at(size).note, self._lines(size))

    def _lines(self, size: int) -> list[str]:
        with Session(self.engine) as session:
            return list(session.exec(
                select(WitnessCosignature.line)
                .where(WitnessCosignature.size == size, WitnessCosignature.witness.in_([p.id for p in self.peers]))
                .order_by(WitnessCosignature.witness)
            ).all())


def accept_cosignatures(witnessing: Witnessing | None, body: bytes) -> dict:
    """Store the cosignatures a witness submits (``POST /api/v1/log/cosignatures``).

    ``body`` is a signed note: a checkpoint body the log signed, a blank
    line, and signature lines: one or more cosignatures by configured
    witnesses (push-only or not), and optionally the log's own. Checked in
    this order, each refusal storing nothing:

    - 400 (BadRequest): not UTF-8, not a note, not a checkpoint body, or no
      cosignature line by a configured witness;
    - 403 (Forbidden): a signature line by a key the log does not trust as a
      witness (every key, without ``PUBTRAIL_WITNESSES``: ``witnessing`` is
      None), or one that does not verify;
    - 409 (Conflict): the log never signed this checkpoint body (another
      origin, a size it signed no checkpoint at, or another root there).

    Idempotent: the same cosignature again answers the same. Returns
    ``{"tree_size", "accepted", "cosigned_by"}`` (witness ids ``name+keyid``:
    those of the body, and all the log now holds for that size), so they
    count toward ``required`` and ``/checkpoint`` serves them.
    """
    try:
        text = body.decode("utf-8")
        checkpoint_text, _lines = signature_lines(text)
        checkpoint = Checkpoint.parse(checkpoint_text)
    except UnicodeDecodeError as exc:
        raise BadRequest("the body must be a checkpoint note in UTF-8") from exc
    except TlogError as exc:
        raise BadRequest(f"the body is not a checkpoint note with signature lines: {exc}") from exc
    if witnessing is None:
        raise Forbidden("this log trusts no witnesses (PUBTRAIL_WITNESSES is empty)")
    peers = {(peer.verifier.name, peer.verifier.key_id): peer for peer in witnessing.peers}
    try:
        opened = note.open_note(text, [witnessing.log_verifier, *(peer.verifier for peer in witnessing.peers)])
    except UnverifiedNoteError as exc:
        raise Forbidden(_untrusted(exc.unverified)) from exc
    except InvalidSignatureError as exc:
        raise Forbidden(f"a signature does not verify: {exc}") from exc
    except TlogError as exc:
        raise BadRequest(f"the body is not a checkpoint note with signature lines: {exc}") from exc
    if opened.unverified:
        raise Forbidden(_untrusted([(sig.name, sig.key_id) for sig in opened.unverified]))
    cosignatures = [
        (peers[(sig.name, sig.key_id)], Cosignature(sig.name, sig.key_id, timestamp_of(sig.base64),
                                                    f"\u2014 {sig.name} {sig.base64}\n"))
        for sig in opened.signatures if (sig.name, sig.key_id) in peers
    ]
    if not cosignatures:
        raise BadRequest("the body carries no cosignature line, only the log's own signature")
    reader = witnessing.reader
    if checkpoint.origin != reader.origin:
        raise Conflict(f"this log ({reader.origin}) never signed a checkpoint of origin {checkpoint.origin!r}")
    try:
        stored = reader.checkpoint_at(checkpoint.size)
    except NotFound as exc:
        raise Conflict(f"this log never signed a checkpoint of size {checkpoint.size}: {exc.message}") from exc
    if signature_lines(stored.note)[0] != checkpoint_text:
        raise Conflict(
            f"this log signed size {checkpoint.size} with root {stored.root_hash.hex()}, not "
            f"{checkpoint.root_hash.hex()}: the witness saw another log under this origin and key"
        )
    for peer, cosignature in cosignatures:
        witnessing._save(checkpoint.size, peer, cosignature)
    return {
        "tree_size": checkpoint.size,
        "accepted": sorted(peer.id for peer, _ in cosignatures),
        "cosigned_by": witnessing.cosigners(checkpoint.size),
    }


def _untrusted(keys) -> str:
    names = ", ".join(f"{name}+{key_id:08x}" for name, key_id in keys)
    return f"signed by keys this log does not trust as witnesses (PUBTRAIL_WITNESSES): {names}"
