"""Pipeline benchmark: what the Jina flows cost over the bare models and index, measured in one run.

    python bench/pipeline_bench.py --sizes 1000 30000 --clients 1 4 16 --seconds 10

1. Indexing: photos/s and captions/s through the index flow, beside the bare offline backend encoding the same
   photos and captions with the same batch size in a fresh process (the ratio is the pipeline's overhead).
2. Querying: text queries through the REST API at 1, 4 and 16 concurrent clients (p50/p95/p99, queries/s), over
   collections of synthetic 384-d photo vectors (exact and HNSW, 1 and 3 shards), beside the bare in-process
   encode + search time on the same collection; peak resident memory (VmHWM) of every flow process.
Writes results/pipeline-bench.json and results/pipeline-bench.md.
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from load import TEXT_QUERIES, process_roles, run_load
from processes import descendants, memory_kib
from synthetic import collection_batches

from crossmodal.index import Record, VectorStore
from crossmodal.index.shards import SHARD_PREFIX, shard_of
from dataset import open_dataset
from serving.jobs.indexing import index_dataset
from serving.runtime.flows import FlowSettings, load_flow, running

DIM = 384


def bare_encoding(image_paths: list[str], captions: list[str], batch_size: int) -> dict:
    """In a fresh process (torch must not run in the process that forks the flows): the backend alone."""
    from PIL import Image

    from crossmodal.backends import create_backend

    backend = create_backend("offline")
    backend.encode_images([Image.open(image_paths[0]).convert("RGB")])  # load the models outside the timing
    backend.encode_texts(["warm up"])
    started = time.perf_counter()
    for start in range(0, len(image_paths), batch_size):
        backend.encode_images([Image.open(path).convert("RGB") for path in image_paths[start:start + batch_size]])
    image_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, len(captions), batch_size):
        backend.encode_texts(captions[start:start + batch_size])
    return {"images_per_s": len(image_paths) / image_seconds,
            "captions_per_s": len(captions) / (time.perf_counter() - started)}


def bare_query(folder: str, index_type: str, ef_search: int, queries: list[str]) -> dict:
    """Per-query encode + search in one process, the floor the REST path is compared with."""
    from crossmodal.backends import create_backend

    backend = create_backend("offline")
    store = VectorStore(folder, "image", "offline", DIM, index_type=index_type, ef_search=ef_search, read_only=True)
    store.search(backend.encode_texts(["warm up"]), 10)
    latencies = []
    for text in queries * 5:
        started = time.perf_counter()
        store.search(backend.encode_texts([text]), 10)
        latencies.append(time.perf_counter() - started)
    return {"p50_ms": round(statistics.median(latencies) * 1000, 1)}


def in_child(function, *args):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def measure_indexing(workspace: Path, batch_size: int) -> dict:
    pairs = list(open_dataset("demo", workspace=workspace))
    started = time.perf_counter()
    with running(load_flow("index", FlowSettings(workspace=workspace, batch_size=batch_size))) as flow:
        ready = time.perf_counter()
        summary = index_dataset(flow, open_dataset("demo", workspace=workspace), workspace, batch_size)
    captions = [caption for pair in pairs for caption in pair.captions]
    bare = in_child(bare_encoding, [str(pair.image_path) for pair in pairs], captions, batch_size)
    flow_rate = summary.images / summary.seconds
    return {"photos": summary.images, "captions": summary.captions, "flow_start_s": round(ready - started, 1),
            "flow_photos_and_captions_s": round(summary.seconds, 2), "flow_photos_per_s": round(flow_rate, 2),
            "bare_images_per_s": round(bare["images_per_s"], 2),
            "bare_captions_per_s": round(bare["captions_per_s"], 1),
            "note": "the flow encodes photos and captions concurrently in two encoders; bare does one after the other"}


def build_collection(root: Path, size: int, shards: int, index_type: str) -> Path:
    """A workspace whose photo index holds `size` synthetic vectors, partitioned as the indexers would."""
    folder = root / "image_index"
    stores = [VectorStore(folder / f"{SHARD_PREFIX}{k}" if shards > 1 else folder, "image", "offline", DIM,
                          index_type=index_type) for k in range(shards)]
    if shards > 1:
        (folder / "shards.json").write_text(json.dumps({"shards": shards}) + "\n")
    for start, vectors in collection_batches(size, DIM):
        ids = [f"img-synthetic-{start + n}" for n in range(len(vectors))]
        for k, store in enumerate(stores):
            mine = [n for n, doc_id in enumerate(ids) if shard_of(doc_id, shards) == k]
            store.add([Record(id=ids[n], modality="image", pair_id=ids[n]) for n in mine], vectors[mine])
    for store in stores:
        store.close()
    return folder


def peak_memory_mib(roles: dict[int, str]) -> dict[str, float]:
    """Peak resident memory (VmHWM) of each flow process so far, by the deployment it serves."""
    peaks = {}
    for pid, role in roles.items():
        if kib := memory_kib(pid):
            peaks[role] = round(kib["peak"] / 1024, 1)
    return peaks


def measure_queries(size: int, index_type: str, shards: int, clients: list[int], seconds: float,
                    ef_search: int) -> dict:
    with tempfile.TemporaryDirectory() as root:
        # In a child: FAISS's OpenMP threads in this process would hang the flow processes it forks next.
        folder = in_child(build_collection, Path(root), size, shards, index_type)
        bare = in_child(bare_query, str(folder), index_type, ef_search, TEXT_QUERIES) if shards == 1 else None
        port = int(os.environ.get("BENCH_PORT", "45680"))
        settings = FlowSettings(workspace=Path(root), port=port, shards=shards, index_type=index_type,
                                ef_search=ef_search)
        bodies = [{"text": text, "limit": 10} for text in TEXT_QUERIES]
        rows = []
        with running(load_flow("query", settings)) as flow:
            roles = process_roles(flow, descendants(os.getpid()))
            asyncio.run(run_load(f"http://127.0.0.1:{port}", bodies, 1, 2.0, 50))  # warm up
            for count in clients:
                result = asyncio.run(run_load(f"http://127.0.0.1:{port}", bodies, count, seconds, 100_000))
                rows.append(result)
            memory = peak_memory_mib(roles)
    return {"size": size, "index": index_type, "shards": shards, "bare": bare, "rest": rows,
            "peak_mib_per_process": memory}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 30000])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--ef-search", type=int, default=64, help="HNSW candidates per query")
    parser.add_argument("--output", type=Path, default=Path("results/pipeline-bench"))
    args = parser.parse_args()

    workspace = Path(tempfile.mkdtemp(prefix="bench-index-"))
    try:
        indexing = measure_indexing(workspace, args.batch_size)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    print(json.dumps(indexing), flush=True)
    queries = []
    for size in args.sizes:
        for index_type in ("flat", "hnsw"):
            for shards in (1, 3):
                row = measure_queries(size, index_type, shards, args.clients, args.seconds, args.ef_search)
                print(json.dumps(row), flush=True)
                queries.append(row)
    machine = {"cpu_count": os.cpu_count(), "python": sys.version.split()[0]}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(
        json.dumps({"machine": machine, "indexing": indexing, "queries": queries}, indent=2) + "\n")
    lines = [f"Indexing the demo set (batch {args.batch_size}): flow {indexing['flow_photos_per_s']} photos/s "
             f"(photos and captions together, {indexing['flow_photos_and_captions_s']} s for "
             f"{indexing['photos']} photos "
             f"and {indexing['captions']} captions); bare backend {indexing['bare_images_per_s']} photos/s and "
             f"{indexing['bare_captions_per_s']} captions/s.", "",
             "| photos indexed | index | shards | bare encode+search p50 ms | clients | REST p50 ms | p95 ms | p99 ms "
             "| queries/s | errors |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in queries:
        bare = row["bare"]["p50_ms"] if row["bare"] else "-"
        for rest in row["rest"]:
            lines.append(f"| {row['size']:,} | {row['index']} | {row['shards']} | {bare} | {rest['clients']} | "
                         f"{rest['p50_ms']} | {rest['p95_ms']} | {rest['p99_ms']} | {rest['qps']} | {rest['errors']} |")
    args.output.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
