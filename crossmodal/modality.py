"""The two modalities, and which index a query searches by default (cross-wise: the other one)."""
from __future__ import annotations

IMAGE = "image"
TEXT = "text"
MODALITIES = (IMAGE, TEXT)


def other_modality(modality: str) -> str:
    """The modality a query of `modality` searches by default: text finds photos, a photo finds captions."""
    return TEXT if modality == IMAGE else IMAGE
