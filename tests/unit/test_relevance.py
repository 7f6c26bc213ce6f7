"""crossmodal.search.relevance without a model: distributions, pooling, the fit, the JSON file and where it is read
from."""
from __future__ import annotations

import json

import numpy as np
import pytest

from crossmodal.search.relevance import (
    FORMAT_VERSION,
    IMAGE_TO_TEXT,
    KEYWORD_FEATURES,
    SEMANTIC_FEATURES,
    TEXT_TO_IMAGE,
    Calibration,
    LabelledQuery,
    ScoreDistribution,
    fit_calibration,
    keyword_direction,
    load_calibration,
    no_text_direction,
    pool,
    sample_positions,
    save_calibration,
    score_distribution,
    workspace_calibration_path,
)


def unit_rows(rng: np.random.Generator, rows: int, dim: int = 16) -> np.ndarray:
    vectors = rng.normal(size=(rows, dim))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic_queries(rng: np.random.Generator, count: int = 60) -> list[LabelledQuery]:
    """Half answerable (one true match far above the background), half not (only background)."""
    queries = []
    for number in range(count):
        background = np.sort(rng.normal(0.05, 0.05, size=10))[::-1]
        distribution = ScoreDistribution(0.05, 0.05, 500)
        if number % 2 == 0:
            scores = np.concatenate([[rng.uniform(0.45, 0.6)], background[:9]])
            labels = np.array([True] + [False] * 9)
        else:
            scores, labels = background, np.zeros(10, dtype=bool)
        queries.append(LabelledQuery(scores, distribution, labels))
    return queries


def keyword_queries(rng: np.random.Generator, count: int = 80) -> list[LabelledQuery]:
    """Like synthetic_queries but the true match's score overlaps the background; the true match holds most of
    the query's words, the others few."""
    queries = []
    for number in range(count):
        distribution = ScoreDistribution(0.05, 0.05, 500)
        scores = np.sort(rng.normal(0.1, 0.08, size=10))[::-1]
        coverage = rng.choice([0.0, 0.0, 0.0, 0.25, 0.5], size=10)
        labels = np.zeros(10, dtype=bool)
        if number % 2 == 0:
            position = int(rng.integers(0, 3))
            labels[position] = True
            coverage[position] = rng.choice([0.75, 1.0])
        queries.append(LabelledQuery(scores, distribution, labels, coverage=coverage))
    return queries


def test_score_distribution_is_the_mean_and_std_of_the_inner_products():
    rng = np.random.default_rng(0)
    queries, sample = unit_rows(rng, 3), unit_rows(rng, 40)
    for query, distribution in zip(queries, score_distribution(queries, sample)):
        scores = sample @ query
        assert (distribution.mean, distribution.std) == pytest.approx((scores.mean(), scores.std()), abs=1e-12)
        assert distribution.count == 40


def test_pooling_shards_equals_the_distribution_of_their_concatenation():
    rng = np.random.default_rng(1)
    query = unit_rows(rng, 1)
    shards = [unit_rows(rng, n) for n in (7, 1, 30, 0, 12)]
    pooled = pool([score_distribution(query, shard)[0] for shard in shards])
    whole = score_distribution(query, np.vstack([s for s in shards if len(s)]))[0]
    assert pooled.count == whole.count == 50
    assert pooled.mean == pytest.approx(whole.mean, abs=1e-12)
    assert pooled.std == pytest.approx(whole.std, abs=1e-12)
    assert pool([]) == ScoreDistribution(0.0, 0.0, 0)


def test_sample_positions_are_all_up_to_the_size_then_evenly_spread_and_deterministic():
    assert list(sample_positions(19)) == list(range(19))
    positions = sample_positions(1_000_000, 1000)
    assert len(positions) == 1000 and positions[0] == 0 and positions[-1] == 999_999
    assert (np.diff(positions) > 0).all()
    assert (positions == sample_positions(1_000_000, 1000)).all()


def test_fit_on_separable_data_gives_positives_high_relevance_and_negatives_low():
    rng = np.random.default_rng(2)
    calibration = fit_calibration("toy", {TEXT_TO_IMAGE: synthetic_queries(rng)}, "synthetic")
    for query in synthetic_queries(np.random.default_rng(3), 20):
        relevance = calibration.relevance(TEXT_TO_IMAGE, query.scores, query.distribution)
        assert relevance is not None and ((relevance >= 0) & (relevance <= 1)).all()
        assert (relevance[query.labels] > 0.9).all()
        assert (relevance[~query.labels] < 0.1).all()
    mapping = calibration.mappings[TEXT_TO_IMAGE]
    assert (mapping.queries, mapping.answerable_queries, mapping.pairs, mapping.positives) == (60, 30, 600, 30)
    assert mapping.quality.answerable_top_relevant == 1.0 and mapping.quality.unanswerable_flagged == 1.0
    assert mapping.quality.brier < 0.01


def test_relevance_is_monotone_in_the_score_for_a_fixed_distribution():
    calibration = fit_calibration("toy", {TEXT_TO_IMAGE: synthetic_queries(np.random.default_rng(4))}, "synthetic")
    scores = np.linspace(0.9, -0.2, 200)  # best first
    for distribution in (ScoreDistribution(0.0, 0.1, 19), ScoreDistribution(0.2, 0.02, 1000),
                         ScoreDistribution(0.1, 0.0, 1)):
        relevance = calibration.relevance(TEXT_TO_IMAGE, scores, distribution)
        assert relevance is not None and (np.diff(relevance) <= 0).all()
    assert all(c >= 0 for c in calibration.mappings[TEXT_TO_IMAGE].coefficients)


def test_relevance_of_a_match_does_not_depend_on_how_many_matches_were_asked_for():
    calibration = fit_calibration("toy", {TEXT_TO_IMAGE: synthetic_queries(np.random.default_rng(5))}, "synthetic")
    scores, distribution = np.array([0.5, 0.3, 0.2, 0.1]), ScoreDistribution(0.05, 0.05, 100)
    full = calibration.relevance(TEXT_TO_IMAGE, scores, distribution)
    assert full is not None
    assert calibration.relevance(TEXT_TO_IMAGE, scores[:2], distribution) == pytest.approx(full[:2])


def test_a_direction_without_a_mapping_has_no_relevance():
    calibration = fit_calibration("toy", {TEXT_TO_IMAGE: synthetic_queries(np.random.default_rng(6))}, "synthetic")
    assert calibration.relevance(IMAGE_TO_TEXT, np.array([0.5]), ScoreDistribution(0.0, 0.1, 10)) is None


def test_the_fit_refuses_unknown_directions_and_one_class_data():
    with pytest.raises(ValueError, match="unknown directions"):
        fit_calibration("toy", {"sound->image": synthetic_queries(np.random.default_rng(7))}, "synthetic")
    negatives = [LabelledQuery(np.array([0.2, 0.1]), ScoreDistribution(0.0, 0.1, 5), np.array([False, False]))]
    with pytest.raises(ValueError, match="both true and false"):
        fit_calibration("toy", {TEXT_TO_IMAGE: negatives}, "synthetic")


def test_keyword_coverage_is_a_third_feature_with_its_own_mapping_and_never_lowers_relevance():
    rng = np.random.default_rng(10)
    calibration = fit_calibration("toy", {TEXT_TO_IMAGE: synthetic_queries(rng),
                                          keyword_direction(TEXT_TO_IMAGE): keyword_queries(rng)}, "synthetic")
    mapping = calibration.mappings["text->image+keywords"]
    assert mapping.features == KEYWORD_FEATURES and len(mapping.coefficients) == 3
    assert calibration.mappings[TEXT_TO_IMAGE].features == SEMANTIC_FEATURES
    assert all(c >= 0 for c in mapping.coefficients) and mapping.coefficients[2] > 0
    distribution = ScoreDistribution(0.05, 0.05, 500)
    scores = np.full(101, 0.2)
    coverage = np.linspace(0.0, 1.0, 101)
    relevance = calibration.relevance(TEXT_TO_IMAGE, scores, distribution, coverage=coverage)
    assert relevance is not None and (np.diff(relevance) >= 0).all() and relevance[-1] > relevance[0]
    # the keyword mapping, not the semantic one, once coverage is given (all zeros included)
    semantic = calibration.relevance(TEXT_TO_IMAGE, scores, distribution)
    assert semantic is not None
    assert calibration.relevance(TEXT_TO_IMAGE, scores, distribution, coverage=np.zeros(101)) == pytest.approx(
        mapping.probabilities(scores, distribution, np.zeros(101)))
    assert not np.allclose(semantic, relevance)
    with pytest.raises(ValueError, match="coverages"):
        calibration.relevance(TEXT_TO_IMAGE, scores, distribution, coverage=np.zeros(3))
    # and still monotone in the score at a fixed coverage
    falling = calibration.relevance(TEXT_TO_IMAGE, np.linspace(0.9, -0.2, 50), distribution,
                                    coverage=np.full(50, 0.5))
    assert falling is not None and (np.diff(falling) <= 0).all()


def test_with_coverage_and_no_keyword_mapping_the_semantic_mapping_is_used():
    """A calibration written by `-t evaluate` has semantic mappings only: hybrid queries still get relevance."""
    calibration = fit_calibration("toy", {TEXT_TO_IMAGE: synthetic_queries(np.random.default_rng(11))}, "evaluate")
    scores, distribution = np.array([0.5, 0.3, 0.1]), ScoreDistribution(0.05, 0.05, 100)
    semantic = calibration.relevance(TEXT_TO_IMAGE, scores, distribution)
    assert calibration.relevance(TEXT_TO_IMAGE, scores, distribution, coverage=np.array([1.0, 0.0, 0.5])) == (
        pytest.approx(semantic))
    assert calibration.relevance(IMAGE_TO_TEXT, scores, distribution, coverage=np.zeros(3)) is None


def test_the_fit_refuses_coverage_in_a_semantic_direction_and_its_absence_in_a_keyword_one():
    rng = np.random.default_rng(12)
    with pytest.raises(ValueError, match="keyword coverage"):
        fit_calibration("toy", {TEXT_TO_IMAGE: keyword_queries(rng)}, "synthetic")
    with pytest.raises(ValueError, match="keyword coverage"):
        fit_calibration("toy", {keyword_direction(TEXT_TO_IMAGE): synthetic_queries(rng)}, "synthetic")


def test_json_round_trip_keeps_every_field_and_every_relevance(tmp_path):
    rng = np.random.default_rng(8)
    calibration = fit_calibration("vsepp:run 1", {TEXT_TO_IMAGE: synthetic_queries(rng),
                                                  IMAGE_TO_TEXT: synthetic_queries(rng)}, "synthetic pairs")
    again = Calibration.from_json(calibration.to_json())
    assert again == calibration
    with_keywords = fit_calibration("toy", {TEXT_TO_IMAGE: synthetic_queries(rng),
                                            keyword_direction(TEXT_TO_IMAGE): keyword_queries(rng)}, "both kinds")
    data = json.loads(with_keywords.to_json())
    assert data["format"] == FORMAT_VERSION == 2
    assert data["directions"]["text->image+keywords"]["features"] == list(KEYWORD_FEATURES)
    assert data["directions"]["text->image"]["features"] == list(SEMANTIC_FEATURES)
    again = Calibration.from_json(with_keywords.to_json())
    assert again == with_keywords
    scores, distribution, coverage = np.array([0.4, 0.2]), ScoreDistribution(0.0, 0.1, 50), np.array([0.5, 1.0])
    assert again.relevance(TEXT_TO_IMAGE, scores, distribution, coverage) == pytest.approx(
        with_keywords.relevance(TEXT_TO_IMAGE, scores, distribution, coverage))
    path = tmp_path / "calibration" / "x.json"
    save_calibration(calibration, path)
    assert Calibration.from_json(path.read_text()) == calibration
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]  # no temporary file left behind


def test_format_1_files_are_still_read_and_other_formats_or_bad_mappings_refused(tmp_path):
    calibration = fit_calibration("toy", {TEXT_TO_IMAGE: synthetic_queries(np.random.default_rng(13))}, "old")
    data = json.loads(calibration.to_json())
    old = {**data, "format": 1, "features": list(SEMANTIC_FEATURES),
           "directions": {name: {k: v for k, v in value.items() if k != "features"}
                          for name, value in data["directions"].items()}}
    assert Calibration.from_json(json.dumps(old)) == calibration
    with pytest.raises(ValueError, match="format 3 is not one this version reads"):
        Calibration.from_json(json.dumps({**data, "format": 3}))
    wrong_features = json.loads(json.dumps(data))
    wrong_features["directions"]["text->image"]["features"] = list(KEYWORD_FEATURES)
    with pytest.raises(ValueError, match="features"):
        Calibration.from_json(json.dumps(wrong_features))
    negative = json.loads(json.dumps(data))
    negative["directions"]["text->image"]["coefficients"][0] = -1.0
    with pytest.raises(ValueError, match="non-negative"):
        Calibration.from_json(json.dumps(negative))
    with pytest.raises(ValueError, match="unknown directions"):
        Calibration.from_json(json.dumps({**data, "directions": {"sound->image+keywords": {}}}))
    path = workspace_calibration_path(tmp_path, "offline")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**data, "format": 99}))
    with pytest.raises(ValueError, match=f"cannot read the relevance calibration {path}"):
        load_calibration("offline", tmp_path)


def test_load_prefers_the_workspace_file_then_the_shipped_one_then_none(tmp_path):
    shipped = load_calibration("offline", None)
    assert shipped is not None and shipped.model == "offline"
    assert set(shipped.mappings) == {TEXT_TO_IMAGE, IMAGE_TO_TEXT, keyword_direction(TEXT_TO_IMAGE),
                                     no_text_direction(TEXT_TO_IMAGE)}
    assert load_calibration("offline", tmp_path) == shipped  # the workspace has none
    evaluated = fit_calibration("offline", {TEXT_TO_IMAGE: synthetic_queries(np.random.default_rng(9))}, "evaluate")
    save_calibration(evaluated, workspace_calibration_path(tmp_path, "offline"))
    assert load_calibration("offline", tmp_path) == evaluated
    assert load_calibration("no-such-model", tmp_path) is None
    assert workspace_calibration_path(tmp_path, "vsepp:a/b").name == "vsepp_a_b.json"
