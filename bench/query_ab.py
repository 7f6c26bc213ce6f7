"""Two versions of the query server compared on a machine whose speed drifts: both run at once, bursts alternate.

    git worktree add /tmp/before <commit>            # the code to compare against, beside this checkout
    python bench/query_ab.py /tmp/before . --rounds 8 --json results/query-ab.json

Each checkout's `app.py -t query-restful` serves the same workspace (this checkout's ./workspace unless
--workspace); both run with this Python. Every round sends each server, in alternating order, a burst of hybrid
(the default) and of semantic text queries from 1 client, then a burst from 16 clients, so a slow minute of a shared
VM falls on both. Printed per server: p50/p99 at 1 client (hybrid and semantic), p50/p99, p99/p50 and queries/s at
16 clients.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
from appserver import REPO_ROOT, free_port, start_app, stop, wait_for_health

TEXTS = ["a cup of coffee", "a cat", "a red motorcycle", "a rocket at night", "an astronaut", "a flower",
         "the surface of the moon", "a temple by a lake", "coins on a table", "a man with a camera"]


async def burst(url: str, clients: int, requests: int, mode: str | None = None) -> tuple[list[float], float]:
    """Latencies (s) of `requests` text queries from `clients` concurrent clients, and the burst's seconds."""
    latencies: list[float] = []
    numbers = iter(range(requests))

    async def client(http: httpx.AsyncClient, offset: int) -> None:
        for number in numbers:
            body = {"text": TEXTS[(number + offset) % len(TEXTS)], "limit": 10, **({"mode": mode} if mode else {})}
            started = time.perf_counter()
            (await http.post("/search", json=body)).raise_for_status()
            latencies.append(time.perf_counter() - started)

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=clients)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http, offset) for offset in range(clients)))
        return latencies, time.perf_counter() - started


def label(checkout: Path) -> str:
    """The checkout's path and commit (with `+changes` when its tracked files differ from that commit)."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True)
    commit = git("rev-parse", "--short", "HEAD").stdout.strip() or "?"
    changed = git("diff", "--quiet", "HEAD").returncode != 0
    return f"{checkout.resolve()} @ {commit}{'+changes' if changed else ''}"


def percentile_ms(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs=2, type=Path)
    parser.add_argument("--workspace", type=Path, default=REPO_ROOT / "workspace")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--server-args", default="", help='more app.py flags for both servers, e.g. "--replicas 2"')
    args = parser.parse_args()
    names = [str(checkout.resolve()) for checkout in args.checkouts]
    samples: dict[str, dict[str, list[float]]] = {name: {"hybrid": [], "semantic": [], "16": []} for name in names}
    seconds_16 = dict.fromkeys(names, 0.0)
    with contextlib.ExitStack() as stack:
        urls = {}
        for name in names:
            port = free_port()
            process = start_app("-t", "query-restful", "--host", "127.0.0.1", "--port", str(port), "--workspace",
                                str(args.workspace.resolve()), *shlex.split(args.server_args),
                                app=Path(name) / "app.py")
            stack.callback(stop, process)
            urls[name] = f"http://127.0.0.1:{port}"
            wait_for_health(urls[name], process)
        for name in names:
            asyncio.run(burst(urls[name], 1, 30))  # warm
        for number in range(args.rounds):
            for name in names if number % 2 == 0 else names[::-1]:
                samples[name]["hybrid"] += asyncio.run(burst(urls[name], 1, 60))[0]
                samples[name]["semantic"] += asyncio.run(burst(urls[name], 1, 30, "semantic"))[0]
                latencies, seconds = asyncio.run(burst(urls[name], 16, 160))
                samples[name]["16"] += latencies
                seconds_16[name] += seconds
    results = {}
    for name in names:
        found = samples[name]
        row = {"1_client_hybrid_p50_ms": percentile_ms(found["hybrid"], 0.5),
               "1_client_hybrid_p99_ms": percentile_ms(found["hybrid"], 0.99),
               "1_client_semantic_p50_ms": percentile_ms(found["semantic"], 0.5),
               "16_clients_p50_ms": percentile_ms(found["16"], 0.5),
               "16_clients_p99_ms": percentile_ms(found["16"], 0.99),
               "16_clients_queries_per_s": len(found["16"]) / seconds_16[name]}
        results[label(Path(name))] = {"server_args": args.server_args,
                                      **{key: round(value, 1) for key, value in row.items()}}
        print(f"{label(Path(name))}: 1 client hybrid p50 {row['1_client_hybrid_p50_ms']:.1f} ms "
              f"(p99 {row['1_client_hybrid_p99_ms']:.1f}), semantic p50 {row['1_client_semantic_p50_ms']:.1f} ms; "
              f"16 clients p50 {row['16_clients_p50_ms']:.1f} ms, p99 {row['16_clients_p99_ms']:.1f} ms "
              f"({row['16_clients_p99_ms'] / row['16_clients_p50_ms']:.2f}x), "
              f"{row['16_clients_queries_per_s']:.1f} queries/s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
