"""The library sync job (serving/jobs/sync.py) against real stores through an in-process stand-in for the index flow
(tests/library_flow.py): what each kind of folder change does to the indexes, what is encoded, the state, legacy
path-id photos, a sync killed with SIGKILL at every post, and the watch loop's events."""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crossmodal.index import Record, VectorStore, read_record, read_vectors, stored_ids
from crossmodal.index.ids import caption_doc_id, image_doc_id
from crossmodal.index.shards import shard_folder
from crossmodal.index.workspace import index_folder
from crossmodal.library import NOT_INDEXABLE, LibraryState, photo_id, photo_pair_id, sha256_file
from crossmodal.library.perceptual_hash import bytes_signature
from crossmodal.modality import IMAGE, TEXT
from serving.jobs.sync import FolderChanges, LibrarySync, library_state_path, watch_library
from tests.library_flow import DIM, MODEL, FakeIndexFlow

REPO_ROOT = Path(__file__).resolve().parents[2]
LIBRARY = "Pictures"


def jpeg(seed: int, size: tuple[int, int] = (64, 48), taken: str | None = "2023:07:14 16:20:05") -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    exif = Image.Exif()
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 5D"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes(), quality=90)
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def pid(root: Path, relative: str) -> str:
    return photo_id(LIBRARY, sha256_file(root, relative))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / LIBRARY
    for number, name in enumerate(["a.jpg", "b.jpg", "2023/summer/c.jpg", "d.jpg"]):
        write(root / name, jpeg(number))
    return root


def run_sync(workspace: Path, root: Path, flow: FakeIndexFlow | None = None, batch_size: int = 2):
    flow = flow or FakeIndexFlow(workspace)
    with LibrarySync(workspace, root, batch_size=batch_size) as sync:
        plan = sync.plan()
        needed = sync.needs_flow(plan)
        summary = sync.apply(flow if needed else None, plan)
    flow.close()
    return summary, flow, needed


def indexed(workspace: Path) -> dict[str, list[str]]:
    """photo id -> metadata paths, from the image index."""
    folder = index_folder(workspace, IMAGE)
    return {id_: read_record(folder, id_).metadata["paths"] for id_ in stored_ids(folder)}


def on_disk(root: Path) -> dict[str, list[str]]:
    by_id: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix == ".jpg"):
        relative = path.relative_to(root).as_posix()
        by_id.setdefault(pid(root, relative), []).append(relative)
    return by_id


def test_a_plain_folder_is_indexed_with_metadata_and_content_ids(folder: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    summary, flow, needed = run_sync(workspace, folder)
    assert needed and summary.counts["new"] == 4 and summary.encoded == 4 and summary.reused == 0
    assert "4 new" in summary.line() and "4 encoded" in summary.line()
    assert indexed(workspace) == on_disk(folder)
    record = read_record(index_folder(workspace, IMAGE), pid(folder, "2023/summer/c.jpg"))
    assert record.pair_id == photo_pair_id(LIBRARY, sha256_file(folder, "2023/summer/c.jpg"))
    assert record.id == image_doc_id(record.pair_id) and (record.dataset, record.split) == ("folder", "all")
    assert record.uri == str(folder.resolve() / "2023/summer/c.jpg")
    meta = record.metadata
    assert (meta["path"], meta["folder"], meta["paths"]) == ("2023/summer/c.jpg", "2023/summer", ["2023/summer/c.jpg"])
    assert (meta["taken"], meta["taken_source"], meta["camera"]) == ("2023-07-14T16:20:05", "exif", "Canon EOS 5D")
    assert (meta["width"], meta["height"]) == (64, 48)
    assert record.tags["phash"] == bytes_signature((folder / "2023/summer/c.jpg").read_bytes())  # outside metadata
    assert "phash" not in meta and re.fullmatch(r"[0-9a-f]{16}", record.tags["phash"])
    assert library_state_path(workspace, LIBRARY).is_file()


def test_an_unchanged_folder_needs_no_flow_and_reads_no_file(folder: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = tmp_path / "workspace"
    run_sync(workspace, folder)
    os.utime(folder / "a.jpg", ns=(1, 1))  # touched: rehashed, same content, state only
    summary, flow, needed = run_sync(workspace, folder)
    assert not needed and flow.posts == [] and summary.counts["touched"] == 1
    import crossmodal.library.files
    import serving.jobs.sync

    def no_reading(*args, **kwargs):
        raise AssertionError("an unchanged file was read")

    # Every read of a library file goes through open_library_file: the hash (files.py) and the sync job's own reads.
    monkeypatch.setattr(crossmodal.library.files, "open_library_file", no_reading)
    monkeypatch.setattr(serving.jobs.sync, "open_library_file", no_reading)
    with LibrarySync(workspace, folder) as sync:
        plan = sync.plan()
        assert not sync.needs_flow(plan) and plan.photos == {}
        summary = sync.apply(None, plan)
    assert summary.line().startswith(f"library {LIBRARY!r} is up to date: 0 new, 0 changed, 0 moved or renamed, "
                                     "0 copies, 0 deleted, 4 unchanged, 0 skipped")


def test_add_delete_rename_modify_copy(folder: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    run_sync(workspace, folder)
    text_index = index_folder(workspace, TEXT)
    with VectorStore(text_index, TEXT, MODEL, DIM) as captions:  # a caption of b.jpg's photo, to be removed with it
        b_pair = photo_pair_id(LIBRARY, sha256_file(folder, "b.jpg"))
        captions.add([Record(caption_doc_id(b_pair, 0), TEXT, "b", None, b_pair, "folder")], np.ones((1, DIM)))
    renamed_id, b_id, old_d = pid(folder, "a.jpg"), pid(folder, "b.jpg"), pid(folder, "d.jpg")
    before = read_vectors(index_folder(workspace, IMAGE), [renamed_id])[renamed_id]

    (folder / "a.jpg").rename(folder / "renamed.jpg")  # rename
    shutil.move(folder / "2023", folder / "archive")  # a moved folder
    (folder / "b.jpg").unlink()  # delete
    write(folder / "d.jpg", jpeg(40))  # modify in place
    (folder / "copies").mkdir()
    shutil.copy(folder / "renamed.jpg", folder / "copies" / "renamed-copy.jpg")  # copy
    write(folder / "new.jpg", jpeg(50))  # add
    summary, flow, _ = run_sync(workspace, folder)

    c = summary.counts
    assert (c["new"], c["changed"], c["moved"], c["copies"], c["deleted"]) == (1, 1, 2, 1, 1), summary.line()
    assert sorted(flow.encoded) == sorted([pid(folder, "d.jpg"), pid(folder, "new.jpg")])  # only new content
    assert summary.encoded == 2 and summary.reused == 2 and summary.removed == 2, summary.line()
    assert indexed(workspace) == on_disk(folder)
    assert indexed(workspace)[renamed_id] == ["copies/renamed-copy.jpg", "renamed.jpg"]  # one photo, two paths
    after = read_vectors(index_folder(workspace, IMAGE), [renamed_id])[renamed_id]
    assert after.tobytes() == before.tobytes()  # the vector is the stored one, bit for bit
    record = read_record(index_folder(workspace, IMAGE), renamed_id)
    assert record.uri == str(folder.resolve() / "copies/renamed-copy.jpg")
    assert record.tags["phash"] == bytes_signature((folder / "renamed.jpg").read_bytes())  # kept from the store
    assert b_id not in stored_ids(index_folder(workspace, IMAGE)) and old_d not in indexed(workspace)
    assert stored_ids(text_index) == set()  # the deleted photo's caption went with it
    with LibraryState(library_state_path(workspace, LIBRARY), LIBRARY) as state:
        assert state.pending == {}
        assert {path: r.photo_id for path, r in state.records.items()} == {
            path: photo for photo, paths in on_disk(folder).items() for path in paths}


def test_a_photo_stored_without_a_signature_gets_one_when_it_moves(folder: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A photo stored before signatures existed gets one from its file when a sync stores it again (a move), still
    with no encoder call; a move of a photo whose record has one reads no file for it."""
    workspace = tmp_path / "workspace"
    run_sync(workspace, folder)
    old, kept = pid(folder, "a.jpg"), pid(folder, "b.jpg")
    image_index = index_folder(workspace, IMAGE)
    record = read_record(image_index, old)
    vector = read_vectors(image_index, [old])[old]
    with VectorStore(shard_folder(image_index, 1, 0), IMAGE, MODEL, DIM) as store:  # as an older sync stored it
        store.add([replace(record, tags={k: v for k, v in record.tags.items() if k != "phash"})], vector[None])
    assert "phash" not in read_record(image_index, old).tags
    (folder / "a.jpg").rename(folder / "moved-a.jpg")
    (folder / "b.jpg").rename(folder / "moved-b.jpg")
    import serving.jobs.sync as sync_module

    read = []
    real_read = sync_module.LibrarySync._read
    monkeypatch.setattr(sync_module.LibrarySync, "_read", lambda self, path: read.append(path) or real_read(self, path))
    summary, flow, _ = run_sync(workspace, folder)
    assert flow.encoded == [] and summary.reused == 2 and read == ["moved-a.jpg"]
    assert read_record(image_index, old).tags["phash"] == bytes_signature((folder / "moved-a.jpg").read_bytes())
    assert read_record(image_index, kept).tags["phash"] == bytes_signature((folder / "moved-b.jpg").read_bytes())
    assert read_vectors(image_index, [old])[old].tobytes() == vector.tobytes()


def test_a_file_that_cannot_be_decoded_is_skipped_and_not_read_again(folder: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    whole = jpeg(7, size=(400, 300))
    write(folder / "truncated.jpg", whole[: len(whole) // 2])
    summary, flow, _ = run_sync(workspace, folder)
    assert summary.encoded == 4 and [(s.path, s.kind) for s in summary.skipped] == [("truncated.jpg", NOT_INDEXABLE)]
    assert "truncated" in summary.skipped[0].detail
    summary, flow, needed = run_sync(workspace, folder)
    assert not needed and [(s.path, s.kind) for s in summary.skipped] == [("truncated.jpg", NOT_INDEXABLE)]
    write(folder / "truncated.jpg", whole)
    summary, flow, _ = run_sync(workspace, folder)
    assert summary.counts["new"] == 1 and summary.encoded == 1 and summary.skipped == []


def test_a_photo_that_changes_after_the_sync_read_it_is_stored_by_the_next_sync_only(folder: Path,
                                                                                   tmp_path: Path) -> None:
    """The sync sends a new photo's path with the hash of the bytes it read; the encoder reads the file again, and a
    file changed in between is refused: no vector of other bytes than its record's hash names is ever stored."""
    workspace = tmp_path / "workspace"
    scanned = pid(folder, "a.jpg")
    flow = FakeIndexFlow(workspace)
    post = flow.post

    def post_after_a_change(endpoint, inputs=(), **kwargs):
        if endpoint == "/index" and any((doc.uri or "").endswith("/a.jpg") for doc in inputs):
            write(folder / "a.jpg", jpeg(99))  # saved again by an editor between the sync's read and the encoder's
        return post(endpoint, inputs, **kwargs)

    flow.post = post_after_a_change  # type: ignore[method-assign]
    summary, _, _ = run_sync(workspace, folder, flow)
    assert summary.encoded == 3 and [s.path for s in summary.skipped] == ["a.jpg"]
    assert "changed since it was scanned" in summary.skipped[0].detail
    assert scanned not in indexed(workspace) and "a.jpg" not in str(indexed(workspace))
    summary, flow, needed = run_sync(workspace, folder)
    assert needed and summary.encoded == 1 and summary.skipped == [] and indexed(workspace) == on_disk(folder)


def test_photos_indexed_with_path_ids_before_are_replaced_by_the_first_sync(folder: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    flow = FakeIndexFlow(workspace)
    legacy_pair, other_pair = f"folder/{LIBRARY}/a.jpg", "folder/Other/a.jpg"
    for pair in (legacy_pair, other_pair):
        flow.store(IMAGE).add([Record(image_doc_id(pair), IMAGE, None, "/x/a.jpg", pair, "folder")], np.ones((1, DIM)))
        flow.store(TEXT).add([Record(caption_doc_id(pair, 0), TEXT, "a", None, pair, "folder")], np.ones((1, DIM)))
    flow.close()
    summary, _, needed = run_sync(workspace, folder)
    assert needed and summary.legacy_removed == 1 and "1 path-id photos of the folder removed" in summary.line()
    assert image_doc_id(legacy_pair) not in stored_ids(index_folder(workspace, IMAGE))
    assert stored_ids(index_folder(workspace, TEXT)) == {caption_doc_id(other_pair, 0)}  # another folder's stay
    assert stored_ids(index_folder(workspace, IMAGE)) == set(on_disk(folder)) | {image_doc_id(other_pair)}


def _change_everything(root: Path) -> None:
    (root / "a.jpg").rename(root / "renamed.jpg")
    (root / "b.jpg").unlink()
    write(root / "d.jpg", jpeg(41))
    shutil.copy(root / "2023/summer/c.jpg", root / "c-copy.jpg")
    for number in range(3):
        write(root / f"new{number}.jpg", jpeg(60 + number))


KILLED_SYNC = textwrap.dedent("""
    import sys
    from pathlib import Path
    from serving.jobs.sync import LibrarySync
    from tests.library_flow import FakeIndexFlow
    workspace, root, endpoint, number, before = sys.argv[1:6]
    flow = FakeIndexFlow(Path(workspace), kill_at=(endpoint, int(number)), before=before == "1")
    with LibrarySync(Path(workspace), Path(root), batch_size=2) as sync:
        plan = sync.plan()
        sync.apply(flow, plan)
    print("not killed")
""")


@pytest.mark.parametrize(("endpoint", "number", "before"), [
    ("/index", 1, True), ("/index", 1, False), ("/index", 2, False), ("/delete", 1, False), ("/delete", 1, True),
    ("/flush", 1, True),
])
def test_a_sync_killed_with_sigkill_resumes_without_loss_or_duplicates(folder: Path, tmp_path: Path, endpoint: str,
                                                                        number: int, before: bool) -> None:
    workspace = tmp_path / "workspace"
    run_sync(workspace, folder)
    _change_everything(folder)
    child = subprocess.run([sys.executable, "-c", KILLED_SYNC, str(workspace), str(folder), endpoint, str(number),
                            "1" if before else "0"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert child.returncode == -9, child.stdout + child.stderr
    summary, flow, _ = run_sync(workspace, folder)
    assert indexed(workspace) == on_disk(folder)  # nothing lost, nothing left over, one record per content
    assert len(stored_ids(index_folder(workspace, IMAGE))) == len(on_disk(folder))
    moved = {pid(folder, "renamed.jpg"), pid(folder, "c-copy.jpg")}
    assert not moved & set(flow.encoded)  # a move or copy is never encoded, even after a crash
    with LibraryState(library_state_path(workspace, LIBRARY), LIBRARY) as state:
        assert state.pending == {}
    summary, flow, needed = run_sync(workspace, folder)
    assert not needed


def test_folder_events_that_matter(tmp_path: Path) -> None:
    root = tmp_path / LIBRARY
    changes = FolderChanges(root, ignore=[root / "workspace"])
    assert changes.relevant(str(root / "a.JPG"), False) and changes.relevant(str(root / "2023"), True)
    assert not changes.relevant(str(root / "notes.txt"), False)
    assert not changes.relevant(str(root / ".thumbs" / "a.jpg"), False)
    assert not changes.relevant(str(root / "workspace" / "image_index"), True)
    assert not changes.relevant(str(tmp_path / "elsewhere.jpg"), False)


def test_watch_syncs_on_events_and_stops(folder: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    flow = FakeIndexFlow(workspace)
    lines: list[str] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def watch() -> None:  # the state's SQLite connection belongs to the thread that opens it
        try:
            with LibrarySync(workspace, folder, batch_size=2) as sync:
                watch_library(sync, flow, report=lines.append, scan_interval=600, debounce=0.3,
                              should_stop=stop.is_set, poll=0.05)
        except BaseException as error:
            errors.append(error)

    def wait_for(condition, what: str) -> None:
        deadline = time.monotonic() + 20
        while not condition():
            assert not errors and time.monotonic() < deadline, f"no {what}: {lines} {errors}"
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    wait_for(lambda: len(lines) == 1, "first sync")
    assert "4 new" in lines[0]
    (folder / "a.jpg").rename(folder / "renamed.jpg")
    write(folder / "e.jpg", jpeg(70))
    wait_for(lambda: len(lines) == 2, "sync on events")
    assert "1 new" in lines[1] and "1 moved or renamed" in lines[1] and "1 encoded" in lines[1], lines
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and not errors
    flow.close()
    assert indexed(workspace) == on_disk(folder)


def test_photos_stored_before_places_get_theirs_from_the_next_sync_without_encoding(tmp_path: Path) -> None:
    import sqlite3

    from crossmodal.index.connections import store_dbs
    from tests.unit.test_places import gps_jpeg

    root, workspace = tmp_path / LIBRARY, tmp_path / "workspace"
    gps_jpeg(root / "lisbon.jpg", 38.7223, -9.1393)
    gps_jpeg(root / "atlantic.jpg", 30.0, -40.0, size=(40, 24))  # mid-ocean: its place is null, not missing
    gps_jpeg(root / "home.jpg", None, None, size=(48, 24))
    run_sync(workspace, root)
    lisbon, atlantic = pid(root, "lisbon.jpg"), pid(root, "atlantic.jpg")
    image_index = index_folder(workspace, IMAGE)
    assert read_record(image_index, lisbon).metadata["place"]["city"] == "Lisbon"
    assert read_record(image_index, atlantic).metadata["place"] is None
    assert not run_sync(workspace, root)[2]  # up to date: no flow
    for db in store_dbs(image_index):  # as the version before places stored them: no `place` key
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE records SET tags = json_set(tags, '$.metadata', "
                         "json_remove(json_extract(tags, '$.metadata'), '$.place'))")
    assert "place" not in read_record(image_index, lisbon).metadata
    summary, flow, needed = run_sync(workspace, root)
    assert needed and summary.encoded == 0 and summary.reused == 2  # home.jpg has no coordinates: not sent
    assert read_record(image_index, lisbon).metadata["place"]["country"] == "Portugal"
    assert read_record(image_index, atlantic).metadata["place"] is None
    assert not run_sync(workspace, root)[2]
