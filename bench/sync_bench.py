"""A photo-folder sync of camera-sized photos, as a user's own library is indexed: `app.py -t index -d folder` on a
folder without captions, on a fresh workspace.

    python bench/sync_bench.py                                   # 76 photos of about 12 MP, 2 runs
    python bench/sync_bench.py --variants 16 --megapixels 12 --runs 3 --json results/sync_bench.json

The photos are the demo photos in `--variants` versions each (bench/index_bench.py's collection, without its
captions file), scaled up to about `--megapixels`. Prints, per run, the sync's own time (from its summary line: the
scan, hashing, signatures, encoding and storing, without the flow's start) and the wall time of the whole command.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from index_bench import REPO_ROOT, make_collection

SYNCED = re.compile(r"synced library '[^']*' in ([\d.]+) s: (\d+) new")


def sync_run(photos: Path, workspace: Path, batch_size: int) -> dict:
    shutil.rmtree(workspace, ignore_errors=True)
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(REPO_ROOT / "app.py"), "-t", "index", "-d", "folder", "--data-dir",
                             str(photos), "--workspace", str(workspace), "-b", str(batch_size)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL,
                            env={**os.environ, "JINA_OPTOUT_TELEMETRY": "1"})
    wall = time.monotonic() - started
    match = SYNCED.search(result.stdout)
    if result.returncode or not match:
        raise RuntimeError(f"the sync failed ({result.returncode}): {result.stdout[-1500:]}\n{result.stderr[-3000:]}")
    seconds, photos_new = float(match[1]), int(match[2])
    return {"photos": photos_new, "sync_seconds": seconds, "photos_per_s": round(photos_new / seconds, 2),
            "wall_s_with_flow_start": round(wall, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=4, help="versions of each demo photo (19 photos each)")
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    try:
        count, _ = make_collection(root, args.variants, args.megapixels)
        (root / "photos" / "captions.csv").unlink()  # a plain folder of photos: the library sync
        print(f"folder: {count} photos of about {args.megapixels:g} MP (JPEG q90, from the demo photos)", flush=True)
        runs = []
        for _ in range(args.runs):
            runs.append(sync_run(root / "photos", root / "workspace", args.batch_size))
            print(f"  sync {runs[-1]['sync_seconds']} s ({runs[-1]['photos_per_s']} photos/s); "
                  f"whole command {runs[-1]['wall_s_with_flow_start']} s", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rate = statistics.median(run["photos_per_s"] for run in runs)
    print(f"photo-folder sync: median {rate:.1f} photos/s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "what": "app.py -t index -d folder on a folder of camera-sized photos without captions, fresh workspace; "
                    "photos/s from the sync's summary (without the flow's start)",
            "photos": count, "megapixels": args.megapixels, "batch_size": args.batch_size,
            "median_photos_per_s": rate, "runs": runs, "cpus": os.cpu_count()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
