"""ONNX Runtime for the models' towers: exported on first use from the loaded torch weights, checked, cached.

`onnx_tower(...)` turns a tower's torch module (its forward from preprocessed tensors to the tower's output) into an
`OnnxTower` that runs the same computation in onnxruntime, or returns None (the caller keeps torch) when the export
fails or does not match torch.

- Export: `torch.onnx.export(..., dynamo=False)` (the TorchScript exporter), opset 17, dynamic batch axis (and the
  axes the caller names, e.g. the sequence length of a text tower).
- Equivalence check at export time: every fixed check input (the caller's: several text lengths including a one-word
  text and one at the maximum length, batches of 1 and more, images of several sizes and aspect ratios) runs through
  torch and through onnxruntime; every output row must have cosine >= MIN_COSINE (0.9999) with torch's. When it does
  not, or the export raises, ONE warning says so and the tower runs in torch; the bad export is never cached.
- Cache: `<cache>/onnx/<label>-<key>.onnx`, `<cache>` = the backend's cache_dir, else $CROSSMODAL_CACHE, else
  ~/.cache/crossmodal (where the offline model caches its class prompts). `key` = sha1 of the export code's version
  (EXPORT_VERSION), the opset, the variant (fp32 or int8), the module's structure (its repr: e.g. QuickGELU or GELU)
  and every tensor of its state dict (names, dtypes, shapes, bytes). So other weights give another file, a change of
  this code (bump EXPORT_VERSION) gives another file, and the same weights load the file without exporting again.
  A model whose weights are files on disk can key its towers by those files instead (`files_key`: the export
  version, the opset, the variant, the label and the sha1 of each file), and then load a cached tower with
  `cached_tower` before it loads anything of torch: this module imports torch only to export (the offline model's
  encoder processes never load torch once its two towers are exported).
  The file is written under a temporary name in the same folder and renamed (os.replace) only after the check
  passed, so a reader never sees half a file. The key is also stored in the model's metadata; a cached file that
  onnxruntime cannot load (truncated, damaged) or whose metadata does not match is exported again.
- Threads: `intra_op_num_threads` = the model's `threads` option when given (the index flow's encoders give half
  the CPUs each, the query flow's all of them: `serving.runtime.executor.encoder_threads`), else the CPUs this
  process may use (its affinity);
  `inter_op_num_threads` = 1 and sequential execution (the graphs are chains: nothing runs side by
  side); spinning is off, because the encoders of a flow share the same few cores with each other and with the
  gateway and indexers, and a spinning pool would take the CPU from them between requests. Measured on 2 shared
  cores, bare sessions: 2 threads against 1: MiniLM single query 3.2-4.2 ms against 4.2-4.4, EfficientNet-Lite0
  124-190 against 98-101 images/s; spinning on saves ~0.6-1.8 ms per query and nothing on batches of images.
- Graph optimisations: ONNX Runtime's level "all" by default; $CROSSMODAL_ONNX_OPTIMIZATION (disabled, basic,
  extended, all) sets another for every session, the export check's included (ONNX Runtime reads no environment
  variable for it). The cached file is the exported graph, not an optimised one, whatever the level. The unit lane
  runs under "disabled" too (tests/numerics/run; docs/numerics.md).
- Tolerances, measured on the real towers (docs/numerics.md, tests/numerics/measure_towers.py): fp32 exports of
  MiniLM and EfficientNet-Lite0 reach 1 - cosine <= 1e-11 against torch on the check inputs, under every numeric
  setup tried (OpenBLAS core types, graph optimisations off, 1 and 2 threads), so MIN_COSINE = 0.9999 has a margin
  of 1e7; int8: EfficientNet-Lite0 0.99975 (passes MIN_COSINE_INT8 = 0.99), MiniLM 0.907 (refused, as intended).
- int8 (`runtime="onnx-int8"`, opt-in; the offline model takes it per tower: `image_runtime`, `text_runtime`):
  onnxruntime's dynamic quantisation of the exported graph's MatMul/Gemm weights (activations quantised on the
  fly, per call: no calibration set); it is checked against torch with MIN_COSINE_INT8, not 0.9999. Measured on
  the offline model (bench/int8_bench.py, docs/models.md#int8): MiniLM's int8 fails its check and runs in torch
  (with the warning); EfficientNet-Lite0's passes, but only its classifier's Gemm is quantised (convolutions are
  neither MatMul nor Gemm), so it is not faster, and it moves one demo caption out of the top 5 (R@5 -1.75
  points): fp32 stays the default. A static quantisation of the convolutions (bench only) is ~2x faster and fails
  the same check.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..spec import DEFAULT_RUNTIME, RUNTIMES, check_runtime

if TYPE_CHECKING:  # torch is imported only to export (and by the callers that run a tower in torch)
    import torch
    from torch import nn

__all__ = ["DEFAULT_RUNTIME", "RUNTIMES", "EXPORT_VERSION", "MIN_COSINE", "MIN_COSINE_INT8", "OnnxTower",
           "cache_folder", "cached_tower", "check_runtime", "files_key", "onnx_tower", "tower_path", "variant_of",
           "weights_key"]

log = logging.getLogger("crossmodal.onnx")

EXPORT_VERSION = 1  # bump whenever what an export writes changes: cached files of another version are not used
OPSET = 17
MIN_COSINE = 0.9999
MIN_COSINE_INT8 = 0.99
INT8 = "onnx-int8"


def cache_folder(cache_dir: str | Path | None = None) -> Path:
    """Where exported models are kept: <cache_dir or $CROSSMODAL_CACHE or ~/.cache/crossmodal>/onnx."""
    root = Path(cache_dir or os.environ.get("CROSSMODAL_CACHE") or Path.home() / ".cache" / "crossmodal")
    return root / "onnx"


def weights_key(module: nn.Module, variant: str = "fp32") -> str:
    """sha1 of the export code's version, the opset, the variant, the module's structure and all its tensors."""
    import torch

    digest = hashlib.sha1(f"export-v{EXPORT_VERSION}|opset-{OPSET}|{variant}|{module!r}".encode())
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"|{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def file_sha1(path: str | Path) -> str:
    """The SHA-1 of a file, read in 1 MiB blocks: export cache keys and the model names an index records."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files_key(label: str, files: Sequence[str | Path], variant: str = "fp32") -> str:
    """A tower's key from its weight files, computed without torch: sha1 of the export code's version, the opset,
    the variant, the label (which names the architecture and the export wrapper) and the sha1 of every file."""
    digest = hashlib.sha1(f"files-v{EXPORT_VERSION}|opset-{OPSET}|{variant}|{label}".encode())
    for path in files:
        digest.update(f"|{Path(path).name}|{file_sha1(path)}".encode())
    return digest.hexdigest()


def variant_of(runtime: str) -> str:
    """fp32 or int8: the variant of an exported file for an ONNX `runtime`."""
    return "int8" if check_runtime(runtime) == INT8 else "fp32"


def tower_path(label: str, variant: str, key: str, cache_dir: str | Path | None = None) -> Path:
    return cache_folder(cache_dir) / f"{label}-{variant}-{key[:20]}.onnx"


def cached_tower(label: str, key: str, runtime: str = "onnx", cache_dir: str | Path | None = None,
                 threads: int | None = None) -> OnnxTower | None:
    """The tower exported earlier under `key` (`files_key`), or None when it is not cached (or damaged, or written
    for another key): loads onnxruntime only, never torch."""
    return _load_cached(tower_path(label, variant_of(runtime), key, cache_dir), key, threads)


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


OPTIMIZATION_ENV = "CROSSMODAL_ONNX_OPTIMIZATION"
OPTIMIZATION_LEVELS = ("disabled", "basic", "extended", "all")
DEFAULT_OPTIMIZATION = "all"


def optimization_level(value: str | None = None) -> Any:
    """ONNX Runtime's graph optimisation level for every session: `value`, else $CROSSMODAL_ONNX_OPTIMIZATION, else
    "all" (the default: constant folding, node fusions, layout changes). "disabled" runs the exported graph as it is
    (tests/numerics/run runs the unit lane so, against fusions whose rounding differs); ONNX Runtime has no
    environment variable of its own for this. An unknown value raises ValueError naming the accepted ones."""
    import onnxruntime as ort

    name = (value if value is not None else os.environ.get(OPTIMIZATION_ENV) or DEFAULT_OPTIMIZATION).strip().lower()
    levels = {"disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    if name not in levels:
        raise ValueError(f"{OPTIMIZATION_ENV}={name!r}: expected one of {', '.join(OPTIMIZATION_LEVELS)}")
    return levels[name]


def session_options(threads: int | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads) if threads else default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = optimization_level()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: onnxruntime's warnings about unused initialisers are noise here
    return options


class OnnxTower:
    """An onnxruntime session of one tower: call it with numpy inputs by name, get the first output (float32)."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), sess_options=session_options(threads),
                                            providers=["CPUExecutionProvider"])
        self.input_names = [item.name for item in self.session.get_inputs()]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, **inputs: np.ndarray) -> np.ndarray:
        feed = {name: np.ascontiguousarray(inputs[name]) for name in self.input_names}
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)


@dataclass(frozen=True)
class TowerExport:
    """What a tower's export needs besides the module: input names (in forward's order), the output name, the axes
    besides the batch (axis 0) that vary (e.g. {"input_ids": {1: "sequence"}}), and the check inputs (each a dict of
    tensors by input name; the first is also the export's example)."""

    label: str  # the file name's prefix, e.g. "offline-text-minilm"
    input_names: tuple[str, ...]
    output_name: str
    check_inputs: Sequence[Mapping[str, torch.Tensor]]
    extra_dynamic_axes: Mapping[str, Mapping[int, str]] | None = None


def onnx_tower(module: nn.Module, export: TowerExport, cache_dir: str | Path | None = None,
               threads: int | None = None, runtime: str = "onnx",
               reference: nn.Module | None = None, key: str | None = None) -> OnnxTower | None:
    """The tower in onnxruntime, from the cache or exported now and checked; None (after one warning) when it cannot
    be exported or does not match torch: the caller then keeps running the tower in torch.

    `module` is what is exported; the check compares the session with `reference` (default: `module`), the torch
    computation the tower runs otherwise, when the exported graph is a rewrite of it (VSE++'s GRU without packing).
    `key`: the cache key when the caller has one (`files_key`), else `weights_key(module)`."""
    runtime = check_runtime(runtime)
    variant = variant_of(runtime)
    module = module.eval()
    try:
        key = key or weights_key(module, variant)
        path = tower_path(export.label, variant, key, cache_dir)
        cached = _load_cached(path, key, threads)
        if cached is not None:
            return cached
        return _export_checked(module, export, path, key, variant, threads, reference)
    except _CheckFailed as failure:
        log.warning("the %s ONNX export does not match torch (%s); running it in torch instead", export.label,
                    failure)
    except Exception as error:  # the exporter and onnxruntime raise many kinds for a graph they cannot handle
        message = " ".join(str(error).split())[:300] or type(error).__name__
        log.warning("cannot run %s in ONNX Runtime (%s: %s); running it in torch instead", export.label,
                    type(error).__name__, message)
    return None


class _CheckFailed(RuntimeError):
    pass


def _load_cached(path: Path, key: str, threads: int | None) -> OnnxTower | None:
    if not path.is_file():
        return None
    try:
        tower = OnnxTower(path, threads)
    except Exception as error:  # a truncated or damaged file: onnxruntime cannot parse it
        log.info("the cached ONNX model %s cannot be loaded (%s); exporting it again", path, type(error).__name__)
        return None
    if tower.metadata.get("crossmodal_key") != key:
        log.info("the cached ONNX model %s was written for other weights or code; exporting it again", path)
        return None
    return tower


def _export_checked(module: nn.Module, export: TowerExport, path: Path, key: str, variant: str,
                    threads: int | None, reference: nn.Module | None = None) -> OnnxTower:
    import onnx
    import torch

    check_inputs = [dict(inputs) for inputs in export.check_inputs]
    example = tuple(check_inputs[0][name] for name in export.input_names)
    dynamic_axes: dict[str, dict[int, str]] = {name: {0: "batch"} for name in export.input_names}
    for name, axes in (export.extra_dynamic_axes or {}).items():
        dynamic_axes.setdefault(name, {}).update(axes)
    dynamic_axes[export.output_name] = {0: "batch"}
    buffer = io.BytesIO()
    # Traced with gradients enabled: without them nn.MultiheadAttention takes its fused inference path
    # (aten::_native_multi_head_attention), which has no ONNX export.
    with torch.inference_mode(False), torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings about Python values: the check below decides
        torch.onnx.export(module, example, buffer,  # type: ignore[arg-type]  # it takes a file object too
                          dynamo=False, opset_version=OPSET,
                          input_names=list(export.input_names), output_names=[export.output_name],
                          dynamic_axes=dynamic_axes, do_constant_folding=True)
    model = onnx.load_from_string(buffer.getvalue())
    del buffer
    for name, value in (("crossmodal_key", key), ("crossmodal_export_version", str(EXPORT_VERSION)),
                        ("crossmodal_variant", variant)):
        entry = model.metadata_props.add()
        entry.key, entry.value = name, value
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_path(path)
    try:
        onnx.save(model, str(temporary))
        del model
        if variant == "int8":
            _quantise(temporary)
        tower = OnnxTower(temporary, threads)
        min_cosine = MIN_COSINE_INT8 if variant == "int8" else MIN_COSINE
        _check(module if reference is None else reference.eval(), tower, check_inputs, min_cosine)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # mkstemp made it private; the cache is shared like the prompt cache
        os.replace(temporary, path)
        tower.path = path
        log.info("exported %s to ONNX: %s", export.label, path)
        return tower
    finally:
        temporary.unlink(missing_ok=True)


def _temporary_path(path: Path) -> Path:
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".part")
    os.close(handle)
    return Path(name)


def _quantise(path: Path) -> None:
    """Dynamic int8 quantisation of the MatMul/Gemm weights, in place."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantised = path.with_name(path.name + ".int8")
    try:
        quantize_dynamic(str(path), str(quantised), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gemm"])
        os.replace(quantised, path)
    finally:
        quantised.unlink(missing_ok=True)


def row_cosines(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Cosine of each row of `actual` with the same row of `expected` (rows flattened); two zero rows count as 1."""
    expected = np.asarray(expected, dtype=np.float64).reshape(len(expected), -1)
    actual = np.asarray(actual, dtype=np.float64).reshape(len(actual), -1)
    norms = np.linalg.norm(expected, axis=1) * np.linalg.norm(actual, axis=1)
    dots = (expected * actual).sum(axis=1)
    both_zero = (np.linalg.norm(expected, axis=1) == 0) & (np.linalg.norm(actual, axis=1) == 0)
    return np.where(both_zero, 1.0, dots / np.maximum(norms, 1e-300))


def _check(module: nn.Module, tower: OnnxTower, check_inputs: list[dict[str, torch.Tensor]],
           min_cosine: float) -> None:
    import torch

    worst = 1.0
    for inputs in check_inputs:
        with torch.inference_mode():
            expected = module(*(inputs[name] for name in tower.input_names)).float().numpy()
        actual = tower(**{name: tensor.numpy() for name, tensor in inputs.items()})
        if actual.shape != expected.shape:
            raise _CheckFailed(f"output shape {actual.shape} instead of {expected.shape}")
        cosine = float(row_cosines(expected, actual).min())
        worst = min(worst, cosine)
        if not np.isfinite(cosine) or cosine < min_cosine:
            shapes = ", ".join(f"{name} {tuple(tensor.shape)}" for name, tensor in inputs.items())
            raise _CheckFailed(f"cosine {cosine:.6f} < {min_cosine} on inputs {shapes}")
    log.debug("ONNX export matches torch: min cosine %.7f over %d inputs", worst, len(check_inputs))


def synthetic_images(sizes: Sequence[tuple[int, int]] = ((224, 224), (640, 480), (300, 900), (97, 61), (1024, 256)),
                     seed: int = 0) -> list[Any]:
    """Deterministic RGB images of several sizes and aspect ratios: smooth colour fields with edges (a blurred
    random pattern, so that a classifier sees more than noise)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = []
    for width, height in sizes:
        coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        pixels = np.asarray(image).astype(np.int16)
        pixels[: height // 3, : width // 2] = 255 - pixels[: height // 3, : width // 2]  # a sharp edge
        images.append(Image.fromarray(pixels.clip(0, 255).astype(np.uint8)))
    return images


def image_check_inputs(preprocess: Callable[[Any], torch.Tensor], input_name: str = "pixels") -> list[dict]:
    """Check inputs of an image tower: the five synthetic images preprocessed, in batches of 2, 1 and 2 (each image
    once: a big image tower's check costs five forwards in torch and five in onnxruntime)."""
    import torch

    tensors = [preprocess(image.convert("RGB")) for image in synthetic_images()]
    return [{input_name: torch.stack(tensors[:2])}, {input_name: tensors[3].unsqueeze(0)},
            {input_name: torch.stack([tensors[2], tensors[4]])}]


CHECK_TEXTS = (
    "a",
    "a cup of coffee",
    "two dogs run across a grassy field while a man in a red jacket throws a frisbee toward them",
    "x",
    " ".join(["a black cat sleeps on the warm windowsill next to a potted plant and a stack of old books"] * 15),
)
"""Check texts: one word, short, a long caption, and one of about 300 tokens, over MiniLM's 256 and CLIP's 77 (so
truncated to exactly the maximum length), checked in pairs (the first is the export's example: short, so that
tracing is quick), alone, and as a padded batch of all."""


def text_batches(texts: Sequence[str] = CHECK_TEXTS) -> list[list[str]]:
    return [[texts[1], texts[2]], [texts[0]], list(texts), [texts[-1]], [texts[2], texts[-1], texts[3]]]
