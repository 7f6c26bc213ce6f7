"""int8 against fp32 for the offline model's two towers, measured in one run (issue 25, item 1).

    python bench/int8_bench.py [--rounds 10] [--queries 200] [--batch 16] [--threads N] [--no-static]

What it compares, all in one process on the same inputs, the variants interleaved round by round so that a busy
machine slows them alike:
- fp32: the product's default (`--runtime onnx`).
- image int8: `--image-runtime onnx-int8`, the product's int8: onnxruntime's dynamic quantisation (no calibration
  set: weights quantised, activations quantised on the fly) of the MatMul/Gemm weights. Of EfficientNet-Lite0 that
  is the classifier's Gemm only; its convolutions stay float.
- text int8 as the product runs it (`--text-runtime onnx-int8`): MiniLM's int8 export fails its check
  (MIN_COSINE_INT8), so the tower runs in torch; the bench records the tower's runtime and the warning.
- text int8 forced: the same export with the check disabled (MIN_COSINE_INT8 set to -1 in this process, into a
  cache folder of its own that is deleted afterwards), to measure what int8 MiniLM would cost and give.
- image static int8 (bench only, not in the product; --no-static skips it): onnxruntime's static QDQ quantisation
  of the fp32 export (the convolutions but the first and last three), calibrated on the caption-less CALIBRATION
  photos and crops and mirrors of them (bench/relevance/caption_less_calibration.json: Debian packages,
  scikit-image, PIL compositions), which are neither demo photos nor held-out ones (`caption_less_data.overlaps()`
  is run and recorded). Its cosine on the product's check inputs says whether the product's check would accept it.

Measured: photos/s of the image tower (the bare session on the preprocessed demo and held-out photos, and the
backend's encode_images of the demo photos, preprocessing included; batches of --batch), query encode ms of the
text tower (one query per call, p50/p95 over --queries calls), the towers' cosines against fp32, top-10 agreement
of each variant's rankings with fp32's (|top-10 ∩ top-10| / 10, averaged over queries) on the demo's text->image
queries (its 57 captions and the held-out queries of bench/relevance/heldout_queries.json against the 19 photos),
its photo->caption queries (19 photos against the 57 captions) and the caption-less held-out set
(bench/relevance/caption_less_heldout.json: its 35 queries against its 16 photos from Debian packages, built by
`caption_less_data.build_heldout`), and R@1/R@5 on the demo (captions -> photos, photos -> captions; VSE++'s
conventions) and on the held-out set's answerable queries, with the queries whose rank changed.
Prints a table and writes results/int8.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from caption_less_data import CALIBRATION, HELDOUT, available, build_heldout, overlaps, package_photo, read  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

from crossmodal.backends import create_backend  # noqa: E402
from crossmodal.backends.models import onnx_runtime  # noqa: E402
from crossmodal.backends.models.offline import EfficientNetLite0Classifier, preprocess_image  # noqa: E402
from crossmodal.evaluation.metrics import first_relevant_rank, recall_summary  # noqa: E402
from dataset import open_dataset  # noqa: E402

INT8 = "onnx-int8"
AGREEMENT_TARGET = 0.9  # issue 25: top-10 agreement with fp32 >= 0.9 ...
RECALL_POINTS = 1.0  # ... and R@1/R@5 within 1 point
RECALL_SETS = ("demo captions->photos", "demo photos->captions", "held-out text->image")
TEXT_VARIANTS = ("fp32 text", "int8 text (forced)", "int8 text (product: refused, torch)")


@contextmanager
def captured_warnings(logger: str) -> Iterator[list[str]]:
    """The warnings `logger` emits inside the block (the export's refusal message)."""
    messages: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger(logger).addHandler(handler)
    try:
        yield messages
    finally:
        logging.getLogger(logger).removeHandler(handler)


def timed(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


FLOAT_FIRST_CONVS, FLOAT_LAST_CONVS = 3, 3  # kept float in the static variant: measured as the sensitive layers


def calibration_photos() -> list[Image.Image]:
    """The caption-less calibration photos and four variants of each (a mirror, the centre, two corners): 75 images
    for the activation ranges, none of them a demo or held-out photo."""
    photos = [package_photo(photo["source"]) for photo in read(CALIBRATION)["photos"].values()]
    variants = []
    for photo in photos:
        width, height = photo.size
        variants += [photo, ImageOps.mirror(photo),
                     photo.crop((width // 4, height // 4, 3 * width // 4, 3 * height // 4)),
                     photo.crop((0, 0, width // 2, height // 2)), photo.crop((width // 2, height // 2, width, height))]
    return variants


def static_int8(fp32_path: Path, folder: Path, threads: int | None) -> onnx_runtime.OnnxTower:
    """EfficientNet-Lite0 statically quantised to int8 (QDQ, per-channel weights, uint8 activations, MinMax ranges
    from `calibration_photos`): the variant that quantises the convolutions, measured here only. The first and last
    three convolutions, the Gemm and the softmax stay float: quantising them too (tried) drops the min cosine of
    the probabilities on the demo photos from 0.93 to 0.80-0.85 for ~20 % more speed."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pixels = [preprocess_image(photo)[None] for photo in calibration_photos()]

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter({"pixels": array} for array in pixels)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    prepared, quantised = folder / "image-prepared.onnx", folder / "image-static-int8.onnx"
    quant_pre_process(str(fp32_path), str(prepared))
    nodes = onnx.load(str(prepared)).graph.node
    convs = [node.name for node in nodes if node.op_type == "Conv"]
    keep_float = [*convs[:FLOAT_FIRST_CONVS], *convs[-FLOAT_LAST_CONVS:],
                  *(node.name for node in nodes if node.op_type in ("Gemm", "Softmax"))]
    quantize_static(str(prepared), str(quantised), Photos(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=keep_float)
    return onnx_runtime.OnnxTower(quantised, threads)


def top_k_agreement(reference: np.ndarray, scores: np.ndarray, k: int = 10) -> float:
    """Mean share of the reference's top-k (per row of scores) that the other ranking also has in its top-k."""
    k = min(k, reference.shape[1])
    first = np.argsort(-reference, axis=1, kind="stable")[:, :k]
    second = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return round(float(np.mean([len(set(a) & set(b)) / k for a, b in zip(first, second)])), 4)


def ranks(scores: np.ndarray, relevant: Sequence[set[int]]) -> list[int | None]:
    order = np.argsort(-scores, axis=1, kind="stable")
    return [first_relevant_rank([int(i) for i in row], wanted) for row, wanted in zip(order, relevant)]


def recalls(scores: np.ndarray, relevant: Sequence[set[int]]) -> dict[str, Any]:
    """R@1/R@5 and each query's rank (to name the queries whose rank int8 changes)."""
    found = ranks(scores, relevant)
    summary = recall_summary(found, retrieved=scores.shape[1], ks=(1, 5))
    return {"R@1": summary["R@1"], "R@5": summary["R@5"], "ranks": found}


def load_data(workspace: Path) -> dict[str, Any]:
    """Demo photos, captions and text->image queries; the caption-less held-out photos and queries."""
    pairs = list(open_dataset("demo", workspace=workspace / "demo"))
    photos = [Image.open(pair.image_path).convert("RGB") for pair in pairs]
    stems = [Path(pair.image_path).stem for pair in pairs]
    captions = [caption for pair in pairs for caption in pair.captions]
    caption_photo = [index for index, pair in enumerate(pairs) for _ in pair.captions]
    queries = read(ROOT / "bench" / "relevance" / "heldout_queries.json")
    demo_queries = [*captions, *(q["text"] for q in queries["answerable"]), *queries["unanswerable"]]
    folder = workspace / "heldout"
    files = build_heldout(folder)
    heldout = read(HELDOUT)
    held_queries = [q["text"] for q in heldout["queries"]] + list(heldout["absent"])
    return {"photos": photos, "stems": stems, "captions": captions, "caption_photo": caption_photo,
            "demo_queries": demo_queries, "held_photos": [Image.open(folder / f).convert("RGB") for f in files],
            "held_queries": held_queries,
            "held_relevant": [{files.index(p) for p in q["photos"]} for q in heldout["queries"]]}


def retrieval(image_backend: Any, text_backend: Any, data: dict[str, Any], reference: dict | None) -> dict:
    """Scores, R@1/R@5 and (against `reference`, fp32's scores) top-10 agreement of one tower combination."""
    photos = image_backend.encode_images(data["photos"])
    held_photos = image_backend.encode_images(data["held_photos"])
    captions = text_backend.encode_texts(data["captions"])
    scores = {"demo text->image": text_backend.encode_texts(data["demo_queries"]) @ photos.T,
              "demo image->text": photos @ captions.T,
              "held-out text->image": text_backend.encode_texts(data["held_queries"]) @ held_photos.T}
    captions_of = [{i for i, owner in enumerate(data["caption_photo"]) if owner == p} for p in range(len(photos))]
    answered = len(data["held_relevant"])
    result: dict[str, Any] = {
        "demo captions->photos": recalls(captions @ photos.T, [{owner} for owner in data["caption_photo"]]),
        "demo photos->captions": recalls(scores["demo image->text"], captions_of),
        "held-out text->image": recalls(scores["held-out text->image"][:answered], data["held_relevant"]),
        "scores": scores, "vectors": {"photos": photos, "captions": captions}}
    if reference is not None:
        result["top10_agreement"] = {name: top_k_agreement(reference["scores"][name], value)
                                     for name, value in scores.items()}
        result["cosine_vs_fp32"] = {name: round(float(onnx_runtime.row_cosines(reference["vectors"][name],
                                                                                value).min()), 6)
                                    for name, value in result["vectors"].items()}
    return result


def verdict(row: dict, fp32: dict) -> dict:
    """Whether a variant keeps retrieval by the issue's rule: every top-10 agreement >= 0.9 and every R@1/R@5 within
    1 point of fp32's."""
    deltas = {f"{name} {k}": round(row[name][k] - fp32[name][k], 2)
              for name in RECALL_SETS for k in ("R@1", "R@5")}
    keeps = (all(value >= AGREEMENT_TARGET for value in row["top10_agreement"].values())
             and all(abs(delta) <= RECALL_POINTS for delta in deltas.values()))
    changes = {name: [[query, before, after] for query, (before, after)
                      in enumerate(zip(fp32[name]["ranks"], row[name]["ranks"])) if before != after]
               for name in RECALL_SETS}
    return {"recall_deltas_points": deltas, "rank_changes_query_fp32_int8": changes, "keeps_retrieval": keeps}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: all CPUs)")
    parser.add_argument("--no-static", action="store_true", help="skip the bench-only static int8 image tower")
    parser.add_argument("--output", default=str(ROOT / "results" / "int8.json"))
    args = parser.parse_args()
    if not available(HELDOUT):
        sys.exit(f"the held-out photos are missing: apt-get install {' '.join(read(HELDOUT)['packages'])}")
    started = time.time()
    with tempfile.TemporaryDirectory() as temporary:
        workspace, cache = Path(temporary), Path(temporary) / "cache"
        data = load_data(workspace)
        options = {"cache_dir": cache, "threads": args.threads}
        fp32 = create_backend("offline", runtime="onnx", **options)
        fp32.encode_images(data["photos"][:1])  # both towers load; the class prompts are cached by the fp32 text tower
        image8 = create_backend("offline", towers=("image",), image_runtime=INT8, **options)
        image8.encode_images(data["photos"][:1])
        with captured_warnings("crossmodal.onnx") as refusal:
            text8_product = create_backend("offline", towers=("text",), text_runtime=INT8, **options)
            text8_product.encode_texts(["a photo"])
        original = onnx_runtime.MIN_COSINE_INT8
        onnx_runtime.MIN_COSINE_INT8 = -1.0  # forced: any int8 export passes, into a cache folder of its own
        try:
            text8 = create_backend("offline", towers=("text",), text_runtime=INT8,
                                   cache_dir=workspace / "forced", threads=args.threads)
            text8.encode_texts(["a photo"])
        finally:
            onnx_runtime.MIN_COSINE_INT8 = original
        towers = {"fp32 image": fp32._classifier.onnx, "int8 image": image8._classifier.onnx}
        static_check: dict[str, Any] = {"skipped": "--no-static"}
        image_backends: dict[str, Any] = {"int8 image (dynamic)": image8}
        if not args.no_static and available(CALIBRATION):
            shared = overlaps()
            static = static_int8(towers["fp32 image"].path, workspace, args.threads)
            static_backend = create_backend("offline", towers=("image",), runtime="onnx", **options)
            static_backend.encode_images(data["photos"][:1])
            static_backend._classifier.onnx = static  # bench only: the product has no static int8
            towers["static int8 image"] = static
            image_backends["int8 image (static, bench only)"] = static_backend
            inputs = onnx_runtime.image_check_inputs(EfficientNetLite0Classifier.preprocess)
            checks = [check["pixels"].numpy() for check in inputs]
            cosines = [float(onnx_runtime.row_cosines(towers["fp32 image"](pixels=c), static(pixels=c)).min())
                       for c in checks]
            static_check = {"calibration": "bench/relevance/caption_less_calibration.json photos, mirrors, crops",
                            "calibration_overlaps_reported_data": shared,
                            "check_min_cosine": round(min(cosines), 5), "MIN_COSINE_INT8": original,
                            "product_check": "passes" if min(cosines) >= original else "refused"}

        pixels = np.stack([preprocess_image(photo) for photo in data["photos"] + data["held_photos"]])
        batches = [pixels[i: i + args.batch] for i in range(0, len(pixels), args.batch)]
        photo_batches = [data["photos"][i: i + args.batch] for i in range(0, len(data["photos"]), args.batch)]
        encode_backends = {"fp32 image": fp32, "int8 image": image8, **(
            {"static int8 image": image_backends["int8 image (static, bench only)"]} if "static int8 image" in towers
            else {})}
        tower_s = {name: float("inf") for name in towers}
        encode_s = {name: float("inf") for name in towers}
        for _ in range(args.rounds):
            for name, tower in towers.items():
                tower_s[name] = min(tower_s[name], timed(lambda t=tower: [t(pixels=b) for b in batches]))
                encode_s[name] = min(encode_s[name], timed(
                    lambda b=encode_backends[name]: [b.encode_images(batch) for batch in photo_batches]))
        # The two ONNX towers interleaved; torch (the refused export's fallback) after them, on its own: its
        # OpenMP threads spin after each call and would slow whatever ran next.
        text_backends = dict(zip(TEXT_VARIANTS, (fp32, text8, text8_product)))
        latencies: dict[str, list[float]] = {name: [] for name in TEXT_VARIANTS}
        queries = data["demo_queries"]
        for group in (TEXT_VARIANTS[:2], TEXT_VARIANTS[2:]):
            for index in range(args.queries):
                for name in group:
                    query = [queries[index % len(queries)]]
                    latencies[name].append(1000 * timed(lambda b=text_backends[name], q=query: b.encode_texts(q)))

        reference = retrieval(fp32, fp32, data, None)
        combinations = {"fp32": (fp32, fp32), **{name: (backend, fp32) for name, backend in image_backends.items()},
                        "int8 text (forced)": (fp32, text8)}
        rows = {"fp32": reference}
        for name, (image_backend, text_backend) in list(combinations.items())[1:]:
            rows[name] = retrieval(image_backend, text_backend, data, reference)
        runtimes = {"int8 image": image8.tower_runtimes(), "int8 text (product)": text8_product.tower_runtimes(),
                    "int8 text (forced)": text8.tower_runtimes()}

    speed = {name: {"tower_photos_per_s": round(len(pixels) / tower_s[name], 1),
                    "encode_photos_per_s": round(len(data["photos"]) / encode_s[name], 1)} for name in towers}
    for name in towers:
        speed[name]["tower_ratio_vs_fp32"] = round(tower_s["fp32 image"] / tower_s[name], 2)
        speed[name]["encode_ratio_vs_fp32"] = round(encode_s["fp32 image"] / encode_s[name], 2)
    query_ms = {name: {"p50": round(statistics.median(ms), 2), "p95": round(sorted(ms)[int(0.95 * (len(ms) - 1))], 2)}
                for name, ms in latencies.items()}
    for name in query_ms:
        query_ms[name]["p50_ratio_vs_fp32"] = round(query_ms["fp32 text"]["p50"] / query_ms[name]["p50"], 2)
    retrieval_rows = {name: {key: value for key, value in row.items() if key not in ("scores", "vectors")}
                      for name, row in rows.items()}
    for name, row in retrieval_rows.items():
        if name != "fp32":
            row.update(verdict(row, retrieval_rows["fp32"]))
    for row in retrieval_rows.values():
        for name in RECALL_SETS:
            row[name] = {key: value for key, value in row[name].items() if key != "ranks"}
    report = {
        "what": "offline model (EfficientNet-Lite0 + ConSE, all-MiniLM-L6-v2): int8 against fp32 ONNX, one run",
        "quantisation": "product int8 = onnxruntime dynamic quantisation of MatMul/Gemm weights (no calibration "
                        "set); static int8 (bench only) calibrated on the caption-less calibration photos",
        "targets": {"top10_agreement": f">= {AGREEMENT_TARGET}", "recall": f"within {RECALL_POINTS} point"},
        "tower_runtimes": runtimes, "text_int8_refusal": refusal, "static_int8_check": static_check,
        "image_speed": speed, "query_encode_ms": query_ms, "retrieval": retrieval_rows,
        "tower_photos": len(pixels), "encode_photos": len(data["photos"]), "batch": args.batch,
        "rounds": args.rounds, "queries": args.queries,
        "held_out": {"photos": len(data["held_photos"]), "queries": len(data["held_queries"]),
                     "answerable": len(data["held_relevant"])},
        "onnx_threads": args.threads or onnx_runtime.default_threads(), "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2), "machine": cpu_model(),
        "seconds": round(time.time() - started, 1), "commit": git_commit(),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print(f"wrote {args.output}")


def cpu_model() -> str:
    """The CPU's model name (Linux), else the architecture: int8 kernels differ by instruction set."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def git_commit() -> str:
    """The commit the numbers were measured at (with "+changes" when the work tree differs from it)."""
    import subprocess

    def git(*command: str) -> str:
        return subprocess.run(["git", *command], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--porcelain", "--", "crossmodal")
                                                   else "")


def print_report(report: dict) -> None:
    print(f"tower: {report['tower_photos']} demo and held-out photos preprocessed, encode: "
          f"{report['encode_photos']} demo photos; batches of {report['batch']}, best of {report['rounds']} rounds; "
          f"{report['queries']} single queries; {report['cpus']} CPUs, load {report['load_average_1m']}")
    for name, row in report["image_speed"].items():
        print(f"{name:<20} tower {row['tower_photos_per_s']:>7} photos/s (x{row['tower_ratio_vs_fp32']})  "
              f"encode {row['encode_photos_per_s']:>7} photos/s (x{row['encode_ratio_vs_fp32']})")
    for name, row in report["query_encode_ms"].items():
        print(f"{name:<36} query p50 {row['p50']:>6} ms  p95 {row['p95']:>6} ms (x{row['p50_ratio_vs_fp32']})")
    print(f"tower runtimes: {report['tower_runtimes']}; refusal: {report['text_int8_refusal']}")
    print(f"static int8 check: {report['static_int8_check']}")
    for name, row in report["retrieval"].items():
        recall = "  ".join(f"{key} {row[key]['R@1']}/{row[key]['R@5']}"
                           for key in ("demo captions->photos", "demo photos->captions", "held-out text->image"))
        extra = (f"  top-10 agreement {row['top10_agreement']}  cosine {row['cosine_vs_fp32']}  "
                 f"keeps retrieval: {row['keeps_retrieval']}") if "top10_agreement" in row else ""
        print(f"{name:<32} R@1/R@5 {recall}{extra}")


if __name__ == "__main__":
    main()
