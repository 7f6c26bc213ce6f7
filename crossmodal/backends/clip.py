"""CLIP through open_clip: any architecture with a pretrained tag, a local weights file or a folder; see
crossmodal.backends.models.clip. Weights: open_clip's download of a tag (Hugging Face Hub or its URL)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from crossmodal.evaluation.published import PublishedResult

from .base import ModelBackend
from .fetching import FetchError, one_line, unreachable
from .spec import RUNTIME, THREADS, BackendSpec, Option

DEFAULT_ARCH = "ViT-B-32"
DEFAULT_PRETRAINED = "openai"
ARCH = Option("arch", "--clip-arch", "open_clip architecture", default=DEFAULT_ARCH)
PRETRAINED = Option("pretrained", "--clip-pretrained", "open_clip pretrained tag, or a local weights file or folder",
                    default=DEFAULT_PRETRAINED, path=True)


def _create(arch: str | None = None, pretrained: str | None = None, **options: Any) -> ModelBackend:
    """The model's code gets its defaults from here (an empty value means the default), so it never imports us."""
    from .models.clip import ClipBackend

    return ClipBackend(arch or DEFAULT_ARCH, pretrained or DEFAULT_PRETRAINED, **options)


def _fetch(to: Path, arch: str, pretrained: str) -> dict[str, Any]:
    """The open_clip weights of a pretrained tag, into open_clip's cache ($HF_HOME; `to` is not used: open_clip
    finds its cache by itself)."""
    import open_clip

    from .models.clip import download_url

    cfg = open_clip.get_pretrained_cfg(arch, pretrained)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise FetchError(f"{pretrained!r} is not a pretrained tag of {arch}; tags: {tags}")
    reason = unreachable(download_url(cfg))
    if reason:
        raise FetchError(f"cannot download CLIP {arch}/{pretrained}: {reason}")
    try:
        open_clip.pretrained.download_pretrained(cfg)
    except Exception as error:  # huggingface_hub and urllib raise many kinds
        raise FetchError(f"cannot download CLIP {arch}/{pretrained}: {one_line(error, 200)}") from None
    return {"arch": arch, "pretrained": pretrained}


def _weights_of(model_name: str) -> str:
    """`ARCH:TAG` of `clip:ARCH:TAG`, the architecture without `-quickgelu` (the same weights either way). A model
    loaded from a file is named `clip:ARCH:<file hash>`, which says nothing about which weights it holds: no row."""
    parts = model_name.split(":")
    return f"{parts[1].removesuffix('-quickgelu')}:{parts[2]}" if len(parts) == 3 else ""


def _zero_shot(model: str, weights: str, i2t: tuple[float, float, float],
               t2i: tuple[float, float, float]) -> PublishedResult:
    return PublishedResult(f"{model}, zero-shot", "f30k", i2t, t2i, "open_clip benchmark table", weights=weights)


SPEC = BackendSpec(
    name="clip",
    summary="open_clip models (--clip-arch, --clip-pretrained)",
    factory=_create,
    fetch=_fetch,
    options=(ARCH, PRETRAINED, THREADS, RUNTIME),
    fetch_options=(ARCH, PRETRAINED),
    published=(
        _zero_shot("CLIP ViT-B/32 (OpenAI)", "ViT-B-32:openai", (78.9, 94.9, 98.2), (58.8, 83.6, 90.0)),
        _zero_shot("CLIP ViT-L/14 (OpenAI)", "ViT-L-14:openai", (85.2, 97.4, 99.2), (65.0, 87.2, 92.0)),
        _zero_shot("SigLIP ViT-SO400M/14-384", "ViT-SO400M-14-SigLIP-384:webli", (94.3, 99.7, 99.8),
                   (83.0, 96.1, 98.0)),
    ),
    weights_of=_weights_of,
)
