"""Encoders run on fixed-size batches, so that memory stays bounded however many inputs one request carries."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from PIL import Image

if TYPE_CHECKING:
    import torch

Item = TypeVar("Item")


def batches(items: Sequence[Item], size: int) -> Iterator[Sequence[Item]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def image_batches(images: Sequence[Image.Image], preprocess: Callable[[Image.Image], torch.Tensor],
                  size: int) -> Iterator[torch.Tensor]:
    """RGB images preprocessed and stacked, `size` at a time."""
    import torch

    for batch in batches(images, size):
        yield torch.stack([preprocess(image.convert("RGB")) for image in batch])
