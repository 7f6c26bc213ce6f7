"""One query's answer from its vector hits and its keyword hits: the order, each match's relevance, why it matched.

No Jina here: the gateway runs the flow (encoders, indexers) and hands this module what came back, so the rules
are testable on real store files without a flow.

- `semantic`: the vector ranking as the indexers returned it.
- `keyword`: SQLite FTS5 (BM25) over captions and file/folder names. A photo is found by its names and by the
  words of its captions (a caption hit counts for its photo), as two rankings, one per field (FIELD_WEIGHTS).
- `hybrid`: the vector ranking and the keyword rankings fused by reciprocal rank fusion (`crossmodal.search.fusion`).

Keyword evidence where it is meant (issue 21): a file name is written by a camera or a person sorting files, a
caption (or, later, text found in the photo) says what the photo shows. So a photo's name ranking is searched
without camera words and numbers (crossmodal.index.keywords.NAME_STOP_WORDS: `PXL_0005_small.jpg` is not found by "a
small bird"; numbers only when the query is nothing else: "2024"), and in the fusion it counts FIELD_WEIGHTS[NAME]
(half) of a caption's ranking or of the vector ranking. Each match says which field matched which words
(`KeywordRankings.fields_of`, the API's `why.fields`).
Relevance is always computed from the cosine of the match with the query vector (a keyword-only match's vector is
read from the store), so it means the same thing whatever the mode.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossmodal.index import caption_vectors_of_pairs, filter_ids, keyword_search, pairs_with_captions
from crossmodal.index.ids import image_doc_id
from crossmodal.index.keywords import CAPTION, NAME, query_terms
from crossmodal.index.photo_filter import PhotoFilter
from crossmodal.modality import IMAGE, TEXT
from crossmodal.search.fusion import reciprocal_rank_fusion
from crossmodal.search.relevance import Calibration, ScoreDistribution

MODES = ("semantic", "keyword", "hybrid")
FUSION_DEPTH = 50  # how deep each ranking goes before fusion (the server's limit is 100)
VECTOR_WEIGHT = 1.0  # the vector ranking's weight in hybrid fusion
# Each keyword field's ranking's weight in the fusion (against the vector ranking's VECTOR_WEIGHT). Text found in
# the photo (OCR, a later issue) says what the photo shows, as a caption does: add its field here at the caption's
# weight, index it as its own ranking in `keyword_rankings`, and count it as text evidence in `photos_with_text`.
FIELD_WEIGHTS = {CAPTION: 1.0, NAME: 0.5}


@dataclass(frozen=True)
class KeywordRankings:
    """The keyword rankings of one query (ids of the searched index, best first) and the words each id matched."""

    rankings: tuple[tuple[str, ...], ...] = ()
    terms: Mapping[str, tuple[str, ...]] | None = None
    # The field of each ranking (NAME, CAPTION), aligned with `rankings`; empty: every ranking weighs 1.
    fields: tuple[str, ...] = ()
    # Per field, the words each id matched there.
    field_terms: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None

    def terms_of(self, doc_id: str) -> tuple[str, ...]:
        return (self.terms or {}).get(doc_id, ())

    def fields_of(self, doc_id: str) -> dict[str, list[str]]:
        """Which of the query's words `doc_id` matched in which field: {"caption": [...], "name": [...]}."""
        return {name: list(found[doc_id]) for name, found in (self.field_terms or {}).items() if found.get(doc_id)}

    def weights(self) -> list[float]:
        """Each ranking's fusion weight (FIELD_WEIGHTS of its field; 1 without fields)."""
        if len(self.fields) != len(self.rankings):
            return [1.0] * len(self.rankings)
        return [FIELD_WEIGHTS.get(name, 1.0) for name in self.fields]


def keyword_rankings(folders: Mapping[str, Path], target: str, text: str, exclude_text: str | None = None,
                     depth: int = FUSION_DEPTH, photo_filter: PhotoFilter | None = None) -> KeywordRankings:
    """Photos (target image): one ranking by file and folder names, one by caption words mapped to their photos.
    Captions (target text): one ranking by their words. Ids that `exclude_text` (the minus parts' words) matches
    are left out, and so are photos that `photo_filter` does not allow (the indexers filter the vector hits the
    same way), so a filtered hybrid or keyword search never shows a photo outside the filter."""
    if target == IMAGE:
        by_name = keyword_search(folders[IMAGE], text, depth, NAME)
        by_caption = _photos_of_captions(keyword_search(folders[TEXT], text, depth))
        found = [[(hit.id, hit.terms) for hit in by_name], by_caption]
        names = [NAME, CAPTION]
    else:
        found = [[(hit.id, hit.terms) for hit in keyword_search(folders[TEXT], text, depth)]]
        names = [CAPTION]
    if photo_filter is not None and not photo_filter.is_empty():
        allowed = filter_ids(folders[IMAGE], [doc_id for ranking in found for doc_id, _ in ranking], photo_filter)
        found = [[(doc_id, words) for doc_id, words in ranking if doc_id in allowed] for ranking in found]
    excluded = _ids_matching(folders, target, exclude_text, depth) if exclude_text else set()
    terms: dict[str, tuple[str, ...]] = {}
    field_terms: dict[str, dict[str, tuple[str, ...]]] = {}
    rankings, fields = [], []
    for name, ranking in zip(names, found):
        kept = [(doc_id, words) for doc_id, words in ranking if doc_id not in excluded]
        for doc_id, words in kept:
            terms[doc_id] = tuple(dict.fromkeys((*terms.get(doc_id, ()), *words)))
            field_terms.setdefault(name, {})[doc_id] = tuple(words)
        if kept:
            rankings.append(tuple(doc_id for doc_id, _ in kept))
            fields.append(name)
    return KeywordRankings(tuple(rankings), terms, tuple(fields), field_terms)


def _photos_of_captions(hits: Iterable) -> list[tuple[str, tuple[str, ...]]]:
    """Caption hits as photo hits, best caption first; a photo's words are those of all its matching captions."""
    photos: dict[str, tuple[str, ...]] = {}
    for hit in hits:
        if hit.pair_id:
            photo = image_doc_id(hit.pair_id)
            photos[photo] = tuple(dict.fromkeys((*photos.get(photo, ()), *hit.terms)))
    return list(photos.items())


def _ids_matching(folders: Mapping[str, Path], target: str, text: str, depth: int) -> set[str]:
    rankings = keyword_rankings(folders, target, text, None, depth).rankings
    return {doc_id for ranking in rankings for doc_id in ranking}


def fused_order(mode: str, semantic: Sequence[str], keyword: KeywordRankings) -> list[str]:
    """The ids of the answer, best first, for `mode` (see the module docstring)."""
    if mode == "semantic":
        return list(semantic)
    if mode == "keyword":
        lists: list[Sequence[str]] = list(keyword.rankings)
        weights = keyword.weights()
    elif mode == "hybrid":
        lists = [semantic, *keyword.rankings]
        weights = [VECTOR_WEIGHT, *keyword.weights()]
    else:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if len(lists) == 1:
        return list(lists[0])
    return [doc_id for doc_id, _ in reciprocal_rank_fusion(lists, weights=weights)]


def keyword_coverage(keyword: KeywordRankings, text: str | None) -> dict[str, float] | None:
    """Per id found by the keyword search, the share of the query's searched words it matched (in its names and
    captions together): 1.0 when a photo's captions and name hold every word of the query. None when the query has
    no searchable word (only stop words, or a photo): nothing was searched by keyword, so relevance is semantic."""
    terms = set(query_terms(text)) if text else set()
    if not terms:
        return None
    return {doc_id: len(terms.intersection(words)) / len(terms) for doc_id, words in (keyword.terms or {}).items()}


def relevances(calibration: Calibration | None, direction: str, scores: Mapping[str, float],
               distribution: ScoreDistribution | None,
               coverage: Mapping[str, float] | None = None,
               without_text: Iterable[str] = ()) -> dict[str, float] | None:
    """Each id's calibrated relevance from its cosine and, when the query was also searched by keyword
    (`coverage` given, possibly empty), the share of its words each match holds; None without a calibration for
    `direction`. `without_text`: the ids that can have no keyword evidence but their file name (a photo without
    captions: `photos_with_text`); they get the calibration's mapping for such targets, whatever the mode, so a
    missing caption is not read as evidence against (a word of their names found still counts for them)."""
    if calibration is None or distribution is None or not scores:
        return None
    ids = sorted(scores, key=lambda doc_id: scores[doc_id], reverse=True)
    covered = None if coverage is None else np.asarray([coverage.get(doc_id, 0.0) for doc_id in ids])
    textless = set(without_text)
    has_text = np.asarray([doc_id not in textless for doc_id in ids], dtype=bool) if textless else None
    vector_scores = np.asarray([scores[doc_id] for doc_id in ids], dtype=np.float32)
    values = (calibration.relevance(direction, vector_scores, distribution, coverage=covered) if has_text is None
              else calibration.relevance(direction, vector_scores, distribution, coverage=covered, has_text=has_text))
    if values is None:
        return None
    return {doc_id: float(np.clip(value, 0.0, 1.0)) for doc_id, value in zip(ids, values)}


def photos_with_text(text_folder: Path, pair_ids: Sequence[str]) -> set[str]:
    """The pair ids, of `pair_ids`, of photos that have text a keyword can match besides their names: captions
    (and, once it is indexed, text found in the photo). The others' relevance cannot use keyword evidence."""
    return pairs_with_captions(text_folder, pair_ids)


@dataclass(frozen=True)
class PhotoCaptions:
    """What a photo match shows in words: its first caption, and its caption nearest to the query (why it matched;
    None without a query vector)."""

    first: str | None
    nearest: str | None


def photo_captions(text_folder: Path, query_vector: np.ndarray | None,
                   pair_ids: Sequence[str]) -> dict[str, PhotoCaptions]:
    """For each photo (by pair id) with captions: its first caption (the lowest caption number) and the one nearest
    to the query vector, from one read of its captions."""
    query = None if query_vector is None else np.asarray(query_vector, dtype=np.float32).reshape(-1)
    found: dict[str, PhotoCaptions] = {}
    for pair_id, captions in caption_vectors_of_pairs(text_folder, list(dict.fromkeys(pair_ids))).items():
        first = next((caption.text for caption in captions if caption.text), None)
        nearest = None
        if query is not None:
            usable = [caption for caption in captions if caption.text and caption.vector.shape == query.shape]
            if usable:
                nearest = max(usable, key=lambda caption: float(caption.vector @ query)).text
        found[pair_id] = PhotoCaptions(first, nearest)
    return found
