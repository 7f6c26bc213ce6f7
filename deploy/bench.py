#!/usr/bin/env python
"""Numbers for docs/deployment.md: REST text p50 through the containers beside the local `make run` flow (same
query, alternating, one run), and per-container memory (`<engine> stats`) idle and under 16 clients.

    python deploy/bench.py --containers http://127.0.0.1:45678 --local http://127.0.0.1:45690 --project crossmodal

Both servers must be up and hold the demo. The load is bench/load.py's (text and photo queries, 16 clients).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT / "bench"), str(REPO_ROOT)]
from load import TEXT_QUERIES, run_load  # noqa: E402


def p50_side_by_side(urls: dict[str, str], rounds: int) -> dict[str, float]:
    latencies: dict[str, list[float]] = {name: [] for name in urls}
    with httpx.Client(timeout=60) as http:
        for url in urls.values():  # warm both
            http.post(f"{url}/search", json={"text": "a cup of coffee"}).raise_for_status()
        for _ in range(rounds):
            for name, url in urls.items():
                started = time.perf_counter()
                http.post(f"{url}/search", json={"text": "a cup of coffee"}).raise_for_status()
                latencies[name].append((time.perf_counter() - started) * 1000)
    return {name: round(statistics.median(values), 1) for name, values in latencies.items()}


def stats(engine: str, project: str) -> dict[str, float]:
    """MiB used by each container of the compose project, by service."""
    ids = subprocess.run([engine, "ps", "-q", "--filter", f"label=com.docker.compose.project={project}"],
                         capture_output=True, text=True, check=True).stdout.split()
    names = {}
    for info in json.loads(subprocess.run([engine, "inspect", *ids], capture_output=True, text=True).stdout):
        names[info["Id"][:12]] = info["Config"]["Labels"]["com.docker.compose.service"]
    out = subprocess.run([engine, "stats", "--no-stream", "--format", "{{.ID}} {{.MemUsage}}", *ids],
                         capture_output=True, text=True, check=True).stdout
    result = {}
    for line in out.splitlines():
        cid, usage = line.split(" ", 1)
        value, unit = usage.split("/")[0].strip()[:-2], usage.split("/")[0].strip()[-2:]
        mib = float(value) * {"kB": 1 / 1024, "MB": 1000 * 1000 / 2**20, "GB": 1000 * 1000 * 1000 / 2**20,
                              "iB": 1}.get(unit, 1)
        result[names.get(cid[:12], cid)] = round(mib, 1)
    return dict(sorted(result.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--containers", default="http://127.0.0.1:45678")
    parser.add_argument("--local", help="the local `make run` server, for the p50 beside it")
    parser.add_argument("--engine", default="podman")
    parser.add_argument("--project", default="crossmodal")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    urls = {"containers": args.containers, **({"local": args.local} if args.local else {})}
    report: dict = {"engine": args.engine, "text_p50_ms": p50_side_by_side(urls, args.rounds),
                    "memory_idle_mib": stats(args.engine, args.project)}
    bodies = [{"text": text, "limit": 10} for text in TEXT_QUERIES]
    loaded: dict = {}
    sampler = threading.Timer(args.seconds / 2, lambda: loaded.update(stats(args.engine, args.project)))
    sampler.start()
    report["load"] = asyncio.run(run_load(args.containers, bodies, args.clients, args.seconds, 100_000))
    sampler.join()
    report["memory_under_load_mib"] = loaded
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
