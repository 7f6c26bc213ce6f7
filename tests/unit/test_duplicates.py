"""Near-duplicate groups (crossmodal/duplicates.py) on real vectors: the offline model's embeddings of six demo photos,
their generated copies (resized, JPEG quality 20, cropped, brightened) and 60 % crops, written by
`python bench/near_duplicates_bench.py --vectors tests/unit/data/near_duplicate_vectors.npz`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossmodal.duplicates import (
    FALLBACK_THRESHOLD,
    THRESHOLDS,
    SimilarPairs,
    find_groups,
    group_pairs,
    similar_pairs,
    store_groups,
    threshold_for,
)
from crossmodal.modality import IMAGE
from crossmodal.store import Record, VectorStore

DATA = Path(__file__).parent / "data" / "near_duplicate_vectors.npz"
THRESHOLD = THRESHOLDS["offline"]


@pytest.fixture(scope="module")
def photos() -> tuple[list[str], np.ndarray]:
    """Ids `<family>/<kind>` and their unit vectors."""
    data = np.load(DATA)
    return [f"{family}/{kind}" for family, kind in zip(data["family"], data["kind"])], data["vectors"]


def pixels(doc_id: str) -> dict:
    """Metadata that makes each family's original its best photo (copies are smaller)."""
    return {"width": 1000 if doc_id.endswith("/original") else 500, "height": 800, "size_bytes": 1, "lat": None,
            "lon": None}


def brute_force_pairs(vectors: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    scores = vectors @ vectors.T
    return {(i, j) for i in range(len(vectors)) for j in range(i + 1, len(vectors)) if scores[i, j] >= threshold}


def test_threshold_per_model_with_a_fallback():
    assert threshold_for("offline") == threshold_for("offline:efficientnet-lite0") == THRESHOLD
    assert threshold_for("clip:ViT-B-32:openai") == threshold_for(None) == FALLBACK_THRESHOLD


@pytest.mark.parametrize("block", [1, 7, 1024])
def test_pairs_are_those_of_brute_force_whatever_the_block(photos, block):
    _, vectors = photos
    rows, columns, scores = similar_pairs(vectors, THRESHOLD, block=block)
    assert set(zip(rows, columns)) == brute_force_pairs(vectors, THRESHOLD)
    assert len(rows) == len(set(zip(rows, columns)))  # each pair once
    assert all(row < column for row, column in zip(rows, columns))
    assert np.allclose(scores, [vectors[r] @ vectors[c] for r, c in zip(rows, columns)], atol=1e-6)
    for some in (np.arange(0, len(vectors), 3), np.array([1, 40, 41])):  # sorted windows; a few against all
        rows, columns, _ = similar_pairs(vectors, THRESHOLD, some, block=block)
        assert len(rows) == len(set(zip(rows, columns)))
        assert set(zip(rows, columns)) == {(i, j) for i, j in brute_force_pairs(vectors, THRESHOLD)
                                           if i in some or j in some}


def test_copies_group_with_their_original_and_different_photos_never_share_a_group(photos):
    ids, vectors = photos
    found = find_groups(ids, vectors, THRESHOLD, {doc_id: pixels(doc_id) for doc_id in ids})
    assert found.groups and found.threshold == THRESHOLD
    for group in found.groups:
        assert group.size >= 2 and len({member.id.split("/")[0] for member in group.members}) == 1
        representative = vectors[ids.index(group.id)]
        for member in group.members[1:]:
            cosine = float(vectors[ids.index(member.id)] @ representative)
            assert cosine >= THRESHOLD and member.similarity == pytest.approx(cosine, abs=1e-6)
        assert [m.similarity for m in group.members[1:]] == sorted((m.similarity for m in group.members[1:]),
                                                                   reverse=True)
    camera = found.group_of("camera/original")
    assert camera is not None and camera.id == "camera/original"  # the most pixels: the original
    assert {"camera/resize 50%", "camera/jpeg q20", "camera/brightness +10%"} <= {m.id for m in camera.members}
    assert [group.size for group in found.groups] == sorted((group.size for group in found.groups), reverse=True)
    assert found.duplicates_of("camera/original") == camera.size - 1
    assert found.duplicates_of("text/resize 25%") == 0  # not within the threshold of any photo


def chain(start: np.ndarray, towards: np.ndarray, step_cosine: float, count: int) -> np.ndarray:
    """``count`` unit vectors from ``start`` along the great circle towards ``towards``, neighbours
    ``step_cosine`` apart."""
    direction = towards - (towards @ start) * start
    direction /= np.linalg.norm(direction)
    angles = np.arccos(step_cosine) * np.arange(count)
    return (np.cos(angles)[:, None] * start + np.sin(angles)[:, None] * direction).astype(np.float32)


def test_a_chain_of_close_photos_is_not_merged_into_one_group(photos):
    ids, vectors = photos
    links = chain(vectors[ids.index("coffee/original")], vectors[ids.index("chelsea_cat/original")], 0.997, 5)
    scores = links @ links.T
    assert all(scores[i, i + 1] >= THRESHOLD for i in range(4)) and scores[0, 2] < THRESHOLD
    names = [f"link-{i}" for i in range(5)]
    found = find_groups(names, links, THRESHOLD, {name: {"width": 10 - i, "height": 1} for i, name in enumerate(names)})
    # connected components would be one group of 5; around representatives: {0, 1}, {2, 3}, and 4 alone
    assert [[m.id for m in group.members] for group in found.groups] == [["link-0", "link-1"], ["link-2", "link-3"]]
    assert found.group_of("link-4") is None


def test_a_pair_exactly_at_the_threshold_is_grouped_and_just_below_is_not(photos):
    ids, vectors = photos
    pair = chain(vectors[ids.index("motorcycle/original")], vectors[ids.index("brick/original")], THRESHOLD, 2)
    cosine = float(pair[0] @ pair[1])
    assert [group.size for group in find_groups(["a", "b"], pair, cosine).groups] == [2]
    assert find_groups(["a", "b"], pair, float(np.nextafter(np.float32(cosine), np.float32(2)))).groups == ()


def test_updates_keep_the_pairs_of_a_computation_from_scratch(photos):
    ids, vectors = photos
    pairs = SimilarPairs(THRESHOLD, block=16)
    pairs.update(ids[:40], vectors[:40])
    changed = vectors.copy()
    changed[5] = vectors[60]  # a photo whose vector changed keeps its id
    later_ids = ids[3:] + ["extra"]
    later = np.vstack([changed[3:], vectors[ids.index("camera/original")][None]])
    pairs.update(later_ids, later)
    fresh = SimilarPairs(THRESHOLD)
    fresh.update(later_ids, later)
    kept = {doc_id: found for doc_id, found in pairs.neighbours.items() if found}
    assert kept.keys() == {doc_id for doc_id, found in fresh.neighbours.items() if found}
    for doc_id, found in kept.items():  # products of other blocks: equal to float32 rounding
        assert found == pytest.approx(fresh.neighbours[doc_id], abs=1e-6)
    assert "extra" in pairs.neighbours and not any(doc_id in pairs.neighbours for doc_id in ids[:3])


def test_collapse_keeps_the_best_ranked_member_and_pages_agree(photos):
    ids, vectors = photos
    found = find_groups(ids, vectors, THRESHOLD)
    ranked = list(np.random.default_rng(3).permutation(ids))
    collapsed = found.collapse(ranked)
    assert len(collapsed) == len(ids) - found.folded()
    for group in found.groups:
        kept = [doc_id for doc_id in collapsed if found.group_of(doc_id) is group]
        assert kept == [min((m.id for m in group.members), key=ranked.index)]
    for end in range(0, len(ranked), 7):  # a prefix collapses to a prefix: every page cut agrees
        assert found.collapse(ranked[:end]) == collapsed[:len(found.collapse(ranked[:end]))]
    camera = found.group_of("camera/original")
    assert camera is not None
    allowed = {member.id for member in camera.members[:2]}
    assert found.folded(allowed) == 1 and found.folded(set()) == 0


def test_groups_of_a_store_follow_its_changes(photos, tmp_path):
    ids, vectors = photos
    folder = tmp_path / "image_index"
    wanted = [i for i, doc_id in enumerate(ids) if doc_id.split("/")[0] in ("camera", "text")]
    records = [Record(f"img-{i:016x}", IMAGE, pair_id=ids[i], tags={"metadata": {**pixels(ids[i]), "path": ids[i]}})
               for i in wanted]
    with VectorStore(folder, IMAGE, "offline:test", vectors.shape[1]) as store:
        store.add(records, vectors[wanted])
    groups, pairs = store_groups(folder)
    assert groups.threshold == THRESHOLD
    expected = find_groups([record.id for record in records], vectors[wanted], THRESHOLD,
                           {record.id: pixels(record.pair_id or "") for record in records})
    assert groups.groups == expected.groups
    original = next(record.id for record in records if record.pair_id == "camera/original")
    assert groups.groups[0].id == original  # the most pixels
    with VectorStore(folder, IMAGE, "offline:test", vectors.shape[1]) as store:
        store.delete([original])
    after, _ = store_groups(folder, pairs)
    assert after.group_of(original) is None and after.groups[0].id != original
    assert group_pairs(pairs.neighbours, THRESHOLD, lambda doc_id: 0).members()  # the pairs were updated in place
    assert store_groups(tmp_path / "nothing indexed")[0].groups == ()
