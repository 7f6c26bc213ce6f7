"""A 3-shard flow (encoders with 2 replicas) returns exactly what a 1-shard flow returns on the same data."""
import base64

import httpx
import pytest
from jina.helper import random_port

from crossmodal.shards import shard_folders
from crossmodal.store import stored_ids
from dataset import open_dataset
from serving.jobs.indexing import index_dataset
from serving.runtime.flows import FlowSettings, load_flow, running

TEXT_QUERIES = ["a cup of coffee", "a cat", "a red motorcycle", "the moon", "a woman in uniform", "a temple"]


def build(workspace, **scale) -> None:
    with running(load_flow("index", FlowSettings(workspace=workspace, **scale))) as flow:
        index_dataset(flow, open_dataset("demo", workspace=workspace), workspace, batch_size=4)


def rankings(workspace, **scale) -> list[list[tuple[str, float]]]:
    port = random_port()
    bodies = [{"text": text, "limit": 10} for text in TEXT_QUERIES]
    bodies += [{"image": base64.b64encode(path.read_bytes()).decode(), "limit": 10}
               for path in sorted((workspace / "demo_images").iterdir())[:4]]
    with running(load_flow("query", FlowSettings(workspace=workspace, port=port, **scale))):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            return [[(match["id"], match["score"]) for match in http.post("/search", json=body).json()["matches"]]
                    for body in bodies]


@pytest.fixture(scope="module")
def single_and_sharded(tmp_path_factory):
    single, sharded = tmp_path_factory.mktemp("one-shard"), tmp_path_factory.mktemp("three-shards")
    build(single)
    build(sharded, shards=3, replicas=2)
    return single, sharded


def test_each_document_is_stored_in_exactly_one_shard(single_and_sharded):
    single, sharded = single_and_sharded
    for index in ("image_index", "text_index"):
        shards = shard_folders(sharded / index)
        assert [folder.name for folder in shards] == ["shard-0", "shard-1", "shard-2"]
        parts = [stored_ids(folder) for folder in shards]
        assert sum(len(part) for part in parts) == len(set().union(*parts))  # no document in two shards
        assert set().union(*parts) == stored_ids(single / index) == stored_ids(sharded / index)


def test_three_shards_return_the_same_ranking_as_one(single_and_sharded):
    single, sharded = single_and_sharded
    expected = rankings(single)
    actual = rankings(sharded, shards=3, replicas=2)
    assert len(expected) == len(TEXT_QUERIES) + 4
    for want, got in zip(expected, actual):
        assert [doc_id for doc_id, _ in got] == [doc_id for doc_id, _ in want]
        assert [score for _, score in got] == pytest.approx([score for _, score in want], abs=1e-5)


def test_reindexing_a_sharded_index_does_not_duplicate(single_and_sharded):
    _, sharded = single_and_sharded
    before = stored_ids(sharded / "text_index")
    with running(load_flow("index", FlowSettings(workspace=sharded, shards=3))) as flow:
        index_dataset(flow, open_dataset("demo", workspace=sharded), sharded, batch_size=4, num_docs=5, reindex=True)
    parts = [stored_ids(folder) for folder in shard_folders(sharded / "text_index")]
    assert sum(len(part) for part in parts) == len(before)


def test_an_index_is_refused_with_another_shard_count(single_and_sharded):
    _, sharded = single_and_sharded
    with pytest.raises(Exception):
        with running(load_flow("query", FlowSettings(workspace=sharded, port=random_port(), shards=2))):
            pass
