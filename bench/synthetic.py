"""Synthetic embeddings for the index-size axis of the benchmarks (no model can encode a million photos here)."""
from collections.abc import Iterator

import numpy as np

CLUSTERS = 1000
NOISE = 0.6


def clustered_vectors(count: int, dim: int, seed: int, centres_seed: int = 0) -> np.ndarray:
    """Unit vectors scattered around shared cluster centres: closer to real embeddings than uniform noise.

    The centres depend only on ``centres_seed``, so batches made with different ``seed`` belong to one collection
    and queries made with another ``seed`` fall among them. Generated in float32 to keep the batches small.
    """
    centres = np.random.default_rng(centres_seed).standard_normal((CLUSTERS, dim), dtype=np.float32)
    rng = np.random.default_rng(seed)
    vectors = centres[rng.integers(0, CLUSTERS, count)]
    vectors += NOISE * rng.standard_normal((count, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def collection_batches(size: int, dim: int, batch: int = 10_000) -> Iterator[tuple[int, np.ndarray]]:
    """(first position, vectors) batches of one synthetic collection, so a million vectors are never all in memory."""
    for start in range(0, size, batch):
        yield start, clustered_vectors(min(batch, size - start), dim, seed=start + 2)
