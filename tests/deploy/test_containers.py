"""The container deployment end to end, with a real engine (`make deploy-test`; not part of `make test`).

Each deployment here is a fresh export (deploy/export.py) written to a temporary folder under its own compose
project, volume and 127.0.0.1 port, so a user's own `make deploy-up` (project `crossmodal`) is never touched, and
everything the test starts is removed at the end (checked: no container, volume or network of its projects left).
Driven through deploy/compose.py, the same code as `make deploy-up`. Slow (images, model loading): minutes.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO_ROOT / "deploy"), str(REPO_ROOT / "tests"), str(REPO_ROOT)]
import compose  # noqa: E402  deploy/compose.py

from crossmodal.index.ids import caption_doc_id, image_doc_id  # noqa: E402
from deploy import export  # noqa: E402

ENGINE = os.environ.get("DEPLOY_ENGINE", "podman")
COMPOSE = os.environ.get("DEPLOY_COMPOSE", str(REPO_ROOT / ".venv" / "bin" / "podman-compose"))
PORT = int(os.environ.get("DEPLOY_TEST_PORT", "45710"))
PREFIX = "crossmodal-test"
COFFEE, CAT = image_doc_id("demo/coffee.png"), image_doc_id("demo/chelsea_cat.png")
cat_caption = caption_doc_id("demo/chelsea_cat.png", 0)
GRACE_S = 20  # stop_grace_period of every service (deploy/export.py)


def engine(*args: str, check: bool = True) -> str:
    return subprocess.run([ENGINE, *args], check=check, capture_output=True, text=True, timeout=300).stdout


def variant(folder: Path, name: str, port: int, **options) -> compose.Deployment:
    """An export of the query flow under project crossmodal-test-<name>, volume crossmodal-test-<name>-workspace,
    published on 127.0.0.1:<port> only."""
    export.export(export.Options(port=port, **options), folder)
    path = folder / "docker-compose.yml"
    spec = yaml.safe_load(path.read_text())
    spec["name"] = f"{PREFIX}-{name}"
    spec["volumes"]["workspace"]["name"] = f"{PREFIX}-{name}-workspace"
    spec["services"]["gateway"]["ports"] = [f"127.0.0.1:{port}:{port}"]
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return compose.Deployment(ENGINE, COMPOSE, port, compose_file=path)


def remove(deployment: compose.Deployment) -> None:
    deployment.run("down", "-v", check=False, capture=True)
    engine("volume", "rm", "-f", deployment.volume, check=False)


def get(deployment: compose.Deployment, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(deployment.url + path, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post(deployment: compose.Deployment, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
    request = urllib.request.Request(deployment.url + path, data=body, headers={"content-type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def counts(deployment: compose.Deployment) -> dict:
    status, body = get(deployment, "/stats")
    assert status == 200, body
    stats = json.loads(body)
    return {key: value for key, value in stats.items() if key in ("photos", "captions", "images", "texts")} or stats


def containers(project: str, all_states: bool = True) -> list[dict]:
    """`inspect` of the project's containers (the same JSON from docker and podman, unlike `ps --format json`)."""
    ids = engine("ps", *(["-a"] if all_states else []), "-q", "--filter",
                 f"label=com.docker.compose.project={project}").split()
    return json.loads(engine("inspect", *ids)) if ids else []


def service(container: dict) -> str:
    return container["Config"]["Labels"]["com.docker.compose.service"]


def volumes() -> set[str]:
    return set(engine("volume", "ls", "--format", "{{.Name}}").split())


VOLUMES_BEFORE = volumes()  # at collection: anonymous volumes a container left would be new names at the end


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("deploy")


@pytest.fixture(scope="module")
def main(folder):
    deployment = variant(folder / "main", "main", PORT)
    remove(deployment)  # a fresh volume: the demo is indexed by `up`
    seconds = deployment.up()
    print(f"\n{ENGINE}: up (index + start) to the first answer: {seconds:.1f} s")
    yield deployment
    remove(deployment)


def test_images_hold_only_what_they_copy_and_start_quietly():
    expected = {"crossmodal-img-emb": {"crossmodal", "serving", "img_emb", "txt_emb", "deploy", "encoder"},
                "crossmodal-gateway": {"crossmodal", "serving", "pods", "flows", "web", "dataset.py", "deploy"},
                "crossmodal-index": {"crossmodal", "serving", "pods", "flows", "img_emb", "txt_emb", "app.py",
                                     "dataset.py", "demo", "deploy", "encoder"}}
    expected["crossmodal-txt-emb"] = expected["crossmodal-img-emb"]
    expected["crossmodal-indexer"] = expected["crossmodal-gateway"]
    for image, top in expected.items():
        listing = engine("run", "--rm", "--entrypoint", "sh", f"{image}:latest", "-c",
                         "ls -A /app; find /app -name __pycache__ -path '*/app/*' -prune | grep -v /opt | head -3; "
                         "ls /app/deploy")
        names = listing.split()
        assert set(names[:len(top)]) == top, f"{image}: /app holds {names}"
        assert not {"tests", ".git", ".venv", "README.md", "workspace", "bench"} & set(names), image
        result = subprocess.run([ENGINE, "run", "--rm", "--entrypoint", "jina", f"{image}:latest", "-v"],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "3.34.0" in result.stdout, result.stderr
        assert "pkg_resources" not in result.stderr and "Warning" not in result.stderr, result.stderr


# Every module of the code the gateway and indexer image holds, imported in that image: a dependency the product
# gained (scipy for crossmodal/library/perceptual_hash.py did) but the image lacks fails here, not at a container's
# start.
IMPORT_ALL = """
import importlib, pkgutil
failed = {}
for package in ("crossmodal", "serving", "pods"):
    for module in pkgutil.walk_packages(["/app/" + package], prefix=package + "."):
        if module.name.startswith("crossmodal.backends.models."):
            continue  # the torch towers: the ONNX runtime runs the default model without torch
        try:
            importlib.import_module(module.name)
        except Exception as error:
            failed[module.name] = repr(error)
for name in ("pi_heif", "watchdog.observers", "reverse_geocode"):  # imported where a photo needs them
    try:
        importlib.import_module(name)
    except Exception as error:
        failed[name] = repr(error)
print(failed)
"""


def test_the_gateway_indexer_and_index_job_images_import_all_of_their_code():
    for image in ("crossmodal-gateway", "crossmodal-indexer", "crossmodal-index"):
        result = subprocess.run([ENGINE, "run", "--rm", "--entrypoint", "python", f"{image}:latest", "-c",
                                 IMPORT_ALL], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0 and result.stdout.strip() == "{}", (image, result.stdout, result.stderr)


def test_text_photo_jinabox_health_and_a_bad_upload(main):
    answer = main.search({"text": "a cup of coffee"})
    assert answer["matches"][0]["id"] == COFFEE
    status, photo = get(main, f"/images/{CAT}")
    assert status == 200 and photo[:4] == b"\x89PNG"
    uri = "data:image/png;base64," + base64.b64encode(photo).decode()
    assert main.search({"image": uri, "modality": "image"})["matches"][0]["id"] == CAT
    captions = main.search({"image": uri})["matches"]
    assert captions[0]["modality"] == "text" and captions[0]["id"].startswith(cat_caption.rsplit("-", 1)[0] + "-")
    for route, body in (("/api/search", {"data": ["a cup of coffee"], "top_k": 5, "mode": "search"}),
                        ("/search", {"data": ["a cup of coffee"], "parameters": {"top_k": 5}})):
        status, widget = post(main, route, json.dumps(body).encode(), "application/json")
        assert status == 200, widget
        assert widget["data"]["docs"][0]["matches"][0]["uri"].endswith(f"/images/{COFFEE}"), route
    assert get(main, "/health") == (200, b'{"status":"ok"}')
    boundary = "crossmodalboundary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"notes.png\"\r\n"
            f"Content-Type: image/png\r\n\r\nthis is not a photo\r\n--{boundary}--\r\n").encode()
    status, error = post(main, "/search", form, f"multipart/form-data; boundary={boundary}")
    assert 400 <= status < 500 and error["error"]["status"] == status, error


def test_the_web_page_in_chromium(main):
    from chromium import chromium
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from web_page import wait_for

    with chromium("--disable-background-networking") as page:
        page.get(main.url + "/")
        page.find_element(By.ID, "q").send_keys("a cup of coffee", Keys.ENTER)
        cards = wait_for(page, "#result-list .card", 5)
        assert cards[0].get_attribute("data-id") == COFFEE
        assert [e for e in page.get_log("browser") if e["level"] == "SEVERE"] == []


def every_photo(deployment: compose.Deployment) -> list[str]:
    """The ids of every indexed photo, ranked for one query: a document a shard lost would be missing here (the
    gateway's /stats counts what is on disk, not what the indexers serve)."""
    return [m["id"] for m in deployment.search({"text": "a cup of coffee", "limit": 100})["matches"]]


def test_down_and_up_keep_the_index(main):
    before, ranked = counts(main), every_photo(main)
    assert before["images"] == len(ranked) > 0
    main.down()
    assert containers(main.project) == []
    assert main.indexed(), "the volume outlives `down`"
    main.up()
    assert counts(main) == before
    assert every_photo(main) == ranked


def test_a_killed_indexer_comes_back_by_its_restart_policy(main):
    before, ranked = counts(main), every_photo(main)
    shard = next(c for c in containers(main.project, all_states=False) if service(c) == "image-indexer-0")
    pid = int(engine("inspect", "--format", "{{.State.Pid}}", shard["Id"]).strip())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        restarts = int(engine("inspect", "--format", "{{.RestartCount}}", shard["Id"]).strip() or 0)
        state = engine("inspect", "--format", "{{.State.Status}}", shard["Id"]).strip()
        if restarts >= 1 and state == "running":
            break
        time.sleep(1)
    else:
        pytest.fail(f"image-indexer-0 did not come back: {state}, {restarts} restarts")
    main.wait(300)
    deadline, now = time.monotonic() + 120, ranked[:0]
    while time.monotonic() < deadline:  # the restarted shard loads its part of the index before it answers
        with contextlib.suppress(OSError, ValueError, KeyError):
            now = every_photo(main)
            if now == ranked:
                break
        time.sleep(1)
    assert now == ranked, f"after the restart {len(now)} of {len(ranked)} photos are served"
    assert counts(main) == before


def test_two_shards_two_replicas_rank_like_one_shard(folder):
    answers = {}
    for name, shards, replicas, port in (("one", 1, 1, PORT + 1), ("two", 2, 2, PORT + 2)):
        deployment = variant(folder / name, name, port, shards=shards, replicas=replicas)
        remove(deployment)
        try:
            deployment.up()
            answers[name] = [[m["id"] for m in deployment.search({"text": text, "limit": 10})["matches"]]
                             for text in ("a cup of coffee", "a cat", "a rocket launch")]
        finally:
            remove(deployment)
    assert answers["one"] == answers["two"]
    assert all(len(ids) == 10 for ids in answers["one"])


def test_a_user_folder_mounted_read_only_is_indexed_and_found(folder, main):
    photos = folder / "photos" / "holiday"
    photos.mkdir(parents=True)
    status, photo = get(main, f"/images/{COFFEE}")
    assert status == 200
    (photos / "espresso.png").write_bytes(photo)
    status, cat = get(main, f"/images/{CAT}")
    (photos / "kitty.png").write_bytes(cat)
    deployment = variant(folder / "user", "user", PORT + 3)
    remove(deployment)
    env = {"CROSSMODAL_DATA_DIR": str(folder / "photos")}
    try:
        deployment.index("--dataset", "folder", "--data-dir", "/data", env=env)
        deployment.run("up", "-d", env=env)
        uri = "data:image/png;base64," + base64.b64encode(cat).decode()
        deadline = time.monotonic() + 300
        while True:
            try:
                matches = deployment.search({"image": uri, "modality": "image"})["matches"]
                break
            except OSError:
                assert time.monotonic() < deadline, "the user folder's deployment never answered"
                time.sleep(2)
        assert "kitty.png" in json.dumps(matches[0]) and len(matches) == 2, matches
        status, served = get(deployment, f"/images/{matches[0]['id']}")
        assert status == 200 and served == cat
        assert (photos / "kitty.png").read_bytes() == cat and sorted(os.listdir(photos)) == ["espresso.png",
                                                                                               "kitty.png"]
    finally:
        remove(deployment)


def test_every_container_stops_within_its_grace_period(main):
    running = containers(main.project, all_states=False)
    assert len(running) >= 9
    started = time.monotonic()
    main.run("stop", timeout=GRACE_S * len(running) + 60)
    elapsed = time.monotonic() - started
    for container in containers(main.project):
        state = container["State"]
        assert state["Status"] == "exited", (service(container), state)
        assert state["ExitCode"] != 137, f"{service(container)} was killed after its {GRACE_S} s grace period"
    print(f"\n{ENGINE}: stop of {len(running)} containers: {elapsed:.1f} s")
    main.down()


def test_nothing_is_left_behind(main):
    """Runs last in this module (pytest keeps file order): after the fixtures' own clean-up of the other
    projects, and after `down -v` of the main one here."""
    remove(main)
    leftovers = [name for name in engine("ps", "-a", "--format", "{{.Names}}").split() if PREFIX in name]
    new_volumes = sorted(volumes() - VOLUMES_BEFORE)  # named (crossmodal-test-*) and anonymous ones
    networks = [n for n in engine("network", "ls", "--format", "{{.Name}}").split() if n.startswith(PREFIX)]
    assert (leftovers, new_volumes, networks) == ([], [], [])
