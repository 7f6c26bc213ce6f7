"""Real flows and CLI runs for the tests, each in a process of its own, and the checks that they stop cleanly.

Why subprocesses: a process that has run an OpenMP computation (torch, FAISS) hangs the Jina executors it forks
afterwards (libgomp is not fork-safe). The test process runs FAISS and image decoding in-process, so it never forks
Jina itself: every flow is started with `subprocess` (fork + exec: the child is a fresh interpreter, nothing of the
parent's OpenMP state survives the exec), either the way a user starts it (`app.py -t query-restful|index|query|
evaluate`) or, for an index flow that a test feeds through `serving.jobs.indexing.index_dataset`, with
`python -m tests.flow_runner`. So any number of test modules can share one pytest process, one demo index and one
query server (tests/conftest.py).

Every flow leads its own session (`start_new_session`), so that whatever it forked can be found in /proc afterwards
and judged: `FlowProcess.stop` fails when a process of the flow survives SIGTERM or the port stays bound.
"""
from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
APP = REPO_ROOT / "app.py"

INDEX_TIMEOUT = 240  # seconds; the full demo (19 photos) takes ~15 s plus the flow start
QUERY_TIMEOUT = 180
EVALUATE_TIMEOUT = 300
READY_TIMEOUT = 120
STOP_TIMEOUT = 20


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["JINA_OPTOUT_TELEMETRY"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(*args: str | Path, timeout: float = QUERY_TIMEOUT, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess:
    """Run app.py to completion from the repository root; a timeout kills it (and fails the test)."""
    command = [sys.executable, str(APP), *map(str, args)]
    return subprocess.run(command, cwd=REPO_ROOT, env=env or cli_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def describe(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"


# --- ports and processes --------------------------------------------------------------------------------------------

# Ports. Not the kernel's pick (bind to port 0) for a flow's gateway: that comes from the ephemeral range, where Jina
# also picks its executors' ports (49153-65535 by default) and every outgoing connection takes one, so in the seconds
# between the pick and the gateway's bind (a flow binds its gateway after its executors) another lane's executor or a
# client socket could take it (CI failed once so: "address already in use"). Every pytest lane (TEST_PORT_LANE, set
# by the Makefile; 0 for a plain pytest run) gets two blocks below the ephemeral range instead, where nothing else on
# the machine picks ports: one for the gateways the tests start (`free_port`: within a lane tests run one at a time
# and no port is handed out twice) and one for the ports Jina picks inside those flows (`confine_jina_ports`).
LANE_PORT_BLOCK = 2500
FIRST_TEST_PORT = 20000  # gateways: 20000-29999
FIRST_JINA_PORT = 10000  # executors, heads, the index flow's port: 10000-19999
_handed_out: set[int] = set()


def port_lane() -> int:
    return int(os.environ.get("TEST_PORT_LANE", "0"))


def lane_ports(first_port: int) -> range:
    """This lane's block of the ports from `first_port` on (one block per lane)."""
    first = first_port + port_lane() * LANE_PORT_BLOCK
    return range(first, first + LANE_PORT_BLOCK)


def confine_jina_ports() -> None:
    """Jina's random ports (JINA_RANDOM_PORT_MIN/MAX) for every flow this process starts from now on: this lane's
    block, unless the environment sets them already."""
    block = lane_ports(FIRST_JINA_PORT)
    os.environ.setdefault("JINA_RANDOM_PORT_MIN", str(block.start))
    os.environ.setdefault("JINA_RANDOM_PORT_MAX", str(block[-1]))


def ephemeral_port_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port no other lane, no Jina executor and no outgoing connection picks, free now."""
    block, floor = lane_ports(FIRST_TEST_PORT), ephemeral_port_floor()
    candidates = [port for port in block if port < floor and port not in _handed_out]
    random.shuffle(candidates)
    for port in candidates:
        _handed_out.add(port)
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free port in {block.start}-{block[-1]} for test lane {port_lane()}")


def port_is_free(port: int) -> bool:
    """True when a server could bind the port now (SO_REUSEADDR, as uvicorn does, so TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def session_members(sid: int) -> list[str]:
    """Processes still in session `sid` (read from /proc: no psutil in the venv), as 'pid cmdline' strings."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp session ...
            if int(fields[3]) == sid and fields[0] != "Z":
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                members.append(f"{entry.name} {cmdline[:200]}")
        except (OSError, ValueError, IndexError):
            continue
    return members


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL everything in the process's group (it leads its own session), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def assert_nothing_left(pgid: int, port: int | None, after: str, within: float) -> None:
    """Within `within` seconds no process of the session led by `pgid` is left and `port` is free."""
    deadline = time.monotonic() + within
    while (group_alive(pgid) or session_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = session_members(pgid)
    assert not group_alive(pgid) and not survivors, f"processes survived {after}: {survivors}"
    if port is not None:
        assert port_is_free(port), f"port {port} still bound after {after}"


def answers_health(client: httpx.Client) -> bool:
    try:
        return client.get("/health").status_code == 200
    except httpx.TransportError:
        return False


# --- flows in subprocesses ------------------------------------------------------------------------------------------

class FlowProcess:
    """A flow (or app.py serving one) running in a session of its own, its output in a log file."""

    def __init__(self, command: list[str], log: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.command, self.log, self.port = command, log, port
        with log.open("w") as log_file:
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env or cli_env(), stdout=log_file,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.process.poll() is None, \
                f"{self.command[2:4]} exited with {self.process.returncode}\n{self.log_text()[-4000:]}"
            assert time.monotonic() < deadline, f"no {what} after {timeout} s\n{self.log_text()[-4000:]}"
            time.sleep(0.05)

    def wait_for_health(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30.0) as client:
            self.wait_until(lambda: answers_health(client), "/health 200")

    def stop(self, stop_signal: int = signal.SIGTERM, within: float = 5) -> None:
        """Stop it with `stop_signal` and check that every process of its session ended and the port is free.

        Whatever happens, nothing of it is left running afterwards (SIGKILL of the group as a last resort)."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(stop_signal)
                try:
                    self.process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    raise AssertionError(f"still running {STOP_TIMEOUT} s after signal {stop_signal}\n"
                                         f"{self.log_text()[-4000:]}") from None
            # Children may need a moment after the parent's exit.
            assert_nothing_left(self.pid, self.port, f"signal {stop_signal} to {self.command[2:4]}", within)
        finally:
            kill_group(self.process)


def start_query_server(workspace: Path, log: Path, *extra_args: str, port: int | None = None,
                       env: dict[str, str] | None = None, wait: bool = True) -> FlowProcess:
    """`app.py -t query-restful` on `workspace`, as a user starts it; by default once it answers /health."""
    port = port or free_port()
    command = [sys.executable, str(APP), "-t", "query-restful", "--host", "127.0.0.1", "--port", str(port),
               "--workspace", str(workspace), *extra_args]
    server = FlowProcess(command, log, port, env)
    if wait:
        try:
            server.wait_for_health()
        except BaseException:
            kill_group(server.process)
            raise
    return server


class IndexFlow(FlowProcess):
    """The index flow (gRPC gateway) on one workspace, for `index_dataset(flow.client(), ...)` in the test process."""

    workspace: Path

    def client(self):
        from jina import Client

        return Client(host="127.0.0.1", port=self.port, protocol="grpc")

    def is_ready(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # quietly, until the port is open
            if sock.connect_ex(("127.0.0.1", self.port)) != 0:
                return False
        return self.client().is_flow_ready(timeout=2.0)


def start_index_flow(workspace: Path, log: Path, shards: int = 1, replicas: int = 1) -> IndexFlow:
    """`python -m tests.flow_runner index ...` on `workspace`, once its gateway answers."""
    port = free_port()
    command = [sys.executable, "-m", "tests.flow_runner", "index", "--workspace", str(workspace),
               "--port", str(port), "--shards", str(shards), "--replicas", str(replicas)]
    flow = IndexFlow(command, log, port)
    flow.workspace = workspace
    try:
        flow.wait_until(flow.is_ready, "index flow ready")
    except BaseException:
        kill_group(flow.process)
        raise
    return flow
