"""Issue 12 over real HTTP on the demo: calibrated relevance and "no good match", composed queries (plus/minus),
and keyword search fused with meaning (hybrid, the default)."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELD_OUT = json.loads((ROOT / "bench" / "relevance" / "heldout_queries.json").read_text())
CAT, COFFEE, CAMERA, GRACE = "demo/chelsea_cat.png", "demo/coffee.png", "demo/camera.png", "demo/grace_hopper.jpg"


def search(client, **body) -> dict:
    response = client.post("/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def photos(answer: dict) -> list[str]:
    return [match["tags"]["pair_id"] for match in answer["matches"]]


def batch(client, queries: list[dict]) -> list[dict]:
    results = []
    for start in range(0, len(queries), 32):
        response = client.post("/search/batch", json={"queries": queries[start:start + 32]})
        assert response.status_code == 200, response.text
        results += response.json()["results"]
    return results


# --- relevance ------------------------------------------------------------------------------------------------------

# What the held-out report measured in-process (results/relevance.json): answerable queries with a match of relevance
# >= 0.5, unanswerable ones flagged. The issue's 85 % / 85 % targets are checked (and, where unmet, strict xfails) in
# tests/unit/test_offline_calibration.py; here the served answers must give at least the same shares.
MEASURED = {"hybrid": (25, 25), "semantic": (10, 22)}


@pytest.mark.parametrize("mode", ["hybrid", "semantic"])
def test_held_out_queries_are_told_apart_by_relevance_over_http(client, mode):
    """On queries never calibrated on, the served relevance flags as the held-out report measured, and
    no_good_match is exactly "the best relevance is below 0.5"."""
    answerable = [item["text"] for item in HELD_OUT["answerable"]]
    unanswerable = HELD_OUT["unanswerable"]
    answers = batch(client, [{"text": text, "limit": 5, "mode": mode} for text in answerable + unanswerable])
    for answer in answers:
        assert all(0.0 <= match["relevance"] <= 1.0 for match in answer["matches"])
        best = max(match["relevance"] for match in answer["matches"])
        assert answer["no_good_match"] is (best < 0.5)
    found = sum(not answer["no_good_match"] for answer in answers[:len(answerable)])
    flagged = sum(answer["no_good_match"] for answer in answers[len(answerable):])
    least_found, least_flagged = MEASURED[mode]
    assert found >= least_found, f"{found}/{len(answerable)} answerable queries found"
    assert flagged >= least_flagged, f"{flagged}/{len(unanswerable)} unanswerable queries flagged"


def test_the_issues_examples_a_missing_dog_is_no_good_match_and_a_man_filming_is_found(client):
    dog = search(client, text="a dog catching a frisbee", limit=3)
    assert dog["no_good_match"] is True and dog["matches"][0]["relevance"] < 0.5
    filming = search(client, text="a man filming with a camera", limit=3)
    assert filming["no_good_match"] is False
    assert photos(filming)[0] == CAMERA and filming["matches"][0]["relevance"] >= 0.5
    assert filming["score_distribution"]["count"] == 19  # every photo of the demo is in the sample


def test_photo_queries_are_calibrated_too_and_find_their_own_captions(client):
    cat_id = search(client, text="chelsea", limit=1, mode="keyword")["matches"][0]["id"]
    answer = search(client, image_id=cat_id, limit=3)
    assert (answer["query_modality"], answer["modality"], answer["mode"]) == ("image", "text", "semantic")
    assert answer["matches"][0]["tags"]["pair_id"] == CAT and answer["matches"][0]["relevance"] >= 0.5


def test_photo_matches_say_which_caption_is_nearest_to_the_query(client):
    answer = search(client, text="a tabby cat with green eyes", limit=1, mode="semantic")
    match = answer["matches"][0]
    assert match["tags"]["pair_id"] == CAT
    assert "green eyes" in match["why"]["caption"]  # the one of its three captions that says so


# --- composition ----------------------------------------------------------------------------------------------------

def test_minus_removes_what_it_describes_from_the_top_results(client):
    plain = photos(search(client, text="an animal", limit=3, mode="semantic"))
    assert plain[0] == CAT
    steered = photos(search(client, text="an animal", minus=[{"text": "a cat"}], limit=3, mode="semantic"))
    assert CAT not in steered
    by_photo = photos(search(client, text="an animal", minus=[{"image_id": _id_of(client, CAT)}], limit=3,
                             mode="semantic"))
    assert CAT not in by_photo


def test_two_plus_parts_rank_first_the_photo_that_matches_both(client):
    """Grace Hopper's portrait is a smiling woman wearing a tie: neither part alone ranks it first."""
    woman = photos(search(client, text="a smiling woman", limit=3, mode="semantic"))
    tie = photos(search(client, text="a tie", limit=3, mode="semantic"))
    assert woman[0] != GRACE and tie[0] != GRACE
    both = search(client, plus=[{"text": "a smiling woman"}, {"text": "a tie"}], limit=3, mode="semantic")
    assert photos(both)[0] == GRACE and both["query_modality"] == "text"


def test_weights_steer_a_photo_and_a_text_together(client):
    coffee_id = _id_of(client, COFFEE)
    light = photos(search(client, text="a cat", plus=[{"image_id": coffee_id, "weight": 0.1}], limit=1,
                          mode="semantic"))
    heavy = photos(search(client, text="a cat", plus=[{"image_id": coffee_id, "weight": 5}], limit=1,
                          mode="semantic"))
    assert (light[0], heavy[0]) == (CAT, COFFEE)


@pytest.mark.parametrize("body, status, words", [
    ({"minus": [{"text": "a cat"}]}, 400, ["send exactly one of"]),
    ({"text": "a cat", "plus": [{"text": "x", "image_id": "img-1"}]}, 400, ["plus[0]."]),
    ({"text": "a cat", "minus": [{"text": "   "}]}, 400, ["minus[0].text", "empty"]),
    ({"text": "a cat", "minus": [{"image": "bm90IGFuIGltYWdl"}]}, 400, ["minus[0].image"]),
    ({"text": "a cat", "plus": [{"image_id": "img-0000000000000000"}]}, 404, ["plus[0].image_id"]),
    ({"text": "a cat", "plus": [{"text": "x", "weight": 0}]}, 422, ["weight"]),
    ({"text": "a cat", "plus": [{"text": "x"}] * 9}, 422, ["plus"]),
    ({"text": "a cat", "plus": [{"text": "x", "colour": "red"}]}, 422, ["colour"]),
    ({"plus": [{"text": "a cat"}], "minus": [{"text": "a cat"}]}, 400, ["cancel"]),
    ({"text": "a cat", "mode": "fuzzy"}, 422, ["mode"]),
])
def test_bad_parts_are_refused_with_the_field_named(client, body, status, words):
    response = client.post("/search", json=body)
    assert response.status_code == status, response.text
    message = response.json()["error"]["message"]
    assert all(word in message for word in words), message
    assert client.get("/health").status_code == 200


# --- keyword search fused with meaning ------------------------------------------------------------------------------

def test_file_names_and_caption_words_the_model_misses_are_found_by_hybrid_search(client):
    assert photos(search(client, text="chelsea", limit=5, mode="semantic"))[0] != CAT
    hybrid = search(client, text="chelsea", limit=5)
    assert hybrid["mode"] == "hybrid" and photos(hybrid)[0] == CAT
    assert hybrid["matches"][0]["why"]["keywords"] == ["chelsea"]
    saucer = search(client, text="saucer", limit=5)
    assert photos(saucer)[0] == COFFEE and "saucer" in saucer["matches"][0]["why"]["keywords"]


def test_keyword_mode_returns_only_what_the_words_match(client):
    answer = search(client, text="coffee", limit=10, mode="keyword")
    assert photos(answer) == [COFFEE] and answer["matches"][0]["why"]["keywords"] == ["coffee"]
    stop_words_only = search(client, text="the of a", limit=10, mode="keyword")
    assert stop_words_only["matches"] == [] and stop_words_only["mode"] == "keyword"
    words_not_found = search(client, text="zeppelin", limit=10, mode="keyword")
    assert words_not_found["matches"] == [] and words_not_found["no_good_match"] is True


def test_captions_are_searched_by_keyword_too(client):
    answer = search(client, text="saucer", limit=3, modality="text", mode="keyword")
    assert answer["modality"] == "text" and "saucer" in answer["matches"][0]["text"].lower()


def _id_of(client, pair_id: str) -> str:
    name = pair_id.split("/")[-1].split(".")[0].replace("_", " ")
    for match in search(client, text=name, limit=5, mode="keyword")["matches"]:
        if match["tags"]["pair_id"] == pair_id:
            return match["id"]
    raise AssertionError(f"{pair_id} not found by its name")
