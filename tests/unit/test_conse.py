"""ConSE maths on hand-made numbers, and the offline backend on real photos with its real bundled weights."""
import numpy as np
import pytest

from crossmodal.backends.models.offline import conse_combine


def test_single_confident_class_gives_its_centred_embedding():
    embeddings = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    probs = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    vector = conse_combine(probs, embeddings, top_k=1)
    centred = embeddings[0] - embeddings.mean(axis=0)
    np.testing.assert_allclose(vector[0], centred / np.linalg.norm(centred), atol=1e-6)


def test_only_top_k_classes_contribute_with_their_probability_weights():
    embeddings = np.eye(4, dtype=np.float32)
    probs = np.array([[0.5, 0.3, 0.15, 0.05]], dtype=np.float32)
    vector = conse_combine(probs, embeddings, top_k=2)
    centred = embeddings - embeddings.mean(axis=0)
    expected = (0.5 * centred[0] + 0.3 * centred[1]) / 0.8
    np.testing.assert_allclose(vector[0], expected / np.linalg.norm(expected), atol=1e-6)


def test_centring_removes_the_shared_direction():
    rng = np.random.default_rng(0)
    shared = np.full(16, 5.0, dtype=np.float32)
    embeddings = shared + rng.normal(size=(50, 16)).astype(np.float32)
    probs = rng.dirichlet(np.ones(50), size=8).astype(np.float32)
    vectors = conse_combine(probs, embeddings, top_k=10)
    assert vectors.dtype == np.float32 and vectors.shape == (8, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Without centring every vector would point along `shared` (cosine near 1); centred they do not.
    assert abs(float((vectors @ (shared / np.linalg.norm(shared))).mean())) < 0.5


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="does not match"):
        conse_combine(np.ones((2, 5)), np.ones((4, 3)))
