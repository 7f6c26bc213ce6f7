"""Feeds a dataset into the index flow in batches, with a progress bar and a summary of what happened.

One read and one decode per photo: the reader checks each photo's header only (size, format, dimensions,
decompression bomb: `crossmodal.media.decoding.check_image_file`), the job sends its path (`uri`), and the image
encoder of the index flow reads and decodes it once (`read_files`, img_emb/executor.py): its bytes never cross the flow.
A photo whose pixels turn out unreadable there (a truncated file) must not leave its captions in the index pointing
at a photo that is not there, so a photo's captions travel one request after it, once the flow has answered that
the photo was stored: request k carries the photos of batch k and the captions of batch k-1, so both encoders still
work side by side, and a last request carries the captions of the last batch.

Counts only come back: the job asks the indexers (`parameters={"reply": "errors"}`) to answer with the documents
they refused, stripped to id, modality and tags, instead of every document sent; what was sent and not refused was
stored. The indexers still receive every document.
"""
from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from docarray import DocList
from tqdm import tqdm

from crossmodal.datasets import DatasetReader, ImageCaptions, Skipped
from crossmodal.index import stored_ids
from crossmodal.index.ids import caption_doc_id, image_doc_id
from crossmodal.index.tags import ERROR_TAG
from crossmodal.index.workspace import index_folder
from crossmodal.modality import IMAGE, TEXT
from serving.wire import CrossModalDoc

ERRORS_ONLY = {"reply": "errors"}  # pods/indexer.py: answer /index with the refused documents only


@dataclass
class IndexSummary:
    images: int = 0
    captions: int = 0
    already_indexed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    def report(self) -> str:
        rate = self.images / self.seconds if self.seconds else 0.0
        lines = [f"indexed {self.images} images and {self.captions} captions in {self.seconds:.1f} s "
                 f"({rate:.1f} images/s); {self.already_indexed} images were already indexed; "
                 f"skipped {len(self.skipped)}"]
        lines += [f"  skipped {item.item}: {item.reason}" for item in self.skipped[:20]]
        if len(self.skipped) > 20:
            lines.append(f"  ... and {len(self.skipped) - 20} more")
        return "\n".join(lines)


def photo_document(pair: ImageCaptions) -> CrossModalDoc:
    """The photo's document: its location, which the index flow's image encoder reads and decodes once."""
    return CrossModalDoc(id=image_doc_id(pair.pair_id), modality=IMAGE, uri=str(Path(pair.image_path).resolve()),
                         tags=_record_tags(pair))


def caption_documents(pair: ImageCaptions) -> list[CrossModalDoc]:
    """One document per caption, pointing at the photo's document."""
    tags = {**_record_tags(pair), "image_id": image_doc_id(pair.pair_id)}
    return [CrossModalDoc(id=caption_doc_id(pair.pair_id, number), modality=TEXT, text=caption, tags=dict(tags))
            for number, caption in enumerate(pair.captions)]


def _record_tags(pair: ImageCaptions) -> dict[str, str]:
    return {"pair_id": pair.pair_id, "dataset": pair.dataset, "split": pair.split}


def index_dataset(flow, reader: DatasetReader, workspace: Path, batch_size: int, num_docs: int | None = None,
                  reindex: bool = False) -> IndexSummary:
    """Send up to `num_docs` images (with all their captions) through the index flow, `batch_size` images a request
    (and the captions of the previous request's stored photos: see the module's docstring).

    Images whose documents are all stored already are not sent again, so an interrupted run resumes where it stopped.
    """
    summary = IndexSummary()
    known = set() if reindex else stored_ids(index_folder(workspace, IMAGE)) | stored_ids(index_folder(workspace, TEXT))
    started = time.perf_counter()
    pairs: Iterable[ImageCaptions] = itertools.islice(reader, num_docs) if num_docs else reader
    waiting: list[ImageCaptions] = []  # pairs whose photo went in the last request: their captions go in the next
    with tqdm(total=num_docs, unit="img", desc="indexing") as progress:
        try:
            for batch in _batches(pairs, batch_size):
                todo = [pair for pair in batch if not already_indexed(pair, known)]
                summary.already_indexed += len(batch) - len(todo)
                photos = [(pair, photo_document(pair)) for pair in todo]
                if photos or waiting:
                    waiting = _post(flow, photos, waiting, summary)
                progress.update(len(batch))
                progress.set_postfix(captions=summary.captions, skipped=len(summary.skipped))
        except Exception:
            # Reading failed (or the flow did): the photos stored so far get their captions if the flow still
            # answers, so that the finished batches are complete; the next run sends whatever is missing anyway.
            with contextlib.suppress(Exception):
                _post(flow, [], waiting, summary)
            raise
        _post(flow, [], waiting, summary)
        progress.set_postfix(captions=summary.captions, skipped=len(summary.skipped))  # the last captions too
    flow.post("/flush", inputs=DocList[CrossModalDoc]())
    summary.skipped = reader.skipped + summary.skipped
    summary.seconds = time.perf_counter() - started
    return summary


def _post(flow, photos: list[tuple[ImageCaptions, CrossModalDoc]], waiting: list[ImageCaptions],
          summary: IndexSummary) -> list[ImageCaptions]:
    """One /index request: the photos, and the captions of `waiting` (pairs whose photo is stored). Counts what was
    stored, records what was refused; returns the pairs whose photo was stored now (their captions go next)."""
    captions = [doc for pair in waiting for doc in caption_documents(pair)]
    docs = DocList[CrossModalDoc]([doc for _, doc in photos] + captions)
    if not docs:
        return []
    refused = flow.post("/index", inputs=docs, request_size=len(docs), parameters=dict(ERRORS_ONLY),
                        return_type=DocList[CrossModalDoc])
    failed: set[str] = set()
    for doc in refused or []:
        if doc.id in failed or ERROR_TAG not in doc.tags:
            continue
        failed.add(doc.id)
        summary.skipped.append(Skipped(item=doc.tags.get("pair_id", doc.id), reason=doc.tags[ERROR_TAG]))
    summary.images += sum(doc.id not in failed for _, doc in photos)
    summary.captions += sum(doc.id not in failed for doc in captions)
    return [pair for pair, doc in photos if doc.id not in failed]


def already_indexed(pair: ImageCaptions, known: set[str]) -> bool:
    """Whether the photo and every caption of `pair` are among the `known` ids (the CLI's up-to-date check too)."""
    ids = [image_doc_id(pair.pair_id)] + [caption_doc_id(pair.pair_id, n) for n in range(len(pair.captions))]
    return all(doc_id in known for doc_id in ids)


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
