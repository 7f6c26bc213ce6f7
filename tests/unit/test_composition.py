"""Composed queries: the combined vector ranks by the weighted sum of the parts' cosines."""
import numpy as np
import pytest

from crossmodal.search.composition import EmptyCompositionError, compose


def _unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_the_ranking_is_the_weighted_sum_of_each_parts_cosine():
    rng = np.random.default_rng(0)
    collection = _unit(rng, 200)
    a, b, c = _unit(rng, 3)
    query = compose([(a, 1.0), (b, 0.5), (c, -2.0)])
    parts = collection.astype(np.float64)
    expected = parts @ a + 0.5 * (parts @ b) - 2.0 * (parts @ c)
    # The product's order, in the expected scores, is descending: exactly, but for pairs closer than float32
    # rounding of the two computations (none in this data: its closest scores are 1e-4 apart), which another BLAS
    # kernel may order either way.
    assert (np.diff(expected[np.argsort(-(collection @ query), kind="stable")]) <= 1e-5).all()
    assert np.linalg.norm(query) == pytest.approx(1.0, abs=1e-5)


def test_a_single_part_is_itself():
    rng = np.random.default_rng(1)
    (a,) = _unit(rng, 1)
    assert np.allclose(compose([(a, 3.0)]), a, atol=1e-6)


def test_parts_that_cancel_out_and_queries_without_a_positive_part_are_refused():
    rng = np.random.default_rng(2)
    (a,) = _unit(rng, 1)
    with pytest.raises(EmptyCompositionError, match="cancel"):
        compose([(a, 1.0), (a, -1.0)])
    with pytest.raises(ValueError, match="positive"):
        compose([(a, -1.0)])
    with pytest.raises(ValueError):
        compose([])
