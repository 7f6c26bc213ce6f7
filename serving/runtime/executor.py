"""The base class of every executor of this project: a Jina Executor in a process prepared by the runtime.

Executors import this module (and the wire schema) and nothing else of serving/, so a container that runs one
executor alone gets the same process setup as a flow's forked executors.
"""
from __future__ import annotations

from typing import Any, ClassVar

from jina import Executor, requests

from serving.runtime import prepare_child_process
from serving.runtime.processes import allow_torch, name_this_process

prepare_child_process()  # before this process builds its gRPC server


class CrossModalExecutor(Executor):
    """A Jina Executor; subclasses declare their endpoints with `requests` as usual.

    An executor that loads a model sets `runs_model = True`: torch, kept out of the flow's processes
    (`serving.runtime.processes`), is importable again in its process before its `__init__` goes on.
    """

    runs_model: ClassVar[bool] = False

    def __init__(self, **kwargs: Any) -> None:
        if self.runs_model:
            allow_torch()
        super().__init__(**kwargs)
        name_this_process(getattr(self.runtime_args, "name", None) or type(self).__name__)


__all__ = ["CrossModalExecutor", "requests"]
