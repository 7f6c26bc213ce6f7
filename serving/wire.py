"""The wire schema: one docarray document type for both modalities, shared by every executor and the gateway."""

from typing import Dict, Optional

from docarray import BaseDoc, DocList
from docarray.typing import NdArray
from pydantic import Field

from crossmodal.records import MODEL_TAG


class MatchDoc(BaseDoc):
    """A search result: a stored document and its similarity to the query (higher is better)."""

    modality: str
    score: float
    text: Optional[str] = None
    uri: Optional[str] = None
    tags: Dict[str, str] = {}


class CrossModalDoc(BaseDoc):
    """An image (base64 bytes in `image_b64`, location in `uri`) or a caption (`text`), routed by `modality`.

    Image bytes travel as base64 text: Jina 3.34's gateway rebuilds the schema from JSON and turns `bytes`
    fields into `str`, which then rejects binary data. Tags carry the record tags and the pipeline tags of
    `crossmodal.records`.
    """

    modality: str
    text: Optional[str] = None
    uri: Optional[str] = None
    image_b64: Optional[str] = None
    embedding: Optional[NdArray] = None
    tags: Dict[str, str] = {}
    matches: DocList[MatchDoc] = Field(default_factory=DocList[MatchDoc])


def is_embedded(doc: CrossModalDoc) -> bool:
    """A query the gateway embedded already (combined from the parts of a composed query): encoders pass it on.

    Only the gateway builds query documents (clients never send one), so the model tag it copied from the parts'
    encoder is the model that made the vector, and the indexer still checks it against its own.
    """
    return doc.embedding is not None and bool(doc.tags.get(MODEL_TAG))
