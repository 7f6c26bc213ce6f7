"""A plain photo folder (no captions file) as a user keeps it, with one query server running throughout (issue 11):
`-t index` syncs it (add, delete, rename, modify, copy, near-copies), then `-t watch` follows it on its own; the
server sees every change without a restart. The near-copies (resized and re-encoded) are grouped with their originals:
listed by `/duplicates` and folded into them by search. One of them (the cat at half size, JPEG quality 60) is found
only by the photos' perceptual signatures: the offline model puts it at cosine ~0.975 from its original, below its
threshold.

Costs two index runs, one watch run and one query server (the suite's time budget). Crash safety of a sync (SIGKILL
at every step) is tested with an in-process flow stand-in in tests/unit/test_library_sync.py.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageOps

from crossmodal.index import read_vectors, stored_ids
from crossmodal.library import photo_id
from tests.servers import APP, INDEX_TIMEOUT, FlowProcess, describe, run_cli, start_query_server

pytestmark = pytest.mark.slow

SUMMARY = re.compile(r"(\d+) new, (\d+) changed, (\d+) moved or renamed, (\d+) copies, (\d+) deleted, "
                     r"(\d+) unchanged, (\d+) skipped; photos: (\d+) encoded, (\d+) updated without encoding, "
                     r"(\d+) removed")
FIELDS = ("new", "changed", "moved", "copies", "deleted", "unchanged", "skipped", "encoded", "reused", "removed")
LIBRARY = "album"


def save_photo(source: Path, target: Path, crop: float = 1.0, tint: tuple[int, int, int] | None = None,
               orientation: int | None = None, taken: str = "2023:07:14 16:20:05") -> None:
    """A JPEG with EXIF (date, camera, optionally an orientation) made from a demo photo."""
    image = Image.open(source).convert("RGB")
    if crop < 1.0:
        width, height = image.size
        image = image.crop((0, 0, int(width * crop), int(height * crop)))
    if tint is not None:
        image = Image.blend(image, Image.new("RGB", image.size, tint), 0.3)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 5D"
    exif.get_ifd(0x8769)[0x9003] = taken
    if orientation is not None:
        exif[0x0112] = orientation
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, format="JPEG", quality=90, exif=exif.tobytes())


def save_near_copy(source: Path, target: Path, scale: float = 0.75, quality: int = 85) -> None:
    """A resized, re-encoded copy, as a phone's "share" or a web album makes one; upright, with no EXIF. (The offline
    model keeps the motorcycle at 75 %, quality 85 at cosine 0.9998 from its original, above its threshold, but the
    cat at 50 %, quality 60 at ~0.975, below it: only their signatures, 0-2 bits apart, pair those two; see
    bench/near_duplicates_bench.py.)"""
    image = ImageOps.exif_transpose(Image.open(source)).convert("RGB")
    image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS).save(
        target, format="JPEG", quality=quality)


def content_id(path: Path) -> str:
    return photo_id(LIBRARY, hashlib.sha256(path.read_bytes()).hexdigest())


def summaries(output: str) -> list[dict[str, int]]:
    return [dict(zip(FIELDS, map(int, found.groups()))) for found in SUMMARY.finditer(output)]


def photo_ids_found(client: httpx.Client) -> set[str]:
    answer = client.post("/search", json={"text": "a photo", "limit": 50, "modality": "image",
                                          "collapse_duplicates": False})
    assert answer.status_code == 200, answer.text
    return {match["id"] for match in answer.json()["matches"]}


def document(client: httpx.Client, doc_id: str) -> dict | None:
    answer = client.get(f"/documents/{doc_id}")
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    return answer.json()


def assert_near_copies_grouped(client: httpx.Client, groups_wanted: dict[str, tuple[str, str]]) -> None:
    """`/duplicates` lists each original (more pixels: the representative) with its near-copy (id, path), and nothing
    else; a search folds each near-copy into whichever of the two ranks first, unless asked not to."""
    groups = client.get("/duplicates").json()
    assert groups["total"] == len(groups_wanted), groups
    listed = {group["id"]: group["members"] for group in groups["groups"]}
    assert {original: [m["id"] for m in members] for original, members in listed.items()} == {
        original: [original, near] for original, (near, _) in groups_wanted.items()}
    for original, (_, path) in groups_wanted.items():
        assert listed[original][1]["metadata"]["path"] == path
    query = {"text": "a motorcycle", "limit": 10, "modality": "image", "mode": "semantic"}
    folded = client.post("/search", json=query).json()
    every = client.post("/search", json={**query, "collapse_duplicates": False}).json()
    pairs = [(original, near) for original, (near, _) in groups_wanted.items()]
    assert {m["id"]: m["duplicates"] for m in every["matches"] if any(m["id"] in pair for pair in pairs)} == {
        doc_id: 1 for pair in pairs for doc_id in pair}
    assert folded["total"] == every["total"] - len(pairs)
    ranked = [m["id"] for m in every["matches"]]  # the whole library (6 photos): no page cut
    later = {max(pair, key=ranked.index) for pair in pairs}  # the lower ranked of each pair is folded
    assert [m["id"] for m in folded["matches"]] == [doc_id for doc_id in ranked if doc_id not in later]


def wait_until(condition, what: str, watch: FlowProcess | None = None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if watch is not None:
            assert watch.process.poll() is None, f"watch exited\n{watch.log_text()[-4000:]}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s" + (
            f"\n{watch.log_text()[-4000:]}" if watch else "")
        time.sleep(0.25)


def test_a_plain_folder_synced_by_index_then_by_watch_with_the_server_running(demo_workspace: Path,
                                                                             tmp_path: Path) -> None:
    demo = demo_workspace / "demo_images"
    album, workspace = tmp_path / LIBRARY, tmp_path / "workspace"
    save_photo(demo / "chelsea_cat.png", album / "cat.jpg")
    save_photo(demo / "coffee.png", album / "coffee.jpg")
    save_photo(demo / "rocket.png", album / "2023" / "rocket.jpg", tint=(0, 0, 255))
    save_photo(demo / "motorcycle.png", album / "2023" / "motorcycle.jpg", orientation=6)
    (album / "notes.txt").write_text("not a photo")
    assert not (album / "captions.csv").exists() and not (album / "captions.json").exists()

    first = run_cli("-t", "index", "-d", "folder", "--data-dir", album, "--workspace", workspace, "-b", "2",
                    timeout=INDEX_TIMEOUT)
    assert first.returncode == 0, describe(first)
    assert summaries(first.stdout) == [dict(new=4, changed=0, moved=0, copies=0, deleted=0, unchanged=0, skipped=0,
                                            encoded=4, reused=0, removed=0)], describe(first)
    ids = {name: content_id(album / name) for name in ("cat.jpg", "coffee.jpg", "2023/rocket.jpg",
                                                        "2023/motorcycle.jpg")}
    assert stored_ids(workspace / "image_index") == set(ids.values())
    cat_vector = read_vectors(workspace / "image_index", [ids["cat.jpg"]])[ids["cat.jpg"]]

    server = start_query_server(workspace, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert photo_ids_found(client) == set(ids.values())
            moto = document(client, ids["2023/motorcycle.jpg"])["metadata"]
            width, height = Image.open(album / "2023" / "motorcycle.jpg").size
            assert (moto["width"], moto["height"]) == (height, width)  # EXIF orientation 6: displayed upright
            assert (moto["path"], moto["folder"], moto["camera"], moto["taken"]) == (
                "2023/motorcycle.jpg", "2023", "Canon EOS 5D", "2023-07-14T16:20:05")

            # --- -t index as a sync: add, delete, rename, modify, copy --------------------------------------------
            save_photo(demo / "astronaut.png", album / "astronaut.jpg")  # add
            (album / "2023" / "rocket.jpg").unlink()  # delete
            (album / "pets").mkdir()
            (album / "shared").mkdir()
            (album / "cat.jpg").rename(album / "pets" / "chelsea.jpg")  # rename (and move)
            save_photo(demo / "coffee.png", album / "coffee.jpg", crop=0.8)  # modify
            shutil.copy2(album / "2023" / "motorcycle.jpg", album / "backup-motorcycle.jpg")  # copy
            save_near_copy(album / "2023" / "motorcycle.jpg", album / "2023" / "motorcycle-small.jpg")  # near-copy
            save_near_copy(album / "pets" / "chelsea.jpg", album / "shared" / "cat-small.jpg", 0.5, 60)  # another
            second = run_cli("-t", "index", "-d", "folder", "--data-dir", album, "--workspace", workspace, "-b", "2",
                             timeout=INDEX_TIMEOUT)
            assert second.returncode == 0, describe(second)
            assert summaries(second.stdout) == [dict(new=3, changed=1, moved=1, copies=1, deleted=1, unchanged=1,
                                                     skipped=0, encoded=4, reused=2, removed=2)], describe(second)
            astronaut, coffee = content_id(album / "astronaut.jpg"), content_id(album / "coffee.jpg")
            near = content_id(album / "2023" / "motorcycle-small.jpg")
            near_cat = content_id(album / "shared" / "cat-small.jpg")
            expected = {ids["cat.jpg"], ids["2023/motorcycle.jpg"], astronaut, coffee, near, near_cat}
            assert coffee != ids["coffee.jpg"]
            assert photo_ids_found(client) == expected  # the running server's search sees the sync
            for gone in (ids["2023/rocket.jpg"], ids["coffee.jpg"]):
                assert client.get(f"/images/{gone}").status_code == 404
                assert document(client, gone) is None
            cat = document(client, ids["cat.jpg"])  # renamed: the same id, its new path, no encoder call
            assert cat["metadata"]["path"] == "pets/chelsea.jpg" and cat["metadata"]["paths"] == ["pets/chelsea.jpg"]
            assert client.get(f"/images/{ids['cat.jpg']}").status_code == 200
            after = read_vectors(workspace / "image_index", [ids["cat.jpg"]])[ids["cat.jpg"]]
            assert after.tobytes() == cat_vector.tobytes()
            copies = document(client, ids["2023/motorcycle.jpg"])["metadata"]  # one photo, two paths
            assert copies["paths"] == ["2023/motorcycle.jpg", "backup-motorcycle.jpg"]
            assert document(client, coffee)["metadata"]["path"] == "coffee.jpg"
            groups_wanted = {ids["2023/motorcycle.jpg"]: (near, "2023/motorcycle-small.jpg"),
                             ids["cat.jpg"]: (near_cat, "shared/cat-small.jpg")}
            assert_near_copies_grouped(client, groups_wanted)
            duplicates = client.get("/duplicates").json()
            cat_group = next(group for group in duplicates["groups"] if group["id"] == ids["cat.jpg"])
            assert cat_group["members"][1]["similarity"] < duplicates["threshold"]  # found by the signatures
            signatures = {doc_id: document(client, doc_id)["tags"]["phash"] for doc_id in (ids["cat.jpg"], near_cat)}
            assert all(re.fullmatch(r"[0-9a-f]{16}", value) for value in signatures.values())  # outside metadata

            # --- -t watch: the same without running -t index --------------------------------------------------------
            watch = FlowProcess([sys.executable, str(APP), "-t", "watch", "-d", "folder", "--data-dir", str(album),
                                 "--workspace", str(workspace), "--scan-interval", "600"],
                                tmp_path / "watch.log", port=None)  # type: ignore[arg-type]
            try:
                wait_until(lambda: "is up to date" in watch.log_text(), "first sync of -t watch", watch)
                (album / "pets" / "chelsea.jpg").rename(album / "cat-again.jpg")
                (album / "astronaut.jpg").unlink()
                save_photo(demo / "china.jpg", album / "2024" / "china.jpg")
                china = content_id(album / "2024" / "china.jpg")
                expected = {ids["cat.jpg"], ids["2023/motorcycle.jpg"], coffee, china, near, near_cat}
                wait_until(lambda: photo_ids_found(client) == expected, "watched changes in search", watch)
                wait_until(lambda: (document(client, ids["cat.jpg"]) or {}).get("metadata", {}).get("path")
                           == "cat-again.jpg", "the renamed photo at its new path", watch)
                assert client.get(f"/images/{astronaut}").status_code == 404
                watch.stop(signal.SIGTERM, within=20)
            finally:
                if watch.process.poll() is None:
                    watch.process.kill()
            log = watch.log_text()
            assert watch.process.returncode == 0, log[-4000:]
            synced = summaries(log)
            assert sum(s["encoded"] for s in synced) == 1, log  # only the new photo: the renamed one is not encoded
            assert sum(s["moved"] for s in synced) == 1 and sum(s["deleted"] for s in synced) == 1, log
            assert "stopped watching" in log and "Traceback" not in log, log[-4000:]
            after = read_vectors(workspace / "image_index", [ids["cat.jpg"]])[ids["cat.jpg"]]
            assert after.tobytes() == cat_vector.tobytes()
            assert photo_ids_found(client) == expected
            assert_near_copies_grouped(client, groups_wanted)  # the renamed cat keeps its signature and its group
    finally:
        server.stop()
