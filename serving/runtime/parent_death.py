"""Processes forked for a flow stop when the process that forked them dies, even by SIGKILL.

Without this, `kill -9` of `app.py` left the gateway and every executor running, holding the HTTP port and the
workspace's indexes open. Linux's PR_SET_PDEATHSIG sends each forked child SIGTERM (which Jina's runtimes handle as
a clean stop) when the thread that forked it ends. Jina forks every pod from the thread that starts the flow; the
request is made only for forks from a main thread, so that a thread that forks and then finishes does not end its
children.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1

_registered = False
_forking_pid: int | None = None


def _before_fork() -> None:
    global _forking_pid
    _forking_pid = os.getpid() if threading.current_thread() is threading.main_thread() else None


def _after_fork_in_child() -> None:
    if _forking_pid is None:
        return
    libc = ctypes.CDLL(None)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return  # best effort: the child then outlives a killed parent, as it did before
    if os.getppid() != _forking_pid:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def stop_forked_processes_with_their_parent() -> None:
    """From now on, every process forked from a main thread gets SIGTERM when its parent dies (idempotent; Linux)."""
    global _registered
    if _registered or not sys.platform.startswith("linux"):
        return
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
    _registered = True
