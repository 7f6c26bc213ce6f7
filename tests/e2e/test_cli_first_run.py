"""What a new user's first mistakes get from `app.py` (issue 21, item 5): one `error:` line at once, before any flow
starts, naming the flag and what would work; never a traceback, never an empty workspace created by a typo.

Each case runs the real CLI in a subprocess. "Before any flow starts" is checked by what a flow would leave: no
workspace folder created, no flow banner, and a run that ends in seconds rather than after a flow's start.
"""
from __future__ import annotations

import socket

import pytest
from PIL import Image

from crossmodal.index import stored_ids
from crossmodal.index.shards import shard_folders
from crossmodal.index.workspace import index_folder
from crossmodal.modality import IMAGE
from tests.servers import describe, free_port, run_cli


def one_error_line(result) -> str:
    """The single `error:` line of a refused run (exit 2, nothing else on stderr, no traceback)."""
    assert result.returncode == 2, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), describe(result)
    return lines[0]


@pytest.mark.parametrize(("flags", "expected"), [
    (["--limit", "0"], "--limit must be between 1 and 100, got 0"),
    (["--limit", "101"], "--limit must be between 1 and 100, got 101"),
    (["--offset", "-3"], "--offset must be 0 or more"),
    (["--taken-after", "yesterday"], "--taken-after: 'yesterday' is not an ISO date"),
    (["--taken-after", "2024-05-01", "--taken-before", "2024-01-01"], "--taken-after: is after 'taken_before'"),
    (["--folder", "../etc"], "--folder: must be a relative path"),
    (["--image", "no-such-photo.jpg"], "--image no-such-photo.jpg: no such file"),
])
def test_unusable_query_flags_are_one_line_before_any_flow(flags, expected, demo_workspace):
    result = run_cli("-t", "query", "--text", "a dog", *flags, "--workspace", demo_workspace, timeout=60)
    assert expected in one_error_line(result)
    assert "Flow is ready" not in result.stdout


def test_a_query_on_a_mistyped_workspace_names_it_and_creates_nothing(tmp_path):
    typo = tmp_path / "workspcae"
    line = one_error_line(run_cli("-t", "query", "--text", "a dog", "--workspace", typo, timeout=60))
    assert f"{typo} holds no index" in line and "--workspace" in line
    assert not typo.exists()


def test_a_taken_port_is_named_with_the_way_out(tmp_path):
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = run_cli("-t", "query-restful", "--port", str(port), "--workspace", tmp_path / "ws", timeout=60)
    assert one_error_line(result) == f"error: port {port} is in use (try --port N)"


def test_a_folder_without_photos_warns_with_what_it_saw(tmp_path):
    folder = tmp_path / "Photos"
    (folder / "notes").mkdir(parents=True)
    (folder / "notes" / "todo.txt").write_text("buy film")
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4")
    result = run_cli("-t", "index", "-d", "folder", "--data-dir", folder, "--workspace", tmp_path / "ws", timeout=60)
    assert result.returncode == 0, describe(result)
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1, describe(result)
    assert f"{folder} holds no photo to index (files seen: 2; not photos: 2; skipped: 0)" in warning[0]
    assert ".jpg" in warning[0]


def test_a_mistyped_folder_is_named(tmp_path):
    line = one_error_line(run_cli("-t", "index", "-d", "folder", "--data-dir", tmp_path / "Phtoos",
                                  "--workspace", tmp_path / "ws", timeout=60))
    assert f"{tmp_path / 'Phtoos'} does not exist" in line


def test_a_folder_is_not_mixed_into_the_demo_workspace_unless_asked(demo_workspace_copy, tmp_path):
    folder = tmp_path / "Holiday"
    folder.mkdir()
    Image.new("RGB", (64, 48), (20, 120, 200)).save(folder / "IMG_0001.JPG")
    before = [stored_ids(shard) for shard in shard_folders(index_folder(demo_workspace_copy, IMAGE))]
    line = one_error_line(run_cli("-t", "index", "-d", "folder", "--data-dir", folder,
                                  "--workspace", demo_workspace_copy, timeout=60))
    assert "already holds 19 photos of another collection" in line
    assert "--workspace DIR" in line and "--mix" in line
    assert [stored_ids(shard) for shard in shard_folders(index_folder(demo_workspace_copy, IMAGE))] == before
    assert sum(map(len, before)) == 19
