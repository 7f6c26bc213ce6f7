"""The counter-free gRPC serializers: same bytes as Jina's, no environment writes, no memory left behind."""
import ctypes
import importlib.util
import os

import pytest
from docarray import DocList
from jina.proto import serializer
from jina.types.request.data import DataRequest

from serving.runtime import jina_patches
from serving.wire import CrossModalDoc

COUNTERS = ("JINA_GRPC_SEND_BYTES", "JINA_GRPC_RECV_BYTES")


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def malloc_in_use() -> int:
    """Bytes glibc has handed out and not had back, over all arenas."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    return libc.mallinfo2().uordblks


def jinas_own_serializer():
    """A fresh copy of jina/proto/serializer.py, untouched by `apply()`."""
    spec = importlib.util.spec_from_file_location("jina_original_serializer", serializer.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def a_request() -> DataRequest:
    request = DataRequest()
    request.data.docs = DocList[CrossModalDoc]([CrossModalDoc(modality="text", text="a dog jumping over a fence")])
    return request


def growth_over_round_trips(codec, count: int = 20_000) -> int:
    data = codec.SerializeToString(a_request())
    codec.FromString(data)  # warm up
    before = malloc_in_use()
    for _ in range(count):
        codec.FromString(codec.SerializeToString(codec.FromString(data)))
    return malloc_in_use() - before


@pytest.fixture(autouse=True)
def no_counters():
    saved = {name: os.environ.pop(name) for name in COUNTERS if name in os.environ}
    yield
    for name in COUNTERS:
        os.environ.pop(name, None)
    os.environ.update(saved)


def test_same_bytes_as_jinas_serializer_and_no_environment_writes():
    request = a_request()
    original = jinas_own_serializer().DataRequestProto
    expected = original.SerializeToString(request)
    expected_docs = original.FromString(expected).docs.to_protobuf()
    assert all(name in os.environ for name in COUNTERS)  # Jina's own counts what it sent and received
    for name in COUNTERS:
        os.environ.pop(name, None)

    jina_patches.apply()
    data = serializer.DataRequestProto.SerializeToString(request)
    assert data == expected
    decoded = serializer.DataRequestProto.FromString(data)
    assert decoded.docs.to_protobuf() == expected_docs
    assert decoded.docs[0].text == "a dog jumping over a fence"
    assert serializer.DataRequestProto.SerializeToString(serializer.DataRequestProto.FromString(data)) == expected
    assert not [name for name in COUNTERS if name in os.environ]


def test_single_document_requests_round_trip():
    jina_patches.apply()
    codec = serializer.SingleDocumentRequestProto
    empty = codec.FromString(b"")
    assert codec.FromString(codec.SerializeToString(empty)).proto == empty.proto
    assert not [name for name in COUNTERS if name in os.environ]


def test_round_trips_leave_no_memory_behind_where_jinas_own_leak():
    original_growth = growth_over_round_trips(jinas_own_serializer().DataRequestProto)
    jina_patches.apply()
    patched_growth = growth_over_round_trips(serializer.DataRequestProto)
    # 40,000 environment strings of ~30 bytes each: Jina's own leaves about a megabyte behind.
    assert original_growth > 500_000, f"the control did not leak ({original_growth} bytes); the test proves nothing"
    assert patched_growth < 100_000, f"{patched_growth} bytes left behind by 20,000 round trips"
