"""The one interface every model backend implements, so executors never care which model runs."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

from crossmodal.modality import IMAGE, TEXT


class BackendUnavailableError(RuntimeError):
    """A backend cannot be loaded here (missing weights, files or packages); the message says what to do."""


class TowerNotLoadedError(RuntimeError):
    """A backend was asked to encode a modality whose tower it was not created with."""


def check_towers(towers: Iterable[str]) -> frozenset[str]:
    """The towers as a set; refuses an empty set and unknown names."""
    chosen = frozenset(towers)
    if not chosen or not chosen <= {IMAGE, TEXT}:
        raise ValueError(f"towers must be a non-empty subset of ({IMAGE!r}, {TEXT!r}), got {sorted(chosen)}")
    return chosen


class ModelBackend(ABC):
    """Maps images and captions into one embedding space.

    Both methods return L2-normalised float32 arrays of shape [N, dim], so that the inner product is the
    cosine similarity. Each backend owns its preprocessing: callers pass decoded RGB images and raw strings.
    A backend loads only the towers it was created with (an encoder process needs one); `name` and `dim` are the
    same whichever towers are loaded, so that the vectors of an image process and a text process match.
    """

    name: str
    dim: int
    towers: frozenset[str] = frozenset({IMAGE, TEXT})
    # The shorter side the image preprocessing resizes a photo to, when it resizes to a fixed size: a large JPEG
    # may then be decoded at a reduced scale that still keeps this many pixels (crossmodal.media.decoding); None: decode
    # photos whole.
    image_side: int | None = None

    @abstractmethod
    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed RGB images."""

    @abstractmethod
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed captions or text queries."""

    def require_tower(self, tower: str) -> None:
        """Raise TowerNotLoadedError unless the `tower` (image or text) was loaded."""
        if tower not in self.towers:
            raise TowerNotLoadedError(
                f"the {self.name} model was loaded with the {', '.join(sorted(self.towers))} tower only: it cannot "
                f"encode {'images' if tower == IMAGE else 'texts'} (create it with towers including {tower!r})")


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-wise unit length as float32; a zero row stays zero instead of becoming NaN."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
