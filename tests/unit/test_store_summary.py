"""Read-only summaries of a store folder (counts, settings, the records of one pair) on real SQLite files."""
import sqlite3

import numpy as np
import pytest

from crossmodal.index import Record, StoreSummary, VectorStore, records_with_pair_id, store_summary
from crossmodal.index.shards import DB_NAME

DIM = 3


def caption(id_: str, pair_id: str, text: str) -> Record:
    return Record(id=id_, modality="text", text=text, pair_id=pair_id, tags={"image_id": "img-" + pair_id})


def vectors(count: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(count, DIM)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "text_index"
    records = [caption("txt-aa-0", "a", "first a"), caption("txt-aa-1", "a", "second a"),
               caption("txt-ab-0", "b", "first b"), caption("txt-aa-2", "a", "third a"),
               # same prefix as pair "a" but another pair: the prefix alone must not be trusted
               caption("txt-aa-9", "z", "not a")]
    with VectorStore(folder, "text", "m", DIM) as store:
        store.add(records, vectors(len(records)))
    return folder


def test_summary_counts_records_and_reports_the_settings(folder):
    assert store_summary(folder) == StoreSummary(modality="text", model_name="m", dim=DIM, count=5)


def test_summary_of_a_missing_or_empty_store(tmp_path):
    assert store_summary(tmp_path / "nothing") is None
    VectorStore(tmp_path / "empty", "image", "m", DIM).close()
    assert store_summary(tmp_path / "empty") == StoreSummary("image", "m", DIM, 0)


@pytest.mark.parametrize("prefix", [None, "txt-aa-"])
def test_records_of_a_pair_in_stored_order(folder, prefix):
    found = records_with_pair_id(folder, "a", id_prefix=prefix)
    assert [record.id for record in found] == ["txt-aa-0", "txt-aa-1", "txt-aa-2"]
    assert [record.text for record in found] == ["first a", "second a", "third a"]
    assert found[0].tags == {"image_id": "img-a"}


def test_records_of_a_pair_with_a_wrong_prefix_or_unknown_pair(folder):
    assert records_with_pair_id(folder, "b", id_prefix="txt-aa-") == []
    assert records_with_pair_id(folder, "nope") == []
    assert records_with_pair_id(folder.parent / "missing", "a") == []
    assert [r.id for r in records_with_pair_id(folder, "a", limit=2)] == ["txt-aa-0", "txt-aa-1"]


def test_summaries_never_write(folder):
    before = (folder / DB_NAME).read_bytes()
    store_summary(folder)
    records_with_pair_id(folder, "a", id_prefix="txt-aa-")
    assert (folder / DB_NAME).read_bytes() == before


def test_prefix_lookup_uses_the_id_index(folder):
    with sqlite3.connect(folder / DB_NAME) as conn:
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT id FROM records WHERE pair_id = ? AND id >= ? AND id < ?",
                            ("a", "txt-aa-", "txt-aa.")).fetchall()
    assert any("INDEX" in str(row) for row in plan), plan


def test_sample_records_draws_from_every_shard_without_loading_faiss(tmp_path):
    from crossmodal.index import sample_records
    from crossmodal.index.shards import shard_folder

    root = tmp_path / "image_index"
    for shard in range(2):
        with VectorStore(shard_folder(root, 2, shard), "image", "m", DIM) as store:
            store.add([Record(id=f"s{shard}-{i}", modality="image") for i in range(5)],
                      np.eye(5, DIM, dtype=np.float32))
    seen = set()
    for _ in range(20):
        sample = sample_records(root, 4)
        assert len(sample) == 4 and len({record.id for record in sample}) == 4
        seen |= {record.id.split("-")[0] for record in sample}
    assert seen == {"s0", "s1"}
    assert len(sample_records(root, 50)) == 10
    assert sample_records(tmp_path / "nothing", 3) == []


def test_read_records_finds_ids_in_every_shard_across_sql_chunks(tmp_path):
    from crossmodal.index import read_records
    from crossmodal.index.shards import shard_folder, shard_of

    root = tmp_path / "text_index"
    ids = [f"txt-{i}" for i in range(1200)]  # more than one chunk of bound parameters
    for shard in range(2):
        owned = [doc_id for doc_id in ids if shard_of(doc_id, 2) == shard]
        with VectorStore(shard_folder(root, 2, shard), "text", "m", DIM) as store:
            store.add([Record(id=doc_id, modality="text", text=doc_id.upper()) for doc_id in owned],
                      np.ones((len(owned), DIM), dtype=np.float32))
    wanted = ids[::7] + ["txt-missing", ids[0]]
    found = read_records(root, wanted)
    assert set(found) == set(ids[::7]) and all(found[doc_id].text == doc_id.upper() for doc_id in found)
    assert read_records(tmp_path / "nothing", ids[:3]) == {}


def test_pairs_with_captions_are_the_pairs_caption_vectors_of_pairs_finds_in_every_shard(tmp_path):
    from crossmodal.index import caption_vectors_of_pairs, pairs_with_captions
    from crossmodal.index.shards import shard_folder

    root = tmp_path / "text_index"
    pairs = [f"folder/lib/sha256:{n}" for n in range(600)]  # more than one chunk of bound parameters
    for shard in range(2):
        owned = pairs[shard::2][::3]  # a third of each shard's pairs have captions, two each
        with VectorStore(shard_folder(root, 2, shard), "text", "m", DIM) as store:
            store.add([caption(f"txt-{pair}-{n}", pair, f"caption {n}") for pair in owned for n in range(2)],
                      vectors(2 * len(owned)))
    wanted = [*pairs, "folder/lib/sha256:missing"]
    assert pairs_with_captions(root, wanted) == set(caption_vectors_of_pairs(root, wanted))
    assert len(pairs_with_captions(root, wanted)) == 200
    assert pairs_with_captions(tmp_path / "nothing", pairs[:3]) == set()
