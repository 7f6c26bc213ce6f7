"""`app.py -t query-restful --model vsepp|clip` on a workspace indexed with that model (tests/conftest.py,
`model_indexes`: weights files in the original formats, random values, so the plumbing is tested, not the
rankings), queried over HTTP by text and by photo; a server with another model on the same workspace is refused
with both model names. Every server is a real subprocess (tests/servers.py) and must stop cleanly."""
from __future__ import annotations

import base64

import httpx
import pytest

from crossmodal.index import stored_settings
from tests.servers import start_query_server

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("model", ["vsepp", "clip"])
def test_a_query_server_with_the_model_answers_text_and_photo_queries(model, model_indexes, tmp_path):
    index = model_indexes[model]
    photo = next((index.workspace / "demo_images").iterdir())
    server = start_query_server(index.workspace, tmp_path / "server.log", *index.flags)
    try:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            # Random weights make every photo a near-duplicate of every other: all of them, unfolded.
            text = http.post("/search", json={"text": "a cup of coffee on the table", "limit": 5,
                                                "mode": "semantic", "collapse_duplicates": False})
            assert text.status_code == 200, text.text
            matches = text.json()["matches"]
            assert len(matches) == index.photos and {m["modality"] for m in matches} == {"image"}
            scores = [m["score"] for m in matches]
            assert scores == sorted(scores, reverse=True) and all(-1.001 <= s <= 1.001 for s in scores)
            image = http.post("/search", json={"image": base64.b64encode(photo.read_bytes()).decode(), "limit": 4})
            assert image.status_code == 200, image.text
            matches = image.json()["matches"]
            assert len(matches) == 4 and {m["modality"] for m in matches} == {"text"}
        assert f"({model} model)" in server.log_text()
    finally:
        server.stop()


def test_a_query_server_with_another_model_is_refused_with_both_names(model_indexes, tmp_path):
    """A VSE++ server (the quicker one to start) on the CLIP workspace: 409, naming the model that built the index
    and the one that embedded the query."""
    built, other = model_indexes["clip"], model_indexes["vsepp"]
    built_by = stored_settings(built.workspace / "image_index").model_name
    query_model = stored_settings(other.workspace / "image_index").model_name
    assert built_by.startswith("clip:ViT-B-32:") and query_model.startswith("vsepp:model_best.pth.tar:")
    server = start_query_server(built.workspace, tmp_path / "server.log", *other.flags)
    try:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            response = http.post("/search", json={"text": "a cup of coffee", "limit": 3})
        assert response.status_code == 409, response.text
        message = response.json()["error"]["message"]
        assert built_by in message and query_model in message, message
    finally:
        server.stop()
