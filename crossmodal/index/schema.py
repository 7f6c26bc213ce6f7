"""The SQLite layout of a store: the records table, the FTS5 keyword index and the photo metadata index (both kept by
triggers), their migration, and the schema version.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from .types import StoreError, StoreVersionError

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

SCHEMA = (
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
# `metadata` object of its tags, and its place's names (city, region, country: issue 24), so "Lisbon" finds it.
# unicode61 splits words at every character that is not a letter or digit (`_ - . /` included), so
# `beach_sunset.jpg` is found by "sunset"; porter matches "beaches" to "beach".
FTS_TABLE = "records_fts"
_FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"
_FTS_TRIGGERS = ("records_fts_insert", "records_fts_delete", "records_fts_update")
PLACE_KEYS = ("city", "region", "country")


def _fts_body(row: str) -> str:
    """SQL for the searchable text of a records row (`new`, `old` or the table itself)."""
    prefix = f"{row}.dataset || '/'"
    without_dataset = (f"CASE WHEN {row}.dataset IS NOT NULL AND substr({row}.pair_id, 1, length({prefix})) = {prefix} "
                       f"THEN substr({row}.pair_id, length({prefix}) + 1) ELSE {row}.pair_id END")
    paths = f"json_each({row}.tags, '$.metadata.paths')"
    metadata = (f"coalesce((SELECT ' ' || group_concat(p.value, ' ') FROM {paths} AS p WHERE p.type = 'text'), '') "
                f"|| coalesce(' ' || json_extract({row}.tags, '$.metadata.camera'), '')"
                + "".join(f" || coalesce(' ' || json_extract({row}.tags, '$.metadata.place.{key}'), '')"
                          for key in PLACE_KEYS))
    photo = f"{without_dataset} || CASE WHEN json_valid({row}.tags) THEN {metadata} ELSE '' END"
    return f"CASE WHEN {row}.modality = 'image' THEN {photo} ELSE {row}.text END"


# A keyword index whose triggers predate the photo metadata (paths, camera, place names) in its text lacks this in
# their SQL: it is rebuilt from `records`.
_FTS_BODY_MARK = "$.metadata.place.country"


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
# `taken` is the clock time as written, without its zone (crossmodal.index.photo_filter says why); `photo_paths` holds
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


# The place index (issue 24): the place names of each photo whose metadata has a `place` object, for the `place`
# filter (crossmodal.index.photo_filter: words inside a name, case- and accent-insensitive), row i is records.num i.
# Kept by its own triggers, under the same reasoning as the metadata index (see SCHEMA_VERSION).
PLACES_TABLE = "photo_places"
_PLACES_TRIGGERS = ("photo_places_insert", "photo_places_delete", "photo_places_update")


def _place_rows(row: str) -> str:
    """SQL that indexes the place names of the records row `row` (`new`, or `records` for the back-fill)."""
    names = ", ".join(f"json_extract({row}.tags, '$.metadata.place.{key}')" for key in PLACE_KEYS)
    source = " FROM records" if row == "records" else ""
    placed = f"CASE WHEN json_valid({row}.tags) THEN json_type({row}.tags, '$.metadata.place') END = 'object'"
    columns = ", ".join(PLACE_KEYS)
    return f"INSERT INTO {PLACES_TABLE} (rowid, {columns}) SELECT {row}.num, {names}{source} WHERE {placed}"


_PLACES_SCHEMA = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {PLACES_TABLE} USING fts5({', '.join(PLACE_KEYS)}, "
    "tokenize = 'unicode61 remove_diacritics 2')",
    f"""CREATE TRIGGER IF NOT EXISTS photo_places_insert AFTER INSERT ON records BEGIN
        {_place_rows("new")};
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS photo_places_delete AFTER DELETE ON records BEGIN
        DELETE FROM {PLACES_TABLE} WHERE rowid = old.num;
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS photo_places_update AFTER UPDATE OF num, tags ON records BEGIN
        DELETE FROM {PLACES_TABLE} WHERE rowid = old.num;
        {_place_rows("new")};
    END""",
    _place_rows("records"),  # the back-fill
)


def migrate_keyword_index(conn: sqlite3.Connection) -> None:
    """Create the keyword index, the metadata index and the place index, and fill each from `records` when the store
    lacks it or any of its triggers (a store written before it existed); inside the caller's write transaction, so
    a crash leaves all of it or none."""
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
    if PLACES_TABLE not in names or not names.issuperset(_PLACES_TRIGGERS):
        for trigger in _PLACES_TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        conn.execute(f"DROP TABLE IF EXISTS {PLACES_TABLE}")
        for statement in _PLACES_SCHEMA:
            conn.execute(statement)


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
