"""The base class of every executor of this project: a Jina Executor in a process prepared by the runtime.

Executors import this module (and the wire schema) and nothing else of serving/, so a container that runs one
executor alone gets the same process setup as a flow's forked executors.
"""
from __future__ import annotations

from jina import Executor, requests

from serving.runtime import prepare_child_process

prepare_child_process()  # before this process builds its gRPC server


class CrossModalExecutor(Executor):
    """A Jina Executor; subclasses declare their endpoints with `requests` as usual."""


__all__ = ["CrossModalExecutor", "requests"]
