"""Torch only in the processes that run a model (serving.runtime.processes), and a name for each flow process.

Each check that blocks or imports torch runs in a fresh interpreter: the pytest process must keep its own modules.
"""
import subprocess
import sys

import pytest

from serving.runtime.processes import COMM_CHARS, short_name


@pytest.mark.parametrize("name, expected", [
    ("gateway", "gateway"),
    ("text_indexer", "text_indexer"),
    ("text_encoder/rep-0", "text_encoder:r0"),
    ("image_indexer/shard-1/rep-0", "image_inde:s1r0"),
    ("a_very_long_deployment_name", "a_very_long_dep"),
])
def test_a_pod_name_becomes_a_process_name_of_at_most_15_characters(name, expected):
    assert short_name(name) == expected and len(short_name(name)) <= COMM_CHARS


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)


KEPT_OUT = """
from serving.runtime.processes import keep_torch_out, torch_kept_out
assert keep_torch_out() and torch_kept_out()
import numpy as np
from docarray import DocList
from serving.wire import CrossModalDoc
docs = DocList[CrossModalDoc]([CrossModalDoc(modality="text", text="a cat", embedding=np.ones(4, dtype=np.float32))])
assert docs[0].embedding.shape == (4,)
try:
    import torch
except ImportError:
    pass
else:
    raise SystemExit("torch imported although kept out")
import os
print("kept out", os.path.exists("/proc/self/maps") and "libtorch" not in open("/proc/self/maps").read())
"""


def test_docarray_and_the_wire_schema_work_with_torch_kept_out():
    result = run_python(KEPT_OUT)
    assert result.returncode == 0 and result.stdout.split() == ["kept", "out", "True"], result.stderr[-3000:]


EXECUTORS = """
import os, sys
from serving.runtime.processes import keep_torch_out, torch_kept_out
keep_torch_out()
from serving.runtime.executor import CrossModalExecutor

class Indexer(CrossModalExecutor):
    pass

class Encoder(CrossModalExecutor):
    runs_model = True

pid = os.fork()  # as Jina forks a flow's pods from the process that starts it
if pid == 0:
    Indexer()
    blocked = torch_kept_out()
    Encoder()
    import torch  # what an encoder's model loads
    print(blocked, not torch_kept_out(), open("/proc/self/comm").read().strip(), flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print(torch_kept_out(), os.waitstatus_to_exitcode(status))
"""


@pytest.mark.slow
def test_a_forked_executor_gets_torch_back_only_when_it_declares_a_model():
    result = run_python(EXECUTORS)
    lines = result.stdout.split("\n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert lines[0] == "True True Encoder", result.stdout  # the child: blocked for Indexer, allowed for Encoder
    assert lines[1] == "True 0", result.stdout  # the parent keeps it out
