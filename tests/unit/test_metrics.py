import pytest

from crossmodal.metrics import first_relevant_rank, recall_summary, rsum


def test_first_relevant_rank_takes_the_best_ranked_of_several_relevant():
    assert first_relevant_rank(["a", "b", "c", "d"], {"d", "c"}) == 3
    assert first_relevant_rank(["a", "b"], {"z"}) is None


def test_recall_summary_counts_misses_beyond_depth():
    summary = recall_summary([1, 2, 6, None], retrieved=10)
    assert summary["R@1"] == 25.0
    assert summary["R@5"] == 50.0
    assert summary["R@10"] == 75.0
    assert summary["medr"] == 4.0  # ranks 1, 2, 6, 11
    assert summary["meanr"] == 5.0
    assert summary["queries"] == 4


def test_rsum_adds_six_recalls():
    a = {"R@1": 10.0, "R@5": 20.0, "R@10": 30.0}
    b = {"R@1": 1.0, "R@5": 2.0, "R@10": 3.0}
    assert rsum(a, b) == 66.0


def test_empty_ranks_rejected():
    with pytest.raises(ValueError):
        recall_summary([], retrieved=5)
