"""Vector store benchmark: exact (flat) vs HNSW search on synthetic embeddings of several collection sizes.

    python bench/store_bench.py --sizes 1000 30000 1000000

For each size and index type, in a fresh process: insert throughput (batches of 10k through VectorStore.add,
SQLite included), single-query latency p50/p95, HNSW recall@10 against exact search and its speed-up, and peak
memory over the vectors' raw size. Writes results/store-bench.json and results/store-bench.md.
"""
import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DIM = 384
QUERIES = 200
BATCH = 10_000


def synthetic_vectors(count: int, seed: int) -> np.ndarray:
    """Unit vectors around 1,000 cluster centres: closer to real embeddings than uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(1000, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, 1000, count)] + 0.6 * rng.normal(size=(count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def measure(size: int, index_type: str) -> dict:
    from crossmodal.store import Record, VectorStore

    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queries = synthetic_vectors(QUERIES, seed=1)
    with tempfile.TemporaryDirectory() as folder:
        store = VectorStore(folder, "image", "bench", DIM, index_type=index_type)
        started = time.perf_counter()
        for start in range(0, size, BATCH):
            vectors = synthetic_vectors(min(BATCH, size - start), seed=start + 2)
            store.add([Record(id=f"v{start + n}", modality="image") for n in range(len(vectors))], vectors)
        store.search(queries[:1], 10)  # builds the index in memory if the store defers it
        insert_seconds = time.perf_counter() - started
        latencies, results = [], []
        for query in queries:
            began = time.perf_counter()
            hits = store.search(query[None], 10)[0]
            latencies.append(time.perf_counter() - began)
            results.append([hit.record.id for hit in hits])
        store.close()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    raw_mib = size * DIM * 4 / 2**20
    return {"size": size, "index": index_type, "insert_per_s": round(size / insert_seconds),
            "p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 3),
            "p95_ms": round(float(np.percentile(latencies, 95)) * 1000, 3),
            "peak_mib": round((peak_kib - baseline_kib) / 1024, 1), "raw_vectors_mib": round(raw_mib, 1),
            "memory_ratio": round((peak_kib - baseline_kib) / 1024 / raw_mib, 2), "results": results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 30000])
    parser.add_argument("--output", type=Path, default=Path("results/store-bench"))
    args = parser.parse_args()
    rows = []
    context = multiprocessing.get_context("spawn")
    for size in args.sizes:
        measured = {}
        for index_type in ("flat", "hnsw"):
            with context.Pool(1) as pool:
                measured[index_type] = pool.apply(measure, (size, index_type))
        exact = measured["flat"].pop("results")
        approximate = measured["hnsw"].pop("results")
        recall = np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approximate, exact)])
        measured["hnsw"]["recall_at_10"] = round(float(recall), 4)
        measured["hnsw"]["speedup"] = round(measured["flat"]["p50_ms"] / measured["hnsw"]["p50_ms"], 1)
        rows += [measured["flat"], measured["hnsw"]]
        for row in (measured["flat"], measured["hnsw"]):
            print(json.dumps(row), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpu_count": os.cpu_count(), "dim": DIM, "queries": QUERIES}
    args.output.with_suffix(".json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    lines = ["| vectors | index | insert/s | query p50 ms | p95 ms | recall@10 vs exact | speed-up | peak MiB | x raw vectors |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['size']:,} | {row['index']} | {row['insert_per_s']:,} | {row['p50_ms']} | {row['p95_ms']} | "
                     f"{row.get('recall_at_10', 1.0)} | {row.get('speedup', 1.0)} | {row['peak_mib']} | {row['memory_ratio']} |")
    args.output.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
