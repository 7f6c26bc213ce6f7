"""Lean flow processes: torch only where a model runs, and a name per process.

docarray imports torch when it is installed (`docarray/utils/_internal/misc.py`: `try: import torch`), so every
process of a flow paid for it (about 1.3 s of import and 100+ MB each), although only the encoders run a model.
`keep_torch_out()` makes `import torch` fail in this process and the ones it forks from now on (a finder first
on `sys.meta_path`), as if torch were not installed; docarray then works without it (embeddings are `NdArray`).
The process that starts a flow calls it before anything imports docarray (`app.py`, and `prepare_parent_process`
for other launchers), so the gateway, the indexers, the merger and the waiting parent never load libtorch.
An executor that runs a model declares it (`CrossModalExecutor.runs_model`), and the base class calls
`allow_torch()` before the executor loads its model, in its own process only.

`name_this_process` sets the process's name (`/proc/<pid>/comm`, what `ps -o comm` and `top` show): every process
of a flow is a fork of `app.py` with its command line, and the name tells which executor or gateway it is.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import sys
from pathlib import Path

BLOCKED = ("torch",)
COMM_CHARS = 15  # the kernel keeps 15 bytes of a process name


class _KeptOut(importlib.abc.MetaPathFinder):
    """Makes `import torch` (and its submodules) fail as if torch were not installed.

    A finder rather than a `None` entry in `sys.modules`: code that looks into `sys.modules` for a loaded torch
    (scipy's array-API helpers do `sys.modules["torch"].Tensor` when the key is there) must not find one."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r} (kept out of this process, which runs no "
                                      "model: serving.runtime.processes)", name=fullname)
        return None


def keep_torch_out() -> bool:
    """From now on `import torch` fails here and in the processes forked from here; False when it is imported
    already (nothing to save then). Idempotent."""
    if any(name in sys.modules for name in BLOCKED):
        return False
    if not torch_kept_out():
        sys.meta_path.insert(0, _KeptOut())
    return True


def allow_torch() -> None:
    """Lift `keep_torch_out` in this process (a model is about to be loaded); harmless when it was not set."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _KeptOut)]


def torch_kept_out() -> bool:
    return any(isinstance(finder, _KeptOut) for finder in sys.meta_path)


def short_name(name: str) -> str:
    """A Jina deployment or pod name as a process name: `image_indexer/shard-1/rep-0` -> `image_indexer:s1r0`."""
    base, *parts = name.split("/")
    suffix = "".join(part[0] + part.rsplit("-", 1)[-1] for part in parts if part)
    if not suffix:
        return base[:COMM_CHARS]
    return f"{base[:COMM_CHARS - len(suffix) - 1]}:{suffix}"


def name_this_process(name: str) -> None:
    """Best effort (Linux): the name `ps` and `top` show for this process."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(short_name(name))
