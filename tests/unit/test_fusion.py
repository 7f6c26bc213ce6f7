"""Reciprocal rank fusion, checked against values worked out by hand."""
import pytest

from crossmodal.search.fusion import RRF_K, reciprocal_rank_fusion


def test_scores_are_the_sum_of_reciprocal_ranks():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]])
    assert RRF_K == 60
    assert [id_ for id_, _ in fused] == ["b", "a", "d", "c"]
    assert dict(fused) == pytest.approx({"b": 1 / 62 + 1 / 61, "a": 1 / 61, "d": 1 / 62, "c": 1 / 63})


def test_weights_scale_each_list():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]], weights=[2, 1])
    assert [id_ for id_, _ in fused] == ["b", "a", "c", "d"]
    assert dict(fused) == pytest.approx({"b": 2 / 62 + 1 / 61, "a": 2 / 61, "c": 2 / 63, "d": 1 / 62})
    assert dict(reciprocal_rank_fusion([["a"], ["b"]], weights=[1, 0])) == {"a": 1 / 61, "b": 0.0}


def test_k_changes_how_much_the_first_ranks_count():
    # one list ranks x first; both lists rank y second: with a small k the single first place wins
    rankings = [["x", "y"], ["z", "y"]]
    assert [id_ for id_, _ in reciprocal_rank_fusion(rankings, k=0)][:1] == ["x"]  # 1/1 against 1/2 + 1/2: a tie
    assert dict(reciprocal_rank_fusion(rankings, k=0)) == {"x": 1.0, "z": 1.0, "y": 1.0}
    assert [id_ for id_, _ in reciprocal_rank_fusion(rankings, k=60)][0] == "y"  # 2/62 > 1/61


def test_ties_are_broken_by_best_single_rank_then_id():
    assert [id_ for id_, _ in reciprocal_rank_fusion([["q", "p"], ["r", "p"]], k=0)] == ["q", "r", "p"]
    assert [id_ for id_, _ in reciprocal_rank_fusion([["y", "x"], ["x", "y"]])] == ["x", "y"]
    assert reciprocal_rank_fusion([["y", "x"], ["x", "y"]]) == reciprocal_rank_fusion([["x", "y"], ["y", "x"]])


def test_a_repeated_id_counts_once_at_its_best_rank():
    assert dict(reciprocal_rank_fusion([["a", "b", "a"]])) == pytest.approx({"a": 1 / 61, "b": 1 / 62})


def test_empty_inputs():
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], []]) == []
    assert reciprocal_rank_fusion([[], ["a"]]) == [("a", 1 / 61)]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"weights": [1.0]}, "1 weights for 2 rankings"),
    ({"weights": [1.0, -1.0]}, "non-negative"),
    ({"weights": [1.0, float("nan")]}, "finite"),
    ({"k": -1}, "k must be"),
    ({"k": True}, "k must be"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        reciprocal_rank_fusion([["a"], ["b"]], **kwargs)
