"""Composed queries: parts embedded by their own encoders, combined in the shared space ("a beach" + my dog - people).

The combination is the weighted sum of the parts' unit vectors, minus parts with negative weights, normalised
again: the inner product with the result is then the weighted sum of each part's cosine, divided by one number
per query, so the ranking it gives is exactly "as much like the plus parts and as little like the minus parts as
the weights say" (the same rule as rclip's `+`/`-` queries).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class EmptyCompositionError(ValueError):
    """The parts cancel out (e.g. the same text added and subtracted): nothing is left to search for."""


def compose(parts: Sequence[tuple[np.ndarray, float]]) -> np.ndarray:
    """The unit vector of sum(weight * part): `parts` are (unit vector, signed weight) pairs."""
    if not parts:
        raise ValueError("a composed query needs at least one part")
    vectors = np.stack([np.asarray(vector, dtype=np.float32).reshape(-1) for vector, _ in parts])
    weights = np.asarray([weight for _, weight in parts], dtype=np.float32)
    if (weights <= 0).all():
        raise ValueError("a composed query needs at least one part with a positive weight")
    combined = weights @ vectors
    norm = float(np.linalg.norm(combined))
    if norm < 1e-6 * float(np.abs(weights).sum()):
        raise EmptyCompositionError("the parts of the query cancel each other out: nothing is left to search for")
    return (combined / norm).astype(np.float32)
