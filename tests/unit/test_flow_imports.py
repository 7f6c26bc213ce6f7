"""The index flow does not import the web gateway (issue 22, item 6): it runs Jina's own gRPC gateway, so loading it
must not pull in FastAPI, the answer building or the page. The query flow does, to register its gateway class.
Each flow is loaded (not started) in a fresh interpreter, whose `sys.modules` then says what was imported."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
from pathlib import Path
from serving.runtime.flows import FlowSettings, load_flow
flow = load_flow(sys.argv[1], FlowSettings(workspace=Path(sys.argv[2])))
print(json.dumps({"executors": sorted(flow._deployment_nodes),
                  "web_gateway": "serving.http.gateway" in sys.modules, "fastapi": "fastapi" in sys.modules}))
"""


def loaded(kind: str, workspace: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, kind, str(workspace)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=180, env={"JINA_OPTOUT_TELEMETRY": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("kind", "imports_it"), [("index", False), ("query", True)])
def test_only_the_query_flow_imports_the_web_gateway(kind: str, imports_it: bool, tmp_path: Path) -> None:
    found = loaded(kind, tmp_path / "workspace")
    assert {"image_encoder", "text_encoder", "image_indexer", "text_indexer"} <= set(found["executors"])
    assert found["web_gateway"] is imports_it
    assert found["fastapi"] is imports_it
