"""The malloc arena cap the flows start with: threads of a capped process share two arenas, and forked children
inherit the cap. Counted with glibc's own malloc_stats, in fresh interpreters; an uncapped control shows that the
same threads would otherwise make more."""
import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTENDING_THREADS = """
import ctypes, os, sys, threading
sys.path.insert(0, {root!r})
from serving.runtime.allocator import limit_malloc_arenas
if {cap}:
    assert limit_malloc_arenas()
def churn():
    for _ in range(3000):
        blocks = [ctypes.create_string_buffer(4096) for _ in range(20)]
        del blocks
def run_threads():
    threads = [threading.Thread(target=churn) for _ in range(8)]
    for thread in threads: thread.start()
    for thread in threads: thread.join()
    ctypes.CDLL("libc.so.6").malloc_stats()
if {fork}:
    child = os.fork()
    if child == 0:
        run_threads()
        os._exit(0)
    os.waitpid(child, 0)
else:
    run_threads()
"""


def arenas_used(cap: bool, fork: bool = False) -> int:
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    code = CONTENDING_THREADS.format(root=str(REPO_ROOT), cap=cap, fork=fork)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                            check=True)
    return len(re.findall(r"^Arena \d+:", result.stderr, flags=re.MULTILINE))


def test_threads_of_a_capped_process_share_two_arenas_and_uncapped_ones_do_not():
    assert arenas_used(cap=False) > 2
    assert 1 <= arenas_used(cap=True) <= 2


def test_a_forked_child_inherits_the_cap():
    assert 1 <= arenas_used(cap=True, fork=True) <= 2


def test_a_user_setting_is_left_alone(monkeypatch):
    from serving.runtime.allocator import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
