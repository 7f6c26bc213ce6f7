"""docarray ids read from protobuf without a pydantic TypeAdapter built for each (serving/runtime/docarray_patches.py).
"""
import pydantic
from docarray import DocList
from docarray.typing.id import ID

from serving.runtime import docarray_patches
from serving.wire import CrossModalDoc


def test_ids_round_trip_as_before_and_build_no_type_adapter(monkeypatch):
    docs = DocList[CrossModalDoc]([CrossModalDoc(id=f"caption:{n}", modality="text", text=f"t{n}",
                                                 tags={"target": "image"}) for n in range(5)])
    message = docs.to_protobuf()
    before = [(doc.id, type(doc.id)) for doc in DocList[CrossModalDoc].from_protobuf(message)]

    docarray_patches.apply()
    built = []
    original = pydantic.TypeAdapter.__init__
    monkeypatch.setattr(pydantic.TypeAdapter, "__init__",
                        lambda self, *a, **k: built.append(a) or original(self, *a, **k))
    after = DocList[CrossModalDoc].from_protobuf(message)
    assert [(doc.id, type(doc.id)) for doc in after] == before
    assert [doc.text for doc in after] == [f"t{n}" for n in range(5)]
    assert not [args for args in built if args and args[0] is ID]
    assert ID.from_protobuf("x") == "x" and isinstance(ID.from_protobuf("x"), ID)
    assert ID.from_protobuf(7) == "7"  # what parse_obj_as made of a number


def test_apply_is_idempotent():
    docarray_patches.apply()
    once = ID.from_protobuf
    docarray_patches.apply()
    assert ID.from_protobuf.__func__ is once.__func__
