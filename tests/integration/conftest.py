"""Shared across integration tests: the demo collection indexed once, and one query flow serving it over HTTP."""
import httpx
import pytest
from jina.helper import random_port

from dataset import open_dataset
from serving.jobs.indexing import index_dataset
from serving.runtime.flows import FlowSettings, load_flow, running


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("demo-workspace")
    reader = open_dataset("demo", workspace=workspace)
    with running(load_flow("index", FlowSettings(workspace=workspace))) as flow:
        summary = index_dataset(flow, reader, workspace, batch_size=8)
    assert (summary.images, summary.captions, len(summary.skipped)) == (19, 57, 0)
    return workspace


@pytest.fixture(scope="session")
def demo_server(demo_workspace):
    """Base URL of a query flow on the demo workspace."""
    port = random_port()
    with running(load_flow("query", FlowSettings(workspace=demo_workspace, port=port, cors_origins="*"))):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def client(demo_server):
    with httpx.Client(base_url=demo_server, timeout=60) as http:
        yield http
