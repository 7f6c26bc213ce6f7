"""What the offline model's real towers reach against torch when exported to ONNX (fp32 and int8), under the numeric
setup of this process's environment (OPENBLAS_*, OMP_NUM_THREADS, CROSSMODAL_ONNX_OPTIMIZATION, the CPU affinity).

    .venv/bin/python tests/numerics/measure_towers.py [--label NAME] [--threads N]

For each tower (MiniLM text, EfficientNet-Lite0 image) and variant (onnx = fp32, onnx-int8) it exports into an empty
cache folder with the product's own export and check inputs (onnx_runtime.text_batches / image_check_inputs), with
the tolerance check recording the worst row cosine instead of refusing, and prints one JSON line per tower and
variant: the min cosine over the check inputs (what MIN_COSINE / MIN_COSINE_INT8 are compared with), the max abs
difference, and the product's current tolerance. The numbers in docs/numerics.md come from this script.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import torch

    from crossmodal.backends.models import offline, onnx_runtime

    measured: dict[str, float] = {}

    def recording_check(module, tower, check_inputs, min_cosine):
        worst, max_abs = 1.0, 0.0
        for inputs in check_inputs:
            with torch.inference_mode():
                expected = module(*(inputs[name] for name in tower.input_names)).float().numpy()
            actual = tower(**{name: tensor.numpy() for name, tensor in inputs.items()})
            worst = min(worst, float(onnx_runtime.row_cosines(expected, actual).min()))
            max_abs = max(max_abs, float(np.abs(expected - actual).max()))
        measured.update(min_cosine=worst, max_abs_diff=max_abs, tolerance=min_cosine)

    onnx_runtime._check = recording_check  # record, never refuse: the point is the number
    setup = {name: os.environ.get(name) for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
                                                     "OPENBLAS_NUM_THREADS", onnx_runtime.OPTIMIZATION_ENV)}
    setup["cpus"] = onnx_runtime.default_threads()
    for runtime in ("onnx", "onnx-int8"):
        for tower, build in (("minilm-text", offline.MiniLMTextEncoder),
                             ("efficientnet-lite0-image", offline.EfficientNetLite0Classifier)):
            measured.clear()
            with tempfile.TemporaryDirectory() as cache:
                encoder = build(runtime=runtime, threads=args.threads, cache_dir=cache)
                assert encoder.onnx is not None and measured, f"{tower} {runtime}: no export measured"
            print(json.dumps({"label": args.label, "tower": tower, "runtime": runtime,
                              "min_cosine": round(measured["min_cosine"], 9),
                              "one_minus_cosine": float(f"{1 - measured['min_cosine']:.3g}"),
                              "max_abs_diff": float(f"{measured['max_abs_diff']:.3g}"),
                              "tolerance": measured["tolerance"], "setup": setup}), flush=True)


if __name__ == "__main__":
    main()
