"""Folder libraries (crossmodal/library/) on real folders: the scan and its faults, the sync plan, crash safety.

The index is a fake that keeps what the real one keeps per photo id (its paths) and counts encoder calls, so each
test can compare it with the ground truth computed from the disk: one photo per distinct content, with all its paths.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from crossmodal import library as lib
from crossmodal.index.ids import DOC_ID_PATTERN, caption_doc_id, image_doc_id
from crossmodal.library import (
    LibraryState,
    LibraryStateError,
    NotARegularFile,
    SyncBatch,
    SyncRefused,
    open_library_file,
    photo_id,
    photo_pair_id,
    plan_sync,
    scan_folder,
    sha256_file,
)
from crossmodal.media.formats import register_heif

LIBRARY = "holidays"
DATA = Path(__file__).parent / "data"


def write(path: Path, content: bytes, mtime_ns: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


class FakeIndex:
    """What the store holds per photo id (its paths), with the encoder calls counted."""

    def __init__(self) -> None:
        self.photos: dict[str, tuple[str, ...]] = {}
        self.encoded: list[str] = []

    def write(self, batch: SyncBatch, fail_after: int | None = None) -> None:
        for done, photo in enumerate(batch.photos):
            if fail_after is not None and done == fail_after:
                raise KeyboardInterrupt("killed in the middle of the index write")
            if photo.removed:
                self.photos.pop(photo.photo_id, None)
                continue
            if photo.embed and photo.photo_id not in self.photos:  # the integrator skips what the store holds
                self.encoded.append(photo.path or "")
            self.photos[photo.photo_id] = photo.paths


def expected_index(root: Path) -> dict[str, tuple[str, ...]]:
    by_content: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.suffix.lower() in lib.BASE_SUFFIXES:
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            by_content.setdefault(sha, []).append(path.relative_to(root).as_posix())
    return {photo_id(LIBRARY, sha): tuple(paths) for sha, paths in by_content.items()}


class Counting:
    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, root: Path, relative: str) -> str:
        self.paths.append(relative)
        return sha256_file(root, relative)


def sync(
    root: Path, state: LibraryState, index: FakeIndex, hash_file: Callable[[Path, str], str] = sha256_file, **kw: object
) -> lib.SyncPlan:
    plan = plan_sync(scan_folder(root), state, hash_file=hash_file, **kw)  # type: ignore[arg-type]
    for batch in plan.batches(max_photos=2):
        with state.applying(batch):
            index.write(batch)
    return plan


def assert_consistent(root: Path, state_file: Path, index: FakeIndex) -> None:
    """The index is the disk, and the state (reopened from its file) records exactly what the index holds."""
    expected = expected_index(root)
    assert index.photos == expected
    with LibraryState(state_file, LIBRARY) as state:
        assert state.pending == {}
        assert {path: record.photo_id for path, record in state.records.items()} == {
            path: photo for photo, paths in expected.items() for path in paths
        }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / LIBRARY
    write(root / "a.jpg", b"photo a" * 100)
    write(root / "b.jpg", b"photo b" * 100)
    write(root / "2023" / "summer" / "c.JPG", b"photo c" * 100)
    write(root / "d.png", b"photo d" * 100)
    return root


# --- identity ------------------------------------------------------------------------------------------------


def test_photo_id_is_derived_from_library_and_content() -> None:
    sha = hashlib.sha256(b"x").hexdigest()
    assert photo_pair_id(LIBRARY, sha) == f"folder/{LIBRARY}/sha256:{sha}"
    assert photo_id(LIBRARY, sha) == image_doc_id(photo_pair_id(LIBRARY, sha))
    assert DOC_ID_PATTERN.match(photo_id(LIBRARY, sha))
    assert caption_doc_id(photo_pair_id(LIBRARY, sha), 0).startswith("txt-")
    assert photo_id("other", sha) != photo_id(LIBRARY, sha)


# --- scan ----------------------------------------------------------------------------------------------------


def test_scan_lists_photos_with_stat_and_ignores_hidden_and_other_files(folder: Path) -> None:
    write(folder / ".hidden.jpg", b"h")
    write(folder / ".thumbnails" / "t.jpg", b"t")
    write(folder / "captions.csv", b"image,caption\n")
    write(folder / "movie.mov", b"m")
    for suffix in ("jpeg", "webp", "gif", "tif", "tiff", "bmp"):
        write(folder / "formats" / f"x.{suffix.upper()}", suffix.encode())
    scan = scan_folder(folder)
    assert set(scan.files) == {
        "a.jpg", "b.jpg", "2023/summer/c.JPG", "d.png",
        *(f"formats/x.{s.upper()}" for s in ("jpeg", "webp", "gif", "tif", "tiff", "bmp")),
    }  # fmt: skip
    stat = (folder / "a.jpg").stat()
    assert scan.files["a.jpg"] == (stat.st_size, stat.st_mtime_ns)
    assert scan.skipped == [] and scan.ignored == 4
    with pytest.raises(NotADirectoryError):
        scan_folder(folder / "a.jpg")


def test_heic_is_a_library_photo_when_a_decoder_is_installed(tmp_path: Path) -> None:
    write(tmp_path / "IMG_1.HEIC", (DATA / "library_photo.heic").read_bytes())
    scan = scan_folder(tmp_path)
    if register_heif():
        assert list(scan.files) == ["IMG_1.HEIC"]
    else:
        assert [s.kind for s in scan.skipped] == [lib.NO_HEIF_DECODER]
    without_decoder = scan_folder(tmp_path, suffixes=lib.BASE_SUFFIXES)
    assert without_decoder.files == {} and [s.kind for s in without_decoder.skipped] == [lib.NO_HEIF_DECODER]


def test_non_utf8_names_are_skipped_with_a_readable_reason(folder: Path) -> None:
    base = os.fsencode(folder)
    with open(os.path.join(base, b"caf\xe9.jpg"), "wb") as handle:
        handle.write(b"latin-1 name")
    os.mkdir(os.path.join(base, b"f\xf6lder"))
    with open(os.path.join(base, b"f\xf6lder", b"inside.jpg"), "wb") as handle:
        handle.write(b"in a latin-1 folder")
    write(folder / "café ünïcode.jpg", b"valid utf-8 name")
    scan = scan_folder(folder)
    assert "café ünïcode.jpg" in scan.files
    skipped = {s.path: s for s in scan.skipped}
    assert set(skipped) == {"caf\\xe9.jpg", "f\\xf6lder"}
    assert {s.kind for s in skipped.values()} == {lib.NOT_UTF8}
    assert skipped["f\\xf6lder"].is_folder and "rename" in str(skipped["caf\\xe9.jpg"])
    json.dumps([str(s) for s in scan.skipped]).encode("utf-8")  # reportable as it is


def test_fifos_sockets_and_symlinks_are_never_followed_or_opened(folder: Path, tmp_path: Path) -> None:
    outside = write(tmp_path / "private" / "secret.jpg", b"not in the library")
    os.mkfifo(folder / "pipe.jpg")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock.png"))
    try:
        (folder / "loop.jpg").symlink_to("loop.jpg")
        (folder / "ping.jpg").symlink_to("pong.jpg")
        (folder / "pong.jpg").symlink_to("ping.jpg")
        (folder / "2023" / "up").symlink_to("..")
        (folder / "escape.jpg").symlink_to(outside)
        (folder / "escape_dir").symlink_to(outside.parent)
        (folder / "relative_escape.jpg").symlink_to("../private/secret.jpg")
        (folder / "alias.jpg").symlink_to("a.jpg")
        (folder / "dangling.jpg").symlink_to("nothing.jpg")
        (folder / "notes.txt").symlink_to(outside)  # not a photo name nor a folder: not even reported
        scan = scan_folder(folder)
    finally:
        server.close()
    assert set(scan.files) == {"a.jpg", "b.jpg", "2023/summer/c.JPG", "d.png"}
    kinds = {s.path: s.kind for s in scan.skipped}
    assert kinds == {
        "pipe.jpg": lib.SPECIAL_FILE,
        "sock.png": lib.SPECIAL_FILE,
        "loop.jpg": lib.SYMLINK_LOOP,
        "ping.jpg": lib.SYMLINK_LOOP,
        "pong.jpg": lib.SYMLINK_LOOP,
        "2023/up": lib.SYMLINK_LOOP,
        "escape.jpg": lib.SYMLINK_OUTSIDE,
        "escape_dir": lib.SYMLINK_OUTSIDE,
        "relative_escape.jpg": lib.SYMLINK_OUTSIDE,
        "alias.jpg": lib.SYMLINK_INSIDE,
        "dangling.jpg": lib.SYMLINK_BROKEN,
    }
    assert scan.skipped_counts()[lib.SYMLINK_LOOP] == 4


def test_open_library_file_refuses_links_special_files_and_escapes(folder: Path, tmp_path: Path) -> None:
    outside = write(tmp_path / "private" / "secret.jpg", b"secret")
    (folder / "escape.jpg").symlink_to(outside)
    (folder / "linked_dir").symlink_to(outside.parent)
    os.mkfifo(folder / "pipe.jpg")
    with open_library_file(folder, "2023/summer/c.JPG") as handle:
        assert handle.read() == b"photo c" * 100
    for relative in ("escape.jpg", "linked_dir/secret.jpg", "pipe.jpg", "../private/secret.jpg", "/etc/passwd", ""):
        with pytest.raises(NotARegularFile):  # the FIFO is refused without blocking
            open_library_file(folder, relative)
    with pytest.raises(FileNotFoundError):
        open_library_file(folder, "missing.jpg")


def test_a_file_that_vanishes_between_listing_and_stat(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_scandir = os.scandir

    class Vanishing:
        def __init__(self, path: str) -> None:
            self.listing = real_scandir(path)

        def __enter__(self) -> Vanishing:
            return self

        def __exit__(self, *exc: object) -> None:
            self.listing.close()

        def __iter__(self):  # type: ignore[no-untyped-def]
            for entry in self.listing:
                if entry.name == "b.jpg":
                    os.unlink(entry.path)  # listed, then gone before its stat
                yield entry

    monkeypatch.setattr(os, "scandir", Vanishing)
    scan = scan_folder(folder)
    assert "b.jpg" not in scan.files and [(s.path, s.kind) for s in scan.skipped] == [("b.jpg", lib.VANISHED)]


def test_permission_denied_folder_keeps_what_was_indexed_under_it(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_file, index = tmp_path / "state.sqlite", FakeIndex()
    with LibraryState(state_file, LIBRARY) as state:
        sync(folder, state, index)
    real_scandir = os.scandir

    def denied(path: str):  # type: ignore[no-untyped-def]
        if path.endswith("/2023"):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    (folder / "a.jpg").unlink()
    with LibraryState(state_file, LIBRARY) as state:
        plan = sync(folder, state, index)
    assert [(s.path, s.kind, s.is_folder) for s in plan.skipped] == [("2023", lib.PERMISSION_DENIED, True)]
    assert plan.summary()["deleted"] == 1  # a.jpg; 2023/summer/c.JPG is kept though it could not be listed
    assert "2023/summer/c.JPG" in {p for paths in index.photos.values() for p in paths}
    monkeypatch.undo()
    assert_consistent(folder, state_file, index)


def test_real_chmod_000_folder_and_file(folder: Path, tmp_path: Path) -> None:
    """With real permissions: as root, in a child process without the capabilities that bypass them."""
    (folder / "2023").chmod(0o000)
    (folder / "b.jpg").chmod(0o000)
    script = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from crossmodal.library import LibraryState, plan_sync, scan_folder
        scan = scan_folder(Path({str(folder)!r}))
        plan = plan_sync(scan, LibraryState(Path({str(tmp_path / "s.sqlite")!r}), "x"))
        print(json.dumps({{"files": sorted(scan.files), "skipped": [[s.path, s.kind] for s in plan.skipped]}}))
        """
    )
    command = [sys.executable, "-c", script]
    try:
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv: root reads a chmod 000 folder (mocked test above)")
            command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    finally:
        (folder / "2023").chmod(0o755)
        (folder / "b.jpg").chmod(0o644)
    report = json.loads(result.stdout)
    assert report["files"] == ["a.jpg", "b.jpg", "d.png"]  # b.jpg can be listed and stat'ed, not read
    assert sorted(report["skipped"]) == [["2023", lib.PERMISSION_DENIED], ["b.jpg", lib.PERMISSION_DENIED]]


# --- sync plan -----------------------------------------------------------------------------------------------


def test_first_sync_then_an_unchanged_folder_is_not_read(folder: Path, tmp_path: Path) -> None:
    state_file, index = tmp_path / "state.sqlite", FakeIndex()
    with LibraryState(state_file, LIBRARY) as state:
        first = sync(folder, state, index)
        assert first.summary()["new"] == 4 and len(index.encoded) == 4
        counting = Counting()
        again = sync(folder, state, index, hash_file=counting)
    assert counting.paths == [] and again.photos == {}
    assert again.summary() == {
        "unchanged": 4, "touched": 0, "new": 0, "changed": 0, "moved": 0, "copies": 0, "deleted": 0,
        "skipped": 0, "photos_to_embed": 0, "photos_removed": 0,
    }  # fmt: skip
    assert_consistent(folder, state_file, index)


def test_add_delete_rename_modify_copy_touch(folder: Path, tmp_path: Path) -> None:
    state_file, index = tmp_path / "state.sqlite", FakeIndex()
    with LibraryState(state_file, LIBRARY) as state:
        sync(folder, state, index)
    index.encoded.clear()
    (folder / "2024").mkdir()
    (folder / "a.jpg").rename(folder / "2024" / "renamed.jpg")
    (folder / "b.jpg").unlink()
    write(folder / "2023" / "summer" / "c.JPG", b"photo c, retouched" * 100)
    shutil.copy2(folder / "d.png", folder / "copy of d.png")
    os.utime(folder / "d.png", ns=(1_600_000_000_000_000_000,) * 2)
    write(folder / "e.jpg", b"photo e" * 100)
    counting = Counting()
    with LibraryState(state_file, LIBRARY) as state:
        plan = sync(folder, state, index, hash_file=counting)
    summary = plan.summary()
    assert {k: summary[k] for k in ("unchanged", "touched", "new", "changed", "moved", "copies", "deleted")} == {
        "unchanged": 1, "touched": 1, "new": 1, "changed": 1, "moved": 1, "copies": 1, "deleted": 1,
    }  # fmt: skip
    assert [(c.previous.path, c.path) for c in plan.moved if c.previous] == [("a.jpg", "2024/renamed.jpg")]
    hashed = ["2023/summer/c.JPG", "2024/renamed.jpg", "copy of d.png", "d.png", "e.jpg"]
    assert sorted(counting.paths) == hashed  # only what is new or whose stat changed
    assert sorted(index.encoded) == ["2023/summer/c.JPG", "e.jpg"]  # no encoder call for the rename or the copy
    assert summary["photos_to_embed"] == 2 and summary["photos_removed"] == 2  # b.jpg, the old c.JPG
    d_photo = photo_id(LIBRARY, hashlib.sha256(b"photo d" * 100).hexdigest())
    assert index.photos[d_photo] == ("copy of d.png", "d.png")
    assert_consistent(folder, state_file, index)


def test_identical_new_files_swapped_contents_and_deleting_one_copy(folder: Path, tmp_path: Path) -> None:
    state_file, index = tmp_path / "state.sqlite", FakeIndex()
    write(folder / "x" / "one.jpg", b"twin" * 50)
    write(folder / "y" / "one.jpg", b"twin" * 50)
    with LibraryState(state_file, LIBRARY) as state:
        plan = sync(folder, state, index)
        assert (len(plan.new), len(plan.copies), len(index.encoded)) == (5, 1, 5)
        # Swap the contents of a.jpg and b.jpg: both changed, nothing to embed, both photos kept.
        a, b = (folder / "a.jpg").read_bytes(), (folder / "b.jpg").read_bytes()
        write(folder / "a.jpg", b, 1_000_000_000)
        write(folder / "b.jpg", a, 1_000_000_000)
        plan = sync(folder, state, index)
        assert (len(plan.changed), plan.summary()["photos_to_embed"], plan.summary()["photos_removed"]) == (2, 0, 0)
        assert_consistent(folder, state_file, index)
        (folder / "x" / "one.jpg").unlink()
        plan = sync(folder, state, index)
        assert (len(plan.deleted), plan.summary()["photos_removed"]) == (1, 0)
        # A file overwritten with the content of another: changed, and it joins that photo.
        write(folder / "d.png", (folder / "y" / "one.jpg").read_bytes())
        plan = sync(folder, state, index)
        assert (len(plan.changed), plan.summary()["photos_to_embed"], plan.summary()["photos_removed"]) == (1, 0, 1)
    assert len(index.encoded) == 5
    assert_consistent(folder, state_file, index)


def test_a_moved_folder_is_matched_by_name_among_identical_files(folder: Path, tmp_path: Path) -> None:
    state_file, index = tmp_path / "state.sqlite", FakeIndex()
    write(folder / "old" / "p1.jpg", b"same")
    write(folder / "old" / "p2.jpg", b"same")
    with LibraryState(state_file, LIBRARY) as state:
        sync(folder, state, index)
        (folder / "old").rename(folder / "new")
        plan = sync(folder, state, index)
    assert sorted((c.previous.path, c.path) for c in plan.moved if c.previous) == [
        ("old/p1.jpg", "new/p1.jpg"),
        ("old/p2.jpg", "new/p2.jpg"),
    ]
    assert_consistent(folder, state_file, index)


def test_files_that_fail_to_embed_are_not_read_again_until_they_change(folder: Path, tmp_path: Path) -> None:
    state_file, index = tmp_path / "state.sqlite", FakeIndex()
    write(folder / "broken.jpg", b"\xff\xd8\xff truncated")
    broken_id = photo_id(LIBRARY, hashlib.sha256(b"\xff\xd8\xff truncated").hexdigest())
    with LibraryState(state_file, LIBRARY) as state:
        for batch in plan_sync(scan_folder(folder), state).batches(max_photos=2):
            failed = {broken_id: "truncated image"} if any(p.photo_id == broken_id for p in batch.photos) else {}
            batch = batch.without(failed)
            with state.applying(batch):
                index.write(batch)
    counting = Counting()
    with LibraryState(state_file, LIBRARY) as state:
        plan = plan_sync(scan_folder(folder), state, hash_file=counting)
        assert counting.paths == [] and [(s.path, s.kind, s.detail) for s in plan.skipped] == [
            ("broken.jpg", lib.NOT_INDEXABLE, "truncated image")
        ]
        write(folder / "broken.jpg", b"fixed now" * 10)
        plan = sync(folder, state, index)
        assert [c.path for c in plan.new] == ["broken.jpg"]
        assert state.failures == {}
    assert_consistent(folder, state_file, index)


def test_a_file_that_vanishes_before_it_is_hashed(folder: Path, tmp_path: Path) -> None:
    state_file, index = tmp_path / "state.sqlite", FakeIndex()

    def vanishing(root: Path, relative: str) -> str:
        if relative == "b.jpg":
            (root / relative).unlink()
        return sha256_file(root, relative)

    with LibraryState(state_file, LIBRARY) as state:
        plan = sync(folder, state, index, hash_file=vanishing)
    assert [(s.path, s.kind) for s in plan.skipped] == [("b.jpg", lib.VANISHED)]
    assert_consistent(folder, state_file, index)


def test_an_empty_folder_is_refused_unless_allowed(folder: Path, tmp_path: Path) -> None:
    state_file, index = tmp_path / "state.sqlite", FakeIndex()
    with LibraryState(state_file, LIBRARY) as state:
        sync(folder, state, index)
        shutil.rmtree(folder)
        folder.mkdir()  # an unmounted drive looks like this
        with pytest.raises(SyncRefused, match="mounted"):
            plan_sync(scan_folder(folder), state)
        plan = sync(folder, state, index, allow_empty=True)
    assert plan.summary()["photos_removed"] == 4 and index.photos == {}
    assert_consistent(folder, state_file, index)


def test_state_belongs_to_one_library_and_version(tmp_path: Path) -> None:
    LibraryState(tmp_path / "s.sqlite", LIBRARY).close()
    with pytest.raises(LibraryStateError, match="library"):
        LibraryState(tmp_path / "s.sqlite", "another")
    import sqlite3

    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()
    with pytest.raises(LibraryStateError, match="newer version"):
        LibraryState(tmp_path / "s.sqlite", LIBRARY)


# --- crash safety --------------------------------------------------------------------------------------------


def _change_everything(root: Path) -> None:
    (root / "moved").mkdir()
    (root / "a.jpg").rename(root / "moved" / "a.jpg")
    (root / "b.jpg").unlink()
    write(root / "2023" / "summer" / "c.JPG", b"photo c, retouched" * 100)
    shutil.copy2(root / "d.png", root / "d copy.png")
    os.utime(root / "d.png", ns=(1_600_000_000_000_000_000,) * 2)
    write(root / "e.jpg", b"photo e" * 100)
    write(root / "f.jpg", b"photo f" * 100)


def _count_crash_points(folder: Path, tmp_path: Path) -> int:
    copy = tmp_path / "count"
    shutil.copytree(folder, copy / LIBRARY, symlinks=True)
    index = FakeIndex()
    with LibraryState(copy / "state.sqlite", LIBRARY) as state:
        sync(copy / LIBRARY, state, index)
        _change_everything(copy / LIBRARY)
        return len(plan_sync(scan_folder(copy / LIBRARY), state).batches(max_photos=2))


@pytest.mark.parametrize("where", ["after begin", "mid index write", "after index write"])
def test_a_sync_killed_at_any_step_resumes_without_loss_or_duplicates(folder: Path, tmp_path: Path, where: str) -> None:
    batches = _count_crash_points(folder, tmp_path)
    assert batches >= 4
    for crash_batch in range(batches):
        work = tmp_path / f"{where}-{crash_batch}"
        root, state_file = work / LIBRARY, work / "state.sqlite"
        shutil.copytree(folder, root, symlinks=True)
        index = FakeIndex()
        with LibraryState(state_file, LIBRARY) as state:
            sync(root, state, index)
        _change_everything(root)
        index.encoded.clear()
        state = LibraryState(state_file, LIBRARY)
        for number, batch in enumerate(plan_sync(scan_folder(root), state).batches(max_photos=2)):
            if number < crash_batch:
                with state.applying(batch):
                    index.write(batch)
                continue
            state.begin(batch)
            if where == "mid index write" and batch.photos:
                with pytest.raises(KeyboardInterrupt):
                    index.write(batch, fail_after=len(batch.photos) // 2)
            elif where == "after index write":
                index.write(batch)
            break  # SIGKILL: the state is never committed, the connection never closed cleanly
        del state
        with LibraryState(state_file, LIBRARY) as state:  # the next run, from the files on disk
            sync(root, state, index)
        assert_consistent(root, state_file, index)
        # Re-encoding after the crash is bounded by the interrupted batch; moves and copies are never encoded.
        assert set(index.encoded) <= {"2023/summer/c.JPG", "e.jpg", "f.jpg"}


def test_a_removal_that_reached_the_index_is_undone_if_the_file_comes_back(folder: Path, tmp_path: Path) -> None:
    """Killed after the index dropped b.jpg's photo; b.jpg restored (same bytes and mtime) before the next run."""
    state_file, index = tmp_path / "state.sqlite", FakeIndex()
    with LibraryState(state_file, LIBRARY) as state:
        sync(folder, state, index)
    stat, content = (folder / "b.jpg").stat(), (folder / "b.jpg").read_bytes()
    (folder / "b.jpg").unlink()
    state = LibraryState(state_file, LIBRARY)
    (batch,) = plan_sync(scan_folder(folder), state).batches()
    state.begin(batch)
    index.write(batch)  # then killed
    state.close()
    write(folder / "b.jpg", content, stat.st_mtime_ns)
    with LibraryState(state_file, LIBRARY) as state:
        plan = sync(folder, state, index)
    assert plan.unchanged.count("b.jpg") == 1 and plan.summary()["photos_to_embed"] == 1
    assert_consistent(folder, state_file, index)


def test_a_photo_indexed_by_a_killed_sync_whose_file_is_then_deleted_leaves_no_orphan(
    folder: Path, tmp_path: Path
) -> None:
    state_file, index = tmp_path / "state.sqlite", FakeIndex()
    with LibraryState(state_file, LIBRARY) as state:
        sync(folder, state, index)
    write(folder / "new.jpg", b"indexed, then killed")
    state = LibraryState(state_file, LIBRARY)
    (batch,) = plan_sync(scan_folder(folder), state).batches()
    state.begin(batch)
    index.write(batch)  # then killed: the index holds new.jpg's photo, the state does not record it
    state.close()
    (folder / "new.jpg").unlink()
    with LibraryState(state_file, LIBRARY) as state:
        plan = sync(folder, state, index)
    assert plan.summary()["photos_removed"] == 1
    assert_consistent(folder, state_file, index)


def test_old_and_new_content_of_a_changed_file_are_committed_together(folder: Path, tmp_path: Path) -> None:
    """Killed after the old content's photo was dropped, before the new one was stored; then the edit is undone
    (the original bytes and mtime restored, as a backup restore does): the original photo must still be found."""
    state_file, index = tmp_path / "state.sqlite", FakeIndex()
    with LibraryState(state_file, LIBRARY) as state:
        sync(folder, state, index)
    photo = folder / "2023" / "summer" / "c.JPG"
    stat, original = photo.stat(), photo.read_bytes()
    write(photo, b"edited" * 10)
    new_id = photo_id(LIBRARY, hashlib.sha256(b"edited" * 10).hexdigest())
    state = LibraryState(state_file, LIBRARY)
    for batch in plan_sync(scan_folder(folder), state).batches(max_photos=1):
        if any(p.photo_id == new_id for p in batch.photos):
            state.begin(batch)
            break  # killed before the new content reached the index
        with state.applying(batch):
            index.write(batch)
    state.close()
    write(photo, original, stat.st_mtime_ns)
    with LibraryState(state_file, LIBRARY) as state:
        sync(folder, state, index)
    assert_consistent(folder, state_file, index)
