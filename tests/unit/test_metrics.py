"""Our metrics against a reference written from the VSE++ evaluation code's definitions (`i2t`, `t2i`)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmodal.evaluation.metrics import first_relevant_rank, recall_at, recall_summary, rsum


def vsepp_summary(ranks: np.ndarray) -> tuple[float, float, float, float, float]:
    """The tail of VSE++'s i2t and t2i: R@1/5/10 from 0-based ranks, floor(median) + 1, mean + 1."""
    r1 = 100.0 * len(np.where(ranks < 1)[0]) / len(ranks)
    r5 = 100.0 * len(np.where(ranks < 5)[0]) / len(ranks)
    r10 = 100.0 * len(np.where(ranks < 10)[0]) / len(ranks)
    medr = np.floor(np.median(ranks)) + 1
    meanr = ranks.mean() + 1
    return r1, r5, r10, medr, meanr


def vsepp_i2t(sims: np.ndarray, captions_per_image: int = 5) -> tuple[float, float, float, float, float]:
    """VSE++ `i2t` on a similarity matrix [images, captions]: caption j belongs to image j // captions_per_image."""
    ranks = np.zeros(sims.shape[0])
    for index in range(sims.shape[0]):
        inds = np.argsort(sims[index])[::-1]
        rank = 1e20
        for i in range(captions_per_image * index, captions_per_image * index + captions_per_image, 1):
            tmp = np.where(inds == i)[0][0]
            if tmp < rank:
                rank = tmp
        ranks[index] = rank
    return vsepp_summary(ranks)


def vsepp_t2i(sims: np.ndarray, captions_per_image: int = 5) -> tuple[float, float, float, float, float]:
    """VSE++ `t2i`: for caption j, the rank of image j // captions_per_image among all images."""
    ranks = np.zeros(sims.shape[1])
    for j in range(sims.shape[1]):
        inds = np.argsort(sims[:, j])[::-1]
        ranks[j] = np.where(inds == j // captions_per_image)[0][0]
    return vsepp_summary(ranks)


def ours(sims: np.ndarray, captions_per_image: int = 5) -> tuple[dict, dict]:
    """Our ranks from the same matrix, through first_relevant_rank and recall_summary, full depth."""
    images, captions = sims.shape
    caption_ids = [f"t{j}" for j in range(captions)]
    image_ids = [f"i{i}" for i in range(images)]
    i2t_ranks = []
    for i in range(images):
        ranked = [caption_ids[j] for j in np.argsort(sims[i])[::-1]]
        own = {f"t{j}" for j in range(captions_per_image * i, captions_per_image * (i + 1))}
        i2t_ranks.append(first_relevant_rank(ranked, own))
    t2i_ranks = []
    for j in range(captions):
        ranked = [image_ids[i] for i in np.argsort(sims[:, j])[::-1]]
        t2i_ranks.append(first_relevant_rank(ranked, {f"i{j // captions_per_image}"}))
    return recall_summary(i2t_ranks, retrieved=captions), recall_summary(t2i_ranks, retrieved=images)


def as_tuple(summary: dict) -> tuple[float, ...]:
    return summary["R@1"], summary["R@5"], summary["R@10"], summary["medr"], summary["meanr"]


@pytest.mark.parametrize("images", [1, 2, 7, 12, 20])  # odd and even query counts (medr differs on even ones)
def test_both_directions_match_the_vsepp_reference(images):
    rng = np.random.default_rng(images)
    sims = rng.normal(size=(images, 5 * images))
    sims[np.arange(images), 5 * np.arange(images)] += 1.5  # make some pairs findable
    i2t, t2i = ours(sims)
    assert as_tuple(i2t) == pytest.approx(vsepp_i2t(sims), abs=0.01)
    assert as_tuple(t2i) == pytest.approx(vsepp_t2i(sims), abs=0.01)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 9), st.integers(0, 10_000))
def test_the_reference_agrees_on_random_matrices_with_ties(images, seed):
    rng = np.random.default_rng(seed)
    sims = rng.integers(0, 3, size=(images, 5 * images)).astype(float)  # many exact ties
    # Ties must break the same way in both: a stable argsort of the negated scores gives one shared order.
    order_sims = sims - 1e-9 * np.arange(sims.size).reshape(sims.shape)
    i2t, t2i = ours(order_sims)
    assert as_tuple(i2t) == pytest.approx(vsepp_i2t(order_sims), abs=0.01)
    assert as_tuple(t2i) == pytest.approx(vsepp_t2i(order_sims), abs=0.01)


def test_median_rank_on_an_even_number_of_queries_is_vsepps():
    # 0-based ranks 0, 0, 1, 2 -> median 0.5 -> floor 0 -> medr 1 (the plain median of 1-based ranks says 1.5)
    assert recall_summary([1, 1, 2, 3], retrieved=10)["medr"] == 1.0
    assert recall_summary([1, 2, 6, None], retrieved=10)["medr"] == 4.0  # 0-based 0, 1, 5, 10 -> 3 -> 4


def test_first_relevant_rank_takes_the_best_ranked_of_several_relevant():
    assert first_relevant_rank(["a", "b", "c", "d"], {"d", "c"}) == 3
    assert first_relevant_rank(["a", "b"], {"z"}) is None


def test_misses_beyond_the_depth_make_larger_recalls_unknown_not_perfect():
    summary = recall_summary([1, 2, None, None], retrieved=3)
    assert (summary["R@1"], summary["R@5"], summary["R@10"]) == (25.0, None, None)
    assert summary["ranks_complete"] is False
    assert recall_at([1, 2, 3], 10, retrieved=3) == 100.0  # nothing missed: every rank is known


def test_recall_summary_counts_misses_beyond_depth():
    summary = recall_summary([1, 2, 6, None], retrieved=10)
    assert (summary["R@1"], summary["R@5"], summary["R@10"]) == (25.0, 50.0, 75.0)
    assert summary["meanr"] == 5.0  # ranks 1, 2, 6, 11
    assert summary["queries"] == 4


def test_rsum_adds_six_recalls_and_is_unknown_when_one_is():
    a = {"R@1": 10.0, "R@5": 20.0, "R@10": 30.0}
    b = {"R@1": 1.0, "R@5": 2.0, "R@10": 3.0}
    assert rsum(a, b) == 66.0
    assert rsum(a, {**b, "R@10": None}) is None


def test_empty_ranks_rejected():
    with pytest.raises(ValueError):
        recall_summary([], retrieved=5)
