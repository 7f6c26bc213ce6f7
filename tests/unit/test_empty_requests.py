"""The gateway answers a request that a `when` condition emptied itself, for the document endpoints only."""
import asyncio

import pytest
from docarray import DocList
from jina.types.request.data import DataRequest

from serving.runtime import empty_requests
from serving.wire import CrossModalDoc


def request_with(count: int) -> DataRequest:
    request = DataRequest()
    request.data.docs = DocList[CrossModalDoc]([CrossModalDoc(modality="text", text=f"t{n}") for n in range(count)])
    return request


def sent_through(original_calls: list, endpoint: str, requests: list):
    def original(self, requests, deployment, **kwargs):
        original_calls.append((deployment, kwargs.get("endpoint")))
        return "sent"

    wrapped = empty_requests._answered_here(original)

    async def call():
        result = wrapped(None, requests, "image_encoder", endpoint=endpoint)
        return await result if isinstance(result, asyncio.Future) else result

    return asyncio.run(call())


def test_an_empty_search_is_answered_without_a_call():
    calls: list = []
    empty = request_with(0)
    assert sent_through(calls, "/search", [empty]) == (empty, {}) and calls == []


def test_a_request_with_documents_or_a_control_endpoint_is_sent():
    calls: list = []
    assert sent_through(calls, "/search", [request_with(1)]) == "sent"
    assert sent_through(calls, "/flush", [request_with(0)]) == "sent"  # carries no document on purpose
    assert calls == [("image_encoder", "/search"), ("image_encoder", "/flush")]


def test_documents_are_counted_without_parsing_them(monkeypatch):
    """Jina drops its parsed documents whenever it sets them (after a `when` filter): the count reads the message."""
    forwarded = DataRequest(request_with(2).proto.SerializeToString())
    emptied = DataRequest(request_with(0).proto.SerializeToString())
    monkeypatch.setattr(DocList, "from_protobuf", classmethod(lambda *a, **k: pytest.fail("documents parsed")))
    forwarded.document_array_cls = emptied.document_array_cls = DocList[CrossModalDoc]
    assert not empty_requests._holds_no_documents(forwarded) and empty_requests._holds_no_documents(emptied)


def test_apply_is_idempotent():
    from jina.serve.networking import GrpcConnectionPool

    empty_requests.apply()
    once = GrpcConnectionPool.send_requests_once
    empty_requests.apply()
    assert GrpcConnectionPool.send_requests_once is once and once.answers_empty_requests


def test_joining_an_empty_branch_parses_nothing_and_keeps_the_other(monkeypatch):
    from jina.serve.runtimes.worker.request_handling import WorkerRequestHandler

    empty_requests.apply()
    holding = DataRequest(request_with(2).proto.SerializeToString())
    emptied = DataRequest(request_with(0).proto.SerializeToString())
    for part in (holding, emptied):
        part.document_array_cls = DocList[CrossModalDoc]
        part.parameters = {"limit": 5}
    monkeypatch.setattr(DocList, "from_protobuf", classmethod(lambda *a, **k: pytest.fail("documents parsed")))
    reduced = WorkerRequestHandler.reduce_requests([emptied, holding])
    assert reduced is holding and reduced.parameters["limit"] == 5 and "__results__" in reduced.parameters
    monkeypatch.undo()
    assert [doc.text for doc in reduced.docs] == ["t0", "t1"]


def test_two_branches_with_documents_are_still_merged_by_jina():
    from jina.serve.runtimes.worker.request_handling import WorkerRequestHandler

    empty_requests.apply()
    first, second = request_with(1), request_with(2)
    second.docs[0].id = "other"
    second.data.docs = second.docs
    reduced = WorkerRequestHandler.reduce_requests([first, second])
    assert sorted(doc.text for doc in reduced.docs) == ["t0", "t0", "t1"]
