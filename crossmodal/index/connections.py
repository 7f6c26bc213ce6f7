"""Read-only access to a store folder (all its shards) without opening the store: pooled SQLite connections that
never create or change anything, safe across forks.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crossmodal.index.shards import DB_NAME, shard_folders

from .sql import has_table, read_only_uri
from .types import StoreError


def query_read_only(folder: str | Path, sql: str, params: tuple[Any, ...] = ()) -> list[Any] | None:
    """Rows of one query over every shard of ``folder``, read-only (never creates or changes anything); None
    without a store."""
    folders = shard_folders(folder)
    if not folders:
        return None
    return [row for store_folder in folders for row in query_one_store(store_folder / DB_NAME, sql, params)]


def query_one_store(db: Path, sql: str, params: tuple[Any, ...]) -> list[Any]:
    with read_only_db(db) as conn:
        # None: a process was killed between creating the file and committing the schema: no data yet
        return [] if conn is None else conn.execute(sql, params).fetchall()


def store_dbs(folder: str | Path) -> list[Path]:
    return [store_folder / DB_NAME for store_folder in shard_folders(folder)]


@contextlib.contextmanager
def read_only_db(db: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to one store (it never creates or changes anything); None while the store has no
    tables yet (a process was killed between creating the file and committing the schema). The connection comes from
    `readers` and goes back there when the block ends normally; after an error it is closed."""
    try:
        conn, identity, pooled = readers.take(db)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read vector store {db}: {exc}") from exc
    try:
        has_records = pooled or has_table(conn, "records")  # only connections that saw the table are pooled
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
        readers.give_back(db, conn, identity)
    else:
        conn.close()


class ReadOnlyConnections:
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
        conn = sqlite3.connect(read_only_uri(db), uri=True, isolation_level=None, check_same_thread=False)
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


readers = ReadOnlyConnections()
_FORKED_AWAY: list[dict] = []  # a parent process's connections in a forked child
os.register_at_fork(after_in_child=readers.forget_after_fork)




def each_shard(folder: str | Path, table: str = "records") -> Iterator[sqlite3.Connection]:
    """A read-only connection to each shard of ``folder`` that has ``table``, one after the other: the loop that
    every read over all shards shares (a shard killed before its schema was committed is passed over)."""
    for db in store_dbs(folder):
        with read_only_db(db) as conn:
            if conn is not None and (table == "records" or has_table(conn, table)):
                yield conn
