"""The real index and query flows with the VSE++ and CLIP backends, on weights files created here in the original
formats (random weights: the results are not meaningful, the plumbing is), queried over HTTP; a query flow with
another model on the same workspace is refused with both model names."""
from __future__ import annotations

import base64

import httpx
import pytest
from jina.helper import random_port

from crossmodal.store import stored_settings
from dataset import open_dataset
from serving.jobs.indexing import index_dataset
from serving.runtime.flows import FlowSettings, load_flow, running
from tests.model_weights import write_model_weights

NUM_PHOTOS = 3



@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return write_model_weights(tmp_path_factory.mktemp("weights"))


def index_with(model, options, workspace):
    reader = open_dataset("demo", workspace=workspace)
    with running(load_flow("index", FlowSettings(workspace=workspace, model=model, model_options=options))) as flow:
        return index_dataset(flow, reader, workspace, batch_size=2, num_docs=NUM_PHOTOS)


@pytest.fixture(scope="module")
def workspaces(models, tmp_path_factory):
    built = {}
    for model, options in models.items():
        workspace = tmp_path_factory.mktemp(f"{model}-workspace")
        summary = index_with(model, options, workspace)
        assert (summary.images, summary.captions, len(summary.skipped)) == (NUM_PHOTOS, 3 * NUM_PHOTOS, 0)
        built[model] = workspace
    return built


@pytest.mark.parametrize("model", ["vsepp", "clip"])
def test_index_and_query_flows_run_with_the_model(model, models, workspaces):
    workspace = workspaces[model]
    for modality in ("image_index", "text_index"):
        settings = stored_settings(workspace / modality)
        assert settings.model_name.startswith(f"{model}:") and settings.dim == (1024 if model == "vsepp" else 512)
    photo = next((workspace / "demo_images").iterdir())
    port = random_port()
    query = FlowSettings(workspace=workspace, model=model, model_options=models[model], port=port)
    with running(load_flow("query", query)), httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
        text = http.post("/search", json={"text": "a cup of coffee on the table", "limit": 5})
        assert text.status_code == 200, text.text
        matches = text.json()["matches"]
        assert len(matches) == NUM_PHOTOS and {m["modality"] for m in matches} == {"image"}
        scores = [m["score"] for m in matches]
        assert scores == sorted(scores, reverse=True) and all(-1.001 <= s <= 1.001 for s in scores)
        image = http.post("/search", json={"image": base64.b64encode(photo.read_bytes()).decode(), "limit": 4})
        assert image.status_code == 200, image.text
        assert len(image.json()["matches"]) == 4 and {m["modality"] for m in image.json()["matches"]} == {"text"}


def test_a_query_flow_with_another_model_is_refused_with_both_names(models, workspaces):
    workspace = workspaces["vsepp"]
    built_by = stored_settings(workspace / "image_index").model_name
    port = random_port()
    query = FlowSettings(workspace=workspace, model="clip", model_options=models["clip"], port=port)
    with running(load_flow("query", query)), httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
        response = http.post("/search", json={"text": "a cup of coffee", "limit": 3})
    assert response.status_code == 409, response.text
    message = response.json()["error"]["message"]
    assert built_by in message and "clip:ViT-B-32:" in message
