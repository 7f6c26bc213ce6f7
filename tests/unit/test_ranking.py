"""How a query's answer is put together (crossmodal.search.ranking), on real store files: keyword rankings for photos by
name and by caption words, minus words, the fused order of each mode, relevance from a calibration and the nearest
caption of a photo."""
from pathlib import Path

import numpy as np
import pytest

from crossmodal.index import Record, VectorStore
from crossmodal.index.ids import caption_doc_id, image_doc_id
from crossmodal.modality import IMAGE, TEXT
from crossmodal.search.ranking import (
    KeywordRankings,
    PhotoCaptions,
    fused_order,
    keyword_rankings,
    photo_captions,
    relevances,
)

DIM = 8
PHOTOS = {  # pair id: captions
    "folder/2024/beach/sunset_walk.jpg": ["People walking along the shore.", "Waves at dusk."],
    "folder/2024/city/IMG_0001.jpg": ["A tram passes a bakery.", "A busy street at noon."],
    "folder/pets/rex.jpg": ["A dog sleeps on a sofa.", "A brown dog on cushions near the shore of a lake."],
}


def _unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ranking")
    folders = {IMAGE: root / "image_index", TEXT: root / "text_index"}
    with VectorStore(folders[IMAGE], IMAGE, "test-model", DIM) as photos, \
            VectorStore(folders[TEXT], TEXT, "test-model", DIM) as captions:
        for n, (pair_id, texts) in enumerate(PHOTOS.items()):
            photos.add([Record(image_doc_id(pair_id), IMAGE, None, f"/photos/{pair_id}", pair_id, "folder")],
                       _unit(n)[None])
            captions.add([Record(caption_doc_id(pair_id, k), TEXT, text, None, pair_id, "folder",
                                 tags={"image_id": image_doc_id(pair_id)}) for k, text in enumerate(texts)],
                         np.stack([_unit(100 + 10 * n + k) for k in range(len(texts))]))
    return folders


def test_photos_are_found_by_file_name_folder_name_and_caption_words(folders):
    beach, city, rex = (image_doc_id(pair_id) for pair_id in PHOTOS)
    by_folder = keyword_rankings(folders, IMAGE, "beach")
    assert [beach] in [list(ranking) for ranking in by_folder.rankings]
    assert by_folder.terms_of(beach) == ("beach",)
    by_caption = keyword_rankings(folders, IMAGE, "a tram")
    assert [list(ranking) for ranking in by_caption.rankings] == [[city]]
    both = keyword_rankings(folders, IMAGE, "shore")  # two captions of different photos
    assert sorted(id_ for ranking in both.rankings for id_ in ranking) == sorted([beach, rex])
    assert keyword_rankings(folders, IMAGE, "rex").rankings == ((rex,),)


def test_captions_are_found_by_their_words_and_minus_words_leave_hits_out(folders):
    dog_captions = keyword_rankings(folders, TEXT, "dog")
    assert sorted(dog_captions.rankings[0]) == sorted(caption_doc_id("folder/pets/rex.jpg", k) for k in (0, 1))
    shore = keyword_rankings(folders, IMAGE, "shore", exclude_text="dog")
    assert [list(ranking) for ranking in shore.rankings] == [[image_doc_id("folder/2024/beach/sunset_walk.jpg")]]
    assert keyword_rankings(folders, IMAGE, "the of a").rankings == ()


def test_fused_order_of_each_mode():
    keyword = KeywordRankings((("k1", "s2"), ("s2",)), {"k1": ("x",), "s2": ("y",)})
    assert fused_order("semantic", ["s1", "s2", "s3"], keyword) == ["s1", "s2", "s3"]
    assert fused_order("keyword", ["s1"], keyword) == ["s2", "k1"]  # in both keyword rankings: first
    hybrid = fused_order("hybrid", ["s1", "s2", "s3"], keyword)
    assert hybrid[0] == "s2" and set(hybrid) == {"s1", "s2", "s3", "k1"}
    assert fused_order("hybrid", ["s1", "s2"], KeywordRankings()) == ["s1", "s2"]
    with pytest.raises(ValueError, match="mode"):
        fused_order("fuzzy", [], keyword)


def test_a_photos_captions_are_its_first_and_the_one_nearest_to_the_query(folders):
    rex, beach = "folder/pets/rex.jpg", "folder/2024/beach/sunset_walk.jpg"
    for k in range(2):  # each caption of rex is the nearest to a query equal to its own vector
        found = photo_captions(folders[TEXT], _unit(100 + 10 * 2 + k), [rex, beach, "folder/none.jpg"])
        assert found[rex] == PhotoCaptions(first=PHOTOS[rex][0], nearest=PHOTOS[rex][k])
        assert found[beach].first == PHOTOS[beach][0] and found[beach].nearest in PHOTOS[beach]
        assert "folder/none.jpg" not in found
    without_query = photo_captions(folders[TEXT], None, [rex])
    assert without_query == {rex: PhotoCaptions(first=PHOTOS[rex][0], nearest=None)}
    other_dimension = photo_captions(folders[TEXT], np.ones(DIM + 1, dtype=np.float32), [rex])
    assert other_dimension == {rex: PhotoCaptions(first=PHOTOS[rex][0], nearest=None)}


class _Calibration:
    """A calibration whose relevance is the score itself (the real one is tested in test_relevance.py)."""

    def relevance(self, direction, scores, distribution, coverage=None):
        assert list(scores) == sorted(scores, reverse=True)  # best first, as the contract says
        return None if direction != "text->image" else np.asarray(scores) * 2


def test_relevances_follow_the_calibration_of_the_direction():
    scores = {"a": 0.1, "b": 0.4, "c": 0.3}
    assert relevances(_Calibration(), "text->image", scores, object()) == pytest.approx(
        {"a": 0.2, "b": 0.8, "c": 0.6})
    assert relevances(_Calibration(), "image->image", scores, object()) is None
    assert relevances(None, "text->image", scores, object()) is None
