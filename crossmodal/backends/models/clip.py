"""CLIP backend through open_clip: any open_clip architecture with a pretrained tag, a local weights file or a folder.

`pretrained` may be
- a tag (`openai`, `laion2b_s34b_b79k`, ...): the weights come from open_clip's cache (Hugging Face cache or
  ~/.cache/clip), looked up with the Hub forced offline first; only when they are not cached is the network tried,
  and never when HF_HUB_OFFLINE is set. No weights -> BackendUnavailableError with one line saying what to do.
- a weights file (`open_clip_pytorch_model.bin`, `.safetensors`, `.pt`): loaded with the Hub forced offline.
  OpenAI weights use QuickGELU: load them from a file with the `-quickgelu` architecture (e.g. ViT-B-32-quickgelu).
- a folder: a Hugging Face snapshot with `open_clip_config.json` (its config and preprocessing win over `arch`),
  or any folder holding one weights file.

Images go through open_clip's own preprocessing and captions through its own tokenizer; vectors are L2-normalised
float32. Files are read with `weights_only=True`. open_clip builds the whole model from one weights file; the tower a
process does not need is dropped right after loading, so an encoder process keeps only its own.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from crossmodal.modality import IMAGE, TEXT

from ..base import BackendUnavailableError, ModelBackend, check_towers, l2_normalise
from ..fetching import one_line, unreachable
from ..spec import check_runtime
from .batching import batches, image_batches
from .onnx_runtime import OnnxTower, TowerExport, file_sha1, image_check_inputs, onnx_tower, text_batches

WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors", ".ckpt")
# open_clip's own preference when a folder holds several weights files.
PREFERRED_WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                          "open_clip_pytorch_model.bin", "open_clip_pytorch_model.pth", "model.safetensors",
                          "pytorch_model.bin", "pytorch_model.pth", "model.pth")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Force the Hugging Face Hub (and transformers) offline for the duration, whatever the environment says."""
    from huggingface_hub import constants  # a dependency of open_clip

    saved = {name: os.environ.get(name) for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def resize_side(preprocess: Any) -> int | None:
    """The shorter side open_clip's preprocessing resizes a photo to (its first step, a Resize to one size), else
    None (another resize mode: decode photos whole)."""
    from torchvision import transforms

    first = next(iter(getattr(preprocess, "transforms", ())), None)
    if not isinstance(first, transforms.Resize):
        return None
    size = first.size
    if isinstance(size, (list, tuple)):
        size = size[0] if len(size) == 1 else None
    return size if isinstance(size, int) else None


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or value.startswith(".") or value.lower().endswith(WEIGHT_SUFFIXES)


def download_url(cfg: dict) -> str:
    """Where open_clip would download a tag's weights from (the Hub is preferred when the tag has both)."""
    if cfg.get("hf_hub"):
        try:
            from huggingface_hub import constants

            return constants.ENDPOINT
        except ImportError:  # pragma: no cover
            return "https://huggingface.co"
    return cfg.get("url", "")


def find_weights_file(folder: Path) -> Path | None:
    """The weights file of a folder, by open_clip's preferred names, else the only/first candidate."""
    candidates = sorted(path for path in folder.iterdir() if path.is_file() and path.suffix in WEIGHT_SUFFIXES)
    for name in PREFERRED_WEIGHT_NAMES:
        if folder / name in candidates:
            return folder / name
    return candidates[0] if candidates else None


class NormalisedImageTower(nn.Module):
    """open_clip's encode_image(normalize=True) on the image tower alone: the graph exported to ONNX."""

    def __init__(self, visual: nn.Module) -> None:
        super().__init__()
        self.visual = visual

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.visual(pixels), dim=-1)


class NormalisedTextTower(nn.Module):
    """open_clip's encode_text(normalize=True): the graph exported to ONNX (tokens padded to the context length)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(tokens, normalize=True)


class ClipBackend(ModelBackend):
    """open_clip model: `encode_image` / `encode_text` with open_clip's preprocessing and tokenizer.

    `runtime` onnx: each tower's forward (with its normalisation) runs in ONNX Runtime, cached under
    $CROSSMODAL_CACHE/onnx (`cache_dir` is open_clip's weights cache, not this one); see onnx_runtime."""

    model: Any  # the open_clip model while loading; afterwards `visual` and `text_model` hold the towers kept
    image_onnx: OnnxTower | None = None
    text_onnx: OnnxTower | None = None

    def __init__(self, arch: str, pretrained: str, batch_size: int = 32,
                 threads: int | None = None, cache_dir: str | None = None,
                 towers: Iterable[str] = (IMAGE, TEXT), runtime: str | None = None) -> None:
        if threads:
            torch.set_num_threads(int(threads))
        self.towers = check_towers(towers)
        self.runtime = check_runtime(runtime)
        self.arch, self.pretrained = str(arch), str(pretrained)
        self.batch_size = max(1, int(batch_size))
        self.cache_dir = cache_dir
        try:
            import open_clip
        except ImportError as error:
            raise BackendUnavailableError(f"the clip model needs open_clip_torch ({error}); "
                                          "pip install -r requirements.txt") from None
        self._open_clip = open_clip
        if self.arch not in open_clip.list_models():
            raise ValueError(f"unknown open_clip architecture {self.arch!r}; see open_clip.list_models(), "
                             "e.g. ViT-B-32, ViT-B-16, ViT-L-14")
        local = Path(self.pretrained).expanduser()
        if local.is_dir():
            self._load_folder(local)
        elif local.is_file():
            self._load_file(local, self.arch)
        elif open_clip.get_pretrained_cfg(self.arch, self.pretrained):
            self._load_tag()
        elif _looks_like_path(self.pretrained):
            raise BackendUnavailableError(f"CLIP weights not found: {local} (give --clip-pretrained an existing "
                                          "weights file or folder, or a pretrained tag)")
        else:
            tags = ", ".join(open_clip.list_pretrained_tags_by_model(self.arch)) or "none"
            raise ValueError(f"{self.pretrained!r} is neither a file, a folder nor a pretrained tag of {self.arch} "
                             f"(its tags: {tags})")
        self.model.eval()
        self.dim = int(self._probe_dim())
        self.visual, self.text_model = self._towers_kept(self.model)
        del self.model
        if self.runtime != "torch":
            self._to_onnx(int(threads) if threads else None)

    def _to_onnx(self, threads: int | None) -> None:
        label = f"clip-{self.arch}".replace("/", "-")
        if self.visual is not None:
            export = TowerExport(label=f"{label}-image", input_names=("pixels",), output_name="embedding",
                                 check_inputs=image_check_inputs(self.preprocess))
            self.image_onnx = onnx_tower(NormalisedImageTower(self.visual), export, None, threads, self.runtime)
        if self.text_model is not None:
            export = TowerExport(label=f"{label}-text", input_names=("tokens",), output_name="embedding",
                                 check_inputs=[{"tokens": self.tokenizer(batch).to(torch.int64)}
                                               for batch in text_batches()])
            # Keyed and exported without the image tower, so that text-only and two-tower processes share the file.
            visual = self.text_model.__dict__["_modules"].pop("visual", None)
            try:
                self.text_onnx = onnx_tower(NormalisedTextTower(self.text_model), export, None, threads,
                                            self.runtime)
            finally:
                if visual is not None:
                    self.text_model.visual = visual
        # Keep in torch only what still runs there (the text model holds the image tower when both are loaded).
        if self.text_onnx is not None:
            self.text_model = None
        if self.image_onnx is not None:
            self.visual = None
            if self.text_model is not None and hasattr(self.text_model, "visual"):
                del self.text_model.visual

    def _towers_kept(self, model: Any) -> tuple[nn.Module | None, Any]:
        """(image tower, model for encode_text) of the towers this process needs; the other is dropped."""
        visual = model.visual if IMAGE in self.towers else None
        if TEXT not in self.towers:
            return visual, None
        if IMAGE not in self.towers:
            del model.visual  # encode_text never reads it
        return visual, model

    # --- loading ----------------------------------------------------------------------------------------------------

    def _create(self, model_name: str, pretrained: str | None, **kwargs: Any) -> None:
        model, _, preprocess = self._open_clip.create_model_and_transforms(
            model_name, pretrained=pretrained, cache_dir=self.cache_dir, **kwargs)
        self.model, self.preprocess = model, preprocess
        self.image_side = resize_side(preprocess)
        self.tokenizer = self._open_clip.get_tokenizer(model_name, cache_dir=self.cache_dir)

    def _load_local(self, model_name: str, pretrained: str | None, what: Path, **kwargs: Any) -> None:
        with hub_offline():
            try:
                self._create(model_name, pretrained, **kwargs)
            except Exception as error:  # open_clip raises RuntimeError, torch many kinds, for a bad file
                raise ValueError(f"cannot load CLIP weights {what} as {model_name}: {one_line(error, 400)}") from None

    def _load_file(self, path: Path, arch: str) -> None:
        self._load_local(arch, str(path), path)
        self.name = f"clip:{arch}:{file_sha1(path)[:10]}"

    def _load_folder(self, folder: Path) -> None:
        weights = find_weights_file(folder)
        if weights is None:
            raise BackendUnavailableError(f"no CLIP weights file ({', '.join(WEIGHT_SUFFIXES)}) in {folder}")
        if (folder / "open_clip_config.json").is_file():
            # A Hub snapshot: its config (architecture, QuickGELU, preprocessing) describes the weights.
            self._load_local(f"local-dir:{folder}", None, folder)
            self.name = f"clip:{folder.name}:{file_sha1(weights)[:10]}"
        else:
            self._load_file(weights, self.arch)

    def _load_tag(self) -> None:
        open_clip, tag = self._open_clip, self.pretrained
        cfg = open_clip.get_pretrained_cfg(self.arch, tag)
        options = {"force_quick_gelu": bool(cfg.get("quick_gelu", False))}
        self.name = f"clip:{self.arch}:{tag}"
        if self._tag_is_cached(cfg):
            with hub_offline():
                try:
                    self._create(self.arch, tag, **options)
                except Exception as error:
                    raise ValueError(f"cannot load the cached CLIP weights {self.arch}/{tag} (a damaged download? "
                                     f"delete it from the cache): {one_line(error, 400)}") from None
            return
        if _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE")):
            raise BackendUnavailableError(self._unavailable_message(cfg, "HF_HUB_OFFLINE is set"))
        unreachable_reason = unreachable(download_url(cfg))
        if unreachable_reason:
            raise BackendUnavailableError(self._unavailable_message(cfg, unreachable_reason))
        try:
            open_clip.pretrained.download_pretrained(cfg, cache_dir=self.cache_dir)
        except Exception as error:
            raise BackendUnavailableError(self._unavailable_message(cfg, one_line(error, 100))) from None
        try:
            with hub_offline():
                self._create(self.arch, tag, **options)
        except Exception as error:
            raise BackendUnavailableError(self._unavailable_message(cfg, one_line(error))) from None

    def _tag_is_cached(self, cfg: dict) -> bool:
        """Whether the weights of a tag are on disk, checked without the network."""
        open_clip = self._open_clip
        if open_clip.pretrained.has_hf_hub() and cfg.get("hf_hub"):
            with hub_offline():
                try:
                    open_clip.pretrained.download_pretrained(cfg, cache_dir=self.cache_dir)
                    return True
                except Exception:
                    return False
        url = cfg.get("url", "")
        cache = self.cache_dir or os.path.expanduser("~/.cache/clip")
        return bool(url) and os.path.isfile(os.path.join(cache, os.path.basename(url)))

    def _unavailable_message(self, cfg: dict, reason: str) -> str:
        hub = (cfg.get("hf_hub") or "").strip("/")
        source = f"open_clip_pytorch_model.bin from https://huggingface.co/{hub}" if hub else cfg.get("url", "")
        target = "open_clip_pytorch_model.bin" if hub else os.path.basename(cfg.get("url", "")) or "weights.bin"
        arch = self.arch
        if cfg.get("quick_gelu") and f"{arch}-quickgelu" in self._open_clip.list_models():
            arch = f"{arch}-quickgelu"  # OpenAI weights need QuickGELU, which a bare file does not say
        return (f"CLIP weights {self.arch}/{self.pretrained} are not on this machine and cannot be downloaded "
                f"({reason}); on a machine with internet access download {source}, copy it here and run with "
                f"--clip-arch {arch} --clip-pretrained /path/to/{target}; or use the built-in offline model: "
                "--model offline")

    # --- encoding ---------------------------------------------------------------------------------------------------

    def _probe_dim(self) -> int:
        projection = getattr(self.model, "text_projection", None)
        if isinstance(projection, torch.Tensor) and projection.dim() == 2:
            return projection.shape[1]
        with torch.inference_mode():
            return int(self.model.encode_text(self.tokenizer(["a"])).shape[-1])

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.require_tower(TEXT)
        chunks = []
        for batch in batches(texts, self.batch_size):
            tokens = self.tokenizer([str(text) for text in batch])
            if self.text_onnx is not None:
                chunks.append(self.text_onnx(tokens=tokens.to(torch.int64).numpy()))
            else:
                chunks.append(self.text_model.encode_text(tokens, normalize=True).float().numpy())
        return self._finish(chunks)

    @torch.inference_mode()
    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.require_tower(IMAGE)
        chunks = []
        for batch in image_batches(images, self.preprocess, self.batch_size):
            if self.image_onnx is not None:
                chunks.append(self.image_onnx(pixels=batch.numpy()))
                continue
            assert self.visual is not None
            # what open_clip's encode_image(normalize=True) computes, on the image tower alone
            chunks.append(F.normalize(self.visual(batch), dim=-1).float().numpy())
        return self._finish(chunks)

    def _finish(self, chunks: list[np.ndarray]) -> np.ndarray:
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.concatenate(chunks))

