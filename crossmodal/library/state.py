"""`LibraryState`: what the index holds of one library, in one SQLite file per library.

Crash safety (a sync killed at any instruction resumes without losing or duplicating a photo)
------------------------------------------------------------------------------------------
Invariant: the state records a path only for content the index holds under that path's photo id. Each batch:
  1. `state.begin(batch)`: commits the batch's photo ids to a `pending` table (write-ahead intent);
  2. the index write, idempotent by id: embed and upsert (skip the encoder when the store already holds the id),
     update paths, delete photos left without paths;
  3. `state.commit(batch)`: one SQLite transaction deletes the forgotten paths, writes the new path records, records
     files that could not be indexed, and clears the batch's pending rows.
A crash before 1 changes nothing. A crash between 1 and 3 leaves pending ids: the next `plan_sync` re-plans every
pending photo from what is on disk now (its paths, or its removal when none has its content), whatever the other
classes say, so an upsert that happened is reconciled with the disk and one that did not is redone; nothing is
left behind in the index that no path justifies. The index never holds a photo twice because ids are derived from
content. Every path change that links two photos (a changed file: old photo loses the path, new photo gains it) is
in the same batch as both photos, so no commit leaves a record pointing at a photo another commit removed.
The records keep the stat the *scan* saw, taken before the file was hashed: a file modified during the sync has a
newer stat next time and is hashed again.

"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .batch import Failure, PathRecord, SyncBatch

SCHEMA_VERSION = 1


class LibraryStateError(RuntimeError):
    """The state file belongs to another library or to a newer version."""


class LibraryState:
    """What the index holds of one library, in SQLite (WAL, synchronous=FULL: a committed batch survives a crash)."""

    def __init__(self, path: Path, library: str) -> None:
        self.path, self.library = Path(path), library
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._transaction():
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                "mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL, photo_id TEXT NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS files_by_sha256 ON files (sha256)")
            self._db.execute("CREATE TABLE IF NOT EXISTS pending (photo_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS failed (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                "mtime_ns INTEGER NOT NULL, reason TEXT NOT NULL)"
            )
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                meta = {"schema_version": str(SCHEMA_VERSION), "library": library}
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
        problem = None
        if int(meta.get("schema_version", "0")) > SCHEMA_VERSION:
            problem = f"{self.path} was written by a newer version of crossmodal-search"
        elif meta.get("library") != library:
            problem = f"{self.path} is the state of library {meta.get('library')!r}, not {library!r}"
        if problem is not None:
            self._db.close()
            raise LibraryStateError(problem)
        self.records: dict[str, PathRecord] = {}
        self.pending: dict[str, str] = {}
        self.failures: dict[str, Failure] = {}
        self.load()

    def load(self) -> None:
        """(Re)read the records, the pending photo ids and the recorded failures."""
        self.records = {
            row[0]: PathRecord(*row)
            for row in self._db.execute("SELECT path, size, mtime_ns, sha256, photo_id FROM files")
        }
        self.pending = dict(self._db.execute("SELECT photo_id, sha256 FROM pending").fetchall())
        self.failures = {
            row[0]: Failure(*row[1:]) for row in self._db.execute("SELECT path, size, mtime_ns, reason FROM failed")
        }

    def begin(self, batch: SyncBatch) -> None:
        """Step 1: commit the intent (the batch's photo ids) before the index is written."""
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO pending VALUES (?, ?)", [(p.photo_id, p.sha256) for p in batch.photos]
            )
        self.pending.update((p.photo_id, p.sha256) for p in batch.photos)

    def commit(self, batch: SyncBatch) -> None:
        """Step 3, after the index holds the batch: path records, failures and the end of the intent, atomically."""
        records = batch.records()
        with self._transaction():
            self._db.executemany("DELETE FROM files WHERE path = ?", [(path,) for path in batch.forget()])
            self._db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                [(r.path, r.size, r.mtime_ns, r.sha256, r.photo_id) for r in records],
            )
            self._db.executemany("DELETE FROM failed WHERE path = ?", [(path,) for path in batch.clear_failures])
            self._db.executemany("DELETE FROM failed WHERE path = ?", [(r.path,) for r in records])
            self._db.executemany(
                "INSERT OR REPLACE INTO failed VALUES (?, ?, ?, ?)",
                [(path, *failure) for path, failure in batch.failures.items()],
            )
            self._db.executemany("DELETE FROM pending WHERE photo_id = ?", [(p.photo_id,) for p in batch.photos])
        for path in batch.forget():
            self.records.pop(path, None)
        self.records.update((r.path, r) for r in records)
        for path in [*batch.clear_failures, *(r.path for r in records)]:
            self.failures.pop(path, None)
        self.failures.update(batch.failures)
        for photo in batch.photos:
            self.pending.pop(photo.photo_id, None)

    @contextmanager
    def applying(self, batch: SyncBatch) -> Iterator[None]:
        """`with state.applying(batch): <write the index>`: begin, then commit only if the write returned."""
        self.begin(batch)
        yield
        self.commit(batch)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LibraryState:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
