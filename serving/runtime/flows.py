"""Loads the flow YAMLs with the settings chosen on the command line, and runs or serves them until stopped."""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossmodal.backends import DEFAULT_BACKEND
from crossmodal.index.workspace import check_workspace
from serving.runtime import prepare_parent_process
from serving.runtime.collector import freeze_long_lived
from serving.runtime.output import jina_banner
from serving.runtime.stop_signals import StopRequest, handle_stop_signals

REPO_ROOT = Path(__file__).resolve().parents[2]
FLOWS_DIR = REPO_ROOT / "flows"
DEFAULT_PORT = 45678


@dataclass
class FlowSettings:
    """Everything the flow YAMLs read from ${{ ENV.* }}."""

    workspace: Path = Path("workspace")
    model: str = DEFAULT_BACKEND
    model_options: dict = field(default_factory=dict)
    batch_size: int = 32
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    index_port: int = 0
    max_limit: int = 100
    shards: int = 1
    replicas: int = 1
    index_type: str = "flat"
    ef_search: int = 64
    # Origins allowed to call the gateway from a browser (jinabox on another origin): "*", "a,b", or "none".
    cors_origins: str = field(default_factory=lambda: os.environ.get("CROSSMODAL_CORS_ORIGINS", "*"))

    def export(self) -> None:
        from jina.helper import random_port

        os.environ.update({
            "CROSSMODAL_WORKSPACE": str(Path(self.workspace).resolve()),
            "CROSSMODAL_MODEL": self.model,
            "CROSSMODAL_MODEL_OPTIONS": json.dumps(self.model_options),
            "CROSSMODAL_BATCH_SIZE": str(self.batch_size),
            "CROSSMODAL_HOST": self.host,
            "CROSSMODAL_PORT": str(self.port),
            "CROSSMODAL_INDEX_PORT": str(self.index_port or random_port()),
            "CROSSMODAL_MAX_LIMIT": str(self.max_limit),
            "CROSSMODAL_SHARDS": str(self.shards),
            "CROSSMODAL_REPLICAS": str(self.replicas),
            "CROSSMODAL_INDEX_TYPE": self.index_type,
            "CROSSMODAL_EF_SEARCH": str(self.ef_search),
            "CROSSMODAL_CORS_ORIGINS": self.cors_origins,
        })


def load_flow(kind: str, settings: FlowSettings):
    """Build the `index` or `query` flow from flows/<kind>.yml.

    Raises ShardLayoutError or StoreVersionError (crossmodal.index.workspace.check_workspace) before anything starts
    when the workspace's indexes cannot be opened with these settings.

    The query flow's gateway class is imported here rather than named in the YAML's py_modules (broken in Jina
    3.34); the forked executor and gateway processes inherit it. The index flow runs Jina's own gRPC gateway, so it
    never imports the web gateway (FastAPI, the answer building, the page).
    """
    check_workspace(settings.workspace, settings.shards)
    prepare_parent_process()  # inherited by every process the flow forks
    from jina import Flow

    if kind == "query":
        import serving.http.gateway  # noqa: F401  (registers CrossModalGateway, inherited by the forked gateway)

    settings.export()
    return Flow.load_config(str(FLOWS_DIR / f"{kind}.yml"))


@contextlib.contextmanager
def running(flow) -> Iterator:
    """Run the block with the flow started; every process it started is closed however the block or the start ends.

    SIGTERM and SIGINT stop it the way Ctrl-C does, also while Jina is still starting it (see
    `serving.runtime.stop_signals`).
    """
    with handle_stop_signals() as stop, _started(flow, stop):
        yield StoppableFlow(flow, stop, gateway_client(flow))


class StoppableFlow:
    """The running flow, whose `post` honours a stop signal that Jina's client swallowed.

    Jina's client catches the KeyboardInterrupt of Ctrl-C or SIGTERM that arrives during a request ("user cancel the
    process") and returns, so a job posting request after request (indexing, a folder sync) went on to the end. The
    stop is recorded (`StopRequest`) and raised here, after the request it cut short. Requests go through `client`
    (`gateway_client`)."""

    def __init__(self, flow: Any, stop: StopRequest, client: Any) -> None:
        self._flow = flow
        self._stop = stop
        self._client = client

    def post(self, *args: Any, **kwargs: Any) -> Any:
        self._stop.raise_if_requested()
        result = self._client.post(*args, **kwargs)
        self._stop.raise_if_requested()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._flow, name)


def gateway_client(flow: Any) -> Any:
    """A client of the flow's gateway, built from its address alone.

    The flow's own client (`Flow.client`) is built from the gateway's settings too, which the client's parser does
    not know, and Jina then builds every CLI parser it has to look them up for a warning: 0.4-0.8 s of CPU on the
    first request of every run (measured by cProfile on `app.py -t index`)."""
    from jina import Client

    return Client(host=flow.host, port=flow.port, protocol=flow.protocol)


def serve_until_stopped(flow, on_ready: Callable[[], None] = lambda: None) -> None:
    """Serve until SIGTERM or SIGINT, then close every process of the flow.

    `on_ready` runs once the flow has started, when the gateway answers (it answers before Jina's start returns).
    Being stopped is how a server's run ends, so it returns normally."""
    try:
        with handle_stop_signals() as stop, _started(flow, stop):
            on_ready()
            stop.wait()
    except KeyboardInterrupt:
        pass


@contextlib.contextmanager
def _started(flow, stop: StopRequest) -> Iterator:
    """Start the flow; Jina's "Flow is ready" banner never reaches stdout, which carries only our results."""
    try:
        freeze_long_lived()  # before Jina forks the flow's processes from this one
        with jina_banner():
            flow.start()
        stop.raise_if_requested()
        yield flow
    finally:
        with stop.deferred():
            flow.close()
