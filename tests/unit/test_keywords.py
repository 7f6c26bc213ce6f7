"""The keyword index (SQLite FTS5 in each store) and the store reads the gateway's hybrid search needs, on real
SQLite files and real FAISS."""
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crossmodal.index.sql as store_sql
from crossmodal.index import (
    FTS_TABLE,
    KeywordHit,
    Record,
    VectorStore,
    caption_vectors_of_pairs,
    keyword_search,
    read_vectors,
    store_generations,
    vector_sample,
)
from crossmodal.index.keywords import MAX_TERMS, build_query, query_terms
from crossmodal.index.shards import DB_NAME, shard_folder, shard_of

DIM = 4


def caption(id_: str, text: str | None, pair_id: str | None = None) -> Record:
    return Record(id=id_, modality="text", text=text, pair_id=pair_id, dataset="demo")


def photo(id_: str, pair_id: str, dataset: str = "demo") -> Record:
    return Record(id=id_, modality="image", uri=f"/data/{pair_id}", pair_id=pair_id, dataset=dataset)


def vectors(count: int, seed: int = 0) -> np.ndarray:
    matrix = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def write(folder: Path, records: list[Record], matrix: np.ndarray | None = None) -> None:
    with VectorStore(folder, records[0].modality, "m", DIM) as store:
        store.add(records, vectors(len(records)) if matrix is None else matrix)


def found(folder: Path, text: str, limit: int = 10) -> list[str]:
    return [hit.id for hit in keyword_search(folder, text, limit)]


# --- building the query ---------------------------------------------------------------------------------------------

def test_stop_words_dropped_words_quoted_and_or_ed():
    query = build_query("A photo of the Beach, at SUNSET! beach")
    assert query is not None
    assert query.expression == '"beach" OR "sunset"'
    assert query.terms == ("beach", "sunset")


@pytest.mark.parametrize("text", ["", "   ", "a photo of the", "the image.jpg", "!!! ... ???", "🐱🐶", "\x00", "*"])
def test_nothing_left_to_search_is_no_query(text):
    assert build_query(text) is None


def test_words_split_like_the_tokenizer_and_capped():
    assert query_terms('col:x -y "NEAR(cat*" beach_sunset.jpg Café') == ("col", "x", "near", "cat", "beach",
                                                                          "sunset", "café")
    assert len(query_terms(" ".join(f"w{i}" for i in range(100)))) == MAX_TERMS


# --- the index: what is searchable ----------------------------------------------------------------------------------

@pytest.fixture
def captions(tmp_path):
    folder = tmp_path / "text"
    write(folder, [
        caption("c1", "A cat sleeping on a mat.", "demo/cat.png"),
        caption("c2", "Two dogs running on the beach at sunset.", "demo/dogs.png"),
        caption("c3", "A dog and a cat near the river.", "demo/pets.png"),
        caption("c4", "Café crème on a wooden table", "demo/coffee.png"),
        caption("c5", "日本語 テキスト with a 🐱 emoji", "demo/jp.png"),
        caption("c6", "col x and minus y", "demo/odd.png"),
        caption("c7", None, "demo/empty.png"),
    ])
    return folder


def test_captions_are_found_by_their_words_with_the_terms_that_matched(captions):
    hits = keyword_search(captions, "cat", 10)
    assert hits == [KeywordHit("c1", "demo/cat.png", hits[0].score, ("cat",)),
                    KeywordHit("c3", "demo/pets.png", hits[1].score, ("cat",))]
    assert hits[0].score > hits[1].score > 0  # the shorter caption ranks first (bm25's length normalisation)
    [hit] = keyword_search(captions, "Beaches at Sunset", 10)  # porter: beaches ~ beach
    assert (hit.id, hit.terms) == ("c2", ("beaches", "sunset"))
    assert all(hit.score > 0 for hit in keyword_search(captions, "dog", 10))


def test_more_matched_words_rank_higher(captions):
    hits = keyword_search(captions, "a cat and a dog by the river", 10)
    assert [hit.id for hit in hits][0] == "c3"
    assert hits[0].terms == ("cat", "dog", "river")
    assert sorted(hit.id for hit in hits[1:]) == ["c1", "c2"]
    assert hits[0].score > hits[1].score >= hits[2].score
    assert found(captions, "a cat and a dog by the river", limit=1) == ["c3"]


@pytest.mark.parametrize(("text", "expected"), [
    ('"', []), ("*", []), ("NEAR(", ["c3"]), ("AND", []), ("OR", []), ("NOT", []), ("-x", ["c6"]), ("col:x", ["c6"]),
    ('"cat', ["c1", "c3"]), ("cat*", ["c1", "c3"]), ('cat"dog', ["c1", "c2", "c3"]), ("(cat", ["c1", "c3"]),
    ("NOT cat", ["c1", "c3"]), ("^cat", ["c1", "c3"]), ("body:cat", ["c1", "c3"]), ("NEAR(cat river)", ["c1", "c3"]),
    ("text:dog", ["c2", "c3"]), ("'; DROP TABLE records; --", ["c4"]), ("records_fts", []),
    ("{cat dog}", ["c1", "c2", "c3"]), ("cafe", ["c4"]), ("CAFÉ", ["c4"]), ("cafe\u0301", ["c4"]), ("日本語", ["c5"]),
    ("🐱", []), ("cat 🐱", ["c1", "c3"]),
    ("\x00cat", ["c1", "c3"]), ("\u200bcat\u200b", ["c1", "c3"]), ("a photo of the", []), ("minus", ["c6"]),
])
def test_hostile_queries_never_raise_and_find_only_their_words(captions, text, expected):
    assert sorted(found(captions, text)) == expected
    assert VectorStore(captions, "text", "m", DIM, read_only=True).count() == 7  # nothing was dropped


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=60))
def test_any_text_is_a_safe_query(captions, text):
    hits = keyword_search(captions, text, 5)
    terms = set(query_terms(text))
    assert all(hit.terms and set(hit.terms) <= terms for hit in hits)


def test_photos_are_found_by_file_and_folder_names_not_by_dataset_or_extension(tmp_path):
    folder = tmp_path / "image"
    write(folder, [
        photo("i1", "folder/holidays/2024/beach/IMG_0001.jpg", dataset="folder"),
        photo("i2", "folder/holidays/beach_sunset.jpg", dataset="folder"),
        photo("i3", "demo/chelsea_cat.png"),
        photo("i4", "demo/grace-hopper.portrait.png"),
    ])
    assert found(folder, "sunset") == ["i2"]
    assert sorted(found(folder, "beach")) == ["i1", "i2"]
    assert found(folder, "2024") == ["i1"]
    assert found(folder, "img 0001") == ["i1"]
    assert sorted(found(folder, "holidays")) == ["i1", "i2"]  # the root of a folder dataset is a folder name
    assert found(folder, "chelsea") == ["i3"]
    assert found(folder, "hopper portrait") == ["i4"]
    assert found(folder, "demo") == [] and found(folder, "folder") == []  # the dataset is not part of the name
    assert found(folder, "jpg") == [] and found(folder, "png") == []  # every file has one: a stop word
    [hit] = keyword_search(folder, "Sunset on the Beach", 5)[:1]
    assert hit.id == "i2" and hit.terms == ("sunset", "beach")


def library_photo(id_: str, paths: list[str], camera: str | None) -> Record:
    """A photo of a photo folder: its pair id is its content, its paths and camera are metadata."""
    return Record(id=id_, modality="image", uri=f"/library/{paths[0]}", pair_id=f"folder/lib/sha256:{id_}",
                  dataset="folder", tags={"metadata": {
                      "path": paths[0], "paths": paths, "folder": paths[0].rpartition("/")[0], "size_bytes": 1000,
                      "width": 64, "height": 48, "taken": "2024-07-01T10:00:00", "taken_source": "exif",
                      "camera": camera, "lat": None, "lon": None}})


def test_photos_of_a_photo_folder_are_found_by_every_path_and_their_camera(tmp_path):
    folder = tmp_path / "image"
    write(folder, [
        library_photo("aa", ["2024/beach/IMG_0001.jpg", "backup/sunset copy.jpg"], "Canon EOS R5"),
        library_photo("bb", ["2023/garden/roses.heic"], None),
    ])
    assert found(folder, "beach") == ["aa"] and found(folder, "sunset") == ["aa"]  # the copy's path counts too
    assert found(folder, "canon") == ["aa"] and found(folder, "eos r5") == ["aa"]
    assert found(folder, "roses") == ["bb"] and found(folder, "garden 2023") == ["bb"]
    with VectorStore(folder, "image", "m", DIM) as store:  # a sync re-stores a renamed photo with its new paths
        store.add([library_photo("aa", ["2024/beach/IMG_0001.jpg"], "Canon EOS R5")], vectors(1))
    assert found(folder, "sunset") == [] and found(folder, "beach") == ["aa"]


def test_a_keyword_index_older_than_photo_metadata_is_rebuilt_with_it(tmp_path):
    folder = tmp_path / "image"
    write(folder, [library_photo("aa", ["2024/beach/IMG_0001.jpg"], "Nikon Z6")])
    with sqlite3.connect(folder / DB_NAME) as db:  # the triggers of the version before, which ignored the metadata
        db.execute("DROP TRIGGER records_fts_insert")
        db.execute(f"CREATE TRIGGER records_fts_insert AFTER INSERT ON records BEGIN INSERT INTO {FTS_TABLE} "
                   "(rowid, body) VALUES (new.num, new.pair_id); END")
        db.execute(f"DELETE FROM {FTS_TABLE}")
        db.execute(f"INSERT INTO {FTS_TABLE} (rowid, body) SELECT num, pair_id FROM records")
    db.close()
    assert found(folder, "nikon") == []
    VectorStore(folder, "image", "m", DIM).close()  # opened for writing: migrated
    assert found(folder, "nikon") == ["aa"] and found(folder, "beach") == ["aa"]


# --- the triggers keep the index right, whoever writes ---------------------------------------------------------------

def fts_rows(folder: Path) -> int:
    with sqlite3.connect(folder / DB_NAME) as db:
        return db.execute(f"SELECT COUNT(*) FROM {FTS_TABLE}").fetchone()[0]


def test_triggers_follow_insert_upsert_and_delete(tmp_path):
    folder = tmp_path / "text"
    with VectorStore(folder, "text", "m", DIM) as store:
        store.add([caption("a", "a red bicycle"), caption("b", "a blue boat")], vectors(2))
        assert found(folder, "bicycle") == ["a"]
        store.add([caption("a", "a green tractor")], vectors(1))  # upsert: the old words are gone
        assert found(folder, "bicycle") == [] and found(folder, "tractor") == ["a"]
        assert store.delete(["b"]) == 1
        assert found(folder, "boat") == []
        assert fts_rows(folder) == store.count() == 1
    with sqlite3.connect(folder / DB_NAME) as db:  # another writer, in plain SQL (an older version, say)
        db.execute("UPDATE records SET text = 'a yellow kite' WHERE id = 'a'")
    assert found(folder, "tractor") == [] and found(folder, "kite") == ["a"]
    with sqlite3.connect(folder / DB_NAME) as db:
        db.execute("DELETE FROM records")
    assert found(folder, "kite") == [] and fts_rows(folder) == 0


def test_shards_are_merged_best_first_and_cut_to_the_limit(tmp_path):
    root = tmp_path / "text"
    docs = [caption(f"d{i}", text, f"demo/p{i}.png") for i, text in enumerate([
        "harbour", "harbour boats", "harbour boats sails", "boats", "harbour sails at dawn", "market"])]
    for shard in range(2):
        mine = [doc for doc in docs if shard_of(doc.id, 2) == shard]
        write(shard_folder(root, 2, shard), mine)
    assert len({shard_of(doc.id, 2) for doc in docs if "harbour" in (doc.text or "")}) == 2  # hits in both shards
    hits = keyword_search(root, "harbour boats sails", 10)
    assert hits[0].id == "d2" and hits[0].terms == ("harbour", "boats", "sails")
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert sorted(hit.id for hit in hits) == ["d0", "d1", "d2", "d3", "d4"]
    assert [hit.id for hit in keyword_search(root, "harbour boats sails", 2)] == [hit.id for hit in hits[:2]]


# --- a store written before the keyword index -------------------------------------------------------------------------

def make_old_store(folder: Path) -> None:
    write(folder, [caption("a", "a lighthouse on a cliff"), caption("b", "waves on rocks")])
    with sqlite3.connect(folder / DB_NAME) as db:
        for trigger in ("records_fts_insert", "records_fts_delete", "records_fts_update"):
            db.execute(f"DROP TRIGGER {trigger}")
        db.execute(f"DROP TABLE {FTS_TABLE}")
        db.execute("DROP INDEX records_pair_id")
    db.close()


def folder_state(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's bytes and mtime, but SQLite's WAL files: a WAL-mode reader creates an empty -wal and the -shm
    (shared memory for locks), read-only or not; a write would put frames into the -wal, which must stay empty."""
    wal = folder / f"{DB_NAME}-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted(folder.iterdir())
            if not path.name.endswith(("-wal", "-shm"))}


def test_an_old_store_reads_as_no_keyword_hits_without_being_touched(tmp_path):
    folder = tmp_path / "text"
    make_old_store(folder)
    before = folder_state(folder)
    assert keyword_search(folder, "lighthouse", 10) == []
    assert caption_vectors_of_pairs(folder, ["none"]) == {}
    with VectorStore(folder, "text", "m", DIM, read_only=True) as store:  # the gateway's own store
        assert store.count() == 2
    assert keyword_search(folder, "lighthouse", 10) == []
    assert folder_state(folder) == before
    assert FTS_TABLE not in sqlite_names(folder)


def sqlite_names(folder: Path) -> set[str]:
    with sqlite3.connect(store_sql.read_only_uri(folder / DB_NAME), uri=True) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    return names


def test_an_old_store_is_back_filled_when_opened_for_writing(tmp_path):
    folder = tmp_path / "text"
    make_old_store(folder)
    with VectorStore(folder, "text", "m", DIM) as store:
        assert found(folder, "lighthouse") == ["a"]
        store.add([caption("c", "a lighthouse keeper")], vectors(1))
    assert sorted(found(folder, "lighthouse")) == ["a", "c"]
    assert fts_rows(folder) == 3
    with sqlite3.connect(folder / DB_NAME) as db:
        assert db.execute("SELECT value FROM settings WHERE key = 'schema_version'").fetchone() == ("1",)
        assert db.execute("SELECT 1 FROM sqlite_master WHERE name = 'records_pair_id'").fetchone()


def test_a_store_missing_one_trigger_is_rebuilt_in_full(tmp_path):
    folder = tmp_path / "text"
    write(folder, [caption("a", "an old mill")])
    with sqlite3.connect(folder / DB_NAME) as db:
        db.execute("DROP TRIGGER records_fts_insert")
        db.execute("INSERT INTO records (id, modality, text, tags, vector) VALUES ('b', 'text', 'a mill pond', "
                   "'{}', zeroblob(16))")
    db.close()
    assert found(folder, "mill") == ["a"]  # out of step until a writer opens it
    VectorStore(folder, "text", "m", DIM).close()
    assert sorted(found(folder, "mill")) == ["a", "b"]


def test_no_store_no_hits_and_nothing_created(tmp_path):
    assert keyword_search(tmp_path / "missing", "cat", 5) == []
    assert read_vectors(tmp_path / "missing", ["a"]) == {}
    assert vector_sample(tmp_path / "missing", 5).shape[0] == 0
    assert store_generations(tmp_path / "missing") == ()
    assert caption_vectors_of_pairs(tmp_path / "missing", ["p"]) == {}
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("limit", [0, -1, True, 1.5])
def test_bad_limits_are_refused(captions, limit):
    with pytest.raises(ValueError, match="limit"):
        keyword_search(captions, "cat", limit)
    with pytest.raises(ValueError, match="limit"):
        vector_sample(captions, limit)


# --- vectors --------------------------------------------------------------------------------------------------------

def sharded(root: Path, records: list[Record], matrix: np.ndarray, shards: int = 3) -> None:
    for shard in range(shards):
        mine = [i for i, record in enumerate(records) if shard_of(record.id, shards) == shard]
        write(shard_folder(root, shards, shard), [records[i] for i in mine], matrix[mine])


def test_read_vectors_across_shards_and_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(store_sql, "SQL_CHUNK", 7)
    records = [caption(f"c{i}", f"caption {i}") for i in range(40)]
    matrix = vectors(40, seed=3)
    sharded(tmp_path / "text", records, matrix)
    got = read_vectors(tmp_path / "text", [f"c{i}" for i in range(0, 40, 2)] + ["c2", "missing"])
    assert sorted(got) == sorted(f"c{i}" for i in range(0, 40, 2))
    for id_, vector in got.items():
        assert vector.dtype == np.float32 and vector.shape == (DIM,)
        np.testing.assert_array_equal(vector, matrix[int(id_[1:])])


def numbered(count: int) -> tuple[list[Record], np.ndarray]:
    """Records whose vector's first component is their number, so a sample tells which rows it took."""
    matrix = np.zeros((count, DIM), dtype=np.float32)
    matrix[:, 0] = np.arange(count)
    matrix[:, 1] = 1
    return [caption(f"n{i:04d}", None) for i in range(count)], matrix


def test_vector_sample_is_everything_when_the_store_is_small(tmp_path):
    records, matrix = numbered(12)
    sharded(tmp_path / "text", records, matrix)
    sample = vector_sample(tmp_path / "text", 50)
    assert sample.shape == (12, DIM) and sample.dtype == np.float32
    assert sorted(sample[:, 0]) == list(range(12))


def test_vector_sample_is_deterministic_spread_and_follows_changes(tmp_path):
    root = tmp_path / "text"
    records, matrix = numbered(900)
    sharded(root, records, matrix)
    generations = store_generations(root)
    assert len(generations) == 3 and all(generation >= 1 for generation in generations)
    sample = vector_sample(root, 30)
    assert sample.shape == (30, DIM)
    np.testing.assert_array_equal(vector_sample(root, 30), sample)  # the same sample while nothing changes
    numbers = np.sort(sample[:, 0])
    assert len(set(numbers)) == 30
    assert numbers[0] < 60 and numbers[-1] > 840  # the whole store, not its first rows
    assert np.diff(numbers).max() < 150  # and no large part of it left out
    for shard in range(3):  # each shard gives its share
        in_shard = {float(i) for i, record in enumerate(records) if shard_of(record.id, 3) == shard}
        share = sum(number in in_shard for number in numbers)
        assert abs(share - 30 * len(in_shard) / 900) <= 1
    with VectorStore(shard_folder(root, 3, 0), "text", "m", DIM) as store:
        store.delete([record.id for record in records if shard_of(record.id, 3) == 0][:100])
    assert store_generations(root) != generations
    assert vector_sample(root, 30).shape == (30, DIM)


def test_vector_sample_of_an_empty_store_has_the_store_dimension(tmp_path):
    VectorStore(tmp_path / "text", "text", "m", DIM).close()
    assert vector_sample(tmp_path / "text", 5).shape == (0, DIM)
    assert store_generations(tmp_path / "text") == (0,)


def test_caption_vectors_of_pairs_in_caption_order_across_shards(tmp_path):
    pairs = {"demo/a.png": 5, "demo/b.png": 3, "demo/c.png": 1}
    records = [caption(f"txt-{pair[5]}-{n}", f"{pair} caption {n}", pair) for pair, count in pairs.items()
               for n in reversed(range(count))]  # stored last caption first
    matrix = vectors(len(records), seed=5)
    sharded(tmp_path / "text", records, matrix)
    got = caption_vectors_of_pairs(tmp_path / "text", ["demo/a.png", "demo/b.png", "demo/missing.png"])
    assert sorted(got) == ["demo/a.png", "demo/b.png"]
    assert [found.id for found in got["demo/a.png"]] == [f"txt-a-{n}" for n in range(5)]
    assert [found.text for found in got["demo/b.png"]] == [f"demo/b.png caption {n}" for n in range(3)]
    by_id = {record.id: matrix[i] for i, record in enumerate(records)}
    for captions_of_pair in got.values():
        for found in captions_of_pair:
            np.testing.assert_array_equal(found.vector, by_id[found.id])


def test_read_only_reads_leave_a_store_untouched(captions):
    with VectorStore(captions, "text", "m", DIM):  # settle the WAL files a writer leaves, then close
        pass
    before = folder_state(captions)
    keyword_search(captions, "cat dog", 5)
    read_vectors(captions, ["c1"])
    vector_sample(captions, 3)
    store_generations(captions)
    caption_vectors_of_pairs(captions, ["demo/cat.png"])
    assert folder_state(captions) == before
    assert os.access(captions / DB_NAME, os.R_OK)
