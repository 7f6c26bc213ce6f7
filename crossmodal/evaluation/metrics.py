"""Retrieval metrics of the standard image-caption protocol (Karpathy splits, several captions per image).

The conventions are those of the VSE++ evaluation code (`evaluation.py`, `i2t` / `t2i`): image->text takes, for
each image, the best rank of any of its captions; text->image the rank of each caption's own image; R@K is the
share of queries ranked within K; the median rank is `floor(median(0-based ranks)) + 1` and the mean rank
`mean(0-based ranks) + 1`. Papers report these numbers, so ours must be computed the same way to compare.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Sequence

DEFAULT_KS = (1, 5, 10)


def first_relevant_rank(ranked_ids: Sequence[str], relevant_ids: Collection[str]) -> int | None:
    """1-based rank of the best-ranked relevant id, or None when none was retrieved.

    image->text counts a hit when ANY of the image's captions is ranked; text->image has one relevant image.
    """
    for position, doc_id in enumerate(ranked_ids, start=1):
        if doc_id in relevant_ids:
            return position
    return None


def recall_at(ranks: Sequence[int | None], k: int, retrieved: int) -> float | None:
    """R@k in percent, or None when it cannot be known.

    A query whose relevant item was not among the `retrieved` results is a miss for every k <= retrieved; for a k
    beyond the retrieved depth it may or may not be within k, so R@k is unknown unless nothing was missed.
    """
    misses = sum(rank is None for rank in ranks)
    if k > retrieved and misses:
        return None
    return round(100.0 * sum(rank is not None and rank <= k for rank in ranks) / len(ranks), 2)


def recall_summary(ranks: Sequence[int | None], retrieved: int, ks: Sequence[int] = DEFAULT_KS) -> dict:
    """R@K in percent (None where unknown), median and mean rank for one direction, VSE++'s conventions.

    `retrieved` is how many results each query asked for; a query whose relevant item was not among them is given
    rank `retrieved + 1`, so medr/meanr are exact while they stay within the retrieved depth and lower bounds
    beyond (`ranks_complete` says which).
    """
    if not ranks:
        raise ValueError("no queries to evaluate")
    filled = [rank if rank is not None else retrieved + 1 for rank in ranks]
    summary: dict = {f"R@{k}": recall_at(ranks, k, retrieved) for k in ks}
    summary["medr"] = float(math.floor(statistics.median(rank - 1 for rank in filled)) + 1)
    summary["meanr"] = round(statistics.fmean(filled), 2)
    summary["queries"] = len(filled)
    summary["depth"] = retrieved
    summary["ranks_complete"] = all(rank is not None for rank in ranks)
    return summary


def rsum(image_to_text: dict, text_to_image: dict, ks: Sequence[int] = DEFAULT_KS) -> float | None:
    """Sum of the six recalls, the single number papers use to compare models (None if any recall is unknown)."""
    recalls = [summary[f"R@{k}"] for summary in (image_to_text, text_to_image) for k in ks]
    if any(value is None for value in recalls):
        return None
    return round(sum(recalls), 2)
