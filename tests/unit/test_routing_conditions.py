"""`when` conditions read from the request's message (serving/runtime/routing_conditions.py): the same routing as
Jina's docarray filter, without parsing the documents when a request is all of one branch or none of it."""
from __future__ import annotations

import pytest
from docarray import DocList
from docarray.utils.filter import filter_docs
from jina.serve.runtimes.gateway.graph.topology_graph import TopologyGraph
from jina.types.request.data import DataRequest

from serving.runtime import end_join, routing_conditions
from serving.runtime.routing_conditions import simple_condition, verdicts
from serving.wire import CrossModalDoc
from tests.unit.test_end_join import QUERY_CONDITIONS, QUERY_GRAPH, StandInExecutors, query, run_through


def request_of(*docs: CrossModalDoc) -> DataRequest:
    request = DataRequest()
    request.data.docs = DocList[CrossModalDoc](list(docs))
    return DataRequest(request.proto.SerializeToString())  # as it arrives: documents not parsed


@pytest.mark.parametrize("condition, expected", [
    ({"modality": {"$eq": "text"}}, (("modality",), "text")),
    ({"tags__target": {"$eq": "image"}}, (("tags", "target"), "image")),
    ({"modality": {"$in": ["text"]}}, None),
    ({"modality": {"$eq": 3}}, None),
    ({"a__b__c": {"$eq": "x"}}, None),
    ({"modality": {"$eq": "text"}, "uri": {"$eq": "x"}}, None),
    ({"$and": [{"modality": {"$eq": "text"}}]}, None),
])
def test_only_a_field_equal_to_a_text_is_read_from_the_message(condition, expected):
    assert simple_condition(condition) == expected


DOCS = [query("t1", "text", "image"), query("i1", "image", "text"), query("t2", "text", "text"),
        CrossModalDoc(id="no-tags", modality="text", text="x")]


@pytest.mark.parametrize("condition", list(QUERY_CONDITIONS.values()), ids=list(QUERY_CONDITIONS))
@pytest.mark.parametrize("docs", [DOCS[:1], DOCS[1:2], DOCS[:3], DOCS[2:3], []], ids=["t", "i", "mixed", "t2", "none"])
def test_the_verdicts_are_those_of_jinas_filter(condition, docs):
    found = verdicts(request_of(*docs), *simple_condition(condition))
    kept = {doc.id for doc in filter_docs(DocList[CrossModalDoc](docs), condition)}
    assert found == [doc.id in kept for doc in docs]


def test_a_message_it_cannot_read_is_left_to_jina():
    condition = simple_condition({"tags__target": {"$eq": "image"}})
    assert verdicts(request_of(DOCS[3]), *condition) is None  # no such tag
    parsed = request_of(DOCS[0])
    parsed.document_array_cls = DocList[CrossModalDoc]
    assert parsed.docs[0].id == "t1"  # parsed already: Jina filters what it parsed
    assert verdicts(parsed, *condition) is None


def test_single_branch_queries_are_routed_without_jinas_filter_and_mixed_ones_with_it(monkeypatch):
    import docarray.utils.filter

    end_join.apply()
    routing_conditions.apply()
    graph = TopologyGraph(QUERY_GRAPH, graph_conditions=QUERY_CONDITIONS)
    filtered = []
    monkeypatch.setattr(docarray.utils.filter, "filter_docs",
                        lambda docs, condition: filtered.append(condition) or filter_docs(docs, condition))
    executors = StandInExecutors()
    docs = run_through(graph, [query("t1", "text", "image")], executors)
    assert [name for name, ids in executors.calls if ids] == ["text_encoder", "image_indexer"]
    assert [doc.id for doc in docs] == ["t1"] and filtered == []  # read from the message, nothing parsed to route
    mixed = run_through(graph, [query("t1", "text", "image"), query("t2", "text", "text")], StandInExecutors())
    assert sorted(doc.id for doc in mixed) == ["t1", "t2"]
    assert QUERY_CONDITIONS["image_indexer"] in filtered  # the mixed request: Jina's own filter
