"""Near-duplicate groups (crossmodal/library/duplicates.py) on real vectors and signatures: the offline model's
embeddings and the perceptual signatures (crossmodal/library/perceptual_hash.py) of six demo photos, their generated
copies (resized, JPEG quality 20, cropped, brightened) and 60 % crops, written by
`python bench/near_duplicates_bench.py --vectors tests/unit/data/near_duplicate_vectors.npz`.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crossmodal.index import Record, VectorStore
from crossmodal.library.duplicates import (
    FALLBACK_THRESHOLD,
    SIGNATURE_RULES,
    THRESHOLDS,
    SignatureRule,
    SimilarPairs,
    find_groups,
    group_pairs,
    signature_pairs,
    signature_rule_for,
    similar_pairs,
    store_groups,
    threshold_for,
)
from crossmodal.library.perceptual_hash import bytes_signature, hamming, signature_bits
from crossmodal.modality import IMAGE

DATA = Path(__file__).parent / "data" / "near_duplicate_vectors.npz"
THRESHOLD = THRESHOLDS["offline"]
RULE = SIGNATURE_RULES["offline"]
MARGIN = 1e-4  # far above float32 rounding of a cosine (~1e-7), far below the gaps the tests rely on
DOT = 1e-5  # a cosine the product computed (blocks of matrix products) against numpy's dot of the same vectors


@pytest.fixture(scope="module")
def photos() -> tuple[list[str], np.ndarray]:
    """Ids `<family>/<kind>` and their unit vectors."""
    data = np.load(DATA)
    return [f"{family}/{kind}" for family, kind in zip(data["family"], data["kind"])], data["vectors"]


@pytest.fixture(scope="module")
def signatures() -> list[str]:
    """The perceptual signatures of `photos`, in their order."""
    return [str(signature) for signature in np.load(DATA)["signature"]]


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
    assert signature_rule_for("offline:efficientnet-lite0") == RULE
    assert signature_rule_for("clip:ViT-B-32:openai") is None and signature_rule_for(None) is None  # unmeasured


def near(vectors: np.ndarray, signatures: list[str | None], i: int, j: int, rule: SignatureRule | None) -> bool:
    """The rule, pair by pair: cosine >= the threshold, or both signed, within the distance and the gate."""
    cosine = float(vectors[i] @ vectors[j])
    first, second = signatures[i], signatures[j]
    return cosine >= THRESHOLD or (rule is not None and first is not None and second is not None
                                   and hamming(first, second) <= rule.distance and cosine >= rule.gate)


def clustered_signatures(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Signatures in clusters (copies a few bits apart), some photos without one."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2 ** 63, size=max(1, count // 20), dtype=np.uint64)
    values = centres[rng.integers(0, len(centres), count)]
    for _ in range(6):
        flip = rng.random(count) < 0.5
        values[flip] ^= np.uint64(1) << rng.integers(0, 64, int(flip.sum())).astype(np.uint64)
    return values, rng.random(count) < 0.9


@pytest.mark.parametrize("distance", [0, 3, 6, 12])
@pytest.mark.parametrize("block", [5, 1024])
def test_signature_pairs_are_those_of_brute_force(distance, block):
    values, known = clustered_signatures(600, seed=distance)
    apart = np.bitwise_count(values[:, None] ^ values[None, :])
    expected = {(i, j) for i, j in zip(*np.nonzero(np.triu(apart <= distance, 1))) if known[i] and known[j]}
    for rows in (None, np.arange(0, 600, 2), np.array([3, 70, 599])):  # all (multi-index); many; a few against all
        first, second = signature_pairs(values, known, distance, rows, block)
        found = list(zip(first.tolist(), second.tolist()))
        assert len(found) == len(set(found)) and all(i < j for i, j in found)  # each pair once
        assert set(found) == {(i, j) for i, j in expected if rows is None or i in rows or j in rows}


def test_flat_images_and_malformed_signatures_have_none():
    values, known = signature_bits(["0000000000000000", "ff00000000000000", "f0f0f0f0f0f0f0f0", "xyz", None, ""])
    assert known.tolist() == [False, False, True, False, False, False]
    assert int(values[2]) == 0xF0F0F0F0F0F0F0F0


def test_signatures_find_copies_the_vectors_miss_and_keep_different_photos_apart(photos, signatures):
    ids, vectors = photos
    metadata = {doc_id: pixels(doc_id) for doc_id in ids}
    alone = find_groups(ids, vectors, THRESHOLD, metadata)
    both = find_groups(ids, vectors, THRESHOLD, metadata, signatures=signatures, rule=RULE)

    def with_original(groups) -> set[str]:
        """Copies (not 60 % crops) in their original's group."""
        return {doc_id for doc_id in ids if not doc_id.endswith(("/original", " 60%"))
                and groups.group_of(doc_id) is not None
                and groups.group_of(doc_id) is groups.group_of(doc_id.split("/")[0] + "/original")}

    assert len(with_original(both)) >= len(with_original(alone)) + 10  # of 48 copies: 23 -> 35
    for group in both.groups:
        assert len({member.id.split("/")[0] for member in group.members}) == 1  # one photo's copies
        first = ids.index(group.id)
        for member in group.members[1:]:
            assert near(vectors, list(signatures), first, ids.index(member.id), RULE)
            assert member.similarity == pytest.approx(float(vectors[ids.index(member.id)] @ vectors[first]), abs=DOT)
    missed = [f"{family}/{kind}" for family in ("camera", "coffee", "motorcycle") for kind in ("resize 50%", "jpeg q20")
              if alone.group_of(f"{family}/{kind}") is not alone.group_of(f"{family}/original")
              or alone.group_of(f"{family}/original") is None]
    assert missed  # copies the offline model's vectors alone leave out ...
    for doc_id in missed:  # ... are grouped with their original by their signatures
        group = both.group_of(doc_id)
        assert group is not None and group is both.group_of(doc_id.split("/")[0] + "/original")


def test_photos_without_a_signature_pair_by_the_threshold_alone(photos, signatures):
    ids, vectors = photos
    unsigned: list[str | None] = [None if doc_id.startswith("camera/") else signature
                                  for doc_id, signature in zip(ids, signatures)]
    pairs = SimilarPairs(THRESHOLD, rule=RULE)
    pairs.update(ids, vectors, unsigned)
    expected = {(i, j) for i in range(len(ids)) for j in range(i + 1, len(ids)) if near(vectors, unsigned, i, j, RULE)}
    found = {tuple(sorted((ids.index(a), ids.index(b)))) for a, others in pairs.neighbours.items() for b in others}
    assert found == expected
    assert all(float(vectors[i] @ vectors[j]) >= THRESHOLD for i, j in found if ids[i].startswith("camera/"))
    without_rule = SimilarPairs(THRESHOLD)  # a model without a rule ignores signatures
    without_rule.update(ids, vectors, signatures)
    assert {tuple(sorted((ids.index(a), ids.index(b)))) for a, others in without_rule.neighbours.items()
            for b in others} == {pair for pair in expected if float(vectors[pair[0]] @ vectors[pair[1]]) >= THRESHOLD}

    unsigned[ids.index("camera/original")] = signatures[ids.index("camera/original")]
    unsigned[ids.index("camera/resize 50%")] = signatures[ids.index("camera/resize 50%")]
    pairs.update(ids, vectors, unsigned)  # two photos gain their signature: compared again
    fresh = SimilarPairs(THRESHOLD, rule=RULE)
    fresh.update(ids, vectors, unsigned)
    assert ({a: set(b) for a, b in pairs.neighbours.items() if b}
            == {a: set(b) for a, b in fresh.neighbours.items() if b})
    assert "camera/resize 50%" in pairs.neighbours["camera/original"]


@pytest.mark.parametrize("block", [1, 7, 1024])
def test_pairs_are_those_of_brute_force_whatever_the_block(photos, block):
    _, vectors = photos
    rows, columns, scores = similar_pairs(vectors, THRESHOLD, block=block)
    assert set(zip(rows, columns)) == brute_force_pairs(vectors, THRESHOLD)
    assert len(rows) == len(set(zip(rows, columns)))  # each pair once
    assert all(row < column for row, column in zip(rows, columns))
    assert np.allclose(scores, [vectors[r] @ vectors[c] for r, c in zip(rows, columns)], atol=DOT)
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
            assert cosine >= THRESHOLD and member.similarity == pytest.approx(cosine, abs=DOT)
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


def test_a_pair_above_the_threshold_is_grouped_and_one_below_is_not(photos):
    """Both sides by MARGIN (float32 rounding of a 384-d cosine is ~1e-7, on any BLAS kernel): the threshold's side
    of each pair does not depend on the CPU."""
    ids, vectors = photos
    start, towards = vectors[ids.index("motorcycle/original")], vectors[ids.index("brick/original")]
    above, below = (chain(start, towards, THRESHOLD + sign * MARGIN, 2) for sign in (1, -1))
    assert float(above[0] @ above[1]) > THRESHOLD + MARGIN / 2 and float(below[0] @ below[1]) < THRESHOLD - MARGIN / 2
    assert [group.size for group in find_groups(["a", "b"], above, THRESHOLD).groups] == [2]
    assert find_groups(["a", "b"], below, THRESHOLD).groups == ()


def test_a_pair_exactly_at_the_threshold_is_grouped_and_just_above_it_is_not(photos):
    """At the boundary, through the product's own computation of the pair's cosine (similar_pairs, which find_groups
    runs on the same two rows): a threshold equal to that float groups the pair (>=), the next float32 above does
    not. Never a cosine computed by another code path (numpy's dot: another BLAS kernel, another rounding)."""
    ids, vectors = photos
    pair = chain(vectors[ids.index("motorcycle/original")], vectors[ids.index("brick/original")], THRESHOLD, 2)
    _, _, [cosine] = similar_pairs(pair, THRESHOLD - MARGIN)
    assert [group.size for group in find_groups(["a", "b"], pair, cosine).groups] == [2]
    assert find_groups(["a", "b"], pair, float(np.nextafter(np.float32(cosine), np.float32(2)))).groups == ()


def test_the_data_keeps_every_pair_off_the_threshold_and_the_gate(photos):
    """The other tests compare the product's pairs with numpy's cosines of the same vectors (another BLAS kernel):
    they agree on every machine only while no pair of the data lies within float rounding of the threshold or the
    signature gate. The data's pairs are >= 8e-5 away; a regenerated data file must keep MARGIN."""
    _, vectors = photos
    cosines = (vectors.astype(np.float64) @ vectors.T.astype(np.float64))[np.triu_indices(len(vectors), 1)]
    for boundary in (THRESHOLD, RULE.gate):
        assert np.abs(cosines - boundary).min() > MARGIN / 2, boundary


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
        assert found == pytest.approx(fresh.neighbours[doc_id], abs=DOT)
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


def test_groups_of_a_store_follow_its_changes(photos, signatures, tmp_path):
    ids, vectors = photos
    folder = tmp_path / "image_index"
    wanted = [i for i, doc_id in enumerate(ids) if doc_id.split("/")[0] in ("camera", "text")]
    records = [Record(f"img-{i:016x}", IMAGE, pair_id=ids[i], tags={"metadata": {**pixels(ids[i]), "path": ids[i]},
                                                                    "phash": signatures[i]})
               for i in wanted]
    with VectorStore(folder, IMAGE, "offline:test", vectors.shape[1]) as store:
        store.add(records, vectors[wanted])
    groups, pairs = store_groups(folder)
    assert groups.threshold == THRESHOLD and pairs.rule == RULE
    expected = find_groups([record.id for record in records], vectors[wanted], THRESHOLD,
                           {record.id: pixels(record.pair_id or "") for record in records},
                           [signatures[i] for i in wanted], RULE)
    assert groups.groups == expected.groups
    assert groups.groups != find_groups([record.id for record in records], vectors[wanted], THRESHOLD,
                                        {record.id: pixels(record.pair_id or "") for record in records}).groups
    original = next(record.id for record in records if record.pair_id == "camera/original")
    assert groups.groups[0].id == original  # the most pixels
    with VectorStore(folder, IMAGE, "offline:test", vectors.shape[1]) as store:
        store.delete([original])
    after, _ = store_groups(folder, pairs)
    assert after.group_of(original) is None and after.groups[0].id != original
    assert group_pairs(pairs.neighbours, THRESHOLD, lambda doc_id: 0).members()  # the pairs were updated in place
    assert store_groups(tmp_path / "nothing indexed")[0].groups == ()


def encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def test_a_signature_is_of_the_upright_photo_and_survives_resizing_and_re_encoding():
    import skimage.data

    photo = Image.fromarray(skimage.data.astronaut()).resize((800, 600))
    signature = bytes_signature(encoded(photo, "PNG"))
    assert re.fullmatch(r"[0-9a-f]{16}", signature)
    assert bytes_signature(encoded(photo, "PNG")) == signature  # exact copies share it
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: displayed turned 90 degrees clockwise
    stored = encoded(photo.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90, exif=exif.tobytes())
    assert hamming(bytes_signature(stored), signature) <= 4  # a JPEG at 1/8 scale, upright
    small = encoded(photo.resize((200, 150)), "JPEG", quality=30)
    assert hamming(bytes_signature(small), signature) <= RULE.distance
    assert hamming(bytes_signature(encoded(photo.transpose(Image.Transpose.ROTATE_90), "PNG")), signature) > 16
    flat = bytes_signature(encoded(Image.new("RGB", (300, 200), (40, 40, 40)), "PNG"))
    assert not signature_bits([flat])[1][0]  # a flat image's hash says nothing: no signature
