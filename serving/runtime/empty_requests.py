"""The gateway does not send requests that carry no document to an executor.

Jina 3.34's gateway applies a deployment's `when` condition and sends the request on even when the condition left
no document in it: every query of the query flow made two such calls (a text query: the image encoder and the
caption indexer each got an empty request, answered it, and the merge waited for both), which cost gRPC round
trips, (de)serialisation and CPU on a 2-core machine. For the endpoints that only carry documents (`/search`,
`/encode`, `/index`) an executor's answer to an empty request is that empty request, so the gateway now answers it
itself. Other endpoints (`/flush`, which carries no document on purpose) are sent as before.

Joining such an empty branch costs nothing either: where Jina reduces the requests of several branches (before an
executor that needs both encoders, and at the flow's end: serving/runtime/end_join.py), it parsed every branch's
documents, merged them by id and serialised them again, three times per query (in-process, 19 matches: ~1 ms a
query). When at most one of the requests holds documents, that one is the reduction: it is answered with the
parameters merged as Jina merges them, and nothing is parsed.
"""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

from jina.proto import jina_pb2
from jina.serve.networking import GrpcConnectionPool
from jina.serve.runtimes.worker.request_handling import WorkerRequestHandler

DOCUMENT_ENDPOINTS = frozenset({"/search", "/encode", "/index"})


def document_messages(request) -> Sequence | None:
    """The request's documents as protobuf messages (DocProto), unparsed; None when Jina holds them as bytes."""
    content = request.data._content
    return None if content.WhichOneof("documents") == "docs_bytes" else content.docs.docs


def _holds_no_documents(request) -> bool:
    """Counted in the protobuf message, not by parsing the documents: Jina drops its parsed copy whenever it sets a
    request's documents (after a `when` filter, for one), and parsing them again cost ~5 % of the gateway's CPU."""
    try:
        messages = document_messages(request)
        return len(request.docs if messages is None else messages) == 0
    except Exception:  # not a data request, or not readable here: let Jina send it
        return False


def _answered_here(original):
    @functools.wraps(original)
    def send_requests_once(self, requests, deployment, *args, **kwargs):
        endpoint = kwargs.get("endpoint")
        if endpoint in DOCUMENT_ENDPOINTS and requests and all(map(_holds_no_documents, requests)):
            answer = asyncio.get_running_loop().create_future()
            answer.set_result((requests[0], {}))
            return answer
        return original(self, requests, deployment, *args, **kwargs)

    setattr(send_requests_once, "answers_empty_requests", True)  # noqa: B010 (a marker mypy cannot type)
    return send_requests_once


def _reduced_without_parsing(original):
    @functools.wraps(original)
    def reduce_requests(requests):
        if len(requests) > 1 and all(request.status.code == jina_pb2.StatusProto.SUCCESS for request in requests):
            holding = [request for request in requests if not _holds_no_documents(request)]
            if len(holding) <= 1:
                reduced = holding[0] if holding else requests[0]
                WorkerRequestHandler.replace_parameters(
                    reduced, WorkerRequestHandler.get_parameters_dict_from_request(requests))
                return reduced
        return original(requests)

    setattr(reduce_requests, "skips_empty_requests", True)  # noqa: B010
    return staticmethod(reduce_requests)


def apply() -> None:
    """Idempotent."""
    if not getattr(GrpcConnectionPool.send_requests_once, "answers_empty_requests", False):
        GrpcConnectionPool.send_requests_once = _answered_here(GrpcConnectionPool.send_requests_once)
    if not getattr(WorkerRequestHandler.reduce_requests, "skips_empty_requests", False):
        WorkerRequestHandler.reduce_requests = _reduced_without_parsing(WorkerRequestHandler.reduce_requests)
