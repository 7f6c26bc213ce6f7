"""Quiet by default: Jina's and gRPC's logs and the import-time deprecation warning stay hidden unless verbose."""
import subprocess
import sys

CHILD = """
import os, sys
from serving.runtime.output import configure_output, jina_banner
configure_output(verbose=sys.argv[1] == "verbose")
import jina  # noqa: F401  (hubble's pkg_resources warning comes from here)
with jina_banner():
    print("BANNER")
print("RESULT", os.environ.get("JINA_LOG_LEVEL"), os.environ.get("GRPC_VERBOSITY"))
"""


def run(mode: str) -> subprocess.CompletedProcess:
    env_without_overrides = {key: value for key, value in __import__("os").environ.items()
                             if key not in ("JINA_LOG_LEVEL", "GRPC_VERBOSITY", "PYTHONWARNINGS")}
    return subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, timeout=120,
                          env=env_without_overrides)


def test_quiet_by_default():
    result = run("quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["RESULT ERROR NONE"]  # no banner on stdout, quiet settings inherited
    assert "pkg_resources" not in result.stderr and "BANNER" not in result.stderr


def test_verbose_leaves_jina_as_it_is_and_sends_the_banner_to_stderr():
    result = run("verbose")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["RESULT None None"]
    assert "BANNER" in result.stderr and "pkg_resources is deprecated" in result.stderr
