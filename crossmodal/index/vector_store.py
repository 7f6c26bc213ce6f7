"""The vector store: a FAISS inner-product index over vectors that SQLite keeps together with their metadata.

SQLite is the source of truth and every mutation is one transaction that bumps a ``generation`` counter. The
FAISS index is a derived snapshot tagged with the generation it reflects (`snapshot.py`), so a crash between the
SQLite commit and the snapshot write never loses or duplicates data: a stale or missing snapshot is rebuilt.
About 500 lines because it is one class: its SQLite transactions, FAISS upkeep and filtered search share its lock
and its in-memory index; what does not need them lives in the other modules of the package.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from crossmodal.index.photo_filter import PhotoFilter
from crossmodal.index.shards import DB_NAME
from crossmodal.modality import MODALITIES

from .filtering import allowed_nums, bitmap_selector
from .schema import SCHEMA, SCHEMA_VERSION, check_schema_version, migrate_keyword_index
from .snapshot import load_snapshot, write_snapshot
from .sql import check_limit, chunks, marks, read_only_uri
from .types import COLUMNS, VECTOR_DTYPE, Hit, ModelMismatchError, Record, StoreError, to_record

INDEX_TYPES = ("flat", "hnsw")
_faiss: Any = faiss  # faiss's stubs lack the search parameter classes' keyword arguments and SearchParametersHNSW
_REBUILD_BATCH = 10_000
# Filtered HNSW search (VectorStore.search_counted): exact over the allowed vectors up to this many of them, or when
# they are under 1/EXACT_FILTER_SHARE of the index (bench/filter_bench.py measured both ways).
EXACT_FILTER_MAX = 20_000
EXACT_FILTER_SHARE = 20
_ALLOWED_CACHE = 8  # allowed-id sets kept per store (VectorStore._allowed)


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
        check_limit(limit)
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
        """`allowed_nums`, kept for the last few filters of this generation (the pages of one search repeat it)."""
        key = (self._index_generation, photo_filter)
        allowed = self._allowed_cache.get(key)
        if allowed is None:
            allowed = allowed_nums(conn, photo_filter)
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
            selector, _bitmap = bitmap_selector(allowed)  # _bitmap: the bytes the selector points to stay alive
            return index.search(matrix, k, params=_faiss.SearchParameters(sel=selector))
        if len(allowed) <= EXACT_FILTER_MAX or len(allowed) * EXACT_FILTER_SHARE <= index.ntotal:
            return self._exact_search(index, matrix, k, allowed)
        selector, _bitmap = bitmap_selector(allowed)
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
            row = self._db().execute(f"SELECT {COLUMNS} FROM records WHERE id = ?", (id,)).fetchone()
        return to_record(row) if row else None

    def existing_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are stored, so callers can skip re-encoding documents already indexed."""
        found: set[str] = set()
        with self._lock:
            for chunk in chunks(list(dict.fromkeys(ids))):
                sql = f"SELECT id FROM records WHERE id IN ({marks(chunk)})"
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
                for chunk in chunks(pairs):
                    sql = f"SELECT num FROM records WHERE pair_id IN ({marks(chunk)})"
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
                return sqlite3.connect(read_only_uri(db), uri=True, check_same_thread=False, isolation_level=None)
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
                    for statement in SCHEMA:
                        conn.execute(statement)
                    migrate_keyword_index(conn)
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
        for chunk in chunks(ids):
            sql = f"SELECT num FROM records WHERE id IN ({marks(chunk)})"
            nums.extend(row[0] for row in self._db().execute(sql, chunk))
        return nums

    def _delete_nums(self, nums: list[int]) -> None:
        for chunk in chunks(nums):
            self._db().execute(f"DELETE FROM records WHERE num IN ({marks(chunk)})", chunk)

    def _records_by_num(self, nums: set[int]) -> dict[int, Record]:
        found: dict[int, Record] = {}
        for chunk in chunks(sorted(nums)):
            sql = f"SELECT num, {COLUMNS} FROM records WHERE num IN ({marks(chunk)})"
            found.update((row[0], to_record(row[1:])) for row in self._db().execute(sql, chunk))
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
            matrix = np.frombuffer(b"".join(row[1] for row in rows), dtype=VECTOR_DTYPE).reshape(-1, self._dim)
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
        """The snapshot if it was written for exactly this generation and configuration, else None."""
        return load_snapshot(self._folder, self._header(generation))

    def _flush(self) -> None:
        if self._read_only:
            raise StoreError(f"vector store {self._folder} is opened read-only")
        with self._reading():
            index = self._current_index()
        generation = self._index_generation
        if self._snapshot_generation == generation:
            return
        write_snapshot(self._folder, index, self._header(generation))
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
        blob = vector.astype(VECTOR_DTYPE).tobytes()
        return (record.id, record.modality, record.text, record.uri, record.pair_id, record.dataset, record.split,
                tags, blob)



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
