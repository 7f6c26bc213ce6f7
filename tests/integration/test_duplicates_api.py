"""Near-duplicates over real HTTP (issue 11, item 5): `GET /duplicates`, `collapse_duplicates` and `duplicates` on
search matches, in JSON, multipart and batches; jinabox answers keep their shape.

A query server runs on a copy of the demo workspace into whose photo index the test wrote real vectors: the offline
model's embeddings of three demo photos and their generated copies (tests/unit/data/near_duplicate_vectors.npz,
written by bench/near_duplicates_bench.py), with folder metadata. What the server answers is checked against the
groups `crossmodal.library.duplicates.store_groups` forms over the same store in the test process. The demo collection
on its own has no near-duplicates (its two most similar photos: 0.965), which the shared server shows.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from crossmodal.index import Record, VectorStore, stored_settings
from crossmodal.library.duplicates import THRESHOLDS, DuplicateGroups, store_groups
from crossmodal.modality import IMAGE
from serving.http.api_models import MAX_DEPTH
from tests.servers import start_query_server

VECTORS = Path(__file__).parents[1] / "unit" / "data" / "near_duplicate_vectors.npz"
FAMILIES = ("camera", "coffee", "motorcycle")
QUERY = {"text": "a man with a camera, a cup of coffee or a motorcycle", "mode": "semantic", "modality": "image"}


def write_copies(folder: Path) -> list[Record]:
    """The families' photos as library photos of the store in ``folder`` (the original has the most pixels)."""
    data = np.load(VECTORS)
    settings = stored_settings(folder)
    assert settings is not None
    wanted = [i for i, family in enumerate(data["family"]) if family in FAMILIES]
    records = []
    for i in wanted:
        path = f"{data['family'][i]}/{str(data['kind'][i]).replace(' ', '-').replace('%', '')}.jpg"
        width = 1000 if data["kind"][i] == "original" else 600
        records.append(Record(f"img-{0xd0d0 + i:016x}", IMAGE, uri=f"/nowhere/{path}", pair_id=f"folder/x/{path}",
                              dataset="folder", split="all", tags={"metadata": {
                                  "path": path, "paths": [path], "folder": str(data["family"][i]), "width": width,
                                  "height": 800, "size_bytes": 1000 + i, "taken": None, "taken_source": None,
                                  "camera": None, "lat": None, "lon": None}}))
    with VectorStore(folder, IMAGE, settings.model_name, settings.dim) as store:
        store.add(records, data["vectors"][wanted])
    return records


@pytest.fixture(scope="module")
def copies_workspace(demo_workspace, tmp_path_factory) -> Path:
    workspace = Path(shutil.copytree(demo_workspace, tmp_path_factory.mktemp("duplicates") / "workspace"))
    write_copies(workspace / "image_index")
    return workspace


@pytest.fixture(scope="module")
def copies_client(copies_workspace, tmp_path_factory):
    server = start_query_server(copies_workspace, tmp_path_factory.mktemp("duplicates-server") / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            yield http
    finally:
        server.stop()


def expected_groups(workspace: Path) -> DuplicateGroups:
    return store_groups(workspace / "image_index")[0]


def search(client: httpx.Client, **body) -> dict:
    response = client.post("/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def all_groups(client: httpx.Client, limit: int) -> tuple[list[dict], list[dict]]:
    """Every group, page by page; and the pages."""
    groups, pages, offset = [], [], 0
    while offset is not None:
        response = client.get("/duplicates", params={"limit": limit, "offset": offset})
        assert response.status_code == 200, response.text
        pages.append(response.json())
        groups += pages[-1]["groups"]
        offset = pages[-1]["next_offset"]
    return groups, pages


def test_duplicates_lists_the_groups_of_the_index(copies_client, copies_workspace):
    expected = expected_groups(copies_workspace)
    assert len(expected.groups) >= 3 and expected.groups[0].size >= 5
    answer = copies_client.get("/duplicates").json()
    assert answer["threshold"] == THRESHOLDS["offline"] and answer["offset"] == 0
    assert answer["total"] == len(expected.groups) and answer["next_offset"] is None
    assert [(g["id"], g["size"], [m["id"] for m in g["members"]]) for g in answer["groups"]] == [
        (g.id, g.size, [m.id for m in g.members]) for g in expected.groups]
    for group in answer["groups"]:
        assert group["size"] == len(group["members"]) >= 2 and group["members"][0]["similarity"] == 1.0
        assert all(THRESHOLDS["offline"] <= m["similarity"] <= 1.0 + 1e-6 for m in group["members"])
        assert all(m["uri"] == f"/images/{m['id']}" for m in group["members"])
        assert len({m["metadata"]["folder"] for m in group["members"] if m["metadata"]}) == 1  # one family
    sizes = [(-g["size"], g["id"]) for g in answer["groups"]]
    assert sizes == sorted(sizes)
    camera = next(g for g in answer["groups"] if g["members"][0]["metadata"]["path"] == "camera/original.jpg")
    assert camera["members"][0]["metadata"]["width"] == 1000  # the most pixels stands for the group


def test_duplicates_pages_and_bad_input(copies_client):
    whole = copies_client.get("/duplicates", params={"limit": 100}).json()
    groups, pages = all_groups(copies_client, limit=2)
    assert groups == whole["groups"]
    assert [page["next_offset"] for page in pages][:-1] == list(range(2, 2 * len(pages), 2))
    assert pages[-1]["next_offset"] is None and all(page["total"] == whole["total"] for page in pages)
    beyond = copies_client.get("/duplicates", params={"offset": 500}).json()
    assert beyond["groups"] == [] and beyond["next_offset"] is None and beyond["total"] == whole["total"]
    for params, field in (({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"offset": -1}, "offset")):
        response = copies_client.get("/duplicates", params=params)
        assert response.status_code == 400, response.text
        assert f"'{field}'" in response.json()["error"]["message"]
    assert copies_client.get("/duplicates", params={"limit": "many"}).status_code == 422


def test_search_collapses_each_group_to_its_best_ranked_member(copies_client, copies_workspace):
    expected = expected_groups(copies_workspace)
    every = search(copies_client, **QUERY, limit=100, collapse_duplicates=False)
    collapsed = search(copies_client, **QUERY, limit=100)
    ranked = [match["id"] for match in every["matches"]]
    assert len(ranked) == every["total"] > len(collapsed["matches"])
    assert [match["id"] for match in collapsed["matches"]] == expected.collapse(ranked)
    assert collapsed["total"] == every["total"] - expected.folded()
    for answer in (every, collapsed):
        for match in answer["matches"]:
            assert match["duplicates"] == expected.duplicates_of(match["id"])
    assert any(match["duplicates"] > 0 for match in collapsed["matches"])


@pytest.mark.parametrize("mode", ["semantic", "hybrid"])
def test_collapsed_pages_concatenate_to_the_collapsed_whole(copies_client, mode):
    whole = search(copies_client, **{**QUERY, "mode": mode}, limit=100)
    pages, offset = [], 0
    while offset is not None:
        answer = search(copies_client, **{**QUERY, "mode": mode}, limit=4, offset=offset)
        assert answer["total"] == whole["total"] and answer["offset"] == offset
        pages += [match["id"] for match in answer["matches"]]
        offset = answer["next_offset"]
    assert pages == [match["id"] for match in whole["matches"]]
    assert len(pages) == whole["total"] <= MAX_DEPTH


def test_collapse_in_multipart_and_batches_and_caption_matches(copies_client, copies_workspace):
    expected = expected_groups(copies_workspace)
    photo = copies_workspace / "demo_images" / "camera.png"
    answers = {}
    for flag in ("true", "false"):
        with photo.open("rb") as upload:
            response = copies_client.post("/search", files={"image": ("camera.png", upload, "image/png")},
                                          data={"modality": "image", "limit": "60", "collapse_duplicates": flag})
        assert response.status_code == 200, response.text
        answers[flag] = [match["id"] for match in response.json()["matches"]]
    assert answers["true"] == expected.collapse(answers["false"]) != answers["false"]
    batch = copies_client.post("/search/batch", json={"queries": [
        {**QUERY, "limit": 60}, {**QUERY, "limit": 60, "collapse_duplicates": False},
        {"text": "a camera", "modality": "text", "limit": 3}]})
    assert batch.status_code == 200, batch.text
    first, second, captions = batch.json()["results"]
    assert [m["id"] for m in first["matches"]] == expected.collapse([m["id"] for m in second["matches"]])
    assert captions["modality"] == "text" and all(m["duplicates"] is None for m in captions["matches"])


def test_jinabox_answers_keep_their_shape(copies_client):
    response = copies_client.post("/api/search", json={"data": ["a camera"], "top_k": 50, "mode": "search"})
    assert response.status_code == 200, response.text
    matches = response.json()["search"]["docs"][0]["matches"]
    assert len(matches) == 50 and all("duplicates" not in match for match in matches)


def test_a_change_of_the_index_is_seen_without_a_restart(copies_client, copies_workspace):
    before = copies_client.get("/duplicates").json()
    largest = before["groups"][0]
    folder = copies_workspace / "image_index"
    settings = stored_settings(folder)
    assert settings is not None
    with VectorStore(folder, IMAGE, settings.model_name, settings.dim) as store:
        store.delete([largest["id"]])
    after = copies_client.get("/duplicates").json()
    assert largest["id"] not in {m["id"] for g in after["groups"] for m in g["members"]}
    assert [(g["id"], g["size"]) for g in after["groups"]] == [
        (g.id, g.size) for g in expected_groups(copies_workspace).groups]


def test_the_demo_alone_has_no_near_duplicates(client):
    answer = client.get("/duplicates").json()
    assert answer == {"groups": [], "total": 0, "offset": 0, "next_offset": None,
                      "threshold": THRESHOLDS["offline"]}
    matches = search(client, text="a cat", limit=5, mode="semantic")["matches"]
    assert matches and all(match["duplicates"] == 0 for match in matches)
    schema = client.get("/openapi.json").json()
    assert "/duplicates" in schema["paths"]
    assert "duplicates" in schema["components"]["schemas"]["Match"]["properties"]
    assert "collapse_duplicates" in schema["components"]["schemas"]["SearchRequest"]["properties"]
