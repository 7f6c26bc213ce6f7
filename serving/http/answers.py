"""Turns what the query flow found for a search into its public answer: ranked, calibrated and explained.

The ranking rules live in `crossmodal.search.ranking`; this module feeds them the gateway's caches (the calibration of
the serving model, a sample of each index's vectors) and builds the response models. Everything here reads
SQLite: the gateway calls it off the event loop.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crossmodal.index import (
    Record,
    filter_ids,
    read_records,
    read_vectors,
    store_generations,
    vector_sample,
)
from crossmodal.index.photo_filter import TAKEN_CHARS
from crossmodal.index.tags import CANDIDATES_TAG, METADATA_TAG, parse_metadata, tags_of_record
from crossmodal.library.duplicates import DuplicateGroups, SimilarPairs, store_groups
from crossmodal.modality import IMAGE, TEXT
from crossmodal.search.ranking import (
    FUSION_DEPTH,
    KeywordRankings,
    fused_order,
    keyword_coverage,
    keyword_rankings,
    photo_captions,
    photos_with_text,
    relevances,
)
from crossmodal.search.relevance import (
    NO_GOOD_MATCH_BELOW,
    SAMPLE_SIZE,
    Calibration,
    ScoreDistribution,
    load_calibration,
    score_distribution,
    workspace_calibration_path,
)
from serving.http import api_models as models
from serving.http.api_models import MAX_DEPTH
from serving.http.plans import SearchPlan
from serving.wire import MatchDoc


@dataclass(frozen=True)
class FlowResult:
    """What the query flow returned for one search: its matches (best first), the query's vector, and per shard
    how many records could match (those the filter allows, else all: `candidates:<shard>` tags)."""

    matches: list[MatchDoc]
    vector: np.ndarray | None
    model: str | None
    candidates: dict[str, int] = field(default_factory=dict)

    def candidate_count(self) -> int | None:
        return sum(self.candidates.values()) if self.candidates else None


def candidate_counts(tags: Mapping[str, str]) -> dict[str, int]:
    """The indexers' per-shard counts in a result's tags (each shard its own key, so Jina's merge keeps them all)."""
    prefix = f"{CANDIDATES_TAG}:"
    return {key: int(value) for key, value in tags.items() if key.startswith(prefix) and value.isdigit()}


# `sort: taken` without a calibration: the first this many matches by relevance are the relevant ones (the most a
# page held before pages existed); with one, those with relevance >= RELEVANT_FROM.
TAKEN_TOP = 100
RELEVANT_FROM = NO_GOOD_MATCH_BELOW


def search_depth(plan: SearchPlan) -> int:
    """How many vector matches to ask the indexers for: the end of the page; fusion needs a deeper list than the
    page shows; `sort: taken` looks at the whole search depth (what is relevant is decided before the dates). A
    search that collapses near-duplicates asks for as many more as collapsing can remove (`fold_margin`), so each
    page is cut from a list that still holds it after collapsing, whichever page it is."""
    if plan.sort == "taken":
        return MAX_DEPTH + plan.fold_margin
    end = plan.offset + plan.limit
    depth = end if plan.ranking_mode() == "semantic" else min(MAX_DEPTH, max(end, FUSION_DEPTH))
    return depth + plan.fold_margin


def keyword_depth(plan: SearchPlan) -> int:
    """How deep the keyword rankings go: as deep as the vector ranking in hybrid mode (its fusion is unchanged by
    pages before the 50th match); the whole search depth in keyword mode, where they are the answer, so `total` is
    exact and pages cut one list."""
    return MAX_DEPTH + plan.fold_margin if plan.ranking_mode() == "keyword" else search_depth(plan)


class AnswerBuilder:
    def __init__(self, folders: Mapping[str, Path], workspace: Path) -> None:
        self.folders = dict(folders)
        self.calibrations = CalibrationCache(workspace)
        self.samples = VectorSampleCache()
        self.duplicates = DuplicateCache(self.folders[IMAGE])

    def prepare(self, plans: Sequence[SearchPlan]) -> None:
        """Before the flow runs: how much deeper each photo search that collapses near-duplicates must look."""
        for plan in plans:
            if plan.target == IMAGE and plan.collapse:
                plan.fold_margin = min(MAX_DEPTH, self.duplicates.groups().folded())

    def keywords(self, plan: SearchPlan) -> KeywordRankings:
        """The keyword rankings of a prepared plan (none in semantic mode): they need the query's text, not its
        vector, so the gateway looks them up while the flow embeds and searches."""
        if plan.ranking_mode() == "semantic":
            return KeywordRankings()
        return keyword_rankings(self.folders, plan.target, plan.keyword_text() or "", plan.exclude_text(),
                                depth=keyword_depth(plan), photo_filter=plan.photo_filter)

    def answer(self, plan: SearchPlan, found: FlowResult,
               keyword: KeywordRankings | None = None) -> models.SearchResponse:
        """One page of the answer. The matches are ranked (fused), filtered (the indexers filtered the vector hits;
        keyword hits are filtered in `keyword_rankings`), then cut at `offset`/`limit`; with `sort: taken`, the
        relevant ones among the whole search depth are ordered newest first before the cut. `keyword`: the plan's
        `keywords`, when they were looked up already."""
        mode = plan.ranking_mode()
        semantic = {match.id: match for match in found.matches}
        if keyword is None:
            keyword = self.keywords(plan)
        full_order = fused_order(mode, list(semantic), keyword)
        groups = self.duplicates.groups() if plan.target == IMAGE else None
        folded = 0
        if groups is not None and plan.collapse:
            full_order = groups.collapse(full_order)
            folded = groups.folded(filter_ids(self.folders[IMAGE], groups.members(), plan.photo_filter))
        end = plan.offset + plan.limit
        order = full_order if plan.sort == "taken" else full_order[:end]
        target_folder = self.folders[plan.target]
        others = read_records(target_folder, [doc_id for doc_id in order if doc_id not in semantic])
        order = [doc_id for doc_id in order if doc_id in semantic or doc_id in others]
        scores = {doc_id: match.score for doc_id, match in semantic.items()}
        scores.update(self._scores(target_folder, [doc_id for doc_id in order if doc_id in others], found.vector))
        distribution = None
        if found.vector is not None:
            distribution = self.samples.distribution(target_folder, found.vector)
        calibration = self.calibrations.get(found.model) if found.model else None
        coverage = keyword_coverage(keyword, plan.keyword_text()) if mode != "semantic" else None
        without_text = self._without_text(plan.target, order, semantic, others) if calibration else set()
        relevance = relevances(calibration, plan.direction(), {doc_id: scores[doc_id] for doc_id in order},
                               distribution, coverage, without_text)
        if plan.sort == "taken":
            relevant = (order[:TAKEN_TOP] if relevance is None
                        else [doc_id for doc_id in order if relevance.get(doc_id, 0.0) >= RELEVANT_FROM])
            metadata = {doc_id: _match_metadata(semantic[doc_id]) if doc_id in semantic else others[doc_id].metadata
                        for doc_id in relevant}
            ranked = newest_first(relevant, metadata)
            total = len(ranked)
        else:
            ranked = order
            counted = found.candidate_count() if mode != "keyword" else None
            total = min(MAX_DEPTH, max((counted or 0) - folded, len(full_order)))
        page = ranked[plan.offset:end]
        public = [_public_match(semantic[doc_id]) if doc_id in semantic else _record_match(others[doc_id], 0.0)
                  for doc_id in page]
        for match in public:
            match.score = float(scores.get(match.id, match.score))
            match.relevance = relevance.get(match.id) if relevance else None
            match.why.keywords = list(keyword.terms_of(match.id))
            match.why.fields = keyword.fields_of(match.id)
            match.duplicates = groups.duplicates_of(match.id) if groups is not None else None
        self._explain_photos(public, found.vector)
        best = max(relevance.values(), default=None) if relevance else None
        if not order:  # nothing matched (keyword mode, an empty index, a filter): nothing good either
            no_good_match: bool | None = True
        else:
            no_good_match = None if relevance is None else (best is None or best < NO_GOOD_MATCH_BELOW)
        return models.SearchResponse(
            query_modality=plan.query_modality, modality=plan.target, mode=mode, no_good_match=no_good_match,
            score_distribution=models.ScoreDistribution(**vars(distribution)) if distribution else None,
            total=total, offset=plan.offset, next_offset=end if end < total else None, matches=public)

    def _without_text(self, target: str, ids: Sequence[str], semantic: Mapping[str, MatchDoc],
                      others: Mapping[str, Record]) -> set[str]:
        """The photo matches that can have no keyword evidence but their names (no captions): their relevance
        comes from the calibration's mapping for such targets (crossmodal.search.relevance, `+no_text`)."""
        if target != IMAGE or not ids:
            return set()
        pair_of = {doc_id: semantic[doc_id].tags.get("pair_id") if doc_id in semantic else others[doc_id].pair_id
                   for doc_id in ids}
        with_text = photos_with_text(self.folders[TEXT], [pair for pair in pair_of.values() if pair])
        return {doc_id for doc_id, pair in pair_of.items() if not pair or pair not in with_text}

    def _scores(self, folder: Path, ids: Sequence[str], vector: np.ndarray | None) -> dict[str, float]:
        """Cosines of matches that only the keyword search found, from their stored vectors."""
        if vector is None or not ids:
            return {}
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        return {doc_id: float(stored @ query) for doc_id, stored in read_vectors(folder, list(ids)).items()
                if stored.shape == query.shape}

    def _explain_photos(self, public: list[models.Match], vector: np.ndarray | None) -> None:
        """Photo matches: their first caption, and the caption nearest to the query (`why.caption`), from one read
        of their captions."""
        photos = [match for match in public if match.modality == IMAGE and match.tags.get("pair_id")]
        if not photos:
            return
        captions = photo_captions(self.folders[TEXT], vector, [match.tags["pair_id"] for match in photos])
        for match in photos:
            found = captions.get(match.tags["pair_id"])
            if found is not None:
                match.caption, match.why.caption = found.first, found.nearest

    def first_captions(self, pair_ids: list[str]) -> dict[str, str | None]:
        """Each photo's first caption (None without one), by pair id: what `photo_captions` reads for a match."""
        found = photo_captions(self.folders[TEXT], None, pair_ids)
        return {pair_id: found[pair_id].first if pair_id in found else None for pair_id in pair_ids}


class CalibrationCache:
    """The calibration of each model, reloaded when `-t evaluate` writes a new one into the workspace."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = Path(workspace)
        self._cached: dict[str, tuple[float | None, Calibration | None]] = {}
        self._lock = threading.Lock()

    def get(self, model: str) -> Calibration | None:
        stamp = _mtime(workspace_calibration_path(self.workspace, model))
        with self._lock:
            cached = self._cached.get(model)
            if cached is None or cached[0] != stamp:
                cached = (stamp, load_calibration(model, self.workspace))
                self._cached[model] = cached
            return cached[1]


class VectorSampleCache:
    """A sample of each index's vectors (what a query's scores are standardised against), read again only when
    the index changed."""

    def __init__(self) -> None:
        self._cached: dict[Path, tuple[tuple[int, ...], np.ndarray]] = {}
        self._lock = threading.Lock()

    def distribution(self, folder: Path, vector: np.ndarray) -> ScoreDistribution | None:
        sample = self.sample(folder)
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if sample.size == 0 or sample.shape[1] != query.shape[1]:
            return None
        return score_distribution(query, sample)[0]

    def sample(self, folder: Path) -> np.ndarray:
        generations = store_generations(folder)
        with self._lock:
            cached = self._cached.get(folder)
            if cached is None or cached[0] != generations:
                cached = (generations, vector_sample(folder, SAMPLE_SIZE))
                self._cached[folder] = cached
            return cached[1]


class DuplicateCache:
    """The near-duplicate groups of the photo index, worked out again only when the index changed (a sync seen by
    the running server), and then only for the photos that changed (`crossmodal.library.duplicates.SimilarPairs`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._pairs: SimilarPairs | None = None
        self._cached: tuple[tuple[int, ...], DuplicateGroups] | None = None
        self._lock = threading.Lock()

    def groups(self) -> DuplicateGroups:
        generations = store_generations(self.folder)
        with self._lock:
            if self._cached is None or self._cached[0] != generations:
                groups, self._pairs = store_groups(self.folder, self._pairs)
                self._cached = (generations, groups)
            return self._cached[1]


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def newest_first(ids: Sequence[str], metadata: Mapping[str, dict | None]) -> list[str]:
    """``ids`` by the clock time they were taken, newest first (`taken` without its zone, as the filters compare
    it); those without a date last; ties keep their order in ``ids`` (relevance)."""
    def taken(doc_id: str) -> tuple[bool, str]:
        value = (metadata.get(doc_id) or {}).get("taken")
        return (True, value[:TAKEN_CHARS]) if isinstance(value, str) else (False, "")
    return sorted(ids, key=taken, reverse=True)  # sorted() is stable with reverse=True too


def _match_metadata(match: MatchDoc) -> dict | None:
    try:
        return parse_metadata(match.tags.get(METADATA_TAG), match.id)
    except ValueError:
        return None


def _public_match(match: MatchDoc) -> models.Match:
    image_id = match.id if match.modality == IMAGE else match.tags.get("image_id")
    public_tags = {key: value for key, value in match.tags.items() if key not in ("error", METADATA_TAG)}
    return models.Match(id=match.id, modality=match.modality, score=match.score, text=match.text,
                        image_url=f"/images/{image_id}" if image_id else None, tags=public_tags,
                        metadata=models.public_metadata(_match_metadata(match)))


def _record_match(record: Record, score: float) -> models.Match:
    tags = tags_of_record(record)
    image_id = record.id if record.modality == IMAGE else tags.get("image_id")
    return models.Match(id=record.id, modality=record.modality, score=score, text=record.text,
                        image_url=f"/images/{image_id}" if image_id else None, tags=tags,
                        metadata=models.public_metadata(record.metadata))
