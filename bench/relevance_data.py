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

Keyword evidence (text->image+keywords, hybrid mode): the same text queries, also searched by keyword the way the
gateway searches them. `KeywordIndex` writes a real store of the demo (crossmodal.index.VectorStore: the photos
with their pair ids `demo/<file name>` and the manifest's captions, records as the indexing job makes them) and
runs crossmodal.search.ranking.keyword_rankings / keyword_coverage / fused_order on it. A hybrid query keeps its first
DEPTH matches in the fused order (semantic ids best first, then reciprocal rank fusion with the keyword rankings),
each with its keyword coverage. A leave-one-out query searches a store without the left-out photo and its captions
(built for real, so the keyword ranking's bm25 statistics are those of that smaller collection too); coverage of a
pair does not depend on the other photos, so the remaining photos keep theirs.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from crossmodal.index import VectorStore
from crossmodal.index.ids import caption_doc_id, image_doc_id
from crossmodal.index.tags import record_from_document
from crossmodal.modality import IMAGE, TEXT
from crossmodal.search.ranking import FUSION_DEPTH, KeywordRankings, fused_order, keyword_coverage, keyword_rankings
from crossmodal.search.relevance import (
    IMAGE_TO_TEXT,
    SAMPLE_SIZE,
    TEXT_TO_IMAGE,
    LabelledQuery,
    keyword_direction,
    sample_positions,
    score_distribution,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "relevance"
SHIPPED = ROOT / "crossmodal" / "calibration" / "offline.json"
MODEL = "offline"
DEPTH = 10  # the gateway always fetches at least the top 10
HELDOUT_LIMIT = 5  # matches a held-out query returns: no_good_match is "best relevance among them < 0.5"
TEXT_TO_IMAGE_KEYWORDS = keyword_direction(TEXT_TO_IMAGE)


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
        self.items = items
        self.photos = [item.image_path.stem for item in items]
        self.manifest_captions = [(item.image_path.stem, caption) for item in items for caption in item.captions]
        self.images = self.backend.encode_images(images)
        self._keywords: KeywordIndex | None = None

    @property
    def keywords(self) -> KeywordIndex:
        """The keyword index of the demo (built on first use)."""
        if self._keywords is None:
            self._keywords = KeywordIndex(self)
        return self._keywords

    def texts(self, texts: list[str]) -> np.ndarray:
        return self.backend.encode_texts(texts)

    def text_to_image(self, vectors: np.ndarray, answers: list[set[str]], names: list[str]) -> QuerySet:
        """Each text against all photos; a match is true when its photo is one of the query's answers."""
        return QuerySet(names, [labelled(v, self.images, [p in a for p in self.photos])
                                for v, a in zip(vectors, answers)])

    def hybrid_text_to_image(self, texts: list[str], vectors: np.ndarray, answers: list[set[str]],
                             without: list[str | None] | None = None) -> QuerySet:
        """Each text searched in hybrid mode (against all photos, or without the photo `without` names): its
        first DEPTH matches in the fused order, labelled, with their keyword coverage."""
        without = without or [None] * len(texts)
        queries = [self.keywords.hybrid(text, vector, answer, left_out)
                   for text, vector, answer, left_out in zip(texts, vectors, answers, without)]
        names = [text if left_out is None else f"{text} (without {left_out})" for text, left_out in zip(texts, without)]
        return QuerySet(names, queries)

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


class KeywordIndex:
    """Real stores of the demo in a temporary folder, and the gateway's hybrid ranking on them.

    The photo index holds each photo (pair id `demo/<file name>`, id image_doc_id), the caption index the
    manifest's captions (id caption_doc_id, pair id set, tag image_id), as serving/jobs/indexing.py sends them;
    one pair of stores for the whole demo and one per left-out photo, built when first asked for.
    """

    def __init__(self, encoded: DemoEncoded) -> None:
        self.encoded = encoded
        self._folder = tempfile.TemporaryDirectory(prefix="relevance-keywords-")
        self._stores: dict[str | None, dict[str, Path]] = {}
        self.photo_of_id = {image_doc_id(item.pair_id): item.image_path.stem for item in encoded.items}
        self._caption_vectors = encoded.texts([caption for _, caption in encoded.manifest_captions])

    def folders(self, without: str | None = None) -> dict[str, Path]:
        """The photo and caption index folders of the demo, without the photo named `without` and its captions."""
        if without not in self._stores:
            self._stores[without] = self._build(without)
        return self._stores[without]

    def _build(self, without: str | None) -> dict[str, Path]:
        root = Path(self._folder.name) / (without or "all")
        folders = {IMAGE: root / "image_index", TEXT: root / "text_index"}
        model, dim = MODEL, int(self.encoded.images.shape[1])
        photo_records, photo_rows, caption_records, caption_rows = [], [], [], []
        caption_row = 0
        for row, item in enumerate(self.encoded.items):
            tags = {"pair_id": item.pair_id, "dataset": item.dataset, "split": item.split}
            image_id = image_doc_id(item.pair_id)
            keep = item.image_path.stem != without
            if keep:
                photo_records.append(record_from_document(image_id, IMAGE, None, str(item.image_path), tags))
                photo_rows.append(row)
            for number, caption in enumerate(item.captions):
                if keep:
                    caption_records.append(record_from_document(caption_doc_id(item.pair_id, number), TEXT, caption,
                                                                None, {**tags, "image_id": image_id}))
                    caption_rows.append(caption_row)
                caption_row += 1
        for modality, records, vectors in ((IMAGE, photo_records, self.encoded.images[photo_rows]),
                                           (TEXT, caption_records, self._caption_vectors[caption_rows])):
            with VectorStore(folders[modality], modality, model, dim) as store:
                store.add(records, np.asarray(vectors, dtype=np.float32))
        return folders

    def rankings(self, text: str, without: str | None = None) -> KeywordRankings:
        return keyword_rankings(self.folders(without), IMAGE, text)

    def coverage(self, text: str, without: str | None = None) -> dict[str, float]:
        """Keyword coverage by photo name (crossmodal.search.ranking.keyword_coverage, as the gateway computes it)."""
        found = keyword_coverage(self.rankings(text, without), text) or {}
        return {self.photo_of_id[doc_id]: value for doc_id, value in found.items()}

    def _kept(self, without: str | None) -> list[int]:
        return [i for i, photo in enumerate(self.encoded.photos) if photo != without]

    def fused_ids(self, text: str, vector: np.ndarray, without: str | None = None,
                  keyword: KeywordRankings | None = None) -> list[str]:
        """The photo ids of a hybrid answer, best first: the semantic ids (best FUSION_DEPTH by cosine) fused
        with the keyword rankings, as the gateway orders them."""
        keep = self._kept(without)
        scores = self.encoded.images[keep] @ vector
        ids = [image_doc_id(self.encoded.items[keep[i]].pair_id) for i in np.argsort(-scores, kind="stable")]
        return fused_order("hybrid", ids[:FUSION_DEPTH], keyword or self.rankings(text, without))

    def hybrid(self, text: str, vector: np.ndarray, answers: set[str], without: str | None = None,
               depth: int = DEPTH) -> LabelledQuery:
        """One text query in hybrid mode: the first `depth` matches of the fused order, as the gateway ranks them
        (semantic ids best first, top FUSION_DEPTH, fused with the keyword rankings), with scores, coverage and
        labels; the distribution is over the photos searched."""
        keep = self._kept(without)
        targets = self.encoded.images[keep]
        score_of = dict(zip([image_doc_id(self.encoded.items[i].pair_id) for i in keep], targets @ vector))
        keyword = self.rankings(text, without)
        order = self.fused_ids(text, vector, without, keyword)[:depth]
        coverage = keyword_coverage(keyword, text) or {}  # every calibration and held-out query has words
        distribution = score_distribution(vector[None, :], targets[sample_positions(len(targets), SAMPLE_SIZE)])[0]
        return LabelledQuery(np.asarray([score_of[doc_id] for doc_id in order], dtype=np.float64), distribution,
                             np.asarray([self.photo_of_id[doc_id] in answers for doc_id in order], dtype=bool),
                             bool(answers - {without}),
                             np.asarray([coverage.get(doc_id, 0.0) for doc_id in order], dtype=np.float64))


def calibration_sets(encoded: DemoEncoded) -> dict[str, list[QuerySet]]:
    """The calibration queries per direction (never the manifest's captions, never the held-out queries), and
    the text->image ones again in hybrid mode for the keyword mapping (text->image+keywords)."""
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
        TEXT_TO_IMAGE_KEYWORDS: [
            encoded.hybrid_text_to_image(texts, vectors, [{o} for o in owners]),
            encoded.hybrid_text_to_image(texts, vectors, [{o} for o in owners], list(owners)),
            encoded.hybrid_text_to_image(unanswerable, encoded.texts(unanswerable), [set() for _ in unanswerable]),
        ],
    }


def heldout_sets(encoded: DemoEncoded) -> dict[str, tuple[QuerySet, QuerySet]]:
    """Per direction (answerable, unanswerable) held-out queries: the written ones, and the photos against the
    manifest's captions with and without their own; and the written ones in hybrid mode (text->image+keywords,
    matches in the fused order). A photo query has no words, so hybrid is semantic for image->text."""
    heldout = read("heldout_queries.json")
    answerable = [entry["text"] for entry in heldout["answerable"]]
    answers = [set(e["photos"]) for e in heldout["answerable"]]
    unanswerable = heldout["unanswerable"]
    answerable_vectors, unanswerable_vectors = encoded.texts(answerable), encoded.texts(unanswerable)
    return {
        TEXT_TO_IMAGE: (
            encoded.text_to_image(answerable_vectors, answers, answerable),
            encoded.text_to_image(unanswerable_vectors, [set() for _ in unanswerable], unanswerable),
        ),
        IMAGE_TO_TEXT: (encoded.image_to_text(encoded.manifest_captions, False),
                        encoded.image_to_text(encoded.manifest_captions, True)),
        TEXT_TO_IMAGE_KEYWORDS: (
            encoded.hybrid_text_to_image(answerable, answerable_vectors, answers),
            encoded.hybrid_text_to_image(unanswerable, unanswerable_vectors, [set() for _ in unanswerable]),
        ),
    }


# How each mode's held-out queries are stored in heldout_sets: mode -> direction -> key. A photo query has no words,
# so the gateway ranks it by meaning in every mode: hybrid has text->image only.
MODE_SETS = {"semantic": {TEXT_TO_IMAGE: TEXT_TO_IMAGE, IMAGE_TO_TEXT: IMAGE_TO_TEXT},
             "hybrid": {TEXT_TO_IMAGE: TEXT_TO_IMAGE_KEYWORDS}}


def returned_relevance(calibration, direction: str, query: LabelledQuery, limit: int = HELDOUT_LIMIT) -> np.ndarray:
    """The relevance of the first `limit` matches the gateway returns for `query` (its coverage passed when it
    was searched by keyword, as the gateway passes it): no_good_match is "their maximum < 0.5"."""
    coverage = None if query.coverage is None else query.coverage[:limit]
    relevance = calibration.relevance(direction, query.scores[:limit], query.distribution, coverage)
    if relevance is None:
        raise ValueError(f"the calibration has no {direction} mapping")
    return relevance


def calibration_description() -> str:
    """What the shipped calibration was fitted on, with the data's counts (checked against the files by a test)."""
    captions = read("calibration_captions.json")["captions"]
    unanswerable = read("calibration_unanswerable.json")["queries"]
    count = sum(len(c) for c in captions.values())
    return (f"demo calibration set (bench/relevance/): {count} new captions of the {len(captions)} demo photos "
            f"(not the manifest's test captions) and {len(unanswerable)} unanswerable queries; text->image: each "
            f"caption against all photos and against the photos without its own (leave-one-out), and the "
            f"unanswerable queries; image->text: each photo against the calibration captions, with and without "
            f"its own; top {DEPTH} matches per query, distribution over the whole index; text->image+keywords: the "
            f"text->image queries in hybrid mode on a store of the demo (photos and the manifest's captions), top "
            f"{DEPTH} matches in the fused order, each with its keyword coverage")
