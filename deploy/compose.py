#!/usr/bin/env python
"""`make deploy-up` / `make deploy-down`: the compose deployment, with docker compose or podman-compose.

    python deploy/compose.py --engine podman --compose ".venv/bin/podman-compose" --port 45678 up
    python deploy/compose.py ... index --dataset folder --data-dir /data     # CROSSMODAL_DATA_DIR=/your/photos
    python deploy/compose.py ... down

`up` indexes the demo into the shared volume when it holds no index yet (the index job, compose profile `index`),
starts the services, and returns once `POST /search {"text": "a cup of coffee"}` answers with the demo's coffee
photo first: a gateway that answers /health while an indexer is still loading is not "up". The test
(tests/deploy/) drives the same functions, so what a user runs is what is tested.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from crossmodal.index.ids import image_doc_id  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
PROBE = {"text": "a cup of coffee"}


class Deployment:
    def __init__(self, engine: str = "podman", compose: str = "podman-compose", port: int = 45678,
                 compose_file: Path = REPO_ROOT / "docker-compose.yml", tag: str = "latest"):
        self.engine, self.port, self.tag = engine, port, tag
        self.compose = [*shlex.split(compose), "-f", str(compose_file)]
        self.url = f"http://127.0.0.1:{port}"
        spec = yaml.safe_load(Path(compose_file).read_text())
        self.project, self.volume = spec["name"], spec["volumes"]["workspace"]["name"]

    def run(self, *args: str, check: bool = True, capture: bool = False, timeout: float = 900,
            env: dict | None = None) -> subprocess.CompletedProcess:
        environment = {**os.environ, **(env or {})}
        environment.setdefault("CROSSMODAL_DATA_DIR", str(REPO_ROOT / "data"))
        Path(environment["CROSSMODAL_DATA_DIR"]).mkdir(parents=True, exist_ok=True)  # podman refuses a missing one
        return subprocess.run([*self.compose, *args], cwd=REPO_ROOT, check=check, text=True, timeout=timeout,
                              env=environment, capture_output=capture)

    def engine_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([self.engine, *args], check=check, text=True, capture_output=True, timeout=300)

    def indexed(self) -> bool:
        """The shared volume holds both indexes (read in a throwaway container: works for docker and podman)."""
        if self.engine_run("volume", "inspect", self.volume, check=False).returncode != 0:
            return False
        check = ("import os,sys; sys.exit(0 if all(os.path.isdir(f'/workspace/{m}_index') and "
                 "os.listdir(f'/workspace/{m}_index') for m in ('image','text')) else 1)")
        result = self.engine_run("run", "--rm", "-v", f"{self.volume}:/workspace:ro", "--entrypoint", "python",
                                 f"crossmodal-gateway:{self.tag}", "-c", check, check=False)
        return result.returncode == 0

    def index(self, *args: str, env: dict | None = None) -> None:
        self.run("--profile", "index", "run", "--rm", "index", *(args or ("--dataset", "demo")), env=env)

    def up(self, timeout: float = 600) -> float:
        """Index the demo if the volume is empty, start, wait for the probe. Returns seconds to the first answer."""
        started = time.monotonic()
        if not self.indexed():
            self.index()
        self.run("up", "-d")
        self.wait(timeout)
        return time.monotonic() - started

    def down(self, timeout: float = 300) -> None:
        self.run("down", timeout=timeout)

    def search(self, body: dict, timeout: float = 30) -> dict:
        request = urllib.request.Request(f"{self.url}/search", data=json.dumps(body).encode(),
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)

    def wait(self, timeout: float = 600) -> dict:
        """Until the probe's first match is the coffee photo; the last error is raised on timeout."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                answer = self.search(PROBE, timeout=10)
                if answer["matches"] and is_coffee(answer["matches"][0]):
                    return answer
                last = RuntimeError(f"first match is not the coffee photo: {answer['matches'][:1]}")
            except (OSError, urllib.error.URLError, ValueError, KeyError) as error:
                last = error
            time.sleep(1)
        raise TimeoutError(f"{self.url}/search gave no coffee photo in {timeout:.0f} s: {last!r}")


def is_coffee(match: dict) -> bool:
    """The demo's coffee photo (demo/manifest.json: `coffee`; its id derives from the pair id demo/coffee.png)."""
    return match.get("id") == image_doc_id("demo/coffee.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="podman")
    parser.add_argument("--compose", default="podman-compose", help="the compose command, e.g. 'docker compose'")
    parser.add_argument("--port", type=int, default=45678)
    parser.add_argument("--tag", default="latest")
    parser.add_argument("action", choices=("up", "down", "index"))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="index: the index job's arguments")
    args = parser.parse_args(argv)
    deployment = Deployment(args.engine, args.compose, args.port, tag=args.tag)
    if args.action == "up":
        seconds = deployment.up()
        print(f"{deployment.url} answers a search ({seconds:.1f} s)")
    elif args.action == "down":
        deployment.down()
    else:
        deployment.index(*args.args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
