"""One docarray schema for both modalities, shared by every executor and the gateway."""
from __future__ import annotations

from typing import Dict, List, Optional

from docarray import BaseDoc
from docarray.typing import NdArray

IMAGE = "image"
TEXT = "text"
MODALITIES = (IMAGE, TEXT)


class MatchDoc(BaseDoc):
    """A search result: a stored document and its similarity to the query (higher is better)."""

    modality: str
    score: float
    text: Optional[str] = None
    uri: Optional[str] = None
    tags: Dict[str, str] = {}


class CrossModalDoc(BaseDoc):
    """An image (raw bytes in `blob`, location in `uri`) or a caption (`text`), routed by `modality`."""

    modality: str
    text: Optional[str] = None
    uri: Optional[str] = None
    blob: Optional[bytes] = None
    embedding: Optional[NdArray] = None
    tags: Dict[str, str] = {}
    matches: List[MatchDoc] = []
