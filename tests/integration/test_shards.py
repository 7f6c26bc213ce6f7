"""A 3-shard flow (encoders with 2 replicas) returns exactly what a 1-shard flow returns on the same data.

The 1-shard side is the run's demo workspace and its shared query server (tests/conftest.py); the 3-shard side is
one index flow (fed through `index_dataset`) and one query server, both subprocesses (tests/servers.py).
"""
import base64

import httpx
import pytest

from crossmodal.index import stored_ids
from crossmodal.index.shards import shard_folders
from dataset import open_dataset
from serving.jobs.indexing import index_dataset
from tests.servers import describe, run_cli, start_index_flow, start_query_server

TEXT_QUERIES = ["a cup of coffee", "a cat", "a red motorcycle", "the moon", "a woman in uniform", "a temple"]
SCALE = ("--shards", "3", "--replicas", "2")


@pytest.fixture(scope="module")
def sharded_index_flow(tmp_path_factory):
    """The index flow with 3 shards and 2 replicas of each encoder, on a workspace of its own, after a full run."""
    root = tmp_path_factory.mktemp("three-shards")
    flow = start_index_flow(root / "workspace", root / "index.log", shards=3, replicas=2)
    try:
        summary = index_dataset(flow.client(), open_dataset("demo", workspace=flow.workspace), flow.workspace,
                                batch_size=4)
        assert (summary.images, summary.captions, len(summary.skipped)) == (19, 57, 0)
        yield flow
    finally:
        flow.stop()


@pytest.fixture(scope="module")
def sharded(sharded_index_flow):
    return sharded_index_flow.workspace


def rankings(base_url: str, workspace) -> list[list[tuple[str, float]]]:
    bodies = [{"text": text, "limit": 10} for text in TEXT_QUERIES]
    bodies += [{"image": base64.b64encode(path.read_bytes()).decode(), "limit": 10}
               for path in sorted((workspace / "demo_images").iterdir())[:4]]
    with httpx.Client(base_url=base_url, timeout=60) as http:
        return [[(match["id"], match["score"]) for match in http.post("/search", json=body).json()["matches"]]
                for body in bodies]


@pytest.mark.slow
def test_each_document_is_stored_in_exactly_one_shard(sharded, demo_workspace):
    for index in ("image_index", "text_index"):
        shards = shard_folders(sharded / index)
        assert [folder.name for folder in shards] == ["shard-0", "shard-1", "shard-2"]
        parts = [stored_ids(folder) for folder in shards]
        assert all(parts), "a shard got nothing"
        assert sum(len(part) for part in parts) == len(set().union(*parts))  # no document in two shards
        assert set().union(*parts) == stored_ids(demo_workspace / index) == stored_ids(sharded / index)


@pytest.mark.slow
def test_reindexing_a_sharded_index_does_not_duplicate(sharded_index_flow):
    sharded = sharded_index_flow.workspace
    before = {index: stored_ids(sharded / index) for index in ("image_index", "text_index")}
    summary = index_dataset(sharded_index_flow.client(), open_dataset("demo", workspace=sharded), sharded,
                            batch_size=4, num_docs=5, reindex=True)
    assert (summary.images, summary.captions) == (5, 15)  # sent again, and stored again by their own shard
    for index, ids in before.items():
        parts = [stored_ids(folder) for folder in shard_folders(sharded / index)]
        assert sum(len(part) for part in parts) == len(ids)
        assert set().union(*parts) == ids


@pytest.mark.slow
def test_three_shards_return_the_same_ranking_as_one(sharded, demo_server, demo_workspace, tmp_path):
    expected = rankings(demo_server, demo_workspace)
    server = start_query_server(sharded, tmp_path / "server.log", *SCALE)
    try:
        actual = rankings(server.url, sharded)
    finally:
        server.stop()
    assert len(expected) == len(TEXT_QUERIES) + 4
    for want, got in zip(expected, actual, strict=True):
        assert len(got) == 10
        assert [doc_id for doc_id, _ in got] == [doc_id for doc_id, _ in want]
        assert [score for _, score in got] == pytest.approx([score for _, score in want], abs=1e-5)


def test_an_index_is_refused_with_another_shard_count(sharded):
    """The user is told why, in one line, before any flow starts: not a traceback, not a flow that fails to start."""
    result = run_cli("-t", "query", "--text", "a cup of coffee", "--shards", "2", "--workspace", sharded, timeout=120)
    assert result.returncode == 2, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, describe(result)
    assert "image_index was built with 3 shard(s), not 2" in errors[0], describe(result)
    assert "[image]" not in result.stdout and "[text]" not in result.stdout, describe(result)
