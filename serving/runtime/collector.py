"""Long-lived objects kept out of Python's cyclic garbage collector, in every process of a flow.

A flow's processes hold a large heap that never becomes garbage: the modules of Jina, FastAPI, docarray and
pydantic, the schemas, the app, the model's wrapper (about 140,000 objects in the gateway). A full (generation 2)
collection walks all of it while every request in flight waits: 137 ms per full collection in the gateway under a
16-client load on a throttled 2-core VM (5-10 ms once frozen; gc callbacks). And since the processes
are forked from the one that loads the flow, a collection in a child also writes to the pages it shares with its
parent (the collector's bookkeeping lives in each object's header), so the shared pages become private copies.

`freeze_long_lived()` moves every object tracked so far into the collector's permanent generation (`gc.freeze`),
which no collection walks; objects made later are collected as before. It is called where a process has built what
it keeps for its life: in the parent right before the flow is forked (the CPython documentation's advice for
fork without exec), and in each executor and the gateway once their models and app are built.
"""
from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Collect what is garbage now, then freeze what is left (call it when a process has finished starting)."""
    gc.collect()
    gc.freeze()
