"""Record tags: which tags of a document are the stored record's own columns, and which carry pipeline state.

Encoders tag each embedding with the model that made it (`MODEL_TAG`), any stage marks a document it could not
process (`ERROR_TAG`), and the gateway tells the query flow which index to search (`TARGET_TAG`). The pair id,
dataset and split are columns of the store (`RECORD_TAGS`); every other tag is kept as free-form tags.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import Any

from crossmodal.index import Record

MODEL_TAG = "model"  # the backend (and weights) that produced a document's embedding
ERROR_TAG = "error"  # why a stage could not process a document; the document then carries no embedding
# The HTTP status the gateway answers when a query comes back with ERROR_TAG: "400" (bad input found by a stage, a
# photo whose pixels are corrupt), "413" (too large), "409" (an index built by another model), "500" (a flow wired
# wrong). Without it: 409, the old answer to every flow error.
ERROR_STATUS_TAG = "error_status"
TARGET_TAG = "target"  # the modality of the index a query searches; see flows/query.yml
FILTER_TAG = "filter"  # a photo query's metadata filter, JSON (crossmodal.index.photo_filter.PhotoFilter.to_json)
CANDIDATES_TAG = "candidates"  # "candidates:<shard>" on a query: how many records of that shard the filter allows
# A photo's metadata (crossmodal.library.metadata plus "paths"): JSON text on the wire (tags are strings), a JSON
# object in the stored record's tags (the store indexes it for filters), shown apart from the tags (`metadata`).
# A photo sent by path (a photo-folder sync): the sha256 of the bytes the sync hashed; the encoder refuses a file that
# no longer has it, so a stored vector is always of the bytes its record's hash names. Not stored.
CONTENT_SHA256_TAG = "content_sha256"
METADATA_TAG = "metadata"
RECORD_TAGS = ("pair_id", "dataset", "split")
PIPELINE_TAGS = (MODEL_TAG, ERROR_TAG, ERROR_STATUS_TAG, TARGET_TAG, FILTER_TAG, CONTENT_SHA256_TAG)


def refuse(tags: MutableMapping[str, str], reason: str, status: int) -> None:
    """Mark a document a stage could not process: why, and the HTTP status a query refused so gets."""
    tags[ERROR_TAG] = reason
    tags[ERROR_STATUS_TAG] = str(status)


def record_from_document(id: str, modality: str, text: str | None, uri: str | None,
                         tags: Mapping[str, str]) -> Record:
    """The store record of an indexed document: record tags become columns, pipeline tags are dropped, and the
    metadata JSON becomes an object (ValueError when it is not a JSON object)."""
    extra: dict[str, Any] = {key: value for key, value in tags.items()
                             if key not in RECORD_TAGS and key not in PIPELINE_TAGS}
    if METADATA_TAG in extra:
        extra[METADATA_TAG] = parse_metadata(extra[METADATA_TAG], id)
        if extra[METADATA_TAG] is None:
            del extra[METADATA_TAG]
    return Record(id=id, modality=modality, text=text, uri=uri, pair_id=tags.get("pair_id"),
                  dataset=tags.get("dataset"), split=tags.get("split"), tags=extra)


def parse_metadata(value: Any, id: str = "") -> dict[str, Any] | None:
    """A metadata tag as an object: JSON text (the wire) or already an object; "" or "null" is none."""
    if value is None or isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value) if value not in ("", "null") else None
    except (TypeError, ValueError) as error:
        raise ValueError(f"document {id!r}: the {METADATA_TAG} tag is not JSON: {error}") from None
    if parsed is not None and not isinstance(parsed, dict):
        raise ValueError(f"document {id!r}: the {METADATA_TAG} tag is not a JSON object")
    return parsed


def tags_of_record(record: Record) -> dict[str, str]:
    """The tags a stored document shows (a search result, a document page): its free-form tags and its record tags,
    as strings; the metadata is shown on its own (`metadata_of_record`)."""
    tags = {key: str(value) for key, value in record.tags.items() if key != METADATA_TAG}
    tags.update({key: value for key in RECORD_TAGS if (value := getattr(record, key)) is not None})
    return tags


def wire_tags_of_record(record: Record) -> dict[str, str]:
    """The tags of a search match on the wire: `tags_of_record` and the metadata as JSON text."""
    tags = tags_of_record(record)
    if record.metadata is not None:
        tags[METADATA_TAG] = json.dumps(record.metadata, ensure_ascii=False)
    return tags
