"""Everything this project does to Jina's processes, behind two entry points.

- `prepare_parent_process()`: in the process that loads and starts a flow, before Jina forks anything. Every forked
  gateway and executor inherits what it sets up.
- `prepare_child_process()`: in a process that a container starts on its own (`jina executor --uses ...`,
  the gateway image): what a forked process would have inherited.

The workarounds were written for one Jina version (`JINA_VERSION`): each replaces or relies on Jina internals, so
both entry points refuse to run under another version rather than patch code they were not checked against.
"""
from __future__ import annotations

import os

JINA_VERSION = "3.34.0"


class JinaVersionError(RuntimeError):
    """Jina is not the version the runtime workarounds were written for."""


def check_jina_version(installed: str | None = None) -> None:
    """Raise JinaVersionError unless the installed Jina is `JINA_VERSION` (what requirements.txt pins)."""
    if installed is None:
        import jina

        installed = jina.__version__
    if installed != JINA_VERSION:
        raise JinaVersionError(
            f"jina {installed} is installed, but serving/runtime was written and tested for jina {JINA_VERSION} "
            "(it replaces some of Jina's internals); install the version in requirements.txt")


def prepare_child_process() -> None:
    """Set up a process that speaks gRPC in a flow: Jina's serializers without their memory leak, docarray's ids
    read without a pydantic schema each, no request without documents sent to an executor, the flow's branches
    joined at its end by the gateway, `when` conditions read from the message, and the gateway's graph copied for
    each request without what no request changes (idempotent)."""
    os.environ.setdefault("JINA_OPTOUT_TELEMETRY", "1")
    check_jina_version()
    from serving.runtime import (
        docarray_patches,
        empty_requests,
        end_join,
        jina_patches,
        request_graphs,
        routing_conditions,
    )

    jina_patches.apply()
    docarray_patches.apply()
    empty_requests.apply()
    end_join.apply()
    routing_conditions.apply()
    request_graphs.apply()


def prepare_parent_process() -> None:
    """Set up the process that starts a flow, so that every process it forks inherits the setup (idempotent).

    Keeps torch out of the processes that run no model (unless something imported it already: call
    `serving.runtime.processes.keep_torch_out` before importing docarray to save it), caps glibc's malloc arenas,
    stops forked processes when their parent dies, and prepares this process as a child would be prepared.
    """
    from serving.runtime.allocator import limit_malloc_arenas
    from serving.runtime.parent_death import stop_forked_processes_with_their_parent
    from serving.runtime.processes import keep_torch_out

    keep_torch_out()
    prepare_child_process()
    limit_malloc_arenas()
    stop_forked_processes_with_their_parent()
