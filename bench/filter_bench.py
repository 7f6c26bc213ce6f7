"""Filtered search latency (issue 11): a metadata filter at 1% and 50% selectivity beside the unfiltered search, on a
real store of 100,000 vectors, flat and HNSW, single queries as the indexer runs them.

    python bench/filter_bench.py                    # 100,000 x 384 (the offline model's dimension), 200 queries
    python bench/filter_bench.py -n 20000 --queries 50 --json results/filter_bench.json

The store is written once (SQLite, with the photo metadata index its triggers keep) and opened flat, then HNSW
(M 32, efSearch 64: the defaults). The filters:
- 1%: `folder` (one folder holds 1% of the photos: a range on photo_paths' primary key);
- 50%: `taken_after` (half of the photos are newer: a range on photo_metadata.taken);
- 50% + camera: `taken_after` and a `camera` substring that every camera in that half holds (the substring is
  matched in SQLite, `instr(lower(camera), ?)`, which no index serves: its cost over 50,000 rows).
Each line: p50 / p95 of `VectorStore.search_counted(query, 10, filter)` (allowed ids from SQLite, then FAISS with
the id selector, or HNSW's exact fallback) for a new search, the share of it spent selecting the ids in SQLite, the
p50 of the same search again (a next page: the store keeps the allowed ids of its last 8 filters per generation),
and recall@10 against numpy brute force over the allowed vectors (1.0: exact). HNSW's recall on these uniformly
random vectors is low with or without a filter (random 384-d data has no neighbourhood structure for the graph);
it says nothing about the filter, which only changes which vectors may be returned.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crossmodal.index import Record, VectorStore  # noqa: E402
from crossmodal.index.filtering import allowed_nums  # noqa: E402
from crossmodal.index.photo_filter import PhotoFilter, parse_photo_filter  # noqa: E402
from crossmodal.modality import IMAGE  # noqa: E402

FILTERS = {
    "unfiltered": None,
    "1% (folder)": {"folder": "one-percent"},
    "50% (taken_after)": {"taken_after": "2024-01-01"},
    "50% (taken_after + camera)": {"taken_after": "2024-01-01", "camera": "eos"},
}


def build(folder: Path, n: int, dim: int, seed: int) -> tuple[np.ndarray, list[dict]]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    metadata = []
    for i in range(n):
        folder_name = "one-percent" if i % 100 == 0 else f"f{i % 37}"
        newer = i % 2 == 0
        day = 1 + i % 28
        metadata.append({"path": f"{folder_name}/IMG_{i:06d}.jpg", "paths": [f"{folder_name}/IMG_{i:06d}.jpg"],
                         "taken": f"{2024 if newer else 2023}-0{1 + i % 9}-{day:02d}T12:00:00",
                         "camera": "Canon EOS R5" if newer else "NIKON D750", "lat": None, "lon": None})
    started = time.perf_counter()
    with VectorStore(folder, IMAGE, "bench", dim) as store:
        for start in range(0, n, 10_000):
            records = [Record(f"img-{i:016x}", IMAGE, pair_id=f"folder/bench/{metadata[i]['path']}",
                              dataset="folder", tags={"metadata": metadata[i]})
                       for i in range(start, min(n, start + 10_000))]
            store.add(records, vectors[start:start + len(records)])
    print(f"wrote {n:,} records with metadata in {time.perf_counter() - started:.1f} s", flush=True)
    return vectors, metadata


def measure(store: VectorStore, queries: np.ndarray, vectors: np.ndarray, metadata: list[dict],
            photo_filter: PhotoFilter | None) -> dict:
    allowed_mask = np.array([photo_filter is None or photo_filter.matches(meta) for meta in metadata])
    allowed_ids = np.flatnonzero(allowed_mask)
    times, cached_times, select_times, recalls = [], [], [], []
    for query in queries:
        if photo_filter is not None:
            with store._lock, store._reading() as conn:  # the SQLite share alone
                started = time.perf_counter()
                allowed_nums(conn, photo_filter)
                select_times.append(time.perf_counter() - started)
        store._allowed_cache.clear()  # a new search: its allowed ids are selected in SQLite
        started = time.perf_counter()
        hits, count = store.search_counted(query, 10, photo_filter)
        times.append(time.perf_counter() - started)
        started = time.perf_counter()  # its next page: the allowed ids are cached for the store's generation
        store.search_counted(query, 10, photo_filter)
        cached_times.append(time.perf_counter() - started)
        assert count == len(allowed_ids), (count, len(allowed_ids))
        scores = vectors[allowed_ids] @ query
        expected = {f"img-{i:016x}" for i in allowed_ids[np.argsort(-scores)[:10]]}
        recalls.append(len(expected & {hit.record.id for hit in hits[0]}) / len(expected))
    times_ms = sorted(t * 1000 for t in times)
    return {"allowed": int(len(allowed_ids)), "p50_ms": round(statistics.median(times_ms), 2),
            "p95_ms": round(times_ms[int(0.95 * (len(times_ms) - 1))], 2),
            "next_page_p50_ms": round(statistics.median(cached_times) * 1000, 2),
            "sqlite_ms": round(statistics.median(select_times) * 1000, 2) if select_times else 0.0,
            "recall_at_10": round(float(np.mean(recalls)), 4)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=100_000, help="vectors in the store")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    results: dict = {"n": args.n, "dim": args.dim, "queries": args.queries, "limit": 10, "rows": []}
    with tempfile.TemporaryDirectory(prefix="filter-bench-") as tmp:
        folder = Path(tmp) / "image_index"
        vectors, metadata = build(folder, args.n, args.dim, seed=1)
        queries = np.random.default_rng(2).normal(size=(args.queries, args.dim)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        print(f"\n{'index':6} {'filter':28} {'allowed':>8} {'p50 ms':>8} {'p95 ms':>8} {'SQLite ms':>10} "
              f"{'page 2 ms':>10} {'recall@10':>10}")
        for index_type in ("flat", "hnsw"):
            started = time.perf_counter()
            with VectorStore(folder, IMAGE, "bench", args.dim, index_type=index_type) as store:
                opened = time.perf_counter() - started
                for name, fields in FILTERS.items():
                    photo_filter = parse_photo_filter(fields) if fields else None
                    store.search_counted(queries[0], 10, photo_filter)  # warm
                    row = {"index": index_type, "filter": name, **measure(store, queries, vectors, metadata,
                                                                            photo_filter)}
                    results["rows"].append(row)
                    print(f"{index_type:6} {name:28} {row['allowed']:>8,} {row['p50_ms']:>8.2f} {row['p95_ms']:>8.2f} "
                          f"{row['sqlite_ms']:>10.2f} {row['next_page_p50_ms']:>10.2f} {row['recall_at_10']:>10.4f}",
                          flush=True)
            results[f"{index_type}_open_s"] = round(opened, 1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
