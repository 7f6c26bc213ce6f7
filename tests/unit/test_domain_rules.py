"""The domain rules the core owns: document ids, the shard layout, record tags and the workspace checks."""
import json
import sqlite3

import numpy as np
import pytest

from crossmodal.index import SCHEMA_VERSION, Record, StoreVersionError, VectorStore
from crossmodal.index.ids import DOC_ID_PATTERN, caption_doc_id, caption_id_prefix, image_doc_id
from crossmodal.index.shards import (
    DB_NAME,
    SHARD_LAYOUT_FILE,
    ShardLayoutError,
    built_shard_count,
    shard_folder,
    shard_folders,
    shard_of,
)
from crossmodal.index.tags import ERROR_TAG, MODEL_TAG, TARGET_TAG, record_from_document, tags_of_record
from crossmodal.index.workspace import check_workspace, index_folder
from crossmodal.modality import IMAGE, TEXT, other_modality


def test_ids_are_stable_url_safe_and_tie_captions_to_their_photo():
    assert image_doc_id("demo/coffee.png") == image_doc_id("demo/coffee.png")
    assert image_doc_id("demo/coffee.png") != image_doc_id("demo/cat.png")
    for doc_id in (image_doc_id("a b/ü.jpg"), caption_doc_id("a b/ü.jpg", 12)):
        assert DOC_ID_PATTERN.match(doc_id)
    prefix = caption_id_prefix("demo/coffee.png")
    assert all(caption_doc_id("demo/coffee.png", i).startswith(prefix) for i in (0, 1, 10))
    assert not caption_doc_id("demo/cat.png", 0).startswith(prefix)
    assert image_doc_id("x")[4:] == caption_doc_id("x", 0)[4:20]  # the pair's hash in both


def test_other_modality_is_cross_wise():
    assert (other_modality(TEXT), other_modality(IMAGE)) == (IMAGE, TEXT)


def test_record_tags_become_columns_and_pipeline_tags_are_dropped():
    tags = {"pair_id": "p", "dataset": "demo", "split": "test", MODEL_TAG: "m", ERROR_TAG: "x", TARGET_TAG: "image",
            "taken": "2024-05-01"}
    record = record_from_document("img-1", IMAGE, None, "/photos/p.jpg", tags)
    assert (record.pair_id, record.dataset, record.split) == ("p", "demo", "test")
    assert record.tags == {"taken": "2024-05-01"}
    assert tags_of_record(record) == {"pair_id": "p", "dataset": "demo", "split": "test", "taken": "2024-05-01"}


def test_every_id_has_exactly_one_owner_shard_and_keeps_it():
    ids = [f"img-{i}" for i in range(300)]
    owners = [shard_of(doc_id, 3) for doc_id in ids]
    assert owners == [shard_of(doc_id, 3) for doc_id in ids]
    assert set(owners) == {0, 1, 2} and min(owners.count(k) for k in range(3)) > 60


def test_shard_folder_records_the_layout_and_refuses_another_count(tmp_path):
    root = tmp_path / "image_index"
    assert shard_folder(root, 2, 1) == root / "shard-1"
    assert json.loads((root / SHARD_LAYOUT_FILE).read_text()) == {"shards": 2}
    assert shard_folder(root, 2, 0) == root / "shard-0"
    with pytest.raises(ShardLayoutError, match="built with 2 shard"):
        shard_folder(root, 3, 0)
    with pytest.raises(ShardLayoutError, match="invalid sharding"):
        shard_folder(root, 2, 2)


def test_an_unsharded_store_from_before_the_layout_file_counts_as_one_shard(tmp_path):
    root = tmp_path / "text_index"
    root.mkdir()
    sqlite3.connect(root / DB_NAME).close()
    assert built_shard_count(root) == 1 and shard_folders(root) == [root]
    with pytest.raises(ShardLayoutError):
        shard_folder(root, 2, 0)


def _store(folder, modality: str) -> None:
    with VectorStore(folder, modality, "m", 2) as store:
        store.add([Record(id=f"{modality}-1", modality=modality)], np.array([[1.0, 0.0]], dtype=np.float32))


def test_check_workspace_names_what_stops_a_flow_before_it_starts(tmp_path):
    check_workspace(tmp_path / "new", 3)  # nothing indexed yet: any shard count will do
    for shard in range(2):
        _store(shard_folder(index_folder(tmp_path, IMAGE), 2, shard), IMAGE)
    check_workspace(tmp_path, 2)
    with pytest.raises(ShardLayoutError, match="built with 2 shard"):
        check_workspace(tmp_path, 1)
    with sqlite3.connect(index_folder(tmp_path, IMAGE) / "shard-1" / DB_NAME) as db:
        db.execute("UPDATE settings SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreVersionError):
        check_workspace(tmp_path, 2)


def test_index_folder_refuses_an_unknown_modality(tmp_path):
    assert index_folder(tmp_path, TEXT) == tmp_path / "text_index"
    with pytest.raises(ValueError, match="unknown modality 'audio'"):
        index_folder(tmp_path, "audio")
