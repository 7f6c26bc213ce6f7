"""A search as the gateway runs it: the main query and the parts that steer it, each validated for its encoder.

A plain query goes through the flow once (encode and search in one request). A composed one (`plus`/`minus`)
goes twice: its parts are embedded by their own encoders (`/encode`), combined here in the shared space
(`crossmodal.search.composition`), and the combined vector is searched (`/search`); the encoders pass an embedded
document on untouched.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import HTTPException

from crossmodal.index.photo_filter import FILTER_FIELDS, FilterError, PhotoFilter, parse_photo_filter
from crossmodal.index.tags import FILTER_TAG, MODEL_TAG, TARGET_TAG
from crossmodal.modality import IMAGE, TEXT
from serving.http.api_models import MAX_DEPTH, SearchRequest
from serving.http.queries import Query
from serving.wire import CrossModalDoc

NO_CAPTIONS_NOTE = ("no captions are indexed (a photo folder): these are the photos most like this one; "
                    "send modality \"text\" for captions")


@dataclass
class SearchPlan:
    """`parts`: (query, signed weight); the main query, if any, is the first part with weight 1."""

    parts: list[tuple[Query, float]]
    query_modality: str
    target: str
    limit: int
    mode: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    photo_filter: PhotoFilter | None = None  # run by the indexers (the query document's filter tag)
    sort: str = "relevance"
    offset: int = 0
    collapse: bool = True  # near-duplicate photos folded into the best ranked of their group
    fold_margin: int = 0  # how many matches collapsing may remove: the search looks that much deeper
    note: str | None = None  # why the answer's modality is not the one the request implied (NO_CAPTIONS_NOTE)

    @property
    def composed(self) -> bool:
        return len(self.parts) > 1 or self.parts[0][1] != 1.0

    @property
    def single(self) -> Query:
        """The one query of a plan that is not composed."""
        return self.parts[0][0]

    def keyword_text(self) -> str | None:
        """The words the keyword search looks for: those of the text parts with a positive weight."""
        return _texts(self.parts, positive=True)

    def exclude_text(self) -> str | None:
        """The words whose keyword hits are left out: those of the minus parts."""
        return _texts(self.parts, positive=False)

    def ranking_mode(self) -> str:
        """A query without words (a photo) is ranked by meaning whatever the mode asked."""
        return self.mode if self.keyword_text() else "semantic"

    @property
    def search_id(self) -> str:
        """The id of the document the search sends (and of its result)."""
        return self.id if self.composed else self.single.id

    def direction(self) -> str:
        return f"{self.query_modality}->{self.target}"

    def search_doc(self, vector: np.ndarray | None = None, model: str | None = None) -> CrossModalDoc:
        """The document the search sends: the query itself, or the combined vector of a composed one."""
        if not self.composed:
            doc = self.single.to_doc()
        else:
            doc = CrossModalDoc(id=self.id, modality=self.query_modality, embedding=vector,
                                tags={TARGET_TAG: self.target, MODEL_TAG: model or ""})
        if self.photo_filter is not None:
            doc.tags[FILTER_TAG] = self.photo_filter.to_json()
        return doc


def page_options(request: SearchRequest, target: str, where: str = "") -> dict[str, Any]:
    """The filter, sort, page and collapsing of a request as `SearchPlan` fields; 400 naming the field when one is
    unusable. `where` prefixes field names (`queries[3].`)."""
    try:
        photo_filter = parse_photo_filter({name: getattr(request, name) for name in FILTER_FIELDS})
    except FilterError as error:
        raise HTTPException(400, f"'{where}{error.field}'{str(error)[len(error.field) + 2:]}") from None
    if photo_filter is not None and target != IMAGE:
        given = [name for name in FILTER_FIELDS if getattr(request, name) is not None]
        raise HTTPException(400, f"'{where}{given[0]}': filters apply to photo results; this search returns "
                                 "captions (modality text)")
    if request.sort == "taken" and target != IMAGE:
        raise HTTPException(400, f"'{where}sort': \"taken\" sorts photos; this search returns captions")
    if request.offset + request.limit > MAX_DEPTH:
        raise HTTPException(400, f"'{where}offset' + '{where}limit' is {request.offset + request.limit}; the search "
                                 f"depth is {MAX_DEPTH}, so offset + limit must be at most {MAX_DEPTH}")
    return {"photo_filter": photo_filter, "sort": request.sort, "offset": request.offset,
            "collapse": request.collapse_duplicates}


def _texts(parts: list[tuple[Query, float]], positive: bool) -> str | None:
    words = [query.text for query, weight in parts
             if query.modality == TEXT and query.text and (weight > 0) == positive]
    return " ".join(words) or None
