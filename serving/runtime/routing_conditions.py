"""The gateway evaluates the flows' `when` conditions on the request's message, without parsing its documents.

For every executor with a `when` condition (four per query: both encoders, both indexers), Jina 3.34's gateway
copies the request, parses its documents with docarray, filters them with docarray's query language and serialises
what is left, although a query flow's request is almost always all of one branch or none of it. The flows' conditions
are all of one form, a field equal to a text (`modality: {$eq: text}`, `tags__target: {$eq: image}`), which is read
from the protobuf message directly: when every document of a request meets the condition, the request goes on as it
is; when none does, it goes on without documents (and serving/runtime/empty_requests.py answers it in the gateway).
A request that mixes both, whose documents were parsed already, or a condition of another form, is left to Jina.
"""
from __future__ import annotations

import copy
import functools
from typing import Any

from docarray import DocList
from docarray.base_doc import AnyDoc
from jina.serve.runtimes.gateway.graph.topology_graph import TopologyGraph

from serving.runtime.empty_requests import document_messages

_Node: Any = TopologyGraph._ReqReplyNode


def simple_condition(condition: Any) -> tuple[tuple[str, ...], str] | None:
    """(field path, text) of a condition `{"a__b": {"$eq": "text"}}`, else None."""
    if not isinstance(condition, dict) or len(condition) != 1:
        return None
    (key, test), = condition.items()
    if not isinstance(key, str) or not isinstance(test, dict) or set(test) != {"$eq"}:
        return None
    value = test["$eq"]
    path = tuple(key.split("__"))
    if not isinstance(value, str) or not 1 <= len(path) <= 2 or not all(path):
        return None
    return path, value


def verdicts(request: Any, path: tuple[str, ...], value: str) -> list[bool] | None:
    """Whether each document of the request's message meets `path == value`; None when the message cannot be read
    that way (documents as bytes or already parsed, a field missing or not text)."""
    messages = document_messages(request)
    if request.data._loaded_doc_array is not None or messages is None:
        return None
    found = []
    for doc in messages:
        node = doc.data.get(path[0])
        if node is not None and len(path) == 2:
            node = node.dict.data.get(path[1]) if node.WhichOneof("content") == "dict" else None
        if node is None or node.WhichOneof("content") != "text":
            return None
        found.append(node.text == value)
    return found


def _read_in_the_message(original):
    @functools.wraps(original)
    def _update_requests_with_filter_condition(self: Any, need_copy: bool) -> None:
        condition = simple_condition(self._filter_condition)
        found = [verdicts(part, *condition) for part in self.parts_to_send] if condition else [None]
        readable = [meets for meets in found if meets is not None]
        if len(readable) < len(found) or any(any(meets) and not all(meets) for meets in readable):
            return original(self, need_copy)
        for position, (part, meets) in enumerate(zip(self.parts_to_send, readable)):
            routed = copy.deepcopy(part) if need_copy else part  # as Jina: a request other branches share stays
            routed.document_array_cls = part.document_array_cls
            if not all(meets):  # none: the request without documents (every one, or none at all: as it is)
                routed.data.docs = DocList[AnyDoc]()
            self.parts_to_send[position] = routed
        return None

    setattr(_update_requests_with_filter_condition, "reads_the_message", True)  # noqa: B010
    return _update_requests_with_filter_condition


def apply() -> None:
    """Idempotent."""
    original = _Node._update_requests_with_filter_condition
    if not getattr(original, "reads_the_message", False):
        _Node._update_requests_with_filter_condition = _read_in_the_message(original)
