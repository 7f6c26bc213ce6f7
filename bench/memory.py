"""Memory of a running query flow, per process, the way smem counts it: PSS (shared pages split between sharers).

    python bench/memory.py                       # starts app.py -t query-restful on ./workspace (the demo index)
    python bench/memory.py --pid 1234            # measures a running app.py and its descendants instead
    python bench/memory.py --json results/memory.json

Sends a text and a photo query first (so both encoders, both indexers and the answer building have run), then
reads /proc/<pid>/smaps_rollup of app.py and every descendant: Pss, Rss, and whether libtorch is mapped.
Target (issue 10): at most 800 MB PSS for the whole serving flow on the demo.
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path

import httpx
from appserver import REPO_ROOT, flow_processes, maps_library, query_server, role


def rollup_kib(pid: int) -> dict[str, int]:
    """Pss, Rss and Pss of anonymous memory (kB) from /proc/<pid>/smaps_rollup; empty when the process ended."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return {}
    wanted = {"Pss:": "pss", "Rss:": "rss", "Pss_Anon:": "pss_anon"}
    values = {}
    for line in lines:
        fields = line.split()
        if fields and fields[0] in wanted:
            values[wanted[fields[0]]] = int(fields[1])
    return values


def measure(root: int) -> list[dict]:
    rows = []
    for pid in flow_processes(root):
        memory = rollup_kib(pid)
        if memory:
            rows.append({"pid": pid, "role": role(pid, root), "torch": maps_library(pid, "libtorch"), **memory})
    return rows


def report(rows: list[dict]) -> str:
    lines = [f"{'pid':>8}  {'role':<22} {'PSS MB':>8} {'RSS MB':>8}  torch"]
    for row in rows:
        lines.append(f"{row['pid']:>8}  {row['role']:<22} {row['pss'] / 1024:8.1f} {row['rss'] / 1024:8.1f}  "
                     f"{'yes' if row['torch'] else 'no'}")
    pss, rss = sum(row["pss"] for row in rows) / 1024, sum(row["rss"] for row in rows) / 1024
    lines.append(f"{'':>8}  {f'total ({len(rows)} processes)':<22} {pss:8.1f} {rss:8.1f}")
    return "\n".join(lines)


def warm_up(url: str, workspace: Path) -> None:
    photo = next(iter(sorted((workspace / "demo_images").glob("*.*"))), None)
    with httpx.Client(base_url=url, timeout=60) as client:
        client.post("/search", json={"text": "a cup of coffee", "limit": 10}).raise_for_status()
        if photo is not None:
            client.post("/search", json={"image": base64.b64encode(photo.read_bytes()).decode(),
                                         "limit": 10}).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=REPO_ROOT / "workspace")
    parser.add_argument("--pid", type=int, help="measure this running app.py instead of starting one")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait after the warm-up queries")
    parser.add_argument("--json", type=Path, help="also write the rows and totals here")
    parser.add_argument("server_args", nargs="*", help="extra app.py arguments (after --)")
    parser.add_argument("--runs", type=int, default=1, help="query servers started one after the other; the run "
                        "with the median total PSS is reported (and written), with every run's total")
    args = parser.parse_args()
    if args.pid:
        runs = [measure(args.pid)]
    else:
        runs = []
        for _ in range(args.runs):
            with query_server(args.workspace, *args.server_args) as (url, process, ready):
                print(f"query flow ready in {ready:.1f} s", file=sys.stderr)
                warm_up(url, args.workspace)
                time.sleep(args.settle)
                runs.append(measure(process.pid))
    totals = [round(sum(row["pss"] for row in rows) / 1024, 1) for rows in runs]
    rows = runs[sorted(range(len(runs)), key=lambda n: totals[n])[len(runs) // 2]]
    print(report(rows))
    if len(runs) > 1:
        print(f"total PSS of each run (MB): {totals}; the median run is shown")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        total = {"pss_mb": round(sum(row["pss"] for row in rows) / 1024, 1),
                 "rss_mb": round(sum(row["rss"] for row in rows) / 1024, 1)}
        args.json.write_text(json.dumps({"processes": rows, "total": total, "pss_mb_of_each_run": totals,
                                         "target_pss_mb": 800}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
