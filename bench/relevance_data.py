"""The relevance calibration and held-out sets of the demo (bench/relevance/), encoded and labelled.

Shared by bench/fit_offline_calibration.py, bench/relevance_report.py and tests/unit/test_offline_calibration.py,
so the three compute the features exactly as the gateway does: scores are inner products of L2-normalised
vectors, a query's distribution is over a sample of at most SAMPLE_SIZE vectors of the index it searches (here the
whole index), and each query keeps its DEPTH best matches, best first.

Calibration (text->image): each calibration caption against the 19 photos (one true match), the same caption
against the 18 other photos (leave-one-out: unanswerable), and the unanswerable queries against the 19 photos.
Calibration (image->text): each photo against the 57 calibration captions (3 true), and against the 54 captions
of the other photos (leave-one-out). Held-out: the held-out queries against the photos, and each photo against the
manifest's captions (the reported test captions) with and without its own.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from crossmodal.relevance import (
    IMAGE_TO_TEXT,
    SAMPLE_SIZE,
    TEXT_TO_IMAGE,
    LabelledQuery,
    sample_positions,
    score_distribution,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "relevance"
SHIPPED = ROOT / "crossmodal" / "calibration" / "offline.json"
MODEL = "offline"
DEPTH = 10  # the gateway always fetches at least the top 10


@dataclass(frozen=True)
class QuerySet:
    """Labelled queries of one direction, with their texts (or photo names) for printing."""

    names: list[str]
    queries: list[LabelledQuery]


def read(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def labelled(query: np.ndarray, targets: np.ndarray, labels: list[bool], depth: int = DEPTH) -> LabelledQuery:
    """One query against an index of `targets`: its best `depth` scores, its distribution, its labels."""
    scores = targets @ query
    order = np.argsort(-scores, kind="stable")[:depth]
    distribution = score_distribution(query[None, :], targets[sample_positions(len(targets), SAMPLE_SIZE)])[0]
    labels_array = np.asarray(labels, dtype=bool)
    return LabelledQuery(scores[order], distribution, labels_array[order], bool(labels_array.any()))


class DemoEncoded:
    """The offline model's vectors of the demo photos and of every text the sets need."""

    def __init__(self) -> None:
        from crossmodal.backends import create_backend
        from dataset import DemoReader

        self.backend = create_backend(MODEL, towers=("image", "text"))
        with tempfile.TemporaryDirectory() as workspace:
            items = list(DemoReader(Path(workspace)))
            images = []
            for item in items:
                with Image.open(item.image_path) as image:
                    images.append(image.convert("RGB"))
        self.photos = [item.image_path.stem for item in items]
        self.manifest_captions = [(item.image_path.stem, caption) for item in items for caption in item.captions]
        self.images = self.backend.encode_images(images)

    def texts(self, texts: list[str]) -> np.ndarray:
        return self.backend.encode_texts(texts)

    def text_to_image(self, vectors: np.ndarray, answers: list[set[str]], names: list[str]) -> QuerySet:
        """Each text against all photos; a match is true when its photo is one of the query's answers."""
        return QuerySet(names, [labelled(v, self.images, [p in a for p in self.photos])
                                for v, a in zip(vectors, answers)])

    def leave_one_out_texts(self, vectors: np.ndarray, owners: list[str], names: list[str]) -> QuerySet:
        """Each text against the photos without the one it describes: unanswerable."""
        queries = []
        for vector, owner in zip(vectors, owners):
            keep = [i for i, photo in enumerate(self.photos) if photo != owner]
            queries.append(labelled(vector, self.images[keep], [False] * len(keep)))
        return QuerySet([f"{n} (without {o})" for n, o in zip(names, owners)], queries)

    def image_to_text(self, captions: list[tuple[str, str]], leave_one_out: bool) -> QuerySet:
        """Each photo against the caption index (`(photo, caption)` pairs), or against it without its own."""
        vectors = self.texts([caption for _, caption in captions])
        owners = [photo for photo, _ in captions]
        queries = []
        for i, photo in enumerate(self.photos):
            keep = [j for j, owner in enumerate(owners) if not (leave_one_out and owner == photo)]
            queries.append(labelled(self.images[i], vectors[keep], [owners[j] == photo for j in keep]))
        suffix = " (without its captions)" if leave_one_out else ""
        return QuerySet([p + suffix for p in self.photos], queries)


def calibration_sets(encoded: DemoEncoded) -> dict[str, list[QuerySet]]:
    """The calibration queries per direction (never the manifest's captions, never the held-out queries)."""
    captions = read("calibration_captions.json")["captions"]
    pairs = [(photo, caption) for photo in encoded.photos for caption in captions[photo]]
    texts = [caption for _, caption in pairs]
    owners = [photo for photo, _ in pairs]
    vectors = encoded.texts(texts)
    unanswerable = read("calibration_unanswerable.json")["queries"]
    return {
        TEXT_TO_IMAGE: [
            encoded.text_to_image(vectors, [{o} for o in owners], texts),
            encoded.leave_one_out_texts(vectors, owners, texts),
            encoded.text_to_image(encoded.texts(unanswerable), [set() for _ in unanswerable], unanswerable),
        ],
        IMAGE_TO_TEXT: [encoded.image_to_text(pairs, False), encoded.image_to_text(pairs, True)],
    }


def heldout_sets(encoded: DemoEncoded) -> dict[str, tuple[QuerySet, QuerySet]]:
    """Per direction (answerable, unanswerable) held-out queries: the written ones, and the photos against the
    manifest's captions with and without their own."""
    heldout = read("heldout_queries.json")
    answerable = [entry["text"] for entry in heldout["answerable"]]
    unanswerable = heldout["unanswerable"]
    return {
        TEXT_TO_IMAGE: (
            encoded.text_to_image(encoded.texts(answerable), [set(e["photos"]) for e in heldout["answerable"]],
                                  answerable),
            encoded.text_to_image(encoded.texts(unanswerable), [set() for _ in unanswerable], unanswerable),
        ),
        IMAGE_TO_TEXT: (encoded.image_to_text(encoded.manifest_captions, False),
                        encoded.image_to_text(encoded.manifest_captions, True)),
    }


def calibration_description() -> str:
    """What the shipped calibration was fitted on, with the data's counts (checked against the files by a test)."""
    captions = read("calibration_captions.json")["captions"]
    unanswerable = read("calibration_unanswerable.json")["queries"]
    count = sum(len(c) for c in captions.values())
    return (f"demo calibration set (bench/relevance/): {count} new captions of the {len(captions)} demo photos "
            f"(not the manifest's test captions) and {len(unanswerable)} unanswerable queries; text->image: each "
            f"caption against all photos and against the photos without its own (leave-one-out), and the "
            f"unanswerable queries; image->text: each photo against the calibration captions, with and without "
            f"its own; top {DEPTH} matches per query, distribution over the whole index")
