"""End-to-end tests of the command line: `python app.py -t index|query|query-restful|evaluate`, run as a user would.

Every command runs in a subprocess from the repository root, with a timeout so that a hang fails the test instead
of blocking the run. The demo workspace is indexed once per run by `app.py -t index -d demo` (tests/conftest.py);
every command here reads it, none writes to it. Incremental indexing is tested at the indexing-job level
(tests/integration/test_indexing_job.py) and end to end by tests/e2e/test_crash_resume.py.
"""
from __future__ import annotations

import base64
import json
import math
import re
import signal
import statistics

import httpx
import pytest
from processes import descendants, listening_ports

from crossmodal.index import stored_ids
from crossmodal.index.ids import caption_doc_id, image_doc_id
from crossmodal.search.relevance import load_calibration
from dataset import open_dataset
from tests.servers import (
    EVALUATE_TIMEOUT,
    STOP_TIMEOUT,
    FlowProcess,
    assert_nothing_left,
    describe,
    kill_group,
    run_cli,
    session_members,
    start_query_server,
)

# "  1. 0.3975  [image] demo/coffee.png" (stdout also carries Jina's banner, so only these lines are parsed)
RESULT_LINE = re.compile(r"^\s*(\d+)\.\s+(-?\d+\.\d+)(?:\s+relevance (\d\.\d\d))?\s+\[(image|text)\]\s+(.*)$")
SUMMARY_LINE = re.compile(r"indexed (\d+) images and (\d+) captions .*?(\d+) images were already indexed")


def index_summary(result) -> tuple[int, int, int]:
    found = SUMMARY_LINE.findall(result.stdout)
    assert len(found) == 1, f"expected one summary line\n{describe(result)}"
    return tuple(int(value) for value in found[0])


def ranked_results(result) -> list[tuple[int, float, str, str]]:
    rows = []
    for line in result.stdout.splitlines():
        match = RESULT_LINE.match(line)
        if match:
            rows.append((int(match[1]), float(match[2]), match[4], match[5]))
    return rows


def test_index_demo_reports_every_photo_and_copies_it(demo_index):
    """The run's demo workspace was built by `app.py -t index -d demo` (tests/conftest.py): what it said and did."""
    result, workspace = demo_index.result, demo_index.workspace
    assert index_summary(result) == (19, 57, 0), describe(result)
    assert "skipped 0" in result.stdout, describe(result)
    assert len(stored_ids(workspace / "image_index")) == 19 and len(stored_ids(workspace / "text_index")) == 57
    assert len(list((workspace / "demo_images").iterdir())) == 19
    assert (workspace / "demo_images" / "coffee.png").is_file()
    assert (workspace / "demo_images" / "chelsea_cat.png").is_file()


@pytest.mark.slow
def test_query_by_text_ranks_the_coffee_photo_first(demo_workspace):
    result = run_cli("-t", "query", "--text", "a cup of coffee", "--mode", "semantic", "--workspace", demo_workspace)
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


@pytest.mark.slow
def test_query_by_image_finds_cat_captions(demo_workspace):
    cat = demo_workspace / "demo_images" / "chelsea_cat.png"
    result = run_cli("-t", "query", "--image", cat, "--limit", "3", "--workspace", demo_workspace)
    assert result.returncode == 0, describe(result)
    rows = ranked_results(result)
    assert len(rows) == 3, describe(result)
    assert all(modality == "text" for _, _, modality, _ in rows), describe(result)
    assert any("cat" in caption.lower() for *_, caption in rows), describe(result)
    scores = [score for _, score, _, _ in rows]
    assert scores == sorted(scores, reverse=True), describe(result)


@pytest.mark.slow
def test_query_composed_of_parts_leaves_out_what_not_describes_and_says_how_relevant(demo_workspace):
    plain = run_cli("-t", "query", "--text", "an animal", "--not", "a cat", "--limit", "3", "--workspace",
                    demo_workspace)
    assert plain.returncode == 0, describe(plain)
    rows = ranked_results(plain)
    assert len(rows) == 3 and not any("chelsea_cat" in label for *_, label in rows), describe(plain)
    relevances = [float(value) for value in re.findall(r"relevance (\d\.\d\d)", plain.stdout)]
    assert len(relevances) == 3 and all(0 <= value <= 1 for value in relevances), describe(plain)
    assert ("no good match" in plain.stdout) == (max(relevances) < 0.5), describe(plain)


def executor_listening(server: FlowProcess) -> bool:
    """Some process forked by the server listens on a port other than the gateway's: an executor is up."""
    return any(listening_ports(pid) - {server.port} for pid in descendants(server.pid))


def query_restful(workspace, log, wait: bool = True) -> FlowProcess:
    """`app.py -t query-restful`, leading its own session, so that every process it forks can be found afterwards."""
    return start_query_server(workspace, log, wait=wait)


SERVING_LINE = re.compile(r"^serving cross-modal search on (http://127\.0\.0\.1:\d+)  \(ready in (\d+\.\d) s; "
                          r"Ctrl-C to stop\)$", re.MULTILINE)


@pytest.mark.slow
def test_query_restful_serves_and_stops_cleanly_on_sigterm(demo_workspace, tmp_path):
    """The address is printed only once it answers, and a quiet start prints nothing else but one 'starting' line."""
    server = query_restful(demo_workspace, tmp_path / "server.log", wait=False)
    try:
        server.wait_until(lambda: SERVING_LINE.search(server.log_text()) is not None, "serving line", timeout=180)
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            assert client.get("/health").status_code == 200  # at the moment the line appears, not later
            assert SERVING_LINE.search(server.log_text()).group(1) == server.url
            assert server.log_text().splitlines() == [
                f"starting cross-modal search on {server.url} (offline model) ...",
                SERVING_LINE.search(server.log_text()).group(0)]  # no warning, banner or Jina log line
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
            assert image.content == (demo_workspace / "demo_images" / "coffee.png").read_bytes()
        assert len(server.log_text().splitlines()) == 2  # serving queries prints nothing either
        # The client is closed first, so no kept-alive connection is pending when the server stops.
        server.stop(signal.SIGTERM)  # every process of its session ends and the port is free again
    finally:
        kill_group(server.process)


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["first executor up", "gateway answers"])
def test_query_restful_stops_on_sigterm_while_still_starting(moment, demo_workspace, tmp_path):
    """The gateway answers before Jina's Flow.start returns; a SIGTERM in that window once left the server running
    (Jina swallowed the interrupt) or hanging at exit (it escaped start, and nothing closed the forked pods)."""
    server = query_restful(demo_workspace, tmp_path / "server.log", wait=False)
    try:
        if moment == "first executor up":  # a process of the flow listens, but not yet the gateway
            server.wait_until(lambda: executor_listening(server), "executor start")
        else:
            server.wait_for_health()
        server.stop(signal.SIGTERM)
    finally:
        kill_group(server.process)


@pytest.mark.slow
def test_sigkill_of_the_server_alone_leaves_no_process_behind(demo_workspace, tmp_path):
    """`kill -9` reaches only app.py; its forked gateway and executors must still end and free the port."""
    server = query_restful(demo_workspace, tmp_path / "server.log")
    try:
        assert len(session_members(server.pid)) > 1  # the flow's processes are up
        server.process.kill()
        server.process.wait(timeout=STOP_TIMEOUT)
        assert_nothing_left(server.pid, server.port, "SIGKILL of the server", within=STOP_TIMEOUT)
    finally:
        kill_group(server.process)


def first_rank(ranked: list[str], relevant: set[str]) -> int | None:
    return next((position for position, doc_id in enumerate(ranked, start=1) if doc_id in relevant), None)


def expected_metrics(ranks: list[int | None]) -> dict:
    """The standard protocol's numbers, computed here from ranks taken from the run's query server."""
    assert None not in ranks  # every query ranks the whole collection, so its relevant item is always found
    return {**{f"R@{k}": round(100 * sum(rank <= k for rank in ranks) / len(ranks), 2) for k in (1, 5, 10)},
            # VSE++'s median rank: floor of the median 0-based rank, plus 1 (as crossmodal/evaluation/metrics.py)
            "medr": float(math.floor(statistics.median(rank - 1 for rank in ranks)) + 1),
            "meanr": round(statistics.fmean(ranks), 2),
            "queries": len(ranks)}


@pytest.mark.slow
def test_evaluate_demo_writes_the_metrics_of_the_real_rankings(client, tmp_path):
    """`-t evaluate` indexes the demo set into a workspace of its own and scores every query; the numbers must be the
    ones the same rankings give when taken from the run's query server (same photos, ids and model) and scored
    here: a rank, a recall or a median off by one fails."""
    output = tmp_path / "m.json"
    result = run_cli("-t", "evaluate", "-d", "demo", "--workspace", tmp_path / "workspace", "--output", output,
                     timeout=EVALUATE_TIMEOUT)
    assert result.returncode == 0, describe(result)
    assert re.search(r"^\s*image_to_text: R@1 ", result.stdout, re.M), describe(result)
    assert re.search(r"^\s*text_to_image: R@1 ", result.stdout, re.M), describe(result)
    metrics = json.loads(output.read_text())
    assert (metrics["dataset"], metrics["images"], metrics["captions"]) == ("demo", 19, 57)

    pairs = list(open_dataset("demo", workspace=tmp_path / "reader"))
    image_ranks, text_ranks = [], []
    for pair in pairs:
        photo = base64.b64encode(pair.image_path.read_bytes()).decode()
        matches = client.post("/search", json={"image": photo, "limit": 57}).json()["matches"]
        captions = {caption_doc_id(pair.pair_id, n) for n in range(len(pair.captions))}
        image_ranks.append(first_rank([match["id"] for match in matches], captions))
        for caption in pair.captions:
            matches = client.post("/search", json={"text": caption, "limit": 19, "mode": "semantic"}).json()["matches"]
            text_ranks.append(first_rank([match["id"] for match in matches], {image_doc_id(pair.pair_id)}))
    for direction, ranks, depth in (("image_to_text", image_ranks, 57), ("text_to_image", text_ranks, 19)):
        got = metrics[direction]
        assert got["depth"] == depth, got
        assert {key: got[key] for key in ("R@1", "R@5", "R@10", "medr", "meanr", "queries")} \
            == pytest.approx(expected_metrics(ranks), abs=0.011), (direction, got)
    assert metrics["rsum"] == pytest.approx(sum(metrics[d][f"R@{k}"] for d in ("image_to_text", "text_to_image")
                                                for k in (1, 5, 10)), abs=0.011)
    assert metrics["text_to_image"]["R@10"] >= 50.0, metrics  # measured ~95 on the demo set: the model works

    # ... and it fitted the model's relevance calibration on these queries, where the query server looks first
    calibration = load_calibration("offline", tmp_path / "workspace")
    assert calibration is not None and "-t evaluate -d demo" in calibration.description, describe(result)
    assert set(calibration.mappings) >= {"text->image", "image->text"}
    assert "relevance calibration of offline" in result.stdout, describe(result)


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
