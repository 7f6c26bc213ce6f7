"""Turns what the query flow found for a search into its public answer: ranked, calibrated and explained.

The ranking rules live in `crossmodal.ranking`; this module feeds them the gateway's caches (the calibration of
the serving model, a sample of each index's vectors) and builds the response models. Everything here reads
SQLite: the gateway calls it off the event loop.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossmodal.ids import caption_doc_id, caption_id_prefix
from crossmodal.modality import IMAGE, TEXT
from crossmodal.ranking import (
    FUSION_DEPTH,
    KeywordRankings,
    fused_order,
    keyword_coverage,
    keyword_rankings,
    nearest_captions,
    relevances,
)
from crossmodal.records import tags_of_record
from crossmodal.relevance import (
    NO_GOOD_MATCH_BELOW,
    SAMPLE_SIZE,
    Calibration,
    ScoreDistribution,
    load_calibration,
    score_distribution,
    workspace_calibration_path,
)
from crossmodal.store import Record, read_records, read_vectors, records_with_pair_id, store_generations, vector_sample
from serving.http import api_models as models
from serving.http.plans import SearchPlan
from serving.wire import MatchDoc


@dataclass(frozen=True)
class FlowResult:
    """What the query flow returned for one search: its matches (best first) and the query's vector."""

    matches: list[MatchDoc]
    vector: np.ndarray | None
    model: str | None


def search_depth(plan: SearchPlan) -> int:
    """How many vector matches to ask the indexers for: fusion needs a deeper list than the page shows."""
    return plan.limit if plan.ranking_mode() == "semantic" else max(plan.limit, FUSION_DEPTH)


class AnswerBuilder:
    def __init__(self, folders: Mapping[str, Path], workspace: Path) -> None:
        self.folders = dict(folders)
        self.calibrations = CalibrationCache(workspace)
        self.samples = VectorSampleCache()

    def answer(self, plan: SearchPlan, found: FlowResult) -> models.SearchResponse:
        mode = plan.ranking_mode()
        semantic = {match.id: match for match in found.matches}
        keyword = KeywordRankings()
        if mode != "semantic":
            keyword = keyword_rankings(self.folders, plan.target, plan.keyword_text() or "", plan.exclude_text())
        order = fused_order(mode, list(semantic), keyword)[:plan.limit]
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
        relevance = relevances(calibration, plan.direction(), {doc_id: scores[doc_id] for doc_id in order},
                               distribution, coverage)
        public = [_public_match(semantic[doc_id]) if doc_id in semantic else _record_match(others[doc_id], 0.0)
                  for doc_id in order]
        for match in public:
            match.score = float(scores.get(match.id, match.score))
            match.relevance = relevance.get(match.id) if relevance else None
            match.why.keywords = list(keyword.terms_of(match.id))
        self._explain_photos(public, found.vector)
        best = max((match.relevance for match in public if match.relevance is not None), default=None)
        if not order:  # nothing matched (keyword mode, an empty index): nothing good either, calibrated or not
            no_good_match: bool | None = True
        else:
            no_good_match = None if relevance is None else (best is None or best < NO_GOOD_MATCH_BELOW)
        return models.SearchResponse(
            query_modality=plan.query_modality, modality=plan.target, mode=mode, no_good_match=no_good_match,
            score_distribution=models.ScoreDistribution(**vars(distribution)) if distribution else None,
            matches=public)

    def _scores(self, folder: Path, ids: Sequence[str], vector: np.ndarray | None) -> dict[str, float]:
        """Cosines of matches that only the keyword search found, from their stored vectors."""
        if vector is None or not ids:
            return {}
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        return {doc_id: float(stored @ query) for doc_id, stored in read_vectors(folder, list(ids)).items()
                if stored.shape == query.shape}

    def _explain_photos(self, public: list[models.Match], vector: np.ndarray | None) -> None:
        """Photo matches: their first caption, and the caption nearest to the query (`why.caption`)."""
        photos = [match for match in public if match.modality == IMAGE and match.tags.get("pair_id")]
        if not photos:
            return
        pair_ids = [match.tags["pair_id"] for match in photos]
        first = self.first_captions(pair_ids)
        nearest = nearest_captions(self.folders[TEXT], vector, pair_ids) if vector is not None else {}
        for match in photos:
            match.caption = first.get(match.tags["pair_id"])
            match.why.caption = nearest.get(match.tags["pair_id"])

    def first_captions(self, pair_ids: list[str]) -> dict[str, str | None]:
        """Each photo's first caption, by pair id: caption 0 of every photo in one read, and a lookup of its other
        captions only for a photo whose caption 0 is not stored (skipped when it was indexed)."""
        first_ids = {pair_id: caption_doc_id(pair_id, 0) for pair_id in pair_ids}
        stored = read_records(self.folders[TEXT], list(first_ids.values()))
        captions: dict[str, str | None] = {}
        for pair_id, caption_id in first_ids.items():
            if caption_id in stored:
                captions[pair_id] = stored[caption_id].text
            else:
                others = records_with_pair_id(self.folders[TEXT], pair_id, caption_id_prefix(pair_id), limit=1)
                captions[pair_id] = others[0].text if others else None
        return captions


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


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _public_match(match: MatchDoc) -> models.Match:
    image_id = match.id if match.modality == IMAGE else match.tags.get("image_id")
    public_tags = {key: value for key, value in match.tags.items() if key != "error"}
    return models.Match(id=match.id, modality=match.modality, score=match.score, text=match.text,
                        image_url=f"/images/{image_id}" if image_id else None, tags=public_tags)


def _record_match(record: Record, score: float) -> models.Match:
    tags = tags_of_record(record)
    image_id = record.id if record.modality == IMAGE else tags.get("image_id")
    return models.Match(id=record.id, modality=record.modality, score=score, text=record.text,
                        image_url=f"/images/{image_id}" if image_id else None, tags=tags)
