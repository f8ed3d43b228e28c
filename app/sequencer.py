"""Sequencer: group commit of log appends, one signed checkpoint per batch.

`await sequencer.append(entry)` returns a `Receipt` only after the entry's
batch is committed (durable) and a checkpoint covering it is signed and
stored: acknowledged means durable and included.

The sequencer task collects a batch (`_collect`: whatever is queued, closing
as soon as the event loop has nothing more to add), then runs it in a worker
thread (`_commit_and_prove`):

1. open a write transaction (SQLite `BEGIN IMMEDIATE`, PostgreSQL
   `SELECT ... FOR UPDATE` on the state row): one writer per log, across
   processes and hosts;
2. check that the right-edge tiles hash to the stored root (another process
   may have appended since our last batch; tiles already in this process's
   cache are not re-read, so damage to older tiles is found by the full
   audit, `pubtrail audit`, not here);
3. give each entry its index; an entry's projection (the query-table rows it
   implies) runs in a SAVEPOINT and may refuse that entry alone;
4. append the leaf hashes, check the new tree is consistent with the old
   root, sign the new checkpoint, write entries + tiles + checkpoint + state,
   commit;
5. after the commit, compute every entry's inclusion proof from the batch's
   own new tiles (`app.tlog.BatchProofs`: the proofs of one batch share
   almost all their nodes, so they are read off the expanded tiles once
   instead of being planned and fetched entry by entry). The receipts are
   handed to their waiters in the event loop, all at once.

Any failure before the commit fails the whole batch and drops the tile cache
(it may hold tiles that were never committed).

Halting: `halt(reason)` (called by the self-audit when stored tiles, entries
or checkpoints disagree) writes the `log_halt` row. Every batch of every
process reads that row under the write lock (step 1) and, while it exists,
fails with `LogHalted(reason)`: nothing more is signed, and every waiting
append hears why. Only `resume()` clears it, which `pubtrail audit` calls
when the full audit finds nothing wrong.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from app import tlog
from app.errors import PubtrailError
from app.storage.log_store import LogStore, NewEntry, StoredCheckpoint
from app.storage.tables import LogHalt
from app.tlog import TILE_WIDTH, BatchProofs, Checkpoint, TiledTree, TlogProof, note

log = logging.getLogger("pubtrail.sequencer")

Projection = Callable[[Connection, int], object]
"""Writes the query rows an entry implies, given the open transaction and the
entry's index. Its return value is handed back in the receipt's `projected`;
raising refuses this entry only (the exception reaches its caller)."""


class LogIntegrityError(RuntimeError):
    """Stored tiles, state and checkpoints disagree: the log refuses to sign."""


class LogHalted(PubtrailError):
    """Signing is stopped until an operator has audited the log (HTTP 503); the
    message says why."""

    status_code = 503


_halt = LogHalt.__table__
_HALT_READ = select(_halt.c.reason).where(_halt.c.id == 1)


def _halt_insert(dialect):
    return dialect.insert(_halt).on_conflict_do_nothing(index_elements=[_halt.c.id]).returning(_halt.c.id)


_HALT_INSERT_SQLITE = _halt_insert(sqlite)
_HALT_INSERT_POSTGRES = _halt_insert(postgresql)


@dataclass(frozen=True)
class Receipt:
    """Proof that an entry is in the log: its index, leaf hash, an inclusion
    proof at `tree_size`, and the signed checkpoint of that size."""

    index: int
    leaf_hash: bytes
    tree_size: int
    root_hash: bytes
    inclusion_proof: list[bytes]
    checkpoint: str
    projected: object = None

    def tlog_proof(self) -> str:
        """The receipt as C2SP tlog-proof text."""
        return TlogProof(
            index=self.index, hashes=list(self.inclusion_proof), checkpoint=self.checkpoint, extra=None
        ).to_text()

    def to_json(self) -> dict:
        return {
            "index": self.index,
            "leaf_hash": self.leaf_hash.hex(),
            "inclusion_proof": {
                "index": self.index,
                "tree_size": self.tree_size,
                "root_hash": self.root_hash.hex(),
                "hashes": [h.hex() for h in self.inclusion_proof],
            },
            "checkpoint": self.checkpoint,
            "tlog_proof": self.tlog_proof(),
        }


@dataclass(slots=True)
class _Pending:
    kind: str
    data: bytes
    projection: Projection | None
    logged_at: int
    future: asyncio.Future
    leaf_hash: bytes = b""
    index: int = -1
    projected: object = None
    error: BaseException | None = None


class Sequencer:
    """Batches concurrent appends into one transaction and one checkpoint.

    `clock` returns Unix time (injected so tests control it); `signer` is the
    log's note signer, whose name must be the log's origin.
    """

    def __init__(
        self,
        store: LogStore,
        signer: note.Signer,
        verifier: note.Verifier,
        origin: str,
        *,
        clock: Callable[[], float] = time.time,
        batch_window: float = 0.010,
        batch_max: int = 1000,
        on_batch: Callable[[int, float], None] | None = None,
    ):
        if signer.name != origin:
            raise ValueError(f"signing key is for {signer.name!r}, but the log origin is {origin!r}")
        self.store = store
        self.signer = signer
        self.verifier = verifier
        self.origin = origin
        self.clock = clock
        self.batch_window = batch_window
        self.batch_max = max(1, batch_max)
        self.on_batch = on_batch
        self.tree = TiledTree(store)
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task | None = None
        self._write_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    # --- lifecycle -----------------------------------------------------------------

    def initialize(self) -> None:
        """Create the log on first start (signing the empty checkpoint), then
        check that stored state, tiles and the latest checkpoint agree.

        Raises LogIntegrityError if they do not: the service must not start.
        Safe when several processes start at once on one database: creation
        and the check both run under the log's write lock.
        """
        with self._write_lock, self.store.write_connection() as conn:
            with conn.begin():
                if self.store.lock_state(conn) is None:
                    self._create(conn)
        self.check_integrity()

    def _create(self, conn) -> None:
        # PostgreSQL cannot lock a row that does not exist yet: lock the state
        # table so that processes creating the log at once queue here, then
        # re-read (another may have created it meanwhile).
        if not self.store.is_sqlite:
            self.store.lock_state_table(conn)
            if self.store.lock_state(conn) is not None:
                return
        self.store.create_state(conn, self.origin, tlog.EMPTY_ROOT)
        signed = self._sign(0, tlog.EMPTY_ROOT)
        self.store.write_batch(
            conn,
            first_index=0,
            entries=[],
            tiles=[],
            new_size=0,
            new_root=tlog.EMPTY_ROOT,
            checkpoint_note=signed,
            signed_at=int(self.clock()),
        )
        log.info("created log %s", self.origin)

    def check_integrity(self) -> None:
        """Verify origin, tiles, entry count and latest checkpoint against each other.

        Precisely: the latest checkpoint verifies with this service's key and
        matches the state row (origin, size, root); the right-edge tiles hash
        to that root; there are exactly `size` entries; and the newest entry
        bundle's entries (up to 256) hash to their leaves. Older tiles and
        entries are checked by the full audit, and each entry again when served.

        Holds the log's write lock while it reads: another process appending
        meanwhile would otherwise make the entry count and checkpoint disagree.
        """
        with self._write_lock, self.store.write_connection() as conn:
            with conn.begin():
                self.store.lock_state(conn)
                self._check_locked()

    @contextmanager
    def locked(self) -> Iterator[Connection]:
        """Hold the log's write lock (this process's and the database's) for the block:
        nothing is appended meanwhile, by this process or any other. Yields the
        lock's connection, in a transaction that commits when the block ends."""
        with self._write_lock, self.store.write_connection() as conn:
            with conn.begin():
                self.store.lock_state(conn)
                yield conn

    def _check_locked(self) -> None:
        state = self.store.state()
        if state is None:
            raise LogIntegrityError("the log has no state row; run initialize()")
        if state.origin != self.origin:
            raise LogIntegrityError(
                f"the database holds log {state.origin!r} but this service is configured for "
                f"{self.origin!r}; refusing to sign"
            )
        latest = self.store.checkpoint()
        if latest is None or latest.size != state.size or latest.root_hash != state.root_hash:
            raise LogIntegrityError(
                f"latest stored checkpoint ({latest.size if latest else None}) does not match the "
                f"log state (size {state.size}); refusing to sign"
            )
        try:
            text, _ = note.open(latest.note, [self.verifier])
        except tlog.TlogError as exc:
            raise LogIntegrityError(
                f"latest checkpoint does not verify with this service's key: {exc}; refusing to sign"
            ) from exc
        parsed = Checkpoint.parse(text)
        if (parsed.origin, parsed.size, parsed.root_hash) != (self.origin, state.size, state.root_hash):
            raise LogIntegrityError("latest checkpoint body does not match the log state; refusing to sign")
        root = self.tree.root(state.size)
        if root != state.root_hash:
            raise LogIntegrityError(
                f"stored tiles hash to {root.hex()} at size {state.size}, but the signed checkpoint "
                f"says {state.root_hash.hex()}; refusing to sign"
            )
        count = self.store.entry_count()
        if count != state.size:
            raise LogIntegrityError(
                f"the log has {count} entries but its checkpoint says {state.size}; refusing to sign"
            )
        self._check_newest_entries(state.size)

    def _check_newest_entries(self, size: int) -> None:
        """The entries of the newest entry bundle (up to 256) hash to their stored
        leaf hashes and to their leaves in the level-0 tile (older ones: `pubtrail audit`)."""
        if size == 0:
            return
        first = (size - 1) // TILE_WIDTH * TILE_WIDTH
        entries = self.store.entries(first, size)
        if [entry.index for entry in entries] != list(range(first, size)):
            raise LogIntegrityError(f"entries {first}..{size - 1} are not all in storage; refusing to sign")
        leaves = self.tree.node_hashes([(0, index) for index in range(first, size)], size)
        for entry in entries:
            if not tlog.leaf_hash(entry.data) == entry.leaf_hash == leaves[(0, entry.index)]:
                raise LogIntegrityError(
                    f"entry {entry.index} does not hash to its leaf hash in storage and in the tiles; "
                    "refusing to sign"
                )

    async def start(self) -> None:
        if self._task is None:
            self._queue = asyncio.Queue()
            # A thread of its own: batches never wait behind other work in the loop's
            # default executor (e.g. parsing large uploads).
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pubtrail-sequencer")
            self._task = asyncio.create_task(self._run(), name="pubtrail-sequencer")

    async def stop(self) -> None:
        """Stop after finishing the batch in flight; waiters still queued get an error."""
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None
        self._executor.shutdown(wait=True)
        queue, self._queue = self._queue, None  # later appends fail at once instead of waiting forever
        while queue is not None and not queue.empty():
            pending = queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(RuntimeError("the log is shutting down"))

    # --- halting ---------------------------------------------------------------------

    def halt(self, reason: str) -> bool:
        """Stop signing, in every process that shares this database, until `resume()`.

        Returns True if this call halted the log, False if it was already
        halted (the first reason is kept). Batches of every process read the
        halt under the write lock, so no checkpoint is signed after this returns.
        """
        with self._write_lock, self.store.write_connection() as conn, conn.begin():
            statement = _HALT_INSERT_SQLITE if self.store.is_sqlite else _HALT_INSERT_POSTGRES
            inserted = conn.execute(statement, {"id": 1, "reason": reason, "at": int(self.clock())}).first()
        if inserted is not None:
            log.error("log halted, no checkpoint will be signed: %s", reason)
        return inserted is not None

    def halted(self) -> str | None:
        """Why signing is stopped, or None while the log signs."""
        with self.store.engine.connect() as conn:
            return conn.execute(_HALT_READ).scalar()

    def resume(self) -> bool:
        """Sign again (after `pubtrail audit` found the log sound); True if it was halted."""
        with self._write_lock, self.store.write_connection() as conn, conn.begin():
            removed = conn.execute(delete(_halt)).rowcount
        if removed:
            log.warning("log resumed: checkpoints are signed again")
        return bool(removed)

    # --- appending -------------------------------------------------------------------

    async def append(self, data: bytes, *, kind: str, projection: Projection | None = None) -> Receipt:
        """Append one entry; return its receipt once durable and included."""
        if self._queue is None:
            raise RuntimeError("sequencer is not started")
        _check_entry_size(data)
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(kind, data, projection, int(self.clock()), future))  # unbounded
        return await future

    def append_batch_sync(self, items: Sequence[tuple[str, bytes]]) -> list[Receipt]:
        """Append entries in one batch from synchronous code (CLI, rebuild tools, tests)."""
        for _, data in items:
            _check_entry_size(data)
        loop_less = [_Pending(kind, data, None, int(self.clock()), _SyncFuture()) for kind, data in items]
        self._commit_batch(loop_less)
        return [p.future.result() for p in loop_less]

    async def _collect(self, queue: asyncio.Queue) -> list[_Pending]:
        """The next batch: everything queued now, plus whatever arrives while
        the loop keeps finding new entries, up to `batch_window` and `batch_max`.

        A batch closes as soon as two passes of the event loop bring nothing
        new (nobody else is about to append: do not make this batch wait longer).
        """
        loop = asyncio.get_running_loop()
        batch = [await queue.get()]
        deadline = loop.time() + self.batch_window
        try:
            while len(batch) < self.batch_max:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                if loop.time() >= deadline:
                    break
                await asyncio.sleep(0)  # let appenders that are ready run
                if queue.empty():
                    await asyncio.sleep(0)
                    if queue.empty():
                        break
        except asyncio.CancelledError:
            _fail(batch, RuntimeError("the log is shutting down"))
            raise
        return batch

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect(queue)
            started = time.perf_counter()
            work = asyncio.ensure_future(loop.run_in_executor(self._executor, self._commit_and_prove, batch))
            try:
                # shielded: stop() cancels this task, but a batch in flight always
                # finishes (its commit may already be durable) before the task ends
                outcomes = await asyncio.shield(work)
            except asyncio.CancelledError:
                try:
                    outcomes = await work
                except BaseException as exc:  # noqa: BLE001
                    _fail(batch, exc)
                else:
                    _deliver(outcomes)
                raise
            except BaseException as exc:  # noqa: BLE001 - every waiter must hear about it
                if not isinstance(exc, LogHalted):  # the halt was logged once, when it began
                    log.exception("log batch of %d failed", len(batch))
                _fail(batch, exc)
                continue
            _deliver(outcomes)
            if self.on_batch:
                self.on_batch(len(batch), time.perf_counter() - started)

    def _commit_batch(self, batch: list[_Pending]) -> None:
        """Run one batch to commit, then resolve every pending entry of it (synchronous callers)."""
        _deliver(self._commit_and_prove(batch))

    def _commit_and_prove(self, batch: list[_Pending]) -> list[tuple[_Pending, Receipt | None, BaseException | None]]:
        """Commit one batch, then compute its receipts; resolves nothing (see `_deliver`)."""
        return self._receipts(batch, self._commit_only(batch))

    def _commit_only(self, batch: list[_Pending]) -> tuple[int, bytes, str, BatchProofs] | None:
        """Commit one batch (entries, tiles, signed checkpoint); nothing is resolved yet."""
        with self._write_lock:
            try:
                return self._write(batch)
            except BaseException:
                self.tree = TiledTree(self.store)  # may hold tiles of a batch that never committed
                raise

    @staticmethod
    def _receipts(
        batch: list[_Pending], committed: tuple[int, bytes, str, BatchProofs] | None
    ) -> list[tuple[_Pending, Receipt | None, BaseException | None]]:
        """Each pending entry of a committed batch with its receipt or its own error.

        Reads nothing shared: it may run while the next batch commits.
        """
        if committed is None:
            return [(pending, None, pending.error) for pending in batch]
        size, root, signed, batch_proofs = committed
        proofs = batch_proofs.proofs()
        first = batch_proofs.first
        outcomes = []
        for pending in batch:
            if pending.error is not None:
                outcomes.append((pending, None, pending.error))
                continue
            receipt = Receipt(
                index=pending.index,
                leaf_hash=pending.leaf_hash,
                tree_size=size,
                root_hash=root,
                inclusion_proof=proofs[pending.index - first],
                checkpoint=signed,
                projected=pending.projected,
            )
            outcomes.append((pending, receipt, None))
        return outcomes

    def _write(self, batch: list[_Pending]) -> tuple[int, bytes, str, BatchProofs] | None:
        with self.store.write_connection() as conn, conn.begin():
            state = self.store.lock_state(conn)
            if state is None:
                raise LogIntegrityError("the log has no state row; run initialize()")
            reason = conn.execute(_HALT_READ).scalar()
            if reason is not None:
                raise LogHalted(f"the log is halted and signs nothing: {reason}")
            old_size = state.size
            if self.tree.root(old_size) != state.root_hash:
                raise LogIntegrityError(
                    f"stored tiles do not hash to the stored root at size {old_size}; refusing to sign"
                )
            accepted: list[_Pending] = []
            for pending in batch:
                pending.index = old_size + len(accepted)
                if pending.projection is not None:
                    savepoint = conn.begin_nested()
                    try:
                        pending.projected = pending.projection(conn, pending.index)
                    except Exception as exc:  # noqa: BLE001 - refused entries report their own error
                        savepoint.rollback()
                        pending.error = exc
                        pending.index = -1
                        continue
                    savepoint.commit()
                pending.leaf_hash = tlog.leaf_hash(pending.data)
                accepted.append(pending)
            if not accepted:
                return None
            new_size = old_size + len(accepted)
            tiles = self.tree.append(old_size, [p.leaf_hash for p in accepted])
            self.tree.remember(tiles)
            new_root = self.tree.root(new_size)
            if old_size:
                proof = self.tree.consistency_proof(old_size, new_size)
                try:
                    tlog.verify_consistency(old_size, new_size, proof, state.root_hash, new_root)
                except tlog.ProofError as exc:
                    raise LogIntegrityError(f"new tree is not consistent with the old one: {exc}") from exc
            batch_proofs = BatchProofs(tiles, old_size, new_size, self.tree.node_hashes)
            signed = self._sign(new_size, new_root)
            signed_at = int(self.clock())
            self.store.write_batch(
                conn,
                first_index=old_size,
                entries=[NewEntry(p.kind, p.leaf_hash, p.data, p.logged_at) for p in accepted],
                tiles=tiles,
                new_size=new_size,
                new_root=new_root,
                checkpoint_note=signed,
                signed_at=signed_at,
            )
        # committed: readers in this process may now see it without asking the database
        self.store.published(StoredCheckpoint(new_size, new_root, signed, signed_at))
        return new_size, new_root, signed, batch_proofs


    def _sign(self, size: int, root: bytes) -> str:
        return note.sign(Checkpoint(self.origin, size, root).to_text(), [self.signer])


def _check_entry_size(data: bytes) -> None:
    if len(data) > tlog.MAX_ENTRY_SIZE:
        raise ValueError(f"a log entry is at most {tlog.MAX_ENTRY_SIZE} bytes, this one is {len(data)}")


class _SyncFuture:
    """The small part of the Future API `_deliver` needs, for synchronous callers."""

    def __init__(self):
        self._result = None
        self._error: BaseException | None = None
        self._done = False

    def done(self) -> bool:
        return self._done

    def set_result(self, value) -> None:
        self._result, self._done = value, True

    def set_exception(self, error: BaseException) -> None:
        self._error, self._done = error, True

    def result(self):
        if self._error is not None:
            raise self._error
        return self._result


def _deliver(outcomes: list[tuple[_Pending, Receipt | None, BaseException | None]]) -> None:
    """Resolve each pending entry with its receipt or error (in the loop that owns the futures)."""
    for pending, receipt, error in outcomes:
        if error is not None:
            _set_exception(pending.future, error)
        else:
            _set_result(pending.future, receipt)


def _fail(batch: list[_Pending], error: BaseException) -> None:
    for pending in batch:
        _set_exception(pending.future, error)


def _set_result(future, value) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future, error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
