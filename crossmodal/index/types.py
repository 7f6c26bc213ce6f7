"""What the store holds and answers: records, hits, keyword hits, caption vectors, settings, and the errors.

A record's vector is float32 little-endian in SQLite (`VECTOR_DTYPE`); `COLUMNS` are the record columns in order.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from crossmodal.modality import MODALITIES

VECTOR_DTYPE = np.dtype("<f4")  # explicit byte order keeps the SQLite blobs portable
COLUMNS = "id, modality, text, uri, pair_id, dataset, split, tags"


class StoreError(Exception):
    """A vector store cannot be opened, read or written."""


class StoreVersionError(StoreError):
    """The store was written by a newer version of this project, whose layout this version cannot vouch for."""


class ModelMismatchError(StoreError):
    """The folder was built by another model or dimension; mixing embedding spaces gives meaningless scores."""


@dataclass(frozen=True)
class Record:
    """Metadata of one stored document; its vector travels separately."""

    id: str
    modality: str
    text: str | None = None
    uri: str | None = None
    pair_id: str | None = None
    dataset: str | None = None
    split: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"record id must be a non-empty string, got {self.id!r}")
        if self.modality not in MODALITIES:
            raise ValueError(f"record {self.id!r}: unknown modality {self.modality!r}, expected one of {MODALITIES}")
        if not isinstance(self.tags, dict):
            raise ValueError(f"record {self.id!r}: tags must be a dict, got {type(self.tags).__name__}")

    @property
    def metadata(self) -> dict[str, Any] | None:
        """A photo's metadata object (`tags["metadata"]`, crossmodal.library.metadata plus `paths`), or None."""
        value = self.tags.get("metadata")
        return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class Hit:
    """One search result; ``score`` is the inner product (cosine for normalised vectors), higher is better."""

    record: Record
    score: float


@dataclass(frozen=True)
class KeywordHit:
    """One keyword (FTS5) result: ``score`` is minus bm25 (higher is better; comparable within one query only),
    ``terms`` the query's words that this document matched, lower-cased as the user typed them."""

    id: str
    pair_id: str | None
    score: float
    terms: tuple[str, ...]


class CaptionVector(NamedTuple):
    """One caption of a photo with its vector: what explaining a photo match needs of it (no tags to parse)."""

    id: str
    text: str | None
    vector: np.ndarray


class StoredSettings(NamedTuple):
    """What built a store folder, so a caller can open it with the right dimension or report a mismatch early."""

    model_name: str
    dim: int
    modality: str



@dataclass(frozen=True)
class StoreSummary:
    """What a store folder holds, read without loading FAISS (for a stats page)."""

    modality: str
    model_name: str
    dim: int
    count: int



def to_record(row: Sequence[Any]) -> Record:
    id_, modality, text, uri, pair_id, dataset, split, tags = row
    return Record(id_, modality, text, uri, pair_id, dataset, split, json.loads(tags))



def to_vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=VECTOR_DTYPE).astype(np.float32)
