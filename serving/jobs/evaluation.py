"""Runs every caption and every image of a dataset through the query flow and scores the rankings."""
from __future__ import annotations

from collections.abc import Sequence

from tqdm import tqdm

from crossmodal.ids import caption_doc_id, image_doc_id
from crossmodal.metrics import first_relevant_rank, recall_summary, rsum
from dataset import ImageCaptions
from serving.jobs.client import SearchClient


def evaluate_pairs(client: SearchClient, pairs: Sequence[ImageCaptions], depth: int) -> dict:
    """image->text: hit if any of the image's captions is ranked; text->image: the caption's own image."""
    image_ranks, text_ranks = [], []
    captions_total = sum(len(pair.captions) for pair in pairs)
    image_depth = min(depth, captions_total)
    text_depth = min(depth, len(pairs))
    for pair in tqdm(pairs, desc="image->text", unit="query"):
        own_captions = {caption_doc_id(pair.pair_id, n) for n in range(len(pair.captions))}
        ranked = [match["id"] for match in client.search_image(pair.image_path, limit=image_depth)]
        image_ranks.append(first_relevant_rank(ranked, own_captions))
    for pair in tqdm(pairs, desc="text->image", unit="query"):
        own_image = {image_doc_id(pair.pair_id)}
        for caption in pair.captions:
            ranked = [match["id"] for match in client.search_text(caption, limit=text_depth)]
            text_ranks.append(first_relevant_rank(ranked, own_image))
    image_to_text = recall_summary(image_ranks, image_depth)
    text_to_image = recall_summary(text_ranks, text_depth)
    return {"images": len(pairs), "captions": captions_total, "image_to_text": image_to_text,
            "text_to_image": text_to_image, "rsum": rsum(image_to_text, text_to_image)}
