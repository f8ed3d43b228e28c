"""The monitor: follow a log, verify every entry, keep a verified local mirror.

One `Monitor.step` (a round of `pubtrail monitor`):

1. fetch ``checkpoint`` and open it with the pinned key (check
   "checkpoint signature"); with a witness policy
   (`app.clients.witnesses.WitnessPolicy`), it must also carry enough valid
   cosignatures from the given witness keys (check "witness cosignatures");
2. compare it with the mirror's latest verified checkpoint: the same size with
   another root, a smaller size whose root is not the mirror's tree at that
   size, or a larger tree that the consistency proof (computed from the
   server's own tiles) does not prove an extension, is a fork (check
   "consistency"), never accepted;
3. fetch the new entries' level-0 tiles and entry bundles; every old leaf a
   tile repeats must be the mirrored one ("consistency"), every new entry
   must hash to its tile's leaf ("entry leaf hash") and decode as a canonical
   entry ("entry decode");
4. append the leaves to the mirror's tree, compare every fetched or grown
   tile of every level with the one recomputed from the entries ("tile
   hashes") and the recomputed root with the signed one ("root hash");
5. only then commit the entries, their query rows and the checkpoint to the
   mirror in one transaction; a failure rolls the step back.

Every failure is a `VerificationError` whose message starts with its check and
names the tree size and the index; the monitor never retries it away.
Watch-rule matches of a step are returned with it, after it is committed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from app import tlog
from app.entries import Entry, EntryError, UploadEntry, build, decode
from app.tlog import TILE_HEIGHT, TILE_WIDTH, note
from app.watch import Rule, events_of

from .errors import VerificationError
from .items import open_checkpoint
from .mirror import Mirror
from .tiles import TileSource
from .witnesses import WitnessPolicy

_sha256 = hashlib.sha256
#: entry bundles (with their tiles) fetched ahead of verification, and by how many threads
PREFETCH_GROUPS = 16
PREFETCH_THREADS = 4
#: a step of at least this many new entries rebuilds the mirror's indexes once instead of row by row
BULK_STEP = 50_000


class MonitorVerificationError(VerificationError):
    """A monitor check failed at tree ``size`` (and entry ``index`` when one is to blame)."""

    def __init__(self, detail: str, *, size: int | None = None, index: int | None = None) -> None:
        super().__init__(detail)
        self.size = size
        self.index = index


class ForkError(MonitorVerificationError):
    check = "consistency"


class LeafHashError(MonitorVerificationError):
    check = "entry leaf hash"


class EntryDecodeError(MonitorVerificationError):
    check = "entry decode"


class TileHashError(MonitorVerificationError):
    check = "tile hashes"


class RootHashError(MonitorVerificationError):
    check = "root hash"


@dataclass
class Match:
    """An entry of a verified step that a watch rule matched."""

    rule: str
    index: int
    leaf_hash: bytes
    entry: Entry


@dataclass
class Step:
    """What one round did: the verified size before and after, and the rule matches."""

    old_size: int
    size: int
    checkpoint_note: str
    matches: list[Match] = field(default_factory=list)
    behind: bool = False  # the server's checkpoint is older than the mirror's (and consistent)

    @property
    def new_entries(self) -> int:
        return max(0, self.size - self.old_size)




def _no_float(text: str) -> Any:
    raise ValueError("float")


def _safe_int(text: str) -> int:
    value = int(text)
    if abs(value) > 2**53 - 1:
        raise ValueError("integer beyond the I-JSON range")
    return value


_DECODER = json.JSONDecoder(parse_float=_no_float, parse_int=_safe_int)
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decode_entry(data: bytes) -> Entry:
    """`app.entries.decode`, with a fast path for the common case.

    For ASCII-only bytes without floats or large integers, Python's sorted
    compact JSON is exactly RFC 8785, so comparing with it decides
    canonicality without the slower RFC 8785 encoder; anything else goes
    through `decode`.
    """
    if data.isascii():
        text = data.decode("ascii")
        try:
            raw = _DECODER.decode(text)
        except ValueError:
            raw = None
        if isinstance(raw, dict) and _ENCODER.encode(raw) == text:
            # canonical bytes of a known kind and version (else `build` raises) need no re-encoding
            return build(raw.pop("kind", None), raw.pop("v", None), raw)
    return decode(data)


class Monitor:
    """Follows the log at ``source`` into ``mirror``, trusting only ``verifier``.

    ``rules`` are watch rules evaluated on every new verified entry;
    ``progress(done, total)`` is called as entries are verified within a step.
    ``witnesses`` refuses a checkpoint without the cosignatures it requires
    before anything is verified or recorded. ``checkpoints()`` returns the
    signed checkpoint to follow instead of the source's ``checkpoint`` (a
    cosigning monitor follows the log's newest one).
    """

    def __init__(
        self,
        source: TileSource,
        verifier: note.Verifier,
        mirror: Mirror,
        *,
        rules: Sequence[Rule] = (),
        progress: Callable[[int, int], None] | None = None,
        witnesses: WitnessPolicy | None = None,
        checkpoints: Callable[[], str] | None = None,
    ) -> None:
        self.source = source
        self.verifier = verifier
        self.mirror = mirror
        self.rules = list(rules)
        self.progress = progress
        self.witnesses = witnesses
        self.checkpoints = checkpoints
        self._needs_events = any("event" in r.criteria for r in self.rules)
        self._needs_exchange = any(
            "kid" in r.criteria or "repository_owner_id" in r.criteria
            or any("repository_owner_id" in p for p in (r.allowed or ()))
            for r in self.rules
        )

    def fetch_checkpoint(self) -> tuple[tlog.Checkpoint, str]:
        if self.checkpoints is not None:
            signed, where = self.checkpoints(), "the log's newest checkpoint"
        else:
            signed, where = self.source.checkpoint(), f"{self.source.url}/checkpoint"
        checkpoint = open_checkpoint(signed, self.verifier, where=where)
        if self.witnesses is not None:
            self.witnesses.check(signed, self.verifier)
        return checkpoint, signed

    def step(self) -> Step:
        """One round (see the module docstring); raises a VerificationError or ServerError."""
        checkpoint, signed = self.fetch_checkpoint()
        return self.step_to(checkpoint, signed)

    def step_to(self, checkpoint: tlog.Checkpoint, signed: str) -> Step:
        """Verify and mirror the log up to the (already signature-checked) ``checkpoint``."""
        latest = self.mirror.latest()
        old = latest.size if latest else 0
        size, root = checkpoint.size, checkpoint.root_hash
        tree = self.mirror.tree()
        if size < old:
            if tree.root(size) != root:
                raise ForkError(
                    f"the checkpoint of size {size} has root {root.hex()}, the verified log has "
                    f"{tree.root(size).hex()} at that size (verified up to size {old})", size=size,
                )
            return Step(old, old, latest.note if latest else signed, behind=True)
        if size == old:
            if latest is not None and root != latest.root:
                raise ForkError(
                    f"the checkpoint of size {size} has root {root.hex()}, but a checkpoint of the same size "
                    f"with root {latest.root.hex()} was verified before", size=size,
                )
            if latest is None and root != tlog.EMPTY_ROOT:
                raise RootHashError(f"the empty log's checkpoint has root {root.hex()}", size=0)
            return Step(old, old, signed)
        if old:
            self._check_consistency(old, latest.root, size, root)
        writer = self.mirror.writer(bulk=size - old >= BULK_STEP)
        try:
            step = Step(old, size, signed)
            self._fetch_entries(old, size, tree, writer, step)
            self._check_tiles(old, size, tree)
            if tree.root(size) != root:
                raise RootHashError(
                    f"the entries 0..{size - 1} hash to root {tree.root(size).hex()}, "
                    f"not to the signed checkpoint's {root.hex()}", size=size,
                )
            writer.commit(size, root, signed)
        except BaseException:
            writer.rollback()
            self.mirror.forget_tree()
            raise
        return step

    def _check_consistency(self, old: int, old_root: bytes, size: int, root: bytes) -> None:
        tiled = tlog.TiledTree(self.source)
        try:
            proof = tiled.consistency_proof(old, size)
            tlog.verify_consistency(old, size, proof, old_root, root)
        except tlog.TlogError as exc:
            raise ForkError(
                f"the checkpoint of size {size} is not an extension of the verified checkpoint of size {old}: {exc}",
                size=size,
            ) from exc

    def _fetch_entries(self, old: int, size: int, tree: tlog.MemoryTree, writer, step: Step) -> None:
        rules, sha = self.rules, _sha256
        done = 0
        for group, width, hashes, bundle in self._prefetch(old, size):
            start = group * TILE_WIDTH
            new: list[bytes] = []
            for position in range(width):
                index = start + position
                leaf = hashes[32 * position : 32 * position + 32]
                if index < old:
                    if leaf != tree.leaf_hash(index):
                        raise ForkError(
                            f"tile {tlog.tile_path(0, group, width)} at size {size} gives entry {index} leaf "
                            f"{leaf.hex()}, the verified log has {tree.leaf_hash(index).hex()}",
                            size=size, index=index,
                        )
                    continue
                data = bundle[position]
                computed = sha(b"\x00" + data).digest()
                if computed != leaf:
                    raise LeafHashError(
                        f"entry {index} (bundle {tlog.entries_path(group, width)}) hashes to {computed.hex()}, "
                        f"not to its leaf {leaf.hex()} in tile {tlog.tile_path(0, group, width)} at size {size}",
                        size=size, index=index,
                    )
                try:
                    entry = decode_entry(data)
                    writer.add(index, computed, data, entry)
                except (EntryError, ValueError, TypeError) as exc:
                    raise EntryDecodeError(
                        f"entry {index} at size {size} is not a valid entry: {exc}", size=size, index=index
                    ) from exc
                new.append(computed)
                if rules:
                    exchange, events = None, frozenset()
                    if self._needs_exchange and isinstance(entry, UploadEntry) and entry.exchange_index is not None:
                        exchange = writer.exchange(entry.exchange_index)
                    if self._needs_events and isinstance(entry, UploadEntry) and entry.auth == "api_token":
                        events = events_of(entry, writer.trusted_project(entry.project, index))
                    for rule in rules:
                        if rule.matches(entry, exchange, events):
                            step.matches.append(Match(rule.name, index, computed, entry))
            tree.extend_hashes(new)
            writer.flush()
            done += len(new)
            if self.progress is not None:
                self.progress(done, size - old)

    def _prefetch(self, old: int, size: int):
        """(group, width, level-0 tile, entry bundle) of each group holding entries in [old, size), in
        order; later groups are fetched by a few threads while earlier ones are verified."""
        groups = range(old // TILE_WIDTH, (size + TILE_WIDTH - 1) // TILE_WIDTH)

        def fetch(group: int) -> tuple[int, int, bytes, list[bytes]]:
            width = tlog.tile_width_at(0, group, size)
            return group, width, self.source.tile(0, group, width), self.source.entry_bundle(group, width)

        if len(groups) <= 1:
            yield from map(fetch, groups)
            return
        with ThreadPoolExecutor(max_workers=PREFETCH_THREADS) as pool:
            pending = []
            ahead = iter(groups)
            for group in ahead:
                pending.append(pool.submit(fetch, group))
                if len(pending) >= PREFETCH_GROUPS:
                    break
            try:
                while pending:
                    result = pending.pop(0).result()
                    following = next(ahead, None)
                    if following is not None:
                        pending.append(pool.submit(fetch, following))
                    yield result
            finally:
                for future in pending:
                    future.cancel()

    def _check_tiles(self, old: int, size: int, tree: tlog.MemoryTree) -> None:
        level = 1
        while size >> (TILE_HEIGHT * level):
            count = size >> (TILE_HEIGHT * level)
            first = (old >> (TILE_HEIGHT * level)) // TILE_WIDTH
            for index in range(first, (count - 1) // TILE_WIDTH + 1):
                width = tlog.tile_width_at(level, index, size)
                served = self.source.tile(level, index, width)
                expected = tree.tile(level, index, width)
                if served != expected:
                    position = next(i for i in range(width) if served[32 * i : 32 * i + 32] != expected[32 * i : 32 * i + 32])
                    first_leaf = ((index * TILE_WIDTH + position) << (TILE_HEIGHT * level))
                    raise TileHashError(
                        f"tile {tlog.tile_path(level, index, width)} at size {size} differs from the tree of the "
                        f"verified entries at hash {position} (entries from index {first_leaf})",
                        size=size, index=first_leaf,
                    )
            level += 1


def event_of_match(match: Match, step: Step, origin: str) -> dict[str, Any]:
    """The alert event of a rule match (the JSON a hook or webhook receives)."""
    return {
        "type": "entry.matched",
        "rule": match.rule,
        "origin": origin,
        "entry": {
            "index": match.index,
            "leaf_hash": match.leaf_hash.hex(),
            "kind": match.entry.kind,
            "entry": match.entry.to_json(),
        },
        "checkpoint": step.checkpoint_note,
        "tree_size": step.size,
    }


def event_of_failure(error: Exception, origin: str, server: str) -> dict[str, Any]:
    """The alert event of a verification failure."""
    return {
        "type": "verification.failed",
        "origin": origin,
        "server": server,
        "check": getattr(error, "check", type(error).__name__),
        "message": str(error),
        "size": getattr(error, "size", None),
        "index": getattr(error, "index", None),
    }
