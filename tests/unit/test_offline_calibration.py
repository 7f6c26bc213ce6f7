"""The offline model's shipped relevance calibration against its data and against the held-out queries (real model).

Issue 12 asks for >= 85 % of answerable held-out queries with a returned match of relevance >= 0.5 and >= 85 % of
unanswerable ones flagged no_good_match (5 matches returned, as in bench/relevance_report.py).

- Semantic mode does not get there: the offline model's R@1 on the held-out answerable queries is 53 %, and a
  calibrated relevance cannot call a wrong best match right (33 % / 81 %).
- Hybrid mode (the default; keyword coverage as a third feature, matches in the fused order) flags 93 % of the
  unanswerable ones (a real test) and finds 83 % (25 of 30) of the answerable ones, one query short of 85 %.

The measured shares are pinned below as floors (a regression guard) and every target not met is a strict xfail,
which fails as soon as it is met, so that this file gets updated then.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from caption_less_data import CALIBRATION as CAPTION_LESS
from caption_less_data import CaptionLessCalibration, available
from fit_offline_calibration import description, fit
from relevance_data import (
    DATA,
    MODE_SETS,
    SHIPPED,
    TEXT_TO_IMAGE_KEYWORDS,
    DemoEncoded,
    calibration_description,
    heldout_sets,
    returned_relevance,
)

from crossmodal.search.relevance import (
    IMAGE_TO_TEXT,
    NO_GOOD_MATCH_BELOW,
    TEXT_TO_IMAGE,
    Calibration,
    load_calibration,
    no_text_direction,
    score_distribution,
)

TEXT_TO_IMAGE_NO_TEXT = no_text_direction(TEXT_TO_IMAGE)


@pytest.fixture(scope="module")
def encoded() -> DemoEncoded:
    return DemoEncoded()


@pytest.fixture(scope="module")
def shipped() -> Calibration:
    return Calibration.from_json(SHIPPED.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def heldout(encoded: DemoEncoded) -> dict:
    return heldout_sets(encoded)


def shares(calibration: Calibration, heldout: dict, direction: str, mode: str = "semantic") -> tuple[float, float]:
    """(answerable with a returned match of relevance >= 0.5, unanswerable flagged) as the gateway answers."""
    answerable, unanswerable = heldout[MODE_SETS[mode][direction]]

    def best(query) -> float:
        return float(np.max(returned_relevance(calibration, direction, query)))

    return (float(np.mean([best(q) >= NO_GOOD_MATCH_BELOW for q in answerable.queries])),
            float(np.mean([best(q) < NO_GOOD_MATCH_BELOW for q in unanswerable.queries])))


def test_the_package_loads_the_shipped_calibration(shipped):
    assert load_calibration("offline", None) == shipped
    assert set(shipped.mappings) == {TEXT_TO_IMAGE, IMAGE_TO_TEXT, TEXT_TO_IMAGE_KEYWORDS, TEXT_TO_IMAGE_NO_TEXT}
    assert all(c >= 0 for mapping in shipped.mappings.values() for c in mapping.coefficients)


def test_the_shipped_file_is_what_the_fit_script_makes_of_the_calibration_data(encoded, shipped):
    captions = json.loads((DATA / "calibration_captions.json").read_text())["captions"]
    unanswerable = json.loads((DATA / "calibration_unanswerable.json").read_text())["queries"]
    assert shipped.description == description() and description().startswith(calibration_description())
    text_to_image = shipped.mappings[TEXT_TO_IMAGE]
    count = sum(len(c) for c in captions.values())
    assert text_to_image.queries == 2 * count + len(unanswerable)  # answerable, leave-one-out, unanswerable
    assert shipped.mappings[TEXT_TO_IMAGE_KEYWORDS].queries == text_to_image.queries  # the same, in hybrid mode
    assert shipped.mappings[IMAGE_TO_TEXT].queries == 2 * len(captions)
    caption_less = json.loads(CAPTION_LESS.read_text())
    caption_less_count = sum(len(photo["queries"]) for photo in caption_less["photos"].values())
    no_text = shipped.mappings[TEXT_TO_IMAGE_NO_TEXT]  # fitted on the caption-less calibration set alone
    assert (no_text.queries, no_text.answerable_queries) == (2 * caption_less_count + len(caption_less["unanswerable"]),
                                                             caption_less_count)
    with_photos = available(CAPTION_LESS)  # the caption-less set's photos ship in Debian packages
    refit = fit(encoded, CaptionLessCalibration.encode(encoded.backend) if with_photos else None)
    assert set(refit.mappings) == set(shipped.mappings) - (set() if with_photos else {TEXT_TO_IMAGE_NO_TEXT})
    for direction, again in refit.mappings.items():
        mapping = shipped.mappings[direction]
        assert again.features == mapping.features
        assert (again.queries, again.answerable_queries, again.pairs, again.positives) == (
            mapping.queries, mapping.answerable_queries, mapping.pairs, mapping.positives)
        assert again.coefficients == pytest.approx(mapping.coefficients, rel=1e-3, abs=1e-3)
        assert again.intercept == pytest.approx(mapping.intercept, rel=1e-3, abs=1e-3)
    if not with_photos:
        missing = f"{TEXT_TO_IMAGE_NO_TEXT} not refitted: apt-get install {' '.join(caption_less['packages'])}"
        if os.environ.get("CI"):  # CI installs them (.ci/run): there a missing photo is a failure, not a skip
            pytest.fail(missing)
        pytest.skip(missing)


def test_the_held_out_shares_do_not_fall_below_what_was_measured(heldout, shipped):
    """Measured when shipped (results/relevance.json): semantic text->image 33 % / 81 %, image->text 32 % / 95 %;
    hybrid text->image 83 % / 93 %."""
    answerable, flagged = shares(shipped, heldout, TEXT_TO_IMAGE)
    assert answerable >= 0.33 and flagged >= 0.81
    answerable, flagged = shares(shipped, heldout, IMAGE_TO_TEXT)
    assert answerable >= 0.31 and flagged >= 0.94
    answerable, flagged = shares(shipped, heldout, TEXT_TO_IMAGE, "hybrid")
    assert answerable >= 0.83 and flagged >= 0.92


MARGIN = 1e-3  # relevance: far above what another CPU's rounding changes (vectors ~1e-6, relevance ~1e-5)


def test_no_held_out_query_sits_on_the_no_good_match_boundary(heldout, shipped):
    """The floors above and the strict xfails below count queries whose best relevance is >= 0.5: they hold on every
    machine only while no query's best relevance is within float rounding of 0.5 (a CPU's other rounding would move
    it across, the share by one query, and a floor or a strict xfail fails). Measured: the closest is 0.004 away."""
    for mode, directions in MODE_SETS.items():
        for direction, name in directions.items():
            for labelled in heldout[name]:
                for query in labelled.queries:
                    best = float(np.max(returned_relevance(shipped, direction, query)))
                    assert abs(best - NO_GOOD_MATCH_BELOW) > MARGIN, (mode, direction, best)


def test_hybrid_relevance_uses_the_keyword_coverage_the_gateway_computes(encoded, heldout, shipped):
    """A hybrid query's matches come in the fused order with their coverage; the keyword mapping scores them."""
    answerable, _ = heldout[TEXT_TO_IMAGE_KEYWORDS]
    assert all(q.coverage is not None and ((q.coverage >= 0) & (q.coverage <= 1)).all() for q in answerable.queries)
    assert encoded.keywords.coverage("a man filming with a camera") == {"camera": 1.0}
    assert encoded.keywords.coverage("a dog catching a frisbee") == {}
    assert encoded.keywords.coverage("a man filming with a camera", without="camera") == {}  # leave-one-out store


def test_the_issue_example_no_longer_ranks_a_dog_query_above_a_true_match(encoded, shipped):
    """"a dog catching a frisbee" (0.251 on grass) is no longer more relevant than the camera photo (0.238)."""
    dog, camera = encoded.texts(["a dog catching a frisbee", "a man filming with a camera"])
    relevances = []
    for vector in (dog, camera):
        scores = np.sort(encoded.images @ vector)[::-1]
        distribution = score_distribution(vector[None, :], encoded.images)[0]
        relevance = shipped.relevance(TEXT_TO_IMAGE, scores[:10], distribution)
        assert relevance is not None
        relevances.append(float(relevance[0]))
    assert relevances[0] < relevances[1] - MARGIN  # 0.314 against 0.319: apart on any CPU


def test_the_issue_examples_in_hybrid_mode(encoded, shipped):
    """The dog query is no good match, the camera photo (every word of the query in its captions) is relevant."""
    dog, camera = encoded.texts(["a dog catching a frisbee", "a man filming with a camera"])
    dog_answer = encoded.keywords.hybrid("a dog catching a frisbee", dog, set())
    camera_answer = encoded.keywords.hybrid("a man filming with a camera", camera, {"camera"})
    assert np.max(returned_relevance(shipped, TEXT_TO_IMAGE, dog_answer)) < NO_GOOD_MATCH_BELOW
    relevance = returned_relevance(shipped, TEXT_TO_IMAGE, camera_answer)
    assert camera_answer.labels[0] and relevance[0] >= NO_GOOD_MATCH_BELOW


@pytest.mark.xfail(strict=True, reason="semantic: the offline model (R@1 53 %) finds 33 % of the answerable "
                                       "held-out queries, below issue 12's 85 %: see the module docstring")
def test_the_issue_answerable_target_in_semantic_mode(heldout, shipped):
    assert shares(shipped, heldout, TEXT_TO_IMAGE)[0] >= 0.85


@pytest.mark.xfail(strict=True, reason="semantic: 81 % of the unanswerable held-out queries flagged, below 85 %")
def test_the_issue_unanswerable_target_in_semantic_mode(heldout, shipped):
    assert shares(shipped, heldout, TEXT_TO_IMAGE)[1] >= 0.85


@pytest.mark.xfail(strict=True, reason="hybrid: 25 of 30 answerable held-out queries (83 %) have a match of "
                                       "relevance >= 0.5, one short of issue 12's 85 %")
def test_the_issue_answerable_target_in_hybrid_mode(heldout, shipped):
    assert shares(shipped, heldout, TEXT_TO_IMAGE, "hybrid")[0] >= 0.85


def test_the_issue_unanswerable_target_in_hybrid_mode(heldout, shipped):
    """Met: 93 % of the unanswerable held-out queries are flagged no_good_match in hybrid mode."""
    assert shares(shipped, heldout, TEXT_TO_IMAGE, "hybrid")[1] >= 0.85
