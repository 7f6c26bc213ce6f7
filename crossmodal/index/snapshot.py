"""The FAISS snapshot of a store: the index written beside SQLite with a header naming the generation and settings
it reflects, so that opening loads it only when it is exactly current, and rebuilds from SQLite otherwise.

Written to a temporary file, fsynced, renamed over the old one and the folder fsynced: a crash leaves the old
snapshot or the new one, never half of one. Both directions stream (FAISS's callback IO), so no second copy of the
index is ever held in memory.
"""
from __future__ import annotations

import contextlib
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import faiss

from .sql import fsync_dir

SNAPSHOT_NAME = "index.faiss"
_SNAPSHOT_MAGIC = b"CMSNAP1\n"


def load_snapshot(folder: Path, header: dict[str, Any]) -> faiss.Index | None:
    """The snapshot in ``folder`` if it was written with exactly ``header``, else None (missing, stale, damaged)."""
    try:
        file = open(folder / SNAPSHOT_NAME, "rb")
    except FileNotFoundError:
        return None
    with file:
        prefix = file.read(len(_SNAPSHOT_MAGIC) + 4)
        if len(prefix) < len(_SNAPSHOT_MAGIC) + 4 or not prefix.startswith(_SNAPSHOT_MAGIC):
            return None
        (header_size,) = struct.unpack("<I", prefix[len(_SNAPSHOT_MAGIC):])
        try:
            if json.loads(file.read(header_size)) != header:
                return None
            return faiss.read_index(faiss.PyCallbackIOReader(file.read))  # type: ignore[attr-defined]
        except (ValueError, RuntimeError):  # damaged snapshot: SQLite still has everything
            return None


def write_snapshot(folder: Path, index: faiss.Index, header: dict[str, Any]) -> None:
    """Replace the snapshot in ``folder`` by ``index`` with ``header``, atomically and durably."""
    encoded = json.dumps(header).encode()
    fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(_SNAPSHOT_MAGIC + struct.pack("<I", len(encoded)) + encoded)
            # Streamed: no second copy. (faiss's stubs omit the callback IO classes.)
            faiss.write_index(index, faiss.PyCallbackIOWriter(file.write))  # type: ignore[attr-defined]
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, folder / SNAPSHOT_NAME)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)
