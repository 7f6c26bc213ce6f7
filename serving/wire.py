"""The wire schema: one docarray document type for both modalities, shared by every executor and the gateway."""

from typing import Dict, Optional

from docarray import BaseDoc, DocList
from docarray.proto import DictOfAnyProto, DocProto, NodeProto
from docarray.typing import ID, NdArray
from pydantic import Field

from crossmodal.index.tags import MODEL_TAG


class MatchDoc(BaseDoc):
    """A search result: a stored document and its similarity to the query (higher is better).

    Its protobuf form is docarray's, written and read here field by field: docarray's generic codec looks up every
    field's type and validates the result with pydantic, 30 us a match each way, and every query carries up to 50
    matches (more when sorted by date) from the indexer to the gateway (bench/query_path.py). A message this reader
    does not expect goes to docarray's own.
    """

    modality: str
    score: float
    text: Optional[str] = None
    uri: Optional[str] = None
    tags: Dict[str, str] = {}

    def to_protobuf(self) -> DocProto:
        data = {"id": NodeProto(text=self.id, type=ID._proto_type_name), "modality": NodeProto(text=self.modality),
                "score": NodeProto(float=self.score), "text": _optional_text(self.text),
                "uri": _optional_text(self.uri),
                "tags": NodeProto(dict=DictOfAnyProto(data={key: NodeProto(text=value)
                                                            for key, value in self.tags.items()}))}
        return DocProto(data=data)

    @classmethod
    def from_protobuf(cls, pb_msg: DocProto) -> "MatchDoc":
        data = pb_msg.data
        if set(data) != _MATCH_FIELDS or any(data[name].WhichOneof("content") != kind
                                             for name, kind in _MATCH_KINDS.items()):
            return super().from_protobuf(pb_msg)
        tags = data["tags"].dict.data
        if any(node.WhichOneof("content") != "text" for node in tags.values()):
            return super().from_protobuf(pb_msg)
        return cls.model_construct(id=ID(data["id"].text), modality=data["modality"].text, score=data["score"].float,
                                   text=_read_optional_text(data["text"]), uri=_read_optional_text(data["uri"]),
                                   tags={key: node.text for key, node in tags.items()})


_MATCH_FIELDS = frozenset({"id", "modality", "score", "text", "uri", "tags"})
_MATCH_KINDS = {"id": "text", "modality": "text", "score": "float", "tags": "dict"}


def _optional_text(value: Optional[str]) -> NodeProto:
    return NodeProto() if value is None else NodeProto(text=value)


def _read_optional_text(node: NodeProto) -> Optional[str]:
    kind = node.WhichOneof("content")
    if kind is None:
        return None
    if kind != "text":
        raise ValueError(f"a match's text field holds {kind}")
    return node.text


class CrossModalDoc(BaseDoc):
    """An image (base64 bytes in `image_b64`, location in `uri`) or a caption (`text`), routed by `modality`.

    Image bytes travel as base64 text: Jina 3.34's gateway rebuilds the schema from JSON and turns `bytes`
    fields into `str`, which then rejects binary data. Tags carry the record tags and the pipeline tags of
    `crossmodal.index.tags`.
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
