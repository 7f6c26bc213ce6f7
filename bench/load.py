"""Load test of the query flow: N concurrent clients mixing text and image queries, over loopback only.

    python bench/load.py --clients 16 --seconds 60 --runs 3

Starts its own query flow on the demo collection (indexed into --workspace first if needed), runs the load
`--runs` times, and reports per run: requests, errors, p50/p99 latency, queries/s, and the resident memory of
the flow's processes after the run (growth across runs would show a leak). Bounded by time and request count.
"""
import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path

import httpx
from processes import descendants, listening_ports, memory_kib

from dataset import open_dataset
from serving.jobs.indexing import index_dataset
from serving.runtime.flows import FlowSettings, load_flow, running

TEXT_QUERIES = ["a cup of coffee", "a cat", "a red motorcycle", "a rocket at night", "an astronaut", "a flower",
                "the surface of the moon", "a temple by a lake", "coins on a table", "a man with a camera"]


def query_bodies(workspace: Path) -> list[dict]:
    images = sorted((workspace / "demo_images").iterdir())[:5]
    bodies = [{"text": text, "limit": 10} for text in TEXT_QUERIES]
    bodies += [{"image": base64.b64encode(path.read_bytes()).decode(), "limit": 10} for path in images]
    return bodies


async def run_load(url: str, bodies: list[dict], clients: int, seconds: float, max_requests: int) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    sent = 0

    async def client(number: int, http: httpx.AsyncClient) -> None:
        nonlocal sent
        position = number
        while time.monotonic() < deadline and sent < max_requests:
            sent += 1
            body = bodies[position % len(bodies)]
            position += clients
            started = time.perf_counter()
            try:
                response = await http.post("/search", json=body)
                if response.status_code != 200:
                    errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1
            except httpx.HTTPError as error:
                errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(number, http) for number in range(clients)))
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {"clients": clients, "requests": len(latencies), "errors": sum(errors.values()), "error_kinds": errors,
            "seconds": round(elapsed, 1), "qps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(quantiles[49] * 1000, 1), "p95_ms": round(quantiles[94] * 1000, 1),
            "p99_ms": round(quantiles[98] * 1000, 1)}


def process_roles(flow, pids: set[int]) -> dict[int, str]:
    """The flow's processes by the pod each serves (gateway, image_indexer/shard-1/rep-0, ...), matched by the ports
    they listen on; processes that serve none (e.g. a multiprocessing helper) are left out."""
    roles_by_port = {}
    for deployment_name, deployment in flow:
        for args in deployment.all_args:
            for port in args.port if isinstance(args.port, list) else [args.port]:
                roles_by_port[int(port)] = getattr(args, "name", None) or deployment_name
    roles = {}
    for pid in sorted(pids):
        names = sorted({roles_by_port[port] for port in listening_ports(pid) if port in roles_by_port})
        if names:
            roles[pid] = "+".join(names)
    return roles


def memory_by_role(roles: dict[int, str]) -> dict[str, dict[str, float]]:
    """Resident and anonymous memory (MiB) of each flow process now."""
    report = {}
    for pid, role in roles.items():
        kib = memory_kib(pid)
        if kib:
            report[role] = {"rss_mib": round(kib["rss"] / 1024, 1), "anon_mib": round(kib["anon"] / 1024, 1)}
    return report


def ensure_indexed(workspace: Path) -> None:
    reader = open_dataset("demo", workspace=workspace)
    with running(load_flow("index", FlowSettings(workspace=workspace))) as flow:
        index_dataset(flow, reader, workspace, batch_size=8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workspace", type=Path, default=Path("workspace/bench-load"))
    parser.add_argument("--output", type=Path, default=Path("results/load.json"))
    args = parser.parse_args()

    ensure_indexed(args.workspace)
    settings = FlowSettings(workspace=args.workspace, port=int(os.environ.get("LOAD_PORT", "45679")))
    url = f"http://127.0.0.1:{settings.port}"
    runs = []
    with running(load_flow("query", settings)) as flow:
        roles = process_roles(flow, descendants(os.getpid()))
        bodies = query_bodies(args.workspace)
        for number in range(1, args.runs + 1):
            result = asyncio.run(run_load(url, bodies, args.clients, args.seconds, args.max_requests))
            result["run"] = number
            memory = memory_by_role(roles)
            result["flow_rss_mib"] = round(sum(process["rss_mib"] for process in memory.values()), 1)
            result["flow_anon_mib"] = round(sum(process["anon_mib"] for process in memory.values()), 1)
            result["memory_by_process"] = memory
            runs.append(result)
            print(json.dumps(result), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"runs": runs, "cpu_count": os.cpu_count()}, indent=2) + "\n")
    print(f"written to {args.output}")
    return 1 if any(run["errors"] for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
