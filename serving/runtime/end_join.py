"""The gateway joins the flow's branches at its end, as Jina joins branches at any executor that needs several.

Jina 3.34 links only a flow's last executor to the gateway (the others that nothing needs become floating: their
answers are dropped), gives each leaf its own end node, and answers a request with the response of the first leaf
that returned one. So with two branches (photos and captions) both flows ended in a `merge` executor, which Jina's
gateway sent the branches' responses reduced by document id (`WorkerRequestHandler.reduce_requests`) and which
answered them unchanged: one more gRPC hop per request (2.6 ms of an 18 ms text query on 2 cores, by the routes'
timestamps), and one more process.

With `apply()`:
- in the process that builds a flow, every executor that nothing needs and that is not declared `floating` is a
  leaf that answers the gateway (`Flow._get_graph_representation`, which the gateway gets as its graph, also in
  deploy/export.py's Kubernetes and Compose exports);
- in the gateway, the leaves share one end node, which waits for every path that reaches it and reduces the
  responses with that same Jina function. A response that an error ended is answered as it is; a path that answered
  nothing (a join's first parts, which Jina answers with None) is left out; the same response reached by two paths
  counts once.
"""
from __future__ import annotations

import asyncio
import functools
from typing import Any

from jina import Flow
from jina.serve.runtimes.gateway.graph.topology_graph import TopologyGraph
from jina.serve.runtimes.worker.request_handling import WorkerRequestHandler

_End: Any = TopologyGraph._EndGatewayNode


class _JoinedEnd(_End):
    """One end node for every leaf: its task resolves once all `expected` paths have arrived."""

    def __init__(self, *args: Any, expected: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expected = expected
        self._arrived: list[asyncio.Task] = []

    def get_leaf_req_response_tasks(self, previous_task: asyncio.Task | None, *args: Any,
                                    **kwargs: Any) -> list[tuple[bool, asyncio.Task]]:
        if previous_task is not None:
            self._arrived.append(previous_task)
        if len(self._arrived) < self.expected:
            return []
        arrived, self._arrived = self._arrived, []
        return [(True, asyncio.create_task(joined(arrived)))]


async def joined(tasks: list[asyncio.Task]) -> tuple[Any, dict]:
    """The leaves' responses as one: an error as it is, else the responses reduced by document id."""
    answers = [(response, metadata or {}) for response, metadata in await asyncio.gather(*tasks)
               if response is not None]
    unique = list({id(response): (response, metadata) for response, metadata in answers}.values())
    if not unique:
        return None, {}
    errors = [answer for answer in unique if "is-error" in answer[1]]
    if errors:
        return errors[0]
    if len(unique) == 1:
        return unique[0]
    # the metadata (gRPC trailing metadata) of the first: Jina reads only "is-error" there, and none has it
    return WorkerRequestHandler.reduce_requests([response for response, _ in unique]), unique[0][1]


def share_one_end(graph: TopologyGraph) -> None:
    """Point every leaf of `graph` that ends at the gateway to one `_JoinedEnd` (nothing to do with one leaf)."""
    links = [(node, position) for node in _nodes(graph) for position, out in enumerate(node.outgoing_nodes)
             if isinstance(out, _End)]
    if len(links) < 2:
        return
    end = _JoinedEnd(name="__end_gateway__", floating=False)
    for node, position in links:
        node.outgoing_nodes[position] = end
    end.expected = _paths_to(end, graph.origin_nodes)
    # Jina parses every request's documents to note their order and, at the end, parses the response's, sorts them
    # back into that order and serialises them again (a third of the gateway's own work on a query with 19
    # matches). The flows' callers find their documents by id (serving/http/gateway.py, serving/jobs/), so a
    # response lists the branches' documents branch after branch instead.
    graph.has_filter_conditions = False


def _nodes(graph: TopologyGraph) -> list:
    """Every executor node, once (`TopologyGraph.all_nodes` keeps one of the end nodes, by their shared name)."""
    seen: dict[int, Any] = {}
    stack = list(graph.origin_nodes)
    while stack:
        node = stack.pop()
        if id(node) not in seen and not isinstance(node, _End):
            seen[id(node)] = node
            stack.extend(node.outgoing_nodes)
    return list(seen.values())


def _paths_to(target: Any, origins: list) -> int:
    """How many times a request reaches `target`: Jina walks a node once per path from the gateway to it."""
    def count(node: Any) -> int:
        return 1 if node is target else sum(count(out) for out in node.outgoing_nodes)

    return sum(count(origin) for origin in origins)


def _with_one_end(original):
    @functools.wraps(original)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        share_one_end(self)

    setattr(__init__, "joins_at_the_end", True)  # noqa: B010 (a marker mypy cannot type)
    return __init__


def _with_every_leaf_answering(original):
    @functools.wraps(original)
    def _get_graph_representation(self: Flow) -> dict[str, list[str]]:
        graph = original(self)
        for name, outgoing in graph.items():
            deployment = self._deployment_nodes.get(name)
            if deployment is not None and not outgoing and not getattr(deployment.args, "floating", False):
                outgoing.append("end-gateway")
        return graph

    setattr(_get_graph_representation, "joins_at_the_end", True)  # noqa: B010
    return _get_graph_representation


def apply() -> None:
    """Idempotent."""
    if not getattr(TopologyGraph.__init__, "joins_at_the_end", False):
        TopologyGraph.__init__ = _with_one_end(TopologyGraph.__init__)
    if not getattr(Flow._get_graph_representation, "joins_at_the_end", False):
        Flow._get_graph_representation = _with_every_leaf_answering(Flow._get_graph_representation)
