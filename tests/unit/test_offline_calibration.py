"""The offline model's shipped relevance calibration against its data and against the held-out queries (real model).

Issue 12 asks for >= 85 % of answerable held-out queries with top relevance >= 0.5 and >= 85 % of unanswerable ones
flagged no_good_match. The offline model does not get there: its R@1 on the held-out answerable queries is 53 %, and
a calibrated relevance cannot call a wrong best match right, so at most about that share can clear 0.5 honestly.
The measured shares are pinned below as a floor (a regression guard) and the targets themselves are a strict xfail,
which fails as soon as they are met, so that this file gets updated then.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from fit_offline_calibration import fit
from relevance_data import DATA, SHIPPED, DemoEncoded, calibration_description, heldout_sets

from crossmodal.relevance import (
    IMAGE_TO_TEXT,
    NO_GOOD_MATCH_BELOW,
    TEXT_TO_IMAGE,
    Calibration,
    load_calibration,
    score_distribution,
)


@pytest.fixture(scope="module")
def encoded() -> DemoEncoded:
    return DemoEncoded()


@pytest.fixture(scope="module")
def shipped() -> Calibration:
    return Calibration.from_json(SHIPPED.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def heldout(encoded: DemoEncoded) -> dict:
    return heldout_sets(encoded)


def shares(calibration: Calibration, heldout: dict, direction: str) -> tuple[float, float]:
    answerable, unanswerable = heldout[direction]

    def top(query) -> float:
        relevance = calibration.relevance(direction, query.scores, query.distribution)
        assert relevance is not None
        return float(relevance[0])

    return (float(np.mean([top(q) >= NO_GOOD_MATCH_BELOW for q in answerable.queries])),
            float(np.mean([top(q) < NO_GOOD_MATCH_BELOW for q in unanswerable.queries])))


def test_the_package_loads_the_shipped_calibration(shipped):
    assert load_calibration("offline", None) == shipped
    assert set(shipped.mappings) == {TEXT_TO_IMAGE, IMAGE_TO_TEXT}


def test_the_shipped_file_is_what_the_fit_script_makes_of_the_calibration_data(encoded, shipped):
    captions = json.loads((DATA / "calibration_captions.json").read_text())["captions"]
    unanswerable = json.loads((DATA / "calibration_unanswerable.json").read_text())["queries"]
    assert shipped.description == calibration_description()
    text_to_image = shipped.mappings[TEXT_TO_IMAGE]
    count = sum(len(c) for c in captions.values())
    assert text_to_image.queries == 2 * count + len(unanswerable)  # answerable, leave-one-out, unanswerable
    assert shipped.mappings[IMAGE_TO_TEXT].queries == 2 * len(captions)
    refit = fit(encoded)
    for direction, mapping in shipped.mappings.items():
        again = refit.mappings[direction]
        assert (again.queries, again.answerable_queries, again.pairs, again.positives) == (
            mapping.queries, mapping.answerable_queries, mapping.pairs, mapping.positives)
        assert again.coefficients == pytest.approx(mapping.coefficients, rel=1e-3, abs=1e-3)
        assert again.intercept == pytest.approx(mapping.intercept, rel=1e-3, abs=1e-3)


def test_the_held_out_shares_do_not_fall_below_what_was_measured(heldout, shipped):
    """Measured when shipped: text->image 33 % / 81 %, image->text 32 % / 95 % (results/relevance.json)."""
    answerable, flagged = shares(shipped, heldout, TEXT_TO_IMAGE)
    assert answerable >= 0.30 and flagged >= 0.77
    answerable, flagged = shares(shipped, heldout, IMAGE_TO_TEXT)
    assert answerable >= 0.30 and flagged >= 0.90


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
    assert relevances[0] < relevances[1]


@pytest.mark.xfail(strict=True, reason="issue 12's 85 %/85 % held-out targets are not met by the offline model "
                                       "(R@1 53 %): see the module docstring")
def test_the_issue_targets_on_held_out_queries(heldout, shipped):
    answerable, flagged = shares(shipped, heldout, TEXT_TO_IMAGE)
    assert answerable >= 0.85 and flagged >= 0.85
