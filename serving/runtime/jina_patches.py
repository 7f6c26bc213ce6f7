"""Jina 3.34's gRPC serializers without their byte counters in the process environment.

Jina keeps a running total of the bytes every process sent and received over gRPC in `os.environ`
(JINA_GRPC_SEND_BYTES, JINA_GRPC_RECV_BYTES), updated on every message. Each new total is a new environment string,
and glibc never frees the string that `setenv` replaces (a `getenv` caller may still hold it), so every process of a
flow leaked about 30 bytes per gRPC message, for as long as it ran. heaptrack on a worker under load put all of its
growth in `__add_to_environ`. Nothing in Jina reads the totals; the replacements serialize exactly as Jina does.

`apply()` must run in every process that speaks gRPC before its first stub or server is built (they look the
serializers up then): `load_flow` does it before Jina forks the flow, and each executor and the gateway module do it
on import, for the processes that containers start on their own.
"""
from __future__ import annotations

from jina.proto import serializer
from jina.types.request.data import DataRequest, SingleDocumentRequest


def _request_bytes(request: DataRequest | SingleDocumentRequest) -> bytes:
    return request.proto.SerializePartialToString() if request.is_decompressed else request.buffer


def _single_document_request(data: bytes) -> SingleDocumentRequest:
    return SingleDocumentRequest(data) if data else SingleDocumentRequest()


def apply() -> None:
    """Swap in the counter-free serializers (idempotent)."""
    serializer.DataRequestProto.SerializeToString = staticmethod(_request_bytes)
    serializer.DataRequestProto.FromString = staticmethod(DataRequest)
    serializer.SingleDocumentRequestProto.SerializeToString = staticmethod(_request_bytes)
    serializer.SingleDocumentRequestProto.FromString = staticmethod(_single_document_request)
