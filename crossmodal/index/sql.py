"""Small SQLite helpers the store modules share: chunks of bound parameters, read-only URIs, a durable rename.
"""
from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

SQL_CHUNK = 500  # stays below SQLite's limit on bound parameters, whatever the build


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None




def check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")


def read_only_uri(db: Path) -> str:
    return db.resolve().as_uri() + "?mode=ro"


def chunks(values: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), SQL_CHUNK):
        yield values[start : start + SQL_CHUNK]


def marks(chunk: list[Any]) -> str:
    return ", ".join("?" * len(chunk))


def fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; only POSIX can open a directory for fsync."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
