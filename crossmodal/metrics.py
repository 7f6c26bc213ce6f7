"""Retrieval metrics of the standard image-caption protocol (Karpathy splits, several captions per image)."""
from __future__ import annotations

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


def recall_summary(ranks: Sequence[int | None], retrieved: int, ks: Sequence[int] = DEFAULT_KS) -> dict:
    """R@K in percent, median and mean rank for one direction.

    `retrieved` is how many results each query asked for; a query whose relevant item was not among them is given
    rank `retrieved + 1`, so medr/meanr are exact while they stay within the retrieved depth and lower bounds beyond.
    """
    if not ranks:
        raise ValueError("no queries to evaluate")
    filled = [rank if rank is not None else retrieved + 1 for rank in ranks]
    summary: dict = {f"R@{k}": round(100.0 * sum(rank <= k for rank in filled) / len(filled), 2) for k in ks}
    summary["medr"] = float(statistics.median(filled))
    summary["meanr"] = round(statistics.fmean(filled), 2)
    summary["queries"] = len(filled)
    summary["depth"] = retrieved
    return summary


def rsum(image_to_text: dict, text_to_image: dict, ks: Sequence[int] = DEFAULT_KS) -> float:
    """Sum of the six recalls, the single number papers use to compare models."""
    return round(sum(image_to_text[f"R@{k}"] + text_to_image[f"R@{k}"] for k in ks), 2)
