"""The pure log core of pubtrail: RFC 9162 Merkle trees over C2SP tlog-tiles.

Standard library and ``cryptography`` only: no web, no database. Modules:

- :mod:`.hashing` -- leaf/node hashes, ``EMPTY_ROOT``
- :mod:`.tiles` -- tile geometry and ``tile/...`` paths (``Tile``)
- :mod:`.plan` -- which subtree nodes a root or proof is made of
- :mod:`.tree` -- ``TiledTree`` (fetch + rehash over a ``TileReader``, append)
- :mod:`.memory` -- ``MemoryTree``, an in-memory tree on the same layout
- :mod:`.batch_proofs` -- ``BatchProofs``, every inclusion proof of one append from its new tiles
- :mod:`.proofs` -- proof verification (RFC 9162 2.1.3.2, 2.1.4.2)
- :mod:`.bundles` -- entry bundles
- :mod:`.note` -- C2SP signed notes with Ed25519 (Go sumdb/note compatible)
- :mod:`.checkpoint` -- C2SP tlog-checkpoint bodies
- :mod:`.tlog_proof` -- c2sp.org/tlog-proof@v1 texts
- :mod:`.errors` -- the error tree under ``TlogError``
"""

from . import note
from .batch_proofs import BatchProofs
from .bundles import MAX_ENTRY_SIZE, decode_entry_bundle, encode_entry_bundle
from .errors import (
    CheckpointError,
    EntryBundleError,
    InvalidSignatureError,
    NoteError,
    ProofError,
    RootMismatchError,
    TileError,
    TilePathError,
    TlogError,
    TlogProofError,
    UnverifiedNoteError,
)
from .checkpoint import Checkpoint, open_checkpoint
from .hashing import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash
from .memory import MemoryTree
from .plan import consistency_plan, fold_range, inclusion_plan, range_nodes, rehash, root_plan
from .proofs import (
    root_from_inclusion_proof,
    roots_from_consistency_proof,
    verify_consistency,
    verify_inclusion,
)
from .tiles import (
    ENTRIES_LEVEL,
    TILE_HEIGHT,
    TILE_WIDTH,
    Tile,
    entries_path,
    entry_bundles_for_size,
    parse_tile_path,
    tile_path,
    tile_width_at,
    tiles_for_size,
)
from .tlog_proof import TlogProof
from .tree import DEFAULT_CACHE_BYTES, EXPANDED_TILE_BYTES, TiledTree, TileReader, expand_tile, node_tile, tile_root

__all__ = [
    "EMPTY_ROOT",
    "ENTRIES_LEVEL",
    "HASH_SIZE",
    "MAX_ENTRY_SIZE",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "BatchProofs",
    "Checkpoint",
    "CheckpointError",
    "EntryBundleError",
    "InvalidSignatureError",
    "MemoryTree",
    "NoteError",
    "ProofError",
    "RootMismatchError",
    "Tile",
    "TileError",
    "TilePathError",
    "TileReader",
    "TiledTree",
    "DEFAULT_CACHE_BYTES",
    "EXPANDED_TILE_BYTES",
    "TlogError",
    "TlogProof",
    "TlogProofError",
    "UnverifiedNoteError",
    "consistency_plan",
    "decode_entry_bundle",
    "encode_entry_bundle",
    "entries_path",
    "entry_bundles_for_size",
    "expand_tile",
    "fold_range",
    "inclusion_plan",
    "leaf_hash",
    "node_hash",
    "node_tile",
    "note",
    "open_checkpoint",
    "parse_tile_path",
    "range_nodes",
    "rehash",
    "root_from_inclusion_proof",
    "root_plan",
    "roots_from_consistency_proof",
    "tile_path",
    "tile_root",
    "tile_width_at",
    "tiles_for_size",
    "verify_consistency",
    "verify_inclusion",
]
