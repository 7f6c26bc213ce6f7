"""Document ids: derived from the pair id, so re-indexing a photo replaces its documents instead of duplicating them.

The scheme is a domain rule shared by the indexing job, the evaluation job and the HTTP gateway (which maps a
caption back to its photo): it lives here so that none of them re-implements it.
"""
from __future__ import annotations

import hashlib
import re

IMAGE_ID_PREFIX = "img-"
CAPTION_ID_PREFIX = "txt-"
# What a document id may look like on the wire and in a URL (`/images/{id}`): our ids and a user's own.
DOC_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


def _pair_hash(pair_id: str) -> str:
    return hashlib.sha1(pair_id.encode("utf-8")).hexdigest()[:16]


def image_doc_id(pair_id: str) -> str:
    """Image doc id, derived from the pair id so re-indexing is idempotent; URL-safe."""
    return f"{IMAGE_ID_PREFIX}{_pair_hash(pair_id)}"


def caption_doc_id(pair_id: str, index: int) -> str:
    """Id of the index-th caption; shares the image's hash so both map back to the pair."""
    return f"{CAPTION_ID_PREFIX}{_pair_hash(pair_id)}-{index}"


def caption_id_prefix(pair_id: str) -> str:
    """The prefix every caption id of `pair_id` starts with (to list a photo's captions)."""
    return f"{CAPTION_ID_PREFIX}{_pair_hash(pair_id)}-"
