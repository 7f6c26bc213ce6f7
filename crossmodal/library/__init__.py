"""A plain photo folder as a library: the scan, what was indexed last time, and the plan that syncs the index to it.

Three steps, none of them needing Jina:

1. `scan_folder(root)` (`scan.py`) lists every photo under `root` with its size and mtime; faults are skipped
   with a reason and counted, never raised.
2. `LibraryState` (`state.py`, one SQLite file per library) holds, per relative path, the size, mtime_ns and
   sha256 of the bytes that were indexed, and the photo id they belong to (`identity.py`).
3. `plan_sync(scan, state)` (`plan.py`) classifies every path and turns that into per-photo work, cut into
   `SyncBatch`es (`batch.py`) that the indexing job applies with `state.applying(batch)` around its index write.
Files are read only through `files.py` (no symlink followed). The package imports the core's ids and photo formats,
never the store, the models or `serving/`.
"""
from .batch import (
    CHANGED,
    COPY,
    DELETED,
    MOVED,
    NEW,
    TOUCHED,
    UNCHANGED,
    Failure,
    PathChange,
    PathRecord,
    PhotoChange,
    SyncBatch,
)
from .files import HASH_CHUNK, NotARegularFile, open_library_file, sha256_file
from .identity import photo_id, photo_pair_id
from .plan import SyncPlan, SyncRefused, plan_sync
from .scan import (
    BASE_SUFFIXES,
    HEIF_SUFFIXES,
    NO_HEIF_DECODER,
    NOT_INDEXABLE,
    NOT_UTF8,
    PERMISSION_DENIED,
    READ_ERROR,
    SPECIAL_FILE,
    SYMLINK_BROKEN,
    SYMLINK_INSIDE,
    SYMLINK_LOOP,
    SYMLINK_OUTSIDE,
    TRANSIENT_KINDS,
    VANISHED,
    FileStat,
    Scan,
    Skip,
    library_suffixes,
    scan_folder,
)
from .state import SCHEMA_VERSION, LibraryState, LibraryStateError

__all__ = [
    "BASE_SUFFIXES", "CHANGED", "COPY", "DELETED", "HASH_CHUNK", "HEIF_SUFFIXES", "MOVED", "NEW", "NOT_INDEXABLE",
    "NOT_UTF8", "NO_HEIF_DECODER", "PERMISSION_DENIED", "READ_ERROR", "SCHEMA_VERSION", "SPECIAL_FILE",
    "SYMLINK_BROKEN", "SYMLINK_INSIDE", "SYMLINK_LOOP", "SYMLINK_OUTSIDE", "TOUCHED", "TRANSIENT_KINDS", "UNCHANGED",
    "VANISHED", "Failure", "FileStat", "LibraryState", "LibraryStateError", "NotARegularFile", "PathChange",
    "PathRecord", "PhotoChange", "Scan", "Skip", "SyncBatch", "SyncPlan", "SyncRefused", "library_suffixes",
    "open_library_file", "photo_id", "photo_pair_id", "plan_sync", "scan_folder", "sha256_file",
]
