"""Start-up time, by stage: `app.py -t query-restful` until /health answers, and `-t index` on an up-to-date workspace.

    python bench/start.py                  # on ./workspace (the demo index), 3 runs of each
    python bench/start.py --runs 5 --json results/start.json

For the query server it follows the process tree from /proc every 20 ms and prints, per process of the flow, when
it was forked and when it first listened on a port (seconds after app.py started), so it shows what runs in
parallel and what waits: app.py's own start (imports, workspace checks) until the first fork, each executor's
start (its model load for the encoders), the gateway, and /health. Targets (issue 10): the query flow ready in at
most 8 s, and `-t index` on an up-to-date workspace in at most 5 s, on an idle machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from appserver import REPO_ROOT, free_port, role, start_app, stop
from processes import descendants, listening_ports


def query_server_start(workspace: Path, extra: list[str]) -> dict:
    port = free_port()
    started = time.monotonic()
    process = start_app("-t", "query-restful", "--host", "127.0.0.1", "--port", str(port), "--workspace",
                        str(workspace), *extra)
    forked: dict[int, float] = {}
    listening: dict[int, float] = {}
    names: dict[int, str] = {}
    ready = None
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
            while time.monotonic() - started < 180:
                if process.poll() is not None:
                    raise RuntimeError(f"app.py exited with {process.returncode}")
                now = time.monotonic() - started
                for pid in descendants(process.pid):
                    forked.setdefault(pid, now)
                    name = role(pid, process.pid)
                    if not name.startswith(("unnamed", "gone")):
                        names[pid] = name
                    if pid not in listening and listening_ports(pid):
                        listening[pid] = now
                try:
                    if client.get("/health").status_code == 200:
                        ready = time.monotonic() - started
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
    finally:
        stop(process)
    if ready is None:
        raise TimeoutError("the query server did not answer /health within 180 s")
    stages = [{"process": names.get(pid, f"pid {pid}"), "forked_s": round(forked[pid], 2),
               "listening_s": round(listening[pid], 2) if pid in listening else None} for pid in sorted(forked)]
    return {"ready_s": round(ready, 2), "first_fork_s": round(min(forked.values()), 2) if forked else None,
            "processes": stages}


def up_to_date_index(workspace: Path) -> dict:
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(REPO_ROOT / "app.py"), "-t", "index", "-d", "demo", "--workspace",
                             str(workspace)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - started
    if result.returncode:
        raise RuntimeError(f"-t index failed: {result.stderr[-2000:]}")
    return {"seconds": round(seconds, 2), "flow_started": "starting the index flow" in result.stderr,
            "summary": result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=REPO_ROOT / "workspace", help="an indexed demo workspace")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("server_args", nargs="*", help="extra app.py arguments for the query server (after --)")
    args = parser.parse_args()

    index_runs = [up_to_date_index(args.workspace) for _ in range(args.runs)]
    print(f"-t index on an up-to-date workspace: "
          f"{', '.join(format(run['seconds'], '.2f') for run in index_runs)} s "
          f"(flow started: {any(run['flow_started'] for run in index_runs)}); {index_runs[-1]['summary']}")

    query_runs = [query_server_start(args.workspace, args.server_args) for _ in range(args.runs)]
    for number, run in enumerate(query_runs, start=1):
        print(f"\nquery-restful run {number}: app.py's own start until the first fork {run['first_fork_s']:.2f} s; "
              f"/health 200 after {run['ready_s']:.2f} s")
        print(f"  {'process':<20} {'forked':>7} {'listening':>10}")
        for stage in run["processes"]:
            listen = f"{stage['listening_s']:10.2f}" if stage["listening_s"] is not None else f"{'-':>10}"
            print(f"  {stage['process']:<20} {stage['forked_s']:7.2f} {listen}")
    ready = [run["ready_s"] for run in query_runs]
    index = [run["seconds"] for run in index_runs]
    print(f"\nquery flow ready: median {statistics.median(ready):.2f} s (runs {ready}); "
          f"-t index up to date: median {statistics.median(index):.2f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"query_restful": query_runs, "index_up_to_date": index_runs}, indent=2)
                             + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
