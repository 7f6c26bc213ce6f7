"""The store records its schema version; a store written by a newer version is refused, never rewritten."""
import sqlite3

import numpy as np
import pytest

from crossmodal.index import (
    SCHEMA_VERSION,
    Record,
    StoreError,
    StoreVersionError,
    VectorStore,
    stored_settings,
)
from crossmodal.index.shards import DB_NAME

DIM = 3


def write_store(folder) -> None:
    with VectorStore(folder, "text", "m", DIM) as store:
        store.add([Record(id="a", modality="text", text="a caption")], np.eye(1, DIM, dtype=np.float32))


def set_version(folder, value: str | None) -> None:
    with sqlite3.connect(folder / DB_NAME) as db:
        if value is None:
            db.execute("DELETE FROM settings WHERE key = 'schema_version'")
        else:
            db.execute("UPDATE settings SET value = ? WHERE key = 'schema_version'", (value,))


def schema_version(folder) -> str | None:
    with sqlite3.connect(folder / DB_NAME) as db:
        row = db.execute("SELECT value FROM settings WHERE key = 'schema_version'").fetchone()
    return row[0] if row else None


def test_a_new_store_records_the_current_schema_version(tmp_path):
    write_store(tmp_path)
    assert schema_version(tmp_path) == str(SCHEMA_VERSION)


@pytest.mark.parametrize("read_only", [False, True])
def test_a_store_from_a_newer_version_is_refused_with_a_clear_message(tmp_path, read_only):
    write_store(tmp_path)
    set_version(tmp_path, str(SCHEMA_VERSION + 1))
    before = (tmp_path / DB_NAME).read_bytes()
    with pytest.raises(StoreVersionError) as refused:
        VectorStore(tmp_path, "text", "m", DIM, read_only=read_only)
    message = str(refused.value)
    assert f"schema {SCHEMA_VERSION + 1}" in message and "newer version" in message and str(tmp_path) in message
    with pytest.raises(StoreVersionError):
        stored_settings(tmp_path)
    assert (tmp_path / DB_NAME).read_bytes() == before  # nothing was written into it


def test_a_store_from_before_versions_is_schema_1_and_gets_the_version_recorded(tmp_path):
    write_store(tmp_path)
    set_version(tmp_path, None)
    assert stored_settings(tmp_path).model_name == "m"
    with VectorStore(tmp_path, "text", "m", DIM) as store:
        assert store.count() == 1
    assert schema_version(tmp_path) == "1"


def test_an_unreadable_version_is_a_store_error(tmp_path):
    write_store(tmp_path)
    set_version(tmp_path, "two")
    with pytest.raises(StoreError, match="unreadable store schema version 'two'"):
        VectorStore(tmp_path, "text", "m", DIM)
