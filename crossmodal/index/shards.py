"""Shard layout: which shard owns a document, and where each shard of an index keeps its store.

An index of N shards keeps one store per shard under one root (`root/shard-K`), and records N in
`root/shards.json`: documents are partitioned by a hash of their id modulo N, so an index opened with another
shard count would look in the wrong shard, and is refused.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

SHARD_PREFIX = "shard-"
SHARD_LAYOUT_FILE = "shards.json"
DB_NAME = "meta.sqlite"  # the file that marks a folder as holding a store (crossmodal.index)


class ShardLayoutError(ValueError):
    """An index opened with a shard count other than the one that built it."""


def shard_of(doc_id: str, shards: int) -> int:
    """The shard that owns a document: stable, so re-indexing an id always replaces it in the same shard."""
    return int(hashlib.sha1(doc_id.encode()).hexdigest()[:8], 16) % shards


def shard_folders(folder: str | Path) -> list[Path]:
    """The store folders behind ``folder``: itself when it holds a store, else its ``shard-N`` subfolders in order."""
    folder = Path(folder)
    if (folder / DB_NAME).is_file():
        return [folder]
    shards = [path for path in folder.glob(f"{SHARD_PREFIX}*") if (path / DB_NAME).is_file()]
    return sorted(shards, key=lambda path: int(path.name.removeprefix(SHARD_PREFIX)))


def built_shard_count(root: Path) -> int | None:
    """The shard count recorded for the index in `root` (1 for a store written before shards.json), or None."""
    layout = root / SHARD_LAYOUT_FILE
    if layout.is_file():
        return int(json.loads(layout.read_text())["shards"])
    return 1 if shard_folders(root) else None


def check_shard_count(root: Path, num_shards: int) -> int | None:
    """Raise ShardLayoutError unless the index in `root` can be opened with `num_shards`; its built count or None."""
    if num_shards < 1:
        raise ShardLayoutError(f"invalid sharding: {num_shards} shards")
    built = built_shard_count(root)
    if built is not None and built != num_shards:
        raise ShardLayoutError(f"the index in {root} was built with {built} shard(s), not {num_shards}; "
                               "start the flow with that many shards or index into another workspace")
    return built


def shard_folder(root: Path, num_shards: int, shard_id: int) -> Path:
    """The store folder of shard `shard_id` of `num_shards` under `root`, recording the layout on first use.

    `root` itself for one shard, `root/shard-N` for several. Raises ShardLayoutError when the index in `root` was
    built with another shard count.
    """
    if not 0 <= shard_id < num_shards:
        raise ShardLayoutError(f"invalid sharding: shard {shard_id} of {num_shards}")
    if check_shard_count(root, num_shards) is None:
        root.mkdir(parents=True, exist_ok=True)
        temporary = root / f".{SHARD_LAYOUT_FILE}.{shard_id}.tmp"
        temporary.write_text(json.dumps({"shards": num_shards}) + "\n")
        os.replace(temporary, root / SHARD_LAYOUT_FILE)
    return root / f"{SHARD_PREFIX}{shard_id}" if num_shards > 1 else root
