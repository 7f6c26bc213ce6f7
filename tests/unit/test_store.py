"""VectorStore against real FAISS indexes and real SQLite files."""

import gc
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from crossmodal.index import (
    SNAPSHOT_NAME,
    Hit,
    ModelMismatchError,
    Record,
    StoredSettings,
    StoreError,
    VectorStore,
    read_record,
    store_summary,
    stored_ids,
    stored_settings,
)
from crossmodal.index.shards import DB_NAME

DIM = 4
MODEL = "test-model"


def text(id_: str, **kwargs) -> Record:
    return Record(id=id_, modality="text", **kwargs)


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def open_store(folder: Path, **kwargs) -> VectorStore:
    return VectorStore(folder, "text", kwargs.pop("model_name", MODEL), kwargs.pop("dim", DIM), **kwargs)


def ids(hits: list[Hit]) -> list[str]:
    return [hit.record.id for hit in hits]


def random_unit_vectors(count: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "ws") as opened:
        yield opened


def add_abc(store: VectorStore) -> None:
    store.add(
        [text("a", text="cat"), text("b", text="dog"), text("c", text="cat and dog")],
        np.stack([unit(1, 0, 0, 0), unit(0, 1, 0, 0), unit(1, 1, 0, 0)]),
    )


def test_search_orders_hits_by_inner_product(store):
    add_abc(store)
    [hits] = store.search(unit(1, 0, 0, 0)[None, :], limit=3)
    assert ids(hits) == ["a", "c", "b"]
    assert [hit.score for hit in hits] == pytest.approx([1.0, 2**-0.5, 0.0], abs=1e-6)
    assert hits[0].record == text("a", text="cat")


def test_search_several_queries_and_1d_query(store):
    add_abc(store)
    results = store.search(np.stack([unit(0, 1, 0, 0), unit(1, 0, 0, 0)]), limit=1)
    assert [ids(hits) for hits in results] == [["b"], ["a"]]
    assert [ids(hits) for hits in store.search(unit(0, 1, 0.1, 0), limit=2)] == [["b", "c"]]


def test_a_single_query_searches_on_one_thread_and_a_batch_on_all(store, monkeypatch):
    import faiss

    add_abc(store)
    faiss.omp_set_num_threads(2)
    seen = []
    real_search = faiss.IndexIDMap.search
    monkeypatch.setattr(faiss.IndexIDMap, "search",
                        lambda self, *a, **k: seen.append(faiss.omp_get_max_threads()) or real_search(self, *a, **k))
    single = store.search(unit(1, 0, 0, 0), limit=2)
    batch = store.search(np.stack([unit(1, 0, 0, 0), unit(0, 1, 0, 0)]), limit=2)
    assert seen == [1, 2] and faiss.omp_get_max_threads() == 2  # put back after the single query
    assert [ids(hits) for hits in single] == [["a", "c"]] and [ids(hits) for hits in batch] == [["a", "c"], ["b", "c"]]


def test_limit_larger_than_count_returns_everything(store):
    add_abc(store)
    [hits] = store.search(unit(1, 0, 0, 0), limit=100)
    assert sorted(ids(hits)) == ["a", "b", "c"]


def test_empty_store_returns_one_empty_list_per_query(store):
    assert store.search(np.zeros((2, DIM), dtype=np.float32), limit=5) == [[], []]


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_bad_limit_is_rejected(store, limit):
    with pytest.raises(ValueError, match="limit"):
        store.search(unit(1, 0, 0, 0), limit=limit)


def test_add_upserts_by_id(store):
    add_abc(store)
    store.add([text("a", text="new cat")], unit(0, 0, 1, 0)[None, :])
    assert store.count() == 3
    assert store.get("a").text == "new cat"
    [hits] = store.search(unit(0, 0, 1, 0), limit=3)
    assert ids(hits)[0] == "a" and hits[0].score == pytest.approx(1.0)
    assert ids(hits).count("a") == 1


def test_repeated_id_in_one_call_keeps_the_last(store):
    store.add([text("x", text="first"), text("x", text="last")], np.stack([unit(1, 0, 0, 0), unit(0, 1, 0, 0)]))
    assert store.count() == 1
    assert store.get("x").text == "last"
    [hits] = store.search(unit(0, 1, 0, 0), limit=5)
    assert ids(hits) == ["x"] and hits[0].score == pytest.approx(1.0)


def test_records_and_vectors_persist_across_reopen(tmp_path, monkeypatch):
    folder = tmp_path / "ws"
    record = text("a", text="a cat", uri=None, pair_id="p1", dataset="demo", split="test", tags={"image_id": "i1"})
    with open_store(folder) as store:
        store.add([record, text("b")], np.stack([unit(1, 0, 0, 0), unit(0, 1, 0, 0)]))
    assert (folder / SNAPSHOT_NAME).is_file()

    def no_rebuild(self):
        raise AssertionError("a clean close must leave a snapshot that is loaded, not rebuilt")

    monkeypatch.setattr(VectorStore, "_rebuild", no_rebuild)
    with open_store(folder) as store:
        assert store.count() == 2
        assert store.get("a") == record
        assert ids(store.search(unit(0, 1, 0, 0), limit=1)[0]) == ["b"]


def test_missing_snapshot_is_rebuilt_from_sqlite(tmp_path):
    folder = tmp_path / "ws"
    with open_store(folder) as store:
        add_abc(store)
    (folder / SNAPSHOT_NAME).unlink()
    with open_store(folder) as store:
        [hits] = store.search(unit(0, 1, 0, 0), limit=10)
        assert ids(hits) == ["b", "c", "a"]
    assert (folder / SNAPSHOT_NAME).is_file()


def test_stale_snapshot_after_crash_loses_and_duplicates_nothing(tmp_path):
    folder = tmp_path / "ws"
    with open_store(folder) as store:
        add_abc(store)
    crashed = open_store(folder)
    crashed.add([text("d"), text("a", text="replaced")], np.stack([unit(0, 0, 0, 1), unit(0, 0, 1, 0)]))
    del crashed  # no close(): the snapshot on disk still reflects the first session
    gc.collect()
    with open_store(folder) as store:
        assert store.count() == 4
        [hits] = store.search(unit(0, 0, 1, 0), limit=10)
        assert sorted(ids(hits)) == ["a", "b", "c", "d"]
        assert ids(hits)[0] == "a" and hits[0].record.text == "replaced"


@pytest.mark.parametrize("keep", [5, 40, -30], ids=["inside magic", "inside header", "inside faiss data"])
def test_damaged_snapshot_is_rebuilt(tmp_path, keep):
    folder = tmp_path / "ws"
    with open_store(folder) as store:
        add_abc(store)
    snapshot = folder / SNAPSHOT_NAME
    snapshot.write_bytes(snapshot.read_bytes()[:keep])
    with open_store(folder) as store:
        assert ids(store.search(unit(1, 0, 0, 0), limit=1)[0]) == ["a"]


def test_other_model_is_refused(tmp_path):
    folder = tmp_path / "ws"
    open_store(folder).close()
    with pytest.raises(ModelMismatchError) as error:
        open_store(folder, model_name="other-model")
    message = str(error.value)
    assert "test-model" in message and "other-model" in message and "delete" in message


def test_other_dimension_is_refused(tmp_path):
    folder = tmp_path / "ws"
    open_store(folder).close()
    with pytest.raises(ModelMismatchError, match="dim 4.*dim 8"):
        open_store(folder, dim=8)


def test_other_modality_is_refused(tmp_path):
    folder = tmp_path / "ws"
    open_store(folder).close()
    with pytest.raises(StoreError, match="'text' index, not 'image'"):
        VectorStore(folder, "image", MODEL, DIM)


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        (np.zeros((2, DIM + 1), dtype=np.float32), r"shape \[N, 4\]"),
        (np.zeros(DIM, dtype=np.float32), r"shape \[N, 4\]"),
        (np.zeros((3, DIM), dtype=np.float32), "2 records but 3 vectors"),
        (np.array([[np.nan, 0, 0, 0], [1, 0, 0, 0]], dtype=np.float32), "NaN"),
        (np.array([[np.inf, 0, 0, 0], [1, 0, 0, 0]]), "NaN or infinite"),
        ([["x", 0, 0, 0], [1, 0, 0, 0]], "numeric"),
    ],
)
def test_bad_vectors_are_rejected_and_nothing_is_written(store, vectors, message):
    with pytest.raises(ValueError, match=message):
        store.add([text("a"), text("b")], vectors)
    assert store.count() == 0


def test_bad_query_shape_is_rejected(store):
    add_abc(store)
    with pytest.raises(ValueError, match=r"queries must have shape \[N, 4\]"):
        store.search(np.zeros((1, 3), dtype=np.float32), limit=1)


def test_record_of_other_modality_is_rejected(store):
    with pytest.raises(ValueError, match="modality 'image'"):
        store.add([Record(id="i", modality="image", uri="a.jpg")], unit(1, 0, 0, 0)[None, :])
    assert store.count() == 0


def test_record_validates_modality_and_id():
    with pytest.raises(ValueError, match="unknown modality 'audio'"):
        Record(id="a", modality="audio")
    with pytest.raises(ValueError, match="non-empty string"):
        Record(id="", modality="text")


def test_tags_must_be_json_serialisable(store):
    with pytest.raises(ValueError, match="JSON"):
        store.add([text("a", tags={"when": object()})], unit(1, 0, 0, 0)[None, :])


def test_delete_removes_from_search_and_persists(tmp_path):
    folder = tmp_path / "ws"
    with open_store(folder) as store:
        add_abc(store)
        assert store.delete(["a", "missing", "a"]) == 1
        assert store.delete(["missing"]) == 0
        assert store.count() == 2
        assert store.get("a") is None
        assert "a" not in ids(store.search(unit(1, 0, 0, 0), limit=10)[0])
    with open_store(folder) as store:
        assert sorted(ids(store.search(unit(1, 0, 0, 0), limit=10)[0])) == ["b", "c"]


def test_existing_ids_across_sql_chunks(store):
    names = [f"doc-{i}" for i in range(1200)]
    store.add([text(name) for name in names], random_unit_vectors(len(names), DIM, seed=1))
    asked = names[::2] + ["unknown-1", "unknown-2"]
    assert store.existing_ids(asked) == set(names[::2])
    assert store.existing_ids([]) == set()


def test_read_record_without_loading_faiss(tmp_path):
    folder = tmp_path / "ws"
    with VectorStore(folder, "image", MODEL, DIM) as store:
        store.add([Record(id="img1", modality="image", uri="/data/1.jpg", pair_id="p")], unit(1, 0, 0, 0)[None, :])
        assert read_record(folder, "img1") == Record(id="img1", modality="image", uri="/data/1.jpg", pair_id="p")
    assert read_record(folder, "nope") is None
    assert read_record(tmp_path / "absent", "img1") is None


def test_stored_settings_and_ids_without_opening(tmp_path):
    folder = tmp_path / "ws"
    assert stored_settings(folder) is None
    assert stored_ids(folder) == set()
    assert not folder.exists()
    with open_store(folder) as store:
        add_abc(store)
        assert stored_settings(folder) == StoredSettings(MODEL, DIM, "text")
        assert stored_ids(folder) == {"a", "b", "c"}


def test_read_helpers_report_a_file_that_is_not_a_store(tmp_path):
    (tmp_path / DB_NAME).write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot read vector store"):
        read_record(tmp_path, "a")
    with pytest.raises(StoreError, match="cannot open vector store .*not a database"):
        open_store(tmp_path)


def test_writes_are_mirrored_in_memory_without_rebuilding(store, monkeypatch):
    add_abc(store)
    store.search(unit(1, 0, 0, 0), limit=1)

    def no_rebuild(self):
        raise AssertionError("a flat index must follow adds and deletes incrementally")

    monkeypatch.setattr(VectorStore, "_rebuild", no_rebuild)
    store.add([text("a", text="moved"), text("d")], np.stack([unit(0, 0, 1, 0), unit(0, 0, 0, 1)]))
    assert store.delete(["b"]) == 1
    [hits] = store.search(unit(0, 0, 1, 0), limit=10)
    assert ids(hits)[0] == "a" and sorted(ids(hits)) == ["a", "c", "d"]


def test_read_only_never_writes(tmp_path):
    folder = tmp_path / "ws"
    with open_store(folder) as store:
        add_abc(store)
    (folder / SNAPSHOT_NAME).unlink()
    with open_store(folder, read_only=True) as reader:
        assert ids(reader.search(unit(1, 0, 0, 0), limit=1)[0]) == ["a"]
        with pytest.raises(StoreError, match="read-only"):
            reader.add([text("d")], unit(0, 0, 0, 1)[None, :])
        with pytest.raises(StoreError, match="read-only"):
            reader.delete(["a"])
        with pytest.raises(StoreError, match="read-only"):
            reader.flush()
    assert not (folder / SNAPSHOT_NAME).exists()
    with open_store(folder) as store:
        assert store.count() == 3


def test_read_only_without_store_fails_and_creates_nothing(tmp_path):
    with pytest.raises(StoreError, match="no vector store"):
        open_store(tmp_path / "absent", read_only=True)
    assert not (tmp_path / "absent").exists()


def test_read_only_sees_later_writes(tmp_path):
    folder = tmp_path / "ws"
    with open_store(folder) as writer:
        add_abc(writer)
        with open_store(folder, read_only=True) as reader:
            writer.add([text("d")], unit(0, 0, 0, 1)[None, :])
            assert ids(reader.search(unit(0, 0, 0, 1), limit=1)[0]) == ["d"]


def test_search_is_ready_only_when_the_current_index_is_in_memory_and_the_lock_is_free(tmp_path):
    """What a caller on an event loop asks before searching there: never ready when the search would load, rebuild
    or wait."""
    folder = tmp_path / "ws"
    with open_store(folder) as writer:
        add_abc(writer)
        with open_store(folder, read_only=True) as reader:
            assert reader.search_is_ready()  # loaded when opened
            writer.add([text("d")], unit(0, 0, 0, 1)[None, :])
            assert not reader.search_is_ready()  # another process's write: a new generation to load
            assert ids(reader.search(unit(0, 0, 0, 1), limit=1)[0]) == ["d"]
            assert reader.search_is_ready()
            held, release = threading.Event(), threading.Event()

            def hold_the_lock() -> None:
                with reader._lock:
                    held.set()
                    release.wait(5)

            holder = threading.Thread(target=hold_the_lock)
            holder.start()
            held.wait(5)
            assert not reader.search_is_ready()  # a search would wait for it
            release.set()
            holder.join()
            assert reader.search_is_ready()


def test_closed_store_raises(tmp_path):
    store = open_store(tmp_path / "ws")
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.count()


def test_settings_are_recorded(tmp_path):
    folder = tmp_path / "ws"
    with open_store(folder) as store:
        assert (store.model_name, store.dim, store.modality) == (MODEL, DIM, "text")
    assert (folder / DB_NAME).is_file()


def test_concurrent_adds_and_searches(store):
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for batch in range(10):
                names = [f"w{worker}-{batch}-{i}" for i in range(5)]
                store.add([text(name) for name in names], random_unit_vectors(5, DIM, seed=worker * 100 + batch))
                store.search(random_unit_vectors(2, DIM, seed=batch), limit=3)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count() == 200
    assert len(store.search(unit(1, 0, 0, 0), limit=500)[0]) == 200


def test_hnsw_agrees_with_exact_search(tmp_path):
    dim, count = 32, 2000
    vectors = random_unit_vectors(count, dim, seed=7)
    records = [text(f"d{i}") for i in range(count)]
    queries = vectors[:100] + 0.3 * random_unit_vectors(100, dim, seed=8)
    with (
        open_store(tmp_path / "flat", dim=dim) as flat,
        open_store(tmp_path / "hnsw", dim=dim, index_type="hnsw", hnsw_m=16, ef_search=64) as hnsw,
    ):
        flat.add(records, vectors)
        hnsw.add(records, vectors)
        exact = [ids(hits) for hits in flat.search(queries, limit=10)]
        approx = [ids(hits) for hits in hnsw.search(queries, limit=10)]
    recall = np.mean([len(set(e) & set(a)) / 10 for e, a in zip(exact, approx)])
    top1 = np.mean([e[0] == a[0] for e, a in zip(exact, approx)])
    assert recall >= 0.9
    assert top1 >= 0.95


def test_hnsw_delete_upsert_and_reopen(tmp_path):
    folder = tmp_path / "ws"
    with open_store(folder, index_type="hnsw") as store:
        add_abc(store)
        store.add([text("b", text="moved")], unit(0, 0, 1, 0)[None, :])
        assert store.delete(["a"]) == 1
        [hits] = store.search(unit(0, 0, 1, 0), limit=10)
        assert ids(hits) == ["b", "c"] and hits[0].record.text == "moved"
    with open_store(folder, index_type="hnsw") as store:
        assert ids(store.search(unit(0, 0, 1, 0), limit=10)[0]) == ["b", "c"]
    with open_store(folder, index_type="flat") as store:  # another index type rebuilds instead of loading
        assert ids(store.search(unit(0, 0, 1, 0), limit=10)[0]) == ["b", "c"]


def test_ef_search_trades_speed_for_recall(tmp_path):
    dim, count = 32, 3000
    vectors = random_unit_vectors(count, dim, seed=11)
    records = [text(f"d{i}") for i in range(count)]
    queries = random_unit_vectors(200, dim, seed=12)
    with open_store(tmp_path / "flat", dim=dim) as flat:
        flat.add(records, vectors)
        exact = [ids(hits) for hits in flat.search(queries, limit=10)]
    with open_store(tmp_path / "hnsw", dim=dim, index_type="hnsw", hnsw_m=4) as hnsw:
        hnsw.add(records, vectors)
    recall = {}
    for ef in (1, 256):  # the ef_search a query flow opens the store with is the one FAISS uses
        with open_store(tmp_path / "hnsw", dim=dim, index_type="hnsw", hnsw_m=4, ef_search=ef, read_only=True) as hnsw:
            approx = [ids(hits) for hits in hnsw.search(queries, limit=10)]
        recall[ef] = np.mean([len(set(e) & set(a)) / 10 for e, a in zip(exact, approx)])
    assert recall[256] >= 0.9 and recall[1] < recall[256] - 0.3, recall


@pytest.mark.parametrize("options", [{"ef_search": 0}, {"hnsw_m": 1}])
def test_bad_hnsw_parameters_are_refused(tmp_path, options):
    with pytest.raises(ValueError, match="HNSW needs"):
        open_store(tmp_path / "ws", index_type="hnsw", **options)


def test_a_store_killed_before_its_schema_was_committed_reads_as_empty(tmp_path):
    folder = tmp_path / "ws"
    folder.mkdir()
    with sqlite3.connect(folder / DB_NAME) as conn:  # what a SIGKILL right after opening leaves behind
        conn.execute("PRAGMA journal_mode=WAL")
    assert stored_ids(folder) == set() and stored_settings(folder) is None and store_summary(folder) is None
    with open_store(folder) as store:  # and the next run creates the store in it
        add_abc(store)
    assert stored_ids(folder) == {"a", "b", "c"}


def test_a_reused_reader_sees_every_commit_and_a_recreated_store(tmp_path):
    """The read functions keep one connection per store and thread (the query server's answers): they must still
    see what a writer commits later, and a store deleted and written anew must not be read through the old file."""
    import shutil

    folder = tmp_path / "ws"
    with open_store(folder) as writer:
        writer.add([text("a", text="cat")], unit(1, 0, 0, 0)[None, :])
        assert read_record(folder, "a").text == "cat" and read_record(folder, "b") is None
        for number in range(3):  # commits that stay in the WAL: the file is the same one
            writer.add([text(f"b{number}", text=f"dog {number}")], unit(0, 1, 0, number)[None, :])
            assert read_record(folder, f"b{number}").text == f"dog {number}"
        writer.add([text("a", text="lion")], unit(1, 0, 0, 0)[None, :])
        assert read_record(folder, "a").text == "lion"
    assert stored_ids(folder) == {"a", "b0", "b1", "b2"}
    shutil.rmtree(folder)
    assert read_record(folder, "a") is None  # no store: nothing, not the deleted file's rows
    with open_store(folder) as writer:
        writer.add([text("z", text="zebra")], unit(0, 0, 1, 0)[None, :])
    assert stored_ids(folder) == {"z"} and read_record(folder, "a") is None


def test_idle_readers_are_bounded_per_store_and_in_stores(tmp_path):
    import threading

    from crossmodal.index import connections

    readers = connections.readers
    for number in range(connections.ReadOnlyConnections.STORES + 5):
        with open_store(tmp_path / f"ws{number}") as writer:
            writer.add([text(f"r{number}")], unit(1, 0, 0, 0)[None, :])
        assert read_record(tmp_path / f"ws{number}", f"r{number}") is not None
    assert len(readers.idle) <= connections.ReadOnlyConnections.STORES
    # many reads at once open as many connections; only IDLE_PER_STORE of them are kept afterwards
    folder, started, go = tmp_path / "ws0", [], threading.Barrier(20)

    def read() -> None:
        with connections.read_only_db(folder / DB_NAME) as conn:
            started.append(id(conn))
            go.wait(timeout=10)

    threads = [threading.Thread(target=read) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(set(started)) == 20
    assert len(readers.idle[folder / DB_NAME][1]) == connections.ReadOnlyConnections.IDLE_PER_STORE


def test_a_forked_process_opens_its_own_readers(tmp_path):
    """SQLite connections must not cross a fork: the child reads through connections of its own."""
    import os

    from crossmodal.index import connections

    folder = tmp_path / "ws"
    with open_store(folder) as writer:
        writer.add([text("a", text="cat")], unit(1, 0, 0, 0)[None, :])
    assert read_record(folder, "a") is not None
    parents = {id(conn) for _, conns in connections.readers.idle.values() for conn in conns}
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (runs in the child)
        found = read_record(folder, "a") is not None
        own = {id(conn) for _, conns in connections.readers.idle.values() for conn in conns}
        ok = found and len(own) == 1 and not parents & own
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 1) == b"1"
    assert {id(conn) for _, conns in connections.readers.idle.values() for conn in conns} == parents  # in use
