"""The one interface every model backend implements, so executors never care which model runs."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
from PIL import Image


class BackendUnavailableError(RuntimeError):
    """A backend cannot be loaded here (missing weights, files or packages); the message says what to do."""


class ModelBackend(ABC):
    """Maps images and captions into one embedding space.

    Both methods return L2-normalised float32 arrays of shape [N, dim], so that the inner product is the
    cosine similarity. Each backend owns its preprocessing: callers pass decoded RGB images and raw strings.
    """

    name: str
    dim: int

    @abstractmethod
    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed RGB images."""

    @abstractmethod
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed captions or text queries."""


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-wise unit length as float32; a zero row stays zero instead of becoming NaN."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
