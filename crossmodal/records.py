"""Record tags: which tags of a document are the stored record's own columns, and which carry pipeline state.

Encoders tag each embedding with the model that made it (`MODEL_TAG`), any stage marks a document it could not
process (`ERROR_TAG`), and the gateway tells the query flow which index to search (`TARGET_TAG`). The pair id,
dataset and split are columns of the store (`RECORD_TAGS`); every other tag is kept as free-form tags.
"""
from __future__ import annotations

from collections.abc import Mapping

from crossmodal.store import Record

MODEL_TAG = "model"  # the backend (and weights) that produced a document's embedding
ERROR_TAG = "error"  # why a stage could not process a document; the document then carries no embedding
TARGET_TAG = "target"  # the modality of the index a query searches; see flows/query.yml
RECORD_TAGS = ("pair_id", "dataset", "split")
PIPELINE_TAGS = (MODEL_TAG, ERROR_TAG, TARGET_TAG)


def record_from_document(id: str, modality: str, text: str | None, uri: str | None,
                         tags: Mapping[str, str]) -> Record:
    """The store record of an indexed document: record tags become columns, pipeline tags are dropped."""
    extra = {key: value for key, value in tags.items() if key not in RECORD_TAGS and key not in PIPELINE_TAGS}
    return Record(id=id, modality=modality, text=text, uri=uri, pair_id=tags.get("pair_id"),
                  dataset=tags.get("dataset"), split=tags.get("split"), tags=extra)


def tags_of_record(record: Record) -> dict[str, str]:
    """The tags a stored document shows (a search result, a document page): its free-form tags and its record tags,
    as strings."""
    tags = {key: str(value) for key, value in record.tags.items()}
    tags.update({key: value for key in RECORD_TAGS if (value := getattr(record, key)) is not None})
    return tags
