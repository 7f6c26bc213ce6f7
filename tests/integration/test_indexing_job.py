"""Incremental indexing at the level of the indexing job: `serving.jobs.indexing.index_dataset` feeding one real
index flow (started once, in a subprocess: tests/servers.py), run after run on one workspace, as `app.py -t index`
does it: an interrupted run keeps its finished batches and the next run resumes; photos already stored are not
sent again; a photo with a new caption is; `reindex=True` re-encodes; re-indexing replaces and never duplicates.

The CLI runs these same calls (app.py `run_index`); tests/e2e/test_cli.py and test_crash_resume.py check the CLI
end to end.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from crossmodal.index import VectorStore, read_record, stored_ids, stored_settings
from crossmodal.index.ids import caption_doc_id, image_doc_id
from dataset import open_dataset
from serving.jobs.indexing import IndexSummary, index_dataset

NEW_CAPTION = "a caption added to the dataset after the photo was indexed"


class Interrupted(Exception):
    """Stands for whatever stops a run between two requests (Ctrl-C, a crash of the reading side)."""


class EditedReader:
    """A dataset reader that is interrupted after `stop_after` photos, or whose first photo gained a caption."""

    def __init__(self, reader, stop_after: int | None = None, extra_caption: str | None = None) -> None:
        self.reader, self.stop_after, self.extra_caption = reader, stop_after, extra_caption

    def __iter__(self):
        for number, pair in enumerate(self.reader):
            if number == self.stop_after:
                raise Interrupted
            if number == 0 and self.extra_caption:
                pair = dataclasses.replace(pair, captions=(*pair.captions, self.extra_caption))
            yield pair

    @property
    def skipped(self):
        return self.reader.skipped


@dataclasses.dataclass
class Step:
    summary: IndexSummary | None
    images: set[str]
    captions: set[str]


@pytest.fixture(scope="module")
def demo_pairs(tmp_path_factory):
    return list(open_dataset("demo", workspace=tmp_path_factory.mktemp("demo-pairs")))


@pytest.fixture(scope="module")
def steps(job_index_flow) -> dict[str, Step]:
    """Run after run on one workspace through one index flow; what each run reported and what was stored after it."""
    workspace, flow = job_index_flow.workspace, job_index_flow.client()

    def reader(**edits):
        demo = open_dataset("demo", workspace=workspace)
        return EditedReader(demo, **edits) if edits else demo

    def stored(summary):
        return Step(summary, stored_ids(workspace / "image_index"), stored_ids(workspace / "text_index"))

    history = {}
    with pytest.raises(Interrupted):
        index_dataset(flow, reader(stop_after=5), workspace, batch_size=2)
    history["interrupted"] = stored(None)
    history["resumed"] = stored(index_dataset(flow, reader(), workspace, batch_size=2, num_docs=6))
    history["rest"] = stored(index_dataset(flow, reader(), workspace, batch_size=4))
    history["again"] = stored(index_dataset(flow, reader(), workspace, batch_size=4))
    history["new caption"] = stored(index_dataset(flow, reader(extra_caption=NEW_CAPTION), workspace, batch_size=4))
    history["reindex"] = stored(index_dataset(flow, reader(extra_caption=NEW_CAPTION), workspace, batch_size=2,
                                              num_docs=3, reindex=True))
    return history


def ids_of(pairs) -> tuple[set[str], set[str]]:
    images = {image_doc_id(pair.pair_id) for pair in pairs}
    captions = {caption_doc_id(pair.pair_id, number) for pair in pairs for number in range(len(pair.captions))}
    return images, captions


def counts(summary: IndexSummary) -> tuple[int, int, int, int]:
    return summary.images, summary.captions, summary.already_indexed, len(summary.skipped)


def test_an_interrupted_run_keeps_every_finished_batch_and_nothing_else(steps, demo_pairs):
    """Interrupted while reading the 3rd batch of 2: the first two batches are stored, complete; the 5th photo not."""
    interrupted = steps["interrupted"]
    assert (interrupted.images, interrupted.captions) == ids_of(demo_pairs[:4])


def test_the_next_run_resumes_and_sends_only_what_is_missing(steps, demo_pairs):
    resumed = steps["resumed"]
    assert counts(resumed.summary) == (2, 6, 4, 0)  # photos 5 and 6 sent; the 4 stored ones skipped
    assert (resumed.images, resumed.captions) == ids_of(demo_pairs[:6])


def test_the_rest_is_indexed_and_stored_photos_are_not_sent_again(steps, demo_pairs):
    rest = steps["rest"]
    assert len(demo_pairs) == 19
    assert counts(rest.summary) == (13, 39, 6, 0)
    assert (rest.images, rest.captions) == ids_of(demo_pairs)
    assert len(rest.images) == 19 and len(rest.captions) == 57


def test_a_finished_index_is_left_alone(steps):
    again = steps["again"]
    assert counts(again.summary) == (0, 0, 19, 0)
    assert (again.images, again.captions) == (steps["rest"].images, steps["rest"].captions)


def test_a_photo_with_a_new_caption_is_sent_again_and_only_the_caption_is_added(steps, demo_pairs, job_index_flow):
    step = steps["new caption"]
    first = demo_pairs[0]
    added = caption_doc_id(first.pair_id, len(first.captions))
    assert counts(step.summary) == (1, len(first.captions) + 1, 18, 0)
    assert step.images == steps["rest"].images
    assert step.captions == steps["rest"].captions | {added}
    assert read_record(job_index_flow.workspace / "text_index", added).text == NEW_CAPTION


def test_reindex_re_encodes_and_replaces_without_duplicating(steps, demo_pairs, job_index_flow):
    step = steps["reindex"]
    assert counts(step.summary) == (3, 3 * 3 + 1, 0, 0)  # re-encoded although stored: the flow answered for them
    assert (step.images, step.captions) == (steps["new caption"].images, steps["new caption"].captions)
    for name, expected in (("image_index", 19), ("text_index", 58)):
        assert_searchable_once(job_index_flow.workspace / name, expected)


def assert_searchable_once(folder: Path, expected: int) -> None:
    """SQLite and FAISS agree: every stored document is found exactly once by a search over the whole index."""
    settings = stored_settings(folder)
    with VectorStore(folder, settings.modality, settings.model_name, settings.dim, read_only=True) as store:
        assert store.count() == expected
        query = np.ones((1, settings.dim), dtype=np.float32) / np.sqrt(settings.dim)
        hits = store.search(query, limit=expected + 10)[0]
    found = [hit.record.id for hit in hits]
    assert len(found) == len(set(found)) == expected
    assert set(found) == stored_ids(folder)
