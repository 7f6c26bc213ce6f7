"""MatchDoc's own protobuf codec (serving/wire.py) writes exactly docarray's message and reads it back to the same
document; a message it does not expect is read by docarray's generic codec."""
from __future__ import annotations

import numpy as np
import pytest
from docarray import DocList
from docarray.base_doc.mixins.io import IOMixin
from docarray.proto import DocProto, NodeProto

from serving.wire import CrossModalDoc, MatchDoc

MATCHES = [
    MatchDoc(id="img-1", modality="image", score=0.5, uri="/photos/a b/ü.jpg",
             tags={"pair_id": "p1", "metadata": '{"taken": "2020-01-01T00:00:00", "paths": ["a/b.jpg"]}'}),
    MatchDoc(id="txt-1-0", modality="text", score=-0.25, text="a dog 🐕 jumping", tags={}),
    MatchDoc(id="x", modality="image", score=1e-30, text="", uri="", tags={"": ""}),
    MatchDoc(modality="text", score=float("inf")),
]


def generic_read(message: DocProto) -> MatchDoc:
    return IOMixin.from_protobuf.__func__(MatchDoc, message)


@pytest.mark.parametrize("match", MATCHES, ids=range(len(MATCHES)))
def test_the_same_message_as_docarray_and_the_same_document_back(match):
    message = match.to_protobuf()
    assert message == IOMixin.to_protobuf(match)
    back = MatchDoc.from_protobuf(message)
    assert back.model_dump() == match.model_dump() == generic_read(message).model_dump()
    assert type(back.id) is type(generic_read(message).id)


def test_matches_inside_a_query_document_round_trip():
    query = CrossModalDoc(modality="text", text="a cup", embedding=np.ones(4, dtype=np.float32),
                          matches=DocList[MatchDoc](MATCHES))
    back = DocList[CrossModalDoc].from_protobuf(DocList[CrossModalDoc]([query]).to_protobuf())[0]
    assert [match.model_dump() for match in back.matches] == [match.model_dump() for match in MATCHES]


def test_an_unexpected_message_is_read_by_docarray():
    message = MATCHES[0].to_protobuf()
    message.data["score"].CopyFrom(NodeProto(integer=3))  # another kind of node than this codec writes
    assert MatchDoc.from_protobuf(message).score == 3.0
    del message.data["uri"]  # a field missing
    assert MatchDoc.from_protobuf(message).uri is None
