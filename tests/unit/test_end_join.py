"""The gateway joins the branches of a flow at its end (serving/runtime/end_join.py): Jina's own topology and request
handling, the query flow's graph and `when` conditions, and a stand-in connection pool in place of the executors."""
from __future__ import annotations

import asyncio

import grpc
import pytest
from docarray import DocList
from jina.serve.runtimes.gateway.async_request_response_handling import AsyncRequestResponseHandler
from jina.serve.runtimes.gateway.graph.topology_graph import TopologyGraph
from jina.types.request.data import DataRequest

from serving.runtime import end_join
from serving.wire import CrossModalDoc

# flows/query.yml as Jina describes it to its gateway
QUERY_GRAPH = {
    "start-gateway": ["text_encoder", "image_encoder"],
    "text_encoder": ["image_indexer", "text_indexer"],
    "image_encoder": ["image_indexer", "text_indexer"],
    "image_indexer": ["end-gateway"],
    "text_indexer": ["end-gateway"],
}
QUERY_CONDITIONS = {
    "text_encoder": {"modality": {"$eq": "text"}},
    "image_encoder": {"modality": {"$eq": "image"}},
    "image_indexer": {"tags__target": {"$eq": "image"}},
    "text_indexer": {"tags__target": {"$eq": "text"}},
}


class StandInExecutors:
    """Answers each executor's request as the executor would, marking every document with the executors it passed;
    an executor named in `failing` answers with an error."""

    def __init__(self, failing: str | None = None) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.failing = failing

    def send_requests_once(self, requests, deployment, **kwargs):
        request = requests[0]
        request.document_array_cls = DocList[CrossModalDoc]
        docs = request.docs
        self.calls.append((deployment, [doc.id for doc in docs]))
        for doc in docs:
            doc.tags[deployment] = "passed"
        request.data.docs = docs
        answer = asyncio.get_running_loop().create_future()
        # gRPC trailing metadata, as Jina's connection pool hands it over (a sharded deployment's head adds these)
        metadata = grpc.aio.Metadata(("total_shards", "2"), *((("is-error", "true"),) if deployment == self.failing
                                                             else ()))
        answer.set_result((request, metadata))
        return answer


def run_through(graph: TopologyGraph, docs: list[CrossModalDoc], executors: StandInExecutors) -> DocList:
    handler = AsyncRequestResponseHandler()
    handler._endpoint_discovery_finished = True  # no executor to ask for its endpoints here

    async def run():
        request = DataRequest()
        request.header.exec_endpoint = "/search"
        request.data.docs = DocList[CrossModalDoc](docs)
        future, _ = handler.handle_request(graph, executors)(request, DocList[CrossModalDoc])
        response = await future
        response.document_array_cls = DocList[CrossModalDoc]
        return response.docs

    return asyncio.run(run())


def query(doc_id: str, modality: str, target: str) -> CrossModalDoc:
    content = {"text": "a cat"} if modality == "text" else {"image_b64": "aGk="}
    return CrossModalDoc(id=doc_id, modality=modality, tags={"target": target}, **content)


@pytest.fixture
def query_graph():
    end_join.apply()
    return TopologyGraph(QUERY_GRAPH, graph_conditions=QUERY_CONDITIONS)


def test_a_batch_of_text_and_photo_queries_comes_back_whole(query_graph):
    executors = StandInExecutors()
    docs = run_through(query_graph, [query("t1", "text", "image"), query("i1", "image", "text"),
                                     query("t2", "text", "image")], executors)
    assert sorted(doc.id for doc in docs) == ["i1", "t1", "t2"]  # every query once (branch after branch)
    passed = {doc.id: {name for name, value in doc.tags.items() if value == "passed"} for doc in docs}
    assert passed == {"t1": {"text_encoder", "image_indexer"}, "i1": {"image_encoder", "text_indexer"},
                      "t2": {"text_encoder", "image_indexer"}}


@pytest.mark.parametrize("modality,target", [("text", "image"), ("image", "text"), ("text", "text")])
def test_a_query_of_one_branch_comes_back_from_that_branch(query_graph, modality, target):
    executors = StandInExecutors()
    docs = run_through(query_graph, [query("q", modality, target)], executors)
    assert [doc.id for doc in docs] == ["q"]
    assert doc_passed(docs[0]) == {f"{modality}_encoder", f"{target}_indexer"}


def doc_passed(doc: CrossModalDoc) -> set[str]:
    return {name for name, value in doc.tags.items() if value == "passed"}


def test_without_the_join_jina_answers_with_one_branch_only():
    """The control: Jina's own end nodes lose the documents of the second branch (why the flows had a merger)."""
    docs = run_through(_unpatched_graph(), [query("t1", "text", "image"), query("i1", "image", "text")],
                       StandInExecutors())
    assert len(docs) == 1


def _unpatched_graph() -> TopologyGraph:
    """The query graph as Jina builds it, whatever `apply()` did to TopologyGraph.__init__."""
    init = TopologyGraph.__init__
    original = getattr(init, "__wrapped__", init)
    graph = TopologyGraph.__new__(TopologyGraph)
    original(graph, QUERY_GRAPH, graph_conditions=QUERY_CONDITIONS)
    return graph


def test_an_error_in_one_branch_is_the_answer(query_graph):
    executors = StandInExecutors(failing="text_indexer")
    docs = run_through(query_graph, [query("t1", "text", "image"), query("i1", "image", "text")], executors)
    assert [doc.id for doc in docs] == ["i1"]  # the failed branch's response, as Jina answers an error


def test_one_leaf_keeps_jinas_own_end_and_apply_is_idempotent():
    end_join.apply()
    once = TopologyGraph.__init__
    end_join.apply()
    assert TopologyGraph.__init__ is once
    chain = TopologyGraph({"start-gateway": ["encoder"], "encoder": ["indexer"], "indexer": ["end-gateway"]})
    end = chain.origin_nodes[0].outgoing_nodes[0].outgoing_nodes[0]
    assert type(end) is TopologyGraph._EndGatewayNode
    docs = run_through(chain, [query("t1", "text", "image")], StandInExecutors())
    assert [doc.id for doc in docs] == ["t1"] and doc_passed(docs[0]) == {"encoder", "indexer"}


def test_the_joined_end_waits_for_every_path(query_graph):
    assert not query_graph.has_filter_conditions  # no parse and sort back into the request's order
    ends = {id(node.outgoing_nodes[0]) for node in query_graph.origin_nodes[0].outgoing_nodes}
    assert len(ends) == 1
    end = query_graph.origin_nodes[0].outgoing_nodes[0].outgoing_nodes[0]
    assert end.expected == 4  # two encoders, each to two indexers
