"""Fusing rankings: reciprocal rank fusion of the semantic (vector) and keyword (FTS5 bm25) result lists."""
from __future__ import annotations

import math
from collections.abc import Sequence

RRF_K = 60


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K,
                           weights: Sequence[float] | None = None) -> list[tuple[str, float]]:
    """Fuse ranked lists of ids into one: ``score(id) = sum_i weights[i] / (k + rank_i(id))``, ranks from 1, best
    first (Cormack, Clarke and Buettcher, "Reciprocal Rank Fusion outperforms Condorcet and individual rank learning
    methods", SIGIR 2009).

    RRF uses only ranks, so it needs no calibration between a cosine similarity and a bm25 score, which live on
    unrelated scales. ``k = 60`` is the paper's value, which it found robust across TREC runs; it is not tuned on
    our data. A large ``k`` flattens the gap between the first ranks, so an id that both lists rank fairly high
    beats one that a single list ranks first.

    An id missing from a list gets nothing from it; an id repeated in one list counts at its first (best) rank.
    ``weights`` (default all 1, non-negative) scale each list's contribution. Ties in score are broken by the id's
    best rank in any single list, then by the id itself, so the result is deterministic.
    """
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k) or k < 0:
        raise ValueError(f"k must be a non-negative number, got {k!r}")
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"got {len(weights)} weights for {len(rankings)} rankings")
    if any(not math.isfinite(weight) or weight < 0 for weight in weights):
        raise ValueError(f"weights must be finite and non-negative, got {list(weights)}")
    scores: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    for ranking, weight in zip(rankings, weights):
        seen: set[str] = set()
        for rank, id_ in enumerate(ranking, start=1):
            if id_ in seen:
                continue
            seen.add(id_)
            scores[id_] = scores.get(id_, 0.0) + weight / (k + rank)
            best_rank[id_] = min(best_rank.get(id_, rank), rank)
    return sorted(scores.items(), key=lambda item: (-item[1], best_rank[item[0]], item[0]))
