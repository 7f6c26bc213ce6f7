"""Encoder benchmark: the offline model's towers in torch and in ONNX Runtime, on the same inputs, in one process.

    python bench/encoder_bench.py [--batch 16] [--rounds 3] [--queries 200] [--int8] [--threads N]

Inputs: the 19 demo photos and crops, flips and rescalings of them (48 images, 3 batches of 16 by default) and
their 57 captions. For each runtime (torch, onnx, and onnx-int8 with --int8) it measures, through the backend's own
encode_images / encode_texts (preprocessing and tokenisation included, as a flow's encoder runs them):
- images/s on batches of --batch images and texts/s on batches of --batch captions: the best of --rounds rounds,
  the runtimes interleaved round by round so that a busy machine slows them alike;
- single-query text latency (one caption per call): p50 and p95 over --queries calls;
- the first use (load, export into an empty cache folder, first encode of each tower; the class prompt cache is
  filled beforehand) and the same from the cache;
- against torch: max abs difference and min cosine of the image and text vectors, and whether the demo's
  text -> image ranking (57 captions x 19 photos) is identical.
Prints a table and writes results/encoder_bench.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def demo_inputs(workspace: Path, count: int):
    from PIL import Image, ImageOps

    from dataset import open_dataset

    pairs = list(open_dataset("demo", workspace=workspace))
    photos = [Image.open(pair.image_path).convert("RGB") for pair in pairs]
    captions = [caption for pair in pairs for caption in pair.captions]
    variants = list(photos)
    for index, photo in enumerate(photos * 4):
        if len(variants) >= count:
            break
        width, height = photo.size
        kind = index // len(photos)
        if kind == 0:
            variants.append(ImageOps.mirror(photo))
        elif kind == 1:
            variants.append(photo.crop((width // 8, height // 8, width - width // 8, height - height // 8)))
        else:
            variants.append(photo.resize((max(32, width // 2), max(32, height * 3 // 4))))
    return photos, captions, variants[:count]


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime threads (default: all)")
    parser.add_argument("--int8", action="store_true", help="also measure the opt-in onnx-int8 runtime")
    parser.add_argument("--output", default=str(ROOT / "results" / "encoder_bench.json"))
    args = parser.parse_args()

    import torch

    from crossmodal.backends import create_backend
    from crossmodal.backends.models.onnx_runtime import default_threads, row_cosines

    runtimes = ["torch", "onnx"] + (["onnx-int8"] if args.int8 else [])
    with tempfile.TemporaryDirectory() as temporary:
        photos, captions, images = demo_inputs(Path(temporary) / "ws", args.images)
        cache = Path(temporary) / "cache"
        backends, load = {}, {}
        create_backend("offline", cache_dir=cache).encode_images(images[:1])  # fills the prompt cache, shared by all
        for runtime in runtimes:
            # First use: export (onnx) into the empty cache; then a second backend loads from the cache.
            seconds, backend = timed(lambda r=runtime: create_backend("offline", cache_dir=cache, runtime=r,
                                                                      threads=args.threads))
            first, _ = timed(lambda b=backend: (b.encode_texts(captions[:1]), b.encode_images(images[:1])))
            cached, backend = timed(lambda r=runtime: create_backend("offline", cache_dir=cache, runtime=r,
                                                                     threads=args.threads))
            cached_first, _ = timed(lambda b=backend: (b.encode_texts(captions[:1]), b.encode_images(images[:1])))
            backends[runtime] = backend
            load[runtime] = {"first_use_s": round(seconds + first, 2), "from_cache_s": round(cached + cached_first, 2)}
        image_batches = [images[i: i + args.batch] for i in range(0, len(images), args.batch)]
        text_batches = [captions[i: i + args.batch] for i in range(0, len(captions), args.batch)]
        best = {runtime: {"images": float("inf"), "texts": float("inf")} for runtime in runtimes}
        for _ in range(args.rounds):
            for runtime, backend in backends.items():
                seconds, _ = timed(lambda b=backend: [b.encode_images(batch) for batch in image_batches])
                best[runtime]["images"] = min(best[runtime]["images"], seconds)
                seconds, _ = timed(lambda b=backend: [b.encode_texts(batch) for batch in text_batches])
                best[runtime]["texts"] = min(best[runtime]["texts"], seconds)
        latencies: dict[str, list[float]] = {runtime: [] for runtime in runtimes}
        for index in range(args.queries):
            for runtime, backend in backends.items():
                latencies[runtime].append(timed(backend.encode_texts, [captions[index % len(captions)]])[0])

        reference = backends["torch"]
        torch_images, torch_texts = reference.encode_images(images), reference.encode_texts(captions)
        torch_ranking = np.argsort(-(reference.encode_texts(captions) @ reference.encode_images(photos).T), axis=1)
        results = {}
        for runtime, backend in backends.items():
            vectors_images, vectors_texts = backend.encode_images(images), backend.encode_texts(captions)
            ranking = np.argsort(-(vectors_texts @ backend.encode_images(photos).T), axis=1)
            ms = sorted(1000 * seconds for seconds in latencies[runtime])
            results[runtime] = {
                "images_per_s": round(len(images) / best[runtime]["images"], 1),
                "texts_per_s": round(len(captions) / best[runtime]["texts"], 1),
                "text_query_p50_ms": round(statistics.median(ms), 2),
                "text_query_p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
                **load[runtime],
                "image_max_abs_diff": float(np.abs(vectors_images - torch_images).max()),
                "image_min_cosine": float(row_cosines(torch_images, vectors_images).min()),
                "text_max_abs_diff": float(np.abs(vectors_texts - torch_texts).max()),
                "text_min_cosine": float(row_cosines(torch_texts, vectors_texts).min()),
                "demo_text_to_image_ranking_identical": bool((ranking == torch_ranking).all()),
                "demo_top1_agreement": float((ranking[:, 0] == torch_ranking[:, 0]).mean()),
            }
    report = {
        "what": "offline model (EfficientNet-Lite0 + ConSE, all-MiniLM-L6-v2), backend encode incl. preprocessing",
        "batch": args.batch, "images": len(images), "texts": len(captions), "queries": args.queries,
        "rounds": args.rounds, "torch_threads": torch.get_num_threads(),
        "onnx_intra_op_threads": args.threads or default_threads(),
        "cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2), "machine": platform.processor()
        or platform.machine(), "results": results,
    }
    for runtime in runtimes[1:]:
        report[f"speedup_{runtime}"] = {
            "images": round(results[runtime]["images_per_s"] / results["torch"]["images_per_s"], 2),
            "texts": round(results[runtime]["texts_per_s"] / results["torch"]["texts_per_s"], 2),
            "text_query_p50": round(results["torch"]["text_query_p50_ms"] / results[runtime]["text_query_p50_ms"], 2),
        }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{len(images)} images in batches of {args.batch}, {len(captions)} captions, {args.queries} single "
          f"queries; {report['cpus']} CPUs, load average {report['load_average_1m']}")
    header = (f"{'runtime':<10} {'img/s':>7} {'txt/s':>7} {'q p50 ms':>9} {'q p95 ms':>9} {'1st use s':>9} "
              f"{'load s':>7} {'img maxabs':>11} {'img mincos':>11} {'txt maxabs':>11} {'txt mincos':>11} ranking")
    print(header)
    for runtime, row in results.items():
        print(f"{runtime:<10} {row['images_per_s']:>7} {row['texts_per_s']:>7} {row['text_query_p50_ms']:>9} "
              f"{row['text_query_p95_ms']:>9} {row['first_use_s']:>9} {row['from_cache_s']:>7} "
              f"{row['image_max_abs_diff']:>11.2e} {row['image_min_cosine']:>11.7f} {row['text_max_abs_diff']:>11.2e} "
              f"{row['text_min_cosine']:>11.7f} "
              f"{'identical' if row['demo_text_to_image_ranking_identical'] else 'differs'}")
    for runtime in runtimes[1:]:
        print(f"{runtime} vs torch: {report[f'speedup_{runtime}']}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
