"""`app.py` as a user starts it, for the benchmarks: a query server in a session of its own, its processes' roles.

Every process of a flow is a fork of `app.py`, so they share its command line; the executors and the gateway name
themselves (`/proc/<pid>/comm`, set by `serving.runtime.processes.name_this_process`), which is how a role is told
here. A process without a name of ours is `app.py` itself (the waiting parent) or one of Jina's own (a shard head).
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from processes import descendants

REPO_ROOT = Path(__file__).resolve().parents[1]
APP = REPO_ROOT / "app.py"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env() -> dict[str, str]:
    return {**os.environ, "JINA_OPTOUT_TELEMETRY": "1", "PYTHONUNBUFFERED": "1"}


def start_app(*args: str, log: Path | None = None, app: Path = APP) -> subprocess.Popen:
    """`python app.py ARGS` from its checkout's root (this one unless `app` names another), leading its own session
    (so all of it can be stopped)."""
    output = log.open("w") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, str(app), *args], cwd=app.parent, env=app_env(), stdout=output,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def wait_for_health(url: str, process: subprocess.Popen, timeout: float = 180) -> float:
    """Seconds until `url`/health answers 200; raises if the process exits or the time runs out."""
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=5) as client:
        while time.monotonic() - started < timeout:
            if process.poll() is not None:
                raise RuntimeError(f"app.py exited with {process.returncode} before answering")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/health").status_code == 200:
                    return time.monotonic() - started
            time.sleep(0.05)
    raise TimeoutError(f"{url}/health did not answer within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM (a clean stop), then SIGKILL of the whole session if anything is left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


@contextlib.contextmanager
def query_server(workspace: Path, *extra: str, port: int | None = None, log: Path | None = None,
                 ) -> Iterator[tuple[str, subprocess.Popen, float]]:
    """`app.py -t query-restful` on `workspace`: (url, process, seconds to /health 200)."""
    port = port or free_port()
    process = start_app("-t", "query-restful", "--host", "127.0.0.1", "--port", str(port), "--workspace",
                        str(workspace), *extra, log=log)
    try:
        url = f"http://127.0.0.1:{port}"
        yield url, process, wait_for_health(url, process)
    finally:
        stop(process)


def role(pid: int, root: int) -> str:
    """What a process of a flow started by `root` is: the executor or gateway name it gave itself, or app.py."""
    if pid == root:
        return "app.py (parent)"
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "gone"
    return comm if not comm.startswith("python") else f"unnamed ({comm})"


def maps_library(pid: int, fragment: str) -> bool:
    """Whether the process has a shared library whose path holds `fragment` mapped (e.g. 'libtorch')."""
    try:
        with open(f"/proc/{pid}/maps") as maps:
            return any(fragment in line for line in maps)
    except OSError:
        return False


def flow_processes(root: int) -> list[int]:
    return sorted({root} | descendants(root))
