"""bench/hybrid_eval.py's scoring on canned /search answers, and its query file against the demo manifest."""
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from hybrid_eval import (
    DEFAULT_QUERIES,
    answer_rank,
    evaluate,
    format_table,
    load_queries,
    photo_name,
    ranked_photos,
)

from crossmodal.index.keywords import query_terms
from dataset import DEMO_MANIFEST, demo_target

PHOTOS = json.loads(Path(DEMO_MANIFEST).read_text())["photos"]


def match(pair_id, modality="image", score=0.3):
    return {"id": "img-x", "modality": modality, "score": score, "tags": {"pair_id": pair_id, "dataset": "demo"}}


ANSWER = {"query_modality": "text", "modality": "image", "matches": [
    match("demo/coffee.png"),
    match("demo/coffee.png"),  # the same photo twice counts once
    match("demo/china.jpg", modality="text"),  # a caption is not a photo match
    match("f8k/china.jpg"),  # another dataset
    {"id": "img-y", "modality": "image", "score": 0.1, "tags": {}},
    match("demo/china.jpg"),
]}


def test_demo_pair_ids_as_dataset_py_builds_them_name_their_photo():
    for photo in PHOTOS:
        pair_id = f"demo/{demo_target(photo, Path('images')).name}"
        assert photo_name(pair_id) == photo["name"]
    assert photo_name("folder/demo/coffee.png") is None and photo_name(None) is None


def test_ranks_count_distinct_demo_photo_matches():
    assert ranked_photos(ANSWER) == ["coffee", "china"]
    assert answer_rank(ANSWER, ["china"]) == 2
    assert answer_rank(ANSWER, ["moon", "coffee"]) == 1
    assert answer_rank(ANSWER, ["moon"]) is None
    assert answer_rank({"error": {"status": 400}}, ["moon"]) is None


def test_evaluate_scores_each_mode_and_reports_errors():
    answers = {"semantic": ANSWER, "keyword": {"matches": [match("demo/moon.png")]}}

    def post(body):
        assert body["limit"] == 5 and body["modality"] == "image"
        if body["mode"] == "hybrid":
            return 400, {"error": {"status": 400, "message": "unknown field mode"}}
        return 200, answers[body["mode"]]

    queries = {"paraphrases": [{"text": "a hot drink", "photos": ["coffee"]},
                               {"text": "a temple", "photos": ["china"]}],
               "file_names": [{"text": "moon", "photos": ["moon"]}],
               "caption_words": [{"text": "crater", "photos": ["moon"]}]}
    result = evaluate(post, queries)
    assert result["summary"]["paraphrases"]["semantic"] == {"queries": 2, "errors": 0, "R@1": 0.5, "R@5": 1.0}
    assert result["summary"]["paraphrases"]["keyword"] == {"queries": 2, "errors": 0, "R@1": 0.0, "R@5": 0.0}
    assert result["summary"]["file_names"]["hybrid"]["errors"] == 1
    assert result["queries"]["file_names"][0]["errors"]["hybrid"] == "400: unknown field mode"
    assert result["found_only_without_semantic"]["file_names"] == [
        {"text": "moon", "semantic": None, "keyword": 1, "hybrid": None}]
    table = format_table(result)
    assert "0.50 / 1.00" in table and "failed" in table and "'moon' (keyword @1)" in table


@pytest.fixture(scope="module")
def queries():
    return load_queries(DEFAULT_QUERIES)


def caption_words(photo) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", " ".join(photo["captions"]).lower()))


def test_two_paraphrases_per_photo_none_a_copy_of_a_caption(queries):
    names = {photo["name"] for photo in PHOTOS}
    assert Counter(name for item in queries["paraphrases"] for name in item["photos"]) == dict.fromkeys(names, 2)
    captions = [caption.lower().strip(". ") for photo in PHOTOS for caption in photo["captions"]]
    for item in queries["paraphrases"]:
        text = item["text"].lower()
        assert not any(text in caption or caption in text for caption in captions), item
        [photo] = [photo for photo in PHOTOS if photo["name"] == item["photos"][0]]
        shared = set(query_terms(text)) & caption_words(photo)
        assert len(shared) <= len(query_terms(text)) / 2, item  # mostly other words than its captions


def test_file_name_and_caption_word_queries(queries):
    assert len(queries["file_names"]) >= 10 and len(queries["caption_words"]) >= 10
    for item in queries["file_names"]:
        assert set(query_terms(item["text"])) <= set(item["photos"][0].split("_")), item
    for item in queries["caption_words"]:
        owners = {photo["name"] for photo in PHOTOS if set(query_terms(item["text"])) & caption_words(photo)}
        assert owners == set(item["photos"]), item
