"""Shared by every test module that runs flows: the demo collection indexed once per run, one query server on it.

No flow is ever forked from the test process (tests/servers.py says why): the demo index is built by
`app.py -t index`, the query server is `app.py -t query-restful`, both real subprocesses. A test that changes a
workspace works on a copy of the demo one (`demo_workspace_copy`), never on the shared one.

The model-backend tests (tests/e2e/test_cli_models.py, tests/integration/test_model_backends_flow.py) share the
weights files written once per run (`model_weights`) and one workspace indexed with each model (`model_indexes`).
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

# The model caches (ONNX exports, the offline model's prompt embeddings) of a run go to a folder of its own, removed
# at the end, unless CROSSMODAL_CACHE is set: the random-weight CLIP and VSE++ models differ from run to run, and each
# would leave hundreds of MB of exports in ~/.cache/crossmodal. Flow subprocesses inherit it.
if "CROSSMODAL_CACHE" not in os.environ:
    os.environ["CROSSMODAL_CACHE"] = tempfile.mkdtemp(prefix="crossmodal-test-cache-")
    atexit.register(shutil.rmtree, os.environ["CROSSMODAL_CACHE"], ignore_errors=True)

from tests.model_weights import MODELS, model_flags, write_model_weights
from tests.servers import (
    INDEX_TIMEOUT,
    FlowProcess,
    IndexFlow,
    confine_jina_ports,
    describe,
    run_cli,
    start_index_flow,
    start_query_server,
)

confine_jina_ports()  # before any flow starts: every flow subprocess inherits it


@dataclass
class DemoIndex:
    workspace: Path
    result: object  # the CompletedProcess of `app.py -t index -d demo`


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory) -> DemoIndex:
    """`app.py -t index -d demo` once per run: the whole demo set (19 photos, 57 captions)."""
    workspace = tmp_path_factory.mktemp("demo") / "workspace"
    result = run_cli("-t", "index", "-d", "demo", "--workspace", workspace, timeout=INDEX_TIMEOUT)
    assert result.returncode == 0, describe(result)
    return DemoIndex(workspace, result)


@pytest.fixture(scope="session")
def demo_workspace(demo_index) -> Path:
    """The indexed demo workspace; shared by the whole run, so only read it (copy it with demo_workspace_copy)."""
    return demo_index.workspace


@pytest.fixture
def demo_workspace_copy(demo_workspace, tmp_path) -> Path:
    """A copy of the indexed demo workspace, for a test that indexes into it, evaluates or crashes it."""
    return Path(shutil.copytree(demo_workspace, tmp_path / "demo-copy"))


@pytest.fixture(scope="session")
def query_server(demo_workspace, tmp_path_factory) -> FlowProcess:
    """`app.py -t query-restful` on the demo workspace, shared by every HTTP and browser test of the run.

    At the end of the run it must stop on SIGTERM with every process of its flow gone and its port free."""
    server = start_query_server(demo_workspace, tmp_path_factory.mktemp("query-server") / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def demo_server(query_server) -> str:
    """Base URL of the shared query server."""
    return query_server.url


@pytest.fixture
def client(demo_server):
    with httpx.Client(base_url=demo_server, timeout=60) as http:
        yield http


@pytest.fixture(scope="session")
def job_index_flow(tmp_path_factory) -> IndexFlow:
    """An index flow on an empty workspace, fed by test_indexing_job.py through `index_dataset` (the only module
    that writes through it; test_network_binding.py only looks at its sockets)."""
    root = tmp_path_factory.mktemp("job-index")
    flow = start_index_flow(root / "workspace", root / "flow.log")
    yield flow
    flow.stop()


# --- model backends ---------------------------------------------------------------------------------------------------

MODEL_PHOTOS = 3  # photos of the demo set indexed with each model


@pytest.fixture(scope="session")
def model_weights(tmp_path_factory) -> dict[str, list[str]]:
    """VSE++ and CLIP weights files in their original formats (random values), written once per run; the app.py
    flags that select each model with them."""
    return model_flags(write_model_weights(tmp_path_factory.mktemp("model-weights")))


@dataclass
class ModelIndex:
    workspace: Path
    flags: list[str]  # --model NAME and its weights options
    photos: int  # how many demo photos it holds (and 3 captions each)
    result: object  # the CompletedProcess of `app.py -t index -d demo -n PHOTOS -b 2 --model NAME ...`


@pytest.fixture(scope="session")
def model_indexes(model_weights, tmp_path_factory) -> dict[str, ModelIndex]:
    """One workspace per model, indexed by the CLI (3 demo photos in batches of 2); only read them."""
    indexes = {}
    for model in MODELS:
        workspace = tmp_path_factory.mktemp(f"{model}-index") / "workspace"
        result = run_cli("-t", "index", "-d", "demo", "-n", str(MODEL_PHOTOS), "-b", "2", *model_weights[model],
                         "--workspace", workspace, timeout=INDEX_TIMEOUT)
        indexes[model] = ModelIndex(workspace, model_weights[model], MODEL_PHOTOS, result)
    return indexes
