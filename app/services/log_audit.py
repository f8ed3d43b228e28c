"""Full audit of the stored log: rebuild the tree from the entries and compare everything.

The sequencer's start-up check (`Sequencer.check_integrity`) reads only the
right edge of the tree: the tiles that make up the latest root, the entry
count and the latest checkpoint. An interior tile or an old entry changed in
the database passes it (and would then be served to auditors, or break their
proofs). `audit_log` reads every entry, rehashes it, rebuilds the tree in
memory (about 64 bytes per entry) and compares:

- entries: indexes 0..size-1 with no gap or duplicate; each stored leaf hash
  equals the hash of the stored bytes;
- the rebuilt root with the log state;
- every stored tile with the rebuilt one (its width must be the widest the
  tree allows; every tile the tree needs must be stored);
- every stored checkpoint: it verifies with the log's key, names the origin,
  and its size and root are the rebuilt tree's at that size (so all signed
  checkpoints are consistent with one another and with the entries).

`audit_sequencer` runs it under the log's write lock, so that appends (from
any process) wait and the audit sees one state. Under the same lock it
replays the entries and compares every query table with the rows they imply
(`app.services.projection_audit`): a table that could not be rebuilt from
the log is a problem.

Given the blob store, `audit_sequencer` also checks every stored file
against its `upload` entry: the file must be there, with the entry's size,
SHA-256 and BLAKE2b-256 (a missing or altered file is a problem). Files are
read after the write lock is released: an upload stores its file before its
entry is appended and nothing may delete a referenced file, so the files of
the audited entries cannot legitimately change meanwhile, and uploads need
not wait while every file is hashed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from app import tlog
from app.distributions.blobs import BlobStore, InvalidDigest
from app.entries import EntryError, UploadEntry, decode
from app.sequencer import Sequencer
from app.services.projection_audit import audit_projections
from app.storage.log_store import LogStore
from app.tlog import MemoryTree, note
from app.tlog.tiles import tile_width_at, tiles_for_size

MAX_PROBLEMS = 100
_READ_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FileClaim:
    """What an `upload` entry says about its stored file."""

    index: int
    filename: str
    size: int
    sha256: str
    blake2b_256: str


@dataclass
class AuditReport:
    size: int = 0
    entries: int = 0
    tiles: int = 0
    checkpoints: int = 0
    files: int | None = None  # None: stored files were not checked
    query_tables: int | None = None  # None: the projections were not checked
    problems: list[str] = field(default_factory=list)
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)
        else:
            self.truncated = True

    def summary(self) -> str:
        files = "" if self.files is None else f", {self.files} files"
        tables = "" if self.query_tables is None else f", {self.query_tables} query tables"
        head = (
            f"size {self.size}: {self.entries} entries, {self.tiles} tiles, "
            f"{self.checkpoints} checkpoints{files}{tables} checked"
        )
        if self.ok:
            return head + ", no problem found"
        more = " (more not listed)" if self.truncated else ""
        return head + f", {len(self.problems)} problem(s){more}:\n" + "\n".join(self.problems)


def audit_log(
    store: LogStore,
    verifier: note.Verifier,
    origin: str,
    *,
    chunk: int = 10_000,
    uploads: list[FileClaim] | None = None,
) -> AuditReport:
    """Check every entry, tile and checkpoint in `store` (see the module docstring).

    Run it while nothing appends (`audit_sequencer` does): a batch committed
    during the audit shows up as a mismatch. When `uploads` is a list, what
    each `upload` entry says about its file is appended to it (for
    `audit_files`); an upload entry that cannot be decoded is a problem.
    """
    report = AuditReport()
    state = store.state()
    if state is None:
        report.problem("the log has no state row")
        return report
    if state.origin != origin:
        report.problem(f"the database holds log {state.origin!r}, expected {origin!r}")
    size = report.size = state.size

    tree = MemoryTree()
    expected_index = 0
    batch: list[bytes] = []
    for entry in store.iter_entries(size + 1, chunk):
        if entry.index != expected_index:
            report.problem(f"entry index {entry.index} found where {expected_index} was expected")
            if entry.index < expected_index:
                continue
            # a gap: the tree cannot be rebuilt past it
            break
        computed = tlog.leaf_hash(entry.data)
        if computed != entry.leaf_hash:
            report.problem(f"entry {entry.index}: stored leaf hash does not match the hash of its bytes")
        batch.append(computed)
        if uploads is not None and entry.kind == UploadEntry.kind:
            _claim(report, entry.index, entry.data, uploads)
        expected_index += 1
        if len(batch) >= chunk:
            tree.extend_hashes(batch)
            batch = []
    tree.extend_hashes(batch)
    report.entries = tree.size
    if tree.size != size:
        report.problem(f"the log state says {size} entries, {tree.size} could be read in order")
    complete = tree.size >= size
    if complete and tree.root(size) != state.root_hash:
        report.problem("the entries hash to a root different from the log state's")

    # tiles
    stored_tiles = store.all_tiles()
    report.tiles = len(stored_tiles)
    seen = set()
    for level, index, width, data in stored_tiles:
        name = f"tile ({level}, {index}) width {width}"
        seen.add((level, index))
        expected_width = tile_width_at(level, index, size) if level >= 0 else 0
        if expected_width == 0:
            report.problem(f"{name} is stored but lies beyond the log's size {size}")
            continue
        if width != expected_width or len(data) != width * 32:
            report.problem(
                f"{name} holds {len(data)} bytes; the log of size {size} needs width {expected_width}"
            )
        if complete:
            usable = min(width, expected_width, len(data) // 32)
            if usable and data[: usable * 32] != tree.tile(level, index, usable):
                report.problem(f"{name} differs from the tile rebuilt from the entries")
    for tile in tiles_for_size(size):
        if (tile.level, tile.index) not in seen:
            report.problem(f"{tile.path} is missing from storage")

    # checkpoints
    checkpoints = store.all_checkpoints()
    report.checkpoints = len(checkpoints)
    sizes = {c.size for c in checkpoints}
    if size not in sizes:
        report.problem(f"no checkpoint is stored for the log's size {size}")
    for stored in checkpoints:
        name = f"checkpoint at size {stored.size}"
        try:
            parsed = tlog.open_checkpoint(stored.note, [verifier], origin=origin)
        except tlog.TlogError as exc:
            report.problem(f"{name} does not verify: {exc}")
            continue
        if parsed.size != stored.size or parsed.root_hash != stored.root_hash:
            report.problem(f"{name}: the signed body says size {parsed.size}, root {parsed.root_hash.hex()}")
            continue
        if stored.size > size:
            report.problem(f"{name} is beyond the log's size {size}")
        elif stored.size <= tree.size and tree.root(stored.size) != parsed.root_hash:
            report.problem(f"{name} is signed over a root the entries do not give (inconsistent checkpoint)")
    return report


def _claim(report: AuditReport, index: int, data: bytes, uploads: list[FileClaim]) -> None:
    try:
        entry = decode(bytes(data))
    except EntryError as exc:
        report.problem(f"entry {index}: an upload entry that does not decode ({exc})")
        return
    if not isinstance(entry, UploadEntry):
        report.problem(f"entry {index}: stored as an upload entry but holds a {entry.kind} entry")
        return
    uploads.append(FileClaim(index, entry.filename, entry.size, entry.sha256, entry.blake2b_256))


def audit_files(report: AuditReport, blobs: BlobStore, uploads: list[FileClaim]) -> None:
    """Check each claimed file in `blobs`: present, with the entry's size, SHA-256
    and BLAKE2b-256. Every file is read in full; problems go to `report`."""
    report.files = 0
    for claim in uploads:
        name = f"entry {claim.index} ({claim.filename})"
        try:
            handle = blobs.open(claim.sha256)
        except InvalidDigest:
            report.problem(f"{name}: its sha256 {claim.sha256!r} is not a file name the store can hold")
            continue
        except FileNotFoundError:
            report.problem(f"{name}: the stored file {claim.sha256} is missing")
            continue
        size, sha256, blake2b = 0, hashlib.sha256(), hashlib.blake2b(digest_size=32)
        with handle:
            while block := handle.read(_READ_BYTES):
                size += len(block)
                sha256.update(block)
                blake2b.update(block)
        report.files += 1
        if size != claim.size:
            report.problem(f"{name}: the stored file has {size} bytes, the entry says {claim.size}")
        if sha256.hexdigest() != claim.sha256:
            report.problem(f"{name}: the stored file's sha256 is {sha256.hexdigest()}, not the entry's")
        if blake2b.hexdigest() != claim.blake2b_256:
            report.problem(f"{name}: the stored file's blake2b-256 is {blake2b.hexdigest()}, not the entry's")


def audit_sequencer(
    sequencer: Sequencer, *, chunk: int = 10_000, blobs: BlobStore | None = None, projections: bool = True
) -> AuditReport:
    """`audit_log` of a sequencer's log, holding the write lock so nothing appends
    meanwhile, and (with `projections`) `audit_projections`: every query table
    compared with what the entries imply; then, given `blobs`, `audit_files` of
    every upload entry's file (after the lock is released; see the module docstring)."""
    uploads: list[FileClaim] | None = [] if blobs is not None else None
    with sequencer.locked() as conn:
        report = audit_log(sequencer.store, sequencer.verifier, sequencer.origin, chunk=chunk, uploads=uploads)
        if projections:
            rebuilt = audit_projections(conn, sequencer.store.iter_entries(report.size, chunk))
            report.query_tables = len(rebuilt.tables)
            for problem in rebuilt.problems:
                report.problem(problem)
    if blobs is not None and uploads is not None:
        audit_files(report, blobs, uploads)
    return report
