"""End-to-end tests of the command line: `python app.py -t index|query|query-restful|evaluate`, run as a user would.

Every command runs in a subprocess from the repository root, into a temporary workspace, with a timeout so that a
hang fails the test instead of blocking the run. The fully indexed demo workspace is built once per module.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = REPO_ROOT / "app.py"

INDEX_TIMEOUT = 240  # seconds; the full demo (19 photos) takes ~15 s plus the flow start
QUERY_TIMEOUT = 180
EVALUATE_TIMEOUT = 300
READY_TIMEOUT = 120
STOP_TIMEOUT = 20

# "  1. 0.3975  [image] demo/coffee.png" (stdout also carries Jina's banner, so only these lines are parsed)
RESULT_LINE = re.compile(r"^\s*(\d+)\.\s+(-?\d+\.\d+)\s+\[(image|text)\]\s+(.*)$")
SUMMARY_LINE = re.compile(r"indexed (\d+) images and (\d+) captions .*?(\d+) images were already indexed")


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["JINA_OPTOUT_TELEMETRY"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(*args: str | Path, timeout: float = QUERY_TIMEOUT) -> subprocess.CompletedProcess:
    """Run app.py to completion; a timeout kills it (and fails the test through TimeoutExpired)."""
    command = [sys.executable, str(APP), *map(str, args)]
    return subprocess.run(command, cwd=REPO_ROOT, env=cli_env(), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def describe(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"


def index_summary(result: subprocess.CompletedProcess) -> tuple[int, int, int]:
    found = SUMMARY_LINE.findall(result.stdout)
    assert len(found) == 1, f"expected one summary line\n{describe(result)}"
    return tuple(int(value) for value in found[0])


def ranked_results(result: subprocess.CompletedProcess) -> list[tuple[int, float, str, str]]:
    rows = []
    for line in result.stdout.splitlines():
        match = RESULT_LINE.match(line)
        if match:
            rows.append((int(match[1]), float(match[2]), match[3], match[4]))
    return rows


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


@pytest.fixture(scope="module")
def indexed_workspace(tmp_path_factory) -> Path:
    """A workspace holding the whole demo set (19 photos, 57 captions), shared by the query/serve/evaluate tests."""
    workspace = tmp_path_factory.mktemp("indexed") / "workspace"
    result = run_cli("-t", "index", "-d", "demo", "--workspace", workspace, timeout=INDEX_TIMEOUT)
    assert result.returncode == 0, describe(result)
    assert index_summary(result) == (19, 57, 0), describe(result)
    assert (workspace / "demo_images" / "coffee.png").is_file()
    assert (workspace / "demo_images" / "chelsea_cat.png").is_file()
    return workspace


def test_index_is_incremental_and_never_duplicates(tmp_path):
    workspace = tmp_path / "workspace"
    first = run_cli("-t", "index", "-d", "demo", "-n", "4", "-b", "2", "--workspace", workspace, timeout=INDEX_TIMEOUT)
    assert first.returncode == 0, describe(first)
    assert "indexed 4 images and 12 captions" in first.stdout, describe(first)
    assert index_summary(first) == (4, 12, 0)
    assert "skipped 0" in first.stdout, describe(first)

    again = run_cli("-t", "index", "-d", "demo", "-n", "4", "-b", "2", "--workspace", workspace, timeout=INDEX_TIMEOUT)
    assert again.returncode == 0, describe(again)
    assert "indexed 0 images and 0 captions" in again.stdout, describe(again)
    assert "4 images were already indexed" in again.stdout, describe(again)

    rest = run_cli("-t", "index", "-d", "demo", "--workspace", workspace, timeout=INDEX_TIMEOUT)
    assert rest.returncode == 0, describe(rest)
    assert index_summary(rest) == (15, 45, 4), describe(rest)
    assert len(list((workspace / "demo_images").iterdir())) == 19


def test_query_by_text_ranks_the_coffee_photo_first(indexed_workspace):
    result = run_cli("-t", "query", "--text", "a cup of coffee", "--workspace", indexed_workspace)
    assert result.returncode == 0, describe(result)
    rows = ranked_results(result)
    assert len(rows) == 10, describe(result)  # --limit defaults to 10, and the index holds 19 images
    assert [rank for rank, *_ in rows] == list(range(1, 11))
    assert all(modality == "image" for _, _, modality, _ in rows), describe(result)
    assert "coffee" in rows[0][3], describe(result)
    scores = [score for _, score, _, _ in rows]
    assert scores == sorted(scores, reverse=True), describe(result)
    labels = [label for *_, label in rows]
    assert len(set(labels)) == len(labels), f"duplicate results\n{describe(result)}"


def test_query_by_image_finds_cat_captions(indexed_workspace):
    cat = indexed_workspace / "demo_images" / "chelsea_cat.png"
    result = run_cli("-t", "query", "--image", cat, "--limit", "3", "--workspace", indexed_workspace)
    assert result.returncode == 0, describe(result)
    rows = ranked_results(result)
    assert len(rows) == 3, describe(result)
    assert all(modality == "text" for _, _, modality, _ in rows), describe(result)
    assert any("cat" in caption.lower() for *_, caption in rows), describe(result)
    scores = [score for _, score, _, _ in rows]
    assert scores == sorted(scores, reverse=True), describe(result)


def start_server(workspace: Path, port: int, log: Path) -> subprocess.Popen:
    """`app.py -t query-restful` leading its own session, so that every process it forks can be found afterwards."""
    command = [sys.executable, str(APP), "-t", "query-restful", "--port", str(port), "--host", "127.0.0.1",
               "--workspace", str(workspace)]
    with log.open("w") as log_file:
        return subprocess.Popen(command, cwd=REPO_ROOT, env=cli_env(), stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def wait_until(server: subprocess.Popen, log: Path, ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready():
        assert server.poll() is None, f"server exited with {server.returncode}\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"no {what} after {READY_TIMEOUT} s\n{log.read_text()[-4000:]}"
        time.sleep(0.05)


def answers_health(client: httpx.Client) -> bool:
    try:
        return client.get("/health").status_code == 200
    except httpx.TransportError:
        return False


def wait_for_health(server: subprocess.Popen, port: int, log: Path) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as client:
        wait_until(server, log, lambda: answers_health(client), "/health 200")


def assert_stops_on_sigterm(server: subprocess.Popen, port: int, log: Path) -> None:
    """SIGTERM to the server alone: every process of its session ends and the port is free again."""
    pgid = server.pid  # start_new_session: the server leads its own session and process group
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"query-restful still running {STOP_TIMEOUT} s after SIGTERM\n{log.read_text()[-4000:]}")

    # Children may need a moment after the parent's exit; give them a few seconds, then judge.
    assert_nothing_left(pgid, port, "SIGTERM of the server", within=5)


def assert_nothing_left(pgid: int, port: int, after: str, within: float) -> None:
    """Within `within` seconds no process of the server's session is left and its port is free."""
    deadline = time.monotonic() + within
    while (group_alive(pgid) or session_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = session_members(pgid)
    assert not group_alive(pgid) and not survivors, f"processes survived {after}: {survivors}"
    assert port_is_free(port), f"port {port} still bound after {after}"


def test_query_restful_serves_and_stops_cleanly_on_sigterm(indexed_workspace, tmp_path):
    port = free_port()
    log = tmp_path / "server.log"
    server = start_server(indexed_workspace, port, log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as client:
            wait_until(server, log, lambda: answers_health(client), "/health 200")
            response = client.post("/search", json={"text": "a cup of coffee"})
            assert response.status_code == 200, response.text
            matches = response.json()["matches"]
            assert matches, response.text
            first = matches[0]
            assert first["modality"] == "image", first
            assert first["tags"]["pair_id"].endswith("coffee.png"), matches[:3]
            scores = [match["score"] for match in matches]
            assert scores == sorted(scores, reverse=True)

            assert first["image_url"], first
            image = client.get(first["image_url"])
            assert image.status_code == 200, image.text[:500]
            assert image.headers["content-type"].startswith("image/"), image.headers
            assert image.content == (indexed_workspace / "demo_images" / "coffee.png").read_bytes()
        # The client is closed first, so no kept-alive connection is pending when the server stops.
        assert_stops_on_sigterm(server, port, log)
    finally:
        kill_group(server)


@pytest.mark.parametrize("moment", ["first executor up", "gateway answers"])
def test_query_restful_stops_on_sigterm_while_still_starting(moment, indexed_workspace, tmp_path):
    """The gateway answers before Jina's Flow.start returns; a SIGTERM in that window once left the server running
    (Jina swallowed the interrupt) or hanging at exit (it escaped start, and nothing closed the forked pods)."""
    port = free_port()
    log = tmp_path / "server.log"
    server = start_server(indexed_workspace, port, log)
    try:
        if moment == "first executor up":
            wait_until(server, log, lambda: "start server bound to" in log.read_text(), "executor start")
        else:
            wait_for_health(server, port, log)
        assert_stops_on_sigterm(server, port, log)
    finally:
        kill_group(server)


def test_sigkill_of_the_server_alone_leaves_no_process_behind(indexed_workspace, tmp_path):
    """`kill -9` reaches only app.py; its forked gateway and executors must still end and free the port."""
    port = free_port()
    log = tmp_path / "server.log"
    server = start_server(indexed_workspace, port, log)
    try:
        wait_for_health(server, port, log)
        assert len(session_members(server.pid)) > 1  # the flow's processes are up
        server.kill()
        server.wait(timeout=STOP_TIMEOUT)
        assert_nothing_left(server.pid, port, "SIGKILL of the server", within=STOP_TIMEOUT)
    finally:
        kill_group(server)


def test_evaluate_demo_writes_metrics(indexed_workspace, tmp_path):
    output = tmp_path / "m.json"
    result = run_cli("-t", "evaluate", "-d", "demo", "--workspace", indexed_workspace, "--output", output,
                     timeout=EVALUATE_TIMEOUT)
    assert result.returncode == 0, describe(result)
    assert re.search(r"^\s*image_to_text: R@1 ", result.stdout, re.M), describe(result)
    assert re.search(r"^\s*text_to_image: R@1 ", result.stdout, re.M), describe(result)
    assert output.is_file(), describe(result)

    metrics = json.loads(output.read_text())
    expected_queries = {"image_to_text": 19, "text_to_image": 57}
    for direction, queries in expected_queries.items():
        m = metrics[direction]
        for key in ("R@1", "R@5", "R@10", "medr", "meanr"):
            assert key in m, (direction, m)
        for key in ("R@1", "R@5", "R@10"):
            assert 0.0 <= m[key] <= 100.0, (direction, m)
        assert m["R@1"] <= m["R@5"] <= m["R@10"], (direction, m)
        assert 1.0 <= m["medr"] <= m["depth"] + 1, (direction, m)
        assert 1.0 <= m["meanr"] <= m["depth"] + 1, (direction, m)
        assert m["queries"] == queries, (direction, m)
    assert metrics["text_to_image"]["R@10"] >= 50.0, metrics  # measured ~95 on the demo set
    assert metrics["dataset"] == "demo"


def test_query_without_text_or_image_is_a_usage_error(tmp_path):
    result = run_cli("-t", "query", "--workspace", tmp_path / "workspace", timeout=60)
    assert result.returncode != 0, describe(result)
    assert "usage:" in result.stderr, describe(result)
    assert "--text" in result.stderr and "--image" in result.stderr, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    assert ranked_results(result) == []


def test_folder_dataset_without_data_dir_is_a_clear_error(tmp_path):
    result = run_cli("-t", "index", "-d", "folder", "--workspace", tmp_path / "workspace", timeout=120)
    assert result.returncode != 0, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    assert "data directory" in result.stderr, describe(result)
    assert "indexed" not in result.stdout, describe(result)
