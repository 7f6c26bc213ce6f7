"""The base class of every executor of this project: a Jina Executor in a process prepared by the runtime.

Executors import this module (and the wire schema) and nothing else of serving/, so a container that runs one
executor alone gets the same process setup as a flow's forked executors.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
from jina import Executor, requests

from crossmodal.index.tags import MODEL_TAG, refuse
from serving.runtime import prepare_child_process
from serving.runtime.collector import freeze_long_lived
from serving.runtime.processes import allow_torch, name_this_process
from serving.wire import CrossModalDoc, is_embedded

prepare_child_process()  # before this process builds its gRPC server

Input = TypeVar("Input")


class InputRefused(ValueError):
    """A document an encoder cannot embed: the reason, and the HTTP status a query refused so gets."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


def encoder_threads(cpu_share: float = 0.5, replicas: int = 1) -> int:
    """Threads of an encoder's model when the flow does not set them (`--threads`): `cpu_share` of the CPUs this
    process may use, split between the encoder's `replicas` (copies that a flow started on this machine runs side by
    side, each as busy as the others under load), at least one.

    The index flow runs its image and text encoders side by side on the same cores (both busy at once): with all the
    CPUs each, their thread pools oversubscribe the cores and wait on each other (measured on 2 shared cores: the
    encoders' CPU per request 7-10 % lower with one thread each than with two), so each gets half. A query uses one
    encoder while the rest of the flow waits for it: the query flow gives each all of them (`cpu_share: 1.0` in
    flows/query.yml). Measured on 2 shared cores, one text query after 20 ms idle (the pace of 1 client): 6.3-6.5 ms
    on one thread, 4.5-4.6 ms on two (the weights come back from memory on two cores at once); 3.2 and 2.5 ms in a
    tight loop."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, int(cpus * cpu_share / max(1, replicas)))


def encoder_backend(model: str, model_options: dict | str | None, tower: str, cpu_share: float = 0.5,
                    replicas: int = 1) -> Any:
    """An encoder's backend: `model` with its `tower` only, on `encoder_threads(cpu_share, replicas)` threads unless
    the options set them (for the models that take a thread count)."""
    from crossmodal.backends import backend_spec, create_backend_from_config, model_options_dict

    if not 0 < cpu_share <= 1:
        raise ValueError(f"cpu_share must be in (0, 1], got {cpu_share!r}")
    options = model_options_dict(model_options)
    if any(option.name == "threads" for option in backend_spec(model).options):
        options.setdefault("threads", encoder_threads(cpu_share, replicas))
    return create_backend_from_config(model, options, towers=(tower,))


class CrossModalExecutor(Executor):
    """A Jina Executor; subclasses declare their endpoints with `requests` as usual.

    An executor that loads a model sets `runs_model = True`: torch, kept out of the flow's processes
    (`serving.runtime.processes`), is importable again in its process before its `__init__` goes on.

    Endpoints that answer queries (short: a text encoded, a vector search) are `async def`: Jina awaits them on the
    executor's event loop. A plain `def` endpoint runs in Jina's thread pool, which costs two thread handoffs per
    request (the loop wakes a worker, the worker wakes the loop), each with a GIL handover, in every executor on a
    query's path. Measured with two servers side by side (bench/query_ab.py, 12 rounds, 2 shared cores): 1-client
    p50 hybrid 19.5 -> 18.2 and 19.4 -> 18.5 ms, semantic 17.9 -> 16.6 and 17.6 -> 16.9 ms. Work that takes long
    (index batches, photo decoding) stays `def`, so the loop keeps answering while it runs.
    """

    runs_model: ClassVar[bool] = False

    def __init__(self, **kwargs: Any) -> None:
        if self.runs_model:
            allow_torch()
        super().__init__(**kwargs)
        name_this_process(getattr(self.runtime_args, "name", None) or type(self).__name__)

    @property
    def local_replicas(self) -> int:
        """Copies of this executor that its flow runs on this machine (`--replicas`). 1 for an executor started
        alone (`jina executor` in the docker-compose and Kubernetes exports), which shares its CPUs with no sibling."""
        return int(getattr(self.runtime_args, "replicas", None) or 1)

    def started(self) -> None:
        """The end of a subclass's `__init__`: what this process keeps for its life (the model, the stores) is
        built, so the collector leaves it alone from now on (serving.runtime.collector)."""
        freeze_long_lived()


def embed_documents(docs: Iterable[CrossModalDoc], modality: str, prepare: Callable[[CrossModalDoc], Input],
                    encode: Callable[[list[Input]], Sequence[np.ndarray]], batch_size: int,
                    model_name: str) -> list[CrossModalDoc]:
    """The loop both encoders share; returns the documents it embedded.

    A document that arrives embedded already (a composed query the gateway combined from parts) passes through; one
    of the other modality is refused (500: the flow's routing is wrong), one whose input `prepare` refuses
    (`InputRefused`) is marked with the reason and its status; the others are encoded `batch_size` at a time, each
    vector tagged with the model that made it.
    """
    ready: list[tuple[CrossModalDoc, Input]] = []
    for doc in docs:
        if is_embedded(doc):
            continue
        if doc.modality != modality:
            refuse(doc.tags, f"{modality} encoder received a {doc.modality!r} document", 500)
            continue
        try:
            ready.append((doc, prepare(doc)))
        except InputRefused as error:
            refuse(doc.tags, str(error), error.status)
    for start in range(0, len(ready), batch_size):
        batch = ready[start : start + batch_size]
        for (doc, _), vector in zip(batch, encode([item for _, item in batch])):
            doc.embedding = vector
            doc.tags[MODEL_TAG] = model_name
    return [doc for doc, _ in ready]


__all__ = ["CrossModalExecutor", "InputRefused", "embed_documents", "encoder_backend", "encoder_threads", "requests"]
