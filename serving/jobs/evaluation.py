"""Runs every indexed caption and photo of a dataset through the query flow and scores the rankings."""
from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from crossmodal.datasets import ImageCaptions
from crossmodal.evaluation.metrics import first_relevant_rank, recall_summary, rsum
from crossmodal.index.ids import caption_doc_id, image_doc_id
from crossmodal.search.relevance import LabelledQuery, ScoreDistribution
from serving.jobs.client import SearchClient, image_query, text_query


def evaluate_pairs(client: SearchClient, pairs: Sequence[ImageCaptions], depth: int,
                   indexed_ids: Collection[str] | None = None) -> Evaluation:
    """image->text: hit if any of the image's indexed captions is ranked; text->image: the caption's own image.

    With `indexed_ids` (what the index holds), only what was indexed is evaluated: a photo skipped at indexing
    (a truncated file, say) is neither queried nor expected, and the report says how many were left out.
    """
    captions_of: dict[str, list[tuple[str, str]]] = {}
    for pair in pairs:
        captions = [(caption_doc_id(pair.pair_id, n), text) for n, text in enumerate(pair.captions)]
        captions_of[pair.pair_id] = [(id_, text) for id_, text in captions
                                     if indexed_ids is None or id_ in indexed_ids]
    evaluated = [pair for pair in pairs if (indexed_ids is None or image_doc_id(pair.pair_id) in indexed_ids)
                 and captions_of[pair.pair_id]]
    if not evaluated:
        raise ValueError("nothing to evaluate: no photo with a caption was indexed")
    captions_total = sum(len(captions_of[pair.pair_id]) for pair in evaluated)
    image_depth = min(depth, captions_total)
    text_depth = min(depth, len(evaluated))

    photo_queries = (image_query(pair.image_path, image_depth) for pair in evaluated)
    image_ranks = []
    samples: dict[str, list[LabelledQuery | None]] = {"image->text": [], "text->image": []}
    for pair, answer in zip(evaluated, tqdm(client.search_many(photo_queries), total=len(evaluated),
                                            desc="image->text", unit="query")):
        own = {id_ for id_, _ in captions_of[pair.pair_id]}
        ranked = [match["id"] for match in answer["matches"]]
        image_ranks.append(first_relevant_rank(ranked, own))
        samples["image->text"].append(_labelled(answer, own))

    caption_owner = [(image_doc_id(pair.pair_id), text) for pair in evaluated for _, text in captions_of[pair.pair_id]]
    text_queries = (text_query(text, text_depth) for _, text in caption_owner)
    text_ranks = []
    for (own_image, _), answer in zip(caption_owner, tqdm(client.search_many(text_queries), total=len(caption_owner),
                                                          desc="text->image", unit="query")):
        text_ranks.append(first_relevant_rank([match["id"] for match in answer["matches"]], {own_image}))
        samples["text->image"].append(_labelled(answer, {own_image}))

    image_to_text = recall_summary(image_ranks, image_depth)
    text_to_image = recall_summary(text_ranks, text_depth)
    metrics = {"images": len(evaluated), "captions": captions_total,
               "images_not_indexed": len(pairs) - len(evaluated), "image_to_text": image_to_text,
               "text_to_image": text_to_image, "rsum": rsum(image_to_text, text_to_image)}
    complete = {direction: [query for query in queries if query is not None]
                for direction, queries in samples.items()}
    return Evaluation(metrics, {direction: queries for direction, queries in complete.items()
                                if queries and len(queries) == len(samples[direction])})


@dataclass(frozen=True)
class Evaluation:
    """The metrics, and each direction's queries labelled for fitting the model's relevance calibration."""

    metrics: dict
    calibration_samples: dict[str, list[LabelledQuery]]


CALIBRATION_DEPTH = 20  # matches per query the calibration is fitted on: the top of the list is where it matters


def _labelled(answer: dict, relevant: Collection[str]) -> LabelledQuery | None:
    """One query's top scores with their labels (None when the server sent no score distribution)."""
    distribution = answer.get("score_distribution")
    if distribution is None:
        return None
    top = answer["matches"][:CALIBRATION_DEPTH]
    return LabelledQuery(scores=np.asarray([match["score"] for match in top], dtype=np.float32),
                         distribution=ScoreDistribution(**distribution),
                         labels=np.asarray([match["id"] in relevant for match in top], dtype=bool),
                         has_answer=True)  # every evaluation query has its pair indexed, even below the top kept
