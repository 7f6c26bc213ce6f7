"""bench/caption_less_report.py's shares, and the caption-less sets' shape, without the packages' photos (the report
and bench/caption_less_data.overlaps check the photos themselves, on the pixels, where the packages are installed)."""
from __future__ import annotations

from caption_less_data import CALIBRATION, HELDOUT, photo_sources, read
from caption_less_report import MIN_ABSENT, MIN_ANSWERABLE, shares


def test_the_held_out_set_has_enough_queries_and_no_source_of_the_calibration_set():
    heldout = read(HELDOUT)
    assert len(heldout["queries"]) >= MIN_ANSWERABLE >= 20 and len(heldout["absent"]) >= MIN_ABSENT >= 6
    assert not set(photo_sources(HELDOUT)) & set(photo_sources(CALIBRATION))
    files = set(heldout["files"])
    assert all(set(query["photos"]) <= files for query in heldout["queries"])
    assert not any(source.startswith("skimage:") for source in photo_sources(HELDOUT))  # the demo's package


def test_shares_count_right_first_flagged_and_absent_flagged():
    ids = {"a.jpg": "A", "a copy.jpg": "A", "b.jpg": "B", "c.jpg": "C"}
    queries = [{"text": "q1", "photos": ["a.jpg"]}, {"text": "q2", "photos": ["b.jpg"]},
               {"text": "q3", "photos": ["c.jpg"]}]
    found = [{"ids": ["A", "B"], "relevance": [0.7, 0.1], "no_good_match": False},  # right first, not flagged
             {"ids": ["B", "C"], "relevance": [0.3, 0.2], "no_good_match": True},  # right first, flagged
             {"ids": ["A", "B", "C"], "relevance": [0.4, 0.3, 0.2], "no_good_match": True},  # third
             {"ids": ["A"], "relevance": [0.2], "no_good_match": True},  # absent, flagged
             {"ids": ["B"], "relevance": [0.6], "no_good_match": False}]  # absent, not flagged
    row = shares(found, ["q1", "q2", "q3", "x1", "x2"], queries, ids)
    assert (row["right_first_count"], row["right_first"], row["right_in_top3"]) == (2, 0.6667, 1.0)
    assert row["right_first_flagged"] == 0.5 and row["absent"] == 2 and row["absent_flagged"] == 0.5
    assert row["queries"][0] == {"text": "q1", "answerable": True, "right_first": True, "first": "a.jpg",
                                 "best_relevance": 0.7, "no_good_match": False}
    assert row["queries"][4]["answerable"] is False and row["queries"][4]["first"] == "b.jpg"
