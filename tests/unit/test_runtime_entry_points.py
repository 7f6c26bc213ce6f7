"""The runtime's entry points: a version guard before any Jina workaround, and one base class for executors."""
import subprocess
import sys

import pytest

from serving.runtime import JINA_VERSION, JinaVersionError, check_jina_version


def test_the_guard_names_both_versions():
    check_jina_version(JINA_VERSION)
    with pytest.raises(JinaVersionError) as refused:
        check_jina_version("3.35.0")
    assert "3.35.0" in str(refused.value) and JINA_VERSION in str(refused.value)


def test_the_installed_jina_is_the_one_the_workarounds_were_written_for():
    check_jina_version()


def test_requirements_pin_the_guarded_version():
    from pathlib import Path

    pins = (Path(__file__).resolve().parents[2] / "requirements.txt").read_text().split()
    assert f"jina=={JINA_VERSION}" in pins


CHILD = """
import jina.proto.serializer as serializer
before = serializer.DataRequestProto.SerializeToString
from serving.runtime.executor import CrossModalExecutor
from serving.runtime import jina_patches
assert serializer.DataRequestProto.SerializeToString is not before
assert serializer.DataRequestProto.SerializeToString is jina_patches._request_bytes
import jina
assert issubclass(CrossModalExecutor, jina.Executor)
print("prepared")
"""


def test_importing_the_executor_base_class_prepares_the_process():
    """What a container's `jina executor --uses ...` gets: the patched serializers, before any gRPC server."""
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "prepared", result.stderr[-2000:]


def test_a_refused_version_stops_before_any_patch():
    code = ("import jina, serving.runtime as runtime\n"
            "jina.__version__ = '9.9.9'\n"
            "import jina.proto.serializer as s\nbefore = s.DataRequestProto.SerializeToString\n"
            "try:\n    runtime.prepare_parent_process()\nexcept runtime.JinaVersionError as e:\n"
            "    assert s.DataRequestProto.SerializeToString is before\n    print('refused:', e)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("refused: jina 9.9.9"), result.stderr[-2000:]
