"""The service audits itself: a periodic, bounded check of the stored log.

`pubtrail audit` rebuilds the whole tree and needs the write lock for as long
as it reads every entry; the start-up check reads only the right edge. In
between, `SelfAudit.run` does a few milliseconds of work per round, without
the write lock, and over many rounds reads every entry:

- the latest signed checkpoint verifies with the log's key and names the
  stored size and root, and the stored tiles hash to that root (read from
  storage in a fresh tree, never from a tile cache);
- a rolling sample of entries (`sample` consecutive ones from a cursor that
  walks the log and wraps at its end, starting at a random index so that
  restarts do not keep checking the beginning, plus `random_sample` ones
  anywhere) each hash to their stored leaf hash and to their leaf in the
  level-0 tile, and that tile is proven included in the signed root (an
  inclusion proof, computed from the stored tiles, of its first sampled leaf);
- the newest `checkpoints` signed checkpoints each verify with the key, the
  stored tiles hash to each one's root at its size, and each is proven
  consistent with the next newer one from the stored tiles.

Any mismatch is a problem: the caller (`app.jobs.self_audit`) halts the log
(`Sequencer.halt`), which stops every process from signing until an operator
runs `pubtrail audit` and it finds nothing wrong. One round also runs at
start-up (`audit_at_start`), so damage deeper than the right edge that the
start-up check reads is found before the service signs anything.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sqlalchemy import select

from app import tlog
from app.sequencer import Sequencer
from app.storage.log_store import LogStore
from app.storage.tables import SignedCheckpoint
from app.tlog import TILE_WIDTH, Checkpoint, TiledTree, note

_checkpoints = SignedCheckpoint.__table__


@dataclass
class SelfAuditReport:
    """What one round checked and what it found wrong (empty: nothing)."""

    size: int = 0
    entries: list[int] = field(default_factory=list)
    checkpoints: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def reason(self, most: int = 5) -> str:
        """One line naming the first `most` problems, for the halt, the log and /healthz."""
        more = len(self.problems) - most
        return "self-audit: " + "; ".join(self.problems[:most]) + (f"; and {more} more" if more > 0 else "")


class SelfAudit:
    """One log's self-audit; keeps the cursor of its rolling sample between rounds.

    `rng` chooses the cursor's start and the random sample (injected so tests
    can fix it).
    """

    def __init__(
        self,
        store: LogStore,
        verifier: note.Verifier,
        origin: str,
        *,
        sample: int = 4096,
        random_sample: int = 16,
        checkpoints: int = 4,
        rng: random.Random | None = None,
    ):
        self.store = store
        self.verifier = verifier
        self.origin = origin
        self.sample = max(0, sample)
        self.random_sample = max(0, random_sample)
        self.checkpoints = max(1, checkpoints)
        self.rng = rng or random.Random()
        self.cursor: int | None = None

    def run(self) -> SelfAuditReport:
        """Audit one round; the report lists every mismatch found (never raises for one)."""
        report = SelfAuditReport()
        latest = self.store.latest_checkpoint(0.0)
        if latest is None:
            report.problems.append("the log has no signed checkpoint")
            return report
        report.size = latest.size
        tree = TiledTree(self.store, cache_size=1024)  # storage as it is now, never a cache
        root = self._check_checkpoint(latest.size, latest.root_hash, latest.note, tree, report)
        if root is None:
            return report
        self._check_entries(latest.size, root, tree, report)
        self._check_recent_checkpoints(latest.size, tree, report)
        return report

    def _check_checkpoint(self, size: int, root: bytes, signed: str, tree: TiledTree, report) -> bytes | None:
        """The signed root at `size` if the note verifies, matches its row and the
        stored tiles hash to it; None (with a problem) otherwise."""
        try:
            text, _ = note.open(signed, [self.verifier])
            parsed = Checkpoint.parse(text)
        except tlog.TlogError as exc:
            report.problems.append(f"checkpoint {size} does not verify with the log's key: {exc}")
            return None
        if (parsed.origin, parsed.size, parsed.root_hash) != (self.origin, size, root):
            report.problems.append(f"signed checkpoint {size} does not match its stored size and root")
            return None
        try:
            computed = tree.root(size)
        except tlog.TlogError as exc:
            report.problems.append(f"the stored tiles cannot give the root at size {size}: {exc}")
            return None
        if computed != root:
            report.problems.append(
                f"stored tiles hash to {computed.hex()} at size {size}, "
                f"but the signed checkpoint says {root.hex()}"
            )
            return None
        return root

    def sample_indexes(self, size: int) -> list[int]:
        """This round's entries: the next `sample` from the cursor (wrapping), plus random ones."""
        if size == 0:
            return []
        if self.cursor is None or self.cursor >= size:
            self.cursor = self.rng.randrange(size) if self.cursor is None else 0
        count = min(self.sample, size)
        rolling = [(self.cursor + offset) % size for offset in range(count)]
        self.cursor = (self.cursor + count) % size
        extra = [self.rng.randrange(size) for _ in range(min(self.random_sample, size))]
        return sorted(set(rolling) | set(extra))

    def _check_entries(self, size: int, root: bytes, tree: TiledTree, report: SelfAuditReport) -> None:
        indexes = self.sample_indexes(size)
        report.entries = indexes
        stored = self.store.entries_at(indexes)
        try:
            leaves = tree.node_hashes([(0, index) for index in indexes], size)
        except tlog.TlogError as exc:
            report.problems.append(f"the stored level-0 tiles cannot give the sampled leaves: {exc}")
            return
        # One inclusion proof per level-0 tile checks every leaf of that tile: the
        # proof's lower eight hashes are computed from the tile's other leaves, so
        # it verifies against the signed root only if the whole tile is the logged one.
        proven_tiles: set[int] = set()
        for index in indexes:
            entry = stored.get(index)
            if entry is None:
                report.problems.append(f"entry {index} is missing from storage")
                continue
            tile_leaf = leaves[(0, index)]
            if tlog.leaf_hash(entry.data) != entry.leaf_hash:
                report.problems.append(f"entry {index} does not hash to its stored leaf hash")
            elif entry.leaf_hash != tile_leaf:
                report.problems.append(f"entry {index} does not match its leaf in the level-0 tile")
            elif index // TILE_WIDTH not in proven_tiles:
                proven_tiles.add(index // TILE_WIDTH)  # tried once per round, proven or not
                try:
                    proof = tree.inclusion_proof(index, size)
                    tlog.verify_inclusion(tile_leaf, index, size, proof, root)
                except tlog.TlogError as exc:
                    first = index // TILE_WIDTH * TILE_WIDTH
                    last = min(first + TILE_WIDTH, size) - 1
                    report.problems.append(
                        f"the level-0 tile of entries {first}..{last} is not included in the signed root "
                        f"at size {size} (inclusion proof of entry {index}: {exc})"
                    )

    def _check_recent_checkpoints(self, size: int, tree: TiledTree, report: SelfAuditReport) -> None:
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(_checkpoints.c.size, _checkpoints.c.root_hash, _checkpoints.c.note)
                .where(_checkpoints.c.size <= size)
                .order_by(_checkpoints.c.size.desc())
                .limit(self.checkpoints)
            ).all()
        report.checkpoints = [row.size for row in rows]
        newer: tuple[int, bytes] | None = None
        for row in rows:  # newest first
            root = self._check_checkpoint(row.size, bytes(row.root_hash), row.note, tree, report)
            if root is None:
                return
            if newer is not None and row.size:
                newer_size, newer_root = newer
                try:
                    proof = tree.consistency_proof(row.size, newer_size)
                    tlog.verify_consistency(row.size, newer_size, proof, root, newer_root)
                except tlog.TlogError as exc:
                    report.problems.append(
                        f"checkpoints {row.size} and {newer_size} are not consistent: {exc}"
                    )
                    return
            newer = (row.size, root)


def audit_at_start(sequencer: Sequencer, *, sample: int, rng: random.Random | None = None) -> SelfAuditReport:
    """One self-audit round as the service starts, before it signs anything.

    `Sequencer.initialize` refuses to start when the right edge is damaged (the
    latest checkpoint, the tiles of its root, the newest entries); this round
    also reads a window of `sample` entries with their level-0 tiles and the
    newest checkpoints. A problem found here halts the log (`Sequencer.halt`):
    the service starts and serves reads, but signs nothing until
    `pubtrail audit` finds the log sound.
    """
    report = SelfAudit(sequencer.store, sequencer.verifier, sequencer.origin, sample=sample, rng=rng).run()
    if not report.ok:
        sequencer.halt("at start-up, " + report.reason())
    return report
