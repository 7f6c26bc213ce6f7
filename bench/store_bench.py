"""Vector store benchmark: exact (flat) vs HNSW search on synthetic embeddings of several collection sizes.

    python bench/store_bench.py --sizes 1000 30000 1000000

For each size and index type: a fresh process inserts the collection in batches of 10k through VectorStore.add
(SQLite included) and closes the store (its peak memory is the indexing cost); another fresh process opens the
store the way a query flow does (read-only) and runs single queries: latency p50/p95, HNSW recall@10 against
exact search for several ef_search values, and the search process's peak memory over the vectors' raw size.
Writes results/store-bench.json and results/store-bench.md.
"""
import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from synthetic import clustered_vectors, collection_batches

DIM = 384
QUERIES = 200
EF_SEARCH = (16, 64, 256)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def insert(folder: str, size: int, index_type: str) -> dict:
    """Fresh process: add the collection batch by batch and close (which writes the FAISS snapshot)."""
    from crossmodal.index import Record, VectorStore

    baseline = peak_mib()
    started = time.perf_counter()
    store = VectorStore(folder, "image", "bench", DIM, index_type=index_type)
    for start, vectors in collection_batches(size, DIM):
        store.add([Record(id=f"v{start + n}", modality="image") for n in range(len(vectors))], vectors)
    store.close()
    seconds = time.perf_counter() - started
    return {"insert_per_s": round(size / seconds), "insert_peak_mib": round(peak_mib() - baseline, 1)}


def search(folder: str, index_type: str, ef_values: tuple[int, ...]) -> dict:
    """Fresh process: open read-only as the query flow's indexer does, then time single queries per ef_search."""
    from crossmodal.index import VectorStore

    queries = clustered_vectors(QUERIES, DIM, seed=1)
    baseline = peak_mib()
    runs, open_seconds = {}, []
    for ef in ef_values:
        started = time.perf_counter()
        with VectorStore(folder, "image", "bench", DIM, index_type=index_type, ef_search=ef, read_only=True) as store:
            open_seconds.append(time.perf_counter() - started)
            store.search(queries[:1], 10)
            latencies, results = [], []
            for query in queries:
                began = time.perf_counter()
                hits = store.search(query[None], 10)[0]
                latencies.append(time.perf_counter() - began)
                results.append([hit.record.id for hit in hits])
        runs[ef] = {"p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 3),
                    "p95_ms": round(float(np.percentile(latencies, 95)) * 1000, 3), "results": results}
    return {"open_s": round(min(open_seconds), 2), "search_peak_mib": round(peak_mib() - baseline, 1), "runs": runs}


def in_child(function, *args):
    """A spawned process per phase, so each peak memory is that phase's alone."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def measure(size: int, scratch: Path) -> list[dict]:
    raw_mib = size * DIM * 4 / 2**20
    rows, exact = [], None
    for index_type in ("flat", "hnsw"):
        folder = scratch / f"{index_type}-{size}"
        inserted = in_child(insert, str(folder), size, index_type)
        searched = in_child(search, str(folder), index_type, EF_SEARCH if index_type == "hnsw" else (64,))
        disk_mib = sum(path.stat().st_size for path in folder.iterdir()) / 2**20
        shutil.rmtree(folder)
        for ef, run in searched["runs"].items():
            results = run.pop("results")
            exact = exact or results
            recall = np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(results, exact)])
            ef_search = ef if index_type == "hnsw" else None
            rows.append({"size": size, "index": index_type, "ef_search": ef_search, **inserted, **run,
                         "recall_at_10": round(float(recall), 4), "open_s": searched["open_s"],
                         "search_peak_mib": searched["search_peak_mib"], "raw_vectors_mib": round(raw_mib, 1),
                         "search_memory_ratio": round(searched["search_peak_mib"] / raw_mib, 2),
                         "disk_mib": round(disk_mib, 1)})
    flat_p50 = rows[0]["p50_ms"]
    for row in rows:
        row["speedup"] = round(flat_p50 / row["p50_ms"], 1)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| vectors | index | ef_search | insert/s | index peak MiB | query p50 ms | p95 ms | recall@10 vs exact | "
             "speed-up | search peak MiB | x raw vectors | open s | disk MiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['size']:,} | {row['index']} | {row['ef_search'] or '-'} | {row['insert_per_s']:,} | "
                     f"{row['insert_peak_mib']} | {row['p50_ms']} | {row['p95_ms']} | {row['recall_at_10']} | "
                     f"{row['speedup']} | {row['search_peak_mib']} | {row['search_memory_ratio']} | {row['open_s']} | "
                     f"{row['disk_mib']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 30000])
    parser.add_argument("--output", type=Path, default=Path("results/store-bench"))
    parser.add_argument("--scratch", type=Path, default=None, help="folder for the stores (default: a temp folder)")
    args = parser.parse_args()
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="store-bench-", dir=args.scratch))
    try:
        for size in args.sizes:
            for row in measure(size, scratch):
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    machine = {"cpu_count": os.cpu_count(), "cpu": platform.processor() or platform.machine(), "dim": DIM,
               "queries": QUERIES, "python": platform.python_version()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
