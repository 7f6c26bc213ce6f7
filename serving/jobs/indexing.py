"""Feeds a dataset into the index flow in batches, with a progress bar and a summary of what happened."""
from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from docarray import DocList
from tqdm import tqdm

from crossmodal.ids import caption_doc_id, image_doc_id
from crossmodal.imaging import ImageDecodeError, decode_image_bytes, read_image_file
from crossmodal.modality import IMAGE, TEXT
from crossmodal.store import stored_ids
from crossmodal.workspace import index_folder
from dataset import DatasetReader, ImageCaptions, Skipped
from serving.wire import CrossModalDoc


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


def pair_documents(pair: ImageCaptions) -> list[CrossModalDoc]:
    """One image doc (bytes + location) and one doc per caption; ids are stable so re-indexing replaces, not adds.

    The photo is fully decoded here first (ImageDecodeError if it cannot be): a photo the encoder would reject
    must not leave its captions in the index pointing at an image that is not there.
    """
    image_id = image_doc_id(pair.pair_id)
    tags = {"pair_id": pair.pair_id, "dataset": pair.dataset, "split": pair.split}
    data = read_image_file(pair.image_path)
    decode_image_bytes(data)
    docs = [CrossModalDoc(id=image_id, modality=IMAGE, uri=str(pair.image_path),
                          image_b64=base64.b64encode(data).decode("ascii"), tags=dict(tags))]
    docs += [CrossModalDoc(id=caption_doc_id(pair.pair_id, number), modality=TEXT, text=caption,
                           tags={**tags, "image_id": image_id})
             for number, caption in enumerate(pair.captions)]
    return docs


def index_dataset(flow, reader: DatasetReader, workspace: Path, batch_size: int, num_docs: int | None = None,
                  reindex: bool = False) -> IndexSummary:
    """Send up to `num_docs` images (with all their captions) through the index flow, `batch_size` images a request.

    Images whose documents are all stored already are not sent again, so an interrupted run resumes where it stopped.
    """
    summary = IndexSummary()
    known = set() if reindex else stored_ids(index_folder(workspace, IMAGE)) | stored_ids(index_folder(workspace, TEXT))
    started = time.perf_counter()
    pairs: Iterable[ImageCaptions] = itertools.islice(reader, num_docs) if num_docs else reader
    with tqdm(total=num_docs, unit="img", desc="indexing") as progress:
        for batch in _batches(pairs, batch_size):
            todo = [pair for pair in batch if not _already_indexed(pair, known)]
            summary.already_indexed += len(batch) - len(todo)
            docs = DocList[CrossModalDoc]([doc for pair in todo for doc in _documents_or_skip(pair, summary)])
            if docs:
                results = flow.post("/index", inputs=docs, request_size=len(docs), return_type=DocList[CrossModalDoc])
                _count(results, summary)
            progress.update(len(batch))
            progress.set_postfix(captions=summary.captions, skipped=len(summary.skipped))
    flow.post("/flush", inputs=DocList[CrossModalDoc]())
    summary.skipped = reader.skipped + summary.skipped
    summary.seconds = time.perf_counter() - started
    return summary


def _already_indexed(pair: ImageCaptions, known: set[str]) -> bool:
    ids = [image_doc_id(pair.pair_id)] + [caption_doc_id(pair.pair_id, n) for n in range(len(pair.captions))]
    return all(doc_id in known for doc_id in ids)


def _documents_or_skip(pair: ImageCaptions, summary: IndexSummary) -> list[CrossModalDoc]:
    try:
        return pair_documents(pair)
    except ImageDecodeError as error:
        summary.skipped.append(Skipped(item=pair.pair_id, reason=f"image unreadable: {error}"))
        return []


def _count(results: DocList[CrossModalDoc], summary: IndexSummary) -> None:
    for doc in results:
        if "error" in doc.tags:
            summary.skipped.append(Skipped(item=doc.tags.get("pair_id", doc.id), reason=doc.tags["error"]))
        elif doc.modality == IMAGE:
            summary.images += 1
        else:
            summary.captions += 1


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
