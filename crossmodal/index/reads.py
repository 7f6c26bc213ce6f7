"""Reads of a store folder (all its shards) without loading FAISS: records by id or pair, settings, ids, a
summary, a sample, vectors, generations, the captions of photos. The gateway, the jobs and the CLI use these.
"""
from __future__ import annotations

import contextlib
import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .connections import each_shard, query_one_store, query_read_only, read_only_db, store_dbs
from .schema import METADATA_TABLE, check_schema_version
from .sql import check_limit, chunks, marks
from .types import COLUMNS, CaptionVector, Record, StoredSettings, StoreSummary, to_record, to_vector


def read_record(folder: str | Path, id: str) -> Record | None:
    """Look one record up without loading FAISS, so the gateway can serve images by id cheaply."""
    rows = query_read_only(folder, f"SELECT {COLUMNS} FROM records WHERE id = ?", (id,))
    return to_record(rows[0]) if rows else None


def read_records(folder: str | Path, ids: Sequence[str]) -> dict[str, Record]:
    """The records of those ``ids`` that are stored, by id: one connection per shard and chunk, not one per id."""
    found: dict[str, Record] = {}
    for chunk in chunks(list(dict.fromkeys(ids))):
        rows = query_read_only(folder, f"SELECT {COLUMNS} FROM records WHERE id IN ({marks(chunk)})", tuple(chunk))
        found.update((record.id, record) for record in map(to_record, rows or ()))
    return found


def stored_settings(folder: str | Path) -> StoredSettings | None:
    """The model, dimension and modality recorded in ``folder``; None when it holds no store yet."""
    rows = query_read_only(folder, "SELECT key, value FROM settings")
    if rows is None:
        return None
    settings = dict(rows)
    if "model_name" not in settings:  # its creation was interrupted before the schema was committed
        return None
    check_schema_version(settings, folder)
    return StoredSettings(settings["model_name"], int(settings["dim"]), settings["modality"])


def stored_ids(folder: str | Path) -> set[str]:
    """Every id stored in ``folder`` (empty when it holds no store), so indexing can resume where it stopped."""
    return {row[0] for row in query_read_only(folder, "SELECT id FROM records") or ()}



def located_without_place(folder: str | Path) -> set[str]:
    """Ids of the photos whose metadata has coordinates but no `place` key (stored before places were named, issue
    24), so that a sync names their places; a photo whose place is null (mid-ocean) has the key. Reads only the rows
    that the metadata index marks as located."""
    sql = (f"SELECT r.id FROM {METADATA_TABLE} AS m JOIN records AS r ON r.num = m.num WHERE m.has_location = 1 "
           "AND json_type(r.tags, '$.metadata.place') IS NULL")
    return {row[0] for conn in each_shard(folder, METADATA_TABLE) for row in conn.execute(sql)}


def store_summary(folder: str | Path) -> StoreSummary | None:
    """Modality, model, dimension and number of records in ``folder``; None when it holds no store yet."""
    settings = stored_settings(folder)
    if settings is None:
        return None
    rows = query_read_only(folder, "SELECT COUNT(*) FROM records") or [(0,)]
    return StoreSummary(settings.modality, settings.model_name, settings.dim, sum(int(row[0]) for row in rows))


def records_with_pair_id(folder: str | Path, pair_id: str, id_prefix: str | None = None,
                         limit: int = 1000) -> list[Record]:
    """Records of one image/caption pair (e.g. the captions of a photo), in the order they were stored.

    Without ``id_prefix`` this scans the table; with it (the ids of the pair share a prefix, e.g. ``txt-<hash>-``)
    the lookup is a range on the id index, and ``pair_id`` still has to match.
    """
    sql = f"SELECT {COLUMNS} FROM records WHERE pair_id = ?"
    params: list[Any] = [pair_id]
    if id_prefix:
        sql += " AND id >= ? AND id < ?"
        params += [id_prefix, id_prefix[:-1] + chr(ord(id_prefix[-1]) + 1)]
    sql += " ORDER BY num LIMIT ?"
    params.append(int(limit))
    return [to_record(row) for row in query_read_only(folder, sql, tuple(params)) or ()]


def sample_records(folder: str | Path, limit: int) -> list[Record]:
    """Up to ``limit`` records drawn at random from ``folder`` (all its shards), without loading FAISS."""
    rows = query_read_only(folder, f"SELECT {COLUMNS} FROM records ORDER BY RANDOM() LIMIT ?", (int(limit),))
    records = [to_record(row) for row in rows or ()]
    random.shuffle(records)  # several shards each gave up to `limit`: keep a random `limit` of them
    return records[:limit]



def read_vectors(folder: str | Path, ids: Sequence[str]) -> dict[str, np.ndarray]:
    """The stored vectors of those ``ids`` that are stored, by id (float32, 1-D): one connection per shard."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, np.ndarray] = {}
    for conn in each_shard(folder):
        for chunk in chunks([id_ for id_ in wanted if id_ not in found]):
            sql = f"SELECT id, vector FROM records WHERE id IN ({marks(chunk)})"
            found.update((id_, to_vector(blob)) for id_, blob in conn.execute(sql, chunk))
    return found


def vector_sample(folder: str | Path, limit: int) -> np.ndarray:
    """At most ``limit`` stored vectors of ``folder`` (all of them when it holds fewer), as an [N, dim] float32
    matrix, e.g. the collection a query's scores are normalised against.

    Deterministic: the same sample on every call while the store does not change (``store_generations`` tells when
    it did). Spread over the whole store: each shard gives its share of ``limit`` (by its size), taken at evenly
    spaced positions of its insertion order, never just its first rows. Rows are in shard order, then insertion order.
    """
    check_limit(limit)
    with contextlib.ExitStack() as stack:
        shards: list[tuple[sqlite3.Connection, np.ndarray]] = []
        dim = 0
        for db in store_dbs(folder):
            conn = stack.enter_context(read_only_db(db))
            if conn is None:
                continue
            conn.execute("BEGIN")  # the positions chosen below still name the same rows when they are read
            settings = dict(conn.execute("SELECT key, value FROM settings WHERE key = 'dim'"))
            dim = dim or int(settings.get("dim", 0))
            nums = np.array([row[0] for row in conn.execute("SELECT num FROM records ORDER BY num")], dtype=np.int64)
            shards.append((conn, nums))
        quotas = _shares(int(limit), [len(nums) for _, nums in shards])
        vectors: list[np.ndarray] = []
        for (conn, nums), quota in zip(shards, quotas):
            if quota == 0:
                continue
            positions = ((2 * np.arange(quota, dtype=np.int64) + 1) * len(nums)) // (2 * quota)  # centred strides
            for chunk in chunks([int(num) for num in nums[positions]]):
                sql = f"SELECT vector FROM records WHERE num IN ({marks(chunk)}) ORDER BY num"
                vectors += [to_vector(row[0]) for row in conn.execute(sql, chunk)]
    if not vectors:
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack(vectors)


def store_generations(folder: str | Path) -> tuple[int, ...]:
    """Each shard's generation counter, in shard order: it grows with every committed write, so a value computed
    from the store (e.g. ``vector_sample``) can be kept until this changes. Empty without a store."""
    generations = []
    for db in store_dbs(folder):
        rows = query_one_store(db, "SELECT value FROM settings WHERE key = 'generation'", ())
        generations.append(int(rows[0][0]) if rows else 0)
    return tuple(generations)


def caption_vectors_of_pairs(folder: str | Path, pair_ids: Sequence[str]) -> dict[str, list[CaptionVector]]:
    """The captions (text records) of each of ``pair_ids`` with their vectors, by pair id, in caption order (the
    number ending a caption id, `txt-<hash>-N`); pair ids without captions are left out. ``folder`` is the caption
    index. One connection per shard, one query per chunk of pair ids."""
    wanted = list(dict.fromkeys(pair_ids))
    found: dict[str, list[CaptionVector]] = {}
    for conn in each_shard(folder):
        for chunk in chunks(wanted):
            sql = (f"SELECT id, text, pair_id, vector FROM records WHERE modality = 'text' "
                   f"AND pair_id IN ({marks(chunk)})")
            for id_, text, pair_id, blob in conn.execute(sql, chunk):
                found.setdefault(pair_id or "", []).append(CaptionVector(id_, text, to_vector(blob)))
    for captions in found.values():
        captions.sort(key=lambda caption: _caption_order(caption.id))
    return found


def pairs_with_captions(folder: str | Path, pair_ids: Sequence[str]) -> set[str]:
    """Which of ``pair_ids`` have at least one caption in ``folder`` (the caption index): the pair ids alone, read
    through the pair id index, without the captions' texts and vectors (`caption_vectors_of_pairs` reads those)."""
    wanted = list(dict.fromkeys(pair_ids))
    found: set[str] = set()
    for conn in each_shard(folder):
        for chunk in chunks([pair_id for pair_id in wanted if pair_id not in found]):
            sql = f"SELECT DISTINCT pair_id FROM records WHERE modality = 'text' AND pair_id IN ({marks(chunk)})"
            found.update(row[0] for row in conn.execute(sql, chunk))
    return found


def _shares(limit: int, sizes: list[int]) -> list[int]:
    """Split ``limit`` over parts of ``sizes`` in proportion (largest remainder; ties to the earlier part), each
    share at most its size; every part in full when they hold ``limit`` or fewer."""
    total = sum(sizes)
    if total <= limit:
        return list(sizes)
    exact = [limit * size / total for size in sizes]
    shares = [int(value) for value in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_remainder[: limit - sum(shares)]:
        shares[i] += 1
    return shares


def _caption_order(id_: str) -> tuple[int, str]:
    number = id_.rpartition("-")[2]
    return (int(number), id_) if number.isdigit() else (1 << 62, id_)
