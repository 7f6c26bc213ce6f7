"""Re-sync of an unchanged photo folder: scan (os.scandir + lstat) and sync plan against the library state.

    python bench/library_scan_bench.py [--sizes 10000 100000] [--repeats 3] [--dir /tmp]

For each size, makes a folder of that many small distinct *.jpg files (500 per subfolder, like a camera's DCIM
folders), syncs it once (every file hashed and recorded), then times what a re-run of `-t index` does on the
unchanged folder: open the state (load its records), scan, plan. No file is read on the re-run, so the numbers are
what the metadata walk costs; the page cache is warm (a second sync of the day). Not part of the test run.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crossmodal.library import LibraryState, plan_sync, scan_folder  # noqa: E402

PER_FOLDER = 500


def make_folder(root: Path, count: int) -> None:
    for start in range(0, count, PER_FOLDER):
        folder = root / f"{start // PER_FOLDER:04d}"
        folder.mkdir(parents=True)
        for number in range(start, min(start + PER_FOLDER, count)):
            (folder / f"IMG_{number:06d}.jpg").write_bytes(number.to_bytes(4, "little"))


def first_sync(root: Path, state: LibraryState) -> float:
    started = time.perf_counter()
    for batch in plan_sync(scan_folder(root), state).batches(max_photos=1000):
        with state.applying(batch):
            pass  # the index write: not what is measured here
    return time.perf_counter() - started


def bench(count: int, repeats: int, base: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(dir=base) as work:
        root, state_file = Path(work) / "photos", Path(work) / "state.sqlite"
        started = time.perf_counter()
        make_folder(root, count)
        made = time.perf_counter() - started
        with LibraryState(state_file, "bench") as state:
            first = first_sync(root, state)
        loads, scans, plans, totals = [], [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            state = LibraryState(state_file, "bench")
            t1 = time.perf_counter()
            scan = scan_folder(root)
            t2 = time.perf_counter()
            plan = plan_sync(scan, state, hash_file=_never)
            t3 = time.perf_counter()
            state.close()
            assert len(scan.files) == count and plan.summary()["unchanged"] == count and not plan.photos
            loads.append(t1 - t0)
            scans.append(t2 - t1)
            plans.append(t3 - t2)
            totals.append(t3 - t0)
    return {
        "files": count,
        "create_s": made,
        "first_sync_s": first,
        "state_load_s": statistics.median(loads),
        "scan_s": statistics.median(scans),
        "plan_s": statistics.median(plans),
        "resync_s": statistics.median(totals),
    }


def _never(root: Path, relative: str) -> str:
    raise AssertionError(f"an unchanged file was read: {relative}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    print(f"{'files':>8} {'create':>8} {'1st sync':>9} {'load':>7} {'scan':>7} {'plan':>7} {'re-sync':>8}  (seconds)")
    for count in args.sizes:
        row = bench(count, args.repeats, args.dir)
        print(
            f"{row['files']:>8} {row['create_s']:>8.2f} {row['first_sync_s']:>9.2f} {row['state_load_s']:>7.3f} "
            f"{row['scan_s']:>7.3f} {row['plan_s']:>7.3f} {row['resync_s']:>8.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
