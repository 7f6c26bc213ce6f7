"""Issue 21 without a model: keyword evidence where it is meant (file names' camera words, field weights, `why.fields`)
and relevance on photos without captions (the `+no_text` mapping; absent keyword evidence is not evidence against).

The collection is a caption-less library as a phone and a camera name it (PXL_0005_small.jpg, DSC_0042.jpg, ...),
one photo with a caption, and a folder "2024"; vectors are random, the query's vector is built near the photo it
should find, so the semantic ranking is known."""
from __future__ import annotations

import json

import numpy as np
import pytest

from crossmodal.index import VectorStore, keyword_search
from crossmodal.index.ids import caption_doc_id, image_doc_id
from crossmodal.index.keywords import CAPTION, NAME, build_query, name_terms, query_terms
from crossmodal.index.tags import record_from_document, wire_tags_of_record
from crossmodal.modality import IMAGE, TEXT
from crossmodal.search.fusion import reciprocal_rank_fusion
from crossmodal.search.ranking import FIELD_WEIGHTS, KeywordRankings, fused_order, keyword_rankings, photos_with_text
from crossmodal.search.relevance import (
    TEXT_TO_IMAGE,
    Calibration,
    keyword_direction,
    load_calibration,
    no_text_direction,
)
from serving.http.answers import AnswerBuilder, FlowResult
from serving.http.plans import SearchPlan
from serving.http.queries import Query
from serving.wire import MatchDoc

DIM = 128
FILES = ["2023/PXL_0005_small.jpg", "2023/DSC_0042.jpg", "2023/IMG_1234 copy.jpg", "2024/IMG_0007.jpg",
         "2024/MVIMG_0008_edit.jpg", "beach_sunset.jpg", *(f"misc/DSC_{n:04d}.jpg" for n in range(100, 120))]
WATERFALL = "2023/DSC_0042.jpg"  # what "a small waterfall in a forest stream" shows
CAPTIONED = "beach_sunset.jpg"  # the one photo with a caption
CAPTION_TEXT = "people walking on a sandy beach"


def pair_of(path: str) -> str:
    return f"folder/lib/{path}"


def photo_of(path: str) -> str:
    return image_doc_id(pair_of(path))


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> dict:
    """The photo and caption indexes (records as the sync and the caption indexing write them) and the vectors."""
    root = tmp_path_factory.mktemp("caption-less")
    folders = {IMAGE: root / "image_index", TEXT: root / "text_index"}
    rng = np.random.default_rng(21)
    vectors = rng.normal(size=(len(FILES), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    records = []
    for path in FILES:
        metadata = {"path": path, "paths": [path], "taken": f"20{20 + FILES.index(path) % 5}-05-01T10:00:00",
                    "camera": None, "lat": None, "lon": None}
        tags = {"pair_id": pair_of(path), "dataset": "folder", "metadata": json.dumps(metadata)}
        records.append(record_from_document(photo_of(path), IMAGE, None, f"/lib/{path}", tags))
    with VectorStore(folders[IMAGE], IMAGE, "offline", DIM) as store:
        store.add(records, vectors)
    caption = record_from_document(caption_doc_id(pair_of(CAPTIONED), 0), TEXT, CAPTION_TEXT, None,
                                   {"pair_id": pair_of(CAPTIONED), "image_id": photo_of(CAPTIONED)})
    with VectorStore(folders[TEXT], TEXT, "offline", DIM) as store:
        store.add([caption], vectors[FILES.index(CAPTIONED)][None, :])
    return {"folders": folders, "vectors": vectors, "root": root}


def query_near(library: dict, path: str, cosine: float = 0.3) -> np.ndarray:
    """A query vector whose cosine with `path` is `cosine` (the offline model's true matches score about 0.3) and
    about 0 (+- 0.09) with the other photos, so `path` is its best photo."""
    photo = library["vectors"][FILES.index(path)].astype(np.float64)
    noise = np.random.default_rng(5).normal(size=DIM)
    noise -= (noise @ photo) * photo
    vector = cosine * photo + np.sqrt(1 - cosine ** 2) * noise / np.linalg.norm(noise)
    return vector.astype(np.float32)


def answer(library: dict, text: str, vector: np.ndarray, mode: str = "hybrid", sort: str = "relevance"):
    """The gateway's answer (serving.http.answers) to a text query whose flow found `vector`'s nearest photos."""
    with VectorStore(library["folders"][IMAGE], IMAGE, "offline", DIM) as store:
        found = store.search(vector, len(FILES))[0]
    matches = [MatchDoc(id=hit.record.id, modality=IMAGE, score=hit.score, uri=hit.record.uri,
                        tags=wire_tags_of_record(hit.record)) for hit in found]
    plan = SearchPlan(parts=[(Query(modality=TEXT, target=IMAGE, text=text), 1.0)], query_modality=TEXT,
                      target=IMAGE, limit=10, mode=mode, sort=sort)
    builder = AnswerBuilder(library["folders"], library["root"])
    return builder.answer(plan, FlowResult(matches, vector, "offline"))


# --- file names: camera words, counters, common words -------------------------------------------------------------

def test_camera_words_common_words_and_counters_are_not_searched_in_names():
    text = "a small waterfall in a forest stream"
    assert query_terms(text) == ("small", "waterfall", "forest", "stream")  # a caption is still searched for all
    assert name_terms(text) == ("waterfall", "forest", "stream")
    assert name_terms("IMG DSC PXL copy edit small bird 0005 20230612") == ("bird",)
    assert name_terms("small copy of the edit") == ()
    assert build_query("small copy", NAME) is None and build_query("small copy", CAPTION) is not None
    with pytest.raises(ValueError, match="field"):
        build_query("bird", "tags")


def test_a_query_of_numbers_alone_asks_for_a_name():
    assert name_terms("2024") == ("2024",)
    assert name_terms("IMG_1234") == ("1234",)  # "img" is never searched, the counter is


def test_a_small_photo_s_name_does_not_find_it_for_a_small_waterfall(library):
    folder = library["folders"][IMAGE]
    assert keyword_search(folder, "a small waterfall in a forest stream", 10, NAME) == []
    assert [hit.id for hit in keyword_search(folder, "small", 10, CAPTION)] == [photo_of(FILES[0])]  # before
    found = {hit.id for hit in keyword_search(folder, "2024", 10, NAME)}
    assert found == {photo_of("2024/IMG_0007.jpg"), photo_of("2024/MVIMG_0008_edit.jpg")}


@pytest.mark.parametrize("mode", ["hybrid", "semantic"])
def test_the_meaning_comes_first_not_the_file_name(library, mode):
    """The issue's example: `PXL_0005_small.jpg` came first for "a small waterfall in a forest stream"."""
    vector = query_near(library, WATERFALL)
    assert [m.id for m in answer(library, "a small waterfall in a forest stream", vector, mode).matches][0] == \
        photo_of(WATERFALL)
    bird = answer(library, "a small bird clinging to a tree trunk", query_near(library, FILES[7]), mode)
    assert bird.matches[0].id == photo_of(FILES[7])  # not the small photo
    assert all(not m.why.fields for m in bird.matches)  # no word of the query is in a name or caption


def test_a_name_hit_weighs_half_a_caption_hit_or_the_vector_ranking():
    keyword = KeywordRankings((("by-name",), ("by-caption",)), fields=(NAME, CAPTION))
    assert keyword.weights() == [FIELD_WEIGHTS[NAME], FIELD_WEIGHTS[CAPTION]] == [0.5, 1.0]
    assert fused_order("keyword", [], keyword) == ["by-caption", "by-name"]
    # in hybrid mode, a name hit alone ranks below a caption hit alone and below the vector ranking's first two
    order = fused_order("hybrid", ["meaning", "other"], keyword)
    assert order.index("by-name") == 3 and order.index("by-caption") < order.index("by-name")
    unweighted = [doc_id for doc_id, _ in reciprocal_rank_fusion([["meaning", "other"], ["by-name"]])]
    assert unweighted.index("by-name") < unweighted.index("other")  # what an unweighted fusion did


def test_why_names_the_field_each_word_matched(library):
    rankings = keyword_rankings(library["folders"], IMAGE, "sunset on the beach")
    assert rankings.fields_of(photo_of(CAPTIONED)) == {NAME: ["sunset", "beach"], CAPTION: ["beach"]}
    vector = query_near(library, CAPTIONED)
    matches = {m.id: m for m in answer(library, "sunset on the beach", vector).matches}
    why = matches[photo_of(CAPTIONED)].why
    assert why.fields == {NAME: ["sunset", "beach"], CAPTION: ["beach"]}
    assert set(why.keywords) == {"sunset", "beach"}
    assert all(not m.why.fields for doc_id, m in matches.items() if doc_id != photo_of(CAPTIONED))


# --- relevance of photos without captions --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped() -> Calibration:
    calibration = load_calibration("offline", None)
    assert calibration is not None and no_text_direction(TEXT_TO_IMAGE) in calibration.mappings
    return calibration


def _distribution(library: dict, vector: np.ndarray):
    from crossmodal.search.relevance import score_distribution

    return score_distribution(vector[None, :], library["vectors"])[0]


def test_a_photo_without_text_gets_the_no_text_mapping_in_every_mode(library, shipped):
    vector = query_near(library, WATERFALL)
    scores = np.sort(library["vectors"] @ vector)[::-1][:10].astype(np.float64)
    distribution = _distribution(library, vector)
    no_text = shipped.mappings[no_text_direction(TEXT_TO_IMAGE)].probabilities(scores, distribution)
    none = np.zeros(len(scores), dtype=bool)
    semantic = shipped.relevance(TEXT_TO_IMAGE, scores, distribution, has_text=none)
    hybrid = shipped.relevance(TEXT_TO_IMAGE, scores, distribution, coverage=np.zeros(len(scores)), has_text=none)
    assert semantic == pytest.approx(no_text) and hybrid == pytest.approx(no_text)
    # absent keyword evidence is not evidence against: the caption-ful keyword mapping read coverage 0 as such
    with_text = shipped.relevance(TEXT_TO_IMAGE, scores, distribution, coverage=np.zeros(len(scores)))
    assert with_text is not None and (hybrid > with_text).all()


def test_a_name_hit_still_counts_for_a_photo_without_text(library, shipped):
    vector = query_near(library, WATERFALL)
    scores = np.sort(library["vectors"] @ vector)[::-1][:4].astype(np.float64)
    distribution = _distribution(library, vector)
    coverage = np.asarray([0.0, 1.0, 0.0, 0.5])
    none = np.zeros(4, dtype=bool)
    values = shipped.relevance(TEXT_TO_IMAGE, scores, distribution, coverage=coverage, has_text=none)
    no_text = shipped.relevance(TEXT_TO_IMAGE, scores, distribution, has_text=none)
    keyword = shipped.mappings[keyword_direction(TEXT_TO_IMAGE)].probabilities(scores, distribution, coverage)
    assert values is not None and no_text is not None
    assert (values >= no_text).all() and values[[0, 2]] == pytest.approx(no_text[[0, 2]])
    assert values[1] == pytest.approx(max(no_text[1], keyword[1])) and values[1] > no_text[1]


def test_photos_with_text_keep_their_mapping_and_a_calibration_without_no_text_falls_back(library, shipped):
    vector = query_near(library, WATERFALL)
    scores = np.sort(library["vectors"] @ vector)[::-1][:4].astype(np.float64)
    distribution = _distribution(library, vector)
    coverage = np.asarray([0.5, 0.0, 0.0, 1.0])
    has_text = np.asarray([True, False, False, True])
    mixed = shipped.relevance(TEXT_TO_IMAGE, scores, distribution, coverage=coverage, has_text=has_text)
    textful = shipped.relevance(TEXT_TO_IMAGE, scores, distribution, coverage=coverage)
    assert mixed is not None and textful is not None and mixed[has_text] == pytest.approx(textful[has_text])
    semantic_only = Calibration("offline", "", {TEXT_TO_IMAGE: shipped.mappings[TEXT_TO_IMAGE]})
    fallback = semantic_only.relevance(TEXT_TO_IMAGE, scores, distribution, has_text=np.zeros(4, dtype=bool))
    assert fallback == pytest.approx(shipped.mappings[TEXT_TO_IMAGE].probabilities(scores, distribution))
    with pytest.raises(ValueError, match="has_text"):
        shipped.relevance(TEXT_TO_IMAGE, scores, distribution, has_text=np.ones(3, dtype=bool))


def test_the_gateway_scores_caption_less_photos_with_the_no_text_mapping(library, shipped):
    assert photos_with_text(library["folders"][TEXT], [pair_of(p) for p in FILES]) == {pair_of(CAPTIONED)}
    vector = query_near(library, WATERFALL)
    distribution = _distribution(library, vector)
    mapping = shipped.mappings[no_text_direction(TEXT_TO_IMAGE)]
    for mode in ("hybrid", "semantic"):
        for match in answer(library, "a small waterfall in a forest stream", vector, mode).matches:
            if match.id == photo_of(CAPTIONED):
                continue
            expected = mapping.probabilities(np.asarray([match.score]), distribution)[0]
            assert match.relevance == pytest.approx(expected, abs=1e-6), (mode, match.id)


def test_newest_first_on_a_caption_less_library_lists_the_photos_a_folder_name_found(library):
    """A keyword query for a folder ("2024"): its photos are relevant, by their name hit, and listed newest first."""
    vector = query_near(library, FILES[0], cosine=0.05)
    best = answer(library, "2024", vector, mode="keyword")
    newest = answer(library, "2024", vector, mode="keyword", sort="taken")
    expected = {photo_of("2024/IMG_0007.jpg"), photo_of("2024/MVIMG_0008_edit.jpg")}
    assert {m.id for m in best.matches} == expected and {m.id for m in newest.matches} == expected
    taken = [m.metadata.taken for m in newest.matches if m.metadata is not None]
    assert len(taken) == 2 and taken == sorted(taken, reverse=True)
    assert all(m.why.fields == {NAME: ["2024"]} for m in newest.matches)
