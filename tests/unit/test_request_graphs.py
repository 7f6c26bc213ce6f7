"""The gateway's per-request copy of the flow's graph (serving/runtime/request_graphs.py): each request its own
nodes and lists, the same shape, and what endpoint discovery found shared rather than copied; queries still routed
and joined as before."""
from __future__ import annotations

import asyncio
import copy

import pytest
from docarray import DocList
from jina.proto import jina_pb2
from jina.serve.runtimes.gateway.async_request_response_handling import AsyncRequestResponseHandler
from jina.serve.runtimes.gateway.graph.topology_graph import TopologyGraph
from jina.types.request.data import DataRequest

from serving.runtime import end_join, request_graphs
from serving.wire import CrossModalDoc
from tests.unit.test_end_join import QUERY_CONDITIONS, QUERY_GRAPH, StandInExecutors, doc_passed, query, run_through


@pytest.fixture
def discovered_graph() -> TopologyGraph:
    """The query graph as the gateway holds it once it has asked every executor for its endpoints."""
    end_join.apply()
    request_graphs.apply()
    graph = TopologyGraph(QUERY_GRAPH, graph_conditions=QUERY_CONDITIONS)
    for node in all_nodes(graph):
        endpoints = jina_pb2.EndpointsProto()
        endpoints.endpoints.extend(["/search", "/encode"])
        endpoints.schemas.update({"/search": {"input": {"name": "CrossModalDoc", "model": {"title": "x" * 1000}}}})
        node.endpoints = endpoints.endpoints
        node._endpoints_proto = (endpoints, None)
        node._pydantic_models_by_endpoint = {"/search": {"input": object, "output": object}}
    return graph


def all_nodes(graph: TopologyGraph) -> list:
    found: dict[int, object] = {}
    frontier = list(graph.origin_nodes)
    while frontier:
        node = frontier.pop()
        if id(node) not in found:
            found[id(node)] = node
            frontier.extend(node.outgoing_nodes)
    return list(found.values())


def shape(graph: TopologyGraph) -> list[tuple[str, list[str]]]:
    return sorted((node.name, [out.name for out in node.outgoing_nodes]) for node in all_nodes(graph))


def test_a_copy_has_its_own_nodes_and_lists_and_the_same_shape(discovered_graph):
    copied = copy.deepcopy(discovered_graph)
    originals, copies = all_nodes(discovered_graph), all_nodes(copied)
    assert shape(copied) == shape(discovered_graph) and len(copies) == len(originals) == 5
    assert not {id(node) for node in originals} & {id(node) for node in copies}
    for original, node in zip(sorted(originals, key=lambda n: n.name), sorted(copies, key=lambda n: n.name)):
        assert node.parts_to_send is not original.parts_to_send
        assert node.outgoing_nodes is not original.outgoing_nodes
        assert node._endpoints_proto is original._endpoints_proto  # shared, not copied
        assert node._pydantic_models_by_endpoint is original._pydantic_models_by_endpoint
        assert node._filter_condition is original._filter_condition
    end = copied.origin_nodes[0].outgoing_nodes[0].outgoing_nodes[0]
    assert {id(node.outgoing_nodes[0]) for node in copies if node.outgoing_nodes
            and node.name.endswith("indexer")} == {id(end)}  # the joined end: copied once for both indexers
    assert end._arrived is not discovered_graph.origin_nodes[0].outgoing_nodes[0].outgoing_nodes[0]._arrived


def test_what_one_request_puts_in_its_copy_stays_there(discovered_graph):
    first, second = copy.deepcopy(discovered_graph), copy.deepcopy(discovered_graph)
    node = first.origin_nodes[0]
    node.parts_to_send.append("a request")
    node.start_time = "now"
    node.endpoints = None  # assigned, as discovery does: the other copies keep theirs
    assert second.origin_nodes[0].parts_to_send == [] and second.origin_nodes[0].start_time is None
    assert discovered_graph.origin_nodes[0].parts_to_send == []
    assert list(second.origin_nodes[0].endpoints) == ["/search", "/encode"]


def test_queries_are_routed_and_joined_through_the_copies():
    end_join.apply()
    request_graphs.apply()
    graph = TopologyGraph(QUERY_GRAPH, graph_conditions=QUERY_CONDITIONS)
    for docs in ([query("t1", "text", "image")], [query("i1", "image", "text"), query("t2", "text", "image")]):
        executors = StandInExecutors()
        found = run_through(graph, docs, executors)
        assert sorted(doc.id for doc in found) == sorted(doc.id for doc in docs)
        for doc in found:
            modality, target = ("text", "image") if doc.id.startswith("t") else ("image", "text")
            assert doc_passed(doc) == {f"{modality}_encoder", f"{target}_indexer"}
    assert all(node.parts_to_send == [] for node in all_nodes(graph))  # the graph itself is never used


def test_requests_at_once_do_not_mix(discovered_graph):
    """Requests in flight together on one event loop, each through its own copy: every answer holds its own
    documents, and each path's parts are its request's."""
    end_join.apply()
    request_graphs.apply()
    graph = TopologyGraph(QUERY_GRAPH, graph_conditions=QUERY_CONDITIONS)
    handler = AsyncRequestResponseHandler()
    handler._endpoint_discovery_finished = True

    def request_of(doc: CrossModalDoc) -> DataRequest:
        request = DataRequest()
        request.header.exec_endpoint = "/search"
        request.data.docs = DocList[CrossModalDoc]([doc])
        return request

    async def many() -> list[list[str]]:
        futures = [handler.handle_request(graph, StandInExecutors())(
            request_of(query(f"{modality[0]}{n}", modality, target)), DocList[CrossModalDoc])[0]
            for n in range(8) for modality, target in (("text", "image"), ("image", "text"))]
        responses = await asyncio.gather(*futures)
        for response in responses:
            response.document_array_cls = DocList[CrossModalDoc]
        return [[doc.id for doc in response.docs] for response in responses]

    expected = [[f"{modality[0]}{n}"] for n in range(8) for modality in ("text", "image")]
    assert asyncio.run(many()) == expected
