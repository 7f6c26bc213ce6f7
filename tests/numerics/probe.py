"""One line: what a numeric setup gives this process (tests/numerics/run prints it before each setup's unit lane):
the BLAS libraries' core types (numpy's and FAISS's bundled OpenBLAS), the CPUs it may use (the product's default
thread count) and ONNX Runtime's graph optimisation level (CROSSMODAL_ONNX_OPTIMIZATION)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import faiss  # noqa: E402,F401  (loads its OpenBLAS, so that threadpoolctl sees it)
import numpy  # noqa: E402,F401
from threadpoolctl import threadpool_info  # noqa: E402

from crossmodal.backends.models import onnx_runtime  # noqa: E402

blas = ", ".join(sorted({f"{info['prefix']} {info.get('architecture')} ({info['num_threads']} threads)"
                         for info in threadpool_info() if info["user_api"] == "blas"}))
level = onnx_runtime.session_options().graph_optimization_level
print(f"    probe: {blas}; CPUs the product may use: {onnx_runtime.default_threads()}; ONNX Runtime {level.name}")
