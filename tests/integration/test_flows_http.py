"""Both flows with the real offline models, the query flow driven through its HTTP gateway.

The index flow built the run's demo workspace (`app.py -t index`, tests/conftest.py), which the shared query
server serves; re-indexing is tested at the indexing-job level (test_indexing_job.py).
"""
import asyncio
import base64
import io
import time

import numpy as np
import pytest
from docarray import DocList
from PIL import Image

from crossmodal.index import ModelMismatchError, stored_ids
from pods.indexer import Indexer
from serving.wire import CrossModalDoc


@pytest.fixture
def workspace(demo_workspace):
    return demo_workspace


def b64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_index_flow_routes_each_modality_to_its_own_index(workspace):
    image_ids, text_ids = stored_ids(workspace / "image_index"), stored_ids(workspace / "text_index")
    assert len(image_ids) == 19 and all(doc_id.startswith("img-") for doc_id in image_ids)
    assert len(text_ids) == 57 and all(doc_id.startswith("txt-") for doc_id in text_ids)


def test_text_query_returns_images_sorted_with_coffee_first(client):
    response = client.post("/search", json={"text": "a cup of coffee", "limit": 5, "mode": "semantic"})
    assert response.status_code == 200
    matches = response.json()["matches"]
    assert len(matches) == 5
    assert all(match["modality"] == "image" for match in matches)
    assert matches[0]["tags"]["pair_id"] == "demo/coffee.png"
    scores = [match["score"] for match in matches]
    assert scores == sorted(scores, reverse=True)
    assert matches[0]["tags"]["dataset"] == "demo"


def test_image_query_returns_captions_of_the_cat_in_top_3(client, workspace):
    response = client.post("/search", json={"image": b64(workspace / "demo_images" / "chelsea_cat.png"), "limit": 3})
    assert response.status_code == 200
    matches = response.json()["matches"]
    assert all(match["modality"] == "text" for match in matches)
    assert any(match["tags"]["pair_id"] == "demo/chelsea_cat.png" for match in matches)
    # Each caption links to its photo.
    assert all(match["image_url"].startswith("/images/img-") for match in matches)


def test_image_query_accepts_a_data_uri(client, workspace):
    uri = "data:image/png;base64," + b64(workspace / "demo_images" / "coffee.png")
    matches = client.post("/search", json={"image": uri, "limit": 3}).json()["matches"]
    assert any(match["tags"]["pair_id"] == "demo/coffee.png" for match in matches)


def test_images_are_served_by_id_only(client):
    match = client.post("/search", json={"text": "a cup of coffee", "limit": 1}).json()["matches"][0]
    image = client.get(match["image_url"])
    assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
    assert Image.open(io.BytesIO(image.content)).size[0] > 0
    for bad in ["/images/nope", "/images/..%2F..%2Fetc%2Fpasswd", "/images/%2Fetc%2Fpasswd"]:
        response = client.get(bad)
        assert response.status_code == 404, bad
    caption_id = client.post("/search", json={"image": _tiny_png(), "limit": 1}).json()["matches"][0]["id"]
    assert client.get(f"/images/{caption_id}").status_code == 404


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"text": ""}, 400, "empty"),
        ({"text": "   "}, 400, "empty"),
        ({}, 400, "exactly one"),
        ({"text": "a", "image": "b"}, 400, "exactly one"),
        ({"image": base64.b64encode(b"this is not an image").decode()}, 400, "not a usable image"),
        ({"image": "%%% not base64 %%%"}, 400, "not a usable image"),
        ({"text": "a cat", "limit": 0}, 422, "limit"),
        ({"text": "a cat", "limit": 101}, 400, "limit"),
        ({"text": "a cat", "top": 3}, 422, "top"),
        ({"text": 42}, 422, "text"),
        ({"text": "x" * 1001}, 400, "longer"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(client, body, status, message):
    response = client.post("/search", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["status"] == status and message in error["message"]


def test_malformed_json_and_huge_bodies_are_refused_and_the_server_survives(client):
    response = client.post("/search", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    huge = client.post("/search", content=b"x" * (41 * 1024 * 1024), headers={"content-type": "application/json"})
    assert huge.status_code == 413
    assert client.get("/health").json() == {"status": "ok"}
    best = client.post("/search", json={"text": "a cup of coffee"}).json()["matches"][0]
    assert best["tags"]["pair_id"] == "demo/coffee.png"


def test_indexer_refuses_documents_and_queries_of_another_model(tmp_path):
    indexer = Indexer(modality="image", folder=str(tmp_path / "image_index"))
    indexer.index(DocList[CrossModalDoc]([
        CrossModalDoc(id="a", modality="image", embedding=_unit([1.0, 0.0]), tags={"model": "offline"})]))
    with pytest.raises(ModelMismatchError, match="offline"):
        indexer.index(DocList[CrossModalDoc]([
            CrossModalDoc(id="b", modality="image", embedding=_unit([0.0, 1.0]), tags={"model": "other"})]))
    query = DocList[CrossModalDoc]([
        CrossModalDoc(id="q", modality="text", embedding=_unit([1.0, 0.0]), tags={"model": "other"})])
    result = asyncio.run(indexer.search(query, parameters={"limit": 3}))[0]
    assert not result.matches
    assert "'offline'" in result.tags["error"] and "'other'" in result.tags["error"]
    indexer.close()


def _tiny_png() -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 200, dtype=np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_read_only_indexer_sees_documents_indexed_after_it_started(tmp_path):
    folder = str(tmp_path / "image_index")
    reader = Indexer(modality="image", folder=folder, read_only=True)

    def query():
        return DocList[CrossModalDoc]([
            CrossModalDoc(id="q", modality="text", embedding=_unit([1.0, 0.0]), tags={"model": "m"})])

    assert not asyncio.run(reader.search(query(), parameters={"limit": 5}))[0].matches
    writer = Indexer(modality="image", folder=folder)
    writer.index(DocList[CrossModalDoc]([
        CrossModalDoc(id="near", modality="image", uri="/a.png", embedding=_unit([1.0, 0.1]), tags={"model": "m"}),
        CrossModalDoc(id="far", modality="image", uri="/b.png", embedding=_unit([0.0, 1.0]), tags={"model": "m"}),
    ]))
    matches = asyncio.run(reader.search(query(), parameters={"limit": 5}))[0].matches
    assert [match.id for match in matches] == ["near", "far"]
    assert matches[0].score > matches[1].score
    writer.close()
    reader.close()


def test_a_read_only_indexer_loads_a_new_index_off_the_event_loop(tmp_path, monkeypatch):
    """After another process wrote, the first search loads the new index (seconds on a large one): in a thread, so
    the executor's event loop goes on answering (health checks, other requests) meanwhile."""
    folder = str(tmp_path / "image_index")
    writer = Indexer(modality="image", folder=folder)
    writer.index(DocList[CrossModalDoc]([
        CrossModalDoc(id="near", modality="image", uri="/a.png", embedding=_unit([1.0, 0.1]), tags={"model": "m"})]))
    reader = Indexer(modality="image", folder=folder, read_only=True)  # loads that index as it opens
    writer.index(DocList[CrossModalDoc]([
        CrossModalDoc(id="far", modality="image", uri="/b.png", embedding=_unit([0.0, 1.0]), tags={"model": "m"})]))
    load = reader.store._load_snapshot

    def slow_load(generation):
        time.sleep(0.6)  # as a large index would take
        return load(generation)

    monkeypatch.setattr(reader.store, "_load_snapshot", slow_load)
    query = DocList[CrossModalDoc]([
        CrossModalDoc(id="q", modality="text", embedding=_unit([1.0, 0.0]), tags={"model": "m"})])

    async def search_while_ticking():
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        ticker = asyncio.create_task(tick())
        result = await reader.search(query, parameters={"limit": 5})
        ticker.cancel()
        return result, ticks

    result, ticks = asyncio.run(search_while_ticking())
    assert [match.id for match in result[0].matches] == ["near", "far"]
    assert ticks >= 5  # the loop ran on during the 0.6 s load; blocked, it would not have ticked at all
    writer.close()
    reader.close()


def _unit(values):
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)
