"""Vector store: a FAISS inner-product index over vectors that SQLite keeps together with their metadata.

SQLite is the source of truth and every mutation is one transaction that bumps a ``generation`` counter. The
FAISS index is a derived snapshot tagged with the generation it reflects, so a crash between the SQLite commit
and the snapshot write never loses or duplicates data: a stale or missing snapshot is rebuilt from SQLite.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import struct
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import faiss
import numpy as np

from crossmodal.keywords import CAPTION, build_query, term_expression
from crossmodal.modality import MODALITIES
from crossmodal.photo_filter import PhotoFilter, ascii_lower
from crossmodal.shards import DB_NAME, shard_folders

INDEX_TYPES = ("flat", "hnsw")
_faiss: Any = faiss  # faiss's stubs lack the search parameter classes' keyword arguments and SearchParametersHNSW
# The layout of meta.sqlite and the snapshot. Bump it when a change would make an older version misread a store:
# an older version then refuses the store with StoreVersionError instead of corrupting it.
# Still 1 with the keyword index (_FTS_SCHEMA): it only adds a table, triggers and an index beside `records`. An
# older version reads `records` as before and never looks at them, and its writes keep them right, because the
# triggers live in the database and fire for every writer. A store without them is migrated when this version opens
# it for writing, and reads as "no keyword hits" until then. A bump would make older versions refuse stores they
# read and write correctly.
# Still 1 with the photo metadata index (_METADATA_SCHEMA, issue 11), for the same reasons: a photo's metadata is
# kept in its record's `tags` (the `metadata` object, which every version stores and reads back), and the tables that
# index it for filtering (`photo_metadata`, `photo_paths`) are derived from `records` by triggers that live in the
# database, so an older version's writes and deletes keep them right and its reads never look at them. A store
# without them is migrated (created and back-filled from `records`) when this version opens it for writing; until
# then a metadata filter finds nothing there, as for a store of photos without metadata.
SCHEMA_VERSION = 1
SNAPSHOT_NAME = "index.faiss"

_SNAPSHOT_MAGIC = b"CMSNAP1\n"
_REBUILD_BATCH = 10_000
# Filtered HNSW search (VectorStore.search_counted): exact over the allowed vectors up to this many of them, or when
# they are under 1/EXACT_FILTER_SHARE of the index (bench/filter_bench.py measured both ways).
EXACT_FILTER_MAX = 20_000
EXACT_FILTER_SHARE = 20
_ALLOWED_CACHE = 8  # allowed-id sets kept per store (VectorStore._allowed)
_SQL_CHUNK = 500  # stays below SQLite's limit on bound parameters, whatever the build
_VECTOR_DTYPE = np.dtype("<f4")  # explicit byte order keeps the SQLite blobs portable
_COLUMNS = "id, modality, text, uri, pair_id, dataset, split, tags"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # AUTOINCREMENT: a FAISS label (num) is never reused, so a stale index can never point at a newer record.
    """CREATE TABLE IF NOT EXISTS records (
        num INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        modality TEXT NOT NULL,
        text TEXT, uri TEXT, pair_id TEXT, dataset TEXT, split TEXT,
        tags TEXT NOT NULL,
        vector BLOB NOT NULL
    )""",
)
# The keyword index: SQLite FTS5 over each record's searchable text, row i of records_fts is records.num i.
# A caption (text) is searched by its text; a photo (image) by its file and folder names: its pair id
# (`<dataset>/<path in the dataset>`) without the dataset, so "demo" or "folder" does not match every photo, and,
# for a photo of a photo folder (whose pair id is its content hash), every path it has and its camera, from the
# `metadata` object of its tags.
# unicode61 splits words at every character that is not a letter or digit (`_ - . /` included), so
# `beach_sunset.jpg` is found by "sunset"; porter matches "beaches" to "beach".
FTS_TABLE = "records_fts"
_FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"
_FTS_TRIGGERS = ("records_fts_insert", "records_fts_delete", "records_fts_update")


def _fts_body(row: str) -> str:
    """SQL for the searchable text of a records row (`new`, `old` or the table itself)."""
    prefix = f"{row}.dataset || '/'"
    without_dataset = (f"CASE WHEN {row}.dataset IS NOT NULL AND substr({row}.pair_id, 1, length({prefix})) = {prefix} "
                       f"THEN substr({row}.pair_id, length({prefix}) + 1) ELSE {row}.pair_id END")
    paths = f"json_each({row}.tags, '$.metadata.paths')"
    metadata = (f"coalesce((SELECT ' ' || group_concat(p.value, ' ') FROM {paths} AS p WHERE p.type = 'text'), '') "
                f"|| coalesce(' ' || json_extract({row}.tags, '$.metadata.camera'), '')")
    photo = f"{without_dataset} || CASE WHEN json_valid({row}.tags) THEN {metadata} ELSE '' END"
    return f"CASE WHEN {row}.modality = 'image' THEN {photo} ELSE {row}.text END"


# A keyword index whose triggers predate the photo metadata in its text lacks this in their SQL: it is rebuilt.
_FTS_BODY_MARK = "$.metadata.paths"


_FTS_SCHEMA = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(body, tokenize = '{_FTS_TOKENIZER}')",
    f"""CREATE TRIGGER IF NOT EXISTS records_fts_insert AFTER INSERT ON records BEGIN
        INSERT INTO {FTS_TABLE} (rowid, body) VALUES (new.num, {_fts_body("new")});
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS records_fts_delete AFTER DELETE ON records BEGIN
        DELETE FROM {FTS_TABLE} WHERE rowid = old.num;
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS records_fts_update AFTER UPDATE OF num, modality, text, pair_id, dataset, tags
        ON records BEGIN
        DELETE FROM {FTS_TABLE} WHERE rowid = old.num;
        INSERT INTO {FTS_TABLE} (rowid, body) VALUES (new.num, {_fts_body("new")});
    END""",
    f"INSERT INTO {FTS_TABLE} (rowid, body) SELECT num, {_fts_body('records')} FROM records",  # the back-fill
)
# The captions of a photo by pair id (caption_vectors_of_pairs) without a scan.
_PAIR_INDEX = "CREATE INDEX IF NOT EXISTS records_pair_id ON records (pair_id)"

# The photo metadata index (issue 11): the filterable fields of each record whose tags hold a `metadata` object
# (crossmodal.library.metadata, plus `paths`), keyed by records.num, maintained by triggers (see SCHEMA_VERSION).
# `taken` is the clock time as written, without its zone (crossmodal.photo_filter says why); `photo_paths` holds
# every path of the photo (exact copies), so a folder filter is a range on its primary key. The camera filter is a
# substring (instr over lower(camera), a scan of the rows the other conditions leave): no index serves it.
METADATA_TABLE, PATHS_TABLE = "photo_metadata", "photo_paths"
_METADATA_TRIGGERS = ("photo_metadata_insert", "photo_metadata_delete", "photo_metadata_update")


def _metadata_rows(row: str) -> str:
    """SQL that indexes the metadata of the records row `row` (`new`, or `records` for the back-fill)."""
    has_metadata = f"json_type({row}.tags, '$.metadata') = 'object'"
    located = " AND ".join(f"json_type({row}.tags, '$.metadata.{key}') IN ('integer', 'real')"
                           for key in ("lat", "lon"))
    source = "FROM records" if row == "records" else ""
    paths_from = f"{source}, " if source else "FROM "
    return f"""
        INSERT OR REPLACE INTO {METADATA_TABLE} (num, taken, camera, has_location)
            SELECT {row}.num, substr(json_extract({row}.tags, '$.metadata.taken'), 1, 19),
                   json_extract({row}.tags, '$.metadata.camera'), {located} {source} WHERE {has_metadata};
        INSERT OR IGNORE INTO {PATHS_TABLE} (path, num)
            SELECT paths.value, {row}.num {paths_from}json_each({row}.tags, '$.metadata.paths') AS paths
            WHERE {has_metadata} AND paths.type = 'text';
        INSERT OR IGNORE INTO {PATHS_TABLE} (path, num)
            SELECT json_extract({row}.tags, '$.metadata.path'), {row}.num {source}
            WHERE {has_metadata} AND json_type({row}.tags, '$.metadata.path') = 'text';"""


_METADATA_SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS {METADATA_TABLE} (
        num INTEGER PRIMARY KEY,
        taken TEXT,
        camera TEXT,
        has_location INTEGER NOT NULL
    )""",
    f"CREATE INDEX IF NOT EXISTS photo_metadata_taken ON {METADATA_TABLE} (taken)",
    f"CREATE INDEX IF NOT EXISTS photo_metadata_location ON {METADATA_TABLE} (has_location)",
    f"""CREATE TABLE IF NOT EXISTS {PATHS_TABLE} (
        path TEXT NOT NULL, num INTEGER NOT NULL, PRIMARY KEY (path, num)) WITHOUT ROWID""",
    f"CREATE INDEX IF NOT EXISTS photo_paths_num ON {PATHS_TABLE} (num)",
    f"""CREATE TRIGGER IF NOT EXISTS photo_metadata_insert AFTER INSERT ON records BEGIN
        {_metadata_rows("new")}
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS photo_metadata_delete AFTER DELETE ON records BEGIN
        DELETE FROM {METADATA_TABLE} WHERE num = old.num;
        DELETE FROM {PATHS_TABLE} WHERE num = old.num;
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS photo_metadata_update AFTER UPDATE OF num, tags ON records BEGIN
        DELETE FROM {METADATA_TABLE} WHERE num = old.num;
        DELETE FROM {PATHS_TABLE} WHERE num = old.num;
        {_metadata_rows("new")}
    END""",
)


class StoreError(Exception):
    """A vector store cannot be opened, read or written."""


class StoreVersionError(StoreError):
    """The store was written by a newer version of this project, whose layout this version cannot vouch for."""


class ModelMismatchError(StoreError):
    """The folder was built by another model or dimension; mixing embedding spaces gives meaningless scores."""


@dataclass(frozen=True)
class Record:
    """Metadata of one stored document; its vector travels separately."""

    id: str
    modality: str
    text: str | None = None
    uri: str | None = None
    pair_id: str | None = None
    dataset: str | None = None
    split: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"record id must be a non-empty string, got {self.id!r}")
        if self.modality not in MODALITIES:
            raise ValueError(f"record {self.id!r}: unknown modality {self.modality!r}, expected one of {MODALITIES}")
        if not isinstance(self.tags, dict):
            raise ValueError(f"record {self.id!r}: tags must be a dict, got {type(self.tags).__name__}")

    @property
    def metadata(self) -> dict[str, Any] | None:
        """A photo's metadata object (`tags["metadata"]`, crossmodal.library.metadata plus `paths`), or None."""
        value = self.tags.get("metadata")
        return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class Hit:
    """One search result; ``score`` is the inner product (cosine for normalised vectors), higher is better."""

    record: Record
    score: float


@dataclass(frozen=True)
class KeywordHit:
    """One keyword (FTS5) result: ``score`` is minus bm25 (higher is better; comparable within one query only),
    ``terms`` the query's words that this document matched, lower-cased as the user typed them."""

    id: str
    pair_id: str | None
    score: float
    terms: tuple[str, ...]


class CaptionVector(NamedTuple):
    """One caption of a photo with its vector: what explaining a photo match needs of it (no tags to parse)."""

    id: str
    text: str | None
    vector: np.ndarray


class StoredSettings(NamedTuple):
    """What built a store folder, so a caller can open it with the right dimension or report a mismatch early."""

    model_name: str
    dim: int
    modality: str


def read_record(folder: str | Path, id: str) -> Record | None:
    """Look one record up without loading FAISS, so the gateway can serve images by id cheaply."""
    rows = _query_read_only(folder, f"SELECT {_COLUMNS} FROM records WHERE id = ?", (id,))
    return _to_record(rows[0]) if rows else None


def read_records(folder: str | Path, ids: Sequence[str]) -> dict[str, Record]:
    """The records of those ``ids`` that are stored, by id: one connection per shard and chunk, not one per id."""
    found: dict[str, Record] = {}
    for chunk in _chunks(list(dict.fromkeys(ids))):
        rows = _query_read_only(folder, f"SELECT {_COLUMNS} FROM records WHERE id IN ({_marks(chunk)})", tuple(chunk))
        found.update((record.id, record) for record in map(_to_record, rows or ()))
    return found


def stored_settings(folder: str | Path) -> StoredSettings | None:
    """The model, dimension and modality recorded in ``folder``; None when it holds no store yet."""
    rows = _query_read_only(folder, "SELECT key, value FROM settings")
    if rows is None:
        return None
    settings = dict(rows)
    if "model_name" not in settings:  # its creation was interrupted before the schema was committed
        return None
    check_schema_version(settings, folder)
    return StoredSettings(settings["model_name"], int(settings["dim"]), settings["modality"])


def stored_ids(folder: str | Path) -> set[str]:
    """Every id stored in ``folder`` (empty when it holds no store), so indexing can resume where it stopped."""
    return {row[0] for row in _query_read_only(folder, "SELECT id FROM records") or ()}


def check_schema_version(settings: dict[str, str], folder: str | Path) -> None:
    """Raise StoreVersionError when ``settings`` come from a store with a newer schema than this version reads.

    A store without a version was written before versions were recorded: schema 1.
    """
    try:
        version = int(settings.get("schema_version", "1"))
    except ValueError:
        raise StoreError(f"{folder}: unreadable store schema version {settings['schema_version']!r}") from None
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"the index in {folder} was written by a newer version of crossmodal-search (store schema {version}; "
            f"this version reads schema {SCHEMA_VERSION} and older); upgrade crossmodal-search, or index into "
            "another workspace")


@dataclass(frozen=True)
class StoreSummary:
    """What a store folder holds, read without loading FAISS (for a stats page)."""

    modality: str
    model_name: str
    dim: int
    count: int


def store_summary(folder: str | Path) -> StoreSummary | None:
    """Modality, model, dimension and number of records in ``folder``; None when it holds no store yet."""
    settings = stored_settings(folder)
    if settings is None:
        return None
    rows = _query_read_only(folder, "SELECT COUNT(*) FROM records") or [(0,)]
    return StoreSummary(settings.modality, settings.model_name, settings.dim, sum(int(row[0]) for row in rows))


def records_with_pair_id(folder: str | Path, pair_id: str, id_prefix: str | None = None,
                         limit: int = 1000) -> list[Record]:
    """Records of one image/caption pair (e.g. the captions of a photo), in the order they were stored.

    Without ``id_prefix`` this scans the table; with it (the ids of the pair share a prefix, e.g. ``txt-<hash>-``)
    the lookup is a range on the id index, and ``pair_id`` still has to match.
    """
    sql = f"SELECT {_COLUMNS} FROM records WHERE pair_id = ?"
    params: list[Any] = [pair_id]
    if id_prefix:
        sql += " AND id >= ? AND id < ?"
        params += [id_prefix, id_prefix[:-1] + chr(ord(id_prefix[-1]) + 1)]
    sql += " ORDER BY num LIMIT ?"
    params.append(int(limit))
    return [_to_record(row) for row in _query_read_only(folder, sql, tuple(params)) or ()]


def sample_records(folder: str | Path, limit: int) -> list[Record]:
    """Up to ``limit`` records drawn at random from ``folder`` (all its shards), without loading FAISS."""
    rows = _query_read_only(folder, f"SELECT {_COLUMNS} FROM records ORDER BY RANDOM() LIMIT ?", (int(limit),))
    records = [_to_record(row) for row in rows or ()]
    random.shuffle(records)  # several shards each gave up to `limit`: keep a random `limit` of them
    return records[:limit]


def keyword_search(folder: str | Path, text: str, limit: int, field: str = CAPTION) -> list[KeywordHit]:
    """The best ``limit`` documents of ``folder`` (all its shards) for the words of ``text``, best first.

    ``text`` is free text (crossmodal.keywords: never FTS5 syntax; stop words dropped, the other words OR-ed, so a
    document matching more of them ranks higher). Empty when nothing is left to search for, and for a store that
    has no keyword index yet (written before it existed, not re-opened for writing since). bm25 is computed within
    each shard, so scores of different shards are close to, not exactly, comparable. ``field`` says what the
    folder's documents are (crossmodal.keywords.NAME for a photo index, whose text is file and folder names: camera
    words and numbers are not searched there; CAPTION for a caption index).
    """
    _check_limit(limit)
    query = build_query(text, field)
    if query is None:
        return []
    hits: list[KeywordHit] = []
    for db in _store_dbs(folder):
        with _read_only_db(db) as conn:
            if conn is None or not _has_table(conn, FTS_TABLE):
                continue
            conn.execute("BEGIN")  # the ranking and the matched terms see the same state
            rows = conn.execute(
                f"SELECT r.num, r.id, r.pair_id, -m.rank FROM (SELECT rowid, rank FROM {FTS_TABLE} "
                f"WHERE {FTS_TABLE} MATCH ? ORDER BY rank LIMIT ?) AS m JOIN records AS r ON r.num = m.rowid",
                (query.expression, int(limit))).fetchall()
            matched = _matched_terms(conn, query.terms, [row[0] for row in rows])
            hits += [KeywordHit(id_, pair_id, float(score), matched.get(num, ()))
                     for num, id_, pair_id, score in rows]
    hits.sort(key=lambda hit: (-hit.score, hit.id))
    return hits[:limit]


def read_vectors(folder: str | Path, ids: Sequence[str]) -> dict[str, np.ndarray]:
    """The stored vectors of those ``ids`` that are stored, by id (float32, 1-D): one connection per shard."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, np.ndarray] = {}
    for db in _store_dbs(folder):
        with _read_only_db(db) as conn:
            if conn is None:
                continue
            for chunk in _chunks([id_ for id_ in wanted if id_ not in found]):
                sql = f"SELECT id, vector FROM records WHERE id IN ({_marks(chunk)})"
                found.update((id_, _to_vector(blob)) for id_, blob in conn.execute(sql, chunk))
    return found


def vector_sample(folder: str | Path, limit: int) -> np.ndarray:
    """At most ``limit`` stored vectors of ``folder`` (all of them when it holds fewer), as an [N, dim] float32
    matrix, e.g. the collection a query's scores are normalised against.

    Deterministic: the same sample on every call while the store does not change (``store_generations`` tells when
    it did). Spread over the whole store: each shard gives its share of ``limit`` (by its size), taken at evenly
    spaced positions of its insertion order, never just its first rows. Rows are in shard order, then insertion order.
    """
    _check_limit(limit)
    with contextlib.ExitStack() as stack:
        shards: list[tuple[sqlite3.Connection, np.ndarray]] = []
        dim = 0
        for db in _store_dbs(folder):
            conn = stack.enter_context(_read_only_db(db))
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
            for chunk in _chunks([int(num) for num in nums[positions]]):
                sql = f"SELECT vector FROM records WHERE num IN ({_marks(chunk)}) ORDER BY num"
                vectors += [_to_vector(row[0]) for row in conn.execute(sql, chunk)]
    if not vectors:
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack(vectors)


def store_generations(folder: str | Path) -> tuple[int, ...]:
    """Each shard's generation counter, in shard order: it grows with every committed write, so a value computed
    from the store (e.g. ``vector_sample``) can be kept until this changes. Empty without a store."""
    generations = []
    for db in _store_dbs(folder):
        rows = _query_one_store(db, "SELECT value FROM settings WHERE key = 'generation'", ())
        generations.append(int(rows[0][0]) if rows else 0)
    return tuple(generations)


def caption_vectors_of_pairs(folder: str | Path, pair_ids: Sequence[str]) -> dict[str, list[CaptionVector]]:
    """The captions (text records) of each of ``pair_ids`` with their vectors, by pair id, in caption order (the
    number ending a caption id, `txt-<hash>-N`); pair ids without captions are left out. ``folder`` is the caption
    index. One connection per shard, one query per chunk of pair ids."""
    wanted = list(dict.fromkeys(pair_ids))
    found: dict[str, list[CaptionVector]] = {}
    for db in _store_dbs(folder):
        with _read_only_db(db) as conn:
            if conn is None:
                continue
            for chunk in _chunks(wanted):
                sql = (f"SELECT id, text, pair_id, vector FROM records WHERE modality = 'text' "
                       f"AND pair_id IN ({_marks(chunk)})")
                for id_, text, pair_id, blob in conn.execute(sql, chunk):
                    found.setdefault(pair_id or "", []).append(CaptionVector(id_, text, _to_vector(blob)))
    for captions in found.values():
        captions.sort(key=lambda caption: _caption_order(caption.id))
    return found


class VectorStore:
    """One modality's index in a folder: upsert, search, get and delete by string id; thread-safe."""

    def __init__(
        self,
        folder: str | Path,
        modality: str,
        model_name: str,
        dim: int,
        index_type: str = "flat",
        hnsw_m: int = 32,
        ef_search: int = 64,
        read_only: bool = False,
    ) -> None:
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}, expected one of {MODALITIES}")
        if index_type not in INDEX_TYPES:
            raise ValueError(f"unknown index_type {index_type!r}, expected one of {INDEX_TYPES}")
        if int(dim) < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if int(hnsw_m) < 2 or int(ef_search) < 1:
            raise ValueError(f"HNSW needs hnsw_m >= 2 and ef_search >= 1, got {hnsw_m!r} and {ef_search!r}")
        self._folder = Path(folder)
        self._modality = modality
        self._model_name = model_name
        self._dim = int(dim)
        self._index_type = index_type
        self._hnsw_m = hnsw_m
        self._ef_search = ef_search
        self._read_only = read_only
        self._lock = threading.Lock()
        self._index: faiss.Index | None = None
        self._index_generation = -1
        self._snapshot_generation: int | None = None
        self._id_order: tuple[faiss.Index, np.ndarray] | None = None  # an HNSW index's labels in sorted order
        self._allowed_cache: dict[tuple[int, PhotoFilter], np.ndarray] = {}  # LRU: insertion order
        self._conn: sqlite3.Connection | None = self._connect()
        try:
            self._check_settings()
            with self._reading():
                self._current_index()
        except BaseException:
            self._conn.close()
            raise

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def modality(self) -> str:
        return self._modality

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add(self, records: Sequence[Record], vectors: np.ndarray) -> None:
        """Upsert: a record whose id is already stored (or repeated in ``records``; the last wins) is replaced."""
        records = list(records)
        matrix = self._as_matrix(vectors, "vectors", allow_1d=False)
        if len(records) != len(matrix):
            raise ValueError(f"got {len(records)} records but {len(matrix)} vectors")
        rows = [self._to_row(record, vector) for record, vector in zip(records, matrix)]
        last = sorted({row[0]: i for i, row in enumerate(rows)}.values())
        if not last:
            return
        rows, matrix = [rows[i] for i in last], matrix[last]
        insert = "INSERT INTO records (id, modality, text, uri, pair_id, dataset, split, tags, vector) "
        insert += "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        with self._lock:
            with self._writing() as conn:
                before = self._db_generation()
                replaced = self._nums_for_ids([row[0] for row in rows])
                self._delete_nums(replaced)
                nums = [int(conn.execute(insert, row).lastrowid or 0) for row in rows]  # always set by INSERT
                after = self._bump_generation()
            self._apply(before, after, removed=replaced, added=(nums, matrix))

    def search(self, queries: np.ndarray, limit: int, photo_filter: PhotoFilter | None = None) -> list[list[Hit]]:
        """Best ``limit`` hits per query (a 1-D vector is one query), by descending score; with ``photo_filter``,
        the best among the records it allows (see `search_counted`)."""
        return self.search_counted(queries, limit, photo_filter)[0]

    def search_is_ready(self) -> bool:
        """True when a search now would find this generation's index in memory and the lock free, so it costs no
        more than the search itself. False when it would first load a new snapshot or rebuild the index (seconds on a
        large store, after another process wrote) or wait for a write: a caller on an event loop hands that search to
        a thread, and the loop keeps answering meanwhile."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            return self._index is not None and self._index_generation == self._db_generation()
        finally:
            self._lock.release()

    def search_counted(self, queries: np.ndarray, limit: int,
                       photo_filter: PhotoFilter | None = None) -> tuple[list[list[Hit]], int]:
        """The hits of `search`, and how many records could be hits: those ``photo_filter`` allows, else all.

        The filter runs inside the index: SQLite selects the allowed record numbers (`photo_metadata`,
        `photo_paths`), and FAISS searches only them through an id selector, so a filter never returns fewer than
        ``limit`` hits when the store holds more that pass it. Flat: exact, the selector skips the other vectors.
        HNSW: a small allowed set (at most `EXACT_FILTER_MAX` records, or under 1/`EXACT_FILTER_SHARE` of the
        index) is searched exactly over its vectors, read from the HNSW storage, which is both faster and exact
        there; a larger one through the graph with the selector, and any query the graph search leaves short of
        ``limit`` is searched exactly.
        """
        _check_limit(limit)
        matrix = self._as_matrix(queries, "queries", allow_1d=True)
        filtered = photo_filter is not None and not photo_filter.is_empty()
        with self._lock, self._reading() as conn:
            index = self._current_index()
            allowed = self._allowed(conn, photo_filter) if filtered and photo_filter is not None else None
            candidates = index.ntotal if allowed is None else len(allowed)
            k = min(int(limit), candidates)
            if k == 0 or len(matrix) == 0:
                return [[] for _ in range(len(matrix))], candidates
            with faiss_threads_for(len(matrix)):
                if allowed is None:
                    scores, labels = index.search(matrix, k)
                else:
                    scores, labels = self._search_allowed(index, matrix, k, allowed)
            records = self._records_by_num({int(label) for label in labels.ravel() if label >= 0})
        hits = [
            [Hit(records[int(label)], float(score)) for score, label in zip(row_scores, row_labels)
             if label >= 0 and int(label) in records]
            for row_scores, row_labels in zip(scores, labels)
        ]
        return hits, candidates

    def _allowed(self, conn: sqlite3.Connection, photo_filter: PhotoFilter) -> np.ndarray:
        """`_allowed_nums`, kept for the last few filters of this generation (the pages of one search repeat it)."""
        key = (self._index_generation, photo_filter)
        allowed = self._allowed_cache.get(key)
        if allowed is None:
            allowed = _allowed_nums(conn, photo_filter)
            if len(self._allowed_cache) >= _ALLOWED_CACHE:
                self._allowed_cache.pop(next(iter(self._allowed_cache)))
        else:
            del self._allowed_cache[key]  # re-inserted below: most recently used last
        self._allowed_cache[key] = allowed
        return allowed

    def _search_allowed(self, index: Any, matrix: np.ndarray, k: int,
                        allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """FAISS search restricted to the labels ``allowed`` (sorted record numbers); callers hold self._lock."""
        if self._index_type == "flat":
            selector, _bitmap = _bitmap_selector(allowed)  # _bitmap: the bytes the selector points to stay alive
            return index.search(matrix, k, params=_faiss.SearchParameters(sel=selector))
        if len(allowed) <= EXACT_FILTER_MAX or len(allowed) * EXACT_FILTER_SHARE <= index.ntotal:
            return self._exact_search(index, matrix, k, allowed)
        selector, _bitmap = _bitmap_selector(allowed)
        params = _faiss.SearchParametersHNSW(sel=selector, efSearch=max(self._ef_search, k))
        scores, labels = index.search(matrix, k, params=params)
        short = (labels < 0).any(axis=1)  # the graph search ran out of allowed candidates for these queries
        if short.any():
            scores[short], labels[short] = self._exact_search(index, matrix[short], k, allowed)
        return scores, labels

    def _exact_search(self, index: Any, matrix: np.ndarray, k: int,
                      allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products with the allowed vectors of an HNSW index, read in place from its flat storage."""
        hnsw: Any = faiss.downcast_index(index.index)
        storage: Any = faiss.downcast_index(hnsw.storage)
        ntotal = index.ntotal
        vectors = faiss.rev_swig_ptr(storage.get_xb(), ntotal * self._dim).reshape(ntotal, self._dim)
        ids = faiss.vector_to_array(index.id_map)
        cached = self._id_order
        if cached is None or cached[0] is not index or len(cached[1]) != ntotal:
            cached = (index, np.argsort(ids, kind="stable"))
            self._id_order = cached
        order = cached[1]
        found = np.searchsorted(ids, allowed, sorter=order)
        found = np.minimum(found, max(ntotal - 1, 0))
        positions = order[found]
        present = ids[positions] == allowed
        positions, labels = positions[present], allowed[present]
        scores = matrix @ vectors[positions].T
        k = min(k, len(labels))
        out_scores = np.full((len(matrix), k), -np.inf, dtype=np.float32)
        out_labels = np.full((len(matrix), k), -1, dtype=np.int64)
        if k == 0:
            return out_scores, out_labels
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        for row, columns in enumerate(top):
            ranked = columns[np.lexsort((labels[columns], -scores[row, columns]))]
            out_scores[row], out_labels[row] = scores[row, ranked], labels[ranked]
        return out_scores, out_labels

    def get(self, id: str) -> Record | None:
        with self._lock:
            row = self._db().execute(f"SELECT {_COLUMNS} FROM records WHERE id = ?", (id,)).fetchone()
        return _to_record(row) if row else None

    def existing_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are stored, so callers can skip re-encoding documents already indexed."""
        found: set[str] = set()
        with self._lock:
            for chunk in _chunks(list(dict.fromkeys(ids))):
                sql = f"SELECT id FROM records WHERE id IN ({_marks(chunk)})"
                found.update(row[0] for row in self._db().execute(sql, chunk))
        return found

    def delete(self, ids: Iterable[str], pair_ids: Iterable[str] = ()) -> int:
        """Remove records by id, and every record of the pairs ``pair_ids`` (a photo's captions), in one
        transaction; returns how many were stored."""
        ids = list(dict.fromkeys(ids))
        pairs = list(dict.fromkeys(pair_ids))
        with self._lock:
            with self._writing():
                before = self._db_generation()
                removed = self._nums_for_ids(ids)
                for chunk in _chunks(pairs):
                    sql = f"SELECT num FROM records WHERE pair_id IN ({_marks(chunk)})"
                    removed.extend(row[0] for row in self._db().execute(sql, chunk))
                removed = sorted(set(removed))
                self._delete_nums(removed)
                after = self._bump_generation() if removed else before
            self._apply(before, after, removed=removed, added=None)
        return len(removed)

    def count(self) -> int:
        with self._lock:
            return self._db().execute("SELECT COUNT(*) FROM records").fetchone()[0]

    def flush(self) -> None:
        """Write the FAISS snapshot, so the next open loads it instead of rebuilding from SQLite."""
        with self._lock:
            self._flush()

    def close(self) -> None:
        """Flush (unless read-only) and release the database; further calls raise StoreError."""
        with self._lock:
            if self._conn is None:
                return
            try:
                if not self._read_only:
                    self._flush()
            finally:
                self._conn.close()
                self._conn = None
                self._index = None

    # --- opening -------------------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = self._folder / DB_NAME
        try:
            if self._read_only:
                if not db.is_file():
                    raise StoreError(f"no vector store in {self._folder} (missing {DB_NAME}); index some data first")
                return sqlite3.connect(_read_only_uri(db), uri=True, check_same_thread=False, isolation_level=None)
            self._folder.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StoreError(f"cannot open vector store {db}: {exc}") from exc

    def _check_settings(self) -> None:
        """Record model, dimension and modality on creation; refuse to reopen with different ones."""
        wanted = {"model_name": self._model_name, "dim": str(self._dim), "modality": self._modality, "generation": "0",
                  "schema_version": str(SCHEMA_VERSION)}
        try:
            if not self._read_only:
                check_schema_version(self._existing_settings(), self._folder)  # before writing into a newer store
                with self._writing() as conn:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    _migrate_keyword_index(conn)
                    conn.executemany("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", wanted.items())
            stored = dict(self._db().execute("SELECT key, value FROM settings"))
            check_schema_version(stored, self._folder)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self._folder / DB_NAME} is not a readable vector store: {exc}") from exc
        if (stored.get("model_name"), stored.get("dim")) != (self._model_name, str(self._dim)):
            raise ModelMismatchError(
                f"{self._folder} was built with model {stored.get('model_name')!r} (dim {stored.get('dim')}), "
                f"but model {self._model_name!r} (dim {self._dim}) was requested; "
                f"use another workspace folder or delete {self._folder} to re-index with the new model"
            )
        if stored.get("modality") != self._modality:
            raise StoreError(f"{self._folder} holds the {stored.get('modality')!r} index, not {self._modality!r}")

    def _existing_settings(self) -> dict[str, str]:
        """The settings table, empty when the store is new (the table does not exist yet)."""
        has_table = self._db().execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'settings'").fetchone()
        return dict(self._db().execute("SELECT key, value FROM settings")) if has_table else {}

    # --- SQLite helpers (callers hold self._lock) -----------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"vector store {self._folder} is closed")
        return self._conn

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """IMMEDIATE takes SQLite's write lock up front, so the generation read inside is the one we replace."""
        if self._read_only:
            raise StoreError(f"vector store {self._folder} is opened read-only")
        conn = self._db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A read transaction sees one consistent state even while another process writes."""
        conn = self._db()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def _db_generation(self) -> int:
        return int(self._db().execute("SELECT value FROM settings WHERE key = 'generation'").fetchone()[0])

    def _bump_generation(self) -> int:
        self._db().execute("UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        return self._db_generation()

    def _nums_for_ids(self, ids: list[str]) -> list[int]:
        nums: list[int] = []
        for chunk in _chunks(ids):
            sql = f"SELECT num FROM records WHERE id IN ({_marks(chunk)})"
            nums.extend(row[0] for row in self._db().execute(sql, chunk))
        return nums

    def _delete_nums(self, nums: list[int]) -> None:
        for chunk in _chunks(nums):
            self._db().execute(f"DELETE FROM records WHERE num IN ({_marks(chunk)})", chunk)

    def _records_by_num(self, nums: set[int]) -> dict[int, Record]:
        found: dict[int, Record] = {}
        for chunk in _chunks(sorted(nums)):
            sql = f"SELECT num, {_COLUMNS} FROM records WHERE num IN ({_marks(chunk)})"
            found.update((row[0], _to_record(row[1:])) for row in self._db().execute(sql, chunk))
        return found

    # --- FAISS index (callers hold self._lock) --------------------------------------------------------------------

    def _new_index(self) -> faiss.Index:
        if self._index_type == "flat":
            return faiss.IndexIDMap(faiss.IndexFlatIP(self._dim))
        return faiss.IndexIDMap(faiss.IndexHNSWFlat(self._dim, self._hnsw_m, faiss.METRIC_INNER_PRODUCT))

    def _current_index(self) -> faiss.Index:
        """The index for SQLite's current generation: kept, loaded from the snapshot, or rebuilt."""
        generation = self._db_generation()
        if self._index is None or self._index_generation != generation:
            index = self._load_snapshot(generation)
            if index is None:
                index = self._rebuild()
            else:
                self._snapshot_generation = generation
            if self._index_type == "hnsw":
                faiss.downcast_index(index.index).hnsw.efSearch = self._ef_search  # type: ignore[attr-defined]
            self._index, self._index_generation = index, generation
        return self._index

    def _rebuild(self) -> faiss.Index:
        index = self._new_index()
        last = -1
        while rows := self._db().execute(
            "SELECT num, vector FROM records WHERE num > ? ORDER BY num LIMIT ?", (last, _REBUILD_BATCH)
        ).fetchall():
            nums = np.array([row[0] for row in rows], dtype=np.int64)
            matrix = np.frombuffer(b"".join(row[1] for row in rows), dtype=_VECTOR_DTYPE).reshape(-1, self._dim)
            index.add_with_ids(np.ascontiguousarray(matrix, dtype=np.float32), nums)
            last = int(nums[-1])
        return index

    def _apply(self, before: int, after: int, removed: list[int], added: tuple[list[int], np.ndarray] | None) -> None:
        """Mirror a committed write in memory; when that is impossible, drop the index so it is rebuilt lazily."""
        incremental = self._index is not None and self._index_generation == before
        if not incremental or (removed and self._index_type == "hnsw"):  # HNSW cannot remove vectors
            self._index = None
            return
        index: Any = self._index  # faiss's stubs type these calls' arguments as SWIG objects, not numpy arrays
        if removed:
            index.remove_ids(np.array(removed, dtype=np.int64))
        if added:
            nums, matrix = added
            index.add_with_ids(matrix, np.array(nums, dtype=np.int64))
        self._index_generation = after

    def _header(self, generation: int) -> dict[str, Any]:
        hnsw_m = self._hnsw_m if self._index_type == "hnsw" else None
        return {"generation": generation, "index_type": self._index_type, "dim": self._dim, "hnsw_m": hnsw_m}

    def _load_snapshot(self, generation: int) -> faiss.Index | None:
        """The snapshot if it was written for exactly this generation and configuration, else None.

        FAISS reads straight from the file, so opening never holds the index twice in memory.
        """
        try:
            file = open(self._folder / SNAPSHOT_NAME, "rb")
        except FileNotFoundError:
            return None
        with file:
            prefix = file.read(len(_SNAPSHOT_MAGIC) + 4)
            if len(prefix) < len(_SNAPSHOT_MAGIC) + 4 or not prefix.startswith(_SNAPSHOT_MAGIC):
                return None
            (header_size,) = struct.unpack("<I", prefix[len(_SNAPSHOT_MAGIC):])
            try:
                header = json.loads(file.read(header_size))
                if header != self._header(generation):
                    return None
                return faiss.read_index(faiss.PyCallbackIOReader(file.read))  # type: ignore[attr-defined]
            except (ValueError, RuntimeError):  # damaged snapshot: SQLite still has everything
                return None

    def _flush(self) -> None:
        if self._read_only:
            raise StoreError(f"vector store {self._folder} is opened read-only")
        with self._reading():
            index = self._current_index()
        generation = self._index_generation
        if self._snapshot_generation == generation:
            return
        header = json.dumps(self._header(generation)).encode()
        fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".tmp", dir=self._folder)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(_SNAPSHOT_MAGIC + struct.pack("<I", len(header)) + header)
                # Streamed: no second copy. (faiss's stubs omit the callback IO classes.)
                faiss.write_index(index, faiss.PyCallbackIOWriter(file.write))  # type: ignore[attr-defined]
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self._folder / SNAPSHOT_NAME)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(self._folder)
        self._snapshot_generation = generation

    # --- validation ---------------------------------------------------------------------------------------------

    def _as_matrix(self, values: np.ndarray, name: str, allow_1d: bool) -> np.ndarray:
        try:
            matrix = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be numeric: {exc}") from exc
        if allow_1d and matrix.ndim == 1:
            matrix = matrix[None, :]
        if matrix.ndim != 2 or matrix.shape[1] != self._dim:
            raise ValueError(f"{name} must have shape [N, {self._dim}], got {list(matrix.shape)}")
        if not np.isfinite(matrix).all():
            raise ValueError(f"{name} contain NaN or infinite values")
        return np.ascontiguousarray(matrix)

    def _to_row(self, record: Record, vector: np.ndarray) -> tuple[Any, ...]:
        if not isinstance(record, Record):
            raise TypeError(f"expected a Record, got {type(record).__name__}")
        if record.modality != self._modality:
            raise ValueError(
                f"record {record.id!r} has modality {record.modality!r}, but this store holds {self._modality!r}"
            )
        try:
            tags = json.dumps(record.tags, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"record {record.id!r}: tags are not JSON-serialisable: {exc}") from exc
        blob = vector.astype(_VECTOR_DTYPE).tobytes()
        return (record.id, record.modality, record.text, record.uri, record.pair_id, record.dataset, record.split,
                tags, blob)


def _migrate_keyword_index(conn: sqlite3.Connection) -> None:
    """Create the keyword index and fill it from `records` when the store lacks it or any of its triggers (a store
    written before it existed); inside the caller's write transaction, so a crash leaves all of it or none."""
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
    insert_sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                              (_FTS_TRIGGERS[0],)).fetchone()
    current = insert_sql is not None and _FTS_BODY_MARK in insert_sql[0]
    if FTS_TABLE not in names or not names.issuperset(_FTS_TRIGGERS) or not current:
        for trigger in _FTS_TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        conn.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
        for statement in _FTS_SCHEMA:
            conn.execute(statement)
    conn.execute(_PAIR_INDEX)
    _migrate_metadata_index(conn, names)


def _migrate_metadata_index(conn: sqlite3.Connection, names: set[str]) -> None:
    """Create the photo metadata index and fill it from `records` when the store lacks any part of it (a store
    written before it existed); inside the caller's write transaction."""
    if {METADATA_TABLE, PATHS_TABLE}.issubset(names) and names.issuperset(_METADATA_TRIGGERS):
        return
    for trigger in _METADATA_TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    conn.execute(f"DROP TABLE IF EXISTS {METADATA_TABLE}")
    conn.execute(f"DROP TABLE IF EXISTS {PATHS_TABLE}")
    for statement in _METADATA_SCHEMA:
        conn.execute(statement)
    for statement in _metadata_rows("records").split(";"):
        if statement.strip():
            conn.execute(statement)


def _filter_conditions(photo_filter: PhotoFilter) -> tuple[list[str], list[Any]]:
    """SQL conditions on `photo_metadata AS m` for the filter, with their parameters."""
    conditions: list[str] = []
    params: list[Any] = []
    folder = photo_filter.folder_range()
    if folder is not None:
        conditions.append(f"m.num IN (SELECT num FROM {PATHS_TABLE} WHERE path >= ? AND path < ?)")
        params += folder
    if photo_filter.taken_after is not None:
        conditions.append("m.taken >= ?")
        params.append(photo_filter.taken_after)
    if photo_filter.taken_before is not None:
        conditions.append("m.taken <= ?")
        params.append(photo_filter.taken_before)
    if photo_filter.has_location is not None:
        conditions.append("m.has_location = ?")
        params.append(int(photo_filter.has_location))
    if photo_filter.camera is not None:
        conditions.append("instr(lower(m.camera), ?) > 0")
        params.append(ascii_lower(photo_filter.camera))
    return conditions, params


def _allowed_nums(conn: sqlite3.Connection, photo_filter: PhotoFilter) -> np.ndarray:
    """The record numbers of one store that ``photo_filter`` allows, sorted (int64)."""
    if not _has_table(conn, METADATA_TABLE):
        return np.zeros(0, dtype=np.int64)  # a store not migrated yet: no photo has indexed metadata
    conditions, params = _filter_conditions(photo_filter)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    # One string out of SQLite, parsed in C: 3x faster than a Python row per number.
    (joined,) = conn.execute(f"SELECT group_concat(m.num) FROM {METADATA_TABLE} AS m{where}", params).fetchone()
    return np.sort(np.fromstring(joined or "", dtype=np.int64, sep=","))


def filter_ids(folder: str | Path, ids: Sequence[str], photo_filter: PhotoFilter | None) -> set[str]:
    """Which of ``ids`` (records of ``folder``, all its shards) ``photo_filter`` allows; all of them without one.
    For hits found outside FAISS, e.g. by the keyword search."""
    wanted = list(dict.fromkeys(ids))
    if photo_filter is None or photo_filter.is_empty():
        return set(wanted)
    conditions, params = _filter_conditions(photo_filter)
    allowed: set[str] = set()
    for db in _store_dbs(folder):
        with _read_only_db(db) as conn:
            if conn is None or not _has_table(conn, METADATA_TABLE):
                continue
            for chunk in _chunks(wanted):
                sql = (f"SELECT r.id FROM records AS r JOIN {METADATA_TABLE} AS m ON m.num = r.num "
                       f"WHERE r.id IN ({_marks(chunk)})" + "".join(f" AND {c}" for c in conditions))
                allowed.update(row[0] for row in conn.execute(sql, [*chunk, *params]))
    return allowed


def _bitmap_selector(allowed: np.ndarray) -> tuple[faiss.IDSelector, np.ndarray]:
    """A FAISS selector of the labels ``allowed`` (non-negative): one bit per label up to the largest, which tests
    membership in one step (record numbers are dense: AUTOINCREMENT). Keep the array while the selector is used."""
    bits = np.zeros(int(allowed.max()) + 1 if len(allowed) else 1, dtype=bool)
    bits[allowed] = True
    bitmap = np.packbits(bits, bitorder="little")
    return faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap)), bitmap


def _to_record(row: Sequence[Any]) -> Record:
    id_, modality, text, uri, pair_id, dataset, split, tags = row
    return Record(id_, modality, text, uri, pair_id, dataset, split, json.loads(tags))


def _query_read_only(folder: str | Path, sql: str, params: tuple[Any, ...] = ()) -> list[Any] | None:
    """Rows of one query over every shard of ``folder``, read-only (never creates or changes anything); None
    without a store."""
    folders = shard_folders(folder)
    if not folders:
        return None
    return [row for store_folder in folders for row in _query_one_store(store_folder / DB_NAME, sql, params)]


def _query_one_store(db: Path, sql: str, params: tuple[Any, ...]) -> list[Any]:
    with _read_only_db(db) as conn:
        # None: a process was killed between creating the file and committing the schema: no data yet
        return [] if conn is None else conn.execute(sql, params).fetchall()


def _store_dbs(folder: str | Path) -> list[Path]:
    return [store_folder / DB_NAME for store_folder in shard_folders(folder)]


@contextlib.contextmanager
def _read_only_db(db: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to one store (it never creates or changes anything); None while the store has no
    tables yet (a process was killed between creating the file and committing the schema). The connection comes from
    `_readers` and goes back there when the block ends normally; after an error it is closed."""
    try:
        conn, identity, pooled = _readers.take(db)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read vector store {db}: {exc}") from exc
    try:
        has_records = pooled or _has_table(conn, "records")  # only connections that saw the table are pooled
        yield conn if has_records else None
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"cannot read vector store {db}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    if conn.in_transaction:
        conn.rollback()
    if has_records:
        _readers.give_back(db, conn, identity)
    else:
        conn.close()


class _ReadOnlyConnections:
    """The process's idle read-only connections, by database file: a read takes one (or opens one) and gives it back.

    The query server reads the stores for every answer (records, captions, generations, duplicates): connecting
    anew each time (resolving the path, opening the file and its WAL index, reading the schema) was a quarter of the
    gateway's CPU per text query (py-spy). A connection in autocommit mode starts a read transaction per statement,
    so it sees every commit of the indexers as a new connection would. It is reused only while the file has the same
    device, inode and change time: a store deleted, re-created or checkpointed gets new connections. At most
    `IDLE_PER_STORE` are kept per file (as many as the reads that run at once, each with SQLite's page cache, when
    more threads read: those are closed after use) and `STORES` files (the least recently used closed first). A
    forked process (Jina forks its executors and gateway from the process that loads the flow) starts with none:
    SQLite connections must be neither used nor closed across a fork, so the parent's are left as they are."""

    IDLE_PER_STORE = 16
    STORES = 16

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.idle: dict[Path, tuple[tuple[int, int, int], list[sqlite3.Connection]]] = {}

    def take(self, db: Path) -> tuple[sqlite3.Connection, tuple[int, int, int], bool]:
        """A connection to `db`, the file's identity, and whether the connection was idle here (used before)."""
        identity = _file_identity(db)
        stale: list[sqlite3.Connection] = []
        with self._lock:
            known = self.idle.pop(db, None)
            if known is not None and identity is not None and known[0] == identity:
                self.idle[db] = known  # most recently used last
                if known[1]:
                    return known[1].pop(), identity, True
            elif known is not None:
                stale = known[1]
        for conn in stale:
            conn.close()
        conn = sqlite3.connect(_read_only_uri(db), uri=True, isolation_level=None, check_same_thread=False)
        identity = identity or _file_identity(db)  # created meanwhile
        if identity is None:
            conn.close()
            raise sqlite3.OperationalError("unable to open database file")
        return conn, identity, False

    def give_back(self, db: Path, conn: sqlite3.Connection, identity: tuple[int, int, int]) -> None:
        closing: list[sqlite3.Connection] = []
        with self._lock:
            known = self.idle.pop(db, None)
            if known is not None and known[0] != identity:  # opened on another file than these: the next take
                closing += known[1]  # compares with the file that is there now
                known = None
            entry = known or (identity, [])
            if len(entry[1]) < self.IDLE_PER_STORE:
                entry[1].append(conn)
            else:
                closing.append(conn)
            self.idle[db] = entry
            while len(self.idle) > self.STORES:
                closing += self.idle.pop(next(iter(self.idle)))[1]
        for stale in closing:
            stale.close()

    def forget_after_fork(self) -> None:
        """In a forked child: a new lock, no connections (the parent's stay referenced, never used or closed)."""
        _FORKED_AWAY.append(self.idle)
        self._lock = threading.Lock()
        self.idle = {}


def _file_identity(db: Path) -> tuple[int, int, int] | None:
    try:
        status = os.stat(db)
    except OSError:
        return None
    return status.st_dev, status.st_ino, status.st_ctime_ns


_readers = _ReadOnlyConnections()
_FORKED_AWAY: list[dict] = []  # a parent process's connections in a forked child
os.register_at_fork(after_in_child=_readers.forget_after_fork)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _matched_terms(conn: sqlite3.Connection, terms: tuple[str, ...], nums: list[int]) -> dict[int, tuple[str, ...]]:
    """Which of ``terms`` each of the rows ``nums`` matches: one FTS5 lookup per term and chunk of rows."""
    if len(terms) == 1:
        return dict.fromkeys(nums, terms)
    matched: dict[int, list[str]] = {}
    for term in terms:
        for chunk in _chunks(nums):
            sql = f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ? AND rowid IN ({_marks(chunk)})"
            for (num,) in conn.execute(sql, (term_expression(term), *chunk)):
                matched.setdefault(num, []).append(term)
    return {num: tuple(found) for num, found in matched.items()}


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


def _to_vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=_VECTOR_DTYPE).astype(np.float32)


@contextlib.contextmanager
def faiss_threads_for(queries: int) -> Iterator[None]:
    """FAISS on one OpenMP thread for a single query, on all of them for a batch.

    A single query is one scan that FAISS splits over its threads, which sleep between the queries of a server: waking
    them costs more than the scan. Measured on 2 cores, flat index of 384-d vectors, one query every 20 ms: 20
    vectors 0.05 ms on one thread against 4.5 ms on two, 100,000 vectors 5.3 against 13.2 ms; a batch of 4 queries
    over 100,000: 21 against 11 ms. The setting is per process and put back afterwards (a store's searches hold its
    lock; another store of the same process searching meanwhile only runs on fewer threads)."""
    if queries > 1:
        yield
        return
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")


def _read_only_uri(db: Path) -> str:
    return db.resolve().as_uri() + "?mode=ro"


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), _SQL_CHUNK):
        yield values[start : start + _SQL_CHUNK]


def _marks(chunk: list[Any]) -> str:
    return ", ".join("?" * len(chunk))


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; only POSIX can open a directory for fsync."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
